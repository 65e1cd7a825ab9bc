//! The limits a hostile client runs into before it can cost anyone else anything.
//!
//! - [`Gate`]: open connections in total and per IP address, checked at accept.
//! - [`PerIp`]: a token bucket per IP address for costly requests (creating rooms, joining).
//! - [`InputBudget`]: one player's inputs per second; a flood closes the session.
//! - [`Budget`]: a plain token bucket (one player's chat lines).
//! - [`origin_allowed`]: the browser `Origin` allowlist.
//!
//! Every table here is bounded: the gate by the connection limit, the per-IP buckets by
//! [`PER_IP_KEYS`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Most IP addresses a [`PerIp`] limiter remembers; past it, addresses whose bucket has
/// refilled are forgotten, and if none has, new addresses are refused until some refill.
pub const PER_IP_KEYS: usize = 65_536;

/// Why the gate refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` are open.
    Total,
    /// `max_connections_per_ip` are open from this address.
    PerIp,
}

/// Counts open connections, in total and per IP address.
pub struct Gate {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Gate {
    /// A gate that admits `max_total` connections, `max_per_ip` from any one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, HashMap<IpAddr, usize>)> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `ip`; the [`Ticket`] gives its place back when dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let ip = ip.to_canonical();
        let mut open = self.lock();
        if open.0 >= self.max_total {
            return Err(Refusal::Total);
        }
        let from_ip = open.1.entry(ip).or_insert(0);
        if *from_ip >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *from_ip += 1;
        open.0 += 1;
        Ok(Ticket {
            gate: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().0
    }
}

/// One admitted connection.
pub struct Ticket {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.gate.lock();
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

/// A token bucket: `capacity` tokens, refilled at `per_sec`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Self {
        Self {
            tokens: capacity,
            at: now,
        }
    }

    /// Refills for the time since the last call, up to `capacity`.
    fn refill(&mut self, capacity: f64, per_sec: f64, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * per_sec).min(capacity);
        self.at = now;
    }
}

