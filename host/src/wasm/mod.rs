//! The plugin runtime: wasmtime engine, linker, plugin loading and calls.
//!
//! - One [`Runtime`] per host: the engine (pooling allocator, epoch
//!   interruption), the linker (hoard's WIT imports plus WASI with no
//!   files, sockets or environment; stdout and stderr go to the log,
//!   [`log`]) and the epoch ticker thread. Loading reads a component's
//!   outline first ([`shape`]) to refuse what cannot run, by name.
//! - One [`Plugin`] per loaded component, compiled once into an
//!   `InstancePre`.
//! - One [`Instance`] per game session: a store of its own with memory and
//!   time limits. Instances are never shared between sessions, so a plugin
//!   cannot carry one session's data into another.
//!
//! Host functions live one file per WIT interface ([`hot`], [`cold`]). They
//! check guest-supplied sizes before anything else, turn guest requests into
//! storage ops, and return storage errors as WIT errors; only a host bug
//! traps.
//!
//! **Invariant:** this is the only module that knows wasmtime or the
//! generated bindings; nothing outside sees a WIT type.

mod alarms;
mod cold;
mod hot;
mod log;
mod shape;

pub use alarms::{Alarm, Alarms};
pub use shape::{Shape, Size};

use crate::storage::{self, Namespace, OpId, Storage};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, ComponentExportIndex, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The generated bindings of `wit/`: the one `bindgen!` in hoard.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        trappable_error_type: {
            "hoard:plugin/types.error" => crate::storage::Error,
        },
    });
}

use bindings::exports::hoard::plugin::game;

/// The version of the plugin contract (`wit/`, `hoard:plugin@...`) this
/// host speaks. A component built for another `0.x` is refused by name.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// Most elements one table of an instance may hold (the pooling
/// allocator reserves this much per table; wasmtime's default).
pub const TABLE_ELEMENTS_MAX: u64 = 20_000;

/// Limits and sizes of the plugin runtime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmConfig {
    /// Most linear memory one plugin instance may grow to.
    pub memory_bytes_max: u64,
    /// Longest one plugin call may run before it is interrupted. Time the
    /// call spends waiting on storage does not count: a slow backend is not
    /// the plugin's fault.
    pub call_timeout_ms: u64,
    /// Longest one plugin call may last in all, storage waits included.
    pub call_wall_timeout_ms: u64,
    /// How often the epoch ticks; a call overruns by at most one tick.
    pub epoch_tick_ms: u64,
    /// Most plugin instances alive at once (one per active session, those
    /// answering RPCs, and a few for loading and checking). Sized into the
    /// pooling allocator.
    pub instances_max: u32,
    /// Most instances of one plugin answering RPCs at once; more calls
    /// wait their turn.
    pub rpc_instances_max: u32,
    /// For profiling: writes `/tmp/perf-<pid>.map`, so `perf` names the
    /// plugins' compiled functions (by the component's name section: build
    /// the plugin unstripped to see its own function names).
    #[serde(default)]
    pub perf_map: bool,
    /// Lines one plugin may print per second (WASI stdout and stderr, all
    /// its instances together), after a burst of four seconds' worth; the
    /// rest are dropped and counted.
    #[serde(default = "default_log_lines_per_s")]
    pub log_lines_per_s: u32,
    /// Longest line of a plugin's output that is logged; the rest is cut.
    #[serde(default = "default_log_line_bytes_max")]
    pub log_line_bytes_max: u32,
    /// Most versions of one plugin loaded at once, the current one
    /// included: older ones serve the sessions started on them (see
    /// `catalog`).
    #[serde(default = "default_plugin_versions_max")]
    pub plugin_versions_max: u32,
}

fn default_plugin_versions_max() -> u32 {
    4
}

fn default_log_lines_per_s() -> u32 {
    50
}

