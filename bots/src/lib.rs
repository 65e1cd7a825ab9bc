//! bots: the one Rust client of tickwire, used by tests, bots and the load tool.
//!
//! There is one way to be a client (STYLE §8): open a session over any of the five transports,
//! keep a [`Replica`](game_core::replica::Replica) proven by every frame's checksum, send
//! inputs, measure. The pieces, from the wire up:
//!
//! - [`endpoint`]: a room's URLs (WebSocket, HTTP endpoints with their query) from a server's
//!   `http://` base URL. [`options`]: [`ConnectOptions`], [`Resume`], [`Welcome`].
//! - [`ws`]: [`connect`] (TCP + upgrade + `Hello`/`Welcome`, all bounded in time) and the two
//!   halves of a WebSocket connection, [`Writer`] and [`Reader`].
//! - The HTTP transports, over the shared plumbing in `http`: [`sse`] (with its bounded
//!   event-stream [`parser`](sse::parser)), [`stream`] (records reassembled by [`records`]),
//!   both reading their one long answer straight off a socket (`raw_http`),
//!   [`poll`] (long polling and polling), and [`player`] (join and post inputs without
//!   WebSocket).
//! - [`transport`]: [`Transport`] and [`open`], which starts a [`Session`] on any of them: a
//!   [`Follower`] for state and a [`Sender`] for inputs.
//! - [`sink`]: what a follower does with each frame: a [`Replica`](game_core::replica::Replica)
//!   verifies it in full, a [`Skim`] only follows its tick (for load generation at scale).
//! - [`ledger`]: what was sent and not yet answered (input seqs, pings), bounded.
//! - [`stats`]: counters and latency samples a client keeps across connections.
//! - [`error`]: [`ClientError`], with the server's close codes and HTTP error codes as values,
//!   and what to do about each error ([`Recovery`]).
//! - [`bot`]: [`Bot`], a player (or spectator) flown by the AI pilot over any transport,
//!   reconnecting with [`backoff`]; for tests and load.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bots::ClientError> {
//! use bots::{Bot, BotConfig, ConnectOptions, Role, Transport};
//! let opts = ConnectOptions::new("http://127.0.0.1:8080", "default", Role::Player)?;
//! let mut config = BotConfig::new(opts);
//! config.transport = "sse".parse::<Transport>().unwrap_or_default();
//! config.duration = Some(std::time::Duration::from_secs(10));
//! let report = Bot::new(config).run(std::future::pending()).await?;
//! assert_eq!(report.stats.desyncs, 0);
//! # Ok(()) }
//! ```

pub mod backoff;
pub mod bot;
pub mod endpoint;
pub mod error;
mod http;
mod idle;
mod inbound;
pub mod ledger;
pub mod options;
pub mod player;
pub mod poll;
mod raw_http;
pub mod records;
pub mod sink;
pub mod sse;
pub mod stats;
pub mod stream;
pub mod transport;
pub mod ws;

pub use bot::{Bot, BotConfig, BotReport};
pub use endpoint::{Cursor, Role, room_endpoint, room_http_url, room_ws_url};
pub use error::{ApiError, ClientError, CloseInfo, FramingError, Recovery, api_code};
pub use options::{ConnectOptions, Resume, Welcome};
pub use player::HttpInputs;
pub use poll::PollFollower;
pub use sink::{FrameSink, Skim};
pub use sse::SseFollower;
pub use stats::{Samples, Stats, Summary};
pub use stream::StreamFollower;
pub use transport::{Follower, Sender, Session, Transport, UnknownTransport, open};
pub use ws::{Connection, Event, FrameEvent, Reader, Writer, connect};
