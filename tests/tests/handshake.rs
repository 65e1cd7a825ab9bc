//! The WebSocket handshake and what a bad client gets: every refusal is a close frame with a
//! code and a reason, counted in `/metrics`, and the server carries on.

use futures_util::SinkExt;
use game_core::protocol::{ClientMsg, Input, ServerMsg, close};
use std::time::Duration;
use tickwire_tests::*;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn player_gets_welcome_then_keyframe_then_deltas() {
    let server = TestServer::start(test_config()).await;
    let mut ws = connect(&server.ws_url("default", "")).await;
    send(&mut ws, &hello()).await;
    let Seen::Msg(ServerMsg::Welcome {
        entity,
        token,
        tick_rate,
        send_rate,
        room,
        arena,
        ..
    }) = next(&mut ws, WAIT).await
    else {
        panic!("expected Welcome");
    };
    assert!(entity > 0);
    assert!(token.is_some());
    assert_eq!((tick_rate, send_rate, room.as_str()), (60, 30, "default"));
    assert_eq!((arena.width, arena.height), (3000, 2000));
    let Seen::Msg(ServerMsg::Frame(first)) = next(&mut ws, WAIT).await else {
        panic!("expected a frame")
    };
    assert_eq!(first.base, None, "the first frame is a keyframe");
    let mut replica = game_core::replica::Replica::new();
    replica.apply(&first).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..10 {
        let Seen::Msg(ServerMsg::Frame(f)) = next(&mut ws, WAIT).await else {
            panic!("expected a frame")
        };
        assert_eq!(
            f.base,
            replica.tick(),
            "each frame is a delta from the previous one"
        );
        replica.apply(&f).unwrap_or_else(|e| panic!("{e}"));
    }
    // The first send after the join shows our ship.
    assert!(
        replica.snapshot().is_some_and(|s| s.get(entity).is_some()),
        "our ship is in the world"
    );
    server.stop().await;
}

#[tokio::test]
async fn spectator_is_read_only() {
    let server = TestServer::start(test_config()).await;
    let mut ws = connect(&server.ws_url("default", "?spectate=1")).await;
    send(&mut ws, &hello()).await;
    let Seen::Msg(ServerMsg::Welcome { entity, token, .. }) = next(&mut ws, WAIT).await else {
        panic!("expected Welcome")
    };
    assert_eq!((entity, token), (0, None));
    let (_, info) = server.get_json("/api/rooms/default").await;
    assert_eq!(info["spectators"], 1);
    assert_eq!(info["players"], 0);
    send(
        &mut ws,
        &ClientMsg::Input {
            seq: 1,
            input: Input {
                thrust: 127,
                turn: 0,
                buttons: 1,
            },
        },
    )
    .await;
    let (code, reason) = expect_close(&mut ws, WAIT).await;
    assert_eq!(code, close::POLICY);
    assert!(reason.contains("spectators cannot send input"), "{reason}");
    assert_eq!(
        server
            .metric("tickwire_rejections_total{reason=\"spectator_input\"}")
            .await,
        1.0
    );
    server.stop().await;
}

