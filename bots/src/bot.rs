//! A headless bot: one player (or spectator) that plays with the AI pilot and measures.
//!
//! The same [`Pilot`] that flies the server's filler ships flies the bot, from the bot's
//! verified replica (STYLE §8: bots are players). A [`Bot`] connects, then runs one
//! `tokio::select!` loop per connection over: the reader's next event, an input every tick at
//! the welcome's tick rate, a ping every `ping_interval`, the end of the run and the caller's
//! stop signal. Transport failures and desyncs reconnect with the session token (a desync
//! asks for a keyframe), up to `max_reconnects`; a close the server chose ends the run.
//!
//! At the end it stops sending, waits up to `drain` for the ack of its last input, leaves,
//! and returns a [`BotReport`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use game_core::ai::Pilot;
use game_core::protocol::Input;
use game_core::replica::Replica;
use tokio::time::{
    Instant, MissedTickBehavior, interval, interval_at, sleep, sleep_until, timeout_at,
};

use crate::endpoint::Role;
use crate::error::{ClientError, Recovery};
use crate::stats::Stats;
use crate::ws::{ConnectOptions, Connection, Reader, Resume, Welcome, Writer, connect};

/// How a bot behaves.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// Where to connect, as whom, with which timeouts. A spectator sends no inputs.
    pub connect: ConnectOptions,
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
    /// Pause before each reconnect attempt.
    pub reconnect_delay: Duration,
}

impl BotConfig {
    /// A bot for `connect`: runs until stopped, pings every second, drains for 2 s, and
    /// reconnects up to 5 times, 200 ms apart.
    pub fn new(connect: ConnectOptions) -> Self {
        Self {
            connect,
            duration: None,
            seed: 0,
            ping_interval: Duration::from_secs(1),
            drain: Duration::from_secs(2),
            max_reconnects: 5,
            reconnect_delay: Duration::from_millis(200),
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
    /// [`ClientError::Refused`]); later failures end the run and are in
    /// [`BotReport::error`].
    pub async fn run(
        mut self,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<BotReport, ClientError> {
        let end = self.config.duration.map(|d| Instant::now() + d);
        let stop = std::pin::pin!(stop);
        let mut stop: StopSignal<'_> = stop;
        let mut resume = Resume::default();
        let mut conn = connect(&self.config.connect, resume).await?;
        let mut reconnects_left = self.config.max_reconnects;
        let mut entity;
        let error = 'session: loop {
            let Connection {
                welcome,
                mut writer,
                mut reader,
            } = conn;
            entity = welcome.entity;
            resume.token = welcome.token.or(resume.token);
            let result = self
                .play(&welcome, &mut writer, &mut reader, stop.as_mut(), end)
                .await;
            resume.next_seq = writer.last_seq() + 1;
            let Err(mut err) = result else {
                self.drain(writer, reader).await;
                break None;
            };
            // Dropping both halves closes the socket (the writer task sends a close frame).
            drop((writer, reader));
            // Reconnect until one works, the budget is spent, or it is time to stop.
            conn = loop {
                match err.recovery() {
                    Recovery::GiveUp => break 'session Some(err),
                    _ if reconnects_left == 0 => break 'session Some(err),
                    Recovery::Keyframe => self.replica.reset(),
                    Recovery::Resume => {}
                }
                reconnects_left -= 1;
                tracing::debug!("bot reconnecting after: {err}");
                tokio::select! {
                    () = sleep(self.config.reconnect_delay) => {}
                    () = stop.as_mut() => break 'session None,
                    () = until(end) => break 'session None,
                }
                resume.last_tick = self.replica.tick();
                let attempt = tokio::select! {
                    attempt = connect(&self.config.connect, resume) => attempt,
                    () = stop.as_mut() => break 'session None,
                    () = until(end) => break 'session None,
                };
                match attempt {
                    Ok(c) => {
                        self.stats.reconnects += 1;
                        break c;
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

    /// One connection's loop: `Ok` at the end of the run or on the stop signal, `Err` when
    /// the connection fails.
    async fn play(
        &mut self,
        welcome: &Welcome,
        writer: &mut Writer,
        reader: &mut Reader,
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
        let mut end = std::pin::pin!(until(end));
        loop {
            // Branch bodies run after the other branches' futures are dropped, so they may use
            // the writer and the replica; `next_event` is cancel-safe.
            tokio::select! {
                () = stop.as_mut() => return Ok(()),
                () = end.as_mut() => return Ok(()),
                event = reader.next_event(&mut self.replica, &mut self.stats) => {
                    event?;
                }
                _ = inputs.tick(), if plays => {
                    let input = match self.replica.snapshot() {
                        Some(view) => self.pilot.think(welcome.entity, view, &welcome.arena),
                        // No verified state yet (or after a desync): hold still.
                        None => Input::default(),
                    };
                    writer.send_input(input).await?;
                    self.stats.inputs_sent += 1;
                }
                _ = pings.tick() => {
                    writer.ping().await?;
                    self.stats.pings_sent += 1;
                }
            }
        }
    }

    /// The end of a run: wait (bounded) for the last input's ack, leave, read to the close.
    async fn drain(&mut self, writer: Writer, mut reader: Reader) {
        let last = writer.last_seq();
        let deadline = Instant::now() + self.config.drain;
        while self.stats.highest_ack < last {
            match timeout_at(
                deadline,
                reader.next_event(&mut self.replica, &mut self.stats),
            )
            .await
            {
                Ok(Ok(_)) => {}
                // Out of time, or the connection failed: the report shows what was acked.
                Ok(Err(_)) | Err(_) => break,
            }
        }
        if writer.leave().await.is_ok() {
            let deadline = Instant::now() + self.config.drain;
            // Frames may still arrive before the server's close; a close ends the loop.
            while let Ok(Ok(_)) = timeout_at(
                deadline,
                reader.next_event(&mut self.replica, &mut self.stats),
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
