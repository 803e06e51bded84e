//! Benchmark helpers; the benchmarks themselves are the `[[bench]]` targets in Cargo.toml.
//!
//! [`engine_shapes`] builds the rule shapes the engine benchmark measures at 1 to 10,000
//! rules, and requests that match the first rule, the last rule, or none.

pub mod engine_shapes {
    use std::net::IpAddr;

    use serde_json::{json, Value};
    use spiffe_authz::engine::{Decision, Engine, EngineConfig, HttpRequest, Request, Workload};
    use spiffe_authz::normalize::PathNormalization;
    use spiffe_authz::policy::AuthorizationPolicy;

    /// One rule shape, repeated N times with distinct values.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Shape {
        /// ALLOW rule i: `principals: [cluster.local/ns/n<i>/sa/s<i>]` (hash index).
        ExactPrincipals,
        /// ALLOW rule i: `principals: [cluster.local/ns/n<i>/*]` (prefix buckets).
        PrincipalPrefixes,
        /// ALLOW rule i: `namespaces: [n<i>]` (namespace index).
        Namespaces,
        /// ALLOW rule i: `paths: [/api/v<i>/items]` (hash index).
        ExactPaths,
        /// ALLOW rule i: `paths: [/api/v<i>/*]` (prefix buckets).
        PathPrefixes,
        /// ALLOW rule i: `paths: [/api/v<i>/{*}/items]` (not indexed: scanned).
        PathTemplates,
        /// DENY rule i: `ipBlocks: [10.<hi>.<lo>.0/24]` (CIDR buckets).
        IpBlocks,
        /// N ALLOW policies of one exact-principal rule each.
        OnePolicyPerRule,
        /// ALLOW rule i: `when: request.headers[x-tenant] == t<i>` (header value index).
        HeaderConditions,
        /// A realistic mix: per tenant i an ALLOW (namespace prefix principal + GET/POST on a
        /// path prefix), every 10th a DENY (admin paths from an IP range), every 50th an
        /// AUDIT on a header.
        RealisticMix,
    }

    impl Shape {
        pub const ALL: [Shape; 10] = [
            Shape::ExactPrincipals,
            Shape::PrincipalPrefixes,
            Shape::Namespaces,
            Shape::ExactPaths,
            Shape::PathPrefixes,
            Shape::PathTemplates,
            Shape::IpBlocks,
            Shape::OnePolicyPerRule,
            Shape::HeaderConditions,
            Shape::RealisticMix,
        ];

        pub fn name(self) -> &'static str {
            match self {
                Shape::ExactPrincipals => "exact_principals",
                Shape::PrincipalPrefixes => "principal_prefixes",
                Shape::Namespaces => "namespaces",
                Shape::ExactPaths => "exact_paths",
                Shape::PathPrefixes => "path_prefixes",
                Shape::PathTemplates => "path_templates",
                Shape::IpBlocks => "ip_blocks",
                Shape::OnePolicyPerRule => "one_policy_per_rule",
                Shape::HeaderConditions => "header_conditions",
                Shape::RealisticMix => "realistic_mix",
            }
        }
    }

    /// Which rule the request matches.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Position {
        First,
        Last,
        None,
    }

    impl Position {
        pub const ALL: [Position; 3] = [Position::First, Position::Last, Position::None];

        pub fn name(self) -> &'static str {
            match self {
                Position::First => "first",
                Position::Last => "last",
                Position::None => "none",
            }
        }
    }

    pub fn config() -> EngineConfig {
        EngineConfig {
            root_namespace: "istio-system".into(),
            trust_domain: "cluster.local".into(),
            trust_domain_aliases: Vec::new(),
            workload: Workload {
                namespace: "bench".into(),
                labels: [("app".to_owned(), "svc".to_owned())].into(),
            },
            path_normalization: PathNormalization::MergeSlashes,
        }
    }

    fn policy(name: &str, spec: Value) -> AuthorizationPolicy {
        let v = json!({"metadata": {"name": name, "namespace": "bench"}, "spec": spec});
        serde_json::from_value(v).expect("bench policies fit the model")
    }

    fn ip_block(i: usize) -> String {
        format!("10.{}.{}.0/24", (i / 256) % 256, i % 256)
    }

    fn rule(shape: Shape, i: usize) -> Value {
        match shape {
            Shape::ExactPrincipals | Shape::OnePolicyPerRule => {
                json!({"from": [{"source": {"principals": [format!("cluster.local/ns/n{i}/sa/s{i}")]}}]})
            }
            Shape::PrincipalPrefixes => {
                json!({"from": [{"source": {"principals": [format!("cluster.local/ns/n{i}/*")]}}]})
            }
            Shape::Namespaces => json!({"from": [{"source": {"namespaces": [format!("n{i}")]}}]}),
            Shape::ExactPaths => {
                json!({"to": [{"operation": {"paths": [format!("/api/v{i}/items")]}}]})
            }
            Shape::PathPrefixes => {
                json!({"to": [{"operation": {"paths": [format!("/api/v{i}/*")]}}]})
            }
            Shape::PathTemplates => {
                json!({"to": [{"operation": {"paths": [format!("/api/v{i}/{{*}}/items")]}}]})
            }
            Shape::IpBlocks => json!({"from": [{"source": {"ipBlocks": [ip_block(i)]}}]}),
            Shape::HeaderConditions => {
                json!({"when": [{"key": "request.headers[x-tenant]", "values": [format!("t{i}")]}]})
            }
            Shape::RealisticMix => json!({
                "from": [{"source": {"principals": [format!("cluster.local/ns/n{i}/*")]}}],
                "to": [{"operation": {"methods": ["GET", "POST"], "paths": [format!("/api/v{i}/*")]}}],
            }),
        }
    }

    /// The policies of `shape` with `n` rules.
    pub fn policies(shape: Shape, n: usize) -> Vec<AuthorizationPolicy> {
        match shape {
            Shape::OnePolicyPerRule => (0..n)
                .map(|i| policy(&format!("p{i:05}"), json!({"rules": [rule(shape, i)]})))
                .collect(),
            Shape::IpBlocks => {
                let rules: Vec<Value> = (0..n).map(|i| rule(shape, i)).collect();
                vec![policy(
                    "deny-ips",
                    json!({"action": "DENY", "rules": rules}),
                )]
            }
            Shape::RealisticMix => {
                let allow: Vec<Value> = (0..n).map(|i| rule(shape, i)).collect();
                let deny: Vec<Value> = (0..n / 10)
                    .map(|i| json!({"from": [{"source": {"ipBlocks": [ip_block(i)]}}], "to": [{"operation": {"paths": [format!("/admin/v{i}/*")]}}]}))
                    .collect();
                let audit: Vec<Value> = (0..n / 50)
                    .map(|i| json!({"when": [{"key": "request.headers[x-debug]", "values": [format!("d{i}")]}]}))
                    .collect();
                vec![
                    policy("allow-tenants", json!({"rules": allow})),
                    policy("deny-admin", json!({"action": "DENY", "rules": deny})),
                    policy("audit-debug", json!({"action": "AUDIT", "rules": audit})),
                ]
            }
            _ => {
                let rules: Vec<Value> = (0..n).map(|i| rule(shape, i)).collect();
                vec![policy("allow", json!({"rules": rules}))]
            }
        }
    }

    /// Owned facts of one request; [`Probe::decide`] borrows them into a `Request`.
    #[derive(Debug, Clone)]
    pub struct Probe {
        pub principal: Option<String>,
        pub peer: IpAddr,
        pub path: String,
        pub headers: Vec<(String, String)>,
    }

    impl Probe {
        /// The request as the engine sees it; the closure runs with it borrowed.
        pub fn with_request<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> R {
            let headers: Vec<(&str, &str)> = self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let request = Request {
                principal: self.principal.as_deref(),
                direct_remote_ip: Some(self.peer),
                remote_ip: Some(self.peer),
                destination_port: Some(8080),
                http: Some(HttpRequest {
                    method: "GET",
                    path: &self.path,
                    host: "svc.bench",
                    headers: &headers,
                }),
                ..Request::default()
            };
            f(&request)
        }

        pub fn decide(&self, engine: &Engine) -> Decision {
            self.with_request(|r| engine.decide(r))
        }
    }

    /// A request matching rule 0, rule `n - 1`, or no rule of `shape`.
    pub fn probe(shape: Shape, n: usize, position: Position) -> Probe {
        let i = match position {
            Position::First => 0,
            Position::Last => n.saturating_sub(1),
            Position::None => n + 7,
        };
        let mut p = Probe {
            principal: Some("cluster.local/ns/other/sa/other".into()),
            peer: "192.168.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            path: "/other".into(),
            headers: vec![("user-agent".into(), "bench".into())],
        };
        match shape {
            Shape::ExactPrincipals
            | Shape::OnePolicyPerRule
            | Shape::PrincipalPrefixes
            | Shape::Namespaces => {
                p.principal = Some(format!("cluster.local/ns/n{i}/sa/s{i}"));
            }
            Shape::ExactPaths => p.path = format!("/api/v{i}/items"),
            Shape::PathPrefixes => p.path = format!("/api/v{i}/items"),
            Shape::PathTemplates => p.path = format!("/api/v{i}/42/items"),
            Shape::IpBlocks => {
                p.peer = format!("10.{}.{}.9", (i / 256) % 256, i % 256)
                    .parse()
                    .unwrap_or(p.peer)
            }
            Shape::HeaderConditions => p.headers.push(("x-tenant".into(), format!("t{i}"))),
            Shape::RealisticMix => {
                p.principal = Some(format!("cluster.local/ns/n{i}/sa/web"));
                p.path = format!("/api/v{i}/orders?page=2");
                p.headers.push(("x-debug".into(), "off".into()));
            }
        }
        p
    }

    /// The decision line `probe(shape, n, position)` must get, so a benchmark measures what
    /// its name says.
    pub fn expected(shape: Shape, n: usize, position: Position) -> String {
        let i = match position {
            Position::First => 0,
            Position::Last => n.saturating_sub(1),
            Position::None => {
                return match shape {
                    Shape::IpBlocks => "allow: no ALLOW policy applies".into(),
                    _ => "deny: no ALLOW policy matched".into(),
                }
            }
        };
        match shape {
            Shape::IpBlocks => format!("deny: denied by bench/deny-ips rule {i}"),
            Shape::OnePolicyPerRule => format!("allow: allowed by bench/p{i:05} rule 0"),
            Shape::RealisticMix => format!("allow: allowed by bench/allow-tenants rule {i}"),
            _ => format!("allow: allowed by bench/allow rule {i}"),
        }
    }

    /// Compiles `shape` at `n` rules with the bench configuration.
    pub fn engine(shape: Shape, n: usize) -> Engine {
        Engine::compile(&policies(shape, n), &config())
            .map(|(e, _)| e)
            .expect("bench policies compile")
    }
}
