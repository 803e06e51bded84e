//! The released `.wasm` in host-sim: what a user sees for allowed, denied, dry-run and audited
//! requests and for TCP connections (status, body, details, headers, logs, counters, closed
//! connections).

use host_sim::{Connection, Host, HttpOutcome, Plugin, Request};
use integration_tests::filter_wasm;

/// Envoy gives every downstream connection its own id (a process-wide counter), and the plugin
/// caches per-connection facts by it; host-sim's default id is the same for every connection,
/// so each test connection gets a fresh one here.
fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

const FRONTEND: &str = "spiffe://cluster.local/ns/demo/sa/frontend";
const OPS: &str = "spiffe://cluster.local/ns/ops/sa/deployer";

/// `envoy-configs/demo/plugin-config.yaml`'s policies, as JSON.
const DEMO: &str = r#"{
  "workload": {"namespace": "demo", "labels": {"app": "backend"}},
  "decisionHeader": "x-spiffe-authz",
  "policies": [
    {"metadata": {"name": "deny-quarantined-networks", "namespace": "istio-system"},
     "spec": {"action": "DENY", "rules": [{"from": [{"source": {"ipBlocks": ["203.0.113.0/24"]}}]}]}},
    {"metadata": {"name": "require-mtls-dry-run", "namespace": "istio-system",
                  "annotations": {"istio.io/dry-run": "true"}},
     "spec": {"action": "DENY", "rules": [{"from": [{"source": {"notPrincipals": ["*"]}}]}]}},
    {"metadata": {"name": "backend-allow-frontend", "namespace": "demo"},
     "spec": {"selector": {"matchLabels": {"app": "backend"}},
              "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/demo/sa/frontend"]}}],
                         "to": [{"operation": {"methods": ["GET", "HEAD"], "paths": ["/api/*", "/healthz"]}}]}]}},
    {"metadata": {"name": "deny-debug-endpoints", "namespace": "demo"},
     "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/debug/*"]}}]}]}},
    {"metadata": {"name": "backend-allow-ops-writes", "namespace": "demo"},
     "spec": {"rules": [{"from": [{"source": {"namespaces": ["ops"]}}],
                         "to": [{"operation": {"methods": ["PUT"], "paths": ["/api/*"]}}],
                         "when": [{"key": "request.headers[x-change-ticket]", "values": ["CHG-*"]}]}]}},
    {"metadata": {"name": "audit-writes", "namespace": "demo"},
     "spec": {"action": "AUDIT", "rules": [{"to": [{"operation": {"methods": ["PUT", "POST"]}}]}]}}
  ]
}"#;

fn plugin(config: &str) -> Plugin {
    let host = Host::builder()
        .wasm_file(filter_wasm())
        .build()
        .expect("the filter loads");
    host.configure(config)
        .expect("the demo configuration is accepted")
}

fn get(path: &str) -> Request {
    Request::get(path).authority("backend.demo.svc.cluster.local:8000")
}

fn from(uri: &str) -> Connection {
    Connection::mtls(uri)
        .id(next_id())
        .source("10.0.0.1:43210")
        .destination("10.0.0.2:8000")
}

fn details(out: &HttpOutcome) -> Option<&str> {
    out.local_response.as_ref().map(|r| r.details.as_str())
}

#[test]
fn allowed_requests_reach_the_upstream_quietly() {
    let mut p = plugin(DEMO);
    let out = p.http_request(from(FRONTEND), get("/api/orders")).unwrap();
    assert!(out.allowed(), "{out:?}");
    assert_eq!(out.vm_failure, None);
    assert_eq!(
        out.response_header_changes.get("x-spiffe-authz"),
        Some("allow; policy=demo/backend-allow-frontend; rule=0")
    );
    // Nothing logged per allowed request at the default level.
    assert!(out.logs.is_empty(), "{:?}", out.logs);
    assert_eq!(p.counter("spiffe_authz.rbac.allowed"), Some(1));
}

