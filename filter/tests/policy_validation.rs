//! Istio's admission validation of AuthorizationPolicy, one row per behaviour.
//!
//! Each row names what it pins: a case of istio/istio `pkg/config/validation/
//! validation_test.go` (`TestValidateAuthorizationPolicy/<name>`), a file of
//! `pkg/config/validation/testdata/crds/authz-{valid,invalid}.yaml`, a rule of
//! `pkg/config/security/security.go` (`ValidateAttribute`, `CheckServiceAccount`,
//! `CheckValidPathTemplate`, `ValidateIPs`, `ValidatePorts`), the CRD schema
//! (`x-kubernetes-validations`, `maxItems`, `maxLength`), or `validation.go`
//! `checkDryRunAnnotation`. Values Istio admits with a surprising meaning are pinned, with
//! their warnings and decisions, in `policy_istio_validation.rs`. Expected errors are the
//! exact lines users see; an empty list means the policy is valid.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[macro_use]
mod policy_support;

use policy_support::*;
use serde_json::{json, Value};
use spiffe_authz::policy::{validate, AuthorizationPolicy};

#[test]
fn valid_policies() {
    check(rows![
        (
            "validation_test.go good",
            policy(json!({
                "selector": {"matchLabels": {"app": "httpbin", "version": "v1"}},
                "rules": [{
                    "from": [{"source": {"principals": ["sa1"]}}, {"source": {"principals": ["sa2"]}}],
                    "to": [{"operation": {"methods": ["GET"]}}, {"operation": {"methods": ["POST"]}}],
                    "when": [
                        {"key": "source.ip", "values": ["1.2.3.4", "5.6.7.0/24"]},
                        {"key": "request.headers[:authority]", "values": ["v1", "v2"]},
                    ],
                }],
            })),
            []
        ),
        (
            "validation_test.go allow-rules-nil",
            policy(json!({"action": "ALLOW"})),
            []
        ),
        (
            "validation_test.go dry-run-valid-allow",
            with_dry_run(policy(json!({"action": "ALLOW"})), "true"),
            []
        ),
        (
            "validation_test.go dry-run-valid-deny",
            with_dry_run(policy(json!({"action": "DENY", "rules": [{}]})), "false"),
            []
        ),
        (
            "strconv.ParseBool accepts 1",
            with_dry_run(policy(json!({})), "1"),
            []
        ),
        (
            "strconv.ParseBool accepts T",
            with_dry_run(policy(json!({})), "T"),
            []
        ),
        (
            "strconv.ParseBool accepts False",
            with_dry_run(policy(json!({})), "False"),
            []
        ),
        (
            "validation_test.go selector-empty-value",
            policy(json!({"selector": {"matchLabels": {"app": "", "version": "v1"}}})),
            []
        ),
        ("authz-valid.yaml full", policy(full_spec()), []),
        (
            "authz-valid.yaml service-account-and-namespace-principal-split",
            policy(json!({"rules": [{"from": [
                {"source": {"serviceAccounts": ["baz/sa", "sa"]}},
                {"source": {"principals": ["bar"]}},
                {"source": {"namespaces": ["bar"]}},
            ]}]})),
            []
        ),
        (
            "rules: [{}] matches everything and is valid",
            policy(json!({"rules": [{}]})),
            []
        ),
        (
            "empty spec: ALLOW with no rules (denies all) is valid",
            policy(json!({})),
            []
        ),
        (
            "absent spec is the empty spec",
            json!({"metadata": {"name": "p", "namespace": "ns"}}),
            []
        ),
        (
            "AUDIT with rules",
            policy(
                json!({"action": "AUDIT", "rules": [{"to": [{"operation": {"paths": ["/audit*"]}}]}]})
            ),
            []
        ),
        (
            "apiVersion security.istio.io/v1beta1",
            {
                let mut p = policy(json!({}));
                p["apiVersion"] = json!("security.istio.io/v1beta1");
                p
            },
            []
        ),
        (
            "apiVersion and kind may be absent",
            json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {}}),
            []
        ),
        (
            "allowedTargetRefs: Gateway",
            policy(
                json!({"targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}})
            ),
            []
        ),
        (
            "allowedTargetRefs: core Service",
            policy(
                json!({"targetRefs": [{"kind": "Service", "name": "svc"}, {"group": "", "kind": "Service", "name": "b"}]})
            ),
            []
        ),
        (
            "allowedTargetRefs: ServiceEntry and GatewayClass",
            policy(json!({"targetRefs": [
                {"group": "networking.istio.io", "kind": "ServiceEntry", "name": "se"},
                {"group": "gateway.networking.k8s.io", "kind": "GatewayClass", "name": "istio"},
            ]})),
            []
        ),
        (
            "ValidatePorts: ParseUint accepts 0, 65535 and leading zeros",
            policy(to(json!({"ports": ["0", "65535", "080"]}))),
            []
        ),
        (
            "ValidateIPs: IPv6 address and CIDR",
            policy(from(
                json!({"ipBlocks": ["::1", "2001:db8::/32"], "remoteIpBlocks": ["::ffff:10.0.0.1"]})
            )),
            []
        ),
        (
            "ValidateIPs: netip.ParsePrefix keeps host bits",
            policy(from(json!({"notIpBlocks": ["10.1.2.3/16", "0.0.0.0/0"]}))),
            []
        ),
        (
            "CheckValidPathTemplate: {*} and {**}",
            policy(to(
                json!({"paths": ["/foo/{*}/bar/{**}", "/{**}", "/a/{*}/", "/{*}/b.c~d:e@f"]})
            )),
            []
        ),
        (
            "CheckValidPathTemplate: literal segments after {**}",
            policy(to(json!({"notPaths": ["/{**}/path/template"]}))),
            []
        ),
        (
            "CheckServiceAccount: name or namespace/name",
            policy(from(
                json!({"serviceAccounts": ["sa", "ns/sa"], "notServiceAccounts": ["other/sa"]})
            )),
            []
        ),
        (
            "ValidateAttribute: source.serviceAccount",
            policy(when("source.serviceAccount", json!(["ns/sa", "sa"]))),
            []
        ),
        (
            "ValidateAttribute: nested claims",
            policy(when("request.auth.claims[nested1][nested2]", json!(["v"]))),
            []
        ),
        (
            "ValidateAttribute: experimental.envoy.filters",
            policy(when(
                "experimental.envoy.filters.network.mysql_proxy[db.table]",
                json!(["[update]"])
            )),
            []
        ),
        (
            "ValidateAttribute: notValues alone",
            policy(not_when("source.namespace", json!(["prod*"]))),
            []
        ),
        (
            "ValidateAttribute: destination.port",
            policy(when("destination.port", json!(["8080"]))),
            []
        ),
        (
            "ValidateAttribute: connection.sni",
            policy(when("connection.sni", json!(["*.example.com"]))),
            []
        ),
        (
            "trustDomains with wildcard suffix",
            policy(from(
                json!({"trustDomains": ["*.example.org"], "notTrustDomains": ["cluster.local"]})
            )),
            []
        ),
        (
            "wildcard: presence, prefix, suffix",
            policy(to(
                json!({"hosts": ["*", "prefix.*", "*.suffix.com"], "paths": ["*", "/p/*", "*/s"]})
            )),
            []
        ),
        (
            "rules maxItems 512 reached, not exceeded",
            policy(json!({"rules": vec![json!({}); 512]})),
            []
        ),
        (
            "serviceAccounts maxItems 16 reached, not exceeded",
            policy(from(
                json!({"serviceAccounts": (0..16).map(|i| format!("sa{i}")).collect::<Vec<_>>()})
            )),
            []
        ),
    ]);
}

