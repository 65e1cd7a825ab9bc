//! The socket of a WebSocket session, shared by the session's task and its room's shared writer.
//!
//! A session owns its TCP socket after the upgrade (no axum or tokio-tungstenite stream in
//! between). Its task reads the client through tungstenite's protocol engine ([`Io`] hands it
//! what the socket has, never waiting), and every write — the session's own messages and the
//! frames a [`crate::ws_hub`] shard sends — goes through the one [`Link`]:
//!
//! - a write goes to the socket at once if nothing is pending; whatever the socket does not
//!   take is kept in the link's pending bytes (bounded), which go out before anything else, so
//!   two writers never interleave inside a message;
//! - [`Seat`] says who sends this session's frames: its own task, a shard, or — when a shard
//!   found the socket slow — the task again, from the send the shard last gave it.
//!
//! The frames themselves are written pre-framed: a WebSocket header and the frame's head for
//! this client (its acknowledged input) in front of the room's shared payload, in one vectored
//! write, so a shard copies nothing per client.
//!
//! Reads go through the link too, and [`Reader`] says who makes them. A player's task reads
//! until the client has nothing more to say, then lets its room read: at every tick the room
//! takes the whole input messages at the front of what the client sent
//! ([`Link::take_inputs`]) — no wake-up of the session's task per input, no queue between them.
//! Anything else (another message, a control frame, the end of the connection) goes back to
//! the task, which reads it through tungstenite as before. Bytes reach tungstenite one frame at
//! a time ([`Io`]), so at a frame boundary tungstenite holds nothing and the room can take over.

use crate::limits::Verdict;
use crate::metrics::{Metrics, Rejection};
use crate::serve::Counted;
use bytes::{Buf, BytesMut};
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{
    self,
    protocol::frame::{
        FrameHeader,
        coding::{Data, OpCode},
    },
};

/// Who sends a session's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seat {
    /// The session's own task, from its own follower.
    Own,
    /// A shard of the room's shared writer.
    Shard,
    /// The shard let go of it (its socket was slow or the shard ended); the client holds the
    /// send at this tick, and the session's task goes on from there.
    Returned(u32),
}

/// Who reads what a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The session's task, through tungstenite.
    Session,
    /// The room, at its ticks: whole input messages only.
    Room,
}

/// The state the session's task, its room and a shard share, behind the link's lock.
#[derive(Debug)]
pub struct Wire {
    /// Bytes written but not yet taken by the socket; they go before anything else.
    pending: BytesMut,
    /// Since when `pending` has not been empty.
    stuck_since: Option<Instant>,
    /// Who sends the frames.
    pub seat: Seat,
    /// Who reads the client.
    pub reader: Reader,
    /// Bytes read from the client and not yet handed on (a few hundred at most: more are read
    /// only when these do not hold what is needed next).
    inbound: BytesMut,
    /// Bytes of the frame being handed to tungstenite that it has not had yet.
    frame_left: u64,
    /// Whether tungstenite is inside a fragmented message.
    in_message: bool,
    /// The client has closed its side: what is left of `inbound` is all there is.
    eof: bool,
    /// When the session or the room last took a message from the client.
    heard: Instant,
    /// A close the room wants the session to send.
    close: Option<(u16, String)>,
    /// The player's input rate, whoever reads the inputs.
    budget: crate::limits::InputBudget,
}

impl Wire {
    /// Whether every byte written so far is on the socket.
    pub fn is_clear(&self) -> bool {
        self.pending.is_empty()
    }

    /// Spends the input budget on one input and brings it into range, counting what is
    /// refused or changed; whoever read it, the session or the room, does the same.
    pub fn admit(&mut self, input: game_core::Input, metrics: &Metrics) -> Admitted {
        match self.budget.spend() {
            Verdict::Accept => {}
            Verdict::Drop => {
                metrics.reject(Rejection::InputRate);
                return Admitted::Dropped;
            }
            Verdict::Flood => {
                metrics.reject(Rejection::InputFlood);
                let rate = self.budget.rate();
                return Admitted::Flood(format!("input flood: more than {rate} inputs per second"));
            }
        }
        Admitted::Input(if input.is_valid() {
            input
        } else {
            metrics.reject(Rejection::InputOutOfRange);
            input.sanitized()
        })
    }
}

