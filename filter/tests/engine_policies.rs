//! Policy-level behaviour: how actions combine, which policies apply, dry-run, audit, TCP,
//! trust-domain aliases, path normalization, errors, warnings and `needs`.
//!
//! Each row names the Istio/Envoy behaviour it pins and where it comes from:
//! - EVAL: istio.io AuthorizationPolicy reference, "Policy evaluation" (DENY first, then
//!   ALLOW; no ALLOW policy -> allow; ALLOW policies and none matched -> deny)
//! - BUILDER: istio/istio `pilot/pkg/security/authz/builder/builder.go` (one RBAC filter per
//!   action, enforced + shadow rules, policy names `ns[..]-policy[..]-rule[..]`)
//! - SCOPE: istio/istio `pilot/pkg/model/authorization.go` (root namespace, selector)
//! - TD: istio/istio `pilot/pkg/security/trustdomain/bundle.go`

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
use serde_json::json;
use spiffe_authz::engine::{
    Engine, EngineConfig, Needs, PolicyRef, ShadowResult, ShadowResults, Verdict,
};
use spiffe_authz::normalize::PathNormalization;
use spiffe_authz::policy::AuthorizationPolicy;

const EVAL: &str = "istio.io AuthorizationPolicy reference: Policy evaluation";
const BUILDER: &str = "istio builder.go";
const SCOPE: &str = "istio model/authorization.go ListAuthorizationPolicies";
const DRY: &str = "istio builder.go isDryRun + envoy RBAC shadow_rules";
const ENVOY_SHADOW: &str =
    "envoy rbac_filter.cc: shadow rules before enforced ones; istio filter order AUDIT, DENY, ALLOW";
const TD: &str = "istio trustdomain/bundle.go ReplaceTrustDomainAliases";
const TCP: &str = "istio model.go checkError + generator.go 'is HTTP only'";
const ALICE: &str = "cluster.local/ns/foo/sa/alice";
const BOB: &str = "cluster.local/ns/bar/sa/bob";

fn allow_all(name: &str) -> AuthorizationPolicy {
    policy(name, json!({"action": "ALLOW", "rules": [{}]}))
}

fn deny_all(name: &str) -> AuthorizationPolicy {
    policy(name, json!({"action": "DENY", "rules": [{}]}))
}

fn audit_all(name: &str) -> AuthorizationPolicy {
    policy(name, json!({"action": "AUDIT", "rules": [{}]}))
}

fn allow_principal(name: &str, p: &str) -> AuthorizationPolicy {
    policy(
        name,
        json!({"rules": [{"from": [{"source": {"principals": [p]}}]}]}),
    )
}

fn deny_path(name: &str, path: &str) -> AuthorizationPolicy {
    policy(
        name,
        json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": [path]}}]}]}),
    )
}

