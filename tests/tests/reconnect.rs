//! Reconnect: a dropped player's ship waits for the grace period; the token resumes the same
//! ship with a delta from the client's last tick when the room still has it, else a keyframe;
//! a wrong or expired token is refused with a reason.

use bots::{ClientError, ConnectOptions, Event, Resume, Role, Stats, connect};
use game_core::protocol::{Input, close};
use game_core::replica::Replica;
use std::time::Duration;
use tickwire_tests::*;

async fn frames(
    conn: &mut bots::Connection,
    replica: &mut Replica,
    stats: &mut Stats,
    n: usize,
) -> Vec<bots::FrameEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        match conn.reader.next_event(replica, stats).await {
            Ok(Event::Frame(f)) => out.push(f),
            Ok(_) => {}
            Err(e) => panic!("reading frames: {e}"),
        }
    }
    out
}

#[tokio::test]
async fn token_resumes_the_same_ship_with_a_delta_or_a_keyframe() {
    let server = TestServer::start(Config {
        history_sends: 16,
        ..test_config()
    })
    .await;
    let opts = ConnectOptions::new(&server.url(), "default", Role::Player)
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut replica, mut stats) = (Replica::new(), Stats::default());

    let mut conn = connect(&opts, Resume::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ship = conn.welcome.entity;
    let token = conn
        .welcome
        .token
        .unwrap_or_else(|| panic!("a player gets a token"));
    for _ in 0..5 {
        conn.writer
            .send_input(Input {
                thrust: 127,
                turn: 20,
                buttons: 0,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let seen = frames(&mut conn, &mut replica, &mut stats, 10).await;
    assert!(
        seen.last().is_some_and(|f| f.ack == 5),
        "acks reached 5: {:?}",
        seen.last()
    );
    let last_tick = replica
        .tick()
        .unwrap_or_else(|| panic!("replica has state"));
    conn.writer.close().await.unwrap_or_else(|e| panic!("{e}"));
    drop(conn.reader);

    // The ship is still there while we are away.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, room) = server.get_json("/api/rooms/default").await;
    assert_eq!(room["players"], 1);

    // Resume within the history: the first frame is a delta from our last tick, same ship.
    let resume = Resume {
        token: Some(token),
        last_tick: Some(last_tick),
        next_seq: 6,
    };
    let mut conn = connect(&opts, resume)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(conn.welcome.entity, ship);
    let first = frames(&mut conn, &mut replica, &mut stats, 1).await;
    assert_eq!(
        first[0].base,
        Some(last_tick),
        "a delta from where we left off"
    );
    assert_eq!(first[0].ack, 5, "the server remembers our inputs");
    conn.writer
        .send_input(Input::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let more = frames(&mut conn, &mut replica, &mut stats, 10).await;
    assert!(
        more.iter().any(|f| f.ack == 6),
        "inputs continue after resume"
    );
    conn.writer.close().await.unwrap_or_else(|e| panic!("{e}"));

    // Resume from a tick that left the history (16 sends ≈ 0.5 s): a keyframe.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut fresh = Replica::new();
    let resume = Resume {
        token: Some(token),
        last_tick: Some(last_tick),
        next_seq: 7,
    };
    let mut conn = connect(&opts, resume)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(conn.welcome.entity, ship);
    let first = frames(&mut conn, &mut fresh, &mut stats, 1).await;
    assert_eq!(first[0].base, None, "a keyframe when the baseline is gone");
    assert_eq!(stats.desyncs, 0);
    conn.writer.close().await.unwrap_or_else(|e| panic!("{e}"));
    server.stop().await;
}

#[tokio::test]
async fn a_second_connection_with_the_token_replaces_the_first() {
    let server = TestServer::start(test_config()).await;
    let opts = ConnectOptions::new(&server.url(), "default", Role::Player)
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut replica, mut stats) = (Replica::new(), Stats::default());
    let mut old = connect(&opts, Resume::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let token = old.welcome.token;
    let new = connect(
        &opts,
        Resume {
            token,
            last_tick: None,
            next_seq: 1,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(new.welcome.entity, old.welcome.entity);
    let err = loop {
        match old.reader.next_event(&mut replica, &mut stats).await {
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert_eq!(err.close_code(), Some(close::REPLACED), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn wrong_and_expired_tokens_are_refused_with_a_reason() {
    let server = TestServer::start(Config {
        reconnect_grace_secs: 1,
        ..test_config()
    })
    .await;
    let opts = ConnectOptions::new(&server.url(), "default", Role::Player)
        .unwrap_or_else(|e| panic!("{e}"));

    let forged = Resume {
        token: Some(game_core::SessionToken([7; 16])),
        last_tick: None,
        next_seq: 1,
    };
    let err = connect(&opts, forged)
        .await
        .err()
        .unwrap_or_else(|| panic!("a forged token must be refused"));
    let ClientError::Refused(info) = &err else {
        panic!("expected a refusal, got {err}")
    };
    assert_eq!(info.code, close::BAD_TOKEN);
    assert!(
        info.reason.contains("unknown or expired"),
        "{}",
        info.reason
    );

    let conn = connect(&opts, Resume::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let token = conn.welcome.token;
    conn.writer.close().await.unwrap_or_else(|e| panic!("{e}"));
    drop(conn.reader);
    // Past the 1 s grace the ship is gone and so is the session.
    server
        .until_room(
            "default",
            Duration::from_secs(10),
            "the ship outlived its grace period",
            |room| room["players"] == 0,
        )
        .await;
    let err = connect(
        &opts,
        Resume {
            token,
            last_tick: None,
            next_seq: 1,
        },
    )
    .await
    .err();
    assert_eq!(err.and_then(|e| e.close_code()), Some(close::BAD_TOKEN));
    server.stop().await;
}
