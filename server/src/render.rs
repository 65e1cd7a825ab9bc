//! How frames and other messages look on the HTTP transports: binary records, base64 for SSE,
//! and JSON for people and tools (`?format=json`).
//!
//! ```text
//! record   u32 little-endian length ‖ ServerMsg bytes     (HTTP streaming and poll bodies)
//! JSON     {"type": "welcome" | "chat" | "frame" | "close", …}   (one per line or SSE event)
//! chat     {"type": "chat", "tick", "from", "name", "text"}   (tick: the send it went out with)
//! frame    {"type": "frame", "tick", "base", "checksum", "ack", "removed": [id],
//!           "entities": [{"id", "kind", "x", "y", "vx", "vy", "angle", "hp", "flags",
//!                         "var", "owner", "score"}]}
//! ```
//!
//! A JSON frame lists every entity whose state differs from the baseline (every entity for a
//! keyframe) and the ids removed, so applying it to the baseline gives exactly the state whose
//! checksum it carries; the integers are the quantized wire values.

use crate::api::AppError;
use crate::fanout::{ChatLine, Payload, Published};
use crate::room::Room;
use bytes::Bytes;
use game_core::codec;
use game_core::protocol::{PROTOCOL_VERSION, ServerMsg};
use game_core::{EntityKind, EntityState, NetId, Snapshot};
use serde_json::{Value, json};
use std::sync::atomic::Ordering::Relaxed;

/// How a client wants its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The wire format: bincode `ServerMsg` bytes.
    Binary,
    /// JSON objects.
    Json,
}

impl Format {
    /// Reads `?format=`: absent or `binary`, or `json`.
    pub fn parse(v: Option<&str>) -> Result<Self, AppError> {
        match v {
            None | Some("binary") => Ok(Self::Binary),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(AppError::bad_request(format!(
                "format {other:?} is not binary or json"
            ))),
        }
    }
}

/// Prefixes a message with its `u32` little-endian length.
pub fn record(msg: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(msg.len() + 4);
    out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    out.extend_from_slice(msg);
    Bytes::from(out)
}

/// The `Welcome` an HTTP follower gets first.
pub fn welcome(room: &Room, entity: NetId) -> ServerMsg {
    ServerMsg::Welcome {
        version: PROTOCOL_VERSION,
        room: room.id().to_owned(),
        entity,
        token: None,
        tick_rate: room.tick_rate(),
        send_rate: room.send_rate(),
        tick: room.stats().tick.load(Relaxed),
        arena: room.arena().clone(),
    }
}

/// A message in the requested format: bincode bytes, or one line of JSON (no newline).
pub fn message(msg: &ServerMsg, format: Format) -> Bytes {
    match format {
        Format::Binary => Bytes::from(codec::encode_server(msg)),
        Format::Json => Bytes::from(message_json(msg).to_string()),
    }
}

fn message_json(msg: &ServerMsg) -> Value {
    match msg {
        ServerMsg::Welcome {
            version,
            room,
            entity,
            tick_rate,
            send_rate,
            tick,
            arena,
            ..
        } => json!({
            "type": "welcome", "version": version, "room": room, "entity": entity,
            "tick_rate": tick_rate, "send_rate": send_rate, "tick": tick,
            "arena": { "width": arena.width, "height": arena.height, "obstacles": arena.obstacles },
        }),
        ServerMsg::Close { code, reason } => {
            json!({ "type": "close", "code": code, "reason": reason })
        }
        ServerMsg::Chat { from, name, text } => {
            json!({ "type": "chat", "from": from, "name": name, "text": text })
        }
        ServerMsg::Pong { id, tick } => json!({ "type": "pong", "id": id, "tick": tick }),
        ServerMsg::Ping { id } => json!({ "type": "ping", "id": id }),
        // Frames are rendered from snapshots by `frame`; a bare Frame message has only bytes.
        ServerMsg::Frame(f) => {
            json!({ "type": "frame", "tick": f.tick, "base": f.base, "checksum": f.checksum, "ack": f.ack })
        }
    }
}

/// A chat line in the requested format: a `ServerMsg::Chat`, or JSON with the tick of the
/// send it went out with.
pub fn chat(line: &ChatLine, format: Format) -> Bytes {
    match format {
        Format::Binary => Bytes::from(codec::encode_server(&chat_msg(line))),
        Format::Json => Bytes::from(
            json!({
                "type": "chat", "tick": line.tick, "from": line.from,
                "name": &*line.name, "text": &*line.text,
            })
            .to_string(),
        ),
    }
}

