//! Playing without WebSocket: join over HTTP, then post inputs in batches.
//!
//! ```text
//! POST /api/rooms/{id}/join            {"name": "ana"} | {"token": HEX} (resume) | nothing
//!   → 200 {"token", "entity", "room", "tick_rate", "send_rate", "tick"}   (401 bad_token, 409 room_full)
//! POST /api/rooms/{id}/input?token=HEX {"inputs": [{"seq", "thrust", "turn", "buttons"}, …≤32]}
//!   → 200 {"accepted": n, "ack": last_applied}                          (401 token_required|bad_token)
//! POST /api/rooms/{id}/chat?token=HEX  {"text": "…"}
//!   → 204                                         (400 chat_too_long, 429 chat_rate, 401 bad_token)
//! ```
//!
//! State comes over any HTTP stream with `?token=` (frames then carry the player's `ack`), so
//! a player is a follower plus an [`HttpInputs`]:
//!
//! ```text
//! caller ─ HttpInputs::send_input ─► queue (bounded: INPUT_QUEUE) ─► poster task ─► POST …/input
//!               │ records seq + send time                  once per send period, ≤ 32 inputs
//!               ▼
//!        Ledger (Mutex, bounded) ◄─ ack ─ the follower's frames
//! ```
//!
//! Who waits on what: [`HttpInputs::send_input`] waits at most `write_timeout` for a queue
//! slot ([`ClientError::WriteTimeout`]); the poster task waits for the first input of a batch,
//! then for the end of the send period (gathering what else arrives), then for the post, which
//! is bounded by `write_timeout`. A failed post ends the task, and the next `send_input` returns
//! its error. The ledger records an input's send time when it is queued, so input → ack
//! latency includes the batching delay, as a player feels it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use game_core::protocol::{Input, MAX_CHAT_CHARS, MAX_NAME_CHARS, SessionToken};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use url::Url;

use crate::endpoint::{Cursor, room_endpoint};
use crate::error::ClientError;
use crate::http::{Http, read_limited};
use crate::inbound::{lock, now};
use crate::ledger::Ledger;
use crate::options::ConnectOptions;

/// Inputs in one `POST …/input`: the server's limit.
pub const MAX_INPUTS_PER_POST: usize = 32;
/// Inputs queued for the poster task: two full posts. Full means posts are not keeping up.
pub const INPUT_QUEUE: usize = 2 * MAX_INPUTS_PER_POST;
/// The largest answer read from `join` or `input`.
const ANSWER_LIMIT: usize = 4 << 10;

/// What `POST …/join` gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Joined {
    pub(crate) token: SessionToken,
    pub(crate) entity: u16,
    pub(crate) send_rate: u16,
}

#[derive(Serialize)]
struct JoinBody<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

#[derive(Deserialize)]
struct JoinAnswer {
    token: String,
    entity: u16,
    send_rate: u16,
}

