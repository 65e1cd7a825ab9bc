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

use crate::endpoint::{Cursor, room_endpoint};
use crate::error::ClientError;
use crate::http::{Http, handshake_step};
use crate::inbound::Inbound;
use crate::options::{ConnectOptions, Welcome};
use crate::raw_http::RawBody;
use crate::records::RecordBuffer;
use crate::sink::FrameSink;
use crate::stats::Stats;
use crate::ws::Event;

/// A room followed over HTTP streaming: yields [`Event`]s and keeps the caller's replica
/// verified.
#[derive(Debug)]
pub struct StreamFollower {
    body: RawBody,
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
        let body = RawBody::open(
            &http,
            &url,
            "application/octet-stream",
            &[],
            opts.read_timeout,
        )
        .await?;
        let mut this = Self {
            body,
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
            let chunk = this.body.next_chunk().await?;
            this.records.feed(&chunk);
        }
    }

    /// The next event; the body may be silent for at most `read_timeout`. Frames are
    /// applied to `replica` and verified; `stats` counts them. A `Close` record is
    /// [`ClientError::Closed`] (and so is every later call); the body ending without one
    /// (even mid-record) is [`ClientError::ConnectionLost`].
    ///
    /// Cancel-safe: it awaits only the body's next chunk, and keeps what it reassembled.
    pub async fn next_event<S: FrameSink + ?Sized>(
        &mut self,
        replica: &mut S,
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
            let chunk = self.body.next_chunk().await?;
            self.records.feed(&chunk);
        }
    }
}
