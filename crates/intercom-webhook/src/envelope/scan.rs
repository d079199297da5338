//! The envelope parse's fast path: one hand-written pass over a body that is plainly valid JSON.
//!
//! [`scan`] reads what [`super::EnvelopeVisitor`] reads (the envelope's fields,
//! `data.item`'s head, duplicates) and checks the whole body's syntax, without
//! serde's visitor machinery, which on a typical 1 KB notification costs more
//! than the JSON itself. It answers only when it is sure: `Some` means the
//! body is JSON that `serde_json` parses into a `Value`, read exactly as the
//! serde path would read it. Anything unusual is left to the serde path by
//! answering `None`: invalid JSON (whose error message the serde path words),
//! nesting deeper than [`MAX_DEPTH`], a key with an escape, a `\u` escape of
//! a surrogate, and a number with an exponent or more than
//! [`MAX_PLAIN_DIGITS`] digits (which could be beyond an `f64`, and a `Value`
//! refuses those). Property tests and fuzzers hold the two paths to each other
//! and to `serde_json::Value`.

use std::borrow::Cow;

use super::{ItemHead, RawEnvelope, Scalar, Shape, Wrapper};

/// Deeper nesting is left to the serde path, which enforces serde_json's limit
/// (127 levels) with serde_json's own error.
const MAX_DEPTH: usize = 100;

/// A number with at most this many digits and no exponent is below 10^300,
/// so within an `f64`, and `serde_json` takes it whatever its digits.
const MAX_PLAIN_DIGITS: usize = 300;

