//! Loading pasted `kubectl get authorizationpolicy -o json|yaml` output.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::error::{Problem, ValidationError};
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
    let (items, is_list) = match value {
        Value::Array(items) => (items.as_slice(), true),
        Value::Object(map) if is_list_object(map) => match map.get("items") {
            Some(Value::Array(items)) => (items.as_slice(), true),
            None | Some(Value::Null) => (&[][..], true),
            Some(_) => {
                return Err(vec![ValidationError::new(
                    "<list>",
                    "items",
                    Problem::Malformed("must be an array of AuthorizationPolicy objects".into()),
                )])
            }
        },
        Value::Object(_) => (std::slice::from_ref(value), false),
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

    let mut policies = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let item_index = is_list.then_some(i);
        let raw_label = raw_label(item, item_index);
        let errors_before = errors.len();
        empty_from_or_to(item, &raw_label, &mut errors);
        match AuthorizationPolicy::deserialize(item) {
            Ok(policy) => {
                let label = policy_label(&policy, item_index);
                errors.extend(validate_labelled(&policy, &label));
                if !policy.metadata.name.is_empty() {
                    let position =
                        item_index.map_or_else(|| "the config".into(), |i| format!("items[{i}]"));
                    if let Some(first) = seen.insert(policy.key(), position) {
                        errors.push(ValidationError::new(
                            label,
                            "metadata.name",
                            Problem::Duplicate(first),
                        ));
                    }
                }
                if errors.len() == errors_before {
                    policies.push(policy);
                }
            }
            Err(e) => {
                let mut field = String::new();
                let e = locate(&POLICY, item, &mut field, e);
                errors.push(ValidationError::new(
                    raw_label,
                    field,
                    Problem::Malformed(e.to_string()),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(policies)
    } else {
        Err(errors)
    }
}

fn is_list_object(map: &serde_json::Map<String, Value>) -> bool {
    match map.get("kind").and_then(Value::as_str) {
        Some(kind) => kind == "List" || kind == "AuthorizationPolicyList",
        // `items` is no AuthorizationPolicy field: an object with it is a list without kind.
        None => map.contains_key("items"),
    }
}

/// Names an item before it has parsed, from whatever metadata it carries.
fn raw_label(item: &Value, item_index: Option<usize>) -> String {
    let meta = |field: &str| {
        item.get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    label(meta("namespace"), meta("name"), item_index)
}

/// Istio's "`from` must not be empty" / "`to` must not be empty" (validation_test.go
/// "from-empty", "to-empty"). The serde model cannot tell `from: []` from an absent `from`
/// (which means "any source"), so the raw JSON is checked.
fn empty_from_or_to(item: &Value, label: &str, errors: &mut Vec<ValidationError>) {
    let Some(rules) = item.pointer("/spec/rules").and_then(Value::as_array) else {
        return;
    };
    for (i, rule) in rules.iter().enumerate() {
        for name in ["from", "to"] {
            if rule
                .get(name)
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                errors.push(ValidationError::new(
                    label,
                    format!("spec.rules[{i}].{name}"),
                    Problem::EmptyList,
                ));
            }
        }
    }
}

/// Where in the API a JSON value sits: how to deserialize it and what is below it.
///
/// serde reports what went wrong but not where. Rather than wrap every deserializer to track
/// the path (a crate that did so cost ~35 KB of the `.wasm`), a failed item is walked again
/// along this schema: the first child that fails on its own holds the error, so the path is
/// the one serde would have followed. The schema must mirror `model.rs` field for field; the
/// loader tests pin the paths.
struct Node {
    accepts: fn(&Value) -> Result<(), serde_json::Error>,
    shape: Shape,
}

enum Shape {
    Leaf,
    /// `strict`: `deny_unknown_fields`, so an unknown key is itself the error.
    Struct {
        fields: &'static [(&'static str, Node)],
        strict: bool,
    },
    Seq(&'static Node),
    Map(&'static Node),
}

fn accepts<T: DeserializeOwned>(value: &Value) -> Result<(), serde_json::Error> {
    T::deserialize(value).map(drop)
}

const fn leaf<T>() -> Node
where
    T: DeserializeOwned,
{
    Node {
        accepts: accepts::<T>,
        shape: Shape::Leaf,
    }
}

const STRING: Node = leaf::<String>();
const STRINGS: Node = Node {
    accepts: accepts::<Vec<String>>,
    shape: Shape::Seq(&STRING),
};
const STRING_MAP: Node = Node {
    accepts: accepts::<BTreeMap<String, String>>,
    shape: Shape::Map(&STRING),
};

const fn strict<T>(fields: &'static [(&'static str, Node)]) -> Node
where
    T: DeserializeOwned,
{
    Node {
        accepts: accepts::<T>,
        shape: Shape::Struct {
            fields,
            strict: true,
        },
    }
}

const fn list<T>(item: &'static Node) -> Node
where
    T: DeserializeOwned,
{
    Node {
        accepts: accepts::<Vec<T>>,
        shape: Shape::Seq(item),
    }
}

const SOURCE: Node = strict::<Option<Source>>(&[
    ("principals", STRINGS),
    ("notPrincipals", STRINGS),
    ("requestPrincipals", STRINGS),
    ("notRequestPrincipals", STRINGS),
    ("namespaces", STRINGS),
    ("notNamespaces", STRINGS),
    ("serviceAccounts", STRINGS),
    ("notServiceAccounts", STRINGS),
    ("trustDomains", STRINGS),
    ("notTrustDomains", STRINGS),
    ("ipBlocks", STRINGS),
    ("notIpBlocks", STRINGS),
    ("remoteIpBlocks", STRINGS),
    ("notRemoteIpBlocks", STRINGS),
]);
const OPERATION: Node = strict::<Option<Operation>>(&[
    ("hosts", STRINGS),
    ("notHosts", STRINGS),
    ("ports", STRINGS),
    ("notPorts", STRINGS),
    ("methods", STRINGS),
    ("notMethods", STRINGS),
    ("paths", STRINGS),
    ("notPaths", STRINGS),
]);
const RULE_FROM: Node = strict::<RuleFrom>(&[("source", SOURCE)]);
const RULE_TO: Node = strict::<RuleTo>(&[("operation", OPERATION)]);
const CONDITION: Node =
    strict::<Condition>(&[("key", STRING), ("values", STRINGS), ("notValues", STRINGS)]);
const RULE: Node = strict::<Rule>(&[
    ("from", list::<RuleFrom>(&RULE_FROM)),
    ("to", list::<RuleTo>(&RULE_TO)),
    ("when", list::<Condition>(&CONDITION)),
]);
const TARGET_REF_FIELDS: &[(&str, Node)] = &[
    ("group", STRING),
    ("kind", STRING),
    ("name", STRING),
    ("namespace", STRING),
];
const SPEC: Node = strict::<AuthorizationPolicySpec>(&[
    (
        "selector",
        strict::<Option<WorkloadSelector>>(&[("matchLabels", STRING_MAP)]),
    ),
    (
        "targetRef",
        strict::<Option<PolicyTargetReference>>(TARGET_REF_FIELDS),
    ),
    (
        "targetRefs",
        list::<PolicyTargetReference>(&strict::<PolicyTargetReference>(TARGET_REF_FIELDS)),
    ),
    ("action", leaf::<Option<Action>>()),
    (
        "provider",
        strict::<Option<ExtensionProvider>>(&[("name", STRING)]),
    ),
    ("rules", list::<Rule>(&RULE)),
]);
static POLICY: Node = Node {
    accepts: accepts::<AuthorizationPolicy>,
    shape: Shape::Struct {
        fields: &[
            ("apiVersion", leaf::<Option<String>>()),
            ("kind", leaf::<Option<String>>()),
            (
                "metadata",
                Node {
                    accepts: accepts::<ObjectMeta>,
                    shape: Shape::Struct {
                        fields: &[
                            ("name", STRING),
                            ("namespace", STRING),
                            ("annotations", STRING_MAP),
                            ("labels", STRING_MAP),
                        ],
                        strict: false,
                    },
                },
            ),
            ("spec", SPEC),
        ],
        // Object metadata and `status` are lenient (see `model.rs`).
        strict: false,
    },
};

/// Follows `value`, which failed to deserialize as `node` with `error`, down to the deepest
/// part that fails on its own; appends that part's path (`spec.rules[0].to`) to `path` and
/// returns its error.
fn locate(
    node: &Node,
    value: &Value,
    path: &mut String,
    error: serde_json::Error,
) -> serde_json::Error {
    // serde visits a map's keys in the map's own order and stops at the first error, so the
    // first failing key here is the one serde reported.
    match (&node.shape, value) {
        (Shape::Struct { fields, strict }, Value::Object(map)) => {
            for (key, child_value) in map {
                match fields.iter().find(|(name, _)| name == key) {
                    Some((_, child)) => {
                        if let Err(e) = (child.accepts)(child_value) {
                            push_key(path, key);
                            return locate(child, child_value, path, e);
                        }
                    }
                    None if *strict => {
                        push_key(path, key);
                        return error;
                    }
                    None => {}
                }
            }
            error
        }
        (Shape::Map(child), Value::Object(map)) => {
            for (key, child_value) in map {
                if let Err(e) = (child.accepts)(child_value) {
                    push_key(path, key);
                    return locate(child, child_value, path, e);
                }
            }
            error
        }
        (Shape::Seq(child), Value::Array(items)) => {
            for (i, child_value) in items.iter().enumerate() {
                if let Err(e) = (child.accepts)(child_value) {
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                    return locate(child, child_value, path, e);
                }
            }
            error
        }
        _ => error,
    }
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
