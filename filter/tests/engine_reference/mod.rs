//! A deliberately naive evaluator written from the text of Istio's AuthorizationPolicy
//! reference (istio.io "Authorization Policy" and "Authorization Policy Conditions"), for
//! differential tests against the compiled engine. No indexing, no precompilation: every
//! request re-reads the policies as written.
//!
//! Where the reference docs leave a detail open, the rule followed is Istio's generator
//! (`pilot/pkg/security/authz/model/generator.go`, `model.go`), its trust-domain bundle
//! (`pilot/pkg/security/trustdomain/bundle.go`) and builder (`builder/builder.go`); each such
//! place names its source. The evaluator covers what the differential generator produces:
//! every `Source` and `Operation` field and its `notX`, the condition keys
//! `request.headers[..]` (pseudo-headers included), `source.ip`, `remote.ip`,
//! `destination.ip`, `destination.port`, `connection.sni`, `source.principal`,
//! `source.namespace`, `source.serviceAccount`, `request.auth.principal`,
//! `request.auth.audiences`, `request.auth.presenter`, `request.auth.claims[..]`,
//! `experimental.envoy.filters.<filter>[<key>]` (`envoyFilterGenerator`), keys Istio admits
//! but cannot translate (`checkError`); ALLOW / DENY / AUDIT, dry-run, scope by root
//! namespace, namespace, selector and targetRef (`ShouldAttachPolicy`, Gateway API gateways
//! included), trust-domain aliases, `pathNormalization` options on paths without escapes,
//! TCP connections and addresses or metadata the host could not tell. Its output is the
//! engine's one-line `Decision` format so the two compare as strings.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::IpAddr;

use spiffe_authz::engine::EngineConfig;
use spiffe_authz::normalize::PathNormalization;
use spiffe_authz::policy::{Action, AuthorizationPolicy, Condition, Operation, Rule, Source};

use super::engine_support::{Meta, Req};

/// Istio's string match on a value: `*` alone is presence, `*x` a suffix, `x*` a prefix,
/// anything else exact. `star_allows_empty`: whether presence is satisfied by an empty value
/// (header-like fields: Envoy `present_match`; elsewhere Istio emits the regex `.+`, which
/// RE2 never matches across a `\n`).
fn glob(pattern: &str, value: &str, star_allows_empty: bool) -> bool {
    if pattern == "*" {
        star_allows_empty || (!value.is_empty() && !value.contains('\n'))
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
            // Istio `util.AddrStrToCidrRange` builds the range with `netip.PrefixFrom`,
            // which keeps no zone: `fe80::1%eth0` is `fe80::1/128`.
            let a = block.split('%').next().unwrap().parse::<IpAddr>().unwrap();
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

fn port_is(v: &str, p: u16) -> bool {
    v.parse::<u16>() == Ok(p)
}

/// `values` and `notValues` of one field: some value matches, no notValue matches; an
/// empty list is no constraint.
fn field(values: &[String], not_values: &[String], mut m: impl FnMut(&str) -> bool) -> bool {
    (values.is_empty() || values.iter().any(|v| m(v))) && !not_values.iter().any(|v| m(v))
}

/// A field on an address or port: when the host could not tell it, the whole field counts
/// as `unknown` (true inside DENY / AUDIT rules, false inside ALLOW rules: fail closed, the
/// way Istio's builder widens DENY and narrows ALLOW for what a filter cannot evaluate).
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

/// RFC 3986 section 5.2.4 "Remove Dot Segments" on an absolute path: `.` segments go, `..`
/// takes the segment before it (never above the root), and a path ending in either keeps a
/// trailing `/`.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let mut kept: Vec<&str> = Vec::new();
    for s in &segments {
        match *s {
            "." => {}
            ".." => {
                kept.pop();
            }
            _ => kept.push(s),
        }
    }
    let mut out = format!("/{}", kept.join("/"));
    if matches!(segments.last(), Some(&("." | ".."))) && !kept.is_empty() {
        out.push('/');
    }
    out
}

/// RFC 3986 section 6.2.2.2: an escaped unreserved character (ALPHA, DIGIT, `-._~`) is that
/// character, in either case of hex digits; Chromium's canonicalizer unescapes exactly these
/// in a path (so `%2e` is a dot before dot segments are removed), other escapes stay.
fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let hex = path
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(c) if b[i] == b'%' && (c.is_ascii_alphanumeric() || b"-._~".contains(&c)) => {
                out.push(char::from(c));
                i += 3;
            }
            _ => {
                out.push(char::from(b[i]));
                i += 1;
            }
        }
    }
    out
}

