//! HTTP streaming: `GET /api/rooms/{id}/stream`, one long chunked response.
//!
//! Binary: records of `u32 LE length ‖ ServerMsg` — a `Welcome`, a `Frame` per send (after any
//! `Chat` lines that came with it), a `Close` before the end — each its own chunk, written as
//! soon as it exists. `?format=json`: one JSON object per line (NDJSON). `?since=T` resumes from
//! a tick.
//!
//! The axum handler [`stream`] serves it through hyper (chunked); most requests never get
//! there: the accept loop answers a complete `GET …/stream` head on the socket itself, the body
//! ending with the connection ([`crate::direct`]), and hands binary spectators to their room's
//! shared writer ([`crate::hub`]).

use crate::App;
use crate::api::AppError;
use crate::fanout::{ChatLine, Payload, Published};
use crate::follow::{self, Chunk, FollowQuery, Live, Next};
use crate::metrics::Transport;
use crate::render::{self, Format};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use game_core::protocol::ServerMsg;
use game_core::{NetId, Snapshot};

/// `GET /api/rooms/{id}/stream`.
pub async fn stream(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<FollowQuery>,
) -> Result<Response, AppError> {
    let live = open(&app, &id, &q)?;
    let first = first(&live);
    let content_type = content_type(live.opened.format);
    let chunks = follow::messages(live, first, crate::direct::Kind::Stream, None);
    let body = Body::from_stream(chunks.map(Ok::<_, std::convert::Infallible>));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    Ok((headers, body).into_response())
}

/// Opens a follower for a streaming request: the cursor from `?since=`.
pub fn open(app: &App, id: &str, q: &FollowQuery) -> Result<Live, AppError> {
    let since = q.since.as_deref().map(follow::parse_cursor).transpose()?;
    follow::open_live(app, id, q, since, Transport::Stream)
}

/// The body's type in `format`.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Binary => "application/octet-stream",
        Format::Json => "application/x-ndjson",
    }
}

/// What a stream starts with: the welcome.
pub fn first(live: &Live) -> Bytes {
    let opened = &live.opened;
    let welcome = render::welcome(opened.follower.room(), opened.ship.unwrap_or(0));
    chunk(&render::message(&welcome, opened.format), opened.format)
}

/// One send's records for a client in `format` (`ship`: a player's, for its ack) — chat lines,
/// then the frame — or the close record that ends the stream.
pub fn render(format: Format, ship: Option<NetId>, next: Next) -> Chunk {
    Chunk::of(next, ship, &Records(format))
}

/// Streaming's pieces: length-prefixed records (binary) or JSON lines.
struct Records(Format);

impl follow::Pieces for Records {
    fn close(&self, code: u16, reason: String) -> Bytes {
        chunk(
            &render::message(&ServerMsg::Close { code, reason }, self.0),
            self.0,
        )
    }

    fn frame(
        &self,
        published: &Published,
        payload: &Payload,
        from: Option<&Snapshot>,
        ack: u32,
    ) -> Bytes {
        chunk(
            &render::frame(published, payload, from, ack, self.0),
            self.0,
        )
    }

    fn chat(&self, line: &ChatLine) -> Bytes {
        chunk(&render::chat(line, self.0), self.0)
    }
}

/// One message as its chunk: a length-prefixed record, or a JSON line.
pub fn chunk(msg: &Bytes, format: Format) -> Bytes {
    match format {
        Format::Binary => render::record(msg),
        Format::Json => {
            let mut line = Vec::with_capacity(msg.len() + 1);
            line.extend_from_slice(msg);
            line.push(b'\n');
            Bytes::from(line)
        }
    }
}
