//! `host-sim check`: "would this caller be allowed this request on that workload?" — the
//! decision with the policy and rule that made it — and warnings about policy smells.
//!
//! It runs the filter's own engine natively (the same code the `.wasm` runs), so the answer is
//! the filter's, not a second implementation's.

use std::fmt;
use std::net::IpAddr;

use spiffe_authz::engine::{Engine, EngineConfig, HttpRequest, Request};
use spiffe_authz::policy::{Action, AuthorizationPolicy};

/// One request to check, in the terms a user thinks of.
#[derive(Debug, Clone, Default)]
pub struct CheckRequest {
    /// `<td>/ns/<ns>/sa/<sa>` or `spiffe://…`; `None` = unauthenticated (plaintext) caller.
    pub principal: Option<String>,
    pub source_ip: Option<IpAddr>,
    pub destination_port: Option<u16>,
    /// `None` checks a TCP connection.
    pub http: Option<CheckHttp>,
}

#[derive(Debug, Clone, Default)]
pub struct CheckHttp {
    pub method: String,
    pub path: String,
    pub host: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
}

/// A finding about a policy that is legal but probably not what its author meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smell {
    /// `namespace/name`.
    pub policy: String,
    /// Field path inside the policy.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Smell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.policy, self.field, self.message)
    }
}

