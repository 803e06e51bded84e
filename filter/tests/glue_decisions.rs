//! Decisions through the glue with the real engine: what a user sees for allow, deny,
//! dry-run and audit (status, details, counters, log lines), and which facts feed which
//! policy field.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use spiffe_authz::config::LogLevel;
use spiffe_authz::engine::{
    Decision, PolicyName, PolicyRef, Reason, ShadowResult, ShadowResults, Verdict,
};
use spiffe_authz::glue::facts::encode_pairs;
use spiffe_authz::glue::fake::FakeHost;
use spiffe_authz::glue::plugin::{
    COUNTER_ALLOWED, COUNTER_AUDITED, COUNTER_DENIED, COUNTER_DRY_RUN_ALLOW_SHADOW_ALLOWED,
    COUNTER_DRY_RUN_ALLOW_SHADOW_DENIED, COUNTER_DRY_RUN_DENY_SHADOW_ALLOWED,
    COUNTER_DRY_RUN_DENY_SHADOW_DENIED, COUNTER_SHADOW_ALLOWED, COUNTER_SHADOW_DENIED,
};
use spiffe_authz::glue::report::report;
use spiffe_authz::glue::{Action, Root};

const FRONTEND: &str = "spiffe://cluster.local/ns/demo/sa/frontend";
const OPS: &str = "spiffe://cluster.local/ns/ops/sa/deployer";

/// The demo configuration of `envoy-configs/demo/plugin-config.yaml`, as JSON.
const DEMO: &str = r#"{
  "trustDomain": "cluster.local",
  "workload": {"namespace": "demo", "labels": {"app": "backend", "version": "v1"}},
  "decisionHeader": "x-spiffe-authz",
  "policies": [
    {"metadata": {"name": "deny-quarantined-networks", "namespace": "istio-system"},
     "spec": {"action": "DENY", "rules": [{"from": [{"source": {"ipBlocks": ["203.0.113.0/24"]}}]}]}},
    {"metadata": {"name": "require-mtls-dry-run", "namespace": "istio-system",
                  "annotations": {"istio.io/dry-run": "true"}},
     "spec": {"action": "DENY", "rules": [{"from": [{"source": {"notPrincipals": ["*"]}}]}]}},
    {"metadata": {"name": "backend-allow-frontend", "namespace": "demo"},
     "spec": {"selector": {"matchLabels": {"app": "backend"}}, "action": "ALLOW",
              "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/demo/sa/frontend"]}}],
                         "to": [{"operation": {"methods": ["GET", "HEAD"], "paths": ["/api/*", "/healthz"]}}]}]}},
    {"metadata": {"name": "deny-debug-endpoints", "namespace": "demo"},
     "spec": {"selector": {"matchLabels": {"app": "backend"}}, "action": "DENY",
              "rules": [{"to": [{"operation": {"paths": ["/debug/*"]}}]}]}},
    {"metadata": {"name": "backend-allow-ops-writes", "namespace": "demo"},
     "spec": {"selector": {"matchLabels": {"app": "backend"}}, "action": "ALLOW",
              "rules": [{"from": [{"source": {"namespaces": ["ops"]}}],
                         "to": [{"operation": {"methods": ["POST", "PUT", "DELETE"], "paths": ["/api/*"]}}],
                         "when": [{"key": "request.headers[x-change-ticket]", "values": ["CHG-*"]}]}]}},
    {"metadata": {"name": "audit-writes", "namespace": "demo"},
     "spec": {"action": "AUDIT", "rules": [{"to": [{"operation": {"methods": ["POST", "PUT", "PATCH", "DELETE"]}}]}]}}
  ]
}"#;

struct Call<'a> {
    peer: Option<&'a str>,
    source: &'a str,
    method: &'a str,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
}

const BASE: Call<'static> = Call {
    peer: Some(FRONTEND),
    source: "10.0.0.1:43210",
    method: "GET",
    path: "/api/orders",
    headers: &[],
};

