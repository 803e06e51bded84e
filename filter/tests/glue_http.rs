//! The HTTP path against a fake host: fail closed, deny the way Envoy's RBAC filter does, ask
//! the host only for what policies need, fetch per-connection facts once per connection.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use spiffe_authz::config::LogLevel;
use spiffe_authz::glue::fake::FakeHost;
use spiffe_authz::glue::http::{
    DETAILS_HOST_ERROR, DETAILS_INVALID_PEER_IDENTITY, DETAILS_MTLS_REQUIRED,
    DETAILS_NOT_CONFIGURED,
};
use spiffe_authz::glue::plugin::{ConnectionCache, COUNTER_DENIED};
use spiffe_authz::glue::{Action, HostStatus, Root};

const FRONTEND: &str = "spiffe://cluster.local/ns/demo/sa/frontend";

fn root_with(config: &str) -> (Root, FakeHost) {
    let host = FakeHost::new();
    host.set_configuration(config);
    let mut root = Root::new();
    assert!(root.on_configure(&host), "{:?}", host.logs.borrow());
    host.take_calls();
    host.logs.borrow_mut().clear();
    (root, host)
}

fn get(host: &FakeHost, path: &str) {
    host.set_request_headers(&[
        (":authority", "backend.demo.svc:8000"),
        (":path", path),
        (":method", "GET"),
        ("user-agent", "curl"),
    ]);
}

fn mtls_peer(host: &FakeHost, uri: &str, connection_id: u64) {
    host.set_property("connection.mtls", vec![1]);
    host.set_property("connection.uri_san_peer_certificate", uri);
    host.set_property("connection_id", connection_id.to_le_bytes().to_vec());
}

fn property_calls(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| c.strip_prefix("proxy_get_property ").map(str::to_string))
        .collect()
}

const DENY_ALL: &str = r#"{"workload": {"namespace": "demo"}, "decisionHeader": "x-authz",
    "denyResponse": {"headers": {"x-why": "rbac"}},
    "policies": [{"metadata": {"name": "deny-all", "namespace": "demo"},
                  "spec": {"action": "DENY", "rules": [{}]}}]}"#;

#[test]
fn a_denial_answers_like_envoy_rbac() {
    // Envoy RBAC filter: 403, body "RBAC: access denied", response code details
    // rbac_access_denied_matched_policy[<policy>] (rbac_filter.rst).
    let (root, host) = root_with(DENY_ALL);
    get(&host, "/api/orders");
    let mut stream = root.new_http_stream();
    assert_eq!(stream.on_request_headers(&host), Action::Pause);
    let responses = host.local_responses.borrow();
    assert_eq!(responses.len(), 1);
    let r = &responses[0];
    assert_eq!(r.status, 403);
    assert_eq!(r.body, b"RBAC: access denied");
    assert!(
        r.details.starts_with("rbac_access_denied_matched_policy["),
        "{}",
        r.details
    );
    assert!(r
        .headers
        .contains(&("x-why".to_string(), "rbac".to_string())));
    let authz = r
        .headers
        .iter()
        .find(|(k, _)| k == "x-authz")
        .map(|(_, v)| v.as_str());
    assert!(
        authz.is_some_and(|v| v.starts_with("deny; policy=")),
        "{:?}",
        r.headers
    );
    assert_eq!(host.counter(COUNTER_DENIED), 1);
}

#[test]
fn one_log_line_per_denial_names_the_plugin_and_the_request() {
    let (root, host) = root_with(DENY_ALL);
    get(&host, "/api/orders");
    root.new_http_stream().on_request_headers(&host);
    let lines = host.logs_at_least(LogLevel::Info);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    for part in [
        "spiffe-authz: denied",
        "method=\"GET\"",
        "host=\"backend.demo.svc:8000\"",
        "path=\"/api/orders\"",
        "policy=",
        "principal=",
    ] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
}

#[test]
fn the_denial_log_level_is_configurable() {
    let (root, host) = root_with(&DENY_ALL.replace(
        "\"decisionHeader\"",
        "\"denialLogLevel\": \"debug\", \"decisionHeader\"",
    ));
    get(&host, "/");
    root.new_http_stream().on_request_headers(&host);
    assert!(
        host.logs_at_least(LogLevel::Info).is_empty(),
        "{:?}",
        host.logs.borrow()
    );
}

