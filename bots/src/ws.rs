//! A tickwire client connection over WebSocket: connect, handshake, then two halves.
//!
//! [`connect`] opens TCP (bounded by `connect_timeout`), upgrades to WebSocket, sends
//! `Hello` and waits for `Welcome` (both bounded by `handshake_timeout`). It returns a
//! [`Connection`]: the [`Welcome`], a [`Writer`] and a [`Reader`], which can be used from one
//! task (a `tokio::select!` loop, as [`crate::bot::Bot`] does) or from two.
//!
//! ```text
//! caller ─ Writer::send_input/ping/chat ─► outbox (bounded: OUTBOX) ─► writer task ─► socket
//!               │ records seq / ping id + send time      ▲
//!               ▼                                        │ try_send(Pong); dropped if full
//!        Ledger (Mutex, bounded) ◄─ ack / Pong ─ Reader::next_event ◄─ socket
//!                                                        │
//!                                  applies frames to the caller's Replica; counts in Stats
//! ```
//!
//! Who waits on what:
//! - The **writer task** owns the socket's write half and waits on the outbox. It ends when it
//!   is told to close, when a write fails or takes longer than `write_timeout` (a server that
//!   stops reading is gone), or when both halves are dropped (the outbox closes). It is the one
//!   wait without its own timeout: its lifetime is that of the halves.
//! - **Writer** methods wait for a free outbox slot for at most `write_timeout`
//!   ([`ClientError::WriteTimeout`]); a stopped writer task is [`ClientError::WriterStopped`].
//! - **Reader::next_event** waits for the next WebSocket message for at most `read_timeout`
//!   ([`ClientError::ReadTimeout`]). It never waits on the writer: a server `Ping` is answered
//!   with `try_send`, and dropped (counted) when the outbox is full.
//!
//! Frames are applied to a [`Replica`](game_core::replica::Replica) that the caller owns and
//! passes in, so the state outlives the connection: a reconnect resumes from `replica.tick()`.
//! [`crate::transport`] wraps this module as one of the five transports.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use game_core::codec::{SERVER_MSG_LIMIT, decode_server, encode_client};
use game_core::protocol::{ClientMsg, MAX_NAME_CHARS, PROTOCOL_VERSION, ServerMsg};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use url::Host;

use crate::error::{ClientError, CloseInfo};
use crate::ledger::Ledger;

mod reader;
mod writer;

pub use crate::options::{ConnectOptions, Resume, Welcome};
pub use reader::{Event, FrameEvent, Reader};
pub use writer::{OUTBOX, Writer};

type Ws = WebSocketStream<TcpStream>;

/// How long to keep reading after a close, so the close handshake completes and the server
/// sees a clean close rather than a reset.
const CLOSE_LINGER: Duration = Duration::from_millis(500);
/// The code reported for a close frame that carries none (RFC 6455 "no status received").
const NO_STATUS: u16 = 1005;

/// An established session: the welcome and the two halves of the socket.
#[derive(Debug)]
pub struct Connection {
    /// What the server said in its `Welcome`.
    pub welcome: Welcome,
    /// Sends inputs, pings, chat; closes.
    pub writer: Writer,
    /// Receives frames (applying them to a replica), pongs and chat.
    pub reader: Reader,
}

fn binary(msg: &ClientMsg) -> Message {
    Message::Binary(encode_client(msg).into())
}

/// tungstenite's defaults (64 MiB messages, unbounded write buffer) are not ours.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        // Many bots share a machine, and tungstenite zero-fills up to this much before every
        // read, the one that finds nothing included (128 KiB by default: that memset was the
        // largest cost of a load run; 4 KiB still 3 % of the generator at 1,500 players). A
        // frame of a 50-player room is a few hundred bytes; keyframes take a few reads.
        .read_buffer_size(1 << 10)
        // Client messages are tiny and each is flushed at once.
        .write_buffer_size(0)
        .max_write_buffer_size(64 << 10)
        .max_message_size(Some(SERVER_MSG_LIMIT))
        .max_frame_size(Some(SERVER_MSG_LIMIT))
}

