//! The storage conformance suite: one set of cases, run unchanged against
//! every backend. A backend's test file is a line per capability it serves:
//!
//! ```ignore
//! hoard_tests::hot_conformance_suite!(make_storage);
//! hoard_tests::cold_conformance_suite!(make_storage);
//! ```
//!
//! where `make_storage()` is an async fn returning `(Storage, guard)`; the
//! guard keeps the backend's resources (a temp dir, a database) alive for the
//! test. Every case works in namespaces of its own, so cases can share one
//! backend and run in parallel.

use hoard::storage::{
    Applied, ColdWrite, Compare, Condition, Error, ExportView, HotWrite, Item, Namespace, Op,
    RecordWrite, Storage,
};
use std::collections::BTreeSet;
use std::time::Duration;

/// Generates one `#[tokio::test]` per hot-storage case for a backend.
#[macro_export]
macro_rules! hot_conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@cases $make;
            ttl_expires_values, counters_lose_no_concurrent_increment, leaderboards_rank_ties_and_neighbours,
            hashes_keep_fields, hot_large_values_round_trip, hot_hostile_keys_stay_distinct, hot_namespaces_are_isolated,
            hot_ops_apply_once, hot_exports_hold_every_item);
    };
}

/// Generates one `#[tokio::test]` per cold-storage case for a backend.
#[macro_export]
macro_rules! cold_conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@cases $make;
            versions_conflict_and_change_nothing, transactions_are_all_or_nothing,
            pagination_neither_skips_nor_repeats, queries_match_json_fields, history_streams_append_in_order,
            cold_large_values_round_trip, cold_hostile_keys_stay_distinct, cold_namespaces_are_isolated,
            cold_ops_apply_once, cold_batches_commit_whole_or_not_at_all, cold_exports_hold_every_item,
            cold_restores_set_exact_versions_and_seqs);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! conformance_suite {
    (@cases $make:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (storage, _guard) = $make().await;
                $crate::conformance::$case(&storage).await;
            }
        )*
    };
}

/// A namespace no other case uses.
pub fn fresh_namespace() -> Namespace {
    Namespace::plugin(&format!("t{:016x}", rand::random::<u64>())).expect("valid name")
}

async fn hot(storage: &Storage, ns: &Namespace, write: HotWrite) -> Result<Applied, Error> {
    storage.hot.apply(&Op::new(ns.clone(), write)).await
}

async fn cold(storage: &Storage, ns: &Namespace, write: ColdWrite) -> Result<Applied, Error> {
    storage.cold.apply(&Op::new(ns.clone(), write)).await
}

fn set(key: &str, value: &[u8], ttl_ms: Option<u64>) -> HotWrite {
    HotWrite::Set {
        key: key.into(),
        value: value.to_vec(),
        ttl_ms,
    }
}

fn put(collection: &str, key: &str, body: &str, expected_version: Option<u64>) -> RecordWrite {
    RecordWrite::Put {
        collection: collection.into(),
        key: key.into(),
        body: body.into(),
        expected_version,
    }
}

