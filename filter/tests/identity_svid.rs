//! X.509-SVID leaf rules on the peer certificate, and the `peerCertificate` identity source.
//!
//! Sources: spiffe/spiffe `standards/X509-SVID.md` (§2 exactly one URI SAN; §3.1 leaf IDs have a
//! non-root path; §4.1 leaf cA=false; §4.3 key usage set, critical, digitalSignature, no
//! keyCertSign/cRLSign; §5.2 leaf validation), RFC 5280 §4.1.2.5 (validity is inclusive) and
//! §4.2 (one instance per extension), Envoy attributes.rst (`connection.peer_certificate` is
//! URL-encoded PEM) and /work/shared/reference/envoy-properties.md §4.2 (old and new URL
//! encodings of `Cert=`).

// Tests state their expectations with unwrap/expect/panic; the workspace denies them only in
// the filter's own code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod identity_support;

use identity_support::{ca, url_encode, url_encode_legacy, Leaf, HOUR, NOW};
use rcgen::{CustomExtension, KeyUsagePurpose};
use spiffe_authz::identity::svid::{self, SvidError, SvidRules};
use spiffe_authz::identity::{
    establish, IdentitySettings, IdentitySource, InvalidPeerIdentity, PeerFacts, SpiffeIdError,
    TrustDomain,
};

const ID: &str = "spiffe://cluster.local/ns/default/sa/sleep";

fn verify(pem: &str) -> Result<String, SvidError> {
    let td = TrustDomain::new("cluster.local").unwrap();
    let aliases = [TrustDomain::new("old-td.example").unwrap()];
    let rules = SvidRules {
        trust_domain: &td,
        trust_domain_aliases: &aliases,
        now_unix_secs: NOW,
    };
    svid::verify_pem(pem, &rules).map(|id| id.principal().to_owned())
}

/// KeyUsage with only digitalSignature, DER, for a hand-made extension.
const KEY_USAGE_DIGITAL_SIGNATURE: [u8; 4] = [0x03, 0x02, 0x07, 0x80];
/// SubjectAltName with one URI, DER.
fn san_uri_der(uri: &str) -> Vec<u8> {
    let mut general_name = vec![0x86, uri.len() as u8];
    general_name.extend_from_slice(uri.as_bytes());
    let mut der = vec![0x30, general_name.len() as u8];
    der.extend(general_name);
    der
}

