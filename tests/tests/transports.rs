//! Every push technique carries a live match: over each of WebSocket, SSE, HTTP streaming,
//! long polling and polling, players (inputs by WebSocket or POST) and a spectator keep
//! checksum-verified replicas with zero desyncs, and every input is acknowledged in order.

use bots::{Bot, BotConfig, ConnectOptions, Role, Transport};
use std::time::Duration;
use tickwire_tests::*;

async fn match_over(transport: Transport) {
    let server = TestServer::start(test_config()).await;
    let mut bots = Vec::new();
    for (i, role) in [Role::Player, Role::Player, Role::Spectator]
        .into_iter()
        .enumerate()
    {
        let opts =
            ConnectOptions::new(&server.url(), "default", role).unwrap_or_else(|e| panic!("{e}"));
        let mut cfg = BotConfig::new(opts);
        cfg.transport = transport;
        cfg.duration = Some(Duration::from_secs(3));
        cfg.seed = i as u64;
        bots.push((
            role,
            tokio::spawn(Bot::new(cfg).run(std::future::pending())),
        ));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, room) = server.get_json("/api/rooms/default").await;
    assert_eq!(room["players"], 2, "{transport}");
    // Connections are counted while they are open; a poller only while a request is in
    // flight — a long poller nearly always (sampled until seen), a plain poller only for an
    // instant, so it is not checked.
    let label = format!(
        "tickwire_connections{{transport=\"{}\",role=\"player\"}}",
        transport.as_str()
    );
    match transport {
        Transport::Poll => {}
        Transport::LongPoll => {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            loop {
                let (_, room) = server.get_json("/api/rooms/default").await;
                if room["spectators"] == 1 && server.metric(&label).await >= 1.0 {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "long pollers never counted"
                );
            }
        }
        _ => {
            assert_eq!(room["spectators"], 1, "{transport}");
            assert_eq!(server.metric(&label).await, 2.0, "{label}");
        }
    }

    for (role, bot) in bots {
        let r = bot
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{transport}: {e}"));
        let s = &r.stats;
        assert!(r.error.is_none(), "{transport} {role:?}: {:?}", r.error);
        assert_eq!(s.desyncs, 0, "{transport} {role:?}");
        assert_eq!(
            s.keyframes, 1,
            "{transport} {role:?}: one keyframe, deltas after"
        );
        assert!(
            s.frames >= 45,
            "{transport} {role:?}: {} frames in 3 s",
            s.frames
        );
        if role == Role::Player {
            assert!(r.last_seq >= 60, "{transport}: {} inputs", r.last_seq);
            assert!(
                s.acks_monotonic && r.acks_complete(),
                "{transport}: ack {} of {}",
                s.highest_ack,
                r.last_seq
            );
        } else {
            assert_eq!(s.inputs_sent, 0);
        }
    }
    // The players left (over HTTP too): their ships are gone at the room's next tick, not after
    // the reconnect grace period. (A leave is answered once the room has the command; the room
    // counts its players when it applies it.)
    server
        .until_room(
            "default",
            Duration::from_secs(2),
            &format!("{transport}: players still in the room after leaving"),
            |room| room["players"] == 0,
        )
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket() {
    match_over(Transport::Ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse() {
    match_over(Transport::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_streaming() {
    match_over(Transport::Stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling() {
    match_over(Transport::LongPoll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling() {
    match_over(Transport::Poll).await;
}