fn run(config: &str, call: &Call<'_>) -> (FakeHost, Action) {
    let host = FakeHost::new();
    host.set_configuration(config);
    let mut root = Root::new();
    assert!(root.on_configure(&host), "{:?}", host.logs.borrow());
    host.logs.borrow_mut().clear();
    match call.peer {
        Some(uri) => {
            host.set_property("connection.mtls", vec![1]);
            host.set_property("connection.uri_san_peer_certificate", uri);
        }
        None => {
            host.set_property("connection.mtls", vec![0]);
        }
    }
    host.set_property("source.address", call.source);
    host.set_property("destination.address", "10.0.0.2:8000");
    let mut headers = vec![
        (":authority", "backend.demo.svc.cluster.local:8000"),
        (":path", call.path),
        (":method", call.method),
    ];
    headers.extend_from_slice(call.headers);
    host.set_request_headers(&headers);
    let mut stream = root.new_http_stream();
    let action = stream.on_request_headers(&host);
    if action == Action::Continue {
        stream.on_response_headers(&host);
    }
    (host, action)
}

fn details(host: &FakeHost) -> Option<String> {
    host.local_responses
        .borrow()
        .first()
        .map(|r| r.details.clone())
}

#[test]
fn demo_traffic_decisions() {
    // envoy-configs/demo/traffic.jsonl, one row per line there.
    let cases: Vec<(&str, Call<'_>, Option<&str>)> = vec![
        ("frontend reads the API: ALLOW policy matches", BASE, None),
        (
            "frontend writes: no ALLOW rule matches POST from frontend",
            Call {
                method: "POST",
                ..BASE
            },
            Some("rbac_access_denied_matched_policy[none]"),
        ),
        (
            "a look-alike service account is not frontend (exact principal match)",
            Call {
                peer: Some("spiffe://cluster.local/ns/demo/sa/frontend-evil"),
                ..BASE
            },
            Some("rbac_access_denied_matched_policy[none]"),
        ),
        (
            "path traversal to a denied endpoint is normalized first (BASE)",
            Call {
                path: "/api/../debug/pprof",
                ..BASE
            },
            Some("rbac_access_denied_matched_policy[demo/deny-debug-endpoints]"),
        ),
        (
            "ops writes with a change ticket: allowed",
            Call {
                peer: Some(OPS),
                method: "PUT",
                path: "/api/orders/7",
                headers: &[("x-change-ticket", "CHG-1042")],
                ..BASE
            },
            None,
        ),
        (
            "ops writes without a change ticket: the when condition fails",
            Call {
                peer: Some(OPS),
                method: "PUT",
                path: "/api/orders/7",
                ..BASE
            },
            Some("rbac_access_denied_matched_policy[none]"),
        ),
        (
            "plaintext caller: unauthenticated, no ALLOW matches",
            Call { peer: None, ..BASE },
            Some("rbac_access_denied_matched_policy[none]"),
        ),
        (
            "a quarantined network is denied mesh-wide even for frontend (ipBlocks, direct peer)",
            Call {
                source: "203.0.113.9:5555",
                ..BASE
            },
            Some("rbac_access_denied_matched_policy[istio-system/deny-quarantined-networks]"),
        ),
    ];
    for (behaviour, call, want) in cases {
        let (host, action) = run(DEMO, &call);
        assert_eq!(details(&host).as_deref(), want, "{behaviour}");
        assert_eq!(action == Action::Continue, want.is_none(), "{behaviour}");
    }
}

#[test]
fn an_allowed_request_is_counted_not_logged_and_may_carry_the_decision_header() {
    let (host, action) = run(DEMO, &BASE);
    assert_eq!(action, Action::Continue);
    assert_eq!(host.counter(COUNTER_ALLOWED), 1);
    assert_eq!(host.counter(COUNTER_DENIED), 0);
    // Nothing per allowed request at the default level.
    assert!(
        host.logs_at_least(LogLevel::Info).is_empty(),
        "{:?}",
        host.logs.borrow()
    );
    assert_eq!(
        host.response_headers.borrow().clone(),
        vec![(
            "x-spiffe-authz".to_string(),
            "allow; policy=demo/backend-allow-frontend; rule=0".to_string()
        )]
    );
}

