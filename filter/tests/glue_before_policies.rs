//! What the glue denies before any policy runs, each with its own response code details, log
//! line and counter: a peer whose presented identity fails verification (any `mtlsMode`), and
//! a request header map Envoy's codecs would have refused. And what it does NOT deny there:
//! a peer that presented nothing stays unauthenticated in PERMISSIVE, for policies to decide.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

#[path = "identity_support/mod.rs"]
mod identity_support;

use identity_support::{ca, url_encode, Leaf, HOUR, NOW};
use spiffe_authz::config::LogLevel;
use spiffe_authz::glue::fake::FakeHost;
use spiffe_authz::glue::http::{
    DETAILS_INVALID_PEER_IDENTITY, DETAILS_MALFORMED_HEADERS, DETAILS_MTLS_REQUIRED,
};
use spiffe_authz::glue::plugin::{COUNTER_DENIED, COUNTER_INVALID_PEER_IDENTITY};
use spiffe_authz::glue::{Action, Root};

const FRONTEND: &str = "spiffe://cluster.local/ns/demo/sa/frontend";
const EVIL: &str = "spiffe://cluster.local/ns/demo/sa/evil";
const BACKEND: &str = "spiffe://cluster.local/ns/demo/sa/backend";
const XFCC: &str = "x-forwarded-client-cert";

/// Request headers beyond the pseudo-headers, as raw bytes (names and values a host may hand
/// over, whether Envoy would or not).
type Extra<'a> = Vec<(&'a [u8], &'a [u8])>;

/// DENY evil, and nothing else: whoever is not evil is allowed, so an invalid peer that were
/// evaluated as unauthenticated would be allowed too.
const DENY_EVIL: &str = r#"[{"metadata": {"name": "deny-evil", "namespace": "demo"},
    "spec": {"action": "DENY", "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/demo/sa/evil"]}}]}]}}]"#;
/// Policies that read no identity (issue #5): an invalid peer must be denied all the same.
const NO_POLICIES: &str = "[]";
const DENY_DEBUG_ONLY: &str = r#"[{"metadata": {"name": "deny-debug", "namespace": "demo"},
    "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/debug/*"]}}]}]}}]"#;

fn config(mtls_mode: &str, sources: &str) -> String {
    config_with(mtls_mode, sources, DENY_EVIL)
}

fn config_with(mtls_mode: &str, sources: &str, policies: &str) -> String {
    format!(
        r#"{{"workload": {{"namespace": "demo"}}, "mtlsMode": "{mtls_mode}",
            "identitySources": {sources}, "policies": {policies}}}"#
    )
}

/// The downstream connection as the host reports it.
#[derive(Clone, Default)]
struct Peer {
    mtls: bool,
    uri_san: Option<Vec<u8>>,
    peer_certificate: Option<String>,
}

impl Peer {
    fn plaintext() -> Peer {
        Peer::default()
    }
    fn uri(uri: &str) -> Peer {
        Peer {
            mtls: true,
            uri_san: Some(uri.as_bytes().to_vec()),
            ..Peer::default()
        }
    }
    fn certificate(pem: String) -> Peer {
        Peer {
            mtls: true,
            peer_certificate: Some(pem),
            ..Peer::default()
        }
    }
    fn mtls_without_uri() -> Peer {
        Peer {
            mtls: true,
            ..Peer::default()
        }
    }
}

struct Run {
    host: FakeHost,
    action: Action,
}

impl Run {
    fn details(&self) -> Option<String> {
        self.host
            .local_responses
            .borrow()
            .first()
            .map(|r| r.details.clone())
    }
}

fn http(config: &str, peer: &Peer, extra: &[(&[u8], &[u8])]) -> Run {
    let host = FakeHost::new();
    host.set_configuration(config);
    let mut root = Root::new();
    assert!(root.on_configure(&host), "{:?}", host.logs.borrow());
    host.logs.borrow_mut().clear();
    connect(&host, peer);
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b":authority".to_vec(), b"backend.demo.svc:8000".to_vec()),
        (b":path".to_vec(), b"/api".to_vec()),
        (b":method".to_vec(), b"GET".to_vec()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_vec(), v.to_vec())));
    *host.request_headers.borrow_mut() = headers;
    let action = root.new_http_stream().on_request_headers(&host);
    Run { host, action }
}