/// A value with a TTL disappears once it passes; one without stays; an
/// increment on an expired key starts again from zero.
pub async fn ttl_expires_values(storage: &Storage) {
    let ns = fresh_namespace();
    hot(storage, &ns, set("short", b"1", Some(150)))
        .await
        .unwrap();
    hot(storage, &ns, set("long", b"2", Some(60_000)))
        .await
        .unwrap();
    hot(storage, &ns, set("forever", b"3", None)).await.unwrap();
    assert_eq!(
        storage.hot.get(&ns, "short").await.unwrap(),
        Some(b"1".to_vec())
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        storage.hot.get(&ns, "short").await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        storage.hot.get(&ns, "long").await.unwrap(),
        Some(b"2".to_vec())
    );
    assert_eq!(
        storage.hot.get(&ns, "forever").await.unwrap(),
        Some(b"3".to_vec())
    );
    assert_eq!(
        hot(
            storage,
            &ns,
            HotWrite::Delete {
                key: "short".into()
            }
        )
        .await
        .unwrap(),
        Applied::Existed(false)
    );
    hot(storage, &ns, set("counter", b"41", Some(150)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        hot(
            storage,
            &ns,
            HotWrite::Incr {
                key: "counter".into(),
                delta: 5
            }
        )
        .await
        .unwrap(),
        Applied::Integer(5)
    );
    // Setting again without a TTL clears the old one.
    hot(storage, &ns, set("renewed", b"x", Some(150)))
        .await
        .unwrap();
    hot(storage, &ns, set("renewed", b"y", None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        storage.hot.get(&ns, "renewed").await.unwrap(),
        Some(b"y".to_vec())
    );
}

/// Concurrent increments on one counter are never lost; non-integers and
/// overflow are refused with `invalid`.
pub async fn counters_lose_no_concurrent_increment(storage: &Storage) {
    let ns = fresh_namespace();
    let (tasks, each) = (8, 40);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (storage, ns) = (storage.clone(), ns.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..each {
                hot(
                    &storage,
                    &ns,
                    HotWrite::Incr {
                        key: "hits".into(),
                        delta: 1,
                    },
                )
                .await
                .unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(
        storage.hot.get(&ns, "hits").await.unwrap(),
        Some((tasks * each).to_string().into_bytes())
    );
    assert_eq!(
        hot(
            storage,
            &ns,
            HotWrite::Incr {
                key: "hits".into(),
                delta: -20
            }
        )
        .await
        .unwrap(),
        Applied::Integer(tasks * each - 20)
    );
    hot(storage, &ns, set("word", b"abc", None)).await.unwrap();
    let not_a_number = hot(
        storage,
        &ns,
        HotWrite::Incr {
            key: "word".into(),
            delta: 1,
        },
    )
    .await;
    assert!(
        matches!(not_a_number, Err(Error::Invalid { .. })),
        "{not_a_number:?}"
    );
    hot(
        storage,
        &ns,
        set("big", i64::MAX.to_string().as_bytes(), None),
    )
    .await
    .unwrap();
    let overflow = hot(
        storage,
        &ns,
        HotWrite::Incr {
            key: "big".into(),
            delta: 1,
        },
    )
    .await;
    assert!(
        matches!(overflow, Err(Error::Invalid { .. })),
        "{overflow:?}"
    );
    assert_eq!(
        storage.hot.get(&ns, "word").await.unwrap(),
        Some(b"abc".to_vec()),
        "a refused increment changes nothing"
    );
}

fn rows(entries: &[hoard::storage::Entry]) -> Vec<(&str, f64, u64)> {
    entries
        .iter()
        .map(|e| (e.member.as_str(), e.score, e.rank))
        .collect()
}

/// Higher scores rank first, ties by member name ascending; "around me"
/// gives the neighbours; increments add; a missing member has no rank.
pub async fn leaderboards_rank_ties_and_neighbours(storage: &Storage) {
    let ns = fresh_namespace();
    for (member, score) in [
        ("dara", 5.0),
        ("ali", 10.0),
        ("cyrus", 20.0),
        ("bita", 20.0),
        ("ella", 20.0),
        ("farid", -1.5),
    ] {
        hot(
            storage,
            &ns,
            HotWrite::LeaderboardSet {
                board: "b".into(),
                member: member.into(),
                score,
            },
        )
        .await
        .unwrap();
    }
    let top = storage.hot.leaderboard_top(&ns, "b", 10).await.unwrap();
    assert_eq!(
        rows(&top),
        [
            ("bita", 20.0, 0),
            ("cyrus", 20.0, 1),
            ("ella", 20.0, 2),
            ("ali", 10.0, 3),
            ("dara", 5.0, 4),
            ("farid", -1.5, 5)
        ]
    );
    assert_eq!(
        rows(&storage.hot.leaderboard_top(&ns, "b", 2).await.unwrap()),
        [("bita", 20.0, 0), ("cyrus", 20.0, 1)]
    );
    let ella = storage
        .hot
        .leaderboard_rank(&ns, "b", "ella")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ella.rank, ella.score), (2, 20.0));
    assert_eq!(
        storage
            .hot
            .leaderboard_rank(&ns, "b", "nobody")
            .await
            .unwrap(),
        None
    );
    // The score alone, as the rank gives it.
    assert_eq!(
        storage.hot.leaderboard_score(&ns, "b", "ella").await,
        Ok(Some(20.0))
    );
    assert_eq!(
        storage.hot.leaderboard_score(&ns, "b", "nobody").await,
        Ok(None)
    );
    let around = storage
        .hot
        .leaderboard_around(&ns, "b", "ali", 1)
        .await
        .unwrap();
    assert_eq!(
        rows(&around),
        [("ella", 20.0, 2), ("ali", 10.0, 3), ("dara", 5.0, 4)]
    );
    let at_top = storage
        .hot
        .leaderboard_around(&ns, "b", "bita", 2)
        .await
        .unwrap();
    assert_eq!(
        rows(&at_top),
        [("bita", 20.0, 0), ("cyrus", 20.0, 1), ("ella", 20.0, 2)]
    );
    let at_bottom = storage
        .hot
        .leaderboard_around(&ns, "b", "farid", 2)
        .await
        .unwrap();
    assert_eq!(
        rows(&at_bottom),
        [("ali", 10.0, 3), ("dara", 5.0, 4), ("farid", -1.5, 5)]
    );
    assert!(
        storage
            .hot
            .leaderboard_around(&ns, "b", "nobody", 3)
            .await
            .unwrap()
            .is_empty()
    );
    let score = hot(
        storage,
        &ns,
        HotWrite::LeaderboardIncr {
            board: "b".into(),
            member: "dara".into(),
            delta: 30.5,
        },
    )
    .await
    .unwrap();
    assert_eq!(score, Applied::Score(35.5));
    assert_eq!(
        storage
            .hot
            .leaderboard_rank(&ns, "b", "dara")
            .await
            .unwrap()
            .unwrap()
            .rank,
        0
    );
    let fresh = hot(
        storage,
        &ns,
        HotWrite::LeaderboardIncr {
            board: "b".into(),
            member: "gita".into(),
            delta: 2.0,
        },
    )
    .await
    .unwrap();
    assert_eq!(fresh, Applied::Score(2.0));
    assert_eq!(
        storage.hot.leaderboard_top(&ns, "other", 5).await.unwrap(),
        []
    );
    // A score that would leave the finite range is refused and unchanged.
    let huge = |delta| HotWrite::LeaderboardIncr {
        board: "b".into(),
        member: "huge".into(),
        delta,
    };
    hot(storage, &ns, huge(f64::MAX)).await.unwrap();
    let overflow = hot(storage, &ns, huge(f64::MAX)).await;
    assert!(
        matches!(overflow, Err(Error::Invalid { .. })),
        "{overflow:?}"
    );
    let kept = storage
        .hot
        .leaderboard_rank(&ns, "b", "huge")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.score, f64::MAX);
}

/// Hash fields are set one by one and read back sorted by field name.
pub async fn hashes_keep_fields(storage: &Storage) {
    let ns = fresh_namespace();
    for (field, value) in [("hp", "10"), ("name", "ali"), ("gold", "7"), ("hp", "12")] {
        hot(
            storage,
            &ns,
            HotWrite::HashSet {
                key: "p1".into(),
                field: field.into(),
                value: value.into(),
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(
        storage.hot.hash_get(&ns, "p1", "hp").await.unwrap(),
        Some(b"12".to_vec())
    );
    assert_eq!(storage.hot.hash_get(&ns, "p1", "mana").await.unwrap(), None);
    let all = storage.hot.hash_get_all(&ns, "p1").await.unwrap();
    let all: Vec<(&str, &[u8])> = all
        .iter()
        .map(|(f, v)| (f.as_str(), v.as_slice()))
        .collect();
    assert_eq!(all, [("gold", &b"7"[..]), ("hp", b"12"), ("name", b"ali")]);
    assert!(
        storage
            .hot
            .hash_get_all(&ns, "p2")
            .await
            .unwrap()
            .is_empty()
    );
    // Values and hashes are separate keyspaces.
    assert_eq!(storage.hot.get(&ns, "p1").await.unwrap(), None);
}

/// A write expecting another version fails with `conflict` and changes
/// nothing; versions count up from 1.
pub async fn versions_conflict_and_change_nothing(storage: &Storage) {
    let ns = fresh_namespace();
    let record = |body: &str, expected| ColdWrite::Record(put("players", "ali", body, expected));
    assert_eq!(
        cold(storage, &ns, record(r#"{"wins":0}"#, Some(0)))
            .await
            .unwrap(),
        Applied::Version(1)
    );
    let again = cold(storage, &ns, record(r#"{"wins":9}"#, Some(0))).await;
    assert_eq!(
        again,
        Err(Error::Conflict {
            expected: 0,
            current: 1
        })
    );
    assert_eq!(
        cold(storage, &ns, record(r#"{"wins":1}"#, Some(1)))
            .await
            .unwrap(),
        Applied::Version(2)
    );
    assert_eq!(
        cold(storage, &ns, record(r#"{"wins":2}"#, None))
            .await
            .unwrap(),
        Applied::Version(3)
    );
    let stale = cold(storage, &ns, record(r#"{"wins":0}"#, Some(2))).await;
    assert_eq!(
        stale,
        Err(Error::Conflict {
            expected: 2,
            current: 3
        })
    );
    let got = storage
        .cold
        .get(&ns, "players", "ali")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.version, got.body.as_str()), (3, r#"{"wins":2}"#));
    let delete = |expected| {
        ColdWrite::Record(RecordWrite::Delete {
            collection: "players".into(),
            key: "ali".into(),
            expected_version: expected,
        })
    };
    assert_eq!(
        cold(storage, &ns, delete(Some(1))).await,
        Err(Error::Conflict {
            expected: 1,
            current: 3
        })
    );
    assert_eq!(
        cold(storage, &ns, delete(Some(3))).await.unwrap(),
        Applied::Existed(true)
    );
    assert_eq!(
        cold(storage, &ns, delete(None)).await.unwrap(),
        Applied::Existed(false)
    );
    assert_eq!(storage.cold.get(&ns, "players", "ali").await.unwrap(), None);
    let missing = cold(storage, &ns, record("{}", Some(4))).await;
    assert_eq!(
        missing,
        Err(Error::Conflict {
            expected: 4,
            current: 0
        })
    );
}

/// A transaction whose last write fails leaves nothing behind; one that
/// succeeds applies every write.
pub async fn transactions_are_all_or_nothing(storage: &Storage) {
    let ns = fresh_namespace();
    cold(
        storage,
        &ns,
        ColdWrite::Record(put("c", "x", r#"{"n":1}"#, None)),
    )
    .await
    .unwrap();
    let failing = ColdWrite::Transaction(vec![
        put("c", "y", r#"{"n":2}"#, None),
        RecordWrite::Delete {
            collection: "c".into(),
            key: "x".into(),
            expected_version: None,
        },
        put("d", "z", r#"{"n":3}"#, None),
        put("c", "x", r#"{"n":4}"#, Some(5)),
    ]);
    // A transaction sees its own writes: `x` was deleted by the second write.
    assert_eq!(
        cold(storage, &ns, failing).await,
        Err(Error::Conflict {
            expected: 5,
            current: 0
        })
    );
    assert_eq!(storage.cold.get(&ns, "c", "y").await.unwrap(), None);
    assert_eq!(storage.cold.get(&ns, "d", "z").await.unwrap(), None);
    assert_eq!(
        storage.cold.get(&ns, "c", "x").await.unwrap().unwrap().body,
        r#"{"n":1}"#
    );
    let succeeding = ColdWrite::Transaction(vec![
        put("c", "y", r#"{"n":2}"#, Some(0)),
        put("c", "x", r#"{"n":5}"#, Some(1)),
        RecordWrite::Delete {
            collection: "c".into(),
            key: "y".into(),
            expected_version: Some(1),
        },
    ]);
    assert_eq!(
        cold(storage, &ns, succeeding).await.unwrap(),
        Applied::Versions(vec![1, 2, 0])
    );
    assert_eq!(
        storage
            .cold
            .get(&ns, "c", "x")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(storage.cold.get(&ns, "c", "y").await.unwrap(), None);
}

/// Paging through a prefix while others insert neither skips nor repeats a
/// record that existed throughout, and respects the prefix.
pub async fn pagination_neither_skips_nor_repeats(storage: &Storage) {
    let ns = fresh_namespace();
    let existing: BTreeSet<String> = (0..120).map(|i| format!("k{:04}", i * 2)).collect();
    for key in &existing {
        cold(
            storage,
            &ns,
            ColdWrite::Record(put("items", key, "{}", None)),
        )
        .await
        .unwrap();
    }
    cold(
        storage,
        &ns,
        ColdWrite::Record(put("items", "other", "{}", None)),
    )
    .await
    .unwrap();
    let inserter = {
        let (storage, ns) = (storage.clone(), ns.clone());
        tokio::spawn(async move {
            for i in 0..120 {
                let key = format!("k{:04}", i * 2 + 1);
                cold(
                    &storage,
                    &ns,
                    ColdWrite::Record(put("items", &key, "{}", None)),
                )
                .await
                .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = storage
            .cold
            .list(&ns, "items", "k", cursor.as_deref(), 7)
            .await
            .unwrap();
        assert!(page.records.len() <= 7);
        seen.extend(page.records.iter().map(|r| r.key.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    inserter.await.unwrap();
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no record repeats");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "ascending key order");
    assert!(existing.is_subset(&unique), "no existing record is skipped");
    assert!(!unique.contains("other"), "the prefix holds");
    let bad_cursor = storage
        .cold
        .list(&ns, "items", "k", Some("not a cursor!"), 5)
        .await;
    assert!(
        matches!(bad_cursor, Err(Error::Invalid { .. })),
        "{bad_cursor:?}"
    );
}

/// Queries compare JSON fields by type and return matches in key order.
pub async fn queries_match_json_fields(storage: &Storage) {
    let ns = fresh_namespace();
    for (key, body) in [
        ("a", r#"{"name":"ali","stats":{"wins":3}}"#),
        ("b", r#"{"name":"bita","stats":{"wins":10}}"#),
        ("c", r#"{"name":"cyrus","stats":{"wins":"many"}}"#),
        ("d", r#"{"name":"dara"}"#),
        ("e", r#"{"name":"ella","stats":{"wins":7}}"#),
    ] {
        cold(
            storage,
            &ns,
            ColdWrite::Record(put("players", key, body, None)),
        )
        .await
        .unwrap();
    }
    let query = |conditions: Vec<Condition>, limit| {
        let (storage, ns) = (storage.clone(), ns.clone());
        async move {
            let found = storage
                .cold
                .query(&ns, "players", &conditions, limit)
                .await
                .unwrap();
            found.into_iter().map(|r| r.key).collect::<Vec<_>>()
        }
    };
    let wins = |compare, value: &str| Condition::parse("stats.wins", compare, value).unwrap();
    assert_eq!(query(vec![wins(Compare::Ge, "7")], 10).await, ["b", "e"]);
    assert_eq!(query(vec![wins(Compare::Lt, "7")], 10).await, ["a"]);
    assert_eq!(
        query(vec![wins(Compare::Ne, "3")], 10).await,
        ["b", "e"],
        "a missing or non-number field never matches"
    );
    assert_eq!(
        query(
            vec![
                wins(Compare::Gt, "0"),
                Condition::parse("name", Compare::Eq, r#""ella""#).unwrap()
            ],
            10
        )
        .await,
        ["e"]
    );
    assert_eq!(query(vec![wins(Compare::Gt, "0")], 2).await, ["a", "b"]);
    assert_eq!(query(vec![], 10).await.len(), 5);
}

/// History streams number entries from 1 and read back in order; a stream
/// never appended to is `not-found`.
pub async fn history_streams_append_in_order(storage: &Storage) {
    let ns = fresh_namespace();
    for (i, body) in [r#"{"game":1}"#, r#"{"game":2}"#, r#"{"game":3}"#]
        .into_iter()
        .enumerate()
    {
        let appended = cold(
            storage,
            &ns,
            ColdWrite::AppendHistory {
                stream: "matches".into(),
                body: body.into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(appended, Applied::Seq(i as u64 + 1));
    }
    let all = storage
        .cold
        .read_history(&ns, "matches", 0, 10)
        .await
        .unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(all[2].body, r#"{"game":3}"#);
    let later = storage
        .cold
        .read_history(&ns, "matches", 2, 10)
        .await
        .unwrap();
    assert_eq!(later.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
    assert_eq!(
        storage
            .cold
            .read_history(&ns, "matches", 0, 2)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        storage.cold.read_history(&ns, "nothing", 0, 10).await,
        Err(Error::NotFound)
    );
}

/// 1 MiB values round-trip byte for byte.
pub async fn hot_large_values_round_trip(storage: &Storage) {
    let ns = fresh_namespace();
    let value: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    hot(storage, &ns, set("big", &value, None)).await.unwrap();
    assert_eq!(storage.hot.get(&ns, "big").await.unwrap(), Some(value));
}

/// 1 MiB record bodies round-trip byte for byte.
pub async fn cold_large_values_round_trip(storage: &Storage) {
    let ns = fresh_namespace();
    let body = serde_json::json!({"blob": "x".repeat(1024 * 1024)}).to_string();
    cold(
        storage,
        &ns,
        ColdWrite::Record(put("blobs", "one", &body, None)),
    )
    .await
    .unwrap();
    assert_eq!(
        storage
            .cold
            .get(&ns, "blobs", "one")
            .await
            .unwrap()
            .unwrap()
            .body,
        body
    );
}

fn hostile_keys(long: &str) -> Vec<&str> {
    vec![
        "*",
        ":",
        "'",
        "\0",
        "a\0b",
        "a",
        "a:b",
        "ключ🔑",
        "%_",
        "' OR 1=1 --",
        "{tag}x",
        long,
    ]
}

/// Keys with glob, separator, quote, NUL, hash-tag and non-ASCII
/// characters, and a 10 KB key, are each their own key in hot storage.
pub async fn hot_hostile_keys_stay_distinct(storage: &Storage) {
    let ns = fresh_namespace();
    let long = "k".repeat(10 * 1024);
    let keys = hostile_keys(&long);
    for (i, key) in keys.iter().enumerate() {
        hot(storage, &ns, set(key, i.to_string().as_bytes(), None))
            .await
            .unwrap();
        hot(
            storage,
            &ns,
            HotWrite::LeaderboardSet {
                board: (*key).into(),
                member: (*key).into(),
                score: i as f64,
            },
        )
        .await
        .unwrap();
        hot(
            storage,
            &ns,
            HotWrite::HashSet {
                key: (*key).into(),
                field: (*key).into(),
                value: i.to_string().into_bytes(),
            },
        )
        .await
        .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            storage.hot.get(&ns, key).await.unwrap(),
            Some(i.to_string().into_bytes()),
            "hot key {key:?}"
        );
        let entry = storage
            .hot
            .leaderboard_rank(&ns, key, key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(entry.score, i as f64);
        assert_eq!(
            storage.hot.hash_get(&ns, key, key).await.unwrap(),
            Some(i.to_string().into_bytes())
        );
    }
}

/// The same hostile names as collection keys; a prefix with glob or LIKE
/// characters is literal.
pub async fn cold_hostile_keys_stay_distinct(storage: &Storage) {
    let ns = fresh_namespace();
    let long = "k".repeat(10 * 1024);
    let keys = hostile_keys(&long);
    for (i, key) in keys.iter().enumerate() {
        let body = serde_json::json!({"i": i}).to_string();
        cold(
            storage,
            &ns,
            ColdWrite::Record(put("hostile", key, &body, None)),
        )
        .await
        .unwrap();
        cold(
            storage,
            &ns,
            ColdWrite::AppendHistory {
                stream: (*key).into(),
                body: body.clone(),
            },
        )
        .await
        .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        let record = storage
            .cold
            .get(&ns, "hostile", key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            record.body,
            serde_json::json!({"i": i}).to_string(),
            "cold key {key:?}"
        );
        assert_eq!(
            storage
                .cold
                .read_history(&ns, key, 0, 10)
                .await
                .unwrap()
                .len(),
            1,
            "stream {key:?}"
        );
    }
    let page = storage
        .cold
        .list(&ns, "hostile", "", None, 100)
        .await
        .unwrap();
    let listed: BTreeSet<&str> = page.records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(listed, keys.iter().copied().collect());
    let star = storage
        .cold
        .list(&ns, "hostile", "*", None, 100)
        .await
        .unwrap();
    assert_eq!(star.records.len(), 1);
    let percent = storage
        .cold
        .list(&ns, "hostile", "%", None, 100)
        .await
        .unwrap();
    assert_eq!(
        percent
            .records
            .iter()
            .map(|r| r.key.as_str())
            .collect::<Vec<_>>(),
        ["%_"]
    );
}

/// Two namespaces using the same names see different hot data.
pub async fn hot_namespaces_are_isolated(storage: &Storage) {
    let (a, b) = (fresh_namespace(), fresh_namespace());
    hot(storage, &a, set("k", b"a's", None)).await.unwrap();
    hot(
        storage,
        &a,
        HotWrite::HashSet {
            key: "h".into(),
            field: "f".into(),
            value: b"a's".to_vec(),
        },
    )
    .await
    .unwrap();
    hot(
        storage,
        &a,
        HotWrite::LeaderboardSet {
            board: "wins".into(),
            member: "m".into(),
            score: 1.0,
        },
    )
    .await
    .unwrap();
    assert_eq!(storage.hot.get(&b, "k").await.unwrap(), None);
    assert_eq!(storage.hot.hash_get(&b, "h", "f").await.unwrap(), None);
    assert!(
        storage
            .hot
            .leaderboard_top(&b, "wins", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        hot(storage, &b, HotWrite::Delete { key: "k".into() })
            .await
            .unwrap(),
        Applied::Existed(false)
    );
    assert_eq!(
        storage.hot.get(&a, "k").await.unwrap(),
        Some(b"a's".to_vec()),
        "b's delete did not touch a"
    );
}

/// Two namespaces using the same names see different cold data.
pub async fn cold_namespaces_are_isolated(storage: &Storage) {
    let (a, b) = (fresh_namespace(), fresh_namespace());
    cold(storage, &a, ColdWrite::Record(put("c", "k", "{}", None)))
        .await
        .unwrap();
    cold(
        storage,
        &a,
        ColdWrite::AppendHistory {
            stream: "s".into(),
            body: "{}".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(storage.cold.get(&b, "c", "k").await.unwrap(), None);
    assert!(
        storage
            .cold
            .list(&b, "c", "", None, 10)
            .await
            .unwrap()
            .records
            .is_empty()
    );
    assert_eq!(
        storage.cold.read_history(&b, "s", 0, 10).await,
        Err(Error::NotFound)
    );
    let delete = RecordWrite::Delete {
        collection: "c".into(),
        key: "k".into(),
        expected_version: None,
    };
    assert_eq!(
        cold(storage, &b, ColdWrite::Record(delete)).await.unwrap(),
        Applied::Existed(false)
    );
    assert_eq!(
        storage
            .cold
            .get(&a, "c", "k")
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}

/// Applies `op` `times` times at once; every call must give `expected`.
async fn concurrently<W>(
    times: usize,
    op: Op<W>,
    apply: impl Fn(Op<W>) -> tokio::task::JoinHandle<Result<Applied, Error>>,
    expected: &Applied,
) where
    W: Clone,
{
    let handles: Vec<_> = (0..times).map(|_| apply(op.clone())).collect();
    for handle in handles {
        assert_eq!(
            &handle.await.expect("task").unwrap(),
            expected,
            "a duplicate"
        );
    }
}

/// Every write is applied once per op id: applying the same op again (a
/// replay after an outage, a retried action) changes nothing and returns
/// the first result, also when other writes came in between and when the
/// duplicates arrive at the same time. A different id applies again.
pub async fn hot_ops_apply_once(storage: &Storage) {
    let ns = fresh_namespace();
    let op = |write: HotWrite| Op::new(ns.clone(), write);
    let again = async |op: &Op<HotWrite>| storage.hot.apply(op).await.unwrap();

    let first = op(HotWrite::Incr {
        key: "n".into(),
        delta: 1,
    });
    assert_eq!(again(&first).await, Applied::Integer(1));
    let second = op(HotWrite::Incr {
        key: "n".into(),
        delta: 10,
    });
    assert_eq!(again(&second).await, Applied::Integer(11));
    assert_eq!(
        again(&first).await,
        Applied::Integer(1),
        "the first result, again"
    );
    assert_eq!(again(&second).await, Applied::Integer(11));
    assert_eq!(
        storage.hot.get(&ns, "n").await.unwrap(),
        Some(b"11".to_vec())
    );
    // The same write under a new id is a new write.
    let fresh = Op::new(ns.clone(), first.write.clone());
    assert_eq!(again(&fresh).await, Applied::Integer(12));

    // A set replayed after a later set does not undo it.
    let old = op(set("k", b"old", None));
    again(&old).await;
    again(&op(set("k", b"new", Some(60_000)))).await;
    assert_eq!(again(&old).await, Applied::Done);
    assert_eq!(
        storage.hot.get(&ns, "k").await.unwrap(),
        Some(b"new".to_vec())
    );

    // A delete answers what it found the first time.
    let delete = op(HotWrite::Delete { key: "k".into() });
    assert_eq!(again(&delete).await, Applied::Existed(true));
    again(&op(set("k", b"back", None))).await;
    assert_eq!(again(&delete).await, Applied::Existed(true));
    assert_eq!(
        storage.hot.get(&ns, "k").await.unwrap(),
        Some(b"back".to_vec())
    );

    let field = op(HotWrite::HashSet {
        key: "h".into(),
        field: "f".into(),
        value: b"1".to_vec(),
    });
    again(&field).await;
    again(&op(HotWrite::HashSet {
        key: "h".into(),
        field: "f".into(),
        value: b"2".to_vec(),
    }))
    .await;
    again(&field).await;
    assert_eq!(
        storage.hot.hash_get(&ns, "h", "f").await.unwrap(),
        Some(b"2".to_vec())
    );

    let bump = op(HotWrite::LeaderboardIncr {
        board: "b".into(),
        member: "ann".into(),
        delta: 2.5,
    });
    assert_eq!(again(&bump).await, Applied::Score(2.5));
    assert_eq!(again(&bump).await, Applied::Score(2.5));
    let reset = op(HotWrite::LeaderboardSet {
        board: "b".into(),
        member: "bob".into(),
        score: 7.0,
    });
    again(&reset).await;
    again(&op(HotWrite::LeaderboardIncr {
        board: "b".into(),
        member: "bob".into(),
        delta: 1.0,
    }))
    .await;
    again(&reset).await;
    let top = storage.hot.leaderboard_top(&ns, "b", 10).await.unwrap();
    let scores: Vec<(String, f64)> = top.into_iter().map(|e| (e.member, e.score)).collect();
    assert_eq!(scores, [("bob".to_owned(), 8.0), ("ann".to_owned(), 2.5)]);

    // Eight copies of one increment at once: applied once, one answer.
    let counter = op(HotWrite::Incr {
        key: "c".into(),
        delta: 5,
    });
    let hot = storage.hot.clone();
    concurrently(
        8,
        counter,
        |op| {
            let hot = hot.clone();
            tokio::spawn(async move { hot.apply(&op).await })
        },
        &Applied::Integer(5),
    )
    .await;
    assert_eq!(
        storage.hot.get(&ns, "c").await.unwrap(),
        Some(b"5".to_vec())
    );
}

/// The same for cold storage: puts, deletes, transactions and history
/// appends apply once per op id.
pub async fn cold_ops_apply_once(storage: &Storage) {
    let ns = fresh_namespace();
    let op = |write: ColdWrite| Op::new(ns.clone(), write);
    let apply = async |op: &Op<ColdWrite>| storage.cold.apply(op).await;

    let create = op(ColdWrite::Record(put("c", "a", r#"{"n":1}"#, None)));
    assert_eq!(apply(&create).await.unwrap(), Applied::Version(1));
    assert_eq!(apply(&create).await.unwrap(), Applied::Version(1));
    let update = op(ColdWrite::Record(put("c", "a", r#"{"n":2}"#, Some(1))));
    assert_eq!(apply(&update).await.unwrap(), Applied::Version(2));
    // Replayed, the versioned put is not a conflict: it was applied.
    assert_eq!(apply(&update).await.unwrap(), Applied::Version(2));
    assert_eq!(apply(&create).await.unwrap(), Applied::Version(1));
    let record = storage.cold.get(&ns, "c", "a").await.unwrap().unwrap();
    assert_eq!((record.version, record.body.as_str()), (2, r#"{"n":2}"#));
    // A put that failed its version check left no mark: it fails again.
    let stale = op(ColdWrite::Record(put("c", "a", "{}", Some(1))));
    for _ in 0..2 {
        assert!(matches!(apply(&stale).await, Err(Error::Conflict { .. })));
    }

    let delete = op(ColdWrite::Record(RecordWrite::Delete {
        collection: "c".into(),
        key: "a".into(),
        expected_version: None,
    }));
    assert_eq!(apply(&delete).await.unwrap(), Applied::Existed(true));
    assert_eq!(apply(&delete).await.unwrap(), Applied::Existed(true));
    assert_eq!(storage.cold.get(&ns, "c", "a").await.unwrap(), None);

    let transaction = op(ColdWrite::Transaction(vec![
        put("c", "x", "1", Some(0)),
        put("c", "y", "2", None),
    ]));
    assert_eq!(
        apply(&transaction).await.unwrap(),
        Applied::Versions(vec![1, 1])
    );
    assert_eq!(
        apply(&transaction).await.unwrap(),
        Applied::Versions(vec![1, 1])
    );
    assert_eq!(
        storage
            .cold
            .get(&ns, "c", "y")
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );

    let append = |body: &str| {
        op(ColdWrite::AppendHistory {
            stream: "s".into(),
            body: body.into(),
        })
    };
    let first = append(r#""one""#);
    assert_eq!(apply(&first).await.unwrap(), Applied::Seq(1));
    assert_eq!(apply(&append(r#""two""#)).await.unwrap(), Applied::Seq(2));
    assert_eq!(apply(&first).await.unwrap(), Applied::Seq(1));
    // Eight copies of one append at once: one entry.
    let cold = storage.cold.clone();
    concurrently(
        8,
        append(r#""three""#),
        |op| {
            let cold = cold.clone();
            tokio::spawn(async move { cold.apply(&op).await })
        },
        &Applied::Seq(3),
    )
    .await;
    let entries = storage.cold.read_history(&ns, "s", 0, 10).await.unwrap();
    let bodies: Vec<&str> = entries.iter().map(|e| e.body.as_str()).collect();
    assert_eq!(bodies, [r#""one""#, r#""two""#, r#""three""#]);
}

/// `apply_batch`: all of a batch applies, with each op's own result, or
/// none of it does; a backend that does not batch applies none. Either
/// way, the ops applied one by one afterwards land once.
pub async fn cold_batches_commit_whole_or_not_at_all(storage: &Storage) {
    let ns = fresh_namespace();
    let op = |write: ColdWrite| Op::new(ns.clone(), write);
    let applied_before = op(ColdWrite::Record(put("c", "before", "0", None)));
    storage.cold.apply(&applied_before).await.unwrap();
    let batch = [
        op(ColdWrite::Record(put("c", "a", r#"{"n":1}"#, None))),
        op(ColdWrite::AppendHistory {
            stream: "s".into(),
            body: r#""one""#.into(),
        }),
        op(ColdWrite::Transaction(vec![
            put("c", "x", "1", Some(0)),
            put("c", "a", r#"{"n":2}"#, Some(1)),
        ])),
        applied_before.clone(),
    ];
    let expected = [
        Applied::Version(1),
        Applied::Seq(1),
        Applied::Versions(vec![1, 2]),
        Applied::Version(1),
    ];
    let refs: Vec<&Op<ColdWrite>> = batch.iter().collect();
    match storage.cold.apply_batch(&refs).await {
        Ok(applied) => assert_eq!(applied, expected),
        Err(_) => {
            assert_eq!(storage.cold.get(&ns, "c", "a").await.unwrap(), None);
            for (op, expected) in batch.iter().zip(&expected) {
                assert_eq!(&storage.cold.apply(op).await.unwrap(), expected);
            }
        }
    }
    // Once more, one by one: every op answers as it first did.
    for (op, expected) in batch.iter().zip(&expected) {
        assert_eq!(&storage.cold.apply(op).await.unwrap(), expected);
    }
    let record = storage.cold.get(&ns, "c", "a").await.unwrap().unwrap();
    assert_eq!((record.version, record.body.as_str()), (2, r#"{"n":2}"#));

    // One op of a batch fails its version check: nothing of it applies.
    let failing = [
        op(ColdWrite::Record(put("c", "b", "1", None))),
        op(ColdWrite::Record(put("c", "a", "{}", Some(1)))),
        op(ColdWrite::AppendHistory {
            stream: "s".into(),
            body: r#""two""#.into(),
        }),
    ];
    let refs: Vec<&Op<ColdWrite>> = failing.iter().collect();
    assert!(storage.cold.apply_batch(&refs).await.is_err());
    assert_eq!(storage.cold.get(&ns, "c", "b").await.unwrap(), None);
    let entries = storage.cold.read_history(&ns, "s", 0, 10).await.unwrap();
    assert_eq!(entries.len(), 1, "the failed batch appended nothing");
    // Its other ops left no marks: one by one, they apply.
    assert_eq!(
        storage.cold.apply(&failing[0]).await.unwrap(),
        Applied::Version(1)
    );
    let stale = storage.cold.apply(&failing[1]).await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    assert_eq!(
        storage.cold.apply(&failing[2]).await.unwrap(),
        Applied::Seq(2)
    );
}

/// Everything a namespace's export hands over (hot or cold), sorted.
async fn exported(
    storage: &Storage,
    ns: &Namespace,
    hot_capability: bool,
) -> (Vec<Item>, ExportView) {
    let mut items = Vec::new();
    let mut sink = |item: Item| {
        items.push(item);
        Ok(())
    };
    let view = match hot_capability {
        true => storage.hot.export(ns, &mut sink).await.unwrap(),
        false => storage.cold.export(ns, &mut sink).await.unwrap(),
    };
    items.sort_by_key(|item| format!("{item:?}"));
    (items, view)
}

/// A hot export hands over every live value (with the time it has left),
/// hash field and leaderboard score of its namespace, each once, names
/// byte for byte (hostile ones too): nothing expired or deleted, nothing
/// of another namespace, none of the backend's own bookkeeping.
pub async fn hot_exports_hold_every_item(storage: &Storage) {
    let (ns, other) = (fresh_namespace(), fresh_namespace());
    let hostile = ["a}b", "x:op:00", "*?[", "日本", "{t}"];
    for key in hostile {
        hot(storage, &ns, set(key, key.as_bytes(), None))
            .await
            .unwrap();
    }
    hot(storage, &ns, set("binary", &[0, 255, 7], None))
        .await
        .unwrap();
    hot(storage, &ns, set("lives", b"soon gone", Some(60_000)))
        .await
        .unwrap();
    hot(storage, &ns, set("expired", b"x", Some(50)))
        .await
        .unwrap();
    hot(storage, &ns, set("deleted", b"x", None)).await.unwrap();
    hot(
        storage,
        &ns,
        HotWrite::Delete {
            key: "deleted".into(),
        },
    )
    .await
    .unwrap();
    hot(
        storage,
        &ns,
        HotWrite::Incr {
            key: "counter".into(),
            delta: -3,
        },
    )
    .await
    .unwrap();
    for (field, value) in [("hp", "12"), ("name", "orc}")] {
        hot(
            storage,
            &ns,
            HotWrite::HashSet {
                key: "monster".into(),
                field: field.into(),
                value: value.as_bytes().to_vec(),
            },
        )
        .await
        .unwrap();
    }
    for (member, score) in [("ana", 3.5), ("bo", -0.25), ("cy", 3.5)] {
        hot(
            storage,
            &ns,
            HotWrite::LeaderboardSet {
                board: "wins".into(),
                member: member.into(),
                score,
            },
        )
        .await
        .unwrap();
    }
    hot(storage, &other, set("lives", b"elsewhere", None))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (mut items, _) = exported(storage, &ns, true).await;
    // The value with a TTL has a little less than it was given.
    let lives = items
        .iter_mut()
        .find_map(|item| match item {
            Item::Value { key, ttl_ms, .. } if key == "lives" => Some(ttl_ms),
            _ => None,
        })
        .expect("the value with a TTL is exported");
    let left = lives.take().expect("with its TTL");
    assert!((50_000..=60_000).contains(&left), "{left} ms left");
    let value = |key: &str, value: &[u8]| Item::Value {
        key: key.into(),
        value: value.to_vec(),
        ttl_ms: None,
    };
    let mut expected: Vec<Item> = hostile
        .iter()
        .map(|key| value(key, key.as_bytes()))
        .chain([
            value("binary", &[0, 255, 7]),
            value("lives", b"soon gone"),
            value("counter", b"-3"),
            Item::HashField {
                key: "monster".into(),
                field: "hp".into(),
                value: b"12".to_vec(),
            },
            Item::HashField {
                key: "monster".into(),
                field: "name".into(),
                value: b"orc}".to_vec(),
            },
        ])
        .chain(
            [("ana", 3.5), ("bo", -0.25), ("cy", 3.5)].map(|(member, score)| Item::Score {
                board: "wins".into(),
                member: member.into(),
                score,
            }),
        )
        .collect();
    expected.sort_by_key(|item| format!("{item:?}"));
    assert_eq!(items, expected);

    let (empty, _) = exported(storage, &fresh_namespace(), true).await;
    assert_eq!(empty, []);
}

/// A cold export hands over every record at its version and every history
/// entry at its seq, of its namespace alone; a deleted record is gone.
pub async fn cold_exports_hold_every_item(storage: &Storage) {
    let (ns, other) = (fresh_namespace(), fresh_namespace());
    for body in [r#"{"v":1}"#, r#"{"v":2}"#, r#"{"v":3}"#] {
        cold(
            storage,
            &ns,
            ColdWrite::Record(put("c", "thrice", body, None)),
        )
        .await
        .unwrap();
    }
    cold(
        storage,
        &ns,
        ColdWrite::Record(put("d}", "k:op", "[]", None)),
    )
    .await
    .unwrap();
    cold(
        storage,
        &ns,
        ColdWrite::Record(put("c", "gone", "{}", None)),
    )
    .await
    .unwrap();
    cold(
        storage,
        &ns,
        ColdWrite::Record(RecordWrite::Delete {
            collection: "c".into(),
            key: "gone".into(),
            expected_version: None,
        }),
    )
    .await
    .unwrap();
    for body in ["1", "2"] {
        cold(
            storage,
            &ns,
            ColdWrite::AppendHistory {
                stream: "matches".into(),
                body: body.into(),
            },
        )
        .await
        .unwrap();
    }
    cold(
        storage,
        &other,
        ColdWrite::Record(put("c", "thrice", "{}", None)),
    )
    .await
    .unwrap();

    let (items, _) = exported(storage, &ns, false).await;
    let mut expected = vec![
        Item::Record {
            collection: "c".into(),
            key: "thrice".into(),
            version: 3,
            body: r#"{"v":3}"#.into(),
        },
        Item::Record {
            collection: "d}".into(),
            key: "k:op".into(),
            version: 1,
            body: "[]".into(),
        },
        Item::History {
            stream: "matches".into(),
            seq: 1,
            body: "1".into(),
        },
        Item::History {
            stream: "matches".into(),
            seq: 2,
            body: "2".into(),
        },
    ];
    expected.sort_by_key(|item| format!("{item:?}"));
    assert_eq!(items, expected);
}

/// `restore-record` sets a record to exactly the version and body given,
/// only from the version expected (0: absent); `restore-history` sets an
/// entry at its seq, adding or replacing it, answers the stream's last
/// seq, and later appends go after it. Both apply once per op id.
pub async fn cold_restores_set_exact_versions_and_seqs(storage: &Storage) {
    let ns = fresh_namespace();
    let restore = |version: u64, expected_version: u64, body: &str| ColdWrite::RestoreRecord {
        collection: "c".into(),
        key: "k".into(),
        version,
        body: body.into(),
        expected_version,
    };
    let first = Op::new(ns.clone(), restore(7, 0, r#"{"n":7}"#));
    assert_eq!(storage.cold.apply(&first).await, Ok(Applied::Version(7)));
    let record = storage.cold.get(&ns, "c", "k").await.unwrap().unwrap();
    assert_eq!((record.version, record.body.as_str()), (7, r#"{"n":7}"#));
    // The same op again: its first answer, nothing more.
    assert_eq!(storage.cold.apply(&first).await, Ok(Applied::Version(7)));
    assert_eq!(
        cold(storage, &ns, restore(8, 0, "{}")).await,
        Err(Error::Conflict {
            expected: 0,
            current: 7
        })
    );
    assert_eq!(
        cold(storage, &ns, restore(9, 7, r#"{"n":9}"#)).await,
        Ok(Applied::Version(9))
    );
    assert_eq!(
        cold(
            storage,
            &ns,
            ColdWrite::Record(put("c", "k", "{}", Some(9)))
        )
        .await,
        Ok(Applied::Version(10))
    );
    // Read first, so a layer that answers from what it knows knows it.
    assert_eq!(storage.cold.get(&ns, "c", "absent").await, Ok(None));
    assert_eq!(
        cold(
            storage,
            &ns,
            ColdWrite::RestoreRecord {
                collection: "c".into(),
                key: "absent".into(),
                version: 2,
                body: "{}".into(),
                expected_version: 1,
            }
        )
        .await,
        Err(Error::Conflict {
            expected: 1,
            current: 0
        })
    );
    assert_eq!(storage.cold.get(&ns, "c", "absent").await, Ok(None));

    let entry = |seq: u64, body: &str| ColdWrite::RestoreHistory {
        stream: "s".into(),
        seq,
        body: body.into(),
    };
    let fifth = Op::new(ns.clone(), entry(5, "5"));
    assert_eq!(storage.cold.apply(&fifth).await, Ok(Applied::Seq(5)));
    assert_eq!(
        cold(
            storage,
            &ns,
            ColdWrite::AppendHistory {
                stream: "s".into(),
                body: "6".into()
            }
        )
        .await,
        Ok(Applied::Seq(6))
    );
    // Each answers the stream's last seq after it.
    assert_eq!(cold(storage, &ns, entry(2, "2")).await, Ok(Applied::Seq(6)));
    assert_eq!(
        cold(storage, &ns, entry(5, "five")).await,
        Ok(Applied::Seq(6))
    );
    // The first op again changes nothing: entry 5 stays "five".
    assert_eq!(storage.cold.apply(&fifth).await, Ok(Applied::Seq(5)));
    let entries = storage.cold.read_history(&ns, "s", 0, 10).await.unwrap();
    let entries: Vec<(u64, &str)> = entries.iter().map(|e| (e.seq, e.body.as_str())).collect();
    assert_eq!(entries, [(2, "2"), (5, "five"), (6, "6")]);
    assert_eq!(
        cold(
            storage,
            &ns,
            ColdWrite::AppendHistory {
                stream: "s".into(),
                body: "7".into()
            }
        )
        .await,
        Ok(Applied::Seq(7))
    );
}
