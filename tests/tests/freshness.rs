//! Out-of-order notifications through the release processor and moto's DynamoDB: a notification older than one already processed about the same object is tagged or skipped, equal times and other objects are not, the object's item has its TTL, and the setting needs the table.

use std::time::{SystemTime, UNIX_EPOCH};

use intercom_webhook::topic::Topic;
use pipeline_tests::aws_rules::AwsRules;
use pipeline_tests::function::Function;
use pipeline_tests::moto::Moto;
use pipeline_tests::samples;
use pipeline_tests::sqs::{self, Received};
use serde_json::Value;

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("secs")
}

/// A `ticket.state.updated` notification `id` about ticket `ticket`,
/// created `age` seconds ago.
fn ticket_update(id: &str, ticket: &str, age: i64) -> Vec<u8> {
    let mut notification = samples::sample(Topic::TicketStateUpdated);
    notification["id"] = id.into();
    notification["created_at"] = (now() - age).into();
    notification["data"]["item"]["id"] = ticket.into();
    serde_json::to_vec(&notification).expect("json")
}

/// One record per invocation, in order: the record lines, by message id.
async fn deliver(processor: &Function, bodies: &[(&str, Vec<u8>)]) -> Vec<Value> {
    for (message_id, body) in bodies {
        let record = sqs::record(
            message_id,
            std::str::from_utf8(body).expect("utf8"),
            Received::first::<&str, &str>(&[], None),
        );
        let event = serde_json::to_value(sqs::event(vec![record], sqs::QUEUE_ARN)).expect("json");
        let response = processor.invoke(&event).await;
        assert_eq!(response["batchItemFailures"], serde_json::json!([]));
    }
    processor
        .json_logs_when(bodies.len(), |l| l["message"] == "record")
        .await
}

fn line<'l>(lines: &'l [Value], message_id: &str) -> &'l Value {
    lines
        .iter()
        .find(|l| l["message_id"] == message_id)
        .unwrap_or_else(|| panic!("no line for {message_id}: {lines:?}"))
}

