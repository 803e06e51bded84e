//! Identity bypasses: principal, namespace and service-account look-alikes, SPIFFE ID path
//! injection, forged or confusing `x-forwarded-client-cert`, invalid certificates, and
//! `ipBlocks` vs `x-forwarded-for`. Every row runs through the glue, so the SPIFFE ID
//! validation of the identity module is part of what is tested.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod bypass_support;
#[path = "identity_support/mod.rs"]
mod identity_support;

use bypass_support::{assert_closed_rows, get, Allow, Deny, Peer, Row};
use identity_support::{ca, url_encode, Leaf, HOUR};
use serde_json::{json, Value};

const ADMIN: &str = "spiffe://cluster.local/ns/demo/sa/admin";
const FRONTEND: &str = "spiffe://cluster.local/ns/demo/sa/frontend";
const BACKEND: &str = "spiffe://cluster.local/ns/demo/sa/backend";

const PRINCIPAL_EXACT: &str =
    "istio generator.go srcPrincipalGenerator: StringMatcherWithPrefix(v, \"spiffe://\"), exact unless '*'";
const NAMESPACE_REGEX: &str =
    "istio generator.go srcNamespaceGenerator: regex .*/ns/<v>/.* on the URI SAN";
const SA_REGEX: &str =
    "istio generator.go serviceAccountRegex: spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?";
/// Rows 3 and 4 of the corpus used to demand a stricter namespace / service-account
/// derivation than Istio's. Our decisions must equal Istio's: patched Istio's own regexes
/// (`srcNamespaceGenerator` `.*/ns/<ns>/.*`, `serviceAccountRegex`) match these IDs, and
/// Istio's CA only ever issues `spiffe://<td>/ns/<ns>/sa/<sa>`, so they cannot come from it.
const ISTIO_VERDICT: &str =
    "istio generator.go srcNamespaceGenerator / serviceAccountRegex (patched, QuoteMeta'd): Istio's verdict on non-Istio-shaped IDs";
const SPIFFE_ID: &str = "SPIFFE-ID.md §2 (go-spiffe spiffeid): one spelling per identity";
const TRUST_DOMAIN: &str =
    "Istio mTLS: a peer outside the trust domain and its aliases fails the handshake";
const XFCC: &str =
    "Envoy HCM forward_client_cert_details APPEND_FORWARD (Istio sidecar default): only the last XFCC element is Envoy's";
const IP_BLOCKS: &str =
    "istio generator.go srcIPGenerator (direct_remote_ip) vs remoteIPGenerator (remote_ip); istio.io ipBlocks / remoteIpBlocks reference";

fn allow_principals(values: &[&str]) -> Value {
    json!({"action": "ALLOW", "rules": [{"from": [{"source": {"principals": values}}]}]})
}

fn allow_namespaces(values: &[&str]) -> Value {
    json!({"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": values}}]}]})
}

fn allow_service_accounts(values: &[&str]) -> Value {
    json!({"action": "ALLOW", "rules": [{"from": [{"source": {"serviceAccounts": values}}]}]})
}

fn deny_principals(values: &[&str]) -> Value {
    json!({"action": "DENY", "rules": [{"from": [{"source": {"principals": values}}]}]})
}

fn as_peer(spiffe_id: &str) -> bypass_support::Request {
    get("/").peer(Peer::spiffe(spiffe_id))
}