#[test]
fn a_denial_names_the_policy_and_rule_everywhere() {
    let (host, _) = run(
        DEMO,
        &Call {
            path: "/debug/pprof",
            ..BASE
        },
    );
    let r = host.local_responses.borrow()[0].clone();
    assert_eq!(r.status, 403);
    assert_eq!(r.body, b"RBAC: access denied");
    assert_eq!(
        r.details,
        "rbac_access_denied_matched_policy[demo/deny-debug-endpoints]"
    );
    assert!(r.headers.contains(&(
        "x-spiffe-authz".to_string(),
        "deny; policy=demo/deny-debug-endpoints; rule=0".to_string()
    )));
    let lines = host.logs_at_least(LogLevel::Info);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("principal=\"cluster.local/ns/demo/sa/frontend\"")
            && lines[0].contains("policy=demo/deny-debug-endpoints rule=0"),
        "{lines:?}"
    );
    assert_eq!(host.counter(COUNTER_DENIED), 1);
}

#[test]
fn dry_run_denials_are_logged_and_counted_never_enforced() {
    // istio.io/dry-run: evaluated and reported only (Istio authz dry-run; Envoy RBAC
    // shadow_rules of the DENY filter -> istio_dry_run_deny_shadow_denied).
    let (host, action) = run(
        DEMO,
        &Call {
            peer: None,
            path: "/healthz",
            ..BASE
        },
    );
    // The plaintext caller is denied by the ALLOW policies, not by the dry-run DENY.
    assert_eq!(
        details(&host).as_deref(),
        Some("rbac_access_denied_matched_policy[none]")
    );
    assert_eq!(action, Action::Pause);
    assert_eq!(host.counter(COUNTER_DRY_RUN_DENY_SHADOW_DENIED), 1);
    let lines = host.logs_at_least(LogLevel::Info);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("dry-run denied (not enforced)")
                && l.contains("istio-system/require-mtls-dry-run rule=0")),
        "{lines:?}"
    );
}

/// Every shadow counter, in the order of [`SHADOW_COUNTERS`]' rows.
const SHADOW_COUNTERS: [&str; 6] = [
    COUNTER_SHADOW_ALLOWED,
    COUNTER_SHADOW_DENIED,
    COUNTER_DRY_RUN_DENY_SHADOW_ALLOWED,
    COUNTER_DRY_RUN_DENY_SHADOW_DENIED,
    COUNTER_DRY_RUN_ALLOW_SHADOW_ALLOWED,
    COUNTER_DRY_RUN_ALLOW_SHADOW_DENIED,
];

