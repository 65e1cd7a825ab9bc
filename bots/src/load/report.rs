//! The report: what a run measured, as one serializable value ([`Report`], written with
//! `--json`), a table for the terminal ([`Report::table`]), and the verdict (exit status).
//!
//! A run fails (exit status 2) when any frame did not verify (`desyncs`), when any player saw
//! its ack go backwards (the server forgot inputs it had acknowledged), or when a player that
//! ran to the end still had inputs unacknowledged after the drain (inputs lost). It cannot be
//! made (exit status 1) when no client connected at all. Everything else — refused
//! connections, slow acks — is reported, not judged: a load test at its knee is supposed to
//! see them.

use std::collections::BTreeMap;

use bots::{Role, Transport};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::metrics_scrape::ServerWindow;
use super::record::index_of;
use super::run::RunData;
use super::sys::FilesLimit;
use super::timeline::{Timeline, timeline};

/// Exit status of a run whose checks held.
pub const EXIT_OK: i32 = 0;
/// Exit status when the run could not be made (no client connected).
pub const EXIT_UNUSABLE: i32 = 1;
/// Exit status when a replica desynced or an acknowledged input was lost.
pub const EXIT_FAILED: i32 = 2;

/// A latency distribution, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Dist {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Dist {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1e3;
        Self {
            count: h.len(),
            mean: h.mean() / 1e3,
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// What the run was asked to do.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigOut {
    /// Server URL.
    pub url: String,
    /// Players.
    pub players: usize,
    /// Spectators.
    pub spectators: usize,
    /// `ws`, `sse`, `stream`, `longpoll`, `poll` or `mix`.
    pub transport: String,
    /// Rooms used.
    pub rooms: usize,
    /// Of those, created by this run (the others existed).
    pub rooms_created: usize,
    /// The measured window asked for, in seconds.
    pub duration_secs: f64,
    /// Clients started per second (`null`: all at once).
    pub ramp_per_sec: Option<f64>,
    /// Fraction of clients verifying in full.
    pub verify: f64,
    /// Chaos drops per client per second.
    pub chaos: f64,
    /// Inputs per second per player (`null`: the room's tick rate).
    pub input_rate_hz: Option<f64>,
    /// The rooms' tick and send rates and capacity.
    pub tick_rate: u16,
    /// Frames per second.
    pub send_rate: u16,
    /// Players per room the server allows.
    pub room_capacity: u16,
    /// Seed.
    pub seed: u64,
}

/// Connections over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Connections {
    /// Clients in the run.
    pub clients: usize,
    /// Connection attempts (first and re-connections).
    pub attempted: u64,
    /// Attempts that got a session.
    pub ok: u64,
    /// Attempts that failed, plus sessions that failed once established.
    pub failed: u64,
    /// Sessions after a client's first.
    pub reconnects: u64,
    /// Connections dropped on purpose by `--chaos`.
    pub chaos_drops: u64,
    /// Clients that gave up before the end (a refusal, or out of retries).
    pub gave_up: u64,
    /// Failures by kind.
    pub failure_reasons: BTreeMap<String, u64>,
}

/// Frames over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Frames {
    /// Frames received and taken.
    pub received: u64,
    /// Of those, keyframes.
    pub keyframes: u64,
    /// Frames applied and verified by a full replica.
    pub verified: u64,
    /// Frames skimmed (tick and baseline checked, state not rebuilt).
    pub skimmed: u64,
    /// Bytes of frame messages.
    pub bytes: u64,
}

/// Inputs over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Inputs {
    /// Inputs sent.
    pub sent: u64,
    /// Inputs at or below their player's final ack.
    pub acknowledged: u64,
    /// Inputs never acknowledged by players that ran to the end (lost).
    pub lost: u64,
    /// Players whose ack went backwards.
    pub acks_regressed: u64,
}

