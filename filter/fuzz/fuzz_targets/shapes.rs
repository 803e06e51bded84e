//! Structured inputs shared by the configuration and request-path targets: strings are drawn
//! mostly from words that mean something to the parser and engine, so libFuzzer spends its time
//! on combinations of real fields instead of on JSON syntax.
#![allow(dead_code)]

use arbitrary::{Arbitrary, Unstructured};

/// A string: one of `words` most of the time, or any text.
#[derive(Debug, Clone)]
pub struct Word(pub String);

impl Word {
    pub fn from(u: &mut Unstructured<'_>, words: &[&str]) -> arbitrary::Result<Word> {
        if words.is_empty() || u.ratio(1, 4)? {
            return Ok(Word(String::arbitrary(u)?));
        }
        Ok(Word((*u.choose(words)?).to_string()))
    }
}

/// Up to `max` words.
pub fn words(
    u: &mut Unstructured<'_>,
    pool: &[&str],
    max: usize,
) -> arbitrary::Result<Vec<String>> {
    let n = u.int_in_range(0..=max)?;
    (0..n).map(|_| Word::from(u, pool).map(|w| w.0)).collect()
}

pub const NAMESPACES: &[&str] = &["default", "istio-system", "ns-a", "ns-b", "", "*", "ns-*"];
pub const PRINCIPALS: &[&str] = &[
    "cluster.local/ns/ns-a/sa/sa-a",
    "cluster.local/ns/ns-b/sa/*",
    "*/ns/ns-a/sa/sa-a",
    "*",
    "cluster.local/*",
    "*sa-a",
    "td.example/ns/ns-a/sa/sa-a",
    "spiffe://cluster.local/ns/ns-a/sa/sa-a",
    "",
];
pub const TRUST_DOMAINS: &[&str] = &["cluster.local", "td.example", "*", "", "Cluster.Local"];
pub const SERVICE_ACCOUNTS: &[&str] = &["sa-a", "ns-a/sa-a", "ns-b/*", "*", ""];
pub const IP_BLOCKS: &[&str] = &[
    "10.0.0.0/8",
    "10.1.2.3",
    "::1",
    "fd00::/8",
    "0.0.0.0/0",
    "1.2.3.4/33",
    "10.0.0.1/8",
    "",
];
pub const HOSTS: &[&str] = &[
    "example.com",
    "*.example.com",
    "example.*",
    "*",
    "Example.COM:80",
    "",
];
pub const PORTS: &[&str] = &["80", "8080", "0", "65535", "65536", "-1", "x", ""];
pub const METHODS: &[&str] = &["GET", "POST", "get", "*", "G*", "*T", "CONNECT", ""];
pub const PATHS: &[&str] = &[
    "/", "/a", "/a/*", "*/b", "*", "/a/{*}/c", "/a/{**}", "/a/*/b", "/%2F", "/a/../b", "",
];
pub const CONDITION_KEYS: &[&str] = &[
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "destination.ip",
    "destination.port",
    "connection.sni",
    "request.headers[x-user]",
    "request.headers[:method]",
    "request.headers[]",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "request.auth.claims[groups]",
    "request.auth.claims[a][b]",
    "experimental.envoy.filters.network.mysql_proxy[db.table]",
    "source.serviceAccount",
    "unknown.key",
    "",
];
pub const CONDITION_VALUES: &[&str] = &[
    "10.0.0.0/8",
    "ns-a",
    "cluster.local/ns/ns-a/sa/sa-a",
    "80",
    "example.com",
    "admin",
    "GET",
    "iss/sub",
    "*",
    "",
];
pub const LABEL_KEYS: &[&str] = &["app", "version", "", "app.kubernetes.io/name"];
pub const LABEL_VALUES: &[&str] = &["web", "v1", "", "*"];
pub const ACTIONS: &[&str] = &["ALLOW", "DENY", "AUDIT", "CUSTOM", "allow", ""];
pub const DRY_RUN: &[&str] = &["true", "false", "1", "TRUE", "maybe", ""];

fn string_list(
    u: &mut Unstructured<'_>,
    pool: &[&str],
    max: usize,
) -> arbitrary::Result<serde_json::Value> {
    Ok(serde_json::Value::from(words(u, pool, max)?))
}

fn label_map(u: &mut Unstructured<'_>) -> arbitrary::Result<serde_json::Value> {
    let mut map = serde_json::Map::new();
    for _ in 0..u.int_in_range(0..=2)? {
        let key = Word::from(u, LABEL_KEYS)?.0;
        map.insert(key, Word::from(u, LABEL_VALUES)?.0.into());
    }
    Ok(serde_json::Value::Object(map))
}

/// Inserts `field` with a list drawn from `pool` about half the time.
fn maybe_list(
    u: &mut Unstructured<'_>,
    map: &mut serde_json::Map<String, serde_json::Value>,
    field: &str,
    pool: &[&str],
) -> arbitrary::Result<()> {
    if u.arbitrary()? {
        map.insert(field.to_string(), string_list(u, pool, 3)?);
    }
    Ok(())
}

