//! Path bypasses under every Istio `pathNormalization` option.
//!
//! Each case is one request path, with what patched Istio decides under NONE, BASE,
//! MERGE_SLASHES and DECODE_AND_MERGE_SLASHES, against the two policy shapes that
//! ISTIO-SECURITY-2021-005 names as exposed: DENY + `paths` and ALLOW + `notPaths`, both
//! guarding `/admin` and everything under it. What each option protects against is Istio's
//! own table (istio.io "Security best practices", "Understand path normalization in
//! authorization policy"):
//! - NONE: nothing; Envoy forwards the path as received (`/a/../b` is judged as written).
//! - BASE: Envoy `normalize_path` (RFC 3986 dot segments, `\` as `/`, `%2E` as `.`, decoding
//!   escaped unreserved characters): `/a/../b` -> `/b`, `\da` -> `/da`.
//! - MERGE_SLASHES: BASE, then `//` -> `/` (the CVE-2021-31920 fix for `//admin`).
//! - DECODE_AND_MERGE_SLASHES: first `%2F`/`%2f` -> `/` and `%5C`/`%5c` -> `\`, then
//!   MERGE_SLASHES (the CVE-2021-31920 fix for `%2F` and `%5C`).
//!
//! Fragments are stripped by Envoy's HCM in every option, before normalizing (Istio's
//! bootstrap turns `http_reject_path_with_fragment` off, CVE-2021-32779 /
//! ISTIO-SECURITY-2021-008), and Envoy's `PathMatcher` compares the path without the query;
//! both independent of the option.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod bypass_support;

use bypass_support::{assert_closed_rows, get, Allow, Deny, Row, Verdict};
use serde_json::json;

const OPTIONS: [&str; 4] = ["NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"];

/// One path and what patched Istio decides for it under `OPTIONS`, in order.
struct PathCase {
    name: &'static str,
    path: &'static str,
    advisory: &'static str,
    expect: [Verdict; 4],
    note: &'static str,
}

const CVE_2019_9901: &str =
    "ISTIO-SECURITY-2019-001 / CVE-2019-9901 (Envoy path normalization, normalize_path)";
const CVE_2021_31920: &str =
    "ISTIO-SECURITY-2021-005 / CVE-2021-31920 (Envoy CVE-2021-29492, GHSA-4987-27fx-x6cf)";
const CVE_2021_39156: &str =
    "ISTIO-SECURITY-2021-008 / CVE-2021-39156 (Envoy CVE-2021-32779, GHSA-r222-74fw-jqr9)";
const DOCS: &str = "istio.io security best practices: path normalization table";
const DOTDOT_PARAMS: &str =
    "Envoy path_utility_test StripDotSegmentWithParameters (strip_dotdot_segments_with_parameters)";

