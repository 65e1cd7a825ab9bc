//! A room: one world, its fixed-tick task, and the handle connections use to reach it.
//!
//! The room task owns the [`World`]; nothing else mutates it. Each tick it drains every
//! player's bounded input queue, steps the world, and on send ticks publishes an
//! [`Arc<Published>`](Published) through a `watch` channel (latest value only), with the delta
//! from the previous send encoded once. Connections pull from that channel at their own pace,
//! so a slow one skips sends and nothing queues behind it.
//!
//! Timing is a [`FixedClock`]: the task sleeps until the next tick is due and runs as many whole
//! ticks as elapsed time allows, capped, so simulation time stays exact when it wakes late.

use crate::config::Config;
use crate::fanout::Published;
use crate::metrics::{Metrics, Rejection};
use bytes::Bytes;
use game_core::ai::Pilot;
use game_core::arena::Arena;
use game_core::clock::FixedClock;
use game_core::delta::Encoder;
use game_core::protocol::ArenaInfo;
use game_core::world::World;
use game_core::{Input, NetId, SessionToken, Snapshot};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Most ticks run back to back after a late wake-up; the rest of the lag is dropped.
const MAX_CATCHUP_TICKS: u32 = 8;
/// Room commands (join, resume, leave) waiting for the task; senders wait when it is full.
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

enum Command {
    Join {
        name: String,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
    },
    Resume {
        token: SessionToken,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
    },
    Leave {
        ship: NetId,
        token: SessionToken,
    },
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
    pub async fn join(&self, name: String) -> Result<Joined, JoinError> {
        self.request(|reply| Command::Join { name, reply }).await
    }

    /// Takes over the ship of an existing session.
    pub async fn resume(&self, token: SessionToken) -> Result<Joined, JoinError> {
        self.request(|reply| Command::Resume { token, reply }).await
    }

    /// Removes a player's ship now, without waiting for the grace period.
    pub async fn leave(&self, ship: NetId, token: SessionToken) {
        let send = self.inner.commands.send(Command::Leave { ship, token });
        // If the room is gone or stuck, the grace period removes the ship anyway.
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

/// A human player's slot in the room.
struct Player {
    token: SessionToken,
    /// The current connection's queue; `None` while detached (in the grace period).
    inputs: Option<mpsc::Receiver<InputMsg>>,
    last_seq: u32,
    replaced: CancellationToken,
    detached_at: Option<Instant>,
}

/// The task's state: everything the tick loop touches.
struct RoomTask {
    room: Room,
    world: World,
    clock: FixedClock,
    commands: mpsc::Receiver<Command>,
    publisher: Arc<watch::Sender<Arc<Published>>>,
    players: BTreeMap<NetId, Player>,
    by_token: HashMap<SessionToken, NetId>,
    pilots: Vec<(NetId, Pilot)>,
    /// The last published snapshot: the AI's view and the next delta's baseline.
    last_sent: Arc<Snapshot>,
    encoder: Encoder,
    inputs: Vec<(NetId, Input)>,
    send_acc: u32,
    idle_since: Option<Instant>,
    cfg: Arc<Config>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    seed: u64,
}

/// Starts a room task; returns its handle and a future that ends when the task does, and that
/// turns a panic of the task into a closing message to every client.
pub fn spawn(
    id: String,
    owner: Owner,
    arena: Arena,
    seed: u64,
    cfg: Arc<Config>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> (Room, impl std::future::Future<Output = ()> + Send + 'static) {
    let mut world = World::new(arena, cfg.tick_rate, seed);
    let first = Arc::new(world.snapshot());
    let (publisher, published) = watch::channel(Arc::new(Published::first(first.clone())));
    let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let room = Room {
        inner: Arc::new(RoomShared {
            id,
            owner,
            // The arena's ship limit (AI included) caps the humans a room can take.
            capacity: cfg
                .room_capacity
                .min(u16::try_from(world.arena().rules.max_ships).unwrap_or(u16::MAX)),
            tick_rate: cfg.tick_rate,
            send_rate: cfg.send_rate,
            arena: world.arena().info(),
            flight: Flight::of(world.arena()),
            commands: commands_tx,
            published,
            history: Mutex::new(VecDeque::from([first.clone()])),
            stats: RoomStats::default(),
            closed: CancellationToken::new(),
        }),
    };
    let publisher = Arc::new(publisher);
    let mut task = RoomTask {
        room: room.clone(),
        clock: FixedClock::new(cfg.tick_rate, MAX_CATCHUP_TICKS),
        world: {
            // Settle the world a little so the first keyframe shows a match, not a start line.
            world.step(&[]);
            world
        },
        commands,
        publisher: publisher.clone(),
        players: BTreeMap::new(),
        by_token: HashMap::new(),
        pilots: Vec::new(),
        last_sent: first,
        encoder: Encoder::new(),
        inputs: Vec::new(),
        send_acc: 0,
        idle_since: None,
        cfg,
        metrics: metrics.clone(),
        shutdown,
        seed,
    };
    task.rebalance_ai();
    let closed = room.inner.closed.clone();
    let id = room.id().to_owned();
    let done = async move {
        let outcome = tokio::spawn(async move { task.run().await }).await;
        if let Err(e) = outcome {
            metrics.room_panic();
            tracing::error!(room = %id, error = %e, "room task failed; closing the room");
            let last = publisher.borrow().clone();
            publisher.send_replace(Arc::new(last.closing(
                game_core::protocol::close::INTERNAL,
                "the room failed on the server and was closed",
            )));
        }
        closed.cancel();
    };
    (room, done)
}

impl RoomTask {
    async fn run(mut self) {
        tracing::info!(room = %self.room.id(), "room open");
        let mut last = Instant::now();
        let reason = loop {
            let due = last + self.clock.until_next();
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => {
                    break (game_core::protocol::close::GOING_AWAY, "the server is shutting down");
                }
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => { self.handle(cmd); continue; }
                    None => break (game_core::protocol::close::ROOM_CLOSED, "the room closed"),
                },
                _ = tokio::time::sleep_until(due) => {}
            }
            let now = Instant::now();
            let ticks = self.clock.advance(now - last);
            last = now;
            let dropped_before = self.clock.dropped_ticks();
            for _ in 0..ticks {
                let started = std::time::Instant::now();
                self.tick(now);
                self.metrics
                    .tick(started.elapsed(), self.clock.tick_duration());
            }
            let dropped = self.clock.dropped_ticks() - dropped_before;
            if dropped > 0 {
                self.metrics.ticks_dropped(dropped);
            }
            if self.idle_expired(now) {
                break (
                    game_core::protocol::close::ROOM_CLOSED,
                    "the room closed after being empty",
                );
            }
        };
        let last = self.publisher.borrow().clone();
        self.publisher
            .send_replace(Arc::new(last.closing(reason.0, reason.1)));
        tracing::info!(room = %self.room.id(), reason = reason.1, "room closed");
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join { name, reply } => {
                let _ = reply.send(self.join(&name));
            }
            Command::Resume { token, reply } => {
                let _ = reply.send(self.resume(token));
            }
            Command::Leave { ship, token } => {
                if self.players.get(&ship).is_some_and(|p| p.token == token) {
                    self.remove_player(ship);
                }
            }
        }
    }

