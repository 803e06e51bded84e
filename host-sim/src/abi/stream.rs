//! Stream control: continue, close, local responses, call status.

use wasmtime::Linker;

use super::{copy_out, enter, read, status, write_u32, Cx, HostResult, Status};
use crate::pairs;
use crate::state::{HostState, PendingLocalResponse};

pub(super) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut c: Cx<'_>, kind: i32| status(continue_stream(&mut c, kind)),
    )?;
    linker.func_wrap("env", "proxy_close_stream", |mut c: Cx<'_>, kind: i32| {
        status(close_stream(&mut c, kind))
    })?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Cx<'_>,
         code: i32,
         dp: i32,
         dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         grpc: i32| {
            status(send_local_response(
                &mut c,
                code,
                (dp, dl),
                (bp, bl),
                (hp, hl),
                grpc,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: Cx<'_>, code_ptr: i32, ptr_ptr: i32, size_ptr: i32| {
            status(get_status(&mut c, code_ptr, ptr_ptr, size_ptr))
        },
    )?;
    // ABI 0.1.0 names some SDKs still import; Envoy maps them onto continue_stream.
    linker.func_wrap("env", "proxy_continue_request", |mut c: Cx<'_>| {
        status(continue_stream(&mut c, 0))
    })?;
    linker.func_wrap("env", "proxy_continue_response", |mut c: Cx<'_>| {
        status(continue_stream(&mut c, 1))
    })?;
    Ok(())
}

/// REQUEST/RESPONSE resume the HTTP stream (and drop Envoy's saved map pointers); DOWNSTREAM
/// resumes reading; UPSTREAM is UNIMPLEMENTED in Envoy.
fn continue_stream(c: &mut Cx<'_>, kind: i32) -> HostResult {
    enter(c, "proxy_continue_stream", false)?;
    let s = c.data_mut().effective_stream().ok_or(Status::NotFound)?;
    match kind {
        0 => {
            s.resumed_request = true;
            s.live.request_headers = false;
            s.live.request_body = false;
            s.live.request_trailers = false;
        }
        1 => {
            s.resumed_response = true;
            s.live.response_headers = false;
            s.live.response_body = false;
            s.live.response_trailers = false;
        }
        2 => s.resumed_downstream = true,
        3 => return Err(Status::Unimplemented.into()),
        _ => return Err(Status::BadArgument.into()),
    }
    Ok(())
}

/// HTTP: a deferred stream reset (no response at all); TCP: close the connection.
fn close_stream(c: &mut Cx<'_>, kind: i32) -> HostResult {
    enter(c, "proxy_close_stream", false)?;
    let s = c.data_mut().effective_stream().ok_or(Status::NotFound)?;
    match kind {
        0 | 1 => s.reset = true,
        2 => s.close_downstream = true,
        3 => s.close_upstream = true,
        _ => return Err(Status::BadArgument.into()),
    }
    Ok(())
}

/// Recorded now, sent after the callback returns (Envoy defers it), overriding the action.
fn send_local_response(
    c: &mut Cx<'_>,
    code: i32,
    details: (i32, i32),
    body: (i32, i32),
    headers: (i32, i32),
    grpc: i32,
) -> HostResult {
    enter(c, "proxy_send_local_response", false)?;
    let details = read(c, details.0, details.1)?;
    let body = read(c, body.0, body.1)?;
    let headers = read(c, headers.0, headers.1)?;
    let s = c.data_mut().effective_stream().ok_or(Status::NotFound)?;
    let details: String = String::from_utf8_lossy(&details)
        .chars()
        .map(|ch| if ch.is_whitespace() { '_' } else { ch })
        .collect();
    s.local_response = Some(PendingLocalResponse {
        status: code as u32,
        details,
        body,
        headers: pairs::deserialize(&headers)
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        // SDKs pass -1 for "none"; Envoy ignores values outside 0..=16.
        grpc_status: u32::try_from(grpc).ok().filter(|g| *g <= 16),
    });
    Ok(())
}

fn get_status(c: &mut Cx<'_>, code_ptr: i32, ptr_ptr: i32, size_ptr: i32) -> HostResult {
    enter(c, "proxy_get_status", false)?;
    let (code, message) = c.data().call_status.clone();
    write_u32(c, code_ptr, code)?;
    copy_out(c, &message, ptr_ptr, size_ptr)
}
