//! `proxy_get_property` / `proxy_set_property`.

use wasmtime::Linker;

use super::{copy_out, enter, read, status, Cx, HostResult, Status};
use crate::state::HostState;

pub(super) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Cx<'_>, pp: i32, pl: i32, ptr_ptr: i32, size_ptr: i32| {
            status(get_property(&mut c, pp, pl, ptr_ptr, size_ptr))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: Cx<'_>, pp: i32, pl: i32, vp: i32, vl: i32| {
            status(set_property(&mut c, pp, pl, vp, vl))
        },
    )?;
    Ok(())
}

fn get_property(c: &mut Cx<'_>, pp: i32, pl: i32, ptr_ptr: i32, size_ptr: i32) -> HostResult {
    enter(c, "proxy_get_property", false)?;
    let path = read(c, pp, pl)?;
    let value = crate::properties::get(c.data(), &path)?;
    copy_out(c, &value, ptr_ptr, size_ptr)
}

/// Envoy stores the bytes in filter state under `wasm.<raw path>`; no stream -> NOT_FOUND.
fn set_property(c: &mut Cx<'_>, pp: i32, pl: i32, vp: i32, vl: i32) -> HostResult {
    enter(c, "proxy_set_property", false)?;
    let path = read(c, pp, pl)?;
    let value = read(c, vp, vl)?;
    let stream = c.data_mut().effective_stream().ok_or(Status::NotFound)?;
    stream
        .filter_state
        .insert([b"wasm.".as_slice(), &path].concat(), value);
    Ok(())
}