#[test]
fn shadow_results_are_counted_per_rbac_filter_as_envoy_counts_them() {
    // Envoy's RBAC filter counts its shadow engine's result as shadow_allowed or
    // shadow_denied under `<prefix>rbac.<shadow_rules_stat_prefix>` (rbac_filter.cc,
    // common/rbac/utility.cc generateStats); Istio gives the ALLOW filter the prefix
    // istio_dry_run_allow_, the DENY filter istio_dry_run_deny_ and the AUDIT filter none
    // (builder.go shadowRuleStatPrefix), and orders the filters AUDIT, DENY, ALLOW.
    struct Row {
        behaviour: &'static str,
        policies: &'static str,
        path: &'static str,
        action: Action,
        /// Counts of SHADOW_COUNTERS, in order.
        shadow: [i64; 6],
        audited: i64,
        /// Log lines at the denial level that must appear (empty: none about dry runs).
        logs: &'static [&'static str],
    }
    let dry = |name: &str, action: &str, rules: &str| {
        format!(
            r#"{{"metadata": {{"name": "{name}", "namespace": "demo", "annotations": {{"istio.io/dry-run": "true"}}}}, "spec": {{"action": "{action}", "rules": {rules}}}}}"#
        )
    };
    let on_admin = r#"[{"to": [{"operation": {"paths": ["/admin/*"]}}]}]"#;
    let dry_deny = dry("would-deny", "DENY", on_admin);
    let dry_allow = dry("would-allow", "ALLOW", on_admin);
    let enforced_deny = r#"{"metadata": {"name": "deny-admin", "namespace": "demo"}, "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin/*"]}}]}]}}"#;
    let rows = [
        Row {
            behaviour: "no dry-run policy: no filter has shadow rules, nothing counted (rbac_filter.cc counts only when a shadow engine exists)",
            policies: "",
            path: "/admin/x",
            action: Action::Continue,
            shadow: [0, 0, 0, 0, 0, 0],
            audited: 0,
            logs: &[],
        },
        Row {
            behaviour: "a matching dry-run DENY: the DENY filter's shadow engine denies (istio_dry_run_deny_shadow_denied), the request goes through",
            policies: "DENY",
            path: "/admin/x",
            action: Action::Continue,
            shadow: [0, 0, 0, 1, 0, 0],
            audited: 0,
            logs: &["dry-run denied (not enforced) principal=\"cluster.local/ns/demo/sa/frontend\" method=\"GET\" host=\"backend.demo.svc.cluster.local:8000\" path=\"/admin/x\" policy=demo/would-deny rule=0 (a dry-run DENY policy matched)"],
        },
        Row {
            behaviour: "a dry-run DENY that does not match: the DENY filter's shadow engine allows (istio_dry_run_deny_shadow_allowed)",
            policies: "DENY",
            path: "/api/x",
            action: Action::Continue,
            shadow: [0, 0, 1, 0, 0, 0],
            audited: 0,
            logs: &[],
        },
        Row {
            behaviour: "a matching dry-run ALLOW: the ALLOW filter's shadow engine allows (istio_dry_run_allow_shadow_allowed)",
            policies: "ALLOW",
            path: "/admin/x",
            action: Action::Continue,
            shadow: [0, 0, 0, 0, 1, 0],
            audited: 0,
            logs: &[],
        },
        Row {
            behaviour: "dry-run ALLOW policies and none matches: the ALLOW filter's shadow engine denies (istio_dry_run_allow_shadow_denied), never enforced",
            policies: "ALLOW",
            path: "/api/x",
            action: Action::Continue,
            shadow: [0, 0, 0, 0, 0, 1],
            audited: 0,
            logs: &["dry-run denied (not enforced) principal=\"cluster.local/ns/demo/sa/frontend\" method=\"GET\" host=\"backend.demo.svc.cluster.local:8000\" path=\"/api/x\" policy=none rule=- (no dry-run ALLOW policy matched)"],
        },
        Row {
            behaviour: "dry-run DENY and ALLOW both: each filter counts its own shadow result once",
            policies: "DENY+ALLOW",
            path: "/admin/x",
            action: Action::Continue,
            shadow: [0, 0, 0, 1, 1, 0],
            audited: 0,
            logs: &["policy=demo/would-deny rule=0 (a dry-run DENY policy matched)"],
        },
        Row {
            behaviour: "an enforced DENY denies: the ALLOW filter after it never runs, so its shadow rules count nothing; the DENY filter's shadow rules ran first and count",
            policies: "DENY+ALLOW+enforced",
            path: "/admin/x",
            action: Action::Pause,
            shadow: [0, 0, 0, 1, 0, 0],
            audited: 0,
            logs: &["policy=demo/would-deny rule=0 (a dry-run DENY policy matched)"],
        },
    ];
    for row in &rows {
        let mut policies = Vec::new();
        for part in row.policies.split('+').filter(|p| !p.is_empty()) {
            policies.push(match part {
                "DENY" => dry_deny.clone(),
                "ALLOW" => dry_allow.clone(),
                "enforced" => enforced_deny.to_string(),
                other => panic!("unknown part {other}"),
            });
        }
        let config = format!(
            r#"{{"workload": {{"namespace": "demo"}}, "policies": [{}]}}"#,
            policies.join(",")
        );
        let (host, action) = run(
            &config,
            &Call {
                path: row.path,
                ..BASE
            },
        );
        let b = row.behaviour;
        assert_eq!(action, row.action, "{b}");
        let counted = SHADOW_COUNTERS.map(|name| host.counter(name));
        assert_eq!(counted, row.shadow, "{b}");
        assert_eq!(host.counter(COUNTER_AUDITED), row.audited, "{b}");
        let lines = host.logs_at_least(LogLevel::Info);
        let dry_lines: Vec<&String> = lines.iter().filter(|l| l.contains("dry-run")).collect();
        assert_eq!(dry_lines.len(), row.logs.len(), "{b}: {lines:?}");
        for want in row.logs {
            assert!(
                lines.iter().any(|l| l.contains(want)),
                "{b}: {want:?} in {lines:?}"
            );
        }
    }
}

