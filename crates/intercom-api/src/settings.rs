//! The client's configuration, as the contract's "Intercom's API, for handlers" names it, parsed once and validated.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `INTERCOM_ACCESS_TOKEN_ARN` | a Secrets Manager secret holding the access token |
//! | `INTERCOM_ACCESS_TOKEN` | the token itself (local runs) |
//! | `INTERCOM_REGION` | `us` (default), `eu` or `au` |
//! | `INTERCOM_API_URL` | another base URL (a mock); overrides the region |
//! | `INTERCOM_API_VERSION` | the `Intercom-Version` header (default [`API_VERSION`]) |
//! | `INTERCOM_ADMIN_ID` | the admin handlers act as (default: `GET /me`'s) |
//! | `OWN_ACTIONS` | `skip` (default when a token is set) or `deliver` |

use std::fmt;
use std::time::Duration;

/// The API version the typed client was built against (the vendored
/// OpenAPI description's).
pub const API_VERSION: &str = "2.15";

/// The versions `INTERCOM_API_VERSION` may name: those whose shapes the
/// typed calls and models follow.
pub const KNOWN_VERSIONS: &[&str] = &[API_VERSION];

/// How long connecting to Intercom may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one attempt of a call may take before a read is tried again
/// (a write fails, retryable): always within the record's deadline too.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection is kept: below the 60 s idle timeout common
/// to the load balancers in front of HTTP APIs, so a connection the server
/// closed (or one that went stale while Lambda froze the sandbox) is
/// dropped rather than reused.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Which of Intercom's API servers a workspace lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Us,
    Eu,
    Au,
}

impl Region {
    /// The region's base URL (Intercom's OpenAPI `servers`).
    pub fn base_url(self) -> &'static str {
        match self {
            Self::Us => "https://api.intercom.io",
            Self::Eu => "https://api.eu.intercom.io",
            Self::Au => "https://api.au.intercom.io",
        }
    }
}

/// An access token; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token, trimmed; `None` when empty.
    pub fn new(token: &str) -> Option<Self> {
        let token = token.trim();
        (!token.is_empty()).then(|| Self(token.to_owned()))
    }

    /// The `Authorization` header's value.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Where the access token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token: handlers get no client, and only log what they would do.
    None,
    /// `INTERCOM_ACCESS_TOKEN`.
    Inline(Token),
    /// `INTERCOM_ACCESS_TOKEN_ARN`: read at cold start, and again at most
    /// once a minute after a 401.
    Secret(String),
}

/// What a notification authored by the client's own admin does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnActions {
    /// Its handler does not run (outcome `own_action`); destinations still
    /// receive it.
    Skip,
    /// It is handled like any other.
    Deliver,
}

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    pub token: TokenSource,
    /// Without a trailing slash.
    pub base_url: String,
    pub version: String,
    /// `INTERCOM_ADMIN_ID`, when given.
    pub admin_id: Option<String>,
    pub own_actions: OwnActions,
    /// [`CONNECT_TIMEOUT`] (no variable: a field for tests).
    pub connect_timeout: Duration,
    /// [`ATTEMPT_TIMEOUT`].
    pub attempt_timeout: Duration,
    /// [`POOL_IDLE_TIMEOUT`].
    pub pool_idle_timeout: Duration,
}