/// The path (query and fragment cut) after the HCM settings Istio's
/// `meshConfig.pathNormalization` option turns on (istio.io ProxyConfig / MeshConfig
/// "ProxyPathNormalization"), in Envoy's order (`ConnectionManagerUtility::maybeNormalizePath`):
/// DECODE_AND_MERGE_SLASHES first unescapes `%2F` / `%5C` in either case
/// (`UNESCAPE_AND_FORWARD`); BASE and up canonicalize (Chromium: `\` is a `/`, escaped
/// unreserved characters unescaped, RFC 3986 dot segments); MERGE_SLASHES and up merge slashes. Paths are drawn under an
/// option only with the escapes these steps model (`plain_path` in the test), so nothing
/// else of the canonicalizer is at play.
fn normalized(path: &str, option: PathNormalization) -> String {
    let path = path_only(path);
    if option == PathNormalization::None {
        return path.to_owned();
    }
    // Every operation of every rule asks again for the same request: keep the last answer.
    thread_local! {
        static LAST: std::cell::RefCell<(String, Option<PathNormalization>, String)> =
            const { std::cell::RefCell::new((String::new(), None, String::new())) };
    }
    if let Some(hit) =
        LAST.with_borrow(|(p, o, n)| (p == path && *o == Some(option)).then(|| n.clone()))
    {
        return hit;
    }
    let n = normalize_uncached(path, option);
    LAST.set((path.to_owned(), Some(option), n.clone()));
    n
}

fn normalize_uncached(path: &str, option: PathNormalization) -> String {
    let unescaped;
    let path = if option == PathNormalization::DecodeAndMergeSlashes {
        unescaped = path
            .replace("%2F", "/")
            .replace("%2f", "/")
            .replace("%5C", "\\")
            .replace("%5c", "\\");
        unescaped.as_str()
    } else {
        path
    };
    let canonical = remove_dot_segments(&decode_unreserved(&path.replace('\\', "/")));
    match option {
        PathNormalization::None => path.to_owned(),
        PathNormalization::Base => canonical,
        PathNormalization::MergeSlashes | PathNormalization::DecodeAndMergeSlashes => {
            let mut merged = String::new();
            for c in canonical.chars() {
                if !(c == '/' && merged.ends_with('/')) {
                    merged.push(c);
                }
            }
            merged
        }
    }
}

/// `:path` as the RBAC filter reads it: the normalized path with the query (the HCM cut the
/// fragment before normalizing; Envoy's normalization leaves the query alone).
fn path_header(path: &str, option: PathNormalization) -> String {
    let no_fragment = path.split('#').next().unwrap_or_default();
    match no_fragment.split_once('?') {
        Some((_, query)) => format!("{}?{query}", normalized(path, option)),
        None => normalized(path, option),
    }
}

/// Envoy's `uri_template` path characters (RFC 3986 pchar minus `*`, `/`).
fn path_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=".contains(&b))
}

/// istio.io Operation.paths: `{*}` is exactly one non-empty segment, `{**}` one or more
/// segments (empty ones included: `/a/{**}` matches `/a/` but not `/a`), and it must be the
/// last operator. Checked segment by segment on the path split at `/`.
fn template(t: &[&str], p: &[&str]) -> bool {
    match t.split_first() {
        None => p.is_empty(),
        Some((&"{**}", rest)) => {
            (1..=p.len()).any(|k| p[..k].iter().all(|s| path_chars(s)) && template(rest, &p[k..]))
        }
        Some((seg, rest)) => match p.split_first() {
            None => false,
            Some((s, p_rest)) => {
                let here = if *seg == "{*}" {
                    !s.is_empty() && path_chars(s)
                } else {
                    seg == s
                };
                here && template(rest, p_rest)
            }
        },
    }
}

fn path_value(pattern: &str, path: &str) -> bool {
    if pattern.contains("{*}") || pattern.contains("{**}") {
        let t: Vec<&str> = pattern.split('/').collect();
        let p: Vec<&str> = path.split('/').collect();
        template(&t, &p)
    } else {
        glob(pattern, path, false)
    }
}