#[test]
fn leaf_rules_table() {
    let ca = ca();
    let with = |change: &dyn Fn(&mut Leaf)| {
        let mut leaf = Leaf::svid(ID);
        change(&mut leaf);
        leaf.pem(&ca)
    };
    let not_critical_key_usage = {
        let mut ext = CustomExtension::from_oid_content(
            &[2, 5, 29, 15],
            KEY_USAGE_DIGITAL_SIGNATURE.to_vec(),
        );
        ext.set_criticality(false);
        ext
    };
    let cases: Vec<(&str, String, Result<String, SvidError>)> = vec![
        (
            "valid Istio workload SVID",
            with(&|_| {}),
            Ok("cluster.local/ns/default/sa/sleep".into()),
        ),
        (
            "trust domain alias (Istio trustDomainAliases)",
            with(&|l| l.uris = vec!["spiffe://old-td.example/ns/default/sa/sleep".into()]),
            Ok("old-td.example/ns/default/sa/sleep".into()),
        ),
        (
            "URI and DNS SANs together: other SAN types are allowed (X509-SVID §2)",
            with(&|l| l.dns = vec!["sleep.default.svc".into()]),
            Ok("cluster.local/ns/default/sa/sleep".into()),
        ),
        (
            "now == notAfter is still valid (RFC 5280 §4.1.2.5 inclusive)",
            with(&|l| l.not_after = 0),
            Ok("cluster.local/ns/default/sa/sleep".into()),
        ),
        (
            "now == notBefore is valid (RFC 5280 §4.1.2.5 inclusive)",
            with(&|l| l.not_before = 0),
            Ok("cluster.local/ns/default/sa/sleep".into()),
        ),
        (
            "expired one second ago",
            with(&|l| l.not_after = -1),
            Err(SvidError::Expired {
                not_after: NOW - 1,
                now: NOW,
            }),
        ),
        (
            "expired a day ago",
            with(&|l| {
                l.not_before = -48 * HOUR;
                l.not_after = -24 * HOUR;
            }),
            Err(SvidError::Expired {
                not_after: NOW - 24 * HOUR as u64,
                now: NOW,
            }),
        ),
        (
            "not yet valid",
            with(&|l| {
                l.not_before = HOUR;
                l.not_after = 25 * HOUR;
            }),
            Err(SvidError::NotYetValid {
                not_before: NOW + HOUR as u64,
                now: NOW,
            }),
        ),
        (
            "CA certificate as leaf (X509-SVID §5.2: cA must be false)",
            with(&|l| {
                l.is_ca = true;
                l.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            }),
            Err(SvidError::CaCertificate),
        ),
        (
            "keyCertSign on a leaf (X509-SVID §5.2)",
            with(&|l| l.key_usages.push(KeyUsagePurpose::KeyCertSign)),
            Err(SvidError::KeyCertSign),
        ),
        (
            "cRLSign on a leaf (X509-SVID §5.2)",
            with(&|l| l.key_usages.push(KeyUsagePurpose::CrlSign)),
            Err(SvidError::CrlSign),
        ),
        (
            "no digitalSignature (X509-SVID §4.3: a leaf must set it)",
            with(&|l| l.key_usages = vec![KeyUsagePurpose::KeyEncipherment]),
            Err(SvidError::NoDigitalSignature),
        ),
        (
            "no key usage extension (X509-SVID §4.3: must be set on all SVIDs)",
            with(&|l| l.key_usages.clear()),
            Err(SvidError::MissingKeyUsage),
        ),
        (
            "key usage not critical (X509-SVID §4.3: must be marked critical)",
            with(&|l| {
                l.key_usages.clear();
                l.custom_extensions = vec![not_critical_key_usage.clone()];
            }),
            Err(SvidError::KeyUsageNotCritical),
        ),
        (
            "two URI SANs (X509-SVID §2: validators MUST reject)",
            with(&|l| {
                l.uris
                    .push("spiffe://cluster.local/ns/kube-system/sa/admin".into())
            }),
            Err(SvidError::MultipleUriSans { count: 2 }),
        ),
        (
            "non-SPIFFE URI SAN",
            with(&|l| l.uris = vec!["https://web.example.com/".into()]),
            Err(SvidError::InvalidSpiffeId {
                uri: "https://web.example.com/".into(),
                error: SpiffeIdError::WrongScheme,
            }),
        ),
        (
            "DNS SAN only: no SPIFFE ID",
            with(&|l| {
                l.uris.clear();
                l.dns = vec!["web.default.svc".into()];
            }),
            Err(SvidError::NoUriSan),
        ),
        (
            "wrong trust domain",
            with(&|l| l.uris = vec!["spiffe://evil.example/ns/default/sa/sleep".into()]),
            Err(SvidError::UntrustedTrustDomain {
                id: "spiffe://evil.example/ns/default/sa/sleep".parse().unwrap(),
                trust_domain: "evil.example".into(),
            }),
        ),
        (
            "trust domain ID on a leaf (X509-SVID §3.1: non-root path)",
            with(&|l| l.uris = vec!["spiffe://cluster.local".into()]),
            Err(SvidError::NoWorkloadPath(
                "spiffe://cluster.local".parse().unwrap(),
            )),
        ),
        (
            "a second SAN extension smuggling another ID (RFC 5280 §4.2: one instance)",
            with(&|l| {
                l.custom_extensions = vec![CustomExtension::from_oid_content(
                    &[2, 5, 29, 17],
                    san_uri_der("spiffe://cluster.local/ns/a/sa/admin"),
                )]
            }),
            Err(SvidError::DuplicateExtension("2.5.29.17".parse().unwrap())),
        ),
    ];
    for (behaviour, pem, expected) in cases {
        assert_eq!(verify(&pem), expected, "{behaviour}");
    }
}

