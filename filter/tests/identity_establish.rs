//! `identity::establish` from Envoy's connection attributes, and the source configuration.
//!
//! Sources: Envoy `source/extensions/filters/common/expr/context.cc` (`connection.mtls` is
//! `peerCertificatePresented()`, `uri_san_peer_certificate` is the first URI SAN, `""` for an
//! absent value), /work/shared/reference/envoy-properties.md §2; Istio `pkg/spiffe` (principal
//! `<td>/ns/<ns>/sa/<sa>`), Istio `meshConfig.trustDomainAliases`; X509-SVID.md §5.2 (a caller
//! ID has a non-root path).

// Tests state their expectations with unwrap/expect/panic; the workspace denies them only in
// the filter's own code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use spiffe_authz::identity::svid::SvidError;
use spiffe_authz::identity::{
    establish, IdentitySettings, IdentitySource, InvalidPeerIdentity, PeerFacts, PeerIdentity,
    SpiffeIdError, TrustDomain, UnauthenticatedReason,
};

const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z; unused by attribute sources

fn settings(sources: &[IdentitySource]) -> IdentitySettings {
    IdentitySettings {
        trust_domain: TrustDomain::new("cluster.local").unwrap(),
        trust_domain_aliases: vec![TrustDomain::new("old-td.example").unwrap()],
        sources: sources.to_vec(),
    }
}

