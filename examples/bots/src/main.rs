//! `hoard-bots [--host URL] [--game hokm|roguelike|tabletop|all] [--sessions N]`:
//! plays whole sessions against a running hoard and exits 0 if every one
//! ended.

use anyhow::{Context, Result, bail};

const USAGE: &str =
    "usage: hoard-bots [--host URL] [--game hokm|roguelike|tabletop|all] [--sessions N]
  --host      the hoard to play on (default http://127.0.0.1:7878)
  --game      which game's bots play (default all)
  --sessions  sessions per game (default 3)";

#[tokio::main]
async fn main() -> Result<()> {
    let mut host = "http://127.0.0.1:7878".to_owned();
    let mut game = "all".to_owned();
    let mut sessions = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--host" => host = value()?,
            "--game" => game = value()?,
            "--sessions" => sessions = value()?.parse().context("--sessions takes a number")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let games: Vec<&str> = match game.as_str() {
        "all" => vec!["hokm", "roguelike", "tabletop"],
        one => vec![one],
    };
    hoard_bots::run(&hoard_bots::Host::new(&host), &games, sessions).await
}
