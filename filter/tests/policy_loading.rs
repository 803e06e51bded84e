//! `parse_policies`: what users paste from `kubectl get authorizationpolicy -o json|yaml`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use spiffe_authz::policy::{parse_policies, Problem};

fn ap(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

fn keys(input: &Value) -> Vec<String> {
    parse_policies(input)
        .unwrap_or_else(|e| panic!("{e:#?}"))
        .iter()
        .map(|p| p.key())
        .collect()
}

fn errors(input: &Value) -> Vec<String> {
    parse_policies(input)
        .expect_err("should be rejected")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn accepted_shapes() {
    let a = ap("ns", "a", json!({}));
    let b = ap("ns", "b", json!({"action": "DENY", "rules": [{}]}));
    let rows: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "one object (kubectl get ap NAME -o json)",
            a.clone(),
            vec!["ns/a"],
        ),
        ("a JSON array", json!([a, b]), vec!["ns/a", "ns/b"]),
        (
            "kind: List (kubectl get ap -o json)",
            json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [a, b]}),
            vec!["ns/a", "ns/b"],
        ),
        (
            "kind: AuthorizationPolicyList",
            json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicyList", "items": [b]}),
            vec!["ns/b"],
        ),
        ("items without kind", json!({"items": [a]}), vec!["ns/a"]),
        ("an empty array", json!([]), vec![]),
        ("a List without items", json!({"kind": "List"}), vec![]),
        (
            "a List with items: null",
            json!({"kind": "List", "items": null}),
            vec![],
        ),
        (
            "server-side metadata and status are ignored",
            json!({
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {
                    "name": "a", "namespace": "ns", "uid": "1234", "resourceVersion": "99",
                    "generation": 2, "creationTimestamp": "2024-01-01T00:00:00Z",
                    "managedFields": [{"manager": "kubectl"}],
                    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                },
                "spec": {},
                "status": {"validationMessages": [{"type": {"code": "IST0102"}}]},
            }),
            vec!["ns/a"],
        ),
    ];
    for (pins, input, expected) in rows {
        assert_eq!(keys(&input), expected, "{pins}");
    }
}

#[test]
fn rejected_input_names_item_field_and_value() {
    let rows: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "unknown field in the spec (deny_unknown_fields): a typo never silently drops a rule",
            ap("ns", "a", json!({"rules": [{"from": [{"source": {"principal": ["x"]}}]}]})),
            vec!["ns/a: spec.rules[0].from[0].source.principal: unknown field `principal`, expected one of `principals`, `notPrincipals`, `requestPrincipals`, `notRequestPrincipals`, `namespaces`, `notNamespaces`, `serviceAccounts`, `notServiceAccounts`, `trustDomains`, `notTrustDomains`, `ipBlocks`, `notIpBlocks`, `remoteIpBlocks`, `notRemoteIpBlocks`"],
        ),
        (
            "wrong type: a port as a number",
            ap("ns", "a", json!({"rules": [{"to": [{"operation": {"ports": [80]}}]}]})),
            vec!["ns/a: spec.rules[0].to[0].operation.ports[0]: invalid type: integer `80`, expected a string"],
        ),
        (
            "unknown action",
            ap("ns", "a", json!({"action": "REJECT"})),
            vec!["ns/a: spec.action: unknown variant `REJECT`, expected one of `ALLOW`, `DENY`, `AUDIT`, `CUSTOM`"],
        ),
        (
            "items[N] names an item without a name",
            json!([ap("ns", "a", json!({})), {"kind": "AuthorizationPolicy", "metadata": {"namespace": "ns"}}]),
            vec!["items[1]: metadata.name: is required"],
        ),
        (
            "items[N] names an unparsable item without a name",
            json!({"kind": "List", "items": [ap("ns", "a", json!({})), {"spec": {"rules": "all"}}]}),
            vec!["items[1]: spec.rules: invalid type: string \"all\", expected a sequence"],
        ),
        (
            "a non-object item",
            json!(["not a policy"]),
            vec!["items[0]: invalid type: string \"not a policy\", expected struct AuthorizationPolicy"],
        ),
        (
            "errors of every item are collected",
            json!([
                ap("ns", "a", json!({"action": "DENY"})),
                ap("ns", "b", json!({"rules": [{"to": [{"operation": {"paths": ["/x{y"]}}]}]})),
                ap("ns", "c", json!({})),
            ]),
            vec![
                "ns/a: spec.rules: DENY action without rules is meaningless as it will never be triggered; add an empty rule {} to match every request",
                "ns/b: spec.rules[0].to[0].operation.paths[0]: \"/x{y\": invalid or unsupported path template: '{' or '}' outside a {*} or {**} template",
            ],
        ),
        (
            "the same namespace/name twice",
            json!([ap("ns", "a", json!({})), ap("other", "a", json!({})), ap("ns", "a", json!({"rules": [{}]}))]),
            vec!["ns/a: metadata.name: duplicate policy (also items[0])"],
        ),
        (
            "from: [] and to: [] pass the loader (proto JSON decoding leaves them nil), a bad value beside them does not",
            ap("ns", "a", json!({"rules": [{"from": [], "to": []}, {"to": [{"operation": {"ports": ["x"]}}]}]})),
            vec![
                "ns/a: spec.rules[1].to[0].operation.ports[0]: \"x\": bad port: must be a decimal number in [0, 65535]",
            ],
        ),
        (
            "a scalar is no policy",
            json!("ALLOW"),
            vec!["<config>: expected an AuthorizationPolicy object, an array of them, or a List with items"],
        ),
        (
            "null is no policy",
            Value::Null,
            vec!["<config>: expected an AuthorizationPolicy object, an array of them, or a List with items"],
        ),
        (
            "List items must be an array",
            json!({"kind": "List", "items": {"a": 1}}),
            vec!["<list>: items: must be an array of AuthorizationPolicy objects"],
        ),
    ];
    for (pins, input, expected) in rows {
        assert_eq!(errors(&input), expected, "{pins}");
    }
}

