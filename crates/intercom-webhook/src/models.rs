//! Typed models of the items Intercom sends in `data.item`, lenient where Intercom is inconsistent.
//!
//! - Every field is optional and *lenient*: a value of an unexpected type
//!   becomes `None` instead of failing the whole item (Intercom sends ids as
//!   strings or numbers, timestamps as epoch seconds or ISO-8601, `*.deleted`
//!   items with only an id, items without `type`).
//! - Every model keeps the fields it does not name in `extra`, so nothing
//!   Intercom adds is ever out of reach, and a new field is never a parse error.
//! - [`Id`] and [`Timestamp`] absorb the two inconsistencies that matter most.
//!
//! [`Item::from_object`] picks the model by topic (the topic says what the item is;
//! the item's own `type` is not always there, and `visitor.signed_up` sends a
//! `user`), falling back to [`Item::Other`] for unknown topics.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::topic::{Family, Topic};

/// An Intercom id, sent as a string or a number; kept as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Id(pub String);

impl Id {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => Ok(Id(s)),
            Value::Number(n) => Ok(Id(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected an id, found {other}"
            ))),
        }
    }
}

/// A point in time, sent as epoch seconds (integer or float) or an ISO-8601
/// string (`Z` or `+00:00`); kept as epoch seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn epoch_seconds(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let seconds = match &value {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s
                .parse::<jiff::Timestamp>()
                .ok()
                .map(|t| t.as_second())
                .or_else(|| s.trim().parse::<i64>().ok()),
            _ => None,
        };
        seconds
            .map(Timestamp)
            .ok_or_else(|| serde::de::Error::custom(format!("expected a timestamp, found {value}")))
    }
}

/// Deserializes an optional field, turning a value of the wrong type into `None`.
pub fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