fn default_log_line_bytes_max() -> u32 {
    2048
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig {
            memory_bytes_max: 64 * 1024 * 1024,
            call_timeout_ms: 250,
            call_wall_timeout_ms: 10_000,
            epoch_tick_ms: 10,
            instances_max: 1024,
            rpc_instances_max: 4,
            perf_map: false,
            log_lines_per_s: default_log_lines_per_s(),
            log_line_bytes_max: default_log_line_bytes_max(),
            plugin_versions_max: default_plugin_versions_max(),
        }
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a WebAssembly component: {reason}")]
    NotAComponent { path: String, reason: String },
    #[error(
        "{path} was built for the plugin contract hoard:plugin@{found}, and this host speaks \
         hoard:plugin@{CONTRACT_VERSION}: rebuild it with this hoard's SDK (plugins/sdk), or \
         run it on a hoard that speaks {found}"
    )]
    Contract { path: String, found: String },
    #[error(
        "{path} imports `{import}`, which this host does not provide as the component expects \
         it (this host provides hoard:plugin@{CONTRACT_VERSION}'s interfaces and WASI 0.2's, \
         with no files, sockets or environment): {detail}"
    )]
    UnknownImport {
        path: String,
        import: String,
        detail: String,
    },
    #[error("{path} asks for {asked}, more than {limit}")]
    TooLarge {
        path: String,
        asked: String,
        limit: String,
    },
    #[error("{path} does not fit the hoard:plugin/plugin@{CONTRACT_VERSION} world: {reason}")]
    WrongWorld { path: String, reason: String },
    #[error("{path} failed while describing itself: {fault}")]
    Describe { path: String, fault: Fault },
    #[error(transparent)]
    Name(#[from] storage::NamespaceError),
    #[error("cannot start the wasm engine: {0}")]
    Engine(String),
}

/// A plugin call that failed through the plugin's own fault. The host stays
/// up; the instance is discarded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("the plugin ran longer than its limit of {limit_ms} ms and was stopped")]
    TimedOut { limit_ms: u64 },
    #[error(
        "the plugin call lasted longer than its limit of {limit_ms} ms, storage waits included, and was stopped"
    )]
    Stalled { limit_ms: u64 },
    #[error("the plugin tried to grow its memory past its limit of {limit_bytes} bytes")]
    OutOfMemory { limit_bytes: u64 },
    #[error("the plugin trapped: {0}")]
    Trapped(String),
    #[error("no plugin instance could be created: {0}")]
    Instantiate(String),
}

/// A refusal by the game's rules; the player gets it as a 4xx error.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("{message}")]
    Malformed { code: String, message: String },
    #[error("{message}")]
    Illegal { code: String, message: String },
    #[error("it is not your turn")]
    NotYourTurn,
    #[error("the session has no free seat")]
    Full,
    #[error("you are not seated in this session")]
    NotSeated,
    #[error("the game has ended")]
    Finished,
    #[error("the game's storage failed: {0}")]
    Storage(storage::Error),
}

/// The result of a plugin call.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Fault(Fault),
}

/// A game's self-description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GameInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub min_players: u32,
    pub max_players: u32,
    /// The calls the plugin answers outside sessions (`rpc`).
    pub rpcs: Vec<String>,
}

/// What a successful action returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    pub state: Vec<u8>,
    /// A JSON document, once the game has ended.
    pub outcome: Option<String>,
}

/// Per-instance store data: what host functions can reach.
pub struct InstanceData {
    /// Whose keys this instance reads and writes: fixed at instantiation, so
    /// a plugin can never name another plugin's data.
    namespace: Namespace,
    storage: Storage,
    /// WASI's empty context: clocks and random numbers, and no files,
    /// sockets, env or args; stdout and stderr go to `log`.
    wasi: WasiCtx,
    /// The instance's stderr, through which both its streams are told
    /// their session.
    log: log::PluginLog,
    table: ResourceTable,
    limits: StoreLimits,
    /// When the call in progress began.
    call_started: Instant,
    /// How long the call in progress has been suspended waiting on storage,
    /// in nanoseconds; written by [`Instance`] as it polls the call.
    suspended: Arc<AtomicU64>,
    /// Where the call in progress takes its writes' op ids from.
    op_ids: OpIds,
    /// The alarms of the session the call in progress works on; `None`
    /// outside a session's call.
    alarms: Option<Alarms>,
    /// For an instance serving a session: the channel (`session:<id>`)
    /// whose messages go to that session's sockets.
    session_channel: Option<String>,
    /// Messages the call in progress published on `session_channel`, as
    /// JSON, delivered once its change is stored.
    messages: Vec<String>,
    messages_max: usize,
}

/// How a call names its writes. Within a change of a session (an action, a
/// join) ids are derived from the change and the write's place in the
/// call, so the same change retried writes under the same ids and every
/// backend applies each write once. Elsewhere each write gets a random id.
#[derive(Clone, Copy, Debug)]
enum OpIds {
    Random,
    Derived { change: OpId, next: u32 },
}

impl InstanceData {
    /// The id of the call's next write.
    fn next_op_id(&mut self) -> OpId {
        match &mut self.op_ids {
            OpIds::Random => OpId::random(),
            OpIds::Derived { change, next } => {
                let index = *next;
                *next += 1;
                OpId::derived(&[&change.to_bytes(), &index.to_be_bytes()])
            }
        }
    }
}

