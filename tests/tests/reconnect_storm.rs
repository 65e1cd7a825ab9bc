//! A burst of 2,000 reconnects: 200 players in five rooms drop and resume with their session
//! tokens, all at once, ten waves in a row — in even waves after closing their connection, in
//! odd waves while the old connection is still open (a phone switching networks), which the
//! server must close with 4006 "replaced".
//!
//! Every resume must succeed, with the player's own ship, a first frame that verifies (a delta
//! from the client's last tick while the room still has it, else a keyframe), and inputs that
//! carry on from their sequence number and are all acknowledged. An honest player in a sixth
//! room plays through the storm; afterwards no ship is left behind, nothing was refused, and
//! resident memory has grown by less than 64 MiB. Each player connects from its own address
//! (127.0.0.2 and up), so the default per-address limits apply unchanged: eleven upgrades per
//! player is well inside `joins_per_min` (120).

use bots::{ClientError, ConnectOptions, Connection, Event, Resume, Role};
use game_core::protocol::{Input, close};
use game_core::replica::{Replica, ReplicaError};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use tickwire_tests::*;
use tokio::sync::Barrier;
use tokio::time::Instant;

const ROOMS: usize = 5;
const PLAYERS: usize = 200;
const WAVES: usize = 10;
const WAIT: Duration = Duration::from_secs(10);
const MIB: f64 = 1024.0 * 1024.0;

/// What one player saw over the storm.
#[derive(Debug, Default)]
struct Outcome {
    /// Attempts refused in a way the client library says to retry (a server handshake
    /// timeout on a loaded machine, a connection that timed out), as `code or error`.
    retried: Vec<String>,
    resumes: usize,
    keyframes_on_resume: usize,
    replaced_closes: usize,
    desyncs: u64,
    acks_monotonic: bool,
    last_seq: u32,
    highest_ack: u32,
}

/// A frame sink that takes anything: for a connection whose frames no longer matter.
struct Ignore;

impl bots::FrameSink for Ignore {
    fn accept(&mut self, _: &game_core::protocol::Frame) -> Result<(), ReplicaError> {
        Ok(())
    }

    fn tick(&self) -> Option<u32> {
        None
    }

    fn reset(&mut self) {}
}

