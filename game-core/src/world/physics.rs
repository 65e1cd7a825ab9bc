//! Geometry of the simulation: wall bounces, pushing circles apart, swept bullet hits.
//!
//! Pure functions on `glam::Vec2`, so the rules in the parent module read as game logic and
//! the numeric care (no division by zero, no NaN) lives in one place.

use glam::Vec2;

/// Keeps a circle of radius `r` inside `0..w × 0..h`: a circle past a wall is put back and the
/// velocity into that wall is reflected, keeping the fraction `bounce` of it. Returns whether
/// a wall was hit.
pub(super) fn bounce_walls(
    pos: &mut Vec2,
    vel: &mut Vec2,
    r: f32,
    w: f32,
    h: f32,
    bounce: f32,
) -> bool {
    let mut hit = false;
    if pos.x < r {
        pos.x = r;
        vel.x = vel.x.max(-vel.x * bounce);
        hit = true;
    } else if pos.x > w - r {
        pos.x = w - r;
        vel.x = vel.x.min(-vel.x * bounce);
        hit = true;
    }
    if pos.y < r {
        pos.y = r;
        vel.y = vel.y.max(-vel.y * bounce);
        hit = true;
    } else if pos.y > h - r {
        pos.y = h - r;
        vel.y = vel.y.min(-vel.y * bounce);
        hit = true;
    }
    hit
}

/// Whether two circles overlap.
pub(super) fn overlaps(a: Vec2, ra: f32, b: Vec2, rb: f32) -> bool {
    let reach = ra + rb;
    a.distance_squared(b) < reach * reach
}

/// If a moving circle (`pos`, `vel`, radius `r`) overlaps a fixed-or-heavy circle (`centre`,
/// radius `cr`, moving at `other_vel`), pushes it out along the line between centres and
/// reflects its velocity relative to the other, keeping the fraction `bounce` of the closing
/// speed. Returns whether they touched.
pub(super) fn push_out(
    pos: &mut Vec2,
    vel: &mut Vec2,
    r: f32,
    centre: Vec2,
    cr: f32,
    other_vel: Vec2,
    bounce: f32,
) -> bool {
    let d = *pos - centre;
    let reach = r + cr;
    let dist2 = d.length_squared();
    if dist2 >= reach * reach {
        return false;
    }
    let dist = dist2.sqrt();
    // Dead centre: any direction will do, so pick one that is the same every time.
    let n = if dist > 1e-4 { d / dist } else { Vec2::X };
    *pos = centre + n * reach;
    let closing = (*vel - other_vel).dot(n);
    if closing < 0.0 {
        *vel -= n * (closing * (1.0 + bounce));
    }
    true
}

/// Where along the segment `a → b` (as a fraction `0..=1`) a point comes closest to `c`, if it
/// comes within `r` of it: a swept test, so fast bullets cannot jump over small targets.
pub(super) fn segment_hits_circle(a: Vec2, b: Vec2, c: Vec2, r: f32) -> Option<f32> {
    let ab = b - a;
    let len2 = ab.length_squared();
    let t = if len2 > 0.0 {
        ((c - a).dot(ab) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let closest = a + ab * t;
    (closest.distance_squared(c) <= r * r).then_some(t)
}

/// Whether a point is inside `0..w × 0..h`.
pub(super) fn inside(p: Vec2, w: f32, h: f32) -> bool {
    p.x >= 0.0 && p.y >= 0.0 && p.x <= w && p.y <= h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walls_reflect_and_clamp() {
        let mut p = Vec2::new(-3.0, 50.0);
        let mut v = Vec2::new(-10.0, 2.0);
        assert!(bounce_walls(&mut p, &mut v, 5.0, 100.0, 100.0, 0.5));
        assert_eq!(p, Vec2::new(5.0, 50.0));
        assert_eq!(v, Vec2::new(5.0, 2.0));
        let mut p = Vec2::new(99.0, 120.0);
        let mut v = Vec2::new(1.0, 7.0);
        assert!(bounce_walls(&mut p, &mut v, 5.0, 100.0, 100.0, 1.0));
        assert_eq!(p, Vec2::new(95.0, 95.0));
        assert_eq!(v, Vec2::new(-1.0, -7.0));
        let mut p = Vec2::new(50.0, 50.0);
        assert!(!bounce_walls(&mut p, &mut v, 5.0, 100.0, 100.0, 1.0));
    }

    #[test]
    fn push_out_separates_and_reflects_only_closing_motion() {
        let mut p = Vec2::new(8.0, 0.0);
        let mut v = Vec2::new(-4.0, 1.0);
        assert!(push_out(
            &mut p,
            &mut v,
            5.0,
            Vec2::ZERO,
            5.0,
            Vec2::ZERO,
            1.0
        ));
        assert_eq!(p, Vec2::new(10.0, 0.0));
        assert_eq!(v, Vec2::new(4.0, 1.0));
        // Already moving away: pushed out, velocity untouched.
        let mut p = Vec2::new(8.0, 0.0);
        let mut v = Vec2::new(3.0, 0.0);
        assert!(push_out(
            &mut p,
            &mut v,
            5.0,
            Vec2::ZERO,
            5.0,
            Vec2::ZERO,
            1.0
        ));
        assert_eq!(v, Vec2::new(3.0, 0.0));
        // Dead centre does not make NaN.
        let mut p = Vec2::ZERO;
        let mut v = Vec2::ZERO;
        assert!(push_out(
            &mut p,
            &mut v,
            1.0,
            Vec2::ZERO,
            1.0,
            Vec2::ZERO,
            0.5
        ));
        assert!(p.is_finite() && v.is_finite());
        assert!(!push_out(
            &mut p,
            &mut v,
            1.0,
            Vec2::new(50.0, 0.0),
            1.0,
            Vec2::ZERO,
            0.5
        ));
    }

    #[test]
    fn swept_hits() {
        let a = Vec2::new(0.0, 0.0);
        let b = Vec2::new(100.0, 0.0);
        assert_eq!(
            segment_hits_circle(a, b, Vec2::new(50.0, 3.0), 4.0),
            Some(0.5)
        );
        assert_eq!(segment_hits_circle(a, b, Vec2::new(50.0, 5.0), 4.0), None);
        assert_eq!(
            segment_hits_circle(a, b, Vec2::new(-3.0, 0.0), 4.0),
            Some(0.0)
        );
        assert_eq!(
            segment_hits_circle(a, a, Vec2::new(1.0, 1.0), 4.0),
            Some(0.0)
        );
        assert!(inside(Vec2::new(0.0, 10.0), 10.0, 10.0));
        assert!(!inside(Vec2::new(-0.1, 5.0), 10.0, 10.0));
        assert!(!inside(Vec2::NAN, 10.0, 10.0));
    }
}