#[test]
fn a_dry_run_audit_shadow_result_is_counted_and_logged_as_a_dry_run_audit() {
    // Istio's validation refuses a dry-run AUDIT policy (so does this plugin's), but the engine
    // reports one as Envoy would run it: the AUDIT filter's shadow engine, action LOG, whose
    // result is always allowed (engine_impl.cc handleAction) and counted as the unprefixed
    // rbac.shadow_allowed (builder.go shadowRuleStatPrefix gives LOG none). It is never an
    // audit: Envoy sets no access-log hint in shadow mode.
    let host = FakeHost::new();
    host.set_configuration(r#"{"workload": {"namespace": "demo"}, "policies": []}"#);
    let mut root = Root::new();
    assert!(root.on_configure(&host));
    let plugin = root.plugin().cloned().unwrap();
    let rows: [(&str, Option<PolicyRef>, &[&str]); 2] = [
        (
            "a dry-run AUDIT rule matched: logged as a dry-run audit naming it",
            Some(PolicyRef {
                policy: PolicyName::from("demo/would-audit"),
                rule: 2,
            }),
            &["dry-run audit principal=p method=\"GET\" policy=demo/would-audit rule=2"],
        ),
        (
            "no dry-run AUDIT rule matched: counted (LOG is always allowed), nothing logged",
            None,
            &[],
        ),
    ];
    for (behaviour, policy, logs) in rows {
        host.counters.borrow_mut().clear();
        host.logs.borrow_mut().clear();
        let decision = Decision {
            verdict: Verdict::Allow,
            reason: Reason::NoAllowPolicies,
            dry_run: None,
            audit: None,
            shadow: ShadowResults {
                audit: Some(ShadowResult {
                    verdict: Verdict::Allow,
                    policy,
                }),
                deny: None,
                allow: None,
            },
        };
        report(&plugin, &host, &decision, "p", "method=\"GET\"");
        let counted = SHADOW_COUNTERS.map(|name| host.counter(name));
        assert_eq!(counted, [1, 0, 0, 0, 0, 0], "{behaviour}");
        assert_eq!(host.counter(COUNTER_AUDITED), 0, "{behaviour}");
        let lines = host.logs_at_least(LogLevel::Info);
        let dry: Vec<&String> = lines.iter().filter(|l| l.contains("dry-run")).collect();
        assert_eq!(dry.len(), logs.len(), "{behaviour}: {lines:?}");
        for want in logs {
            assert!(
                lines.iter().any(|l| l.contains(want)),
                "{behaviour}: {want:?} in {lines:?}"
            );
        }
    }
}

#[test]
fn audit_matches_are_logged_and_counted_never_enforced() {
    let (host, action) = run(
        DEMO,
        &Call {
            peer: Some(OPS),
            method: "PUT",
            path: "/api/orders/7",
            headers: &[("x-change-ticket", "CHG-1")],
            ..BASE
        },
    );
    assert_eq!(action, Action::Continue);
    assert_eq!(host.counter(COUNTER_AUDITED), 1);
    let lines = host.logs_at_least(LogLevel::Info);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("spiffe-authz: audit") && l.contains("demo/audit-writes")),
        "{lines:?}"
    );
}

