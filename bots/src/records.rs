//! Length-prefixed records: how HTTP streaming and polling frame server messages in a binary
//! body.
//!
//! ```text
//! record = length: u32 little-endian ‖ message: `length` bytes (one bincode ServerMsg)
//! /stream body = record*      (chunk boundaries fall anywhere, even inside the length)
//! /poll body   = record+      (200: chat lines, then the frame), or nothing (204)
//! ```
//!
//! [`RecordBuffer`] reassembles records from chunks as they arrive. It checks each length as
//! soon as its four bytes are in, so a forged length is refused before anything is buffered
//! for it; it then holds at most one partial record plus the chunk being read.

use game_core::codec::SERVER_MSG_LIMIT;

use crate::error::FramingError;

/// The length prefix's size.
const PREFIX: usize = 4;

/// Reassembles records from a byte stream. See the module docs.
#[derive(Debug)]
pub struct RecordBuffer {
    buf: Vec<u8>,
    /// Where the unread bytes of `buf` start.
    start: usize,
    limit: usize,
}

impl Default for RecordBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordBuffer {
    /// A buffer for records of at most [`SERVER_MSG_LIMIT`] bytes.
    pub fn new() -> Self {
        Self::with_limit(SERVER_MSG_LIMIT)
    }

    /// A buffer for records of at most `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            limit,
        }
    }

    /// Adds bytes from the stream. Call it once [`RecordBuffer::next_record`] has returned
    /// `Ok(None)`, so the buffer holds at most one partial record plus this chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole record's message bytes, or `None` when more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, FramingError> {
        let unread = &self.buf[self.start..];
        let Some(len) = unread
            .first_chunk::<PREFIX>()
            .map(|p| u32::from_le_bytes(*p))
        else {
            return Ok(None);
        };
        let len = check_len(len, self.limit)?;
        let Some(message) = unread.get(PREFIX..PREFIX + len) else {
            return Ok(None);
        };
        self.start += PREFIX + len;
        Ok(Some(message))
    }

    /// Bytes held and not yet returned: a partial record (non-zero at the end of a stream
    /// means it was cut off).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

fn check_len(len: u32, limit: usize) -> Result<usize, FramingError> {
    match usize::try_from(len) {
        Ok(n) if n <= limit => Ok(n),
        _ => Err(FramingError::RecordTooBig {
            len: len.into(),
            limit,
        }),
    }
}

/// The messages in `body`, which must be one or more whole records of at most `limit` bytes
/// each (a poll answer: chat lines, then the frame).
pub fn records(body: &[u8], limit: usize) -> Result<Vec<&[u8]>, FramingError> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let Some((prefix, tail)) = rest.split_first_chunk::<PREFIX>() else {
            return Err(FramingError::NotWholeRecords {
                have: body.len(),
                want: body.len() - rest.len() + PREFIX,
            });
        };
        let len = check_len(u32::from_le_bytes(*prefix), limit)?;
        let Some((message, tail)) = tail.split_at_checked(len) else {
            return Err(FramingError::NotWholeRecords {
                have: body.len(),
                want: body.len() - rest.len() + PREFIX + len,
            });
        };
        out.push(message);
        rest = tail;
    }
    if out.is_empty() {
        return Err(FramingError::NotWholeRecords { have: 0, want: 0 });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(message: &[u8]) -> Vec<u8> {
        let mut out = (message.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(message);
        out
    }

    /// Feeds `chunks` in order, draining records between them.
    fn reassemble(buf: &mut RecordBuffer, chunks: &[&[u8]]) -> Result<Vec<Vec<u8>>, FramingError> {
        let mut out = Vec::new();
        for chunk in chunks {
            buf.feed(chunk);
            while let Some(r) = buf.next_record()? {
                out.push(r.to_vec());
            }
        }
        Ok(out)
    }

    #[test]
    fn records_across_and_within_chunks() -> Result<(), FramingError> {
        let (a, b, c) = (record(b"hello"), record(b""), record(&[7; 300]));
        let stream = [a, b, c].concat();
        let mut buf = RecordBuffer::new();
        // The second length prefix is split 2 + 2 between chunks.
        let got = reassemble(&mut buf, &[&stream[..11], &stream[11..13], &stream[13..]])?;
        assert_eq!(got, [b"hello".to_vec(), Vec::new(), vec![7; 300]]);
        assert_eq!(buf.pending(), 0);
        // A cut-off record stays pending.
        let got = reassemble(&mut buf, &[&record(b"abc")[..5]])?;
        assert!(got.is_empty());
        assert_eq!(buf.pending(), 5);
        Ok(())
    }

    #[test]
    fn a_forged_length_is_refused_before_buffering() {
        let mut buf = RecordBuffer::with_limit(100);
        let forged = 101u32.to_le_bytes();
        assert_eq!(
            reassemble(&mut buf, &[&forged[..3], &forged[3..]]),
            Err(FramingError::RecordTooBig {
                len: 101,
                limit: 100
            })
        );
        let mut buf = RecordBuffer::new();
        assert_eq!(
            reassemble(&mut buf, &[&u32::MAX.to_le_bytes()]),
            Err(FramingError::RecordTooBig {
                len: u32::MAX.into(),
                limit: SERVER_MSG_LIMIT
            })
        );
        // Exactly the limit is fine.
        let mut buf = RecordBuffer::with_limit(3);
        assert_eq!(
            reassemble(&mut buf, &[&record(b"abc")]),
            Ok(vec![b"abc".to_vec()])
        );
    }

    #[test]
    fn a_poll_body_is_whole_records() {
        assert_eq!(records(&record(b"xyz"), 10), Ok(vec![&b"xyz"[..]]));
        assert_eq!(records(&record(b""), 10), Ok(vec![&b""[..]]));
        let mut two = record(b"a");
        two.extend(record(b"bc"));
        assert_eq!(records(&two, 10), Ok(vec![&b"a"[..], &b"bc"[..]]));
        assert_eq!(
            records(&[], 10),
            Err(FramingError::NotWholeRecords { have: 0, want: 0 })
        );
        assert_eq!(
            records(&[1, 0], 10),
            Err(FramingError::NotWholeRecords { have: 2, want: 4 })
        );
        // Cut inside the second length prefix, then inside its message.
        assert_eq!(
            records(&two[..8], 10),
            Err(FramingError::NotWholeRecords { have: 8, want: 9 })
        );
        assert_eq!(
            records(&two[..10], 10),
            Err(FramingError::NotWholeRecords { have: 10, want: 11 })
        );
        assert_eq!(
            records(&record(&[0; 11]), 10),
            Err(FramingError::RecordTooBig { len: 11, limit: 10 })
        );
    }

    proptest! {
        /// Any messages, split at any points, come back whole and in order, and the buffer
        /// never holds more than a partial record plus one chunk.
        #[test]
        fn any_split(
            messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..700), 0..10),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let stream: Vec<u8> = messages.iter().flat_map(|m| record(m)).collect();
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            points.push(0);
            points.push(stream.len());
            points.sort_unstable();
            let mut buf = RecordBuffer::with_limit(700);
            let mut got = Vec::new();
            for w in points.windows(2) {
                let chunk = &stream[w[0]..w[1]];
                buf.feed(chunk);
                prop_assert!(buf.pending() <= PREFIX + 700 + chunk.len());
                while let Some(r) = buf.next_record().map_err(|e| TestCaseError::fail(e.to_string()))? {
                    got.push(r.to_vec());
                }
            }
            prop_assert_eq!(got, messages);
            prop_assert_eq!(buf.pending(), 0);
        }
    }
}
