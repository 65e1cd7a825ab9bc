//! bots: the one Rust client of tickwire, used by tests, bots and the load tool.
//!
//! There is one way to be a client (STYLE §8): connect over WebSocket, keep a
//! [`Replica`](game_core::replica::Replica) proven by every frame's checksum, send inputs,
//! measure. The pieces, from the wire up:
//!
//! - [`endpoint`]: the room's WebSocket URL from a server's `http://` base URL.
//! - [`ws`]: [`connect`] (TCP + upgrade + `Hello`/`Welcome`, all bounded in time) and the two
//!   halves of a connection, [`Writer`] and [`Reader`].
//! - [`ledger`]: what was sent and not yet answered (input seqs, pings), bounded.
//! - [`stats`]: counters and latency samples a client keeps across connections.
//! - [`error`]: [`ClientError`], with the server's close codes as values, and what to do
//!   about each error ([`Recovery`]).
//! - [`bot`]: [`Bot`], a player (or spectator) flown by the AI pilot, for tests and load.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bots::ClientError> {
//! use bots::{Bot, BotConfig, ConnectOptions, Role};
//! let opts = ConnectOptions::new("http://127.0.0.1:8080", "default", Role::Player)?;
//! let mut config = BotConfig::new(opts);
//! config.duration = Some(std::time::Duration::from_secs(10));
//! let report = Bot::new(config).run(std::future::pending()).await?;
//! assert_eq!(report.stats.desyncs, 0);
//! # Ok(()) }
//! ```

pub mod bot;
pub mod endpoint;
pub mod error;
pub mod ledger;
pub mod stats;
pub mod ws;

pub use bot::{Bot, BotConfig, BotReport};
pub use endpoint::{Role, room_ws_url};
pub use error::{ClientError, CloseInfo, Recovery};
pub use stats::{Samples, Stats, Summary};
pub use ws::{
    ConnectOptions, Connection, Event, FrameEvent, Reader, Resume, Welcome, Writer, connect,
};