impl InstanceData {
    /// What the epoch ticker does when a call's deadline comes: the deadline
    /// is wall time, but the plugin is charged only for the time it was not
    /// suspended waiting on storage. So it goes on until it has run
    /// `call_timeout_ms` itself, or the whole call has lasted
    /// `call_wall_timeout_ms`.
    fn on_deadline(&self, config: &WasmConfig) -> UpdateDeadline {
        let lasted = self.call_started.elapsed();
        let waited = Duration::from_nanos(self.suspended.load(Ordering::Relaxed));
        let ran = lasted.saturating_sub(waited);
        let (run_limit, wall_limit) = (
            Duration::from_millis(config.call_timeout_ms),
            Duration::from_millis(config.call_wall_timeout_ms),
        );
        if ran >= run_limit || lasted >= wall_limit {
            return UpdateDeadline::Interrupt;
        }
        let left = (run_limit - ran).min(wall_limit - lasted);
        let tick = Duration::from_millis(config.epoch_tick_ms.max(1));
        UpdateDeadline::Continue(left.as_nanos().div_ceil(tick.as_nanos()).max(1) as u64)
    }
}

impl WasiView for InstanceData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::hoard::plugin::types::Host for InstanceData {
    fn convert_error(
        &mut self,
        error: storage::Error,
    ) -> wasmtime::Result<bindings::hoard::plugin::types::Error> {
        use bindings::hoard::plugin::types as wit;
        Ok(match error {
            storage::Error::NotFound => wit::Error::NotFound,
            storage::Error::Conflict { expected, current } => {
                wit::Error::Conflict(wit::Conflict { expected, current })
            }
            storage::Error::Unavailable(reason) => {
                // The reason is for the operator, not the guest.
                tracing::warn!(namespace = %self.namespace, %reason, "storage unavailable");
                wit::Error::Unavailable
            }
            storage::Error::Invalid { field, reason } => wit::Error::Invalid(wit::Invalid {
                field: field.to_owned(),
                reason,
            }),
            storage::Error::LimitExceeded { what, max, actual } => {
                wit::Error::LimitExceeded(wit::Limit {
                    what: what.to_owned(),
                    max,
                    actual,
                })
            }
        })
    }
}

