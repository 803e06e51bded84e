//! A deliberately naive evaluator written from the text of Istio's AuthorizationPolicy
//! reference, for differential tests against the compiled engine. No indexing, no
//! precompilation: every request re-reads the policies as written.
//!
//! It covers the fields the differential generator produces: principals, namespaces,
//! ipBlocks, remoteIpBlocks, requestPrincipals (exact and `*`), hosts, methods, paths
//! (including `{*}`/`{**}` as whole segments), ports, and the `request.headers[..]`,
//! `source.ip`, `destination.port`, `connection.sni` conditions; with ALLOW / DENY / AUDIT,
//! dry-run, scope by namespace and selector, and TCP connections. Its output is the engine's
//! one-line `Decision` format so the two compare as strings.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::IpAddr;

use spiffe_authz::engine::EngineConfig;
use spiffe_authz::policy::{Action, AuthorizationPolicy, Condition, Operation, Rule, Source};

use super::engine_support::Req;

/// "`*`" alone: the fact must be there (and, except for header-like fields, non-empty).
fn glob(pattern: &str, value: &str, star_allows_empty: bool) -> bool {
    if pattern == "*" {
        star_allows_empty || !value.is_empty()
    } else if let Some(suffix) = pattern.strip_prefix('*') {
        value.ends_with(suffix)
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        value.starts_with(prefix)
    } else {
        value == pattern
    }
}

fn in_cidr(block: &str, ip: IpAddr) -> bool {
    let (addr, len) = match block.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().unwrap(), l.parse::<u32>().unwrap()),
        None => {
            let a = block.parse::<IpAddr>().unwrap();
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    match (addr, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & m == u32::from(b) & m
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & m == u128::from(b) & m
        }
        _ => false,
    }
}

/// `values` and `notValues` of one field: some value matches, no notValue matches; an
/// empty list is no constraint.
fn field(values: &[String], not_values: &[String], mut m: impl FnMut(&str) -> bool) -> bool {
    (values.is_empty() || values.iter().any(|v| m(v))) && !not_values.iter().any(|v| m(v))
}

/// A field on an address or port: when the host could not tell it, the whole field counts
/// as `unknown` (true inside DENY / AUDIT rules, false inside ALLOW rules: fail closed).
fn address_field<T: Copy>(
    fact: Option<T>,
    values: &[String],
    not_values: &[String],
    unknown: bool,
    m: impl Fn(&str, T) -> bool,
) -> bool {
    if values.is_empty() && not_values.is_empty() {
        return true;
    }
    match fact {
        Some(x) => field(values, not_values, |v| m(v, x)),
        None => unknown,
    }
}

fn path_only(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or("")
}

fn template(t: &str, path: &str) -> bool {
    let ts: Vec<&str> = t.split('/').collect();
    let ps: Vec<&str> = path.split('/').collect();
    let ok_chars = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=".contains(&b))
    };
    for (i, seg) in ts.iter().enumerate() {
        if *seg == "{**}" && i == ts.len() - 1 {
            return ps.len() >= i && ps[i.min(ps.len())..].iter().all(|s| ok_chars(s));
        }
        let Some(p) = ps.get(i) else { return false };
        if *seg == "{*}" {
            if p.is_empty() || !ok_chars(p) {
                return false;
            }
        } else if seg != p {
            return false;
        }
    }
    ps.len() == ts.len()
}

fn path_value(pattern: &str, path: &str) -> bool {
    if pattern.contains("{*}") || pattern.contains("{**}") {
        template(pattern, path)
    } else {
        glob(pattern, path, false)
    }
}

/// Every value of a header; patched Envoy matches each on its own (CVE-2026-26308).
fn header_values<'a>(r: &'a Req, name: &str) -> Vec<&'a str> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn namespace_of(principal: &str) -> Option<&str> {
    let parts: Vec<&str> = principal.split('/').collect();
    (parts.len() == 5 && parts[1] == "ns").then(|| parts[2])
}