fn principal_rows() -> Vec<Row> {
    let admin = allow_principals(&["cluster.local/ns/demo/sa/admin"]);
    let look_alike = |name: &'static str, advisory: &'static str, uri: &str, note: &'static str| {
        Row::new(
            format!("principal: {name}"),
            advisory,
            admin.clone(),
            as_peer(uri),
            Deny,
            note,
        )
    };
    vec![
        Row::new(
            "principal: the allowed identity",
            PRINCIPAL_EXACT,
            admin.clone(),
            as_peer(ADMIN),
            Allow,
            "baseline",
        ),
        look_alike(
            "service account with a suffix",
            PRINCIPAL_EXACT,
            "spiffe://cluster.local/ns/demo/sa/admin-evil",
            "an exact principal is not a prefix",
        ),
        look_alike(
            "service account with an extra segment",
            PRINCIPAL_EXACT,
            "spiffe://cluster.local/ns/demo/sa/admin/evil",
            "no implicit trailing match on principals",
        ),
        look_alike(
            "service account in another case",
            PRINCIPAL_EXACT,
            "spiffe://cluster.local/ns/demo/sa/Admin",
            "principals compare byte for byte",
        ),
        look_alike(
            "same path in a look-alike trust domain",
            TRUST_DOMAIN,
            "spiffe://cluster.local.evil/ns/demo/sa/admin",
            "cluster.local.evil is not cluster.local",
        ),
        look_alike(
            "same path in an upper-case trust domain",
            SPIFFE_ID,
            "spiffe://CLUSTER.LOCAL/ns/demo/sa/admin",
            "SPIFFE trust domains are lower case: a second spelling is refused",
        ),
        look_alike(
            "upper-case scheme",
            SPIFFE_ID,
            "SPIFFE://cluster.local/ns/demo/sa/admin",
            "the scheme is exactly spiffe://",
        ),
        look_alike(
            "trailing slash",
            SPIFFE_ID,
            "spiffe://cluster.local/ns/demo/sa/admin/",
            "SPIFFE IDs have no trailing slash",
        ),
        look_alike(
            "dot-dot segment",
            SPIFFE_ID,
            "spiffe://cluster.local/ns/demo/sa/x/../admin",
            "SPIFFE IDs have no dot segments",
        ),
        look_alike(
            "empty segment",
            SPIFFE_ID,
            "spiffe://cluster.local/ns/demo//sa/admin",
            "SPIFFE IDs have no empty segments",
        ),
        look_alike(
            "percent-encoded slash",
            SPIFFE_ID,
            "spiffe://cluster.local/ns/demo/sa%2Fadmin",
            "'%' is not a SPIFFE path character",
        ),
        look_alike(
            "user info in the authority",
            SPIFFE_ID,
            "spiffe://admin@cluster.local/ns/demo/sa/admin",
            "SPIFFE IDs carry no user info",
        ),
        look_alike(
            "port in the authority",
            SPIFFE_ID,
            "spiffe://cluster.local:443/ns/demo/sa/admin",
            "SPIFFE IDs carry no port",
        ),
        look_alike(
            "query after the path",
            SPIFFE_ID,
            "spiffe://cluster.local/ns/demo/sa/admin?x=1",
            "SPIFFE IDs carry no query",
        ),
        Row::new(
            "principal: suffix rule does not admit a foreign trust domain",
            TRUST_DOMAIN,
            allow_principals(&["*/ns/demo/sa/admin"]),
            as_peer("spiffe://evil-cluster.local/ns/demo/sa/admin"),
            Deny,
            "the suffix matches, but the peer is not in the trust domain",
        ),
        Row::new(
            "principal: prefix rule admits a longer service account",
            PRINCIPAL_EXACT,
            allow_principals(&["cluster.local/ns/demo/sa/admin*"]),
            as_peer("spiffe://cluster.local/ns/demo/sa/admin-evil"),
            Allow,
            "documented prefix semantics: write the exact principal to avoid this",
        ),
        Row::new(
            "principal: DENY exact does not cover a look-alike",
            PRINCIPAL_EXACT,
            deny_principals(&["cluster.local/ns/demo/sa/admin"]),
            as_peer("spiffe://cluster.local/ns/demo/sa/admin-evil"),
            Allow,
            "a DENY names identities exactly; guard look-alikes with an ALLOW list",
        ),
        Row::new(
            "principal: '*' requires an authenticated peer",
            "istio.io AuthorizationPolicy: principals [\"*\"] means any authenticated peer",
            allow_principals(&["*"]),
            get("/").peer(Peer::Plaintext),
            Deny,
            "plaintext has no principal",
        ),
        Row::new(
            "principal: uri_san without mTLS is not an identity",
            "Envoy connection.mtls false: no peer certificate was presented",
            admin.clone(),
            get("/")
                .peer(Peer::Plaintext)
                .header("x-forwarded-client-cert", &format!("URI={ADMIN}")),
            Deny,
            "plaintext can carry nothing that names a peer",
        ),
        Row::new(
            "principal: DENY notPrincipals catches plaintext",
            "istio.io AuthorizationPolicy: notPrincipals matches a request without a peer principal",
            json!({"action": "DENY", "rules": [{"from": [{"source": {"notPrincipals": ["cluster.local/ns/demo/sa/frontend"]}}]}]}),
            get("/").peer(Peer::Plaintext),
            Deny,
            "deny-all-but-one must also deny the unauthenticated",
        ),
        Row::new(
            "principal: cluster.local in a policy means the local trust domain",
            "istio trustdomain bundle.go ReplaceTrustDomainAliases: cluster.local stands for the mesh trust domain",
            admin.clone(),
            as_peer("spiffe://corp.example/ns/demo/sa/admin"),
            Allow,
            "policies written for the default trust domain keep working after a rename",
        )
        .settings(json!({"trustDomain": "corp.example"})),
        Row::new(
            "principal: literal cluster.local peer outside the renamed trust domain",
            TRUST_DOMAIN,
            admin.clone(),
            as_peer(ADMIN),
            Deny,
            "the alias substitution widens the policy, never the set of trusted peers",
        )
        .settings(json!({"trustDomain": "corp.example"})),
        Row::new(
            "principal: an alias trust domain is the same identity",
            "istio meshConfig.trustDomainAliases (trustdomain bundle.go)",
            admin.clone(),
            as_peer("spiffe://old.example/ns/demo/sa/admin"),
            Allow,
            "aliases are trusted and equal to the local domain",
        )
        .settings(json!({"trustDomain": "corp.example", "trustDomainAliases": ["old.example"]})),
        Row::new(
            "principal: a look-alike of the alias is not trusted",
            TRUST_DOMAIN,
            admin.clone(),
            as_peer("spiffe://old.example.evil/ns/demo/sa/admin"),
            Deny,
            "alias matching is exact",
        )
        .settings(json!({"trustDomain": "corp.example", "trustDomainAliases": ["old.example"]})),
        Row::new(
            "principal: TCP DENY with a wildcard suffix principal",
            "CVE-2020-16844: DENY with '*suffix' principals/namespaces generated no TCP match",
            json!({"action": "DENY", "rules": [{"from": [{"source": {"principals": ["*/sa/admin"]}}]}]}),
            as_peer(ADMIN).tcp(),
            Deny,
            "suffix principals must match on TCP too",
        ),
        Row::new(
            "principal: TCP DENY with a wildcard suffix namespace",
            "CVE-2020-16844: DENY with '*suffix' principals/namespaces generated no TCP match",
            json!({"action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["*mo"]}}]}]}),
            as_peer(ADMIN).tcp(),
            Deny,
            "suffix namespaces must match on TCP too",
        ),
    ]
}

fn namespace_rows() -> Vec<Row> {
    let prod = allow_namespaces(&["prod"]);
    vec![
        Row::new(
            "namespace: the allowed namespace",
            NAMESPACE_REGEX,
            prod.clone(),
            as_peer("spiffe://cluster.local/ns/prod/sa/x"),
            Allow,
            "baseline",
        ),
        Row::new(
            "namespace: look-alike with a suffix",
            NAMESPACE_REGEX,
            prod.clone(),
            as_peer("spiffe://cluster.local/ns/prod-evil/sa/x"),
            Deny,
            "the regex closes the segment with '/'",
        ),
        Row::new(
            "namespace: look-alike with a prefix",
            NAMESPACE_REGEX,
            prod.clone(),
            as_peer("spiffe://cluster.local/ns/xprod/sa/x"),
            Deny,
            "the regex opens the segment with '/ns/'",
        ),
        Row::new(
            "namespace: look-alike trust domain",
            TRUST_DOMAIN,
            prod.clone(),
            as_peer("spiffe://cluster.local.evil/ns/prod/sa/x"),
            Deny,
            "a foreign trust domain is no peer at all",
        ),
        Row::new(
            "namespace: prefix rule admits a longer namespace",
            NAMESPACE_REGEX,
            allow_namespaces(&["prod*"]),
            as_peer("spiffe://cluster.local/ns/prod-evil/sa/x"),
            Allow,
            "documented '*' semantics",
        ),
        Row::new(
            "namespace: empty segment after the namespace",
            SPIFFE_ID,
            prod.clone(),
            as_peer("spiffe://cluster.local/ns/prod//sa/x"),
            Deny,
            "the regex .*/ns/prod/.* would match; the ID is refused before any matcher",
        ),
        Row::new(
            "namespace: trailing slash after the namespace",
            SPIFFE_ID,
            prod.clone(),
            as_peer("spiffe://cluster.local/ns/prod/"),
            Deny,
            "the regex would match; a SPIFFE ID has no trailing slash",
        ),
        Row::new(
            "namespace: dot-dot climbing out of the namespace",
            SPIFFE_ID,
            prod.clone(),
            as_peer("spiffe://cluster.local/ns/prod/../evil/sa/x"),
            Deny,
            "the regex would match; a SPIFFE ID has no dot segments",
        ),
        Row::new(
            "namespace injection: /ns/prod/ inside the service account path",
            ISTIO_VERDICT,
            prod.clone(),
            as_peer("spiffe://cluster.local/ns/evil/sa/ns/prod/x"),
            Allow,
            "patched Istio's regex .*/ns/prod/.* matches this ID, so Istio allows it and so do we; Istio's CA never issues it (its SVIDs are exactly /ns/<ns>/sa/<sa>), so only a CA outside the mesh's control could mint it",
        ),
        Row::new(
            "namespace injection: /ns/prod/ after a leading segment",
            ISTIO_VERDICT,
            prod.clone(),
            as_peer("spiffe://cluster.local/evil/ns/prod/sa/x"),
            Allow,
            "patched Istio's regex .*/ns/prod/.* matches after any leading segment; decisions equal Istio's, and Istio's CA never issues such an ID",
        ),
    ]
}

fn service_account_rows() -> Vec<Row> {
    let admin = allow_service_accounts(&["prod/admin"]);
    vec![
        Row::new(
            "service account: the allowed account",
            SA_REGEX,
            admin.clone(),
            as_peer("spiffe://cluster.local/ns/prod/sa/admin"),
            Allow,
            "baseline",
        ),
        Row::new(
            "service account: look-alike with a suffix",
            SA_REGEX,
            admin.clone(),
            as_peer("spiffe://cluster.local/ns/prod/sa/admin-evil"),
            Deny,
            "the regex ends the name at '/' or the end",
        ),
        Row::new(
            "service account: same name in a look-alike namespace",
            SA_REGEX,
            admin.clone(),
            as_peer("spiffe://cluster.local/ns/prod-evil/sa/admin"),
            Deny,
            "the namespace is part of the account",
        ),
        Row::new(
            "service account: a dot is literal",
            "CVE-2026-39350 (fixed in Istio 1.27.9, 1.28.6, 1.29.2): serviceAccounts treated '.' as a regex wildcard",
            allow_service_accounts(&["demo/cert-manager.io"]),
            as_peer("spiffe://cluster.local/ns/demo/sa/cert-manager-io"),
            Deny,
            "cert-manager-io is another account",
        ),
        Row::new(
            "service account: the dotted account itself",
            "CVE-2026-39350: serviceAccounts treated '.' as a regex wildcard",
            allow_service_accounts(&["demo/cert-manager.io"]),
            as_peer("spiffe://cluster.local/ns/demo/sa/cert-manager.io"),
            Allow,
            "baseline for the literal dot",
        ),
        Row::new(
            "service account injection: /ns/prod/ inside another account's path",
            ISTIO_VERDICT,
            admin.clone(),
            as_peer("spiffe://cluster.local/ns/evil/sa/ns/prod/sa/admin"),
            Allow,
            "patched Istio's serviceAccountRegex spiffe://.+/ns/prod/(.+/|)sa/admin(/.+)? matches (.+ takes cluster.local/ns/evil/sa); decisions equal Istio's, and Istio's CA never issues such an ID",
        ),
    ]
}

fn xfcc(value: &str) -> bypass_support::Request {
    get("/")
        .peer(Peer::spiffe(FRONTEND))
        .header("x-forwarded-client-cert", value)
}

fn xfcc_rows() -> Vec<Row> {
    let admin = allow_principals(&["cluster.local/ns/demo/sa/admin"]);
    let sources = json!({"identitySources": ["xfcc"]});
    let row = |name: &'static str, request: bypass_support::Request, expect, note| {
        Row::new(
            format!("xfcc: {name}"),
            XFCC,
            admin.clone(),
            request,
            expect,
            note,
        )
        .settings(sources.clone())
    };
    vec![
        row(
            "Envoy's own element names the peer",
            xfcc(&format!("By={BACKEND};URI={ADMIN}")),
            Allow,
            "baseline: the last element is the verified hop",
        ),
        row(
            "forged header on a plaintext connection",
            get("/").peer(Peer::Plaintext).header(
                "x-forwarded-client-cert",
                &format!("By={BACKEND};URI={ADMIN}"),
            ),
            Deny,
            "Envoy strips XFCC from plaintext requests in the modes where it is trusted",
        ),
        row(
            "forged earlier element",
            xfcc(&format!("URI={ADMIN},By={BACKEND};URI={FRONTEND}")),
            Deny,
            "only the element Envoy appended counts",
        ),
        row(
            "forged earlier element with a mixed-case key",
            xfcc(&format!("uRi={ADMIN},By={BACKEND};URI={FRONTEND}")),
            Deny,
            "key case does not promote a forged element",
        ),
        row(
            "quoted comma inside a forged element",
            xfcc(&format!(
                "Subject=\"CN=x,URI={ADMIN}\";URI={FRONTEND},By={BACKEND};URI={FRONTEND}"
            )),
            Deny,
            "a quoted ',' does not split elements",
        ),
        row(
            "forged element ending in a quoted comma",
            xfcc(&format!(
                "Subject=\"a,\";URI={ADMIN},By={BACKEND};URI={FRONTEND}"
            )),
            Deny,
            "the quote closes before Envoy's element",
        ),
        row(
            "unterminated quote swallowing Envoy's element",
            xfcc(&format!(
                "Subject=\"x;URI={ADMIN},By={BACKEND};URI={FRONTEND}"
            )),
            Deny,
            "a syntax error rejects the header, it is never guessed around",
        ),
        row(
            "escaped quote keeping a forged element open",
            xfcc(&format!(
                "Subject=\"x\\\",URI={ADMIN}\",By={BACKEND};URI={FRONTEND}"
            )),
            Deny,
            "\\\" stays inside the quoted value",
        ),
        row(
            "repeated header lines",
            xfcc(&format!("URI={ADMIN},By={BACKEND};URI={FRONTEND}")).header(
                "x-forwarded-client-cert",
                &format!("By={BACKEND};URI={ADMIN}"),
            ),
            Deny,
            "Envoy appends to the first line; a second line is the client's",
        ),
        row(
            "repeated header lines, forged element first",
            get("/")
                .peer(Peer::spiffe(FRONTEND))
                .header(
                    "x-forwarded-client-cert",
                    &format!("By={BACKEND};URI={ADMIN}"),
                )
                .header(
                    "x-forwarded-client-cert",
                    &format!("URI={FRONTEND},By={BACKEND};URI={FRONTEND}"),
                ),
            Deny,
            "two XFCC lines are ambiguous (whichever line Envoy appended to, the peer is frontend): the filter denies them as an invalid peer identity",
        ),
        row(
            "repeated header lines, Envoy's line spelt in mixed case",
            get("/")
                .peer(Peer::spiffe(FRONTEND))
                .header(
                    "x-forwarded-client-cert",
                    &format!("By={BACKEND};URI={ADMIN}"),
                )
                .header(
                    "X-Forwarded-Client-Cert",
                    &format!("URI={FRONTEND},By={BACKEND};URI={FRONTEND}"),
                ),
            Deny,
            "header names are case-insensitive (RFC 9110 §5.1): these are two XFCC lines, not one",
        ),
        row(
            "header name in mixed case",
            get("/")
                .peer(Peer::spiffe(FRONTEND))
                .header("X-Forwarded-Client-Cert", &format!("By={BACKEND};URI={ADMIN}")),
            Allow,
            "Envoy's header maps are lower-case: the mixed-case line is the XFCC header",
        ),
        Row::new(
            "xfcc: header name in mixed case against a DENY on its identity",
            XFCC,
            deny_principals(&["cluster.local/ns/demo/sa/evil"]),
            get("/").peer(Peer::spiffe(FRONTEND)).header(
                "X-Forwarded-Client-Cert",
                &format!("By={BACKEND};URI=spiffe://cluster.local/ns/demo/sa/evil"),
            ),
            Deny,
            "a host that hands over X-Forwarded-Client-Cert must not make evil anonymous",
        )
        .settings(sources.clone()),
        row(
            "Envoy's element from a foreign trust domain",
            xfcc(&format!(
                "By={BACKEND};URI=spiffe://cluster.local.evil/ns/demo/sa/admin"
            )),
            Deny,
            "a look-alike trust domain is untrusted here too",
        ),
        row(
            "two URI values in Envoy's element",
            xfcc(&format!("By={BACKEND};URI={FRONTEND};URI={ADMIN}")),
            Deny,
            "an X.509-SVID has exactly one URI SAN",
        ),
        row(
            "mTLS without an XFCC header",
            get("/").peer(Peer::spiffe(ADMIN)),
            Deny,
            "the configured source has nothing: no identity, no fall-through",
        ),
    ]
}