/// authz-valid.yaml "full": every field with exact, prefix, suffix and presence values.
fn full_spec() -> Value {
    let strings = |name: &str| {
        json!([
            name,
            format!("{name}-prefix-*"),
            format!("*-suffix-{name}"),
            "*"
        ])
    };
    json!({
        "selector": {"matchLabels": {"app": "httpbin"}},
        "rules": [{
            "from": [{"source": {
                "principals": strings("principal"),
                "requestPrincipals": strings("requestPrincipals"),
                "namespaces": strings("ns"),
                "ipBlocks": ["1.2.3.4", "5.6.0.0/16"],
                "remoteIpBlocks": ["1.2.3.4", "5.6.0.0/16"],
                "notPrincipals": strings("not-principal"),
                "notRequestPrincipals": strings("not-requestPrincipals"),
                "notNamespaces": strings("not-ns"),
                "notIpBlocks": ["9.0.0.1", "9.2.0.0/16"],
                "notRemoteIpBlocks": ["9.0.0.1", "9.2.0.0/16"],
            }}],
            "to": [{"operation": {
                "methods": strings("method"),
                "hosts": ["exact.com", "*.suffix.com", "prefix.*", "*"],
                "ports": ["80", "90"],
                "paths": ["/exact", "/prefix/*", "*/suffix", "*", "/path/template/{*}", "/{**}/path/template"],
                "notMethods": strings("not-method"),
                "notHosts": ["not-exact.com", "*.not-suffix.com", "not-prefix.*", "*"],
                "notPorts": ["8000", "9000"],
                "notPaths": ["/not-exact", "/not-prefix/*", "*/not-suffix", "*"],
            }}],
            "when": [
                {"key": "request.headers[X-header]", "values": strings("header"), "notValues": strings("not-header")},
                {"key": "source.ip", "values": ["10.10.10.10", "192.168.10.0/24"], "notValues": ["90.10.10.10"]},
                {"key": "remote.ip", "values": ["10.10.10.10", "192.168.10.0/24"], "notValues": ["90.168.10.0/24"]},
                {"key": "source.namespace", "values": strings("ns"), "notValues": strings("not-ns")},
                {"key": "source.principal", "values": strings("principal")},
                {"key": "request.auth.principal", "values": ["https://example.com/*"]},
                {"key": "request.auth.audiences", "values": strings("audiences")},
                {"key": "request.auth.presenter", "values": strings("presenter")},
                {"key": "request.auth.claims[iss]", "values": strings("iss")},
                {"key": "request.auth.claims[nested1][nested2]", "values": strings("nested")},
                {"key": "destination.ip", "values": ["10.10.10.10", "192.168.10.0/24"]},
                {"key": "destination.port", "values": ["91", "92"], "notValues": ["9001"]},
                {"key": "connection.sni", "values": ["exact.com", "*.suffix.com", "prefix.*", "*"]},
                {"key": "experimental.envoy.filters.a.b[c]", "values": ["exact", "prefix-*", "*-suffix", "*"]},
            ],
        }],
    })
}

