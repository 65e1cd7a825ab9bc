//! The HTTP API: rooms as JSON, matchmaking, health and metrics, and errors as JSON.
//!
//! ```text
//! GET  /healthz            200 "ok"
//! GET  /metrics            Prometheus text
//! GET  /api/rooms          200 [RoomInfo]
//! POST /api/rooms          201 RoomInfo         body (optional): {"id": "name"}
//! GET  /api/rooms/{id}     200 RoomInfo | 404
//! POST /api/matchmake      200 {"room": RoomInfo, "ws": "/api/rooms/{id}/ws"}
//! errors                   {"error": {"code": "room_not_found", "message": "…"}}
//! ```

use crate::App;
use crate::metrics::Rejection;
use crate::registry::CreateError;
use crate::room::{Owner, Room};
use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

/// A room as the API shows it.
#[derive(Debug, Serialize)]
pub struct RoomInfo {
    /// The room's id.
    pub id: String,
    /// Human players holding a ship.
    pub players: u32,
    /// AI ships filling in.
    pub ai_ships: u32,
    /// Connected spectators.
    pub spectators: u32,
    /// Human players it holds at most.
    pub capacity: u16,
    /// Its current tick.
    pub tick: u32,
    /// Ticks per second.
    pub tick_rate: u16,
    /// Frames per second to clients that keep up.
    pub send_rate: u16,
    /// `server` (never idles out) or `user` (closes when empty for a while).
    pub created_by: &'static str,
    /// Where to connect a WebSocket.
    pub ws: String,
    /// What to draw.
    pub arena: ArenaJson,
    /// How ships fly, for client-side prediction.
    pub flight: crate::room::Flight,
}

/// The arena in [`RoomInfo`].
#[derive(Debug, Serialize)]
pub struct ArenaJson {
    /// Width in world units.
    pub width: u32,
    /// Height in world units.
    pub height: u32,
    /// `[x, y, radius]` of each round obstacle.
    pub obstacles: Vec<[i64; 3]>,
}

impl RoomInfo {
    /// The API view of a room.
    pub fn of(room: &Room) -> Self {
        let s = room.stats();
        let a = room.arena();
        Self {
            id: room.id().to_owned(),
            players: s.players.load(Relaxed),
            ai_ships: s.ai_ships.load(Relaxed),
            spectators: s.spectators.load(Relaxed),
            capacity: room.capacity(),
            tick: s.tick.load(Relaxed),
            tick_rate: room.tick_rate(),
            send_rate: room.send_rate(),
            created_by: match room.owner() {
                Owner::Server => "server",
                Owner::User => "user",
            },
            ws: format!("/api/rooms/{}/ws", room.id()),
            arena: ArenaJson {
                width: a.width,
                height: a.height,
                obstacles: a
                    .obstacles
                    .iter()
                    .map(|&(x, y, r)| [x.into(), y.into(), r.into()])
                    .collect(),
            },
            flight: *room.flight(),
        }
    }
}

