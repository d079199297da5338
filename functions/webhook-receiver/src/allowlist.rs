//! The source allowlist at request time: the list's own entries, and for each
//! region name Intercom's published ranges, fetched in the background and
//! kept fresh, with the compiled addresses as the fallback.
//!
//! Only a list with a region name fetches anything (an empty `AllowedIps`,
//! or addresses alone, cost nothing). At cold start a fetch of each named
//! region's file starts in the background; until it lands, the compiled
//! addresses are the region's list. Once a file is read it *is* the region's
//! list (Intercom's ranges, [`OUTBOUND_SERVICE`] entries only); a file that
//! cannot be read or parsed is logged and leaves the last good copy (or the
//! compiled addresses) in place, never an empty list. The copy is refreshed
//! in the background after [`REFRESH_AFTER`] (Intercom refreshes its files
//! daily), retried [`RETRY_AFTER`] after a failure, and a request from a
//! source in no list waits up to [`WAIT_FOR_FETCH`] for a fetch (the one
//! under way, or a new one when the last is older than
//! [`RECHECK_AFTER_UNLISTED`]) before it is refused: a range Intercom started
//! using today is let in, and a slow fetch never refuses a genuine delivery
//! from a listed address.
//!
//! [`OUTBOUND_SERVICE`]: intercom_webhook::source_filter::OUTBOUND_SERVICE

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use intercom_webhook::source_filter::{IntercomRegion, SourceFilter, published_ranges};
use ipnet::IpNet;
use tokio::time::Instant;

/// Where Intercom publishes its ranges: `{base}/{us,eu,au}/intercom-ip-ranges.json`.
pub const INTERCOM_RANGES_BASE: &str = "https://static.intercomcdn.com/intercom-ips";
/// How long one region's fetch may take, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a request from a source in no list waits for a fetch.
pub const WAIT_FOR_FETCH: Duration = Duration::from_millis(1000);
/// Age of a good copy at which it is fetched again.
pub const REFRESH_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Time after a failed fetch before the next.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);
/// A source in no list fetches again when the last fetch is older than this.
pub const RECHECK_AFTER_UNLISTED: Duration = Duration::from_secs(600);

/// Reads a URL's body: HTTPS to Intercom, plain HTTP to a loopback test server.
pub trait RangesFetcher: Send + Sync + fmt::Debug + 'static {
    fn fetch<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>>;
}

/// The allowlist a receiver checks each `POST`'s source against.
#[derive(Debug)]
pub struct AllowList {
    filter: SourceFilter,
    /// Present when the list names a region and fetching is on.
    published: Option<Arc<Published>>,
}

#[derive(Debug)]
struct Published {
    /// The regions the list names.
    regions: Vec<IntercomRegion>,
    base_url: String,
    fetcher: Box<dyn RangesFetcher>,
    state: RwLock<State>,
    /// Held while a fetch runs: one at a time, and a way to wait for it.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    /// Each region's last good file.
    ranges: BTreeMap<IntercomRegion, Vec<IpNet>>,
    /// When every named region was last read successfully.
    fetched: Option<Instant>,
    /// When the last fetch began.
    attempted: Option<Instant>,
}

impl From<SourceFilter> for AllowList {
    /// The list as written: regions stand for their compiled addresses and
    /// nothing is fetched.
    fn from(filter: SourceFilter) -> Self {
        Self {
            filter,
            published: None,
        }
    }
}

impl AllowList {
    /// A list whose regions follow the files under `base_url`, read with
    /// `fetcher`; without a region name it fetches nothing. Call
    /// [`AllowList::start`] once inside the runtime.
    pub fn fetching(
        filter: SourceFilter,
        base_url: String,
        fetcher: Box<dyn RangesFetcher>,
    ) -> Self {
        let published = (!filter.regions().is_empty()).then(|| {
            Arc::new(Published {
                regions: filter.regions().to_vec(),
                base_url,
                fetcher,
                state: RwLock::new(State::default()),
                fetching: tokio::sync::Mutex::new(()),
            })
        });
        Self { filter, published }
    }

    /// Starts the first fetch in the background (cold start).
    pub fn start(&self) {
        if let Some(published) = &self.published {
            tokio::spawn(Arc::clone(published).refresh(Duration::ZERO));
        }
    }

