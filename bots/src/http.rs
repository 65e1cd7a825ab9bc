//! The HTTP plumbing the four non-WebSocket transports share: one `reqwest` client per
//! session, requests bounded in time, error answers turned into [`ApiError`]s, response bodies
//! read with a size bound, and the room's JSON turned into a [`Welcome`] for polling (which has
//! no handshake of its own). The two long-lived state streams (SSE, streaming) do not go through
//! reqwest: they read their one answer straight off a socket from [`Http::connect`] (see
//! `raw_http`), with the same errors.
//!
//! ```text
//! error answer:  4xx/5xx {"error": {"code": "bad_cursor", "message": "…"}}
//!                → ClientError::Api(ApiError { status: 400, code: Some("bad_cursor"), … })
//! transport:     refused/unreachable → ClientError::Connect, no answer in time → ReadTimeout,
//!                anything else below HTTP (reset, truncated body) → ClientError::Http
//!                (on a raw stream: ConnectionLost, or Io)
//! ```
//!
//! reqwest's own timeouts are not used for reads: a long poll legitimately stays silent for
//! `wait` seconds and a stream forever. Each operation is bounded as a whole by its caller with
//! tokio (opening a session by `handshake_timeout`, a poll by `wait` + `read_timeout`, an input
//! post by `write_timeout`, each chunk of a stream by `read_timeout`), so the functions here
//! that wait say "the caller bounds it".

use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use game_core::protocol::{ArenaInfo, ServerMsg};
use reqwest::{Client, RequestBuilder, Response};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::time::timeout;
use url::Url;

use crate::error::{ApiError, ClientError, CloseInfo};
use crate::options::{ConnectOptions, Welcome};
use crate::ws::{kind_of, open_tcp};

/// How much of an error answer's body is read: the server's JSON errors are far smaller.
pub(crate) const ERROR_BODY_LIMIT: usize = 16 << 10;
/// How long reading an error answer's body may take.
pub(crate) const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// How much of a non-JSON error body is kept as the message.
const ERROR_MESSAGE_CHARS: usize = 200;

/// A session's HTTP client and what its errors need to say.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    client: Client,
    /// The room's URL: the server's host and port, for [`Http::connect`].
    url: Url,
    /// `host:port`, for connect errors.
    addr: String,
    connect_timeout: Duration,
    local_address: Option<IpAddr>,
}

impl Http {
    /// A client for the server in `opts`. Only `http://`: this client has no TLS.
    pub(crate) fn new(opts: &ConnectOptions) -> Result<Self, ClientError> {
        let url = opts.room_url();
        if url.scheme() != "http" {
            return Err(ClientError::BadUrl {
                url: url.to_string(),
                reason: "only http:// is supported (this client has no TLS)".into(),
            });
        }
        let client = Client::builder()
            .connect_timeout(opts.connect_timeout)
            .tcp_nodelay(true)
            // A session holds one state request and one input post at a time.
            .pool_max_idle_per_host(2)
            .local_address(opts.local_address)
            .build()
            .map_err(ClientError::Http)?;
        Ok(Self {
            client,
            url: url.clone(),
            addr: format!(
                "{}:{}",
                url.host_str().unwrap_or_default(),
                url.port_or_known_default().unwrap_or(80)
            ),
            connect_timeout: opts.connect_timeout,
            local_address: opts.local_address,
        })
    }

    /// A new TCP connection to the server, as the reqwest client would open it: from
    /// `local_address` if set, within `connect_timeout`, with `TCP_NODELAY`.
    pub(crate) async fn connect(&self) -> Result<TcpStream, ClientError> {
        let port = self.url.port_or_known_default().unwrap_or(80);
        let opening = open_tcp(self.url.host(), port, self.local_address);
        let tcp = match timeout(self.connect_timeout, opening).await {
            Err(_) => {
                return Err(ClientError::ConnectTimeout {
                    addr: self.addr.clone(),
                    after: self.connect_timeout,
                });
            }
            Ok(Err(source)) => {
                return Err(ClientError::Connect {
                    addr: self.addr.clone(),
                    source,
                });
            }
            Ok(Ok(tcp)) => tcp,
        };
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    /// A GET request.
    pub(crate) fn get(&self, url: Url) -> RequestBuilder {
        self.client.get(url)
    }

    /// A POST request.
    pub(crate) fn post(&self, url: Url) -> RequestBuilder {
        self.client.post(url)
    }

    /// Sends `request` and waits for the answer's head (the caller bounds it). Any 2xx is
    /// returned; anything else becomes [`ClientError::Api`].
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let response = request.send().await.map_err(|e| self.error(e))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(ClientError::Api(api_error(response).await))
        }
    }

    /// Sorts a reqwest error into [`ClientError`]'s variants.
    pub(crate) fn error(&self, e: reqwest::Error) -> ClientError {
        if e.is_connect() && e.is_timeout() {
            ClientError::ConnectTimeout {
                addr: self.addr.clone(),
                after: self.connect_timeout,
            }
        } else if e.is_connect() {
            ClientError::Connect {
                addr: self.addr.clone(),
                source: std::io::Error::other(e),
            }
        } else {
            ClientError::Http(e)
        }
    }
}

