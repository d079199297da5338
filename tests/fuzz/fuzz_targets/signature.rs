//! `X-Hub-Signature` parsing and verification: accepted exactly when the header spells the HMAC of one configured secret.
//!
//! Input: the header, a newline, then the body.
#![no_main]

use hmac::{Hmac, KeyInit, Mac};
use intercom_webhook::signature::Verifier;
use libfuzzer_sys::fuzz_target;
use pipeline_fuzz::SECRETS;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let verifier = Verifier::new(SECRETS).expect("secrets");
    let accepted = verifier.verify(body, Some(header)).is_ok();
    let spells_a_right_one = SECRETS.iter().any(|secret| {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        let right = format!("sha1={}", hex::encode(mac.finalize().into_bytes()));
        std::str::from_utf8(header)
            .is_ok_and(|h| h.trim_matches([' ', '\t']).eq_ignore_ascii_case(&right))
    });
    assert_eq!(accepted, spells_a_right_one);
    assert!(verifier.verify(body, None).is_err());
});
