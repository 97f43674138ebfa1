//! Property tests of the roguelike rules, natively: thousands of random
//! runs (parties of one to four, new and returning characters) played by a
//! bot that explores, fights and descends, mixed with random and illegal
//! actions, checked after every action against invariants and models
//! written here apart from the code:
//!
//! - a refused action changes nothing;
//! - no item is duplicated, and every item that disappears is accounted for
//!   (a potion drunk, or left on the floor of a depth the party left);
//!   items appear only when a depth is laid out;
//! - hit points stay within bounds, the dead hold nothing, experience never
//!   falls and the level is the one the experience curve gives;
//! - fog of war: a hero's view shows only cells within sight of somewhere
//!   the hero stood on this depth, showing them as they are, and shows
//!   monsters, items and heroes only within sight of where the hero stands;
//! - at the end, each account's progress is exactly its hero's.

use hoard_sdk::Rng;
use proptest::prelude::*;
use roguelike::catalog::{Catalog, Effect};
use roguelike::character::{CARRY_MAX, Character, Inventory, Item, LEVEL_MAX, SKILL_MAX};
use roguelike::dungeon::{Dir, HEIGHT, Level, Pos, STAIRS, WIDTH};
use roguelike::run::{Action, Config, Fate, Phase, Refusal, Run, Saved};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// The sight circle, from the rules' documentation: radius 6.
fn within_sight(a: Pos, b: Pos) -> bool {
    let (dx, dy) = (a.x.abs_diff(b.x) as u32, a.y.abs_diff(b.y) as u32);
    dx * dx + dy * dy <= 6 * 6 + 6
}

/// The level a total experience gives: level L needs 20 * (L - 1)^2.
fn level_for(xp: u64) -> u32 {
    (1..=LEVEL_MAX)
        .filter(|&l| 20 * u64::from(l - 1).pow(2) <= xp)
        .max()
        .unwrap()
}

fn item_ids(run: &Run) -> Vec<String> {
    let carried = run.heroes.iter().flat_map(|h| &h.items);
    let lying = run.floor.iter().map(|f| &f.item);
    carried.chain(lying).map(|i| i.id.clone()).collect()
}

/// The first step of a shortest way from `from` to the nearest cell
/// `goal` accepts, around walls and anyone in the way.
fn way(run: &Run, from: Pos, goal: impl Fn(Pos) -> bool) -> Option<Dir> {
    let blocked = |p: Pos| {
        run.monsters.iter().any(|m| m.pos == p)
            || run
                .heroes
                .iter()
                .any(|h| h.fate == Fate::Alive && h.pos == p)
    };
    let mut first: HashMap<Pos, Dir> = HashMap::new();
    let mut todo = VecDeque::from([from]);
    while let Some(at) = todo.pop_front() {
        for dir in Dir::ALL {
            let Some(next) = at.step(dir) else { continue };
            if next == from || first.contains_key(&next) || !run.level.passable(next) {
                continue;
            }
            let dir = first.get(&at).copied().unwrap_or(dir);
            if goal(next) {
                return Some(dir);
            }
            if !blocked(next) {
                first.insert(next, dir);
                todo.push_back(next);
            }
        }
    }
    None
}

/// The bot's action for the hero whose turn it is.
fn smart(run: &Run, h: usize, rng: &mut Rng) -> Action {
    let hero = &run.heroes[h];
    let at = hero.pos;
    let adjacent = Dir::ALL.into_iter().find(|&d| {
        at.step(d)
            .is_some_and(|p| run.monsters.iter().any(|m| m.pos == p))
    });
    if let Some(dir) = adjacent {
        return if run.ap >= 2 {
            Action::Attack { dir }
        } else {
            Action::End
        };
    }
    if hero.hp * 3 < hero.hp_max()
        && let Some(potion) = hero
            .items
            .iter()
            .find(|i| matches!(i.effect, Effect::Potion { .. }))
    {
        return Action::Use {
            item: potion.id.clone(),
        };
    }
    if hero.items.len() < CARRY_MAX && run.floor.iter().any(|f| f.pos == at) {
        return Action::Pickup;
    }
    let bow = hero
        .items
        .iter()
        .find(|i| matches!(i.effect, Effect::Weapon { range: 1.., .. }));
    if let Some(bow) = bow {
        if hero.character.equipped.weapon.as_ref() != Some(&bow.id) {
            return Action::Equip {
                item: bow.id.clone(),
            };
        }
        let in_range = |p: Pos| at.distance(p) <= 6 && run.level.clear_line(at, p);
        let clear = |p: Pos| {
            Level::between(at, p).all(|c| {
                let hero_there = run
                    .heroes
                    .iter()
                    .any(|h| h.fate == Fate::Alive && h.pos == c);
                !hero_there && run.monsters.iter().all(|m| m.pos != c)
            })
        };
        if run.ap >= 2
            && let Some(m) = run
                .monsters
                .iter()
                .find(|m| in_range(m.pos) && clear(m.pos))
        {
            return Action::Shoot {
                x: m.pos.x.into(),
                y: m.pos.y.into(),
            };
        }
    }
    if run.level.tile(at) == STAIRS && (run.monsters.is_empty() || rng.below(4) == 0) {
        return Action::Descend;
    }
    // Fight what is near, pick up what is near, else make for the stairs.
    let near = |p: Pos| within_sight(at, p) && run.level.clear_line(at, p);
    let dir = if run.monsters.iter().any(|m| near(m.pos)) {
        way(run, at, |p| {
            run.monsters.iter().any(|m| m.pos == p && near(p))
        })
    } else if hero.items.len() < CARRY_MAX && run.floor.iter().any(|f| near(f.pos)) {
        way(run, at, |p| run.floor.iter().any(|f| f.pos == p && near(p)))
    } else {
        None
    };
    let dir = dir.or_else(|| way(run, at, |p| run.level.tile(p) == STAIRS));
    match dir {
        Some(dir) => Action::Move { dir },
        None => Action::End,
    }
}

