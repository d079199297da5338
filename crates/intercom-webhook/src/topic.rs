//! Intercom's webhook topic catalogue: every documented topic, its family and item type.
//!
//! Compiled from Intercom's "Webhook topics" reference (API 2.15 to 2.17 and
//! Preview, November 2026). New topics appear with every API version, so a
//! topic outside the catalogue is normal traffic: it parses to
//! [`Topic::Unknown`] and is routed like any other. Topics Intercom offers
//! only in its Preview API version say so ([`Topic::is_preview`]): they may
//! change shape or go away.
//!
//! Beside Intercom's catalogue, three topics are this project's own
//! ([`Topic::SYNCED`], family `synced`): `intercom-dev backfill` queues an
//! object's current state under them (`crate::synced`). Intercom never
//! sends them; the processor takes one only with the queue attribute
//! `synced` that `backfill` sets and the receiver never does.

use std::fmt;

/// The family a topic belongs to: the section of Intercom's catalogue, which is
/// also the kind of object its notifications are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Family {
    Admin,
    ApiRequest,
    Article,
    Audience,
    Call,
    Company,
    Contact,
    ContentImportSource,
    ContentSnippet,
    ContentStat,
    Conversation,
    ConversationPart,
    DataConnector,
    Event,
    Job,
    Ping,
    Procedure,
    Subscription,
    Ticket,
    Visitor,
    /// This project's own topics: an object's current state, queued by
    /// `intercom-dev backfill` (`synced.conversation`, ...).
    Synced,
    /// A topic outside the catalogue.
    Unknown,
}

impl Family {
    /// The family's name as used in logs and documentation (`conversation_part`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::ApiRequest => "api_request",
            Self::Article => "article",
            Self::Audience => "audience",
            Self::Call => "call",
            Self::Company => "company",
            Self::Contact => "contact",
            Self::ContentImportSource => "content_import_source",
            Self::ContentSnippet => "content_snippet",
            Self::ContentStat => "content_stat",
            Self::Conversation => "conversation",
            Self::ConversationPart => "conversation_part",
            Self::DataConnector => "data_connector",
            Self::Event => "event",
            Self::Job => "job",
            Self::Ping => "ping",
            Self::Procedure => "procedure",
            Self::Subscription => "subscription",
            Self::Ticket => "ticket",
            Self::Visitor => "visitor",
            Self::Synced => "synced",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

macro_rules! catalogue {
    (
        $($variant:ident => $name:literal, $family:ident, $item:literal;)+
        @ours
        $($own:ident => $own_name:literal, $own_family:ident, $own_item:literal;)+
    ) => {
        /// A webhook topic from Intercom's catalogue, or [`Topic::Unknown`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Topic {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )+
            $(
                #[doc = concat!("`", $own_name, "`: this project's own, never Intercom's (`intercom-dev backfill`)")]
                $own,
            )+
            /// A topic outside the catalogue (newer than it, or from a preview version).
            Unknown,
        }

        impl Topic {
            /// Every topic of Intercom's catalogue, in catalogue order
            /// (not this project's own [`Topic::SYNCED`]).
            pub const ALL: &'static [Topic] = &[$(Topic::$variant),+];

            /// This project's own topics: an object's current state, queued
            /// by `intercom-dev backfill`.
            pub const SYNCED: &'static [Topic] = &[$(Topic::$own),+];

            /// The topic Intercom sends as `name`, or [`Topic::Unknown`].
            pub fn from_name(name: &str) -> Topic {
                match name {
                    $($name => Topic::$variant,)+
                    $($own_name => Topic::$own,)+
                    _ => Topic::Unknown,
                }
            }

            /// The topic's name as Intercom sends it (`"unknown"` for [`Topic::Unknown`]).
            pub fn name(self) -> &'static str {
                match self {
                    $(Topic::$variant => $name,)+
                    $(Topic::$own => $own_name,)+
                    Topic::Unknown => "unknown",
                }
            }

            /// The variant's name, as a handler is registered with it
            /// (`Topic::ConversationUserCreated`), without the `Topic::`.
            pub fn variant_name(self) -> &'static str {
                match self {
                    $(Topic::$variant => stringify!($variant),)+
                    $(Topic::$own => stringify!($own),)+
                    Topic::Unknown => "Unknown",
                }
            }

