//! `intercom-dev check --stack`: what a deployed stack says about itself (its outputs, its client secret, its queues, when a notification was last accepted and processed, its alarms and who hears them).
//!
//! Everything is read with the user's credentials and the SDK's usual
//! settings (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`), nothing is
//! written. The stack is found by name through CloudFormation's outputs
//! (`WebhookUrl` where the stack serves one, `QueueUrl`, `DeadLetterQueueUrl`, `ClientSecretArn`,
//! `AlarmTopicArn`, as `infra/template.yaml` declares them). Its alarms are
//! the ones whose action is the stack's alarm topic (every alarm in the
//! template has it, `infra/template_test.py` holds it so), which finds them
//! without knowing the names CloudFormation generated.

use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, Metric, MetricDataQuery, MetricStat, StateValue,
};
use aws_sdk_sqs::types::QueueAttributeName;

use intercom_webhook::signature::comma_separated;

use crate::check::Checked;

/// The outputs `check --stack` reads, by their names in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub stack: String,
    /// `None` for a stack served by neither its HTTP API nor a function URL
    /// (an ALB in front of the receiver): `--url` gives it.
    pub webhook_url: Option<String>,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    pub client_secret_arn: String,
    pub alarm_topic_arn: String,
}

/// A stack's outputs, or why they could not be read.
pub async fn outputs(sdk: &SdkConfig, stack: &str) -> Result<Deployed, String> {
    let described = aws_sdk_cloudformation::Client::new(sdk)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            format!(
                "reading stack {stack}: {}",
                aws_sdk_cloudformation::error::DisplayErrorContext(e)
            )
        })?;
    let found = described
        .stacks()
        .first()
        .ok_or_else(|| format!("stack {stack} does not exist"))?;
    let optional_output = |key: &str| {
        found
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let output = |key: &str| {
        optional_output(key).ok_or_else(|| {
            format!(
                "stack {stack} has no {key} output: is it a stack of infra/template.yaml, \
                     and is its deploy finished?"
            )
        })
    };
    Ok(Deployed {
        stack: stack.to_owned(),
        webhook_url: optional_output("WebhookUrl"),
        queue_url: output("QueueUrl")?,
        dead_letter_queue_url: output("DeadLetterQueueUrl")?,
        client_secret_arn: output("ClientSecretArn")?,
        alarm_topic_arn: output("AlarmTopicArn")?,
    })
}

/// The client secret(s) the stack's receiver reads, as stored.
pub async fn stored_secret(sdk: &SdkConfig, deployed: &Deployed) -> Result<String, String> {
    aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(&deployed.client_secret_arn)
        .send()
        .await
        .map_err(|e| {
            format!(
                "reading the client secret {}: {}",
                deployed.client_secret_arn,
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })?
        .secret_string
        .ok_or_else(|| format!("{} has no SecretString", deployed.client_secret_arn))
}

/// Whether the stored secret (comma-separated during a rotation, as the
/// receiver reads it) holds `given`, the app's client secret.
pub fn holds(stored: &str, given: &str) -> bool {
    let given = comma_separated(given).next().unwrap_or_default();
    comma_separated(stored).any(|s| s == given)
}

/// The line comparing the app's client secret with the stored one.
pub fn secret_line(deployed: &Deployed, stored: &str, given: &str) -> Checked {
    let verdict = if holds(stored, given) {
        Ok(())
    } else {
        Err(format!(
            "the stack's secret does not hold the client secret given: a stale secret, and \
             Intercom's deliveries will be refused. Put the app's current client secret in it: \
             aws secretsmanager put-secret-value --secret-id {} --secret-string \"$CLIENT_SECRET\"",
            deployed.client_secret_arn
        ))
    };
    Checked {
        name: "stored client secret",
        answer: if verdict.is_ok() { "same" } else { "other" }.to_owned(),
        took: Duration::ZERO,
        verdict,
    }
}

/// The queue, the dead-letter queue, the alarms and the alarm topic.
pub async fn health(sdk: &SdkConfig, deployed: &Deployed) -> Vec<Checked> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut lines = Vec::new();

    let started = Instant::now();
    let queue = depth(&sqs, &deployed.queue_url).await;
    lines.push(match queue {
        Ok((waiting, in_flight)) => Checked {
            name: "queue",
            answer: format!("{waiting} waiting, {in_flight} in flight"),
            took: started.elapsed(),
            verdict: Ok(()),
        },
        Err(e) => unanswered("queue", started, e),
    });

    let started = Instant::now();
    let dead = depth(&sqs, &deployed.dead_letter_queue_url).await;
    lines.push(match dead {
        Ok((waiting, in_flight)) => Checked {
            name: "dead-letter queue",
            answer: format!("{} dead", waiting + in_flight),
            took: started.elapsed(),
            verdict: judge_dead_letters(waiting + in_flight, &deployed.dead_letter_queue_url),
        },
        Err(e) => unanswered("dead-letter queue", started, e),
    });

    let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
    let started = Instant::now();
    let queue_metrics = [
        ("last accepted", "NumberOfMessagesSent"),
        ("last processed", "NumberOfMessagesDeleted"),
    ];
    let metrics = queue_metrics.map(|(_, metric)| metric);
    match last_data_points(&cloudwatch, &deployed.queue_url, &metrics).await {
        Ok(last) => lines.extend(
            queue_metrics
                .iter()
                .zip(last)
                .map(|((name, _), last)| Checked {
                    name,
                    answer: since(last, SystemTime::now()),
                    took: started.elapsed(),
                    verdict: Ok(()),
                }),
        ),
        Err(e) => lines.extend(
            queue_metrics
                .iter()
                .map(|(name, _)| unanswered(name, started, e.clone())),
        ),
    }

    let started = Instant::now();
    lines.push(match alarms(sdk, &deployed.alarm_topic_arn).await {
        Ok(alarms) => Checked {
            name: "alarms",
            answer: format!(
                "{} of {} in ALARM",
                alarms.iter().filter(|a| a.firing).count(),
                alarms.len()
            ),
            took: started.elapsed(),
            verdict: judge_alarms(&alarms),
        },
        Err(e) => unanswered("alarms", started, e),
    });

    let started = Instant::now();
    lines.push(match subscriptions(sdk, &deployed.alarm_topic_arn).await {
        Ok(subscriptions) => Checked {
            name: "alarm topic",
            answer: format!(
                "{} confirmed",
                subscriptions.iter().filter(|s| s.confirmed()).count()
            ),
            took: started.elapsed(),
            verdict: judge_subscriptions(&subscriptions, &deployed.alarm_topic_arn),
        },
        Err(e) => unanswered("alarm topic", started, e),
    });
    lines
}

