//! Who the clients are: each one's role, transport, room, source address, start time, and
//! whether it verifies every frame or only skims them.
//!
//! Players and spectators are interleaved in start order (so a ramp brings both in evenly),
//! then each role cycles through the transports (`mix`) and the rooms. Verification is
//! sampled: every client verifies with probability `--verify`, and the first client of each
//! role × transport always does, so every kind of stream in the run is proven.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bots::{Role, Transport};
use game_core::rng::Rng;

use super::cli::{Settings, TransportChoice};

/// Connections one source address should carry at most: below the 28,231 ephemeral ports of
/// Linux's default `ip_local_port_range`, with room for HTTP connections that come and go.
pub const CONNECTIONS_PER_SOURCE: usize = 20_000;

/// One client of the run.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// Its place in start order.
    pub index: usize,
    /// Player or spectator.
    pub role: Role,
    /// How it connects.
    pub transport: Transport,
    /// The room it joins.
    pub room: String,
    /// Verifies every frame with a replica (else skims).
    pub verify: bool,
    /// Corrupts one received frame (`--inject-desync`).
    pub inject_desync: bool,
    /// The source address to connect from; `None`: the kernel's choice.
    pub local: Option<IpAddr>,
    /// When it starts, from the start of the run.
    pub start: Duration,
    /// Seed of its pilot, chaos and backoff.
    pub seed: u64,
}

/// Connections a client holds: an HTTP player has its state request and its input posts.
fn connections_of(role: Role, transport: Transport) -> usize {
    match (role, transport) {
        (Role::Player, t) if t != Transport::Ws => 2,
        _ => 1,
    }
}

/// Every client of the run, in start order, with `sources` source addresses.
pub fn clients(s: &Settings, sources: &[IpAddr]) -> Vec<ClientSpec> {
    let total = s.players + s.spectators;
    let mut rng = Rng::new(s.seed ^ 0x706c_616e);
    let mut per_role = [0usize; 2];
    let mut verified_kind = std::collections::HashSet::new();
    let mut injected = false;
    let mut out = Vec::with_capacity(total);
    for index in 0..total {
        // Bresenham: player k of P lands at the k-th of P evenly spaced places among T.
        let is_player = (index + 1) * s.players / total > index * s.players / total;
        let (role, r) = if is_player {
            (Role::Player, 0)
        } else {
            (Role::Spectator, 1)
        };
        let n = per_role[r];
        per_role[r] += 1;
        let transport = match s.transport {
            TransportChoice::One(t) => t,
            TransportChoice::Mix => Transport::ALL[n % Transport::ALL.len()],
        };
        let room = s.rooms[n % s.rooms.len()].clone();
        let first_of_kind = verified_kind.insert((r, transport));
        let verify = first_of_kind || f64::from(rng.next_f32()) < s.verify;
        let inject_desync = s.inject_desync && verify && !injected;
        injected |= inject_desync;
        let start = match s.ramp {
            Some(rate) => Duration::from_secs_f64(index as f64 / rate),
            None => Duration::ZERO,
        };
        let local = (!sources.is_empty()).then(|| sources[index % sources.len()]);
        out.push(ClientSpec {
            index,
            role,
            transport,
            room,
            verify,
            inject_desync,
            local,
            start,
            seed: s.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index as u64,
        });
    }
    out
}

/// How long the ramp takes to start every client.
pub fn ramp_time(s: &Settings) -> Duration {
    match s.ramp {
        Some(rate) if s.players + s.spectators > 1 => {
            Duration::from_secs_f64((s.players + s.spectators - 1) as f64 / rate)
        }
        _ => Duration::ZERO,
    }
}

/// Connections the run will hold at once (plus one each for files and the API client).
pub fn connections(s: &Settings) -> usize {
    let transports = match s.transport {
        TransportChoice::One(t) => vec![t],
        TransportChoice::Mix => Transport::ALL.to_vec(),
    };
    // The worst case over the transports in use.
    let worst = |role, n: usize| {
        n * transports
            .iter()
            .map(|&t| connections_of(role, t))
            .max()
            .unwrap_or(1)
    };
    worst(Role::Player, s.players) + worst(Role::Spectator, s.spectators)
}

/// The source addresses to use: `127.0.0.1…127.0.0.K` when the server is on loopback and more
/// than one is needed (or asked for); none otherwise (the kernel picks, as for any client).
pub fn sources(s: &Settings, server_is_loopback: bool) -> Vec<IpAddr> {
    let wanted = match s.source_ips {
        0 => connections(s).div_ceil(CONNECTIONS_PER_SOURCE),
        k => k,
    };
    if !server_is_loopback || wanted <= 1 {
        return Vec::new();
    }
    let first = u32::from(Ipv4Addr::new(127, 0, 0, 1));
    (0..wanted.min(250) as u32)
        .map(|k| IpAddr::V4(Ipv4Addr::from(first + k)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::cli::Args;
    use clap::Parser;

    fn settings(args: &[&str]) -> anyhow::Result<Settings> {
        let mut all = vec!["bots"];
        all.extend_from_slice(args);
        Args::try_parse_from(all)?.settings()
    }

    #[test]
    fn roles_interleave_and_every_kind_is_verified() -> anyhow::Result<()> {
        let s = settings(&[
            "--players",
            "10",
            "--spectators",
            "20",
            "--transport",
            "mix",
            "--rooms",
            "2",
            "--verify",
            "0",
            "--ramp",
            "10",
        ])?;
        let c = clients(&s, &[]);
        assert_eq!(c.len(), 30);
        assert_eq!(c.iter().filter(|c| c.role == Role::Player).count(), 10);
        // One player in every three places.
        assert!(
            c.chunks(3)
                .all(|w| w.iter().filter(|c| c.role == Role::Player).count() == 1)
        );
        // --verify 0 still verifies the first of each role × transport: 2 × 5.
        assert_eq!(c.iter().filter(|c| c.verify).count(), 10);
        for t in Transport::ALL {
            assert_eq!(c.iter().filter(|c| c.transport == t).count(), 6);
        }
        assert_eq!(c.iter().filter(|c| c.room == "load-2").count(), 15);
        assert_eq!(c[29].start, Duration::from_millis(2900));
        assert_eq!(ramp_time(&s), Duration::from_millis(2900));
        assert!(c.iter().all(|c| !c.inject_desync));
        Ok(())
    }

    #[test]
    fn sources_only_when_needed_and_on_loopback() -> anyhow::Result<()> {
        let small = settings(&["--players", "100"])?;
        assert!(sources(&small, true).is_empty());
        let big = settings(&[
            "--spectators",
            "30000",
            "--players",
            "0",
            "--transport",
            "sse",
        ])?;
        assert_eq!(connections(&big), 30_000);
        let ips = sources(&big, true);
        assert_eq!(ips.len(), 2);
        assert_eq!(ips[1], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(sources(&big, false).is_empty());
        let http_players = settings(&["--players", "15000", "--transport", "poll"])?;
        assert_eq!(connections(&http_players), 30_000);
        let asked = settings(&["--players", "1", "--source-ips", "3"])?;
        let c = clients(&asked, &sources(&asked, true));
        assert_eq!(c[0].local, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        Ok(())
    }

    #[test]
    fn one_verified_client_is_told_to_inject() -> anyhow::Result<()> {
        let s = settings(&["--players", "3", "--spectators", "3", "--inject-desync"])?;
        let c = clients(&s, &[]);
        let injecting: Vec<_> = c.iter().filter(|c| c.inject_desync).collect();
        assert_eq!(injecting.len(), 1);
        assert!(injecting[0].verify);
        Ok(())
    }
}
