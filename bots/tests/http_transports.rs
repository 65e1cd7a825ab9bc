//! The HTTP transports (SSE, streaming, long polling, polling, and HTTP players' input posts)
//! against the real server, started in this process on an ephemeral loopback port.
//!
//! Each test makes the real server produce a situation the client must handle and checks what
//! the client made of it, with the server's own evidence (`/metrics`) where the client's word is
//! not enough. Nothing asserts speed: on a loaded machine the client may do less in a given
//! time, so counts are bounded by what pacing allows, never by how fast things went.
//!
//! The server runs on its own thread and runtime, so a test can stop it gracefully (clients get
//! a `Close`) or crash it (the runtime is dropped with every connection mid-stream).

use std::time::Duration;

use bots::{
    ClientError, CloseInfo, ConnectOptions, Event, Follower, FrameEvent, Resume, Role, Sender,
    Session, Stats, Transport, open,
};
use game_core::protocol::{Frame, Input, SessionToken};
use game_core::replica::Replica;
use game_core::snapshot::Snapshot;
use server::Config;
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};

/// The most any single wait in these tests may take before it counts as a failure.
const PATIENCE: Duration = Duration::from_secs(10);

/// How the server thread ends.
enum End {
    /// Shutdown as on SIGTERM: every client gets a `Close`.
    Graceful,
    /// The runtime is dropped: every connection ends where it is.
    Crash,
}

/// A real server on its own thread and runtime.
struct Server {
    /// `http://127.0.0.1:PORT`.
    base: String,
    end: Option<oneshot::Sender<End>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

/// The defaults with a short shutdown, so a stopping server does not hold a test up.
fn config() -> Config {
    Config {
        shutdown_deadline_secs: 3,
        ..Config::default()
    }
}

impl Server {
    fn start(cfg: Config) -> Self {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("nonblocking: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr: {e}"));
        let (end, ended) = oneshot::channel();
        let thread = std::thread::spawn(move || serve(listener, cfg, ended));
        Self {
            base: format!("http://{addr}"),
            end: Some(end),
            thread: Some(thread),
        }
    }

    /// Options for the room `default`.
    fn opts(&self, role: Role) -> ConnectOptions {
        ConnectOptions::new(&self.base, "default", role).unwrap_or_else(|e| panic!("opts: {e}"))
    }

    /// The value of the Prometheus sample `name` (labels exactly as printed).
    async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics body: {e}"));
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
    }

    /// Shuts the server down as on SIGTERM and waits until `run` has returned.
    async fn stop(mut self) {
        self.finish(End::Graceful).await;
    }

    /// Drops the server's runtime: connections end mid-stream, with no `Close`.
    async fn crash(mut self) {
        self.finish(End::Crash).await;
    }

    async fn finish(&mut self, how: End) {
        if let Some(end) = self.end.take() {
            let _ = end.send(how);
        }
        let Some(thread) = self.thread.take() else {
            return;
        };
        let joined = timeout(PATIENCE, tokio::task::spawn_blocking(move || thread.join())).await;
        match joined {
            Ok(Ok(Ok(Ok(())))) => {}
            other => panic!("the server did not end cleanly: {other:?}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(end) = self.end.take() {
            let _ = end.send(End::Crash);
        }
    }
}

/// The server thread: `server::run` until told how to end.
fn serve(
    listener: std::net::TcpListener,
    cfg: Config,
    ended: oneshot::Receiver<End>,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let (stop, stopped) = oneshot::channel::<()>();
        let mut run = tokio::spawn(server::run(listener, cfg, async move {
            let _ = stopped.await;
        }));
        let how = tokio::select! {
            finished = &mut run => return Err(format!("the server ended by itself: {finished:?}")),
            how = ended => how.unwrap_or(End::Crash),
        };
        match how {
            End::Graceful => {
                let _ = stop.send(());
                run.await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())
            }
            // Every task, connections included, is dropped with the runtime below.
            End::Crash => Ok(()),
        }
    });
    drop(rt);
    result
}