/// One transport's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TransportOut {
    /// Clients on it.
    pub clients: usize,
    /// Of those, players.
    pub players: usize,
    /// Of those, verifying in full.
    pub verifying: usize,
    /// Client-seconds connected.
    pub connected_secs: f64,
    /// Frames received.
    pub frames: u64,
    /// Bytes of frame messages received.
    pub bytes: u64,
    /// Frames per second per connected client.
    pub frames_per_client_per_sec: f64,
    /// Frame message bytes per second per connected client (what the client decodes).
    pub bytes_per_client_per_sec: f64,
    /// Bytes the server sent on this transport per client per second in the window (wire
    /// encoding: base64 for SSE, length prefixes, welcome and close messages).
    pub server_bytes_per_client_per_sec: Option<f64>,
    /// Frames that did not verify.
    pub desyncs: u64,
    /// Verifying clients: frame bytes per entity that changed (added, removed or any field
    /// different) — what the delta encoding costs per change, headers included.
    pub bytes_per_changed_entity: Option<f64>,
    /// Verifying clients: entities that changed per frame.
    pub changed_entities_per_frame: Option<f64>,
    /// Verifying clients: entities in the room's state per frame.
    pub entities_per_frame: Option<f64>,
    #[serde(skip)]
    changed: (u64, u64, u64, u64),
    /// Reconnections.
    pub reconnects: u64,
    /// Failed connections.
    pub failed: u64,
    /// Input → ack latency (players), in the window.
    pub input_to_ack_ms: Dist,
    /// Time between consecutive frames on one connection, in the window.
    pub frame_interarrival_ms: Dist,
    /// Input → ack latency histogram: `[upper bound ms, count]`, buckets doubling from 0.125 ms.
    pub input_to_ack_histogram: Vec<[f64; 2]>,
}

/// The generator's own cost.
#[derive(Clone, Debug, Serialize)]
pub struct Generator {
    /// CPU seconds in the measured window.
    pub cpu_seconds_window: Option<f64>,
    /// CPU seconds over the window / its length: 1.0 is one core busy.
    pub cpu_cores_window: Option<f64>,
    /// CPU seconds over the whole run, ramp and drain included.
    pub cpu_seconds_total: Option<f64>,
    /// Peak resident memory.
    pub peak_rss_bytes: Option<u64>,
    /// The open-files limit.
    pub files_limit: FilesLimit,
    /// Source addresses used (empty: the kernel's choice).
    pub source_addresses: Vec<String>,
}

/// The server's figures.
#[derive(Clone, Debug, Serialize)]
pub struct ServerOut {
    /// The measured window (from the `window` to the `end` scrape).
    pub window: ServerWindow,
    /// From before the first client to the end of the window.
    pub whole: ServerWindow,
    /// (RSS at the end − RSS before the run) / open connections at the end.
    pub rss_per_connection_bytes: Option<f64>,
}

/// Everything a run measured. The JSON of `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `"tickwire-load"`.
    pub tool: &'static str,
    /// Version of this schema.
    pub schema: u32,
    /// Whether every check held.
    pub ok: bool,
    /// The exit status: 0 ok, 1 unusable run, 2 desyncs or lost inputs.
    pub exit_code: i32,
    /// Why the run failed, if it did.
    pub problems: Vec<String>,
    /// Things to know (capacity, limits, scrapes that failed).
    pub warnings: Vec<String>,
    /// What was asked.
    pub config: ConfigOut,
    /// Ramp, window and total, in seconds.
    pub timing: BTreeMap<&'static str, f64>,
    /// Connections.
    pub connections: Connections,
    /// Frames.
    pub frames: Frames,
    /// Frames that did not verify, over all clients.
    pub desyncs: u64,
    /// Inputs.
    pub inputs: Inputs,
    /// Input → ack latency over all transports, in the window.
    pub input_to_ack_ms: Dist,
    /// Frame inter-arrival over all transports, in the window.
    pub frame_interarrival_ms: Dist,
    /// By transport (only those in use).
    pub transports: BTreeMap<String, TransportOut>,
    /// The generator's cost.
    pub generator: Generator,
    /// The server's figures; `null` when `/metrics` could not be scraped.
    pub server: Option<ServerOut>,
    /// Over time.
    pub timeline: Timeline,
}

