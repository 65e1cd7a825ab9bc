//! Golden vectors: exact bytes of messages, deltas and checksums, for the JavaScript client.
//!
//! This test renders a fixed set of values with their encodings into
//! `web-client/test/vectors/vectors.json` and fails when the encoder's output no longer matches
//! the checked-in file. The browser's codec is tested against the same file, so any change to
//! the wire shows up as a diff here and a failure there. Regenerate only on purpose:
//!
//! ```text
//! TICKWIRE_REGEN_VECTORS=1 cargo test -p game-core --test golden
//! ```

use game_core::codec::{decode_client, decode_server, encode_client, encode_server};
use game_core::delta;
use game_core::protocol::{
    ArenaInfo, ClientMsg, Frame, Input, PROTOCOL_VERSION, ServerMsg, SessionToken,
};
use game_core::snapshot::{EntityKind, EntityState, FLAG_DEAD, FLAG_SHIELD, FLAG_THRUST, Snapshot};
use serde_json::{Value, json};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../web-client/test/vectors/vectors.json"
);
const STREAM_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../web-client/test/vectors/stream.json"
);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn entity_json(e: &EntityState) -> Value {
    json!({
        "id": e.id, "kind": e.kind as u8, "x": e.x, "y": e.y, "vx": e.vx, "vy": e.vy,
        "angle": e.angle, "hp": e.hp, "flags": e.flags, "var": e.var, "owner": e.owner,
        "score": e.score,
    })
}

fn snapshot_json(s: &Snapshot) -> Value {
    json!({ "tick": s.tick, "entities": s.entities.iter().map(entity_json).collect::<Vec<_>>() })
}

fn token_json(t: &Option<SessionToken>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_string()))
}

fn client_json(m: &ClientMsg) -> Value {
    match m {
        ClientMsg::Hello {
            version,
            name,
            token,
            last_tick,
        } => json!({
            "type": "Hello", "version": version, "name": name, "token": token_json(token),
            "last_tick": last_tick,
        }),
        ClientMsg::Input { seq, input } => json!({
            "type": "Input", "seq": seq,
            "input": { "thrust": input.thrust, "turn": input.turn, "buttons": input.buttons },
        }),
        ClientMsg::Ping { id } => json!({ "type": "Ping", "id": id }),
        ClientMsg::Pong { id } => json!({ "type": "Pong", "id": id }),
        ClientMsg::Chat { text } => json!({ "type": "Chat", "text": text }),
        ClientMsg::Leave => json!({ "type": "Leave" }),
    }
}

fn server_json(m: &ServerMsg) -> Value {
    match m {
        ServerMsg::Welcome {
            version,
            room,
            entity,
            token,
            tick_rate,
            send_rate,
            tick,
            arena,
        } => {
            json!({
                "type": "Welcome", "version": version, "room": room, "entity": entity,
                "token": token_json(token), "tick_rate": tick_rate, "send_rate": send_rate,
                "tick": tick,
                "arena": { "width": arena.width, "height": arena.height, "obstacles": arena.obstacles },
            })
        }
        ServerMsg::Frame(f) => json!({
            "type": "Frame", "tick": f.tick, "base": f.base, "checksum": f.checksum,
            "ack": f.ack, "delta": hex(&f.delta),
        }),
        ServerMsg::Pong { id, tick } => json!({ "type": "Pong", "id": id, "tick": tick }),
        ServerMsg::Ping { id } => json!({ "type": "Ping", "id": id }),
        ServerMsg::Chat { from, name, text } => {
            json!({ "type": "Chat", "from": from, "name": name, "text": text })
        }
        ServerMsg::Close { code, reason } => {
            json!({ "type": "Close", "code": code, "reason": reason })
        }
    }
}

fn e(id: u16, kind: EntityKind) -> EntityState {
    EntityState::new(id, kind)
}

/// A small world's worth of entities covering every kind and field.
fn base() -> Snapshot {
    Snapshot::new(
        600,
        vec![
            EntityState {
                x: 8000,
                y: 4800,
                vx: 512,
                vy: -256,
                angle: 16384,
                hp: 100,
                flags: FLAG_THRUST,
                var: 255,
                score: 3,
                ..e(1, EntityKind::Ship)
            },
            EntityState {
                x: 24000,
                y: 16000,
                hp: 0,
                flags: FLAG_DEAD,
                owner: 1,
                ..e(2, EntityKind::Ship)
            },
            EntityState {
                x: 8100,
                y: 4700,
                vx: 3000,
                vy: -1500,
                owner: 1,
                ..e(3, EntityKind::Bullet)
            },
            EntityState {
                x: -5,
                y: 30000,
                vx: -40,
                vy: 17,
                hp: 60,
                var: 2,
                ..e(4, EntityKind::Asteroid)
            },
            EntityState {
                x: 40000,
                y: 2000,
                vx: 5,
                vy: 90,
                hp: 20,
                var: 0,
                ..e(9, EntityKind::Asteroid)
            },
            EntityState {
                x: 16000,
                y: 16000,
                var: 1,
                ..e(300, EntityKind::Pickup)
            },
        ],
    )
}

