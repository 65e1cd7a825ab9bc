//! Fuzzes `SessionToken`'s `FromStr`, which reads the `token` query parameter of the HTTP player
//! endpoints and the resume token of `join`: never a panic, and an accepted string is exactly
//! 32 hex digits that the token shows back (in lower case) and reads again as the same token.
#![no_main]

use game_core::SessionToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A query string reaches the parser as text; invalid UTF-8 becomes U+FFFD, as it would
    // there, so that every input exercises the parser.
    let text = String::from_utf8_lossy(data);
    if let Ok(token) = text.parse::<SessionToken>() {
        let shown = token.to_string();
        assert_eq!(shown, text.to_ascii_lowercase());
        assert_eq!(shown.parse::<SessionToken>(), Ok(token));
    }
});
