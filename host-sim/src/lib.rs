//! host-sim: a proxy-wasm (ABI 0.2.1) host on wasmtime that behaves like Envoy's.
//!
//! ```no_run
//! use host_sim::{Connection, Host, Request};
//! # fn main() -> Result<(), host_sim::Error> {
//! let host = Host::builder()
//!     .wasm_file("target/wasm32-wasip1/wasm-release/spiffe_authz.wasm")
//!     .node_metadata("foo", [("app", "httpbin")])
//!     .build()?;
//! let mut plugin = host.configure(r#"{"policies": []}"#)?;
//! let out = plugin.http_request(
//!     Connection::mtls("spiffe://cluster.local/ns/a/sa/b")
//!         .source("10.0.0.1:43210")
//!         .destination("10.0.0.2:8000"),
//!     Request::get("/ip").authority("httpbin.foo:8000"),
//! )?;
//! println!("{:?} {:?}", out.local_response, out.logs);
//! # Ok(()) }
//! ```

mod abi;
pub mod bench;

mod effects;
mod error;
mod facts;
mod http;
pub mod jsonl;

mod pairs;
mod pem;
mod properties;
mod settings;
mod state;
mod tcp;
mod vm;

pub use effects::{
    logs_containing, HeaderChanges, HttpCall, HttpOutcome, LocalResponse, LogEntry, LogLevel,
    MetricValue, Stalled, TcpOutcome, UpstreamRequest, VmFailure,
};
pub use error::Error;
pub use facts::{Connection, Node, Request, Response, Xfcc, XfccDetails};
pub use settings::Attributes;
pub use state::{CallResponse, Responder};
pub use tcp::TcpConnection;
pub use vm::LiveContexts;
pub use vm::{Host, HostBuilder, Plugin, TickOutcome};

/// Every `env` host function host-sim links (all of proxy-wasm 0.2.1 plus Envoy's extras).
pub fn host_functions() -> &'static [&'static str] {
    abi::ENV_FUNCTIONS
}

// Modules below are the tools around the filter, written by other areas.
pub mod certs;
pub mod check;
pub mod oci;
pub mod policy_files;
pub mod render;
pub mod serve;
pub mod tools_cli;
pub mod wasi_run;