/// The engine, linker and epoch ticker shared by every plugin.
pub struct Runtime {
    engine: Engine,
    linker: Linker<InstanceData>,
    config: WasmConfig,
    storage: Storage,
    /// Tells the epoch ticker thread to stop when the runtime is dropped.
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    pub fn new(config: WasmConfig, storage: Storage) -> Result<Self, LoadError> {
        let engine_error = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        let instances = config.instances_max.max(1);
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(8))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            .total_stacks(instances)
            .table_elements(TABLE_ELEMENTS_MAX as usize)
            // The store limiter enforces `memory_bytes_max` with a clear trap;
            // the pool allows more so the limiter is what a guest hits.
            .max_memory_size(
                usize::try_from(config.memory_bytes_max.saturating_mul(2)).unwrap_or(usize::MAX),
            );
        let mut engine_config = wasmtime::Config::new();
        engine_config
            .wasm_component_model(true)
            .epoch_interruption(true)
            // hoard's WIT has no `async func`, streams or futures, so every
            // call takes wasmtime's plain fiber path (`call_async` on a
            // fiber, host futures polled in place) instead of the
            // component-model-async task machinery, which is on by default.
            .concurrency_support(false)
            .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        if config.perf_map {
            engine_config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&engine_config).map_err(engine_error)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        bindings::Plugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |data| data,
        )
        .map_err(engine_error)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let tick = Duration::from_millis(config.epoch_tick_ms.max(1));
        let (ticker_engine, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::Builder::new()
            .name("hoard-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        Ok(Runtime {
            engine,
            linker,
            config,
            storage,
            ticker_stop,
        })
    }

    /// Compiles and checks a plugin, and asks it to describe itself. `name`
    /// is the plugin's namespace.
    pub async fn load(&self, name: &str, path: &Path) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.load_bytes(name, &path.display().to_string(), &bytes)
            .await
    }

    /// As [`Runtime::load`], from the component's bytes; `origin` names
    /// them in errors.
    pub async fn load_bytes(
        &self,
        name: &str,
        origin: &str,
        bytes: &[u8],
    ) -> Result<Plugin, LoadError> {
        let namespace = Namespace::plugin(name)?;
        let path = origin.to_owned();
        let shape = self.shape_fits(&path, bytes)?;
        // Compiling takes a while: off the async threads.
        let (engine, owned) = (self.engine.clone(), bytes.to_vec());
        let compiled = tokio::task::spawn_blocking(move || Component::from_binary(&engine, &owned))
            .await
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        let component = compiled.map_err(|e| LoadError::NotAComponent {
            path: path.clone(),
            reason: root_cause(&e),
        })?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| import_error(&path, &e))?;
        let pre = bindings::PluginPre::new(instance_pre).map_err(|e| LoadError::WrongWorld {
            path: path.clone(),
            reason: format!("{e:#}"),
        })?;
        let upgrade = component
            .get_export_index(None, format!("hoard:plugin/upgrade@{CONTRACT_VERSION}"))
            .and_then(|interface| component.get_export_index(Some(&interface), "upgrade"));
        let account_collections = component
            .get_export_index(None, format!("hoard:plugin/accounts@{CONTRACT_VERSION}"))
            .and_then(|interface| {
                component.get_export_index(Some(&interface), "account-collections")
            });
        let indices = bindings::PluginIndices::new(pre.instance_pre()).map_err(|e| {
            LoadError::WrongWorld {
                path: path.clone(),
                reason: format!("{e:#}"),
            }
        })?;
        let mut plugin = Plugin {
            namespace,
            pre,
            runtime: RuntimeHandle {
                config: self.config.clone(),
                storage: self.storage.clone(),
            },
            info: GameInfo {
                name: String::new(),
                version: String::new(),
                description: String::new(),
                min_players: 0,
                max_players: 0,
                rpcs: Vec::new(),
            },
            shape,
            version: String::new(),
            upgrade,
            account_collections: Vec::new(),
            indices,
            log_budget: log::LogBudget::new(
                self.config.log_lines_per_s,
                self.config.log_line_bytes_max as usize,
            ),
        };
        let mut instance = plugin
            .instantiate()
            .await
            .map_err(|fault| LoadError::Describe {
                path: path.clone(),
                fault,
            })?;
        plugin.info = instance
            .describe()
            .await
            .map_err(|fault| LoadError::Describe {
                path: path.clone(),
                fault,
            })?;
        if let Some(upgrade) = &plugin.upgrade {
            instance
                .raw
                .get_typed_func::<UpgradeParams<'_>, UpgradeResults>(&mut instance.store, upgrade)
                .map_err(|e| LoadError::WrongWorld {
                    path: path.clone(),
                    reason: format!(
                        "its upgrade export does not match hoard:plugin/upgrade@{CONTRACT_VERSION}: {e:#}"
                    ),
                })?;
        }
        if let Some(index) = account_collections {
            let wrong = |e: wasmtime::Error| LoadError::WrongWorld {
                path: path.clone(),
                reason: format!(
                    "its accounts export does not match hoard:plugin/accounts@{CONTRACT_VERSION}: {e:#}"
                ),
            };
            let func = instance
                .raw
                .get_typed_func::<(), (Vec<String>,)>(&mut instance.store, index)
                .map_err(wrong)?;
            instance.arm(None);
            let call = func.call_async(&mut instance.store, ());
            let (collections,) = counting_suspension(&instance.suspended, call)
                .await
                .map_err(|e| LoadError::Describe {
                    path: path.clone(),
                    fault: instance.fault(e),
                })?;
            plugin.account_collections = account_collections_of(collections, &self.storage.limits)
                .map_err(|reason| LoadError::WrongWorld {
                    path: path.clone(),
                    reason: format!("its accounts export names {reason}"),
                })?;
        }
        plugin.version = version_of(&plugin.info.version, bytes);
        Ok(plugin)
    }

    /// The component's shape, if it is one this host can run: built for
    /// this contract, and asking for no more memory or table space than an
    /// instance may have. Checked before compiling, so each refusal names
    /// its cause rather than a compile or instantiation failure.
    fn shape_fits(&self, path: &str, bytes: &[u8]) -> Result<Shape, LoadError> {
        let shape = Shape::read(bytes).map_err(|reason| LoadError::NotAComponent {
            path: path.to_owned(),
            reason,
        })?;
        if !shape.speaks(CONTRACT_VERSION) {
            return Err(LoadError::Contract {
                path: path.to_owned(),
                found: shape
                    .contract
                    .clone()
                    .expect("only a stated contract differs"),
            });
        }
        let memory_max = self.config.memory_bytes_max;
        if shape.largest_initial_memory_bytes() > memory_max {
            return Err(LoadError::TooLarge {
                path: path.to_owned(),
                asked: format!(
                    "a linear memory of {} at its start",
                    Size(shape.largest_initial_memory_bytes())
                ),
                limit: format!("wasm.memory_bytes_max ({})", Size(memory_max)),
            });
        }
        if let Some(table) = shape
            .tables
            .iter()
            .find(|t| t.initial_elements > TABLE_ELEMENTS_MAX)
        {
            return Err(LoadError::TooLarge {
                path: path.to_owned(),
                asked: format!("a table of {} elements", table.initial_elements),
                limit: format!("the {TABLE_ELEMENTS_MAX} an instance's table may hold"),
            });
        }
        Ok(shape)
    }

    /// The limits plugins run under.
    pub fn config(&self) -> &WasmConfig {
        &self.config
    }
}

