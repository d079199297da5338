//! A typed client for Intercom's REST API, for handlers: no Lambda runtime here.
//!
//! - [`settings`] reads the contract's variables (`INTERCOM_ACCESS_TOKEN`,
//!   `INTERCOM_REGION`, `INTERCOM_API_URL`, `INTERCOM_API_VERSION`,
//!   `INTERCOM_ADMIN_ID`, `OWN_ACTIONS`) once into a validated struct.
//! - [`Client`] is built once per process; [`Client::until`] gives a
//!   record's handlers an [`Intercom`] whose every call ends by the
//!   record's deadline.
//! - [`rate_limit`] waits for Intercom's limit instead of meeting a 429
//!   where it can, and waits a 429 out while the deadline allows.
//! - [`ApiError`] says what failed, and whether a retry of the record can
//!   help (`From<ApiError> for HandlerError`).
//! - [`operations`] has the calls handlers make most, typed as Intercom's
//!   OpenAPI description 2.15 has them; [`Intercom::request`] reaches any other.
//! - [`search`] finds conversations, tickets and contacts, a page at a
//!   time or every page of a window of `updated_at`.

pub mod client;
pub mod error;
pub mod operations;
pub mod rate_limit;
pub mod search;
pub mod settings;

pub use client::{Client, Intercom, TokenRefresh};
pub use error::{ApiError, ErrorItem};
pub use operations::{Assignee, EventSubject, ReplyKind, Written};
pub use search::{SearchPage, Searchable};
pub use settings::{API_VERSION, ApiSettings, OwnActions, Region, Token, TokenSource};

/// A handler's way to its record's client: `event.intercom()`, `None` when
/// no access token is configured.
pub trait WithIntercom {
    fn intercom(&self) -> Option<&Intercom>;
}

impl<T> WithIntercom for intercom_webhook::dispatch::Event<T> {
    fn intercom(&self) -> Option<&Intercom> {
        self.context.service::<Intercom>()
    }
}