    fn humans(&self) -> usize {
        self.players.len()
    }

    fn join(&mut self, name: &str) -> Result<Joined, JoinError> {
        if self.humans() >= usize::from(self.room.capacity()) {
            return Err(JoinError::Full);
        }
        // Make room first: an AI ship leaves for every human who arrives.
        let ai_target = usize::from(self.cfg.ai_fill).saturating_sub(self.humans() + 1);
        while self.pilots.len() > ai_target {
            if let Some((id, _)) = self.pilots.pop() {
                self.world.remove_ship(id);
            }
        }
        let ship = self.world.add_ship().ok_or(JoinError::Full)?;
        let token = SessionToken(random_token());
        let (joined, player) = attach(ship, token, 0, self.cfg.input_queue);
        self.players.insert(ship, player);
        self.by_token.insert(token, ship);
        self.update_stats();
        tracing::info!(room = %self.room.id(), ship, name, "player joined");
        Ok(joined)
    }

    fn resume(&mut self, token: SessionToken) -> Result<Joined, JoinError> {
        let ship = *self.by_token.get(&token).ok_or(JoinError::BadToken)?;
        let player = self.players.get_mut(&ship).ok_or(JoinError::BadToken)?;
        // A connection still holding the session is told it was replaced.
        player.replaced.cancel();
        let last_seq = player.last_seq;
        let (joined, fresh) = attach(ship, token, last_seq, self.cfg.input_queue);
        *player = fresh;
        tracing::info!(room = %self.room.id(), ship, "player resumed");
        Ok(joined)
    }

    fn remove_player(&mut self, ship: NetId) {
        if let Some(p) = self.players.remove(&ship) {
            self.by_token.remove(&p.token);
            p.replaced.cancel();
            self.world.remove_ship(ship);
            self.rebalance_ai();
            tracing::info!(room = %self.room.id(), ship, "player left");
        }
    }

