//! HTTP streaming: `GET /api/rooms/{id}/stream`, one long chunked response.
//!
//! Binary: records of `u32 LE length ‖ ServerMsg` — a `Welcome`, a `Frame` per send (after any
//! `Chat` lines that came with it), a `Close` before the end — each its own chunk, written as soon as it exists. `?format=json`: one JSON
//! object per line (NDJSON). `?since=T` resumes from a tick.

use crate::App;
use crate::api::AppError;
use crate::follow::{self, FollowQuery, Live, Next};
use crate::metrics::Transport;
use crate::render::{self, Format};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use game_core::protocol::ServerMsg;

/// `GET /api/rooms/{id}/stream`.
pub async fn stream(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<FollowQuery>,
) -> Result<Response, AppError> {
    let since = q.since.as_deref().map(follow::parse_cursor).transpose()?;
    let live = follow::open_live(&app, &id, &q, since, Transport::Stream)?;
    let opened = &live.opened;
    let welcome = render::welcome(opened.follower.room(), opened.ship.unwrap_or(0));
    let first = chunk(&render::message(&welcome, opened.format), opened.format);
    let content_type = match opened.format {
        Format::Binary => "application/octet-stream",
        Format::Json => "application/x-ndjson",
    };
    let chunks = follow::messages(live, first, next_chunk, None);
    let body = Body::from_stream(chunks.map(Ok::<_, std::convert::Infallible>));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    Ok((headers, body).into_response())
}

/// One follower's next chunk: a send's chat records and frame, or the close record that ends
/// the stream (`true`).
fn next_chunk(live: &mut Live, next: Next) -> (Bytes, bool) {
    let format = live.opened.format;
    if let Some((code, reason)) = next.close() {
        let msg = render::message(&ServerMsg::Close { code, reason }, format);
        return (chunk(&msg, format), true);
    }
    let Next::Frame {
        published,
        payload,
        from,
        chat_from,
    } = next
    else {
        return (Bytes::new(), true);
    };
    let ack = live.opened.follower.ack(&published);
    let frame = chunk(
        &render::frame(&published, &payload, from.as_deref(), ack, format),
        format,
    );
    live.app
        .metrics
        .frame_out(Transport::Stream, frame.len(), payload.base.is_none());
    let chat = &published.chat[chat_from..];
    if chat.is_empty() {
        return (frame, false);
    }
    let mut out = Vec::new();
    for line in chat {
        out.extend_from_slice(&chunk(&render::chat(line, format), format));
    }
    live.app.metrics.bytes_out(Transport::Stream, out.len());
    out.extend_from_slice(&frame);
    (Bytes::from(out), false)
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
