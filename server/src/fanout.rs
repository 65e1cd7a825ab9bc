//! What a room publishes each send, and how any connection turns it into its next frame.
//!
//! The room encodes the delta from its previous send once and shares it as [`Bytes`]; a client
//! that received that previous send (the common case) gets those bytes behind its own few
//! header bytes. A client that skipped sends — a slow reader, a resumed session — gets a delta
//! from the snapshot it last received, which it holds itself, so nothing queues per client. A
//! client with no baseline, or one older than the room's history, gets the keyframe, encoded
//! lazily at most once per send.

use bytes::Bytes;
use game_core::codec;
use game_core::delta::{self, Encoder};
use game_core::{NetId, Snapshot};
use std::sync::{Arc, OnceLock};

/// A chat line as the room keeps it: stamped with the tick of the first send it went out with,
/// so a client holding that send (or a later one) has had it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// The send it first went out with.
    pub tick: u32,
    /// The speaker's ship (0: the server).
    pub from: NetId,
    /// The speaker's name.
    pub name: Arc<str>,
    /// Plain text, control characters removed.
    pub text: Arc<str>,
}

/// One send of a room: the latest state and everything needed to deliver it.
#[derive(Debug)]
pub struct Published {
    /// The tick of `snapshot`.
    pub tick: u32,
    /// The state.
    pub snapshot: Arc<Snapshot>,
    /// `snapshot.checksum()`, computed once.
    pub checksum: u32,
    /// The tick of the previous send, the baseline of `delta_from_prev`.
    pub prev_tick: Option<u32>,
    /// The delta payload from the previous send to this one.
    pub delta_from_prev: Bytes,
    /// The oldest tick still in the room's history: older baselines get a keyframe.
    pub oldest_tick: u32,
    /// Last applied input sequence per player ship, sorted by id.
    pub acks: Vec<(NetId, u32)>,
    /// Set when the room is closing: the code and reason every client gets.
    pub closing: Option<(u16, String)>,
    /// The room's recent chat, oldest first (shared by every send until someone speaks).
    pub chat: Arc<[ChatLine]>,
    keyframe: OnceLock<Bytes>,
    /// The whole frame for a spectator on the shared path (ack 0, delta from the previous send):
    /// the same bytes for every such client, built on first use.
    spectator_frame: OnceLock<Bytes>,
    /// The same frame as a whole SSE event (`id:`, `event: frame`, base64 `data:`), for SSE
    /// spectators.
    spectator_sse: OnceLock<Bytes>,
}

/// The delta payload one client needs, and its baseline (`None`: keyframe).
#[derive(Debug, Clone)]
pub struct Payload {
    /// The baseline tick; `None` for a keyframe.
    pub base: Option<u32>,
    /// Delta bytes.
    pub bytes: Bytes,
}

impl Published {
    /// The first publish of a room: no previous send.
    pub fn first(snapshot: Arc<Snapshot>) -> Self {
        Self::next(None, snapshot, Bytes::new(), Vec::new(), u32::MAX)
    }

    /// The same send carrying `chat` as the room's recent chat.
    pub fn with_chat(mut self, chat: Arc<[ChatLine]>) -> Self {
        self.chat = chat;
        self
    }

    /// The chat lines a client that has had everything up to send `after` is missing (`None`:
    /// a new client, which gets the last `backlog` lines).
    pub fn chat_after(&self, after: Option<u32>, backlog: usize) -> &[ChatLine] {
        match after {
            Some(t) => {
                let first_new = self.chat.partition_point(|l| l.tick <= t);
                &self.chat[first_new..]
            }
            None => &self.chat[self.chat.len().saturating_sub(backlog)..],
        }
    }

    /// A send following `prev_tick`, with the delta from it already encoded.
    pub fn next(
        prev_tick: Option<u32>,
        snapshot: Arc<Snapshot>,
        delta_from_prev: Bytes,
        acks: Vec<(NetId, u32)>,
        oldest_tick: u32,
    ) -> Self {
        Self {
            tick: snapshot.tick,
            checksum: snapshot.checksum(),
            snapshot,
            prev_tick,
            delta_from_prev,
            oldest_tick: oldest_tick.min(prev_tick.unwrap_or(u32::MAX)),
            acks,
            closing: None,
            chat: Arc::from([]),
            keyframe: OnceLock::new(),
            spectator_frame: OnceLock::new(),
            spectator_sse: OnceLock::new(),
        }
    }

