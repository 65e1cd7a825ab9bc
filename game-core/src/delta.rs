//! Deltas: the change from one snapshot to another, as compact bytes.
//!
//! A delta lists removed ids, added entities in full, and for each changed entity a head byte
//! (id gap + field mask) with only the changed fields. Unchanged entities cost nothing. A
//! keyframe is a delta from [`Snapshot::empty`], so there is one decoder.
//!
//! Positions are sent as residuals from a prediction (dead reckoning): the decoder moves each
//! baseline entity by its average velocity over the `k = tick_B − tick_A` ticks in between, and
//! the delta carries only the error of that guess. Every entity without a change record is
//! moved that way, so "unchanged" means "where the prediction puts it": a still entity and one
//! in steady flight predicted to the grid step cost nothing; one a few steps off costs two bytes
//! (head + one residual byte).
//!
//! ```text
//! delta    = removed added changed                  (every list ascending by id)
//! removed  = uvarint n, n × uvarint gap
//! added    = uvarint n, n × full
//! full     = uvarint gap, u8 kind, svarint x, svarint y, svarint vx, svarint vy,
//!            uvarint angle, u8 hp, u8 flags, u8 var, uvarint owner, uvarint score
//! changed  = uvarint n, n × change
//! change   = u8 head, [uvarint gap if head & 3 == 3], then per set bit, in this order:
//!   bit 2 POS_SMALL  u8 (rx + 8) | (ry + 8) << 4        each residual in −8..=7
//!   bit 3 POS_WIDE   svarint rx, svarint ry              (never with POS_SMALL)
//!   bit 4 VEL        svarint vx − vx₀, svarint vy − vy₀
//!   bit 5 ANGLE      svarint (angle − angle₀) wrapped to i16
//!   bit 6 STATUS     u8 hp, u8 flags, u8 var
//!   bit 7 META       uvarint owner, uvarint score
//! gap      = id − previous id in the same list (the first: id + 1), so always ≥ 1;
//!            in a head, bits 0–1 hold gap − 1 when the gap is 1..=3
//! x̂        = x₀ + floor(((vx₀ + vx) · k + 16) / 32)       (vx: the new velocity)
//! x        = x̂ + rx,  likewise y; a surviving entity with no record: x = x̂ with vx = vx₀
//! ```
//!
//! Varints are LEB128 ([`crate::varint`]). A kind change under one id is sent as a removal and
//! an addition. Decoding checks every count, order and range: bad bytes give a
//! [`DeltaError`], never a panic or an outsized allocation.

use crate::snapshot::{EntityKind, EntityState, NetId, Snapshot};
use crate::varint::{ReadError, Reader, put_svarint, put_uvarint};

const POS_SMALL: u8 = 1 << 2;
const POS_WIDE: u8 = 1 << 3;
const VEL: u8 = 1 << 4;
const ANGLE: u8 = 1 << 5;
const STATUS: u8 = 1 << 6;
const META: u8 = 1 << 7;
/// The smallest encoding of a full entity, used to bound counts by the bytes left.
const MIN_FULL_BYTES: usize = 11;

/// Why a delta could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The payload ended in the middle of a value.
    #[error("delta is truncated")]
    Truncated,
    /// A varint was malformed.
    #[error("delta has a malformed varint")]
    Overlong,
    /// An id does not fit 16 bits (ids ascend by gaps ≥ 1).
    #[error("delta names an id beyond 65535")]
    BadId,
    /// A zero gap: ids must strictly ascend.
    #[error("delta ids are not strictly ascending")]
    Unordered,
    /// An entity kind byte that names no kind.
    #[error("delta has unknown entity kind {0}")]
    BadKind(u8),
    /// A list longer than the bytes or baseline could hold.
    #[error("delta list of {0} entries is larger than possible")]
    TooMany(u64),
    /// A removed or changed id that the baseline does not have.
    #[error("delta refers to id {0}, which the baseline does not have")]
    NotInBase(NetId),
    /// An added id that the result already has.
    #[error("delta adds id {0}, which already exists")]
    Duplicate(NetId),
    /// A change that also removes the entity, or sets both position encodings.
    #[error("delta has a contradictory change for id {0}")]
    Contradiction(NetId),
    /// A value that leaves its field's range.
    #[error("delta value for id {0} is out of range")]
    Range(NetId),
    /// Bytes left over after the last list.
    #[error("delta has {0} trailing bytes")]
    Trailing(usize),
}

impl From<ReadError> for DeltaError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Truncated => Self::Truncated,
            ReadError::Overlong => Self::Overlong,
        }
    }
}

/// What one encode wrote, for statistics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaStats {
    /// Entities removed.
    pub removed: usize,
    /// Entities added in full.
    pub added: usize,
    /// Entities sent as changes (those the prediction got exactly right cost nothing).
    pub changed: usize,
    /// Bytes appended to the output.
    pub bytes: usize,
}

