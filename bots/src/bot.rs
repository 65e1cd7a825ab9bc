//! A headless bot: one player (or spectator) that plays with the AI pilot and measures.
//!
//! The same [`Pilot`] that flies the server's filler ships flies the bot, from the bot's
//! verified replica (STYLE §8: bots are players). A [`Bot`] opens a session over its
//! [`Transport`] (any of the five), then runs one `tokio::select!` loop per session over: the
//! follower's next event, an input every tick at the welcome's tick rate, a ping every
//! `ping_interval` (WebSocket only), the end of the run and the caller's stop signal.
//! Transport failures and desyncs reopen the session with its token and the replica's tick (a
//! desync asks for a keyframe) after a jittered, growing delay ([`Backoff`]), up to
//! `max_reconnects` times; a close or refusal the server chose ends the run.
//!
//! At the end it stops sending, waits up to `drain` for the ack of its last input, leaves
//! (over HTTP: posts what is queued), and returns a [`BotReport`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use game_core::ai::Pilot;
use game_core::protocol::Input;
use game_core::replica::Replica;
use tokio::time::{
    Instant, MissedTickBehavior, interval, interval_at, sleep, sleep_until, timeout_at,
};

use crate::backoff::Backoff;
use crate::endpoint::Role;
use crate::error::{ClientError, Recovery};
use crate::options::{ConnectOptions, Resume, Welcome};
use crate::stats::Stats;
use crate::transport::{Follower, Sender, Session, Transport, open};

/// How a bot behaves.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// Where to connect, as whom, with which timeouts. A spectator sends no inputs.
    pub connect: ConnectOptions,
    /// How: WebSocket (the default) or one of the HTTP transports.
    pub transport: Transport,
    /// How long to play; `None` until the stop signal.
    pub duration: Option<Duration>,
    /// The pilot's personality (seed of its randomness).
    pub seed: u64,
    /// Time between pings.
    pub ping_interval: Duration,
    /// How long to wait at the end for the last input's ack, and then for the server's close.
    pub drain: Duration,
    /// Reconnect attempts allowed over the whole run.
    pub max_reconnects: u32,
    /// The first reconnect's backoff window: the pause is drawn from its upper half, and the
    /// window doubles with each failed attempt (see [`Backoff`]).
    pub reconnect_delay: Duration,
    /// The largest backoff window.
    pub reconnect_delay_max: Duration,
}

impl BotConfig {
    /// A bot for `connect` over WebSocket: runs until stopped, pings every second, drains for
    /// 2 s, and reconnects up to 5 times, after 100–200 ms, then growing up to 5 s.
    pub fn new(connect: ConnectOptions) -> Self {
        Self {
            connect,
            transport: Transport::Ws,
            duration: None,
            seed: 0,
            ping_interval: Duration::from_secs(1),
            drain: Duration::from_secs(2),
            max_reconnects: 5,
            reconnect_delay: Duration::from_millis(200),
            reconnect_delay_max: Duration::from_secs(5),
        }
    }
}

/// What a bot did and saw.
#[derive(Debug)]
pub struct BotReport {
    /// Counters and latencies over all connections.
    pub stats: Stats,
    /// Our ship (0 for a spectator), from the last `Welcome`.
    pub entity: u16,
    /// The last input sequence number sent.
    pub last_seq: u32,
    /// What ended the run before its duration or stop signal, if anything did.
    pub error: Option<ClientError>,
}

impl BotReport {
    /// Whether the server acknowledged every input sent (`highest_ack == last_seq`) and acks
    /// never went backwards. Trivially true for a spectator.
    pub fn acks_complete(&self) -> bool {
        self.stats.acks_monotonic && self.stats.highest_ack == self.last_seq
    }
}

/// A bot: build with a [`BotConfig`], then [`Bot::run`] it.
#[derive(Debug)]
pub struct Bot {
    config: BotConfig,
    pilot: Pilot,
    replica: Replica,
    stats: Stats,
}

type StopSignal<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send)>;

impl Bot {
    /// A bot that has not connected yet.
    pub fn new(config: BotConfig) -> Self {
        let pilot = Pilot::new(config.seed);
        Self {
            config,
            pilot,
            replica: Replica::new(),
            stats: Stats::new(),
        }
    }

    /// Plays until the duration is over or `stop` completes, then drains and leaves.
    ///
    /// Fails only if the first connection fails (so a test sees e.g. a refused handshake as
    /// [`ClientError::Refused`], or an HTTP refusal as [`ClientError::Api`]); later failures
    /// end the run and are in [`BotReport::error`].
    pub async fn run(
        mut self,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<BotReport, ClientError> {
        let end = self.config.duration.map(|d| Instant::now() + d);
        let stop = std::pin::pin!(stop);
        let mut stop: StopSignal<'_> = stop;
        let mut resume = Resume::default();
        let transport = self.config.transport;
        let mut session = open(&self.config.connect, transport, resume).await?;
        let mut backoff = Backoff::new(
            self.config.reconnect_delay,
            self.config.reconnect_delay_max,
            self.config.seed,
        );
        let mut reconnects_left = self.config.max_reconnects;
        let mut entity;
        let error = 'session: loop {
            let Session {
                welcome,
                mut follower,
                mut sender,
                ..
            } = session;
            entity = welcome.entity;
            resume.token = welcome.token.or(resume.token);
            let result = self
                .play(&welcome, &mut sender, &mut follower, stop.as_mut(), end)
                .await;
            resume.next_seq = sender.last_seq() + 1;
            let Err(mut err) = result else {
                self.drain(sender, follower).await;
                break None;
            };
            // Dropping both halves closes the connection (a WebSocket writer sends a close
            // frame; an HTTP input poster posts what it holds and stops).
            drop((sender, follower));
            // Reconnect until one works, the budget is spent, or it is time to stop.
            session = loop {
                match err.recovery() {
                    Recovery::GiveUp => break 'session Some(err),
                    _ if reconnects_left == 0 => break 'session Some(err),
                    Recovery::Keyframe => self.replica.reset(),
                    Recovery::Resume => {}
                }
                reconnects_left -= 1;
                let delay = backoff.next_delay();
                tracing::debug!("bot reconnecting over {transport} in {delay:?} after: {err}");
                tokio::select! {
                    () = sleep(delay) => {}
                    () = stop.as_mut() => break 'session None,
                    () = until(end) => break 'session None,
                }
                resume.last_tick = self.replica.tick();
                let attempt = tokio::select! {
                    attempt = open(&self.config.connect, transport, resume) => attempt,
                    () = stop.as_mut() => break 'session None,
                    () = until(end) => break 'session None,
                };
                match attempt {
                    Ok(s) => {
                        self.stats.reconnects += 1;
                        backoff.reset();
                        break s;
                    }
                    Err(e) => err = e,
                }
            };
        };
        Ok(self.report(entity, resume, error))
    }