    /// The same state marked as the room's last word.
    pub fn closing(&self, code: u16, reason: &str) -> Self {
        Self {
            tick: self.tick,
            snapshot: self.snapshot.clone(),
            checksum: self.checksum,
            prev_tick: self.prev_tick,
            delta_from_prev: self.delta_from_prev.clone(),
            oldest_tick: self.oldest_tick,
            acks: self.acks.clone(),
            closing: Some((code, reason.to_owned())),
            chat: self.chat.clone(),
            keyframe: OnceLock::new(),
            spectator_frame: OnceLock::new(),
            spectator_sse: OnceLock::new(),
        }
    }

    /// The keyframe payload, encoded on first use.
    pub fn keyframe(&self) -> &Bytes {
        self.keyframe
            .get_or_init(|| Bytes::from(delta::keyframe(&self.snapshot)))
    }

    /// The last input sequence applied for `ship` (0 if none).
    pub fn ack_for(&self, ship: NetId) -> u32 {
        match self.acks.binary_search_by_key(&ship, |&(id, _)| id) {
            Ok(i) => self.acks[i].1,
            Err(_) => 0,
        }
    }

    /// The payload that takes a client holding `have` to this send. `None` when the client
    /// already has it.
    pub fn payload_for(&self, have: Option<&Snapshot>, encoder: &mut Encoder) -> Option<Payload> {
        match have {
            Some(h) if h.tick == self.tick => None,
            Some(h) if Some(h.tick) == self.prev_tick => Some(Payload {
                base: Some(h.tick),
                bytes: self.delta_from_prev.clone(),
            }),
            Some(h) if h.tick >= self.oldest_tick && h.tick < self.tick => {
                let mut out = Vec::new();
                encoder.encode(h, &self.snapshot, &mut out);
                Some(Payload {
                    base: Some(h.tick),
                    bytes: Bytes::from(out),
                })
            }
            _ => Some(Payload {
                base: None,
                bytes: self.keyframe().clone(),
            }),
        }
    }

    /// Whether `payload` with `ack` is the frame every spectator on the shared path gets.
    fn is_spectator_frame(&self, payload: &Payload, ack: u32) -> bool {
        ack == 0 && payload.base.is_some() && payload.base == self.prev_tick
    }

    /// A whole `ServerMsg::Frame` for one client: its header and the shared payload. The common
    /// spectator frame is built once per send and shared.
    pub fn frame_bytes(&self, payload: &Payload, ack: u32) -> Bytes {
        if self.is_spectator_frame(payload, ack) {
            return self
                .spectator_frame
                .get_or_init(|| self.build_frame(payload, 0))
                .clone();
        }
        self.build_frame(payload, ack)
    }

    /// The frame as one SSE event (`id: tick`, `event: frame`, `data:` base64), shared like
    /// [`Published::frame_bytes`].
    pub fn frame_sse(&self, payload: &Payload, ack: u32) -> Bytes {
        use base64::Engine;
        let build = || {
            let text =
                base64::engine::general_purpose::STANDARD.encode(self.frame_bytes(payload, ack));
            let mut out = bytes::BytesMut::with_capacity(text.len() + 32);
            crate::sse::event(&mut out, Some(self.tick), "frame", text.as_bytes());
            out.freeze()
        };
        if self.is_spectator_frame(payload, ack) {
            return self.spectator_sse.get_or_init(build).clone();
        }
        build()
    }

    /// What goes before `payload` in this send's frame for a client with `ack`: a writer that
    /// sends the shared payload after it needs no copy of it.
    pub fn frame_head(&self, payload: &Payload, ack: u32, out: &mut Vec<u8>) {
        codec::encode_frame_head(
            self.tick,
            payload.base,
            self.checksum,
            ack,
            payload.bytes.len(),
            out,
        );
    }

