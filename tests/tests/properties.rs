//! Property tests: signatures accept exactly the right signer, and envelope parsing accepts exactly what the contract calls valid.
//!
//! Signatures are checked against an HMAC computed here with the `hmac` crate
//! directly; envelopes against `intercom_fixtures::contract`, the contract's rules
//! restated over `serde_json::Value`. `PROPTEST_CASES` raises the case count
//! (CI runs the default 256 per property; the figures in BENCHMARKS.md come
//! from 100,000).

use hmac::{Hmac, KeyInit, Mac};
use intercom_webhook::signature::{SignatureError, Verifier};
use pipeline_tests::contract::parser_agrees;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn secrets() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 1..80), 1..4)
}

/// The forms of one right signature a sender may use: the prefix and hex
/// digits in either case, white space around the value.
fn spellings(hex_digits: &str) -> Vec<String> {
    vec![
        format!("sha1={hex_digits}"),
        format!("SHA1={}", hex_digits.to_ascii_uppercase()),
        format!("  sha1={hex_digits}\t"),
    ]
}

proptest! {
    #[test]
    fn any_body_signed_with_any_configured_secret_verifies(
        secrets in secrets(),
        pick in any::<prop::sample::Index>(),
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let verifier = Verifier::new(&secrets).expect("non-empty secrets");
        let secret = &secrets[pick.index(secrets.len())];
        for header in spellings(&hmac_hex(secret, &body)) {
            let verified = verifier.verify(&body, Some(header.as_bytes()));
            prop_assert_eq!(verified.map(|b| b.as_bytes()), Ok(&body[..]), "{}", header);
        }
    }

    #[test]
    fn any_single_byte_change_of_the_body_fails(
        secrets in secrets(),
        body in prop::collection::vec(any::<u8>(), 1..2048),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let verifier = Verifier::new(&secrets).expect("non-empty secrets");
        let header = format!("sha1={}", hmac_hex(&secrets[0], &body));
        let mut changed = body.clone();
        changed[at.index(body.len())] ^= flip;
        prop_assert_eq!(
            verifier.verify(&changed, Some(header.as_bytes())).err(),
            Some(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_single_byte_change_of_the_digest_fails(
        secret in prop::collection::vec(any::<u8>(), 1..80),
        body in prop::collection::vec(any::<u8>(), 0..512),
        at in 0usize..20,
        flip in 1u8..=255,
    ) {
        let verifier = Verifier::new([&secret]).expect("non-empty secret");
        let mut digest = hex::decode(hmac_hex(&secret, &body)).expect("hex");
        digest[at] ^= flip;
        let header = format!("sha1={}", hex::encode(digest));
        prop_assert_eq!(
            verifier.verify(&body, Some(header.as_bytes())).err(),
            Some(SignatureError::Mismatch)
        );
    }

    /// Headers near the right one (one byte replaced, cut short, extended,
    /// wrong prefix) and arbitrary ones: accepted exactly when the header
    /// spells the right digest.
    #[test]
    fn no_signature_string_but_the_right_one_is_accepted(
        secret in prop::collection::vec(any::<u8>(), 1..40),
        body in prop::collection::vec(any::<u8>(), 0..256),
        mutation in 0u8..5,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        noise in prop::collection::vec(any::<u8>(), 0..60),
    ) {
        let verifier = Verifier::new([&secret]).expect("non-empty secret");
        let right = format!("sha1={}", hmac_hex(&secret, &body));
        let mut header = right.clone().into_bytes();
        match mutation {
            0 => { let i = at.index(header.len()); header[i] = byte; }
            1 => header.truncate(at.index(header.len())),
            2 => header.push(byte),
            3 => header = [b"sha256=".as_slice(), &header[5..]].concat(),
            _ => header = noise,
        }
        let spells_right = std::str::from_utf8(&header)
            .is_ok_and(|h| h.trim_matches([' ', '\t']).eq_ignore_ascii_case(&right));
        let accepted = verifier.verify(&body, Some(&header)).is_ok();
        prop_assert_eq!(accepted, spells_right, "{:?}", String::from_utf8_lossy(&header));
    }
}

/// A JSON value of any type, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value that breaks a field of the wrong type, or is just any JSON:
/// `None` removes the field.
fn near_miss() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        Just(Some(json!(1.5))),
        Just(Some(json!(7))),
        Just(Some(json!(u64::MAX))),
        Just(Some(json!("7"))),
        Just(Some(json!(""))),
        Just(Some(json!({}))),
        Just(Some(json!([]))),
        any_json().prop_map(Some),
    ]
}

/// The envelope fields (and `data.item`), any of which a case may break.
const BREAKABLE: [&str; 7] = [
    "type",
    "topic",
    "id",
    "app_id",
    "created_at",
    "data",
    "data.item",
];

/// Envelopes at or next to the valid ones: every field right, then at most
/// one of them replaced by a near miss (so each case tests one rule, and a
/// rule the parser gets wrong shows within proptest's default case count),
/// with extra fields around.
fn envelopes() -> impl Strategy<Value = Value> {
    let topic = prop_oneof![
        Just("conversation.user.created".to_owned()),
        Just("ping".to_owned()),
        ".{1,20}",
    ];
    let id = prop_oneof![
        4 => "notif_[a-z0-9-]{1,12}".prop_map(Value::String),
        1 => Just(Value::Null),
    ];
    let item = prop_oneof![
        Just(json!({})),
        any_json().prop_filter("an object", Value::is_object),
        Just(json!({"type": "conversation", "id": 12, "ticket": {"id": "5"}})),
    ];
    (
        topic,
        id,
        "[a-z0-9]{0,10}",
        any::<i64>(),
        item,
        prop::collection::btree_map("[a-z]{1,6}", any_json(), 0..3),
        prop::collection::btree_map("[a-z_]{1,10}", any_json(), 0..4),
        prop::option::weighted(0.85, (0..BREAKABLE.len(), near_miss())),
    )
        .prop_map(
            |(topic, id, app_id, created_at, item, data_extra, extra, broken)| {
                let mut data: Map<String, Value> = data_extra.into_iter().collect();
                data.insert("item".into(), item);
                let mut envelope: Map<String, Value> = extra.into_iter().collect();
                for (name, value) in [
                    ("type", json!("notification_event")),
                    ("topic", Value::String(topic)),
                    ("id", id),
                    ("app_id", Value::String(app_id)),
                    ("created_at", Value::from(created_at)),
                    ("data", Value::Object(data)),
                ] {
                    envelope.insert(name.into(), value);
                }
                if let Some((at, value)) = broken {
                    let (object, name) = match BREAKABLE[at] {
                        "data.item" => (
                            envelope["data"].as_object_mut().expect("data is an object"),
                            "item",
                        ),
                        name => (&mut envelope, name),
                    };
                    match value {
                        Some(value) => object.insert(name.into(), value),
                        None => object.remove(name),
                    };
                }
                Value::Object(envelope)
            },
        )
}

/// The parser and the contract agree on `bytes` (see `parser_agrees`).
fn agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
    parser_agrees(bytes).map_err(TestCaseError::fail)
}

proptest! {
    #[test]
    fn envelope_parsing_accepts_exactly_what_the_contract_calls_valid(envelope in envelopes()) {
        agrees(&serde_json::to_vec(&envelope).expect("serialisable"))?;
        agrees(&serde_json::to_vec_pretty(&envelope).expect("serialisable"))?;
    }

    #[test]
    fn envelope_parsing_agrees_on_mutated_bytes(
        envelope in envelopes(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = serde_json::to_vec(&envelope).expect("serialisable");
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        agrees(&bytes)?;
    }

    #[test]
    fn envelope_parsing_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        agrees(&bytes)?;
    }

    #[test]
    fn envelope_parsing_agrees_at_any_nesting_depth(depth in 100usize..160, wrap in 0u8..3) {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let body = match wrap {
            0 => format!(r#"{{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{{"item":{{"x":{nested}}}}}}}"#),
            1 => format!(r#"{{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{{"item":{{}}}},"links":{nested}}}"#),
            _ => format!(r#"{{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{{"item":{{}},"x":{nested}}}}}"#),
        };
        agrees(body.as_bytes())?;
    }
}
