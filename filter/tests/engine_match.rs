//! Field matching: one row per Istio behaviour of a `from` / `to` / `when` field, each run
//! twice, as the only rule of an ALLOW policy and of a DENY policy, so a row pins both
//! "allowed by" and "denied by".
//!
//! Sources named in rows:
//! - GEN: istio/istio `pilot/pkg/security/authz/model/generator.go`
//! - MODEL: istio/istio `pilot/pkg/security/authz/model/model.go` (`New`, `Generate`)
//! - MATCHER: istio/istio `pilot/pkg/security/authz/matcher/{string,header}.go`
//! - REF: istio.io AuthorizationPolicy reference (`/docs/reference/config/security/authorization-policy/`)
//! - COND: istio.io "Authorization Policy Conditions" (`/docs/reference/config/security/conditions/`)
//! - ENVOY-RBAC: envoyproxy/envoy `source/extensions/filters/common/rbac/matchers.cc`
//! - ENVOY-HDR: envoyproxy/envoy `source/common/http/header_utility.cc`
//!   (`matchesHeadersIndividually`, used by the RBAC `HeaderMatcher` since CVE-2026-26308)

// Tests state their expectations with unwrap/expect/panic; the workspace denies them only in
// the filter's own code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod engine_support;

use engine_support::*;
use serde_json::{json, Value};

const GEN: &str = "istio generator.go";
const MODEL: &str = "istio model.go New/Generate";
const MATCHER: &str = "istio matcher/string.go+header.go";
const REF: &str = "istio.io AuthorizationPolicy reference";
const COND: &str = "istio.io authorization conditions reference";
const ENVOY_RBAC: &str = "envoy rbac/matchers.cc";
const ENVOY_HDR: &str =
    "envoy HeaderUtility::matchesHeadersIndividually in rbac HeaderMatcher (CVE-2026-26308, GHSA-ghc4-35x6-crw5)";
const ENVOY_PATH: &str = "envoy PathMatcher: query and fragment removed";
const TEMPLATE: &str = "envoy uri_template matcher (Istio pathGenerator for {*}/{**})";
const SA_GEN: &str = "istio generator.go serviceAccountRegex";
const QUOTE_META: &str = "CVE-2026-39350 / ISTIO-SECURITY-2026-003: patched Istio QuoteMeta's namespaces and serviceAccounts (istio PR 59700, 59992; 1.28.7, 1.29.3)";

const ALICE: &str = "cluster.local/ns/foo/sa/alice";
const BOB: &str = "cluster.local/ns/bar/sa/bob";

fn from(source: Value) -> Value {
    json!({"from": [{"source": source}]})
}

fn to(operation: Value) -> Value {
    json!({"to": [{"operation": operation}]})
}

fn when(key: &str, values: &[&str]) -> Value {
    json!({"when": [{"key": key, "values": values}]})
}

fn when_not(key: &str, not_values: &[&str]) -> Value {
    json!({"when": [{"key": key, "notValues": not_values}]})
}

type Row = (&'static str, &'static str, Value, Req, bool);

fn run(rows: Vec<Row>) {
    let mut checks = Vec::new();
    for (name, source, rule, request, matches) in rows {
        let allow = policy("p", json!({"action": "ALLOW", "rules": [rule.clone()]}));
        let deny = policy("p", json!({"action": "DENY", "rules": [rule]}));
        let (want_allow, want_deny) = if matches {
            (
                "allow: allowed by foo/p rule 0",
                "deny: denied by foo/p rule 0",
            )
        } else {
            (
                "deny: no ALLOW policy matched",
                "allow: no ALLOW policy applies",
            )
        };
        checks.push((name, source, vec![allow], request.clone(), want_allow));
        checks.push((name, source, vec![deny], request, want_deny));
    }
    check_rows(checks);
}

#[test]
fn source_principals() {
    run(vec![
        (
            "principals: exact value matches the peer principal",
            REF,
            from(json!({"principals": [ALICE]})),
            req().principal(ALICE),
            true,
        ),
        (
            "principals: a different principal does not match",
            REF,
            from(json!({"principals": [ALICE]})),
            req().principal(BOB),
            false,
        ),
        (
            "principals: an unauthenticated peer matches no principal",
            ENVOY_RBAC,
            from(json!({"principals": [ALICE]})),
            req(),
            false,
        ),
        (
            "principals: prefix* matches principals starting with it",
            MATCHER,
            from(json!({"principals": ["cluster.local/ns/foo/*"]})),
            req().principal(ALICE),
            true,
        ),
        (
            "principals: prefix* does not match another namespace",
            MATCHER,
            from(json!({"principals": ["cluster.local/ns/foo/*"]})),
            req().principal(BOB),
            false,
        ),
        (
            "principals: *suffix matches principals ending with it",
            MATCHER,
            from(json!({"principals": ["*/sa/alice"]})),
            req().principal(ALICE),
            true,
        ),
        (
            "principals: *suffix does not match another service account",
            MATCHER,
            from(json!({"principals": ["*/sa/alice"]})),
            req().principal(BOB),
            false,
        ),
        (
            "principals: * matches any authenticated peer",
            MATCHER,
            from(json!({"principals": ["*"]})),
            req().principal(BOB),
            true,
        ),
        (
            "principals: * does not match an unauthenticated peer",
            REF,
            from(json!({"principals": ["*"]})),
            req(),
            false,
        ),
        (
            "principals: values are OR'ed",
            MODEL,
            from(json!({"principals": [ALICE, BOB]})),
            req().principal(BOB),
            true,
        ),
        (
            "principals: matching is case-sensitive",
            MATCHER,
            from(json!({"principals": ["cluster.local/ns/foo/sa/Alice"]})),
            req().principal(ALICE),
            false,
        ),
        (
            "principals: another trust domain is another identity",
            REF,
            from(json!({"principals": [ALICE]})),
            req().principal("other.td/ns/foo/sa/alice"),
            false,
        ),
        (
            "principals: */ns/foo/sa/alice ignores the trust domain",
            "istio trustdomain bundle.go isTrustDomainBeingEnforced",
            from(json!({"principals": ["*/ns/foo/sa/alice"]})),
            req().principal("other.td/ns/foo/sa/alice"),
            true,
        ),
        (
            "notPrincipals: another principal matches",
            MODEL,
            from(json!({"notPrincipals": [ALICE]})),
            req().principal(BOB),
            true,
        ),
        (
            "notPrincipals: the listed principal does not match",
            MODEL,
            from(json!({"notPrincipals": [ALICE]})),
            req().principal(ALICE),
            false,
        ),
        (
            "notPrincipals: an unauthenticated peer matches (Not of no match)",
            ENVOY_RBAC,
            from(json!({"notPrincipals": [ALICE]})),
            req(),
            true,
        ),
        (
            "notPrincipals: [*] matches only unauthenticated peers",
            REF,
            from(json!({"notPrincipals": ["*"]})),
            req(),
            true,
        ),
        (
            "notPrincipals: [*] does not match an authenticated peer",
            REF,
            from(json!({"notPrincipals": ["*"]})),
            req().principal(ALICE),
            false,
        ),
        (
            "principals + notPrincipals are AND'ed: excluded one",
            MODEL,
            from(json!({"principals": ["cluster.local/ns/foo/*"], "notPrincipals": [ALICE]})),
            req().principal(ALICE),
            false,
        ),
        (
            "principals + notPrincipals are AND'ed: other one",
            MODEL,
            from(json!({"principals": ["cluster.local/ns/foo/*"], "notPrincipals": [ALICE]})),
            req().principal("cluster.local/ns/foo/sa/carol"),
            true,
        ),
        (
            "source.principal condition: exact",
            COND,
            when("source.principal", &[ALICE]),
            req().principal(ALICE),
            true,
        ),
        (
            "source.principal condition: other principal",
            COND,
            when("source.principal", &[ALICE]),
            req().principal(BOB),
            false,
        ),
        (
            "source.principal notValues: unauthenticated matches",
            COND,
            when_not("source.principal", &[ALICE]),
            req(),
            true,
        ),
        (
            "source.principal condition: prefix",
            COND,
            when("source.principal", &["cluster.local/ns/bar/*"]),
            req().principal(BOB),
            true,
        ),
    ]);
}

