//! `--report FILE.html`: the report as a page people would rather look at than read. One
//! self-contained file: inline CSS and SVG charts ([`super::plot`]), no scripts, no external
//! assets, so it can be mailed, archived or opened offline.
//!
//! Charts: the input → ack latency histogram per transport, frames and bandwidth over time per
//! transport (the measured window shaded), and the server's CPU and connections over time.

use std::fmt::Write as _;

use bots::Transport;

use super::plot::{self, COLORS, Series, escape};
use super::record::index_of;
use super::report::Report;

fn color_of(name: &str) -> &'static str {
    Transport::ALL
        .into_iter()
        .find(|t| t.as_str() == name)
        .map_or(COLORS[5], |t| COLORS[index_of(t)])
}

/// The page.
pub fn page(r: &Report) -> String {
    let mut w = String::new();
    let verdict = if r.ok {
        "<span class=ok>OK</span>".to_owned()
    } else {
        format!(
            "<span class=bad>FAILED</span> — {}",
            escape(&r.problems.join("; "))
        )
    };
    let _ = write!(
        w,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>tickwire load report</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 80em; color: #222; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.1em; margin-top: 2em; }}
.ok {{ color: #197a1e; font-weight: bold; }} .bad {{ color: #b3261e; font-weight: bold; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .2em .7em; border-bottom: 1px solid #ddd; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: .85em; }}
</style></head><body>
<h1>tickwire load: {} players + {} spectators over {} in {} room(s)</h1>
<p>{} · server {} · {} Hz ticks, {} Hz sends</p>
"#,
        r.config.players,
        r.config.spectators,
        escape(&r.config.transport),
        r.config.rooms,
        verdict,
        escape(&r.config.url),
        r.config.tick_rate,
        r.config.send_rate,
    );
    for warning in &r.warnings {
        let _ = writeln!(w, "<p class=bad>⚠ {}</p>", escape(warning));
    }
    summary(&mut w, r);
    charts(&mut w, r);
    let _ = write!(
        w,
        "<h2>As printed</h2>\n<pre>{}</pre>\n</body></html>\n",
        escape(&r.table())
    );
    w
}

fn summary(w: &mut String, r: &Report) {
    let row = |w: &mut String, k: &str, v: String| {
        let _ = writeln!(w, "<tr><td>{k}</td><td>{}</td></tr>", escape(&v));
    };
    w.push_str("<h2>Summary</h2>\n<table>\n");
    let c = &r.connections;
    row(
        w,
        "connections attempted / ok / failed",
        format!("{} / {} / {}", c.attempted, c.ok, c.failed),
    );
    row(
        w,
        "reconnects / chaos drops",
        format!("{} / {}", c.reconnects, c.chaos_drops),
    );
    row(w, "frames received", r.frames.received.to_string());
    row(w, "desyncs", r.desyncs.to_string());
    row(
        w,
        "inputs sent / acknowledged / lost",
        format!(
            "{} / {} / {}",
            r.inputs.sent, r.inputs.acknowledged, r.inputs.lost
        ),
    );
    let d = &r.input_to_ack_ms;
    row(
        w,
        "input → ack p50 / p95 / p99 / max",
        format!(
            "{:.1} / {:.1} / {:.1} / {:.1} ms",
            d.p50, d.p95, d.p99, d.max
        ),
    );
    if let Some(s) = &r.server {
        row(
            w,
            "server CPU per delivered frame",
            super::table::cpu_per_frame(&s.window),
        );
        row(
            w,
            "server tick p99",
            s.window
                .tick_p99_ms
                .map_or("–".into(), |p| format!("{p:.2} ms")),
        );
        row(
            w,
            "server RSS per connection",
            s.rss_per_connection_bytes
                .map_or("–".into(), |b| format!("{:.1} KiB", b / 1024.0)),
        );
    }
    row(
        w,
        "generator CPU (window)",
        r.generator
            .cpu_cores_window
            .map_or("–".into(), |c| format!("{c:.2} cores")),
    );
    w.push_str("</table>\n");
}

fn charts(w: &mut String, r: &Report) {
    // Latency histogram: categories are the longest transport's buckets.
    let with_acks: Vec<_> = r
        .transports
        .iter()
        .filter(|(_, t)| !t.input_to_ack_histogram.is_empty())
        .collect();
    if let Some(longest) = with_acks
        .iter()
        .map(|(_, t)| &t.input_to_ack_histogram)
        .max_by_key(|h| h.len())
    {
        let categories: Vec<String> = longest.iter().map(|b| plot::short(b[0])).collect();
        let series: Vec<Series> = with_acks
            .iter()
            .map(|(name, t)| Series {
                label: (*name).clone(),
                color: color_of(name),
                points: t
                    .input_to_ack_histogram
                    .iter()
                    .map(|b| (b[0], b[1]))
                    .collect(),
            })
            .collect();
        w.push_str("<h2>Input → ack latency</h2>\n");
        w.push_str(&plot::bars(
            "Inputs by time to acknowledgement (measured window)",
            "at most this many ms",
            "inputs",
            &categories,
            &series,
        ));
    }
    let shade = Some((r.timeline.window[0], r.timeline.window[1]));
    let over_time = |pick: fn(&super::timeline::Series) -> &Vec<u64>, scale: f64| -> Vec<Series> {
        r.timeline
            .transports
            .iter()
            .map(|(name, s)| Series {
                label: name.clone(),
                color: color_of(name),
                points: pick(s)
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (i as f64, v as f64 / scale))
                    .collect(),
            })
            .collect()
    };
    w.push_str("<h2>Frames and bandwidth over time</h2>\n");
    w.push_str(&plot::lines(
        "Frames received per second, by transport",
        "seconds since start (measured window shaded)",
        "frames/s",
        &over_time(|s| &s.frames, 1.0),
        shade,
    ));
    w.push_str(&plot::lines(
        "Bandwidth received, by transport",
        "seconds since start (measured window shaded)",
        "KiB/s",
        &over_time(|s| &s.bytes, 1024.0),
        shade,
    ));
    if !r.timeline.server.is_empty() {
        let pts = |f: fn(&super::timeline::ServerPoint) -> f64| -> Vec<(f64, f64)> {
            r.timeline.server.iter().map(|p| (p.t, f(p))).collect()
        };
        w.push_str("<h2>The server</h2>\n");
        w.push_str(&plot::lines(
            "Server CPU",
            "seconds since start",
            "cores",
            &[Series {
                label: "CPU".into(),
                color: COLORS[0],
                points: pts(|p| p.cpu_cores),
            }],
            shade,
        ));
        w.push_str(&plot::lines(
            "Server connections and memory",
            "seconds since start",
            "count / MiB",
            &[
                Series {
                    label: "connections".into(),
                    color: COLORS[2],
                    points: pts(|p| p.connections as f64),
                },
                Series {
                    label: "RSS MiB".into(),
                    color: COLORS[1],
                    points: pts(|p| p.rss_bytes as f64 / f64::from(1 << 20)),
                },
            ],
            shade,
        ));
    }
}
