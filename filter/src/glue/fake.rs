//! An in-memory [`Host`] that records what the glue did: for native tests and for counting
//! host calls in benches. It answers the way Envoy does (`proxy-wasm-abi.md`): missing
//! property -> absent, empty value -> absent, header maps as serialized pairs.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use crate::config::LogLevel;

use super::facts::encode_pairs;
use super::host::{Host, HostError, HostStatus};

/// A local response the glue sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub struct FakeHost {
    /// Properties by dotted path (`connection.mtls`); segments that contain dots, like the
    /// `istio_authn` keys, are reached through the parent map's pairs.
    pub properties: RefCell<BTreeMap<String, Vec<u8>>>,
    /// Properties that fail with this status instead of answering.
    pub failing: RefCell<BTreeMap<String, HostStatus>>,
    pub request_headers: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
    pub configuration: RefCell<Option<Vec<u8>>>,
    pub now_nanos: Cell<u64>,
    pub logs: RefCell<Vec<(LogLevel, String)>>,
    pub counter_names: RefCell<Vec<String>>,
    pub counters: RefCell<BTreeMap<String, i64>>,
    pub local_responses: RefCell<Vec<LocalResponse>>,
    pub response_headers: RefCell<Vec<(String, String)>>,
    pub closed_downstream: Cell<u32>,
    pub set_properties: RefCell<Vec<(String, Vec<u8>)>>,
    /// Every host call, by ABI name and subject (`proxy_get_property connection.mtls`).
    pub calls: RefCell<Vec<String>>,
    /// Do not record calls (for timing the glue without the recording's allocations).
    pub quiet: Cell<bool>,
}

impl FakeHost {
    pub fn new() -> FakeHost {
        FakeHost::default()
    }

    pub fn set_property(&self, path: &str, value: impl Into<Vec<u8>>) -> &Self {
        self.properties
            .borrow_mut()
            .insert(path.to_string(), value.into());
        self
    }

    pub fn fail_property(&self, path: &str, status: HostStatus) -> &Self {
        self.failing.borrow_mut().insert(path.to_string(), status);
        self
    }

    pub fn set_configuration(&self, json: &str) -> &Self {
        *self.configuration.borrow_mut() = Some(json.as_bytes().to_vec());
        self
    }

    pub fn set_request_headers(&self, headers: &[(&str, &str)]) -> &Self {
        *self.request_headers.borrow_mut() = headers
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        self
    }

    /// The value of a counter by name (0 when never incremented).
    pub fn counter(&self, name: &str) -> i64 {
        self.counters.borrow().get(name).copied().unwrap_or(0)
    }

    /// Log lines at or above `level`.
    pub fn logs_at_least(&self, level: LogLevel) -> Vec<String> {
        self.logs
            .borrow()
            .iter()
            .filter(|(l, _)| *l >= level)
            .map(|(_, m)| m.clone())
            .collect()
    }

    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }

    fn record(&self, call: &str, subject: &str) {
        if self.quiet.get() {
            return;
        }
        self.calls.borrow_mut().push(format!("{call} {subject}"));
    }
}

impl Host for FakeHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        let key = path.join(".");
        self.record("proxy_get_property", &key);
        if let Some(status) = self.failing.borrow().get(&key) {
            return Err(HostError {
                call: "proxy_get_property",
                subject: key,
                status: *status,
            });
        }
        Ok(self
            .properties
            .borrow()
            .get(&key)
            .filter(|v| !v.is_empty())
            .cloned())
    }

    fn request_headers(&self) -> Result<Vec<u8>, HostError> {
        self.record("proxy_get_header_map_pairs", "request");
        let headers = self.request_headers.borrow();
        Ok(if headers.is_empty() {
            Vec::new()
        } else {
            encode_pairs(&headers)
        })
    }

    fn plugin_configuration(&self) -> Result<Option<Vec<u8>>, HostError> {
        self.record("proxy_get_buffer_bytes", "plugin_configuration");
        Ok(self.configuration.borrow().clone())
    }

    fn now_unix_nanos(&self) -> Result<u64, HostError> {
        self.record("proxy_get_current_time_nanoseconds", "");
        Ok(self.now_nanos.get())
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }

    fn define_counter(&self, name: &str) -> Result<u32, HostError> {
        self.record("proxy_define_metric", name);
        let mut names = self.counter_names.borrow_mut();
        names.push(name.to_string());
        Ok(names.len() as u32 - 1)
    }

    fn increment_counter(&self, id: u32, by: i64) -> Result<(), HostError> {
        self.record("proxy_increment_metric", &id.to_string());
        let names = self.counter_names.borrow();
        let Some(name) = names.get(id as usize) else {
            return Err(HostError {
                call: "proxy_increment_metric",
                subject: id.to_string(),
                status: HostStatus::NotFound,
            });
        };
        *self.counters.borrow_mut().entry(name.clone()).or_insert(0) += by;
        Ok(())
    }

    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<(), HostError> {
        self.record("proxy_send_local_response", &status.to_string());
        self.local_responses.borrow_mut().push(LocalResponse {
            status,
            details: details.to_string(),
            body: body.to_vec(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
        Ok(())
    }

    fn add_response_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        self.record("proxy_add_header_map_value", name);
        self.response_headers
            .borrow_mut()
            .push((name.to_string(), value.to_string()));
        Ok(())
    }

    fn close_downstream(&self) -> Result<(), HostError> {
        self.record("proxy_close_stream", "downstream");
        self.closed_downstream.set(self.closed_downstream.get() + 1);
        Ok(())
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        let key = path.join(".");
        self.record("proxy_set_property", &key);
        self.set_properties.borrow_mut().push((key, value.to_vec()));
        Ok(())
    }
}
