//! Where a client connects: the room's URLs, built from the server's base URL.
//!
//! Users and scripts name a server the way they open it in a browser (`http://127.0.0.1:8080`);
//! every endpoint of a room is derived from that, keeping any path prefix a reverse proxy adds:
//!
//! ```text
//! http://HOST:PORT[/prefix]  →  ws://HOST:PORT[/prefix]/api/rooms/{room}/ws              (player)
//!                            →  ws://HOST:PORT[/prefix]/api/rooms/{room}/ws?spectate=1   (spectator)
//!                            →  http://HOST:PORT[/prefix]/api/rooms/{room}               (room_http_url)
//!        room_endpoint(room, "sse" | "stream" | "poll" | "join" | "input", cursor)
//!                            →  http://…/api/rooms/{room}/poll?since=T&wait=S&token=HEX
//! https:// → wss://; ws:// and wss:// bases are taken as they are (and → http(s):// for HTTP).
//! ```

use std::time::Duration;

use game_core::protocol::SessionToken;
use url::Url;

use crate::error::ClientError;

pub use game_core::protocol::Role;

/// The WebSocket URL of `room` on the server at `base` (see the module docs).
pub fn room_ws_url(base: &str, room: &str, role: Role) -> Result<Url, ClientError> {
    let mut url = room_url(base, room, true)?;
    url.path_segments_mut()
        .map_err(|()| bad_url(base, "the URL cannot have a path"))?
        .push("ws");
    if role == Role::Spectator {
        url.set_query(Some("spectate=1"));
    }
    Ok(url)
}

/// The HTTP URL of `room` on the server at `base`: `GET` it for the room's JSON, and
/// [`room_endpoint`] adds the leaf of each HTTP transport.
pub fn room_http_url(base: &str, room: &str) -> Result<Url, ClientError> {
    room_url(base, room, false)
}

/// The query parameters of a request to a room's HTTP endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// `since=T`: the tick the client holds, so the first frame is a delta from it.
    pub since: Option<u32>,
    /// `wait=S` (whole seconds) on `/poll`: how long the server may hold the request.
    pub wait: Option<Duration>,
    /// `token=HEX`: a player's session token (frames then carry its `ack`).
    pub token: Option<SessionToken>,
}

/// `room` (from [`room_http_url`]) with the path segment `leaf` (`sse`, `stream`, `poll`,
/// `join`, `input`) and the query of `cursor`.
pub fn room_endpoint(room: &Url, leaf: &str, cursor: &Cursor) -> Url {
    let mut url = room.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.push(leaf);
    }
    url.set_query(None);
    if *cursor != Cursor::default() {
        let mut q = url.query_pairs_mut();
        if let Some(since) = cursor.since {
            q.append_pair("since", &since.to_string());
        }
        if let Some(wait) = cursor.wait {
            q.append_pair("wait", &wait.as_secs().to_string());
        }
        if let Some(token) = cursor.token {
            q.append_pair("token", &token.to_string());
        }
    }
    url
}

fn bad_url(base: &str, reason: &str) -> ClientError {
    ClientError::BadUrl {
        url: base.to_owned(),
        reason: reason.to_owned(),
    }
}

