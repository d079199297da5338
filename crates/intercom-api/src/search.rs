//! Search: conversations, tickets and contacts by their attributes, one page or every page of a window of `updated_at`.
//!
//! Intercom's search endpoints (`POST /conversations/search`,
//! `/tickets/search`, `/contacts/search`) take a query of filters and a
//! page of at most 150 results; each answer's `pages.next.starting_after`
//! is the cursor of the next page, absent on the last. Date fields take
//! only `=`, `<` and `>`, and Intercom compares them **by calendar day in
//! the workspace's time zone** (its contacts search page: `>` matches from
//! the start of the next day), so [`Intercom::updated_between`] asks for a
//! window two days wider on each side and keeps the objects whose
//! `updated_at` falls in the window itself. A search is a read: the client
//! sends it again after a transport failure or a 5xx, and waits a 429 out
//! while the handle's deadline allows.

use hyper::Method;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::client::Intercom;
use crate::error::ApiError;

/// The most results Intercom gives in one page of a search.
pub const MAX_PER_PAGE: u32 = 150;

/// How far [`Intercom::updated_between`] widens its query on each side:
/// Intercom truncates a date to its day in the workspace's time zone
/// (UTC-12 to UTC+14), and `>` starts at the next day.
const DAY_MARGIN: i64 = 2 * 86_400;

/// What can be searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Searchable {
    Conversations,
    Tickets,
    Contacts,
}

impl Searchable {
    /// Every searchable kind, as `backfill` walks them.
    pub const ALL: [Searchable; 3] = [Self::Conversations, Self::Tickets, Self::Contacts];

    /// The search endpoint's path.
    pub fn path(self) -> &'static str {
        match self {
            Self::Conversations => "/conversations/search",
            Self::Tickets => "/tickets/search",
            Self::Contacts => "/contacts/search",
        }
    }

    /// The field of the answer that holds the page's objects.
    fn list_field(self) -> &'static str {
        match self {
            Self::Conversations => "conversations",
            Self::Tickets => "tickets",
            Self::Contacts => "data",
        }
    }

    /// The `type` of the objects found: `conversation`, `ticket`, `contact`.
    pub fn item_type(self) -> &'static str {
        match self {
            Self::Conversations => "conversation",
            Self::Tickets => "ticket",
            Self::Contacts => "contact",
        }
    }

    /// The kind whose objects have `item_type` (`conversation`, ...).
    pub fn from_item_type(item_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.item_type() == item_type)
    }
}

/// One page of a search's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage<T> {
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last.
    pub next: Option<String>,
    /// How many objects match in all, when Intercom says.
    pub total_count: Option<u64>,
}

/// A filter: `{"field": …, "operator": …, "value": …}`.
pub fn filter(field: &str, operator: &str, value: impl Into<Value>) -> Value {
    json!({"field": field, "operator": operator, "value": value.into()})
}

/// Filters that must all hold: `{"operator": "AND", "value": [...]}`.
pub fn all_of(filters: impl IntoIterator<Item = Value>) -> Value {
    json!({"operator": "AND", "value": filters.into_iter().collect::<Vec<_>>()})
}

impl Intercom {
    /// One page of `what` matching `query` (a filter or [`all_of`]),
    /// `per_page` at most [`MAX_PER_PAGE`], from the cursor `starting_after`.
    pub async fn search<T: DeserializeOwned>(
        &self,
        what: Searchable,
        query: &Value,
        per_page: u32,
        starting_after: Option<&str>,
    ) -> Result<SearchPage<T>, ApiError> {
        let mut pagination = json!({"per_page": per_page.clamp(1, MAX_PER_PAGE)});
        if let Some(cursor) = starting_after {
            pagination["starting_after"] = json!(cursor);
        }
        let body = json!({"query": query, "pagination": pagination});
        let mut answer: Map<String, Value> =
            self.request(Method::POST, what.path(), Some(&body)).await?;
        let items = match answer.remove(what.list_field()) {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => Vec::new(),
            Some(other) => {
                return Err(ApiError::Decode(format!(
                    "{}: `{}` is not a list but {other}",
                    what.path(),
                    what.list_field()
                )));
            }
        };
        let items = items
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<Vec<T>, _>>()
            .map_err(|e| ApiError::Decode(format!("{}: {e}", what.path())))?;
        let next = answer
            .get("pages")
            .and_then(|pages| pages.get("next"))
            .and_then(|next| next.get("starting_after"))
            .and_then(Value::as_str)
            .filter(|cursor| !cursor.is_empty())
            .map(str::to_owned);
        Ok(SearchPage {
            items,
            next,
            total_count: answer.get("total_count").and_then(Value::as_u64),
        })
    }

    /// Every object of `what` whose `updated_at` is in `since..until`
    /// (epoch seconds, `until` exclusive), every page walked, oldest
    /// `updated_at` first. `pages` is told each page's size as it comes.
    pub async fn updated_between<T: DeserializeOwned>(
        &self,
        what: Searchable,
        since: i64,
        until: i64,
        pages: &mut dyn FnMut(usize),
    ) -> Result<Vec<T>, ApiError> {
        let query = all_of([
            filter("updated_at", ">", since - DAY_MARGIN),
            filter("updated_at", "<", until + DAY_MARGIN),
        ]);
        let mut found: Vec<(i64, Value)> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page: SearchPage<Value> = self
                .search(what, &query, MAX_PER_PAGE, cursor.as_deref())
                .await?;
            pages(page.items.len());
            found.extend(page.items.into_iter().filter_map(|item| {
                let updated_at = item.get("updated_at").and_then(Value::as_i64)?;
                (since..until)
                    .contains(&updated_at)
                    .then_some((updated_at, item))
            }));
            match page.next {
                // A cursor that does not move would walk for ever.
                Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => break,
            }
        }
        found.sort_by_key(|(updated_at, _)| *updated_at);
        found
            .into_iter()
            .map(|(_, item)| {
                serde_json::from_value(item)
                    .map_err(|e| ApiError::Decode(format!("{}: {e}", what.path())))
            })
            .collect()
    }
}