/// Connects to the room in `opts`, sends `Hello` with `resume`, and waits for `Welcome`.
///
/// A server that refuses the session (version, token, room full) gives
/// [`ClientError::Refused`] with its close code; an HTTP refusal of the upgrade (no such
/// room) gives [`ClientError::HttpStatus`]. Must be called inside a tokio runtime: it spawns
/// the connection's writer task.
pub async fn connect(opts: &ConnectOptions, resume: Resume) -> Result<Connection, ClientError> {
    if opts.name.chars().count() > MAX_NAME_CHARS {
        return Err(ClientError::InvalidArgument(format!(
            "name is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    let url = opts.url();
    if url.scheme() != "ws" {
        return Err(ClientError::BadUrl {
            url: url.to_string(),
            reason: "only ws:// is supported (this client has no TLS)".into(),
        });
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = format!("{}:{port}", url.host_str().unwrap_or_default());
    let tcp = match timeout(
        opts.connect_timeout,
        open_tcp(url.host(), port, opts.local_address),
    )
    .await
    {
        Err(_) => {
            return Err(ClientError::ConnectTimeout {
                addr,
                after: opts.connect_timeout,
            });
        }
        Ok(Err(source)) => return Err(ClientError::Connect { addr, source }),
        Ok(Ok(tcp)) => tcp,
    };
    // Inputs are tiny and latency-bound.
    tcp.set_nodelay(true)?;

    let deadline = Instant::now() + opts.handshake_timeout;
    let timed_out = |_| ClientError::HandshakeTimeout(opts.handshake_timeout);
    let (mut ws, _response) = timeout_at(
        deadline,
        tokio_tungstenite::client_async_with_config(url.as_str(), tcp, Some(ws_config())),
    )
    .await
    .map_err(timed_out)?
    .map_err(ClientError::from_ws)?;
    let hello = ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        name: opts.name.clone(),
        token: resume.token,
        last_tick: resume.last_tick,
    };
    let welcome = match timeout_at(deadline, await_welcome(&mut ws, &hello))
        .await
        .map_err(timed_out)?
    {
        Ok(welcome) => welcome,
        Err(e) => {
            if matches!(e, ClientError::Refused(_)) {
                linger(&mut ws).await;
            }
            return Err(e);
        }
    };

    let (sink, stream) = ws.split();
    let ledger = Arc::new(Mutex::new(Ledger::new(resume.next_seq)));
    let (writer, outbox) = Writer::spawn(sink, ledger.clone(), opts.write_timeout);
    let reader = Reader::new(stream, outbox, ledger, opts.read_timeout);
    Ok(Connection {
        welcome,
        writer,
        reader,
    })
}

/// A TCP connection to `host:port`, from `local` if given; [`crate::http::Http::connect`]
/// opens the HTTP streams' connections with it too.
pub(crate) async fn open_tcp(
    host: Option<Host<&str>>,
    port: u16,
    local: Option<IpAddr>,
) -> std::io::Result<TcpStream> {
    let Some(local) = local else {
        return match host {
            Some(Host::Domain(name)) => TcpStream::connect((name, port)).await,
            Some(Host::Ipv4(ip)) => TcpStream::connect((ip, port)).await,
            Some(Host::Ipv6(ip)) => TcpStream::connect((ip, port)).await,
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the URL has no host",
            )),
        };
    };
    // From a chosen source address: bind it (port 0: the kernel picks), then connect to the
    // first address of the server's family.
    let remote = match host {
        Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await?
            .find(|a| a.is_ipv4() == local.is_ipv4()),
        Some(Host::Ipv4(ip)) => Some(SocketAddr::from((ip, port))),
        Some(Host::Ipv6(ip)) => Some(SocketAddr::from((ip, port))),
        None => None,
    }
    .ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("no server address of the same family as {local}"),
        )
    })?;
    let socket = if local.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(remote).await
}

