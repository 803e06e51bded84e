//! The proxy-wasm side (wasm32 only): [`Host`] on the raw ABI 0.2.1, and the exported
//! callbacks, dispatching to the host-independent glue.
//!
//! This module speaks the ABI itself instead of using the Rust SDK (`proxy-wasm` crate):
//! - the SDK's host-call wrappers panic on any status they do not expect (BAD_ARGUMENT from
//!   `proxy_get_property`, invalid UTF-8 in its string getters), and a panic traps and kills
//!   the VM, failing every later request; here every status becomes a [`HostError`];
//! - the SDK must know at `proxy_on_context_create` whether a stream is HTTP or TCP, and
//!   panics on the other kind's callbacks; Envoy does not say which. Here a stream's kind is
//!   fixed by its first callback (`on_request_headers` vs `on_new_connection`/data), so one
//!   module serves `envoy.filters.http.wasm` and `envoy.filters.network.wasm` alike;
//! - an unknown context id is answered fail-closed instead of panicking.

use std::ptr::{null, null_mut};

use std::cell::RefCell;

use crate::config::LogLevel;

use super::facts::encode_pairs;
use super::host::{Host, HostError, HostStatus};
use super::http::{Action, HttpStream};
use super::plugin::{IdMap, Root};
use super::tcp::TcpStream;

