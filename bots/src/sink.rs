//! What a follower does with each frame it receives: verify it in full, or only skim it.
//!
//! Every transport's follower decodes a frame and hands it to a [`FrameSink`]. The usual sink
//! is a [`Replica`]: it applies the delta and proves the result against the frame's checksum,
//! which is what tests and bots want. A load generator with thousands of clients cannot afford
//! that for every one of them (applying and checksumming a room's state costs microseconds per
//! frame, times every client), so it verifies a sample and gives the others a [`Skim`]: it
//! keeps only the frame's tick (the resume cursor) and checks that each delta starts from the
//! tick it holds — the cheap half of verification, which still catches a server sending a
//! delta from the wrong baseline. Acks, byte counts and latencies are measured by the follower
//! either way, so a skimming client measures exactly what a verifying one does.
//!
//! ```text
//! follower ─ decode ServerMsg::Frame ─► FrameSink::accept ─► Replica: delta::apply + checksum
//!                                                          └► Skim: base == held tick? keep tick
//! ```

use game_core::protocol::Frame;
use game_core::replica::{Replica, ReplicaError};
use game_core::snapshot::Snapshot;

/// Takes the frames a follower receives. See the module docs.
pub trait FrameSink {
    /// Takes one frame. An error is a desync: the follower counts it and ends the connection,
    /// and the client resumes per [`ClientError::recovery`](crate::ClientError::recovery).
    fn accept(&mut self, frame: &Frame) -> Result<(), ReplicaError>;

    /// The tick of the last frame taken (and, for a replica, verified): the cursor to resume
    /// from; `None` before the first frame or after a desync.
    fn tick(&self) -> Option<u32>;

    /// Forgets the state, so the next frame must be a keyframe.
    fn reset(&mut self);

    /// The verified state, for a client that steers by it; a skimming sink has none.
    fn snapshot(&self) -> Option<&Snapshot> {
        None
    }
}

impl FrameSink for Replica {
    fn accept(&mut self, frame: &Frame) -> Result<(), ReplicaError> {
        self.apply(frame).map(|_| ())
    }

    fn tick(&self) -> Option<u32> {
        Replica::tick(self)
    }

    fn reset(&mut self) {
        Replica::reset(self);
    }

    fn snapshot(&self) -> Option<&Snapshot> {
        Replica::snapshot(self)
    }
}

/// A sink that keeps only the tick: no delta is applied and no checksum computed. It still
/// refuses a delta whose baseline is not the tick it holds ([`ReplicaError::BaseMismatch`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skim {
    tick: Option<u32>,
}

impl Skim {
    /// A skim holding nothing: its first frame must be a keyframe.
    pub fn new() -> Self {
        Self::default()
    }
}

impl FrameSink for Skim {
    fn accept(&mut self, frame: &Frame) -> Result<(), ReplicaError> {
        if let Some(base) = frame.base
            && self.tick != Some(base)
        {
            return Err(ReplicaError::BaseMismatch {
                base,
                have: self.tick,
            });
        }
        self.tick = Some(frame.tick);
        Ok(())
    }

    fn tick(&self) -> Option<u32> {
        self.tick
    }

    fn reset(&mut self) {
        self.tick = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tick: u32, base: Option<u32>) -> Frame {
        Frame {
            tick,
            base,
            checksum: 0xdead_beef,
            ack: 0,
            delta: vec![0xff; 3],
        }
    }

    #[test]
    fn a_skim_follows_ticks_and_refuses_a_wrong_baseline() {
        let mut s = Skim::new();
        assert_eq!(
            s.accept(&frame(5, Some(3))),
            Err(ReplicaError::BaseMismatch {
                base: 3,
                have: None
            })
        );
        // Neither the payload nor the checksum is looked at.
        assert_eq!(s.accept(&frame(7, None)), Ok(()));
        assert_eq!(s.accept(&frame(9, Some(7))), Ok(()));
        assert_eq!(FrameSink::tick(&s), Some(9));
        assert!(s.accept(&frame(11, Some(8))).is_err());
        s.reset();
        assert_eq!(FrameSink::tick(&s), None);
        assert_eq!(s.snapshot(), None);
    }

    #[test]
    fn a_replica_as_a_sink_verifies() {
        let snap = Snapshot {
            tick: 4,
            entities: Vec::new(),
        };
        let good = Frame {
            tick: 4,
            base: None,
            checksum: snap.checksum(),
            ack: 0,
            delta: game_core::delta::keyframe(&snap),
        };
        let mut r = Replica::new();
        assert_eq!(r.accept(&good), Ok(()));
        assert_eq!(FrameSink::tick(&r), Some(4));
        assert!(FrameSink::snapshot(&r).is_some());
        let bad = Frame {
            checksum: good.checksum ^ 1,
            ..good
        };
        assert!(matches!(r.accept(&bad), Err(ReplicaError::Desync { .. })));
        assert_eq!(FrameSink::tick(&r), None);
    }
}