/// An error answer: a status and a JSON body with a stable code and a message.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AppError {
    /// 404 for a room id that names no open room.
    pub fn room_not_found(id: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "room_not_found",
            message: format!("no open room named {id:?}"),
        }
    }

    /// 503 when the connection limit is reached.
    pub fn too_many_connections() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "too_many_connections",
            message: "the server holds its maximum number of connections; try again later".into(),
        }
    }

    /// 503 when `max_connections_per_ip` connections are open from the client's address.
    pub fn too_many_from_ip() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections_from_ip",
            "too many open connections from your address; close some and try again",
        )
    }

    /// 429 when an IP address makes more of some request than its per-minute limit allows.
    pub fn rate_limited(what: &str, per_min: u32) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("at most {per_min} {what} per minute from one address; slow down"),
        )
    }

    /// 429 for a player sending inputs faster than its rate for a second or more.
    pub fn input_flood(rate: u32) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "input_flood",
            format!("more than {rate} inputs per second; the session was closed"),
        )
    }

    /// The answer to a refused chat line: 400 too long, 429 over the rate, 503 busy, 410 closed.
    pub fn chat(e: crate::chat::Refused) -> Self {
        use crate::chat::Refused;
        use crate::room::ChatError;
        let (status, code) = match &e {
            Refused::TooLong(_) => (StatusCode::BAD_REQUEST, "chat_too_long"),
            Refused::Rate(_) => (StatusCode::TOO_MANY_REQUESTS, "chat_rate"),
            Refused::Room(ChatError::Busy) => (StatusCode::SERVICE_UNAVAILABLE, "room_busy"),
            Refused::Room(ChatError::Closed) => return Self::room_closed(),
        };
        Self::new(status, code, e.to_string())
    }

    /// 403 for a browser page from an origin that is not allowed.
    pub fn origin_not_allowed(origin: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            format!("pages from {origin:?} may not use this server (allowed_origins)"),
        )
    }

    /// 408 for a body that did not arrive within the body read timeout.
    pub fn body_timeout(secs: u64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body did not arrive within {secs} s"),
        )
    }

    /// 400 for a request that does not parse.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 426 for a request to a WebSocket endpoint that is not a valid upgrade, saying what is
    /// wrong with it.
    pub fn not_an_upgrade(why: &str) -> Self {
        Self::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_upgrade_required",
            format!("this endpoint speaks WebSocket (RFC 6455, version 13): {why}"),
        )
    }

    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 for a tick cursor that is not a number.
    pub fn bad_cursor(v: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_cursor",
            format!("cursor {v:?} is not a tick number"),
        )
    }

    /// 400 for a tick cursor ahead of the room.
    pub fn cursor_in_future(since: u32, latest: u32) -> Self {
        let message = format!("cursor {since} is ahead of the room, which is at tick {latest}");
        Self::new(StatusCode::BAD_REQUEST, "cursor_in_future", message)
    }

    /// 401 for an unknown, expired or malformed session token.
    pub fn bad_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "unknown or expired session token",
        )
    }

    /// 401 for input without a token: spectators cannot send input.
    pub fn token_required() -> Self {
        let message =
            "input needs a player's session token (?token=); spectators cannot send input";
        Self::new(StatusCode::UNAUTHORIZED, "token_required", message)
    }

    /// 413 for a body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {limit} bytes"),
        )
    }

    /// 410 when the room closed under a request.
    pub fn room_closed() -> Self {
        Self::new(StatusCode::GONE, "room_closed", "the room closed")
    }

    /// 503 when the server shuts down under a request.
    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        )
    }

    /// The answer to a refused join.
    pub fn join(e: crate::room::JoinError) -> Self {
        use crate::room::JoinError;
        match e {
            JoinError::Full => Self::new(StatusCode::CONFLICT, "room_full", e.to_string()),
            JoinError::BadToken => Self::bad_token(),
            JoinError::Closed => Self::room_closed(),
        }
    }
}