/// Every value of a header, pseudo-headers included (Envoy's header map has them), each
/// matched on its own as patched Envoy does (CVE-2026-26308).
fn header_values(r: &Req, name: &str, option: PathNormalization) -> Vec<String> {
    // The HCM strips the fragment and normalizes before any filter reads `:path`.
    let path = if name.eq_ignore_ascii_case(":path") {
        path_header(&r.path, option)
    } else {
        String::new()
    };
    let pseudo = [
        (":method", r.method.as_str()),
        (":path", path.as_str()),
        (":authority", r.host.as_str()),
    ];
    r.headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(pseudo)
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.to_owned())
        .collect()
}

/// `*` in `pattern` is any run of characters (the regex `.*`); everything else is literal.
fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (head.len()..=text.len())
                    .any(|at| text.is_char_boundary(at) && wildcard(tail, &text[at..]))
        }
    }
}

/// Every index where `needle` starts in `hay`, overlapping ones included (`/ns/ns/foo/`
/// holds `/ns/` twice).
fn occurrences(hay: &str, needle: &str) -> Vec<usize> {
    (0..hay.len())
        .filter(|&i| hay.get(i..).is_some_and(|rest| rest.starts_with(needle)))
        .collect()
}

/// The URI SAN the peer presented, as Istio's regexes see it.
fn uri(principal: &str) -> String {
    format!("spiffe://{principal}")
}

/// The trust domains a policy's `cluster.local` and local/alias trust domains stand for:
/// the local one first, then the aliases (istio.io MeshConfig `trustDomainAliases`).
fn bundle(cfg: &EngineConfig) -> Vec<&str> {
    let mut b = vec![cfg.trust_domain.as_str()];
    b.extend(cfg.trust_domain_aliases.iter().map(String::as_str));
    b
}

/// A `principals` value against the peer. istio.io trust-domain migration: a value whose
/// trust domain is the local one, an alias, or `cluster.local` means that identity in every
/// trust domain of the bundle (and nothing else); any other value is matched as written
/// (Istio `trustdomain.Bundle.ReplaceTrustDomainAliases`). `*` is any authenticated peer.
fn principal_value(v: &str, principal: Option<&str>, cfg: &EngineConfig) -> bool {
    let Some(p) = principal else { return false };
    let parts: Vec<&str> = v.split('/').collect();
    let td = parts[0];
    let rewritten =
        parts.len() == 5 && td != "*" && (bundle(cfg).contains(&td) || td == "cluster.local");
    if rewritten {
        let rest = &v[td.len()..];
        bundle(cfg)
            .iter()
            .any(|d| glob(&format!("{d}{rest}"), p, true))
    } else {
        glob(v, p, true)
    }
}

/// istio.io Source.namespaces: the peer's namespace. Istio matches it as the regex
/// `.*/ns/<value>/.*` on the whole URI SAN (`srcNamespaceGenerator`), so any `/ns/<name>/`
/// in the SPIFFE ID's path counts, whatever its shape.
fn namespace_value(v: &str, principal: Option<&str>) -> bool {
    let Some(p) = principal else { return false };
    let u = uri(p);
    occurrences(&u, "/ns/").into_iter().any(|i| {
        let rest = &u[i + 4..];
        rest.match_indices('/')
            .any(|(j, _)| wildcard(v, &rest[..j]))
    })
}

/// istio.io Source.serviceAccounts: `<namespace>/<name>`, or `<name>` in the policy's own
/// namespace, both literal; Istio's regex `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?` on the URI
/// SAN (`serviceAccountRegex`).
fn service_account_value(v: &str, principal: Option<&str>, policy_ns: &str) -> bool {
    let (ns, sa) = v.split_once('/').unwrap_or((policy_ns, v));
    let Some(p) = principal else { return false };
    let u = uri(p);
    let ns_part = format!("/ns/{ns}/");
    let sa_part = format!("sa/{sa}");
    occurrences(&u, &ns_part)
        .into_iter()
        .filter(|i| *i > "spiffe://".len())
        .any(|i| {
            let after = &u[i + ns_part.len()..];
            let middles = std::iter::once(0).chain(
                after
                    .match_indices('/')
                    .map(|(k, _)| k + 1)
                    .filter(|k| *k > 1),
            );
            middles.into_iter().any(|k| {
                after[k..].strip_prefix(&sa_part).is_some_and(|r| {
                    r.is_empty() || r.strip_prefix('/').is_some_and(|x| !x.is_empty())
                })
            })
        })
}

