//! A run: the party's way down the dungeon, from the first join to the
//! end. Plain Rust, built natively too, so property tests and the
//! benchmark call it without the host.
//!
//! **Turns.** When the party is complete the run starts on depth 1. Each
//! round every hero and monster rolls initiative (agility plus a d6) and
//! acts in that order. A hero's turn has [`AP_PER_TURN`] action points:
//! moving costs 1, a melee attack or a shot 2, picking up, dropping,
//! equipping and using an item 1. The turn ends when they are spent or the
//! hero ends it; monsters act on their own turns (attack a hero next to
//! them, else step towards the nearest one they see).
//!
//! **The end.** Taking the stairs on the last depth brings the party out:
//! the run is won. A hero may also leave, and one whose hit points reach 0
//! dies and drops everything they carried. The run ends when no hero is
//! left in the dungeon; then every character's experience, skills, deaths
//! and inventory are what the plugin writes back ([`Run::progress`]).
//!
//! **What a player sees.** Each hero remembers the cells they have seen on
//! this depth and sees monsters, items and other heroes only in their
//! current sight ([`crate::dungeon::SIGHT`], not through walls).

use crate::catalog::{Catalog, Effect, ItemTemplate, MonsterTemplate};
use crate::character::{CARRY_MAX, Character, Inventory, Item, experience_for};
use crate::dungeon::{Cells, Dir, HEIGHT, Level, Pos, STAIRS, WIDTH};
use hoard_sdk::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub const PARTY_MAX: u8 = 4;
pub const DEPTHS_MAX: u8 = 10;
pub const AP_PER_TURN: u8 = 4;
/// Lines of each hero's message log kept.
pub const LOG_KEPT: usize = 8;
const MONSTERS_MAX: u8 = 8;
/// A new character's first items (the first weapon equipped).
const KIT: [&str; 2] = ["dagger", "potion"];

pub use hoard_sdk::Refusal;

fn illegal(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Illegal(code, message.into())
}

/// A run's config: how many heroes it waits for, how deep the dungeon
/// goes, and (for the plugin) the turn clock.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "Config::one")]
    pub party: u8,
    #[serde(default = "Config::five")]
    pub depths: u8,
    /// Each hero's time for a turn; when it runs out the turn ends.
    #[serde(default)]
    pub turn_ms: Option<u64>,
}

impl Config {
    fn one() -> u8 {
        1
    }
    fn five() -> u8 {
        5
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            party: 1,
            depths: 5,
            turn_ms: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    Move {
        dir: Dir,
    },
    Attack {
        dir: Dir,
    },
    /// A shot at the monster on cell (`x`, `y`): needs a ranged weapon.
    Shoot {
        x: i64,
        y: i64,
    },
    Pickup,
    Drop {
        item: String,
    },
    Equip {
        item: String,
    },
    Unequip {
        item: String,
    },
    Use {
        item: String,
    },
    Descend,
    /// Ends the turn, whatever action points are left.
    End,
    /// Leaves the dungeon for good (progress is kept).
    Leave,
}

impl Action {
    /// Its cost in action points.
    pub fn cost(&self) -> u8 {
        match self {
            Action::Attack { .. } | Action::Shoot { .. } => 2,
            Action::End | Action::Leave => 0,
            _ => 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for the party to be complete.
    Gathering,
    Playing,
    Over,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// In the dungeon (or out of it with the run won).
    Alive,
    Died,
    Left,
}

/// The versions of a character's records when the run read them (0: none
/// yet), so the write-back is refused if anything wrote them meanwhile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub character: u64,
    pub inventory: u64,
}

/// A character as the run found it in storage: each record and its version.
#[derive(Clone, Debug, Default)]
pub struct Saved {
    pub character: Option<(u64, Character)>,
    pub inventory: Option<(u64, Inventory)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hero {
    pub name: String,
    pub account: Option<String>,
    pub stored: Stored,
    pub character: Character,
    pub items: Vec<Item>,
    pub pos: Pos,
    pub hp: i32,
    pub fate: Fate,
    pub kills: u32,
    /// Experience gained this run.
    pub gained: u64,
    /// The deepest depth this hero reached in this run.
    pub deepest: u8,
    /// The ids of the items the hero brought from storage.
    pub brought: Vec<String>,
    /// Cells seen on this depth.
    pub seen: Cells,
    pub log: VecDeque<String>,
}

impl Hero {
    pub fn hp_max(&self) -> i32 {
        self.character.base_stats.health
    }

    /// In the dungeon and able to act.
    pub fn active(&self) -> bool {
        self.fate == Fate::Alive
    }

