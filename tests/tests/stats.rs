//! Live figures: `GET /api/stats` has every documented figure and the history on request; the
//! stats stream (`GET /api/stats/sse`) sends the history and a sample at once, then a sample a
//! second whose figures follow a bot that joins, plays and leaves; it ends on shutdown; and
//! `/dashboard` serves the page.

use bots::{Bot, BotConfig, ConnectOptions, Role};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tickwire_tests::*;

/// A WebSocket player that flies for `seconds`.
fn player(server: &TestServer, seconds: u64) -> Bot {
    let opts = ConnectOptions::new(&server.url(), "default", Role::Player)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = BotConfig::new(opts);
    cfg.duration = Some(Duration::from_secs(seconds));
    Bot::new(cfg)
}

/// The events of an open SSE response, one `(event, data)` at a time.
struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl Events {
    fn new(resp: reqwest::Response) -> Self {
        Self {
            body: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next event with a `data:` line (comments skipped); `None` when the stream ended.
    async fn next(&mut self, wait: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut data) = ("message".to_owned(), None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(
                            serde_json::from_str(v)
                                .unwrap_or_else(|e| panic!("{event} data is not JSON: {e}: {v}")),
                        );
                    }
                }
                if let Some(data) = data {
                    return Some((event, data));
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None | Some(Err(_))) => return None,
                Err(_) => panic!("no stats event within {wait:?}"),
            }
        }
    }

    /// The next `stats` event.
    async fn stats(&mut self) -> Value {
        match self.next(Duration::from_secs(5)).await {
            Some((event, data)) if event == "stats" => data,
            other => panic!("expected a stats event, got {other:?}"),
        }
    }

    /// Reads stats events until one satisfies `pred`; panics after `within`.
    async fn until(
        &mut self,
        within: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let s = self.stats().await;
            if pred(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {within:?}; last sample {s}"
            );
        }
    }
}

