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
    (@name $field:ident) => { stringify!($field) };
    (@name $field:ident $rename:literal) => { $rename };
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

        impl $name {
            /// The JSON names of the fields this model names; every other
            /// field lands in `extra`.
            pub const FIELDS: &'static [&'static str] = &[$(model!(@name $field $($rename)?)),*];
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
        /// Whether an AI agent (Fin) wrote it.
        from_ai_agent: bool,
        /// Whether it is an AI agent's answer.
        is_ai_answer: bool,
    }
}

model! {
    /// A tag.
    pub struct Tag {
        id: Id,
        name: String,
        applied_at: Timestamp,
        /// Who applied it (`{"type": "admin", "id": …}`).
        applied_by: Value,
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
        attachments: Vec<Value>,
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
        attachments: Vec<Value>,
        external_id: String,
        /// `open`, `closed` or `snoozed` after this part.
        state: String,
        tags: Vec<Tag>,
        email_message_metadata: Value,
        metadata: Value,
        event_details: Value,
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
        /// The company the conversation is about (2.15).
        company: Company,
        conversation_rating: Value,
        teammates: Value,
        first_contact_reply: Value,
        sla_applied: Value,
        statistics: Value,
        linked_objects: Value,
        ai_agent_participated: bool,
        ai_agent: Value,
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
        workspace_id: String,
        email_domain: String,
        has_hard_bounced: bool,
        marked_email_as_spam: bool,
        last_replied_at: Timestamp,
        last_contacted_at: Timestamp,
        last_email_opened_at: Timestamp,
        last_email_clicked_at: Timestamp,
        language_override: String,
        browser: String,
        browser_version: String,
        browser_language: String,
        os: String,
        android_app_name: String,
        android_app_version: String,
        android_device: String,
        android_os_version: String,
        android_sdk_version: String,
        android_last_seen_at: Timestamp,
        ios_app_name: String,
        ios_app_version: String,
        ios_device: String,
        ios_os_version: String,
        ios_sdk_version: String,
        ios_last_seen_at: Timestamp,
        avatar: Value,
        notes: Value,
        companies: Value,
        location: Value,
        social_profiles: Value,
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
        app_id: String,
        last_request_at: Timestamp,
        session_count: i64,
        tags: Value,
        segments: Value,
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
        away_status_reason_id: i64,
        avatar: String,
        team_priority_level: Value,
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
        assigned_to: Author,
        attachments: Vec<Value>,
        external_id: String,
        updated_attribute_data: Value,
    }
}

model! {
    /// `ticket_parts` of a ticket.
    pub struct TicketPartList {
        ticket_parts: Vec<TicketPart>,
        total_count: u64,
    }
}

impl TicketPart {
    /// How the part was written ([`Origin`], from `app_package_code`).
    pub fn origin(&self) -> Origin {
        Origin::of(&self.extra)
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
        description: String,
        icon: String,
        workspace_id: String,
        ticket_type_attributes: Value,
        ticket_states: Value,
        archived: bool,
        created_at: Timestamp,
        updated_at: Timestamp,
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
        linked_objects: Value,
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
        workspace_id: String,
        parent_ids: Vec<Id>,
        parent_type: String,
        default_locale: String,
        translated_content: Value,
        tags: Value,
        statistics: Value,
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

// What handlers reach for most, without the `Option` noise: ids as `&str`
// (`""` when Intercom sent none), texts as `Option<&str>`.

/// An id as `&str`, `""` when there is none.
fn id_of(id: Option<&Id>) -> &str {
    id.map_or("", Id::as_str)
}

/// The newest of `parts` by `created_at`; of parts created in the same
/// second, the last listed (Intercom lists them oldest first).
fn newest<P>(parts: &[P], created_at: impl Fn(&P) -> Option<Timestamp>) -> Option<&P> {
    parts
        .iter()
        .enumerate()
        .max_by_key(|(n, part)| (created_at(part), *n))
        .map(|(_, part)| part)
}

/// `id()` as `&str` on the models with an id.
macro_rules! id_accessor {
    ($($model:ident),+) => {$(
        impl $model {
            /// The id, `""` when Intercom sent none.
            pub fn id(&self) -> &str {
                id_of(self.id.as_ref())
            }
        }
    )+};
}

id_accessor!(
    Author,
    Tag,
    ContactRef,
    ConversationPart,
    Conversation,
    TicketPart,
    Ticket,
    Contact,
    Company,
    Admin
);

impl Author {
    /// Whether a teammate (or the app, through the API) wrote it.
    pub fn is_admin(&self) -> bool {
        self.kind.as_deref() == Some("admin")
    }

    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
}

impl ConversationPart {
    /// The part's text (HTML), if it has one (assignments and state
    /// changes have none).
    pub fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }

    pub fn author(&self) -> Option<&Author> {
        self.author.as_ref()
    }
}

impl Conversation {
    /// The message that started the conversation (HTML): `source.body`.
    pub fn first_message(&self) -> Option<&str> {
        self.source.as_ref()?.body.as_deref()
    }