    fn build_frame(&self, payload: &Payload, ack: u32) -> Bytes {
        let mut out = Vec::with_capacity(payload.bytes.len() + 20);
        codec::encode_frame(
            self.tick,
            payload.base,
            self.checksum,
            ack,
            &payload.bytes,
            &mut out,
        );
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use game_core::protocol::{Frame, ServerMsg};
    use game_core::replica::Replica;
    use game_core::{EntityKind, EntityState};

    fn snap(tick: u32, x: i32) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            tick,
            entities: vec![EntityState {
                x,
                ..EntityState::new(1, EntityKind::Ship)
            }],
        })
    }

    fn apply(r: &mut Replica, p: &Published, payload: &Payload) {
        let bytes = p.frame_bytes(payload, p.ack_for(1));
        let Ok(ServerMsg::Frame(f)) = codec::decode_server(&bytes) else {
            panic!("not a frame")
        };
        let f: Frame = f;
        r.apply(&f).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn spectator_frames_are_built_once_per_send() {
        let (a, b) = (snap(10, 1), snap(12, 2));
        let p = Published::next(
            Some(10),
            b.clone(),
            Bytes::from(delta::encode(&a, &b)),
            vec![(1, 3)],
            10,
        );
        let mut enc = Encoder::new();
        let shared = p
            .payload_for(Some(&a), &mut enc)
            .unwrap_or_else(|| panic!("delta"));
        let (one, two) = (p.frame_bytes(&shared, 0), p.frame_bytes(&shared, 0));
        assert_eq!(
            one.as_ptr(),
            two.as_ptr(),
            "one allocation for every spectator"
        );
        let player = p.frame_bytes(&shared, 3);
        assert_ne!(one, player, "a player's frame carries its own ack");
        let Ok(ServerMsg::Frame(f)) = codec::decode_server(&player) else {
            panic!("frame")
        };
        assert_eq!(f.ack, 3);
        use base64::Engine;
        let event = p.frame_sse(&shared, 0);
        assert_eq!(event.as_ptr(), p.frame_sse(&shared, 0).as_ptr(), "shared");
        let text = std::str::from_utf8(&event).unwrap_or_else(|e| panic!("{e}"));
        let data = text
            .strip_prefix("id: 12\nevent: frame\ndata: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("{text:?}"));
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .ok()
                .as_deref(),
            Some(&one[..])
        );
    }

    #[test]
    fn picks_shared_delta_own_delta_or_keyframe() {
        let (a, b, c) = (snap(10, 1), snap(12, 2), snap(14, 3));
        let p1 = Published::first(a.clone());
        let d = Bytes::from(delta::encode(&a, &b));
        let p2 = Published::next(Some(10), b.clone(), d, vec![(1, 7)], 10);
        let p3 = Published::next(
            Some(12),
            c.clone(),
            Bytes::from(delta::encode(&b, &c)),
            vec![(1, 9)],
            10,
        );
        let mut enc = Encoder::new();

        // A new client: keyframe.
        let mut r = Replica::new();
        let k = p1
            .payload_for(None, &mut enc)
            .unwrap_or_else(|| panic!("keyframe"));
        assert_eq!(k.base, None);
        apply(&mut r, &p1, &k);
        // Up to date: nothing.
        assert!(p1.payload_for(Some(&a), &mut enc).is_none());
        // Next send: the shared bytes, not a copy.
        let s = p2
            .payload_for(Some(&a), &mut enc)
            .unwrap_or_else(|| panic!("delta"));
        assert_eq!(
            (s.base, s.bytes.as_ptr()),
            (Some(10), p2.delta_from_prev.as_ptr())
        );
        // Skipped a send: its own delta from what it holds.
        let own = p3
            .payload_for(Some(&a), &mut enc)
            .unwrap_or_else(|| panic!("delta"));
        assert_eq!(own.base, Some(10));
        apply(&mut r, &p3, &own);
        assert_eq!(r.snapshot(), Some(&*c));
        assert_eq!(p3.ack_for(1), 9);
        assert_eq!(p3.ack_for(2), 0);
        // A baseline older than the history: keyframe.
        let old = snap(2, 0);
        assert_eq!(
            p3.payload_for(Some(&old), &mut enc).map(|p| p.base),
            Some(None)
        );
    }
}
