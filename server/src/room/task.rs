//! The room task: the loop that owns a room's [`World`] — commands (join, resume, leave),
//! fixed-step ticks that drain every player's input queue, read WebSocket players' inputs off
//! their sockets ([`crate::ws_link::Link::take_inputs`]) and step the world, AI pilots for
//! filler ships, the reconnect grace period, and a publish on every send tick.

use super::{
    CHAT_LOG, COMMAND_QUEUE, Command, Flight, InputMsg, JoinError, Joined, MAX_CATCHUP_TICKS,
    Owner, Room, RoomShared, RoomStats,
};
use crate::config::Config;
use crate::fanout::{ChatLine, Published};
use crate::metrics::{Metrics, Rejection};
use bytes::Bytes;
use game_core::ai::Pilot;
use game_core::arena::Arena;
use game_core::clock::FixedClock;
use game_core::delta::Encoder;
use game_core::world::World;
use game_core::{Input, NetId, SessionToken, Snapshot};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A human player's slot in the room.
struct Player {
    token: SessionToken,
    name: Arc<str>,
    /// The current connection's queue; `None` while detached (in the grace period).
    inputs: Option<mpsc::Receiver<InputMsg>>,
    /// A WebSocket connection's link, whose inputs the room reads while the session lets it.
    link: Option<Arc<crate::ws_link::Link>>,
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
    /// Recent chat, stamped; shared with every send as `chat_shared`.
    chat: VecDeque<ChatLine>,
    chat_shared: Arc<[ChatLine]>,
    /// Lines said since the last send, stamped when it goes out.
    chat_pending: Vec<(NetId, Arc<str>, Arc<str>)>,
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
            hub: crate::hub::Hub::default(),
            ws_hub: crate::ws_hub::WsHub::default(),
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
        chat: VecDeque::new(),
        chat_shared: Arc::from([]),
        chat_pending: Vec::new(),
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
                let (took, period) = (started.elapsed(), self.clock.tick_duration());
                self.metrics.tick(took, period);
                self.room.stats().ticks.record(took, period);
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
            Command::Join { name, link, reply } => {
                let _ = reply.send(self.join(&name, link));
            }
            Command::Resume { token, link, reply } => {
                let _ = reply.send(self.resume(token, link));
            }
            Command::Leave { ship, token } => {
                if self.players.get(&ship).is_some_and(|p| p.token == token) {
                    self.remove_player(ship);
                }
            }
            Command::Chat { ship, text } => {
                if let Some(p) = self.players.get(&ship) {
                    let line = (ship, p.name.clone(), Arc::from(text));
                    // Bounded like the log: a burst beyond it would be cut at the send anyway.
                    if self.chat_pending.len() < CHAT_LOG {
                        self.chat_pending.push(line);
                    }
                }
            }
            #[cfg(feature = "fault-injection")]
            Command::Fault => panic!("fault injected into room {}", self.room.id()),
        }
    }

    fn humans(&self) -> usize {
        self.players.len()
    }

    fn join(
        &mut self,
        name: &str,
        link: Option<Arc<crate::ws_link::Link>>,
    ) -> Result<Joined, JoinError> {
        if self.humans() >= usize::from(self.room.capacity()) {
            return Err(JoinError::Full);
        }
        // Make room first: an AI ship leaves for every human who arrives.
        self.fill_ai(self.humans() + 1);
        let ship = self.world.add_ship().ok_or(JoinError::Full)?;
        let token = SessionToken(random_token());
        let (joined, player) = attach(ship, token, Arc::from(name), 0, self.cfg.input_queue, link);
        self.players.insert(ship, player);
        self.by_token.insert(token, ship);
        self.update_stats();
        tracing::info!(room = %self.room.id(), ship, name, "player joined");
        Ok(joined)
    }

    fn resume(
        &mut self,
        token: SessionToken,
        link: Option<Arc<crate::ws_link::Link>>,
    ) -> Result<Joined, JoinError> {
        let ship = *self.by_token.get(&token).ok_or(JoinError::BadToken)?;
        let player = self.players.get_mut(&ship).ok_or(JoinError::BadToken)?;
        // A connection still holding the session is told it was replaced.
        player.replaced.cancel();
        let last_seq = player.last_seq;
        let name = player.name.clone();
        let (joined, fresh) = attach(ship, token, name, last_seq, self.cfg.input_queue, link);
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

    /// Keeps as many AI ships as the humans present leave room for.
    fn rebalance_ai(&mut self) {
        self.fill_ai(self.humans());
    }

    /// Keeps `ai_fill − humans` AI ships in the world (adding or removing them).
    fn fill_ai(&mut self, humans: usize) {
        let target = usize::from(self.cfg.ai_fill).saturating_sub(humans);
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
            let mut taken = 0;
            let metrics = &self.metrics;
            // Buttons pressed in any input of this tick count, so a tap is not lost.
            let mut merge = |last_seq: &mut u32, seq: u32, input: Input| {
                if seq <= *last_seq {
                    metrics.reject(Rejection::InputStale);
                    return;
                }
                *last_seq = seq;
                let buttons = merged.map_or(0, |m: Input| m.buttons) | input.buttons;
                merged = Some(Input { buttons, ..input });
            };
            // First what the session read (before it let the room read), then the socket.
            while taken < self.cfg.max_inputs_per_tick {
                match rx.try_recv() {
                    Ok((seq, input)) => merge(&mut p.last_seq, seq, input),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
                taken += 1;
            }
            if let (false, Some(link)) = (disconnected, &p.link) {
                let last_seq = &mut p.last_seq;
                link.take_inputs(
                    self.cfg.max_inputs_per_tick - taken,
                    metrics,
                    |seq, input| {
                        merge(last_seq, seq, input);
                    },
                );
            }
            if let Some(input) = merged {
                self.inputs.push((ship, input));
            }
            if disconnected {
                // The connection ended: the ship idles while its owner may come back.
                p.inputs = None;
                p.link = None;
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
        if !self.chat_pending.is_empty() {
            for (from, name, text) in self.chat_pending.drain(..) {
                self.chat.push_back(ChatLine {
                    tick: snapshot.tick,
                    from,
                    name,
                    text,
                });
            }
            while self.chat.len() > CHAT_LOG {
                self.chat.pop_front();
            }
            self.chat_shared = self.chat.iter().cloned().collect();
        }
        let prev = self.last_sent.tick;
        self.last_sent = snapshot.clone();
        let published = Published::next(Some(prev), snapshot, Bytes::from(delta), acks, oldest)
            .with_chat(self.chat_shared.clone());
        self.publisher.send_replace(Arc::new(published));
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
fn attach(
    ship: NetId,
    token: SessionToken,
    name: Arc<str>,
    last_seq: u32,
    queue: usize,
    link: Option<Arc<crate::ws_link::Link>>,
) -> (Joined, Player) {
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
        name,
        inputs: Some(rx),
        link,
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
