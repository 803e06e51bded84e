//! host-sim conformance: each fixture module in tests/fixtures exercises one proxy-wasm ABI
//! area the way the Rust SDK's examples do, and each test pins what Envoy does there
//! (references: /work/shared/reference/proxy-wasm-abi.md and envoy-properties.md, which cite
//! proxy-wasm-cpp-host and Envoy source files).

use std::time::Duration;

use host_sim::{
    logs_containing, Attributes, CallResponse, Connection, Error, Host, HttpOutcome, LogLevel,
    MetricValue, Request, Response, Stalled, Xfcc, XfccDetails,
};
use integration_tests::fixture;

fn host(name: &str) -> Host {
    Host::builder()
        .wasm_file(fixture(name))
        .node_metadata("foo", [("app", "httpbin"), ("version", "v1")])
        .build()
        .unwrap()
}

fn mtls() -> Connection {
    Connection::mtls("spiffe://cluster.local/ns/a/sa/b")
        .source("10.0.0.1:43210")
        .destination("10.0.0.2:8000")
}

fn logged(out: &HttpOutcome, needle: &str) -> bool {
    !logs_containing(&out.logs, needle).is_empty()
}

// ---- lifecycle and HTTP ----

/// Envoy: a request passes through a filter that continues everywhere; the root context is 1
/// and the first stream 2 (SDK http_headers README logs `#2`).
#[test]
fn pass_through_lets_the_request_reach_the_upstream_unchanged() {
    let mut plugin = host("pass_through").configure("").unwrap();
    assert_eq!(plugin.root_context_id(), 1);
    let out = plugin.http_request(mtls(), Request::get("/ip")).unwrap();
    assert!(out.allowed());
    assert_eq!(out.local_response, None);
    assert!(out.request_header_changes.is_empty());
    assert_eq!(out.vm_failure, None);
}

/// SDK examples/http_headers README: the local reply runs through this filter's
/// on_response_headers with `:status`, the plugin's headers (lower-cased), then
/// content-length and content-type text/plain (Envoy `Utility::sendLocalReply`).
#[test]
fn local_response_reenters_on_response_headers_with_envoy_headers() {
    let mut plugin = host("http_headers").configure("").unwrap();
    let out = plugin.http_request(mtls(), Request::get("/hello")).unwrap();
    let reply = out.local_response.clone().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "Hello, World!\n");
    assert_eq!(
        reply.headers.get("hello").map(String::as_str),
        Some("World")
    );
    assert_eq!(
        reply.headers.get("powered-by").map(String::as_str),
        Some("proxy-wasm")
    );
    assert_eq!(
        reply.headers.get("content-length").map(String::as_str),
        Some("14")
    );
    assert_eq!(
        reply.headers.get("content-type").map(String::as_str),
        Some("text/plain")
    );
    // Added by the plugin's own on_response_headers on the local reply.
    assert_eq!(
        reply.headers.get("x-powered-by").map(String::as_str),
        Some("host-sim-fixture")
    );
    assert!(!out.allowed());
    assert!(logged(&out, "#2 <- :status: 200"));
    assert!(logged(&out, "#2 <- content-type: text/plain"));
}

/// Header rewrite through replace/add/remove; the upstream sees the result.
#[test]
fn header_rewrites_reach_the_upstream() {
    let mut plugin = host("http_headers").configure("").unwrap();
    let out = plugin
        .http_request(mtls(), Request::get("/anything").header("x-remove-me", "1"))
        .unwrap();
    assert!(out.allowed());
    let changes = &out.request_header_changes;
    assert_eq!(changes.get("x-wasm-seen"), Some("true"));
    assert_eq!(changes.get("x-added"), Some("1"));
    assert_eq!(changes.removed, vec!["x-remove-me"]);
    let upstream = out.upstream_request.as_ref().unwrap();
    assert_eq!(upstream.header("x-wasm-seen"), Some("true"));
    assert_eq!(
        out.response_header_changes.get("x-powered-by"),
        Some("host-sim-fixture")
    );
    // proxy_set_property lands in filter state under `wasm.<path>`.
    assert_eq!(
        out.filter_state
            .get("wasm.http_headers.path")
            .map(String::as_str),
        Some("/anything")
    );
    // on_log can still read request headers (Envoy keeps them for the access log).
    assert!(logged(&out, "completed /anything"));
}