            /// The family the topic belongs to.
            pub fn family(self) -> Family {
                match self {
                    $(Topic::$variant => Family::$family,)+
                    $(Topic::$own => Family::$own_family,)+
                    Topic::Unknown => Family::Unknown,
                }
            }

            /// The `type` Intercom gives `data.item` on this topic's notifications
            /// (`ticket_ticket_part` for wrappers that carry a ticket and a part;
            /// `content_stat.<content>` for content stats, as Intercom's
            /// documented `content_stat.series` item shows).
            pub fn item_type(self) -> &'static str {
                match self {
                    $(Topic::$variant => $item,)+
                    $(Topic::$own => $own_item,)+
                    Topic::Unknown => "unknown",
                }
            }
        }
    };
}

catalogue! {
    AdminAddedToWorkspace => "admin.added_to_workspace", Admin, "admin";
    AdminAwayModeUpdated => "admin.away_mode_updated", Admin, "admin";
    AdminActivityLogEventCreated => "admin.activity_log_event.created", Admin, "admin";
    AdminRemovedFromWorkspace => "admin.removed_from_workspace", Admin, "admin";
    AdminLoggedIn => "admin.logged_in", Admin, "admin";
    AdminLoggedOut => "admin.logged_out", Admin, "admin";
    ApiRequestCompleted => "api.request.completed", ApiRequest, "api_request";
    ArticleCreated => "article.created", Article, "article";
    ArticleUpdated => "article.updated", Article, "article";
    ArticlePublished => "article.published", Article, "article";
    ArticleUnpublished => "article.unpublished", Article, "article";
    ArticleDeleted => "article.deleted", Article, "article";
    AudienceCreated => "audience.created", Audience, "audience";
    AudienceUpdated => "audience.updated", Audience, "audience";
    AudienceDeleted => "audience.deleted", Audience, "audience";
    AudienceMemberAdded => "audience.member_added", Audience, "audience_membership";
    AudienceMemberRemoved => "audience.member_removed", Audience, "audience_membership";
    CallStarted => "call.started", Call, "call";
    CallEnded => "call.ended", Call, "call";
    CallTranscriptionAvailable => "call.transcription_available", Call, "call";
    CallRecordingAvailable => "call.recording_available", Call, "call";
    CompanyCreated => "company.created", Company, "company";
    CompanyDeleted => "company.deleted", Company, "company";
    CompanyUpdated => "company.updated", Company, "company";
    CompanyContactAttached => "company.contact.attached", Company, "company_contact";
    CompanyContactDetached => "company.contact.detached", Company, "company_contact";
    ContactArchived => "contact.archived", Contact, "contact";
    ContactDeleted => "contact.deleted", Contact, "contact";
    ContactEmailUpdated => "contact.email.updated", Contact, "contact";
    ContactLeadAddedEmail => "contact.lead.added_email", Contact, "contact";
    ContactLeadCreated => "contact.lead.created", Contact, "contact";
    ContactLeadSignedUp => "contact.lead.signed_up", Contact, "contact";
    ContactLeadUpdated => "contact.lead.updated", Contact, "contact";
    ContactMerged => "contact.merged", Contact, "contact";
    ContactUnarchive => "contact.unarchive", Contact, "contact";
    ContactUserCreated => "contact.user.created", Contact, "contact";
    ContactUserUpdated => "contact.user.updated", Contact, "contact";
    ContactLeadTagCreated => "contact.lead.tag.created", Contact, "contact_tag";
    ContactLeadTagDeleted => "contact.lead.tag.deleted", Contact, "contact_tag";
    ContactUserTagCreated => "contact.user.tag.created", Contact, "contact_tag";
    ContactUserTagDeleted => "contact.user.tag.deleted", Contact, "contact_tag";
    ContactSubscribed => "contact.subscribed", Contact, "subscription";
    ContactUnsubscribed => "contact.unsubscribed", Contact, "subscription";
    ContentImportSourceCreated => "content_import_source.created", ContentImportSource, "content_import_source";
    ContentImportSourceUpdated => "content_import_source.updated", ContentImportSource, "content_import_source";
    ContentImportSourceDeleted => "content_import_source.deleted", ContentImportSource, "content_import_source";
    ContentSnippetCreated => "content_snippet.created", ContentSnippet, "content_snippet";
    ContentSnippetUpdated => "content_snippet.updated", ContentSnippet, "content_snippet";
    ContentSnippetDeleted => "content_snippet.deleted", ContentSnippet, "content_snippet";
    ContentStatBanner => "content_stat.banner", ContentStat, "content_stat.banner";
    ContentStatCarousel => "content_stat.carousel", ContentStat, "content_stat.carousel";
    ContentStatChat => "content_stat.chat", ContentStat, "content_stat.chat";
    ContentStatChecklist => "content_stat.checklist", ContentStat, "content_stat.checklist";
    ContentStatCustomBot => "content_stat.custom_bot", ContentStat, "content_stat.custom_bot";
    ContentStatEmail => "content_stat.email", ContentStat, "content_stat.email";
    ContentStatNewsItem => "content_stat.news_item", ContentStat, "content_stat.news_item";
    ContentStatPost => "content_stat.post", ContentStat, "content_stat.post";
    ContentStatPush => "content_stat.push", ContentStat, "content_stat.push";
    ContentStatSeries => "content_stat.series", ContentStat, "content_stat.series";
    ContentStatSeriesWebhook => "content_stat.series.webhook", ContentStat, "content_stat.series.webhook";
    ContentStatSms => "content_stat.sms", ContentStat, "content_stat.sms";
    ContentStatSurvey => "content_stat.survey", ContentStat, "content_stat.survey";
    ContentStatTooltipGroup => "content_stat.tooltip_group", ContentStat, "content_stat.tooltip_group";
    ContentStatTour => "content_stat.tour", ContentStat, "content_stat.tour";
    ConversationAdminAssigned => "conversation.admin.assigned", Conversation, "conversation";
    ConversationAdminClosed => "conversation.admin.closed", Conversation, "conversation";
    ConversationAdminNoted => "conversation.admin.noted", Conversation, "conversation";
    ConversationAdminOpenAssigned => "conversation.admin.open.assigned", Conversation, "conversation";
    ConversationAdminOpened => "conversation.admin.opened", Conversation, "conversation";
    ConversationAdminReplied => "conversation.admin.replied", Conversation, "conversation";
    ConversationAdminRepliedTranslated => "conversation.admin.replied.translated", Conversation, "conversation";
    ConversationAdminSingleCreated => "conversation.admin.single.created", Conversation, "conversation";
    ConversationAdminSnoozed => "conversation.admin.snoozed", Conversation, "conversation";
    ConversationAdminUnsnoozed => "conversation.admin.unsnoozed", Conversation, "conversation";
    ConversationOperatorReplied => "conversation.operator.replied", Conversation, "conversation";
    ConversationDeleted => "conversation.deleted", Conversation, "conversation";
    ConversationPriorityUpdated => "conversation.priority.updated", Conversation, "conversation";
    ConversationRatingAdded => "conversation.rating.added", Conversation, "conversation";
    ConversationRead => "conversation.read", Conversation, "conversation";
    ConversationUserCreated => "conversation.user.created", Conversation, "conversation";
    ConversationUserReplied => "conversation.user.replied", Conversation, "conversation";
    ConversationCompanyUpdated => "conversation.company.updated", Conversation, "conversation";
    ConversationContactAttached => "conversation.contact.attached", Conversation, "conversation_contact";
    ConversationContactDetached => "conversation.contact.detached", Conversation, "conversation_contact";
    ConversationPartRedacted => "conversation_part.redacted", ConversationPart, "conversation_part";
    ConversationPartTagCreated => "conversation_part.tag.created", ConversationPart, "conversation_part";
    DataConnectorExecutionCompleted => "data_connector.execution.completed", DataConnector, "data_connector.execution";
    EventCreated => "event.created", Event, "event";
    JobCompleted => "job.completed", Job, "job";
    Ping => "ping", Ping, "ping";
    ProcedureHitlNotificationCreated => "procedure.hitl_notification.created", Procedure, "procedure.hitl_notification";
    GranularSubscribe => "granular.subscribe", Subscription, "subscription";
    GranularUnsubscribe => "granular.unsubscribe", Subscription, "subscription";
    TicketCreated => "ticket.created", Ticket, "ticket";
    TicketStateUpdated => "ticket.state.updated", Ticket, "ticket";
    TicketAdminAssigned => "ticket.admin.assigned", Ticket, "ticket";
    TicketTeamAssigned => "ticket.team.assigned", Ticket, "ticket";
    TicketContactAttached => "ticket.contact.attached", Ticket, "ticket";
    TicketContactDetached => "ticket.contact.detached", Ticket, "ticket";
    TicketAttributeUpdated => "ticket.attribute.updated", Ticket, "ticket";
    TicketRatingProvided => "ticket.rating.provided", Ticket, "ticket";
    TicketResolved => "ticket.resolved", Ticket, "ticket";
    TicketNoteCreated => "ticket.note.created", Ticket, "ticket_ticket_part";
    TicketAdminReplied => "ticket.admin.replied", Ticket, "ticket_ticket_part";
    TicketAdminRepliedTranslated => "ticket.admin.replied.translated", Ticket, "ticket_ticket_part";
    TicketContactReplied => "ticket.contact.replied", Ticket, "ticket_ticket_part";
    TicketClosed => "ticket.closed", Ticket, "ticket_ticket_part";
    VisitorSignedUp => "visitor.signed_up", Visitor, "user";
    @ours
    SyncedConversation => "synced.conversation", Synced, "conversation";
    SyncedTicket => "synced.ticket", Synced, "ticket";
    SyncedContact => "synced.contact", Synced, "contact";
}

