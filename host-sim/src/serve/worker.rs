//! One worker thread: a current-thread runtime, its own VM, connections accepted from the
//! shared listener. The VM is only ever borrowed between awaits, so one thread's requests
//! reach it one at a time, as on an Envoy worker.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::service::service_fn;
use hyper::{Response, StatusCode, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::tls::{connection_facts, Tls};
use super::{Mode, ProxyStats, Reload, ServeError, ServeOptions, Shared};
use crate::effects::{HeaderChanges, LocalResponse};
use crate::{Connection, Host, LogEntry, Plugin, Request};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = UnsyncBoxBody<Bytes, BoxError>;

pub(crate) struct WorkerSetup {
    pub id: usize,
    pub listener: std::net::TcpListener,
    pub host: Host,
    pub configuration: Vec<u8>,
    pub tls: Option<Arc<Tls>>,
    pub options: ServeOptions,
    pub shared: Arc<Shared>,
    pub reload_rx: mpsc::UnboundedReceiver<Reload>,
    pub shutdown: watch::Receiver<bool>,
    pub ready: std::sync::mpsc::Sender<Result<(), ServeError>>,
}

struct Worker {
    id: usize,
    vm: RefCell<Plugin>,
    tls: Option<Arc<Tls>>,
    options: ServeOptions,
    shared: Arc<Shared>,
    client: Client<HttpConnector, Incoming>,
}

/// Connection-specific headers Envoy's codecs consume and never hand to filters or forward
/// (RFC 9110 §7.6.1; Envoy `ConnectionManagerUtility` / codec header validation).
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
];

pub(crate) fn run(setup: WorkerSetup) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = setup.ready.send(Err(ServeError::Worker {
                worker: setup.id,
                message: format!("tokio runtime: {e}"),
            }));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(setup));
}

async fn serve(setup: WorkerSetup) {
    let WorkerSetup {
        id,
        listener,
        host,
        configuration,
        tls,
        options,
        shared,
        mut reload_rx,
        mut shutdown,
        ready,
    } = setup;
    let fail = |message: String| ServeError::Worker {
        worker: id,
        message,
    };
    let plugin = match host.configure(&configuration) {
        Ok(p) => p,
        Err(e) => {
            let _ = ready.send(Err(fail(e.to_string())));
            return;
        }
    };
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(fail(format!("listener: {e}"))));
            return;
        }
    };
    let client = Client::builder(TokioExecutor::new()).build_http();
    let worker = Rc::new(Worker {
        id,
        vm: RefCell::new(plugin),
        tls,
        options,
        shared,
        client,
    });
    worker.print_logs(worker.vm.borrow().configure_logs());
    worker.record_memory();
    let _ = ready.send(Ok(()));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::task::spawn_local(connection(worker.clone(), stream, peer));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    eprintln!("[worker {id}] accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            Some(reload) = reload_rx.recv() => {
                let result = worker.vm.borrow_mut().reconfigure(reload.configuration.as_slice());
                if let Ok(logs) = &result {
                    worker.print_logs(logs);
                }
                worker.record_memory();
                let _ = reload.reply.send(result);
            }
            _ = shutdown.changed() => break,
        }
    }
}

impl Worker {
    fn print_logs(&self, logs: &[LogEntry]) {
        if !self.options.print_logs {
            return;
        }
        for entry in logs {
            eprintln!("[worker {}] [{}] {}", self.id, entry.level, entry.message);
        }
    }

    fn record_memory(&self) {
        let vm = self.vm.borrow();
        let bytes = vm
            .store
            .data()
            .memory
            .map(|m| m.data_size(&vm.store) as u64)
            .unwrap_or(0);
        if let Some(slot) = self.shared.vm_memory.get(self.id) {
            slot.store(bytes, Ordering::Relaxed);
        }
    }
}