fn unanswered(name: &'static str, started: Instant, error: String) -> Checked {
    Checked {
        name,
        answer: "---".to_owned(),
        took: started.elapsed(),
        verdict: Err(error),
    }
}

/// How far back `check --stack` looks for the queue's last message.
pub const LOOK_BACK: Duration = Duration::from_secs(14 * 24 * 3600);

/// Intercom's rules for an endpoint that fails, and what to do
/// (docs/operations.md, "When Intercom stops delivering").
pub const INTERCOM_RULES: &str = "\
Intercom drops what it cannot deliver: an error or no answer in 5 s is retried once, a minute later,
then dropped. Over 1,000 consecutive errors in 15 minutes pause deliveries for 15 minutes. After 7 days
of errors a private app's subscription is suspended: fix the endpoint, then press Set live (Developer
Hub, your app, Configure, Webhooks; a banner there says it is suspended). Recover what was dropped with
intercom-dev backfill --since <when it began>.";

/// For each of `metrics` of the queue (SQS's own, `AWS/SQS`, by
/// `QueueName`), the time of the last minute in which it counted anything,
/// within [`LOOK_BACK`]: the last minute a notification was queued
/// (`NumberOfMessagesSent`) or processed (`NumberOfMessagesDeleted`). One
/// `GetMetricData` call asks for them all.
async fn last_data_points(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    queue_url: &str,
    metrics: &[&str],
) -> Result<Vec<Option<SystemTime>>, String> {
    let queue_name = queue_url.rsplit('/').next().unwrap_or(queue_url);
    let now = SystemTime::now();
    let mut last: Vec<Option<SystemTime>> = vec![None; metrics.len()];
    // The last day minute by minute, then, for a metric with nothing in
    // it, the rest hour by hour (a call returns at most 100,800 points;
    // these are 1,440 and 312 a metric).
    for (from, to, period) in [
        (Duration::from_secs(24 * 3600), Duration::ZERO, 60),
        (LOOK_BACK, Duration::from_secs(24 * 3600), 3600),
    ] {
        let queries: Vec<MetricDataQuery> = metrics
            .iter()
            .enumerate()
            .filter(|(i, _)| last[*i].is_none())
            .map(|(i, metric)| {
                MetricDataQuery::builder()
                    .id(format!("m{i}"))
                    .metric_stat(
                        MetricStat::builder()
                            .metric(
                                Metric::builder()
                                    .namespace("AWS/SQS")
                                    .metric_name(*metric)
                                    .dimensions(
                                        Dimension::builder()
                                            .name("QueueName")
                                            .value(queue_name)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .period(period)
                            .stat("Sum")
                            .build(),
                    )
                    .build()
            })
            .collect();
        if queries.is_empty() {
            break;
        }
        let mut pages = cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(DateTime::from(now - from))
            .end_time(DateTime::from(now - to))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "cloudwatch:GetMetricData: {}",
                    aws_sdk_cloudwatch::error::DisplayErrorContext(e)
                )
            })?;
            for result in page.metric_data_results() {
                let Some(i) = result
                    .id()
                    .and_then(|id| id.strip_prefix('m')?.parse::<usize>().ok())
                    .filter(|i| *i < last.len())
                else {
                    continue;
                };
                for (at, value) in result.timestamps().iter().zip(result.values()) {
                    let at = SystemTime::try_from(*at).map_err(|e| e.to_string())?;
                    if *value > 0.0 && last[i].is_none_or(|l| at > l) {
                        last[i] = Some(at);
                    }
                }
            }
        }
    }
    Ok(last)
}

