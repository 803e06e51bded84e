//! `host-sim render`: wrap AuthorizationPolicies users already have into the configuration
//! that carries them to the filter — an Istio `WasmPlugin`, an Envoy wasm HTTP filter entry, or
//! the bare plugin configuration JSON. Every rendered configuration is parsed back with the
//! filter's own configuration parser before it is printed, so what we print is what the
//! filter accepts.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use spiffe_authz::config::PluginConfig;
use spiffe_authz::policy::AuthorizationPolicy;

/// The plugin settings a user chooses when rendering (the rest keep the filter's defaults).
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    pub trust_domain: Option<String>,
    pub mtls_mode: Option<String>,
    pub root_namespace: Option<String>,
    /// Standalone Envoy has no Istio node metadata, so the workload must be named there.
    pub workload_namespace: Option<String>,
    pub workload_labels: BTreeMap<String, String>,
}

/// Where the `WasmPlugin` points and whom it selects.
#[derive(Debug, Clone)]
pub struct WasmPluginSettings {
    pub name: String,
    pub namespace: String,
    pub selector: BTreeMap<String, String>,
    /// `oci://…`, `https://…` or `file://…`.
    pub url: String,
    /// For `oci://`: the image *manifest* digest (hex, no `sha256:`), as `host-sim oci` prints.
    pub sha256: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the rendered plugin configuration is not accepted by the filter:\n  {}", .0.join("\n  "))]
    Rejected(Vec<String>),
    #[error("sha256: {0:?}: must be 64 lowercase hex characters (the manifest digest without 'sha256:')")]
    BadDigest(String),
    #[error("yaml: {0}")]
    Yaml(String),
}

/// The plugin configuration JSON object (what Istio's `pluginConfig` and Envoy's
/// `configuration` carry), checked by the filter's parser.
pub fn plugin_config(
    policies: &[AuthorizationPolicy],
    settings: &PluginSettings,
) -> Result<Value, RenderError> {
    let mut config = Map::new();
    if let Some(td) = &settings.trust_domain {
        config.insert("trustDomain".into(), json!(td));
    }
    if let Some(mode) = &settings.mtls_mode {
        config.insert("mtlsMode".into(), json!(mode));
    }
    if let Some(root) = &settings.root_namespace {
        config.insert("rootNamespace".into(), json!(root));
    }
    if let Some(ns) = &settings.workload_namespace {
        config.insert(
            "workload".into(),
            json!({"namespace": ns, "labels": settings.workload_labels}),
        );
    }
    config.insert("policies".into(), json!(policies));
    let config = Value::Object(config);
    PluginConfig::parse(Some(config.to_string().as_bytes())).map_err(|errors| {
        RenderError::Rejected(errors.iter().map(ToString::to_string).collect())
    })?;
    Ok(config)
}

/// An Istio `WasmPlugin` (phase AUTHZ, fail closed) carrying the policies.
pub fn wasm_plugin_yaml(
    policies: &[AuthorizationPolicy],
    settings: &PluginSettings,
    plugin: &WasmPluginSettings,
) -> Result<String, RenderError> {
    let config = plugin_config(policies, settings)?;
    let mut spec = json!({
        "url": plugin.url,
        "imagePullPolicy": "IfNotPresent",
        // After Istio's authentication filters, before Istio's own RBAC filter.
        "phase": "AUTHZ",
        "failStrategy": "FAIL_CLOSE",
        "type": "HTTP",
        "match": [{"mode": "SERVER"}],
        "pluginName": "spiffe-authz",
        "pluginConfig": config,
    });
    if !plugin.selector.is_empty() {
        insert(
            &mut spec,
            "selector",
            json!({"matchLabels": plugin.selector}),
        );
    }
    if let Some(digest) = &plugin.sha256 {
        let hex = digest.trim_start_matches("sha256:");
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(RenderError::BadDigest(digest.clone()));
        }
        insert(&mut spec, "sha256", json!(hex));
    }
    let object = json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": plugin.name, "namespace": plugin.namespace},
        "spec": spec,
    });
    serde_yaml::to_string(&object).map_err(|e| RenderError::Yaml(e.to_string()))
}

