//! `--inject-desync`: a replica that receives one corrupted frame, to prove that the tool
//! detects desyncs and fails the run (the tool's own tests use it).

use game_core::protocol::Frame;
use game_core::replica::{Replica, ReplicaError};

use bots::FrameSink;

/// Which received frame `--inject-desync` corrupts: late enough that the client has state.
pub const CORRUPT_NTH: u32 = 5;

/// A replica that receives one corrupted frame (`--inject-desync`): the `CORRUPT_NTH`-th
/// frame's checksum is altered before it is applied, as a server bug or a bit flip would, so
/// the replica must report a desync.
#[derive(Debug)]
pub struct Corrupting {
    inner: Replica,
    countdown: u32,
}

impl Corrupting {
    /// A replica whose `CORRUPT_NTH`-th frame will be corrupted.
    pub fn new() -> Self {
        Self {
            inner: Replica::new(),
            countdown: CORRUPT_NTH,
        }
    }
}

impl Default for Corrupting {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameSink for Corrupting {
    fn accept(&mut self, frame: &Frame) -> Result<(), ReplicaError> {
        if self.countdown == 1 {
            self.countdown = 0;
            let mut bad = frame.clone();
            bad.checksum ^= 0x5a5a_5a5a;
            return self.inner.accept(&bad);
        }
        self.countdown = self.countdown.saturating_sub(1);
        self.inner.accept(frame)
    }

    fn tick(&self) -> Option<u32> {
        FrameSink::tick(&self.inner)
    }

    fn reset(&mut self) {
        FrameSink::reset(&mut self.inner);
    }

    fn snapshot(&self) -> Option<&game_core::snapshot::Snapshot> {
        FrameSink::snapshot(&self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_is_corrupted() {
        let snap = game_core::snapshot::Snapshot {
            tick: 1,
            entities: Vec::new(),
        };
        let frame = |tick| Frame {
            tick,
            base: None,
            checksum: snap.checksum(),
            ack: 0,
            delta: game_core::delta::keyframe(&snap),
        };
        let mut c = Corrupting::new();
        let results: Vec<bool> = (0..8).map(|_| c.accept(&frame(1)).is_ok()).collect();
        let bad = results.iter().filter(|ok| !**ok).count();
        assert_eq!(bad, 1, "{results:?}");
    }
}