#[test]
fn denials_answer_like_envoy_rbac_and_name_the_policy() {
    let mut p = plugin(DEMO);
    let cases: &[(&str, Connection, Request, &str)] = &[
        (
            "a DENY policy matched (after BASE path normalization)",
            from(FRONTEND),
            get("/api/../debug/pprof"),
            "rbac_access_denied_matched_policy[demo/deny-debug-endpoints]",
        ),
        (
            "no ALLOW policy matched: POST from frontend",
            from(FRONTEND),
            Request::post("/api/orders"),
            "rbac_access_denied_matched_policy[none]",
        ),
        (
            "a look-alike service account is not frontend",
            from("spiffe://cluster.local/ns/demo/sa/frontend-evil"),
            get("/api/orders"),
            "rbac_access_denied_matched_policy[none]",
        ),
        (
            "plaintext: unauthenticated",
            Connection::plaintext().id(next_id()),
            get("/api/orders"),
            "rbac_access_denied_matched_policy[none]",
        ),
        (
            "ipBlocks on the direct peer, mesh-wide",
            from(FRONTEND).source("203.0.113.9:5555"),
            get("/api/orders"),
            "rbac_access_denied_matched_policy[istio-system/deny-quarantined-networks]",
        ),
    ];
    for (behaviour, connection, request, want) in cases.iter().cloned() {
        let out = p.http_request(connection, request).unwrap();
        let r = out
            .local_response
            .as_ref()
            .unwrap_or_else(|| panic!("{behaviour}: allowed"));
        assert_eq!(r.status, 403, "{behaviour}");
        assert_eq!(r.body, "RBAC: access denied", "{behaviour}");
        assert_eq!(r.details, want, "{behaviour}");
        assert!(out.upstream_request.is_none(), "{behaviour}");
        // One line per denial, naming the plugin, request and policy.
        let lines: Vec<_> = out
            .logs
            .iter()
            .filter(|l| l.message.starts_with("spiffe-authz: denied"))
            .collect();
        assert_eq!(lines.len(), 1, "{behaviour}: {:?}", out.logs);
        assert!(
            lines[0].message.contains("path="),
            "{behaviour}: {:?}",
            lines[0]
        );
    }
    assert_eq!(
        p.counter("spiffe_authz.rbac.denied"),
        Some(cases.len() as u64)
    );
}

#[test]
fn ip_blocks_fail_closed_behind_x_forwarded_for_and_remote_ip_blocks_is_the_field_for_it() {
    // Istio sidecar inbound HCM: use_remote_address false, so Envoy's source.address is the
    // rightmost XFF address (port 0); ipBlocks is about the direct peer, which an HTTP filter
    // then cannot see (envoy-properties.md §2). The XFF value must never stand in for it: the
    // answer is the same inside or outside the block, and the DENY on an unknown address fails
    // closed (the engine's rule for unknown addresses).
    let mut p = plugin(DEMO);
    let with_xff = |p: &mut Plugin, xff: &str| {
        p.http_request(
            from(FRONTEND),
            get("/api/orders").header("x-forwarded-for", xff),
        )
        .unwrap()
    };
    let inside = with_xff(&mut p, "203.0.113.9");
    let outside = with_xff(&mut p, "198.51.100.7");
    assert_eq!(details(&inside), details(&outside));
    assert_eq!(
        details(&inside),
        Some("rbac_access_denied_matched_policy[istio-system/deny-quarantined-networks]")
    );

    // An edge proxy (use_remote_address: true) reports the direct peer: XFF is irrelevant.
    let host = Host::builder()
        .wasm_file(filter_wasm())
        .use_remote_address(true)
        .build()
        .unwrap();
    let mut edge = host.configure(DEMO).unwrap();
    assert!(with_xff(&mut edge, "203.0.113.9").allowed());
    let out = edge
        .http_request(
            from(FRONTEND).source("203.0.113.9:5555"),
            get("/api/orders"),
        )
        .unwrap();
    assert!(!out.allowed());

    // Behind a proxy the client is the XFF address: Istio's remoteIpBlocks matches it (the
    // AuthorizationPolicy reference: "remoteIpBlocks ... from X-Forwarded-For"), so a DENY
    // there denies the quarantined client only.
    let remote = r#"{"workload": {"namespace": "demo"}, "policies": [
        {"metadata": {"name": "deny-quarantined-clients", "namespace": "istio-system"},
         "spec": {"action": "DENY", "rules": [{"from": [{"source": {"remoteIpBlocks": ["203.0.113.0/24"]}}]}]}}]}"#;
    let mut p = plugin(remote);
    let cases = [
        (
            "203.0.113.9",
            Some("rbac_access_denied_matched_policy[istio-system/deny-quarantined-clients]"),
        ),
        ("198.51.100.7", None),
    ];
    for (xff, want) in cases {
        assert_eq!(
            details(&with_xff(&mut p, xff)),
            want,
            "x-forwarded-for {xff}"
        );
    }
}

