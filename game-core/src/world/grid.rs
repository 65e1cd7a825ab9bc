//! A uniform grid, rebuilt every tick, for finding what is near a point without O(n²) pairs.
//!
//! Each collidable body (ships, asteroids, pickups) is filed once, by its centre, into one
//! square cell; a query for a box widens the box by the largest filed radius, so it still finds
//! bodies whose centre lies in a neighbouring cell. The build is a counting sort of body
//! indices into one flat array (one pass to count, a prefix sum, one pass to scatter), so there
//! is no allocation per cell, the sort moves 4-byte indices rather than bodies, and a query
//! walks one contiguous run of indices per row of cells. Filing order is kept within a cell, so
//! queries are deterministic.

use glam::Vec2;

use super::EntityKey;

/// What a filed body is, for the queries that only want some kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Ship,
    Asteroid,
    Pickup,
}

/// A body as filed: where it was when the grid was built.
#[derive(Clone, Copy, Debug)]
pub(super) struct Item {
    pub pos: Vec2,
    pub radius: f32,
    pub key: EntityKey,
    pub class: Class,
}

/// Most cells a grid may have; bigger arenas get bigger cells.
const MAX_CELLS: usize = 1 << 20;

/// The grid. Built with [`Grid::clear`], [`Grid::push`]…, [`Grid::finish`].
#[derive(Clone)]
pub(super) struct Grid {
    inv_cell: f32,
    cols: usize,
    rows: usize,
    /// Items of cell `c` are `items[order[i]]` for `i` in `starts[c]..starts[c + 1]`.
    starts: Vec<u32>,
    /// Indices into `items`, sorted by cell.
    order: Vec<u32>,
    /// Items as pushed.
    items: Vec<Item>,
    /// The cell of each item.
    cells: Vec<u32>,
    max_radius: f32,
}

impl Grid {
    /// A grid over `0..width × 0..height` with cells of about `cell` units.
    pub(super) fn new(width: f32, height: f32, cell: f32) -> Self {
        let mut cell = cell.max(1.0);
        let dims = |cell: f32| {
            let cols = (width / cell).ceil().max(1.0) as usize;
            let rows = (height / cell).ceil().max(1.0) as usize;
            (cols, rows)
        };
        let (mut cols, mut rows) = dims(cell);
        while cols.saturating_mul(rows) > MAX_CELLS {
            cell *= 2.0;
            (cols, rows) = dims(cell);
        }
        Self {
            inv_cell: 1.0 / cell,
            cols,
            rows,
            starts: vec![0; cols * rows + 1],
            order: Vec::new(),
            items: Vec::new(),
            cells: Vec::new(),
            max_radius: 0.0,
        }
    }

    /// Forgets every item (queries find nothing until the next [`Grid::finish`]).
    pub(super) fn clear(&mut self) {
        self.items.clear();
        self.cells.clear();
        self.order.clear();
        self.max_radius = 0.0;
    }

    /// Files an item (visible to queries after [`Grid::finish`]).
    pub(super) fn push(&mut self, item: Item) {
        let (cx, cy) = self.cell_of(item.pos);
        self.max_radius = self.max_radius.max(item.radius);
        self.cells.push((cy * self.cols + cx) as u32);
        self.items.push(item);
    }

    /// Sorts the filed items into their cells.
    pub(super) fn finish(&mut self) {
        let cells = self.cols * self.rows;
        self.starts.fill(0);
        for &c in &self.cells {
            self.starts[c as usize + 1] += 1;
        }
        for c in 0..cells {
            self.starts[c + 1] += self.starts[c];
        }
        // Scatter with `starts[c]` as cell c's cursor; afterwards each holds the next cell's
        // start, so shift them back by one.
        self.order.clear();
        self.order.resize(self.items.len(), 0);
        for (i, &c) in self.cells.iter().enumerate() {
            let cursor = &mut self.starts[c as usize];
            self.order[*cursor as usize] = i as u32;
            *cursor += 1;
        }
        self.starts.copy_within(0..cells, 1);
        self.starts[0] = 0;
    }

    fn cell_of(&self, p: Vec2) -> (usize, usize) {
        // `as` saturates (NaN → 0), so a stray value lands in an edge cell, never out of range.
        let cx = ((p.x * self.inv_cell) as usize).min(self.cols - 1);
        let cy = ((p.y * self.inv_cell) as usize).min(self.rows - 1);
        (cx, cy)
    }

    /// Every item whose body may touch the box `min..max` (centres within the box widened by
    /// the largest radius). The caller does the exact test.
    pub(super) fn query(&self, min: Vec2, max: Vec2) -> impl Iterator<Item = &Item> + '_ {
        let pad = Vec2::splat(self.max_radius);
        let (x0, y0) = self.cell_of(min - pad);
        let (x1, y1) = self.cell_of(max + pad);
        (y0..=y1).flat_map(move |y| {
            let lo = self.starts[y * self.cols + x0] as usize;
            let hi = self.starts[y * self.cols + x1 + 1] as usize;
            // `get`s: between `clear` and `finish` the tables disagree; find nothing then.
            let run = self.order.get(lo..hi).unwrap_or(&[]);
            run.iter().filter_map(|&i| self.items.get(i as usize))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use slotmap::SlotMap;

    #[test]
    fn query_finds_exactly_what_brute_force_finds() {
        let mut keys: SlotMap<EntityKey, ()> = SlotMap::with_key();
        let mut rng = Rng::new(3);
        let mut grid = Grid::new(1000.0, 600.0, 64.0);
        for round in 0..3 {
            grid.clear();
            let mut all = Vec::new();
            for _ in 0..500 + round * 100 {
                let item = Item {
                    pos: Vec2::new(rng.range_f32(0.0, 1000.0), rng.range_f32(0.0, 600.0)),
                    radius: rng.range_f32(1.0, 30.0),
                    key: keys.insert(()),
                    class: Class::Asteroid,
                };
                grid.push(item);
                all.push(item);
            }
            grid.finish();
            for _ in 0..200 {
                let c = Vec2::new(rng.range_f32(-50.0, 1050.0), rng.range_f32(-50.0, 650.0));
                let r = rng.range_f32(0.0, 120.0);
                let mut found: Vec<EntityKey> = grid
                    .query(c - r, c + r)
                    .filter(|i| i.pos.distance(c) < r + i.radius)
                    .map(|i| i.key)
                    .collect();
                let mut want: Vec<EntityKey> = all
                    .iter()
                    .filter(|i| i.pos.distance(c) < r + i.radius)
                    .map(|i| i.key)
                    .collect();
                found.sort();
                want.sort();
                assert_eq!(found, want);
            }
        }
    }

    #[test]
    fn huge_arenas_get_coarser_cells_and_stray_points_are_safe() {
        let mut grid = Grid::new(1e6, 1e6, 10.0);
        assert!(grid.cols * grid.rows <= MAX_CELLS);
        let mut keys: SlotMap<EntityKey, ()> = SlotMap::with_key();
        for p in [Vec2::new(-5.0, 2e6), Vec2::NAN, Vec2::new(5e5, 5e5)] {
            grid.push(Item {
                pos: p,
                radius: 1.0,
                key: keys.insert(()),
                class: Class::Ship,
            });
        }
        grid.finish();
        assert_eq!(grid.query(Vec2::ZERO, Vec2::splat(1e6)).count(), 3);
    }
}
