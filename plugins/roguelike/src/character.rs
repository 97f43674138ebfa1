//! A character and what it carries: what outlives a run, kept in cold
//! storage by account (seed 000's `characters` and `character_inventory`:
//! stats and skill levels as JSON, experience, deaths).

use crate::catalog::{Effect, ItemTemplate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const LEVEL_MAX: u32 = 20;
pub const SKILL_MAX: u32 = 10;
/// Items one character carries, equipped ones included.
pub const CARRY_MAX: usize = 12;
/// The skills, each trained by landing hits of its kind.
pub const SKILLS: [&str; 2] = ["melee", "ranged"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub health: i32,
    pub strength: i32,
    pub agility: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Equipped {
    pub weapon: Option<String>,
    pub armor: Option<String>,
}

/// The record `characters/{account}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Character {
    pub name: String,
    pub level: u32,
    pub total_experience: u64,
    pub base_stats: Stats,
    /// Each skill's level (0 to [`SKILL_MAX`]).
    pub skill_levels: BTreeMap<String, u32>,
    /// Hits landed towards each skill's next level.
    pub practice: BTreeMap<String, u32>,
    /// Ids of items in the inventory.
    pub equipped: Equipped,
    pub death_count: u32,
    pub runs: u32,
    pub kills: u64,
    pub deepest: u8,
}

/// The record `inventory/{account}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    pub items: Vec<Item>,
}

/// One item: a template's copy with an id of its own, unique across runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    pub template: String,
    pub name: String,
    pub glyph: char,
    pub effect: Effect,
}

impl Item {
    pub fn new(id: String, template: &str, t: &ItemTemplate) -> Item {
        Item {
            id,
            template: template.into(),
            name: t.name.clone(),
            glyph: t.glyph,
            effect: t.effect.clone(),
        }
    }
}

/// The experience level `level` needs: 20, 80, 180, ... for levels 2, 3, 4.
pub fn experience_for(level: u32) -> u64 {
    let below = u64::from(level.saturating_sub(1));
    20 * below * below
}

impl Character {
    pub fn new(name: &str) -> Character {
        Character {
            name: name.into(),
            level: 1,
            total_experience: 0,
            base_stats: Stats {
                health: 20,
                strength: 10,
                agility: 10,
            },
            skill_levels: SKILLS.iter().map(|s| (s.to_string(), 0)).collect(),
            practice: BTreeMap::new(),
            equipped: Equipped::default(),
            death_count: 0,
            runs: 0,
            kills: 0,
            deepest: 0,
        }
    }

    pub fn skill(&self, skill: &str) -> i32 {
        self.skill_levels.get(skill).copied().unwrap_or(0) as i32
    }

    /// Adds experience; the levels gained (each: +4 health, and strength or
    /// agility by turns).
    pub fn gain(&mut self, xp: u64) -> u32 {
        self.total_experience = self.total_experience.saturating_add(xp);
        let mut gained = 0;
        while self.level < LEVEL_MAX && self.total_experience >= experience_for(self.level + 1) {
            self.level += 1;
            gained += 1;
            self.base_stats.health += 4;
            if self.level.is_multiple_of(2) {
                self.base_stats.strength += 1;
            } else {
                self.base_stats.agility += 1;
            }
        }
        gained
    }

    /// A hit landed with `skill`: practice, and the skill's level once
    /// practised enough (5 hits per level to come). Whether it levelled.
    pub fn practise(&mut self, skill: &str) -> bool {
        let level = self.skill_levels.entry(skill.into()).or_insert(0);
        if *level >= SKILL_MAX {
            return false;
        }
        let practice = self.practice.entry(skill.into()).or_insert(0);
        *practice += 1;
        if *practice >= 5 * (*level + 1) {
            *practice = 0;
            *level += 1;
            return true;
        }
        false
    }
}