#[test]
fn serde_errors_are_malformed_problems() {
    let errors = parse_policies(&ap(
        "ns",
        "a",
        json!({"selector": {"matchLabels": {"a": 1}}}),
    ))
    .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].policy, "ns/a");
    assert_eq!(errors[0].field, "spec.selector.matchLabels.a");
    assert!(matches!(errors[0].problem, Problem::Malformed(_)));
}

/// Seeded mutation of a full policy: whatever the input, loading never panics, accepted
/// policies also pass `validate`, and every error is one line naming its policy.
#[test]
fn mutated_policies_never_panic() {
    let base = json!([
        ap(
            "ns",
            "a",
            json!({
                "selector": {"matchLabels": {"app": "x"}},
                "action": "DENY",
                "rules": [{
                    "from": [{"source": {"principals": ["td/ns/a/sa/b"], "ipBlocks": ["10.0.0.0/8"], "serviceAccounts": ["a/b"]}}],
                    "to": [{"operation": {"paths": ["/a/{*}"], "ports": ["80"], "hosts": ["*.x"]}}],
                    "when": [{"key": "request.headers[x]", "values": ["v"]}, {"key": "destination.port", "notValues": ["1"]}],
                }],
            })
        ),
        ap(
            "ns",
            "b",
            json!({"targetRefs": [{"kind": "Service", "name": "s"}]})
        )
    ]);
    let replacements = [
        json!(""),
        json!("*"),
        json!("a*b"),
        json!(0),
        json!(null),
        json!([]),
        json!({}),
        json!(true),
        json!("spiffe://x"),
        json!("/{**}/{*}"),
        json!("10.0.0.0/33"),
        json!("x".repeat(400)),
        json!([""]),
        json!(["*"]),
        json!({"source": {}}),
        json!("\n"),
        json!("CUSTOM"),
        json!("request.auth.claims[a][b]"),
        json!(["%00"]),
        json!(-1),
    ];
    let mut state: u64 = 0x0dd_ba11_5eed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut input = base.clone();
        for _ in 0..(1 + next() % 3) {
            // Walk to a random node and replace it.
            let mut node = &mut input;
            loop {
                let children = match node {
                    Value::Array(a) if !a.is_empty() => a.len(),
                    Value::Object(o) if !o.is_empty() => o.len(),
                    _ => 0,
                };
                if children == 0 || next() % 4 == 0 {
                    break;
                }
                let pick = (next() % children as u64) as usize;
                node = match node {
                    Value::Array(a) => &mut a[pick],
                    Value::Object(o) => o.values_mut().nth(pick).unwrap(),
                    _ => unreachable!(),
                };
            }
            *node = replacements[(next() % replacements.len() as u64) as usize].clone();
        }
        match parse_policies(&input) {
            Ok(policies) => {
                for p in &policies {
                    assert_eq!(spiffe_authz::policy::validate(p), Ok(()), "{input}");
                }
            }
            Err(errors) => {
                assert!(!errors.is_empty());
                for e in errors {
                    let line = e.to_string();
                    assert!(!line.contains('\n'), "{line}");
                    assert!(!e.policy.is_empty(), "{line}");
                    if !e.policy.contains(char::is_control) {
                        assert!(line.starts_with(&e.policy), "{line}");
                    }
                }
            }
        }
    }
}
