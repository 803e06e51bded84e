//! The VM: compile once, pre-link once, instantiate per plugin; the root-context lifecycle
//! (canary, `on_vm_start`, `on_configure`, ticks, queues, callouts, config updates, shutdown).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use wasmtime::{
    Config, Engine, Instance, InstancePre, Linker, Module, Store, Trap, TypedFunc, WasmBacktrace,
    WasmParams, WasmResults,
};

use crate::effects::{LogEntry, LogLevel, MetricValue, VmFailure};
use crate::facts::{Hcm, Node};
use crate::settings::{Attributes, Settings};
use crate::state::{lock, CallInFlight, CallResponse, HostState, Responder, SharedHandle};
use crate::{abi, Error, HttpCall};

const ABI_VERSIONS: [&str; 3] = [
    "proxy_abi_version_0_2_1",
    "proxy_abi_version_0_2_0",
    "proxy_abi_version_0_1_0",
];

enum Source {
    File(PathBuf),
    Bytes { bytes: Vec<u8>, name: String },
}

/// Builds a [`Host`]: the module plus everything Envoy's config says about the plugin.
pub struct HostBuilder {
    source: Option<Source>,
    settings: Settings,
}

impl HostBuilder {
    /// The `.wasm` (or `.wat`) file to load.
    pub fn wasm_file(mut self, path: impl AsRef<Path>) -> Self {
        self.source = Some(Source::File(path.as_ref().to_path_buf()));
        self
    }

    /// Module bytes (binary or text), named `name` in errors.
    pub fn wasm_bytes(mut self, bytes: impl Into<Vec<u8>>, name: &str) -> Self {
        self.source = Some(Source::Bytes {
            bytes: bytes.into(),
            name: name.to_string(),
        });
        self
    }

    /// Istio's node metadata `NAMESPACE` and `LABELS` (the workload this sidecar serves).
    pub fn node_metadata<K: Into<String>, V: Into<String>>(
        mut self,
        namespace: &str,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let labels: Map<String, Value> = labels
            .into_iter()
            .map(|(k, v)| (k.into(), Value::String(v.into())))
            .collect();
        let metadata = &mut self.settings.node.metadata;
        metadata.insert("NAMESPACE".into(), Value::String(namespace.to_string()));
        metadata.insert("LABELS".into(), Value::Object(labels));
        self
    }

    /// Any other node metadata key (`WORKLOAD_NAME`, `SERVICE_ACCOUNT`, `CLUSTER_ID`…).
    pub fn node_metadata_entry(mut self, key: &str, value: Value) -> Self {
        self.settings.node.metadata.insert(key.to_string(), value);
        self
    }

    /// Replaces the node (id, cluster, metadata).
    pub fn node(mut self, id: &str, cluster: &str, metadata: Map<String, Value>) -> Self {
        self.settings.node = Node {
            id: id.to_string(),
            cluster: cluster.to_string(),
            metadata,
        };
        self
    }

    /// `plugin_name` (Istio: `<namespace>.<wasmplugin name>`).
    pub fn plugin_name(mut self, name: &str) -> Self {
        self.settings.plugin_name = name.to_string();
        self
    }

    pub fn root_id(mut self, root_id: &str) -> Self {
        self.settings.root_id = root_id.to_string();
        self
    }

    pub fn vm_id(mut self, vm_id: &str) -> Self {
        self.settings.vm_id = vm_id.to_string();
        self
    }

    /// `vm_config.configuration` (buffer 6).
    pub fn vm_configuration(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.settings.vm_configuration = bytes.into();
        self
    }

