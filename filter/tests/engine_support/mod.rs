//! Shared helpers for the engine tests: policies from JSON, a default workload, and owned
//! requests that borrow into `engine::Request`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{json, Value};
use spiffe_authz::engine::{
    Decision, Engine, EngineConfig, FilterMetadata, HttpRequest, MetadataValue, Request,
    RequestAuth, Warning, Workload,
};
use spiffe_authz::normalize::PathNormalization;
use spiffe_authz::policy::AuthorizationPolicy;

/// Workload `foo` namespace, labels `app: httpbin, version: v1`, root `istio-system`, trust
/// domain `cluster.local`.
pub fn config() -> EngineConfig {
    EngineConfig {
        root_namespace: "istio-system".into(),
        trust_domain: "cluster.local".into(),
        trust_domain_aliases: Vec::new(),
        workload: Workload {
            namespace: "foo".into(),
            labels: BTreeMap::from([
                ("app".to_owned(), "httpbin".to_owned()),
                ("version".to_owned(), "v1".to_owned()),
            ]),
        },
        path_normalization: PathNormalization::None,
    }
}

/// A policy from its JSON; `metadata` defaults to `foo/<name>`.
pub fn policy(name: &str, spec: Value) -> AuthorizationPolicy {
    policy_in("foo", name, spec)
}

pub fn policy_in(namespace: &str, name: &str, spec: Value) -> AuthorizationPolicy {
    let v = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    });
    serde_json::from_value(v).expect("policy JSON fits the model")
}

pub fn with_annotation(mut p: AuthorizationPolicy, k: &str, v: &str) -> AuthorizationPolicy {
    p.metadata.annotations.insert(k.into(), v.into());
    p
}

pub fn dry_run(p: AuthorizationPolicy) -> AuthorizationPolicy {
    with_annotation(p, "istio.io/dry-run", "true")
}

pub fn compile(policies: &[AuthorizationPolicy]) -> (Engine, Vec<Warning>) {
    compile_with(policies, &config())
}

