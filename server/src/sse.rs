//! Server-Sent Events: `GET /api/rooms/{id}/sse`.
//!
//! ```text
//! retry: 2000                         reconnect hint for EventSource
//! event: welcome / data: <base64 ServerMsg::Welcome>
//! event: chat / data: <base64 ServerMsg::Chat>                    before the frame it came with
//! id: <tick> / event: frame / data: <base64 ServerMsg::Frame>     one per send
//! : keep-alive                        every sse_keepalive_secs
//! event: close / data: <base64 ServerMsg::Close>                  then the response ends
//! ```
//!
//! With `?format=json` every `data:` is the JSON rendering instead. `Last-Event-ID` (sent by
//! browsers on reconnect) or `?since=` resumes from a tick.
//!
//! [`events`] renders a follower's stream as the bytes of the event stream — one write per send,
//! chat lines and frame together, keep-alive comments when nothing else was written. A
//! spectator's frame event is the same bytes for every spectator on the shared path and is
//! built once per send. The axum handler [`sse`] serves it through hyper; most requests never
//! get there: the accept loop answers a complete `GET …/sse` head on the socket itself
//! ([`crate::direct`]), and hands binary spectators to their room's shared writer
//! ([`crate::hub`]).

use crate::App;
use crate::api::AppError;
use crate::fanout::{ChatLine, Payload, Published};
use crate::follow::{self, Chunk, FollowQuery, Live, Next};
use crate::metrics::Transport;
use crate::render::{self, Format};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use game_core::protocol::ServerMsg;
use game_core::{NetId, Snapshot};
use std::time::Duration;

/// The response head fields of an event stream.
pub const HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
];

/// `GET /api/rooms/{id}/sse`.
pub async fn sse(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<FollowQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("?"));
    let live = open(&app, &id, &q, last_event_id)?;
    let body = Body::from_stream(events(live).map(Ok::<_, std::convert::Infallible>));
    let mut response = body.into_response();
    for (name, value) in HEADERS {
        response
            .headers_mut()
            .insert(name, header::HeaderValue::from_static(value));
    }
    Ok(response)
}

/// Opens a follower for an SSE request: the cursor from `Last-Event-ID` or `?since=`.
pub fn open(
    app: &App,
    id: &str,
    q: &FollowQuery,
    last_event_id: Option<&str>,
) -> Result<Live, AppError> {
    let since = match last_event_id.or(q.since.as_deref()) {
        Some(v) => Some(follow::parse_cursor(v)?),
        None => None,
    };
    follow::open_live(app, id, q, since, Transport::Sse)
}

/// A comment that keeps an idle stream open through proxies.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// The event stream of `live`: `retry:` and the welcome, then one chunk per send (its chat
/// lines and its frame), keep-alive comments in quiet spells, and the close event last.
pub fn events(live: Live) -> impl Stream<Item = Bytes> + Send {
    let keepalive = Duration::from_secs(live.app.cfg.sse_keepalive_secs);
    let first = first(&live);
    follow::messages(
        live,
        first,
        crate::direct::Kind::Sse,
        Some((keepalive, KEEPALIVE)),
    )
}

/// What a stream starts with: the `retry:` hint and the welcome.
pub fn first(live: &Live) -> Bytes {
    let welcome = render::welcome(live.opened.follower.room(), live.opened.ship.unwrap_or(0));
    let format = live.opened.format;
    let mut first = BytesMut::new();
    first.put_slice(format!("retry: {}\n", live.app.cfg.sse_retry_ms).as_bytes());
    event(
        &mut first,
        None,
        "welcome",
        &data(&render::message(&welcome, format), format),
    );
    first.freeze()
}

/// One send's events for a client in `format` (`ship`: a player's, for its ack) — chat lines,
/// then the frame — or the close event that ends the stream.
pub fn render(format: Format, ship: Option<NetId>, next: Next) -> Chunk {
    Chunk::of(next, ship, &Events(format))
}

/// SSE's pieces: events, their data base64 (binary) or JSON.
struct Events(Format);

impl follow::Pieces for Events {
    fn close(&self, code: u16, reason: String) -> Bytes {
        let msg = render::message(&ServerMsg::Close { code, reason }, self.0);
        let mut out = BytesMut::new();
        event(&mut out, None, "close", &data(&msg, self.0));
        out.freeze()
    }

    fn frame(
        &self,
        published: &Published,
        payload: &Payload,
        from: Option<&Snapshot>,
        ack: u32,
    ) -> Bytes {
        match self.0 {
            // For spectators on the shared path the whole event is built once per send.
            Format::Binary => published.frame_sse(payload, ack),
            Format::Json => {
                let json = render::frame(published, payload, from, ack, self.0);
                let mut out = BytesMut::new();
                event(&mut out, Some(published.tick), "frame", &json);
                out.freeze()
            }
        }
    }

    /// Chat events carry no `id:`, so Last-Event-ID stays the last frame's tick.
    fn chat(&self, line: &ChatLine) -> Bytes {
        let mut out = BytesMut::new();
        event(
            &mut out,
            None,
            "chat",
            &data(&render::chat(line, self.0), self.0),
        );
        out.freeze()
    }
}

/// A message as `data:` text: base64 for the binary format, as is for JSON (one line).
fn data(msg: &Bytes, format: Format) -> Bytes {
    match format {
        Format::Binary => Bytes::from(STANDARD.encode(msg)),
        Format::Json => msg.clone(),
    }
}

/// Appends one event: `id:` (if any), `event:`, one `data:` line. `data` must hold no newline
/// (base64 and serde_json's compact output never do).
pub fn event(out: &mut BytesMut, id: Option<u32>, name: &str, data: &[u8]) {
    if let Some(id) = id {
        out.put_slice(format!("id: {id}\n").as_bytes());
    }
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_slice(b"\ndata: ");
    out.put_slice(data);
    out.put_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_one_data_line_each() {
        let mut out = BytesMut::new();
        event(&mut out, Some(7), "frame", b"QUJD");
        event(&mut out, None, "chat", b"{\"a\":1}");
        assert_eq!(
            &out[..],
            b"id: 7\nevent: frame\ndata: QUJD\n\nevent: chat\ndata: {\"a\":1}\n\n"
        );
    }
}