    /// Whether `source` may deliver. A source in no list waits (bounded)
    /// for a fetch before it is refused.
    pub async fn allows(&self, source: Option<IpAddr>) -> bool {
        let Some(published) = &self.published else {
            return self.filter.allows(source);
        };
        if source.is_none() {
            return false;
        }
        if published.allows_now(&self.filter, source) {
            published.refresh_if_due();
            return true;
        }
        let fetch = tokio::spawn(Arc::clone(published).refresh(RECHECK_AFTER_UNLISTED));
        if tokio::time::timeout(WAIT_FOR_FETCH, fetch).await.is_err() {
            tracing::warn!(
                source_ip = source.map(tracing::field::display),
                "intercom's published ranges were not read in time to judge this source"
            );
        }
        published.allows_now(&self.filter, source)
    }
}

impl Published {
    fn allows_now(&self, filter: &SourceFilter, source: Option<IpAddr>) -> bool {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        filter.allows_with(source, |region| {
            state.ranges.get(&region).map(Vec::as_slice)
        })
    }

    /// Starts a background fetch when the copy is a day old, or when the
    /// last fetch failed a while ago.
    fn refresh_if_due(self: &Arc<Self>) {
        let due = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            let attempted_long_ago = state.attempted.is_none_or(|at| at.elapsed() >= RETRY_AFTER);
            match state.fetched {
                Some(at) => at.elapsed() >= REFRESH_AFTER && attempted_long_ago,
                None => attempted_long_ago,
            }
        };
        if due {
            tokio::spawn(Arc::clone(self).refresh(RETRY_AFTER));
        }
    }

    /// Fetches every named region's file, unless a fetch began less than
    /// `unless_within` ago (then it only waits for one under way).
    async fn refresh(self: Arc<Self>, unless_within: Duration) {
        let _one_at_a_time = self.fetching.lock().await;
        {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            if state
                .attempted
                .is_some_and(|at| at.elapsed() < unless_within)
            {
                return;
            }
            state.attempted = Some(Instant::now());
        }
        let mut all_read = true;
        for &region in &self.regions {
            let url = region.ranges_url(&self.base_url);
            let body = match tokio::time::timeout(FETCH_TIMEOUT, self.fetcher.fetch(&url)).await {
                Ok(Ok(body)) => Ok(body),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(format!("no answer within {} ms", FETCH_TIMEOUT.as_millis())),
            };
            match body.and_then(|b| published_ranges(&b).map_err(|e| e.to_string())) {
                Ok(ranges) => {
                    tracing::info!(
                        region = region.name(),
                        ranges = ranges.networks.len(),
                        date = ranges.date.as_deref(),
                        "read intercom's published ranges"
                    );
                    let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
                    state.ranges.insert(region, ranges.networks);
                }
                Err(error) => {
                    all_read = false;
                    let kept = if self
                        .state
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .ranges
                        .contains_key(&region)
                    {
                        "the last copy read"
                    } else {
                        "the compiled addresses"
                    };
                    tracing::warn!(
                        region = region.name(),
                        url = url.as_str(),
                        error = error.as_str(),
                        kept,
                        "intercom's published ranges could not be read; the allowlist keeps {kept}"
                    );
                }
            }
        }
        if all_read {
            self.state
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .fetched = Some(Instant::now());
        }
    }
}

#[cfg(feature = "aws")]
pub use https::HttpsFetcher;

