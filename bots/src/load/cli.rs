//! The load tool's flags, and what they become: a checked [`Settings`].
//!
//! Flags are parsed by clap ([`Args`]); [`Args::settings`] turns them into durations and
//! checked numbers, so the rest of the tool never sees a negative rate or a fraction above 1.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use bots::Transport;
use clap::Parser;

/// `cargo run --release -p bots -- --url URL --players N --spectators M --transport T …`
#[derive(Debug, Clone, Parser)]
#[command(
    name = "bots",
    version,
    about = "tickwire's load tool: headless players and spectators over every transport, \
             verified and measured",
    after_help = "Exit status: 0 when every check held; 2 when a replica desynced or an \
                  acknowledged input was lost; 1 when the run could not be made."
)]
pub struct Args {
    /// The server, as you would open it in a browser.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Players: they join, play with the AI pilot and send inputs.
    #[arg(long, default_value_t = 10)]
    pub players: usize,
    /// Spectators: they follow and verify, and never send input.
    #[arg(long, default_value_t = 0)]
    pub spectators: usize,
    /// ws, sse, stream, longpoll, poll, or mix (clients cycle through all five).
    #[arg(long, default_value = "ws")]
    pub transport: TransportChoice,
    /// Rooms to spread the clients over: created as PREFIX-1…PREFIX-R through
    /// `POST /api/rooms` (reused when they exist).
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Use this one existing room instead (e.g. `default`); overrides --rooms.
    #[arg(long)]
    pub room: Option<String>,
    /// The prefix of the rooms' ids.
    #[arg(long, default_value = "load")]
    pub room_prefix: String,
    /// Seconds to hold the full load once every client has started (the measured window).
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Clients started per second (ramp-up without a thundering herd); 0 starts all at once.
    #[arg(long, default_value_t = 500.0)]
    pub ramp: f64,
    /// Fraction of clients that verify every frame against a full replica (the others skim
    /// frame headers); the first client of each role and transport always verifies.
    #[arg(long, default_value_t = 0.05)]
    pub verify: f64,
    /// Chaos: each connected client drops its connection with this probability per second
    /// and resumes it (token and last tick) after a jittered backoff.
    #[arg(long, default_value_t = 0.0)]
    pub chaos: f64,
    /// Inputs per second per player; 0: the room's tick rate, like a browser.
    #[arg(long, default_value_t = 0.0)]
    pub input_rate: f64,
    /// Local source addresses 127.0.0.1…127.0.0.K to spread connections over (one address
    /// has about 28,000 ephemeral ports per server address); 0 picks enough.
    #[arg(long, default_value_t = 0)]
    pub source_ips: usize,
    /// Seconds at the end to wait for the last inputs' acks before leaving.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Seconds to connect and finish a handshake.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Failed connections a client may retry over the run (chaos drops do not count).
    #[arg(long, default_value_t = 20)]
    pub max_reconnects: u32,
    /// Seed of every random choice (pilots, sampling, chaos, jitter): runs are repeatable.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML page with plots to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// No progress line and no table (the JSON and HTML files are still written).
    #[arg(long)]
    pub quiet: bool,
    /// For the tool's own tests: corrupt one frame a verifying client receives, before it is
    /// applied, to prove that desyncs are detected and fail the run.
    #[arg(long, hide = true)]
    pub inject_desync: bool,
}

/// `--transport`: one transport for everyone, or a mix of all five.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportChoice {
    /// Every client uses this one.
    One(Transport),
    /// Clients cycle through [`Transport::ALL`].
    Mix,
}

impl FromStr for TransportChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("mix") {
            return Ok(Self::Mix);
        }
        s.parse::<Transport>()
            .map(Self::One)
            .map_err(|e| format!("{e}, or mix"))
    }
}

impl fmt::Display for TransportChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::One(t) => t.fmt(f),
            Self::Mix => f.write_str("mix"),
        }
    }
}

/// The flags, checked and in the units the tool works in.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The server's base URL.
    pub url: String,
    /// Players.
    pub players: usize,
    /// Spectators.
    pub spectators: usize,
    /// Transport choice.
    pub transport: TransportChoice,
    /// The rooms' ids, and whether the tool creates them (false for `--room`).
    pub rooms: Vec<String>,
    /// Whether the rooms are created through the API.
    pub create_rooms: bool,
    /// The measured window.
    pub duration: Duration,
    /// Clients started per second; `None`: all at once.
    pub ramp: Option<f64>,
    /// Fraction of clients that verify in full.
    pub verify: f64,
    /// Drops per connected client per second.
    pub chaos: f64,
    /// Time between a player's inputs; `None`: the room's tick period.
    pub input_period: Option<Duration>,
    /// Source addresses requested (0: automatic).
    pub source_ips: usize,
    /// The end-of-run wait for acks.
    pub drain: Duration,
    /// Connect + handshake bound.
    pub timeout: Duration,
    /// Retries of failed connections per client.
    pub max_reconnects: u32,
    /// Seed.
    pub seed: u64,
    /// Output files.
    pub json: Option<PathBuf>,
    /// HTML report.
    pub report: Option<PathBuf>,
    /// No progress line and no table.
    pub quiet: bool,
    /// Corrupt one verified frame.
    pub inject_desync: bool,
}