impl Topic {
    /// Whether Intercom offers this topic only in its Preview API version:
    /// `audience.*`, `content_import_source.*` and
    /// `procedure.hitl_notification.created`.
    pub fn is_preview(self) -> bool {
        matches!(
            self.family(),
            Family::Audience | Family::ContentImportSource
        ) || self == Topic::ProcedureHitlNotificationCreated
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn catalogue_covers_every_documented_family() {
        assert!(Topic::ALL.len() >= 100, "{} topics", Topic::ALL.len());
        let families: HashSet<Family> = Topic::ALL.iter().map(|t| t.family()).collect();
        for family in [
            Family::Admin,
            Family::Article,
            Family::Audience,
            Family::Call,
            Family::Company,
            Family::Contact,
            Family::ContentSnippet,
            Family::ContentStat,
            Family::Conversation,
            Family::ConversationPart,
            Family::Ticket,
            Family::Job,
            Family::ApiRequest,
            Family::Ping,
        ] {
            assert!(families.contains(&family), "{family} missing");
        }
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = HashSet::new();
        for topic in Topic::ALL {
            assert!(seen.insert(topic.name()), "{topic} twice");
            assert_eq!(Topic::from_name(topic.name()), *topic);
            assert_ne!(topic.family(), Family::Unknown);
        }
    }

    #[test]
    fn topic_names_start_with_their_family_except_documented_exceptions() {
        for topic in Topic::ALL {
            let prefix = topic.name().split('.').next().unwrap_or_default();
            match prefix {
                "granular" => assert_eq!(topic.family(), Family::Subscription, "{topic}"),
                "api" => assert_eq!(topic.family(), Family::ApiRequest, "{topic}"),
                _ => assert_eq!(topic.family().name(), prefix, "{topic}"),
            }
        }
    }

    #[test]
    fn preview_topics_are_marked() {
        let preview: Vec<&str> = Topic::ALL
            .iter()
            .filter(|t| t.is_preview())
            .map(|t| t.name())
            .collect();
        assert_eq!(
            preview,
            [
                "audience.created",
                "audience.updated",
                "audience.deleted",
                "audience.member_added",
                "audience.member_removed",
                "content_import_source.created",
                "content_import_source.updated",
                "content_import_source.deleted",
                "procedure.hitl_notification.created",
            ]
        );
        assert!(!Topic::Unknown.is_preview());
    }

    #[test]
    fn content_stats_carry_the_item_type_intercom_sends() {
        assert_eq!(
            Topic::ContentStatSeries.item_type(),
            "content_stat.series",
            "Intercom's documented example item"
        );
        for topic in Topic::ALL
            .iter()
            .filter(|t| t.family() == Family::ContentStat)
        {
            assert_eq!(topic.item_type(), topic.name(), "{topic}");
        }
    }

    #[test]
    fn examples_from_intercom_docs() {
        assert_eq!(
            Topic::from_name("conversation.user.created"),
            Topic::ConversationUserCreated
        );
        assert_eq!(Topic::ConversationUserCreated.item_type(), "conversation");
        assert_eq!(
            Topic::from_name("contact.user.tag.created").item_type(),
            "contact_tag"
        );
        assert_eq!(
            Topic::from_name("ticket.note.created").item_type(),
            "ticket_ticket_part"
        );
        assert_eq!(Topic::from_name("visitor.signed_up").item_type(), "user");
        assert_eq!(
            Topic::from_name("content_stat.series.webhook").family(),
            Family::ContentStat
        );
        assert_eq!(Topic::from_name("ping").family(), Family::Ping);
    }

    #[test]
    fn variant_names_are_the_names_to_register_with() {
        assert_eq!(Topic::TicketClosed.variant_name(), "TicketClosed");
        assert_eq!(
            Topic::ConversationAdminRepliedTranslated.variant_name(),
            "ConversationAdminRepliedTranslated"
        );
        let mut seen = HashSet::new();
        for topic in Topic::ALL {
            assert!(seen.insert(topic.variant_name()), "{topic} twice");
            // The variant is the name in UpperCamelCase, less `_` and `.`.
            let camel: String = topic
                .name()
                .split(['.', '_'])
                .map(|word| {
                    let mut chars = word.chars();
                    chars.next().map_or_else(String::new, |first| {
                        first.to_ascii_uppercase().to_string() + chars.as_str()
                    })
                })
                .collect();
            assert_eq!(camel, topic.variant_name(), "{topic}");
        }
    }

    #[test]
    fn unknown_topics_are_unknown_not_errors() {
        for name in [
            "",
            "conversation",
            "conversation.user.created ",
            "CONVERSATION.USER.CREATED",
            "brand.new.topic",
        ] {
            assert_eq!(Topic::from_name(name), Topic::Unknown, "{name:?}");
        }
        assert_eq!(Topic::Unknown.family(), Family::Unknown);
    }

    #[test]
    fn our_own_topics_are_apart_from_intercoms() {
        for topic in Topic::SYNCED {
            assert!(!Topic::ALL.contains(topic), "{topic}");
            assert_eq!(topic.family(), Family::Synced);
            assert_eq!(Topic::from_name(topic.name()), *topic);
            assert_eq!(topic.name(), format!("synced.{}", topic.item_type()));
        }
        assert_eq!(
            Topic::from_name("synced.conversation"),
            Topic::SyncedConversation
        );
        assert_eq!(Topic::from_name("synced.company"), Topic::Unknown);
    }
}
