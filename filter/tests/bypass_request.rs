//! Bypasses through request attributes other than the path: repeated headers, header name
//! case, host case / port / trailing dot, method case, queries, and HTTP-only fields on TCP.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod bypass_support;

use bypass_support::{assert_closed_rows, get, Allow, Deny, Row};
use serde_json::{json, Value};

/// Envoy CVE-2026-26308 / GHSA-ghc4-35x6-crw5 (Istio CVE-2026-31838; fixed in Istio 1.27.8,
/// 1.28.5, 1.29.1): RBAC `HeaderMatcher` matches every value of a repeated header on its own
/// (runtime guard `envoy.reloadable_features.rbac_match_headers_individually`, on by default),
/// instead of the comma-joined string the CVE-2020-25017 fix introduced.
const HEADERS_INDIVIDUALLY: &str =
    "CVE-2026-26308 / GHSA-ghc4-35x6-crw5 (Istio CVE-2026-31838): repeated header values matched one by one";
const HEADERS_ALL_VALUES: &str =
    "Envoy CVE-2020-25017 (Envoy 1.15.1): every value of a repeated header is seen, not the first";
const HOST_CASE: &str = "ISTIO-SECURITY-2021-008 / CVE-2021-39155: hosts match case-insensitively";
const HOST_MATCHER: &str =
    "istio pilot/pkg/security/authz/matcher/header.go HostMatcher: exact/prefix/suffix on :authority, ignore_case";
const METHODS: &str =
    "istio generator.go methodGenerator: HeaderMatcher(':method', v), case-sensitive";
const TCP_FIELDS: &str =
    "istio.io AuthorizationPolicy reference / builder.go: HTTP-only fields on TCP (DENY drops them, ALLOW drops the rule)";

fn deny_header(values: &[&str]) -> Value {
    json!({"action": "DENY", "rules": [{"when": [{"key": "request.headers[x-role]", "values": values}]}]})
}

fn deny_hosts(hosts: &[&str]) -> Value {
    json!({"action": "DENY", "rules": [{"to": [{"operation": {"hosts": hosts}}]}]})
}

fn allow_hosts(hosts: &[&str]) -> Value {
    json!({"action": "ALLOW", "rules": [{"to": [{"operation": {"hosts": hosts}}]}]})
}

