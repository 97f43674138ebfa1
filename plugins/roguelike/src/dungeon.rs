//! The dungeon: a grid of walls and floor, made from the session's seed
//! (rooms joined by corridors, stairs down in the last room), and what can
//! be seen from a cell.

use hoard_sdk::Rng;
use serde::{Deserialize, Serialize};

pub const WIDTH: u16 = 48;
pub const HEIGHT: u16 = 20;
/// How far a character sees, in cells (a circle).
pub const SIGHT: u16 = 6;

pub const WALL: u8 = b'#';
pub const FLOOR: u8 = b'.';
pub const STAIRS: u8 = b'>';

/// A cell: column `x`, row `y`, from the top left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pos {
    pub x: u16,
    pub y: u16,
}

impl Pos {
    pub fn new(x: u16, y: u16) -> Pos {
        Pos { x, y }
    }

    /// Moves needed between two cells (diagonal steps allowed).
    pub fn distance(self, other: Pos) -> u16 {
        self.x.abs_diff(other.x).max(self.y.abs_diff(other.y))
    }

    /// Whether `other` is inside this cell's circle of sight.
    pub fn in_sight(self, other: Pos) -> bool {
        let dx = u32::from(self.x.abs_diff(other.x));
        let dy = u32::from(self.y.abs_diff(other.y));
        let r = u32::from(SIGHT);
        dx * dx + dy * dy <= r * r + r
    }

    /// The neighbour in `dir`, if on the map.
    pub fn step(self, dir: Dir) -> Option<Pos> {
        let (dx, dy) = dir.delta();
        let x = self.x.checked_add_signed(dx)?;
        let y = self.y.checked_add_signed(dy)?;
        (x < WIDTH && y < HEIGHT).then_some(Pos { x, y })
    }

    fn index(self) -> usize {
        usize::from(self.y) * usize::from(WIDTH) + usize::from(self.x)
    }
}

/// The eight directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    N,
    Ne,
    E,
    Se,
    S,
    Sw,
    W,
    Nw,
}

impl Dir {
    pub const ALL: [Dir; 8] = [
        Dir::N,
        Dir::Ne,
        Dir::E,
        Dir::Se,
        Dir::S,
        Dir::Sw,
        Dir::W,
        Dir::Nw,
    ];

    pub fn delta(self) -> (i16, i16) {
        match self {
            Dir::N => (0, -1),
            Dir::Ne => (1, -1),
            Dir::E => (1, 0),
            Dir::Se => (1, 1),
            Dir::S => (0, 1),
            Dir::Sw => (-1, 1),
            Dir::W => (-1, 0),
            Dir::Nw => (-1, -1),
        }
    }
}

/// One bit per cell of the map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cells(Vec<u64>);

impl Default for Cells {
    fn default() -> Self {
        Cells(vec![
            0;
            (usize::from(WIDTH) * usize::from(HEIGHT)).div_ceil(64)
        ])
    }
}

impl Cells {
    pub fn has(&self, pos: Pos) -> bool {
        let i = pos.index();
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn add(&mut self, pos: Pos) {
        let i = pos.index();
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub fn union(&mut self, other: &Cells) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine |= theirs;
        }
    }
}

/// A rectangle of floor: a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
}

impl Room {
    pub fn center(&self) -> Pos {
        Pos::new(self.x + self.w / 2, self.y + self.h / 2)
    }

    /// Its cells, row by row.
    pub fn cells(&self) -> impl Iterator<Item = Pos> + '_ {
        (self.y..self.y + self.h)
            .flat_map(move |y| (self.x..self.x + self.w).map(move |x| Pos::new(x, y)))
    }

    /// Whether the two rooms touch or overlap, walls included.
    fn touches(&self, other: &Room) -> bool {
        self.x <= other.x + other.w
            && other.x <= self.x + self.w
            && self.y <= other.y + other.h
            && other.y <= self.y + self.h
    }
}

