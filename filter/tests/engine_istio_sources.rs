//! Source fields, identity conditions and policy scope, row by row against Istio's generator
//! and Envoy's RBAC matchers: `principals`, trust-domain aliases, `namespaces`,
//! `serviceAccounts`, `trustDomains`, `requestPrincipals` and the JWT conditions, `ipBlocks` /
//! `remoteIpBlocks` and the address conditions, `selector` / `targetRef(s)` / root namespace.
//!
//! Every row runs twice, as the only rule of an ALLOW policy and of a DENY policy, so it pins
//! both "allowed by" and "denied by". Rows about a fact the host could not tell say apart what
//! the rule counts as under each action (fail closed).
//!
//! Sources named in rows (istio/istio unless said otherwise):
//! - SRC_PRINCIPAL: `pilot/pkg/security/authz/model/generator.go` `srcPrincipalGenerator`
//!   (`StringMatcherWithPrefix(v, "spiffe://")`: exact, prefix, `*x` = regex
//!   `spiffe://.*x`, `*` = regex `.+`) wrapped in `principalAuthenticated`.
//! - MODEL: `pilot/pkg/security/authz/model/model.go` (`New`: which key lands in which
//!   generator; `rule.principal`: values OR'ed, notValues as `not_id` of their OR;
//!   `MigrateTrustDomain` only touches `source.principal` values).
//! - ENVOY_AUTHN: envoyproxy/envoy `source/extensions/filters/common/rbac/matchers.cc`
//!   `AuthenticatedMatcher::matches`: no TLS connection -> false, so a `not_id` around it is
//!   true for a plaintext peer.
//! - BUNDLE: `pilot/pkg/security/trustdomain/bundle.go` (`ReplaceTrustDomainAliases`,
//!   `replaceTrustDomains`, `isTrustDomainBeingEnforced`, `ExpandTrustDomainAliases`) and
//!   `util.go` (`stringMatch`, `prefixMatch`, `suffixMatch`).
//! - BUILDER: `pilot/pkg/security/authz/builder/builder.go` `build`: `MigrateTrustDomain` runs
//!   for every rule, aliases or not.
//! - SRC_NS: `generator.go` `srcNamespaceGenerator` (regex `.*/ns/<v>/.*`, `*` -> `.*`, the
//!   value quoted since CVE-2026-39350).
//! - SRC_SA: `generator.go` `srcServiceAccountGenerator` / `serviceAccountRegex`
//!   (`spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?`, `<ns>` defaults to the policy's namespace).
//! - REQ_PRINCIPAL: `generator.go` `requestPrincipalGenerator.extendedPrincipal` (split at
//!   the last `/`; `iss` and `sub` JWT claims each matched as metadata strings).
//! - JWT_CLAIMS: `generator.go` `requestClaimGenerator` / `requestAudiencesGenerator` /
//!   `requestPresenterGenerator` + `model/util.go` `MetadataListValueMatcherForJWTClaims`
//!   (+ `matcher/metadata.go` `MetadataListValueMatcher` with `useExtendedJwt`: OR of
//!   `list_match.one_of` and the plain string matcher).
//! - ENVOY_VALUE: envoyproxy/envoy `source/common/common/matchers.cc` `ValueMatcher`: a string
//!   matcher only matches a string value; a missing value matches nothing.
//! - IP: `pilot/pkg/networking/util/util.go` `AddrStrToCidrRange` (bare address = /32 or
//!   /128) + `generator.go` `srcIPGenerator` (`direct_remote_ip`) / `remoteIPGenerator`
//!   (`remote_ip`) + envoy `source/common/network/cidr_range.cc` `CidrRange::isInRange`
//!   (another IP version never matches; host bits masked).
//! - SCOPE: `pilot/pkg/model/policyattachment.go` `ShouldAttachPolicy` / `isSelected`
//!   (a non-gateway workload ignores any policy with `targetRef(s)`; a nil selector or an
//!   empty `matchLabels` selects everything) and `pilot/pkg/model/authorization.go`
//!   `ListAuthorizationPolicies` (root namespace + the workload's namespace).
//! - UNKNOWN: this engine's fail-closed rule for a fact the host could not tell
//!   (`engine/mod.rs`), modelled on `model.go` `checkError` (DENY widens, ALLOW narrows).

// Tests state their expectations with unwrap/expect/panic; the workspace denies them only in
// the filter's own code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod engine_support;

use engine_support::*;
use serde_json::{json, Value};
use spiffe_authz::engine::EngineConfig;

/// The label Istio reads to tell a Gateway API gateway (`label.IoK8sNetworkingGatewayGatewayName`).
const GATEWAY_NAME: &str = "gateway.networking.k8s.io/gateway-name";

const SRC_PRINCIPAL: &str =
    "istio generator.go srcPrincipalGenerator + matcher/string.go StringMatcherWithPrefix";
const MODEL: &str = "istio model.go New/rule.principal";
const ENVOY_AUTHN: &str = "envoy rbac/matchers.cc AuthenticatedMatcher (no ssl -> false)";
const BUNDLE: &str = "istio trustdomain/bundle.go ReplaceTrustDomainAliases + util.go stringMatch";
const EXPAND: &str = "istio trustdomain/bundle.go ExpandTrustDomainAliases";
const BUILDER: &str = "istio builder.go build: MigrateTrustDomain on every rule";
const SRC_NS: &str = "istio generator.go srcNamespaceGenerator (.*/ns/<v>/.*)";
const SRC_SA: &str = "istio generator.go serviceAccountRegex";
const TRUST_DOMAINS: &str = "istio api Source.trustDomains (the peer's trust domain) + bundle.go";
const REQ_PRINCIPAL: &str = "istio generator.go requestPrincipalGenerator.extendedPrincipal";
const JWT_CLAIMS: &str =
    "istio generator.go requestClaimGenerator + model/util.go MetadataListValueMatcherForJWTClaims";
const ENVOY_VALUE: &str = "envoy common/matchers.cc ValueMatcher (string matcher: strings only)";
const IP: &str = "istio util.go AddrStrToCidrRange + envoy cidr_range.cc CidrRange::isInRange";
const IP_GEN: &str =
    "istio generator.go srcIPGenerator (direct_remote_ip) / remoteIPGenerator (remote_ip)";