macro_rules! model {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* $field:ident $(as $rename:literal)?: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[non_exhaustive]
        pub struct $name {
            $(
                $(#[$field_meta])*
                #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
                $(#[serde(rename = $rename)])?
                pub $field: Option<$ty>,
            )*
            /// Every field this model does not name, as sent.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }
    };
}

model! {
    /// Who wrote a part or started a conversation: a user, lead, admin, bot or team.
    pub struct Author {
        kind as "type": String,
        id: Id,
        name: String,
        email: String,
    }
}

model! {
    /// A tag.
    pub struct Tag {
        id: Id,
        name: String,
        applied_at: Timestamp,
    }
}

model! {
    /// A list of tags, as conversations (`tags`) and contacts (`data`) send them.
    pub struct TagList {
        tags: Vec<Tag>,
        data: Vec<Tag>,
    }
}

model! {
    /// A reference to a contact inside another object.
    pub struct ContactRef {
        kind as "type": String,
        id: Id,
        external_id: String,
    }
}

model! {
    /// `contacts` of a conversation or ticket.
    pub struct ContactRefList {
        contacts: Vec<ContactRef>,
    }
}

model! {
    /// The message that started a conversation.
    pub struct ConversationSource {
        kind as "type": String,
        id: Id,
        delivered_as: String,
        subject: String,
        /// HTML.
        body: String,
        author: Author,
        url: String,
        redacted: bool,
    }
}

model! {
    /// One message, note or event in a conversation.
    pub struct ConversationPart {
        id: Id,
        part_type: String,
        /// HTML.
        body: String,
        created_at: Timestamp,
        updated_at: Timestamp,
        notified_at: Timestamp,
        assigned_to: Author,
        author: Author,
        redacted: bool,
    }
}

impl ConversationPart {
    /// How the part was written ([`Origin`], from `app_package_code`).
    pub fn origin(&self) -> Origin {
        Origin::of(&self.extra)
    }
}

model! {
    /// `conversation_parts` of a conversation.
    pub struct ConversationPartList {
        conversation_parts: Vec<ConversationPart>,
        total_count: u64,
    }
}

model! {
    /// A conversation (`conversation.*` topics).
    pub struct Conversation {
        id: Id,
        title: String,
        created_at: Timestamp,
        updated_at: Timestamp,
        waiting_since: Timestamp,
        snoozed_until: Timestamp,
        open: bool,
        state: String,
        read: bool,
        priority: String,
        admin_assignee_id: Id,
        team_assignee_id: Id,
        tags: TagList,
        source: ConversationSource,
        contacts: ContactRefList,
        conversation_parts: ConversationPartList,
        custom_attributes: Map<String, Value>,
    }
}

model! {
    /// A contact: a user or a lead (`contact.*`, `visitor.signed_up`).
    pub struct Contact {
        id: Id,
        role: String,
        external_id: String,
        email: String,
        phone: String,
        name: String,
        owner_id: Id,
        unsubscribed_from_emails: bool,
        created_at: Timestamp,
        updated_at: Timestamp,
        signed_up_at: Timestamp,
        last_seen_at: Timestamp,
        tags: TagList,
        custom_attributes: Map<String, Value>,
        /// On `contact.merged`: the contact merged into this one.
        merged_from: ContactRef,
    }
}

model! {
    /// A contact tagged or untagged (`contact.*.tag.*`).
    pub struct ContactTag {
        created_at: Timestamp,
        tag: Tag,
        contact: Contact,
    }
}

model! {
    /// A company.
    pub struct Company {
        id: Id,
        company_id: String,
        name: String,
        plan: Value,
        size: i64,
        website: String,
        industry: String,
        monthly_spend: f64,
        user_count: i64,
        created_at: Timestamp,
        updated_at: Timestamp,
        remote_created_at: Timestamp,
        custom_attributes: Map<String, Value>,
    }
}

model! {
    /// Two objects attached or detached (`*.contact.attached` and the like).
    pub struct Attachment {
        contact: Contact,
        company: Company,
        conversation: Conversation,
        admin: Admin,
    }
}

model! {
    /// A teammate (`admin.*`).
    pub struct Admin {
        id: Id,
        name: String,
        email: String,
        job_title: String,
        away_mode_enabled: bool,
        away_mode_reassign: bool,
        away_status_reason: String,
        has_inbox_seat: bool,
        team_ids: Vec<Id>,
    }
}

model! {
    /// One part of a ticket.
    pub struct TicketPart {
        id: Id,
        part_type: String,
        /// HTML.
        body: String,
        previous_ticket_state: String,
        ticket_state: String,
        created_at: Timestamp,
        updated_at: Timestamp,
        author: Author,
        redacted: bool,
    }
}

impl TicketPart {
    /// How the part was written ([`Origin`], from `app_package_code`).
    pub fn origin(&self) -> Origin {
        Origin::of(&self.extra)
    }
}

model! {
    /// `ticket_parts` of a ticket.
    pub struct TicketPartList {
        ticket_parts: Vec<TicketPart>,
        total_count: u64,
    }
}

/// How a conversation or ticket part was written, as its `app_package_code`
/// says: "the app package code if this part was created via API; null if
/// the part was not created via API" (Intercom's 2.15 description). The
/// field is read from the part's `extra`, where absent and `null` differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Through the API by an app: a non-empty `app_package_code`.
    Api,
    /// In Intercom itself (the inbox, a workflow): `app_package_code` null
    /// (or empty).
    Intercom,
    /// The part has no `app_package_code` field at all (an older API
    /// version's payload): it does not say.
    Unsaid,
}

impl Origin {
    fn of(extra: &Map<String, Value>) -> Self {
        match extra.get("app_package_code") {
            None => Self::Unsaid,
            Some(Value::String(code)) if !code.trim().is_empty() => Self::Api,
            Some(_) => Self::Intercom,
        }
    }
}

/// The newest part of a conversation or ticket: who wrote it and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewestPart<'a> {
    pub author: Option<&'a Author>,
    pub origin: Origin,
}