async fn connection(worker: Rc<Worker>, stream: TcpStream, peer: SocketAddr) {
    ProxyStats::inc(&worker.shared.stats.downstream_cx_total);
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(worker.options.listen);
    let Some(tls) = worker.tls.clone() else {
        let facts = connection_facts(peer, local, None);
        return dispatch(worker, stream, facts, "http").await;
    };
    match tls.acceptor.accept(stream).await {
        Ok(stream) => {
            let facts =
                connection_facts(peer, local, Some((stream.get_ref().1, &tls.local_uri_sans)));
            dispatch(worker, stream, facts, "https").await
        }
        Err(e) => {
            ProxyStats::inc(&worker.shared.stats.downstream_cx_tls_handshake_failed);
            if worker.options.print_logs {
                eprintln!(
                    "[worker {}] TLS handshake with {peer} failed: {e}",
                    worker.id
                );
            }
        }
    }
}

async fn dispatch<S>(worker: Rc<Worker>, io: S, facts: Connection, scheme: &'static str)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    match worker.options.mode {
        Mode::Http => http_connection(worker, io, facts, scheme).await,
        Mode::Tcp => tcp_connection(worker, io, facts).await,
    }
}

/// hyper's HTTP/2 server spawns a task per stream; ours hold the worker's VM (not `Send`).
#[derive(Clone, Copy)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        tokio::task::spawn_local(future);
    }
}

async fn http_connection<S>(worker: Rc<Worker>, io: S, facts: Connection, scheme: &'static str)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let facts = Rc::new(facts);
    let service = service_fn(move |req| {
        let worker = worker.clone();
        let facts = facts.clone();
        async move { handle(&worker, &facts, scheme, req).await }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(LocalExec);
    // Errors here are the client's (reset, bad framing): the connection is simply gone.
    let _ = builder.serve_connection(TokioIo::new(io), service).await;
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    response
}

/// The request as Envoy's HCM hands it to filters: pseudo-headers from the request line (or
/// HTTP/2 pseudo-headers), `host` folded into `:authority`, hop-by-hop headers gone.
fn plugin_request(parts: &hyper::http::request::Parts, scheme: &str) -> Result<Request, String> {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let authority = match parts.uri.authority() {
        Some(a) => a.as_str().to_string(),
        None => match parts.headers.get(HOST) {
            Some(v) => v
                .to_str()
                .map_err(|_| "host: the value is not visible ASCII".to_string())?
                .to_string(),
            None => String::new(),
        },
    };
    let protocol = match parts.version {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    };
    let mut request = Request::new(parts.method.as_str(), path)
        .authority(&authority)
        .scheme(scheme)
        .protocol(protocol);
    for (name, value) in &parts.headers {
        if name == HOST || HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        let value = value
            .to_str()
            .map_err(|_| format!("{name}: the value is not visible ASCII"))?;
        request = request.header(name.as_str(), value);
    }
    Ok(request)
}

async fn handle(
    worker: &Worker,
    facts: &Connection,
    scheme: &str,
    req: hyper::Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    let stats = &worker.shared.stats;
    ProxyStats::inc(&stats.downstream_rq_total);
    let (parts, body) = req.into_parts();
    let request = match plugin_request(&parts, scheme) {
        Ok(r) => r,
        Err(reason) => {
            return Ok(text(
                StatusCode::BAD_REQUEST,
                format!("host-sim serve: {reason}\n"),
            ))
        }
    };
    let outcome = worker.vm.borrow_mut().http_request(facts.clone(), request);
    worker.record_memory();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            return Ok(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("host-sim serve: {e}\n"),
            ))
        }
    };
    worker.print_logs(&outcome.logs);
    if let Some(local) = outcome.local_response {
        ProxyStats::inc(&stats.downstream_rq_local_reply);
        return Ok(local_reply(local));
    }
    if outcome.stream_reset {
        return Err("the plugin reset the stream (proxy_close_stream)".into());
    }
    let Some(upstream) = outcome.upstream_request else {
        // Paused and never resumed: Envoy would hold the stream until its timeout; failing
        // closed at once is the same answer without the wait.
        return Ok(text(
            StatusCode::GATEWAY_TIMEOUT,
            "host-sim serve: the plugin paused the request and never resumed it\n".into(),
        ));
    };
    forward(
        worker,
        parts.version,
        upstream.headers,
        body,
        &outcome.response_header_changes,
    )
    .await
}