const SCOPE: &str = "istio model/policyattachment.go ShouldAttachPolicy + authorization.go";
const GATEWAY: &str = "istio model/policyattachment.go ShouldAttachPolicy: a workload labelled gateway.networking.k8s.io/gateway-name is a Gateway API gateway";
const RE2_DOT: &str = "envoy safe_regex (RE2 FullMatch, '.' never matches \\n): Istio's '*' is the regex .+ (matcher/string.go, generator.go matchAny)";
const UNKNOWN: &str =
    "spiffe-authz engine/mod.rs fail-closed unknown fact (after istio model.go checkError)";

const ALICE: &str = "cluster.local/ns/foo/sa/alice";
const BOB: &str = "cluster.local/ns/bar/sa/bob";

/// One row: `rule` as the only rule of a policy in `namespace`, run as ALLOW and as DENY.
struct Row {
    name: &'static str,
    source: &'static str,
    cfg: EngineConfig,
    namespace: &'static str,
    rule: Value,
    request: Req,
    /// Whether the rule matches in the ALLOW policy and in the DENY policy.
    matches: (bool, bool),
    /// Merged into the policy's `spec` (`selector`, `targetRef(s)`).
    scope: Value,
    /// Whether the policy applies to the workload at all.
    applies: bool,
}

fn row(name: &'static str, source: &'static str, rule: Value, request: Req, m: bool) -> Row {
    Row {
        name,
        source,
        cfg: config(),
        namespace: "foo",
        rule,
        request,
        matches: (m, m),
        scope: json!({}),
        applies: true,
    }
}

impl Row {
    fn cfg(mut self, cfg: EngineConfig) -> Row {
        self.cfg = cfg;
        self
    }

    fn in_namespace(mut self, ns: &'static str) -> Row {
        self.namespace = ns;
        self
    }

    /// An unknown fact: the ALLOW and the DENY rule count it differently.
    fn split(mut self, allow: bool, deny: bool) -> Row {
        self.matches = (allow, deny);
        self
    }
}

