//! Server-wide counters and the Prometheus text rendering of `GET /metrics`.
//!
//! Plain atomics, updated from the room tasks and connection tasks without locks, read only when
//! something scrapes. Process CPU and resident memory come from `/proc/self` at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

pub use game_core::protocol::{Role, Transport};

/// Why an input or a connection was refused; one counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The player's input queue was full.
    InputQueueFull,
    /// A sequence number not above the last applied one.
    InputStale,
    /// An input value out of range (clamped, still counted).
    InputOutOfRange,
    /// Bytes that do not decode.
    Malformed,
    /// A message over the size limit.
    TooBig,
    /// A spectator tried to send input.
    SpectatorInput,
    /// No `Hello` in time.
    HandshakeTimeout,
    /// Another protocol version.
    VersionMismatch,
    /// Unknown or expired session token.
    BadToken,
    /// The room had no space.
    RoomFull,
    /// The server's connection limit.
    TooManyConnections,
    /// A client that stayed silent past the idle timeout.
    IdleTimeout,
    /// A client that did not take a frame within the write timeout.
    WriteTimeout,
    /// `max_connections_per_ip` connections were already open from the address.
    TooManyFromIp,
    /// A browser `Origin` not in `allowed_origins`.
    OriginNotAllowed,
    /// An input over the player's rate, dropped.
    InputRate,
    /// A session closed for flooding inputs.
    InputFlood,
    /// Room creations or joins over the per-IP rate.
    RateLimited,
    /// Request headers or body not sent within their timeout (slowloris). A keep-alive
    /// connection closed while quiet between requests is not one.
    SlowRequest,
    /// A chat line over the length or rate limit.
    Chat,
}

impl Rejection {
    const ALL: [Rejection; 20] = [
        Self::InputQueueFull,
        Self::InputStale,
        Self::InputOutOfRange,
        Self::Malformed,
        Self::TooBig,
        Self::SpectatorInput,
        Self::HandshakeTimeout,
        Self::VersionMismatch,
        Self::BadToken,
        Self::RoomFull,
        Self::TooManyConnections,
        Self::IdleTimeout,
        Self::WriteTimeout,
        Self::TooManyFromIp,
        Self::OriginNotAllowed,
        Self::InputRate,
        Self::InputFlood,
        Self::RateLimited,
        Self::SlowRequest,
        Self::Chat,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::InputQueueFull => "input_queue_full",
            Self::InputStale => "input_stale",
            Self::InputOutOfRange => "input_out_of_range",
            Self::Malformed => "malformed",
            Self::TooBig => "too_big",
            Self::SpectatorInput => "spectator_input",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::VersionMismatch => "version_mismatch",
            Self::BadToken => "bad_token",
            Self::RoomFull => "room_full",
            Self::TooManyConnections => "too_many_connections",
            Self::IdleTimeout => "idle_timeout",
            Self::WriteTimeout => "write_timeout",
            Self::TooManyFromIp => "too_many_from_ip",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::InputRate => "input_rate",
            Self::InputFlood => "input_flood",
            Self::RateLimited => "rate_limited",
            Self::SlowRequest => "slow_request",
            Self::Chat => "chat",
        }
    }
}

/// Upper bounds of the tick duration histogram, in microseconds.
pub const TICK_BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1000, 2000, 4000, 8000, 16_667, 33_333, 66_667, 250_000,
];

/// Tick durations: a fixed-bucket histogram (for `/metrics`), their sum and the overruns.
/// The server keeps one in total and one per room.
#[derive(Debug, Default)]
pub struct TickHistogram {
    buckets: [AtomicU64; TICK_BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
    overruns: AtomicU64,
}

impl TickHistogram {
    /// Records one tick's duration; a tick longer than its period is an overrun.
    pub fn record(&self, took: std::time::Duration, period: std::time::Duration) {
        let us = took.as_micros().min(u128::from(u64::MAX)) as u64;
        if let Some(i) = TICK_BUCKETS_US.iter().position(|&b| us <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        if took > period {
            self.overruns.fetch_add(1, Relaxed);
        }
    }

    /// Ticks per bucket (not cumulative) of [`TICK_BUCKETS_US`].
    pub fn buckets(&self) -> [u64; TICK_BUCKETS_US.len()] {
        std::array::from_fn(|i| self.buckets[i].load(Relaxed))
    }

    /// Ticks recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// Sum of all tick durations, microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Relaxed)
    }

