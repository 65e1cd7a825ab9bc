//! The accept loop: every TCP connection passes the [`Gate`] (total and per-IP limits), gets
//! its socket options, and is served by hyper's HTTP/1.1 connection with a header-read timeout
//! (slowloris) and upgrades (WebSocket). The peer address goes into each request as
//! [`ConnectInfo`], for the per-IP rate limits.
//!
//! A refused connection gets a short `503` with a JSON error and is closed; it never reaches
//! the router. On shutdown the loop stops accepting and asks every connection to finish its
//! current request; the [`TaskTracker`](tokio_util::task::TaskTracker) in [`App`] counts them.

use crate::App;
use crate::api::AppError;
use crate::limits::{Gate, Refusal};
use crate::metrics::Rejection;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// Serves `router` on `listener` until the app's shutdown token is cancelled.
pub async fn serve(listener: TcpListener, router: Router, app: App, gate: Arc<Gate>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(app.cfg.header_read_timeout_secs))
        .keep_alive(true);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = app.shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors or memory: wait for connections to go away
                    // rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let ticket = match gate.admit(peer.ip()) {
            Ok(t) => t,
            Err(why) => {
                app.metrics.reject(match why {
                    Refusal::Total => Rejection::TooManyConnections,
                    Refusal::PerIp => Rejection::TooManyFromIp,
                });
                tokio::spawn(refuse(tcp, why));
                continue;
            }
        };
        tune(&tcp, app.cfg.tcp_send_buffer);
        let (router, http, app) = (router.clone(), http.clone(), app.clone());
        app.tracker.clone().spawn(async move {
            // SSE and streaming clients are served on the socket itself (see `direct`).
            let conn = Counted::new(tcp, ticket);
            let Some(conn) = crate::direct::direct(conn, &app).await else {
                return;
            };
            let (conn, traffic) = conn.watched();
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req)
            });
            let conn = http.serve_connection(TokioIo::new(conn), service);
            let conn = conn.with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        // hyper's header timeout also closes a keep-alive connection that
                        // stays quiet after its answer: closed, but not a slow request.
                        if e.is_timeout() && !traffic.quiet_since_answer() {
                            app.metrics.reject(Rejection::SlowRequest);
                        }
                        tracing::trace!(%peer, error = %e, "connection ended");
                    }
                }
                _ = app.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// Game traffic is small messages that must not wait for Nagle's algorithm; the send buffer
/// bounds what a client that stops reading can cost.
fn tune(tcp: &TcpStream, send_buffer: usize) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY");
    }
    if send_buffer > 0
        && let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(send_buffer)
    {
        tracing::debug!(error = %e, "SO_SNDBUF");
    }
}

/// Answers a refused connection with a `503` and closes it, without reading its request.
async fn refuse(mut tcp: TcpStream, why: Refusal) {
    let e = match why {
        Refusal::Total => AppError::too_many_connections(),
        Refusal::PerIp => AppError::too_many_from_ip(),
    };
    answer_raw(&mut tcp, e, "retry-after: 5\r\n").await;
}

/// Writes `e` as a whole HTTP/1.1 response (with `extra` header lines) on a connection hyper is
/// not serving, and closes it: shuts down the write side, then reads (and drops) what the
/// client still sends until it closes, at most a second — closing a socket with unread data
/// resets it, and the client might lose the answer.
pub async fn answer_raw(tcp: &mut TcpStream, e: AppError, extra: &str) {
    let response = e.into_response();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         {extra}connection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    // One write, so head and body leave together: a client that reads a refused WebSocket
    // upgrade's answer once (tungstenite does) would otherwise miss the body that says why.
    let mut whole = head.into_bytes();
    whole.extend_from_slice(&body);
    let answer = async {
        tcp.write_all(&whole).await?;
        tcp.shutdown().await?;
        let mut sink = [0u8; 1024];
        while tcp.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
}

/// The listening socket on `addr` with room for `backlog` connections waiting to be accepted
/// (the kernel caps it at `net.core.somaxconn`). `TcpListener::bind` asks for 128, which a
/// burst of connections to a busy server overflows.
pub fn bind(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server can bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// A connection that holds its place in the [`Gate`] for as long as the socket lives, through
/// an upgrade to WebSocket too.
pub struct Counted {
    /// The socket.
    pub tcp: TcpStream,
    _ticket: crate::limits::Ticket,
    /// What hyper read and wrote through it, when the accept loop watches.
    traffic: Option<Arc<Traffic>>,
}

impl Counted {
    /// `tcp`, holding its place through `ticket`.
    pub(crate) fn new(tcp: TcpStream, ticket: crate::limits::Ticket) -> Self {
        Self {
            tcp,
            _ticket: ticket,
            traffic: None,
        }
    }

    /// The connection, now counting what is read and written through it.
    fn watched(mut self) -> (Self, Arc<Traffic>) {
        let traffic = Arc::new(Traffic {
            read: AtomicU64::new(0),
            read_when_answered: AtomicU64::new(NEVER),
        });
        self.traffic = Some(traffic.clone());
        (self, traffic)
    }

    fn wrote(&self, n: usize) {
        if let Some(t) = &self.traffic
            && n > 0
        {
            t.read_when_answered.store(t.read.load(Relaxed), Relaxed);
        }
    }
}

/// What a served connection has read and written: enough to tell a client that stopped in the
/// middle of a request from one that went quiet between requests.
#[derive(Debug)]
struct Traffic {
    /// Bytes read.
    read: AtomicU64,
    /// `read` when the server last wrote; [`NEVER`] before it has.
    read_when_answered: AtomicU64,
}

/// [`Traffic::read_when_answered`] of a connection the server has not written to.
const NEVER: u64 = u64::MAX;

impl Traffic {
    /// Whether the server has answered and the client has sent nothing since.
    fn quiet_since_answer(&self) -> bool {
        self.read.load(Relaxed) == self.read_when_answered.load(Relaxed)
    }
}

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted").field("tcp", &self.tcp).finish()
    }
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf);
        if let Some(t) = &self.traffic {
            t.read
                .fetch_add((buf.filled().len() - before) as u64, Relaxed);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = polled {
            self.wrote(n);
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if let std::task::Poll::Ready(Ok(n)) = polled {
            self.wrote(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of connections to a server that is not accepting yet (busy) all complete their
    /// handshakes: the backlog holds them. With `TcpListener::bind`'s 128, the rest would have
    /// their handshakes dropped and retried for seconds.
    #[tokio::test]
    async fn the_backlog_holds_a_burst_of_connections() {
        let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(128);
        let burst = somaxconn.min(1024) - 8;
        if burst < 300 {
            eprintln!("net.core.somaxconn is {somaxconn}: too small to tell 128 apart, skipped");
            return;
        }
        let listener = bind(
            "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
            1024,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let mut waiting = Vec::new();
        for _ in 0..burst {
            let connect = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr));
            waiting.push(
                connect
                    .await
                    .unwrap_or_else(|_| panic!("connection {} was not taken", waiting.len() + 1))
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        assert_eq!(waiting.len(), burst);
        drop(listener);
    }
}
