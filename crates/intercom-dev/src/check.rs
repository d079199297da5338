//! `intercom-dev check`: the step after deploying; the webhook URL answers Intercom's kinds of request as the contract says, in time.
//!
//! Four requests, none of which queues anything: a `HEAD` (how Intercom
//! validates an endpoint), a signed `ping`, the same ping forged, and a
//! signed ping over SQS's 1 MiB limit. Each answer is judged against the
//! contract, status and body, and against its 3-second budget. A signed
//! ping refused as `invalid_signature` while the forged one is refused too
//! means the receiver holds another secret than the one given: a stale
//! secret, the commonest failure after a deploy, and the line says so.
//! With `--stack`, [`crate::deployed`] adds what the stack says of itself.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use intercom_webhook::queue_message::MAX_MESSAGE_BYTES;
use intercom_webhook::signature::Verifier;

use crate::send;

/// The contract's answer budget: every answer within 3 seconds.
pub const ANSWER_BUDGET: Duration = Duration::from_secs(3);

/// One request and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// What was sent, as the report names it.
    pub name: &'static str,
    /// What came back, as the report shows it: an HTTP status, a count,
    /// or `---` when nothing answered.
    pub answer: String,
    pub took: Duration,
    /// `Err` says what is wrong and what to do.
    pub verdict: Result<(), String>,
}

impl Checked {
    /// The report's line.
    pub fn line(&self) -> String {
        let (mark, why) = match &self.verdict {
            Ok(()) => ("✓", String::new()),
            Err(why) => ("✗", format!(": {why}")),
        };
        format!(
            "{mark} {:<30} {:>5} ms  {}{why}",
            self.name,
            self.took.as_millis(),
            self.answer,
        )
    }
}

/// A ping notification, padded with `padding` bytes in its item.
fn ping(padding: usize) -> Vec<u8> {
    let created_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    serde_json::json!({
        "type": "notification_event",
        "app_id": "intercom-dev-check",
        "id": null,
        "topic": "ping",
        "created_at": created_at,
        "data": {"item": {"type": "ping", "message": "x".repeat(padding)}},
    })
    .to_string()
    .into_bytes()
}

/// What came back from one request: status and body, or why nothing did.
type Answer = Result<(u16, String), String>;

/// Sends the four requests to `url`, signing with `secret`.
pub fn check(agent: &ureq::Agent, url: &str, secret: &Verifier) -> Vec<Checked> {
    let timed = |name,
                 request: &dyn Fn() -> Answer,
                 judge: &dyn Fn(u16, &str) -> Result<(), String>| {
        let started = Instant::now();
        let answer = request();
        let took = started.elapsed();
        let (status, verdict) = match answer {
            Err(error) => (None, Err(format!("no answer: {error}"))),
            Ok((status, body)) => {
                let judged = judge(status, &body).and_then(|()| {
                    if took > ANSWER_BUDGET {
                        Err(format!(
                            "answered after {} ms; the contract allows 3 s (Intercom gives up at 5)",
                            took.as_millis()
                        ))
                    } else {
                        Ok(())
                    }
                });
                (Some(status), judged)
            }
        };
        Checked {
            name,
            answer: status.map_or_else(|| "---".to_owned(), |s| s.to_string()),
            took,
            verdict,
        }
    };
    let post = |body: &[u8], signature: &str| -> Answer {
        send::deliver(agent, url, body, signature).map(|d| (d.status, d.body))
    };
    let small = ping(0);
    let large = ping(MAX_MESSAGE_BYTES);
    let signed_small = send::signature(secret, &small, false);
    let forged_small = send::signature(secret, &small, true);
    let signed_large = send::signature(secret, &large, false);

    let head = timed(
        "HEAD (Intercom's validation)",
        &|| {
            agent
                .head(url)
                .call()
                .map(|r| (r.status().as_u16(), String::new()))
                .map_err(|e| format!("{url}: {e}"))
        },
        &|status, _| expect(status, 200, "Intercom will not save the URL"),
    );
    let signed = timed(
        "signed ping",
        &|| post(&small, &signed_small),
        &|status, body| match status {
            200 if body.contains("pong") => Ok(()),
            401 => Err(
                "refused as invalid_signature: the receiver holds another client secret than \
                 the one given here, a stale secret. Put the app's current client secret \
                 (Developer Hub, Basic info) in the stack's secret (ClientSecretArn), or give \
                 the right --secret"
                    .to_owned(),
            ),
            _ => Err(format!(
                "expected 200 {{\"status\":\"pong\"}}, got {status} {body}"
            )),
        },
    );
    let forged = timed(
        "forged ping",
        &|| post(&small, &forged_small),
        &|status, body| match status {
            401 if body.contains("invalid_signature") => Ok(()),
            200..=299 => {
                Err("a forged signature was accepted: anyone can post notifications".to_owned())
            }
            _ => Err(format!(
                "expected 401 invalid_signature, got {status} {body}"
            )),
        },
    );
    let oversized = timed(
        "signed ping over 1 MiB",
        &|| post(&large, &signed_large),
        &|status, body| match status {
            // 413 without a payload bucket; with one, the ping is answered.
            413 if body.contains("payload_too_large") => Ok(()),
            200 if body.contains("pong") => Ok(()),
            401 => Err("refused as invalid_signature (see the signed ping)".to_owned()),
            _ => Err(format!(
                "expected 413 payload_too_large (or 200 pong with a payload bucket), got {status} {}",
                body.chars().take(200).collect::<String>()
            )),
        },
    );
    vec![head, signed, forged, oversized]
}

fn expect(status: u16, wanted: u16, otherwise: &str) -> Result<(), String> {
    if status == wanted {
        Ok(())
    } else {
        Err(format!("expected {wanted}, got {status}: {otherwise}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oversized_ping_is_over_the_sqs_limit_and_a_valid_envelope() {
        let large = ping(MAX_MESSAGE_BYTES);
        assert!(large.len() > MAX_MESSAGE_BYTES);
        let parsed: serde_json::Value = serde_json::from_slice(&large).expect("json");
        assert_eq!(parsed["topic"], "ping");
        assert!(parsed["id"].is_null());
    }

    #[test]
    fn lines_say_what_is_wrong() {
        let checked = Checked {
            name: "signed ping",
            answer: "401".into(),
            took: Duration::from_millis(12),
            verdict: Err("a stale secret".into()),
        };
        assert_eq!(
            checked.line(),
            "✗ signed ping                       12 ms  401: a stale secret"
        );
        let nothing = Checked {
            answer: "---".into(),
            verdict: Ok(()),
            ..checked
        };
        assert!(nothing.line().starts_with("✓") && nothing.line().contains("---"));
    }
}
