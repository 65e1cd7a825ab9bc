//! What every transport does with a server message once it has its bytes.
//!
//! The WebSocket [`Reader`](crate::ws::Reader) and the HTTP followers ([`crate::sse`],
//! [`crate::stream`], [`crate::poll`]) differ only in how bytes arrive. From there on it is the
//! same: decode the `ServerMsg`, apply a frame to the caller's replica and verify its checksum,
//! match its `ack` against the [`Ledger`] of inputs in flight, count it all in [`Stats`].
//! [`apply_frame`] is that step for frames; [`Inbound`] is the rest for the one-way HTTP
//! transports (which cannot answer a server ping, and end a session with a `Close` message
//! rather than a close frame).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use game_core::codec::decode_server;
use game_core::protocol::{Frame, ServerMsg};

use crate::error::{ClientError, CloseInfo};
use crate::ledger::Ledger;
use crate::sink::FrameSink;
use crate::stats::Stats;
use crate::ws::{Event, FrameEvent};

/// Locks a ledger; nothing panics while holding it, but a poisoned ledger is still valid.
pub(crate) fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The time for ledger records: tokio's clock, so tests with a paused clock control it.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Applies `frame` (a message of `bytes` bytes, seen at `now`) to `replica` (any
/// [`FrameSink`]: a verifying [`Replica`](game_core::replica::Replica) or a skim): counts its
/// size, notes its `ack` (against `ledger`'s inputs in flight, if the client sends any),
/// verifies it. A frame that does not verify is counted and returned as
/// [`ClientError::Desync`].
pub(crate) fn apply_frame<S: FrameSink + ?Sized>(
    frame: &Frame,
    bytes: usize,
    now: std::time::Instant,
    ledger: Option<&Mutex<Ledger>>,
    replica: &mut S,
    stats: &mut Stats,
) -> Result<FrameEvent, ClientError> {
    stats.frame_bytes += bytes as u64;
    // The ack is about inputs, not state: it holds even when the state does not verify.
    stats.observe_ack(frame.ack);
    let newly_acked = match ledger {
        Some(ledger) => lock(ledger)
            .inputs
            .ack(frame.ack, now, |d| stats.ack_latency.record(d)),
        None => 0,
    };
    if let Err(e) = replica.accept(frame) {
        stats.desyncs += 1;
        return Err(ClientError::Desync(e));
    }
    stats.frames += 1;
    if frame.base.is_none() {
        stats.keyframes += 1;
    }
    Ok(FrameEvent {
        tick: frame.tick,
        base: frame.base,
        ack: frame.ack,
        newly_acked,
        bytes,
    })
}

/// The receiving state an HTTP follower keeps: the ledger of its player's inputs (none for a
/// spectator) and whether the server has closed the session.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    ledger: Option<Arc<Mutex<Ledger>>>,
    /// Set by a `Close` message: returned again by every later call.
    closed: Option<CloseInfo>,
}

impl Inbound {
    /// For a player whose inputs are recorded in `ledger`, or a spectator (`None`).
    pub(crate) fn new(ledger: Option<Arc<Mutex<Ledger>>>) -> Self {
        Self {
            ledger,
            closed: None,
        }
    }

    /// [`ClientError::Closed`] once the server has closed the session.
    pub(crate) fn check_open(&self) -> Result<(), ClientError> {
        match &self.closed {
            Some(info) => Err(ClientError::Closed(info.clone())),
            None => Ok(()),
        }
    }

    /// Handles one server message (`bytes`) without waiting: `Some` event for a frame or a
    /// chat line, `None` for what is not an event, an error for a `Close`, a second `Welcome`,
    /// or a frame that does not verify.
    pub(crate) fn handle<S: FrameSink + ?Sized>(
        &mut self,
        bytes: &[u8],
        replica: &mut S,
        stats: &mut Stats,
    ) -> Result<Option<Event>, ClientError> {
        let now = now();
        match decode_server(bytes)? {
            ServerMsg::Frame(frame) => Ok(Some(Event::Frame(apply_frame(
                &frame,
                bytes.len(),
                now,
                self.ledger.as_deref(),
                replica,
                stats,
            )?))),
            ServerMsg::Chat { from, name, text } => Ok(Some(Event::Chat { from, name, text })),
            ServerMsg::Close { code, reason } => {
                let info = CloseInfo { code, reason };
                self.closed = Some(info.clone());
                Err(ClientError::Closed(info))
            }
            ServerMsg::Welcome { .. } => Err(ClientError::Protocol("a second Welcome".into())),
            // One-way transports: nothing to answer a ping with, and we sent no ping.
            ServerMsg::Ping { .. } | ServerMsg::Pong { .. } => Ok(None),
        }
    }
}