/// `last` as the report shows it, from `now`: "5 min ago (2026-12-04T22:55:00Z)".
pub fn since(last: Option<SystemTime>, now: SystemTime) -> String {
    let Some(last) = last else {
        return format!("none in the last {} days", LOOK_BACK.as_secs() / 86400);
    };
    let ago = now.duration_since(last).unwrap_or_default().as_secs();
    let ago = match ago {
        0..60 => "under a minute ago".to_owned(),
        60..7200 => format!("{} min ago", ago / 60),
        7200..172_800 => format!("{} h ago", ago / 3600),
        _ => format!("{} days ago", ago / 86400),
    };
    let at = DateTime::from(last)
        .fmt(aws_sdk_cloudwatch::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default();
    format!("{ago} ({at})")
}

/// Messages waiting and in flight (SQS's approximate counts).
async fn depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<(u64, u64), String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| {
            format!(
                "{queue_url}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?;
    let count = |name| {
        attributes
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

/// A dead-letter queue holding anything is a finding: notifications the
/// processor gave up on.
pub fn judge_dead_letters(dead: u64, queue_url: &str) -> Result<(), String> {
    if dead == 0 {
        Ok(())
    } else {
        Err(format!(
            "notifications the processor could not handle; see them with \
             `intercom-dev dlq list --queue-url {queue_url}`, fix the cause, then \
             `intercom-dev dlq redrive --queue-url {queue_url}`"
        ))
    }
}

/// One of the stack's alarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub name: String,
    pub description: String,
    /// In the `ALARM` state (`INSUFFICIENT_DATA` is a quiet new stack).
    pub firing: bool,
}

/// The metric and composite alarms whose actions include `topic_arn`.
async fn alarms(sdk: &SdkConfig, topic_arn: &str) -> Result<Vec<Alarm>, String> {
    let mut pages = aws_sdk_cloudwatch::Client::new(sdk)
        .describe_alarms()
        .action_prefix(topic_arn)
        // Without `AlarmTypes`, CloudWatch returns metric alarms only.
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            format!(
                "reading the alarms: {}",
                aws_sdk_cloudwatch::error::DisplayErrorContext(e)
            )
        })?;
        let metric = page.metric_alarms().iter().map(|a| {
            (
                a.alarm_name(),
                a.alarm_description(),
                a.alarm_actions(),
                a.state_value(),
            )
        });
        let composite = page.composite_alarms().iter().map(|a| {
            (
                a.alarm_name(),
                a.alarm_description(),
                a.alarm_actions(),
                a.state_value(),
            )
        });
        for (name, description, actions, state) in metric.chain(composite) {
            // `ActionPrefix` matches a prefix; the stack's alarms name the topic exactly.
            if actions.iter().any(|a| a == topic_arn) {
                found.push(Alarm {
                    name: name.unwrap_or_default().to_owned(),
                    description: description.unwrap_or_default().to_owned(),
                    firing: state == Some(&StateValue::Alarm),
                });
            }
        }
    }
    Ok(found)
}

/// Any alarm in `ALARM` is a finding, named with what it means; no alarm
/// at all means nothing watches the stack.
pub fn judge_alarms(alarms: &[Alarm]) -> Result<(), String> {
    if alarms.is_empty() {
        return Err("no alarm notifies the alarm topic: nothing watches this stack".to_owned());
    }
    let firing: Vec<String> = alarms
        .iter()
        .filter(|a| a.firing)
        .map(|a| format!("{} ({})", a.name, a.description))
        .collect();
    if firing.is_empty() {
        Ok(())
    } else {
        Err(format!("in ALARM: {}", firing.join("; ")))
    }
}

/// One subscription of the alarm topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `PendingConfirmation` until the endpoint confirms it (SNS's word).
    pub arn: String,
    pub protocol: String,
    pub endpoint: String,
}

impl Subscription {
    /// SNS lists a subscription with its ARN once confirmed; before, its
    /// ARN is `PendingConfirmation` (and `Deleted` once removed).
    pub fn confirmed(&self) -> bool {
        self.arn.starts_with("arn:")
    }
}

