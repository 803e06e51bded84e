//! The admin listener, after Envoy's: `GET /stats` (`name: value` lines, sorted), `GET /ready`
//! (`LIVE`), and `POST /reload`, which re-reads the plugin configuration and configures every
//! worker VM with it, as an xDS update does. A configuration the plugin rejects is refused
//! before any worker sees it, so the old one keeps serving everywhere.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use super::{ProxyStats, Reload, Shared};
use crate::effects::MetricValue;
use crate::state::lock;

pub(crate) fn run(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("admin: could not start its runtime");
        return;
    };
    runtime.block_on(async move {
        let Ok(listener) = TcpListener::from_std(listener) else {
            eprintln!("admin: could not register the listener");
            return;
        };
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(route(&shared, req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                _ = shutdown.changed() => break,
            }
        }
    });
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn route(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/stats") => text(StatusCode::OK, stats(shared)),
        (&Method::GET, "/ready") => text(StatusCode::OK, "LIVE\n".into()),
        (&Method::POST, "/reload") => reload(shared).await,
        _ => text(
            StatusCode::NOT_FOUND,
            "admin: GET /stats, GET /ready, POST /reload\n".into(),
        ),
    }
}

/// The resident set of this process (`VmRSS` of /proc/self/status), for the soak.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Envoy's `/stats` text format: one `name: value` per line, sorted by name. Plugin metrics
/// are summed over VMs already (one stats store per process, as in Envoy).
fn stats(shared: &Shared) -> String {
    let mut lines: Vec<(String, String)> = Vec::new();
    for (name, value) in &lock(&shared.metrics).metrics {
        let value = match value {
            MetricValue::Counter(v) => v.to_string(),
            MetricValue::Gauge(v) => v.to_string(),
            MetricValue::Histogram(samples) => format!("{} samples", samples.len()),
        };
        lines.push((name.clone(), value));
    }
    for (name, value) in shared.stats.lines() {
        lines.push((name, value.to_string()));
    }
    for (i, bytes) in shared.vm_memory.iter().enumerate() {
        lines.push((
            format!("host_sim.vm.{i}.linear_memory_bytes"),
            bytes.load(Ordering::Relaxed).to_string(),
        ));
    }
    if let Some(rss) = rss_bytes() {
        lines.push(("host_sim.process.rss_bytes".into(), rss.to_string()));
    }
    lines.sort();
    lines
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect()
}

fn rejected(shared: &Shared, reason: String) -> Response<Full<Bytes>> {
    ProxyStats::inc(&shared.stats.reload_rejected);
    eprintln!("[admin] reload rejected: {reason}");
    text(
        StatusCode::BAD_REQUEST,
        format!("reload rejected, the previous configuration stays in force: {reason}\n"),
    )
}

async fn reload(shared: &Shared) -> Response<Full<Bytes>> {
    let configuration = match (shared.config)() {
        Ok(c) => c,
        Err(reason) => return rejected(shared, reason),
    };
    // A throw-away VM first (Envoy's canary): a rejection here leaves every worker untouched.
    if let Err(e) = shared.host.configure(&configuration) {
        let logs: Vec<String> = e.logs().iter().map(ToString::to_string).collect();
        return rejected(shared, format!("{e}; plugin logs: {}", logs.join(" | ")));
    }
    let configuration = Arc::new(configuration);
    for (worker, sender) in shared.reloads.iter().enumerate() {
        let (reply, answer) = oneshot::channel();
        let sent = sender.send(Reload {
            configuration: configuration.clone(),
            reply,
        });
        let result = match sent {
            Ok(()) => answer.await.ok(),
            Err(_) => None,
        };
        match result {
            Some(Ok(_)) => {}
            Some(Err(e)) => return rejected(shared, format!("worker {worker}: {e}")),
            None => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("worker {worker} has stopped\n"),
                )
            }
        }
    }
    ProxyStats::inc(&shared.stats.reload_ok);
    text(
        StatusCode::OK,
        format!("reloaded {} worker VMs\n", shared.reloads.len()),
    )
}