fn source(u: &mut Unstructured<'_>) -> arbitrary::Result<serde_json::Value> {
    let mut s = serde_json::Map::new();
    for (field, pool) in [
        ("principals", PRINCIPALS),
        ("notPrincipals", PRINCIPALS),
        ("requestPrincipals", PRINCIPALS),
        ("notRequestPrincipals", PRINCIPALS),
        ("namespaces", NAMESPACES),
        ("notNamespaces", NAMESPACES),
        ("serviceAccounts", SERVICE_ACCOUNTS),
        ("notServiceAccounts", SERVICE_ACCOUNTS),
        ("trustDomains", TRUST_DOMAINS),
        ("notTrustDomains", TRUST_DOMAINS),
        ("ipBlocks", IP_BLOCKS),
        ("notIpBlocks", IP_BLOCKS),
        ("remoteIpBlocks", IP_BLOCKS),
        ("notRemoteIpBlocks", IP_BLOCKS),
    ] {
        if u.ratio(1, 4)? {
            s.insert(field.to_string(), string_list(u, pool, 3)?);
        }
    }
    Ok(serde_json::json!({ "source": s }))
}

fn operation(u: &mut Unstructured<'_>) -> arbitrary::Result<serde_json::Value> {
    let mut o = serde_json::Map::new();
    for (field, pool) in [
        ("hosts", HOSTS),
        ("notHosts", HOSTS),
        ("ports", PORTS),
        ("notPorts", PORTS),
        ("methods", METHODS),
        ("notMethods", METHODS),
        ("paths", PATHS),
        ("notPaths", PATHS),
    ] {
        if u.ratio(1, 3)? {
            o.insert(field.to_string(), string_list(u, pool, 3)?);
        }
    }
    Ok(serde_json::json!({ "operation": o }))
}

fn condition(u: &mut Unstructured<'_>) -> arbitrary::Result<serde_json::Value> {
    let mut c = serde_json::Map::new();
    c.insert("key".into(), Word::from(u, CONDITION_KEYS)?.0.into());
    maybe_list(u, &mut c, "values", CONDITION_VALUES)?;
    maybe_list(u, &mut c, "notValues", CONDITION_VALUES)?;
    Ok(serde_json::Value::Object(c))
}

fn rule(u: &mut Unstructured<'_>) -> arbitrary::Result<serde_json::Value> {
    let mut r = serde_json::Map::new();
    for (field, make, max) in [
        ("from", source as fn(&mut Unstructured<'_>) -> _, 2),
        ("to", operation, 2),
        ("when", condition, 3),
    ] {
        if u.arbitrary()? {
            let n = u.int_in_range(0..=max)?;
            let items = (0..n)
                .map(|_| make(u))
                .collect::<arbitrary::Result<Vec<_>>>()?;
            r.insert(field.to_string(), items.into());
        }
    }
    Ok(serde_json::Value::Object(r))
}

/// One `AuthorizationPolicy` object as `kubectl get -o json` prints it.
pub fn policy(u: &mut Unstructured<'_>) -> arbitrary::Result<serde_json::Value> {
    let mut metadata = serde_json::Map::new();
    metadata.insert("name".into(), Word::from(u, &["p", "q", ""])?.0.into());
    metadata.insert("namespace".into(), Word::from(u, NAMESPACES)?.0.into());
    if u.ratio(1, 4)? {
        let v = Word::from(u, DRY_RUN)?.0;
        metadata.insert(
            "annotations".into(),
            serde_json::json!({ "istio.io/dry-run": v }),
        );
    }
    let mut spec = serde_json::Map::new();
    if u.arbitrary()? {
        spec.insert("action".into(), Word::from(u, ACTIONS)?.0.into());
    }
    if u.ratio(1, 3)? {
        spec.insert(
            "selector".into(),
            serde_json::json!({ "matchLabels": label_map(u)? }),
        );
    }
    if u.ratio(1, 8)? {
        spec.insert("provider".into(), serde_json::json!({ "name": "ext" }));
    }
    if u.ratio(3, 4)? {
        let n = u.int_in_range(0..=3)?;
        let rules = (0..n)
            .map(|_| rule(u))
            .collect::<arbitrary::Result<Vec<_>>>()?;
        spec.insert("rules".into(), rules.into());
    }
    Ok(serde_json::json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata,
        "spec": spec,
    }))
}

/// The workload the filter guards.
pub fn workload(u: &mut Unstructured<'_>) -> arbitrary::Result<spiffe_authz::engine::Workload> {
    let mut labels = std::collections::BTreeMap::new();
    for _ in 0..u.int_in_range(0..=2)? {
        labels.insert(Word::from(u, LABEL_KEYS)?.0, Word::from(u, LABEL_VALUES)?.0);
    }
    Ok(spiffe_authz::engine::Workload {
        namespace: Word::from(u, NAMESPACES)?.0,
        labels,
    })
}

pub const NORMALIZATIONS: [spiffe_authz::normalize::PathNormalization; 4] = [
    spiffe_authz::normalize::PathNormalization::None,
    spiffe_authz::normalize::PathNormalization::Base,
    spiffe_authz::normalize::PathNormalization::MergeSlashes,
    spiffe_authz::normalize::PathNormalization::DecodeAndMergeSlashes,
];

