//! The server's side of the story: `GET /metrics` scraped before, during and after the run,
//! and what two scrapes say about the time between them.
//!
//! ```text
//! tickwire_tick_duration_seconds_bucket{le="0.0005"} 1234     cumulative histogram buckets
//! tickwire_frames_out_total{transport="sse"} 56789            counters, by label
//! process_cpu_seconds_total 12.34                             process figures
//! process_cpu_user_seconds_total 4.01                         (user + system = the total)
//! process_cpu_system_seconds_total 8.33
//! ```
//!
//! A scrape keeps every sample line as `name{labels}` → value. [`ServerWindow::between`]
//! subtracts counters (frames, bytes, CPU seconds, overruns), reads gauges at the end (RSS,
//! connections), and takes the tick p99 from the difference of the histogram's buckets: the
//! upper bound of the first bucket holding the 99th percentile of the ticks in between. The
//! user/system split of the CPU is optional: a server older than it has only the total, and its
//! windows say `None` for the split rather than a zero.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use bots::Transport;
use serde::Serialize;
use tokio::time::Instant;

/// One scrape: when, and every sample.
#[derive(Clone, Debug)]
pub struct Scrape {
    /// When the answer came.
    pub at: Instant,
    /// `name{labels}` → value.
    pub samples: BTreeMap<String, f64>,
}

/// The largest `/metrics` answer read.
const METRICS_LIMIT: usize = 1 << 20;

/// Fetches and parses `base/metrics`, within `within`.
pub async fn scrape(
    http: &reqwest::Client,
    base: &str,
    within: Duration,
) -> anyhow::Result<Scrape> {
    let url = format!("{}/metrics", base.trim_end_matches('/'));
    let text = tokio::time::timeout(within, async {
        let response = http.get(&url).send().await?.error_for_status()?;
        if response
            .content_length()
            .is_some_and(|n| n > METRICS_LIMIT as u64)
        {
            anyhow::bail!("{url} is over 1 MiB");
        }
        Ok(response.text().await?)
    })
    .await
    .with_context(|| format!("GET {url} timed out"))??;
    Ok(Scrape {
        at: Instant::now(),
        samples: parse(&text),
    })
}

/// The sample lines of a Prometheus text exposition.
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.trim().rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

impl Scrape {
    /// A sample's value (0 when absent).
    pub fn get(&self, key: &str) -> f64 {
        self.samples.get(key).copied().unwrap_or(0.0)
    }

    /// How much counter `key` grew from `self` to `later`; `None` when either scrape lacks it.
    fn growth(&self, later: &Self, key: &str) -> Option<f64> {
        Some((later.samples.get(key)? - self.samples.get(key)?).max(0.0))
    }

    /// The sum of every sample of metric `name` (over its labels).
    pub fn sum(&self, name: &str) -> f64 {
        let prefix = format!("{name}{{");
        self.samples
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) || k.as_str() == name)
            .map(|(_, v)| v)
            .sum()
    }

    /// `tickwire_frames_out_total` and `tickwire_bytes_out_total` of one transport.
    fn per_transport(&self, name: &str, t: Transport) -> f64 {
        self.get(&format!("{name}{{transport=\"{t}\"}}"))
    }

    /// The tick histogram: `(upper bound in seconds, cumulative count)`, `+Inf` last.
    fn tick_buckets(&self) -> Vec<(f64, f64)> {
        let prefix = "tickwire_tick_duration_seconds_bucket{le=\"";
        let mut out: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter_map(|(k, &v)| {
                let le = k.strip_prefix(prefix)?.strip_suffix("\"}")?;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((bound, v))
            })
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }
}