#[test]
fn object_and_action_rules() {
    let custom_refused = "ns/p: spec.action: \"CUSTOM\": CUSTOM (ext_authz) is not supported: spiffe-authz has no ext_authz provider; leave CUSTOM policies to Envoy's ext_authz filter (Istio's own, in a mesh) and remove them from this configuration".to_owned();
    let custom = "ns/p: spec.rules: CUSTOM action without rules is meaningless as it will never be triggered; add an empty rule {} to match every request";
    let provider_name = "ns/p: spec.provider.name: is required";
    let deny_without_rules = "ns/p: spec.rules: DENY action without rules is meaningless as it will never be triggered; add an empty rule {} to match every request";
    let dry_run_field = "ns/p: metadata.annotations[\"istio.io/dry-run\"]";
    check(rows![
        // Istio admits custom-good; this filter refuses every CUSTOM policy (issue 2: no
        // ext_authz provider), after Istio's own CUSTOM checks.
        ("validation_test.go custom-good", policy(json!({"action": "CUSTOM", "provider": {"name": "my-custom-authz"}, "rules": [{}]})), [custom_refused.as_str()]),
        ("validation_test.go custom-empty-provider", policy(json!({"action": "CUSTOM", "provider": {"name": ""}, "rules": [{}]})), [provider_name, custom_refused.as_str()]),
        ("validation_test.go custom-nil-provider", policy(json!({"action": "CUSTOM", "rules": [{}]})), [provider_name, custom_refused.as_str()]),
        ("validation_test.go provider-wrong-action", policy(json!({"action": "ALLOW", "provider": {"name": ""}, "rules": [{}]})),
            ["ns/p: spec.provider: provider must only be set with action CUSTOM, found ALLOW"]),
        ("provider with the default action (ALLOW)", policy(json!({"provider": {"name": "x"}})),
            ["ns/p: spec.provider: provider must only be set with action CUSTOM, found ALLOW"]),
        ("provider with DENY", policy(json!({"action": "DENY", "provider": {"name": "x"}, "rules": [{}]})),
            ["ns/p: spec.provider: provider must only be set with action CUSTOM, found DENY"]),
        ("validation_test.go deny-rules-nil", policy(json!({"action": "DENY"})), [deny_without_rules]),
        ("DENY with rules: [] is DENY without rules (proto decoding)", policy(json!({"action": "DENY", "rules": []})), [deny_without_rules]),
        ("validation_test.go dry-run-invalid-value", with_dry_run(policy(json!({"action": "ALLOW"})), "foo"),
            [format!("{dry_run_field}: \"foo\": value of istio.io/dry-run must be a boolean (true, false, 1, 0, t, f)")]),
        ("strconv.ParseBool rejects yes", with_dry_run(policy(json!({})), "yes"),
            [format!("{dry_run_field}: \"yes\": value of istio.io/dry-run must be a boolean (true, false, 1, 0, t, f)")]),
        ("strconv.ParseBool rejects the empty string", with_dry_run(policy(json!({})), ""),
            [format!("{dry_run_field}: \"\": value of istio.io/dry-run must be a boolean (true, false, 1, 0, t, f)")]),
        ("validation_test.go dry-run-invalid-action-audit", with_dry_run(policy(json!({"action": "AUDIT"})), "true"),
            [format!("{dry_run_field}: istio.io/dry-run is only supported with action ALLOW or DENY, found AUDIT")]),
        ("validation_test.go dry-run-invalid-action-custom", with_dry_run(policy(json!({"action": "CUSTOM"})), "true"),
            [format!("{dry_run_field}: istio.io/dry-run is only supported with action ALLOW or DENY, found CUSTOM"), custom.to_string(), custom_refused.clone()]),
        ("validation.go checkDryRunAnnotation: the annotation is refused on AUDIT whatever its value", with_dry_run(policy(json!({"action": "AUDIT"})), "false"),
            [format!("{dry_run_field}: istio.io/dry-run is only supported with action ALLOW or DENY, found AUDIT")]),
        ("apiVersion must be security.istio.io", {
            let mut p = policy(json!({}));
            p["apiVersion"] = json!("security.istio.io/v1alpha1");
            p
        }, ["ns/p: apiVersion: \"security.istio.io/v1alpha1\": apiVersion must be security.istio.io/v1 or security.istio.io/v1beta1"]),
        ("kind must be AuthorizationPolicy", {
            let mut p = policy(json!({}));
            p["kind"] = json!("PeerAuthentication");
            p
        }, ["ns/p: kind: \"PeerAuthentication\": kind must be AuthorizationPolicy"]),
        ("metadata.name is required", json!({"metadata": {"namespace": "ns"}, "spec": {}}),
            ["ns/<unnamed>: metadata.name: is required"]),
        ("metadata.namespace is required (never guessed)", json!({"metadata": {"name": "p"}, "spec": {}}),
            ["p: metadata.namespace: is required"]),
        ("Kubernetes object names are RFC 1123 subdomains", json!({"metadata": {"name": "Allow_All", "namespace": "ns"}}),
            ["ns/Allow_All: metadata.name: \"Allow_All\": must be a Kubernetes object name (lower-case RFC 1123 subdomain)"]),
        ("Kubernetes namespace names are RFC 1123 labels", json!({"metadata": {"name": "a.b-c", "namespace": "my.ns"}}),
            ["my.ns/a.b-c: metadata.namespace: \"my.ns\": must be a Kubernetes namespace name (lower-case RFC 1123 label)"]),
        ("control characters in names are escaped in messages", json!({"metadata": {"name": "a\nb", "namespace": "ns"}}),
            ["ns/a\\nb: metadata.name: \"a\\nb\": must be a Kubernetes object name (lower-case RFC 1123 subdomain)"]),
        ("every error is reported, in field order", {
            let mut p = policy(json!({"action": "DENY", "selector": {"matchLabels": {"a": "*"}}, "targetRef": {"kind": "Gateway", "name": "g", "group": "gateway.networking.k8s.io"}}));
            p["kind"] = json!("Other");
            p
        }, [
            "ns/p: kind: \"Other\": kind must be AuthorizationPolicy",
            "ns/p: spec: only one of selector, targetRef or targetRefs can be set",
            "ns/p: spec.selector.matchLabels[\"a\"]: \"*\": wildcard is not supported in selector",
            deny_without_rules,
        ]),
    ]);
}

