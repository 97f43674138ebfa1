//! A tabletop table: each player places a knight or a wizard, the GM a
//! hidden goblin; then each round every player moves their token a step, rolls
//! (a d20 with advantage, damage) and chats; the GM reveals the goblin,
//! has it attack someone, and closes the room at the end.

use crate::{Host, Seat};
use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

/// The ids of the tokens owned by `name` in `view`.
fn tokens_of<'a>(view: &'a Value, name: &str) -> Vec<&'a str> {
    let tokens = view["tokens"].as_array().into_iter().flatten();
    tokens
        .filter(|t| t["owner"] == name)
        .filter_map(|t| t["id"].as_str())
        .collect()
}

/// Plays one room of `rounds` rounds with the accounts of `table` (the
/// first is the GM): how many rolls the room logged.
pub async fn play(host: &Host, table: &[String], rounds: u32) -> Result<usize> {
    ensure!(table.len() >= 2, "a GM and at least one player");
    let session = host
        .create("tabletop", json!({"width": 12, "height": 12}))
        .await?;
    let mut seats: Vec<Seat> = Vec::new();
    for token in table {
        seats.push(host.join(&session, token).await?);
    }
    let (gm, players) = seats.split_first().context("a GM")?;
    let goblin = host
        .act(gm, &json!({"type": "add_token", "name": "Snik", "x": 6, "y": 6, "template": "goblin", "hidden": true}))
        .await?;
    let goblin = tokens_of(&goblin, &gm.name)[0].to_owned();
    for (n, player) in players.iter().enumerate() {
        let template = ["knight", "wizard"][n % 2];
        let add = json!({"type": "add_token", "name": format!("{template} of {}", player.name), "x": n, "y": 0, "template": template});
        host.act(player, &add).await?;
    }
    for round in 0..rounds {
        for player in players {
            let view = host.view(player).await?;
            let mine = tokens_of(&view, &player.name)[0].to_owned();
            let token = view["tokens"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["id"] == mine.as_str());
            let (x, y) = token.map_or((0, 0), |t| {
                (t["x"].as_u64().unwrap_or(0), t["y"].as_u64().unwrap_or(0))
            });
            let moved = json!({"type": "move_token", "token": mine, "x": (x + 1) % 12, "y": (y + u64::from(round % 2)) % 12});
            host.act(player, &moved).await?;
            host.act(
                player,
                &json!({"type": "roll", "dice": "2d20kh1+3", "label": "to hit"}),
            )
            .await?;
            host.act(
                player,
                &json!({"type": "roll", "dice": "1d8+2", "label": "damage"}),
            )
            .await?;
            host.act(
                player,
                &json!({"type": "chat", "text": format!("round {round}: onwards!")}),
            )
            .await?;
        }
        if round == rounds / 2 {
            host.act(gm, &json!({"type": "reveal", "token": goblin}))
                .await?;
        }
        if round > rounds / 2 {
            let view = host.view(gm).await?;
            let target = tokens_of(&view, &players[0].name)[0].to_owned();
            let attack =
                json!({"type": "attack", "token": goblin, "target": target, "attack": "Scimitar"});
            host.act(gm, &attack).await?;
        }
    }
    let view = host.act(gm, &json!({"type": "close"})).await?;
    ensure!(view["closed"] == true, "the room closed");
    let log = host
        .rpc(
            "tabletop",
            "rolls",
            json!({"room": session, "limit": 100}),
            None,
        )
        .await?;
    Ok(log["rolls"].as_array().map_or(0, Vec::len))
}