#[rustfmt::skip]
const CASES: &[PathCase] = &[
    // What every option already denies.
    PathCase { name: "the guarded path itself", path: "/admin", advisory: CVE_2021_31920, expect: [Deny, Deny, Deny, Deny], note: "the ISTIO-SECURITY-2021-005 example policy, unaltered request" },
    PathCase { name: "below the guarded path", path: "/admin/users", advisory: CVE_2021_31920, expect: [Deny, Deny, Deny, Deny], note: "/admin/* covers it as written" },
    PathCase { name: "query is not part of the path", path: "/admin?x=/public", advisory: "ISTIO-SECURITY-2020-001 / CVE-2020-8595 (exact path vs '?')", expect: [Deny, Deny, Deny, Deny], note: "Envoy PathMatcher strips the query before matching" },
    PathCase { name: "empty query", path: "/admin?", advisory: "ISTIO-SECURITY-2020-001 / CVE-2020-8595 (exact path vs '?')", expect: [Deny, Deny, Deny, Deny], note: "a bare '?' must not turn /admin into another path" },
    PathCase { name: "fragment", path: "/admin#x", advisory: CVE_2021_39156, expect: [Deny, Deny, Deny, Deny], note: "HCM strips '#x' in every option: /admin" },
    PathCase { name: "fragment hiding dot segments", path: "/public#/../admin", advisory: CVE_2021_39156, expect: [Allow, Allow, Allow, Allow], note: "stripped before normalizing: HCM forwards /public, which is what the backend reads" },
    PathCase { name: "fragment after a query", path: "/public?a=b#/../admin", advisory: CVE_2021_39156, expect: [Allow, Allow, Allow, Allow], note: "stripped wherever the '#' is: /public" },
    PathCase { name: "dot segment below guard", path: "/admin/.", advisory: CVE_2019_9901, expect: [Deny, Deny, Deny, Deny], note: "NONE: /admin/* prefix; else /admin/" },
    PathCase { name: "dot-dot back into guard", path: "/admin/x/..", advisory: CVE_2019_9901, expect: [Deny, Deny, Deny, Deny], note: "NONE: prefix; else /admin/" },
    // BASE (normalize_path) and stronger.
    PathCase { name: "current-directory segment", path: "/./admin", advisory: CVE_2019_9901, expect: [Allow, Deny, Deny, Deny], note: "NONE judges /./admin as written" },
    PathCase { name: "parent-directory traversal", path: "/public/../admin", advisory: CVE_2019_9901, expect: [Allow, Deny, Deny, Deny], note: "the classic CVE-2019-9901 traversal" },
    PathCase { name: "traversal above the root", path: "/../../admin", advisory: CVE_2019_9901, expect: [Allow, Deny, Deny, Deny], note: "RFC 3986: '..' at the root stays at the root" },
    PathCase { name: "escaped dot-dot %2e%2e", path: "/public/%2e%2e/admin", advisory: CVE_2019_9901, expect: [Allow, Deny, Deny, Deny], note: "googleurl reads %2e as '.'" },
    PathCase { name: "mixed-case escaped dot-dot %2E%2e", path: "/public/%2E%2e/admin", advisory: CVE_2019_9901, expect: [Allow, Deny, Deny, Deny], note: "escape hex digits are case-insensitive" },
    PathCase { name: "half-escaped dot-dot .%2E", path: "/public/.%2E/admin", advisory: CVE_2019_9901, expect: [Allow, Deny, Deny, Deny], note: "one raw, one escaped dot" },
    PathCase { name: "escaped current directory %2e", path: "/%2e/admin", advisory: CVE_2019_9901, expect: [Allow, Deny, Deny, Deny], note: "/%2e/ is /./" },
    PathCase { name: "raw backslash traversal", path: "/public\\..\\admin", advisory: DOCS, expect: [Allow, Deny, Deny, Deny], note: "BASE treats '\\' as '/' (Istio table: \\da -> /da)" },
    PathCase { name: "escaped unreserved letter", path: "/%61dmin", advisory: CVE_2019_9901, expect: [Allow, Deny, Deny, Deny], note: "normalize_path decodes %61 to 'a'" },
    PathCase { name: "escaped NUL", path: "/admin%00", advisory: "Envoy path_utility_test InvalidPaths (%00 fails canonicalization, 400)", expect: [Allow, Deny, Deny, Deny], note: "NONE forwards it unjudged; BASE+ reject the request" },
    PathCase { name: "dot-dot with parameters", path: "/public/..;/admin", advisory: DOTDOT_PARAMS, expect: [Allow, Deny, Deny, Deny], note: "Tomcat reads ..; as ..; Envoy strips the parameter first" },
    PathCase { name: "dot-dot with named parameters", path: "/public/..;jsessionid=x/admin", advisory: DOTDOT_PARAMS, expect: [Allow, Deny, Deny, Deny], note: "the parameter value is irrelevant" },
    PathCase { name: "dot with parameters", path: "/.;x=y/admin", advisory: DOTDOT_PARAMS, expect: [Allow, Deny, Deny, Deny], note: ".; is ." },
    // MERGE_SLASHES and stronger.
    PathCase { name: "double leading slash", path: "//admin", advisory: CVE_2021_31920, expect: [Allow, Allow, Deny, Deny], note: "the ISTIO-SECURITY-2021-005 example: BASE keeps //admin" },
    PathCase { name: "triple slashes", path: "///admin//users", advisory: CVE_2021_31920, expect: [Allow, Allow, Deny, Deny], note: "runs of slashes merge to one" },
    PathCase { name: "traversal leaving a double slash", path: "/public/..//admin", advisory: CVE_2021_31920, expect: [Allow, Allow, Deny, Deny], note: "BASE yields //admin, merging yields /admin" },
    // DECODE_AND_MERGE_SLASHES only.
    PathCase { name: "escaped slash %2F", path: "/admin%2Fusers", advisory: CVE_2021_31920, expect: [Allow, Allow, Allow, Deny], note: "only the decode option reads %2F as '/'" },
    PathCase { name: "lower-case escaped slash %2f", path: "/admin%2fusers", advisory: CVE_2021_31920, expect: [Allow, Allow, Allow, Deny], note: "both cases are decoded" },
    PathCase { name: "escaped slash traversal ..%2F", path: "/public/..%2Fadmin", advisory: CVE_2021_31920, expect: [Allow, Allow, Allow, Deny], note: "the brief's /public/..%2Fadmin" },
    PathCase { name: "all-escaped traversal %2F..%2F", path: "/public%2F..%2Fadmin", advisory: CVE_2021_31920, expect: [Allow, Allow, Allow, Deny], note: "no raw slash around the dots" },
    PathCase { name: "fully escaped traversal %2e%2e%2f", path: "/public/%2e%2e%2fadmin", advisory: CVE_2021_31920, expect: [Allow, Allow, Allow, Deny], note: "dots and slash escaped" },
    PathCase { name: "escaped backslash traversal ..%5C", path: "/public/..%5Cadmin", advisory: CVE_2021_31920, expect: [Allow, Allow, Allow, Deny], note: "%5C -> '\\' -> '/'" },
    PathCase { name: "lower-case escaped backslash ..%5c", path: "/public/..%5cadmin", advisory: CVE_2021_31920, expect: [Allow, Allow, Allow, Deny], note: "both cases are decoded" },
    PathCase { name: "escaped leading slash /%2F", path: "/%2Fadmin", advisory: CVE_2021_31920, expect: [Allow, Allow, Allow, Deny], note: "decode gives //admin, merge gives /admin" },
    PathCase { name: "escaped leading backslash /%5C", path: "/%5Cadmin", advisory: CVE_2021_31920, expect: [Allow, Allow, Allow, Deny], note: "decode gives /\\admin -> //admin -> /admin" },
    PathCase { name: "mixed-case escapes %2e%2E%5c", path: "/public/%2e%2E%5cadmin", advisory: CVE_2021_31920, expect: [Allow, Allow, Allow, Deny], note: "mixed-case dots and backslash" },
    // What no option changes: these pin that the filter does not invent normalization Istio
    // lacks (a path Istio allows must stay allowed) and document the backend caveats.
    PathCase { name: "upper-case path", path: "/ADMIN", advisory: "istio.io AuthorizationPolicy Operation.paths (case-sensitive match)", expect: [Allow, Allow, Allow, Allow], note: "paths match case-sensitively; a case-insensitive backend needs its own guard" },
    PathCase { name: "trailing dot", path: "/admin.", advisory: DOCS, expect: [Allow, Allow, Allow, Allow], note: "no option strips a trailing dot (some backends do)" },
    PathCase { name: "escaped trailing dot", path: "/admin%2e", advisory: DOCS, expect: [Allow, Allow, Allow, Allow], note: "decoded to /admin. at most" },
    PathCase { name: "parameters on a name", path: "/admin;x=y", advisory: DOTDOT_PARAMS, expect: [Allow, Allow, Allow, Allow], note: "only .; and ..; segments lose their parameters (Tomcat would read /admin)" },
    PathCase { name: "double-escaped slash %252F", path: "/admin%252Fusers", advisory: DOCS, expect: [Allow, Allow, Allow, Allow], note: "Envoy decodes once; %25 stays escaped" },
    PathCase { name: "escaped question mark", path: "/admin%3F", advisory: DOCS, expect: [Allow, Allow, Allow, Allow], note: "%3F is not a query delimiter and stays escaped" },
    PathCase { name: "dot-dot out of the guard", path: "/admin/..", advisory: CVE_2019_9901, expect: [Deny, Allow, Allow, Allow], note: "BASE+ resolve it to /, which is not guarded" },
];