/// Reads until a verified frame acknowledges `seq` (0: any frame); returns the first frame's
/// baseline (`None`: a keyframe).
async fn frame_acking(
    conn: &mut Connection,
    replica: &mut Replica,
    stats: &mut bots::Stats,
    seq: u32,
) -> Option<u32> {
    let deadline = Instant::now() + WAIT;
    let mut first_base = None;
    loop {
        let event = tokio::time::timeout_at(deadline, conn.reader.next_event(replica, stats))
            .await
            .unwrap_or_else(|_| panic!("no frame acking {seq} within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("waiting for ack {seq}: {e}"));
        if let Event::Frame(f) = event {
            first_base.get_or_insert(f.base);
            if f.ack >= seq {
                return first_base.flatten();
            }
        }
    }
}

/// Connects (or resumes), retrying what the client library documents as worth retrying
/// ([`bots::Recovery::Resume`]) a few times after a short pause, as any client would; every
/// other refusal is final.
async fn connect_retrying(
    opts: &ConnectOptions,
    resume: Resume,
    out: &mut Outcome,
) -> Result<Connection, ClientError> {
    let mut attempt = 0;
    loop {
        match bots::connect(opts, resume).await {
            Ok(conn) => return Ok(conn),
            Err(e) if e.recovery() == bots::Recovery::Resume && attempt < 4 => {
                out.retried.push(match e.close_code() {
                    Some(code) => code.to_string(),
                    None => e.to_string(),
                });
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn play(
    server: std::net::SocketAddr,
    i: usize,
    barrier: Arc<Barrier>,
) -> Result<Outcome, String> {
    let room = format!("s{}", i % ROOMS);
    let mut opts = ConnectOptions::new(&format!("http://{server}"), &room, Role::Player)
        .map_err(|e| e.to_string())?;
    opts.local_address = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8)));
    opts.name = format!("storm{i}");
    let mut replica = Replica::new();
    let mut stats = bots::Stats::new();
    let mut out = Outcome::default();

    let mut conn = connect_retrying(&opts, Resume::default(), &mut out)
        .await
        .map_err(|e| format!("join: {e}"))?;
    let ship = conn.welcome.entity;
    let token = conn.welcome.token;
    frame_acking(&mut conn, &mut replica, &mut stats, 0).await;
    let seq = conn
        .writer
        .send_input(Input::default())
        .await
        .map_err(|e| e.to_string())?;
    frame_acking(&mut conn, &mut replica, &mut stats, seq).await;

    for wave in 0..WAVES {
        barrier.wait().await;
        let next_seq = conn.writer.last_seq() + 1;
        let old = if wave % 2 == 0 {
            conn.writer.close().await.map_err(|e| e.to_string())?;
            None
        } else {
            Some((conn.writer, conn.reader))
        };
        let resume = Resume {
            token,
            last_tick: replica.tick(),
            next_seq,
        };
        conn = connect_retrying(&opts, resume, &mut out)
            .await
            .map_err(|e| format!("wave {wave}: resume refused: {e}"))?;
        if conn.welcome.entity != ship {
            return Err(format!(
                "wave {wave}: resumed ship {} instead of {ship}",
                conn.welcome.entity
            ));
        }
        out.resumes += 1;
        if frame_acking(&mut conn, &mut replica, &mut stats, 0)
            .await
            .is_none()
        {
            out.keyframes_on_resume += 1;
        }
        let thrust = Input {
            thrust: 64,
            turn: 0,
            buttons: 0,
        };
        let seq = conn
            .writer
            .send_input(thrust)
            .await
            .map_err(|e| e.to_string())?;
        frame_acking(&mut conn, &mut replica, &mut stats, seq).await;
        if let Some((_writer, mut reader)) = old {
            // The replaced connection's last frames go nowhere; its close is what counts.
            let (mut ignore, mut scratch) = (Ignore, bots::Stats::new());
            let deadline = Instant::now() + WAIT;
            loop {
                let event =
                    tokio::time::timeout_at(deadline, reader.next_event(&mut ignore, &mut scratch));
                match event.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(ClientError::Closed(info))) if info.code == close::REPLACED => {
                        out.replaced_closes += 1;
                        break;
                    }
                    Ok(Err(e)) => return Err(format!("wave {wave}: old connection: {e}")),
                    Err(_) => return Err(format!("wave {wave}: old connection never closed")),
                }
            }
        }
    }
    out.last_seq = conn.writer.last_seq();
    conn.writer.leave().await.map_err(|e| e.to_string())?;
    // Read to the server's answer: a socket dropped with frames unread is reset, and the
    // server might never read the `Leave`, leaving the ship to wait out its grace.
    let deadline = Instant::now() + WAIT;
    loop {
        let event = conn.reader.next_event(&mut replica, &mut stats);
        match tokio::time::timeout_at(deadline, event).await {
            Ok(Ok(_)) => {}
            Ok(Err(ClientError::Closed(info))) if info.code == close::NORMAL => break,
            Ok(Err(e)) => return Err(format!("after Leave: {e}")),
            Err(_) => return Err("no close after Leave".to_owned()),
        }
    }
    out.desyncs = stats.desyncs;
    out.acks_monotonic = stats.acks_monotonic;
    out.highest_ack = stats.highest_ack;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_reconnects_all_resume_their_own_ship() {
    let server = TestServer::start(Config {
        // The production default: tests use 1 s to test the timeout itself, which a client
        // of 200 started at once on a loaded 2-core machine can miss.
        handshake_timeout_ms: Config::default().handshake_timeout_ms,
        ..test_config()
    })
    .await;
    let honest = Honest::start(&server, "default", 41).await;
    let http = reqwest::Client::new();
    for r in 0..ROOMS {
        let created = http
            .post(format!("{}/api/rooms", server.url()))
            .json(&serde_json::json!({ "id": format!("s{r}") }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create s{r}: {e}"));
        assert_eq!(created.status().as_u16(), 201);
    }
    let refusals = ["bad_token", "room_full", "rate_limited", "too_many_from_ip"];
    let mut refused_before = Vec::new();
    for r in refusals {
        refused_before.push(server.rejections(r).await);
    }
    let rss_before = server.metric("process_resident_memory_bytes").await;
    let started = Instant::now();

    let barrier = Arc::new(Barrier::new(PLAYERS));
    let mut players = tokio::task::JoinSet::new();
    for i in 0..PLAYERS {
        let barrier = barrier.clone();
        players.spawn(async move { (i, play(server.addr, i, barrier).await) });
    }
    // In the order they finish, so the first failure is reported (the others would wait at
    // the barrier for it forever).
    let mut outcomes = Vec::new();
    while let Some(done) = tokio::time::timeout(Duration::from_secs(60), players.join_next())
        .await
        .unwrap_or_else(|_| panic!("{} players did not finish", PLAYERS - outcomes.len()))
    {
        let (i, outcome) = done.unwrap_or_else(|e| panic!("player task: {e}"));
        outcomes.push(outcome.unwrap_or_else(|e| panic!("player {i}: {e}")));
    }
    let took = started.elapsed();
    let rss_after = server.metric("process_resident_memory_bytes").await;

    let resumes: usize = outcomes.iter().map(|o| o.resumes).sum();
    let keyframes: usize = outcomes.iter().map(|o| o.keyframes_on_resume).sum();
    let replaced: usize = outcomes.iter().map(|o| o.replaced_closes).sum();
    let retried: Vec<&String> = outcomes.iter().flat_map(|o| &o.retried).collect();
    assert_eq!(resumes, PLAYERS * WAVES, "every resume succeeded");
    assert_eq!(
        replaced,
        PLAYERS * WAVES / 2,
        "every replaced connection got 4006"
    );
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!(o.desyncs, 0, "player {i}: {o:?}");
        assert!(
            o.acks_monotonic,
            "player {i}: acks in order across resumes: {o:?}"
        );
        assert_eq!(
            o.highest_ack, o.last_seq,
            "player {i}: every input acknowledged: {o:?}"
        );
        assert_eq!(o.last_seq, 1 + WAVES as u32, "player {i}: {o:?}");
    }
    // Nothing a resuming player should ever get: a lost session, a full room, a limit.
    for (r, before) in refusals.iter().zip(refused_before) {
        assert_eq!(server.rejections(r).await - before, 0.0, "{r}");
    }
    // Everyone left: no ship is left waiting for a reconnect.
    let deadline = Instant::now() + WAIT;
    for r in 0..ROOMS {
        loop {
            let (_, room) = server.get_json(&format!("/api/rooms/s{r}")).await;
            if room["players"] == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "ships left behind: {room}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let grew = (rss_after - rss_before) / MIB;
    println!(
        "{resumes} resumes by {PLAYERS} players in {WAVES} waves took {took:.1?} \
         ({keyframes} resumed with a keyframe, the rest with a delta; {} attempts retried: \
         {retried:?}); resident memory {:.1} MiB before, {grew:+.1} MiB after",
        retried.len(),
        rss_before / MIB
    );
    assert!(
        grew < 64.0,
        "resident memory grew {grew:.1} MiB over the storm"
    );

    server.assert_unharmed(honest).await;
    server.stop().await;
}
