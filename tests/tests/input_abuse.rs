//! Hostile inputs, each sent while an honest player plays in the same room: floods over
//! WebSocket and over `POST …/input`, controls out of range (binary) or not numbers at all
//! (JSON), and sequence numbers replayed, reordered and replayed again after a resume.
//!
//! As in `adversarial.rs`, each test checks what the attacker got, the rejection reason it
//! moved, and [`TestServer::assert_unharmed`].

use futures_util::SinkExt;
use game_core::codec;
use game_core::protocol::{ClientMsg, close};
use game_core::replica::Replica;
use std::time::Duration;
use tickwire_tests::*;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

/// Posts empty input batches until the answer's `ack` reaches `seq`; returns it.
async fn http_ack(server: &TestServer, room: &str, token: &str, seq: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let path = format!("/api/rooms/{room}/input?token={token}");
        let (status, r) = post(server, &path, r#"{"inputs":[]}"#).await;
        assert_eq!(status, 200, "{r}");
        let ack = r["ack"].as_u64().unwrap_or_default();
        if ack >= seq || tokio::time::Instant::now() >= deadline {
            return ack;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Inputs as fast as a socket takes them: a second's worth (2 × tick rate) is accepted, the
/// next second's worth dropped, then the session is closed with 1008 "input flood".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_input_flood_is_dropped_then_closed() {
    let server = TestServer::start(Config {
        // Room for the accepted burst, so a full queue can only mean an honest input lost.
        input_queue: 256,
        ..test_config()
    })
    .await;
    let honest = Honest::start(&server, "default", 3).await;
    let (rate, flood) = (
        server.rejections("input_rate").await,
        server.rejections("input_flood").await,
    );

    let (mut ws, ..) = join(&server, "default").await;
    for seq in 1..=400 {
        // The server may close the socket before the last of these is written.
        if ws
            .feed(Message::Binary(
                codec::encode_client(&input(seq, 127, 0, 1)).into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = ws.flush().await;
    let (code, reason) = expect_close(&mut ws, WAIT).await;
    assert_eq!(code, close::POLICY, "{reason}");
    assert!(reason.starts_with("input flood"), "{reason}");
    assert!(reason.contains("120"), "the rate is 2 × 60 Hz: {reason}");

    let dropped = server.rejections("input_rate").await - rate;
    assert!(
        dropped >= 120.0,
        "a second's worth dropped before the close: {dropped}"
    );
    assert_eq!(server.rejections("input_flood").await - flood, 1.0);
    server.assert_unharmed(honest).await;
    server.stop().await;
}

/// The same over `POST …/input`: batches beyond the rate are dropped, then 429 `input_flood`
/// ends the HTTP session, and its token is worth nothing afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_input_flood_is_dropped_then_ends_the_session() {
    let server = TestServer::start(Config {
        input_queue: 256,
        ..test_config()
    })
    .await;
    let honest = Honest::start(&server, "default", 4).await;
    let (rate, flood) = (
        server.rejections("input_rate").await,
        server.rejections("input_flood").await,
    );
    let token = http_join(&server, "default").await;
    let path = format!("/api/rooms/default/input?token={token}");

    let mut seq = 0;
    let mut accepted = 0;
    let flooded = loop {
        let batch: Vec<_> = (0..32)
            .map(|_| {
                seq += 1;
                serde_json::json!({"seq": seq, "thrust": 127})
            })
            .collect();
        let body = serde_json::json!({ "inputs": batch }).to_string();
        let (status, r) = post(&server, &path, &body).await;
        match status {
            200 => accepted += r["accepted"].as_u64().unwrap_or_default(),
            429 => break r,
            _ => panic!("unexpected {status}: {r}"),
        }
        assert!(seq < 32 * 20, "never called a flood after {seq} inputs");
    };
    assert_eq!(error_code(&flooded), "input_flood", "{flooded}");
    // A second's worth, plus what the budget refilled while the batches were posted.
    assert!(
        (120..240).contains(&accepted),
        "about a second's worth accepted: {accepted}"
    );
    let (status, r) = post(&server, &path, r#"{"inputs":[{"seq":9999}]}"#).await;
    assert_eq!(
        (status, error_code(&r)),
        (401, "bad_token"),
        "the session is over"
    );

    // A second's worth dropped, less what was in the batch that flooded: that batch is
    // refused whole, so its drops are not counted.
    let dropped = server.rejections("input_rate").await - rate;
    assert!(dropped >= 120.0 - 32.0, "dropped {dropped}");
    assert_eq!(server.rejections("input_flood").await - flood, 1.0);
    server.assert_unharmed(honest).await;
    server.stop().await;
}

/// Binary inputs cannot be NaN, but they can be −128 or carry unknown buttons: those are
/// clamped, counted and applied. JSON inputs that are not in range (or not numbers) are 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_inputs_are_clamped_and_non_numbers_refused() {
    let server = TestServer::start(test_config()).await;
    let honest = Honest::start(&server, "default", 5).await;
    let (out_of_range, malformed) = (
        server.rejections("input_out_of_range").await,
        server.rejections("malformed").await,
    );

    let (mut ws, ..) = join(&server, "default").await;
    send(&mut ws, &input(1, -128, -128, 0xff)).await;
    send(&mut ws, &input(2, 127, -128, 0x80)).await;
    send(&mut ws, &input(3, 0, 0, 0)).await;
    // Not closed: the clamped inputs are applied like any other.
    acks_until(&mut ws, &mut Replica::new(), 3).await;

    let token = http_join(&server, "default").await;
    let path = format!("/api/rooms/default/input?token={token}");
    let refused = [
        r#"{"inputs":[{"seq":1,"thrust":NaN}]}"#,
        r#"{"inputs":[{"seq":1,"thrust":Infinity}]}"#,
        r#"{"inputs":[{"seq":1,"thrust":1e999}]}"#,
        r#"{"inputs":[{"seq":1,"thrust":0.5}]}"#,
        r#"{"inputs":[{"seq":1,"turn":300}]}"#,
        r#"{"inputs":[{"seq":1,"turn":-129}]}"#,
        r#"{"inputs":[{"seq":1,"buttons":256}]}"#,
        r#"{"inputs":[{"seq":1,"thrust":"x"}]}"#,
        r#"{"inputs":[{"seq":1,"thrust":null}]}"#,
        r#"{"inputs":[{"seq":-1}]}"#,
        r#"{"inputs":[{"seq":4294967296}]}"#,
        r#"{"inputs":[{"seq":1,"fire":true}]}"#,
        r#"{"inputs":[{"thrust":1}]}"#,
        r#"{"inputs":{"seq":1}}"#,
        r#"{"inputs":[{"seq":1}]"#,
        "nope",
    ];
    for body in refused {
        let (status, r) = post(&server, &path, body).await;
        assert_eq!(
            (status, error_code(&r)),
            (400, "bad_request"),
            "{body}: {r}"
        );
    }
    let (status, r) = post(
        &server,
        &path,
        r#"{"inputs":[{"seq":1,"thrust":-128,"turn":-128,"buttons":255}]}"#,
    )
    .await;
    assert_eq!((status, r["accepted"].as_u64()), (200, Some(1)), "{r}");
    assert_eq!(http_ack(&server, "default", &token, 1).await, 1);

    assert_eq!(
        server.rejections("input_out_of_range").await - out_of_range,
        3.0
    );
    assert_eq!(
        server.rejections("malformed").await - malformed,
        refused.len() as f64
    );
    server.assert_unharmed(honest).await;
    server.stop().await;
}

/// Sequence numbers replayed, reordered and replayed again after a resume: each is applied at
/// most once, the ack never goes backwards, and every stale one is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_reordered_sequence_numbers_are_applied_at_most_once() {
    let server = TestServer::start(test_config()).await;
    let honest = Honest::start(&server, "default", 6).await;
    let stale = server.rejections("input_stale").await;

    let (mut ws, _, token) = join(&server, "default").await;
    let mut replica = Replica::new();
    for seq in [1, 2, 3, 2, 3, 1, 10, 5, 11] {
        send(&mut ws, &input(seq, 50, 0, 0)).await;
    }
    let mut acks = acks_until(&mut ws, &mut replica, 11).await;
    // Drop the connection and come back with the token: the old numbers are still spent.
    ws.close(None)
        .await
        .unwrap_or_else(|e| panic!("close: {e}"));
    let resume = ClientMsg::Hello {
        version: game_core::protocol::PROTOCOL_VERSION,
        name: String::new(),
        token: Some(token),
        last_tick: replica.tick(),
    };
    let (mut ws, ..) = join_with(&server, "default", resume).await;
    for seq in [11, 3, 12] {
        send(&mut ws, &input(seq, 50, 0, 0)).await;
    }
    let after = acks_until(&mut ws, &mut replica, 12).await;
    assert!(
        after.first().is_some_and(|&a| a >= 11),
        "the ack survives the resume: {after:?}"
    );
    acks.extend(after);
    assert!(
        acks.windows(2).all(|w| w[0] <= w[1]),
        "acks in order: {acks:?}"
    );
    assert_eq!(replica.desyncs(), 0);

    // Over HTTP: the same batch twice, then an older pair.
    let token = http_join(&server, "default").await;
    let path = format!("/api/rooms/default/input?token={token}");
    let batch = r#"{"inputs":[{"seq":1},{"seq":2},{"seq":3}]}"#;
    for body in [batch, batch, r#"{"inputs":[{"seq":5},{"seq":4}]}"#] {
        let (status, r) = post(&server, &path, body).await;
        assert_eq!(status, 200, "{r}");
    }
    assert_eq!(http_ack(&server, "default", &token, 5).await, 5);

    // 2, 3, 1, 5 and 11, 3 over WebSocket; 1, 2, 3 and 4 over HTTP.
    assert_eq!(server.rejections("input_stale").await - stale, 10.0);
    server.assert_unharmed(honest).await;
    server.stop().await;
}
