//! `measure` and `measure-processor`, the end-to-end benchmarks, run: moto behind nginx (keep-alive), the release receiver and `sqs-floor`, or the processor cold, with and without its table, and with panicking handlers, every request answered.
//!
//! The figures themselves are for `BENCHMARKS.md`, not for assertions (they
//! depend on the machine); this keeps the tool that produces them working.

use std::process::Command;

use pipeline_tests::function::binary;

#[test]
fn measure_runs_end_to_end_against_the_sdk_floor() {
    let output = Command::new(binary("measure"))
        .env("MEASURE_COLD_STARTS", "2")
        .env("MEASURE_REQUESTS", "10")
        .env("MEASURE_ROUNDS", "2")
        .output()
        .expect("run measure");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "moto behind nginx keep-alive",
        "queued request",
        "METRICS=off",
        "metrics cost",
        "ping",
        "sqs-floor",
        "the floor",
        "init (exec to first poll)",
        "sqs-floor config + first send",
        "peak RSS",
        "zip",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}");
    }
}

#[test]
fn measure_processor_runs_and_counts_the_dynamodb_calls() {
    let output = Command::new(binary("measure-processor"))
        .env("MEASURE_REQUESTS", "3")
        .env("MEASURE_ROUNDS", "1")
        .env("MEASURE_COLD_STARTS", "2")
        .output()
        .expect("run measure-processor");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // One round: 3 new single records and 50 in batches, then the 3 again:
    // one put per record, one update per new record, nothing deleted.
    let words = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for line in [
        "init (exec to first poll)",
        "peak RSS after a batch",
        "zip",
        "without a table",
        "new notification",
        "duplicate",
        "CPU per record",
        "for 53 new records and 3 duplicates",
        "PutItem 56",
        "UpdateItem 53",
        "DeleteItem 0",
        "FRESHNESS=tag",
        "for 50 new records",
        "UpdateItem 100 (2.00 per record)",
        "when it panics",
    ] {
        assert!(words.contains(line), "no `{line}` in:\n{stdout}");
    }
}
