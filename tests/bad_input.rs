//! Hostile input through the whole stack: the released `.wasm` in host-sim given oversized,
//! malformed and mistyped requests and configurations. Every row asserts the clear error (the
//! field and the value) or the exact decision, and that the VM did not trap and still serves
//! the next request. Raw bytes host-sim cannot put in a request (invalid UTF-8, property
//! encodings) are driven through the same glue natively in `filter/tests/glue_bad_input.rs`.
//!
//! Run: `cargo test -p integration-tests --test bad_input` (the 100,000-rule row prints its
//! memory and configure time: add `-- --nocapture`).

use host_sim::{Connection, Error, Host, HttpOutcome, Plugin, Request};
use integration_tests::filter_wasm;

/// `/api/*` allowed to anyone; `/admin*`, any request carrying `x-block` and the peer
/// `blocked` denied (so the peer identity is read).
const CONFIG: &str = r#"{"workload": {"namespace": "demo"}, "policies": [
    {"metadata": {"name": "allow-api", "namespace": "demo"},
     "spec": {"rules": [{"to": [{"operation": {"paths": ["/api/*"]}}]}]}},
    {"metadata": {"name": "deny-admin", "namespace": "demo"},
     "spec": {"action": "DENY", "rules": [
        {"to": [{"operation": {"paths": ["/admin*"]}}]},
        {"when": [{"key": "request.headers[x-block]", "values": ["*"]}]},
        {"from": [{"source": {"principals": ["cluster.local/ns/demo/sa/blocked"]}}]}]}}]}"#;

const ALLOWED: Option<&str> = None;
const DENIED_BY_DENY: Option<&str> = Some("rbac_access_denied_matched_policy[demo/deny-admin]");
const DENIED_NO_MATCH: Option<&str> = Some("rbac_access_denied_matched_policy[none]");
const MALFORMED: Option<&str> = Some("spiffe_authz_malformed_request_headers");
const INVALID_PEER: Option<&str> = Some("spiffe_authz_invalid_peer_identity");

fn host() -> Host {
    Host::builder()
        .wasm_file(filter_wasm())
        .build()
        .expect("the filter loads")
}