/// One depth of the dungeon: its cells and its rooms (the first is where
/// the party arrives; the last holds the stairs down).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// `WIDTH * HEIGHT` cells, row by row: [`WALL`], [`FLOOR`], [`STAIRS`].
    tiles: String,
    pub rooms: Vec<Room>,
}

const ROOMS_MAX: usize = 7;

impl Level {
    /// Depth `depth` of the dungeon of `seed`: the same every time.
    pub fn generate(seed: u64, depth: u8) -> Level {
        let mut rng = Rng::seeded(seed, 1 << 40 | u64::from(depth));
        let mut tiles = vec![WALL; usize::from(WIDTH) * usize::from(HEIGHT)];
        let mut rooms: Vec<Room> = Vec::new();
        let mut tries = 0;
        while rooms.len() < ROOMS_MAX && (tries < 60 || rooms.len() < 2) {
            tries += 1;
            let w = 4 + rng.below(7) as u16;
            let h = 3 + rng.below(3) as u16;
            let room = Room {
                x: 1 + rng.below(u64::from(WIDTH - w - 1)) as u16,
                y: 1 + rng.below(u64::from(HEIGHT - h - 1)) as u16,
                w,
                h,
            };
            if rooms.iter().all(|other| !room.touches(other)) {
                rooms.push(room);
            }
        }
        let mut dig = |pos: Pos| tiles[pos.index()] = FLOOR;
        for room in &rooms {
            room.cells().for_each(&mut dig);
        }
        for pair in rooms.windows(2) {
            let (a, b) = (pair[0].center(), pair[1].center());
            let corner = if rng.below(2) == 0 {
                Pos::new(b.x, a.y)
            } else {
                Pos::new(a.x, b.y)
            };
            for (from, to) in [(a, corner), (corner, b)] {
                for x in from.x.min(to.x)..=from.x.max(to.x) {
                    for y in from.y.min(to.y)..=from.y.max(to.y) {
                        dig(Pos::new(x, y));
                    }
                }
            }
        }
        let stairs = rooms.last().expect("two rooms at least").center();
        tiles[stairs.index()] = STAIRS;
        Level {
            tiles: String::from_utf8(tiles).expect("ASCII"),
            rooms,
        }
    }

    pub fn tile(&self, pos: Pos) -> u8 {
        self.tiles.as_bytes()[pos.index()]
    }

    pub fn passable(&self, pos: Pos) -> bool {
        self.tile(pos) != WALL
    }

    /// The cells strictly between `from` and `to` on a straight line
    /// (Bresenham's): none when they are the same cell or neighbours.
    pub fn between(from: Pos, to: Pos) -> impl Iterator<Item = Pos> {
        let steps = usize::from(from.distance(to)).saturating_sub(1);
        let (x1, y1) = (i32::from(to.x), i32::from(to.y));
        let (dx, dy) = (
            (x1 - i32::from(from.x)).abs(),
            -(y1 - i32::from(from.y)).abs(),
        );
        let (sx, sy) = (
            if from.x < to.x { 1 } else { -1 },
            if from.y < to.y { 1 } else { -1 },
        );
        let (mut x, mut y, mut err) = (i32::from(from.x), i32::from(from.y), dx + dy);
        std::iter::from_fn(move || {
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
            (x != x1 || y != y1).then(|| Pos::new(x as u16, y as u16))
        })
        .take(steps)
    }

    /// Whether nothing but floor lies between the two cells.
    pub fn clear_line(&self, from: Pos, to: Pos) -> bool {
        from == to || Level::between(from, to).all(|cell| self.passable(cell))
    }

