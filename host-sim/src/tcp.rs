//! One TCP connection through the plugin as an Envoy network filter (proxy-wasm-abi.md §4.3):
//! new connection, downstream/upstream data, close, then done, log, delete.

use crate::effects::{TcpOutcome, VmFailure};
use crate::facts::Connection;
use crate::state::{StreamKind, StreamState};
use crate::vm::Pick;
use crate::{Error, Plugin};

/// A live connection. Dropping it closes it (remote close) if the plugin did not.
pub struct TcpConnection<'p> {
    plugin: &'p mut Plugin,
    id: u32,
    closed: bool,
    finished: bool,
    forwarded: Vec<u8>,
}

impl Plugin {
    /// Accepts a connection: `proxy_on_context_create` and `proxy_on_new_connection`. Like
    /// Envoy's own network RBAC filter, plugins should decide on the first data, since the TLS
    /// handshake may not be finished at accept time.
    pub fn tcp_connection(&mut self, connection: Connection) -> Result<TcpConnection<'_>, Error> {
        let source = connection.source_addr()?;
        let destination = connection.destination_addr()?;
        self.begin_op();
        let id = self.alloc_context_id();
        let now = self.store.data().now_ns();
        let stream = StreamState::new(id, StreamKind::Tcp, connection, source, destination, now);
        let state = self.store.data_mut();
        state.stream = Some(stream);
        state.effective = id;
        let mut conn = TcpConnection {
            plugin: self,
            id,
            closed: false,
            finished: false,
            forwarded: Vec::new(),
        };
        let root = conn.plugin.store.data().root_id;
        let create: Pick<_, _> = |e| &e.on_context_create;
        let new: Pick<_, _> = |e| &e.on_new_connection;
        let result = conn
            .callback(create, (id as i32, root as i32), "proxy_on_context_create")
            .and_then(|_| conn.callback(new, id as i32, "proxy_on_new_connection"));
        conn.after(result.map(|_| ()));
        Ok(conn)
    }
}

impl TcpConnection<'_> {
    /// Client bytes (`proxy_on_downstream_data`, end_of_stream false).
    pub fn data(&mut self, bytes: &[u8]) -> TcpOutcome {
        self.downstream(bytes, false)
    }

    /// Client bytes followed by the client's half-close (end_of_stream true).
    pub fn data_end(&mut self, bytes: &[u8]) -> TcpOutcome {
        self.downstream(bytes, true)
    }

    /// Upstream bytes (`proxy_on_upstream_data`).
    pub fn upstream_data(&mut self, bytes: &[u8]) -> TcpOutcome {
        self.plugin.begin_op();
        if !self.closed {
            let id = self.id;
            let s = self.stream();
            s.upstream_data.extend_from_slice(bytes);
            s.live.upstream_data = true;
            let size = s.upstream_data.len() as i32;
            let f: Pick<_, _> = |e| &e.on_upstream_data;
            let result = self.callback(f, (id as i32, size, 0), "proxy_on_upstream_data");
            let s = self.stream();
            s.live.upstream_data = false;
            if result.as_ref().is_ok_and(|a| a.unwrap_or(0) == 0) {
                s.upstream_data.clear();
            }
            self.after(result.map(|_| ()));
        }
        self.outcome()
    }

    /// The upstream closes its side (`proxy_on_upstream_connection_close(REMOTE)`).
    pub fn upstream_close(&mut self) -> TcpOutcome {
        self.plugin.begin_op();
        if !self.closed {
            let id = self.id as i32;
            let f: Pick<_, _> = |e| &e.on_upstream_connection_close;
            let result = self.callback(f, (id, 2), "proxy_on_upstream_connection_close");
            self.after(result.map(|_| ()));
        }
        self.outcome()
    }

    /// The client closes: `proxy_on_downstream_connection_close(REMOTE)` (LOCAL when the
    /// plugin closed it), then `on_done`, `on_log`, `on_delete` (TCP order).
    pub fn close(mut self) -> TcpOutcome {
        self.plugin.begin_op();
        self.finish();
        self.outcome()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn downstream(&mut self, bytes: &[u8], end: bool) -> TcpOutcome {
        self.plugin.begin_op();
        if !self.closed {
            let id = self.id;
            let s = self.stream();
            s.downstream_data.extend_from_slice(bytes);
            s.live.downstream_data = true;
            s.resumed_downstream = false;
            let size = s.downstream_data.len() as i32;
            let f: Pick<_, _> = |e| &e.on_downstream_data;
            let result = self.callback(
                f,
                (id as i32, size, i32::from(end)),
                "proxy_on_downstream_data",
            );
            let s = self.stream();
            s.live.downstream_data = false;
            // Continue passes the (possibly rewritten) bytes on; StopIteration keeps them
            // buffered for the next read.
            let pass = matches!(result, Ok(None) | Ok(Some(0))) || s.resumed_downstream;
            if pass && !s.close_downstream {
                let bytes = std::mem::take(&mut s.downstream_data);
                self.forwarded.extend_from_slice(&bytes);
            }
            self.after(result.map(|_| ()));
        }
        self.outcome()
    }

    fn stream(&mut self) -> &mut StreamState {
        self.plugin.store.data_mut().stream.get_or_insert_with(|| {
            let addr = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
            StreamState::new(0, StreamKind::Tcp, Connection::plaintext(), addr, addr, 0)
        })
    }

    fn callback<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        func: Pick<P, R>,
        args: P,
        name: &'static str,
    ) -> Result<Option<R>, VmFailure> {
        self.plugin.store.data_mut().effective = self.id;
        let result = self.plugin.call(func, args, name)?;
        self.plugin.drain()?;
        self.plugin.store.data_mut().effective = self.id;
        Ok(result)
    }

    /// Applies deferred closes, and the fail policy after a trap (or on an already dead VM).
    fn after(&mut self, result: Result<(), VmFailure>) {
        if result.is_err() || self.plugin.failed.is_some() {
            if !self.plugin.host.settings().fail_open {
                self.closed = true;
            } else {
                let s = self.stream();
                let bytes = std::mem::take(&mut s.downstream_data);
                self.forwarded.extend_from_slice(&bytes);
            }
            return;
        }
        if self.stream().close_downstream {
            self.closed = true;
        }
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.plugin.failed.is_none() {
            let id = self.id as i32;
            let peer = if self.closed { 1 } else { 2 };
            let _ = self
                .callback(
                    |e| &e.on_downstream_connection_close,
                    (id, peer),
                    "proxy_on_downstream_connection_close",
                )
                .and_then(|_| self.callback(|e| &e.on_done, id, "proxy_on_done"))
                .and_then(|_| {
                    self.stream().in_log = true;
                    self.callback(|e| &e.on_log, id, "proxy_on_log")
                })
                .and_then(|_| self.callback(|e| &e.on_delete, id, "proxy_on_delete"));
        }
        self.closed = true;
    }

    fn outcome(&mut self) -> TcpOutcome {
        let state = self.plugin.store.data_mut();
        let filter_state = state
            .stream
            .as_ref()
            .map(|s| {
                s.filter_state
                    .iter()
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let hostcalls = state.hostcalls;
        TcpOutcome {
            connection_closed: self.closed,
            forwarded: String::from_utf8_lossy(&self.forwarded).into_owned(),
            filter_state,
            logs: self.plugin.take_logs(),
            vm_failure: self.plugin.failed.clone(),
            hostcalls,
        }
    }
}

impl Drop for TcpConnection<'_> {
    fn drop(&mut self) {
        self.finish();
        let state = self.plugin.store.data_mut();
        state.stream = None;
        state.effective = state.root_id;
    }
}