/// Two ticks later: a ship turns and speeds up, a dead one respawns shielded elsewhere, the
/// bullet is gone, one asteroid drifts (no record), another is hit, a kill is scored, a
/// new bullet and a new asteroid with a large id appear.
fn target() -> Snapshot {
    let b = base();
    let mut ents: Vec<EntityState> = Vec::new();
    let s1 = b.entities[0];
    ents.push(EntityState {
        x: s1.x + 65,
        y: s1.y - 31,
        vx: 540,
        angle: 16000,
        score: 4,
        ..s1
    });
    ents.push(EntityState {
        x: 1600,
        y: 1600,
        hp: 100,
        flags: FLAG_SHIELD,
        owner: 0,
        ..b.entities[1]
    });
    let a4 = b.entities[3];
    ents.push(EntityState {
        x: a4.x - 5,
        y: a4.y + 2,
        ..a4
    });
    let a9 = b.entities[4];
    ents.push(EntityState {
        x: a9.x + 1,
        y: a9.y + 12 - 2,
        hp: 10,
        ..a9
    });
    ents.push(EntityState {
        x: 8300,
        y: 4600,
        vx: 3000,
        vy: -1500,
        owner: 1,
        ..e(12, EntityKind::Bullet)
    });
    ents.push(b.entities[5]);
    ents.push(EntityState {
        x: 100,
        y: 200,
        vx: -7,
        vy: 7,
        hp: 60,
        var: 2,
        ..e(4000, EntityKind::Asteroid)
    });
    Snapshot::new(602, ents)
}

fn vectors() -> Value {
    let token = SessionToken(*b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff");
    let clients = [
        (
            "hello new player",
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name: "ana".into(),
                token: None,
                last_tick: None,
            },
        ),
        (
            "hello resume",
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name: "Zoë ☄".into(),
                token: Some(token),
                last_tick: Some(70_000),
            },
        ),
        (
            "input",
            ClientMsg::Input {
                seq: 1,
                input: Input {
                    thrust: 127,
                    turn: -127,
                    buttons: 3,
                },
            },
        ),
        (
            "input large seq",
            ClientMsg::Input {
                seq: 300,
                input: Input {
                    thrust: -64,
                    turn: 0,
                    buttons: 1,
                },
            },
        ),
        ("ping", ClientMsg::Ping { id: 251 }),
        ("pong", ClientMsg::Pong { id: 65_536 }),
        (
            "chat",
            ClientMsg::Chat {
                text: "gg <b>wp</b>".into(),
            },
        ),
        ("leave", ClientMsg::Leave),
    ];
    let (b, t) = (base(), target());
    let servers = [
        (
            "welcome",
            ServerMsg::Welcome {
                version: PROTOCOL_VERSION,
                room: "default".into(),
                entity: 7,
                token: Some(token),
                tick_rate: 60,
                send_rate: 30,
                tick: 123_456,
                arena: ArenaInfo {
                    width: 3000,
                    height: 2000,
                    obstacles: vec![(1500, 1000, 120), (-1, 2, 3)],
                },
            },
        ),
        (
            "welcome spectator",
            ServerMsg::Welcome {
                version: PROTOCOL_VERSION,
                room: "r-1".into(),
                entity: 0,
                token: None,
                tick_rate: 60,
                send_rate: 20,
                tick: 5,
                arena: ArenaInfo {
                    width: 10,
                    height: 10,
                    obstacles: vec![],
                },
            },
        ),
        (
            "frame keyframe",
            ServerMsg::Frame(Frame {
                tick: b.tick,
                base: None,
                checksum: b.checksum(),
                ack: 0,
                delta: delta::keyframe(&b),
            }),
        ),
        (
            "frame delta",
            ServerMsg::Frame(Frame {
                tick: t.tick,
                base: Some(b.tick),
                checksum: t.checksum(),
                ack: 41,
                delta: delta::encode(&b, &t),
            }),
        ),
        (
            "pong",
            ServerMsg::Pong {
                id: 9,
                tick: 1_000_000,
            },
        ),
        ("ping", ServerMsg::Ping { id: 10 }),
        (
            "chat",
            ServerMsg::Chat {
                from: 7,
                name: "ana".into(),
                text: "hi ☄".into(),
            },
        ),
        (
            "close",
            ServerMsg::Close {
                code: 4000,
                reason: "protocol version 9 is not supported; this server speaks 1".into(),
            },
        ),
    ];
    let still = Snapshot {
        tick: 900,
        ..b.clone()
    };
    let deltas = [
        ("keyframe", Snapshot::empty(), b.clone()),
        ("mixed changes", b.clone(), t.clone()),
        (
            "back again",
            t.clone(),
            Snapshot {
                tick: 610,
                ..b.clone()
            },
        ),
        (
            "empty to empty",
            Snapshot::empty(),
            Snapshot {
                tick: 1,
                entities: vec![],
            },
        ),
        (
            "everything removed",
            b.clone(),
            Snapshot {
                tick: 601,
                entities: vec![],
            },
        ),
        ("still entities drift", b.clone(), still),
    ];
    let mut out = Vec::new();
    for (name, m) in clients {
        let bytes = encode_client(&m);
        assert_eq!(decode_client(&bytes).as_ref(), Ok(&m), "{name}");
        out.push(
            json!({ "name": name, "type": "client", "value": client_json(&m), "hex": hex(&bytes) }),
        );
    }
    for (name, m) in servers {
        let bytes = encode_server(&m);
        assert_eq!(decode_server(&bytes).as_ref(), Ok(&m), "{name}");
        out.push(
            json!({ "name": name, "type": "server", "value": server_json(&m), "hex": hex(&bytes) }),
        );
    }
    for (name, from, to) in deltas {
        let bytes = delta::encode(&from, &to);
        assert_eq!(
            delta::apply(&from, to.tick, &bytes).as_ref(),
            Ok(&to),
            "{name}"
        );
        out.push(json!({
            "name": name, "type": "delta", "base": snapshot_json(&from), "target": snapshot_json(&to),
            "hex": hex(&bytes), "checksum": to.checksum(),
        }));
    }
    json!({
        "about": "tickwire golden vectors, written by game-core/tests/golden.rs; regenerate with TICKWIRE_REGEN_VECTORS=1 cargo test -p game-core --test golden",
        "protocol_version": PROTOCOL_VERSION,
        "vectors": out,
    })
}

