//! `host-sim serve`: the plugin in front of a real service, the way an Envoy sidecar runs it.
//!
//! One shared listener; N worker threads, each with a current-thread tokio runtime and its own
//! VM (Envoy runs one VM per worker thread and a VM is single-threaded). A connection's TLS
//! handshake (rustls, client certificates verified by webpki against `--client-ca`) becomes the
//! connection facts the plugin reads; each HTTP request runs through the plugin's request path,
//! then goes to the upstream (streamed both ways) or gets the plugin's local reply. In TCP mode
//! the plugin decides on the first bytes, as Envoy's network RBAC filter does, and bytes are
//! then proxied. An admin listener (loopback) serves `/stats`, `/ready` and `POST /reload`.

mod admin;
pub mod cert;
mod tls;
pub mod upstream;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, watch};

use crate::facts::{Xfcc, XfccDetails};
use crate::{HostBuilder, LogEntry};

pub use tls::{ClientCertificate, Transport};

/// What the listener speaks above the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1 and HTTP/2 (ALPN or prior knowledge): the plugin as an HTTP filter.
    Http,
    /// Raw bytes: the plugin as a network filter.
    Tcp,
}

/// How `x-forwarded-client-cert` reaches the plugin and the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XfccMode {
    /// Envoy's default `SANITIZE`: a client's XFCC is removed, none is set.
    Sanitize,
    /// Envoy `SANITIZE_SET` (Istio gateways): a client's XFCC is removed and, on mTLS, replaced
    /// by our element `By=<our URI SAN>;Hash=<sha256 of the peer DER>;Subject=..;URI=..;DNS=..`.
    SanitizeSet,
}

/// Reads the plugin configuration (again on each reload); `Err` is a message for the user.
pub type ConfigSource = Arc<dyn Fn() -> Result<Vec<u8>, String> + Send + Sync>;

/// Everything `serve` needs besides the plugin.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub mode: Mode,
    pub transport: Transport,
    pub xfcc: XfccMode,
    /// Worker threads, one VM each (at least 1).
    pub workers: usize,
    /// The admin listener (`/stats`, `/ready`, `POST /reload`); keep it on loopback.
    pub admin: Option<SocketAddr>,
    /// Print every plugin log line to stderr with the worker id.
    pub print_logs: bool,
}

impl ServeOptions {
    pub fn new(listen: SocketAddr, upstream: SocketAddr) -> Self {
        Self {
            listen,
            upstream,
            mode: Mode::Http,
            transport: Transport::Plaintext,
            xfcc: XfccMode::Sanitize,
            workers: 2,
            admin: None,
            print_logs: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{field}: {path}: {reason}")]
    Tls {
        field: &'static str,
        path: String,
        reason: String,
    },
    #[error("{what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "--admin {0}: the admin listener has no authentication and POST /reload reconfigures \
         the plugin; bind it to a loopback address"
    )]
    AdminNotLoopback(SocketAddr),
    #[error("plugin configuration: {0}")]
    Config(String),
    #[error("worker {worker}: {message}")]
    Worker { worker: usize, message: String },
    #[error("{0}")]
    Host(#[from] crate::Error),
}

/// Counters of the proxy itself (Envoy's listener/HCM/cluster stats, host-sim names).
#[derive(Default)]
pub(crate) struct ProxyStats {
    pub downstream_cx_total: AtomicU64,
    pub downstream_cx_tls_handshake_failed: AtomicU64,
    pub downstream_rq_total: AtomicU64,
    pub downstream_rq_local_reply: AtomicU64,
    pub upstream_rq_total: AtomicU64,
    pub upstream_rq_failed: AtomicU64,
    pub tcp_denied: AtomicU64,
    pub tcp_proxied: AtomicU64,
    pub reload_ok: AtomicU64,
    pub reload_rejected: AtomicU64,
}

impl ProxyStats {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn lines(&self) -> Vec<(String, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("downstream_cx_total", get(&self.downstream_cx_total)),
            (
                "downstream_cx_tls_handshake_failed",
                get(&self.downstream_cx_tls_handshake_failed),
            ),
            ("downstream_rq_total", get(&self.downstream_rq_total)),
            (
                "downstream_rq_local_reply",
                get(&self.downstream_rq_local_reply),
            ),
            ("upstream_rq_total", get(&self.upstream_rq_total)),
            ("upstream_rq_failed", get(&self.upstream_rq_failed)),
            ("tcp_denied", get(&self.tcp_denied)),
            ("tcp_proxied", get(&self.tcp_proxied)),
            ("reload_ok", get(&self.reload_ok)),
            ("reload_rejected", get(&self.reload_rejected)),
        ]
        .into_iter()
        .map(|(k, v)| (format!("host_sim.serve.{k}"), v))
        .collect()
    }
}

/// A configuration update for one worker's VM.
pub(crate) struct Reload {
    pub configuration: Arc<Vec<u8>>,
    pub reply: oneshot::Sender<Result<Vec<LogEntry>, crate::Error>>,
}