/// The body's envelope, read in one pass, or `None` for the serde path to decide.
pub(super) fn scan(text: &str) -> Option<RawEnvelope<'_>> {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    scanner.whitespace();
    let raw = scanner.envelope()?;
    scanner.whitespace();
    (scanner.at == scanner.bytes.len()).then_some(raw)
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// How many objects and arrays enclose the current position.
    depth: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.whitespace();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Calls `field` with each key of the object that starts here; `field`
    /// must consume the key's value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if self.peek()? != b'{' {
            return None;
        }
        self.entries(b'}', |this| {
            let key = this.plain_key()?;
            this.eat(b':')?;
            this.whitespace();
            field(this, key)
        })
    }

    /// Calls `entry` for each comma-separated entry of the object or array
    /// that opens here, up to `close`; deeper than [`MAX_DEPTH`] it gives up.
    fn entries(&mut self, close: u8, mut entry: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if self.depth == MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        self.at += 1;
        self.whitespace();
        if self.peek()? == close {
            self.at += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            self.whitespace();
            entry(self)?;
            self.whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b if b == close => {
                    self.at += 1;
                    self.depth -= 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A key without escapes (an escaped key could spell a field's name).
    fn plain_key(&mut self) -> Option<&'a str> {
        let start = self.at;
        let escaped = self.string()?;
        if escaped {
            return None;
        }
        self.text.get(start + 1..self.at - 1)
    }

    /// The value that starts here as a [`Scalar`], read as serde_json reads it.
    fn scalar(&mut self) -> Option<Scalar<'a>> {
        match self.peek()? {
            b'"' => {
                let start = self.at;
                let escaped = self.string()?;
                let token = self.text.get(start..self.at)?;
                if escaped {
                    // `string` let through only escapes serde_json decodes.
                    let decoded = serde_json::from_str::<String>(token).ok()?;
                    Some(Scalar::Str(Cow::Owned(decoded)))
                } else {
                    Some(Scalar::Str(Cow::Borrowed(&token[1..token.len() - 1])))
                }
            }
            b'n' => self.literal(b"null").map(|()| Scalar::Null),
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                self.number()?;
                let token = &self.text[start..self.at];
                // serde_json reads a non-negative integer as a u64 and a
                // negative one as an i64; anything else (a fraction, a larger
                // integer, and `-0`) as an f64.
                let int = if token.starts_with('-') {
                    token.parse::<i64>().ok().filter(|n| *n < 0).map(i128::from)
                } else {
                    token.parse::<u64>().ok().map(i128::from)
                };
                Some(int.map_or(Scalar::Other, Scalar::Int))
            }
            _ => self.value().map(|()| Scalar::Other),
        }
    }

    /// `Shape::Object(read(self))` for an object, `Shape::Other` for any other value.
    fn shape<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Shape<T>> {
        if self.peek()? == b'{' {
            read(self).map(Shape::Object)
        } else {
            self.value().map(|()| Shape::Other)
        }
    }

    fn envelope(&mut self) -> Option<RawEnvelope<'a>> {
        let mut raw = RawEnvelope::default();
        self.object(|this, key| {
            let slot = match key {
                "type" => (&mut raw.kind, "type"),
                "topic" => (&mut raw.topic, "topic"),
                "id" => (&mut raw.id, "id"),
                "app_id" => (&mut raw.app_id, "app_id"),
                "created_at" => (&mut raw.created_at, "created_at"),
                "delivery_attempts" => {
                    raw.delivery_attempts = Some(this.scalar()?);
                    return Some(());
                }
                "data" => {
                    let (data, item_twice) = match this.shape(Self::data)? {
                        Shape::Object((item, twice)) => (Shape::Object(item), twice),
                        Shape::Other => (Shape::Other, false),
                    };
                    if item_twice {
                        raw.duplicate.get_or_insert("data.item");
                    }
                    super::store_once(&mut raw.data, data, "data", &mut raw.duplicate);
                    return Some(());
                }
                _ => return this.value(),
            };
            let value = this.scalar()?;
            super::store_once(slot.0, value, slot.1, &mut raw.duplicate);
            Some(())
        })?;
        Some(raw)
    }

    /// `data`: the shape of `item`, and whether it came twice.
    #[allow(clippy::type_complexity)]
    fn data(&mut self) -> Option<(Option<Shape<ItemHead<'a>>>, bool)> {
        let mut item = None;
        let mut twice = false;
        self.object(|this, key| {
            if key == "item" {
                twice |= item.replace(this.shape(Self::item_head)?).is_some();
                Some(())
            } else {
                this.value()
            }
        })?;
        Some((item, twice))
    }

    fn item_head(&mut self) -> Option<ItemHead<'a>> {
        let mut head = ItemHead::default();
        self.object(|this, key| {
            match key {
                "type" => head.item_type = this.scalar()?.into_str(),
                "id" => head.id = this.scalar()?.into_id(),
                other => match Wrapper::from_key(other) {
                    Some(kind) => {
                        if let Shape::Object(id) = this.shape(Self::wrapped_id)? {
                            *head.wrapped_slot(kind) = id;
                        }
                    }
                    None => this.value()?,
                },
            }
            Some(())
        })?;
        Some(head)
    }

    fn wrapped_id(&mut self) -> Option<Option<Cow<'a, str>>> {
        let mut id = None;
        self.object(|this, key| {
            if key == "id" {
                id = this.scalar()?.into_id();
                Some(())
            } else {
                this.value()
            }
        })?;
        Some(id)
    }

    /// Checks the value that starts here.
    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|this, _| this.value()),
            b'[' => self.entries(b']', Self::value),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?` with at most [`MAX_PLAIN_DIGITS`]
    /// digits before the point, and no exponent.
    fn number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.at += 1;
        }
        let digits = self.digits();
        let leading_zero = digits > 1 && self.bytes[self.at - digits] == b'0';
        if digits == 0 || digits > MAX_PLAIN_DIGITS || leading_zero {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        match self.peek() {
            Some(b'e' | b'E') => None,
            _ => Some(()),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    /// Moves past the string that starts here, and says whether it holds an
    /// escape. Checked: no raw control characters, and only escapes that
    /// serde_json decodes into a `String` wherever they stand.
    fn string(&mut self) -> Option<bool> {
        if self.peek()? != b'"' {
            return None;
        }
        self.at += 1;
        let mut escaped = false;
        loop {
            self.skip_plain_bytes();
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return None,
            }
        }
    }

    /// Moves to the next quote, backslash or control byte (or the end), eight
    /// bytes at a time: the usual SWAR tests flag those bytes in a word, and
    /// the lowest flag is always a true one, so it is where to stop.
    fn skip_plain_bytes(&mut self) {
        const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
        const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
        let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
        let rest = &self.bytes[self.at..];
        let mut chunks = rest.chunks_exact(8);
        let mut skipped = 0;
        for chunk in chunks.by_ref() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let word = u64::from_le_bytes(word);
            let flags = zero_in(word ^ (ONES * u64::from(b'"')))
                | zero_in(word ^ (ONES * u64::from(b'\\')))
                | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS);
            if flags != 0 {
                self.at += skipped + (flags.trailing_zeros() / 8) as usize;
                return;
            }
            skipped += 8;
        }
        let tail = chunks.remainder();
        skipped += tail
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(tail.len());
        self.at += skipped;
    }

    fn escape(&mut self) -> Option<()> {
        self.at += 1;
        match self.peek()? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.at += 1;
                Some(())
            }
            b'u' => {
                let hex = self.bytes.get(self.at + 1..self.at + 5)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let unit = u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                // A surrogate must be paired to become a `String`: the serde path judges.
                if (0xD800..=0xDFFF).contains(&unit) {
                    return None;
                }
                self.at += 5;
                Some(())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Envelope, EnvelopeError};

    const HEAD: &str =
        r#""type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1"#;

    /// Both paths give the same result, and it is valid exactly when
    /// serde_json parses the body into a `Value`.
    fn assert_agree(body: &str) {
        let fast = Envelope::parse_unverified(body.as_bytes());
        let serde = Envelope::parse_with_serde(body.as_bytes());
        assert_eq!(fast, serde, "{body}");
        let json = serde_json::from_str::<serde_json::Value>(body).is_ok();
        assert_eq!(
            json,
            !matches!(fast, Err(EnvelopeError::NotJson(_))),
            "{body}"
        );
    }

    /// Values where serde_json's verdict turns on a detail: numbers at the edge
    /// of an f64, escapes of surrogates, literals, separators.
    fn edge_values() -> Vec<String> {
        let mut values: Vec<String> = [
            "0",
            "-0",
            "1.5",
            "-12.25",
            "01",
            "-01",
            "1.",
            ".5",
            "-",
            "--1",
            "+1",
            "1e5",
            "1E+5",
            "1e-400",
            "1e400",
            "1E400",
            "0e400",
            "1.7976931348623157e308",
            "1.8e308",
            "2.5e-5",
            r#""\u0041""#,
            r#""\u00e9\u003cp\u003e""#,
            r#""\ud83d\ude00""#,
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800x""#,
            r#""\ud800\u0041""#,
            r#""\x""#,
            r#""\u12""#,
            r#""\u+041""#,
            r#""\uzzzz""#,
            "\"a\tb\"",
            "\"a\u{1f}b\"",
            "\"\u{7f}\"",
            r#""\/\b\f\n\r\t\"\\""#,
            "\"é 👋 שלום\"",
            "true",
            "false",
            "null",
            "tru",
            "nul",
            "nulll",
            "True",
            "[]",
            "{}",
            "[1,]",
            "[,1]",
            r#"{"a":1,}"#,
            "[1 2]",
            r#"{"a" 1}"#,
            r#"{"a":1 "b":2}"#,
            r#"{1:2}"#,
            " [ 1 , { \"a\" : [ ] } ]\t",
            "\r\n{\n\"a\"\n:\n1\n}\n",
            r#""unterminated"#,
            "[",
            r#"{"typ\u0065":"x"}"#,
            r#"{"a":1,"a":2}"#,
        ]
        .iter()
        .map(|v| (*v).to_owned())
        .collect();
        for digits in [299, 300, 301, 308, 309, 400] {
            values.push("9".repeat(digits));
            values.push(format!("-{}.5", "9".repeat(digits)));
        }
        for depth in [98, 99, 100, 101, 125, 126, 127, 128, 129] {
            values.push(format!("{}1{}", "[".repeat(depth), "]".repeat(depth)));
            values.push(format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth)));
        }
        values
    }

    #[test]
    fn both_paths_agree_on_edge_values_wherever_they_stand() {
        for value in edge_values() {
            for body in [
                format!(r#"{{{HEAD},"data":{{"item":{{"x":{value}}}}}}}"#),
                format!(r#"{{{HEAD},"data":{{"item":{{"contact":{{"id":"c","x":{value}}}}}}}}}"#),
                format!(r#"{{{HEAD},"data":{{"item":{{}},"x":{value}}}}}"#),
                format!(r#"{{{HEAD},"links":{value},"data":{{"item":{{}}}}}}"#),
                format!(
                    r#"{{"type":"notification_event","topic":{value},"id":"n","app_id":"a","created_at":1,"data":{{"item":{{}}}}}}"#
                ),
                format!(
                    r#"{{{HEAD},"delivery_attempts":{value},"data":{{"item":{{"id":{value},"type":{value}}}}}}}"#
                ),
                format!(r#"{{{HEAD},"data":{{"item":{value}}}}}"#),
                format!(r#"{{{HEAD},"data":{value}}}"#),
                format!(r#"{{{HEAD},"data":{{"item":{{}}}}}} {value}"#),
                value.clone(),
            ] {
                assert_agree(&body);
            }
        }
    }

    #[test]
    fn both_paths_agree_on_duplicates_escaped_keys_and_wrappers() {
        for body in [
            format!(r#"{{{HEAD},"topic":"u","data":{{"item":{{}}}}}}"#),
            format!(r#"{{{HEAD},"data":{{"item":{{}},"item":{{}}}}}}"#),
            format!(r#"{{{HEAD},"data":{{"item":{{}}}},"data":{{"item":{{}}}}}}"#),
            format!(r#"{{{HEAD},"delivery_attempts":1,"delivery_attempts":2,"data":{{"item":{{}}}}}}"#),
            format!(r#"{{{HEAD},"data":{{"item":{{"type":"a","type":"b","id":1,"id":"2"}}}}}}"#),
            format!(r#"{{{HEAD},"t\u0079pe":"x","data":{{"item":{{}}}}}}"#),
            format!(r#"{{{HEAD},"data":{{"it\u0065m":{{}},"item":{{}}}}}}"#),
            format!(r#"{{{HEAD},"data":{{"item":{{"ticket":{{"id":"1"}},"ticket":5,"contact":{{"id":7,"id":"8"}}}}}}}}"#),
            format!(r#"{{{HEAD},"data":{{"item":{{"company":[{{"id":"1"}}],"conversation":{{"x":{{"id":"no"}}}}}}}}}}"#),
            r#"{"type":"notification_event","topic":"ping","id":null,"app_id":"a","created_at":1,"data":{"item":{}}}"#.to_owned(),
            r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":12345678901234567890,"data":{"item":{}}}"#.to_owned(),
            r#"{"type":"notification_\u0065vent","topic":"t\"","id":"n","app_id":"a","created_at":-1,"data":{"item":{}}}"#.to_owned(),
            r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":-0,"data":{"item":{"id":-0}}}"#.to_owned(),
            r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":-9223372036854775808,"delivery_attempts":18446744073709551615,"data":{"item":{"id":-9223372036854775809}}}"#.to_owned(),
            r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":9223372036854775808,"data":{"item":{}}}"#.to_owned(),
            r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1.0,"delivery_attempts":-1,"data":{"item":{"id":18446744073709551616}}}"#.to_owned(),
        ] {
            assert_agree(&body);
        }
    }

    #[test]
    fn plain_bodies_take_the_fast_path() {
        for body in [
            format!(
                r#"{{{HEAD},"data":{{"item":{{"type":"conversation","id":"1","body":"\u003cp\u003eHi 👋\u003c/p\u003e","n":[1,-2.5,0,true,false,null]}}}}}}"#
            ),
            format!(
                "{{\n  {HEAD},\n  \"data\": {{ \"item\": {{ \"contact\": {{ \"id\": 42 }} }} }}\n}}\n"
            ),
            format!(
                r#"{{{HEAD},"data":{{"item":{{"x":{}1{}}}}}}}"#,
                "[".repeat(95),
                "]".repeat(95)
            ),
        ] {
            assert!(scan(&body).is_some(), "{body}");
            assert_agree(&body);
            assert!(
                Envelope::parse_unverified(body.as_bytes()).is_ok(),
                "{body}"
            );
        }
    }

    #[test]
    fn what_only_serde_can_judge_is_left_to_it() {
        for value in [
            "1e5",
            r#""\ud83d\ude00""#,
            &"9".repeat(301),
            &format!("{}1{}", "[".repeat(100), "]".repeat(100)),
        ] {
            let body = format!(r#"{{{HEAD},"data":{{"item":{{"x":{value}}}}}}}"#);
            assert!(scan(&body).is_none(), "{body}");
        }
        let escaped_key = format!(r#"{{{HEAD},"t\u0079pe":"x","data":{{"item":{{}}}}}}"#);
        assert!(scan(&escaped_key).is_none());
    }
}