#[test]
fn selector_and_target_ref_rules() {
    let long = "v".repeat(64);
    check(rows![
        ("validation_test.go selector-empty-key", policy(json!({"selector": {"matchLabels": {"app": "httpbin", "": "v1"}}})),
            ["ns/p: spec.selector.matchLabels: empty label key is not supported in selector"]),
        ("validation_test.go selector-wildcard-value", policy(json!({"selector": {"matchLabels": {"app": "httpbin-*"}}})),
            ["ns/p: spec.selector.matchLabels[\"app\"]: \"httpbin-*\": wildcard is not supported in selector"]),
        ("validation_test.go selector-wildcard-key", policy(json!({"selector": {"matchLabels": {"app-*": "httpbin"}}})),
            ["ns/p: spec.selector.matchLabels: \"app-*\": wildcard is not supported in selector"]),
        ("CRD matchLabels value maxLength 63", policy(json!({"selector": {"matchLabels": {"app": long}}})),
            [format!("ns/p: spec.selector.matchLabels[\"app\"]: \"{long}\": label value must be at most 63 characters")]),
        ("CRD: only one of targetRefs or selector (selector + targetRef)", policy(json!({
            "selector": {"matchLabels": {"app": "a"}},
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"},
        })), ["ns/p: spec: only one of selector, targetRef or targetRefs can be set"]),
        ("CRD: only one of targetRefs or selector (targetRef + targetRefs)", policy(json!({
            "targetRef": {"kind": "Service", "name": "a"},
            "targetRefs": [{"kind": "Service", "name": "b"}],
        })), ["ns/p: spec: only one of selector, targetRef or targetRefs can be set"]),
        ("validatePolicyTargetReference: namespace must not be set", policy(json!({"targetRef": {"kind": "Service", "name": "a", "namespace": "other"}})),
            ["ns/p: spec.targetRef.namespace: \"other\": cross namespace referencing is not supported"]),
        ("validatePolicyTargetReference: name must be set", policy(json!({"targetRefs": [{"kind": "Service"}]})),
            ["ns/p: spec.targetRefs[0].name: is required"]),
        ("CRD targetRef kind is required", policy(json!({"targetRef": {"name": "a"}})),
            ["ns/p: spec.targetRef.kind: is required"]),
        ("allowedTargetRefs: Deployment is not a target", policy(json!({"targetRef": {"group": "apps", "kind": "Deployment", "name": "a"}})),
            ["ns/p: spec.targetRef: \"apps/Deployment\": targetRef must be to a Service, ServiceEntry (networking.istio.io), Gateway or GatewayClass (gateway.networking.k8s.io)"]),
        ("allowedTargetRefs: Gateway needs its group", policy(json!({"targetRef": {"kind": "Gateway", "name": "a"}})),
            ["ns/p: spec.targetRef: \"/Gateway\": targetRef must be to a Service, ServiceEntry (networking.istio.io), Gateway or GatewayClass (gateway.networking.k8s.io)"]),
        ("CRD targetRefs maxItems 16", policy(json!({"targetRefs": vec![json!({"kind": "Service", "name": "s"}); 17]})),
            ["ns/p: spec.targetRefs: may have at most 16 items"]),
    ]);
}