    /// Ticks longer than their period.
    pub fn overruns(&self) -> u64 {
        self.overruns.load(Relaxed)
    }
}

/// The `q` quantile (0..=1) of ticks counted per bucket of [`TICK_BUCKETS_US`] (e.g. the
/// difference of two [`TickHistogram::buckets`] readings), as that bucket's upper bound in
/// microseconds; `None` when no tick was counted. Ticks past the last bucket are not counted.
pub fn tick_quantile_us(buckets: &[u64; TICK_BUCKETS_US.len()], q: f64) -> Option<u64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (n, bound) in buckets.iter().zip(TICK_BUCKETS_US) {
        seen += n;
        if seen >= rank {
            return Some(bound);
        }
    }
    TICK_BUCKETS_US.last().copied()
}

/// Every counter the server keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Every room's ticks.
    pub ticks: TickHistogram,
    ticks_dropped: AtomicU64,
    connections: [[AtomicI64; 2]; 5],
    shared: [AtomicI64; 5],
    frames_out: [AtomicU64; 5],
    bytes_out: [AtomicU64; 5],
    keyframes_out: AtomicU64,
    inputs_in: AtomicU64,
    rejections: [AtomicU64; Rejection::ALL.len()],
    /// Per reason, the second (since `born`) of its last log line.
    rejection_logged: [AtomicU64; Rejection::ALL.len()],
    born: Born,
    room_panics: AtomicU64,
}

/// When the counters started; the clock of the rate-limited rejection log.
#[derive(Debug)]
struct Born(std::time::Instant);

impl Default for Born {
    fn default() -> Self {
        Self(std::time::Instant::now())
    }
}

impl Metrics {
    /// Records one tick's duration; a tick longer than its period is an overrun.
    pub fn tick(&self, took: std::time::Duration, period: std::time::Duration) {
        self.ticks.record(took, period);
    }

    /// Counts ticks the fixed-step clock dropped because the room fell too far behind.
    pub fn ticks_dropped(&self, n: u64) {
        self.ticks_dropped.fetch_add(n, Relaxed);
    }

    /// Counts a connection opening (`+1`) or closing (`-1`).
    pub fn connection(&self, t: Transport, r: Role, delta: i64) {
        self.connections[t as usize][r as usize].fetch_add(delta, Relaxed);
    }

    /// Open connections of one kind.
    pub fn connections(&self, t: Transport, r: Role) -> i64 {
        self.connections[t as usize][r as usize].load(Relaxed)
    }

    /// Counts a frame sent.
    pub fn frame_out(&self, t: Transport, bytes: usize, keyframe: bool) {
        self.frames_out[t as usize].fetch_add(1, Relaxed);
        self.bytes_out[t as usize].fetch_add(bytes as u64, Relaxed);
        if keyframe {
            self.keyframes_out.fetch_add(1, Relaxed);
        }
    }

    /// Counts connections joining (`1`) or leaving (`-1`) a room's shared writer.
    pub fn shared(&self, t: Transport, delta: i64) {
        self.shared[t as usize].fetch_add(delta, Relaxed);
    }

    /// Connections over `t` a shared writer serves now.
    pub fn shared_now(&self, t: Transport) -> i64 {
        self.shared[t as usize].load(Relaxed)
    }

    /// Counts the same frame of `bytes` sent to `n` clients.
    pub fn frames_out_n(&self, t: Transport, n: usize, bytes: usize, keyframe: bool) {
        self.frames_out_bytes(t, n, n * bytes, keyframe);
    }

    /// Counts `n` frames sent to as many clients, `bytes` in all.
    pub fn frames_out_bytes(&self, t: Transport, n: usize, bytes: usize, keyframe: bool) {
        self.frames_out[t as usize].fetch_add(n as u64, Relaxed);
        self.bytes_out[t as usize].fetch_add(bytes as u64, Relaxed);
        if keyframe {
            self.keyframes_out.fetch_add(n as u64, Relaxed);
        }
    }

    /// Counts bytes sent that are not frames (welcome, pongs, close).
    pub fn bytes_out(&self, t: Transport, bytes: usize) {
        self.bytes_out[t as usize].fetch_add(bytes as u64, Relaxed);
    }

    /// Counts an input accepted into a player's queue.
    pub fn input_in(&self) {
        self.inputs_in.fetch_add(1, Relaxed);
    }

