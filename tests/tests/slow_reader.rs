//! A client that stops reading: the server keeps no queue for it (memory stays flat), the
//! other players are not held up, and when it reads again it gets a correct delta (from the
//! frame it last received, skipping the sends it missed) or a keyframe.

use bots::{Bot, BotConfig, ConnectOptions, Role};
use game_core::protocol::ServerMsg;
use game_core::replica::Replica;
use std::time::Duration;
use tickwire_tests::*;
use tokio::net::TcpSocket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_costs_nothing_and_catches_up_correctly() {
    // A busy arena (1,500 asteroids) and a small kernel send buffer: frames of a kilobyte or
    // two, so a few seconds of them are more than the socket buffers hold and the server's
    // writes really block.
    let dir = std::env::temp_dir().join(format!("tickwire-slow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let arena = dir.join("busy.toml");
    let text = game_core::arena::STANDARD_TOML.replace("count = 30", "count = 1500");
    std::fs::write(&arena, text).unwrap_or_else(|e| panic!("{e}"));
    let cfg = Config {
        arena: Some(arena),
        tcp_send_buffer: 8192,
        ..test_config()
    };
    let server = TestServer::start(cfg).await;

    // Honest players keep playing through the stall.
    let mut honest = Vec::new();
    for seed in 0..4 {
        let opts = ConnectOptions::new(&server.url(), "default", Role::Player)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut cfg = BotConfig::new(opts);
        cfg.duration = Some(Duration::from_secs(9));
        cfg.seed = seed;
        honest.push(tokio::spawn(Bot::new(cfg).run(std::future::pending())));
    }

    // The slow reader has a tiny receive buffer, so the server's writes to it really block.
    let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    socket
        .set_recv_buffer_size(2048)
        .unwrap_or_else(|e| panic!("{e}"));
    let stream = socket
        .connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut ws, _) = tokio_tungstenite::client_async(
        server.ws_url("default", ""),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    send(&mut ws, &hello()).await;
    let mut replica = Replica::new();
    let mut last_tick = None;
    let wait = Duration::from_secs(5);
    let mut count = 0;
    while count < 20 {
        if let Seen::Msg(ServerMsg::Frame(f)) = next(&mut ws, wait).await {
            replica.apply(&f).unwrap_or_else(|e| panic!("{e}"));
            last_tick = Some(f.tick);
            count += 1;
        }
    }

    let rss_before = server.metric("process_resident_memory_bytes").await;
    let sent_before = server
        .metric("tickwire_frames_out_total{transport=\"ws\"}")
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await; // not reading
    let rss_after = server.metric("process_resident_memory_bytes").await;
    let sent_after = server
        .metric("tickwire_frames_out_total{transport=\"ws\"}")
        .await;
    // Others kept receiving frames (4 players at 30 Hz for 5 s would be 600).
    assert!(
        sent_after - sent_before > 300.0,
        "frames went out during the stall: {}",
        sent_after - sent_before
    );
    // No per-client queue grew: the process (server and every client in this test) stays
    // within a few MiB.
    let grew = (rss_after - rss_before) / (1024.0 * 1024.0);
    assert!(
        grew < 8.0,
        "resident memory grew {grew:.1} MiB during a 5 s stall"
    );

    // Reading again: every frame applies to the replica, and somewhere between what the
    // socket buffers held and the live state, the server skipped the sends we missed.
    let (_, room) = server.get_json("/api/rooms/default").await;
    let live = room["tick"].as_u64().unwrap_or(u64::MAX) as u32;
    let mut skipped = false;
    loop {
        if let Seen::Msg(ServerMsg::Frame(f)) = next(&mut ws, wait).await {
            replica
                .apply(&f)
                .unwrap_or_else(|e| panic!("frame after the stall: {e}"));
            if let (Some(prev), Some(base)) = (last_tick, f.base) {
                // A delta from the frame we hold, but covering more than one send's gap.
                skipped |= base == prev && f.tick - base > 2;
            }
            skipped |= f.base.is_none();
            last_tick = Some(f.tick);
            if f.tick >= live {
                break;
            }
        }
    }
    assert_eq!(replica.desyncs(), 0);
    assert!(
        skipped,
        "the server conflated: the catch-up frame spans the missed sends"
    );

    for h in honest {
        let report = h
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.stats.desyncs, 0);
        assert!(report.error.is_none(), "{:?}", report.error);
        assert!(report.acks_complete());
    }
    server.stop().await;
}
