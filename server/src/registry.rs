//! The rooms a server holds: create, find, list, matchmake; rooms remove themselves on close.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::room::{self, Owner, Room};
use game_core::arena::Arena;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest room id accepted from a client.
pub const MAX_ROOM_ID: usize = 32;

/// Why a room could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// `max_rooms` rooms are open.
    #[error("the server holds its maximum of {0} rooms")]
    TooMany(usize),
    /// The id is taken.
    #[error("a room named {0:?} exists")]
    Exists(String),
    /// The id has characters or a length we do not accept.
    #[error("a room id is 1–32 characters of a–z, A–Z, 0–9, '-' and '_'")]
    BadId,
}

/// Every open room, by id. Cloning shares the same registry.
#[derive(Clone)]
pub struct Registry {
    rooms: Arc<Mutex<BTreeMap<String, Room>>>,
    arena: Arc<Arena>,
    cfg: Arc<Config>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl Registry {
    /// An empty registry whose rooms run on `tracker` and stop on `shutdown`.
    pub fn new(
        arena: Arena,
        cfg: Arc<Config>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            rooms: Arc::default(),
            arena: Arc::new(arena),
            cfg,
            metrics,
            shutdown,
            tracker,
            next_id: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The room with `id`, if open.
    pub fn get(&self, id: &str) -> Option<Room> {
        self.lock().get(id).filter(|r| !r.is_closed()).cloned()
    }

    /// Every open room, by id.
    pub fn list(&self) -> Vec<Room> {
        self.lock()
            .values()
            .filter(|r| !r.is_closed())
            .cloned()
            .collect()
    }

    /// Number of open rooms.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no room is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Opens a room; `id: None` picks a fresh one.
    pub fn create(&self, id: Option<String>, owner: Owner) -> Result<Room, CreateError> {
        let mut rooms = self.lock();
        if rooms.len() >= self.cfg.max_rooms {
            return Err(CreateError::TooMany(self.cfg.max_rooms));
        }
        let id = match id {
            Some(id) if !valid_id(&id) => return Err(CreateError::BadId),
            Some(id) if rooms.contains_key(&id) => return Err(CreateError::Exists(id)),
            Some(id) => id,
            None => loop {
                let n = self.next_id.fetch_add(1, Relaxed) + 1;
                let id = format!("r{n}");
                if !rooms.contains_key(&id) {
                    break id;
                }
            },
        };
        let seed = self.cfg.seed ^ fxhash(&id);
        let (room, done) = room::spawn(
            id.clone(),
            owner,
            (*self.arena).clone(),
            seed,
            self.cfg.clone(),
            self.metrics.clone(),
            self.shutdown.clone(),
        );
        rooms.insert(id.clone(), room.clone());
        let registry = self.clone();
        self.tracker.spawn(async move {
            done.await;
            registry.lock().remove(&id);
        });
        Ok(room)
    }

    /// The fullest room with space for one more player, or a new room.
    pub fn matchmake(&self) -> Result<Room, CreateError> {
        let best = self
            .list()
            .into_iter()
            .filter(|r| r.stats().players.load(Relaxed) < u32::from(r.capacity()))
            .max_by_key(|r| r.stats().players.load(Relaxed));
        match best {
            Some(room) => Ok(room),
            None => self.create(None, Owner::User),
        }
    }
}

fn valid_id(id: &str) -> bool {
    (1..=MAX_ROOM_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A small stable string hash (FNV-1a), to give each room its own world seed.
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids() {
        assert!(valid_id("default"));
        assert!(valid_id("a-b_C9"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id("ü"));
        assert!(!valid_id(&"x".repeat(33)));
    }
}
