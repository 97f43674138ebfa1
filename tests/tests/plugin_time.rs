//! A plugin's time limit counts the plugin's own running time, not the time
//! it waits on storage: a slow backend is not the plugin's fault. The whole
//! call is still bounded by `call_wall_timeout_ms`. Storage is made slow for
//! real by freezing a Redis server of the test's own.

use hoard::storage::redis::SingleRedis;
use hoard::storage::{Limits, OpId, Storage};
use hoard::wasm::{CallError, Fault, Instance, Runtime, WasmConfig};
use hoard_tests::plugin_path;
use hoard_tests::services::{RedisServer, temp_sled};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The probe on hot storage in `redis` (cold on a throwaway sled), created
/// and joined by one player.
async fn probe_on(
    redis: &RedisServer,
    config: WasmConfig,
) -> (Runtime, Instance, Vec<u8>, tempfile::TempDir) {
    let hot = SingleRedis::connect(&redis.config())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (cold, dir) = temp_sled();
    let storage = Storage {
        hot: Arc::new(hot),
        cold,
        limits: Limits::default(),
    };
    let runtime = Runtime::new(config, storage).expect("runtime");
    let plugin = runtime
        .load("probe", &plugin_path("probe"))
        .await
        .expect("probe loads");
    let mut instance = plugin.instantiate().await.expect("instance");
    let state = instance.create("s", 1, "{}").await.expect("create");
    let state = instance
        .join(&state, "p", None, OpId::random())
        .await
        .expect("join");
    (runtime, instance, state, dir)
}

/// Runs `call` with `redis` frozen for its first `pause`.
async fn with_frozen<T>(redis: &RedisServer, pause: Duration, call: impl Future<Output = T>) -> T {
    redis.pause();
    let (out, ()) = tokio::join!(call, async {
        tokio::time::sleep(pause).await;
        redis.resume();
    });
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_on_slow_storage_is_not_the_plugins_time() {
    let redis = RedisServer::start().await;
    let config = WasmConfig {
        call_timeout_ms: 200,
        call_wall_timeout_ms: 10_000,
        ..WasmConfig::default()
    };
    let (_runtime, mut instance, state, _dir) = probe_on(&redis, config).await;

    // Redis answers nothing for 600 ms, three times the plugin's limit. The
    // probe times the storage call itself, as the benchmark reads it.
    let started = Instant::now();
    let action = r#"{"do":"hot-get","timed":true,"key":"k"}"#;
    let turn = with_frozen(
        &redis,
        Duration::from_millis(600),
        instance.act(&state, "p", action, OpId::random()),
    )
    .await;
    let waited = started.elapsed();
    let turn = turn.expect("a call that only waited on storage succeeds");
    assert!(
        waited >= Duration::from_millis(550),
        "the call should have waited for the frozen server, took {waited:?}"
    );
    let last = &serde_json::from_slice::<serde_json::Value>(&turn.state).unwrap()["last"];
    assert_eq!(last["result"], serde_json::Value::Null, "{last}");
    let call = Duration::from_nanos(last["ns"].as_u64().expect("the call's time"));
    assert!(
        call >= Duration::from_millis(550) && call <= waited,
        "the plugin should have timed the storage wait inside its call ({waited:?}), timed {call:?}"
    );

    // The plugin's own time still counts: a busy loop is stopped.
    let looped = instance
        .act(&state, "p", r#"{"do":"loop"}"#, OpId::random())
        .await;
    assert_eq!(
        looped,
        Err(CallError::Fault(Fault::TimedOut { limit_ms: 200 }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_stopped_at_its_wall_time_limit() {
    let redis = RedisServer::start().await;
    let config = WasmConfig {
        call_timeout_ms: 200,
        call_wall_timeout_ms: 500,
        ..WasmConfig::default()
    };
    let (_runtime, mut instance, state, _dir) = probe_on(&redis, config).await;

    // The probe reads forever; its first read waits 800 ms on a frozen server.
    let started = Instant::now();
    let action = r#"{"do":"hot-get-forever","key":"k"}"#;
    let result = with_frozen(
        &redis,
        Duration::from_millis(800),
        instance.act(&state, "p", action, OpId::random()),
    )
    .await;
    let error = result.expect_err("a call past its wall limit fails");
    assert_eq!(error, CallError::Fault(Fault::Stalled { limit_ms: 500 }));
    assert!(
        error.to_string().contains("storage waits included"),
        "{error}"
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "stopped once the plugin ran again, took {took:?}"
    );
}
