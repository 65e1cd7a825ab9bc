//! What can go wrong being a client, as one typed enum.
//!
//! Every error a connection can produce is a [`ClientError`]. Errors that the server chose
//! (a refused handshake, a close) carry its [`protocol::close`](game_core::protocol::close)
//! code and reason as a [`CloseInfo`], so a test can assert on them. An HTTP transport's
//! refusal carries the status and the JSON error's stable `code` as an [`ApiError`] (codes in
//! [`api_code`]). [`ClientError::recovery`] says what a long-running client (the
//! [`crate::bot::Bot`]) should do next.

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

/// The stable `code`s of the server's JSON errors (`{"error": {"code", "message"}}`) that a
/// client acts on.
pub mod api_code {
    /// 400: `since` or `wait` is not a number.
    pub const BAD_CURSOR: &str = "bad_cursor";
    /// 400: `since` is ahead of the room (e.g. the server restarted): resume from a keyframe.
    pub const CURSOR_IN_FUTURE: &str = "cursor_in_future";
    /// 400: a body that does not parse.
    pub const BAD_REQUEST: &str = "bad_request";
    /// 401: the session token is unknown or expired.
    pub const BAD_TOKEN: &str = "bad_token";
    /// 401: input without a token (spectators never send input).
    pub const TOKEN_REQUIRED: &str = "token_required";
    /// 404: no open room by that id.
    pub const ROOM_NOT_FOUND: &str = "room_not_found";
    /// 409: the room has no space.
    pub const ROOM_FULL: &str = "room_full";
    /// 410: the room closed while a poll was held.
    pub const ROOM_CLOSED: &str = "room_closed";
    /// 503: the server holds its maximum number of connections.
    pub const TOO_MANY_CONNECTIONS: &str = "too_many_connections";
    /// 503: the server is shutting down.
    pub const SHUTTING_DOWN: &str = "shutting_down";
}

/// An HTTP error answer from the server: its status and, when the body is the server's JSON
/// error (`{"error": {"code", "message"}}`), the stable code and the message. A body of another
/// shape (a proxy's error page) leaves `code` empty and keeps the start of the body as
/// `message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status code.
    pub status: u16,
    /// The server's error code (see [`api_code`]), if the body had one.
    pub code: Option<String>,
    /// Human-readable; may be empty.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Bytes on an HTTP transport that do not frame into server messages: the stream is broken or
/// hostile, and following it further cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// An SSE line longer than the parser's bound.
    #[error("an SSE line is longer than {limit} bytes")]
    SseLineTooLong {
        /// The bound.
        limit: usize,
    },
    /// An SSE event whose data is longer than the parser's bound.
    #[error("an SSE event's data is longer than {limit} bytes")]
    SseEventTooBig {
        /// The bound.
        limit: usize,
    },
    /// SSE data that is not base64.
    #[error("SSE data is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// A record (`u32 LE length ‖ message`) whose length is over the message limit.
    #[error("a record of {len} bytes exceeds the {limit}-byte limit")]
    RecordTooBig {
        /// The length prefix.
        len: u64,
        /// [`SERVER_MSG_LIMIT`](game_core::codec::SERVER_MSG_LIMIT).
        limit: usize,
    },
    /// A poll body longer than a record can be.
    #[error("a poll body over {limit} bytes")]
    BodyTooBig {
        /// The bound.
        limit: usize,
    },
    /// A poll body that is empty or ends inside a record.
    #[error("a poll body of {have} bytes is not whole records (the last wants {want} bytes)")]
    NotWholeRecords {
        /// The body's size.
        have: usize,
        /// Where the last record would end (0 for an empty body).
        want: usize,
    },
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
    /// An HTTP transport's request was answered with an error status (see [`api_code`]).
    #[error("server answered {0}")]
    Api(ApiError),
    /// An HTTP request failed below the HTTP answer (reset, truncated body, protocol error).
    #[error("http: {0}")]
    Http(#[source] reqwest::Error),
    /// An HTTP transport's bytes do not frame into server messages.
    #[error("framing: {0}")]
    Framing(#[from] FramingError),
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
    /// The connection's writer task (a WebSocket writer, an HTTP input poster) has stopped:
    /// the connection failed or was closed. The reader half reports the cause.
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
            | Self::Http(_)
            | Self::Io(_) => Recovery::Resume,
            Self::Api(e) => e.recovery(),
            // The server timed *us* out during the handshake: worth another try.
            Self::Refused(info) if info.code == close::HANDSHAKE_TIMEOUT => Recovery::Resume,
            Self::BadUrl { .. }
            | Self::InvalidArgument(_)
            | Self::HttpStatus { .. }
            | Self::Refused(_)
            | Self::Closed(_)
            | Self::Decode(_)
            | Self::Framing(_)
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

    /// The HTTP status of a refusal: [`ClientError::HttpStatus`] or [`ClientError::Api`].
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::HttpStatus { status } => Some(*status),
            Self::Api(e) => Some(e.status),
            _ => None,
        }
    }

    /// The server's JSON error code of a [`ClientError::Api`] (see [`api_code`]).
    pub fn api_code(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.code.as_deref(),
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

impl ApiError {
    /// What to do about it: overload and gateway trouble are worth another try, a cursor from
    /// the future (the room restarted) asks for a keyframe, anything else the server decided.
    pub fn recovery(&self) -> Recovery {
        match (self.status, self.code.as_deref()) {
            (_, Some(api_code::CURSOR_IN_FUTURE)) => Recovery::Keyframe,
            (_, Some(api_code::SHUTTING_DOWN | api_code::ROOM_CLOSED)) => Recovery::GiveUp,
            (408 | 429 | 502 | 503 | 504, _) => Recovery::Resume,
            _ => Recovery::GiveUp,
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