fn connect(host: &FakeHost, peer: &Peer) {
    host.now_nanos.set(NOW * 1_000_000_000);
    host.set_property("connection_id", 1u64.to_le_bytes().to_vec());
    host.set_property("connection.mtls", vec![u8::from(peer.mtls)]);
    if let Some(uri) = &peer.uri_san {
        host.set_property("connection.uri_san_peer_certificate", uri.clone());
    }
    if let Some(pem) = &peer.peer_certificate {
        host.set_property("connection.peer_certificate", pem.clone());
    }
}

/// Every `(behaviour, mtlsMode, identitySources, peer, extra headers, what the log reason says)`
/// that must be denied as an invalid peer.
#[test]
fn a_presented_identity_that_fails_verification_is_denied_before_policies() {
    let ca = ca();
    let pem = |leaf: Leaf| url_encode(&leaf.pem(&ca));
    let expired_evil = pem(Leaf {
        not_before: -2 * HOUR,
        not_after: -HOUR,
        ..Leaf::svid(EVIL)
    });
    let not_yet_valid = pem(Leaf {
        not_before: HOUR,
        not_after: 2 * HOUR,
        ..Leaf::svid(EVIL)
    });
    let two_sans = pem(Leaf {
        uris: vec![FRONTEND.to_owned(), EVIL.to_owned()],
        ..Leaf::svid(FRONTEND)
    });
    let ca_leaf = pem(Leaf {
        is_ca: true,
        ..Leaf::svid(EVIL)
    });
    let certificate = r#"["peerCertificate"]"#;
    let attributes = r#"["connectionAttributes"]"#;
    let xfcc = r#"["xfcc"]"#;
    let envoy_element = format!("By={BACKEND};URI={EVIL}");
    let forged = format!("URI={FRONTEND}");
    let cases: Vec<(&str, &str, Peer, Extra<'_>, &str)> =
        vec![
        (
            "expired SVID of the denied identity (Istio: the handshake refuses it)",
            certificate,
            Peer::certificate(expired_evil.clone()),
            vec![],
            "certificate expired",
        ),
        (
            "SVID not valid yet",
            certificate,
            Peer::certificate(not_yet_valid),
            vec![],
            "not valid until",
        ),
        (
            "two URI SANs, one of them denied (Envoy's RBAC would match either)",
            certificate,
            Peer::certificate(two_sans),
            vec![],
            "2 URI SANs",
        ),
        (
            "a CA certificate as the peer's leaf (X509-SVID §5.2)",
            certificate,
            Peer::certificate(ca_leaf),
            vec![],
            "CA certificate",
        ),
        (
            "a URI SAN from a foreign trust domain (Istio: not federated, refused)",
            attributes,
            Peer::uri("spiffe://evil.example/ns/demo/sa/evil"),
            vec![],
            "neither the local trust domain nor an alias",
        ),
        (
            "a URI SAN that is not UTF-8",
            attributes,
            Peer {
                uri_san: Some(b"spiffe://cluster.local/ns/demo/sa/\xff".to_vec()),
                ..Peer::uri("")
            },
            vec![],
            "not a SPIFFE ID",
        ),
        (
            "malformed XFCC (unterminated quote)",
            xfcc,
            Peer::mtls_without_uri(),
            vec![(XFCC.as_bytes(), b"Subject=\"x;URI=spiffe://cluster.local/ns/demo/sa/evil")],
            "xfcc: byte",
        ),
        (
            "two XFCC lines: Envoy keeps one value, so one line is the client's",
            xfcc,
            Peer::mtls_without_uri(),
            vec![
                (XFCC.as_bytes(), forged.as_bytes()),
                (XFCC.as_bytes(), envoy_element.as_bytes()),
            ],
            "2 x-forwarded-client-cert header lines",
        ),
        (
            "two XFCC lines, one with its name in upper case (header names are case-insensitive)",
            xfcc,
            Peer::mtls_without_uri(),
            vec![
                (b"X-Forwarded-Client-Cert", forged.as_bytes()),
                (XFCC.as_bytes(), envoy_element.as_bytes()),
            ],
            "2 x-forwarded-client-cert header lines",
        ),
    ];
    // Whatever the policies read: identity validity is checked before them, so a config that
    // reads no identity cannot be dodged with a bad one either (fail closed).
    let policy_sets = [
        ("DENY on a principal", DENY_EVIL),
        ("policies: []", NO_POLICIES),
        ("a DENY on paths only", DENY_DEBUG_ONLY),
    ];
    for ((mtls_mode, (policy_set, policies)), (behaviour, sources, peer, extra, reason)) in
        ["PERMISSIVE", "STRICT"]
            .into_iter()
            .flat_map(|m| policy_sets.into_iter().map(move |p| (m, p)))
            .flat_map(|mp| cases.iter().map(move |c| (mp, c)))
    {
        let run = http(&config_with(mtls_mode, sources, policies), peer, extra);
        let context = format!(
            "{mtls_mode}, {policy_set}: {behaviour}: {:?}",
            run.host.logs.borrow()
        );
        assert_eq!(run.action, Action::Pause, "{context}");
        assert_eq!(
            run.details().as_deref(),
            Some(DETAILS_INVALID_PEER_IDENTITY),
            "{context}"
        );
        assert_eq!(
            run.host.counter(COUNTER_INVALID_PEER_IDENTITY),
            1,
            "{context}"
        );
        assert_eq!(run.host.counter(COUNTER_DENIED), 1, "{context}");
        let lines = run.host.logs_at_least(LogLevel::Info);
        assert_eq!(lines.len(), 1, "{context}");
        assert!(
            lines[0].starts_with("spiffe-authz: denied principal=invalid(")
                && lines[0].contains(reason)
                && lines[0].contains("policy=none")
                && lines[0].contains("failed verification"),
            "{context}"
        );
    }
    // Rule 1 guards the DENY: the same identity, valid, is denied by the policy itself.
    let run = http(
        &config("PERMISSIVE", certificate),
        &Peer::certificate(pem(Leaf::svid(EVIL))),
        &[],
    );
    assert_eq!(
        run.details().as_deref(),
        Some("rbac_access_denied_matched_policy[demo/deny-evil]")
    );
    assert_eq!(run.host.counter(COUNTER_INVALID_PEER_IDENTITY), 0);
}

#[test]
fn a_peer_that_presented_nothing_is_unauthenticated_in_permissive_only() {
    // Istio PeerAuthentication: PERMISSIVE accepts plaintext (policies see no principal),
    // STRICT refuses it; neither is an invalid identity.
    let attributes = r#"["connectionAttributes"]"#;
    let xfcc = r#"["xfcc"]"#;
    let cases: Vec<(&str, &str, Peer, Extra<'_>)> = vec![
        ("plaintext", attributes, Peer::plaintext(), vec![]),
        (
            "mTLS with a certificate without a URI SAN",
            attributes,
            Peer::mtls_without_uri(),
            vec![],
        ),
        (
            "plaintext with two forged XFCC lines: a plaintext request's XFCC is never read",
            xfcc,
            Peer::plaintext(),
            vec![
                (
                    XFCC.as_bytes(),
                    b"URI=spiffe://cluster.local/ns/demo/sa/frontend",
                ),
                (
                    XFCC.as_bytes(),
                    b"URI=spiffe://cluster.local/ns/demo/sa/admin",
                ),
            ],
        ),
        (
            "XFCC element with neither URI nor Cert (Envoy saw no URI SAN)",
            xfcc,
            Peer::mtls_without_uri(),
            vec![(
                XFCC.as_bytes(),
                b"By=spiffe://cluster.local/ns/demo/sa/backend;DNS=db",
            )],
        ),
    ];
    for (behaviour, sources, peer, extra) in &cases {
        let run = http(&config("PERMISSIVE", sources), peer, extra);
        assert_eq!(run.action, Action::Continue, "PERMISSIVE: {behaviour}");
        assert_eq!(run.host.counter(COUNTER_INVALID_PEER_IDENTITY), 0);
        let run = http(&config("STRICT", sources), peer, extra);
        assert_eq!(
            run.details().as_deref(),
            Some(DETAILS_MTLS_REQUIRED),
            "STRICT: {behaviour}"
        );
        assert_eq!(run.host.counter(COUNTER_INVALID_PEER_IDENTITY), 0);
    }
}

#[test]
fn tcp_closes_a_connection_whose_identity_fails_verification() {
    let ca = ca();
    let expired = url_encode(
        &Leaf {
            not_before: -2 * HOUR,
            not_after: -HOUR,
            ..Leaf::svid(EVIL)
        }
        .pem(&ca),
    );
    // Whatever the policies read (issue #5): none at all, or none on the identity.
    for (mtls_mode, policies) in ["PERMISSIVE", "STRICT"]
        .into_iter()
        .flat_map(|m| [DENY_EVIL, NO_POLICIES, DENY_DEBUG_ONLY].map(|p| (m, p)))
    {
        let label = &format!("{mtls_mode} {policies}");
        let host = FakeHost::new();
        host.set_configuration(&config_with(mtls_mode, r#"["peerCertificate"]"#, policies));
        let mut root = Root::new();
        assert!(root.on_configure(&host));
        host.logs.borrow_mut().clear();
        connect(&host, &Peer::certificate(expired.clone()));
        let mut tcp = root.new_tcp_stream();
        assert_eq!(tcp.on_downstream_data(&host), Action::Pause, "{label}");
        assert_eq!(host.closed_downstream.get(), 1, "{label}");
        assert_eq!(host.counter(COUNTER_INVALID_PEER_IDENTITY), 1, "{label}");
        let lines = host.logs_at_least(LogLevel::Info);
        assert!(
            lines.len() == 1 && lines[0].contains("denied connection principal=invalid("),
            "{label}: {lines:?}"
        );
    }
}

#[test]
fn a_header_map_envoy_would_refuse_is_denied_whatever_the_policies() {
    // CVE-2019-9900 (ISTIO-SECURITY-2019-001): NUL, CR and LF never reach filters from Envoy's
    // codecs; RFC 9113 §8.3: a repeated pseudo-header is malformed. Only a broken host sends
    // them, and judging one reading while the upstream takes another is a bypass.
    let allow_all = r#"{"workload": {"namespace": "demo"}, "policies": []}"#;
    let cases: Vec<(&str, Extra<'_>, &str)> = vec![
        (
            "NUL in a value",
            vec![(b"x-role", b"admin\0")],
            "its value contains NUL",
        ),
        (
            "CR in a value",
            vec![(b"x-role", b"admin\rx")],
            "its value contains CR",
        ),
        (
            "LF in a value",
            vec![(b"x-role", b"admin\nx-evil: 1")],
            "its value contains LF",
        ),
        (
            "NUL in a name",
            vec![(b"x-ro\0le", b"admin")],
            "its name contains NUL",
        ),
        (
            "a second :path",
            vec![(b":path", b"/admin")],
            "pseudo-header \":path\"",
        ),
        (
            "a second :path spelt in upper case",
            vec![(b":PATH", b"/admin")],
            "pseudo-header \":path\"",
        ),
    ];
    for (behaviour, extra, reason) in &cases {
        let run = http(allow_all, &Peer::plaintext(), extra);
        let context = format!("{behaviour}: {:?}", run.host.logs.borrow());
        assert_eq!(run.action, Action::Pause, "{context}");
        assert_eq!(
            run.details().as_deref(),
            Some(DETAILS_MALFORMED_HEADERS),
            "{context}"
        );
        assert_eq!(run.host.counter(COUNTER_DENIED), 1, "{context}");
        let lines = run.host.logs_at_least(LogLevel::Info);
        assert_eq!(lines.len(), 1, "{context}");
        assert!(lines[0].contains(reason), "{context}");
        // The log line is one line: the offending bytes are escaped, never written raw.
        assert!(
            !lines[0].contains(['\0', '\r', '\n']),
            "{context}: {:?}",
            lines[0]
        );
    }
}

#[test]
fn header_names_are_matched_lower_case_as_envoy_holds_them() {
    // Envoy's header maps are lower-case (HTTP/2 requires it; HTTP/1 names are lower-cased by
    // the codec), and HttpRequest.headers promises the engine lower-case names.
    let deny = r#"{"workload": {"namespace": "demo"}, "policies": [
        {"metadata": {"name": "deny-admin", "namespace": "demo"},
         "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]},
                                             {"when": [{"key": "request.headers[x-role]", "values": ["admin"]}]}]}}]}"#;
    let cases: Vec<(&str, Extra<'_>, Action)> = vec![
        (
            "X-Role in mixed case",
            vec![(b"X-Role", b"admin")],
            Action::Pause,
        ),
        (
            "lower-case x-role with another value",
            vec![(b"x-role", b"user")],
            Action::Continue,
        ),
    ];
    for (behaviour, extra, want) in &cases {
        let run = http(deny, &Peer::plaintext(), extra);
        assert_eq!(run.action, *want, "{behaviour}");
    }
    // A host that spells :path in upper case: still the path the policy guards.
    let host = FakeHost::new();
    host.set_configuration(deny);
    let mut root = Root::new();
    assert!(root.on_configure(&host));
    connect(&host, &Peer::plaintext());
    *host.request_headers.borrow_mut() = vec![
        (b":authority".to_vec(), b"backend".to_vec()),
        (b":PATH".to_vec(), b"/admin".to_vec()),
        (b":Method".to_vec(), b"GET".to_vec()),
    ];
    assert_eq!(
        root.new_http_stream().on_request_headers(&host),
        Action::Pause
    );
    assert_eq!(
        host.local_responses.borrow()[0].details,
        "rbac_access_denied_matched_policy[demo/deny-admin]"
    );
}
