//! The spectator broadcast: up-to-date SSE and streaming spectators share one writer per shard
//! of sockets.
//!
//! Served each from its own task, a spectator costs a task wake-up, a `watch` borrow, a
//! `select!` and a future's worth of state for every frame, all to send bytes that are the same
//! for every spectator at the same send. So a spectator served on the socket itself
//! ([`crate::direct`]), in the binary format, joins its room's [`Hub`] once it holds the
//! room's latest send: a [`Shard`] of up to [`SHARD_SIZE`] sockets of one kind (SSE or
//! streaming) and one [`Follower`] of its own, which on each send builds the bytes once and
//! writes them to each socket without waiting (`try_write`). A socket that cannot take the whole event at once — a slow reader — leaves
//! the shard for a task of its own: it finishes the event there, under the write timeout, then
//! follows the room by itself, conflating like any slow client, and rejoins once it is caught up
//! again. A slow spectator never delays the others, and nothing queues per client.
//!
//! A shard finds a spectator gone when a write to it fails (the client's close turns the next
//! write into a reset); the room's close and the server's shutdown go to every socket as the
//! close event, as they do to a spectator served alone.

use crate::App;
use crate::direct::{self, Kind};
use crate::follow::{Chunk, Follower, Held};
use crate::metrics::Transport;
use crate::room::Room;
use crate::serve::Counted;
use bytes::Bytes;
use std::io::ErrorKind;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Sockets one shard writes to at most. A pass never waits, so this bounds how long one task
/// runs between yields (64 writes: well under a millisecond); when the server is saturated the
/// runtime turns its I/O driver only every few dozen task runs, so passes much longer than this
/// delay accepting new connections and reading other sockets by seconds. Shards of a large
/// audience also run on every core.
pub const SHARD_SIZE: usize = 64;

/// A spectator's connection while a shard serves it.
pub struct Member {
    /// The socket, holding its place in the connection gate.
    pub conn: Counted,
    /// What counts it (presence, connection permit).
    pub held: Held,
}

/// A room's shards.
#[derive(Debug, Default)]
pub struct Hub {
    shards: Mutex<Vec<Arc<Shard>>>,
}

/// Sockets at the same send, and the send they are at.
#[derive(Debug)]
struct Shard {
    kind: Kind,
    state: Mutex<ShardState<Seat>>,
}

/// A member in a shard, counted in `tickwire_shared_connections` while it is there.
struct Seat {
    member: Member,
    _count: SeatCount,
}

struct SeatCount(Arc<crate::metrics::Metrics>, Transport);

impl Seat {
    fn new(member: Member, app: &App, kind: Kind) -> Self {
        app.metrics.shared(kind.transport(), 1);
        Self {
            member,
            _count: SeatCount(app.metrics.clone(), kind.transport()),
        }
    }
}

impl Drop for SeatCount {
    fn drop(&mut self) {
        self.0.shared(self.1, -1);
    }
}

/// A shard's members and the send they are at, behind the shard's lock: the bookkeeping both
/// kinds of shared writer share (this one and [`crate::ws_hub`]).
pub(crate) struct ShardState<M> {
    /// The send every member holds (or is being written).
    pub(crate) cursor: u32,
    /// The members, except those a pass has taken out to write to.
    pub(crate) members: Vec<M>,
    /// How many a pass has taken out (they come back at its end).
    writing: usize,
    /// Set when the shard's task has ended: no more joins.
    pub(crate) closed: bool,
}

/// Whether a shard takes a new member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Takes {
    /// Open, not full, at the member's send.
    Yes,
    /// Closed or full.
    No,
    /// It has room, but is at another send than the member.
    AtAnotherSend,
}

impl<M> ShardState<M> {
    /// A shard at `cursor` with its first member.
    pub(crate) fn new(cursor: u32, first: M) -> Self {
        Self {
            cursor,
            members: vec![first],
            writing: 0,
            closed: false,
        }
    }

    /// Whether a member at `tick` may join.
    pub(crate) fn takes(&self, tick: u32) -> Takes {
        if self.closed || self.members.len() + self.writing >= SHARD_SIZE {
            Takes::No
        } else if self.cursor == tick {
            Takes::Yes
        } else {
            Takes::AtAnotherSend
        }
    }

    /// Starts a pass for the send at `tick`: the members to write to, and the send they held.
    pub(crate) fn start_pass(&mut self, tick: u32) -> (Vec<M>, u32) {
        let before = std::mem::replace(&mut self.cursor, tick);
        self.writing = self.members.len();
        (std::mem::take(&mut self.members), before)
    }

    /// Ends a pass with the `members` still in; `false` when none are left and it has closed.
    pub(crate) fn end_pass(&mut self, mut members: Vec<M>) -> bool {
        // Members that joined during the pass are at its send too.
        members.append(&mut self.members);
        self.members = members;
        self.writing = 0;
        self.closed = self.members.is_empty();
        !self.closed
    }

    /// Closes the shard: its members, to finish or hand back.
    pub(crate) fn close(&mut self) -> Vec<M> {
        self.closed = true;
        std::mem::take(&mut self.members)
    }
}

impl<M> std::fmt::Debug for ShardState<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardState")
            .field("cursor", &self.cursor)
            .field("members", &self.members.len())
            .field("writing", &self.writing)
            .field("closed", &self.closed)
            .finish()
    }
}