#[test]
fn rule_structure_rules() {
    check(rows![
        (
            "validation_test.go from-empty needs a non-nil empty Go slice; from JSON, proto decoding leaves it nil: admitted",
            policy(json!({"rules": [{"from": []}]})),
            []
        ),
        (
            "validation_test.go to-empty, likewise admitted from JSON",
            policy(json!({"rules": [{"to": []}]})),
            []
        ),
        (
            "validation_test.go source-nil",
            policy(json!({"rules": [{"from": [{}]}]})),
            [format!("{SRC}: is required")]
        ),
        (
            "validation_test.go source-empty",
            policy(from(json!({}))),
            [format!("{SRC}: must set at least one field")]
        ),
        (
            "validation_test.go operation-nil",
            policy(json!({"rules": [{"to": [{}]}]})),
            [format!("{OP}: is required")]
        ),
        (
            "validation_test.go operation-empty",
            policy(to(json!({}))),
            [format!("{OP}: must set at least one field")]
        ),
        (
            "source with only empty lists is empty",
            policy(from(json!({"principals": [], "namespaces": []}))),
            [format!("{SRC}: must set at least one field")]
        ),
        (
            "errors name the rule and entry index",
            policy(json!({"rules": [{}, {"from": [{"source": {"principals": ["a"]}}, {}]}]})),
            ["ns/p: spec.rules[1].from[1].source: is required"]
        ),
        (
            "authz-invalid.yaml service-account-and-namespace",
            policy(from(
                json!({"serviceAccounts": ["bar/sa"], "namespaces": ["bar"]})
            )),
            [format!(
                "{SRC}: cannot set serviceAccounts with namespaces or principals"
            )]
        ),
        (
            "authz-invalid.yaml service-account-and-namespace-principal",
            policy(from(
                json!({"serviceAccounts": ["baz/sa"], "principals": ["bar"]})
            )),
            [format!(
                "{SRC}: cannot set serviceAccounts with namespaces or principals"
            )]
        ),
        (
            "CRD rule: notServiceAccounts with notNamespaces",
            policy(from(
                json!({"notServiceAccounts": ["baz/sa"], "notNamespaces": ["bar"]})
            )),
            [format!(
                "{SRC}: cannot set serviceAccounts with namespaces or principals"
            )]
        ),
        (
            "CRD rules maxItems 512",
            policy(json!({"rules": vec![json!({}); 513]})),
            ["ns/p: spec.rules: may have at most 512 items"]
        ),
        (
            "CRD from maxItems 512",
            policy(
                json!({"rules": [{"from": vec![json!({"source": {"namespaces": ["a"]}}); 513]}]})
            ),
            ["ns/p: spec.rules[0].from: may have at most 512 items"]
        ),
    ]);
}

#[test]
fn empty_values_are_rejected_everywhere() {
    let empty = "empty value not allowed";
    let mut rows = Vec::new();
    for field in [
        "principals",
        "notPrincipals",
        "requestPrincipals",
        "notRequestPrincipals",
        "namespaces",
        "notNamespaces",
        "ipBlocks",
        "notIpBlocks",
        "remoteIpBlocks",
        "notRemoteIpBlocks",
        "serviceAccounts",
        "notServiceAccounts",
        "trustDomains",
        "notTrustDomains",
    ] {
        let first = if field.to_lowercase().contains("ipblocks") {
            "1.2.3.4"
        } else {
            "a"
        };
        rows.push((
            // validation_test.go Principals-empty, NotPrincipals-empty, ... NotRemoteIpBlocks-empty
            format!("validation_test.go {field}-empty / CheckEmptyValues"),
            policy(from(json!({field: [first, ""]}))),
            vec![format!("{SRC}.{field}[1]: {empty}")],
        ));
    }
    for field in [
        "hosts",
        "notHosts",
        "ports",
        "notPorts",
        "methods",
        "notMethods",
        "paths",
        "notPaths",
    ] {
        let first = if field.contains("orts") { "80" } else { "/a" };
        rows.push((
            format!("validation_test.go {field}-empty / CheckEmptyValues"),
            policy(to(json!({field: [first, ""]}))),
            vec![format!("{OP}.{field}[1]: {empty}")],
        ));
    }
    rows.push((
        "validation_test.go value-empty".into(),
        policy(when("request.headers[:authority]", json!(["v1", ""]))),
        vec![format!("{WHEN}.values[1]: {empty}")],
    ));
    rows.push((
        "ValidateAttribute CheckEmptyValues on notValues".into(),
        policy(not_when("source.ip", json!([""]))),
        vec![format!("{WHEN}.notValues[0]: {empty}")],
    ));
    let rows: Vec<(&str, Value, Vec<String>)> = rows
        .iter()
        .map(|(pins, input, expected)| (pins.as_str(), input.clone(), expected.clone()))
        .collect();
    assert_eq!(rows.len(), 24);
    check(rows);
}