    /// Who started the conversation: `source.author`.
    pub fn author(&self) -> Option<&Author> {
        self.source.as_ref()?.author.as_ref()
    }

    /// Its parts as the notification carries them (oldest first; a
    /// webhook carries the newest few, not necessarily all).
    pub fn parts(&self) -> &[ConversationPart] {
        self.conversation_parts
            .as_ref()
            .and_then(|list| list.conversation_parts.as_deref())
            .unwrap_or_default()
    }

    /// The newest part (by `created_at`; of one second, the last listed).
    pub fn newest_part(&self) -> Option<&ConversationPart> {
        newest(self.parts(), |part| part.created_at)
    }

    /// The first contact it is with (`contacts.contacts[0]`).
    pub fn contact(&self) -> Option<&ContactRef> {
        self.contacts.as_ref()?.contacts.as_deref()?.first()
    }
}

impl TicketPart {
    /// The part's text (HTML), if it has one.
    pub fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }

    pub fn author(&self) -> Option<&Author> {
        self.author.as_ref()
    }
}

impl Ticket {
    /// The title (the `_default_title_` ticket attribute).
    pub fn title(&self) -> Option<&str> {
        self.attribute("_default_title_")?.as_str()
    }

    /// The description (the `_default_description_` ticket attribute).
    pub fn description(&self) -> Option<&str> {
        self.attribute("_default_description_")?.as_str()
    }

    /// A ticket attribute by name (`ticket_attributes`), as sent.
    pub fn attribute(&self, name: &str) -> Option<&Value> {
        self.ticket_attributes.as_ref()?.get(name)
    }

    /// Its state: `submitted`, `in_progress`, `waiting_on_customer` or
    /// `resolved` (`ticket_state`).
    pub fn state(&self) -> Option<&str> {
        self.ticket_state.as_deref()
    }

    /// Its parts as the notification carries them (oldest first).
    pub fn parts(&self) -> &[TicketPart] {
        self.ticket_parts
            .as_ref()
            .and_then(|list| list.ticket_parts.as_deref())
            .unwrap_or_default()
    }

    /// The newest part (by `created_at`; of one second, the last listed).
    pub fn newest_part(&self) -> Option<&TicketPart> {
        newest(self.parts(), |part| part.created_at)
    }
}

/// What [`TicketWithPart::ticket`] gives when the item carries no ticket.
static NO_TICKET: std::sync::LazyLock<Ticket> = std::sync::LazyLock::new(Ticket::default);

impl TicketWithPart {
    /// The ticket (an empty one, whose `id()` is `""`, if none came).
    pub fn ticket(&self) -> &Ticket {
        self.ticket.as_ref().unwrap_or(&NO_TICKET)
    }

    /// The part this notification is about: the note, the reply, the
    /// closing part.
    pub fn part(&self) -> Option<&TicketPart> {
        self.ticket_part.as_ref()
    }

    /// The ticket's newest part: this notification's own, unless the
    /// ticket's parts hold a newer one.
    pub fn newest_part(&self) -> Option<&TicketPart> {
        let own = self.part();
        match (own, self.ticket().newest_part()) {
            (Some(own), Some(listed)) if listed.created_at > own.created_at => Some(listed),
            (Some(own), _) => Some(own),
            (None, listed) => listed,
        }
    }
}

