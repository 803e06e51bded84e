//! One HTTP stream through the plugin, in Envoy's order (proxy-wasm-abi.md §4.2, §4.4):
//! context create, request headers/body/trailers, upstream, response headers/body/trailers
//! (also for local replies), log, done, delete.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// grpc-message encoding (Envoy `Grpc::Utility::PercentEncoding`): only bytes outside
/// printable ASCII, and `%`, are escaped.
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');
use wasmtime::{WasmParams, WasmResults};

use crate::effects::{
    HeaderChanges, HttpOutcome, LocalResponse, LogLevel, Stalled, UpstreamRequest, VmFailure,
};
use crate::facts::{Connection, Request};
use crate::state::{HeaderMap, PendingLocalResponse, StreamKind, StreamState};
use crate::vm::Pick;
use crate::{Error, Plugin};

/// Where the stream goes after a callback.
enum Flow {
    Continue,
    LocalReply,
    Reset,
    Stalled(Stalled),
}

fn strings(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// Envoy `Utility::httpToGrpcStatus`.
fn grpc_status_for(http: u32) -> u32 {
    match http {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

impl Plugin {
    /// Sends one request through the plugin and reports everything it did.
    pub fn http_request(
        &mut self,
        connection: Connection,
        request: Request,
    ) -> Result<HttpOutcome, Error> {
        let direct = connection.source_addr()?;
        let destination = connection.destination_addr()?;
        self.begin_op();
        let mut headers = request.header_map();
        self.host.hcm().xfcc.apply(&connection, &mut headers);
        let source = self.host.hcm().source_address(direct, &headers);
        let mut out = HttpOutcome::default();
        if self.failed.is_some() {
            self.failed_stream(&request, &headers, &mut out);
            return Ok(out);
        }
        let id = self.alloc_context_id();
        let now = self.store.data().now_ns();
        let mut stream =
            StreamState::new(id, StreamKind::Http, connection, source, destination, now);
        stream.protocol = request.protocol.clone();
        stream.filter_metadata = request.filter_metadata.clone();
        stream.request_headers = headers.clone();
        stream.request_trailers = request
            .trailers
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        {
            let state = self.store.data_mut();
            state.stream = Some(stream);
            state.effective = id;
        }
        let result = self.run_http(id, &request, &headers, &mut out);
        if let Err(failure) = result {
            out.vm_failure = Some(failure);
            let current = self
                .store
                .data()
                .stream
                .as_ref()
                .map(|s| s.request_headers.clone())
                .unwrap_or_else(|| headers.clone());
            self.failed_stream(&request, &current, &mut out);
            out.request_header_changes = HeaderChanges::diff(&headers, &current);
        }
        let state = self.store.data_mut();
        if let Some(stream) = state.stream.take() {
            out.filter_state = stream
                .filter_state
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect();
        }
        state.effective = state.root_id;
        out.http_calls = std::mem::take(&mut state.calls_made);
        out.hostcalls = state.hostcalls;
        out.hostcall_trace = state.trace.as_mut().map(std::mem::take).unwrap_or_default();
        out.logs = self.take_logs();
        Ok(out)
    }

    /// A failed VM: 503 `wasm_fail_stream` (fail closed) or the request untouched (fail open).
    fn failed_stream(&mut self, request: &Request, headers: &HeaderMap, out: &mut HttpOutcome) {
        if out.vm_failure.is_none() {
            out.vm_failure = self.failed.clone();
        }
        out.local_response = None;
        out.upstream_request = None;
        if self.host.settings().fail_open {
            out.upstream_request = Some(UpstreamRequest {
                headers: strings(headers),
                body: request
                    .body_chunks
                    .iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect(),
                trailers: request.trailers.clone(),
            });
        } else {
            out.local_response = Some(LocalResponse {
                status: 503,
                body: String::new(),
                headers: Default::default(),
                details: "wasm_fail_stream".into(),
                grpc_status: None,
            });
        }
    }

    fn stream_mut(&mut self) -> &mut StreamState {
        // The driver installs the stream before any callback and removes it only at the end.
        self.store
            .data_mut()
            .stream
            .get_or_insert_with(unreachable_stream)
    }

    /// A stream callback: the stream is the effective context, then deferred work runs.
    fn stream_call<P: WasmParams, R: WasmResults>(
        &mut self,
        id: u32,
        func: Pick<P, R>,
        args: P,
        name: &'static str,
    ) -> Result<Option<R>, VmFailure> {
        self.store.data_mut().effective = id;
        let result = self.call(func, args, name)?;
        self.drain()?;
        self.store.data_mut().effective = id;
        Ok(result)
    }

    fn flow(&mut self, action: Option<i32>, at: Stalled) -> Flow {
        let s = self.stream_mut();
        if s.reset {
            return Flow::Reset;
        }
        if s.local_response.is_some() && !s.local_response_sent {
            return Flow::LocalReply;
        }
        let resumed = match at {
            Stalled::RequestHeaders | Stalled::RequestBody | Stalled::RequestTrailers => {
                s.resumed_request
            }
            _ => s.resumed_response,
        };
        if action.unwrap_or(0) != 0 && !resumed {
            return Flow::Stalled(at);
        }
        Flow::Continue
    }

    fn run_http(
        &mut self,
        id: u32,
        request: &Request,
        original: &HeaderMap,
        out: &mut HttpOutcome,
    ) -> Result<(), VmFailure> {
        let root = self.store.data().root_id;
        let create: Pick<_, _> = |e| &e.on_context_create;
        self.stream_call(
            id,
            create,
            (id as i32, root as i32),
            "proxy_on_context_create",
        )?;

        let outcome = self.request_path(id, request, original, out)?;
        match outcome {
            Flow::Continue => self.response_path(id, request, out)?,
            Flow::LocalReply => self.local_reply(id, request, out)?,
            Flow::Reset => out.stream_reset = true,
            Flow::Stalled(at) => {
                out.stalled = Some(at);
                self.store.data_mut().log(
                    LogLevel::Warn,
                    format!("host-sim: stream paused in {at:?} and never resumed (Envoy would time it out)"),
                );
            }
        }
        self.finish_stream(id)
    }

    /// Request headers, body, trailers; records what the upstream would receive.
    fn request_path(
        &mut self,
        id: u32,
        request: &Request,
        original: &HeaderMap,
        out: &mut HttpOutcome,
    ) -> Result<Flow, VmFailure> {
        let has_body = !request.body_chunks.is_empty();
        let has_trailers = !request.trailers.is_empty();
        let n = original.len() as i32;
        self.stream_mut().live.request_headers = true;
        let f: Pick<_, _> = |e| &e.on_request_headers;
        let eos = i32::from(!has_body && !has_trailers);
        let action = self.stream_call(id, f, (id as i32, n, eos), "proxy_on_request_headers")?;
        let flow = self.flow(action, Stalled::RequestHeaders);
        let changes = HeaderChanges::diff(original, &self.stream_mut().request_headers);
        out.request_header_changes = changes;
        if !matches!(flow, Flow::Continue) {
            return Ok(flow);
        }
        let s = self.stream_mut();
        s.live.request_headers = false;
        s.resumed_request = false;

        let mut upstream_body = Vec::new();
        let last = request.body_chunks.len().saturating_sub(1);
        for (i, chunk) in request.body_chunks.iter().enumerate() {
            let eos = i == last && !has_trailers;
            let s = self.stream_mut();
            s.request_body.extend_from_slice(chunk);
            s.live.request_body = true;
            let size = s.request_body.len() as i32;
            let f: Pick<_, _> = |e| &e.on_request_body;
            let action = self.stream_call(
                id,
                f,
                (id as i32, size, i32::from(eos)),
                "proxy_on_request_body",
            )?;
            match self.flow(action, Stalled::RequestBody) {
                Flow::Continue => {
                    let s = self.stream_mut();
                    upstream_body.append(&mut s.request_body);
                    s.live.request_body = false;
                    s.resumed_request = false;
                }
                // StopIterationAndBuffer: the next chunk's callback sees the whole buffer.
                Flow::Stalled(at) if eos => return Ok(Flow::Stalled(at)),
                Flow::Stalled(_) => {}
                other => return Ok(other),
            }
        }
        if has_trailers {
            let s = self.stream_mut();
            s.live.request_trailers = true;
            let n = s.request_trailers.len() as i32;
            let f: Pick<_, _> = |e| &e.on_request_trailers;
            let action = self.stream_call(id, f, (id as i32, n), "proxy_on_request_trailers")?;
            let flow = self.flow(action, Stalled::RequestTrailers);
            if !matches!(flow, Flow::Continue) {
                return Ok(flow);
            }
            let s = self.stream_mut();
            s.live.request_trailers = false;
            // A body still buffered when trailers continue goes upstream with them.
            upstream_body.append(&mut s.request_body);
        }
        let s = self.stream_mut();
        let headers = s.request_headers.clone();
        let trailers = s.request_trailers.clone();
        out.request_header_changes = HeaderChanges::diff(original, &headers);
        out.upstream_request = Some(UpstreamRequest {
            headers: strings(&headers),
            body: String::from_utf8_lossy(&upstream_body).into_owned(),
            trailers: strings(&trailers),
        });
        Ok(Flow::Continue)
    }

    /// The upstream's response through the encoder path.
    fn response_path(
        &mut self,
        id: u32,
        request: &Request,
        out: &mut HttpOutcome,
    ) -> Result<(), VmFailure> {
        let response = &request.response;
        let upstream_headers = response.header_map();
        let has_body = !response.body.is_empty();
        let has_trailers = !response.trailers.is_empty();
        let s = self.stream_mut();
        s.response_headers = upstream_headers.clone();
        s.response_trailers = response
            .trailers
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        s.response_code = Some(response.status);
        s.response_details = "via_upstream".into();
        s.live.response_headers = true;
        let n = upstream_headers.len() as i32;
        let f: Pick<_, _> = |e| &e.on_response_headers;
        let eos = i32::from(!has_body && !has_trailers);
        let action = self.stream_call(id, f, (id as i32, n, eos), "proxy_on_response_headers")?;
        let flow = self.flow(action, Stalled::ResponseHeaders);
        out.response_header_changes =
            HeaderChanges::diff(&upstream_headers, &self.stream_mut().response_headers);
        match flow {
            Flow::Continue => {}
            Flow::LocalReply => return self.local_reply(id, request, out),
            Flow::Reset => {
                out.stream_reset = true;
                return Ok(());
            }
            Flow::Stalled(at) => {
                out.stalled = Some(at);
                return Ok(());
            }
        }
        let s = self.stream_mut();
        s.live.response_headers = false;
        s.resumed_response = false;
        if has_body {
            let s = self.stream_mut();
            s.response_body = response.body.clone();
            s.live.response_body = true;
            let size = response.body.len() as i32;
            let f: Pick<_, _> = |e| &e.on_response_body;
            let eos = i32::from(!has_trailers);
            let action =
                self.stream_call(id, f, (id as i32, size, eos), "proxy_on_response_body")?;
            match self.flow(action, Stalled::ResponseBody) {
                Flow::Continue => self.stream_mut().live.response_body = false,
                Flow::LocalReply => return self.local_reply(id, request, out),
                Flow::Reset => {
                    out.stream_reset = true;
                    return Ok(());
                }
                Flow::Stalled(at) => {
                    out.stalled = Some(at);
                    return Ok(());
                }
            }
        }
        if has_trailers {
            let s = self.stream_mut();
            s.live.response_trailers = true;
            let n = s.response_trailers.len() as i32;
            let f: Pick<_, _> = |e| &e.on_response_trailers;
            let action = self.stream_call(id, f, (id as i32, n), "proxy_on_response_trailers")?;
            if let Flow::Stalled(at) = self.flow(action, Stalled::ResponseTrailers) {
                out.stalled = Some(at);
            }
            self.stream_mut().live.response_trailers = false;
        }
        Ok(())
    }

    /// Envoy `sendLocalReply`: synthesize the response and run it through this filter's
    /// `on_response_headers`/`on_response_body`; the upstream is never asked.
    fn local_reply(
        &mut self,
        id: u32,
        request: &Request,
        out: &mut HttpOutcome,
    ) -> Result<(), VmFailure> {
        out.upstream_request = None;
        let s = self.stream_mut();
        let Some(pending) = s.local_response.take() else {
            return Ok(());
        };
        s.local_response_sent = true;
        s.live = Default::default();
        let grpc_request = s
            .request_headers
            .iter()
            .any(|(k, v)| k == b"content-type" && v.starts_with(b"application/grpc"))
            || request
                .headers
                .iter()
                .any(|(k, v)| k == "content-type" && v.starts_with("application/grpc"));
        let mut headers: HeaderMap;
        let mut body = pending.body.clone();
        let mut grpc_status = pending.grpc_status;
        if grpc_request {
            // Trailers-only gRPC reply: HTTP 200, status in grpc-status, body in grpc-message.
            let status = grpc_status.unwrap_or_else(|| grpc_status_for(pending.status));
            grpc_status = Some(status);
            headers = vec![
                (b":status".to_vec(), b"200".to_vec()),
                (b"content-type".to_vec(), b"application/grpc".to_vec()),
                (b"grpc-status".to_vec(), status.to_string().into_bytes()),
            ];
            if !body.is_empty() {
                let message =
                    utf8_percent_encode(&String::from_utf8_lossy(&body), GRPC_MESSAGE).to_string();
                headers.push((b"grpc-message".to_vec(), message.into_bytes()));
            }
            headers.extend(pending.headers.iter().cloned());
            body.clear();
        } else {
            headers = vec![(b":status".to_vec(), pending.status.to_string().into_bytes())];
            headers.extend(pending.headers.iter().cloned());
            if !body.is_empty() {
                headers.push((
                    b"content-length".to_vec(),
                    body.len().to_string().into_bytes(),
                ));
                headers.push((b"content-type".to_vec(), b"text/plain".to_vec()));
            }
        }
        // A gRPC reply is HTTP 200 on the wire; the status travels in grpc-status.
        let http_status = if grpc_request { 200 } else { pending.status };
        let s = self.stream_mut();
        s.response_headers = headers;
        s.response_code = Some(http_status);
        s.response_details = pending.details.clone();
        s.live.response_headers = true;
        let n = s.response_headers.len() as i32;
        let f: Pick<_, _> = |e| &e.on_response_headers;
        let eos = i32::from(body.is_empty());
        self.stream_call(id, f, (id as i32, n, eos), "proxy_on_response_headers")?;
        if !body.is_empty() {
            let s = self.stream_mut();
            s.live.response_headers = false;
            s.response_body = body.clone();
            s.live.response_body = true;
            let f: Pick<_, _> = |e| &e.on_response_body;
            self.stream_call(
                id,
                f,
                (id as i32, body.len() as i32, 1),
                "proxy_on_response_body",
            )?;
        }
        let s = self.stream_mut();
        if s.local_response.take().is_some() {
            self.store.data_mut().log(
                LogLevel::Warn,
                "host-sim: a second proxy_send_local_response while sending a local reply was \
                 ignored (the response had already started)"
                    .into(),
            );
        }
        let s = self.stream_mut();
        let final_body = if body.is_empty() {
            Vec::new()
        } else {
            s.response_body.clone()
        };
        let final_headers: HeaderMap = s
            .response_headers
            .iter()
            .filter(|(k, _)| !k.starts_with(b":"))
            .cloned()
            .collect();
        let effect = PendingLocalResponse {
            status: http_status,
            body: final_body,
            grpc_status,
            ..pending
        };
        out.local_response = Some(effect.into_effect(&final_headers));
        Ok(())
    }

    /// Access log, then `on_done`, then `on_delete` (HTTP order, `doDeferredStreamDestroy`).
    fn finish_stream(&mut self, id: u32) -> Result<(), VmFailure> {
        let s = self.stream_mut();
        s.live = Default::default();
        s.in_log = true;
        let f: Pick<_, _> = |e| &e.on_log;
        self.stream_call(id, f, id as i32, "proxy_on_log")?;
        self.stream_mut().in_log = false;
        let f: Pick<_, _> = |e| &e.on_done;
        self.stream_call(id, f, id as i32, "proxy_on_done")?;
        let f: Pick<_, _> = |e| &e.on_delete;
        self.stream_call(id, f, id as i32, "proxy_on_delete")?;
        Ok(())
    }
}

fn unreachable_stream() -> StreamState {
    // Only reached if a guest callback somehow removed the stream; a fresh empty stream keeps
    // the driver total rather than panicking.
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    StreamState::new(0, StreamKind::Http, Connection::plaintext(), addr, addr, 0)
}
