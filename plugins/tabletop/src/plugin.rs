//! The tabletop room on the guest SDK: the rules in [`crate::room`], and
//! around them the templates (cold records read through a hot cache) and
//! the audit log of every roll (a cold history stream per room).

use crate::room::{Action, Attack, Config, Roll, Room, StatBlock, check_message};
use hoard_sdk::rpc::{Empty, object, within};
use hoard_sdk::{
    Cache, GameError, History, Info, Install, Player, Records, Router, Rules, Session, cold,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Templates stay in hot two hours after a read (seed 002's TTL for game
/// system templates).
const TEMPLATE_TTL_MS: u64 = 2 * 60 * 60 * 1000;
/// Collection of stat blocks, keyed `system:template`.
const TEMPLATES: &str = "templates";
/// One record per game system whose templates are in cold.
const SYSTEMS: Records<Value> = Records::new("systems");

fn templates() -> Cache<StatBlock> {
    Cache::new(TEMPLATES, TEMPLATE_TTL_MS)
}

fn roll_log(room: &str) -> History<Roll> {
    History::named(format!("rolls:{room}"))
}

fn block(name: &str, hp: i64, ac: i64, speed: u16, attack: (&str, &str, &str)) -> StatBlock {
    StatBlock {
        name: name.into(),
        hp,
        ac,
        speed,
        attacks: vec![Attack {
            name: attack.0.into(),
            hit: attack.1.into(),
            damage: attack.2.into(),
        }],
    }
}

/// The systems the plugin ships, written to cold the first time a room
/// uses them.
fn built_in(system: &str) -> Option<Vec<(&'static str, StatBlock)>> {
    (system == "basic").then(|| {
        vec![
            (
                "goblin",
                block("Goblin", 7, 13, 6, ("Scimitar", "1d20+4", "1d6+2")),
            ),
            (
                "orc",
                block("Orc", 15, 13, 6, ("Greataxe", "1d20+5", "1d12+3")),
            ),
            (
                "wolf",
                block("Wolf", 11, 13, 8, ("Bite", "1d20+4", "2d4+2")),
            ),
            (
                "knight",
                block("Knight", 52, 18, 6, ("Longsword", "1d20+5", "1d8+3")),
            ),
            (
                "wizard",
                block("Wizard", 40, 12, 6, ("Fire bolt", "1d20+6", "2d10")),
            ),
        ]
    })
}

/// Makes sure `system`'s templates are in cold: a built-in system is
/// written once, in one transaction.
fn install(system: &str) -> Result<(), GameError> {
    if SYSTEMS.get(system)?.is_some() {
        return Ok(());
    }
    let Some(blocks) = built_in(system) else {
        return Err(GameError::malformed(
            "bad_config",
            format!("no game system {system:?}: try \"basic\""),
        ));
    };
    let mut data = Install::new();
    for (id, block) in &blocks {
        data.put(templates().records(), &format!("{system}:{id}"), block)?;
    }
    let names: Vec<&str> = blocks.iter().map(|(id, _)| *id).collect();
    data.put(&SYSTEMS, system, &json!({"templates": names}))?;
    data.once(&SYSTEMS, system)?;
    Ok(())
}

/// `templates`' input: the system (default `basic`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct System {
    #[serde(default = "System::basic")]
    system: String,
}

impl System {
    fn basic() -> String {
        "basic".into()
    }
}

/// `rolls`' input: a room's rolls after `after`, at most `limit` (1 to 100).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rolls {
    room: String,
    #[serde(default)]
    after: u64,
    #[serde(default = "Rolls::default_limit")]
    limit: u64,
}

impl Rolls {
    fn default_limit() -> u64 {
        50
    }
}

struct Tabletop;

impl Rules for Tabletop {
    type State = Room;
    type Action<'a> = Action;

    fn describe() -> Info {
        Info {
            name: "tabletop".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A tabletop room: a grid board with tokens, audited dice, chat and stat-block templates.".into(),
            min_players: 1,
            max_players: crate::room::PLAYERS_MAX as u32,
            rpcs: vec!["templates".into(), "rolls".into(), "cache".into()],
        }
    }

    fn create(session: &Session, config: Value) -> Result<Room, GameError> {
        let config: Config = object(config, "bad_config")?;
        let room = Room::new(&session.id, session.seed, config)?;
        install(&room.system)?;
        Ok(room)
    }

    fn join(room: &mut Room, player: &Player) -> Result<(), GameError> {
        Ok(room.join(&player.name)?)
    }

    fn act(room: &mut Room, player: &str, action: Action) -> Result<Option<Value>, GameError> {
        let stats = match room.template_key(&action) {
            Some(key) => templates().get(&key)?,
            None => None,
        };
        let rolls = room.act(player, action, stats)?;
        let log = roll_log(&room.id);
        for roll in &rolls {
            log.append(roll)?;
        }
        Ok(room.outcome())
    }

    /// An echo and a shout need no room: the room's state (kilobytes of
    /// JSON) is not even read for them.
    fn act_stateless(player: &str, action: &Action) -> Option<Result<(), GameError>> {
        match action {
            Action::Echo { text } => Some(check_message(text).map_err(GameError::from)),
            Action::Shout { text } => Some(
                check_message(text)
                    .map_err(GameError::from)
                    .and_then(|()| hoard_sdk::tell_session(&json!({"shout": text, "by": player}))),
            ),
            _ => None,
        }
    }

    fn view(room: &Room, player: Option<&str>) -> impl Serialize {
        room.view(player)
    }

    /// `templates` (`{"system"}`): a system's stat blocks. `rolls`
    /// (`{"room", "after", "limit"}`): a room's audit log of rolls.
    /// `cache`: the template cache's hits, misses and hit rate.
    fn rpc(name: &str, caller: Option<&Player>, input: Value) -> Result<Value, GameError> {
        Router::new(name, caller, input)
            .on("templates", |_, input: System| {
                let prefix = format!("{}:", input.system);
                let page = cold::list(TEMPLATES, &prefix, None, 100)?;
                let blocks: Vec<Value> = page
                    .records
                    .iter()
                    .map(|r| {
                        let block: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                        json!({"id": &r.key[prefix.len()..], "stats": block})
                    })
                    .collect();
                Ok(json!({"system": input.system, "templates": blocks}))
            })
            .on("rolls", |_, input: Rolls| {
                let limit = within("limit", input.limit, 1..=100)? as u32;
                let rolls = roll_log(&input.room).read(input.after, limit)?;
                Ok(json!({"rolls": rolls.into_iter().map(|e| e.value).collect::<Vec<_>>()}))
            })
            .on("cache", |_, _: Empty| {
                let stats = templates().stats()?;
                Ok(json!({"hits": stats.hits, "misses": stats.misses, "hit_rate": stats.hit_rate()}))
            })
            .finish()
    }
}

hoard_sdk::export_rules!(Tabletop);
