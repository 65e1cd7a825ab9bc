//! WebSocket sessions on their room's shared writer (`server/src/ws_hub.rs`): caught-up players
//! and spectators get their frames from a shard, each with its own acknowledged input; a player
//! that stops reading gets its frames back from the shard without holding anyone up, catches up
//! with frames that apply, and rejoins; chat and the shutdown close reach every session.

use bots::{Role, Transport};
use game_core::protocol::{ServerMsg, close};
use game_core::replica::Replica;
use std::time::Duration;
use tickwire_tests::*;
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;

const GAUGE: &str = "tickwire_shared_connections{transport=\"ws\"}";
const WAIT: Duration = Duration::from_secs(10);

/// Polls `/metrics` until `ok` holds for the WebSocket shared-writer gauge (or 10 s pass).
async fn until(server: &TestServer, what: &str, ok: impl Fn(f64) -> bool) {
    server.until_metric(GAUGE, WAIT, what, ok).await;
}

/// A raw player with a receive buffer of `recv_buffer` bytes, past its `Welcome`.
async fn raw_player(server: &TestServer, recv_buffer: u32) -> Ws {
    let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    socket
        .set_recv_buffer_size(recv_buffer)
        .unwrap_or_else(|e| panic!("{e}"));
    let tcp = socket
        .connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = server.ws_url("default", "");
    let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e}"));
    send(&mut ws, &hello()).await;
    match next(&mut ws, WAIT).await {
        Seen::Msg(ServerMsg::Welcome { token: Some(_), .. }) => ws,
        other => panic!("expected a player's Welcome, got {other:?}"),
    }
}

/// Reads until `n` frames have applied to `replica`, ticks moving forward; the last tick.
async fn frames(ws: &mut Ws, replica: &mut Replica, n: usize) -> u32 {
    let mut last = None;
    let mut applied = 0;
    while applied < n {
        match next(ws, WAIT).await {
            Seen::Msg(ServerMsg::Frame(f)) => {
                assert!(last.is_none_or(|t| f.tick > t), "ticks move forward");
                replica
                    .apply(&f)
                    .unwrap_or_else(|e| panic!("frame {} did not apply: {e}", f.tick));
                last = Some(f.tick);
                applied += 1;
            }
            Seen::Msg(_) => {}
            other => panic!("expected frames, got {other:?}"),
        }
    }
    last.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_player_gets_its_frames_back_catches_up_and_rejoins() {
    let server = busy_server().await;

    // Playing, verifying bots over WebSocket.
    let crowd = Crowd::start(&server, 12, Role::Player, Transport::Ws);
    let mut slow = raw_player(&server, 2048).await;
    let mut replica = Replica::new();
    frames(&mut slow, &mut replica, 10).await;
    until(&server, "every session joins a shard", |n| n >= 13.0).await;
    // Its acknowledged input reaches it through the shard.
    send(&mut slow, &input(1, 1, 0, 0)).await;
    acks_until(&mut slow, &mut replica, 1).await;

    // It stops reading, and sends an input: its socket fills, the shard gives its frames back
    // to its own task, and the others keep getting every send.
    send(&mut slow, &input(2, 0, 1, 0)).await;
    let stalled_at = frames(&mut slow, &mut replica, 1).await;
    until(&server, "the stalled player leaves its shard", |n| {
        n <= 12.0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    until(&server, "the others stay", |n| n >= 12.0).await;

    // Reading again: what the socket held, then a delta from its last frame (or a keyframe),
    // everything applying, the input acknowledged; and it is back on the shared writer.
    acks_until(&mut slow, &mut replica, 2).await;
    let now = frames(&mut slow, &mut replica, 60).await;
    assert!(
        now > stalled_at + 60,
        "it is live again, well past where it stalled (from {stalled_at} to {now})"
    );
    until(&server, "the caught-up player rejoins", |n| n >= 13.0).await;
    send(&mut slow, &input(3, 0, 0, 0)).await;
    acks_until(&mut slow, &mut replica, 3).await;

    crowd.finish().await;
    // Sessions that end leave their shard.
    drop(slow);
    until(&server, "ended sessions leave", |n| n == 0.0).await;
    let players = "tickwire_connections{transport=\"ws\",role=\"player\"}";
    server
        .until_metric(players, WAIT, "players still counted", |n| n == 0.0)
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_sessions_get_their_acks_chat_and_the_close_on_shutdown() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _, _) = join(&server, "default").await;
    let (mut b, _, _) = join(&server, "default").await;
    let mut watcher = connect(&server.ws_url("default", "?spectate=1")).await;
    send(&mut watcher, &hello()).await;
    let mut replicas = [Replica::new(), Replica::new(), Replica::new()];
    for (ws, r) in [&mut a, &mut b, &mut watcher]
        .into_iter()
        .zip(&mut replicas)
    {
        frames(ws, r, 3).await;
    }
    until(&server, "sessions join a shard", |n| n >= 3.0).await;

    // Each player's frames carry its own acknowledged input, from the same shard.
    send(&mut a, &input(7, 1, 0, 0)).await;
    send(&mut b, &input(3, 0, 1, 0)).await;
    acks_until(&mut a, &mut replicas[0], 7).await;
    acks_until(&mut b, &mut replicas[1], 3).await;

    // A player speaks; every session gets the line, the speaker too.
    send(
        &mut a,
        &game_core::protocol::ClientMsg::Chat {
            text: "hello shard".into(),
        },
    )
    .await;
    for ws in [&mut a, &mut b, &mut watcher] {
        loop {
            match next(ws, WAIT).await {
                Seen::Msg(ServerMsg::Chat { text, .. }) => {
                    assert_eq!(text, "hello shard");
                    break;
                }
                Seen::Msg(_) => {}
                other => panic!("expected the chat line, got {other:?}"),
            }
        }
    }

    // Shutdown: each gets the close with its reason.
    let stopping = tokio::spawn(server.stop());
    for ws in [&mut a, &mut b, &mut watcher] {
        let (code, reason) = expect_close(ws, WAIT).await;
        assert_eq!(code, close::GOING_AWAY, "{reason}");
    }
    stopping.await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_request_that_is_not_an_upgrade_is_told_what_is_wrong() {
    let server = TestServer::start(test_config()).await;
    let url = format!("{}/api/rooms/default/ws", server.url());
    let client = reqwest::Client::new();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "Connection"),
        (&[("connection", "upgrade")], "Upgrade"),
        (
            &[
                ("connection", "keep-alive, Upgrade"),
                ("upgrade", "websocket"),
            ],
            "Sec-WebSocket-Version",
        ),
        (
            &[
                ("connection", "upgrade"),
                ("upgrade", "WebSocket"),
                ("sec-websocket-version", "13"),
            ],
            "Sec-WebSocket-Key",
        ),
    ];
    for (headers, named) in cases {
        let mut req = client.get(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(res.status().as_u16(), 426, "{headers:?}");
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        assert_eq!(error_code(&body), "websocket_upgrade_required");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{headers:?}: {message}");
    }
    // An unknown room is still a 404, before anything else.
    let res = client
        .get(format!("{}/api/rooms/nowhere/ws", server.url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(res.status().as_u16(), 404);
    server.stop().await;
}