/// Whether a source field set matches. `tcp`: HTTP-only fields are dropped (DENY) — the
/// caller has already skipped ALLOW rules that use them. `unknown`: what a field on an
/// unknown address counts as.
fn source_matches(s: &Source, r: &Req, tcp: bool, unknown: bool) -> bool {
    let principal = r.principal.as_deref();
    let p = |v: &str| principal.is_some_and(|p| glob(v, p, true));
    let ns = |v: &str| {
        principal
            .and_then(namespace_of)
            .is_some_and(|n| glob(v, n, false))
    };
    let jwt = |v: &str| {
        r.auth
            .as_ref()
            .is_some_and(|a| if v == "*" { true } else { a.principal == v })
    };
    field(&s.principals, &s.not_principals, p)
        && field(&s.namespaces, &s.not_namespaces, ns)
        && address_field(
            r.direct_remote_ip,
            &s.ip_blocks,
            &s.not_ip_blocks,
            unknown,
            in_cidr,
        )
        && address_field(
            r.remote_ip,
            &s.remote_ip_blocks,
            &s.not_remote_ip_blocks,
            unknown,
            in_cidr,
        )
        && (tcp || field(&s.request_principals, &s.not_request_principals, jwt))
}

fn operation_matches(o: &Operation, r: &Req, tcp: bool, unknown: bool) -> bool {
    let ports = address_field(
        r.destination_port,
        &o.ports,
        &o.not_ports,
        unknown,
        |v, p| v.parse::<u16>() == Ok(p),
    );
    if tcp {
        return ports;
    }
    let host = |v: &str| glob(&v.to_ascii_lowercase(), &r.host.to_ascii_lowercase(), true);
    let method = |v: &str| glob(v, &r.method, true);
    let path = |v: &str| path_value(v, path_only(&r.path));
    ports
        && field(&o.hosts, &o.not_hosts, host)
        && field(&o.methods, &o.not_methods, method)
        && field(&o.paths, &o.not_paths, path)
}

fn condition_matches(c: &Condition, r: &Req, tcp: bool, unknown: bool) -> bool {
    let key = c.key.as_str();
    if let Some(name) = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        if tcp {
            return true;
        }
        let values = header_values(r, name);
        return field(&c.values, &c.not_values, |v| {
            values.iter().any(|h| glob(v, h, true))
        });
    }
    match key {
        "source.ip" => address_field(
            r.direct_remote_ip,
            &c.values,
            &c.not_values,
            unknown,
            in_cidr,
        ),
        "destination.port" => address_field(
            r.destination_port,
            &c.values,
            &c.not_values,
            unknown,
            |v, p| v.parse::<u16>() == Ok(p),
        ),
        "connection.sni" => field(&c.values, &c.not_values, |v| {
            r.sni.as_deref().is_some_and(|s| glob(v, s, false))
        }),
        other => panic!("reference evaluator does not know {other}"),
    }
}

fn uses_http_only(rule: &Rule) -> bool {
    let src = rule
        .from
        .iter()
        .filter_map(|f| f.source.as_ref())
        .any(|s| !s.request_principals.is_empty() || !s.not_request_principals.is_empty());
    let op = rule
        .to
        .iter()
        .filter_map(|t| t.operation.as_ref())
        .any(|o| {
            !(o.hosts.is_empty()
                && o.not_hosts.is_empty()
                && o.methods.is_empty()
                && o.not_methods.is_empty()
                && o.paths.is_empty()
                && o.not_paths.is_empty())
        });
    let cond = rule.when.iter().any(|c| c.key.starts_with("request."));
    src || op || cond
}

/// istio.io Rule: "a match occurs when at least one source, one operation and all
/// conditions matches the request"; empty `from` / `to` match anything.
fn rule_matches(rule: &Rule, r: &Req, tcp: bool, unknown: bool) -> bool {
    let from = rule.from.is_empty()
        || rule.from.iter().any(|f| {
            f.source
                .as_ref()
                .is_none_or(|s| source_matches(s, r, tcp, unknown))
        });
    let to = rule.to.is_empty()
        || rule.to.iter().any(|t| {
            t.operation
                .as_ref()
                .is_none_or(|o| operation_matches(o, r, tcp, unknown))
        });
    let when = rule
        .when
        .iter()
        .all(|c| condition_matches(c, r, tcp, unknown));
    from && to && when
}

