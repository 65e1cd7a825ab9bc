//! WebSocket sessions: players (`GET /api/rooms/{id}/ws`) and spectators (`?spectate=1`).
//!
//! One task per connection. It reads the `Hello`, joins or resumes through the room, sends the
//! `Welcome`, then loops: whenever the room publishes, it sends the newest frame (a small header
//! with this player's acknowledged input sequence in front of the room's shared delta); whenever
//! the client speaks, it forwards inputs to the room's bounded per-player queue. A slow reader
//! blocks only its own task, which then skips to the newest send — conflation, no queue.
//!
//! Every way out ends with a close frame that has a [`close`] code and a reason.

use crate::App;
use crate::api::AppError;
use crate::follow::{Follower, Next, Presence};
use crate::limits::{InputBudget, Verdict};
use crate::metrics::{Rejection, Role, Transport};
use crate::room::{JoinError, Joined, Room};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::{IntoResponse, Response};
use game_core::codec::{self, CodecError};
use game_core::protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg, close};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// Query string of the WebSocket endpoint.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// `1` or `true`: a read-only spectator.
    pub spectate: Option<String>,
}

/// `GET /api/rooms/{id}/ws`: upgrades to a player or spectator session.
pub async fn upgrade(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<WsQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(room) = app.registry.get(&id) else {
        return AppError::room_not_found(&id).into_response();
    };
    let role = match q.spectate.as_deref() {
        Some("1" | "true" | "") => Role::Spectator,
        _ => Role::Player,
    };
    // Every player connection is a join or a resume; spectators only hold a connection.
    if role == Role::Player && !app.joins.allow(peer.ip()) {
        app.metrics.reject(Rejection::RateLimited);
        return AppError::rate_limited("joins", app.cfg.joins_per_min).into_response();
    }
    let Ok(permit) = app.connections.clone().try_acquire_owned() else {
        app.metrics.reject(Rejection::TooManyConnections);
        return AppError::too_many_connections().into_response();
    };
    let limit = app.cfg.max_message_bytes;
    let tracker = app.tracker.clone();
    ws.max_message_size(limit)
        .max_frame_size(limit)
        // tungstenite zero-fills its read buffer before every read, including the one that
        // finds nothing: its 128 KiB default cost 44 % of server CPU at 1,000 players, and 4 KiB
        // still 2 %. Inputs are a few dozen bytes, and a message of the most a client may send
        // (1 KiB) takes two reads of 512.
        .read_buffer_size(512)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(codec::SERVER_MSG_LIMIT + 64 * 1024)
        .on_upgrade(move |socket| {
            tracker.track_future(async move {
                let _permit = permit;
                Session::new(app, room, role, socket).run().await;
            })
        })
}

/// Why a session ends: the close frame it gets.
struct Close(u16, String);

impl Close {
    /// A close with `reason` cut to what a close frame holds (a control frame carries at most
    /// 125 bytes: the code and 123 of reason), on a character boundary.
    fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        let max = game_core::protocol::MAX_REASON_BYTES;
        if reason.len() > max {
            let mut end = max;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Self(code, reason)
    }
}

struct Session {
    app: App,
    room: Room,
    role: Role,
    socket: WebSocket,
    started: Instant,
    budget: InputBudget,
    chat: crate::limits::Budget,
}

impl Session {
    fn new(app: App, room: Room, role: Role, socket: WebSocket) -> Self {
        Self {
            room,
            role,
            socket,
            started: Instant::now(),
            budget: InputBudget::new(app.cfg.input_rate()),
            chat: crate::chat::budget(&app),
            app,
        }
    }

