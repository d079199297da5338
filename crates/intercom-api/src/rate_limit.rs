//! Intercom's rate limit as its headers tell it, and when a call must wait for it.
//!
//! Authenticated answers carry `X-RateLimit-Limit` (calls allowed in the
//! current 10-second window), `X-RateLimit-Remaining` and
//! `X-RateLimit-Reset` (epoch seconds when the window resets). The client
//! keeps the latest; a call made when nothing remains waits for the reset
//! instead of spending a request on a 429, and a 429 is waited out the same
//! way, both only while the record's deadline allows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::HeaderMap;

/// How long to wait on a 429 that names no reset: Intercom's window is 10 s.
pub const WINDOW: Duration = Duration::from_secs(10);

/// The latest limit Intercom reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Epoch seconds.
    pub reset_at: Option<u64>,
}

impl RateLimit {
    /// The headers of one answer; `None` when it carries none (an
    /// unauthenticated answer).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let limit = Self {
            limit: number("x-ratelimit-limit"),
            remaining: number("x-ratelimit-remaining"),
            reset_at: number("x-ratelimit-reset"),
        };
        (limit != Self::default()).then_some(limit)
    }

    /// How long a call made `now` should wait so as not to be refused:
    /// until the reset when nothing remains in the window, else not at all.
    pub fn wait_before_call(&self, now: SystemTime) -> Duration {
        match (self.remaining, self.reset_at) {
            (Some(0), Some(reset_at)) => until(reset_at, now),
            _ => Duration::ZERO,
        }
    }

    /// How long to wait after a 429 that carried these headers.
    pub fn wait_after_429(&self, now: SystemTime) -> Duration {
        match self.reset_at {
            // At least a moment: a reset "now" is a reset a clock's skew away.
            Some(reset_at) => until(reset_at, now).max(Duration::from_millis(100)),
            None => WINDOW,
        }
    }
}

/// From `now` to the epoch second `at`, zero if it passed.
fn until(at: u64, now: SystemTime) -> Duration {
    (UNIX_EPOCH + Duration::from_secs(at))
        .duration_since(now)
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().expect("value"));
        }
        headers
    }

    const NOW: u64 = 1_487_332_505;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(NOW * 1000 + 500)
    }

    #[test]
    fn the_headers_intercom_documents_are_read() {
        let limit = RateLimit::from_headers(&headers(&[
            ("X-RateLimit-Limit", "167"),
            ("X-RateLimit-Remaining", "166"),
            ("X-RateLimit-Reset", "1487332510"),
        ]))
        .expect("a limit");
        assert_eq!(
            limit,
            RateLimit {
                limit: Some(167),
                remaining: Some(166),
                reset_at: Some(1_487_332_510)
            }
        );
        assert_eq!(RateLimit::from_headers(&headers(&[])), None);
        assert_eq!(
            RateLimit::from_headers(&headers(&[("X-RateLimit-Remaining", "soon")])),
            None
        );
    }

    #[test]
    fn a_call_waits_for_the_reset_only_when_nothing_remains() {
        let spent = RateLimit {
            limit: Some(167),
            remaining: Some(0),
            reset_at: Some(NOW + 5),
        };
        assert_eq!(spent.wait_before_call(now()), Duration::from_millis(4_500));
        let left = RateLimit {
            remaining: Some(1),
            ..spent
        };
        assert_eq!(left.wait_before_call(now()), Duration::ZERO);
        let passed = RateLimit {
            reset_at: Some(NOW - 1),
            ..spent
        };
        assert_eq!(passed.wait_before_call(now()), Duration::ZERO);
    }

    #[test]
    fn a_429_waits_until_the_reset_or_one_window() {
        let limited = RateLimit {
            limit: Some(167),
            remaining: Some(0),
            reset_at: Some(NOW + 2),
        };
        assert_eq!(limited.wait_after_429(now()), Duration::from_millis(1_500));
        let now_reset = RateLimit {
            reset_at: Some(NOW),
            ..limited
        };
        assert_eq!(now_reset.wait_after_429(now()), Duration::from_millis(100));
        assert_eq!(RateLimit::default().wait_after_429(now()), WINDOW);
    }
}
