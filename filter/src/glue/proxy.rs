//! The proxy-wasm side (wasm32 only): [`Host`] on the raw ABI, and the Rust SDK's contexts
//! delegating to the host-independent glue.
//!
//! The host calls are declared here rather than taken from the SDK's `hostcalls`, because the
//! SDK panics on any status it does not expect (e.g. BAD_ARGUMENT from `proxy_get_property`,
//! a non-UTF-8 header value in its string getters), and a panic traps and kills the VM: every
//! later request would fail. Here every status becomes a [`HostError`]. The SDK still provides
//! the exports, the context dispatch and the allocator the host copies results into.

use std::ptr::{null, null_mut};

use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action as SdkAction, ContextType, LogLevel as SdkLogLevel};

use crate::config::{FilterType, LogLevel};

use super::facts::encode_pairs;
use super::host::{Host, HostError, HostStatus};
use super::http::{Action, HttpStream};
use super::plugin::Root;
use super::tcp::TcpStream;

// ABI 0.2.1 enum values (`proxy_wasm_common.h`, `proxy_wasm_enums.h`).
const MAP_HTTP_REQUEST_HEADERS: u32 = 0;
const MAP_HTTP_RESPONSE_HEADERS: u32 = 2;
const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
const STREAM_DOWNSTREAM: u32 = 2;
const METRIC_COUNTER: u32 = 0;
/// "No gRPC status": Envoy treats values outside 0..16 as unset.
const GRPC_STATUS_NONE: i32 = -1;

#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_close_stream(stream_type: u32) -> u32;
}

fn check(call: &'static str, subject: impl FnOnce() -> String, code: u32) -> Result<(), HostError> {
    match HostStatus::from_code(code) {
        None => Ok(()),
        Some(status) => Err(HostError {
            call,
            subject: subject(),
            status,
        }),
    }
}

/// Takes ownership of a buffer the host filled through `proxy_on_memory_allocate`.
///
/// # Safety
/// `data`/`size` must come from a successful host call that allocated them with the SDK's
/// allocator (a boxed `[u8]` of exactly `size` bytes), or `data` must be null.
unsafe fn take_buffer(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        None
    } else {
        // SAFETY: per the contract above, the allocation is `size` bytes with capacity `size`.
        Some(unsafe { Vec::from_raw_parts(data, size, size) })
    }
}

/// The host as the running Envoy (or host-sim) provides it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyHost {
    /// The size `on_configure` was called with (the plugin configuration is only readable
    /// then).
    pub configuration_size: usize,
}