/// Sends `hello` and reads until `Welcome` or a refusal. The caller bounds it in time.
async fn await_welcome(ws: &mut Ws, hello: &ClientMsg) -> Result<Welcome, ClientError> {
    ws.send(binary(hello)).await.map_err(ClientError::from_ws)?;
    let mut closing: Option<CloseInfo> = None;
    loop {
        let msg = match ws.next().await {
            Some(Ok(msg)) => msg,
            // A server that sent `Close` and hung up without a close frame still refused us.
            Some(Err(e)) => {
                return Err(closing
                    .map(ClientError::Refused)
                    .unwrap_or_else(|| ClientError::from_ws(e)));
            }
            None => {
                return Err(closing
                    .map(ClientError::Refused)
                    .unwrap_or(ClientError::ConnectionLost));
            }
        };
        let bytes = match msg {
            Message::Binary(bytes) => bytes,
            Message::Close(frame) => return Err(ClientError::Refused(close_info(frame, closing))),
            Message::Text(_) => {
                return Err(ClientError::Protocol("text frame from the server".into()));
            }
            // WebSocket-level pings are answered by tungstenite.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        let msg = decode_server(&bytes)?;
        if let Some(welcome) = Welcome::from_msg(&msg)? {
            return Ok(welcome);
        }
        match msg {
            ServerMsg::Close { code, reason } => closing = Some(CloseInfo { code, reason }),
            ServerMsg::Ping { id } => ws
                .send(binary(&ClientMsg::Pong { id }))
                .await
                .map_err(ClientError::from_ws)?,
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected Welcome, got {}",
                    kind_of(&other)
                )));
            }
        }
    }
}