/// What the admin thread shares with the workers.
pub(crate) struct Shared {
    pub host: crate::Host,
    pub stats: ProxyStats,
    /// Each worker VM's linear memory in bytes, refreshed after every request.
    pub vm_memory: Vec<AtomicU64>,
    pub reloads: Vec<mpsc::UnboundedSender<Reload>>,
    pub config: ConfigSource,
    pub metrics: crate::state::SharedHandle,
}

/// A running proxy. Dropping it stops the workers and the admin listener.
pub struct Server {
    listen: SocketAddr,
    admin: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// The proxy listener's bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// Blocks until every worker has stopped (never, unless they fail).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Compiles the module, starts every worker VM with the configuration (a rejected
/// configuration fails the start, like an Envoy listener that never warms), binds the
/// listeners and returns once all of them accept.
pub fn start(
    builder: HostBuilder,
    options: ServeOptions,
    config: ConfigSource,
) -> Result<Server, ServeError> {
    // Envoy's admin is loopback-only in Istio (127.0.0.1:15000) for the same reason.
    if let Some(admin) = options.admin.filter(|a| !a.ip().is_loopback()) {
        return Err(ServeError::AdminNotLoopback(admin));
    }
    let xfcc = match options.xfcc {
        XfccMode::Sanitize => Xfcc::Sanitize,
        XfccMode::SanitizeSet => Xfcc::SanitizeSet(XfccDetails::ISTIO),
    };
    let host = builder.xfcc(xfcc).build()?;
    let tls = tls::build(&options.transport, options.mode == Mode::Http)?.map(Arc::new);
    let configuration = config().map_err(ServeError::Config)?;
    let listener =
        std::net::TcpListener::bind(options.listen).map_err(|source| ServeError::Bind {
            what: "--listen",
            addr: options.listen,
            source,
        })?;
    let listen = listener.local_addr().map_err(|source| ServeError::Bind {
        what: "--listen",
        addr: options.listen,
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Bind {
            what: "--listen",
            addr: options.listen,
            source,
        })?;
    let admin_listener = match options.admin {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind {
                what: "--admin",
                addr,
                source,
            })?;
            l.set_nonblocking(true).map_err(|source| ServeError::Bind {
                what: "--admin",
                addr,
                source,
            })?;
            Some(l)
        }
        None => None,
    };
    let admin = admin_listener.as_ref().and_then(|l| l.local_addr().ok());

    let workers = options.workers.max(1);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut senders = Vec::with_capacity(workers);
    let mut receivers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        receivers.push(rx);
    }
    // Every VM of one Host shares the stats store, like Envoy's process-wide stats.
    let probe = host.configure(&configuration).map_err(|e| {
        let logs: Vec<String> = e.logs().iter().map(ToString::to_string).collect();
        ServeError::Config(format!("{e}; plugin logs: {}", logs.join(" | ")))
    })?;
    let metrics = probe.store.data().shared.clone();
    drop(probe);
    let shared = Arc::new(Shared {
        host: host.clone(),
        stats: ProxyStats::default(),
        vm_memory: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        reloads: senders,
        config,
        metrics,
    });

    let mut threads = Vec::new();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), ServeError>>();
    for (id, reload_rx) in receivers.into_iter().enumerate() {
        let listener = listener.try_clone().map_err(|source| ServeError::Bind {
            what: "--listen",
            addr: listen,
            source,
        })?;
        let ctx = worker::WorkerSetup {
            id,
            listener,
            host: host.clone(),
            configuration: configuration.clone(),
            tls: tls.clone(),
            options: options.clone(),
            shared: shared.clone(),
            reload_rx,
            shutdown: shutdown_rx.clone(),
            ready: ready_tx.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("serve-worker-{id}"))
            .spawn(move || worker::run(ctx))
            .map_err(|e| ServeError::Worker {
                worker: id,
                message: e.to_string(),
            })?;
        threads.push(thread);
    }
    drop(ready_tx);
    let mut server = Server {
        listen,
        admin,
        shutdown,
        threads,
    };
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(ServeError::Worker {
                    worker: 0,
                    message: "a worker stopped before it was ready".into(),
                })
            }
        }
    }
    if let Some(l) = admin_listener {
        let shared = shared.clone();
        let rx = shutdown_rx.clone();
        let thread = std::thread::Builder::new()
            .name("serve-admin".into())
            .spawn(move || admin::run(l, shared, rx))
            .map_err(|e| ServeError::Worker {
                worker: 0,
                message: format!("admin thread: {e}"),
            })?;
        server.threads.push(thread);
    }
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_listener_must_be_on_loopback() {
        let mut options = ServeOptions::new(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:1".parse().unwrap(),
        );
        options.admin = Some("0.0.0.0:15000".parse().unwrap());
        let config: ConfigSource = Arc::new(|| Ok(Vec::new()));
        let err = start(crate::Host::builder(), options, config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("--admin 0.0.0.0:15000: "), "{err}");
    }
}