fn certificate_rows() -> Vec<Row> {
    let ca = ca();
    let sources = json!({"identitySources": ["peerCertificate"]});
    let pem = |leaf: Leaf| url_encode(&leaf.pem(&ca));
    let expired = |id: &str| {
        pem(Leaf {
            not_before: -2 * HOUR,
            not_after: -HOUR,
            ..Leaf::svid(id)
        })
    };
    let two_uris = |first: &str, second: &str| {
        pem(Leaf {
            uris: vec![first.to_owned(), second.to_owned()],
            ..Leaf::svid(first)
        })
    };
    let evil = "spiffe://cluster.local/ns/demo/sa/evil";
    let deny_evil = deny_principals(&["cluster.local/ns/demo/sa/evil"]);
    vec![
        Row::new(
            "certificate: a valid SVID",
            "SPIFFE X509-SVID.md",
            allow_principals(&["cluster.local/ns/demo/sa/admin"]),
            get("/").peer(Peer::certificate(pem(Leaf::svid(ADMIN)))),
            Allow,
            "baseline",
        )
        .settings(sources.clone()),
        Row::new(
            "certificate: a second URI SAN naming the allowed identity",
            "SPIFFE X509-SVID.md §2: exactly one URI SAN (Envoy CVE-2022-21656 for SAN confusion)",
            allow_principals(&["cluster.local/ns/demo/sa/admin"]),
            get("/").peer(Peer::certificate(two_uris(FRONTEND, ADMIN))),
            Deny,
            "STRICTER THAN ISTIO: Envoy's RBAC tries every URI SAN, so Istio would allow; the filter denies a certificate naming two identities as an invalid peer (X.509-SVID: exactly one)",
        )
        .settings(sources.clone()),
        Row::new(
            "certificate: expired SVID against an ALLOW",
            "Istio mTLS handshake: an expired client certificate is refused",
            allow_principals(&["cluster.local/ns/demo/sa/admin"]),
            get("/").peer(Peer::certificate(expired(ADMIN))),
            Deny,
            "fail closed for ALLOW",
        )
        .settings(sources.clone()),
        Row::new(
            "certificate: expired SVID against a DENY notPrincipals",
            "istio.io AuthorizationPolicy: notPrincipals matches a request without a peer principal",
            json!({"action": "DENY", "rules": [{"from": [{"source": {"notPrincipals": ["cluster.local/ns/demo/sa/admin"]}}]}]}),
            get("/").peer(Peer::certificate(expired(ADMIN))),
            Deny,
            "an invalid certificate proves no principal, so the negation denies",
        )
        .settings(sources.clone()),
        Row::new(
            "certificate: expired SVID against a DENY on its identity",
            "Istio mTLS handshake: an expired client certificate is refused",
            deny_evil.clone(),
            get("/").peer(Peer::certificate(expired(evil))),
            Deny,
            "Istio never serves this peer; the filter denies a presented but invalid identity before policies",
        )
        .settings(sources.clone()),
        Row::new(
            "certificate: two URI SANs against a DENY on one of them",
            "Envoy RBAC AuthenticatedMatcher: every URI SAN is tried",
            deny_evil,
            get("/").peer(Peer::certificate(two_uris(FRONTEND, evil))),
            Deny,
            "Envoy denies when any SAN matches; the filter denies the doubly-named certificate as an invalid peer",
        )
        .settings(sources),
    ]
}

