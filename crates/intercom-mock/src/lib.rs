//! A stand-in for Intercom's REST API on loopback: every request checked against Intercom's own OpenAPI description, answered with its examples, and 429s, 5xx or silence on demand.
//!
//! The description is Intercom's 2.15 (`openapi/`, MIT, vendored as JSON).
//! A request is checked for what the description says of its operation:
//! the method and path (a path template's parameters non-empty), a bearer
//! token, the header parameters' values (`Intercom-Version` one of the
//! versions), the query parameters (required ones present, no others), and
//! the JSON body against the operation's request schema (its `$ref`s,
//! `nullable` as OpenAPI 3.0 means it). A request the description would
//! refuse is answered 400 with Intercom's error list and recorded as a
//! violation ([`MockIntercom::violations`]); one it takes is answered with
//! the example of the operation's success answer.
//!
//! Beyond the description, it refuses what Intercom itself refuses: a
//! reply or note without a body, a path id of the wrong shape (a
//! conversation id is a number), a body sent as anything but
//! `application/json` (415).
//!
//! **Conversations are kept**: [`MockIntercom::add_conversation`] seeds one;
//! reading it (`GET /conversations/{id}`) shows every write made since
//! (replies and notes as parts by the admin who wrote them, with an
//! `app_package_code` as API-made parts have; close, open, snooze and
//! assignment as its state and a part; tags; custom attributes). A
//! conversation it does not know answers 404, as Intercom does. Other
//! objects are answered with the description's examples.
//!
//! **Searches are answered from what it keeps**: conversations, and the
//! tickets and contacts seeded with [`MockIntercom::add_ticket`] and
//! [`MockIntercom::add_contact`], filtered by the query as Intercom does:
//! date fields (`*_at`) take only `=`, `<` and `>` (others answer 400) and
//! compare by calendar day in the workspace's time zone
//! ([`WORKSPACE_UTC_OFFSET`], the `/me` example's Los Angeles), `>` from
//! the start of the next day; pages of `per_page` (20 by default, at most
//! 150), newest `updated_at` first, with an opaque `starting_after` cursor.
//!
//! [`MockIntercom::then`] queues faults for the next requests: a 429 with
//! `X-RateLimit-Reset`, any status, no answer at all, or a write applied
//! and its connection cut before the answer. Every request is recorded
//! ([`MockIntercom::calls`]) and can be watched as it comes
//! ([`MockIntercom::on_call`]), which `intercom-dev serve` prints.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// Intercom's OpenAPI description, 2.15.
pub static DESCRIPTION: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../openapi/api.intercom.io.2.15.json"))
        .expect("the vendored description is JSON")
});

/// The components, as JSON Schema: OpenAPI 3.0's `nullable` turned into a
/// `null` type, everything else as written.
static COMPONENTS: LazyLock<Value> = LazyLock::new(|| {
    let mut components = DESCRIPTION["components"].clone();
    nullable_to_null(&mut components);
    components
});

/// What the next requests meet instead of an answer of the description's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 `rate_limit_exceeded`, the window resetting this long after now
    /// (`X-RateLimit-Reset`, epoch seconds, rounded up).
    RateLimited { reset_in: Duration },
    /// This status, with Intercom's error list.
    Status(u16),
    /// No answer, ever.
    Hang,
    /// The request is applied (a conversation write is kept), then the
    /// connection is closed before any answer: a write whose answer was
    /// lost.
    AppliedThenCut,
}

/// The `app_package_code` the mock gives parts written through it.
pub const APP_PACKAGE_CODE: &str = "intercom-mock";

/// One request, and what the mock made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// With its query string.
    pub path: String,
    /// The operation it matched (`operationId`), if any.
    pub operation: Option<String>,
    pub body: Option<Value>,
    /// The bearer token it carried.
    pub token: Option<String>,
    /// The answer's status.
    pub status: u16,
    /// Why the description refuses it.
    pub violation: Option<String>,
    pub at: SystemTime,
}

