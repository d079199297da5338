//! Every call the typed client can make, against Intercom's own OpenAPI description (the mock refuses what the description would).

use std::time::Duration;

use hyper::Method;
use intercom_api::{ApiSettings, Assignee, Client, EventSubject, ReplyKind, Token};
use intercom_mock::MockIntercom;
use serde_json::{Value, json};
use tokio::time::Instant;

fn client(url: &str) -> Client {
    let settings =
        ApiSettings::from_lookup(|name| (name == "INTERCOM_API_URL").then(|| url.to_owned()))
            .expect("settings");
    Client::new(&settings, Token::new("tok").expect("token"), None).expect("client")
}

#[tokio::test]
async fn every_typed_call_is_one_the_description_takes() {
    let mock = MockIntercom::start().await;
    mock.add_conversation(json!({"type": "conversation", "id": "123", "state": "open"}));
    let intercom = client(&mock.url).until(Instant::now() + Duration::from_secs(30));
    let admin = intercom.me().await.expect("me");
    assert_eq!(admin.id.map(|id| id.0), Some(MockIntercom::admin_id()));

    intercom.conversation("123").await.expect("conversation");
    intercom
        .reply("123", ReplyKind::Comment, "<p>Hi</p>")
        .await
        .expect("reply");
    intercom.note("123", "<p>seen</p>").await.expect("note");
    intercom.close("123", Some("bye")).await.expect("close");
    intercom
        .close("123", None)
        .await
        .expect("close, no message");
    intercom.open("123").await.expect("open");
    intercom.snooze("123", 1_900_000_000).await.expect("snooze");
    intercom
        .assign("123", &Assignee::Admin("456".into()))
        .await
        .expect("assign to an admin");
    intercom
        .assign("123", &Assignee::Team("789".into()))
        .await
        .expect("assign to a team");
    intercom.tag_conversation("123", "7").await.expect("tag");
    intercom
        .untag_conversation("123", "7")
        .await
        .expect("untag");
    let mut attributes = serde_json::Map::new();
    attributes.insert("refund".into(), json!("requested"));
    attributes.insert("orders".into(), json!(3));
    intercom
        .set_conversation_attributes("123", &attributes)
        .await
        .expect("attributes");
    intercom.contact("c1").await.expect("contact");
    intercom
        .update_contact(
            "c1",
            &json!({"name": "Ada", "custom_attributes": {"plan": "pro"}}),
        )
        .await
        .expect("update contact");
    intercom.tag_contact("c1", "7").await.expect("tag contact");
    intercom
        .untag_contact("c1", "7")
        .await
        .expect("untag contact");
    intercom
        .note_contact("c1", "<p>called</p>")
        .await
        .expect("contact note");
    intercom.ticket("t1").await.expect("ticket");
    intercom
        .update_ticket("t1", &json!({"open": false}))
        .await
        .expect("update ticket");
    intercom
        .reply_to_ticket("t1", ReplyKind::Note, "<p>on it</p>")
        .await
        .expect("ticket note");
    intercom.tags().await.expect("tags");
    intercom.create_tag("refund").await.expect("create tag");
    intercom.company("co1").await.expect("company");
    for subject in [
        EventSubject::ContactId("c1".into()),
        EventSubject::UserId("u1".into()),
        EventSubject::Email("ada@example.com".into()),
    ] {
        let mut metadata = serde_json::Map::new();
        metadata.insert("order".into(), json!("A-1"));
        intercom
            .submit_event("ordered", 1_700_000_000, &subject, Some(&metadata))
            .await
            .expect("event");
    }
    assert_eq!(mock.violations(), Vec::<String>::new());
    let parts = "POST /conversations/123/parts";
    assert_eq!(
        mock.paths(),
        [
            "GET /me",
            "GET /conversations/123",
            // The admin the inbox calls act as, asked once.
            "GET /me",
            "POST /conversations/123/reply",
            "POST /conversations/123/reply",
            parts,
            parts,
            parts,
            parts,
            parts,
            parts,
            "POST /conversations/123/tags",
            "DELETE /conversations/123/tags/7",
            "PUT /conversations/123",
            "GET /contacts/c1",
            "PUT /contacts/c1",
            "POST /contacts/c1/tags",
            "DELETE /contacts/c1/tags/7",
            "POST /contacts/c1/notes",
            "GET /tickets/t1",
            "PUT /tickets/t1",
            "POST /tickets/t1/reply",
            "GET /tags",
            "POST /tags",
            "GET /companies/co1",
            "POST /events",
            "POST /events",
            "POST /events",
        ]
    );
}

