//! Live operations figures for people: `GET /api/stats`, `GET /api/stats/sse` and the
//! `/dashboard` page that draws them.
//!
//! `/metrics` gives counters for Prometheus to turn into rates; this module does that itself,
//! once a second, so a browser can watch the server without a monitoring stack. One sampler
//! task ([`sample`]) reads every counter ([`Reading`]), turns the difference from the previous
//! reading into rates and tick percentiles ([`Sample::between`]), keeps the last
//! [`HISTORY`] samples, and publishes the result through a `watch` channel — serialized once,
//! shared by every reader, latest value only, so a slow dashboard skips seconds and nothing
//! queues for it.
//!
//! ```text
//! GET /api/stats             200 Sample                                   (JSON, below)
//! GET /api/stats?history=1   200 Sample + "history": [Figures, …]         oldest first, ≤ 300,
//!                                                                         the last is this one
//! GET /api/stats/sse         200 text/event-stream
//!   retry: 2000
//!   event: history           data: [Figures, …]        at once (as above)
//!   event: stats             data: Sample              at once, then once a second
//!   : keep-alive                                       every sse_keepalive_secs
//! GET /dashboard             web-client/dashboard.html
//! ```
//!
//! A `Sample` is the server-wide [`Figures`] plus `rejections` (cumulative, by reason) and
//! `rooms` (the busiest [`ROOMS_SHOWN`], with their own tick figures). History entries are
//! `Figures` only, so 300 of them stay small however many rooms there are.

use crate::App;
use crate::api::AppError;
use crate::metrics::{
    ProcessStats, Rejection, Role, TICK_BUCKETS_US, TickHistogram, Transport, tick_quantile_us,
};
use crate::room::Room;
use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Samples kept for charts: five minutes at one a second.
pub const HISTORY: usize = 300;
/// Rooms listed in a sample, busiest first; the rest are counted in `rooms_open`.
pub const ROOMS_SHOWN: usize = 50;
/// Time between samples.
pub const PERIOD: Duration = Duration::from_secs(1);

/// The published figures: the latest sample and the history, shared by every reader.
///
/// A `watch` channel: the sampler writes it once a second; `GET /api/stats` reads the latest
/// value and every stats stream waits on it for the next. Latest value only, so it never
/// fills: a stream that is slow to send skips samples, and nothing queues per client.
#[derive(Clone)]
pub struct Stats {
    tx: Arc<watch::Sender<Arc<Published>>>,
}

impl Default for Stats {
    fn default() -> Self {
        let first = Published {
            json: "{}".to_owned(),
            history: VecDeque::new(),
        };
        Self {
            tx: Arc::new(watch::Sender::new(Arc::new(first))),
        }
    }
}

impl Stats {
    /// The latest sample.
    pub fn latest(&self) -> Arc<Published> {
        self.tx.borrow().clone()
    }

    fn publish(&self, p: Published) {
        self.tx.send_replace(Arc::new(p));
    }
}

/// One published sample.
#[derive(Debug)]
pub struct Published {
    /// The [`Sample`] as JSON.
    pub json: String,
    /// The [`Figures`] of the last [`HISTORY`] samples as JSON, oldest first, ending with this
    /// one. Shared with the next samples' histories, not copied.
    history: VecDeque<Arc<str>>,
}

impl Published {
    /// The history as a JSON array.
    pub fn history_json(&self) -> String {
        let mut out =
            String::with_capacity(2 + self.history.iter().map(|h| h.len() + 1).sum::<usize>());
        out.push('[');
        for (i, h) in self.history.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(h);
        }
        out.push(']');
        out
    }

    /// The sample with its history as one more field, `"history"`.
    pub fn with_history(&self) -> String {
        // `json` is an object serde_json wrote: splice the field in before its closing brace.
        let body = self.json.strip_suffix('}').unwrap_or("{");
        let sep = if body.len() > 1 { "," } else { "" };
        format!("{body}{sep}\"history\":{}}}", self.history_json())
    }
}