#[test]
fn source_namespaces_service_accounts_trust_domains() {
    run(vec![
        (
            "namespaces: exact namespace of the principal",
            REF,
            from(json!({"namespaces": ["foo"]})),
            req().principal(ALICE),
            true,
        ),
        (
            "namespaces: other namespace",
            REF,
            from(json!({"namespaces": ["foo"]})),
            req().principal(BOB),
            false,
        ),
        (
            "namespaces: regex .*/ns/foo/.* does not match foobar",
            GEN,
            from(json!({"namespaces": ["foo"]})),
            req().principal("cluster.local/ns/foobar/sa/x"),
            false,
        ),
        (
            "namespaces: foo* matches foobar",
            GEN,
            from(json!({"namespaces": ["foo*"]})),
            req().principal("cluster.local/ns/foobar/sa/x"),
            true,
        ),
        (
            "namespaces: *bar matches foobar",
            GEN,
            from(json!({"namespaces": ["*bar"]})),
            req().principal("cluster.local/ns/foobar/sa/x"),
            true,
        ),
        (
            "namespaces: * matches any authenticated peer",
            GEN,
            from(json!({"namespaces": ["*"]})),
            req().principal(BOB),
            true,
        ),
        (
            "namespaces: * does not match an unauthenticated peer",
            REF,
            from(json!({"namespaces": ["*"]})),
            req(),
            false,
        ),
        (
            "namespaces: an unauthenticated peer has no namespace",
            REF,
            from(json!({"namespaces": ["foo"]})),
            req(),
            false,
        ),
        (
            "namespaces: Istio's regex .*/ns/prod/.* matches /ns/prod/ anywhere (ID Istio's CA never issues)",
            GEN,
            from(json!({"namespaces": ["prod"]})),
            req().principal("cluster.local/ns/evil/sa/ns/prod/x"),
            true,
        ),
        (
            "serviceAccounts: spiffe://.+/ns/prod/(.+/|)sa/admin(/.+)? matches a nested /ns/prod/ (ID Istio's CA never issues)",
            SA_GEN,
            from(json!({"serviceAccounts": ["prod/admin"]})),
            req().principal("cluster.local/ns/evil/sa/ns/prod/sa/admin"),
            true,
        ),
        (
            "namespaces: '.' is literal, a.b does not match axb",
            QUOTE_META,
            from(json!({"namespaces": ["a.b"]})),
            req().principal("cluster.local/ns/axb/sa/x"),
            false,
        ),
        (
            "namespaces: '.' is literal, a.b matches a.b",
            QUOTE_META,
            from(json!({"namespaces": ["a.b"]})),
            req().principal("cluster.local/ns/a.b/sa/x"),
            true,
        ),
        (
            "namespaces: '|' is literal, a|b does not match a",
            QUOTE_META,
            from(json!({"namespaces": ["a|b"]})),
            req().principal("cluster.local/ns/a/sa/x"),
            false,
        ),
        (
            "namespaces: '*' stays .* around quoted parts, a.*x matches a.bx",
            QUOTE_META,
            from(json!({"namespaces": ["a.*"]})),
            req().principal("cluster.local/ns/a.bx/sa/x"),
            true,
        ),
        (
            "namespaces: '*' after a quoted '.', a.* does not match ab",
            QUOTE_META,
            from(json!({"namespaces": ["a.*"]})),
            req().principal("cluster.local/ns/ab/sa/x"),
            false,
        ),
        (
            "notNamespaces: '.' is literal, a.b does not exclude axb",
            QUOTE_META,
            from(json!({"notNamespaces": ["a.b"]})),
            req().principal("cluster.local/ns/axb/sa/x"),
            true,
        ),
        (
            "source.namespace: '.' is literal",
            QUOTE_META,
            when("source.namespace", &["a.b"]),
            req().principal("cluster.local/ns/axb/sa/x"),
            false,
        ),
        (
            "serviceAccounts: '.' is literal, cert-manager.io does not match cert-manager-io",
            QUOTE_META,
            from(json!({"serviceAccounts": ["foo/cert-manager.io"]})),
            req().principal("cluster.local/ns/foo/sa/cert-manager-io"),
            false,
        ),
        (
            "serviceAccounts: '.' is literal, cert-manager.io matches itself",
            QUOTE_META,
            from(json!({"serviceAccounts": ["foo/cert-manager.io"]})),
            req().principal("cluster.local/ns/foo/sa/cert-manager.io"),
            true,
        ),
        (
            "serviceAccounts: '.' in the namespace part is literal",
            QUOTE_META,
            from(json!({"serviceAccounts": ["f.o/alice"]})),
            req().principal(ALICE),
            false,
        ),
        (
            "notServiceAccounts: '.' is literal, cert-manager.io does not exclude cert-managerXio",
            QUOTE_META,
            from(json!({"notServiceAccounts": ["foo/cert-manager.io"]})),
            req().principal("cluster.local/ns/foo/sa/cert-managerXio"),
            true,
        ),
        (
            "source.serviceAccount: '.' is literal",
            QUOTE_META,
            when("source.serviceAccount", &["foo/a.ice"]),
            req().principal(ALICE),
            false,
        ),
        (
            "principals: *suffix compares literally ('.' is no wildcard)",
            QUOTE_META,
            from(json!({"principals": ["*/sa/a.ice"]})),
            req().principal(ALICE),
            false,
        ),
        (
            "namespaces: values OR'ed",
            MODEL,
            from(json!({"namespaces": ["x", "bar"]})),
            req().principal(BOB),
            true,
        ),
        (
            "notNamespaces: other namespace matches",
            MODEL,
            from(json!({"notNamespaces": ["foo"]})),
            req().principal(BOB),
            true,
        ),
        (
            "notNamespaces: listed namespace does not match",
            MODEL,
            from(json!({"notNamespaces": ["foo"]})),
            req().principal(ALICE),
            false,
        ),
        (
            "notNamespaces: unauthenticated peer matches",
            ENVOY_RBAC,
            from(json!({"notNamespaces": ["foo"]})),
            req(),
            true,
        ),
        (
            "source.namespace condition: exact",
            COND,
            when("source.namespace", &["bar"]),
            req().principal(BOB),
            true,
        ),
        (
            "source.namespace condition: other",
            COND,
            when("source.namespace", &["bar"]),
            req().principal(ALICE),
            false,
        ),
        (
            "source.namespace notValues",
            COND,
            when_not("source.namespace", &["bar"]),
            req().principal(ALICE),
            true,
        ),
        (
            "serviceAccounts: ns/sa matches",
            SA_GEN,
            from(json!({"serviceAccounts": ["foo/alice"]})),
            req().principal(ALICE),
            true,
        ),
        (
            "serviceAccounts: bare name uses the policy's namespace",
            SA_GEN,
            from(json!({"serviceAccounts": ["alice"]})),
            req().principal(ALICE),
            true,
        ),
        (
            "serviceAccounts: bare name does not match another namespace",
            SA_GEN,
            from(json!({"serviceAccounts": ["bob"]})),
            req().principal(BOB),
            false,
        ),
        (
            "serviceAccounts: other namespace",
            SA_GEN,
            from(json!({"serviceAccounts": ["bar/alice"]})),
            req().principal(ALICE),
            false,
        ),
        (
            "serviceAccounts: no match on a longer name (sa/alice-x)",
            SA_GEN,
            from(json!({"serviceAccounts": ["foo/alice"]})),
            req().principal("cluster.local/ns/foo/sa/alice-x"),
            false,
        ),
        (
            "serviceAccounts: extra path segments after the name match",
            SA_GEN,
            from(json!({"serviceAccounts": ["foo/alice"]})),
            req().principal("cluster.local/ns/foo/sa/alice/x"),
            true,
        ),
        (
            "serviceAccounts: unauthenticated peer",
            SA_GEN,
            from(json!({"serviceAccounts": ["foo/alice"]})),
            req(),
            false,
        ),
        (
            "notServiceAccounts: other matches",
            SA_GEN,
            from(json!({"notServiceAccounts": ["foo/alice"]})),
            req().principal(BOB),
            true,
        ),
        (
            "notServiceAccounts: listed does not match",
            SA_GEN,
            from(json!({"notServiceAccounts": ["foo/alice"]})),
            req().principal(ALICE),
            false,
        ),
        (
            "source.serviceAccount condition",
            COND,
            when("source.serviceAccount", &["bar/bob"]),
            req().principal(BOB),
            true,
        ),
        (
            "source.serviceAccount condition: other",
            COND,
            when("source.serviceAccount", &["bar/bob"]),
            req().principal(ALICE),
            false,
        ),
        (
            "trustDomains: the peer's trust domain",
            "istio api Source.trustDomains",
            from(json!({"trustDomains": ["cluster.local"]})),
            req().principal(ALICE),
            true,
        ),
        (
            "trustDomains: another trust domain",
            "istio api Source.trustDomains",
            from(json!({"trustDomains": ["other.td"]})),
            req().principal(ALICE),
            false,
        ),
        (
            "trustDomains: unauthenticated peer",
            "istio api Source.trustDomains",
            from(json!({"trustDomains": ["cluster.local"]})),
            req(),
            false,
        ),
        (
            "notTrustDomains: other trust domain matches",
            "istio api Source.notTrustDomains",
            from(json!({"notTrustDomains": ["evil.td"]})),
            req().principal(ALICE),
            true,
        ),
        (
            "notTrustDomains: listed trust domain does not match",
            "istio api Source.notTrustDomains",
            from(json!({"notTrustDomains": ["cluster.local"]})),
            req().principal(ALICE),
            false,
        ),
    ]);
}

