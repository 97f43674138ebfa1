//! Export and import of plugins' data (`hoard data`):
//!
//! - round trips sled -> Redis + PostgreSQL -> sled of what Hokm, the
//!   roguelike, the tabletop and the probe wrote: every value (its time to
//!   live within a tolerance), hash field, leaderboard score, record at
//!   its version and history entry equal after each trip; a character
//!   finished offline plays on in service mode with the same account;
//! - the same dump imported twice changes nothing the second time;
//! - bad dumps (cut short, damaged, from a newer contract, for a
//!   namespace no plugin owns) each get a clear error, and a rerun with a
//!   sound dump finishes what was begun; the conflict policies;
//! - the command line: export, verify, and an import killed with SIGKILL
//!   halfway and run again, nothing doubled.

use hoard::data::dump::DumpReader;
use hoard::data::{self, DataError, ImportOptions, OnConflict};
use hoard::storage::{ColdWrite, HotWrite, Item, Limits, Namespace, Op, RecordWrite, Storage};
use hoard_bots::roguelike::choose;
use hoard_tests::services::{RedisKeys, TestDatabase, service_host, temp_sled};
use hoard_tests::{Api, TestHost, hokm, plugin_path};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const HOARD: &str = env!("CARGO_BIN_EXE_hoard-test-host");

const PLUGINS: [(&str, &str); 4] = [
    ("hokm", "hokm"),
    ("roguelike", "roguelike"),
    ("tabletop", "tabletop"),
    ("probe", "probe"),
];

fn namespaces() -> Vec<Namespace> {
    PLUGINS
        .iter()
        .map(|(name, _)| Namespace::plugin(name).unwrap())
        .chain([Namespace::host()])
        .collect()
}

fn options(allowed: Option<Vec<Namespace>>) -> ImportOptions {
    ImportOptions {
        on_conflict: OnConflict::Fail,
        namespace_map: HashMap::new(),
        allowed,
        keep_ttl: true,
    }
}

async fn dump_of(storage: &Storage, namespaces: &[Namespace]) -> Vec<u8> {
    let mut dump = Vec::new();
    data::export(storage, namespaces, &mut dump).await.unwrap();
    dump
}

/// What `namespaces` hold, comparable across backends: every item as text,
/// sorted, with a value's time to live only as whether it has one; and
/// the times to live beside, by namespace and key.
async fn contents(
    storage: &Storage,
    namespaces: &[Namespace],
) -> (Vec<String>, BTreeMap<String, u64>) {
    let dump = dump_of(storage, namespaces).await;
    let mut reader = DumpReader::open(&dump[..], hoard::wasm::CONTRACT_VERSION).unwrap();
    let (mut items, mut ttls) = (Vec::new(), BTreeMap::new());
    while let Some(chunk) = reader.next_chunk().unwrap() {
        for read in chunk {
            let item = match read.item {
                Item::Value { key, value, ttl_ms } => {
                    if let Some(ttl) = ttl_ms {
                        ttls.insert(format!("{}/{key}", read.namespace), ttl);
                    }
                    Item::Value {
                        key,
                        value,
                        ttl_ms: ttl_ms.map(|_| 0),
                    }
                }
                other => other,
            };
            items.push(format!("{} {item:?}", read.namespace));
        }
    }
    items.sort();
    (items, ttls)
}

/// Equal items; times to live within 30 s of each other.
fn assert_same(
    (items, ttls): &(Vec<String>, BTreeMap<String, u64>),
    (other_items, other_ttls): &(Vec<String>, BTreeMap<String, u64>),
    trip: &str,
) {
    let missing: Vec<&String> = items.iter().filter(|i| !other_items.contains(i)).collect();
    let extra: Vec<&String> = other_items.iter().filter(|i| !items.contains(i)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{trip}: {} items before, {} after; missing {missing:?}; extra {extra:?}",
        items.len(),
        other_items.len()
    );
    assert_eq!(
        ttls.keys().collect::<Vec<_>>(),
        other_ttls.keys().collect::<Vec<_>>(),
        "{trip}: the values with a time to live"
    );
    for (key, ttl) in ttls {
        let other = other_ttls[key];
        assert!(
            ttl.abs_diff(other) <= 30_000,
            "{trip}: {key} had {ttl} ms to live, then {other} ms"
        );
    }
}