#[tokio::test]
async fn a_request_the_description_refuses_is_refused_and_recorded() {
    let mock = MockIntercom::start().await;
    let intercom = client(&mock.url).until(Instant::now() + Duration::from_secs(30));
    let wrong = intercom
        .request::<Value>(
            Method::POST,
            "/conversations/123/reply",
            Some(&json!({"message_type": "shout", "type": "admin", "admin_id": "1"})),
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(wrong, intercom_api::ApiError::Invalid { status: 400, .. }),
        "{wrong:?}"
    );
    let unknown = intercom
        .request::<Value>(Method::GET, "/conversations?colour=red", None)
        .await
        .expect_err("refused");
    assert!(
        matches!(unknown, intercom_api::ApiError::Invalid { .. }),
        "{unknown:?}"
    );
    let violations = mock.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].contains("body"), "{violations:?}");
    assert!(violations[1].contains("`colour`"), "{violations:?}");
}

#[tokio::test]
async fn conversations_are_kept_and_what_intercom_refuses_is_refused() {
    let mock = MockIntercom::start().await;
    mock.add_conversation(json!({"type": "conversation", "id": 77, "state": "open"}));
    let intercom = client(&mock.url).until(Instant::now() + Duration::from_secs(30));
    let written = intercom.note("77", "<p>Refund</p>").await.expect("note");
    intercom.close("77", None).await.expect("close");
    intercom
        .assign("77", &Assignee::Team("5".into()))
        .await
        .expect("assign");
    intercom.tag_conversation("77", "9").await.expect("tag");
    let now = intercom.conversation("77").await.expect("read back");
    assert_eq!(now.state.as_deref(), Some("closed"));
    assert_eq!(now.team_assignee_id.map(|id| id.0).as_deref(), Some("5"));
    let parts = now
        .conversation_parts
        .and_then(|l| l.conversation_parts)
        .expect("parts");
    assert_eq!(parts.len(), 3, "{parts:?}");
    let note = &parts[0];
    assert_eq!(note.id.as_ref().map(|id| id.0.clone()), written.part_id);
    assert_eq!(note.body.as_deref(), Some("<p>Refund</p>"));
    assert_eq!(note.part_type.as_deref(), Some("note"));
    assert_eq!(
        note.author
            .as_ref()
            .and_then(|a| a.id.clone())
            .map(|id| id.0),
        Some(MockIntercom::admin_id())
    );
    assert_eq!(
        note.origin(),
        intercom_webhook::models::Origin::Api,
        "a part written through the API says so"
    );
    let tags = now.tags.and_then(|t| t.tags).expect("tags");
    assert_eq!(tags[0].id.as_ref().map(|id| id.0.as_str()), Some("9"));
    assert_eq!(mock.violations(), Vec::<String>::new());

    // Unknown conversations are not found; wrong ids, empty notes and
    // bodies that are not JSON are refused.
    let missing = intercom.conversation("78").await.expect_err("unknown");
    assert!(
        matches!(missing, intercom_api::ApiError::NotFound(_)),
        "{missing:?}"
    );
    let missing = intercom.note("78", "x").await.expect_err("unknown");
    assert!(
        matches!(missing, intercom_api::ApiError::NotFound(_)),
        "{missing:?}"
    );
    let shape = intercom
        .conversation("abc")
        .await
        .expect_err("not a number");
    assert!(
        matches!(shape, intercom_api::ApiError::Invalid { status: 400, .. }),
        "{shape:?}"
    );
    let empty = intercom.note("77", "  ").await.expect_err("empty");
    assert!(
        matches!(empty, intercom_api::ApiError::Invalid { status: 400, .. }),
        "{empty:?}"
    );
    let violations = mock.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(
        violations[0].contains("`abc` is not a number"),
        "{violations:?}"
    );
    assert!(violations[1].contains("non-empty `body`"), "{violations:?}");

    let raw = post_by_hand(&mock.url, "/conversations/77/reply", "text/plain").await;
    assert_eq!(raw, 415);
}

