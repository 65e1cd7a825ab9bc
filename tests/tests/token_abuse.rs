//! Hostile session tokens, each tried while an honest player plays: tokens nobody was given
//! (random, malformed, or real but from another room) and real ones whose session is over,
//! on every path that takes a token — the WebSocket `Hello`, `POST …/input`, `…/join`,
//! `…/leave`, and the SSE, streaming and polling endpoints.
//!
//! As in `adversarial.rs`, each test checks what the attacker got (4001, 401 `bad_token`),
//! that every refusal is counted, and [`TestServer::assert_unharmed`].

use game_core::SessionToken;
use game_core::protocol::{ClientMsg, close};
use std::time::Duration;
use tickwire_tests::*;

const WAIT: Duration = Duration::from_secs(5);

/// Tokens nobody was given — random, malformed, or real but from another room — are refused
/// on every path that takes one, with 4001 or 401 `bad_token`, counted, and without touching
/// the session they belong to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_are_refused_everywhere() {
    let server = TestServer::start(test_config()).await;
    let honest = Honest::start(&server, "default", 7).await;
    let bad_token = server.rejections("bad_token").await;

    let (status, _) = post(&server, "/api/rooms", r#"{"id":"elsewhere"}"#).await;
    assert_eq!(status, 201);
    let (_elsewhere, _, real_ws) = join(&server, "elsewhere").await;
    let real_http = http_join(&server, "elsewhere").await;
    let mut forged: Vec<SessionToken> = (0..20u8)
        .map(|i| SessionToken([i.wrapping_mul(37) ^ 0x5a; 16]))
        .collect();
    forged.push(real_ws);
    forged.push(
        real_http
            .parse()
            .unwrap_or_else(|_| panic!("token {real_http:?}")),
    );
    let attempts = forged.iter().map(|&token| {
        let url = server.ws_url("default", "");
        async move {
            let mut ws = connect(&url).await;
            let hello = ClientMsg::Hello {
                version: game_core::protocol::PROTOCOL_VERSION,
                name: "mallory".into(),
                token: Some(token),
                last_tick: Some(1),
            };
            send(&mut ws, &hello).await;
            let (code, reason) = expect_close(&mut ws, WAIT).await;
            assert_eq!(code, close::BAD_TOKEN, "{reason}");
            assert!(reason.contains("unknown or expired"), "{reason}");
        }
    });
    futures_util::future::join_all(attempts).await;
    assert_eq!(
        server.rejections("bad_token").await - bad_token,
        forged.len() as f64
    );

    // Over HTTP, one request at a time, so a refusal that goes uncounted is named. The real
    // tokens go first: refusing them must leave their sessions in `elsewhere` alone.
    let tokens = [
        real_ws.to_string(),
        real_http.clone(),
        "ab".repeat(16),
        "nothex".into(),
        "ab".repeat(17),
        String::new(),
    ];
    for (i, token) in tokens.iter().enumerate() {
        let mut counted = vec![("", server.rejections("bad_token").await)];
        for (path, body) in [
            ("input", r#"{"inputs":[{"seq":1}]}"#.to_owned()),
            ("join", serde_json::json!({ "token": token }).to_string()),
            ("leave", String::new()),
        ] {
            let (status, r) = post(
                &server,
                &format!("/api/rooms/default/{path}?token={token}"),
                &body,
            )
            .await;
            assert_eq!(
                (status, error_code(&r)),
                (401, "bad_token"),
                "{path} {token:?}"
            );
            counted.push((path, server.rejections("bad_token").await));
        }
        for follow in ["sse", "stream", "poll"] {
            let r = reqwest::get(format!(
                "{}/api/rooms/default/{follow}?token={token}",
                server.url()
            ))
            .await
            .unwrap_or_else(|e| panic!("{follow}: {e}"));
            assert_eq!(r.status().as_u16(), 401, "{follow} {token:?}");
            counted.push((follow, server.rejections("bad_token").await));
        }
        if i == 1 {
            let path = format!("/api/rooms/elsewhere/input?token={real_http}");
            let (status, r) = post(&server, &path, r#"{"inputs":[{"seq":1}]}"#).await;
            assert_eq!(
                status, 200,
                "the HTTP session in `elsewhere` survives its token being refused in \
                 `default`: {r}"
            );
        }
        for w in counted.windows(2) {
            assert_eq!(
                w[1].1 - w[0].1,
                1.0,
                "{} refused token {token:?} with 401 bad_token but did not count it",
                w[1].0
            );
        }
    }

    server.assert_unharmed(honest).await;
    server.stop().await;
}

/// Real tokens after their session ended — a WebSocket player past its reconnect grace, an
/// HTTP player reaped for idleness — are refused like forged ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refused() {
    let server = TestServer::start(Config {
        reconnect_grace_secs: 1,
        idle_timeout_secs: 2,
        ping_interval_secs: 1,
        ..test_config()
    })
    .await;
    let honest = Honest::start(&server, "default", 8).await;
    let bad_token = server.rejections("bad_token").await;

    let (mut ws, _, ws_token) = join(&server, "default").await;
    ws.close(None)
        .await
        .unwrap_or_else(|e| panic!("close: {e}"));
    drop(ws);
    let http_token = http_join(&server, "default").await;
    // The WebSocket ship waits out its 1 s grace; the HTTP session is unheard from for its 2 s
    // idle timeout, is reaped, then waits out the grace too. Only the honest ship remains.
    server
        .until_room(
            "default",
            Duration::from_secs(10),
            "ships outlived their sessions",
            |room| room["players"] == 1,
        )
        .await;

    for token in [
        ws_token,
        http_token.parse().unwrap_or(SessionToken([0; 16])),
    ] {
        let mut ws = connect(&server.ws_url("default", "")).await;
        let hello = ClientMsg::Hello {
            version: game_core::protocol::PROTOCOL_VERSION,
            name: String::new(),
            token: Some(token),
            last_tick: None,
        };
        send(&mut ws, &hello).await;
        let (code, reason) = expect_close(&mut ws, WAIT).await;
        assert_eq!(code, close::BAD_TOKEN, "{reason}");
    }
    let path = format!("/api/rooms/default/input?token={http_token}");
    let (status, r) = post(&server, &path, r#"{"inputs":[{"seq":1}]}"#).await;
    assert_eq!((status, error_code(&r)), (401, "bad_token"), "{r}");
    let join = serde_json::json!({ "token": http_token }).to_string();
    let (status, r) = post(&server, "/api/rooms/default/join", &join).await;
    assert_eq!((status, error_code(&r)), (401, "bad_token"), "{r}");

    assert_eq!(server.rejections("bad_token").await - bad_token, 4.0);
    server.assert_unharmed(honest).await;
    server.stop().await;
}