/// Source.trustDomains: the peer's trust domain (before the first `/`); naming the local trust domain or an alias
/// names all of them.
fn trust_domain_value(v: &str, principal: Option<&str>, cfg: &EngineConfig) -> bool {
    let Some(td) = principal.map(|p| p.split('/').next().unwrap_or(p)) else {
        return false;
    };
    let b = bundle(cfg);
    glob(v, td, false) || (b.contains(&v) && b.contains(&td))
}

/// `requestPrincipals` / `request.auth.principal`: `<iss>/<sub>` of the JWT, each half
/// matched on its own (Istio `requestPrincipalGenerator.extendedPrincipal`). The value splits
/// at its last `/`. `*` alone: both halves present (`.+`). A leading `*`: with a `/`, the
/// issuer is `*` = `.+` or `*x` = suffix `x` and the subject is exact (a `*` in it literal);
/// without one, any issuer and the subject ends with the rest. A trailing `*` (and no leading
/// one): with a `/`, the issuer is exact and the subject `*` = `.+` or `x*` = prefix `x`;
/// without one, the issuer starts with the rest and any subject. Anything else: both exact.
fn request_principal_value(v: &str, r: &Req) -> bool {
    let Some(auth) = &r.auth else { return false };
    let claim = |k: &str| {
        auth.claims
            .as_ref()
            .and_then(|c| c.get(k))
            .and_then(|x| x.as_str())
            .map(str::to_owned)
    };
    let (iss, sub) = match (claim("iss"), claim("sub")) {
        (Some(i), Some(s)) => (i, s),
        _ => {
            let (i, s) = auth.principal.rsplit_once('/').unwrap();
            (i.to_owned(), s.to_owned())
        }
    };
    // `.+` under RE2: at least one character, none of them a newline.
    let any = |x: &str| !x.is_empty() && !x.contains('\n');
    let split = v.rsplit_once('/');
    if v == "*" {
        return any(&iss) && any(&sub);
    }
    if let Some(rest) = v.strip_prefix('*') {
        return match split {
            Some((vi, vs)) => {
                let iss_ok = if vi == "*" {
                    any(&iss)
                } else {
                    iss.ends_with(&vi[1..])
                };
                iss_ok && sub == vs
            }
            None => any(&iss) && sub.ends_with(rest),
        };
    }
    if let Some(rest) = v.strip_suffix('*') {
        return match split {
            Some((vi, vs)) => {
                let sub_ok = if vs == "*" {
                    any(&sub)
                } else {
                    sub.starts_with(&vs[..vs.len() - 1])
                };
                iss == vi && sub_ok
            }
            None => iss.starts_with(rest) && any(&sub),
        };
    }
    match split {
        Some((vi, vs)) => iss == vi && sub == vs,
        // No `/`: Istio matches the issuer against the whole value and the subject against "".
        None => iss == v && sub.is_empty(),
    }
}

fn claim_value(v: &str, r: &Req, path: &[&str]) -> bool {
    let Some(mut at) = r.auth.as_ref().and_then(|a| a.claims.as_ref()) else {
        return false;
    };
    for key in path {
        match at.get(*key) {
            Some(next) => at = next,
            None => return false,
        }
    }
    match at {
        serde_json::Value::String(s) => glob(v, s, false),
        serde_json::Value::Array(items) => items
            .iter()
            .any(|x| x.as_str().is_some_and(|s| glob(v, s, false))),
        _ => false,
    }
}

/// Istio's `matcher.StringMatcher` on a metadata string: `*` is the regex `.+` (RE2 `.`
/// stops at `\n`), `*x` a suffix, `x*` a prefix, else exact.
fn metadata_string(pattern: &str, value: &str) -> bool {
    glob(pattern, value, false)
}

/// One `values` entry of `experimental.envoy.filters.<filter>[<key>]` against the value the
/// host told. Istio `envoyFilterGenerator.permission`: a value that starts with `[` and ends
/// with `]` becomes `list_match.one_of` on the value with every leading and trailing bracket
/// trimmed (Go `strings.Trim(v, "[]")`), any other a `string_match`. Envoy's
/// `ValueMatcher`s only match their own kind of `google.protobuf.Value`: a string matcher
/// never a list, number or unset value; a list matcher only a list with a matching string
/// element (`source/common/common/matchers.cc`).
fn metadata_value(v: &str, told: &Meta) -> bool {
    if v.starts_with('[') && v.ends_with(']') {
        let inner = v.trim_matches(['[', ']']);
        match told {
            Meta::List(items) => items.iter().any(|s| metadata_string(inner, s)),
            _ => false,
        }
    } else {
        match told {
            Meta::Str(s) => metadata_string(v, s),
            _ => false,
        }
    }
}