/// The handler's own lines: how many times it mirrored a state, and how
/// many times it left an older one alone.
fn mirrored(processor: &Function) -> (usize, usize) {
    let logs = processor.json_logs();
    let count = |message: &str| logs.iter().filter(|l| l["message"] == message).count();
    (
        count("ticket state mirrored"),
        count("ticket state older than the one mirrored; left as it is"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_skip_an_older_notification_about_the_same_ticket_is_stale_and_not_handled() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let processor = Function::start(
        "topic-processor",
        Some(&moto),
        &[
            ("IDEMPOTENCY_TABLE", table.clone()),
            ("FRESHNESS", "skip".to_owned()),
        ],
    )
    .await;
    let newer = ticket_update("n-newer", "42", 60);
    // The same second as the newer: equal, not stale.
    let mut equal: Value = serde_json::from_slice(&newer).expect("json");
    equal["id"] = "n-equal".into();
    let equal = serde_json::to_vec(&equal).expect("json");
    let lines = deliver(
        &processor,
        &[
            ("m-newer", newer.clone()),
            ("m-older", ticket_update("n-older", "42", 120)),
            ("m-equal", equal),
            ("m-other", ticket_update("n-other", "43", 600)),
        ],
    )
    .await;
    let outcome = |id: &str| {
        line(&lines, id)["outcome"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(outcome("m-newer"), "processed");
    assert_eq!(outcome("m-older"), "stale");
    assert_eq!(line(&lines, "m-older")["stale"], true);
    assert_eq!(outcome("m-equal"), "processed", "equal times are not stale");
    assert_eq!(outcome("m-other"), "processed", "another ticket");
    for id in ["m-newer", "m-equal", "m-other"] {
        assert!(line(&lines, id).get("stale").is_none(), "{id}");
    }
    assert_eq!(
        mirrored(&processor),
        (3, 0),
        "the stale one never reached its handler"
    );

    // The object's item: the newest processed, with the idempotency TTL.
    let item = moto
        .idempotency_item(&table, "topic-processor#object#a86dr8yl:ticket:42")
        .await
        .expect("the ticket's item");
    assert_eq!(item["newest_notification_id"], "n-equal");
    let created_at =
        serde_json::from_slice::<Value>(&newer).expect("json")["created_at"].to_string();
    assert_eq!(item["newest_created_at"], created_at);
    let expiration: i64 = item["expiration"].parse().expect("epoch seconds");
    assert!(
        (now() + 86_400 - 60..=now() + 86_400).contains(&expiration),
        "a day from now: {expiration}"
    );
    // The stale record is done: its idempotency item is completed.
    let lock = moto
        .idempotency_item(&table, "topic-processor#n-older")
        .await
        .expect("its item");
    assert_eq!(lock["status"], "COMPLETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tag_everything_runs_and_the_handler_leaves_an_older_state_alone() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let processor = Function::start(
        "topic-processor",
        Some(&moto),
        &[
            ("IDEMPOTENCY_TABLE", table),
            ("FRESHNESS", "tag".to_owned()),
        ],
    )
    .await;
    let lines = deliver(
        &processor,
        &[
            ("m-newer", ticket_update("n-newer", "42", 60)),
            ("m-older", ticket_update("n-older", "42", 120)),
        ],
    )
    .await;
    assert_eq!(line(&lines, "m-newer")["outcome"], "processed");
    assert!(line(&lines, "m-newer").get("stale").is_none());
    assert_eq!(line(&lines, "m-older")["outcome"], "processed");
    assert_eq!(line(&lines, "m-older")["stale"], true);
    assert_eq!(
        mirrored(&processor),
        (1, 1),
        "the handler ran for both, and knew"
    );
    let left = processor
        .json_logs()
        .into_iter()
        .find(|l| l["message"] == "ticket state older than the one mirrored; left as it is")
        .expect("the handler's line");
    assert_eq!(left["newer_notification"], "n-newer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_without_the_idempotency_table_stops_the_start() {
    let mut processor =
        Function::start("topic-processor", None, &[("FRESHNESS", "tag".to_owned())]).await;
    let error = processor.expect_init_error("FRESHNESS").await;
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("IDEMPOTENCY_TABLE")),
        "{error}"
    );
    let mut wrong = Function::start(
        "topic-processor",
        None,
        &[
            ("IDEMPOTENCY_TABLE", "idempotency".to_owned()),
            ("FRESHNESS", "newest-wins".to_owned()),
        ],
    )
    .await;
    wrong.expect_init_error("FRESHNESS").await;
}

/// Two records of one ticket in one batch of a standard queue, run at the
/// same time, many times over: the ticket's newest is the later
/// `created_at` every time, and the newer record is never stale. DynamoDB
/// applies each conditional write atomically and moto does not: the race
/// runs through [`AwsRules`], which keeps AWS's rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_records_of_one_object_racing_on_a_standard_queue_keep_the_newest() {
    let moto = Moto::start().await;
    let aws = AwsRules::start(moto.port).await;
    let table = moto.create_idempotency_table("idempotency").await;
    let processor = Function::start(
        "topic-processor",
        None,
        &[
            ("AWS_ENDPOINT_URL", aws.endpoint()),
            ("IDEMPOTENCY_TABLE", table.clone()),
            ("FRESHNESS", "tag".to_owned()),
        ],
    )
    .await;
    for round in 0..10 {
        let ticket = format!("race-{round}");
        let older = ticket_update(&format!("n-older-{round}"), &ticket, 120);
        let newer = ticket_update(&format!("n-newer-{round}"), &ticket, 60);
        let records: Vec<_> = [("older", older), ("newer", newer)]
            .iter()
            .map(|(which, body)| {
                sqs::record(
                    &format!("m-{which}-{round}"),
                    std::str::from_utf8(body).expect("utf8"),
                    Received::first::<&str, &str>(&[], None),
                )
            })
            .collect();
        let event = serde_json::to_value(sqs::event(records, sqs::QUEUE_ARN)).expect("json");
        assert_eq!(
            processor.invoke(&event).await["batchItemFailures"],
            serde_json::json!([])
        );
        let item = moto
            .idempotency_item(
                &table,
                &format!("topic-processor#object#a86dr8yl:ticket:{ticket}"),
            )
            .await
            .expect("the ticket's item");
        assert_eq!(
            item["newest_notification_id"],
            format!("n-newer-{round}"),
            "round {round}"
        );
    }
    let lines = processor
        .json_logs_when(20, |l| l["message"] == "record")
        .await;
    assert_eq!(lines.len(), 20);
    for line in lines.iter().filter(|l| {
        l["message_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("m-newer"))
    }) {
        assert!(
            line.get("stale").is_none(),
            "the newer is never stale: {line}"
        );
    }
}
