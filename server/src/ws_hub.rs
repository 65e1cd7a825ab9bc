//! The WebSocket broadcast: up-to-date WebSocket sessions, players and spectators, share one
//! writer per shard of sockets.
//!
//! Sent from each session's own task, every frame costs a task wake-up, a `watch` borrow, a
//! `select!`, a timer and tungstenite's framing — per client, for bytes that differ between
//! clients only in the frame's head (the player's acknowledged input). So a session that holds
//! its room's latest send, with nothing pending on its socket, joins a [`Shard`] of up to
//! [`crate::hub::SHARD_SIZE`] sessions that follows the room once and, on each send, writes
//! to every socket its frame without waiting: the chat lines and a head of its own, then the
//! shared payload, in one vectored write ([`crate::ws_link`]).
//!
//! A socket that does not take the whole frame keeps the rest pending on its link, and the
//! shard gives the frames back to the session's task ([`Link::hand_back`]), which finishes the
//! write, follows the room by itself (conflating like any slow client) and joins a shard again
//! once caught up. The session's task stays the one that reads the client, pings it, and ends
//! the session; leaving, it takes its frames back and leaves its shard.
//! When the room closes or the server shuts down, the shard gives every session back, and each
//! ends the way it would have alone.

use crate::App;
use crate::fanout::{Payload, Published};
use crate::follow::{Follower, Next};
use crate::hub::{ShardState, Takes, lock};
use crate::metrics::Transport;
use crate::room::Room;
use crate::ws_link::{self, Link, Seat};
use game_core::NetId;
use std::sync::{Arc, Mutex};

/// A session in a shard, counted in `tickwire_shared_connections` while it is there.
struct Member {
    link: Arc<Link>,
    ship: Option<NetId>,
    _count: Count,
}

struct Count(Arc<crate::metrics::Metrics>);

impl Drop for Count {
    fn drop(&mut self) {
        self.0.shared(Transport::Ws, -1);
    }
}

/// A room's WebSocket shards.
#[derive(Debug, Default)]
pub struct WsHub {
    shards: Mutex<Vec<Arc<Shard>>>,
}

/// Sessions at the same send, and the send they are at.
#[derive(Debug)]
struct Shard {
    state: Mutex<ShardState<Member>>,
}

impl WsHub {
    /// Hands the frames of the session on `link` (for `ship`; `None`: a spectator), which holds
    /// `room`'s send at `tick` with nothing pending, to a shard at that send, starting one when
    /// every shard is full. `false` when a shard with room is at another send: the session
    /// sends its next frame itself and tries again.
    pub fn join(
        &self,
        app: &App,
        room: &Room,
        tick: u32,
        link: &Arc<Link>,
        ship: Option<NetId>,
    ) -> bool {
        let member = || {
            link.lock().seat = Seat::Shard;
            app.metrics.shared(Transport::Ws, 1);
            Member {
                link: link.clone(),
                ship,
                _count: Count(app.metrics.clone()),
            }
        };
        let mut shards = lock(&self.shards);
        let mut others_have_room = false;
        for shard in shards.iter() {
            let mut s = lock(&shard.state);
            match s.takes(tick) {
                Takes::Yes => {
                    s.members.push(member());
                    return true;
                }
                Takes::No => {}
                Takes::AtAnotherSend => others_have_room = true,
            }
        }
        if others_have_room {
            return false;
        }
        let Ok(follower) = Follower::new(room.clone(), Some(tick), None) else {
            return false;
        };
        let shard = Arc::new(Shard {
            state: Mutex::new(ShardState::new(tick, member())),
        });
        shards.push(shard.clone());
        app.tracker.spawn(run(app.clone(), shard, follower));
        true
    }

    /// Lets go of the session on `link`, which has taken its frames back and is ending, so its
    /// socket closes now rather than at the shard's next send (a pass that is writing to it
    /// drops it at the pass's end).
    pub fn leave(&self, link: &Arc<Link>) {
        for shard in lock(&self.shards).iter() {
            lock(&shard.state)
                .members
                .retain(|m| !Arc::ptr_eq(&m.link, link));
        }
    }

    fn remove(&self, shard: &Arc<Shard>) {
        lock(&self.shards).retain(|s| !Arc::ptr_eq(s, shard));
    }
}

/// A shard's task: each send to every member, until the shard is empty or the room ends.
async fn run(app: App, shard: Arc<Shard>, mut follower: Follower) {
    loop {
        let Next::Frame {
            published,
            payload,
            chat_from,
            ..
        } = follower.next(&app.shutdown).await
        else {
            // The room's close or the server's shutdown: each session ends it in its own way.
            shard.hand_back_all();
            break;
        };
        let mut chat = Vec::new();
        ws_link::chat_messages(&published.chat[chat_from..], &mut chat);
        if !shard.pass(&app, &published, &payload, &chat) {
            break;
        }
        // A pass never waits, and when the server is saturated the next send is already there:
        // let the other shards (and the accept loop) run before this one goes again.
        tokio::task::yield_now().await;
    }
    follower.room().ws_hub().remove(&shard);
}

impl Shard {
    /// Writes the send `published` (`payload` after `chat`) to every member. Members whose
    /// socket cannot take it at once, or that left, go back to their own tasks. `false` when
    /// the shard is left empty and has closed.
    fn pass(&self, app: &App, published: &Published, payload: &Payload, chat: &[u8]) -> bool {
        let (mut members, before) = lock(&self.state).start_pass(published.tick);
        let (mut frames, mut bytes) = (0, 0);
        let mut head = Vec::with_capacity(40);
        let mut i = 0;
        while i < members.len() {
            let m = &members[i];
            let mut wire = m.link.lock();
            if wire.seat != Seat::Shard {
                // The session took its frames back: it is ending.
                drop(wire);
                members.swap_remove(i);
                continue;
            }
            if !wire.is_clear() {
                // Something of the session's own is still on its way: the frame would have to
                // wait behind it.
                m.link.hand_back(&mut wire, before);
                drop(wire);
                members.swap_remove(i);
                continue;
            }
            head.clear();
            let ack = m.ship.map_or(0, |s| published.ack_for(s));
            ws_link::frame_head(published, payload, ack, &mut head);
            let sent = m.link.write(&mut wire, &[chat, &head, &payload.bytes]);
            match sent {
                Ok(whole) => {
                    frames += 1;
                    bytes += chat.len() + head.len() + payload.bytes.len();
                    if whole {
                        drop(wire);
                        i += 1;
                        continue;
                    }
                    m.link.hand_back(&mut wire, published.tick);
                }
                // Gone or hopelessly behind: the session finds out and ends.
                Err(_) => m.link.hand_back(&mut wire, before),
            }
            drop(wire);
            members.swap_remove(i);
        }
        app.metrics
            .frames_out_bytes(Transport::Ws, frames, bytes, payload.base.is_none());
        lock(&self.state).end_pass(members)
    }

    /// Gives every member back to its session's task, at the shard's send.
    fn hand_back_all(&self) {
        let (members, cursor) = {
            let mut s = lock(&self.state);
            (s.close(), s.cursor)
        };
        for m in members {
            let mut wire = m.link.lock();
            if wire.seat == Seat::Shard {
                m.link.hand_back(&mut wire, cursor);
            }
        }
    }
}
