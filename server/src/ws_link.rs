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

use crate::serve::Counted;
use bytes::{Buf, BytesMut};
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

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

/// The state the session's task and a shard share, behind the link's lock.
#[derive(Debug)]
pub struct Wire {
    /// Bytes written but not yet taken by the socket; they go before anything else.
    pending: BytesMut,
    /// Since when `pending` has not been empty.
    stuck_since: Option<Instant>,
    /// Who sends the frames.
    pub seat: Seat,
}

impl Wire {
    /// Whether every byte written so far is on the socket.
    pub fn is_clear(&self) -> bool {
        self.pending.is_empty()
    }
}

/// A WebSocket session's socket and what its writers share.
#[derive(Debug)]
pub struct Link {
    /// The socket, holding its place in the connection gate.
    conn: Counted,
    wire: Mutex<Wire>,
    /// Wakes the session's task when a shard gives its frames back.
    handback: Notify,
    /// The most bytes kept for a client that does not read.
    limit: usize,
}

/// The most separate pieces one [`Link::write`] takes.
const PIECES: usize = 4;

/// Writes up to this many bytes are copied into one buffer (see `Link::try_write`).
const JOIN_BELOW: usize = 2048;

impl Link {
    /// A link over `conn` that keeps at most `limit` bytes for a client that does not read.
    pub fn new(conn: Counted, limit: usize) -> Self {
        Self {
            conn,
            wire: Mutex::new(Wire {
                pending: BytesMut::new(),
                stuck_since: None,
                seat: Seat::Own,
            }),
            handback: Notify::new(),
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

/// The stream tungstenite's protocol engine works on: reads take what the socket (or what was
/// read with the upgrade request) has, and say `WouldBlock` otherwise; writes go through the
/// link and never block.
#[derive(Debug)]
pub struct Io {
    link: std::sync::Arc<Link>,
    /// Bytes that came with the upgrade request, read before the socket.
    early: bytes::Bytes,
}

impl Io {
    /// A stream over `link`, starting with `early`.
    pub fn new(link: std::sync::Arc<Link>, early: bytes::Bytes) -> Self {
        // The bytes are a slice of the HTTP connection's read buffer (8 KiB or more), which
        // the slice keeps whole, even an empty one: keep a copy of just the bytes.
        let early = bytes::Bytes::copy_from_slice(&early);
        Self { link, early }
    }

    /// The link.
    pub fn link(&self) -> &Link {
        &self.link
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.early.is_empty() {
            let n = buf.len().min(self.early.len());
            buf[..n].copy_from_slice(&self.early[..n]);
            self.early.advance(n);
            return Ok(n);
        }
        // A read that gets less than it asked for has drained the socket: like tokio's own
        // `poll_read`, say so (a `WouldBlock` from the closure clears the readiness, unless an
        // event came in meanwhile), so the next read waits for readiness instead of making a
        // system call that finds nothing — one `recv` per input instead of two.
        let tcp = &self.link.conn.tcp;
        let mut drained = 0;
        let read = tcp.try_io(tokio::io::Interest::READABLE, || {
            let n = (&*socket2::SockRef::from(tcp)).read(buf)?;
            if n > 0 && n < buf.len() {
                drained = n;
                return Err(ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match read {
            Err(e) if e.kind() == ErrorKind::WouldBlock && drained > 0 => Ok(drained),
            r => r,
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
    use tokio_tungstenite::tungstenite::{Bytes as WsBytes, Message};

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
        (Link::new(Counted::new(tcp, ticket), 256 * 1024), client)
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
