//! The contract's rules restated the slow, obvious way: the oracle that property tests and fuzzers hold the real code to.
//!
//! [`valid_envelope`] is written from the sentence in `CONTRACT.md` that
//! defines a valid envelope, over a fully built `serde_json::Value`, sharing
//! no code with the parser in `intercom_webhook::envelope`. Where the two
//! disagree on any input, one of them is wrong; [`parser_agrees`] is the
//! comparison property tests and fuzzers make.

use intercom_webhook::envelope::Envelope;
use serde_json::Value;

/// What the contract says of `body`: `Ok` for a valid notification envelope,
/// otherwise the rule it breaks.
pub fn valid_envelope(body: &[u8]) -> Result<(), &'static str> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "not JSON")?;
    let object = value.as_object().ok_or("not an object")?;
    if object.get("type").and_then(Value::as_str) != Some("notification_event") {
        return Err("type");
    }
    let topic = object
        .get("topic")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("topic")?;
    if !object.get("app_id").is_some_and(Value::is_string) {
        return Err("app_id");
    }
    // "An integer": epoch seconds, so one that fits in an i64 (a larger one
    // could not be a time; the README says so).
    if !object.get("created_at").is_some_and(Value::is_i64) {
        return Err("created_at");
    }
    let data = object
        .get("data")
        .and_then(Value::as_object)
        .ok_or("data")?;
    if !data.get("item").is_some_and(Value::is_object) {
        return Err("data.item");
    }
    match object.get("id") {
        Some(Value::String(_)) => Ok(()),
        None | Some(Value::Null) if topic == "ping" => Ok(()),
        _ => Err("id"),
    }
}

/// Compares the envelope parser with the contract on `body`: the same
/// verdict, and on acceptance the same topic, id, app_id, created_at and item.
/// `Err` says how they disagree.
pub fn parser_agrees(body: &[u8]) -> Result<(), String> {
    let parsed = Envelope::parse_unverified(body);
    let verdict = valid_envelope(body);
    let envelope = match (parsed, verdict) {
        (Ok(envelope), Ok(())) => envelope,
        (Err(_), Err(_)) => return Ok(()),
        (Ok(envelope), Err(rule)) => {
            return Err(format!(
                "parser accepted {envelope:?}, contract refuses `{rule}`"
            ));
        }
        (Err(error), Ok(())) => return Err(format!("parser refused ({error}), contract valid")),
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let contract = (
        value["topic"].as_str(),
        value.get("id").and_then(Value::as_str),
        value["app_id"].as_str(),
        value["created_at"].as_i64(),
        value["data"]["item"].as_object(),
    );
    let read = (
        Some(envelope.topic.as_str()),
        envelope.id.as_deref(),
        Some(envelope.app_id.as_str()),
        Some(envelope.created_at),
        Some(&envelope.item),
    );
    if contract == read {
        Ok(())
    } else {
        Err(format!("parser read {read:?}, the body says {contract:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_agrees_with_the_contract_on_plain_cases() {
        let good = br#"{"type":"notification_event","topic":"x","id":"n","app_id":"a","created_at":1,"data":{"item":{}}}"#;
        assert_eq!(valid_envelope(good), Ok(()));
        let ping = br#"{"type":"notification_event","topic":"ping","id":null,"app_id":"a","created_at":1,"data":{"item":{}}}"#;
        assert_eq!(valid_envelope(ping), Ok(()));
        let null_id = br#"{"type":"notification_event","topic":"x","id":null,"app_id":"a","created_at":1,"data":{"item":{}}}"#;
        assert_eq!(valid_envelope(null_id), Err("id"));
        let float = br#"{"type":"notification_event","topic":"x","id":"n","app_id":"a","created_at":1.5,"data":{"item":{}}}"#;
        assert_eq!(valid_envelope(float), Err("created_at"));
        assert_eq!(valid_envelope(b"[]"), Err("not an object"));
    }
}
