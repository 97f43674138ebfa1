//! The roguelike on the guest SDK: the rules in [`crate::run`], and around
//! them the storage.
//!
//! - `characters/{account}` and `inventory/{account}`: cold records read
//!   when an account joins, written back together at the end of the run in
//!   one transaction for the whole party, each expecting the version the
//!   run read. A character some other run wrote meanwhile is not
//!   overwritten: its progress from this run is dropped (the outcome says
//!   `"saved": false`; the items it brought leave the others' inventories)
//!   and the others are written in a second transaction.
//! - `monsters/{id}`, `items/{id}` and the index `catalogs/basic`: the
//!   templates, installed once and read through hot caches (two hours).
//! - Hot leaderboards `depth` (deepest depth reached) and `kills`, for
//!   accounts; the cold history stream `runs`: every finished run.

use crate::catalog::{Catalog, Index, ItemTemplate, MonsterTemplate};
use crate::character::{Character, Inventory};
use crate::run::{Action, Config, Phase, Run, Saved};
use hoard_sdk::rpc::{Empty, Page, object, within};
use hoard_sdk::{
    Cache, CacheStats, GameError, History, Info, Install, Leaderboard, Player, Records, Router,
    Rules, Session, TurnClock, cold, types,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

const CHARACTERS: Records<Character> = Records::new("characters");
const INVENTORIES: Records<Inventory> = Records::new("inventory");
const DEPTH: Leaderboard = Leaderboard::new("depth");
const KILLS: Leaderboard = Leaderboard::new("kills");
const RUNS: History<Value> = History::new("runs");
/// The catalog the plugin ships, under this key of `catalogs`.
const CATALOG: &str = "basic";
/// Templates stay in hot two hours after a read.
const TEMPLATE_TTL_MS: u64 = 2 * 60 * 60 * 1000;

fn monsters() -> Cache<MonsterTemplate> {
    Cache::new("monsters", TEMPLATE_TTL_MS)
}

fn items() -> Cache<ItemTemplate> {
    Cache::new("items", TEMPLATE_TTL_MS)
}

fn catalogs() -> Cache<Index> {
    Cache::new("catalogs", TEMPLATE_TTL_MS)
}

/// Writes the built-in templates to cold, unless they are there.
fn install() -> Result<(), GameError> {
    let builtin = Catalog::builtin();
    let mut data = Install::new();
    for (id, monster) in &builtin.monsters {
        data.put(monsters().records(), id, monster)?;
    }
    for (id, item) in &builtin.items {
        data.put(items().records(), id, item)?;
    }
    data.put(catalogs().records(), CATALOG, &builtin.index())?;
    data.once(catalogs().records(), CATALOG)?;
    Ok(())
}

/// Every template, read through the caches.
fn catalog() -> Result<Catalog, GameError> {
    let missing = |what: String| GameError::illegal("no_template", format!("{what} is missing"));
    let index = catalogs()
        .get(CATALOG)?
        .ok_or_else(|| missing(format!("the catalog {CATALOG:?}")))?;
    let mut catalog = Catalog::default();
    for id in index.monsters {
        let template = monsters().get(&id)?;
        let template = template.ok_or_else(|| missing(format!("monster {id:?}")))?;
        catalog.monsters.insert(id, template);
    }
    for id in index.items {
        let template = items().get(&id)?;
        let template = template.ok_or_else(|| missing(format!("item {id:?}")))?;
        catalog.items.insert(id, template);
    }
    Ok(catalog)
}

/// A session's state: the run and its turn clock, if it has one.
#[derive(Serialize, Deserialize)]
struct Game {
    run: Run,
    clock: Option<TurnClock>,
}

impl Game {
    /// After every change: the clock restarts for whoever must move, and a
    /// run that just ended is written back, ranked and archived.
    fn moved(&mut self) -> Result<Option<Value>, GameError> {
        if let Some(clock) = &mut self.clock {
            clock.restart(self.run.phase == Phase::Playing)?;
        }
        let Some(mut outcome) = self.run.outcome() else {
            return Ok(None);
        };
        let saved = write_back(&self.run)?;
        // The boards rank what was saved.
        for hero in &self.run.heroes {
            if saved.get(&hero.name) != Some(&Value::Bool(true)) {
                continue;
            }
            let depth = f64::from(hero.deepest);
            if DEPTH
                .rank(&hero.name)?
                .is_none_or(|best| best.score < depth)
            {
                DEPTH.set(&hero.name, depth)?;
            }
            KILLS.add(&hero.name, f64::from(hero.kills))?;
        }
        outcome["saved"] = Value::Object(saved);
        RUNS.append(&outcome)?;
        Ok(Some(outcome))
    }
}

fn put<T: Serialize>(collection: &str, key: &str, value: &T, expected: u64) -> cold::Write {
    cold::Write::Put(cold::PutWrite {
        collection: collection.into(),
        key: key.into(),
        body: serde_json::to_string(value).expect("a character serializes"),
        expected_version: Some(expected),
    })
}

/// The version record `key` of `records` is at (0: absent).
fn version<T: Serialize + serde::de::DeserializeOwned>(
    records: &Records<T>,
    key: &str,
) -> Result<u64, GameError> {
    Ok(records.get(key)?.map_or(0, |r| r.version))
}

/// Writes each account's character and inventory back in one transaction.
/// If another run wrote one of them since this run read it, that
/// character's progress is dropped (its items go back to their owners:
/// [`Run::progress`]) and the rest go in another transaction. Returns, by
/// name, whether each account's progress was saved.
fn write_back(run: &Run) -> Result<Map<String, Value>, GameError> {
    let mut stale: BTreeSet<&str> = BTreeSet::new();
    loop {
        let party = run.progress(&stale);
        if party.is_empty() {
            break;
        }
        let writes: Vec<cold::Write> = party
            .iter()
            .flat_map(|p| {
                [
                    put(
                        CHARACTERS.collection(),
                        p.account,
                        &p.character,
                        p.stored.character,
                    ),
                    put(
                        INVENTORIES.collection(),
                        p.account,
                        &p.inventory,
                        p.stored.inventory,
                    ),
                ]
            })
            .collect();
        let conflict = match cold::transact(&writes) {
            Ok(_) => break,
            Err(conflict @ types::Error::Conflict(_)) => conflict,
            Err(error) => return Err(error.into()),
        };
        let known = stale.len();
        for p in &party {
            let current = (
                version(&CHARACTERS, p.account)?,
                version(&INVENTORIES, p.account)?,
            );
            if current != (p.stored.character, p.stored.inventory) {
                stale.insert(p.account);
            }
        }
        if stale.len() == known {
            // Nobody's records moved, yet the transaction conflicted.
            return Err(conflict.into());
        }
    }
    Ok(run
        .heroes
        .iter()
        .filter_map(|h| {
            let account = h.account.as_deref()?;
            Some((h.name.clone(), json!(!stale.contains(account))))
        })
        .collect())
}

/// `leaderboard`'s input: which board (`depth` or `kills`) and how many
/// rows (1 to 100).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Board {
    board: String,
    #[serde(default = "Board::default_n")]
    n: u64,
}

