//! Long-lived HTTP streams served on the socket itself: SSE (`GET …/sse`) and HTTP streaming
//! (`GET …/stream`).
//!
//! The accept loop calls [`direct`] first on every connection. It peeks at the first request:
//! a complete `GET /api/rooms/{id}/sse` or `…/stream` head is answered here, on the socket,
//! with `connection: close` and the body ending with the connection — without hyper's
//! per-connection buffers (8 KiB to read, 8 KiB to write), which were most of a spectator's
//! memory. Anything else — another path, a head that arrives in pieces, a body — goes to hyper
//! untouched (the head is only peeked), where the same streams are served chunked. The checks
//! are the router's (`Origin`, then the handler's) and errors are the same JSON answers.
//!
//! [`serve_alone`] serves one client from its own follower; a spectator in the binary format
//! moves on to its room's shared writer ([`crate::hub`]) once it holds the latest send, and
//! comes back here when its socket cannot keep up.

use crate::App;
use crate::api::AppError;
use crate::follow::{self, Chunk, FollowQuery, Live, Next};
use crate::hub::Member;
use crate::metrics::{Rejection, Transport};
use crate::render::Format;
use crate::serve::Counted;
use crate::{sse, stream};
use axum::extract::Query;
use bytes::{BufMut, BytesMut};
use game_core::NetId;
use std::io::ErrorKind;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Which stream a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Server-Sent Events (`crate::sse`).
    Sse,
    /// Length-prefixed records or NDJSON (`crate::stream`).
    Stream,
}

impl Kind {
    /// Its transport, for the counters.
    pub fn transport(self) -> Transport {
        match self {
            Self::Sse => Transport::Sse,
            Self::Stream => Transport::Stream,
        }
    }

    /// The response head fields.
    pub fn headers(self, format: Format) -> [(&'static str, &'static str); 3] {
        match self {
            Self::Sse => sse::HEADERS,
            Self::Stream => [
                ("content-type", stream::content_type(format)),
                ("cache-control", "no-cache"),
                ("x-accel-buffering", "no"),
            ],
        }
    }

    /// What the body starts with.
    pub fn first(self, live: &Live) -> bytes::Bytes {
        match self {
            Self::Sse => sse::first(live),
            Self::Stream => stream::first(live),
        }
    }

    /// One send (or the close) for a client in `format`.
    pub fn render(self, format: Format, ship: Option<NetId>, next: Next) -> Chunk {
        match self {
            Self::Sse => sse::render(format, ship, next),
            Self::Stream => stream::render(format, ship, next),
        }
    }

    /// What keeps a quiet stream open, if this kind has one.
    pub fn keepalive(self) -> Option<&'static [u8]> {
        match self {
            Self::Sse => Some(sse::KEEPALIVE),
            Self::Stream => None,
        }
    }
}

/// Largest request head [`direct`] looks at; longer ones go to hyper.
const HEAD_PEEK: usize = 2048;