/// Envoy calls `proxy_on_request_headers` with the entry count including pseudo-headers and
/// end_of_stream true for a body-less request; pseudo-headers come first.
#[test]
fn request_headers_callback_gets_count_and_end_of_stream() {
    let mut plugin = host("http_headers").configure("").unwrap();
    let out = plugin
        .http_request(
            mtls(),
            Request::get("/x")
                .authority("httpbin.foo:8000")
                .header("x-a", "1"),
        )
        .unwrap();
    assert!(logged(
        &out,
        "#2 request headers: 5 entries, end_of_stream=true"
    ));
    let first = logs_containing(&out.logs, "#2 -> ")[0];
    assert_eq!(first.message, "#2 -> :authority: httpbin.foo:8000");
    let out = plugin
        .http_request(mtls(), Request::post("/x").body("abc"))
        .unwrap();
    assert!(logged(
        &out,
        "#3 request headers: 4 entries, end_of_stream=false"
    ));
}

/// proxy-wasm-abi.md §4.8: a panic logs `panicked at` (SDK panic hook) and traps; the whole VM
/// is failed; later requests get 503 `wasm_fail_stream` without running the guest.
#[test]
fn a_trap_fails_the_vm_closed_for_every_later_request() {
    let mut plugin = host("http_headers").configure("").unwrap();
    let out = plugin
        .http_request(mtls(), Request::get("/").header("x-panic", "1"))
        .unwrap();
    let failure = out.vm_failure.clone().unwrap();
    assert_eq!(failure.callback, "proxy_on_request_headers");
    assert!(logged(&out, "panicked at"), "{:?}", out.logs);
    let reply = out.local_response.clone().unwrap();
    assert_eq!(
        (reply.status, reply.details.as_str()),
        (503, "wasm_fail_stream")
    );
    assert!(!out.allowed());

    let later = plugin.http_request(mtls(), Request::get("/fine")).unwrap();
    assert_eq!(later.local_response.map(|r| r.status), Some(503));
    assert_eq!(later.hostcalls, 0, "a failed VM runs no guest code");
    assert!(plugin.vm_failure().is_some());
}

/// Envoy `fail_open: true`: after a trap the filter is skipped for this and later streams.
#[test]
fn fail_open_skips_a_failed_plugin() {
    let host = Host::builder()
        .wasm_file(fixture("http_headers"))
        .fail_open(true)
        .build()
        .unwrap();
    let mut plugin = host.configure("").unwrap();
    let out = plugin
        .http_request(mtls(), Request::get("/").header("x-panic", "1"))
        .unwrap();
    assert!(out.vm_failure.is_some());
    assert!(out.allowed());
    assert_eq!(out.local_response, None);
    let later = plugin.http_request(mtls(), Request::get("/deny")).unwrap();
    assert!(
        later.allowed(),
        "fail open: the deny path of the dead plugin does not run"
    );
}

/// proxy-wasm-abi.md §4.2: after on_request_headers returns Continue Envoy drops its pointer
/// to the request headers; `proxy_get_header_map_value` then answers BAD_ARGUMENT and the Rust
/// SDK panics on it.
#[test]
fn request_headers_are_gone_in_response_callbacks() {
    let mut plugin = host("http_headers").configure("").unwrap();
    let out = plugin
        .http_request(mtls(), Request::get("/").header("x-late-read", "1"))
        .unwrap();
    let failure = out.vm_failure.clone().unwrap();
    assert_eq!(failure.callback, "proxy_on_response_headers");
    assert!(logged(&out, "unexpected status: 2"), "{:?}", out.logs);
}

// ---- properties ----

