//! The arena: the map (size, round obstacles) and the rules of the game, parsed from TOML.
//!
//! The standard arena lives in `assets/arena.toml` and is compiled in ([`Arena::standard`]);
//! other maps are parsed from text with [`Arena::from_toml`], which validates everything the
//! simulation relies on (finite, positive, bounded), so a [`crate::world::World`] never has to
//! second-guess its rules. All fields are public so tests and benchmarks can make variants
//! (more asteroids, a bigger field) from the standard one.
//!
//! Rules are in seconds and units per second; the world converts them to ticks once, at its
//! tick rate. Clients only need the geometry: [`Arena::info`] gives them a
//! [`protocol::ArenaInfo`](crate::protocol::ArenaInfo).

use serde::Deserialize;

use crate::protocol::ArenaInfo;

/// The standard arena's TOML text, embedded at compile time.
pub const STANDARD_TOML: &str = include_str!("../../assets/arena.toml");

/// Largest arena side, in world units (keeps quantized positions far from `i32` limits).
pub const MAX_SIDE: f32 = 1_000_000.0;
/// Most asteroids an arena may ask for.
pub const MAX_ASTEROIDS: u32 = 20_000;
/// Most pickups an arena may ask for.
pub const MAX_PICKUPS: u32 = 1_000;
/// Most ships an arena may allow.
pub const MAX_SHIPS: u32 = 1_000;
/// Most obstacles an arena may have.
pub const MAX_OBSTACLES: usize = 1_000;
/// Most asteroid size tiers.
pub const MAX_TIERS: usize = 4;
/// Most pieces an asteroid may break into.
pub const MAX_SPLITS: u8 = 4;

/// A map and its rules. See `assets/arena.toml` for what every field means.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arena {
    /// Width in world units; the arena spans `0..width`.
    pub width: f32,
    /// Height in world units; the arena spans `0..height`.
    pub height: f32,
    /// Static round obstacles.
    #[serde(default)]
    pub obstacles: Vec<Obstacle>,
    /// The rules of play.
    pub rules: Rules,
}

/// A static round obstacle.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obstacle {
    /// Centre, x.
    pub x: f32,
    /// Centre, y.
    pub y: f32,
    /// Radius.
    pub radius: f32,
}

/// Every tunable of the game, in seconds and units per second.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Most ships (players and AI) at once.
    pub max_ships: u32,
    /// Score for a kill.
    pub kill_score: u16,
    /// Seconds within which the last attacker of a dying ship gets the kill.
    pub kill_credit_time: f32,
    /// Ship movement, health and respawning.
    pub ship: ShipRules,
    /// Boost.
    pub boost: BoostRules,
    /// The gun and its bullets.
    pub gun: GunRules,
    /// The asteroid field.
    pub asteroids: AsteroidRules,
    /// Pickups.
    pub pickups: PickupRules,
}

/// How ships fly, take damage and come back.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipRules {
    /// Collision radius.
    pub radius: f32,
    /// Top speed without boost, units per second.
    pub max_speed: f32,
    /// Forward acceleration at full thrust, units per second².
    pub thrust: f32,
    /// Reverse thrust as a fraction of forward thrust, `0..=1`.
    pub reverse_power: f32,
    /// Turn rate at full stick, degrees per second.
    pub turn_rate: f32,
    /// Drag per second: coasting speed decays as `e^(-drag·t)`.
    pub drag: f32,
    /// Fraction of speed kept in a bounce, `0..=1`.
    pub bounce: f32,
    /// Health of a fresh ship, `1..=255`.
    pub health: u8,
    /// Seconds from death to respawn.
    pub respawn_delay: f32,
    /// Seconds of shield after (re)spawning.
    pub spawn_shield: f32,
    /// Seconds after an asteroid hit during which asteroids do no further damage.
    pub contact_grace: f32,
}