/// Encodes deltas, keeping scratch buffers between calls so the hot path does not allocate.
#[derive(Debug, Default)]
pub struct Encoder {
    removed: Vec<u8>,
    added: Vec<u8>,
    changed: Vec<u8>,
}

impl Encoder {
    /// A new encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the delta that takes `a` to `b` onto `out`.
    pub fn encode(&mut self, a: &Snapshot, b: &Snapshot, out: &mut Vec<u8>) -> DeltaStats {
        self.removed.clear();
        self.added.clear();
        self.changed.clear();
        let k = i64::from(b.tick) - i64::from(a.tick);
        let mut stats = DeltaStats::default();
        let (mut last_removed, mut last_added, mut last_changed) = (-1i32, -1i32, -1i32);
        let (mut ia, mut ib) = (0, 0);
        loop {
            let (ea, eb) = (a.entities.get(ia), b.entities.get(ib));
            match (ea, eb) {
                (None, None) => break,
                (Some(ea), eb) if eb.is_none_or(|eb| ea.id < eb.id) => {
                    put_gap(&mut self.removed, &mut last_removed, ea.id);
                    stats.removed += 1;
                    ia += 1;
                }
                (ea, Some(eb)) if ea.is_none_or(|ea| eb.id < ea.id) => {
                    put_full(&mut self.added, &mut last_added, eb);
                    stats.added += 1;
                    ib += 1;
                }
                (Some(ea), Some(eb)) => {
                    if ea.kind != eb.kind {
                        put_gap(&mut self.removed, &mut last_removed, ea.id);
                        put_full(&mut self.added, &mut last_added, eb);
                        stats.removed += 1;
                        stats.added += 1;
                    } else if put_change(&mut self.changed, &mut last_changed, ea, eb, k) {
                        stats.changed += 1;
                    }
                    ia += 1;
                    ib += 1;
                }
                // Unreachable: the guards above cover every pair with at least one side.
                (Some(_), None) | (None, Some(_)) => break,
            }
        }
        let start = out.len();
        for (n, bytes) in [
            (stats.removed, &self.removed),
            (stats.added, &self.added),
            (stats.changed, &self.changed),
        ] {
            put_uvarint(out, n as u64);
            out.extend_from_slice(bytes);
        }
        stats.bytes = out.len() - start;
        stats
    }
}

/// Encodes the delta from `a` to `b` into a new buffer.
pub fn encode(a: &Snapshot, b: &Snapshot) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new().encode(a, b, &mut out);
    out
}

/// Encodes `b` as a keyframe: the delta from the empty snapshot.
pub fn keyframe(b: &Snapshot) -> Vec<u8> {
    encode(&Snapshot::empty(), b)
}

fn put_gap(out: &mut Vec<u8>, last: &mut i32, id: NetId) {
    put_uvarint(out, (i32::from(id) - *last) as u64);
    *last = i32::from(id);
}

fn put_full(out: &mut Vec<u8>, last: &mut i32, e: &EntityState) {
    put_gap(out, last, e.id);
    out.push(e.kind as u8);
    put_svarint(out, e.x.into());
    put_svarint(out, e.y.into());
    put_svarint(out, e.vx.into());
    put_svarint(out, e.vy.into());
    put_uvarint(out, e.angle.into());
    out.extend_from_slice(&[e.hp, e.flags, e.var]);
    put_uvarint(out, e.owner.into());
    put_uvarint(out, e.score.into());
}

/// The dead-reckoned coordinate after `k` ticks (see the module docs).
fn predict(p0: i32, v0: i16, v1: i16, k: i64) -> i64 {
    i64::from(p0) + ((i64::from(v0) + i64::from(v1)) * k + 16).div_euclid(32)
}

/// `e` moved by its own velocity for `k` ticks: what an entity without a change record becomes.
fn drift(e: &EntityState, k: i64) -> Result<EntityState, DeltaError> {
    if k == 0 || (e.vx == 0 && e.vy == 0) {
        return Ok(*e);
    }
    let range = |_| DeltaError::Range(e.id);
    Ok(EntityState {
        x: i32::try_from(predict(e.x, e.vx, e.vx, k)).map_err(range)?,
        y: i32::try_from(predict(e.y, e.vy, e.vy, k)).map_err(range)?,
        ..*e
    })
}

