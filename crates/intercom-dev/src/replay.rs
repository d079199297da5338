//! `intercom-dev replay`: archived notifications back onto the queue, for a topic or family and a time range, as the receiver queued them.
//!
//! Each object under the archive's prefix whose partitions match is read,
//! its body verified again against its archived `signature` with the client
//! secret (an archive object alone cannot put a message on the queue), and
//! queued with the attributes and FIFO group the receiver gives it, plus
//! `replay` = the run id: the processor runs a replayed notification once
//! per run, even where idempotency remembers the original. On a FIFO queue
//! the deduplication id is the run's and the notification's, never the
//! original's: SQS would silently drop a replay within five minutes of the
//! original send ([`QueueMessage::replayed`]). A body too large for one SQS
//! message goes to the payload bucket, with a pointer on the queue, as the
//! receiver sends it; without `--payload-bucket` it fails, and says so.
//!
//! Both archive layouts are read: objects of one notification each, and
//! the stream layout's objects under `{prefix}stream/` (JSON lines,
//! gzip-compressed when their key ends `.gz`), whose lines hold the body or
//! point to the object that does. A stream partition holds every topic of
//! its day, so a replay of one topic reads the whole day's stream objects
//! and takes the lines of its topic. A notification found twice (a stream
//! retried by Firehose or by SQS, a body both in a line and in an object)
//! is queued once per run.
//!
//! Order: each FIFO group's notifications are queued in `created_at` order
//! (the contract's Destinations), whatever the listing order (topic first).
//! The day partition is the `created_at` date, so days are replayed oldest
//! first, each day's notifications read whole, sorted and queued: memory
//! holds one day, never the range ([`replay`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read as _;
use std::time::SystemTime;

use aws_sdk_s3::Client as S3;
use intercom_webhook::destination::{ArchiveRecord, ArchivedKey, STREAM_PREFIX, StreamPartition};
use intercom_webhook::envelope::Envelope;
use intercom_webhook::queue_message::{self, CarriedBody, Delivery, QueueMessage};
use intercom_webhook::signature::{VerifiedBody, Verifier};
use webhook_receiver::queue::{Queue, SqsQueue};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What to replay, and where.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub bucket: String,
    /// The archive's `ARCHIVE_PREFIX`.
    pub prefix: String,
    pub queue_url: String,
    /// Topic names, or families as `ticket.*`; empty takes every topic.
    pub topics: Vec<String>,
    /// Inclusive lower bound on `created_at` (epoch seconds).
    pub from: Option<i64>,
    /// Exclusive upper bound on `created_at`.
    pub to: Option<i64>,
    pub dry_run: bool,
    /// The client secret(s) the archived signatures verify with.
    pub secret: String,
    /// The `replay` attribute of every message of this run.
    pub run_id: String,
    /// The stack's `PAYLOAD_BUCKET`, for bodies too large for one message.
    pub payload_bucket: Option<String>,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Notifications whose partitions matched (each once).
    pub matched: usize,
    /// Queued (or, in a dry run, that would be).
    pub replayed: usize,
    /// Outside the time range once their `created_at` was read.
    pub out_of_range: usize,
    /// Not queued: unreadable, not verifying, or refused by SQS.
    pub failed: usize,
}

/// One archived notification: its exact body and its delivery facts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Archived {
    body: Vec<u8>,
    /// A stream line's own `topic`: its partition holds every topic.
    topic: Option<String>,
    signature: Option<String>,
    /// `received_at` and `subscription_id`, as object metadata names them.
    facts: HashMap<String, String>,
}

