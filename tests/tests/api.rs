//! The HTTP API: rooms as JSON, creation and its errors, matchmaking, idle rooms closing,
//! health and metrics.

use std::time::Duration;
use tickwire_tests::*;

async fn post(server: &TestServer, path: &str, body: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", server.url()))
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = r.status().as_u16();
    (
        status,
        r.json()
            .await
            .unwrap_or_else(|e| panic!("POST {path} JSON: {e}")),
    )
}

#[tokio::test]
async fn rooms_are_listed_created_and_described() {
    let server = TestServer::start(test_config()).await;
    let (status, rooms) = server.get_json("/api/rooms").await;
    assert_eq!(status, 200);
    let default = &rooms[0];
    assert_eq!(default["id"], "default");
    assert_eq!(default["created_by"], "server");
    assert_eq!(
        (default["tick_rate"].as_u64(), default["send_rate"].as_u64()),
        (Some(60), Some(30))
    );
    assert_eq!(default["capacity"], 50);
    assert_eq!(
        default["ai_ships"], 8,
        "the default room is kept lively by AI ships"
    );
    assert_eq!(default["ws"], "/api/rooms/default/ws");
    assert!(
        default["arena"]["obstacles"]
            .as_array()
            .is_some_and(|o| !o.is_empty())
    );

    let (status, made) = post(&server, "/api/rooms", "").await;
    assert_eq!(status, 201);
    assert_eq!(made["created_by"], "user");
    let picked = made["id"].as_str().unwrap_or_default().to_owned();
    assert!(!picked.is_empty());
    let (status, named) = post(&server, "/api/rooms", r#"{"id": "arena-2"}"#).await;
    assert_eq!((status, named["id"].as_str()), (201, Some("arena-2")));

    let (status, err) = post(&server, "/api/rooms", r#"{"id": "arena-2"}"#).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("room_exists"))
    );
    let (status, err) = post(&server, "/api/rooms", r#"{"id": "no spaces"}"#).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("bad_room_id"))
    );
    let (status, err) = post(&server, "/api/rooms", "{not json").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );

    let (status, one) = server.get_json("/api/rooms/arena-2").await;
    assert_eq!((status, one["id"].as_str()), (200, Some("arena-2")));
    // The room ticks.
    let t0 = one["tick"].as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, one) = server.get_json("/api/rooms/arena-2").await;
    assert!(one["tick"].as_u64().unwrap_or(0) > t0);

    let (status, err) = server.get_json("/api/rooms/nope").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("room_not_found"))
    );
    let (_, rooms) = server.get_json("/api/rooms").await;
    assert_eq!(rooms.as_array().map(Vec::len), Some(3));
    server.stop().await;
}

#[tokio::test]
async fn room_limit_is_enforced() {
    let server = TestServer::start(Config {
        max_rooms: 2,
        ..test_config()
    })
    .await;
    assert_eq!(post(&server, "/api/rooms", "").await.0, 201);
    let (status, err) = post(&server, "/api/rooms", "").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (503, Some("too_many_rooms"))
    );
    server.stop().await;
}

#[tokio::test]
async fn matchmaking_fills_the_fullest_room_then_opens_another() {
    let server = TestServer::start(Config {
        room_capacity: 1,
        ..test_config()
    })
    .await;
    let (status, m) = post(&server, "/api/matchmake", "").await;
    assert_eq!((status, m["room"]["id"].as_str()), (200, Some("default")));
    assert_eq!(m["ws"], "/api/rooms/default/ws");
    // Fill the default room (capacity 1) with a player.
    let mut ws = connect(&server.ws_url("default", "")).await;
    send(&mut ws, &hello()).await;
    assert!(matches!(
        next(&mut ws, Duration::from_secs(5)).await,
        Seen::Msg(_)
    ));
    let (_, m) = post(&server, "/api/matchmake", "").await;
    let other = m["room"]["id"].as_str().unwrap_or_default().to_owned();
    assert_ne!(other, "default", "a full room is not offered");
    assert_eq!(m["room"]["created_by"], "user");
    server.stop().await;
}

#[tokio::test]
async fn empty_user_rooms_close_after_their_idle_time() {
    let server = TestServer::start(Config {
        room_idle_secs: 1,
        ..test_config()
    })
    .await;
    let (_, made) = post(&server, "/api/rooms", r#"{"id": "brief"}"#).await;
    assert_eq!(made["id"], "brief");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = server.get_json("/api/rooms/brief").await;
        if status == 404 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle room never closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The server's own room stays.
    assert_eq!(server.get_json("/api/rooms/default").await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn health_and_metrics() {
    let server = TestServer::start(test_config()).await;
    let health = reqwest::get(format!("{}/healthz", server.url()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.unwrap_or_default(), "ok");
    let m = reqwest::get(format!("{}/metrics", server.url()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ct = m
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = m.text().await.unwrap_or_default();
    for name in [
        "# TYPE tickwire_tick_duration_seconds histogram",
        "tickwire_tick_overruns_total ",
        "tickwire_connections{transport=\"ws\",role=\"player\"} ",
        "tickwire_frames_out_total{transport=\"sse\"} ",
        "tickwire_bytes_out_total{transport=\"ws\"} ",
        "tickwire_inputs_total ",
        "tickwire_rejections_total{reason=\"input_stale\"} ",
        "process_cpu_seconds_total ",
        "process_cpu_user_seconds_total ",
        "process_cpu_system_seconds_total ",
        "process_resident_memory_bytes ",
        "tickwire_rooms 1",
    ] {
        assert!(text.contains(name), "missing {name:?}");
    }
    assert!(server.metric("process_resident_memory_bytes").await > 1e6);
    server.stop().await;
}