impl Board {
    fn default_n() -> u64 {
        10
    }
}

fn stats(stats: CacheStats) -> Value {
    json!({"hits": stats.hits, "misses": stats.misses, "hit_rate": stats.hit_rate()})
}

struct Roguelike;

impl Rules for Roguelike {
    type State = Game;
    type Action<'a> = Action;
    /// A character and its inventory move with their account.
    const ACCOUNT_COLLECTIONS: &'static [&'static str] = &["characters", "inventory"];

    fn describe() -> Info {
        Info {
            name: "roguelike".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A cooperative ASCII roguelike: one to four heroes go down a seeded dungeon; characters persist across runs.".into(),
            min_players: 1,
            max_players: u32::from(crate::run::PARTY_MAX),
            rpcs: vec![
                "character".into(),
                "leaderboard".into(),
                "runs".into(),
                "templates".into(),
                "cache".into(),
            ],
        }
    }

    fn create(session: &Session, config: Value) -> Result<Game, GameError> {
        let config: Config = object(config, "bad_config")?;
        let clock = match config.turn_ms {
            None => None,
            Some(ms @ 1_000..=86_400_000) => Some(TurnClock::new(ms)),
            Some(_) => {
                let message = "turn_ms must be 1000 to 86400000";
                return Err(GameError::malformed("bad_config", message));
            }
        };
        install()?;
        let run = Run::new(&session.id, session.seed, &config, &catalog()?)?;
        Ok(Game { run, clock })
    }

    fn join(game: &mut Game, player: &Player) -> Result<(), GameError> {
        let saved = match &player.account {
            None => Saved::default(),
            Some(account) => Saved {
                character: CHARACTERS.get(account)?.map(|r| (r.version, r.value)),
                inventory: INVENTORIES.get(account)?.map(|r| (r.version, r.value)),
            },
        };
        game.run
            .join(&player.name, player.account.as_deref(), saved)?;
        if game.run.phase == Phase::Playing {
            game.moved()?;
        }
        Ok(())
    }

    fn act(game: &mut Game, player: &str, action: Action) -> Result<Option<Value>, GameError> {
        game.run.act(player, action, catalog)?;
        game.moved()
    }

    /// The turn clock ran out: the turn passes. A late alarm does nothing.
    fn on_alarm(game: &mut Game, payload: Value) -> Result<Option<Value>, GameError> {
        let due = game.clock.as_ref().is_some_and(|c| c.is_due(&payload));
        if due && game.run.timeout() {
            return game.moved();
        }
        Ok(None)
    }

    fn view(game: &Game, player: Option<&str>) -> impl Serialize {
        let mut view = game.run.view(player);
        if let Some(clock) = &game.clock {
            view["turn_ms"] = json!(clock.turn_ms);
        }
        view
    }

    /// `character`: the caller's character and inventory (an account's;
    /// `null` before its first run). `leaderboard` (`{"board": "depth" or
    /// "kills", "n"}`). `runs` (`{"after", "limit"}`): finished runs,
    /// oldest first. `templates`: the catalog. `cache`: the template
    /// caches' hits and misses.
    fn rpc(name: &str, caller: Option<&Player>, input: Value) -> Result<Value, GameError> {
        Router::new(name, caller, input)
            .on("character", |caller, _: Empty| {
                let Some(account) = caller.and_then(|c| c.account.as_deref()) else {
                    return Err(GameError::illegal(
                        "no_account",
                        "characters belong to accounts: call with an account's token",
                    ));
                };
                let character = CHARACTERS.get(account)?;
                let inventory = INVENTORIES.get(account)?;
                Ok(json!({
                    "character": character.map(|r| r.value),
                    "inventory": inventory.map_or(Vec::new(), |r| r.value.items),
                }))
            })
            .on("leaderboard", |_, input: Board| {
                let board = match input.board.as_str() {
                    "depth" => DEPTH,
                    "kills" => KILLS,
                    other => {
                        let message = format!("no board {other:?}: \"depth\" or \"kills\"");
                        return Err(GameError::malformed("bad_input", message));
                    }
                };
                let rows = board.top(within("n", input.n, 1..=100)? as u32)?;
                let rows = rows
                    .into_iter()
                    .map(|e| json!({"rank": e.rank, "player": e.member, "score": e.score}));
                Ok(json!({"board": input.board, "rows": rows.collect::<Vec<_>>()}))
            })
            .on("runs", |_, page: Page| {
                let limit = page.limit()?;
                let runs = RUNS.read(page.after, limit)?;
                let runs = runs
                    .into_iter()
                    .map(|e| json!({"seq": e.seq, "outcome": e.value}));
                Ok(json!({"runs": runs.collect::<Vec<_>>()}))
            })
            .on("templates", |_, _: Empty| catalog())
            .on("cache", |_, _: Empty| {
                let (m, i, c) = (monsters().stats()?, items().stats()?, catalogs().stats()?);
                let all = CacheStats {
                    hits: m.hits + i.hits + c.hits,
                    misses: m.misses + i.misses + c.misses,
                };
                Ok(json!({
                    "monsters": stats(m), "items": stats(i), "catalogs": stats(c),
                    "all": stats(all),
                }))
            })
            .finish()
    }
}

hoard_sdk::export_rules!(Roguelike);