type Watcher = Arc<dyn Fn(&Call) + Send + Sync>;

#[derive(Default)]
struct State {
    /// Faults queued, each for any request or for `"{METHOD} {path}"`.
    faults: Mutex<VecDeque<(Option<String>, Fault)>>,
    calls: Mutex<Vec<Call>>,
    watchers: Mutex<Vec<Watcher>>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    /// Conversations by id, as `GET /conversations/{id}` answers them.
    conversations: Mutex<HashMap<String, Value>>,
    /// Tickets and contacts by id, as searches find them.
    tickets: Mutex<HashMap<String, Value>>,
    contacts: Mutex<HashMap<String, Value>>,
    /// The last part id given.
    parts: Mutex<u64>,
}

/// The mock, serving until dropped.
pub struct MockIntercom {
    /// `http://127.0.0.1:{port}`: `INTERCOM_API_URL`.
    pub url: String,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MockIntercom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockIntercom")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for MockIntercom {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockIntercom {
    /// Serves on a free loopback port.
    pub async fn start() -> Self {
        Self::start_on(0).await.expect("bind a loopback port")
    }

    /// Serves on loopback `port` (0: any free one).
    pub async fn start_on(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State::default());
        let serving = Arc::clone(&state);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move {
                            // No answer: hyper closes the connection.
                            answer(&state, request)
                                .await
                                .ok_or_else(|| std::io::Error::other("cut by the mock"))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { url, state, server })
    }

    /// Queues `fault` for the next request the description takes.
    pub fn then(&self, fault: Fault) -> &Self {
        self.state
            .faults
            .lock()
            .expect("lock")
            .push_back((None, fault));
        self
    }

    /// Queues `fault` for the next request `"{METHOD} {path}"` (no query).
    pub fn then_on(&self, request: &str, fault: Fault) -> &Self {
        self.state
            .faults
            .lock()
            .expect("lock")
            .push_back((Some(request.to_owned()), fault));
        self
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().expect("lock").clone()
    }

    /// `"{method} {path}"` of every request so far, without query strings.
    pub fn paths(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c.method,
                    c.path.split('?').next().unwrap_or_default()
                )
            })
            .collect()
    }

    /// Why the description refused each request it refused.
    pub fn violations(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter_map(|c| {
                c.violation
                    .as_ref()
                    .map(|v| format!("{} {}: {v}", c.method, c.path))
            })
            .collect()
    }

    /// Calls `watch` with each request as it is answered.
    pub fn on_call(&self, watch: impl Fn(&Call) + Send + Sync + 'static) {
        self.state
            .watchers
            .lock()
            .expect("lock")
            .push(Arc::new(watch));
    }

    /// Keeps `conversation` (an object with an `id`), replacing one with
    /// that id: reads answer it, writes change it.
    pub fn add_conversation(&self, mut conversation: Value) -> &Self {
        let id = match &conversation["id"] {
            Value::String(id) => id.clone(),
            Value::Number(id) => id.to_string(),
            other => panic!("a conversation needs an id, not {other}"),
        };
        conversation["id"] = Value::String(id.clone());
        if conversation["conversation_parts"]["conversation_parts"].is_null() {
            conversation["conversation_parts"] = json!({
                "type": "conversation_part.list", "conversation_parts": [], "total_count": 0});
        }
        self.state
            .conversations
            .lock()
            .expect("lock")
            .insert(id, conversation);
        self
    }

    /// Keeps `ticket` (an object with an `id`) for searches to find.
    pub fn add_ticket(&self, ticket: Value) -> &Self {
        keep_object(&self.state.tickets, ticket);
        self
    }

    /// Keeps `contact` (an object with an `id`) for searches to find.
    pub fn add_contact(&self, contact: Value) -> &Self {
        keep_object(&self.state.contacts, contact);
        self
    }

    /// Keeps the conversation a notification is about, as Intercom would
    /// have it, unless it knows it already: Intercom answers 404 for a
    /// conversation it does not hold, and a handler's calls about its
    /// notification's conversation must find it (`serve --intercom-mock`,
    /// the handler test kit).
    pub fn learn(&self, notification: &Value) -> &Self {
        let item = &notification["data"]["item"];
        let id = match &item["id"] {
            Value::String(id) => id.clone(),
            Value::Number(id) => id.to_string(),
            _ => return self,
        };
        if item["type"] == "conversation" && self.conversation(&id).is_none() {
            self.add_conversation(item.clone());
        }
        self
    }

    /// The conversation `id` as the mock holds it now.
    pub fn conversation(&self, id: &str) -> Option<Value> {
        self.state
            .conversations
            .lock()
            .expect("lock")
            .get(id)
            .cloned()
    }

    /// The workspace `GET /me` names (`app.id_code`, the description's
    /// example): the `app_id` of its notifications.
    pub fn app_id() -> String {
        example(&DESCRIPTION["paths"]["/me"]["get"])
            .map(|(_, body)| {
                body["app"]["id_code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default()
    }

    /// The admin `GET /me` answers with (the description's example).
    pub fn admin_id() -> String {
        example(&DESCRIPTION["paths"]["/me"]["get"])
            .map(|(_, body)| body["id"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }
}

async fn answer(state: &State, request: Request<Incoming>) -> Option<Response<Full<Bytes>>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let method = parts.method.as_str().to_ascii_lowercase();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let headers: HashMap<String, String> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let parsed: Option<Value> = (!body.is_empty()).then(|| {
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String("<not JSON>".into()))
    });

    let found = operation(&method, &path);
    let violation = match &found {
        None => Some(format!(
            "no operation {} {path} in the description",
            method.to_uppercase()
        )),
        Some((template, op)) => check(
            state,
            template,
            &method,
            &path,
            op,
            &headers,
            &query,
            parsed.as_ref(),
        ),
    };
    let fault = if violation.is_none() {
        let request = format!("{} {path}", parts.method);
        let mut faults = state.faults.lock().expect("lock");
        faults
            .iter()
            .position(|(only, _)| only.as_ref().is_none_or(|only| *only == request))
            .and_then(|at| faults.remove(at))
            .map(|(_, fault)| fault)
    } else {
        None
    };
    let (status, response) = match (&violation, &found, &fault) {
        (Some(why), _, _) => {
            let code = if why.starts_with("no bearer token") {
                401
            } else if why.starts_with("content type") {
                415
            } else {
                400
            };
            (code, error_list(code, "parameter_invalid", why))
        }
        (None, _, Some(Fault::Hang)) => {
            record(
                state,
                &parts.method,
                &path,
                &query,
                &headers,
                &found,
                parsed,
                0,
                None,
            );
            std::future::pending::<()>().await;
            unreachable!("pending never ends")
        }
        (None, _, Some(Fault::RateLimited { reset_in })) => {
            let reset = epoch_seconds(SystemTime::now() + *reset_in + Duration::from_millis(999));
            let mut response = error_list(
                429,
                "rate_limit_exceeded",
                "Exceeded rate limit of 167 in 10_seconds",
            );
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", 167.into());
            headers.insert("x-ratelimit-remaining", 0.into());
            headers.insert("x-ratelimit-reset", reset.into());
            (429, response)
        }
        (None, _, Some(Fault::Status(status))) => (
            *status,
            error_list(*status, "server_error", "failed by the mock, as asked"),
        ),
        (None, Some((template, op)), None | Some(Fault::AppliedThenCut)) => {
            let kept = keep(state, &method, template, &path, parsed.as_ref());
            if fault == Some(Fault::AppliedThenCut) {
                let status = kept.as_ref().map_or(200, |(status, _)| *status);
                record(
                    state,
                    &parts.method,
                    &path,
                    &query,
                    &headers,
                    &found,
                    parsed,
                    status,
                    None,
                );
                return None;
            }
            let (status, body) = kept.unwrap_or_else(|| example(op).unwrap_or((200, json!({}))));
            let mut response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(if status == 202 || status == 204 {
                    String::new()
                } else {
                    body.to_string()
                })))
                .expect("response");
            let reset = epoch_seconds(SystemTime::now() + Duration::from_secs(10));
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", 167.into());
            headers.insert("x-ratelimit-remaining", 166.into());
            headers.insert("x-ratelimit-reset", reset.into());
            (status, response)
        }
        (None, None, _) => unreachable!("no operation is a violation"),
    };
    record(
        state,
        &parts.method,
        &path,
        &query,
        &headers,
        &found,
        parsed,
        status,
        violation,
    );
    Some(response)
}

