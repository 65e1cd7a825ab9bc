//! A bounded, incremental `text/event-stream` parser (the WHATWG "event stream interpretation").
//!
//! Bytes go in as they arrive ([`SseParser::feed`]), with lines and events split anywhere
//! between chunks; whole events come out ([`SseParser::next_event`]). Memory is bounded: the
//! parser holds the unread rest of one chunk, one partial line and one event's data, and refuses
//! a line or an event's data over its limit with a [`FramingError`] instead of growing.
//!
//! ```text
//! stream  = [BOM] *line
//! line    = (":" comment | field [":" [" "] value] | "") (CRLF | LF | CR)
//! field   = "event" (the type; default "message") | "data" (appended, joined with LF)
//!         | "id" (the last event id; kept across events) | "retry" (ms, digits only)
//!         | anything else (ignored)
//! an empty line dispatches the event, unless no data line came since the last one
//! ```

use std::borrow::Cow;
use std::time::Duration;

use bytes::{Buf, Bytes};

use crate::error::FramingError;

/// The default bound on one event's data: a frame is at most
/// [`SERVER_MSG_LIMIT`](game_core::codec::SERVER_MSG_LIMIT) (4 MiB) of bytes, about 5.6 MiB of
/// base64.
pub const MAX_EVENT_DATA: usize = 8 << 20;
/// What a line may hold beyond the data bound: the field name and separator.
const LINE_SLACK: usize = 64;

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` type; `message` when none was given.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` seen on the stream so far (empty if none): the `Last-Event-ID` to
    /// reconnect with.
    pub last_event_id: String,
}

/// The parser's state between chunks. See the module docs.
#[derive(Debug)]
pub struct SseParser {
    /// The unread rest of the last chunk.
    input: Bytes,
    /// The current line, not yet terminated.
    line: Vec<u8>,
    /// The last line ended with CR: an LF at the start of the next input belongs to it.
    after_cr: bool,
    /// Whether a possible byte-order mark at the very start has been dealt with.
    started: bool,
    event: String,
    data: String,
    last_event_id: String,
    retry: Option<Duration>,
    max_data: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser that allows [`MAX_EVENT_DATA`] bytes of data per event.
    pub fn new() -> Self {
        Self::with_limit(MAX_EVENT_DATA)
    }

    /// A parser that allows `max_data` bytes of data per event (and lines that long plus a
    /// field name).
    pub fn with_limit(max_data: usize) -> Self {
        Self {
            input: Bytes::new(),
            line: Vec::new(),
            after_cr: false,
            started: false,
            event: String::new(),
            data: String::new(),
            last_event_id: String::new(),
            retry: None,
            max_data,
        }
    }

    /// Adds bytes from the stream. Call it once [`SseParser::next_event`] has returned
    /// `Ok(None)` (everything fed so far is consumed), so at most one chunk is held.
    pub fn feed(&mut self, chunk: Bytes) {
        if self.input.is_empty() {
            self.input = chunk;
        } else {
            // Fed early: keep it correct, at the cost of a copy.
            let mut joined = Vec::with_capacity(self.input.len() + chunk.len());
            joined.extend_from_slice(&self.input);
            joined.extend_from_slice(&chunk);
            self.input = joined.into();
        }
    }

