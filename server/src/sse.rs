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

use crate::App;
use crate::api::AppError;
use crate::follow::{self, FollowQuery, Live, Next};
use crate::metrics::Transport;
use crate::render::{self, Format};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use game_core::protocol::ServerMsg;
use std::collections::VecDeque;
use std::time::Duration;

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
    let since = match last_event_id.or(q.since.as_deref()) {
        Some(v) => Some(follow::parse_cursor(v)?),
        None => None,
    };
    let live = follow::open_live(&app, &id, &q, since, Transport::Sse)?;
    let opened = &live.opened;
    let retry = Duration::from_millis(app.cfg.sse_retry_ms);
    let keepalive = Duration::from_secs(app.cfg.sse_keepalive_secs);
    let welcome = render::welcome(opened.follower.room(), opened.ship.unwrap_or(0));
    let first = data(
        Event::default().retry(retry).event("welcome"),
        &render::message(&welcome, opened.format),
        opened.format,
    );
    let events = follow::messages(live, first, next_event);
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(keepalive).text("keep-alive"));
    let no_buffering = [(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    )];
    Ok((no_buffering, sse).into_response())
}

/// One follower's next events: chat lines and a frame, or the close event that ends the
/// stream (`true`).
fn next_event(live: &mut Live, next: Next, out: &mut VecDeque<Event>) -> bool {
    let format = live.opened.format;
    if let Some((code, reason)) = next.close() {
        let msg = render::message(&ServerMsg::Close { code, reason }, format);
        out.push_back(data(Event::default().event("close"), &msg, format));
        return true;
    }
    let Next::Frame {
        published,
        payload,
        from,
        chat_from,
    } = next
    else {
        return true;
    };
    // Chat events carry no `id:`, so Last-Event-ID stays the last frame's tick.
    for line in &published.chat[chat_from..] {
        let msg = render::chat(line, format);
        live.app.metrics.bytes_out(Transport::Sse, msg.len());
        out.push_back(data(Event::default().event("chat"), &msg, format));
    }
    let ack = live.opened.follower.ack(&published);
    let event = Event::default()
        .id(published.tick.to_string())
        .event("frame");
    let keyframe = payload.base.is_none();
    let event = match format {
        // Base64 of the frame; for spectators it is encoded once per send and shared.
        Format::Binary => {
            let text = published.frame_base64(&payload, ack);
            live.app
                .metrics
                .frame_out(Transport::Sse, text.len(), keyframe);
            event.data(&*text)
        }
        Format::Json => {
            let bytes = render::frame(&published, &payload, from.as_deref(), ack, format);
            live.app
                .metrics
                .frame_out(Transport::Sse, bytes.len(), keyframe);
            data(event, &bytes, format)
        }
    };
    out.push_back(event);
    false
}

/// Puts a message in an event's `data:` — base64 for the binary format, as is for JSON.
fn data(event: Event, msg: &Bytes, format: Format) -> Event {
    match format {
        Format::Binary => event.data(STANDARD.encode(msg)),
        Format::Json => event.data(String::from_utf8_lossy(msg)),
    }
}