async fn rpc(api: &Api, game: &str, name: &str, input: Value, token: Option<&str>) -> Value {
    let path = format!("/v1/games/{game}/rpc/{name}");
    let reply = api
        .send("POST", &path, Some(&input.to_string()), token)
        .await;
    assert_eq!(reply.status, 200, "{name}: {:?}", reply.body);
    reply.body["result"].clone()
}

/// A roguelike run of `token`'s character, played by the example bot
/// until it ends.
async fn roguelike_run(api: &Api, token: &str, seed: u64) -> Value {
    let session = api
        .create("roguelike", json!({"config": {"depths": 1}, "seed": seed}))
        .await;
    let me = api.send("GET", "/v1/accounts/me", None, Some(token)).await;
    let name = me.body["name"].as_str().unwrap().to_owned();
    let hero = api.join_account(&session, token, &name).await;
    for _ in 0..6_000 {
        let state = api.get(&format!("/v1/sessions/{session}")).await.body;
        if state["finished"] == true {
            return state["outcome"].clone();
        }
        let view = hero.view().await;
        let reply = hero.act(&choose(&view)).await;
        if reply.status != 200 {
            let ended = hero.act(&json!({"type": "end"})).await;
            assert_eq!(ended.status, 200, "{:?}", ended.body);
        }
    }
    panic!("the run did not end");
}