/// Locks `m`, through a panic elsewhere (the state stays consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    /// Hands `member`, a `kind` spectator which holds `room`'s send at `tick`, to a shard of that
    /// kind at that send, starting one when every such shard is full. Gives it back when a shard
    /// with room is at another send (the caller serves it and tries again after its next frame).
    #[expect(
        clippy::result_large_err,
        reason = "the member goes back to its caller as it came, at most once per frame"
    )]
    pub fn join(
        &self,
        app: &App,
        room: &Room,
        kind: Kind,
        tick: u32,
        member: Member,
    ) -> Result<(), Member> {
        let mut shards = lock(&self.shards);
        let mut others_have_room = false;
        for shard in shards.iter().filter(|s| s.kind == kind) {
            let mut s = lock(&shard.state);
            match s.takes(tick) {
                Takes::Yes => {
                    s.members.push(Seat::new(member, app, kind));
                    return Ok(());
                }
                Takes::No => {}
                Takes::AtAnotherSend => others_have_room = true,
            }
        }
        if others_have_room {
            return Err(member);
        }
        let Ok(follower) = Follower::new(room.clone(), Some(tick), None) else {
            return Err(member);
        };
        let shard = Arc::new(Shard {
            kind,
            state: Mutex::new(ShardState::new(tick, Seat::new(member, app, kind))),
        });
        shards.push(shard.clone());
        app.tracker.spawn(run(app.clone(), shard, follower));
        Ok(())
    }

    fn remove(&self, shard: &Arc<Shard>) {
        lock(&self.shards).retain(|s| !Arc::ptr_eq(s, shard));
    }
}

/// A shard's task: each send, once, to every member; keep-alives in quiet spells (SSE); the
/// close last.
async fn run(app: App, shard: Arc<Shard>, mut follower: Follower) {
    let kind = shard.kind;
    let keepalive = Duration::from_secs(app.cfg.sse_keepalive_secs);
    let quiet = |now: Instant| kind.keepalive().map(|_| now + keepalive);
    let mut quiet_until = quiet(Instant::now());
    loop {
        let next = tokio::select! {
            next = follower.next(&app.shutdown) => next,
            _ = crate::follow::sleep_until_some(quiet_until) => {
                quiet_until = quiet(Instant::now());
                let cursor = lock(&shard.state).cursor;
                let comment = Chunk {
                    bytes: Bytes::from_static(kind.keepalive().unwrap_or_default()),
                    last: false,
                    keyframe: false,
                };
                if shard.pass(&app, follower.room(), cursor, &comment, false) {
                    continue;
                }
                break;
            }
        };
        quiet_until = quiet(Instant::now());
        let chunk = kind.render(crate::render::Format::Binary, None, next);
        if chunk.last {
            shard.close(&app, &chunk);
            break;
        }
        let tick = follower.cursor().unwrap_or(0);
        if !shard.pass(&app, follower.room(), tick, &chunk, true) {
            break;
        }
        // A pass never waits, and when the server is saturated the next send is already there:
        // let the other shards (and the accept loop) run before this one goes again, or a few
        // shards would starve the rest.
        tokio::task::yield_now().await;
    }
    follower.room().hub().remove(&shard);
}

impl Shard {
    /// Writes `chunk` (the send at `tick`, or a keep-alive: `frame` false) to every member.
    /// Members that cannot take it at once go on alone; members that are gone are dropped.
    /// `false` when the shard is left empty and has closed.
    fn pass(&self, app: &App, room: &Room, tick: u32, chunk: &Chunk, frame: bool) -> bool {
        let bytes = &chunk.bytes;
        let transport = self.kind.transport();
        let mut members = {
            let (members, _) = lock(&self.state).start_pass(tick);
            members
        };
        let mut i = 0;
        let mut written = 0;
        while i < members.len() {
            match members[i].member.conn.tcp.try_write(bytes) {
                Ok(n) if n == bytes.len() => {
                    i += 1;
                    written += 1;
                }
                Ok(n) => {
                    written += 1;
                    let seat = members.swap_remove(i);
                    alone(app, room, self.kind, seat, tick, bytes.slice(n..));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    written += 1;
                    let seat = members.swap_remove(i);
                    alone(app, room, self.kind, seat, tick, bytes.clone());
                }
                // The client is gone.
                Err(_) => drop(members.swap_remove(i)),
            }
        }
        if frame {
            app.metrics
                .frames_out_n(transport, written, bytes.len(), chunk.keyframe);
        } else {
            app.metrics.bytes_out(transport, written * bytes.len());
        }
        lock(&self.state).end_pass(members)
    }

    /// Sends the close (`chunk`) to every member and finishes each connection.
    fn close(&self, app: &App, chunk: &Chunk) {
        let members = lock(&self.state).close();
        let limit = Duration::from_secs(app.cfg.write_timeout_secs);
        app.metrics
            .bytes_out(self.kind.transport(), members.len() * chunk.bytes.len());
        for seat in members {
            let bytes = chunk.bytes.clone();
            app.tracker.spawn(async move {
                let tcp = &seat.member.conn.tcp;
                if direct::write_within(tcp, &bytes, limit).await.is_ok() {
                    direct::finish(tcp).await;
                }
                drop(seat);
            });
        }
    }
}

/// Serves `seat`'s member by itself from now on: the `rest` of the send at `tick` first, then
/// its own follower from that send.
fn alone(app: &App, room: &Room, kind: Kind, seat: Seat, tick: u32, rest: Bytes) {
    let (app, room) = (app.clone(), room.clone());
    app.tracker.clone().spawn(async move {
        let Seat {
            member: Member { conn, held },
            ..
        } = seat;
        let limit = Duration::from_secs(app.cfg.write_timeout_secs);
        if let Err(e) = direct::write_within(&conn.tcp, &rest, limit).await {
            direct::count_write_error(&app, &e);
            return;
        }
        let Ok(follower) = Follower::new(room, Some(tick), None) else {
            return;
        };
        direct::serve_alone(&app, kind, conn, held.attach(follower)).await;
    });
}
