//! The client secrets in use, and their refresh from Secrets Manager after a failed verification.
//!
//! With `INTERCOM_CLIENT_SECRET` the verifier never changes. With
//! `INTERCOM_CLIENT_SECRET_ARN` it is read at cold start and read again, at most
//! once a minute, when a signature fails to verify: a secret rotated in
//! Secrets Manager then works without a redeploy, and forged requests cannot
//! make the function call Secrets Manager more than once a minute.

use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use intercom_webhook::signature::Verifier;
use tokio::time::Instant;

/// The least time between two refreshes.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The longest a refresh may take within a request.
pub const REFRESH_TIMEOUT: Duration = Duration::from_millis(1000);

/// Reading the secret failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError(pub String);

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FetchError {}

/// Reads the current secret string (one or more secrets, comma-separated).
pub trait SecretFetcher: Send + Sync {
    fn fetch(&self) -> impl Future<Output = Result<String, FetchError>> + Send;
}

#[cfg(feature = "aws")]
/// Reads a Secrets Manager secret's `SecretString`.
#[derive(Debug, Clone)]
pub struct SecretsManagerFetcher {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

#[cfg(feature = "aws")]
impl SecretsManagerFetcher {
    pub fn new(sdk_config: &aws_config::SdkConfig, secret_id: String) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(sdk_config),
            secret_id,
        }
    }
}

#[cfg(feature = "aws")]
impl SecretFetcher for SecretsManagerFetcher {
    async fn fetch(&self) -> Result<String, FetchError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                FetchError(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())
            })?;
        output.secret_string.ok_or_else(|| {
            FetchError("the secret has no SecretString (binary secrets are not supported)".into())
        })
    }
}

/// The verifier in use, and how to refresh it.
#[derive(Debug)]
pub struct Secrets<F> {
    current: RwLock<Arc<Verifier>>,
    fetcher: Option<F>,
    last_refresh: Mutex<Option<Instant>>,
}

impl<F: SecretFetcher> Secrets<F> {
    /// Secrets that never change (`INTERCOM_CLIENT_SECRET`).
    pub fn fixed(verifier: Verifier) -> Self {
        Self {
            current: RwLock::new(Arc::new(verifier)),
            fetcher: None,
            last_refresh: Mutex::new(None),
        }
    }

    /// Reads the secret once (the cold start) and keeps `fetcher` for refreshes.
    pub async fn load(fetcher: F) -> Result<Self, FetchError> {
        let text = fetcher.fetch().await?;
        let verifier = Verifier::from_comma_separated(&text)
            .map_err(|e| FetchError(format!("the secret is invalid: {e}")))?;
        Ok(Self {
            current: RwLock::new(Arc::new(verifier)),
            fetcher: Some(fetcher),
            last_refresh: Mutex::new(Some(Instant::now())),
        })
    }

    /// Where refreshed secrets come from, if anywhere.
    pub fn fetcher(&self) -> Option<&F> {
        self.fetcher.as_ref()
    }

    /// The verifier to check a request with.
    pub fn verifier(&self) -> Arc<Verifier> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// After a signature failed to verify: reads the secret again unless that
    /// was done less than [`REFRESH_INTERVAL`] ago. Returns the new verifier
    /// when there is one worth trying.
    pub async fn refresh_after_failure(&self) -> Option<Arc<Verifier>> {
        let fetcher = self.fetcher.as_ref()?;
        {
            let mut last = self.last_refresh.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < REFRESH_INTERVAL) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let text = match tokio::time::timeout(REFRESH_TIMEOUT, fetcher.fetch()).await {
            Ok(Ok(text)) => text,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not refresh the client secret");
                return None;
            }
            Err(_) => {
                tracing::warn!("refreshing the client secret timed out");
                return None;
            }
        };
        let verifier = match Verifier::from_comma_separated(&text) {
            Ok(verifier) => Arc::new(verifier),
            Err(e) => {
                tracing::warn!(error = %e, "the refreshed client secret is invalid; keeping the current one");
                return None;
            }
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&verifier);
        tracing::info!(secrets = verifier.secret_count(), "client secret refreshed");
        Some(verifier)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Debug)]
    struct Sequence {
        values: Vec<Result<String, FetchError>>,
        calls: AtomicUsize,
    }

    impl SecretFetcher for Sequence {
        async fn fetch(&self) -> Result<String, FetchError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            self.values[n.min(self.values.len() - 1)].clone()
        }
    }

    fn sequence(values: &[Result<&str, &str>]) -> Sequence {
        Sequence {
            values: values
                .iter()
                .map(|v| v.map(str::to_owned).map_err(|e| FetchError(e.to_owned())))
                .collect(),
            calls: AtomicUsize::new(0),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_at_most_once_a_minute() {
        let secrets = Secrets::load(sequence(&[Ok("old"), Ok("new"), Ok("newer")]))
            .await
            .expect("loads");
        assert!(
            secrets
                .verifier()
                .verify(
                    b"x",
                    Some(Verifier::new(["old"]).expect("v").sign(b"x").as_bytes())
                )
                .is_ok()
        );
        assert!(
            secrets.refresh_after_failure().await.is_none(),
            "loaded just now"
        );
        tokio::time::advance(REFRESH_INTERVAL).await;
        let refreshed = secrets.refresh_after_failure().await.expect("refreshed");
        let new_signature = Verifier::new(["new"]).expect("v").sign(b"x");
        assert!(
            refreshed
                .verify(b"x", Some(new_signature.as_bytes()))
                .is_ok()
        );
        assert!(
            secrets
                .verifier()
                .verify(b"x", Some(new_signature.as_bytes()))
                .is_ok()
        );
        assert!(
            secrets.refresh_after_failure().await.is_none(),
            "within the minute"
        );
        assert_eq!(
            secrets
                .fetcher
                .as_ref()
                .map(|f| f.calls.load(Ordering::SeqCst)),
            Some(2)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_or_invalid_refresh_keeps_the_current_secret() {
        let secrets = Secrets::load(sequence(&[Ok("old"), Err("denied"), Ok(" , ")]))
            .await
            .expect("loads");
        for _ in 0..2 {
            tokio::time::advance(REFRESH_INTERVAL).await;
            assert!(secrets.refresh_after_failure().await.is_none());
            let old = Verifier::new(["old"]).expect("v").sign(b"x");
            assert!(
                secrets
                    .verifier()
                    .verify(b"x", Some(old.as_bytes()))
                    .is_ok()
            );
        }
    }

    #[tokio::test]
    async fn load_fails_on_an_unreadable_or_empty_secret() {
        assert!(
            Secrets::load(sequence(&[Err("no such secret")]))
                .await
                .is_err()
        );
        let err = Secrets::load(sequence(&[Ok("")])).await.expect_err("empty");
        assert!(err.0.contains("invalid"), "{err}");
    }

    #[tokio::test]
    async fn fixed_secrets_never_refresh() {
        let secrets: Secrets<Sequence> = Secrets::fixed(Verifier::new(["s"]).expect("v"));
        assert!(secrets.refresh_after_failure().await.is_none());
    }
}
