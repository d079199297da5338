//! The contract's rules restated the slow, obvious way: the oracle that property tests and fuzzers hold the real code to.
//!
//! [`valid_envelope`] is written from the sentence in `CONTRACT.md` that
//! defines a valid envelope, over a fully built `serde_json::Value`, sharing
//! no code with the one-pass parser in `intercom_webhook::envelope`. Where the
//! two disagree on any input, one of them is wrong.
//!
//! One rule is the project's own and not the contract's: a field the envelope
//! needs that appears twice is refused (a `Value` keeps the last one, so it
//! cannot see this). [`has_duplicate_envelope_field`] finds those inputs, and
//! [`parser_agrees`] is the comparison property tests and fuzzers make.

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

/// Compares the one-pass parser with the contract on `body`: the same
/// verdict (an envelope field twice is always refused, the project's own
/// rule), and on acceptance the same topic, id, app_id and created_at. Its
/// hand-written fast path and its serde path must also give the same result,
/// error included.
/// `Err` says how they disagree.
pub fn parser_agrees(body: &[u8]) -> Result<(), String> {
    let parsed = Envelope::parse_unverified(body);
    // The hand-written fast path must read exactly what serde's visitors read.
    let by_serde = Envelope::parse_with_serde(body);
    if parsed != by_serde {
        return Err(format!("fast path {parsed:?}, serde path {by_serde:?}"));
    }
    if has_duplicate_envelope_field(body) {
        return match parsed {
            Ok(_) => Err("a duplicated envelope field was accepted".into()),
            Err(_) => Ok(()),
        };
    }
    let verdict = valid_envelope(body);
    let Ok(envelope) = parsed else {
        return match verdict {
            Ok(()) => Err(format!("parser {parsed:?}, contract valid")),
            Err(_) => Ok(()),
        };
    };
    if let Err(rule) = verdict {
        return Err(format!(
            "parser accepted {envelope:?}, contract refuses `{rule}`"
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let contract = (
        value["topic"].as_str(),
        value.get("id").and_then(Value::as_str),
        value["app_id"].as_str(),
        value["created_at"].as_i64(),
    );
    let read = (
        Some(envelope.topic.as_ref()),
        envelope.id.as_deref(),
        Some(envelope.app_id.as_ref()),
        Some(envelope.created_at),
    );
    if contract == read {
        Ok(())
    } else {
        Err(format!("parser read {read:?}, the body says {contract:?}"))
    }
}

/// Whether `body` is a JSON object in which one of the fields the envelope
/// reads (`type`, `topic`, `id`, `app_id`, `created_at`, `data`, and `item`
/// inside `data`) appears more than once.
pub fn has_duplicate_envelope_field(body: &[u8]) -> bool {
    const TOP: [&str; 6] = ["type", "topic", "id", "app_id", "created_at", "data"];
    let Ok(top) = serde_json::from_slice::<Pairs>(body) else {
        return false;
    };
    if repeats(&top.0, &TOP) {
        return true;
    }
    top.0
        .iter()
        .filter(|(key, _)| key == "data")
        .any(
            |(_, data)| match serde_json::from_str::<Pairs>(data.get()) {
                Ok(inner) => repeats(&inner.0, &["item"]),
                Err(_) => false,
            },
        )
}

fn repeats(pairs: &[(String, Box<serde_json::value::RawValue>)], names: &[&str]) -> bool {
    names
        .iter()
        .any(|name| pairs.iter().filter(|(key, _)| key == name).count() > 1)
}

/// A JSON object as its key/value pairs in order, duplicates kept.
struct Pairs(Vec<(String, Box<serde_json::value::RawValue>)>);

impl<'de> serde::Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> serde::de::Visitor<'de> for PairsVisitor {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
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

    #[test]
    fn duplicates_are_found_at_the_top_and_in_data_only() {
        assert!(has_duplicate_envelope_field(
            br#"{"topic":"a","topic":"b"}"#
        ));
        assert!(has_duplicate_envelope_field(
            br#"{"data":{"item":{},"item":{}}}"#
        ));
        assert!(!has_duplicate_envelope_field(
            br#"{"links":1,"links":2,"data":{"item":{"id":1,"id":2}}}"#
        ));
        assert!(!has_duplicate_envelope_field(b"not json"));
    }
}
