//! `experimental.envoy.filters.<filter>[<key>]` conditions: Envoy dynamic metadata, matched
//! as Istio configures Envoy for them. Each matching row runs as the only rule of an ALLOW
//! and of a DENY policy, so it pins both "allowed by" and "denied by".
//!
//! Sources named in rows:
//! - GEN: istio/istio `pilot/pkg/security/authz/model/generator.go`
//!   (`envoyFilterGenerator.extendedPermission`: one metadata matcher on
//!   `filter_metadata[<filter>]`, path `[<key>]`, an `or_match` of one value matcher per value;
//!   `[v]` is `list_match.one_of` `StringMatcher(v)`, anything else `string_match`)
//! - GEN-TEST: istio/istio `generator_test.go` rows `envoyFilterGenerator-string`, `-list`
//! - MODEL: istio/istio `model.go` (`permission`: values in one matcher, notValues in a
//!   `not_rule` around one matcher; `New`: the condition joins every `to` entry)
//! - ENVOY: envoyproxy/envoy `source/common/common/matchers.cc` (`ValueMatcher`,
//!   `StringMatcher` only matches a string value, `ListMatcher` only a list; a missing path
//!   is an unset value)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod engine_support;

use engine_support::*;
use serde_json::{json, Value};
use spiffe_authz::engine::{MetadataKey, Needs};

const GEN: &str = "istio generator.go envoyFilterGenerator.extendedPermission";
const GEN_TEST: &str = "istio generator_test.go envoyFilterGenerator-string/-list";
const MODEL: &str = "istio model.go rule.permission (values in one matcher, notValues negated)";
const ENVOY: &str = "envoy matchers.cc ValueMatcher (a matcher only matches its own kind)";
const FAIL_CLOSED: &str =
    "spiffe-authz: a value the host could not tell fails closed (istio builder.go checkError: DENY widens, ALLOW narrows)";

const MYSQL: &str = "envoy.filters.network.mysql_proxy";
const KEY: &str = "experimental.envoy.filters.network.mysql_proxy[db.table]";

fn when(values: &[&str]) -> Value {
    json!({"when": [{"key": KEY, "values": values}]})
}

fn when_not(not_values: &[&str]) -> Value {
    json!({"when": [{"key": KEY, "notValues": not_values}]})
}

fn table(v: Meta) -> Req {
    req().metadata(MYSQL, "db.table", v)
}

fn s(v: &str) -> Meta {
    Meta::Str(v.into())
}

fn list(items: &[&str]) -> Meta {
    Meta::List(items.iter().map(|s| s.to_string()).collect())
}

type Row = (&'static str, &'static str, Value, Req, bool);

fn run(rows: Vec<Row>) {
    let mut checks = Vec::new();
    for (name, source, rule, request, matches) in rows {
        let allow = policy("p", json!({"action": "ALLOW", "rules": [rule.clone()]}));
        let deny = policy("p", json!({"action": "DENY", "rules": [rule]}));
        let (want_allow, want_deny) = if matches {
            (
                "allow: allowed by foo/p rule 0",
                "deny: denied by foo/p rule 0",
            )
        } else {
            (
                "deny: no ALLOW policy matched",
                "allow: no ALLOW policy applies",
            )
        };
        checks.push((name, source, vec![allow], request.clone(), want_allow));
        checks.push((name, source, vec![deny], request, want_deny));
    }
    check_rows(checks);
}