/// The workspace's offset from UTC in seconds, by which the mock's
/// searches truncate dates to days (Los Angeles, as the `/me` example's
/// app says; standard time).
pub const WORKSPACE_UTC_OFFSET: i64 = -8 * 3600;

fn keep_object(kept: &Mutex<HashMap<String, Value>>, mut object: Value) {
    let id = match &object["id"] {
        Value::String(id) => id.clone(),
        Value::Number(id) => id.to_string(),
        other => panic!("an object needs an id, not {other}"),
    };
    object["id"] = Value::String(id.clone());
    kept.lock().expect("lock").insert(id, object);
}

/// The answer to a search, from the objects kept.
fn search(state: &State, template: &str, body: &Value) -> (u16, Value) {
    let (kept, list_type, field) = match template {
        "/conversations/search" => (&state.conversations, "conversation.list", "conversations"),
        "/tickets/search" => (&state.tickets, "ticket.list", "tickets"),
        _ => (&state.contacts, "list", "data"),
    };
    let mut found = Vec::new();
    for object in kept.lock().expect("lock").values() {
        match matches(&body["query"], object, 0) {
            Ok(true) => found.push(object.clone()),
            Ok(false) => {}
            Err(why) => {
                return (
                    400,
                    json!({"type": "error.list", "request_id": null,
                        "errors": [{"code": "query_invalid", "message": why}]}),
                );
            }
        }
    }
    found.sort_by(|a, b| {
        let key = |o: &Value| (o["updated_at"].as_i64().unwrap_or(0), id_text(&o["id"]));
        key(b).cmp(&key(a))
    });
    let per_page = body["pagination"]["per_page"]
        .as_u64()
        .unwrap_or(20)
        .clamp(1, 150) as usize;
    let start = match body["pagination"]["starting_after"].as_str() {
        None => 0,
        Some(cursor) => match cursor
            .strip_prefix("mock-cursor-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(start) => start,
            None => {
                return (
                    400,
                    json!({"type": "error.list", "request_id": null,
                        "errors": [{"code": "parameter_invalid", "message": "invalid starting_after"}]}),
                );
            }
        },
    };
    let total = found.len();
    let page: Vec<Value> = found.into_iter().skip(start).take(per_page).collect();
    let end = start + page.len();
    let mut pages = json!({"type": "pages", "page": start / per_page + 1,
        "per_page": per_page, "total_pages": total.div_ceil(per_page)});
    if end < total {
        pages["next"] =
            json!({"per_page": per_page, "starting_after": format!("mock-cursor-{end}")});
    }
    (
        200,
        json!({"type": list_type, field: page, "total_count": total, "pages": pages}),
    )
}