#[test]
fn malformed_pem_and_der_table() {
    let pem = Leaf::svid(ID).pem(&ca());
    let body_start = pem.find('\n').unwrap() + 1;
    let truncated_mid_body = pem[..body_start + 40].to_string();
    let mut bad_base64 = pem.clone();
    bad_base64.replace_range(body_start + 10..body_start + 11, "!");
    let garbage_der = "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n";
    let cases: Vec<(&str, String, SvidError)> = vec![
        ("empty input", String::new(), SvidError::NotPem),
        ("not PEM at all", "hello".into(), SvidError::NotPem),
        (
            "a private key is not a certificate",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
            SvidError::NotPem,
        ),
        (
            "text before the PEM block",
            format!("Bag Attributes\n{pem}"),
            SvidError::NotPem,
        ),
        (
            "truncated in the body: no END line",
            truncated_mid_body,
            SvidError::TruncatedPem,
        ),
        (
            "truncated to the BEGIN line",
            "-----BEGIN CERTIFICATE-----\n".into(),
            SvidError::TruncatedPem,
        ),
        (
            "invalid base64 character",
            bad_base64,
            SvidError::Base64(base64::DecodeError::InvalidByte(10, b'!')),
        ),
        (
            "two certificates where one is expected",
            format!("{pem}{pem}"),
            SvidError::TrailingData,
        ),
    ];
    for (behaviour, input, expected) in cases {
        assert_eq!(verify(&input), Err(expected), "{behaviour}");
    }

    // DER that is not a certificate: the error is the DER decoder's, whatever its wording.
    let der = base64_body(&pem);
    let pem_of = |der: &[u8]| {
        use base64::Engine as _;
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        )
    };
    let mut trailing_byte = der.clone();
    trailing_byte.push(0);
    let mut wrong_outer_tag = der.clone();
    wrong_outer_tag[0] = 0x31;
    let garbage: [(&str, String); 4] = [
        ("valid base64, garbage DER", garbage_der.into()),
        ("DER cut in half", pem_of(&der[..der.len() / 2])),
        ("a byte after the certificate", pem_of(&trailing_byte)),
        ("SET instead of SEQUENCE", pem_of(&wrong_outer_tag)),
    ];
    for (behaviour, input) in garbage {
        assert!(
            matches!(verify(&input), Err(SvidError::Der(_))),
            "{behaviour}: {:?}",
            verify(&input)
        );
    }
}

fn base64_body(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[test]
fn url_encoded_pem_as_old_and_new_envoy_write_it() {
    let pem = Leaf::svid(ID).pem(&ca());
    let td = TrustDomain::new("cluster.local").unwrap();
    let rules = SvidRules {
        trust_domain: &td,
        trust_domain_aliases: &[],
        now_unix_secs: NOW,
    };
    for encoded in [url_encode(&pem), url_encode_legacy(&pem), pem.clone()] {
        let id = svid::verify_url_encoded_pem(&encoded, &rules).unwrap();
        assert_eq!(id.to_string(), ID);
    }
    // Percent-decoding that yields invalid UTF-8 is rejected before any PEM parsing.
    assert_eq!(
        svid::verify_url_encoded_pem("%FF%FE", &rules),
        Err(SvidError::PercentEncoding)
    );
    // A chain (XFCC `Chain=`) is verified by its first certificate, the leaf.
    let chain = format!(
        "{pem}{}",
        Leaf::svid("spiffe://cluster.local/ns/x/sa/y").pem(&ca())
    );
    let id = svid::verify_url_encoded_chain_leaf(&url_encode(&chain), &rules).unwrap();
    assert_eq!(id.to_string(), ID);
}

#[test]
fn peer_certificate_source_verifies_and_never_falls_through() {
    let ca = ca();
    let settings = IdentitySettings::default();
    let good = url_encode(&Leaf::svid(ID).pem(&ca));
    let facts = PeerFacts {
        mtls: Some(true),
        uri_san: Some(ID),
        peer_certificate: Some(&good),
        ..PeerFacts::default()
    };
    assert_eq!(
        establish(&facts, &settings, NOW).principal(),
        Some("cluster.local/ns/default/sa/sleep")
    );

    // Envoy's attribute shows only the FIRST URI SAN; the full certificate shows both and
    // is rejected, and the attribute source is not consulted after it.
    let mut two = Leaf::svid(ID);
    two.uris
        .push("spiffe://cluster.local/ns/kube-system/sa/admin".into());
    let two = url_encode(&two.pem(&ca));
    let facts = PeerFacts {
        peer_certificate: Some(&two),
        ..facts
    };
    assert_eq!(
        establish(&facts, &settings, NOW).invalid(),
        Some(&InvalidPeerIdentity::Certificate {
            origin: IdentitySource::PeerCertificate,
            error: SvidError::MultipleUriSans { count: 2 },
        })
    );

    // The same certificate an hour after expiry: unauthenticated, reason says when.
    let expired = url_encode(&Leaf::svid(ID).pem(&ca));
    let facts = PeerFacts {
        peer_certificate: Some(&expired),
        ..facts
    };
    let later = NOW + 24 * HOUR as u64;
    let got = establish(&facts, &settings, later);
    assert_eq!(
        got.invalid().map(ToString::to_string),
        Some(format!(
            "peerCertificate: certificate expired at {} (unix seconds), now is {later}",
            NOW + 23 * HOUR as u64
        ))
    );
}
