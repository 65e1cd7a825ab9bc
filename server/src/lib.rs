//! tickwire's server: rooms that run the game at a fixed tick, and the ways clients reach them.
//!
//! [`run`] takes a bound listener, a [`Config`] and a shutdown future, so the binary and the
//! tests start it the same way (tests bind port 0). Everything long-lived — room tasks,
//! WebSocket sessions — watches one [`CancellationToken`] and is counted by one [`TaskTracker`]:
//! axum's graceful shutdown alone covers neither upgraded sockets nor open streams.
//!
//! - [`config`]: settings and limits. [`metrics`]: counters and `/metrics`.
//! - [`registry`] and [`room`]: rooms and their tick loop. [`fanout`]: frames for each client.
//! - [`follow`]: the pull loop every transport shares; [`render`]: binary records and JSON.
//! - [`ws`]: WebSocket players and spectators, on sockets of their own ([`ws_link`]) that a
//!   shared writer sends to ([`ws_hub`]); [`sse`], [`stream`], [`poll`]: the HTTP push
//!   techniques; [`http_player`]: joining and sending input without WebSocket.
//! - [`chat`]: room chat lines in.
//! - [`api`]: the JSON API. [`stats`]: live figures once a second for `/dashboard`.
//! - [`serve`]: the accept loop; [`limits`]: connection, rate and origin limits.

pub mod api;
pub mod chat;
pub mod config;
pub mod direct;
pub mod fanout;
pub mod follow;
pub mod http_player;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod poll;
pub mod registry;
pub mod render;
pub mod room;
pub mod serve;
pub mod sse;
pub mod stats;
pub mod stream;
pub mod ws;
pub mod ws_hub;
pub mod ws_link;

pub use config::{Config, Flags};

use axum::Router;
use axum::routing::{get, post};
use metrics::Metrics;
use registry::Registry;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// The settings.
    pub cfg: Arc<Config>,
    /// The rooms.
    pub registry: Registry,
    /// The counters.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server shuts down; every long-lived task watches it.
    pub shutdown: CancellationToken,
    /// Counts long-lived tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Players who joined over HTTP, by token.
    pub http_players: Arc<http_player::HttpPlayers>,
    /// One permit per open long-lived connection (`max_connections`). A request that finds
    /// none left is refused at once with 503; nobody waits on it.
    pub connections: Arc<Semaphore>,
    /// Room creations per IP address (`room_creates_per_min`).
    pub room_creates: Arc<limits::PerIp>,
    /// Player joins and resumes per IP address (`joins_per_min`).
    pub joins: Arc<limits::PerIp>,
    /// The latest live figures and their history, published once a second by [`stats::sample`].
    pub stats: stats::Stats,
    /// Admits TCP connections (`max_connections`, `max_connections_per_ip`) and counts them.
    pub gate: Arc<limits::Gate>,
}

/// The routes, for [`run`] and for tests that want the app without a listener.
pub fn router(app: App) -> Router {
    let web = app.cfg.web_root();
    let routes = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/api/rooms", get(api::list_rooms).post(api::create_room))
        .route("/api/rooms/{id}", get(api::get_room))
        .route("/api/rooms/{id}/ws", get(ws::upgrade))
        .route("/api/rooms/{id}/sse", get(sse::sse))
        .route("/api/rooms/{id}/stream", get(stream::stream))
        .route("/api/rooms/{id}/poll", get(poll::poll))
        .route("/api/rooms/{id}/join", post(http_player::join))
        .route("/api/rooms/{id}/input", post(http_player::input))
        .route("/api/rooms/{id}/leave", post(http_player::leave))
        .route("/api/rooms/{id}/chat", post(http_player::chat))
        .route("/api/matchmake", post(api::matchmake))
        .route("/api/stats", get(stats::snapshot))
        .route("/api/stats/sse", get(stats::sse))
        .route("/dashboard", get(stats::dashboard));
    #[cfg(feature = "fault-injection")]
    let routes = routes.route("/api/rooms/{id}/fault", post(api::inject_fault));
    let routes = routes.route_layer(axum::middleware::from_fn_with_state(
        app.clone(),
        api::check_origin,
    ));
    // The browser client's files; without them, a page that says where the API is.
    let routes = if web.join("index.html").is_file() {
        routes.fallback_service(tower_http::services::ServeDir::new(web))
    } else {
        routes.route("/", get(api::index))
    };
    routes.with_state(app)
}

/// Serves until `shutdown` completes, then closes every client with a reason and returns once
/// tasks have finished or `shutdown_deadline_secs` has passed.
pub async fn run(
    listener: TcpListener,
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    cfg.validate()?;
    let arena = cfg.load_arena()?;
    let cfg = Arc::new(cfg);
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let metrics = Arc::new(Metrics::default());
    let registry = Registry::new(
        arena,
        cfg.clone(),
        metrics.clone(),
        token.clone(),
        tracker.clone(),
    );
    registry.create(Some("default".to_owned()), room::Owner::Server)?;
    let app = App {
        connections: Arc::new(Semaphore::new(cfg.max_connections)),
        cfg: cfg.clone(),
        registry,
        metrics,
        shutdown: token.clone(),
        tracker: tracker.clone(),
        http_players: Arc::default(),
        room_creates: Arc::new(limits::PerIp::new(cfg.room_creates_per_min)),
        joins: Arc::new(limits::PerIp::new(cfg.joins_per_min)),
        stats: stats::Stats::default(),
        gate: limits::Gate::new(cfg.max_connections, cfg.max_connections_per_ip),
    };
    tracker.spawn(stats::sample(app.clone()));
    // Drops HTTP player sessions nobody has used for the idle timeout.
    let (players, idle, stop) = (
        app.http_players.clone(),
        Duration::from_secs(cfg.idle_timeout_secs),
        token.clone(),
    );
    tracker.spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = every.tick() => players.reap(idle),
            }
        }
    });
    tracing::info!(addr = %listener.local_addr()?, "tickwire listening");
    let trigger = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    let gate = app.gate.clone();
    serve::serve(listener, router(app.clone()), app, gate).await;
    tracker.close();
    let deadline = Duration::from_secs(cfg.shutdown_deadline_secs);
    if tokio::time::timeout(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = tracker.len(),
            "shutdown deadline passed with tasks still running"
        );
    }
    Ok(())
}
