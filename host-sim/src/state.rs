//! The state host functions act on: one `HostState` per wasm instance (an Envoy worker's VM),
//! plus `Shared` for what Envoy keeps process-wide (shared data, queues, stats).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::{Memory, TypedFunc};

use crate::effects::{HttpCall, LocalResponse, LogEntry, LogLevel, MetricValue};
use crate::facts::{Connection, Response};
use crate::settings::Settings;

/// A header map as Envoy stores it: ordered, duplicates kept, names lower-case.
pub(crate) type HeaderMap = Vec<(Vec<u8>, Vec<u8>)>;

/// What answers `proxy_http_call`s: called when the guest dispatches, so that an unknown
/// cluster can fail the call itself, as in Envoy.
pub type Responder = Box<dyn FnMut(&HttpCall) -> CallResponse + Send>;

/// A scripted answer to an HTTP callout.
#[derive(Clone, Debug, PartialEq)]
pub enum CallResponse {
    /// The upstream answered (delivered to `proxy_on_http_call_response` after the callback).
    Reply(Response),
    /// The stream was reset: the callback sees 0 headers and `proxy_get_status` gives
    /// (BROKEN_CONNECTION, "reset").
    Reset,
    /// No such cluster: `proxy_http_call` itself returns BAD_ARGUMENT.
    UnknownCluster,
    /// The call is accepted and never answered within the test (its timeout is longer).
    NoAnswer,
}

#[derive(Default)]
pub(crate) struct Shared {
    pub data: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    pub next_cas: u32,
    pub queues: Vec<Queue>,
    pub metrics: BTreeMap<String, MetricValue>,
}

pub(crate) struct Queue {
    pub vm_id: String,
    pub name: Vec<u8>,
    pub owner_instance: u64,
    pub owner_root: u32,
    pub items: VecDeque<Vec<u8>>,
    /// Envoy posts `proxy_on_queue_ready` to the owner's thread; host-sim delivers it when
    /// the owning plugin next returns from a callback or runs anything.
    pub ready_pending: bool,
}

pub(crate) type SharedHandle = Arc<Mutex<Shared>>;

pub(crate) fn lock(shared: &SharedHandle) -> MutexGuard<'_, Shared> {
    // A poisoned lock only means another thread panicked mid-update of plain maps.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Http,
    Tcp,
}

/// One HTTP stream or TCP connection (a stream context in proxy-wasm terms).
pub(crate) struct StreamState {
    pub id: u32,
    pub kind: StreamKind,
    pub connection: Connection,
    /// `source.address` as Envoy serves it (XFF-derived for HTTP, see `Hcm`).
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub protocol: String,
    pub start_ns: u64,
    pub filter_metadata: serde_json::Map<String, serde_json::Value>,

    pub request_headers: HeaderMap,
    pub request_trailers: HeaderMap,
    pub response_headers: HeaderMap,
    pub response_trailers: HeaderMap,
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    pub downstream_data: Vec<u8>,
    pub upstream_data: Vec<u8>,

    /// Envoy holds a pointer to a map only during its callbacks (and while paused from them);
    /// elsewhere reads see BAD_ARGUMENT / an empty map (proxy-wasm-abi.md §4.2).
    pub live: Live,
    /// During `proxy_on_log` every map is readable but none writable.
    pub in_log: bool,

