//! HTTP callouts (answered by the test's responder), gRPC (no gRPC services are configured)
//! and foreign functions (none registered).

use wasmtime::Linker;

use super::{enter, read, status, write_u32, Cx, HostResult, Status};
use crate::effects::HttpCall;
use crate::pairs;
use crate::state::{CallResponse, HostState, PendingCall};

pub(super) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Cx<'_>,
         up: i32,
         ul: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         tp: i32,
         tl: i32,
         timeout: i32,
         token_ptr: i32| {
            status(http_call(
                &mut c,
                [(up, ul), (hp, hl), (bp, bl), (tp, tl)],
                timeout,
                token_ptr,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut c: Cx<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32| status(no_grpc_service(&mut c, "proxy_grpc_call")),
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |mut c: Cx<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| {
            status(no_grpc_service(&mut c, "proxy_grpc_stream"))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |mut c: Cx<'_>, _: i32, _: i32, _: i32, _: i32| {
            status(no_such_token(&mut c, "proxy_grpc_send"))
        },
    )?;
    linker.func_wrap("env", "proxy_grpc_cancel", |mut c: Cx<'_>, _: i32| {
        status(no_such_token(&mut c, "proxy_grpc_cancel"))
    })?;
    linker.func_wrap("env", "proxy_grpc_close", |mut c: Cx<'_>, _: i32| {
        status(no_such_token(&mut c, "proxy_grpc_close"))
    })?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: Cx<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| {
            status(no_such_token(&mut c, "proxy_call_foreign_function"))
        },
    )?;
    Ok(())
}

fn to_strings(map: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(String, String)> {
    map.into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

/// Envoy: missing `:path`, `:method` or `:authority`, a negative timeout or an unknown cluster
/// are BAD_ARGUMENT; the response goes to the caller's *root* context after this callback.
fn http_call(c: &mut Cx<'_>, parts: [(i32, i32); 4], timeout: i32, token_ptr: i32) -> HostResult {
    enter(c, "proxy_http_call", false)?;
    let [upstream, headers, body, trailers] = parts;
    let upstream = read(c, upstream.0, upstream.1)?;
    let mut headers = to_strings(pairs::deserialize(&read(c, headers.0, headers.1)?));
    let body = read(c, body.0, body.1)?;
    let trailers = to_strings(pairs::deserialize(&read(c, trailers.0, trailers.1)?));
    if timeout < 0 {
        return Err(Status::BadArgument.into());
    }
    for required in [":path", ":method", ":authority"] {
        if !headers.iter().any(|(k, _)| k == required) {
            return Err(Status::BadArgument.into());
        }
    }
    if !body.is_empty() {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
        headers.push(("content-length".into(), body.len().to_string()));
    }
    let call = HttpCall {
        upstream: String::from_utf8_lossy(&upstream).into_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        trailers,
        timeout_ms: timeout as u32,
    };
    let state = c.data_mut();
    let response = match state.responder.as_mut() {
        Some(responder) => responder(&call),
        None => CallResponse::UnknownCluster,
    };
    if response == CallResponse::UnknownCluster {
        let message = format!(
            "host-sim: proxy_http_call to unknown cluster {:?} (no responder answers it)",
            call.upstream
        );
        state.log(crate::effects::LogLevel::Debug, message);
        return Err(Status::BadArgument.into());
    }
    state.next_call_token = state.next_call_token.wrapping_add(4);
    let token = state.next_call_token;
    let root = state.root_id;
    state.pending_calls.push(PendingCall {
        token,
        root,
        response,
    });
    state.calls_made.push(call);
    write_u32(c, token_ptr, token)
}

fn no_grpc_service(c: &mut Cx<'_>, name: &'static str) -> HostResult {
    enter(c, name, false)?;
    Err(Status::ParseFailure.into())
}

fn no_such_token(c: &mut Cx<'_>, name: &'static str) -> HostResult {
    enter(c, name, false)?;
    Err(Status::NotFound.into())
}