/// Opens a session or panics.
async fn session(opts: &ConnectOptions, t: Transport, resume: Resume) -> Session {
    open(opts, t, resume)
        .await
        .unwrap_or_else(|e| panic!("open {t}: {e}"))
}

/// The next frame, within [`PATIENCE`].
async fn next_frame(
    follower: &mut Follower,
    replica: &mut Replica,
    stats: &mut Stats,
) -> FrameEvent {
    let next = timeout(PATIENCE, follower.next_event(replica, stats))
        .await
        .unwrap_or_else(|_| panic!("no frame within {PATIENCE:?}"));
    match next {
        Ok(Event::Frame(f)) => f,
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// The error that ends `follower`, reading past any frames, within [`PATIENCE`].
async fn end_of(follower: &mut Follower, replica: &mut Replica, stats: &mut Stats) -> ClientError {
    timeout(PATIENCE, async {
        loop {
            if let Err(e) = follower.next_event(replica, stats).await {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the follower did not end within {PATIENCE:?}"))
}

/// A replica that holds tick `tick` (an empty room's keyframe): its next poll asks `since`
/// that tick.
fn replica_at(tick: u32) -> Replica {
    let snap = Snapshot {
        tick,
        entities: Vec::new(),
    };
    let mut replica = Replica::new();
    replica
        .apply(&Frame {
            tick,
            base: None,
            checksum: snap.checksum(),
            ack: 0,
            delta: game_core::delta::keyframe(&snap),
        })
        .unwrap_or_else(|e| panic!("keyframe: {e}"));
    replica
}

/// A `select!` loop drops `next_event` every 20 ms while the server holds a long poll for a
/// whole send period: the request survives, and the server sees one request, not one per call.
#[tokio::test]
async fn a_held_long_poll_survives_cancelled_calls() {
    let server = Server::start(Config {
        send_rate: 1,
        ..config()
    });
    let opts = server.opts(Role::Spectator);
    let Session { mut follower, .. } = session(&opts, Transport::LongPoll, Resume::default()).await;
    let (mut replica, mut stats) = (Replica::new(), Stats::new());
    // No `since`: a keyframe at once. Then the next send, wherever in its period that falls;
    // the request after that is held for a whole period (1 s).
    let key = next_frame(&mut follower, &mut replica, &mut stats).await;
    let second = next_frame(&mut follower, &mut replica, &mut stats).await;
    assert_eq!((key.base, second.base), (None, Some(key.tick)));

    let (mut cancelled, mut held) = (0, None);
    let started = Instant::now();
    let third = loop {
        let call = follower.next_event(&mut replica, &mut stats);
        match timeout(Duration::from_millis(20), call).await {
            Ok(event) => break event,
            Err(_) => {
                cancelled += 1;
                if cancelled == 3 {
                    let held_now = r#"tickwire_connections{transport="longpoll",role="spectator"}"#;
                    held = Some(server.metric(held_now).await);
                }
                assert!(started.elapsed() < PATIENCE, "no frame in {PATIENCE:?}");
            }
        }
    };
    assert!(
        matches!(third, Ok(Event::Frame(f)) if f.base == Some(second.tick)),
        "{third:?}"
    );
    assert!(
        cancelled >= 3,
        "the poll was held: {cancelled} cancelled calls"
    );
    assert_eq!(
        held,
        Some(1.0),
        "one request held, however often the call was dropped"
    );
    assert_eq!((stats.polls, stats.empty_polls, stats.frames), (3, 0, 3));
    // Every frame the server answered with reached the client: no answer was dropped.
    let sent = server
        .metric(r#"tickwire_frames_out_total{transport="longpoll"}"#)
        .await;
    assert_eq!(sent, 3.0);
    server.stop().await;
}

/// A poller asks once per interval, and so does a long poller whose server answers `204` at
/// once (long polling switched off: `long_poll_max_wait_secs = 0`) — neither spins.
#[tokio::test]
async fn polls_are_paced_and_empty_answers_do_not_spin() {
    const INTERVAL: Duration = Duration::from_millis(100);
    let server = Server::start(Config {
        send_rate: 1,
        long_poll_max_wait_secs: 0,
        ..config()
    });
    let follow = |t: Transport| {
        let mut opts = server.opts(Role::Spectator);
        opts.poll_interval = Some(INTERVAL);
        async move {
            let Session { mut follower, .. } = session(&opts, t, Resume::default()).await;
            let (mut replica, mut stats) = (Replica::new(), Stats::new());
            let started = Instant::now();
            // A keyframe, then two sends: a whole 1 s period between the last two.
            let mut last = next_frame(&mut follower, &mut replica, &mut stats).await;
            for _ in 0..2 {
                let frame = next_frame(&mut follower, &mut replica, &mut stats).await;
                assert_eq!(
                    frame.base,
                    Some(last.tick),
                    "{t}: polls go on from the cursor"
                );
                last = frame;
            }
            let elapsed = started.elapsed();
            assert_eq!(stats.frames, 3);
            assert_eq!(stats.empty_polls, stats.polls - 3, "{t}: {stats:?}");
            assert!(
                stats.empty_polls >= 1,
                "{t}: a 1 Hz room polled every 100 ms has nothing new at times"
            );
            // Requests start at least an interval apart, except one right after a long
            // poll's frame: a slow machine polls less, never more.
            let most = elapsed.as_millis() / INTERVAL.as_millis() + 3;
            assert!(
                u128::from(stats.polls) <= most,
                "{t}: {} polls in {elapsed:?}",
                stats.polls
            );
        }
    };
    tokio::join!(follow(Transport::Poll), follow(Transport::LongPoll));
    server.stop().await;
}

/// Refusals keep their status and code: a poll from a tick the room has not reached, again on
/// the next call; a room that does not exist.
#[tokio::test]
async fn error_answers_keep_their_status_and_code() {
    let server = Server::start(config());
    let opts = server.opts(Role::Spectator);
    let Session { mut follower, .. } = session(&opts, Transport::Poll, Resume::default()).await;
    let (mut replica, mut stats) = (replica_at(1_000_000), Stats::new());
    for _ in 0..2 {
        let err = follower.next_event(&mut replica, &mut stats).await;
        assert!(
            matches!(&err, Err(e) if e.http_status() == Some(400) && e.api_code() == Some("cursor_in_future")),
            "{err:?}"
        );
    }
    assert_eq!(stats.polls, 2, "each call polls again");

    let gone = ConnectOptions::new(&server.base, "nope", Role::Spectator)
        .unwrap_or_else(|e| panic!("opts: {e}"));
    for t in [Transport::LongPoll, Transport::Sse, Transport::Stream] {
        let missing = open(&gone, t, Resume::default()).await;
        assert!(
            matches!(&missing, Err(e) if e.http_status() == Some(404) && e.api_code() == Some("room_not_found")),
            "{t}: {missing:?}"
        );
    }
    server.stop().await;
}

/// 70 inputs queued faster than the send rate are numbered 1…70 and posted in order, at most
/// 32 a post (more is `400`, which would fail the poster); the server applies every one, none
/// stale, and the frames' acks climb to the last.
#[tokio::test]
async fn http_inputs_are_posted_in_order_and_acked() {
    let server = Server::start(Config {
        // Room for all 70 even if the room's tick task falls behind the posts.
        input_queue: 256,
        ..config()
    });
    let mut opts = server.opts(Role::Player);
    opts.name = "ana".into();
    let Session {
        welcome,
        mut follower,
        sender,
        ..
    } = session(&opts, Transport::Poll, Resume::default()).await;
    assert!(
        welcome.token.is_some() && welcome.entity != 0,
        "{welcome:?}"
    );
    let Sender::Http(mut inputs) = sender else {
        panic!("an HTTP player posts its inputs");
    };
    for seq in 1..=70 {
        let input = Input {
            thrust: 127,
            ..Input::default()
        };
        let sent = inputs.send_input(input).await;
        assert!(matches!(sent, Ok(n) if n == seq), "{sent:?}");
    }
    assert_eq!(inputs.last_seq(), 70);
    // Posts what is queued; a refused post would be its error.
    inputs
        .close()
        .await
        .unwrap_or_else(|e| panic!("posting 70 inputs: {e}"));

    let (mut replica, mut stats) = (Replica::new(), Stats::new());
    while stats.highest_ack < 70 {
        next_frame(&mut follower, &mut replica, &mut stats).await;
    }
    assert!(stats.acks_monotonic);
    assert_eq!(stats.highest_ack, 70);
    assert_eq!(server.metric("tickwire_inputs_total").await, 70.0);
    for reason in ["input_stale", "input_queue_full", "malformed"] {
        let name = format!(r#"tickwire_rejections_total{{reason="{reason}"}}"#);
        assert_eq!(server.metric(&name).await, 0.0, "{reason}");
    }
    server.stop().await;
}

/// The session ends behind the poster's back (`POST …/leave`): the next post is refused with
/// `401 bad_token`, which the next `send_input` reports, and the ones after it say the
/// poster stopped.
#[tokio::test]
async fn a_refused_post_surfaces_at_the_next_input() {
    let server = Server::start(config());
    let opts = server.opts(Role::Player);
    let Session {
        welcome,
        mut sender,
        ..
    } = session(&opts, Transport::LongPoll, Resume::default()).await;
    let token = welcome
        .token
        .unwrap_or_else(|| panic!("a player has a token"));
    sender
        .send_input(Input::default())
        .await
        .unwrap_or_else(|e| panic!("first input: {e}"));
    let left = reqwest::Client::new()
        .post(format!(
            "{}/api/rooms/default/leave?token={token}",
            server.base
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("leave: {e}"));
    assert_eq!(left.status().as_u16(), 204);

    let started = Instant::now();
    let err = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Err(e) = sender.send_input(Input::default()).await {
            break e;
        }
        assert!(started.elapsed() < PATIENCE, "no post refused");
    };
    assert_eq!(
        (err.http_status(), err.api_code()),
        (Some(401), Some("bad_token")),
        "{err:?}"
    );
    let after = sender.send_input(Input::default()).await;
    assert!(
        matches!(after, Err(ClientError::WriterStopped)),
        "{after:?}"
    );
    server.stop().await;
}

/// SSE: the welcome event and `retry:`, verified frames (with keep-alive comments between
/// them when the server's 1 s timer beats the 1 Hz sends), a resume by `Last-Event-ID` whose
/// first frame is a delta from it, and the `close` event of a shutdown.
#[tokio::test]
async fn sse_follows_resumes_from_last_event_id_and_closes() {
    let server = Server::start(Config {
        send_rate: 1,
        sse_keepalive_secs: 1,
        ..config()
    });
    let opts = server.opts(Role::Spectator);
    let Session {
        welcome,
        mut follower,
        ..
    } = session(&opts, Transport::Sse, Resume::default()).await;
    assert_eq!(
        (welcome.room.as_str(), welcome.send_rate, welcome.token),
        ("default", 1, None)
    );
    let Follower::Sse(sse) = &follower else {
        panic!("an SSE session has an SSE follower");
    };
    assert_eq!(sse.retry(), Some(Duration::from_millis(2000)));
    let (mut replica, mut stats) = (Replica::new(), Stats::new());
    let key = next_frame(&mut follower, &mut replica, &mut stats).await;
    let next = next_frame(&mut follower, &mut replica, &mut stats).await;
    assert_eq!((key.base, next.base), (None, Some(key.tick)));
    drop(follower);

    // A new connection from the replica's tick: `Last-Event-ID`, as a browser would send.
    let resume = Resume {
        last_tick: replica.tick(),
        ..Resume::default()
    };
    let Session { mut follower, .. } = session(&opts, Transport::Sse, resume).await;
    let first = next_frame(&mut follower, &mut replica, &mut stats).await;
    assert_eq!(
        first.base,
        Some(next.tick),
        "the first frame is a delta from the resume tick"
    );
    assert_eq!((stats.frames, stats.keyframes, stats.desyncs), (3, 1, 0));

    let (_, end) = tokio::join!(
        server.stop(),
        end_of(&mut follower, &mut replica, &mut stats)
    );
    assert!(
        matches!(&end, ClientError::Closed(CloseInfo { code: 1001, .. })),
        "{end:?}"
    );
    let again = follower.next_event(&mut replica, &mut stats).await;
    assert!(
        matches!(
            again,
            Err(ClientError::Closed(CloseInfo { code: 1001, .. }))
        ),
        "{again:?}"
    );
    assert_eq!(stats.desyncs, 0);
}

/// HTTP streaming as a player: the join's entity and token, frames acking its inputs; a resume
/// with `?since=&token=` (same ship, a delta from the tick held, acks going on); refusals during
/// the handshake typed; a server that dies mid-stream is a lost connection.
#[tokio::test]
async fn stream_player_resumes_with_since_and_token() {
    let server = Server::start(Config {
        send_rate: 10,
        ..config()
    });
    let mut opts = server.opts(Role::Player);
    opts.name = "bo".into();
    let Session {
        welcome,
        mut follower,
        mut sender,
        ..
    } = session(&opts, Transport::Stream, Resume::default()).await;
    let (entity, token) = (welcome.entity, welcome.token);
    assert!(token.is_some() && entity != 0, "{welcome:?}");
    for _ in 0..3 {
        sender
            .send_input(Input::default())
            .await
            .unwrap_or_else(|e| panic!("input: {e}"));
    }
    let (mut replica, mut stats) = (Replica::new(), Stats::new());
    while stats.highest_ack < 3 {
        next_frame(&mut follower, &mut replica, &mut stats).await;
    }
    let held = replica
        .tick()
        .unwrap_or_else(|| panic!("the replica holds a tick"));
    sender
        .close()
        .await
        .unwrap_or_else(|e| panic!("close: {e}"));
    drop(follower);

    // Refused before anything streams, each with its status and code.
    let unknown = Resume {
        token: Some(SessionToken([0xab; 16])),
        ..Resume::default()
    };
    let refused = open(&opts, Transport::Stream, unknown).await;
    assert!(
        matches!(&refused, Err(e) if e.http_status() == Some(401) && e.api_code() == Some("bad_token")),
        "{refused:?}"
    );
    let ahead = Resume {
        token,
        last_tick: Some(held + 1_000_000),
        next_seq: 4,
    };
    let refused = open(&opts, Transport::Stream, ahead).await;
    assert!(
        matches!(&refused, Err(e) if e.http_status() == Some(400) && e.api_code() == Some("cursor_in_future")),
        "{refused:?}"
    );

    let resume = Resume {
        token,
        last_tick: Some(held),
        next_seq: 4,
    };
    let Session {
        welcome,
        mut follower,
        mut sender,
        ..
    } = session(&opts, Transport::Stream, resume).await;
    assert_eq!(
        (welcome.entity, welcome.token),
        (entity, token),
        "the same ship"
    );
    let first = next_frame(&mut follower, &mut replica, &mut stats).await;
    assert_eq!(first.base, Some(held), "a delta from the tick held");
    let seq = sender
        .send_input(Input::default())
        .await
        .unwrap_or_else(|e| panic!("input: {e}"));
    assert_eq!(seq, 4);
    while stats.highest_ack < 4 {
        next_frame(&mut follower, &mut replica, &mut stats).await;
    }
    assert!(stats.acks_monotonic);
    assert_eq!(stats.desyncs, 0);

    server.crash().await;
    let end = end_of(&mut follower, &mut replica, &mut stats).await;
    assert!(matches!(end, ClientError::ConnectionLost), "{end:?}");
}