/// POSTs `{}` to the mock with `content_type`, by hand; the answer's status.
async fn post_by_hand(url: &str, path: &str, content_type: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer tok\r\n\
         Intercom-Version: 2.15\r\nContent-Type: {content_type}\r\nContent-Length: 2\r\n\
         Connection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line")
}

/// A window's objects, every page walked: the mock truncates dates to
/// days in the workspace's time zone, as Intercom does, so the client
/// must ask wider and keep only the window.
#[tokio::test]
async fn updated_between_walks_every_page_and_keeps_only_the_window() {
    use intercom_api::Searchable;
    let mock = MockIntercom::start().await;
    let since = 1_764_000_000; // 2025-11-24T16:00:00Z
    let until = since + 3_600;
    // 320 conversations in the window (three pages of 150), and some
    // just outside it on either side, on the same day.
    for n in 0..320 {
        mock.add_conversation(
            json!({"type": "conversation", "id": format!("{}", 1000 + n),
            "updated_at": since + n % 3_600, "state": "open"}),
        );
    }
    for (id, updated_at) in [("1", since - 1), ("2", until), ("3", until + 60)] {
        mock.add_conversation(json!({"type": "conversation", "id": id, "updated_at": updated_at}));
    }
    mock.add_ticket(json!({"type": "ticket", "id": "t1", "updated_at": since + 5}));
    mock.add_ticket(json!({"type": "ticket", "id": "t2", "updated_at": since - 86_400}));
    mock.add_contact(json!({"type": "contact", "id": "c1", "updated_at": until - 1}));

    let intercom = client(&mock.url).until(Instant::now() + Duration::from_secs(60));
    let mut pages = Vec::new();
    let found: Vec<Value> = intercom
        .updated_between(Searchable::Conversations, since, until, &mut |n| {
            pages.push(n)
        })
        .await
        .expect("conversations");
    assert_eq!(
        pages,
        [150, 150, 23],
        "three pages, each as Intercom gave it"
    );
    assert_eq!(found.len(), 320, "the window's, not the day's");
    let times: Vec<i64> = found
        .iter()
        .map(|c| c["updated_at"].as_i64().expect("updated_at"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert!(times.iter().all(|t| (since..until).contains(t)));

    let tickets: Vec<Value> = intercom
        .updated_between(Searchable::Tickets, since, until, &mut |_| {})
        .await
        .expect("tickets");
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0]["id"], "t1");
    let contacts: Vec<intercom_webhook::models::Contact> = intercom
        .updated_between(Searchable::Contacts, since, until, &mut |_| {})
        .await
        .expect("typed contacts");
    assert_eq!(contacts.len(), 1);
    assert!(
        mock.violations().is_empty(),
        "every search is one the description takes: {:?}",
        mock.violations()
    );
    let searches = mock
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/search"))
        .count();
    assert_eq!(
        searches, 5,
        "3 pages of conversations, 1 of tickets, 1 of contacts"
    );
}

#[tokio::test]
async fn a_search_waits_out_a_429_and_a_date_operator_intercom_refuses_is_refused() {
    use intercom_api::search::{all_of, filter};
    use intercom_api::{ApiError, Searchable};
    let mock = MockIntercom::start().await;
    mock.add_contact(json!({"type": "contact", "id": "c1", "updated_at": 1_764_000_000}));
    mock.then_on(
        "POST /contacts/search",
        intercom_mock::Fault::RateLimited {
            reset_in: Duration::from_secs(1),
        },
    );
    let intercom = client(&mock.url).until(Instant::now() + Duration::from_secs(30));
    let started = std::time::Instant::now();
    let found: Vec<Value> = intercom
        .updated_between(
            Searchable::Contacts,
            1_763_990_000,
            1_764_010_000,
            &mut |_| {},
        )
        .await
        .expect("the 429 waited out");
    assert_eq!(found.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited for the reset"
    );
    let statuses: Vec<u16> = mock.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 200]);

    let refused = intercom
        .search::<Value>(
            Searchable::Contacts,
            &all_of([filter("updated_at", ">=", 1_764_000_000)]),
            10,
            None,
        )
        .await
        .expect_err("Intercom refuses >= on a date");
    assert!(
        matches!(refused, ApiError::Invalid { status: 400, .. }),
        "{refused:?}"
    );
}
