//! Counting and explaining decisions, the same way for HTTP and TCP.

use crate::config::LogLevel;
use crate::engine::{Decision, Reason, ShadowResult, Verdict};

use super::host::Host;
use super::plugin::{Counters, Plugin};
use crate::identity::PeerIdentity;

/// The deciding policy and rule of a reason; `none` when no policy decided (Envoy's RBAC filter
/// prints `none` in `rbac_access_denied_matched_policy[none]`).
pub fn deciding_policy(reason: &Reason) -> (&str, Option<usize>) {
    match reason {
        Reason::DeniedBy(p) | Reason::AllowedBy(p) => (&*p.policy, Some(p.rule)),
        Reason::NoAllowPolicyMatched | Reason::NoAllowPolicies => ("none", None),
        Reason::InvalidPath => ("none", None),
    }
}

/// Why, in words, for log lines.
pub fn why(reason: &Reason) -> &'static str {
    match reason {
        Reason::DeniedBy(_) => "a DENY policy matched",
        Reason::NoAllowPolicyMatched => "no ALLOW policy matched",
        Reason::AllowedBy(_) => "an ALLOW policy matched",
        Reason::NoAllowPolicies => "no ALLOW policy applies",
        Reason::InvalidPath => "the request path cannot be normalized",
    }
}

/// Envoy's response code details for an RBAC denial
/// (`docs/root/configuration/http/http_filters/rbac_filter.rst`).
pub fn response_details(reason: &Reason) -> String {
    format!(
        "rbac_access_denied_matched_policy[{}]",
        deciding_policy(reason).0
    )
}

/// `allow; policy=ns/name; rule=0`: the debug header / filter-state value.
pub fn decision_summary(verdict: Verdict, reason: &Reason) -> String {
    let (policy, rule) = deciding_policy(reason);
    let verdict = match verdict {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
    };
    match rule {
        Some(rule) => format!("{verdict}; policy={policy}; rule={rule}"),
        None => format!("{verdict}; policy={policy}"),
    }
}

/// The principal as log lines show it.
pub fn principal_for_log(peer: &PeerIdentity) -> String {
    match peer {
        PeerIdentity::Verified(id) => format!("{:?}", id.principal()),
        PeerIdentity::Unauthenticated(reason) => format!("unauthenticated({reason})"),
        PeerIdentity::Invalid(invalid) => format!("invalid({invalid})"),
    }
}

/// Counts the decision (enforced, each RBAC filter's shadow result, audit) and logs the lines
/// for denials, dry-run denials, dry-run audit matches and audit matches at `denialLogLevel`;
/// allowed requests only at debug.
/// `what` describes the request (`method=GET host=... path=...` or `source=... destination=...`).
pub fn report<H: Host + ?Sized>(
    plugin: &Plugin,
    host: &H,
    decision: &Decision,
    principal: &str,
    what: &str,
) {
    let counters: &Counters = &plugin.counters;
    let level = plugin.config.denial_log_level;
    let (policy, rule) = deciding_policy(&decision.reason);
    if rule.is_some() {
        plugin.count_policy(host, policy, decision.verdict == Verdict::Allow);
    }
    let rule = rule.map_or_else(|| "-".to_string(), |r| r.to_string());
    match decision.verdict {
        Verdict::Allow => {
            Counters::bump(host, counters.allowed);
            plugin.log(
                host,
                LogLevel::Debug,
                &format!(
                    "allowed principal={principal} {what} policy={policy} rule={rule} ({})",
                    why(&decision.reason)
                ),
            );
        }
        Verdict::Deny => {
            Counters::bump(host, counters.denied);
            plugin.log(
                host,
                level,
                &format!(
                    "denied principal={principal} {what} policy={policy} rule={rule} ({})",
                    why(&decision.reason)
                ),
            );
        }
    }
    report_shadow(plugin, host, decision, principal, what);
    if let Some(audit) = &decision.audit {
        Counters::bump(host, counters.audited);
        plugin.log(
            host,
            level,
            &format!(
                "audit principal={principal} {what} policy={} rule={}",
                audit.policy, audit.rule
            ),
        );
    }
}

/// One count per RBAC filter that ran shadow rules, as Envoy's `rbac_filter.cc` counts its
/// shadow engine's result: `shadow_allowed` or `shadow_denied` under that filter's prefix.
/// A filter that did not run (no dry-run policy of its action, or the ALLOW filter after an
/// enforced DENY) counts nothing.
fn report_shadow<H: Host + ?Sized>(
    plugin: &Plugin,
    host: &H,
    decision: &Decision,
    principal: &str,
    what: &str,
) {
    let counters = &plugin.counters;
    let level = plugin.config.denial_log_level;
    let filters = [
        (&decision.shadow.audit, counters.shadow_audit),
        (&decision.shadow.deny, counters.shadow_deny),
        (&decision.shadow.allow, counters.shadow_allow),
    ];
    for (result, ids) in filters {
        if let Some(result) = result {
            Counters::bump(
                host,
                match result.verdict {
                    Verdict::Allow => ids.allowed,
                    Verdict::Deny => ids.denied,
                },
            );
        }
    }
    // A dry-run AUDIT match is the AUDIT filter's shadow result: reported, never an audit
    // (Envoy sets no access-log hint in shadow mode).
    if let Some(ShadowResult {
        policy: Some(p), ..
    }) = &decision.shadow.audit
    {
        plugin.log(
            host,
            level,
            &format!(
                "dry-run audit principal={principal} {what} policy={} rule={}",
                p.policy, p.rule
            ),
        );
    }
    if let Some(ShadowResult {
        verdict: Verdict::Deny,
        policy,
    }) = &decision.shadow.deny
    {
        let (policy, rule) = policy.as_ref().map_or_else(
            || ("none".to_string(), "-".to_string()),
            |p| (p.policy.to_string(), p.rule.to_string()),
        );
        plugin.log(
            host,
            level,
            &format!(
                "dry-run denied (not enforced) principal={principal} {what} policy={policy} rule={rule} (a dry-run DENY policy matched)"
            ),
        );
    }
    if let Some(ShadowResult {
        verdict: Verdict::Deny,
        ..
    }) = &decision.shadow.allow
    {
        plugin.log(
            host,
            level,
            &format!(
                "dry-run denied (not enforced) principal={principal} {what} policy=none rule=- (no dry-run ALLOW policy matched)"
            ),
        );
    }
}
