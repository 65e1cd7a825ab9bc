//! Players without WebSocket: `POST /api/rooms/{id}/join`, `…/input`, `…/chat` and `…/leave`.
//!
//! A join (or a resume with a token from any transport) makes the room attach a session exactly
//! as a WebSocket would; this registry holds the connection's side of it — the bounded input
//! queue and the replaced-signal — keyed by token. Every request with the token (inputs, and
//! streams with `?token=`) keeps it alive; a session unheard from for `idle_timeout_secs`, or
//! taken over by another connection, is dropped, which starts the room's reconnect grace.

use crate::App;
use crate::api::{AppError, Body, json_body};
use crate::limits::{InputBudget, Verdict};
use crate::metrics::Rejection;
use crate::room::{InputMsg, JoinError, Joined};
use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use game_core::protocol::{Input, MAX_NAME_CHARS};
use game_core::{NetId, SessionToken};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

/// Largest body of a join or input request.
pub const MAX_BODY_BYTES: usize = crate::api::MAX_BODY_BYTES;
/// Most inputs in one input request.
pub const MAX_BATCH: usize = 32;

struct Session {
    room: String,
    ship: NetId,
    inputs: tokio::sync::mpsc::Sender<InputMsg>,
    replaced: tokio_util::sync::CancellationToken,
    last_seen: Instant,
    budget: InputBudget,
    chat: crate::limits::Budget,
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

    fn insert(&self, app: &App, room: &str, joined: Joined) -> (NetId, SessionToken) {
        let session = Session {
            budget: InputBudget::new(app.cfg.input_rate()),
            chat: crate::chat::budget(app),
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
        self.with(token, room, |s| (s.ship, s.inputs.clone()))
    }

    /// Runs `f` on the live session in `room` with this token, marking it seen.
    fn with<R>(
        &self,
        token: &SessionToken,
        room: &str,
        f: impl FnOnce(&mut Session) -> R,
    ) -> Option<R> {
        let mut map = self.lock();
        let s = map
            .get_mut(token)
            .filter(|s| s.room == room && !s.replaced.is_cancelled())?;
        s.last_seen = Instant::now();
        Some(f(s))
    }

    /// Drops sessions idle for `idle` or replaced by another connection.
    pub fn reap(&self, idle: Duration) {
        let now = Instant::now();
        self.lock()
            .retain(|_, s| !s.replaced.is_cancelled() && now.duration_since(s.last_seen) < idle);
    }
}

/// 401 `bad_token`, counted.
fn bad_token(app: &App) -> AppError {
    app.metrics.reject(Rejection::BadToken);
    AppError::bad_token()
}

/// A session token from its hex text; one that does not parse is a counted `bad_token`.
fn parse_token(app: &App, text: &str) -> Result<SessionToken, AppError> {
    text.parse().map_err(|_| bad_token(app))
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(raw): Body,
) -> Result<Json<serde_json::Value>, AppError> {
    if !app.joins.allow(peer.ip()) {
        app.metrics.reject(Rejection::RateLimited);
        return Err(AppError::rate_limited("joins", app.cfg.joins_per_min));
    }
    let req: JoinBody = json_body(&raw, MAX_BODY_BYTES)?;
    let room = app
        .registry
        .get(&id)
        .ok_or_else(|| AppError::room_not_found(&id))?;
    let joined = match req.token.as_deref() {
        Some(t) => {
            let token: SessionToken = parse_token(&app, t)?;
            room.resume(token, None).await
        }
        None => {
            let name = req.name.unwrap_or_default();
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(AppError::bad_request(format!(
                    "name is longer than {MAX_NAME_CHARS} characters"
                )));
            }
            room.join(crate::ws::clean_name(&name), None).await
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
    let (entity, token) = app.http_players.insert(&app, &id, joined);
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
    let token = parse_token(
        &app,
        q.token.as_deref().ok_or_else(AppError::token_required)?,
    )?;
    let room = app
        .registry
        .get(&id)
        .ok_or_else(|| AppError::room_not_found(&id))?;
    let session = {
        let mut sessions = app.http_players.lock();
        match sessions.get(&token) {
            Some(s) if s.room == id => sessions.remove(&token),
            _ => None,
        }
    };
    let Some(session) = session else {
        return Err(bad_token(&app));
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
    Body(raw): Body,
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
    let token = parse_token(&app, &token)?;
    let Some((ship, tx)) = app.http_players.touch(&token, &id) else {
        return Err(bad_token(&app));
    };
    // The whole batch is judged against the session's rate before any of it is queued.
    let verdicts: Vec<Verdict> = app
        .http_players
        .with(&token, &id, |s| {
            req.inputs.iter().map(|_| s.budget.spend()).collect()
        })
        .unwrap_or_default();
    if verdicts.contains(&Verdict::Flood) {
        // Like a WebSocket closed for flooding: the session ends; its ship waits out the
        // reconnect grace like any dropped one.
        app.http_players.lock().remove(&token);
        app.metrics.reject(Rejection::InputFlood);
        return Err(AppError::input_flood(app.cfg.input_rate()));
    }
    let mut accepted = 0;
    for (i, verdict) in req.inputs.into_iter().zip(verdicts) {
        if verdict == Verdict::Drop {
            app.metrics.reject(Rejection::InputRate);
            continue;
        }
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

/// Body of `POST …/chat`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    /// The line; control characters are removed.
    pub text: String,
}

/// `POST /api/rooms/{id}/chat?token=T`: says a line in the room's chat (204).
pub async fn chat(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
    Body(raw): Body,
) -> Result<axum::http::StatusCode, AppError> {
    let Some(token) = q.token else {
        app.metrics.reject(Rejection::Chat);
        return Err(AppError::token_required());
    };
    let req: ChatBody = json_body(&raw, MAX_BODY_BYTES)?;
    let room = app
        .registry
        .get(&id)
        .ok_or_else(|| AppError::room_not_found(&id))?;
    let token = parse_token(&app, &token)?;
    let said = app.http_players.with(&token, &id, |s| {
        crate::chat::say(&app, &room, s.ship, &mut s.chat, &req.text)
    });
    match said {
        None => Err(bad_token(&app)),
        Some(Ok(true)) => Ok(axum::http::StatusCode::NO_CONTENT),
        Some(Ok(false)) => Err(AppError::bad_request("the chat line is empty")),
        Some(Err(e)) => Err(AppError::chat(e)),
    }
}
