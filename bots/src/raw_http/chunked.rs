//! An incremental decoder of HTTP/1.1's chunked transfer coding (RFC 9112 §7.1) that works in
//! place: the answers the server streams through hyper (`…/stream`, and `…/sse` when a request
//! reaches it in pieces) are framed this way.
//!
//! ```text
//! chunked-body    = *chunk last-chunk trailer-section CRLF
//! chunk           = chunk-size [ chunk-ext ] CRLF chunk-data CRLF      chunk-size = 1*HEXDIG
//! last-chunk      = 1*"0" [ chunk-ext ] CRLF
//! trailer-section = *( field-line CRLF )
//! ```
//!
//! Bytes go in as they were read, split anywhere; [`Decoder::decode`] moves the data they carry
//! to the front of the same buffer, so a read costs one `memmove` past the size line and no
//! allocation. The decoder holds no bytes of its own: a size line is read digit by digit and
//! extensions and trailers are skipped, each with a bound.

/// The longest chunk-size line, extensions included (hyper's answers have none).
const MAX_SIZE_LINE: usize = 1024;
/// The most bytes of trailer fields after the last chunk.
const MAX_TRAILERS: usize = 16 << 10;

/// Bytes that are not a chunked body: the connection cannot be followed further.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChunkedError {
    /// A chunk-size line that does not start with hex digits.
    #[error("a chunk-size line without a hex size")]
    BadSize,
    /// More hex digits than a `u64` holds.
    #[error("a chunk size over 64 bits")]
    SizeOverflow,
    /// A chunk-size line longer than [`MAX_SIZE_LINE`].
    #[error("a chunk-size line over {MAX_SIZE_LINE} bytes")]
    SizeLineTooLong,
    /// Chunk data not followed by CRLF: the size was wrong.
    #[error("chunk data not followed by CRLF")]
    NoCrlfAfterData,
    /// A line that does not end with CRLF (a bare CR or LF).
    #[error("a line not ended by CRLF")]
    BadLineEnd,
    /// Trailer fields over [`MAX_TRAILERS`].
    #[error("trailers over {MAX_TRAILERS} bytes")]
    TrailersTooLong,
}

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a chunk-size line: the size so far, whether it has a digit, the line's length so
    /// far, and whether the size is over (a space or `;` came: the rest up to CR is skipped).
    Size {
        size: u64,
        digits: bool,
        len: usize,
        ext: bool,
    },
    /// The size line's CR came; its LF is next.
    SizeLf { size: u64 },
    /// `left` bytes of chunk data to go.
    Data { left: u64 },
    /// The CR after a chunk's data is next.
    DataCr,
    /// The LF after a chunk's data is next.
    DataLf,
    /// After the last chunk: trailer bytes so far, the current line's length, and whether it
    /// has had its CR. An empty line ends the body.
    Trailers { total: usize, line: usize, cr: bool },
    /// The body is over; anything after it is not looked at.
    Done,
}

const SIZE_LINE: State = State::Size {
    size: 0,
    digits: false,
    len: 0,
    ext: false,
};

/// A chunked body's decoding state, between reads. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    state: State,
}

impl Decoder {
    /// A decoder at the start of a body.
    pub(crate) fn new() -> Self {
        Self { state: SIZE_LINE }
    }

    /// Whether the last chunk and the trailers have come: the body is over.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes the next bytes of the body, in place: the chunk data in `buf` is moved to its
    /// front, and its length returned. Bytes after the end of the body are ignored.
    pub(crate) fn decode(&mut self, buf: &mut [u8]) -> Result<usize, ChunkedError> {
        let (mut read, mut written) = (0, 0);
        while read < buf.len() {
            match self.state {
                State::Data { left } => {
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(buf.len() - read);
                    buf.copy_within(read..read + n, written);
                    (read, written) = (read + n, written + n);
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                }
                State::Done => break,
                state => {
                    self.state = step(state, buf[read])?;
                    read += 1;
                }
            }
        }
        Ok(written)
    }
}

