//! Hostile messages, one kind per test, each sent while an honest player plays in the same
//! room: garbage and text in the middle of a session, messages over the size limit (whole,
//! promised by a frame header, or spread over continuation frames), errors too wordy for a
//! close frame, and spectators that try to steer.
//!
//! Every test ends the same way: the attacker got the documented close code and reason (or HTTP
//! status and error code), the matching `tickwire_rejections_total` reason moved by what the
//! attack earned, and [`TestServer::assert_unharmed`]: `/healthz` answers, and the honest
//! player saw no desync, no lost input, acks in order and frames all along. `input_abuse.rs`
//! and `token_abuse.rs` do the same for inputs and session tokens.
//!
//! Bad first messages are mostly in `handshake.rs`; these attack sessions that are already
//! established, where a mistake would cost a room and not just a refused connection.

use futures_util::SinkExt;
use game_core::codec;
use game_core::protocol::{ClientMsg, ServerMsg, close};
use game_core::replica::Replica;
use std::time::Duration;
use tickwire_tests::*;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

/// A masked client frame (RFC 6455 §5.2), for frames tungstenite would never send: a message
/// split into continuations, or a header that promises more than it delivers.
fn raw_frame(fin: bool, opcode: u8, payload: &[u8], claimed_len: Option<u64>) -> Vec<u8> {
    let mask = [0x13, 0x57, 0x9b, 0xdf];
    let len = claimed_len.unwrap_or(payload.len() as u64);
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// Writes bytes under tungstenite, straight to the TCP stream.
async fn write_raw(ws: &mut Ws, bytes: &[u8]) {
    let tcp = ws.get_mut();
    tcp.write_all(bytes)
        .await
        .unwrap_or_else(|e| panic!("raw write: {e}"));
    tcp.flush()
        .await
        .unwrap_or_else(|e| panic!("raw flush: {e}"));
}

/// Messages that are not tickwire (or are tickwire out of place) in the middle of a session:
/// each ends only its own session, with 1002 or 1003 and a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_text_mid_session_close_only_the_sender() {
    let server = TestServer::start(test_config()).await;
    let honest = Honest::start(&server, "default", 1).await;
    let malformed = server.rejections("malformed").await;

    let mut trailing = codec::encode_client(&input(1, 0, 0, 0));
    trailing.push(0);
    let mut cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "malformed"),
        (vec![0x42, 1, 2, 3], "malformed"),
        // An Input with its sequence number and controls missing.
        (vec![1], "malformed"),
        // A Chat whose length prefix claims 2 GiB.
        (vec![4, 252, 0xff, 0xff, 0xff, 0x7f, b'x'], "malformed"),
        (trailing, "trailing"),
        (
            codec::encode_client(&ClientMsg::Chat {
                text: "x".repeat(201),
            }),
            "longer than",
        ),
        (codec::encode_client(&hello()), "Hello was already received"),
    ];
    // Random bytes behind a message tag that names no message.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..13 {
        let bytes = (0..64)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i == 0 { 7 + (x % 244) as u8 } else { x as u8 }
            })
            .collect();
        cases.push((bytes, "malformed"));
    }
    let attacks = cases.into_iter().enumerate().map(|(i, (bytes, why))| {
        let server = &server;
        async move {
            let (mut ws, ..) = join(server, "default").await;
            // Half of them have been following the match for a moment.
            if i % 2 == 0 {
                for _ in 0..3 {
                    next(&mut ws, WAIT).await;
                }
            }
            ws.send(Message::Binary(bytes.into()))
                .await
                .unwrap_or_else(|e| panic!("send: {e}"));
            let (code, reason) = expect_close(&mut ws, WAIT).await;
            assert_eq!(code, close::PROTOCOL_ERROR, "case {i}: {reason}");
            assert!(reason.contains(why), "case {i}: {reason:?} lacks {why:?}");
        }
    });
    let n = attacks.len();
    futures_util::future::join_all(attacks).await;

    let texts = ["hello?", "{\"seq\":1}", ""];
    for text in texts {
        let (mut ws, ..) = join(&server, "default").await;
        ws.send(Message::Text(text.into()))
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
        let (code, reason) = expect_close(&mut ws, WAIT).await;
        assert_eq!(code, close::UNSUPPORTED_DATA, "{reason}");
        assert!(reason.contains("binary"), "{reason}");
    }

    assert_eq!(
        server.rejections("malformed").await - malformed,
        (n + texts.len()) as f64
    );
    server.assert_unharmed(honest).await;
    server.stop().await;
}