fn probe(
    plugin: &mut host_sim::Plugin,
    connection: Connection,
    request: Request,
    paths: &str,
) -> Vec<String> {
    let out = plugin
        .http_request(connection, request.header("x-probe", paths))
        .unwrap();
    let body = out.local_response.map(|r| r.body).unwrap_or_default();
    body.lines()
        .map(|l| {
            l.split_once('=')
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pairs_hex(pairs: &[(&str, &str)]) -> String {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend((k.len() as u32).to_le_bytes());
        out.extend((v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend(k.as_bytes());
        out.push(0);
        out.extend(v.as_bytes());
        out.push(0);
    }
    hex(&out)
}

/// envoy-properties.md §2-3: attribute paths and Envoy's serializeValue encodings as the Rust
/// SDK receives them (an empty value arrives as ptr 0 and reads as None).
#[test]
fn properties_are_served_with_envoy_encodings() {
    let mut plugin = host("http_headers").configure("").unwrap();
    let conn = mtls()
        .sni("httpbin.foo.svc")
        .peer_dns_san("b.example")
        .peer_subject("CN=b,O=example")
        .id(7);
    let cases: &[(&str, String, &str)] = &[
        ("connection.mtls", "01".into(), "bool is one byte"),
        (
            "connection.uri_san_peer_certificate",
            hex(b"spiffe://cluster.local/ns/a/sa/b"),
            "first URI SAN",
        ),
        (
            "connection.dns_san_peer_certificate",
            hex(b"b.example"),
            "first DNS SAN",
        ),
        (
            "connection.subject_peer_certificate",
            hex(b"CN=b,O=example"),
            "RFC 2253 subject",
        ),
        (
            "connection.requested_server_name",
            hex(b"httpbin.foo.svc"),
            "SNI",
        ),
        ("connection.id", hex(&7u64.to_le_bytes()), "uint 8-byte LE"),
        ("source.address", hex(b"10.0.0.1:43210"), "ip:port"),
        ("source.port", hex(&43210i64.to_le_bytes()), "int 8-byte LE"),
        (
            "destination.address",
            hex(b"10.0.0.2:8000"),
            "local address",
        ),
        (
            "destination.port",
            hex(&8000i64.to_le_bytes()),
            "int 8-byte LE",
        ),
        ("request.path", hex(b"/p?q=1"), ":path with query"),
        ("request.url_path", hex(b"/p"), "path without query"),
        ("request.query", hex(b"q=1"), "query"),
        ("request.method", hex(b"GET"), "method"),
        ("request.host", hex(b"h"), ":authority"),
        ("request.protocol", hex(b"HTTP/1.1"), "protocol"),
        (
            "request.headers.x-dup",
            hex(b"1,2"),
            "duplicates comma-joined",
        ),
        (
            "xds.node.metadata.NAMESPACE",
            hex(b"foo"),
            "Istio node metadata",
        ),
        (
            "xds.node.metadata.LABELS",
            pairs_hex(&[("app", "httpbin"), ("version", "v1")]),
            "map as pairs",
        ),
        ("xds.node.metadata.LABELS.app", hex(b"httpbin"), "map key"),
        (
            "node.metadata.NAMESPACE",
            hex(b"foo"),
            "legacy top-level node (pre Envoy 1.33)",
        ),
        ("plugin_name", hex(b"spiffe-authz"), "PluginConfig.name"),
        (
            "xds.node",
            "error SerializationFailure".into(),
            "whole message: host-sim has no protobuf",
        ),
        ("connection.nope", "none".into(), "unknown field: NOT_FOUND"),
        ("nope", "none".into(), "unknown attribute: NOT_FOUND"),
    ];
    let paths: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let got = probe(
        &mut plugin,
        conn,
        Request::get("/p?q=1")
            .authority("h")
            .header("x-dup", "1")
            .header("x-dup", "2"),
        &paths.join(","),
    );
    for ((path, want, why), got) in cases.iter().zip(&got) {
        assert_eq!(got, want, "{path}: {why}");
    }
    assert_eq!(got.len(), cases.len());
}

/// envoy-properties.md: `connection.mtls` is false (present) on plaintext; TLS attributes are
/// NOT_FOUND; an empty SNI is an empty string, which the SDK reads as None.
#[test]
fn plaintext_connections_have_no_tls_attributes() {
    let mut plugin = host("http_headers").configure("").unwrap();
    let got = probe(
        &mut plugin,
        Connection::plaintext(),
        Request::get("/"),
        "connection.mtls,connection.uri_san_peer_certificate,connection.requested_server_name,connection.tls_version",
    );
    assert_eq!(got, ["00", "none", "none", "none"]);
}

/// envoy-properties.md §2 `source.address`: with use_remote_address false (Istio sidecar
/// inbound) and an x-forwarded-for header, Envoy's trusted client address is the rightmost XFF
/// IP with port 0; with use_remote_address true it is the direct peer.
#[test]
fn source_address_is_derived_from_xff_like_envoys_hcm() {
    let req = || Request::get("/").header("x-forwarded-for", "203.0.113.7, 198.51.100.2");
    let mut sidecar = host("http_headers").configure("").unwrap();
    assert_eq!(
        probe(&mut sidecar, mtls(), req(), "source.address"),
        [hex(b"198.51.100.2:0")]
    );
    let edge = Host::builder()
        .wasm_file(fixture("http_headers"))
        .use_remote_address(true)
        .build()
        .unwrap();
    let mut edge = edge.configure("").unwrap();
    assert_eq!(
        probe(&mut edge, mtls(), req(), "source.address"),
        [hex(b"10.0.0.1:43210")]
    );
}

/// Envoy >= 1.33 removed top-level `node`; a filter's fallback must use `xds.node`.
#[test]
fn attribute_generations_can_be_switched() {
    let modern = Host::builder()
        .wasm_file(fixture("http_headers"))
        .node_metadata("foo", [("app", "x")])
        .attributes(Attributes::XdsOnly)
        .build()
        .unwrap();
    let mut plugin = modern.configure("").unwrap();
    let got = probe(
        &mut plugin,
        mtls(),
        Request::get("/"),
        "node.metadata.NAMESPACE,xds.node.metadata.NAMESPACE",
    );
    assert_eq!(got, ["none".to_string(), hex(b"foo")]);
}

/// Dynamic metadata written by earlier filters (e.g. jwt_authn's payload) is readable under
/// `metadata.filter_metadata.<namespace>`; Struct numbers are doubles.
#[test]
fn filter_metadata_is_readable() {
    let mut plugin = host("http_headers").configure("").unwrap();
    let request = Request::get("/").filter_metadata(
        "envoy.filters.http.jwt_authn",
        serde_json::json!({"payload": {"sub": "alice", "iat": 5}}),
    );
    let got = probe(
        &mut plugin,
        mtls(),
        request,
        "metadata.filter_metadata.envoy.filters.http.jwt_authn.payload.sub",
    );
    // The probe splits on '.', so a dotted namespace is not addressable this way: NOT_FOUND.
    assert_eq!(got, ["none"]);
    let request = Request::get("/")
        .filter_metadata("istio_authn", serde_json::json!({"sub": "alice", "iat": 5}));
    let got = probe(
        &mut plugin,
        mtls(),
        request,
        "metadata.filter_metadata.istio_authn.sub,metadata.filter_metadata.istio_authn.iat",
    );
    assert_eq!(got, [hex(b"alice"), hex(&5f64.to_le_bytes())]);
}

// ---- configuration ----

/// Envoy validates on a canary VM, then configures each worker; `false` rejects the update.
#[test]
fn configuration_is_read_once_per_vm_and_can_be_rejected() {
    let host = Host::builder()
        .wasm_file(fixture("config_echo"))
        .vm_configuration("vm-config")
        .build()
        .unwrap();
    let mut plugin = host.configure(r#"{"greeting":"hi"}"#).unwrap();
    assert!(plugin
        .configure_logs()
        .iter()
        .any(|l| l.message == r#"configured with 17 bytes: {"greeting":"hi"}"#));
    assert!(plugin
        .configure_logs()
        .iter()
        .any(|l| l.message == "vm configuration (9 bytes): vm-config"));
    let out = plugin.http_request(mtls(), Request::get("/")).unwrap();
    assert_eq!(out.local_response.unwrap().body, r#"{"greeting":"hi"}"#);

    match host.configure("please reject") {
        Err(Error::ConfigurationRejected { callback, logs }) => {
            assert_eq!(callback, "proxy_on_configure");
            assert!(logs
                .iter()
                .any(|l| l.level == LogLevel::Warn && l.message.contains("rejected")));
        }
        other => panic!("expected a rejection, got {:?}", other.map(|_| ())),
    }
}

/// proxy-wasm-abi.md §4.7: a new configuration is a new root context with a new id; a
/// rejected update leaves the old configuration serving.
#[test]
fn reconfigure_creates_a_new_root_context() {
    let mut plugin = host("config_echo").configure("first").unwrap();
    assert_eq!(plugin.root_context_id(), 1);
    plugin.reconfigure("second").unwrap();
    assert_eq!(plugin.root_context_id(), 2);
    let out = plugin.http_request(mtls(), Request::get("/")).unwrap();
    assert_eq!(out.local_response.unwrap().body, "second");
    assert!(plugin.reconfigure("reject me").is_err());
    let out = plugin.http_request(mtls(), Request::get("/")).unwrap();
    assert_eq!(out.local_response.unwrap().body, "second");
}

// ---- callouts ----

/// proxy-wasm-abi.md §4.5: the callout response goes to the root context; the SDK sets the
/// effective context back to the stream, which can then resume it or reply locally.
#[test]
fn http_callouts_are_answered_by_the_scripted_cluster() {
    let mut plugin = host("http_auth").configure("").unwrap();
    plugin.on_http_call(|call| match call.header("x-user") {
        Some("alice") => CallResponse::Reply(Response::ok("alice-ok")),
        Some("reset") => CallResponse::Reset,
        _ => CallResponse::Reply(Response::status(403)),
    });
    let allowed = plugin
        .http_request(mtls(), Request::get("/").header("x-user", "alice"))
        .unwrap();
    assert!(allowed.allowed(), "{:?}", allowed.logs);
    assert_eq!(
        allowed.request_header_changes.get("x-auth"),
        Some("alice-ok")
    );
    let call = &allowed.http_calls[0];
    assert_eq!(
        (
            call.upstream.as_str(),
            call.header(":path"),
            call.timeout_ms
        ),
        ("auth", Some("/check"), 5000)
    );
    assert!(
        logged(&allowed, "auth call 4 answered 200"),
        "tokens are 4, 8, …: {:?}",
        allowed.logs
    );

    let denied = plugin
        .http_request(mtls(), Request::get("/").header("x-user", "mallory"))
        .unwrap();
    assert_eq!(denied.status(), Some(403));
    let reset = plugin
        .http_request(mtls(), Request::get("/").header("x-user", "reset"))
        .unwrap();
    assert_eq!(reset.status(), Some(503));
    assert!(
        logged(&reset, "failed: 11 Some(\"reset\")"),
        "{:?}",
        reset.logs
    );
}

/// Envoy: proxy_http_call to an unknown cluster is BAD_ARGUMENT at call time.
#[test]
fn http_call_to_an_unknown_cluster_fails_at_dispatch() {
    let mut plugin = host("http_auth").configure("").unwrap();
    let out = plugin.http_request(mtls(), Request::get("/")).unwrap();
    assert_eq!(out.status(), Some(500));
    assert!(logged(&out, "dispatch failed: BadArgument"));
}

/// A headers-phase Pause that nothing resumes stops the stream: no upstream, no response
/// (Envoy would time it out); host-sim reports where it stalled.
#[test]
fn a_pause_never_resumed_is_reported() {
    let mut plugin = host("http_auth").configure("").unwrap();
    plugin.on_http_call(|_| CallResponse::NoAnswer);
    let out = plugin.http_request(mtls(), Request::get("/")).unwrap();
    assert_eq!(out.stalled, Some(Stalled::RequestHeaders));
    assert!(!out.allowed());
    assert_eq!(out.local_response, None);
}

// ---- bodies ----

/// Envoy StopIterationAndBuffer: each body callback sees the whole buffered body; Continue at
/// end_of_stream sends the (rewritten) buffer upstream.
#[test]
fn body_is_buffered_until_end_of_stream() {
    let mut plugin = host("body_buffer").configure("").unwrap();
    let out = plugin
        .http_request(
            mtls(),
            Request::post("/upload")
                .body_chunks(vec![b"hello ".to_vec(), b"world".to_vec()])
                .upstream_response(Response::ok("from upstream")),
        )
        .unwrap();
    assert!(logged(&out, "6 bytes buffered, end_of_stream=false"));
    assert!(logged(&out, "11 bytes buffered, end_of_stream=true"));
    assert_eq!(out.upstream_request.as_ref().unwrap().body, "[checked]");

    let denied = plugin
        .http_request(
            mtls(),
            Request::post("/upload").body_chunks(vec![b"forbid".to_vec(), b"den".to_vec()]),
        )
        .unwrap();
    assert_eq!(denied.status(), Some(403));
    assert!(!denied.allowed());
}

/// A body Pause at end_of_stream with nothing resuming it: the stream stalls.
#[test]
fn body_pause_at_end_of_stream_stalls() {
    let mut plugin = host("body_buffer").configure("").unwrap();
    let out = plugin
        .http_request(mtls(), Request::post("/").body("x").trailer("x-t", "1"))
        .unwrap();
    // With trailers, the last body chunk is not end_of_stream: the fixture pauses and the
    // trailers callback (SDK default Continue) releases the buffered body.
    assert!(out.allowed());
    assert_eq!(out.upstream_request.as_ref().unwrap().body, "x");
    assert_eq!(out.stalled, None::<Stalled>);
}

// ---- timers, metrics, shared data, queues ----

/// SDK hello_world: on_vm_start logs and sets a 5 s tick; ticks come one period after setting,
/// driven by the test clock; metrics, shared data (with cas) and queues work.
#[test]
fn ticks_follow_the_test_clock() {
    let start = 1_700_000_000_000_000_000u64;
    let host = Host::builder()
        .wasm_file(fixture("hello_world"))
        .clock_at(start)
        .canary(false)
        .build()
        .unwrap();
    let mut plugin = host.configure("").unwrap();
    assert!(plugin
        .configure_logs()
        .iter()
        .any(|l| l.message == "Hello, World!"));
    assert_eq!(plugin.tick_period(), Some(Duration::from_secs(5)));
    let none = plugin.advance_time(Duration::from_millis(4999));
    assert_eq!(none.ticks, 0);
    let one = plugin.advance_time(Duration::from_millis(1));
    assert_eq!(one.ticks, 1);
    assert!(
        one.logs
            .iter()
            .any(|l| l.message == "tick 1 at unix 1700000005"),
        "{:?}",
        one.logs
    );
    assert!(one.logs.iter().any(|l| l.message == "stale cas refused"));
    assert!(
        one.logs.iter().any(|l| l.message == "dequeued tick 1"),
        "queue ready delivered after the tick"
    );
    assert!(one
        .logs
        .iter()
        .any(|l| l.message == "histograms cannot be incremented"));
    let more = plugin.advance_time(Duration::from_secs(60));
    assert_eq!(more.ticks, 2, "the plugin stops its timer at tick 3");
    assert_eq!(plugin.tick_period(), None);
    assert_eq!(plugin.counter("hello.ticks"), Some(3));
    assert_eq!(
        plugin.metric("hello.last_tick"),
        Some(MetricValue::Gauge(3))
    );
    assert_eq!(
        plugin.metric("hello.tick_ms"),
        Some(MetricValue::Histogram(vec![5000, 10000, 15000]))
    );
    assert_eq!(plugin.shared_data("ticks"), Some(b"3".to_vec()));
}

// ---- TCP ----

/// proxy-wasm-abi.md §4.3: decide on the first data; `proxy_close_stream(DOWNSTREAM)` closes
/// the connection; done before log for TCP.
#[test]
fn tcp_connections_are_closed_by_the_plugin() {
    let host = host("tcp_guard");
    let mut plugin = host.configure("").unwrap();
    let mut conn = plugin.tcp_connection(mtls()).unwrap();
    let first = conn.data(b"hello ");
    assert!(!first.connection_closed);
    assert_eq!(first.forwarded, "hello ");
    assert!(first.logs.iter().any(|l| l
        .message
        .contains("peer Some(\"spiffe://cluster.local/ns/a/sa/b\") mtls [1]")));
    let second = conn.data(b"please deny");
    assert!(second.connection_closed);
    assert_eq!(second.forwarded, "hello ", "denied bytes are not forwarded");
    let end = conn.close();
    let order: Vec<&str> = end.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(
        order.iter().any(|m| m.ends_with("downstream closed by 1")),
        "LOCAL close: {order:?}"
    );
    assert_eq!(plugin.counter("tcp_guard.bytes"), Some(17));

    let plaintext = plugin
        .tcp_connection(Connection::plaintext())
        .unwrap()
        .data(b"x");
    assert!(plaintext.connection_closed);
}

// ---- loading ----

/// cpp-host: a module without the ABI marker does not load; unknown imports are link errors.
#[test]
fn modules_that_envoy_would_refuse_are_refused_with_clear_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "no abi marker",
            r#"(module (memory (export "memory") 1))"#,
            "not a proxy-wasm module",
        ),
        (
            "abi 0.1.0",
            r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_1_0")))"#,
            "0.1.0 is not supported",
        ),
        (
            "no allocator",
            r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1")))"#,
            "neither malloc nor proxy_on_memory_allocate",
        ),
        (
            "unknown import",
            r#"(module (import "env" "proxy_teleport" (func (param i32) (result i32)))
                (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1"))
                (func (export "malloc") (param i32) (result i32) i32.const 0))"#,
            "env.proxy_teleport (func (i32) -> (i32))",
        ),
    ];
    for (name, wat, want) in cases {
        let err = Host::builder()
            .wasm_bytes(wat.as_bytes(), name)
            .build()
            .err()
            .unwrap();
        assert!(err.to_string().contains(want), "{name}: {err}");
    }
}

// ---- hostile guests ----

const BAD_POINTERS: &str = r#"(module
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response"
    (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) ":path")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $reply
      (i32.add (i32.const 400)
        (i32.add
          (call $get (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 0x7ffffff0) (i32.const 0x7ffffff4))
          (i32.mul (i32.const 10) (call $log (i32.const 2) (i32.const 0xfffffff0) (i32.const 100)))))
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)))
    i32.const 1))"#;

