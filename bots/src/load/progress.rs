//! The live progress line: how far the run is, how many clients are connected, and what they
//! see right now (frames and inputs per second, ack p99, desyncs, failures).
//!
//! It is an indicatif bar on stderr, redrawn twice a second from the shared counters; when
//! stderr is not a terminal indicatif draws nothing, so scripts get clean output.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::{Instant, MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;

use super::record::{Shared, histogram};

/// Draws the progress line until `done`; the bar runs over `total` (ramp + measured window).
pub async fn show(shared: Arc<Shared>, clients: u64, total: Duration, done: CancellationToken) {
    let bar = ProgressBar::new(total.as_millis().max(1) as u64);
    let style = ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:24}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    let mut tick = interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let (mut frames_before, mut inputs_before, mut at_before) = (0, 0, Instant::now());
    loop {
        tokio::select! {
            () = done.cancelled() => break,
            _ = tick.tick() => {}
        }
        let live = &shared.live;
        let now = Instant::now();
        let frames = live.frames.load(Relaxed);
        let inputs = live.inputs_sent.load(Relaxed);
        let dt = now
            .saturating_duration_since(at_before)
            .as_secs_f64()
            .max(1e-3);
        let p99 = ack_p99_ms(&shared);
        bar.set_position(now.saturating_duration_since(shared.t0).as_millis() as u64);
        bar.set_message(format!(
            "{}/{clients} connected  {:.0} frames/s  {:.0} inputs/s  ack p99 {}  desyncs {}  failed {}  chaos {}",
            live.connected.load(Relaxed),
            (frames - frames_before) as f64 / dt,
            (inputs - inputs_before) as f64 / dt,
            p99.map_or("–".to_owned(), |p| format!("{p:.1} ms")),
            live.desyncs.load(Relaxed),
            live.failed.load(Relaxed),
            live.chaos_drops.load(Relaxed),
        ));
        (frames_before, inputs_before, at_before) = (frames, inputs, now);
    }
    bar.finish_and_clear();
}

/// Input → ack p99 over every transport so far, in ms.
fn ack_p99_ms(shared: &Shared) -> Option<f64> {
    let mut all = histogram().ok()?;
    let rec = shared.recorder();
    for h in &rec.per {
        all.add(&h.ack).ok()?;
    }
    (!all.is_empty()).then(|| all.value_at_quantile(0.99) as f64 / 1e3)
}
