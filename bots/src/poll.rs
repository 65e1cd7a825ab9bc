//! Following a room by long polling or polling: one `GET …/poll` after another.
//!
//! ```text
//! GET /api/rooms/{id}/poll?since=T&wait=S[&token=HEX]     (no since: "send me a keyframe")
//! 200 application/octet-stream   one record (u32 LE length ‖ ServerMsg::Frame) from T to now
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
use game_core::replica::Replica;
use reqwest::StatusCode;
use tokio::time::{Instant, sleep_until, timeout};
use url::Url;

use crate::endpoint::{Cursor, room_endpoint};
use crate::error::{ClientError, FramingError};
use crate::http::{Http, read_limited};
use crate::inbound::Inbound;
use crate::options::ConnectOptions;
use crate::records::one_record;
use crate::stats::Stats;
use crate::ws::Event;

/// The header that names the next `since`.
pub const CURSOR_HEADER: &str = "x-tickwire-cursor";

/// A poll's answer: the cursor, and the message of a `200`.
#[derive(Debug)]
struct Answer {
    cursor: u32,
    message: Option<Vec<u8>>,
}

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
            inbound,
        }
    }

    /// The next event: polls until a frame (or another message) comes, each request bounded
    /// by `wait` + `read_timeout`. Frames are applied to `replica` and verified; `stats`
    /// counts polls, empty polls and frames. An error answer is [`ClientError::Api`] (e.g.
    /// `cursor_in_future`); the next call polls again.
    ///
    /// Cancel-safe: the request in flight and the time of the next one live in the follower.
    pub async fn next_event(
        &mut self,
        replica: &mut Replica,
        stats: &mut Stats,
    ) -> Result<Event, ClientError> {
        loop {
            self.inbound.check_open()?;
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
            let Some(message) = answer.message else {
                stats.empty_polls += 1;
                self.next_at = started + self.interval;
                if since.is_some_and(|t| t != answer.cursor) {
                    return Err(ClientError::Protocol(format!(
                        "204 with {CURSOR_HEADER} {} for since={since:?}",
                        answer.cursor
                    )));
                }
                continue;
            };
            self.next_at = if self.wait.is_zero() {
                started + self.interval
            } else {
                Instant::now()
            };
            match self.inbound.handle(&message, replica, stats)? {
                Some(Event::Frame(frame)) if frame.tick != answer.cursor => {
                    return Err(ClientError::Protocol(format!(
                        "a frame for tick {} with {CURSOR_HEADER} {}",
                        frame.tick, answer.cursor
                    )));
                }
                Some(event) => return Ok(event),
                None => {}
            }
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
            message: None,
        }),
        StatusCode::OK => {
            let content_type = header(reqwest::header::CONTENT_TYPE.as_str()).unwrap_or_default();
            if !content_type.starts_with("application/octet-stream") {
                return Err(ClientError::Protocol(format!(
                    "expected content-type application/octet-stream, got {content_type:?}"
                )));
            }
            let limit = 4 + SERVER_MSG_LIMIT;
            let (mut body, more) = read_limited(http, response, limit).await?;
            if more {
                return Err(FramingError::BodyTooBig { limit }.into());
            }
            one_record(&body, SERVER_MSG_LIMIT)?;
            body.drain(..4);
            Ok(Answer {
                cursor,
                message: Some(body),
            })
        }
        other => Err(ClientError::Protocol(format!(
            "unexpected HTTP {other} from a poll"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Role;
    use crate::fake_http::{Answer, FakeHttp, Request};
    use crate::options::Resume;
    use crate::transport::{Follower, Session, Transport, open};
    use game_core::codec::encode_server;
    use game_core::protocol::{Frame, ServerMsg};
    use game_core::snapshot::Snapshot;

    const ROOM: &str = r#"{"id": "r", "tick": 10, "tick_rate": 60, "send_rate": 10,
        "arena": {"width": 100, "height": 100, "obstacles": []}}"#;

    /// A keyframe of an empty room at `tick`, as a poll body.
    fn keyframe_record(tick: u32) -> Vec<u8> {
        let snap = Snapshot {
            tick,
            entities: Vec::new(),
        };
        let msg = encode_server(&ServerMsg::Frame(Frame {
            tick,
            base: None,
            checksum: snap.checksum(),
            ack: 0,
            delta: game_core::delta::keyframe(&snap),
        }));
        let mut out = (msg.len() as u32).to_le_bytes().to_vec();
        out.extend(msg);
        out
    }

    /// The room's JSON; a poll without `since` gets a keyframe at tick 10 after `hold`, one with
    /// `since=T` gets `204` with cursor `cursor(T)` at once.
    fn script(hold: Duration, cursor: fn(&str) -> String) -> impl Fn(&Request) -> Answer {
        move |r| {
            if r.target == "/api/rooms/r" {
                return Answer::json(200, ROOM);
            }
            match r.target.split_once("since=") {
                None => Answer {
                    status: 200,
                    headers: vec![
                        ("content-type", "application/octet-stream".into()),
                        (CURSOR_HEADER, "10".into()),
                    ],
                    body: keyframe_record(10),
                    delay: hold,
                },
                Some((_, rest)) => {
                    let since = rest.split('&').next().unwrap_or_default();
                    Answer {
                        status: 204,
                        headers: vec![(CURSOR_HEADER, cursor(since))],
                        ..Answer::default()
                    }
                }
            }
        }
    }

    async fn spectate(
        base: &str,
        t: Transport,
        tweak: impl FnOnce(&mut ConnectOptions),
    ) -> Result<Follower, ClientError> {
        let mut opts = ConnectOptions::new(base, "r", Role::Spectator)?;
        tweak(&mut opts);
        let Session { follower, .. } = open(&opts, t, Resume::default()).await?;
        Ok(follower)
    }

    /// A `select!` loop drops `next_event` every few ms; the held long poll survives that.
    #[tokio::test]
    async fn a_held_poll_survives_cancelled_calls() -> Result<(), ClientError> {
        let server = FakeHttp::start(script(Duration::from_millis(300), str::to_owned)).await;
        let mut follower = spectate(&server.base, Transport::LongPoll, |_| {}).await?;
        let (mut replica, mut stats) = (Replica::new(), Stats::new());
        let mut cancelled = 0;
        let event = loop {
            let call = follower.next_event(&mut replica, &mut stats);
            match tokio::time::timeout(Duration::from_millis(20), call).await {
                Err(_) => cancelled += 1,
                Ok(event) => break event?,
            }
        };
        assert!(matches!(event, Event::Frame(f) if f.tick == 10 && f.base.is_none()));
        assert!(cancelled >= 3, "the poll was held: {cancelled}");
        let polls = server.requests("/api/rooms/r/poll");
        assert_eq!(
            polls.len(),
            1,
            "one request, however often the call was dropped"
        );
        assert_eq!(polls[0].target, "/api/rooms/r/poll?wait=25");
        assert_eq!((stats.polls, stats.frames), (1, 1));
        Ok(())
    }

    /// Polling asks once per interval; an empty long poll does not make it spin either.
    #[tokio::test]
    async fn polls_are_paced_and_empty_answers_do_not_spin() -> Result<(), ClientError> {
        let server = FakeHttp::start(script(Duration::ZERO, str::to_owned)).await;
        for t in [Transport::Poll, Transport::LongPoll] {
            let mut follower = spectate(&server.base, t, |o| {
                o.poll_interval = Some(Duration::from_millis(100));
            })
            .await?;
            let (mut replica, mut stats) = (Replica::new(), Stats::new());
            follower.next_event(&mut replica, &mut stats).await?;
            let before = server.requests("/api/rooms/r/poll").len();
            let quiet = follower.next_event(&mut replica, &mut stats);
            assert!(
                tokio::time::timeout(Duration::from_millis(550), quiet)
                    .await
                    .is_err()
            );
            let polls = server.requests("/api/rooms/r/poll");
            let n = polls.len() - before;
            // ~5 at 100 ms; a loaded machine may manage fewer, but never many more.
            assert!((2..=7).contains(&n), "{t}: {n} polls in 550 ms");
            assert!(
                polls[before..]
                    .iter()
                    .all(|r| r.target.contains("since=10"))
            );
            for w in polls[before..].windows(2) {
                let gap = w[1].at - w[0].at;
                assert!(gap >= Duration::from_millis(50), "{t}: polls {gap:?} apart");
            }
            assert_eq!(stats.empty_polls, stats.polls - 1);
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_cursor_that_contradicts_the_answer_is_a_protocol_error() -> Result<(), ClientError> {
        let server = FakeHttp::start(script(Duration::ZERO, |_| "99".into())).await;
        let mut follower = spectate(&server.base, Transport::Poll, |_| {}).await?;
        let (mut replica, mut stats) = (Replica::new(), Stats::new());
        follower.next_event(&mut replica, &mut stats).await?;
        let result = follower.next_event(&mut replica, &mut stats).await;
        assert!(
            matches!(result, Err(ClientError::Protocol(_))),
            "{result:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn error_answers_keep_their_status_and_code() -> Result<(), ClientError> {
        let server = FakeHttp::start(|r: &Request| {
            if r.target == "/api/rooms/r" {
                Answer::json(200, ROOM)
            } else {
                Answer::json(
                    400,
                    r#"{"error": {"code": "cursor_in_future", "message": "ahead"}}"#,
                )
            }
        })
        .await;
        let mut follower = spectate(&server.base, Transport::Poll, |_| {}).await?;
        let (mut replica, mut stats) = (Replica::new(), Stats::new());
        let err = follower.next_event(&mut replica, &mut stats).await;
        assert!(
            matches!(&err, Err(e) if e.http_status() == Some(400) && e.api_code() == Some("cursor_in_future")),
            "{err:?}"
        );
        let gone = FakeHttp::start(|_: &Request| {
            Answer::json(
                404,
                r#"{"error": {"code": "room_not_found", "message": "no"}}"#,
            )
        })
        .await;
        let missing = spectate(&gone.base, Transport::LongPoll, |_| {}).await;
        assert!(
            matches!(&missing, Err(e) if e.api_code() == Some("room_not_found")),
            "{missing:?}"
        );
        Ok(())
    }
}
