//! SSE spectators on their room's shared writer (`server/src/hub.rs`): up-to-date spectators
//! are written to together, a stalled one leaves the shard without holding anyone up, catches
//! up by itself with a correct delta or keyframe, and rejoins; spectators that go away leave.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bots::sse::parser::SseParser;
use bots::{Bot, BotConfig, ConnectOptions, Role, Transport};
use bytes::Bytes;
use game_core::codec::decode_server;
use game_core::protocol::ServerMsg;
use game_core::replica::Replica;
use std::time::Duration;
use tickwire_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

const SHARED: &str = "tickwire_sse_shared_spectators";

/// A raw SSE spectator that applies every frame to its replica, which checks each frame's
/// baseline and checksum.
struct RawSpectator {
    tcp: TcpStream,
    parser: SseParser,
    replica: Replica,
    last_tick: Option<u32>,
    keyframes: u32,
}

impl RawSpectator {
    async fn open(server: &TestServer, recv_buffer: u32) -> Self {
        let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
        socket
            .set_recv_buffer_size(recv_buffer)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut tcp = socket
            .connect(server.addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tcp.write_all(b"GET /api/rooms/default/sse HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut me = Self {
            tcp,
            parser: SseParser::new(),
            replica: Replica::new(),
            last_tick: None,
            keyframes: 0,
        };
        // The response head, up to the blank line; the parser takes the body.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            me.read(&mut byte).await;
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        me
    }

    async fn read(&mut self, buf: &mut [u8]) -> usize {
        match tokio::time::timeout(Duration::from_secs(10), self.tcp.read(buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            other => panic!("stream ended: {other:?}"),
        }
    }

    /// Reads until `n` more frames have applied cleanly.
    async fn frames(&mut self, n: usize) {
        let mut applied = 0;
        let mut buf = vec![0u8; 4096];
        while applied < n {
            while let Some(event) = self.parser.next_event().unwrap_or_else(|e| panic!("{e}")) {
                if event.event != "frame" {
                    continue;
                }
                let bytes = STANDARD
                    .decode(&event.data)
                    .unwrap_or_else(|e| panic!("{e}"));
                let Ok(ServerMsg::Frame(frame)) = decode_server(&bytes) else {
                    panic!("not a frame: {}", event.data)
                };
                assert!(
                    self.last_tick.is_none_or(|t| frame.tick > t),
                    "ticks move forward"
                );
                self.keyframes += u32::from(frame.base.is_none());
                self.replica
                    .apply(&frame)
                    .unwrap_or_else(|e| panic!("frame {} did not apply: {e}", frame.tick));
                self.last_tick = Some(frame.tick);
                applied += 1;
            }
            let got = self.read(&mut buf).await;
            self.parser.feed(Bytes::copy_from_slice(&buf[..got]));
        }
    }
}

/// Polls `/metrics` until `ok` holds for the shared-writer gauge (or 10 s pass).
async fn shared_until(server: &TestServer, what: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = server.metric(SHARED).await;
        if ok(n) {
            return n;
        }
        assert!(Instant::now() < deadline, "{what}: {SHARED} is {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectators_share_a_writer_and_a_stalled_one_catches_up_and_rejoins() {
    // A busy arena (1,500 asteroids) and a small kernel send buffer: frames of a kilobyte or
    // two, so a few seconds of them are more than the socket buffers hold.
    let dir = std::env::temp_dir().join(format!("tickwire-shared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let arena = dir.join("busy.toml");
    let text = game_core::arena::STANDARD_TOML.replace("count = 30", "count = 1500");
    std::fs::write(&arena, text).unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start(Config {
        arena: Some(arena),
        tcp_send_buffer: 8192,
        ..test_config()
    })
    .await;

    // Verifying spectators over SSE, through the bots library.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut bots = Vec::new();
    for seed in 0..12 {
        let opts = ConnectOptions::new(&server.url(), "default", Role::Spectator)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut cfg = BotConfig::new(opts);
        cfg.transport = Transport::Sse;
        cfg.seed = seed;
        let mut stopped = stopped.clone();
        bots.push(tokio::spawn(Bot::new(cfg).run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
    }
    let mut slow = RawSpectator::open(&server, 2048).await;
    slow.frames(10).await;
    shared_until(&server, "every spectator joins a shard", |n| n >= 13.0).await;

    // The slow spectator stops reading: its socket fills and it leaves the shard, while the
    // others keep getting every send.
    let stalled_at = slow.last_tick.unwrap_or(0);
    shared_until(&server, "the stalled spectator leaves its shard", |n| {
        n <= 12.0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    shared_until(&server, "the others stay", |n| n >= 12.0).await;

    // Reading again: what the socket held, then a delta from its last frame (or a keyframe),
    // everything applying to its replica; and it is back on the shared writer.
    slow.frames(60).await;
    let now = slow.last_tick.unwrap_or(0);
    assert!(
        now > stalled_at + 60,
        "it is live again, well past where it stalled (from {stalled_at} to {now})"
    );
    shared_until(&server, "the caught-up spectator rejoins", |n| n >= 13.0).await;
    slow.frames(10).await;

    let _ = stop.send(true);
    for bot in bots {
        let report = bot
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(report.error.is_none(), "{:?}", report.error);
        let s = &report.stats;
        assert_eq!(s.desyncs, 0, "every frame verified");
        assert_eq!(s.keyframes, 1, "one keyframe, then deltas");
        assert_eq!(s.reconnects, 0);
        assert!(s.frames > 20, "frames kept coming: {}", s.frames);
    }
    // Spectators that went away leave their shard at its next write.
    drop(slow);
    shared_until(&server, "closed spectators leave", |n| n == 0.0).await;
    assert_eq!(
        server
            .metric("tickwire_connections{transport=\"sse\",role=\"spectator\"}")
            .await,
        0.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_spectators_get_chat_and_the_close_on_shutdown() {
    let server = TestServer::start(test_config()).await;
    let mut spectators = Vec::new();
    for _ in 0..3 {
        let mut s = RawSpectator::open(&server, 1 << 16).await;
        s.frames(3).await;
        spectators.push(s);
    }
    shared_until(&server, "spectators join a shard", |n| n >= 3.0).await;
    // A player speaks; every shared spectator gets the line before the frame it came with.
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
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = vec![0u8; 4096];
        let mut seen = false;
        while !seen {
            assert!(Instant::now() < deadline, "no chat line");
            while let Some(e) = s.parser.next_event().unwrap_or_else(|e| panic!("{e}")) {
                if e.event == "chat" {
                    let bytes = STANDARD.decode(&e.data).unwrap_or_else(|e| panic!("{e}"));
                    let Ok(ServerMsg::Chat { text, .. }) = decode_server(&bytes) else {
                        panic!("not chat")
                    };
                    assert_eq!(text, "hello shard");
                    seen = true;
                }
            }
            let n = s.read(&mut buf).await;
            s.parser.feed(Bytes::copy_from_slice(&buf[..n]));
        }
    }
    // Shutdown: each gets the close event, then the end of the stream.
    let stopping = tokio::spawn(server.stop());
    for s in &mut spectators {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.tcp.read_to_end(&mut rest));
        read.await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        s.parser.feed(Bytes::from(rest));
        let mut close = None;
        while let Some(e) = s.parser.next_event().unwrap_or_else(|e| panic!("{e}")) {
            if e.event == "close" {
                close = Some(e.data);
            }
        }
        let data = close.unwrap_or_else(|| panic!("no close event"));
        let bytes = STANDARD.decode(&data).unwrap_or_else(|e| panic!("{e}"));
        let Ok(ServerMsg::Close { code, .. }) = decode_server(&bytes) else {
            panic!("not a close")
        };
        assert_eq!(code, game_core::protocol::close::GOING_AWAY);
    }
    stopping.await.unwrap_or_else(|e| panic!("{e}"));
}