impl NewestPart<'_> {
    /// Whether an admin wrote it.
    pub fn by_an_admin(&self) -> bool {
        self.author
            .is_some_and(|author| author.kind.as_deref() == Some("admin"))
    }

    /// Whether admin `admin_id` wrote it, by author alone.
    pub fn by_admin(&self, admin_id: &str) -> bool {
        self.by_an_admin()
            && self
                .author
                .and_then(|author| author.id.as_ref())
                .is_some_and(|id| id.as_str() == admin_id)
    }

    /// Whether it is the app's own action: admin `admin_id` (the app's)
    /// wrote it through the API ([`Origin::Api`]). A part that admin wrote
    /// in Intercom is a teammate's. Where the part does not say how it was
    /// written ([`Origin::Unsaid`]), the author alone decides, and only
    /// when `admin_id` was named explicitly (`explicit`), never when it is
    /// merely the token's admin.
    pub fn is_apps_own(&self, admin_id: &str, explicit: bool) -> bool {
        let through_the_api = match self.origin {
            Origin::Api => true,
            Origin::Intercom => false,
            Origin::Unsaid => explicit,
        };
        through_the_api && self.by_admin(admin_id)
    }

    /// Whether it could be the app's own action for some admin: written by
    /// an admin, through the API or (with an explicit admin) not saying how.
    /// Only then is it worth asking who the app's admin is.
    pub fn could_be_apps_own(&self, explicit: bool) -> bool {
        self.by_an_admin()
            && match self.origin {
                Origin::Api => true,
                Origin::Intercom => false,
                Origin::Unsaid => explicit,
            }
    }
}

model! {
    /// The type of a ticket.
    pub struct TicketType {
        id: Id,
        name: String,
        category: String,
    }
}

model! {
    /// A ticket (`ticket.*`).
    pub struct Ticket {
        id: Id,
        ticket_id: String,
        category: String,
        ticket_state: String,
        ticket_state_internal_label: String,
        ticket_state_external_label: String,
        ticket_type: TicketType,
        ticket_attributes: Map<String, Value>,
        contacts: ContactRefList,
        /// `"0"` when unassigned.
        admin_assignee_id: Id,
        /// `"0"` when unassigned.
        team_assignee_id: Id,
        open: bool,
        is_shared: bool,
        created_at: Timestamp,
        updated_at: Timestamp,
        snoozed_until: Timestamp,
        ticket_parts: TicketPartList,
    }
}

model! {
    /// A ticket with the part that a note or reply added, or the closed ticket
    /// (`ticket.note.created`, `ticket.*.replied`, `ticket.closed`).
    pub struct TicketWithPart {
        ticket: Ticket,
        ticket_part: TicketPart,
    }
}

model! {
    /// A tag added to or a part removed from a conversation (`conversation_part.*`).
    pub struct ConversationPartEvent {
        id: Id,
        conversation_id: Id,
        conversation_part: ConversationPart,
        conversation: Conversation,
        tag: Tag,
    }
}

model! {
    /// A data event a contact did (`event.created`).
    pub struct DataEvent {
        id: Id,
        event_name: String,
        created_at: Timestamp,
        user_id: String,
        email: String,
        intercom_user_id: Id,
        metadata: Map<String, Value>,
    }
}

model! {
    /// A contact's email or subscription-type preference (`contact.subscribed`, `granular.*`).
    pub struct Subscription {
        id: Id,
        state: String,
        consent_type: String,
        contact: Contact,
        subscription_type: Value,
    }
}

model! {
    /// A content statistic for messages, tours, surveys and more (`content_stat.*`).
    pub struct ContentStat {
        kind as "type": String,
        created_at: Timestamp,
        content_stat: ContentStatDetail,
        contact: Contact,
        company: Company,
    }
}

model! {
    /// The statistic inside a [`ContentStat`].
    pub struct ContentStatDetail {
        id: Id,
        content_type: String,
        content_id: Id,
        stat_type: String,
        content_title: String,
        ruleset_id: Id,
        ruleset_version_id: Id,
        series_id: Id,
        series_title: String,
        node_id: Id,
    }
}

model! {
    /// A help-center article (`article.*`).
    pub struct Article {
        id: Id,
        title: String,
        description: String,
        /// HTML.
        body: String,
        author_id: Id,
        state: String,
        url: String,
        parent_id: Id,
        created_at: Timestamp,
        updated_at: Timestamp,
    }
}