/// Why the linker could not satisfy a component's imports: the import it
/// names, when wasmtime's error names one, else the whole error.
fn import_error(path: &str, error: &wasmtime::Error) -> LoadError {
    // wasmtime: "component imports instance `wasi:http/types@0.2.0`, but a
    // matching implementation was not found in the linker", then a cause.
    let named = error.chain().find_map(|cause| {
        let text = cause.to_string();
        let rest = text.strip_prefix("component imports ")?;
        let start = rest.find('`')? + 1;
        let end = start + rest[start..].find('`')?;
        Some(rest[start..end].to_owned())
    });
    match named {
        Some(import) => LoadError::UnknownImport {
            path: path.to_owned(),
            import,
            // What wasmtime found wrong under the import: a missing
            // instance, or the function in it that differs.
            detail: error
                .chain()
                .skip(1)
                .map(|cause| cause.to_string())
                .collect::<Vec<_>>()
                .join(": "),
        },
        None => LoadError::WrongWorld {
            path: path.to_owned(),
            reason: format!("{error:#}"),
        },
    }
}

/// What each plugin needs from the runtime to make instances.
#[derive(Clone)]
struct RuntimeHandle {
    config: WasmConfig,
    storage: Storage,
}

/// A loaded plugin: compiled once, instantiated per session.
pub struct Plugin {
    namespace: Namespace,
    pre: bindings::PluginPre<InstanceData>,
    runtime: RuntimeHandle,
    info: GameInfo,
    /// What the component is made of, as loading read it.
    shape: Shape,
    /// The game's version and the component's hash: see [`version_of`].
    version: String,
    /// Its `hoard:plugin/upgrade` export's function, if it has one.
    upgrade: Option<ComponentExportIndex>,
    /// What its `hoard:plugin/accounts` export named at load: the cold
    /// collections keyed by account.
    account_collections: Vec<String>,
    /// Where the bindings' exports are, found once at load.
    indices: bindings::PluginIndices,
    /// The rate its instances' printed lines share.
    log_budget: Arc<log::LogBudget>,
}

impl Plugin {
    pub fn info(&self) -> &GameInfo {
        &self.info
    }

    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// This build of the game: its own version and the component's hash
    /// (`1.2.0+3fa9c2e1b04d`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The game's own version (`describe().version`).
    pub fn game_version(&self) -> &str {
        &self.info.version
    }

    /// Whether it exports `hoard:plugin/upgrade`: it can carry sessions
    /// an earlier version ran.
    pub fn upgrades(&self) -> bool {
        self.upgrade.is_some()
    }

    /// The cold collections whose records are keyed by an account's id
    /// and move with it (`hoard:plugin/accounts`); empty without that
    /// export.
    pub fn account_collections(&self) -> &[String] {
        &self.account_collections
    }

    /// What the component is made of: contract, imports, exports, the
    /// memories and tables it asks for.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// A fresh instance with its own store, memory and limits.
    pub async fn instantiate(&self) -> Result<Instance, Fault> {
        let config = &self.runtime.config;
        let suspended = Arc::new(AtomicU64::new(0));
        let (stdout, stderr) = log::PluginLog::streams(
            self.namespace.as_str(),
            &self.info.version,
            self.log_budget.clone(),
        );
        let data = InstanceData {
            namespace: self.namespace.clone(),
            storage: self.runtime.storage.clone(),
            wasi: WasiCtx::builder()
                .stdout(stdout)
                .stderr(stderr.clone())
                .build(),
            log: stderr,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(usize::try_from(config.memory_bytes_max).unwrap_or(usize::MAX))
                .trap_on_grow_failure(true)
                .build(),
            call_started: Instant::now(),
            suspended: suspended.clone(),
            op_ids: OpIds::Random,
            alarms: None,
            session_channel: None,
            messages: Vec::new(),
            messages_max: 0,
        };
        let mut store = Store::new(self.pre.engine(), data);
        store.limiter(|data| &mut data.limits);
        store.set_epoch_deadline(deadline_ticks(config));
        let deadline_config = config.clone();
        store.epoch_deadline_callback(move |store| Ok(store.data().on_deadline(&deadline_config)));
        let raw = self
            .pre
            .instance_pre()
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify(e, config))?;
        let guest = self
            .indices
            .load(&mut store, &raw)
            .map_err(|e| classify(e, config))?;
        Ok(Instance {
            store,
            guest,
            raw,
            upgrade: self.upgrade,
            config: config.clone(),
            suspended,
            lent: None,
        })
    }
}

