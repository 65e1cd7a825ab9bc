//! Hostile connections, before any game message: request headers and bodies trickled in
//! (slowloris), more connections from one address than it may hold, browser pages from other
//! origins, and joins and room creations faster than the per-address rates.
//!
//! As in `adversarial.rs`, an honest player plays through each attack, and each test ends by
//! checking what the attacker got (a closed socket, a status with its JSON error code), the
//! `tickwire_rejections_total` reason it moved, `/healthz`, and the honest player's report.
//! Addresses 127.0.0.2 and up (all loopback on Linux) stand in for other clients, so the
//! attacker's per-address limits never touch the honest player or the test's own requests.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tickwire_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const WAIT: Duration = Duration::from_secs(5);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A WebSocket upgrade from `from`, with an `Origin` header if given.
async fn ws_from(
    server: &TestServer,
    from: IpAddr,
    query: &str,
    origin: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let mut req = server
        .ws_url("default", query)
        .into_client_request()
        .unwrap_or_else(|e| panic!("request: {e}"));
    if let Some(origin) = origin {
        req.headers_mut().insert(
            "origin",
            origin.parse().unwrap_or_else(|e| panic!("origin: {e}")),
        );
    }
    let tcp = tcp_from(from, server.addr).await;
    let upgrade =
        tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(tcp));
    tokio::time::timeout(WAIT, upgrade)
        .await
        .unwrap_or_else(|_| panic!("upgrade from {from}: timed out"))
        .map(|(ws, _)| ws)
}

/// Sends `Hello` and expects the `Welcome` and a first frame.
async fn plays(ws: &mut Ws) {
    send(ws, &hello()).await;
    for what in ["Welcome", "frame"] {
        match next(ws, WAIT).await {
            Seen::Msg(_) => {}
            other => panic!("expected a {what}, got {other:?}"),
        }
    }
}

