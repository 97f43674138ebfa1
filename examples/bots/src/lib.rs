//! Bots that play hoard's games over its HTTP API, as any client would:
//! they register accounts, create sessions, join them and play from their
//! own views until the game ends.
//!
//! - [`hokm`]: four players; each plays a legal card of their own hand.
//! - [`roguelike`]: explorers that fight what they see, pick things up and
//!   take the stairs down ([`roguelike::choose`] decides from a view alone).
//! - [`tabletop`]: a GM who places tokens and a hidden goblin, and players
//!   who move their tokens, roll dice and chat.
//! - [`socket`]: a session's events over its WebSocket, and actions sent
//!   on it.
//!
//! `cargo run -p hoard-bots -- --help` runs them against a host.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

pub mod hokm;
pub mod roguelike;
pub mod socket;
pub mod tabletop;

/// A hoard host, as a client sees it.
#[derive(Clone)]
pub struct Host {
    base: String,
    http: reqwest::Client,
}

/// A refusal: the HTTP status and the error's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for Refused {}

/// A seat in a session: the player's name and token.
#[derive(Clone, Debug)]
pub struct Seat {
    pub session: String,
    pub name: String,
    pub token: String,
}

impl Host {
    /// The host at `base` (`http://127.0.0.1:7878`).
    pub fn new(base: &str) -> Host {
        Host {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Sends a request; the body of a 2xx answer, a [`Refused`] otherwise.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| path.to_owned())?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let text = |field: &str| body["error"][field].as_str().unwrap_or_default().to_owned();
        Err(Refused {
            status,
            code: text("code"),
            message: text("message"),
        }
        .into())
    }

    async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body), token)
            .await
    }

    /// Logs in as account `name`, registering it first if it is new: the
    /// account's token.
    pub async fn account(&self, name: &str, secret: &str) -> Result<String> {
        let credentials = json!({"name": name, "secret": secret});
        if let Err(error) = self.post("/v1/accounts", &credentials, None).await {
            match error.downcast_ref::<Refused>() {
                Some(refused) if refused.status == 409 => {} // registered before
                _ => return Err(error.context(format!("registering {name}"))),
            }
        }
        let login = self.post("/v1/login", &credentials, None).await?;
        Ok(login["token"].as_str().context("a login token")?.to_owned())
    }

    /// Creates a session of `game` with `config`: its id.
    pub async fn create(&self, game: &str, config: Value) -> Result<String> {
        let path = format!("/v1/games/{game}/sessions");
        let created = self.post(&path, &json!({"config": config}), None).await?;
        Ok(created["session"]
            .as_str()
            .context("a session id")?
            .to_owned())
    }

    /// Joins `session` as the account of `account_token`.
    pub async fn join(&self, session: &str, account_token: &str) -> Result<Seat> {
        let path = format!("/v1/sessions/{session}/join");
        let joined = self.post(&path, &json!({}), Some(account_token)).await?;
        Ok(Seat {
            session: session.into(),
            name: joined["player"].as_str().unwrap_or_default().to_owned(),
            token: joined["token"]
                .as_str()
                .context("a player token")?
                .to_owned(),
        })
    }

    /// Plays `action` as `seat`: the seat's view after it.
    pub async fn act(&self, seat: &Seat, action: &Value) -> Result<Value> {
        let path = format!("/v1/sessions/{}/actions", seat.session);
        let acted = self.post(&path, action, Some(&seat.token)).await?;
        Ok(acted["view"].clone())
    }

    /// What `seat` sees.
    pub async fn view(&self, seat: &Seat) -> Result<Value> {
        let path = format!("/v1/sessions/{}/view", seat.session);
        let view = self
            .call(reqwest::Method::GET, &path, None, Some(&seat.token))
            .await?;
        Ok(view["view"].clone())
    }

    /// The session as a spectator sees it: its view, whether it finished,
    /// its outcome.
    pub async fn session(&self, session: &str) -> Result<Value> {
        let path = format!("/v1/sessions/{session}");
        self.call(reqwest::Method::GET, &path, None, None).await
    }

    /// Calls `game`'s RPC `name`, with an account's token if given.
    pub async fn rpc(
        &self,
        game: &str,
        name: &str,
        input: Value,
        token: Option<&str>,
    ) -> Result<Value> {
        let path = format!("/v1/games/{game}/rpc/{name}");
        let reply = self.post(&path, &input, token).await?;
        Ok(reply["result"].clone())
    }
}

/// Whether `error` is a refusal with `code`.
pub fn refused_with(error: &anyhow::Error, code: &str) -> bool {
    error
        .downcast_ref::<Refused>()
        .is_some_and(|r| r.code == code)
}

/// Registers (or logs in) `count` accounts named `{prefix}-1`, ...: their
/// tokens.
pub async fn accounts(host: &Host, prefix: &str, count: usize) -> Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(count);
    for n in 1..=count {
        let name = format!("{prefix}-{n}");
        tokens.push(
            host.account(&name, &format!("{name} plays all night"))
                .await?,
        );
    }
    Ok(tokens)
}

/// Plays `sessions` sessions of each game in `games` against `host`,
/// printing a line per session.
pub async fn run(host: &Host, games: &[&str], sessions: usize) -> Result<()> {
    for game in games {
        match *game {
            "hokm" => {
                let players = accounts(host, "hokm-bot", 4).await?;
                for _ in 0..sessions {
                    let outcome = hokm::play(host, &players).await?;
                    println!("hokm: {}", outcome["winners"]);
                }
            }
            "roguelike" => {
                let party = accounts(host, "delver", 2).await?;
                for _ in 0..sessions {
                    let outcome = roguelike::play(host, &party, 3).await?;
                    println!(
                        "roguelike: depth {}, won {}, saved {}",
                        outcome["depth"], outcome["won"], outcome["saved"]
                    );
                }
            }
            "tabletop" => {
                let table = accounts(host, "table", 3).await?;
                for _ in 0..sessions {
                    let rolls = tabletop::play(host, &table, 12).await?;
                    println!("tabletop: {rolls} rolls");
                }
            }
            other => bail!("no bot plays {other:?}: hokm, roguelike or tabletop"),
        }
    }
    Ok(())
}