/// A close frame's reason has room for 123 bytes (RFC 6455 §5.5: a control frame carries at
/// most 125). Decode errors can describe themselves at length — a `Hello` whose token option
/// has tag 165 makes a 156-byte message — and a longer reason makes the whole close frame
/// invalid: the client sees a protocol error instead of the code and reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reasons_fit_in_a_close_frame() {
    let server = TestServer::start(test_config()).await;
    let honest = Honest::start(&server, "default", 10).await;
    let malformed = server.rejections("malformed").await;
    // Hello { version: 1, name: "", token: <option tag 165> }.
    let verbose = vec![0u8, 1, 0, 165];
    for mid_session in [false, true] {
        let mut ws = if mid_session {
            join(&server, "default").await.0
        } else {
            connect(&server.ws_url("default", "")).await
        };
        ws.send(Message::Binary(verbose.clone().into()))
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
        let (code, reason) = loop {
            use futures_util::StreamExt;
            match tokio::time::timeout(WAIT, ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(f))))) => break (u16::from(f.code), f.reason),
                Ok(Some(Ok(_))) => {}
                other => panic!(
                    "mid-session {mid_session}: expected a close frame with a reason of at \
                     most 123 bytes, got {other:?}"
                ),
            }
        };
        assert_eq!(code, close::PROTOCOL_ERROR, "{reason}");
        assert!(
            reason.len() <= game_core::protocol::MAX_REASON_BYTES && reason.contains("malformed"),
            "{reason:?}"
        );
    }
    assert_eq!(server.rejections("malformed").await - malformed, 2.0);
    server.assert_unharmed(honest).await;
    server.stop().await;
}

/// Messages over `max_message_bytes` (1 KiB): one byte over, a header that promises a
/// terabyte, and a message of small continuation frames that adds up to too much. Each gets
/// 1009 without the server reading what was promised (reserving a terabyte would abort the
/// process, and this test with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_get_1009_and_nothing_is_reserved_for_them() {
    let server = TestServer::start(test_config()).await;
    let honest = Honest::start(&server, "default", 2).await;
    let too_big = server.rejections("too_big").await;

    let (mut ws, ..) = join(&server, "default").await;
    ws.send(Message::Binary(vec![0u8; 1025].into()))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let (code, reason) = expect_close(&mut ws, WAIT).await;
    assert_eq!(code, close::TOO_BIG, "{reason}");
    assert!(reason.contains("1024"), "{reason}");

    // Only the header of a 1 TiB binary frame: refused as soon as the header is read.
    let (mut ws, ..) = join(&server, "default").await;
    write_raw(&mut ws, &raw_frame(true, 0x2, &[], Some(1 << 40))).await;
    let (code, reason) = expect_close(&mut ws, WAIT).await;
    assert_eq!(code, close::TOO_BIG, "{reason}");

    // Four 300-byte fragments of one message: each frame is small, the message is not.
    let (mut ws, ..) = join(&server, "default").await;
    let mut bytes = raw_frame(false, 0x2, &[1; 300], None);
    for fin in [false, false, true] {
        bytes.extend(raw_frame(fin, 0x0, &[1; 300], None));
    }
    write_raw(&mut ws, &bytes).await;
    let (code, reason) = expect_close(&mut ws, WAIT).await;
    assert_eq!(code, close::TOO_BIG, "{reason}");

    assert_eq!(server.rejections("too_big").await - too_big, 3.0);
    server.assert_unharmed(honest).await;
    server.stop().await;
}

/// Spectators never steer: input on a spectator socket is 1008 (even one that presented a
/// real player's token), and `POST …/input` without a token is 401 `token_required`. The
/// player whose token was shown keeps its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectators_cannot_send_input() {
    let server = TestServer::start(test_config()).await;
    let honest = Honest::start(&server, "default", 9).await;
    let spectator_input = server.rejections("spectator_input").await;

    let (mut player, ship, token) = join(&server, "default").await;
    let spectate = server.ws_url("default", "?spectate=1");
    for shown in [None, Some(token)] {
        let mut ws = connect(&spectate).await;
        let hello = ClientMsg::Hello {
            version: game_core::protocol::PROTOCOL_VERSION,
            name: String::new(),
            token: shown,
            last_tick: None,
        };
        send(&mut ws, &hello).await;
        let Seen::Msg(ServerMsg::Welcome { entity, token, .. }) = next(&mut ws, WAIT).await else {
            panic!("expected a spectator's Welcome")
        };
        assert_eq!(
            (entity, token),
            (0, None),
            "a spectator, whatever it showed"
        );
        next(&mut ws, WAIT).await;
        send(&mut ws, &input(1, 127, 127, 1)).await;
        let (code, reason) = expect_close(&mut ws, WAIT).await;
        assert_eq!(code, close::POLICY, "{reason}");
        assert!(reason.contains("spectators cannot send input"), "{reason}");
    }
    let (status, r) = post(
        &server,
        "/api/rooms/default/input",
        r#"{"inputs":[{"seq":1,"thrust":127}]}"#,
    )
    .await;
    assert_eq!((status, error_code(&r)), (401, "token_required"), "{r}");

    // The real player was not replaced by the spectator that showed its token.
    send(&mut player, &input(1, 0, 0, 0)).await;
    acks_until(&mut player, &mut Replica::new(), 1).await;
    assert!(ship > 0);

    assert_eq!(
        server.rejections("spectator_input").await - spectator_input,
        3.0
    );
    server.assert_unharmed(honest).await;
    server.stop().await;
}
