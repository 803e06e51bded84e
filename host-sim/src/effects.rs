//! What came out: everything a plugin did that a user of Envoy could observe.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// proxy-wasm log levels (`proxy_wasm_enums.h` LogLevel; same numbering as Envoy's spdlog).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub(crate) fn from_abi(level: i32) -> Option<Self> {
        Some(match level {
            0 => Self::Trace,
            1 => Self::Debug,
            2 => Self::Info,
            3 => Self::Warn,
            4 => Self::Error,
            5 => Self::Critical,
            _ => return None,
        })
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "trace" => Self::Trace,
            "debug" => Self::Debug,
            "info" => Self::Info,
            "warn" | "warning" => Self::Warn,
            "error" => Self::Error,
            "critical" => Self::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Critical => "critical",
        })
    }
}

/// One line the plugin logged (`proxy_log`, or stdout/stderr through WASI `fd_write`), or a
/// line host-sim itself adds about the VM (marked `host`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    pub level: LogLevel,
    pub message: String,
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.level, self.message)
    }
}

/// Finds log lines containing `needle` (handy in assertions).
pub fn logs_containing<'a>(logs: &'a [LogEntry], needle: &str) -> Vec<&'a LogEntry> {
    logs.iter().filter(|l| l.message.contains(needle)).collect()
}

/// A response Envoy generated instead of asking the upstream (`proxy_send_local_response`, or
/// host-sim's 503 for a failed VM), as finally sent downstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalResponse {
    pub status: u32,
    pub body: String,
    /// Headers as sent downstream, after this plugin's `on_response_headers` ran on them.
    pub headers: BTreeMap<String, String>,
    /// Envoy's response code details (whitespace replaced by `_`), e.g. `wasm_fail_stream`.
    pub details: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<u32>,
}

/// How the request headers the upstream received differ from the ones the client sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HeaderChanges {
    /// Headers added or whose values changed: name -> every value now present.
    pub set: BTreeMap<String, Vec<String>>,
    /// Headers present before and absent now.
    pub removed: Vec<String>,
}

impl HeaderChanges {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.removed.is_empty()
    }

    /// The first value of a header the plugin added or changed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.set
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    pub(crate) fn diff(before: &[(Vec<u8>, Vec<u8>)], after: &[(Vec<u8>, Vec<u8>)]) -> Self {
        if before == after {
            return Self::default();
        }
        let group = |map: &[(Vec<u8>, Vec<u8>)]| {
            let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (k, v) in map {
                out.entry(String::from_utf8_lossy(k).into_owned())
                    .or_default()
                    .push(String::from_utf8_lossy(v).into_owned());
            }
            out
        };
        let (before, after) = (group(before), group(after));
        let mut changes = Self::default();
        for (name, values) in &after {
            if before.get(name) != Some(values) {
                changes.set.insert(name.clone(), values.clone());
            }
        }
        changes.removed = before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .cloned()
            .collect();
        changes
    }
}

/// What the upstream received when the request was let through.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpstreamRequest {
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub trailers: Vec<(String, String)>,
}

impl UpstreamRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why the VM died: a trap (panic, unreachable, out-of-bounds, fuel exhausted, proc_exit) in a
/// named callback. Envoy marks the whole VM failed; so does host-sim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VmFailure {
    pub callback: String,
    pub message: String,
}

impl fmt::Display for VmFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasm trap in {}: {}", self.callback, self.message)
    }
}

/// A callout the plugin dispatched with `proxy_http_call`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HttpCall {
    pub upstream: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub trailers: Vec<(String, String)>,
    pub timeout_ms: u32,
}

impl HttpCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where a stream stopped and was never resumed (Envoy would time it out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Stalled {
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
}

/// Everything one HTTP request produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpOutcome {
    pub local_response: Option<LocalResponse>,
    /// What reached the upstream, or `None` when the plugin (or a failed VM) stopped it.
    pub upstream_request: Option<UpstreamRequest>,
    pub request_header_changes: HeaderChanges,
    /// Response headers changes the plugin made to the upstream's response.
    pub response_header_changes: HeaderChanges,
    /// `proxy_close_stream` on the HTTP stream: Envoy resets it, no response at all.
    pub stream_reset: bool,
    pub stalled: Option<Stalled>,
    /// Filter state written with `proxy_set_property` (Envoy key `wasm.<path>`).
    pub filter_state: BTreeMap<String, String>,
    pub http_calls: Vec<HttpCall>,
    pub logs: Vec<LogEntry>,
    pub vm_failure: Option<VmFailure>,
    /// Host functions the guest called for this request (a cost measure, not a timing).
    pub hostcalls: u64,
    /// Their names in order, when the host was built with `trace_hostcalls(true)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hostcall_trace: Vec<&'static str>,
}

impl HttpOutcome {
    /// The HTTP status the client saw: the local reply's or the upstream's; `None` on reset or
    /// a stream that never finished.
    pub fn status(&self) -> Option<u32> {
        self.local_response.as_ref().map(|r| r.status)
    }

    /// Did the request reach the upstream?
    pub fn allowed(&self) -> bool {
        self.upstream_request.is_some()
    }
}

/// What one step of a TCP connection produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpOutcome {
    /// The plugin (or a failed VM) closed the connection.
    pub connection_closed: bool,
    /// Bytes passed on to the upstream so far.
    pub forwarded: String,
    pub filter_state: BTreeMap<String, String>,
    pub logs: Vec<LogEntry>,
    pub vm_failure: Option<VmFailure>,
    pub hostcalls: u64,
}

/// Metric values (Envoy stats in the `wasmcustom` namespace).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricValue {
    Counter(u64),
    Gauge(i64),
    Histogram(Vec<u64>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn header_changes_report_added_changed_and_removed_names() {
        let before = map(&[(":path", "/"), ("a", "1"), ("b", "2"), ("d", "x")]);
        let after = map(&[
            (":path", "/"),
            ("a", "9"),
            ("c", "3"),
            ("d", "x"),
            ("d", "y"),
        ]);
        let changes = HeaderChanges::diff(&before, &after);
        assert_eq!(changes.get("a"), Some("9"));
        assert_eq!(changes.get("c"), Some("3"));
        assert_eq!(changes.set["d"], vec!["x", "y"]);
        assert!(!changes.set.contains_key(":path"));
        assert_eq!(changes.removed, vec!["b"]);
    }
}
