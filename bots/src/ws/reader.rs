//! The receiving half of a connection: server messages in, verified [`Event`]s out.
//!
//! [`Reader::next_event`] waits (bounded by `read_timeout`) for the next WebSocket message and
//! handles it without waiting on anything else: frames are applied to the caller's replica
//! and matched against the [`Ledger`]'s in-flight inputs, pongs against its pings, and server
//! pings are answered through the writer's outbox with `try_send`. See [`super`] for the
//! whole picture.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::idle::Idle;
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use game_core::codec::{decode_server, encode_client};
use game_core::protocol::{ClientMsg, ServerMsg};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::writer::Outgoing;
use super::{Ws, close_info, linger};
use crate::error::{ClientError, CloseInfo};
use crate::inbound::{apply_frame, lock, now};
use crate::ledger::Ledger;
use crate::sink::FrameSink;
use crate::stats::Stats;

/// Something the server sent, after the reader has dealt with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A frame was applied to the replica and its checksum verified.
    Frame(FrameEvent),
    /// The server answered one of our pings.
    Pong {
        /// The ping's id.
        id: u32,
        /// The room's tick when the server handled it.
        tick: u32,
        /// Round-trip time; `None` if the ping was not in flight (too old, or not ours).
        rtt: Option<Duration>,
    },
    /// A chat line.
    Chat {
        /// The speaker's ship, or 0 for the server.
        from: u16,
        /// The speaker's name.
        name: String,
        /// The text.
        text: String,
    },
}

/// A verified frame, in brief (the state itself is in the replica).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameEvent {
    /// The tick the replica is now at.
    pub tick: u32,
    /// The baseline tick; `None` for a keyframe.
    pub base: Option<u32>,
    /// The last input sequence the server applied for us.
    pub ack: u32,
    /// How many of our inputs this frame acknowledged for the first time.
    pub newly_acked: usize,
    /// The message's size in bytes.
    pub bytes: usize,
}

/// The receiving half: yields [`Event`]s and keeps the caller's replica verified.
#[derive(Debug)]
pub struct Reader {
    stream: SplitStream<Ws>,
    /// A clone of the writer's outbox, for answering server pings with `try_send` only.
    outbox: mpsc::Sender<Outgoing>,
    /// Shared with the writer.
    ledger: Arc<Mutex<Ledger>>,
    /// At most `read_timeout` between messages.
    idle: Idle,
    /// A `ServerMsg::Close` that arrived; the close frame should follow.
    closing: Option<CloseInfo>,
    /// Set once the connection has ended with a close: returned again by every later call.
    closed: Option<CloseInfo>,
}

impl Reader {
    pub(super) fn new(
        stream: SplitStream<Ws>,
        outbox: mpsc::Sender<Outgoing>,
        ledger: Arc<Mutex<Ledger>>,
        read_timeout: Duration,
    ) -> Self {
        Self {
            stream,
            outbox,
            ledger,
            idle: Idle::new(read_timeout),
            closing: None,
            closed: None,
        }
    }

    /// The next event from the server, waiting at most `read_timeout` for a message.
    ///
    /// Frames go to `replica` (a [`Replica`](game_core::replica::Replica) applies and verifies
    /// them; any [`FrameSink`] will do); `stats` counts frames, acks, latencies.
    /// A server `Ping` is answered here without waiting (see the module docs) and not
    /// reported. Errors end the connection: [`ClientError::Closed`] when the server closed it
    /// (every later call returns the same), [`ClientError::Desync`] when a frame did not
    /// verify (the replica cannot follow this connection any more: reconnect per
    /// [`ClientError::recovery`]).
    ///
    /// Cancel-safe: it awaits only the socket's next message (and, after a close frame, a
    /// bounded linger whose result is kept), so it can sit in a `tokio::select!` loop.
    pub async fn next_event<S: FrameSink + ?Sized>(
        &mut self,
        replica: &mut S,
        stats: &mut Stats,
    ) -> Result<Event, ClientError> {
        loop {
            if let Some(info) = &self.closed {
                return Err(ClientError::Closed(info.clone()));
            }
            let next = tokio::select! {
                biased;
                next = self.stream.next() => Ok(next),
                () = self.idle.expired() => Err(()),
            };
            let msg = match next {
                Err(()) => return Err(ClientError::ReadTimeout(self.idle.timeout())),
                Ok(Some(Ok(msg))) => {
                    self.idle.heard();
                    msg
                }
                Ok(Some(Err(e))) => {
                    return Err(match self.closing.take() {
                        Some(info) => self.finish(info),
                        None => ClientError::from_ws(e),
                    });
                }
                Ok(None) => {
                    return Err(match self.closing.take() {
                        Some(info) => self.finish(info),
                        None => ClientError::ConnectionLost,
                    });
                }
            };
            match msg {
                Message::Binary(bytes) => {
                    if let Some(event) = self.handle(&bytes, replica, stats)? {
                        return Ok(event);
                    }
                }
                Message::Close(frame) => {
                    let info = close_info(frame, self.closing.take());
                    self.closed = Some(info.clone());
                    linger(&mut self.stream).await;
                    return Err(ClientError::Closed(info));
                }
                Message::Text(_) => {
                    return Err(ClientError::Protocol("text frame from the server".into()));
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    fn finish(&mut self, info: CloseInfo) -> ClientError {
        self.closed = Some(info.clone());
        ClientError::Closed(info)
    }

    /// Handles one server message without waiting; `None` for messages that are not events.
    fn handle<S: FrameSink + ?Sized>(
        &mut self,
        bytes: &[u8],
        replica: &mut S,
        stats: &mut Stats,
    ) -> Result<Option<Event>, ClientError> {
        let now = now();
        Ok(match decode_server(bytes)? {
            ServerMsg::Frame(frame) => Some(Event::Frame(apply_frame(
                &frame,
                bytes.len(),
                now,
                Some(&self.ledger),
                replica,
                stats,
            )?)),
            ServerMsg::Pong { id, tick } => {
                let rtt = lock(&self.ledger).pings.pong(id, now);
                stats.pongs += 1;
                if let Some(rtt) = rtt {
                    stats.rtt.record(rtt);
                }
                Some(Event::Pong { id, tick, rtt })
            }
            ServerMsg::Ping { id } => {
                // Full outbox: the server misses one RTT sample; the reader never blocks on it.
                match self
                    .outbox
                    .try_send(Outgoing::Message(encode_client(&ClientMsg::Pong { id })))
                {
                    Ok(()) => stats.server_pings += 1,
                    Err(_) => stats.server_pings_dropped += 1,
                }
                None
            }
            ServerMsg::Chat { from, name, text } => Some(Event::Chat { from, name, text }),
            ServerMsg::Close { code, reason } => {
                self.closing = Some(CloseInfo { code, reason });
                None
            }
            ServerMsg::Welcome { .. } => {
                return Err(ClientError::Protocol("a second Welcome".into()));
            }
        })
    }
}
