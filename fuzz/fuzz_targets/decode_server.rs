//! Fuzzes the clients' decoder of server messages, and a replica fed whatever frame decodes.
#![no_main]

use game_core::codec::decode_server;
use game_core::protocol::ServerMsg;
use game_core::replica::Replica;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ServerMsg::Frame(frame)) = decode_server(data) {
        let mut replica = Replica::new();
        let _ = replica.apply(&frame);
    }
});
