//! What a call to Intercom can end in, typed, so that a handler fails its record as retryable or permanent by the kind of failure.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use intercom_webhook::dispatch::HandlerError;
use serde::Deserialize;

/// One entry of Intercom's error list (`{"type":"error.list","errors":[…]}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorItem {
    pub code: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ErrorList {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

/// Intercom's error list in a body, or nothing when the body is not one.
pub(crate) fn error_items(body: &[u8]) -> Vec<ErrorItem> {
    serde_json::from_slice::<ErrorList>(body)
        .map(|l| l.errors)
        .unwrap_or_default()
}

/// Why a call to Intercom did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No access token is configured: the client cannot call.
    NoToken,
    /// 401: the token is wrong or revoked (read again from its secret at
    /// most once a minute).
    Unauthorized(Vec<ErrorItem>),
    /// 403: the token lacks the permission (the app's scopes).
    Forbidden(Vec<ErrorItem>),
    /// 404: no such object (or not visible to this app).
    NotFound(Vec<ErrorItem>),
    /// 429 not waited out: the limit resets at `reset_at` (epoch seconds),
    /// after the record's deadline.
    RateLimited { reset_at: Option<u64> },
    /// 400, 409, 422 and other 4xx: Intercom refused the request as made.
    Invalid { status: u16, errors: Vec<ErrorItem> },
    /// 5xx (or 408), after the retries the method allows.
    Server { status: u16 },
    /// The record's deadline came before an answer.
    Deadline,
    /// The connection failed (DNS, TLS, reset), after the retries allowed.
    Transport(String),
    /// A 2xx whose body is not what the call returns.
    Decode(String),
}

impl ApiError {
    /// Whether the record should be retried (later, by SQS): the failures
    /// that time, a rotated token or Intercom itself can mend.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unauthorized(_)
                | Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Deadline
                | Self::Transport(_)
        )
    }

    /// How long until the rate limit resets, when this is one.
    pub fn retry_after(&self, now: SystemTime) -> Option<Duration> {
        let Self::RateLimited {
            reset_at: Some(reset_at),
        } = self
        else {
            return None;
        };
        let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
        Some(Duration::from_secs(reset_at.saturating_sub(now)))
    }
}

fn list(errors: &[ErrorItem]) -> String {
    errors
        .iter()
        .map(|e| match (&e.field, &e.message) {
            (Some(field), Some(message)) => format!("{} ({field}): {message}", e.code),
            (None, Some(message)) => format!("{}: {message}", e.code),
            (Some(field), None) => format!("{} ({field})", e.code),
            (None, None) => e.code.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoToken => f.write_str("no Intercom access token is configured"),
            Self::Unauthorized(e) => write!(f, "intercom refused the access token: {}", list(e)),
            Self::Forbidden(e) => write!(f, "the access token may not do this: {}", list(e)),
            Self::NotFound(e) => write!(f, "not found in intercom: {}", list(e)),
            Self::RateLimited { reset_at: Some(at) } => {
                write!(
                    f,
                    "intercom's rate limit, reset at {at} (after the deadline)"
                )
            }
            Self::RateLimited { reset_at: None } => f.write_str("intercom's rate limit"),
            Self::Invalid { status, errors } => {
                write!(
                    f,
                    "intercom refused the request ({status}): {}",
                    list(errors)
                )
            }
            Self::Server { status } => write!(f, "intercom answered {status}"),
            Self::Deadline => f.write_str("no answer from intercom before the record's deadline"),
            Self::Transport(e) => write!(f, "could not reach intercom: {e}"),
            Self::Decode(e) => write!(f, "unexpected answer from intercom: {e}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// A handler's `?` on a call: retryable or permanent by the kind.
impl From<ApiError> for HandlerError {
    fn from(error: ApiError) -> Self {
        if error.is_retryable() {
            Self::retryable(error)
        } else {
            Self::permanent(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intercoms_error_list_is_read_and_said() {
        let body = br#"{"type":"error.list","request_id":"r","errors":[
            {"code":"parameter_invalid","message":"Email is invalid","field":"email"},
            {"code":"parameter_not_found"}]}"#;
        let errors = error_items(body);
        assert_eq!(errors.len(), 2);
        let error = ApiError::Invalid {
            status: 400,
            errors,
        };
        assert_eq!(
            error.to_string(),
            "intercom refused the request (400): parameter_invalid (email): Email is invalid; \
             parameter_not_found"
        );
        assert!(error_items(b"<html>bad gateway</html>").is_empty());
    }

    #[test]
    fn what_time_or_intercom_can_mend_is_retryable_the_rest_permanent() {
        let retryable = [
            ApiError::Unauthorized(vec![]),
            ApiError::RateLimited { reset_at: None },
            ApiError::Server { status: 503 },
            ApiError::Deadline,
            ApiError::Transport("reset".into()),
        ];
        let permanent = [
            ApiError::NoToken,
            ApiError::Forbidden(vec![]),
            ApiError::NotFound(vec![]),
            ApiError::Invalid {
                status: 422,
                errors: vec![],
            },
            ApiError::Decode("eof".into()),
        ];
        for error in retryable {
            assert!(HandlerError::from(error.clone()).is_retryable(), "{error}");
        }
        for error in permanent {
            assert!(!HandlerError::from(error.clone()).is_retryable(), "{error}");
        }
    }

    #[test]
    fn a_rate_limit_says_how_long_until_it_resets() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let limited = ApiError::RateLimited {
            reset_at: Some(1_007),
        };
        assert_eq!(limited.retry_after(now), Some(Duration::from_secs(7)));
        assert_eq!(ApiError::Deadline.retry_after(now), None);
    }
}