/// Any action at all, legal or not.
fn random(run: &Run, h: usize, rng: &mut Rng) -> Action {
    let dir = Dir::ALL[rng.below(8) as usize];
    let items = &run.heroes[h].items;
    let item = match items.len() {
        0 => "no-such-item".to_owned(),
        n if rng.below(5) > 0 => items[rng.below(n as u64) as usize].id.clone(),
        _ => format!("{}.999999", run.id),
    };
    let coordinate = |rng: &mut Rng| rng.below(60) as i64 - 5;
    match rng.below(11) {
        0 | 1 => Action::Move { dir },
        2 => Action::Attack { dir },
        3 => Action::Shoot {
            x: coordinate(rng),
            y: coordinate(rng),
        },
        4 => Action::Pickup,
        5 => Action::Drop { item },
        6 => Action::Equip { item },
        7 => Action::Unequip { item },
        8 => Action::Use { item },
        9 => Action::Descend,
        _ => Action::End,
    }
}

/// A returning character: some experience, and items of its own.
fn veteran(name: &str, rng: &mut Rng, catalog: &Catalog) -> Saved {
    let mut character = Character::new(name);
    character.gain(rng.below(400));
    character.runs = 1 + rng.below(5) as u32;
    let ids: Vec<&String> = catalog.items.keys().collect();
    let items: Vec<Item> = (0..rng.below(6))
        .map(|n| {
            let id = ids[rng.below(ids.len() as u64) as usize];
            Item::new(format!("old-{name}.{n}"), id, &catalog.items[id])
        })
        .collect();
    character.equipped.weapon = items
        .iter()
        .find(|i| matches!(i.effect, Effect::Weapon { .. }))
        .map(|i| i.id.clone());
    Saved {
        character: Some((3, character)),
        inventory: Some((2, Inventory { items })),
    }
}

/// Everything a view shows, checked against the run and against where the
/// hero stood on this depth.
fn check_view(run: &Run, h: usize, stood: &[Pos]) {
    let hero = &run.heroes[h];
    let view = run.view(Some(&hero.name));
    let rows = view["map"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), usize::from(HEIGHT));
    let ascii: Vec<&str> = view["ascii"].as_str().unwrap().lines().collect();
    for (y, row) in rows.iter().enumerate() {
        let row = row.as_str().unwrap();
        assert_eq!(row.len(), usize::from(WIDTH));
        for (x, shown) in row.bytes().enumerate() {
            let pos = Pos::new(x as u16, y as u16);
            let drawn = ascii[y].as_bytes()[x];
            if shown == b' ' {
                assert_eq!(drawn, b' ', "the picture hides what the map hides");
                continue;
            }
            assert!(
                stood.iter().any(|&s| within_sight(s, pos)),
                "{pos:?} shown, but never within sight of {stood:?}"
            );
            assert_eq!(shown, run.level.tile(pos), "{pos:?} shown as it is");
        }
    }
    let lying: BTreeSet<(u64, u64)> = ["monsters", "items", "heroes"]
        .iter()
        .flat_map(|what| view[what].as_array().unwrap())
        .map(|thing| (thing["x"].as_u64().unwrap(), thing["y"].as_u64().unwrap()))
        .collect();
    for (x, y) in lying {
        let pos = Pos::new(x as u16, y as u16);
        assert!(
            hero.fate == Fate::Alive && within_sight(hero.pos, pos),
            "{pos:?} seen from {:?}",
            hero.pos
        );
    }
}