    /// Envoy's `wasm` logger level; lower plugin log lines are dropped (default info).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.settings.log_level = level;
        self
    }

    /// Envoy `fail_open` / Istio `failStrategy: FAIL_OPEN`: after a trap, skip the plugin
    /// instead of answering 503 (HTTP) or closing (TCP).
    pub fn fail_open(mut self, fail_open: bool) -> Self {
        self.settings.fail_open = fail_open;
        self
    }

    /// HCM `use_remote_address` (default false, Istio sidecar inbound).
    pub fn use_remote_address(mut self, yes: bool) -> Self {
        self.settings.hcm.use_remote_address = yes;
        self
    }

    /// HCM `xff_num_trusted_hops` (default 0).
    pub fn xff_num_trusted_hops(mut self, hops: u32) -> Self {
        self.settings.hcm.xff_num_trusted_hops = hops;
        self
    }

    /// How the HCM rewrites `x-forwarded-client-cert` before the filter runs (default: as
    /// sent; Istio sidecars use `Xfcc::AppendForward(XfccDetails::ISTIO)`).
    pub fn xfcc(mut self, mode: crate::facts::Xfcc) -> Self {
        self.settings.hcm.xfcc = mode;
        self
    }

    /// Which attribute generations `proxy_get_property` serves (default: xds and legacy).
    pub fn attributes(mut self, attributes: Attributes) -> Self {
        self.settings.attributes = attributes;
        self
    }

    /// Starts the clock at a fixed Unix time (ns) instead of now, for reproducible output.
    pub fn clock_at(mut self, unix_ns: u64) -> Self {
        self.settings.clock_start_ns = Some(unix_ns);
        self
    }

    /// The instruction budget of one guest callback; running out traps (a guard Envoy lacks).
    pub fn fuel_per_callback(mut self, fuel: u64) -> Self {
        self.settings.fuel_per_callback = fuel;
        self
    }

    /// Records the name of every host function the guest calls, per request
    /// (`HttpOutcome::hostcall_trace`), for tests that pin exactly what a plugin asks the host.
    pub fn trace_hostcalls(mut self, yes: bool) -> Self {
        self.settings.trace_hostcalls = yes;
        self
    }

    /// Whether `configure` first validates on a throw-away canary VM, as Envoy does (default
    /// true). Envoy prints the canary's configure-time logs too; host-sim returns only the
    /// worker VM's (a rejection returns the canary's, which is where it happens first).
    pub fn canary(mut self, canary: bool) -> Self {
        self.settings.canary = canary;
        self
    }

    /// Compiles and pre-links the module; reports unknown imports, a missing ABI version or
    /// allocator, and 0.1.0 modules.
    pub fn build(self) -> Result<Host, Error> {
        let (bytes, origin) = match self.source {
            Some(Source::File(path)) => {
                let origin = path.display().to_string();
                let bytes = std::fs::read(&path).map_err(|source| Error::Read {
                    path: origin.clone(),
                    source,
                })?;
                (bytes, origin)
            }
            Some(Source::Bytes { bytes, name }) => (bytes, name),
            None => {
                return Err(Error::Read {
                    path: "<none>".into(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no module given: call wasm_file or wasm_bytes",
                    ),
                })
            }
        };
        Host::compile(bytes, origin, self.settings)
    }
}

struct HostInner {
    engine: Engine,
    module: Module,
    pre: InstancePre<HostState>,
    settings: Arc<Settings>,
    shared: SharedHandle,
    origin: String,
    abi: &'static str,
    compile_time: Duration,
    next_instance: AtomicU64,
}

/// A compiled, pre-linked proxy-wasm module (cheap to clone). Each [`Host::configure`] makes a
/// fresh VM, like an Envoy worker thread's.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

impl Host {
    pub fn builder() -> HostBuilder {
        HostBuilder {
            source: None,
            settings: Settings::default(),
        }
    }

    fn compile(bytes: Vec<u8>, origin: String, settings: Settings) -> Result<Self, Error> {
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config).map_err(|e| Error::Compile {
            origin: origin.clone(),
            message: format!("{e:#}"),
        })?;
        let started = Instant::now();
        let module = Module::new(&engine, &bytes).map_err(|e| Error::Compile {
            origin: origin.clone(),
            message: format!("{e:#}"),
        })?;
        let compile_time = started.elapsed();

        let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
        let abi = ABI_VERSIONS
            .iter()
            .find(|v| exports.contains(v))
            .copied()
            .ok_or_else(|| Error::MissingAbiVersion {
                origin: origin.clone(),
            })?;
        if abi == "proxy_abi_version_0_1_0" {
            return Err(Error::UnsupportedAbi { origin });
        }
        if !exports.contains(&"malloc") && !exports.contains(&"proxy_on_memory_allocate") {
            return Err(Error::MissingAllocator { origin });
        }