/// Serves `conn` if its first request is a complete `GET /api/rooms/{id}/sse` or `…/stream`
/// head (see the module docs); otherwise gives the connection back untouched. Called by the
/// accept loop before hyper, within `header_read_timeout_secs` for the first bytes.
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
            let kind = head.kind;
            let mut start = BytesMut::from("HTTP/1.1 200 OK\r\n");
            for (name, value) in kind.headers(live.opened.format) {
                start.put_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            // The body ends when the connection does.
            start.put_slice(b"connection: close\r\n\r\n");
            start.put_slice(&kind.first(&live));
            let limit = Duration::from_secs(app.cfg.write_timeout_secs);
            match write_within(&conn.tcp, &start, limit).await {
                Ok(()) => serve_alone(app, kind, conn, live).await,
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
    kind: Kind,
    room: String,
    /// `path?query`, for the query string.
    target: String,
    last_event_id: Option<String>,
    origin: Option<String>,
    host: Option<String>,
}

impl Head {
    /// A complete `GET /api/rooms/{id}/sse[?…]` or `…/stream[?…]` head without a body; `None`
    /// for anything else.
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
        let rest = path.strip_prefix("/api/rooms/")?;
        let (room, kind) = if let Some(room) = rest.strip_suffix("/sse") {
            (room, Kind::Sse)
        } else {
            (rest.strip_suffix("/stream")?, Kind::Stream)
        };
        if room.is_empty() || room.contains('/') || room.contains('%') {
            return None;
        }
        let mut head = Self {
            len,
            kind,
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
        match self.kind {
            Kind::Sse => sse::open(app, &self.room, &q, self.last_event_id.as_deref()),
            Kind::Stream => stream::open(app, &self.room, &q),
        }
    }
}

/// Serves `live` on `conn` until the stream ends, the client goes away, or a write takes longer
/// than `write_timeout_secs`: each send's chunk, keep-alives in quiet spells (SSE), the close
/// last. A spectator in the binary format is handed to its room's [`crate::hub`] as soon as it
/// holds the room's latest send and a shard is at that send too.
pub async fn serve_alone(app: &App, kind: Kind, mut conn: Counted, mut live: Live) {
    let limit = Duration::from_secs(app.cfg.write_timeout_secs);
    let keepalive = Duration::from_secs(app.cfg.sse_keepalive_secs);
    let shared = live.opened.format == Format::Binary && live.opened.ship.is_none();
    let quiet = |now: Instant| kind.keepalive().map(|_| now + keepalive);
    let mut quiet_until = quiet(Instant::now());
    let mut sink = [0u8; 64];
    loop {
        tokio::select! {
            next = live.opened.follower.next(&app.shutdown) => {
                let chunk = kind.render(live.opened.format, live.opened.ship, next);
                chunk.count(app, kind.transport());
                if let Err(e) = write_within(&conn.tcp, &chunk.bytes, limit).await {
                    count_write_error(app, &e);
                    return;
                }
                if chunk.last {
                    finish(&conn.tcp).await;
                    return;
                }
                // Writes that never block and sends that are always ready would never yield.
                tokio::task::consume_budget().await;
                quiet_until = quiet(Instant::now());
                if shared
                    && !live.opened.follower.ready()
                    && let Some(tick) = live.opened.follower.cursor()
                {
                    let room = live.opened.follower.room().clone();
                    let (follower, held) = live.detach();
                    match room.hub().join(app, &room, kind, tick, Member { conn, held }) {
                        Ok(()) => return,
                        Err(m) => {
                            conn = m.conn;
                            live = m.held.attach(follower);
                        }
                    }
                }
            }
            _ = follow::sleep_until_some(quiet_until) => {
                quiet_until = quiet(Instant::now());
                let comment = kind.keepalive().unwrap_or_default();
                if let Err(e) = write_within(&conn.tcp, comment, limit).await {
                    count_write_error(app, &e);
                    return;
                }
                app.metrics.bytes_out(kind.transport(), comment.len());
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
        assert_eq!(head.kind, Kind::Sse);
        assert_eq!(head.last_event_id.as_deref(), Some("42"));
        assert_eq!(head.target, "/api/rooms/default/sse?format=json");
        for not_ours in [
            &b"GET /api/rooms/default/sse HTTP/1.1\r\nHost: x\r\n"[..], // incomplete
            b"GET /api/rooms/default/poll HTTP/1.1\r\n\r\n",
            b"GET /api/rooms/default/stream/x HTTP/1.1\r\n\r\n",
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
        let stream = b"GET /api/rooms/r1/stream?since=4 HTTP/1.1\r\nHost: x\r\n\r\n";
        let head = Head::parse(stream).unwrap_or_else(|| panic!("a stream head"));
        assert_eq!((head.kind, head.room.as_str()), (Kind::Stream, "r1"));
    }
}