    /// The next whole event from what was fed, or `None` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, FramingError> {
        let max_line = self.max_data + LINE_SLACK;
        while !self.input.is_empty() {
            if std::mem::take(&mut self.after_cr) && self.input.first() == Some(&b'\n') {
                self.input.advance(1);
                continue;
            }
            let Some(end) = self.input.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if self.line.len() + self.input.len() > max_line {
                    return Err(FramingError::SseLineTooLong { limit: max_line });
                }
                self.line.extend_from_slice(&self.input);
                self.input.clear();
                break;
            };
            if self.line.len() + end > max_line {
                return Err(FramingError::SseLineTooLong { limit: max_line });
            }
            self.line.extend_from_slice(&self.input[..end]);
            self.after_cr = self.input[end] == b'\r';
            self.input.advance(end + 1);
            let line = std::mem::take(&mut self.line);
            let event = self.process(&line);
            // Keep the buffer's capacity for the next line.
            self.line = line;
            self.line.clear();
            if let Some(event) = event? {
                return Ok(Some(event));
            }
        }
        // Let go of the consumed chunk, so the reader can reuse its memory for the next one.
        self.input = Bytes::new();
        Ok(None)
    }

    /// The last `retry:` the server asked for: how long to wait before reconnecting.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// The last `id:` seen (empty if none).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Interprets one line (without its terminator).
    fn process(&mut self, mut line: &[u8]) -> Result<Option<SseEvent>, FramingError> {
        if !std::mem::replace(&mut self.started, true) {
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.first() == Some(&b':') {
            return Ok(None);
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => self.event = text(value).into_owned(),
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_data {
                    return Err(FramingError::SseEventTooBig {
                        limit: self.max_data,
                    });
                }
                self.data.push_str(&text(value));
                self.data.push('\n');
            }
            b"id" if !value.contains(&0) => self.last_event_id = text(value).into_owned(),
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // More digits than a u64 holds: not a time anyone means; ignore it.
                if let Ok(ms) = text(value).parse::<u64>() {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// An empty line: hands out the event built so far, if it has data.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        Some(SseEvent {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
            last_event_id: self.last_event_id.clone(),
        })
    }
}

