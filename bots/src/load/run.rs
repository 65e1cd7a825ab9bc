//! A run from start to finish: get the server ready, start the clients at the ramp's rate,
//! hold the load for the measured window while scraping the server, stop, and gather what
//! everyone measured.
//!
//! ```text
//! t0 ── ramp (clients start at --ramp per second) ── window ── --duration ── end ── drain
//!  scrape: start            …once a second…        window                  end
//!  generator CPU:           start                  window                  end
//! ```
//!
//! The server figures of the report are from the `window` and `end` scrapes: steady state,
//! every client connected. The stop signal goes out only after the `end` scrape, so the server
//! is measured while the whole load is still on it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::cli::Settings;
use super::metrics_scrape::{Scrape, scrape};
use super::plan;
use super::progress;
use super::record::Shared;
use super::rooms::{self, Rooms};
use super::sys::{self, FilesLimit};
use super::vu::{self, Outcome, VuConfig};

/// How long a scrape of `/metrics` may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes kept for the server's timeline: one a second for an hour at most.
const TIMELINE_MAX: usize = 3600;

/// The generator's CPU seconds at the marks of the run.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuMarks {
    /// Before the first client.
    pub start: Option<f64>,
    /// When the measured window began.
    pub window: Option<f64>,
    /// When it ended.
    pub end: Option<f64>,
    /// After every client finished.
    pub finish: Option<f64>,
}

/// The server's scrapes.
#[derive(Debug, Default)]
pub struct Scrapes {
    /// Before the first client.
    pub start: Option<Scrape>,
    /// When the measured window began.
    pub window: Option<Scrape>,
    /// When it ended, before the clients stopped.
    pub end: Option<Scrape>,
    /// Every scrape in order (about one a second), for the timeline.
    pub timeline: Vec<Scrape>,
}

/// Everything a run produced, for the report.
#[derive(Debug)]
pub struct RunData {
    /// The checked flags.
    pub settings: Settings,
    /// The rooms' facts.
    pub rooms: Rooms,
    /// The open-files limit.
    pub files: FilesLimit,
    /// Source addresses used.
    pub sources: Vec<IpAddr>,
    /// One per client that finished in time.
    pub outcomes: Vec<Outcome>,
    /// Clients still running when the tool stopped waiting (aborted).
    pub unfinished: usize,
    /// Histograms, series and live counters.
    pub shared: Arc<Shared>,
    /// The server's scrapes.
    pub scrapes: Scrapes,
    /// The generator's CPU.
    pub cpu: CpuMarks,
    /// The ramp.
    pub ramp: Duration,
    /// The measured window, as it happened.
    pub window: Duration,
    /// From the first client's start to the last client's end.
    pub total: Duration,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

/// Whether `url`'s host is this machine's loopback (where 127.0.0.x source addresses work).
fn is_loopback(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        _ => false,
    }
}

