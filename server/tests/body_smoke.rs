//! A short, stable-toolchain smoke of the HTTP body decoders that `fuzz/` fuzzes at length
//! (`http_bodies`, `token_parse`): arbitrary bytes and generated JSON-like text go through
//! `api::json_body` for every body type and through `SessionToken::from_str`. Nothing panics;
//! a body over its endpoint's limit is refused with 413 `too_large`, anything else refused is
//! 400, and what is accepted fits the limit.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use bytes::Bytes;
use game_core::SessionToken;
use proptest::prelude::*;
use proptest::sample::Index;
use server::api::{AppError, CREATE_ROOM_BODY_BYTES, CreateRoom, json_body};
use server::http_player::{InputBody, JoinBody, MAX_BATCH, MAX_BODY_BYTES};

/// Checks one `json_body` outcome against its limit; returns the value if it was accepted.
fn checked<T>(body: &[u8], limit: usize, read: Result<T, AppError>) -> Option<T> {
    match read {
        Ok(value) => {
            assert!(
                body.len() <= limit,
                "accepted {} bytes over a limit of {limit}",
                body.len()
            );
            Some(value)
        }
        Err(e) => {
            let want = if body.len() > limit {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            assert_eq!(
                e.into_response().status(),
                want,
                "{} bytes, limit {limit}",
                body.len()
            );
            None
        }
    }
}

/// Every body type, each with the limit its endpoint uses.
fn read_all(body: &[u8]) {
    let bytes = Bytes::copy_from_slice(body);
    if let Some(join) = checked(
        body,
        MAX_BODY_BYTES,
        json_body::<JoinBody>(&bytes, MAX_BODY_BYTES),
    ) {
        let held = join.name.map_or(0, |s| s.len()) + join.token.map_or(0, |s| s.len());
        assert!(held <= body.len());
    }
    if let Some(batch) = checked(
        body,
        MAX_BODY_BYTES,
        json_body::<InputBody>(&bytes, MAX_BODY_BYTES),
    ) {
        // The batch is bounded by the bytes that carried it. The shortest input is `[0]`, not
        // `{"seq":0}`: serde's derived structs also read a JSON array of their fields.
        assert!(batch.inputs.len() * 3 <= body.len());
    }
    if let Some(create) = checked(
        body,
        CREATE_ROOM_BODY_BYTES,
        json_body::<CreateRoom>(&bytes, CREATE_ROOM_BODY_BYTES),
    ) {
        assert!(create.id.map_or(0, |s| s.len()) <= body.len());
    }
}

/// A JSON object from `(key, value)` pairs; keys may repeat, as a hostile client's may.
fn object(fields: &[(&str, String)]) -> String {
    let fields: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", fields.join(","))
}

/// JSON-ish text: each body's own shape with plausible and hostile values (out-of-range, big and
/// non-finite numbers, bad escapes, wrong types), or any nesting of JSON fragments; sometimes
/// padded with whitespace and sometimes cut short, so that near-valid bodies are common.
fn json_ish() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        any::<i8>().prop_map(|n| n.to_string()),
        any::<u8>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        "-?[0-9]{1,25}(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
        prop_oneof![
            Just("NaN"),
            Just("-Infinity"),
            Just("1e400"),
            Just("-0"),
            Just("null")
        ]
        .prop_map(str::to_owned),
    ];
    let string = prop_oneof![
        "\"[a-z0-9 \\\\\"é-]{0,12}\"",
        "\"(\\\\u[0-9a-fA-F]{4}){1,3}\"",
        "\"[0-9a-fA-F]{31,33}\"",
    ];
    let leaf = prop_oneof![number.clone(), string.clone(), Just("true".to_owned())];
    let tree = leaf.prop_recursive(6, 64, 8, |inner| {
        let key = prop_oneof![
            Just("name"),
            Just("inputs"),
            Just("seq"),
            Just("id"),
            Just("")
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key, inner), 0..5).prop_map(|kv| object(&kv)),
        ]
    });
    // Mostly in range, so that whole batches are accepted often enough to check them too.
    let field = |valid: BoxedStrategy<String>| prop_oneof![6 => valid, 1 => number.clone()];
    let i8s = || any::<i8>().prop_map(|n| n.to_string()).boxed();
    let input = (
        field(any::<u32>().prop_map(|n| n.to_string()).boxed()),
        prop::option::of(field(i8s())),
        prop::option::of(field(i8s())),
        prop::option::of(field(any::<u8>().prop_map(|n| n.to_string()).boxed())),
        prop::option::weighted(0.1, number.clone()),
    )
        .prop_map(|(seq, thrust, turn, buttons, fire)| {
            let optional = [
                ("thrust", thrust),
                ("turn", turn),
                ("buttons", buttons),
                ("fire", fire),
            ];
            let mut fields = vec![("seq", seq)];
            fields.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
            object(&fields)
        });
    let inputs = prop::collection::vec(input, 0..12)
        .prop_map(|v| object(&[("inputs", format!("[{}]", v.join(",")))]));
    let join_key = prop_oneof![Just("name"), Just("token"), Just("admin")];
    let join = prop::collection::vec((join_key, prop_oneof![string.clone(), number]), 0..3)
        .prop_map(|kv| object(&kv));
    let create = prop::collection::vec((Just("id"), string), 0..2).prop_map(|kv| object(&kv));
    let body = prop_oneof![tree, inputs, join, create];
    (body, any::<Option<Index>>(), "[ \t\r\n]{0,3}").prop_map(|(text, cut, pad)| {
        let mut text = format!("{pad}{text}{pad}");
        if let Some(cut) = cut {
            let at = cut.index(text.len() + 1);
            // Cut on a character boundary: a cut mid-character is the byte case's job.
            let at = (0..=at)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(at);
        }
        text
    })
}