model! {
    /// A phone call (`call.*`).
    pub struct Call {
        id: Id,
        conversation_id: Id,
        state: String,
        direction: String,
        initiated_at: Timestamp,
        answered_at: Timestamp,
        ended_at: Timestamp,
        admin_id: Id,
        contact_id: Id,
        recording_url: String,
        transcription_url: String,
    }
}

model! {
    /// An object any of the smaller families send: content snippets, audiences
    /// and memberships, content import sources, jobs, API requests, data
    /// connector executions, procedure notifications. Its fields beyond these
    /// are in `extra`.
    pub struct Resource {
        kind as "type": String,
        id: Id,
        name: String,
        title: String,
        state: String,
        status: String,
        created_at: Timestamp,
        updated_at: Timestamp,
        deleted: bool,
    }
}

model! {
    /// Intercom's `ping`.
    pub struct Ping {
        message: String,
    }
}

/// A typed `data.item`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Item {
    Admin(Box<Admin>),
    Article(Box<Article>),
    Attachment(Box<Attachment>),
    Call(Box<Call>),
    Company(Box<Company>),
    Contact(Box<Contact>),
    ContactTag(Box<ContactTag>),
    ContentStat(Box<ContentStat>),
    Conversation(Box<Conversation>),
    ConversationPartEvent(Box<ConversationPartEvent>),
    DataEvent(Box<DataEvent>),
    Ping(Box<Ping>),
    Resource(Box<Resource>),
    Subscription(Box<Subscription>),
    Ticket(Box<Ticket>),
    TicketWithPart(Box<TicketWithPart>),
    /// A topic outside the catalogue: the item as sent.
    Other(Value),
}

/// An item that does not fit its model. Every field is optional and lenient,
/// so no object Intercom sends should come to this; it is kept so that a
/// surprise fails one record rather than the processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError(pub String);

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "item does not fit its model: {}", self.0)
    }
}

impl std::error::Error for ModelError {}

fn boxed<T: DeserializeOwned>(item: Value) -> Result<Box<T>, ModelError> {
    T::deserialize(item)
        .map(Box::new)
        .map_err(|e| ModelError(e.to_string()))
}

impl Item {
    /// The model for `topic`, made from `data.item` as the envelope parse left it.
    pub fn from_object(topic: Topic, item: Map<String, Value>) -> Result<Self, ModelError> {
        use Topic as T;
        let item = Value::Object(item);
        Ok(match topic {
            T::CompanyContactAttached
            | T::CompanyContactDetached
            | T::ConversationContactAttached
            | T::ConversationContactDetached => Item::Attachment(boxed(item)?),
            T::ContactSubscribed | T::ContactUnsubscribed => Item::Subscription(boxed(item)?),
            T::ContactLeadTagCreated
            | T::ContactLeadTagDeleted
            | T::ContactUserTagCreated
            | T::ContactUserTagDeleted => Item::ContactTag(boxed(item)?),
            T::TicketNoteCreated
            | T::TicketAdminReplied
            | T::TicketAdminRepliedTranslated
            | T::TicketContactReplied
            | T::TicketClosed => Item::TicketWithPart(boxed(item)?),
            T::Unknown => Item::Other(item),
            known => match known.family() {
                Family::Admin => Item::Admin(boxed(item)?),
                Family::Article => Item::Article(boxed(item)?),
                Family::Call => Item::Call(boxed(item)?),
                Family::Company => Item::Company(boxed(item)?),
                Family::Contact | Family::Visitor => Item::Contact(boxed(item)?),
                Family::ContentStat => Item::ContentStat(boxed(item)?),
                Family::Conversation => Item::Conversation(boxed(item)?),
                Family::ConversationPart => Item::ConversationPartEvent(boxed(item)?),
                Family::Event => Item::DataEvent(boxed(item)?),
                Family::Ping => Item::Ping(boxed(item)?),
                Family::Subscription => Item::Subscription(boxed(item)?),
                Family::Ticket => Item::Ticket(boxed(item)?),
                _ => Item::Resource(boxed(item)?),
            },
        })
    }