/// The stream is UTF-8; invalid bytes become U+FFFD, as in browsers.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    // `from_utf8` checks ASCII (all base64 is) a word at a time; the lossy scan does not.
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(event: &str, data: &str, id: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            last_event_id: id.into(),
        }
    }

    /// Feeds `chunks` one after the other, draining events between them.
    fn parse(parser: &mut SseParser, chunks: &[&[u8]]) -> Result<Vec<SseEvent>, FramingError> {
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(Bytes::copy_from_slice(chunk));
            while let Some(e) = parser.next_event()? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Once a chunk is consumed the parser holds no reference to it, so the reader can reuse
    /// its memory (see `crate::raw_http`).
    #[test]
    fn a_consumed_chunk_is_let_go() -> Result<(), FramingError> {
        let mut parser = SseParser::new();
        let chunk = Bytes::from(b"data: a\n\ndata: b".to_vec());
        let kept = chunk.clone();
        parser.feed(chunk);
        assert_eq!(parser.next_event()?.map(|e| e.data), Some("a".into()));
        assert!(!kept.is_unique());
        assert_eq!(parser.next_event()?, None);
        assert!(kept.is_unique());
        Ok(())
    }

    #[test]
    fn the_readme_example() -> Result<(), FramingError> {
        let text = "retry: 2000\nevent: welcome\ndata: AAEH\n\nid: 4242\nevent: frame\n\
                    data: AZIh\n\n: keep-alive\n\nevent: close\ndata: AukH\n\n";
        let mut p = SseParser::new();
        assert_eq!(
            parse(&mut p, &[text.as_bytes()])?,
            [
                ev("welcome", "AAEH", ""),
                ev("frame", "AZIh", "4242"),
                ev("close", "AukH", "4242"),
            ]
        );
        assert_eq!(p.retry(), Some(Duration::from_millis(2000)));
        assert_eq!(p.last_event_id(), "4242");
        Ok(())
    }

    #[test]
    fn fields_per_the_spec() -> Result<(), FramingError> {
        let text = "\u{feff}data:a\ndata\ndata:  b\n\n\
                    event: x\n\n\
                    id\ndata: c\n\n\
                    id: 1\0\nretry: 12x\nretry: 99999999999999999999999\nfoo: bar\ndata: d\n\n\
                    data: e\n";
        let mut p = SseParser::new();
        assert_eq!(
            parse(&mut p, &[text.as_bytes()])?,
            [
                // No space after the colon, an empty value, and only one space stripped.
                ev("message", "a\n\n b", ""),
                // `event: x` with no data dispatches nothing, and the type does not carry on.
                ev("message", "c", ""),
                // An id with NUL and a retry that is not digits (or too long) are ignored.
                ev("message", "d", ""),
            ]
        );
        assert_eq!(p.retry(), None);
        // "data: e" never got its blank line: it is not an event (yet).
        assert_eq!(parse(&mut p, &[b"\r\n"])?, [ev("message", "e", "")]);
        Ok(())
    }

    #[test]
    fn crlf_and_cr_endings_even_split_between_chunks() -> Result<(), FramingError> {
        let mut p = SseParser::new();
        let got = parse(
            &mut p,
            &[
                b"data: a\r",
                b"\n\r",
                b"\ndata: b\r\r",
                b"data: c\r\n",
                b"\r\n",
            ],
        )?;
        assert_eq!(
            got,
            [
                ev("message", "a", ""),
                ev("message", "b", ""),
                ev("message", "c", "")
            ]
        );
        Ok(())
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() -> Result<(), FramingError> {
        let mut p = SseParser::new();
        assert_eq!(
            parse(&mut p, &[b"data: \xff\n\n"])?,
            [ev("message", "\u{fffd}", "")]
        );
        Ok(())
    }

    #[test]
    fn oversized_lines_and_events_are_refused() {
        let mut p = SseParser::with_limit(16);
        assert_eq!(
            parse(&mut p, &[b"data: 0123456789", b"0123456789\n\n"]),
            Err(FramingError::SseEventTooBig { limit: 16 })
        );
        // Two lines that each fit but add up to more than the limit.
        let mut p = SseParser::with_limit(16);
        assert_eq!(
            parse(&mut p, &[b"data: 01234567\ndata: 01234567\n\n"]),
            Err(FramingError::SseEventTooBig { limit: 16 })
        );
        // A line with no end in sight is refused before it is all buffered.
        let mut p = SseParser::with_limit(16);
        let long = vec![b'x'; 100];
        assert_eq!(
            parse(&mut p, &[b": ", &long]),
            Err(FramingError::SseLineTooLong {
                limit: 16 + LINE_SLACK
            })
        );
        assert!(p.line.capacity() < 100);
        // Comments and unknown fields count against the line bound too.
        let mut p = SseParser::with_limit(16);
        assert!(parse(&mut p, &[&long, b"\n"]).is_err());
    }

    #[test]
    fn feeding_before_draining_still_parses_correctly() -> Result<(), FramingError> {
        let mut p = SseParser::new();
        p.feed(Bytes::from_static(b"data: a\n\ndata: "));
        p.feed(Bytes::from_static(b"b\n\n"));
        assert_eq!(p.next_event()?, Some(ev("message", "a", "")));
        assert_eq!(p.next_event()?, Some(ev("message", "b", "")));
        assert_eq!(p.next_event()?, None);
        Ok(())
    }

    fn arb_event() -> impl Strategy<Value = (Option<String>, Vec<String>, Option<u32>)> {
        (
            prop::option::of("[a-z]{1,8}"),
            // Values without line breaks; may start with spaces or colons.
            prop::collection::vec("[ -~é]{0,40}", 1..4),
            prop::option::of(any::<u32>()),
        )
    }

    proptest! {
        /// Events written with any line endings, split at any points, parse the same.
        #[test]
        fn any_split_any_line_ending(
            events in prop::collection::vec(arb_event(), 0..8),
            ending in 0usize..3,
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let eol = ["\n", "\r\n", "\r"][ending];
            let mut text = String::from(": hello");
            text.push_str(eol);
            let mut expected = Vec::new();
            let mut last_id = String::new();
            for (event, lines, id) in &events {
                if let Some(id) = id {
                    text.push_str(&format!("id: {id}{eol}"));
                    last_id = id.to_string();
                }
                if let Some(event) = event {
                    text.push_str(&format!("event: {event}{eol}"));
                }
                for line in lines {
                    text.push_str(&format!("data: {line}{eol}"));
                }
                text.push_str(eol);
                expected.push(ev(
                    event.as_deref().unwrap_or("message"),
                    &lines.join("\n"),
                    &last_id,
                ));
            }
            let bytes = text.as_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            points.push(0);
            points.push(bytes.len());
            points.sort_unstable();
            let chunks: Vec<&[u8]> = points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
            let mut p = SseParser::new();
            prop_assert_eq!(parse(&mut p, &chunks), Ok(expected));
        }
    }
}