fn mtls_with_uri(uri: &'static str) -> PeerFacts<'static> {
    PeerFacts {
        mtls: Some(true),
        uri_san: Some(uri),
        ..PeerFacts::default()
    }
}

enum Expect {
    Principal(&'static str),
    /// No identity presented: Istio's unauthenticated peer.
    Reason(UnauthenticatedReason),
    /// An identity presented and failed verification: denied before policies.
    Invalid(InvalidPeerIdentity),
}

fn attr_rejected(error: SvidError) -> Expect {
    Expect::Invalid(InvalidPeerIdentity::Certificate {
        origin: IdentitySource::ConnectionAttributes,
        error,
    })
}

#[test]
fn connection_attributes_table() {
    use IdentitySource::*;
    let all = [PeerCertificate, ConnectionAttributes];
    let cases: Vec<(&str, PeerFacts<'static>, Expect)> = vec![
        (
            "mTLS peer with an Istio SVID: principal is the ID without spiffe:// (Istio authz)",
            mtls_with_uri("spiffe://cluster.local/ns/default/sa/sleep"),
            Expect::Principal("cluster.local/ns/default/sa/sleep"),
        ),
        (
            "trust domain alias is accepted (Istio trustDomainAliases)",
            mtls_with_uri("spiffe://old-td.example/ns/default/sa/sleep"),
            Expect::Principal("old-td.example/ns/default/sa/sleep"),
        ),
        (
            "a host without connection.mtls still verifies a URI SAN (only TLS peers have one)",
            PeerFacts {
                uri_san: Some("spiffe://cluster.local/ns/a/sa/b"),
                ..PeerFacts::default()
            },
            Expect::Principal("cluster.local/ns/a/sa/b"),
        ),
        (
            "plaintext: connection.mtls is false (Envoy ConnectionWrapper mtls)",
            PeerFacts {
                mtls: Some(false),
                ..PeerFacts::default()
            },
            Expect::Reason(UnauthenticatedReason::PlaintextConnection),
        ),
        (
            "mtls=false wins over any other fact: a URI SAN without a certificate is impossible",
            PeerFacts {
                mtls: Some(false),
                uri_san: Some("spiffe://cluster.local/ns/a/sa/b"),
                xfcc: Some("URI=spiffe://cluster.local/ns/a/sa/b"),
                ..PeerFacts::default()
            },
            Expect::Reason(UnauthenticatedReason::PlaintextConnection),
        ),
        (
            "DNS-only certificate: no URI SAN attribute, reason names the DNS SAN",
            PeerFacts {
                mtls: Some(true),
                dns_san: Some("web.example.com"),
                ..PeerFacts::default()
            },
            Expect::Reason(UnauthenticatedReason::NoPeerIdentity {
                dns_san: Some("web.example.com".into()),
            }),
        ),
        (
            "empty URI SAN string is absent (Envoy returns \"\" for some absent values)",
            PeerFacts {
                mtls: Some(true),
                uri_san: Some(""),
                ..PeerFacts::default()
            },
            Expect::Reason(UnauthenticatedReason::NoPeerIdentity { dns_san: None }),
        ),
        (
            "non-SPIFFE URI SAN is rejected, not ignored (X509-SVID §2)",
            mtls_with_uri("https://web.example.com/"),
            attr_rejected(SvidError::InvalidSpiffeId {
                uri: "https://web.example.com/".into(),
                error: SpiffeIdError::WrongScheme,
            }),
        ),
        (
            "malformed SPIFFE ID (dot segment) is rejected (SPIFFE-ID.md §2.2)",
            mtls_with_uri("spiffe://cluster.local/ns/../sa/admin"),
            attr_rejected(SvidError::InvalidSpiffeId {
                uri: "spiffe://cluster.local/ns/../sa/admin".into(),
                error: SpiffeIdError::DotSegment,
            }),
        ),
        (
            "wrong trust domain: Istio would reject it in the handshake",
            mtls_with_uri("spiffe://evil.example/ns/default/sa/sleep"),
            attr_rejected(SvidError::UntrustedTrustDomain {
                id: "spiffe://evil.example/ns/default/sa/sleep".parse().unwrap(),
                trust_domain: "evil.example".into(),
            }),
        ),
        (
            "trust domain ID (no path) never identifies a caller (X509-SVID §5.2)",
            mtls_with_uri("spiffe://cluster.local"),
            attr_rejected(SvidError::NoWorkloadPath(
                "spiffe://cluster.local".parse().unwrap(),
            )),
        ),
    ];
    for (behaviour, facts, expect) in cases {
        let got = establish(&facts, &settings(&all), NOW);
        match expect {
            Expect::Principal(principal) => {
                assert_eq!(got.principal(), Some(principal), "{behaviour}: {got}")
            }
            Expect::Reason(reason) => {
                assert_eq!(got, PeerIdentity::Unauthenticated(reason), "{behaviour}")
            }
            Expect::Invalid(invalid) => {
                assert_eq!(got, PeerIdentity::Invalid(invalid), "{behaviour}")
            }
        }
    }
}

#[test]
fn first_source_with_data_decides_and_failures_do_not_fall_through() {
    use IdentitySource::*;
    // A forged XFCC claims admin; the connection's certificate says sleep.
    let facts = PeerFacts {
        mtls: Some(true),
        uri_san: Some("spiffe://cluster.local/ns/default/sa/sleep"),
        xfcc: Some("By=spiffe://cluster.local/ns/x/sa/y;URI=spiffe://cluster.local/ns/a/sa/admin"),
        peer_certificate: Some("not a certificate"),
        ..PeerFacts::default()
    };
    // Default order: peerCertificate first; it HAS data and fails, so attributes are not
    // consulted (fail closed: a present but invalid certificate is invalid, never
    // unauthenticated and never replaced by a weaker source's answer).
    let got = establish(&facts, &IdentitySettings::default(), NOW);
    assert_eq!(
        got.invalid(),
        Some(&InvalidPeerIdentity::Certificate {
            origin: PeerCertificate,
            error: SvidError::NotPem,
        })
    );
    // Without the PEM, attributes decide; XFCC is never consulted unless configured.
    let facts = PeerFacts {
        peer_certificate: None,
        ..facts
    };
    let got = establish(&facts, &IdentitySettings::default(), NOW);
    assert_eq!(got.principal(), Some("cluster.local/ns/default/sa/sleep"));
    // XFCC first, when configured, decides with its last element.
    let got = establish(&facts, &settings(&[Xfcc, ConnectionAttributes]), NOW);
    assert_eq!(got.principal(), Some("cluster.local/ns/a/sa/admin"));
    // No sources configured: nothing can be verified.
    let got = establish(&facts, &settings(&[]), NOW);
    assert_eq!(
        got.reason(),
        Some(&UnauthenticatedReason::NoPeerIdentity { dns_san: None })
    );
}

#[test]
fn sources_parse_from_configuration_names() {
    let sources: Vec<IdentitySource> =
        serde_json::from_str(r#"["xfcc","peerCertificate","connectionAttributes"]"#).unwrap();
    assert_eq!(
        sources,
        [
            IdentitySource::Xfcc,
            IdentitySource::PeerCertificate,
            IdentitySource::ConnectionAttributes
        ]
    );
    for source in sources {
        assert_eq!(source.as_str().parse::<IdentitySource>(), Ok(source));
    }
    let err = serde_json::from_str::<Vec<IdentitySource>>(r#"["XFCC"]"#).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "unknown identity source \"XFCC\": expected one of \"connectionAttributes\", \
             \"peerCertificate\", \"xfcc\""
        ),
        "{err}"
    );
    assert_eq!(
        IdentitySettings::default().sources,
        [
            IdentitySource::PeerCertificate,
            IdentitySource::ConnectionAttributes
        ],
        "xfcc is never a default source: a client can forge the header"
    );
    assert_eq!(
        IdentitySettings::default().trust_domain.as_str(),
        "cluster.local"
    );
}

#[test]
fn reasons_are_one_line_for_logs() {
    let facts = mtls_with_uri("spiffe://evil.example/ns/a/sa/b");
    let got = establish(
        &facts,
        &settings(&[IdentitySource::ConnectionAttributes]),
        NOW,
    );
    assert_eq!(
        got.to_string(),
        "invalid peer identity: connectionAttributes: spiffe://evil.example/ns/a/sa/b: trust domain \
         \"evil.example\" is neither the local trust domain nor an alias"
    );
    let got = establish(
        &PeerFacts {
            mtls: Some(true),
            dns_san: Some("db.internal"),
            ..PeerFacts::default()
        },
        &IdentitySettings::default(),
        NOW,
    );
    assert_eq!(
        got.reason().map(ToString::to_string).as_deref(),
        Some(
            "no SPIFFE ID from the configured identity sources (the peer certificate has DNS \
             SAN \"db.internal\" but no URI SAN)"
        )
    );
    let verified = establish(
        &mtls_with_uri("spiffe://cluster.local/ns/a/sa/b"),
        &IdentitySettings::default(),
        NOW,
    );
    assert_eq!(verified.to_string(), "spiffe://cluster.local/ns/a/sa/b");
    assert!(verified.reason().is_none());
}

/// Which failures are "no identity presented" (unauthenticated; policies decide) and which are
/// "an identity presented and failed verification" (invalid; denied before policies). Istio
/// never serves the second kind: its handshake refuses an expired or foreign certificate, and
/// Envoy's RBAC matches a principal against every URI SAN, so a certificate naming two
/// identities is never simply anonymous.
#[test]
fn presented_but_failed_is_invalid_not_unauthenticated() {
    use IdentitySource::*;
    let plaintext = PeerFacts {
        mtls: Some(false),
        uri_san: Some("spiffe://cluster.local/ns/a/sa/b"),
        xfcc: Some("URI=spiffe://cluster.local/ns/a/sa/b"),
        ..PeerFacts::default()
    };
    let xfcc = |header: &'static str| PeerFacts {
        mtls: Some(true),
        xfcc: Some(header),
        ..PeerFacts::default()
    };
    let cases: Vec<(&str, PeerFacts<'static>, &[IdentitySource], bool)> = vec![
        (
            "plaintext (connection.mtls false): nothing presented, whatever else is claimed",
            plaintext,
            &[ConnectionAttributes, Xfcc],
            false,
        ),
        (
            "mTLS certificate without a URI SAN (Envoy reports no uri_san_peer_certificate)",
            PeerFacts {
                mtls: Some(true),
                dns_san: Some("db.internal"),
                ..PeerFacts::default()
            },
            &[ConnectionAttributes],
            false,
        ),
        (
            "XFCC element with neither URI nor Cert: Envoy saw a certificate without URI SAN",
            xfcc("By=spiffe://cluster.local/ns/demo/sa/backend;DNS=db.internal"),
            &[Xfcc],
            false,
        ),
        (
            "URI SAN from a foreign trust domain (Istio refuses it in the handshake)",
            mtls_with_uri("spiffe://evil.example/ns/a/sa/b"),
            &[ConnectionAttributes],
            true,
        ),
        (
            "URI SAN that is not a SPIFFE ID",
            mtls_with_uri("https://web.example.com/"),
            &[ConnectionAttributes],
            true,
        ),
        (
            "peer certificate that is not PEM",
            PeerFacts {
                mtls: Some(true),
                peer_certificate: Some("not a certificate"),
                ..PeerFacts::default()
            },
            &[PeerCertificate],
            true,
        ),
        (
            "malformed XFCC (unterminated quote)",
            xfcc("Subject=\"x;URI=spiffe://cluster.local/ns/a/sa/b"),
            &[Xfcc],
            true,
        ),
        (
            "XFCC element with two URI values",
            xfcc("URI=spiffe://cluster.local/ns/a/sa/b;URI=spiffe://cluster.local/ns/a/sa/c"),
            &[Xfcc],
            true,
        ),
    ];
    for (behaviour, facts, sources, invalid) in cases {
        let got = establish(&facts, &settings(sources), NOW);
        assert_eq!(got.invalid().is_some(), invalid, "{behaviour}: {got}");
        assert_eq!(got.reason().is_some(), !invalid, "{behaviour}: {got}");
        assert_eq!(got.principal(), None, "{behaviour}: {got}");
    }
}
