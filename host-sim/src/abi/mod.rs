//! The proxy-wasm ABI: one file per area, each function 1:1 with proxy-wasm-cpp-host
//! `src/exports.cc` plus Envoy's glue (`source/extensions/common/wasm/context.cc`).

use wasmtime::{Caller, Linker};

use crate::state::HostState;

mod buffers;
mod callouts;
mod context;
mod headers;
mod logging;
mod metrics;
mod properties;
mod shared;
mod stream;
pub(crate) mod wasi;

/// `proxy_status_t` (`proxy_wasm_common.h` WasmResult).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    Unimplemented = 12,
}

/// Why a host function did not return OK: a status for the guest, or a trap that kills the VM.
pub(crate) enum Fail {
    Status(Status),
    Trap(wasmtime::Error),
}

impl From<Status> for Fail {
    fn from(s: Status) -> Self {
        Self::Status(s)
    }
}

impl From<wasmtime::Error> for Fail {
    fn from(e: wasmtime::Error) -> Self {
        Self::Trap(e)
    }
}

pub(crate) type HostResult = Result<(), Fail>;

/// The i32 a host function returns (or the trap it raises).
pub(crate) fn status(result: HostResult) -> wasmtime::Result<i32> {
    match result {
        Ok(()) => Ok(Status::Ok as i32),
        Err(Fail::Status(s)) => Ok(s as i32),
        Err(Fail::Trap(e)) => Err(e),
    }
}

pub(crate) type Cx<'a> = Caller<'a, HostState>;

/// Every host function is counted; restricted ones trap while `_initialize` runs, as cpp-host
/// fails the VM for a non-whitelisted call during start-up.
pub(crate) fn enter(caller: &mut Cx<'_>, name: &'static str, allowed_at_start: bool) -> HostResult {
    let state = caller.data_mut();
    state.hostcalls += 1;
    if let Some(trace) = &mut state.trace {
        trace.push(name);
    }
    if state.restricted && !allowed_at_start {
        return Err(Fail::Trap(wasmtime::format_err!(
            "{name} called during _initialize; Envoy only allows logging, clocks, randomness \
             and WASI stubs there (cpp-host restricted callbacks)"
        )));
    }
    Ok(())
}

fn memory(caller: &Cx<'_>) -> Result<wasmtime::Memory, Fail> {
    caller
        .data()
        .memory
        .ok_or(Fail::Status(Status::InvalidMemoryAccess))
}

/// Copies guest bytes `[ptr, ptr+len)`; out of bounds is INVALID_MEMORY_ACCESS, never a panic.
pub(crate) fn read(caller: &Cx<'_>, ptr: i32, len: i32) -> Result<Vec<u8>, Fail> {
    let mem = memory(caller)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    mem.data(caller)
        .get(start..start.checked_add(len).ok_or(Status::InvalidMemoryAccess)?)
        .map(<[u8]>::to_vec)
        .ok_or(Fail::Status(Status::InvalidMemoryAccess))
}

pub(crate) fn write(caller: &mut Cx<'_>, ptr: i32, bytes: &[u8]) -> HostResult {
    let mem = memory(caller)?;
    let start = ptr as u32 as usize;
    let end = start
        .checked_add(bytes.len())
        .ok_or(Status::InvalidMemoryAccess)?;
    mem.data_mut(caller)
        .get_mut(start..end)
        .ok_or(Status::InvalidMemoryAccess)?
        .copy_from_slice(bytes);
    Ok(())
}

pub(crate) fn write_u32(caller: &mut Cx<'_>, ptr: i32, value: u32) -> HostResult {
    write(caller, ptr, &value.to_le_bytes())
}

pub(crate) fn write_u64(caller: &mut Cx<'_>, ptr: i32, value: u64) -> HostResult {
    write(caller, ptr, &value.to_le_bytes())
}

/// Hands bytes to the guest: allocate with its `malloc`/`proxy_on_memory_allocate`, copy, then
/// write (ptr, len) to the two out-pointers. Empty values are never allocated: ptr 0, size 0
/// (cpp-host `copyToPointerSize`), which the Rust SDK reads as `None`.
pub(crate) fn copy_out(
    caller: &mut Cx<'_>,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    if bytes.is_empty() {
        write_u32(caller, ptr_ptr, 0)?;
        return write_u32(caller, size_ptr, 0);
    }
    let malloc = caller
        .data()
        .malloc
        .clone()
        .ok_or(Status::InvalidMemoryAccess)?;
    let len = i32::try_from(bytes.len()).map_err(|_| Status::InvalidMemoryAccess)?;
    let ptr = malloc.call(&mut *caller, len)?;
    if ptr == 0 {
        return Err(Status::InvalidMemoryAccess.into());
    }
    // The allocation may have grown memory; `write` re-reads the base.
    write(caller, ptr, bytes)?;
    write_u32(caller, ptr_ptr, ptr as u32)?;
    write_u32(caller, size_ptr, bytes.len() as u32)
}

/// Registers every host function under `env` and WASI under both of its module names.
pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    logging::link(linker)?;
    context::link(linker)?;
    buffers::link(linker)?;
    headers::link(linker)?;
    properties::link(linker)?;
    stream::link(linker)?;
    callouts::link(linker)?;
    metrics::link(linker)?;
    shared::link(linker)?;
    for module in ["wasi_snapshot_preview1", "wasi_unstable"] {
        wasi::link(linker, module)?;
    }
    Ok(())
}

/// Names of every host function host-sim provides (for the README table and unknown-import
/// reports).
pub(crate) const ENV_FUNCTIONS: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_set_effective_context",
    "proxy_done",
    "proxy_get_buffer_bytes",
    "proxy_get_buffer_status",
    "proxy_set_buffer_bytes",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_size",
    "proxy_get_header_map_value",
    "proxy_add_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_send_local_response",
    "proxy_get_status",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_call_foreign_function",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_dequeue_shared_queue",
];
