//! Players without WebSocket: `POST /api/rooms/{id}/join` and `POST /api/rooms/{id}/input`.
//!
//! A join (or a resume with a token from any transport) makes the room attach a session exactly
//! as a WebSocket would; this registry holds the connection's side of it — the bounded input
//! queue and the replaced-signal — keyed by token. Every request with the token (inputs, and
//! streams with `?token=`) keeps it alive; a session unheard from for `idle_timeout_secs`, or
//! taken over by another connection, is dropped, which starts the room's reconnect grace.

use crate::App;
use crate::api::{AppError, json_body};
use crate::metrics::Rejection;
use crate::room::{InputMsg, JoinError, Joined};
use axum::Json;
use axum::extract::{Path, Query, State};
use bytes::Bytes;
use game_core::protocol::{Input, MAX_NAME_CHARS};
use game_core::{NetId, SessionToken};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

/// Largest body of a join or input request.
pub const MAX_BODY_BYTES: usize = 4096;
/// Most inputs in one input request.
pub const MAX_BATCH: usize = 32;

struct Session {
    room: String,
    ship: NetId,
    inputs: tokio::sync::mpsc::Sender<InputMsg>,
    replaced: tokio_util::sync::CancellationToken,
    last_seen: Instant,
}

/// HTTP player sessions by token. Bounded by the rooms' capacities: every entry holds a ship.
#[derive(Default)]
pub struct HttpPlayers {
    sessions: Mutex<HashMap<SessionToken, Session>>,
}

impl HttpPlayers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionToken, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, room: &str, joined: Joined) -> (NetId, SessionToken) {
        let session = Session {
            room: room.to_owned(),
            ship: joined.ship,
            inputs: joined.inputs,
            replaced: joined.replaced,
            last_seen: Instant::now(),
        };
        self.lock().insert(joined.token, session);
        (joined.ship, joined.token)
    }

    /// The ship of a live session in `room` with this token (hex), marking it seen.
    pub fn ship(&self, token: &str, room: &str) -> Option<NetId> {
        self.touch(&token.parse().ok()?, room).map(|(ship, _)| ship)
    }

    /// The ship and input queue of a live session in `room`, marking it seen.
    fn touch(
        &self,
        token: &SessionToken,
        room: &str,
    ) -> Option<(NetId, tokio::sync::mpsc::Sender<InputMsg>)> {
        let mut map = self.lock();
        let s = map
            .get_mut(token)
            .filter(|s| s.room == room && !s.replaced.is_cancelled())?;
        s.last_seen = Instant::now();
        Some((s.ship, s.inputs.clone()))
    }

    /// Drops sessions idle for `idle` or replaced by another connection.
    pub fn reap(&self, idle: Duration) {
        let now = Instant::now();
        self.lock()
            .retain(|_, s| !s.replaced.is_cancelled() && now.duration_since(s.last_seen) < idle);
    }
}

/// Body of `POST …/join`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    /// Display name.
    pub name: Option<String>,
    /// A session token to resume.
    pub token: Option<String>,
}

/// `POST /api/rooms/{id}/join`.
pub async fn join(
    State(app): State<App>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<serde_json::Value>, AppError> {
    let req: JoinBody = json_body(&raw, MAX_BODY_BYTES)?;
    let room = app
        .registry
        .get(&id)
        .ok_or_else(|| AppError::room_not_found(&id))?;
    let joined = match req.token.as_deref() {
        Some(t) => {
            let token: SessionToken = t.parse().map_err(|_| AppError::bad_token())?;
            room.resume(token).await
        }
        None => {
            let name = req.name.unwrap_or_default();
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(AppError::bad_request(format!(
                    "name is longer than {MAX_NAME_CHARS} characters"
                )));
            }
            room.join(crate::ws::clean_name(&name)).await
        }
    };
    let joined = joined.map_err(|e| {
        match e {
            JoinError::Full => app.metrics.reject(Rejection::RoomFull),
            JoinError::BadToken => app.metrics.reject(Rejection::BadToken),
            JoinError::Closed => {}
        }
        AppError::join(e)
    })?;
    let (entity, token) = app.http_players.insert(&id, joined);
    Ok(Json(serde_json::json!({
        "token": token.to_string(), "entity": entity, "room": room.id(),
        "tick_rate": room.tick_rate(), "send_rate": room.send_rate(),
        "tick": room.stats().tick.load(std::sync::atomic::Ordering::Relaxed),
    })))
}