/// A valid input batch of up to 40 inputs: more than `MAX_BATCH`, which the handler (not the
/// parser) refuses, and always under `MAX_BODY_BYTES`.
fn input_batch() -> impl Strategy<Value = Vec<(u32, i8, i8, u8)>> {
    prop::collection::vec(any::<(u32, i8, i8, u8)>(), 0..=MAX_BATCH + 8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..MAX_BODY_BYTES + 64)) {
        read_all(&body);
    }

    #[test]
    fn json_ish_text_never_panics(text in json_ish()) {
        read_all(text.as_bytes());
    }

    #[test]
    fn valid_batches_are_read_and_padding_past_the_limit_is_too_large(
        batch in input_batch(),
        pad in 0..MAX_BODY_BYTES,
    ) {
        let inputs: Vec<String> = batch
            .iter()
            .map(|(seq, thrust, turn, buttons)| {
                format!(r#"{{"seq":{seq},"thrust":{thrust},"turn":{turn},"buttons":{buttons}}}"#)
            })
            .collect();
        let text = format!(r#"{{"inputs":[{}]}}"#, inputs.join(","));
        let read = json_body::<InputBody>(&Bytes::from(text.clone()), MAX_BODY_BYTES)
            .unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let got: Vec<(u32, i8, i8, u8)> =
            read.inputs.iter().map(|i| (i.seq, i.thrust, i.turn, i.buttons)).collect();
        prop_assert_eq!(got, batch);

        // JSON allows trailing whitespace: the same batch padded past the limit is refused for
        // its size alone.
        let padded = format!("{text}{}", " ".repeat(pad));
        let read = json_body::<InputBody>(&Bytes::from(padded.clone()), MAX_BODY_BYTES);
        if padded.len() > MAX_BODY_BYTES {
            let e = read.err().unwrap_or_else(|| panic!("{} bytes accepted", padded.len()));
            prop_assert_eq!(e.into_response().status(), StatusCode::PAYLOAD_TOO_LARGE);
        } else {
            prop_assert!(read.is_ok());
        }
    }

    #[test]
    fn tokens_parse_only_as_32_hex_digits(
        text in prop_oneof![any::<String>(), "[0-9a-fA-F]{30,34}", "[0-9a-fA-F]{31}[^0-9a-fA-F]"],
    ) {
        match text.parse::<SessionToken>() {
            Ok(token) => {
                prop_assert_eq!(token.to_string(), text.to_ascii_lowercase());
                prop_assert_eq!(token.to_string().parse::<SessionToken>(), Ok(token));
            }
            Err(_) => prop_assert!(
                text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()),
                "{text:?} refused"
            ),
        }
    }
}
