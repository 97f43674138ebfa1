//! (b) The action path against a hand-written server: hoard (offline, on
//! sled, the Hokm plugin) and `hokm-native` (the same rules crate called
//! natively, hyper, sled, a group commit: `examples/native`), each in its
//! own process, driven alike by one load generator in this process.
//!
//! Every session is played by its four players as a client would: the
//! player whose turn it is reads their own view, chooses a legal card
//! (`hoard_bots::hokm::choose`) and sends it; a finished game is replaced
//! by a new one. Over HTTP each request is its own round trip on
//! keep-alive connections; over WebSockets each player has a socket, acts
//! on it and every player receives their new view. For each transport and
//! number of concurrent sessions both servers run twice, one after the
//! other in the order A B B A (A alternating), each time a warm-up and then
//! a measured window, and the two windows count together:
//! actions per second, the action's round trip (HTTP: the POST; WebSocket:
//! `act` to `reply`, which follows the actor's own new view) and the
//! server process's CPU time per action (new tables' creations and joins
//! as games end included).
//!
//! Both answer only once the change is flushed to disk, so at one session
//! both are bound by the flush; with more, by CPU (2 cores here, shared
//! with the load generator).

use crate::players::{CREATIONS_BUSY, Played, Samples, connect_table, drive, seat_table};
use crate::process::{HostProcess, free_port};
use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long each measurement runs.
pub(crate) struct Plan {
    pub transports: Vec<Transport>,
    pub levels: Vec<usize>,
    pub warmup: Duration,
    pub window: Duration,
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Transport {
    Http,
    Socket,
}

/// One server's figures for one transport and level.
#[derive(Default)]
struct Figures {
    actions: u64,
    seconds: f64,
    replies: Samples,
    cpu_seconds: f64,
    busy: u64,
}

impl Figures {
    fn add(&mut self, more: Figures) {
        self.actions += more.actions;
        self.seconds += more.seconds;
        self.replies.merge(more.replies);
        self.cpu_seconds += more.cpu_seconds;
        self.busy += more.busy;
    }

    fn rate(&self) -> f64 {
        self.actions as f64 / self.seconds
    }

    fn cpu_per_action(&self) -> f64 {
        self.cpu_seconds / self.actions.max(1) as f64
    }
}

pub(crate) async fn versus(plan: Plan) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hoard_port = free_port();
    let hoard = HostProcess::start(&hoard_config(dir.path(), hoard_port), hoard_port)
        .await
        .context("the hoard host")?;
    let native_port = free_port();
    let listen = format!("127.0.0.1:{native_port}");
    let data = dir.path().join("native.sled");
    let args = [
        OsStr::new("native"),
        OsStr::new("--listen"),
        OsStr::new(&listen),
        OsStr::new("--data"),
        data.as_os_str(),
    ];
    let native = HostProcess::start_with(&args, native_port)
        .await
        .context("the native server")?;
    println!(
        "\n(b) the action path: hoard (offline, sled, the Hokm plugin) against hokm-native (the same rules natively, hyper, sled, a group commit); each server twice per row (A B B A), each time {} s warm-up and {} s measured; each in its own process; every change flushed before its answer",
        plan.warmup.as_secs_f64(),
        plan.window.as_secs_f64()
    );
    println!(
        "  {:<9} {:>8} | {:>8} {:>7} {:>7} {:>7} | {:>8} {:>7} {:>7} {:>7} | {:>6} {:>5}",
        "transport",
        "sessions",
        "hoard/s",
        "p50 ms",
        "p99 ms",
        "cpu us",
        "native/s",
        "p50 ms",
        "p99 ms",
        "cpu us",
        "ratio",
        "cpu x"
    );
    let mut cell = 0u64;
    let mut busy = 0;
    for &transport in &plan.transports {
        for &sessions in &plan.levels {
            // Interleaved: each server runs twice, in the order A B B A,
            // with A alternating from cell to cell, so a drift in the
            // machine's speed during a cell weighs on both alike.
            let seeds = 1_000_000 * (cell + 1);
            let (mut ours, mut theirs) = (Figures::default(), Figures::default());
            let hoard_first = cell.is_multiple_of(2);
            for round in 0..4 {
                let hoard_now = (round == 0 || round == 3) == hoard_first;
                let (server, figures) = match hoard_now {
                    true => (&hoard, &mut ours),
                    false => (&native, &mut theirs),
                };
                // Each server's first pass plays the same deals, and so
                // does its second.
                let seeds = seeds + round / 2 * 100_000;
                figures.add(measure(server, transport, sessions, &plan, seeds).await?);
            }
            cell += 1;
            busy += ours.busy;
            print_row(transport, sessions, ours, theirs);
        }
    }
    println!(
        "  targets: hoard/native actions/s >= 0.9 at 1 session, >= 0.8 at 16 and 256 (HTTP and WebSocket); CPU per action <= 1.25x native at 16 sessions"
    );
    if busy > 0 {
        println!(
            "  hoard answered {busy} creations `busy` (every plugin instance held by a live session); the players tried again"
        );
    }
    println!(
        "  RSS after the run: hoard {:.1} MB, native {:.1} MB (the native server never lets a session go; hoard keeps at most sessions.live_max)",
        hoard.rss() as f64 / 1e6,
        native.rss() as f64 / 1e6
    );
    Ok(())
}

