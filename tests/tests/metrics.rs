//! Metrics and traces through the release binaries: every EMF line valid against AWS's schema, counts equal to the traffic, dimensions from fixed sets, trace headers carried to SQS and onto the processor's record lines.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use intercom_webhook::topic::Topic;
use pipeline_tests::emf;
use pipeline_tests::fixtures::{Request, Shape, padded_body};
use pipeline_tests::function::Function;
use pipeline_tests::load::mix;
use pipeline_tests::moto::Moto;
use pipeline_tests::runtime_api::Outcome;
use pipeline_tests::samples;
use pipeline_tests::sqs::{self, Received};
use serde_json::{Value, json};

/// Every `Answer` the receiver can count a request under (docs/operations.md, Metrics).
const ANSWERS: [&str; 11] = [
    "queued",
    "pong",
    "head",
    "invalid_event",
    "method_not_allowed",
    "forbidden_source",
    "payload_too_large",
    "invalid_signature",
    "invalid_notification",
    "forbidden_app",
    "queue_unavailable",
];
const OUTCOMES: [&str; 5] = ["processed", "unhandled", "duplicate", "stale", "failed"];
const DESTINATIONS: [&str; 2] = ["event_bus", "archive"];
/// Every metric and its unit (docs/operations.md, Metrics).
const UNITS: [(&str, &str); 6] = [
    ("Requests", "Count"),
    ("QueueSendTime", "Milliseconds"),
    ("Records", "Count"),
    ("Lag", "Milliseconds"),
    ("HandlerTime", "Milliseconds"),
    ("DestinationFailures", "Count"),
];

/// A distinct, well-formed X-Ray trace header for request `n`.
fn trace_header(n: usize) -> String {
    format!("Root=1-6751a2b0-{n:024x};Parent={n:016x};Sampled=1")
}

fn root(header: &str) -> &str {
    header
        .split(';')
        .find_map(|p| p.strip_prefix("Root="))
        .expect("a Root")
}

/// What the receiver's answer says it counted the request under.
fn answer_of(response: &Value) -> String {
    let status = response["statusCode"].as_u64().expect("statusCode");
    let body: Value = response["body"]
        .as_str()
        .filter(|b| !b.is_empty())
        .map_or(Value::Null, |b| {
            serde_json::from_str(b).expect("a JSON body")
        });
    match (status, &body["status"], &body["error"]) {
        (202, _, _) => "queued".to_owned(),
        (200, Value::String(s), _) if s == "pong" => "pong".to_owned(),
        (200, Value::Null, _) => "head".to_owned(),
        (_, _, Value::String(error)) => error.clone(),
        _ => panic!("an answer outside the contract: {response}"),
    }
}