async fn open_stream(server: &TestServer) -> Events {
    let resp = reqwest::get(format!("{}/api/stats/sse", server.url()))
        .await
        .unwrap_or_else(|e| panic!("GET /api/stats/sse: {e}"));
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    Events::new(resp)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_json_has_every_figure_and_the_history_on_request() {
    let server = TestServer::start(test_config()).await;
    // Wait for a sample with a full second behind it, through the stream rather than a sleep.
    let mut events = open_stream(&server).await;
    events.next(Duration::from_secs(2)).await; // the history
    events
        .until(Duration::from_secs(5), "a second sample", |s| {
            s["seq"].as_u64() >= Some(1)
        })
        .await;

    let (status, s) = server.get_json("/api/stats").await;
    assert_eq!(status, 200);
    assert!(s["seq"].as_u64() >= Some(1), "{s}");
    assert!(s["time_ms"].as_u64() > Some(1_600_000_000_000), "{s}");
    assert!((0.5..2.0).contains(&f(&s["interval_secs"])), "{s}");
    // The default room ticks at 60 Hz; its ticks take well under a period.
    let tick = &s["tick"];
    assert!(
        (40.0..80.0).contains(&f(&tick["per_sec"])),
        "ticks per second: {tick}"
    );
    assert!(tick["p50_us"].as_u64() <= tick["p99_us"].as_u64(), "{tick}");
    assert!(
        tick["p99_us"].as_u64().is_some_and(|p| p <= 16_667),
        "{tick}"
    );
    assert!(tick["mean_us"].as_f64().is_some(), "{tick}");
    assert!(tick["overruns_per_sec"].is_number() && tick["overruns_total"].is_u64());
    for t in ["ws", "sse", "stream", "longpoll", "poll", "total"] {
        assert!(
            s["connections"][t]["player"].is_i64(),
            "connections.{t}: {s}"
        );
        assert!(
            s["connections"][t]["spectator"].is_i64(),
            "connections.{t}: {s}"
        );
        assert!(
            s["frames_per_sec"][t].is_number(),
            "frames_per_sec.{t}: {s}"
        );
        assert!(s["bytes_per_sec"][t].is_number(), "bytes_per_sec.{t}: {s}");
    }
    for k in [
        "inputs_per_sec",
        "rejections_per_sec",
        "dropped_ticks_per_sec",
    ] {
        assert!(s[k].is_number(), "{k}: {s}");
    }
    assert!(s["rejections_total"].is_u64() && s["room_panics"].is_u64());
    assert_eq!(s["rejections"]["bad_token"].as_u64(), Some(0), "{s}");
    // This process's CPU and memory, from /proc.
    assert!(s["cpu_percent"].as_f64().is_some(), "{s}");
    assert!(s["rss_bytes"].as_u64() > Some(1 << 20), "{s}");
    assert_eq!(s["rooms_open"].as_u64(), Some(1));
    let room = &s["rooms"][0];
    assert_eq!(room["id"], "default");
    assert_eq!(room["ai_ships"].as_u64(), Some(8), "{room}");
    assert!(room["tick"].as_u64() > Some(30), "{room}");
    assert!(f(&room["ticks"]["per_sec"]) > 40.0, "{room}");
    assert!(room["ticks"]["p99_us"].as_u64().is_some(), "{room}");

    let (status, with) = server.get_json("/api/stats?history=1").await;
    assert_eq!(status, 200);
    let history = with["history"].as_array().cloned().unwrap_or_default();
    assert!(history.len() >= 2, "history: {with}");
    let seqs: Vec<u64> = history.iter().filter_map(|h| h["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "oldest first: {seqs:?}"
    );
    assert_eq!(
        seqs.last().copied(),
        with["seq"].as_u64(),
        "ends with this sample"
    );
    assert!(history[0]["frames_per_sec"]["total"].is_number());
    assert!(
        history[0].get("rooms").is_none(),
        "history is server-wide figures only"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_stream_follows_a_bot_that_plays_and_leaves() {
    let server = TestServer::start(test_config()).await;
    let mut events = open_stream(&server).await;
    // At once: the history, then the latest sample.
    let (event, history) = events
        .next(Duration::from_secs(2))
        .await
        .unwrap_or_default();
    assert_eq!(event, "history");
    assert!(
        history.as_array().is_some_and(|h| !h.is_empty()),
        "{history}"
    );
    let first = events.stats().await;
    assert_eq!(first["connections"]["ws"]["player"], 0, "nobody plays yet");
    assert_eq!(first["frames_per_sec"]["ws"].as_f64(), Some(0.0));

    let bot = tokio::spawn(player(&server, 3).run(std::future::pending()));
    let playing = events
        .until(Duration::from_secs(6), "the bot's play shows", |s| {
            s["connections"]["ws"]["player"] == 1
                && f(&s["frames_per_sec"]["ws"]) > 10.0
                && f(&s["bytes_per_sec"]["ws"]) > 100.0
                && f(&s["inputs_per_sec"]) > 20.0
        })
        .await;
    assert_eq!(playing["connections"]["total"]["player"], 1, "{playing}");
    let room = &playing["rooms"][0];
    assert_eq!(
        (room["id"].as_str(), room["players"].as_u64()),
        (Some("default"), Some(1))
    );

    let report = bot
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("bot failed to start: {e}"));
    assert!(report.error.is_none(), "bot ended with {:?}", report.error);
    events
        .until(Duration::from_secs(5), "the bot's leaving shows", |s| {
            s["connections"]["ws"]["player"] == 0 && s["frames_per_sec"]["ws"].as_f64() == Some(0.0)
        })
        .await;
    server.stop().await;
}

#[tokio::test]
async fn the_stats_stream_ends_on_shutdown_and_the_dashboard_is_served() {
    let server = TestServer::start(test_config()).await;
    let page = reqwest::get(format!("{}/dashboard", server.url()))
        .await
        .unwrap_or_else(|e| panic!("GET /dashboard: {e}"));
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/html"))
    );
    let html = page.text().await.unwrap_or_default();
    assert!(html.contains("/src/dashboard.js"), "{html}");

    let mut events = open_stream(&server).await;
    events.next(Duration::from_secs(2)).await;
    events.stats().await;
    let stopping = tokio::spawn(server.stop());
    // Well before the shutdown deadline (3 s): the stream watches the shutdown token.
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while events.next(Duration::from_secs(2)).await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stats stream did not end on shutdown");
    stopping.await.unwrap_or_else(|e| panic!("{e}"));
}
