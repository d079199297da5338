//! `intercom-dev backfill`: what Intercom never delivered, recovered from its REST API as synced notifications.
//!
//! For each kind asked (conversations, tickets, contacts), Intercom's
//! search finds the objects updated in the window ([`Intercom::updated_between`],
//! every page, inside the rate limit). Each is compared with what the
//! pipeline has seen of it: the newest `created_at` of a notification about
//! it, from the freshness items of the idempotency table (`Freshness=tag`
//! or `skip`) and from the S3 archive, whichever are given. An object whose
//! `updated_at` is newer than anything seen changed without a notification
//! reaching the pipeline: one [`Synced`] notification carrying its current
//! state is queued, signed with the client secret, in the object's FIFO
//! group, oldest `updated_at` first.
//!
//! Twice over the same window queues nothing the second time: every
//! queued state is written to the table as `backfill#{object}#{updated_at}`
//! (after the send) and skipped when found, and once
//! processed the state is what the pipeline has seen. Without a table a
//! second run within SQS's five-minute FIFO deduplication window is
//! dropped by SQS, later ones by the processor's idempotency (the id is
//! the same for the same state).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::Client as DynamoDb;
use aws_sdk_dynamodb::types::AttributeValue;
use intercom_api::{Client, Searchable};
use intercom_webhook::envelope::Envelope;
use intercom_webhook::queue_message::{CarriedBody, Delivery, QueueMessage};
use intercom_webhook::signature::Verifier;
use intercom_webhook::synced::{self, Synced};
use serde_json::{Map, Value};
use tokio::time::Instant;
use webhook_receiver::queue::SqsQueue;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long a ledger item is kept: longer than any window worth asking.
const LEDGER_TTL: Duration = Duration::from_secs(35 * 86_400);

/// How long one search (every page of one kind) may take, 429s waited out.
const SEARCH_BUDGET: Duration = Duration::from_secs(30 * 60);

/// What to backfill, and where.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// The window of `updated_at`: `since` inclusive, `until` exclusive.
    pub since: i64,
    pub until: i64,
    pub kinds: Vec<Searchable>,
    pub queue_url: String,
    /// The idempotency table: freshness items (with `function_name`) and
    /// the ledger of states queued.
    pub table: Option<String>,
    /// The processor's function name, which its table items start with.
    pub function_name: Option<String>,
    /// The S3 archive (`ARCHIVE_BUCKET`, `ARCHIVE_PREFIX`).
    pub archive: Option<(String, String)>,
    /// The client secret(s); the first signs.
    pub secret: String,
    /// The workspace (`app_id`); `GET /me` tells when `None`.
    pub app_id: Option<String>,
    pub payload_bucket: Option<String>,
    pub dry_run: bool,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Objects Intercom says were updated in the window.
    pub found: usize,
    /// Of those, with a notification at least as new already seen.
    pub seen: usize,
    /// Queued by an earlier run (the ledger).
    pub queued_before: usize,
    /// Queued now (or, in a dry run, that would be).
    pub queued: usize,
    pub failed: usize,
}

/// One object to queue.
struct Missed {
    object: String,
    updated_at: i64,
    last_seen: Option<i64>,
    item: Map<String, Value>,
}

