//! `intercom-dev send`: sign notifications and POST them as Intercom does.

use std::time::Duration;

use intercom_webhook::signature::Verifier;

/// One delivery's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub status: u16,
    pub body: String,
}

/// POSTs `body` to `url` with `X-Hub-Signature` made with `verifier`, and the
/// headers Intercom sends.
pub fn deliver(
    agent: &ureq::Agent,
    url: &str,
    body: &[u8],
    signature: &str,
) -> Result<Delivered, String> {
    let response = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "intercom-parrot-service-client/1.0")
        .header("X-Hub-Signature", signature)
        .header("intercom-webhook-subscription-id", "nsub_intercom_dev")
        .send(body)
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response.into_body().read_to_string().unwrap_or_default();
    Ok(Delivered { status, body })
}

/// An HTTP agent that reports 4xx and 5xx as answers, not errors, and gives up after 10 s.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// The signature `secret` gives `body`, or a forged one when `forge` is set.
pub fn signature(secret: &Verifier, body: &[u8], forge: bool) -> String {
    if forge {
        Verifier::new(["not-the-client-secret"])
            .map(|v| v.sign(body))
            .unwrap_or_default()
    } else {
        secret.sign(body)
    }
}
