//! The plugin configuration: defaults, strictness, and one error per problem with its field.

// Test helpers outside #[test] functions may panic: they are only ever run by tests.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use spiffe_authz::config::{ConfigError, LogLevel, MtlsMode, PluginConfig, DEFAULT_DENY_BODY};
use spiffe_authz::identity::IdentitySource;
use spiffe_authz::normalize::PathNormalization;

fn parse(json: &str) -> Result<PluginConfig, Vec<ConfigError>> {
    PluginConfig::parse(Some(json.as_bytes()))
}

fn fields(json: &str) -> Vec<String> {
    match parse(json) {
        Ok(c) => panic!("expected errors for {json}, got {c:?}"),
        Err(errors) => errors.into_iter().map(|e| e.field).collect(),
    }
}

#[test]
fn defaults_follow_istio() {
    // The issue's defaults: trustDomain cluster.local, rootNamespace istio-system (Istio
    // meshConfig defaults), pathNormalization BASE, mtlsMode PERMISSIVE (PeerAuthentication
    // default), 403 "RBAC: access denied" (Envoy RBAC filter), identity from the peer
    // certificate where the host has it, else the connection attributes.
    let c = parse(r#"{"policies": []}"#).unwrap();
    assert_eq!(c.trust_domain, "cluster.local");
    assert_eq!(c.root_namespace, "istio-system");
    assert_eq!(c.path_normalization, PathNormalization::Base);
    assert_eq!(c.mtls_mode, MtlsMode::Permissive);
    assert_eq!(c.deny_response.status, 403);
    assert_eq!(c.deny_response.body, DEFAULT_DENY_BODY);
    assert_eq!(
        c.identity_sources,
        vec![
            IdentitySource::PeerCertificate,
            IdentitySource::ConnectionAttributes
        ]
    );
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.denial_log_level, LogLevel::Info);
    assert_eq!(c.workload, None);
    assert!(
        c.cache_connection_facts,
        "on: Envoy's connection ids are unique per process (ConnectionImpl::next_global_id_)"
    );
    assert!(c.policies.is_empty());
}

#[test]
fn every_field_is_read() {
    let c = parse(
        r#"{
        "trustDomain": "example.org",
        "trustDomainAliases": ["old.example.org"],
        "rootNamespace": "mesh-root",
        "workload": {"namespace": "demo", "labels": {"app": "backend"}},
        "pathNormalization": "MERGE_SLASHES",
        "mtlsMode": "STRICT",
        "identitySources": ["xfcc", "connectionAttributes"],
        "denyResponse": {"status": 401, "body": "no", "headers": {"x-why": "policy"}},
        "logLevel": "debug",
        "denialLogLevel": "warn",
        "decisionHeader": "x-spiffe-authz",
        "decisionMetadata": true,
        "cacheConnectionFacts": false,
        "policies": [{"metadata": {"name": "p", "namespace": "demo"}, "spec": {}}]
    }"#,
    )
    .unwrap();
    assert_eq!(c.trust_domain, "example.org");
    assert_eq!(c.trust_domain_aliases, vec!["old.example.org"]);
    assert_eq!(c.root_namespace, "mesh-root");
    let w = c.workload.unwrap();
    assert_eq!(w.namespace, "demo");
    assert_eq!(w.labels.get("app").map(String::as_str), Some("backend"));
    assert_eq!(c.path_normalization, PathNormalization::MergeSlashes);
    assert_eq!(c.mtls_mode, MtlsMode::Strict);
    assert_eq!(
        c.identity_sources,
        vec![IdentitySource::Xfcc, IdentitySource::ConnectionAttributes]
    );
    assert_eq!(c.deny_response.status, 401);
    assert_eq!(c.deny_response.body, "no");
    assert_eq!(c.log_level, LogLevel::Debug);
    assert_eq!(c.denial_log_level, LogLevel::Warn);
    assert_eq!(c.decision_header.as_deref(), Some("x-spiffe-authz"));
    assert!(c.decision_metadata);
    assert!(
        !c.cache_connection_facts,
        "the default is on: false must stick"
    );
    assert_eq!(c.policies.len(), 1);
}

#[test]
fn istio_path_normalization_names() {
    // Istio meshConfig.pathNormalization.normalization enum names.
    for (name, want) in [
        ("NONE", PathNormalization::None),
        ("BASE", PathNormalization::Base),
        ("MERGE_SLASHES", PathNormalization::MergeSlashes),
        (
            "DECODE_AND_MERGE_SLASHES",
            PathNormalization::DecodeAndMergeSlashes,
        ),
    ] {
        let c = parse(&format!(
            r#"{{"pathNormalization": "{name}", "policies": []}}"#
        ))
        .unwrap();
        assert_eq!(c.path_normalization, want, "{name}");
    }
}