/// What the server did between two scrapes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerWindow {
    /// Seconds between the scrapes.
    pub secs: f64,
    /// Ticks run (all rooms).
    pub ticks: u64,
    /// 99th percentile of tick duration, in ms (a bucket's upper bound; `None`: no ticks, or
    /// beyond the last bucket).
    pub tick_p99_ms: Option<f64>,
    /// Mean tick duration, in ms.
    pub tick_mean_ms: Option<f64>,
    /// Ticks longer than the tick period.
    pub tick_overruns: u64,
    /// Ticks dropped by rooms that fell behind.
    pub ticks_dropped: u64,
    /// CPU seconds the server used.
    pub cpu_seconds: f64,
    /// CPU used / wall time: 1.0 is one core busy.
    pub cpu_cores: f64,
    /// Frames delivered (all transports).
    pub frames_out: u64,
    /// Frames delivered per second.
    pub frames_out_per_sec: f64,
    /// Server CPU per delivered frame, in µs (everything the process did, divided by frames).
    pub cpu_us_per_frame: Option<f64>,
    /// Of `cpu_seconds`, user time: our code (`None`: the server does not export the split).
    pub cpu_user_seconds: Option<f64>,
    /// Of `cpu_seconds`, system time: the kernel on the server's behalf — syscalls, the send
    /// path, and on loopback the receiver's TCP input, which runs inside the sender's send().
    pub cpu_system_seconds: Option<f64>,
    /// `cpu_us_per_frame`'s user part, in µs.
    pub cpu_user_us_per_frame: Option<f64>,
    /// `cpu_us_per_frame`'s system (kernel) part, in µs.
    pub cpu_system_us_per_frame: Option<f64>,
    /// Bytes sent per transport.
    pub bytes_out: BTreeMap<String, u64>,
    /// Frames sent per transport.
    pub frames_out_by_transport: BTreeMap<String, u64>,
    /// Keyframes among the frames.
    pub keyframes_out: u64,
    /// Inputs accepted.
    pub inputs: u64,
    /// Refusals by reason (only those that happened).
    pub rejections: BTreeMap<String, u64>,
    /// Resident memory at the first scrape, in bytes.
    pub rss_start_bytes: u64,
    /// Resident memory at the second scrape, in bytes.
    pub rss_end_bytes: u64,
    /// Open connections (all transports and roles) at the second scrape.
    pub connections_end: u64,
    /// Rooms open at the second scrape.
    pub rooms_end: u64,
}

fn count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

impl ServerWindow {
    /// The window from `a` to `b` (`b` later).
    pub fn between(a: &Scrape, b: &Scrape) -> Self {
        let secs = b.at.saturating_duration_since(a.at).as_secs_f64();
        let d = |key: &str| b.get(key) - a.get(key);
        let ticks = count(d("tickwire_tick_duration_seconds_count"));
        let cpu_seconds = d("process_cpu_seconds_total").max(0.0);
        let cpu_user_seconds = a.growth(b, "process_cpu_user_seconds_total");
        let cpu_system_seconds = a.growth(b, "process_cpu_system_seconds_total");
        let frames_out =
            count(b.sum("tickwire_frames_out_total") - a.sum("tickwire_frames_out_total"));
        let us_per_frame = |cpu: f64| (frames_out > 0).then(|| cpu / frames_out as f64 * 1e6);
        let mut bytes_out = BTreeMap::new();
        let mut frames_by = BTreeMap::new();
        for t in Transport::ALL {
            let bytes = b.per_transport("tickwire_bytes_out_total", t)
                - a.per_transport("tickwire_bytes_out_total", t);
            bytes_out.insert(t.to_string(), count(bytes));
            let frames = b.per_transport("tickwire_frames_out_total", t)
                - a.per_transport("tickwire_frames_out_total", t);
            frames_by.insert(t.to_string(), count(frames));
        }
        let rejections = b
            .samples
            .iter()
            .filter_map(|(k, &v)| {
                let reason = k
                    .strip_prefix("tickwire_rejections_total{reason=\"")?
                    .strip_suffix("\"}")?;
                let n = count(v - a.get(k));
                (n > 0).then(|| (reason.to_owned(), n))
            })
            .collect();
        Self {
            secs,
            ticks,
            tick_p99_ms: tick_quantile(&a.tick_buckets(), &b.tick_buckets(), 0.99).map(|s| s * 1e3),
            tick_mean_ms: (ticks > 0)
                .then(|| d("tickwire_tick_duration_seconds_sum") / ticks as f64 * 1e3),
            tick_overruns: count(d("tickwire_tick_overruns_total")),
            ticks_dropped: count(d("tickwire_ticks_dropped_total")),
            cpu_seconds,
            cpu_cores: if secs > 0.0 { cpu_seconds / secs } else { 0.0 },
            frames_out,
            frames_out_per_sec: if secs > 0.0 {
                frames_out as f64 / secs
            } else {
                0.0
            },
            cpu_us_per_frame: us_per_frame(cpu_seconds),
            cpu_user_seconds,
            cpu_system_seconds,
            cpu_user_us_per_frame: cpu_user_seconds.and_then(us_per_frame),
            cpu_system_us_per_frame: cpu_system_seconds.and_then(us_per_frame),
            bytes_out,
            frames_out_by_transport: frames_by,
            keyframes_out: count(d("tickwire_keyframes_out_total")),
            inputs: count(d("tickwire_inputs_total")),
            rejections,
            rss_start_bytes: count(a.get("process_resident_memory_bytes")),
            rss_end_bytes: count(b.get("process_resident_memory_bytes")),
            connections_end: count(b.sum("tickwire_connections")),
            rooms_end: count(b.get("tickwire_rooms")),
        }
    }
}