    /// Keeps `ai_fill − humans` AI ships in the world.
    fn rebalance_ai(&mut self) {
        let target = usize::from(self.cfg.ai_fill).saturating_sub(self.humans());
        while self.pilots.len() > target {
            if let Some((id, _)) = self.pilots.pop() {
                self.world.remove_ship(id);
            }
        }
        while self.pilots.len() < target {
            let Some(id) = self.world.add_ai_ship() else {
                break;
            };
            self.pilots.push((
                id,
                Pilot::new(self.seed ^ u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            ));
        }
        self.update_stats();
    }

    fn update_stats(&self) {
        let s = self.room.stats();
        s.players.store(self.players.len() as u32, Relaxed);
        s.ai_ships.store(self.pilots.len() as u32, Relaxed);
    }

    /// One simulation tick: inputs in, world stepped, maybe a send out.
    fn tick(&mut self, now: Instant) {
        self.inputs.clear();
        let grace = Duration::from_secs(self.cfg.reconnect_grace_secs);
        let mut expired = Vec::new();
        for (&ship, p) in &mut self.players {
            let Some(rx) = &mut p.inputs else {
                if p.detached_at
                    .is_some_and(|t| now.duration_since(t) >= grace)
                {
                    expired.push(ship);
                }
                continue;
            };
            let mut merged: Option<Input> = None;
            let mut disconnected = false;
            for _ in 0..self.cfg.max_inputs_per_tick {
                match rx.try_recv() {
                    Ok((seq, input)) => {
                        if seq <= p.last_seq {
                            self.metrics.reject(Rejection::InputStale);
                            continue;
                        }
                        p.last_seq = seq;
                        // Buttons pressed in any input of this tick count, so a tap is not lost.
                        let buttons = merged.map_or(0, |m| m.buttons) | input.buttons;
                        merged = Some(Input { buttons, ..input });
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if let Some(input) = merged {
                self.inputs.push((ship, input));
            }
            if disconnected {
                // The connection ended: the ship idles while its owner may come back.
                p.inputs = None;
                p.detached_at = Some(now);
                self.inputs.push((ship, Input::default()));
            }
        }
        for ship in expired {
            tracing::info!(room = %self.room.id(), ship, "reconnect grace over");
            self.remove_player(ship);
        }
        let arena = &self.room.inner.arena;
        for (id, pilot) in &mut self.pilots {
            self.inputs
                .push((*id, pilot.think(*id, &self.last_sent, arena)));
        }
        self.world.step(&self.inputs);
        self.room.stats().tick.store(self.world.tick(), Relaxed);

        self.send_acc += u32::from(self.cfg.send_rate);
        if self.send_acc >= u32::from(self.cfg.tick_rate) {
            self.send_acc -= u32::from(self.cfg.tick_rate);
            self.publish();
        }
    }

    fn publish(&mut self) {
        let snapshot = Arc::new(self.world.snapshot());
        let mut delta = Vec::with_capacity(1024);
        self.encoder.encode(&self.last_sent, &snapshot, &mut delta);
        let oldest = {
            let mut history = self
                .room
                .inner
                .history
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            history.push_back(snapshot.clone());
            while history.len() > self.cfg.history_sends {
                history.pop_front();
            }
            history.front().map_or(snapshot.tick, |s| s.tick)
        };
        let acks = self
            .players
            .iter()
            .map(|(&id, p)| (id, p.last_seq))
            .collect();
        let prev = self.last_sent.tick;
        self.last_sent = snapshot.clone();
        self.publisher.send_replace(Arc::new(Published::next(
            Some(prev),
            snapshot,
            Bytes::from(delta),
            acks,
            oldest,
        )));
    }

    /// Whether an API-created room has been empty for its idle time.
    fn idle_expired(&mut self, now: Instant) -> bool {
        let empty = self.players.is_empty() && self.room.stats().spectators.load(Relaxed) == 0;
        if self.room.owner() != Owner::User || !empty {
            self.idle_since = None;
            return false;
        }
        let since = *self.idle_since.get_or_insert(now);
        now.duration_since(since) >= Duration::from_secs(self.cfg.room_idle_secs)
    }
}

/// A connection's side and the room's side of a player session: a bounded input queue of
/// `queue` entries (the connection rejects inputs when it is full) and a replaced-signal.
fn attach(ship: NetId, token: SessionToken, last_seq: u32, queue: usize) -> (Joined, Player) {
    let (tx, rx) = mpsc::channel(queue);
    let replaced = CancellationToken::new();
    let joined = Joined {
        ship,
        token,
        inputs: tx,
        replaced: replaced.clone(),
    };
    let player = Player {
        token,
        inputs: Some(rx),
        last_seq,
        replaced,
        detached_at: None,
    };
    (joined, player)
}

/// 128 bits from the operating system's random source.
fn random_token() -> [u8; 16] {
    let mut t = [0u8; 16];
    if getrandom::fill(&mut t).is_err() {
        // No OS randomness is not something a game server can run without safely.
        tracing::error!("the operating system's random source failed");
        std::process::abort();
    }
    t
}
