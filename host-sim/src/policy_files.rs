//! Reading AuthorizationPolicy YAML the way users have it: single objects, multi-document
//! files (`---`), and `kind: List` from `kubectl get authorizationpolicy -o yaml`.

use std::fs;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use spiffe_authz::policy::{self, AuthorizationPolicy};

#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: document {document}: not valid YAML: {message}")]
    Yaml {
        file: String,
        document: usize,
        message: String,
    },
    #[error("{file}: {}", .errors.join("\n  "))]
    Invalid { file: String, errors: Vec<String> },
}

/// Policies read from files, plus what was skipped (other kinds) for the user to see.
#[derive(Debug, Default)]
pub struct LoadedPolicies {
    pub policies: Vec<AuthorizationPolicy>,
    pub skipped: Vec<String>,
}

/// Reads every file, validates every policy with Istio's admission rules, and reports all
/// errors at once (the way the plugin would reject the configuration).
pub fn load_policy_files(files: &[impl AsRef<Path>]) -> Result<LoadedPolicies, PolicyFileError> {
    let mut loaded = LoadedPolicies::default();
    for file in files {
        let file = file.as_ref();
        let name = file.display().to_string();
        let text = fs::read_to_string(file).map_err(|source| PolicyFileError::Read {
            file: name.clone(),
            source,
        })?;
        let mut one = load_policy_text(&text, &name)?;
        loaded.policies.append(&mut one.policies);
        loaded.skipped.append(&mut one.skipped);
    }
    Ok(loaded)
}

/// Parses YAML or JSON text holding policies (see the module docs).
pub fn load_policy_text(text: &str, file: &str) -> Result<LoadedPolicies, PolicyFileError> {
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document).map_err(|e| PolicyFileError::Yaml {
            file: file.to_string(),
            document: index + 1,
            message: e.to_string(),
        })?;
        collect_objects(value, index + 1, &mut objects, &mut skipped);
    }
    let policies = policy::parse_policies(&Value::Array(objects)).map_err(|errors| {
        PolicyFileError::Invalid {
            file: file.to_string(),
            errors: errors.iter().map(ToString::to_string).collect(),
        }
    })?;
    Ok(LoadedPolicies { policies, skipped })
}

fn collect_objects(value: Value, document: usize, out: &mut Vec<Value>, skipped: &mut Vec<String>) {
    match value {
        // An empty document (a trailing `---`) is no object.
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                collect_objects(item, document, out, skipped);
            }
        }
        Value::Object(mut object) => {
            let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind == "List" || kind.ends_with("List") {
                if let Some(Value::Array(items)) = object.remove("items") {
                    for item in items {
                        collect_objects(item, document, out, skipped);
                    }
                }
            } else if kind.is_empty() || kind == "AuthorizationPolicy" {
                out.push(Value::Object(object));
            } else {
                let name = object
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                skipped.push(format!(
                    "document {document}: {kind} {name} (not an AuthorizationPolicy)"
                ));
            }
        }
        other => out.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multi_document_files_and_kubectl_lists() {
        let text = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: a, namespace: ns}
spec: {}
---
apiVersion: v1
kind: List
items:
- apiVersion: security.istio.io/v1beta1
  kind: AuthorizationPolicy
  metadata: {name: b, namespace: ns, uid: 1234, resourceVersion: "9"}
  spec: {action: DENY, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: ns}
spec: {mtls: {mode: STRICT}}
---
"#;
        let loaded = load_policy_text(text, "p.yaml").unwrap();
        let names: Vec<_> = loaded.policies.iter().map(|p| p.key()).collect();
        assert_eq!(names, ["ns/a", "ns/b"]);
        assert_eq!(loaded.skipped.len(), 1);
        assert!(loaded.skipped[0].contains("PeerAuthentication default"));
    }

    #[test]
    fn invalid_policy_names_file_policy_and_field() {
        let text = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-get, namespace: ns-a}
spec:
  rules:
  - to:
    - operation: {paths: ["/ok", "/{*}/{a}"]}
"#;
        let err = load_policy_text(text, "p.yaml").unwrap_err().to_string();
        assert!(err.starts_with("p.yaml: "), "{err}");
        assert!(err.contains("ns-a/allow-get"), "{err}");
        assert!(err.contains("paths[1]"), "{err}");
    }

    #[test]
    fn broken_yaml_names_the_document() {
        let err = load_policy_text("a: 1\n---\nb: [\n", "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.yaml: document 2: not valid YAML"),
            "{err}"
        );
    }
}
