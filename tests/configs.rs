//! Every deployable file in `envoy-configs/` is checked here: it parses, every field name it
//! uses exists in the schema of the system that reads it, and every plugin configuration it
//! embeds is accepted by the filter's own parser.
//!
//! - Istio objects (`istio/`, `policies/`) against the CRDs' OpenAPI v3 schemas in
//!   `envoy-configs/schemas/istio-crds.yaml`, with Kubernetes' structural-schema rules: an
//!   unknown field is an error (what `kubectl apply` does with its default `--validate=strict`),
//!   and the CRDs' CEL `x-kubernetes-validations` rules are evaluated by Rust translations; a
//!   rule this file does not know fails the test rather than being skipped.
//!   AuthorizationPolicies also go through `spiffe_authz::policy::parse_policies`.
//! - The Envoy bootstrap (`envoy/envoy.yaml`) against the field lists of the Envoy v3 API in
//!   `envoy-configs/schemas/envoy-fields.json`, walking from `Bootstrap` and resolving every
//!   `typed_config` by its `@type`; its `filename:` paths against what the documented build and
//!   `host-sim certs` steps produce.
//! - Every embedded plugin configuration through `spiffe_authz::config::PluginConfig::parse`.
//! - `demo/traffic.jsonl` through host-sim's own `run` line reader; `demo/run.sh` and
//!   `demo/node.json` against the files and workload they must agree with; and no file in
//!   `envoy-configs/` goes unchecked.
//!
//! Each check has a negative twin below (a copy of a real file with one field broken), so a
//! check that silently accepts everything fails the suite.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Map, Value};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a (multi-document) YAML file, as JSON values. Empty documents (a
/// trailing `---`) are skipped, as kubectl skips them.
fn yaml_documents(file: &str, text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .enumerate()
        .map(|(i, doc)| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: document {i}: {e}"))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

fn files_under(relative_dir: &str, extension: &str) -> Vec<String> {
    let dir = repo_root().join(relative_dir);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == extension))
        .map(|path| {
            format!(
                "{relative_dir}/{}",
                path.file_name().expect("file name").to_string_lossy()
            )
        })
        .collect();
    files.sort();
    files
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes: CRD structural schemas
// ---------------------------------------------------------------------------------------------

mod k8s {
    use super::*;

    struct Version {
        name: String,
        served: bool,
        schema: Value,
    }

    struct Crd {
        group: String,
        kind: String,
        versions: Vec<Version>,
    }

    pub struct Crds(Vec<Crd>);

    impl Crds {
        pub fn load() -> Crds {
            let file = "envoy-configs/schemas/istio-crds.yaml";
            let crds = yaml_documents(file, &read(file))
                .into_iter()
                .map(|crd| Crd {
                    group: crd["spec"]["group"].as_str().expect("spec.group").into(),
                    kind: crd["spec"]["names"]["kind"].as_str().expect("kind").into(),
                    versions: crd["spec"]["versions"]
                        .as_array()
                        .expect("spec.versions")
                        .iter()
                        .map(|v| Version {
                            name: v["name"].as_str().expect("version name").into(),
                            served: v["served"].as_bool().unwrap_or(false),
                            schema: v["schema"]["openAPIV3Schema"].clone(),
                        })
                        .collect(),
                })
                .collect();
            Crds(crds)
        }

        /// Every problem with `object` as the API server (with strict field validation) would
        /// report it: `<field path>: <message>`.
        pub fn validate(&self, object: &Value) -> Vec<String> {
            let mut out = Vec::new();
            let Some(fields) = object.as_object() else {
                return vec![": a Kubernetes object must be a mapping".into()];
            };
            let api_version = fields
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let kind = fields.get("kind").and_then(Value::as_str).unwrap_or("");
            let Some((group, version)) = api_version.split_once('/') else {
                return vec![format!(
                    "apiVersion: {api_version:?}: expected <group>/<version>"
                )];
            };
            let Some(crd) = self.0.iter().find(|c| c.group == group && c.kind == kind) else {
                return vec![format!(
                    "kind: {kind:?} in group {group:?} is not one of the CRDs in istio-crds.yaml"
                )];
            };
            let Some(version) = crd.versions.iter().find(|v| v.name == version && v.served) else {
                let served: Vec<&str> = crd
                    .versions
                    .iter()
                    .filter(|v| v.served)
                    .map(|v| v.name.as_str())
                    .collect();
                return vec![format!(
                    "apiVersion: {api_version:?}: {kind} is served as {served:?}"
                )];
            };
            check_metadata(fields.get("metadata"), &mut out);
            // apiVersion, kind and metadata are the API server's own (ObjectMeta, TypeMeta);
            // the CRD schema covers the rest.
            let mut rest = fields.clone();
            for own in ["apiVersion", "kind", "metadata"] {
                rest.remove(own);
            }
            check(&version.schema, &Value::Object(rest), "", &mut out);
            out
        }
    }

    /// ObjectMeta as a user may write it. A custom resource's name must be a DNS-1123
    /// subdomain and its namespace a DNS-1123 label (apimachinery `ValidateObjectMeta`).
    fn check_metadata(metadata: Option<&Value>, out: &mut Vec<String>) {
        const OBJECT_META: &[&str] = &[
            "name",
            "generateName",
            "namespace",
            "labels",
            "annotations",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "ownerReferences",
            "finalizers",
            "managedFields",
        ];
        let Some(Value::Object(metadata)) = metadata else {
            out.push("metadata: required".into());
            return;
        };
        for key in metadata.keys() {
            if !OBJECT_META.contains(&key.as_str()) {
                out.push(format!("metadata.{key}: unknown field"));
            }
        }
        match metadata.get("name").and_then(Value::as_str) {
            Some(name) if is_dns1123_subdomain(name) => {}
            Some(name) => out.push(format!(
                "metadata.name: {name:?}: must be a DNS-1123 subdomain"
            )),
            None if metadata.contains_key("generateName") => {}
            None => out.push("metadata.name: required".into()),
        }
        if let Some(namespace) = metadata.get("namespace") {
            match namespace.as_str() {
                Some(ns) if is_dns1123_label(ns) => {}
                _ => out.push(format!(
                    "metadata.namespace: {namespace}: must be a DNS-1123 label"
                )),
            }
        }
        for map in ["labels", "annotations"] {
            if let Some(value) = metadata.get(map) {
                let all_strings = value
                    .as_object()
                    .is_some_and(|m| m.values().all(Value::is_string));
                if !all_strings {
                    out.push(format!("metadata.{map}: must map strings to strings"));
                }
            }
        }
    }

    fn is_dns1123_label(s: &str) -> bool {
        let bytes = s.as_bytes();
        !s.is_empty()
            && s.len() <= 63
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    fn is_dns1123_subdomain(s: &str) -> bool {
        s.len() <= 253 && s.split('.').all(is_dns1123_label)
    }

    /// Structural-schema validation of `value` at `path` against `schema`.
    pub fn check(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
        let at = |message: String| format!("{path}: {message}");
        if value.is_null() {
            // A null for a non-nullable field is pruned by the API server before validation.
            return;
        }
        let int_or_string = schema["x-kubernetes-int-or-string"] == json!(true);
        if int_or_string {
            if !(value.is_i64() || value.is_u64() || value.is_string()) {
                out.push(at(format!("{value}: must be an integer or a string")));
                return;
            }
        } else if let Some(ty) = schema["type"].as_str() {
            let ok = match ty {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                other => panic!("{path}: schema type {other:?} unknown to this validator"),
            };
            if !ok {
                out.push(at(format!("{value}: must be of type {ty}")));
                return;
            }
        }
        if let Some(allowed) = schema["enum"].as_array() {
            if !allowed.contains(value) {
                out.push(at(format!(
                    "{value}: must be one of {}",
                    Value::from(allowed.clone())
                )));
            }
        }
        match value {
            Value::String(s) => check_string(schema, s, &at, out),
            Value::Number(n) => check_number(schema, n, &at, out),
            Value::Array(items) => check_array(schema, items, path, out),
            Value::Object(fields) => check_object(schema, fields, path, out),
            _ => {}
        }
        check_combinators(schema, value, path, out);
        for rule in schema["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let text = rule["rule"].as_str().expect("a validation rule has a rule");
            match cel::rule(text) {
                Some(holds) if holds(value) => {}
                Some(_) => out.push(at(rule["message"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| format!("violates {text:?}")))),
                None => out.push(at(format!(
                    "CEL rule {text:?} has no translation in tests/configs.rs (add one to cel::rule)"
                ))),
            }
        }
    }

    fn check_string(schema: &Value, s: &str, at: &dyn Fn(String) -> String, out: &mut Vec<String>) {
        let chars = s.chars().count() as u64;
        if let Some(max) = schema["maxLength"].as_u64() {
            if chars > max {
                out.push(at(format!("{s:?}: longer than {max} characters")));
            }
        }
        if let Some(min) = schema["minLength"].as_u64() {
            if chars < min {
                out.push(at(format!("{s:?}: shorter than {min} characters")));
            }
        }
        if let Some(pattern) = schema["pattern"].as_str() {
            let re = regex::Regex::new(pattern)
                .unwrap_or_else(|e| panic!("schema pattern {pattern:?}: {e}"));
            if !re.is_match(s) {
                out.push(at(format!("{s:?}: does not match {pattern:?}")));
            }
        }
    }

    fn check_number(
        schema: &Value,
        n: &serde_json::Number,
        at: &dyn Fn(String) -> String,
        out: &mut Vec<String>,
    ) {
        let v = n.as_f64().unwrap_or(f64::NAN);
        if let Some(max) = schema["maximum"].as_f64() {
            if v > max {
                out.push(at(format!("{n}: above the maximum {max}")));
            }
        }
        if let Some(min) = schema["minimum"].as_f64() {
            if v < min {
                out.push(at(format!("{n}: below the minimum {min}")));
            }
        }
        if schema["format"] == json!("int32")
            && n.as_i64().and_then(|i| i32::try_from(i).ok()).is_none()
        {
            out.push(at(format!("{n}: not an int32")));
        }
    }

    fn check_array(schema: &Value, items: &[Value], path: &str, out: &mut Vec<String>) {
        let len = items.len() as u64;
        if let Some(max) = schema["maxItems"].as_u64() {
            if len > max {
                out.push(format!("{path}: {len} items, at most {max} allowed"));
            }
        }
        if let Some(min) = schema["minItems"].as_u64() {
            if len < min {
                out.push(format!("{path}: {len} items, at least {min} required"));
            }
        }
        // x-kubernetes-list-type: map / set: entries are keyed, duplicates are rejected.
        match schema["x-kubernetes-list-type"].as_str() {
            Some("map") => {
                let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let mut seen = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let key: Vec<String> = keys.iter().map(|k| item[*k].to_string()).collect();
                    if !seen.insert(key.clone()) {
                        out.push(format!("{path}[{i}]: duplicate entry for key {key:?}"));
                    }
                }
            }
            Some("set") => {
                let mut seen = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    if !seen.insert(item.to_string()) {
                        out.push(format!("{path}[{i}]: duplicate entry {item}"));
                    }
                }
            }
            _ => {}
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(item_schema, item, &format!("{path}[{i}]"), out);
            }
        }
    }

    fn check_object(
        schema: &Value,
        fields: &Map<String, Value>,
        path: &str,
        out: &mut Vec<String>,
    ) {
        let len = fields.len() as u64;
        if let Some(max) = schema["maxProperties"].as_u64() {
            if len > max {
                out.push(format!("{path}: {len} entries, at most {max} allowed"));
            }
        }
        if let Some(min) = schema["minProperties"].as_u64() {
            if len < min {
                out.push(format!("{path}: {len} entries, at least {min} required"));
            }
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().expect("required names are strings");
            if !fields.contains_key(name) {
                out.push(format!("{}: required", join(path, name)));
            }
        }
        // Only a schema that declares an object shape can call a field unknown; the
        // constraint-only branches of oneOf/anyOf/not (which may not declare types in a
        // structural schema) never do.
        let declares_shape = schema.get("type").is_some() || schema.get("properties").is_some();
        if !declares_shape {
            return;
        }
        let preserve = schema["x-kubernetes-preserve-unknown-fields"] == json!(true);
        let properties = schema["properties"].as_object();
        for (name, value) in fields {
            let field_path = join(path, name);
            if let Some(field_schema) = properties.and_then(|p| p.get(name)) {
                check(field_schema, value, &field_path, out);
            } else if let Some(additional) = schema.get("additionalProperties") {
                match additional {
                    Value::Bool(true) => {}
                    Value::Bool(false) => out.push(format!("{field_path}: unknown field")),
                    additional => check(additional, value, &field_path, out),
                }
            } else if !preserve {
                out.push(format!("{field_path}: unknown field"));
            }
        }
    }

    fn check_combinators(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
        let passes = |branch: &Value| {
            let mut scratch = Vec::new();
            check(branch, value, path, &mut scratch);
            scratch.is_empty()
        };
        if let Some(branches) = schema["oneOf"].as_array() {
            let matching = branches.iter().filter(|b| passes(b)).count();
            if matching != 1 {
                out.push(format!(
                    "{path}: must match exactly one of oneOf, matches {matching}"
                ));
            }
        }
        if let Some(branches) = schema["anyOf"].as_array() {
            if !branches.iter().any(passes) {
                out.push(format!("{path}: matches none of anyOf"));
            }
        }
        for branch in schema["allOf"].as_array().into_iter().flatten() {
            check(branch, value, path, out);
        }
        if let Some(branch) = schema.get("not") {
            if passes(branch) {
                out.push(format!("{path}: must not match {branch}"));
            }
        }
    }

    /// Rust translations of the CEL `x-kubernetes-validations` rules in istio-crds.yaml,
    /// looked up by the rule's text (whitespace-normalized).
    mod cel {
        use super::*;

        pub type Rule = fn(&Value) -> bool;

        fn has(v: &Value, field: &str) -> bool {
            v.get(field).is_some()
        }

        fn count_present(v: &Value, fields: &[&str]) -> usize {
            fields.iter().filter(|f| has(v, f)).count()
        }

        fn keys_all(v: &Value, pred: fn(&str) -> bool) -> bool {
            v.as_object().is_some_and(|m| m.keys().all(|k| pred(k)))
        }

        /// The scheme CEL's `url()` would report, or None where `isURL` is false. Kubernetes'
        /// CEL URL library parses like Go's `url.ParseRequestURI`: an absolute URL, or an
        /// absolute path (empty scheme).
        fn request_uri_scheme(s: &str) -> Option<String> {
            let scheme_end = s.find(':')?;
            let (scheme, rest) = (&s[..scheme_end], &s[scheme_end + 1..]);
            let valid_scheme = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if valid_scheme && rest.starts_with('/') {
                Some(scheme.to_ascii_lowercase())
            } else {
                None
            }
        }

        fn wasm_url_scheme_ok(v: &Value) -> bool {
            const ALLOWED: &[&str] = &["", "http", "https", "oci", "file"];
            let Some(s) = v.as_str() else { return false };
            let scheme = if s.starts_with('/') {
                Some(String::new())
            } else {
                request_uri_scheme(s).or_else(|| request_uri_scheme(&format!("http://{s}")))
            };
            scheme.is_some_and(|s| ALLOWED.contains(&s.as_str()))
        }

        /// Go `time.ParseDuration`, in nanoseconds.
        fn go_duration_nanos(s: &str) -> Option<f64> {
            let (sign, mut rest) = match s.strip_prefix('-') {
                Some(r) => (-1.0, r),
                None => (1.0, s.strip_prefix('+').unwrap_or(s)),
            };
            if rest == "0" {
                return Some(0.0);
            }
            let mut total = 0.0;
            while !rest.is_empty() {
                let number_end = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(rest.len());
                let number: f64 = rest[..number_end].parse().ok()?;
                rest = &rest[number_end..];
                let unit_end = rest
                    .find(|c: char| c.is_ascii_digit() || c == '.')
                    .unwrap_or(rest.len());
                let scale = match &rest[..unit_end] {
                    "ns" => 1.0,
                    "us" | "µs" | "μs" => 1e3,
                    "ms" => 1e6,
                    "s" => 1e9,
                    "m" => 60e9,
                    "h" => 3600e9,
                    _ => return None,
                };
                total += number * scale;
                rest = &rest[unit_end..];
            }
            Some(sign * total)
        }

        pub fn rule(text: &str) -> Option<Rule> {
            let normalized = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let rule: Rule = match normalized.as_str() {
                "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1" => {
                    |v| count_present(v, &["selector", "targetRef", "targetRefs"]) <= 1
                }
                "self.all(key, !key.contains(\"*\"))" => |v| keys_all(v, |k| !k.contains('*')),
                "self.all(key, key.size() != 0)" => |v| keys_all(v, |k| !k.is_empty()),
                "!self.contains(\"*\")" => |v| v.as_str().is_some_and(|s| !s.contains('*')),
                "self.size() == 0" => |v| v.as_str().is_some_and(str::is_empty),
                "isURL(self) ? (url(self).getScheme() in [\"\", \"http\", \"https\", \"oci\", \"file\"]) : (isURL(\"http://\" + self) && url(\"http://\" + self).getScheme() in [\"\", \"http\", \"https\", \"oci\", \"file\"])" => {
                    wasm_url_scheme_ok
                }
                "(has(self.valueFrom) ? self.valueFrom : \"\") != \"HOST\" || !has(self.value)" => {
                    |v| v.get("valueFrom") != Some(&json!("HOST")) || !has(v, "value")
                }
                "(has(self.serviceAccounts) || has(self.notServiceAccounts)) ? (!has(self.principals) && !has(self.notPrincipals) && !has(self.namespaces) && !has(self.notNamespaces)) : true" => {
                    |v| {
                        count_present(v, &["serviceAccounts", "notServiceAccounts"]) == 0
                            || count_present(
                                v,
                                &["principals", "notPrincipals", "namespaces", "notNamespaces"],
                            ) == 0
                    }
                }
                "has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? self.selector.matchLabels : {}).size() > 0) : true" => {
                    |v| {
                        !has(v, "portLevelMtls")
                            || v["selector"]["matchLabels"]
                                .as_object()
                                .is_some_and(|m| !m.is_empty())
                    }
                }
                "self.all(key, 0 < int(key) && int(key) <= 65535)" => |v| {
                    keys_all(v, |k| k.parse::<i64>().is_ok_and(|p| (1..=65535).contains(&p)))
                },
                "(has(self.jwksUri) ? 1 : 0) + (has(self.jwks_uri) ? 1 : 0) + (has(self.jwks) ? 1 : 0) <= 1" => {
                    |v| count_present(v, &["jwksUri", "jwks_uri", "jwks"]) <= 1
                }
                "url(self).getScheme() in [\"http\", \"https\"]" => |v| {
                    v.as_str()
                        .and_then(request_uri_scheme)
                        .is_some_and(|s| s == "http" || s == "https")
                },
                "duration(self) >= duration('1ms')" => |v| {
                    v.as_str()
                        .and_then(go_duration_nanos)
                        .is_some_and(|n| n >= 1e6)
                },
                _ => return None,
            };
            Some(rule)
        }

        #[test]
        fn go_durations_parse_like_time_parse_duration() {
            for (text, nanos) in [
                ("1ms", Some(1e6)),
                ("1h2m", Some(3720e9)),
                ("1.5s", Some(1.5e9)),
                ("0", Some(0.0)),
                ("10", None),
                ("1d", None),
            ] {
                assert_eq!(go_duration_nanos(text), nanos, "{text}");
            }
        }
    }
}

