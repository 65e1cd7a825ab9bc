//! The report as a table for the terminal: the totals, a row per transport, the server and the
//! generator, and the verdict.

use std::fmt::Write as _;

use super::metrics_scrape::ServerWindow;
use super::report::{Dist, Report};

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn dist(d: &Dist) -> String {
    if d.count == 0 {
        return "–".into();
    }
    format!("{:.1} / {:.1} / {:.1} / {:.1}", d.p50, d.p95, d.p99, d.max)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / f64::from(1 << 20))
}

/// Server CPU per delivered frame, split into user and kernel time when the server exports
/// the split: `14.70 µs (user 4.70, kernel 10.00)`.
pub(super) fn cpu_per_frame(w: &ServerWindow) -> String {
    let Some(total) = w.cpu_us_per_frame else {
        return "–".into();
    };
    match (w.cpu_user_us_per_frame, w.cpu_system_us_per_frame) {
        (Some(user), Some(system)) => {
            format!("{total:.2} µs (user {user:.2}, kernel {system:.2})")
        }
        _ => format!("{total:.2} µs"),
    }
}

impl Report {
    /// The report as text for people.
    pub fn table(&self) -> String {
        let mut w = String::new();
        let c = &self.config;
        let _ = writeln!(
            w,
            "\ntickwire load: {} players + {} spectators over {} in {} room(s); {:.1} s measured after a {:.1} s ramp",
            c.players,
            c.spectators,
            c.transport,
            c.rooms,
            self.timing.get("window_secs").copied().unwrap_or(0.0),
            self.timing.get("ramp_secs").copied().unwrap_or(0.0),
        );
        let k = &self.connections;
        let _ = writeln!(
            w,
            "connections  attempted {}  ok {}  failed {}  reconnects {}  chaos drops {}  gave up {}",
            thousands(k.attempted),
            thousands(k.ok),
            thousands(k.failed),
            thousands(k.reconnects),
            thousands(k.chaos_drops),
            thousands(k.gave_up),
        );
        if !k.failure_reasons.is_empty() {
            let reasons: Vec<String> = k
                .failure_reasons
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect();
            let _ = writeln!(w, "             failures: {}", reasons.join(", "));
        }
        let f = &self.frames;
        let _ = writeln!(
            w,
            "frames       received {}  keyframes {}  verified {}  skimmed {}  desyncs {}",
            thousands(f.received),
            thousands(f.keyframes),
            thousands(f.verified),
            thousands(f.skimmed),
            self.desyncs
        );
        let i = &self.inputs;
        let _ = writeln!(
            w,
            "inputs       sent {}  acknowledged {}  lost {}  acks backwards {}",
            thousands(i.sent),
            thousands(i.acknowledged),
            thousands(i.lost),
            i.acks_regressed
        );
        let _ = writeln!(
            w,
            "\n{:<9} {:>7} {:>6} {:>10} {:>11} {:>11}  {:<29}  {:<29} {:>6} {:>7}",
            "transport",
            "clients",
            "verify",
            "frames/s/c",
            "KiB/s/c",
            "srv KiB/s/c",
            "input→ack p50/p95/p99/max ms",
            "frame gap p50/p95/p99/max ms",
            "reconn",
            "desyncs"
        );
        for (name, t) in &self.transports {
            let _ = writeln!(
                w,
                "{:<9} {:>7} {:>6} {:>10.1} {:>11.2} {:>11}  {:<29}  {:<29} {:>6} {:>7}",
                name,
                t.clients,
                t.verifying,
                t.frames_per_client_per_sec,
                t.bytes_per_client_per_sec / 1024.0,
                t.server_bytes_per_client_per_sec
                    .map_or("–".into(), |b| format!("{:.2}", b / 1024.0)),
                dist(&t.input_to_ack_ms),
                dist(&t.frame_interarrival_ms),
                t.reconnects,
                t.desyncs
            );
        }
        let _ = writeln!(
            w,
            "{:<9} {:>7} {:>6} {:>10} {:>11} {:>11}  {:<29}  {:<29}",
            "all",
            k.clients,
            "",
            "",
            "",
            "",
            dist(&self.input_to_ack_ms),
            dist(&self.frame_interarrival_ms)
        );
        let per_change: Vec<String> = self
            .transports
            .iter()
            .filter_map(|(name, t)| {
                Some(format!(
                    "{name} {:.2} B ({:.0} of {:.0} entities changed per frame)",
                    t.bytes_per_changed_entity?,
                    t.changed_entities_per_frame?,
                    t.entities_per_frame?
                ))
            })
            .collect();
        if !per_change.is_empty() {
            let _ = writeln!(w, "bytes per changed entity: {}", per_change.join(", "));
        }
        match &self.server {
            Some(s) => {
                let win = &s.window;
                let _ = writeln!(
                    w,
                    "\nserver       tick p99 {} (mean {})  overruns {}  dropped {}  CPU {:.2} cores  {} per delivered frame  {:.0} frames/s",
                    win.tick_p99_ms
                        .map_or("> last bucket".into(), |p| format!("{p:.2} ms")),
                    win.tick_mean_ms
                        .map_or("–".into(), |m| format!("{m:.2} ms")),
                    win.tick_overruns,
                    win.ticks_dropped,
                    win.cpu_cores,
                    cpu_per_frame(win),
                    win.frames_out_per_sec,
                );
                let _ = writeln!(
                    w,
                    "             RSS {} → {}  ({} per connection, {} connections)",
                    mib(s.whole.rss_start_bytes as f64),
                    mib(s.whole.rss_end_bytes as f64),
                    s.rss_per_connection_bytes
                        .map_or("–".into(), |b| format!("{:.1} KiB", b / 1024.0)),
                    thousands(s.whole.connections_end),
                );
                if !win.rejections.is_empty() {
                    let r: Vec<String> = win
                        .rejections
                        .iter()
                        .map(|(k, n)| format!("{k}: {n}"))
                        .collect();
                    let _ = writeln!(w, "             rejections: {}", r.join(", "));
                }
            }
            None => {
                let _ = writeln!(w, "\nserver       no figures (GET /metrics failed)");
            }
        }
        let g = &self.generator;
        let _ = writeln!(
            w,
            "generator    CPU {} in the window ({} total)  peak RSS {}  open files {} (hard {})  source addresses {}",
            g.cpu_cores_window
                .map_or("–".into(), |c| format!("{c:.2} cores")),
            g.cpu_seconds_total
                .map_or("–".into(), |c| format!("{c:.1} s")),
            g.peak_rss_bytes.map_or("–".into(), |b| mib(b as f64)),
            g.files_limit.soft,
            g.files_limit.hard,
            g.source_addresses.len().max(1),
        );
        for warning in &self.warnings {
            let _ = writeln!(w, "warning      {warning}");
        }
        if self.ok {
            let _ = writeln!(w, "result       OK (exit {})", self.exit_code);
        } else {
            let _ = writeln!(
                w,
                "result       FAILED (exit {}): {}",
                self.exit_code,
                self.problems.join("; ")
            );
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(dist(&Dist::default()), "–");
    }

    #[test]
    fn cpu_per_frame_with_and_without_the_split() {
        let mut w = ServerWindow::default();
        assert_eq!(cpu_per_frame(&w), "–");
        w.cpu_us_per_frame = Some(14.7);
        assert_eq!(
            cpu_per_frame(&w),
            "14.70 µs",
            "a server older than the split"
        );
        (w.cpu_user_us_per_frame, w.cpu_system_us_per_frame) = (Some(4.7), Some(10.0));
        assert_eq!(cpu_per_frame(&w), "14.70 µs (user 4.70, kernel 10.00)");
    }
}