/// The notifications an archive object holds: one for an object of the
/// object layout, every line's for a stream object (gzip when `.gz`),
/// those pointing to an object left to that object's own listing.
fn archived_in(
    key: &str,
    data: Vec<u8>,
    metadata: HashMap<String, String>,
    stream: bool,
) -> Result<Vec<Archived>, String> {
    if !stream {
        return Ok(vec![Archived {
            body: data,
            topic: None,
            signature: metadata.get("signature").cloned(),
            facts: metadata,
        }]);
    }
    let text = if key.ends_with(".gz") {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(data.as_slice())
            .read_to_string(&mut text)
            .map_err(|e| format!("not gzip of UTF-8 lines: {e}"))?;
        text
    } else {
        String::from_utf8(data).map_err(|_| "not UTF-8 lines".to_owned())?
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| match ArchiveRecord::parse(line) {
            Ok(ArchiveRecord { body: None, .. }) => None,
            Ok(record) => {
                let facts = [
                    ("received_at", record.received_at),
                    ("subscription_id", record.subscription_id),
                ]
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_owned(), value?)))
                .collect();
                Some(Ok(Archived {
                    body: record.body.unwrap_or_default(),
                    topic: Some(record.topic),
                    signature: record.signature,
                    facts,
                }))
            }
            Err(e) => Some(Err(e)),
        })
        .collect()
}

/// Reads a `--from`/`--to` bound: a date (`2026-11-30`, the day's start;
/// with `end_of_day` the next day's start) or an RFC 3339 time.
pub fn parse_bound(text: &str, end_of_day: bool) -> Result<i64, String> {
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        let date = if end_of_day {
            date.tomorrow().map_err(|e| e.to_string())?
        } else {
            date
        };
        return date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp().as_second())
            .map_err(|e| e.to_string());
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|_| format!("`{text}` is neither a date (2026-11-30) nor an RFC 3339 time"))
}

/// Whether `topic` is one of `patterns` (names, or families as `ticket.*`);
/// no patterns take every topic.
pub fn topic_matches(patterns: &[String], topic: &str) -> bool {
    patterns.is_empty()
        || patterns
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(family) => topic.starts_with(family),
                None => pattern == topic,
            })
}

/// The day partitions a time range touches, as `YYYY-MM-DD` bounds.
fn date_bounds(from: Option<i64>, to: Option<i64>) -> (Option<String>, Option<String>) {
    let date = intercom_webhook::destination::utc_date;
    (from.map(date), to.map(|to| date(to - 1)))
}

/// The day partitions `options` select, oldest day first, each with the
/// partition paths of both layouts holding it (and whether it is the
/// stream's). Found by listing with a delimiter, level by level, so that
/// nothing but partition names is held for the whole range: the object
/// layout's `app_id=…/topic=…/dt=…/`, chosen by topic; the stream's
/// `stream/app_id=…/dt=…/`, every topic together (its lines are chosen one
/// by one), and an earlier archive's `stream/app_id=…/topic=…/dt=…/`.
async fn day_partitions(
    s3: &S3,
    options: &ReplayOptions,
) -> Result<BTreeMap<String, Vec<(String, bool)>>, Error> {
    let (first_day, last_day) = date_bounds(options.from, options.to);
    let in_days = |date: &str| {
        first_day.as_deref().is_none_or(|d| date >= d)
            && last_day.as_deref().is_none_or(|d| date <= d)
    };
    let bucket = &options.bucket;
    let mut days: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    let root = &options.prefix;
    for app in app_dirs(s3, bucket, root).await? {
        for topic in list_dirs(s3, bucket, &app).await? {
            for day in list_dirs(s3, bucket, &topic).await? {
                let Some(partition) = ArchivedKey::of_partition(&day[root.len()..]) else {
                    continue;
                };
                if in_days(&partition.date) && topic_matches(&options.topics, &partition.topic) {
                    days.entry(partition.date).or_default().push((day, false));
                }
            }
        }
    }
    let stream_root = format!("{root}{STREAM_PREFIX}");
    for app in app_dirs(s3, bucket, &stream_root).await? {
        for dir in list_dirs(s3, bucket, &app).await? {
            let under = if dir[app.len()..].starts_with("topic=") {
                list_dirs(s3, bucket, &dir).await?
            } else {
                vec![dir]
            };
            for day in under {
                let Some(partition) = StreamPartition::of_partition(&day[stream_root.len()..])
                else {
                    continue;
                };
                let topic = partition.topic.as_deref();
                if in_days(&partition.date)
                    && topic.is_none_or(|topic| topic_matches(&options.topics, topic))
                {
                    days.entry(partition.date).or_default().push((day, true));
                }
            }
        }
    }
    Ok(days)
}