#[test]
fn string_values() {
    run(vec![
        (
            "exact value matches the string",
            GEN_TEST,
            when(&["[update]", "users"]),
            table(s("users")),
            true,
        ),
        (
            "exact value: another string does not match",
            GEN,
            when(&["users"]),
            table(s("orders")),
            false,
        ),
        (
            "prefix* matches",
            GEN,
            when(&["user*"]),
            table(s("users")),
            true,
        ),
        (
            "*suffix matches",
            GEN,
            when(&["*ers"]),
            table(s("users")),
            true,
        ),
        (
            "prefix* does not match a shorter string",
            GEN,
            when(&["users-*"]),
            table(s("users")),
            false,
        ),
        (
            "* is the regex .+: any non-empty string",
            GEN,
            when(&["*"]),
            table(s("x")),
            true,
        ),
        (
            "* is the regex .+: the empty string does not match",
            GEN,
            when(&["*"]),
            table(s("")),
            false,
        ),
        (
            "values are case-sensitive",
            GEN,
            when(&["Users"]),
            table(s("users")),
            false,
        ),
        (
            "values are OR'ed into one or_match",
            GEN,
            when(&["orders", "users"]),
            table(s("users")),
            true,
        ),
        (
            "a string matcher does not match a list holding the string",
            ENVOY,
            when(&["users"]),
            table(list(&["users"])),
            false,
        ),
        (
            "a string matcher does not match a number or bool",
            ENVOY,
            when(&["*"]),
            table(Meta::Other),
            false,
        ),
        (
            "an absent key matches no value, not even *",
            ENVOY,
            when(&["*"]),
            table(Meta::Absent),
            false,
        ),
        (
            "another filter's metadata is not read",
            GEN,
            when(&["users"]),
            table(Meta::Absent).metadata("envoy.filters.http.other", "db.table", s("users")),
            false,
        ),
        (
            "another key of the same filter is not read",
            GEN,
            when(&["users"]),
            table(Meta::Absent).metadata(MYSQL, "db", s("users")),
            false,
        ),
    ]);
}

#[test]
fn list_values() {
    run(vec![
        (
            "[v] matches a list with an element v",
            GEN_TEST,
            when(&["[update]"]),
            table(list(&["select", "update"])),
            true,
        ),
        (
            "[v] does not match a list without v",
            GEN,
            when(&["[update]"]),
            table(list(&["select"])),
            false,
        ),
        (
            "[v] does not match the string v",
            ENVOY,
            when(&["[update]"]),
            table(s("update")),
            false,
        ),
        (
            "[v] does not match an empty list",
            ENVOY,
            when(&["[update]"]),
            table(list(&[])),
            false,
        ),
        (
            "[prefix*] matches an element by prefix",
            GEN,
            when(&["[up*]"]),
            table(list(&["update"])),
            true,
        ),
        (
            "[*] matches a list with a non-empty element",
            GEN,
            when(&["[*]"]),
            table(list(&["", "x"])),
            true,
        ),
        (
            "[*] does not match a list of empty strings",
            GEN,
            when(&["[*]"]),
            table(list(&[""])),
            false,
        ),
        (
            "[v1, v2] is one string 'v1, v2', not two elements",
            GEN_TEST,
            when(&["[v1, v2]"]),
            table(list(&["v1", "v2"])),
            false,
        ),
        (
            "[v1, v2] matches the element 'v1, v2'",
            GEN_TEST,
            when(&["[v1, v2]"]),
            table(list(&["v1, v2"])),
            true,
        ),
        (
            "strings.Trim strips every outer bracket: [[v]] is [v]",
            GEN,
            when(&["[[v]]"]),
            table(list(&["v"])),
            true,
        ),
        (
            "a list matcher does not match a number or bool",
            ENVOY,
            when(&["[*]"]),
            table(Meta::Other),
            false,
        ),
        (
            "a list matcher does not match an absent key",
            ENVOY,
            when(&["[*]"]),
            table(Meta::Absent),
            false,
        ),
        (
            "string and list values mix in one or_match",
            GEN,
            when(&["x", "[update]"]),
            table(list(&["update"])),
            true,
        ),
    ]);
}