/// Boost: faster, at the cost of energy.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoostRules {
    /// Multiplier on forward thrust and the speed cap while boosting.
    pub multiplier: f32,
    /// Energy of a full tank.
    pub energy: f32,
    /// Energy used per second of boosting.
    pub drain: f32,
    /// Energy regained per second when not boosting.
    pub recharge: f32,
    /// Energy needed to start a boost (a boost in progress runs until the tank is empty).
    pub min_to_start: f32,
}

/// The gun.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GunRules {
    /// Seconds between shots.
    pub cooldown: f32,
    /// Muzzle speed, units per second (added to the ship's velocity).
    pub bullet_speed: f32,
    /// Seconds a bullet lives.
    pub bullet_lifetime: f32,
    /// Damage per hit, `1..=255`.
    pub bullet_damage: u8,
    /// Bullet collision radius.
    pub bullet_radius: f32,
}

/// The asteroid field.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsteroidRules {
    /// The field never has fewer asteroids than this (`0..=20000`).
    pub count: u32,
    /// Size tiers, biggest first; new asteroids are tier 0.
    pub tiers: Vec<AsteroidTier>,
}

/// One asteroid size.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsteroidTier {
    /// Collision radius.
    pub radius: f32,
    /// Health, `1..=255`.
    pub hp: u8,
    /// Slowest drift speed, units per second.
    pub speed_min: f32,
    /// Fastest drift speed, units per second.
    pub speed_max: f32,
    /// Pieces of the next tier it breaks into (0 for the last tier).
    pub splits: u8,
    /// Damage to a ship that touches it.
    pub contact_damage: u8,
}

/// Pickups: health, energy, shield.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickupRules {
    /// Pickups on the field at once (`0..=1000`).
    pub count: u32,
    /// Collision radius.
    pub radius: f32,
    /// Seconds before a taken pickup is replaced elsewhere.
    pub respawn_delay: f32,
    /// Health restored.
    pub health: u8,
    /// Boost energy restored.
    pub energy: f32,
    /// Seconds of shield given.
    pub shield_time: f32,
}

