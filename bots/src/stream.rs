//! Following a room over HTTP streaming: `GET …/stream`, one long chunked binary response.
//!
//! ```text
//! GET /api/rooms/{id}/stream[?since=TICK][&token=HEX]
//! 200 application/octet-stream, chunked:
//!     record(Welcome) record(Frame) record(Frame) … record(Close)
//!     record = u32 LE length ‖ ServerMsg          (see crate::records)
//! ```
//!
//! Chunk boundaries fall anywhere; [`RecordBuffer`] reassembles the records, and
//! `inbound` does with each message what every transport does. Resuming passes the
//! replica's tick as `since`.

use game_core::codec::decode_server;
use game_core::replica::Replica;

use crate::endpoint::{Cursor, room_endpoint};
use crate::error::ClientError;
use crate::http::{Body, Http, handshake_step, open_stream};
use crate::inbound::Inbound;
use crate::options::{ConnectOptions, Welcome};
use crate::records::RecordBuffer;
use crate::stats::Stats;
use crate::ws::Event;

/// A room followed over HTTP streaming: yields [`Event`]s and keeps the caller's replica
/// verified.
#[derive(Debug)]
pub struct StreamFollower {
    http: Http,
    body: Body,
    records: RecordBuffer,
    inbound: Inbound,
}

impl StreamFollower {
    /// Opens the stream with `cursor` and reads up to the `Welcome`. The caller bounds it in
    /// time.
    pub(crate) async fn open(
        http: Http,
        opts: &ConnectOptions,
        cursor: Cursor,
        inbound: Inbound,
    ) -> Result<(Welcome, Self), ClientError> {
        let url = room_endpoint(opts.room_url(), "stream", &cursor);
        let request = http.get(url);
        let response = open_stream(&http, request, "application/octet-stream").await?;
        let mut this = Self {
            http,
            body: Body::new(response, opts.read_timeout),
            records: RecordBuffer::new(),
            inbound,
        };
        loop {
            if let Some(record) = this.records.next_record()? {
                if let Some(welcome) = handshake_step(&decode_server(record)?)? {
                    return Ok((welcome, this));
                }
                continue;
            }
            let chunk = this.body.next_chunk(&this.http).await?;
            this.records.feed(&chunk);
        }
    }

    /// The next event, waiting at most `read_timeout` for each chunk of the body. Frames are
    /// applied to `replica` and verified; `stats` counts them. A `Close` record is
    /// [`ClientError::Closed`] (and so is every later call); the body ending without one
    /// (even mid-record) is [`ClientError::ConnectionLost`].
    ///
    /// Cancel-safe: it awaits only the body's next chunk, and keeps what it reassembled.
    pub async fn next_event(
        &mut self,
        replica: &mut Replica,
        stats: &mut Stats,
    ) -> Result<Event, ClientError> {
        loop {
            self.inbound.check_open()?;
            if let Some(record) = self.records.next_record()? {
                if let Some(event) = self.inbound.handle(record, replica, stats)? {
                    return Ok(event);
                }
                continue;
            }
            let chunk = self.body.next_chunk(&self.http).await?;
            self.records.feed(&chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Role;
    use crate::error::CloseInfo;
    use crate::fake_http::{Answer, FakeHttp, Request};
    use crate::inbound::samples;
    use crate::options::Resume;
    use crate::transport::{Session, Transport, open};
    use game_core::protocol::SessionToken;
    use std::time::Duration;

    fn record(message: &[u8]) -> Vec<u8> {
        let mut out = (message.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(message);
        out
    }

    #[tokio::test]
    async fn records_become_verified_events_and_the_body_ending_is_a_lost_connection()
    -> Result<(), ClientError> {
        let welcome = [samples::welcome(), samples::keyframe(7, 3)]
            .iter()
            .flat_map(|m| record(m))
            .collect::<Vec<u8>>();
        let closing = [record(&samples::close())].concat();
        let server = FakeHttp::start(move |r: &Request| {
            let body = if r.target.contains("since=9") {
                closing.clone()
            } else {
                welcome.clone()
            };
            if r.target.starts_with("/api/rooms/r/join") {
                return Answer::json(
                    200,
                    r#"{"token": "000102030405060708090a0b0c0d0e0f", "entity": 4, "send_rate": 30}"#,
                );
            }
            Answer {
                status: 200,
                headers: vec![("content-type", "application/octet-stream".into())],
                body,
                delay: Duration::ZERO,
            }
        })
        .await;
        let opts = ConnectOptions::new(&server.base, "r", Role::Player)?;
        let Session {
            welcome,
            mut follower,
            sender,
            ..
        } = open(&opts, Transport::Stream, Resume::default()).await?;
        // The entity and token are the join's.
        assert_eq!(welcome.entity, 4);
        assert_eq!(
            welcome.token,
            Some(SessionToken(std::array::from_fn(|i| i as u8)))
        );
        let (mut replica, mut stats) = (Replica::new(), Stats::new());
        let frame = follower.next_event(&mut replica, &mut stats).await?;
        assert!(matches!(frame, Event::Frame(f) if (f.tick, f.ack) == (7, 3)));
        assert!(matches!(
            follower.next_event(&mut replica, &mut stats).await,
            Err(ClientError::ConnectionLost)
        ));
        drop((follower, sender));

        // Resuming passes the tick as `since` with the token; a Close record ends it.
        let resume = Resume {
            token: welcome.token,
            last_tick: Some(9),
            next_seq: 1,
        };
        let opened = open(&opts, Transport::Stream, resume).await;
        assert!(
            matches!(
                &opened,
                Err(ClientError::Refused(CloseInfo { code: 1001, .. }))
            ),
            "{opened:?}"
        );
        let streams = server.requests("/api/rooms/r/stream");
        assert_eq!(
            streams.last().map(|r| r.target.as_str()),
            Some("/api/rooms/r/stream?since=9&token=000102030405060708090a0b0c0d0e0f")
        );
        let joins = server.requests("/api/rooms/r/join");
        assert_eq!(
            joins.last().map(|r| r.body.as_slice()),
            Some(&br#"{"token":"000102030405060708090a0b0c0d0e0f"}"#[..])
        );
        Ok(())
    }
}
