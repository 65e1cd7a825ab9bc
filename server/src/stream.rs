//! HTTP streaming: `GET /api/rooms/{id}/stream`, one long chunked response.
//!
//! Binary: records of `u32 LE length ‖ ServerMsg` — a `Welcome`, a `Frame` per send, a `Close`
//! before the end — each its own chunk, written as soon as it exists. `?format=json`: one JSON
//! object per line (NDJSON). `?since=T` resumes from a tick.

use crate::App;
use crate::api::AppError;
use crate::follow::{self, FollowQuery, Next, Opened};
use crate::metrics::Transport;
use crate::render::{self, Format};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use game_core::protocol::{ServerMsg, close};
use std::convert::Infallible;

/// `GET /api/rooms/{id}/stream`.
pub async fn stream(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<FollowQuery>,
) -> Result<Response, AppError> {
    let since = q.since.as_deref().map(follow::parse_cursor).transpose()?;
    let permit = app.connections.clone().try_acquire_owned().map_err(|_| {
        app.metrics
            .reject(crate::metrics::Rejection::TooManyConnections);
        AppError::too_many_connections()
    })?;
    let opened = follow::open(&app, &id, &q, since, Transport::Stream)?;
    let welcome = render::welcome(opened.follower.room(), opened.ship.unwrap_or(0));
    let first = chunk(&render::message(&welcome, opened.format), opened.format);
    let content_type = match opened.format {
        Format::Binary => "application/octet-stream",
        Format::Json => "application/x-ndjson",
    };
    let state = Streaming {
        app,
        opened,
        first: Some(first),
        done: false,
        _permit: permit,
    };
    let body = Body::from_stream(futures_util::stream::unfold(state, next_chunk));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    Ok((headers, body).into_response())
}

struct Streaming {
    app: App,
    opened: Opened,
    first: Option<Bytes>,
    done: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

async fn next_chunk(mut s: Streaming) -> Option<(Result<Bytes, Infallible>, Streaming)> {
    if let Some(first) = s.first.take() {
        return Some((Ok(first), s));
    }
    if s.done {
        return None;
    }
    let format = s.opened.format;
    let (code, reason) = match s.opened.follower.next(&s.app.shutdown).await {
        Next::Frame {
            published,
            payload,
            from,
        } => {
            let ack = s.opened.follower.ack(&published);
            let bytes = chunk(
                &render::frame(&published, &payload, from.as_deref(), ack, format),
                format,
            );
            s.app
                .metrics
                .frame_out(Transport::Stream, bytes.len(), payload.base.is_none());
            return Some((Ok(bytes), s));
        }
        Next::Closed(code, reason) => (code, reason),
        Next::Shutdown => (close::GOING_AWAY, "the server is shutting down".to_owned()),
    };
    s.done = true;
    let bye = chunk(
        &render::message(&ServerMsg::Close { code, reason }, format),
        format,
    );
    Some((Ok(bye), s))
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
