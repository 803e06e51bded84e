//! Header and trailer maps (types 0-7), phase-bound as in Envoy.

use wasmtime::Linker;

use super::{copy_out, enter, read, status, write_u32, Cx, HostResult, Status};
use crate::pairs;
use crate::state::{HeaderMap, HostState};

pub(super) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Cx<'_>, kind: i32, ptr_ptr: i32, size_ptr: i32| {
            status(get_pairs(&mut c, kind, ptr_ptr, size_ptr))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: Cx<'_>, kind: i32, ptr: i32, len: i32| status(set_pairs(&mut c, kind, ptr, len)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut c: Cx<'_>, kind: i32, ret: i32| status(get_size(&mut c, kind, ret)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Cx<'_>, kind: i32, kp: i32, kl: i32, ptr_ptr: i32, size_ptr: i32| {
            status(get_value(&mut c, kind, kp, kl, ptr_ptr, size_ptr))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Cx<'_>, kind: i32, kp: i32, kl: i32, vp: i32, vl: i32| {
            status(mutate(
                &mut c,
                "proxy_add_header_map_value",
                kind,
                kp,
                kl,
                Some((vp, vl)),
                Op::Add,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Cx<'_>, kind: i32, kp: i32, kl: i32, vp: i32, vl: i32| {
            status(mutate(
                &mut c,
                "proxy_replace_header_map_value",
                kind,
                kp,
                kl,
                Some((vp, vl)),
                Op::Replace,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Cx<'_>, kind: i32, kp: i32, kl: i32| {
            status(mutate(
                &mut c,
                "proxy_remove_header_map_value",
                kind,
                kp,
                kl,
                None,
                Op::Remove,
            ))
        },
    )?;
    Ok(())
}

/// The map Envoy holds a pointer to right now, or why not: `Err(BadArgument)` for a type out
/// of range, `Ok(None)` for a map that exists in the ABI but is not available in this phase.
fn map(state: &HostState, kind: i32) -> Result<Option<&HeaderMap>, Status> {
    if !(0..=7).contains(&kind) {
        return Err(Status::BadArgument);
    }
    if kind >= 6 {
        return Ok(state.call.as_ref().map(|call| {
            if kind == 6 {
                &call.headers
            } else {
                &call.trailers
            }
        }));
    }
    let Some(s) = state.effective_stream_ref() else {
        return Ok(None);
    };
    let live = &s.live;
    Ok(match kind {
        0 if live.request_headers || s.in_log => Some(&s.request_headers),
        1 if live.request_trailers || s.in_log => Some(&s.request_trailers),
        2 if live.response_headers || s.in_log => Some(&s.response_headers),
        3 if live.response_trailers || s.in_log => Some(&s.response_trailers),
        _ => None,
    })
}

fn map_mut(state: &mut HostState, kind: i32) -> Result<&mut HeaderMap, Status> {
    let s = state.effective_stream().ok_or(Status::BadArgument)?;
    if s.in_log {
        return Err(Status::BadArgument);
    }
    let live = s.live;
    match kind {
        0 if live.request_headers => Ok(&mut s.request_headers),
        1 if live.request_trailers => Ok(&mut s.request_trailers),
        2 if live.response_headers => Ok(&mut s.response_headers),
        3 if live.response_trailers => Ok(&mut s.response_trailers),
        _ => Err(Status::BadArgument),
    }
}

/// An unavailable map reads as empty (size 0), as cpp-host does.
fn get_pairs(c: &mut Cx<'_>, kind: i32, ptr_ptr: i32, size_ptr: i32) -> HostResult {
    enter(c, "proxy_get_header_map_pairs", false)?;
    let bytes = map(c.data(), kind)?
        .map(|m| pairs::serialize(m))
        .unwrap_or_default();
    copy_out(c, &bytes, ptr_ptr, size_ptr)
}

/// Removes every existing entry, then adds each pair (keys lower-cased). A malformed buffer
/// parses as an empty map and so clears the map, as in Envoy.
fn set_pairs(c: &mut Cx<'_>, kind: i32, ptr: i32, len: i32) -> HostResult {
    enter(c, "proxy_set_header_map_pairs", false)?;
    let bytes = read(c, ptr, len)?;
    let target = map_mut(c.data_mut(), kind)?;
    *target = pairs::deserialize(&bytes)
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    Ok(())
}

/// Envoy returns the map's byteSize (sum of key and value lengths), not the serialized size.
fn get_size(c: &mut Cx<'_>, kind: i32, ret: i32) -> HostResult {
    enter(c, "proxy_get_header_map_size", false)?;
    let size: usize = map(c.data(), kind)?
        .ok_or(Status::BadArgument)?
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    write_u32(c, ret, u32::try_from(size).unwrap_or(u32::MAX))
}

/// Only the first of repeated values (Envoy `getHeaderMapValue`); missing -> NOT_FOUND;
/// unavailable map -> BAD_ARGUMENT (the Rust SDK panics on that).
fn get_value(
    c: &mut Cx<'_>,
    kind: i32,
    kp: i32,
    kl: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    enter(c, "proxy_get_header_map_value", false)?;
    let key = read(c, kp, kl)?.to_ascii_lowercase();
    let value = map(c.data(), kind)?
        .ok_or(Status::BadArgument)?
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.clone())
        .ok_or(Status::NotFound)?;
    copy_out(c, &value, ptr_ptr, size_ptr)
}

enum Op {
    Add,
    Replace,
    Remove,
}

fn mutate(
    c: &mut Cx<'_>,
    name: &'static str,
    kind: i32,
    kp: i32,
    kl: i32,
    value: Option<(i32, i32)>,
    op: Op,
) -> HostResult {
    enter(c, name, false)?;
    let key = read(c, kp, kl)?.to_ascii_lowercase();
    let value = match value {
        Some((vp, vl)) => read(c, vp, vl)?,
        None => Vec::new(),
    };
    if !(0..=7).contains(&kind) {
        return Err(Status::BadArgument.into());
    }
    let target = map_mut(c.data_mut(), kind)?;
    match op {
        Op::Add => target.push((key, value)),
        Op::Replace => match target.iter().position(|(k, _)| *k == key) {
            // `setCopy`: the first entry takes the value, the other duplicates go.
            Some(first) => {
                let mut index = 0;
                target.retain(|(k, _)| {
                    let keep = *k != key || index == first;
                    index += 1;
                    keep
                });
                if let Some(entry) = target.iter_mut().find(|(k, _)| *k == key) {
                    entry.1 = value;
                }
            }
            None => target.push((key, value)),
        },
        Op::Remove => target.retain(|(k, _)| *k != key),
    }
    Ok(())
}