/// Every counter the figures come from, read at one instant.
#[derive(Debug, Clone)]
pub struct Reading {
    /// When it was read.
    pub at: Instant,
    /// Unix time of the reading, milliseconds.
    pub unix_ms: u64,
    /// Every room's ticks together.
    pub ticks: TickReading,
    /// Ticks dropped so far.
    pub dropped: u64,
    /// Open connections by transport and role ([`Transport::ALL`] × [`Role::ALL`]).
    pub connections: [[i64; 2]; 5],
    /// Frames sent so far, by transport.
    pub frames: [u64; 5],
    /// Bytes sent so far, by transport.
    pub bytes: [u64; 5],
    /// Inputs accepted so far.
    pub inputs: u64,
    /// Rejections so far, by reason.
    pub rejections: Vec<(&'static str, u64)>,
    /// Room tasks that panicked so far.
    pub panics: u64,
    /// CPU seconds and resident memory of the process.
    pub process: ProcessStats,
    /// Every open room.
    pub rooms: Vec<RoomReading>,
}

/// A [`TickHistogram`] read at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickReading {
    /// Ticks per bucket of [`TICK_BUCKETS_US`].
    pub buckets: [u64; TICK_BUCKETS_US.len()],
    /// Ticks.
    pub count: u64,
    /// Their total duration, microseconds.
    pub sum_us: u64,
    /// Ticks over their period.
    pub overruns: u64,
}

impl TickReading {
    /// Reads a histogram.
    pub fn of(h: &TickHistogram) -> Self {
        Self {
            buckets: h.buckets(),
            count: h.count(),
            sum_us: h.sum_us(),
            overruns: h.overruns(),
        }
    }

    /// The figures of the ticks between `prev` and `self`, `secs` apart. Counters that went
    /// backwards (a room re-created under the same id) count as zero.
    fn since(&self, prev: &Self, secs: f64) -> TickFigures {
        let diff: [u64; TICK_BUCKETS_US.len()] =
            std::array::from_fn(|i| self.buckets[i].saturating_sub(prev.buckets[i]));
        let count = self.count.saturating_sub(prev.count);
        let sum = self.sum_us.saturating_sub(prev.sum_us);
        TickFigures {
            per_sec: per_sec(count, secs),
            p50_us: tick_quantile_us(&diff, 0.5),
            p99_us: tick_quantile_us(&diff, 0.99),
            mean_us: (count > 0).then(|| round2(sum as f64 / count as f64)),
            overruns_per_sec: per_sec(self.overruns.saturating_sub(prev.overruns), secs),
            overruns_total: self.overruns,
        }
    }
}

/// One room's counters at one instant.
#[derive(Debug, Clone)]
pub struct RoomReading {
    /// Its id.
    pub id: String,
    /// Human players holding a ship.
    pub players: u32,
    /// AI ships.
    pub ai_ships: u32,
    /// Connected spectators.
    pub spectators: u32,
    /// Its tick.
    pub tick: u32,
    /// Its tick durations.
    pub ticks: TickReading,
}

impl RoomReading {
    /// Reads a room's figures.
    pub fn of(room: &Room) -> Self {
        let s = room.stats();
        Self {
            id: room.id().to_owned(),
            players: s.players.load(Relaxed),
            ai_ships: s.ai_ships.load(Relaxed),
            spectators: s.spectators.load(Relaxed),
            tick: s.tick.load(Relaxed),
            ticks: TickReading::of(&s.ticks),
        }
    }
}