#[test]
fn source_ip_blocks() {
    run(vec![
        (
            "ipBlocks: CIDR contains the peer address",
            REF,
            from(json!({"ipBlocks": ["10.0.0.0/8"]})),
            req().peer_ip("10.1.2.3"),
            true,
        ),
        (
            "ipBlocks: CIDR does not contain the peer",
            REF,
            from(json!({"ipBlocks": ["10.0.0.0/8"]})),
            req().peer_ip("11.0.0.1"),
            false,
        ),
        (
            "ipBlocks: bare IP is a /32",
            "istio util.AddrStrToCidrRange",
            from(json!({"ipBlocks": ["10.0.0.7"]})),
            req().peer_ip("10.0.0.7"),
            true,
        ),
        (
            "ipBlocks: bare IP does not match a neighbour",
            "istio util.AddrStrToCidrRange",
            from(json!({"ipBlocks": ["10.0.0.7"]})),
            req().peer_ip("10.0.0.8"),
            false,
        ),
        (
            "ipBlocks: host bits in the CIDR are ignored",
            "istio util.AddrStrToCidrRange (Go ParseCIDR)",
            from(json!({"ipBlocks": ["10.1.2.3/8"]})),
            req().peer_ip("10.200.0.1"),
            true,
        ),
        (
            "ipBlocks: reads the direct peer, not X-Forwarded-For",
            "istio generator.go srcIPGenerator -> direct_remote_ip",
            from(json!({"ipBlocks": ["10.0.0.0/8"]})),
            req().peer_ip("192.168.0.1").client_ip("10.0.0.1"),
            false,
        ),
        (
            "ipBlocks: IPv6 range",
            ENVOY_RBAC,
            from(json!({"ipBlocks": ["2001:db8::/32"]})),
            req().peer_ip("2001:db8::1"),
            true,
        ),
        (
            "ipBlocks: an IPv4 range never matches an IPv6 peer",
            "envoy CidrRange::isInRange",
            from(json!({"ipBlocks": ["0.0.0.0/0"]})),
            req().peer_ip("::1"),
            false,
        ),
        (
            "ipBlocks: 0.0.0.0/0 matches every IPv4 peer",
            ENVOY_RBAC,
            from(json!({"ipBlocks": ["0.0.0.0/0"]})),
            req().peer_ip("203.0.113.9"),
            true,
        ),
        (
            "notIpBlocks: outside the range matches",
            MODEL,
            from(json!({"notIpBlocks": ["10.0.0.0/8"]})),
            req().peer_ip("192.168.0.1"),
            true,
        ),
        (
            "notIpBlocks: inside the range does not match",
            MODEL,
            from(json!({"notIpBlocks": ["10.0.0.0/8"]})),
            req().peer_ip("10.0.0.1"),
            false,
        ),
        (
            "remoteIpBlocks: reads the original client address",
            "istio generator.go remoteIPGenerator -> remote_ip",
            from(json!({"remoteIpBlocks": ["203.0.113.0/24"]})),
            req().client_ip("203.0.113.5"),
            true,
        ),
        (
            "remoteIpBlocks: ignores the direct peer",
            "istio generator.go remoteIPGenerator -> remote_ip",
            from(json!({"remoteIpBlocks": ["10.0.0.0/8"]})),
            req().client_ip("203.0.113.5"),
            false,
        ),
        (
            "notRemoteIpBlocks: outside matches",
            MODEL,
            from(json!({"notRemoteIpBlocks": ["203.0.113.0/24"]})),
            req().client_ip("198.51.100.1"),
            true,
        ),
        (
            "source.ip condition is the direct peer",
            COND,
            when("source.ip", &["10.0.0.1"]),
            req().peer_ip("10.0.0.1").client_ip("1.2.3.4"),
            true,
        ),
        (
            "source.ip condition: other peer",
            COND,
            when("source.ip", &["10.0.0.0/24"]),
            req().peer_ip("10.0.1.1"),
            false,
        ),
        (
            "remote.ip condition is the client",
            COND,
            when("remote.ip", &["1.2.3.0/24"]),
            req().client_ip("1.2.3.4"),
            true,
        ),
        (
            "remote.ip notValues",
            COND,
            when_not("remote.ip", &["1.2.3.0/24"]),
            req().client_ip("1.2.3.4"),
            false,
        ),
        (
            "destination.ip condition",
            COND,
            when("destination.ip", &["10.0.0.2"]),
            req().dest_ip("10.0.0.2"),
            true,
        ),
        (
            "destination.ip condition: other",
            COND,
            when("destination.ip", &["10.0.0.3"]),
            req().dest_ip("10.0.0.2"),
            false,
        ),
        (
            "destination.ip notValues",
            COND,
            when_not("destination.ip", &["10.9.0.0/16"]),
            req().dest_ip("10.0.0.2"),
            true,
        ),
        (
            "ipBlocks: a bare IPv6 address is a /128",
            "istio util.AddrStrToCidrRange",
            from(json!({"ipBlocks": ["2001:db8::7"]})),
            req().peer_ip("2001:db8::8"),
            false,
        ),
    ]);
}

