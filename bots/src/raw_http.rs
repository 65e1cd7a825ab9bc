//! The state streams' one request (`GET …/sse`, `GET …/stream`) on a connection of its own,
//! read straight off the socket in the follower's task.
//!
//! reqwest runs each connection in a hyper dispatcher task that hands the body over a channel:
//! two task wake-ups, allocations and a timer per chunk, which is most of a load generator's
//! time with thousands of streams. A follower only ever sends one GET per connection and reads
//! its answer until the end, so here the request is one write, the head is parsed with
//! `httparse`, and each chunk of the body is one `read` into a reused buffer, bounded in time by
//! one timer per connection.
//!
//! ```text
//! → GET /api/rooms/{id}/sse?token=HEX HTTP/1.1      Host, Accept, [Last-Event-ID]
//! ← HTTP/1.1 200 OK                                   head ≤ 16 KiB, content-type checked
//!   transfer-encoding: chunked   → the body is chunked (hyper's answers; see chunked)
//!   content-length: N            → the body is N bytes
//!   neither                      → the body is the rest of the connection (the SSE fast path)
//! ← 4xx/5xx + JSON error body    → ClientError::Api, as over reqwest (crate::http)
//! the body's end, a reset        → ClientError::ConnectionLost
//! ```

mod chunked;

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use url::{Position, Url};

use crate::error::{ApiError, ClientError};
use crate::http::{ERROR_BODY_LIMIT, ERROR_BODY_TIMEOUT, Http, parse_api_error};
use crate::idle::Idle;

/// The most bytes of a response head (status line and header fields).
const MAX_HEAD: usize = 16 << 10;
/// The most header fields in a response head.
const MAX_HEADERS: usize = 64;
/// What each read may fill: several frames of a busy room. The buffer is reused once the
/// follower has let go of the last chunk, so a connection holds about this much.
const READ_BUF: usize = 8 << 10;

/// How the body of an answer ends.
#[derive(Debug)]
enum Framing {
    /// When the server closes the connection.
    Close,
    /// After this many more bytes.
    Length(u64),
    /// At the last chunk.
    Chunked(chunked::Decoder),
}

/// The body of a streamed answer, read chunk by chunk, with at most `read_timeout` between
/// bytes.
pub(crate) struct RawBody {
    tcp: TcpStream,
    /// Bytes read and not yet handed out (only the rest of the read that ended the head), and
    /// the spare capacity the next read goes into. Each chunk is split off it; once the caller
    /// drops the chunk, `reserve` takes the same memory back.
    buf: BytesMut,
    framing: Framing,
    /// At most `read_timeout` between bytes.
    idle: Idle,
}

impl std::fmt::Debug for RawBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawBody")
            .field("framing", &self.framing)
            .field("read_timeout", &self.idle.timeout())
            .finish_non_exhaustive()
    }
}

impl RawBody {
    /// Sends `GET url` on a new connection (`Accept: content_type` and the other `headers`)
    /// and reads the answer's head. A 2xx answer of `content_type` gives its body; any other
    /// status is [`ClientError::Api`] (its body read briefly, as `crate::http` does), any other
    /// type a [`ClientError::Protocol`] (a proxy's page is not a stream). The caller bounds it
    /// in time; reading the body is then bounded by `read_timeout` between bytes.
    pub(crate) async fn open(
        http: &Http,
        url: &Url,
        content_type: &str,
        headers: &[(&str, &str)],
        read_timeout: Duration,
    ) -> Result<Self, ClientError> {
        let mut tcp = http.connect().await?;
        tcp.write_all(&request(url, content_type, headers))
            .await
            .map_err(io_error)?;
        let mut buf = BytesMut::with_capacity(READ_BUF);
        let head = read_head(&mut tcp, &mut buf).await?;
        let body = Self {
            tcp,
            buf,
            framing: head.framing,
            idle: Idle::new(read_timeout),
        };
        if !(200..300).contains(&head.status) {
            return Err(ClientError::Api(body.api_error(head.status).await));
        }
        if !head.content_type.trim_start().starts_with(content_type) {
            return Err(ClientError::Protocol(format!(
                "expected content-type {content_type}, got {:?}",
                head.content_type
            )));
        }
        Ok(body)
    }

    /// The next bytes of the body. Its end, or the connection ending or failing, is
    /// [`ClientError::ConnectionLost`]: the streams end with a `Close` message, which the
    /// caller sees first. Nothing for `read_timeout` is [`ClientError::ReadTimeout`].
    ///
    /// Cancel-safe: it awaits only the socket's next read and the timer.
    pub(crate) async fn next_chunk(&mut self) -> Result<Bytes, ClientError> {
        loop {
            if let Some(chunk) = self.take_body()? {
                return Ok(chunk);
            }
            if self.framing_is_over() {
                return Err(ClientError::ConnectionLost);
            }
            // No allocation once the caller has dropped the last chunk: the buffer is whole
            // again and `reserve` rewinds it.
            self.buf.reserve(READ_BUF);
            let read = tokio::select! {
                biased;
                read = self.tcp.read_buf(&mut self.buf) => Some(read),
                () = self.idle.expired() => None,
            };
            match read {
                Some(Ok(0)) => return Err(ClientError::ConnectionLost),
                Some(Ok(_)) => self.idle.heard(),
                Some(Err(e)) => {
                    tracing::debug!("stream cut off: {e}");
                    return Err(ClientError::ConnectionLost);
                }
                None => return Err(ClientError::ReadTimeout(self.idle.timeout())),
            }
        }
    }

