//! Roguelike explorers. Each decides from its own view alone (the map it
//! remembers, what it sees now): fight a monster next to it, drink a potion
//! when low, pick up what it stands on, wield a better weapon, walk to what
//! it sees, take the stairs, else explore towards the unknown.

use crate::{Host, Seat, refused_with};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};

type Cell = (i64, i64);

const DIRS: [(&str, Cell); 8] = [
    ("n", (0, -1)),
    ("ne", (1, -1)),
    ("e", (1, 0)),
    ("se", (1, 1)),
    ("s", (0, 1)),
    ("sw", (-1, 1)),
    ("w", (-1, 0)),
    ("nw", (-1, -1)),
];

fn at(thing: &Value) -> Cell {
    (
        thing["x"].as_i64().unwrap_or(-1),
        thing["y"].as_i64().unwrap_or(-1),
    )
}

fn cells(view: &Value, what: &str) -> Vec<Cell> {
    view[what]
        .as_array()
        .into_iter()
        .flatten()
        .map(at)
        .collect()
}

/// The map a view remembers: `' '` for cells never seen.
struct Known(Vec<Vec<u8>>);

impl Known {
    fn of(view: &Value) -> Known {
        let rows = view["map"]["rows"].as_array().into_iter().flatten();
        Known(
            rows.map(|r| r.as_str().unwrap_or("").as_bytes().to_vec())
                .collect(),
        )
    }

    fn tile(&self, (x, y): Cell) -> u8 {
        let row = usize::try_from(y).ok().and_then(|y| self.0.get(y));
        row.and_then(|r| usize::try_from(x).ok().and_then(|x| r.get(x)))
            .copied()
            .unwrap_or(b' ')
    }

    fn walkable(&self, cell: Cell) -> bool {
        matches!(self.tile(cell), b'.' | b'>')
    }

    /// The first step of a shortest walk over known floor to the nearest
    /// cell `goal` accepts, around `blocked` cells.
    fn way(
        &self,
        from: Cell,
        blocked: &[Cell],
        goal: impl Fn(Cell) -> bool,
    ) -> Option<&'static str> {
        let mut first: HashMap<Cell, &'static str> = HashMap::new();
        let mut todo = VecDeque::from([from]);
        while let Some(cell) = todo.pop_front() {
            for (name, (dx, dy)) in DIRS {
                let next = (cell.0 + dx, cell.1 + dy);
                if next == from || first.contains_key(&next) || !self.walkable(next) {
                    continue;
                }
                let step = first.get(&cell).copied().unwrap_or(name);
                if goal(next) {
                    return Some(step);
                }
                if !blocked.contains(&next) {
                    first.insert(next, step);
                    todo.push_back(next);
                }
            }
        }
        None
    }
}

fn best_damage(item: &Value) -> i64 {
    item["effect"]["damage"][1].as_i64().unwrap_or(0)
}

/// The action for the hero whose view this is, on their turn.
pub fn choose(view: &Value) -> Value {
    let you = &view["you"];
    let me = at(you);
    let ap = view["ap"].as_u64().unwrap_or(0);
    let monsters = cells(view, "monsters");
    let items = cells(view, "items");
    let near = |c: Cell| (c.0 - me.0).abs() <= 1 && (c.1 - me.1).abs() <= 1 && c != me;
    if let Some(&m) = monsters.iter().find(|&&m| near(m)) {
        if ap < 2 {
            return json!({"type": "end"});
        }
        let dir = DIRS.iter().find(|(_, d)| (me.0 + d.0, me.1 + d.1) == m);
        return json!({"type": "attack", "dir": dir.map(|(n, _)| *n)});
    }
    let inventory: Vec<&Value> = you["inventory"].as_array().into_iter().flatten().collect();
    let hp = you["hp"].as_i64().unwrap_or(0);
    if hp * 3 < you["hp_max"].as_i64().unwrap_or(0)
        && let Some(potion) = inventory.iter().find(|i| i["effect"]["kind"] == "potion")
    {
        return json!({"type": "use", "item": potion["id"]});
    }
    let room = inventory.len() < 12;
    if room && items.contains(&me) {
        return json!({"type": "pickup"});
    }
    let wielded = &you["equipped"]["weapon"];
    let held = inventory
        .iter()
        .find(|i| &i["id"] == wielded)
        .map_or(0, |i| best_damage(i));
    let better = inventory.iter().find(|i| {
        i["effect"]["kind"] == "weapon" && i["effect"]["range"] == 0 && best_damage(i) > held
    });
    if let Some(weapon) = better {
        return json!({"type": "equip", "item": weapon["id"]});
    }
    let known = Known::of(view);
    let mut blocked = monsters.clone();
    blocked.extend(cells(view, "heroes").into_iter().filter(|&c| c != me));
    let step = known
        .way(me, &blocked, |c| monsters.contains(&c))
        .or_else(|| {
            room.then(|| known.way(me, &blocked, |c| items.contains(&c)))
                .flatten()
        });
    if let Some(dir) = step {
        return json!({"type": "move", "dir": dir});
    }
    if known.tile(me) == b'>' {
        return json!({"type": "descend"});
    }
    let unknown_next_to = |c: Cell| {
        DIRS.iter()
            .any(|(_, d)| known.tile((c.0 + d.0, c.1 + d.1)) == b' ')
    };
    let step = known
        .way(me, &blocked, |c| known.tile(c) == b'>')
        .or_else(|| known.way(me, &blocked, unknown_next_to));
    match step {
        Some(dir) => json!({"type": "move", "dir": dir}),
        None => json!({"type": "end"}),
    }
}

/// Whose turn it is in a run, from any view of it.
pub fn turn(view: &Value) -> Option<&str> {
    view["turn"].as_str()
}

/// Plays one run with the accounts of `party` down a dungeon of `depths`
/// depths: its outcome. A hero whose chosen action is refused ends its
/// turn; after 4000 actions the heroes leave.
pub async fn play(host: &Host, party: &[String], depths: u8) -> Result<Value> {
    let config = json!({"party": party.len(), "depths": depths});
    let session = host.create("roguelike", config).await?;
    let mut seats: Vec<Seat> = Vec::new();
    for token in party {
        seats.push(host.join(&session, token).await?);
    }
    for actions in 0.. {
        let state = host.session(&session).await?;
        if state["finished"] == true {
            return Ok(state["outcome"].clone());
        }
        let name = turn(&state["view"]).context("whose turn")?;
        let seat = seats.iter().find(|s| s.name == name).context("a seat")?;
        let action = match actions {
            0..4_000 => choose(&host.view(seat).await?),
            4_000..5_000 => json!({"type": "leave"}),
            _ => bail!("roguelike session {session} did not end"),
        };
        if let Err(error) = host.act(seat, &action).await {
            let status = error.downcast_ref::<crate::Refused>().map(|r| r.status);
            if !matches!(status, Some(400..500)) || refused_with(&error, "not_your_turn") {
                return Err(error.context(format!("{name} playing {action}")));
            }
            host.act(seat, &json!({"type": "end"})).await?;
        }
    }
    unreachable!()
}
