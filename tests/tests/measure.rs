//! `measure`, the end-to-end benchmark, runs: moto behind nginx (keep-alive), the release receiver and `sqs-floor`, every request answered.
//!
//! The figures themselves are for `BENCHMARKS.md`, not for assertions (they
//! depend on the machine); this keeps the tool that produces them working.

use std::process::Command;

use pipeline_tests::function::release_binary;

#[test]
fn measure_runs_end_to_end_against_the_sdk_floor() {
    let output = Command::new(release_binary("measure"))
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
