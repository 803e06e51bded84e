//! Loading pasted `kubectl get authorizationpolicy -o json|yaml` output.
//!
//! Each item is read field by field from the [`Json`] tree rather than through serde's derived
//! deserializers (see `json.rs` for why), mirroring `model.rs` field for field: the same
//! names, the same strictness (`deny_unknown_fields` on the spec, lenient metadata and
//! top level), serde's messages, and the path of the field that failed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{Problem, ValidationError};
use super::json::{optional, Json, ReadError, UnknownFields};
use super::model::{
    Action, AuthorizationPolicy, AuthorizationPolicySpec, Condition, ExtensionProvider, ObjectMeta,
    Operation, PolicyTargetReference, Rule, RuleFrom, RuleTo, Source, WorkloadSelector,
};
use super::validate::{label, policy_label, validate_labelled};

/// Parses and validates policies from one JSON value: a single `AuthorizationPolicy` object,
/// a JSON array of them, or a `kind: List` / `kind: AuthorizationPolicyList` object with
/// `items` (what `kubectl get -o json` prints for several objects).
///
/// Every error of every item is returned, each naming the policy (`namespace/name`, or
/// `items[N]` for an item without a name), the field path and the value.
pub fn parse_policies(value: &Value) -> Result<Vec<AuthorizationPolicy>, Vec<ValidationError>> {
    parse_policies_json(Json::from(value))
}

/// [`parse_policies`] on the plugin's own JSON tree (what the `.wasm` uses: no
/// `serde_json::Value` on that path). The tree is taken by value and each item freed once it
/// is read, so the tree and the policies read from it are never both whole in memory.
pub fn parse_policies_json(
    mut value: Json,
) -> Result<Vec<AuthorizationPolicy>, Vec<ValidationError>> {
    let (items, is_list) = match value {
        Json::Array(items) => (items, true),
        Json::Object(_) if is_list_object(&value) => match value.take("items") {
            Some(Json::Array(items)) => (items, true),
            None | Some(Json::Null) => (Vec::new(), true),
            Some(_) => {
                return Err(vec![ValidationError::new(
                    "<list>",
                    "items",
                    Problem::Malformed("must be an array of AuthorizationPolicy objects".into()),
                )])
            }
        },
        Json::Object(_) => (vec![value], false),
        _ => {
            return Err(vec![ValidationError::new(
                "<config>",
                "",
                Problem::Malformed(
                    "expected an AuthorizationPolicy object, an array of them, or a List with items"
                        .into(),
                ),
            )])
        }
    };

    let mut reader = PolicyReader::new(is_list);
    for item in items {
        reader.read_item(item);
    }
    reader.finish()
}

/// Reads policies one item at a time, in order, so a caller can hand over each item as soon
/// as it is parsed and free it once read (the plugin's configuration reader does: see
/// [`super::json::parse_streaming`]). The results are [`parse_policies_json`]'s.
#[derive(Debug, Default)]
pub struct PolicyReader {
    policies: Vec<AuthorizationPolicy>,
    errors: Vec<ValidationError>,
    /// `namespace/name` -> where it was first seen, for duplicate names.
    seen: BTreeMap<String, String>,
    /// Whether the items come from a list (labels then say `items[N]`), and the next index.
    is_list: bool,
    next: usize,
}

impl PolicyReader {
    pub fn new(is_list: bool) -> PolicyReader {
        PolicyReader {
            is_list,
            ..PolicyReader::default()
        }
    }

    /// Reads, validates and keeps (or records the errors of) the next item.
    pub fn read_item(&mut self, item: Json) {
        let item_index = self.is_list.then_some(self.next);
        self.next += 1;
        let raw_label = raw_label(&item, item_index);
        let errors_before = self.errors.len();
        // `from: []` / `to: []` are no error: Istio's Go tests reject an empty non-nil list
        // (validation_test.go "from-empty", "to-empty"), but a policy read from YAML or JSON
        // goes through proto JSON decoding, which leaves an empty repeated field nil, so the
        // webhook admits it and the builder reads it as absent (any source, any operation),
        // as the model here does.
        let read = read_policy(&item);
        drop(item);
        match read {
            Ok(policy) => {
                let label = policy_label(&policy, item_index);
                self.errors.extend(validate_labelled(&policy, &label));
                if !policy.metadata.name.is_empty() {
                    let position =
                        item_index.map_or_else(|| "the config".into(), |i| format!("items[{i}]"));
                    if let Some(first) = self.seen.insert(policy.key(), position) {
                        self.errors.push(ValidationError::new(
                            label,
                            "metadata.name",
                            Problem::Duplicate(first),
                        ));
                    }
                }
                if self.errors.len() == errors_before {
                    self.policies.push(policy);
                }
            }
            Err(e) => self.errors.push(ValidationError::new(
                raw_label,
                e.path(),
                Problem::Malformed(e.message),
            )),
        }
    }