/// Whether `object` matches `query` (a filter, or `AND`/`OR` of them,
/// nested at most twice), or why Intercom would refuse the query.
fn matches(query: &Value, object: &Value, depth: usize) -> Result<bool, String> {
    if let Some(group) = query.get("value").filter(|_| query.get("field").is_none()) {
        if depth >= 2 {
            return Err("filters are nested more than twice".into());
        }
        let filters = group.as_array().ok_or("a group's value must be a list")?;
        if filters.len() > 15 {
            return Err("more than 15 filters in a group".into());
        }
        let results = filters
            .iter()
            .map(|f| matches(f, object, depth + 1))
            .collect::<Result<Vec<bool>, String>>()?;
        return match query["operator"].as_str() {
            Some("AND") => Ok(results.iter().all(|r| *r)),
            Some("OR") => Ok(results.iter().any(|r| *r)),
            other => Err(format!(
                "a group's operator must be AND or OR, not {other:?}"
            )),
        };
    }
    let field = query["field"].as_str().ok_or("a filter needs a field")?;
    let operator = query["operator"]
        .as_str()
        .ok_or("a filter needs an operator")?;
    let wanted = &query["value"];
    let mut actual = object;
    for step in field.split('.') {
        actual = &actual[step];
    }
    if field.ends_with("_at") {
        let wanted = wanted
            .as_i64()
            .ok_or_else(|| format!("`{field}` takes a date (a UNIX timestamp)"))?;
        let day = |t: i64| (t + WORKSPACE_UTC_OFFSET).div_euclid(86_400);
        let Some(actual) = actual.as_i64() else {
            return Ok(false);
        };
        return match operator {
            "=" => Ok(day(actual) == day(wanted)),
            ">" => Ok(day(actual) > day(wanted)),
            "<" => Ok(day(actual) < day(wanted)),
            other => Err(format!(
                "operator `{other}` is not supported on date field `{field}`"
            )),
        };
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let (actual_text, wanted_text) = (text(actual), text(wanted));
    let listed = || {
        wanted
            .as_array()
            .is_some_and(|list| list.iter().any(|w| text(w) == actual_text))
    };
    Ok(match operator {
        "=" => actual_text == wanted_text,
        "!=" => actual_text != wanted_text,
        "IN" => listed(),
        "NIN" => !listed(),
        "~" => actual_text.contains(&wanted_text),
        "!~" => !actual_text.contains(&wanted_text),
        "^" => actual_text.starts_with(&wanted_text),
        "$" => actual_text.ends_with(&wanted_text),
        "<" | ">" => match (actual.as_f64(), wanted.as_f64()) {
            (Some(a), Some(w)) if operator == "<" => a < w,
            (Some(a), Some(w)) => a > w,
            _ => return Err(format!("`{operator}` compares numbers only (`{field}`)")),
        },
        other => return Err(format!("unknown operator `{other}`")),
    })
}

/// The answer to a request on a kept conversation, the write applied, or
/// to a search; `None` for requests about other objects (the
/// description's example answers).
fn keep(
    state: &State,
    method: &str,
    template: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    if method == "post"
        && matches!(
            template,
            "/conversations/search" | "/tickets/search" | "/contacts/search"
        )
    {
        return Some(search(state, template, body.unwrap_or(&Value::Null)));
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if !template.starts_with("/conversations/{conversation_id}") {
        return None;
    }
    let id = segments.get(2)?.to_string();
    let rest = &template["/conversations/{conversation_id}".len()..];
    let mut conversations = state.conversations.lock().expect("lock");
    let Some(conversation) = conversations.get_mut(&id) else {
        let missing = json!({"type": "error.list", "request_id": null,
            "errors": [{"code": "not_found", "message": "Resource Not Found"}]});
        return Some((404, missing));
    };
    let body = body.cloned().unwrap_or(Value::Null);
    let now = epoch_seconds(SystemTime::now());
    let add_part = |conversation: &mut Value, part_type: &str, body: &Value| {
        let mut next = state.parts.lock().expect("lock");
        *next += 1;
        let author = match body["type"].as_str() {
            Some("user") => json!({"type": "user", "id": body["intercom_user_id"]}),
            _ => json!({"type": "admin", "id": id_text(&body["admin_id"])}),
        };
        let part = json!({
            "type": "conversation_part", "id": format!("{}", 8_000_000 + *next),
            "part_type": part_type, "body": body.get("body").cloned().unwrap_or(Value::Null),
            "created_at": now, "updated_at": now, "notified_at": now,
            "author": author, "attachments": [], "redacted": false,
            "app_package_code": APP_PACKAGE_CODE,
        });
        let list = &mut conversation["conversation_parts"];
        if let Some(parts) = list["conversation_parts"].as_array_mut() {
            parts.push(part);
            list["total_count"] = json!(parts.len());
        }
        conversation["updated_at"] = json!(now);
    };
    match (method, rest) {
        ("get", "") => {}
        ("put", "") => {
            if let (Some(kept), Some(changed)) = (
                conversation
                    .as_object_mut()
                    .map(|c| c.entry("custom_attributes").or_insert_with(|| json!({}))),
                body["custom_attributes"].as_object(),
            ) {
                for (name, value) in changed {
                    kept[name] = value.clone();
                }
                // An update is a change: searches by `updated_at` see it.
                conversation["updated_at"] = json!(now);
            }
        }
        ("post", "/reply") => {
            let part_type = body["message_type"]
                .as_str()
                .unwrap_or("comment")
                .to_owned();
            add_part(conversation, &part_type, &body);
        }
        ("post", "/parts") => {
            let message_type = body["message_type"].as_str().unwrap_or_default().to_owned();
            match message_type.as_str() {
                "close" => conversation["state"] = json!("closed"),
                "open" => conversation["state"] = json!("open"),
                "snoozed" => {
                    conversation["state"] = json!("snoozed");
                    conversation["snoozed_until"] = body["snoozed_until"].clone();
                }
                "assignment" => {
                    let field = match body["type"].as_str() {
                        Some("team") => "team_assignee_id",
                        _ => "admin_assignee_id",
                    };
                    conversation[field] = json!(id_text(&body["assignee_id"]));
                }
                _ => {}
            }
            conversation["open"] = json!(conversation["state"] != "closed");
            add_part(conversation, &message_type, &body);
        }
        ("post", "/tags") => {
            let tag = json!({"type": "tag", "id": id_text(&body["id"]), "name": "",
                             "applied_at": now});
            let tags = &mut conversation["tags"];
            if tags["tags"].as_array().is_none() {
                *tags = json!({"type": "tag.list", "tags": []});
            }
            let list = tags["tags"].as_array_mut().expect("a list");
            if !list.iter().any(|t| t["id"] == tag["id"]) {
                list.push(tag.clone());
            }
            return Some((200, tag));
        }
        ("delete", "/tags/{tag_id}") => {
            let tag_id = segments.get(4).copied().unwrap_or_default();
            if let Some(list) = conversation["tags"]["tags"].as_array_mut() {
                list.retain(|t| t["id"] != tag_id);
            }
            return Some((200, json!({"type": "tag", "id": tag_id, "name": ""})));
        }
        _ => return None,
    }
    Some((200, conversation.clone()))
}

/// An id sent as a string or a number, as a string.
fn id_text(value: &Value) -> String {
    match value {
        Value::String(id) => id.clone(),
        Value::Number(id) => id.to_string(),
        _ => String::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    state: &State,
    method: &hyper::Method,
    path: &str,
    query: &str,
    headers: &HashMap<String, String>,
    found: &Option<(String, &'static Value)>,
    body: Option<Value>,
    status: u16,
    violation: Option<String>,
) {
    let call = Call {
        method: method.to_string(),
        path: if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        },
        operation: found
            .as_ref()
            .and_then(|(_, op)| op["operationId"].as_str().map(str::to_owned)),
        body,
        token: headers
            .get("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned),
        status,
        violation,
        at: SystemTime::now(),
    };
    let watchers: Vec<Watcher> = state.watchers.lock().expect("lock").clone();
    for watch in &watchers {
        watch(&call);
    }
    state.calls.lock().expect("lock").push(call);
}

fn epoch_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn error_list(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"type": "error.list", "request_id": null,
                      "errors": [{"code": code, "message": message}]});
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

/// The operation for `method` on `path`: its path template and its
/// description; of several templates, the one with the most literal
/// segments (`/contacts/search` before `/contacts/{contact_id}`).
fn operation(method: &str, path: &str) -> Option<(String, &'static Value)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let paths = DESCRIPTION["paths"].as_object()?;
    paths
        .iter()
        .filter_map(|(template, item)| {
            let op = item.get(method)?;
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template.clone(), op))
        })
        .max_by_key(|(literal, _, _)| *literal)
        .map(|(_, template, op)| (template, op))
}

/// Why the description (or Intercom) refuses this request, if it does.
#[allow(clippy::too_many_arguments)]
fn check(
    state: &State,
    template: &str,
    method: &str,
    path: &str,
    op: &Value,
    headers: &HashMap<String, String>,
    query: &str,
    body: Option<&Value>,
) -> Option<String> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !t.trim().is_empty());
    if !bearer {
        return Some("no bearer token in Authorization".to_owned());
    }
    if let Some(body) = body {
        let content_type = headers.get("content-type").map_or("", String::as_str);
        if !content_type.starts_with("application/json") {
            return Some(format!(
                "content type `{content_type}`: Intercom takes a body as application/json"
            ));
        }
        let message_type = body["message_type"].as_str();
        let empty = body["body"].as_str().is_none_or(|b| b.trim().is_empty());
        if template.ends_with("/reply") && matches!(message_type, Some("comment" | "note")) && empty
        {
            return Some(format!(
                "body: a {} needs a non-empty `body` (Intercom answers 400)",
                message_type.unwrap_or_default()
            ));
        }
    }
    // A conversation's id is a number (or `last`, for a user's reply),
    // whatever type the description gives it (it says `integer` for some
    // paths, `string` for others; it also says `integer` for a contact's
    // id, which is hex).
    for (part, segment) in template
        .split('/')
        .zip(path.trim_end_matches('/').split('/'))
    {
        let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) else {
            continue;
        };
        let numeric = segment.bytes().all(|b| b.is_ascii_digit());
        let last_reply = template.ends_with("/reply") && segment == "last";
        if name == "conversation_id" && !numeric && !last_reply {
            return Some(format!(
                "path parameter `{name}`: `{segment}` is not a number, as Intercom's ids of it are"
            ));
        }
    }
    let path_item = &DESCRIPTION["paths"][template];
    let parameters: Vec<&Value> = path_item["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(op["parameters"].as_array().into_iter().flatten())
        .collect();
    let pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    for (name, _) in &pairs {
        let declared = parameters
            .iter()
            .any(|p| p["in"] == "query" && p["name"].as_str() == Some(name.as_str()));
        if !declared {
            return Some(format!("query parameter `{name}` is not the operation's"));
        }
    }
    for parameter in &parameters {
        let name = parameter["name"].as_str().unwrap_or_default();
        let required = parameter["required"].as_bool().unwrap_or(false);
        let value = match parameter["in"].as_str() {
            Some("header") => headers.get(&name.to_ascii_lowercase()).cloned(),
            Some("query") => pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
            _ => continue,
        };
        match value {
            None if required => return Some(format!("required parameter `{name}` is missing")),
            None => {}
            Some(value) => {
                let schema = &parameter["schema"];
                let typed = match resolve(schema)["type"].as_str() {
                    Some("integer") => value.parse::<i64>().map(Value::from).ok(),
                    Some("number") => value.parse::<f64>().ok().map(Value::from),
                    Some("boolean") => value.parse::<bool>().ok().map(Value::from),
                    _ => Some(Value::String(value.clone())),
                };
                let Some(typed) = typed else {
                    return Some(format!("parameter `{name}`: `{value}` is not of its type"));
                };
                if let Some(why) =
                    invalid(state, &format!("param {template} {name}"), schema, &typed)
                {
                    return Some(format!("parameter `{name}`: {why}"));
                }
            }
        }
    }
    let request_body = &op["requestBody"];
    let schema = &request_body["content"]["application/json"]["schema"];
    match (body, schema.is_null()) {
        (Some(_), true) => Some(format!(
            "{} {template} takes no JSON body",
            method.to_uppercase()
        )),
        (None, false) if request_body["required"].as_bool().unwrap_or(false) => {
            Some("the request body is required".to_owned())
        }
        (None, _) => None,
        (Some(body), false) => invalid(state, &format!("body {method} {template}"), schema, body)
            .map(|why| format!("body: {why}")),
    }
}