/// A recorded match: 60 sends of a world with four AI pilots, as the frames a client gets
/// (a keyframe, then deltas from each previous send), for the JavaScript replica's tests.
fn recorded_stream() -> Value {
    let mut world = game_core::world::World::new(game_core::arena::Arena::standard(), 60, 42);
    let ships: Vec<_> = (0..4).filter_map(|_| world.add_ai_ship()).collect();
    let mut pilots: Vec<_> = ships
        .iter()
        .map(|&id| game_core::ai::Pilot::new(u64::from(id)))
        .collect();
    let info = world.arena().info();
    let mut sent = Snapshot::empty();
    let mut frames = Vec::new();
    for send in 0..60 {
        for _ in 0..2 {
            let view = world.snapshot();
            let inputs: Vec<_> = ships
                .iter()
                .zip(&mut pilots)
                .map(|(&id, p)| (id, p.think(id, &view, &info)))
                .collect();
            world.step(&inputs);
        }
        let now = world.snapshot();
        let (base, delta) = if send == 0 {
            (None, delta::keyframe(&now))
        } else {
            (Some(sent.tick), delta::encode(&sent, &now))
        };
        let mut bytes = Vec::new();
        game_core::codec::encode_frame(now.tick, base, now.checksum(), 0, &delta, &mut bytes);
        frames.push(Value::String(hex(&bytes)));
        sent = now;
    }
    json!({
        "about": "60 ServerMsg::Frame messages of a recorded match (keyframe first), written by game-core/tests/golden.rs",
        "frames": frames,
        "final": snapshot_json(&sent),
    })
}

/// Compares `value` with the checked-in file at `path`, or rewrites it on purpose.
fn check_golden(path: &str, value: &Value) {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    if std::env::var_os("TICKWIRE_REGEN_VECTORS").is_some() {
        std::fs::write(path, &text).unwrap_or_else(|e| panic!("writing {path}: {e}"));
        return;
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("reading {path}: {e}; generate it with TICKWIRE_REGEN_VECTORS=1 cargo test -p game-core --test golden")
    });
    if on_disk != text {
        let first = on_disk.lines().zip(text.lines()).position(|(a, b)| a != b);
        panic!(
            "the encoder's output no longer matches {path} (first differing line: {first:?}).\n\
             If the wire format changed on purpose, regenerate with TICKWIRE_REGEN_VECTORS=1 and \
             update the JavaScript client to match."
        );
    }
}

#[test]
fn encoder_matches_checked_in_vectors() {
    check_golden(PATH, &vectors());
}

#[test]
fn recorded_match_matches_checked_in_stream() {
    check_golden(STREAM_PATH, &recorded_stream());
}