    /// The model's name, for logs and error messages.
    pub fn model_name(&self) -> &'static str {
        match self {
            Item::Admin(_) => "Admin",
            Item::Article(_) => "Article",
            Item::Attachment(_) => "Attachment",
            Item::Call(_) => "Call",
            Item::Company(_) => "Company",
            Item::Contact(_) => "Contact",
            Item::ContactTag(_) => "ContactTag",
            Item::ContentStat(_) => "ContentStat",
            Item::Conversation(_) => "Conversation",
            Item::ConversationPartEvent(_) => "ConversationPartEvent",
            Item::DataEvent(_) => "DataEvent",
            Item::Ping(_) => "Ping",
            Item::Resource(_) => "Resource",
            Item::Subscription(_) => "Subscription",
            Item::Ticket(_) => "Ticket",
            Item::TicketWithPart(_) => "TicketWithPart",
            Item::Other(_) => "Other",
        }
    }

    /// The newest part of a conversation or ticket (by `created_at`; of
    /// parts created in the same second, the last listed), or `None` for
    /// an item without parts. A ticket part notification's own part counts
    /// among its ticket's. The message that started a conversation counts
    /// only for `conversation.admin.single.created`, whose event it is (a
    /// new outbound message): any other conversation without parts has none.
    pub fn newest_part(&self, topic: Topic) -> Option<NewestPart<'_>> {
        fn newest<'a>(
            parts: impl Iterator<Item = (Option<Timestamp>, Option<&'a Author>, Origin)>,
        ) -> Option<NewestPart<'a>> {
            parts
                .enumerate()
                .max_by_key(|(n, (created_at, _, _))| (*created_at, *n))
                .map(|(_, (_, author, origin))| NewestPart { author, origin })
        }
        fn ticket_parts(ticket: &Ticket) -> &[TicketPart] {
            ticket
                .ticket_parts
                .as_ref()
                .and_then(|list| list.ticket_parts.as_deref())
                .unwrap_or_default()
        }
        match self {
            Item::Conversation(conversation) => {
                let parts = conversation
                    .conversation_parts
                    .as_ref()
                    .and_then(|list| list.conversation_parts.as_deref())
                    .unwrap_or_default();
                let found = newest(
                    parts
                        .iter()
                        .map(|p| (p.created_at, p.author.as_ref(), p.origin())),
                );
                match found {
                    Some(part) => Some(part),
                    None if topic == Topic::ConversationAdminSingleCreated => {
                        let source = conversation.source.as_ref()?;
                        Some(NewestPart {
                            author: source.author.as_ref(),
                            origin: Origin::of(&source.extra),
                        })
                    }
                    None => None,
                }
            }
            Item::Ticket(ticket) => newest(
                ticket_parts(ticket)
                    .iter()
                    .map(|p| (p.created_at, p.author.as_ref(), p.origin())),
            ),
            Item::TicketWithPart(with_part) => {
                let listed = with_part
                    .ticket
                    .as_ref()
                    .map(ticket_parts)
                    .unwrap_or_default();
                newest(
                    listed
                        .iter()
                        .chain(with_part.ticket_part.as_ref())
                        .map(|p| (p.created_at, p.author.as_ref(), p.origin())),
                )
            }
            _ => None,
        }
    }
}

/// A model that an [`Item`] may hold, so handlers can ask for it by type.
pub trait FromItem: Sized {
    /// `Some` when `item` holds this model.
    fn from_item(item: Item) -> Result<Self, Item>;
    /// The model's name, for error messages.
    const NAME: &'static str;
}

impl FromItem for Item {
    fn from_item(item: Item) -> Result<Self, Item> {
        Ok(item)
    }
    const NAME: &'static str = "Item";
}