/// The `app_id=…/` "folders" right under `root`.
async fn app_dirs(s3: &S3, bucket: &str, root: &str) -> Result<Vec<String>, Error> {
    let mut apps = list_dirs(s3, bucket, root).await?;
    apps.retain(|app| app[root.len()..].starts_with("app_id="));
    Ok(apps)
}

/// The "folders" right under `prefix` (S3's common prefixes with `/`).
async fn list_dirs(s3: &S3, bucket: &str, prefix: &str) -> Result<Vec<String>, Error> {
    let mut dirs = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| listing_error(bucket, prefix, e))?;
        dirs.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
    }
    Ok(dirs)
}

/// The archive objects right under a day `partition`: any file name in the
/// stream layout, `.json` ones in the object layout.
async fn archive_keys(
    s3: &S3,
    bucket: &str,
    partition: &str,
    stream: bool,
) -> Result<Vec<String>, Error> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(partition)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| listing_error(bucket, partition, e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .filter(|key| {
                    let name = &key[partition.len()..];
                    !name.is_empty() && !name.contains('/') && (stream || name.ends_with(".json"))
                })
                .map(str::to_owned),
        );
    }
    Ok(keys)
}

fn listing_error(bucket: &str, prefix: &str, error: impl std::error::Error) -> Error {
    format!(
        "listing s3://{bucket}/{prefix}: {}",
        aws_sdk_s3::error::DisplayErrorContext(error)
    )
    .into()
}

/// One notification of the day being replayed, waiting for its turn.
struct Pending {
    created_at: i64,
    /// Where it was read: the key, and the line of a stream object.
    label: String,
    archived: Archived,
}

/// Replays what `options` select; `progress` hears a line per day, one per
/// notification, and the summary.
///
/// Each FIFO group's notifications are queued in `created_at` order,
/// whatever the archive's listing order: a notification's day partition is
/// its `created_at` date, so the days are taken oldest first and each day's
/// notifications (every topic, both layouts) are read, sorted by
/// `created_at` (ties in listing order) and queued one at a time. Memory
/// holds one day's notifications, never the whole range. A notification
/// found twice is queued once (its copies share its day). On a FIFO queue,
/// once a notification of a group fails, the group's later ones are not
/// queued (they fail too, and say why), so that no group is queued out of
/// order.
pub async fn replay(
    options: &ReplayOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary, Error> {
    let verifier =
        Verifier::from_comma_separated(&options.secret).map_err(|e| format!("--secret: {e}"))?;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let s3 = lambda_init::aws::s3_client(&sdk);
    let mut queue = SqsQueue::new(&sdk, options.queue_url.clone());
    if let Some(bucket) = &options.payload_bucket {
        queue = queue.with_payload_bucket(&sdk, bucket.clone());
    }
    let fifo = options.queue_url.ends_with(".fifo");
    let days = day_partitions(&s3, options).await?;
    let mut summary = Summary::default();
    progress(&format!(
        "{} day(s) of archive partitions match in s3://{}/{}",
        days.len(),
        options.bucket,
        options.prefix
    ));
    // Groups with a notification that failed: their later ones wait.
    let mut broken_groups = HashSet::new();
    for (n, (date, partitions)) in days.iter().enumerate() {
        let day = format!("[day {}/{}] {date}", n + 1, days.len());
        let mut pending = Vec::new();
        let mut seen = HashSet::new();
        for (partition, stream) in partitions {
            for key in archive_keys(&s3, &options.bucket, partition, *stream).await? {
                let archived = match fetch(&s3, &options.bucket, &key, *stream).await {
                    Ok(archived) => archived,
                    Err(error) => {
                        summary.failed += 1;
                        progress(&format!("{day} {key}: failed: {error}"));
                        continue;
                    }
                };
                for (i, archived) in archived.into_iter().enumerate() {
                    if let Some(topic) = &archived.topic
                        && !topic_matches(&options.topics, topic)
                    {
                        continue;
                    }
                    let label = if *stream {
                        format!("{key} line {}", i + 1)
                    } else {
                        key.clone()
                    };
                    match prepare(options, &verifier, &archived, &mut seen) {
                        Ok(Prepared::Again) => {}
                        Ok(Prepared::OutOfRange) => {
                            summary.matched += 1;
                            summary.out_of_range += 1;
                        }
                        Ok(Prepared::Pending(created_at)) => pending.push(Pending {
                            created_at,
                            label,
                            archived,
                        }),
                        Err(error) => {
                            summary.matched += 1;
                            summary.failed += 1;
                            progress(&format!("{day} {label}: failed: {error}"));
                        }
                    }
                }
            }
        }
        pending.sort_by_key(|p| p.created_at);
        progress(&format!(
            "{day}: {} notification(s) to queue, oldest first",
            pending.len()
        ));
        let total = pending.len();
        for (i, one) in pending.into_iter().enumerate() {
            summary.matched += 1;
            let step = format!("{day} [{}/{total}] {}", i + 1, one.label);
            match send_one(
                options,
                &queue,
                &verifier,
                fifo,
                &one.archived,
                &broken_groups,
            )
            .await
            {
                Ok(topic) => {
                    summary.replayed += 1;
                    let verb = if options.dry_run {
                        "would queue"
                    } else {
                        "queued"
                    };
                    progress(&format!("{step}: {verb} ({topic})"));
                }
                Err((error, group)) => {
                    summary.failed += 1;
                    broken_groups.extend(group);
                    progress(&format!("{step}: failed: {error}"));
                }
            }
        }
    }
    let verb = if options.dry_run {
        "would replay"
    } else {
        "replayed"
    };
    progress(&format!(
        "{verb} {} of {} matching notification(s) as run {}; {} outside the time range; {} failed",
        summary.replayed, summary.matched, options.run_id, summary.out_of_range, summary.failed
    ));
    Ok(summary)
}

/// Reads the object at `key` and what it holds.
async fn fetch(s3: &S3, bucket: &str, key: &str, stream: bool) -> Result<Vec<Archived>, String> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?;
    let metadata = object.metadata().cloned().unwrap_or_default();
    let data = object
        .body
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_vec();
    archived_in(key, data, metadata, stream)
}