/// Keys Istio's validation admits (`security.go` `validateMapKey` checks only the `a[b]`
/// shape) but its generators cannot read: `request.headers` and `request.auth.claims`
/// followed by anything but `[` (`extractNameInBrackets` / `extractNameInNestedBrackets`
/// fail), and the inline-header key the plugin does not implement. Istio's `checkError`
/// drops the ALLOW rule using one and ignores the condition anywhere else.
fn untranslatable(key: &str) -> bool {
    let unreadable = |prefix: &str| {
        key.strip_prefix(prefix)
            .is_some_and(|rest| !rest.starts_with('['))
    };
    unreadable("request.headers")
        || unreadable("request.auth.claims")
        || key.starts_with("request.experimental.inline.headers")
}

/// Everything a match needs besides the request.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    cfg: &'a EngineConfig,
    policy_ns: &'a str,
    /// TCP connection: HTTP-only fields are dropped (DENY / AUDIT; ALLOW rules using them
    /// were skipped by the caller).
    tcp: bool,
    /// What a field on an unknown address counts as.
    unknown: bool,
}

fn source_matches(s: &Source, r: &Req, x: Ctx<'_>) -> bool {
    let principal = r.principal.as_deref();
    field(&s.principals, &s.not_principals, |v| {
        principal_value(v, principal, x.cfg)
    }) && field(&s.namespaces, &s.not_namespaces, |v| {
        namespace_value(v, principal)
    }) && field(&s.service_accounts, &s.not_service_accounts, |v| {
        service_account_value(v, principal, x.policy_ns)
    }) && field(&s.trust_domains, &s.not_trust_domains, |v| {
        trust_domain_value(v, principal, x.cfg)
    }) && address_field(
        r.direct_remote_ip,
        &s.ip_blocks,
        &s.not_ip_blocks,
        x.unknown,
        in_cidr,
    ) && address_field(
        r.remote_ip,
        &s.remote_ip_blocks,
        &s.not_remote_ip_blocks,
        x.unknown,
        in_cidr,
    ) && (x.tcp
        || field(&s.request_principals, &s.not_request_principals, |v| {
            request_principal_value(v, r)
        }))
}

fn operation_matches(o: &Operation, r: &Req, x: Ctx<'_>) -> bool {
    let ports = address_field(
        r.destination_port,
        &o.ports,
        &o.not_ports,
        x.unknown,
        port_is,
    );
    if x.tcp {
        return ports;
    }
    // istio.io Operation.hosts: case-insensitive, compared with `:authority` as sent.
    let host = |v: &str| glob(&v.to_ascii_lowercase(), &r.host.to_ascii_lowercase(), true);
    let method = |v: &str| glob(v, &r.method, true);
    let normalized_path = normalized(&r.path, x.cfg.path_normalization);
    let path = |v: &str| path_value(v, &normalized_path);
    ports
        && field(&o.hosts, &o.not_hosts, host)
        && field(&o.methods, &o.not_methods, method)
        && field(&o.paths, &o.not_paths, path)
}