impl Reading {
    /// Reads every counter of `app` now.
    pub fn take(app: &App) -> Self {
        let m = &app.metrics;
        Self {
            at: Instant::now(),
            unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            ticks: TickReading::of(&m.ticks),
            dropped: m.dropped_ticks(),
            connections: Transport::ALL.map(|t| Role::ALL.map(|r| m.connections(t, r))),
            frames: m.frames_out(),
            bytes: m.bytes_out_total(),
            inputs: m.inputs_in(),
            rejections: m.rejection_counts(),
            panics: m.room_panics(),
            process: ProcessStats::read(),
            rooms: app.registry.list().iter().map(RoomReading::of).collect(),
        }
    }
}

/// Tick figures over one interval.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TickFigures {
    /// Ticks run per second (all rooms together, or one room's).
    pub per_sec: f64,
    /// Median tick duration: the upper bound of its histogram bucket; `null` without ticks.
    pub p50_us: Option<u64>,
    /// 99th percentile tick duration, likewise.
    pub p99_us: Option<u64>,
    /// Mean tick duration; `null` without ticks.
    pub mean_us: Option<f64>,
    /// Ticks per second that took longer than their period.
    pub overruns_per_sec: f64,
    /// Overruns since the start.
    pub overruns_total: u64,
}

/// One figure per transport, and their sum.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PerTransport<T> {
    /// WebSocket.
    pub ws: T,
    /// Server-Sent Events.
    pub sse: T,
    /// HTTP streaming.
    pub stream: T,
    /// Long polling.
    pub longpoll: T,
    /// Polling.
    pub poll: T,
    /// All five.
    pub total: T,
}

impl<T: Copy> PerTransport<T> {
    /// From values in [`Transport::ALL`] order and their total.
    fn new(v: [T; 5], total: T) -> Self {
        let [ws, sse, stream, longpoll, poll] = v;
        Self {
            ws,
            sse,
            stream,
            longpoll,
            poll,
            total,
        }
    }
}

/// Open connections of one transport.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default)]
pub struct ByRole {
    /// Players.
    pub player: i64,
    /// Spectators.
    pub spectator: i64,
}

/// The server-wide figures of one sample: what the dashboard charts, and what the history holds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    /// Sample number since the server started; 0 has no interval, so its rates are 0.
    pub seq: u64,
    /// Unix time of the reading, milliseconds.
    pub time_ms: u64,
    /// Seconds between this reading and the one before: what the rates are over.
    pub interval_secs: f64,
    /// Every room's ticks together.
    pub tick: TickFigures,
    /// Ticks per second dropped because a room fell too far behind.
    pub dropped_ticks_per_sec: f64,
    /// Open connections by transport and role (a poller counts while its request is open).
    pub connections: PerTransport<ByRole>,
    /// Frames sent per second, by transport.
    pub frames_per_sec: PerTransport<f64>,
    /// Bytes sent per second, by transport.
    pub bytes_per_sec: PerTransport<f64>,
    /// Inputs accepted per second.
    pub inputs_per_sec: f64,
    /// Rejections per second, all reasons.
    pub rejections_per_sec: f64,
    /// Rejections since the start, all reasons.
    pub rejections_total: u64,
    /// Process CPU in percent of one core; `null` where `/proc` is missing.
    pub cpu_percent: Option<f64>,
    /// Resident memory in bytes; `null` where `/proc` is missing.
    pub rss_bytes: Option<u64>,
    /// Rooms open.
    pub rooms_open: usize,
    /// Room tasks that panicked since the start.
    pub room_panics: u64,
}

/// One room's figures over one interval.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RoomFigures {
    /// Its id.
    pub id: String,
    /// Human players holding a ship.
    pub players: u32,
    /// AI ships.
    pub ai_ships: u32,
    /// Connected spectators.
    pub spectators: u32,
    /// Its tick.
    pub tick: u32,
    /// Its tick durations over the interval.
    pub ticks: TickFigures,
}

/// Everything one sample says: `GET /api/stats` and each `stats` event.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// The server-wide figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// Rejections since the start, by reason (every reason, zeros included).
    pub rejections: BTreeMap<&'static str, u64>,
    /// The busiest [`ROOMS_SHOWN`] rooms (players + spectators, then id).
    pub rooms: Vec<RoomFigures>,
}