fn check(run: &Run, catalog: &Catalog) {
    let ids = item_ids(run);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an item is duplicated: {ids:?}");
    let mut cells = BTreeSet::new();
    for m in &run.monsters {
        let template = &catalog.monsters[&m.kind];
        assert!(m.hp > 0 && m.hp <= template.hp, "{m:?}");
        assert!(run.level.passable(m.pos));
        assert!(cells.insert(m.pos), "two on {:?}", m.pos);
    }
    for hero in &run.heroes {
        let c = &hero.character;
        assert!(
            (0..=hero.hp_max()).contains(&hero.hp),
            "{} hp {}",
            hero.name,
            hero.hp
        );
        match hero.fate {
            Fate::Alive => {
                assert!(hero.hp > 0);
                if run.phase == Phase::Playing {
                    assert!(run.level.passable(hero.pos));
                    assert!(cells.insert(hero.pos), "two on {:?}", hero.pos);
                }
            }
            Fate::Died => assert!(hero.hp == 0 && hero.items.is_empty()),
            Fate::Left => {}
        }
        assert!(hero.items.len() <= CARRY_MAX);
        assert_eq!(c.level, level_for(c.total_experience), "{c:?}");
        assert!(c.skill_levels.values().all(|&s| s <= SKILL_MAX));
        for id in [&c.equipped.weapon, &c.equipped.armor]
            .into_iter()
            .flatten()
        {
            assert!(
                hero.items.iter().any(|i| &i.id == id),
                "{id} equipped, not carried"
            );
        }
    }
    match run.phase {
        Phase::Playing => {
            let name = run.turn().expect("someone's turn");
            let hero = run.heroes.iter().find(|h| h.name == name).unwrap();
            assert_eq!(hero.fate, Fate::Alive);
            assert!((1..=4).contains(&run.ap));
        }
        Phase::Over => assert!(run.turn().is_none()),
        Phase::Gathering => unreachable!("the party is seated"),
    }
}