/// `…/api/rooms/{room}` on `base`, with a WebSocket or an HTTP scheme.
fn room_url(base: &str, room: &str, websocket: bool) -> Result<Url, ClientError> {
    let bad = |reason: &str| bad_url(base, reason);
    if room.is_empty() {
        return Err(ClientError::InvalidArgument("the room id is empty".into()));
    }
    let mut url = Url::parse(base).map_err(|e| bad(&e.to_string()))?;
    let secure = match url.scheme() {
        "http" | "ws" => false,
        "https" | "wss" => true,
        _ => return Err(bad("the scheme must be http, https, ws or wss")),
    };
    let scheme = match (websocket, secure) {
        (true, false) => "ws",
        (true, true) => "wss",
        (false, false) => "http",
        (false, true) => "https",
    };
    if url.host().is_none() {
        return Err(bad("no host"));
    }
    // Changing between these "special" schemes always succeeds.
    url.set_scheme(scheme)
        .map_err(|()| bad("cannot change the scheme"))?;
    url.set_fragment(None);
    url.set_query(None);
    url.path_segments_mut()
        .map_err(|()| bad("the URL cannot have a path"))?
        .pop_if_empty()
        // `extend` percent-encodes each segment, so an odd room id cannot escape its segment.
        .extend(["api", "rooms", room]);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str, room: &str, role: Role) -> String {
        match room_ws_url(base, room, role) {
            Ok(u) => u.to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn http_bases_become_room_ws_urls() {
        let p = Role::Player;
        assert_eq!(
            url("http://127.0.0.1:8080", "default", p),
            "ws://127.0.0.1:8080/api/rooms/default/ws"
        );
        assert_eq!(
            url("http://127.0.0.1:8080/", "default", p),
            "ws://127.0.0.1:8080/api/rooms/default/ws"
        );
        assert_eq!(
            url("http://localhost:8080", "default", Role::Spectator),
            "ws://localhost:8080/api/rooms/default/ws?spectate=1"
        );
        assert_eq!(
            url("https://example.invalid", "r1", p),
            "wss://example.invalid/api/rooms/r1/ws"
        );
        assert_eq!(
            url("ws://[::1]:9000", "r1", p),
            "ws://[::1]:9000/api/rooms/r1/ws"
        );
    }

    #[test]
    fn prefixes_kept_queries_dropped_rooms_escaped() {
        let p = Role::Player;
        assert_eq!(
            url("http://h:1/game/", "a", p),
            "ws://h:1/game/api/rooms/a/ws"
        );
        assert_eq!(
            url("http://h:1/game", "a", p),
            "ws://h:1/game/api/rooms/a/ws"
        );
        assert_eq!(
            url("http://h:1/?x=1#frag", "a", Role::Spectator),
            "ws://h:1/api/rooms/a/ws?spectate=1"
        );
        assert_eq!(
            url("http://h:1", "a/../b?c", p),
            "ws://h:1/api/rooms/a%2F..%2Fb%3Fc/ws"
        );
    }

    #[test]
    fn http_room_urls_and_endpoints() -> Result<(), ClientError> {
        assert_eq!(
            room_http_url("ws://h:1/game/?x#y", "a b")?.as_str(),
            "http://h:1/game/api/rooms/a%20b"
        );
        assert_eq!(
            room_http_url("wss://h", "r")?.as_str(),
            "https://h/api/rooms/r"
        );
        let room = room_http_url("http://127.0.0.1:8080", "default")?;
        let at = |leaf, c: Cursor| room_endpoint(&room, leaf, &c).to_string();
        assert_eq!(
            at("sse", Cursor::default()),
            "http://127.0.0.1:8080/api/rooms/default/sse"
        );
        let token = SessionToken([0xab; 16]);
        let hex = "abababababababababababababababab";
        assert_eq!(
            at(
                "poll",
                Cursor {
                    since: Some(4242),
                    wait: Some(Duration::from_millis(25_900)),
                    token: Some(token),
                }
            ),
            format!("http://127.0.0.1:8080/api/rooms/default/poll?since=4242&wait=25&token={hex}")
        );
        assert_eq!(
            at(
                "stream",
                Cursor {
                    since: Some(0),
                    ..Cursor::default()
                }
            ),
            "http://127.0.0.1:8080/api/rooms/default/stream?since=0"
        );
        assert_eq!(
            at(
                "input",
                Cursor {
                    token: Some(token),
                    ..Cursor::default()
                }
            ),
            format!("http://127.0.0.1:8080/api/rooms/default/input?token={hex}")
        );
        Ok(())
    }

    #[test]
    fn unusable_bases_are_refused() {
        assert!(matches!(
            room_ws_url("ftp://h/", "a", Role::Player),
            Err(ClientError::BadUrl { .. })
        ));
        assert!(matches!(
            room_ws_url("not a url", "a", Role::Player),
            Err(ClientError::BadUrl { .. })
        ));
        assert!(matches!(
            room_ws_url("http://h/", "", Role::Player),
            Err(ClientError::InvalidArgument(_))
        ));
    }
}
