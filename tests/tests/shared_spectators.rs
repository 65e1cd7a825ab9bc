//! Spectators on their room's shared writer (`server/src/hub.rs`), over SSE and HTTP streaming:
//! up-to-date spectators are written to together, a stalled one leaves its shard without
//! holding anyone up, catches up by itself with a correct delta or keyframe, and rejoins; chat
//! and the shutdown close reach them; spectators that go away leave.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bots::sse::parser::SseParser;
use bots::{Role, Transport};
use bytes::{Buf, Bytes, BytesMut};
use game_core::codec::decode_server;
use game_core::protocol::ServerMsg;
use game_core::replica::Replica;
use std::time::Duration;
use tickwire_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Which stream a [`RawSpectator`] reads.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Sse,
    Stream,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Self::Sse => "sse",
            Self::Stream => "stream",
        }
    }

    fn transport(self) -> Transport {
        match self {
            Self::Sse => Transport::Sse,
            Self::Stream => Transport::Stream,
        }
    }

    /// The `/metrics` gauge of its shared spectators.
    fn gauge(self) -> String {
        format!(
            "tickwire_shared_connections{{transport=\"{}\"}}",
            self.path()
        )
    }
}

/// A spectator on a raw socket that decodes every message and applies every frame to its
/// replica, which checks each frame's baseline and checksum.
struct RawSpectator {
    kind: Kind,
    tcp: TcpStream,
    /// SSE events.
    parser: SseParser,
    /// Stream bytes not yet a whole record.
    records: BytesMut,
    replica: Replica,
    last_tick: Option<u32>,
    chat: Vec<String>,
}