/// `schema` itself, or the component its `$ref` names.
fn resolve(schema: &Value) -> &Value {
    match schema["$ref"].as_str() {
        Some(reference) => reference
            .strip_prefix("#/")
            .map(|pointer| {
                DESCRIPTION
                    .pointer(&format!("/{pointer}"))
                    .unwrap_or(&Value::Null)
            })
            .unwrap_or(&Value::Null),
        None => schema,
    }
}

/// Why `instance` does not match `schema`, if it does not.
fn invalid(state: &State, key: &str, schema: &Value, instance: &Value) -> Option<String> {
    let validator = {
        let mut validators = state.validators.lock().expect("lock");
        match validators.get(key) {
            Some(validator) => Arc::clone(validator),
            None => {
                let mut schema = schema.clone();
                nullable_to_null(&mut schema);
                let root = json!({"allOf": [schema], "components": &*COMPONENTS});
                let validator = match jsonschema::draft4::new(&root) {
                    Ok(validator) => Arc::new(validator),
                    Err(e) => {
                        return Some(format!("the description's schema does not compile: {e}"));
                    }
                };
                validators.insert(key.to_owned(), Arc::clone(&validator));
                validator
            }
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .take(3)
        .map(|e| format!("{} (at `{}`)", e, e.instance_path()))
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema: `null` allowed too.
fn nullable_to_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                match map.get("type").cloned() {
                    Some(Value::String(kind)) => {
                        map.insert("type".into(), json!([kind, "null"]));
                        if let Some(Value::Array(values)) = map.get_mut("enum") {
                            values.push(Value::Null);
                        }
                    }
                    _ => {
                        let rest = Value::Object(std::mem::take(map));
                        map.insert("anyOf".into(), json!([rest, {"type": "null"}]));
                    }
                }
            }
            for child in map.values_mut() {
                nullable_to_null(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_null),
        _ => {}
    }
}

/// The operation's success status and example body: its first 2xx answer's
/// first example (`examples`, else `example`), `{}` without one.
fn example(op: &Value) -> Option<(u16, Value)> {
    let responses = op["responses"].as_object()?;
    let (status, response) = responses
        .iter()
        .filter(|(code, _)| code.starts_with('2'))
        .min_by_key(|(code, _)| (*code).clone())?;
    let status = status.parse().unwrap_or(200);
    let response = resolve(response);
    let content = &response["content"]["application/json"];
    let body = content["examples"]
        .as_object()
        .and_then(|examples| examples.values().next())
        .map(|e| e["value"].clone())
        .or_else(|| content.get("example").cloned())
        .unwrap_or_else(|| Value::Object(Map::new()));
    Some((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_most_literal_template() {
        let (template, op) = operation("post", "/contacts/search").expect("search");
        assert_eq!(template, "/contacts/search");
        assert_eq!(op["operationId"], "SearchContacts");
        let (template, _) = operation("get", "/contacts/abc").expect("a contact");
        assert_eq!(template, "/contacts/{contact_id}");
        assert!(operation("get", "/nothing/here").is_none());
        assert!(operation("patch", "/contacts/abc").is_none());
    }

    #[test]
    fn nullable_becomes_a_null_type() {
        let mut schema = json!({"type": "object", "properties": {
            "a": {"type": "string", "nullable": true},
            "b": {"$ref": "#/x", "nullable": true}}});
        nullable_to_null(&mut schema);
        assert_eq!(schema["properties"]["a"]["type"], json!(["string", "null"]));
        assert_eq!(
            schema["properties"]["b"]["anyOf"][1],
            json!({"type": "null"})
        );
    }

    #[test]
    fn me_has_an_example_admin() {
        assert!(!MockIntercom::admin_id().is_empty());
    }
}
