//! Helpers for tickwire's end-to-end tests: start a real server on port 0, talk to it over real
//! sockets — HTTP with reqwest, WebSocket with tokio-tungstenite directly (for raw, even
//! hostile, clients) or through the bots library (for honest players).

use game_core::codec;
use game_core::protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use server::Config;

mod honest;
pub use honest::{Honest, HonestReport, MAX_FRAME_GAP};

/// A raw WebSocket connection to the server.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server running in this process on an ephemeral port.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Settings for tests: the defaults with timeouts short enough to test quickly.
pub fn test_config() -> Config {
    Config {
        handshake_timeout_ms: 1000,
        shutdown_deadline_secs: 3,
        reconnect_grace_secs: 5,
        ..Config::default()
    }
}

impl TestServer {
    /// Starts a server with `cfg` (its `listen` is ignored: port 0 on loopback).
    pub async fn start(cfg: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr: {e}"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, cfg, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/api/rooms/{room}/ws` plus `query`.
    pub fn ws_url(&self, room: &str, query: &str) -> String {
        format!("ws://{}/api/rooms/{room}/ws{query}", self.addr)
    }

    /// GETs a path and parses JSON.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = reqwest::get(format!("{}{path}", self.url()))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status().as_u16();
        (
            status,
            r.json()
                .await
                .unwrap_or_else(|e| panic!("GET {path} JSON: {e}")),
        )
    }

    /// The value of a Prometheus sample line `name` (with labels, exactly as printed).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.url()))
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics body: {e}"));
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
    }

    /// Stops the server and waits for `run` to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let done = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        match done {
            Ok(Ok(Ok(()))) => {}
            other => panic!("server did not stop cleanly: {other:?}"),
        }
    }
}

/// Opens a raw WebSocket.
pub async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .unwrap_or_else(|_| panic!("connect {url}: timed out"))
    .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    ws
}

/// Sends one client message.
pub async fn send(ws: &mut Ws, msg: &ClientMsg) {
    use futures_util::SinkExt;
    ws.send(Message::Binary(codec::encode_client(msg).into()))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
}

/// A `Hello` for a new player or spectator.
pub fn hello() -> ClientMsg {
    ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        name: "test".into(),
        token: None,
        last_tick: None,
    }
}

/// What a raw client saw next.
#[derive(Debug)]
pub enum Seen {
    /// A decoded server message.
    Msg(ServerMsg),
    /// A close frame: code and reason.
    Closed(u16, String),
    /// The connection ended without a close frame.
    Gone,
}

/// The next server message or close, skipping pings; panics after `wait`.
pub async fn next(ws: &mut Ws, wait: Duration) -> Seen {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("nothing from the server within {wait:?}"));
        match msg {
            Some(Ok(Message::Binary(b))) => {
                return Seen::Msg(
                    codec::decode_server(&b)
                        .unwrap_or_else(|e| panic!("server sent bad bytes: {e}")),
                );
            }
            Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                return Seen::Closed(code.into(), reason.to_string());
            }
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return Seen::Gone,
            Some(Ok(_)) => {}
        }
    }
}

/// Reads until a close frame arrives (skipping frames); returns its code and reason.
pub async fn expect_close(ws: &mut Ws, wait: Duration) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(ws, left).await {
            Seen::Closed(code, reason) => return (code, reason),
            Seen::Gone => panic!("connection ended without a close frame"),
            Seen::Msg(_) => {}
        }
    }
}

impl TestServer {
    /// `tickwire_rejections_total{reason="…"}`.
    pub async fn rejections(&self, reason: &str) -> f64 {
        self.metric(&format!("tickwire_rejections_total{{reason=\"{reason}\"}}"))
            .await
    }

    /// Panics unless `GET /healthz` answers 200 `ok` within 5 s.
    pub async fn assert_healthy(&self) {
        let ask = async {
            let r = reqwest::get(format!("{}/healthz", self.url())).await?;
            let status = r.status().as_u16();
            Ok::<_, reqwest::Error>((status, r.text().await?))
        };
        let answer = tokio::time::timeout(Duration::from_secs(5), ask)
            .await
            .unwrap_or_else(|_| panic!("/healthz did not answer within 5 s"))
            .unwrap_or_else(|e| panic!("GET /healthz: {e}"));
        assert_eq!(answer, (200, "ok".to_owned()), "/healthz");
    }
}

impl TestServer {
    /// What every attack test ends with: the server is healthy, the honest player played
    /// undisturbed ([`HonestReport::assert_clean`]), and no input was dropped for a full queue
    /// (attackers in these tests never fill theirs, so one would be an honest input lost).
    pub async fn assert_unharmed(&self, honest: Honest) {
        self.assert_healthy().await;
        honest.finish().await.assert_clean();
        assert_eq!(
            self.rejections("input_queue_full").await,
            0.0,
            "inputs lost"
        );
    }
}

/// A raw player in `room`, past its `Welcome`: the socket, the ship and the token.
pub async fn join(server: &TestServer, room: &str) -> (Ws, u16, game_core::SessionToken) {
    join_with(server, room, hello()).await
}

/// A raw player in `room` that opened with `hello` (a resume, say), past its `Welcome`.
pub async fn join_with(
    server: &TestServer,
    room: &str,
    hello: ClientMsg,
) -> (Ws, u16, game_core::SessionToken) {
    let mut ws = connect(&server.ws_url(room, "")).await;
    send(&mut ws, &hello).await;
    match next(&mut ws, Duration::from_secs(5)).await {
        Seen::Msg(ServerMsg::Welcome {
            entity,
            token: Some(token),
            ..
        }) => (ws, entity, token),
        other => panic!("expected a player's Welcome, got {other:?}"),
    }
}

