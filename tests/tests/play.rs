//! Players over WebSocket: many bots play at once, every frame checksum-verified, every input
//! acknowledged in order; the room's figures and `/metrics` follow what happened.

use bots::{Bot, BotConfig, ConnectOptions, Role};
use std::time::Duration;
use tickwire_tests::*;

fn bot(server: &TestServer, role: Role, seconds: u64, seed: u64) -> Bot {
    let opts =
        ConnectOptions::new(&server.url(), "default", role).unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = BotConfig::new(opts);
    cfg.duration = Some(Duration::from_secs(seconds));
    cfg.seed = seed;
    Bot::new(cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_players_stay_in_sync_and_every_input_is_acknowledged_in_order() {
    let server = TestServer::start(Config {
        ai_fill: 4,
        ..test_config()
    })
    .await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let b = bot(&server, Role::Player, 4, i);
        tasks.push(tokio::spawn(b.run(std::future::pending())));
    }
    let watcher = bot(&server, Role::Spectator, 4, 99);
    let watcher = tokio::spawn(watcher.run(std::future::pending()));

    // Mid-match the room shows 20 players and no AI ships (they leave as humans fill it).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, room) = server.get_json("/api/rooms/default").await;
    assert_eq!(
        (
            room["players"].as_u64(),
            room["ai_ships"].as_u64(),
            room["spectators"].as_u64()
        ),
        (Some(20), Some(0), Some(1))
    );

    let mut entities = std::collections::BTreeSet::new();
    let (mut frames, mut inputs) = (0, 0);
    for t in tasks {
        let report = t
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("bot failed to start: {e}"));
        let s = &report.stats;
        assert!(report.error.is_none(), "bot ended with {:?}", report.error);
        assert_eq!(s.desyncs, 0, "every frame's checksum matched");
        assert!(
            s.frames >= 60,
            "a 4 s match at 30 Hz delivers frames: {}",
            s.frames
        );
        assert_eq!(s.keyframes, 1, "one keyframe, then deltas only");
        assert!(s.acks_monotonic, "acks never go backwards");
        assert!(
            report.last_seq >= 100,
            "a bot sends an input per tick: {}",
            report.last_seq
        );
        assert!(
            report.acks_complete(),
            "every input acknowledged: ack {} of {}",
            s.highest_ack,
            report.last_seq
        );
        assert!(
            entities.insert(report.entity),
            "each player has its own ship"
        );
        frames += s.frames;
        inputs += s.inputs_sent;
    }
    let spectator = watcher
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (spectator.stats.desyncs, spectator.stats.inputs_sent),
        (0, 0)
    );
    assert!(spectator.stats.frames >= 60);

    assert!(
        server
            .metric("tickwire_frames_out_total{transport=\"ws\"}")
            .await
            >= frames as f64
    );
    assert!(server.metric("tickwire_inputs_total").await >= inputs as f64);
    assert!(server.metric("tickwire_tick_duration_seconds_count").await > 200.0);
    // Everyone left: the AI fills the room again.
    let (_, room) = server.get_json("/api/rooms/default").await;
    assert_eq!(
        (room["players"].as_u64(), room["ai_ships"].as_u64()),
        (Some(0), Some(4))
    );
    server.stop().await;
}
