//! The one trait between the glue and a proxy-wasm host.
//!
//! Everything the filter asks of Envoy goes through [`Host`], so the glue runs natively against a
//! fake host in tests and against the real ABI in the `.wasm` (`glue::proxy`). Every status other
//! than OK (and NOT_FOUND where "absent" is a valid answer) becomes a [`HostError`]: the glue then
//! fails closed instead of panicking, because a panic traps and kills the whole VM.

use std::fmt;

use crate::config::LogLevel;

/// proxy-wasm `proxy_status_t` values (`proxy_wasm_common.h`) other than OK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStatus {
    NotFound,
    BadArgument,
    SerializationFailure,
    ParseFailure,
    BadExpression,
    InvalidMemoryAccess,
    Empty,
    CasMismatch,
    ResultMismatch,
    InternalFailure,
    BrokenConnection,
    Unimplemented,
    /// A code outside ABI 0.2.1.
    Unknown(u32),
}

impl HostStatus {
    /// `None` for OK (0).
    pub fn from_code(code: u32) -> Option<HostStatus> {
        Some(match code {
            0 => return None,
            1 => HostStatus::NotFound,
            2 => HostStatus::BadArgument,
            3 => HostStatus::SerializationFailure,
            4 => HostStatus::ParseFailure,
            5 => HostStatus::BadExpression,
            6 => HostStatus::InvalidMemoryAccess,
            7 => HostStatus::Empty,
            8 => HostStatus::CasMismatch,
            9 => HostStatus::ResultMismatch,
            10 => HostStatus::InternalFailure,
            11 => HostStatus::BrokenConnection,
            12 => HostStatus::Unimplemented,
            other => HostStatus::Unknown(other),
        })
    }
}

/// A host call that did not succeed: which call, on what, and the status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct HostError {
    /// The ABI function, e.g. `proxy_get_property`.
    pub call: &'static str,
    /// What it was asked for, e.g. `connection.mtls`.
    pub subject: String,
    pub status: HostStatus,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}): {:?}", self.call, self.subject, self.status)
    }
}

/// What the glue needs from a proxy-wasm host. Byte-returning on purpose: the host's data is
/// decoded leniently by the glue (invalid UTF-8 is an absent fact, never a panic).
pub trait Host {
    /// `proxy_get_property`. `Ok(None)` when the attribute does not exist (NOT_FOUND) or is
    /// empty (Envoy returns no bytes for an empty string).
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError>;

    /// `proxy_get_header_map_pairs(HTTP_REQUEST_HEADERS)`: the serialized pairs (empty when
    /// none). One call for all headers: cheaper than one call per header, and it sees repeated
    /// headers, which `proxy_get_header_map_value` does not.
    fn request_headers(&self) -> Result<Vec<u8>, HostError>;

    /// `proxy_get_buffer_bytes(PLUGIN_CONFIGURATION)`; only valid during `on_configure`.
    fn plugin_configuration(&self) -> Result<Option<Vec<u8>>, HostError>;

    /// `proxy_get_current_time_nanoseconds`.
    fn now_unix_nanos(&self) -> Result<u64, HostError>;

    /// `proxy_log`. Failing to log is not a reason to fail a request, so no result.
    fn log(&self, level: LogLevel, message: &str);

    /// `proxy_define_metric(COUNTER)`.
    fn define_counter(&self, name: &str) -> Result<u32, HostError>;

    /// `proxy_increment_metric`.
    fn increment_counter(&self, id: u32, by: i64) -> Result<(), HostError>;

    /// `proxy_send_local_response` with response code details (the SDK's helper cannot set
    /// them, and Envoy's RBAC filter names the deciding policy there).
    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<(), HostError>;

    /// `proxy_add_header_map_value(HTTP_RESPONSE_HEADERS)`.
    fn add_response_header(&self, name: &str, value: &str) -> Result<(), HostError>;

    /// `proxy_close_stream(DOWNSTREAM)`: Envoy closes the connection (FlushWrite).
    fn close_downstream(&self) -> Result<(), HostError>;

    /// `proxy_set_property`: Envoy stores it as filter state `wasm.<name>`.
    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError>;

    /// The size of the module's linear memory, where there is one (not a host call).
    fn linear_memory_bytes(&self) -> Option<usize> {
        None
    }
}
