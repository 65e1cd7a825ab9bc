//! Following a room: the pull loop every transport shares.
//!
//! A [`Follower`] holds what its client last received (an `Arc<Snapshot>`) and waits on the
//! room's `watch` channel for anything newer; [`Follower::next`] then returns the newest send
//! with the payload that takes this client there — the room's shared delta, a delta of its own
//! after skipped sends, or a keyframe (see [`crate::fanout`]). WebSocket, SSE, HTTP streaming
//! and polling differ only in how they write the result, so resume-by-tick and conflation work
//! the same everywhere.
//!
//! [`Presence`] counts a live client in `/metrics` (by transport and role) and, for spectators,
//! in its room, for exactly as long as it lives.

use crate::api::AppError;
use crate::fanout::{Payload, Published};
use crate::metrics::{Metrics, Role, Transport};
use crate::room::{CHAT_BACKLOG, Room};
use bytes::Bytes;
use game_core::delta::Encoder;
use game_core::protocol::close;
use game_core::{NetId, Snapshot};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a follower has to deliver next.
pub enum Next {
    /// A newer send and the payload that reaches it from what the client holds.
    Frame {
        /// The send.
        published: Arc<Published>,
        /// The bytes to deliver.
        payload: Payload,
        /// What the client held before (the payload's baseline; `None` for a keyframe).
        from: Option<Arc<Snapshot>>,
        /// Where the chat lines this client has not had start in `published.chat`; they go
        /// out before the frame.
        chat_from: usize,
    },
    /// The room is closing or gone: the code and reason to pass on.
    Closed(u16, String),
    /// The server is shutting down.
    Shutdown,
}

/// One client's position in a room's stream of sends.
pub struct Follower {
    room: Room,
    rx: watch::Receiver<Arc<Published>>,
    have: Option<Arc<Snapshot>>,
    encoder: Encoder,
    ship: Option<NetId>,
    /// The send up to which this client has had the chat (`None`: a newcomer).
    chat_seen: Option<u32>,
}

impl Follower {
    /// Follows `room` from tick `since` (`None`: from a keyframe). A `since` ahead of the room
    /// is refused; one that left the history (or never was a send) gets a keyframe.
    pub fn new(room: Room, since: Option<u32>, ship: Option<NetId>) -> Result<Self, AppError> {
        let rx = room.subscribe();
        let latest = rx.borrow().tick;
        if let Some(t) = since
            && t > latest
        {
            return Err(AppError::cursor_in_future(t, latest));
        }
        let have = since.and_then(|t| room.baseline(t));
        Ok(Self {
            room,
            rx,
            have,
            encoder: Encoder::new(),
            ship,
            chat_seen: since,
        })
    }

    /// The room followed.
    pub fn room(&self) -> &Room {
        &self.room
    }

    /// The tick of what the client holds, the cursor it resumes from.
    pub fn cursor(&self) -> Option<u32> {
        self.have.as_ref().map(|s| s.tick)
    }

    /// The acknowledged input sequence of this follower's player in `published` (0: spectator).
    pub fn ack(&self, published: &Published) -> u32 {
        self.ship.map_or(0, |s| published.ack_for(s))
    }

    /// Whether something newer than the client's state has been published (or the room closed).
    pub fn ready(&self) -> bool {
        let p = self.rx.borrow();
        p.closing.is_some() || self.cursor() != Some(p.tick)
    }

    /// Waits for a send newer than what the client holds, and counts it as delivered. Cancel
    /// safe: nothing changes until it returns.
    pub async fn next(&mut self, shutdown: &CancellationToken) -> Next {
        loop {
            let published = self.rx.borrow_and_update().clone();
            if let Some((code, reason)) = &published.closing {
                return Next::Closed(*code, reason.clone());
            }
            if let Some(payload) = published.payload_for(self.have.as_deref(), &mut self.encoder) {
                let from = self.have.replace(published.snapshot.clone());
                let from = if payload.base.is_some() { from } else { None };
                let unseen = published.chat_after(self.chat_seen, CHAT_BACKLOG).len();
                self.chat_seen = Some(published.tick);
                return Next::Frame {
                    chat_from: published.chat.len() - unseen,
                    published,
                    payload,
                    from,
                };
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Next::Shutdown,
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        return Next::Closed(close::ROOM_CLOSED, "the room closed".to_owned());
                    }
                }
            }
        }
    }
}