/// A room's chat line as the message clients get.
pub fn chat_msg(line: &ChatLine) -> ServerMsg {
    ServerMsg::Chat {
        from: line.from,
        name: line.name.to_string(),
        text: line.text.to_string(),
    }
}

/// A frame in the requested format: the wire bytes, or JSON built from the snapshots.
pub fn frame(
    published: &Published,
    payload: &Payload,
    from: Option<&Snapshot>,
    ack: u32,
    format: Format,
) -> Bytes {
    match format {
        Format::Binary => published.frame_bytes(payload, ack),
        Format::Json => Bytes::from(frame_json(published, payload.base, from, ack).to_string()),
    }
}

fn frame_json(
    published: &Published,
    base: Option<u32>,
    from: Option<&Snapshot>,
    ack: u32,
) -> Value {
    let to = &published.snapshot;
    let empty = Snapshot::empty();
    let from = from.filter(|_| base.is_some()).unwrap_or(&empty);
    let mut removed = Vec::new();
    let mut entities = Vec::new();
    let (mut a, mut b) = (
        from.entities.iter().peekable(),
        to.entities.iter().peekable(),
    );
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(x), Some(y)) if x.id == y.id => {
                if x.kind != y.kind {
                    removed.push(x.id);
                }
                if x != y {
                    entities.push(entity_json(y));
                }
                a.next();
                b.next();
            }
            (Some(x), y) if y.is_none_or(|y| x.id < y.id) => {
                removed.push(x.id);
                a.next();
            }
            (_, Some(y)) => {
                entities.push(entity_json(y));
                b.next();
            }
            (Some(_), None) => break, // covered by the arm above; kept for exhaustiveness
        }
    }
    json!({
        "type": "frame", "tick": published.tick, "base": base, "checksum": published.checksum,
        "ack": ack, "removed": removed, "entities": entities,
    })
}

fn entity_json(e: &EntityState) -> Value {
    let kind = match e.kind {
        EntityKind::Ship => "ship",
        EntityKind::Bullet => "bullet",
        EntityKind::Asteroid => "asteroid",
        EntityKind::Pickup => "pickup",
    };
    json!({
        "id": e.id, "kind": kind, "x": e.x, "y": e.y, "vx": e.vx, "vy": e.vy, "angle": e.angle,
        "hp": e.hp, "flags": e.flags, "var": e.var, "owner": e.owner, "score": e.score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn e(id: NetId, kind: EntityKind, x: i32) -> EntityState {
        EntityState {
            x,
            ..EntityState::new(id, kind)
        }
    }

    #[test]
    fn json_frame_lists_changes_and_removals() {
        let a = Snapshot::new(
            10,
            vec![
                e(1, EntityKind::Ship, 0),
                e(2, EntityKind::Bullet, 5),
                e(3, EntityKind::Asteroid, 7),
            ],
        );
        let b = Snapshot::new(
            12,
            vec![
                e(1, EntityKind::Ship, 3),
                e(3, EntityKind::Pickup, 7),
                e(4, EntityKind::Bullet, 1),
            ],
        );
        let p = Published::next(
            Some(10),
            Arc::new(b.clone()),
            Bytes::new(),
            vec![(1, 4)],
            10,
        );
        let v = frame_json(&p, Some(10), Some(&a), 4);
        assert_eq!(v["base"], 10);
        assert_eq!(v["removed"], json!([2, 3]));
        let ids: Vec<_> = v["entities"]
            .as_array()
            .map(|a| a.iter().map(|e| e["id"].clone()).collect())
            .unwrap_or_default();
        assert_eq!(ids, [json!(1), json!(3), json!(4)]);
        assert_eq!(v["entities"][1]["kind"], "pickup");
        assert_eq!(v["checksum"], b.checksum());
        let key = frame_json(&p, None, Some(&a), 0);
        assert_eq!(
            (
                key["base"].clone(),
                key["entities"].as_array().map(Vec::len)
            ),
            (Value::Null, Some(3))
        );
    }

    #[test]
    fn records_are_length_prefixed() {
        assert_eq!(&record(b"abc")[..], &[3, 0, 0, 0, b'a', b'b', b'c']);
    }
}
