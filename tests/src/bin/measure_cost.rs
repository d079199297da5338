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
//! X-Ray's share of traces (`Tracing=Active` only) is its fixed Lambda
//! sampling at `COST_RATE` notifications a second (100). Lambda durations
//! are this machine's against moto, at the template's memory sizes, priced
//! at arm64.
//!
//! Prints one Markdown table per configuration and workload, side by side
//! per million, then **the month's bill** of each configuration at 100 k,
//! 1 M, 10 M and 100 M notifications a month (`pipeline_tests::monthly`:
//! the per-request lines scaled, the rate-dependent ones modelled at each
//! volume, the template's fixed items), the defaults' line by line, and the
//! goals (the tables in BENCHMARKS.md). Exits non-zero if a count at the
//! proxy differs from moto's own log or a record failed.
//!
//! Run: `cargo build --release -p webhook-receiver -p topic-processor &&
//! cargo run --release -p pipeline-tests --bin measure-cost`.

use std::collections::BTreeMap;
use std::io::Write as _;

use pipeline_tests::cost::{Front, Line, PRICES_DATED, Usage};
use pipeline_tests::load::{mix, setting};
use pipeline_tests::metered::{self, DEFAULTS, STACKS, Stack};
use pipeline_tests::monthly::{self, Kind, Month, VOLUMES};

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
    // What the month's custom-metric line is made of: each distinct metric
    // (name and dimension values) the run's EMF documents published.
    let metrics: Vec<&str> = usage.metrics.keys().map(String::as_str).collect();
    say(&format!(
        "
Custom metrics the run published: {}{}.",
        metrics.len(),
        if metrics.is_empty() {
            String::new()
        } else {
            format!(" ({})", metrics.join(", "))
        }
    ));
}