#[test]
fn ip_blocks_need_the_direct_peer_which_xff_hides() {
    // Istio ipBlocks = direct_remote_ip; in an HTTP filter Envoy's source.address is the
    // XFF-derived client address with port 0 when the HCM does not use the remote address
    // (envoy-properties.md §2). Such an address is not the direct peer, so the direct peer is
    // unknown: the DENY on ipBlocks fails closed and fires (engine: an unknown address counts
    // as matched in DENY rules), and remoteIpBlocks (remote.ip) sees the XFF address.
    let (host, _) = run(
        DEMO,
        &Call {
            source: "203.0.113.9:0",
            ..BASE
        },
    );
    assert_eq!(
        details(&host).as_deref(),
        Some("rbac_access_denied_matched_policy[istio-system/deny-quarantined-networks]"),
        "DENY ipBlocks with the direct peer unknown must fail closed"
    );

    let remote = DEMO.replace("\"ipBlocks\"", "\"remoteIpBlocks\"");
    let (host, _) = run(
        &remote,
        &Call {
            source: "203.0.113.9:0",
            ..BASE
        },
    );
    assert_eq!(
        details(&host).as_deref(),
        Some("rbac_access_denied_matched_policy[istio-system/deny-quarantined-networks]")
    );
}

#[test]
fn request_principals_come_from_istio_authn_metadata() {
    // Istio's authn filter writes request.auth.* to dynamic metadata `istio_authn`, read by
    // Istio's RBAC filter (pilot authz model) and by this plugin.
    let config = r#"{"workload": {"namespace": "demo"}, "policies": [
        {"metadata": {"name": "jwt-only", "namespace": "demo"},
         "spec": {"rules": [{"from": [{"source": {"requestPrincipals": ["https://issuer.example/alice"]}}],
                             "when": [{"key": "request.auth.claims[groups]", "values": ["admins"]}]}]}}]}"#;
    let groups = encode_pairs(&[("admins", ""), ("dev", "")]);
    let claims = encode_pairs::<&[u8], &[u8]>(&[
        (b"iss", b"https://issuer.example"),
        (b"sub", b"alice"),
        (b"groups", &groups),
    ]);
    let authn = encode_pairs::<&[u8], &[u8]>(&[
        (b"request.auth.principal", b"https://issuer.example/alice"),
        (b"request.auth.claims", &claims),
    ]);
    let host = FakeHost::new();
    host.set_configuration(config);
    let mut root = Root::new();
    assert!(root.on_configure(&host));
    host.set_request_headers(&[(":path", "/"), (":method", "GET"), (":authority", "b")]);
    host.set_property("metadata.filter_metadata.istio_authn", authn);
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Continue
    );

    // Without the metadata (no JWT) the same request is denied.
    host.properties
        .borrow_mut()
        .remove("metadata.filter_metadata.istio_authn");
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Pause
    );
}

#[test]
fn decision_metadata_goes_to_filter_state() {
    // proxy_set_property stores wasm.<name> filter state: visible to access logs
    // (proxy-wasm-abi.md §3.3); there is no ABI call for dynamic metadata.
    let config = DEMO.replace(
        "\"decisionHeader\": \"x-spiffe-authz\",",
        "\"decisionMetadata\": true,",
    );
    let (host, _) = run(&config, &BASE);
    assert_eq!(
        host.set_properties.borrow().clone(),
        vec![(
            "spiffe_authz.decision".to_string(),
            b"allow; policy=demo/backend-allow-frontend; rule=0".to_vec()
        )]
    );
    assert!(host.response_headers.borrow().is_empty());
}

#[test]
fn tcp_uses_the_same_policies_without_http_attributes() {
    // traffic.jsonl last row: HTTP-only rules cannot match TCP, so no ALLOW matches.
    let host = FakeHost::new();
    host.set_configuration(DEMO);
    let mut root = Root::new();
    assert!(root.on_configure(&host));
    host.set_property("connection.mtls", vec![1]);
    host.set_property("connection.uri_san_peer_certificate", FRONTEND);
    host.set_property("source.address", "10.0.0.1:43210");
    host.set_property("destination.address", "10.0.0.2:8000");
    let mut conn = root.new_tcp_stream();
    assert_eq!(conn.on_new_connection(&host), Action::Continue);
    assert_eq!(conn.on_downstream_data(&host), Action::Pause);
    assert_eq!(host.closed_downstream.get(), 1);

    // A port-only ALLOW rule does match a TCP connection.
    let tcp = r#"{"workload": {"namespace": "demo"}, "policies": [
        {"metadata": {"name": "tcp-allow-frontend", "namespace": "demo"},
         "spec": {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/demo/sa/frontend"]}}],
                             "to": [{"operation": {"ports": ["8000"]}}]}]}}]}"#;
    let host2 = FakeHost::new();
    host2.set_configuration(tcp);
    let mut root = Root::new();
    assert!(root.on_configure(&host2));
    for (k, v) in host.properties.borrow().iter() {
        host2.set_property(k, v.clone());
    }
    let mut conn = root.new_tcp_stream();
    assert_eq!(conn.on_downstream_data(&host2), Action::Continue);
    assert_eq!(conn.on_downstream_data(&host2), Action::Continue);
    assert_eq!(host2.closed_downstream.get(), 0);
    assert_eq!(
        host2.counter(COUNTER_ALLOWED),
        1,
        "decided once per connection"
    );
}

