//! WebSocket sessions: players (`GET /api/rooms/{id}/ws`) and spectators (`?spectate=1`).
//!
//! The upgrade is answered here, and the session owns the socket after it ([`crate::ws_link`]).
//! One task per connection reads the `Hello`, joins or resumes through the room, sends the
//! `Welcome`, then loops: it reads the client, pings, and sends the room's frames (a small
//! header with this player's acknowledged input sequence in front of the room's shared delta)
//! — itself while it is behind, and through
//! its room's shared writer ([`crate::ws_hub`]) once caught up. A slow reader holds up only its
//! own socket, whose frames go back to its task, which skips to the newest send — conflation,
//! no queue. A player's inputs go to the room: read here, through its bounded per-player queue;
//! and, while the client sends nothing but inputs, read by the room itself at its ticks
//! (`ws_link::Reader`), so an input costs no wake-up of this task.
//!
//! Every way out ends with a close frame that has a [`close`] code and a reason.

use crate::App;
use crate::api::AppError;
use crate::follow::{Follower, Next, Presence};
use crate::metrics::{Rejection, Role, Transport};
use crate::room::{JoinError, Joined, Room};
use crate::serve::Counted;
use crate::ws_link::{self, Admitted, Io, Link, Reader, Seat};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use game_core::codec::{self, CodecError};
use game_core::protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg, close};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocket, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

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
    mut req: Request,
) -> Response {
    let Some(room) = app.registry.get(&id) else {
        return AppError::room_not_found(&id).into_response();
    };
    let accept = match accept_key(req.headers()) {
        Ok(key) => key,
        Err(why) => return AppError::not_an_upgrade(why).into_response(),
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return AppError::not_an_upgrade("this connection cannot be upgraded").into_response();
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
    let tracker = app.tracker.clone();
    tracker.spawn(async move {
        let _permit = permit;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        // The connection is the accept loop's `Counted` socket; from here the session owns it,
        // with whatever the client sent after its request (a `Hello` may come in the same write).
        match upgraded.downcast::<TokioIo<Counted>>() {
            Ok(parts) => {
                let conn = parts.io.into_inner();
                Session::new(app, room, role, conn, parts.read_buf)
                    .run()
                    .await;
            }
            Err(_) => tracing::error!("an upgraded connection is not a served socket"),
        }
    });
    let mut res = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    res
}

/// The `Sec-WebSocket-Accept` answer to a valid upgrade request, or what is wrong with it.
fn accept_key(headers: &HeaderMap) -> Result<HeaderValue, &'static str> {
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") {
        return Err("the request's Connection header does not ask for an upgrade");
    }
    if !has_token(header::UPGRADE, "websocket") {
        return Err("the request's Upgrade header does not name websocket");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err("Sec-WebSocket-Version must be 13");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err("the request has no Sec-WebSocket-Key");
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    HeaderValue::from_str(&accept).map_err(|_| "Sec-WebSocket-Key is not valid")
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

/// tungstenite's protocol engine over a session's link.
struct Socket(WebSocket<Io>);

/// What [`Socket::receive`] got.
enum Received {
    /// What the client sent (`None`: it is gone).
    Msg(Option<tungstenite::Result<Message>>),
    /// The client had nothing more, and the room reads it from now on.
    Handed,
}

impl Socket {
    /// The next thing the client sent: `None` when it is gone. Cancel safe: what has arrived
    /// stays in the link or in tungstenite's buffer.
    async fn recv(&mut self) -> Option<tungstenite::Result<Message>> {
        match self.receive(false).await {
            Received::Msg(msg) => msg,
            Received::Handed => None,
        }
    }

    /// The next thing the client sent; or, with `hand_off` and nothing to read, the reading
    /// handed to the room ([`ws_link::Link::hand_to_room`]).
    async fn receive(&mut self, hand_off: bool) -> Received {
        // Before anything is read, so that a cancelled `recv` loses nothing: reads that never
        // wait would otherwise never give the runtime back to its other tasks.
        tokio::task::consume_budget().await;
        loop {
            match self.0.read() {
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Received::Msg(None);
                }
                r => return Received::Msg(Some(r)),
            }
            let link = self.0.get_ref().link();
            if hand_off && link.hand_to_room() {
                return Received::Handed;
            }
            if link.tcp().readable().await.is_err() {
                return Received::Msg(None);
            }
        }
    }
}

struct Session {
    app: App,
    room: Room,
    role: Role,
    link: Arc<Link>,
    socket: Socket,
    started: Instant,
    chat: crate::limits::Budget,
}