/// Writes a change record if anything differs; returns whether it wrote one.
fn put_change(out: &mut Vec<u8>, last: &mut i32, a: &EntityState, b: &EntityState, k: i64) -> bool {
    let rx = i64::from(b.x) - predict(a.x, a.vx, b.vx, k);
    let ry = i64::from(b.y) - predict(a.y, a.vy, b.vy, k);
    let small = |r: i64| (-8..=7).contains(&r);
    let mut mask = 0u8;
    if rx != 0 || ry != 0 {
        mask |= if small(rx) && small(ry) {
            POS_SMALL
        } else {
            POS_WIDE
        };
    }
    if (a.vx, a.vy) != (b.vx, b.vy) {
        mask |= VEL;
    }
    if a.angle != b.angle {
        mask |= ANGLE;
    }
    if (a.hp, a.flags, a.var) != (b.hp, b.flags, b.var) {
        mask |= STATUS;
    }
    if (a.owner, a.score) != (b.owner, b.score) {
        mask |= META;
    }
    if mask == 0 {
        return false;
    }
    let gap = i32::from(b.id) - *last;
    *last = i32::from(b.id);
    if (1..=3).contains(&gap) {
        out.push(mask | (gap - 1) as u8);
    } else {
        out.push(mask | 3);
        put_uvarint(out, gap as u64);
    }
    if mask & POS_SMALL != 0 {
        out.push(((rx + 8) | (ry + 8) << 4) as u8);
    }
    if mask & POS_WIDE != 0 {
        put_svarint(out, rx);
        put_svarint(out, ry);
    }
    if mask & VEL != 0 {
        put_svarint(out, i64::from(b.vx) - i64::from(a.vx));
        put_svarint(out, i64::from(b.vy) - i64::from(a.vy));
    }
    if mask & ANGLE != 0 {
        put_svarint(out, i64::from(b.angle.wrapping_sub(a.angle) as i16));
    }
    if mask & STATUS != 0 {
        out.extend_from_slice(&[b.hp, b.flags, b.var]);
    }
    if mask & META != 0 {
        put_uvarint(out, b.owner.into());
        put_uvarint(out, b.score.into());
    }
    true
}

/// Applies a delta payload to `base`, giving the snapshot at `tick`.
///
/// Fails, without panicking, on any payload that [`Encoder::encode`] could not have produced
/// from `base`; the caller should then ask for a keyframe.
pub fn apply(base: &Snapshot, tick: u32, payload: &[u8]) -> Result<Snapshot, DeltaError> {
    let mut r = Reader::new(payload);
    let k = i64::from(tick) - i64::from(base.tick);

    let n_removed = read_count(&mut r, base.entities.len(), 1)?;
    let mut removed = Vec::with_capacity(n_removed);
    let mut last = -1i32;
    for _ in 0..n_removed {
        removed.push(read_id(&mut r, &mut last)?);
    }

    let n_added = read_count(&mut r, usize::from(u16::MAX) + 1, MIN_FULL_BYTES)?;
    let mut added = Vec::with_capacity(n_added);
    let mut last = -1i32;
    for _ in 0..n_added {
        added.push(read_full(&mut r, &mut last)?);
    }

    let n_changed = read_count(&mut r, base.entities.len(), 1)?;
    let mut next_change = ChangeStream {
        left: n_changed,
        last: -1,
        pending: None,
    };

    let mut kept = Vec::with_capacity(base.entities.len() + n_added);
    let mut removed = removed.into_iter().peekable();
    for e in &base.entities {
        let gone = match removed.peek() {
            Some(&id) if id < e.id => return Err(DeltaError::NotInBase(id)),
            Some(&id) if id == e.id => {
                removed.next();
                true
            }
            _ => false,
        };
        match next_change.peek_id(&mut r)? {
            Some(id) if id < e.id => return Err(DeltaError::NotInBase(id)),
            Some(id) if id == e.id => {
                if gone {
                    return Err(DeltaError::Contradiction(id));
                }
                kept.push(next_change.apply(&mut r, e, k)?);
            }
            // No record: the entity is exactly where dead reckoning puts it.
            _ if !gone => kept.push(drift(e, k)?),
            _ => {}
        }
    }
    if let Some(id) = removed.next() {
        return Err(DeltaError::NotInBase(id));
    }
    if let Some(id) = next_change.peek_id(&mut r)? {
        return Err(DeltaError::NotInBase(id));
    }
    if r.remaining() > 0 {
        return Err(DeltaError::Trailing(r.remaining()));
    }
    Ok(Snapshot {
        tick,
        entities: merge(kept, added)?,
    })
}

/// Merges two id-sorted lists; an id in both is a duplicate.
fn merge(kept: Vec<EntityState>, added: Vec<EntityState>) -> Result<Vec<EntityState>, DeltaError> {
    if added.is_empty() {
        return Ok(kept);
    }
    let mut out = Vec::with_capacity(kept.len() + added.len());
    let mut kept = kept.into_iter().peekable();
    for a in added {
        while let Some(k) = kept.next_if(|k| k.id < a.id) {
            out.push(k);
        }
        if kept.peek().is_some_and(|k| k.id == a.id) {
            return Err(DeltaError::Duplicate(a.id));
        }
        out.push(a);
    }
    out.extend(kept);
    Ok(out)
}

