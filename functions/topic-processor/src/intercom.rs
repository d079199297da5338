//! Intercom's API for handlers: the client built once at cold start (the token read once), each record's handle bounded by its deadline, and the echo of the app's own actions.
//!
//! With `INTERCOM_ACCESS_TOKEN` or `INTERCOM_ACCESS_TOKEN_ARN` set, every
//! handler's event carries the client (`event.intercom()`); a token in
//! Secrets Manager is read once at cold start, and again at most once a
//! minute after Intercom answers 401 (a rotated token). Without a token
//! handlers get `None`, and nothing here costs a cold start anything.
//!
//! **Own actions** (`OWN_ACTIONS=skip`, the default with a token or
//! `INTERCOM_ADMIN_ID`): a notification whose newest conversation or ticket
//! part the app's admin wrote *through the API* (`app_package_code`) is
//! the echo of a handler's own call (a reply comes back as
//! `conversation.admin.replied`). Its handler does not run; destinations
//! still get it; the outcome is `own_action`. The same admin typing in the
//! inbox is a teammate, whose actions reach handlers. The admin is
//! `INTERCOM_ADMIN_ID`, or `GET /me`'s, asked once per process, only for a
//! notification some handler takes whose newest part an admin wrote
//! through the API.

use std::sync::Arc;

use intercom_api::{ApiSettings, Client, Intercom, OwnActions, Token, TokenRefresh, TokenSource};
use intercom_webhook::dispatch::{Failure, HandlerError};
use intercom_webhook::models::Item;
use intercom_webhook::topic::Topic;
use tokio::time::Instant;

use crate::config::ConfigError;

/// The client and the own-actions rule, as configured.
#[derive(Debug, Clone)]
pub struct IntercomApi {
    /// `None` without a token.
    client: Option<Client>,
    own_actions: OwnActions,
    /// `INTERCOM_ADMIN_ID`.
    admin_id: Option<String>,
}

impl IntercomApi {
    /// From `settings`; a token in Secrets Manager is read with `sdk`.
    /// `None` when there is nothing to do (no token, own actions delivered).
    pub async fn from_settings(
        settings: &ApiSettings,
        sdk: Option<&aws_config::SdkConfig>,
    ) -> Result<Option<Self>, ConfigError> {
        let (token, refresher): (Option<Token>, Option<Arc<dyn TokenRefresh>>) =
            match &settings.token {
                TokenSource::None => (None, None),
                TokenSource::Inline(token) => (Some(token.clone()), None),
                TokenSource::Secret(secret_id) => {
                    let sdk = sdk.ok_or_else(|| {
                        ConfigError("INTERCOM_ACCESS_TOKEN_ARN needs the AWS SDK".to_owned())
                    })?;
                    let secret = SecretToken {
                        client: aws_sdk_secretsmanager::Client::new(sdk),
                        secret_id: secret_id.clone(),
                    };
                    let token = secret
                        .read()
                        .await
                        .map_err(|e| ConfigError(format!("INTERCOM_ACCESS_TOKEN_ARN: {e}")))?;
                    (Some(token), Some(Arc::new(secret)))
                }
            };
        if token.is_none() && settings.own_actions == OwnActions::Deliver {
            return Ok(None);
        }
        let client = match token {
            Some(token) => Some(Client::new(settings, token, refresher).map_err(ConfigError)?),
            None => None,
        };
        Ok(Some(Self {
            client,
            own_actions: settings.own_actions,
            admin_id: settings.admin_id.clone(),
        }))
    }

    /// The handle a record's handler gets, ending its calls by `deadline`.
    pub fn for_record(&self, deadline: Instant) -> Option<Intercom> {
        self.client.as_ref().map(|c| c.until(deadline))
    }

    /// Whether `item` (of `topic`) is the echo of the app's own action,
    /// and its handler must not run: its newest part was written by the
    /// app's admin through the API ([`intercom_webhook::models::NewestPart::is_apps_own`]). Intercom
    /// is asked who that admin is (`GET /me`, once per process) only when
    /// the part could be the app's: an admin's, written through the API
    /// (or, with `INTERCOM_ADMIN_ID`, not saying how). The caller asks
    /// only for a notification a handler would run for.
    pub async fn is_own_action(
        &self,
        item: &Item,
        topic: Topic,
        deadline: Instant,
    ) -> Result<bool, Failure> {
        if self.own_actions == OwnActions::Deliver {
            return Ok(false);
        }
        let explicit = self.admin_id.is_some();
        let Some(part) = item.newest_part(topic) else {
            return Ok(false);
        };
        if !part.could_be_apps_own(explicit) {
            return Ok(false);
        }
        let admin_id = match (&self.admin_id, &self.client) {
            (Some(admin_id), _) => admin_id.clone(),
            (None, Some(client)) => client.until(deadline).admin_id().await.map_err(|e| {
                Failure::Handler(
                    HandlerError::from(e)
                        .context("asking intercom which admin the app is (GET /me)"),
                )
            })?,
            (None, None) => return Ok(false),
        };
        Ok(part.is_apps_own(&admin_id, explicit))
    }
}

/// The access token in Secrets Manager.
#[derive(Debug)]
struct SecretToken {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretToken {
    async fn read(&self) -> Result<Token, String> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())?;
        output
            .secret_string()
            .and_then(Token::new)
            .ok_or_else(|| "the secret holds no token (an empty or binary SecretString)".to_owned())
    }
}

impl TokenRefresh for SecretToken {
    fn refresh(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Token, String>> + Send + '_>> {
        Box::pin(self.read())
    }
}
