//! Every identity source through the glue: which host facts it reads, and that the first
//! source with data decides (identity::establish), with the host clock for certificates.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

#[path = "identity_support/mod.rs"]
mod identity_support;

use identity_support::{ca, url_encode, Leaf, HOUR, NOW};
use spiffe_authz::glue::fake::FakeHost;
use spiffe_authz::glue::{Action, Root};

const FRONTEND: &str = "spiffe://cluster.local/ns/demo/sa/frontend";
const OTHER: &str = "spiffe://cluster.local/ns/demo/sa/other";

fn config(sources: &str) -> String {
    format!(
        r#"{{"workload": {{"namespace": "demo"}}, {sources} "policies": [
        {{"metadata": {{"name": "allow-frontend", "namespace": "demo"}},
          "spec": {{"rules": [{{"from": [{{"source": {{"principals": ["cluster.local/ns/demo/sa/frontend"]}}}}]}}]}}}}]}}"#
    )
}

struct Peer<'a> {
    mtls: bool,
    uri_san: Option<&'a str>,
    peer_certificate: Option<String>,
    xfcc: Option<String>,
}

const PLAIN: Peer<'static> = Peer {
    mtls: false,
    uri_san: None,
    peer_certificate: None,
    xfcc: None,
};

fn decide(sources: &str, peer: &Peer<'_>) -> (Action, Vec<String>) {
    let host = FakeHost::new();
    host.set_configuration(&config(sources));
    let mut root = Root::new();
    assert!(root.on_configure(&host), "{:?}", host.logs.borrow());
    host.take_calls();
    host.now_nanos.set(NOW * 1_000_000_000);
    host.set_property("connection.mtls", vec![u8::from(peer.mtls)]);
    if let Some(uri) = peer.uri_san {
        host.set_property("connection.uri_san_peer_certificate", uri);
    }
    if let Some(pem) = &peer.peer_certificate {
        host.set_property("connection.peer_certificate", pem.clone());
    }
    let mut headers = vec![(":path", "/"), (":method", "GET"), (":authority", "b")];
    if let Some(xfcc) = &peer.xfcc {
        headers.push(("x-forwarded-client-cert", xfcc.as_str()));
    }
    host.set_request_headers(&headers);
    let action = root.new_http_stream().on_request_headers(&host);
    (action, host.take_calls())
}

#[test]
fn each_source_yields_the_peer_identity() {
    let ca = ca();
    let good = url_encode(&Leaf::svid(FRONTEND).pem(&ca));
    let expired = url_encode(
        &Leaf {
            not_after: -HOUR,
            not_before: -2 * HOUR,
            ..Leaf::svid(FRONTEND)
        }
        .pem(&ca),
    );
    let cases: Vec<(&str, &str, Peer<'_>, Action)> = vec![
        (
            "connectionAttributes: first URI SAN of the verified peer certificate",
            r#""identitySources": ["connectionAttributes"],"#,
            Peer {
                mtls: true,
                uri_san: Some(FRONTEND),
                ..PLAIN
            },
            Action::Continue,
        ),
        (
            "connectionAttributes: another workload is not frontend",
            r#""identitySources": ["connectionAttributes"],"#,
            Peer {
                mtls: true,
                uri_san: Some(OTHER),
                ..PLAIN
            },
            Action::Pause,
        ),
        (
            "peerCertificate: the PEM is checked as an X.509-SVID",
            r#""identitySources": ["peerCertificate"],"#,
            Peer {
                mtls: true,
                peer_certificate: Some(good.clone()),
                ..PLAIN
            },
            Action::Continue,
        ),
        (
            "peerCertificate: an expired SVID is unauthenticated (host clock)",
            r#""identitySources": ["peerCertificate"],"#,
            Peer {
                mtls: true,
                peer_certificate: Some(expired.clone()),
                ..PLAIN
            },
            Action::Pause,
        ),
        (
            "default order: an invalid certificate decides, no fall-through to the URI SAN",
            "",
            Peer {
                mtls: true,
                uri_san: Some(FRONTEND),
                peer_certificate: Some(expired),
                ..PLAIN
            },
            Action::Pause,
        ),
        (
            "default order: a host without connection.peer_certificate uses the URI SAN",
            "",
            Peer {
                mtls: true,
                uri_san: Some(FRONTEND),
                ..PLAIN
            },
            Action::Continue,
        ),
        (
            "xfcc: the last element's URI, on an mTLS connection",
            r#""identitySources": ["xfcc"],"#,
            Peer {
                mtls: true,
                xfcc: Some(format!(
                    "By=spiffe://cluster.local/ns/demo/sa/backend;URI={FRONTEND}"
                )),
                ..PLAIN
            },
            Action::Continue,
        ),
        (
            "xfcc: only the last element counts (earlier ones may be forged)",
            r#""identitySources": ["xfcc"],"#,
            Peer {
                mtls: true,
                xfcc: Some(format!(
                    "URI={FRONTEND},By=spiffe://cluster.local/ns/demo/sa/backend;URI={OTHER}"
                )),
                ..PLAIN
            },
            Action::Pause,
        ),
        (
            "xfcc: never on a plaintext connection",
            r#""identitySources": ["xfcc"],"#,
            Peer {
                xfcc: Some(format!("URI={FRONTEND}")),
                ..PLAIN
            },
            Action::Pause,
        ),
        (
            "xfcc with the certificate: Cert= is verified too",
            r#""identitySources": ["xfcc"],"#,
            Peer {
                mtls: true,
                xfcc: Some(format!("Cert=\"{good}\";URI={FRONTEND}")),
                ..PLAIN
            },
            Action::Continue,
        ),
    ];
    for (behaviour, sources, peer, want) in cases {
        let (action, calls) = decide(sources, &peer);
        assert_eq!(action, want, "{behaviour}: {calls:?}");
    }
}

#[test]
fn only_the_configured_sources_are_asked() {
    let peer = Peer {
        mtls: true,
        uri_san: Some(FRONTEND),
        ..PLAIN
    };
    let (_, calls) = decide(r#""identitySources": ["connectionAttributes"],"#, &peer);
    assert!(
        !calls
            .iter()
            .any(|c| c.contains("connection.peer_certificate")),
        "{calls:?}"
    );
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("proxy_get_current_time")),
        "a URI SAN check needs no clock: {calls:?}"
    );
    let (_, calls) = decide("", &peer);
    assert!(
        calls
            .iter()
            .any(|c| c.contains("connection.peer_certificate")),
        "{calls:?}"
    );

    // Plaintext: after connection.mtls = false nothing else is asked, not even the clock
    // (connection_id first: the key of the per-connection cache).
    let (_, calls) = decide("", &PLAIN);
    let properties: Vec<_> = calls
        .iter()
        .filter(|c| c.starts_with("proxy_get_property"))
        .collect();
    assert_eq!(
        properties,
        vec![
            "proxy_get_property connection_id",
            "proxy_get_property connection.mtls"
        ],
        "{calls:?}"
    );
}
