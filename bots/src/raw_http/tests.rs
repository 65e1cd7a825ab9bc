//! [`RawBody`] against scripted servers on loopback: each test's server reads the request and
//! answers with exactly the bytes the test names, in the pieces it names.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::endpoint::Role;
use crate::options::ConnectOptions;

const HEAD_SSE: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n";
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A server that takes one connection, reads its request head, and sends it back to the test;
/// then writes each piece the test sends, and closes when the sender is dropped.
struct Scripted {
    url: Url,
    http: Http,
    /// The request head the server read.
    request: mpsc::Receiver<Vec<u8>>,
    /// Pieces to write; `None` closes the connection once they are written.
    pieces: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

async fn scripted() -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let base = format!(
        "http://{}",
        listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"))
    );
    let opts =
        ConnectOptions::new(&base, "r", Role::Spectator).unwrap_or_else(|e| panic!("opts: {e}"));
    let (request_tx, request) = mpsc::channel(1);
    let (pieces, mut pieces_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        let Ok((mut tcp, _)) = listener.accept().await else {
            return;
        };
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).await.is_ok_and(|n| n == 1) {
            head.push(byte[0]);
        }
        let _ = request_tx.send(head).await;
        while let Some(piece) = pieces_rx.recv().await {
            if tcp.write_all(&piece).await.is_err() {
                return;
            }
        }
    });
    Scripted {
        url: crate::endpoint::room_endpoint(opts.room_url(), "sse", &Default::default()),
        http: Http::new(&opts).unwrap_or_else(|e| panic!("http: {e}")),
        request,
        pieces: Some(pieces),
    }
}

impl Scripted {
    fn send(&self, piece: impl Into<Vec<u8>>) {
        if let Some(pieces) = &self.pieces {
            let _ = pieces.send(piece.into());
        }
    }

    /// Closes the connection after what was sent.
    fn close(&mut self) {
        self.pieces = None;
    }

    /// Whether the server still holds the connection open.
    fn is_open(&self) -> bool {
        self.pieces.as_ref().is_some_and(|p| !p.is_closed())
    }

    async fn open(&self, headers: &[(&str, &str)]) -> Result<RawBody, ClientError> {
        RawBody::open(
            &self.http,
            &self.url,
            "text/event-stream",
            headers,
            READ_TIMEOUT,
        )
        .await
    }
}

/// Every chunk until the body ends; the error that ended it.
async fn drain(body: &mut RawBody) -> (Vec<u8>, ClientError) {
    let mut data = Vec::new();
    loop {
        match body.next_chunk().await {
            Ok(chunk) => data.extend_from_slice(&chunk),
            Err(e) => return (data, e),
        }
    }
}

#[test]
fn the_request_is_one_head() -> Result<(), url::ParseError> {
    let url = Url::parse("http://127.0.0.1:8080/api/rooms/a%20b/sse?token=00ff")?;
    let head = request(&url, "text/event-stream", &[("Last-Event-ID", "42")]);
    assert_eq!(
        String::from_utf8_lossy(&head),
        "GET /api/rooms/a%20b/sse?token=00ff HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
         Accept: text/event-stream\r\nLast-Event-ID: 42\r\n\r\n"
    );
    let url = Url::parse("http://[::1]/x")?;
    let head = request(&url, "*/*", &[]);
    assert_eq!(
        String::from_utf8_lossy(&head),
        "GET /x HTTP/1.1\r\nHost: [::1]\r\nAccept: */*\r\n\r\n"
    );
    Ok(())
}

/// The SSE fast path's answer: no framing, the body is the rest of the connection. The head
/// and the start of the body arrive in one read, and the head is split over two.
#[tokio::test]
async fn a_body_until_close() -> Result<(), ClientError> {
    let mut server = scripted().await;
    server.send(&HEAD_SSE.as_bytes()[..20]);
    server.send(format!(
        "{}connection: close\r\n\r\nretry: 2",
        &HEAD_SSE[20..]
    ));
    server.send("000\n\n");
    let mut body = server.open(&[("Last-Event-ID", "7")]).await?;
    let request = server.request.recv().await.unwrap_or_default();
    let request = String::from_utf8_lossy(&request);
    assert!(
        request.starts_with("GET /api/rooms/r/sse HTTP/1.1\r\n")
            && request.contains("\r\nLast-Event-ID: 7\r\n"),
        "{request}"
    );
    server.send("data: x\n\n");
    server.close();
    let (data, end) = drain(&mut body).await;
    assert_eq!(String::from_utf8_lossy(&data), "retry: 2000\n\ndata: x\n\n");
    assert!(matches!(end, ClientError::ConnectionLost), "{end:?}");
    Ok(())
}