    async fn run(mut self) {
        let presence = Presence::new(
            self.app.metrics.clone(),
            Transport::Ws,
            self.role,
            &self.room,
        );
        let outcome = self.serve().await.or_else(|| {
            // A write cut short by shutdown still owes the client its reason.
            self.app
                .shutdown
                .is_cancelled()
                .then(|| Close::new(close::GOING_AWAY, "the server is shutting down"))
        });
        drop(presence);
        if let Some(Close(code, reason)) = outcome {
            tracing::debug!(room = %self.room.id(), code, reason, "closing websocket");
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            // The closing handshake: send ours, then read until the client's close (or EOF), so
            // the socket is not dropped with unread data — which would reset it and could lose
            // the close frame on its way. Bounded: a client that never answers costs a second.
            let socket = &mut self.socket;
            let _ = tokio::time::timeout(Duration::from_secs(1), async move {
                socket.send(Message::Close(Some(frame))).await?;
                while let Some(msg) = socket.recv().await {
                    if matches!(msg?, Message::Close(_)) {
                        break;
                    }
                }
                Ok::<(), axum::Error>(())
            })
            .await;
        }
    }

    /// The whole session; `Some` is the close frame to send, `None` a client already gone.
    async fn serve(&mut self) -> Option<Close> {
        let wait = Duration::from_millis(self.app.cfg.handshake_timeout_ms);
        let hello = tokio::select! {
            _ = self.app.shutdown.cancelled() => return Some(Close::new(close::GOING_AWAY, "the server is shutting down")),
            r = tokio::time::timeout(wait, self.socket.recv()) => match r {
                Err(_) => {
                    self.app.metrics.reject(Rejection::HandshakeTimeout);
                    return Some(Close::new(close::HANDSHAKE_TIMEOUT, "no Hello within the handshake timeout"));
                }
                Ok(msg) => self.decode(msg)?,
            },
        };
        let hello = match hello {
            Ok(msg) => msg,
            Err(close) => return Some(close),
        };
        let ClientMsg::Hello {
            version,
            name,
            token,
            last_tick,
        } = hello
        else {
            self.app.metrics.reject(Rejection::Malformed);
            return Some(Close::new(
                close::PROTOCOL_ERROR,
                "the first message must be Hello",
            ));
        };
        if version != PROTOCOL_VERSION {
            self.app.metrics.reject(Rejection::VersionMismatch);
            return Some(Close::new(
                close::VERSION_MISMATCH,
                format!(
                    "protocol version {version} is not supported; this server speaks {PROTOCOL_VERSION}"
                ),
            ));
        }
        let joined = match (self.role, token) {
            (Role::Spectator, _) => None,
            (Role::Player, Some(token)) => Some(self.room.resume(token).await),
            (Role::Player, None) => Some(self.room.join(clean_name(&name)).await),
        };
        let joined = match joined.transpose() {
            Ok(j) => j,
            Err(e) => {
                let (code, why) = match e {
                    JoinError::Full => (close::ROOM_FULL, Rejection::RoomFull),
                    JoinError::BadToken => (close::BAD_TOKEN, Rejection::BadToken),
                    JoinError::Closed => {
                        return Some(Close::new(close::ROOM_CLOSED, e.to_string()));
                    }
                };
                self.app.metrics.reject(why);
                return Some(Close::new(code, e.to_string()));
            }
        };
        let welcome = ServerMsg::Welcome {
            version: PROTOCOL_VERSION,
            room: self.room.id().to_owned(),
            entity: joined.as_ref().map_or(0, |j| j.ship),
            token: joined.as_ref().map(|j| j.token),
            tick_rate: self.room.tick_rate(),
            send_rate: self.room.send_rate(),
            tick: self
                .room
                .stats()
                .tick
                .load(std::sync::atomic::Ordering::Relaxed),
            arena: self.room.arena().clone(),
        };
        self.send(codec::encode_server(&welcome)).await?;
        // A cursor ahead of the room is the client's mistake; a keyframe puts it right.
        let ship = joined.as_ref().map(|j| j.ship);
        let follower = Follower::new(self.room.clone(), last_tick, ship)
            .or_else(|_| Follower::new(self.room.clone(), None, ship))
            .ok()?;
        let close = self.stream(joined.as_ref(), follower).await;
        if let (Some(j), Some(Close(close::NORMAL, _))) = (&joined, &close) {
            self.room.leave(j.ship, j.token).await;
        }
        close
    }