/// The `q` quantile (0..1) of the ticks counted between two cumulative histograms: the upper
/// bound of the first bucket whose count reaches it. `None` with no ticks, or when it lies in
/// `+Inf`.
fn tick_quantile(a: &[(f64, f64)], b: &[(f64, f64)], q: f64) -> Option<f64> {
    let diff: Vec<(f64, f64)> = b
        .iter()
        .map(|&(bound, n)| {
            let before = a.iter().find(|x| x.0 == bound).map_or(0.0, |x| x.1);
            (bound, n - before)
        })
        .collect();
    let total = diff.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let want = (q * total).ceil();
    diff.iter()
        .find(|&&(_, n)| n >= want)
        .map(|&(bound, _)| bound)
        .filter(|b| b.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(at: Instant, text: &str) -> Scrape {
        Scrape {
            at,
            samples: parse(text),
        }
    }

    const BEFORE: &str = r#"# HELP tickwire_rooms Rooms open.
# TYPE tickwire_rooms gauge
tickwire_rooms 1
tickwire_tick_duration_seconds_bucket{le="0.0005"} 100
tickwire_tick_duration_seconds_bucket{le="0.001"} 100
tickwire_tick_duration_seconds_bucket{le="0.002"} 100
tickwire_tick_duration_seconds_bucket{le="+Inf"} 100
tickwire_tick_duration_seconds_sum 0.02
tickwire_tick_duration_seconds_count 100
tickwire_tick_overruns_total 0
tickwire_connections{transport="ws",role="player"} 0
tickwire_frames_out_total{transport="ws"} 10
tickwire_frames_out_total{transport="sse"} 0
tickwire_bytes_out_total{transport="ws"} 1000
tickwire_rejections_total{reason="room_full"} 1
process_cpu_seconds_total 1.5
process_cpu_user_seconds_total 0.5
process_cpu_system_seconds_total 1
process_resident_memory_bytes 10000000
"#;

    const AFTER: &str = r#"tickwire_rooms 3
tickwire_tick_duration_seconds_bucket{le="0.0005"} 150
tickwire_tick_duration_seconds_bucket{le="0.001"} 197
tickwire_tick_duration_seconds_bucket{le="0.002"} 200
tickwire_tick_duration_seconds_bucket{le="+Inf"} 200
tickwire_tick_duration_seconds_sum 0.1
tickwire_tick_duration_seconds_count 200
tickwire_tick_overruns_total 2
tickwire_connections{transport="ws",role="player"} 40
tickwire_connections{transport="sse",role="spectator"} 10
tickwire_frames_out_total{transport="ws"} 1010
tickwire_frames_out_total{transport="sse"} 1000
tickwire_bytes_out_total{transport="ws"} 51000
tickwire_rejections_total{reason="room_full"} 4
tickwire_rejections_total{reason="bad_token"} 0
process_cpu_seconds_total 3.5
process_cpu_user_seconds_total 1.25
process_cpu_system_seconds_total 2.25
process_resident_memory_bytes 15000000
"#;

    #[test]
    fn a_window_between_two_scrapes() {
        let t0 = Instant::now();
        let w = ServerWindow::between(
            &scrape(t0, BEFORE),
            &scrape(t0 + Duration::from_secs(10), AFTER),
        );
        assert_eq!(w.secs, 10.0);
        assert_eq!(w.ticks, 100);
        // 100 ticks in between: 50 ≤ 0.5 ms, 47 ≤ 1 ms, 3 ≤ 2 ms: the 99th is in the 2 ms bucket.
        assert_eq!(w.tick_p99_ms, Some(2.0));
        assert!(w.tick_mean_ms.is_some_and(|m| (m - 0.8).abs() < 1e-9));
        assert_eq!((w.tick_overruns, w.frames_out), (2, 2000));
        assert_eq!(w.cpu_seconds, 2.0);
        assert_eq!(w.cpu_cores, 0.2);
        assert_eq!(w.cpu_us_per_frame, Some(1000.0));
        assert_eq!(
            (w.cpu_user_seconds, w.cpu_system_seconds),
            (Some(0.75), Some(1.25))
        );
        assert_eq!(
            (w.cpu_user_us_per_frame, w.cpu_system_us_per_frame),
            (Some(375.0), Some(625.0))
        );
        assert_eq!(w.bytes_out.get("ws"), Some(&50_000));
        assert_eq!(w.frames_out_by_transport.get("sse"), Some(&1000));
        assert_eq!(
            w.rejections.into_iter().collect::<Vec<_>>(),
            [("room_full".to_owned(), 3)]
        );
        assert_eq!(
            (w.rss_start_bytes, w.rss_end_bytes),
            (10_000_000, 15_000_000)
        );
        assert_eq!((w.connections_end, w.rooms_end), (50, 3));
    }

    #[test]
    fn a_server_without_the_cpu_split() {
        let older = |text: &str| {
            text.lines()
                .filter(|l| !l.contains("_user_") && !l.contains("_system_"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(10);
        let w = ServerWindow::between(&scrape(t0, &older(BEFORE)), &scrape(later, &older(AFTER)));
        assert_eq!(w.cpu_us_per_frame, Some(1000.0));
        assert_eq!((w.cpu_user_seconds, w.cpu_system_seconds), (None, None));
        assert_eq!(
            (w.cpu_user_us_per_frame, w.cpu_system_us_per_frame),
            (None, None)
        );
        // Upgraded between the scrapes: no start to subtract from, so still no split.
        let w = ServerWindow::between(&scrape(t0, &older(BEFORE)), &scrape(later, AFTER));
        assert_eq!((w.cpu_user_seconds, w.cpu_system_seconds), (None, None));
    }

    #[test]
    fn quantiles_of_bucket_differences() {
        let a = [(0.001, 0.0), (0.002, 0.0), (f64::INFINITY, 0.0)];
        let b = [(0.001, 98.0), (0.002, 99.0), (f64::INFINITY, 100.0)];
        assert_eq!(tick_quantile(&a, &b, 0.5), Some(0.001));
        assert_eq!(tick_quantile(&a, &b, 0.99), Some(0.002));
        assert_eq!(tick_quantile(&a, &b, 1.0), None, "beyond the last bucket");
        assert_eq!(tick_quantile(&a, &a, 0.99), None, "no ticks");
    }
}
