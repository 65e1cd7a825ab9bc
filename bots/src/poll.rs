//! Following a room by long polling or polling: one `GET …/poll` after another.
//!
//! ```text
//! GET /api/rooms/{id}/poll?since=T&wait=S[&token=HEX]     (no since: "send me a keyframe")
//! 200 application/octet-stream   records (u32 LE length ‖ ServerMsg): the chat lines not yet
//!                                had, then one Frame from T to now

//! 204 No Content                 nothing newer than T within S seconds
//! both: x-tickwire-cursor: <tick> — the frame's tick (200) or T (204): the next `since`
//! ```
//!
//! Long polling asks with `wait` = [`ConnectOptions::long_poll_wait`] and asks again as soon as
//! a frame comes back; polling asks with `wait=0` once per interval
//! ([`ConnectOptions::poll_interval`], default one send period), answered or not. An empty
//! answer never triggers the next request sooner than one interval after the last one began,
//! so a server that answers `204` at once cannot make a long poller spin. `since` is the
//! replica's tick when the request starts: the replica is what the delta must apply to.
//!
//! The request in flight is kept in the follower, not in the future of
//! [`PollFollower::next_event`], so a `tokio::select!` loop that drops that future (to send an
//! input, say) does not abort a long poll: the next call picks up the same request.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use game_core::codec::SERVER_MSG_LIMIT;
use game_core::protocol::SessionToken;
use reqwest::StatusCode;
use tokio::time::{Instant, sleep_until, timeout};
use url::Url;

use crate::endpoint::{Cursor, room_endpoint};
use crate::error::{ClientError, FramingError};
use crate::http::{Http, read_limited};
use crate::inbound::Inbound;
use crate::options::ConnectOptions;
use crate::records::records;
use crate::sink::FrameSink;
use crate::stats::Stats;
use crate::ws::Event;

/// The header that names the next `since`.
pub const CURSOR_HEADER: &str = "x-tickwire-cursor";

/// A poll's answer: the cursor, and the messages of a `200` (chat lines, then the frame).
#[derive(Debug)]
struct Answer {
    cursor: u32,
    messages: Vec<Vec<u8>>,
}

/// Most a poll answer may hold: a frame and the room's recent chat.
const POLL_BODY_LIMIT: usize = 4 + SERVER_MSG_LIMIT + 256 * 1024;

type AnswerFuture = Pin<Box<dyn Future<Output = Result<Answer, ClientError>> + Send>>;

/// A request in flight.
struct InFlight {
    since: Option<u32>,
    started: Instant,
    answer: AnswerFuture,
}

/// A room followed by (long) polling: yields [`Event`]s and keeps the caller's replica
/// verified.
pub struct PollFollower {
    http: Http,
    room_url: Url,
    token: Option<SessionToken>,
    /// `wait=` of each request: zero for polling.
    wait: Duration,
    /// Polling's period, and the least time between the starts of an empty answer's request
    /// and the next.
    interval: Duration,
    /// Bound on one request, body included.
    request_timeout: Duration,
    /// When the next request may start.
    next_at: Instant,
    in_flight: Option<InFlight>,
    /// The last `x-tickwire-cursor` seen.
    cursor: Option<u32>,
    /// Messages of the last answer not yet returned (chat lines before its frame), with its
    /// cursor.
    pending: std::collections::VecDeque<(Vec<u8>, u32)>,
    inbound: Inbound,
}

impl std::fmt::Debug for PollFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollFollower")
            .field("room_url", &self.room_url)
            .field("wait", &self.wait)
            .field("interval", &self.interval)
            .field("cursor", &self.cursor)
            .field("in_flight", &self.in_flight.as_ref().map(|f| f.since))
            .finish_non_exhaustive()
    }
}

impl PollFollower {
    /// A follower that long-polls (`long`) or polls the room in `opts` with `token`, whose
    /// send period is `send_period`. It sends nothing until the first
    /// [`PollFollower::next_event`].
    pub(crate) fn new(
        http: Http,
        opts: &ConnectOptions,
        long: bool,
        token: Option<SessionToken>,
        send_period: Duration,
        inbound: Inbound,
    ) -> Self {
        let wait = if long {
            opts.long_poll_wait
        } else {
            Duration::ZERO
        };
        Self {
            http,
            room_url: opts.room_url().clone(),
            token,
            wait,
            interval: opts.poll_interval.unwrap_or(send_period),
            request_timeout: wait + opts.read_timeout,
            next_at: Instant::now(),
            in_flight: None,
            cursor: None,
            pending: std::collections::VecDeque::new(),
            inbound,
        }
    }