/// Joins the room in `opts` as a new player, or resumes the session of `token`. The caller
/// bounds it in time.
pub(crate) async fn join(
    http: &Http,
    opts: &ConnectOptions,
    token: Option<SessionToken>,
) -> Result<Joined, ClientError> {
    if opts.name.chars().count() > MAX_NAME_CHARS {
        return Err(ClientError::InvalidArgument(format!(
            "name is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    let body = JoinBody {
        // Resuming names the session, not a new player.
        name: if token.is_some() { "" } else { &opts.name },
        token: token.map(|t| t.to_string()),
    };
    let url = room_endpoint(opts.room_url(), "join", &Cursor::default());
    let response = http.send(http.post(url).json(&body)).await?;
    let answer: JoinAnswer = read_json(http, response).await?;
    let token = answer
        .token
        .parse()
        .map_err(|_| ClientError::Protocol("join gave a token that is not 32 hex digits".into()))?;
    if answer.send_rate == 0 {
        return Err(ClientError::Protocol("join gave a zero send rate".into()));
    }
    Ok(Joined {
        token,
        entity: answer.entity,
        send_rate: answer.send_rate,
    })
}

/// An answer's JSON body (at most [`ANSWER_LIMIT`] bytes). The caller bounds it in time.
async fn read_json<T: for<'de> Deserialize<'de>>(
    http: &Http,
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let (body, more) = read_limited(http, response, ANSWER_LIMIT).await?;
    if more {
        return Err(ClientError::Protocol("an answer over 4 KiB".into()));
    }
    serde_json::from_slice(&body)
        .map_err(|e| ClientError::Protocol(format!("an answer that is not the JSON expected: {e}")))
}

/// One input as `POST …/input` takes it.
#[derive(Clone, Copy, Debug, Serialize)]
struct InputJson {
    seq: u32,
    thrust: i8,
    turn: i8,
    buttons: u8,
}

#[derive(Serialize)]
struct InputBody<'a> {
    inputs: &'a [InputJson],
}

#[derive(Debug, Deserialize)]
struct InputAnswer {
    accepted: u32,
    ack: u32,
}

/// A player's inputs over HTTP: queued, numbered, and posted in batches by a task. See the
/// module docs.
#[derive(Debug)]
pub struct HttpInputs {
    /// To the poster task; bounded ([`INPUT_QUEUE`]). Full: callers wait up to
    /// `write_timeout`.
    queue: mpsc::Sender<InputJson>,
    /// Shared with the follower: send times to match against acks.
    ledger: Arc<Mutex<Ledger>>,
    write_timeout: Duration,
    /// The poster; `None` once its result has been taken.
    task: Option<JoinHandle<Result<(), ClientError>>>,
    /// For `leave`: the client and `POST …/leave?token=`.
    http: Http,
    leave_url: Box<Url>,
    /// `POST …/chat?token=`. (Boxed, like `leave_url`, to keep [`crate::Sender`] small.)
    chat_url: Box<Url>,
}

impl HttpInputs {
    /// Spawns the poster task for the session of `token`, posting at most once per `period`.
    pub(crate) fn spawn(
        http: Http,
        opts: &ConnectOptions,
        token: SessionToken,
        ledger: Arc<Mutex<Ledger>>,
        period: Duration,
    ) -> Self {
        let url = room_endpoint(
            opts.room_url(),
            "input",
            &Cursor {
                token: Some(token),
                ..Cursor::default()
            },
        );
        let (queue, rx) = mpsc::channel(INPUT_QUEUE);
        let leave_url = room_endpoint(
            opts.room_url(),
            "leave",
            &Cursor {
                token: Some(token),
                ..Cursor::default()
            },
        );
        let chat_url = room_endpoint(
            opts.room_url(),
            "chat",
            &Cursor {
                token: Some(token),
                ..Cursor::default()
            },
        );
        let task = tokio::spawn(post_loop(http.clone(), url, rx, period, opts.write_timeout));
        Self {
            queue,
            ledger,
            write_timeout: opts.write_timeout,
            task: Some(task),
            http,
            leave_url: Box::new(leave_url),
            chat_url: Box::new(chat_url),
        }
    }

    /// Says a line in the room's chat: `POST …/chat`, bounded by `write_timeout`. A refusal
    /// (too long, over the rate) is [`ClientError::Api`] with the server's code.
    pub async fn chat(&self, text: &str) -> Result<(), ClientError> {
        if text.chars().count() > MAX_CHAT_CHARS {
            return Err(ClientError::InvalidArgument(format!(
                "chat lines are at most {MAX_CHAT_CHARS} characters"
            )));
        }
        let body = serde_json::json!({ "text": text });
        let post = self
            .http
            .send(self.http.post((*self.chat_url).clone()).json(&body));
        match timeout(self.write_timeout, post).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(ClientError::WriteTimeout(self.write_timeout)),
        }
    }

    /// Queues one tick's input with the next sequence number, which it returns. The input is
    /// sent as given (the server validates); use [`Input::sanitized`] for well-formed input.
    pub async fn send_input(&mut self, input: Input) -> Result<u32, ClientError> {
        let permit = match timeout(self.write_timeout, self.queue.reserve()).await {
            Err(_) => return Err(ClientError::WriteTimeout(self.write_timeout)),
            // The permit borrows the queue; the task is a separate field.
            Ok(Err(_)) => return Err(stopped(&mut self.task, self.write_timeout).await),
            Ok(Ok(permit)) => permit,
        };
        // Numbered under the lock, queued in order: seqs reach the server ascending.
        let seq = lock(&self.ledger).inputs.record_send(now());
        permit.send(InputJson {
            seq,
            thrust: input.thrust,
            turn: input.turn,
            buttons: input.buttons,
        });
        Ok(seq)
    }

    /// The last input sequence number queued (0 if none); resume with one more than this.
    pub fn last_seq(&self) -> u32 {
        lock(&self.ledger).inputs.last_seq()
    }

    /// Posts what is queued, then leaves: `POST …/leave?token=` removes the ship at once.
    pub async fn leave(self) -> Result<(), ClientError> {
        let (http, url, limit) = (
            self.http.clone(),
            (*self.leave_url).clone(),
            self.write_timeout,
        );
        self.close().await?;
        match timeout(limit, http.send(http.post(url))).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(ClientError::WriteTimeout(limit)),
        }
    }

    /// Posts what is queued and stops the poster, waiting at most twice `write_timeout`. The
    /// session stays resumable: the ship waits out the server's idle timeout and grace.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let Some(task) = self.task.take() else {
            return Err(ClientError::WriterStopped);
        };
        // The task sees the queue close once it has taken everything in it.
        drop(self.queue);
        match timeout(2 * self.write_timeout, task).await {
            Err(_) => Err(ClientError::WriteTimeout(2 * self.write_timeout)),
            Ok(Err(_)) => Err(ClientError::WriterStopped),
            Ok(Ok(result)) => result,
        }
    }
}