impl RawSpectator {
    async fn open(server: &TestServer, kind: Kind, recv_buffer: u32) -> Self {
        let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
        socket
            .set_recv_buffer_size(recv_buffer)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut tcp = socket
            .connect(server.addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let head = format!(
            "GET /api/rooms/default/{} HTTP/1.1\r\nHost: t\r\n\r\n",
            kind.path()
        );
        tcp.write_all(head.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut me = Self {
            kind,
            tcp,
            parser: SseParser::new(),
            records: BytesMut::new(),
            replica: Replica::new(),
            last_tick: None,
            chat: Vec::new(),
        };
        // The response head, up to the blank line; the body follows, until the connection ends.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            me.read(&mut byte).await;
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(
            head.contains("connection: close"),
            "served on the socket: {head}"
        );
        assert!(!head.contains("transfer-encoding"), "{head}");
        me
    }

    async fn read(&mut self, buf: &mut [u8]) -> usize {
        match tokio::time::timeout(Duration::from_secs(10), self.tcp.read(buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            other => panic!("stream ended: {other:?}"),
        }
    }

    /// The messages in what has been read so far.
    fn messages(&mut self) -> Vec<ServerMsg> {
        let mut out = Vec::new();
        match self.kind {
            Kind::Sse => {
                while let Some(event) = self.parser.next_event().unwrap_or_else(|e| panic!("{e}")) {
                    let bytes = STANDARD
                        .decode(&event.data)
                        .unwrap_or_else(|e| panic!("{e}"));
                    out.push(decode_server(&bytes).unwrap_or_else(|e| panic!("{e}")));
                }
            }
            Kind::Stream => {
                while self.records.len() >= 4 {
                    let len = u32::from_le_bytes([
                        self.records[0],
                        self.records[1],
                        self.records[2],
                        self.records[3],
                    ]) as usize;
                    if self.records.len() < 4 + len {
                        break;
                    }
                    self.records.advance(4);
                    let record = self.records.split_to(len);
                    out.push(decode_server(&record).unwrap_or_else(|e| panic!("{e}")));
                }
            }
        }
        out
    }

    fn feed(&mut self, bytes: &[u8]) {
        match self.kind {
            Kind::Sse => self.parser.feed(Bytes::copy_from_slice(bytes)),
            Kind::Stream => self.records.extend_from_slice(bytes),
        }
    }

    /// Reads until `n` more frames have applied cleanly (and at least one chat line when `chat`).
    async fn frames(&mut self, n: usize, chat: bool) -> Vec<ServerMsg> {
        let mut applied = 0;
        let mut others = Vec::new();
        let mut buf = vec![0u8; 4096];
        while applied < n || (chat && self.chat.is_empty()) {
            for msg in self.messages() {
                let ServerMsg::Frame(frame) = msg else {
                    if let ServerMsg::Chat { text, .. } = &msg {
                        self.chat.push(text.clone());
                    }
                    others.push(msg);
                    continue;
                };
                assert!(
                    self.last_tick.is_none_or(|t| frame.tick > t),
                    "ticks move forward"
                );
                self.replica
                    .apply(&frame)
                    .unwrap_or_else(|e| panic!("frame {} did not apply: {e}", frame.tick));
                self.last_tick = Some(frame.tick);
                applied += 1;
            }
            let got = self.read(&mut buf).await;
            let chunk = buf[..got].to_vec();
            self.feed(&chunk);
        }
        others
    }
}

/// Polls `/metrics` until `ok` holds for `gauge` (or 10 s pass).
async fn until(server: &TestServer, gauge: &str, what: &str, ok: impl Fn(f64) -> bool) {
    server
        .until_metric(gauge, Duration::from_secs(10), what, ok)
        .await;
}

async fn a_stalled_spectator_catches_up_and_rejoins(kind: Kind) {
    let server = busy_server().await;
    let gauge = kind.gauge();

    // Verifying spectators of the same kind, through the bots library.
    let crowd = Crowd::start(&server, 12, Role::Spectator, kind.transport());
    let mut slow = RawSpectator::open(&server, kind, 2048).await;
    slow.frames(10, false).await;
    until(&server, &gauge, "every spectator joins a shard", |n| {
        n >= 13.0
    })
    .await;

    // The slow spectator stops reading: its socket fills and it leaves the shard, while the
    // others keep getting every send.
    let stalled_at = slow.last_tick.unwrap_or(0);
    until(&server, &gauge, "the stalled spectator leaves", |n| {
        n <= 12.0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    until(&server, &gauge, "the others stay", |n| n >= 12.0).await;

    // Reading again: what the socket held, then a delta from its last frame (or a keyframe),
    // everything applying to its replica; and it is back on the shared writer.
    slow.frames(60, false).await;
    let now = slow.last_tick.unwrap_or(0);
    assert!(
        now > stalled_at + 60,
        "it is live again, well past where it stalled (from {stalled_at} to {now})"
    );
    until(&server, &gauge, "the caught-up spectator rejoins", |n| {
        n >= 13.0
    })
    .await;
    slow.frames(10, false).await;

    crowd.finish().await;
    // Spectators that went away leave their shard at its next write.
    drop(slow);
    until(&server, &gauge, "closed spectators leave", |n| n == 0.0).await;
    let connections = format!(
        "tickwire_connections{{transport=\"{}\",role=\"spectator\"}}",
        kind.path()
    );
    assert_eq!(server.metric(&connections).await, 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_a_stalled_spectator_catches_up_and_rejoins() {
    a_stalled_spectator_catches_up_and_rejoins(Kind::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_a_stalled_spectator_catches_up_and_rejoins() {
    a_stalled_spectator_catches_up_and_rejoins(Kind::Stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_spectators_get_chat_and_the_close_on_shutdown() {
    let server = TestServer::start(test_config()).await;
    let mut spectators = Vec::new();
    for kind in [Kind::Sse, Kind::Stream, Kind::Sse, Kind::Stream] {
        let mut s = RawSpectator::open(&server, kind, 1 << 16).await;
        s.frames(3, false).await;
        spectators.push(s);
    }
    for kind in [Kind::Sse, Kind::Stream] {
        until(&server, &kind.gauge(), "spectators join a shard", |n| {
            n >= 2.0
        })
        .await;
    }
    // A player speaks; every shared spectator gets the line.
    let mut ws = connect(&server.ws_url("default", "")).await;
    send(&mut ws, &hello()).await;
    send(
        &mut ws,
        &game_core::protocol::ClientMsg::Chat {
            text: "hello shard".into(),
        },
    )
    .await;
    for s in &mut spectators {
        s.frames(1, true).await;
        assert_eq!(s.chat, ["hello shard"], "{:?}", s.kind);
    }
    // Shutdown: each gets the close, then the end of the stream.
    let stopping = tokio::spawn(server.stop());
    for s in &mut spectators {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.tcp.read_to_end(&mut rest));
        read.await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        s.feed(&rest);
        let close = s
            .messages()
            .into_iter()
            .find_map(|m| match m {
                ServerMsg::Close { code, .. } => Some(code),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no close for {:?}", s.kind));
        assert_eq!(close, game_core::protocol::close::GOING_AWAY);
    }
    stopping.await.unwrap_or_else(|e| panic!("{e}"));
}
