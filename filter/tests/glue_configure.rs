//! `on_configure`: atomic replacement, every error logged with its field and the plugin name,
//! the workload from Istio's node metadata, counters named like Envoy's RBAC stats.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::rc::Rc;

use spiffe_authz::config::LogLevel;
use spiffe_authz::glue::facts::encode_pairs;
use spiffe_authz::glue::fake::FakeHost;
use spiffe_authz::glue::plugin::{
    COUNTER_ALLOWED, COUNTER_AUDITED, COUNTER_CONFIG_REJECTED, COUNTER_DENIED,
    COUNTER_DRY_RUN_ALLOW_SHADOW_ALLOWED, COUNTER_DRY_RUN_ALLOW_SHADOW_DENIED,
    COUNTER_DRY_RUN_DENY_SHADOW_ALLOWED, COUNTER_DRY_RUN_DENY_SHADOW_DENIED,
    COUNTER_INVALID_PEER_IDENTITY, COUNTER_SHADOW_ALLOWED, COUNTER_SHADOW_DENIED,
};
use spiffe_authz::glue::Root;

const GOOD: &str =
    r#"{"workload": {"namespace": "demo", "labels": {"app": "backend"}}, "policies": []}"#;

fn configured(json: &str) -> (Root, FakeHost) {
    let host = FakeHost::new();
    host.set_configuration(json);
    let mut root = Root::new();
    let ok = root.on_configure(&host);
    assert!(ok, "configuration rejected: {:?}", host.logs.borrow());
    (root, host)
}

#[test]
fn a_good_configuration_is_accepted_and_logged_once() {
    let (root, host) = configured(GOOD);
    assert!(root.plugin().is_some());
    let info = host.logs_at_least(LogLevel::Info);
    assert_eq!(info.len(), 1, "{info:?}");
    assert!(info[0].starts_with("spiffe-authz: configured"), "{info:?}");
}

#[test]
fn counters_are_defined_once_with_envoy_rbac_names() {
    // Envoy RBAC filter stats: allowed, denied, shadow_allowed, shadow_denied
    // (docs/root/configuration/http/http_filters/rbac_filter.rst); shadow ones per filter
    // under Istio's shadow_rules_stat_prefix (builder.go shadowRuleStatPrefix: none for
    // AUDIT, istio_dry_run_deny_, istio_dry_run_allow_; common/rbac/utility.cc generateStats).
    let (mut root, host) = configured(GOOD);
    assert!(root.on_configure(&host));
    let names = host.counter_names.borrow().clone();
    assert_eq!(
        names,
        vec![
            COUNTER_ALLOWED,
            COUNTER_DENIED,
            COUNTER_SHADOW_ALLOWED,
            COUNTER_SHADOW_DENIED,
            COUNTER_DRY_RUN_DENY_SHADOW_ALLOWED,
            COUNTER_DRY_RUN_DENY_SHADOW_DENIED,
            COUNTER_DRY_RUN_ALLOW_SHADOW_ALLOWED,
            COUNTER_DRY_RUN_ALLOW_SHADOW_DENIED,
            COUNTER_AUDITED,
            COUNTER_CONFIG_REJECTED,
            COUNTER_INVALID_PEER_IDENTITY
        ]
    );
    assert_eq!(
        COUNTER_INVALID_PEER_IDENTITY,
        "spiffe_authz.invalid_peer_identity"
    );
    assert_eq!(COUNTER_DENIED, "spiffe_authz.rbac.denied");
    assert_eq!(COUNTER_SHADOW_DENIED, "spiffe_authz.rbac.shadow_denied");
    assert_eq!(
        COUNTER_DRY_RUN_DENY_SHADOW_DENIED,
        "spiffe_authz.rbac.istio_dry_run_deny_shadow_denied"
    );
    assert_eq!(
        COUNTER_DRY_RUN_ALLOW_SHADOW_ALLOWED,
        "spiffe_authz.rbac.istio_dry_run_allow_shadow_allowed"
    );
}

