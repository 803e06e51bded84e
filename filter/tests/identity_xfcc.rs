//! `x-forwarded-client-cert` parsing and the `xfcc` identity source.
//!
//! Sources: Envoy `docs/root/configuration/http/http_conn_man/headers.rst` (grammar, example
//! values, keys case-insensitive, quoting with `\"`), `source/common/http/
//! conn_manager_utility.cc` `mutateXfccRequestHeader` (APPEND_FORWARD appends `,<element>`;
//! element order By, Hash, Cert, Chain, Subject, URI, DNS; `URI=` when the peer has no URI SAN),
//! Istio `pilot/pkg/networking/util/proxy_headers.go` (sidecar inbound: APPEND_FORWARD with
//! subject, uri, dns), /work/shared/reference/envoy-properties.md §4.

// Tests state their expectations with unwrap/expect/panic; the workspace denies them only in
// the filter's own code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod identity_support;

use identity_support::{ca, url_encode, Leaf, NOW};
use spiffe_authz::identity::svid::{SvidError, SvidRules};
use spiffe_authz::identity::xfcc::{self, XfccError, XfccKey};
use spiffe_authz::identity::{
    establish, IdentitySettings, IdentitySource, PeerFacts, SpiffeIdError, TrustDomain,
    UnauthenticatedReason,
};

const HASH: &str = "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688";

fn identity(header: &str) -> Result<String, XfccError> {
    let td = TrustDomain::new("cluster.local").unwrap();
    let rules = SvidRules {
        trust_domain: &td,
        trust_domain_aliases: &[],
        now_unix_secs: NOW,
    };
    xfcc::peer_identity(header, &rules).map(|id| id.principal().to_owned())
}

/// Elements, each as its `(key, value)` pairs.
type Elements<'a> = Vec<Vec<(&'a str, &'a str)>>;