macro_rules! from_item {
    ($($variant:ident),+) => {
        $(
            impl FromItem for $variant {
                fn from_item(item: Item) -> Result<Self, Item> {
                    match item {
                        Item::$variant(model) => Ok(*model),
                        other => Err(other),
                    }
                }
                const NAME: &'static str = stringify!($variant);
            }
        )+
    };
}

from_item!(
    Admin,
    Article,
    Attachment,
    Call,
    Company,
    Contact,
    ContactTag,
    ContentStat,
    Conversation,
    ConversationPartEvent,
    DataEvent,
    Ping,
    Resource,
    Subscription,
    Ticket,
    TicketWithPart
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_part_says_whose_echo_a_notification_is() {
        let item = |topic, json: Value| Item::from_object(topic, object(json)).expect("an item");
        let admin = |id: &str| serde_json::json!({"type": "admin", "id": id});
        let own = |item: &Item, topic, admin_id: &str, explicit: bool| {
            item.newest_part(topic)
                .is_some_and(|part| part.is_apps_own(admin_id, explicit))
        };
        let replied = Topic::ConversationAdminReplied;
        let conversation = item(
            replied,
            serde_json::json!({
                "type": "conversation", "id": "1",
                "source": {"author": {"type": "user", "id": "u1"}},
                "conversation_parts": {"conversation_parts": [
                    {"id": "p2", "created_at": 1700000005, "author": admin("991"),
                     "app_package_code": "refund-bot"},
                    {"id": "p1", "created_at": 1700000001, "author": {"type": "user", "id": "u1"},
                     "app_package_code": null},
                ]},
            }),
        );
        assert!(own(&conversation, replied, "991", false));
        assert!(!own(&conversation, replied, "7", true));
        // The same admin typing in the inbox is a teammate, named or not.
        let typed = item(
            replied,
            serde_json::json!({"conversation_parts": {"conversation_parts": [
                {"created_at": 5, "author": admin("991"), "app_package_code": null}]}}),
        );
        assert!(!own(&typed, replied, "991", false));
        assert!(!own(&typed, replied, "991", true));
        assert!(
            !typed
                .newest_part(replied)
                .expect("a part")
                .could_be_apps_own(true)
        );
        let empty_code = item(
            replied,
            serde_json::json!({"conversation_parts": {"conversation_parts": [
                {"created_at": 5, "author": admin("991"), "app_package_code": ""}]}}),
        );
        assert!(!own(&empty_code, replied, "991", true));
        // No app_package_code field at all: the author decides, and only
        // for an admin named explicitly.
        let unsaid = item(
            replied,
            serde_json::json!({"conversation_parts": {"conversation_parts": [
                {"created_at": 5, "author": admin("991")}]}}),
        );
        assert!(own(&unsaid, replied, "991", true));
        assert!(!own(&unsaid, replied, "991", false));
        // A user's id that equals the admin's is not the admin.
        let by_user = item(
            Topic::ConversationUserReplied,
            serde_json::json!({"conversation_parts": {"conversation_parts": [
                {"created_at": 5, "author": {"type": "user", "id": "991"},
                 "app_package_code": "refund-bot"}]}}),
        );
        assert!(!own(&by_user, Topic::ConversationUserReplied, "991", true));
        // Parts of one second: the last listed is the newest; a user's
        // reply after the app's decides.
        let noted = Topic::ConversationAdminNoted;
        let same_second = item(
            noted,
            serde_json::json!({"conversation_parts": {"conversation_parts": [
                {"created_at": 5, "author": admin("991"), "app_package_code": "x"},
                {"created_at": 5, "author": {"type": "user", "id": "u"}}]}}),
        );
        assert!(!own(&same_second, noted, "991", true));
        // No parts: the message that started it, for a new outbound
        // message only.
        let started = serde_json::json!({
            "source": {"author": admin("991"), "app_package_code": "x"},
            "conversation_parts": {"conversation_parts": []}});
        let outbound = Topic::ConversationAdminSingleCreated;
        assert!(own(
            &item(outbound, started.clone()),
            outbound,
            "991",
            false
        ));
        let closed = Topic::ConversationAdminClosed;
        assert_eq!(item(closed, started).newest_part(closed), None);
        // Tickets: the notification's part among its ticket's.
        let ticket_reply = item(
            Topic::TicketAdminReplied,
            serde_json::json!({"ticket": {"id": "5", "ticket_parts": {"ticket_parts": [
                    {"created_at": 3, "author": {"type": "user", "id": "u"}}]}},
                "ticket_part": {"created_at": 4, "author": admin("991"),
                                "app_package_code": "x"}}),
        );
        assert!(own(&ticket_reply, Topic::TicketAdminReplied, "991", false));
        let state = Topic::TicketStateUpdated;
        let ticket = item(
            state,
            serde_json::json!({"id": "5", "ticket_parts": {"ticket_parts": [
                {"created_at": 4, "author": admin("991"), "app_package_code": "x"},
                {"created_at": 3, "author": {"type": "user", "id": "u"}}]}}),
        );
        assert!(own(&ticket, state, "991", false));
        // Items without parts are never an echo.
        let contact = item(Topic::ContactUserCreated, serde_json::json!({"id": "c"}));
        assert_eq!(contact.newest_part(Topic::ContactUserCreated), None);
    }

    #[test]
    fn ids_and_timestamps_in_every_form_intercom_uses() {
        let admin: Admin =
            serde_json::from_str(r#"{"type":"admin","id":991267,"team_ids":[1,"2"]}"#)
                .expect("admin");
        assert_eq!(admin.id, Some(Id("991267".into())));
        assert_eq!(admin.team_ids, Some(vec![Id("1".into()), Id("2".into())]));
        for (text, seconds) in [
            ("1763850000", 1_763_850_000),
            ("1763850000.9", 1_763_850_000),
            ("\"2025-11-22T22:20:00Z\"", 1_763_850_000),
            ("\"2025-11-22T22:20:00.000Z\"", 1_763_850_000),
            ("\"2025-11-22T22:20:00+00:00\"", 1_763_850_000),
            ("\"2025-11-22T23:20:00+01:00\"", 1_763_850_000),
        ] {
            assert_eq!(
                serde_json::from_str::<Timestamp>(text).expect(text),
                Timestamp(seconds),
                "{text}"
            );
        }
    }

    #[test]
    fn wrong_types_become_none_and_unknown_fields_are_kept() {
        let contact: Contact = serde_json::from_str(
            r#"{"type":"contact","id":"c1","email":42,"created_at":"not a date","brand_new_field":{"x":1}}"#,
        )
        .expect("lenient");
        assert_eq!(contact.id, Some(Id("c1".into())));
        assert_eq!(contact.email, None);
        assert_eq!(contact.created_at, None);
        assert_eq!(contact.extra["brand_new_field"]["x"], 1);
        assert_eq!(contact.extra["type"], "contact");
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn deleted_items_with_only_an_id_parse() {
        let item = Item::from_object(
            Topic::ContactDeleted,
            object(serde_json::json!({"id": "c9"})),
        )
        .expect("minimal");
        let Item::Contact(contact) = item else {
            panic!("contact")
        };
        assert_eq!(contact.id, Some(Id("c9".into())));
    }

    #[test]
    fn every_catalogued_topic_parses_an_empty_object() {
        for topic in Topic::ALL {
            let item =
                Item::from_object(*topic, Map::new()).unwrap_or_else(|e| panic!("{topic}: {e}"));
            assert_ne!(item.model_name(), "Other", "{topic}");
        }
        assert_eq!(
            Item::from_object(Topic::Unknown, object(serde_json::json!({"a": 1}))),
            Ok(Item::Other(serde_json::json!({"a": 1})))
        );
    }

    #[test]
    fn from_item_extracts_or_returns_the_item() {
        let item = Item::from_object(Topic::TicketCreated, object(serde_json::json!({"id": "5"})))
            .expect("ticket");
        let ticket = Ticket::from_item(item.clone()).expect("a ticket");
        assert_eq!(ticket.id, Some(Id("5".into())));
        assert_eq!(Conversation::from_item(item.clone()), Err(item));
    }
}