impl Session {
    fn new(app: App, room: Room, role: Role, conn: Counted, early: bytes::Bytes) -> Self {
        let limit = app.cfg.max_message_bytes;
        // A client that does not read holds at most a frame and this much besides.
        let link = Arc::new(Link::new(
            conn,
            codec::SERVER_MSG_LIMIT + 64 * 1024,
            &early,
            app.cfg.input_rate(),
        ));
        let config = WebSocketConfig::default()
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit))
            // tungstenite zero-fills its read buffer before every read, including the one that
            // finds nothing: its 128 KiB default cost 44 % of server CPU at 1,000 players, and
            // 4 KiB still 2 %. Inputs are a few dozen bytes, and a message of the most a client
            // may send (1 KiB) takes two reads of 512.
            .read_buffer_size(512)
            // Writes go straight to the link, which keeps what the socket does not take.
            .write_buffer_size(0);
        let io = Io::new(link.clone());
        let socket = Socket(WebSocket::from_raw_socket(
            io,
            tungstenite::protocol::Role::Server,
            Some(config),
        ));
        Self {
            room,
            role,
            link,
            socket,
            started: Instant::now(),
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
        // Frames stop here, whoever was sending them, and the room reads no more.
        {
            let mut wire = self.link.lock();
            wire.seat = Seat::Own;
            wire.reader = Reader::Session;
        }
        self.room.ws_hub().leave(&self.link);
        let ws = &mut self.socket;
        let link = &self.link;
        // The closing handshake: send ours, then read until the client's close (or EOF), so
        // the socket is not dropped with unread data — which would reset it and could lose the
        // close frame on its way. When the client closed first, this sends tungstenite's
        // answer. Bounded: a client that never answers costs a second.
        let frame = outcome.map(|Close(code, reason)| {
            tracing::debug!(room = %self.room.id(), code, reason, "closing websocket");
            CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(1), async move {
            if let Some(frame) = frame {
                ws.0.close(Some(frame)).map_err(std::io::Error::other)?;
            } else {
                ws.0.flush().map_err(std::io::Error::other)?;
            }
            loop {
                while !link.flush()? {
                    link.tcp().writable().await?;
                }
                if !matches!(ws.recv().await, Some(Ok(_))) {
                    break;
                }
            }
            Ok::<(), std::io::Error>(())
        })
        .await;
        // The client sees the end now, even if a shard's pass still holds the link.
        self.link.shutdown();
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
            (Role::Player, Some(token)) => {
                Some(self.room.resume(token, Some(self.link.clone())).await)
            }
            (Role::Player, None) => Some(
                self.room
                    .join(clean_name(&name), Some(self.link.clone()))
                    .await,
            ),
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
        self.send(codec::encode_server(&welcome))?;
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

    /// Frames out, messages in, pings, until something ends the session. The frames come from
    /// `follower` while the session sends them itself, and from a shard of the room's shared
    /// writer while it is caught up (`own` is `None` then).
    async fn stream(&mut self, joined: Option<&Joined>, follower: Follower) -> Option<Close> {
        let ping_every = Duration::from_secs(self.app.cfg.ping_interval_secs);
        let idle_after = Duration::from_secs(self.app.cfg.idle_timeout_secs);
        let write_limit = Duration::from_secs(self.app.cfg.write_timeout_secs);
        let mut pings = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let replaced = joined.map(|j| j.replaced.clone()).unwrap_or_default();
        let ship = joined.map(|j| j.ship);
        let link = self.link.clone();
        let mut own = Some(follower);
        // Whether this task reads the client; a player's room reads it while it only sends
        // inputs (see `ws_link`).
        let mut reading = true;
        let hand_off = joined.is_some();
        // Made once, not on every pass: each is a waiter on its token, and this loop turns for
        // every frame and every message (the profile showed them, BENCHMARKS.md).
        let stop = self.app.shutdown.clone();
        let shutdown = stop.cancelled();
        let taken_over = replaced.cancelled();
        tokio::pin!(shutdown, taken_over);
        loop {
            let stuck = link.stuck_since();
            tokio::select! {
                biased;
                // First: while this task reads, a wake-up is almost always a message, and
                // taking it before polling the rest halves the branches polled per message (the
                // others are polled on the pass that finds the socket empty, which comes next;
                // `recv` yields to the runtime every so often, so a client that never stops
                // sending cannot hold it). A player with nothing more to say hands the reading
                // to its room, which gives it back at anything but an input.
                received = self.socket.receive(hand_off), if reading => {
                    let msg = match received {
                        Received::Msg(msg) => msg,
                        Received::Handed => {
                            reading = false;
                            continue;
                        }
                    };
                    link.heard_now();
                    let msg = match self.decode(msg)? {
                        Ok(msg) => msg,
                        Err(close) => return Some(close),
                    };
                    if let Some(close) = self.handle(msg, joined)? {
                        return Some(close);
                    }
                }
                _ = &mut shutdown => {
                    return Some(Close::new(close::GOING_AWAY, "the server is shutting down"));
                }
                _ = &mut taken_over => {
                    return Some(Close::new(close::REPLACED, "this session was resumed by another connection"));
                }
                asked = link.room_done(), if !reading => {
                    reading = true;
                    if let Some((code, reason)) = asked {
                        return Some(Close::new(code, reason));
                    }
                }
                _ = link.handed_back(), if own.is_none() => {
                    let returned = {
                        let mut wire = link.lock();
                        let seat = wire.seat;
                        if let Seat::Returned(_) = seat {
                            wire.seat = Seat::Own;
                        }
                        seat
                    };
                    if let Seat::Returned(tick) = returned {
                        own = Some(
                            // A tick the room has sent is never ahead of it.
                            Follower::new(self.room.clone(), Some(tick), ship).ok()?,
                        );
                    }
                }
                r = link.tcp().writable(), if stuck.is_some() => {
                    if r.is_err() || link.flush().is_err() {
                        return None;
                    }
                }
                _ = crate::follow::sleep_until_some(stuck.map(|t| t + write_limit)) => {
                    self.app.metrics.reject(Rejection::WriteTimeout);
                    tracing::debug!(room = %self.room.id(), "client did not take a frame in time");
                    return None;
                }
                next = next_of(own.as_mut(), &self.app.shutdown), if stuck.is_none() => match next {
                    Next::Frame { published, payload, chat_from, .. } => {
                        let mut out = Vec::new();
                        ws_link::chat_messages(&published.chat[chat_from..], &mut out);
                        let ack = ship.map_or(0, |s| published.ack_for(s));
                        ws_link::frame_head(&published, &payload, ack, &mut out);
                        let clear = {
                            let mut wire = link.lock();
                            link.write(&mut wire, &[&out, &payload.bytes]).ok()?
                        };
                        let len = out.len() + payload.bytes.len();
                        self.app.metrics.frame_out(Transport::Ws, len, payload.base.is_none());
                        // Caught up, with nothing on its way: a shard sends from here on.
                        if let Some(f) = own.as_ref()
                            && clear
                            && !f.ready()
                            && self.room.ws_hub().join(&self.app, &self.room, published.tick, &link, ship)
                        {
                            own = None;
                        }
                    }
                    Next::Closed(code, reason) => return Some(Close::new(code, reason)),
                    Next::Shutdown => {
                        return Some(Close::new(close::GOING_AWAY, "the server is shutting down"));
                    }
                },
                _ = pings.tick() => {
                    if link.heard().elapsed() >= idle_after {
                        self.app.metrics.reject(Rejection::IdleTimeout);
                        return Some(Close::new(close::IDLE_TIMEOUT, "nothing heard from the client for too long"));
                    }
                    let nanos = self.started.elapsed().as_nanos() as u64;
                    self.control(Message::Ping(nanos.to_le_bytes().to_vec().into()))?;
                }
            }
        }
    }

    /// Handles one client message; `Some(Some(close))` ends the session.
    fn handle(&mut self, msg: ClientMsg, joined: Option<&Joined>) -> Option<Option<Close>> {
        match msg {
            ClientMsg::Input { seq, input } => {
                let Some(j) = joined else {
                    self.app.metrics.reject(Rejection::SpectatorInput);
                    return Some(Some(Close::new(
                        close::POLICY,
                        "spectators cannot send input",
                    )));
                };
                let admitted = self.link.lock().admit(input, &self.app.metrics);
                let input = match admitted {
                    Admitted::Input(input) => input,
                    Admitted::Dropped => return Some(None),
                    Admitted::Flood(reason) => {
                        return Some(Some(Close::new(close::POLICY, reason)));
                    }
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
                self.send(codec::encode_server(&ServerMsg::Pong { id, tick }))?;
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
                    self.send(codec::encode_server(&notice))?;
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
        msg: Option<tungstenite::Result<Message>>,
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
            Ok(Message::Frame(_)) => Some(Ok(ClientMsg::Pong { id: 0 })),
            // tungstenite refuses oversized messages and frames while reading them.
            Err(tungstenite::Error::Capacity(e)) => {
                tracing::debug!(error = %e, "websocket message too big");
                bad(
                    &self.app,
                    Rejection::TooBig,
                    close::TOO_BIG,
                    format!(
                        "message larger than {} bytes",
                        self.app.cfg.max_message_bytes
                    ),
                )
            }
            Err(e) => {
                tracing::debug!(error = %e, "websocket read failed");
                None
            }
        }
    }

    /// Sends one message of ours, framed here like the frames (tungstenite frames only control
    /// messages, so its buffers stay small); `None` when the client is gone or not reading at
    /// all. The link keeps what the socket does not take yet; the write timeout then runs in
    /// [`Session::stream`].
    fn send(&mut self, bytes: Vec<u8>) -> Option<()> {
        let mut header = Vec::with_capacity(10);
        ws_link::binary_header(bytes.len(), &mut header);
        let mut wire = self.link.lock();
        self.link.write(&mut wire, &[&header, &bytes]).ok()?;
        self.app
            .metrics
            .bytes_out(Transport::Ws, header.len() + bytes.len());
        Some(())
    }

    /// Sends a control message through tungstenite.
    fn control(&mut self, msg: Message) -> Option<()> {
        self.socket.0.send(msg).ok()
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

/// The next send from `follower`; never, without one (a shard sends the frames then).
async fn next_of(
    follower: Option<&mut Follower>,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Next {
    match follower {
        Some(f) => f.next(shutdown).await,
        None => std::future::pending().await,
    }
}