enum Prepared {
    /// To queue; its `created_at`.
    Pending(i64),
    OutOfRange,
    /// Already taken in this run (another copy in the archive).
    Again,
}

/// Verifies an archived notification and reads its `created_at`.
fn prepare(
    options: &ReplayOptions,
    verifier: &Verifier,
    archived: &Archived,
    seen: &mut HashSet<String>,
) -> Result<Prepared, String> {
    let envelope = verified_envelope(verifier, archived)?;
    // Once per run: by notification id (Intercom's retry of a notification
    // is a second line of the stream), or the body's hash for a null id.
    let identity = envelope.id.as_ref().map_or_else(
        || {
            format!(
                "sha256:{}",
                intercom_webhook::envelope::body_sha256(&archived.body)
            )
        },
        |id| format!("id:{id}"),
    );
    if !seen.insert(identity) {
        return Ok(Prepared::Again);
    }
    if options.from.is_some_and(|from| envelope.created_at < from)
        || options.to.is_some_and(|to| envelope.created_at >= to)
    {
        return Ok(Prepared::OutOfRange);
    }
    Ok(Prepared::Pending(envelope.created_at))
}

/// The newest `created_at` of an archived notification about each object
/// (`{app_id}:{type}:{id}`), of the notifications created from `from` on:
/// what `backfill` compares Intercom's objects with. Every topic is read;
/// a body that does not verify with `verifier` is not counted.
pub(crate) async fn newest_by_object(
    sdk: &aws_config::SdkConfig,
    bucket: &str,
    prefix: &str,
    from: i64,
    verifier: &Verifier,
    progress: &mut dyn FnMut(&str),
) -> Result<HashMap<String, i64>, Error> {
    let s3 = lambda_init::aws::s3_client(sdk);
    let options = ReplayOptions {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        queue_url: String::new(),
        topics: Vec::new(),
        from: Some(from),
        to: None,
        dry_run: true,
        secret: String::new(),
        run_id: String::new(),
        payload_bucket: None,
    };
    let mut newest: HashMap<String, i64> = HashMap::new();
    for partitions in day_partitions(&s3, &options).await?.into_values() {
        for (partition, stream) in partitions {
            for key in archive_keys(&s3, bucket, &partition, stream).await? {
                let archived = match fetch(&s3, bucket, &key, stream).await {
                    Ok(archived) => archived,
                    Err(error) => {
                        progress(&format!("{key}: not read: {error}"));
                        continue;
                    }
                };
                for one in &archived {
                    let Ok(envelope) = verified_envelope(verifier, one) else {
                        continue;
                    };
                    if let Some(object) = envelope.object() {
                        let seen = newest.entry(object).or_insert(envelope.created_at);
                        *seen = (*seen).max(envelope.created_at);
                    }
                }
            }
        }
    }
    Ok(newest)
}

