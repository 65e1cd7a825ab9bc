//! The one place messages become bytes and bytes become messages.
//!
//! bincode 2 with `config::standard()` (little-endian, varint integers); every bincode call in
//! the workspace lives here, so the format could be swapped in one place. Decoding untrusted
//! bytes is bounded twice: the message must fit a byte limit before decoding starts, and bincode
//! runs with that limit so a forged length prefix cannot allocate past it. Strings are checked
//! against the protocol's character limits, and trailing bytes are an error.
//!
//! ```text
//! varint (bincode standard): v < 251 → 1 byte; else 251 ‖ u16 LE, 252 ‖ u32 LE, 253 ‖ u64 LE
//! signed: zigzag first. enum: varint variant index, then the fields in order.
//! Option: 0 | 1 ‖ value. String, Vec<u8>: varint length ‖ bytes. [u8; 16]: 16 bytes.
//! Frame (ServerMsg variant 1): 1 ‖ tick ‖ base ‖ checksum ‖ ack ‖ len ‖ delta
//! ```
//!
//! [`encode_frame`] writes that last layout directly from a shared delta payload, so the
//! server encodes a delta once per room and only a few header bytes per client.

use crate::protocol::{ClientMsg, MAX_CHAT_CHARS, MAX_NAME_CHARS, MAX_REASON_BYTES, ServerMsg};
use bincode::config::{self, Configuration, Limit};

/// Largest client → server message, in bytes.
pub const CLIENT_MSG_LIMIT: usize = 1024;
/// Largest server → client message, in bytes (a keyframe of ~65,000 entities fits).
pub const SERVER_MSG_LIMIT: usize = 4 << 20;

/// The variant index of [`ServerMsg::Frame`], which [`encode_frame`] writes by hand.
const FRAME_VARIANT: u32 = 1;

fn limited<const N: usize>() -> Configuration<config::LittleEndian, config::Varint, Limit<N>> {
    config::standard().with_limit::<N>()
}

/// Why bytes could not be decoded into a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The message is larger than the direction's limit.
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooBig {
        /// The message's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Bytes were left after a whole message.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    /// A string longer than the protocol allows.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// Which string.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
}

fn decode<T: bincode::Decode<()>, const N: usize>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > N {
        return Err(CodecError::TooBig {
            size: bytes.len(),
            limit: N,
        });
    }
    let (msg, used) = bincode::decode_from_slice(bytes, limited::<N>())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    match bytes.len() - used {
        0 => Ok(msg),
        n => Err(CodecError::Trailing(n)),
    }
}

fn check_len(field: &'static str, s: &str, max: usize) -> Result<(), CodecError> {
    if s.chars().count() > max {
        Err(CodecError::TooLong { field, max })
    } else {
        Ok(())
    }
}

/// Decodes an untrusted client message.
pub fn decode_client(bytes: &[u8]) -> Result<ClientMsg, CodecError> {
    let msg: ClientMsg = decode::<_, CLIENT_MSG_LIMIT>(bytes)?;
    match &msg {
        ClientMsg::Hello { name, .. } => check_len("name", name, MAX_NAME_CHARS)?,
        ClientMsg::Chat { text } => check_len("chat text", text, MAX_CHAT_CHARS)?,
        _ => {}
    }
    Ok(msg)
}

/// Decodes an untrusted server message (clients, bots and tests use this).
pub fn decode_server(bytes: &[u8]) -> Result<ServerMsg, CodecError> {
    let msg: ServerMsg = decode::<_, SERVER_MSG_LIMIT>(bytes)?;
    match &msg {
        ServerMsg::Chat { name, text, .. } => {
            check_len("name", name, MAX_NAME_CHARS)?;
            check_len("chat text", text, MAX_CHAT_CHARS)?;
        }
        ServerMsg::Close { reason, .. } if reason.len() > MAX_REASON_BYTES => {
            return Err(CodecError::TooLong {
                field: "close reason",
                max: MAX_REASON_BYTES,
            });
        }
        _ => {}
    }
    Ok(msg)
}

fn encode_into<T: bincode::Encode>(value: &T, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail, and our types have no encoder that errors.
    bincode::encode_into_std_write(value, out, config::standard())
        .expect("bincode encoding into a Vec is infallible");
}

/// Encodes a client message.
pub fn encode_client(msg: &ClientMsg) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode_into(msg, &mut out);
    out
}

/// Encodes a server message.
pub fn encode_server(msg: &ServerMsg) -> Vec<u8> {
    let mut out = Vec::new();
    encode_server_into(msg, &mut out);
    out
}

/// Appends an encoded server message to `out`.
pub fn encode_server_into(msg: &ServerMsg, out: &mut Vec<u8>) {
    encode_into(msg, out);
}

