//! Server settings: embedded defaults, an optional TOML file, environment variables and flags.
//!
//! Precedence, lowest first: the defaults below, the file given with `--config`, then each
//! setting's environment variable (`TICKWIRE_*`) or flag (a flag wins over its variable). Every
//! limit the server enforces lives here, so the README's table and this struct stay one list.

use clap::Parser;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the server can be told. Field docs double as the README's configuration table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Simulation ticks per second.
    pub tick_rate: u16,
    /// Frames per second sent to clients that keep up.
    pub send_rate: u16,
    /// Human players per room.
    pub room_capacity: u16,
    /// Rooms the server will hold at once.
    pub max_rooms: usize,
    /// AI ships per room while there are fewer human players than this.
    pub ai_fill: u16,
    /// Seconds a dropped player's ship waits for its owner to reconnect.
    pub reconnect_grace_secs: u64,
    /// Seconds an empty room created through the API lives before it closes.
    pub room_idle_secs: u64,
    /// Sends kept in each room's history, for resuming and slow clients' deltas.
    pub history_sends: usize,
    /// Milliseconds a new WebSocket has to send its `Hello`.
    pub handshake_timeout_ms: u64,
    /// Seconds a frame may take to be written to a client before it is dropped.
    pub write_timeout_secs: u64,
    /// Seconds without any message from a client before it is dropped.
    pub idle_timeout_secs: u64,
    /// Seconds between WebSocket pings (liveness and server-side RTT).
    pub ping_interval_secs: u64,
    /// Longest a long-poll request is held, in seconds (larger `wait`s are capped).
    pub long_poll_max_wait_secs: u64,
    /// Seconds between SSE keep-alive comments.
    pub sse_keepalive_secs: u64,
    /// The `retry:` hint SSE clients get, in milliseconds.
    pub sse_retry_ms: u64,
    /// Largest message a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Open connections the server accepts in total (TCP connections; each long-lived stream
    /// also holds one of these).
    pub max_connections: usize,
    /// Open connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Seconds a client has to send a request's headers (slowloris); also how long an idle
    /// keep-alive connection is held.
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a request body.
    pub body_read_timeout_secs: u64,
    /// Browser origins (`scheme://host[:port]`) allowed to call the API besides the server's
    /// own; `"*"` allows any. Requests without `Origin` (tools, bots) pass.
    pub allowed_origins: Vec<String>,
    /// Inputs per second one player may send; absent means twice the tick rate. Extra inputs
    /// are dropped; a client that keeps a second's worth over the rate is closed.
    pub max_inputs_per_sec: Option<u32>,
    /// Rooms one IP address may create per minute.
    pub room_creates_per_min: u32,
    /// Player joins and resumes one IP address may make per minute (WebSocket and HTTP).
    pub joins_per_min: u32,
    /// Longest chat line, in characters (at most the protocol's 200).
    pub chat_max_chars: usize,
    /// Chat lines one player may send per 10 seconds (all of them at once, at most).
    pub chat_per_10s: u32,
    /// Kernel send buffer per connection, in bytes (`SO_SNDBUF`; Linux doubles it). Bounds
    /// what a client that stops reading can cost; 0 leaves the kernel's autotuning (up to
    /// `net.ipv4.tcp_wmem`, 4 MiB by default).
    pub tcp_send_buffer: usize,
    /// Connections the kernel holds for the server to accept (`listen` backlog; Linux caps it
    /// at `net.core.somaxconn`). Too small, and a burst of connections to a busy server
    /// overflows it: their handshakes and first bytes are dropped and retried for seconds.
    pub listen_backlog: u32,
    /// Inputs a player may have queued before further ones are rejected.
    pub input_queue: usize,
    /// Inputs applied per player per tick; extra ones wait for the next tick.
    pub max_inputs_per_tick: usize,
    /// Seconds the server waits for clients and tasks on shutdown before exiting anyway.
    pub shutdown_deadline_secs: u64,
    /// Arena file (TOML); the standard arena when absent.
    pub arena: Option<PathBuf>,
    /// The browser client's folder, served at `/`; the repository's `web-client/` when absent.
    pub web_root: Option<PathBuf>,
    /// Seed for the default room's world (others derive theirs from it).
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tick_rate: 60,
            send_rate: 30,
            room_capacity: 50,
            max_rooms: 1000,
            ai_fill: 8,
            reconnect_grace_secs: 30,
            room_idle_secs: 300,
            history_sends: 64,
            handshake_timeout_ms: 5000,
            write_timeout_secs: 20,
            idle_timeout_secs: 60,
            ping_interval_secs: 5,
            long_poll_max_wait_secs: 30,
            sse_keepalive_secs: 15,
            sse_retry_ms: 2000,
            max_message_bytes: game_core::codec::CLIENT_MSG_LIMIT,
            max_connections: 50_000,
            max_connections_per_ip: 256,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 10,
            allowed_origins: Vec::new(),
            max_inputs_per_sec: None,
            room_creates_per_min: 10,
            joins_per_min: 120,
            chat_max_chars: game_core::protocol::MAX_CHAT_CHARS,
            chat_per_10s: 5,
            tcp_send_buffer: 64 * 1024,
            listen_backlog: 4096,
            input_queue: 64,
            max_inputs_per_tick: 8,
            shutdown_deadline_secs: 5,
            arena: None,
            web_root: None,
            seed: 0x7469_636b_7769_7265,
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`Config`].
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
    /// A value out of its range.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Inputs per second one player may send (`max_inputs_per_sec`, else twice the tick rate).
    pub fn input_rate(&self) -> u32 {
        self.max_inputs_per_sec
            .unwrap_or(2 * u32::from(self.tick_rate))
    }

    /// The tick period.
    pub fn tick_period(&self) -> Duration {
        Duration::from_nanos(1_000_000_000 / u64::from(self.tick_rate))
    }

    /// Checks ranges that the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if !(1..=1000).contains(&self.tick_rate) {
            return bad("tick_rate must be 1..=1000");
        }
        if self.send_rate == 0 || self.send_rate > self.tick_rate {
            return bad("send_rate must be 1..=tick_rate");
        }
        if self.room_capacity == 0 || self.max_rooms == 0 || self.max_connections == 0 {
            return bad("room_capacity, max_rooms and max_connections must be at least 1");
        }
        if self.history_sends < 2 || self.input_queue == 0 || self.max_inputs_per_tick == 0 {
            return bad("history_sends must be ≥ 2; input_queue and max_inputs_per_tick ≥ 1");
        }
        if self.max_message_bytes < 64
            || self.max_message_bytes > game_core::codec::CLIENT_MSG_LIMIT
        {
            return bad("max_message_bytes must be 64..=1024");
        }
        if self.handshake_timeout_ms == 0
            || self.write_timeout_secs == 0
            || self.idle_timeout_secs == 0
        {
            return bad("timeouts must be positive");
        }
        if self.max_connections_per_ip == 0 {
            return bad("max_connections_per_ip must be at least 1");
        }
        if self.header_read_timeout_secs == 0 || self.body_read_timeout_secs == 0 {
            return bad("header_read_timeout_secs and body_read_timeout_secs must be positive");
        }
        if self
            .max_inputs_per_sec
            .is_some_and(|r| r < u32::from(self.tick_rate))
        {
            return bad("max_inputs_per_sec must be at least tick_rate");
        }
        if self.room_creates_per_min == 0 || self.joins_per_min == 0 {
            return bad("room_creates_per_min and joins_per_min must be at least 1");
        }
        if let Some(o) = self
            .allowed_origins
            .iter()
            .find(|o| o.as_str() != "*" && !(o.starts_with("http://") || o.starts_with("https://")))
        {
            return Err(ConfigError::Invalid(format!(
                "allowed_origins: {o:?} is not \"*\" or an http(s)://host[:port] origin"
            )));
        }
        if self.sse_keepalive_secs == 0 || self.sse_retry_ms == 0 {
            return bad("sse_keepalive_secs and sse_retry_ms must be positive");
        }
        if self.ping_interval_secs == 0 || self.ping_interval_secs >= self.idle_timeout_secs {
            return bad("ping_interval_secs must be positive and below idle_timeout_secs");
        }
        Ok(())
    }

    /// Where the browser client's files are: `web_root`, else the repository's `web-client/`
    /// (found from where this crate was built, which is what `cargo run` needs).
    pub fn web_root(&self) -> PathBuf {
        self.web_root
            .clone()
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../web-client")))
    }

    /// Reads the arena: the `arena` file if set, else the standard one.
    pub fn load_arena(&self) -> anyhow::Result<game_core::arena::Arena> {
        match &self.arena {
            None => Ok(game_core::arena::Arena::standard()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("reading arena {}: {e}", path.display()))?;
                game_core::arena::Arena::from_toml(&text)
                    .map_err(|e| anyhow::anyhow!("arena {}: {e}", path.display()))
            }
        }
    }
}

