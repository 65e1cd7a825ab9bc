//! What a client needs to start a session on any transport: where and how
//! ([`ConnectOptions`]), where to pick up ([`Resume`]), and what the server said
//! ([`Welcome`]).

use std::net::IpAddr;
use std::time::Duration;

use game_core::protocol::{ArenaInfo, PROTOCOL_VERSION, ServerMsg, SessionToken};
use url::Url;

use crate::endpoint::{Role, room_http_url, room_ws_url};
use crate::error::ClientError;

/// Where and how to connect, over any transport. Build with [`ConnectOptions::new`], then
/// adjust the public fields. [`connect`](crate::ws::connect) uses the WebSocket URL;
/// [`open`](crate::transport::open) picks the endpoint of the transport it is given.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    url: Url,
    room_url: Url,
    role: Role,
    /// Display name sent in `Hello` or `POST …/join` (at most
    /// [`MAX_NAME_CHARS`](game_core::protocol::MAX_NAME_CHARS) characters; empty: the server
    /// picks one).
    pub name: String,
    /// Bound on opening the TCP connection.
    pub connect_timeout: Duration,
    /// Bound on the WebSocket upgrade plus `Hello` → `Welcome`; over HTTP, on joining and
    /// opening the state request up to its `Welcome`.
    pub handshake_timeout: Duration,
    /// Longest silence from the server before the connection counts as dead. The server
    /// sends frames at its send rate, so a few seconds is plenty.
    pub read_timeout: Duration,
    /// Longest wait for outbox room, and for one socket write in the writer task; over HTTP,
    /// also the bound on each `POST …/input`.
    pub write_timeout: Duration,
    /// Long polling: how long the server may hold a `GET …/poll` (`wait=`, whole seconds).
    /// Each request's timeout is this plus `read_timeout`.
    pub long_poll_wait: Duration,
    /// Polling: time between `GET …/poll?wait=0` requests; `None` is one send period
    /// (1 / the room's `send_rate`).
    pub poll_interval: Option<Duration>,
    /// The local address to connect from (port chosen by the kernel); `None` lets the kernel
    /// pick. A load generator spreads its connections over `127.0.0.x` this way: one source
    /// address has only so many ephemeral ports for one server address.
    pub local_address: Option<IpAddr>,
}

impl ConnectOptions {
    /// Options for `role` in `room` on the server at `base` (e.g. `http://127.0.0.1:8080`),
    /// with timeouts of 5 s (connect, handshake, write) and 10 s (read), long polls held up
    /// to 25 s, and polling once per send period.
    pub fn new(base: &str, room: &str, role: Role) -> Result<Self, ClientError> {
        Ok(Self {
            url: room_ws_url(base, room, role)?,
            room_url: room_http_url(base, room)?,
            role,
            name: String::new(),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
            long_poll_wait: Duration::from_secs(25),
            poll_interval: None,
            local_address: None,
        })
    }

    /// The room's WebSocket URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The room's HTTP URL (`http://…/api/rooms/{room}`), the base of the HTTP transports'
    /// endpoints (see [`crate::endpoint`]).
    pub fn room_url(&self) -> &Url {
        &self.room_url
    }

    /// Player or spectator.
    pub fn role(&self) -> Role {
        self.role
    }
}

/// Where a connection picks up a session; `Resume::default()` starts a new one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// The token from an earlier [`Welcome`]: the server gives back the same ship.
    pub token: Option<SessionToken>,
    /// The replica's tick, so the first frame can be a delta from it; `None` asks for a
    /// keyframe.
    pub last_tick: Option<u32>,
    /// The sequence number of the next input (one past the last one sent; 0 or 1 for a new
    /// session).
    pub next_seq: u32,
}

/// The server's `Welcome`: who we are in the room and how fast it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The room's id.
    pub room: String,
    /// Our ship's id; 0 for a spectator.
    pub entity: u16,
    /// The session token to resume with; `None` for a spectator.
    pub token: Option<SessionToken>,
    /// Simulation ticks per second (> 0).
    pub tick_rate: u16,
    /// Frames per second the server sends a client that keeps up (> 0).
    pub send_rate: u16,
    /// The room's tick when we joined.
    pub tick: u32,
    /// What to draw (and what the AI pilot avoids).
    pub arena: ArenaInfo,
}

impl Welcome {
    /// The `Welcome` in `msg`, checked (our protocol version, non-zero rates); `None` for
    /// any other message.
    pub(crate) fn from_msg(msg: &ServerMsg) -> Result<Option<Self>, ClientError> {
        let ServerMsg::Welcome {
            version,
            room,
            entity,
            token,
            tick_rate,
            send_rate,
            tick,
            arena,
        } = msg
        else {
            return Ok(None);
        };
        if *version != PROTOCOL_VERSION {
            return Err(ClientError::Protocol(format!(
                "server speaks protocol {version}, we speak {PROTOCOL_VERSION}"
            )));
        }
        if *tick_rate == 0 || *send_rate == 0 {
            return Err(ClientError::Protocol(
                "Welcome with a zero tick or send rate".into(),
            ));
        }
        Ok(Some(Self {
            room: room.clone(),
            entity: *entity,
            token: *token,
            tick_rate: *tick_rate,
            send_rate: *send_rate,
            tick: *tick,
            arena: arena.clone(),
        }))
    }
}
