//! The docs show the shipped code: README's first handler and its test, and docs/handlers.md's walk-through, are held to `functions/topic-processor/src/handlers.rs` byte for byte.
//!
//! Here rather than in handlers.rs, so that a user editing the example
//! handler runs only their own tests with `cargo test -p topic-processor
//! --lib handlers`.

/// docs/handlers.md shows handlers.rs's first handler, its registration,
/// its setting and its test as they are there, so what a newcomer copies
/// compiles and passes.
#[test]
fn the_handler_page_and_the_readme_show_the_shipped_handler() {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../functions/topic-processor/src/handlers.rs"
    ))
    .expect("handlers.rs");
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/handlers.md"))
        .expect("docs/handlers.md");
    let between = |start: &str, end: &str, indent: usize| -> String {
        let from = source
            .find(start)
            .unwrap_or_else(|| panic!("{start} in handlers.rs"));
        let to = from + source[from..].find(end).expect("its end") + end.len();
        source[from..to]
            .lines()
            .map(|line| line.get(indent..).unwrap_or(line.trim_start()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let shown = [
        between("/// When a ticket is closed", "\n}\n", 0),
        between("        let closed_tickets = match", "        };\n", 8),
        between(
            "    if let Some(endpoint) = app.closed_tickets",
            "    }\n",
            4,
        ),
        between(
            "    #[tokio::test]\n    async fn a_closed_ticket_is_posted_once",
            "\n    }\n",
            4,
        ),
    ];
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    // The README's first handler is this one, and its test this one.
    for code in [&shown[0], &shown[3]] {
        assert!(
            readme.contains(code.as_str()),
            "README.md does not show:\n{code}"
        );
    }
    for code in shown {
        assert!(
            page.contains(&code),
            "docs/handlers.md does not show:\n{code}"
        );
        let lines = code.lines().count();
        assert!(lines <= 20, "{lines} lines:\n{code}");
    }
}
