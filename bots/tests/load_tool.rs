//! The load tool itself (the `bots` binary), run for real against a real server started in
//! this process on an ephemeral loopback port.
//!
//! Each test runs the binary for a second or two with every client verifying, then checks its
//! JSON report against what the run must have produced and against the server's own counters,
//! and checks the exit status that scripts rely on. Nothing asserts speed: the figures that
//! depend on timing (latencies, rates) are checked only for shape (present, ordered), never
//! for size.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use server::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Longest a run of the tool may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// A server on port 0 in this test's runtime.
struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(cfg: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr: {e}"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, cfg, async move {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            stop: Some(stop),
            task,
        }
    }

    /// The value of one `/metrics` sample line, exactly as printed (labels included).
    async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics body: {e}"));
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name}"))
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

fn config() -> Config {
    Config {
        shutdown_deadline_secs: 2,
        ..Config::default()
    }
}

/// A scratch file for a report.
fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tickwire-load-{}-{name}", std::process::id()))
}

/// Runs the tool with `args` and returns its output.
async fn bots(args: &[&str]) -> Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_bots"))
        .args(args)
        .kill_on_drop(true)
        .output();
    timeout(RUN_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("bots {args:?} did not finish in {RUN_LIMIT:?}"))
        .unwrap_or_else(|e| panic!("running bots: {e}"))
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn explain(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A small run over every transport: every field the report promises is there and agrees with
/// the run and with the server's counters; the exit status is 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_run_reports_what_happened() {
    let server = Server::start(config()).await;
    let json = scratch("small.json");
    let html = scratch("small.html");
    let out = bots(&[
        "--url",
        &server.base,
        "--players",
        "5",
        "--spectators",
        "5",
        "--transport",
        "mix",
        "--rooms",
        "2",
        "--duration",
        "1.5",
        "--ramp",
        "50",
        "--verify",
        "1",
        "--json",
        json.to_str().unwrap_or_default(),
        "--report",
        html.to_str().unwrap_or_default(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    // The table went to stdout.
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("result       OK"), "{table}");
    let r = read_json(&json);

    assert_eq!((r["ok"].as_bool(), u(&r["exit_code"])), (Some(true), 0));
    assert_eq!(r["tool"], "tickwire-load");
    let c = &r["connections"];
    assert_eq!(u(&c["clients"]), 10);
    // No chaos and a healthy server: one connection each, all good.
    assert_eq!(
        (u(&c["attempted"]), u(&c["ok"]), u(&c["failed"])),
        (10, 10, 0)
    );
    assert_eq!((u(&c["reconnects"]), u(&c["chaos_drops"])), (0, 0));

    // Every client verified every frame (--verify 1), and none desynced.
    let frames = &r["frames"];
    let received = u(&frames["received"]);
    assert!(received > 0);
    assert_eq!(u(&frames["verified"]), received);
    assert_eq!(u(&frames["skimmed"]), 0);
    assert!(
        u(&frames["keyframes"]) >= 10,
        "each client starts with a keyframe"
    );
    assert_eq!(u(&r["desyncs"]), 0);

    // The clients cannot have received more frames than the server sent.
    let mut sent_by_server = 0.0;
    for t in ["ws", "sse", "stream", "longpoll", "poll"] {
        sent_by_server += server
            .metric(&format!("tickwire_frames_out_total{{transport=\"{t}\"}}"))
            .await;
    }
    assert!(
        received as f64 <= sent_by_server,
        "{received} > {sent_by_server}"
    );

    // Every input was acknowledged before the players left, and the server counted exactly
    // the inputs the players sent.
    let inputs = &r["inputs"];
    let sent = u(&inputs["sent"]);
    assert!(sent > 0);
    assert_eq!(u(&inputs["acknowledged"]), sent);
    assert_eq!((u(&inputs["lost"]), u(&inputs["acks_regressed"])), (0, 0));
    assert_eq!(server.metric("tickwire_inputs_total").await, sent as f64);

    // Latencies: present and ordered.
    for key in ["input_to_ack_ms", "frame_interarrival_ms"] {
        let d = &r[key];
        assert!(u(&d["count"]) > 0, "{key}: {d}");
        let (p50, p95, p99, max) = (f(&d["p50"]), f(&d["p95"]), f(&d["p99"]), f(&d["max"]));
        assert!(
            0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max,
            "{key}: {d}"
        );
    }

    // Two clients on each transport (one player, one spectator), each with frames and bytes.
    let per = r["transports"]
        .as_object()
        .unwrap_or_else(|| panic!("transports: {}", r["transports"]));
    assert_eq!(per.len(), 5);
    for (name, t) in per {
        assert_eq!((u(&t["clients"]), u(&t["players"])), (2, 1), "{name}");
        assert!(u(&t["frames"]) > 0 && u(&t["bytes"]) > 0, "{name}: {t}");
        assert!(f(&t["bytes_per_client_per_sec"]) > 0.0, "{name}: {t}");
        assert!(
            f(&t["server_bytes_per_client_per_sec"]) > 0.0,
            "{name}: {t}"
        );
        assert!(
            u(&t["input_to_ack_ms"]["count"]) > 0,
            "{name}: the player's acks"
        );
        assert!(
            !t["input_to_ack_histogram"]
                .as_array()
                .is_none_or(Vec::is_empty)
        );
        assert!(
            !r["timeline"]["transports"][name]["frames"]
                .as_array()
                .is_none_or(Vec::is_empty)
        );
    }

    // The server's side, scraped around the window.
    let s = &r["server"]["window"];
    assert!(u(&s["frames_out"]) > 0 && u(&s["ticks"]) > 0, "{s}");
    assert!(f(&s["cpu_us_per_frame"]) > 0.0, "{s}");
    // The user/kernel split of the server's CPU. The server renders the total and both parts
    // from one read of /proc/self/stat (utime + stime ticks), so at every scrape they add up
    // exactly, and so do their differences, up to float rounding: no tick granularity slack.
    for w in [s, &r["server"]["whole"]] {
        let (user, system) = (f(&w["cpu_user_seconds"]), f(&w["cpu_system_seconds"]));
        assert!(user >= 0.0 && system >= 0.0, "{w}");
        assert!(
            (user + system - f(&w["cpu_seconds"])).abs() < 1e-6,
            "user + system = total: {w}"
        );
        let (user, system) = (
            f(&w["cpu_user_us_per_frame"]),
            f(&w["cpu_system_us_per_frame"]),
        );
        assert!(user >= 0.0 && system >= 0.0, "{w}");
        assert!(
            (user + system - f(&w["cpu_us_per_frame"])).abs() < 1e-6,
            "user + system = total per frame: {w}"
        );
    }
    assert!(f(&s["tick_p99_ms"]) > 0.0, "{s}");
    assert!(u(&s["rss_end_bytes"]) > 0, "{s}");
    assert!(u(&s["rooms_end"]) >= 3, "default + load-1 + load-2: {s}");
    assert!(f(&r["generator"]["cpu_seconds_total"]) > 0.0);
    assert!(
        u(&r["generator"]["files_limit"]["soft"]) >= u(&r["generator"]["files_limit"]["needed"])
    );

    // The rooms were created through the API.
    assert_eq!(u(&r["config"]["rooms_created"]), 2);
    for room in ["load-1", "load-2"] {
        let status = reqwest::get(format!("{}/api/rooms/{room}", server.base))
            .await
            .map(|r| r.status().as_u16());
        assert!(matches!(status, Ok(200)), "{room}: {status:?}");
    }

    // The page is self-contained: inline SVG, nothing fetched.
    let page = std::fs::read_to_string(&html).unwrap_or_default();
    assert!(page.starts_with("<!doctype html>") && page.contains("<svg"));
    assert!(!page.contains("src=") && !page.contains("<script"));
    let _ = std::fs::remove_file(json);
    let _ = std::fs::remove_file(html);
    server.stop().await;
}

/// One corrupted frame (`--inject-desync`) is detected as a desync, and the run fails with
/// exit status 2 so that scripts notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_induced_desync_fails_the_run() {
    let server = Server::start(config()).await;
    let json = scratch("desync.json");
    let out = bots(&[
        "--url",
        &server.base,
        "--players",
        "1",
        "--spectators",
        "1",
        "--duration",
        "1",
        "--ramp",
        "0",
        "--inject-desync",
        "--quiet",
        "--json",
        json.to_str().unwrap_or_default(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    let r = read_json(&json);
    assert_eq!(r["ok"].as_bool(), Some(false));
    assert_eq!(
        u(&r["desyncs"]),
        1,
        "exactly the corrupted frame: {}",
        r["desyncs"]
    );
    assert!(
        r["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("desync"))
    );
    // The client resumed from a keyframe and went on.
    assert_eq!(u(&r["connections"]["failure_reasons"]["desync"]), 1);
    assert!(u(&r["connections"]["reconnects"]) >= 1);
    let _ = std::fs::remove_file(json);
    server.stop().await;
}

/// More players than a room holds: the tool says which server setting to raise, and counts
/// the refused players as failed connections (not as a failed run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_too_small_is_explained() {
    let server = Server::start(Config {
        room_capacity: 2,
        ..config()
    })
    .await;
    let json = scratch("full.json");
    let out = bots(&[
        "--url",
        &server.base,
        "--players",
        "3",
        "--duration",
        "0.5",
        "--ramp",
        "0",
        "--quiet",
        "--json",
        json.to_str().unwrap_or_default(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let r = read_json(&json);
    let warning = r["warnings"][0].as_str().unwrap_or_default().to_owned();
    assert!(
        warning.contains("room_capacity") && warning.contains("--room-capacity 3"),
        "{warning}"
    );
    assert_eq!(u(&r["connections"]["ok"]), 2);
    assert_eq!(u(&r["connections"]["gave_up"]), 1);
    assert_eq!(u(&r["connections"]["failure_reasons"]["refused 4003"]), 1);
    let _ = std::fs::remove_file(json);
    server.stop().await;
}

/// No server: exit status 1 and a message that says what to do.
#[tokio::test]
async fn no_server_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://127.0.0.1:{port}");
    let out = bots(&[
        "--url",
        &url,
        "--players",
        "1",
        "--duration",
        "1",
        "--quiet",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the server") && err.contains("cargo run --release -p server"),
        "{err}"
    );
}