#[test]
fn actions_combine_like_istio() {
    let eleven_rules: Vec<_> = (0..11)
        .map(|i| {
            if i == 2 || i == 10 {
                json!({})
            } else {
                json!({"to": [{"operation": {"paths": ["/never"]}}]})
            }
        })
        .collect();
    check_rows(vec![
        (
            "no policy: allow",
            EVAL,
            vec![],
            req(),
            "allow: no ALLOW policy applies",
        ),
        (
            "DENY wins over ALLOW",
            EVAL,
            vec![allow_all("allow"), deny_all("deny")],
            req(),
            "deny: denied by foo/deny rule 0",
        ),
        (
            "matching ALLOW allows",
            EVAL,
            vec![allow_principal("a", ALICE)],
            req().principal(ALICE),
            "allow: allowed by foo/a rule 0",
        ),
        (
            "ALLOW policies and none matched: deny",
            EVAL,
            vec![allow_principal("a", ALICE)],
            req().principal(BOB),
            "deny: no ALLOW policy matched",
        ),
        (
            "any matching ALLOW policy allows",
            EVAL,
            vec![allow_principal("a", ALICE), allow_principal("b", BOB)],
            req().principal(BOB),
            "allow: allowed by foo/b rule 0",
        ),
        (
            "ALLOW with empty spec allows nothing",
            "istio.io authorization-policy: allow-nothing example",
            vec![policy("nothing", json!({}))],
            req(),
            "deny: no ALLOW policy matched",
        ),
        (
            "ALLOW with rules: [] allows nothing",
            BUILDER,
            vec![policy("nothing", json!({"rules": []}))],
            req(),
            "deny: no ALLOW policy matched",
        ),
        (
            "ALLOW with rules: [{}] allows everything",
            "istio.io authorization-policy: allow-all example",
            vec![allow_all("all")],
            req(),
            "allow: allowed by foo/all rule 0",
        ),
        (
            "DENY without rules denies nothing",
            BUILDER,
            vec![policy("d", json!({"action": "DENY"}))],
            req(),
            "allow: no ALLOW policy applies",
        ),
        (
            "DENY with rules: [{}] denies everything",
            "istio.io authorization-policy: deny-all example",
            vec![deny_all("d")],
            req(),
            "deny: denied by foo/d rule 0",
        ),
        (
            "a non-matching DENY leaves the ALLOW decision",
            EVAL,
            vec![deny_path("d", "/admin"), allow_all("a")],
            req().path("/ip"),
            "allow: allowed by foo/a rule 0",
        ),
        (
            "a non-matching DENY and no ALLOW: allow",
            EVAL,
            vec![deny_path("d", "/admin")],
            req().path("/ip"),
            "allow: no ALLOW policy applies",
        ),
        (
            "AUDIT never changes the decision",
            "istio.io authorization-policy: AUDIT action",
            vec![policy("au", json!({"action": "AUDIT", "rules": [{}]}))],
            req(),
            "allow: no ALLOW policy applies; audit: foo/au rule 0",
        ),
        (
            "AUDIT is reported beside a DENY",
            "istio builder.go BuildHTTP: AUDIT filter first",
            vec![
                policy("au", json!({"action": "AUDIT", "rules": [{}]})),
                deny_all("d"),
            ],
            req(),
            "deny: denied by foo/d rule 0; audit: foo/au rule 0",
        ),
        (
            "AUDIT without rules audits nothing",
            BUILDER,
            vec![policy("au", json!({"action": "AUDIT"}))],
            req(),
            "allow: no ALLOW policy applies",
        ),
        (
            "AUDIT that does not match is not reported",
            BUILDER,
            vec![policy(
                "au",
                json!({"action": "AUDIT", "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]}),
            )],
            req(),
            "allow: no ALLOW policy applies",
        ),
        (
            "the rule index is reported",
            BUILDER,
            vec![policy(
                "a",
                json!({"rules": [{"to": [{"operation": {"paths": ["/x"]}}]}, {}]}),
            )],
            req(),
            "allow: allowed by foo/a rule 1",
        ),
        (
            "first matching policy in Envoy's name order is reported",
            "envoy RBAC policies map ordered by name",
            vec![deny_all("b"), deny_all("a")],
            req(),
            "deny: denied by foo/a rule 0",
        ),
        (
            "Envoy orders rule[10] before rule[2] (string order)",
            "envoy RBAC policies map + istio policy name ns[..]-policy[..]-rule[i]",
            vec![policy(
                "many",
                json!({"action": "DENY", "rules": eleven_rules}),
            )],
            req(),
            "deny: denied by foo/many rule 10",
        ),
        (
            "namespaces order policy names too",
            "istio builder.go policyName",
            vec![
                policy_in(
                    "istio-system",
                    "a",
                    json!({"action": "DENY", "rules": [{}]}),
                ),
                deny_all("z"),
            ],
            req(),
            "deny: denied by foo/z rule 0",
        ),
    ]);
}

#[test]
fn scope_of_policies() {
    let root = |name: &str, spec| policy_in("istio-system", name, spec);
    check_rows(vec![
        (
            "root namespace DENY applies mesh-wide",
            SCOPE,
            vec![root("d", json!({"action": "DENY", "rules": [{}]}))],
            req(),
            "deny: denied by istio-system/d rule 0",
        ),
        (
            "root namespace ALLOW applies mesh-wide",
            SCOPE,
            vec![root(
                "a",
                json!({"rules": [{"from": [{"source": {"principals": [ALICE]}}]}]}),
            )],
            req().principal(BOB),
            "deny: no ALLOW policy matched",
        ),
        (
            "a policy in another namespace does not apply",
            SCOPE,
            vec![policy_in(
                "bar",
                "d",
                json!({"action": "DENY", "rules": [{}]}),
            )],
            req(),
            "allow: no ALLOW policy applies",
        ),
        (
            "an ALLOW in another namespace does not make ALLOW policies exist",
            SCOPE,
            vec![policy_in("bar", "a", json!({}))],
            req(),
            "allow: no ALLOW policy applies",
        ),
        (
            "selector matching the workload applies",
            SCOPE,
            vec![policy(
                "d",
                json!({"action": "DENY", "selector": {"matchLabels": {"app": "httpbin"}}, "rules": [{}]}),
            )],
            req(),
            "deny: denied by foo/d rule 0",
        ),
        (
            "selector needs every label",
            SCOPE,
            vec![policy(
                "d",
                json!({"action": "DENY", "selector": {"matchLabels": {"app": "httpbin", "version": "v2"}}, "rules": [{}]}),
            )],
            req(),
            "allow: no ALLOW policy applies",
        ),
        (
            "selector with another app does not apply",
            SCOPE,
            vec![policy(
                "a",
                json!({"selector": {"matchLabels": {"app": "other"}}}),
            )],
            req(),
            "allow: no ALLOW policy applies",
        ),
        (
            "empty selector selects every workload",
            SCOPE,
            vec![policy(
                "d",
                json!({"action": "DENY", "selector": {}, "rules": [{}]}),
            )],
            req(),
            "deny: denied by foo/d rule 0",
        ),
        (
            "root namespace policy with a selector applies to matching workloads anywhere",
            SCOPE,
            vec![root(
                "d",
                json!({"action": "DENY", "selector": {"matchLabels": {"app": "httpbin"}}, "rules": [{}]}),
            )],
            req(),
            "deny: denied by istio-system/d rule 0",
        ),
        (
            "root namespace policy with a non-matching selector",
            SCOPE,
            vec![root(
                "d",
                json!({"action": "DENY", "selector": {"matchLabels": {"app": "x"}}, "rules": [{}]}),
            )],
            req(),
            "allow: no ALLOW policy applies",
        ),
        (
            "targetRef policies are not applied by sidecars",
            "istio PolicyMatcher: targetRef is for gateways/waypoints",
            vec![policy(
                "d",
                json!({"action": "DENY", "targetRef": {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}, "rules": [{}]}),
            )],
            req(),
            "allow: no ALLOW policy applies",
        ),
        (
            "targetRefs policies are not applied by sidecars",
            "istio PolicyMatcher: targetRefs is for gateways/waypoints",
            vec![policy(
                "d",
                json!({"action": "DENY", "targetRefs": [{"kind": "Service", "group": "", "name": "httpbin"}], "rules": [{}]}),
            )],
            req(),
            "allow: no ALLOW policy applies",
        ),
    ]);
}

#[test]
fn dry_run_policies() {
    check_rows(vec![
        (
            "dry-run DENY is reported, not enforced",
            DRY,
            vec![dry_run(deny_all("d"))],
            req(),
            "allow: no ALLOW policy applies; dry-run: deny (denied by foo/d rule 0)",
        ),
        (
            "dry-run DENY that does not match",
            DRY,
            vec![dry_run(deny_path("d", "/admin"))],
            req(),
            "allow: no ALLOW policy applies; dry-run: allow (no ALLOW policy applies)",
        ),
        (
            "dry-run ALLOW exists and none matched: would deny",
            DRY,
            vec![dry_run(allow_principal("a", ALICE))],
            req().principal(BOB),
            "allow: no ALLOW policy applies; dry-run: deny (no ALLOW policy matched)",
        ),
        (
            "dry-run ALLOW matched: would allow",
            DRY,
            vec![dry_run(allow_principal("a", ALICE))],
            req().principal(ALICE),
            "allow: no ALLOW policy applies; dry-run: allow (allowed by foo/a rule 0)",
        ),
        (
            "dry-run ALLOW does not make enforced ALLOW policies exist",
            DRY,
            vec![dry_run(policy("a", json!({})))],
            req(),
            "allow: no ALLOW policy applies; dry-run: deny (no ALLOW policy matched)",
        ),
        (
            "dry-run ALLOW rules are not evaluated after an enforced DENY (the ALLOW filter never runs)",
            ENVOY_SHADOW,
            vec![deny_all("d"), dry_run(allow_all("a"))],
            req(),
            "deny: denied by foo/d rule 0",
        ),
        (
            "a dry-run DENY still reports next to an enforced DENY (shadow rules run first)",
            ENVOY_SHADOW,
            vec![deny_all("d"), dry_run(deny_all("e")), dry_run(allow_all("a"))],
            req(),
            "deny: denied by foo/d rule 0; dry-run: deny (denied by foo/e rule 0)",
        ),
        (
            "dry-run ALLOW is evaluated when the enforced ALLOW denies (shadow before enforced)",
            ENVOY_SHADOW,
            vec![allow_principal("x", ALICE), dry_run(allow_all("a"))],
            req().principal(BOB),
            "deny: no ALLOW policy matched; dry-run: allow (allowed by foo/a rule 0)",
        ),
        (
            "a dry-run AUDIT policy is the AUDIT filter's shadow: reported, not an audit",
            "istio builder.go build (dry-run policies -> shadowRules, AUDIT too) + envoy engine_impl LOG: no access_log_hint in shadow mode",
            vec![dry_run(audit_all("au"))],
            req(),
            "allow: no ALLOW policy applies; dry-run audit: foo/au rule 0",
        ),
        (
            "enforced ALLOW and dry-run DENY side by side",
            DRY,
            vec![allow_all("a"), dry_run(deny_all("d"))],
            req(),
            "allow: allowed by foo/a rule 0; dry-run: deny (denied by foo/d rule 0)",
        ),
        (
            "dry-run: \"false\" enforces",
            "Go strconv.ParseBool",
            vec![with_annotation(deny_all("d"), "istio.io/dry-run", "false")],
            req(),
            "deny: denied by foo/d rule 0",
        ),
        (
            "dry-run: \"True\" is true",
            "Go strconv.ParseBool",
            vec![with_annotation(deny_all("d"), "istio.io/dry-run", "True")],
            req(),
            "allow: no ALLOW policy applies; dry-run: deny (denied by foo/d rule 0)",
        ),
        (
            "dry-run: \"1\" is true",
            "Go strconv.ParseBool",
            vec![with_annotation(deny_all("d"), "istio.io/dry-run", "1")],
            req(),
            "allow: no ALLOW policy applies; dry-run: deny (denied by foo/d rule 0)",
        ),
        (
            "dry-run: \"t\" is true",
            "Go strconv.ParseBool",
            vec![with_annotation(deny_all("d"), "istio.io/dry-run", "t")],
            req(),
            "allow: no ALLOW policy applies; dry-run: deny (denied by foo/d rule 0)",
        ),
        (
            "dry-run: an unparsable value enforces (Istio logs and enforces)",
            "istio builder.go isDryRun",
            vec![with_annotation(deny_all("d"), "istio.io/dry-run", "yes")],
            req(),
            "deny: denied by foo/d rule 0",
        ),
    ]);
}

#[test]
fn shadow_results_per_rbac_filter() {
    // What Envoy writes per filter as shadow_engine_result / shadow_effective_policy_id
    // (rbac_filter.cc), and counts as shadow_allowed / shadow_denied.
    let (engine, _) = compile(&[
        deny_path("d", "/admin"),
        dry_run(deny_path("e", "/debug")),
        dry_run(allow_principal("a", ALICE)),
        dry_run(audit_all("au")),
    ]);
    let shadow = |r: Req| r.decide(&engine).shadow;
    let result = |verdict, policy: Option<&str>| {
        Some(ShadowResult {
            verdict,
            policy: policy.map(|p| PolicyRef {
                policy: p.into(),
                rule: 0,
            }),
        })
    };
    // Passed the DENY filter: all three shadow engines ran.
    assert_eq!(
        shadow(req().principal(BOB).path("/debug")),
        ShadowResults {
            audit: result(Verdict::Allow, Some("foo/au")),
            deny: result(Verdict::Deny, Some("foo/e")),
            allow: result(Verdict::Deny, None),
        }
    );
    assert_eq!(
        shadow(req().principal(ALICE)).allow,
        result(Verdict::Allow, Some("foo/a"))
    );
    assert_eq!(
        shadow(req().principal(ALICE)).deny,
        result(Verdict::Allow, None)
    );
    // Denied by the enforced DENY: the ALLOW filter and its shadow rules never ran.
    let denied = shadow(req().principal(ALICE).path("/admin"));
    assert_eq!(denied.allow, None);
    assert_eq!(denied.deny, result(Verdict::Allow, None));
    assert_eq!(denied.audit, result(Verdict::Allow, Some("foo/au")));
    // No dry-run policy: no shadow engine at all.
    let (plain, _) = compile(&[deny_path("d", "/admin")]);
    assert_eq!(req().decide(&plain).shadow, ShadowResults::default());
}

#[test]
fn tcp_connections() {
    let allow_paths = policy(
        "a",
        json!({"rules": [{"to": [{"operation": {"paths": ["/ip"]}}]}]}),
    );
    let allow_two = policy(
        "a",
        json!({"rules": [{"to": [{"operation": {"methods": ["GET"]}}]}, {"to": [{"operation": {"ports": ["8000"]}}]}]}),
    );
    let deny_paths_from = policy(
        "d",
        json!({"action": "DENY", "rules": [{"from": [{"source": {"principals": [BOB]}}], "to": [{"operation": {"paths": ["/admin"]}}]}]}),
    );
    let deny_header = policy(
        "d",
        json!({"action": "DENY", "rules": [{"when": [{"key": "request.headers[x-token]", "values": ["bad"]}]}]}),
    );
    let deny_not_paths = policy(
        "d",
        json!({"action": "DENY", "rules": [{"to": [{"operation": {"notPaths": ["/public"]}}]}]}),
    );
    let allow_jwt = policy(
        "a",
        json!({"rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]}),
    );
    let audit_methods = policy(
        "au",
        json!({"action": "AUDIT", "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]}),
    );
    check_rows(vec![
        (
            "TCP: an ALLOW rule with paths never matches",
            TCP,
            vec![allow_paths.clone()],
            req().tcp(),
            "deny: no ALLOW policy matched",
        ),
        (
            "HTTP: the same ALLOW rule matches on its path",
            TCP,
            vec![allow_paths],
            req().path("/ip"),
            "allow: allowed by foo/a rule 0",
        ),
        (
            "TCP: ALLOW on principals works",
            TCP,
            vec![allow_principal("a", ALICE)],
            req().tcp().principal(ALICE),
            "allow: allowed by foo/a rule 0",
        ),
        (
            "TCP: the HTTP-only rule is skipped, the next rule matches",
            TCP,
            vec![allow_two],
            req().tcp(),
            "allow: allowed by foo/a rule 1",
        ),
        (
            "TCP: a DENY rule with only paths denies every connection",
            TCP,
            vec![deny_path("d", "/admin")],
            req().tcp(),
            "deny: denied by foo/d rule 0",
        ),
        (
            "TCP: DENY keeps its TCP fields (principal) after dropping paths",
            TCP,
            vec![deny_paths_from.clone()],
            req().tcp().principal(BOB),
            "deny: denied by foo/d rule 0",
        ),
        (
            "TCP: DENY with other principal does not match",
            TCP,
            vec![deny_paths_from.clone()],
            req().tcp().principal(ALICE),
            "allow: no ALLOW policy applies",
        ),
        (
            "HTTP: the same DENY needs the path",
            TCP,
            vec![deny_paths_from],
            req().principal(BOB).path("/ip"),
            "allow: no ALLOW policy applies",
        ),
        (
            "TCP: DENY header condition is dropped (denies all)",
            TCP,
            vec![deny_header],
            req().tcp(),
            "deny: denied by foo/d rule 0",
        ),
        (
            "TCP: DENY notPaths is dropped too",
            TCP,
            vec![deny_not_paths],
            req().tcp(),
            "deny: denied by foo/d rule 0",
        ),
        (
            "TCP: ALLOW with requestPrincipals never matches",
            TCP,
            vec![allow_jwt],
            req().tcp(),
            "deny: no ALLOW policy matched",
        ),
        (
            "TCP: AUDIT drops methods and audits every connection",
            TCP,
            vec![audit_methods],
            req().tcp(),
            "allow: no ALLOW policy applies; audit: foo/au rule 0",
        ),
        (
            "TCP: ports work",
            "istio generator.go destPortGenerator",
            vec![policy(
                "a",
                json!({"rules": [{"to": [{"operation": {"ports": ["8000"]}}]}]}),
            )],
            req().tcp().port(8000),
            "allow: allowed by foo/a rule 0",
        ),
        (
            "TCP: connection.sni works",
            "istio generator.go connSNIGenerator",
            vec![policy(
                "a",
                json!({"rules": [{"when": [{"key": "connection.sni", "values": ["db.example"]}]}]}),
            )],
            req().tcp().sni("db.example"),
            "allow: allowed by foo/a rule 0",
        ),
        (
            "TCP: empty ALLOW still denies every connection",
            BUILDER,
            vec![policy("a", json!({}))],
            req().tcp(),
            "deny: no ALLOW policy matched",
        ),
    ]);
}

fn td_config(td: &str, aliases: &[&str]) -> EngineConfig {
    EngineConfig {
        trust_domain: td.into(),
        trust_domain_aliases: aliases.iter().map(|a| a.to_string()).collect(),
        ..config()
    }
}

fn decide_with(cfg: &EngineConfig, policies: &[AuthorizationPolicy], r: Req) -> String {
    let (engine, _) = compile_with(policies, cfg);
    r.decide(&engine).to_string()
}

#[test]
fn trust_domain_aliases() {
    let rows: Vec<(&str, &str, EngineConfig, AuthorizationPolicy, Req, &str)> = vec![
        (
            "cluster.local in a policy means the local trust domain",
            TD,
            td_config("new.td", &[]),
            allow_principal("a", "cluster.local/ns/foo/sa/alice"),
            req().principal("new.td/ns/foo/sa/alice"),
            "allow: allowed by foo/a rule 0",
        ),
        (
            "cluster.local is replaced, not kept, when the local domain differs",
            TD,
            td_config("new.td", &[]),
            allow_principal("a", "cluster.local/ns/foo/sa/alice"),
            req().principal("cluster.local/ns/foo/sa/alice"),
            "deny: no ALLOW policy matched",
        ),
        (
            "an alias in a policy matches the local trust domain",
            TD,
            td_config("td2", &["td1"]),
            allow_principal("a", "td1/ns/foo/sa/alice"),
            req().principal("td2/ns/foo/sa/alice"),
            "allow: allowed by foo/a rule 0",
        ),
        (
            "the local trust domain in a policy matches an alias",
            TD,
            td_config("td2", &["td1"]),
            allow_principal("a", "td2/ns/foo/sa/alice"),
            req().principal("td1/ns/foo/sa/alice"),
            "allow: allowed by foo/a rule 0",
        ),
        (
            "cluster.local expands to the local domain and every alias",
            TD,
            td_config("td2", &["td1"]),
            allow_principal("a", "cluster.local/ns/foo/sa/alice"),
            req().principal("td1/ns/foo/sa/alice"),
            "allow: allowed by foo/a rule 0",
        ),
        (
            "a foreign trust domain is kept as written",
            TD,
            td_config("td2", &["td1"]),
            allow_principal("a", "other/ns/foo/sa/alice"),
            req().principal("td1/ns/foo/sa/alice"),
            "deny: no ALLOW policy matched",
        ),
        (
            "notPrincipals are aliased too",
            TD,
            td_config("td2", &["td1"]),
            policy(
                "a",
                json!({"rules": [{"from": [{"source": {"notPrincipals": ["td1/ns/foo/sa/alice"]}}]}]}),
            ),
            req().principal("td2/ns/foo/sa/alice"),
            "deny: no ALLOW policy matched",
        ),
        (
            "source.principal conditions are aliased",
            "istio model.go MigrateTrustDomain (attrSrcPrincipal)",
            td_config("td2", &["td1"]),
            policy(
                "a",
                json!({"rules": [{"when": [{"key": "source.principal", "values": ["td1/ns/foo/sa/alice"]}]}]}),
            ),
            req().principal("td2/ns/foo/sa/alice"),
            "allow: allowed by foo/a rule 0",
        ),
        (
            "a prefix principal is not a SPIFFE id and is kept",
            TD,
            td_config("td2", &["td1"]),
            allow_principal("a", "td1/ns/foo/*"),
            req().principal("td2/ns/foo/sa/alice"),
            "deny: no ALLOW policy matched",
        ),
        (
            "trustDomains naming an alias cover all of them",
            "istio bundle.go ExpandTrustDomainAliases",
            td_config("td2", &["td1"]),
            policy(
                "a",
                json!({"rules": [{"from": [{"source": {"trustDomains": ["td2"]}}]}]}),
            ),
            req().principal("td1/ns/foo/sa/alice"),
            "allow: allowed by foo/a rule 0",
        ),
        ("an unset trust domain is cluster.local (a DENY on cluster.local principals still denies)", "istio meshConfig.trustDomain default", td_config("", &[]), policy("d", json!({"action": "DENY", "rules": [{"from": [{"source": {"principals": [ALICE]}}]}]})), req().principal(ALICE), "deny: denied by foo/d rule 0"),
    ];
    let mut failures = Vec::new();
    for (name, source, cfg, p, r, want) in rows {
        let got = decide_with(&cfg, &[p], r);
        if got != want {
            failures.push(format!("{name} [{source}]: want {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn path_normalization_before_matching() {
    let norm = |mode| EngineConfig {
        path_normalization: mode,
        ..config()
    };
    let deny_admin = || vec![deny_path("d", "/admin")];
    let rows: Vec<(&str, &str, PathNormalization, Req, &str)> = vec![
        (
            "NONE: dot segments are not resolved, so /a/../admin passes a DENY on /admin",
            "istio.io normalization doc: NONE",
            PathNormalization::None,
            req().path("/a/../admin"),
            "allow: no ALLOW policy applies",
        ),
        (
            "BASE: /a/../admin is /admin",
            "istio.io normalization doc: BASE (RFC 3986)",
            PathNormalization::Base,
            req().path("/a/../admin"),
            "deny: denied by foo/d rule 0",
        ),
        (
            "BASE: //admin keeps its slashes",
            "istio.io normalization doc: BASE",
            PathNormalization::Base,
            req().path("//admin"),
            "allow: no ALLOW policy applies",
        ),
        (
            "MERGE_SLASHES: //admin is /admin",
            "istio.io normalization doc: MERGE_SLASHES",
            PathNormalization::MergeSlashes,
            req().path("//admin"),
            "deny: denied by foo/d rule 0",
        ),
        (
            "DECODE_AND_MERGE_SLASHES: /%2Fadmin is /admin",
            "istio.io normalization doc: DECODE_AND_MERGE_SLASHES",
            PathNormalization::DecodeAndMergeSlashes,
            req().path("/%2Fadmin"),
            "deny: denied by foo/d rule 0",
        ),
        (
            "MERGE_SLASHES: %2F is not decoded",
            "istio.io normalization doc",
            PathNormalization::MergeSlashes,
            req().path("/%2Fadmin"),
            "allow: no ALLOW policy applies",
        ),
        (
            "BASE: the query is not part of the path",
            "envoy PathMatcher",
            PathNormalization::Base,
            req().path("/admin?x=/y"),
            "deny: denied by foo/d rule 0",
        ),
        (
            "a fragment is stripped before matching: /public#/admin is /public",
            "istio bootstrap extractRuntimeFlags: http_reject_path_with_fragment=false",
            PathNormalization::Base,
            req().path("/public#/admin"),
            "allow: no ALLOW policy applies",
        ),
        (
            "a path not starting with / is rejected: deny",
            "envoy HCM rejects non origin-form paths",
            PathNormalization::None,
            req().path("admin"),
            "deny: request path cannot be normalized",
        ),
        (
            "TCP has no path to reject",
            "istio builder.go BuildTCP",
            PathNormalization::Base,
            req().tcp().path("#"),
            "deny: denied by foo/d rule 0",
        ),
    ];
    let mut failures = Vec::new();
    for (name, source, mode, r, want) in rows {
        let got = decide_with(&norm(mode), &deny_admin(), r);
        if got != want {
            failures.push(format!("{name} [{source}]: want {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_invalid_path_is_denied_even_without_policies() {
    let (engine, _) = compile(&[]);
    let d = req().path("a/b").decide(&engine);
    assert_eq!(d.verdict, Verdict::Deny);
}

#[test]
fn an_engine_that_compiled_nothing_denies() {
    let d = req().decide(&Engine::default());
    assert_eq!(d.to_string(), "deny: no ALLOW policy matched");
}

fn compile_errors(policies: &[AuthorizationPolicy]) -> Vec<String> {
    match Engine::compile(policies, &config()) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn compile_errors_name_policy_field_and_value() {
    let rows: Vec<(&str, &str, AuthorizationPolicy, &str)> = vec![
        ("unknown condition keys are rejected", "istio model.go New: unknown attribute", policy("u", json!({"rules": [{"when": [{"key": "request.nope", "values": ["x"]}]}]})), "foo/u: spec.rules[0].when[0].key: \"request.nope\": unknown attribute"),
        ("a bad ipBlock names its index", "istio util.AddrStrToCidrRange", policy("ip", json!({"rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8", "10.0.0.0/99"]}}]}]})), "foo/ip: spec.rules[0].from[0].source.ipBlocks[1]: \"10.0.0.0/99\": not an IP address or CIDR range"),
        ("a bad port names its field", "istio generator.go convertToPort", policy("pt", json!({"rules": [{"to": [{"operation": {"notPorts": ["http"]}}]}]})), "foo/pt: spec.rules[0].to[0].operation.notPorts[0]: \"http\": not a port number"),
        ("a bad destination.port value", "istio generator.go destPortGenerator", policy("dp", json!({"rules": [{"when": [{"key": "destination.port", "values": ["70000"]}]}]})), "foo/dp: spec.rules[0].when[0].values[0]: \"70000\": not a port number"),
        ("a bad source.ip notValue", "istio generator.go srcIPGenerator", policy("si", json!({"rules": [{"when": [{"key": "source.ip", "notValues": ["x"]}]}]})), "foo/si: spec.rules[0].when[0].notValues[0]: \"x\": not an IP address"),
        ("a template operator must be a whole segment", "istio security.go CheckValidPathTemplate", policy("t", json!({"rules": [{"to": [{"operation": {"paths": ["/a{*}"]}}]}]})), "foo/t: spec.rules[0].to[0].operation.paths[0]: \"/a{*}\": a {*} or {**} template must be a whole path segment"),
        ("{**} must be the last template operator", "istio security.go CheckValidPathTemplate", policy("t2", json!({"rules": [{"to": [{"operation": {"notPaths": ["/{**}/{*}"]}}]}]})), "foo/t2: spec.rules[0].to[0].operation.notPaths[0]: \"/{**}/{*}\": {**} must be the last template operator"),
        ("a malformed header key", "istio model extractNameInBrackets", policy("h", json!({"rules": [{"when": [{"key": "request.headers[]", "values": ["x"]}]}]})), "foo/h: spec.rules[0].when[0].key: \"request.headers[]\": bad key: should have format a[b]"),
    ];
    let mut failures = Vec::new();
    for (name, source, p, want_prefix) in rows {
        let errors = compile_errors(&[p]);
        if !errors.iter().any(|e| e.starts_with(want_prefix)) {
            failures.push(format!(
                "{name} [{source}]: want {want_prefix}..., got {errors:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_error_is_reported_and_nothing_compiles() {
    let errors = compile_errors(&[
        policy(
            "c",
            json!({"rules": [{"when": [{"key": "request.nope", "values": ["x"]}]}]}),
        ),
        policy(
            "ip",
            json!({"rules": [{"from": [{"source": {"ipBlocks": ["x"]}}]}]}),
        ),
        policy(
            "c2",
            json!({"rules": [{"to": [{"operation": {"ports": ["http"]}}]}]}),
        ),
    ]);
    assert_eq!(errors.len(), 3, "{errors:?}");
}

#[test]
fn warnings_explain_tcp_and_target_ref() {
    let (_, warnings) = compile(&[
        policy(
            "a",
            json!({"rules": [{"to": [{"operation": {"paths": ["/x"], "methods": ["GET"]}}]}]}),
        ),
        policy(
            "d",
            json!({"action": "DENY", "rules": [{"when": [{"key": "request.auth.claims[iss]", "values": ["x"]}]}]}),
        ),
        policy(
            "t",
            json!({"targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]}),
        ),
        allow_principal("plain", ALICE),
    ]);
    let text: Vec<String> = warnings.iter().map(|w| w.0.clone()).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(text[0].starts_with("foo/a: spec.rules[0]: uses HTTP-only fields (methods, paths); on TCP connections this ALLOW rule never matches"), "{text:?}");
    assert!(text[1].starts_with("foo/d: spec.rules[0]: uses HTTP-only fields (request.auth.claims); on TCP connections they are ignored, so this DENY rule matches more"), "{text:?}");
    assert!(text[2].starts_with("foo/t: spec.targetRef:"), "{text:?}");
}

#[test]
fn needs_lists_only_the_facts_policies_read() {
    let needs = |spec: serde_json::Value| compile(&[policy("p", spec)]).0.needs();
    let rule = |r: serde_json::Value| json!({"rules": [r]});
    assert_eq!(compile(&[]).0.needs(), Needs::default());
    assert_eq!(
        needs(rule(
            json!({"to": [{"operation": {"paths": ["/x"], "methods": ["GET"], "hosts": ["h"]}}]})
        )),
        Needs::default()
    );
    assert_eq!(
        needs(rule(json!({"from": [{"source": {"principals": [ALICE]}}]}))),
        Needs {
            principal: true,
            ..Needs::default()
        }
    );
    assert_eq!(
        needs(rule(json!({"from": [{"source": {"namespaces": ["foo"]}}]}))),
        Needs {
            principal: true,
            ..Needs::default()
        }
    );
    assert_eq!(
        needs(rule(
            json!({"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]})
        )),
        Needs {
            direct_remote_ip: true,
            ..Needs::default()
        }
    );
    assert_eq!(
        needs(rule(
            json!({"from": [{"source": {"remoteIpBlocks": ["10.0.0.0/8"]}}]})
        )),
        Needs {
            remote_ip: true,
            ..Needs::default()
        }
    );
    assert_eq!(
        needs(rule(json!({"to": [{"operation": {"ports": ["80"]}}]}))),
        Needs {
            destination_port: true,
            ..Needs::default()
        }
    );
    assert_eq!(
        needs(rule(
            json!({"when": [{"key": "destination.ip", "values": ["10.0.0.1"]}]})
        )),
        Needs {
            destination_ip: true,
            ..Needs::default()
        }
    );
    assert_eq!(
        needs(rule(
            json!({"when": [{"key": "connection.sni", "values": ["x"]}]})
        )),
        Needs {
            sni: true,
            ..Needs::default()
        }
    );
    assert_eq!(
        needs(rule(
            json!({"when": [{"key": "request.headers[x]", "values": ["x"]}]})
        )),
        Needs {
            headers: true,
            ..Needs::default()
        }
    );
    assert_eq!(
        needs(rule(
            json!({"from": [{"source": {"requestPrincipals": ["*"]}}]})
        )),
        Needs {
            request_auth: true,
            ..Needs::default()
        }
    );
    assert_eq!(
        needs(rule(
            json!({"when": [{"key": "request.auth.claims[g]", "values": ["x"]}]})
        )),
        Needs {
            request_auth: true,
            ..Needs::default()
        }
    );
    // A policy for another workload reads nothing.
    assert_eq!(
        compile(&[policy_in(
            "bar",
            "p",
            json!({"rules": [{"from": [{"source": {"principals": [ALICE]}}]}]})
        )])
        .0
        .needs(),
        Needs::default()
    );
}
