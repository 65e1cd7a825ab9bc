//! One virtual user: a player or spectator that connects through the client library, plays,
//! drops and resumes when chaos says so, and measures.
//!
//! It is the library's [`bots::Bot`] loop with what a load test adds: a start time (the ramp),
//! a shared stop signal, chaos drops, and per-frame measurements into the shared recorder.
//! Like the bot it opens sessions with [`bots::open`], follows with a [`bots::Follower`] and
//! sends with a [`bots::Sender`], and reconnects with the session token and its last tick after
//! a jittered [`Backoff`]. A verifying client follows with a [`Replica`] and flies the AI
//! [`Pilot`] from it (STYLE §8: bots are players); a skimming one follows with a [`Skim`] and,
//! having no state to steer by, flies a cheap seeded wander (same rate, same message size).
//!
//! ```text
//! wait for its start ─► open ─► play ─┬─ stop signal ─► drain acks, leave ─► Outcome
//!          ▲                           ├─ chaos drop ──► backoff ─┐
//!          └──── backoff ◄─ failure ◄──┴─ error ──────────────────┘  (resume: token + tick)
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bots::backoff::Backoff;
use bots::{
    ClientError, ConnectOptions, Event, FrameSink, Recovery, Resume, Role, Samples, Sender,
    Session, Skim, Stats, Transport, open,
};
use game_core::ai::Pilot;
use game_core::protocol::Input;
use game_core::replica::Replica;
use game_core::rng::Rng;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep, sleep_until, timeout_at};
use tokio_util::sync::CancellationToken;

use super::changes::Changes;
use super::inject::Corrupting;
use super::plan::ClientSpec;
use super::record::Shared;
use super::wander::Wander;

/// Settings every client shares.
#[derive(Clone, Debug)]
pub struct VuConfig {
    /// The server's base URL.
    pub url: String,
    /// Connect and handshake bound.
    pub timeout: Duration,
    /// Time between inputs; `None`: the room's tick period.
    pub input_period: Option<Duration>,
    /// Chaos drops per connected client per second.
    pub chaos: f64,
    /// End-of-run wait for the last acks.
    pub drain: Duration,
    /// Failed connections a client may retry.
    pub max_reconnects: u32,
}

/// What one client did, for the report.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Player or spectator.
    pub role: Role,
    /// Its transport.
    pub transport: Transport,
    /// Whether it verified every frame.
    pub verify: bool,
    /// Connection attempts.
    pub attempts: u64,
    /// Attempts that got a session.
    pub ok: u64,
    /// Attempts that failed, and established sessions that failed.
    pub failed: u64,
    /// Why, one short key per failure (bounded: the first few).
    pub failures: Vec<String>,
    /// Sessions after the first.
    pub reconnects: u64,
    /// Drops made by chaos.
    pub chaos_drops: u64,
    /// Frames received and taken (verified or skimmed).
    pub frames: u64,
    /// Of those, keyframes.
    pub keyframes: u64,
    /// Bytes of frame messages.
    pub frame_bytes: u64,
    /// Frames that did not verify.
    pub desyncs: u64,
    /// Inputs sent.
    pub inputs_sent: u64,
    /// The last input sequence sent.
    pub last_seq: u32,
    /// The highest ack seen.
    pub highest_ack: u32,
    /// Whether acks never went backwards.
    pub acks_monotonic: bool,
    /// Whether it ran to the stop signal and drained (rather than giving up).
    pub ended_cleanly: bool,
    /// Verifying clients: entities that changed (added, removed, or any field different)
    /// over the frames they verified.
    pub changed_entities: u64,
    /// Verifying clients: bytes of the frames counted in `changed_entities`.
    pub changed_bytes: u64,
    /// Verifying clients: entities held after each verified frame, summed.
    pub entities_seen: u64,
    /// Seconds it held a session, over all its sessions.
    pub connected_secs: f64,
    /// What ended it early, if anything.
    pub final_error: Option<String>,
}

/// Failure keys kept per client.
const FAILURES_KEPT: usize = 4;

impl Outcome {
    fn note_failure(&mut self, e: &ClientError) {
        self.failed += 1;
        if self.failures.len() < FAILURES_KEPT {
            self.failures.push(failure_key(e));
        }
    }
}

