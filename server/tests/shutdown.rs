//! SIGTERM during play: the real binary tells every client why it is closing — WebSocket
//! players and spectators with a close frame, SSE and HTTP-streaming spectators with their close
//! event or record — and exits within its shutdown deadline.

use futures_util::{SinkExt, StreamExt};
use game_core::codec;
use game_core::protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg, close};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// A raw HTTP GET whose response is read as text until it contains `until` (or the connection
/// ends, or 5 s pass); returns the connection and everything read.
async fn http_until(mut tcp: TcpStream, path: Option<&str>, until: &str) -> (TcpStream, String) {
    if let Some(path) = path {
        let request = format!("GET {path} HTTP/1.1\r\nhost: tickwire\r\n\r\n");
        tcp.write_all(request.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("write: {e}"));
    }
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !text.contains(until) {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => break,
        }
    }
    (tcp, text)
}

#[tokio::test]
async fn sigterm_closes_every_client_with_a_reason_and_exits_in_time() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--listen", "127.0.0.1:0", "--shutdown-deadline-secs", "3"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn server: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("read stdout: {e}"));
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "unexpected first line {line:?}"
    );

    let mut clients = Vec::new();
    for query in ["", "", "?spectate=1"] {
        let url = format!("ws://{addr}/api/rooms/default/ws{query}");
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let hello = ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: "p".into(),
            token: None,
            last_tick: None,
        };
        ws.send(Message::Binary(codec::encode_client(&hello).into()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Wait until the session is live: a frame has arrived.
        loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => {
                    if matches!(codec::decode_server(&b), Ok(ServerMsg::Frame(_))) {
                        break;
                    }
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("no frame before shutdown: {other:?}"),
            }
        }
        clients.push(ws);
    }

    // Spectators over SSE and HTTP streaming (JSON, to read them as text), live once a frame
    // has come.
    let mut streams = Vec::new();
    for path in [
        "/api/rooms/default/sse?format=json",
        "/api/rooms/default/stream?format=json",
    ] {
        let tcp = TcpStream::connect(&addr)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let (tcp, text) = http_until(tcp, Some(path), r#""type":"frame""#).await;
        assert!(text.contains(r#""type":"frame""#), "{path}: {text}");
        streams.push((path, tcp));
    }

    let sent = Instant::now();
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap_or_else(|e| panic!("kill: {e}"));
    assert!(status.success());

    for mut ws in clients {
        let reason = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(frame))))) => {
                    break (u16::from(frame.code), frame.reason.to_string());
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(reason.0, close::GOING_AWAY);
        assert!(reason.1.contains("shutting down"), "{}", reason.1);
    }
    for (path, tcp) in streams {
        let (_, text) = http_until(tcp, None, r#""type":"close""#).await;
        let close = text
            .lines()
            .map(|l| l.trim_start_matches("data: "))
            .find(|l| l.contains(r#""type":"close""#))
            .unwrap_or_else(|| panic!("{path}: no close after SIGTERM in {text:?}"));
        let close: serde_json::Value =
            serde_json::from_str(close).unwrap_or_else(|e| panic!("{path}: {e}: {close}"));
        assert_eq!(close["code"], close::GOING_AWAY, "{path}");
        let reason = close["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("shutting down"), "{path}: {reason}");
    }
    // Exit within the 3 s deadline (plus process start-up slack on a loaded machine).
    let exited = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("wait: {e}")) {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(8) {
            let _ = child.kill();
            panic!("server still running {:?} after SIGTERM", sent.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exited.success(), "exit status {exited}");
}