fn play(seed: u64, party: u8, depths: u8, returning: u8, steps: usize) {
    let catalog = Catalog::builtin();
    let mut rng = Rng::seeded(seed, 99);
    let config = Config {
        party,
        depths,
        turn_ms: None,
    };
    let mut run = Run::new(&format!("s{seed}"), seed, &config, &catalog).unwrap();
    let mut before_start = Vec::new();
    for seat in 0..party {
        let name = format!("p{seat}");
        let saved = if seat < returning {
            veteran(&name, &mut rng, &catalog)
        } else {
            Saved::default()
        };
        before_start.push(saved.character.clone().map(|(_, c)| c));
        let account = (seat % 2 == 0).then(|| format!("acct-{seat}"));
        run.join(&name, account.as_deref(), saved).unwrap();
    }
    assert_eq!(run.join("late", None, Saved::default()), Err(Refusal::Full));
    let mut stood: Vec<Vec<Pos>> = run.heroes.iter().map(|h| vec![h.pos]).collect();
    let mut xp: Vec<u64> = run
        .heroes
        .iter()
        .map(|h| h.character.total_experience)
        .collect();
    check(&run, &catalog);
    for _ in 0..steps {
        if run.phase == Phase::Over {
            break;
        }
        let name = run.turn().unwrap().to_owned();
        let h = run.heroes.iter().position(|x| x.name == name).unwrap();
        let (actor, action) = match rng.below(100) {
            0..=11 => (h, random(&run, h, &mut rng)),
            12..=15 if party > 1 => {
                let other = (h + 1 + rng.below(u64::from(party) - 1) as usize) % party as usize;
                (other, random(&run, other, &mut rng))
            }
            16 => (h, Action::End),
            17 if rng.below(20) == 0 => (h, Action::Leave),
            _ => (h, smart(&run, h, &mut rng)),
        };
        let used = match &action {
            Action::Use { item } => Some(item.clone()),
            _ => None,
        };
        let before = run.clone();
        let player = run.heroes[actor].name.clone();
        match run.act(&player, action.clone(), || {
            Ok::<_, Refusal>(catalog.clone())
        }) {
            Err(refusal) => {
                assert_eq!(
                    run, before,
                    "{action:?} refused ({refusal:?}) yet changed the run"
                );
                if actor != h {
                    assert!(
                        matches!(
                            refusal,
                            Refusal::NotYourTurn | Refusal::Illegal("dead" | "left", _)
                        ),
                        "{refusal:?}"
                    );
                }
                continue;
            }
            Ok(()) => assert_eq!(actor, h, "{player} acted out of turn"),
        }
        // Items: where did each one go?
        let (was, now): (BTreeSet<String>, BTreeSet<String>) = (
            item_ids(&before).into_iter().collect(),
            item_ids(&run).into_iter().collect(),
        );
        let descended = run.depth != before.depth;
        for gone in was.difference(&now) {
            let left_behind = descended && before.floor.iter().any(|f| &f.item.id == gone);
            assert!(
                left_behind || used.as_ref() == Some(gone),
                "{gone} vanished after {action:?}"
            );
        }
        for new in now.difference(&was) {
            assert!(
                descended && run.floor.iter().any(|f| &f.item.id == new),
                "{new} appeared"
            );
        }
        for (i, hero) in run.heroes.iter().enumerate() {
            assert!(hero.character.total_experience >= xp[i], "experience fell");
            xp[i] = hero.character.total_experience;
            if descended {
                stood[i].clear();
            }
            // (And where a hero fell this step: they saw it first.)
            if hero.fate == Fate::Alive || before.heroes[i].fate == Fate::Alive {
                stood[i].push(hero.pos);
            }
        }
        check(&run, &catalog);
        for (i, stood) in stood.iter().enumerate() {
            check_view(&run, i, stood);
        }
        if descended {
            assert_eq!(run.depth, before.depth + 1);
        }
    }
    if run.phase != Phase::Over {
        return;
    }
    // The write-back: exactly each account's hero, as it ends.
    let progress = run.progress(&BTreeSet::new());
    let accounts = run.heroes.iter().filter(|h| h.account.is_some()).count();
    assert_eq!(progress.len(), accounts, "guests keep nothing");
    for p in &progress {
        let (seat, hero) = run
            .heroes
            .iter()
            .enumerate()
            .find(|(_, h)| h.name == p.name)
            .unwrap();
        // What the hero holds, and what they brought that a guest holds
        // (a guest keeps nothing: it goes back to its owner).
        // A hero who died carries nothing, and gets nothing back.
        let mut expected = hero.items.clone();
        let lent_back = run
            .heroes
            .iter()
            .filter(|h| h.account.is_none() && hero.fate != Fate::Died);
        for guest in lent_back {
            let theirs = guest.items.iter().filter(|i| hero.brought.contains(&i.id));
            expected.extend(theirs.cloned());
        }
        assert_eq!(p.inventory.items, expected);
        if expected == hero.items {
            assert_eq!(p.character, hero.character);
        }
        assert!(hero.deepest <= run.depth && p.character.deepest >= hero.deepest);
        let runs_before = before_start[seat].as_ref().map_or(0, |c| c.runs);
        let deaths_before = before_start[seat].as_ref().map_or(0, |c| c.death_count);
        assert_eq!(p.character.runs, runs_before + 1);
        assert_eq!(
            p.character.death_count,
            deaths_before + u32::from(hero.fate == Fate::Died)
        );
        if hero.fate == Fate::Died {
            assert!(p.inventory.items.is_empty());
        }
    }
    stale_write_backs(&run);
    let outcome = run.outcome().unwrap();
    assert_eq!(outcome["won"], Value::Bool(run.won));
    assert_eq!(
        outcome["winners"].as_array().unwrap().len(),
        if run.won {
            run.heroes.iter().filter(|h| h.fate == Fate::Alive).count()
        } else {
            0
        }
    );
}