/// cpp-host: any unreadable or unwritable guest address is INVALID_MEMORY_ACCESS (6), never a
/// host crash. The module replies 400 + get_header_map_value's status + 10 x proxy_log's.
#[test]
fn bad_guest_pointers_get_invalid_memory_access() {
    let host = Host::builder()
        .wasm_bytes(BAD_POINTERS.as_bytes(), "bad-pointers.wat")
        .build()
        .unwrap();
    let mut plugin = host.configure("").unwrap();
    let out = plugin.http_request(mtls(), Request::get("/")).unwrap();
    assert_eq!(out.status(), Some(466), "{:?}", out);
    assert_eq!(out.vm_failure, None);
}

/// host-sim bounds guest time (Envoy does not): a loop runs out of fuel, which is a trap.
#[test]
fn a_guest_loop_runs_out_of_fuel_and_fails_the_vm() {
    let looping = r#"(module
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "malloc") (param i32) (result i32) i32.const 1024)
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (loop $l (br $l)) i32.const 0))"#;
    let host = Host::builder()
        .wasm_bytes(looping.as_bytes(), "loop.wat")
        .fuel_per_callback(1_000_000)
        .build()
        .unwrap();
    let mut plugin = host.configure("").unwrap();
    let out = plugin.http_request(mtls(), Request::get("/")).unwrap();
    let failure = out.vm_failure.clone().unwrap();
    assert_eq!(failure.callback, "proxy_on_request_headers");
    assert!(failure.message.contains("ran out of fuel"), "{failure}");
    assert_eq!(out.status(), Some(503));
}