/// Reads a list length, refusing one larger than `max` or than the bytes left could hold.
fn read_count(r: &mut Reader, max: usize, min_item_bytes: usize) -> Result<usize, DeltaError> {
    let n = r.uvarint()?;
    let fits = usize::try_from(n).is_ok_and(|n| n <= max && n <= r.remaining() / min_item_bytes);
    if fits {
        Ok(n as usize)
    } else {
        Err(DeltaError::TooMany(n))
    }
}

fn next_id(last: &mut i32, gap: u64) -> Result<NetId, DeltaError> {
    if gap == 0 {
        return Err(DeltaError::Unordered);
    }
    // `last` is −1 before the first id, so `last + gap` is the id; a huge gap must not wrap.
    let id = i64::from(*last)
        .checked_add_unsigned(gap)
        .ok_or(DeltaError::BadId)?;
    let id = NetId::try_from(id).map_err(|_| DeltaError::BadId)?;
    *last = i32::from(id);
    Ok(id)
}

fn read_id(r: &mut Reader, last: &mut i32) -> Result<NetId, DeltaError> {
    let gap = r.uvarint()?;
    next_id(last, gap)
}

fn read_full(r: &mut Reader, last: &mut i32) -> Result<EntityState, DeltaError> {
    let id = read_id(r, last)?;
    let kind_byte = r.u8()?;
    let kind = EntityKind::from_u8(kind_byte).ok_or(DeltaError::BadKind(kind_byte))?;
    let range = |_| DeltaError::Range(id);
    Ok(EntityState {
        id,
        kind,
        x: i32::try_from(r.svarint()?).map_err(range)?,
        y: i32::try_from(r.svarint()?).map_err(range)?,
        vx: i16::try_from(r.svarint()?).map_err(range)?,
        vy: i16::try_from(r.svarint()?).map_err(range)?,
        angle: u16::try_from(r.uvarint()?).map_err(range)?,
        hp: r.u8()?,
        flags: r.u8()?,
        var: r.u8()?,
        owner: u16::try_from(r.uvarint()?).map_err(range)?,
        score: u16::try_from(r.uvarint()?).map_err(range)?,
    })
}

/// The changed list, read lazily while walking the baseline.
struct ChangeStream {
    left: usize,
    last: i32,
    /// The head byte and id of the change read but not yet applied.
    pending: Option<(u8, NetId)>,
}

impl ChangeStream {
    fn peek_id(&mut self, r: &mut Reader) -> Result<Option<NetId>, DeltaError> {
        if self.pending.is_none() && self.left > 0 {
            self.left -= 1;
            let head = r.u8()?;
            let gap = match head & 3 {
                3 => r.uvarint()?,
                g => u64::from(g) + 1,
            };
            self.pending = Some((head, next_id(&mut self.last, gap)?));
        }
        Ok(self.pending.map(|(_, id)| id))
    }

    fn apply(
        &mut self,
        r: &mut Reader,
        a: &EntityState,
        k: i64,
    ) -> Result<EntityState, DeltaError> {
        let Some((head, id)) = self.pending.take() else {
            return Err(DeltaError::Contradiction(a.id));
        };
        let range = |_| DeltaError::Range(id);
        if head & POS_SMALL != 0 && head & POS_WIDE != 0 {
            return Err(DeltaError::Contradiction(id));
        }
        let (mut rx, mut ry) = (0, 0);
        if head & POS_SMALL != 0 {
            let b = r.u8()?;
            rx = i64::from(b & 0x0f) - 8;
            ry = i64::from(b >> 4) - 8;
        }
        if head & POS_WIDE != 0 {
            rx = r.svarint()?;
            ry = r.svarint()?;
        }
        let mut b = *a;
        if head & VEL != 0 {
            let dvx = r.svarint()?;
            let dvy = r.svarint()?;
            b.vx = i16::try_from(i64::from(a.vx).saturating_add(dvx)).map_err(range)?;
            b.vy = i16::try_from(i64::from(a.vy).saturating_add(dvy)).map_err(range)?;
        }
        if head & ANGLE != 0 {
            let d = i16::try_from(r.svarint()?).map_err(range)?;
            b.angle = a.angle.wrapping_add(d as u16);
        }
        if head & STATUS != 0 {
            b.hp = r.u8()?;
            b.flags = r.u8()?;
            b.var = r.u8()?;
        }
        if head & META != 0 {
            b.owner = u16::try_from(r.uvarint()?).map_err(range)?;
            b.score = u16::try_from(r.uvarint()?).map_err(range)?;
        }
        b.x = i32::try_from(predict(a.x, a.vx, b.vx, k).saturating_add(rx)).map_err(range)?;
        b.y = i32::try_from(predict(a.y, a.vy, b.vy, k).saturating_add(ry)).map_err(range)?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests;