impl Contact {
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// Your own id for the contact (`external_id`, the `user_id` of older
    /// API versions).
    pub fn external_id(&self) -> Option<&str> {
        self.external_id.as_deref()
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
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
            T::SyncedConversation => Item::Conversation(boxed(item)?),
            T::SyncedTicket => Item::Ticket(boxed(item)?),
            T::SyncedContact => Item::Contact(boxed(item)?),
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
        match self {
            Item::Conversation(conversation) => {
                let found = newest(
                    conversation
                        .parts()
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
                ticket
                    .parts()
                    .iter()
                    .map(|p| (p.created_at, p.author.as_ref(), p.origin())),
            ),
            Item::TicketWithPart(with_part) => {
                let listed = with_part
                    .ticket
                    .as_ref()
                    .map(Ticket::parts)
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

/// The model a handler for `topic` asks for (`Event<Ticket>` on
/// `ticket.created`, `Event<TicketWithPart>` on `ticket.closed`), by name:
/// the model [`Item::from_object`] makes for the topic. `"Item"` for
/// [`Topic::Unknown`], whose item is [`Item::Other`].
pub fn model_for(topic: Topic) -> &'static str {
    match Item::from_object(topic, Map::new()) {
        Ok(Item::Other(_)) | Err(_) => Item::NAME,
        Ok(item) => item.model_name(),
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
    fn accessors_reach_what_handlers_want_without_option_noise() {
        let conversation: Conversation = serde_json::from_value(serde_json::json!({
            "id": 215473853299345_u64,
            "source": {"body": "<p>refund please</p>", "author": {"type": "user", "id": "u1", "email": "jane@example.com"}},
            "contacts": {"contacts": [{"type": "contact", "id": "c1", "external_id": "user-42"}]},
            "conversation_parts": {"conversation_parts": [
                {"id": "p1", "created_at": 5, "body": "<p>first</p>", "author": {"type": "admin", "id": "991"}},
                {"id": "p2", "created_at": 9, "body": "<p>newest</p>", "author": {"type": "user", "id": "u1"}},
                {"id": "p3", "created_at": 7},
            ]},
        }))
        .expect("conversation");
        assert_eq!(conversation.id(), "215473853299345");
        assert_eq!(conversation.first_message(), Some("<p>refund please</p>"));
        let author = conversation.author().expect("an author");
        assert_eq!((author.id(), author.is_admin()), ("u1", false));
        assert_eq!(author.email(), Some("jane@example.com"));
        assert_eq!(conversation.parts().len(), 3);
        let newest = conversation.newest_part().expect("parts");
        assert_eq!((newest.id(), newest.body()), ("p2", Some("<p>newest</p>")));
        assert_eq!(newest.author().map(Author::id), Some("u1"));
        assert_eq!(conversation.contact().map(ContactRef::id), Some("c1"));
        let empty = Conversation::default();
        assert_eq!(empty.id(), "");
        assert_eq!(empty.first_message(), None);
        assert!(empty.newest_part().is_none() && empty.parts().is_empty());

        let closed: TicketWithPart = serde_json::from_value(serde_json::json!({
            "ticket": {"id": 5, "ticket_state": "resolved",
                       "ticket_attributes": {"_default_title_": "Broken order", "_default_description_": "📦", "Order": "12345"},
                       "ticket_parts": {"ticket_parts": [
                           {"id": "t1", "created_at": 3, "body": "<p>opened</p>"},
                           {"id": "t2", "created_at": 3, "body": "<p>same second, listed last</p>"}]}},
            "ticket_part": {"id": 19874, "created_at": 10, "part_type": "ticket_state_updated_by_admin", "author": {"type": "admin", "id": "991"}},
        }))
        .expect("ticket with part");
        let ticket = closed.ticket();
        assert_eq!(ticket.id(), "5");
        assert_eq!(ticket.title(), Some("Broken order"));
        assert_eq!(ticket.description(), Some("📦"));
        assert_eq!(ticket.attribute("Order"), Some(&Value::from("12345")));
        assert_eq!(ticket.state(), Some("resolved"));
        assert_eq!(ticket.newest_part().map(TicketPart::id), Some("t2"));
        assert_eq!(closed.part().map(TicketPart::id), Some("19874"));
        assert_eq!(closed.newest_part().map(TicketPart::id), Some("19874"));
        assert!(
            closed
                .newest_part()
                .and_then(TicketPart::author)
                .is_some_and(Author::is_admin)
        );
        assert_eq!(TicketWithPart::default().ticket().id(), "");
        assert_eq!(TicketWithPart::default().ticket().title(), None);

        let contact: Contact = serde_json::from_value(serde_json::json!(
            {"id": "c1", "email": "jane@example.com", "external_id": "user-42", "name": "Jane"}
        ))
        .expect("contact");
        assert_eq!(contact.id(), "c1");
        assert_eq!(contact.email(), Some("jane@example.com"));
        assert_eq!(contact.external_id(), Some("user-42"));
        assert_eq!(contact.name(), Some("Jane"));
        assert_eq!(Contact::default().email(), None);
    }

    /// A model's name, its fields, the schemas of Intercom's 2.15
    /// description it models, and the fields of those schemas it leaves in
    /// `extra` on purpose.
    type Modelled = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
        &'static [&'static str],
    );

    /// Each model and what it models.
    const SCHEMAS: &[Modelled] = &[
        (
            "Author",
            Author::FIELDS,
            &["conversation_part_author", "ticket_part_author"],
            &[],
        ),
        ("Tag", Tag::FIELDS, &["tag"], &[]),
        ("TagList", TagList::FIELDS, &["tag_list"], &[]),
        (
            "ContactRef",
            ContactRef::FIELDS,
            &["contact_reference"],
            &[],
        ),
        (
            "ContactRefList",
            ContactRefList::FIELDS,
            &["conversation_contacts", "ticket_contacts"],
            &[],
        ),
        (
            "ConversationSource",
            ConversationSource::FIELDS,
            &["conversation_source"],
            &[],
        ),
        // Absent and null `app_package_code` say different things (an
        // older API version; a part written in Intercom): `extra` keeps
        // the difference, an `Option` would not.
        (
            "ConversationPart",
            ConversationPart::FIELDS,
            &["conversation_part"],
            &["app_package_code"],
        ),
        (
            "ConversationPartList",
            ConversationPartList::FIELDS,
            &["conversation_parts"],
            &[],
        ),
        ("Conversation", Conversation::FIELDS, &["conversation"], &[]),
        ("Contact", Contact::FIELDS, &["contact"], &[]),
        ("Company", Company::FIELDS, &["company"], &[]),
        ("Admin", Admin::FIELDS, &["admin"], &[]),
        (
            "TicketPart",
            TicketPart::FIELDS,
            &["ticket_part"],
            &["app_package_code"],
        ),
        (
            "TicketPartList",
            TicketPartList::FIELDS,
            &["ticket_parts"],
            &[],
        ),
        ("TicketType", TicketType::FIELDS, &["ticket_type"], &[]),
        ("Ticket", Ticket::FIELDS, &["ticket"], &[]),
        ("DataEvent", DataEvent::FIELDS, &["data_event"], &[]),
        ("Article", Article::FIELDS, &["article"], &[]),
    ];

    /// The properties of schema `name`, through `$ref`s and `allOf`.
    fn properties(schemas: &Map<String, Value>, schema: &Value, into: &mut Vec<String>) {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.rsplit('/').next().unwrap_or_default();
            return properties(schemas, &schemas[name], into);
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for part in schema[key].as_array().into_iter().flatten() {
                properties(schemas, part, into);
            }
        }
        for name in schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if !into.contains(name) {
                into.push(name.clone());
            }
        }
    }

    #[test]
    fn every_model_names_every_field_of_intercoms_description() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../intercom-mock/openapi/api.intercom.io.2.15.json"
        );
        let text = std::fs::read_to_string(path).expect("the vendored description");
        let description: Value = serde_json::from_str(&text).expect("json");
        let schemas = description["components"]["schemas"]
            .as_object()
            .expect("schemas");
        let mut missing = Vec::new();
        for (model, fields, names, in_extra) in SCHEMAS {
            for name in *names {
                let schema = schemas
                    .get(*name)
                    .unwrap_or_else(|| panic!("no schema {name}"));
                let mut described = Vec::new();
                properties(schemas, schema, &mut described);
                assert!(!described.is_empty(), "{name} has no properties");
                for field in described {
                    // `type` is the object's kind, which the topic decides
                    // ([`Item::from_object`]); it stays in `extra`.
                    if field == "type" && !fields.contains(&"type") {
                        continue;
                    }
                    if !fields.contains(&field.as_str()) && !in_extra.contains(&field.as_str()) {
                        missing.push(format!("{model}.{field} ({name})"));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "fields of Intercom's 2.15 description no model names: {missing:?}"
        );
    }

    #[test]
    fn the_topics_page_lists_every_topic_with_its_variant_and_model() {
        let page = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/topics-and-models.md"
        ))
        .expect("docs/topics-and-models.md");
        let rows = page.lines().filter(|line| line.starts_with("| `")).count();
        assert_eq!(
            rows,
            Topic::ALL.len() + Topic::SYNCED.len(),
            "one row per topic, no more"
        );
        for topic in Topic::ALL.iter().chain(Topic::SYNCED) {
            let preview = if topic.is_preview() { " (preview)" } else { "" };
            let row = format!(
                "| `{}`{preview} | `Topic::{}` | `Event<{}>` | `{}` |",
                topic.name(),
                topic.variant_name(),
                model_for(*topic),
                topic.item_type()
            );
            assert!(
                page.contains(&row),
                "docs/topics-and-models.md lacks:\n{row}"
            );
        }
    }

    #[test]
    fn each_topic_names_the_model_its_handler_asks_for() {
        assert_eq!(model_for(Topic::TicketCreated), "Ticket");
        assert_eq!(model_for(Topic::TicketClosed), "TicketWithPart");
        assert_eq!(model_for(Topic::ConversationUserCreated), "Conversation");
        assert_eq!(model_for(Topic::VisitorSignedUp), "Contact");
        assert_eq!(model_for(Topic::ContactUserTagCreated), "ContactTag");
        assert_eq!(model_for(Topic::Unknown), "Item");
        for topic in Topic::ALL {
            let item = Item::from_object(*topic, Map::new()).expect("parses");
            assert_eq!(model_for(*topic), item.model_name(), "{topic}");
        }
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