/// Counts one live client for as long as it exists.
pub struct Presence {
    metrics: Arc<Metrics>,
    transport: Transport,
    role: Role,
    room: Option<Room>,
}

impl Presence {
    /// Counts a client of `room` now; uncounts it on drop.
    pub fn new(metrics: Arc<Metrics>, transport: Transport, role: Role, room: &Room) -> Self {
        metrics.connection(transport, role, 1);
        let room = (role == Role::Spectator).then(|| room.clone());
        if let Some(r) = &room {
            r.stats().spectators.fetch_add(1, Relaxed);
        }
        Self {
            metrics,
            transport,
            role,
            room,
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.metrics.connection(self.transport, self.role, -1);
        if let Some(r) = &self.room {
            r.stats().spectators.fetch_sub(1, Relaxed);
        }
    }
}

/// The query string every HTTP transport takes.
#[derive(Debug, Default, serde::Deserialize)]
pub struct FollowQuery {
    /// Resume from this tick.
    pub since: Option<String>,
    /// A player's session token.
    pub token: Option<String>,
    /// `binary` (default) or `json`.
    pub format: Option<String>,
    /// Long polling: seconds to hold the request.
    pub wait: Option<String>,
}

/// An HTTP client set up to follow a room.
pub struct Opened {
    /// Its position in the room's sends.
    pub follower: Follower,
    /// Its format.
    pub format: crate::render::Format,
    /// Its ship, for players.
    pub ship: Option<NetId>,
    /// Counts it while it lives.
    pub presence: Presence,
}

/// Parses a tick cursor (`since`, `Last-Event-ID`).
pub fn parse_cursor(v: &str) -> Result<u32, AppError> {
    v.trim().parse().map_err(|_| AppError::bad_cursor(v))
}

/// Resolves the room, the token, the cursor and the format of an HTTP follower, or the error to
/// answer with before anything streams.
pub fn open(
    app: &crate::App,
    room_id: &str,
    q: &FollowQuery,
    since: Option<u32>,
    transport: Transport,
) -> Result<Opened, AppError> {
    let room = app
        .registry
        .get(room_id)
        .ok_or_else(|| AppError::room_not_found(room_id))?;
    let format = crate::render::Format::parse(q.format.as_deref())?;
    let ship = match &q.token {
        None => None,
        Some(t) => Some(app.http_players.ship(t, room_id).ok_or_else(|| {
            app.metrics.reject(crate::metrics::Rejection::BadToken);
            AppError::bad_token()
        })?),
    };
    let follower = Follower::new(room.clone(), since, ship)?;
    let role = if ship.is_some() {
        Role::Player
    } else {
        Role::Spectator
    };
    let presence = Presence::new(app.metrics.clone(), transport, role, &room);
    Ok(Opened {
        follower,
        format,
        ship,
        presence,
    })
}

/// A long-lived HTTP follower (SSE, streaming) while its response lives: dropped, with its
/// connection permit and presence, when the client goes away.
pub struct Live {
    /// The server.
    pub app: crate::App,
    /// The follower and its format.
    pub opened: Opened,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Live {
    /// Splits the follower off, keeping what counts the client (see [`crate::hub`]).
    pub fn detach(self) -> (Follower, Held) {
        let Opened {
            follower,
            format,
            ship,
            presence,
        } = self.opened;
        let held = Held {
            app: self.app,
            format,
            ship,
            presence,
            _permit: self._permit,
        };
        (follower, held)
    }
}

/// A live HTTP follower without its [`Follower`]: its counts and its connection permit, while a
/// shared writer serves it.
pub struct Held {
    app: crate::App,
    format: crate::render::Format,
    ship: Option<NetId>,
    presence: Presence,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Held {
    /// Serves it from `follower` again.
    pub fn attach(self, follower: Follower) -> Live {
        Live {
            app: self.app,
            opened: Opened {
                follower,
                format: self.format,
                ship: self.ship,
                presence: self.presence,
            },
            _permit: self._permit,
        }
    }
}

/// Opens a long-lived HTTP follower: a connection permit (refused with 503 when none is left),
/// then [`open`].
pub fn open_live(
    app: &crate::App,
    room_id: &str,
    q: &FollowQuery,
    since: Option<u32>,
    transport: Transport,
) -> Result<Live, AppError> {
    let permit = app.connections.clone().try_acquire_owned().map_err(|_| {
        app.metrics
            .reject(crate::metrics::Rejection::TooManyConnections);
        AppError::too_many_connections()
    })?;
    let opened = open(app, room_id, q, since, transport)?;
    Ok(Live {
        app: app.clone(),
        opened,
        _permit: permit,
    })
}

/// The body of a live follower through hyper: `first`, then one chunk per [`Next`] as `kind`
/// renders it (a send's chat lines and frame together, or the close, which is the last), and
/// `keepalive` whenever that long has passed without a chunk.
pub fn messages(
    live: Live,
    first: Bytes,
    kind: crate::direct::Kind,
    keepalive: Option<(Duration, &'static [u8])>,
) -> impl futures_util::Stream<Item = Bytes> + Send {
    let quiet_until = move |now: Instant| keepalive.map(|(every, _)| now + every);
    futures_util::stream::unfold(
        (live, Some(first), quiet_until(Instant::now()), false),
        move |(mut live, first, quiet, done)| async move {
            if let Some(first) = first {
                return Some((first, (live, None, quiet, false)));
            }
            if done {
                return None;
            }
            let quiet_spell = sleep_until_some(quiet);
            tokio::select! {
                next = live.opened.follower.next(&live.app.shutdown) => {
                    let chunk = kind.render(live.opened.format, live.opened.ship, next);
                    chunk.count(&live.app, kind.transport());
                    let (bytes, last) = (chunk.bytes, chunk.last);
                    Some((bytes, (live, None, quiet_until(Instant::now()), last)))
                }
                _ = quiet_spell => {
                    let comment = Bytes::from_static(keepalive.map_or(&[][..], |(_, c)| c));
                    Some((comment, (live, None, quiet_until(Instant::now()), false)))
                }
            }
        },
    )
}

/// What a transport makes of a [`Next`] for one client: the bytes to write.
pub struct Chunk {
    /// The bytes.
    pub bytes: Bytes,
    /// Whether they end the stream (the close).
    pub last: bool,
    /// Whether they carry a keyframe.
    pub keyframe: bool,
}

/// How a transport writes the pieces of a send, for [`Chunk::of`].
pub trait Pieces {
    /// The close message (`code`, `reason`).
    fn close(&self, code: u16, reason: String) -> Bytes;
    /// The frame for a client holding `from` (`ack`: its acknowledged input).
    fn frame(
        &self,
        published: &Published,
        payload: &Payload,
        from: Option<&Snapshot>,
        ack: u32,
    ) -> Bytes;
    /// One chat line.
    fn chat(&self, line: &crate::fanout::ChatLine) -> Bytes;
}

impl Chunk {
    /// `next` for one client (`ship`: a player's, for its ack) as `pieces` writes it: the chat
    /// lines it has not had, then the frame — or the close, which ends the stream.
    pub fn of(next: Next, ship: Option<NetId>, pieces: &impl Pieces) -> Self {
        if let Some((code, reason)) = next.close() {
            return Self {
                bytes: pieces.close(code, reason),
                last: true,
                keyframe: false,
            };
        }
        let Next::Frame {
            published,
            payload,
            from,
            chat_from,
        } = next
        else {
            return Self {
                bytes: Bytes::new(),
                last: true,
                keyframe: false,
            };
        };
        let ack = ship.map_or(0, |s| published.ack_for(s));
        let keyframe = payload.base.is_none();
        let frame = pieces.frame(&published, &payload, from.as_deref(), ack);
        let chat = &published.chat[chat_from..];
        if chat.is_empty() {
            return Self {
                bytes: frame,
                last: false,
                keyframe,
            };
        }
        let mut out = bytes::BytesMut::new();
        for line in chat {
            out.extend_from_slice(&pieces.chat(line));
        }
        out.extend_from_slice(&frame);
        Self {
            bytes: out.freeze(),
            last: false,
            keyframe,
        }
    }

    /// Counts them as written to one client over `transport`.
    pub fn count(&self, app: &crate::App, transport: Transport) {
        if self.last {
            app.metrics.bytes_out(transport, self.bytes.len());
        } else {
            app.metrics
                .frame_out(transport, self.bytes.len(), self.keyframe);
        }
    }
}

/// Waits until `at`, or forever when there is no `at`.
pub async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Next {
    /// The close code and reason of a `Closed` or `Shutdown`; `None` for a frame.
    pub fn close(&self) -> Option<(u16, String)> {
        match self {
            Self::Frame { .. } => None,
            Self::Closed(code, reason) => Some((*code, reason.clone())),
            Self::Shutdown => Some((close::GOING_AWAY, "the server is shutting down".to_owned())),
        }
    }
}
