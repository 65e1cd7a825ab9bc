//! Where a client connects: the room's WebSocket URL, built from the server's base URL.
//!
//! Users and scripts name a server the way they open it in a browser (`http://127.0.0.1:8080`);
//! the WebSocket endpoint of a room is derived from that, keeping any path prefix a reverse
//! proxy adds:
//!
//! ```text
//! http://HOST:PORT[/prefix]  →  ws://HOST:PORT[/prefix]/api/rooms/{room}/ws              (player)
//!                            →  ws://HOST:PORT[/prefix]/api/rooms/{room}/ws?spectate=1   (spectator)
//! https:// → wss://; ws:// and wss:// bases are taken as they are.
//! ```

use url::Url;

use crate::error::ClientError;

/// Whether a connection plays a ship or only watches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// Gets a ship and a session token, sends inputs.
    #[default]
    Player,
    /// Read-only: no ship, no token, never sends input (`?spectate=1`).
    Spectator,
}

/// The WebSocket URL of `room` on the server at `base` (see the module docs).
pub fn room_ws_url(base: &str, room: &str, role: Role) -> Result<Url, ClientError> {
    let bad = |reason: &str| ClientError::BadUrl {
        url: base.to_owned(),
        reason: reason.to_owned(),
    };
    if room.is_empty() {
        return Err(ClientError::InvalidArgument("the room id is empty".into()));
    }
    let mut url = Url::parse(base).map_err(|e| bad(&e.to_string()))?;
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        _ => return Err(bad("the scheme must be http, https, ws or wss")),
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
        .extend(["api", "rooms", room, "ws"]);
    if role == Role::Spectator {
        url.set_query(Some("spectate=1"));
    }
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
