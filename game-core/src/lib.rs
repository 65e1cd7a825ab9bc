//! game-core: tickwire's arena game and its wire format.
//!
//! Pure and deterministic: no tokio, no sockets, no wall clock, no file I/O. The server calls
//! [`world::World::step`] and [`world::World::snapshot`]; everything that crosses the network is
//! a [`snapshot::Snapshot`] turned into a [`delta`] and wrapped in a [`protocol`] message by the
//! [`codec`]. Clients rebuild the state with a [`replica::Replica`].
//!
//! - [`arena`]: the map and rules, parsed from TOML text (`assets/arena.toml`).
//! - [`world`]: the simulation (ships, bullets, asteroids, pickups) in `f32` with glam.
//! - [`ai`]: the pilot that flies filler ships and headless bots.
//! - [`clock`]: fixed timestep — elapsed time in, whole ticks out.
//! - [`snapshot`]: the quantized state at a tick, with its checksum.
//! - [`delta`]: the change between two snapshots, as compact bytes.
//! - [`protocol`] and [`codec`]: the messages and their only encoder/decoder.
//! - [`replica`]: client-side state rebuilt from frames, checksum-verified.

pub mod ai;
pub mod arena;
pub mod clock;
pub mod codec;
pub mod delta;
pub mod protocol;
pub mod replica;
pub mod rng;
pub mod snapshot;
mod varint;
pub mod world;

pub use protocol::{ClientMsg, Frame, Input, PROTOCOL_VERSION, ServerMsg, SessionToken};
pub use snapshot::{EntityKind, EntityState, NetId, Snapshot};
