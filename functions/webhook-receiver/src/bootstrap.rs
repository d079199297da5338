//! Cold start: configuration, AWS clients and secrets, built once into a [`Receiver`].

use crate::allowlist::{AllowList, HttpsFetcher};
use crate::config::{CLIENT_SECRET_ARN, Config, ConfigError, SecretSource};
use crate::handler::Receiver;
use crate::queue::{SqsQueue, sdk_config};
use crate::secrets::{Secrets, SecretsManagerFetcher};

/// The receiver as deployed.
pub type LambdaReceiver = Receiver<SqsQueue, SecretsManagerFetcher>;

/// Reads the environment, builds the clients (the payload bucket's
/// only with `PAYLOAD_BUCKET`) and, with
/// `INTERCOM_CLIENT_SECRET_ARN`, reads the secret; with a region name in
/// `INTERCOM_ALLOWED_IPS`, starts reading Intercom's published ranges in the
/// background. Every error names the variable at fault.
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
    let allowed_sources = config
        .allowed_sources
        .map(|filter| match config.ip_ranges_url {
            Some(url) => {
                let plain_http = url.starts_with("http://");
                AllowList::fetching(filter, url, Box::new(HttpsFetcher::new(plain_http)))
            }
            None => AllowList::from(filter),
        });
    if let Some(list) = &allowed_sources {
        list.start();
    }
    Ok(Receiver {
        queue: match config.payload_bucket {
            Some(bucket) => SqsQueue::new(&sdk_config, config.queue_url)
                .with_payload_bucket(&sdk_config, bucket),
            None => SqsQueue::new(&sdk_config, config.queue_url),
        },
        secrets,
        fifo: config.fifo,
        allowed_sources,
        allowed_app_ids: config.allowed_app_ids,
        forward_ping: config.forward_ping,
    })
}