        let mut linker: Linker<HostState> = Linker::new(&engine);
        abi::link(&mut linker).map_err(|e| Error::Instantiate {
            origin: origin.clone(),
            message: format!("host-sim could not link its own functions: {e:#}"),
        })?;
        let settings = Arc::new(settings);
        let shared: SharedHandle = Arc::default();
        let mut probe = Store::new(&engine, HostState::new(settings.clone(), shared.clone(), 0));
        let unknown: Vec<String> = module
            .imports()
            .filter(|i| linker.get(&mut probe, i.module(), i.name()).is_err())
            .map(|i| format!("{}.{} ({})", i.module(), i.name(), describe(&i.ty())))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::UnknownImports {
                origin,
                imports: unknown,
            });
        }
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| Error::Instantiate {
                origin: origin.clone(),
                message: format!("{e:#}"),
            })?;
        Ok(Self {
            inner: Arc::new(HostInner {
                engine,
                module,
                pre,
                settings,
                shared,
                origin,
                abi: abi.trim_start_matches("proxy_abi_version_"),
                compile_time,
                next_instance: AtomicU64::new(1),
            }),
        })
    }

    /// The ABI version the module declares, e.g. `0_2_1`.
    pub fn abi_version(&self) -> &'static str {
        self.inner.abi
    }

    /// How long compiling the module took.
    pub fn compile_time(&self) -> Duration {
        self.inner.compile_time
    }

    /// The module's name in messages (its path, usually).
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// A stat by the name the plugin defined it with (shared by every VM of this host).
    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        lock(&self.inner.shared).metrics.get(name).cloned()
    }

    /// Starts a VM and configures the plugin with `configuration` (bytes of buffer 7), first on
    /// a canary VM as Envoy does. `Err` when the plugin rejects the configuration or traps.
    pub fn configure(&self, configuration: impl AsRef<[u8]>) -> Result<Plugin, Error> {
        let configuration = configuration.as_ref();
        if self.inner.settings.canary {
            let mut canary = self.start()?;
            canary.start_root(configuration)?;
        }
        let mut plugin = self.start()?;
        let logs = plugin.start_root(configuration)?;
        plugin.configure_logs = logs;
        Ok(plugin)
    }

    /// Instantiates from the pre-linked template and runs `_initialize` (no root context yet).
    pub fn start(&self) -> Result<Plugin, Error> {
        let started = Instant::now();
        let inner = &self.inner;
        let instance_id = inner.next_instance.fetch_add(1, Ordering::Relaxed);
        let state = HostState::new(inner.settings.clone(), inner.shared.clone(), instance_id);
        let mut store = Store::new(&inner.engine, state);
        let origin = inner.origin.clone();
        store
            .set_fuel(inner.settings.fuel_per_callback)
            .map_err(|e| Error::Instantiate {
                origin: origin.clone(),
                message: format!("{e:#}"),
            })?;
        let instance = inner
            .pre
            .instantiate(&mut store)
            .map_err(|e| Error::Instantiate {
                origin: origin.clone(),
                message: format!("{e:#}"),
            })?;
        let ex = Exports::resolve(&mut store, &instance, &origin)?;
        let mut plugin = Plugin {
            host: self.clone(),
            store,
            ex,
            next_context_id: 1,
            failed: None,
            configure_logs: Vec::new(),
            instantiate_time: Duration::ZERO,
        };
        // cpp-host: `_initialize`, then `main(0,0)` or `__main_void`; or `_start` (command).
        plugin.store.data_mut().restricted = true;
        let start: Pick<(), ()> = if plugin.ex.initialize.is_some() {
            |e| &e.initialize
        } else {
            |e| &e.start
        };
        let ran = plugin
            .call(start, (), "_initialize")
            .and_then(|_| {
                let main: Pick<_, _> = |e| &e.main;
                plugin.call(main, (0, 0), "main").map(|_| ())
            })
            .and_then(|_| {
                let main_void: Pick<_, _> = |e| &e.main_void;
                if plugin.ex.main.is_some() {
                    return Ok(());
                }
                plugin.call(main_void, (), "__main_void").map(|_| ())
            });
        plugin.store.data_mut().restricted = false;
        if let Err(failure) = ran {
            let logs = plugin.take_logs();
            return Err(Error::StartFailed { failure, logs });
        }
        plugin.instantiate_time = started.elapsed();
        Ok(plugin)
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn hcm(&self) -> Hcm {
        self.inner.settings.hcm
    }

    #[allow(dead_code)]
    pub(crate) fn module(&self) -> &Module {
        &self.inner.module
    }
}

