//! Cold start: configuration, AWS clients and secrets, built once into a [`Receiver`].

use crate::config::{CLIENT_SECRET_ARN, Config, ConfigError, SecretSource};
use crate::handler::Receiver;
use crate::queue::{SqsQueue, sdk_config};
use crate::secrets::{Secrets, SecretsManagerFetcher};

/// The receiver as deployed.
pub type LambdaReceiver = Receiver<SqsQueue, SecretsManagerFetcher>;

/// Reads the environment, builds the clients (the payload bucket's
/// only with `PAYLOAD_BUCKET`) and, with
/// `INTERCOM_CLIENT_SECRET_ARN`, reads the secret. Every error names the
/// variable at fault.
pub async fn receiver_from_env() -> Result<LambdaReceiver, ConfigError> {
    let config = Config::from_env()?;
    let sdk_config = sdk_config().await;
    let secrets = match config.secrets {
        SecretSource::Inline(verifier) => Secrets::fixed(verifier),
        SecretSource::SecretsManager(id) => {
            Secrets::load(SecretsManagerFetcher::new(&sdk_config, id))
                .await
                .map_err(|e| ConfigError {
                    variable: CLIENT_SECRET_ARN,
                    problem: format!("could not be read from Secrets Manager: {e}"),
                })?
        }
    };
    Ok(Receiver {
        queue: match config.payload_bucket {
            Some(bucket) => SqsQueue::new(&sdk_config, config.queue_url)
                .with_payload_bucket(&sdk_config, bucket),
            None => SqsQueue::new(&sdk_config, config.queue_url),
        },
        secrets,
        fifo: config.fifo,
        allowed_sources: config.allowed_sources,
        allowed_app_ids: config.allowed_app_ids,
        forward_ping: config.forward_ping,
    })
}