#[cfg(feature = "aws")]
mod https {
    //! The fetcher on the receiver's own HTTP and TLS stack (hyper and rustls
    //! on aws-lc, already linked for the SDK), built at the first fetch.

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Limited};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    use super::{Future, Pin, RangesFetcher};

    type Connector = lambda_init::https::Connector;
    type HttpClient = Client<Connector, Empty<Bytes>>;

    /// The most a published file may weigh (Intercom's are a few KB).
    const MAX_BODY: usize = 1 << 20;

    /// Reads Intercom's files over HTTPS, trusting the system's roots (its
    /// CDN is not an AWS endpoint); `plain_http` for a loopback test server,
    /// with no roots to load.
    #[derive(Debug)]
    pub struct HttpsFetcher {
        plain_http: bool,
        client: tokio::sync::OnceCell<Result<HttpClient, String>>,
    }

    impl HttpsFetcher {
        pub fn new(plain_http: bool) -> Self {
            Self {
                plain_http,
                client: tokio::sync::OnceCell::new(),
            }
        }

        async fn client(&self) -> Result<&HttpClient, String> {
            let plain_http = self.plain_http;
            self.client
                .get_or_init(|| async move {
                    // Reading the system's roots is file and CPU work: off
                    // the thread that answers requests.
                    tokio::task::spawn_blocking(move || build(plain_http))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|built| built)
                })
                .await
                .as_ref()
                .map_err(Clone::clone)
        }
    }

    fn build(plain_http: bool) -> Result<HttpClient, String> {
        // No connect timeout of its own: each fetch has FETCH_TIMEOUT.
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let connector = lambda_init::https::connector(http, plain_http)?;
        Ok(Client::builder(TokioExecutor::new()).build(connector))
    }

    impl RangesFetcher for HttpsFetcher {
        fn fetch<'a>(
            &'a self,
            url: &'a str,
        ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>> {
            Box::pin(async move {
                let client = self.client().await?;
                let request = hyper::Request::get(url)
                    .header(hyper::header::USER_AGENT, "intercom-webhook-receiver")
                    .body(Empty::new())
                    .map_err(|e| e.to_string())?;
                let response = client
                    .request(request)
                    .await
                    .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
                if response.status() != hyper::StatusCode::OK {
                    return Err(format!("answered {}", response.status()));
                }
                let body = Limited::new(response.into_body(), MAX_BODY)
                    .collect()
                    .await
                    .map_err(|e| format!("reading the body: {e}"))?;
                Ok(body.to_bytes().to_vec())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A scripted answer: after this delay, this body or error.
    type Scripted = (Duration, Result<Vec<u8>, String>);

    /// Answers each fetch with the next scripted answer; with none left,
    /// never answers.
    #[derive(Debug, Default)]
    struct Script {
        answers: Mutex<VecDeque<Scripted>>,
        urls: Mutex<Vec<String>>,
        calls: AtomicUsize,
    }

    #[derive(Debug)]
    struct Shared(Arc<Script>);

    impl RangesFetcher for Shared {
        fn fetch<'a>(
            &'a self,
            url: &'a str,
        ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>> {
            self.0.calls.fetch_add(1, Ordering::SeqCst);
            self.0.urls.lock().expect("lock").push(url.to_owned());
            let next = self.0.answers.lock().expect("lock").pop_front();
            Box::pin(async move {
                match next {
                    Some((delay, answer)) => {
                        tokio::time::sleep(delay).await;
                        answer
                    }
                    None => std::future::pending().await,
                }
            })
        }
    }

    fn file(ranges: &[&str]) -> Result<Vec<u8>, String> {
        let entries: Vec<String> = ranges
            .iter()
            .map(|r| format!(r#"{{"range":"{r}","region":"US","service":"INTERCOM-OUTBOUND"}}"#))
            .collect();
        Ok(format!(
            r#"{{"ip_ranges":[{}],"date":"2026-12-04"}}"#,
            entries.join(",")
        )
        .into_bytes())
    }

    fn list(
        entries: &str,
        answers: Vec<(Duration, Result<Vec<u8>, String>)>,
    ) -> (AllowList, Arc<Script>) {
        let script = Arc::new(Script {
            answers: Mutex::new(answers.into()),
            ..Script::default()
        });
        let list = AllowList::fetching(
            SourceFilter::parse(entries).expect("valid"),
            "http://127.0.0.1:1/ips/".to_owned(),
            Box::new(Shared(Arc::clone(&script))),
        );
        (list, script)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    const COMPILED_US: &str = "34.231.68.152";
    const NEW_RANGE: &str = "198.51.100.7";

    #[tokio::test(start_paused = true)]
    async fn a_list_without_a_region_name_fetches_nothing() {
        let (list, script) = list("10.0.0.0/8, 192.0.2.1", vec![]);
        list.start();
        assert!(list.allows(ip("10.1.2.3")).await);
        assert!(!list.allows(ip(COMPILED_US)).await);
        tokio::time::sleep(REFRESH_AFTER * 2).await;
        assert!(list.allows(ip("192.0.2.1")).await);
        assert_eq!(script.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_listed_source_never_waits_for_a_fetch() {
        // The fetch never answers.
        let (list, script) = list("intercom-us", vec![]);
        list.start();
        let started = Instant::now();
        assert!(list.allows(ip(COMPILED_US)).await);
        assert_eq!(started.elapsed(), Duration::ZERO);
        tokio::task::yield_now().await;
        assert_eq!(script.calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            script.urls.lock().expect("lock")[0],
            "http://127.0.0.1:1/ips/us/intercom-ip-ranges.json"
        );
        // A source in no list waits for it, bounded, then is refused.
        assert!(!list.allows(ip(NEW_RANGE)).await);
        assert_eq!(started.elapsed(), WAIT_FOR_FETCH);
        assert!(!list.allows(None).await);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unlisted_source_waits_for_the_file_that_lists_it() {
        let (list, _) = list(
            "intercom-us",
            vec![(
                Duration::from_millis(300),
                file(&["198.51.100.0/24", "34.197.76.213/32"]),
            )],
        );
        list.start();
        let started = Instant::now();
        assert!(list.allows(ip(NEW_RANGE)).await, "Intercom's new range");
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        // The file, once read, is the list: an address it dropped is refused
        // (after a wait for no new fetch: the last is recent).
        assert!(list.allows(ip("34.197.76.213")).await);
        assert!(!list.allows(ip(COMPILED_US)).await);
        assert_eq!(started.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_bad_file_keeps_the_compiled_list_then_the_last_good_copy() {
        let (list, script) = list(
            "intercom-us",
            vec![
                (Duration::ZERO, Ok(b"<html>502 Bad Gateway</html>".to_vec())),
                (Duration::ZERO, file(&["198.51.100.0/24"])),
                (Duration::ZERO, file(&[])),
                (Duration::ZERO, Err("connection refused".to_owned())),
            ],
        );
        list.start();
        tokio::task::yield_now().await;
        // Malformed: the compiled addresses stay, never an empty list.
        assert!(list.allows(ip(COMPILED_US)).await);
        assert!(!list.allows(ip(NEW_RANGE)).await, "no fetch again so soon");
        assert_eq!(script.calls.load(Ordering::SeqCst), 1);
        // A minute later a listed request starts a new fetch in the background.
        tokio::time::sleep(RETRY_AFTER).await;
        assert!(list.allows(ip(COMPILED_US)).await);
        tokio::task::yield_now().await;
        assert_eq!(script.calls.load(Ordering::SeqCst), 2);
        assert!(list.allows(ip(NEW_RANGE)).await);
        assert!(!list.allows(ip(COMPILED_US)).await);
        // A day later: an empty file, then a failure, both keep the good copy.
        for calls in [3, 4] {
            tokio::time::sleep(REFRESH_AFTER).await;
            assert!(list.allows(ip(NEW_RANGE)).await);
            tokio::task::yield_now().await;
            assert_eq!(script.calls.load(Ordering::SeqCst), calls);
            assert!(list.allows(ip(NEW_RANGE)).await);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_copy_is_read_again_after_a_day_and_not_before() {
        let (list, script) = list(
            "intercom-eu",
            vec![
                (Duration::ZERO, file(&["54.217.125.63/32"])),
                (Duration::ZERO, file(&["198.51.100.0/24"])),
            ],
        );
        list.start();
        tokio::task::yield_now().await;
        for _ in 0..5 {
            tokio::time::sleep(REFRESH_AFTER / 6).await;
            assert!(list.allows(ip("54.217.125.63")).await);
        }
        assert_eq!(script.calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(REFRESH_AFTER / 6).await;
        assert!(
            list.allows(ip("54.217.125.63")).await,
            "the old copy still serves"
        );
        tokio::task::yield_now().await;
        assert_eq!(script.calls.load(Ordering::SeqCst), 2);
        assert!(list.allows(ip(NEW_RANGE)).await);
        assert_eq!(
            script.urls.lock().expect("lock")[1],
            "http://127.0.0.1:1/ips/eu/intercom-ip-ranges.json"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_in_no_list_fetches_again_after_ten_minutes() {
        let (list, script) = list(
            "intercom-us",
            vec![
                (Duration::ZERO, file(&["34.231.68.152/32"])),
                (
                    Duration::ZERO,
                    file(&["34.231.68.152/32", "198.51.100.0/24"]),
                ),
            ],
        );
        list.start();
        tokio::task::yield_now().await;
        assert!(!list.allows(ip(NEW_RANGE)).await);
        tokio::time::sleep(RECHECK_AFTER_UNLISTED / 2).await;
        assert!(!list.allows(ip(NEW_RANGE)).await);
        assert_eq!(script.calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(RECHECK_AFTER_UNLISTED / 2).await;
        assert!(
            list.allows(ip(NEW_RANGE)).await,
            "Intercom published it since"
        );
        assert_eq!(script.calls.load(Ordering::SeqCst), 2);
    }
}