    /// Counts a rejection.
    /// Frames sent so far, by transport (in [`Transport::ALL`] order).
    pub fn frames_out(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.frames_out[i].load(Relaxed))
    }

    /// Bytes sent so far, by transport (in [`Transport::ALL`] order).
    pub fn bytes_out_total(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.bytes_out[i].load(Relaxed))
    }

    /// Inputs accepted so far.
    pub fn inputs_in(&self) -> u64 {
        self.inputs_in.load(Relaxed)
    }

    /// Every rejection reason with its count so far.
    pub fn rejection_counts(&self) -> Vec<(&'static str, u64)> {
        Rejection::ALL
            .iter()
            .map(|&r| (r.as_str(), self.rejections(r)))
            .collect()
    }

    /// Ticks dropped so far.
    pub fn dropped_ticks(&self) -> u64 {
        self.ticks_dropped.load(Relaxed)
    }

    /// Room tasks that panicked so far.
    pub fn room_panics(&self) -> u64 {
        self.room_panics.load(Relaxed)
    }

    /// Counts a rejection, and logs it — at most one line per reason per second, with the
    /// running total, so a flood cannot flood the log too.
    pub fn reject(&self, why: Rejection) {
        let total = self.rejections[why as usize].fetch_add(1, Relaxed) + 1;
        // Second 0 is reserved for "never logged".
        let now = self.born.0.elapsed().as_secs() + 1;
        let last = &self.rejection_logged[why as usize];
        let prev = last.load(Relaxed);
        if prev != now && last.compare_exchange(prev, now, Relaxed, Relaxed).is_ok() {
            tracing::info!(
                reason = why.as_str(),
                total,
                "rejected (one line per reason per second)"
            );
        }
    }

    /// Rejections of one kind so far.
    pub fn rejections(&self, why: Rejection) -> u64 {
        self.rejections[why as usize].load(Relaxed)
    }

    /// Counts a room task that panicked.
    pub fn room_panic(&self) {
        self.room_panics.fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition of every counter, plus `rooms`, the open TCP connections
    /// (`sockets`) and process figures.
    pub fn render(&self, rooms: usize, sockets: usize) -> String {
        let mut out = String::with_capacity(4096);
        let w = &mut out;
        metric(w, "tickwire_rooms", "gauge", "Rooms open.");
        let _ = writeln!(w, "tickwire_rooms {rooms}");
        metric(
            w,
            "tickwire_tcp_connections",
            "gauge",
            "Open TCP connections the server admitted, idle keep-alive and upgraded ones included (tickwire_connections counts clients by transport and role).",
        );
        let _ = writeln!(w, "tickwire_tcp_connections {sockets}");

        metric(
            w,
            "tickwire_tick_duration_seconds",
            "histogram",
            "Time to run one simulation tick.",
        );
        let mut cumulative = 0;
        for (n, b) in self.ticks.buckets().iter().zip(TICK_BUCKETS_US.iter()) {
            cumulative += n;
            let _ = writeln!(
                w,
                "tickwire_tick_duration_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *b as f64 / 1e6
            );
        }
        let count = self.ticks.count();
        let _ = writeln!(
            w,
            "tickwire_tick_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            w,
            "tickwire_tick_duration_seconds_sum {}",
            self.ticks.sum_us() as f64 / 1e6
        );
        let _ = writeln!(w, "tickwire_tick_duration_seconds_count {count}");

        metric(
            w,
            "tickwire_tick_overruns_total",
            "counter",
            "Ticks that took longer than the tick period.",
        );
        let _ = writeln!(w, "tickwire_tick_overruns_total {}", self.ticks.overruns());
        metric(
            w,
            "tickwire_ticks_dropped_total",
            "counter",
            "Ticks skipped because a room fell too far behind.",
        );
        let _ = writeln!(
            w,
            "tickwire_ticks_dropped_total {}",
            self.ticks_dropped.load(Relaxed)
        );

        metric(
            w,
            "tickwire_connections",
            "gauge",
            "Open connections by transport and role.",
        );
        for t in Transport::ALL {
            for r in Role::ALL {
                let n = self.connections(t, r);
                let _ = writeln!(
                    w,
                    "tickwire_connections{{transport=\"{}\",role=\"{}\"}} {n}",
                    t.as_str(),
                    r.as_str()
                );
            }
        }
        metric(
            w,
            "tickwire_shared_connections",
            "gauge",
            "Connections whose frames their room's shared writer sends, by transport (the others are sent each by its own task).",
        );
        for t in [Transport::Ws, Transport::Sse, Transport::Stream] {
            let _ = writeln!(
                w,
                "tickwire_shared_connections{{transport=\"{}\"}} {}",
                t.as_str(),
                self.shared_now(t)
            );
        }
        per_transport(
            w,
            "tickwire_frames_out_total",
            "Frames sent, by transport.",
            &self.frames_out,
        );
        per_transport(
            w,
            "tickwire_bytes_out_total",
            "Bytes of messages sent, by transport.",
            &self.bytes_out,
        );
        metric(
            w,
            "tickwire_keyframes_out_total",
            "counter",
            "Frames sent as keyframes.",
        );
        let _ = writeln!(
            w,
            "tickwire_keyframes_out_total {}",
            self.keyframes_out.load(Relaxed)
        );
        metric(
            w,
            "tickwire_inputs_total",
            "counter",
            "Inputs accepted into player queues.",
        );
        let _ = writeln!(w, "tickwire_inputs_total {}", self.inputs_in.load(Relaxed));
        metric(
            w,
            "tickwire_rejections_total",
            "counter",
            "Inputs, messages and connections refused, by reason.",
        );
        for r in Rejection::ALL {
            let _ = writeln!(
                w,
                "tickwire_rejections_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.rejections(r)
            );
        }
        metric(
            w,
            "tickwire_room_panics_total",
            "counter",
            "Room tasks that panicked and were closed.",
        );
        let _ = writeln!(
            w,
            "tickwire_room_panics_total {}",
            self.room_panics.load(Relaxed)
        );

        let process = ProcessStats::read();
        if let Some(cpu) = process.cpu_seconds {
            metric(
                w,
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time spent, in seconds.",
            );
            let _ = writeln!(w, "process_cpu_seconds_total {cpu}");
        }
        // The split of the same reading: what our code ran (user) and what the kernel ran for
        // us (system: syscalls, and on loopback the receiver's TCP input inside our send()).
        if let Some(user) = process.cpu_user_seconds {
            metric(
                w,
                "process_cpu_user_seconds_total",
                "counter",
                "User CPU time spent, in seconds.",
            );
            let _ = writeln!(w, "process_cpu_user_seconds_total {user}");
        }
        if let Some(system) = process.cpu_system_seconds {
            metric(
                w,
                "process_cpu_system_seconds_total",
                "counter",
                "System (kernel) CPU time spent, in seconds.",
            );
            let _ = writeln!(w, "process_cpu_system_seconds_total {system}");
        }
        if let Some(rss) = process.resident_bytes {
            metric(
                w,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
            );
            let _ = writeln!(w, "process_resident_memory_bytes {rss}");
        }
        out
    }
}

