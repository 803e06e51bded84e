//! Counting and explaining decisions, the same way for HTTP and TCP.

use crate::config::LogLevel;
use crate::engine::{Decision, Reason, Verdict};

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
pub fn principal_for_log(peer: Option<&PeerIdentity>) -> String {
    match peer {
        Some(PeerIdentity::Verified(id)) => format!("{:?}", id.principal()),
        Some(PeerIdentity::Unauthenticated(reason)) => format!("unauthenticated({reason})"),
        Some(PeerIdentity::Invalid(invalid)) => format!("invalid({invalid})"),
        None => "-".to_string(),
    }
}

/// Counts the decision (enforced, dry-run, audit) and logs the lines for denials, dry-run
/// denials and audit matches at `denialLogLevel`; allowed requests only at debug.
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
    if let Some(dry) = &decision.dry_run {
        let (dry_policy, dry_rule) = deciding_policy(&dry.reason);
        let dry_rule = dry_rule.map_or_else(|| "-".to_string(), |r| r.to_string());
        match dry.verdict {
            Verdict::Allow => Counters::bump(host, counters.shadow_allowed),
            Verdict::Deny => {
                Counters::bump(host, counters.shadow_denied);
                plugin.log(
                    host,
                    level,
                    &format!(
                        "dry-run denied (not enforced) principal={principal} {what} policy={dry_policy} rule={dry_rule} ({})",
                        why(&dry.reason)
                    ),
                );
            }
        }
    }
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