#[test]
fn policies_accept_one_object_an_array_or_a_kubectl_list() {
    let one = r#"{"metadata": {"name": "a", "namespace": "n"}}"#;
    let two = r#"{"metadata": {"name": "b", "namespace": "n"}}"#;
    for (shape, policies, want) in [
        ("array", format!("[{one}, {two}]"), 2),
        ("single object", one.to_string(), 1),
        (
            "kind: List (kubectl get -o json)",
            format!(r#"{{"kind": "List", "items": [{one}]}}"#),
            1,
        ),
        (
            "empty array: no policies, Istio allows",
            "[]".to_string(),
            0,
        ),
    ] {
        let c = parse(&format!(r#"{{"policies": {policies}}}"#)).unwrap();
        assert_eq!(c.policies.len(), want, "{shape}");
    }
}

#[test]
fn config_errors_name_the_field() {
    // One row per mistake; each must be reported under its own field path.
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown field is an error, not ignored",
            r#"{"policies": [], "trustDomian": "x"}"#,
            "trustDomian",
        ),
        (
            "policies are required",
            r#"{"trustDomain": "x"}"#,
            "policies",
        ),
        (
            "trust domain without scheme",
            r#"{"policies": [], "trustDomain": "spiffe://x"}"#,
            "trustDomain",
        ),
        (
            "trust domain charset (SPIFFE-ID.md 2.1)",
            r#"{"policies": [], "trustDomain": "Cluster.Local"}"#,
            "trustDomain",
        ),
        (
            "alias checked too",
            r#"{"policies": [], "trustDomainAliases": ["ok", "B@d"]}"#,
            "trustDomainAliases[1]",
        ),
        (
            "mtlsMode enum",
            r#"{"policies": [], "mtlsMode": "DISABLE"}"#,
            "mtlsMode",
        ),
        (
            "pathNormalization enum",
            r#"{"policies": [], "pathNormalization": "base"}"#,
            "pathNormalization",
        ),
        (
            "identity source enum",
            r#"{"policies": [], "identitySources": ["jwt"]}"#,
            "identitySources",
        ),
        (
            "identity sources not empty",
            r#"{"policies": [], "identitySources": []}"#,
            "identitySources",
        ),
        (
            "identity source listed twice",
            r#"{"policies": [], "identitySources": ["xfcc", "xfcc"]}"#,
            "identitySources[1]",
        ),
        (
            "deny status must be an error status",
            r#"{"policies": [], "denyResponse": {"status": 200}}"#,
            "denyResponse.status",
        ),
        (
            "deny response strict",
            r#"{"policies": [], "denyResponse": {"code": 403}}"#,
            "denyResponse",
        ),
        (
            "deny header name lower-case token",
            r#"{"policies": [], "denyResponse": {"headers": {"X Bad": "v"}}}"#,
            "denyResponse.headers.X Bad",
        ),
        (
            "workload namespace required",
            r#"{"policies": [], "workload": {"labels": {}}}"#,
            "workload",
        ),
        (
            "workload namespace not empty",
            r#"{"policies": [], "workload": {"namespace": ""}}"#,
            "workload.namespace",
        ),
        (
            "log level names",
            r#"{"policies": [], "logLevel": "verbose"}"#,
            "logLevel",
        ),
        (
            "decision header name",
            r#"{"policies": [], "decisionHeader": ":status"}"#,
            "decisionHeader",
        ),
        (
            "policies must be a list",
            r#"{"policies": "allow-all"}"#,
            "policies",
        ),
        (
            "policy spec is strict (typo principal)",
            r#"{"policies": [{"metadata": {"name": "a", "namespace": "n"}, "spec": {"rules": [{"from": [{"source": {"principal": ["a"]}}]}]}}]}"#,
            "policies",
        ),
        (
            "filter type enum",
            r#"{"policies": [], "type": "UDP"}"#,
            "type",
        ),
    ];
    for (behaviour, json, field) in cases {
        let got = fields(json);
        assert!(
            got.iter().any(|f| f == field),
            "{behaviour}: expected an error on {field}, got {got:?}"
        );
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    let got = fields(
        r#"{"trustDomain": "", "mtlsMode": "X", "bogus": 1, "denyResponse": {"status": 99}}"#,
    );
    for field in [
        "trustDomain",
        "mtlsMode",
        "bogus",
        "denyResponse.status",
        "policies",
    ] {
        assert!(got.iter().any(|f| f == field), "missing {field} in {got:?}");
    }
}

#[test]
fn empty_or_non_object_configuration_is_rejected() {
    // Istio sends no bytes when pluginConfig is absent (istio-wasmplugin-oci.md §2).
    assert!(PluginConfig::parse(None).is_err());
    assert!(PluginConfig::parse(Some(b"")).is_err());
    assert!(PluginConfig::parse(Some(b"  \n")).is_err());
    assert!(parse("[]").is_err());
    assert!(parse("{not json").is_err());
    assert!(parse("\"policies\"").is_err());
}

#[test]
fn null_fields_mean_default() {
    // proto3 JSON of a Struct may carry explicit nulls.
    let c = parse(r#"{"policies": [], "trustDomain": null, "workload": null}"#).unwrap();
    assert_eq!(c.trust_domain, "cluster.local");
    assert_eq!(c.workload, None);
}

#[test]
fn error_display_is_field_colon_message() {
    let errors = parse(r#"{"policies": [], "mtlsMode": "X"}"#).unwrap_err();
    let line = errors[0].to_string();
    assert!(line.starts_with("mtlsMode: "), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

/// The messages are serde's, as when the configuration was read through serde's derives
/// (serde `de::Error::{invalid_type, invalid_value, unknown_field, unknown_variant,
/// missing_field}`; `null` as serde_json names it), and a syntax error says where.
#[test]
fn config_messages_keep_serde_wording() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "two variants: `a` or `b`",
            r#"{"policies": [], "mtlsMode": "DISABLE"}"#,
            "mtlsMode: unknown variant `DISABLE`, expected `STRICT` or `PERMISSIVE`",
        ),
        (
            "more variants: one of",
            r#"{"policies": [], "logLevel": "verbose"}"#,
            "logLevel: unknown variant `verbose`, expected one of `trace`, `debug`, `info`, `warn`, `error`, `critical`",
        ),
        (
            "a strict struct names its fields",
            r#"{"policies": [], "denyResponse": {"code": 403}}"#,
            "denyResponse: unknown field `code`, expected one of `status`, `body`, `headers`",
        ),
        (
            "a required field",
            r#"{"policies": [], "workload": {"labels": {}}}"#,
            "workload: missing field `namespace`",
        ),
        (
            "an out-of-range status",
            r#"{"policies": [], "denyResponse": {"status": 70000}}"#,
            "denyResponse: invalid value: integer `70000`, expected u16",
        ),
        (
            "a nested wrong type is reported under the top-level field",
            r#"{"policies": [], "workload": {"namespace": "a", "labels": {"app": 1}}}"#,
            "workload: invalid type: integer `1`, expected a string",
        ),
        (
            "a boolean field",
            r#"{"policies": [], "decisionMetadata": "yes"}"#,
            "decisionMetadata: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "a float is shown as written",
            r#"{"policies": [], "rootNamespace": 1.5}"#,
            "rootNamespace: invalid type: floating point `1.5`, expected a string",
        ),
        (
            "an unknown identity source is the whole list's error",
            r#"{"policies": [], "identitySources": ["xfcc", "jwt"]}"#,
            "identitySources: unknown identity source \"jwt\": expected one of \"connectionAttributes\", \"peerCertificate\", \"xfcc\"",
        ),
        (
            "a repeated identity source is named as written",
            r#"{"policies": [], "identitySources": ["xfcc", "xfcc"]}"#,
            "identitySources[1]: \"xfcc\" is listed twice",
        ),
        (
            "not JSON: what and where, as serde_json says it",
            "{\"policies\": [],\n \"trustDomain\": tru}",
            "(configuration): not valid JSON: expected ident at line 2 column 20",
        ),
        (
            "too deeply nested JSON (serde_json's limit: no stack overflow)",
            &format!(r#"{{"policies": {}{}}}"#, "[".repeat(200), "]".repeat(200)),
            "(configuration): not valid JSON: recursion limit exceeded at line 1 column 140",
        ),
    ];
    for (behaviour, json, message) in cases {
        let got: Vec<String> = parse(json)
            .expect_err(behaviour)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            got.iter().any(|m| m == message),
            "{behaviour}: expected {message:?} in {got:?}"
        );
    }
}
