//! Fuzzes the room's reader of WebSocket input frames (`ws_link::front_input`), which reads
//! what a player's client sent straight off its socket: on any bytes it must never panic, and
//! what it reads as an input must lie within them, be a final, masked binary frame, and unmask
//! to exactly that input. A longer run of the same bytes must read the same.
#![no_main]

use game_core::codec::decode_client;
use game_core::protocol::ClientMsg;
use libfuzzer_sys::fuzz_target;
use server::ws_link::{Front, client_head, front_input};

fuzz_target!(|data: &[u8]| {
    let front = front_input(data);
    if let Front::Input { seq, input, len } = front {
        assert!(len <= data.len());
        let (head, head_len, _) = client_head(data)
            .ok()
            .flatten()
            .expect("an input has a whole head");
        assert!(head.is_final && !head.rsv1 && !head.rsv2 && !head.rsv3);
        assert_eq!(u8::from(head.opcode), 2, "a binary frame");
        let mask = head.mask.expect("a client's input is masked");
        let payload: Vec<u8> = data[head_len..len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(decode_client(&payload), Ok(ClientMsg::Input { seq, input }));
        let mut longer = data.to_vec();
        longer.extend_from_slice(b"more");
        assert_eq!(front_input(&longer), front);
    }
});