/// envoy-properties.md §4.2/4.4: XFCC is rewritten before the filter chain; with Istio's
/// sidecar APPEND_FORWARD the filter sees the client's elements first and ours last.
#[test]
fn the_filter_sees_xfcc_after_the_hcm_rewrote_it() {
    let host = Host::builder()
        .wasm_file(fixture("http_headers"))
        .xfcc(Xfcc::AppendForward(XfccDetails::ISTIO))
        .build()
        .unwrap();
    let mut plugin = host.configure("").unwrap();
    let conn = mtls().local_uri_san("spiffe://cluster.local/ns/foo/sa/httpbin");
    let out = plugin
        .http_request(
            conn,
            Request::get("/").header("x-forwarded-client-cert", "URI=spiffe://forged"),
        )
        .unwrap();
    assert!(
        logged(
            &out,
            "-> x-forwarded-client-cert: URI=spiffe://forged,By=spiffe://cluster.local/ns/foo/sa/httpbin;\
             Subject=\"\";URI=spiffe://cluster.local/ns/a/sa/b"
        ),
        "{:?}",
        out.logs
    );
    let plaintext = plugin
        .http_request(
            Connection::plaintext(),
            Request::get("/").header("x-forwarded-client-cert", "URI=spiffe://forged"),
        )
        .unwrap();
    assert!(
        !logged(&plaintext, "x-forwarded-client-cert"),
        "removed on plaintext"
    );
}