#[test]
fn value_syntax_rules() {
    check(rows![
        ("validation_test.go invalid ip and port in ipBlocks", policy(json!({"rules": [{
            "from": [{"source": {"ipBlocks": ["1.2.3.4", "ip1"], "notIpBlocks": ["5.6.7.8", "ip2"]}}],
            "to": [{"operation": {"ports": ["80", "port1"], "notPorts": ["90", "port2"]}}],
        }]})), [
            format!("{SRC}.ipBlocks[1]: \"ip1\": bad IP address"),
            format!("{SRC}.notIpBlocks[1]: \"ip2\": bad IP address"),
            format!("{OP}.ports[1]: \"port1\": bad port: must be a decimal number in [0, 65535]"),
            format!("{OP}.notPorts[1]: \"port2\": bad port: must be a decimal number in [0, 65535]"),
        ]),
        ("validation_test.go invalid ip and port in remoteIpBlocks", policy(json!({"rules": [{
            "from": [{"source": {"remoteIpBlocks": ["1.2.3.4", "ip1"], "notRemoteIpBlocks": ["5.6.7.8", "ip2"]}}],
            "to": [{"operation": {"ports": ["80", "port1"]}}],
        }]})), [
            format!("{SRC}.remoteIpBlocks[1]: \"ip1\": bad IP address"),
            format!("{SRC}.notRemoteIpBlocks[1]: \"ip2\": bad IP address"),
            format!("{OP}.ports[1]: \"port1\": bad port: must be a decimal number in [0, 65535]"),
        ]),
        ("ValidateIPs: prefix length above 32", policy(from(json!({"ipBlocks": ["10.0.0.0/33"]}))),
            [format!("{SRC}.ipBlocks[0]: \"10.0.0.0/33\": bad CIDR range")]),
        ("ValidateIPs: netip rejects leading zeros in the prefix length", policy(from(json!({"ipBlocks": ["10.0.0.0/08"]}))),
            [format!("{SRC}.ipBlocks[0]: \"10.0.0.0/08\": bad CIDR range")]),
        ("ValidateIPs: netip rejects octal-looking octets", policy(from(json!({"ipBlocks": ["010.0.0.1"]}))),
            [format!("{SRC}.ipBlocks[0]: \"010.0.0.1\": bad IP address")]),
        ("ValidateIPs: no wildcard IPs", policy(from(json!({"ipBlocks": ["10.0.0.*"]}))),
            [format!("{SRC}.ipBlocks[0]: \"10.0.0.*\": bad IP address")]),
        ("ValidateIPs (netip.ParseAddr): a zone after an IPv4 address is no address", policy(from(json!({"ipBlocks": ["10.0.0.1%eth0"]}))),
            [format!("{SRC}.ipBlocks[0]: \"10.0.0.1%eth0\": bad IP address")]),
        ("ValidateIPs (netip.ParseAddr): a single IPv6 address may carry a zone", policy(from(json!({"ipBlocks": ["fe80::1%eth0"]}))), []),
        ("ValidatePorts: above 65535", policy(to(json!({"ports": ["65536"]}))),
            [format!("{OP}.ports[0]: \"65536\": bad port: must be a decimal number in [0, 65535]")]),
        ("ValidatePorts: ParseUint rejects a sign", policy(to(json!({"ports": ["+80"]}))),
            [format!("{OP}.ports[0]: \"+80\": bad port: must be a decimal number in [0, 65535]")]),
        ("ValidatePorts: no port ranges or wildcards", policy(to(json!({"notPorts": ["80-90", "*"]}))), [
            format!("{OP}.notPorts[0]: \"80-90\": bad port: must be a decimal number in [0, 65535]"),
            format!("{OP}.notPorts[1]: \"*\": bad port: must be a decimal number in [0, 65535]"),
        ]),
        ("CheckServiceAccount: wildcard not allowed", policy(from(json!({"serviceAccounts": ["ns/*"]}))),
            [format!("{SRC}.serviceAccounts[0]: \"ns/*\": wildcard not allowed")]),
        ("CheckServiceAccount: at most one slash", policy(from(json!({"serviceAccounts": ["a/b/c"]}))),
            [format!("{SRC}.serviceAccounts[0]: \"a/b/c\": bad service account: expected format 'serviceAccount' or 'namespace/serviceAccount'")]),
        ("CheckServiceAccount: empty namespace", policy(from(json!({"notServiceAccounts": ["/sa"]}))),
            [format!("{SRC}.notServiceAccounts[0]: \"/sa\": bad service account: expected format 'namespace/serviceAccount', found empty namespace")]),
        ("CheckServiceAccount: empty service account", policy(from(json!({"serviceAccounts": ["ns/"]}))),
            [format!("{SRC}.serviceAccounts[0]: \"ns/\": bad service account: expected format 'namespace/serviceAccount', found empty serviceAccount")]),
        ("CheckServiceAccount: more than 16 values", policy(from(json!({"serviceAccounts": (0..17).map(|i| format!("sa{i}")).collect::<Vec<_>>()}))),
            [format!("{SRC}.serviceAccounts: may have at most 16 items")]),
        ("CheckServiceAccount: at most 320 characters", policy(from(json!({"serviceAccounts": ["s".repeat(321)]}))),
            [format!("{SRC}.serviceAccounts[0]: \"{}\": bad service account: value cannot exceed 320 characters", "s".repeat(321))]),
    ]);
}

