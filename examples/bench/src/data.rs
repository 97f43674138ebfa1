//! (g) export and import rates (`hoard data`): a dump of `n` items of
//! every kind (hot values with and without a time to live, hash fields,
//! leaderboard scores, records at version 3, history entries) imported
//! into each backend and exported from it again, items per second; the
//! import once more (every item already there: the reads alone); and,
//! beside the export, the same rows read straight from the server in one
//! query or SCAN, as a baseline.

use hoard::data::dump::{DumpWriter, Header};
use hoard::data::{self, ImportOptions, OnConflict};
use hoard::storage::{Item, Limits, Namespace, Storage};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// A dump of `n` items, in the shares a game's data might have.
fn synthetic_dump(n: usize) -> Vec<u8> {
    let ns = Namespace::plugin("bench").expect("a name");
    let header = Header {
        hoard_dump: data::dump::FORMAT,
        hoard: "bench".into(),
        contract: hoard::wasm::CONTRACT_VERSION.into(),
        dump_id: data::dump::hex(&rand::random::<[u8; 16]>()),
        created_ms: 0,
        namespaces: vec![ns.to_string()],
        account: None,
    };
    let mut writer = DumpWriter::start(Vec::new(), &header).expect("in memory");
    for i in 0..n {
        let item = match i % 10 {
            0..=1 => Item::Value {
                key: format!("value-{i}"),
                value: format!("{{\"hp\":{i}}}").into_bytes(),
                ttl_ms: (i % 20 == 0).then_some(3_600_000),
            },
            2 => Item::HashField {
                key: format!("hash-{}", i / 100),
                field: format!("f{i}"),
                value: i.to_string().into_bytes(),
            },
            3 => Item::Score {
                board: "wins".into(),
                member: format!("player-{i}"),
                score: (i % 977) as f64,
            },
            4..=8 => Item::Record {
                collection: "characters".into(),
                key: format!("account-{i}"),
                version: 3,
                body: format!(
                    "{{\"level\":{},\"class\":\"rogue\",\"items\":[\"sword\",\"rope\"],\"gold\":{i}}}",
                    i % 40
                ),
            },
            _ => Item::History {
                stream: "matches".into(),
                seq: i as u64 + 1,
                body: format!("{{\"winner\":\"player-{i}\",\"score\":[7,{}]}}", i % 7),
            },
        };
        writer.item(&ns, &item).expect("in memory");
    }
    writer.finish(Vec::new()).expect("in memory").1
}

fn rate(items: usize, seconds: f64) -> String {
    format!("{:>8.0} items/s", items as f64 / seconds)
}

pub async fn data(n: usize) {
    println!(
        "\n(g) hoard data: a dump of {n} items (20% hot values, 10% hash fields, 10% scores, 50% records, 10% history) imported into each backend and exported again"
    );
    let dump = synthetic_dump(n);
    println!(
        "  dump: {:.1} MB, {:.0} bytes per item",
        dump.len() as f64 / 1e6,
        dump.len() as f64 / n as f64
    );
    let ns = [Namespace::plugin("bench").expect("a name")];
    let options = ImportOptions {
        on_conflict: OnConflict::Fail,
        namespace_map: HashMap::new(),
        allowed: None,
        keep_ttl: true,
    };

    // sled, as offline play has it.
    let dir = tempfile::tempdir().expect("temp dir");
    let sled = hoard::storage::sled::SledStore::open(&hoard::storage::sled::SledConfig {
        path: dir.path().join("db"),
        ..Default::default()
    })
    .expect("sled");
    let storage = Storage {
        hot: sled.clone(),
        cold: sled,
        limits: Limits::default(),
    };
    measure("sled", &storage, &ns, &dump, &options, n, None).await;

    // Redis + PostgreSQL, without the outage layer, as `hoard data` runs.
    let Some((storage, database, mut admin)) = service_storage().await else {
        return;
    };
    let url = format!("postgres://postgres@127.0.0.1:5432/{database}");
    measure(
        "Redis + PostgreSQL",
        &storage,
        &ns,
        &dump,
        &options,
        n,
        Some(&url),
    )
    .await;
    drop(storage);
    use sqlx::Connection;
    let drop = sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
    let _ = sqlx::query(drop).execute(&mut admin).await;
    let _ = admin.close().await;
}

async fn measure(
    name: &str,
    storage: &Storage,
    ns: &[Namespace],
    dump: &[u8],
    options: &ImportOptions,
    n: usize,
    postgres_url: Option<&str>,
) {
    let started = Instant::now();
    let imported = data::import(storage, dump, options).await.expect("import");
    let import = started.elapsed().as_secs_f64();
    assert_eq!(imported.written as usize, n, "every item written");
    let started = Instant::now();
    let again = data::import(storage, dump, options)
        .await
        .expect("import again");
    let again_s = started.elapsed().as_secs_f64();
    assert_eq!(
        again.unchanged as usize, n,
        "nothing written the second time"
    );
    let started = Instant::now();
    let exported = data::export(storage, ns, std::io::sink())
        .await
        .expect("export");
    let export = started.elapsed().as_secs_f64();
    assert_eq!(exported.items as usize, n, "every item exported");
    println!(
        "  {name:<20} import {} ({import:.2} s) · again, all there {} · export {} ({export:.2} s)",
        rate(n, import),
        rate(n, again_s),
        rate(n, export),
    );
    if let Some(url) = postgres_url {
        // Baseline: the cold rows straight from PostgreSQL, one query each.
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(url).await.expect("connect");
        let started = Instant::now();
        let records: Vec<(Vec<u8>, i64, String)> = sqlx::query_as(
            "SELECT key, version, body FROM records WHERE namespace = 'bench' ORDER BY collection, key",
        )
        .fetch_all(&mut connection)
        .await
        .expect("records");
        let history: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, body FROM history WHERE namespace = 'bench' ORDER BY stream, seq",
        )
        .fetch_all(&mut connection)
        .await
        .expect("history");
        let straight = started.elapsed().as_secs_f64();
        let rows = records.len() + history.len();
        println!(
            "  {:<20} baseline: PostgreSQL's {rows} rows in two SELECTs {}",
            "",
            rate(rows, straight),
        );
    }
}

/// Redis and a fresh PostgreSQL database on the machine's servers, as
/// `hoard data` opens them (no outage layer); `None` (said) if either is
/// missing.
async fn service_storage() -> Option<(Storage, String, sqlx::PgConnection)> {
    use hoard::config::{ColdBackend, Config, HotBackend};
    use sqlx::Connection;
    let admin_url = "postgres://postgres@127.0.0.1:5432/postgres";
    let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await else {
        println!("  Redis + PostgreSQL skipped: PostgreSQL is not reachable at {admin_url}");
        return None;
    };
    let database = format!("hoard_bench_{:x}", rand::random::<u32>());
    let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"));
    sqlx::query(create)
        .execute(&mut admin)
        .await
        .expect("create the bench database");
    let mut config = Config::default();
    config.storage.hot = HotBackend::Redis;
    config.storage.cold = ColdBackend::Postgres;
    config.storage.redis.key_prefix = format!("hoard-bench-{:x}", rand::random::<u32>());
    config.storage.postgres.url = format!("postgres://postgres@127.0.0.1:5432/{database}");
    config.storage.require_durable = false;
    config.storage.resilience.enabled = false;
    match hoard::app::open_storage(&config, Arc::new(hoard::metrics::Metrics::new())).await {
        Ok((storage, _)) => Some((storage, database, admin)),
        Err(error) => {
            println!("  Redis + PostgreSQL skipped: {error}");
            None
        }
    }
}
