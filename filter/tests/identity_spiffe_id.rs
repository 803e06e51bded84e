//! The SPIFFE ID standard, rule by rule.
//!
//! Sources: spiffe/spiffe `standards/SPIFFE-ID.md` (§2 scheme, query, fragment; §2.1 trust
//! domain: host only, no userinfo or port, lowercase letters, digits, '.', '-', '_'; §2.2 path
//! segments: letters, digits, '.', '-', '_', no empty or dot segments, no trailing slash; §2.3
//! 2048-byte ID, 255-byte trust domain), go-spiffe `v2/spiffeid` (`FromString`, `errors.go`,
//! `id_test.go`), Istio `pkg/spiffe/spiffe.go` (`ParseIdentity`: `spiffe://<td>/ns/<ns>/sa/<sa>`).

// Tests state their expectations with unwrap/expect/panic; the workspace denies them only in
// the filter's own code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use spiffe_authz::identity::{SpiffeId, SpiffeIdError, TrustDomain, MAX_SPIFFE_ID_LEN};

#[test]
fn valid_ids_parse_into_their_parts() {
    // (behaviour, input, trust domain, path, principal)
    let cases = [
        (
            "Istio workload ID (SPIFFE-ID.md §2.2 example, Istio ParseIdentity)",
            "spiffe://cluster.local/ns/default/sa/sleep",
            "cluster.local",
            "/ns/default/sa/sleep",
            "cluster.local/ns/default/sa/sleep",
        ),
        (
            "trust domain ID without path is a valid ID (go-spiffe id_test empty_path)",
            "spiffe://example.org",
            "example.org",
            "",
            "example.org",
        ),
        (
            "path segments allow upper case, digits, '.', '-', '_' (SPIFFE-ID.md §2.2)",
            "spiffe://td-1_x.example/Payments/web-FE_2.v1",
            "td-1_x.example",
            "/Payments/web-FE_2.v1",
            "td-1_x.example/Payments/web-FE_2.v1",
        ),
        (
            "opaque single-segment path (SPIFFE-ID.md §2.2 opaque example)",
            "spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453",
            "example.com",
            "/9eebccd2-12bf-40a6-b262-65fe0487d453",
            "example.com/9eebccd2-12bf-40a6-b262-65fe0487d453",
        ),
        (
            "segments that merely contain dots are not dot segments (go-spiffe validate.go)",
            "spiffe://example.org/.../..a/.b",
            "example.org",
            "/.../..a/.b",
            "example.org/.../..a/.b",
        ),
    ];
    for (behaviour, input, td, path, principal) in cases {
        let id = SpiffeId::parse(input).unwrap_or_else(|e| panic!("{behaviour}: {input}: {e}"));
        assert_eq!(id.trust_domain(), td, "{behaviour}");
        assert_eq!(id.path(), path, "{behaviour}");
        assert_eq!(id.principal(), principal, "{behaviour}");
        assert_eq!(id.to_string(), input, "{behaviour}: Display round-trips");
        assert_eq!(
            input.parse::<SpiffeId>().as_ref(),
            Ok(&id),
            "{behaviour}: FromStr"
        );
    }
}

