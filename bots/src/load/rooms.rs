//! Getting the server ready: is it there, do the rooms exist (created through
//! `POST /api/rooms`, reused when they do), and do the clients fit in them.
//!
//! The server's defaults hold 50 players per room (`room_capacity`) and 1,000 rooms
//! (`max_rooms`); a run that needs more says which server setting to raise rather than
//! failing obscurely halfway through.

use anyhow::{Context, bail};
use serde::Deserialize;

use super::cli::Settings;

/// What the run needs to know about its rooms.
#[derive(Clone, Debug)]
pub struct Rooms {
    /// Players a room takes (`room_capacity`).
    pub capacity: u16,
    /// Simulation ticks per second.
    pub tick_rate: u16,
    /// Frames per second to a client that keeps up.
    pub send_rate: u16,
    /// How many rooms were created by this run (the others existed).
    pub created: usize,
    /// Things the user should know (capacity too small).
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct RoomJson {
    capacity: u16,
    tick_rate: u16,
    send_rate: u16,
}

/// Checks that the server answers, creates or finds every room, and checks capacity.
pub async fn prepare(http: &reqwest::Client, s: &Settings) -> anyhow::Result<Rooms> {
    let base = s.url.trim_end_matches('/');
    http.get(format!("{base}/healthz"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| {
            format!(
                "cannot reach the server at {base} (is it running? cargo run --release -p server)"
            )
        })?;
    let mut created = 0;
    if s.create_rooms {
        for id in &s.rooms {
            let response = http
                .post(format!("{base}/api/rooms"))
                .json(&serde_json::json!({ "id": id }))
                .send()
                .await
                .with_context(|| format!("creating room {id}"))?;
            match response.status().as_u16() {
                201 => created += 1,
                409 => {} // room_exists: reuse it.
                503 => bail!(
                    "the server refused to open room {id}: it holds its maximum number of rooms. \
                     Raise max_rooms on the server to at least {} (server --max-rooms N, or \
                     TICKWIRE_MAX_ROOMS), or use fewer --rooms.",
                    s.rooms.len()
                ),
                status => {
                    let body = response.text().await.unwrap_or_default();
                    bail!("creating room {id}: HTTP {status}: {}", body.trim());
                }
            }
        }
    }
    let first = &s.rooms[0];
    let response = http
        .get(format!("{base}/api/rooms/{first}"))
        .send()
        .await
        .with_context(|| format!("reading room {first}"))?;
    if response.status().as_u16() == 404 {
        bail!("there is no room {first} on the server");
    }
    let room: RoomJson = response
        .error_for_status()?
        .json()
        .await
        .with_context(|| format!("room {first}'s JSON"))?;
    let mut warnings = Vec::new();
    let per_room = s.players.div_ceil(s.rooms.len());
    if per_room > usize::from(room.capacity) {
        warnings.push(format!(
            "{} players over {} room(s) is {per_room} per room, but the server's room_capacity is \
             {}: the extra players will be refused. Raise it on the server (server \
             --room-capacity {per_room}, or TICKWIRE_ROOM_CAPACITY={per_room}), or use --rooms {}.",
            s.players,
            s.rooms.len(),
            room.capacity,
            s.players.div_ceil(usize::from(room.capacity.max(1)))
        ));
    }
    Ok(Rooms {
        capacity: room.capacity,
        tick_rate: room.tick_rate,
        send_rate: room.send_rate,
        created,
        warnings,
    })
}
