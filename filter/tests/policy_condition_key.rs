//! `ConditionKey`: Istio's `when` keys (istio/istio `pkg/config/security/security.go`
//! `ValidateAttribute`; istio.io/latest/docs/reference/config/security/conditions/).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use spiffe_authz::policy::{
    parse_ip_block, parse_port, ConditionKey as K, ConditionKeyError as E, ConditionValueError,
    ConditionValueKind,
};

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn keys_istio_accepts() {
    // (key, parsed, HTTP-only per the conditions reference "Supported protocols")
    let rows = [
        (
            "request.headers[User-Agent]",
            K::RequestHeader(s("User-Agent")),
            true,
        ),
        (
            "request.headers[:authority]",
            K::RequestHeader(s(":authority")),
            true,
        ),
        ("source.ip", K::SourceIp, false),
        ("remote.ip", K::RemoteIp, false),
        ("source.namespace", K::SourceNamespace, false),
        ("source.serviceAccount", K::SourceServiceAccount, false),
        ("source.principal", K::SourcePrincipal, false),
        ("request.auth.principal", K::RequestAuthPrincipal, true),
        ("request.auth.audiences", K::RequestAuthAudiences, true),
        ("request.auth.presenter", K::RequestAuthPresenter, true),
        (
            "request.auth.claims[iss]",
            K::RequestAuthClaims(vec![s("iss")]),
            true,
        ),
        (
            "request.auth.claims[nested1][nested2]",
            K::RequestAuthClaims(vec![s("nested1"), s("nested2")]),
            true,
        ),
        ("destination.ip", K::DestinationIp, false),
        ("destination.port", K::DestinationPort, false),
        ("connection.sni", K::ConnectionSni, false),
        (
            "experimental.envoy.filters.network.mysql_proxy[db.table]",
            K::ExperimentalEnvoyFilter {
                filter: s("envoy.filters.network.mysql_proxy"),
                key: s("db.table"),
            },
            false,
        ),
        (
            "experimental.envoy.filters.a.b[c]",
            K::ExperimentalEnvoyFilter {
                filter: s("envoy.filters.a.b"),
                key: s("c"),
            },
            false,
        ),
        // Istio requestHeaderGenerator / extractNameInBrackets: everything between the first
        // `[` and the final `]` is the header name, which no HTTP header can carry.
        ("request.headers[a][b]", K::RequestHeader(s("a][b")), true),
        // Istio extractNameInNestedBrackets keeps empty names, and falls back to one name
        // when the brackets do not form a run.
        (
            "request.auth.claims[a][]",
            K::RequestAuthClaims(vec![s("a"), s("")]),
            true,
        ),
        (
            "request.auth.claims[a]x[b]",
            K::RequestAuthClaims(vec![s("a]x[b")]),
            true,
        ),
        // Istio validateMapKey only wants a `[` after the first character: the filter name
        // may be empty, naming `envoy.filters.`, which never writes metadata.
        (
            "experimental.envoy.filters.[c]",
            K::ExperimentalEnvoyFilter {
                filter: s("envoy.filters."),
                key: s("c"),
            },
            false,
        ),
        // Istio envoyFilterGenerator: split at the first `[`, trailing `]` dropped, so the
        // brackets inside stay part of one metadata key.
        (
            "experimental.envoy.filters.a.b[c][d]",
            K::ExperimentalEnvoyFilter {
                filter: s("envoy.filters.a.b"),
                key: s("c][d"),
            },
            false,
        ),
    ];
    for (key, parsed, http_only) in rows {
        let got = K::parse(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(got, parsed, "{key}");
        assert_eq!(got.is_http_only(), http_only, "{key} http-only");
        assert_eq!(got.to_string(), key, "{key} round-trips through Display");
    }
}

#[test]
fn keys_rejected() {
    let rows = [
        ("", E::Empty),
        ("key1", E::Unknown),
        ("source.user", E::Unknown),
        ("request.headers", E::BadBrackets),
        ("request.headers[]", E::BadBrackets),
        ("request.headers[a", E::BadBrackets),
        ("request.headers[a]b", E::BadBrackets),
        // validateMapKey passes, the builder's extractNameInBrackets does not.
        ("request.headersX[a]", E::Untranslatable),
        ("request.auth.claimsX[a]", E::Untranslatable),
        ("request.auth.claims", E::BadBrackets),
        ("request.auth.claims[]", E::BadBrackets),
        ("request.experimental.inline.headers[]", E::BadBrackets),
        ("experimental.envoy.filters.a.b", E::BadBrackets),
        // validateMapKey: a key between the brackets, and the key ends with `]`.
        ("experimental.envoy.filters.a.b[]", E::BadBrackets),
        ("experimental.envoy.filters.a.b[c]d", E::BadBrackets),
        ("request.experimental.inline.headers[x]", E::Unsupported),
        ("destination.namespace", E::ReplacedByNamespace),
        ("destination.labels[version]", E::ReplacedBySelector),
        ("destination.name", E::Deprecated),
        ("destination.user", E::Deprecated),
    ];
    for (key, error) in rows {
        assert_eq!(K::parse(key), Err(error), "{key:?}");
    }
}

#[test]
fn value_rules_per_key() {
    let ok = |key: &str, value: &str| K::parse(key).unwrap().validate_value(value);
    assert_eq!(ok("source.ip", "10.0.0.0/8"), Ok(()));
    assert_eq!(
        ok("source.ip", "10.0.0.0/8x"),
        Err(ConditionValueError::BadCidr(s("10.0.0.0/8x")))
    );
    assert_eq!(
        ok("remote.ip", "host"),
        Err(ConditionValueError::BadIp(s("host")))
    );
    assert_eq!(ok("destination.port", "443"), Ok(()));
    assert_eq!(
        ok("destination.port", "-1"),
        Err(ConditionValueError::BadPort)
    );
    assert_eq!(ok("source.serviceAccount", "ns/sa"), Ok(()));
    assert_eq!(
        ok("request.headers[x]", ""),
        Err(ConditionValueError::Empty)
    );
    assert_eq!(ok("request.headers[x]", "anything *"), Ok(()));
    assert_eq!(
        K::parse("destination.ip").unwrap().value_kind(),
        ConditionValueKind::IpBlock
    );
    assert_eq!(
        K::parse("connection.sni").unwrap().value_kind(),
        ConditionValueKind::StringMatch
    );
}

#[test]
fn ip_blocks_and_ports_parse_like_go() {
    assert_eq!(parse_ip_block("1.2.3.4").unwrap().to_string(), "1.2.3.4/32");
    assert_eq!(parse_ip_block("::1").unwrap().to_string(), "::1/128");
    // netip.ParsePrefix keeps the address as written; the engine masks it when it matches.
    assert_eq!(
        parse_ip_block("10.1.2.3/16").unwrap().trunc().to_string(),
        "10.1.0.0/16"
    );
    for bad in [
        "",
        "1.2.3",
        "1.2.3.4/",
        "1.2.3.4/-1",
        "1.2.3.4/+8",
        "::1/129",
        " 1.2.3.4",
    ] {
        assert!(parse_ip_block(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse_port("0"), Some(0));
    assert_eq!(parse_port("00080"), Some(80));
    assert_eq!(parse_port("65535"), Some(65535));
    for bad in ["", "65536", "99999999999999999999", "8 0", "0x50", "+1"] {
        assert_eq!(parse_port(bad), None, "{bad:?}");
    }
}

/// Istio's `validateMapKey` and `extractNameInNestedBrackets` / `extractNameInBrackets`
/// (security.go, pilot/pkg/security/authz/model/util.go), transliterated byte for byte.
mod istio {
    pub fn validate_map_key(key: &str) -> bool {
        let b = key.as_bytes();
        let open = b.iter().position(|&c| c == b'[').map_or(-1, |i| i as i64);
        key.ends_with(']') && open > 0 && open < b.len() as i64 - 2
    }

    pub fn extract_name_in_brackets(s: &str) -> Option<String> {
        if !s.starts_with('[') || !s.ends_with(']') {
            return None;
        }
        let s = s.strip_suffix(']').unwrap();
        Some(s.strip_prefix('[').unwrap_or(s).to_owned())
    }

    pub fn extract_name_in_nested_brackets(s: &str) -> Option<Vec<String>> {
        let b = s.as_bytes();
        let find_end_bracket = |begin: usize| -> Option<usize> {
            if begin >= b.len() || b[begin] != b'[' {
                return None;
            }
            for (i, &c) in b.iter().enumerate().skip(begin + 1) {
                if c == b'[' {
                    return None;
                }
                if c == b']' {
                    return Some(i);
                }
            }
            None
        };
        let mut claims = Vec::new();
        let mut begin = 0;
        while begin < b.len() {
            match find_end_bracket(begin) {
                None => return extract_name_in_brackets(s).map(|n| vec![n]),
                Some(end) => {
                    claims.push(s[begin + 1..end].to_owned());
                    begin = end + 1;
                }
            }
        }
        Some(claims)
    }
}

/// Every key of up to 6 characters from `[`, `]`, `a` after the `request.headers`,
/// `request.auth.claims` and `experimental.envoy.filters.x` prefixes classifies as Istio's validation and builder do: rejected
/// when `validateMapKey` rejects it, untranslatable when the builder cannot extract the
/// name(s), else the very name(s) the builder extracts.
#[test]
fn bracketed_keys_match_istio_exhaustively() {
    let alphabet = ['[', ']', 'a'];
    let mut suffixes = vec![String::new()];
    let mut all = Vec::new();
    for _ in 0..6 {
        let mut next = Vec::new();
        for s in &suffixes {
            for c in alphabet {
                next.push(format!("{s}{c}"));
            }
        }
        all.extend(next.iter().cloned());
        suffixes = next;
    }
    for rest in &all {
        let header_key = format!("request.headers{rest}");
        let want = if !istio::validate_map_key(&header_key) {
            Err(E::BadBrackets)
        } else {
            istio::extract_name_in_brackets(rest)
                .map(K::RequestHeader)
                .ok_or(E::Untranslatable)
        };
        assert_eq!(K::parse(&header_key), want, "{header_key}");

        let claims_key = format!("request.auth.claims{rest}");
        let want = if !istio::validate_map_key(&claims_key) {
            Err(E::BadBrackets)
        } else {
            istio::extract_name_in_nested_brackets(rest)
                .map(K::RequestAuthClaims)
                .ok_or(E::Untranslatable)
        };
        assert_eq!(K::parse(&claims_key), want, "{claims_key}");

        // envoyFilterGenerator: strings.SplitN(TrimSuffix(TrimPrefix(key, "experimental."),
        // "]"), "[", 2); validateMapKey guarantees the `[`.
        let filter_key = format!("experimental.envoy.filters.x{rest}");
        let want = if !istio::validate_map_key(&filter_key) {
            Err(E::BadBrackets)
        } else {
            let trimmed = filter_key["experimental.".len()..filter_key.len() - 1].to_owned();
            let (filter, key) = trimmed.split_once('[').unwrap();
            Ok(K::ExperimentalEnvoyFilter {
                filter: filter.to_owned(),
                key: key.to_owned(),
            })
        };
        assert_eq!(K::parse(&filter_key), want, "{filter_key}");
    }
}
