//! Byte-level primitives for the delta payload: LEB128 varints, zigzag, a bounds-checked reader.
//!
//! ```text
//! uvarint  LEB128: 7 bits per byte, low group first, high bit = more follows (≤ 10 bytes)
//! svarint  zigzag (0, −1, 1, −2, … → 0, 1, 2, 3, …), then uvarint
//! ```
//!
//! bincode (see [`crate::codec`]) frames the messages; this is only for the inside of a delta,
//! where LEB128's two-byte range (up to 16383) suits position and angle steps.

/// Appends `v` as a LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a LEB128 varint.
pub fn put_svarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// The reader ran out of bytes or found a malformed varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// Input ended in the middle of a value.
    Truncated,
    /// A varint longer than 10 bytes or wider than 64 bits.
    Overlong,
}

/// Reads primitives from a byte slice, never past its end.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, ReadError> {
        let b = *self.buf.get(self.pos).ok_or(ReadError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// A LEB128 varint.
    pub fn uvarint(&mut self) -> Result<u64, ReadError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(ReadError::Overlong);
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ReadError::Overlong)
    }

    /// A zigzag LEB128 varint.
    pub fn svarint(&mut self) -> Result<i64, ReadError> {
        let u = self.uvarint()?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let mut out = Vec::new();
        put_uvarint(&mut out, 0);
        put_uvarint(&mut out, 127);
        put_uvarint(&mut out, 128);
        put_svarint(&mut out, -1);
        put_svarint(&mut out, 1);
        put_svarint(&mut out, -65);
        assert_eq!(out, [0, 0x7f, 0x80, 0x01, 1, 2, 0x81, 0x01]);
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        assert_eq!(Reader::new(&[0x80]).uvarint(), Err(ReadError::Truncated));
        assert_eq!(Reader::new(&[0xff; 11]).uvarint(), Err(ReadError::Overlong));
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(Reader::new(&max).uvarint(), Ok(u64::MAX));
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(Reader::new(&over).uvarint(), Err(ReadError::Overlong));
    }

    proptest! {
        #[test]
        fn round_trip(u: u64, s: i64) {
            let mut out = Vec::new();
            put_uvarint(&mut out, u);
            put_svarint(&mut out, s);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.uvarint(), Ok(u));
            prop_assert_eq!(r.svarint(), Ok(s));
            prop_assert_eq!(r.remaining(), 0);
        }
    }
}