/// The archived body, verified against its archived signature; and that signature.
fn verified<'a>(
    verifier: &Verifier,
    archived: &'a Archived,
) -> Result<(VerifiedBody<'a>, &'a str), String> {
    let signature = archived
        .signature
        .as_deref()
        .ok_or("the archive keeps no `signature` for it")?;
    let verified = verifier
        .verify(&archived.body, Some(signature.as_bytes()))
        .map_err(|_| "its signature does not verify with the given secret(s)".to_owned())?;
    Ok((verified, signature))
}

fn verified_envelope(verifier: &Verifier, archived: &Archived) -> Result<Envelope, String> {
    let (verified, _) = verified(verifier, archived)?;
    Envelope::parse(verified).map_err(|e| e.to_string())
}

/// Queues one notification as the receiver did (or, in a dry run, only
/// checks it); its topic, or why not and its FIFO group.
async fn send_one(
    options: &ReplayOptions,
    queue: &SqsQueue,
    verifier: &Verifier,
    fifo: bool,
    archived: &Archived,
    broken_groups: &HashSet<String>,
) -> Result<String, (String, Option<String>)> {
    let body = &archived.body;
    let (verified, signature) = verified(verifier, archived).map_err(|e| (e, None))?;
    let envelope = Envelope::parse(verified).map_err(|e| (e.to_string(), None))?;
    let delivery = delivery_of(signature, &archived.facts);
    let carried = CarriedBody::of(verified.as_bytes());
    let mut message = QueueMessage::build(verified, carried, &envelope, &delivery, fifo)
        .replayed(&options.run_id);
    // The archive keeps no attributes: a synced notification is marked again.
    if intercom_webhook::synced::written_by_backfill(body) {
        message = message.synced();
    }
    let group = message.fifo.as_ref().map(|f| f.group_id.clone());
    if let Some(group) = group.as_ref().filter(|g| broken_groups.contains(*g)) {
        return Err((
            format!(
                "not queued: an earlier notification of FIFO group {group} failed, and its group keeps its order"
            ),
            None,
        ));
    }
    if options.dry_run {
        return Ok(envelope.topic.clone());
    }
    send_as_the_receiver(queue, message, body)
        .await
        .map_err(|error| (error, group.clone()))?;
    Ok(envelope.topic.clone())
}

/// Sends `message` as the receiver would: when the message is too large
/// for SQS (the carried body and every attribute count), `body` goes to the
/// payload bucket first and the message points at it.
pub(crate) async fn send_as_the_receiver(
    queue: &SqsQueue,
    mut message: QueueMessage<'_>,
    body: &[u8],
) -> Result<(), String> {
    if !message.fits() {
        let Some(bucket) = queue.payload_bucket() else {
            return Err(format!(
                "{} bytes is more than one SQS message takes: pass --payload-bucket \
                 (the stack's PayloadBucketName output) to send it as the receiver does",
                body.len()
            ));
        };
        let key = queue_message::payload_key(body);
        message = message.pointing_to(bucket, &key, body.len());
        queue
            .store_payload(&key, body)
            .await
            .map_err(|e| e.to_string())?;
    }
    queue.send(&message, None).await.map_err(|e| e.to_string())
}

