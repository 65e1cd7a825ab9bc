//! Room chat over every transport: a player's line reaches every player and spectator in the
//! room whatever they use (WebSocket messages, SSE `chat` events, stream and poll records, JSON
//! lines), newcomers get the last few lines, a client that drops and resumes gets what was said
//! meanwhile, and the limits (length, rate, spectators, control characters) hold with clear
//! answers — while every replica keeps verifying.

use bots::{ClientError, ConnectOptions, Event, Resume, Role, Session, Stats, Transport, open};
use game_core::replica::Replica;
use std::time::Duration;
use tickwire_tests::*;

fn opts(server: &TestServer, role: Role, name: &str) -> ConnectOptions {
    let mut o =
        ConnectOptions::new(&server.url(), "default", role).unwrap_or_else(|e| panic!("{e}"));
    o.name = name.to_owned();
    o
}

/// A session with its verified replica.
struct Client {
    session: Session,
    replica: Replica,
    stats: Stats,
}

impl Client {
    async fn open(server: &TestServer, role: Role, t: Transport, resume: Resume) -> Self {
        let session = open(&opts(server, role, &format!("{t}-{role:?}")), t, resume)
            .await
            .unwrap_or_else(|e| panic!("{t} {role:?}: {e}"));
        Self {
            session,
            replica: Replica::new(),
            stats: Stats::default(),
        }
    }

    /// Events until a chat line with `text` (returned as `(from, name)`); every other chat line
    /// seen on the way is collected in `others`.
    async fn until_chat(&mut self, text: &str, others: &mut Vec<String>) -> (u16, String) {
        let wait = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let event = self
                    .session
                    .follower
                    .next_event(&mut self.replica, &mut self.stats)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", self.session.transport));
                if let Event::Chat {
                    from,
                    name,
                    text: said,
                } = event
                {
                    if said == text {
                        return (from, name);
                    }
                    others.push(said);
                }
            }
        });
        wait.await
            .unwrap_or_else(|_| panic!("{}: no chat {text:?}", self.session.transport))
    }

    /// Frames until the replica holds a send, with chat lines collected in `chat`.
    async fn frames(&mut self, n: usize, chat: &mut Vec<String>) {
        let mut seen = 0;
        while seen < n {
            let event = tokio::time::timeout(
                Duration::from_secs(5),
                self.session
                    .follower
                    .next_event(&mut self.replica, &mut self.stats),
            )
            .await
            .unwrap_or_else(|_| panic!("no frame"))
            .unwrap_or_else(|e| panic!("{e}"));
            match event {
                Event::Frame(_) => seen += 1,
                Event::Chat { text, .. } => chat.push(text),
                Event::Pong { .. } => {}
            }
        }
    }
}