#[test]
fn not_values() {
    run(vec![
        (
            "notValues: a matching string excludes",
            MODEL,
            when_not(&["users"]),
            table(s("users")),
            false,
        ),
        (
            "notValues: another string passes",
            MODEL,
            when_not(&["users"]),
            table(s("orders")),
            true,
        ),
        (
            "notValues: an absent key passes (the negated matcher did not match)",
            ENVOY,
            when_not(&["*"]),
            table(Meta::Absent),
            true,
        ),
        (
            "notValues: a number passes a string notValue",
            ENVOY,
            when_not(&["users"]),
            table(Meta::Other),
            true,
        ),
        (
            "notValues: [v] excludes a list holding v",
            MODEL,
            when_not(&["[update]"]),
            table(list(&["update"])),
            false,
        ),
        (
            "values and notValues AND'ed",
            MODEL,
            json!({"when": [{"key": KEY, "values": ["user*"], "notValues": ["users-admin"]}]}),
            table(s("users-admin")),
            false,
        ),
    ]);
}

#[test]
fn tcp_reads_metadata_too() {
    // Istio's generator ignores forTCP for this key: the network RBAC filter gets it too.
    run(vec![(
        "experimental.envoy.filters applies to TCP connections",
        GEN,
        when(&["users"]),
        table(s("users")).tcp(),
        true,
    )]);
}

#[test]
fn key_is_one_metadata_key() {
    // GEN: the key is everything between the first `[` and the final `]`.
    run(vec![
        (
            "a dotted key is one key, not a path",
            GEN_TEST,
            json!({"when": [{"key": "experimental.envoy.filters.a.b.c[d.e]", "values": ["v"]}]}),
            req().metadata("envoy.filters.a.b.c", "d.e", s("v")),
            true,
        ),
        (
            "inner brackets stay in the key: a[b][c] reads the key b][c",
            GEN,
            json!({"when": [{"key": "experimental.envoy.filters.a[b][c]", "values": ["v"]}]}),
            req().metadata("envoy.filters.a", "b][c", s("v")),
            true,
        ),
    ]);
}

#[test]
fn unknown_metadata_fails_closed() {
    // The host did not tell the value (a `metadata` read failed): values and notValues alike
    // match in DENY and do not match in ALLOW, as for an unknown address.
    let rows = [
        ("values, value unknown", when(&["users"])),
        ("notValues, value unknown", when_not(&["users"])),
    ];
    let mut checks = Vec::new();
    for (name, rule) in rows {
        let allow = policy("p", json!({"action": "ALLOW", "rules": [rule.clone()]}));
        let deny = policy("p", json!({"action": "DENY", "rules": [rule.clone()]}));
        let audit = policy("p", json!({"action": "AUDIT", "rules": [rule]}));
        checks.push((
            name,
            FAIL_CLOSED,
            vec![allow],
            req(),
            "deny: no ALLOW policy matched",
        ));
        checks.push((
            name,
            FAIL_CLOSED,
            vec![deny],
            req(),
            "deny: denied by foo/p rule 0",
        ));
        checks.push((
            name,
            FAIL_CLOSED,
            vec![audit],
            req(),
            "allow: no ALLOW policy applies; audit: foo/p rule 0",
        ));
    }
    check_rows(checks);
}

#[test]
fn needs_name_each_metadata_value_once() {
    let (engine, _) = compile(&[
        policy("a", json!({"rules": [when(&["x"]), when_not(&["y"])]})),
        policy(
            "b",
            json!({"action": "DENY", "rules": [{"when": [
                {"key": "experimental.envoy.filters.http.lua[role]", "values": ["admin"]},
                {"key": KEY, "values": ["[update]"]},
            ]}]}),
        ),
    ]);
    assert_eq!(
        engine.needs(),
        Needs {
            filter_metadata: vec![
                MetadataKey {
                    filter: "envoy.filters.http.lua".into(),
                    key: "role".into()
                },
                MetadataKey {
                    filter: MYSQL.into(),
                    key: "db.table".into()
                },
            ],
            ..Needs::default()
        }
    );
}