fn insert(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_string(), value);
    }
}

/// An entry for an Envoy HTTP connection manager's `http_filters`, loading the module from
/// `wasm_path`. The configuration travels as a `google.protobuf.StringValue` of JSON, as Istio
/// sends it (a `Struct` may arrive as binary protobuf on some Envoy versions).
pub fn envoy_http_filter_yaml(
    policies: &[AuthorizationPolicy],
    settings: &PluginSettings,
    wasm_path: &str,
) -> Result<String, RenderError> {
    let config = plugin_config(policies, settings)?;
    let filter = json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "spiffe-authz",
                "root_id": "spiffe-authz",
                "failure_policy": "FAIL_CLOSED",
                "vm_config": {
                    "vm_id": "spiffe-authz",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_path}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": config.to_string(),
                },
            },
        },
    });
    serde_yaml::to_string(&filter).map_err(|e| RenderError::Yaml(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy_files::load_policy_text;

    const POLICY: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-frontend, namespace: demo}
spec:
  selector: {matchLabels: {app: backend}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/demo/sa/frontend"]}}]
"#;

    fn policies() -> Vec<AuthorizationPolicy> {
        load_policy_text(POLICY, "p.yaml").unwrap().policies
    }

    #[test]
    fn wasm_plugin_carries_policies_in_plugin_config() {
        let yaml = wasm_plugin_yaml(
            &policies(),
            &PluginSettings {
                mtls_mode: Some("STRICT".into()),
                ..Default::default()
            },
            &WasmPluginSettings {
                name: "spiffe-authz".into(),
                namespace: "demo".into(),
                selector: [("app".to_string(), "backend".to_string())].into(),
                url: "oci://registry.example.internal/spiffe-authz:0.1.0".into(),
                sha256: Some(format!("sha256:{}", "ab".repeat(32))),
            },
        )
        .unwrap();
        let v: Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(v["kind"], "WasmPlugin");
        assert_eq!(v["spec"]["phase"], "AUTHZ");
        assert_eq!(v["spec"]["failStrategy"], "FAIL_CLOSE");
        assert_eq!(v["spec"]["sha256"], "ab".repeat(32));
        assert_eq!(v["spec"]["selector"]["matchLabels"]["app"], "backend");
        let config = serde_json::to_vec(&v["spec"]["pluginConfig"]).unwrap();
        let parsed = PluginConfig::parse(Some(&config)).unwrap();
        assert_eq!(parsed.policies, policies());
    }

    #[test]
    fn envoy_filter_wraps_json_in_a_string_value() {
        let yaml = envoy_http_filter_yaml(
            &policies(),
            &PluginSettings {
                workload_namespace: Some("demo".into()),
                workload_labels: [("app".to_string(), "backend".to_string())].into(),
                ..Default::default()
            },
            "/etc/envoy/spiffe_authz.wasm",
        )
        .unwrap();
        let v: Value = serde_yaml::from_str(&yaml).unwrap();
        let config = &v["typed_config"]["config"];
        assert_eq!(
            config["configuration"]["@type"],
            "type.googleapis.com/google.protobuf.StringValue"
        );
        let inner = config["configuration"]["value"].as_str().unwrap();
        let parsed = PluginConfig::parse(Some(inner.as_bytes())).unwrap();
        assert_eq!(parsed.workload.unwrap().namespace, "demo");
        assert_eq!(
            config["vm_config"]["code"]["local"]["filename"],
            "/etc/envoy/spiffe_authz.wasm"
        );
    }

    #[test]
    fn bad_digest_is_refused() {
        let err = wasm_plugin_yaml(
            &policies(),
            &PluginSettings::default(),
            &WasmPluginSettings {
                name: "x".into(),
                namespace: "demo".into(),
                selector: BTreeMap::new(),
                url: "oci://r/x:1".into(),
                sha256: Some("1234".into()),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"1234\""), "{err}");
    }

    #[test]
    fn settings_the_filter_rejects_are_not_rendered() {
        let err = plugin_config(
            &policies(),
            &PluginSettings {
                mtls_mode: Some("SOMETIMES".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("mtlsMode"), "{err}");
    }
}
