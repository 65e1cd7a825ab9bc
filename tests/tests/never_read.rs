//! 1,000 WebSocket connections that upgrade, say `Hello` and never read a byte.
//!
//! The server must neither queue frames for them (fan-out is conflating: a blocked connection
//! holds one pending frame and the snapshot it last sent) nor keep them forever (a write that
//! does not complete within `write_timeout_secs` ends the session), while an honest player in
//! the same room plays on. The clients speak raw bytes — one write of the upgrade request and
//! a masked `Hello` frame, then nothing — so the process's resident memory, which the server
//! reports in `/metrics`, is the server's. They come from 127.0.0.2…127.0.0.255, about four per
//! address, well inside `max_connections_per_ip`.
//!
//! The bound on resident memory growth is 48 MiB for the 1,000, i.e. 48 KiB a connection;
//! measured, they cost about 7.5 KiB each (11 before sessions owned their socket; debug
//! build). What one should cost: tungstenite's 512-byte read buffer, the rest of one frame
//! (a few hundred bytes) pending on the session's link (`server/src/ws_link.rs`), the task,
//! and a share of the snapshots that blocked connections hold in common; the
//! kernel's send buffer (`tcp_send_buffer`) is kernel memory, not resident. tungstenite's
//! default 128 KiB read buffer would blow through the bound, and a per-client queue of frames
//! (30 a second per client) fails the second check: no growth while they are all blocked.
//!
//! This file holds a single test so that no other test's allocations share the measurement.

use game_core::codec;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tickwire_tests::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

const CLIENTS: usize = 1000;
const MIB: f64 = 1024.0 * 1024.0;
const RSS_BOUND_MIB: f64 = 48.0;

/// The upgrade request and a masked binary frame holding `Hello`, as one write.
fn opening(server: SocketAddr) -> Vec<u8> {
    let mut out = format!(
        "GET /api/rooms/default/ws?spectate=1 HTTP/1.1\r\nhost: {server}\r\n\
         upgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    )
    .into_bytes();
    let hello = codec::encode_client(&hello());
    let mask = [0x24, 0x68, 0xac, 0xe0];
    out.push(0x82);
    out.push(0x80 | u8::try_from(hello.len()).unwrap_or_else(|e| panic!("{e}")));
    out.extend_from_slice(&mask);
    out.extend(hello.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// A client that opens its session and never reads: the kernel's smallest receive buffer, so
/// the server's writes to it block soon.
async fn never_reader(from: IpAddr, server: SocketAddr, opening: &[u8]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("socket: {e}"));
    socket
        .set_recv_buffer_size(1)
        .unwrap_or_else(|e| panic!("SO_RCVBUF: {e}"));
    socket
        .bind(SocketAddr::new(from, 0))
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    let mut tcp = socket
        .connect(server)
        .await
        .unwrap_or_else(|e| panic!("connect from {from}: {e}"));
    tcp.write_all(opening)
        .await
        .unwrap_or_else(|e| panic!("opening from {from}: {e}"));
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_that_never_read_cost_bounded_memory_and_are_shed() {
    let server = TestServer::start(Config {
        // Long enough to see all of them blocked at once on a loaded machine, short enough
        // for a test.
        write_timeout_secs: 12,
        // Frames here are 100–200 bytes at 30 Hz: with the default 64 KiB (which Linux
        // doubles) a client would take half a minute to block. This asks for the kernel's
        // minimum. The kernel buffer is not resident memory, so a smaller one changes when
        // they block, not what they cost.
        tcp_send_buffer: 1,
        ..test_config()
    })
    .await;
    let honest = Honest::start(&server, "default", 31).await;
    let spectators = "tickwire_connections{transport=\"ws\",role=\"spectator\"}";
    let frames_out = "tickwire_frames_out_total{transport=\"ws\"}";
    let timeouts = server.rejections("write_timeout").await;
    let rss_before = server.metric("process_resident_memory_bytes").await;
    let started = Instant::now();

    let opening = opening(server.addr);
    let connects = (0..CLIENTS).map(|n| {
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (n % 254) as u8));
        never_reader(from, server.addr, &opening)
    });
    let clients = futures_util::future::join_all(connects).await;

    // Sample memory while they connect, fill their buffers, block, and time out.
    let mut peak = rss_before;
    let mut sample = async || {
        let rss = server.metric("process_resident_memory_bytes").await;
        peak = peak.max(rss);
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metric(spectators).await < CLIENTS as f64 {
        assert!(
            Instant::now() < deadline,
            "only {} of {CLIENTS} sessions opened",
            server.metric(spectators).await
        );
        sample().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_open = started.elapsed();
    // Blocked: the server sends ws frames at about the honest player's rate only.
    let deadline = Instant::now() + Duration::from_secs(20);
    let blocked = loop {
        let before = server.metric(frames_out).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        sample().await;
        let sent = server.metric(frames_out).await - before;
        let open = server.metric(spectators).await;
        if sent < 100.0 && open == CLIENTS as f64 {
            break started.elapsed();
        }
        assert!(
            open == CLIENTS as f64 && Instant::now() < deadline,
            "{open} of {CLIENTS} open, still sending {sent} frames in 500 ms"
        );
    };
    // Held while blocked: nothing accumulates per client.
    let rss_blocked = server.metric("process_resident_memory_bytes").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sample().await;
    let rss_held = server.metric("process_resident_memory_bytes").await;
    assert_eq!(
        server.metric(spectators).await,
        CLIENTS as f64,
        "all still held (none timed out yet), so that the check below means something"
    );

    // Then shed: every one of them times out.
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.metric(spectators).await > 0.0 {
        assert!(
            Instant::now() < deadline,
            "{} never-readers outlived the write timeout",
            server.metric(spectators).await
        );
        sample().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let shed = started.elapsed();
    assert_eq!(
        server.rejections("write_timeout").await - timeouts,
        CLIENTS as f64
    );

    let grew = (peak - rss_before) / MIB;
    let frame = server
        .metric("tickwire_bytes_out_total{transport=\"ws\"}")
        .await
        / server.metric(frames_out).await;
    println!(
        "{CLIENTS} never-readers: all open after {all_open:.1?}, all blocked after \
         {blocked:.1?}, all shed after {shed:.1?}; ws frames {frame:.0} bytes on average; \
         resident memory {:.1} MiB before, peak +{grew:.1} MiB ({:.1} KiB per connection), \
         {:+.1} MiB over 2 s while blocked",
        rss_before / MIB,
        grew * 1024.0 / CLIENTS as f64,
        (rss_held - rss_blocked) / MIB,
    );
    assert!(
        grew < RSS_BOUND_MIB,
        "resident memory grew {grew:.1} MiB for {CLIENTS} never-readers (bound {RSS_BOUND_MIB} MiB)"
    );
    // A queue of 128-byte frames at 30 Hz for 1,000 clients would add 7.5 MiB in 2 s.
    assert!(
        (rss_held - rss_blocked) / MIB < 3.0,
        "memory kept growing while the clients were blocked: {:.1} MiB in 2 s",
        (rss_held - rss_blocked) / MIB
    );

    server.assert_unharmed(honest).await;
    drop(clients);
    server.stop().await;
}