/// A player on `t` speaks; a spectator on `t`, a WebSocket player and the speaker itself hear
/// it, with the speaker's ship and name.
async fn chat_over(t: Transport) {
    let server = TestServer::start(test_config()).await;
    let mut speaker = Client::open(&server, Role::Player, t, Resume::default()).await;
    let mut spectator = Client::open(&server, Role::Spectator, t, Resume::default()).await;
    let mut ws_player = Client::open(&server, Role::Player, Transport::Ws, Resume::default()).await;
    let text = format!("gg over {t} <b>not bold</b>");
    speaker
        .session
        .sender
        .chat(&text)
        .await
        .unwrap_or_else(|e| panic!("{t}: {e}"));
    let ship = speaker.session.welcome.entity;
    let mut others = Vec::new();
    for client in [&mut speaker, &mut spectator, &mut ws_player] {
        let (from, name) = client.until_chat(&text, &mut others).await;
        assert_eq!(from, ship, "{t}: the speaker's ship");
        assert_eq!(name, format!("{t}-Player"), "{t}");
        assert_eq!(client.stats.desyncs, 0, "{t}");
    }
    assert!(others.is_empty(), "{t}: nothing else was said: {others:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_websocket() {
    chat_over(Transport::Ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_sse() {
    chat_over(Transport::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_streaming() {
    chat_over(Transport::Stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_polling() {
    chat_over(Transport::LongPoll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_polling() {
    chat_over(Transport::Poll).await;
}

/// What is said while a client is away arrives, in order, when it resumes from its last tick;
/// a newcomer gets the last lines said before it came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_said_during_a_drop_arrive_after_resume() {
    let mut cfg = test_config();
    cfg.chat_per_10s = 20;
    let server = TestServer::start(cfg).await;
    let mut speaker = Client::open(&server, Role::Player, Transport::Ws, Resume::default()).await;
    for t in [Transport::Sse, Transport::Poll, Transport::Ws] {
        let mut away = Client::open(&server, Role::Spectator, t, Resume::default()).await;
        let mut chat = Vec::new();
        away.frames(3, &mut chat).await;
        let held = away.replica.tick();
        // It drops.
        drop(away.session);
        let said: Vec<String> = (0..3).map(|i| format!("{t} while away {i}")).collect();
        for line in &said {
            speaker
                .session
                .sender
                .chat(line)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // The speaker hears its lines, so they have gone out with a send.
        let mut ignore = Vec::new();
        speaker.until_chat(&said[2], &mut ignore).await;
        let resume = Resume {
            last_tick: held,
            ..Resume::default()
        };
        let session = open(&opts(&server, Role::Spectator, "back"), t, resume)
            .await
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        away.session = session;
        let mut heard = Vec::new();
        away.until_chat(&said[2], &mut heard).await;
        assert_eq!(heard, said[..2], "{t}: in order, nothing lost");
        assert_eq!(away.stats.desyncs, 0);
    }
    // A newcomer gets the backlog: the room's last ten lines, oldest first.
    let mut newcomer = Client::open(
        &server,
        Role::Spectator,
        Transport::Stream,
        Resume::default(),
    )
    .await;
    let mut backlog = Vec::new();
    newcomer.frames(1, &mut backlog).await;
    assert_eq!(backlog.len(), 9, "nine lines said so far: {backlog:?}");
    assert_eq!(backlog.last().map(String::as_str), Some("ws while away 2"));
    server.stop().await;
}

/// Length and rate limits, spectators and control characters, over WebSocket (private notices
/// from the server) and over HTTP (status and error code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_with_clear_answers() {
    let mut cfg = test_config();
    cfg.chat_max_chars = 20;
    cfg.chat_per_10s = 3;
    let server = TestServer::start(cfg).await;
    let before = server
        .metric("tickwire_rejections_total{reason=\"chat\"}")
        .await;
    let mut ws = Client::open(&server, Role::Player, Transport::Ws, Resume::default()).await;
    let mut listener =
        Client::open(&server, Role::Spectator, Transport::Sse, Resume::default()).await;

    // Too long: a private notice; nobody else hears anything.
    let long = "x".repeat(21);
    ws.session
        .sender
        .chat(&long)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut others = Vec::new();
    let (from, name) = ws
        .until_chat("chat lines are at most 20 characters", &mut others)
        .await;
    assert_eq!((from, name.as_str()), (0, "server"));

    // Control characters go; three lines pass, the fourth is over the rate.
    for line in ["one\u{7}", "\ttwo\n", "three"] {
        ws.session
            .sender
            .chat(line)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    ws.session
        .sender
        .chat("four")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut heard = Vec::new();
    ws.until_chat(
        "at most 3 chat lines per 10 seconds; wait a moment",
        &mut heard,
    )
    .await;
    let mut spectator_heard = Vec::new();
    listener.until_chat("three", &mut spectator_heard).await;
    assert_eq!(spectator_heard, ["one", "two"]);
    // The notices were private: the spectator sees no more lines before the next frames.
    let mut after = Vec::new();
    listener.frames(10, &mut after).await;
    assert!(after.is_empty(), "{after:?}");

    // A WebSocket spectator is told it cannot chat.
    let mut ws_spectator =
        Client::open(&server, Role::Spectator, Transport::Ws, Resume::default()).await;
    let spoke = ws_spectator.session.sender.chat("hi").await;
    // The bots library lets a WebSocket spectator try, so the server's answer is tested.
    assert!(spoke.is_ok(), "{spoke:?}");
    ws_spectator
        .until_chat("spectators cannot chat", &mut Vec::new())
        .await;

    // HTTP: the same limits as status codes.
    let http = Client::open(&server, Role::Player, Transport::Poll, Resume::default()).await;
    let token = http
        .session
        .welcome
        .token
        .unwrap_or_else(|| panic!("token"));
    let client = reqwest::Client::new();
    let post = |q: String, body: serde_json::Value| {
        let client = client.clone();
        let url = format!("{}/api/rooms/default/chat{q}", server.url());
        async move {
            let r = client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            (status, v["error"]["code"].as_str().unwrap_or("").to_owned())
        }
    };
    let q = format!("?token={token}");
    let t = |text: &str| serde_json::json!({ "text": text });
    assert_eq!(
        post(q.clone(), t(&long)).await,
        (400, "chat_too_long".into())
    );
    assert_eq!(
        post(q.clone(), t(" \n ")).await,
        (400, "bad_request".into())
    );
    assert_eq!(
        post(String::new(), t("hi")).await,
        (401, "token_required".into())
    );
    let forged = format!("?token={}", "ab".repeat(16));
    assert_eq!(post(forged, t("hi")).await, (401, "bad_token".into()));
    for _ in 0..3 {
        assert_eq!(post(q.clone(), t("spam")).await.0, 204);
    }
    assert_eq!(post(q.clone(), t("spam")).await, (429, "chat_rate".into()));
    let http_sender = match &http.session.sender {
        bots::Sender::Http(h) => h,
        other => panic!("an HTTP player has an HTTP sender: {other:?}"),
    };
    match http_sender.chat("more").await {
        Err(e @ ClientError::Api(_)) => assert_eq!(e.api_code(), Some("chat_rate")),
        other => panic!("expected chat_rate, got {other:?}"),
    }

    let after = server
        .metric("tickwire_rejections_total{reason=\"chat\"}")
        .await;
    // 21 chars + rate over WebSocket, the spectator, 21 chars + 2 × rate over HTTP, token
    // required.
    assert!(
        after - before >= 7.0,
        "chat rejections counted: {before} → {after}"
    );
    assert_eq!(ws.stats.desyncs + listener.stats.desyncs, 0);
    server.stop().await;
}

/// `?format=json` shows chat as JSON objects with the tick they went out with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_streams_show_chat() {
    let server = TestServer::start(test_config()).await;
    let mut speaker = Client::open(&server, Role::Player, Transport::Ws, Resume::default()).await;
    let url = format!("{}/api/rooms/default/stream?format=json", server.url());
    let mut response = reqwest::get(url).await.unwrap_or_else(|e| panic!("{e}"));
    speaker
        .session
        .sender
        .chat("hello json")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut text = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let chunk = response
                .chunk()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("stream ended"));
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(line) = text.lines().find(|l| l.contains("\"chat\"")) {
                return serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("{e}: {line}"));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no chat line in {text}"));
    assert_eq!(found["type"], "chat");
    assert_eq!(found["text"], "hello json");
    assert_eq!(found["from"], speaker.session.welcome.entity);
    assert!(found["tick"].as_u64().is_some_and(|t| t > 0));
    let mut ignore = Vec::new();
    speaker.until_chat("hello json", &mut ignore).await;
    server.stop().await;
}