/// A short, countable name for an error: the server's code where it gave one.
pub fn failure_key(e: &ClientError) -> String {
    match e {
        ClientError::Api(a) => format!("http {} {}", a.status, a.code.as_deref().unwrap_or("")),
        ClientError::Refused(c) => format!("refused {}", c.code),
        ClientError::Closed(c) => format!("closed {}", c.code),
        ClientError::HttpStatus { status } => format!("http {status}"),
        ClientError::Connect { .. } => "connect".into(),
        ClientError::ConnectTimeout { .. } => "connect timeout".into(),
        ClientError::HandshakeTimeout(_) => "handshake timeout".into(),
        ClientError::ReadTimeout(_) => "read timeout".into(),
        ClientError::WriteTimeout(_) => "write timeout".into(),
        ClientError::ConnectionLost => "connection lost".into(),
        ClientError::Desync(_) => "desync".into(),
        other => other
            .to_string()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// How a session ended.
enum End {
    Stop,
    Chaos,
    Failed(ClientError),
}

/// Runs one client until `stop`, then drains and leaves.
pub async fn run(
    spec: ClientSpec,
    cfg: Arc<VuConfig>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> Outcome {
    let mut out = Outcome {
        role: spec.role,
        transport: spec.transport,
        verify: spec.verify,
        acks_monotonic: true,
        ..Outcome::default()
    };
    tokio::select! {
        () = sleep_until(shared.t0 + spec.start) => {}
        () = stop.cancelled() => return out,
    }
    shared.live.started.fetch_add(1, Relaxed);
    let mut opts = match ConnectOptions::new(&cfg.url, &spec.room, spec.role) {
        Ok(o) => o,
        Err(e) => {
            out.final_error = Some(e.to_string());
            return out;
        }
    };
    opts.name = format!("bot{}", spec.index);
    opts.local_address = spec.local;
    opts.connect_timeout = cfg.timeout;
    opts.handshake_timeout = cfg.timeout;
    let mut vu = Vu {
        sink: sink_for(&spec),
        stats: quiet_stats(),
        pilot: Pilot::new(spec.seed),
        wander: Wander::new(spec.seed),
        chaos: Rng::new(spec.seed ^ 0x0063_6861_6f73),
        changes: Changes::default(),
        spec,
        cfg,
        shared,
    };
    vu.sessions(&opts, &stop, &mut out).await;
    out.changed_entities = vu.changes.entities;
    out.changed_bytes = vu.changes.bytes;
    out.entities_seen = vu.changes.seen;
    let stats = &vu.stats;
    out.frames = stats.frames;
    out.keyframes = stats.keyframes;
    out.frame_bytes = stats.frame_bytes;
    out.desyncs = stats.desyncs;
    out.inputs_sent = stats.inputs_sent;
    out.highest_ack = stats.highest_ack;
    out.acks_monotonic = stats.acks_monotonic;
    out
}

/// Library stats whose own latency reservoirs stay tiny: the load tool drains them into its
/// histograms after every frame, so nothing accumulates per client.
fn quiet_stats() -> Stats {
    let mut stats = Stats::new();
    stats.ack_latency = Samples::new(64);
    stats.rtt = Samples::new(1);
    stats
}

fn sink_for(spec: &ClientSpec) -> Box<dyn FrameSink + Send> {
    match (spec.verify, spec.inject_desync) {
        (true, true) => Box::new(Corrupting::new()),
        (true, false) => Box::new(Replica::new()),
        (false, _) => Box::new(Skim::new()),
    }
}

struct Vu {
    spec: ClientSpec,
    cfg: Arc<VuConfig>,
    shared: Arc<Shared>,
    sink: Box<dyn FrameSink + Send>,
    stats: Stats,
    pilot: Pilot,
    wander: Wander,
    chaos: Rng,
    changes: Changes,
}

impl Vu {
    /// Sessions until the stop signal or a failure it cannot get past.
    async fn sessions(
        &mut self,
        opts: &ConnectOptions,
        stop: &CancellationToken,
        out: &mut Outcome,
    ) {
        let shared = self.shared.clone();
        let live = &shared.live;
        let mut backoff = Backoff::new(
            Duration::from_millis(200),
            Duration::from_secs(5),
            self.spec.seed,
        );
        let mut resume = Resume::default();
        let mut retries_left = self.cfg.max_reconnects;
        loop {
            resume.last_tick = self.sink.tick();
            out.attempts += 1;
            live.attempts.fetch_add(1, Relaxed);
            let opened = tokio::select! {
                r = open(opts, self.spec.transport, resume) => r,
                () = stop.cancelled() => return,
            };
            let end = match opened {
                Ok(session) => {
                    out.ok += 1;
                    live.ok.fetch_add(1, Relaxed);
                    live.connected.fetch_add(1, Relaxed);
                    if out.ok > 1 {
                        out.reconnects += 1;
                    }
                    backoff.reset();
                    let since = Instant::now();
                    let end = self.session(session, &mut resume, stop).await;
                    out.connected_secs += since.elapsed().as_secs_f64();
                    live.connected.fetch_sub(1, Relaxed);
                    end
                }
                Err(e) => {
                    live.failed.fetch_add(1, Relaxed);
                    End::Failed(e)
                }
            };
            match end {
                End::Stop => {
                    out.ended_cleanly = true;
                    out.last_seq = resume.next_seq.max(1) - 1;
                    return;
                }
                End::Chaos => {
                    out.chaos_drops += 1;
                    live.chaos_drops.fetch_add(1, Relaxed);
                }
                End::Failed(e) => {
                    if matches!(e, ClientError::Desync(_)) {
                        live.desyncs.fetch_add(1, Relaxed);
                    }
                    out.note_failure(&e);
                    let recovery = e.recovery();
                    if recovery == Recovery::GiveUp || retries_left == 0 {
                        out.final_error = Some(e.to_string());
                        out.last_seq = resume.next_seq.max(1) - 1;
                        return;
                    }
                    retries_left -= 1;
                    if recovery == Recovery::Keyframe {
                        self.sink.reset();
                        // The next frame is a keyframe: every entity in it is new.
                        self.changes.prev.clear();
                    }
                }
            }
            tokio::select! {
                () = sleep(backoff.next_delay()) => {}
                () = stop.cancelled() => {
                    out.last_seq = resume.next_seq.max(1) - 1;
                    return;
                }
            }
        }
    }

    /// One session: play until it ends; on the stop signal, drain and leave.
    async fn session(
        &mut self,
        session: Session,
        resume: &mut Resume,
        stop: &CancellationToken,
    ) -> End {
        let Session {
            welcome,
            mut follower,
            mut sender,
            ..
        } = session;
        resume.token = welcome.token.or(resume.token);
        let period = self
            .cfg
            .input_period
            .unwrap_or_else(|| Duration::from_secs_f64(1.0 / f64::from(welcome.tick_rate.max(1))));
        let mut inputs = interval_at(Instant::now() + period, period);
        // A late tick sends one input, not a burst of catch-up inputs.
        inputs.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let plays = self.spec.role == Role::Player;
        let chaos_at = self.next_chaos();
        let mut last_frame = None;
        // Made once, not on every pass: each is a waiter (or a timer) to register, and this loop
        // turns for every frame and every input (3 % of the generator's CPU at 10,000 SSE
        // spectators when they were made per pass).
        let stopped = stop.cancelled();
        let chaos = until(chaos_at);
        tokio::pin!(stopped, chaos);
        let end = loop {
            // Branch bodies run after the other branches' futures are dropped; every
            // follower's `next_event` is cancel-safe.
            tokio::select! {
                () = &mut stopped => break End::Stop,
                () = &mut chaos => break End::Chaos,
                event = follower.next_event(&mut *self.sink, &mut self.stats) => match event {
                    Ok(Event::Frame(f)) => self.record(f.bytes, &mut last_frame),
                    Ok(_) => {}
                    Err(e) => break End::Failed(e),
                },
                _ = inputs.tick(), if plays => {
                    let input = match self.sink.snapshot() {
                        Some(view) => self.pilot.think(welcome.entity, view, &welcome.arena),
                        // A verifier with no verified state yet holds still, as a bot does.
                        None if self.spec.verify => Input::default(),
                        None => self.wander.next(),
                    };
                    if let Err(e) = sender.send_input(input).await {
                        break End::Failed(e);
                    }
                    self.stats.inputs_sent += 1;
                    self.shared.live.inputs_sent.fetch_add(1, Relaxed);
                }
            }
        };
        resume.next_seq = sender.last_seq() + 1;
        if matches!(end, End::Stop) {
            self.drain(sender, follower, &mut last_frame).await;
        }
        // Otherwise dropping both halves closes the connection without leaving: the server
        // keeps the ship for its grace period, and the next session resumes it.
        end
    }

    /// The end of a run: wait (bounded) for the last input's ack, then leave.
    async fn drain(
        &mut self,
        sender: Sender,
        mut follower: bots::Follower,
        last_frame: &mut Option<Instant>,
    ) {
        let last = sender.last_seq();
        let deadline = Instant::now() + self.cfg.drain;
        while self.stats.highest_ack < last {
            match timeout_at(
                deadline,
                follower.next_event(&mut *self.sink, &mut self.stats),
            )
            .await
            {
                Ok(Ok(Event::Frame(f))) => self.record(f.bytes, last_frame),
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        let leave = async {
            if self.spec.role == Role::Player {
                sender.leave().await
            } else {
                sender.close().await
            }
        };
        let _ = timeout_at(Instant::now() + self.cfg.drain, leave).await;
    }

    /// Counts a frame of `bytes` and the acks the library measured for it.
    fn record(&mut self, bytes: usize, last_frame: &mut Option<Instant>) {
        if self.spec.verify
            && let Some(view) = self.sink.snapshot()
        {
            self.changes.count(&view.entities, bytes);
        }
        let now = Instant::now();
        let gap = last_frame.map(|t| now.saturating_duration_since(t));
        *last_frame = Some(now);
        let acks = &mut self.stats.ack_latency;
        if acks.count() > 0 {
            self.shared
                .frame(self.spec.transport, now, gap, bytes, acks.kept());
            *acks = Samples::new(64);
        } else {
            self.shared.frame(self.spec.transport, now, gap, bytes, &[]);
        }
    }

    /// When chaos next drops this session: exponentially distributed at `chaos` per second.
    fn next_chaos(&mut self) -> Option<Instant> {
        if self.cfg.chaos <= 0.0 {
            return None;
        }
        let u = f64::from(self.chaos.next_f32()).clamp(1e-6, 1.0);
        let secs = (-u.ln() / self.cfg.chaos).min(3600.0);
        Some(Instant::now() + Duration::from_secs_f64(secs))
    }
}

/// Completes at `at`, or never.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
