//! Loading pasted `kubectl get authorizationpolicy -o json|yaml` output.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{Problem, ValidationError};
use super::model::AuthorizationPolicy;
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
        match serde_path_to_error::deserialize::<_, AuthorizationPolicy>(item) {
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
                let path = e.path().to_string();
                let field = if path == "." { String::new() } else { path };
                errors.push(ValidationError::new(
                    raw_label,
                    field,
                    Problem::Malformed(e.into_inner().to_string()),
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