#[test]
fn operation_fields() {
    run(vec![
        (
            "ports: destination port listed",
            REF,
            to(json!({"ports": ["8000"]})),
            req().port(8000),
            true,
        ),
        (
            "ports: destination port not listed",
            REF,
            to(json!({"ports": ["9000"]})),
            req().port(8000),
            false,
        ),
        (
            "ports: values OR'ed",
            MODEL,
            to(json!({"ports": ["9000", "8000"]})),
            req().port(8000),
            true,
        ),
        (
            "notPorts: listed port does not match",
            MODEL,
            to(json!({"notPorts": ["8000"]})),
            req().port(8000),
            false,
        ),
        (
            "notPorts: other port matches",
            MODEL,
            to(json!({"notPorts": ["9000"]})),
            req().port(8000),
            true,
        ),
        (
            "destination.port condition",
            COND,
            when("destination.port", &["8000"]),
            req().port(8000),
            true,
        ),
        (
            "destination.port condition: other",
            COND,
            when("destination.port", &["80"]),
            req().port(8000),
            false,
        ),
        (
            "hosts: exact :authority",
            REF,
            to(json!({"hosts": ["httpbin.foo"]})),
            req(),
            true,
        ),
        (
            "hosts: case-insensitive",
            "istio matcher.HostMatcher ignore_case",
            to(json!({"hosts": ["HTTPBIN.Foo"]})),
            req(),
            true,
        ),
        (
            "hosts: exact host does not match host:port",
            "istio matcher.HostMatcher (no port stripping)",
            to(json!({"hosts": ["httpbin.foo"]})),
            req().host("httpbin.foo:8000"),
            false,
        ),
        (
            "hosts: host:* matches with any port",
            "istio security best practices: hosts with ports",
            to(json!({"hosts": ["httpbin.foo:*"]})),
            req().host("httpbin.foo:8000"),
            true,
        ),
        (
            "hosts: *.foo suffix",
            MATCHER,
            to(json!({"hosts": ["*.foo"]})),
            req(),
            true,
        ),
        (
            "hosts: prefix*",
            MATCHER,
            to(json!({"hosts": ["httpbin*"]})),
            req().host("httpbin.foo.svc"),
            true,
        ),
        (
            "hosts: other host",
            REF,
            to(json!({"hosts": ["other.foo"]})),
            req(),
            false,
        ),
        (
            "hosts: * is present_match",
            "istio matcher.HostMatcher",
            to(json!({"hosts": ["*"]})),
            req(),
            true,
        ),
        (
            "notHosts: listed host does not match",
            MODEL,
            to(json!({"notHosts": ["httpbin.foo"]})),
            req(),
            false,
        ),
        (
            "notHosts: case-insensitive too",
            "istio matcher.HostMatcher ignore_case",
            to(json!({"notHosts": ["HTTPBIN.FOO"]})),
            req(),
            false,
        ),
        (
            "methods: exact",
            REF,
            to(json!({"methods": ["GET"]})),
            req(),
            true,
        ),
        (
            "methods: case-sensitive",
            "istio methodGenerator: HeaderMatcher exact",
            to(json!({"methods": ["get"]})),
            req(),
            false,
        ),
        (
            "methods: values OR'ed",
            MODEL,
            to(json!({"methods": ["GET", "POST"]})),
            req().method("POST"),
            true,
        ),
        (
            "methods: other method",
            REF,
            to(json!({"methods": ["POST"]})),
            req(),
            false,
        ),
        (
            "methods: prefix*",
            MATCHER,
            to(json!({"methods": ["P*"]})),
            req().method("PUT"),
            true,
        ),
        (
            "notMethods: other method matches",
            MODEL,
            to(json!({"notMethods": ["DELETE"]})),
            req(),
            true,
        ),
        (
            "notMethods: listed method does not match",
            MODEL,
            to(json!({"notMethods": ["GET"]})),
            req(),
            false,
        ),
        (
            "paths: exact",
            REF,
            to(json!({"paths": ["/ip"]})),
            req().path("/ip"),
            true,
        ),
        (
            "paths: exact ignores the query string",
            ENVOY_PATH,
            to(json!({"paths": ["/ip"]})),
            req().path("/ip?a=b"),
            true,
        ),
        (
            "paths: exact is case-sensitive",
            MATCHER,
            to(json!({"paths": ["/IP"]})),
            req().path("/ip"),
            false,
        ),
        (
            "paths: exact does not match a trailing slash",
            MATCHER,
            to(json!({"paths": ["/ip"]})),
            req().path("/ip/"),
            false,
        ),
        (
            "paths: prefix*",
            MATCHER,
            to(json!({"paths": ["/api/*"]})),
            req().path("/api/v1/x"),
            true,
        ),
        (
            "paths: prefix* needs the literal prefix",
            MATCHER,
            to(json!({"paths": ["/api/*"]})),
            req().path("/apix"),
            false,
        ),
        (
            "paths: prefix* with query",
            ENVOY_PATH,
            to(json!({"paths": ["/api/*"]})),
            req().path("/api/?q"),
            true,
        ),
        (
            "paths: *suffix",
            MATCHER,
            to(json!({"paths": ["*/info"]})),
            req().path("/a/b/info"),
            true,
        ),
        (
            "paths: *suffix ignores the query",
            ENVOY_PATH,
            to(json!({"paths": ["*.json"]})),
            req().path("/a.json?x=.html"),
            true,
        ),
        (
            "paths: * matches any non-empty path",
            MATCHER,
            to(json!({"paths": ["*"]})),
            req().path("/x"),
            true,
        ),
        (
            "paths: template {*} one segment",
            TEMPLATE,
            to(json!({"paths": ["/foo/{*}/bar"]})),
            req().path("/foo/x/bar"),
            true,
        ),
        (
            "paths: template {*} not two segments",
            TEMPLATE,
            to(json!({"paths": ["/foo/{*}/bar"]})),
            req().path("/foo/x/y/bar"),
            false,
        ),
        (
            "paths: template {*} not an empty segment",
            TEMPLATE,
            to(json!({"paths": ["/foo/{*}/bar"]})),
            req().path("/foo//bar"),
            false,
        ),
        (
            "paths: template {**} many segments",
            TEMPLATE,
            to(json!({"paths": ["/foo/{**}"]})),
            req().path("/foo/a/b/c"),
            true,
        ),
        (
            "paths: template {**} zero segments",
            TEMPLATE,
            to(json!({"paths": ["/foo/{**}"]})),
            req().path("/foo/"),
            true,
        ),
        (
            "paths: template ignores the query",
            TEMPLATE,
            to(json!({"paths": ["/foo/{*}"]})),
            req().path("/foo/x?y=/z"),
            true,
        ),
        (
            "paths: template {**} with a literal suffix",
            TEMPLATE,
            to(json!({"paths": ["/{**}/info"]})),
            req().path("/a/b/info"),
            true,
        ),
        (
            "notPaths: listed path does not match",
            MODEL,
            to(json!({"notPaths": ["/admin*"]})),
            req().path("/admin/x"),
            false,
        ),
        (
            "notPaths: other path matches",
            MODEL,
            to(json!({"notPaths": ["/admin*"]})),
            req().path("/ip"),
            true,
        ),
        (
            "paths + notPaths AND'ed",
            MODEL,
            to(json!({"paths": ["/api/*"], "notPaths": ["/api/private*"]})),
            req().path("/api/private/x"),
            false,
        ),
        (
            "paths + notPaths AND'ed: allowed part",
            MODEL,
            to(json!({"paths": ["/api/*"], "notPaths": ["/api/private*"]})),
            req().path("/api/public"),
            true,
        ),
        (
            "operation fields AND'ed: method and path",
            REF,
            to(json!({"methods": ["GET"], "paths": ["/ip"]})),
            req().method("POST").path("/ip"),
            false,
        ),
        (
            "operation fields AND'ed: both match",
            REF,
            to(json!({"methods": ["GET"], "paths": ["/ip"]})),
            req().path("/ip"),
            true,
        ),
        (
            "paths: {*} accepts percent-encoded characters in its segment",
            TEMPLATE,
            to(json!({"paths": ["/a/{*}"]})),
            req().path("/a/x%2Fy"),
            true,
        ),
        (
            "paths: {*} does not accept characters outside RFC 3986 pchar",
            TEMPLATE,
            to(json!({"paths": ["/a/{*}"]})),
            req().path("/a/x\"y"),
            false,
        ),
        (
            "notPaths: the query does not hide a listed path",
            ENVOY_PATH,
            to(json!({"notPaths": ["/admin"]})),
            req().path("/admin?debug=1"),
            false,
        ),
        (
            "ports: port 0 is a port like any other",
            "istio generator.go convertToPort",
            to(json!({"ports": ["0"]})),
            req().port(0),
            true,
        ),
        (
            "hosts: a host:port value is compared with the port",
            "istio matcher.HostMatcher",
            to(json!({"hosts": ["httpbin.foo:8000"]})),
            req().host("httpbin.foo:8000"),
            true,
        ),
    ]);
}

