//! `experimental.envoy.filters.*` through the glue: the `metadata` attribute read whole (a
//! binary `envoy.config.core.v3.Metadata`, Envoy `Context::serializeValue` for a message),
//! decoded into typed values, and a value the host cannot give failing closed by action.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use spiffe_authz::glue::facts::{encode_metadata, metadata_value, StructValue};
use spiffe_authz::glue::fake::FakeHost;
use spiffe_authz::glue::plugin::COUNTER_DENIED;
use spiffe_authz::glue::{Action, HostStatus, Root};

const MYSQL: &str = "envoy.filters.network.mysql_proxy";

fn metadata(json: Value) -> Vec<u8> {
    encode_metadata(json.as_object().unwrap())
}

#[test]
fn metadata_values_keep_their_kind() {
    // google/protobuf/struct.proto: Value is one of null, number, string, bool, struct, list.
    let bytes = metadata(json!({
        MYSQL: {
            "string": "users",
            "eight": "12345678",
            "empty": "",
            "number": 12.5,
            "bool": true,
            "null": null,
            "struct": {"a": "b"},
            "list": ["select", 1, "update", {"x": "y"}, ["nested"]],
        },
        "envoy.filters.http.other": {"string": "other"},
    }));
    let rows: Vec<(&str, &str, StructValue<'_>)> = vec![
        ("string", "a string value", StructValue::String("users")),
        // A path read would return these 8 bytes exactly like a double's.
        (
            "eight",
            "an 8-byte string stays a string",
            StructValue::String("12345678"),
        ),
        (
            "empty",
            "the empty string is a string",
            StructValue::String(""),
        ),
        ("number", "a number is not a string", StructValue::Other),
        ("bool", "a bool is not a string", StructValue::Other),
        ("null", "null is not a string", StructValue::Other),
        ("struct", "a struct is not a string", StructValue::Other),
        (
            "list",
            "a list keeps its string elements only",
            StructValue::List(vec!["select", "update"]),
        ),
        (
            "missing",
            "a key the filter did not write",
            StructValue::Absent,
        ),
    ];
    for (key, what, want) in rows {
        assert_eq!(metadata_value(&bytes, MYSQL, key), Some(want), "{what}");
    }
    assert_eq!(
        metadata_value(&bytes, "envoy.filters.http.nobody", "string"),
        Some(StructValue::Absent),
        "a filter that wrote nothing"
    );
    assert_eq!(
        metadata_value(&[], MYSQL, "string"),
        Some(StructValue::Absent),
        "no dynamic metadata at all (an empty message)"
    );
}

#[test]
fn metadata_decoding_follows_protobuf_rules() {
    // protobuf encoding spec: a repeated map key keeps the last entry; unknown fields are
    // skipped (Metadata.typed_filter_metadata = 2 is not read).
    let mut twice = metadata(json!({MYSQL: {"k": "first"}}));
    twice.extend(metadata(json!({MYSQL: {"k": "last"}})));
    assert_eq!(
        metadata_value(&twice, MYSQL, "k"),
        Some(StructValue::String("last"))
    );
    let mut with_unknown = vec![0x12, 0x02, 0x0a, 0x00]; // field 2, 2 bytes: an empty entry
    with_unknown.extend(metadata(json!({MYSQL: {"k": "v"}})));
    assert_eq!(
        metadata_value(&with_unknown, MYSQL, "k"),
        Some(StructValue::String("v"))
    );
}

#[test]
fn malformed_metadata_is_unknown() {
    let good = metadata(json!({MYSQL: {"k": "v"}}));
    let rows: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() - 1].to_vec()),
        ("a length past the end", vec![0x0a, 0x7f, 0x00]),
        ("field number 0", vec![0x00, 0x00]),
        ("a group wire type", vec![0x0b]),
        (
            "filter_metadata as a varint",
            [vec![0x08, 0x01], good.clone()].concat(),
        ),
        (
            "a varint longer than 10 bytes",
            vec![0x08; 1].into_iter().chain([0xff; 11]).collect(),
        ),
        ("a string value that is not UTF-8", {
            // Metadata{1: {1: MYSQL, 2: Struct{1: {1: "k", 2: Value{3: 0xff}}}}}
            let value = [0x1a, 0x01, 0xff];
            let field = [&[0x0a, 0x01, b'k', 0x12, value.len() as u8][..], &value].concat();
            let structure = [&[0x0a, field.len() as u8][..], &field].concat();
            let entry = [
                &[0x0a, MYSQL.len() as u8][..],
                MYSQL.as_bytes(),
                &[0x12, structure.len() as u8],
                &structure,
            ]
            .concat();
            [&[0x0a, entry.len() as u8][..], &entry].concat()
        }),
    ];
    for (what, bytes) in rows {
        assert_eq!(metadata_value(&bytes, MYSQL, "k"), None, "{what}");
    }
}