/// The status and JSON error code of an HTTP refusal of a WebSocket upgrade.
fn refusal(r: Result<Ws, tungstenite::Error>) -> (u16, String) {
    match r {
        Err(tungstenite::Error::Http(resp)) => {
            let body: serde_json::Value = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or_default();
            let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
            (resp.status().as_u16(), code)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

/// Everything the server sends on `tcp` until it closes it (or `WAIT` passes).
async fn read_to_end(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status and JSON error code of a raw HTTP response.
fn status_and_code(response: &str) -> (u16, String) {
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    // A chunked body has its size line first; the JSON is the line that starts with `{`.
    let json = body.lines().find(|l| l.starts_with('{')).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    (status, v["error"]["code"].as_str().unwrap_or("").to_owned())
}

/// Fifty connections that never finish their request headers — forty trickle a header byte
/// every 100 ms, ten send nothing — are all closed once `header_read_timeout_secs` (1 s)
/// passes, while the server answers everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_off_at_the_header_timeout() {
    let server = TestServer::start(Config {
        header_read_timeout_secs: 1,
        ..test_config()
    })
    .await;
    let honest = Honest::start(&server, "default", 11).await;
    let slow = server.rejections("slow_request").await;

    let started = Instant::now();
    let attackers: Vec<_> = (0..50)
        .map(|i| {
            let addr = server.addr;
            tokio::spawn(async move {
                let mut tcp = tcp_from(ip(2 + (i % 5) as u8), addr).await;
                let trickles = i < 40;
                if trickles {
                    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
                    tcp.write_all(head).await.unwrap_or_else(|e| panic!("{e}"));
                }
                let opened = Instant::now();
                let mut buf = [0u8; 256];
                let mut ticks = tokio::time::interval(Duration::from_millis(100));
                let deadline = opened + Duration::from_secs(8);
                loop {
                    tokio::select! {
                        r = tcp.read(&mut buf) => match r {
                            Ok(n) if n > 0 => panic!(
                                "an incomplete request was answered: {:?}",
                                String::from_utf8_lossy(&buf[..n])
                            ),
                            _ => return opened.elapsed(),
                        },
                        _ = ticks.tick(), if trickles => {
                            if tcp.write_all(b"a").await.is_err() {
                                return opened.elapsed();
                            }
                        }
                        _ = tokio::time::sleep_until(deadline) => {
                            panic!("a slow client (trickles: {trickles}) was still connected after 8 s");
                        }
                    }
                }
            })
        })
        .collect();
    // The server answers others while the slow clients hold their connections.
    server.assert_healthy().await;
    let mut longest = Duration::ZERO;
    for a in attackers {
        longest = longest.max(a.await.unwrap_or_else(|e| panic!("attacker: {e}")));
    }
    assert!(
        longest < Duration::from_secs(5),
        "every slow client was closed within a few seconds of a 1 s timeout: {longest:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));

    assert!(
        server.rejections("slow_request").await - slow >= 50.0,
        "each cut-off counted"
    );
    server.assert_unharmed(honest).await;
    server.stop().await;
}

/// hyper's header timeout also ends keep-alive connections that stay quiet after their answer:
/// such a connection is closed, but is not a slow request; one that starts its next request
/// and stalls is. Before, every quiet keep-alive connection (a browser's, the load tool's
/// metrics scraper's) counted as `slow_request`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_keep_alive_connection_is_closed_without_counting_as_slow() {
    let server = TestServer::start(Config {
        header_read_timeout_secs: 1,
        ..test_config()
    })
    .await;
    let slow = server.rejections("slow_request").await;

    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut quiet = tcp_from(ip(2), server.addr).await;
    let mut stalled = tcp_from(ip(3), server.addr).await;
    for tcp in [&mut quiet, &mut stalled] {
        tcp.write_all(request)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let answer = read_answer(tcp).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    }
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    for (name, tcp) in [("quiet", &mut quiet), ("stalled", &mut stalled)] {
        let rest = read_to_end(tcp).await;
        assert_eq!(rest, "", "the {name} connection got nothing more");
        // `read_to_end` gives up after WAIT; a closed socket reads 0 at once.
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_millis(100), tcp.read(&mut byte)).await;
        assert!(
            matches!(closed, Ok(Ok(0) | Err(_))),
            "the {name} connection was closed at the header timeout"
        );
    }
    assert_eq!(
        server.rejections("slow_request").await - slow,
        1.0,
        "only the stalled request counted as slow"
    );
    server.stop().await;
}

/// One whole answer to a request on `tcp`: its head and its `Content-Length` bytes of body.
async fn read_answer(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or_else(|| panic!("an answer without Content-Length: {head:?}"));
            if body.len() >= length {
                return text;
            }
        }
        match tokio::time::timeout(WAIT, tcp.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            other => panic!(
                "no whole answer: {other:?} after {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// Request bodies that stop or trickle — a short `Content-Length` body, a byte every 200 ms,
/// an unfinished chunked body — get 408 `body_timeout` after `body_read_timeout_secs` (1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_body_gets_408() {
    let server = TestServer::start(Config {
        body_read_timeout_secs: 1,
        ..test_config()
    })
    .await;
    let honest = Honest::start(&server, "default", 12).await;
    let slow = server.rejections("slow_request").await;

    let cases = [
        ("/api/rooms", "content-length: 100\r\n", "{\"id\":", false),
        (
            "/api/rooms/default/join",
            "content-length: 100\r\n",
            "{",
            true,
        ),
        (
            "/api/rooms/default/input?token=00",
            "transfer-encoding: chunked\r\n",
            "5\r\n{\"inp\r\n",
            false,
        ),
    ];
    let attacks = cases.map(|(path, framing, start, trickle)| {
        let addr = server.addr;
        tokio::spawn(async move {
            let mut tcp = tcp_from(ip(2), addr).await;
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                 {framing}\r\n{start}"
            );
            tcp.write_all(head.as_bytes())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let opened = Instant::now();
            let mut answer = Vec::new();
            let mut buf = [0u8; 1024];
            let mut ticks = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    r = tcp.read(&mut buf) => match r {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            answer.extend_from_slice(&buf[..n]);
                            // The JSON error body ends the answer.
                            if answer.ends_with(b"}}") {
                                break;
                            }
                        }
                    },
                    // Fewer than the 100 promised bytes, however long it runs.
                    _ = ticks.tick(), if trickle && answer.is_empty() => {
                        let _ = tcp.write_all(b" ").await;
                    }
                    _ = tokio::time::sleep(WAIT) => panic!("{path}: no answer within {WAIT:?}"),
                }
            }
            (
                path,
                opened.elapsed(),
                String::from_utf8_lossy(&answer).into_owned(),
            )
        })
    });
    for a in attacks {
        let (path, took, answer) = a.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            status_and_code(&answer),
            (408, "body_timeout".to_owned()),
            "{path} after {took:?}: {answer}"
        );
    }

    assert_eq!(server.rejections("slow_request").await - slow, 3.0);
    server.assert_unharmed(honest).await;
    server.stop().await;
}

