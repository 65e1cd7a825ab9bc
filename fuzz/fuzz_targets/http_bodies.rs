//! Fuzzes the JSON bodies of the HTTP endpoints (`POST /api/rooms`, `…/join`, `…/input`) through
//! the server's one body reader, `api::json_body`, with each endpoint's own limit. The first byte
//! picks the body type and the rest is the body.
//!
//! Never a panic; a body over the limit is always 413 and any other refusal 400; what is accepted
//! fits the limit and holds no more than the body did (strings no longer than the body, inputs
//! no more than it has room for), so a request cannot make the server allocate past its limit.
#![no_main]

use axum::http::StatusCode;
use axum::response::IntoResponse;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use server::api::{AppError, CREATE_ROOM_BODY_BYTES, CreateRoom, json_body};
use server::http_player::{InputBody, JoinBody, MAX_BODY_BYTES};

/// The shortest input: not `{"seq":0}` but `[0]`, since serde's derived `Deserialize` also takes
/// a struct as a JSON array of its fields in order (`deny_unknown_fields` does not stop that).
/// `json_body` refuses a top-level array since `regression-input-array-form` (`[[[2]]]`) showed
/// it, but `{"inputs":[[0]]}` is still a batch of one. An accepted batch has at most one input
/// per this many bytes.
const MIN_INPUT_BYTES: usize = 3;

/// Checks the outcome against the limit and returns the body if it was accepted.
fn checked<T>(body: &Bytes, limit: usize, read: Result<T, AppError>) -> Option<T> {
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

fn len(s: Option<&String>) -> usize {
    s.map_or(0, String::len)
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let body = Bytes::copy_from_slice(rest);
    match which % 3 {
        0 => {
            if let Some(join) = checked(
                &body,
                MAX_BODY_BYTES,
                json_body::<JoinBody>(&body, MAX_BODY_BYTES),
            ) {
                assert!(len(join.name.as_ref()) + len(join.token.as_ref()) <= body.len());
            }
        }
        1 => {
            if let Some(batch) = checked(
                &body,
                MAX_BODY_BYTES,
                json_body::<InputBody>(&body, MAX_BODY_BYTES),
            ) {
                // The handler refuses more than MAX_BATCH; the parser must not have been able to
                // build more than the bytes allow before it gets there.
                assert!(batch.inputs.len() * MIN_INPUT_BYTES <= body.len());
            }
        }
        _ => {
            if let Some(create) = checked(
                &body,
                CREATE_ROOM_BODY_BYTES,
                json_body::<CreateRoom>(&body, CREATE_ROOM_BODY_BYTES),
            ) {
                assert!(len(create.id.as_ref()) <= body.len());
            }
        }
    }
});
