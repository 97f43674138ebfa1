//! Four Hokm bots. Each reads its own view: the Hakem names the suit of the
//! first card it holds; a player follows the suit led when it can, else
//! plays its first card.

use crate::{Host, Seat};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The action for the seat whose turn it is, from its own view.
pub fn choose(view: &Value) -> Result<Value> {
    let hand: Vec<&str> = view["you"]["hand"]
        .as_array()
        .context("a hand in my view")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let first = *hand.first().context("a card in my hand")?;
    let suit = |card: &str| card[card.len() - 1..].to_owned();
    if view["phase"] == "choosing_trump" {
        return Ok(json!({"type": "trump", "suit": suit(first)}));
    }
    let led = view["trick"][0]["card"].as_str().map(suit);
    let card = led
        .and_then(|led| hand.iter().find(|c| c.ends_with(&led)).copied())
        .unwrap_or(first);
    Ok(json!({"type": "play", "card": card}))
}

/// Plays one game with the four accounts of `players`: its outcome.
pub async fn play(host: &Host, players: &[String]) -> Result<Value> {
    let session = host.create("hokm", json!({})).await?;
    let mut seats: Vec<Seat> = Vec::new();
    for token in players.iter().take(4) {
        seats.push(host.join(&session, token).await?);
    }
    for _ in 0..2_000 {
        let state = host.session(&session).await?;
        if state["finished"] == true {
            return Ok(state["outcome"].clone());
        }
        let turn = state["view"]["turn"].as_u64().context("whose turn")? as usize;
        let seat = seats.get(turn).context("the seat whose turn it is")?;
        let action = choose(&host.view(seat).await?)?;
        host.act(seat, &action).await?;
    }
    bail!("hokm session {session} did not end in 2000 moves")
}