#[test]
fn without_a_configuration_every_request_is_denied() {
    let host = FakeHost::new();
    let root = Root::new();
    get(&host, "/");
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Pause
    );
    let r = &host.local_responses.borrow()[0];
    assert_eq!(
        (r.status, r.details.as_str()),
        (403, DETAILS_NOT_CONFIGURED)
    );
}

#[test]
fn a_failing_host_call_fails_closed() {
    // STRICT makes the identity needed whatever the policies; the host then fails the call.
    let (root, host) =
        root_with(r#"{"workload": {"namespace": "demo"}, "mtlsMode": "STRICT", "policies": []}"#);
    get(&host, "/");
    host.fail_property("connection.mtls", HostStatus::BadArgument);
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Pause
    );
    let r = &host.local_responses.borrow()[0];
    assert_eq!((r.status, r.details.as_str()), (403, DETAILS_HOST_ERROR));
    assert_eq!(host.counter(COUNTER_DENIED), 1);
    assert!(host
        .logs_at_least(LogLevel::Error)
        .iter()
        .any(|l| l.contains("proxy_get_property(connection.mtls): BadArgument")));
}

#[test]
fn strict_mtls_denies_plaintext_before_any_policy() {
    // Istio PeerAuthentication STRICT refuses plaintext peers; here: a deny naming the reason.
    let (root, host) =
        root_with(r#"{"workload": {"namespace": "demo"}, "mtlsMode": "STRICT", "policies": []}"#);
    get(&host, "/");
    host.set_property("connection.mtls", vec![0]);
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Pause
    );
    let r = &host.local_responses.borrow()[0];
    assert_eq!((r.status, r.details.as_str()), (403, DETAILS_MTLS_REQUIRED));
    let lines = host.logs_at_least(LogLevel::Info);
    assert!(lines[0].contains("unauthenticated(plaintext"), "{lines:?}");
}

#[test]
fn a_forged_xfcc_on_plaintext_is_not_an_identity() {
    // Envoy removes XFCC from plaintext requests in the trustworthy modes, so a header there is
    // the client's own (identity::establish; envoy-properties.md §4.4).
    let (root, host) = root_with(
        r#"{"workload": {"namespace": "demo"}, "mtlsMode": "STRICT",
            "identitySources": ["xfcc"], "policies": []}"#,
    );
    host.set_request_headers(&[
        (":path", "/"),
        (":method", "GET"),
        (":authority", "b"),
        (
            "x-forwarded-client-cert",
            "By=spiffe://cluster.local/ns/demo/sa/backend;URI=spiffe://cluster.local/ns/demo/sa/frontend",
        ),
    ]);
    host.set_property("connection.mtls", vec![0]);
    root.new_http_stream().on_request_headers(&host);
    let r = &host.local_responses.borrow()[0];
    assert_eq!(r.details, DETAILS_MTLS_REQUIRED);
}

#[test]
fn no_policy_reads_only_the_identity_once_per_connection() {
    // With no policies, nothing a policy could read is fetched; the peer identity is, once per
    // connection (cached by connection id), because a presented but invalid identity is denied
    // before policies whatever they read (issue #5).
    let (root, host) = root_with(r#"{"workload": {"namespace": "demo"}, "policies": []}"#);
    get(&host, "/");
    mtls_peer(&host, FRONTEND, 7);
    root.new_http_stream().on_request_headers(&host);
    let calls = host.take_calls();
    assert_eq!(
        property_calls(&calls),
        [
            "connection_id",
            "connection.mtls",
            "connection.peer_certificate",
            "connection.uri_san_peer_certificate"
        ],
        "{calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("proxy_get_header_map_pairs"))
            .count(),
        1
    );
    // The next request on the same connection costs one call: the connection id.
    root.new_http_stream().on_request_headers(&host);
    let calls = host.take_calls();
    assert_eq!(property_calls(&calls), ["connection_id"], "{calls:?}");
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("proxy_get_current_time")),
        "{calls:?}"
    );
}