/// A counter with one sample per transport.
fn per_transport(w: &mut String, name: &str, help: &str, counters: &[AtomicU64; 5]) {
    metric(w, name, "counter", help);
    for t in Transport::ALL {
        let n = counters[t as usize].load(Relaxed);
        let _ = writeln!(w, "{name}{{transport=\"{}\"}} {n}", t.as_str());
    }
}

fn metric(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// CPU time and resident memory of this process, where `/proc` tells them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    /// User + system CPU seconds.
    pub cpu_seconds: Option<f64>,
    /// User CPU seconds (utime): the process's own code.
    pub cpu_user_seconds: Option<f64>,
    /// System CPU seconds (stime): the kernel working on the process's behalf.
    pub cpu_system_seconds: Option<f64>,
    /// Resident set size in bytes.
    pub resident_bytes: Option<u64>,
}

impl ProcessStats {
    /// Reads `/proc/self/stat` and `/proc/self/status` (Linux); `None` fields elsewhere.
    pub fn read() -> Self {
        // Clock ticks per second: 100 on every Linux platform Rust targets (USER_HZ).
        const CLK_TCK: f64 = 100.0;
        let ticks = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                // Fields after the parenthesised command name; utime and stime are 14th and 15th.
                let rest = &s[s.rfind(')')? + 2..];
                let f: Vec<&str> = rest.split_whitespace().collect();
                Some((
                    f.get(11)?.parse::<u64>().ok()?,
                    f.get(12)?.parse::<u64>().ok()?,
                ))
            });
        let seconds = |t: u64| t as f64 / CLK_TCK;
        let resident_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024)
            });
        Self {
            cpu_seconds: ticks.map(|(user, system)| seconds(user + system)),
            cpu_user_seconds: ticks.map(|(user, _)| seconds(user)),
            cpu_system_seconds: ticks.map(|(_, system)| seconds(system)),
            resident_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.tick(Duration::from_micros(300), Duration::from_millis(16));
        m.tick(Duration::from_millis(20), Duration::from_millis(16));
        m.connection(Transport::Ws, Role::Player, 1);
        m.frame_out(Transport::Ws, 100, true);
        m.reject(Rejection::BadToken);
        let text = m.render(3, 5);
        for line in [
            "tickwire_rooms 3",
            "tickwire_tcp_connections 5",
            "tickwire_tick_duration_seconds_bucket{le=\"0.0005\"} 1",
            "tickwire_tick_duration_seconds_bucket{le=\"+Inf\"} 2",
            "tickwire_tick_duration_seconds_count 2",
            "tickwire_tick_overruns_total 1",
            "tickwire_connections{transport=\"ws\",role=\"player\"} 1",
            "tickwire_shared_connections{transport=\"sse\"} 0",
            "tickwire_frames_out_total{transport=\"ws\"} 1",
            "tickwire_bytes_out_total{transport=\"ws\"} 100",
            "tickwire_rejections_total{reason=\"bad_token\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.contains("process_resident_memory_bytes "));
        for name in [
            "process_cpu_seconds_total ",
            "process_cpu_user_seconds_total ",
            "process_cpu_system_seconds_total ",
        ] {
            assert!(text.contains(name), "missing {name:?} in\n{text}");
        }
    }
}