/// Tracing lists every host function a request made, in order (the pass-through floor makes
/// none beyond what the SDK needs).
#[test]
fn hostcalls_can_be_traced_per_request() {
    let host = Host::builder()
        .wasm_file(fixture("http_headers"))
        .trace_hostcalls(true)
        .build()
        .unwrap();
    let mut plugin = host.configure("").unwrap();
    let out = plugin.http_request(mtls(), Request::get("/deny")).unwrap();
    assert_eq!(out.hostcall_trace.len() as u64, out.hostcalls);
    assert_eq!(out.hostcall_trace.first(), Some(&"proxy_log"));
    assert!(out.hostcall_trace.contains(&"proxy_send_local_response"));
    assert!(out.hostcall_trace.contains(&"proxy_get_header_map_pairs"));
    let floor = Host::builder()
        .wasm_file(fixture("pass_through"))
        .trace_hostcalls(true)
        .build()
        .unwrap();
    let out = floor
        .configure("")
        .unwrap()
        .http_request(mtls(), Request::get("/"))
        .unwrap();
    assert_eq!(out.hostcall_trace, Vec::<&str>::new());
}

/// Envoy `sendLocalReply` for a gRPC request: a trailers-only HTTP 200 with `grpc-status`
/// mapped from the HTTP code (403 -> 7 PERMISSION_DENIED) and the body as `grpc-message`.
#[test]
fn local_replies_to_grpc_requests_are_trailers_only() {
    let mut plugin = host("http_headers").configure("").unwrap();
    let out = plugin
        .http_request(
            mtls(),
            Request::post("/deny.Service/Method").header("content-type", "application/grpc"),
        )
        .unwrap();
    let reply = out.local_response.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.grpc_status, Some(7));
    assert_eq!(
        reply.headers.get("grpc-status").map(String::as_str),
        Some("7")
    );
    assert_eq!(
        reply.headers.get("grpc-message").map(String::as_str),
        Some("Access forbidden.%0A")
    );
    assert_eq!(reply.body, "");
}

