//! What can go wrong being a client, as one typed enum.
//!
//! Every error a connection can produce is a [`ClientError`]. Errors that the server chose
//! (a refused handshake, a close) carry its [`protocol::close`](game_core::protocol::close)
//! code and reason as a [`CloseInfo`], so a test can assert on them. [`ClientError::recovery`]
//! says what a long-running client (the [`crate::bot::Bot`]) should do next.

use std::fmt;
use std::time::Duration;

use game_core::codec::CodecError;
use game_core::protocol::close;
use game_core::replica::ReplicaError;

/// A close code and reason from the server: the WebSocket close frame's, or the
/// [`ServerMsg::Close`](game_core::ServerMsg::Close) message sent just before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// A [`protocol::close`](game_core::protocol::close) code.
    pub code: u16,
    /// Human-readable; may be empty.
    pub reason: String,
}

impl fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "code {}", self.code)
        } else {
            write!(f, "code {}: {}", self.code, self.reason)
        }
    }
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL cannot be used (bad syntax, unsupported scheme, no host).
    #[error("bad server URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument the server would refuse (a name or chat line over the protocol's limits).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The TCP connection could not be opened.
    #[error("could not connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The TCP connection did not open in time.
    #[error("connecting to {addr} timed out after {after:?}")]
    ConnectTimeout {
        /// `host:port`.
        addr: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The WebSocket upgrade and `Hello` → `Welcome` exchange did not finish in time.
    #[error("handshake timed out after {0:?}")]
    HandshakeTimeout(Duration),
    /// The server answered the upgrade request with an HTTP error (e.g. 404: no such room).
    #[error("server refused the WebSocket upgrade with HTTP {status}")]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
    },
    /// The server refused the handshake with a close code (version mismatch, bad token,
    /// room full, …).
    #[error("server refused the session ({0})")]
    Refused(CloseInfo),
    /// The server ended an established session with a close code.
    #[error("server closed the session ({0})")]
    Closed(CloseInfo),
    /// The connection ended without a close frame (reset, EOF).
    #[error("connection lost without a close frame")]
    ConnectionLost,
    /// Nothing arrived from the server for this long.
    #[error("nothing received from the server for {0:?}")]
    ReadTimeout(Duration),
    /// The outgoing queue stayed full for this long: the server is not reading.
    #[error("could not queue a message for {0:?}: the server is not reading")]
    WriteTimeout(Duration),
    /// The connection's writer task has stopped (the connection failed or was closed); the
    /// reader half reports the cause.
    #[error("the connection's writer has stopped")]
    WriterStopped,
    /// A server message could not be decoded.
    #[error("undecodable server message: {0}")]
    Decode(#[from] CodecError),
    /// A well-formed message that breaks the protocol (a text frame, a frame before `Welcome`,
    /// another protocol version).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A frame that could not be applied or did not verify: a checksum mismatch, a delta from
    /// a tick the replica does not hold, or a malformed delta. The replica cannot follow this
    /// connection any more; resume with a keyframe (see [`Recovery::Keyframe`]).
    #[error("desync: {0}")]
    Desync(#[source] ReplicaError),
    /// A WebSocket protocol or capacity error.
    #[error("websocket: {0}")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// An I/O error on the socket.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// What a client that wants to keep playing should do after an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Reconnect with the session token and the replica's tick: the server resumes the same
    /// ship and sends a delta from that tick if it still has it.
    Resume,
    /// Forget the replica's state and reconnect with the token but `last_tick: None`, so the
    /// first frame is a keyframe.
    Keyframe,
    /// Stop: the server ended the session on purpose, or retrying cannot help.
    GiveUp,
}

impl ClientError {
    /// What to do next. Transport failures resume, desyncs resume from a keyframe, and
    /// anything the server decided (a refusal, a close code) or a bug (bad bytes) gives up.
    pub fn recovery(&self) -> Recovery {
        match self {
            Self::Desync(_) => Recovery::Keyframe,
            Self::Connect { .. }
            | Self::ConnectTimeout { .. }
            | Self::HandshakeTimeout(_)
            | Self::ConnectionLost
            | Self::ReadTimeout(_)
            | Self::WriteTimeout(_)
            | Self::WriterStopped
            | Self::Io(_) => Recovery::Resume,
            // The server timed *us* out during the handshake: worth another try.
            Self::Refused(info) if info.code == close::HANDSHAKE_TIMEOUT => Recovery::Resume,
            Self::BadUrl { .. }
            | Self::InvalidArgument(_)
            | Self::HttpStatus { .. }
            | Self::Refused(_)
            | Self::Closed(_)
            | Self::Decode(_)
            | Self::Protocol(_)
            | Self::WebSocket(_) => Recovery::GiveUp,
        }
    }

    /// The server's close code, for [`ClientError::Refused`] and [`ClientError::Closed`].
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Self::Refused(info) | Self::Closed(info) => Some(info.code),
            _ => None,
        }
    }

    /// Sorts a tungstenite error into the variants above: a dead socket is
    /// [`ClientError::ConnectionLost`] or [`ClientError::Io`], an HTTP refusal keeps its status.
    pub(crate) fn from_ws(e: tokio_tungstenite::tungstenite::Error) -> Self {
        use std::io::ErrorKind;
        use tokio_tungstenite::tungstenite::Error as WsError;
        match e {
            WsError::ConnectionClosed | WsError::AlreadyClosed => Self::ConnectionLost,
            WsError::Io(io)
                if matches!(
                    io.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                        | ErrorKind::UnexpectedEof
                ) =>
            {
                Self::ConnectionLost
            }
            WsError::Io(io) => Self::Io(io),
            // A peer that drops the socket mid-frame surfaces as this protocol error.
            WsError::Protocol(
                tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ) => Self::ConnectionLost,
            WsError::Http(response) => Self::HttpStatus {
                status: response.status().as_u16(),
            },
            other => Self::WebSocket(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_policy() {
        let info = |code| CloseInfo {
            code,
            reason: String::new(),
        };
        let desync = ReplicaError::Desync {
            tick: 3,
            expected: 1,
            actual: 2,
        };
        assert_eq!(ClientError::Desync(desync).recovery(), Recovery::Keyframe);
        assert_eq!(ClientError::ConnectionLost.recovery(), Recovery::Resume);
        assert_eq!(
            ClientError::ReadTimeout(Duration::from_secs(1)).recovery(),
            Recovery::Resume
        );
        assert_eq!(
            ClientError::Refused(info(close::HANDSHAKE_TIMEOUT)).recovery(),
            Recovery::Resume
        );
        assert_eq!(
            ClientError::Refused(info(close::ROOM_FULL)).recovery(),
            Recovery::GiveUp
        );
        assert_eq!(
            ClientError::Closed(info(close::GOING_AWAY)).recovery(),
            Recovery::GiveUp
        );
        assert_eq!(
            ClientError::HttpStatus { status: 404 }.recovery(),
            Recovery::GiveUp
        );
        assert_eq!(
            ClientError::Closed(info(close::REPLACED)).close_code(),
            Some(close::REPLACED)
        );
        assert_eq!(ClientError::ConnectionLost.close_code(), None);
    }

    #[test]
    fn close_info_reads_well() {
        let full = CloseInfo {
            code: close::ROOM_FULL,
            reason: "room is full".into(),
        };
        assert_eq!(
            ClientError::Refused(full).to_string(),
            "server refused the session (code 4003: room is full)"
        );
        let bare = CloseInfo {
            code: 1000,
            reason: String::new(),
        };
        assert_eq!(
            ClientError::Closed(bare).to_string(),
            "server closed the session (code 1000)"
        );
    }
}