/// The most collections a plugin may key by account: each account export
/// reads them all.
pub const ACCOUNT_COLLECTIONS_MAX: usize = 64;

/// What a plugin's `account-collections` answered, checked: at most
/// [`ACCOUNT_COLLECTIONS_MAX`] names, each a name storage takes, each once.
fn account_collections_of(
    collections: Vec<String>,
    limits: &storage::Limits,
) -> Result<Vec<String>, String> {
    if collections.len() > ACCOUNT_COLLECTIONS_MAX {
        return Err(format!(
            "{} collections; at most {ACCOUNT_COLLECTIONS_MAX}",
            collections.len()
        ));
    }
    let mut checked: Vec<String> = Vec::with_capacity(collections.len());
    for collection in collections {
        if collection.is_empty() {
            return Err("an empty collection".into());
        }
        limits
            .check_key("collection-bytes", &collection)
            .map_err(|error| format!("collection {collection:?}: {error}"))?;
        if !checked.contains(&collection) {
            checked.push(collection);
        }
    }
    Ok(checked)
}

/// The types of `hoard:plugin/upgrade.upgrade`.
type UpgradeParams<'a> = (&'a [u8], &'a str);
type UpgradeResults = (Result<Vec<u8>, game::GameError>,);

/// A live plugin instance serving one session.
pub struct Instance {
    store: Store<InstanceData>,
    guest: bindings::Plugin,
    /// The instance itself, for the exports outside the bindings.
    raw: wasmtime::component::Instance,
    /// The plugin's `upgrade` function, if it exports one.
    upgrade: Option<ComponentExportIndex>,
    config: WasmConfig,
    /// Shared with the store's data; see [`InstanceData::on_deadline`].
    suspended: Arc<AtomicU64>,
    /// Alarms lent for the next call (see [`Instance::lend_alarms`]).
    lent: Option<Alarms>,
}

impl Instance {
    /// Starts the clock of a new call; `change` names the session change
    /// it makes, if any (see [`OpIds`]).
    fn arm(&mut self, change: Option<OpId>) {
        self.suspended.store(0, Ordering::Relaxed);
        let lent = self.lent.take();
        let data = self.store.data_mut();
        data.alarms = lent;
        data.messages.clear();
        data.call_started = Instant::now();
        data.op_ids = match change {
            Some(change) => OpIds::Derived { change, next: 0 },
            None => OpIds::Random,
        };
        self.store.set_epoch_deadline(deadline_ticks(&self.config));
    }

    /// Lends a session's alarms to the next call, which may set and cancel
    /// them; [`Instance::take_alarms`] hands them back after it. A call
    /// with none lent has no session's alarms to touch.
    pub fn lend_alarms(&mut self, alarms: Alarms) {
        self.lent = Some(alarms);
    }

    /// The alarms lent to the last call, as it left them.
    pub fn take_alarms(&mut self) -> Option<Alarms> {
        self.store.data_mut().alarms.take()
    }

    /// Makes this the instance of `session`: what its calls publish on the
    /// channel `session:<session>`, or just `session` (at most
    /// `messages_max` per call), is kept for [`Instance::take_messages`]
    /// instead of going to hot storage.
    pub fn serve_session(&mut self, session: &str, messages_max: usize) {
        let data = self.store.data_mut();
        data.log.set_session(session);
        data.session_channel = Some(format!("session:{session}"));
        data.messages_max = messages_max;
    }

    /// How many storage writes the last call made.
    pub fn writes_made(&self) -> u32 {
        match self.store.data().op_ids {
            OpIds::Derived { next, .. } => next,
            OpIds::Random => 0,
        }
    }

    /// What the last call published to its session, in order (JSON).
    pub fn take_messages(&mut self) -> Vec<String> {
        std::mem::take(&mut self.store.data_mut().messages)
    }

    /// A fault, told apart by which of the call's time limits stopped it.
    fn fault(&self, error: wasmtime::Error) -> Fault {
        match classify(error, &self.config) {
            Fault::TimedOut { .. }
                if self.store.data().call_started.elapsed()
                    >= Duration::from_millis(self.config.call_wall_timeout_ms) =>
            {
                Fault::Stalled {
                    limit_ms: self.config.call_wall_timeout_ms,
                }
            }
            fault => fault,
        }
    }