fn ip(u: &mut Unstructured<'_>) -> arbitrary::Result<Option<std::net::IpAddr>> {
    Ok(match u.int_in_range(0..=3)? {
        0 => None,
        1 => Some(std::net::Ipv4Addr::from(u.arbitrary::<[u8; 4]>()?).into()),
        2 => Some(std::net::Ipv4Addr::new(10, 1, 2, u.arbitrary()?).into()),
        _ => Some(std::net::Ipv6Addr::from(u.arbitrary::<u128>()?).into()),
    })
}

fn maybe_word(u: &mut Unstructured<'_>, pool: &[&str]) -> arbitrary::Result<Option<String>> {
    Ok(if u.arbitrary()? {
        Some(Word::from(u, pool)?.0)
    } else {
        None
    })
}

/// Owned per-request facts; [`RequestFacts::decide`] lends them to the engine as the glue does.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub principal: Option<String>,
    pub direct_remote_ip: Option<std::net::IpAddr>,
    pub remote_ip: Option<std::net::IpAddr>,
    pub destination_ip: Option<std::net::IpAddr>,
    pub destination_port: Option<u16>,
    pub sni: Option<String>,
    /// `None`: a TCP connection.
    pub http: Option<HttpFacts>,
    pub auth: Option<AuthFacts>,
}

#[derive(Debug, Clone)]
pub struct HttpFacts {
    pub method: String,
    pub path: String,
    pub host: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct AuthFacts {
    pub principal: String,
    pub audiences: Vec<String>,
    pub presenter: Option<String>,
    pub claims: Option<serde_json::Value>,
}

impl RequestFacts {
    /// Facts with an HTTP request on `path`, or a TCP connection when `path` is `None` and
    /// the input says so.
    pub fn from(u: &mut Unstructured<'_>, path: Option<String>) -> arbitrary::Result<Self> {
        let http = match path {
            Some(path) => Some(HttpFacts::from(u, path)?),
            None if u.ratio(1, 5)? => None,
            None => {
                let path = Word::from(u, PATHS)?.0;
                Some(HttpFacts::from(u, path)?)
            }
        };
        let auth = if u.ratio(1, 4)? {
            Some(AuthFacts {
                principal: Word::from(u, &["iss/sub", "iss", "/", ""])?.0,
                audiences: words(u, &["aud", ""], 2)?,
                presenter: maybe_word(u, &["azp"])?,
                claims: if u.arbitrary()? {
                    let groups = words(u, &["admin", "dev"], 2)?;
                    Some(
                        serde_json::json!({ "iss": "iss", "sub": "sub", "groups": groups, "a": { "b": "c" } }),
                    )
                } else {
                    None
                },
            })
        } else {
            None
        };
        Ok(RequestFacts {
            principal: maybe_word(u, PRINCIPALS)?,
            direct_remote_ip: ip(u)?,
            remote_ip: ip(u)?,
            destination_ip: ip(u)?,
            destination_port: if u.arbitrary()? {
                Some(*u.choose(&[80u16, 8080, 0, u16::MAX])?)
            } else {
                None
            },
            sni: maybe_word(u, HOSTS)?,
            http,
            auth,
        })
    }

    pub fn decide(&self, engine: &spiffe_authz::engine::Engine) -> spiffe_authz::engine::Decision {
        use spiffe_authz::engine::{HttpRequest, Request, RequestAuth};
        let headers: Vec<(&str, &str)> = self
            .http
            .iter()
            .flat_map(|h| h.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .collect();
        let audiences: Vec<&str> = self
            .auth
            .iter()
            .flat_map(|a| a.audiences.iter().map(String::as_str))
            .collect();
        let request = Request {
            principal: self.principal.as_deref(),
            direct_remote_ip: self.direct_remote_ip,
            remote_ip: self.remote_ip,
            destination_ip: self.destination_ip,
            destination_port: self.destination_port,
            sni: self.sni.as_deref(),
            http: self.http.as_ref().map(|h| HttpRequest {
                method: &h.method,
                path: &h.path,
                host: &h.host,
                headers: &headers,
            }),
            request_auth: self.auth.as_ref().map(|a| RequestAuth {
                principal: &a.principal,
                audiences: &audiences,
                presenter: a.presenter.as_deref(),
                claims: a.claims.as_ref(),
            }),
            filter_metadata: &[],
        };
        engine.decide(&request)
    }
}

impl HttpFacts {
    fn from(u: &mut Unstructured<'_>, path: String) -> arbitrary::Result<Self> {
        let mut headers = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            let name = Word::from(
                u,
                &[
                    "x-user",
                    ":method",
                    ":path",
                    ":authority",
                    "x-forwarded-for",
                ],
            )?
            .0;
            headers.push((
                name,
                Word::from(u, &["admin", "GET", "/a", "example.com", "10.0.0.1"])?.0,
            ));
        }
        Ok(HttpFacts {
            method: Word::from(u, METHODS)?.0,
            path,
            host: Word::from(u, HOSTS)?.0,
            headers,
        })
    }
}