impl Host for ProxyHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        let serialized = path.join("\0");
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        // SAFETY: the path buffer outlives the call; the out-pointers are valid locals.
        let code = unsafe {
            proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size)
        };
        if HostStatus::from_code(code) == Some(HostStatus::NotFound) {
            return Ok(None);
        }
        check("proxy_get_property", || path.join("."), code)?;
        // SAFETY: OK status: the host allocated `size` bytes through our allocator (or null).
        Ok(unsafe { take_buffer(data, size) })
    }

    fn request_headers(&self) -> Result<Vec<u8>, HostError> {
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        // SAFETY: the out-pointers are valid locals.
        let code =
            unsafe { proxy_get_header_map_pairs(MAP_HTTP_REQUEST_HEADERS, &mut data, &mut size) };
        check(
            "proxy_get_header_map_pairs",
            || "request headers".to_string(),
            code,
        )?;
        // SAFETY: OK status: host-allocated buffer (or null for an empty map).
        Ok(unsafe { take_buffer(data, size) }.unwrap_or_default())
    }

    fn plugin_configuration(&self) -> Result<Option<Vec<u8>>, HostError> {
        if self.configuration_size == 0 {
            return Ok(None);
        }
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        // SAFETY: the out-pointers are valid locals.
        let code = unsafe {
            proxy_get_buffer_bytes(
                BUFFER_PLUGIN_CONFIGURATION,
                0,
                self.configuration_size,
                &mut data,
                &mut size,
            )
        };
        if HostStatus::from_code(code) == Some(HostStatus::NotFound) {
            return Ok(None);
        }
        check(
            "proxy_get_buffer_bytes",
            || "plugin configuration".to_string(),
            code,
        )?;
        // SAFETY: OK status: host-allocated buffer (or null when empty).
        Ok(unsafe { take_buffer(data, size) })
    }

    fn now_unix_nanos(&self) -> Result<u64, HostError> {
        let mut nanos: u64 = 0;
        // SAFETY: the out-pointer is a valid local.
        let code = unsafe { proxy_get_current_time_nanoseconds(&mut nanos) };
        check("proxy_get_current_time_nanoseconds", String::new, code)?;
        Ok(nanos)
    }

    fn log(&self, level: LogLevel, message: &str) {
        // SAFETY: the message outlives the call.
        let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
    }

    fn define_counter(&self, name: &str) -> Result<u32, HostError> {
        let mut id: u32 = 0;
        // SAFETY: the name outlives the call; the out-pointer is a valid local.
        let code =
            unsafe { proxy_define_metric(METRIC_COUNTER, name.as_ptr(), name.len(), &mut id) };
        check("proxy_define_metric", || name.to_string(), code)?;
        Ok(id)
    }

    fn increment_counter(&self, id: u32, by: i64) -> Result<(), HostError> {
        // SAFETY: plain values.
        let code = unsafe { proxy_increment_metric(id, by) };
        check("proxy_increment_metric", || id.to_string(), code)
    }

    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<(), HostError> {
        let headers = encode_pairs(headers);
        let body_ptr = if body.is_empty() {
            null()
        } else {
            body.as_ptr()
        };
        // SAFETY: every buffer outlives the call.
        let code = unsafe {
            proxy_send_local_response(
                status,
                details.as_ptr(),
                details.len(),
                body_ptr,
                body.len(),
                headers.as_ptr(),
                headers.len(),
                GRPC_STATUS_NONE,
            )
        };
        check("proxy_send_local_response", || status.to_string(), code)
    }

    fn add_response_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        // SAFETY: both buffers outlive the call.
        let code = unsafe {
            proxy_add_header_map_value(
                MAP_HTTP_RESPONSE_HEADERS,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        };
        check("proxy_add_header_map_value", || name.to_string(), code)
    }

    fn close_downstream(&self) -> Result<(), HostError> {
        // SAFETY: plain value.
        let code = unsafe { proxy_close_stream(STREAM_DOWNSTREAM) };
        check("proxy_close_stream", || "downstream".to_string(), code)
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        let serialized = path.join("\0");
        // SAFETY: both buffers outlive the call.
        let code = unsafe {
            proxy_set_property(
                serialized.as_ptr(),
                serialized.len(),
                value.as_ptr(),
                value.len(),
            )
        };
        check("proxy_set_property", || path.join("."), code)
    }
}

fn to_sdk(action: Action) -> SdkAction {
    match action {
        Action::Continue => SdkAction::Continue,
        Action::Pause => SdkAction::Pause,
    }
}

struct RootCtx {
    root: Root,
}

impl Context for RootCtx {}

impl RootContext for RootCtx {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let host = ProxyHost {
            configuration_size: plugin_configuration_size,
        };
        self.root.on_configure(&host)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HttpCtx(self.root.new_http_stream())))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(TcpCtx(self.root.new_tcp_stream())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(match self.root.filter_type() {
            FilterType::Http => ContextType::HttpContext,
            FilterType::Network => ContextType::StreamContext,
        })
    }
}

struct HttpCtx(HttpStream);

impl Context for HttpCtx {}

impl HttpContext for HttpCtx {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> SdkAction {
        to_sdk(self.0.on_request_headers(&ProxyHost::default()))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> SdkAction {
        to_sdk(self.0.on_response_headers(&ProxyHost::default()))
    }
}

struct TcpCtx(TcpStream);

impl Context for TcpCtx {}

impl StreamContext for TcpCtx {
    fn on_new_connection(&mut self) -> SdkAction {
        to_sdk(self.0.on_new_connection(&ProxyHost::default()))
    }

    fn on_downstream_data(&mut self, _data_size: usize, _end_of_stream: bool) -> SdkAction {
        to_sdk(self.0.on_downstream_data(&ProxyHost::default()))
    }

    fn on_upstream_data(&mut self, _data_size: usize, _end_of_stream: bool) -> SdkAction {
        to_sdk(self.0.on_upstream_data(&ProxyHost::default()))
    }
}

/// Called from `_initialize`: only registration, no host calls (Envoy allows none but logging
/// during start-up).
pub fn register() {
    // Installs the SDK's panic hook, which logs the panic message before the trap, and routes
    // `log` macros (if any code uses them) to `proxy_log`.
    proxy_wasm::set_log_level(SdkLogLevel::Info);
    proxy_wasm::set_root_context(|_context_id| Box::new(RootCtx { root: Root::new() }));
}