/// `ClientMsg::Input` with these controls, sent as given (the server validates).
pub fn input(seq: u32, thrust: i8, turn: i8, buttons: u8) -> ClientMsg {
    ClientMsg::Input {
        seq,
        input: game_core::protocol::Input {
            thrust,
            turn,
            buttons,
        },
    }
}

/// Reads frames, verifying each, until one acknowledges `seq` (within 5 s); returns every
/// ack seen. An ack above `seq` (of an input never sent) fails the test.
pub async fn acks_until(
    ws: &mut Ws,
    replica: &mut game_core::replica::Replica,
    seq: u32,
) -> Vec<u32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut acks = Vec::new();
    while acks.last() != Some(&seq) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(ws, left).await {
            Seen::Msg(ServerMsg::Frame(f)) => {
                replica
                    .apply(&f)
                    .unwrap_or_else(|e| panic!("frame did not verify: {e}"));
                assert!(f.ack <= seq, "ack {} of an input never sent", f.ack);
                acks.push(f.ack);
            }
            Seen::Msg(_) => {}
            other => panic!("waiting for ack {seq}, acks {acks:?}: {other:?}"),
        }
    }
    acks
}

/// POSTs `body` (as JSON, whatever it holds) to `path`: the status and the JSON answer
/// (`null` if it is not JSON).
pub async fn post(server: &TestServer, path: &str, body: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", server.url()))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

/// The `error.code` of a JSON error answer ("" if none).
pub fn error_code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// Joins `room` over HTTP (`POST …/join`): the session token.
pub async fn http_join(server: &TestServer, room: &str) -> String {
    let (status, joined) = post(server, &format!("/api/rooms/{room}/join"), "{}").await;
    assert_eq!(status, 200, "join: {joined}");
    joined["token"].as_str().unwrap_or_default().to_owned()
}

/// A TCP connection to `to` from the source address `from` (port picked by the kernel). On
/// Linux every 127.x.y.z is loopback, so tests use these to be many clients, for the per-IP
/// limits.
pub async fn tcp_from(from: std::net::IpAddr, to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("socket: {e}"));
    socket
        .bind(SocketAddr::new(from, 0))
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    tokio::time::timeout(Duration::from_secs(5), socket.connect(to))
        .await
        .unwrap_or_else(|_| panic!("connect {to} from {from}: timed out"))
        .unwrap_or_else(|e| panic!("connect {to} from {from}: {e}"))
}

/// A server whose arena is busy (1,500 asteroids) and whose kernel send buffers are small
/// (8 KiB): frames of a kilobyte or two, so a few seconds of them are more than a client's
/// socket buffers hold — for tests of clients that stop reading.
pub async fn busy_server() -> TestServer {
    static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tickwire-busy-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let arena = dir.join("busy.toml");
    let text = game_core::arena::STANDARD_TOML.replace("count = 30", "count = 1500");
    std::fs::write(&arena, text).unwrap_or_else(|e| panic!("{e}"));
    TestServer::start(Config {
        arena: Some(arena),
        tcp_send_buffer: 8192,
        ..test_config()
    })
    .await
}

/// Bots that play or watch, verifying every frame, until [`Crowd::finish`].
pub struct Crowd {
    stop: tokio::sync::watch::Sender<bool>,
    bots: Vec<tokio::task::JoinHandle<Result<bots::BotReport, bots::ClientError>>>,
}

impl Crowd {
    /// Starts `n` bots in `server`'s default room, as `role` over `transport`.
    pub fn start(
        server: &TestServer,
        n: u64,
        role: bots::Role,
        transport: bots::Transport,
    ) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let bots = (0..n)
            .map(|seed| {
                let opts = bots::ConnectOptions::new(&server.url(), "default", role)
                    .unwrap_or_else(|e| panic!("{e}"));
                let mut cfg = bots::BotConfig::new(opts);
                cfg.transport = transport;
                cfg.seed = seed;
                let mut stopped = stopped.clone();
                tokio::spawn(bots::Bot::new(cfg).run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }))
            })
            .collect();
        Self { stop, bots }
    }

    /// Stops them, and checks that each ran clean: no error, every frame verified, one
    /// keyframe and then deltas, no reconnect, frames all along, and every input acknowledged.
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        for bot in self.bots {
            let report = bot
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(report.error.is_none(), "{:?}", report.error);
            let s = &report.stats;
            assert_eq!(s.desyncs, 0, "every frame verified");
            assert_eq!(s.keyframes, 1, "one keyframe, then deltas");
            assert_eq!(s.reconnects, 0);
            assert!(s.frames > 20, "frames kept coming: {}", s.frames);
            assert!(report.acks_complete(), "every input acknowledged");
        }
    }
}

impl TestServer {
    /// Polls `/metrics` every 50 ms until `ok` holds for the sample `name`; fails the test,
    /// saying `what` and the value, after `within`. The value that held.
    pub async fn until_metric(
        &self,
        name: &str,
        within: Duration,
        what: &str,
        ok: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let n = self.metric(name).await;
            if ok(n) {
                return n;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {name} is {n}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `GET /api/rooms/{room}` every 50 ms until `ok` holds for its answer; fails the
    /// test, saying `what` and the answer, after `within`.
    pub async fn until_room(
        &self,
        room: &str,
        within: Duration,
        what: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (_, info) = self.get_json(&format!("/api/rooms/{room}")).await;
            if ok(&info) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: {info}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