/// Server messages for the transports' tests.
#[cfg(test)]
pub(crate) mod samples {
    use game_core::codec::encode_server;
    use game_core::protocol::{ArenaInfo, Frame, PROTOCOL_VERSION, ServerMsg};
    use game_core::snapshot::Snapshot;

    /// A `Welcome` to room `r` at tick 1.
    pub(crate) fn welcome() -> Vec<u8> {
        encode_server(&ServerMsg::Welcome {
            version: PROTOCOL_VERSION,
            room: "r".into(),
            entity: 0,
            token: None,
            tick_rate: 60,
            send_rate: 30,
            tick: 1,
            arena: ArenaInfo {
                width: 100,
                height: 100,
                obstacles: Vec::new(),
            },
        })
    }

    /// A verified keyframe of an empty room at `tick`.
    pub(crate) fn keyframe(tick: u32, ack: u32) -> Vec<u8> {
        let snap = Snapshot {
            tick,
            entities: Vec::new(),
        };
        encode_server(&ServerMsg::Frame(Frame {
            tick,
            base: None,
            checksum: snap.checksum(),
            ack,
            delta: game_core::delta::keyframe(&snap),
        }))
    }

    /// A `Close` for shutdown.
    pub(crate) fn close() -> Vec<u8> {
        encode_server(&ServerMsg::Close {
            code: 1001,
            reason: "the server is shutting down".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::samples::keyframe;
    use super::*;
    use game_core::codec::encode_server;
    use game_core::replica::Replica;

    #[test]
    fn frames_chat_and_close() {
        let ledger = Arc::new(Mutex::new(Ledger::new(1)));
        lock(&ledger).inputs.record_send(now());
        let mut inbound = Inbound::new(Some(ledger));
        let (mut replica, mut stats) = (Replica::new(), Stats::new());
        let bytes = keyframe(7, 1);
        let event = inbound.handle(&bytes, &mut replica, &mut stats);
        assert!(
            matches!(event, Ok(Some(Event::Frame(FrameEvent { tick: 7, base: None, ack: 1, newly_acked: 1, bytes: n }))) if n == bytes.len()),
            "{event:?}"
        );
        assert_eq!(
            (stats.frames, stats.keyframes, stats.highest_ack),
            (1, 1, 1)
        );
        assert_eq!(replica.tick(), Some(7));

        let chat = encode_server(&ServerMsg::Chat {
            from: 0,
            name: "server".into(),
            text: "hi".into(),
        });
        assert!(matches!(
            inbound.handle(&chat, &mut replica, &mut stats),
            Ok(Some(Event::Chat { from: 0, .. }))
        ));
        let ping = encode_server(&ServerMsg::Ping { id: 1 });
        assert!(matches!(
            inbound.handle(&ping, &mut replica, &mut stats),
            Ok(None)
        ));
        assert!(inbound.check_open().is_ok());
        let close = encode_server(&ServerMsg::Close {
            code: 1001,
            reason: "bye".into(),
        });
        assert!(matches!(
            inbound.handle(&close, &mut replica, &mut stats),
            Err(ClientError::Closed(CloseInfo { code: 1001, .. }))
        ));
        assert!(matches!(
            inbound.check_open(),
            Err(ClientError::Closed(CloseInfo { code: 1001, .. }))
        ));
    }

    #[test]
    fn a_bad_checksum_is_a_counted_desync() {
        let mut inbound = Inbound::new(None);
        let (mut replica, mut stats) = (Replica::new(), Stats::new());
        let mut bytes = keyframe(3, 0);
        if let Ok(ServerMsg::Frame(mut f)) = decode_server(&bytes) {
            f.checksum ^= 1;
            bytes = encode_server(&ServerMsg::Frame(f));
        }
        assert!(matches!(
            inbound.handle(&bytes, &mut replica, &mut stats),
            Err(ClientError::Desync(_))
        ));
        assert_eq!((stats.desyncs, stats.frames), (1, 0));
    }
}