#[test]
fn per_policy_counters_are_defined_on_first_use() {
    // Envoy RBAC per-policy stats shape: <prefix>.rbac.policy.<name>.<allowed|denied>.
    let host = FakeHost::new();
    host.set_configuration(DEMO);
    let mut root = Root::new();
    assert!(root.on_configure(&host));
    host.set_property("connection.mtls", vec![1]);
    host.set_property("connection.uri_san_peer_certificate", FRONTEND);
    host.set_property("source.address", "10.0.0.1:43210");
    host.set_request_headers(&[
        (":path", "/debug/x"),
        (":method", "GET"),
        (":authority", "b"),
    ]);
    for _ in 0..3 {
        root.new_http_stream().on_request_headers(&host);
    }
    let name = "spiffe_authz.rbac.policy.demo.deny-debug-endpoints.denied";
    assert_eq!(host.counter(name), 3);
    let defined = host
        .counter_names
        .borrow()
        .iter()
        .filter(|n| *n == name)
        .count();
    assert_eq!(defined, 1, "defined once, not per request");
    // No per-policy counter when no policy decided (default deny).
    host.set_request_headers(&[(":path", "/x"), (":method", "POST"), (":authority", "b")]);
    root.new_http_stream().on_request_headers(&host);
    assert!(!host
        .counter_names
        .borrow()
        .iter()
        .any(|n| n.contains(".none.")));
}

#[test]
fn host_calls_per_request_with_the_demo_policies() {
    // The figures in BENCHMARKS.md "Plugin": the demo policies read the principal (identity
    // per connection, default sources: peer certificate then URI SAN), ipBlocks (source.address,
    // per request: in HTTP it may be XFF-derived) and a request header.
    let run = |config: &str| {
        let host = FakeHost::new();
        host.set_configuration(config);
        let mut root = Root::new();
        assert!(root.on_configure(&host));
        host.set_property("connection.mtls", vec![1]);
        host.set_property("connection.uri_san_peer_certificate", FRONTEND);
        host.set_property("connection_id", 7u64.to_le_bytes().to_vec());
        host.set_property("source.address", "10.0.0.1:43210");
        host.set_request_headers(&[(":path", "/api/x"), (":method", "GET"), (":authority", "b")]);
        host.take_calls();
        let mut per_request = Vec::new();
        for _ in 0..2 {
            root.new_http_stream().on_request_headers(&host);
            let calls = host.take_calls();
            let reads = calls.iter().filter(|c| !c.contains("metric")).count();
            per_request.push((reads, calls.len() - reads));
        }
        per_request
    };
    // headers, connection.{mtls,peer_certificate,uri_san_peer_certificate}, clock (certificate
    // validity), source.address; counters: allowed, istio_dry_run_deny_shadow_allowed (the
    // dry-run DENY policy did not match), the
    // per-policy counter (defined on the first request only).
    // By default the connection cache is on: + connection_id on every request, the
    // connection's facts and the clock once.
    assert_eq!(run(DEMO), vec![(7, 4), (3, 3)]);
    // Without it every request reads them all.
    let uncached = DEMO.replace(
        "\"decisionHeader\"",
        "\"cacheConnectionFacts\": false, \"decisionHeader\"",
    );
    assert_eq!(run(&uncached), vec![(6, 4), (6, 3)]);
}