fn describe(ty: &wasmtime::ExternType) -> String {
    match ty {
        wasmtime::ExternType::Func(f) => {
            let params: Vec<String> = f.params().map(|p| p.to_string()).collect();
            let results: Vec<String> = f.results().map(|p| p.to_string()).collect();
            format!("func ({}) -> ({})", params.join(", "), results.join(", "))
        }
        other => format!("{other:?}"),
    }
}

type F<P, R> = Option<TypedFunc<P, R>>;

/// Picks an export without cloning it (a `TypedFunc` clone copies its registered type).
pub(crate) type Pick<P, R> = fn(&Exports) -> &F<P, R>;

/// The guest's exports as typed functions, resolved once per instance.
#[derive(Clone)]
pub(crate) struct Exports {
    pub initialize: F<(), ()>,
    pub start: F<(), ()>,
    pub main: F<(i32, i32), i32>,
    pub main_void: F<(), i32>,
    pub on_context_create: F<(i32, i32), ()>,
    pub on_vm_start: F<(i32, i32), i32>,
    pub on_configure: F<(i32, i32), i32>,
    pub on_tick: F<i32, ()>,
    pub on_queue_ready: F<(i32, i32), ()>,
    pub on_new_connection: F<i32, i32>,
    pub on_downstream_data: F<(i32, i32, i32), i32>,
    pub on_upstream_data: F<(i32, i32, i32), i32>,
    pub on_downstream_connection_close: F<(i32, i32), ()>,
    pub on_upstream_connection_close: F<(i32, i32), ()>,
    pub on_request_headers: F<(i32, i32, i32), i32>,
    pub on_request_body: F<(i32, i32, i32), i32>,
    pub on_request_trailers: F<(i32, i32), i32>,
    pub on_response_headers: F<(i32, i32, i32), i32>,
    pub on_response_body: F<(i32, i32, i32), i32>,
    pub on_response_trailers: F<(i32, i32), i32>,
    pub on_http_call_response: F<(i32, i32, i32, i32, i32), ()>,
    pub on_done: F<i32, i32>,
    pub on_log: F<i32, ()>,
    pub on_delete: F<i32, ()>,
}

fn typed<P: WasmParams, R: WasmResults>(
    store: &mut Store<HostState>,
    instance: &Instance,
    name: &str,
    origin: &str,
) -> Result<F<P, R>, Error> {
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(func) => func
            .typed::<P, R>(&*store)
            .map(Some)
            .map_err(|e| Error::ExportType {
                origin: origin.to_string(),
                name: name.to_string(),
                message: format!("{e:#}"),
            }),
    }
}

impl Exports {
    fn resolve(store: &mut Store<HostState>, i: &Instance, origin: &str) -> Result<Self, Error> {
        let memory = i
            .get_memory(&mut *store, "memory")
            .ok_or_else(|| Error::MissingMemory {
                origin: origin.to_string(),
            })?;
        // cpp-host looks up `malloc` first, then `proxy_on_memory_allocate`.
        let malloc = match typed::<i32, i32>(store, i, "malloc", origin)? {
            Some(m) => Some(m),
            None => typed::<i32, i32>(store, i, "proxy_on_memory_allocate", origin)?,
        };
        let state = store.data_mut();
        state.memory = Some(memory);
        state.malloc = malloc;
        Ok(Self {
            initialize: typed(store, i, "_initialize", origin)?,
            start: typed(store, i, "_start", origin)?,
            main: typed(store, i, "main", origin)?,
            main_void: typed(store, i, "__main_void", origin)?,
            on_context_create: typed(store, i, "proxy_on_context_create", origin)?,
            on_vm_start: typed(store, i, "proxy_on_vm_start", origin)?,
            on_configure: typed(store, i, "proxy_on_configure", origin)?,
            on_tick: typed(store, i, "proxy_on_tick", origin)?,
            on_queue_ready: typed(store, i, "proxy_on_queue_ready", origin)?,
            on_new_connection: typed(store, i, "proxy_on_new_connection", origin)?,
            on_downstream_data: typed(store, i, "proxy_on_downstream_data", origin)?,
            on_upstream_data: typed(store, i, "proxy_on_upstream_data", origin)?,
            on_downstream_connection_close: typed(
                store,
                i,
                "proxy_on_downstream_connection_close",
                origin,
            )?,
            on_upstream_connection_close: typed(
                store,
                i,
                "proxy_on_upstream_connection_close",
                origin,
            )?,
            on_request_headers: typed(store, i, "proxy_on_request_headers", origin)?,
            on_request_body: typed(store, i, "proxy_on_request_body", origin)?,
            on_request_trailers: typed(store, i, "proxy_on_request_trailers", origin)?,
            on_response_headers: typed(store, i, "proxy_on_response_headers", origin)?,
            on_response_body: typed(store, i, "proxy_on_response_body", origin)?,
            on_response_trailers: typed(store, i, "proxy_on_response_trailers", origin)?,
            on_http_call_response: typed(store, i, "proxy_on_http_call_response", origin)?,
            on_done: typed(store, i, "proxy_on_done", origin)?,
            on_log: typed(store, i, "proxy_on_log", origin)?,
            on_delete: typed(store, i, "proxy_on_delete", origin)?,
        })
    }
}