    /// Frames out, messages in, pings, until something ends the session.
    async fn stream(&mut self, joined: Option<&Joined>, mut follower: Follower) -> Option<Close> {
        let ping_every = Duration::from_secs(self.app.cfg.ping_interval_secs);
        let idle_after = Duration::from_secs(self.app.cfg.idle_timeout_secs);
        let mut pings = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let mut last_heard = Instant::now();
        let replaced = joined.map(|j| j.replaced.clone()).unwrap_or_default();
        // Made once, not on every pass: each is a waiter on its token, and this loop turns for
        // every frame and every message (the profile showed them, BENCHMARKS.md).
        let stop = self.app.shutdown.clone();
        let shutdown = stop.cancelled();
        let taken_over = replaced.cancelled();
        tokio::pin!(shutdown, taken_over);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    return Some(Close::new(close::GOING_AWAY, "the server is shutting down"));
                }
                _ = &mut taken_over => {
                    return Some(Close::new(close::REPLACED, "this session was resumed by another connection"));
                }
                next = follower.next(&self.app.shutdown) => match next {
                    Next::Frame { published, payload, chat_from, .. } => {
                        for line in &published.chat[chat_from..] {
                            self.send(codec::encode_server(&crate::render::chat_msg(line))).await?;
                        }
                        let bytes = published.frame_bytes(&payload, follower.ack(&published));
                        let len = bytes.len();
                        self.send_raw(Message::Binary(bytes)).await?;
                        self.app.metrics.frame_out(Transport::Ws, len, payload.base.is_none());
                    }
                    Next::Closed(code, reason) => return Some(Close::new(code, reason)),
                    Next::Shutdown => {
                        return Some(Close::new(close::GOING_AWAY, "the server is shutting down"));
                    }
                },
                msg = self.socket.recv() => {
                    last_heard = Instant::now();
                    let msg = match self.decode(msg)? {
                        Ok(msg) => msg,
                        Err(close) => return Some(close),
                    };
                    if let Some(close) = self.handle(msg, joined).await? {
                        return Some(close);
                    }
                }
                _ = pings.tick() => {
                    if last_heard.elapsed() >= idle_after {
                        self.app.metrics.reject(Rejection::IdleTimeout);
                        return Some(Close::new(close::IDLE_TIMEOUT, "nothing heard from the client for too long"));
                    }
                    let nanos = self.started.elapsed().as_nanos() as u64;
                    self.send_raw(Message::Ping(nanos.to_le_bytes().to_vec().into())).await?;
                }
            }
        }
    }

    /// Handles one client message; `Some(Some(close))` ends the session.
    async fn handle(&mut self, msg: ClientMsg, joined: Option<&Joined>) -> Option<Option<Close>> {
        match msg {
            ClientMsg::Input { seq, input } => {
                let Some(j) = joined else {
                    self.app.metrics.reject(Rejection::SpectatorInput);
                    return Some(Some(Close::new(
                        close::POLICY,
                        "spectators cannot send input",
                    )));
                };
                match self.budget.spend() {
                    Verdict::Accept => {}
                    Verdict::Drop => {
                        self.app.metrics.reject(Rejection::InputRate);
                        return Some(None);
                    }
                    Verdict::Flood => {
                        self.app.metrics.reject(Rejection::InputFlood);
                        let rate = self.budget.rate();
                        return Some(Some(Close::new(
                            close::POLICY,
                            format!("input flood: more than {rate} inputs per second"),
                        )));
                    }
                }
                let input = if input.is_valid() {
                    input
                } else {
                    self.app.metrics.reject(Rejection::InputOutOfRange);
                    input.sanitized()
                };
                match j.inputs.try_send((seq, input)) {
                    Ok(()) => self.app.metrics.input_in(),
                    Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                        self.app.metrics.reject(Rejection::InputQueueFull);
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                        return Some(Some(Close::new(close::ROOM_CLOSED, "the room closed")));
                    }
                }
            }
            ClientMsg::Ping { id } => {
                let tick = self
                    .room
                    .stats()
                    .tick
                    .load(std::sync::atomic::Ordering::Relaxed);
                self.send(codec::encode_server(&ServerMsg::Pong { id, tick }))
                    .await?;
            }
            // The server measures round trips with WebSocket pings; an app-level Pong is fine.
            ClientMsg::Pong { .. } => {}
            ClientMsg::Chat { text } => {
                let said = match joined {
                    None => {
                        self.app.metrics.reject(Rejection::Chat);
                        Err("spectators cannot chat".to_owned())
                    }
                    Some(j) => {
                        crate::chat::say(&self.app, &self.room, j.ship, &mut self.chat, &text)
                            .map_err(|e| e.to_string())
                    }
                };
                if let Err(why) = said {
                    // Told to this client only; the session goes on.
                    let notice = ServerMsg::Chat {
                        from: 0,
                        name: "server".to_owned(),
                        text: why,
                    };
                    self.send(codec::encode_server(&notice)).await?;
                }
            }
            ClientMsg::Leave => return Some(Some(Close::new(close::NORMAL, "left the room"))),
            ClientMsg::Hello { .. } => {
                self.app.metrics.reject(Rejection::Malformed);
                return Some(Some(Close::new(
                    close::PROTOCOL_ERROR,
                    "Hello was already received",
                )));
            }
        }
        Some(None)
    }

    /// Turns what the socket produced into a client message (`Ok`), a close to send (`Err`), or
    /// `None` when the client is gone. Control frames come back as a harmless `Pong`.
    fn decode(
        &mut self,
        msg: Option<Result<Message, axum::Error>>,
    ) -> Option<Result<ClientMsg, Close>> {
        let bad = |app: &App, why, code, reason: String| {
            app.metrics.reject(why);
            Some(Err(Close::new(code, reason)))
        };
        match msg? {
            Ok(Message::Binary(bytes)) => match codec::decode_client(&bytes) {
                Ok(msg) => Some(Ok(msg)),
                Err(e @ CodecError::TooBig { .. }) => {
                    bad(&self.app, Rejection::TooBig, close::TOO_BIG, e.to_string())
                }
                Err(e) => bad(
                    &self.app,
                    Rejection::Malformed,
                    close::PROTOCOL_ERROR,
                    e.to_string(),
                ),
            },
            Ok(Message::Text(_)) => bad(
                &self.app,
                Rejection::Malformed,
                close::UNSUPPORTED_DATA,
                "tickwire speaks binary messages".to_owned(),
            ),
            Ok(Message::Ping(_) | Message::Pong(_)) => Some(Ok(ClientMsg::Pong { id: 0 })),
            Ok(Message::Close(_)) => None,
            Err(e) => {
                // tungstenite refuses oversized messages and frames while reading them.
                let text = e.to_string();
                if text.contains("too long")
                    || text.contains("too big")
                    || text.contains("Space limit")
                {
                    bad(
                        &self.app,
                        Rejection::TooBig,
                        close::TOO_BIG,
                        format!(
                            "message larger than {} bytes",
                            self.app.cfg.max_message_bytes
                        ),
                    )
                } else {
                    tracing::debug!(error = %e, "websocket read failed");
                    None
                }
            }
        }
    }

    async fn send(&mut self, bytes: Vec<u8>) -> Option<()> {
        let len = bytes.len();
        self.send_raw(Message::Binary(bytes.into())).await?;
        self.app.metrics.bytes_out(Transport::Ws, len);
        Some(())
    }

    /// Writes one message within the write timeout; `None` when the client cannot take it.
    async fn send_raw(&mut self, msg: Message) -> Option<()> {
        let limit = Duration::from_secs(self.app.cfg.write_timeout_secs);
        tokio::select! {
            r = tokio::time::timeout(limit, self.socket.send(msg)) => match r {
                Ok(Ok(())) => Some(()),
                Ok(Err(_)) => None,
                Err(_) => {
                    self.app.metrics.reject(Rejection::WriteTimeout);
                    tracing::debug!(room = %self.room.id(), "client did not take a frame in time");
                    None
                }
            },
            _ = self.app.shutdown.cancelled() => None,
        }
    }
}

/// A display name with control characters removed, trimmed, never empty.
pub fn clean_name(name: &str) -> String {
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim();
    if name.is_empty() {
        "pilot".to_owned()
    } else {
        name.to_owned()
    }
}