#[test]
fn request_headers() {
    run(vec![
        ("request.headers: exact value", COND, when("request.headers[x-token]", &["admin"]), req().header("x-token", "admin"), true),
        ("request.headers: name is case-insensitive", "envoy header names are lower-case (LowerCaseString)", when("request.headers[X-Token]", &["admin"]), req().header("x-token", "admin"), true),
        ("request.headers: value is case-sensitive", MATCHER, when("request.headers[x-token]", &["Admin"]), req().header("x-token", "admin"), false),
        ("request.headers: absent header does not match", ENVOY_RBAC, when("request.headers[x-token]", &["admin"]), req(), false),
        ("request.headers: prefix*", MATCHER, when("request.headers[user-agent]", &["curl/*"]), req().header("user-agent", "curl/8.0"), true),
        ("request.headers: *suffix", MATCHER, when("request.headers[x-user]", &["*@example.com"]), req().header("x-user", "a@example.com"), true),
        ("request.headers: * is present_match, even empty", "istio matcher.HeaderMatcher", when("request.headers[x-token]", &["*"]), req().header("x-token", ""), true),
        ("request.headers: * absent header", "istio matcher.HeaderMatcher", when("request.headers[x-token]", &["*"]), req(), false),
        ("request.headers notValues: absent header matches", ENVOY_RBAC, when_not("request.headers[x-token]", &["admin"]), req(), true),
        ("request.headers notValues: listed value does not match", MODEL, when_not("request.headers[x-token]", &["admin"]), req().header("x-token", "admin"), false),
        ("request.headers: a repeated header matches when any one value does (x-token: admin + guest)", ENVOY_HDR, when("request.headers[x-token]", &["admin"]), req().header("x-token", "admin").header("x-token", "guest"), true),
        ("request.headers: the value hidden second in a repeat matches (x-token: guest + admin)", ENVOY_HDR, when("request.headers[x-token]", &["admin"]), req().header("x-token", "guest").header("x-token", "admin"), true),
        ("request.headers: the comma-joined string is never compared", ENVOY_HDR, when("request.headers[x-token]", &["admin,guest"]), req().header("x-token", "admin").header("x-token", "guest"), false),
        ("request.headers: a prefix spanning two values does not match", ENVOY_HDR, when("request.headers[x-token]", &["admin,*"]), req().header("x-token", "admin").header("x-token", "guest"), false),
        ("request.headers: a suffix spanning two values does not match", ENVOY_HDR, when("request.headers[x-token]", &["*,guest"]), req().header("x-token", "admin").header("x-token", "guest"), false),
        ("request.headers: a prefix matches one value of a repeat", ENVOY_HDR, when("request.headers[x-token]", &["adm*"]), req().header("x-token", "user").header("x-token", "admin-ro"), true),
        ("request.headers: no value of a repeat matches", ENVOY_HDR, when("request.headers[x-token]", &["root"]), req().header("x-token", "user").header("x-token", "admin"), false),
        ("request.headers: * with a repeated header (present_match)", ENVOY_HDR, when("request.headers[x-token]", &["*"]), req().header("x-token", "").header("x-token", ""), true),
        ("request.headers notValues: admin in any value of a repeat excludes (not_id around the OR, no invert_match)", ENVOY_HDR, when_not("request.headers[x-token]", &["admin"]), req().header("x-token", "x").header("x-token", "admin"), false),
        ("request.headers notValues: no value of a repeat is listed", ENVOY_HDR, when_not("request.headers[x-token]", &["admin"]), req().header("x-token", "x").header("x-token", "y"), true),
        ("request.headers notValues: '*admin*' is the literal suffix 'admin*', in no value", ENVOY_HDR, when_not("request.headers[x-token]", &["*admin*"]), req().header("x-token", "x").header("x-token", "admin"), true),
        ("request.headers: pseudo-header :method", COND, when("request.headers[:method]", &["GET"]), req(), true),
        ("request.headers: values OR'ed", MODEL, when("request.headers[x-env]", &["dev", "prod"]), req().header("x-env", "prod"), true),
        ("request.headers: values and notValues AND'ed", MODEL, json!({"when": [{"key": "request.headers[x-env]", "values": ["p*"], "notValues": ["prod"]}]}), req().header("x-env", "prod"), false),
    ]);
}