fn plugin() -> Plugin {
    host().configure(CONFIG).expect("the base configuration")
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(5_000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn plaintext() -> Connection {
    Connection::plaintext().id(next_id())
}

/// The decision, after checking there was exactly one and no trap.
fn decided(what: &str, out: &HttpOutcome) -> Option<String> {
    assert_eq!(out.vm_failure, None, "{what}: the VM trapped");
    assert_eq!(
        out.upstream_request.is_some(),
        out.local_response.is_none(),
        "{what}: not exactly one decision"
    );
    out.local_response.as_ref().map(|r| r.details.clone())
}

/// The VM still answers an ordinary request with the base configuration's decision.
fn still_serves(p: &mut Plugin, what: &str) {
    let out = p
        .http_request(plaintext(), Request::get("/api/ok"))
        .unwrap_or_else(|e| panic!("{what}: the next request failed: {e}"));
    assert_eq!(decided(what, &out), None, "{what}: the next request");
    let out = p.http_request(plaintext(), Request::get("/admin")).unwrap();
    assert_eq!(decided(what, &out).as_deref(), DENIED_BY_DENY, "{what}");
}

fn big(n: usize) -> String {
    "a".repeat(n)
}

#[test]
fn hostile_requests_get_the_right_decision_and_the_vm_keeps_serving() {
    let kib64 = big(64 * 1024);
    let mib = big(1024 * 1024);
    let many_headers: Vec<(String, String)> = (0..10_000)
        .map(|i| (format!("x-h{i}"), format!("v{i}")))
        .collect();
    // (behaviour, source, connection, request, decision)
    let rows: Vec<(&str, &str, Connection, Request, Option<&str>)> = vec![
        (
            "a 64 KiB header value is read whole (Envoy refuses > 60 KiB of headers with 431 \
             before filters; host-sim has no codec limits, so the plugin must cope)",
            "Envoy HCM max_request_headers_kb default 60",
            plaintext(),
            Request::get("/api/x").header("x-big", &kib64),
            ALLOWED,
        ),
        (
            "a 1 MiB header value carrying x-block is denied by the DENY rule on it",
            "istio.io conditions request.headers",
            plaintext(),
            Request::get("/api/x").header("x-block", &mib),
            DENIED_BY_DENY,
        ),
        (
            "a 1 MiB :path under /api/ is allowed",
            "istio.io Operation.paths prefix",
            plaintext(),
            Request::get(&format!("/api/{mib}")),
            ALLOWED,
        ),
        (
            "a 1 MiB :path under /admin is denied",
            "istio.io Operation.paths prefix",
            plaintext(),
            Request::get(&format!("/admin/{mib}")),
            DENIED_BY_DENY,
        ),
        (
            "a 1 MiB :authority does not change a path decision",
            "istio.io Operation.hosts unset",
            plaintext(),
            Request::get("/api/x").authority(&mib),
            ALLOWED,
        ),
        (
            "10,000 headers (Envoy's default limit is 100) with x-block last: still denied",
            "Envoy HCM max_headers_count default 100",
            plaintext(),
            many_headers
                .iter()
                .fold(Request::get("/api/x"), |r, (k, v)| r.header(k, v))
                .header("x-block", "1"),
            DENIED_BY_DENY,
        ),
        (
            "10,000 headers without x-block: allowed",
            "Envoy HCM max_headers_count default 100",
            plaintext(),
            many_headers
                .iter()
                .fold(Request::get("/api/x"), |r, (k, v)| r.header(k, v)),
            ALLOWED,
        ),
        (
            "x-block repeated 10,000 times: denied",
            "istio.io conditions request.headers, presence",
            plaintext(),
            (0..10_000).fold(Request::get("/api/x"), |r, _| r.header("x-block", "")),
            DENIED_BY_DENY,
        ),
        (
            "an upper-case header name is the same header (Envoy lower-cases names)",
            "RFC 9110 §5.1 field names are case-insensitive",
            plaintext(),
            Request::get("/api/x").header("X-Block", "1"),
            DENIED_BY_DENY,
        ),
        (
            "NUL in a header value: Envoy's codecs refuse the request; denied before policies",
            "CVE-2019-9900, Envoy header validation",
            plaintext(),
            Request::get("/api/x").header("x-a", "a\0b"),
            MALFORMED,
        ),
        (
            "NUL in :path: denied before policies",
            "CVE-2019-9900",
            plaintext(),
            Request::get("/api/\0x"),
            MALFORMED,
        ),
        (
            "CR LF in a header value: denied before policies",
            "RFC 9110 §5.5 field values exclude CR LF",
            plaintext(),
            Request::get("/api/x").header("x-a", "a\r\nx-block: 1"),
            MALFORMED,
        ),
        (
            "NUL in a header name: denied before policies",
            "RFC 9110 §5.1 field names are tokens",
            plaintext(),
            Request::get("/api/x").header("x-\0a", "1"),
            MALFORMED,
        ),
        (
            "a second :path: denied before policies (which one would the upstream use?)",
            "RFC 9113 §8.3 pseudo-headers appear once",
            plaintext(),
            Request::get("/api/x").header(":path", "/admin"),
            MALFORMED,
        ),
        (
            "an empty :path: Envoy refuses it; denied without evaluating policies",
            "RFC 9113 §8.3.1 :path must not be empty",
            plaintext(),
            Request::get(""),
            DENIED_NO_MATCH,
        ),
        (
            "a relative :path: denied without evaluating policies",
            "RFC 9112 §3.2.1 origin-form starts with /",
            plaintext(),
            Request::get("api/x"),
            DENIED_NO_MATCH,
        ),
        (
            "a :path with a #fragment: judged without it, as Istio's Envoy strips it",
            "istio bootstrap extractRuntimeFlags: http_reject_path_with_fragment=false",
            plaintext(),
            Request::get("/api/x#admin"),
            ALLOWED,
        ),
        (
            "100,000 `..` segments normalize to / (BASE): no ALLOW matches",
            "Istio pathNormalization BASE, RFC 3986 §5.2.4",
            plaintext(),
            Request::get(&format!("/api/{}", "../".repeat(100_000))),
            DENIED_NO_MATCH,
        ),
        (
            "a 1 MiB peer URI SAN is not a SPIFFE ID (at most 2,048 bytes): denied as invalid",
            "SPIFFE-ID §2.3 maximum length",
            Connection::mtls(&format!("spiffe://cluster.local/ns/demo/sa/{mib}")).id(next_id()),
            Request::get("/api/x"),
            INVALID_PEER,
        ),
        (
            "NUL in the peer URI SAN: denied as invalid",
            "SPIFFE-ID §2.2 path segment characters",
            Connection::mtls("spiffe://cluster.local/ns/demo/sa/a\0b").id(next_id()),
            Request::get("/api/x"),
            INVALID_PEER,
        ),
        (
            "a peer URI SAN that is not a URI: denied as invalid",
            "SPIFFE-ID §2 scheme spiffe",
            Connection::mtls("not a uri").id(next_id()),
            Request::get("/api/x"),
            INVALID_PEER,
        ),
        (
            "64 KiB of XFCC garbage on a plaintext connection is never read (a client wrote it)",
            "Envoy forward_client_cert_details: only a trusted proxy's XFCC counts",
            plaintext(),
            Request::get("/api/x").header("x-forwarded-client-cert", &kib64),
            ALLOWED,
        ),
    ];
    let mut p = plugin();
    let mut failures = Vec::new();
    let n = rows.len();
    for (behaviour, source, connection, request, want) in rows {
        let out = p
            .http_request(connection, request)
            .unwrap_or_else(|e| panic!("{behaviour}: {e}"));
        let got = decided(behaviour, &out);
        if got.as_deref() != want {
            failures.push(format!(
                "{behaviour} [{source}]\n    want: {want:?}\n    got:  {got:?}"
            ));
        }
        still_serves(&mut p, behaviour);
    }
    assert!(
        failures.is_empty(),
        "{} of {n} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The `configuration rejected: ` lines of a rejected update.
fn rejection(p: &mut Plugin, config: impl AsRef<[u8]>) -> Vec<String> {
    match p.reconfigure(config) {
        Err(Error::ConfigurationRejected { logs, .. }) => logs
            .iter()
            .filter_map(|l| {
                l.message
                    .strip_prefix("spiffe-authz: configuration rejected: ")
                    .map(str::to_owned)
            })
            .collect(),
        Err(other) => panic!("not a clean rejection (a trap?): {other}"),
        Ok(_) => panic!("accepted"),
    }
}

fn nested(open: &str, close: &str, depth: usize) -> String {
    format!(
        r#"{{"policies": [], "x": {}{}}}"#,
        open.repeat(depth),
        close.repeat(depth)
    )
}

#[test]
fn hostile_configurations_are_rejected_with_the_field_and_value_and_change_nothing() {
    let mib = big(1024 * 1024);
    let policy = |spec: &str| {
        format!(
            r#"{{"workload": {{"namespace": "demo"}}, "policies": [
            {{"metadata": {{"name": "p", "namespace": "demo"}}, "spec": {spec}}}]}}"#
        )
    };
    // (behaviour, configuration, text every row's error must contain)
    let rows: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "empty configuration",
            b"".to_vec(),
            "policies: the plugin configuration is empty",
        ),
        (
            "whitespace only",
            b" \n\t ".to_vec(),
            "policies: the plugin configuration is empty",
        ),
        (
            "not JSON",
            b"hello".to_vec(),
            "(configuration): not valid JSON: expected value at line 1",
        ),
        (
            "YAML where JSON is expected (Istio converts a WasmPlugin's pluginConfig to JSON; \
             raw YAML means the host did not)",
            b"policies: []\nworkload:\n  namespace: demo\n".to_vec(),
            "(configuration): not valid JSON: expected value at line 1",
        ),
        (
            "a JSON array",
            b"[]".to_vec(),
            "(configuration): must be a JSON object, got an array",
        ),
        (
            "a JSON string",
            br#""policies""#.to_vec(),
            "(configuration): must be a JSON object, got a string",
        ),
        ("no policies", b"{}".to_vec(), "policies: required"),
        (
            "truncated JSON",
            br#"{"policies": ["#.to_vec(),
            "(configuration): not valid JSON: EOF while parsing",
        ),
        (
            "10,000 nested arrays: serde_json's recursion limit, not a stack overflow in wasm",
            nested("[", "]", 10_000).into_bytes(),
            "(configuration): not valid JSON: recursion limit exceeded",
        ),
        (
            "100,000 nested arrays",
            nested("[", "]", 100_000).into_bytes(),
            "(configuration): not valid JSON: recursion limit exceeded",
        ),
        (
            "100,000 nested objects",
            nested(r#"{"a":"#, "}", 100_000).into_bytes(),
            "(configuration): not valid JSON: recursion limit exceeded",
        ),
        (
            "10,000 nested arrays inside a policy",
            format!(
                r#"{{"policies": [{}{}]}}"#,
                "[".repeat(10_000),
                "]".repeat(10_000)
            )
            .into_bytes(),
            "(configuration): not valid JSON: recursion limit exceeded",
        ),
        (
            "invalid UTF-8 inside a string",
            b"{\"policies\": [], \"trustDomain\": \"a\xffb\"}".to_vec(),
            "(configuration): not valid JSON: invalid unicode code point",
        ),
        (
            "trustDomain of the wrong type",
            br#"{"policies": [], "trustDomain": 5}"#.to_vec(),
            "trustDomain: invalid type: integer `5`, expected a string",
        ),
        (
            "policies of the wrong type",
            br#"{"policies": "all"}"#.to_vec(),
            "policies: ",
        ),
        (
            "a NUL byte in trustDomain",
            br#"{"policies": [], "trustDomain": "a\u0000b"}"#.to_vec(),
            "trustDomain: \"a\\0b\"",
        ),
        (
            "a 1 MiB trustDomain (SPIFFE: at most 255 bytes)",
            format!(r#"{{"policies": [], "trustDomain": "{mib}"}}"#).into_bytes(),
            "trustDomain: ",
        ),
        (
            "an empty rootNamespace",
            br#"{"policies": [], "rootNamespace": ""}"#.to_vec(),
            "rootNamespace: must not be empty",
        ),
        (
            "a port that is not a number",
            policy(r#"{"rules": [{"to": [{"operation": {"ports": ["80a"]}}]}]}"#).into_bytes(),
            r#"spec.rules[0].to[0].operation.ports[0]: "80a""#,
        ),
        (
            "a port out of range",
            policy(r#"{"rules": [{"to": [{"operation": {"ports": ["99999"]}}]}]}"#).into_bytes(),
            r#"spec.rules[0].to[0].operation.ports[0]: "99999""#,
        ),
        (
            "an ipBlock that is not an address",
            policy(r#"{"rules": [{"from": [{"source": {"ipBlocks": ["not-an-ip"]}}]}]}"#)
                .into_bytes(),
            r#"spec.rules[0].from[0].source.ipBlocks[0]: "not-an-ip""#,
        ),
        (
            "a path template with a named variable (Istio's CheckValidPathTemplate; a '*' in the middle is admitted, as Istio does)",
            policy(r#"{"rules": [{"to": [{"operation": {"paths": ["/{*}/{x}"]}}]}]}"#).into_bytes(),
            r#"spec.rules[0].to[0].operation.paths[0]: "/{*}/{x}""#,
        ),
        (
            "an unknown action",
            policy(r#"{"action": "allow"}"#).into_bytes(),
            "spec.action",
        ),
        (
            "an unknown field in the spec",
            policy(r#"{"rulez": []}"#).into_bytes(),
            "unknown field `rulez`",
        ),
        (
            "rules of the wrong type",
            policy(r#"{"rules": {"from": []}}"#).into_bytes(),
            "spec.rules",
        ),
        (
            "a condition without values",
            policy(r#"{"rules": [{"when": [{"key": "request.headers[x]"}]}]}"#).into_bytes(),
            "spec.rules[0].when[0]",
        ),
        (
            "a condition key that does not exist",
            policy(r#"{"rules": [{"when": [{"key": "request.nope", "values": ["x"]}]}]}"#)
                .into_bytes(),
            r#""request.nope""#,
        ),
        (
            "a DENY policy without rules (Istio's validation: it would never be triggered)",
            policy(r#"{"action": "DENY"}"#).into_bytes(),
            "demo/p: spec.rules: DENY action without rules is meaningless",
        ),
        (
            "a policy without metadata (Kubernetes requires a name and a namespace)",
            br#"{"policies": [{"spec": {"rules": [{}]}}]}"#.to_vec(),
            "policies: items[0]: metadata.namespace: is required",
        ),
    ];
    let mut p = plugin();
    let mut failures = Vec::new();
    let n = rows.len();
    for (behaviour, config, want) in rows {
        let lines = rejection(&mut p, &config);
        if !lines.iter().any(|l| l.contains(want)) {
            failures.push(format!(
                "{behaviour}\n    want a line containing: {want}\n    got: {lines:?}"
            ));
        }
        still_serves(&mut p, behaviour);
    }
    assert!(
        failures.is_empty(),
        "{} of {n} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Empty and missing fields that Istio accepts: the configuration loads and decides as the
/// reference says.
#[test]
fn empty_and_missing_fields_istio_accepts_decide_as_istio_does() {
    let with = |policies: &str| {
        format!(r#"{{"workload": {{"namespace": "demo"}}, "policies": [{policies}]}}"#)
    };
    // (behaviour, source, policies, path, decision)
    let rows: Vec<(&str, &str, String, &str, Option<&str>)> = vec![
        (
            "policies: [] allows everything",
            "istio.io AuthorizationPolicy: no policy, allow",
            with(""),
            "/anything",
            ALLOWED,
        ),
        (
            "an ALLOW policy with an empty spec matches nothing: deny",
            "istio.io: an ALLOW policy without rules allows nothing",
            with(r#"{"metadata": {"name": "p", "namespace": "demo"}, "spec": {}}"#),
            "/anything",
            DENIED_NO_MATCH,
        ),
        (
            "an ALLOW policy with rules: [{}] allows everything",
            "istio.io: rules: [{}] matches everything",
            with(r#"{"metadata": {"name": "p", "namespace": "demo"}, "spec": {"rules": [{}]}}"#),
            "/anything",
            ALLOWED,
        ),
    ];
    let mut failures = Vec::new();
    for (behaviour, source, config, path, want) in rows {
        let mut p = match host().configure(&config) {
            Ok(p) => p,
            Err(e) => {
                let lines: Vec<&str> = e
                    .logs()
                    .iter()
                    .map(|l| l.message.as_str())
                    .filter(|m| m.contains("configuration rejected: "))
                    .collect();
                failures.push(format!("{behaviour} [{source}]: rejected: {lines:?}"));
                continue;
            }
        };
        let out = p.http_request(plaintext(), Request::get(path)).unwrap();
        let got = decided(behaviour, &out);
        if got.as_deref() != want {
            failures.push(format!(
                "{behaviour} [{source}]\n    want: {want:?}\n    got:  {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// 100,000 rules (1,000 policies of 100): accepted, decided right at both ends; the memory
/// and configure time are printed for BENCHMARKS.md, not asserted.
#[test]
fn a_config_of_100000_rules_loads_and_decides_right() {
    const RULES: usize = 100_000;
    let rule = |i: usize| {
        format!(
            r#"{{"from": [{{"source": {{"principals": ["cluster.local/ns/n{i}/sa/s{i}"]}}}}],
                "to": [{{"operation": {{"paths": ["/api/v{i}/*"]}}}}]}}"#
        )
    };
    let policies: Vec<String> = (0..RULES)
        .step_by(100)
        .map(|start| {
            let rules: Vec<String> = (start..start + 100).map(rule).collect();
            format!(
                r#"{{"metadata": {{"name": "p{start}", "namespace": "demo"}}, "spec": {{"rules": [{}]}}}}"#,
                rules.join(",")
            )
        })
        .collect();
    let config = format!(
        r#"{{"workload": {{"namespace": "demo"}}, "policies": [{}]}}"#,
        policies.join(",")
    );
    let started = std::time::Instant::now();
    // host-sim bounds guest time per callback (Envoy does not): parsing and compiling this
    // much takes more than its default 2·10⁹ instructions.
    let mut p = Host::builder()
        .wasm_file(filter_wasm())
        .fuel_per_callback(1_000_000_000_000)
        .build()
        .expect("the filter loads")
        .configure(&config)
        .unwrap_or_else(|e| panic!("100,000 rules: {e}"));
    let configure = started.elapsed();
    let peer = |i: usize| {
        Connection::mtls(&format!("spiffe://cluster.local/ns/n{i}/sa/s{i}")).id(next_id())
    };
    for (i, path, want) in [
        (0, "/api/v0/x", ALLOWED),
        (RULES - 1, &*format!("/api/v{}/x", RULES - 1), ALLOWED),
        (RULES / 2, &*format!("/api/v{}/x", RULES / 2), ALLOWED),
        (RULES / 2, "/api/v0/x", DENIED_NO_MATCH),
        (RULES, &*format!("/api/v{RULES}/x"), DENIED_NO_MATCH),
    ] {
        let out = p.http_request(peer(i), Request::get(path)).unwrap();
        assert_eq!(decided(path, &out).as_deref(), want, "n{i} {path}");
    }
    println!(
        "100,000 rules: {} bytes of configuration; configure (canary + worker) {:.1} s in \
         host-sim; linear memory {} KiB",
        config.len(),
        configure.as_secs_f64(),
        p.linear_memory_bytes() / 1024
    );
}

/// The plugin's JSON reader (`filter/src/policy/json.rs`) reports syntax errors with
/// serde_json's wording and position; the same bytes through serde_json itself. (This suite
/// found four differences; json.rs was fixed in 0b76838.)
#[test]
fn syntax_errors_read_like_serde_json() {
    let texts: [&[u8]; 6] = [
        b"hello",
        b"policies: []\n",
        br#"{"policies": ["#,
        b"{\"policies\": [], \"trustDomain\": \"a\xffb\"}",
        b"{\"policies\": [1,]}",
        b"{\"a\" 1}",
    ];
    let mut p = plugin();
    let mut failures = Vec::new();
    for text in texts {
        let theirs = serde_json::from_slice::<serde_json::Value>(text)
            .expect_err("not JSON")
            .to_string();
        let want = format!("(configuration): not valid JSON: {theirs}");
        let lines = rejection(&mut p, text);
        if !lines.contains(&want) {
            failures.push(format!(
                "{:?}\n    serde_json: {want}\n    plugin:     {lines:?}",
                String::from_utf8_lossy(text)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