/// A rate per IP address: `per_min` actions a minute, all of them usable at once.
pub struct PerIp {
    per_min: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl PerIp {
    /// A limiter allowing `per_min` actions per minute from each address.
    pub fn new(per_min: u32) -> Self {
        Self {
            per_min: f64::from(per_min),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one action's token for `ip`; `false` when it has none left.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let (cap, rate, now) = (self.per_min, self.per_min / 60.0, Instant::now());
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= PER_IP_KEYS && !map.contains_key(&ip.to_canonical()) {
            map.retain(|_, b| {
                b.refill(cap, rate, now);
                b.tokens < cap
            });
            if map.len() >= PER_IP_KEYS {
                return false;
            }
        }
        let b = map
            .entry(ip.to_canonical())
            .or_insert_with(|| Bucket::full(cap, now));
        b.refill(cap, rate, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A plain token bucket: `burst` actions at once, refilled at `per_sec` (chat lines).
#[derive(Debug)]
pub struct Budget {
    burst: f64,
    per_sec: f64,
    bucket: Bucket,
}

impl Budget {
    /// `burst` actions at once, `per_sec` more each second.
    pub fn new(burst: u32, per_sec: f64) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            per_sec,
            bucket: Bucket::full(burst, Instant::now()),
        }
    }

    /// Takes one token; `false` when there is none.
    pub fn take(&mut self) -> bool {
        self.bucket.refill(self.burst, self.per_sec, Instant::now());
        if self.bucket.tokens >= 1.0 {
            self.bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What to do with one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate.
    Accept,
    /// Over the rate: drop it (and count it).
    Drop,
    /// A second's worth over the rate: close the session.
    Flood,
}

/// One player's input rate: `rate` inputs per second with a second's burst. Inputs over the
/// rate are dropped; each drop is owed back, and a client that owes more than a second's worth
/// is flooding.
#[derive(Debug)]
pub struct InputBudget {
    rate: f64,
    bucket: Bucket,
}

impl InputBudget {
    /// A budget of `rate` inputs per second.
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            rate,
            bucket: Bucket::full(rate, Instant::now()),
        }
    }

    /// Spends one input.
    pub fn spend(&mut self) -> Verdict {
        self.spend_at(Instant::now())
    }

    fn spend_at(&mut self, now: Instant) -> Verdict {
        self.bucket.refill(self.rate, self.rate, now);
        self.bucket.tokens -= 1.0;
        if self.bucket.tokens >= 0.0 {
            Verdict::Accept
        } else if self.bucket.tokens >= -self.rate {
            Verdict::Drop
        } else {
            Verdict::Flood
        }
    }

    /// The rate, inputs per second.
    pub fn rate(&self) -> u32 {
        self.rate as u32
    }
}

/// Whether a request with `Origin: origin` may call the API: the server's own origin (whose
/// host is the request's `Host`) always may; others when `allowed` holds `"*"` or the origin
/// itself (`scheme://host[:port]`, compared without regard to ASCII case).
pub fn origin_allowed(allowed: &[String], origin: &str, host: Option<&str>) -> bool {
    let own = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .zip(host)
        .is_some_and(|(h, host)| h.eq_ignore_ascii_case(host));
    own || allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_gate_counts_per_ip_and_in_total_and_gives_places_back() {
        let gate = Gate::new(3, 2);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let t1 = gate.admit(a);
        let t2 = gate.admit(a);
        assert!(t1.is_ok() && t2.is_ok());
        assert_eq!(gate.admit(a).err(), Some(Refusal::PerIp));
        let t3 = gate.admit(b);
        assert!(t3.is_ok());
        assert_eq!(gate.admit(b).err(), Some(Refusal::Total));
        drop(t1);
        assert_eq!(gate.open(), 2);
        assert!(gate.admit(a).is_ok(), "a place came back");
        // An IPv4-mapped IPv6 address is the same client.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"));
        drop((t2, t3));
        let _x = gate.admit(a);
        let _y = gate.admit(mapped);
        assert_eq!(gate.admit(a).err(), Some(Refusal::PerIp));
    }

    #[test]
    fn per_ip_rates_are_separate_per_address() {
        let limiter = PerIp::new(3);
        let (a, b) = (IpAddr::from([1, 1, 1, 1]), IpAddr::from([2, 2, 2, 2]));
        assert!((0..3).all(|_| limiter.allow(a)));
        assert!(!limiter.allow(a));
        assert!(limiter.allow(b));
    }

    #[test]
    fn input_budget_drops_over_the_rate_then_calls_a_flood() {
        let mut budget = InputBudget::new(10);
        let t0 = Instant::now();
        // A second's burst is fine.
        assert!((0..10).all(|_| budget.spend_at(t0) == Verdict::Accept));
        // Then drops, up to a second's worth owed.
        assert!((0..10).all(|_| budget.spend_at(t0) == Verdict::Drop));
        assert_eq!(budget.spend_at(t0), Verdict::Flood);
        // At the rate, a client that stopped flooding recovers.
        let mut steady = InputBudget::new(10);
        let verdicts: Vec<_> = (0..100)
            .map(|i| steady.spend_at(t0 + Duration::from_millis(100 * i)))
            .collect();
        assert!(verdicts.iter().all(|v| *v == Verdict::Accept));
    }

    #[test]
    fn origins() {
        let none: Vec<String> = Vec::new();
        assert!(origin_allowed(
            &none,
            "http://127.0.0.1:8080",
            Some("127.0.0.1:8080")
        ));
        assert!(origin_allowed(
            &none,
            "https://Game.example",
            Some("game.example")
        ));
        assert!(!origin_allowed(
            &none,
            "http://evil.example",
            Some("127.0.0.1:8080")
        ));
        assert!(!origin_allowed(&none, "null", Some("127.0.0.1:8080")));
        assert!(!origin_allowed(&none, "http://127.0.0.1:8080", None));
        let list = vec!["https://play.example".to_owned()];
        assert!(origin_allowed(
            &list,
            "https://play.example",
            Some("api.example")
        ));
        assert!(origin_allowed(
            &list,
            "https://api.example",
            Some("api.example")
        ));
        assert!(!origin_allowed(
            &list,
            "https://evil.example",
            Some("api.example")
        ));
        assert!(origin_allowed(&["*".to_owned()], "null", None));
    }
}