/// Command-line flags; each has an environment variable, and every one is optional so that
/// only what is given overrides the file and the defaults.
#[derive(Debug, Default, Parser)]
#[command(
    name = "server",
    version,
    about = "tickwire: an authoritative game server with realtime state sync"
)]
#[allow(missing_docs)] // clap renders the `///` docs as --help; these mirror Config's
pub struct Flags {
    /// TOML file with any of the settings below (names in snake_case).
    #[arg(long, env = "TICKWIRE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TICKWIRE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Simulation ticks per second [default: 60].
    #[arg(long, env = "TICKWIRE_TICK_RATE")]
    pub tick_rate: Option<u16>,
    /// Frames per second to clients [default: 30].
    #[arg(long, env = "TICKWIRE_SEND_RATE")]
    pub send_rate: Option<u16>,
    /// Human players per room [default: 50].
    #[arg(long, env = "TICKWIRE_ROOM_CAPACITY")]
    pub room_capacity: Option<u16>,
    /// Rooms at once [default: 1000].
    #[arg(long, env = "TICKWIRE_MAX_ROOMS")]
    pub max_rooms: Option<usize>,
    /// AI ships per room while humans are fewer [default: 8].
    #[arg(long, env = "TICKWIRE_AI_FILL")]
    pub ai_fill: Option<u16>,
    /// Seconds a dropped player's ship waits for a reconnect [default: 30].
    #[arg(long, env = "TICKWIRE_RECONNECT_GRACE_SECS")]
    pub reconnect_grace_secs: Option<u64>,
    /// Seconds an empty API-created room lives [default: 300].
    #[arg(long, env = "TICKWIRE_ROOM_IDLE_SECS")]
    pub room_idle_secs: Option<u64>,
    /// Sends kept per room for resume [default: 64].
    #[arg(long, env = "TICKWIRE_HISTORY_SENDS")]
    pub history_sends: Option<usize>,
    /// Milliseconds to receive a Hello [default: 5000].
    #[arg(long, env = "TICKWIRE_HANDSHAKE_TIMEOUT_MS")]
    pub handshake_timeout_ms: Option<u64>,
    /// Seconds a frame may take to write [default: 20].
    #[arg(long, env = "TICKWIRE_WRITE_TIMEOUT_SECS")]
    pub write_timeout_secs: Option<u64>,
    /// Seconds of client silence before a drop [default: 60].
    #[arg(long, env = "TICKWIRE_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds between WebSocket pings [default: 5].
    #[arg(long, env = "TICKWIRE_PING_INTERVAL_SECS")]
    pub ping_interval_secs: Option<u64>,
    /// Longest long-poll hold in seconds [default: 30].
    #[arg(long, env = "TICKWIRE_LONG_POLL_MAX_WAIT_SECS")]
    pub long_poll_max_wait_secs: Option<u64>,
    /// Seconds between SSE keep-alive comments [default: 15].
    #[arg(long, env = "TICKWIRE_SSE_KEEPALIVE_SECS")]
    pub sse_keepalive_secs: Option<u64>,
    /// SSE retry hint in milliseconds [default: 2000].
    #[arg(long, env = "TICKWIRE_SSE_RETRY_MS")]
    pub sse_retry_ms: Option<u64>,
    /// Largest client message in bytes [default: 1024].
    #[arg(long, env = "TICKWIRE_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Open connections in total [default: 50000].
    #[arg(long, env = "TICKWIRE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections from one IP [default: 256].
    #[arg(long, env = "TICKWIRE_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Seconds to send request headers; idle keep-alive limit [default: 10].
    #[arg(long, env = "TICKWIRE_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds to send a request body [default: 10].
    #[arg(long, env = "TICKWIRE_BODY_READ_TIMEOUT_SECS")]
    pub body_read_timeout_secs: Option<u64>,
    /// Allowed browser origins, comma-separated; "*" for any [default: the server's own].
    #[arg(long, env = "TICKWIRE_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Inputs per second per player [default: twice the tick rate].
    #[arg(long, env = "TICKWIRE_MAX_INPUTS_PER_SEC")]
    pub max_inputs_per_sec: Option<u32>,
    /// Rooms one IP may create per minute [default: 10].
    #[arg(long, env = "TICKWIRE_ROOM_CREATES_PER_MIN")]
    pub room_creates_per_min: Option<u32>,
    /// Player joins and resumes per IP per minute [default: 120].
    #[arg(long, env = "TICKWIRE_JOINS_PER_MIN")]
    pub joins_per_min: Option<u32>,
    /// Longest chat line in characters [default: 200].
    #[arg(long, env = "TICKWIRE_CHAT_MAX_CHARS")]
    pub chat_max_chars: Option<usize>,
    /// Chat lines per player per 10 seconds [default: 5].
    #[arg(long, env = "TICKWIRE_CHAT_PER_10S")]
    pub chat_per_10s: Option<u32>,
    /// Kernel send buffer per connection in bytes, 0 = autotune [default: 65536].
    #[arg(long, env = "TICKWIRE_TCP_SEND_BUFFER")]
    pub tcp_send_buffer: Option<usize>,
    /// The listen backlog: connections waiting to be accepted [default: 4096].
    #[arg(long, env = "TICKWIRE_LISTEN_BACKLOG")]
    pub listen_backlog: Option<u32>,
    /// Queued inputs per player [default: 64].
    #[arg(long, env = "TICKWIRE_INPUT_QUEUE")]
    pub input_queue: Option<usize>,
    /// Inputs applied per player per tick [default: 8].
    #[arg(long, env = "TICKWIRE_MAX_INPUTS_PER_TICK")]
    pub max_inputs_per_tick: Option<usize>,
    /// Seconds to drain on shutdown [default: 5].
    #[arg(long, env = "TICKWIRE_SHUTDOWN_DEADLINE_SECS")]
    pub shutdown_deadline_secs: Option<u64>,
    /// Arena TOML file [default: the standard arena].
    #[arg(long, env = "TICKWIRE_ARENA")]
    pub arena: Option<PathBuf>,
    /// Folder of the browser client [default: the repository's web-client/].
    #[arg(long, env = "TICKWIRE_WEB_ROOT")]
    pub web_root: Option<PathBuf>,
    /// World seed.
    #[arg(long, env = "TICKWIRE_SEED")]
    pub seed: Option<u64>,
    /// Log one JSON object per line instead of text (filter with RUST_LOG, default info).
    #[arg(long, env = "TICKWIRE_LOG_JSON")]
    pub log_json: bool,
}