fn run(rows: Vec<Row>) {
    let mut failures = Vec::new();
    let n = rows.len();
    for r in rows {
        for action in ["ALLOW", "DENY"] {
            let mut spec = json!({"action": action, "rules": [r.rule.clone()]});
            if let Value::Object(scope) = &r.scope {
                for (k, v) in scope {
                    spec[k] = v.clone();
                }
            }
            let p = policy_in(r.namespace, "p", spec);
            let (engine, _) = compile_with(&[p], &r.cfg);
            let got = r.request.decide(&engine).to_string();
            let matched = if action == "ALLOW" {
                r.matches.0
            } else {
                r.matches.1
            };
            let want = match (action, r.applies, matched) {
                (_, false, _) => "allow: no ALLOW policy applies".to_owned(),
                ("ALLOW", true, true) => format!("allow: allowed by {}/p rule 0", r.namespace),
                ("ALLOW", true, false) => "deny: no ALLOW policy matched".to_owned(),
                (_, true, true) => format!("deny: denied by {}/p rule 0", r.namespace),
                (_, true, false) => "allow: no ALLOW policy applies".to_owned(),
            };
            if got != want {
                failures.push(format!(
                    "{} as {action} [{}]\n    want: {want}\n    got:  {got}",
                    r.name, r.source
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} checks failed:\n{}",
        failures.len(),
        2 * n,
        failures.join("\n")
    );
}

fn from(source: Value) -> Value {
    json!({"from": [{"source": source}]})
}

fn when(key: &str, values: &[&str]) -> Value {
    json!({"when": [{"key": key, "values": values}]})
}

fn when_not(key: &str, not_values: &[&str]) -> Value {
    json!({"when": [{"key": key, "notValues": not_values}]})
}

fn td(local: &str, aliases: &[&str]) -> EngineConfig {
    EngineConfig {
        trust_domain: local.into(),
        trust_domain_aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        ..config()
    }
}

#[test]
fn principals_on_mtls_and_plaintext_peers() {
    run(vec![
        row(
            "principals: exact value matches that peer",
            SRC_PRINCIPAL,
            from(json!({"principals": [ALICE]})),
            req().principal(ALICE),
            true,
        ),
        row(
            "principals: exact value does not match another peer",
            SRC_PRINCIPAL,
            from(json!({"principals": [ALICE]})),
            req().principal(BOB),
            false,
        ),
        row(
            "principals: exact value is not a prefix match",
            SRC_PRINCIPAL,
            from(json!({"principals": ["cluster.local/ns/foo/sa/ali"]})),
            req().principal(ALICE),
            false,
        ),
        row(
            "principals: a value written with spiffe:// never matches (Istio adds the prefix)",
            SRC_PRINCIPAL,
            from(json!({"principals": ["spiffe://cluster.local/ns/foo/sa/alice"]})),
            req().principal(ALICE),
            false,
        ),
        row(
            "principals: no value matches a plaintext peer",
            ENVOY_AUTHN,
            from(json!({"principals": [ALICE]})),
            req(),
            false,
        ),
        row(
            "principals: prefix* matches a peer starting with it",
            SRC_PRINCIPAL,
            from(json!({"principals": ["cluster.local/ns/foo/*"]})),
            req().principal(ALICE),
            true,
        ),
        row(
            "principals: prefix* does not match a peer outside it",
            SRC_PRINCIPAL,
            from(json!({"principals": ["cluster.local/ns/foo/*"]})),
            req().principal(BOB),
            false,
        ),
        row(
            "principals: prefix* does not match a plaintext peer",
            ENVOY_AUTHN,
            from(json!({"principals": ["cluster.local/*"]})),
            req(),
            false,
        ),
        row(
            "principals: *suffix matches a peer ending with it (regex spiffe://.*suffix)",
            SRC_PRINCIPAL,
            from(json!({"principals": ["*/sa/alice"]})),
            req().principal("other.td/ns/x/sa/alice"),
            true,
        ),
        row(
            "principals: *suffix does not match a peer ending otherwise",
            SRC_PRINCIPAL,
            from(json!({"principals": ["*/sa/alice"]})),
            req().principal("cluster.local/ns/foo/sa/alice2"),
            false,
        ),
        row(
            "principals: *suffix does not match a plaintext peer",
            ENVOY_AUTHN,
            from(json!({"principals": ["*/sa/alice"]})),
            req(),
            false,
        ),
        row(
            "principals: * (regex .+ on the URI SAN) matches any mTLS peer",
            SRC_PRINCIPAL,
            from(json!({"principals": ["*"]})),
            req().principal("any.td/some/path"),
            true,
        ),
        row(
            "principals: * does not match a plaintext peer (it means 'require mTLS')",
            ENVOY_AUTHN,
            from(json!({"principals": ["*"]})),
            req(),
            false,
        ),
        row(
            "notPrincipals: NOT(authenticated(..)) holds for a plaintext peer",
            ENVOY_AUTHN,
            from(json!({"notPrincipals": [ALICE]})),
            req(),
            true,
        ),
        row(
            "notPrincipals: [*] holds for a plaintext peer (DENY notPrincipals [*] = deny plaintext)",
            ENVOY_AUTHN,
            from(json!({"notPrincipals": ["*"]})),
            req(),
            true,
        ),
        row(
            "notPrincipals: [*] excludes every mTLS peer",
            ENVOY_AUTHN,
            from(json!({"notPrincipals": ["*"]})),
            req().principal(ALICE),
            false,
        ),
        row(
            "notPrincipals: excludes the listed peer",
            MODEL,
            from(json!({"notPrincipals": [ALICE]})),
            req().principal(ALICE),
            false,
        ),
        row(
            "notPrincipals: holds for another peer",
            MODEL,
            from(json!({"notPrincipals": [ALICE]})),
            req().principal(BOB),
            true,
        ),
        row(
            "principals + notPrincipals: both must hold (prefix minus one peer)",
            MODEL,
            from(json!({"principals": ["cluster.local/*"], "notPrincipals": [ALICE]})),
            req().principal(ALICE),
            false,
        ),
        row(
            "principals + notPrincipals: another peer under the prefix matches",
            MODEL,
            from(json!({"principals": ["cluster.local/*"], "notPrincipals": [ALICE]})),
            req().principal(BOB),
            true,
        ),
        row(
            "principals + notPrincipals: a plaintext peer fails the positive half",
            ENVOY_AUTHN,
            from(json!({"principals": ["cluster.local/*"], "notPrincipals": [ALICE]})),
            req(),
            false,
        ),
        row(
            "source.principal condition: same generator as principals",
            MODEL,
            when("source.principal", &["cluster.local/ns/foo/*"]),
            req().principal(ALICE),
            true,
        ),
        row(
            "source.principal condition: no value matches a plaintext peer",
            ENVOY_AUTHN,
            when("source.principal", &["*"]),
            req(),
            false,
        ),
        row(
            "source.principal notValues: holds for a plaintext peer",
            ENVOY_AUTHN,
            when_not("source.principal", &[ALICE]),
            req(),
            true,
        ),
        row(
            "source.principal notValues: excludes the listed peer",
            MODEL,
            when_not("source.principal", &[ALICE]),
            req().principal(ALICE),
            false,
        ),
    ]);
}

#[test]
fn trust_domain_aliases() {
    let aliased = || td("td2", &["td1"]);
    run(vec![
        row(
            "default mesh: cluster.local principal matches the cluster.local peer",
            BUNDLE,
            from(json!({"principals": [ALICE]})),
            req().principal(ALICE),
            true,
        ),
        row(
            "no aliases: cluster.local in a policy is replaced by the local trust domain",
            BUILDER,
            from(json!({"principals": [ALICE]})),
            req().principal("td2/ns/foo/sa/alice"),
            true,
        )
        .cfg(td("td2", &[])),
        row(
            "no aliases: the replaced cluster.local no longer matches a cluster.local peer",
            BUILDER,
            from(json!({"principals": [ALICE]})),
            req().principal(ALICE),
            false,
        )
        .cfg(td("td2", &[])),
        row(
            "an alias in a policy matches the local trust domain",
            BUNDLE,
            from(json!({"principals": ["td1/ns/foo/sa/alice"]})),
            req().principal("td2/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "the local trust domain in a policy matches an alias",
            BUNDLE,
            from(json!({"principals": ["td2/ns/foo/sa/alice"]})),
            req().principal("td1/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "cluster.local expands to the local domain and every alias",
            BUNDLE,
            from(json!({"principals": [ALICE]})),
            req().principal("td1/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "cluster.local is not kept when it is neither local nor an alias",
            BUNDLE,
            from(json!({"principals": [ALICE]})),
            req().principal(ALICE),
            false,
        )
        .cfg(aliased()),
        row(
            "a foreign trust domain is kept as written",
            BUNDLE,
            from(json!({"principals": ["other/ns/foo/sa/alice"]})),
            req().principal("other/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "a foreign trust domain is not expanded to the local one",
            BUNDLE,
            from(json!({"principals": ["other/ns/foo/sa/alice"]})),
            req().principal("td2/ns/foo/sa/alice"),
            false,
        )
        .cfg(aliased()),
        row(
            "*/ns/x/sa/y: trust domain not enforced, any domain matches",
            BUNDLE,
            from(json!({"principals": ["*/ns/foo/sa/alice"]})),
            req().principal("elsewhere/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "4 segments (td/ns/x/*): not a SPIFFE principal, kept as a plain prefix",
            BUNDLE,
            from(json!({"principals": ["cluster.local/ns/foo/*"]})),
            req().principal(ALICE),
            true,
        )
        .cfg(aliased()),
        row(
            "4 segments (td/ns/x/*): not expanded to the local domain",
            BUNDLE,
            from(json!({"principals": ["cluster.local/ns/foo/*"]})),
            req().principal("td2/ns/foo/sa/alice"),
            false,
        )
        .cfg(aliased()),
        row(
            "5 segments ending in *: expanded, the prefix kept per domain",
            BUNDLE,
            from(json!({"principals": ["td1/ns/foo/sa/*"]})),
            req().principal("td2/ns/foo/sa/anyone"),
            true,
        )
        .cfg(aliased()),
        row(
            "6 segments: not expanded",
            BUNDLE,
            from(json!({"principals": ["td1/ns/foo/sa/alice/x"]})),
            req().principal("td2/ns/foo/sa/alice/x"),
            false,
        )
        .cfg(aliased()),
        row(
            "6 segments: matches exactly as written",
            BUNDLE,
            from(json!({"principals": ["td1/ns/foo/sa/alice/x"]})),
            req().principal("td1/ns/foo/sa/alice/x"),
            true,
        )
        .cfg(aliased()),
        row(
            "td* trust domain: matched by stringMatch, then REPLACED by each domain",
            BUNDLE,
            from(json!({"principals": ["td*/ns/foo/sa/alice"]})),
            req().principal("td1/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "td* trust domain: the prefix itself is gone after replacement",
            BUNDLE,
            from(json!({"principals": ["td*/ns/foo/sa/alice"]})),
            req().principal("td9/ns/foo/sa/alice"),
            false,
        )
        .cfg(aliased()),
        row(
            "*1 trust domain: kept for the domain it covers, so its suffix still matches",
            BUNDLE,
            from(json!({"principals": ["*1/ns/foo/sa/alice"]})),
            req().principal("x1/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "*1 trust domain: also replaced by the local domain it does not cover",
            BUNDLE,
            from(json!({"principals": ["*1/ns/foo/sa/alice"]})),
            req().principal("td2/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "principals: [*] is one segment, never rewritten",
            BUNDLE,
            from(json!({"principals": ["*"]})),
            req().principal("other/ns/a/sa/b"),
            true,
        )
        .cfg(aliased()),
        row(
            "notPrincipals are aliased too: an alias excludes the local peer",
            MODEL,
            from(json!({"notPrincipals": ["td1/ns/foo/sa/alice"]})),
            req().principal("td2/ns/foo/sa/alice"),
            false,
        )
        .cfg(aliased()),
        row(
            "source.principal conditions are aliased too",
            MODEL,
            when("source.principal", &["td1/ns/foo/sa/alice"]),
            req().principal("td2/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "source.principal notValues are aliased too",
            MODEL,
            when_not("source.principal", &[ALICE]),
            req().principal("td1/ns/foo/sa/alice"),
            false,
        )
        .cfg(aliased()),
        row(
            "namespaces ignore trust domains (MigrateTrustDomain skips them)",
            MODEL,
            from(json!({"namespaces": ["foo"]})),
            req().principal("foreign/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "serviceAccounts ignore trust domains",
            MODEL,
            from(json!({"serviceAccounts": ["foo/alice"]})),
            req().principal("foreign/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "trustDomains: an alias stands for the local domain",
            EXPAND,
            from(json!({"trustDomains": ["td1"]})),
            req().principal("td2/ns/foo/sa/alice"),
            true,
        )
        .cfg(aliased()),
        row(
            "trustDomains: cluster.local is not special there (only exact bundle members expand)",
            EXPAND,
            from(json!({"trustDomains": ["cluster.local"]})),
            req().principal("td2/ns/foo/sa/alice"),
            false,
        )
        .cfg(aliased()),
        row(
            "notTrustDomains: the local domain excludes its aliases too",
            EXPAND,
            from(json!({"notTrustDomains": ["td2"]})),
            req().principal("td1/ns/foo/sa/alice"),
            false,
        )
        .cfg(aliased()),
    ]);
}

#[test]
fn namespaces_as_istio_regexes() {
    run(vec![
        row(
            "namespaces: the peer's namespace matches",
            SRC_NS,
            from(json!({"namespaces": ["foo"]})),
            req().principal(ALICE),
            true,
        ),
        row(
            "namespaces: another namespace does not",
            SRC_NS,
            from(json!({"namespaces": ["foo"]})),
            req().principal(BOB),
            false,
        ),
        row(
            "namespaces: a longer name does not (/ns/foo/ needs the slash)",
            SRC_NS,
            from(json!({"namespaces": ["foo"]})),
            req().principal("cluster.local/ns/foobar/sa/alice"),
            false,
        ),
        row(
            "namespaces: /ns/foo/ anywhere in the URI matches (regex .*/ns/foo/.*)",
            SRC_NS,
            from(json!({"namespaces": ["foo"]})),
            req().principal("cluster.local/team/x/ns/foo/sa/alice"),
            true,
        ),
        row(
            "namespaces: /ns/foo/ after the service account matches too",
            SRC_NS,
            from(json!({"namespaces": ["foo"]})),
            req().principal("cluster.local/ns/bar/sa/ns/foo/x"),
            true,
        ),
        row(
            "namespaces: a trailing /ns/foo without slash does not",
            SRC_NS,
            from(json!({"namespaces": ["foo"]})),
            req().principal("cluster.local/sa/x/ns/foo"),
            false,
        ),
        row(
            "namespaces: no value matches a plaintext peer",
            ENVOY_AUTHN,
            from(json!({"namespaces": ["*"]})),
            req(),
            false,
        ),
        row(
            "namespaces: prefix* becomes .* (matches foo-prod)",
            SRC_NS,
            from(json!({"namespaces": ["foo*"]})),
            req().principal("cluster.local/ns/foo-prod/sa/alice"),
            true,
        ),
        row(
            "namespaces: *suffix becomes .* (matches prod-foo)",
            SRC_NS,
            from(json!({"namespaces": ["*foo"]})),
            req().principal("cluster.local/ns/prod-foo/sa/alice"),
            true,
        ),
        row(
            "namespaces: *suffix does not match a different ending",
            SRC_NS,
            from(json!({"namespaces": ["*foo"]})),
            req().principal("cluster.local/ns/foo-prod/sa/alice"),
            false,
        ),
        row(
            "namespaces: * is .*/ns/.*/.*: any URI with /ns/<x>/",
            SRC_NS,
            from(json!({"namespaces": ["*"]})),
            req().principal(BOB),
            true,
        ),
        row(
            "namespaces: * does not match a URI without /ns/",
            SRC_NS,
            from(json!({"namespaces": ["*"]})),
            req().principal("cluster.local/workload/x"),
            false,
        ),
        row(
            "namespaces: . is literal (patched Istio quotes the value)",
            SRC_NS,
            from(json!({"namespaces": ["f.o"]})),
            req().principal("cluster.local/ns/fxo/sa/alice"),
            false,
        ),
        row(
            "notNamespaces: holds for a plaintext peer",
            ENVOY_AUTHN,
            from(json!({"notNamespaces": ["foo"]})),
            req(),
            true,
        ),
        row(
            "notNamespaces: excludes the namespace",
            SRC_NS,
            from(json!({"notNamespaces": ["foo"]})),
            req().principal(ALICE),
            false,
        ),
        row(
            "notNamespaces: holds for another namespace",
            SRC_NS,
            from(json!({"notNamespaces": ["foo"]})),
            req().principal(BOB),
            true,
        ),
        row(
            "source.namespace condition: same regex",
            MODEL,
            when("source.namespace", &["fo*"]),
            req().principal(ALICE),
            true,
        ),
        row(
            "source.namespace condition: no value matches a plaintext peer",
            ENVOY_AUTHN,
            when("source.namespace", &["foo"]),
            req(),
            false,
        ),
        row(
            "source.namespace notValues: holds for a plaintext peer",
            ENVOY_AUTHN,
            when_not("source.namespace", &["foo"]),
            req(),
            true,
        ),
    ]);
}

#[test]
fn service_accounts_and_trust_domains() {
    run(vec![
        row(
            "serviceAccounts: ns/sa matches that identity",
            SRC_SA,
            from(json!({"serviceAccounts": ["foo/alice"]})),
            req().principal(ALICE),
            true,
        ),
        row(
            "serviceAccounts: a bare sa means the policy's namespace",
            SRC_SA,
            from(json!({"serviceAccounts": ["alice"]})),
            req().principal(ALICE),
            true,
        ),
        row(
            "serviceAccounts: a bare sa in a root-namespace policy means the root namespace",
            SRC_SA,
            from(json!({"serviceAccounts": ["alice"]})),
            req().principal(ALICE),
            false,
        )
        .in_namespace("istio-system"),
        row(
            "serviceAccounts: another namespace does not match",
            SRC_SA,
            from(json!({"serviceAccounts": ["bar/alice"]})),
            req().principal(ALICE),
            false,
        ),
        row(
            "serviceAccounts: sa followed by /more matches ((/.+)?)",
            SRC_SA,
            from(json!({"serviceAccounts": ["foo/alice"]})),
            req().principal("cluster.local/ns/foo/sa/alice/extra"),
            true,
        ),
        row(
            "serviceAccounts: sa-junk does not match",
            SRC_SA,
            from(json!({"serviceAccounts": ["foo/alice"]})),
            req().principal("cluster.local/ns/foo/sa/alice-junk"),
            false,
        ),
        row(
            "serviceAccounts: segments between ns and sa are allowed ((.+/|))",
            SRC_SA,
            from(json!({"serviceAccounts": ["foo/alice"]})),
            req().principal("cluster.local/ns/foo/k/v/sa/alice"),
            true,
        ),
        row(
            "serviceAccounts: .+ needs a trust domain before /ns/",
            SRC_SA,
            from(json!({"serviceAccounts": ["foo/alice"]})),
            req().principal("/ns/foo/sa/alice"),
            false,
        ),
        row(
            "serviceAccounts: the value is cut at its first / (ns 'foo', sa 'a/b')",
            SRC_SA,
            from(json!({"serviceAccounts": ["foo/a/b"]})),
            req().principal("cluster.local/ns/foo/sa/a/b"),
            true,
        ),
        row(
            "serviceAccounts: no value matches a plaintext peer",
            ENVOY_AUTHN,
            from(json!({"serviceAccounts": ["foo/alice"]})),
            req(),
            false,
        ),
        row(
            "notServiceAccounts: holds for a plaintext peer",
            ENVOY_AUTHN,
            from(json!({"notServiceAccounts": ["foo/alice"]})),
            req(),
            true,
        ),
        row(
            "notServiceAccounts: excludes that identity",
            SRC_SA,
            from(json!({"notServiceAccounts": ["foo/alice"]})),
            req().principal(ALICE),
            false,
        ),
        row(
            "source.serviceAccount condition: same regex",
            MODEL,
            when("source.serviceAccount", &["foo/alice"]),
            req().principal(ALICE),
            true,
        ),
        row(
            "trustDomains: the peer's trust domain matches",
            TRUST_DOMAINS,
            from(json!({"trustDomains": ["cluster.local"]})),
            req().principal(ALICE),
            true,
        ),
        row(
            "trustDomains: another trust domain does not",
            TRUST_DOMAINS,
            from(json!({"trustDomains": ["cluster.local"]})),
            req().principal("other.td/ns/foo/sa/alice"),
            false,
        ),
        row(
            "trustDomains: a trust domain is not a prefix of the domain name",
            TRUST_DOMAINS,
            from(json!({"trustDomains": ["cluster"]})),
            req().principal(ALICE),
            false,
        ),
        row(
            "trustDomains: no value matches a plaintext peer",
            ENVOY_AUTHN,
            from(json!({"trustDomains": ["*"]})),
            req(),
            false,
        ),
        row(
            "notTrustDomains: holds for a plaintext peer",
            ENVOY_AUTHN,
            from(json!({"notTrustDomains": ["cluster.local"]})),
            req(),
            true,
        ),
    ]);
}

fn jwt(iss: &str, sub: &str) -> Req {
    req().jwt(&format!("{iss}/{sub}"), json!({"iss": iss, "sub": sub}))
}

#[test]
fn request_principals_and_jwt_conditions() {
    run(vec![
        row(
            "requestPrincipals: iss/sub matches that token",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["https://issuer/sub-1"]})),
            jwt("https://issuer", "sub-1"),
            true,
        ),
        row(
            "requestPrincipals: no token matches nothing",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["*"]})),
            req(),
            false,
        ),
        row(
            "requestPrincipals: * needs a non-empty iss and sub",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["*"]})),
            jwt("https://issuer", "sub-1"),
            true,
        ),
        row(
            "requestPrincipals: split at the LAST / (issuer may be a URL)",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["https://a.example/x/sub"]})),
            req().jwt(
                "https://a.example/x/sub",
                json!({"iss": "https://a.example/x", "sub": "sub"}),
            ),
            true,
        ),
        row(
            "requestPrincipals: a / inside sub moves the split, so iss/sub no longer match",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["iss/a/b"]})),
            req().jwt("iss/a/b", json!({"iss": "iss", "sub": "a/b"})),
            false,
        ),
        row(
            "requestPrincipals: iss/* matches any subject of that issuer",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["https://issuer/*"]})),
            jwt("https://issuer", "anyone"),
            true,
        ),
        row(
            "requestPrincipals: */sub matches that subject from any issuer",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["*/sub-1"]})),
            jwt("https://other", "sub-1"),
            true,
        ),
        row(
            "requestPrincipals: *suffix without / is a suffix on sub only",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["*-1"]})),
            jwt("https://issuer", "sub-1"),
            true,
        ),
        row(
            "requestPrincipals: prefix* without / is a prefix on iss only",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["accounts*"]})),
            jwt("accounts.example", "sub-1"),
            true,
        ),
        row(
            "requestPrincipals: https://iss* has a /, so it is iss 'https:/' + sub prefix 'iss'",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["https://iss*"]})),
            jwt("https://issuer", "sub-1"),
            false,
        ),
        row(
            "requestPrincipals: ... which a token with iss 'https:/' and sub 'iss..' matches",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["https://iss*"]})),
            jwt("https:/", "issuer"),
            true,
        ),
        row(
            "requestPrincipals: iss/su* is exact iss + prefix sub",
            REQ_PRINCIPAL,
            from(json!({"requestPrincipals": ["https://issuer/su*"]})),
            jwt("https://issuer-2", "sub-1"),
            false,
        ),
        row(
            "notRequestPrincipals: holds without a token",
            REQ_PRINCIPAL,
            from(json!({"notRequestPrincipals": ["*"]})),
            req(),
            true,
        ),
        row(
            "notRequestPrincipals: excludes that token",
            REQ_PRINCIPAL,
            from(json!({"notRequestPrincipals": ["https://issuer/sub-1"]})),
            jwt("https://issuer", "sub-1"),
            false,
        ),
        row(
            "request.auth.principal condition: same generator",
            MODEL,
            when("request.auth.principal", &["https://issuer/sub-1"]),
            jwt("https://issuer", "sub-1"),
            true,
        ),
        row(
            "request.auth.audiences: a list aud matches one element",
            JWT_CLAIMS,
            when("request.auth.audiences", &["svc-b"]),
            req().jwt(
                "i/s",
                json!({"iss": "i", "sub": "s", "aud": ["svc-a", "svc-b"]}),
            ),
            true,
        ),
        row(
            "request.auth.audiences: a string aud matches",
            JWT_CLAIMS,
            when("request.auth.audiences", &["svc-*"]),
            req().jwt("i/s", json!({"iss": "i", "sub": "s", "aud": "svc-a"})),
            true,
        ),
        row(
            "request.auth.audiences: no aud matches nothing",
            JWT_CLAIMS,
            when("request.auth.audiences", &["*"]),
            req().jwt("i/s", json!({"iss": "i", "sub": "s"})),
            false,
        ),
        row(
            "request.auth.presenter: azp matches",
            JWT_CLAIMS,
            when("request.auth.presenter", &["client-1"]),
            req().jwt("i/s", json!({"iss": "i", "sub": "s", "azp": "client-1"})),
            true,
        ),
        row(
            "request.auth.claims[groups]: one element of a list claim matches",
            JWT_CLAIMS,
            when("request.auth.claims[groups]", &["admin"]),
            req().jwt(
                "i/s",
                json!({"iss": "i", "sub": "s", "groups": ["dev", "admin"]}),
            ),
            true,
        ),
        row(
            "request.auth.claims[a][b]: nested claim",
            JWT_CLAIMS,
            when("request.auth.claims[a][b]", &["x"]),
            req().jwt("i/s", json!({"iss": "i", "sub": "s", "a": {"b": "x"}})),
            true,
        ),
        row(
            "request.auth.claims[a][b]: a list on the path is not walked into",
            JWT_CLAIMS,
            when("request.auth.claims[a][b]", &["x"]),
            req().jwt("i/s", json!({"iss": "i", "sub": "s", "a": [{"b": "x"}]})),
            false,
        ),
        row(
            "request.auth.claims: a number claim never matches a string value",
            ENVOY_VALUE,
            when("request.auth.claims[level]", &["3"]),
            req().jwt("i/s", json!({"iss": "i", "sub": "s", "level": 3})),
            false,
        ),
        row(
            "request.auth.claims: a bool claim never matches a string value",
            ENVOY_VALUE,
            when("request.auth.claims[admin]", &["true"]),
            req().jwt("i/s", json!({"iss": "i", "sub": "s", "admin": true})),
            false,
        ),
        row(
            "request.auth.claims: number elements of a list claim never match",
            ENVOY_VALUE,
            when("request.auth.claims[levels]", &["2"]),
            req().jwt(
                "i/s",
                json!({"iss": "i", "sub": "s", "levels": [1, 2, "3"]}),
            ),
            false,
        ),
        row(
            "request.auth.claims: an object claim never matches a string value",
            ENVOY_VALUE,
            when("request.auth.claims[a]", &["*"]),
            req().jwt("i/s", json!({"iss": "i", "sub": "s", "a": {"b": "x"}})),
            false,
        ),
        row(
            "request.auth.claims: a missing claim matches nothing",
            ENVOY_VALUE,
            when("request.auth.claims[groups]", &["*"]),
            req().jwt("i/s", json!({"iss": "i", "sub": "s"})),
            false,
        ),
        row(
            "request.auth.claims notValues: hold for a missing claim",
            ENVOY_VALUE,
            when_not("request.auth.claims[groups]", &["admin"]),
            req().jwt("i/s", json!({"iss": "i", "sub": "s"})),
            true,
        ),
        row(
            "request.auth.claims notValues: hold without a token",
            ENVOY_VALUE,
            when_not("request.auth.claims[groups]", &["admin"]),
            req(),
            true,
        ),
        row(
            "request.auth.claims: * is regex .+, an empty string claim does not match",
            JWT_CLAIMS,
            when("request.auth.claims[team]", &["*"]),
            req().jwt("i/s", json!({"iss": "i", "sub": "s", "team": ""})),
            false,
        ),
    ]);
}