    /// The result of a call, with refusals and faults told apart.
    fn settle<T>(
        &self,
        result: wasmtime::Result<Result<T, game::GameError>>,
    ) -> Result<T, CallError> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(refusal)) => Err(CallError::Refused(refusal_from_wit(refusal))),
            Err(error) => Err(CallError::Fault(self.fault(error))),
        }
    }

    pub async fn describe(&mut self) -> Result<GameInfo, Fault> {
        self.arm(None);
        let info = self
            .guest
            .hoard_plugin_game()
            .call_describe(&mut self.store);
        let info = counting_suspension(&self.suspended, info)
            .await
            .map_err(|e| self.fault(e))?;
        Ok(GameInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            min_players: info.min_players,
            max_players: info.max_players,
            rpcs: info.rpcs,
        })
    }

    pub async fn create(
        &mut self,
        session_id: &str,
        seed: u64,
        config: &str,
    ) -> Result<Vec<u8>, CallError> {
        self.arm(None);
        let session = game::Session {
            id: session_id.to_owned(),
            seed,
        };
        let result = self
            .guest
            .hoard_plugin_game()
            .call_create(&mut self.store, &session, config);
        let result = counting_suspension(&self.suspended, result).await;
        self.settle(result)
    }

    /// Seats `player` (named `name`, playing as `account` or as a guest);
    /// the call's writes take their ids from `change`.
    pub async fn join(
        &mut self,
        state: &[u8],
        name: &str,
        account: Option<&str>,
        change: OpId,
    ) -> Result<Vec<u8>, CallError> {
        self.arm(Some(change));
        let player = game::Player {
            name: name.to_owned(),
            account: account.map(str::to_owned),
        };
        let result = self
            .guest
            .hoard_plugin_game()
            .call_join(&mut self.store, state, &player);
        let result = counting_suspension(&self.suspended, result).await;
        self.settle(result)
    }

    /// Fires an alarm with `payload`; the call's writes take their ids
    /// from `change`.
    pub async fn on_alarm(
        &mut self,
        state: &[u8],
        payload: &str,
        change: OpId,
    ) -> Result<Turn, CallError> {
        self.arm(Some(change));
        let result = self
            .guest
            .hoard_plugin_game()
            .call_on_alarm(&mut self.store, state, payload);
        let result = counting_suspension(&self.suspended, result).await;
        let turn = self.settle(result)?;
        if let Some(outcome) = &turn.outcome {
            json_document("outcome", outcome)?;
        }
        Ok(Turn {
            state: turn.state,
            outcome: turn.outcome,
        })
    }

    /// Answers the call `name` outside any session for `caller` (an
    /// account's name and id), or for nobody in particular.
    pub async fn rpc(
        &mut self,
        name: &str,
        caller: Option<(&str, &str)>,
        input: &str,
    ) -> Result<String, CallError> {
        self.arm(None);
        let caller = caller.map(|(name, account)| game::Player {
            name: name.to_owned(),
            account: Some(account.to_owned()),
        });
        let result =
            self.guest
                .hoard_plugin_game()
                .call_rpc(&mut self.store, name, caller.as_ref(), input);
        let result = counting_suspension(&self.suspended, result).await;
        self.settle(result)
    }

    /// Applies `player`'s action; the call's writes take their ids from
    /// `change`.
    pub async fn act(
        &mut self,
        state: &[u8],
        player: &str,
        action: &str,
        change: OpId,
    ) -> Result<Turn, CallError> {
        self.arm(Some(change));
        let result =
            self.guest
                .hoard_plugin_game()
                .call_act(&mut self.store, state, player, action);
        let result = counting_suspension(&self.suspended, result).await;
        let turn = self.settle(result)?;
        if let Some(outcome) = &turn.outcome {
            json_document("outcome", outcome)?;
        }
        Ok(Turn {
            state: turn.state,
            outcome: turn.outcome,
        })
    }

    /// Carries `state`, which the plugin's game version `written_by`
    /// wrote, into this version's; `None` when the plugin has no
    /// `upgrade`.
    pub async fn upgrade(
        &mut self,
        state: &[u8],
        written_by: &str,
    ) -> Option<Result<Vec<u8>, CallError>> {
        let index = self.upgrade?;
        self.arm(None);
        let upgrade = match self
            .raw
            .get_typed_func::<UpgradeParams<'_>, UpgradeResults>(&mut self.store, index)
        {
            Ok(upgrade) => upgrade,
            Err(error) => return Some(Err(CallError::Fault(self.fault(error)))),
        };
        // No storage during `upgrade`: it may run again for the same state.
        let closed = Arc::new(storage::Closed { during: "upgrade" });
        let storage = std::mem::replace(
            &mut self.store.data_mut().storage,
            Storage {
                hot: closed.clone(),
                cold: closed,
                limits: storage::Limits::default(),
            },
        );
        let call = upgrade.call_async(&mut self.store, (state, written_by));
        let result = counting_suspension(&self.suspended, call).await;
        self.store.data_mut().storage = storage;
        Some(self.settle(result.map(|(upgraded,)| upgraded)))
    }

    pub async fn view(&mut self, state: &[u8], player: Option<&str>) -> Result<String, CallError> {
        self.arm(None);
        let result = self
            .guest
            .hoard_plugin_game()
            .call_view(&mut self.store, state, player);
        let result = counting_suspension(&self.suspended, result).await;
        let view = self.settle(result)?;
        json_document("view", &view)?;
        Ok(view)
    }
}