#[test]
fn request_authentication() {
    let iss = "https://issuer.example";
    let claims = json!({"iss": iss, "sub": "alice", "aud": ["web", "api"], "azp": "frontend",
        "groups": ["dev", "ops"], "role": "admin", "level": 3, "org": {"team": "blue"}});
    let jwt = || req().jwt("https://issuer.example/alice", claims.clone());
    run(vec![
        (
            "requestPrincipals: iss/sub exact",
            REF,
            from(json!({"requestPrincipals": ["https://issuer.example/alice"]})),
            jwt(),
            true,
        ),
        (
            "requestPrincipals: other subject",
            REF,
            from(json!({"requestPrincipals": ["https://issuer.example/bob"]})),
            jwt(),
            false,
        ),
        (
            "requestPrincipals: no JWT",
            REF,
            from(json!({"requestPrincipals": ["https://issuer.example/alice"]})),
            req(),
            false,
        ),
        (
            "requestPrincipals: * any JWT",
            REF,
            from(json!({"requestPrincipals": ["*"]})),
            jwt(),
            true,
        ),
        (
            "requestPrincipals: * no JWT",
            REF,
            from(json!({"requestPrincipals": ["*"]})),
            req(),
            false,
        ),
        (
            "requestPrincipals: iss/* any subject of the issuer",
            "istio requestPrincipalGenerator",
            from(json!({"requestPrincipals": ["https://issuer.example/*"]})),
            jwt(),
            true,
        ),
        (
            "requestPrincipals: */sub any issuer",
            "istio requestPrincipalGenerator",
            from(json!({"requestPrincipals": ["*/alice"]})),
            jwt(),
            true,
        ),
        (
            "requestPrincipals: split at the last '/'",
            "istio requestPrincipalGenerator",
            from(json!({"requestPrincipals": ["https://issuer.example/al*"]})),
            jwt(),
            true,
        ),
        (
            "requestPrincipals: *suffix of the issuer",
            "istio requestPrincipalGenerator",
            from(json!({"requestPrincipals": ["*.example/alice"]})),
            jwt(),
            true,
        ),
        (
            "notRequestPrincipals: no JWT matches",
            MODEL,
            from(json!({"notRequestPrincipals": ["*"]})),
            req(),
            true,
        ),
        (
            "notRequestPrincipals: listed does not match",
            MODEL,
            from(json!({"notRequestPrincipals": ["*"]})),
            jwt(),
            false,
        ),
        (
            "request.auth.principal condition",
            COND,
            when("request.auth.principal", &["https://issuer.example/alice"]),
            jwt(),
            true,
        ),
        (
            "request.auth.principal condition: other",
            COND,
            when("request.auth.principal", &["https://issuer.example/bob"]),
            jwt(),
            false,
        ),
        (
            "request.auth.audiences: one of the list",
            COND,
            when("request.auth.audiences", &["api"]),
            jwt(),
            true,
        ),
        (
            "request.auth.audiences: not in the list",
            COND,
            when("request.auth.audiences", &["admin"]),
            jwt(),
            false,
        ),
        (
            "request.auth.audiences: no JWT",
            COND,
            when("request.auth.audiences", &["api"]),
            req(),
            false,
        ),
        (
            "request.auth.presenter: azp",
            COND,
            when("request.auth.presenter", &["frontend"]),
            jwt(),
            true,
        ),
        (
            "request.auth.presenter: other",
            COND,
            when("request.auth.presenter", &["backend"]),
            jwt(),
            false,
        ),
        (
            "request.auth.claims: element of a list claim",
            COND,
            when("request.auth.claims[groups]", &["ops"]),
            jwt(),
            true,
        ),
        (
            "request.auth.claims: not in the list claim",
            COND,
            when("request.auth.claims[groups]", &["root"]),
            jwt(),
            false,
        ),
        (
            "request.auth.claims: string claim",
            COND,
            when("request.auth.claims[role]", &["admin"]),
            jwt(),
            true,
        ),
        (
            "request.auth.claims: nested claim",
            COND,
            when("request.auth.claims[org][team]", &["blue"]),
            jwt(),
            true,
        ),
        (
            "request.auth.claims: nested claim other value",
            COND,
            when("request.auth.claims[org][team]", &["red"]),
            jwt(),
            false,
        ),
        (
            "request.auth.claims: a number claim never matches a string",
            "envoy metadata StringMatcher",
            when("request.auth.claims[level]", &["3"]),
            jwt(),
            false,
        ),
        (
            "request.auth.claims: missing claim",
            COND,
            when("request.auth.claims[missing]", &["x"]),
            jwt(),
            false,
        ),
        (
            "request.auth.claims: prefix",
            MATCHER,
            when("request.auth.claims[role]", &["adm*"]),
            jwt(),
            true,
        ),
        (
            "request.auth.claims notValues: missing claim matches",
            MODEL,
            when_not("request.auth.claims[missing]", &["x"]),
            jwt(),
            true,
        ),
        (
            "request.auth.claims notValues: listed element",
            MODEL,
            when_not("request.auth.claims[groups]", &["dev"]),
            jwt(),
            false,
        ),
        (
            "request.auth.audiences: * needs a non-empty audience",
            MATCHER,
            when("request.auth.audiences", &["*"]),
            jwt(),
            true,
        ),
        (
            "request.auth.presenter: absent azp does not match",
            COND,
            when("request.auth.presenter", &["frontend"]),
            req().jwt(
                "https://issuer.example/alice",
                json!({"iss": iss, "sub": "alice"}),
            ),
            false,
        ),
        (
            "request.auth.presenter notValues: absent azp matches",
            MODEL,
            when_not("request.auth.presenter", &["frontend"]),
            req().jwt(
                "https://issuer.example/alice",
                json!({"iss": iss, "sub": "alice"}),
            ),
            true,
        ),
        (
            "request.auth.claims: a boolean claim never matches a string",
            "envoy metadata StringMatcher",
            when("request.auth.claims[admin]", &["true"]),
            req().jwt(
                "https://issuer.example/alice",
                json!({"iss": iss, "sub": "alice", "admin": true}),
            ),
            false,
        ),
        (
            "requestPrincipals: an issuer with a path splits at the last '/'",
            "istio requestPrincipalGenerator",
            from(json!({"requestPrincipals": ["https://issuer.example/tenants/a/bob"]})),
            req().jwt(
                "https://issuer.example/tenants/a/bob",
                json!({"iss": "https://issuer.example/tenants/a", "sub": "bob"}),
            ),
            true,
        ),
        (
            "requestPrincipals: without a payload the principal is split at the last '/'",
            "istio requestPrincipalGenerator",
            from(json!({"requestPrincipals": ["https://issuer.example/*"]})),
            Req {
                auth: Some(Auth {
                    principal: "https://issuer.example/carol".into(),
                    audiences: Vec::new(),
                    presenter: None,
                    claims: None,
                }),
                ..req()
            },
            true,
        ),
    ]);
}