fn condition_matches(c: &Condition, r: &Req, x: Ctx<'_>) -> bool {
    let key = c.key.as_str();
    let (vs, nvs) = (&c.values, &c.not_values);
    if untranslatable(key) {
        return true;
    }
    if let Some((filter, metadata_key)) = key
        .strip_prefix("experimental.")
        .and_then(|k| k.strip_suffix(']'))
        .and_then(|k| k.split_once('['))
    {
        // Not HTTP-only: Istio emits it for TCP filter chains too. A pair the host could
        // not tell fails closed like an unknown address.
        let told = r
            .metadata
            .iter()
            .find(|(f, k, _)| f == filter && k == metadata_key)
            .map(|(_, _, v)| v);
        return match told {
            Some(told) => field(vs, nvs, |v| metadata_value(v, told)),
            None => x.unknown,
        };
    }
    if key.starts_with("request.") && x.tcp {
        return true;
    }
    if let Some(name) = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        let values = header_values(r, name, x.cfg.path_normalization);
        return field(vs, nvs, |v| values.iter().any(|h| glob(v, h, true)));
    }
    if let Some(path) = key
        .strip_prefix("request.auth.claims[")
        .and_then(|k| k.strip_suffix(']'))
    {
        let path: Vec<&str> = path.split("][").collect();
        return field(vs, nvs, |v| claim_value(v, r, &path));
    }
    let principal = r.principal.as_deref();
    let auth = r.auth.as_ref();
    match key {
        "source.ip" => address_field(r.direct_remote_ip, vs, nvs, x.unknown, in_cidr),
        "remote.ip" => address_field(r.remote_ip, vs, nvs, x.unknown, in_cidr),
        "destination.ip" => address_field(r.destination_ip, vs, nvs, x.unknown, in_cidr),
        "destination.port" => address_field(r.destination_port, vs, nvs, x.unknown, port_is),
        "connection.sni" => field(vs, nvs, |v| {
            r.sni.as_deref().is_some_and(|s| glob(v, s, false))
        }),
        "source.principal" => field(vs, nvs, |v| principal_value(v, principal, x.cfg)),
        "source.namespace" => field(vs, nvs, |v| namespace_value(v, principal)),
        "source.serviceAccount" => field(vs, nvs, |v| {
            service_account_value(v, principal, x.policy_ns)
        }),
        "request.auth.principal" => field(vs, nvs, |v| request_principal_value(v, r)),
        "request.auth.audiences" => field(vs, nvs, |v| {
            auth.is_some_and(|a| a.audiences.iter().any(|aud| glob(v, aud, false)))
        }),
        "request.auth.presenter" => field(vs, nvs, |v| {
            auth.and_then(|a| a.presenter.as_deref())
                .is_some_and(|p| glob(v, p, false))
        }),
        other => panic!("reference evaluator does not know {other}"),
    }
}

/// Istio's generators that are "HTTP only" (builder.go builds TCP filters without them).
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
fn rule_matches(rule: &Rule, r: &Req, x: Ctx<'_>) -> bool {
    let from = rule.from.is_empty()
        || rule
            .from
            .iter()
            .any(|f| f.source.as_ref().is_none_or(|s| source_matches(s, r, x)));
    let to = rule.to.is_empty()
        || rule.to.iter().any(|t| {
            t.operation
                .as_ref()
                .is_none_or(|o| operation_matches(o, r, x))
        });
    let when = rule.when.iter().all(|c| condition_matches(c, r, x));
    from && to && when
}

/// istio.io: a policy in the root namespace applies to every workload, elsewhere to its own
/// namespace; its selector must match the workload's labels; `targetRef(s)` policies are for
/// gateways and waypoints, never a sidecar.
///
/// A workload labelled `gateway.networking.k8s.io/gateway-name: <gw>` is a Gateway API
/// gateway: it applies the `targetRef(s)` policies of its namespace naming the `Gateway` `<gw>`
/// (Istio `ShouldAttachPolicy`).
fn applies(p: &AuthorizationPolicy, cfg: &EngineConfig) -> bool {
    let ns = &p.metadata.namespace;
    // Istio `GetTargetRefs`: `targetRefs`, and the legacy `targetRef` only when that is empty.
    let refs: Vec<_> = if p.spec.target_refs.is_empty() {
        p.spec.target_ref.iter().collect()
    } else {
        p.spec.target_refs.iter().collect()
    };
    // A `GatewayClass` reference attaches only to waypoints (`ShouldAttachPolicy`), which
    // this filter never guards; a `Service` one likewise.
    if !refs.is_empty() {
        let gateway = cfg
            .workload
            .labels
            .get("gateway.networking.k8s.io/gateway-name");
        return gateway.is_some_and(|gw| {
            ns == &cfg.workload.namespace
                && refs.iter().any(|r| {
                    r.group == "gateway.networking.k8s.io"
                        && r.kind == "Gateway"
                        && &r.name == gw
                        && (r.namespace.is_empty() || r.namespace == cfg.workload.namespace)
                })
        });
    }
    (ns == &cfg.root_namespace || ns == &cfg.workload.namespace)
        && p.spec.selector.as_ref().is_none_or(|s| {
            s.match_labels
                .iter()
                .all(|(k, v)| cfg.workload.labels.get(k) == Some(v))
        })
}

