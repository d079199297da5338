//! `intercom-dev send`: sign notifications and POST them as Intercom does.

use std::sync::Arc;
use std::time::Duration;

use intercom_webhook::signature::Verifier;
use ureq::tls::{TlsConfig, TlsProvider};

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
    let crypto = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ureq::Agent::config_builder()
        .tls_config(
            TlsConfig::builder()
                .provider(TlsProvider::Rustls)
                .unversioned_rustls_crypto_provider(crypto)
                .build(),
        )
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

/// `body` (a notification) as a new one: its `id` made unique (the old one
/// with `-` and the time in milliseconds and `n` after it, so that it still
/// says what it was) and its `created_at` now, so that `serve` processes it
/// instead of calling it a `duplicate` or `stale`. A ping's null id stays
/// null; a body that is not a JSON object is sent as it is (to see it
/// refused).
pub fn fresh(body: &[u8], n: usize) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut notification)) = serde_json::from_slice(body) else {
        return body.to_vec();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    if let Some(serde_json::Value::String(id)) = notification.get("id") {
        let id = format!("{id}-{}{n:03}", now.as_millis());
        notification.insert("id".into(), id.into());
    }
    if notification.contains_key("created_at") {
        notification.insert("created_at".into(), now.as_secs().into());
    }
    serde_json::to_vec(&notification).unwrap_or_else(|_| body.to_vec())
}

/// Two notifications about the same object, newest first: `body` (a
/// notification) as created now, then as created a minute earlier, each
/// with its own id. Sent in this order they arrive out of order, as
/// Intercom's retry of a failed delivery does, and the second is stale.
pub fn out_of_order(body: &[u8]) -> Result<[(&'static str, Vec<u8>); 2], String> {
    let mut notification: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let id = notification["id"].as_str().unwrap_or("notif").to_owned();
    let mut version = |label: &'static str, created_at: u64| {
        notification["id"] = format!("{id}_{}_{label}", now.as_millis()).into();
        notification["created_at"] = created_at.into();
        serde_json::to_vec(&notification).map(|body| (label, body))
    };
    let newer = version("newer", now.as_secs()).map_err(|e| e.to_string())?;
    let older = version("older", now.as_secs() - 60).map_err(|e| e.to_string())?;
    Ok([newer, older])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_speaks_tls_to_https_endpoints() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut first = [0u8; 1];
            stream.read_exact(&mut first).expect("a first byte");
            first[0]
        });
        // No certificate to answer with: the handshake fails, as an error.
        let sent = deliver(
            &agent(),
            &format!("https://127.0.0.1:{port}/"),
            b"{}",
            "sha1=0",
        );
        assert!(sent.is_err(), "{sent:?}");
        assert_eq!(
            server.join().expect("server"),
            0x16,
            "a TLS handshake record"
        );
    }

    #[test]
    fn fresh_gives_a_new_id_and_the_time_now_and_keeps_the_rest() {
        let body = br#"{"type":"notification_event","topic":"ticket.created","id":"notif_sample_ticket_created","app_id":"a","created_at":5,"data":{"item":{"type":"ticket","id":"5"}}}"#;
        let [first, second] = [0, 1].map(|n| {
            let fresh: serde_json::Value = serde_json::from_slice(&fresh(body, n)).expect("json");
            fresh
        });
        let original: serde_json::Value = serde_json::from_slice(body).expect("json");
        for fresh in [&first, &second] {
            let id = fresh["id"].as_str().expect("an id");
            assert!(id.starts_with("notif_sample_ticket_created-"), "{id}");
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("time")
                .as_secs();
            let created_at = fresh["created_at"].as_u64().expect("time");
            assert!(now - created_at <= 1, "{created_at} vs {now}");
            assert_eq!(fresh["data"], original["data"]);
            assert_eq!(fresh["topic"], original["topic"]);
        }
        assert_ne!(first["id"], second["id"], "two sent at once differ");
        let ping = br#"{"type":"notification_event","topic":"ping","id":null,"app_id":"a","created_at":5,"data":{"item":{}}}"#;
        let ping: serde_json::Value = serde_json::from_slice(&fresh(ping, 0)).expect("json");
        assert!(ping["id"].is_null());
        assert_eq!(fresh(b"not json", 0), b"not json");
    }

    #[test]
    fn out_of_order_sends_the_newer_first_about_the_same_object() {
        let body = br#"{"type":"notification_event","topic":"conversation.admin.replied","id":"notif_1","app_id":"a","created_at":5,"data":{"item":{"type":"conversation","id":"7"}}}"#;
        let [(first, newer), (second, older)] = out_of_order(body).expect("two");
        assert_eq!((first, second), ("newer", "older"));
        let newer: serde_json::Value = serde_json::from_slice(&newer).expect("json");
        let older: serde_json::Value = serde_json::from_slice(&older).expect("json");
        assert_eq!(
            newer["created_at"].as_u64().expect("time")
                - older["created_at"].as_u64().expect("time"),
            60
        );
        assert_ne!(newer["id"], older["id"]);
        assert_eq!(newer["data"], older["data"], "the same object");
    }
}