    /// Every policy, or every error of every item.
    pub fn finish(mut self) -> Result<Vec<AuthorizationPolicy>, Vec<ValidationError>> {
        if self.errors.is_empty() {
            self.policies.shrink_to_fit();
            Ok(self.policies)
        } else {
            Err(self.errors)
        }
    }
}

fn is_list_object(object: &Json) -> bool {
    match object.get("kind").and_then(Json::as_str) {
        Some(kind) => kind == "List" || kind == "AuthorizationPolicyList",
        // `items` is no AuthorizationPolicy field: an object with it is a list without kind.
        None => object.get("items").is_some(),
    }
}

/// Names an item before it has parsed, from whatever metadata it carries.
fn raw_label(item: &Json, item_index: Option<usize>) -> String {
    let meta = |field: &str| {
        item.get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Json::as_str)
            .unwrap_or_default()
    };
    label(meta("namespace"), meta("name"), item_index)
}

type Read<T> = Result<T, ReadError>;

fn read_policy(value: &Json) -> Read<AuthorizationPolicy> {
    let mut policy = AuthorizationPolicy {
        api_version: None,
        kind: None,
        metadata: ObjectMeta::default(),
        spec: AuthorizationPolicySpec::default(),
        status: None,
    };
    // Object metadata and `status` are lenient (see `model.rs`); `status` is not kept.
    value.read_struct(
        "struct AuthorizationPolicy",
        &["apiVersion", "kind", "metadata", "spec"],
        UnknownFields::Ignore,
        &mut |key, v| {
            match key {
                "apiVersion" => policy.api_version = optional(v, Json::read_string)?,
                "kind" => policy.kind = optional(v, Json::read_string)?,
                "metadata" => policy.metadata = read_metadata(v)?,
                _ => policy.spec = read_spec(v)?,
            }
            Ok(())
        },
    )?;
    Ok(policy)
}

fn read_metadata(value: &Json) -> Read<ObjectMeta> {
    let mut meta = ObjectMeta::default();
    value.read_struct(
        "struct ObjectMeta",
        &["name", "namespace", "annotations", "labels"],
        UnknownFields::Ignore,
        &mut |key, v| {
            match key {
                "name" => meta.name = v.read_string()?,
                "namespace" => meta.namespace = v.read_string()?,
                "annotations" => meta.annotations = v.read_string_map()?,
                _ => meta.labels = v.read_string_map()?,
            }
            Ok(())
        },
    )?;
    Ok(meta)
}

const ACTIONS: &[(&str, Action)] = &[
    ("ALLOW", Action::Allow),
    ("DENY", Action::Deny),
    ("AUDIT", Action::Audit),
    ("CUSTOM", Action::Custom),
];

fn read_spec(value: &Json) -> Read<AuthorizationPolicySpec> {
    let mut spec = AuthorizationPolicySpec::default();
    value.read_struct(
        "struct AuthorizationPolicySpec",
        &[
            "selector",
            "targetRef",
            "targetRefs",
            "action",
            "provider",
            "rules",
        ],
        UnknownFields::Deny,
        &mut |key, v| {
            match key {
                "selector" => spec.selector = optional(v, read_selector)?,
                "targetRef" => spec.target_ref = optional(v, read_target_ref)?,
                "targetRefs" => spec.target_refs = v.read_list(read_target_ref)?,
                "action" => spec.action = optional(v, |v| v.read_enum(ACTIONS))?,
                "provider" => spec.provider = optional(v, read_provider)?,
                _ => spec.rules = optional(v, |v| v.read_list(read_rule))?,
            }
            Ok(())
        },
    )?;
    Ok(spec)
}

fn read_selector(value: &Json) -> Read<WorkloadSelector> {
    let mut selector = WorkloadSelector::default();
    value.read_struct(
        "struct WorkloadSelector",
        &["matchLabels"],
        UnknownFields::Deny,
        &mut |_, v| {
            selector.match_labels = v.read_string_map()?;
            Ok(())
        },
    )?;
    Ok(selector)
}

