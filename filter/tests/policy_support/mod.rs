//! Shared helpers for the validation tests: policies `ns/p` built from a spec, the field
//! prefixes their messages start with, and a row checker that reports every failing row.
#![allow(dead_code)]

use serde_json::{json, Value};
use spiffe_authz::policy::parse_policies;

/// `ns/p` with the given spec, as `kubectl get -o json` prints it.
pub fn policy(spec: Value) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": spec,
    })
}

pub fn with_dry_run(mut p: Value, value: &str) -> Value {
    p["metadata"]["annotations"] = json!({"istio.io/dry-run": value});
    p
}

pub fn set(mut p: Value, field: &str, value: Value) -> Value {
    p[field] = value;
    p
}

pub fn from(source: Value) -> Value {
    json!({"rules": [{"from": [{"source": source}]}]})
}

pub fn to(operation: Value) -> Value {
    json!({"rules": [{"to": [{"operation": operation}]}]})
}

pub fn when(key: &str, values: Value) -> Value {
    json!({"rules": [{"when": [{"key": key, "values": values}]}]})
}

pub fn not_when(key: &str, not_values: Value) -> Value {
    json!({"rules": [{"when": [{"key": key, "notValues": not_values}]}]})
}

pub const SRC: &str = "ns/p: spec.rules[0].from[0].source";
pub const OP: &str = "ns/p: spec.rules[0].to[0].operation";
pub const WHEN: &str = "ns/p: spec.rules[0].when[0]";

/// Every error line `parse_policies` gives (what users see); empty when the policy is valid.
pub fn errors_of(input: &Value) -> Vec<String> {
    match parse_policies(input) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// Rows of (what is pinned and where Istio decides it, input, expected lines), each checked
/// with `lines`; every failing row is reported, not only the first.
pub fn check_with(rows: Vec<(&str, Value, Vec<String>)>, lines: impl Fn(&Value) -> Vec<String>) {
    let mut failures = Vec::new();
    for (pins, input, expected) in &rows {
        let got = lines(input);
        if &got != expected {
            failures.push(format!("{pins}:\n  got:  {got:#?}\n  want: {expected:#?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// [`check_with`] on the error lines.
pub fn check(rows: Vec<(&str, Value, Vec<String>)>) {
    check_with(rows, errors_of)
}

/// `rows![(pins, input, [line, ...]), ...]` for [`check`] / [`check_with`].
macro_rules! rows {
    ($(($pins:expr, $input:expr, [$($line:expr),* $(,)?])),* $(,)?) => {
        vec![$(($pins, $input, vec![$($line.to_string()),*])),*]
    };
}