pub fn compile_with(
    policies: &[AuthorizationPolicy],
    cfg: &EngineConfig,
) -> (Engine, Vec<Warning>) {
    match Engine::compile(policies, cfg) {
        Ok(ok) => ok,
        Err(errors) => panic!(
            "compile failed: {}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// An owned request; [`Req::decide`] borrows it into an `engine::Request`.
#[derive(Debug, Clone)]
pub struct Req {
    pub principal: Option<String>,
    pub direct_remote_ip: Option<IpAddr>,
    pub remote_ip: Option<IpAddr>,
    pub destination_ip: Option<IpAddr>,
    pub destination_port: Option<u16>,
    pub sni: Option<String>,
    pub tcp: bool,
    pub method: String,
    pub path: String,
    pub host: String,
    pub headers: Vec<(String, String)>,
    pub auth: Option<Auth>,
    /// Dynamic metadata `(filter, key, value)` the host told; pairs not listed are unknown.
    pub metadata: Vec<(String, String, Meta)>,
}

/// An owned [`MetadataValue`].
#[derive(Debug, Clone)]
pub enum Meta {
    Absent,
    Str(String),
    List(Vec<String>),
    Other,
}

#[derive(Debug, Clone)]
pub struct Auth {
    pub principal: String,
    pub audiences: Vec<String>,
    pub presenter: Option<String>,
    pub claims: Option<Value>,
}

/// `GET /` to `httpbin.foo`, no peer identity, from 10.0.0.1 to 10.0.0.2:8000.
pub fn req() -> Req {
    Req {
        principal: None,
        direct_remote_ip: Some("10.0.0.1".parse().unwrap()),
        remote_ip: Some("10.0.0.1".parse().unwrap()),
        destination_ip: Some("10.0.0.2".parse().unwrap()),
        destination_port: Some(8000),
        sni: None,
        tcp: false,
        method: "GET".into(),
        path: "/".into(),
        host: "httpbin.foo".into(),
        headers: Vec::new(),
        auth: None,
        metadata: Vec::new(),
    }
}

impl Req {
    pub fn principal(mut self, p: &str) -> Self {
        self.principal = Some(p.into());
        self
    }
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }
    pub fn method(mut self, m: &str) -> Self {
        self.method = m.into();
        self
    }
    pub fn path(mut self, p: &str) -> Self {
        self.path = p.into();
        self
    }
    pub fn host(mut self, h: &str) -> Self {
        self.host = h.into();
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn peer_ip(mut self, ip: &str) -> Self {
        self.direct_remote_ip = Some(ip.parse().unwrap());
        self
    }
    pub fn client_ip(mut self, ip: &str) -> Self {
        self.remote_ip = Some(ip.parse().unwrap());
        self
    }
    pub fn dest_ip(mut self, ip: &str) -> Self {
        self.destination_ip = Some(ip.parse().unwrap());
        self
    }
    pub fn port(mut self, p: u16) -> Self {
        self.destination_port = Some(p);
        self
    }
    pub fn sni(mut self, s: &str) -> Self {
        self.sni = Some(s.into());
        self
    }
    /// The host reports `value` for `filter_metadata[filter][key]`.
    pub fn metadata(mut self, filter: &str, key: &str, value: Meta) -> Self {
        self.metadata.push((filter.into(), key.into(), value));
        self
    }
    pub fn jwt(mut self, principal: &str, claims: Value) -> Self {
        let audiences = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let presenter = claims
            .get("azp")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        self.auth = Some(Auth {
            principal: principal.into(),
            audiences,
            presenter,
            claims: Some(claims),
        });
        self
    }

    pub fn decide(&self, engine: &Engine) -> Decision {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let audiences: Vec<&str> = self
            .auth
            .as_ref()
            .map(|a| a.audiences.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let lists: Vec<Vec<&str>> = self
            .metadata
            .iter()
            .map(|(_, _, v)| match v {
                Meta::List(items) => items.iter().map(String::as_str).collect(),
                _ => Vec::new(),
            })
            .collect();
        let filter_metadata: Vec<FilterMetadata<'_>> = self
            .metadata
            .iter()
            .zip(&lists)
            .map(|((filter, key, v), list)| FilterMetadata {
                filter,
                key,
                value: match v {
                    Meta::Absent => MetadataValue::Absent,
                    Meta::Str(s) => MetadataValue::String(s),
                    Meta::List(_) => MetadataValue::List(list),
                    Meta::Other => MetadataValue::Other,
                },
            })
            .collect();
        let request = Request {
            principal: self.principal.as_deref(),
            direct_remote_ip: self.direct_remote_ip,
            remote_ip: self.remote_ip,
            destination_ip: self.destination_ip,
            destination_port: self.destination_port,
            sni: self.sni.as_deref(),
            http: (!self.tcp).then_some(HttpRequest {
                method: &self.method,
                path: &self.path,
                host: &self.host,
                headers: &headers,
            }),
            request_auth: self.auth.as_ref().map(|a| RequestAuth {
                principal: &a.principal,
                audiences: &audiences,
                presenter: a.presenter.as_deref(),
                claims: a.claims.as_ref(),
            }),
            filter_metadata: &filter_metadata,
        };
        engine.decide(&request)
    }
}

/// Asserts each row's one-line decision; collects every failure before panicking so one run
/// shows all broken rows.
pub fn check_rows(rows: Vec<(&str, &str, Vec<AuthorizationPolicy>, Req, &str)>) {
    let mut failures = Vec::new();
    let n = rows.len();
    for (name, source, policies, request, want) in rows {
        let (engine, _) = compile(&policies);
        let got = request.decide(&engine).to_string();
        if got != want {
            failures.push(format!(
                "{name} [{source}]\n    want: {want}\n    got:  {got}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