/// The delivery facts an archived object's metadata keeps: `received_at`
/// (now, when it has none) and `subscription_id`.
fn delivery_of<'m>(signature: &'m str, metadata: &'m HashMap<String, String>) -> Delivery<'m> {
    Delivery {
        signature,
        subscription_id: metadata.get("subscription_id").map(String::as_str),
        received_at: metadata
            .get("received_at")
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or_else(SystemTime::now, SystemTime::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archived_delivery_facts_are_given_back() {
        let metadata = HashMap::from([
            (
                "received_at".to_owned(),
                "2026-11-30T09:00:00.125Z".to_owned(),
            ),
            ("subscription_id".to_owned(), "nsub_1".to_owned()),
        ]);
        let delivery = delivery_of("sha1=ab", &metadata);
        assert_eq!(delivery.signature, "sha1=ab");
        assert_eq!(delivery.subscription_id, Some("nsub_1"));
        assert_eq!(
            delivery.received_at,
            SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_796_029_200_125)
        );
        let none = HashMap::new();
        let delivery = delivery_of("sha1=ab", &none);
        assert_eq!(delivery.subscription_id, None);
        assert!(
            delivery
                .received_at
                .elapsed()
                .is_ok_and(|e| e.as_secs() < 5)
        );
    }

    #[test]
    fn a_stream_object_gives_each_lines_body_and_leaves_pointers_to_their_objects() {
        let line = |id: &str, body: Option<&[u8]>, object: Option<&str>| {
            ArchiveRecord {
                app_id: "a".into(),
                topic: "ping".into(),
                created_at: 1,
                id: Some(id.into()),
                signature: Some(format!("sha1={id}")),
                received_at: Some("2026-11-30T09:00:00Z".into()),
                subscription_id: None,
                body: body.map(<[u8]>::to_vec),
                object: object.map(str::to_owned),
            }
            .to_line()
        };
        let text = line("n1", Some(br#"{"id":"n1"}"#), None)
            + &line(
                "n2",
                None,
                Some("app_id=a/topic=ping/dt=1970-01-01/n2.json"),
            )
            + &line("n3", Some(b"{\n\"id\": \"n3\"}"), None);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gzip, text.as_bytes()).expect("gzip");
        let data = gzip.finish().expect("gzip");
        let read = archived_in("stream/x.gz", data, HashMap::new(), true).expect("reads");
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].body, br#"{"id":"n1"}"#);
        assert_eq!(read[0].signature.as_deref(), Some("sha1=n1"));
        assert_eq!(
            read[0].topic.as_deref(),
            Some("ping"),
            "chosen line by line"
        );
        assert_eq!(read[0].facts["received_at"], "2026-11-30T09:00:00Z");
        assert_eq!(read[1].body, b"{\n\"id\": \"n3\"}");
        let plain =
            archived_in("stream/x", text.into_bytes(), HashMap::new(), true).expect("reads");
        assert_eq!(plain, read);
        assert!(archived_in("stream/x.gz", b"not gzip".to_vec(), HashMap::new(), true).is_err());
    }

    #[test]
    fn bounds_are_days_or_times() {
        assert_eq!(parse_bound("2026-11-30", false), Ok(1_795_996_800));
        assert_eq!(parse_bound("2026-11-30", true), Ok(1_796_083_200));
        assert_eq!(parse_bound("2026-11-30T12:00:00Z", true), Ok(1_796_040_000));
        assert!(parse_bound("yesterday", false).is_err());
        assert_eq!(
            date_bounds(Some(1_795_996_800), Some(1_796_083_200)),
            (Some("2026-11-30".into()), Some("2026-11-30".into()))
        );
    }

    #[test]
    fn topics_by_name_or_family() {
        let patterns = ["ticket.*".to_owned(), "contact.user.created".to_owned()];
        assert!(topic_matches(&patterns, "ticket.admin.replied"));
        assert!(topic_matches(&patterns, "contact.user.created"));
        assert!(!topic_matches(&patterns, "contact.lead.created"));
        assert!(!topic_matches(
            &["conversation.*".into()],
            "conversation_part.redacted"
        ));
        assert!(topic_matches(&[], "anything"));
    }
}
