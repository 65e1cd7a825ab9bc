//! Network ids: small integers for the wire, mapped to the world's slotmap keys.
//!
//! Ids are `1..=65535` (0 means "nobody" in `owner` fields). A wrapping counter hands them out
//! and skips ids in use, so an id that was just freed is not reused until the counter comes
//! round again: a client that still holds a stale id (a delta in flight, a kill message) does
//! not mistake a brand-new bullet for the ship that just left. A bitset of ids in use lets the
//! world walk entities in id order without sorting, which is how snapshots come out sorted.

use super::EntityKey;
use crate::snapshot::NetId;

/// Number of ids, 0 included.
const ID_SPACE: usize = 1 << 16;

/// The id ↔ key table and the allocator.
#[derive(Clone)]
pub(super) struct Ids {
    /// Key of each id in use (indexed by id).
    key_of: Vec<Option<EntityKey>>,
    /// Bit `id` set when the id is in use.
    used: Vec<u64>,
    /// The next id to try.
    next: NetId,
    /// Ids in use.
    live: usize,
}

impl Ids {
    pub(super) fn new() -> Self {
        Self {
            key_of: vec![None; ID_SPACE],
            used: vec![0; ID_SPACE / 64],
            next: 1,
            live: 0,
        }
    }

    /// Reserves a fresh id, or `None` when all 65535 are in use. Bind it with [`Ids::bind`].
    pub(super) fn alloc(&mut self) -> Option<NetId> {
        if self.live >= ID_SPACE - 1 {
            return None;
        }
        // At least one id is free, so this ends within 65535 steps.
        loop {
            let id = self.next;
            self.next = if id == NetId::MAX { 1 } else { id + 1 };
            if id != 0 && !self.in_use(id) {
                self.used[usize::from(id) / 64] |= 1 << (id % 64);
                self.live += 1;
                return Some(id);
            }
        }
    }

    /// Records the key of a reserved id.
    pub(super) fn bind(&mut self, id: NetId, key: EntityKey) {
        self.key_of[usize::from(id)] = Some(key);
    }

    /// Releases an id; returns the key it had.
    pub(super) fn free(&mut self, id: NetId) -> Option<EntityKey> {
        if id == 0 || !self.in_use(id) {
            return None;
        }
        self.used[usize::from(id) / 64] &= !(1 << (id % 64));
        self.live -= 1;
        self.key_of[usize::from(id)].take()
    }

    /// The key of an id in use.
    pub(super) fn key(&self, id: NetId) -> Option<EntityKey> {
        self.key_of.get(usize::from(id)).copied().flatten()
    }

    fn in_use(&self, id: NetId) -> bool {
        self.used[usize::from(id) / 64] & (1 << (id % 64)) != 0
    }

    /// Ids in use.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// A table of how many ids are in use below each id: the position an id takes in a list
    /// sorted by id.
    pub(super) fn ranks(&self) -> Ranks<'_> {
        let mut before = [0u32; ID_SPACE / 64];
        let mut total = 0;
        for (slot, &word) in before.iter_mut().zip(&self.used) {
            *slot = total;
            total += word.count_ones();
        }
        Ranks {
            used: &self.used,
            before,
        }
    }

    /// Every bound id with its key, in ascending id order.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (NetId, EntityKey)> + '_ {
        self.used.iter().enumerate().flat_map(move |(w, &word)| {
            BitIter(word).filter_map(move |bit| {
                let id = (w * 64 + bit) as NetId;
                self.key_of[usize::from(id)].map(|k| (id, k))
            })
        })
    }
}

/// See [`Ids::ranks`].
pub(super) struct Ranks<'a> {
    used: &'a [u64],
    /// Ids in use in all words before each word.
    before: [u32; ID_SPACE / 64],
}

impl Ranks<'_> {
    /// How many ids in use are smaller than `id`.
    pub(super) fn rank(&self, id: NetId) -> usize {
        let (w, bit) = (usize::from(id) / 64, id % 64);
        let below = self.used[w] & ((1u64 << bit) - 1);
        (self.before[w] + below.count_ones()) as usize
    }
}

/// The set bits of a word, lowest first.
#[cfg(test)]
struct BitIter(u64);

#[cfg(test)]
impl Iterator for BitIter {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotmap::SlotMap;

    #[test]
    fn ids_are_unique_nonzero_and_not_reused_at_once() {
        let mut keys: SlotMap<EntityKey, ()> = SlotMap::with_key();
        let mut ids = Ids::new();
        let a = ids.alloc().expect("id");
        ids.bind(a, keys.insert(()));
        let b = ids.alloc().expect("id");
        ids.bind(b, keys.insert(()));
        assert_eq!((a, b), (1, 2));
        assert!(ids.free(a).is_some());
        assert_eq!(ids.key(a), None);
        let c = ids.alloc().expect("id");
        assert_eq!(c, 3, "a just-freed id is not handed straight back");
        assert_eq!(ids.free(99), None);
        assert_eq!(ids.free(0), None);
    }

    #[test]
    fn wraps_skipping_ids_in_use_and_fails_when_full() {
        let mut keys: SlotMap<EntityKey, ()> = SlotMap::with_key();
        let mut ids = Ids::new();
        let mut held = Vec::new();
        for _ in 0..65535 {
            let id = ids.alloc().expect("room for 65535");
            ids.bind(id, keys.insert(()));
            held.push(id);
        }
        assert_eq!(ids.alloc(), None);
        assert_eq!(ids.len(), 65535);
        assert!(ids.free(500).is_some());
        assert!(ids.free(7).is_some());
        // The counter has wrapped to 1: the next free id after it is 7, then 500.
        assert_eq!(ids.alloc(), Some(7));
        assert_eq!(ids.alloc(), Some(500));
        assert_eq!(ids.alloc(), None);
        let order: Vec<NetId> = ids.iter().map(|(id, _)| id).take(5).collect();
        assert_eq!(order, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn iter_is_sorted_and_maps_keys() {
        let mut keys: SlotMap<EntityKey, NetId> = SlotMap::with_key();
        let mut ids = Ids::new();
        for _ in 0..300 {
            let id = ids.alloc().expect("id");
            ids.bind(id, keys.insert(id));
        }
        for id in (1..300).step_by(3) {
            ids.free(id);
        }
        let listed: Vec<(NetId, EntityKey)> = ids.iter().collect();
        assert_eq!(listed.len(), ids.len());
        let ranks = ids.ranks();
        assert!(
            listed
                .iter()
                .enumerate()
                .all(|(i, &(id, _))| ranks.rank(id) == i)
        );
        assert!(listed.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(
            listed
                .iter()
                .all(|&(id, k)| keys[k] == id && ids.key(id) == Some(k))
        );
    }
}