/// hyper's answer: chunked, ending at the last chunk even though the connection stays open.
#[tokio::test]
async fn a_chunked_body_ends_at_its_last_chunk() -> Result<(), ClientError> {
    let server = scripted().await;
    server.send(format!(
        "{HEAD_SSE}Transfer-Encoding: chunked\r\n\r\n5\r\nhel"
    ));
    let mut body = server.open(&[]).await?;
    for piece in ["lo\r\n", "6\r", "\n world\r\n0\r\n\r\n"] {
        server.send(piece);
    }
    let (data, end) = drain(&mut body).await;
    assert_eq!(String::from_utf8_lossy(&data), "hello world");
    assert!(matches!(end, ClientError::ConnectionLost), "{end:?}");
    // The server has not closed: the end came from the framing.
    assert!(server.is_open());

    let server = scripted().await;
    server.send(format!(
        "{HEAD_SSE}transfer-encoding: chunked\r\n\r\n5\r\nhello!!"
    ));
    let mut body = server.open(&[]).await?;
    let (_, end) = drain(&mut body).await;
    assert!(matches!(end, ClientError::Protocol(_)), "{end:?}");
    Ok(())
}

#[tokio::test]
async fn a_body_of_a_given_length() -> Result<(), ClientError> {
    let server = scripted().await;
    server.send(format!("{HEAD_SSE}content-length: 6\r\n\r\nabc"));
    let mut body = server.open(&[]).await?;
    server.send("defghi");
    let (data, end) = drain(&mut body).await;
    assert_eq!(data, b"abcdef");
    assert!(matches!(end, ClientError::ConnectionLost), "{end:?}");
    Ok(())
}

/// An error answer is the same [`ClientError::Api`] as over reqwest, whatever its framing;
/// a 2xx of another type, or a head that is not HTTP or too long, is a protocol error.
#[tokio::test]
async fn refusals_and_bad_answers() -> Result<(), ClientError> {
    let json = r#"{"error":{"code":"too_many_connections","message":"m"}}"#;
    let answers = [
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
            json.len()
        ),
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{json}\r\n0\r\n\r\n",
            json.len()
        ),
        format!("HTTP/1.1 503 Service Unavailable\r\n\r\n{json}"),
    ];
    for answer in answers {
        let mut server = scripted().await;
        server.send(answer);
        // The last one's body ends when the connection does.
        server.close();
        let result = server.open(&[]).await;
        let Err(ClientError::Api(e)) = &result else {
            panic!("{result:?}");
        };
        assert_eq!(
            (e.status, e.code.as_deref()),
            (503, Some("too_many_connections"))
        );
    }

    let bad = [
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n\r\n<html>".to_owned(),
        "SSH-2.0-OpenSSH\r\n\r\n".to_owned(),
        format!("{HEAD_SSE}transfer-encoding: gzip, chunked\r\n\r\n"),
        format!("{HEAD_SSE}content-length: 1\r\ncontent-length: 2\r\n\r\n"),
        format!("{HEAD_SSE}x: {}\r\n\r\n", "y".repeat(MAX_HEAD)),
    ];
    for answer in bad {
        let server = scripted().await;
        server.send(answer.clone());
        let result = server.open(&[]).await;
        assert!(
            matches!(result, Err(ClientError::Protocol(_))),
            "{:?}: {result:?}",
            &answer[..answer.len().min(60)]
        );
    }

    // Closed before a whole head.
    let mut server = scripted().await;
    server.send("HTTP/1.1 200 OK\r\n");
    server.close();
    let result = server.open(&[]).await;
    assert!(
        matches!(result, Err(ClientError::ConnectionLost)),
        "{result:?}"
    );
    Ok(())
}

/// Silence for `read_timeout` is a read timeout; bytes more often than that are not, however
/// long the stream lasts.
#[tokio::test(start_paused = true)]
async fn silence_is_a_read_timeout() -> Result<(), ClientError> {
    let server = scripted().await;
    server.send(format!("{HEAD_SSE}\r\n"));
    let mut body = server.open(&[]).await?;
    for _ in 0..5 {
        tokio::time::sleep(READ_TIMEOUT / 2).await;
        server.send(":\n");
        assert_eq!(body.next_chunk().await?, ":\n");
    }
    let started = Instant::now();
    let end = body.next_chunk().await;
    assert!(
        matches!(end, Err(ClientError::ReadTimeout(t)) if t == READ_TIMEOUT),
        "{end:?}"
    );
    let waited = started.elapsed();
    assert!(
        (READ_TIMEOUT / 2..=READ_TIMEOUT).contains(&waited),
        "{waited:?}"
    );
    Ok(())
}

/// Once the caller lets go of a chunk, the next read goes into the same memory.
#[tokio::test]
async fn the_read_buffer_is_reused() -> Result<(), ClientError> {
    let server = scripted().await;
    server.send(format!("{HEAD_SSE}\r\n"));
    let mut body = server.open(&[]).await?;
    let mut seen = Vec::new();
    for i in 0..4 {
        server.send(format!("data: {i}\n\n"));
        let chunk = body.next_chunk().await?;
        assert_eq!(chunk, format!("data: {i}\n\n"));
        seen.push(chunk.as_ptr());
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    Ok(())
}