#[test]
fn grammar_table() {
    // (behaviour, header, elements as [(key, value)])
    let cases: Vec<(&str, &str, Elements)> = vec![
        (
            "headers.rst example: By, Hash, quoted Subject with '=' and ',', URI",
            r#"By=http://frontend.lyft.com;Hash=468ed33b;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com"#,
            vec![vec![
                ("By", "http://frontend.lyft.com"),
                ("Hash", "468ed33b"),
                (
                    "Subject",
                    "/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client",
                ),
                ("URI", "http://testclient.lyft.com"),
            ]],
        ),
        (
            "two hops: comma separates elements, oldest first (headers.rst)",
            "By=spiffe://a/x;URI=spiffe://a/client,By=spiffe://a/y;URI=spiffe://a/x",
            vec![
                vec![("By", "spiffe://a/x"), ("URI", "spiffe://a/client")],
                vec![("By", "spiffe://a/y"), ("URI", "spiffe://a/x")],
            ],
        ),
        (
            "';' and ',' inside quotes do not split (RFC 2253 subject)",
            r#"Subject="CN=a,O=b;c";URI=spiffe://td/p"#,
            vec![vec![("Subject", "CN=a,O=b;c"), ("URI", "spiffe://td/p")]],
        ),
        (
            r#"\" inside quotes is a quote (headers.rst escaping)"#,
            r#"Subject="CN=say \"hi\", O=x""#,
            vec![vec![("Subject", r#"CN=say "hi", O=x"#)]],
        ),
        (
            "a backslash before anything else is kept",
            r#"Subject="CN=a\,b""#,
            vec![vec![("Subject", r"CN=a\,b")]],
        ),
        (
            "empty quoted value: Envoy writes Subject=\"\" for an empty subject",
            r#"Hash=ab;Subject="";URI="#,
            vec![vec![("Hash", "ab"), ("Subject", ""), ("URI", "")]],
        ),
        (
            "space after a comma from a joining proxy is tolerated before a key",
            "URI=spiffe://td/a, URI=spiffe://td/b",
            vec![
                vec![("URI", "spiffe://td/a")],
                vec![("URI", "spiffe://td/b")],
            ],
        ),
    ];
    for (behaviour, header, expected) in cases {
        let elements = xfcc::parse(header).unwrap_or_else(|e| panic!("{behaviour}: {e}"));
        let got: Elements = elements
            .iter()
            .map(|e| e.pairs.iter().map(|(k, v)| (*k, v.as_ref())).collect())
            .collect();
        assert_eq!(got, expected, "{behaviour}");
    }
}

#[test]
fn keys_are_case_insensitive() {
    let element = xfcc::last_element("by=x;HASH=y;cErT=z;chain=c;subject=s;uri=u;dns=d").unwrap();
    for (key, value) in [
        (XfccKey::By, "x"),
        (XfccKey::Hash, "y"),
        (XfccKey::Cert, "z"),
        (XfccKey::Chain, "c"),
        (XfccKey::Subject, "s"),
        (XfccKey::Uri, "u"),
        (XfccKey::Dns, "d"),
    ] {
        assert_eq!(element.values(key).collect::<Vec<_>>(), [value], "{key:?}");
    }
    assert_eq!(
        identity("uri=spiffe://cluster.local/ns/a/sa/b"),
        Ok("cluster.local/ns/a/sa/b".into())
    );
}

#[test]
fn syntax_errors_reject_the_whole_header() {
    let cases = [
        ("empty header", "", XfccError::Empty),
        ("blank header", "  ", XfccError::Empty),
        (
            "pair without '='",
            "URI",
            XfccError::MissingEquals { offset: 0 },
        ),
        ("empty key", "=x", XfccError::EmptyKey { offset: 0 }),
        (
            "trailing ';'",
            "URI=x;",
            XfccError::MissingEquals { offset: 6 },
        ),
        (
            "trailing ','",
            "URI=x,",
            XfccError::MissingEquals { offset: 6 },
        ),
        (
            "empty element",
            "URI=x,,URI=y",
            XfccError::MissingEquals { offset: 6 },
        ),
        (
            "unterminated quote",
            r#"Subject="CN=a"#,
            XfccError::UnterminatedQuote { offset: 8 },
        ),
        (
            "text after a closing quote",
            r#"Subject="a"b;URI=x"#,
            XfccError::TextAfterQuote { offset: 11 },
        ),
        (
            "quote inside an unquoted value",
            r#"URI=a"b"#,
            XfccError::QuoteInUnquotedValue { offset: 5 },
        ),
    ];
    for (behaviour, header, expected) in cases {
        assert_eq!(xfcc::parse(header).err(), Some(expected), "{behaviour}");
    }
}

#[test]
fn forged_elements_before_envoys_are_ignored() {
    // APPEND_FORWARD: the client sent the first two elements; Envoy appended the last.
    let envoy = format!(
        "By=spiffe://cluster.local/ns/default/sa/backend;Hash={HASH};Subject=\"\";\
         URI=spiffe://cluster.local/ns/default/sa/sleep"
    );
    let forged = "By=spiffe://cluster.local/ns/default/sa/backend;\
                  URI=spiffe://cluster.local/ns/kube-system/sa/admin";
    let header = format!("{forged},URI=spiffe://cluster.local/ns/istio-system/sa/x,{envoy}");
    assert_eq!(
        identity(&header),
        Ok("cluster.local/ns/default/sa/sleep".into())
    );

    // A client that leaves a quote open tries to swallow Envoy's element into its own
    // value; strict parsing turns that into an error, never into the forged identity.
    let attacks = [
        format!("URI=spiffe://cluster.local/ns/kube-system/sa/admin;X=\",{envoy}"),
        format!("URI=spiffe://cluster.local/ns/kube-system/sa/admin;X=\"\\,{envoy}"),
        format!("X=\"a\\\",{envoy}"),
    ];
    for header in attacks {
        let got = identity(&header);
        assert!(
            matches!(
                got,
                Err(XfccError::TextAfterQuote { .. } | XfccError::UnterminatedQuote { .. })
            ),
            "{header}: {got:?}"
        );
    }
    // Without Subject, Envoy's element has no quotes: the open quote never closes.
    let envoy_no_subject =
        format!("By=spiffe://x/y;Hash={HASH};URI=spiffe://cluster.local/ns/a/sa/b");
    assert_eq!(
        identity(&format!(
            "URI=spiffe://cluster.local/ns/kube-system/sa/admin;X=\",{envoy_no_subject}"
        )),
        Err(XfccError::UnterminatedQuote { offset: 53 })
    );
}

#[test]
fn last_element_identity_rules() {
    let ca = ca();
    let cert = url_encode(&Leaf::svid("spiffe://cluster.local/ns/default/sa/sleep").pem(&ca));
    let mut two_uris = Leaf::svid("spiffe://cluster.local/ns/default/sa/sleep");
    two_uris
        .uris
        .push("spiffe://cluster.local/ns/kube-system/sa/admin".into());
    let two_uris = url_encode(&two_uris.pem(&ca));
    let chain = url_encode(&format!(
        "{}{}",
        Leaf::svid("spiffe://cluster.local/ns/default/sa/sleep").pem(&ca),
        Leaf::svid("spiffe://cluster.local/ns/other/sa/ca").pem(&ca)
    ));
    let cases: Vec<(&str, String, Result<String, XfccError>)> = vec![
        (
            "Istio sidecar inbound default element (subject, uri, dns)",
            format!(
                "By=spiffe://cluster.local/ns/default/sa/backend;Hash={HASH};Subject=\"\";\
                 URI=spiffe://cluster.local/ns/default/sa/sleep;DNS=sleep.default.svc"
            ),
            Ok("cluster.local/ns/default/sa/sleep".into()),
        ),
        (
            "Cert= is verified as an X.509-SVID (set_current_client_cert_details.cert)",
            format!("Hash={HASH};Cert=\"{cert}\""),
            Ok("cluster.local/ns/default/sa/sleep".into()),
        ),
        (
            "Cert= and a matching URI=",
            format!("Cert=\"{cert}\";URI=spiffe://cluster.local/ns/default/sa/sleep"),
            Ok("cluster.local/ns/default/sa/sleep".into()),
        ),
        (
            "Chain= without Cert=: the first certificate is the leaf",
            format!("Chain=\"{chain}\""),
            Ok("cluster.local/ns/default/sa/sleep".into()),
        ),
        (
            "Cert= and a different URI= cannot both be true",
            format!("Cert=\"{cert}\";URI=spiffe://cluster.local/ns/kube-system/sa/admin"),
            Err(XfccError::CertUriMismatch {
                uri: "spiffe://cluster.local/ns/kube-system/sa/admin".into(),
                cert_id: "spiffe://cluster.local/ns/default/sa/sleep"
                    .parse()
                    .unwrap(),
            }),
        ),
        (
            "Cert= with two URI SANs fails the SVID rules",
            format!("Cert=\"{two_uris}\""),
            Err(XfccError::Svid(SvidError::MultipleUriSans { count: 2 })),
        ),
        (
            "Cert= that is not a certificate",
            "Cert=\"bm90IGEgY2VydA%3D%3D\"".into(),
            Err(XfccError::Svid(SvidError::NotPem)),
        ),
        (
            "peer without URI SAN: Envoy writes URI= (conn_manager_utility.cc)",
            format!("Hash={HASH};Subject=\"CN=x\";URI=;DNS=x.example"),
            Err(XfccError::NoUri),
        ),
        (
            "no URI key at all",
            format!("By=spiffe://cluster.local/ns/a/sa/b;Hash={HASH}"),
            Err(XfccError::NoUri),
        ),
        (
            "two URI values: one per URI SAN, and an SVID has exactly one (X509-SVID §2)",
            "URI=spiffe://cluster.local/ns/a/sa/b;URI=spiffe://cluster.local/ns/c/sa/d".into(),
            Err(XfccError::MultipleUris { count: 2 }),
        ),
        (
            "non-SPIFFE URI",
            "URI=https://web.example.com".into(),
            Err(XfccError::Svid(SvidError::InvalidSpiffeId {
                uri: "https://web.example.com".into(),
                error: SpiffeIdError::WrongScheme,
            })),
        ),
        (
            "wrong trust domain",
            "URI=spiffe://evil.example/ns/a/sa/b".into(),
            Err(XfccError::Svid(SvidError::UntrustedTrustDomain {
                id: "spiffe://evil.example/ns/a/sa/b".parse().unwrap(),
                trust_domain: "evil.example".into(),
            })),
        ),
        (
            "unknown key in Envoy's element: not what Envoy writes",
            "URI=spiffe://cluster.local/ns/a/sa/b;Role=admin".into(),
            Err(XfccError::UnknownKey("Role".into())),
        ),
        (
            "two Cert keys",
            format!("Cert=\"{cert}\";Cert=\"{cert}\""),
            Err(XfccError::DuplicateKey("Cert")),
        ),
        (
            "unknown keys in earlier (client) elements do not matter",
            "Role=admin,URI=spiffe://cluster.local/ns/a/sa/b".into(),
            Ok("cluster.local/ns/a/sa/b".into()),
        ),
    ];
    for (behaviour, header, expected) in cases {
        assert_eq!(identity(&header), expected, "{behaviour}");
    }
}

#[test]
fn xfcc_source_only_when_configured() {
    let header = "URI=spiffe://cluster.local/ns/kube-system/sa/admin";
    let facts = PeerFacts {
        mtls: Some(true),
        xfcc: Some(header),
        ..PeerFacts::default()
    };
    // Default sources never read XFCC.
    let got = establish(&facts, &IdentitySettings::default(), NOW);
    assert_eq!(
        got.reason(),
        Some(&UnauthenticatedReason::NoPeerIdentity { dns_san: None })
    );
    let settings = IdentitySettings {
        sources: vec![IdentitySource::Xfcc],
        ..IdentitySettings::default()
    };
    assert_eq!(
        establish(&facts, &settings, NOW).principal(),
        Some("cluster.local/ns/kube-system/sa/admin")
    );
    // A broken header is an invalid identity with the parse error, not skipped.
    let facts = PeerFacts {
        xfcc: Some("URI=\"x"),
        ..facts
    };
    assert_eq!(
        establish(&facts, &settings, NOW).to_string(),
        "invalid peer identity: xfcc: byte 4: quoted value is never closed"
    );
}
