//! Per-request evaluation: Envoy's RBAC filter chain as Istio configures it.
//!
//! Istio installs one RBAC filter per action, AUDIT then DENY then ALLOW
//! (`builder.go` `BuildHTTP`/`BuildTCP`). istio.io AuthorizationPolicy reference, "Policy
//! evaluation": if any DENY policy matches, deny; if there are no ALLOW policies for the
//! workload, allow; if any ALLOW policy matches, allow; otherwise deny. AUDIT only reports.
//! Dry-run policies are Envoy shadow rules of the same filter: evaluated, reported, never
//! enforced; each filter runs its shadow rules before its enforced ones, and a filter after
//! an enforced denial does not run at all.

use std::cell::RefCell;

use crate::normalize::{normalize_path_in, PathScratch};

use super::api::{
    Decision, DryRunOutcome, PolicyName, PolicyRef, Reason, Request, ShadowResult, ShadowResults,
    Verdict,
};
use super::compile::Compiled;
use super::index::RuleSet;
use super::rule::{CompiledRule, Facts, HttpFacts};

thread_local! {
    /// Where paths that normalization rewrites are written, reused by every decision on the
    /// thread (a Wasm VM has one), so rewriting allocates only while the buffers grow.
    static PATH_SCRATCH: RefCell<PathScratch> = RefCell::new(PathScratch::default());
}

pub(crate) fn decide(c: &Compiled, req: &Request<'_>) -> Decision {
    let with_own = || decide_with(c, req, &mut PathScratch::default());
    PATH_SCRATCH
        .try_with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => decide_with(c, req, &mut scratch),
            // Only a decision made while another holds the buffer (none does) or thread
            // teardown could get here: a buffer of its own is still a correct decision.
            Err(_) => with_own(),
        })
        .unwrap_or_else(|_| with_own())
}

pub(crate) fn decide_with(c: &Compiled, req: &Request<'_>, scratch: &mut PathScratch) -> Decision {
    let normalized: &str;
    let http = match &req.http {
        Some(h) => {
            normalized = match normalize_path_in(h.path, c.path_normalization, scratch) {
                Ok(p) => p,
                Err(_) => {
                    return Decision {
                        verdict: Verdict::Deny,
                        reason: Reason::InvalidPath,
                        dry_run: None,
                        audit: None,
                        shadow: ShadowResults::default(),
                    }
                }
            };
            Some(HttpFacts {
                method: h.method,
                path: without_query(normalized),
                raw_path: h.path,
                host: h.host,
                headers: h.headers,
            })
        }
        None => None,
    };
    let facts = Facts {
        principal: req.principal,
        direct_remote_ip: req.direct_remote_ip,
        remote_ip: req.remote_ip,
        destination_ip: req.destination_ip,
        destination_port: req.destination_port,
        sni: req.sni,
        http,
        auth: req.request_auth,
        filter_metadata: req.filter_metadata,
    };
    let groups = if facts.http.is_some() {
        &c.http
    } else {
        &c.tcp
    };
    let policy_ref = |r: &CompiledRule| PolicyRef {
        policy: c
            .policies
            .get(r.policy as usize)
            .cloned()
            .unwrap_or_else(|| PolicyName::from("")),
        rule: r.rule,
    };
    // Envoy's filter order (AUDIT, DENY, ALLOW), each filter's shadow rules before its
    // enforced ones (rbac_filter.cc decodeHeaders / network onData).
    let audit = groups.audit.first_match(&facts).map(policy_ref);
    let shadow_audit = c.has_dry_audit.then(|| ShadowResult {
        verdict: Verdict::Allow,
        policy: groups.dry_audit.first_match(&facts).map(policy_ref),
    });
    let shadow_deny = c
        .has_dry_deny
        .then(|| match groups.dry_deny.first_match(&facts) {
            Some(r) => ShadowResult {
                verdict: Verdict::Deny,
                policy: Some(policy_ref(r)),
            },
            None => ShadowResult {
                verdict: Verdict::Allow,
                policy: None,
            },
        });
    let (verdict, reason) = enforce(&groups.deny, &groups.allow, c.has_allow, &facts, policy_ref);
    // A request the enforced DENY filter denied never reaches the ALLOW filter, whose shadow
    // rules therefore never run.
    let reaches_allow_filter = !matches!(reason, Reason::DeniedBy(_));
    let shadow_allow = (c.has_dry_allow && reaches_allow_filter).then(|| {
        match groups.dry_allow.first_match(&facts) {
            Some(r) => ShadowResult {
                verdict: Verdict::Allow,
                policy: Some(policy_ref(r)),
            },
            None => ShadowResult {
                verdict: Verdict::Deny,
                policy: None,
            },
        }
    });
    let dry_run = dry_run_outcome(shadow_deny.as_ref(), shadow_allow.as_ref(), c.has_dry_allow);
    Decision {
        verdict,
        reason,
        dry_run,
        audit,
        shadow: ShadowResults {
            audit: shadow_audit,
            deny: shadow_deny,
            allow: shadow_allow,
        },
    }
}

/// The dry-run verdict the shadow results give together (see [`Decision::dry_run`]).
fn dry_run_outcome(
    deny: Option<&ShadowResult>,
    allow: Option<&ShadowResult>,
    has_dry_allow: bool,
) -> Option<DryRunOutcome> {
    let outcome = |verdict, reason| Some(DryRunOutcome { verdict, reason });
    if let Some(ShadowResult {
        verdict: Verdict::Deny,
        policy: Some(p),
    }) = deny
    {
        return outcome(Verdict::Deny, Reason::DeniedBy(p.clone()));
    }
    match allow {
        Some(ShadowResult {
            policy: Some(p), ..
        }) => outcome(Verdict::Allow, Reason::AllowedBy(p.clone())),
        Some(_) => outcome(Verdict::Deny, Reason::NoAllowPolicyMatched),
        None if deny.is_some() && !has_dry_allow => {
            outcome(Verdict::Allow, Reason::NoAllowPolicies)
        }
        None => None,
    }
}

/// The DENY filter, then the ALLOW filter (present only when an ALLOW policy applies).
fn enforce(
    deny: &RuleSet,
    allow: &RuleSet,
    has_allow: bool,
    facts: &Facts<'_>,
    policy_ref: impl Fn(&CompiledRule) -> PolicyRef,
) -> (Verdict, Reason) {
    if let Some(r) = deny.first_match(facts) {
        return (Verdict::Deny, Reason::DeniedBy(policy_ref(r)));
    }
    if !has_allow {
        return (Verdict::Allow, Reason::NoAllowPolicies);
    }
    match allow.first_match(facts) {
        Some(r) => (Verdict::Allow, Reason::AllowedBy(policy_ref(r))),
        None => (Verdict::Deny, Reason::NoAllowPolicyMatched),
    }
}

/// Envoy `PathUtil::removeQueryAndFragment`: RBAC path matchers compare the path only.
/// `normalize_path` already drops the query and the fragment; kept so the matchers'
/// contract does not depend on that.
/// Both are ASCII, so a byte search finds the same cut as a char search, without walking
/// chars one call at a time (opt-level "z" inlines little).
#[inline]
fn without_query(path: &str) -> &str {
    match path.bytes().position(|b| b == b'?' || b == b'#') {
        Some(at) => path.get(..at).unwrap_or(path),
        None => path,
    }
}