#[test]
fn no_bytes_make_the_decoder_panic() {
    // The message comes from the host: every truncation and every single-byte change of a
    // real one, and seeded random bytes, give an answer (a value or "unknown"), never a panic.
    let good = metadata(json!({MYSQL: {"k": "v", "l": ["a", 1.5, true, null, {"x": []}]}}));
    let mut inputs: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
    for at in 0..good.len() {
        for byte in [0x00, 0x01, 0x07, 0x0a, 0x12, 0x7f, 0x80, 0xff] {
            let mut changed = good.clone();
            changed[at] = byte;
            inputs.push(changed);
        }
    }
    let mut state = 0x5eed_u64;
    for _ in 0..2000 {
        let len = (state % 40) as usize;
        let bytes = (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        inputs.push(bytes);
    }
    for bytes in &inputs {
        for key in ["k", "l", "missing"] {
            let _ = metadata_value(bytes, MYSQL, key);
        }
    }
    assert_eq!(
        metadata_value(&good, MYSQL, "l"),
        Some(StructValue::List(vec!["a"]))
    );
    // Lists nested 100,000 deep inside the list: skipped, not recursed into. Built back to
    // front (each level's tag and length go before its body) to stay linear.
    let mut reversed = vec![b'x', 0x01, 0x1a]; // Value{string_value: "x"}, reversed
    for _ in 0..100_000 {
        for tag in [0x0a, 0x32] {
            // ListValue.values, then Value.list_value
            let mut len = Vec::new();
            put_len(&mut len, reversed.len());
            reversed.extend(len.iter().rev());
            reversed.push(tag);
        }
    }
    reversed.reverse();
    let nested = nest_into_list(&reversed);
    assert_eq!(
        metadata_value(&nested, MYSQL, "d"),
        Some(StructValue::List(vec!["top"]))
    );
}

fn put_len(out: &mut Vec<u8>, mut len: usize) {
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
}

/// Metadata{MYSQL: {"d": ["top", <value>]}}, built by hand around an encoded Value.
fn nest_into_list(value: &[u8]) -> Vec<u8> {
    let wrap = |field: u8, body: &[u8]| {
        let mut out = vec![field];
        put_len(&mut out, body.len());
        out.extend(body);
        out
    };
    let top = wrap(0x1a, b"top");
    let list = [wrap(0x0a, &top), wrap(0x0a, value)].concat();
    let list_value = wrap(0x32, &list);
    let field = [wrap(0x0a, b"d"), wrap(0x12, &list_value)].concat();
    let structure = wrap(0x0a, &field);
    let entry = [wrap(0x0a, MYSQL.as_bytes()), wrap(0x12, &structure)].concat();
    wrap(0x0a, &entry)
}

fn config(action: &str, values: &str) -> String {
    format!(
        r#"{{"workload": {{"namespace": "demo"}}, "policies": [
          {{"metadata": {{"name": "p", "namespace": "demo"}},
            "spec": {{"action": "{action}", "rules": [{{"when": [
              {{"key": "experimental.envoy.filters.network.mysql_proxy[db.table]", "values": {values}}}
            ]}}]}}}}]}}"#
    )
}

enum Metadata {
    Bytes(Vec<u8>),
    None,
    Fails(HostStatus),
}

fn http(config: &str, md: Metadata) -> (FakeHost, Action) {
    let host = FakeHost::new();
    host.set_configuration(config);
    let mut root = Root::new();
    assert!(root.on_configure(&host), "{:?}", host.logs.borrow());
    host.take_calls();
    host.set_property("connection.mtls", vec![0]);
    host.set_request_headers(&[(":authority", "db"), (":path", "/"), (":method", "GET")]);
    match md {
        Metadata::Bytes(b) => {
            host.set_property("metadata", b);
        }
        Metadata::None => {}
        Metadata::Fails(status) => {
            host.fail_property("metadata", status);
        }
    }
    let action = root.new_http_stream().on_request_headers(&host);
    (host, action)
}