/// Reads (and discards) until the server closes the socket or [`CLOSE_LINGER`] passes:
/// reading is what sends tungstenite's reply to the server's close frame.
async fn linger(stream: &mut (impl futures_util::Stream<Item = Result<Message, WsError>> + Unpin)) {
    let _ = timeout(CLOSE_LINGER, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}

/// The close to report: the server's `Close` message if one came (it is the typed,
/// deliberate one), else the close frame's code and reason.
fn close_info(frame: Option<CloseFrame>, announced: Option<CloseInfo>) -> CloseInfo {
    announced.unwrap_or_else(|| match frame {
        Some(f) => CloseInfo {
            code: f.code.into(),
            reason: f.reason.as_str().to_owned(),
        },
        None => CloseInfo {
            code: NO_STATUS,
            reason: String::new(),
        },
    })
}

/// The name of `msg`'s variant, for error messages.
pub(crate) fn kind_of(msg: &ServerMsg) -> &'static str {
    match msg {
        ServerMsg::Welcome { .. } => "Welcome",
        ServerMsg::Frame(_) => "Frame",
        ServerMsg::Pong { .. } => "Pong",
        ServerMsg::Ping { .. } => "Ping",
        ServerMsg::Chat { .. } => "Chat",
        ServerMsg::Close { .. } => "Close",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Role;
    use game_core::codec::encode_server;
    use game_core::protocol::close;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    #[test]
    fn close_info_prefers_the_announced_close() {
        let frame = || {
            Some(CloseFrame {
                code: CloseCode::from(close::ROOM_FULL),
                reason: "full".into(),
            })
        };
        assert_eq!(
            close_info(frame(), None),
            CloseInfo {
                code: 4003,
                reason: "full".into()
            }
        );
        let announced = CloseInfo {
            code: 4003,
            reason: "room default is full (64 players)".into(),
        };
        assert_eq!(close_info(frame(), Some(announced.clone())), announced);
        assert_eq!(close_info(None, None).code, NO_STATUS);
    }

    #[test]
    fn websocket_limits_are_ours() {
        let c = ws_config();
        assert_eq!(
            (c.max_message_size, c.max_frame_size),
            (Some(SERVER_MSG_LIMIT), Some(SERVER_MSG_LIMIT))
        );
        assert!(c.max_write_buffer_size > c.write_buffer_size + game_core::codec::CLIENT_MSG_LIMIT);
        assert!(c.read_buffer_size <= 64 << 10);
    }

    #[test]
    fn message_kinds_are_named() {
        let pong = ServerMsg::Pong { id: 1, tick: 2 };
        assert_eq!(kind_of(&pong), "Pong");
        // Sanity: the bytes a Pong arrives as decode back to it.
        assert_eq!(decode_server(&encode_server(&pong)), Ok(pong));
    }

    /// A port with nothing listening: connection refused, reported with the address.
    #[tokio::test]
    async fn connect_refused_is_a_connect_error() -> Result<(), Box<dyn std::error::Error>> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let opts =
            ConnectOptions::new(&format!("http://127.0.0.1:{port}"), "default", Role::Player)?;
        match connect(&opts, Resume::default()).await {
            Err(ClientError::Connect { addr, .. }) => assert_eq!(addr, format!("127.0.0.1:{port}")),
            other => panic!("expected a connect error, got {other:?}"),
        }
        Ok(())
    }

    /// A server that accepts TCP but never answers the upgrade: the handshake times out.
    #[tokio::test]
    async fn silent_server_times_out_the_handshake() -> Result<(), Box<dyn std::error::Error>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let mut opts = ConnectOptions::new(&base, "default", Role::Spectator)?;
        opts.handshake_timeout = Duration::from_millis(200);
        let started = Instant::now();
        let result = connect(&opts, Resume::default()).await;
        assert!(
            matches!(result, Err(ClientError::HandshakeTimeout(_))),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
        Ok(())
    }

    /// A server that welcomes the client, pings it every 100 ms for `chatty`, then says
    /// nothing: the read timeout counts from the last message, not from each call.
    async fn quiet_server(
        listener: tokio::net::TcpListener,
        chatty: Duration,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        use futures_util::{SinkExt, StreamExt};
        let (tcp, _) = listener.accept().await?;
        let mut ws = tokio_tungstenite::accept_async(tcp).await?;
        let _hello = ws.next().await;
        let welcome = ServerMsg::Welcome {
            version: game_core::protocol::PROTOCOL_VERSION,
            room: "default".into(),
            entity: 0,
            token: None,
            tick_rate: 60,
            send_rate: 30,
            tick: 1,
            arena: game_core::protocol::ArenaInfo {
                width: 100,
                height: 100,
                obstacles: Vec::new(),
            },
        };
        ws.send(Message::Binary(encode_server(&welcome).into()))
            .await?;
        let until = Instant::now() + chatty;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            ws.send(Message::Ping(Vec::new().into())).await?;
        }
        // Silent, but reading (the client's pongs), until the client goes.
        while let Some(Ok(_)) = ws.next().await {}
        Ok(())
    }

    #[tokio::test]
    async fn the_read_timeout_runs_from_the_last_message() -> Result<(), Box<dyn std::error::Error>>
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(quiet_server(listener, Duration::from_millis(600)));
        let mut opts = ConnectOptions::new(&base, "default", Role::Spectator)?;
        opts.read_timeout = Duration::from_millis(300);
        let mut conn = connect(&opts, Resume::default()).await?;
        let started = Instant::now();
        let mut replica = game_core::replica::Replica::new();
        let mut stats = crate::stats::Stats::default();
        let end = tokio::time::timeout(
            Duration::from_secs(5),
            conn.reader.next_event(&mut replica, &mut stats),
        )
        .await?;
        let waited = started.elapsed();
        assert!(
            matches!(end, Err(ClientError::ReadTimeout(t)) if t == opts.read_timeout),
            "{end:?}"
        );
        // Pings for 0.6 s kept it alive; then 0.3 s of silence ended it.
        assert!(waited >= Duration::from_millis(850), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        drop(conn);
        let _ = server.await;
        Ok(())
    }

    #[tokio::test]
    async fn overlong_names_and_tls_urls_are_refused_before_connecting() -> Result<(), ClientError>
    {
        let mut opts = ConnectOptions::new("http://127.0.0.1:9", "default", Role::Player)?;
        opts.name = "x".repeat(MAX_NAME_CHARS + 1);
        assert!(matches!(
            connect(&opts, Resume::default()).await,
            Err(ClientError::InvalidArgument(_))
        ));
        let opts = ConnectOptions::new("https://127.0.0.1:9", "default", Role::Player)?;
        assert!(matches!(
            connect(&opts, Resume::default()).await,
            Err(ClientError::BadUrl { .. })
        ));
        Ok(())
    }
}
