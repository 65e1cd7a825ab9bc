//! Following a room over Server-Sent Events: `GET …/sse`, one long `text/event-stream`.
//!
//! ```text
//! GET /api/rooms/{id}/sse[?token=HEX]      Last-Event-ID: <replica tick>   (to resume)
//! 200 text/event-stream
//! retry: 2000
//! event: welcome   data: base64(ServerMsg::Welcome)
//! id: <tick>       event: frame   data: base64(ServerMsg::Frame)      …one per send
//! : keep-alive                                                         (comments, ignored)
//! event: close     data: base64(ServerMsg::Close)                      (then the stream ends)
//! ```
//!
//! Every event's data is decoded the same way, as a base64 `ServerMsg`, whatever its type, so
//! new kinds of message (chat) need nothing here. [`parser`] turns bytes into events; the rest
//! (`inbound`) is what every transport does with a message. Resuming uses the
//! `Last-Event-ID` header, as a browser's `EventSource` does.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use game_core::codec::decode_server;

use crate::endpoint::{Cursor, room_endpoint};
use crate::error::{ClientError, FramingError};
use crate::http::{Http, handshake_step};
use crate::inbound::Inbound;
use crate::options::{ConnectOptions, Welcome};
use crate::raw_http::RawBody;
use crate::sink::FrameSink;
use crate::stats::Stats;
use crate::ws::Event;

pub mod parser;

pub use parser::{MAX_EVENT_DATA, SseEvent, SseParser};

/// A room followed over SSE: yields [`Event`]s and keeps the caller's replica verified.
#[derive(Debug)]
pub struct SseFollower {
    body: RawBody,
    parser: SseParser,
    /// The last message's bytes, decoded from its event's base64; kept to reuse its memory.
    message: Vec<u8>,
    inbound: Inbound,
}

impl SseFollower {
    /// Opens the stream with `cursor` (its `since` goes in `Last-Event-ID`) and reads up to the
    /// `Welcome`. The caller bounds it in time.
    pub(crate) async fn open(
        http: Http,
        opts: &ConnectOptions,
        cursor: Cursor,
        inbound: Inbound,
    ) -> Result<(Welcome, Self), ClientError> {
        let url = room_endpoint(
            opts.room_url(),
            "sse",
            &Cursor {
                since: None,
                ..cursor
            },
        );
        let resume_id = cursor.since.map(|tick| tick.to_string());
        let headers: Vec<(&str, &str)> = resume_id
            .iter()
            .map(|id| ("Last-Event-ID", id.as_str()))
            .collect();
        let body = RawBody::open(
            &http,
            &url,
            "text/event-stream",
            &headers,
            opts.read_timeout,
        )
        .await?;
        let mut this = Self {
            body,
            parser: SseParser::new(),
            message: Vec::new(),
            inbound,
        };
        loop {
            this.next_message().await?;
            if let Some(welcome) = handshake_step(&decode_server(&this.message)?)? {
                return Ok((welcome, this));
            }
        }
    }

    /// The next event; the stream may be silent for at most `read_timeout`. Frames are
    /// applied to `replica` and verified; `stats` counts them. A `close` event is
    /// [`ClientError::Closed`] (and so is every later call); the stream ending without one is
    /// [`ClientError::ConnectionLost`].
    ///
    /// Cancel-safe: it awaits only the body's next chunk, and keeps what it parsed.
    pub async fn next_event<S: FrameSink + ?Sized>(
        &mut self,
        replica: &mut S,
        stats: &mut Stats,
    ) -> Result<Event, ClientError> {
        loop {
            self.inbound.check_open()?;
            self.next_message().await?;
            if let Some(event) = self.inbound.handle(&self.message, replica, stats)? {
                return Ok(event);
            }
        }
    }

    /// The reconnect delay the server asked for (`retry:`), if any.
    pub fn retry(&self) -> Option<Duration> {
        self.parser.retry()
    }

    /// Reads the next server message on the stream into `message`.
    async fn next_message(&mut self) -> Result<(), ClientError> {
        loop {
            if let Some(event) = self.parser.next_event()? {
                return Ok(decode_data_into(&event.data, &mut self.message)?);
            }
            let chunk = self.body.next_chunk().await?;
            self.parser.feed(chunk);
        }
    }
}

/// An event's data as message bytes: base64, possibly split over several `data:` lines.
pub fn decode_data(data: &str) -> Result<Vec<u8>, FramingError> {
    let mut bytes = Vec::new();
    decode_data_into(data, &mut bytes)?;
    Ok(bytes)
}

/// [`decode_data`] into `out` (cleared first), reusing its memory.
fn decode_data_into(data: &str, out: &mut Vec<u8>) -> Result<(), FramingError> {
    out.clear();
    if data.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: Vec<u8> = data.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        STANDARD.decode_vec(compact, out)?;
    } else {
        STANDARD.decode_vec(data, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use game_core::codec::encode_server;
    use game_core::protocol::ServerMsg;

    #[test]
    fn data_is_base64_of_a_server_message() -> Result<(), FramingError> {
        let close = ServerMsg::Close {
            code: 1001,
            reason: "the server is shutting down".into(),
        };
        let text = STANDARD.encode(encode_server(&close));
        let bytes = decode_data(&text)?;
        assert_eq!(decode_server(&bytes), Ok(close));
        // Split over lines (joined with \n by the parser) it is the same.
        let (a, b) = text.split_at(10);
        assert_eq!(decode_data(&format!("{a}\n{b}"))?, bytes);
        assert!(matches!(
            decode_data("not base64!"),
            Err(FramingError::Base64(_))
        ));
        Ok(())
    }
}