#[test]
fn each_rule_of_the_standard_rejects_with_its_own_error() {
    let long_path = format!("spiffe://example.org/{}", "a".repeat(MAX_SPIFFE_ID_LEN));
    let long_td = format!("spiffe://{}/a", "a".repeat(256));
    let cases: Vec<(&str, &str, SpiffeIdError)> = vec![
        ("empty input (go-spiffe errEmpty)", "", SpiffeIdError::Empty),
        (
            "wrong scheme (SPIFFE-ID.md §2: MUST use the spiffe scheme)",
            "http://example.org/a",
            SpiffeIdError::WrongScheme,
        ),
        (
            "scheme is case-sensitive in the strict parser (go-spiffe FromString prefix check)",
            "SPIFFE://example.org/a",
            SpiffeIdError::WrongScheme,
        ),
        (
            "missing '//' (go-spiffe id_test missing_double_slash)",
            "spiffe:/example.org/a",
            SpiffeIdError::WrongScheme,
        ),
        (
            "no trust domain (SPIFFE-ID.md §2: non-zero trust domain name)",
            "spiffe:///a",
            SpiffeIdError::MissingTrustDomain,
        ),
        (
            "nothing after the scheme",
            "spiffe://",
            SpiffeIdError::MissingTrustDomain,
        ),
        (
            "user info (SPIFFE-ID.md §2.1: userinfo MUST NOT be set)",
            "spiffe://user:pw@example.org/a",
            SpiffeIdError::UserInfo,
        ),
        (
            "port (SPIFFE-ID.md §2.1: port MUST NOT be set)",
            "spiffe://example.org:8080/a",
            SpiffeIdError::Port,
        ),
        (
            "empty port: the ':' delimiter MUST NOT be present (SPIFFE-ID.md §2.1)",
            "spiffe://example.org:/a",
            SpiffeIdError::Port,
        ),
        (
            "upper case trust domain (go-spiffe: lowercase letters only)",
            "spiffe://Example.org/a",
            SpiffeIdError::BadTrustDomainChar('E'),
        ),
        (
            "percent-encoded trust domain",
            "spiffe://exa%41mple.org/a",
            SpiffeIdError::BadTrustDomainChar('%'),
        ),
        (
            "non-ASCII trust domain",
            "spiffe://exämple.org/a",
            SpiffeIdError::BadTrustDomainChar('ä'),
        ),
        (
            "query (SPIFFE-ID.md §2: MUST NOT include a query)",
            "spiffe://example.org/a?x=1",
            SpiffeIdError::Query,
        ),
        (
            "query right after the trust domain",
            "spiffe://example.org?x=1",
            SpiffeIdError::Query,
        ),
        (
            "fragment (SPIFFE-ID.md §2: MUST NOT include a fragment)",
            "spiffe://example.org/a#frag",
            SpiffeIdError::Fragment,
        ),
        (
            "empty segment (go-spiffe emptySegment)",
            "spiffe://example.org//a",
            SpiffeIdError::EmptySegment,
        ),
        (
            "'.' segment (go-spiffe dotSegment)",
            "spiffe://example.org/a/./b",
            SpiffeIdError::DotSegment,
        ),
        (
            "'..' segment (go-spiffe dotSegment)",
            "spiffe://example.org/a/../b",
            SpiffeIdError::DotSegment,
        ),
        (
            "trailing slash (go-spiffe trailingSlash)",
            "spiffe://example.org/a/",
            SpiffeIdError::TrailingSlash,
        ),
        (
            "root path '/' is a trailing slash (go-spiffe id_test)",
            "spiffe://example.org/",
            SpiffeIdError::TrailingSlash,
        ),
        (
            "sub-delims in a segment (go-spiffe badPathSegmentChar)",
            "spiffe://example.org/a$b",
            SpiffeIdError::BadPathChar('$'),
        ),
        (
            "percent-encoding in a segment",
            "spiffe://example.org/a%2Fb",
            SpiffeIdError::BadPathChar('%'),
        ),
        (
            "colon in a segment",
            "spiffe://example.org/pa:th",
            SpiffeIdError::BadPathChar(':'),
        ),
        (
            "space in a segment",
            "spiffe://example.org/a b",
            SpiffeIdError::BadPathChar(' '),
        ),
        (
            "longer than 2048 bytes (SPIFFE-ID.md §2.3)",
            &long_path,
            SpiffeIdError::TooLong {
                len: long_path.len(),
            },
        ),
        (
            "trust domain longer than 255 bytes (SPIFFE-ID.md §2.3)",
            &long_td,
            SpiffeIdError::TrustDomainTooLong { len: 256 },
        ),
    ];
    for (behaviour, input, expected) in cases {
        assert_eq!(
            SpiffeId::parse(input),
            Err(expected),
            "{behaviour}: {input}"
        );
    }
}