/// Runs `stack`; prints its table; returns whether every count matched
/// moto, and its bill.
async fn measure(
    stack: &Stack,
    workload: &str,
    deliveries: &[pipeline_tests::load::Delivery],
    rate: f64,
) -> (bool, Usage) {
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
    (matched, run.usage)
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

/// Dollars, to the cent.
fn dollars(amount: f64) -> String {
    format!("{amount:.2}")
}

/// The month's bill of every run at every volume, the defaults' line by
/// line, and the goals.
fn months(runs: &[(Stack, &str, Usage)]) {
    say(&format!(
        "\n### What a month costs ($ a month; us-east-1 list prices of {PRICES_DATED}, no free tier)\n"
    ));
    let volumes: Vec<String> = VOLUMES.iter().map(|v| volume_name(*v)).collect();
    say(&format!(
        "| configuration (workload) | {} | $ per million at 100 M | functions' own share (most) |",
        volumes.join(" | ")
    ));
    say(&format!(
        "| --- |{} ---: | ---: |",
        " ---: |".repeat(VOLUMES.len())
    ));
    let bills = |stack: &Stack, usage: &Usage| -> Vec<Month> {
        VOLUMES
            .iter()
            .map(|v| monthly::month(usage, stack, *v))
            .collect()
    };
    for (stack, workload, usage) in runs {
        let months = bills(stack, usage);
        let cells: Vec<String> = months.iter().map(|m| dollars(m.total())).collect();
        let share = months.iter().map(Month::ours).fold(0.0, f64::max);
        say(&format!(
            "| {} ({workload}) | {} | {:.2} | {:.0} % |",
            stack.name,
            cells.join(" | "),
            months.last().map_or(0.0, Month::per_million),
            share * 100.0
        ));
    }
    say(
        "\nThe same with AWS's always-free tier taken off (Lambda, SQS, CloudWatch, X-Ray; if nothing else in the account uses it):\n",
    );
    say(&format!(
        "| configuration (workload) | {} |",
        volumes.join(" | ")
    ));
    say(&format!("| --- |{}", " ---: |".repeat(VOLUMES.len())));
    for (stack, workload, usage) in runs {
        let cells: Vec<String> = bills(stack, usage)
            .iter()
            .map(|m| dollars(m.total() - monthly::always_free(m, stack)))
            .collect();
        say(&format!(
            "| {} ({workload}) | {} |",
            stack.name,
            cells.join(" | ")
        ));
    }
    let Some((_, _, defaults)) = runs
        .iter()
        .find(|(s, w, _)| s.name == DEFAULTS.name && *w == "mix")
    else {
        return;
    };
    let months = bills(&DEFAULTS, defaults);
    say("\n### The defaults' month, line by line (mix; $ a month)\n");
    say(&format!("| component | kind | {} |", volumes.join(" | ")));
    say(&format!("| --- | --- |{}", " ---: |".repeat(VOLUMES.len())));
    for line in &months[0].lines {
        let cells: Vec<String> = months
            .iter()
            .map(|m| m.line(&line.component).map_or(0.0, |l| l.dollars))
            .map(|d| format!("{d:.3}"))
            .collect();
        let kind = if line.ours {
            format!("{}, ours", line.kind.name())
        } else {
            line.kind.name().to_owned()
        };
        say(&format!(
            "| {} | {kind} | {} |",
            line.component,
            cells.join(" | ")
        ));
    }
    let totals: Vec<String> = months
        .iter()
        .map(|m| format!("**{}**", dollars(m.total())))
        .collect();
    say(&format!("| **total** | | {} |", totals.join(" | ")));
    for kind in [Kind::PerRequest, Kind::Rate, Kind::Fixed] {
        let cells: Vec<String> = months
            .iter()
            .map(|m| {
                dollars(
                    m.lines
                        .iter()
                        .filter(|l| l.kind == kind)
                        .map(|l| l.dollars)
                        .sum(),
                )
            })
            .collect();
        say(&format!(
            "| of which {} | | {} |",
            kind.name(),
            cells.join(" | ")
        ));
    }

    say("\n### Goals\n");
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    let month_1m = monthly::month(defaults, &DEFAULTS, 1e6);
    let at_1m = month_1m.total();
    let free_1m = at_1m - monthly::always_free(&month_1m, &DEFAULTS);
    say(&format!(
        "- defaults at 1 M a month, everything in: ${at_1m:.2} at list prices, ${free_1m:.2} with the always-free tier (goal ≤ $10): {} at list, {} with the free tier",
        verdict(at_1m <= 10.0),
        verdict(free_1m <= 10.0)
    ));
    let at_100m = monthly::month(defaults, &DEFAULTS, 1e8).per_million();
    say(&format!(
        "- defaults at 100 M a month: ${at_100m:.2} per million (goal ≤ $5.00): {}",
        verdict(at_100m <= 5.0)
    ));
    if let Some((stack, _, usage)) = runs
        .iter()
        .find(|(s, w, _)| s.front == Front::FunctionUrl && *w == "mix")
    {
        let url = monthly::month(usage, stack, 1e8).per_million();
        say(&format!(
            "- function URL at 100 M a month: ${url:.2} per million (goal ≤ $4.00): {}",
            verdict(url <= 4.0)
        ));
        // What teams build instead: a function behind its URL that checks
        // the signature and puts the notification on a bus, nothing else
        // (no queue, no idempotency, no order, no archive, no alarms): the
        // receiver's own lines of this run, EventBridge's, and one secret.
        let bare: Vec<String> = VOLUMES
            .iter()
            .map(|v| {
                let month = monthly::month(usage, stack, *v);
                let per_request: f64 = month
                    .lines
                    .iter()
                    .filter(|l| {
                        l.component.starts_with("Lambda webhook-receiver")
                            || l.component == "CloudWatch Logs: webhook-receiver log lines"
                            || l.component == "EventBridge PutEvents"
                    })
                    .map(|l| l.dollars)
                    .sum();
                let secret = month
                    .line("Secrets Manager secrets")
                    .map_or(0.0, |l| l.dollars);
                format!("{} ${:.2}", volume_name(*v), per_request + secret)
            })
            .collect();
        say(&format!(
            "- for comparison, a bare function URL → EventBridge (the receiver's requests, duration and log lines, the bus's events, one secret; no queue, idempotency, order, archive or alarms): {}",
            bare.join(", ")
        ));
    }
    let shares: Vec<String> = months
        .iter()
        .map(|m| format!("{} {:.0} %", volume_name(m.volume), m.ours() * 100.0))
        .collect();
    let most = months.iter().map(Month::ours).fold(0.0, f64::max);
    say(&format!(
        "- the functions' own share (duration, logs, metrics), defaults: {} (goal ≤ 15 % at every volume): {}",
        shares.join(", "),
        verdict(most <= 0.15)
    ));
    // The processor's duration here is mostly its wait on moto (a Python
    // server on the same cores), not what it waits on AWS: the share
    // without the functions' duration, to read beside it.
    let without: Vec<String> = months
        .iter()
        .map(|m| {
            let duration: f64 = m
                .lines
                .iter()
                .filter(|l| l.component.ends_with("duration"))
                .map(|l| l.dollars)
                .sum();
            let ours: f64 = m.lines.iter().filter(|l| l.ours).map(|l| l.dollars).sum();
            format!(
                "{} {:.0} %",
                volume_name(m.volume),
                (ours - duration) / (m.total() - duration) * 100.0
            )
        })
        .collect();
    say(&format!(
        "- the same without the functions' duration (logs and metrics only): {}",
        without.join(", ")
    ));
}

fn volume_name(volume: f64) -> String {
    if volume >= 1e6 {
        format!("{} M", volume / 1e6)
    } else {
        format!("{} k", volume / 1e3)
    }
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
    let mut runs_done: Vec<(Stack, &str, Usage)> = Vec::new();
    let by_url = STACKS
        .iter()
        .find(|s| s.front == Front::FunctionUrl)
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
        let (matched, usage) = measure(&stack, workload, deliveries, rate).await;
        all_matched &= matched;
        columns.push((format!("{} ({workload})", stack.name), usage.bill()));
        runs_done.push((stack, workload, usage));
    }
    matrix(&columns);
    months(&runs_done);
    if !all_matched {
        std::process::exit(1);
    }
}