/// Fills a host with the games' own data and the probe's, every kind of
/// item, more than one chunk of it; returns rhea's account token.
async fn fill(host: &TestHost) -> String {
    let api = host.api();
    hokm::play_game(&api, 7).await;
    let token = api.account("rhea").await;
    roguelike_run(&api, &token, 11).await;
    let room = api
        .create("tabletop", json!({"config": {"width": 10, "height": 8}}))
        .await;
    api.join_account(&room, &api.account("gina").await, "gina")
        .await;
    let probe = api.join(&api.create("probe", json!({})).await, "p").await;
    for action in [
        json!({"do": "hot-set", "key": "short-lived", "value": "soon", "ttl_ms": 600_000}),
        json!({"do": "hot-set", "key": "forever", "value": "always"}),
        json!({"do": "board-set", "key": "b", "member": "ana", "score": -1.5}),
        json!({"do": "cold-put", "collection": "c", "key": "k", "body": "{\"n\":1}"}),
        json!({"do": "cold-put", "collection": "c", "key": "k", "body": "{\"n\":2}"}),
        json!({"do": "record-match", "key": "m", "member": "ana", "body": "{\"won\":true}"}),
    ] {
        assert_eq!(probe.act(&action).await.status, 200, "{action}");
    }
    // Hash fields and binary values, and enough items for several chunks.
    let storage = host.app.storage();
    let ns = Namespace::plugin("probe").unwrap();
    let mut ops = vec![HotWrite::HashSet {
        key: "h".into(),
        field: "f".into(),
        value: vec![0, 159, 255],
    }];
    ops.extend((0..1500).map(|i| HotWrite::Set {
        key: format!("bulk-{i}"),
        value: i.to_string().into_bytes(),
        ttl_ms: None,
    }));
    for write in ops {
        storage
            .hot
            .apply(&Op::new(ns.clone(), write))
            .await
            .unwrap();
    }
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_goes_offline_to_service_and_back_whole() {
    let offline = TestHost::start(&PLUGINS).await;
    let token = fill(&offline).await;
    let before = contents(offline.app.storage(), &namespaces()).await;
    assert!(before.0.len() > 1500, "{} items", before.0.len());
    let kinds = ["Value", "HashField", "Score", "Record", "History"];
    for kind in kinds {
        assert!(
            before
                .0
                .iter()
                .any(|item| item.contains(&format!(" {kind} {{"))),
            "no {kind} item"
        );
    }
    let dump = dump_of(offline.app.storage(), &namespaces()).await;

    // Into service mode: every item written, then the same as offline.
    let (service, _services) = service_host(&PLUGINS).await;
    let imported = data::import(service.app.storage(), &dump[..], &options(None))
        .await
        .unwrap();
    assert_eq!(
        (imported.written, imported.unchanged, imported.skipped),
        (before.0.len() as u64, 0, 0)
    );
    let in_service = contents(service.app.storage(), &namespaces()).await;
    assert_same(&before, &in_service, "sled to Redis + PostgreSQL");

    // The same dump again: nothing written, nothing changed.
    let again = data::import(service.app.storage(), &dump[..], &options(None))
        .await
        .unwrap();
    assert_eq!((again.written, again.unchanged), (0, before.0.len() as u64));
    assert_same(
        &before,
        &contents(service.app.storage(), &namespaces()).await,
        "a second import",
    );

    // The character finished offline plays on in service mode.
    let (api, served) = (offline.api(), service.api());
    let character = rpc(&api, "roguelike", "character", json!({}), Some(&token)).await;
    assert_eq!(character["character"]["runs"], 1, "{character}");
    assert_eq!(
        rpc(&served, "roguelike", "character", json!({}), Some(&token)).await,
        character
    );
    roguelike_run(&served, &token, 12).await;
    let later = rpc(&served, "roguelike", "character", json!({}), Some(&token)).await;
    assert_eq!(later["character"]["runs"], 2, "{later}");

    // And back to a fresh offline host: as service mode has it now.
    let in_service = contents(service.app.storage(), &namespaces()).await;
    let back = dump_of(service.app.storage(), &namespaces()).await;
    let offline_again = TestHost::start(&PLUGINS).await;
    data::import(offline_again.app.storage(), &back[..], &options(None))
        .await
        .unwrap();
    assert_same(
        &in_service,
        &contents(offline_again.app.storage(), &namespaces()).await,
        "Redis + PostgreSQL to sled",
    );
    for host in [offline, service, offline_again] {
        host.stop().await;
    }
}

/// Source data straight through the storage traits: `values` hot values,
/// `records` records (each at version 2) and `entries` history entries in
/// namespace `probe`.
async fn write_source(storage: &Storage, values: usize, records: usize, entries: usize) {
    let ns = Namespace::plugin("probe").unwrap();
    let hot = (0..values).map(|i| HotWrite::Set {
        key: format!("v{i}"),
        value: format!("value {i}").into_bytes(),
        ttl_ms: (i % 2 == 0).then_some(3_600_000),
    });
    for write in hot {
        storage
            .hot
            .apply(&Op::new(ns.clone(), write))
            .await
            .unwrap();
    }
    for i in 0..records {
        for n in 0..2 {
            let write = ColdWrite::Record(RecordWrite::Put {
                collection: "things".into(),
                key: format!("r{i}"),
                body: json!({"i": i, "n": n}).to_string(),
                expected_version: None,
            });
            storage
                .cold
                .apply(&Op::new(ns.clone(), write))
                .await
                .unwrap();
        }
    }
    for i in 0..entries {
        let write = ColdWrite::AppendHistory {
            stream: "log".into(),
            body: json!({"i": i}).to_string(),
        };
        storage
            .cold
            .apply(&Op::new(ns.clone(), write))
            .await
            .unwrap();
    }
}

fn sled_storage() -> (Storage, tempfile::TempDir) {
    let (store, dir) = temp_sled();
    (
        Storage {
            hot: store.clone(),
            cold: store,
            limits: Limits::default(),
        },
        dir,
    )
}

/// How many items `storage` holds in `probe`.
async fn held(storage: &Storage) -> usize {
    contents(storage, &[Namespace::plugin("probe").unwrap()])
        .await
        .0
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dumps_get_clear_errors_and_a_rerun_finishes() {
    let probe = [Namespace::plugin("probe").unwrap()];
    let (source, _source_dir) = sled_storage();
    write_source(&source, 1200, 700, 300).await;
    let dump = dump_of(&source, &probe).await;
    let text = String::from_utf8(dump.clone()).unwrap();
    let whole = contents(&source, &probe).await;
    assert_eq!(whole.0.len(), 2200);

    // Cut short in its second chunk: the first chunk is in, and the whole
    // dump then finishes the job.
    let cut = text.find("{\"chunk\":2").unwrap() - 100;
    let (target, _dir) = sled_storage();
    let error = data::import(&target, &dump[..cut], &options(None))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DataError::Dump(data::dump::DumpError::Truncated { chunks: 1, .. })
        ),
        "{error}"
    );
    assert!(error.to_string().contains("cut short"), "{error}");
    assert_eq!(held(&target).await, 1000);
    let rerun = data::import(&target, &dump[..], &options(None))
        .await
        .unwrap();
    assert_eq!((rerun.written, rerun.unchanged), (1200, 1000));
    assert_same(&whole, &contents(&target, &probe).await, "after a cut");

    // A changed digit in chunk 2 (still JSON): its items are not applied.
    let second = text.find("{\"chunk\":1").unwrap();
    let at = second + text[second..].find("value ").unwrap() + "value ".len();
    let mut damaged = dump.clone();
    damaged[at] = if damaged[at] == b'9' { b'8' } else { b'9' };
    let (target, _dir) = sled_storage();
    let error = data::import(&target, &damaged[..], &options(None))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DataError::Dump(data::dump::DumpError::Checksum { chunk: 2, .. })
        ),
        "{error}"
    );
    assert_eq!(held(&target).await, 1000);
    data::import(&target, &dump[..], &options(None))
        .await
        .unwrap();
    assert_same(&whole, &contents(&target, &probe).await, "after damage");

    // From a newer contract, or for a namespace no plugin owns: nothing.
    let newer = text.replacen(
        &format!("\"contract\":\"{}\"", hoard::wasm::CONTRACT_VERSION),
        "\"contract\":\"0.99.0\"",
        1,
    );
    let (target, _dir) = sled_storage();
    let error = data::import(&target, newer.as_bytes(), &options(None))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("contract 0.99.0"), "{error}");
    let only_hokm = Some(vec![Namespace::plugin("hokm").unwrap()]);
    let error = data::import(&target, &dump[..], &options(only_hokm.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DataError::UnknownNamespace(name, target) if name == "probe" && target == "probe"),
        "{error}"
    );
    assert!(error.to_string().contains("--namespace-map"), "{error}");
    assert_eq!(held(&target).await, 0);
    // Mapped onto a namespace a plugin owns, it goes in there.
    let mut mapped = options(only_hokm);
    mapped.namespace_map = data::namespace_map(&["probe=hokm".into()]).unwrap();
    let into_hokm = data::import(&target, &dump[..], &mapped).await.unwrap();
    assert_eq!(into_hokm.written, 2200);
    assert_eq!(
        contents(&target, &[Namespace::plugin("hokm").unwrap()])
            .await
            .0
            .len(),
        2200
    );
    for bad in ["probe", "probe=Bad!", "a=b"] {
        let map = data::namespace_map(&[bad.to_owned(), "a=c".to_owned()]);
        assert!(map.is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_follow_the_policy() {
    let probe = Namespace::plugin("probe").unwrap();
    let (source, _source_dir) = sled_storage();
    write_source(&source, 2, 2, 0).await;
    let dump = dump_of(&source, std::slice::from_ref(&probe)).await;
    // The target already has other data under v0 and r0 (at version 5).
    let (target, _dir) = sled_storage();
    let other = HotWrite::Set {
        key: "v0".into(),
        value: b"other".to_vec(),
        ttl_ms: None,
    };
    target
        .hot
        .apply(&Op::new(probe.clone(), other))
        .await
        .unwrap();
    for _ in 0..5 {
        let write = ColdWrite::Record(RecordWrite::Put {
            collection: "things".into(),
            key: "r0".into(),
            body: "{\"other\":true}".into(),
            expected_version: None,
        });
        target
            .cold
            .apply(&Op::new(probe.clone(), write))
            .await
            .unwrap();
    }
    let with = |on_conflict| ImportOptions {
        on_conflict,
        ..options(None)
    };
    let error = data::import(&target, &dump[..], &with(OnConflict::Fail))
        .await
        .unwrap_err();
    assert!(matches!(error, DataError::Conflict { .. }), "{error}");
    assert!(error.to_string().contains("--on-conflict"), "{error}");

    let skipped = data::import(&target, &dump[..], &with(OnConflict::Skip))
        .await
        .unwrap();
    assert_eq!(skipped.skipped, 2, "{skipped:?}");
    assert_eq!(
        target.hot.get(&probe, "v0").await.unwrap(),
        Some(b"other".to_vec())
    );
    assert_eq!(
        target
            .cold
            .get(&probe, "things", "r0")
            .await
            .unwrap()
            .unwrap()
            .version,
        5
    );

    let overwritten = data::import(&target, &dump[..], &with(OnConflict::Overwrite))
        .await
        .unwrap();
    assert_eq!(overwritten.written, 2, "{overwritten:?}");
    assert_eq!(
        target.hot.get(&probe, "v0").await.unwrap(),
        Some(b"value 0".to_vec())
    );
    // Versions never go back: one past the stored 5, not the dump's 2.
    let record = target
        .cold
        .get(&probe, "things", "r0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.version, record.body.as_str()),
        (6, "{\"i\":0,\"n\":1}")
    );
}

/// Writes a config file for the command line: offline on `sled`, or in
/// service mode on this test's Redis keys and database.
fn config_file(dir: &std::path::Path, name: &str, storage: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let plugin = plugin_path("probe");
    std::fs::write(
        &path,
        format!("{storage}\n[[plugins]]\nname = \"probe\"\npath = {plugin:?}\n"),
    )
    .unwrap();
    path
}

fn hoard(args: &[&str], failpoints: &str) -> std::process::Command {
    let mut command = std::process::Command::new(HOARD);
    command.env("FAILPOINTS", failpoints).args(args);
    command
}

fn run(args: &[&str]) -> (bool, String) {
    let output = hoard(args, "").output().expect("hoard runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_exports_verifies_and_finishes_a_killed_import() {
    let probe = [Namespace::plugin("probe").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let sled_path = dir.path().join("offline.sled");
    let whole = {
        let store = hoard::storage::sled::SledStore::open(&hoard::storage::sled::SledConfig {
            path: sled_path.clone(),
            ..Default::default()
        })
        .unwrap();
        let source = Storage {
            hot: store.clone(),
            cold: store,
            limits: Limits::default(),
        };
        write_source(&source, 3000, 12_000, 2000).await;
        contents(&source, &probe).await
    };
    // The store is closed (its lock released) once dropped.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let offline = config_file(
        dir.path(),
        "offline.toml",
        &format!("[storage.sled]\npath = {sled_path:?}"),
    );
    let dump = dir.path().join("probe.dump");
    let (ok, said) = run(&[
        "data",
        "export",
        "--config",
        offline.to_str().unwrap(),
        "--output",
        dump.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    assert!(said.contains("exported 17000 item(s) of probe"), "{said}");
    let (ok, said) = run(&["data", "verify", dump.to_str().unwrap()]);
    assert!(ok && said.contains("sound: 17000 item(s)"), "{said}");
    // A cut-short copy does not verify, and says why.
    let bytes = std::fs::read(&dump).unwrap();
    let cut = dir.path().join("cut.dump");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, said) = run(&["data", "verify", cut.to_str().unwrap()]);
    assert!(!ok && said.contains("cut short"), "{said}");

    let (keys, database) = (RedisKeys::new(), TestDatabase::create().await);
    let service = config_file(
        dir.path(),
        "service.toml",
        &format!(
            "[storage]\nhot = \"redis\"\ncold = \"postgres\"\n[storage.redis]\nurl = {:?}\nkey_prefix = {:?}\n[storage.postgres]\nurl = {:?}",
            keys.config.url, keys.config.key_prefix, database.url
        ),
    );
    let import_args = [
        "data",
        "import",
        "--config",
        service.to_str().unwrap(),
        "--input",
        dump.to_str().unwrap(),
    ];
    // Slowed down a chunk at a time, and killed once some chunks are in.
    let mut child = hoard(&import_args, "import-after-chunk=sleep(300)")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use sqlx::Connection;
    let mut postgres = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let mut records = 0;
    for _ in 0..600 {
        // Before the first import, the schema may not be there yet.
        records = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM records")
            .fetch_one(&mut postgres)
            .await
            .unwrap_or(0);
        if records >= 2000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let at_kill: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&mut postgres)
        .await
        .unwrap();
    assert!(
        (2000..12_000).contains(&at_kill),
        "killed halfway: {at_kill} of 12000 records in ({records} seen)"
    );
    let (ok, said) = run(&import_args);
    assert!(ok, "{said}");
    assert!(said.contains("already there as in the dump"), "{said}");
    // Nothing doubled: every record once at its version, every entry once.
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM history")
        .fetch_one(&mut postgres)
        .await
        .unwrap();
    assert_eq!(history, 2000);
    let mut config = hoard_tests::test_config(dir.path(), &[("probe", "probe")]);
    hoard_tests::services::use_service_backends(&mut config, &keys, &database);
    config.storage.resilience.enabled = false;
    let metrics = std::sync::Arc::new(hoard::metrics::Metrics::new());
    let (storage, _) = hoard::app::open_storage(&config, metrics).await.unwrap();
    assert_same(
        &whole,
        &contents(&storage, &probe).await,
        "through the command line",
    );

    // A namespace the config does not serve is refused, naming it.
    let (ok, said) = run(&[
        "data",
        "import",
        "--config",
        service.to_str().unwrap(),
        "--input",
        dump.to_str().unwrap(),
        "--namespace-map",
        "probe=roguelike",
    ]);
    assert!(!ok && said.contains("\"roguelike\""), "{said}");
}

/// Scheduled backups in service mode: dumps appear in the folder, each
/// whole and restorable, only the newest `keep` stay, and `/metrics`
/// counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_are_whole_restorable_and_pruned() {
    let folder = tempfile::tempdir().unwrap();
    let (keys, database) = (RedisKeys::new(), TestDatabase::create().await);
    let host = TestHost::start_with(&[("probe", "probe")], |config| {
        hoard_tests::services::use_service_backends(config, &keys, &database);
        config.backup.interval_ms = 300;
        config.backup.folder = folder.path().to_owned();
        config.backup.keep = 2;
    })
    .await;
    write_source(host.app.storage(), 20, 10, 5).await;
    let dumps = || {
        let mut dumps: Vec<_> = std::fs::read_dir(folder.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "dump"))
            .collect();
        dumps.sort();
        dumps
    };
    let written = || async {
        let text = hoard_tests::metrics_text(host.address).await;
        text.lines()
            .find(|line| line.starts_with("hoard_backups_total{outcome=\"written\"}"))
            .and_then(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    for _ in 0..100 {
        if written().await >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(written().await >= 4, "four backups in ten seconds");
    let kept = dumps();
    assert_eq!(kept.len(), 2, "{kept:?}");
    for dump in &kept {
        let verified = data::verify(|| std::fs::File::open(dump).map(std::io::BufReader::new))
            .await
            .unwrap();
        // The probe's 35 items and the host's own.
        assert!(verified.items >= 35, "{}", verified.items);
        assert_eq!(verified.header.namespaces, ["probe", "_hoard"]);
    }
    host.stop().await;
}

/// `POST /v1/accounts/me/export` on `host` as `token`: the dump.
async fn export_account(host: &TestHost, token: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/accounts/me/export", host.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    response.text().await.unwrap()
}

async fn import_account(
    api: &Api,
    token: Option<&str>,
    dump: &str,
    query: &str,
) -> hoard_tests::Reply {
    api.send(
        "POST",
        &format!("/v1/accounts/me/import{query}"),
        Some(dump),
        token,
    )
    .await
}

async fn account_id(api: &Api, token: &str) -> String {
    let me = api.send("GET", "/v1/accounts/me", None, Some(token)).await;
    me.body["account"].as_str().unwrap().to_owned()
}

/// A probe record in its account collection `profiles`, as the probe
/// reads it for the account.
async fn profile(api: &Api, id: &str) -> Value {
    let probe = api
        .join(&api.create("probe", json!({})).await, "reader")
        .await;
    let read = probe
        .act(&json!({"do": "cold-get", "collection": "profiles", "key": id}))
        .await;
    read.body["view"]["last"].clone()
}

/// A player's character goes from an offline host to a server under
/// their account there, plays on, and comes back; only the account's own
/// records move, once each; bad requests are refused before any write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_moves_their_own_data_between_hosts() {
    let games = [("roguelike", "roguelike"), ("probe", "probe")];
    let offline = TestHost::start_with(&games, |config| config.accounts.imports = true).await;
    let (keys, database) = (RedisKeys::new(), TestDatabase::create().await);
    let server = TestHost::start_with(&games, |config| {
        hoard_tests::services::use_service_backends(config, &keys, &database);
        config.accounts.imports = true;
    })
    .await;
    let (home, away) = (offline.api(), server.api());

    // Offline: a run, a profile, and data of other accounts beside.
    let token = home.account("rhea").await;
    let home_id = account_id(&home, &token).await;
    roguelike_run(&home, &token, 11).await;
    let other = home.account("zed").await;
    roguelike_run(&home, &other, 5).await;
    let probe = home.join(&home.create("probe", json!({})).await, "p").await;
    for (key, body) in [
        (home_id.as_str(), "{\"title\":\"wanderer\"}"),
        ("not-an-account", "{}"),
    ] {
        let put = json!({"do": "cold-put", "collection": "profiles", "key": key, "body": body});
        assert_eq!(probe.act(&put).await.status, 200);
    }
    let character = rpc(&home, "roguelike", "character", json!({}), Some(&token)).await;
    assert_eq!(character["character"]["runs"], 1);

    // Exported: rhea's character, inventory and profile, nothing else.
    let dump = export_account(&offline, &token).await;
    let lines: Vec<&str> = dump.lines().collect();
    let records = lines.iter().filter(|l| l.contains("\"record\"")).count();
    assert_eq!(records, 3, "{dump}");
    assert!(
        !dump.contains("not-an-account") && !dump.contains("zed"),
        "{dump}"
    );

    // Imported on the server under rhea's account there (another id).
    let server_token = away.account("rhea").await;
    let server_id = account_id(&away, &server_token).await;
    assert_ne!(server_id, home_id);
    let imported = import_account(&away, Some(&server_token), &dump, "").await;
    assert_eq!(imported.status, 200, "{:?}", imported.body);
    assert_eq!(imported.body["written"], 3);
    assert_eq!(
        rpc(
            &away,
            "roguelike",
            "character",
            json!({}),
            Some(&server_token)
        )
        .await,
        character
    );
    assert_eq!(
        profile(&away, &server_id).await["body"],
        "{\"title\":\"wanderer\"}"
    );
    // Again: nothing changes.
    let again = import_account(&away, Some(&server_token), &dump, "").await;
    assert_eq!(
        (
            again.body["written"].clone(),
            again.body["unchanged"].clone()
        ),
        (json!(0), json!(3))
    );

    // It plays on there, and comes back home over the old character.
    roguelike_run(&away, &server_token, 12).await;
    let later = rpc(
        &away,
        "roguelike",
        "character",
        json!({}),
        Some(&server_token),
    )
    .await;
    assert_eq!(later["character"]["runs"], 2);
    let back = export_account(&server, &server_token).await;
    let refused = import_account(&home, Some(&token), &back, "").await;
    assert_eq!(
        (refused.status, refused.code()),
        (409, "account_data_exists"),
        "{:?}",
        refused.body
    );
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("on_conflict=overwrite")
    );
    let home_again = import_account(&home, Some(&token), &back, "?on_conflict=overwrite").await;
    assert_eq!(home_again.status, 200, "{:?}", home_again.body);
    let now = rpc(&home, "roguelike", "character", json!({}), Some(&token)).await;
    assert_eq!(now["character"], later["character"]);
    // Another account's data is where it was.
    let zed = rpc(&home, "roguelike", "character", json!({}), Some(&other)).await;
    assert_eq!(zed["character"]["runs"], 1);

    // Bad requests.
    let plain = TestHost::start(&games).await;
    let plain_token = plain.api().account("rhea").await;
    let disabled = import_account(&plain.api(), Some(&plain_token), &dump, "").await;
    assert_eq!(
        (disabled.status, disabled.code()),
        (403, "imports_disabled")
    );
    let anonymous = import_account(&away, None, &dump, "").await;
    assert_eq!(anonymous.status, 401);
    let bad_query = import_account(&away, Some(&server_token), &dump, "?on_conflict=maybe").await;
    assert_eq!((bad_query.status, bad_query.code()), (400, "bad_query"));
    let cut = &dump[..dump.len() - 10];
    let truncated = import_account(&away, Some(&server_token), cut, "").await;
    assert_eq!((truncated.status, truncated.code()), (400, "bad_dump"));
    assert!(
        truncated.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cut short")
    );
    let whole = String::from_utf8(
        dump_of(
            offline.app.storage(),
            &[Namespace::plugin("probe").unwrap()],
        )
        .await,
    )
    .unwrap();
    let no_account = import_account(&away, Some(&server_token), &whole, "").await;
    assert_eq!((no_account.status, no_account.code()), (400, "bad_dump"));
    // Checksummed, but holding what is not the account's own: refused whole.
    for item in [
        Item::Record {
            collection: "characters".into(),
            key: "someone-else".into(),
            version: 1,
            body: "{}".into(),
        },
        Item::Record {
            collection: "runs".into(),
            key: home_id.clone(),
            version: 1,
            body: "{}".into(),
        },
        Item::Value {
            key: home_id.clone(),
            value: b"1".to_vec(),
            ttl_ms: None,
        },
    ] {
        let header = hoard::data::dump::Header {
            hoard_dump: hoard::data::dump::FORMAT,
            hoard: "test".into(),
            contract: hoard::wasm::CONTRACT_VERSION.into(),
            dump_id: "00112233445566778899aabbccddeeff".into(),
            created_ms: 0,
            namespaces: vec!["roguelike".into()],
            account: Some(home_id.clone()),
        };
        let mut writer = hoard::data::dump::DumpWriter::start(Vec::new(), &header).unwrap();
        let good = Item::Record {
            collection: "inventory".into(),
            key: home_id.clone(),
            version: 1,
            body: "{\"items\":[]}".into(),
        };
        writer
            .item(&Namespace::plugin("roguelike").unwrap(), &good)
            .unwrap();
        writer
            .item(&Namespace::plugin("roguelike").unwrap(), &item)
            .unwrap();
        let forged = String::from_utf8(writer.finish(Vec::new()).unwrap().1).unwrap();
        let reply = import_account(
            &away,
            Some(&server_token),
            &forged,
            "?on_conflict=overwrite",
        )
        .await;
        assert_eq!(
            (reply.status, reply.code()),
            (422, "not_movable"),
            "{item:?}: {:?}",
            reply.body
        );
    }
    // The refused imports wrote nothing: the server's character is as it was.
    assert_eq!(
        rpc(
            &away,
            "roguelike",
            "character",
            json!({}),
            Some(&server_token)
        )
        .await,
        later
    );
    // A dump's versions are not the player's to choose; a record named
    // twice, or one storage would refuse, refuses the import.
    let forge = |items: &[(&str, Item)]| {
        let header = hoard::data::dump::Header {
            hoard_dump: hoard::data::dump::FORMAT,
            hoard: "test".into(),
            contract: hoard::wasm::CONTRACT_VERSION.into(),
            dump_id: "ffeeddccbbaa99887766554433221100".into(),
            created_ms: 0,
            namespaces: vec!["roguelike".into(), "probe".into()],
            account: Some(home_id.clone()),
        };
        let mut writer = hoard::data::dump::DumpWriter::start(Vec::new(), &header).unwrap();
        for (ns, item) in items {
            writer.item(&Namespace::plugin(ns).unwrap(), item).unwrap();
        }
        String::from_utf8(writer.finish(Vec::new()).unwrap().1).unwrap()
    };
    let record = |collection: &str, version: u64, body: &str| Item::Record {
        collection: collection.into(),
        key: home_id.clone(),
        version,
        body: body.into(),
    };
    let huge = forge(&[(
        "roguelike",
        record("inventory", i64::MAX as u64, "{\"items\":[]}"),
    )]);
    let reply = import_account(&away, Some(&server_token), &huge, "?on_conflict=overwrite").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let roguelike = Namespace::plugin("roguelike").unwrap();
    let stored = server
        .app
        .storage()
        .cold
        .get(&roguelike, "inventory", &server_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.version < 10, "version {}", stored.version);
    let twice = forge(&[
        ("probe", record("profiles", 1, "{}")),
        ("probe", record("profiles", 2, "{\"a\":1}")),
    ]);
    let reply = import_account(&away, Some(&server_token), &twice, "").await;
    assert_eq!(
        (reply.status, reply.code()),
        (400, "bad_dump"),
        "{:?}",
        reply.body
    );
    let not_json = forge(&[("probe", record("profiles", 1, "{not json"))]);
    let reply = import_account(&away, Some(&server_token), &not_json, "").await;
    assert_eq!(
        (reply.status, reply.code()),
        (400, "bad_dump"),
        "{:?}",
        reply.body
    );
    // Under `fail`, a conflict anywhere stops it before the first write.
    let nova = away.account("nova").await;
    let nova_id = account_id(&away, &nova).await;
    let first = forge(&[("roguelike", record("characters", 1, "{\"mine\":1}"))]);
    let reply = import_account(&away, Some(&nova), &first, "").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let clash = forge(&[
        ("probe", record("profiles", 1, "{\"new\":true}")),
        ("roguelike", record("characters", 1, "{\"other\":2}")),
    ]);
    let reply = import_account(&away, Some(&nova), &clash, "").await;
    assert_eq!(
        (reply.status, reply.code()),
        (409, "account_data_exists"),
        "{:?}",
        reply.body
    );
    let probe_ns = Namespace::plugin("probe").unwrap();
    let profile = server
        .app
        .storage()
        .cold
        .get(&probe_ns, "profiles", &nova_id)
        .await;
    assert_eq!(profile, Ok(None), "nothing was written");
    for host in [offline, server, plain] {
        host.stop().await;
    }
}