    fn report(self, entity: u16, resume: Resume, error: Option<ClientError>) -> BotReport {
        BotReport {
            stats: self.stats,
            entity,
            last_seq: resume.next_seq.max(1) - 1,
            error,
        }
    }

    /// One session's loop: `Ok` at the end of the run or on the stop signal, `Err` when the
    /// session fails.
    async fn play(
        &mut self,
        welcome: &Welcome,
        sender: &mut Sender,
        follower: &mut Follower,
        mut stop: StopSignal<'_>,
        end: Option<Instant>,
    ) -> Result<(), ClientError> {
        let period = Duration::from_secs_f64(1.0 / f64::from(welcome.tick_rate.max(1)));
        let mut inputs = interval_at(Instant::now() + period, period);
        // A late tick sends one input, not a burst of catch-up inputs.
        inputs.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut pings = interval(self.config.ping_interval);
        pings.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let plays = self.config.connect.role() == Role::Player;
        let pinging = sender.can_ping();
        let mut end = std::pin::pin!(until(end));
        loop {
            // Branch bodies run after the other branches' futures are dropped, so they may use
            // the sender and the replica; every follower's `next_event` is cancel-safe.
            tokio::select! {
                () = stop.as_mut() => return Ok(()),
                () = end.as_mut() => return Ok(()),
                event = follower.next_event(&mut self.replica, &mut self.stats) => {
                    event?;
                }
                _ = inputs.tick(), if plays => {
                    let input = match self.replica.snapshot() {
                        Some(view) => self.pilot.think(welcome.entity, view, &welcome.arena),
                        // No verified state yet (or after a desync): hold still.
                        None => Input::default(),
                    };
                    sender.send_input(input).await?;
                    self.stats.inputs_sent += 1;
                }
                _ = pings.tick(), if pinging => {
                    if sender.ping().await?.is_some() {
                        self.stats.pings_sent += 1;
                    }
                }
            }
        }
    }

    /// The end of a run: wait (bounded) for the last input's ack, leave, and over WebSocket
    /// read to the server's close.
    async fn drain(&mut self, sender: Sender, mut follower: Follower) {
        let last = sender.last_seq();
        let deadline = Instant::now() + self.config.drain;
        while self.stats.highest_ack < last {
            match timeout_at(
                deadline,
                follower.next_event(&mut self.replica, &mut self.stats),
            )
            .await
            {
                Ok(Ok(_)) => {}
                // Out of time, or the connection failed: the report shows what was acked.
                Ok(Err(_)) | Err(_) => break,
            }
        }
        // Only a WebSocket can say "leave" and be answered with a close.
        let closes = matches!(sender, Sender::Ws(_));
        if sender.leave().await.is_ok() && closes {
            let deadline = Instant::now() + self.config.drain;
            // Frames may still arrive before the server's close; a close ends the loop.
            while let Ok(Ok(_)) = timeout_at(
                deadline,
                follower.next_event(&mut self.replica, &mut self.stats),
            )
            .await
            {}
        }
    }
}

/// Completes at `end`, or never.
async fn until(end: Option<Instant>) {
    match end {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bot_with_no_server_fails_to_start() -> Result<(), ClientError> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let opts =
            ConnectOptions::new(&format!("http://127.0.0.1:{port}"), "default", Role::Player)?;
        let result = Bot::new(BotConfig::new(opts))
            .run(std::future::pending())
            .await;
        assert!(
            matches!(result, Err(ClientError::Connect { .. })),
            "{result:?}"
        );
        Ok(())
    }

    /// The load tool spawns bots as tasks: the run future must be `Send`.
    #[test]
    fn a_bot_run_can_be_spawned() -> Result<(), ClientError> {
        fn assert_send<T: Send>(_: &T) {}
        let opts = ConnectOptions::new("http://127.0.0.1:9", "default", Role::Spectator)?;
        let run = Bot::new(BotConfig::new(opts)).run(std::future::pending());
        assert_send(&run);
        Ok(())
    }

    #[test]
    fn report_checks_acks() {
        let mut stats = Stats::new();
        stats.observe_ack(5);
        let report = BotReport {
            stats,
            entity: 3,
            last_seq: 5,
            error: None,
        };
        assert!(report.acks_complete());
        let mut stats = Stats::new();
        stats.observe_ack(4);
        assert!(
            !BotReport {
                stats,
                entity: 3,
                last_seq: 5,
                error: None
            }
            .acks_complete()
        );
    }
}