fn rows() -> Vec<Row> {
    vec![
        // --- repeated headers -------------------------------------------------------------
        Row::new(
            "header: single value denied",
            HEADERS_INDIVIDUALLY,
            deny_header(&["admin"]),
            get("/").header("x-role", "admin"),
            Deny,
            "baseline: the DENY value itself",
        ),
        Row::new(
            "header: DENY value hidden behind an earlier value",
            HEADERS_INDIVIDUALLY,
            deny_header(&["admin"]),
            get("/").header("x-role", "user").header("x-role", "admin"),
            Deny,
            "the advisory's attack: the backend reads the second x-role",
        ),
        Row::new(
            "header: DENY value hidden before a later value",
            HEADERS_INDIVIDUALLY,
            deny_header(&["admin"]),
            get("/").header("x-role", "admin").header("x-role", "user"),
            Deny,
            "order does not matter: any value that matches denies",
        ),
        Row::new(
            "header: DENY prefix value in a repeated header",
            HEADERS_INDIVIDUALLY,
            deny_header(&["admin*"]),
            get("/").header("x-role", "user").header("x-role", "admin-ro"),
            Deny,
            "prefix matchers see each value on its own too",
        ),
        Row::new(
            "header: DENY suffix value in the last of repeated headers",
            HEADERS_ALL_VALUES,
            deny_header(&["*admin"]),
            get("/").header("x-role", "user").header("x-role", "admin"),
            Deny,
            "the CVE-2020-25017 case: looking only at the first value missed it",
        ),
        Row::new(
            "header: ALLOW value among repeated headers",
            HEADERS_INDIVIDUALLY,
            json!({"action": "ALLOW", "rules": [{"when": [{"key": "request.headers[x-role]", "values": ["user"]}]}]}),
            get("/").header("x-role", "user").header("x-role", "admin"),
            Allow,
            "patched Envoy: one matching value satisfies the ALLOW condition",
        ),
        Row::new(
            "header: ALLOW notValues excludes a repeat carrying the listed value",
            HEADERS_INDIVIDUALLY,
            json!({"action": "ALLOW", "rules": [{"when": [{"key": "request.headers[x-role]", "notValues": ["admin"]}]}]}),
            get("/").header("x-role", "user").header("x-role", "admin"),
            Deny,
            "Istio emits notValues as not_id(or(HeaderMatcher)), no invert_match: one matching value excludes",
        ),
        Row::new(
            "header: DENY on the comma-joined string no longer fires",
            HEADERS_INDIVIDUALLY,
            deny_header(&["user,admin"]),
            get("/").header("x-role", "user").header("x-role", "admin"),
            Allow,
            "patched Envoy never builds the joined string, so no single value equals \"user,admin\"",
        ),
        Row::new(
            "header NUL: DENY value followed by a NUL",
            "ISTIO-SECURITY-2019-001 / CVE-2019-9900: NUL in header values (Envoy codecs now reject the request)",
            deny_header(&["admin"]),
            get("/").header("x-role", "admin\0"),
            Deny,
            "patched Envoy answers 400; a backend reading C strings sees admin; the filter denies the header map as malformed",
        ),
        Row::new(
            "header CRLF: a second header smuggled into a value",
            "ISTIO-SECURITY-2019-001 / CVE-2019-9900: CR and LF in header values (Envoy codecs reject them)",
            deny_header(&["admin"]),
            get("/").header("x-role", "user\r\nx-role: admin"),
            Deny,
            "a backend that re-parses the value sees x-role: admin; the filter denies the header map as malformed",
        ),
        Row::new(
            "header: policy key written in upper case",
            "Envoy HeaderMatcher: header names are LowerCaseString (RFC 9110 field names are case-insensitive)",
            json!({"action": "DENY", "rules": [{"when": [{"key": "request.headers[X-Role]", "values": ["admin"]}]}]}),
            get("/").header("x-role", "admin"),
            Deny,
            "a policy naming X-Role guards the x-role header Envoy delivers",
        ),
        Row::new(
            "header: request name in mixed case",
            "Envoy HeaderMatcher: header names are LowerCaseString (RFC 9110 field names are case-insensitive)",
            deny_header(&["admin"]),
            get("/").header("X-Role", "admin"),
            Deny,
            "a host that hands over X-Role must not slip past x-role",
        ),
        Row::new(
            "header: values are case-sensitive",
            "istio matcher/string.go StringMatcher: exact match without ignore_case",
            deny_header(&["admin"]),
            get("/").header("x-role", "Admin"),
            Allow,
            "Istio compares header values byte for byte; a backend that folds case needs both spellings",
        ),
        Row::new(
            "header: '*' matches a present but empty value",
            "istio matcher/header.go HeaderMatcher: '*' is present_match (grpc/grpc#41373 for the '.+' variant)",
            deny_header(&["*"]),
            get("/").header("x-role", ""),
            Deny,
            "present_match does not require a non-empty value",
        ),
        Row::new(
            "header: absent header does not match a DENY value",
            "istio matcher/header.go HeaderMatcher",
            deny_header(&["*"]),
            get("/"),
            Allow,
            "baseline for the presence check",
        ),
        // --- host -------------------------------------------------------------------------
        Row::new(
            "host: DENY exact host in upper case",
            HOST_CASE,
            deny_hosts(&["admin.example.com"]),
            get("/").authority("ADMIN.Example.COM"),
            Deny,
            "RFC 4343: DNS names are case-insensitive",
        ),
        Row::new(
            "host: DENY suffix host in upper case",
            HOST_CASE,
            deny_hosts(&["*.example.com"]),
            get("/").authority("API.EXAMPLE.COM"),
            Deny,
            "suffix matchers ignore case too",
        ),
        Row::new(
            "host: DENY prefix host in mixed case",
            HOST_CASE,
            deny_hosts(&["admin.*"]),
            get("/").authority("Admin.Example.com"),
            Deny,
            "prefix matchers ignore case too",
        ),
        Row::new(
            "host: ALLOW exact host in upper case",
            HOST_CASE,
            allow_hosts(&["example.com"]),
            get("/").authority("EXAMPLE.COM"),
            Allow,
            "case folding works both ways",
        ),
        Row::new(
            "host: ALLOW notHosts in mixed case",
            HOST_CASE,
            json!({"action": "ALLOW", "rules": [{"to": [{"operation": {"notHosts": ["admin.example.com"]}}]}]}),
            get("/").authority("Admin.Example.Com"),
            Deny,
            "a negated host ignores case as well",
        ),
        Row::new(
            "host: a different host is not matched",
            "ISTIO-SECURITY-2022-001 / CVE-2022-21679: hosts/notHosts always matched on mixed-version proxies",
            allow_hosts(&["secure.example.com"]),
            get("/").authority("other.example.com"),
            Deny,
            "hosts must really be compared, never dropped",
        ),
        Row::new(
            "host: DENY host with a port appended",
            HOST_MATCHER,
            deny_hosts(&["admin.example.com"]),
            get("/").authority("admin.example.com:8080"),
            Allow,
            "Istio matches :authority as sent: a DENY on hosts must also list admin.example.com:*",
        ),
        Row::new(
            "host: DENY host and host:* with a port",
            HOST_MATCHER,
            deny_hosts(&["admin.example.com", "admin.example.com:*"]),
            get("/").authority("admin.example.com:8080"),
            Deny,
            "the documented way to cover every port",
        ),
        Row::new(
            "host: DENY host:* with an upper-case host and port",
            HOST_MATCHER,
            deny_hosts(&["admin.example.com:*"]),
            get("/").authority("ADMIN.example.com:80"),
            Deny,
            "the prefix matcher ignores case",
        ),
        Row::new(
            "host: ALLOW host with a port appended",
            HOST_MATCHER,
            allow_hosts(&["example.com"]),
            get("/").authority("example.com:80"),
            Deny,
            "for ALLOW the port mismatch fails closed",
        ),
        Row::new(
            "host: DENY host with a trailing dot",
            HOST_MATCHER,
            deny_hosts(&["admin.example.com"]),
            get("/").authority("admin.example.com."),
            Allow,
            "Envoy does not strip the FQDN dot: a DENY must list admin.example.com. too",
        ),
        Row::new(
            "host: ALLOW host with a trailing dot",
            HOST_MATCHER,
            allow_hosts(&["example.com"]),
            get("/").authority("example.com."),
            Deny,
            "for ALLOW the trailing dot fails closed",
        ),
        // --- method -----------------------------------------------------------------------
        Row::new(
            "method: DENY in lower case",
            METHODS,
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["DELETE"]}}]}]}),
            get("/").method("delete"),
            Allow,
            "RFC 9110 methods are case-sensitive; 'delete' is another method, and Istio does not fold it",
        ),
        Row::new(
            "method: ALLOW in lower case",
            METHODS,
            json!({"action": "ALLOW", "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}),
            get("/").method("get"),
            Deny,
            "for ALLOW the case mismatch fails closed",
        ),
        Row::new(
            "method: ALLOW notMethods in lower case",
            METHODS,
            json!({"action": "ALLOW", "rules": [{"to": [{"operation": {"notMethods": ["DELETE"]}}]}]}),
            get("/").method("delete"),
            Allow,
            "notMethods compares as written too",
        ),
        Row::new(
            "method: DENY exact method",
            METHODS,
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["DELETE"]}}]}]}),
            get("/").method("DELETE"),
            Deny,
            "baseline",
        ),
        // --- query ------------------------------------------------------------------------
        Row::new(
            "query: ALLOW exact path with a query naming another path",
            "ISTIO-SECURITY-2020-001 / CVE-2020-8595: exact path matching with '?'",
            json!({"action": "ALLOW", "rules": [{"to": [{"operation": {"paths": ["/public"]}}]}]}),
            get("/public?next=/admin"),
            Allow,
            "the query is not part of the path Istio matches",
        ),
        Row::new(
            "query: ALLOW path prefix cannot be reached through the query",
            "ISTIO-SECURITY-2020-001 / CVE-2020-8595: exact path matching with '?'",
            json!({"action": "ALLOW", "rules": [{"to": [{"operation": {"paths": ["/public*"]}}]}]}),
            get("/admin?/public"),
            Deny,
            "/admin is judged, not the query text",
        ),
        Row::new(
            "query: path template ignores the query",
            "istio generator.go pathGenerator: {*}/{**} become Envoy uri_template, matched on the path only",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin/{**}"]}}]}]}),
            get("/admin/users?x=1"),
            Deny,
            "templates strip the query like PathMatcher",
        ),
        Row::new(
            "query: path template after merging slashes",
            "ISTIO-SECURITY-2021-005 / CVE-2021-31920 with a path template",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin/{**}"]}}]}]}),
            get("//admin//users"),
            Deny,
            "templates match the normalized path",
        )
        .normalization("MERGE_SLASHES"),
        // --- headers the filter must not trust ---------------------------------------------
        Row::new(
            "spoofed x-envoy-original-path does not replace :path",
            "Envoy CVE-2023-27487 / GHSA-5375-pq35-hf2g: clients could fake x-envoy-original-path",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}),
            get("/admin").header("x-envoy-original-path", "/public"),
            Deny,
            "only :path is judged",
        ),
        Row::new(
            "spoofed x-envoy-external-address does not set remote.ip",
            "Envoy CVE-2024-45806 / GHSA-ffhv-fvxq-r6mf: x-envoy headers from external sources",
            json!({"action": "ALLOW", "rules": [{"from": [{"source": {"remoteIpBlocks": ["10.0.0.0/8"]}}]}]}),
            get("/")
                .header("x-envoy-external-address", "10.1.2.3")
                .source_address("198.51.100.7:5555"),
            Deny,
            "remote.ip is Envoy's trusted client address, never a header the client chose",
        ),
        Row::new(
            "a bearer token without request authentication is no request principal",
            "istio.io RequestAuthentication: request.auth.* exist only after the JWT filter validated a token",
            json!({"action": "ALLOW", "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]}),
            get("/").header("authorization", "Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4Iiwic3ViIjoieSJ9."),
            Deny,
            "an unverified (alg none) token carries no identity",
        ),
        // --- exact paths ------------------------------------------------------------------
        Row::new(
            "exact path: a trailing slash is another path",
            "ISTIO-SECURITY-2021-005 / CVE-2021-31920 example policy paths [\"/admin\"]",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}),
            get("/admin/"),
            Allow,
            "documented: an exact DENY needs /admin/* beside it",
        ),
        Row::new(
            "exact path: merged slashes reach the exact path",
            "ISTIO-SECURITY-2021-005 / CVE-2021-31920 example policy paths [\"/admin\"]",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}),
            get("//admin"),
            Deny,
            "the advisory's own request, under its fix",
        )
        .normalization("MERGE_SLASHES"),
        Row::new(
            "exact path: the advisory's request under BASE",
            "ISTIO-SECURITY-2021-005 / CVE-2021-31920 example policy paths [\"/admin\"]",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}),
            get("//admin"),
            Allow,
            "BASE is documented as vulnerable to it",
        ),
        Row::new(
            "exact path: escaped '#' is not a fragment",
            "ISTIO-SECURITY-2021-008 / CVE-2021-39156: vulnerable versions turned /p#f into /p%23f",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}),
            get("/admin%23x"),
            Allow,
            "%23 stays escaped: the request names another resource",
        ),
        Row::new(
            "exact path: a raw NUL is refused",
            "ISTIO-SECURITY-2019-001 / CVE-2019-9900: NUL in header values",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}),
            get("/admin\0/x"),
            Deny,
            "Envoy's codecs never pass NUL; the filter refuses the path rather than judge half of it",
        ),
        // --- HTTP-only fields on TCP ------------------------------------------------------
        Row::new(
            "tcp: DENY rule with HTTP-only fields still applies",
            TCP_FIELDS,
            json!({"action": "DENY", "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/demo/sa/frontend"]}}], "to": [{"operation": {"paths": ["/admin"]}}]}]}),
            get("/").tcp(),
            Deny,
            "dropping paths makes the DENY broader, so TCP cannot dodge it",
        ),
        Row::new(
            "tcp: ALLOW rule with HTTP-only fields allows nothing",
            TCP_FIELDS,
            json!({"action": "ALLOW", "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/demo/sa/frontend"]}}], "to": [{"operation": {"methods": ["GET"]}}]}]}),
            get("/").tcp(),
            Deny,
            "an ALLOW rule that needs HTTP facts cannot match a TCP connection",
        ),
        Row::new(
            "tcp: DENY on a request header applies to TCP",
            TCP_FIELDS,
            json!({"action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["demo"]}}], "when": [{"key": "request.headers[x-role]", "values": ["admin"]}]}]}),
            get("/").tcp(),
            Deny,
            "the HTTP-only condition is dropped, the rest still denies",
        ),
    ]
}

#[test]
fn request_attribute_bypasses_decide_as_patched_istio() {
    let rows = rows();
    assert!(rows.len() >= 30, "{} rows", rows.len());
    assert_closed_rows(&rows);
}