    fn say(&mut self, line: String) {
        if self.log.len() == LOG_KEPT {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    fn item(&self, id: &str) -> Result<usize, Refusal> {
        self.items
            .iter()
            .position(|i| i.id == id)
            .ok_or_else(|| illegal("unknown_item", format!("you carry no item {id:?}")))
    }

    fn equipped(&self, slot: &str) -> Option<&Item> {
        let id = match slot {
            "weapon" => self.character.equipped.weapon.as_ref(),
            _ => self.character.equipped.armor.as_ref(),
        }?;
        self.items.iter().find(|i| &i.id == id)
    }

    /// Damage range, bonus to hit, range (0: melee) of what is in hand.
    fn weapon(&self) -> ([i32; 2], i32, u16) {
        match self.equipped("weapon").map(|i| &i.effect) {
            Some(Effect::Weapon {
                damage,
                attack,
                range,
            }) => (*damage, *attack, *range),
            _ => ([1, 2], 0, 0),
        }
    }

    fn defense(&self) -> i32 {
        let armor = match self.equipped("armor").map(|i| &i.effect) {
            Some(Effect::Armor { defense }) => *defense,
            _ => 0,
        };
        armor + (self.character.base_stats.agility - 10) / 3
    }

    /// Unequips `id` if it is equipped.
    fn unequip(&mut self, id: &str) {
        let equipped = &mut self.character.equipped;
        for slot in [&mut equipped.weapon, &mut equipped.armor] {
            if slot.as_deref() == Some(id) {
                *slot = None;
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monster {
    pub id: u32,
    pub kind: String,
    pub pos: Pos,
    pub hp: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorItem {
    pub pos: Pos,
    pub item: Item,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Actor {
    Hero(u8),
    Monster(u32),
}

/// Whether the hero's turn goes on after an action.
enum Turn {
    Goes,
    Passed,
}

/// A character's progress at the end of a run: what the plugin writes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress<'a> {
    pub name: &'a str,
    pub account: &'a str,
    pub stored: Stored,
    pub character: Character,
    pub inventory: Inventory,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    seed: u64,
    pub party: u8,
    pub depths: u8,
    pub phase: Phase,
    pub depth: u8,
    pub level: Level,
    /// The templates of this depth's monsters.
    pub bestiary: BTreeMap<String, MonsterTemplate>,
    pub monsters: Vec<Monster>,
    pub floor: Vec<FloorItem>,
    pub heroes: Vec<Hero>,
    /// What a new character starts with.
    kit: Vec<(String, ItemTemplate)>,
    order: Vec<Actor>,
    turn: usize,
    pub ap: u8,
    pub round: u32,
    /// Random draws made: draw `n` comes from stream `n` of the seed.
    draws: u64,
    /// Ids given out to monsters and items.
    minted: u64,
    pub won: bool,
}

impl Run {
    /// A new run of session `id`: depth 1 is laid out at once.
    pub fn new(id: &str, seed: u64, config: &Config, catalog: &Catalog) -> Result<Run, Refusal> {
        let bad = |message: String| Refusal::Malformed("bad_config", message);
        if !(1..=PARTY_MAX).contains(&config.party) {
            return Err(bad(format!("party must be 1 to {PARTY_MAX}")));
        }
        if !(1..=DEPTHS_MAX).contains(&config.depths) {
            return Err(bad(format!("depths must be 1 to {DEPTHS_MAX}")));
        }
        if catalog.monsters_at(1).is_empty() || catalog.items_at(1).is_empty() {
            return Err(bad("the catalog has nothing for depth 1".into()));
        }
        let mut run = Run {
            id: id.into(),
            seed,
            party: config.party,
            depths: config.depths,
            phase: Phase::Gathering,
            depth: 0,
            level: Level::generate(seed, 1),
            bestiary: BTreeMap::new(),
            monsters: Vec::new(),
            floor: Vec::new(),
            heroes: Vec::new(),
            kit: KIT
                .iter()
                .filter_map(|id| Some((id.to_string(), catalog.items.get(*id)?.clone())))
                .collect(),
            order: Vec::new(),
            turn: 0,
            ap: 0,
            round: 0,
            draws: 0,
            minted: 0,
            won: false,
        };
        run.lay_out(1, catalog);
        Ok(run)
    }

    fn rng(&mut self) -> Rng {
        self.draws += 1;
        Rng::seeded(self.seed, 1 << 41 | self.draws)
    }

    fn mint(&mut self) -> u64 {
        self.minted += 1;
        self.minted
    }

    fn item_id(&mut self) -> String {
        let n = self.mint();
        format!("{}.{n}", self.id)
    }

    /// A number from `range` (inclusive).
    fn between(&mut self, [low, high]: [i32; 2]) -> i32 {
        let span = (high - low).max(0) as u64 + 1;
        low + self.rng().below(span) as i32
    }

    /// Seats a hero: `saved` is their character as stored (nothing for a
    /// new character or a guest, who start with a dagger and a potion).
    pub fn join(&mut self, name: &str, account: Option<&str>, saved: Saved) -> Result<(), Refusal> {
        if self.phase != Phase::Gathering || self.heroes.len() >= usize::from(self.party) {
            return Err(Refusal::Full);
        }
        let (character_version, mut character) = match saved.character {
            Some(saved) => saved,
            None => (0, Character::new(name)),
        };
        let new = character_version == 0;
        let (inventory_version, inventory) = saved.inventory.unwrap_or_default();
        let mut items = inventory.items;
        let brought = items.iter().map(|i| i.id.clone()).collect();
        if new {
            for (template, t) in self.kit.clone() {
                let item = Item::new(self.item_id(), &template, &t);
                if matches!(t.effect, Effect::Weapon { .. }) {
                    character.equipped.weapon = Some(item.id.clone());
                }
                items.push(item);
            }
        }
        character.name = name.into();
        let hp = character.base_stats.health;
        self.heroes.push(Hero {
            name: name.into(),
            account: account.map(Into::into),
            stored: Stored {
                character: character_version,
                inventory: inventory_version,
            },
            character,
            items,
            pos: Pos::new(0, 0),
            hp,
            fate: Fate::Alive,
            kills: 0,
            gained: 0,
            deepest: 0,
            brought,
            seen: Cells::default(),
            log: VecDeque::new(),
        });
        if self.heroes.len() == usize::from(self.party) {
            self.phase = Phase::Playing;
            self.arrive();
        }
        Ok(())
    }

    /// Lays out depth `depth`: its monsters and items, from the catalog.
    fn lay_out(&mut self, depth: u8, catalog: &Catalog) {
        self.depth = depth;
        self.level = Level::generate(self.seed, depth);
        self.floor.clear();
        self.monsters.clear();
        self.bestiary.clear();
        let kinds: Vec<(String, MonsterTemplate)> = catalog
            .monsters_at(depth)
            .into_iter()
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect();
        for _ in 0..(1 + depth).min(MONSTERS_MAX) {
            if kinds.is_empty() {
                break; // a catalog edited to have none this deep
            }
            let (kind, template) = kinds[self.rng().below(kinds.len() as u64) as usize].clone();
            let Some(pos) = self.free_cell(1) else {
                continue;
            };
            let id = self.mint() as u32;
            self.monsters.push(Monster {
                id,
                kind: kind.clone(),
                pos,
                hp: template.hp,
            });
            self.bestiary.insert(kind, template);
        }
        let kinds = catalog.items_at(depth);
        for _ in 0..2 + depth / 2 {
            if kinds.is_empty() {
                break;
            }
            let (template, t) = kinds[self.rng().below(kinds.len() as u64) as usize];
            let Some(pos) = self.free_cell(0) else {
                continue;
            };
            let item = Item::new(self.item_id(), template, t);
            self.floor.push(FloorItem { pos, item });
        }
    }

    /// A random empty floor cell in a room from `first_room` on.
    fn free_cell(&mut self, first_room: usize) -> Option<Pos> {
        let rooms = self.level.rooms.len();
        for _ in 0..20 {
            let mut rng = self.rng();
            let room =
                self.level.rooms[first_room + rng.below((rooms - first_room) as u64) as usize];
            let pos = Pos::new(
                room.x + rng.below(u64::from(room.w)) as u16,
                room.y + rng.below(u64::from(room.h)) as u16,
            );
            if !self.occupied(pos) && self.floor.iter().all(|f| f.pos != pos) {
                return Some(pos);
            }
        }
        None
    }

    /// The heroes in the dungeon arrive in the first room of this depth;
    /// a new round begins.
    fn arrive(&mut self) {
        let room = self.level.rooms[0];
        let mut cells = room.cells();
        for h in 0..self.heroes.len() {
            // The dead and the gone have seen nothing of this depth.
            self.heroes[h].seen = Cells::default();
            if !self.heroes[h].active() {
                continue;
            }
            let pos = cells
                .by_ref()
                .find(|&c| self.monster_at(c).is_none())
                .expect("a first room holds the party");
            let hero = &mut self.heroes[h];
            hero.pos = pos;
            hero.deepest = self.depth;
            hero.seen = self.level.sight(pos);
        }
        self.order.clear();
        self.turn = 0;
        self.settle();
    }

    fn monster_at(&self, pos: Pos) -> Option<usize> {
        self.monsters.iter().position(|m| m.pos == pos)
    }

    fn hero_at(&self, pos: Pos) -> Option<usize> {
        self.heroes.iter().position(|h| h.active() && h.pos == pos)
    }

    fn occupied(&self, pos: Pos) -> bool {
        self.monster_at(pos).is_some() || self.hero_at(pos).is_some()
    }

    /// Whose turn it is: a hero's name, while the run is on.
    pub fn turn(&self) -> Option<&str> {
        match (self.phase, self.order.get(self.turn)) {
            (Phase::Playing, Some(Actor::Hero(h))) => Some(&self.heroes[usize::from(*h)].name),
            _ => None,
        }
    }

    /// Whether `action` needs the catalog (the next depth is laid out).
    pub fn needs_catalog(&self, action: &Action) -> bool {
        matches!(action, Action::Descend) && self.depth < self.depths
    }

    /// Applies `player`'s action. `catalog` is called only when the action
    /// needs it ([`Run::needs_catalog`]), before anything changes.
    pub fn act<E: From<Refusal>>(
        &mut self,
        player: &str,
        action: Action,
        catalog: impl FnOnce() -> Result<Catalog, E>,
    ) -> Result<(), E> {
        let h = self
            .heroes
            .iter()
            .position(|h| h.name == player)
            .ok_or(Refusal::NotSeated)?;
        match self.phase {
            Phase::Gathering => {
                return Err(illegal("not_started", "the party is not complete yet").into());
            }
            Phase::Over => return Err(Refusal::Finished.into()),
            Phase::Playing => {}
        }
        match self.heroes[h].fate {
            Fate::Alive => {}
            Fate::Died => return Err(illegal("dead", "you are dead").into()),
            Fate::Left => return Err(illegal("left", "you left the dungeon").into()),
        }
        if self.turn() != Some(player) {
            return Err(Refusal::NotYourTurn.into());
        }
        let cost = action.cost();
        if cost > self.ap {
            let message = format!("that takes {cost} action points; {} left", self.ap);
            return Err(illegal("no_action_points", message).into());
        }
        let catalog = if self.needs_catalog(&action) {
            if self.level.tile(self.heroes[h].pos) != STAIRS {
                return Err(illegal("no_stairs", "there are no stairs here").into());
            }
            Some(catalog()?)
        } else {
            None
        };
        self.ap -= cost;
        match self.apply(h, action, catalog.as_ref()) {
            Err(refusal) => {
                self.ap += cost;
                Err(refusal.into())
            }
            Ok(Turn::Passed) => Ok(()),
            Ok(Turn::Goes) => {
                if self.ap == 0 {
                    self.end_turn();
                }
                Ok(())
            }
        }
    }

    /// The turn clock ran out: the hero whose turn it is loses the rest of it.
    pub fn timeout(&mut self) -> bool {
        if self.turn().is_none() {
            return false;
        }
        self.end_turn();
        true
    }

    /// Validates `action`, then applies it: nothing changes when it is
    /// refused.
    fn apply(
        &mut self,
        h: usize,
        action: Action,
        catalog: Option<&Catalog>,
    ) -> Result<Turn, Refusal> {
        let at = self.heroes[h].pos;
        match action {
            Action::Move { dir } => {
                let to = at
                    .step(dir)
                    .ok_or_else(|| illegal("out_of_bounds", "that is off the map"))?;
                if !self.level.passable(to) {
                    return Err(illegal("wall", "a wall is in the way"));
                }
                if self.occupied(to) {
                    return Err(illegal("occupied", "someone is in the way"));
                }
                let sight = self.level.sight(to);
                let here: Vec<String> = self
                    .floor
                    .iter()
                    .filter(|f| f.pos == to)
                    .map(|f| f.item.name.clone())
                    .collect();
                let hero = &mut self.heroes[h];
                hero.pos = to;
                hero.seen.union(&sight);
                for name in here {
                    hero.say(format!("You see {} here.", a(&name)));
                }
            }
            Action::Attack { dir } => {
                let m = at
                    .step(dir)
                    .and_then(|to| self.monster_at(to))
                    .ok_or_else(|| illegal("no_target", "there is no monster there"))?;
                self.strike(h, m, "melee");
            }
            Action::Shoot { x, y } => {
                let to = self.target(h, x, y)?;
                let m = self
                    .monster_at(to)
                    .ok_or_else(|| illegal("no_target", "there is no monster there"))?;
                self.strike(h, m, "ranged");
            }
            Action::Pickup => {
                let f = self
                    .floor
                    .iter()
                    .position(|f| f.pos == at)
                    .ok_or_else(|| illegal("nothing_here", "there is nothing here"))?;
                if self.heroes[h].items.len() >= CARRY_MAX {
                    return Err(illegal(
                        "pack_full",
                        format!("you carry {CARRY_MAX} items already"),
                    ));
                }
                let item = self.floor.remove(f).item;
                let hero = &mut self.heroes[h];
                hero.say(format!("You pick up the {}.", item.name));
                hero.items.push(item);
            }
            Action::Drop { item } => {
                let hero = &mut self.heroes[h];
                let i = hero.item(&item)?;
                hero.unequip(&item);
                let item = hero.items.remove(i);
                hero.say(format!("You drop the {}.", item.name));
                self.floor.push(FloorItem { pos: at, item });
            }
            Action::Equip { item } => {
                let hero = &mut self.heroes[h];
                let i = hero.item(&item)?;
                let equipped = &mut hero.character.equipped;
                let slot = match hero.items[i].effect {
                    Effect::Weapon { .. } => &mut equipped.weapon,
                    Effect::Armor { .. } => &mut equipped.armor,
                    Effect::Potion { .. } => {
                        return Err(illegal("not_equipment", "that is not worn or held"));
                    }
                };
                *slot = Some(item);
                let line = format!("You equip the {}.", hero.items[i].name);
                hero.say(line);
            }
            Action::Unequip { item } => {
                let hero = &mut self.heroes[h];
                let i = hero.item(&item)?;
                let equipped = &hero.character.equipped;
                if ![&equipped.weapon, &equipped.armor].contains(&&Some(item.clone())) {
                    return Err(illegal("not_equipped", "that is not equipped"));
                }
                hero.unequip(&item);
                let line = format!("You put away the {}.", hero.items[i].name);
                hero.say(line);
            }
            Action::Use { item } => {
                let hero = &mut self.heroes[h];
                let i = hero.item(&item)?;
                let Effect::Potion { heal } = hero.items[i].effect else {
                    return Err(illegal("not_usable", "that cannot be used; equip it"));
                };
                let item = hero.items.remove(i);
                hero.hp = (hero.hp + heal).min(hero.hp_max());
                hero.say(format!("You drink the {}.", item.name));
            }
            Action::Descend => {
                if self.level.tile(at) != STAIRS {
                    return Err(illegal("no_stairs", "there are no stairs here"));
                }
                let name = self.heroes[h].name.clone();
                match catalog {
                    None => {
                        self.won = true;
                        for hero in self.heroes.iter_mut().filter(|h| h.active()) {
                            hero.say(format!("{name} leads the party out of the dungeon!"));
                        }
                        self.finish();
                    }
                    Some(catalog) => {
                        self.lay_out(self.depth + 1, catalog);
                        for hero in self.heroes.iter_mut().filter(|h| h.active()) {
                            hero.say(format!(
                                "{name} leads the party down to depth {}.",
                                self.depth
                            ));
                        }
                        self.arrive();
                    }
                }
                return Ok(Turn::Passed);
            }
            Action::End => {
                self.end_turn();
                return Ok(Turn::Passed);
            }
            Action::Leave => {
                let hero = &mut self.heroes[h];
                hero.fate = Fate::Left;
                hero.say("You leave the dungeon.".into());
                self.end_turn();
                return Ok(Turn::Passed);
            }
        }
        Ok(Turn::Goes)
    }

    /// The cell a shot at (`x`, `y`) aims at, if it can be shot at.
    fn target(&self, h: usize, x: i64, y: i64) -> Result<Pos, Refusal> {
        let off = || {
            illegal(
                "out_of_bounds",
                format!("the map is {WIDTH} by {HEIGHT} cells"),
            )
        };
        let (Ok(x), Ok(y)) = (u16::try_from(x), u16::try_from(y)) else {
            return Err(off());
        };
        if x >= WIDTH || y >= HEIGHT {
            return Err(off());
        }
        let hero = &self.heroes[h];
        let (_, _, range) = hero.weapon();
        if range == 0 {
            return Err(illegal("not_ranged", "you hold no ranged weapon"));
        }
        let to = Pos::new(x, y);
        if to == hero.pos {
            return Err(illegal("no_target", "you cannot shoot yourself"));
        }
        // The whole line of fire must be in sight and open, so a refusal
        // tells nothing about cells the hero cannot see.
        let sight = self.level.sight(hero.pos);
        let open = |c: Pos| sight.has(c) && self.level.passable(c);
        if !sight.has(to) || !Level::between(hero.pos, to).all(open) {
            return Err(illegal(
                "not_visible",
                "you have no clear line of fire there",
            ));
        }
        if hero.pos.distance(to) > range {
            return Err(illegal(
                "out_of_range",
                format!("your weapon reaches {range} cells"),
            ));
        }
        if Level::between(hero.pos, to).any(|c| self.occupied(c)) {
            return Err(illegal("blocked", "someone is in the line of fire"));
        }
        Ok(to)
    }

    /// Hero `h` attacks monster `m` with `skill`.
    fn strike(&mut self, h: usize, m: usize, skill: &str) {
        let kind = self.monsters[m].kind.clone();
        let template = self.bestiary[&kind].clone();
        let hero = &self.heroes[h];
        let (damage, attack, _) = hero.weapon();
        let strength = hero.character.base_stats.strength;
        let bonus = hero.character.skill(skill) + attack + (strength - 10) / 2;
        let roll = 1 + self.rng().below(20) as i32;
        if roll + bonus < 10 + template.defense {
            self.heroes[h].say(format!("You miss the {}.", template.name));
            return;
        }
        let dealt = (self.between(damage) + (strength - 10) / 3).max(1);
        let monster = &mut self.monsters[m];
        monster.hp -= dealt;
        let killed = monster.hp <= 0;
        if killed {
            // Its place in the order stays: a turn of a monster that is
            // gone is skipped.
            self.monsters.remove(m);
        }
        let hero = &mut self.heroes[h];
        hero.say(format!("You hit the {} for {dealt}.", template.name));
        if hero.character.practise(skill) {
            let level = hero.character.skill(skill);
            hero.say(format!("Your {skill} skill rises to {level}."));
        }
        if killed {
            hero.kills += 1;
            hero.gained += u64::from(template.xp);
            hero.say(format!(
                "You kill the {} (+{} xp).",
                template.name, template.xp
            ));
            let levels = hero.character.gain(u64::from(template.xp));
            if levels > 0 {
                hero.hp = (hero.hp + 4 * levels as i32).min(hero.hp_max());
                let level = hero.character.level;
                hero.say(format!("You reach level {level}!"));
            }
        }
    }

    /// Ends the current hero's turn and plays monsters' turns until the
    /// next hero's.
    fn end_turn(&mut self) {
        self.turn += 1;
        self.settle();
    }

    /// From `self.turn` on: plays monsters' turns and skips heroes who are
    /// gone until an active hero's turn (fresh action points), starting new
    /// rounds as needed; ends the run when no hero is left.
    fn settle(&mut self) {
        loop {
            if !self.heroes.iter().any(Hero::active) {
                self.finish();
                return;
            }
            if self.turn >= self.order.len() {
                self.new_round();
            }
            match self.order[self.turn] {
                Actor::Hero(h) if self.heroes[usize::from(h)].active() => {
                    self.ap = AP_PER_TURN;
                    return;
                }
                Actor::Hero(_) => {}
                Actor::Monster(id) => self.monster_turn(id),
            }
            self.turn += 1;
        }
    }

    /// Everyone in the dungeon rolls initiative: agility plus a d6, highest
    /// first (heroes before monsters on a tie, then by seat or age).
    fn new_round(&mut self) {
        self.round += 1;
        let mut rolls: Vec<(i32, u8, u32, Actor)> = Vec::new();
        for h in 0..self.heroes.len() {
            if self.heroes[h].active() {
                let agility = self.heroes[h].character.base_stats.agility;
                let roll = agility + 1 + self.rng().below(6) as i32;
                rolls.push((-roll, 0, h as u32, Actor::Hero(h as u8)));
            }
        }
        for m in 0..self.monsters.len() {
            let agility = self.bestiary[&self.monsters[m].kind].agility;
            let roll = agility + 1 + self.rng().below(6) as i32;
            let id = self.monsters[m].id;
            rolls.push((-roll, 1, id, Actor::Monster(id)));
        }
        rolls.sort();
        self.order = rolls.into_iter().map(|(.., actor)| actor).collect();
        self.turn = 0;
    }

    /// A monster's turn: it attacks the nearest hero it sees if next to
    /// them, else steps towards them.
    fn monster_turn(&mut self, id: u32) {
        let Some(m) = self.monsters.iter().position(|m| m.id == id) else {
            return;
        };
        let at = self.monsters[m].pos;
        let target = (0..self.heroes.len())
            .filter(|&h| {
                let hero = &self.heroes[h];
                hero.active() && at.in_sight(hero.pos) && self.level.clear_line(at, hero.pos)
            })
            .min_by_key(|&h| at.distance(self.heroes[h].pos));
        let Some(h) = target else {
            return;
        };
        let goal = self.heroes[h].pos;
        if at.distance(goal) == 1 {
            self.bite(m, h);
            return;
        }
        let step = Dir::ALL
            .iter()
            .filter_map(|&d| at.step(d))
            .filter(|&c| self.level.passable(c) && !self.occupied(c))
            .min_by_key(|c| c.distance(goal));
        if let Some(step) = step.filter(|c| c.distance(goal) < at.distance(goal)) {
            self.monsters[m].pos = step;
        }
    }

    /// Monster `m` attacks hero `h`.
    fn bite(&mut self, m: usize, h: usize) {
        let template = self.bestiary[&self.monsters[m].kind].clone();
        let roll = 1 + self.rng().below(20) as i32;
        if roll + template.attack < 10 + self.heroes[h].defense() {
            self.heroes[h].say(format!("The {} misses you.", template.name));
            return;
        }
        let dealt = self.between(template.damage).max(1);
        let hero = &mut self.heroes[h];
        hero.hp = (hero.hp - dealt).max(0);
        hero.say(format!("The {} hits you for {dealt}.", template.name));
        if hero.hp > 0 {
            return;
        }
        hero.fate = Fate::Died;
        hero.character.equipped = Default::default();
        hero.say("You die.".into());
        let pos = hero.pos;
        let dropped: Vec<Item> = hero.items.drain(..).collect();
        self.floor
            .extend(dropped.into_iter().map(|item| FloorItem { pos, item }));
    }

    /// The run is over: each character's run, deaths, kills and depth are
    /// counted.
    fn finish(&mut self) {
        self.phase = Phase::Over;
        self.order.clear();
        self.ap = 0;
        for hero in &mut self.heroes {
            let character = &mut hero.character;
            character.runs += 1;
            character.kills += u64::from(hero.kills);
            character.deepest = character.deepest.max(hero.deepest);
            if hero.fate == Fate::Died {
                character.death_count += 1;
            }
        }
    }

    /// Each account's character and inventory as the run leaves them, once
    /// it is over (guests keep nothing), leaving out the accounts in
    /// `stale`: characters another run wrote since this one read them,
    /// whose progress here is dropped. Items still follow their owners: an
    /// item a stale hero brought from storage belongs to the record the
    /// other run wrote, so it leaves whoever holds it now; an item a saved
    /// hero brought and a stale hero or a guest holds (neither is written)
    /// goes back to the one who brought it, unless they died (a death
    /// loses everything the hero carried, lent items too). So no item is
    /// written to two characters, and none a surviving saved character
    /// brought is lost to them.
    pub fn progress(&self, stale: &BTreeSet<&str>) -> Vec<Progress<'_>> {
        if self.phase != Phase::Over {
            return Vec::new();
        }
        let kept = |h: &Hero| h.account.as_deref().is_some_and(|a| !stale.contains(a));
        let theirs: BTreeSet<&str> = self
            .heroes
            .iter()
            .filter(|h| h.account.is_some() && !kept(h))
            .flat_map(|h| h.brought.iter().map(String::as_str))
            .collect();
        let mut saved: Vec<Progress> = self
            .heroes
            .iter()
            .filter(|h| kept(h))
            .map(|hero| Progress {
                name: &hero.name,
                account: hero.account.as_deref().expect("kept heroes have accounts"),
                stored: hero.stored,
                character: hero.character.clone(),
                inventory: Inventory {
                    items: hero
                        .items
                        .iter()
                        .filter(|i| !theirs.contains(i.id.as_str()))
                        .cloned()
                        .collect(),
                },
            })
            .collect();
        for holder in self.heroes.iter().filter(|h| !kept(h)) {
            for item in &holder.items {
                let owner = saved
                    .iter_mut()
                    .zip(self.heroes.iter().filter(|h| kept(h)))
                    .find(|(_, hero)| hero.fate != Fate::Died && hero.brought.contains(&item.id));
                if let Some((progress, _)) = owner {
                    progress.inventory.items.push(item.clone());
                }
            }
        }
        for progress in &mut saved {
            let items = &progress.inventory.items;
            let equipped = &mut progress.character.equipped;
            for slot in [&mut equipped.weapon, &mut equipped.armor] {
                if slot
                    .as_ref()
                    .is_some_and(|id| items.iter().all(|i| &i.id != id))
                {
                    *slot = None;
                }
            }
        }
        saved
    }

    /// The outcome, once the run is over.
    pub fn outcome(&self) -> Option<Value> {
        if self.phase != Phase::Over {
            return None;
        }
        let players: Vec<Value> = self
            .heroes
            .iter()
            .map(|h| {
                let fate = match h.fate {
                    Fate::Alive => "escaped",
                    Fate::Died => "died",
                    Fate::Left => "left",
                };
                json!({
                    "name": h.name, "fate": fate, "level": h.character.level,
                    "experience": h.gained, "kills": h.kills, "depth": h.deepest,
                })
            })
            .collect();
        let winners: Vec<&str> = self
            .heroes
            .iter()
            .filter(|h| self.won && h.active())
            .map(|h| h.name.as_str())
            .collect();
        Some(json!({
            "run": self.id, "won": self.won, "depth": self.depth,
            "winners": winners, "players": players,
        }))
    }

    /// What `player` sees (`None`, or a name not seated: a spectator, who
    /// sees what the whole party sees).
    pub fn view(&self, player: Option<&str>) -> Value {
        let me = player.and_then(|p| self.heroes.iter().position(|h| h.name == p));
        let party: Vec<Value> = self
            .heroes
            .iter()
            .map(|h| {
                json!({
                    "name": h.name, "level": h.character.level, "hp": h.hp,
                    "hp_max": h.hp_max(), "fate": h.fate,
                })
            })
            .collect();
        let mut view = json!({
            "phase": self.phase, "party": party, "party_size": self.party,
            "depth": self.depth, "depths": self.depths, "round": self.round,
            "turn": self.turn(), "ap": self.ap, "won": self.won,
        });
        if self.phase == Phase::Gathering {
            return view;
        }
        let watching: Vec<usize> = match me {
            Some(h) => vec![h],
            None => (0..self.heroes.len()).collect(),
        };
        let mut seen = Cells::default();
        let mut lit = Cells::default();
        for &h in &watching {
            let hero = &self.heroes[h];
            seen.union(&hero.seen);
            if hero.active() {
                lit.union(&self.level.sight(hero.pos));
            }
        }
        let (map, ascii) = self.draw(&seen, &lit, me);
        view["map"] = map;
        view["ascii"] = json!(ascii);
        view["monsters"] = self
            .monsters
            .iter()
            .filter(|m| lit.has(m.pos))
            .map(|m| {
                let t = &self.bestiary[&m.kind];
                json!({
                    "id": m.id, "kind": m.kind, "name": t.name, "glyph": t.glyph.to_string(),
                    "x": m.pos.x, "y": m.pos.y, "hp": m.hp, "hp_max": t.hp,
                })
            })
            .collect();
        view["items"] = self
            .floor
            .iter()
            .filter(|f| lit.has(f.pos))
            .map(|f| {
                json!({
                    "id": f.item.id, "name": f.item.name, "glyph": f.item.glyph.to_string(),
                    "x": f.pos.x, "y": f.pos.y,
                })
            })
            .collect();
        view["heroes"] = self
            .heroes
            .iter()
            .enumerate()
            .filter(|(_, h)| h.active() && lit.has(h.pos))
            .map(|(seat, h)| json!({"name": h.name, "glyph": hero_glyph(seat, me), "x": h.pos.x, "y": h.pos.y}))
            .collect();
        if let Some(h) = me {
            let hero = &self.heroes[h];
            let c = &hero.character;
            view["you"] = json!({
                "name": hero.name, "fate": hero.fate, "x": hero.pos.x, "y": hero.pos.y,
                "hp": hero.hp, "hp_max": hero.hp_max(), "level": c.level,
                "experience": c.total_experience, "next_level": experience_for(c.level + 1),
                "stats": c.base_stats, "skills": c.skill_levels, "equipped": c.equipped,
                "inventory": hero.items, "kills": hero.kills, "deaths": c.death_count,
                "runs": c.runs,
            });
            view["log"] = json!(hero.log);
        }
        view
    }

    /// The map as `seen` and `lit` allow: JSON (terrain rows, lit rows) and
    /// the ASCII picture with everything in sight drawn on it.
    fn draw(&self, seen: &Cells, lit: &Cells, me: Option<usize>) -> (Value, String) {
        let mut terrain = Vec::with_capacity(usize::from(HEIGHT));
        let mut lit_rows = Vec::with_capacity(usize::from(HEIGHT));
        let mut ascii = String::with_capacity(usize::from(HEIGHT) * usize::from(WIDTH + 1));
        for y in 0..HEIGHT {
            let mut row = String::with_capacity(usize::from(WIDTH));
            let mut lit_row = String::with_capacity(usize::from(WIDTH));
            for x in 0..WIDTH {
                let pos = Pos::new(x, y);
                let tile = if seen.has(pos) {
                    self.level.tile(pos) as char
                } else {
                    ' '
                };
                row.push(tile);
                lit_row.push(if lit.has(pos) { '*' } else { ' ' });
                ascii.push(if lit.has(pos) {
                    self.glyph_at(pos, me).unwrap_or(tile)
                } else {
                    tile
                });
            }
            ascii.push('\n');
            terrain.push(row);
            lit_rows.push(lit_row);
        }
        let map = json!({"width": WIDTH, "height": HEIGHT, "rows": terrain, "lit": lit_rows});
        (map, ascii)
    }

    /// What stands on `pos`: a hero, a monster, an item.
    fn glyph_at(&self, pos: Pos, me: Option<usize>) -> Option<char> {
        if let Some(h) = self.hero_at(pos) {
            return hero_glyph(h, me).chars().next();
        }
        if let Some(m) = self.monster_at(pos) {
            return Some(self.bestiary[&self.monsters[m].kind].glyph);
        }
        self.floor
            .iter()
            .find(|f| f.pos == pos)
            .map(|f| f.item.glyph)
    }
}

/// `name` with its indefinite article.
fn a(name: &str) -> String {
    let vowel = name.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {name}", if vowel { "an" } else { "a" })
}

/// `@` for the viewer, the seat number (1 to 4) for the others.
fn hero_glyph(seat: usize, me: Option<usize>) -> String {
    if Some(seat) == me {
        "@".into()
    } else {
        (seat + 1).to_string()
    }
}
