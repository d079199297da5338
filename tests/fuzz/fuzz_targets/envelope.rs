//! Envelope parsing: never panics, and accepts exactly what the contract calls valid.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(disagreement) = intercom_fixtures::contract::parser_agrees(data) {
        panic!("{disagreement}");
    }
});