/// `file: document N (kind namespace/name): problem`, so a failure names the file and field.
fn label(file: &str, index: usize, doc: &Value) -> String {
    format!(
        "{file}: document {index} ({} {}/{})",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["namespace"].as_str().unwrap_or("?"),
        doc["metadata"]["name"].as_str().unwrap_or("?"),
    )
}

/// Everything wrong with one Istio object: the CRD schema, then (for AuthorizationPolicy) the
/// filter's own loader, then (for WasmPlugin) the filter's config parser on `pluginConfig`.
fn istio_object_problems(crds: &k8s::Crds, doc: &Value) -> Vec<String> {
    let mut problems = crds.validate(doc);
    match doc["kind"].as_str() {
        Some("AuthorizationPolicy") => {
            if let Err(errors) = spiffe_authz::policy::parse_policies(doc) {
                problems.extend(
                    errors
                        .iter()
                        .map(|e| format!("spiffe-authz policy loader: {e}")),
                );
            }
        }
        Some("WasmPlugin") => {
            let config = &doc["spec"]["pluginConfig"];
            problems.extend(
                plugin_config_problems(&config.to_string())
                    .into_iter()
                    .map(|e| format!("spec.pluginConfig.{e}")),
            );
        }
        _ => {}
    }
    problems
}