/// proxy-wasm-abi.md §4.8: on a failed VM Envoy closes TCP connections (fail closed) and skips
/// the filter for them (fail open).
#[test]
fn tcp_connections_on_a_failed_vm_close_unless_fail_open() {
    for (fail_open, closed) in [(false, true), (true, false)] {
        let host = Host::builder()
            .wasm_file(fixture("http_headers"))
            .fail_open(fail_open)
            .build()
            .unwrap();
        let mut plugin = host.configure("").unwrap();
        plugin
            .http_request(mtls(), Request::get("/").header("x-panic", "1"))
            .unwrap();
        let step = plugin.tcp_connection(mtls()).unwrap().data(b"bytes");
        assert_eq!(step.connection_closed, closed, "fail_open={fail_open}");
        assert_eq!(
            step.forwarded,
            if closed { "" } else { "bytes" },
            "fail_open={fail_open}"
        );
        assert_eq!(step.hostcalls, 0);
    }
}

const BUFFER_RULES: &str = r#"(module
  (import "env" "proxy_set_buffer_bytes" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $prop (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "AB")
  (data (i32.const 300) "statuses")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) i32.const 1024)
  (func $digit (param $at i32) (param $status i32)
    (i32.store8 (local.get $at) (i32.add (i32.const 48) (local.get $status))))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (call $digit (i32.const 200) (call $set (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 1)))
    (call $digit (i32.const 201) (call $set (i32.const 0) (i32.const 1000) (i32.const 0) (i32.const 101) (i32.const 1)))
    (call $digit (i32.const 202) (call $set (i32.const 0) (i32.const 1) (i32.const 1) (i32.const 100) (i32.const 1)))
    (call $digit (i32.const 203) (call $set (i32.const 6) (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 1)))
    (call $digit (i32.const 204) (call $get (i32.const 9) (i32.const 0) (i32.const 10) (i32.const 400) (i32.const 404)))
    (call $digit (i32.const 205) (call $get (i32.const 0) (i32.const -1) (i32.const 2) (i32.const 400) (i32.const 404)))
    (drop (call $prop (i32.const 300) (i32.const 8) (i32.const 200) (i32.const 6)))
    i32.const 0))"#;

