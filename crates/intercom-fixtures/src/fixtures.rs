//! Sample notifications and the Lambda events that wrap them, signed with the test secret.
//!
//! `events/notifications/*.json` hold notification bodies as Intercom sends
//! them; the builders here wrap a body in each HTTP event shape the receiver
//! takes. `events/*.json` are generated from them ([`generated_events`]); a
//! test fails when the files on disk differ, and `UPDATE_EVENTS=1` rewrites them.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use intercom_webhook::signature::Verifier;
use serde_json::{Value, json};

/// The client secret every fixture is signed with (documented in the README).
pub const TEST_SECRET: &str = "local-test-secret";

/// The source address fixtures come from: one of Intercom's US addresses.
pub const INTERCOM_US_IP: &str = "34.231.68.152";

/// The repository's `events/` folder.
pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("events")
}

/// A sample notification body by topic, exactly as stored (without the
/// trailing newline of the file).
pub fn notification(topic: &str) -> Vec<u8> {
    let path = events_dir()
        .join("notifications")
        .join(format!("{topic}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.trim_end().as_bytes().to_vec()
}

/// The `X-Hub-Signature` of `body` under `secret`.
pub fn sign_with(secret: &str, body: &[u8]) -> String {
    Verifier::new([secret])
        .expect("non-empty secret")
        .sign(body)
}

/// The `X-Hub-Signature` of `body` under [`TEST_SECRET`].
pub fn sign(body: &[u8]) -> String {
    sign_with(TEST_SECRET, body)
}

/// The HTTP event shapes the receiver takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    ApiGatewayV1,
    ApiGatewayV2,
    FunctionUrl,
    Alb,
}

impl Shape {
    pub const ALL: [Shape; 4] = [
        Shape::ApiGatewayV1,
        Shape::ApiGatewayV2,
        Shape::FunctionUrl,
        Shape::Alb,
    ];

    pub fn file_prefix(self) -> &'static str {
        match self {
            Shape::ApiGatewayV1 => "apigw-v1",
            Shape::ApiGatewayV2 => "apigw-v2",
            Shape::FunctionUrl => "function-url",
            Shape::Alb => "alb",
        }
    }
}

/// One HTTP request to wrap in an event.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    pub base64: bool,
    pub source_ip: &'a str,
}

impl<'a> Request<'a> {
    /// A POST of `body` as Intercom sends it, signed with [`TEST_SECRET`].
    pub fn signed(body: &'a [u8]) -> Self {
        Self::with_signature(body, &sign(body))
    }

    /// A POST of `body` with the given `X-Hub-Signature`.
    pub fn with_signature(body: &'a [u8], signature: &str) -> Self {
        Self {
            method: "POST",
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                (
                    "User-Agent".into(),
                    "intercom-parrot-service-client/1.0".into(),
                ),
                ("X-Hub-Signature".into(), signature.into()),
            ],
            body,
            base64: false,
            source_ip: INTERCOM_US_IP,
        }
    }

    /// A request with no body and no headers.
    pub fn bare(method: &'a str) -> Self {
        Self {
            method,
            headers: Vec::new(),
            body: b"",
            base64: false,
            source_ip: INTERCOM_US_IP,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn base64(mut self) -> Self {
        self.base64 = true;
        self
    }

    pub fn from_ip(mut self, ip: &'a str) -> Self {
        self.source_ip = ip;
        self
    }

    fn body_field(&self) -> Value {
        if self.base64 {
            Value::String(BASE64.encode(self.body))
        } else {
            Value::String(String::from_utf8_lossy(self.body).into_owned())
        }
    }

    /// The Lambda event `shape` would deliver for this request.
    pub fn event(&self, shape: Shape) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect();
        match shape {
            Shape::ApiGatewayV1 => {
                let multi: serde_json::Map<String, Value> = self
                    .headers
                    .iter()
                    .map(|(n, v)| (n.clone(), json!([v])))
                    .collect();
                json!({
                    "resource": "/webhook",
                    "path": "/webhook",
                    "httpMethod": self.method,
                    "headers": headers,
                    "multiValueHeaders": multi,
                    "queryStringParameters": null,
                    "multiValueQueryStringParameters": null,
                    "pathParameters": null,
                    "stageVariables": null,
                    "requestContext": {
                        "accountId": "123456789012",
                        "apiId": "abcdef1234",
                        "resourcePath": "/webhook",
                        "httpMethod": self.method,
                        "stage": "prod",
                        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                        "identity": { "sourceIp": self.source_ip, "userAgent": "intercom-parrot-service-client/1.0" }
                    },
                    "body": self.body_field(),
                    "isBase64Encoded": self.base64
                })
            }
            Shape::ApiGatewayV2 | Shape::FunctionUrl => {
                let lower: serde_json::Map<String, Value> = self
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), Value::String(v.clone())))
                    .collect();
                let (domain, api_id) = if shape == Shape::FunctionUrl {
                    (
                        "abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws",
                        "abcdefghijklmnopqrstuvwxyz012345",
                    )
                } else {
                    (
                        "abcdef1234.execute-api.eu-west-1.amazonaws.com",
                        "abcdef1234",
                    )
                };
                json!({
                    "version": "2.0",
                    "routeKey": if shape == Shape::FunctionUrl { "$default".to_owned() } else { format!("{} /webhook", self.method) },
                    "rawPath": "/webhook",
                    "rawQueryString": "",
                    "headers": lower,
                    "requestContext": {
                        "accountId": "123456789012",
                        "apiId": api_id,
                        "domainName": domain,
                        "http": {
                            "method": self.method,
                            "path": "/webhook",
                            "protocol": "HTTP/1.1",
                            "sourceIp": self.source_ip,
                            "userAgent": "intercom-parrot-service-client/1.0"
                        },
                        "requestId": "JKJaXmPLvHcESHA=",
                        "stage": "$default",
                        "time": "22/Nov/2026:22:20:00 +0000",
                        "timeEpoch": 1795393200000_u64
                    },
                    "body": self.body_field(),
                    "isBase64Encoded": self.base64
                })
            }
            Shape::Alb => {
                let mut lower: serde_json::Map<String, Value> = self
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), Value::String(v.clone())))
                    .collect();
                lower.insert(
                    "x-forwarded-for".into(),
                    Value::String(self.source_ip.to_owned()),
                );
                lower.insert("x-forwarded-proto".into(), Value::String("https".into()));
                json!({
                    "requestContext": { "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/intercom/6d0ecf831eec9f09" } },
                    "httpMethod": self.method,
                    "path": "/webhook",
                    "queryStringParameters": {},
                    "headers": lower,
                    "body": self.body_field(),
                    "isBase64Encoded": self.base64
                })
            }
        }
    }
}