/// Every document valid, every one from `function`, in `namespace`, with
/// only the dimensions `allowed` names (besides `Function`).
fn check_documents(documents: &[Value], function: &str, namespace: &str, allowed: &[&str]) {
    assert!(!documents.is_empty(), "no EMF documents");
    for document in documents {
        if let Err(problem) = emf::check(document) {
            panic!("not a valid EMF document ({problem}): {document}");
        }
        assert_eq!(document["Function"], function, "{document}");
        // A log line too (level, message), at a level Lambda's filter keeps.
        assert_eq!(document["message"], "metrics", "{document}");
        assert!(
            ["INFO", "WARN", "ERROR", "FATAL"].contains(&document["level"].as_str().unwrap_or("")),
            "{document}"
        );
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            namespace
        );
        for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("Metrics")
        {
            let name = metric["Name"].as_str().expect("Name");
            let unit = UNITS
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("an undocumented metric {name}"))
                .1;
            assert_eq!(metric["Unit"], unit, "{document}");
        }
        for name in emf::dimension_names(document) {
            assert!(
                name == "Function" || allowed.contains(&name.as_str()),
                "dimension {name}: {document}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_counts_every_answer_of_the_mix_and_carries_each_trace_header_to_sqs() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("metrics.fifo").await;
    let receiver = Function::receiver(
        &moto,
        &queue,
        &[
            ("INTERCOM_ALLOWED_IPS", "34.231.68.0/24".to_owned()),
            ("INTERCOM_APP_IDS", samples::APP_ID.to_owned()),
        ],
    )
    .await;

    // The load test's mix (valid notifications of every topic, pings,
    // forged and invalid ones, all four event shapes), and every other way
    // a request can end.
    let deliveries = mix(300, "metrics", 0x5eed);
    let mut events: Vec<Vec<u8>> = deliveries.iter().map(|d| d.event.clone()).collect();
    let unknown_topic = serde_json::to_vec(&samples::envelope(
        "widget.exploded",
        Some("notif_unknown_topic"),
        json!({"type": "widget", "id": "1"}),
    ))
    .expect("json");
    let mut other_app = samples::sample(Topic::ContactUserCreated);
    other_app["app_id"] = json!("someone_else");
    let other_app = serde_json::to_vec(&other_app).expect("json");
    let conversation = samples::sample_body(Topic::ConversationUserCreated);
    for event in [
        Request::signed(&unknown_topic).event(Shape::ApiGatewayV2),
        Request::signed(&other_app).event(Shape::ApiGatewayV1),
        Request::bare("HEAD").event(Shape::FunctionUrl),
        Request::bare("GET").event(Shape::ApiGatewayV2),
        Request::signed(&conversation)
            .from_ip("203.0.113.9")
            .event(Shape::ApiGatewayV2),
        Request::signed(&padded_body(1_100_000)).event(Shape::ApiGatewayV2),
        json!({"not": "an http event"}),
    ] {
        events.push(serde_json::to_vec(&event).expect("json"));
    }

    let mut answers: BTreeMap<String, u64> = BTreeMap::new();
    let mut traces_of: HashMap<String, String> = HashMap::new();
    for (n, event) in events.into_iter().enumerate() {
        let header = trace_header(n);
        let response = match receiver
            .api
            .invoke_traced(event, &header, Duration::from_secs(10))
            .await
        {
            Some(Outcome::Response(response)) => response,
            other => panic!("request {n}: {other:?}"),
        };
        let answer = answer_of(&response);
        if answer == "queued" {
            let id = serde_json::from_str::<Value>(response["body"].as_str().expect("body"))
                .expect("json")["notification_id"]
                .as_str()
                .expect("a notification id")
                .to_owned();
            traces_of.insert(id, header);
        }
        *answers.entry(answer).or_default() += 1;
    }
    let total: u64 = answers.values().sum();
    // Every answer but `queue_unavailable` (the next test's) was given.
    for answer in ANSWERS.into_iter().filter(|a| *a != "queue_unavailable") {
        assert!(
            answers.get(answer).is_some_and(|n| *n > 0),
            "no {answer}: {answers:?}"
        );
    }

    let documents = emf::documents_when(&[&receiver], |documents| {
        emf::count(documents, "Requests", &[]) >= total
    })
    .await;
    check_documents(
        &documents,
        "webhook-receiver",
        "IntercomWebhooks",
        &["Answer"],
    );
    let counted: BTreeMap<String, u64> = emf::dimension_values(&documents, "Requests", "Answer")
        .into_iter()
        .map(|answer| {
            let n = emf::count(&documents, "Requests", &[("Answer", &answer)]);
            (answer, n)
        })
        .collect();
    assert_eq!(
        counted, answers,
        "Requests by Answer equal the answers sent"
    );
    assert!(
        counted.keys().all(|a| ANSWERS.contains(&a.as_str())),
        "{counted:?}"
    );
    // One EMF document per request: the send's time shares its dimensions
    // with the request's count.
    assert_eq!(documents.len() as u64, total, "one document per request");
    // One SQS send per queued notification, each timed, under its answer.
    let sends = emf::values(&documents, "QueueSendTime", &[]);
    assert_eq!(sends.len() as u64, answers["queued"]);
    assert_eq!(
        emf::values(&documents, "QueueSendTime", &[("Answer", "queued")]).len() as u64,
        answers["queued"]
    );
    assert!(
        sends.iter().all(|ms| *ms > 0.0 && *ms < 3000.0),
        "{sends:?}"
    );

    // Every queued message carries the trace header of the request that
    // queued it, as the AWSTraceHeader system attribute.
    let messages = moto.drain(&queue).await;
    assert_eq!(messages.len() as u64, answers["queued"]);
    for message in &messages {
        let id = message.message_attributes().expect("attributes")["notification_id"]
            .string_value()
            .expect("notification_id");
        let carried = message
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::AwsTraceHeader));
        assert_eq!(carried, traces_of.get(id), "{id}");
    }
}

