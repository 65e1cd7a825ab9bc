//! A room: one world, its fixed-tick task, and the handle connections use to reach it.
//!
//! The room task (`room/task.rs`) owns the [`World`](game_core::world::World); nothing else
//! mutates it. Each tick it drains every player's bounded input queue, steps the world, and on
//! send ticks publishes an [`Arc<Published>`](Published) through a `watch` channel (latest value
//! only), with the delta from the previous send encoded once. Connections pull from that channel
//! at their own pace, so a slow one skips sends and nothing queues behind it.
//!
//! Timing is a [`FixedClock`](game_core::clock::FixedClock): the task sleeps until the next tick
//! is due and runs as many whole ticks as elapsed time allows, capped, so simulation time stays
//! exact when it wakes late.

use crate::fanout::Published;
use game_core::arena::Arena;
use game_core::protocol::ArenaInfo;
use game_core::{Input, NetId, SessionToken, Snapshot};
use std::collections::VecDeque;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

mod task;
pub use task::spawn;

/// Most ticks run back to back after a late wake-up; the rest of the lag is dropped.
const MAX_CATCHUP_TICKS: u32 = 8;
/// Chat lines a room keeps for clients that resume or join (the last few are a newcomer's).
pub const CHAT_LOG: usize = 32;
/// Chat lines a client that joins without a cursor gets.
pub const CHAT_BACKLOG: usize = 10;
/// Room commands (join, resume, leave, chat) waiting for the task; senders wait when it is full.
const COMMAND_QUEUE: usize = 256;

/// One sequenced input from a connection to the room.
pub type InputMsg = (u32, Input);

/// Who made a room: the server's own rooms never idle out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Created at start-up (`default`).
    Server,
    /// Created through the API; closes when empty for `room_idle_secs`.
    User,
}

/// Live figures of a room, written by the room task and by connections, read by the API.
#[derive(Debug, Default)]
pub struct RoomStats {
    /// Human players holding a ship (connected or within their reconnect grace).
    pub players: AtomicU32,
    /// AI ships.
    pub ai_ships: AtomicU32,
    /// Connected spectators.
    pub spectators: AtomicU32,
    /// The room's current tick.
    pub tick: AtomicU32,
    /// This room's tick durations.
    pub ticks: crate::metrics::TickHistogram,
}

/// The rules a client needs to predict its own ship between frames (see the arena's
/// `[rules.ship]` and `[rules.boost]`).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Flight {
    /// Degrees per second at full stick.
    pub turn_rate: f32,
    /// Acceleration at full thrust, units per second².
    pub thrust: f32,
    /// Fraction of `thrust` when reversing.
    pub reverse_power: f32,
    /// Speed decays as e^(−drag · t).
    pub drag: f32,
    /// Speed cap without boost, units per second.
    pub max_speed: f32,
    /// Thrust and speed-cap multiplier while boosting.
    pub boost_multiplier: f32,
}

impl Flight {
    fn of(arena: &Arena) -> Self {
        let (s, b) = (&arena.rules.ship, &arena.rules.boost);
        Self {
            turn_rate: s.turn_rate,
            thrust: s.thrust,
            reverse_power: s.reverse_power,
            drag: s.drag,
            max_speed: s.max_speed,
            boost_multiplier: b.multiplier,
        }
    }
}

/// What a successful join or resume gives a connection.
#[derive(Debug)]
pub struct Joined {
    /// The player's ship.
    pub ship: NetId,
    /// The session token to resume with.
    pub token: SessionToken,
    /// Where to send inputs. Bounded (`input_queue`); dropping it tells the room the
    /// connection ended, which starts the reconnect grace period.
    pub inputs: mpsc::Sender<InputMsg>,
    /// Cancelled when a newer connection takes over this session.
    pub replaced: CancellationToken,
}

/// Why a join or resume was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// No space for another player.
    #[error("the room is full")]
    Full,
    /// The token names no live session in this room.
    #[error("unknown or expired session token")]
    BadToken,
    /// The room is closing or gone.
    #[error("the room is closed")]
    Closed,
}

/// Why a chat line was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// The room's command queue is full.
    #[error("the room is busy; try again")]
    Busy,
    /// The room is closing or gone.
    #[error("the room is closed")]
    Closed,
}

enum Command {
    Join {
        name: String,
        link: Option<Arc<crate::ws_link::Link>>,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
    },
    Resume {
        token: SessionToken,
        link: Option<Arc<crate::ws_link::Link>>,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
    },
    Leave {
        ship: NetId,
        token: SessionToken,
    },
    Chat {
        ship: NetId,
        text: String,
    },
    /// Test builds only: panic in the room task.
    #[cfg(feature = "fault-injection")]
    Fault,
}

/// A cheap, cloneable handle to a running room.
#[derive(Clone, Debug)]
pub struct Room {
    inner: Arc<RoomShared>,
}

