//! The run over time: frames and bytes received per second by transport (from the clients'
//! shared series), and the server's CPU, memory and connections about once a second (from the
//! scrapes). The report's `timeline`, and the HTML page's plots.

use std::collections::BTreeMap;

use bots::Transport;
use serde::Serialize;

use super::record::{SecondCounts, index_of};
use super::report::TransportOut;
use super::run::RunData;

/// One point of the server's timeline.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ServerPoint {
    /// Seconds since the run started.
    pub t: f64,
    /// CPU cores used since the previous point.
    pub cpu_cores: f64,
    /// Resident memory.
    pub rss_bytes: u64,
    /// Open connections.
    pub connections: u64,
}

/// Per second, per transport.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Series {
    /// Frames received in each second.
    pub frames: Vec<u64>,
    /// Bytes received in each second.
    pub bytes: Vec<u64>,
}

/// The run over time.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeline {
    /// Client-side series by transport (only transports in use), second 0 = run start.
    pub transports: BTreeMap<String, Series>,
    /// The server, about once a second.
    pub server: Vec<ServerPoint>,
    /// When the measured window started and ended, in seconds since the run started.
    pub window: [f64; 2],
}

/// The client series of the transports in use, and the server's points.
pub fn timeline(
    run: &RunData,
    series: &[SecondCounts],
    per: &BTreeMap<String, TransportOut>,
) -> Timeline {
    // Up to the last second that saw anything, and only whole seconds (a last, partial second
    // would look like a collapse).
    let len = series
        .iter()
        .rposition(|s| s.iter().any(|&(f, _)| f > 0))
        .map_or(0, |i| i + 1)
        .min((run.total.as_secs() as usize).max(1))
        .min(series.len());
    let mut transports = BTreeMap::new();
    for name in per.keys() {
        let Some(t) = Transport::ALL.into_iter().find(|x| x.as_str() == name) else {
            continue;
        };
        let i = index_of(t);
        transports.insert(
            name.clone(),
            Series {
                frames: series[..len].iter().map(|s| s[i].0).collect(),
                bytes: series[..len].iter().map(|s| s[i].1).collect(),
            },
        );
    }
    let t0 = run.shared.t0;
    let server = run
        .scrapes
        .timeline
        .windows(2)
        .map(|w| {
            let dt = w[1].at.saturating_duration_since(w[0].at).as_secs_f64();
            let cpu = w[1].get("process_cpu_seconds_total") - w[0].get("process_cpu_seconds_total");
            ServerPoint {
                t: w[1].at.saturating_duration_since(t0).as_secs_f64(),
                cpu_cores: if dt > 0.0 { cpu / dt } else { 0.0 },
                rss_bytes: w[1].get("process_resident_memory_bytes").max(0.0) as u64,
                connections: w[1].sum("tickwire_connections").max(0.0) as u64,
            }
        })
        .collect();
    let start = run.ramp.as_secs_f64();
    Timeline {
        transports,
        server,
        window: [start, start + run.window.as_secs_f64()],
    }
}