#[test]
fn connection_facts_are_fetched_once_per_connection() {
    // HTTP contexts are per stream in Envoy; identity is per connection: by default the
    // configuration caches it by connection_id, so the second request on a connection asks
    // only for the id.
    let (root, host) =
        root_with(r#"{"workload": {"namespace": "demo"}, "mtlsMode": "STRICT", "policies": []}"#);
    get(&host, "/");
    mtls_peer(&host, FRONTEND, 7);
    root.new_http_stream().on_request_headers(&host);
    let first = property_calls(&host.take_calls());
    assert!(first.contains(&"connection.mtls".to_string()), "{first:?}");
    assert!(
        first.contains(&"connection.uri_san_peer_certificate".to_string()),
        "{first:?}"
    );
    root.new_http_stream().on_request_headers(&host);
    let second = property_calls(&host.take_calls());
    assert_eq!(second, vec!["connection_id".to_string()]);
    // A new connection is fetched again.
    host.set_property("connection_id", 8u64.to_le_bytes().to_vec());
    root.new_http_stream().on_request_headers(&host);
    let third = property_calls(&host.take_calls());
    assert!(third.contains(&"connection.mtls".to_string()), "{third:?}");
}

#[test]
fn the_connection_cache_is_bounded() {
    // No connection-close callback reaches an HTTP filter: the cache must not grow forever.
    let (root, host) = root_with(
        r#"{"workload": {"namespace": "demo"}, "mtlsMode": "STRICT",
            "cacheConnectionFacts": true, "policies": []}"#,
    );
    get(&host, "/");
    mtls_peer(&host, FRONTEND, 0);
    for id in 0..(ConnectionCache::CAPACITY as u64 * 2 + 3) {
        host.set_property("connection_id", id.to_le_bytes().to_vec());
        root.new_http_stream().on_request_headers(&host);
    }
    assert!(root.cached_connections() <= ConnectionCache::CAPACITY);
}

#[test]
fn invalid_utf8_in_headers_never_panics() {
    // A panic would kill the VM; invalid bytes are decoded lossily so DENY rules still see them.
    let (root, host) = root_with(DENY_ALL);
    *host.request_headers.borrow_mut() = vec![
        (b":path".to_vec(), b"/admin/\xff\xfe".to_vec()),
        (b":method".to_vec(), b"GET".to_vec()),
        (b"x-\xc3".to_vec(), b"\x80".to_vec()),
    ];
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Pause
    );
    assert_eq!(host.local_responses.borrow().len(), 1);
}

#[test]
fn invalid_utf8_identity_is_an_invalid_peer_not_an_absent_one() {
    // The peer presented a URI SAN; that it is not text makes it fail verification. Reading
    // it as absent would make the peer anonymous, which PERMISSIVE lets policies allow.
    let (root, host) = root_with(
        r#"{"workload": {"namespace": "demo"}, "policies": [
        {"metadata": {"name": "deny-evil", "namespace": "demo"},
         "spec": {"action": "DENY", "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/a/sa/evil"]}}]}]}}]}"#,
    );
    get(&host, "/");
    host.set_property("connection.mtls", vec![1]);
    host.set_property(
        "connection.uri_san_peer_certificate",
        b"spiffe://\xff/ns/a".to_vec(),
    );
    root.new_http_stream().on_request_headers(&host);
    let r = &host.local_responses.borrow()[0];
    assert_eq!(r.details, DETAILS_INVALID_PEER_IDENTITY);
}

/// ALLOW frontend only; the cache is on by default.
const ALLOW_FRONTEND: &str = r#"{"workload": {"namespace": "demo"}, "policies": [
    {"metadata": {"name": "allow-frontend", "namespace": "demo"},
     "spec": {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/demo/sa/frontend"]}}]}]}}]}"#;

/// The connection facts a host reports for one connection id.
fn connection(host: &FakeHost, id: u64, peer: Option<&str>) {
    host.set_property("connection_id", id.to_le_bytes().to_vec());
    match peer {
        Some(uri) => mtls_peer(host, uri, id),
        None => {
            host.set_property("connection.mtls", vec![0]);
            host.properties
                .borrow_mut()
                .remove("connection.uri_san_peer_certificate");
        }
    }
}

#[test]
fn connections_with_distinct_ids_never_share_an_identity() {
    // Envoy numbers connections with one process-wide counter (connection_impl.cc
    // ConnectionImpl::next_global_id_), so the default cache keyed by connection_id is safe:
    // interleaved requests on different connections each get their own peer.
    let (root, host) = root_with(ALLOW_FRONTEND);
    get(&host, "/");
    let other = "spiffe://cluster.local/ns/demo/sa/other";
    let cases: &[(&str, u64, Option<&str>, Action)] = &[
        (
            "frontend on connection 1",
            1,
            Some(FRONTEND),
            Action::Continue,
        ),
        ("plaintext on connection 2", 2, None, Action::Pause),
        (
            "another workload on connection 3",
            3,
            Some(other),
            Action::Pause,
        ),
        (
            "frontend again on connection 1",
            1,
            Some(FRONTEND),
            Action::Continue,
        ),
        ("plaintext again on connection 2", 2, None, Action::Pause),
        (
            "frontend on a new connection 4",
            4,
            Some(FRONTEND),
            Action::Continue,
        ),
        (
            "the other workload again on connection 3",
            3,
            Some(other),
            Action::Pause,
        ),
    ];
    for (behaviour, id, peer, want) in cases {
        connection(&host, *id, *peer);
        let got = root.new_http_stream().on_request_headers(&host);
        assert_eq!(got, *want, "{behaviour}");
    }
    assert_eq!(root.cached_connections(), 4);
}

#[test]
fn a_reused_connection_id_is_the_host_contract_the_cache_relies_on() {
    // What a host that reused an id would get: the first connection's facts. Envoy never
    // reuses one while it runs (a process-wide counter); a host that does must set
    // cacheConnectionFacts false, and then every request reads its own facts.
    let (root, host) = root_with(ALLOW_FRONTEND);
    get(&host, "/");
    connection(&host, 9, Some(FRONTEND));
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Continue
    );
    connection(&host, 9, None);
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Continue,
        "cached: the host promised id 9 is the same connection"
    );

    let (root, host) = root_with(&ALLOW_FRONTEND.replace(
        r#""policies""#,
        r#""cacheConnectionFacts": false, "policies""#,
    ));
    get(&host, "/");
    connection(&host, 9, Some(FRONTEND));
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Continue
    );
    connection(&host, 9, None);
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Pause
    );
    let calls = property_calls(&host.take_calls());
    assert!(!calls.contains(&"connection_id".to_string()), "{calls:?}");
}

