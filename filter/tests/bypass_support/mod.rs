//! The bypass corpus runner: one row per published Istio / Envoy authorization bypass, each
//! decided through the glue with the fake host, exactly as a sidecar would run the filter.
//!
//! Why through the glue and not `Engine::decide` alone: half of the published bypasses live
//! in the facts (which `:path`, which peer identity, which address), and the glue is what
//! turns host facts into a `Request`. A row states what a PATCHED Istio decides for the same
//! policy and request, with the `pathNormalization` option of the row.
//!
//! Rows whose filter decision differs from patched Istio carry `open: Some("BYPASS: ...")`:
//! the corpus test skips them and a dedicated `#[ignore]` test replays them, so the suite
//! stays green while the bypass stays visible and reproducible until its owner fixes it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use spiffe_authz::glue::fake::FakeHost;
use spiffe_authz::glue::{Action, Root};

/// The workload under test: `backend` in namespace `demo`.
pub const NAMESPACE: &str = "demo";

/// What a patched Istio does with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
}

pub use Verdict::{Allow, Deny};

/// The downstream connection as the host reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// `connection.mtls` false: no client certificate.
    Plaintext,
    /// `connection.mtls` true with these connection attributes.
    Mtls {
        /// `connection.uri_san_peer_certificate` (Envoy reports the first URI SAN only).
        uri_san: Option<String>,
        /// `connection.peer_certificate`: URL-encoded PEM.
        peer_certificate: Option<String>,
    },
}

impl Peer {
    /// An mTLS peer whose verified certificate carries `spiffe_id` as its URI SAN.
    pub fn spiffe(spiffe_id: &str) -> Peer {
        Peer::Mtls {
            uri_san: Some(spiffe_id.to_owned()),
            peer_certificate: None,
        }
    }

    /// For failure messages: a certificate is shown by size, not as a page of base64.
    pub fn summary(&self) -> String {
        match self {
            Peer::Plaintext => "plaintext".to_owned(),
            Peer::Mtls {
                uri_san,
                peer_certificate,
            } => format!(
                "mtls uri_san={uri_san:?} peer_certificate={}",
                peer_certificate
                    .as_ref()
                    .map_or("none".to_owned(), |pem| format!("<{} bytes>", pem.len()))
            ),
        }
    }

    pub fn certificate(url_encoded_pem: String) -> Peer {
        Peer::Mtls {
            uri_san: None,
            peer_certificate: Some(url_encoded_pem),
        }
    }
}

/// One HTTP request on one connection.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authority: String,
    /// Further request headers, in order; repeats stay separate entries, as Envoy keeps them.
    pub headers: Vec<(String, String)>,
    pub peer: Peer,
    /// `source.address` as Envoy reports it to an HTTP filter: the socket peer with its port,
    /// or, with `use_remote_address: false` and an `x-forwarded-for`, the XFF address with
    /// port 0.
    pub source_address: String,
    /// A plain TCP connection (network filter) instead of an HTTP request.
    pub tcp: bool,
}

/// `GET /` to `backend.demo.svc.cluster.local` from `frontend` over mTLS, socket peer
/// 10.0.0.1:43210.
pub fn get(path: &str) -> Request {
    Request {
        method: "GET".to_owned(),
        path: path.to_owned(),
        authority: "backend.demo.svc.cluster.local".to_owned(),
        headers: Vec::new(),
        peer: Peer::spiffe("spiffe://cluster.local/ns/demo/sa/frontend"),
        source_address: "10.0.0.1:43210".to_owned(),
        tcp: false,
    }
}

impl Request {
    pub fn method(mut self, method: &str) -> Self {
        self.method = method.to_owned();
        self
    }
    pub fn authority(mut self, authority: &str) -> Self {
        self.authority = authority.to_owned();
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub fn peer(mut self, peer: Peer) -> Self {
        self.peer = peer;
        self
    }
    pub fn source_address(mut self, address: &str) -> Self {
        self.source_address = address.to_owned();
        self
    }
    /// The same peer on a plain TCP connection: no HTTP attributes exist.
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }
}

/// One published bypass, replayed.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    /// ISTIO-SECURITY-YYYY-NNN, CVE and Envoy GHSA, or the Istio/Envoy doc or test it pins.
    pub advisory: &'static str,
    /// Istio `meshConfig.pathNormalization.normalization`.
    pub normalization: &'static str,
    /// Plugin configuration keys besides `policies`, e.g. `identitySources`.
    pub settings: Value,
    /// `spec`s of AuthorizationPolicies in namespace `demo` (named `p0`, `p1`, ...).
    pub policies: Vec<Value>,
    pub request: Request,
    pub expect: Verdict,
    pub note: &'static str,
    /// `Some("BYPASS: ...")` (or `"DIVERGES: ..."` for a fail-closed difference) while the
    /// filter decides otherwise than patched Istio.
    pub open: Option<&'static str>,
}

impl Row {
    pub fn new(
        name: impl Into<String>,
        advisory: &'static str,
        policy: Value,
        request: Request,
        expect: Verdict,
        note: &'static str,
    ) -> Row {
        Row {
            name: name.into(),
            advisory,
            normalization: "BASE",
            settings: json!({}),
            policies: vec![policy],
            request,
            expect,
            note,
            open: None,
        }
    }

    pub fn normalization(mut self, option: &'static str) -> Self {
        self.normalization = option;
        self
    }

    pub fn settings(mut self, settings: Value) -> Self {
        self.settings = settings;
        self
    }