fn seconds(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .with_context(|| format!("--{name} must be a number of seconds ≥ 0"))
}

impl Args {
    /// Checks the flags and converts them.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        if self.players + self.spectators == 0 {
            bail!("nothing to do: give --players and/or --spectators");
        }
        if !(0.0..=1.0).contains(&self.verify) {
            bail!("--verify is a fraction of clients, 0..=1");
        }
        if !(0.0..=10.0).contains(&self.chaos) {
            bail!("--chaos is drops per client per second, 0..=10");
        }
        if !(self.ramp >= 0.0 && self.input_rate >= 0.0 && self.input_rate <= 1000.0) {
            bail!("--ramp must be ≥ 0 and --input-rate 0..=1000");
        }
        let (rooms, create_rooms) = match &self.room {
            Some(id) => (vec![id.clone()], false),
            None => {
                if self.rooms == 0 {
                    bail!("--rooms must be at least 1");
                }
                let ids = (1..=self.rooms)
                    .map(|i| format!("{}-{i}", self.room_prefix))
                    .collect::<Vec<_>>();
                if ids.iter().any(|id| !valid_room_id(id)) {
                    bail!("room ids are 1–32 of a-z A-Z 0-9 - _: shorten --room-prefix");
                }
                (ids, true)
            }
        };
        Ok(Settings {
            url: self.url.clone(),
            players: self.players,
            spectators: self.spectators,
            transport: self.transport,
            rooms,
            create_rooms,
            duration: seconds("duration", self.duration)?,
            ramp: (self.ramp > 0.0).then_some(self.ramp),
            verify: self.verify,
            chaos: self.chaos,
            input_period: (self.input_rate > 0.0)
                .then(|| Duration::from_secs_f64(1.0 / self.input_rate)),
            source_ips: self.source_ips,
            drain: seconds("drain", self.drain)?,
            timeout: seconds("timeout", self.timeout)?.max(Duration::from_millis(100)),
            max_reconnects: self.max_reconnects,
            seed: self.seed,
            json: self.json.clone(),
            report: self.report.clone(),
            quiet: self.quiet,
            inject_desync: self.inject_desync,
        })
    }
}

/// The server's rule for room ids (README: 1–32 of `a-z A-Z 0-9 - _`).
fn valid_room_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Settings> {
        let mut all = vec!["bots"];
        all.extend_from_slice(args);
        Args::try_parse_from(all)?.settings()
    }

    #[test]
    fn flags_become_settings() -> anyhow::Result<()> {
        let s = parse(&[
            "--players",
            "100",
            "--transport",
            "mix",
            "--rooms",
            "3",
            "--duration",
            "2.5",
            "--input-rate",
            "30",
        ])?;
        assert_eq!(s.transport, TransportChoice::Mix);
        assert_eq!(s.rooms, ["load-1", "load-2", "load-3"]);
        assert!(s.create_rooms);
        assert_eq!(s.duration, Duration::from_millis(2500));
        assert_eq!(s.input_period.map(|p| p.as_micros()), Some(33_333));
        let s = parse(&[
            "--spectators",
            "5",
            "--players",
            "0",
            "--room",
            "default",
            "--ramp",
            "0",
        ])?;
        assert_eq!(
            (s.rooms.as_slice(), s.create_rooms),
            (&["default".to_owned()][..], false)
        );
        assert_eq!(s.ramp, None);
        assert_eq!(
            parse(&["--transport", "longpoll"])?.transport,
            TransportChoice::One(Transport::LongPoll)
        );
        Ok(())
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(parse(&["--players", "0"]).is_err());
        assert!(parse(&["--verify", "1.5"]).is_err());
        assert!(parse(&["--transport", "carrier-pigeon"]).is_err());
        assert!(parse(&["--duration", "-1"]).is_err());
        assert!(parse(&["--rooms", "0"]).is_err());
        assert!(parse(&["--room-prefix", "no spaces"]).is_err());
    }
}