impl Sample {
    /// The figures between two readings: rates are differences over the time between them,
    /// percentiles come from the difference of the histogram buckets. Pure, for tests.
    pub fn between(prev: &Reading, cur: &Reading, seq: u64) -> Self {
        let secs = cur.at.saturating_duration_since(prev.at).as_secs_f64();
        let diff5 = |a: &[u64; 5], b: &[u64; 5]| -> [f64; 5] {
            std::array::from_fn(|i| per_sec(a[i].saturating_sub(b[i]), secs))
        };
        let frames = diff5(&cur.frames, &prev.frames);
        let bytes = diff5(&cur.bytes, &prev.bytes);
        let conns = cur.connections.map(|[p, s]| ByRole {
            player: p,
            spectator: s,
        });
        let total = conns.iter().fold(ByRole::default(), |a, c| ByRole {
            player: a.player + c.player,
            spectator: a.spectator + c.spectator,
        });
        let rejected = |r: &Reading| r.rejections.iter().map(|(_, n)| n).sum::<u64>();
        let rejections_total = rejected(cur);
        let cpu_percent = match (prev.process.cpu_seconds, cur.process.cpu_seconds) {
            (Some(a), Some(b)) if secs > 0.0 => Some(round2((b - a).max(0.0) / secs * 100.0)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        let figures = Figures {
            seq,
            time_ms: cur.unix_ms,
            interval_secs: round2(secs),
            tick: cur.ticks.since(&prev.ticks, secs),
            dropped_ticks_per_sec: per_sec(cur.dropped.saturating_sub(prev.dropped), secs),
            connections: PerTransport::new(conns, total),
            frames_per_sec: PerTransport::new(frames, round2(frames.iter().sum())),
            bytes_per_sec: PerTransport::new(bytes, round2(bytes.iter().sum())),
            inputs_per_sec: per_sec(cur.inputs.saturating_sub(prev.inputs), secs),
            rejections_per_sec: per_sec(rejections_total.saturating_sub(rejected(prev)), secs),
            rejections_total,
            cpu_percent,
            rss_bytes: cur.process.resident_bytes,
            rooms_open: cur.rooms.len(),
            room_panics: cur.panics,
        };
        let before: HashMap<&str, &TickReading> = prev
            .rooms
            .iter()
            .map(|r| (r.id.as_str(), &r.ticks))
            .collect();
        let mut rooms: Vec<&RoomReading> = cur.rooms.iter().collect();
        rooms.sort_by(|a, b| {
            (b.players + b.spectators)
                .cmp(&(a.players + a.spectators))
                .then_with(|| a.id.cmp(&b.id))
        });
        let rooms = rooms
            .into_iter()
            .take(ROOMS_SHOWN)
            .map(|r| RoomFigures {
                id: r.id.clone(),
                players: r.players,
                ai_ships: r.ai_ships,
                spectators: r.spectators,
                tick: r.tick,
                // A room new since the last reading counts from zero.
                ticks: r.ticks.since(
                    before
                        .get(r.id.as_str())
                        .copied()
                        .unwrap_or(&TickReading::default()),
                    secs,
                ),
            })
            .collect();
        Self {
            figures,
            rejections: cur.rejections.iter().copied().collect(),
            rooms,
        }
    }
}

/// `n` events over `secs` seconds, per second, to two decimals; 0 over no time.
fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        round2(n as f64 / secs)
    } else {
        0.0
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The sampler's memory: the sample count and the history of figures.
#[derive(Debug, Default)]
struct History {
    seq: u64,
    figures: VecDeque<Arc<str>>,
}

impl History {
    /// Serializes the sample between two readings and adds its figures to the history.
    fn next(&mut self, prev: &Reading, cur: &Reading) -> Published {
        let sample = Sample::between(prev, cur, self.seq);
        self.seq += 1;
        let json = serde_json::to_string(&sample).unwrap_or_else(|_| "{}".to_owned());
        let figures = serde_json::to_string(&sample.figures).unwrap_or_else(|_| "{}".to_owned());
        let figures: Arc<str> = figures.into();
        if self.figures.len() == HISTORY {
            self.figures.pop_front();
        }
        self.figures.push_back(figures);
        Published {
            json,
            history: self.figures.clone(),
        }
    }
}

/// The sampler: publishes a first sample before it returns (no rates yet, so nobody who
/// connects at start-up gets an empty one), and returns the task that publishes one every
/// [`PERIOD`] until the server shuts down. Spawn it on `app.tracker`.
pub fn sample(app: App) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut history = History::default();
    let mut prev = Reading::take(&app);
    app.stats.publish(history.next(&prev, &prev));
    async move {
        let mut every = tokio::time::interval_at(tokio::time::Instant::now() + PERIOD, PERIOD);
        // Rates are over measured time, so a late tick only stretches one interval.
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = app.shutdown.cancelled() => break,
                _ = every.tick() => {
                    let cur = Reading::take(&app);
                    app.stats.publish(history.next(&prev, &cur));
                    prev = cur;
                }
            }
        }
    }
}

