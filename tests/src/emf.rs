//! The CloudWatch EMF documents a function binary printed: each checked against AWS's published schema and the spec's rules, then summed by metric and dimensions.
//!
//! The schema is `tests/schemas/cloudwatch-emf.schema.json` (vendored; see
//! the README beside it). The spec asks more than the schema says: every
//! dimension a directive names is a string member of the root, every metric
//! it names is a number or an array of at most 100 numbers there, and a
//! document is at most 1 MB. [`check`] checks all of it.

use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::function::Function;

static SCHEMA: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let text = include_str!("../schemas/cloudwatch-emf.schema.json");
    let schema: Value = serde_json::from_str(text).expect("the vendored schema is JSON");
    jsonschema::draft7::new(&schema).expect("the vendored schema compiles")
});

/// The lines `function` printed that are EMF documents (they have `_aws`).
pub fn documents(function: &Function) -> Vec<Value> {
    function
        .json_logs()
        .into_iter()
        .filter(|line| line.get("_aws").is_some())
        .collect()
}

/// The [`documents`] of all `functions`, once `ready` says they are all
/// there (or after 10 s, so a missing one fails the caller's assertion
/// rather than hanging): a function prints them before it answers, but this
/// process reads its pipe concurrently.
pub async fn documents_when(
    functions: &[&Function],
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<Value> = functions.iter().flat_map(|f| documents(f)).collect();
        if ready(&found) || std::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Why `document` is not a valid EMF document, if it is not.
pub fn check(document: &Value) -> Result<(), String> {
    let errors: Vec<String> = SCHEMA
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if !errors.is_empty() {
        return Err(format!("schema: {}", errors.join("; ")));
    }
    let size = serde_json::to_vec(document).map_or(0, |v| v.len());
    if size > 1_048_576 {
        return Err(format!("{size} bytes, over 1 MB"));
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    let timestamp = document["_aws"]["Timestamp"].as_i64().unwrap_or_default();
    // CloudWatch takes metrics up to two weeks old and two hours ahead.
    if !(now_ms - 14 * 86_400_000..=now_ms + 2 * 3_600_000).contains(&timestamp) {
        return Err(format!("Timestamp {timestamp} is not now ({now_ms})"));
    }
    for directive in document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for dimension in directive["Dimensions"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|set| set.as_array().into_iter().flatten())
        {
            let name = dimension.as_str().unwrap_or_default();
            if !document[name].is_string() {
                return Err(format!("dimension {name} is not a string member"));
            }
        }
        for metric in directive["Metrics"].as_array().into_iter().flatten() {
            let name = metric["Name"].as_str().unwrap_or_default();
            let valid = match &document[name] {
                Value::Number(_) => true,
                Value::Array(values) => {
                    !values.is_empty() && values.len() <= 100 && values.iter().all(Value::is_number)
                }
                _ => false,
            };
            if !valid {
                return Err(format!(
                    "metric {name} is not a number or up to 100 numbers"
                ));
            }
        }
    }
    Ok(())
}

/// The metric names a document's directives declare.
pub fn metric_names(document: &Value) -> BTreeSet<String> {
    document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["Metrics"].as_array().into_iter().flatten())
        .filter_map(|m| m["Name"].as_str().map(str::to_owned))
        .collect()
}

/// The dimension names of a document's (one) dimension set.
pub fn dimension_names(document: &Value) -> BTreeSet<String> {
    document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["Dimensions"].as_array().into_iter().flatten())
        .flat_map(|set| set.as_array().into_iter().flatten())
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect()
}

/// The values of `metric` in the documents whose dimensions include every
/// one of `dimensions`, one entry per value (a histogram's array counts
/// each of its values).
pub fn values(documents: &[Value], metric: &str, dimensions: &[(&str, &str)]) -> Vec<f64> {
    documents
        .iter()
        .filter(|d| metric_names(d).contains(metric))
        .filter(|d| dimensions.iter().all(|(name, value)| d[*name] == *value))
        .flat_map(|d| match &d[metric] {
            Value::Array(values) => values.iter().filter_map(Value::as_f64).collect::<Vec<_>>(),
            other => other.as_f64().into_iter().collect(),
        })
        .collect()
}

/// The sum of counter `metric` over the documents matching `dimensions`.
pub fn count(documents: &[Value], metric: &str, dimensions: &[(&str, &str)]) -> u64 {
    values(documents, metric, dimensions).iter().sum::<f64>() as u64
}

/// Every value dimension `name` took, in the documents declaring `metric`.
pub fn dimension_values(documents: &[Value], metric: &str, name: &str) -> BTreeSet<String> {
    documents
        .iter()
        .filter(|d| metric_names(d).contains(metric))
        .filter_map(|d| d[name].as_str().map(str::to_owned))
        .collect()
}