fn ip_rows() -> Vec<Row> {
    let deny_blocks = json!({"action": "DENY", "rules": [{"from": [{"source": {"ipBlocks": ["203.0.113.0/24"]}}]}]});
    vec![
        Row::new(
            "ipBlocks: DENY the socket peer",
            IP_BLOCKS,
            deny_blocks.clone(),
            get("/").source_address("203.0.113.7:5555"),
            Deny,
            "source.address with a real port is the direct peer",
        ),
        Row::new(
            "ipBlocks: DENY the socket peer behind a spoofed x-forwarded-for",
            IP_BLOCKS,
            deny_blocks.clone(),
            get("/")
                .header("x-forwarded-for", "10.9.9.9")
                .source_address("10.9.9.9:0"),
            Deny,
            "direct peer 203.0.113.7 sent XFF 10.9.9.9; Envoy reports the XFF address with port 0, Istio's ipBlocks still sees 203.0.113.7",
        ),
        Row::new(
            "ipBlocks: ALLOW cannot be earned with x-forwarded-for",
            IP_BLOCKS,
            json!({"action": "ALLOW", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}),
            get("/")
                .header("x-forwarded-for", "10.1.2.3")
                .source_address("10.1.2.3:0"),
            Deny,
            "direct peer 198.51.100.7 claims 10.1.2.3 in XFF",
        ),
        Row::new(
            "ipBlocks: ALLOW the socket peer",
            IP_BLOCKS,
            json!({"action": "ALLOW", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}),
            get("/").source_address("10.0.0.5:43210"),
            Allow,
            "baseline",
        ),
        Row::new(
            "ipBlocks: DENY notIpBlocks with an unknown direct peer",
            IP_BLOCKS,
            json!({"action": "DENY", "rules": [{"from": [{"source": {"notIpBlocks": ["10.0.0.0/8"]}}]}]}),
            get("/")
                .header("x-forwarded-for", "10.1.2.3")
                .source_address("10.1.2.3:0"),
            Deny,
            "direct peer 198.51.100.7 is outside 10/8; claiming an inside XFF must not help",
        ),
        Row::new(
            "remoteIpBlocks: DENY the x-forwarded-for client",
            IP_BLOCKS,
            json!({"action": "DENY", "rules": [{"from": [{"source": {"remoteIpBlocks": ["203.0.113.0/24"]}}]}]}),
            get("/")
                .header("x-forwarded-for", "203.0.113.9")
                .source_address("203.0.113.9:0"),
            Deny,
            "remoteIpBlocks reads the trusted client address",
        ),
        Row::new(
            "remoteIpBlocks: ALLOW the x-forwarded-for client",
            IP_BLOCKS,
            json!({"action": "ALLOW", "rules": [{"from": [{"source": {"remoteIpBlocks": ["192.0.2.0/24"]}}]}]}),
            get("/")
                .header("x-forwarded-for", "192.0.2.5")
                .source_address("192.0.2.5:0"),
            Allow,
            "baseline",
        ),
        Row::new(
            "remoteIpBlocks: DENY the socket peer without x-forwarded-for",
            IP_BLOCKS,
            json!({"action": "DENY", "rules": [{"from": [{"source": {"remoteIpBlocks": ["203.0.113.0/24"]}}]}]}),
            get("/").source_address("203.0.113.7:5555"),
            Deny,
            "without XFF the client address is the socket peer",
        ),
    ]
}

fn rows() -> Vec<Row> {
    let mut rows = principal_rows();
    rows.extend(namespace_rows());
    rows.extend(service_account_rows());
    rows.extend(xfcc_rows());
    rows.extend(certificate_rows());
    rows.extend(ip_rows());
    rows
}

#[test]
fn identity_bypasses_decide_as_patched_istio() {
    let rows = rows();
    assert!(rows.len() >= 55, "{} rows", rows.len());
    assert_closed_rows(&rows);
}
