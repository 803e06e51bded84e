//! The released `.wasm` in host-sim: configuration (rejected, updated, from node metadata) and
//! every identity source.

use host_sim::certs::{BadLeaf, MeshPki};
use host_sim::{Connection, Error, Host, Request};
use integration_tests::filter_wasm;

/// Envoy gives every downstream connection its own id (a process-wide counter), and the plugin
/// caches per-connection facts by it; host-sim's default id is the same for every connection,
/// so each test connection gets a fresh one here.
fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

const ALLOW_FRONTEND: &str = r#"{"workload": {"namespace": "demo"}, IDENTITY "policies": [
    {"metadata": {"name": "allow-frontend", "namespace": "demo"},
     "spec": {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/demo/sa/frontend"]}}]}]}}]}"#;

fn host() -> Host {
    Host::builder()
        .wasm_file(filter_wasm())
        .build()
        .expect("the filter loads")
}

#[test]
fn a_bad_configuration_is_rejected_with_every_error_logged() {
    let err = host()
        .configure(r#"{"mtlsMode": "SOMETIMES", "trustDomian": "x", "policies": [{"spec": {"action": "CUSTOM"}}]}"#)
        .err()
        .expect("rejected");
    let Error::ConfigurationRejected { logs, .. } = err else {
        panic!("expected a rejected configuration, got {err}");
    };
    let errors: Vec<_> = logs
        .iter()
        .filter(|l| {
            l.message
                .starts_with("spiffe-authz: configuration rejected: ")
        })
        .map(|l| l.message.as_str())
        .collect();
    for field in ["mtlsMode: ", "trustDomian: ", "policies: "] {
        assert!(
            errors.iter().any(|l| l.contains(field)),
            "{field} missing: {errors:?}"
        );
    }
}

#[test]
fn an_update_replaces_the_configuration_and_a_bad_one_changes_nothing() {
    let mut p = host()
        .configure(ALLOW_FRONTEND.replace("IDENTITY", ""))
        .expect("accepted");
    let frontend = || Connection::mtls("spiffe://cluster.local/ns/demo/sa/frontend").id(next_id());
    let other = || Connection::mtls("spiffe://cluster.local/ns/demo/sa/other").id(next_id());
    assert!(p
        .http_request(frontend(), Request::get("/"))
        .unwrap()
        .allowed());
    assert!(!p
        .http_request(other(), Request::get("/"))
        .unwrap()
        .allowed());

    // Rejected: the old policies stay in force.
    assert!(p
        .reconfigure(r#"{"policies": [], "denyResponse": {"status": 200}}"#)
        .is_err());
    assert!(p
        .http_request(frontend(), Request::get("/"))
        .unwrap()
        .allowed());
    assert!(!p
        .http_request(other(), Request::get("/"))
        .unwrap()
        .allowed());

    // Accepted: the new ones apply at once.
    p.reconfigure(
        ALLOW_FRONTEND
            .replace("IDENTITY", "")
            .replace("/sa/frontend", "/sa/other"),
    )
    .expect("accepted");
    assert!(!p
        .http_request(frontend(), Request::get("/"))
        .unwrap()
        .allowed());
    assert!(p
        .http_request(other(), Request::get("/"))
        .unwrap()
        .allowed());
    assert_eq!(p.vm_failure(), None);
}

#[test]
fn the_workload_comes_from_istio_node_metadata() {
    let config = r#"{"policies": [
        {"metadata": {"name": "only-backend", "namespace": "demo"},
         "spec": {"selector": {"matchLabels": {"app": "backend"}}, "action": "DENY", "rules": [{}]}}]}"#;
    for (labels, denied) in [("backend", true), ("frontend", false)] {
        let host = Host::builder()
            .wasm_file(filter_wasm())
            .node_metadata("demo", [("app", labels)])
            .build()
            .unwrap();
        let mut p = host.configure(config).expect("accepted with node metadata");
        let out = p
            .http_request(Connection::plaintext().id(next_id()), Request::get("/"))
            .unwrap();
        assert_eq!(!out.allowed(), denied, "app={labels}");
    }
    // No metadata and no `workload`: rejected (a standalone Envoy must configure it).
    assert!(host().configure(config).is_err());
}

#[test]
fn every_identity_source_through_the_real_module() {
    let now: i64 = 1_767_225_600;
    let mut pki = MeshPki::new("cluster.local", now).unwrap();
    let ca = pki.intermediate("cluster1").unwrap();
    let frontend = pki.workload(&ca, "demo", "frontend").unwrap();
    let expired = pki.bad_leaf(&ca, BadLeaf::Expired).unwrap();
    let host = Host::builder()
        .wasm_file(filter_wasm())
        .clock_at(now as u64 * 1_000_000_000)
        .build()
        .unwrap();
    let configure = |sources: &str| {
        host.configure(ALLOW_FRONTEND.replace("IDENTITY", sources))
            .expect("accepted")
    };
    let cases: Vec<(&str, &str, Connection, Request, bool)> = vec![
        (
            "connectionAttributes: connection.uri_san_peer_certificate",
            r#""identitySources": ["connectionAttributes"],"#,
            Connection::mtls(&frontend.spiffe_id).id(next_id()),
            Request::get("/"),
            true,
        ),
        (
            "connectionAttributes: plaintext is unauthenticated",
            r#""identitySources": ["connectionAttributes"],"#,
            Connection::plaintext().id(next_id()),
            Request::get("/"),
            false,
        ),
        (
            "peerCertificate: connection.peer_certificate verified as an X.509-SVID",
            r#""identitySources": ["peerCertificate"],"#,
            Connection::mtls_without_uri_san()
                .id(next_id())
                .peer_certificate_pem(&frontend.pem.cert),
            Request::get("/"),
            true,
        ),
        (
            "peerCertificate: an expired SVID is unauthenticated",
            r#""identitySources": ["peerCertificate"],"#,
            Connection::mtls_without_uri_san()
                .id(next_id())
                .peer_certificate_pem(&expired.cert),
            Request::get("/"),
            false,
        ),
        (
            "xfcc: the last element Envoy appended",
            r#""identitySources": ["xfcc"],"#,
            Connection::mtls("spiffe://cluster.local/ns/demo/sa/other").id(next_id()),
            Request::get("/").header(
                "x-forwarded-client-cert",
                &format!(
                    "By=spiffe://cluster.local/ns/demo/sa/backend;URI={}",
                    frontend.spiffe_id
                ),
            ),
            true,
        ),
        (
            "xfcc: a forged header on plaintext is ignored",
            r#""identitySources": ["xfcc"],"#,
            Connection::plaintext().id(next_id()),
            Request::get("/").header(
                "x-forwarded-client-cert",
                &format!("URI={}", frontend.spiffe_id),
            ),
            false,
        ),
    ];
    for (behaviour, sources, connection, request, allowed) in cases {
        let mut p = configure(sources);
        let out = p.http_request(connection, request).unwrap();
        assert_eq!(out.allowed(), allowed, "{behaviour}: {:?}", out.logs);
        assert_eq!(out.vm_failure, None, "{behaviour}");
    }
}

#[test]
fn strict_mtls_denies_plaintext_before_policies() {
    let mut p = host()
        .configure(r#"{"workload": {"namespace": "demo"}, "mtlsMode": "STRICT", "policies": []}"#)
        .unwrap();
    let out = p
        .http_request(Connection::plaintext().id(next_id()), Request::get("/"))
        .unwrap();
    let r = out.local_response.expect("denied");
    assert_eq!(
        (r.status, r.details.as_str()),
        (403, "spiffe_authz_mtls_required")
    );
    let out = p
        .http_request(
            Connection::mtls("spiffe://cluster.local/ns/a/sa/b").id(next_id()),
            Request::get("/"),
        )
        .unwrap();
    assert!(out.allowed(), "no policies: allowed, as in Istio");
}