/// The receiver's EMF documents once they count `requests` requests, each
/// checked against AWS's schema and the default namespace.
async fn receiver_documents(receiver: &Function, requests: u64) -> Vec<Value> {
    let documents =
        emf::documents_when(&[receiver], |d| emf::count(d, "Requests", &[]) >= requests).await;
    check_documents(
        &documents,
        "webhook-receiver",
        "IntercomWebhooks",
        &["Answer"],
    );
    documents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_does_not_answer_is_counted_and_timed() {
    let moto = Moto::start().await;
    let missing = format!("{}/123456789012/missing-queue", moto.endpoint());
    let receiver = Function::receiver(&moto, &missing, &[]).await;
    let body = samples::sample_body(Topic::TicketCreated);
    for _ in 0..3 {
        let response = receiver
            .invoke(&Request::signed(&body).event(Shape::ApiGatewayV2))
            .await;
        assert_eq!(answer_of(&response), "queue_unavailable", "{response}");
    }
    let documents = receiver_documents(&receiver, 3).await;
    assert_eq!(
        emf::count(&documents, "Requests", &[("Answer", "queue_unavailable")]),
        3
    );
    assert_eq!(emf::count(&documents, "Requests", &[]), 3);
    assert_eq!(
        emf::values(
            &documents,
            "QueueSendTime",
            &[("Answer", "queue_unavailable")]
        )
        .len(),
        3
    );
    assert_eq!(documents.len(), 3, "one document per request");
}

/// A record as Lambda delivers it, sent under `trace`, with the `topic`
/// attribute `topic` (the receiver sets it; a forged message may say anything).
fn record(message_id: &str, body: &[u8], topic: Option<&str>, trace: &str) -> Value {
    let attributes: Vec<(&str, &str)> = topic.map(|t| ("topic", t)).into_iter().collect();
    let mut received = Received::first(&attributes, None);
    received
        .system
        .push(("AWSTraceHeader".to_owned(), trace.to_owned()));
    let record = sqs::record(message_id, &String::from_utf8_lossy(body), received);
    serde_json::to_value(record).expect("serialisable")
}

fn batch(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// One record of the processor test: message id, body, `topic` attribute,
/// the outcome it should be counted under, and its topic's family (no
/// longer a dimension: the metrics must not split by it).
type Case<'a> = (&'a str, Vec<u8>, Option<&'a str>, &'a str, &'a str);

/// A notification of `topic` Intercom created `age` seconds ago.
fn notification(topic: &str, id: &str, item: Value, age: i64) -> Vec<u8> {
    let mut body = samples::envelope(topic, Some(id), item);
    body["created_at"] = json!(now_secs() - age);
    serde_json::to_vec(&body).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processor_counts_every_outcome_and_logs_each_records_trace() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let processor = Function::start(
        "topic-processor",
        Some(&moto),
        &[
            ("IDEMPOTENCY_TABLE", table),
            ("FRESHNESS", "skip".to_owned()),
        ],
    )
    .await;
    let item = |topic| samples::item(topic);
    let mut ticket_without_ticket = samples::item(Topic::TicketAdminReplied);
    ticket_without_ticket
        .as_object_mut()
        .expect("object")
        .remove("ticket");
    let user_created = notification(
        "conversation.user.created",
        "n1",
        item(Topic::ConversationUserCreated),
        60,
    );
    let first: Vec<Case> = vec![
        (
            "m1",
            user_created.clone(),
            Some("conversation.user.created"),
            "processed",
            "conversation",
        ),
        (
            "m2",
            notification(
                "contact.user.created",
                "n2",
                item(Topic::ContactUserCreated),
                60,
            ),
            Some("contact.user.created"),
            "processed",
            "contact",
        ),
        (
            "m3",
            notification("ticket.created", "n3", item(Topic::TicketCreated), 60),
            Some("ticket.created"),
            "processed",
            "ticket",
        ),
        (
            "m4",
            notification("ticket.admin.replied", "n4", ticket_without_ticket, 60),
            Some("ticket.admin.replied"),
            "failed",
            "ticket",
        ),
        (
            "m5",
            notification(
                "admin.away_mode_updated",
                "n5",
                item(Topic::AdminAwayModeUpdated),
                60,
            ),
            Some("admin.away_mode_updated"),
            "unhandled",
            "admin",
        ),
        (
            "m6",
            notification(
                "widget.exploded",
                "n6",
                json!({"type": "widget", "id": "6"}),
                60,
            ),
            Some("widget.exploded"),
            "unhandled",
            "unknown",
        ),
        (
            "m7",
            b"{not json".to_vec(),
            Some("<script>alert(1)</script>"),
            "failed",
            "unknown",
        ),
        ("m8", b"{}".to_vec(), None, "failed", "unknown"),
    ];
    let second: Vec<Case> = vec![
        (
            "m9",
            user_created,
            Some("conversation.user.created"),
            "duplicate",
            "conversation",
        ),
        (
            "m10",
            notification(
                "conversation.admin.closed",
                "n10",
                item(Topic::ConversationAdminClosed),
                60,
            ),
            Some("conversation.admin.closed"),
            "unhandled",
            "conversation",
        ),
        (
            "m11",
            // About m1's conversation, created a minute before it.
            notification(
                "conversation.user.created",
                "n11",
                item(Topic::ConversationUserCreated),
                120,
            ),
            Some("conversation.user.created"),
            "stale",
            "conversation",
        ),
    ];
    let mut traces = HashMap::new();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut n = 0;
    for records in [&first, &second] {
        let event = batch(
            records
                .iter()
                .map(|(id, body, topic, outcome, _)| {
                    n += 1;
                    let header = trace_header(1000 + n);
                    traces.insert((*id).to_owned(), root(&header).to_owned());
                    *expected.entry((*outcome).to_owned()).or_default() += 1;
                    record(id, body, *topic, &header)
                })
                .collect(),
        );
        processor.invoke(&event).await;
    }
    let total = first.len() + second.len();

    // The record lines: the outcomes meant, each with its trace id.
    let lines = processor
        .json_logs_when(total, |l| l["message"] == "record")
        .await;
    assert_eq!(lines.len(), total);
    for (id, _, _, outcome, _) in first.iter().chain(&second) {
        let line = lines
            .iter()
            .find(|l| l["message_id"] == *id)
            .expect("a line per record");
        assert_eq!(line["outcome"], *outcome, "{line}");
        assert_eq!(
            line["trace_id"].as_str(),
            traces.get(*id).map(String::as_str),
            "{line}"
        );
    }

    let documents = emf::documents_when(&[&processor], |d| {
        emf::count(d, "Records", &[]) >= total as u64
    })
    .await;
    check_documents(
        &documents,
        "topic-processor",
        "IntercomWebhooks",
        &["Outcome", "Destination"],
    );
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for outcome in emf::dimension_values(&documents, "Records", "Outcome") {
        let n = emf::count(&documents, "Records", &[("Outcome", &outcome)]);
        if n > 0 {
            counted.insert(outcome, n);
        }
    }
    assert_eq!(counted, expected, "Records by Outcome");
    let outcomes: BTreeSet<&str> = counted.keys().map(String::as_str).collect();
    assert_eq!(
        outcomes,
        OUTCOMES.into_iter().collect(),
        "every outcome seen"
    );
    // A metric per outcome, none per topic or family: the month's custom
    // metrics do not grow with the topics a workspace sends.
    assert!(
        emf::dimension_values(&documents, "Records", "Family").is_empty(),
        "no Family dimension"
    );

    // Lag: one value per record whose created_at is known (all but m7, m8),
    // a minute and a little; two minutes and a little for m11.
    let mut lags = emf::values(&documents, "Lag", &[]);
    lags.sort_by(f64::total_cmp);
    assert_eq!(lags.len(), total - 2, "{lags:?}");
    let (m11, minute) = lags.split_last().expect("lags");
    assert!(
        minute.iter().all(|ms| (59_000.0..75_000.0).contains(ms)),
        "{lags:?}"
    );
    assert!((119_000.0..135_000.0).contains(m11), "{lags:?}");
    // HandlerTime: one per handler run (m1, m2, m3 and m4), under no
    // dimension but Function.
    assert_eq!(emf::values(&documents, "HandlerTime", &[]).len(), 4);
    assert!(emf::dimension_values(&documents, "HandlerTime", "Family").is_empty());
    assert_eq!(emf::count(&documents, "DestinationFailures", &[]), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_refuses_is_counted_per_notification() {
    let moto = Moto::start().await;
    let processor = Function::start(
        "topic-processor",
        Some(&moto),
        &[("ARCHIVE_BUCKET", "no-such-bucket".to_owned())],
    )
    .await;
    let records: Vec<Value> = [
        Topic::ConversationUserCreated,
        Topic::ContactUserCreated,
        Topic::AdminAwayModeUpdated,
    ]
    .iter()
    .enumerate()
    .map(|(i, topic)| {
        record(
            &format!("d{i}"),
            &samples::sample_body(*topic),
            Some(topic.name()),
            &trace_header(i),
        )
    })
    .chain([record("d9", b"[]", Some("x"), &trace_header(9))])
    .collect();
    let response = processor.invoke(&batch(records)).await;
    assert_eq!(
        response["batchItemFailures"].as_array().map(Vec::len),
        Some(4),
        "{response}"
    );
    let documents =
        emf::documents_when(&[&processor], |d| emf::count(d, "Records", &[]) >= 4).await;
    check_documents(
        &documents,
        "topic-processor",
        "IntercomWebhooks",
        &["Outcome", "Destination"],
    );
    assert_eq!(
        emf::count(
            &documents,
            "DestinationFailures",
            &[("Destination", "archive")]
        ),
        3
    );
    assert_eq!(emf::count(&documents, "DestinationFailures", &[]), 3);
    assert!(
        emf::dimension_values(&documents, "DestinationFailures", "Destination")
            .iter()
            .all(|d| DESTINATIONS.contains(&d.as_str()))
    );
    assert_eq!(
        emf::count(&documents, "Records", &[("Outcome", "failed")]),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_off_print_none_a_namespace_and_function_name_are_honoured_a_bad_value_stops_the_start()
 {
    let moto = Moto::start().await;
    let queue = moto.create_queue("settings").await;
    let body = samples::sample_body(Topic::ContactUserCreated);
    let event = Request::signed(&body).event(Shape::ApiGatewayV2);

    let off = Function::receiver(&moto, &queue, &[("METRICS", "off".to_owned())]).await;
    for _ in 0..3 {
        assert_eq!(off.invoke(&event).await["statusCode"], 202);
    }
    let requests = off.json_logs_when(3, |l| l["message"] == "request").await;
    assert_eq!(requests.len(), 3);
    assert!(emf::documents(&off).is_empty(), "{:?}", off.logs());

    let named = Function::receiver(
        &moto,
        &queue,
        &[
            ("METRICS_NAMESPACE", "Acme/Intercom".to_owned()),
            (
                "AWS_LAMBDA_FUNCTION_NAME",
                "prod-WebhookReceiver-7F3A".to_owned(),
            ),
            // Lambda's log filter at ERROR drops lines below it: the
            // documents say ERROR so the metrics still get through.
            ("AWS_LAMBDA_LOG_LEVEL", "ERROR".to_owned()),
        ],
    )
    .await;
    assert_eq!(named.invoke(&event).await["statusCode"], 202);
    let documents = emf::documents_when(&[&named], |d| emf::count(d, "Requests", &[]) >= 1).await;
    check_documents(
        &documents,
        "prod-WebhookReceiver-7F3A",
        "Acme/Intercom",
        &["Answer"],
    );
    assert!(
        documents.iter().all(|d| d["level"] == "ERROR"),
        "{documents:?}"
    );
    assert!(
        named.json_logs().iter().all(|l| l["level"] == "ERROR"),
        "nothing below the configured level: {:?}",
        named.logs()
    );

    let mut bad = Function::receiver(&moto, &queue, &[("METRICS", "sometimes".to_owned())]).await;
    bad.expect_init_error("METRICS").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_alarms_publish_only_what_the_alarms_read_and_failures() {
    // `METRICS=alarms` (the template's without the dashboard): the
    // receiver's `Requests` for the answers an alarm reads (a forged
    // delivery: the signature alarm's), and no document at all for a
    // queued or otherwise refused request, no `QueueSendTime`; the
    // processor's `DestinationFailures` when a destination fails, and
    // nothing on a well record.
    let alarms = [("METRICS", "alarms".to_owned())];
    let moto = Moto::start().await;
    let queue = moto.create_queue("alarms-only").await;
    let receiver = Function::receiver(&moto, &queue, &alarms).await;
    let body = samples::sample_body(Topic::ContactUserCreated);
    for _ in 0..3 {
        let response = receiver
            .invoke(&Request::signed(&body).event(Shape::ApiGatewayV2))
            .await;
        assert_eq!(answer_of(&response), "queued", "{response}");
    }
    let invalid = Request::signed(b"{}").event(Shape::ApiGatewayV2);
    assert_eq!(
        answer_of(&receiver.invoke(&invalid).await),
        "invalid_notification"
    );
    let forged = Request::with_signature(&body, "sha1=0000").event(Shape::ApiGatewayV2);
    assert_eq!(
        answer_of(&receiver.invoke(&forged).await),
        "invalid_signature"
    );
    let documents = receiver_documents(&receiver, 1).await;
    assert_eq!(
        emf::count(&documents, "Requests", &[("Answer", "invalid_signature")]),
        1
    );
    assert_eq!(
        documents.len(),
        1,
        "a document for the forged request alone: {documents:?}"
    );
    assert_eq!(
        emf::dimension_values(&documents, "Requests", "Answer"),
        BTreeSet::from(["invalid_signature".to_owned()])
    );
    assert!(
        emf::values(&documents, "QueueSendTime", &[]).is_empty(),
        "{documents:?}"
    );

    let well = Function::start("topic-processor", Some(&moto), &alarms).await;
    let response = well
        .invoke(&batch(vec![record(
            "w1",
            &samples::sample_body(Topic::ContactUserCreated),
            Some("contact.user.created"),
            &trace_header(1),
        )]))
        .await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let lines = well.json_logs_when(1, |l| l["message"] == "record").await;
    assert_eq!(lines[0]["outcome"], "processed", "{lines:?}");
    assert!(emf::documents(&well).is_empty(), "{:?}", well.logs());

    let failing = Function::start(
        "topic-processor",
        Some(&moto),
        &[
            ("METRICS", "alarms".to_owned()),
            ("ARCHIVE_BUCKET", "no-such-bucket".to_owned()),
        ],
    )
    .await;
    let records: Vec<Value> = [Topic::ConversationUserCreated, Topic::ContactUserCreated]
        .iter()
        .enumerate()
        .map(|(i, topic)| {
            record(
                &format!("f{i}"),
                &samples::sample_body(*topic),
                Some(topic.name()),
                &trace_header(i),
            )
        })
        .collect();
    let response = failing.invoke(&batch(records)).await;
    assert_eq!(
        response["batchItemFailures"].as_array().map(Vec::len),
        Some(2),
        "{response}"
    );
    let documents = emf::documents_when(&[&failing], |d| {
        emf::count(d, "DestinationFailures", &[]) >= 2
    })
    .await;
    check_documents(
        &documents,
        "topic-processor",
        "IntercomWebhooks",
        &["Destination"],
    );
    assert_eq!(
        emf::count(
            &documents,
            "DestinationFailures",
            &[("Destination", "archive")]
        ),
        2
    );
    for metric in ["Records", "Lag", "HandlerTime"] {
        assert!(
            emf::values(&documents, metric, &[]).is_empty(),
            "{metric}: {documents:?}"
        );
    }
}
