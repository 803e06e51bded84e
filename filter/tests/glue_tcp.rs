//! The network-filter path: decide at the first data (Envoy's network RBAC filter does, in
//! onData, because the TLS handshake may not be done at accept), close on deny.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use spiffe_authz::config::LogLevel;
use spiffe_authz::glue::fake::FakeHost;
use spiffe_authz::glue::plugin::COUNTER_DENIED;
use spiffe_authz::glue::{Action, Root};

fn root_with(config: &str) -> (Root, FakeHost) {
    let host = FakeHost::new();
    host.set_configuration(config);
    let mut root = Root::new();
    assert!(root.on_configure(&host), "{:?}", host.logs.borrow());
    host.take_calls();
    host.logs.borrow_mut().clear();
    (root, host)
}

const STRICT: &str = r#"{"workload": {"namespace": "demo"}, "mtlsMode": "STRICT", "policies": []}"#;

#[test]
fn nothing_is_asked_at_accept_time() {
    // rbac_filter.cc (network): the decision waits for data; the peer cert may not exist yet.
    let (root, host) = root_with(STRICT);
    let mut conn = root.new_tcp_stream();
    assert_eq!(conn.on_new_connection(&host), Action::Continue);
    assert!(host.take_calls().is_empty());
}

#[test]
fn a_denied_connection_is_closed_once_and_held() {
    let (root, host) = root_with(STRICT);
    host.set_property("connection.mtls", vec![0]);
    host.set_property("source.address", "10.0.0.1:43210");
    let mut conn = root.new_tcp_stream();
    conn.on_new_connection(&host);
    assert_eq!(conn.on_downstream_data(&host), Action::Pause);
    assert_eq!(conn.on_downstream_data(&host), Action::Pause);
    assert_eq!(conn.on_upstream_data(&host), Action::Pause);
    assert_eq!(host.closed_downstream.get(), 1);
    assert_eq!(host.counter(COUNTER_DENIED), 1);
    let lines = host.logs_at_least(LogLevel::Info);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("spiffe-authz: denied connection"),
        "{lines:?}"
    );
}

#[test]
fn server_first_bytes_are_held_until_decided() {
    // A server-first protocol must not leak bytes to an unauthorized client.
    let (root, host) = root_with(STRICT);
    host.set_property("connection.mtls", vec![0]);
    let mut conn = root.new_tcp_stream();
    assert_eq!(conn.on_upstream_data(&host), Action::Pause);
    assert_eq!(host.closed_downstream.get(), 1);
}

#[test]
fn without_a_configuration_connections_are_closed() {
    let host = FakeHost::new();
    let root = Root::new();
    let mut conn = root.new_tcp_stream();
    assert_eq!(conn.on_downstream_data(&host), Action::Pause);
    assert_eq!(host.closed_downstream.get(), 1);
}
