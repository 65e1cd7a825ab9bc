//! Room chat: what a player's line goes through before the room takes it.
//!
//! Control characters are removed and the line trimmed (an empty line is dropped quietly);
//! then the length limit (`chat_max_chars`) and the player's rate (`chat_per_10s`, one
//! [`Budget`] per session) apply. The room stamps accepted lines with the send they go out
//! with and every follower delivers them before that send's frame (see [`crate::follow`]), so
//! every transport carries chat and a resumed client gets what it missed. Text is never markup:
//! clients render it as text.

use crate::App;
use crate::limits::Budget;
use crate::metrics::Rejection;
use crate::room::{ChatError, Room};
use game_core::NetId;

/// A chat line that was not taken, and why (the message is for the player).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Longer than `chat_max_chars`.
    #[error("chat lines are at most {0} characters")]
    TooLong(usize),
    /// Over the player's rate.
    #[error("at most {0} chat lines per 10 seconds; wait a moment")]
    Rate(u32),
    /// The room could not take it.
    #[error("{0}")]
    Room(#[from] ChatError),
}

/// A player's chat allowance (`chat_per_10s`).
pub fn budget(app: &App) -> Budget {
    let n = app.cfg.chat_per_10s;
    Budget::new(n, f64::from(n) / 10.0)
}

/// Checks, cleans and says `text` as `ship` in `room`. `Ok(false)`: nothing to say (blank).
pub fn say(
    app: &App,
    room: &Room,
    ship: NetId,
    budget: &mut Budget,
    text: &str,
) -> Result<bool, Refused> {
    let text = clean(text);
    if text.is_empty() {
        return Ok(false);
    }
    let max = app.cfg.chat_max_chars;
    if text.chars().count() > max {
        app.metrics.reject(Rejection::Chat);
        return Err(Refused::TooLong(max));
    }
    if !budget.take() {
        app.metrics.reject(Rejection::Chat);
        return Err(Refused::Rate(app.cfg.chat_per_10s));
    }
    room.chat(ship, text)?;
    Ok(true)
}

/// The line without control characters (newlines included), trimmed.
pub fn clean(text: &str) -> String {
    let kept: String = text.chars().filter(|c| !c.is_control()).collect();
    kept.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_controls_and_trims() {
        assert_eq!(clean("  hi\u{0}\n there\u{1b}[31m "), "hi there[31m");
        assert_eq!(clean("\r\n\t"), "");
        assert_eq!(clean("<b>bold</b>"), "<b>bold</b>", "markup stays text");
    }
}
