//! Shared data and shared queues (process-wide in Envoy, keyed by vm_id; here: per `Host`).

use wasmtime::Linker;

use super::{copy_out, enter, read, status, write_u32, Cx, HostResult, Status};
use crate::state::{lock, HostState, Queue};

pub(super) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Cx<'_>, kp: i32, kl: i32, ptr_ptr: i32, size_ptr: i32, cas_ptr: i32| {
            status(get_data(&mut c, kp, kl, ptr_ptr, size_ptr, cas_ptr))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Cx<'_>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| {
            status(set_data(&mut c, kp, kl, vp, vl, cas))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: Cx<'_>, np: i32, nl: i32, ret: i32| status(register(&mut c, np, nl, ret)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Cx<'_>, vp: i32, vl: i32, np: i32, nl: i32, ret: i32| {
            status(resolve(&mut c, vp, vl, np, nl, ret))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: Cx<'_>, id: i32, vp: i32, vl: i32| status(enqueue(&mut c, id, vp, vl)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: Cx<'_>, id: i32, ptr_ptr: i32, size_ptr: i32| {
            status(dequeue(&mut c, id, ptr_ptr, size_ptr))
        },
    )?;
    Ok(())
}

fn get_data(
    c: &mut Cx<'_>,
    kp: i32,
    kl: i32,
    ptr_ptr: i32,
    size_ptr: i32,
    cas_ptr: i32,
) -> HostResult {
    enter(c, "proxy_get_shared_data", false)?;
    let key = read(c, kp, kl)?;
    let (value, cas) = lock(&c.data().shared)
        .data
        .get(&key)
        .cloned()
        .ok_or(Status::NotFound)?;
    copy_out(c, &value, ptr_ptr, size_ptr)?;
    write_u32(c, cas_ptr, cas)
}

/// `cas` 0 always writes; otherwise it must match the stored cas (CAS_MISMATCH); every write
/// assigns a fresh cas.
fn set_data(c: &mut Cx<'_>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32) -> HostResult {
    enter(c, "proxy_set_shared_data", false)?;
    let key = read(c, kp, kl)?;
    let value = read(c, vp, vl)?;
    let cas = cas as u32;
    let mut shared = lock(&c.data().shared);
    if let Some((_, stored)) = shared.data.get(&key) {
        if cas != 0 && cas != *stored {
            return Err(Status::CasMismatch.into());
        }
    }
    shared.next_cas = shared.next_cas.wrapping_add(1).max(1);
    let fresh = shared.next_cas;
    shared.data.insert(key, (value, fresh));
    Ok(())
}

fn queue_id(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

fn register(c: &mut Cx<'_>, np: i32, nl: i32, ret: i32) -> HostResult {
    enter(c, "proxy_register_shared_queue", false)?;
    let name = read(c, np, nl)?;
    let state = c.data();
    let (vm_id, instance, root) = (
        state.settings.vm_id.clone(),
        state.instance_id,
        state.root_id,
    );
    let id = {
        let mut shared = lock(&state.shared);
        let existing = shared
            .queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name);
        match existing {
            Some(i) => {
                if let Some(q) = shared.queues.get_mut(i) {
                    q.owner_instance = instance;
                    q.owner_root = root;
                }
                queue_id(i)
            }
            None => {
                shared.queues.push(Queue {
                    vm_id,
                    name,
                    owner_instance: instance,
                    owner_root: root,
                    items: Default::default(),
                    ready_pending: false,
                });
                queue_id(shared.queues.len() - 1)
            }
        }
    };
    write_u32(c, ret, id)
}

fn resolve(c: &mut Cx<'_>, vp: i32, vl: i32, np: i32, nl: i32, ret: i32) -> HostResult {
    enter(c, "proxy_resolve_shared_queue", false)?;
    let vm_id = read(c, vp, vl)?;
    let name = read(c, np, nl)?;
    let state = c.data();
    let vm_id = if vm_id.is_empty() {
        state.settings.vm_id.clone()
    } else {
        String::from_utf8_lossy(&vm_id).into_owned()
    };
    let index = lock(&state.shared)
        .queues
        .iter()
        .position(|q| q.vm_id == vm_id && q.name == name)
        .ok_or(Status::NotFound)?;
    write_u32(c, ret, queue_id(index))
}

fn enqueue(c: &mut Cx<'_>, id: i32, vp: i32, vl: i32) -> HostResult {
    enter(c, "proxy_enqueue_shared_queue", false)?;
    let value = read(c, vp, vl)?;
    let mut shared = lock(&c.data().shared);
    let index = (id as u32 as usize)
        .checked_sub(1)
        .ok_or(Status::NotFound)?;
    let queue = shared.queues.get_mut(index).ok_or(Status::NotFound)?;
    queue.items.push_back(value);
    queue.ready_pending = true;
    Ok(())
}

fn dequeue(c: &mut Cx<'_>, id: i32, ptr_ptr: i32, size_ptr: i32) -> HostResult {
    enter(c, "proxy_dequeue_shared_queue", false)?;
    let item = {
        let mut shared = lock(&c.data().shared);
        let index = (id as u32 as usize)
            .checked_sub(1)
            .ok_or(Status::NotFound)?;
        let queue = shared.queues.get_mut(index).ok_or(Status::NotFound)?;
        queue.items.pop_front().ok_or(Status::Empty)?
    };
    copy_out(c, &item, ptr_ptr, size_ptr)
}
