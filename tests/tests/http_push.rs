//! The HTTP push techniques as a plain HTTP client sees them: SSE, HTTP streaming, long
//! polling and polling — headers, event fields, framing, cursors, JSON — and players who play
//! without WebSocket (join, input by POST, state with `?token=`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use game_core::codec::decode_server;
use game_core::protocol::{Frame, ServerMsg};
use game_core::replica::Replica;
use std::time::{Duration, Instant};
use tickwire_tests::*;

/// Reads a streaming body until `pred` says the collected bytes are enough (or 10 s pass).
async fn read_until(resp: reqwest::Response, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut body = resp.bytes_stream();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !pred(&buf) {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => buf.extend_from_slice(&chunk),
            other => panic!("stream ended early: {other:?}"),
        }
    }
    buf
}

/// SSE events as (field, value) lists, split on blank lines.
fn sse_events(text: &str) -> Vec<Vec<(String, String)>> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            e.lines()
                .map(|l| match l.split_once(':') {
                    Some((f, v)) => (f.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()),
                    None => (l.to_owned(), String::new()),
                })
                .collect()
        })
        .collect()
}

fn field<'a>(event: &'a [(String, String)], name: &str) -> Option<&'a str> {
    event
        .iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.as_str())
}

fn frame_of(msg: ServerMsg) -> Frame {
    match msg {
        ServerMsg::Frame(f) => f,
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[tokio::test]
async fn sse_speaks_event_stream_and_resumes_from_last_event_id() {
    let server = TestServer::start(test_config()).await;
    let url = format!("{}/api/rooms/default/sse", server.url());
    let resp = reqwest::get(&url).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    let body = read_until(resp, |b| {
        String::from_utf8_lossy(b).matches("event: frame").count() >= 6
    })
    .await;
    let text = String::from_utf8_lossy(&body).replace("\r\n", "\n");
    let events = sse_events(&text);
    assert_eq!(field(&events[0], "retry"), Some("2000"));
    assert_eq!(field(&events[0], "event"), Some("welcome"));
    let welcome = STANDARD
        .decode(field(&events[0], "data").unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        decode_server(&welcome),
        Ok(ServerMsg::Welcome {
            entity: 0,
            token: None,
            ..
        })
    ));

    let mut replica = Replica::new();
    let mut last_id = 0;
    for e in events[1..]
        .iter()
        .filter(|e| field(e, "event") == Some("frame"))
    {
        let id: u32 = field(e, "id")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("frame without id: {e:?}"));
        let bytes = STANDARD
            .decode(field(e, "data").unwrap_or_default())
            .unwrap_or_else(|err| panic!("{err}"));
        let f = frame_of(decode_server(&bytes).unwrap_or_else(|err| panic!("{err}")));
        assert_eq!(f.tick, id, "id: is the frame's tick");
        assert_eq!(
            f.base,
            replica.tick(),
            "keyframe first, then deltas from the previous event"
        );
        replica.apply(&f).unwrap_or_else(|err| panic!("{err}"));
        last_id = id;
    }
    assert_eq!(replica.desyncs(), 0);

    // Reconnect the way EventSource does: the first frame is a delta from Last-Event-ID.
    let resp = reqwest::Client::new()
        .get(&url)
        .header("Last-Event-ID", last_id.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let body = read_until(resp, |b| {
        String::from_utf8_lossy(b).contains("event: frame")
    })
    .await;
    let text = String::from_utf8_lossy(&body).replace("\r\n", "\n");
    let first = sse_events(&text)
        .into_iter()
        .find(|e| field(e, "event") == Some("frame"))
        .unwrap_or_default();
    let bytes = STANDARD
        .decode(field(&first, "data").unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let f = frame_of(decode_server(&bytes).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(f.base, Some(last_id));
    replica.apply(&f).unwrap_or_else(|e| panic!("{e}"));
    server.stop().await;
}

#[tokio::test]
async fn sse_json_is_readable_and_bad_cursors_are_refused() {
    let server = TestServer::start(test_config()).await;
    let base = format!("{}/api/rooms/default/sse", server.url());
    let resp = reqwest::get(format!("{base}?format=json"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let body = read_until(resp, |b| {
        String::from_utf8_lossy(b).matches("event: frame").count() >= 2
    })
    .await;
    let text = String::from_utf8_lossy(&body).replace("\r\n", "\n");
    let frames: Vec<serde_json::Value> = sse_events(&text)
        .iter()
        .filter(|e| field(e, "event") == Some("frame"))
        .map(|e| {
            serde_json::from_str(field(e, "data").unwrap_or_default())
                .unwrap_or_else(|err| panic!("{err}"))
        })
        .collect();
    assert_eq!(frames[0]["type"], "frame");
    assert_eq!(frames[0]["base"], serde_json::Value::Null);
    assert!(frames[0]["checksum"].is_u64());
    assert!(
        frames[0]["entities"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "asteroid"))
    );
    assert_eq!(frames[1]["base"], frames[0]["tick"]);

    for (query, code) in [
        ("?since=abc", "bad_cursor"),
        ("?since=4000000000", "cursor_in_future"),
    ] {
        let r = reqwest::get(format!("{base}{query}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status().as_u16(), 400, "{query}");
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        assert_eq!(v["error"]["code"], code, "{query}");
    }
    let r = reqwest::get(format!("{}/api/rooms/nope/sse", server.url()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 404);
    server.stop().await;
}

/// Splits complete `u32 LE length ‖ message` records off the front of `buf`.
fn records(buf: &[u8]) -> Vec<ServerMsg> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= 4 {
        let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() < 4 + n {
            break;
        }
        out.push(decode_server(&rest[4..4 + n]).unwrap_or_else(|e| panic!("record: {e}")));
        rest = &rest[4 + n..];
    }
    out
}

#[tokio::test]
async fn http_stream_is_length_prefixed_records_and_resumes_with_since() {
    let server = TestServer::start(test_config()).await;
    let url = format!("{}/api/rooms/default/stream", server.url());
    let resp = reqwest::get(&url).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    // Asked for whole, it is answered on the socket itself: the body ends with the connection.
    assert_eq!(resp.headers()["connection"], "close");
    assert!(resp.headers().get("transfer-encoding").is_none());
    let body = read_until(resp, |b| records(b).len() >= 12).await;
    let msgs = records(&body);
    assert!(matches!(msgs[0], ServerMsg::Welcome { .. }));
    let mut replica = Replica::new();
    for m in msgs.into_iter().skip(1) {
        replica
            .apply(&frame_of(m))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let last = replica.tick().unwrap_or_default();
    let resp = reqwest::get(format!("{url}?since={last}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let body = read_until(resp, |b| records(b).len() >= 2).await;
    let f = frame_of(records(&body).remove(1));
    assert_eq!(f.base, Some(last));
    replica.apply(&f).unwrap_or_else(|e| panic!("{e}"));

    let resp = reqwest::get(format!("{url}?format=json"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let body = read_until(resp, |b| b.iter().filter(|&&c| c == b'\n').count() >= 3).await;
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&body)
        .lines()
        .take(3)
        .map(|l| serde_json::from_str(l).unwrap_or_default())
        .collect();
    assert_eq!(
        (lines[0]["type"].as_str(), lines[1]["type"].as_str()),
        (Some("welcome"), Some("frame"))
    );
    assert_eq!(lines[2]["base"], lines[1]["tick"]);

    // A request head that arrives in pieces goes to hyper: the same records, chunked.
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for piece in [
        "GET /api/rooms/default/stream HTTP/1.1\r\n",
        "Host: t\r\n\r\n",
    ] {
        tcp.write_all(piece.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(n > 0, "closed early");
        answer.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    server.stop().await;
}

async fn poll(server: &TestServer, query: &str) -> (u16, Option<u32>, Vec<u8>) {
    let r = reqwest::get(format!("{}/api/rooms/default/poll{query}", server.url()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("no-store"),
        "{query} {status}"
    );
    let cursor = r
        .headers()
        .get("x-tickwire-cursor")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    (status, cursor, r.bytes().await.unwrap_or_default().to_vec())
}

#[tokio::test]
async fn long_poll_answers_at_once_when_behind_holds_until_the_next_send_and_times_out() {
    // One send a second, so "nothing new yet" lasts long enough to observe.
    let server = TestServer::start(Config {
        send_rate: 1,
        history_sends: 4,
        ..test_config()
    })
    .await;

    // No cursor: a keyframe at once, and the cursor to continue from.
    let (status, cursor, body) = poll(&server, "").await;
    assert_eq!(status, 200);
    let cursor = cursor.unwrap_or_else(|| panic!("a cursor header"));
    let key = frame_of(records(&body).remove(0));
    assert_eq!((key.base, key.tick), (None, cursor));
    let mut replica = Replica::new();
    replica.apply(&key).unwrap_or_else(|e| panic!("{e}"));

    // Up to date, wait=0: 204 with the same cursor (polling).
    let (status, same, body) = poll(&server, &format!("?since={cursor}&wait=0")).await;
    if status == 204 {
        assert_eq!((same, body.len()), (Some(cursor), 0));
    }

    // Up to date, wait=5: held until the next send (at most a second away), then a delta.
    let started = Instant::now();
    let (status, next, body) = poll(
        &server,
        &format!("?since={}&wait=5", replica.tick().unwrap_or_default()),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered on the next send, not at the timeout"
    );
    let f = frame_of(records(&body).remove(0));
    assert_eq!(f.base, replica.tick());
    assert_eq!(next, Some(f.tick));
    replica.apply(&f).unwrap_or_else(|e| panic!("{e}"));

    // Up to date with a short wait: a 204 when the wait ends before the next send. A send can
    // land inside the window by chance; then we are simply behind again and retry.
    let mut timed_out = false;
    for _ in 0..10 {
        let since = replica.tick().unwrap_or_default();
        let started = Instant::now();
        let (status, c, body) = poll(&server, &format!("?since={since}&wait=0.2")).await;
        if status == 204 {
            assert!(
                started.elapsed() >= Duration::from_millis(200),
                "held for the wait"
            );
            assert_eq!(c, Some(since));
            timed_out = true;
            break;
        }
        replica
            .apply(&frame_of(records(&body).remove(0)))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(timed_out, "a long poll with nothing new times out with 204");

    // Behind: an immediate answer. A cursor that left the history: a keyframe.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = replica.tick().unwrap_or_default();
    let (status, _, body) = poll(&server, &format!("?since={since}&wait=5")).await;
    assert_eq!(status, 200);
    assert_eq!(frame_of(records(&body).remove(0)).base, Some(since));
    tokio::time::sleep(Duration::from_secs(5)).await; // more than history_sends (4) sends
    let (status, _, body) = poll(&server, &format!("?since={since}")).await;
    assert_eq!(
        (status, frame_of(records(&body).remove(0)).base),
        (200, None)
    );

    // Bad cursors.
    for (q, code) in [
        ("?since=-1", "bad_cursor"),
        ("?since=99999999", "cursor_in_future"),
        ("?wait=soon", "bad_cursor"),
    ] {
        let r = reqwest::get(format!("{}/api/rooms/default/poll{q}", server.url()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status().as_u16(), 400, "{q}");
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        assert_eq!(v["error"]["code"], code, "{q}");
    }
    server.stop().await;
}

async fn post_json(
    server: &TestServer,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", server.url()))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_player_without_websocket_flies_by_post_and_long_poll() {
    let server = TestServer::start(test_config()).await;
    let (status, joined) = post_json(
        &server,
        "/api/rooms/default/join",
        serde_json::json!({"name": "http"}),
    )
    .await;
    assert_eq!(status, 200);
    let token = joined["token"].as_str().unwrap_or_default().to_owned();
    let ship = joined["entity"].as_u64().unwrap_or_default() as u16;
    assert_eq!(token.len(), 32);
    assert!(ship > 0);
    let (_, room) = server.get_json("/api/rooms/default").await;
    assert_eq!(room["players"], 1);

    let mut replica = Replica::new();
    let (status, _, body) = poll(&server, &format!("?token={token}")).await;
    assert_eq!(status, 200);
    replica
        .apply(&frame_of(records(&body).remove(0)))
        .unwrap_or_else(|e| panic!("{e}"));
    let start = loop {
        // Our ship appears with the first send after the join.
        let since = replica.tick().unwrap_or_default();
        let (_, _, body) = poll(&server, &format!("?since={since}&wait=5&token={token}")).await;
        replica
            .apply(&frame_of(records(&body).remove(0)))
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(s) = replica.snapshot().and_then(|s| s.get(ship)) {
            break *s;
        }
    };

    // Full thrust for 40 inputs, posted in batches; acks arrive in order up to the last seq.
    let mut seq = 0;
    let mut acks = Vec::new();
    for _ in 0..4 {
        let inputs: Vec<_> = (0..10)
            .map(|_| {
                seq += 1;
                serde_json::json!({"seq": seq, "thrust": 127, "turn": 0, "buttons": 0})
            })
            .collect();
        let (status, r) = post_json(
            &server,
            &format!("/api/rooms/default/input?token={token}"),
            serde_json::json!({"inputs": inputs}),
        )
        .await;
        assert_eq!((status, r["accepted"].as_u64()), (200, Some(10)));
        let since = replica.tick().unwrap_or_default();
        let (_, _, body) = poll(&server, &format!("?since={since}&wait=5&token={token}")).await;
        let f = frame_of(records(&body).remove(0));
        acks.push(f.ack);
        replica.apply(&f).unwrap_or_else(|e| panic!("{e}"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while acks.last() != Some(&40) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acks stalled at {acks:?}"
        );
        let since = replica.tick().unwrap_or_default();
        let (_, _, body) = poll(&server, &format!("?since={since}&wait=5&token={token}")).await;
        let f = frame_of(records(&body).remove(0));
        acks.push(f.ack);
        replica.apply(&f).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(
        acks.windows(2).all(|w| w[0] <= w[1]),
        "acks in order: {acks:?}"
    );
    // A ship spawns at rest; under thrust it picks up speed and leaves its spawn point.
    let now = replica
        .snapshot()
        .and_then(|s| s.get(ship))
        .copied()
        .unwrap_or(start);
    let moved = f64::from(now.x - start.x).hypot(f64::from(now.y - start.y));
    assert!(
        moved > 32.0,
        "the ship flew under thrust: moved {moved} grid steps"
    );
    assert!(now.vx != 0 || now.vy != 0, "and is moving: {now:?}");
    assert_eq!(replica.desyncs(), 0);
    server.stop().await;
}

#[tokio::test]
async fn spectators_and_strangers_cannot_post_input() {
    let server = TestServer::start(test_config()).await;
    let body = serde_json::json!({"inputs": [{"seq": 1, "thrust": 127}]});
    let (status, err) = post_json(&server, "/api/rooms/default/input", body.clone()).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("token_required"))
    );
    let (status, err) = post_json(
        &server,
        &format!("/api/rooms/default/input?token={}", "ab".repeat(16)),
        body,
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("bad_token"))
    );
    let (status, err) = post_json(
        &server,
        "/api/rooms/default/join",
        serde_json::json!({"token": "ab".repeat(16)}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("bad_token"))
    );
    let (_, joined) = post_json(&server, "/api/rooms/default/join", serde_json::json!({})).await;
    let token = joined["token"].as_str().unwrap_or_default();
    let (status, _) = post_json(
        &server,
        &format!("/api/rooms/default/input?token={token}"),
        serde_json::json!({"inputs": [{"seq": 1, "thrust": 900}]}),
    )
    .await;
    assert_eq!(status, 400, "thrust out of i8 range does not parse");
    let r = reqwest::get(format!(
        "{}/api/rooms/default/sse?token=nothex",
        server.url()
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        server
            .metric("tickwire_rejections_total{reason=\"spectator_input\"}")
            .await
            >= 1.0
    );
    server.stop().await;
}

#[tokio::test]
async fn http_spectators_count_by_transport() {
    let server = TestServer::start(test_config()).await;
    let sse = reqwest::get(format!("{}/api/rooms/default/sse", server.url()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stream = reqwest::get(format!("{}/api/rooms/default/stream", server.url()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, room) = server.get_json("/api/rooms/default").await;
    assert_eq!(room["spectators"], 2);
    assert_eq!(
        server
            .metric("tickwire_connections{transport=\"sse\",role=\"spectator\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .metric("tickwire_connections{transport=\"stream\",role=\"spectator\"}")
            .await,
        1.0
    );
    drop((sse, stream));
    server
        .until_room(
            "default",
            Duration::from_secs(5),
            "spectators were not uncounted",
            |room| room["spectators"] == 0,
        )
        .await;
    server.stop().await;
}
