//! The storage conformance suite on the embedded sled backend, plus what is
//! sled's own: durability across a reopen and the TTL sweeper.

use hoard::storage::sled::{SledConfig, SledStore};
use hoard::storage::{HotWrite, Limits, Namespace, Op, Storage};

async fn sled_storage() -> (Storage, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = SledConfig {
        path: dir.path().join("db"),
        ..SledConfig::default()
    };
    let store = SledStore::open(&config).unwrap();
    (
        Storage {
            hot: store.clone(),
            cold: store,
            limits: Limits::default(),
        },
        dir,
    )
}

hoard_tests::hot_conformance_suite!(sled_storage);
hoard_tests::cold_conformance_suite!(sled_storage);

/// An acknowledged write survives closing and reopening the database.
#[tokio::test]
async fn acknowledged_writes_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = SledConfig {
        path: dir.path().join("db"),
        ..SledConfig::default()
    };
    let ns = Namespace::plugin("game").unwrap();
    {
        let store = SledStore::open(&config).unwrap();
        let write = HotWrite::Set {
            key: "k".into(),
            value: b"kept".to_vec(),
            ttl_ms: None,
        };
        hoard::storage::HotStore::apply(&*store, &Op::new(ns.clone(), write))
            .await
            .unwrap();
    }
    // The commit thread holds the database until its channel closes.
    let mut reopened = None;
    for _ in 0..100 {
        match SledStore::open(&config) {
            Ok(store) => {
                reopened = Some(store);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let store = reopened.expect("the database reopens");
    assert_eq!(
        hoard::storage::HotStore::get(&*store, &ns, "k")
            .await
            .unwrap(),
        Some(b"kept".to_vec())
    );
}

/// The sweeper deletes expired values from disk, not just from view.
#[tokio::test]
async fn the_sweeper_removes_expired_values() {
    let dir = tempfile::tempdir().unwrap();
    // A background sweep every hour: this test sweeps by hand.
    let config = SledConfig {
        path: dir.path().join("db"),
        sweep_interval_ms: 3_600_000,
        ..SledConfig::default()
    };
    let store = SledStore::open(&config).unwrap();
    let ns = Namespace::plugin("game").unwrap();
    for i in 0..10 {
        let write = HotWrite::Set {
            key: format!("k{i}"),
            value: b"v".to_vec(),
            ttl_ms: Some(1),
        };
        hoard::storage::HotStore::apply(&*store, &Op::new(ns.clone(), write))
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    for i in 0..10 {
        assert_eq!(
            hoard::storage::HotStore::get(&*store, &ns, &format!("k{i}"))
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        store.sweep_expired(4).unwrap(),
        4,
        "a sweep is bounded by its batch"
    );
    assert_eq!(store.sweep_expired(100).unwrap(), 6);
    assert_eq!(store.sweep_expired(100).unwrap(), 0);
    let left = hoard::storage::sled::SledStore::stored_hot_values(&store);
    assert_eq!(left, 0, "expired values are deleted from disk");
}

/// Issue 13, item 8: rewriting a key with a TTL replaces its entry in the
/// expiry index instead of adding one, so the index and the folder follow
/// the live data, not the number of writes. One key written 100,000 times
/// by 32 writers at once (each write durable) leaves one index entry; a
/// deleted key leaves none once its tombstone is swept. (Op marks ride in
/// the value itself; the other writes' markers grow with writes for their
/// retention, here 1 ms.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewriting_a_key_with_a_ttl_keeps_one_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    let config = SledConfig {
        path: dir.path().join("db"),
        dedupe_retention_ms: 1,
        sweep_interval_ms: 3_600_000,
        ..SledConfig::default()
    };
    let store = SledStore::open(&config).unwrap();
    let ns = Namespace::plugin("game").unwrap();
    let writers = 32;
    let writes_each = 100_000 / writers;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (store, ns) = (store.clone(), ns.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..writes_each {
                let write = HotWrite::Set {
                    key: "session".into(),
                    value: format!("{writer}:{i}").into_bytes(),
                    // A week, as offline sessions: nothing expires here.
                    ttl_ms: Some(7 * 24 * 3600 * 1000 + i as u64),
                };
                hoard::storage::HotStore::apply(&*store, &Op::new(ns.clone(), write))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.expiry_index_len(), 1, "one key, one entry");
    assert_eq!(store.stored_hot_values(), 1);
    let folder = folder_bytes(&dir.path().join("db"));
    eprintln!(
        "after 100,000 writes of one key: {} KiB on disk",
        folder / 1024
    );
    assert!(folder < 32 << 20, "the folder holds {folder} bytes");
    // Deleting the key swaps its entry for its tombstone's, which the
    // sweeper takes once the retention has passed.
    let delete = HotWrite::Delete {
        key: "session".into(),
    };
    hoard::storage::HotStore::apply(&*store, &Op::new(ns.clone(), delete))
        .await
        .unwrap();
    assert_eq!(store.expiry_index_len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    while store.sweep_expired(1000).unwrap() > 0 {}
    assert_eq!(store.expiry_index_len(), 0);
    assert_eq!(store.stored_hot_values(), 0);
    // And a TTL dropped by a plain set goes from the index too.
    for ttl_ms in [Some(60_000), None] {
        let write = HotWrite::Set {
            key: "k".into(),
            value: b"v".to_vec(),
            ttl_ms,
        };
        hoard::storage::HotStore::apply(&*store, &Op::new(ns.clone(), write))
            .await
            .unwrap();
    }
    assert_eq!(store.expiry_index_len(), 0);
}

fn folder_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                folder_bytes(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}