#[test]
fn wildcard_and_path_template_rules() {
    // '*' placement and spiffe:// principals are admitted by Istio: their warnings and
    // decisions are pinned in policy_istio_validation.rs.
    check(rows![
        ("CheckValidPathTemplate: named variable", policy(to(json!({"paths": ["/{*}/foo/{bar}"]}))),
            [format!("{OP}.paths[0]: \"/{{*}}/foo/{{bar}}\": invalid or unsupported path template: '{{' or '}}' outside a {{*}} or {{**}} template")]),
        ("CheckValidPathTemplate: {**} not last", policy(to(json!({"paths": ["/{**}/foo/{*}"]}))),
            [format!("{OP}.paths[0]: \"/{{**}}/foo/{{*}}\": invalid or unsupported path template: {{**}} is not the last operator")]),
        ("CheckValidPathTemplate: two {**}", policy(to(json!({"notPaths": ["/foo/{**}/{**}"]}))),
            [format!("{OP}.notPaths[0]: \"/foo/{{**}}/{{**}}\": invalid or unsupported path template: {{**}} is not the last operator")]),
        ("CheckValidPathTemplate: {*} glued to a literal", policy(to(json!({"paths": ["/foo{*}"]}))),
            [format!("{OP}.paths[0]: \"/foo{{*}}\": invalid or unsupported path template: '{{' or '}}' outside a {{*}} or {{**}} template")]),
        ("CheckValidPathTemplate: named {var=*}", policy(to(json!({"paths": ["/{var=*}/{*}"]}))),
            [format!("{OP}.paths[0]: \"/{{var=*}}/{{*}}\": invalid or unsupported path template: '{{' or '}}' outside a {{*}} or {{**}} template")]),
        ("CheckValidPathTemplate: '*' beside a template is no pchar literal", policy(to(json!({"paths": ["/{*}/a*"]}))),
            [format!("{OP}.paths[0]: \"/{{*}}/a*\": invalid or unsupported path template: a segment beside a template must be a non-empty RFC 3986 pchar literal")]),
        ("CheckValidPathTemplate: empty segment beside a template", policy(to(json!({"paths": ["/a//{*}"]}))),
            [format!("{OP}.paths[0]: \"/a//{{*}}\": invalid or unsupported path template: a segment beside a template must be a non-empty RFC 3986 pchar literal")]),
        ("CheckValidPathTemplate: brace without template", policy(to(json!({"paths": ["/a{b"]}))),
            [format!("{OP}.paths[0]: \"/a{{b\": invalid or unsupported path template: '{{' or '}}' outside a {{*}} or {{**}} template")]),
        ("CheckValidPathTemplate: empty braces", policy(to(json!({"paths": ["/{}"]}))),
            [format!("{OP}.paths[0]: \"/{{}}\": invalid or unsupported path template: '{{' or '}}' outside a {{*}} or {{**}} template")]),
    ]);
}

