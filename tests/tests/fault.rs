//! Fault containment: a room whose task panics — a bug in the simulation, forced here with the
//! test-only `POST /api/rooms/{id}/fault` (server feature `fault-injection`, which only this
//! crate's test builds enable) — is closed with 1011 and a reason to every client it had, over
//! WebSocket and SSE alike, is counted in `tickwire_room_panics_total` and leaves the registry;
//! the other room keeps ticking, its honest player undisturbed, and the server stays healthy.

use base64::Engine;
use futures_util::StreamExt;
use game_core::codec;
use game_core::protocol::{ServerMsg, close};
use std::time::Duration;
use tickwire_tests::*;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(5);

/// Reads an SSE response until its `close` event; returns that event's `ServerMsg::Close`.
async fn sse_close(resp: reqwest::Response) -> (u16, String) {
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(at) = text.find("event: close\n") {
            let rest = &text[at..];
            if let Some(end) = rest.find("\n\n") {
                let data = rest[..end]
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap_or_default();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap_or_else(|e| panic!("close data {data:?}: {e}"));
                match codec::decode_server(&bytes) {
                    Ok(ServerMsg::Close { code, reason }) => return (code, reason),
                    other => panic!("close event carried {other:?}"),
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .unwrap_or_else(|_| panic!("no SSE close event within {WAIT:?}: {text}"));
        match chunk {
            Some(Ok(bytes)) => text.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("SSE ended without a close event ({other:?}): {text}"),
        }
    }
}

async fn room_tick(server: &TestServer, room: &str) -> u64 {
    let (status, info) = server.get_json(&format!("/api/rooms/{room}")).await;
    assert_eq!(status, 200, "{info}");
    info["tick"].as_u64().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_room_is_closed_with_a_reason_and_the_other_room_ticks_on() {
    let server = TestServer::start(test_config()).await;
    let honest = Honest::start(&server, "default", 21).await;
    let http = reqwest::Client::new();
    let create = |id: &str| {
        http.post(format!("{}/api/rooms", server.url()))
            .json(&serde_json::json!({ "id": id }))
            .send()
    };
    let created = create("victim")
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
    assert_eq!(created.status().as_u16(), 201);

    // The victim room's clients: a player, a WebSocket spectator and an SSE spectator.
    let mut player = connect(&server.ws_url("victim", "")).await;
    send(&mut player, &hello()).await;
    let mut spectator = connect(&server.ws_url("victim", "?spectate=1")).await;
    send(&mut spectator, &hello()).await;
    for ws in [&mut player, &mut spectator] {
        for what in ["Welcome", "frame"] {
            let seen = next(ws, WAIT).await;
            assert!(matches!(seen, Seen::Msg(_)), "expected a {what}: {seen:?}");
        }
    }
    let sse = reqwest::get(format!("{}/api/rooms/victim/sse", server.url()))
        .await
        .unwrap_or_else(|e| panic!("sse: {e}"));
    assert_eq!(sse.status().as_u16(), 200);
    let panics = server.metric("tickwire_room_panics_total").await;
    let default_tick = room_tick(&server, "default").await;

    let fault = http
        .post(format!("{}/api/rooms/victim/fault", server.url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("fault: {e}"));
    assert_eq!(fault.status().as_u16(), 202);

    for (who, ws) in [("player", &mut player), ("spectator", &mut spectator)] {
        let (code, reason) = expect_close(ws, WAIT).await;
        assert_eq!(code, close::INTERNAL, "{who}: {reason}");
        assert!(reason.contains("failed on the server"), "{who}: {reason:?}");
    }
    let (code, reason) = sse_close(sse).await;
    assert_eq!(code, close::INTERNAL, "sse: {reason}");
    assert!(reason.contains("failed on the server"), "sse: {reason:?}");

    assert_eq!(
        server.metric("tickwire_room_panics_total").await - panics,
        1.0,
        "the panic is reported"
    );
    // The room leaves the registry; its id is free again.
    let deadline = Instant::now() + WAIT;
    while server.get_json("/api/rooms/victim").await.0 != 404 {
        assert!(Instant::now() < deadline, "the failed room is still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, rooms) = server.get_json("/api/rooms").await;
    let ids: Vec<_> = rooms
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, ["default"]);

    // The other room ticked on through it all (60 Hz; a second's worth is plenty of proof).
    let deadline = Instant::now() + WAIT;
    while room_tick(&server, "default").await < default_tick + 60 {
        assert!(
            Instant::now() < deadline,
            "the default room stopped ticking"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = create("victim")
        .await
        .unwrap_or_else(|e| panic!("create again: {e}"));
    assert_eq!(again.status().as_u16(), 201, "the id can be reused");
    let mut fresh = connect(&server.ws_url("victim", "")).await;
    send(&mut fresh, &hello()).await;
    for what in ["Welcome", "frame"] {
        let seen = next(&mut fresh, WAIT).await;
        assert!(matches!(seen, Seen::Msg(_)), "expected a {what}: {seen:?}");
    }

    server.assert_unharmed(honest).await;
    // A clean stop: nothing of the failed room is left holding the server up.
    server.stop().await;
}
