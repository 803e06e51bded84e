//! `host-sim upstream`: a tiny demo service for `serve` to guard, so the README demo needs
//! nothing else installed. It answers every request with 200 and a short text naming what it
//! received (method, path, the `x-forwarded-client-cert` the proxy set, body size).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A running demo upstream; dropping it stops it.
pub struct Upstream {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks for as long as it serves.
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds `listen` (port 0 picks one) and serves HTTP/1.1 and HTTP/2 (prior knowledge) on
/// one thread.
pub fn start(listen: SocketAddr) -> std::io::Result<Upstream> {
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (shutdown, mut stop) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("upstream".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(async move {
                                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                                    .await;
                            });
                        }
                        _ = stop.changed() => break,
                    }
                }
            })
        })?;
    Ok(Upstream {
        addr,
        shutdown,
        thread: Some(thread),
    })
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let xfcc = req
        .headers()
        .get("x-forwarded-client-cert")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let body_bytes = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().len(),
        Err(_) => 0,
    };
    let text = format!(
        "upstream: {method} {path}\nx-forwarded-client-cert: {xfcc}\nbody-bytes: {body_bytes}\n"
    );
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}