#[test]
fn connection_sni() {
    run(vec![
        (
            "connection.sni: exact",
            COND,
            when("connection.sni", &["www.example.com"]),
            req().sni("www.example.com"),
            true,
        ),
        (
            "connection.sni: other",
            COND,
            when("connection.sni", &["www.example.com"]),
            req().sni("api.example.com"),
            false,
        ),
        (
            "connection.sni: absent",
            COND,
            when("connection.sni", &["www.example.com"]),
            req(),
            false,
        ),
        (
            "connection.sni: * needs a non-empty SNI (regex .+)",
            MATCHER,
            when("connection.sni", &["*"]),
            req().sni("a"),
            true,
        ),
        (
            "connection.sni: * absent",
            MATCHER,
            when("connection.sni", &["*"]),
            req(),
            false,
        ),
        (
            "connection.sni: *suffix",
            MATCHER,
            when("connection.sni", &["*.example.com"]),
            req().sni("api.example.com"),
            true,
        ),
        (
            "connection.sni notValues: absent matches",
            MODEL,
            when_not("connection.sni", &["x"]),
            req(),
            true,
        ),
    ]);
}

#[test]
fn combination_of_from_to_when() {
    let two_froms =
        json!({"from": [{"source": {"principals": [ALICE]}}, {"source": {"principals": [BOB]}}]});
    let from_and = json!({"from": [{"source": {"principals": [ALICE], "namespaces": ["bar"]}}]});
    let two_tos =
        json!({"to": [{"operation": {"paths": ["/a"]}}, {"operation": {"paths": ["/b"]}}]});
    let two_whens = json!({"when": [{"key": "request.headers[x-a]", "values": ["1"]}, {"key": "request.headers[x-b]", "values": ["2"]}]});
    let from_to = json!({"from": [{"source": {"principals": [ALICE]}}], "to": [{"operation": {"methods": ["GET"]}}]});
    let froms_when = json!({"from": [{"source": {"principals": [ALICE]}}, {"source": {"principals": [BOB]}}],
        "when": [{"key": "request.headers[x-a]", "values": ["1"]}]});
    run(vec![
        (
            "several from entries are OR'ed",
            "istio.io reference Rule: at least one source",
            two_froms.clone(),
            req().principal(BOB),
            true,
        ),
        (
            "several from entries: none matches",
            "istio.io reference Rule: at least one source",
            two_froms,
            req().principal("cluster.local/ns/x/sa/y"),
            false,
        ),
        (
            "fields of one source are AND'ed",
            "istio.io reference Source: fields AND'ed",
            from_and,
            req().principal(ALICE),
            false,
        ),
        (
            "several to entries are OR'ed",
            "istio.io reference Rule: at least one operation",
            two_tos.clone(),
            req().path("/b"),
            true,
        ),
        (
            "several to entries: none matches",
            "istio.io reference Rule: at least one operation",
            two_tos,
            req().path("/c"),
            false,
        ),
        (
            "all when conditions must match",
            "istio.io reference Rule: all conditions",
            two_whens.clone(),
            req().header("x-a", "1"),
            false,
        ),
        (
            "all when conditions match",
            "istio.io reference Rule: all conditions",
            two_whens,
            req().header("x-a", "1").header("x-b", "2"),
            true,
        ),
        (
            "from and to are AND'ed: to fails",
            MODEL,
            from_to.clone(),
            req().principal(ALICE).method("POST"),
            false,
        ),
        (
            "from and to are AND'ed: from fails",
            MODEL,
            from_to.clone(),
            req().principal(BOB),
            false,
        ),
        (
            "from and to are AND'ed: both match",
            MODEL,
            from_to,
            req().principal(ALICE),
            true,
        ),
        (
            "when is combined with every from entry",
            MODEL,
            froms_when.clone(),
            req().principal(BOB).header("x-a", "1"),
            true,
        ),
        (
            "when still required with a matching from entry",
            MODEL,
            froms_when,
            req().principal(BOB),
            false,
        ),
        (
            "an empty rule {} matches every request",
            "istio.io reference: rules: [{}] matches everything",
            json!({}),
            req(),
            true,
        ),
        (
            "from: [{}] (no source) matches any source",
            MODEL,
            json!({"from": [{}]}),
            req(),
            true,
        ),
        (
            "to: [{}] (no operation) matches any operation",
            MODEL,
            json!({"to": [{}]}),
            req().path("/any"),
            true,
        ),
        (
            "from: [{source: {}}] matches any source",
            MODEL,
            json!({"from": [{"source": {}}]}),
            req(),
            true,
        ),
        (
            "when values and notValues of one key are AND'ed",
            MODEL,
            json!({"when": [{"key": "destination.port", "values": ["8000", "9000"], "notValues": ["8000"]}]}),
            req().port(8000),
            false,
        ),
    ]);
}