#[test]
fn a_peer_whose_identity_fails_verification_is_denied_before_policies() {
    // A foreign trust domain: Istio would refuse the handshake; evaluated as unauthenticated
    // it could dodge a DENY on its principal.
    let mut p = plugin(DEMO);
    let out = p
        .http_request(
            from("spiffe://evil.example/ns/demo/sa/frontend"),
            get("/api/orders"),
        )
        .unwrap();
    assert_eq!(details(&out), Some("spiffe_authz_invalid_peer_identity"));
    assert_eq!(out.local_response.as_ref().map(|r| r.status), Some(403));
    assert!(
        out.logs.iter().any(|l| l
            .message
            .starts_with("spiffe-authz: denied principal=invalid(")
            && l.message.contains("evil.example")),
        "{:?}",
        out.logs
    );
    assert_eq!(p.counter("spiffe_authz.invalid_peer_identity"), Some(1));
    assert_eq!(p.counter("spiffe_authz.rbac.denied"), Some(1));
}

#[test]
fn a_header_value_with_a_nul_is_denied_as_malformed() {
    // CVE-2019-9900: Envoy's codecs reject it; only a broken host hands it over.
    let mut p = plugin(DEMO);
    let out = p
        .http_request(
            from(FRONTEND),
            get("/api/orders").header("x-change-ticket", "CHG-1\0"),
        )
        .unwrap();
    assert_eq!(
        details(&out),
        Some("spiffe_authz_malformed_request_headers")
    );
}

#[test]
fn dry_run_and_audit_are_reported_never_enforced() {
    let mut p = plugin(DEMO);
    // The dry-run DENY (notPrincipals: ["*"]) would deny a plaintext caller.
    let out = p
        .http_request(Connection::plaintext().id(next_id()), get("/healthz"))
        .unwrap();
    assert_eq!(
        details(&out),
        Some("rbac_access_denied_matched_policy[none]")
    );
    assert!(out.logs.iter().any(
        |l| l.message.contains("dry-run denied") && l.message.contains("require-mtls-dry-run")
    ));
    // Envoy counts the DENY filter's shadow result under Istio's shadow_rules_stat_prefix
    // istio_dry_run_deny_ (common/rbac/utility.cc generateStats; builder.go
    // shadowRuleStatPrefix); the AUDIT filter's unprefixed shadow counters stay untouched.
    assert_eq!(
        p.counter("spiffe_authz.rbac.istio_dry_run_deny_shadow_denied"),
        Some(1)
    );
    assert_eq!(p.counter("spiffe_authz.rbac.shadow_denied"), Some(0));

    // Allowed and audited: the AUDIT match is logged and counted, the request goes through.
    let out = p
        .http_request(
            from(OPS),
            Request::new("PUT", "/api/orders/7").header("x-change-ticket", "CHG-1042"),
        )
        .unwrap();
    assert!(out.allowed(), "{out:?}");
    assert!(out
        .logs
        .iter()
        .any(|l| l.message.starts_with("spiffe-authz: audit")
            && l.message.contains("demo/audit-writes")));
    assert_eq!(p.counter("spiffe_authz.rbac.audited"), Some(1));
}

#[test]
fn tcp_connections_are_decided_at_first_data_and_closed_on_deny() {
    // Envoy's network RBAC decides in onData; HTTP-only rules never match TCP.
    let mut p = plugin(DEMO);
    let mut conn = p.tcp_connection(from(FRONTEND)).unwrap();
    let out = conn.data(b"hello");
    assert!(out.connection_closed, "{out:?}");
    assert!(
        out.forwarded.is_empty(),
        "no byte reaches the upstream: {out:?}"
    );
    drop(conn);

    let tcp = r#"{"workload": {"namespace": "demo"}, "policies": [
        {"metadata": {"name": "tcp-allow-frontend", "namespace": "demo"},
         "spec": {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/demo/sa/frontend"]}}],
                             "to": [{"operation": {"ports": ["8000"]}}]}]}}]}"#;
    let mut p = plugin(tcp);
    let mut conn = p.tcp_connection(from(FRONTEND)).unwrap();
    let out = conn.data(b"hello");
    assert!(!out.connection_closed, "{out:?}");
    assert_eq!(out.forwarded, "hello");
    let out = conn.data(b" world");
    assert_eq!(out.forwarded, "hello world");
    drop(conn);
    let mut conn = p
        .tcp_connection(Connection::plaintext().id(next_id()))
        .unwrap();
    assert!(conn.data(b"x").connection_closed);
    drop(conn);
    assert_eq!(p.counter("spiffe_authz.rbac.allowed"), Some(1));
    assert_eq!(p.counter("spiffe_authz.rbac.denied"), Some(1));
}

