//! Unit tests of the stats sampler: rates, percentiles, room figures, history and JSON shape.

use super::*;

fn reading(at: Instant) -> Reading {
    Reading {
        at,
        unix_ms: 1_000,
        ticks: TickReading::default(),
        dropped: 0,
        connections: [[0; 2]; 5],
        frames: [0; 5],
        bytes: [0; 5],
        inputs: 0,
        rejections: vec![("bad_token", 0), ("input_rate", 0)],
        panics: 0,
        process: ProcessStats {
            cpu_seconds: Some(10.0),
            cpu_user_seconds: Some(4.0),
            cpu_system_seconds: Some(6.0),
            resident_bytes: Some(1 << 20),
        },
        rooms: vec![],
    }
}

fn ticks(per_bucket: &[(usize, u64)], sum_us: u64, overruns: u64) -> TickReading {
    let mut t = TickReading {
        sum_us,
        overruns,
        ..TickReading::default()
    };
    for &(i, n) in per_bucket {
        t.buckets[i] += n;
        t.count += n;
    }
    t
}

fn room(id: &str, players: u32, t: TickReading) -> RoomReading {
    RoomReading {
        id: id.to_owned(),
        players,
        ai_ships: 2,
        spectators: 0,
        tick: 100,
        ticks: t,
    }
}

#[test]
fn rates_are_differences_over_the_interval() {
    let t0 = Instant::now();
    let mut a = reading(t0);
    let mut b = reading(t0 + Duration::from_millis(2000));
    a.frames = [100, 0, 0, 0, 10];
    b.frames = [160, 20, 0, 0, 10];
    b.bytes = [6000, 2000, 0, 0, 0];
    b.inputs = 240;
    b.rejections = vec![("bad_token", 3), ("input_rate", 1)];
    b.process.cpu_seconds = Some(10.5);
    b.connections[0] = [3, 1];
    b.connections[1] = [0, 2];
    let s = Sample::between(&a, &b, 7).figures;
    assert_eq!(s.seq, 7);
    assert_eq!(s.interval_secs, 2.0);
    assert_eq!(s.frames_per_sec.ws, 30.0);
    assert_eq!(s.frames_per_sec.sse, 10.0);
    assert_eq!(s.frames_per_sec.poll, 0.0);
    assert_eq!(s.frames_per_sec.total, 40.0);
    assert_eq!(s.bytes_per_sec.total, 4000.0);
    assert_eq!(s.inputs_per_sec, 120.0);
    assert_eq!(s.rejections_per_sec, 2.0);
    assert_eq!(s.rejections_total, 4);
    assert_eq!(s.cpu_percent, Some(25.0), "0.5 CPU seconds over 2 s");
    assert_eq!(s.rss_bytes, Some(1 << 20));
    assert_eq!(
        s.connections.ws,
        ByRole {
            player: 3,
            spectator: 1
        }
    );
    assert_eq!(
        s.connections.total,
        ByRole {
            player: 3,
            spectator: 3
        }
    );
}

#[test]
fn percentiles_come_from_the_last_interval_only() {
    let t0 = Instant::now();
    let mut a = reading(t0);
    let mut b = reading(t0 + Duration::from_secs(1));
    // Before: a thousand slow ticks (8 ms bucket). In the interval: 59 fast ticks (≤ 250 us)
    // and one slow one (≤ 16.667 ms) that overran.
    a.ticks = ticks(&[(7, 1000)], 6_000_000, 1000);
    b.ticks = ticks(
        &[(7, 1000), (2, 59), (8, 1)],
        6_000_000 + 59 * 200 + 17_000,
        1001,
    );
    let t = Sample::between(&a, &b, 1).figures.tick;
    assert_eq!(t.per_sec, 60.0);
    assert_eq!(t.p50_us, Some(250));
    assert_eq!(t.p99_us, Some(16_667));
    assert_eq!(t.mean_us, Some(480.0));
    assert_eq!(t.overruns_per_sec, 1.0);
    assert_eq!(t.overruns_total, 1001);
}

#[test]
fn no_interval_and_no_ticks_give_zeros_and_nulls() {
    let a = reading(Instant::now());
    let s = Sample::between(&a, &a, 0).figures;
    assert_eq!(s.frames_per_sec.total, 0.0);
    assert_eq!(s.cpu_percent, Some(0.0));
    assert_eq!(
        (s.tick.p50_us, s.tick.p99_us, s.tick.mean_us),
        (None, None, None)
    );
    let mut b = reading(Instant::now());
    b.process = ProcessStats::default();
    assert_eq!(Sample::between(&a, &b, 1).figures.cpu_percent, None);
}

#[test]
fn rooms_have_their_own_percentiles_busiest_first() {
    let t0 = Instant::now();
    let mut a = reading(t0);
    let mut b = reading(t0 + Duration::from_secs(1));
    a.rooms = vec![room("quiet", 0, ticks(&[(1, 10)], 0, 0))];
    b.rooms = vec![
        room("quiet", 0, ticks(&[(1, 70)], 0, 0)),
        // New since the last reading: counted from zero.
        room("busy", 5, ticks(&[(4, 60)], 0, 2)),
    ];
    // Re-created under an old id: its counters went backwards; counted as no ticks.
    a.rooms.push(room("reborn", 1, ticks(&[(3, 500)], 0, 9)));
    b.rooms.push(room("reborn", 1, ticks(&[(3, 5)], 0, 0)));
    let s = Sample::between(&a, &b, 1);
    let ids: Vec<&str> = s.rooms.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["busy", "reborn", "quiet"]);
    assert_eq!(s.rooms[0].ticks.p99_us, Some(1000));
    assert_eq!(s.rooms[0].ticks.overruns_per_sec, 2.0);
    assert_eq!(s.rooms[1].ticks.p50_us, None);
    assert_eq!(s.rooms[2].ticks.p50_us, Some(100));
    assert_eq!(s.rooms[2].ticks.per_sec, 60.0);
    assert_eq!(s.figures.rooms_open, 3);
}

#[test]
fn the_json_has_the_documented_fields_and_history_is_capped() {
    let t0 = Instant::now();
    let mut h = History::default();
    let mut p = h.next(&reading(t0), &reading(t0));
    for i in 1..=HISTORY + 5 {
        let prev = reading(t0 + Duration::from_secs(i as u64 - 1));
        p = h.next(&prev, &reading(t0 + Duration::from_secs(i as u64)));
    }
    let v: serde_json::Value = serde_json::from_str(&p.json).unwrap_or_default();
    for key in [
        "seq",
        "time_ms",
        "interval_secs",
        "tick",
        "connections",
        "frames_per_sec",
        "bytes_per_sec",
        "inputs_per_sec",
        "rejections_per_sec",
        "rejections_total",
        "cpu_percent",
        "rss_bytes",
        "rooms_open",
        "room_panics",
        "rejections",
        "rooms",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }
    assert_eq!(v["seq"], HISTORY as u64 + 5);
    assert_eq!(v["connections"]["sse"]["spectator"], 0);
    assert_eq!(v["rejections"]["bad_token"], 0);
    let all: serde_json::Value = serde_json::from_str(&p.with_history()).unwrap_or_default();
    let history = all["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(history.len(), HISTORY);
    assert_eq!(
        history[HISTORY - 1]["seq"],
        v["seq"],
        "ends with the latest"
    );
    assert_eq!(history[0]["seq"], 6, "oldest first");
    assert!(history[0].get("rooms").is_none(), "history is figures only");
    assert_eq!(all["seq"], v["seq"]);
}