impl ApiSettings {
    /// Reads the variables through `var`; the error names the variable at
    /// fault and what it takes.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let token = match (
            get("INTERCOM_ACCESS_TOKEN"),
            get("INTERCOM_ACCESS_TOKEN_ARN"),
        ) {
            (Some(_), Some(_)) => {
                return Err("invalid configuration: set INTERCOM_ACCESS_TOKEN or \
                     INTERCOM_ACCESS_TOKEN_ARN, not both"
                    .to_owned());
            }
            (Some(token), None) => TokenSource::Inline(Token::new(&token).ok_or("empty token")?),
            (None, Some(arn)) => TokenSource::Secret(arn),
            (None, None) => TokenSource::None,
        };
        let base_url = match get("INTERCOM_API_URL") {
            Some(url) if url.starts_with("https://") => url.trim_end_matches('/').to_owned(),
            Some(url) if url.starts_with("http://") => {
                let host = host_of(&url);
                if !is_loopback(host) {
                    return Err(format!(
                        "invalid configuration: INTERCOM_API_URL may use http:// only for a \
                         loopback host (127.0.0.1, ::1, localhost): the access token would \
                         travel in clear to `{host}`; use https://"
                    ));
                }
                url.trim_end_matches('/').to_owned()
            }
            Some(url) => {
                return Err(format!(
                    "invalid configuration: INTERCOM_API_URL must be an http(s) URL, not `{url}`"
                ));
            }
            None => {
                let region = match get("INTERCOM_REGION")
                    .map(|r| r.to_ascii_lowercase())
                    .as_deref()
                {
                    None | Some("us") => Region::Us,
                    Some("eu") => Region::Eu,
                    Some("au") => Region::Au,
                    Some(other) => {
                        return Err(format!(
                            "invalid configuration: INTERCOM_REGION must be `us`, `eu` or `au`, not `{other}`"
                        ));
                    }
                };
                region.base_url().to_owned()
            }
        };
        let admin_id = get("INTERCOM_ADMIN_ID");
        let own_actions = match get("OWN_ACTIONS")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            Some("deliver") => OwnActions::Deliver,
            Some("skip") if token == TokenSource::None && admin_id.is_none() => {
                return Err(
                    "invalid configuration: OWN_ACTIONS=skip needs INTERCOM_ADMIN_ID, or \
                     an access token to ask GET /me who the app acts as"
                        .to_owned(),
                );
            }
            Some("skip") => OwnActions::Skip,
            Some(other) => {
                return Err(format!(
                    "invalid configuration: OWN_ACTIONS must be `skip` or `deliver`, not `{other}`"
                ));
            }
            // Skip by default when there is someone to compare with.
            None if token != TokenSource::None || admin_id.is_some() => OwnActions::Skip,
            None => OwnActions::Deliver,
        };
        let version = get("INTERCOM_API_VERSION").unwrap_or_else(|| API_VERSION.to_owned());
        if !KNOWN_VERSIONS.contains(&version.as_str()) {
            return Err(format!(
                "invalid configuration: INTERCOM_API_VERSION `{version}` is not one the typed \
                 client knows ({}): its calls and models follow those versions' shapes",
                KNOWN_VERSIONS.join(", ")
            ));
        }
        Ok(Self {
            token,
            base_url,
            version,
            admin_id,
            own_actions,
            connect_timeout: CONNECT_TIMEOUT,
            attempt_timeout: ATTEMPT_TIMEOUT,
            pool_idle_timeout: POOL_IDLE_TIMEOUT,
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The host of an `http(s)://` URL, without its port or brackets.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
}

/// Whether `host` is this machine: `localhost`, 127.0.0.0/8 or ::1.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<ApiSettings, String> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        ApiSettings::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn nothing_set_is_no_client_on_the_us_server() {
        assert_eq!(
            settings(&[]),
            Ok(ApiSettings {
                token: TokenSource::None,
                base_url: "https://api.intercom.io".into(),
                version: "2.15".into(),
                admin_id: None,
                own_actions: OwnActions::Deliver,
                connect_timeout: CONNECT_TIMEOUT,
                attempt_timeout: ATTEMPT_TIMEOUT,
                pool_idle_timeout: POOL_IDLE_TIMEOUT,
            })
        );
    }

    #[test]
    fn a_token_turns_own_actions_to_skip_and_the_region_picks_the_server() {
        let s = settings(&[
            ("INTERCOM_ACCESS_TOKEN", " tok "),
            ("INTERCOM_REGION", "EU"),
        ])
        .expect("valid");
        assert_eq!(s.token, TokenSource::Inline(Token("tok".into())));
        assert_eq!(s.base_url, "https://api.eu.intercom.io");
        assert_eq!(s.own_actions, OwnActions::Skip);
        let s = settings(&[
            ("INTERCOM_ACCESS_TOKEN_ARN", "arn:aws:secretsmanager:x"),
            ("INTERCOM_REGION", "au"),
            ("INTERCOM_API_URL", "http://127.0.0.1:9/"),
            ("OWN_ACTIONS", "deliver"),
            ("INTERCOM_API_VERSION", "2.15"),
        ])
        .expect("valid");
        assert_eq!(
            s.token,
            TokenSource::Secret("arn:aws:secretsmanager:x".into())
        );
        assert_eq!(
            s.base_url, "http://127.0.0.1:9",
            "the URL overrides the region"
        );
        assert_eq!(s.own_actions, OwnActions::Deliver);
        assert_eq!(s.version, "2.15");
    }

    #[test]
    fn each_mistake_names_its_variable() {
        for (vars, needle) in [
            (
                &[
                    ("INTERCOM_ACCESS_TOKEN", "a"),
                    ("INTERCOM_ACCESS_TOKEN_ARN", "b"),
                ][..],
                "not both",
            ),
            (
                &[("INTERCOM_REGION", "us-east-1")][..],
                "INTERCOM_REGION must be",
            ),
            (
                &[("INTERCOM_API_URL", "api.intercom.io")][..],
                "INTERCOM_API_URL must be",
            ),
            (&[("OWN_ACTIONS", "ignore")][..], "OWN_ACTIONS must be"),
            (&[("OWN_ACTIONS", "skip")][..], "OWN_ACTIONS=skip needs"),
            (
                &[("INTERCOM_API_URL", "http://api.intercom.io")][..],
                "travel in clear to `api.intercom.io`",
            ),
            (
                &[("INTERCOM_API_URL", "http://127.0.0.1.example.com:80")][..],
                "travel in clear",
            ),
            (
                &[("INTERCOM_API_VERSION", "Unstable")][..],
                "`Unstable` is not one the typed client knows (2.15)",
            ),
        ] {
            let error = settings(vars).expect_err(needle);
            assert!(error.contains(needle), "{error}");
        }
        assert!(settings(&[("OWN_ACTIONS", "skip"), ("INTERCOM_ADMIN_ID", "7")]).is_ok());
        for loopback in [
            "http://127.0.0.1:9",
            "http://localhost:8080/",
            "http://[::1]:9",
            "http://127.0.0.2",
        ] {
            let s = settings(&[("INTERCOM_API_URL", loopback)]).expect(loopback);
            assert!(s.base_url.starts_with("http://"), "{loopback}");
        }
    }

    #[test]
    fn a_token_is_never_printed() {
        let token = Token::new("secret-token").expect("token");
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        let settings = settings(&[("INTERCOM_ACCESS_TOKEN", "secret-token")]).expect("valid");
        assert!(!format!("{settings:?}").contains("secret-token"));
    }
}