#[test]
fn with_the_cache_per_connection_facts_cost_host_calls_once() {
    // On by default (safe on Envoy and host-sim, whose connection ids are unique).
    let mut p = plugin(DEMO);
    let first = p.http_request(from(FRONTEND).id(7), get("/api/a")).unwrap();
    let second = p.http_request(from(FRONTEND).id(7), get("/api/b")).unwrap();
    assert!(first.allowed() && second.allowed());
    assert!(
        second.hostcalls < first.hostcalls,
        "first {} second {}",
        first.hostcalls,
        second.hostcalls
    );
    // Another connection is another peer, even right after a cached one.
    let other = p
        .http_request(Connection::plaintext().id(next_id()), get("/api/c"))
        .unwrap();
    assert!(!other.allowed());
}

#[test]
fn experimental_envoy_filters_conditions_read_dynamic_metadata() {
    // istio generator.go envoyFilterGenerator: a metadata matcher on
    // filter_metadata["envoy.filters.http.lua"]["role"]; `[v]` is a list one_of.
    let config = r#"{"workload": {"namespace": "demo"}, "policies": [
        {"metadata": {"name": "allow-tagged", "namespace": "demo"},
         "spec": {"rules": [{"when": [{"key": "experimental.envoy.filters.http.lua[role]",
                                       "values": ["reader", "[admin]"]}]}]}}]}"#;
    let mut p = plugin(config);
    let lua = |role: serde_json::Value| {
        get("/api/orders")
            .filter_metadata("envoy.filters.http.lua", serde_json::json!({"role": role}))
    };
    let cases = [
        ("a string value", lua(serde_json::json!("reader")), true),
        (
            "[admin] matches a list holding admin",
            lua(serde_json::json!(["ops", "admin"])),
            true,
        ),
        (
            "a string admin is not a list",
            lua(serde_json::json!("admin")),
            false,
        ),
        ("a number is not a string", lua(serde_json::json!(7)), false),
        ("no metadata written", get("/api/orders"), false),
    ];
    for (behaviour, request, allowed) in cases {
        let out = p.http_request(from(FRONTEND), request).unwrap();
        assert_eq!(out.allowed(), allowed, "{behaviour}: {out:?}");
        if !allowed {
            assert_eq!(
                details(&out),
                Some("rbac_access_denied_matched_policy[none]"),
                "{behaviour}"
            );
        }
    }
}

#[test]
fn an_invalid_peer_is_denied_even_when_no_policy_reads_the_identity() {
    // Issue #5: `policies: []` allows every request, but not one from a peer whose presented
    // identity fails verification (a foreign trust domain here), in either mTLS mode.
    for mode in ["PERMISSIVE", "STRICT"] {
        let config = format!(
            r#"{{"workload": {{"namespace": "demo"}}, "mtlsMode": "{mode}", "policies": []}}"#
        );
        let mut p = plugin(&config);
        let out = p
            .http_request(
                from("spiffe://evil.example/ns/demo/sa/frontend"),
                get("/api/orders"),
            )
            .unwrap();
        assert_eq!(
            details(&out),
            Some("spiffe_authz_invalid_peer_identity"),
            "{mode}"
        );
        assert_eq!(
            p.counter("spiffe_authz.invalid_peer_identity"),
            Some(1),
            "{mode}"
        );
        let ok = p.http_request(from(FRONTEND), get("/api/orders")).unwrap();
        assert!(ok.allowed(), "{mode}: {ok:?}");
        let mut conn = p
            .tcp_connection(from("spiffe://evil.example/ns/demo/sa/frontend"))
            .unwrap();
        assert!(conn.data(b"x").connection_closed, "{mode}: TCP");
    }
}