/// Runs the load described by `s`.
pub async fn run(s: Settings) -> anyhow::Result<RunData> {
    let api = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    let rooms = rooms::prepare(&api, &s).await?;
    let mut warnings = rooms.warnings.clone();
    let files = sys::raise_files_limit(plan::connections(&s) as u64 + 256);
    if !files.enough() {
        warnings.push(format!(
            "the open-files limit is {} (hard limit {}), but this run needs about {}: raise the \
             hard limit (ulimit -Hn as root, LimitNOFILE= in a systemd unit, or nofile in \
             /etc/security/limits.conf) — the server needs as many",
            files.soft, files.hard, files.needed
        ));
    }
    let sources = plan::sources(&s, is_loopback(&s.url));
    let specs = plan::clients(&s, &sources);
    let ramp = plan::ramp_time(&s);
    let cfg = Arc::new(VuConfig {
        url: s.url.clone(),
        timeout: s.timeout,
        input_period: s.input_period,
        chaos: s.chaos,
        drain: s.drain,
        max_reconnects: s.max_reconnects,
    });

    let mut scrapes = Scrapes {
        start: scrape(&api, &s.url, SCRAPE_TIMEOUT).await.ok(),
        ..Scrapes::default()
    };
    if scrapes.start.is_none() {
        warnings.push("GET /metrics failed: no server figures in this report".into());
    }
    let mut cpu = CpuMarks {
        start: sys::cpu_seconds(),
        ..CpuMarks::default()
    };
    let t0 = Instant::now();
    let window_at = t0 + ramp;
    let end_at = window_at + s.duration;
    let planned = (ramp + s.duration + s.drain).as_secs() as usize + 10;
    let shared = Arc::new(Shared::new(t0, window_at, planned)?);
    let stop = CancellationToken::new();
    let mut clients = JoinSet::new();
    let n = specs.len() as u64;
    for spec in specs {
        clients.spawn(vu::run(spec, cfg.clone(), shared.clone(), stop.clone()));
    }
    let progress_done = CancellationToken::new();
    let progress = (!s.quiet).then(|| {
        tokio::spawn(progress::show(
            shared.clone(),
            n,
            ramp + s.duration,
            progress_done.clone(),
        ))
    });

    // Scrape once a second, and exactly at the window's start and end.
    let mut marks: Vec<Instant> = (1..)
        .map(|k| t0 + Duration::from_secs(k))
        .take_while(|&t| t < end_at)
        .take(TIMELINE_MAX)
        .chain([window_at, end_at])
        .collect();
    marks.sort();
    marks.dedup();
    scrapes.timeline.extend(scrapes.start.clone());
    for at in marks {
        sleep_until(at).await;
        let got = scrape(&api, &s.url, SCRAPE_TIMEOUT).await.ok();
        if at == window_at {
            cpu.window = sys::cpu_seconds();
            scrapes.window = got.clone();
        }
        if at == end_at {
            cpu.end = sys::cpu_seconds();
            scrapes.end = got.clone();
        }
        scrapes.timeline.extend(got);
    }
    let window = Instant::now()
        .saturating_duration_since(window_at)
        .min(s.duration);
    stop.cancel();

    // Every client drains within its own bounds; this is the backstop.
    let deadline = s.drain * 2 + s.timeout + Duration::from_secs(5);
    let mut outcomes = Vec::with_capacity(n as usize);
    let _ = timeout(deadline, async {
        while let Some(joined) = clients.join_next().await {
            if let Ok(outcome) = joined {
                outcomes.push(outcome);
            }
        }
    })
    .await;
    let unfinished = clients.len();
    clients.abort_all();
    cpu.finish = sys::cpu_seconds();
    progress_done.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    // The server's per-address limits are meant for the internet; a load from one machine
    // meets them and then measures the limits, not the server.
    let latest = scrapes.timeline.last().or(scrapes.end.as_ref());
    for (reason, setting) in [
        ("too_many_from_ip", "--max-connections-per-ip"),
        ("rate_limited", "--joins-per-min / --room-creates-per-min"),
    ] {
        let key = format!("tickwire_rejections_total{{reason=\"{reason}\"}}");
        let at = |s: Option<&Scrape>| s.and_then(|s| s.samples.get(&key).copied());
        let n = at(latest).unwrap_or(0.0) - at(scrapes.start.as_ref()).unwrap_or(0.0);
        if n > 0.0 {
            warnings.push(format!(
                "the server refused {n} requests by its per-address limits ({reason}): run it \
                 with {setting} raised for load tests, or spread the load over more addresses \
                 (--source-ips)"
            ));
        }
    }
    if unfinished > 0 {
        warnings.push(format!(
            "{unfinished} clients had not finished {deadline:?} after the stop and were aborted"
        ));
    }
    Ok(RunData {
        settings: s,
        rooms,
        files,
        sources,
        outcomes,
        unfinished,
        shared,
        scrapes,
        cpu,
        ramp,
        window,
        total: t0.elapsed(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers() {
        assert!(is_loopback("http://127.0.0.1:8080"));
        assert!(is_loopback("http://127.3.0.1"));
        assert!(is_loopback("http://localhost:1"));
        assert!(!is_loopback("http://10.0.0.1:8080"));
        assert!(!is_loopback("http://[::1]:8080"));
        assert!(!is_loopback("nonsense"));
    }
}