/// Reads at most `limit` bytes of `response`'s body (the caller bounds it in time); the flag
/// says whether there was more (which is not read).
pub(crate) async fn read_limited(
    http: &Http,
    response: Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), ClientError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok((Vec::new(), true));
    }
    let mut chunks = response.bytes_stream();
    let mut body = Vec::new();
    loop {
        match chunks.next().await {
            None => return Ok((body, false)),
            Some(Err(e)) => return Err(http.error(e)),
            Some(Ok(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Ok((body, true));
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
}

/// The [`ApiError`] of an error answer; its body is read briefly and partially at most.
async fn api_error(response: Response) -> ApiError {
    let status = response.status().as_u16();
    let mut chunks = response.bytes_stream();
    let mut body = Vec::new();
    let _ = timeout(ERROR_BODY_TIMEOUT, async {
        while let Some(Ok(chunk)) = chunks.next().await {
            let room = ERROR_BODY_LIMIT.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() == ERROR_BODY_LIMIT {
                break;
            }
        }
    })
    .await;
    parse_api_error(status, &body)
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: String,
    #[serde(default)]
    message: String,
}

/// `status` and `body` as an [`ApiError`]: the server's JSON error, or (from a proxy, say) the
/// start of whatever the body was.
pub(crate) fn parse_api_error(status: u16, body: &[u8]) -> ApiError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => ApiError {
            status,
            code: Some(error.code),
            message: error.message,
        },
        Err(_) => ApiError {
            status,
            code: None,
            message: String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(ERROR_MESSAGE_CHARS)
                .collect(),
        },
    }
}

/// What the first message of an HTTP stream means for its handshake: a `Welcome` ends it, a
/// `Close` is a refusal, a frame before the welcome breaks the protocol; anything else
/// (`None`) is skipped.
pub(crate) fn handshake_step(msg: &ServerMsg) -> Result<Option<Welcome>, ClientError> {
    if let Some(welcome) = Welcome::from_msg(msg)? {
        return Ok(Some(welcome));
    }
    match msg {
        ServerMsg::Close { code, reason } => Err(ClientError::Refused(CloseInfo {
            code: *code,
            reason: reason.clone(),
        })),
        ServerMsg::Frame(_) => Err(ClientError::Protocol(format!(
            "expected Welcome, got {}",
            kind_of(msg)
        ))),
        _ => Ok(None),
    }
}

/// The room's JSON (`GET /api/rooms/{id}`), the part a client needs.
#[derive(Deserialize)]
struct RoomJson {
    id: String,
    tick: u32,
    tick_rate: u16,
    send_rate: u16,
    arena: ArenaJson,
}

#[derive(Deserialize)]
struct ArenaJson {
    width: u32,
    height: u32,
    obstacles: Vec<[i64; 3]>,
}

/// The largest room JSON read (a big arena has a few hundred obstacles).
const ROOM_JSON_LIMIT: usize = 1 << 20;

/// A [`Welcome`] for a transport without a handshake (polling), from the room's JSON: the
/// rates, tick and arena; `entity` 0 and no token, which a player's join fills in.
/// The caller bounds it.
pub(crate) async fn room_welcome(
    http: &Http,
    opts: &ConnectOptions,
) -> Result<Welcome, ClientError> {
    let response = http.send(http.get(opts.room_url().clone())).await?;
    let (body, more) = read_limited(http, response, ROOM_JSON_LIMIT).await?;
    if more {
        return Err(ClientError::Protocol(
            "the room's JSON is over 1 MiB".into(),
        ));
    }
    welcome_of_room(&body)
}

/// See [`room_welcome`].
fn welcome_of_room(body: &[u8]) -> Result<Welcome, ClientError> {
    let bad = |what: &str| ClientError::Protocol(format!("the room's JSON: {what}"));
    let room: RoomJson = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    if room.tick_rate == 0 || room.send_rate == 0 {
        return Err(bad("a zero tick or send rate"));
    }
    let obstacles = room
        .arena
        .obstacles
        .iter()
        .map(|&[x, y, r]| {
            Some((
                i32::try_from(x).ok()?,
                i32::try_from(y).ok()?,
                u32::try_from(r).ok()?,
            ))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("an obstacle out of range"))?;
    Ok(Welcome {
        room: room.id,
        entity: 0,
        token: None,
        tick_rate: room.tick_rate,
        send_rate: room.send_rate,
        tick: room.tick,
        arena: ArenaInfo {
            width: room.arena.width,
            height: room.arena.height,
            obstacles,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Recovery, api_code};

    #[test]
    fn error_answers_become_typed_errors() {
        let e = parse_api_error(
            400,
            br#"{"error": {"code": "cursor_in_future", "message": "tick 9 is ahead of 3"}}"#,
        );
        assert_eq!(
            e,
            ApiError {
                status: 400,
                code: Some(api_code::CURSOR_IN_FUTURE.into()),
                message: "tick 9 is ahead of 3".into()
            }
        );
        assert_eq!(e.recovery(), Recovery::Keyframe);
        let err = ClientError::Api(e);
        assert_eq!(
            (err.http_status(), err.api_code()),
            (Some(400), Some("cursor_in_future"))
        );
        assert_eq!(
            err.to_string(),
            "server answered HTTP 400 cursor_in_future: tick 9 is ahead of 3"
        );

        let cases = [
            (400, "bad_cursor", Recovery::GiveUp),
            (401, "bad_token", Recovery::GiveUp),
            (401, "token_required", Recovery::GiveUp),
            (404, "room_not_found", Recovery::GiveUp),
            (409, "room_full", Recovery::GiveUp),
            (410, "room_closed", Recovery::GiveUp),
            (503, "shutting_down", Recovery::GiveUp),
            (503, "too_many_connections", Recovery::Resume),
        ];
        for (status, code, recovery) in cases {
            let body = format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
            let e = parse_api_error(status, body.as_bytes());
            assert_eq!((e.code.as_deref(), e.recovery()), (Some(code), recovery));
        }
        // No message is fine; a proxy's page is kept briefly, with no code.
        let e = parse_api_error(404, br#"{"error":{"code":"room_not_found"}}"#);
        assert_eq!(
            (e.code.as_deref(), e.message.as_str()),
            (Some("room_not_found"), "")
        );
        let page = format!("  <html>{}</html>\n", "x".repeat(500));
        let e = parse_api_error(502, page.as_bytes());
        assert_eq!(e.code, None);
        assert_eq!(e.message.chars().count(), ERROR_MESSAGE_CHARS);
        assert!(e.message.starts_with("<html>"));
        assert_eq!(e.recovery(), Recovery::Resume);
        assert_eq!(parse_api_error(500, b"").to_string(), "HTTP 500");
    }

    #[test]
    fn the_room_json_gives_a_welcome() -> Result<(), ClientError> {
        let body = br#"{"id": "default", "players": 1, "ai_ships": 8, "spectators": 0,
            "capacity": 50, "tick": 1234, "tick_rate": 60, "send_rate": 30,
            "created_by": "server", "ws": "/api/rooms/default/ws",
            "arena": {"width": 3000, "height": 2000, "obstacles": [[10, -20, 30]]}}"#;
        let w = welcome_of_room(body)?;
        assert_eq!(
            (w.room.as_str(), w.entity, w.tick, w.tick_rate, w.send_rate),
            ("default", 0, 1234, 60, 30)
        );
        assert_eq!(w.arena.obstacles, [(10, -20, 30)]);
        let bad = br#"{"id": "d", "tick": 1, "tick_rate": 60, "send_rate": 30,
            "arena": {"width": 1, "height": 1, "obstacles": [[0, 0, -1]]}}"#;
        assert!(matches!(
            welcome_of_room(bad),
            Err(ClientError::Protocol(_))
        ));
        assert!(matches!(
            welcome_of_room(b"[]"),
            Err(ClientError::Protocol(_))
        ));
        Ok(())
    }

    /// What a stream's first messages mean: a `Welcome` ends the handshake; a `Close` before it
    /// is a typed refusal and a frame before it breaks the protocol (the real server always
    /// sends its `Welcome` first, so these two are checked here, without a socket).
    #[test]
    fn a_close_before_the_welcome_is_a_typed_refusal() -> Result<(), ClientError> {
        use crate::inbound::samples;
        use game_core::codec::decode_server;
        let welcome = handshake_step(&decode_server(&samples::welcome())?)?;
        assert_eq!(welcome.map(|w| (w.room, w.tick)), Some(("r".to_owned(), 1)));
        assert!(matches!(
            handshake_step(&decode_server(&samples::close())?),
            Err(ClientError::Refused(CloseInfo { code: 1001, .. }))
        ));
        assert!(matches!(
            handshake_step(&decode_server(&samples::keyframe(7, 0))?),
            Err(ClientError::Protocol(_))
        ));
        assert!(matches!(
            handshake_step(&ServerMsg::Ping { id: 1 }),
            Ok(None)
        ));
        Ok(())
    }
}