/// proxy-wasm-abi.md §5 Buffers: Envoy's body buffers take prepend (start 0, size 0), append
/// (start >= length) and replace only; a middle edit, an immutable buffer (VM configuration),
/// a buffer type > 8 and an overflowing start + max_size are BAD_ARGUMENT (2).
#[test]
fn body_buffer_edits_follow_envoys_rules() {
    let host = Host::builder()
        .wasm_bytes(BUFFER_RULES.as_bytes(), "buffers.wat")
        .build()
        .unwrap();
    let mut plugin = host.configure("").unwrap();
    let out = plugin
        .http_request(mtls(), Request::post("/").body("xyz"))
        .unwrap();
    assert_eq!(
        out.filter_state.get("wasm.statuses").map(String::as_str),
        Some("002222")
    );
    assert_eq!(out.upstream_request.unwrap().body, "AxyzB");
}

const PHASES: &str = r#"(module
  (import "env" "proxy_get_property" (func $getp (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $setp (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $hval (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value"
    (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 500) "request\00path")
  (data (i32.const 520) ":path")
  (data (i32.const 530) "x-s")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) i32.const 2048)
  (func $digit (param $at i32) (param $status i32)
    (i32.store8 (local.get $at) (i32.add (i32.const 48) (local.get $status))))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (call $digit (i32.const 210) (call $setp (i32.const 530) (i32.const 3) (i32.const 520) (i32.const 1)))
    (call $digit (i32.const 211) (call $buf (i32.const 7) (i32.const 0) (i32.const 100) (i32.const 400) (i32.const 404)))
    i32.const 1)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $digit (i32.const 212) (call $getp (i32.const 500) (i32.const 12) (i32.const 400) (i32.const 404)))
    (call $digit (i32.const 213) (call $buf (i32.const 7) (i32.const 0) (i32.const 100) (i32.const 400) (i32.const 404)))
    i32.const 0)
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (call $digit (i32.const 214) (call $getp (i32.const 500) (i32.const 12) (i32.const 400) (i32.const 404)))
    (call $digit (i32.const 215) (call $hval (i32.const 0) (i32.const 520) (i32.const 5) (i32.const 400) (i32.const 404)))
    (drop (call $pairs (i32.const 0) (i32.const 400) (i32.const 404)))
    (call $digit (i32.const 216) (i32.load (i32.const 404)))
    (drop (call $replace (i32.const 2) (i32.const 530) (i32.const 3) (i32.const 210) (i32.const 7)))
    i32.const 0))"#;

/// Phase-bound access (proxy-wasm-abi.md §4.2, §5; envoy-properties.md §1.4): the plugin
/// configuration is readable only in on_configure (then NOT_FOUND); set_property needs a stream
/// (root: NOT_FOUND); `request.*` and request header values are gone in response callbacks
/// (NOT_FOUND, BAD_ARGUMENT) and the pairs read as an empty map.
#[test]
fn maps_buffers_and_request_properties_are_bound_to_their_phase() {
    let host = Host::builder()
        .wasm_bytes(PHASES.as_bytes(), "phases.wat")
        .canary(false)
        .build()
        .unwrap();
    let mut plugin = host.configure("cfg").unwrap();
    let out = plugin.http_request(mtls(), Request::get("/x")).unwrap();
    //                                 root set_property, config in configure, request.path
    //                                 in headers, config later, request.path in response,
    //                                 :path value in response, pairs size in response
    assert_eq!(out.response_header_changes.get("x-s"), Some("1001120"));
}

/// Envoy filters plugin log lines by its `wasm` logger level (default info).
#[test]
fn log_lines_below_the_host_level_are_dropped() {
    let quiet = Host::builder()
        .wasm_file(fixture("http_headers"))
        .log_level(LogLevel::Warn)
        .build()
        .unwrap();
    let mut plugin = quiet.configure("").unwrap();
    let out = plugin.http_request(mtls(), Request::get("/")).unwrap();
    assert!(out.logs.is_empty(), "{:?}", out.logs);
    let mut chatty = host("http_headers").configure("").unwrap();
    let out = chatty.http_request(mtls(), Request::get("/")).unwrap();
    assert!(out.logs.iter().all(|l| l.level == LogLevel::Info) && !out.logs.is_empty());
}
