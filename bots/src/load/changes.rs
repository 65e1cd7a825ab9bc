//! Bytes per changed entity: what a verifying client's frames cost per entity that changed.
//!
//! After each verified frame the client compares the new state with the one before it (both
//! sorted by id) and counts entities added, removed or with any field different; the report
//! divides the frames' bytes by that count. Only verifying clients can count: a skimming client
//! holds no state.

use game_core::snapshot::EntityState;

/// What verified frames changed, for bytes per changed entity.
#[derive(Debug, Default)]
pub struct Changes {
    /// The state before the latest frame (reused buffer).
    pub prev: Vec<EntityState>,
    /// Entities that changed, over every frame counted.
    pub entities: u64,
    /// Bytes of those frames.
    pub bytes: u64,
    /// Entities held after each frame, summed.
    pub seen: u64,
}

impl Changes {
    /// Counts the change from the previous state to `now`, carried by a frame of `bytes`.
    pub fn count(&mut self, now: &[EntityState], bytes: usize) {
        self.entities += changed(&self.prev, now);
        self.bytes += bytes as u64;
        self.seen += now.len() as u64;
        self.prev.clear();
        self.prev.extend_from_slice(now);
    }
}

/// Entities added, removed or different between two id-sorted lists.
pub fn changed(a: &[EntityState], b: &[EntityState]) -> u64 {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.id == y.id => {
                n += u64::from(x != y);
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.id < y.id => {
                n += 1;
                i += 1;
            }
            (Some(_), None) => {
                n += 1;
                i += 1;
            }
            _ => {
                n += 1;
                j += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_between_states() {
        use game_core::snapshot::EntityKind;
        let e = |id, x| EntityState {
            x,
            ..EntityState::new(id, EntityKind::Asteroid)
        };
        let a = [e(1, 0), e(2, 0), e(4, 0)];
        assert_eq!(changed(&a, &a), 0);
        // 1 moved, 2 removed, 3 added, 4 unchanged, 5 added.
        assert_eq!(changed(&a, &[e(1, 9), e(3, 0), e(4, 0), e(5, 0)]), 4);
        assert_eq!(changed(&[], &a), 3);
        assert_eq!(changed(&a, &[]), 3);
    }
}