    /// The next event: polls until a frame (or another message) comes, each request bounded
    /// by `wait` + `read_timeout`. Frames are applied to `replica` and verified; `stats`
    /// counts polls, empty polls and frames. An error answer is [`ClientError::Api`] (e.g.
    /// `cursor_in_future`); the next call polls again.
    ///
    /// Cancel-safe: the request in flight and the time of the next one live in the follower.
    pub async fn next_event<S: FrameSink + ?Sized>(
        &mut self,
        replica: &mut S,
        stats: &mut Stats,
    ) -> Result<Event, ClientError> {
        loop {
            self.inbound.check_open()?;
            if let Some((message, cursor)) = self.pending.pop_front() {
                match self.inbound.handle(&message, replica, stats)? {
                    Some(Event::Frame(frame)) if frame.tick != cursor => {
                        return Err(ClientError::Protocol(format!(
                            "a frame for tick {} with {CURSOR_HEADER} {cursor}",
                            frame.tick
                        )));
                    }
                    Some(event) => return Ok(event),
                    None => continue,
                }
            }
            if self.in_flight.is_none() {
                sleep_until(self.next_at).await;
                stats.polls += 1;
                self.in_flight = Some(self.request(replica.tick()));
            }
            let Some(flight) = self.in_flight.as_mut() else {
                continue;
            };
            let result = flight.answer.as_mut().await;
            let (since, started) = (flight.since, flight.started);
            self.in_flight = None;
            let answer = match result {
                Ok(answer) => answer,
                Err(e) => {
                    self.next_at = started + self.interval;
                    return Err(e);
                }
            };
            self.cursor = Some(answer.cursor);
            if answer.messages.is_empty() {
                stats.empty_polls += 1;
                self.next_at = started + self.interval;
                if since.is_some_and(|t| t != answer.cursor) {
                    return Err(ClientError::Protocol(format!(
                        "204 with {CURSOR_HEADER} {} for since={since:?}",
                        answer.cursor
                    )));
                }
                continue;
            }
            self.next_at = if self.wait.is_zero() {
                started + self.interval
            } else {
                Instant::now()
            };
            let cursor = answer.cursor;
            self.pending
                .extend(answer.messages.into_iter().map(|m| (m, cursor)));
        }
    }

    /// The last `x-tickwire-cursor` the server sent.
    pub fn cursor(&self) -> Option<u32> {
        self.cursor
    }

    /// Starts a request from `since`.
    fn request(&self, since: Option<u32>) -> InFlight {
        let url = room_endpoint(
            &self.room_url,
            "poll",
            &Cursor {
                since,
                wait: Some(self.wait),
                token: self.token,
            },
        );
        let (http, within) = (self.http.clone(), self.request_timeout);
        InFlight {
            since,
            started: Instant::now(),
            answer: Box::pin(async move { poll_once(&http, url, within).await }),
        }
    }
}

/// One poll, body included, within `within`.
async fn poll_once(http: &Http, url: Url, within: Duration) -> Result<Answer, ClientError> {
    timeout(within, poll_unbounded(http, url))
        .await
        .map_err(|_| ClientError::ReadTimeout(within))?
}

/// One poll; the caller bounds it in time.
async fn poll_unbounded(http: &Http, url: Url) -> Result<Answer, ClientError> {
    let response = http.send(http.get(url)).await?;
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let cursor = header(CURSOR_HEADER)
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or_else(|| {
            ClientError::Protocol(format!("an answer without a numeric {CURSOR_HEADER}"))
        })?;
    match response.status() {
        StatusCode::NO_CONTENT => Ok(Answer {
            cursor,
            messages: Vec::new(),
        }),
        StatusCode::OK => {
            let content_type = header(reqwest::header::CONTENT_TYPE.as_str()).unwrap_or_default();
            if !content_type.starts_with("application/octet-stream") {
                return Err(ClientError::Protocol(format!(
                    "expected content-type application/octet-stream, got {content_type:?}"
                )));
            }
            let limit = POLL_BODY_LIMIT;
            let (body, more) = read_limited(http, response, limit).await?;
            if more {
                return Err(FramingError::BodyTooBig { limit }.into());
            }
            let messages = records(&body, SERVER_MSG_LIMIT)?
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect();
            Ok(Answer { cursor, messages })
        }
        other => Err(ClientError::Protocol(format!(
            "unexpected HTTP {other} from a poll"
        ))),
    }
}