// ABI 0.2.1 enum values (`proxy_wasm_common.h`, `proxy_wasm_enums.h`).
const MAP_HTTP_REQUEST_HEADERS: u32 = 0;
const MAP_HTTP_RESPONSE_HEADERS: u32 = 2;
const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
const STREAM_DOWNSTREAM: u32 = 2;
const METRIC_COUNTER: u32 = 0;
/// "No gRPC status": Envoy treats values outside 0..16 as unset.
const GRPC_STATUS_NONE: i32 = -1;

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

    fn linear_memory_bytes(&self) -> Option<usize> {
        Some(core::arch::wasm32::memory_size(0) * 65536)
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

// ---------------------------------------------------------------------------------------------
// Exports (ABI 0.2.1 as Envoy calls them; `proxy-wasm-abi.md` §1.2, §4).

const ACTION_CONTINUE: u32 = 0;
const ACTION_PAUSE: u32 = 1;

fn action(a: Action) -> u32 {
    match a {
        Action::Continue => ACTION_CONTINUE,
        Action::Pause => ACTION_PAUSE,
    }
}

/// A stream context: its kind is known at its first callback.
enum Stream {
    Pending { root_id: u32 },
    Http(HttpStream),
    Tcp(TcpStream),
}

/// Roots are few (one per plugin configuration), so a list; streams are many at once.
#[derive(Default)]
struct Contexts {
    roots: Vec<(u32, Root)>,
    streams: IdMap<u32, Stream>,
}

thread_local! {
    static CONTEXTS: RefCell<Contexts> = RefCell::new(Contexts::default());
}

/// Runs `f` on the contexts. Host calls made inside never re-enter these exports (the host
/// only calls back into `proxy_on_memory_allocate`), so the borrow cannot be taken twice.
fn with_contexts<T>(f: impl FnOnce(&mut Contexts) -> T) -> T {
    CONTEXTS.with(|c| f(&mut c.borrow_mut()))
}

impl Contexts {
    /// The root of `id`, created on first sight.
    fn root_mut(&mut self, id: u32) -> Option<&mut Root> {
        if root(&self.roots, id).is_none() {
            self.roots.push((id, Root::new()));
        }
        self.roots
            .iter_mut()
            .find(|(r, _)| *r == id)
            .map(|(_, root)| root)
    }

    /// The HTTP stream of `id`, created from its root at the first HTTP callback. A context
    /// the host never announced, or one of an unknown root, gets a stream without a plugin,
    /// which denies: fail closed, never a panic.
    fn http(&mut self, id: u32) -> Option<&mut HttpStream> {
        let stream = self
            .streams
            .entry(id)
            .or_insert(Stream::Pending { root_id: 0 });
        if let Stream::Pending { root_id } = *stream {
            *stream = Stream::Http(
                root(&self.roots, root_id)
                    .map_or_else(|| Root::new().new_http_stream(), Root::new_http_stream),
            );
        }
        match stream {
            Stream::Http(http) => Some(http),
            _ => None,
        }
    }

    fn tcp(&mut self, id: u32) -> Option<&mut TcpStream> {
        let stream = self
            .streams
            .entry(id)
            .or_insert(Stream::Pending { root_id: 0 });
        if let Stream::Pending { root_id } = *stream {
            *stream = Stream::Tcp(
                root(&self.roots, root_id)
                    .map_or_else(|| Root::new().new_tcp_stream(), Root::new_tcp_stream),
            );
        }
        match stream {
            Stream::Tcp(tcp) => Some(tcp),
            _ => None,
        }
    }
}

fn root(roots: &[(u32, Root)], id: u32) -> Option<&Root> {
    roots.iter().find(|(r, _)| *r == id).map(|(_, root)| root)
}

/// A callback of the other kind than the stream's first one: answered by a stream without a
/// plugin, i.e. denied.
fn http_or_deny(c: &mut Contexts, id: u32, f: impl FnOnce(&mut HttpStream) -> Action) -> u32 {
    action(match c.http(id) {
        Some(http) => f(http),
        None => f(&mut Root::new().new_http_stream()),
    })
}

fn tcp_or_deny(c: &mut Contexts, id: u32, f: impl FnOnce(&mut TcpStream) -> Action) -> u32 {
    action(match c.tcp(id) {
        Some(tcp) => f(tcp),
        None => f(&mut Root::new().new_tcp_stream()),
    })
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The host copies results into memory it asks the guest for; the glue takes ownership back
/// with `Vec::from_raw_parts(ptr, size, size)` (`take_buffer`).
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let buffer: Box<[u8]> = vec![0u8; size].into_boxed_slice();
    Box::into_raw(buffer).cast::<u8>()
}

extern "C" {
    fn __wasm_call_ctors();
}

/// WASI reactor entry: Envoy calls it once after instantiation (`proxy-wasm-abi.md` §1.3).
/// Without an `_initialize` of its own a wasip1 cdylib is built in the command model, which
/// re-runs constructors around every exported call.
#[no_mangle]
pub extern "C" fn _initialize() {
    // SAFETY: called once by the host before any other export, as WASI reactors require.
    unsafe { __wasm_call_ctors() };
    // A panic aborts (trap, VM failed closed); log why first. Only `proxy_log` is allowed
    // during start-up, and this hook makes no other call.
    std::panic::set_hook(Box::new(|info| {
        ProxyHost::default().log(
            LogLevel::Critical,
            &format!("{}: panicked: {info}", super::plugin::LOG_PREFIX),
        );
    }));
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_context_id: u32) {
    with_contexts(|c| {
        if parent_context_id == 0 {
            let _ = c.root_mut(context_id);
        } else {
            c.streams.insert(
                context_id,
                Stream::Pending {
                    root_id: parent_context_id,
                },
            );
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, plugin_configuration_size: usize) -> u32 {
    let host = ProxyHost {
        configuration_size: plugin_configuration_size,
    };
    u32::from(with_contexts(|c| {
        c.root_mut(root_id)
            .is_some_and(|root| root.on_configure(&host))
    }))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context_id: u32, _headers: usize, _eos: u32) -> u32 {
    with_contexts(|c| {
        http_or_deny(c, context_id, |s| {
            s.on_request_headers(&ProxyHost::default())
        })
    })
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(context_id: u32, _headers: usize, _eos: u32) -> u32 {
    with_contexts(|c| {
        http_or_deny(c, context_id, |s| {
            s.on_response_headers(&ProxyHost::default())
        })
    })
}

#[no_mangle]
pub extern "C" fn proxy_on_new_connection(context_id: u32) -> u32 {
    with_contexts(|c| {
        tcp_or_deny(c, context_id, |s| {
            s.on_new_connection(&ProxyHost::default())
        })
    })
}

#[no_mangle]
pub extern "C" fn proxy_on_downstream_data(context_id: u32, _size: usize, _eos: u32) -> u32 {
    with_contexts(|c| {
        tcp_or_deny(c, context_id, |s| {
            s.on_downstream_data(&ProxyHost::default())
        })
    })
}

#[no_mangle]
pub extern "C" fn proxy_on_upstream_data(context_id: u32, _size: usize, _eos: u32) -> u32 {
    with_contexts(|c| tcp_or_deny(c, context_id, |s| s.on_upstream_data(&ProxyHost::default())))
}

// Callbacks this filter has nothing to do in. Envoy calls only what the module exports, but
// other hosts (and older Envoys) look several up unconditionally, so all of ABI 0.2.1 is here.
#[no_mangle]
pub extern "C" fn proxy_on_request_body(_id: u32, _size: usize, _eos: u32) -> u32 {
    ACTION_CONTINUE
}
#[no_mangle]
pub extern "C" fn proxy_on_request_trailers(_id: u32, _trailers: usize) -> u32 {
    ACTION_CONTINUE
}
#[no_mangle]
pub extern "C" fn proxy_on_response_body(_id: u32, _size: usize, _eos: u32) -> u32 {
    ACTION_CONTINUE
}
#[no_mangle]
pub extern "C" fn proxy_on_response_trailers(_id: u32, _trailers: usize) -> u32 {
    ACTION_CONTINUE
}
#[no_mangle]
pub extern "C" fn proxy_on_downstream_connection_close(_id: u32, _peer: u32) {}
#[no_mangle]
pub extern "C" fn proxy_on_upstream_connection_close(_id: u32, _peer: u32) {}
#[no_mangle]
pub extern "C" fn proxy_on_tick(_root_id: u32) {}
#[no_mangle]
pub extern "C" fn proxy_on_queue_ready(_root_id: u32, _queue_id: u32) {}
#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    _root_id: u32,
    _token: u32,
    _headers: usize,
    _body_size: usize,
    _trailers: usize,
) {
}
#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive_initial_metadata(_root_id: u32, _token: u32, _n: usize) {}
#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive(_root_id: u32, _token: u32, _size: usize) {}
#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive_trailing_metadata(_root_id: u32, _token: u32, _n: usize) {}
#[no_mangle]
pub extern "C" fn proxy_on_grpc_close(_root_id: u32, _token: u32, _status: u32) {}
#[no_mangle]
pub extern "C" fn proxy_on_foreign_function(_root_id: u32, _function_id: u32, _size: usize) {}
#[no_mangle]
pub extern "C" fn proxy_on_log(_context_id: u32) {}

/// Streams are done at once; a root is done when the host says (`true`: no pending work).
#[no_mangle]
pub extern "C" fn proxy_on_done(_context_id: u32) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    with_contexts(|c| {
        if c.streams.remove(&context_id).is_none() {
            c.roots.retain(|(id, _)| *id != context_id);
        }
    });
}