fn read_target_ref(value: &Json) -> Read<PolicyTargetReference> {
    let mut target = PolicyTargetReference::default();
    value.read_struct(
        "struct PolicyTargetReference",
        &["group", "kind", "name", "namespace"],
        UnknownFields::Deny,
        &mut |key, v| {
            let field = match key {
                "group" => &mut target.group,
                "kind" => &mut target.kind,
                "name" => &mut target.name,
                _ => &mut target.namespace,
            };
            *field = v.read_string()?;
            Ok(())
        },
    )?;
    Ok(target)
}

fn read_provider(value: &Json) -> Read<ExtensionProvider> {
    let mut provider = ExtensionProvider::default();
    value.read_struct(
        "struct ExtensionProvider",
        &["name"],
        UnknownFields::Deny,
        &mut |_, v| {
            provider.name = v.read_string()?;
            Ok(())
        },
    )?;
    Ok(provider)
}

fn read_rule(value: &Json) -> Read<Rule> {
    let mut rule = Rule::default();
    value.read_struct(
        "struct Rule",
        &["from", "to", "when"],
        UnknownFields::Deny,
        &mut |key, v| {
            match key {
                "from" => rule.from = v.read_list(read_rule_from)?,
                "to" => rule.to = v.read_list(read_rule_to)?,
                _ => rule.when = v.read_list(read_condition)?,
            }
            Ok(())
        },
    )?;
    Ok(rule)
}

fn read_rule_from(value: &Json) -> Read<RuleFrom> {
    let mut from = RuleFrom::default();
    value.read_struct(
        "struct RuleFrom",
        &["source"],
        UnknownFields::Deny,
        &mut |_, v| {
            from.source = optional(v, read_source)?;
            Ok(())
        },
    )?;
    Ok(from)
}

const SOURCE_FIELDS: &[&str] = &[
    "principals",
    "notPrincipals",
    "requestPrincipals",
    "notRequestPrincipals",
    "namespaces",
    "notNamespaces",
    "serviceAccounts",
    "notServiceAccounts",
    "trustDomains",
    "notTrustDomains",
    "ipBlocks",
    "notIpBlocks",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
];

fn read_source(value: &Json) -> Read<Source> {
    let mut s = Source::default();
    value.read_struct(
        "struct Source",
        SOURCE_FIELDS,
        UnknownFields::Deny,
        &mut |key, v| {
            let field = match key {
                "principals" => &mut s.principals,
                "notPrincipals" => &mut s.not_principals,
                "requestPrincipals" => &mut s.request_principals,
                "notRequestPrincipals" => &mut s.not_request_principals,
                "namespaces" => &mut s.namespaces,
                "notNamespaces" => &mut s.not_namespaces,
                "serviceAccounts" => &mut s.service_accounts,
                "notServiceAccounts" => &mut s.not_service_accounts,
                "trustDomains" => &mut s.trust_domains,
                "notTrustDomains" => &mut s.not_trust_domains,
                "ipBlocks" => &mut s.ip_blocks,
                "notIpBlocks" => &mut s.not_ip_blocks,
                "remoteIpBlocks" => &mut s.remote_ip_blocks,
                _ => &mut s.not_remote_ip_blocks,
            };
            *field = v.read_strings()?;
            Ok(())
        },
    )?;
    Ok(s)
}

fn read_rule_to(value: &Json) -> Read<RuleTo> {
    let mut to = RuleTo::default();
    value.read_struct(
        "struct RuleTo",
        &["operation"],
        UnknownFields::Deny,
        &mut |_, v| {
            to.operation = optional(v, read_operation)?;
            Ok(())
        },
    )?;
    Ok(to)
}

fn read_operation(value: &Json) -> Read<Operation> {
    let mut o = Operation::default();
    value.read_struct(
        "struct Operation",
        &[
            "hosts",
            "notHosts",
            "ports",
            "notPorts",
            "methods",
            "notMethods",
            "paths",
            "notPaths",
        ],
        UnknownFields::Deny,
        &mut |key, v| {
            let field = match key {
                "hosts" => &mut o.hosts,
                "notHosts" => &mut o.not_hosts,
                "ports" => &mut o.ports,
                "notPorts" => &mut o.not_ports,
                "methods" => &mut o.methods,
                "notMethods" => &mut o.not_methods,
                "paths" => &mut o.paths,
                _ => &mut o.not_paths,
            };
            *field = v.read_strings()?;
            Ok(())
        },
    )?;
    Ok(o)
}