/// What advancing the test clock produced.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TickOutcome {
    pub ticks: u32,
    pub logs: Vec<LogEntry>,
    pub vm_failure: Option<VmFailure>,
}

/// What host-sim holds for the contexts of one VM (read-only; see [`Plugin::live_contexts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveContexts {
    /// Root contexts alive, the current configuration's included.
    pub roots: usize,
    /// Retired roots still waiting for the guest's `proxy_done`.
    pub roots_pending_done: usize,
    /// HTTP or TCP streams not yet deleted.
    pub streams: usize,
    /// Callouts made and not yet answered.
    pub pending_calls: usize,
    /// Roots with a tick period.
    pub ticks: usize,
}

/// One configured plugin on its own VM (an Envoy worker's view of the plugin).
pub struct Plugin {
    pub(crate) host: Host,
    pub(crate) store: Store<HostState>,
    pub(crate) ex: Exports,
    pub(crate) next_context_id: u32,
    pub(crate) failed: Option<VmFailure>,
    pub(crate) configure_logs: Vec<LogEntry>,
    pub(crate) instantiate_time: Duration,
}

impl Plugin {
    /// Log lines of `proxy_on_vm_start` / `proxy_on_configure` on this VM.
    pub fn configure_logs(&self) -> &[LogEntry] {
        &self.configure_logs
    }

    /// How long instantiating (from the pre-linked template) and `_initialize` took.
    pub fn instantiate_time(&self) -> Duration {
        self.instantiate_time
    }

    /// The root context id of the current configuration.
    pub fn root_context_id(&self) -> u32 {
        self.store.data().root_id
    }

    /// The trap that killed this VM, if any: every later request then fails closed (503
    /// `wasm_fail_stream`, TCP close) or open, like Envoy.
    pub fn vm_failure(&self) -> Option<&VmFailure> {
        self.failed.as_ref()
    }