async fn subscriptions(sdk: &SdkConfig, topic_arn: &str) -> Result<Vec<Subscription>, String> {
    let mut pages = aws_sdk_sns::Client::new(sdk)
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            format!(
                "reading the alarm topic's subscriptions: {}",
                aws_sdk_sns::error::DisplayErrorContext(e)
            )
        })?;
        found.extend(page.subscriptions().iter().map(|s| Subscription {
            arn: s.subscription_arn().unwrap_or_default().to_owned(),
            protocol: s.protocol().unwrap_or_default().to_owned(),
            endpoint: s.endpoint().unwrap_or_default().to_owned(),
        }));
    }
    Ok(found)
}

/// Alarms that reach nobody are no alarms: at least one confirmed
/// subscription, and a word on the ones still waiting for their click.
pub fn judge_subscriptions(subscriptions: &[Subscription], topic_arn: &str) -> Result<(), String> {
    if subscriptions.iter().any(Subscription::confirmed) {
        return Ok(());
    }
    let pending: Vec<String> = subscriptions
        .iter()
        .filter(|s| s.arn == "PendingConfirmation")
        .map(|s| format!("{} {}", s.protocol, s.endpoint))
        .collect();
    if pending.is_empty() {
        Err(format!(
            "no subscription: the alarms notify nobody. Deploy with AlarmEmail=you@example.com \
             and confirm the email, or subscribe your pager to {topic_arn}"
        ))
    } else {
        Err(format!(
            "the alarms notify nobody yet: {} not confirmed (click the link SNS sent)",
            pending.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:intercom-AlarmTopic-ABC";

    #[test]
    fn the_last_message_is_shown_as_how_long_ago_and_when() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_428_800);
        let at = |ago: u64| Some(now - Duration::from_secs(ago));
        assert_eq!(
            since(at(30), now),
            "under a minute ago (2026-12-04T23:59:30Z)"
        );
        assert_eq!(since(at(300), now), "5 min ago (2026-12-04T23:55:00Z)");
        assert_eq!(since(at(3 * 3600), now), "3 h ago (2026-12-04T21:00:00Z)");
        assert_eq!(
            since(at(9 * 86400), now),
            "9 days ago (2026-11-26T00:00:00Z)"
        );
        assert_eq!(since(None, now), "none in the last 14 days");
    }

    #[test]
    fn the_stored_secret_holds_the_given_one_alone_or_during_a_rotation() {
        assert!(holds("new", "new"));
        assert!(holds("new, old", "old"));
        assert!(holds("new,old", " new ,other"));
        assert!(!holds("old", "new"));
        assert!(!holds("new-and-more", "new"));
    }

    #[test]
    fn a_dead_letter_queue_holding_anything_is_a_finding() {
        assert!(judge_dead_letters(0, "q").is_ok());
        let why = judge_dead_letters(3, "https://sqs/dlq").expect_err("3 dead");
        assert!(why.starts_with("notifications the processor"), "{why}");
        assert!(
            why.ends_with("dlq redrive --queue-url https://sqs/dlq`"),
            "{why}"
        );
        assert!(
            why.contains("dlq list --queue-url https://sqs/dlq"),
            "{why}"
        );
    }

    #[test]
    fn alarms_in_alarm_are_named_with_what_they_mean() {
        let quiet = Alarm {
            name: "s-OldestMessageAgeAlarm-1".into(),
            description: "falling behind".into(),
            firing: false,
        };
        let firing = Alarm {
            name: "s-SignatureFailuresAlarm-2".into(),
            description: "signatures fail".into(),
            firing: true,
        };
        assert!(judge_alarms(std::slice::from_ref(&quiet)).is_ok());
        let why = judge_alarms(&[quiet, firing]).expect_err("one firing");
        assert_eq!(
            why,
            "in ALARM: s-SignatureFailuresAlarm-2 (signatures fail)"
        );
        assert!(
            judge_alarms(&[])
                .expect_err("none")
                .contains("nothing watches")
        );
    }

    #[test]
    fn alarms_reach_somebody_only_through_a_confirmed_subscription() {
        let pending = Subscription {
            arn: "PendingConfirmation".into(),
            protocol: "email".into(),
            endpoint: "ops@example.com".into(),
        };
        let confirmed = Subscription {
            arn: format!("{TOPIC}:0f1e"),
            ..pending.clone()
        };
        let deleted = Subscription {
            arn: "Deleted".into(),
            ..pending.clone()
        };
        assert!(judge_subscriptions(&[pending.clone(), confirmed], TOPIC).is_ok());
        let why = judge_subscriptions(&[pending, deleted.clone()], TOPIC).expect_err("pending");
        assert!(why.contains("email ops@example.com not confirmed"), "{why}");
        let why = judge_subscriptions(&[deleted], TOPIC).expect_err("none");
        assert!(
            why.contains("notify nobody") && why.contains(TOPIC),
            "{why}"
        );
    }
}