/// Each bad opening gets its own close code, while an honest player plays on undisturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_openings_get_clear_close_reasons() {
    let server = TestServer::start(test_config()).await;
    let url = server.ws_url("default", "");
    let opts = bots::ConnectOptions::new(&server.url(), "default", bots::Role::Player)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = bots::BotConfig::new(opts);
    cfg.duration = Some(Duration::from_secs(3));
    let honest = tokio::spawn(bots::Bot::new(cfg).run(std::future::pending()));

    let mut ws = connect(&url).await;
    send(
        &mut ws,
        &ClientMsg::Hello {
            version: 999,
            name: "x".into(),
            token: None,
            last_tick: None,
        },
    )
    .await;
    let (code, reason) = expect_close(&mut ws, WAIT).await;
    assert_eq!(code, close::VERSION_MISMATCH);
    assert!(
        reason.contains("999") && reason.contains("speaks 1"),
        "{reason}"
    );

    let mut ws = connect(&url).await;
    ws.send(Message::Binary(vec![0xde, 0xad, 0xbe, 0xef, 0xff].into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, reason) = expect_close(&mut ws, WAIT).await;
    assert_eq!(code, close::PROTOCOL_ERROR);
    assert!(reason.contains("malformed"), "{reason}");

    let mut ws = connect(&url).await;
    ws.send(Message::Text("hello?".into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(expect_close(&mut ws, WAIT).await.0, close::UNSUPPORTED_DATA);

    let mut ws = connect(&url).await;
    ws.send(Message::Binary(vec![0u8; 64 * 1024].into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, reason) = expect_close(&mut ws, WAIT).await;
    assert_eq!(code, close::TOO_BIG, "{reason}");

    let mut ws = connect(&url).await;
    send(&mut ws, &ClientMsg::Ping { id: 1 }).await;
    let (code, reason) = expect_close(&mut ws, WAIT).await;
    assert_eq!(code, close::PROTOCOL_ERROR);
    assert!(reason.contains("Hello"), "{reason}");

    // Silence: the handshake timeout (1 s in tests) closes it.
    let mut ws = connect(&url).await;
    let (code, _) = expect_close(&mut ws, WAIT).await;
    assert_eq!(code, close::HANDSHAKE_TIMEOUT);

    let mut ws = connect(&url).await;
    let forged = game_core::SessionToken([0x42; 16]);
    send(
        &mut ws,
        &ClientMsg::Hello {
            version: 1,
            name: "x".into(),
            token: Some(forged),
            last_tick: None,
        },
    )
    .await;
    let (code, reason) = expect_close(&mut ws, WAIT).await;
    assert_eq!(code, close::BAD_TOKEN);
    assert!(reason.contains("token"), "{reason}");

    for (reason, n) in [
        ("version_mismatch", 1.0),
        ("malformed", 3.0),
        ("too_big", 1.0),
        ("handshake_timeout", 1.0),
        ("bad_token", 1.0),
    ] {
        let name = format!("tickwire_rejections_total{{reason=\"{reason}\"}}");
        assert_eq!(server.metric(&name).await, n, "{name}");
    }

    // The honest player never noticed.
    let report = honest
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!((report.stats.desyncs, report.stats.keyframes), (0, 1));
    assert!(report.acks_complete());

    // The server carries on.
    let mut ws = connect(&url).await;
    send(&mut ws, &hello()).await;
    assert!(matches!(
        next(&mut ws, WAIT).await,
        Seen::Msg(ServerMsg::Welcome { .. })
    ));
    assert!(matches!(
        next(&mut ws, WAIT).await,
        Seen::Msg(ServerMsg::Frame(_))
    ));
    server.stop().await;
}

#[tokio::test]
async fn unknown_room_is_404_and_full_room_is_refused() {
    let server = TestServer::start(Config {
        room_capacity: 1,
        ..test_config()
    })
    .await;
    let err = tokio_tungstenite::connect_async(server.ws_url("nope", "")).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(resp)) = err else {
        panic!("expected an HTTP error, got {err:?}")
    };
    assert_eq!(resp.status().as_u16(), 404);

    let mut first = connect(&server.ws_url("default", "")).await;
    send(&mut first, &hello()).await;
    assert!(matches!(
        next(&mut first, WAIT).await,
        Seen::Msg(ServerMsg::Welcome { .. })
    ));
    let mut second = connect(&server.ws_url("default", "")).await;
    send(&mut second, &hello()).await;
    let (code, reason) = expect_close(&mut second, WAIT).await;
    assert_eq!(code, close::ROOM_FULL);
    assert!(reason.contains("full"), "{reason}");
    server.stop().await;
}

/// A client frame of `msg`, masked as clients must.
fn masked(msg: &ClientMsg) -> Vec<u8> {
    let bytes = game_core::codec::encode_client(msg);
    let mask = [0x5a, 0x0f, 0xc3, 0x81];
    let mut out = vec![0x82, 0x80 | u8::try_from(bytes.len()).unwrap_or(0)];
    out.extend_from_slice(&mask);
    out.extend(bytes.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// Reads one unmasked server message (short lengths only) off `tcp`: its opcode and payload.
async fn server_message(tcp: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut head = [0u8; 2];
        tcp.read_exact(&mut head).await?;
        let len = match head[1] & 0x7f {
            126 => usize::from(tcp.read_u16().await?),
            127 => usize::try_from(tcp.read_u64().await?).unwrap_or(usize::MAX),
            n => usize::from(n),
        };
        let mut payload = vec![0u8; len];
        tcp.read_exact(&mut payload).await?;
        Ok::<_, std::io::Error>((head[0] & 0x0f, payload))
    };
    tokio::time::timeout(WAIT, read)
        .await
        .unwrap_or_else(|_| panic!("no message within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_arrive_in_pieces_or_with_the_upgrade_are_read_whole() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(test_config()).await;
    let request = format!(
        "GET /api/rooms/default/ws HTTP/1.1\r\nhost: {}\r\nupgrade: websocket\r\n\
         connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         sec-websocket-version: 13\r\n\r\n",
        server.addr
    );
    // The Hello comes in the same write as the upgrade request, and the first input with it.
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut opening = request.into_bytes();
    opening.extend(masked(&hello()));
    let first = masked(&input(1, 1, 0, 0));
    opening.extend(&first[..3]);
    tcp.write_all(&opening)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap_or_else(|e| panic!("{e}")));
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "the RFC 6455 example key's answer: {head}"
    );
    let (op, welcome) = server_message(&mut tcp).await;
    assert_eq!(op, 2, "binary");
    assert!(matches!(
        game_core::codec::decode_server(&welcome),
        Ok(ServerMsg::Welcome { token: Some(_), .. })
    ));
    // The rest of the input, then a second one, a byte at a time.
    let mut rest = first[3..].to_vec();
    rest.extend(masked(&input(2, 0, 1, 0)));
    for byte in rest {
        tcp.write_all(&[byte])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "input 2 never acknowledged"
        );
        let (op, payload) = server_message(&mut tcp).await;
        if op != 2 {
            continue;
        }
        if let Ok(ServerMsg::Frame(f)) = game_core::codec::decode_server(&payload) {
            assert!(f.ack <= 2, "ack {} of an input never sent", f.ack);
            if f.ack == 2 {
                break;
            }
        }
    }
    server.stop().await;
}

/// A player the server hears nothing from is closed at `idle_timeout_secs` (4005), while one
/// that only sends inputs — read by its room at its ticks, not by its session — is heard and
/// stays. Neither reads meanwhile, so neither answers the server's pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_player_is_closed_at_the_idle_timeout_and_one_sending_inputs_is_not() {
    let server = TestServer::start(Config {
        idle_timeout_secs: 2,
        ping_interval_secs: 1,
        ..test_config()
    })
    .await;
    let (mut silent, _, _) = join(&server, "default").await;
    let (mut playing, _, _) = join(&server, "default").await;
    let mut seq = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(3500);
    while tokio::time::Instant::now() < until {
        seq += 1;
        send(&mut playing, &input(seq, 127, 0, 0)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, reason) = expect_close(&mut silent, WAIT).await;
    assert_eq!(code, close::IDLE_TIMEOUT, "{reason}");
    let mut replica = game_core::replica::Replica::new();
    let acks = acks_until(&mut playing, &mut replica, seq).await;
    assert_eq!(acks.last(), Some(&seq), "every input was applied");
    assert!(server.rejections("idle_timeout").await >= 1.0);
    server.stop().await;
}