#[derive(Debug)]
struct RoomShared {
    id: String,
    owner: Owner,
    capacity: u16,
    tick_rate: u16,
    send_rate: u16,
    arena: ArenaInfo,
    /// How ships fly, for clients that predict their own ship.
    flight: Flight,
    /// Commands to the task. Bounded; a full queue makes joiners wait (with a timeout).
    commands: mpsc::Sender<Command>,
    /// The latest send. Latest-value only: a receiver that lags sees just the newest.
    published: watch::Receiver<Arc<Published>>,
    /// Recent sends, oldest first, for resuming from a tick. Bounded by `history_sends`.
    history: Mutex<VecDeque<Arc<Snapshot>>>,
    stats: RoomStats,
    /// Cancelled when the task has ended, for whatever reason.
    closed: CancellationToken,
    /// Its up-to-date SSE spectators, written to together.
    hub: crate::hub::Hub,
    /// Its up-to-date WebSocket sessions, written to together.
    ws_hub: crate::ws_hub::WsHub,
}

impl Room {
    /// The room's id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Who created it.
    pub fn owner(&self) -> Owner {
        self.inner.owner
    }

    /// Human players it holds at most.
    pub fn capacity(&self) -> u16 {
        self.inner.capacity
    }

    /// Ticks per second.
    pub fn tick_rate(&self) -> u16 {
        self.inner.tick_rate
    }

    /// Sends per second.
    pub fn send_rate(&self) -> u16 {
        self.inner.send_rate
    }

    /// What clients draw.
    pub fn arena(&self) -> &ArenaInfo {
        &self.inner.arena
    }

    /// How ships fly here.
    pub fn flight(&self) -> &Flight {
        &self.inner.flight
    }

    /// Live figures.
    pub fn stats(&self) -> &RoomStats {
        &self.inner.stats
    }

    /// A receiver of the room's sends.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.inner.published.clone()
    }

    /// Its shared writers for SSE spectators.
    pub fn hub(&self) -> &crate::hub::Hub {
        &self.inner.hub
    }

    /// Its shared writers for WebSocket sessions.
    pub fn ws_hub(&self) -> &crate::ws_hub::WsHub {
        &self.inner.ws_hub
    }

    /// Whether the room's task has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    /// The snapshot of a recent send at `tick`, if the history still has it.
    pub fn baseline(&self, tick: u32) -> Option<Arc<Snapshot>> {
        let history = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        let i = history.binary_search_by_key(&tick, |s| s.tick).ok()?;
        history.get(i).cloned()
    }

    /// Adds a player with a new ship.
    ///
    /// A WebSocket player gives its `link`: the room reads the player's inputs from it at its
    /// ticks while the session lets it ([`crate::ws_link::Reader`]).
    pub async fn join(
        &self,
        name: String,
        link: Option<Arc<crate::ws_link::Link>>,
    ) -> Result<Joined, JoinError> {
        self.request(|reply| Command::Join { name, link, reply })
            .await
    }

    /// Takes over the ship of an existing session.
    pub async fn resume(
        &self,
        token: SessionToken,
        link: Option<Arc<crate::ws_link::Link>>,
    ) -> Result<Joined, JoinError> {
        self.request(|reply| Command::Resume { token, link, reply })
            .await
    }

    /// Removes a player's ship now, without waiting for the grace period.
    pub async fn leave(&self, ship: NetId, token: SessionToken) {
        let send = self.inner.commands.send(Command::Leave { ship, token });
        // If the room is gone or stuck, the grace period removes the ship anyway.
        let _ = tokio::time::timeout(Duration::from_secs(2), send).await;
    }

    /// Says `text` (already checked and cleaned) in the room's chat as `ship`'s player. Never
    /// waits: when the room's command queue is full the line is refused.
    pub fn chat(&self, ship: NetId, text: String) -> Result<(), ChatError> {
        use mpsc::error::TrySendError;
        match self.inner.commands.try_send(Command::Chat { ship, text }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(ChatError::Busy),
            Err(TrySendError::Closed(_)) => Err(ChatError::Closed),
        }
    }

    /// Test builds only (feature `fault-injection`): makes the room task panic, as a bug in
    /// the simulation would.
    #[cfg(feature = "fault-injection")]
    pub async fn inject_fault(&self) {
        let send = self.inner.commands.send(Command::Fault);
        let _ = tokio::time::timeout(Duration::from_secs(2), send).await;
    }

    async fn request(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<Joined, JoinError>>) -> Command,
    ) -> Result<Joined, JoinError> {
        let (reply, answer) = oneshot::channel();
        let ask = async {
            self.inner
                .commands
                .send(make(reply))
                .await
                .map_err(|_| JoinError::Closed)?;
            answer.await.map_err(|_| JoinError::Closed)?
        };
        tokio::time::timeout(Duration::from_secs(5), ask)
            .await
            .unwrap_or(Err(JoinError::Closed))
    }
}