/// A connection from `from` that sends `GET /healthz`: the status it is answered with.
async fn healthz_from(server: &TestServer, from: IpAddr) -> String {
    let mut tcp = tcp_from(from, server.addr).await;
    // A refused connection may be closed before this is written; its answer is what counts.
    let _ = tcp
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await;
    read_to_end(&mut tcp).await
}

/// What a connection over the cap gets: a raw 503 with the JSON code, before any request.
async fn assert_refused_at_accept(server: &TestServer, from: IpAddr, holding: &str) {
    let mut tcp = tcp_from(from, server.addr).await;
    let answer = tokio::time::timeout(Duration::from_secs(2), read_to_end(&mut tcp))
        .await
        .unwrap_or_default();
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "a connection from {from}, which holds {holding}, was admitted past \
         max_connections_per_ip (16) instead of refused with 503: {answer:?}"
    );
    assert_eq!(
        status_and_code(&answer),
        (503, "too_many_connections_from_ip".to_owned()),
        "{answer}"
    );
    assert!(answer.contains("retry-after: 5"), "{answer}");
}

fn per_ip_config() -> Config {
    Config {
        max_connections_per_ip: 16,
        ..test_config()
    }
}

/// One address holding `max_connections_per_ip` (16) idle connections gets a raw 503 with
/// the JSON code `too_many_connections_from_ip` for every further one, before any request is
/// read; other addresses are served as usual, and a place freed is a place regained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_over_the_per_ip_cap_get_a_raw_503() {
    let server = TestServer::start(per_ip_config()).await;
    let honest = Honest::start(&server, "default", 13).await;
    let refused = server.rejections("too_many_from_ip").await;

    let attacker = ip(3);
    let mut held = Vec::new();
    let sockets = "tickwire_tcp_connections";
    let before = server.metric(sockets).await;
    for _ in 0..16 {
        held.push(tcp_from(attacker, server.addr).await);
    }
    // Idle sockets are no client of any transport, but they are open connections.
    let with = server.metric(sockets).await;
    assert!(
        with >= before + 16.0,
        "{sockets}: {before} before, {with} with 16 idle"
    );
    for _ in 0..5 {
        assert_refused_at_accept(&server, attacker, "16 idle connections").await;
    }
    assert_eq!(
        refusal(ws_from(&server, attacker, "", None).await),
        (503, "too_many_connections_from_ip".to_owned())
    );
    // Everyone else is served.
    server.assert_healthy().await;
    let mut other = ws_from(&server, ip(4), "?spectate=1", None)
        .await
        .unwrap_or_else(|e| panic!("another address: {e}"));
    plays(&mut other).await;
    assert_eq!(server.rejections("too_many_from_ip").await - refused, 6.0);

    // Closing one gives its place back.
    drop(held.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = healthz_from(&server, attacker).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no place came back: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    server.assert_unharmed(honest).await;
    drop(held);
    // The 15 still held go; `other` came since.
    server
        .until_metric(sockets, WAIT, "the sockets did not come down", |n| {
            n <= with - 14.0
        })
        .await;
    server.stop().await;
}

/// WebSockets are the connections worth holding: an address with 16 open WebSocket sessions
/// is at its cap like one with 16 idle connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_count_against_the_per_ip_cap() {
    let server = TestServer::start(per_ip_config()).await;
    let honest = Honest::start(&server, "default", 16).await;
    let refused = server.rejections("too_many_from_ip").await;

    let attacker = ip(3);
    let mut held = Vec::new();
    for _ in 0..16 {
        let mut ws = ws_from(&server, attacker, "?spectate=1", None)
            .await
            .unwrap_or_else(|e| panic!("within the cap: {e}"));
        plays(&mut ws).await;
        held.push(ws);
    }
    assert_refused_at_accept(&server, attacker, "16 open WebSockets").await;
    assert_eq!(server.rejections("too_many_from_ip").await - refused, 1.0);

    server.assert_unharmed(honest).await;
    drop(held);
    server.stop().await;
}