pub async fn backfill(
    options: &BackfillOptions,
    intercom: &Client,
    sdk: &aws_config::SdkConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary, Error> {
    if options.since >= options.until {
        return Err("--since must be before --until".into());
    }
    let freshness = match (&options.table, &options.function_name) {
        (Some(table), Some(function)) => Some((table.as_str(), function.as_str())),
        _ => None,
    };
    if freshness.is_none() && options.archive.is_none() {
        return Err(
            "nothing to compare Intercom's objects with: give the archive \
                    (--archive-bucket) or the table with the processor's name \
                    (--table and --function-name, with Freshness=tag or skip)"
                .into(),
        );
    }
    let verifier =
        Verifier::from_comma_separated(&options.secret).map_err(|e| format!("--secret: {e}"))?;
    let handle = || intercom.until(Instant::now() + SEARCH_BUDGET);
    let app_id = match &options.app_id {
        Some(app_id) => app_id.clone(),
        None => {
            let me: Value = handle()
                .request(hyper::Method::GET, "/me", None)
                .await
                .map_err(|e| format!("GET /me (to learn the workspace's app id): {e}"))?;
            me["app"]["id_code"]
                .as_str()
                .ok_or("GET /me names no app.id_code: pass --app-id")?
                .to_owned()
        }
    };

    let mut found = Vec::new();
    for kind in &options.kinds {
        let mut pages = 0;
        let objects: Vec<Map<String, Value>> = handle()
            .updated_between(*kind, options.since, options.until, &mut |_| pages += 1)
            .await
            .map_err(|e| format!("searching {}: {e}", kind.path()))?;
        progress(&format!(
            "{}: {} updated in the window ({pages} page(s))",
            kind.item_type(),
            objects.len()
        ));
        found.extend(objects.into_iter().filter_map(|item| {
            let object = synced::object_of(&app_id, &item)?;
            let updated_at = item.get("updated_at")?.as_i64()?;
            Some((object, updated_at, item))
        }));
    }
    let mut summary = Summary {
        found: found.len(),
        ..Summary::default()
    };

    let dynamodb = options
        .table
        .as_ref()
        .map(|_| aws_sdk_dynamodb::Client::new(sdk));
    let mut newest: HashMap<String, i64> = HashMap::new();
    if let Some((bucket, prefix)) = &options.archive {
        let archived = crate::replay::newest_by_object(
            sdk,
            bucket,
            prefix,
            options.since,
            &verifier,
            progress,
        )
        .await?;
        progress(&format!(
            "the archive: notifications about {} object(s) since the window opened",
            archived.len()
        ));
        newest.extend(archived);
    }
    if let (Some(dynamodb), Some((table, function))) = (&dynamodb, freshness) {
        for (object, _, _) in &found {
            let key = format!("{function}#object#{object}");
            if let Some(created_at) = freshness_of(dynamodb, table, &key).await? {
                let seen = newest.entry(object.clone()).or_insert(created_at);
                *seen = (*seen).max(created_at);
            }
        }
    }

    let mut missed = Vec::new();
    for (object, updated_at, item) in found {
        let last_seen = newest.get(&object).copied();
        if last_seen.is_some_and(|seen| seen >= updated_at) {
            summary.seen += 1;
            continue;
        }
        missed.push(Missed {
            object,
            updated_at,
            last_seen,
            item,
        });
    }
    missed.sort_by_key(|m| m.updated_at);
    progress(&format!(
        "{} object(s) found, {} with their newest notification seen, {} changed without one",
        summary.found,
        summary.seen,
        missed.len()
    ));

    let mut queue = SqsQueue::new(sdk, options.queue_url.clone());
    if let Some(bucket) = &options.payload_bucket {
        queue = queue.with_payload_bucket(sdk, bucket.clone());
    }
    let fifo = options.queue_url.ends_with(".fifo");
    let now = since_epoch();
    for one in missed {
        let ledger_key = format!("backfill#{}#{}", one.object, one.updated_at);
        if let (Some(dynamodb), Some(table)) = (&dynamodb, &options.table)
            && in_ledger(dynamodb, table, &ledger_key).await?
        {
            summary.queued_before += 1;
            progress(&format!(
                "{} (updated_at {}): queued by an earlier run",
                one.object, one.updated_at
            ));
            continue;
        }
        let synced = Synced {
            app_id: &app_id,
            item: &one.item,
            last_seen_created_at: one.last_seen,
            since: options.since,
            until: options.until,
            queued_at: now,
        };
        let seen = one
            .last_seen
            .map_or_else(|| "none seen".to_owned(), |t| format!("last seen {t}"));
        if options.dry_run {
            summary.queued += 1;
            progress(&format!(
                "{} (updated_at {}, {seen}): would queue",
                one.object, one.updated_at
            ));
            continue;
        }
        match send(&queue, &verifier, fifo, &synced).await {
            Ok(id) => {
                summary.queued += 1;
                progress(&format!(
                    "{} (updated_at {}, {seen}): queued as {id}",
                    one.object, one.updated_at
                ));
                if let (Some(dynamodb), Some(table)) = (&dynamodb, &options.table) {
                    record(dynamodb, table, &ledger_key, now).await?;
                }
            }
            Err(error) => {
                summary.failed += 1;
                progress(&format!("{}: failed: {error}", one.object));
            }
        }
    }
    let verb = if options.dry_run {
        "would queue"
    } else {
        "queued"
    };
    progress(&format!(
        "{verb} {} synced notification(s); {} found, {} seen, {} queued before, {} failed",
        summary.queued, summary.found, summary.seen, summary.queued_before, summary.failed
    ));
    Ok(summary)
}

/// Signs the synced notification and queues it as the receiver queues
/// Intercom's (its attributes, its FIFO group and deduplication id); its id.
async fn send(
    queue: &SqsQueue,
    verifier: &Verifier,
    fifo: bool,
    synced: &Synced<'_>,
) -> Result<String, String> {
    let body = synced.body()?;
    let signature = verifier.sign(&body);
    let verified = verifier
        .verify(&body, Some(signature.as_bytes()))
        .map_err(|e| e.to_string())?;
    let envelope = Envelope::parse(verified).map_err(|e| e.to_string())?;
    let delivery = Delivery {
        signature: &signature,
        subscription_id: None,
        received_at: SystemTime::now(),
    };
    let carried = CarriedBody::of(&body);
    let message = QueueMessage::build(verified, carried, &envelope, &delivery, fifo).synced();
    crate::replay::send_as_the_receiver(queue, message, &body).await?;
    Ok(envelope.id.unwrap_or_default())
}

/// The table's item under `key`, unless it is absent or expired (its TTL
/// passed, though DynamoDB may not have deleted it yet).
async fn live_item(
    dynamodb: &DynamoDb,
    table: &str,
    key: &str,
) -> Result<Option<HashMap<String, AttributeValue>>, Error> {
    let read = dynamodb
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(key.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| format!("reading {key} from {table}: {}", display(e)))?;
    Ok(read
        .item
        .filter(|item| number(item, "expiration").is_none_or(|at| at >= since_epoch())))
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// The object's newest `created_at` its freshness item holds, unexpired.
async fn freshness_of(dynamodb: &DynamoDb, table: &str, key: &str) -> Result<Option<i64>, Error> {
    Ok(live_item(dynamodb, table, key)
        .await?
        .and_then(|item| number(&item, "newest_created_at")))
}

/// Whether an earlier run queued this state (an unexpired ledger item).
async fn in_ledger(dynamodb: &DynamoDb, table: &str, key: &str) -> Result<bool, Error> {
    Ok(live_item(dynamodb, table, key).await?.is_some())
}

/// Writes the ledger item of a queued state.
async fn record(dynamodb: &DynamoDb, table: &str, key: &str, now: i64) -> Result<(), Error> {
    let expiration = now + LEDGER_TTL.as_secs() as i64;
    dynamodb
        .put_item()
        .table_name(table)
        .item("id", AttributeValue::S(key.to_owned()))
        .item("status", AttributeValue::S("QUEUED".to_owned()))
        .item("expiration", AttributeValue::N(expiration.to_string()))
        .send()
        .await
        .map_err(|e| format!("writing {key} to {table}: {}", display(e)))?;
    Ok(())
}

fn display(error: impl std::error::Error) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string()
}

fn since_epoch() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