/// The query of `GET /api/stats`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct StatsQuery {
    /// `1` or `true`: add the history.
    pub history: Option<String>,
}

/// `GET /api/stats` (`?history=1` adds the history).
pub async fn snapshot(State(app): State<App>, Query(q): Query<StatsQuery>) -> Response {
    let latest = app.stats.latest();
    let body = match q.history.as_deref() {
        Some("1" | "true") => latest.with_history(),
        _ => latest.json.clone(),
    };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/stats/sse`: the history and the latest sample at once, then each new sample.
/// Holds one of the server's connection permits while open; ends on shutdown.
pub async fn sse(State(app): State<App>) -> Result<Response, AppError> {
    let permit = app.connections.clone().try_acquire_owned().map_err(|_| {
        app.metrics.reject(Rejection::TooManyConnections);
        AppError::too_many_connections()
    })?;
    let mut rx = app.stats.tx.subscribe();
    let latest = rx.borrow_and_update().clone();
    let first = [
        Event::default()
            .retry(Duration::from_millis(app.cfg.sse_retry_ms))
            .event("history")
            .data(latest.history_json()),
        Event::default().event("stats").data(&latest.json),
    ];
    let later = futures_util::stream::unfold(
        (rx, app.shutdown.clone(), permit),
        |(mut rx, shutdown, permit)| async move {
            tokio::select! {
                _ = shutdown.cancelled() => None,
                changed = rx.changed() => {
                    changed.ok()?;
                    let p = rx.borrow_and_update().clone();
                    let event = Event::default().event("stats").data(&p.json);
                    Some((event, (rx, shutdown, permit)))
                }
            }
        },
    );
    let events = futures_util::stream::iter(first)
        .chain(later)
        .map(Ok::<_, std::convert::Infallible>);
    let keepalive = Duration::from_secs(app.cfg.sse_keepalive_secs);
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(keepalive).text("keep-alive"));
    let no_buffering = [(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    )];
    Ok((no_buffering, sse).into_response())
}

/// `GET /dashboard`: the dashboard page from the web root.
pub async fn dashboard(State(app): State<App>) -> Response {
    let path = app.cfg.web_root().join("dashboard.html");
    match tokio::fs::read_to_string(&path).await {
        Ok(html) => (
            [(header::CACHE_CONTROL, "no-cache")],
            axum::response::Html(html),
        )
            .into_response(),
        Err(_) => {
            let body = serde_json::json!({ "error": {
                "code": "not_found",
                "message": "the dashboard page is not in the web root (--web-root)",
            }});
            (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests;