#[test]
fn length_limits_are_inclusive() {
    // SPIFFE-ID.md §2.3: implementations MUST support IDs of exactly 2048 bytes.
    let prefix = "spiffe://example.org/";
    let at_limit = format!("{prefix}{}", "a".repeat(MAX_SPIFFE_ID_LEN - prefix.len()));
    assert_eq!(at_limit.len(), MAX_SPIFFE_ID_LEN);
    assert!(SpiffeId::parse(&at_limit).is_ok());
    let td_255 = "a".repeat(255);
    assert!(TrustDomain::new(&td_255).is_ok());
    assert!(SpiffeId::parse(&format!("spiffe://{td_255}/a")).is_ok());
}

#[test]
fn istio_namespace_and_service_account_only_for_the_exact_istio_shape() {
    // Istio pkg/spiffe ParseIdentity: exactly `/ns/<ns>/sa/<sa>`.
    let cases = [
        ("spiffe://cluster.local/ns/foo/sa/bar", Some(("foo", "bar"))),
        (
            "spiffe://td.example/ns/a-b/sa/c.d_e",
            Some(("a-b", "c.d_e")),
        ),
        ("spiffe://cluster.local/ns/foo/sa/bar/extra", None),
        ("spiffe://cluster.local/ns/foo", None),
        ("spiffe://cluster.local/sa/bar/ns/foo", None),
        ("spiffe://cluster.local/NS/foo/sa/bar", None),
        ("spiffe://cluster.local", None),
        ("spiffe://cluster.local/payments/web", None),
    ];
    for (input, expected) in cases {
        let id = SpiffeId::parse(input).expect(input);
        let parts = id.namespace().zip(id.service_account());
        assert_eq!(parts, expected, "{input}");
        assert_eq!(id.namespace().is_some(), id.service_account().is_some());
    }
}

#[test]
fn trust_domain_id_and_membership() {
    let td = TrustDomain::new("cluster.local").unwrap();
    let workload = SpiffeId::parse("spiffe://cluster.local/ns/a/sa/b").unwrap();
    let root = SpiffeId::parse("spiffe://cluster.local").unwrap();
    let other = SpiffeId::parse("spiffe://cluster.local.evil/ns/a/sa/b").unwrap();
    assert!(workload.is_member_of(&td));
    assert!(!workload.is_trust_domain_id());
    assert!(root.is_trust_domain_id());
    // A suffix/prefix relation between names is no membership (go-spiffe MemberOf).
    assert!(!other.is_member_of(&td));
}

#[test]
fn trust_domain_names_are_validated_with_the_same_rules() {
    assert_eq!(
        TrustDomain::new("cluster.local").unwrap().as_str(),
        "cluster.local"
    );
    let cases = [
        ("", SpiffeIdError::MissingTrustDomain),
        ("Cluster.local", SpiffeIdError::BadTrustDomainChar('C')),
        ("cluster.local:443", SpiffeIdError::Port),
        ("me@cluster.local", SpiffeIdError::UserInfo),
        ("spiffe://cluster.local", SpiffeIdError::Port),
        ("cluster.local/ns", SpiffeIdError::BadTrustDomainChar('/')),
    ];
    for (name, expected) in cases {
        assert_eq!(TrustDomain::new(name), Err(expected), "{name:?}");
    }
    let err = "Bad".parse::<TrustDomain>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid trust domain \"Bad\": trust domain characters are limited to lowercase \
         letters, digits, '.', '-' and '_', found 'B'"
    );
}

#[test]
fn trust_domains_deserialize_with_validation() {
    let tds: Vec<TrustDomain> = serde_json::from_str(r#"["cluster.local","old.td"]"#).unwrap();
    assert_eq!(tds.len(), 2);
    let err = serde_json::from_str::<Vec<TrustDomain>>(r#"["UPPER"]"#).unwrap_err();
    assert!(
        err.to_string().contains("invalid trust domain \"UPPER\""),
        "{err}"
    );
}

#[test]
fn errors_read_as_one_line_naming_the_rule() {
    let err = SpiffeId::parse("spiffe://example.org/a/../b").unwrap_err();
    assert_eq!(err.to_string(), "path cannot contain '.' or '..' segments");
    let err = SpiffeId::parse("spiffe://example.org/a?b").unwrap_err();
    assert_eq!(err.to_string(), "a query is not allowed in a SPIFFE ID");
}