fn plugin_config_problems(json_text: &str) -> Vec<String> {
    match spiffe_authz::config::PluginConfig::parse(Some(json_text.as_bytes())) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn istio_files() -> Vec<String> {
    let mut files = files_under("envoy-configs/istio", "yaml");
    files.extend(files_under("envoy-configs/policies", "yaml"));
    files
}

#[test]
fn istio_objects_match_the_crd_schemas_and_the_filter_accepts_them() {
    let crds = k8s::Crds::load();
    let mut problems = Vec::new();
    let mut kinds = BTreeSet::new();
    let files = istio_files();
    assert!(
        files.len() >= 7,
        "istio/ and policies/ hold the lead's files: {files:?}"
    );
    for file in &files {
        let docs = yaml_documents(file, &read(file));
        assert!(!docs.is_empty(), "{file}: no YAML document");
        for (i, doc) in docs.iter().enumerate() {
            kinds.insert(doc["kind"].as_str().unwrap_or("?").to_string());
            for problem in istio_object_problems(&crds, doc) {
                problems.push(format!("{}: {problem}", label(file, i, doc)));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let expected: BTreeSet<String> = ["AuthorizationPolicy", "PeerAuthentication", "WasmPlugin"]
        .map(String::from)
        .into();
    assert_eq!(kinds, expected, "every kind shipped was checked");
}

/// The demo plugin configuration (YAML of the same JSON the filter reads) is accepted by the
/// filter's parser, and every policy in it matches the AuthorizationPolicy CRD too.
#[test]
fn demo_plugin_config_is_accepted_by_the_filter_and_its_policies_by_the_crd() {
    let file = "envoy-configs/demo/plugin-config.yaml";
    let docs = yaml_documents(file, &read(file));
    assert_eq!(docs.len(), 1, "{file}: one document");
    let problems = plugin_config_problems(&docs[0].to_string());
    assert!(problems.is_empty(), "{file}: {}", problems.join("\n"));
    let crds = k8s::Crds::load();
    let policies = docs[0]["policies"].as_array().expect("policies");
    assert!(!policies.is_empty());
    for (i, policy) in policies.iter().enumerate() {
        let problems = crds.validate(policy);
        assert!(
            problems.is_empty(),
            "{file}: policies[{i}]: {}",
            problems.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Envoy: the v3 API field lists
// ---------------------------------------------------------------------------------------------

mod envoy {
    use super::*;

    pub struct Api(Value);

    /// What the walk found besides problems: the plugin configurations Envoy hands to
    /// `proxy_on_configure`, and every `filename` a DataSource reads.
    #[derive(Default)]
    pub struct Walk {
        pub problems: Vec<String>,
        pub plugin_configurations: Vec<(String, String)>,
        pub filenames: Vec<(String, String)>,
    }

    const BOOTSTRAP: &str = "envoy.config.bootstrap.v3.Bootstrap";
    const PLUGIN_CONFIG: &str = "envoy.extensions.wasm.v3.PluginConfig";
    const DATA_SOURCE: &str = "envoy.config.core.v3.DataSource";
    const STRING_VALUE: &str = "google.protobuf.StringValue";

    impl Api {
        pub fn load() -> Api {
            let file = "envoy-configs/schemas/envoy-fields.json";
            Api(serde_json::from_str(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}")))
        }

        pub fn check_bootstrap(&self, bootstrap: &Value) -> Walk {
            let mut walk = Walk::default();
            self.message(BOOTSTRAP, bootstrap, "", &mut walk);
            walk
        }

        fn message(&self, type_name: &str, value: &Value, path: &str, walk: &mut Walk) {
            let Some(schema) = self.0["messages"].get(type_name) else {
                walk.problems.push(format!(
                    "{path}: message {type_name} is not in envoy-fields.json; add its fields before using it"
                ));
                return;
            };
            let Some(fields) = value.as_object() else {
                walk.problems.push(format!(
                    "{path}: {type_name} must be a mapping, got {value}"
                ));
                return;
            };
            let source = schema["source"].as_str().unwrap_or("?");
            let deprecated = schema["deprecated"].as_array();
            for (key, field_value) in fields {
                if key == "@type" {
                    continue; // consumed by the Any that led here
                }
                let field_path = join(path, key);
                let Some((name, field_type)) = field_named(schema, key) else {
                    walk.problems.push(format!(
                        "{field_path}: unknown field {key:?} of {type_name} ({source})"
                    ));
                    continue;
                };
                if deprecated.is_some_and(|d| d.contains(&json!(name))) {
                    walk.problems.push(format!(
                        "{field_path}: {type_name}.{name} is deprecated ({source})"
                    ));
                }
                if type_name == PLUGIN_CONFIG && name == "configuration" {
                    match string_value(field_value) {
                        Some(text) => walk.plugin_configurations.push((field_path.clone(), text)),
                        None => walk.problems.push(format!(
                            "{field_path}: the filter reads its configuration as a {STRING_VALUE} (JSON text)"
                        )),
                    }
                }
                if type_name == DATA_SOURCE && name == "filename" {
                    if let Some(f) = field_value.as_str() {
                        walk.filenames.push((field_path.clone(), f.to_string()));
                    }
                }
                self.field(field_type, field_value, &field_path, walk);
            }
            self.extension_name_matches_type(fields, path, walk);
            self.one_field_per_oneof(type_name, schema, fields, path, walk);
        }

        /// proto3 JSON rejects a message that sets two fields of one oneof.
        fn one_field_per_oneof(
            &self,
            type_name: &str,
            schema: &Value,
            fields: &Map<String, Value>,
            path: &str,
            walk: &mut Walk,
        ) {
            for (oneof, members) in schema["oneofs"].as_object().into_iter().flatten() {
                let set: Vec<&str> = members
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter(|m| fields.contains_key(*m) || fields.contains_key(&json_name(m)))
                    .collect();
                if set.len() > 1 {
                    walk.problems.push(format!(
                        "{path}: {set:?} are all in oneof {type_name}.{oneof}; set one"
                    ));
                }
            }
        }

        /// `name` of a filter/transport socket/access log is the extension's name; where it
        /// names a known extension, its `typed_config` must be that extension's type.
        fn extension_name_matches_type(
            &self,
            fields: &Map<String, Value>,
            path: &str,
            walk: &mut Walk,
        ) {
            let (Some(name), Some(type_url)) = (
                fields.get("name").and_then(Value::as_str),
                fields
                    .get("typed_config")
                    .or_else(|| fields.get("typedConfig"))
                    .and_then(|c| c["@type"].as_str()),
            ) else {
                return;
            };
            let (Some(expected), Some(actual)) = (
                self.0["extension_names"][name].as_str(),
                self.0["any_types"][type_url].as_str(),
            ) else {
                return;
            };
            if expected != actual {
                walk.problems.push(format!(
                    "{}: extension {name:?} takes {expected}, typed_config is {actual}",
                    join(path, "typed_config")
                ));
            }
        }

        fn field(&self, field_type: &str, value: &Value, path: &str, walk: &mut Walk) {
            if let Some(element) = field_type.strip_prefix("repeated ") {
                match value.as_array() {
                    Some(items) => {
                        for (i, item) in items.iter().enumerate() {
                            self.field(element, item, &format!("{path}[{i}]"), walk);
                        }
                    }
                    None => walk.problems.push(format!("{path}: must be a list")),
                }
                return;
            }
            if let Some(entry) = field_type
                .strip_prefix("map<string,")
                .and_then(|t| t.strip_suffix('>'))
            {
                match value.as_object() {
                    Some(entries) => {
                        for (key, item) in entries {
                            self.field(entry, item, &join(path, key), walk);
                        }
                    }
                    None => walk.problems.push(format!("{path}: must be a mapping")),
                }
                return;
            }
            if let Some(enum_name) = field_type.strip_prefix("enum ") {
                self.enumeration(enum_name, value, path, walk);
                return;
            }
            let scalar_ok = match field_type {
                "string" | "bytes" => Some(value.is_string()),
                "bool" | "google.protobuf.BoolValue" => Some(value.is_boolean()),
                "uint32" | "google.protobuf.UInt32Value" => {
                    Some(value.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)))
                }
                // proto3 JSON writes 64-bit integers as numbers or decimal strings.
                "uint64" | "google.protobuf.UInt64Value" => {
                    Some(value.is_u64() || value.as_str().is_some_and(|s| s.parse::<u64>().is_ok()))
                }
                "int64" => {
                    Some(value.is_i64() || value.as_str().is_some_and(|s| s.parse::<i64>().is_ok()))
                }
                // proto3 JSON Duration: decimal seconds with an "s" suffix, e.g. "1s", "0.25s".
                "google.protobuf.Duration" => Some(value.as_str().is_some_and(|s| {
                    s.strip_suffix('s').is_some_and(|n| {
                        !n.is_empty() && n.parse::<f64>().is_ok() && !n.contains(['e', 'E'])
                    })
                })),
                "google.protobuf.Struct" => Some(value.is_object()),
                _ => None,
            };
            match scalar_ok {
                Some(true) => {}
                Some(false) => walk
                    .problems
                    .push(format!("{path}: {value}: not a valid {field_type}")),
                None if field_type == "google.protobuf.Any" => self.any(value, path, walk),
                None => self.message(field_type, value, path, walk),
            }
        }

        fn enumeration(&self, enum_name: &str, value: &Value, path: &str, walk: &mut Walk) {
            let Some(values) = self.0["enums"][enum_name]["values"].as_array() else {
                walk.problems.push(format!(
                    "{path}: enum {enum_name} is not in envoy-fields.json; add its values before using it"
                ));
                return;
            };
            // Envoy also takes enum numbers, but the field lists keep names only: a deployable
            // config writes the name.
            let ok = value.is_string() && values.contains(value);
            if !ok {
                let source = self.0["enums"][enum_name]["source"].as_str().unwrap_or("?");
                walk.problems.push(format!(
                    "{path}: {value} is not a value of {enum_name} ({source}): {}",
                    Value::from(values.clone())
                ));
            }
        }

        fn any(&self, value: &Value, path: &str, walk: &mut Walk) {
            let Some(type_url) = value["@type"].as_str() else {
                walk.problems
                    .push(format!("{path}: a google.protobuf.Any needs \"@type\""));
                return;
            };
            match self.0["any_types"][type_url].as_str() {
                Some(type_name) => {
                    self.message(type_name, value, &format!("{path}({type_name})"), walk)
                }
                None => walk.problems.push(format!(
                    "{path}.@type: {type_url:?} is not in envoy-fields.json any_types"
                )),
            }
        }
    }

    fn string_value(value: &Value) -> Option<String> {
        (value["@type"].as_str() == Some(&format!("type.googleapis.com/{STRING_VALUE}")))
            .then(|| value["value"].as_str().map(String::from))
            .flatten()
    }

    /// Envoy's YAML loader is proto3 JSON: a field may be written by its proto name or by its
    /// json_name.
    fn field_named<'a>(schema: &'a Value, key: &str) -> Option<(String, &'a str)> {
        schema["fields"]
            .as_object()?
            .iter()
            .find(|(name, _)| name.as_str() == key || json_name(name) == key)
            .and_then(|(name, ty)| Some((name.clone(), ty.as_str()?)))
    }

    /// protoc's default json_name: drop each `_` and upper-case the letter after it.
    pub fn json_name(field: &str) -> String {
        let mut out = String::with_capacity(field.len());
        let mut upper = false;
        for c in field.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.push(c.to_ascii_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    }
}

const ENVOY_BOOTSTRAP: &str = "envoy-configs/envoy/envoy.yaml";
/// Where `cargo build -p spiffe-authz --target wasm32-wasip1 --profile wasm-release` writes the
/// module (workspace Cargo.toml `[profile.wasm-release]`, crate spiffe-authz).
const WASM_ARTIFACT: &str = "target/wasm32-wasip1/wasm-release/spiffe_authz.wasm";
/// Where envoy-configs/README.md tells users to run `host-sim certs --out`.
const CERTS_DIR: &str = "envoy-configs/envoy/certs/";

fn envoy_bootstrap() -> Value {
    let mut docs = yaml_documents(ENVOY_BOOTSTRAP, &read(ENVOY_BOOTSTRAP));
    assert_eq!(docs.len(), 1, "{ENVOY_BOOTSTRAP}: one document");
    docs.remove(0)
}

/// Every problem with an Envoy bootstrap: field names and enum values against the v3 API,
/// the embedded plugin configurations against the filter's parser, the files it reads
/// against what the documented steps produce.
fn envoy_problems(bootstrap: &Value, produced_certs: &BTreeSet<String>) -> Vec<String> {
    let walk = envoy::Api::load().check_bootstrap(bootstrap);
    let mut problems = walk.problems;
    if walk.plugin_configurations.is_empty() {
        problems.push("no wasm PluginConfig.configuration found".into());
    }
    for (path, text) in &walk.plugin_configurations {
        problems.extend(
            plugin_config_problems(text)
                .into_iter()
                .map(|e| format!("{path}: {e}")),
        );
    }
    for (path, filename) in &walk.filenames {
        let produced = filename == WASM_ARTIFACT
            || filename
                .strip_prefix(CERTS_DIR)
                .is_some_and(|rel| produced_certs.contains(rel));
        if !produced {
            problems.push(format!(
                "{path}: {filename:?} is produced by no documented step (the wasm build writes {WASM_ARTIFACT}, `host-sim certs --out {CERTS_DIR}` writes {produced_certs:?})"
            ));
        }
    }
    problems
}

/// The files `host-sim certs` writes with its default workloads, relative to `--out`. Made
/// once per test process: the tests run in parallel and must not share a half-written or
/// half-deleted directory.
fn demo_pki_files() -> BTreeSet<String> {
    static FILES: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    FILES.get_or_init(write_demo_pki_once).clone()
}

fn write_demo_pki_once() -> BTreeSet<String> {
    let dir =
        std::env::temp_dir().join(format!("spiffe-authz-configs-test-{}", std::process::id()));
    // host-sim's CLI defaults (`CertsArgs::workloads`); envoy.yaml needs demo/backend.
    let workloads = [
        ("demo", "frontend"),
        ("demo", "backend"),
        ("ops", "deployer"),
        ("payments", "payment-service"),
    ];
    let written = host_sim::certs::write_demo_pki(&dir, "cluster.local", &workloads)
        .unwrap_or_else(|e| panic!("write_demo_pki: {e}"));
    let files = written
        .iter()
        .map(|p| {
            p.strip_prefix(&dir)
                .expect("written under the output directory")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    files
}

#[test]
fn envoy_bootstrap_uses_only_envoy_v3_fields_and_documented_files() {
    let problems = envoy_problems(&envoy_bootstrap(), &demo_pki_files());
    assert!(
        problems.is_empty(),
        "{ENVOY_BOOTSTRAP}:\n{}",
        problems.join("\n")
    );
}

#[test]
fn envoy_bootstrap_embeds_a_plugin_config_per_wasm_filter() {
    let walk = envoy::Api::load().check_bootstrap(&envoy_bootstrap());
    let paths: Vec<&str> = walk
        .plugin_configurations
        .iter()
        .map(|(p, _)| p.as_str())
        .collect();
    assert_eq!(
        paths.len(),
        2,
        "the HTTP and the network wasm filter: {paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.contains("http.wasm.v3.Wasm")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.contains("network.wasm.v3.Wasm")),
        "{paths:?}"
    );
    let files: Vec<&str> = walk.filenames.iter().map(|(_, f)| f.as_str()).collect();
    assert!(files.contains(&WASM_ARTIFACT), "{files:?}");
}

/// The README's steps are the ones the filename check trusts.
#[test]
fn envoy_configs_readme_documents_the_steps_that_produce_the_files() {
    let readme = read("envoy-configs/README.md");
    for step in [
        "cargo build -p spiffe-authz --target wasm32-wasip1 --profile wasm-release",
        WASM_ARTIFACT,
        "certs --out envoy-configs/envoy/certs",
        "envoy -c envoy-configs/envoy/envoy.yaml",
    ] {
        assert!(
            readme.contains(step),
            "envoy-configs/README.md does not show {step:?}"
        );
    }
    let cargo = read("Cargo.toml");
    assert!(
        cargo.contains("[profile.wasm-release]"),
        "the wasm profile the path names"
    );
    assert!(read("filter/Cargo.toml").contains("name = \"spiffe-authz\""));
}

#[test]
fn envoy_field_lists_name_their_source_for_every_type() {
    let api: Value =
        serde_json::from_str(&read("envoy-configs/schemas/envoy-fields.json")).unwrap();
    for section in ["messages", "enums"] {
        for (name, entry) in api[section].as_object().unwrap() {
            let source = entry["source"].as_str().unwrap_or("");
            assert!(
                source.ends_with(".proto"),
                "{section}.{name}: source {source:?}"
            );
        }
    }
    for (url, type_name) in api["any_types"].as_object().unwrap() {
        let type_name = type_name.as_str().unwrap();
        assert_eq!(url.strip_prefix("type.googleapis.com/"), Some(type_name));
        assert!(
            api["messages"].get(type_name).is_some(),
            "any_types {url}: no field list"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// demo/traffic.jsonl: host-sim run's request lines
// ---------------------------------------------------------------------------------------------

/// Problems with a request file as `host-sim run` reads it: its own line parser
/// (`host_sim::jsonl::parse_lines`: strict fields, HTTP request or `"tcp": true`), then the
/// socket addresses it only parses when it runs the line.
fn traffic_problems(origin: &str, text: &str) -> Vec<String> {
    let lines = match host_sim::jsonl::parse_lines(origin, text) {
        Ok(lines) => lines,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    for (number, line) in &lines {
        for (field, address) in [
            ("source", &line.connection.source),
            ("destination", &line.connection.destination),
        ] {
            if let Some(address) = address {
                if address.parse::<std::net::SocketAddr>().is_err() {
                    problems.push(format!(
                        "{origin}:{number}: connection.{field}: {address:?}: expected ip:port"
                    ));
                }
            }
        }
    }
    if lines.is_empty() {
        problems.push(format!("{origin}: no request line"));
    }
    problems
}

#[test]
fn demo_traffic_lines_parse_as_host_sim_run_reads_them() {
    let file = "envoy-configs/demo/traffic.jsonl";
    let text = read(file);
    let problems = traffic_problems(file, &text);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let lines = host_sim::jsonl::parse_lines(file, &text).unwrap();
    assert!(lines.len() >= 10, "{file}: {} lines", lines.len());
    assert!(
        lines.iter().any(|(_, l)| l.tcp),
        "{file}: the demo has a TCP line"
    );
}

/// run.sh runs the artefact the wasm build writes, on the demo files that exist here.
#[test]
fn demo_run_script_uses_the_built_module_and_the_checked_files() {
    let script = read("envoy-configs/demo/run.sh");
    assert!(
        script.contains(&format!("--wasm {WASM_ARTIFACT}")),
        "run.sh --wasm"
    );
    assert!(
        script.contains("--profile wasm-release"),
        "run.sh builds what it runs"
    );
    for word in script.split_whitespace() {
        if let Some(path) = word.strip_prefix("envoy-configs/") {
            let path = format!("envoy-configs/{path}");
            assert!(
                repo_root().join(&path).is_file(),
                "run.sh names {path}, which is missing"
            );
        }
    }
}

/// Every file in envoy-configs/ is either checked by a test in this file or is the schema data
/// those tests read; a new file must be added here with the test that checks it.
#[test]
fn every_file_in_envoy_configs_is_checked() {
    let checked_by: &[(&str, &str)] = &[
        (
            "envoy-configs/README.md",
            "envoy_configs_readme_documents_the_steps_that_produce_the_files",
        ),
        (
            "envoy-configs/envoy/envoy.yaml",
            "envoy_bootstrap_uses_only_envoy_v3_fields_and_documented_files",
        ),
        (
            "envoy-configs/istio/",
            "istio_objects_match_the_crd_schemas_and_the_filter_accepts_them",
        ),
        (
            "envoy-configs/policies/",
            "istio_objects_match_the_crd_schemas_and_the_filter_accepts_them",
        ),
        (
            "envoy-configs/demo/plugin-config.yaml",
            "demo_plugin_config_is_accepted_by_the_filter_and_its_policies_by_the_crd",
        ),
        (
            "envoy-configs/demo/traffic.jsonl",
            "demo_traffic_lines_parse_as_host_sim_run_reads_them",
        ),
        (
            "envoy-configs/demo/node.json",
            "demo_node_metadata_matches_the_demo_workload",
        ),
        (
            "envoy-configs/demo/run.sh",
            "demo_run_script_uses_the_built_module_and_the_checked_files",
        ),
        (
            "envoy-configs/schemas/istio-crds.yaml",
            "schema data: Istio's CRDs",
        ),
        (
            "envoy-configs/schemas/envoy-fields.json",
            "envoy_field_lists_name_their_source_for_every_type",
        ),
    ];
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            // Generated by the README's steps, never committed.
            if relative == "envoy-configs/envoy/certs" {
                continue;
            }
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(relative);
            }
        }
    }
    let root = repo_root();
    let mut files = Vec::new();
    walk(&root.join("envoy-configs"), &root, &mut files);
    files.sort();
    let unchecked: Vec<&String> = files
        .iter()
        .filter(|f| {
            !checked_by.iter().any(|(pattern, _)| {
                f.as_str() == *pattern || (pattern.ends_with('/') && f.starts_with(pattern))
            })
        })
        .collect();
    assert!(unchecked.is_empty(), "files no test checks: {unchecked:?}");
    let istio = istio_files();
    assert!(
        files
            .iter()
            .filter(|f| f.starts_with("envoy-configs/istio/")
                || f.starts_with("envoy-configs/policies/"))
            .all(|f| istio.contains(f)),
        "every file under istio/ and policies/ is YAML the CRD test reads"
    );
}

#[test]
fn demo_node_metadata_matches_the_demo_workload() {
    // host-sim serves node.json as Istio's node metadata; the demo plugin config names the
    // same workload explicitly, so the two must agree.
    let node: Value = serde_json::from_str(&read("envoy-configs/demo/node.json")).unwrap();
    let config = &yaml_documents(
        "plugin-config.yaml",
        &read("envoy-configs/demo/plugin-config.yaml"),
    )[0];
    assert_eq!(node["NAMESPACE"], config["workload"]["namespace"]);
    assert_eq!(node["LABELS"], config["workload"]["labels"]);
}

/// `host-sim render` writes WasmPlugins and Envoy filters for users to deploy: what it renders
/// from the shipped policies passes the same checks as the hand-written files.
#[test]
fn host_sim_render_output_passes_the_same_checks() {
    use host_sim::render::{self, PluginSettings, WasmPluginSettings};
    let mut policies = Vec::new();
    for file in files_under("envoy-configs/policies", "yaml") {
        for doc in yaml_documents(&file, &read(&file)) {
            policies.extend(spiffe_authz::policy::parse_policies(&doc).expect(&file));
        }
    }
    let settings = PluginSettings {
        mtls_mode: Some("STRICT".into()),
        workload_namespace: Some("demo".into()),
        workload_labels: [("app".to_string(), "backend".to_string())].into(),
        ..Default::default()
    };
    let wasm_plugin = render::wasm_plugin_yaml(
        &policies,
        &settings,
        &WasmPluginSettings {
            name: "spiffe-authz".into(),
            namespace: "demo".into(),
            selector: [("app".to_string(), "backend".to_string())].into(),
            url: "oci://registry.example.internal/spiffe-authz:0.1.0".into(),
            sha256: Some("ab".repeat(32)),
        },
    )
    .expect("render wasmplugin");
    let crds = k8s::Crds::load();
    for doc in yaml_documents("rendered WasmPlugin", &wasm_plugin) {
        let problems = istio_object_problems(&crds, &doc);
        assert!(
            problems.is_empty(),
            "rendered WasmPlugin: {}",
            problems.join("\n")
        );
    }

    let filter = render::envoy_http_filter_yaml(&policies, &settings, WASM_ARTIFACT)
        .expect("render envoy filter");
    let mut bootstrap = envoy_bootstrap();
    let http_filters =
        "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters";
    let chain = bootstrap
        .pointer_mut(http_filters)
        .and_then(Value::as_array_mut)
        .expect("http_filters");
    chain[0] = yaml_documents("rendered Envoy filter", &filter).remove(0);
    let problems = envoy_problems(&bootstrap, &demo_pki_files());
    assert!(
        problems.is_empty(),
        "envoy.yaml with the rendered filter: {}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Negative twins: each check fails on a copy of a real file with one thing broken
// ---------------------------------------------------------------------------------------------

fn first_doc(file: &str) -> Value {
    yaml_documents(file, &read(file)).remove(0)
}

fn rename_key(doc: &mut Value, pointer: &str, from: &str, to: &str) {
    let object = doc
        .pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {pointer}"));
    let value = object
        .remove(from)
        .unwrap_or_else(|| panic!("no {from} at {pointer}"));
    object.insert(to.to_string(), value);
}

/// Sets (or adds) the field at a JSON pointer.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, field) = pointer.rsplit_once('/').expect("a JSON pointer");
    let object = doc
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"));
    object.insert(field.to_string(), value);
}

type Mutation = fn(&mut Value);

/// Istio/Kubernetes behaviours the CRD check must pin, each on a copy of a shipped file.
#[test]
fn broken_istio_objects_are_rejected_with_their_field_path() {
    let cases: &[(&str, &str, Mutation, &str)] = &[
        (
            "misspelled WasmPlugin field: unknown fields fail with kubectl --validate=strict",
            "envoy-configs/istio/wasmplugin.yaml",
            |d| rename_key(d, "/spec", "failStrategy", "failStrategie"),
            "spec.failStrategie: unknown field",
        ),
        (
            "WasmPlugin phase enum (extensions/v1alpha1 PluginPhase)",
            "envoy-configs/istio/wasmplugin.yaml",
            |d| set(d, "/spec/phase", json!("AUTHORIZE")),
            "spec.phase: \"AUTHORIZE\": must be one of",
        ),
        (
            "WasmPlugin sha256 pattern: 64 lower-case hex digits or empty",
            "envoy-configs/istio/wasmplugin.yaml",
            |d| set(d, "/spec/sha256", json!("sha256:abc")),
            "spec.sha256: \"sha256:abc\": does not match",
        ),
        (
            "WasmPlugin CEL rule: only one of targetRefs or selector",
            "envoy-configs/istio/wasmplugin.yaml",
            |d| set(d, "/spec/targetRefs", json!([{"kind": "Service", "name": "backend"}])),
            "spec: only one of targetRefs or selector can be set",
        ),
        (
            "WasmPlugin CEL rule: url scheme one of http, https, file, oci",
            "envoy-configs/istio/wasmplugin.yaml",
            |d| set(d, "/spec/url", json!("ftp://registry.example.internal/spiffe-authz:0.1.0")),
            "spec.url: url must have schema one of [http, https, file, oci]",
        ),
        (
            "WasmPlugin pluginConfig is preserved by Kubernetes but parsed strictly by the filter",
            "envoy-configs/istio/wasmplugin.yaml",
            |d| rename_key(d, "/spec/pluginConfig", "trustDomain", "trustDomian"),
            "spec.pluginConfig.trustDomian: unknown field",
        ),
        (
            "PeerAuthentication mtls.mode enum (UNSET, DISABLE, PERMISSIVE, STRICT)",
            "envoy-configs/istio/peer-authentication-strict.yaml",
            |d| set(d, "/spec/mtls/mode", json!("STRICTEST")),
            "spec.mtls.mode: \"STRICTEST\": must be one of",
        ),
        (
            "AuthorizationPolicy source field is principals, not principal",
            "envoy-configs/policies/frontend-to-backend.yaml",
            |d| rename_key(d, "/spec/rules/0/from/0/source", "principals", "principal"),
            "spec.rules[0].from[0].source.principal: unknown field",
        ),
        (
            "AuthorizationPolicy action enum (ALLOW, DENY, AUDIT, CUSTOM)",
            "envoy-configs/policies/frontend-to-backend.yaml",
            |d| set(d, "/spec/action", json!("PERMIT")),
            "spec.action: \"PERMIT\": must be one of",
        ),
        (
            "AuthorizationPolicy CEL rule: serviceAccounts excludes principals",
            "envoy-configs/policies/frontend-to-backend.yaml",
            |d| set(d, "/spec/rules/0/from/0/source/serviceAccounts", json!(["demo/frontend"])),
            "Cannot set serviceAccounts with namespaces or principals",
        ),
        (
            "metadata.name must be a DNS-1123 subdomain",
            "envoy-configs/policies/deny-by-default.yaml",
            |d| set(d, "/metadata/name", json!("Allow_Nothing")),
            "metadata.name: \"Allow_Nothing\": must be a DNS-1123 subdomain",
        ),
        (
            "apiVersion must be a served version of the CRD",
            "envoy-configs/policies/deny-by-default.yaml",
            |d| set(d, "/apiVersion", json!("security.istio.io/v2")),
            "apiVersion: \"security.istio.io/v2\"",
        ),
        (
            "the filter's loader rejects what Istio's admission rejects (empty principal)",
            "envoy-configs/policies/frontend-to-backend.yaml",
            |d| set(d, "/spec/rules/0/from/0/source/principals", json!([""])),
            "spiffe-authz policy loader: demo/backend-allow-frontend: spec.rules[0].from[0].source.principals[0]",
        ),
    ];
    let crds = k8s::Crds::load();
    for (behaviour, file, mutate, expected) in cases {
        let mut doc = first_doc(file);
        assert!(
            istio_object_problems(&crds, &doc).is_empty(),
            "{behaviour}: {file} is valid before the change"
        );
        mutate(&mut doc);
        let problems = istio_object_problems(&crds, &doc);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{behaviour}: {file}: expected a problem containing {expected:?}, got {problems:#?}"
        );
    }
}

/// Envoy API behaviours the bootstrap check must pin, each on a copy of envoy.yaml.
#[test]
fn broken_envoy_bootstraps_are_rejected_with_their_field_path() {
    const HCM: &str = "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config";
    const HTTP_WASM: &str =
        "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters/0/typed_config/config";
    const TLS: &str = "/static_resources/listeners/0/filter_chains/0/transport_socket/typed_config";
    const NETWORK_WASM: &str =
        "/static_resources/listeners/1/filter_chains/0/filters/0/typed_config/config";
    let cases: &[(&str, Mutation, &str)] = &[
        (
            "HCM forward_client_cert_details is an enum (SANITIZE_SET, not SANITISE_SET)",
            |d| set(d, &format!("{HCM}/forward_client_cert_details"), json!("SANITISE_SET")),
            "forward_client_cert_details: \"SANITISE_SET\" is not a value of envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.ForwardClientCertDetails",
        ),
        (
            "wasm PluginConfig.failure_policy is FAIL_CLOSED (Istio spells it FAIL_CLOSE)",
            |d| set(d, &format!("{HTTP_WASM}/failure_policy"), json!("FAIL_CLOSE")),
            "failure_policy: \"FAIL_CLOSE\" is not a value of envoy.extensions.wasm.v3.FailurePolicy",
        ),
        (
            "misspelled DownstreamTlsContext field",
            |d| rename_key(d, TLS, "require_client_certificate", "require_client_certificates"),
            "unknown field \"require_client_certificates\" of envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        ),
        (
            "camelCase json_name is accepted, so a misspelling in camelCase is still caught",
            |d| rename_key(d, HCM, "stat_prefix", "statPrefx"),
            "unknown field \"statPrefx\"",
        ),
        (
            "deprecated PluginConfig.fail_open",
            |d| set(d, &format!("{NETWORK_WASM}/fail_open"), json!(false)),
            "envoy.extensions.wasm.v3.PluginConfig.fail_open is deprecated",
        ),
        (
            "typed_config @type must be a known type",
            |d| set(d, &format!("{HCM}/@type"), json!("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManagr")),
            "is not in envoy-fields.json any_types",
        ),
        (
            "an extension's name and its typed_config type agree",
            |d| set(
                d,
                "/static_resources/listeners/0/filter_chains/0/filters/0/name",
                json!("envoy.filters.network.tcp_proxy"),
            ),
            "extension \"envoy.filters.network.tcp_proxy\" takes envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        ),
        (
            "a oneof takes one field: RouteMatch prefix and path exclude each other",
            |d| {
                let pointer = format!("{HCM}/route_config/virtual_hosts/0/routes/0/match/path");
                set(d, &pointer, json!("/api"));
            },
            "[\"prefix\", \"path\"] are all in oneof envoy.config.route.v3.RouteMatch.path_specifier",
        ),
        (
            "Duration fields are proto3 JSON durations",
            |d| set(d, "/static_resources/clusters/0/connect_timeout", json!("1 second")),
            "connect_timeout: \"1 second\": not a valid google.protobuf.Duration",
        ),
        (
            "the embedded plugin configuration is parsed by the filter",
            |d| {
                let value = d.pointer(&format!("{HTTP_WASM}/configuration/value")).unwrap().as_str().unwrap();
                let broken = value.replace("\"mtlsMode\"", "\"mtlsmode\"");
                set(d, &format!("{HTTP_WASM}/configuration/value"), json!(broken));
            },
            "configuration: mtlsmode: unknown field",
        ),
        (
            "the plugin configuration must be a StringValue (the filter reads JSON text)",
            |d| set(d, &format!("{HTTP_WASM}/configuration"), json!({"@type": "type.googleapis.com/google.protobuf.Struct", "value": {}})),
            "the filter reads its configuration as a google.protobuf.StringValue",
        ),
        (
            "certificate paths follow host-sim certs' layout (workloads/<ns>.<sa>/)",
            |d| set(
                d,
                "/static_resources/listeners/0/filter_chains/0/transport_socket/typed_config/common_tls_context/tls_certificates/0/certificate_chain/filename",
                json!("envoy-configs/envoy/certs/demo/backend/cert-chain.pem"),
            ),
            "\"envoy-configs/envoy/certs/demo/backend/cert-chain.pem\" is produced by no documented step",
        ),
        (
            "the wasm path is the wasm-release artifact",
            |d| set(d, &format!("{NETWORK_WASM}/vm_config/code/local/filename"), json!("target/wasm32-wasip1/release/spiffe_authz.wasm")),
            "\"target/wasm32-wasip1/release/spiffe_authz.wasm\" is produced by no documented step",
        ),
    ];
    let produced = demo_pki_files();
    assert!(
        envoy_problems(&envoy_bootstrap(), &produced).is_empty(),
        "envoy.yaml is valid before the change"
    );
    for (behaviour, mutate, expected) in cases {
        let mut doc = envoy_bootstrap();
        mutate(&mut doc);
        let problems = envoy_problems(&doc, &produced);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{behaviour}: expected a problem containing {expected:?}, got {problems:#?}"
        );
    }
}

/// host-sim run's reader is strict: each broken copy of the first demo line fails, naming the
/// file, the line and the field.
#[test]
fn broken_traffic_lines_are_rejected_with_their_field_path() {
    let first = read("envoy-configs/demo/traffic.jsonl")
        .lines()
        .next()
        .unwrap()
        .to_string();
    let cases: &[(&str, Mutation, &str)] = &[
        (
            "misspelled connection field",
            |l| rename_key(l, "/connection", "peerUriSan", "peerUriSAN"),
            "t.jsonl:1: unknown field `peerUriSAN`",
        ),
        (
            "source is ip:port",
            |l| set(l, "/connection/source", json!("10.0.0.1")),
            "t.jsonl:1: connection.source: \"10.0.0.1\": expected ip:port",
        ),
        (
            "an HTTP line needs a request",
            |l| {
                l.as_object_mut().unwrap().remove("request");
            },
            "t.jsonl:1: a line needs \"request\" (HTTP) or \"tcp\": true",
        ),
        (
            "a TCP line has no HTTP request",
            |l| set(l, "/tcp", json!(true)),
            "exclude each other",
        ),
    ];
    assert!(traffic_problems("t.jsonl", &first).is_empty());
    for (behaviour, mutate, expected) in cases {
        let mut line: Value = serde_json::from_str(&first).unwrap();
        mutate(&mut line);
        let problems = traffic_problems("t.jsonl", &line.to_string());
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{behaviour}: expected {expected:?}, got {problems:#?}"
        );
    }
}

/// protoc's json_name rule (descriptor.proto `json_name`: lowerCamelCase of the field name).
#[test]
fn proto_field_names_map_to_protoc_json_names() {
    for (field, json_name) in [
        ("stat_prefix", "statPrefix"),
        ("proxy_100_continue", "proxy100Continue"),
        (
            "represent_ipv4_remote_address_as_ipv4_mapped_ipv6",
            "representIpv4RemoteAddressAsIpv4MappedIpv6",
        ),
        ("name", "name"),
    ] {
        assert_eq!(envoy::json_name(field), json_name);
    }
}

/// The CRD copy stays the shared snapshot it says it is: where the project's shared/ sits beside
/// the checkout (developers, CI), the copy below its header block is byte-identical.
#[test]
fn istio_crd_copy_matches_the_shared_snapshot_when_present() {
    let shared = repo_root().join("../shared/schemas/istio-crds.yaml");
    let Ok(original) = std::fs::read_to_string(&shared) else {
        return; // shared/ is absent: the copy is all there is.
    };
    let copy = read("envoy-configs/schemas/istio-crds.yaml");
    let body = copy
        .split_once("#\n")
        .map(|(_, body)| body)
        .expect("header block ends with a lone '#' line");
    assert!(
        body == original,
        "envoy-configs/schemas/istio-crds.yaml drifted from {}",
        shared.display()
    );
}
