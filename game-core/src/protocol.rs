//! The messages of the tickwire protocol: one enum per direction.
//!
//! Every transport carries these same messages, encoded by [`crate::codec`] (bincode 2,
//! `config::standard()`: little-endian, varint integers). WebSocket sends one message per binary
//! frame; SSE, HTTP streaming and polling carry the same bytes of [`ServerMsg::Frame`]. The
//! browser mirrors this file in `web-client/`, held to it by golden byte vectors.
//!
//! A session: the client sends [`ClientMsg::Hello`]; the server answers [`ServerMsg::Welcome`]
//! (or [`ServerMsg::Close`] with a [`close`] code), then streams [`ServerMsg::Frame`]s while the
//! client sends [`ClientMsg::Input`]s. Frames carry the last input sequence the server applied,
//! so a client can reconcile its prediction.

use bincode::{Decode, Encode};

/// The protocol version; a handshake with another version is refused with
/// [`close::VERSION_MISMATCH`].
pub const PROTOCOL_VERSION: u16 = 1;
/// Longest player name, in characters.
pub const MAX_NAME_CHARS: usize = 24;
/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 200;
/// Longest close reason, in bytes (a WebSocket close frame holds 123).
pub const MAX_REASON_BYTES: usize = 123;

/// Button bit: fire the gun.
pub const BUTTON_FIRE: u8 = 1;
/// Button bit: boost (faster thrust, drains energy).
pub const BUTTON_BOOST: u8 = 2;
/// Every defined button bit.
pub const BUTTONS_ALL: u8 = BUTTON_FIRE | BUTTON_BOOST;

/// What a pilot does during one tick. Integers, not floats, so no NaN can reach the world.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Input {
    /// Engine: 127 full ahead, 0 off, negative reverses at reduced power.
    pub thrust: i8,
    /// Turn: −127 full left (counter-clockwise) … 127 full right.
    pub turn: i8,
    /// `BUTTON_*` bits.
    pub buttons: u8,
}

impl Input {
    /// The same input with every value brought into range: −128 becomes −127 and unknown
    /// button bits are dropped.
    pub fn sanitized(self) -> Self {
        Self {
            thrust: self.thrust.max(-127),
            turn: self.turn.max(-127),
            buttons: self.buttons & BUTTONS_ALL,
        }
    }

    /// Whether the input is already in range (see [`Input::sanitized`]).
    pub fn is_valid(self) -> bool {
        self == self.sanitized()
    }

    /// Whether a button bit is held.
    pub fn holds(self, button: u8) -> bool {
        self.buttons & button != 0
    }
}

/// A random, unguessable session token (128 bits). Shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct SessionToken(pub [u8; 16]);

impl std::fmt::Display for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for SessionToken {
    /// Tokens are secrets: debug output shows only a prefix.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionToken({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// A session token string that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session token is 32 hex digits")]
pub struct BadToken;

impl std::str::FromStr for SessionToken {
    type Err = BadToken;

    fn from_str(s: &str) -> Result<Self, BadToken> {
        let s = s.as_bytes();
        if s.len() != 32 {
            return Err(BadToken);
        }
        let mut out = [0u8; 16];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or(BadToken)?;
            let lo = (pair[1] as char).to_digit(16).ok_or(BadToken)?;
            out[i] = (hi << 4 | lo) as u8;
        }
        Ok(Self(out))
    }
}

/// Client → server.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum ClientMsg {
    /// First message of every WebSocket session.
    Hello {
        /// Must equal [`PROTOCOL_VERSION`].
        version: u16,
        /// Display name, at most [`MAX_NAME_CHARS`] characters; empty for a generated one.
        name: String,
        /// A token from an earlier [`ServerMsg::Welcome`], to resume that ship.
        token: Option<SessionToken>,
        /// The last tick this client holds, so the first frame can be a delta from it.
        last_tick: Option<u32>,
    },
    /// One tick's worth of controls. Sequence numbers start at 1 and increase by one.
    Input {
        /// Sequence number; the server applies each at most once, in order.
        seq: u32,
        /// The controls.
        input: Input,
    },
    /// Asks for a [`ServerMsg::Pong`] with the same id (client-side RTT).
    Ping {
        /// Echoed back.
        id: u32,
    },
    /// Answers a [`ServerMsg::Ping`] (server-side RTT).
    Pong {
        /// The ping's id.
        id: u32,
    },
    /// A chat line, at most [`MAX_CHAT_CHARS`] characters.
    Chat {
        /// Plain text.
        text: String,
    },
    /// The player leaves now; the ship does not wait for the reconnect grace period.
    Leave,
}

/// A rectangle-free arena description a client needs to draw the world.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ArenaInfo {
    /// Width in world units; the arena spans `0..width`.
    pub width: u32,
    /// Height in world units; the arena spans `0..height`.
    pub height: u32,
    /// Static round obstacles: `(x, y, radius)` in world units.
    pub obstacles: Vec<(i32, i32, u32)>,
}

/// One state update: the delta from `base` (or from nothing) to `tick`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Frame {
    /// The tick this frame brings the client to.
    pub tick: u32,
    /// The tick the delta starts from; `None` for a keyframe (a delta from the empty snapshot).
    pub base: Option<u32>,
    /// [`crate::snapshot::Snapshot::checksum`] of the state at `tick`.
    pub checksum: u32,
    /// The last input sequence the server applied for this client's ship (0: none, spectators).
    pub ack: u32,
    /// The delta payload (see [`crate::delta`]).
    pub delta: Vec<u8>,
}