fn local_reply(local: LocalResponse) -> Response<Body> {
    let status = u16::try_from(local.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = text(status, local.body);
    let headers = response.headers_mut();
    headers.clear();
    for (name, value) in &local.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
    response
}

async fn forward(
    worker: &Worker,
    version: Version,
    headers: Vec<(String, String)>,
    body: Incoming,
    response_changes: &HeaderChanges,
) -> Result<Response<Body>, BoxError> {
    let stats = &worker.shared.stats;
    let mut method = "GET".to_string();
    let mut path = "/".to_string();
    let mut authority = String::new();
    let mut builder = hyper::Request::builder();
    for (name, value) in headers {
        match name.as_str() {
            ":method" => method = value,
            ":path" => path = value,
            ":authority" => authority = value,
            n if n.starts_with(':') => {}
            _ => builder = builder.header(name, value),
        }
    }
    let uri = format!("http://{}{}", worker.options.upstream, path);
    if !authority.is_empty() {
        builder = builder.header(HOST, authority);
    }
    let request = match builder.method(method.as_str()).uri(uri).body(body) {
        Ok(r) => r,
        Err(e) => {
            return Ok(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("host-sim serve: the plugin left a request that is not valid HTTP: {e}\n"),
            ))
        }
    };
    ProxyStats::inc(&stats.upstream_rq_total);
    let response = match worker.client.request(request).await {
        Ok(r) => r,
        Err(e) => {
            ProxyStats::inc(&stats.upstream_rq_failed);
            // Envoy's router text for the same failure.
            return Ok(text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("upstream connect error or disconnect/reset before headers. reset reason: {e}\n"),
            ));
        }
    };
    let (mut parts, body) = response.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    // The plugin's response callbacks ran on a placeholder response (host-sim's stream runs
    // in one call); what they changed is applied to the real one.
    for name in &response_changes.removed {
        parts.headers.remove(name.as_str());
    }
    for (name, values) in &response_changes.set {
        if name.starts_with(':') {
            continue;
        }
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        parts.headers.remove(&name);
        for v in values {
            if let Ok(v) = HeaderValue::from_str(v) {
                parts.headers.append(name.clone(), v);
            }
        }
    }
    parts.version = version;
    Ok(Response::from_parts(
        parts,
        body.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
    ))
}

/// Envoy's network filter order: the plugin decides on the first bytes (the TLS handshake is
/// complete by then); allowed bytes and everything after them are proxied both ways.
async fn tcp_connection<S>(worker: Rc<Worker>, mut io: S, facts: Connection)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let stats = &worker.shared.stats;
    let mut buf = vec![0u8; 16 * 1024];
    let n = io.read(&mut buf).await.unwrap_or(0);
    let first = buf.get(..n).unwrap_or_default().to_vec();
    let (closed, logs) = {
        let mut vm = worker.vm.borrow_mut();
        let decided = match vm.tcp_connection(facts) {
            Err(e) => (
                true,
                vec![LogEntry {
                    level: crate::LogLevel::Error,
                    message: format!("host-sim serve: {e}"),
                }],
            ),
            Ok(mut conn) => {
                let step = if first.is_empty() {
                    conn.data_end(&first)
                } else {
                    conn.data(&first)
                };
                let closed = step.connection_closed || first.is_empty();
                let mut logs = step.logs;
                // host-sim's network-filter driver borrows the VM for the connection's
                // lifetime; the plugin sees its decision point, then a close, so other
                // connections on this worker are not blocked behind this one.
                logs.extend(conn.close().logs);
                (closed, logs)
            }
        };
        decided
    };
    worker.record_memory();
    worker.print_logs(&logs);
    if closed {
        ProxyStats::inc(&stats.tcp_denied);
        let _ = io.shutdown().await;
        return;
    }
    let mut upstream = match TcpStream::connect(worker.options.upstream).await {
        Ok(s) => s,
        Err(e) => {
            ProxyStats::inc(&stats.upstream_rq_failed);
            eprintln!(
                "[worker {}] upstream {}: {e}",
                worker.id, worker.options.upstream
            );
            return;
        }
    };
    ProxyStats::inc(&stats.tcp_proxied);
    let _ = upstream.set_nodelay(true);
    if upstream.write_all(&first).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut io, &mut upstream).await;
}