/// Why an arena description was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArenaError {
    /// Not TOML, or not the shape of an arena (a missing or unknown key, a wrong type).
    #[error("arena TOML: {0}")]
    Parse(#[from] toml::de::Error),
    /// A number outside its allowed range (or NaN / infinite).
    #[error("{field} = {value} is out of range: {expected}")]
    OutOfRange {
        /// Dotted path of the key, e.g. `rules.ship.radius`.
        field: String,
        /// The value given.
        value: f64,
        /// What is allowed.
        expected: &'static str,
    },
    /// An obstacle that does not fit entirely inside the arena.
    #[error("obstacle {index} at ({x}, {y}) with radius {radius} is not inside the arena")]
    ObstacleOutside {
        /// Index in `obstacles`.
        index: usize,
        /// Centre, x.
        x: f32,
        /// Centre, y.
        y: f32,
        /// Radius.
        radius: f32,
    },
    /// Something that does not fit with the rest (the arena is too small for a ship, …).
    #[error("{0}")]
    Inconsistent(&'static str),
}

impl Arena {
    /// Parses and validates an arena from TOML text (the shape of `assets/arena.toml`).
    pub fn from_toml(text: &str) -> Result<Arena, ArenaError> {
        let arena: Arena = toml::from_str(text)?;
        arena.validate()?;
        Ok(arena)
    }

    /// The standard arena, `assets/arena.toml`, compiled in.
    pub fn standard() -> Arena {
        // The text is a compile-time constant and a unit test parses it, so this cannot fail
        // at run time unless the asset was broken and that test ignored.
        match Self::from_toml(STANDARD_TOML) {
            Ok(arena) => arena,
            Err(e) => panic!("assets/arena.toml is invalid: {e}"),
        }
    }

    /// What a client needs to draw the arena (rounded to whole units).
    pub fn info(&self) -> ArenaInfo {
        ArenaInfo {
            width: self.width.round() as u32,
            height: self.height.round() as u32,
            obstacles: self
                .obstacles
                .iter()
                .map(|o| {
                    (
                        o.x.round() as i32,
                        o.y.round() as i32,
                        o.radius.round() as u32,
                    )
                })
                .collect(),
        }
    }

    /// Checks every value the simulation relies on. [`Arena::from_toml`] calls it; call it
    /// again after editing fields by hand.
    pub fn validate(&self) -> Result<(), ArenaError> {
        let mut c = Checker::default();
        c.range("width", self.width, 1.0, MAX_SIDE);
        c.range("height", self.height, 1.0, MAX_SIDE);
        c.count(
            "obstacles",
            self.obstacles.len() as u64,
            MAX_OBSTACLES as u64,
        );
        for (i, o) in self.obstacles.iter().enumerate() {
            c.range(&format!("obstacles[{i}].x"), o.x, 0.0, MAX_SIDE);
            c.range(&format!("obstacles[{i}].y"), o.y, 0.0, MAX_SIDE);
            c.positive(&format!("obstacles[{i}].radius"), o.radius, MAX_SIDE);
        }
        c.result()?;
        for (index, o) in self.obstacles.iter().enumerate() {
            let inside = o.x - o.radius >= 0.0
                && o.y - o.radius >= 0.0
                && o.x + o.radius <= self.width
                && o.y + o.radius <= self.height;
            if !inside {
                return Err(ArenaError::ObstacleOutside {
                    index,
                    x: o.x,
                    y: o.y,
                    radius: o.radius,
                });
            }
        }
        self.rules.check(&mut c);
        c.result()?;
        self.check_fit()
    }

    /// Cross-field checks: every body must fit in the arena with room to move.
    fn check_fit(&self) -> Result<(), ArenaError> {
        let side = self.width.min(self.height);
        let r = &self.rules;
        let biggest = r
            .asteroids
            .tiers
            .iter()
            .map(|t| t.radius)
            .fold(r.ship.radius, f32::max);
        let biggest = biggest.max(r.pickups.radius).max(r.gun.bullet_radius);
        if biggest * 4.0 > side {
            return Err(ArenaError::Inconsistent(
                "the arena must be at least four times as wide and high as its biggest body",
            ));
        }
        if let Some(last) = r.asteroids.tiers.last()
            && last.splits != 0
        {
            return Err(ArenaError::Inconsistent(
                "the last asteroid tier must have splits = 0",
            ));
        }
        Ok(())
    }
}

impl Rules {
    fn check(&self, c: &mut Checker) {
        c.count(
            "rules.max_ships",
            u64::from(self.max_ships),
            u64::from(MAX_SHIPS),
        );
        c.at_least_one("rules.max_ships", u64::from(self.max_ships));
        c.range("rules.kill_credit_time", self.kill_credit_time, 0.0, 3600.0);

        let s = &self.ship;
        c.positive("rules.ship.radius", s.radius, MAX_SIDE);
        c.positive("rules.ship.max_speed", s.max_speed, 1e5);
        c.positive("rules.ship.thrust", s.thrust, 1e6);
        c.range("rules.ship.reverse_power", s.reverse_power, 0.0, 1.0);
        c.positive("rules.ship.turn_rate", s.turn_rate, 1e5);
        c.range("rules.ship.drag", s.drag, 0.0, 100.0);
        c.range("rules.ship.bounce", s.bounce, 0.0, 1.0);
        c.at_least_one("rules.ship.health", u64::from(s.health));
        c.range("rules.ship.respawn_delay", s.respawn_delay, 0.0, 3600.0);
        c.range("rules.ship.spawn_shield", s.spawn_shield, 0.0, 3600.0);
        c.range("rules.ship.contact_grace", s.contact_grace, 0.0, 3600.0);

        let b = &self.boost;
        c.range("rules.boost.multiplier", b.multiplier, 1.0, 100.0);
        c.positive("rules.boost.energy", b.energy, 1e9);
        c.range("rules.boost.drain", b.drain, 0.0, 1e9);
        c.range("rules.boost.recharge", b.recharge, 0.0, 1e9);
        c.range("rules.boost.min_to_start", b.min_to_start, 0.0, b.energy);

        let g = &self.gun;
        c.positive("rules.gun.cooldown", g.cooldown, 3600.0);
        c.positive("rules.gun.bullet_speed", g.bullet_speed, 1e6);
        c.positive("rules.gun.bullet_lifetime", g.bullet_lifetime, 3600.0);
        c.at_least_one("rules.gun.bullet_damage", u64::from(g.bullet_damage));
        c.positive("rules.gun.bullet_radius", g.bullet_radius, MAX_SIDE);

        let a = &self.asteroids;
        c.count(
            "rules.asteroids.count",
            u64::from(a.count),
            u64::from(MAX_ASTEROIDS),
        );
        c.count(
            "rules.asteroids.tiers",
            a.tiers.len() as u64,
            MAX_TIERS as u64,
        );
        c.at_least_one("rules.asteroids.tiers", a.tiers.len() as u64);
        for (i, t) in a.tiers.iter().enumerate() {
            let f = |name: &str| format!("rules.asteroids.tiers[{i}].{name}");
            c.positive(&f("radius"), t.radius, MAX_SIDE);
            c.at_least_one(&f("hp"), u64::from(t.hp));
            c.range(&f("speed_min"), t.speed_min, 0.0, 1e5);
            c.range(&f("speed_max"), t.speed_max, t.speed_min, 1e5);
            c.count(&f("splits"), u64::from(t.splits), u64::from(MAX_SPLITS));
        }

        let p = &self.pickups;
        c.count(
            "rules.pickups.count",
            u64::from(p.count),
            u64::from(MAX_PICKUPS),
        );
        c.positive("rules.pickups.radius", p.radius, MAX_SIDE);
        c.range("rules.pickups.respawn_delay", p.respawn_delay, 0.0, 3600.0);
        c.range("rules.pickups.energy", p.energy, 0.0, 1e9);
        c.range("rules.pickups.shield_time", p.shield_time, 0.0, 3600.0);
    }
}

/// Collects the first range violation, so each check is one line.
#[derive(Default)]
struct Checker {
    first: Option<ArenaError>,
}

impl Checker {
    fn fail(&mut self, field: &str, value: f64, expected: &'static str) {
        if self.first.is_none() {
            self.first = Some(ArenaError::OutOfRange {
                field: field.to_owned(),
                value,
                expected,
            });
        }
    }

    /// `lo <= v <= hi` and finite (NaN fails every comparison).
    fn range(&mut self, field: &str, v: f32, lo: f32, hi: f32) {
        if !(lo..=hi).contains(&v) {
            self.fail(
                field,
                f64::from(v),
                "a finite number within its documented range",
            );
        }
    }

    /// `0 < v <= hi`.
    fn positive(&mut self, field: &str, v: f32, hi: f32) {
        if v.is_nan() || v <= 0.0 || v > hi {
            self.fail(field, f64::from(v), "a finite number greater than 0");
        }
    }

    fn count(&mut self, field: &str, v: u64, max: u64) {
        if v > max {
            self.fail(field, v as f64, "at most its documented limit");
        }
    }

    fn at_least_one(&mut self, field: &str, v: u64) {
        if v == 0 {
            self.fail(field, 0.0, "at least 1");
        }
    }

    fn result(&mut self) -> Result<(), ArenaError> {
        self.first.take().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(from: &str, to: &str) -> String {
        assert!(
            STANDARD_TOML.contains(from),
            "standard arena has no {from:?}"
        );
        STANDARD_TOML.replacen(from, to, 1)
    }

    fn field_of(err: ArenaError) -> String {
        match err {
            ArenaError::OutOfRange { field, .. } => field,
            other => panic!("expected OutOfRange, got {other:?}"),
        }
    }

    #[test]
    fn standard_arena_parses() {
        let a = Arena::from_toml(STANDARD_TOML).expect("standard arena");
        assert_eq!(a, Arena::standard());
        assert!(a.width > 0.0 && a.height > 0.0);
        assert!(!a.obstacles.is_empty());
        assert_eq!(a.rules.asteroids.tiers.len(), 3);
        let info = a.info();
        assert_eq!(info.width, 3000);
        assert_eq!(info.obstacles.len(), a.obstacles.len());
        assert_eq!(info.obstacles[0], (1500, 1000, 140));
    }

    #[test]
    fn syntax_and_shape_errors_are_parse_errors() {
        for text in [
            "width = ",
            "",
            &edit("width = 3000", "width = \"wide\""),
            &edit("width = 3000", "widht = 3000"),
            &edit("health = 100", "health = 300"),
            &edit("kill_score = 1", "kill_score = -1"),
        ] {
            let err = Arena::from_toml(text).expect_err(text);
            assert!(matches!(err, ArenaError::Parse(_)), "{err:?}");
            assert!(err.to_string().starts_with("arena TOML"));
        }
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let cases = [
            (edit("width = 3000", "width = 0"), "width"),
            (edit("height = 2000", "height = -5"), "height"),
            (edit("width = 3000", "width = nan"), "width"),
            (edit("width = 3000", "width = inf"), "width"),
            (edit("radius = 20", "radius = nan"), "rules.ship.radius"),
            (
                edit("max_speed = 420", "max_speed = 0"),
                "rules.ship.max_speed",
            ),
            (edit("bounce = 0.5", "bounce = 1.5"), "rules.ship.bounce"),
            (edit("max_ships = 64", "max_ships = 0"), "rules.max_ships"),
            (
                edit("max_ships = 64", "max_ships = 5000"),
                "rules.max_ships",
            ),
            (edit("count = 30", "count = 20001"), "rules.asteroids.count"),
            (edit("count = 6", "count = 100000"), "rules.pickups.count"),
            (
                edit("cooldown = 0.25", "cooldown = 0"),
                "rules.gun.cooldown",
            ),
            (
                edit("speed_max = 60", "speed_max = 10"),
                "rules.asteroids.tiers[0].speed_max",
            ),
            (edit("hp = 40", "hp = 0"), "rules.asteroids.tiers[1].hp"),
            (
                edit("splits = 2", "splits = 9"),
                "rules.asteroids.tiers[0].splits",
            ),
            (edit("x = 1500", "x = -1e30"), "obstacles[0].x"),
        ];
        for (text, field) in cases {
            let err = Arena::from_toml(&text).expect_err(field);
            assert_eq!(field_of(err), field);
        }
    }

    #[test]
    fn obstacles_must_be_inside() {
        let text = edit(
            "x = 1500\ny = 1000\nradius = 140",
            "x = 2950\ny = 1000\nradius = 140",
        );
        assert!(matches!(
            Arena::from_toml(&text),
            Err(ArenaError::ObstacleOutside { index: 0, .. })
        ));
    }

    #[test]
    fn inconsistent_arenas_are_refused() {
        let mut a = Arena::standard();
        a.obstacles.clear();
        a.width = 200.0;
        assert!(matches!(a.validate(), Err(ArenaError::Inconsistent(_))));
        let mut a = Arena::standard();
        if let Some(t) = a.rules.asteroids.tiers.last_mut() {
            t.splits = 2;
        }
        assert!(matches!(a.validate(), Err(ArenaError::Inconsistent(_))));
        a.rules.asteroids.tiers.clear();
        assert!(matches!(a.validate(), Err(ArenaError::OutOfRange { .. })));
    }

    #[test]
    fn integers_and_floats_both_work() {
        let text = edit("width = 3000", "width = 3000.5");
        let a = Arena::from_toml(&text).expect("float width");
        assert_eq!(a.width, 3000.5);
        assert_eq!(a.info().width, 3001);
    }
}