impl Flags {
    /// The configuration these flags describe: defaults, then the file, then the flags.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut c = match &self.config {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
        };
        macro_rules! overlay {
            ($($field:ident),* $(,)?) => {
                $(if let Some(v) = &self.$field { c.$field = v.clone(); })*
            };
        }
        overlay!(
            listen,
            tick_rate,
            send_rate,
            room_capacity,
            max_rooms,
            ai_fill,
            reconnect_grace_secs,
            room_idle_secs,
            history_sends,
            handshake_timeout_ms,
            write_timeout_secs,
            idle_timeout_secs,
            ping_interval_secs,
            long_poll_max_wait_secs,
            sse_keepalive_secs,
            sse_retry_ms,
            max_message_bytes,
            max_connections,
            max_connections_per_ip,
            header_read_timeout_secs,
            body_read_timeout_secs,
            allowed_origins,
            room_creates_per_min,
            joins_per_min,
            chat_max_chars,
            chat_per_10s,
            tcp_send_buffer,
            listen_backlog,
            input_queue,
            max_inputs_per_tick,
            shutdown_deadline_secs,
            seed,
        );
        if self.arena.is_some() {
            c.arena = self.arena.clone();
        }
        if self.max_inputs_per_sec.is_some() {
            c.max_inputs_per_sec = self.max_inputs_per_sec;
        }
        if self.web_root.is_some() {
            c.web_root = self.web_root.clone();
        }
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_flags_override_the_file() {
        assert!(Config::default().validate().is_ok());
        let dir = std::env::temp_dir().join(format!("tickwire-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("server.toml");
        std::fs::write(&path, "tick_rate = 30\nsend_rate = 10\nai_fill = 2\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let flags = Flags {
            config: Some(path.clone()),
            send_rate: Some(15),
            ..Flags::default()
        };
        let c = flags.resolve().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (c.tick_rate, c.send_rate, c.ai_fill, c.room_capacity),
            (30, 15, 2, 50)
        );
        std::fs::write(&path, "tick_rat = 30\n").unwrap_or_else(|e| panic!("{e}"));
        let err = Flags {
            config: Some(path),
            ..Flags::default()
        }
        .resolve();
        assert!(matches!(err, Err(ConfigError::Parse { .. })), "{err:?}");
        let err = Flags {
            send_rate: Some(120),
            ..Flags::default()
        }
        .resolve();
        assert!(matches!(err, Err(ConfigError::Invalid(_))));
    }
}