    /// The cells seen from `from`: those in sight with a clear line to
    /// them, and the cells along that line (walls are seen, not seen
    /// through). So whatever stands between a hero and a cell they see is
    /// seen too.
    pub fn sight(&self, from: Pos) -> Cells {
        let mut seen = Cells::default();
        seen.add(from);
        let r = SIGHT;
        for y in from.y.saturating_sub(r)..(from.y + r + 1).min(HEIGHT) {
            for x in from.x.saturating_sub(r)..(from.x + r + 1).min(WIDTH) {
                let cell = Pos::new(x, y);
                if from.in_sight(cell) && self.clear_line(from, cell) {
                    seen.add(cell);
                    Level::between(from, cell).for_each(|c| seen.add(c));
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every floor cell is reachable from the first room.
    fn connected(level: &Level) -> bool {
        let start = level.rooms[0].center();
        let mut reached = Cells::default();
        reached.add(start);
        let mut todo = vec![start];
        while let Some(cell) = todo.pop() {
            for next in Dir::ALL.iter().filter_map(|d| cell.step(*d)) {
                if level.passable(next) && !reached.has(next) {
                    reached.add(next);
                    todo.push(next);
                }
            }
        }
        (0..HEIGHT)
            .flat_map(|y| (0..WIDTH).map(move |x| Pos::new(x, y)))
            .all(|cell| !level.passable(cell) || reached.has(cell))
    }

    #[test]
    fn levels_are_seeded_walled_and_connected() {
        for seed in 0..300 {
            let level = Level::generate(seed, 1 + (seed % 5) as u8);
            assert_eq!(level, Level::generate(seed, 1 + (seed % 5) as u8));
            assert!(level.rooms.len() >= 2);
            assert!(connected(&level), "seed {seed}");
            for x in 0..WIDTH {
                assert_eq!(level.tile(Pos::new(x, 0)), WALL);
                assert_eq!(level.tile(Pos::new(x, HEIGHT - 1)), WALL);
            }
            for y in 0..HEIGHT {
                assert_eq!(level.tile(Pos::new(0, y)), WALL);
                assert_eq!(level.tile(Pos::new(WIDTH - 1, y)), WALL);
            }
            let stairs = level.tiles.bytes().filter(|t| *t == STAIRS).count();
            assert_eq!(stairs, 1);
        }
        assert_ne!(Level::generate(1, 1), Level::generate(2, 1));
        assert_ne!(Level::generate(1, 1), Level::generate(1, 2));
    }

    #[test]
    fn lines_step_one_cell_at_a_time() {
        let from = Pos::new(3, 4);
        for to in [
            Pos::new(9, 6),
            Pos::new(3, 10),
            Pos::new(0, 0),
            Pos::new(4, 5),
        ] {
            let mut at = from;
            for cell in Level::between(from, to) {
                assert_eq!(at.distance(cell), 1);
                at = cell;
            }
            assert_eq!(at.distance(to), u16::from(at != to));
        }
    }

    #[test]
    fn a_line_from_a_cell_to_itself_or_a_neighbour_is_empty() {
        let at = Pos::new(5, 5);
        assert_eq!(Level::between(at, at).count(), 0);
        for dir in Dir::ALL {
            assert_eq!(Level::between(at, at.step(dir).unwrap()).count(), 0);
        }
        assert_eq!(Level::between(at, Pos::new(5, 0)).count(), 4);
        assert_eq!(Level::between(Pos::new(0, 0), Pos::new(6, 5)).count(), 5);
    }

    #[test]
    fn sight_stops_at_walls() {
        let level = Level::generate(7, 1);
        let room = level.rooms[0];
        let seen = level.sight(room.center());
        for cell in room.cells() {
            if room.center().in_sight(cell) {
                assert!(seen.has(cell), "{cell:?} in the same room");
            }
        }
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let cell = Pos::new(x, y);
                if seen.has(cell) {
                    assert!(room.center().in_sight(cell));
                }
                if seen.has(cell) && level.clear_line(room.center(), cell) {
                    let mut between = Level::between(room.center(), cell);
                    assert!(between.all(|c| seen.has(c)), "what stands between is seen");
                }
            }
        }
    }
}