#[test]
fn ip_blocks_and_address_conditions() {
    let unknown_peer = || {
        let mut r = req();
        r.direct_remote_ip = None;
        r
    };
    let unknown_client = || {
        let mut r = req();
        r.remote_ip = None;
        r
    };
    run(vec![
        row(
            "ipBlocks: a bare IPv4 address is a /32",
            IP,
            from(json!({"ipBlocks": ["10.0.0.1"]})),
            req().peer_ip("10.0.0.1"),
            true,
        ),
        row(
            "ipBlocks: a bare IPv4 address does not cover its neighbour",
            IP,
            from(json!({"ipBlocks": ["10.0.0.1"]})),
            req().peer_ip("10.0.0.2"),
            false,
        ),
        row(
            "ipBlocks: a CIDR range covers its addresses",
            IP,
            from(json!({"ipBlocks": ["10.0.0.0/8"]})),
            req().peer_ip("10.200.3.4"),
            true,
        ),
        row(
            "ipBlocks: host bits in a range are masked",
            IP,
            from(json!({"ipBlocks": ["10.1.2.3/8"]})),
            req().peer_ip("10.9.9.9"),
            true,
        ),
        row(
            "ipBlocks: a bare IPv6 address is a /128",
            IP,
            from(json!({"ipBlocks": ["2001:db8::1"]})),
            req().peer_ip("2001:db8::1"),
            true,
        ),
        row(
            "ipBlocks: a bare IPv6 address does not cover its neighbour",
            IP,
            from(json!({"ipBlocks": ["2001:db8::1"]})),
            req().peer_ip("2001:db8::2"),
            false,
        ),
        row(
            "ipBlocks: an IPv4-mapped IPv6 value is IPv6, it never matches an IPv4 peer",
            IP,
            from(json!({"ipBlocks": ["::ffff:10.0.0.1"]})),
            req().peer_ip("10.0.0.1"),
            false,
        ),
        row(
            "ipBlocks: an IPv4 range never matches an IPv6 peer, IPv4-mapped or not",
            IP,
            from(json!({"ipBlocks": ["10.0.0.0/8"]})),
            req().peer_ip("::ffff:10.0.0.1"),
            false,
        ),
        row(
            "ipBlocks: 0.0.0.0/0 does not cover IPv6",
            IP,
            from(json!({"ipBlocks": ["0.0.0.0/0"]})),
            req().peer_ip("2001:db8::1"),
            false,
        ),
        row(
            "ipBlocks: IPv4 and IPv6 values in one list, each for its own version",
            IP,
            from(json!({"ipBlocks": ["10.0.0.0/8", "2001:db8::/32"]})),
            req().peer_ip("2001:db8:1::7"),
            true,
        ),
        row(
            "source.ip condition: an IPv6 range",
            IP,
            when("source.ip", &["2001:db8::/32"]),
            req().peer_ip("2001:db9::1"),
            false,
        ),
        row(
            "ipBlocks: read the direct peer, not the client from x-forwarded-for",
            IP_GEN,
            from(json!({"ipBlocks": ["192.0.2.7"]})),
            req().peer_ip("10.0.0.1").client_ip("192.0.2.7"),
            false,
        ),
        row(
            "remoteIpBlocks: read the client from x-forwarded-for",
            IP_GEN,
            from(json!({"remoteIpBlocks": ["192.0.2.0/24"]})),
            req().peer_ip("10.0.0.1").client_ip("192.0.2.7"),
            true,
        ),
        row(
            "remoteIpBlocks: not the direct peer",
            IP_GEN,
            from(json!({"remoteIpBlocks": ["10.0.0.1"]})),
            req().peer_ip("10.0.0.1").client_ip("192.0.2.7"),
            false,
        ),
        row(
            "ipBlocks: need no peer certificate (plaintext peer matches)",
            IP_GEN,
            from(json!({"ipBlocks": ["10.0.0.0/8"]})),
            req().peer_ip("10.0.0.9"),
            true,
        ),
        row(
            "notIpBlocks: exclude the range",
            MODEL,
            from(json!({"notIpBlocks": ["10.0.0.0/8"]})),
            req().peer_ip("10.0.0.9"),
            false,
        ),
        row(
            "notIpBlocks: hold outside the range",
            MODEL,
            from(json!({"notIpBlocks": ["10.0.0.0/8"]})),
            req().peer_ip("192.0.2.1"),
            true,
        ),
        row(
            "source.ip condition: the direct peer",
            IP_GEN,
            when("source.ip", &["10.0.0.1"]),
            req().peer_ip("10.0.0.1").client_ip("192.0.2.7"),
            true,
        ),
        row(
            "remote.ip condition: the x-forwarded-for client",
            IP_GEN,
            when("remote.ip", &["192.0.2.7/32"]),
            req().peer_ip("10.0.0.1").client_ip("192.0.2.7"),
            true,
        ),
        row(
            "ipBlocks on an unknown peer address: DENY matches, ALLOW does not",
            UNKNOWN,
            from(json!({"ipBlocks": ["10.0.0.0/8"]})),
            unknown_peer(),
            false,
        )
        .split(false, true),
        row(
            "notIpBlocks on an unknown peer address: DENY matches, ALLOW does not",
            UNKNOWN,
            from(json!({"notIpBlocks": ["10.0.0.0/8"]})),
            unknown_peer(),
            false,
        )
        .split(false, true),
        row(
            "remote.ip notValues on an unknown client: DENY matches, ALLOW does not",
            UNKNOWN,
            when_not("remote.ip", &["192.0.2.7"]),
            unknown_client(),
            false,
        )
        .split(false, true),
        row(
            "an unknown client address does not affect ipBlocks",
            UNKNOWN,
            from(json!({"ipBlocks": ["10.0.0.1"]})),
            unknown_client(),
            true,
        ),
    ]);
}

