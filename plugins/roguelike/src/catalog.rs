//! Monster and item templates: reference data. The plugin keeps them in
//! cold storage (a designer rebalances a monster by editing its record) and
//! reads them through a hot cache; the rules get them as a [`Catalog`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonsterTemplate {
    pub name: String,
    pub glyph: char,
    /// The first depth it is met at.
    pub depth: u8,
    pub hp: i32,
    /// Added to a d20 to hit; a hit needs 10 plus the target's defence.
    pub attack: i32,
    pub defense: i32,
    /// Damage on a hit: a number in this range.
    pub damage: [i32; 2],
    /// Added to its initiative roll.
    pub agility: i32,
    /// Experience for killing it.
    pub xp: u32,
}

/// What an item does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// Equipped in the hand; `range` 0 is a melee weapon, more shoots.
    Weapon {
        damage: [i32; 2],
        attack: i32,
        range: u16,
    },
    /// Equipped on the body.
    Armor { defense: i32 },
    /// Used up: heals.
    Potion { heal: i32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemTemplate {
    pub name: String,
    pub glyph: char,
    /// The first depth it lies on the floor at.
    pub depth: u8,
    pub effect: Effect,
}

/// Every template by id (`goblin`, `sword`), as the rules need them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub monsters: BTreeMap<String, MonsterTemplate>,
    pub items: BTreeMap<String, ItemTemplate>,
}

/// The ids of a catalog's templates: the index record the plugin keeps
/// beside them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub monsters: Vec<String>,
    pub items: Vec<String>,
}

/// A monster: `[hp, attack, defense, agility]`, its damage, its experience.
fn monster(
    name: &str,
    glyph: char,
    depth: u8,
    [hp, attack, defense, agility]: [i32; 4],
    damage: [i32; 2],
    xp: u32,
) -> MonsterTemplate {
    MonsterTemplate {
        name: name.into(),
        glyph,
        depth,
        hp,
        attack,
        defense,
        damage,
        agility,
        xp,
    }
}

fn item(name: &str, glyph: char, depth: u8, effect: Effect) -> ItemTemplate {
    ItemTemplate {
        name: name.into(),
        glyph,
        depth,
        effect,
    }
}

impl Catalog {
    /// The templates the plugin ships.
    pub fn builtin() -> Catalog {
        let weapon = |damage, attack, range| Effect::Weapon {
            damage,
            attack,
            range,
        };
        let monsters = [
            ("rat", monster("rat", 'r', 1, [4, 1, 0, 3], [1, 2], 3)),
            ("bat", monster("bat", 'b', 1, [3, 2, 1, 6], [1, 2], 3)),
            ("goblin", monster("goblin", 'g', 2, [8, 3, 2, 4], [1, 4], 8)),
            ("orc", monster("orc", 'o', 3, [14, 4, 3, 2], [2, 6], 20)),
            ("troll", monster("troll", 'T', 4, [24, 5, 3, 1], [3, 8], 40)),
            (
                "wraith",
                monster("wraith", 'W', 5, [18, 6, 5, 5], [2, 7], 50),
            ),
        ];
        let items = [
            ("dagger", item("dagger", ')', 1, weapon([1, 4], 1, 0))),
            ("sword", item("sword", ')', 2, weapon([2, 7], 2, 0))),
            ("axe", item("axe", ')', 3, weapon([3, 9], 1, 0))),
            ("bow", item("bow", '}', 1, weapon([1, 6], 1, 6))),
            (
                "leather",
                item("leather armour", '[', 1, Effect::Armor { defense: 1 }),
            ),
            (
                "chain",
                item("chain mail", '[', 3, Effect::Armor { defense: 3 }),
            ),
            (
                "potion",
                item("healing potion", '!', 1, Effect::Potion { heal: 10 }),
            ),
            (
                "elixir",
                item("elixir", '!', 4, Effect::Potion { heal: 25 }),
            ),
        ];
        Catalog {
            monsters: monsters.map(|(id, t)| (id.to_owned(), t)).into(),
            items: items.map(|(id, t)| (id.to_owned(), t)).into(),
        }
    }

    pub fn index(&self) -> Index {
        Index {
            monsters: self.monsters.keys().cloned().collect(),
            items: self.items.keys().cloned().collect(),
        }
    }

    /// The monsters met at `depth`, by id.
    pub fn monsters_at(&self, depth: u8) -> Vec<(&String, &MonsterTemplate)> {
        self.monsters
            .iter()
            .filter(|(_, t)| t.depth <= depth)
            .collect()
    }

    /// The items found at `depth`, by id.
    pub fn items_at(&self, depth: u8) -> Vec<(&String, &ItemTemplate)> {
        self.items
            .iter()
            .filter(|(_, t)| t.depth <= depth)
            .collect()
    }
}