#[test]
fn http_decisions_on_dynamic_metadata() {
    let users = || Metadata::Bytes(metadata(json!({MYSQL: {"db.table": "users"}})));
    let list = || Metadata::Bytes(metadata(json!({MYSQL: {"db.table": ["select", "update"]}})));
    let failing = || Metadata::Fails(HostStatus::SerializationFailure);
    // (what, source, config, metadata, allowed)
    let rows = [
        (
            "ALLOW on the string written",
            "istio generator.go string_match",
            config("ALLOW", r#"["users"]"#),
            users(),
            true,
        ),
        (
            "ALLOW on another string",
            "istio generator.go string_match",
            config("ALLOW", r#"["orders"]"#),
            users(),
            false,
        ),
        (
            "ALLOW [v] on a list holding v",
            "istio generator.go list_match.one_of",
            config("ALLOW", r#"["[update]"]"#),
            list(),
            true,
        ),
        (
            "ALLOW on metadata nobody wrote",
            "envoy matchers.cc: an unset value matches no string",
            config("ALLOW", r#"["*"]"#),
            Metadata::None,
            false,
        ),
        (
            "DENY on metadata nobody wrote",
            "envoy matchers.cc: an unset value matches no string",
            config("DENY", r#"["*"]"#),
            Metadata::None,
            true,
        ),
        (
            "DENY on the string written",
            "istio generator.go string_match",
            config("DENY", r#"["users"]"#),
            users(),
            false,
        ),
        (
            "ALLOW when the host cannot give metadata",
            "fail closed: ALLOW does not match",
            config("ALLOW", r#"["users"]"#),
            failing(),
            false,
        ),
        (
            "DENY when the host cannot give metadata",
            "fail closed: DENY matches",
            config("DENY", r#"["orders"]"#),
            failing(),
            false,
        ),
        (
            "ALLOW on malformed metadata",
            "fail closed: ALLOW does not match",
            config("ALLOW", r#"["users"]"#),
            Metadata::Bytes(vec![0x0a, 0x7f]),
            false,
        ),
        (
            "DENY on malformed metadata",
            "fail closed: DENY matches",
            config("DENY", r#"["orders"]"#),
            Metadata::Bytes(vec![0x0a, 0x7f]),
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (what, source, config, md, allowed) in rows {
        let (host, action) = http(&config, md);
        let got = action == Action::Continue;
        if got != allowed {
            failures.push(format!("{what} [{source}]: allowed={got}, want {allowed}"));
        }
        let reads = host
            .take_calls()
            .into_iter()
            .filter(|c| c.starts_with("proxy_get_property metadata"))
            .count();
        if reads != 1 {
            failures.push(format!("{what}: {reads} metadata reads, want 1"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn metadata_is_read_only_when_a_policy_needs_it() {
    let config = r#"{"workload": {"namespace": "demo"}, "policies": [
      {"metadata": {"name": "p", "namespace": "demo"},
       "spec": {"rules": [{"to": [{"operation": {"paths": ["/"]}}]}]}}]}"#;
    let (host, action) = http(config, Metadata::Fails(HostStatus::InternalFailure));
    assert_eq!(action, Action::Continue);
    assert!(
        !host.take_calls().iter().any(|c| c.contains("metadata")),
        "no policy reads dynamic metadata"
    );
}

#[test]
fn one_metadata_read_serves_every_key() {
    // Two filters, three keys: one `proxy_get_property metadata` per request.
    let config = r#"{"workload": {"namespace": "demo"}, "policies": [
      {"metadata": {"name": "p", "namespace": "demo"},
       "spec": {"rules": [{"when": [
         {"key": "experimental.envoy.filters.network.mysql_proxy[db.table]", "values": ["users"]},
         {"key": "experimental.envoy.filters.network.mysql_proxy[db.op]", "notValues": ["drop"]},
         {"key": "experimental.envoy.filters.http.lua[role]", "values": ["[reader]"]}]}]}}]}"#;
    let md = |op: &str| {
        Metadata::Bytes(metadata(json!({
            MYSQL: {"db.table": "users", "db.op": op},
            "envoy.filters.http.lua": {"role": ["reader"]},
        })))
    };
    for (op, allowed) in [("select", true), ("drop", false)] {
        let (host, action) = http(config, md(op));
        assert_eq!(action == Action::Continue, allowed, "db.op {op}");
        let calls = host.take_calls();
        assert_eq!(
            calls.iter().filter(|c| c.contains("metadata")).count(),
            1,
            "{calls:?}"
        );
    }
}

#[test]
fn tcp_connections_decide_on_dynamic_metadata() {
    // istio generator.go: envoyFilterGenerator ignores forTCP (mysql_proxy is a network
    // filter): the connection's metadata decides.
    for (values, allowed) in [(r#"["users"]"#, true), (r#"["orders"]"#, false)] {
        let host = FakeHost::new();
        host.set_configuration(&config("ALLOW", values));
        let mut root = Root::new();
        assert!(root.on_configure(&host), "{:?}", host.logs.borrow());
        host.set_property("connection.mtls", vec![0]);
        host.set_property("metadata", metadata(json!({MYSQL: {"db.table": "users"}})));
        let mut conn = root.new_tcp_stream();
        let action = conn.on_downstream_data(&host);
        assert_eq!(action == Action::Continue, allowed, "values {values}");
        assert_eq!(host.counter(COUNTER_DENIED), i64::from(!allowed));
    }
}