/// Appends the encoding of `ServerMsg::Frame` with these fields and a shared delta payload —
/// byte for byte what [`encode_server`] would write, without building the message.
pub fn encode_frame(
    tick: u32,
    base: Option<u32>,
    checksum: u32,
    ack: u32,
    delta: &[u8],
    out: &mut Vec<u8>,
) {
    out.reserve(delta.len() + 24);
    encode_frame_head(tick, base, checksum, ack, delta.len(), out);
    out.extend_from_slice(delta);
}

/// Appends what [`encode_frame`] writes before the payload: with the `delta_len` bytes of the
/// payload after it, a whole `ServerMsg::Frame`. Lets a writer send the head and a shared
/// payload without copying the payload.
pub fn encode_frame_head(
    tick: u32,
    base: Option<u32>,
    checksum: u32,
    ack: u32,
    delta_len: usize,
    out: &mut Vec<u8>,
) {
    encode_into(
        &(FRAME_VARIANT, tick, base, checksum, ack, delta_len as u64),
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ArenaInfo, Frame, Input, PROTOCOL_VERSION, SessionToken};
    use proptest::prelude::*;

    fn arb_client() -> impl Strategy<Value = ClientMsg> {
        prop_oneof![
            (
                any::<u16>(),
                "[a-zé ]{0,24}",
                any::<Option<[u8; 16]>>(),
                any::<Option<u32>>()
            )
                .prop_map(|(version, name, token, last_tick)| ClientMsg::Hello {
                    version,
                    name,
                    token: token.map(SessionToken),
                    last_tick,
                }),
            (any::<u32>(), any::<(i8, i8, u8)>()).prop_map(|(seq, (thrust, turn, buttons))| {
                ClientMsg::Input {
                    seq,
                    input: Input {
                        thrust,
                        turn,
                        buttons,
                    },
                }
            }),
            any::<u32>().prop_map(|id| ClientMsg::Ping { id }),
            any::<u32>().prop_map(|id| ClientMsg::Pong { id }),
            ".{0,200}".prop_map(|text| ClientMsg::Chat { text }),
            Just(ClientMsg::Leave),
        ]
    }

    proptest! {
        #[test]
        fn client_round_trip(msg in arb_client()) {
            prop_assert_eq!(decode_client(&encode_client(&msg)), Ok(msg));
        }

        #[test]
        fn frame_parts_match_the_message(tick: u32, base: Option<u32>, checksum: u32, ack: u32,
                                         delta in prop::collection::vec(any::<u8>(), 0..600)) {
            let mut out = vec![0xaa];
            encode_frame(tick, base, checksum, ack, &delta, &mut out);
            let frame = ServerMsg::Frame(Frame { tick, base, checksum, ack, delta });
            prop_assert_eq!(&out[1..], &encode_server(&frame)[..]);
            prop_assert_eq!(decode_server(&out[1..]), Ok(frame));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode_client(&bytes);
            let _ = decode_server(&bytes);
        }
    }

    #[test]
    fn limits_are_enforced_before_and_during_decoding() {
        let big = vec![0u8; CLIENT_MSG_LIMIT + 1];
        assert_eq!(
            decode_client(&big),
            Err(CodecError::TooBig {
                size: 1025,
                limit: 1024
            })
        );
        // A chat message whose length prefix claims 4 GiB: refused without allocating it.
        let forged = [4u8, 253, 0, 0, 0, 0, 1, 0, 0, 0];
        assert!(matches!(
            decode_client(&forged),
            Err(CodecError::Malformed(_))
        ));
        let long_name = ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: "x".repeat(25),
            token: None,
            last_tick: None,
        };
        assert_eq!(
            decode_client(&encode_client(&long_name)),
            Err(CodecError::TooLong {
                field: "name",
                max: MAX_NAME_CHARS
            })
        );
        let mut trailing = encode_client(&ClientMsg::Leave);
        trailing.push(0);
        assert_eq!(decode_client(&trailing), Err(CodecError::Trailing(1)));
        assert!(matches!(decode_client(&[9]), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn server_messages_round_trip() {
        let msgs = [
            ServerMsg::Welcome {
                version: PROTOCOL_VERSION,
                room: "default".into(),
                entity: 3,
                token: Some(SessionToken([7; 16])),
                tick_rate: 60,
                send_rate: 30,
                tick: 1234,
                arena: ArenaInfo {
                    width: 3000,
                    height: 2000,
                    obstacles: vec![(10, -20, 30)],
                },
            },
            ServerMsg::Pong { id: 1, tick: 2 },
            ServerMsg::Ping { id: 3 },
            ServerMsg::Chat {
                from: 0,
                name: "server".into(),
                text: "hi <b>".into(),
            },
            ServerMsg::Close {
                code: 4000,
                reason: "protocol version 2 is not 1".into(),
            },
        ];
        for msg in msgs {
            assert_eq!(decode_server(&encode_server(&msg)), Ok(msg));
        }
    }
}