    /// Hands out the body bytes in `buf`, if any, and drops bytes past the body's end.
    fn take_body(&mut self) -> Result<Option<Bytes>, ClientError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let n = match &mut self.framing {
            Framing::Close => self.buf.len(),
            Framing::Length(left) => {
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(self.buf.len());
                *left -= n as u64;
                n
            }
            Framing::Chunked(decoder) => decoder
                .decode(&mut self.buf)
                .map_err(|e| ClientError::Protocol(format!("chunked body: {e}")))?,
        };
        self.buf.truncate(n);
        Ok((n > 0).then(|| self.buf.split().freeze()))
    }

    /// Whether the body has ended by its framing (not by the connection closing).
    fn framing_is_over(&self) -> bool {
        match &self.framing {
            Framing::Close => false,
            Framing::Length(left) => *left == 0,
            Framing::Chunked(decoder) => decoder.is_done(),
        }
    }

    /// The [`ApiError`] of an error answer; its body is read briefly and partially at most.
    async fn api_error(mut self, status: u16) -> ApiError {
        let mut body = Vec::new();
        let _ = timeout(ERROR_BODY_TIMEOUT, async {
            while let Ok(chunk) = self.next_chunk().await {
                let room = ERROR_BODY_LIMIT.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() == ERROR_BODY_LIMIT {
                    break;
                }
            }
        })
        .await;
        parse_api_error(status, &body)
    }
}

/// The request: `GET path?query` with the `Host` of `url`, `Accept: accept` and `headers`.
fn request(url: &Url, accept: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let host = &url[Position::BeforeHost..Position::AfterPort];
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\n");
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// What the follower needs of an answer's head.
#[derive(Debug)]
struct Head {
    /// The head's length in bytes.
    len: usize,
    status: u16,
    /// Empty if none was given.
    content_type: String,
    framing: Framing,
}

/// Reads until `buf` holds a whole head, and takes it off `buf` (which keeps what followed it:
/// the start of the body). The caller bounds it in time.
async fn read_head(tcp: &mut TcpStream, buf: &mut BytesMut) -> Result<Head, ClientError> {
    loop {
        buf.reserve(READ_BUF);
        if tcp.read_buf(buf).await.map_err(io_error)? == 0 {
            return Err(ClientError::ConnectionLost);
        }
        if let Some(head) = Head::parse(buf)? {
            buf.advance(head.len);
            return Ok(head);
        }
        if buf.len() >= MAX_HEAD {
            return Err(ClientError::Protocol(format!(
                "a response head over {MAX_HEAD} bytes"
            )));
        }
    }
}

impl Head {
    /// The head at the start of `bytes`; `None` if it is not all there yet.
    fn parse(bytes: &[u8]) -> Result<Option<Self>, ClientError> {
        let bad = |what: String| ClientError::Protocol(format!("response head: {what}"));
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut fields);
        let len = match response.parse(bytes) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        let mut content_type = String::new();
        let (mut chunked, mut length) = (false, None);
        for field in response.headers.iter() {
            let name = field.name;
            let value = String::from_utf8_lossy(field.value);
            if name.eq_ignore_ascii_case("content-type") {
                content_type = value.into_owned();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // We ask for no coding, so "chunked", once, is the only one expected.
                for coding in value.split(',').map(str::trim) {
                    if chunked || !coding.eq_ignore_ascii_case("chunked") {
                        return Err(bad(format!("unsupported transfer-encoding {value:?}")));
                    }
                    chunked = true;
                }
            } else if name.eq_ignore_ascii_case("content-length") {
                let n = value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| bad(format!("content-length {value:?}")))?;
                if length.is_some_and(|l| l != n) {
                    return Err(bad("two different content-lengths".into()));
                }
                length = Some(n);
            }
        }
        // Chunked wins over a length (RFC 9112 §6.3).
        let framing = match (chunked, length) {
            (true, _) => Framing::Chunked(chunked::Decoder::new()),
            (false, Some(n)) => Framing::Length(n),
            (false, None) => Framing::Close,
        };
        Ok(Some(Self {
            len,
            status: response.code.unwrap_or_default(),
            content_type,
            framing,
        }))
    }
}

/// A socket error before the body: a reset or an early close is the connection lost, as it is
/// in the body; anything else is reported as it is.
fn io_error(e: std::io::Error) -> ClientError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof => ClientError::ConnectionLost,
        _ => ClientError::Io(e),
    }
}

#[cfg(test)]
mod tests;
