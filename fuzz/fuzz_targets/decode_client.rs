//! Fuzzes the server's decoder of untrusted client messages: it must never panic, and what it
//! accepts must survive a re-encode unchanged.
#![no_main]

use game_core::codec::{decode_client, encode_client};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode_client(data) {
        assert_eq!(decode_client(&encode_client(&msg)).as_ref(), Ok(&msg));
    }
});
