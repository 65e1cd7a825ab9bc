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
//! built once per send. Two ways serve it: the axum handler [`sse`], and [`direct`], which the
//! accept loop tries first: a connection whose first request is a complete `GET …/sse` head is
//! answered on the socket itself, without hyper's per-connection buffers (8 KiB to read, 8 KiB
//! to write), which were most of an SSE spectator's memory. Anything else — another path, a
//! head that arrives in pieces, a body — goes to hyper untouched (the head is only peeked).
//! [`serve_alone`] then serves it; a spectator in the binary format moves on to its room's
//! shared writer ([`crate::hub`]) once it holds the latest send, and comes back here when its
//! socket cannot keep up.

use crate::App;
use crate::api::AppError;
use crate::follow::{self, FollowQuery, Live, Next};
use crate::hub::Member;
use crate::metrics::{Rejection, Transport};
use crate::render::{self, Format};
use crate::serve::Counted;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use game_core::NetId;
use game_core::protocol::ServerMsg;
use std::io::ErrorKind;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The response head fields of an event stream.
const HEADERS: [(&str, &str); 3] = [
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
fn open(
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
    follow::messages(live, first, next_events, Some((keepalive, KEEPALIVE)))
}

/// What a stream starts with: the `retry:` hint and the welcome.
fn first(live: &Live) -> Bytes {
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

fn next_events(live: &mut Live, next: Next) -> (Bytes, bool) {
    let e = render(live.opened.format, live.opened.ship, next);
    e.count(&live.app);
    (e.bytes, e.last)
}

/// What [`render`] makes of a [`Next`].
pub struct Events {
    /// The bytes to write.
    pub bytes: Bytes,
    /// Whether they end the stream (the close event).
    pub last: bool,
    /// Whether they carry a keyframe.
    pub keyframe: bool,
}

impl Events {
    /// Counts them as written to one client.
    pub fn count(&self, app: &App) {
        if self.last {
            app.metrics.bytes_out(Transport::Sse, self.bytes.len());
        } else {
            app.metrics
                .frame_out(Transport::Sse, self.bytes.len(), self.keyframe);
        }
    }
}

/// One send's events for a client in `format` (`ship`: a player's, for its ack) — chat lines,
/// then the frame — or the close event that ends the stream.
pub fn render(format: Format, ship: Option<NetId>, next: Next) -> Events {
    if let Some((code, reason)) = next.close() {
        let msg = render::message(&ServerMsg::Close { code, reason }, format);
        let mut out = BytesMut::new();
        event(&mut out, None, "close", &data(&msg, format));
        return Events {
            bytes: out.freeze(),
            last: true,
            keyframe: false,
        };
    }
    let Next::Frame {
        published,
        payload,
        from,
        chat_from,
    } = next
    else {
        return Events {
            bytes: Bytes::new(),
            last: true,
            keyframe: false,
        };
    };
    let ack = ship.map_or(0, |s| published.ack_for(s));
    let keyframe = payload.base.is_none();
    let frame = match format {
        // For spectators on the shared path the whole event is built once per send.
        Format::Binary => published.frame_sse(&payload, ack),
        Format::Json => {
            let json = render::frame(&published, &payload, from.as_deref(), ack, format);
            let mut out = BytesMut::new();
            event(&mut out, Some(published.tick), "frame", &json);
            out.freeze()
        }
    };
    let chat = &published.chat[chat_from..];
    if chat.is_empty() {
        return Events {
            bytes: frame,
            last: false,
            keyframe,
        };
    }
    // Chat events carry no `id:`, so Last-Event-ID stays the last frame's tick.
    let mut out = BytesMut::new();
    for line in chat {
        event(
            &mut out,
            None,
            "chat",
            &data(&render::chat(line, format), format),
        );
    }
    out.put_slice(&frame);
    Events {
        bytes: out.freeze(),
        last: false,
        keyframe,
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

/// Largest request head [`direct`] looks at; longer ones go to hyper.
const HEAD_PEEK: usize = 2048;

/// Serves `conn` if its first request is a complete `GET /api/rooms/{id}/sse` head (see the
/// module docs); otherwise gives the connection back untouched. Called by the accept loop
/// before hyper, within `header_read_timeout_secs` for the first bytes.
pub async fn direct(mut conn: Counted, app: &App) -> Option<Counted> {
    let wait = Duration::from_secs(app.cfg.header_read_timeout_secs);
    let mut buf = [0u8; HEAD_PEEK];
    // The first bytes, without taking them off the socket.
    let n = tokio::select! {
        _ = app.shutdown.cancelled() => return None,
        r = tokio::time::timeout(wait, conn.tcp.peek(&mut buf)) => match r {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => return None,
            Err(_) => {
                // Not a byte in the whole header timeout: the slowloris answer, as hyper gives.
                app.metrics.reject(Rejection::SlowRequest);
                return None;
            }
        },
    };
    let Some(head) = Head::parse(&buf[..n]) else {
        return Some(conn);
    };
    // Ours: take the head off the socket (it is all there) and answer.
    if conn.tcp.read_exact(&mut buf[..head.len]).await.is_err() {
        return None;
    }
    match head.open(app) {
        Ok(live) => {
            let mut start = BytesMut::from("HTTP/1.1 200 OK\r\n");
            for (name, value) in HEADERS {
                start.put_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            // The body ends when the connection does.
            start.put_slice(b"connection: close\r\n\r\n");
            start.put_slice(&first(&live));
            let limit = Duration::from_secs(app.cfg.write_timeout_secs);
            match write_within(&conn.tcp, &start, limit).await {
                Ok(()) => serve_alone(app, conn, live).await,
                Err(e) => count_write_error(app, &e),
            }
        }
        Err(e) => crate::serve::answer_raw(&mut conn.tcp, e, "").await,
    }
    None
}

/// What [`direct`] needs of a request head.
struct Head {
    /// The head's length in bytes.
    len: usize,
    room: String,
    /// `path?query`, for the query string.
    target: String,
    last_event_id: Option<String>,
    origin: Option<String>,
    host: Option<String>,
}

impl Head {
    /// A complete `GET /api/rooms/{id}/sse[?…]` head without a body; `None` for anything else.
    fn parse(bytes: &[u8]) -> Option<Self> {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut fields);
        let httparse::Status::Complete(len) = req.parse(bytes).ok()? else {
            return None;
        };
        if req.method != Some("GET") {
            return None;
        }
        let target = req.path?;
        let path = target.split('?').next()?;
        let room = path.strip_prefix("/api/rooms/")?.strip_suffix("/sse")?;
        if room.is_empty() || room.contains('/') || room.contains('%') {
            return None;
        }
        let mut head = Self {
            len,
            room: room.to_owned(),
            target: target.to_owned(),
            last_event_id: None,
            origin: None,
            host: None,
        };
        for f in req.headers.iter() {
            let value = || std::str::from_utf8(f.value).ok().map(str::to_owned);
            let name = f.name.to_ascii_lowercase();
            match name.as_str() {
                "last-event-id" => head.last_event_id = Some(value().unwrap_or_else(|| "?".into())),
                "origin" => head.origin = Some(value().unwrap_or_default()),
                "host" => head.host = value(),
                // A body, an upgrade or an expectation: hyper's to handle.
                "content-length" | "transfer-encoding" | "upgrade" | "expect" => return None,
                _ => {}
            }
        }
        Some(head)
    }

    /// The follower this request asks for, or the error answer — the same checks as the
    /// router's (`Origin`, then the handler's).
    fn open(&self, app: &App) -> Result<Live, AppError> {
        crate::api::origin_check(app, self.origin.as_deref(), self.host.as_deref())?;
        let uri: axum::http::Uri = self
            .target
            .parse()
            .map_err(|_| AppError::bad_request("the request target is not a URI"))?;
        let Query(q) = Query::<FollowQuery>::try_from_uri(&uri)
            .map_err(|e| AppError::bad_request(format!("query: {e}")))?;
        open(app, &self.room, &q, self.last_event_id.as_deref())
    }
}

/// Serves `live` on `conn` until the stream ends, the client goes away, or a write takes longer
/// than `write_timeout_secs`: each send's events, keep-alives in quiet spells, the close event
/// last. A spectator in the binary format is handed to its room's [`crate::hub`] as soon as it
/// holds the room's latest send and a shard is at that send too.
pub async fn serve_alone(app: &App, mut conn: Counted, mut live: Live) {
    let limit = Duration::from_secs(app.cfg.write_timeout_secs);
    let keepalive = Duration::from_secs(app.cfg.sse_keepalive_secs);
    let shared = live.opened.format == Format::Binary && live.opened.ship.is_none();
    let mut quiet_until = Instant::now() + keepalive;
    let mut sink = [0u8; 64];
    loop {
        tokio::select! {
            next = live.opened.follower.next(&app.shutdown) => {
                let (bytes, last) = next_events(&mut live, next);
                if let Err(e) = write_within(&conn.tcp, &bytes, limit).await {
                    count_write_error(app, &e);
                    return;
                }
                if last {
                    finish(&conn.tcp).await;
                    return;
                }
                // Writes that never block and sends that are always ready would never yield.
                tokio::task::consume_budget().await;
                quiet_until = Instant::now() + keepalive;
                if shared
                    && !live.opened.follower.ready()
                    && let Some(tick) = live.opened.follower.cursor()
                {
                    let room = live.opened.follower.room().clone();
                    let (follower, held) = live.detach();
                    match room.hub().join(app, &room, tick, Member { conn, held }) {
                        Ok(()) => return,
                        Err(m) => {
                            conn = m.conn;
                            live = m.held.attach(follower);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(quiet_until) => {
                quiet_until = Instant::now() + keepalive;
                if let Err(e) = write_within(&conn.tcp, KEEPALIVE, limit).await {
                    count_write_error(app, &e);
                    return;
                }
                app.metrics.bytes_out(Transport::Sse, KEEPALIVE.len());
            }
            // The client closed (or sent something, which a stream does not take).
            r = conn.tcp.readable() => match r.and_then(|()| conn.tcp.try_read(&mut sink)) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            },
        }
    }
}

/// Ends a stream that has said its last: no more writes, then what the client still sends is
/// read until it closes, for at most a second, so closing does not reset the connection under
/// the last bytes.
pub async fn finish(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Write);
    let drain = async {
        let mut sink = [0u8; 512];
        loop {
            if tcp.readable().await.is_err() {
                return;
            }
            match tcp.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// Counts a failed write: a timeout is a client too slow to read.
pub fn count_write_error(app: &App, e: &std::io::Error) {
    if e.kind() == ErrorKind::TimedOut {
        app.metrics.reject(Rejection::WriteTimeout);
    }
}

/// Writes all of `bytes` to `tcp` within `limit` (a `TimedOut` error past it).
pub async fn write_within(tcp: &TcpStream, bytes: &[u8], limit: Duration) -> std::io::Result<()> {
    let write = async {
        let mut rest = bytes;
        while !rest.is_empty() {
            match tcp.try_write(rest) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => tcp.writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(limit, write).await {
        Ok(r) => r,
        Err(_) => Err(ErrorKind::TimedOut.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_that_are_ours_and_heads_that_are_not() {
        let ok = b"GET /api/rooms/default/sse?format=json HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 42\r\n\r\n";
        let head = Head::parse(ok).unwrap_or_else(|| panic!("an SSE head"));
        assert_eq!((head.len, head.room.as_str()), (ok.len(), "default"));
        assert_eq!(head.last_event_id.as_deref(), Some("42"));
        assert_eq!(head.target, "/api/rooms/default/sse?format=json");
        for not_ours in [
            &b"GET /api/rooms/default/sse HTTP/1.1\r\nHost: x\r\n"[..], // incomplete
            b"GET /api/rooms/default/stream HTTP/1.1\r\n\r\n",
            b"POST /api/rooms/default/sse HTTP/1.1\r\ncontent-length: 0\r\n\r\n",
            b"GET /api/rooms/a/b/sse HTTP/1.1\r\n\r\n",
            b"GET /api/rooms/%2e%2e/sse HTTP/1.1\r\n\r\n",
            b"GET /api/rooms/x/sse HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET /api/rooms/x/sse HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"\x16\x03\x01 not http",
        ] {
            assert!(
                Head::parse(not_ours).is_none(),
                "{:?}",
                String::from_utf8_lossy(not_ours)
            );
        }
    }

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