/// Every file of `events/` (but `notifications/`) with the content it should have.
pub fn generated_events() -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let samples = [
        (Shape::ApiGatewayV1, "conversation.user.created", false),
        (Shape::ApiGatewayV2, "contact.user.created", false),
        (Shape::FunctionUrl, "ticket.created", true),
        (Shape::Alb, "ticket.admin.replied", false),
        (Shape::ApiGatewayV2, "ping", false),
    ];
    for (shape, topic, base64) in samples {
        let body = notification(topic);
        let mut request =
            Request::signed(&body).header("intercom-webhook-subscription-id", "nsub_5f1b7e4a");
        if base64 {
            request = request.base64();
        }
        let suffix = if base64 { "-base64" } else { "" };
        events.push((
            format!("{}-{topic}{suffix}.json", shape.file_prefix()),
            request.event(shape),
        ));
    }
    events.push((
        "apigw-v2-head.json".into(),
        Request::bare("HEAD").event(Shape::ApiGatewayV2),
    ));
    let forged_body = notification("conversation.user.created");
    let forged = Request::with_signature(&forged_body, &sign_with("not-the-secret", &forged_body));
    events.push((
        "apigw-v2-forged.json".into(),
        forged.event(Shape::ApiGatewayV2),
    ));
    events.push(("sqs-fifo-batch.json".into(), sqs_batch(&SAMPLE_TOPICS)));
    events
}

/// The notifications in `events/notifications/`.
pub const SAMPLE_TOPICS: [&str; 5] = [
    "conversation.user.created",
    "contact.user.created",
    "ticket.created",
    "ticket.admin.replied",
    "ping",
];

/// The SQS event `topic-processor` would receive for these sample
/// notifications, each queued exactly as the receiver queues it (FIFO).
pub fn sqs_batch(topics: &[&str]) -> Value {
    use intercom_webhook::envelope::Envelope;
    use intercom_webhook::queue_message::{CarriedBody, Delivery, QueueMessage};

    let verifier = Verifier::new([TEST_SECRET]).expect("secret");
    let records = topics
        .iter()
        .enumerate()
        .map(|(n, topic)| {
            let body = notification(topic);
            let signature = verifier.sign(&body);
            let verified = verifier
                .verify(&body, Some(signature.as_bytes()))
                .expect("signed");
            let envelope = Envelope::parse(verified).expect("a sample notification");
            let delivery = Delivery {
                signature: &signature,
                subscription_id: Some("nsub_5f1b7e4a"),
                received_at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_763_850_004),
            };
            let message = QueueMessage::build(
                verified,
                CarriedBody::of(verified.as_bytes()),
                &envelope,
                &delivery,
                true,
            );
            crate::sqs::record_of(&format!("00000000-0000-4000-8000-{:012}", n + 1), &message)
        })
        .collect();
    serde_json::to_value(crate::sqs::event(records, crate::sqs::QUEUE_ARN)).expect("serialisable")
}

/// The text a generated event file holds.
pub fn event_file_text(event: &Value) -> String {
    let mut text = serde_json::to_string_pretty(event).expect("serialisable");
    text.push('\n');
    text
}