impl From<CreateError> for AppError {
    fn from(e: CreateError) -> Self {
        let (status, code) = match e {
            CreateError::TooMany(_) => (StatusCode::SERVICE_UNAVAILABLE, "too_many_rooms"),
            CreateError::Exists(_) => (StatusCode::CONFLICT, "room_exists"),
            CreateError::BadId => (StatusCode::BAD_REQUEST, "bad_room_id"),
        };
        Self {
            status,
            code,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

/// `GET /` when the browser client's files are not there: a page that says what this server is
/// and where its API and streams are.
pub async fn index() -> axum::response::Html<&'static str> {
    axum::response::Html(concat!(
        "<!doctype html><meta charset=utf-8><title>tickwire</title>",
        "<h1>tickwire</h1><p>The game server is running, but the browser client's files were not ",
        "found (set <code>--web-root</code>); clients connect at <code>/api/rooms/{id}/ws</code>.</p>",
        "<ul><li><a href=/api/rooms>/api/rooms</a> — rooms as JSON</li>",
        "<li><a href=/metrics>/metrics</a> — Prometheus metrics</li>",
        "<li><a href=/healthz>/healthz</a></li></ul>",
    ))
}

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<App>) -> Response {
    let text = app.metrics.render(app.registry.len(), app.gate.open());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /api/rooms`.
pub async fn list_rooms(State(app): State<App>) -> Json<Vec<RoomInfo>> {
    Json(app.registry.list().iter().map(RoomInfo::of).collect())
}

/// Largest body of `POST /api/rooms`.
pub const CREATE_ROOM_BODY_BYTES: usize = 1024;

/// Body of `POST /api/rooms`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// The id to use; the server picks one when absent.
    pub id: Option<String>,
}

/// Reads an optional JSON body of at most `limit` bytes: empty (or blank) gives the default,
/// too large is 413, anything that is not one JSON object of the right shape is 400.
pub fn json_body<T: Default + for<'de> Deserialize<'de>>(
    bytes: &Bytes,
    limit: usize,
) -> Result<T, AppError> {
    if bytes.len() > limit {
        return Err(AppError::too_large(limit));
    }
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Ok(T::default()),
        // serde would also take a struct written as an array of its fields; the API is objects.
        Some(b'{') => {}
        Some(_) => return Err(AppError::bad_request("the body must be a JSON object")),
    }
    serde_json::from_slice(bytes).map_err(|e| AppError::bad_request(format!("body: {e}")))
}

/// Largest request body the API reads (room creation, joins, input batches).
pub const MAX_BODY_BYTES: usize = 4096;

/// A request body read whole within `body_read_timeout_secs` and [`MAX_BODY_BYTES`]: a client
/// that trickles its body or sends too much is answered (408, 413) without holding anything.
pub struct Body(pub Bytes);

impl axum::extract::FromRequest<App> for Body {
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, app: &App) -> Result<Self, AppError> {
        let secs = app.cfg.body_read_timeout_secs;
        let read = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES);
        match tokio::time::timeout(std::time::Duration::from_secs(secs), read).await {
            Ok(Ok(bytes)) => Ok(Self(bytes)),
            Ok(Err(_)) => {
                app.metrics.reject(Rejection::TooBig);
                Err(AppError::too_large(MAX_BODY_BYTES))
            }
            Err(_) => {
                app.metrics.reject(Rejection::SlowRequest);
                Err(AppError::body_timeout(secs))
            }
        }
    }
}

/// `Ok` for a request without `Origin` or from an allowed one (see
/// [`crate::limits::origin_allowed`]); otherwise the counted `403 origin_not_allowed`.
pub fn origin_check(app: &App, origin: Option<&str>, host: Option<&str>) -> Result<(), AppError> {
    match origin {
        Some(origin) if !crate::limits::origin_allowed(&app.cfg.allowed_origins, origin, host) => {
            app.metrics.reject(Rejection::OriginNotAllowed);
            Err(AppError::origin_not_allowed(origin))
        }
        _ => Ok(()),
    }
}

/// Refuses API requests from browser pages of other origins (see
/// [`crate::limits::origin_allowed`]); requests without `Origin` pass.
pub async fn check_origin(
    State(app): State<App>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""));
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if let Err(e) = origin_check(&app, origin, host) {
        return e.into_response();
    }
    next.run(req).await
}

/// `POST /api/rooms`: the body is optional.
pub async fn create_room(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(body): Body,
) -> Result<(StatusCode, Json<RoomInfo>), AppError> {
    if !app.room_creates.allow(peer.ip()) {
        app.metrics.reject(Rejection::RateLimited);
        return Err(AppError::rate_limited(
            "room creations",
            app.cfg.room_creates_per_min,
        ));
    }
    let req: CreateRoom = json_body(&body, CREATE_ROOM_BODY_BYTES)?;
    let room = app.registry.create(req.id, Owner::User)?;
    Ok((StatusCode::CREATED, Json(RoomInfo::of(&room))))
}

/// `GET /api/rooms/{id}`.
pub async fn get_room(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<RoomInfo>, AppError> {
    let room = app
        .registry
        .get(&id)
        .ok_or_else(|| AppError::room_not_found(&id))?;
    Ok(Json(RoomInfo::of(&room)))
}

/// Answer of `POST /api/matchmake`.
#[derive(Debug, Serialize)]
pub struct Matched {
    /// The room to join.
    pub room: RoomInfo,
    /// Its WebSocket path.
    pub ws: String,
}

/// `POST /api/matchmake`: the fullest room with space, or a new one. Counts as a join for the
/// per-IP rate, since it may create a room.
pub async fn matchmake(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Json<Matched>, AppError> {
    if !app.joins.allow(peer.ip()) {
        app.metrics.reject(Rejection::RateLimited);
        return Err(AppError::rate_limited("joins", app.cfg.joins_per_min));
    }
    let room = app.registry.matchmake()?;
    let info = RoomInfo::of(&room);
    Ok(Json(Matched {
        ws: info.ws.clone(),
        room: info,
    }))
}

/// `POST /api/rooms/{id}/fault` (test builds only, feature `fault-injection`): makes the room's
/// task panic on its next tick.
#[cfg(feature = "fault-injection")]
pub async fn inject_fault(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let room = app
        .registry
        .get(&id)
        .ok_or_else(|| AppError::room_not_found(&id))?;
    room.inject_fault().await;
    Ok(StatusCode::ACCEPTED)
}