#[test]
fn condition_rules() {
    let bad_key = |key: &str, why: &str| format!("{WHEN}.key: {key:?}: {why}");
    check(rows![
        ("validation_test.go condition-key-missing", policy(json!({"rules": [{"when": [{"values": ["v1", "v2"]}]}]})),
            [format!("{WHEN}.key: key must not be empty")]),
        ("validation_test.go condition-key-empty", policy(when("", json!(["v1", "v2"]))),
            [format!("{WHEN}.key: key must not be empty")]),
        ("validation_test.go condition-value-missing", policy(json!({"rules": [{"when": [{"key": "source.principal"}]}]})),
            [format!("{WHEN}: at least one of values or notValues must be set")]),
        ("condition with empty values and notValues lists", policy(json!({"rules": [{"when": [{"key": "source.principal", "values": [], "notValues": []}]}]})),
            [format!("{WHEN}: at least one of values or notValues must be set")]),
        ("validation_test.go condition-value-invalid", policy(when("source.ip", json!(["a.b.c.d"]))),
            [format!("{WHEN}.values[0]: \"a.b.c.d\": bad IP address")]),
        ("validation_test.go condition-notValue-invalid", policy(not_when("source.ip", json!(["a.b.c.d"]))),
            [format!("{WHEN}.notValues[0]: \"a.b.c.d\": bad IP address")]),
        ("validation_test.go condition-unknown", policy(when("key1", json!(["v1"]))),
            [bad_key("key1", "unknown attribute")]),
        ("ValidateAttribute: remote.ip CIDR", policy(when("remote.ip", json!(["10.0.0.0/40"]))),
            [format!("{WHEN}.values[0]: \"10.0.0.0/40\": bad CIDR range")]),
        ("ValidateAttribute: destination.ip", policy(not_when("destination.ip", json!(["999.1.1.1"]))),
            [format!("{WHEN}.notValues[0]: \"999.1.1.1\": bad IP address")]),
        ("ValidateAttribute: destination.port", policy(when("destination.port", json!(["65536", "http"]))), [
            format!("{WHEN}.values[0]: \"65536\": bad port: must be a decimal number in [0, 65535]"),
            format!("{WHEN}.values[1]: \"http\": bad port: must be a decimal number in [0, 65535]"),
        ]),
        ("ValidateAttribute: source.serviceAccount uses CheckServiceAccount", policy(when("source.serviceAccount", json!(["*", "a/b/c"]))), [
            format!("{WHEN}.values[0]: \"*\": wildcard not allowed"),
            format!("{WHEN}.values[1]: \"a/b/c\": bad service account: expected format 'serviceAccount' or 'namespace/serviceAccount'"),
        ]),
        ("validateMapKey: request.headers without brackets", policy(when("request.headers", json!(["v"]))),
            [bad_key("request.headers", "bad key: should have format a[b]")]),
        ("validateMapKey: request.headers[]", policy(when("request.headers[]", json!(["v"]))),
            [bad_key("request.headers[]", "bad key: should have format a[b]")]),
        ("validateMapKey: unclosed bracket", policy(when("request.headers[x", json!(["v"]))),
            [bad_key("request.headers[x", "bad key: should have format a[b]")]),
        ("validateMapKey: request.auth.claims[]", policy(when("request.auth.claims[]", json!(["v"]))),
            [bad_key("request.auth.claims[]", "bad key: should have format a[b]")]),
        ("validateMapKey: experimental filter without key", policy(when("experimental.envoy.filters.a.b", json!(["v"]))),
            [bad_key("experimental.envoy.filters.a.b", "bad key: should have format a[b]")]),
        ("ValidateAttribute: destination.namespace", policy(when("destination.namespace", json!(["ns"]))),
            [bad_key("destination.namespace", "destination.namespace is replaced by the policy's metadata.namespace")]),
        ("ValidateAttribute: destination.labels", policy(when("destination.labels[app]", json!(["a"]))),
            [bad_key("destination.labels[app]", "destination.labels is replaced by the workload selector")]),
        ("ValidateAttribute: destination.name is v1alpha1 only", policy(when("destination.name", json!(["a"]))),
            [bad_key("destination.name", "deprecated attribute: only supported in v1alpha1")]),
        ("ValidateAttribute: destination.user is v1alpha1 only", policy(when("destination.user", json!(["a"]))),
            [bad_key("destination.user", "deprecated attribute: only supported in v1alpha1")]),
        ("ValidateAttribute: keys are case-sensitive", policy(when("Source.IP", json!(["1.2.3.4"]))),
            [bad_key("Source.IP", "unknown attribute")]),
        ("a bad key still reports missing values", policy(json!({"rules": [{"when": [{"key": "nope"}]}]})), [
            bad_key("nope", "unknown attribute"),
            format!("{WHEN}: at least one of values or notValues must be set"),
        ]),
    ]);
}

/// `validate` on the typed model gives the same errors as the loader.
#[test]
fn validate_on_the_model() {
    let p: AuthorizationPolicy =
        serde_json::from_value(policy(to(json!({"paths": ["/a{b"]})))).unwrap();
    let errors = validate(&p).unwrap_err();
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert_eq!(e.policy, "ns/p");
    assert_eq!(e.field, "spec.rules[0].to[0].operation.paths[0]");
    assert_eq!(e.value.as_deref(), Some("/a{b"));
    assert_eq!(
        e.to_string(),
        "ns/p: spec.rules[0].to[0].operation.paths[0]: \"/a{b\": invalid or unsupported path template: '{' or '}' outside a {*} or {**} template"
    );
    let ok: AuthorizationPolicy = serde_json::from_value(policy(full_spec())).unwrap();
    assert_eq!(validate(&ok), Ok(()));
}

#[test]
fn dry_run_follows_parse_bool() {
    for (value, dry_run) in [
        ("true", true),
        ("1", true),
        ("TRUE", true),
        ("false", false),
        ("foo", false),
    ] {
        let p: AuthorizationPolicy =
            serde_json::from_value(with_dry_run(policy(json!({})), value)).unwrap();
        assert_eq!(p.is_dry_run(), dry_run, "istio.io/dry-run: {value:?}");
    }
    let p: AuthorizationPolicy = serde_json::from_value(policy(json!({}))).unwrap();
    assert!(!p.is_dry_run(), "no annotation: enforced");
}

#[test]
fn messages_stay_on_one_line() {
    let errors = errors_of(&policy(to(json!({"paths": ["/a\n{b"]}))));
    assert_eq!(errors.len(), 1);
    assert!(!errors[0].contains('\n'), "{}", errors[0]);
    assert!(errors[0].contains("\"/a\\n{b\""), "{}", errors[0]);
}
