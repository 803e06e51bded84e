//! Effective context and `proxy_done`.

use wasmtime::Linker;

use super::{enter, status, Cx, HostResult, Status};
use crate::state::HostState;

pub(super) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: Cx<'_>, id: i32| status(set_effective_context(&mut c, id)),
    )?;
    linker.func_wrap("env", "proxy_done", |mut c: Cx<'_>| status(done(&mut c)))?;
    Ok(())
}

/// Unknown ids are BAD_ARGUMENT; otherwise later host calls in this callback act on `id`.
fn set_effective_context(c: &mut Cx<'_>, id: i32) -> HostResult {
    enter(c, "proxy_set_effective_context", false)?;
    let id = id as u32;
    let state = c.data_mut();
    let known = state.roots.contains(&id) || state.stream.as_ref().is_some_and(|s| s.id == id);
    if !known {
        return Err(Status::BadArgument.into());
    }
    state.effective = id;
    Ok(())
}

/// Completes a root context whose `proxy_on_done` returned false.
fn done(c: &mut Cx<'_>) -> HostResult {
    enter(c, "proxy_done", false)?;
    let state = c.data_mut();
    let id = state.effective;
    let at = state
        .roots_pending_done
        .iter()
        .position(|r| *r == id)
        .ok_or(Status::NotFound)?;
    state.roots_pending_done.remove(at);
    state.roots_done.push(id);
    Ok(())
}