/// `istio.io/dry-run` read as Go's `strconv.ParseBool` reads "true" (Istio builder).
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
    cfg: &EngineConfig,
) -> Option<String> {
    let mut hits: Vec<(String, String)> = Vec::new();
    for p in policies.iter().filter(|p| p.action() == action) {
        for (i, rule) in p.spec.rules.iter().flatten().enumerate() {
            if r.tcp && action == Action::Allow && uses_http_only(rule) {
                continue;
            }
            if action == Action::Allow && rule.when.iter().any(|c| untranslatable(&c.key)) {
                continue;
            }
            let x = Ctx {
                cfg,
                policy_ns: &p.metadata.namespace,
                tcp: r.tcp,
                // An unknown address widens DENY / AUDIT and narrows ALLOW.
                unknown: action != Action::Allow,
            };
            if rule_matches(rule, r, x) {
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

fn outcome(policies: &[&AuthorizationPolicy], r: &Req, cfg: &EngineConfig) -> String {
    if let Some(hit) = matches_of(policies, Action::Deny, r, cfg) {
        return format!("deny: denied by {hit}");
    }
    if !policies.iter().any(|p| p.action() == Action::Allow) {
        return "allow: no ALLOW policy applies".to_owned();
    }
    match matches_of(policies, Action::Allow, r, cfg) {
        Some(hit) => format!("allow: allowed by {hit}"),
        None => "deny: no ALLOW policy matched".to_owned(),
    }
}

/// Envoy refuses these request lines before any filter runs (an empty path, NUL/CR/LF, not
/// absolute). A `#fragment` is not refused: Istio's bootstrap has the HCM strip it.
fn invalid_path(path: &str) -> bool {
    path.is_empty() || path.contains(['\0', '\r', '\n']) || !path.starts_with('/')
}

/// The decision line Istio's configuration would produce for `r`.
pub fn decide(policies: &[AuthorizationPolicy], cfg: &EngineConfig, r: &Req) -> String {
    if !r.tcp && invalid_path(&r.path) {
        return "deny: request path cannot be normalized".to_owned();
    }
    let applicable: Vec<&AuthorizationPolicy> =
        policies.iter().filter(|p| applies(p, cfg)).collect();
    // Istio's builder puts a dry-run policy of any action (AUDIT too) into that action's
    // shadow rules. Envoy runs the RBAC filters AUDIT, DENY, ALLOW, each one's shadow rules
    // before its enforced ones (rbac_filter.cc), and a request the enforced DENY denied never
    // reaches the ALLOW filter, so its dry-run ALLOW rules are not evaluated.
    let enforced: Vec<&AuthorizationPolicy> =
        applicable.iter().copied().filter(|p| !dry(p)).collect();
    let shadow: Vec<&AuthorizationPolicy> = applicable.iter().copied().filter(|p| dry(p)).collect();
    let has_shadow = |action| shadow.iter().any(|p| p.action() == action);
    let mut line = outcome(&enforced, r, cfg);
    let reaches_allow_filter = !line.starts_with("deny: denied by");
    let shadow_deny = matches_of(&shadow, Action::Deny, r, cfg);
    // One dry-run verdict: a dry-run DENY match; else the dry-run ALLOW rules' answer when
    // they ran; else "allow" when only dry-run DENY policies exist.
    let dry_run = match shadow_deny {
        Some(hit) => Some(format!("deny (denied by {hit})")),
        None if has_shadow(Action::Allow) && reaches_allow_filter => {
            Some(match matches_of(&shadow, Action::Allow, r, cfg) {
                Some(hit) => format!("allow (allowed by {hit})"),
                None => "deny (no ALLOW policy matched)".to_owned(),
            })
        }
        None if has_shadow(Action::Deny) && !has_shadow(Action::Allow) => {
            Some("allow (no ALLOW policy applies)".to_owned())
        }
        None => None,
    };
    if let Some(verdict) = dry_run {
        line.push_str(&format!("; dry-run: {verdict}"));
    }
    if let Some(hit) = matches_of(&enforced, Action::Audit, r, cfg) {
        line.push_str(&format!("; audit: {hit}"));
    }
    if let Some(hit) = matches_of(&shadow, Action::Audit, r, cfg) {
        line.push_str(&format!("; dry-run audit: {hit}"));
    }
    line
}
