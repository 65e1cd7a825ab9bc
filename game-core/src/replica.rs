//! A replica: the client-side copy of a room's state, rebuilt from frames and proven by checksum.
//!
//! Bots, tests and (through the golden vectors, in JavaScript) the browser keep one. After every
//! frame the replica compares its state's checksum with the server's; a mismatch is a *desync*:
//! it is counted, the state is dropped, and the client must resume with a keyframe. A replica
//! never silently diverges.

use crate::delta::{self, DeltaError};
use crate::protocol::Frame;
use crate::snapshot::Snapshot;

/// Why a frame was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    /// A delta from a tick the replica does not hold; the state is unchanged.
    #[error("frame is a delta from tick {base}, but the replica holds {have:?}")]
    BaseMismatch {
        /// The frame's baseline.
        base: u32,
        /// The replica's tick, if it has state.
        have: Option<u32>,
    },
    /// The delta payload is malformed; the state is unchanged.
    #[error("bad delta in frame for tick {tick}: {source}")]
    Delta {
        /// The frame's tick.
        tick: u32,
        /// What was wrong.
        source: DeltaError,
    },
    /// The rebuilt state does not match the server's checksum; the state was dropped.
    #[error("desync at tick {tick}: server checksum {expected:#010x}, replica {actual:#010x}")]
    Desync {
        /// The frame's tick.
        tick: u32,
        /// The server's checksum.
        expected: u32,
        /// The replica's.
        actual: u32,
    },
}

/// The client-side state of one room.
#[derive(Debug, Default, Clone)]
pub struct Replica {
    state: Option<Snapshot>,
    frames: u64,
    desyncs: u64,
}

impl Replica {
    /// A replica with no state; its first frame must be a keyframe.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a frame and verifies the result against the frame's checksum.
    pub fn apply(&mut self, frame: &Frame) -> Result<&Snapshot, ReplicaError> {
        let next = match frame.base {
            None => delta::apply(&Snapshot::empty(), frame.tick, &frame.delta),
            Some(base) => match &self.state {
                Some(s) if s.tick == base => delta::apply(s, frame.tick, &frame.delta),
                other => {
                    return Err(ReplicaError::BaseMismatch {
                        base,
                        have: other.as_ref().map(|s| s.tick),
                    });
                }
            },
        }
        .map_err(|source| ReplicaError::Delta {
            tick: frame.tick,
            source,
        })?;
        let actual = next.checksum();
        if actual != frame.checksum {
            self.state = None;
            self.desyncs += 1;
            return Err(ReplicaError::Desync {
                tick: frame.tick,
                expected: frame.checksum,
                actual,
            });
        }
        self.frames += 1;
        Ok(self.state.insert(next))
    }

    /// The verified state, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.state.as_ref()
    }

    /// The tick of the verified state: the cursor to resume from.
    pub fn tick(&self) -> Option<u32> {
        self.state.as_ref().map(|s| s.tick)
    }

    /// Frames applied and verified.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Checksum mismatches seen.
    pub fn desyncs(&self) -> u64 {
        self.desyncs
    }

    /// Forgets the state, so the next frame must be a keyframe.
    pub fn reset(&mut self) {
        self.state = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{EntityKind, EntityState};

    fn snap(tick: u32, xs: &[i32]) -> Snapshot {
        let entities = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| EntityState {
                x,
                ..EntityState::new(i as u16 + 1, EntityKind::Asteroid)
            })
            .collect();
        Snapshot { tick, entities }
    }

    fn frame(base: Option<&Snapshot>, to: &Snapshot) -> Frame {
        let delta = match base {
            Some(b) => delta::encode(b, to),
            None => delta::keyframe(to),
        };
        Frame {
            tick: to.tick,
            base: base.map(|b| b.tick),
            checksum: to.checksum(),
            ack: 0,
            delta,
        }
    }

    #[test]
    fn follows_keyframe_then_deltas() {
        let (a, b, c) = (snap(10, &[1, 2]), snap(12, &[1, 5, 9]), snap(14, &[7]));
        let mut r = Replica::new();
        assert_eq!(r.apply(&frame(None, &a)), Ok(&a));
        assert_eq!(r.apply(&frame(Some(&a), &b)), Ok(&b));
        assert_eq!(r.apply(&frame(Some(&b), &c)), Ok(&c));
        assert_eq!((r.frames(), r.desyncs(), r.tick()), (3, 0, Some(14)));
    }

    #[test]
    fn refuses_a_delta_from_another_tick_and_keeps_state() {
        let (a, b, c) = (snap(10, &[1]), snap(12, &[2]), snap(14, &[3]));
        let mut r = Replica::new();
        assert_eq!(
            r.apply(&frame(Some(&a), &b)),
            Err(ReplicaError::BaseMismatch {
                base: 10,
                have: None
            })
        );
        r.apply(&frame(None, &a))
            .map(|_| ())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.apply(&frame(Some(&b), &c)),
            Err(ReplicaError::BaseMismatch {
                base: 12,
                have: Some(10)
            })
        );
        assert_eq!(r.snapshot(), Some(&a));
    }

    #[test]
    fn reports_desync_and_drops_state() {
        let (a, b) = (snap(10, &[1]), snap(12, &[2]));
        let mut r = Replica::new();
        assert!(r.apply(&frame(None, &a)).is_ok());
        let mut bad = frame(Some(&a), &b);
        bad.checksum ^= 1;
        assert!(matches!(
            r.apply(&bad),
            Err(ReplicaError::Desync { tick: 12, .. })
        ));
        assert_eq!((r.desyncs(), r.snapshot()), (1, None));
        // A keyframe repairs it.
        assert_eq!(r.apply(&frame(None, &b)), Ok(&b));
    }

    #[test]
    fn malformed_delta_keeps_state() {
        let a = snap(10, &[1]);
        let mut r = Replica::new();
        assert!(r.apply(&frame(None, &a)).is_ok());
        let bad = Frame {
            tick: 11,
            base: Some(10),
            checksum: 0,
            ack: 0,
            delta: vec![9],
        };
        assert!(matches!(
            r.apply(&bad),
            Err(ReplicaError::Delta { tick: 11, .. })
        ));
        assert_eq!(r.snapshot(), Some(&a));
    }
}