/// `POST /api/rooms/{id}/leave?token=T`: the player leaves now; its ship is removed without
/// waiting for the grace period.
pub async fn leave(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Result<axum::http::StatusCode, AppError> {
    let token: SessionToken = q
        .token
        .as_deref()
        .ok_or_else(AppError::token_required)?
        .parse()
        .map_err(|_| AppError::bad_token())?;
    let room = app
        .registry
        .get(&id)
        .ok_or_else(|| AppError::room_not_found(&id))?;
    let session = app
        .http_players
        .lock()
        .remove(&token)
        .filter(|s| s.room == id);
    let Some(session) = session else {
        app.metrics.reject(Rejection::BadToken);
        return Err(AppError::bad_token());
    };
    room.leave(session.ship, token).await;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// One input in `POST …/input`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputJson {
    /// Sequence number, ascending from 1 per session.
    pub seq: u32,
    /// −127…127.
    #[serde(default)]
    pub thrust: i8,
    /// −127…127.
    #[serde(default)]
    pub turn: i8,
    /// 1 fire, 2 boost.
    #[serde(default)]
    pub buttons: u8,
}

/// Body of `POST …/input`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputBody {
    /// The batch, in sequence order.
    pub inputs: Vec<InputJson>,
}

/// Query of `POST …/input`.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    /// The session token.
    pub token: Option<String>,
}

/// `POST /api/rooms/{id}/input?token=T`.
pub async fn input(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
    raw: Bytes,
) -> Result<Json<serde_json::Value>, AppError> {
    let Some(token) = q.token else {
        app.metrics.reject(Rejection::SpectatorInput);
        return Err(AppError::token_required());
    };
    let req: InputBody = json_body(&raw, MAX_BODY_BYTES)
        .inspect_err(|_| app.metrics.reject(Rejection::Malformed))?;
    if req.inputs.len() > MAX_BATCH {
        app.metrics.reject(Rejection::Malformed);
        return Err(AppError::bad_request(format!(
            "at most {MAX_BATCH} inputs per request"
        )));
    }
    let room = app
        .registry
        .get(&id)
        .ok_or_else(|| AppError::room_not_found(&id))?;
    let token: SessionToken = token.parse().map_err(|_| {
        app.metrics.reject(Rejection::BadToken);
        AppError::bad_token()
    })?;
    let Some((ship, tx)) = app.http_players.touch(&token, &id) else {
        app.metrics.reject(Rejection::BadToken);
        return Err(AppError::bad_token());
    };
    let mut accepted = 0;
    for i in req.inputs {
        let raw = Input {
            thrust: i.thrust,
            turn: i.turn,
            buttons: i.buttons,
        };
        let input = if raw.is_valid() {
            raw
        } else {
            app.metrics.reject(Rejection::InputOutOfRange);
            raw.sanitized()
        };
        match tx.try_send((i.seq, input)) {
            Ok(()) => {
                app.metrics.input_in();
                accepted += 1;
            }
            Err(TrySendError::Full(_)) => app.metrics.reject(Rejection::InputQueueFull),
            Err(TrySendError::Closed(_)) => return Err(AppError::room_closed()),
        }
    }
    let ack = room.subscribe().borrow().ack_for(ship);
    Ok(Json(
        serde_json::json!({ "accepted": accepted, "ack": ack }),
    ))
}