/// `[upper bound ms, count]` buckets doubling from 0.125 ms, up to the largest value.
fn buckets(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_log(125, 2.0)
        .map(|v| {
            [
                v.value_iterated_to() as f64 / 1e3,
                v.count_since_last_iteration() as f64,
            ]
        })
        .collect()
}

impl Report {
    /// The report of `run`.
    pub fn build(run: &RunData) -> Self {
        let s = &run.settings;
        let mut per: BTreeMap<String, TransportOut> = BTreeMap::new();
        let mut conns = Connections {
            clients: run.outcomes.len() + run.unfinished,
            ..Connections::default()
        };
        let (mut frames, mut inputs, mut desyncs) = (Frames::default(), Inputs::default(), 0);
        for o in &run.outcomes {
            let t = per.entry(o.transport.to_string()).or_default();
            t.clients += 1;
            t.players += usize::from(o.role == Role::Player);
            t.verifying += usize::from(o.verify);
            t.connected_secs += o.connected_secs;
            t.frames += o.frames;
            t.bytes += o.frame_bytes;
            t.desyncs += o.desyncs;
            if o.verify {
                t.changed.0 += o.changed_entities;
                t.changed.1 += o.changed_bytes;
                t.changed.2 += o.entities_seen;
                t.changed.3 += o.frames;
            }
            t.reconnects += o.reconnects;
            t.failed += o.failed;
            conns.attempted += o.attempts;
            conns.ok += o.ok;
            conns.failed += o.failed;
            conns.reconnects += o.reconnects;
            conns.chaos_drops += o.chaos_drops;
            conns.gave_up += u64::from(o.final_error.is_some());
            for f in &o.failures {
                *conns.failure_reasons.entry(f.clone()).or_default() += 1;
            }
            frames.received += o.frames;
            frames.keyframes += o.keyframes;
            frames.bytes += o.frame_bytes;
            if o.verify {
                frames.verified += o.frames;
            } else {
                frames.skimmed += o.frames;
            }
            desyncs += o.desyncs;
            if o.role == Role::Player {
                inputs.sent += o.inputs_sent;
                inputs.acknowledged += u64::from(o.highest_ack.min(o.last_seq));
                if o.ended_cleanly {
                    inputs.lost += u64::from(o.last_seq.saturating_sub(o.highest_ack));
                }
                inputs.acks_regressed += u64::from(!o.acks_monotonic);
            }
        }
        let server = match (&run.scrapes.start, &run.scrapes.window, &run.scrapes.end) {
            (Some(start), window, Some(end)) => {
                let whole = ServerWindow::between(start, end);
                let window = ServerWindow::between(window.as_ref().unwrap_or(start), end);
                let rss_per_connection_bytes = (whole.connections_end > 0).then(|| {
                    (whole.rss_end_bytes as f64 - whole.rss_start_bytes as f64)
                        / whole.connections_end as f64
                });
                Some(ServerOut {
                    window,
                    whole,
                    rss_per_connection_bytes,
                })
            }
            _ => None,
        };
        let rec = run.shared.recorder();
        let (mut all_ack, mut all_gap) = (rec.per[0].ack.clone(), rec.per[0].gap.clone());
        for (name, t) in &mut per {
            let Some(transport) = Transport::ALL.into_iter().find(|x| x.as_str() == name) else {
                continue;
            };
            let h = &rec.per[index_of(transport)];
            if index_of(transport) != 0 {
                let _ = all_ack.add(&h.ack);
                let _ = all_gap.add(&h.gap);
            }
            let (changed, bytes, seen, verified_frames) = t.changed;
            t.bytes_per_changed_entity = (changed > 0).then(|| bytes as f64 / changed as f64);
            t.changed_entities_per_frame =
                (verified_frames > 0).then(|| changed as f64 / verified_frames as f64);
            t.entities_per_frame =
                (verified_frames > 0).then(|| seen as f64 / verified_frames as f64);
            t.input_to_ack_ms = Dist::of(&h.ack);
            t.frame_interarrival_ms = Dist::of(&h.gap);
            t.input_to_ack_histogram = buckets(&h.ack);
            if t.connected_secs > 0.0 {
                t.frames_per_client_per_sec = t.frames as f64 / t.connected_secs;
                t.bytes_per_client_per_sec = t.bytes as f64 / t.connected_secs;
            }
            t.server_bytes_per_client_per_sec = server.as_ref().and_then(|srv| {
                let bytes = *srv.window.bytes_out.get(name)? as f64;
                (srv.window.secs > 0.0 && t.clients > 0)
                    .then(|| bytes / t.clients as f64 / srv.window.secs)
            });
        }
        let timeline = timeline(run, &rec.series, &per);
        drop(rec);

        let mut problems = Vec::new();
        if desyncs > 0 {
            problems.push(format!("{desyncs} frames did not verify (desyncs)"));
        }
        if inputs.acks_regressed > 0 {
            problems.push(format!(
                "{} players saw their ack go backwards: the server lost acknowledged inputs",
                inputs.acks_regressed
            ));
        }
        if inputs.lost > 0 {
            problems.push(format!(
                "{} inputs were never acknowledged by the end of the drain (lost)",
                inputs.lost
            ));
        }
        let exit_code = if conns.ok == 0 {
            problems.push("no client connected".into());
            EXIT_UNUSABLE
        } else if problems.is_empty() {
            EXIT_OK
        } else {
            EXIT_FAILED
        };
        let cpu = run.cpu;
        let window_cpu = cpu.end.zip(cpu.window).map(|(e, w)| e - w);
        let window_secs = run.window.as_secs_f64();
        Self {
            tool: "tickwire-load",
            schema: 1,
            ok: exit_code == EXIT_OK,
            exit_code,
            problems,
            warnings: run.warnings.clone(),
            config: ConfigOut {
                url: s.url.clone(),
                players: s.players,
                spectators: s.spectators,
                transport: s.transport.to_string(),
                rooms: s.rooms.len(),
                rooms_created: run.rooms.created,
                duration_secs: s.duration.as_secs_f64(),
                ramp_per_sec: s.ramp,
                verify: s.verify,
                chaos: s.chaos,
                input_rate_hz: s.input_period.map(|p| 1.0 / p.as_secs_f64()),
                tick_rate: run.rooms.tick_rate,
                send_rate: run.rooms.send_rate,
                room_capacity: run.rooms.capacity,
                seed: s.seed,
            },
            timing: BTreeMap::from([
                ("ramp_secs", run.ramp.as_secs_f64()),
                ("window_secs", window_secs),
                ("total_secs", run.total.as_secs_f64()),
            ]),
            connections: conns,
            frames,
            desyncs,
            inputs,
            input_to_ack_ms: Dist::of(&all_ack),
            frame_interarrival_ms: Dist::of(&all_gap),
            transports: per,
            generator: Generator {
                cpu_seconds_window: window_cpu,
                cpu_cores_window: window_cpu
                    .filter(|_| window_secs > 0.0)
                    .map(|c| c / window_secs),
                cpu_seconds_total: cpu.finish.zip(cpu.start).map(|(f, s)| f - s),
                peak_rss_bytes: super::sys::peak_rss_bytes(),
                files_limit: run.files,
                source_addresses: run.sources.iter().map(ToString::to_string).collect(),
            },
            server,
            timeline,
        }
    }
}
