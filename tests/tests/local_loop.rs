//! The local loop end to end: `intercom-dev serve` started, signed samples and a forged
//! one sent with `intercom-dev send`, their processing seen in its output, `intercom-dev
//! check` against it (right secret, stale secret, receiver down), then stopped; and
//! `intercom-dev check --stack` against a stack in moto.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudformation::types::Parameter;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricDatum, StateValue, Statistic,
};
use pipeline_tests::cloudwatch_cbor::CloudWatchCbor;
use pipeline_tests::fixtures;
use pipeline_tests::function::binary;
use pipeline_tests::moto::{self, Moto};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Serve {
    _child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    url: String,
}

impl Serve {
    async fn start(env: &[(&str, String)]) -> Self {
        Self::start_with(&[], env).await
    }

    async fn start_with(args: &[&str], env: &[(&str, String)]) -> Self {
        let port = moto::free_port();
        let mut command = Command::new(binary("intercom-dev"));
        command
            .args(["serve", "--port", &port.to_string()])
            .args(args)
            .env_remove("QUEUE_URL")
            .env_remove("INTERCOM_CLIENT_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("intercom-dev serve");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let collected = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                collected.lock().expect("lock").push(line);
            }
        });
        let serve = Self {
            _child: child,
            lines,
            url: format!("http://127.0.0.1:{port}/webhook"),
        };
        assert!(
            serve.wait_for("listening on", 1).await,
            "did not start: {:?}",
            serve.lines()
        );
        serve
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    /// Waits up to 15 s for `count` lines containing `needle`.
    async fn wait_for(&self, needle: &str, count: usize) -> bool {
        for _ in 0..300 {
            if self.lines().iter().filter(|l| l.contains(needle)).count() >= count {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

async fn send(url: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(binary("intercom-dev"))
        .arg("send")
        .args(["--url", url])
        .args(args)
        .env_remove("INTERCOM_CLIENT_SECRET")
        .output()
        .await
        .expect("intercom-dev send");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_processes_signed_samples_and_rejects_a_forged_one() {
    let serve = Serve::start(&[]).await;
    let printed = serve.lines().join("\n");
    assert!(
        printed.contains("client secret: local-test-secret"),
        "{printed}"
    );
    assert!(printed.contains(&serve.url), "{printed}");

    let (ok, output) = send(
        &serve.url,
        &[
            "conversation.user.created",
            "ticket.created",
            "admin.logged_in",
        ],
    )
    .await;
    assert!(ok, "{output}");
    assert_eq!(output.matches(" 202 ").count(), 3, "{output}");
    let (_, forged) = send(&serve.url, &["--forge", "contact.user.created"]).await;
    assert!(forged.contains("401"), "{forged}");

    assert!(
        serve.wait_for("processed", 2).await && serve.wait_for("unhandled", 1).await,
        "{:?}",
        serve.lines()
    );
    assert!(
        serve.wait_for("rejected  401", 1).await,
        "{:?}",
        serve.lines()
    );
    let lines = serve.lines();
    let printed = |expected: &str| lines.iter().any(|l| l.contains(expected));
    assert!(
        printed("✓ processed  conversation.user.created conversation 215473853299345"),
        "{lines:?}"
    );
    assert!(printed("✓ processed  ticket.created ticket 5"), "{lines:?}");
    assert!(
        printed("· unhandled  admin.logged_in admin 991267"),
        "{lines:?}"
    );
    assert!(
        !printed("contact.user.created"),
        "the forged one must not be processed: {lines:?}"
    );
    drop(serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sends_every_topic_through_the_embedded_queue() {
    let serve = Serve::start(&[]).await;
    let (ok, output) = send(&serve.url, &["--all"]).await;
    assert!(ok, "{output}");
    let total = intercom_webhook::topic::Topic::ALL.len();
    assert!(
        output.contains(&format!("[{total}/{total}]")),
        "progress display: {output}"
    );
    // ping is answered, not queued; everything else is processed or unhandled.
    assert!(
        serve.wait_for("notif_sample_", total - 1).await,
        "{:?}",
        serve.lines().len()
    );
    assert!(
        !serve.lines().iter().any(|l| l.starts_with("✗")),
        "{:?}",
        serve.lines()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_queue_url_goes_through_real_sqs() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("local.fifo").await;
    let serve = Serve::start(&[
        ("QUEUE_URL", queue.clone()),
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_REGION", moto::REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", moto::SECRET_KEY.to_owned()),
    ])
    .await;
    assert!(
        serve
            .lines()
            .join("\n")
            .contains(&format!("SQS queue {queue}"))
    );
    let (ok, output) = send(
        &serve.url,
        &["conversation.user.created", "ticket.admin.replied"],
    )
    .await;
    assert!(ok, "{output}");
    assert!(serve.wait_for("processed", 2).await, "{:?}", serve.lines());
    // Processed messages were deleted from the queue, as Lambda does.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attributes = moto
        .sqs()
        .await
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    let count = |name| attributes.get(&name).cloned().unwrap_or_default();
    assert_eq!(
        count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
        "0"
    );
    assert_eq!(
        count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        "0"
    );
}

/// `intercom-dev sqs-event` on a FIFO queue of 12 messages in two groups
/// prints the batch Lambda would hand the processor: at most 10 records,
/// each group in order, and says the rest wait; run again, the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_event_on_a_fifo_queue_gives_a_batch_lambda_would() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("events.fifo").await;
    let sqs = moto.sqs().await;
    for n in 0..12 {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(format!("{{\"n\":{n}}}"))
            .message_group_id(format!("group-{}", n % 2))
            .message_deduplication_id(format!("m-{n}"))
            .send()
            .await
            .expect("send");
    }
    let event = || async {
        let output = Command::new(binary("intercom-dev"))
            .args(["sqs-event", &queue])
            .env_clear()
            .envs(moto::cli_env(&moto.endpoint()))
            .output()
            .await
            .expect("intercom-dev sqs-event");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let event: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("an SQS event");
        let numbers: Vec<(String, i64)> = event["Records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| {
                let body: serde_json::Value =
                    serde_json::from_str(r["body"].as_str().expect("body")).expect("json");
                (
                    r["attributes"]["MessageGroupId"]
                        .as_str()
                        .expect("a group")
                        .to_owned(),
                    body["n"].as_i64().expect("n"),
                )
            })
            .collect();
        (
            numbers,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (first, note) = event().await;
    assert_eq!(first.len(), 10, "{first:?}");
    assert!(note.contains("at most 10 records"), "{note}");
    let (second, _) = event().await;
    assert_eq!(second.len(), 2, "{second:?}");
    for group in ["group-0", "group-1"] {
        let order: Vec<i64> = first
            .iter()
            .chain(&second)
            .filter(|(g, _)| g == group)
            .map(|(_, n)| *n)
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!((order.len(), &order), (6, &sorted), "{group} in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_marks_an_older_notification_stale_and_skips_it_when_asked() {
    for (freshness, expected) in [
        (None, "✓ processed  ticket.state.updated ticket"),
        (Some("skip"), "· stale      ticket.state.updated ticket"),
    ] {
        let env: Vec<(&str, String)> = freshness
            .map(|mode| ("FRESHNESS", mode.to_owned()))
            .into_iter()
            .collect();
        let serve = Serve::start(&env).await;
        let banner = serve.lines().join("\n");
        assert!(
            banner.contains(&format!("freshness:     {}", freshness.unwrap_or("tag"))),
            "{banner}"
        );
        let (ok, output) = send(&serve.url, &["--out-of-order", "ticket.state.updated"]).await;
        assert!(ok, "{output}");
        assert!(
            output.contains("(newer)") && output.contains("(older)"),
            "{output}"
        );
        assert!(
            serve.wait_for("ticket.state.updated ticket", 2).await,
            "{:?}",
            serve.lines()
        );
        let lines = serve.lines();
        let records: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("ticket.state.updated ticket"))
            .collect();
        assert_eq!(records.len(), 2, "{records:?}");
        assert!(records[0].starts_with("✓ processed"), "{records:?}");
        assert!(!records[0].contains("stale"), "{records:?}");
        assert!(records[1].starts_with(expected), "{records:?}");
        assert!(records[1].contains("_older"), "{records:?}");
        assert!(records[1].contains("newer notification"), "{records:?}");
    }
}

/// Runs `intercom-dev check` against `url` with `args`; success and stdout
/// and stderr together.
async fn check(url: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(binary("intercom-dev"))
        .arg("check")
        .args(["--url", url])
        .args(args)
        .env_remove("INTERCOM_CLIENT_SECRET")
        .output()
        .await
        .expect("intercom-dev check");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// `intercom-dev check` against the local receiver: the right secret
/// passes all four checks; a wrong one is named a stale secret; with the
/// receiver gone, nothing answers. Each time the exit status says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tells_a_working_receiver_a_stale_secret_and_a_receiver_down() {
    let serve = Serve::start(&[]).await;
    let url = serve.url.clone();

    let (ok, output) = check(&url, &[]).await;
    assert!(ok, "{output}");
    for line in [
        "✓ HEAD (Intercom's validation)",
        "✓ signed ping",
        "✓ forged ping",
        "✓ signed ping over 1 MiB",
        "answers as Intercom needs",
    ] {
        assert!(output.contains(line), "no `{line}` in:\n{output}");
    }
    assert!(
        output.contains(" ms  413\n"),
        "oversized is 413 here:\n{output}"
    );

    let (ok, output) = check(&url, &["--secret", "last-years-secret"]).await;
    assert!(!ok, "{output}");
    assert!(output.contains("✗ signed ping"), "{output}");
    assert!(output.contains("a stale secret"), "{output}");
    assert!(output.contains("✓ forged ping"), "{output}");
    // Size is judged before the signature: the oversized ping is still 413.
    assert!(output.contains("1 of 4 checks failed"), "{output}");

    drop(serve);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, output) = check(&url, &[]).await;
    assert!(!ok, "{output}");
    assert!(output.contains("no answer"), "{output}");
    assert!(output.contains("4 of 4 checks failed"), "{output}");
}

/// Runs `intercom-dev check --stack` with `args` against moto (CloudWatch
/// through `cloudwatch`, which speaks the SDK's CBOR to moto's JSON).
async fn check_stack(moto: &Moto, cloudwatch: &CloudWatchCbor, args: &[&str]) -> (bool, String) {
    let output = Command::new(binary("intercom-dev"))
        .arg("check")
        .args(args)
        .env_clear()
        .envs(moto::cli_env(&moto.endpoint()))
        .env("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch.endpoint())
        .output()
        .await
        .expect("intercom-dev check --stack");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// `report` has a line for `check` (its mark and name) whose answer, after
/// the time it took, starts with `answer`.
#[track_caller]
fn assert_reported(report: &str, check: &str, answer: &str) {
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("{check} ")))
        .unwrap_or_else(|| panic!("no `{check}` line in:\n{report}"));
    let (_, answered) = line
        .split_once(" ms  ")
        .unwrap_or_else(|| panic!("no time in `{line}`"));
    assert!(
        answered.starts_with(answer),
        "`{check}` answered `{answered}`, not `{answer}`:\n{report}"
    );
}

/// A stack as `infra/template.yaml` declares its outputs: the queues and
/// the alarm topic created by CloudFormation (moto's), the URL (the local
/// receiver) and the secret's ARN given as parameters.
const STACK_TEMPLATE: &str = r#"{
  "Parameters": {"WebhookUrl": {"Type": "String"}, "ClientSecretArn": {"Type": "String"}},
  "Resources": {
    "NotificationQueue": {"Type": "AWS::SQS::Queue"},
    "DeadLetterQueue": {"Type": "AWS::SQS::Queue"},
    "AlarmTopic": {"Type": "AWS::SNS::Topic"}
  },
  "Outputs": {
    "WebhookUrl": {"Value": {"Ref": "WebhookUrl"}},
    "QueueUrl": {"Value": {"Ref": "NotificationQueue"}},
    "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
    "ClientSecretArn": {"Value": {"Ref": "ClientSecretArn"}},
    "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}}
  }
}"#;

/// `intercom-dev check --stack` reads a deployed stack: the URL and the
/// secret from it, then the queues, the alarms and the alarm topic. An
/// alarm topic nobody hears, a dead letter, an alarm in ALARM and a stored
/// secret that is not the app's each fail the check, named; a healthy
/// stack passes; a stack with no webhook URL (behind an ALB) asks for
/// `--url`; a stack that does not exist is said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_with_a_stack_reads_its_outputs_and_reports_queues_alarms_and_who_hears_them() {
    let moto = Moto::start().await;
    let cloudwatch = CloudWatchCbor::start(moto.port).await;
    let serve = Serve::start(&[]).await;
    let sdk = moto.sdk_config().await;
    let sdk_cloudwatch = sdk.to_builder().endpoint_url(cloudwatch.endpoint()).build();
    let secret_arn = moto.create_client_secret().await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    cloudformation
        .create_stack()
        .stack_name("intercom-webhooks")
        .template_body(STACK_TEMPLATE)
        .parameters(
            Parameter::builder()
                .parameter_key("WebhookUrl")
                .parameter_value(&serve.url)
                .build(),
        )
        .parameters(
            Parameter::builder()
                .parameter_key("ClientSecretArn")
                .parameter_value(&secret_arn)
                .build(),
        )
        .send()
        .await
        .expect("create the stack");
    let outputs = cloudformation
        .describe_stacks()
        .stack_name("intercom-webhooks")
        .send()
        .await
        .expect("describe the stack");
    let output = |key: &str| {
        outputs.stacks()[0]
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .expect("output")
            .to_owned()
    };
    let (topic, dead_letter_queue) = (output("AlarmTopicArn"), output("DeadLetterQueueUrl"));

    let alarms = aws_sdk_cloudwatch::Client::new(&sdk_cloudwatch);
    for (name, actions) in [
        (
            "intercom-webhooks-DeadLetterQueueNotEmptyAlarm-1A",
            vec![topic.clone()],
        ),
        (
            "intercom-webhooks-SignatureFailuresAlarm-2B",
            vec![topic.clone()],
        ),
        // Another stack's alarm, on a topic whose ARN starts with this one's.
        ("other-Alarm-3C", vec![format!("{topic}-other")]),
    ] {
        alarms
            .put_metric_alarm()
            .alarm_name(name)
            .alarm_description(format!("what {name} means"))
            .namespace("AWS/SQS")
            .metric_name("ApproximateNumberOfMessagesVisible")
            .statistic(Statistic::Maximum)
            .period(300)
            .evaluation_periods(1)
            .threshold(0.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .set_alarm_actions(Some(actions))
            .send()
            .await
            .expect("put an alarm");
    }
    let set_state = |name: &'static str, state: StateValue| {
        let alarms = alarms.clone();
        async move {
            alarms
                .set_alarm_state()
                .alarm_name(name)
                .state_value(state)
                .state_reason("set by the test")
                .send()
                .await
                .expect("set the alarm's state");
        }
    };
    set_state("other-Alarm-3C", StateValue::Alarm).await;

    // Fresh: nobody subscribed to the alarm topic.
    let (ok, report) = check_stack(&moto, &cloudwatch, &["--stack", "intercom-webhooks"]).await;
    assert!(!ok, "{report}");
    for (check, answer) in [
        ("✓ HEAD (Intercom's validation)", "200"),
        ("✓ signed ping", "200"),
        ("✓ forged ping", "401"),
        ("✓ queue", "0 waiting, 0 in flight"),
        ("✓ dead-letter queue", "0 dead"),
        ("✓ alarms", "0 of 2 in ALARM"),
        ("✓ last accepted", "none in the last 14 days"),
        ("✓ last processed", "none in the last 14 days"),
        (
            "✗ alarm topic",
            "0 confirmed: no subscription: the alarms notify nobody",
        ),
    ] {
        assert_reported(&report, check, answer);
    }
    // Intercom's pause and suspension rules, and the way out of a suspension.
    assert!(
        report.contains("Over 1,000 consecutive errors in 15 minutes pause")
            && report.contains("press Set live (Developer"),
        "{report}"
    );
    assert!(report.contains("1 of 10 checks failed"), "{report}");

    // SQS's own metrics of the queue (moto publishes none: seeded as SQS
    // would publish them), a notification queued 5 minutes ago and the
    // last one processed 2 hours ago; a zero since counts for nothing.
    let queue_name = output("QueueUrl")
        .rsplit('/')
        .next()
        .expect("a name")
        .to_owned();
    let now = std::time::SystemTime::now();
    for (metric, ago, value) in [
        ("NumberOfMessagesSent", 300, 3.0),
        ("NumberOfMessagesSent", 120, 0.0),
        ("NumberOfMessagesDeleted", 7300, 1.0),
        ("NumberOfMessagesDeleted", 9000, 2.0),
    ] {
        alarms
            .put_metric_data()
            .namespace("AWS/SQS")
            .metric_data(
                MetricDatum::builder()
                    .metric_name(metric)
                    .dimensions(
                        Dimension::builder()
                            .name("QueueName")
                            .value(&queue_name)
                            .build(),
                    )
                    .timestamp(DateTime::from(now - Duration::from_secs(ago)))
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .expect("put a data point");
    }
    let (_, report) = check_stack(&moto, &cloudwatch, &["--stack", "intercom-webhooks"]).await;
    // CloudWatch stamps a period with its start: 5 minutes ago is the
    // minute that began 5 or 6 minutes ago.
    let accepted = report
        .lines()
        .find(|l| l.starts_with("✓ last accepted "))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        accepted.contains("  5 min ago (") || accepted.contains("  6 min ago ("),
        "{report}"
    );
    assert_reported(&report, "✓ last processed", "2 h ago (");
    assert!(!report.contains("stored client secret"), "{report}");

    // Somebody listens; a notification is dead and an alarm fires.
    aws_sdk_sns::Client::new(&sdk)
        .subscribe()
        .topic_arn(&topic)
        .protocol("email")
        .endpoint("ops@example.com")
        .send()
        .await
        .expect("subscribe");
    moto.sqs()
        .await
        .send_message()
        .queue_url(&dead_letter_queue)
        .message_body("{}")
        .send()
        .await
        .expect("a dead letter");
    set_state(
        "intercom-webhooks-SignatureFailuresAlarm-2B",
        StateValue::Alarm,
    )
    .await;
    let (ok, report) = check_stack(
        &moto,
        &cloudwatch,
        &[
            "--stack",
            "intercom-webhooks",
            "--secret",
            fixtures::TEST_SECRET,
        ],
    )
    .await;
    assert!(!ok, "{report}");
    for (check, answer) in [
        ("✓ stored client secret", "same"),
        ("✓ signed ping", "200"),
        (
            "✗ dead-letter queue",
            "1 dead: notifications the processor could not handle",
        ),
        (
            "✗ alarms",
            "1 of 2 in ALARM: in ALARM: intercom-webhooks-SignatureFailuresAlarm-2B \
             (what intercom-webhooks-SignatureFailuresAlarm-2B means)",
        ),
        ("✓ alarm topic", "1 confirmed"),
    ] {
        assert_reported(&report, check, answer);
    }
    assert!(
        report.contains(&format!("dlq list --queue-url {dead_letter_queue}")),
        "{report}"
    );
    assert!(report.contains("2 of 11 checks failed"), "{report}");

    // Healthy again.
    moto.drain(&dead_letter_queue).await;
    set_state(
        "intercom-webhooks-SignatureFailuresAlarm-2B",
        StateValue::Ok,
    )
    .await;
    let (ok, report) = check_stack(&moto, &cloudwatch, &["--stack", "intercom-webhooks"]).await;
    assert!(ok, "{report}");
    assert!(
        report.contains(
            "stack intercom-webhooks answers as Intercom needs, and its alarms reach somebody"
        ),
        "{report}"
    );

    // The app's secret is not the stored one: named twice, where it is
    // stored and where the receiver refuses it.
    let (ok, report) = check_stack(
        &moto,
        &cloudwatch,
        &[
            "--stack",
            "intercom-webhooks",
            "--secret",
            "the-apps-new-secret",
        ],
    )
    .await;
    assert!(!ok, "{report}");
    assert_reported(
        &report,
        "✗ stored client secret",
        "other: the stack's secret",
    );
    assert!(
        report.contains(&format!("put-secret-value --secret-id {secret_arn}")),
        "{report}"
    );
    assert!(
        report.contains("✗ signed ping") && report.contains("a stale secret"),
        "{report}"
    );
    assert!(report.contains("2 of 11 checks failed"), "{report}");

    // A stack served by neither its HTTP API nor a function URL (an ALB in
    // front of the receiver) has no WebhookUrl output: said so, and --url
    // gives it.
    let behind_alb =
        STACK_TEMPLATE.replace(r#""WebhookUrl": {"Value": {"Ref": "WebhookUrl"}},"#, "");
    assert_ne!(behind_alb, STACK_TEMPLATE);
    cloudformation
        .create_stack()
        .stack_name("intercom-webhooks-alb")
        .template_body(behind_alb)
        .parameters(
            Parameter::builder()
                .parameter_key("WebhookUrl")
                .parameter_value("unused")
                .build(),
        )
        .parameters(
            Parameter::builder()
                .parameter_key("ClientSecretArn")
                .parameter_value(&secret_arn)
                .build(),
        )
        .send()
        .await
        .expect("create the stack behind an ALB");
    let (ok, report) = check_stack(&moto, &cloudwatch, &["--stack", "intercom-webhooks-alb"]).await;
    assert!(!ok, "{report}");
    assert!(
        report.contains("stack intercom-webhooks-alb has no WebhookUrl output")
            && report.contains("give the webhook URL with --url"),
        "{report}"
    );
    let (_, report) = check_stack(
        &moto,
        &cloudwatch,
        &["--stack", "intercom-webhooks-alb", "--url", &serve.url],
    )
    .await;
    assert_reported(&report, "✓ signed ping", "200");
    assert_reported(&report, "✓ dead-letter queue", "0 dead");

    let (ok, report) = check_stack(&moto, &cloudwatch, &["--stack", "no-such-stack"]).await;
    assert!(!ok, "{report}");
    assert!(report.contains("reading stack no-such-stack"), "{report}");
}

/// `intercom-dev serve --intercom-mock`: the shipped refund example's calls
/// go to a local mock of Intercom's API and each is printed, checked
/// against Intercom's description; without the flag the handler only says
/// what it would do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_the_intercom_mock_prints_each_call_a_handler_makes() {
    let mut notification: serde_json::Value =
        serde_json::from_slice(&pipeline_tests::samples::sample_body(
            intercom_webhook::topic::Topic::ConversationUserCreated,
        ))
        .expect("json");
    notification["data"]["item"]["source"]["body"] = "<p>I would like a refund</p>".into();
    let conversation = notification["data"]["item"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let file = std::env::temp_dir().join(format!("refund-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&notification).expect("json")).expect("write");
    let file = file.to_string_lossy().into_owned();

    let serve = Serve::start_with(&["--intercom-mock"], &[]).await;
    assert!(
        serve
            .lines()
            .iter()
            .any(|l| l.contains("intercom api:  a local mock at http://127.0.0.1:")),
        "{:?}",
        serve.lines()
    );
    let (ok, output) = send(&serve.url, &["--file", &file]).await;
    assert!(ok, "{output}");
    assert!(
        serve
            .wait_for("✓ processed  conversation.user.created", 1)
            .await,
        "{:?}",
        serve.lines()
    );
    let calls: Vec<String> = serve
        .lines()
        .into_iter()
        .filter(|l| is_intercom_call(l))
        .collect();
    let expected = [
        "✓ intercom POST /tags → 200".to_owned(),
        "✓ intercom GET /me → 200".to_owned(),
        format!("✓ intercom POST /conversations/{conversation}/tags → 200"),
        format!("✓ intercom POST /conversations/{conversation}/reply → 200"),
    ];
    assert_eq!(calls.len(), expected.len(), "{calls:?}");
    for (line, start) in calls.iter().zip(&expected) {
        assert!(
            line.trim_start().starts_with(start.as_str()),
            "{line} vs {start}"
        );
    }
    assert!(calls[3].contains(r#""message_type":"note""#), "{calls:?}");
    drop(serve);

    let serve = Serve::start(&[]).await;
    assert!(
        serve
            .lines()
            .iter()
            .any(|l| l.contains("intercom api:  none"))
    );
    let (ok, output) = send(&serve.url, &["--file", &file]).await;
    assert!(ok, "{output}");
    assert!(
        serve
            .wait_for("✓ processed  conversation.user.created", 1)
            .await,
        "{:?}",
        serve.lines()
    );
    assert!(!serve.lines().iter().any(|l| is_intercom_call(l)));
    let _ = std::fs::remove_file(&file);
}

/// Whether `line` is `serve`'s line for a call to Intercom.
fn is_intercom_call(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("✓ intercom ") || line.starts_with("✗ intercom ")
}

/// The lines `serve` printed from the record line containing `start` up to
/// the next record line (`✓`, `·` or `✗` at the start).
fn under(lines: &[String], start: &str) -> Vec<String> {
    let Some(at) = lines.iter().position(|l| l.contains(start)) else {
        return Vec::new();
    };
    lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("    "))
        .cloned()
        .collect()
}

/// What a handler logs (`tracing::info!` with fields) is printed under its
/// notification's line: the shipped refund example says what it would do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_shows_a_handlers_log_lines_under_its_notification() {
    let serve = Serve::start(&[]).await;
    let (ok, output) = send(
        &serve.url,
        &["conversation.user.created", "admin.logged_in"],
    )
    .await;
    assert!(ok, "{output}");
    assert!(
        serve.wait_for("· unhandled  admin.logged_in", 1).await,
        "{:?}",
        serve.lines()
    );
    let lines = serve.lines();
    let logged = under(&lines, "✓ processed  conversation.user.created");
    assert_eq!(logged.len(), 2, "{lines:?}");
    assert!(
        logged[0].starts_with(
            "    INFO  new conversation from a user conversation_id=215473853299345 message_length="
        ),
        "{logged:?}"
    );
    assert!(
        logged[1]
            .starts_with("    INFO  mentions a refund: would tag it `refund` and leave a note")
            && logged[1].ends_with("conversation_id=215473853299345"),
        "{logged:?}"
    );
    assert!(
        under(&lines, "· unhandled  admin.logged_in").is_empty(),
        "{lines:?}"
    );
    // RUST_LOG filters them as it does the functions' own lines.
    let quiet = Serve::start(&[("RUST_LOG", "warn".to_owned())]).await;
    let (ok, output) = send(&quiet.url, &["conversation.user.created"]).await;
    assert!(ok, "{output}");
    assert!(
        quiet
            .wait_for("✓ processed  conversation.user.created", 1)
            .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = quiet.lines();
    assert!(
        under(&lines, "✓ processed  conversation.user.created").is_empty(),
        "{lines:?}"
    );
}

/// `send` sends a sample as a new notification each time (a fresh id and
/// `created_at`), so sending it twice processes it twice; `--same` sends
/// it as it is, and the second is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_makes_each_notification_new_unless_asked_for_the_same() {
    let serve = Serve::start(&[]).await;
    for _ in 0..2 {
        let (ok, output) = send(&serve.url, &["ticket.state.updated"]).await;
        assert!(ok, "{output}");
        assert!(
            output.contains(r#""notification_id":"notif_sample_ticket_state_updated-"#),
            "{output}"
        );
    }
    assert!(
        serve.wait_for("✓ processed  ticket.state.updated", 2).await,
        "two fresh notifications, neither stale nor a duplicate: {:?}",
        serve.lines()
    );
    for _ in 0..2 {
        let (ok, output) = send(&serve.url, &["--same", "contact.user.created"]).await;
        assert!(ok, "{output}");
        assert!(
            output.contains(r#""notification_id":"notif_sample_contact_user_created""#),
            "{output}"
        );
    }
    assert!(
        serve.wait_for("· duplicate  contact.user.created", 1).await,
        "{:?}",
        serve.lines()
    );
    assert_eq!(
        serve
            .lines()
            .iter()
            .filter(|l| l.contains("✓ processed  contact.user.created"))
            .count(),
        1
    );
    assert!(
        !serve.lines().iter().any(|l| l.contains("stale")),
        "{:?}",
        serve.lines()
    );
}

/// `intercom-dev sample TOPIC` prints the sample to edit; `send --file`
/// takes it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printed_sample_edited_is_sent_back_with_send_file() {
    let printed = Command::new(binary("intercom-dev"))
        .args(["sample", "ticket.closed"])
        .output()
        .await
        .expect("intercom-dev sample");
    assert!(printed.status.success());
    let mut notification: serde_json::Value =
        serde_json::from_slice(&printed.stdout).expect("the sample, as JSON");
    assert_eq!(notification["topic"], "ticket.closed");
    assert_eq!(notification["data"]["item"]["type"], "ticket_ticket_part");
    notification["data"]["item"]["ticket"]["id"] = "77".into();
    let file = std::env::temp_dir().join(format!("closed-{}.json", std::process::id()));
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&notification).expect("json"),
    )
    .expect("write");
    let file = file.to_string_lossy().into_owned();
    let serve = Serve::start(&[]).await;
    let (ok, output) = send(&serve.url, &["--file", &file]).await;
    assert!(ok, "{output}");
    assert!(
        serve
            .wait_for(
                "✓ processed  ticket.closed ticket 77 notif_sample_ticket_closed-",
                1
            )
            .await,
        "{:?}",
        serve.lines()
    );
    let unknown = Command::new(binary("intercom-dev"))
        .args(["sample", "ticket.exploded"])
        .output()
        .await
        .expect("intercom-dev sample");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not in the catalogue"));
    let _ = std::fs::remove_file(&file);
}
