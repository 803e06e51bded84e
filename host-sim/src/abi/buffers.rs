//! Body, TCP data, callout body and configuration buffers.

use wasmtime::Linker;

use super::{copy_out, enter, read, status, write_u32, Cx, HostResult, Status};
use crate::state::HostState;

pub(super) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Cx<'_>, kind: i32, start: i32, max: i32, ptr_ptr: i32, size_ptr: i32| {
            status(get_buffer_bytes(
                &mut c, kind, start, max, ptr_ptr, size_ptr,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut c: Cx<'_>, kind: i32, size_ptr: i32, flags_ptr: i32| {
            status(get_buffer_status(&mut c, kind, size_ptr, flags_ptr))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Cx<'_>, kind: i32, start: i32, size: i32, ptr: i32, len: i32| {
            status(set_buffer_bytes(&mut c, kind, start, size, ptr, len))
        },
    )?;
    Ok(())
}

/// The bytes of a buffer as Envoy exposes them now (proxy-wasm-abi.md §5 "Buffers").
fn buffer(state: &HostState, kind: i32) -> Result<Vec<u8>, Status> {
    let stream = state.effective_stream_ref();
    match kind {
        // Outside their callbacks Envoy answers the body buffers with an empty buffer.
        0 => stream
            .map(|s| {
                if s.live.request_body {
                    s.request_body.clone()
                } else {
                    Vec::new()
                }
            })
            .ok_or(Status::NotFound),
        1 => stream
            .map(|s| {
                if s.live.response_body {
                    s.response_body.clone()
                } else {
                    Vec::new()
                }
            })
            .ok_or(Status::NotFound),
        2 => stream
            .filter(|s| s.live.downstream_data)
            .map(|s| s.downstream_data.clone())
            .ok_or(Status::NotFound),
        3 => stream
            .filter(|s| s.live.upstream_data)
            .map(|s| s.upstream_data.clone())
            .ok_or(Status::NotFound),
        4 => state
            .call
            .as_ref()
            .map(|c| c.body.clone())
            .ok_or(Status::NotFound),
        5 | 8 => Err(Status::NotFound),
        6 => Ok(state.settings.vm_configuration.clone()),
        7 if state.plugin_configuration_live => Ok(state.plugin_configuration.clone()),
        7 => Err(Status::NotFound),
        _ => Err(Status::BadArgument),
    }
}

fn get_buffer_bytes(
    c: &mut Cx<'_>,
    kind: i32,
    start: i32,
    max: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    enter(c, "proxy_get_buffer_bytes", false)?;
    let (start, max) = (start as u32, max as u32);
    if start.checked_add(max).is_none() {
        return Err(Status::BadArgument.into());
    }
    let bytes = buffer(c.data(), kind)?;
    let from = (start as usize).min(bytes.len());
    let to = from.saturating_add(max as usize).min(bytes.len());
    let slice = bytes.get(from..to).unwrap_or_default().to_vec();
    copy_out(c, &slice, ptr_ptr, size_ptr)
}

fn get_buffer_status(c: &mut Cx<'_>, kind: i32, size_ptr: i32, flags_ptr: i32) -> HostResult {
    enter(c, "proxy_get_buffer_status", false)?;
    let len = buffer(c.data(), kind)?.len();
    write_u32(c, size_ptr, u32::try_from(len).unwrap_or(u32::MAX))?;
    write_u32(c, flags_ptr, 0)
}

/// Envoy supports prepend (start 0, size 0), replace (start 0, size >= length) and append
/// (start >= length); anything else, and immutable buffers, is BAD_ARGUMENT.
fn set_buffer_bytes(
    c: &mut Cx<'_>,
    kind: i32,
    start: i32,
    size: i32,
    ptr: i32,
    len: i32,
) -> HostResult {
    enter(c, "proxy_set_buffer_bytes", false)?;
    let data = read(c, ptr, len)?;
    let state = c.data_mut();
    let stream = state.effective_stream().ok_or(Status::NotFound)?;
    let target = match kind {
        0 if stream.live.request_body => &mut stream.request_body,
        1 if stream.live.response_body => &mut stream.response_body,
        2 if stream.live.downstream_data => &mut stream.downstream_data,
        3 if stream.live.upstream_data => &mut stream.upstream_data,
        0..=3 => return Err(Status::NotFound.into()),
        _ => return Err(Status::BadArgument.into()),
    };
    let (start, size) = (start as u32 as usize, size as u32 as usize);
    if start == 0 && size == 0 {
        let mut joined = data;
        joined.extend_from_slice(target);
        *target = joined;
    } else if start == 0 && size >= target.len() {
        *target = data;
    } else if start >= target.len() {
        target.extend_from_slice(&data);
    } else {
        return Err(Status::BadArgument.into());
    }
    Ok(())
}