/// A build's version: the game's own (`describe().version`) and the first
/// 12 hex digits of the component's SHA-256, so two builds that both call
/// themselves 1.2.0 are told apart.
fn version_of(described: &str, bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{described}+{hash}")
}

/// Whether `text` is one JSON document (a scan; no tree is built).
pub(crate) fn json_check(text: &str) -> serde_json::Result<()> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).map(drop)
}

/// A document a plugin returned for clients is JSON: checked once here, so
/// the host can pass it on as text (into answers and events) unparsed.
fn json_document(what: &str, text: &str) -> Result<(), CallError> {
    json_check(text).map_err(|error| {
        CallError::Fault(Fault::Trapped(format!(
            "the plugin returned a {what} that is not JSON: {error}"
        )))
    })
}

fn deadline_ticks(config: &WasmConfig) -> u64 {
    config
        .call_timeout_ms
        .div_ceil(config.epoch_tick_ms.max(1))
        .max(1)
}

/// Polls a plugin call, adding the time it spends suspended (a host
/// function waiting on storage) to `suspended`.
async fn counting_suspension<F: Future>(suspended: &AtomicU64, call: F) -> F::Output {
    let mut call = std::pin::pin!(call);
    let mut since: Option<Instant> = None;
    std::future::poll_fn(|cx| {
        if let Some(since) = since.take() {
            let waited = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            suspended.fetch_add(waited, Ordering::Relaxed);
        }
        let poll = call.as_mut().poll(cx);
        if poll.is_pending() {
            since = Some(Instant::now());
        }
        poll
    })
    .await
}

fn refusal_from_wit(error: game::GameError) -> Refusal {
    use bindings::hoard::plugin::types::Error as Wit;
    match error {
        game::GameError::Malformed(p) => Refusal::Malformed {
            code: p.code,
            message: p.message,
        },
        game::GameError::Illegal(p) => Refusal::Illegal {
            code: p.code,
            message: p.message,
        },
        game::GameError::NotYourTurn => Refusal::NotYourTurn,
        game::GameError::Full => Refusal::Full,
        game::GameError::NotSeated => Refusal::NotSeated,
        game::GameError::Finished => Refusal::Finished,
        game::GameError::Storage(error) => Refusal::Storage(match error {
            Wit::NotFound => storage::Error::NotFound,
            Wit::Conflict(c) => storage::Error::Conflict {
                expected: c.expected,
                current: c.current,
            },
            Wit::Unavailable => storage::Error::Unavailable("reported by the plugin".into()),
            Wit::Invalid(i) => storage::Error::Invalid {
                field: "argument",
                reason: format!("{}: {}", i.field, i.reason),
            },
            Wit::LimitExceeded(l) => storage::Error::LimitExceeded {
                what: "limit",
                max: l.max,
                actual: l.actual,
            },
        }),
    }
}

/// Names what went wrong in a trapped call, for the player and the log.
fn classify(error: wasmtime::Error, config: &WasmConfig) -> Fault {
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        return Fault::TimedOut {
            limit_ms: config.call_timeout_ms,
        };
    }
    let text = format!("{error:#}");
    if text.contains("forcing trap when growing memory") {
        return Fault::OutOfMemory {
            limit_bytes: config.memory_bytes_max,
        };
    }
    if text.contains("maximum concurrent") || text.contains("pooling allocator") {
        return Fault::Instantiate(text);
    }
    Fault::Trapped(root_cause(&error))
}

fn root_cause(error: &wasmtime::Error) -> String {
    let chain: Vec<String> = error.chain().map(|e| e.to_string()).collect();
    chain.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_collections_are_checked_and_kept_once() {
        let limits = storage::Limits::default();
        let names = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            account_collections_of(names(&["characters", "inventory", "characters"]), &limits),
            Ok(names(&["characters", "inventory"]))
        );
        assert!(account_collections_of(names(&[""]), &limits).is_err());
        let long = "c".repeat(limits.key_bytes_max as usize + 1);
        assert!(account_collections_of(vec![long], &limits).is_err());
        let many: Vec<String> = (0..=ACCOUNT_COLLECTIONS_MAX)
            .map(|i| format!("c{i}"))
            .collect();
        assert!(account_collections_of(many, &limits).is_err());
    }
}