/// An address or port the host could not tell fails closed, by action: DENY and AUDIT rules
/// count a field reading it as matched (values and notValues alike), ALLOW rules as not
/// matched, dry-run rules by their own action. Istio does the same with what a filter cannot
/// evaluate: HTTP-only fields on TCP (`builder.go`: DENY drops the field, ALLOW drops the
/// rule).
const UNKNOWN: &str =
    "unknown address fails closed (engine/mod.rs; as Istio builder.go drops HTTP-only fields on TCP: DENY widens, ALLOW narrows)";

#[test]
fn unknown_addresses_fail_closed() {
    let no_peer = || Req {
        direct_remote_ip: None,
        ..req()
    };
    let no_client = || Req {
        remote_ip: None,
        ..req()
    };
    let no_dest = || Req {
        destination_ip: None,
        ..req()
    };
    let no_port = || Req {
        destination_port: None,
        ..req()
    };
    let rows: Vec<(&str, Value, Req)> = vec![
        (
            "ipBlocks, peer unknown",
            from(json!({"ipBlocks": ["10.0.0.0/8"]})),
            no_peer(),
        ),
        (
            "notIpBlocks, peer unknown",
            from(json!({"notIpBlocks": ["10.0.0.0/8"]})),
            no_peer(),
        ),
        (
            "ipBlocks, peer unknown, TCP",
            from(json!({"ipBlocks": ["10.0.0.0/8"]})),
            no_peer().tcp(),
        ),
        (
            "remoteIpBlocks, client unknown",
            from(json!({"remoteIpBlocks": ["0.0.0.0/0"]})),
            no_client(),
        ),
        (
            "notRemoteIpBlocks, client unknown",
            from(json!({"notRemoteIpBlocks": ["0.0.0.0/0"]})),
            no_client(),
        ),
        (
            "source.ip values, peer unknown",
            when("source.ip", &["10.0.0.1"]),
            no_peer(),
        ),
        (
            "source.ip notValues, peer unknown",
            when_not("source.ip", &["10.0.0.1"]),
            no_peer(),
        ),
        (
            "remote.ip values, client unknown",
            when("remote.ip", &["10.0.0.1"]),
            no_client(),
        ),
        (
            "remote.ip notValues, client unknown",
            when_not("remote.ip", &["10.0.0.1"]),
            no_client(),
        ),
        (
            "destination.ip values, local address unknown",
            when("destination.ip", &["10.0.0.2"]),
            no_dest(),
        ),
        (
            "destination.ip notValues, local address unknown",
            when_not("destination.ip", &["10.0.0.2"]),
            no_dest(),
        ),
        (
            "ports, port unknown",
            to(json!({"ports": ["8000"]})),
            no_port(),
        ),
        (
            "notPorts, port unknown",
            to(json!({"notPorts": ["8000"]})),
            no_port(),
        ),
        (
            "ports, port unknown, TCP",
            to(json!({"ports": ["8000"]})),
            no_port().tcp(),
        ),
        (
            "destination.port values, port unknown",
            when("destination.port", &["8000"]),
            no_port(),
        ),
        (
            "destination.port notValues, port unknown",
            when_not("destination.port", &["8000"]),
            no_port(),
        ),
    ];
    let mut checks = Vec::new();
    for (name, rule, request) in rows {
        let spec = |action: &str| json!({"action": action, "rules": [rule.clone()]});
        checks.push((
            name,
            UNKNOWN,
            vec![policy("p", spec("ALLOW"))],
            request.clone(),
            "deny: no ALLOW policy matched",
        ));
        checks.push((
            name,
            UNKNOWN,
            vec![policy("p", spec("DENY"))],
            request.clone(),
            "deny: denied by foo/p rule 0",
        ));
        checks.push((
            name,
            UNKNOWN,
            vec![policy("p", spec("AUDIT"))],
            request.clone(),
            "allow: no ALLOW policy applies; audit: foo/p rule 0",
        ));
        checks.push((
            name,
            UNKNOWN,
            vec![dry_run(policy("p", spec("DENY")))],
            request.clone(),
            "allow: no ALLOW policy applies; dry-run: deny (denied by foo/p rule 0)",
        ));
        checks.push((
            name,
            UNKNOWN,
            vec![dry_run(policy("p", spec("ALLOW")))],
            request,
            "allow: no ALLOW policy applies; dry-run: deny (no ALLOW policy matched)",
        ));
    }
    check_rows(checks);
}

#[test]
fn unknown_addresses_widen_only_their_own_field() {
    let no_peer = || Req {
        direct_remote_ip: None,
        ..req()
    };
    let deny = |rule: Value| vec![policy("p", json!({"action": "DENY", "rules": [rule]}))];
    let allow = |rule: Value| vec![policy("p", json!({"action": "ALLOW", "rules": [rule]}))];
    check_rows(vec![
        (
            "DENY ipBlocks AND principals: the principal still has to match",
            UNKNOWN,
            deny(from(
                json!({"ipBlocks": ["10.0.0.0/8"], "principals": [BOB]}),
            )),
            no_peer().principal(ALICE),
            "allow: no ALLOW policy applies",
        ),
        (
            "DENY ipBlocks AND principals: matching principal denies with the peer unknown",
            UNKNOWN,
            deny(from(
                json!({"ipBlocks": ["10.0.0.0/8"], "principals": [BOB]}),
            )),
            no_peer().principal(BOB),
            "deny: denied by foo/p rule 0",
        ),
        (
            "ALLOW from [ipBlocks] OR [principals]: the other source still allows",
            UNKNOWN,
            allow(
                json!({"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}, {"source": {"principals": [ALICE]}}]}),
            ),
            no_peer().principal(ALICE),
            "allow: allowed by foo/p rule 0",
        ),
        (
            "ALLOW notIpBlocks: an unknown peer is not 'outside' the block",
            UNKNOWN,
            allow(from(json!({"notIpBlocks": ["192.0.2.0/24"]}))),
            no_peer(),
            "deny: no ALLOW policy matched",
        ),
        (
            "DENY on the peer does not read the client address",
            UNKNOWN,
            deny(from(json!({"remoteIpBlocks": ["192.0.2.0/24"]}))),
            no_peer(),
            "allow: no ALLOW policy applies",
        ),
        (
            "the first DENY rule in Envoy order is reported among address-indexed rules",
            UNKNOWN,
            vec![
                policy(
                    "b",
                    json!({"action": "DENY", "rules": [from(json!({"ipBlocks": ["10.0.0.0/8"]}))]}),
                ),
                policy(
                    "a",
                    json!({"action": "DENY", "rules": [from(json!({"ipBlocks": ["172.16.0.0/12"]}))]}),
                ),
            ],
            no_peer(),
            "deny: denied by foo/a rule 0",
        ),
    ]);
}