/// The two exposed shapes of ISTIO-SECURITY-2021-005, guarding `/admin` and below.
fn policies() -> [(&'static str, serde_json::Value); 2] {
    [
        (
            "DENY paths",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]}]}),
        ),
        (
            "ALLOW notPaths",
            json!({"action": "ALLOW", "rules": [{"to": [{"operation": {"notPaths": ["/admin", "/admin/*"]}}]}]}),
        ),
    ]
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for case in CASES {
        for (option, expect) in OPTIONS.iter().zip(case.expect) {
            for (shape, policy) in policies() {
                rows.push(
                    Row::new(
                        format!("{option} / {shape} / {}", case.name),
                        case.advisory,
                        policy,
                        get(case.path),
                        expect,
                        case.note,
                    )
                    .normalization(option),
                );
            }
        }
    }
    rows
}

#[test]
fn path_bypasses_decide_as_patched_istio() {
    let rows = rows();
    assert!(rows.len() >= 4 * 2 * 40, "{} rows", rows.len());
    assert_closed_rows(&rows);
}

/// The two policy shapes must agree on every path: a path one guards and the other lets
/// through would be a bypass of one of them, whatever Istio decides.
#[test]
fn deny_paths_and_allow_not_paths_agree() {
    let rows = rows();
    for pair in rows.chunks(2) {
        let [deny, allow] = pair else {
            panic!("rows come in pairs")
        };
        assert_eq!(
            deny.decide(),
            allow.decide(),
            "{} vs {}",
            deny.name,
            allow.name
        );
    }
}

/// The protection each option adds is exactly Istio's: an option never denies less than a
/// weaker one (NONE < BASE < MERGE_SLASHES < DECODE_AND_MERGE_SLASHES) except where the
/// stronger normalization moves the path out of the guard (`/admin/..` is `/`).
#[test]
fn stronger_options_guard_at_least_as_much() {
    for case in CASES {
        if case.path == "/admin/.." {
            continue;
        }
        let denied: Vec<bool> = case.expect.iter().map(|v| *v == Deny).collect();
        assert!(
            denied.windows(2).all(|w| !w[0] || w[1]),
            "{}: expectations must be monotone over the options: {:?}",
            case.name,
            case.expect
        );
    }
}