fn print_row(transport: Transport, sessions: usize, mut ours: Figures, mut theirs: Figures) {
    let ratio = ours.rate() / theirs.rate();
    let cpu = ours.cpu_per_action() / theirs.cpu_per_action();
    let target = if sessions == 1 { 0.9 } else { 0.8 };
    let mut verdict = if ratio >= target { "met" } else { "NOT met" }.to_owned();
    if sessions == 16 {
        verdict += if cpu <= 1.25 {
            ", cpu met"
        } else {
            ", cpu NOT met"
        };
    }
    println!(
        "  {:<9} {:>8} | {:>8.0} {:>7.2} {:>7.2} {:>7.0} | {:>8.0} {:>7.2} {:>7.2} {:>7.0} | {:>6.2} {:>5.2}  {verdict}",
        match transport {
            Transport::Http => "HTTP",
            Transport::Socket => "WebSocket",
        },
        sessions,
        ours.rate(),
        ours.replies.ms(50.0),
        ours.replies.ms(99.0),
        ours.cpu_per_action() * 1e6,
        theirs.rate(),
        theirs.replies.ms(50.0),
        theirs.replies.ms(99.0),
        theirs.cpu_per_action() * 1e6,
        ratio,
        cpu,
    );
}

/// `sessions` tables on `server` over `transport`: seated (and connected)
/// first, then played through the warm-up and the measured window.
async fn measure(
    server: &HostProcess,
    transport: Transport,
    sessions: usize,
    plan: &Plan,
    seeds: u64,
) -> Result<Figures> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(sessions + 8)
        .build()?;
    let base = server.base();
    let busy_before = CREATIONS_BUSY.load(Ordering::Relaxed);
    let seated: Vec<(String, Vec<String>)> = futures_util::stream::iter((0..sessions).map(|n| {
        let (http, base) = (http.clone(), base.clone());
        async move { seat_table(&http, &base, seeds + n as u64 * 1000).await }
    }))
    .buffered(32)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<_>>()?;
    let mut tables = Vec::new();
    if transport == Transport::Socket {
        for (session, tokens) in &seated {
            tables.push(connect_table(std::slice::from_ref(&base), session, tokens).await?);
        }
    }
    let from = Instant::now() + plan.warmup;
    let until = from + plan.window;
    let drivers: Vec<_> = match transport {
        Transport::Http => seated
            .into_iter()
            .enumerate()
            .map(|(n, seated)| {
                let seed = seeds + n as u64 * 1000;
                tokio::spawn(drive_http(
                    http.clone(),
                    base.clone(),
                    seated,
                    (from, until),
                    seed,
                ))
            })
            .collect(),
        Transport::Socket => tables
            .into_iter()
            .enumerate()
            .map(|(n, table)| {
                let seed = seeds + n as u64 * 1000;
                tokio::spawn(drive(table, http.clone(), None, (from, until), seed))
            })
            .collect(),
    };
    tokio::time::sleep_until(from.into()).await;
    let cpu_before = server.cpu_seconds();
    tokio::time::sleep_until(until.into()).await;
    let cpu = server.cpu_seconds() - cpu_before;
    let (mut actions, mut replies) = (0, Samples::default());
    for driver in drivers {
        let played = driver.await??;
        actions += played.actions;
        replies.merge(played.replies);
    }
    Ok(Figures {
        actions,
        seconds: plan.window.as_secs_f64(),
        replies,
        cpu_seconds: cpu,
        busy: CREATIONS_BUSY.load(Ordering::Relaxed) - busy_before,
    })
}

/// Plays a seated table over HTTP until `until`: the player whose turn it
/// is reads their view and sends a legal card; a finished game is replaced
/// by a new table. Measures the actions sent from `from` on.
async fn drive_http(
    http: reqwest::Client,
    base: String,
    (mut session, mut tokens): (String, Vec<String>),
    (from, until): (Instant, Instant),
    seed: u64,
) -> Result<Played> {
    let mut played = Played::default();
    let mut games = 0;
    // Whose turn it is, as the last answer said (at a new table: unknown).
    let mut turn = None;
    while Instant::now() < until {
        let seat = match turn {
            Some(seat) => seat,
            None => whose_turn(&view(&http, &base, &session, &tokens[0]).await?)?,
        };
        let mine = view(&http, &base, &session, &tokens[seat]).await?;
        let action = hoard_bots::hokm::choose(&mine)?;
        let sent = Instant::now();
        let answer = http
            .post(format!("{base}/v1/sessions/{session}/actions"))
            .bearer_auth(&tokens[seat])
            .json(&action)
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await?;
        if !status.is_success() {
            bail!("{action} refused: {status} {body}");
        }
        if sent >= from {
            played.actions += 1;
            played.replies.add(sent.elapsed());
        }
        if body["outcome"].is_null() {
            turn = Some(whose_turn(&body["view"])?);
        } else {
            games += 1;
            (session, tokens) = seat_table(&http, &base, seed + games).await?;
            turn = None;
        }
    }
    Ok(played)
}

async fn view(http: &reqwest::Client, base: &str, session: &str, token: &str) -> Result<Value> {
    let answer = http
        .get(format!("{base}/v1/sessions/{session}/view"))
        .bearer_auth(token)
        .send()
        .await?;
    let body: Value = answer.json().await?;
    Ok(body["view"].clone())
}

fn whose_turn(view: &Value) -> Result<usize> {
    Ok(view["turn"]
        .as_u64()
        .with_context(|| format!("whose turn: {view}"))? as usize)
}

/// hoard as shipped (`configs/offline.toml`'s defaults), but for what one
/// load generator standing for many players needs: per-client connection
/// shares and rates opened, and seeds chosen by the client so both servers
/// deal the same games.
fn hoard_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/dist/hokm.wasm");
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
{limits}[storage.sled]
path = {sled:?}
[sessions]
client_seeds = true
[[plugins]]
name = "hokm"
path = {plugin:?}
"#,
        limits = crate::process::ONE_CLIENT_FOR_MANY,
        sled = dir.join("hoard.sled"),
    );
    let path = dir.join("hoard.toml");
    std::fs::write(&path, text).expect("a config file");
    path
}