#[test]
fn a_new_configuration_starts_with_an_empty_cache() {
    // Facts established under one configuration (trust domains, sources) are never reused by
    // the next one.
    let (mut root, host) = root_with(ALLOW_FRONTEND);
    get(&host, "/");
    connection(&host, 5, Some(FRONTEND));
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Continue
    );
    assert_eq!(root.cached_connections(), 1);
    // A stream that started before the update keeps deciding with its own configuration.
    let mut started_before = root.new_http_stream();
    host.set_configuration(&ALLOW_FRONTEND.replace(
        "\"demo\"}, \"policies\"",
        "\"demo\"}, \"trustDomain\": \"example.org\", \"policies\"",
    ));
    assert!(root.on_configure(&host), "{:?}", host.logs.borrow());
    assert_eq!(root.cached_connections(), 0);
    // Under trust domain example.org, cluster.local's frontend is not a valid identity.
    let fresh = root.new_http_stream().on_request_headers(&host);
    assert_eq!(fresh, Action::Pause);
    assert_eq!(
        host.local_responses
            .borrow()
            .last()
            .map(|r| r.details.clone()),
        Some(DETAILS_INVALID_PEER_IDENTITY.to_string())
    );
    assert_eq!(
        started_before.on_request_headers(&host),
        Action::Continue,
        "the old configuration's cache still knows connection 5"
    );
    assert_eq!(root.cached_connections(), 1);
}

/// `(first, later)` host calls of two HTTP requests on one connection, or of one TCP
/// connection's decision (`later` empty), each call as the fake host records it.
fn calls_of(config: &str, peer: Option<&str>, tcp: bool) -> (Vec<String>, Vec<String>) {
    let (root, host) = root_with(config);
    get(&host, "/api/orders");
    match peer {
        Some(uri) => mtls_peer(&host, uri, 7),
        None => {
            host.set_property("connection.mtls", vec![0]);
            host.set_property("connection_id", 7u64.to_le_bytes().to_vec());
        }
    }
    if tcp {
        root.new_tcp_stream().on_downstream_data(&host);
        return (host.take_calls(), Vec::new());
    }
    root.new_http_stream().on_request_headers(&host);
    let first = host.take_calls();
    root.new_http_stream().on_request_headers(&host);
    (first, host.take_calls())
}