#[test]
fn a_bad_configuration_is_rejected_with_every_error_named() {
    let host = FakeHost::new();
    host.set_configuration(r#"{"mtlsMode": "SOMETIMES", "trustDomian": "x", "policies": []}"#);
    let mut root = Root::new();
    assert!(!root.on_configure(&host), "the host must reject it");
    assert!(root.plugin().is_none());
    let errors = host.logs_at_least(LogLevel::Error);
    assert!(
        errors.iter().all(|l| l.starts_with("spiffe-authz: ")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|l| l.contains("mtlsMode: ")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|l| l.contains("trustDomian: ")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|l| l.contains("every request is denied")),
        "{errors:?}"
    );
    assert_eq!(host.counter(COUNTER_CONFIG_REJECTED), 1);
}

#[test]
fn a_rejected_update_keeps_the_previous_configuration() {
    // Envoy keeps the old plugin when a new configuration fails (proxy-wasm-abi.md §4.7).
    let (mut root, host) = configured(GOOD);
    let before = Rc::clone(root.plugin().unwrap());
    host.set_configuration(r#"{"policies": [], "denyResponse": {"status": 200}}"#);
    assert!(!root.on_configure(&host));
    assert!(
        Rc::ptr_eq(&before, root.plugin().unwrap()),
        "nothing half-applied"
    );
    assert!(host
        .logs_at_least(LogLevel::Error)
        .iter()
        .any(|l| l.contains("the previous configuration stays in force")));
    // ...and the VM still accepts the next good one.
    host.set_configuration(r#"{"workload": {"namespace": "other"}, "policies": []}"#);
    assert!(root.on_configure(&host));
    let after = root.plugin().unwrap();
    assert!(!Rc::ptr_eq(&before, after));
    assert_eq!(after.config.workload.as_ref().unwrap().namespace, "other");
}

#[test]
fn the_workload_defaults_to_istio_node_metadata() {
    // istio pkg/model/proxy.go NAMESPACE/LABELS, read as xds.node.metadata.* (Envoy >= 1.33)
    // with the legacy node.metadata.* as fallback (envoy-properties.md §1).
    let labels = encode_pairs(&[("app", "backend"), ("version", "v1")]);
    for prefix in ["xds.node.metadata", "node.metadata"] {
        let host = FakeHost::new();
        host.set_configuration(r#"{"policies": []}"#);
        host.set_property(&format!("{prefix}.NAMESPACE"), "demo");
        host.set_property(&format!("{prefix}.LABELS"), labels.clone());
        let mut root = Root::new();
        assert!(
            root.on_configure(&host),
            "{prefix}: {:?}",
            host.logs.borrow()
        );
        let workload = root.plugin().unwrap().config.workload.clone().unwrap();
        assert_eq!(workload.namespace, "demo", "{prefix}");
        assert_eq!(
            workload.labels.get("version").map(String::as_str),
            Some("v1")
        );
    }
}

#[test]
fn no_workload_and_no_node_metadata_is_an_error() {
    // A standalone Envoy has no Istio node metadata: the workload must be configured.
    let host = FakeHost::new();
    host.set_configuration(r#"{"policies": []}"#);
    let mut root = Root::new();
    assert!(!root.on_configure(&host));
    assert!(host
        .logs_at_least(LogLevel::Error)
        .iter()
        .any(|l| l.contains("workload: ") && l.contains("standalone Envoy")));
}

#[test]
fn invalid_policies_reject_the_whole_configuration() {
    // Nothing is half-applied: one bad policy among good ones rejects all of them.
    let host = FakeHost::new();
    host.set_configuration(
        r#"{"workload": {"namespace": "demo"}, "policies": [
            {"metadata": {"name": "good", "namespace": "demo"}, "spec": {"rules": [{}]}},
            {"metadata": {"name": "bad", "namespace": "demo"}, "spec": {"action": "CUSTOM"}}
        ]}"#,
    );
    let mut root = Root::new();
    assert!(!root.on_configure(&host));
    assert!(root.plugin().is_none());
    let errors = host.logs_at_least(LogLevel::Error);
    assert!(
        errors
            .iter()
            .any(|l| l.contains("policies: ") && l.contains("demo/bad")),
        "{errors:?}"
    );
}
