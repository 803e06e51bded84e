//! Errors that stop host-sim from running a module at all (a module that loads and then traps
//! is not an error: it is a [`crate::VmFailure`] in the outcome, as in Envoy).

use crate::effects::{LogEntry, VmFailure};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: not a valid wasm module: {message}")]
    Compile { origin: String, message: String },
    #[error(
        "{origin}: exports no proxy_abi_version_0_2_1, _0_2_0 or _0_1_0 function, so it is not a \
         proxy-wasm module (Envoy: \"Missing or unknown Proxy-Wasm ABI version\")"
    )]
    MissingAbiVersion { origin: String },
    #[error(
        "{origin}: proxy-wasm ABI 0.1.0 is not supported by host-sim (0.2.0 and 0.2.1 are); \
         rebuild with a current SDK"
    )]
    UnsupportedAbi { origin: String },
    #[error(
        "{origin}: exports neither malloc nor proxy_on_memory_allocate, so the host cannot hand it \
         data (Envoy: \"Wasm module is missing malloc function\")"
    )]
    MissingAllocator { origin: String },
    #[error("{origin}: exports no memory named \"memory\"")]
    MissingMemory { origin: String },
    #[error(
        "{origin}: imports functions this host does not provide (Envoy would refuse to load it \
         too): {}", imports.join(", ")
    )]
    UnknownImports {
        origin: String,
        imports: Vec<String>,
    },
    #[error("{origin}: export {name} does not have the proxy-wasm 0.2.x signature: {message}")]
    ExportType {
        origin: String,
        name: String,
        message: String,
    },
    #[error("{origin}: instantiation failed: {message}")]
    Instantiate { origin: String, message: String },
    #[error(
        "{callback} returned false: the plugin rejected its configuration (Envoy rejects the \
         update){}",
        last_log(logs)
    )]
    ConfigurationRejected {
        callback: &'static str,
        logs: Vec<LogEntry>,
    },
    #[error(
        "the VM failed while starting or configuring: {failure}{}",
        last_log(logs)
    )]
    StartFailed {
        failure: VmFailure,
        logs: Vec<LogEntry>,
    },
    #[error("{field}: {value:?}: {reason}")]
    InvalidFact {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
}

impl Error {
    /// The guest's log lines, for errors raised while it ran.
    pub fn logs(&self) -> &[LogEntry] {
        match self {
            Self::ConfigurationRejected { logs, .. } | Self::StartFailed { logs, .. } => logs,
            _ => &[],
        }
    }
}

fn last_log(logs: &[LogEntry]) -> String {
    logs.iter()
        .rev()
        .find(|l| l.level >= crate::LogLevel::Warn)
        .or(logs.last())
        .map(|l| format!("; plugin log: {l}"))
        .unwrap_or_default()
}
