//! One way to be a client over any of the five transports (STYLE §8).
//!
//! [`open`] starts a [`Session`] over a [`Transport`]: a [`Welcome`], a [`Follower`] that
//! yields [`Event`]s and keeps the caller's replica verified, and a [`Sender`] for inputs.
//!
//! ```text
//! transport  state (Follower)                         inputs (Sender)           handshake
//! ws         Reader: binary WebSocket messages        Writer: same socket       Hello → Welcome
//! sse        SseFollower: GET …/sse, base64 events    player: HttpInputs        [join] welcome event
//! stream     StreamFollower: GET …/stream, records    player: HttpInputs        [join] Welcome record
//! longpoll   PollFollower: GET …/poll?wait=25, loop   player: HttpInputs        [join] GET …/{id}
//! poll       PollFollower: GET …/poll?wait=0, timed   player: HttpInputs        [join] GET …/{id}
//! ```
//!
//! Over HTTP a player first joins (`POST …/join`, with the token to resume), then follows with
//! `?token=` and posts inputs; a spectator only follows. Every transport resumes by tick: the
//! WebSocket's `Hello.last_tick`, SSE's `Last-Event-ID`, the stream's and polls' `since`.
//! HTTP transports have no ping: RTT is measured over WebSocket only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use game_core::protocol::Input;
use tokio::time::timeout;

use crate::endpoint::{Cursor, Role};
use crate::error::ClientError;
use crate::http::{Http, room_welcome};
use crate::inbound::Inbound;
use crate::ledger::Ledger;
use crate::options::{ConnectOptions, Resume, Welcome};
use crate::player::{HttpInputs, join};
use crate::poll::PollFollower;
use crate::sink::FrameSink;
use crate::sse::SseFollower;
use crate::stats::Stats;
use crate::stream::StreamFollower;
use crate::ws::{Connection, Event, Reader, Writer, connect};

pub use game_core::protocol::{Transport, UnknownTransport};

/// The state half of a session, whatever the transport.
#[derive(Debug)]
pub enum Follower {
    /// WebSocket.
    Ws(Reader),
    /// Server-Sent Events.
    Sse(SseFollower),
    /// HTTP streaming.
    Stream(StreamFollower),
    /// Long polling or polling.
    Poll(PollFollower),
}

impl Follower {
    /// The next event: frames go to `replica` (a [`Replica`](game_core::replica::Replica) applies and verifies them; a
    /// [`Skim`](crate::sink::Skim) only follows their ticks), `stats` counts. Each transport
    /// bounds its waits (see its `next_event`); all are cancel-safe.
    pub async fn next_event<S: FrameSink + ?Sized>(
        &mut self,
        replica: &mut S,
        stats: &mut Stats,
    ) -> Result<Event, ClientError> {
        match self {
            Self::Ws(r) => r.next_event(replica, stats).await,
            Self::Sse(f) => f.next_event(replica, stats).await,
            Self::Stream(f) => f.next_event(replica, stats).await,
            Self::Poll(f) => f.next_event(replica, stats).await,
        }
    }
}

/// The sending half of a session, whatever the transport.
#[derive(Debug)]
pub enum Sender {
    /// WebSocket: inputs, pings, chat and leave on the socket.
    Ws(Writer),
    /// An HTTP player: inputs by `POST …/input`, chat by `POST …/chat`.
    Http(HttpInputs),
    /// An HTTP spectator: nothing to send.
    ReadOnly,
}

impl Sender {
    /// Sends one tick's input with the next sequence number, which it returns. A spectator
    /// over HTTP cannot ([`ClientError::InvalidArgument`]); over WebSocket the server closes
    /// a spectator that tries.
    pub async fn send_input(&mut self, input: Input) -> Result<u32, ClientError> {
        match self {
            Self::Ws(w) => w.send_input(input).await,
            Self::Http(h) => h.send_input(input).await,
            Self::ReadOnly => Err(ClientError::InvalidArgument(
                "a spectator over HTTP has no way to send input".into(),
            )),
        }
    }

    /// Says a line in the room's chat (players; a spectator cannot).
    pub async fn chat(&mut self, text: &str) -> Result<(), ClientError> {
        match self {
            Self::Ws(w) => w.chat(text).await,
            Self::Http(h) => h.chat(text).await,
            Self::ReadOnly => Err(ClientError::InvalidArgument(
                "a spectator cannot chat".into(),
            )),
        }
    }

    /// Whether [`Sender::ping`] measures anything (WebSocket only).
    pub fn can_ping(&self) -> bool {
        matches!(self, Self::Ws(_))
    }

    /// Sends a ping and returns its id (WebSocket); `None` where there are no pings.
    pub async fn ping(&mut self) -> Result<Option<u32>, ClientError> {
        match self {
            Self::Ws(w) => w.ping().await.map(Some),
            Self::Http(_) | Self::ReadOnly => Ok(None),
        }
    }

    /// The last input sequence number sent (0 if none); resume with one more than this.
    pub fn last_seq(&self) -> u32 {
        match self {
            Self::Ws(w) => w.last_seq(),
            Self::Http(h) => h.last_seq(),
            Self::ReadOnly => 0,
        }
    }

    /// Ends the session for good: WebSocket `Leave`, or over HTTP the queued inputs and then
    /// `POST …/leave`.
    pub async fn leave(self) -> Result<(), ClientError> {
        match self {
            Self::Ws(w) => w.leave().await,
            Self::Http(h) => h.leave().await,
            Self::ReadOnly => Ok(()),
        }
    }

    /// Stops sending without leaving, so the session can be resumed.
    pub async fn close(self) -> Result<(), ClientError> {
        match self {
            Self::Ws(w) => w.close().await,
            Self::Http(h) => h.close().await,
            Self::ReadOnly => Ok(()),
        }
    }
}