    pub fn also(mut self, policy: Value) -> Self {
        self.policies.push(policy);
        self
    }

    pub fn open(mut self, why: &'static str) -> Self {
        self.open = Some(why);
        self
    }

    /// The plugin configuration this row runs with.
    pub fn config(&self) -> String {
        let mut config = serde_json::Map::new();
        config.insert("trustDomain".into(), json!("cluster.local"));
        config.insert(
            "workload".into(),
            json!({"namespace": NAMESPACE, "labels": {"app": "backend"}}),
        );
        config.insert("pathNormalization".into(), json!(self.normalization));
        config.insert("identitySources".into(), json!(["connectionAttributes"]));
        if let Some(settings) = self.settings.as_object() {
            for (k, v) in settings {
                config.insert(k.clone(), v.clone());
            }
        }
        let policies: Vec<Value> = self
            .policies
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                json!({
                    "metadata": {"name": format!("p{i}"), "namespace": NAMESPACE},
                    "spec": spec,
                })
            })
            .collect();
        config.insert("policies".into(), Value::Array(policies));
        Value::Object(config).to_string()
    }

    /// What the filter decides, through the glue, on a fresh plugin and connection.
    pub fn decide(&self) -> Verdict {
        let host = FakeHost::new();
        host.set_configuration(&self.config());
        let mut root = Root::new();
        assert!(
            root.on_configure(&host),
            "{}: configuration rejected: {:?}",
            self.name,
            host.logs.borrow()
        );
        match &self.request.peer {
            Peer::Plaintext => {
                host.set_property("connection.mtls", vec![0]);
            }
            Peer::Mtls {
                uri_san,
                peer_certificate,
            } => {
                host.set_property("connection.mtls", vec![1]);
                if let Some(uri) = uri_san {
                    host.set_property("connection.uri_san_peer_certificate", uri.as_str());
                }
                if let Some(pem) = peer_certificate {
                    host.set_property("connection.peer_certificate", pem.as_str());
                }
            }
        }
        host.now_nanos.set(NOW * 1_000_000_000);
        host.set_property("source.address", self.request.source_address.as_str());
        host.set_property("destination.address", "10.0.0.2:8000");
        let r = &self.request;
        if r.tcp {
            let mut connection = root.new_tcp_stream();
            assert_eq!(connection.on_new_connection(&host), Action::Continue);
            return match connection.on_downstream_data(&host) {
                Action::Continue => {
                    assert_eq!(host.closed_downstream.get(), 0, "{}", self.name);
                    Allow
                }
                Action::Pause => {
                    assert_eq!(host.closed_downstream.get(), 1, "{}", self.name);
                    Deny
                }
            };
        }
        let mut headers: Vec<(&str, &str)> = vec![
            (":authority", r.authority.as_str()),
            (":path", r.path.as_str()),
            (":method", r.method.as_str()),
        ];
        headers.extend(r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        host.set_request_headers(&headers);
        let action = root.new_http_stream().on_request_headers(&host);
        let responses = host.local_responses.borrow();
        match action {
            Action::Continue => {
                assert!(
                    responses.is_empty(),
                    "{}: continued after a local response",
                    self.name
                );
                Allow
            }
            Action::Pause => {
                assert_eq!(
                    responses.len(),
                    1,
                    "{}: paused without exactly one local response",
                    self.name
                );
                Deny
            }
        }
    }

    /// One line naming everything needed to reproduce a mismatch.
    pub fn describe(&self, actual: Verdict) -> String {
        format!(
            "{} [{}] normalization={} policies={} request={} {} authority={:?} headers={:?} peer={} source={} => expected {:?} (patched Istio), filter says {:?}: {}",
            self.name,
            self.advisory,
            self.normalization,
            Value::Array(self.policies.clone()),
            self.request.method,
            self.request.path,
            self.request.authority,
            self.request.headers,
            self.request.peer.summary(),
            self.request.source_address,
            self.expect,
            actual,
            self.note
        )
    }
}

/// The host clock of these tests (2026-01-01T00:00:00Z), for certificate validity.
pub const NOW: u64 = 1_767_225_600;

/// Runs every row that is not marked open; fails listing every mismatch at once.
pub fn assert_closed_rows(rows: &[Row]) {
    let mut names = std::collections::BTreeSet::new();
    for row in rows {
        assert!(names.insert(row.name.clone()), "duplicate row {}", row.name);
        assert!(!row.advisory.is_empty(), "{}: no advisory", row.name);
        assert!(!row.note.is_empty(), "{}: no note", row.name);
    }
    let failures: Vec<String> = rows
        .iter()
        .filter(|row| row.open.is_none())
        .filter_map(|row| {
            let actual = row.decide();
            (actual != row.expect).then(|| row.describe(actual))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows decide otherwise than patched Istio:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// Replays the open rows whose name starts with `prefix` (for the `#[ignore]`d bypass tests).
pub fn assert_open_rows(rows: &[Row], prefix: &str) {
    let selected: Vec<&Row> = rows
        .iter()
        .filter(|row| row.open.is_some() && row.name.starts_with(prefix))
        .collect();
    assert!(!selected.is_empty(), "no open row starts with {prefix:?}");
    let failures: Vec<String> = selected
        .iter()
        .filter_map(|row| {
            let actual = row.decide();
            (actual != row.expect)
                .then(|| format!("{}: {}", row.open.unwrap_or(""), row.describe(actual)))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