/// Compiles `policies` under `config` (the same settings the plugin configuration gives the
/// engine: root namespace, trust domain and aliases, workload, path normalization) and decides
/// `request`: returns the one-line decision and the engine's configure-time warnings.
pub fn check(
    policies: &[AuthorizationPolicy],
    config: &EngineConfig,
    request: &CheckRequest,
) -> Result<(String, Vec<String>), Vec<String>> {
    let (engine, warnings) = Engine::compile(policies, config)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let headers: Vec<(&str, &str)> = request
        .http
        .iter()
        .flat_map(|h| h.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    let principal = request
        .principal
        .as_deref()
        .map(|p| p.strip_prefix("spiffe://").unwrap_or(p));
    let engine_request = Request {
        principal,
        direct_remote_ip: request.source_ip,
        remote_ip: request.source_ip,
        destination_port: request.destination_port,
        http: request.http.as_ref().map(|h| HttpRequest {
            method: &h.method,
            path: &h.path,
            host: &h.host,
            headers: &headers,
        }),
        ..Request::default()
    };
    let decision = engine.decide(&engine_request);
    Ok((
        decision.to_string(),
        warnings.into_iter().map(|w| w.0).collect(),
    ))
}

/// Policy smells: a principal that does not pin a namespace, an ALLOW policy that matches
/// nothing, a `*` that makes a rule match everyone.
pub fn smells(policies: &[AuthorizationPolicy]) -> Vec<Smell> {
    let mut found = Vec::new();
    for policy in policies {
        let key = policy.key();
        let mut smell = |field: String, message: &str| {
            found.push(Smell {
                policy: key.clone(),
                field,
                message: message.to_string(),
            })
        };
        let action = policy.action();
        let rules = policy.spec.rules.as_deref().unwrap_or_default();
        if action == Action::Allow && rules.is_empty() {
            smell(
                "spec.rules".into(),
                "ALLOW policy without rules matches nothing: every request to the workloads it \
                 selects is denied unless another ALLOW policy matches (fine for deny-by-default)",
            );
        }
        for (r, rule) in rules.iter().enumerate() {
            if rule.from.is_empty() && rule.to.is_empty() && rule.when.is_empty() {
                let message = match action {
                    Action::Allow => {
                        "empty rule matches every request: this policy allows everyone"
                    }
                    Action::Deny => "empty rule matches every request: this policy denies everyone",
                    _ => "empty rule matches every request",
                };
                smell(format!("spec.rules[{r}]"), message);
            }
            for (f, from) in rule.from.iter().enumerate() {
                let Some(source) = &from.source else { continue };
                for (i, p) in source.principals.iter().enumerate() {
                    let field = format!("spec.rules[{r}].from[{f}].source.principals[{i}]");
                    if p == "*" {
                        smell(
                            field,
                            "\"*\" matches every authenticated caller in the mesh, from any namespace",
                        );
                    } else if !pins_namespace(p) {
                        smell(
                            field,
                            "principal does not name a namespace: the same service account name in \
                             any namespace (or trust domain) matches; add namespaces or spell out \
                             <td>/ns/<ns>/sa/<sa>",
                        );
                    }
                }
                if source.namespaces.iter().any(|n| n == "*") && action == Action::Allow {
                    smell(
                        format!("spec.rules[{r}].from[{f}].source.namespaces"),
                        "\"*\" matches every authenticated caller in the mesh",
                    );
                }
            }
            for (t, to) in rule.to.iter().enumerate() {
                let Some(op) = &to.operation else { continue };
                if op.paths.iter().any(|p| p == "*") || op.hosts.iter().any(|h| h == "*") {
                    smell(
                        format!("spec.rules[{r}].to[{t}].operation"),
                        "\"*\" in paths or hosts matches every request",
                    );
                }
            }
        }
    }
    found
}

/// `<td>/ns/<ns>/sa/<sa>` with a literal namespace; a wildcard prefix such as `*/sa/admin`
/// matches that account name in every namespace.
fn pins_namespace(principal: &str) -> bool {
    let mut parts = principal.splitn(5, '/');
    let (Some(td), Some("ns"), Some(ns), Some("sa")) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !td.starts_with('*') && !ns.is_empty() && !ns.contains('*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy_files::load_policy_text;
    use spiffe_authz::engine::Workload;

    fn load(yaml: &str) -> Vec<AuthorizationPolicy> {
        load_policy_text(yaml, "t.yaml").unwrap().policies
    }

    const FRONTEND_ONLY: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-frontend, namespace: demo}
spec:
  rules:
  - from: [{source: {principals: ["cluster.local/ns/demo/sa/frontend"]}}]
    to: [{operation: {methods: ["GET"]}}]
"#;

    fn config(root_namespace: &str) -> EngineConfig {
        EngineConfig {
            root_namespace: root_namespace.into(),
            trust_domain: "cluster.local".into(),
            trust_domain_aliases: Vec::new(),
            workload: Workload {
                namespace: "demo".into(),
                labels: Default::default(),
            },
            path_normalization: spiffe_authz::normalize::PathNormalization::Base,
        }
    }

    fn get(principal: Option<&str>) -> CheckRequest {
        CheckRequest {
            principal: principal.map(str::to_string),
            http: Some(CheckHttp {
                method: "GET".into(),
                path: "/".into(),
                host: "backend".into(),
                headers: vec![],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn names_the_deciding_policy() {
        let policies = load(FRONTEND_ONLY);
        let (allowed, _) = check(
            &policies,
            &config("istio-system"),
            &get(Some("spiffe://cluster.local/ns/demo/sa/frontend")),
        )
        .unwrap();
        assert!(allowed.contains("demo/allow-frontend"), "{allowed}");
        let (denied, _) = check(
            &policies,
            &config("istio-system"),
            &get(Some("cluster.local/ns/demo/sa/other")),
        )
        .unwrap();
        assert_ne!(allowed, denied);
        assert!(denied.to_lowercase().contains("deny"), "{denied}");
    }

    /// Istio: policies in the root namespace (meshConfig.rootNamespace, `istio-system` unless a
    /// mesh sets another) apply to every workload; elsewhere only to their own namespace.
    #[test]
    fn the_root_namespace_is_the_one_given() {
        let policies = load(
            r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: mesh-root}
spec:
  action: DENY
  rules: [{}]
"#,
        );
        let caller = get(Some("cluster.local/ns/demo/sa/frontend"));
        let (default_root, _) = check(&policies, &config("istio-system"), &caller).unwrap();
        assert!(
            !default_root.contains("mesh-root/deny-all"),
            "{default_root}"
        );
        let (own_root, _) = check(&policies, &config("mesh-root"), &caller).unwrap();
        assert!(own_root.contains("mesh-root/deny-all"), "{own_root}");
        assert!(own_root.to_lowercase().contains("deny"), "{own_root}");
    }

    #[test]
    fn finds_each_smell() {
        let policies = load(
            r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: smelly, namespace: demo}
spec:
  rules:
  - from: [{source: {principals: ["*/sa/admin", "*", "cluster.local/ns/demo/sa/ok"]}}]
  - {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: nothing, namespace: demo}
spec: {}
"#,
        );
        let found: Vec<String> = smells(&policies).iter().map(ToString::to_string).collect();
        assert!(
            found
                .iter()
                .any(|s| s.contains("principals[0]") && s.contains("does not name a namespace")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|s| s.contains("principals[1]") && s.contains("every authenticated")),
            "{found:#?}"
        );
        assert!(
            !found.iter().any(|s| s.contains("principals[2]")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|s| s.contains("spec.rules[1]") && s.contains("allows everyone")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|s| s.starts_with("demo/nothing") && s.contains("matches nothing")),
            "{found:#?}"
        );
    }
}