    pub local_response: Option<PendingLocalResponse>,
    pub local_response_sent: bool,
    pub resumed_request: bool,
    pub resumed_response: bool,
    pub resumed_downstream: bool,
    pub reset: bool,
    pub close_downstream: bool,
    pub close_upstream: bool,
    pub response_code: Option<u32>,
    pub response_details: String,
    pub filter_state: BTreeMap<Vec<u8>, Vec<u8>>,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Live {
    pub request_headers: bool,
    pub request_body: bool,
    pub request_trailers: bool,
    pub response_headers: bool,
    pub response_body: bool,
    pub response_trailers: bool,
    pub downstream_data: bool,
    pub upstream_data: bool,
}

pub(crate) struct PendingLocalResponse {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: HeaderMap,
    pub grpc_status: Option<u32>,
}

impl PendingLocalResponse {
    pub fn into_effect(self, final_headers: &HeaderMap) -> LocalResponse {
        LocalResponse {
            status: self.status,
            body: String::from_utf8_lossy(&self.body).into_owned(),
            headers: final_headers
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect(),
            details: self.details,
            grpc_status: self.grpc_status,
        }
    }
}

impl StreamState {
    pub fn new(
        id: u32,
        kind: StreamKind,
        connection: Connection,
        source: SocketAddr,
        destination: SocketAddr,
        start_ns: u64,
    ) -> Self {
        Self {
            id,
            kind,
            connection,
            source,
            destination,
            protocol: "HTTP/1.1".into(),
            start_ns,
            filter_metadata: serde_json::Map::new(),
            request_headers: Vec::new(),
            request_trailers: Vec::new(),
            response_headers: Vec::new(),
            response_trailers: Vec::new(),
            request_body: Vec::new(),
            response_body: Vec::new(),
            downstream_data: Vec::new(),
            upstream_data: Vec::new(),
            live: Live::default(),
            in_log: false,
            local_response: None,
            local_response_sent: false,
            resumed_request: false,
            resumed_response: false,
            resumed_downstream: false,
            reset: false,
            close_downstream: false,
            close_upstream: false,
            response_code: None,
            response_details: String::new(),
            filter_state: BTreeMap::new(),
        }
    }
}

/// An answered callout waiting for the current callback to return.
pub(crate) struct PendingCall {
    pub token: u32,
    pub root: u32,
    pub response: CallResponse,
}

/// The response being delivered to `proxy_on_http_call_response` (maps 6/7, buffer 4).
pub(crate) struct CallInFlight {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

pub(crate) struct Tick {
    pub period_ns: u64,
    pub next_due_ns: u64,
}

/// The store data of one wasm instance.
pub(crate) struct HostState {
    pub memory: Option<Memory>,
    pub malloc: Option<TypedFunc<i32, i32>>,
    pub settings: Arc<Settings>,
    pub shared: SharedHandle,
    pub instance_id: u64,

    /// During `_initialize` only a whitelist of imports may run (cpp-host restricted callbacks).
    pub restricted: bool,
    /// Root contexts alive on this VM; the first is the current plugin's.
    pub roots: Vec<u32>,
    /// Roots whose `proxy_on_done` returned false: waiting for `proxy_done`.
    pub roots_pending_done: Vec<u32>,
    pub roots_done: Vec<u32>,
    pub root_id: u32,
    pub effective: u32,
    pub plugin_configuration: Vec<u8>,
    pub vm_configuration_live: bool,
    pub plugin_configuration_live: bool,

    pub stream: Option<StreamState>,
    pub call: Option<CallInFlight>,
    pub call_status: (u32, Vec<u8>),
    pub pending_calls: Vec<PendingCall>,
    pub calls_made: Vec<HttpCall>,
    pub next_call_token: u32,
    pub responder: Option<Responder>,

    pub ticks: BTreeMap<u32, Tick>,
    pub clock_base_ns: u64,
    pub clock_offset_ns: u64,
    pub rng: u64,

    pub metric_defs: HashMap<u32, (MetricType, String)>,
    pub next_metric_id: [u32; 3],

    pub logs: Vec<LogEntry>,
    pub hostcalls: u64,
    /// Names of the host functions called, in order, when tracing is on.
    pub trace: Option<Vec<&'static str>>,
}

impl HostState {
    pub fn new(settings: Arc<Settings>, shared: SharedHandle, instance_id: u64) -> Self {
        let clock_base_ns = settings.clock_start_ns();
        Self {
            memory: None,
            malloc: None,
            shared,
            instance_id,
            restricted: false,
            roots: Vec::new(),
            roots_pending_done: Vec::new(),
            roots_done: Vec::new(),
            root_id: 0,
            effective: 0,
            plugin_configuration: Vec::new(),
            vm_configuration_live: false,
            plugin_configuration_live: false,
            stream: None,
            call: None,
            call_status: (0, Vec::new()),
            pending_calls: Vec::new(),
            calls_made: Vec::new(),
            next_call_token: 0,
            responder: None,
            ticks: BTreeMap::new(),
            clock_base_ns,
            clock_offset_ns: 0,
            rng: 0x9e37_79b9_7f4a_7c15 ^ instance_id,
            metric_defs: HashMap::new(),
            next_metric_id: [0, 0, 0],
            logs: Vec::new(),
            hostcalls: 0,
            trace: settings.trace_hostcalls.then(Vec::new),
            settings,
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.clock_base_ns.saturating_add(self.clock_offset_ns)
    }

    pub fn log(&mut self, level: LogLevel, message: String) {
        if level >= self.settings.log_level {
            self.logs.push(LogEntry { level, message });
        }
    }

    /// The stream the current hostcall acts on, if the effective context is a stream.
    pub fn effective_stream(&mut self) -> Option<&mut StreamState> {
        let effective = self.effective;
        self.stream.as_mut().filter(|s| s.id == effective)
    }

    pub fn effective_stream_ref(&self) -> Option<&StreamState> {
        self.stream.as_ref().filter(|s| s.id == self.effective)
    }

    pub fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic per instance so runs are reproducible.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