/// Why the poster stopped: its error, the first time it is asked.
async fn stopped(
    task: &mut Option<JoinHandle<Result<(), ClientError>>>,
    within: Duration,
) -> ClientError {
    let Some(task) = task.take() else {
        return ClientError::WriterStopped;
    };
    // The queue is closed, so the task has returned or is about to.
    match timeout(within, task).await {
        Ok(Ok(Err(e))) => e,
        _ => ClientError::WriterStopped,
    }
}

/// The poster task: a batch per `period` at most, each post bounded by `post_timeout`. Ends
/// when the queue closes (after posting what it held) or a post fails.
async fn post_loop(
    http: Http,
    url: Url,
    mut queue: mpsc::Receiver<InputJson>,
    period: Duration,
    post_timeout: Duration,
) -> Result<(), ClientError> {
    let mut batch = Vec::with_capacity(MAX_INPUTS_PER_POST);
    let mut next_post = Instant::now();
    while let Some(first) = queue.recv().await {
        batch.push(first);
        sleep_until(next_post).await;
        while batch.len() < MAX_INPUTS_PER_POST {
            match queue.try_recv() {
                Ok(input) => batch.push(input),
                Err(_) => break,
            }
        }
        next_post = Instant::now() + period;
        let post = async {
            let body = InputBody { inputs: &batch };
            let response = http.send(http.post(url.clone()).json(&body)).await?;
            // The inputs are in; an odd answer is only worth a log line.
            Ok::<_, ClientError>(read_json::<InputAnswer>(&http, response).await)
        };
        let answer = timeout(post_timeout, post)
            .await
            .map_err(|_| ClientError::ReadTimeout(post_timeout))??;
        match answer {
            Ok(answer) if answer.accepted as usize == batch.len() => {
                tracing::trace!(ack = answer.ack, n = batch.len(), "inputs posted");
            }
            Ok(answer) => tracing::debug!(
                accepted = answer.accepted,
                posted = batch.len(),
                ack = answer.ack,
                "the server accepted fewer inputs than posted"
            ),
            Err(e) => tracing::debug!("input answer: {e}"),
        }
        batch.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_the_readme_json() -> Result<(), serde_json::Error> {
        let new = JoinBody {
            name: "ana",
            token: None,
        };
        assert_eq!(serde_json::to_string(&new)?, r#"{"name":"ana"}"#);
        let resume = JoinBody {
            name: "",
            token: Some("ab".repeat(16)),
        };
        assert_eq!(
            serde_json::to_string(&resume)?,
            format!(r#"{{"token":"{}"}}"#, "ab".repeat(16))
        );
        let inputs = [
            InputJson {
                seq: 1,
                thrust: 127,
                turn: 0,
                buttons: 1,
            },
            InputJson {
                seq: 2,
                thrust: -127,
                turn: 5,
                buttons: 0,
            },
        ];
        assert_eq!(
            serde_json::to_string(&InputBody { inputs: &inputs })?,
            r#"{"inputs":[{"seq":1,"thrust":127,"turn":0,"buttons":1},{"seq":2,"thrust":-127,"turn":5,"buttons":0}]}"#
        );
        let answer: JoinAnswer = serde_json::from_str(
            r#"{"token": "00112233445566778899aabbccddeeff", "entity": 7, "room": "default",
                "tick_rate": 60, "send_rate": 30, "tick": 99}"#,
        )?;
        assert_eq!((answer.entity, answer.send_rate), (7, 30));
        Ok(())
    }
}
