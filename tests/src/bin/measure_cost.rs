//! Counts what a million notifications cost, on the wire: each stack configuration run end to end on the release functions, every billable unit counted at the proxy in front of moto and checked against moto's own request log, then priced.
//!
//! Two workloads per configuration:
//! - **mix**: `COST_NOTIFICATIONS` deliveries (500 by default) from the
//!   load test's mix (every topic, 6% with dozens to hundreds of
//!   conversation parts, 1% forged, 1% invalid, pings), plus Intercom's
//!   retry of every 50th accepted one (2%: the same notification again,
//!   `delivery_attempts` 2);
//! - **4 KB**: conversation replies of 4 KB each, the size the goal is
//!   stated for.
//!
//! X-Ray's share of traces is its default sampling at `COST_RATE`
//! notifications a second (100). Lambda durations are this machine's
//! against moto, at the template's memory sizes, priced at arm64.
//!
//! Prints one Markdown table per configuration and workload (the tables in
//! BENCHMARKS.md) and exits non-zero if a count at the proxy differs from
//! moto's own log or a record failed.
//!
//! Run: `cargo build --release -p webhook-receiver -p topic-processor &&
//! cargo run --release -p pipeline-tests --bin measure-cost`.

use std::collections::BTreeMap;
use std::io::Write as _;

use pipeline_tests::cost::{Line, PRICES_DATED, Usage};
use pipeline_tests::load::{mix, setting};
use pipeline_tests::metered::{self, DEFAULTS, STACKS, Stack};

fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Prints the bill of `usage` as a table.
fn table(usage: &Usage) {
    say("| component | units per notification | $ per million |");
    say("| --- | ---: | ---: |");
    for line in usage.bill() {
        say(&format!(
            "| {} | {:.4} {} | {:.3} |",
            line.component, line.per_notification, line.unit, line.per_million
        ));
    }
    let total = usage.total();
    say(&format!("| **total** | | **{total:.2}** |"));
    let (bytes, month) = usage.storage_per_million();
    say(&format!(
        "\nS3 keeps {:.2} GiB per million notifications: ${month:.3} a month for as long as they are kept.",
        bytes / (1024.0 * 1024.0 * 1024.0)
    ));
}

/// Runs `stack`; prints its table; returns whether every count matched
/// moto, and its bill.
async fn measure(
    stack: &Stack,
    workload: &str,
    deliveries: &[pipeline_tests::load::Delivery],
    rate: f64,
) -> (bool, Vec<Line>) {
    let run = metered::run(stack, deliveries, rate).await;
    say(&format!(
        "\n### {} — {workload} ({} deliveries)\n",
        stack.name,
        deliveries.len()
    ));
    table(&run.usage);
    let mut metered: BTreeMap<(String, String), usize> = BTreeMap::new();
    for call in run.usage.calls.iter().filter(|c| c.forwarded) {
        *metered
            .entry((call.caller.clone(), call.action.clone()))
            .or_default() += 1;
    }
    let mut latencies: BTreeMap<&str, Vec<std::time::Duration>> = BTreeMap::new();
    for call in run
        .usage
        .calls
        .iter()
        .filter(|c| c.caller == "topic-processor")
    {
        latencies
            .entry(call.action.as_str())
            .or_default()
            .push(call.elapsed);
    }
    let medians: Vec<String> = latencies
        .iter_mut()
        .map(|(action, times)| {
            times.sort();
            format!(
                "{action} {:.1} ms",
                times[times.len() / 2].as_secs_f64() * 1e3
            )
        })
        .collect();
    say(&format!(
        "\nThe processor's calls took, at the proxy (moto's time; the Lambda duration above is made of these): median {}.",
        medians.join(", ")
    ));
    let matched = metered == run.recorded && run.failed_records == 0;
    if !matched {
        say(&format!(
            "\nMISMATCH: at the proxy {metered:?}\nin moto's log {:?}\nfailed records {}",
            run.recorded, run.failed_records
        ));
    } else {
        let requests: usize = metered.values().sum();
        say(&format!(
            "\n{requests} AWS requests by the stack, the same count per caller and action in moto's own log."
        ));
    }
    (matched, run.usage.bill())
}

/// Every configuration side by side: a row per component, a column per
/// run, dollars per million (the table in BENCHMARKS.md).
fn matrix(columns: &[(String, Vec<Line>)]) {
    let mut components: Vec<&str> = Vec::new();
    for (_, bill) in columns {
        for line in bill {
            if !components.contains(&line.component.as_str()) {
                components.push(&line.component);
            }
        }
    }
    say("\n### Side by side ($ per million)\n");
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    say(&format!("| component | {} |", names.join(" | ")));
    say(&format!("| --- |{}", " ---: |".repeat(columns.len())));
    for component in components {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, bill)| {
                bill.iter()
                    .find(|l| l.component == component)
                    .map_or("—".to_owned(), |l| format!("{:.2}", l.per_million))
            })
            .collect();
        say(&format!("| {component} | {} |", cells.join(" | ")));
    }
    let totals: Vec<String> = columns
        .iter()
        .map(|(_, bill)| format!("**{:.2}**", bill.iter().map(|l| l.per_million).sum::<f64>()))
        .collect();
    say(&format!("| **total** | {} |", totals.join(" | ")));
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count = setting("COST_NOTIFICATIONS", 500);
    let rate = setting("COST_RATE", 100) as f64;
    say(&format!(
        "Prices: us-east-1 list prices of {PRICES_DATED} (tests/src/cost.rs); X-Ray sampling at {rate} notifications/s."
    ));
    let realistic = metered::with_retries(mix(count, "cost", 0x5eed), 50);
    let four_kb = metered::sized(count, 4096, "cost4k");
    let mut all_matched = true;
    let mut columns: Vec<(String, Vec<Line>)> = Vec::new();
    let by_url = STACKS
        .iter()
        .find(|s| s.front == pipeline_tests::cost::Front::FunctionUrl)
        .expect("a function URL configuration");
    let by_object = STACKS
        .iter()
        .find(|s| s.archive && !s.archive_stream)
        .expect("an object-layout configuration");
    let runs = STACKS.iter().map(|s| (*s, "mix")).chain(
        [DEFAULTS, *by_object, *by_url]
            .into_iter()
            .map(|s| (s, "4 KB")),
    );
    for (stack, workload) in runs {
        let deliveries = if workload == "mix" {
            &realistic
        } else {
            &four_kb
        };
        let (matched, bill) = measure(&stack, workload, deliveries, rate).await;
        all_matched &= matched;
        columns.push((format!("{} ({workload})", stack.name), bill));
    }
    matrix(&columns);
    if !all_matched {
        std::process::exit(1);
    }
}