/// A session on any transport.
#[derive(Debug)]
pub struct Session {
    /// The transport it runs on.
    pub transport: Transport,
    /// What the server said: over WebSocket, SSE and streaming its `Welcome`; over polling
    /// the room's JSON. An HTTP player's entity and token come from its join.
    pub welcome: Welcome,
    /// Receives state.
    pub follower: Follower,
    /// Sends inputs.
    pub sender: Sender,
}

/// Starts a session in the room of `opts` over `transport`, picking up at `resume`.
///
/// Over WebSocket this is [`connect`]. Over HTTP a player joins first (resuming
/// `resume.token`'s session if given); then the state request starts from
/// `resume.last_tick`. Joining and opening together are bounded by `handshake_timeout`
/// ([`ClientError::HandshakeTimeout`]); a refusal is [`ClientError::Api`] with the server's
/// code (`room_not_found`, `bad_token`, `room_full`, …). Must be called inside a tokio runtime:
/// an HTTP player's input poster is a task.
pub async fn open(
    opts: &ConnectOptions,
    transport: Transport,
    resume: Resume,
) -> Result<Session, ClientError> {
    if transport == Transport::Ws {
        let Connection {
            welcome,
            writer,
            reader,
        } = connect(opts, resume).await?;
        return Ok(Session {
            transport,
            welcome,
            follower: Follower::Ws(reader),
            sender: Sender::Ws(writer),
        });
    }
    timeout(opts.handshake_timeout, open_http(opts, transport, resume))
        .await
        .map_err(|_| ClientError::HandshakeTimeout(opts.handshake_timeout))?
}

async fn open_http(
    opts: &ConnectOptions,
    transport: Transport,
    resume: Resume,
) -> Result<Session, ClientError> {
    let http = Http::new(opts)?;
    let joined = match opts.role() {
        Role::Player => Some(join(&http, opts, resume.token).await?),
        Role::Spectator => None,
    };
    let token = joined.as_ref().map(|j| j.token);
    let ledger = joined
        .is_some()
        .then(|| Arc::new(Mutex::new(Ledger::new(resume.next_seq))));
    let inbound = Inbound::new(ledger.clone());
    let cursor = Cursor {
        since: resume.last_tick,
        wait: None,
        token,
    };
    let (mut welcome, follower) = match transport {
        Transport::Sse => {
            let (w, f) = SseFollower::open(http.clone(), opts, cursor, inbound).await?;
            (w, Follower::Sse(f))
        }
        Transport::Stream => {
            let (w, f) = StreamFollower::open(http.clone(), opts, cursor, inbound).await?;
            (w, Follower::Stream(f))
        }
        // (`open` handles `Ws` itself.)
        Transport::LongPoll | Transport::Poll | Transport::Ws => {
            let w = room_welcome(&http, opts).await?;
            let period = send_period(w.send_rate);
            let long = transport == Transport::LongPoll;
            let f = PollFollower::new(http.clone(), opts, long, token, period, inbound);
            (w, Follower::Poll(f))
        }
    };
    let sender = match (joined, ledger) {
        (Some(joined), Some(ledger)) => {
            welcome.entity = joined.entity;
            welcome.token = Some(joined.token);
            let period = send_period(joined.send_rate);
            Sender::Http(HttpInputs::spawn(http, opts, joined.token, ledger, period))
        }
        _ => Sender::ReadOnly,
    };
    Ok(Session {
        transport,
        welcome,
        follower,
        sender,
    })
}

/// One send period of a room sending `send_rate` frames a second.
fn send_period(send_rate: u16) -> Duration {
    Duration::from_secs_f64(1.0 / f64::from(send_rate.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_by_name() {
        for t in Transport::ALL {
            assert_eq!(t.as_str().parse::<Transport>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!("LongPoll".parse::<Transport>(), Ok(Transport::LongPoll));
        assert_eq!(
            "websocket".parse::<Transport>(),
            Err(UnknownTransport("websocket".into()))
        );
        assert_eq!(Transport::default(), Transport::Ws);
    }

    /// A port with nothing listening: every HTTP transport reports a connect error, as the
    /// WebSocket does.
    #[tokio::test]
    async fn no_server_is_a_connect_error_on_every_transport() -> Result<(), ClientError> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let base = format!("http://127.0.0.1:{port}");
        for role in [Role::Player, Role::Spectator] {
            let opts = ConnectOptions::new(&base, "default", role)?;
            for t in Transport::ALL {
                match open(&opts, t, Resume::default()).await {
                    Err(ClientError::Connect { addr, .. }) => {
                        assert_eq!(addr, format!("127.0.0.1:{port}"));
                    }
                    other => panic!("{t} {role:?}: expected a connect error, got {other:?}"),
                }
            }
        }
        Ok(())
    }

    /// A server that accepts TCP and never answers: opening times out, on every transport.
    #[tokio::test]
    async fn a_silent_server_times_out_the_opening() -> Result<(), Box<dyn std::error::Error>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let mut opts = ConnectOptions::new(&base, "default", Role::Spectator)?;
        opts.handshake_timeout = Duration::from_millis(200);
        for t in Transport::ALL {
            let result = open(&opts, t, Resume::default()).await;
            assert!(
                matches!(result, Err(ClientError::HandshakeTimeout(_))),
                "{t}: {result:?}"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn https_is_refused_before_connecting() -> Result<(), ClientError> {
        let opts = ConnectOptions::new("https://127.0.0.1:9", "default", Role::Spectator)?;
        for t in Transport::ALL {
            assert!(matches!(
                open(&opts, t, Resume::default()).await,
                Err(ClientError::BadUrl { .. })
            ));
        }
        Ok(())
    }
}