/// A signed-looking notification whose item nests `depth` arrays.
pub fn deep_body(depth: usize) -> Vec<u8> {
    format!(
        r#"{{"type":"notification_event","topic":"conversation.user.created","id":"notif_deep","app_id":"a86dr8yl","created_at":1,"data":{{"item":{{"type":"conversation","id":"1","x":{}{}}}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
    .into_bytes()
}

/// A valid notification padded to exactly `len` bytes.
pub fn padded_body(len: usize) -> Vec<u8> {
    let head = r#"{"type":"notification_event","topic":"conversation.user.created","id":"notif_big","app_id":"a86dr8yl","created_at":1,"data":{"item":{"type":"conversation","id":"1","pad":""#;
    let tail = r#""}}}"#;
    let mut body = head.as_bytes().to_vec();
    body.resize(len - tail.len(), b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}

/// One row of the bad-input table: a name, the event, the status and `error` expected.
#[derive(Debug)]
pub struct BadInput {
    pub name: &'static str,
    pub event: Value,
    pub status: u16,
    pub error: &'static str,
}

/// Every row of the contract's answers table that must not queue, and hostile bodies.
pub fn bad_inputs() -> Vec<BadInput> {
    let valid = notification("conversation.user.created");
    let reserialised =
        serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&valid).expect("json"))
            .expect("json");
    let not_json = b"this is not json".to_vec();
    let not_envelope = br#"{"type":"notification_event","topic":"","app_id":"a","created_at":1,"data":{"item":{}}}"#.to_vec();
    let invalid_utf8 = b"{\"type\":\"notification_event\",\"topic\":\"t\xff\xfe\",\"id\":\"n\",\"app_id\":\"a\",\"created_at\":1,\"data\":{\"item\":{}}}".to_vec();
    let deep = deep_body(100_000);
    let big = padded_body(1_153_434); // 1.1 MiB
    let mut rows = vec![
        BadInput {
            name: "GET",
            event: Request::bare("GET").event(Shape::ApiGatewayV2),
            status: 405,
            error: "method_not_allowed",
        },
        BadInput {
            name: "no signature",
            event: Request::signed(&valid)
                .without_header("x-hub-signature")
                .event(Shape::ApiGatewayV1),
            status: 401,
            error: "invalid_signature",
        },
        BadInput {
            name: "malformed signature",
            event: Request::with_signature(&valid, "sha1=nothex").event(Shape::ApiGatewayV2),
            status: 401,
            error: "invalid_signature",
        },
        BadInput {
            name: "sha256 signature",
            event: Request::with_signature(&valid, &format!("sha256={}", &sign(&valid)[5..]))
                .event(Shape::Alb),
            status: 401,
            error: "invalid_signature",
        },
        BadInput {
            name: "wrong secret",
            event: Request::with_signature(&valid, &sign_with("wrong", &valid))
                .event(Shape::FunctionUrl),
            status: 401,
            error: "invalid_signature",
        },
        BadInput {
            name: "signature over re-serialised JSON",
            event: Request::with_signature(&reserialised, &sign(&valid)).event(Shape::ApiGatewayV2),
            status: 401,
            error: "invalid_signature",
        },
        BadInput {
            name: "signed, not JSON",
            event: Request::signed(&not_json).event(Shape::ApiGatewayV1),
            status: 400,
            error: "invalid_notification",
        },
        BadInput {
            name: "signed, not an envelope",
            event: Request::signed(&not_envelope).event(Shape::ApiGatewayV2),
            status: 400,
            error: "invalid_notification",
        },
        BadInput {
            name: "signed, invalid UTF-8 in a base64 body",
            event: Request::signed(&invalid_utf8)
                .base64()
                .event(Shape::FunctionUrl),
            status: 400,
            error: "invalid_notification",
        },
        BadInput {
            name: "signed, 100,000-deep nesting",
            event: Request::signed(&deep).event(Shape::ApiGatewayV2),
            status: 400,
            error: "invalid_notification",
        },
        BadInput {
            name: "signed, 1.1 MiB body",
            event: Request::signed(&big).event(Shape::ApiGatewayV2),
            status: 413,
            error: "payload_too_large",
        },
        BadInput {
            name: "unsigned, 1.1 MiB body",
            event: Request::with_signature(&big, "sha1=0").event(Shape::Alb),
            status: 413,
            error: "payload_too_large",
        },
    ];
    let mut undecodable = Request::signed(&valid).base64().event(Shape::ApiGatewayV1);
    undecodable["body"] = json!("%%% this is not base64 %%%");
    rows.push(BadInput {
        name: "body flagged base64 that does not decode",
        event: undecodable,
        status: 400,
        error: "invalid_notification",
    });
    rows.push(BadInput {
        name: "not an HTTP event",
        event: json!({"Records": []}),
        status: 400,
        error: "invalid_event",
    });
    rows.push(BadInput {
        name: "an HTTP event with a null body",
        event: {
            let mut event = Request::signed(&valid).event(Shape::ApiGatewayV1);
            event["body"] = Value::Null;
            event
        },
        status: 401,
        error: "invalid_signature",
    });
    rows
}