    /// A stat by the name the plugin defined it with.
    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        self.host.metric(name)
    }

    /// A counter's value (`None` if undefined or not a counter).
    pub fn counter(&self, name: &str) -> Option<u64> {
        match self.metric(name)? {
            MetricValue::Counter(v) => Some(v),
            _ => None,
        }
    }

    /// A shared-data value (`proxy_set_shared_data`).
    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.store.data().shared)
            .data
            .get(key.as_bytes())
            .map(|(v, _)| v.clone())
    }

    /// Bytes of this VM's linear memory now. It never shrinks, so a soak samples it after
    /// warm-up and at the end to show the plugin's heap stays flat.
    pub fn linear_memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map_or(0, |m| m.data_size(&self.store))
    }

    /// The contexts host-sim keeps state for: after every stream has finished only the
    /// current root is left, or per-context state would grow with traffic (as it would in
    /// Envoy's context maps).
    pub fn live_contexts(&self) -> LiveContexts {
        let state = self.store.data();
        LiveContexts {
            roots: state.roots.len(),
            roots_pending_done: state.roots_pending_done.len(),
            streams: usize::from(state.stream.is_some()),
            pending_calls: state.pending_calls.len() + usize::from(state.call.is_some()),
            ticks: state.ticks.len(),
        }
    }

    /// The tick period the plugin asked for, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        let state = self.store.data();
        state
            .ticks
            .get(&state.root_id)
            .map(|t| Duration::from_nanos(t.period_ns))
    }

    /// Scripts the cluster behind `proxy_http_call`. Without a responder every cluster is
    /// unknown and the call fails with BAD_ARGUMENT, as in Envoy.
    pub fn on_http_call(
        &mut self,
        responder: impl FnMut(&HttpCall) -> CallResponse + Send + 'static,
    ) -> &mut Self {
        let responder: Responder = Box::new(responder);
        self.store.data_mut().responder = Some(responder);
        self
    }

    /// Advances the test clock, firing `proxy_on_tick(root)` for every period that elapses.
    pub fn advance_time(&mut self, by: Duration) -> TickOutcome {
        self.begin_op();
        let mut out = TickOutcome::default();
        let target = self
            .store
            .data()
            .clock_offset_ns
            .saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX));
        while self.failed.is_none() {
            let state = self.store.data();
            let base = state.clock_base_ns;
            let due = state
                .ticks
                .iter()
                .map(|(root, t)| (t.next_due_ns, *root))
                .min()
                .filter(|(due, _)| due.saturating_sub(base) <= target);
            let Some((due, root)) = due else { break };
            let state = self.store.data_mut();
            state.clock_offset_ns = due.saturating_sub(base);
            let tick: Pick<_, _> = |e| &e.on_tick;
            let result = self
                .root_call(root, tick, root as i32, "proxy_on_tick")
                .and_then(|_| self.drain());
            out.ticks += 1;
            let state = self.store.data_mut();
            if let Some(t) = state.ticks.get_mut(&root) {
                if t.next_due_ns == due {
                    t.next_due_ns = due.saturating_add(t.period_ns);
                }
            }
            if result.is_err() {
                break;
            }
        }
        self.store.data_mut().clock_offset_ns = target;
        out.logs = self.take_logs();
        out.vm_failure = self.failed.clone();
        out
    }

    /// A configuration update: a new root context (new id) on this VM gets `on_vm_start` and
    /// `on_configure`; if it accepts, the old root gets `on_done`/`on_delete`. A rejected
    /// update leaves the old configuration in force (Envoy keeps serving it).
    pub fn reconfigure(&mut self, configuration: impl AsRef<[u8]>) -> Result<Vec<LogEntry>, Error> {
        let configuration = configuration.as_ref();
        if self.host.settings().canary {
            let mut canary = self.host.start()?;
            canary.start_root(configuration)?;
        }
        let old = self.store.data().root_id;
        let logs = self.start_root(configuration)?;
        self.retire_root(old);
        let mut logs = logs;
        logs.extend(self.take_logs());
        Ok(logs)
    }

    /// Envoy shutdown: `on_done` (and `on_delete`) for the root context.
    pub fn shutdown(mut self) -> Vec<LogEntry> {
        self.begin_op();
        let root = self.store.data().root_id;
        self.retire_root(root);
        self.take_logs()
    }

    // ---- internals ----

    /// Creates a root context and runs `on_vm_start` + `on_configure` on it.
    pub(crate) fn start_root(&mut self, configuration: &[u8]) -> Result<Vec<LogEntry>, Error> {
        self.begin_op();
        let previous_root = self.store.data().root_id;
        let root = self.alloc_context_id();
        {
            let state = self.store.data_mut();
            state.roots.push(root);
            state.root_id = root;
            state.effective = root;
            state.plugin_configuration = configuration.to_vec();
        }
        let vm_config_len = self.host.settings().vm_configuration.len() as i32;
        let result = (|| {
            let create: Pick<_, _> = |e| &e.on_context_create;
            self.root_call(root, create, (root as i32, 0), "proxy_on_context_create")?;
            self.store.data_mut().vm_configuration_live = true;
            let vm_start: Pick<_, _> = |e| &e.on_vm_start;
            let started = self.root_call(
                root,
                vm_start,
                (root as i32, vm_config_len),
                "proxy_on_vm_start",
            )?;
            self.store.data_mut().vm_configuration_live = false;
            if started == Some(0) {
                return Ok(Some("proxy_on_vm_start"));
            }
            self.store.data_mut().plugin_configuration_live = true;
            let configure: Pick<_, _> = |e| &e.on_configure;
            let configured = self.root_call(
                root,
                configure,
                (root as i32, configuration.len() as i32),
                "proxy_on_configure",
            )?;
            self.store.data_mut().plugin_configuration_live = false;
            if configured == Some(0) {
                return Ok(Some("proxy_on_configure"));
            }
            self.drain()?;
            Ok(None)
        })();
        let state = self.store.data_mut();
        state.vm_configuration_live = false;
        state.plugin_configuration_live = false;
        match result {
            Ok(None) => Ok(self.take_logs()),
            Ok(Some(callback)) => {
                // Envoy drops the rejected root; the previous one (if any) stays in force.
                let state = self.store.data_mut();
                state.roots.retain(|r| *r != root);
                state.ticks.remove(&root);
                state.root_id = previous_root;
                state.effective = previous_root;
                Err(Error::ConfigurationRejected {
                    callback,
                    logs: self.take_logs(),
                })
            }
            Err(failure) => Err(Error::StartFailed {
                failure,
                logs: self.take_logs(),
            }),
        }
    }

    fn retire_root(&mut self, root: u32) {
        if self.failed.is_some() {
            return;
        }
        let done: Pick<_, _> = |e| &e.on_done;
        let Ok(finished) = self.root_call(root, done, root as i32, "proxy_on_done") else {
            return;
        };
        let state = self.store.data_mut();
        state.ticks.remove(&root);
        if finished == Some(0) {
            // Waits for the guest's `proxy_done()` (delivered by `drain`).
            state.roots_pending_done.push(root);
            return;
        }
        state.roots.retain(|r| *r != root);
        let delete: Pick<_, _> = |e| &e.on_delete;
        let _ = self.root_call(root, delete, root as i32, "proxy_on_delete");
    }

    pub(crate) fn alloc_context_id(&mut self) -> u32 {
        // Ids are allocated monotonically per VM and never reused (`allocContextId`).
        let id = self.next_context_id;
        self.next_context_id = self.next_context_id.wrapping_add(1);
        id
    }

    pub(crate) fn begin_op(&mut self) {
        let state = self.store.data_mut();
        state.hostcalls = 0;
        state.calls_made.clear();
        if let Some(trace) = &mut state.trace {
            trace.clear();
        }
    }

    pub(crate) fn take_logs(&mut self) -> Vec<LogEntry> {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    /// Calls a guest export with a fresh fuel budget; a trap marks the whole VM failed.
    pub(crate) fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        func: Pick<P, R>,
        args: P,
        name: &'static str,
    ) -> Result<Option<R>, VmFailure> {
        if let Some(failure) = &self.failed {
            return Err(failure.clone());
        }
        let fuel = self.host.settings().fuel_per_callback;
        if let Err(e) = self.store.set_fuel(fuel) {
            return Err(self.fail(name, e));
        }
        let Some(f) = func(&self.ex) else {
            return Ok(None);
        };
        match f.call(&mut self.store, args) {
            Ok(r) => Ok(Some(r)),
            Err(e) => Err(self.fail(name, e)),
        }
    }

    /// A root-context callback: the effective context is the root while it runs.
    pub(crate) fn root_call<P: WasmParams, R: WasmResults>(
        &mut self,
        root: u32,
        func: Pick<P, R>,
        args: P,
        name: &'static str,
    ) -> Result<Option<R>, VmFailure> {
        let state = self.store.data_mut();
        let saved = state.effective;
        state.effective = root;
        let result = self.call(func, args, name);
        self.store.data_mut().effective = saved;
        result
    }

    fn fail(&mut self, callback: &'static str, error: wasmtime::Error) -> VmFailure {
        let fuel = self.host.settings().fuel_per_callback;
        let message = match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => format!(
                "ran out of fuel ({fuel} instructions per callback): host-sim's bound on guest \
                 time (Envoy has none; the request would hang)"
            ),
            Some(trap) => trap.to_string(),
            None => format!("{error:#}"),
        };
        // The first frames of a Rust panic are the panic machinery; the plugin's own frames
        // (what a reader needs) come after them.
        let backtrace = error
            .downcast_ref::<WasmBacktrace>()
            .map(|bt| {
                let names: Vec<String> = bt
                    .frames()
                    .iter()
                    .map(|f| match f.func_name() {
                        Some(name) => format!("{:#}", rustc_demangle::demangle(name)),
                        None => "<unnamed>".to_string(),
                    })
                    .collect();
                let machinery = [
                    "std::",
                    "core::",
                    "alloc::",
                    "__rustc::",
                    "panic_abort::",
                    "abort",
                ];
                let own: Vec<&String> = names
                    .iter()
                    .filter(|n| !machinery.iter().any(|m| n.starts_with(m)))
                    .take(4)
                    .collect();
                let shown: Vec<&String> = if own.is_empty() {
                    names.iter().take(4).collect()
                } else {
                    own
                };
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" <- ")
            })
            .filter(|s| !s.is_empty());
        let message = match backtrace {
            Some(bt) => format!("{message} (at {bt})"),
            None => message,
        };
        let failure = VmFailure {
            callback: callback.to_string(),
            message,
        };
        let policy = if self.host.settings().fail_open {
            "fail open: the plugin is skipped from now on"
        } else {
            "fail closed: every later request gets 503 wasm_fail_stream, TCP connections close"
        };
        self.store.data_mut().logs.push(LogEntry {
            level: LogLevel::Critical,
            message: format!("host-sim: VM failed: {failure}; {policy}"),
        });
        self.failed = Some(failure.clone());
        failure
    }

    /// Work Envoy does after a callback returns: deliver callout responses (to the root
    /// context), queue-ready notifications and deferred `on_delete`s.
    pub(crate) fn drain(&mut self) -> Result<(), VmFailure> {
        for _ in 0..10_000 {
            let state = self.store.data_mut();
            state
                .pending_calls
                .retain(|c| c.response != CallResponse::NoAnswer);
            if let Some(call) =
                (!state.pending_calls.is_empty()).then(|| state.pending_calls.remove(0))
            {
                self.deliver_call(call.token, call.root, call.response)?;
                continue;
            }
            if let Some(root) = state.roots_done.pop() {
                state.roots.retain(|r| *r != root);
                let delete: Pick<_, _> = |e| &e.on_delete;
                self.root_call(root, delete, root as i32, "proxy_on_delete")?;
                continue;
            }
            let instance = state.instance_id;
            let ready = {
                let mut shared = lock(&state.shared);
                shared
                    .queues
                    .iter_mut()
                    .enumerate()
                    .find(|(_, q)| q.ready_pending && q.owner_instance == instance)
                    .map(|(i, q)| {
                        q.ready_pending = false;
                        (i, q.owner_root)
                    })
            };
            if let Some((index, root)) = ready {
                let f: Pick<_, _> = |e| &e.on_queue_ready;
                let id = (index + 1) as i32;
                self.root_call(root, f, (root as i32, id), "proxy_on_queue_ready")?;
                continue;
            }
            return Ok(());
        }
        Ok(())
    }

    fn deliver_call(
        &mut self,
        token: u32,
        root: u32,
        response: CallResponse,
    ) -> Result<(), VmFailure> {
        let state = self.store.data_mut();
        let (headers, body, trailers) = match response {
            CallResponse::Reply(r) => {
                let headers = r.header_map();
                let trailers = r
                    .trailers
                    .iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                    .collect();
                (headers, r.body, trailers)
            }
            CallResponse::Reset | CallResponse::UnknownCluster | CallResponse::NoAnswer => {
                state.call_status = (11, b"reset".to_vec());
                (Vec::new(), Vec::new(), Vec::new())
            }
        };
        let counts = (
            headers.len() as i32,
            body.len() as i32,
            trailers.len() as i32,
        );
        state.call = Some(CallInFlight {
            headers,
            body,
            trailers,
        });
        let f: Pick<_, _> = |e| &e.on_http_call_response;
        let result = self.root_call(
            root,
            f,
            (root as i32, token as i32, counts.0, counts.1, counts.2),
            "proxy_on_http_call_response",
        );
        let state = self.store.data_mut();
        state.call = None;
        state.call_status = (0, Vec::new());
        result.map(|_| ())
    }
}