/// What [`Wire::admit`] made of an input.
#[derive(Debug)]
pub enum Admitted {
    /// To apply (in range now).
    Input(game_core::Input),
    /// Over the rate: dropped.
    Dropped,
    /// Far over the rate: the session ends with this reason (close code `POLICY`).
    Flood(String),
}

/// A WebSocket session's socket and what its writers share.
#[derive(Debug)]
pub struct Link {
    /// The socket, holding its place in the connection gate.
    conn: Counted,
    wire: Mutex<Wire>,
    /// Wakes the session's task when a shard gives its frames back.
    handback: Notify,
    /// Wakes the session's task when the room gives the reading back.
    turn: Notify,
    /// The most bytes kept for a client that does not read.
    limit: usize,
}

/// The most bytes one read from the socket takes.
const READ_CHUNK: usize = 512;

/// The largest input message the room takes itself: one with a 7-bit length (inputs are a
/// dozen bytes).
const ROOM_PAYLOAD_MAX: usize = 125;

/// The most separate pieces one [`Link::write`] takes.
const PIECES: usize = 4;

/// Writes up to this many bytes are copied into one buffer (see `Link::try_write`).
const JOIN_BELOW: usize = 2048;

impl Link {
    /// A link over `conn` that keeps at most `limit` bytes for a client that does not read,
    /// starting with `early` (what the client sent with its upgrade request) to read, for a
    /// player allowed `input_rate` inputs per second.
    pub fn new(conn: Counted, limit: usize, early: &[u8], input_rate: u32) -> Self {
        Self {
            conn,
            wire: Mutex::new(Wire {
                pending: BytesMut::new(),
                stuck_since: None,
                seat: Seat::Own,
                reader: Reader::Session,
                inbound: BytesMut::from(early),
                frame_left: 0,
                in_message: false,
                eof: false,
                heard: Instant::now(),
                close: None,
                budget: crate::limits::InputBudget::new(input_rate),
            }),
            handback: Notify::new(),
            turn: Notify::new(),
            limit,
        }
    }

    /// The socket.
    pub fn tcp(&self) -> &tokio::net::TcpStream {
        &self.conn.tcp
    }

    /// The shared state, locked.
    pub fn lock(&self) -> MutexGuard<'_, Wire> {
        self.wire.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `pieces`, in order, after anything pending, without waiting: what the socket
    /// does not take now is kept. `Ok(true)` when all of it is on the socket. An error when the
    /// client is gone, or when it has not read so much that keeping more would pass the limit.
    pub fn write(&self, wire: &mut Wire, pieces: &[&[u8]]) -> io::Result<bool> {
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        if !wire.pending.is_empty() {
            if wire.pending.len() + total > self.limit {
                return Err(io::Error::new(
                    ErrorKind::OutOfMemory,
                    "the client is not reading what it is sent",
                ));
            }
            for p in pieces {
                wire.pending.extend_from_slice(p);
            }
            return Ok(false);
        }
        let written = match self.try_write(pieces, total) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        if written == total {
            return Ok(true);
        }
        if total - written > self.limit {
            return Err(io::Error::new(
                ErrorKind::OutOfMemory,
                "the client is not reading what it is sent",
            ));
        }
        keep_rest(pieces, written, &mut wire.pending);
        wire.stuck_since = Some(Instant::now());
        Ok(false)
    }