fn applies(p: &AuthorizationPolicy, cfg: &EngineConfig) -> bool {
    let ns = &p.metadata.namespace;
    (ns == &cfg.root_namespace || ns == &cfg.workload.namespace)
        && p.spec.target_ref.is_none()
        && p.spec.target_refs.is_empty()
        && p.spec.selector.as_ref().is_none_or(|s| {
            s.match_labels
                .iter()
                .all(|(k, v)| cfg.workload.labels.get(k) == Some(v))
        })
}

fn dry(p: &AuthorizationPolicy) -> bool {
    matches!(
        p.metadata
            .annotations
            .get("istio.io/dry-run")
            .map(String::as_str),
        Some("true" | "True" | "TRUE" | "t" | "T" | "1")
    )
}

/// Matching (policy, rule) pairs of one action, in Envoy's order (by the generated name).
fn matches_of(
    policies: &[&AuthorizationPolicy],
    action: Action,
    r: &Req,
    tcp: bool,
) -> Option<String> {
    let mut hits: Vec<(String, String)> = Vec::new();
    for p in policies.iter().filter(|p| p.action() == action) {
        for (i, rule) in p.spec.rules.iter().flatten().enumerate() {
            if tcp && action == Action::Allow && uses_http_only(rule) {
                continue;
            }
            // An unknown address widens DENY / AUDIT and narrows ALLOW.
            if rule_matches(rule, r, tcp, action != Action::Allow) {
                let envoy_name = format!(
                    "ns[{}]-policy[{}]-rule[{i}]",
                    p.metadata.namespace, p.metadata.name
                );
                hits.push((envoy_name, format!("{} rule {i}", p.key())));
            }
        }
    }
    hits.sort();
    hits.into_iter().next().map(|(_, shown)| shown)
}

fn outcome(policies: &[&AuthorizationPolicy], r: &Req, tcp: bool) -> String {
    if let Some(hit) = matches_of(policies, Action::Deny, r, tcp) {
        return format!("deny: denied by {hit}");
    }
    if !policies.iter().any(|p| p.action() == Action::Allow) {
        return "allow: no ALLOW policy applies".to_owned();
    }
    match matches_of(policies, Action::Allow, r, tcp) {
        Some(hit) => format!("allow: allowed by {hit}"),
        None => "deny: no ALLOW policy matched".to_owned(),
    }
}

/// The decision line Istio's configuration would produce for `r`.
pub fn decide(policies: &[AuthorizationPolicy], cfg: &EngineConfig, r: &Req) -> String {
    if !r.tcp && (r.path.contains('#') || !r.path.starts_with('/')) {
        return "deny: request path cannot be normalized".to_owned();
    }
    let tcp = r.tcp;
    let applicable: Vec<&AuthorizationPolicy> =
        policies.iter().filter(|p| applies(p, cfg)).collect();
    let enforced: Vec<&AuthorizationPolicy> = applicable
        .iter()
        .copied()
        .filter(|p| !dry(p) || p.action() == Action::Audit)
        .collect();
    let shadow: Vec<&AuthorizationPolicy> = applicable
        .iter()
        .copied()
        .filter(|p| dry(p) && p.action() != Action::Audit)
        .collect();
    let mut line = outcome(&enforced, r, tcp);
    if !shadow.is_empty() {
        let (verdict, reason) = outcome(&shadow, r, tcp)
            .split_once(": ")
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        line.push_str(&format!("; dry-run: {verdict} ({reason})"));
    }
    if let Some(hit) = matches_of(&enforced, Action::Audit, r, tcp) {
        line.push_str(&format!("; audit: {hit}"));
    }
    line
}