/// `rules: [{}]` (matches every request) in a policy in `namespace` with `scope` merged into
/// its spec: it decides exactly when the policy applies.
fn scoped(name: &'static str, namespace: &'static str, scope: Value, applies: bool) -> Row {
    Row {
        namespace,
        scope,
        applies,
        ..row(name, SCOPE, json!({}), req(), true)
    }
}

#[test]
fn which_policies_apply_to_a_sidecar() {
    let app = |v: &str| json!({"selector": {"matchLabels": {"app": v}}});
    run(vec![
        scoped(
            "no selector: every workload in the namespace",
            "foo",
            json!({}),
            true,
        ),
        scoped(
            "selector with empty matchLabels: every workload (empty subset)",
            "foo",
            json!({"selector": {"matchLabels": {}}}),
            true,
        ),
        scoped(
            "selector without matchLabels: every workload",
            "foo",
            json!({"selector": {}}),
            true,
        ),
        scoped("selector matching a label", "foo", app("httpbin"), true),
        scoped("selector with another value", "foo", app("other"), false),
        scoped(
            "selector: every label must match (subset of the workload's)",
            "foo",
            json!({"selector": {"matchLabels": {"app": "httpbin", "tier": "db"}}}),
            false,
        ),
        scoped(
            "selector: two labels both present",
            "foo",
            json!({"selector": {"matchLabels": {"app": "httpbin", "version": "v1"}}}),
            true,
        ),
        scoped(
            "selector: an empty value is not a wildcard",
            "foo",
            json!({"selector": {"matchLabels": {"app": ""}}}),
            false,
        ),
        scoped("another namespace never applies", "bar", json!({}), false),
        scoped(
            "another namespace with a matching selector still never applies",
            "bar",
            app("httpbin"),
            false,
        ),
        scoped(
            "root namespace, no selector: mesh-wide",
            "istio-system",
            json!({}),
            true,
        ),
        scoped(
            "root namespace with a matching selector: every namespace's matching workloads",
            "istio-system",
            app("httpbin"),
            true,
        ),
        scoped(
            "root namespace with another selector: not this workload",
            "istio-system",
            app("other"),
            false,
        ),
        scoped(
            "targetRef (Service): ignored by a sidecar",
            "foo",
            json!({"targetRef": {"kind": "Service", "group": "", "name": "httpbin"}}),
            false,
        ),
        scoped(
            "targetRefs (Gateway): ignored by a sidecar",
            "foo",
            json!({"targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]}),
            false,
        ),
        scoped(
            "targetRefs in the root namespace: ignored by a sidecar",
            "istio-system",
            json!({"targetRefs": [{"kind": "GatewayClass", "group": "gateway.networking.k8s.io", "name": "istio-waypoint"}]}),
            false,
        ),
        scoped(
            "empty targetRefs: selector rules apply",
            "foo",
            json!({"targetRefs": []}),
            true,
        ),
    ]);
}

/// The workload `foo` labelled as the Gateway API gateway `gw`.
fn gateway_workload() -> EngineConfig {
    let mut cfg = config();
    cfg.workload
        .labels
        .insert(GATEWAY_NAME.to_owned(), "gw".to_owned());
    cfg
}

#[test]
fn which_policies_apply_to_a_gateway_api_gateway() {
    let gw_ref = |name: &str, namespace: &str| json!({"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": name, "namespace": namespace}]});
    let on_gateway = |r: Row| r.cfg(gateway_workload());
    run(vec![
        on_gateway(scoped(
            "targetRefs naming this gateway: attached",
            "foo",
            gw_ref("gw", ""),
            true,
        )),
        on_gateway(scoped(
            "targetRefs naming this gateway and its namespace: attached",
            "foo",
            gw_ref("gw", "foo"),
            true,
        )),
        on_gateway(scoped(
            "legacy targetRef naming this gateway: attached",
            "foo",
            json!({"targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}}),
            true,
        )),
        on_gateway(scoped(
            "targetRefs naming another gateway: not attached",
            "foo",
            gw_ref("other", ""),
            false,
        )),
        on_gateway(scoped(
            "targetRefs naming another namespace: never matches",
            "foo",
            gw_ref("gw", "bar"),
            false,
        )),
        on_gateway(scoped(
            "targetRefs from the root namespace: only the gateway's own namespace attaches",
            "istio-system",
            gw_ref("gw", ""),
            false,
        )),
        on_gateway(scoped(
            "targetRefs of kind Service: not for a gateway (waypoints only)",
            "foo",
            json!({"targetRefs": [{"group": "", "kind": "Service", "name": "gw"}]}),
            false,
        )),
        on_gateway(scoped(
            "targetRefs with the wrong group: not attached",
            "foo",
            json!({"targetRefs": [{"group": "networking.istio.io", "kind": "Gateway", "name": "gw"}]}),
            false,
        )),
        on_gateway(scoped(
            "no targetRef: selector policies still apply (ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY defaults to true)",
            "foo",
            json!({"selector": {"matchLabels": {"app": "httpbin"}}}),
            true,
        )),
        on_gateway(scoped(
            "root namespace, no targetRef: mesh-wide policies still apply",
            "istio-system",
            json!({}),
            true,
        )),
        on_gateway(scoped(
            "no targetRef, no selector: applies",
            "foo",
            json!({}),
            true,
        )),
    ]
    .into_iter()
    .map(|r| Row { source: GATEWAY, ..r })
    .collect());
}

#[test]
fn star_is_the_regex_dot_plus() {
    let claims = |v: Value| req().jwt("i/s", v);
    run(vec![
        row(
            "request.auth.claims: * does not match a claim holding a newline",
            RE2_DOT,
            when("request.auth.claims[team]", &["*"]),
            claims(json!({"iss": "i", "sub": "s", "team": "a\nb"})),
            false,
        ),
        row(
            "request.auth.claims: * matches a claim with a carriage return ('.' covers \\r)",
            RE2_DOT,
            when("request.auth.claims[team]", &["*"]),
            claims(json!({"iss": "i", "sub": "s", "team": "a\rb"})),
            true,
        ),
        row(
            "request.auth.claims: * matches a list holding one newline-free element",
            RE2_DOT,
            when("request.auth.claims[groups]", &["*"]),
            claims(json!({"iss": "i", "sub": "s", "groups": ["a\nb", "ok"]})),
            true,
        ),
        row(
            "request.auth.claims: * does not match a list of newline elements",
            RE2_DOT,
            when("request.auth.claims[groups]", &["*"]),
            claims(json!({"iss": "i", "sub": "s", "groups": ["a\nb"]})),
            false,
        ),
        row(
            "request.auth.claims: a suffix matcher is not a regex, a newline is fine",
            JWT_CLAIMS,
            when("request.auth.claims[team]", &["*b"]),
            claims(json!({"iss": "i", "sub": "s", "team": "a\nb"})),
            true,
        ),
        row(
            "request.auth.presenter: * does not match an azp holding a newline",
            RE2_DOT,
            when("request.auth.presenter", &["*"]),
            claims(json!({"iss": "i", "sub": "s", "azp": "a\nb"})),
            false,
        ),
        row(
            "request.auth.audiences: * does not match an aud holding a newline",
            RE2_DOT,
            when("request.auth.audiences", &["*"]),
            claims(json!({"iss": "i", "sub": "s", "aud": "a\nb"})),
            false,
        ),
        row(
            "requestPrincipals: * does not match a sub holding a newline",
            RE2_DOT,
            from(json!({"requestPrincipals": ["*"]})),
            req().jwt("i/a\nb", json!({"iss": "i", "sub": "a\nb"})),
            false,
        ),
        row(
            "requestPrincipals: iss/* does not match a sub holding a newline",
            RE2_DOT,
            from(json!({"requestPrincipals": ["i/*"]})),
            req().jwt("i/a\nb", json!({"iss": "i", "sub": "a\nb"})),
            false,
        ),
        row(
            "experimental.envoy.filters: * does not match a metadata string holding a newline",
            RE2_DOT,
            when(
                "experimental.envoy.filters.network.mysql_proxy[db.table]",
                &["*"],
            ),
            req().metadata(
                "envoy.filters.network.mysql_proxy",
                "db.table",
                Meta::Str("a\nb".into()),
            ),
            false,
        ),
        row(
            "experimental.envoy.filters: [*] does not match a list of newline strings",
            RE2_DOT,
            when(
                "experimental.envoy.filters.network.mysql_proxy[db.table]",
                &["[*]"],
            ),
            req().metadata(
                "envoy.filters.network.mysql_proxy",
                "db.table",
                Meta::List(vec!["a\nb".into()]),
            ),
            false,
        ),
    ]);
}
