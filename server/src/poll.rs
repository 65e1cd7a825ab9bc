//! Long polling and polling: `GET /api/rooms/{id}/poll?since=T&wait=S`.
//!
//! Answers at once when a send newer than `T` exists (or there is no `T`): `200` with the chat
//! lines the client has not had (records or JSON lines, possibly none) and, last, one record
//! (or JSON line) holding the frame that takes the client from `T` to the newest tick.
//! Otherwise the request is held up to `wait` seconds (capped at `long_poll_max_wait_secs`) for
//! the next send; when none comes, `204`. `wait=0` is plain polling. Every answer carries the
//! cursor to send next in `x-tickwire-cursor`.

use crate::App;
use crate::api::AppError;
use crate::follow::{self, FollowQuery, Next};
use crate::metrics::Transport;
use crate::render::{self, Format};
use crate::stream::chunk;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

const CURSOR: HeaderName = HeaderName::from_static("x-tickwire-cursor");

/// `GET /api/rooms/{id}/poll`.
pub async fn poll(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<FollowQuery>,
) -> Result<Response, AppError> {
    let since = q.since.as_deref().map(follow::parse_cursor).transpose()?;
    let wait = match q.wait.as_deref() {
        None => 0.0,
        Some(w) => w
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|w| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| AppError::bad_cursor(w))?,
    };
    let wait = Duration::from_secs_f64(wait.min(app.cfg.long_poll_max_wait_secs as f64));
    let transport = if wait.is_zero() {
        Transport::Poll
    } else {
        Transport::LongPoll
    };
    let mut opened = follow::open(&app, &id, &q, since, transport)?;
    let format = opened.format;
    let cursor = |t: Option<u32>| t.map_or(String::new(), |t| t.to_string());

    if !opened.follower.ready() && wait.is_zero() {
        let headers = [
            (CURSOR, cursor(since)),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ];
        return Ok((StatusCode::NO_CONTENT, headers).into_response());
    }
    let next = tokio::time::timeout(
        wait.max(Duration::from_millis(1)),
        opened.follower.next(&app.shutdown),
    )
    .await;
    match next {
        Err(_) => {
            let headers = [
                (CURSOR, cursor(since)),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ];
            Ok((StatusCode::NO_CONTENT, headers).into_response())
        }
        Ok(Next::Frame {
            published,
            payload,
            from,
            chat_from,
        }) => {
            let ack = opened.follower.ack(&published);
            let frame = chunk(
                &render::frame(&published, &payload, from.as_deref(), ack, format),
                format,
            );
            app.metrics
                .frame_out(transport, frame.len(), payload.base.is_none());
            let chat = &published.chat[chat_from..];
            let body = if chat.is_empty() {
                frame
            } else {
                let mut body = Vec::new();
                for line in chat {
                    body.extend_from_slice(&chunk(&render::chat(line, format), format));
                }
                app.metrics.bytes_out(transport, body.len());
                body.extend_from_slice(&frame);
                bytes::Bytes::from(body)
            };
            let content_type = match format {
                Format::Binary => "application/octet-stream",
                Format::Json => "application/x-ndjson",
            };
            let headers = [
                (CURSOR, published.tick.to_string()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (header::CONTENT_TYPE, content_type.to_owned()),
            ];
            Ok((StatusCode::OK, headers, body).into_response())
        }
        Ok(Next::Closed(..)) => Err(AppError::room_closed()),
        Ok(Next::Shutdown) => Err(AppError::shutting_down()),
    }
}