/// A browser page from another origin may not open a session (403 `origin_not_allowed`),
/// nor call the API; the server's own origin and listed ones may, and so may clients that
/// send no `Origin` at all (not browsers, which the check is not for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_origins_are_refused_and_own_and_listed_ones_accepted() {
    let server = TestServer::start(Config {
        allowed_origins: vec!["https://play.example".to_owned()],
        ..test_config()
    })
    .await;
    let honest = Honest::start(&server, "default", 14).await;
    let refused_before = server.rejections("origin_not_allowed").await;
    let own = server.url();
    let port = server.addr.port();

    let refused = [
        "http://evil.example".to_owned(),
        "null".to_owned(),
        format!("{own}.evil.example"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "https://play.example.evil".to_owned(),
    ];
    for origin in &refused {
        assert_eq!(
            refusal(ws_from(&server, ip(1), "", Some(origin)).await),
            (403, "origin_not_allowed".to_owned()),
            "{origin}"
        );
    }
    let r = reqwest::Client::new()
        .post(format!("{own}/api/rooms"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 403);
    let (_, rooms) = server.get_json("/api/rooms").await;
    assert_eq!(
        rooms.as_array().map(Vec::len),
        Some(1),
        "no room was created"
    );

    for origin in [own.as_str(), "https://play.example", "HTTPS://PLAY.EXAMPLE"] {
        let mut ws = ws_from(&server, ip(1), "", Some(origin))
            .await
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        plays(&mut ws).await;
    }

    assert_eq!(
        server.rejections("origin_not_allowed").await - refused_before,
        (refused.len() + 1) as f64
    );
    server.assert_unharmed(honest).await;
    server.stop().await;
}

/// Per-address rates: past `room_creates_per_min` (3) a room creation is 429 `rate_limited`;
/// past `joins_per_min` (5) a player's upgrade, `POST …/join` and `POST /api/matchmake` are
/// too. Spectating is not a join, and other addresses keep their own budgets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_room_creations_past_the_rate_get_429() {
    let server = TestServer::start(Config {
        room_creates_per_min: 3,
        joins_per_min: 5,
        ..test_config()
    })
    .await;
    let honest = Honest::start(&server, "default", 15).await;
    let limited = server.rejections("rate_limited").await;
    let from = |last: u8| {
        reqwest::Client::builder()
            .local_address(ip(last))
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"))
    };
    let post = |client: reqwest::Client, path: &'static str| {
        let url = format!("{}{path}", server.url());
        async move {
            let r = client
                .post(url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            (status, v["error"]["code"].as_str().unwrap_or("").to_owned())
        }
    };

    let creator = from(5);
    for _ in 0..3 {
        assert_eq!(post(creator.clone(), "/api/rooms").await.0, 201);
    }
    assert_eq!(
        post(creator.clone(), "/api/rooms").await,
        (429, "rate_limited".to_owned())
    );

    let joiner = ip(6);
    let mut players = Vec::new();
    for _ in 0..5 {
        let mut ws = ws_from(&server, joiner, "", None)
            .await
            .unwrap_or_else(|e| panic!("within the rate: {e}"));
        plays(&mut ws).await;
        players.push(ws);
    }
    assert_eq!(
        refusal(ws_from(&server, joiner, "", None).await),
        (429, "rate_limited".to_owned())
    );
    assert_eq!(
        post(from(6), "/api/rooms/default/join").await,
        (429, "rate_limited".to_owned())
    );
    assert_eq!(
        post(from(6), "/api/matchmake").await,
        (429, "rate_limited".to_owned())
    );
    let mut spectator = ws_from(&server, joiner, "?spectate=1", None)
        .await
        .unwrap_or_else(|e| panic!("spectating is not joining: {e}"));
    plays(&mut spectator).await;
    assert_eq!(post(from(7), "/api/rooms/default/join").await.0, 200);

    assert_eq!(server.rejections("rate_limited").await - limited, 4.0);
    server.assert_unharmed(honest).await;
    server.stop().await;
}