/// Server → client.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum ServerMsg {
    /// The handshake succeeded.
    Welcome {
        /// The server's [`PROTOCOL_VERSION`].
        version: u16,
        /// The room's id.
        room: String,
        /// The player's ship, or 0 for a spectator.
        entity: u16,
        /// The session token to resume with (players only).
        token: Option<SessionToken>,
        /// Simulation ticks per second.
        tick_rate: u16,
        /// Frames per second sent to a client that keeps up.
        send_rate: u16,
        /// The room's current tick.
        tick: u32,
        /// What to draw.
        arena: ArenaInfo,
    },
    /// A state update.
    Frame(Frame),
    /// Answers a [`ClientMsg::Ping`].
    Pong {
        /// The ping's id.
        id: u32,
        /// The room's tick when the ping was handled.
        tick: u32,
    },
    /// Asks for a [`ClientMsg::Pong`] with the same id.
    Ping {
        /// Echoed back.
        id: u32,
    },
    /// A chat line from a player (or the server, `from == 0`).
    Chat {
        /// The speaker's ship, or 0 for the server.
        from: u16,
        /// The speaker's name.
        name: String,
        /// Plain text, never markup.
        text: String,
    },
    /// The server ends the session; on WebSocket the same code and reason go in the close frame.
    Close {
        /// A [`close`] code.
        code: u16,
        /// Human-readable, at most [`MAX_REASON_BYTES`] bytes.
        reason: String,
    },
}

/// How a client receives state. The same frames go out on each; these names appear in URLs,
/// metrics labels, JSON and the load tool's flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    /// WebSocket: binary frames both ways.
    #[default]
    Ws,
    /// Server-Sent Events: `GET …/sse`.
    Sse,
    /// HTTP streaming: one chunked `GET …/stream` of length-prefixed frames.
    Stream,
    /// Long polling: `GET …/poll?wait=S`, again as soon as it answers.
    LongPoll,
    /// Polling: `GET …/poll?wait=0` at an interval.
    Poll,
}

impl Transport {
    /// Every transport, in the order of the README's table (and of per-transport counters).
    pub const ALL: [Self; 5] = [
        Self::Ws,
        Self::Sse,
        Self::Stream,
        Self::LongPoll,
        Self::Poll,
    ];

    /// The name: `ws`, `sse`, `stream`, `longpoll`, `poll`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ws => "ws",
            Self::Sse => "sse",
            Self::Stream => "stream",
            Self::LongPoll => "longpoll",
            Self::Poll => "poll",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transport name that is none of `ws|sse|stream|longpoll|poll`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport {0:?} (expected ws, sse, stream, longpoll or poll)")]
pub struct UnknownTransport(pub String);

impl std::str::FromStr for Transport {
    type Err = UnknownTransport;

    fn from_str(s: &str) -> Result<Self, UnknownTransport> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownTransport(s.to_owned()))
    }
}

/// A player drives a ship; a spectator only watches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// Gets a ship and a session token, sends inputs.
    #[default]
    Player,
    /// Read-only: no ship, no token, never sends input (`?spectate=1`).
    Spectator,
}

impl Role {
    /// Both roles, in label order.
    pub const ALL: [Self; 2] = [Self::Player, Self::Spectator];

    /// The name used in metrics and JSON: `player`, `spectator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Player => "player",
            Self::Spectator => "spectator",
        }
    }
}

/// Close codes: WebSocket's standard ones and tickwire's own (4000–4999).
pub mod close {
    /// Normal end (the client left).
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A message that could not be decoded.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame where binary was expected.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A rule was broken (spectator input, rate limits).
    pub const POLICY: u16 = 1008;
    /// A message over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed internally (a room's task panicked).
    pub const INTERNAL: u16 = 1011;
    /// The client speaks another protocol version.
    pub const VERSION_MISMATCH: u16 = 4000;
    /// The session token is unknown or expired.
    pub const BAD_TOKEN: u16 = 4001;
    /// No handshake arrived in time.
    pub const HANDSHAKE_TIMEOUT: u16 = 4002;
    /// The room has no space.
    pub const ROOM_FULL: u16 = 4003;
    /// The room closed.
    pub const ROOM_CLOSED: u16 = 4004;
    /// Nothing arrived from the client for too long.
    pub const IDLE_TIMEOUT: u16 = 4005;
    /// The same session was taken over by a newer connection.
    pub const REPLACED: u16 = 4006;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sanitizing() {
        let bad = Input {
            thrust: -128,
            turn: -128,
            buttons: 0xff,
        };
        assert!(!bad.is_valid());
        let ok = bad.sanitized();
        assert_eq!(
            ok,
            Input {
                thrust: -127,
                turn: -127,
                buttons: BUTTONS_ALL
            }
        );
        assert!(ok.is_valid());
        assert!(ok.holds(BUTTON_FIRE) && ok.holds(BUTTON_BOOST));
    }

    #[test]
    fn token_hex_round_trip() {
        let t = SessionToken([
            0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xa, 0xff,
        ]);
        let s = t.to_string();
        assert_eq!(s, "deadbeef00010203040506070809".to_owned() + "0aff");
        assert_eq!(s.parse::<SessionToken>(), Ok(t));
        assert_eq!(s.to_uppercase().parse::<SessionToken>(), Ok(t));
        assert_eq!("xyz".parse::<SessionToken>(), Err(BadToken));
        assert_eq!(s.replace('d', "g").parse::<SessionToken>(), Err(BadToken));
        assert!(!format!("{t:?}").contains(&s));
    }
}