/// With any set of the party's accounts stale (another run wrote them),
/// the write-back of the rest writes no item twice, none a stale character
/// brought (it belongs to the record the other run wrote), and every item
/// a saved character brought that someone still holds exactly once (if
/// they died, only if a saved hero holds it), with
/// nothing equipped that is not carried.
fn stale_write_backs(run: &Run) {
    let accounts: Vec<&str> = run
        .heroes
        .iter()
        .filter_map(|h| h.account.as_deref())
        .collect();
    for mask in 0..1u32 << accounts.len() {
        let stale: BTreeSet<&str> = (0..accounts.len())
            .filter(|i| mask & 1 << i != 0)
            .map(|i| accounts[i])
            .collect();
        let saved = run.progress(&stale);
        assert_eq!(saved.len(), accounts.len() - stale.len());
        let written: Vec<&str> = saved
            .iter()
            .flat_map(|p| p.inventory.items.iter().map(|i| i.id.as_str()))
            .collect();
        let unique: BTreeSet<&str> = written.iter().copied().collect();
        assert_eq!(
            unique.len(),
            written.len(),
            "an item written twice: {written:?}"
        );
        let held: BTreeSet<&str> = run
            .heroes
            .iter()
            .flat_map(|h| h.items.iter().map(|i| i.id.as_str()))
            .collect();
        for hero in &run.heroes {
            let Some(account) = hero.account.as_deref() else {
                continue;
            };
            for id in &hero.brought {
                let count = written.iter().filter(|w| **w == id).count();
                let held_by_saved = run.heroes.iter().any(|h| {
                    h.account.as_deref().is_some_and(|a| !stale.contains(a))
                        && h.items.iter().any(|i| &i.id == id)
                });
                if stale.contains(account) {
                    assert_eq!(count, 0, "{id}, brought by stale {account}, written");
                } else if hero.fate == Fate::Died {
                    // Lost with its owner, unless a saved hero picked it up.
                    assert_eq!(
                        count,
                        usize::from(held_by_saved),
                        "{id} of the dead {account}"
                    );
                } else if held.contains(id.as_str()) {
                    assert_eq!(
                        count, 1,
                        "{id}, brought by {account} and held, written {count} times"
                    );
                }
            }
        }
        for p in &saved {
            let equipped = &p.character.equipped;
            for id in [&equipped.weapon, &equipped.armor].into_iter().flatten() {
                assert!(
                    p.inventory.items.iter().any(|i| &i.id == id),
                    "{id} equipped, not written"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_runs_keep_the_invariants(
        seed in any::<u64>(),
        party in 1u8..=4,
        depths in 1u8..=4,
        returning in 0u8..=4,
    ) {
        play(seed, party, depths, returning, 300);
    }
}

/// Runs do end, and the bot gets deep: the property test's runs are not
/// all stuck on depth 1.
#[test]
fn the_bot_finishes_runs_and_descends() {
    let (mut deep, mut over) = (0, 0);
    for seed in 0..200 {
        let catalog = Catalog::builtin();
        let config = Config {
            party: 2,
            depths: 3,
            turn_ms: None,
        };
        let mut run = Run::new("t", seed, &config, &catalog).unwrap();
        run.join("a", Some("acct-a"), Saved::default()).unwrap();
        run.join("b", None, Saved::default()).unwrap();
        let mut rng = Rng::seeded(seed, 7);
        for _ in 0..3000 {
            let Some(name) = run.turn().map(str::to_owned) else {
                break;
            };
            let h = run.heroes.iter().position(|x| x.name == name).unwrap();
            let action = smart(&run, h, &mut rng);
            if run
                .act(&name, action, || Ok::<_, Refusal>(catalog.clone()))
                .is_err()
            {
                run.act(&name, Action::End, || Ok::<_, Refusal>(catalog.clone()))
                    .unwrap();
            }
        }
        deep += usize::from(run.depth >= 2);
        over += usize::from(run.phase == Phase::Over);
    }
    assert!(deep > 100, "{deep} of 200 runs got below depth 1");
    assert!(over > 150, "{over} of 200 runs ended");
}

#[test]
fn bad_configs_are_refused() {
    let catalog = Catalog::builtin();
    for (party, depths) in [(0, 5), (5, 5), (1, 0), (1, 11)] {
        let config = Config {
            party,
            depths,
            turn_ms: None,
        };
        assert!(matches!(
            Run::new("x", 1, &config, &catalog),
            Err(Refusal::Malformed("bad_config", _))
        ));
    }
    assert!(Run::new("x", 1, &Config::default(), &Catalog::default()).is_err());
}

/// A shot at the shooter's own cell is refused (and returns).
#[test]
fn shooting_yourself_is_refused() {
    let catalog = Catalog::builtin();
    let bow = Item::new("old.bow".into(), "bow", &catalog.items["bow"]);
    let mut character = Character::new("robin");
    character.equipped.weapon = Some(bow.id.clone());
    let saved = Saved {
        character: Some((1, character)),
        inventory: Some((1, Inventory { items: vec![bow] })),
    };
    let mut run = Run::new("s", 3, &Config::default(), &catalog).unwrap();
    run.join("robin", Some("acct"), saved).unwrap();
    let at = run.heroes[0].pos;
    let shot = Action::Shoot {
        x: at.x.into(),
        y: at.y.into(),
    };
    let before = run.clone();
    let refused = run.act("robin", shot, || Ok::<_, Refusal>(catalog.clone()));
    assert_eq!(
        refused,
        Err(Refusal::Illegal(
            "no_target",
            "you cannot shoot yourself".into()
        ))
    );
    assert_eq!(run, before);
}