/// The state after `byte`, outside chunk data.
fn step(state: State, byte: u8) -> Result<State, ChunkedError> {
    Ok(match state {
        State::Size {
            size,
            digits,
            len,
            ext,
        } => {
            if len + 1 > MAX_SIZE_LINE {
                return Err(ChunkedError::SizeLineTooLong);
            }
            let len = len + 1;
            match (byte, ext) {
                (b'\r', _) if digits => State::SizeLf { size },
                (b'\n', _) if digits => return Err(ChunkedError::BadLineEnd),
                (b'\r' | b'\n', _) => return Err(ChunkedError::BadSize),
                (_, true) => State::Size {
                    size,
                    digits,
                    len,
                    ext,
                },
                (b' ' | b'\t' | b';', false) if digits => State::Size {
                    size,
                    digits,
                    len,
                    ext: true,
                },
                (_, false) => {
                    let digit = char::from(byte).to_digit(16).ok_or(ChunkedError::BadSize)?;
                    if size > u64::MAX >> 4 {
                        return Err(ChunkedError::SizeOverflow);
                    }
                    State::Size {
                        size: (size << 4) | u64::from(digit),
                        digits: true,
                        len,
                        ext,
                    }
                }
            }
        }
        State::SizeLf { size } => match (byte, size) {
            (b'\n', 0) => State::Trailers {
                total: 0,
                line: 0,
                cr: false,
            },
            (b'\n', left) => State::Data { left },
            _ => return Err(ChunkedError::BadLineEnd),
        },
        State::DataCr if byte == b'\r' => State::DataLf,
        State::DataLf if byte == b'\n' => SIZE_LINE,
        State::DataCr | State::DataLf => return Err(ChunkedError::NoCrlfAfterData),
        State::Trailers { total, line, cr } => {
            if total + 1 > MAX_TRAILERS {
                return Err(ChunkedError::TrailersTooLong);
            }
            let total = total + 1;
            match (byte, cr) {
                (b'\n', true) if line == 0 => State::Done,
                (b'\n', true) => State::Trailers {
                    total,
                    line: 0,
                    cr: false,
                },
                (b'\r', false) => State::Trailers {
                    total,
                    line,
                    cr: true,
                },
                (b'\n', false) | (_, true) => return Err(ChunkedError::BadLineEnd),
                (_, false) => State::Trailers {
                    total,
                    line: line + 1,
                    cr,
                },
            }
        }
        // `decode` handles these itself.
        State::Data { .. } | State::Done => state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `data` cut into chunks of the given sizes (the rest in one last chunk), with an
    /// extension on the first chunk and a trailer, as a server might send it.
    fn encode(data: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = data;
        for (i, &size) in sizes.iter().chain([&usize::MAX]).enumerate() {
            let n = size.min(rest.len());
            if n == 0 {
                continue;
            }
            let ext = if i == 0 { ";name=\"v\"" } else { "" };
            out.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
            out.extend_from_slice(&rest[..n]);
            out.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        out.extend_from_slice(b"0\r\nx-trailer: 1\r\n\r\n");
        out
    }

    /// Decodes `stream` given in pieces that end at `cuts` (ascending), as reads would; the
    /// data and whether the body ended.
    fn decode_at(stream: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, bool), ChunkedError> {
        let mut decoder = Decoder::new();
        let mut data = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain([&stream.len()]) {
            let mut piece = stream[from..to].to_vec();
            let n = decoder.decode(&mut piece)?;
            data.extend_from_slice(&piece[..n]);
            from = to;
        }
        Ok((data, decoder.is_done()))
    }

    #[test]
    fn a_body_split_at_every_byte_boundary() -> Result<(), ChunkedError> {
        let data: Vec<u8> = (0..=255).cycle().take(700).collect();
        let stream = encode(&data, &[1, 16, 300, 0, 17]);
        for cut in 0..=stream.len() {
            assert_eq!(
                decode_at(&stream, &[cut])?,
                (data.clone(), true),
                "cut at {cut}"
            );
        }
        let every: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(decode_at(&stream, &every)?, (data, true), "one byte a read");
        Ok(())
    }

    #[test]
    fn sizes_extensions_and_the_end() -> Result<(), ChunkedError> {
        let stream = b"A;x=y\r\n0123456789\r\n1 \t;q\r\n!\r\n000\r\n\r\nafter the end";
        assert_eq!(decode_at(stream, &[])?, (b"0123456789!".to_vec(), true));
        let stream = b"4\r\nabcd\r\nff";
        assert_eq!(decode_at(stream, &[])?, (b"abcd".to_vec(), false));
        assert_eq!(decode_at(b"", &[])?, (Vec::new(), false));
        let max = b"0000ffffffffffffffff\r\n";
        assert_eq!(decode_at(max, &[])?, (Vec::new(), false));
        Ok(())
    }

    #[test]
    fn bad_bodies_are_refused() {
        let cases: [(&[u8], ChunkedError); 9] = [
            (b"g\r\n", ChunkedError::BadSize),
            (b"\r\n", ChunkedError::BadSize),
            (b";ext\r\n", ChunkedError::BadSize),
            (b"4;x\n", ChunkedError::BadLineEnd),
            (b"4\rx", ChunkedError::BadLineEnd),
            (b"1ffffffffffffffff\r\n", ChunkedError::SizeOverflow),
            (b"2\r\nabc\r\n", ChunkedError::NoCrlfAfterData),
            (b"2\r\nab\n\n", ChunkedError::NoCrlfAfterData),
            (b"0\r\nx: 1\n\r\n", ChunkedError::BadLineEnd),
        ];
        for (stream, want) in cases {
            assert_eq!(
                decode_at(stream, &[]),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(stream)
            );
        }
        let long = format!("1;{}\r\n", "e".repeat(MAX_SIZE_LINE));
        assert_eq!(
            decode_at(long.as_bytes(), &[]),
            Err(ChunkedError::SizeLineTooLong)
        );
        let trailers = format!("0\r\n{}\r\n\r\n", "t".repeat(MAX_TRAILERS));
        assert_eq!(
            decode_at(trailers.as_bytes(), &[]),
            Err(ChunkedError::TrailersTooLong)
        );
    }

    proptest! {
        /// Any data, in chunks of any sizes, read in pieces cut anywhere, comes back whole.
        #[test]
        fn any_chunks_any_cuts(
            data in prop::collection::vec(any::<u8>(), 0..2000),
            sizes in prop::collection::vec(1usize..600, 0..8),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let stream = encode(&data, &sizes);
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            cuts.sort_unstable();
            let got = decode_at(&stream, &cuts).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(got, (data, true));
        }
    }
}