fn read_condition(value: &Json) -> Read<Condition> {
    let mut c = Condition::default();
    value.read_struct(
        "struct Condition",
        &["key", "values", "notValues"],
        UnknownFields::Deny,
        &mut |key, v| {
            match key {
                "key" => c.key = v.read_string()?,
                "values" => c.values = v.read_strings()?,
                _ => c.not_values = v.read_strings()?,
            }
            Ok(())
        },
    )?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    /// The hand-written readers against the serde derives on `model.rs` they replaced: the
    /// same policy or serde's own message. Known differences (see `json.rs`) are skipped:
    /// a struct read from an array, floats printed as written.
    fn same_as_serde(item: &Value) -> bool {
        let ours = read_policy(&Json::from(item));
        let theirs = AuthorizationPolicy::deserialize(item);
        match (ours, theirs) {
            (Ok(ours), Ok(mut theirs)) => {
                theirs.status = None;
                assert_eq!(ours, theirs, "{item}");
                true
            }
            (Err(ours), _)
                if ours
                    .message
                    .starts_with("invalid type: sequence, expected struct") =>
            {
                false
            }
            (Err(ours), Err(theirs)) => {
                assert_eq!(ours.message, theirs.to_string(), "{item}");
                true
            }
            (ours, theirs) => panic!("{item}: ours {ours:?}, serde {theirs:?}"),
        }
    }

    #[test]
    fn items_read_as_the_serde_derives_did() {
        let items = [
            json!({}),
            json!(null),
            json!({"metadata": null}),
            json!({"metadata": {"name": null}}),
            json!({"metadata": {"name": "a", "annotations": {"x": "1"}, "labels": []}}),
            json!({"apiVersion": null, "kind": 1, "spec": {}}),
            json!({"spec": {"action": null, "rules": null, "selector": null, "provider": null}}),
            json!({"spec": {"action": {"DENY": null}}}),
            json!({"spec": {"action": {"DENY": 1}}}),
            json!({"spec": {"action": {}}}),
            json!({"spec": {"action": ["DENY"]}}),
            json!({"spec": {"action": "deny"}}),
            json!({"spec": {"targetRef": {"kind": "Service", "name": "s"}, "targetRefs": null}}),
            json!({"spec": {"provider": {"name": 1}}}),
            json!({"spec": {"selector": {"matchLabels": {"app": "a"}}}}),
            json!({"spec": {"selector": {"matchLabels": null}}}),
            json!({"spec": {"rules": [{"from": [{"source": null}], "to": [{"operation": {}}]}]}}),
            json!({"spec": {"rules": [{"from": [{"source": {"principals": null}}]}]}}),
            json!({"spec": {"rules": [{"when": [{"key": "k", "values": ["v"], "notValues": []}]}]}}),
            json!({"spec": {"rules": [{"when": [{"key": null}]}]}}),
            json!({"spec": {"rules": [{"to": [{"operation": {"ports": [80], "methods": "GET"}}]}]}}),
            json!({"spec": {"rules": [{"to": [{"operation": {"zz": 1, "hosts": 2}}]}]}}),
            json!({"spec": {"rules": [{"b": 1, "a": 2}]}}),
            json!({"spec": {"rules": [1.5]}}),
            json!({"spec": {"rules": [true]}}),
            json!({"spec": {"rules": [{"from": [{"source": {"principals": [-3]}}]}]}}),
            json!({"spec": {"rules": [{"from": [{"source": {"principals": [null]}}]}]}}),
            json!({"spec": {"rules": [{"from": [{"source": {"ipBlocks": ["1.2.3.4"]}}]}]}}),
            json!({"spec": {"rules": [{"from": [{"source": {"principals": [18_446_744_073_709_551_615u64]}}]}]}}),
        ];
        for item in &items {
            assert!(same_as_serde(item), "{item}");
        }
    }

    /// A struct is never read from an array, which serde's derives allowed (field by field,
    /// in declaration order): Kubernetes and Istio refuse it, and so does the loader now.
    #[test]
    fn a_struct_is_never_read_from_an_array() {
        let item = json!({"spec": {"rules": [[[{"source": {}}]]]}});
        assert!(AuthorizationPolicy::deserialize(&item).is_ok());
        let errors = parse_policies(&item).unwrap_err();
        assert_eq!(errors[0].field, "spec.rules[0]");
        assert_eq!(
            errors[0].problem,
            Problem::Malformed("invalid type: sequence, expected struct Rule".into())
        );
    }

    /// Generated items: every model field name plus unknown ones, every JSON type, nested a
    /// few levels, against the serde derives (a fixed-seed generator, so a failure repeats).
    #[test]
    fn generated_items_read_as_the_serde_derives_did() {
        const KEYS: &[&str] = &[
            "apiVersion",
            "kind",
            "metadata",
            "spec",
            "status",
            "name",
            "namespace",
            "annotations",
            "labels",
            "selector",
            "matchLabels",
            "targetRef",
            "targetRefs",
            "group",
            "action",
            "provider",
            "rules",
            "from",
            "to",
            "when",
            "source",
            "operation",
            "principals",
            "notPrincipals",
            "ipBlocks",
            "remoteIpBlocks",
            "namespaces",
            "hosts",
            "ports",
            "methods",
            "paths",
            "notPaths",
            "key",
            "values",
            "notValues",
            "extra",
        ];
        const STRINGS: &[&str] = &["ALLOW", "DENY", "AUDIT", "CUSTOM", "x", "", "ns"];
        let mut seed: u64 = 0x5eed;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        fn value(next: &mut dyn FnMut(u64) -> u64, depth: u32) -> Value {
            let pick = |next: &mut dyn FnMut(u64) -> u64, items: &[&str]| {
                items[next(items.len() as u64) as usize].to_string()
            };
            match next(if depth == 0 { 5 } else { 8 }) {
                0 => Value::Null,
                1 => Value::Bool(next(2) == 0),
                2 => json!(next(100) as i64 - 50),
                3 | 4 => Value::String(pick(next, STRINGS)),
                5 => Value::Array((0..next(3)).map(|_| value(next, depth - 1)).collect()),
                _ => Value::Object(
                    (0..next(4))
                        .map(|_| (pick(next, KEYS), value(next, depth - 1)))
                        .collect(),
                ),
            }
        }
        let mut compared = 0;
        for _ in 0..20_000 {
            let item = value(&mut next, 5);
            if same_as_serde(&item) {
                compared += 1;
            }
        }
        assert!(compared > 15_000, "{compared}");
    }

    /// The paths `serde_path_to_error` used to give (its `Path` display: `.key`, `[i]`, the
    /// unknown key itself for `deny_unknown_fields`), which users and the loader tests rely on.
    #[test]
    fn malformed_items_name_the_field_serde_stopped_at() {
        let cases = [
            (
                "a label value must be a string (ObjectMeta.labels is map<string,string>)",
                json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": 1}}}),
                "metadata.labels.app",
                "invalid type: integer `1`, expected a string",
            ),
            (
                "an unknown action is named at spec.action (Istio's Action enum)",
                json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"action": "PERMIT"}}),
                "spec.action",
                "unknown variant `PERMIT`, expected one of `ALLOW`, `DENY`, `AUDIT`, `CUSTOM`",
            ),
            (
                "a typo in the selector is the unknown key itself",
                json!({"metadata": {"name": "a", "namespace": "ns"},
                       "spec": {"selector": {"matchLabel": {}}}}),
                "spec.selector.matchLabel",
                "unknown field `matchLabel`, expected `matchLabels`",
            ),
            (
                "a condition value deep in a rule keeps every index",
                json!({"metadata": {"name": "a", "namespace": "ns"},
                       "spec": {"rules": [{}, {"when": [{"key": "request.headers[x]",
                                                        "values": ["a", false]}]}]}}),
                "spec.rules[1].when[0].values[1]",
                "invalid type: boolean `false`, expected a string",
            ),
            (
                "targetRefs items are PolicyTargetReference objects",
                json!({"metadata": {"name": "a", "namespace": "ns"},
                       "spec": {"targetRefs": [{"kind": "Gateway", "nmae": "gw"}]}}),
                "spec.targetRefs[0].nmae",
                "unknown field `nmae`, expected one of `group`, `kind`, `name`, `namespace`",
            ),
        ];
        for (behaviour, item, field, message) in cases {
            let errors = parse_policies(&item).expect_err(behaviour);
            assert_eq!(errors.len(), 1, "{behaviour}: {errors:?}");
            assert_eq!(errors[0].field, field, "{behaviour}");
            assert_eq!(
                errors[0].problem,
                Problem::Malformed(message.into()),
                "{behaviour}"
            );
        }
    }

    /// Object metadata and unknown top-level keys (`status`, server-side fields) stay lenient.
    #[test]
    fn lenient_parts_do_not_fail() {
        let item = json!({"metadata": {"name": "a", "namespace": "ns", "uid": "x"},
                          "status": {"anything": 1.5}, "extra": true});
        assert!(parse_policies(&item).is_ok());
    }
}
