//! The sending half of a connection and the task that owns the socket's write half.
//!
//! [`Writer`] methods reserve a slot in the bounded outbox (waiting at most `write_timeout`),
//! record what they send in the shared [`Ledger`], and hand the encoded message to the
//! writer task, which writes it within `write_timeout` or gives up on the connection. See
//! [`super`] for the whole picture.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use game_core::codec::encode_client;
use game_core::protocol::{ClientMsg, Input, MAX_CHAT_CHARS, close};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::Ws;
use crate::error::ClientError;
use crate::inbound::{lock, now};
use crate::ledger::Ledger;

/// Outgoing messages queued for the writer task. At 60 inputs a second this is about one
/// second of backlog; a full outbox means the socket is not draining.
pub const OUTBOX: usize = 64;

/// What the writer task is asked to do.
#[derive(Debug)]
pub(super) enum Outgoing {
    /// Send an encoded client message.
    Message(Vec<u8>),
    /// Send a close frame with this code, then stop.
    Close(u16),
}

/// The sending half. Each method waits at most `write_timeout` for room in the outbox.
#[derive(Debug)]
pub struct Writer {
    /// To the writer task; bounded ([`OUTBOX`]). Full: callers wait up to `write_timeout`.
    outbox: mpsc::Sender<Outgoing>,
    /// Shared with the reader: send times to match against acks and pongs.
    ledger: Arc<Mutex<Ledger>>,
    write_timeout: Duration,
    task: JoinHandle<()>,
}

/// The writer task: sends what the outbox holds, one message per WebSocket message. See the
/// module docs for when it ends.
async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    mut outbox: mpsc::Receiver<Outgoing>,
    write_timeout: Duration,
) {
    while let Some(out) = outbox.recv().await {
        let (msg, last) = match out {
            Outgoing::Message(bytes) => (Message::Binary(bytes.into()), false),
            Outgoing::Close(code) => (
                Message::Close(Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: "".into(),
                })),
                true,
            ),
        };
        match timeout(write_timeout, sink.send(msg)).await {
            Ok(Ok(())) if !last => {}
            Ok(Ok(())) => return,
            Ok(Err(e)) => {
                tracing::debug!("writer stopped: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!("writer stopped: a write took longer than {write_timeout:?}");
                return;
            }
        }
    }
    // Both halves dropped without closing: say goodbye, briefly.
    let _ = timeout(write_timeout, sink.close()).await;
}

impl Writer {
    /// Spawns the writer task on `sink`; returns the writer and a sender into its outbox for
    /// the reader half.
    pub(super) fn spawn(
        sink: SplitSink<Ws, Message>,
        ledger: Arc<Mutex<Ledger>>,
        write_timeout: Duration,
    ) -> (Self, mpsc::Sender<Outgoing>) {
        let (outbox, rx) = mpsc::channel(OUTBOX);
        let task = tokio::spawn(write_loop(sink, rx, write_timeout));
        (
            Self {
                outbox: outbox.clone(),
                ledger,
                write_timeout,
                task,
            },
            outbox,
        )
    }

    /// Waits (bounded) for an outbox slot, then builds and queues a message under the ledger
    /// lock, so sequence numbers reach the socket in order.
    async fn queue<T>(
        &mut self,
        build: impl FnOnce(&mut Ledger, std::time::Instant) -> (ClientMsg, T),
    ) -> Result<T, ClientError> {
        let permit = match timeout(self.write_timeout, self.outbox.reserve()).await {
            Err(_) => return Err(ClientError::WriteTimeout(self.write_timeout)),
            Ok(Err(_)) => return Err(ClientError::WriterStopped),
            Ok(Ok(permit)) => permit,
        };
        let mut ledger = lock(&self.ledger);
        let (msg, out) = build(&mut ledger, now());
        permit.send(Outgoing::Message(encode_client(&msg)));
        Ok(out)
    }

    /// Sends one tick's input with the next sequence number, which it returns. The input is
    /// sent as given (the server validates; tests rely on that); use
    /// [`Input::sanitized`] for well-formed input.
    pub async fn send_input(&mut self, input: Input) -> Result<u32, ClientError> {
        self.queue(|ledger, now| {
            let seq = ledger.inputs.record_send(now);
            (ClientMsg::Input { seq, input }, seq)
        })
        .await
    }

    /// Sends a ping and returns its id; the reader reports the round trip as
    /// [`Event::Pong`](super::Event::Pong) and in [`Stats::rtt`](crate::stats::Stats::rtt).
    pub async fn ping(&mut self) -> Result<u32, ClientError> {
        self.queue(|ledger, now| {
            let id = ledger.pings.record_send(now);
            (ClientMsg::Ping { id }, id)
        })
        .await
    }

    /// Sends a chat line (at most [`MAX_CHAT_CHARS`] characters).
    pub async fn chat(&mut self, text: &str) -> Result<(), ClientError> {
        if text.chars().count() > MAX_CHAT_CHARS {
            return Err(ClientError::InvalidArgument(format!(
                "chat is longer than {MAX_CHAT_CHARS} characters"
            )));
        }
        self.queue(|_, _| {
            (
                ClientMsg::Chat {
                    text: text.to_owned(),
                },
                (),
            )
        })
        .await
    }

    /// Sends a raw client message: for tests that need to say something unusual (a second
    /// `Hello`, a stale sequence number). Not recorded in the ledger.
    pub async fn send_raw(&mut self, msg: ClientMsg) -> Result<(), ClientError> {
        self.queue(|_, _| (msg, ())).await
    }

    /// The last input sequence number sent (0 if none); resume with one more than this.
    pub fn last_seq(&self) -> u32 {
        lock(&self.ledger).inputs.last_seq()
    }

    /// Leaves the room for good (`Leave`: the ship does not wait for a reconnect), then
    /// closes the socket. Waits at most twice `write_timeout`.
    pub async fn leave(mut self) -> Result<(), ClientError> {
        self.send_raw(ClientMsg::Leave).await?;
        self.close().await
    }

    /// Closes the socket with code 1000 without leaving: the server keeps the ship for its
    /// grace period, so the session can be resumed. Waits at most `write_timeout` for the
    /// writer task to send the close frame. The reader then sees the server's close.
    pub async fn close(self) -> Result<(), ClientError> {
        let permit = match timeout(self.write_timeout, self.outbox.reserve()).await {
            Err(_) => return Err(ClientError::WriteTimeout(self.write_timeout)),
            Ok(Err(_)) => return Err(ClientError::WriterStopped),
            Ok(Ok(permit)) => permit,
        };
        permit.send(Outgoing::Close(close::NORMAL));
        // The task's own write is bounded by write_timeout; this bound is a backstop.
        match timeout(self.write_timeout, self.task).await {
            Ok(_) => Ok(()),
            Err(_) => Err(ClientError::WriteTimeout(self.write_timeout)),
        }
    }
}