    /// One non-blocking write of `pieces` (`total` bytes in all). A small message is copied
    /// together and sent with `send`: the kernel's `writev` costs more than the copy (3 % of the
    /// server's time at 1,000 players, BENCHMARKS.md); a large one goes as it is.
    fn try_write(&self, pieces: &[&[u8]], total: usize) -> io::Result<usize> {
        let mut joined = [0u8; JOIN_BELOW];
        if total <= JOIN_BELOW {
            let mut at = 0;
            for p in pieces {
                joined[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            return self.conn.tcp.try_write(&joined[..total]);
        }
        let mut slices = [IoSlice::new(&[]); PIECES];
        let mut used = 0;
        for p in pieces.iter().filter(|p| !p.is_empty()) {
            if used == PIECES {
                return Err(io::Error::new(ErrorKind::InvalidInput, "too many pieces"));
            }
            slices[used] = IoSlice::new(p);
            used += 1;
        }
        self.conn.tcp.try_write_vectored(&slices[..used])
    }

    /// Writes what is pending, without waiting. `Ok(true)` when nothing is left.
    pub fn flush(&self) -> io::Result<bool> {
        let mut wire = self.lock();
        while !wire.pending.is_empty() {
            match self.conn.tcp.try_write(&wire.pending) {
                Ok(n) => wire.pending.advance(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        wire.stuck_since = None;
        // A slow spell's buffer is not kept for the rest of the session.
        if wire.pending.capacity() > 4096 {
            wire.pending = BytesMut::new();
        }
        Ok(true)
    }

    /// Since when the socket has not taken everything written to it, if it has not.
    pub fn stuck_since(&self) -> Option<Instant> {
        self.lock().stuck_since
    }

    /// Gives the frames back to the session's task (a shard calls this, holding the lock).
    pub fn hand_back(&self, wire: &mut Wire, tick: u32) {
        wire.seat = Seat::Returned(tick);
        self.handback.notify_one();
    }

    /// Waits until a shard has given the frames back (see [`Link::hand_back`]).
    pub async fn handed_back(&self) {
        self.handback.notified().await;
    }

    /// Reads what the socket has (at most [`READ_CHUNK`] bytes) into `inbound`; `Ok(0)` at the
    /// end of the connection, `WouldBlock` when there is nothing.
    fn fill(&self, wire: &mut Wire) -> io::Result<usize> {
        let mut chunk = [0u8; READ_CHUNK];
        // A read that gets less than it asked for has drained the socket: like tokio's own
        // `poll_read`, say so (a `WouldBlock` from the closure clears the readiness, unless an
        // event came in meanwhile), so the next read waits for readiness instead of making a
        // system call that finds nothing — one `recv` per input instead of two.
        let tcp = &self.conn.tcp;
        let mut drained = 0;
        let read = tcp.try_io(tokio::io::Interest::READABLE, || {
            let n = (&*socket2::SockRef::from(tcp)).read(&mut chunk)?;
            if n > 0 && n < chunk.len() {
                drained = n;
                return Err(ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        let n = match read {
            Err(e) if e.kind() == ErrorKind::WouldBlock && drained > 0 => drained,
            r => r?,
        };
        wire.inbound.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Lets the room read the client from now on, if tungstenite is at a frame boundary
    /// outside any fragmented message and nothing is left for the session to say. Called by
    /// the session's task when the client has nothing more.
    pub fn hand_to_room(&self) -> bool {
        let mut wire = self.lock();
        let free = wire.frame_left == 0 && !wire.in_message && !wire.eof && wire.close.is_none();
        if free {
            wire.reader = Reader::Room;
        }
        free
    }

    /// Waits until the room gives the reading back (see [`Link::take_inputs`]); then the
    /// session's task reads again, and sends the close the room asked for, if any.
    pub async fn room_done(&self) -> Option<(u16, String)> {
        self.turn.notified().await;
        self.lock().close.take()
    }

    /// When the session or the room last took a message from the client.
    pub fn heard(&self) -> Instant {
        self.lock().heard
    }

    /// The session's task took a message from the client now.
    pub fn heard_now(&self) {
        self.lock().heard = Instant::now();
    }

    /// The room's read at a tick, while it is the reader: takes the whole input messages at the
    /// front of what the client sent, at most `max`, spends the input budget on each, and gives
    /// each accepted input to `each`. Inputs beyond `max` wait for the next tick (and the
    /// client's sends for the socket). Anything that is not a whole input message goes back to
    /// the session's task untouched, which reads it through tungstenite; so does a flood, with
    /// the close to send.
    pub fn take_inputs(
        &self,
        max: usize,
        metrics: &Metrics,
        mut each: impl FnMut(u32, game_core::Input),
    ) {
        use game_core::protocol::close;
        let mut wire = self.lock();
        if wire.reader != Reader::Room {
            return;
        }
        let mut taken = 0;
        while taken < max {
            let (seq, input, len) = match front_input(&wire.inbound) {
                Front::Input { seq, input, len } => (seq, input, len),
                Front::Other => return self.give_back(&mut wire),
                Front::Incomplete => match self.fill(&mut wire) {
                    Ok(0) => {
                        wire.eof = true;
                        return self.give_back(&mut wire);
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    // The session's own read meets the error again (or the end).
                    Err(_) => return self.give_back(&mut wire),
                },
            };
            let input = match wire.admit(input, metrics) {
                Admitted::Input(input) => input,
                Admitted::Dropped => {
                    wire.inbound.advance(len);
                    taken += 1;
                    continue;
                }
                Admitted::Flood(reason) => {
                    wire.close = Some((close::POLICY, reason));
                    return self.give_back(&mut wire);
                }
            };
            wire.inbound.advance(len);
            wire.heard = Instant::now();
            taken += 1;
            metrics.input_in();
            each(seq, input);
        }
    }

    /// The session's task reads again (see [`Link::room_done`]).
    fn give_back(&self, wire: &mut Wire) {
        wire.reader = Reader::Session;
        self.turn.notify_one();
    }

    /// Ends the connection both ways now, whoever still holds the link.
    pub fn shutdown(&self) {
        let _ = socket2::SockRef::from(&self.conn.tcp).shutdown(std::net::Shutdown::Both);
    }
}

/// Appends to `pending` what is left of `pieces`, in order, after their first `written` bytes.
fn keep_rest(pieces: &[&[u8]], mut written: usize, pending: &mut BytesMut) {
    for p in pieces {
        let skip = written.min(p.len());
        pending.extend_from_slice(&p[skip..]);
        written -= skip;
    }
}

/// The head of the frame at the front of `buf`, read by tungstenite's own parser: the head,
/// its length in bytes and the payload's. `Ok(None)` while it is not all there; an error for a
/// head tungstenite refuses (a reserved opcode), which the session's tungstenite refuses too.
pub fn client_head(buf: &[u8]) -> tungstenite::Result<Option<(FrameHeader, usize, u64)>> {
    let mut cursor = io::Cursor::new(buf);
    let head = FrameHeader::parse(&mut cursor)?;
    let len = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
    Ok(head.map(|(head, payload)| (head, len, payload)))
}

/// What is at the front of the bytes a client sent, for the room.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Front {
    /// A whole input message, `len` bytes with its frame head.
    Input {
        /// Its sequence number.
        seq: u32,
        /// The controls.
        input: game_core::Input,
        /// Bytes of the frame.
        len: usize,
    },
    /// The start of what may be an input message: more bytes are needed to tell.
    Incomplete,
    /// Anything else: the session's task reads it.
    Other,
}

/// Reads the front of `inbound`: a whole input message (an unfragmented, masked binary frame
/// of at most [`ROOM_PAYLOAD_MAX`] bytes holding a `ClientMsg::Input`), or what else it is.
pub fn front_input(inbound: &[u8]) -> Front {
    let (head, head_len, payload) = match client_head(inbound) {
        Ok(Some(head)) => head,
        Ok(None) => return Front::Incomplete,
        Err(_) => return Front::Other,
    };
    let FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::Data(Data::Binary),
        mask: Some(mask),
    } = head
    else {
        return Front::Other;
    };
    let size = match usize::try_from(payload) {
        Ok(size) if size <= ROOM_PAYLOAD_MAX => size,
        _ => return Front::Other,
    };
    let Some(masked) = inbound.get(head_len..head_len + size) else {
        return Front::Incomplete;
    };
    let mut payload = [0u8; ROOM_PAYLOAD_MAX];
    for (i, (out, byte)) in payload.iter_mut().zip(masked).enumerate() {
        *out = byte ^ mask[i % 4];
    }
    match game_core::codec::decode_client(&payload[..size]) {
        Ok(game_core::protocol::ClientMsg::Input { seq, input }) => Front::Input {
            seq,
            input,
            len: head_len + size,
        },
        _ => Front::Other,
    }
}

/// The stream tungstenite's protocol engine works on: reads take what the client sent, one
/// frame at a time, and say `WouldBlock` when there is nothing; writes go through the link
/// and never block.
#[derive(Debug)]
pub struct Io {
    link: std::sync::Arc<Link>,
}

impl Io {
    /// A stream over `link`.
    pub fn new(link: std::sync::Arc<Link>) -> Self {
        Self { link }
    }

    /// The link.
    pub fn link(&self) -> &Link {
        &self.link
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let link = &self.link;
        let mut wire = link.lock();
        loop {
            if wire.eof {
                // The client is done: what is left, then the end.
                let n = buf.len().min(wire.inbound.len());
                buf[..n].copy_from_slice(&wire.inbound[..n]);
                wire.inbound.advance(n);
                return Ok(n);
            }
            if wire.frame_left == 0 && !wire.inbound.is_empty() {
                // A new frame: tungstenite gets it, and nothing of the next one with it.
                match client_head(&wire.inbound) {
                    Ok(Some((head, len, payload))) => {
                        // A length near 2⁶⁴ is tungstenite's to refuse, with the head; it does.
                        wire.frame_left = (len as u64).saturating_add(payload);
                        match head.opcode {
                            OpCode::Data(Data::Continue) => {
                                wire.in_message &= !head.is_final;
                            }
                            OpCode::Data(_) => wire.in_message = !head.is_final,
                            OpCode::Control(_) => {}
                        }
                    }
                    Ok(None) => {}
                    // tungstenite refuses this head as soon as it has it.
                    Err(_) => wire.frame_left = wire.inbound.len() as u64,
                }
            }
            if wire.frame_left > 0 && !wire.inbound.is_empty() {
                let left = usize::try_from(wire.frame_left).unwrap_or(usize::MAX);
                let n = buf.len().min(wire.inbound.len()).min(left);
                buf[..n].copy_from_slice(&wire.inbound[..n]);
                wire.inbound.advance(n);
                wire.frame_left -= n as u64;
                return Ok(n);
            }
            if link.fill(&mut wire)? == 0 {
                wire.eof = true;
            }
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut wire = self.link.lock();
        self.link.write(&mut wire, &[buf])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Appends the header of an unfragmented, unmasked binary message of `len` bytes (a server's
/// message, RFC 6455 §5.2).
pub fn binary_header(len: usize, out: &mut Vec<u8>) {
    out.push(0x82);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends `msg` as a whole binary message.
pub fn binary_message(msg: &[u8], out: &mut Vec<u8>) {
    binary_header(msg.len(), out);
    out.extend_from_slice(msg);
}

/// Appends each chat line as a whole `ServerMsg::Chat` message.
pub fn chat_messages(lines: &[crate::fanout::ChatLine], out: &mut Vec<u8>) {
    for line in lines {
        binary_message(
            &game_core::codec::encode_server(&crate::render::chat_msg(line)),
            out,
        );
    }
}

/// Appends what goes before the shared payload of `published`'s frame for a client with `ack`:
/// the message header and the frame's head. The payload follows it on the wire.
pub fn frame_head(
    published: &crate::fanout::Published,
    payload: &crate::fanout::Payload,
    ack: u32,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    published.frame_head(payload, ack, out);
    let mut header = Vec::with_capacity(10);
    binary_header(out.len() - start + payload.bytes.len(), &mut header);
    out.splice(start..start, header);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};
    use tokio_tungstenite::tungstenite::{Bytes as WsBytes, Error, Message};

    /// What a client's tungstenite reads from `wire`.
    fn client_reads(wire: Vec<u8>) -> Vec<Message> {
        struct Wire(io::Cursor<Vec<u8>>);
        impl Read for Wire {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl Write for Wire {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut ws = WebSocket::from_raw_socket(Wire(io::Cursor::new(wire)), Role::Client, None);
        let mut got = Vec::new();
        while let Ok(m) = ws.read() {
            got.push(m);
        }
        got
    }

    /// A link over one end of a loopback connection with small buffers, and the other end.
    async fn pair() -> (Link, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
        socket
            .set_recv_buffer_size(2048)
            .unwrap_or_else(|e| panic!("{e}"));
        let (client, accepted) = tokio::join!(socket.connect(addr), listener.accept());
        let client = client.unwrap_or_else(|e| panic!("{e}"));
        let (tcp, peer) = accepted.unwrap_or_else(|e| panic!("{e}"));
        socket2::SockRef::from(&tcp)
            .set_send_buffer_size(4096)
            .unwrap_or_else(|e| panic!("{e}"));
        let gate = crate::limits::Gate::new(10, 10);
        let ticket = gate.admit(peer.ip()).unwrap_or_else(|_| panic!("admitted"));
        (
            Link::new(Counted::new(tcp, ticket), 256 * 1024, &[], 60),
            client,
        )
    }

    #[tokio::test]
    async fn what_the_socket_does_not_take_is_kept_in_order_and_bounded() {
        use tokio::io::AsyncReadExt;
        let (link, mut client) = pair().await;
        let piece = |i: u8| vec![i; 50_000];
        // The client does not read: the first write fills the socket and the rest is kept.
        let whole = {
            let mut wire = link.lock();
            link.write(&mut wire, &[&piece(1), &piece(2)])
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(!whole, "100 kB do not fit a 4 KiB send buffer");
        let stuck = link.stuck_since();
        assert!(stuck.is_some());
        // More goes behind what is pending, even though the socket may have room again.
        {
            let mut wire = link.lock();
            let later = link.write(&mut wire, &[&piece(3)]);
            assert!(matches!(later, Ok(false)), "{later:?}");
            // Past the limit, a client that does not read is refused.
            let refused = link.write(&mut wire, &[&vec![4; 200_000]]);
            assert!(refused.is_err(), "{refused:?}");
            assert!(!wire.is_clear());
        }
        // The client reads: everything arrives, in order, and the link is clear again.
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 150_000];
            client
                .read_exact(&mut got)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            got
        });
        while !link.flush().unwrap_or_else(|e| panic!("{e}")) {
            link.tcp()
                .writable()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(link.stuck_since().is_none());
        let got = reader.await.unwrap_or_else(|e| panic!("{e}"));
        let want: Vec<u8> = [piece(1), piece(2), piece(3)].concat();
        assert!(got == want, "the bytes arrive whole and in order");
        assert!(link.lock().is_clear());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever part of a write the socket took, what is kept is exactly the rest.
        #[test]
        fn what_is_kept_is_the_rest_of_the_write(
            pieces in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 0..5),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let whole: Vec<u8> = pieces.concat();
            let written = cut.index(whole.len() + 1);
            let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            let mut pending = BytesMut::from(&b"before"[..]);
            keep_rest(&refs, written, &mut pending);
            proptest::prop_assert_eq!(&pending[..6], b"before");
            proptest::prop_assert_eq!(&pending[6..], &whole[written..]);
        }

        /// What a shard writes — message header, frame head, shared payload — is one binary
        /// message holding exactly the frame `Published::frame_bytes` builds for that client.
        #[test]
        fn a_pre_framed_frame_is_the_frame(
            tick in 1u32..u32::MAX,
            base_back in proptest::option::of(1u32..1000),
            ack in proptest::prelude::any::<u32>(),
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..70_000),
        ) {
            use crate::fanout::{Payload, Published};
            let snapshot = std::sync::Arc::new(game_core::Snapshot { tick, entities: Vec::new() });
            let published = Published::next(Some(tick - 1), snapshot, bytes::Bytes::new(), vec![(1, ack)], 0);
            let payload = Payload {
                base: base_back.map(|b| tick.saturating_sub(b)),
                bytes: bytes::Bytes::from(payload),
            };
            let mut wire = Vec::new();
            frame_head(&published, &payload, ack, &mut wire);
            wire.extend_from_slice(&payload.bytes);
            let got = client_reads(wire);
            let want = Message::Binary(published.frame_bytes(&payload, ack));
            proptest::prop_assert_eq!(got, vec![want]);
        }
    }

    /// What a tungstenite client sends for `msgs`: masked frames, as a browser's.
    fn client_sends(msgs: &[Message]) -> Vec<u8> {
        #[derive(Default)]
        struct Out(Vec<u8>);
        impl Read for Out {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(ErrorKind::WouldBlock.into())
            }
        }
        impl Write for Out {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut ws = WebSocket::from_raw_socket(Out::default(), Role::Client, None);
        for m in msgs {
            ws.write(m.clone()).unwrap_or_else(|e| panic!("{e}"));
        }
        ws.flush().unwrap_or_else(|e| panic!("{e}"));
        std::mem::take(&mut ws.get_mut().0)
    }

    fn input_msg(seq: u32, thrust: i8, turn: i8, buttons: u8) -> Message {
        let msg = game_core::protocol::ClientMsg::Input {
            seq,
            input: game_core::Input {
                thrust,
                turn,
                buttons,
            },
        };
        Message::Binary(game_core::codec::encode_client(&msg).into())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// An input message as a client frames it is read whole, with its length; every shorter
        /// prefix of it is incomplete, never something else.
        #[test]
        fn an_input_frame_is_read_whole_and_its_prefixes_wait(
            seq in proptest::prelude::any::<u32>(),
            thrust in proptest::prelude::any::<i8>(),
            turn in proptest::prelude::any::<i8>(),
            buttons in proptest::prelude::any::<u8>(),
            after in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
        ) {
            let mut wire = client_sends(&[input_msg(seq, thrust, turn, buttons)]);
            let len = wire.len();
            for cut in 0..len {
                proptest::prop_assert_eq!(front_input(&wire[..cut]), Front::Incomplete);
            }
            wire.extend_from_slice(&after);
            let input = game_core::Input { thrust, turn, buttons };
            proptest::prop_assert_eq!(front_input(&wire), Front::Input { seq, input, len });
        }

        /// Whatever the bytes, the front is read without panicking, and an input read from it
        /// lies within them.
        #[test]
        fn any_bytes_read_safely(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Front::Input { len, .. } = front_input(&bytes) {
                proptest::prop_assert!(len <= bytes.len());
            }
        }
    }

    /// Every other message a client may send is the session's to read: chat, the other client
    /// messages, text, control frames, a fragmented or unmasked frame, a bad payload.
    #[test]
    fn anything_but_a_whole_input_is_the_sessions() {
        use game_core::protocol::ClientMsg;
        let encoded = |m: &ClientMsg| Message::Binary(game_core::codec::encode_client(m).into());
        let others = [
            encoded(&ClientMsg::Chat {
                text: "hi".to_owned(),
            }),
            encoded(&ClientMsg::Ping { id: 7 }),
            encoded(&ClientMsg::Leave),
            Message::Binary(vec![0xff; 9].into()),
            Message::Text("input".into()),
            Message::Ping(WsBytes::from_static(b"p")),
            Message::Pong(WsBytes::new()),
            Message::Close(None),
        ];
        for m in &others {
            let wire = client_sends(std::slice::from_ref(m));
            assert_eq!(front_input(&wire), Front::Other, "{m:?}");
        }
        // An input's bytes in a frame that is not final, or not masked.
        let whole = client_sends(&[input_msg(1, 0, 0, 0)]);
        let mut unfinished = whole.clone();
        unfinished[0] &= 0x7f;
        assert_eq!(front_input(&unfinished), Front::Other);
        let payload = game_core::codec::encode_client(&ClientMsg::Input {
            seq: 1,
            input: game_core::Input::default(),
        });
        let mut unmasked = Vec::new();
        binary_message(&payload, &mut unmasked);
        assert_eq!(front_input(&unmasked), Front::Other);
    }

    /// The session's task and the room take turns reading one client, as the server does:
    /// the session reads through tungstenite until the client has nothing more and hands the
    /// reading to the room; the room takes whole inputs at its ticks and gives the reading back
    /// at anything else. Whatever the messages and however the client's bytes are cut, every
    /// message arrives once, in order, and the room has taken inputs itself.
    #[tokio::test]
    async fn the_session_and_the_room_take_turns_and_lose_nothing() {
        let metrics = crate::metrics::Metrics::default();
        let mut room_took = 0;
        for seed in 1..=20u64 {
            let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut next = move |n: u64| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng % n
            };
            let mut sent = Vec::new();
            for i in 0..60u32 {
                sent.push(match next(10) {
                    0 => Message::Binary(
                        game_core::codec::encode_client(&game_core::protocol::ClientMsg::Chat {
                            text: format!("line {i}"),
                        })
                        .into(),
                    ),
                    1 => Message::Ping(WsBytes::from(i.to_le_bytes().to_vec())),
                    _ => input_msg(i + 1, i as i8, 0, 0),
                });
            }
            let wire = client_sends(&sent);
            let (link, mut client) = pair().await;
            let link = std::sync::Arc::new(link);
            let mut ws = WebSocket::from_raw_socket(Io::new(link.clone()), Role::Server, None);
            let mut got: Vec<Message> = Vec::new();
            let session_reads = |ws: &mut WebSocket<Io>, got: &mut Vec<Message>| loop {
                match ws.read() {
                    Ok(Message::Pong(_)) => {}
                    Ok(m) => got.push(m),
                    Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                        // Nothing more: the room reads on, unless a frame is only partly here.
                        let _ = link.hand_to_room();
                        break;
                    }
                    Err(e) => panic!("seed {seed}: {e}"),
                }
            };
            let total = sent.len();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut at = 0;
            while got.len() < total {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "seed {seed}: stuck at {} of {total} messages",
                    got.len()
                );
                if at < wire.len() {
                    let cut = (at + 1 + next(40) as usize).min(wire.len());
                    tokio::io::AsyncWriteExt::write_all(&mut client, &wire[at..cut])
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    at = cut;
                }
                // The runtime's driver sees the bytes arrive.
                let wait = std::time::Duration::from_millis(20);
                let _ = tokio::time::timeout(wait, link.tcp().readable()).await;
                if link.lock().reader == Reader::Room {
                    let max = 1 + next(4) as usize;
                    link.take_inputs(max, &metrics, |seq, input| {
                        room_took += 1;
                        got.push(input_msg(seq, input.thrust, input.turn, input.buttons));
                    });
                }
                if link.lock().reader == Reader::Session {
                    session_reads(&mut ws, &mut got);
                }
            }
            assert_eq!(got, sent, "seed {seed}");
        }
        assert!(room_took > 100, "the room took inputs itself: {room_took}");
    }

    /// A frame head that claims 2⁶⁴ − 1 bytes is refused by tungstenite as too big, as any
    /// frame over the limit is; the link's own count of the frame does not overflow.
    #[tokio::test]
    async fn a_frame_claiming_the_largest_length_is_refused() {
        let (link, mut client) = pair().await;
        let mut head = vec![0x82, 0xff];
        head.extend_from_slice(&u64::MAX.to_be_bytes());
        head.extend_from_slice(&[1, 2, 3, 4]);
        tokio::io::AsyncWriteExt::write_all(&mut client, &head)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(1024))
            .max_frame_size(Some(1024));
        let link = std::sync::Arc::new(link);
        let mut ws = WebSocket::from_raw_socket(Io::new(link.clone()), Role::Server, Some(config));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match ws.read() {
                Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "no answer to the head"
                    );
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_millis(50),
                        link.tcp().readable(),
                    )
                    .await;
                }
                Err(Error::Capacity(_)) => break,
                other => panic!("expected a capacity error, got {other:?}"),
            }
        }
        assert_eq!(front_input(&head), Front::Other);
    }

    #[test]
    fn messages_of_every_length_class_read_back_whole() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let msg: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut wire = Vec::new();
            binary_message(&msg, &mut wire);
            let got = client_reads(wire);
            assert_eq!(
                got,
                vec![Message::Binary(WsBytes::from(msg))],
                "length {len}"
            );
        }
    }
}