#[test]
fn host_calls_per_request_as_benchmarks_md_lists_them() {
    // BENCHMARKS.md "Host calls per request": every row here is a row there. The identity is
    // established on every connection whatever the policies read (issue #5: a presented but
    // invalid identity is denied before policies, as Istio would never have served it), so
    // even `policies: []` reads it; the cache (`cacheConnectionFacts`, on by default) then
    // costs one `connection_id` read per request and saves the rest.
    const NONE: &str = r#"{"workload": {"namespace": "demo"}, "policies": []}"#;
    const NONE_UNCACHED: &str =
        r#"{"workload": {"namespace": "demo"}, "cacheConnectionFacts": false, "policies": []}"#;
    const PRINCIPALS: &str = r#"{"workload": {"namespace": "demo"},
        "identitySources": ["connectionAttributes"], "policies": [
        {"metadata": {"name": "allow-frontend", "namespace": "demo"},
         "spec": {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/demo/sa/frontend"]}}]}]}}]}"#;
    let uncached_principals = PRINCIPALS.replace(
        "\"identitySources\"",
        "\"cacheConnectionFacts\": false, \"identitySources\"",
    );
    const HEADERS: &str = "proxy_get_header_map_pairs request";
    const ID: &str = "proxy_get_property connection_id";
    const MTLS: &str = "proxy_get_property connection.mtls";
    const CERT: &str = "proxy_get_property connection.peer_certificate";
    const URI_SAN: &str = "proxy_get_property connection.uri_san_peer_certificate";
    const CLOCK: &str = "proxy_get_current_time_nanoseconds ";
    // Counters are defined at configure: a decision increments by id. Ids follow the
    // definition order (allowed first, eleven in all).
    const ALLOWED: &str = "proxy_increment_metric 0";
    // The per-policy counter is defined on the policy's first decision.
    const DEFINE_POLICY: &str =
        "proxy_define_metric spiffe_authz.rbac.policy.demo.allow-frontend.allowed";
    let policy_counter = "proxy_increment_metric 11";
    type Row<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        bool,
        Vec<&'a str>,
        Vec<&'a str>,
    );
    let rows: Vec<Row<'_>> = vec![
        (
            "policies: [], mTLS, cached: first request = id + identity (mtls, peer cert, URI SAN, clock for the certificate's validity); later = id",
            NONE,
            Some(FRONTEND),
            false,
            vec![HEADERS, ID, MTLS, CERT, URI_SAN, CLOCK, ALLOWED],
            vec![HEADERS, ID, ALLOWED],
        ),
        (
            "policies: [], mTLS, cacheConnectionFacts false: the identity on every request",
            NONE_UNCACHED,
            Some(FRONTEND),
            false,
            vec![HEADERS, MTLS, CERT, URI_SAN, CLOCK, ALLOWED],
            vec![HEADERS, MTLS, CERT, URI_SAN, CLOCK, ALLOWED],
        ),
        (
            "policies: [], plaintext: connection.mtls false ends the identity look-up (no clock)",
            NONE,
            None,
            false,
            vec![HEADERS, ID, MTLS, ALLOWED],
            vec![HEADERS, ID, ALLOWED],
        ),
        (
            "policies: [], plaintext, uncached: headers and connection.mtls",
            NONE_UNCACHED,
            None,
            false,
            vec![HEADERS, MTLS, ALLOWED],
            vec![HEADERS, MTLS, ALLOWED],
        ),
        (
            "policies: [], plaintext, TCP: connection.mtls only",
            NONE,
            None,
            true,
            vec![MTLS, ALLOWED],
            vec![],
        ),
        (
            "policies: [], TCP: the identity once per connection, no cache",
            NONE,
            Some(FRONTEND),
            true,
            vec![MTLS, CERT, URI_SAN, CLOCK, ALLOWED],
            vec![],
        ),
        (
            "one principals rule, connectionAttributes only: no certificate, no clock",
            PRINCIPALS,
            Some(FRONTEND),
            false,
            vec![HEADERS, ID, MTLS, URI_SAN, DEFINE_POLICY, policy_counter, ALLOWED],
            vec![HEADERS, ID, policy_counter, ALLOWED],
        ),
        (
            "one principals rule, connectionAttributes only, uncached",
            &uncached_principals,
            Some(FRONTEND),
            false,
            vec![HEADERS, MTLS, URI_SAN, DEFINE_POLICY, policy_counter, ALLOWED],
            vec![HEADERS, MTLS, URI_SAN, policy_counter, ALLOWED],
        ),
        (
            "one principals rule, connectionAttributes only, TCP",
            PRINCIPALS,
            Some(FRONTEND),
            true,
            vec![MTLS, URI_SAN, DEFINE_POLICY, policy_counter, ALLOWED],
            vec![],
        ),
    ];
    for (behaviour, config, peer, tcp, first, later) in rows {
        let (got_first, got_later) = calls_of(config, peer, tcp);
        assert_eq!(got_first, first, "{behaviour}: first");
        assert_eq!(got_later, later, "{behaviour}: later");
    }
}
