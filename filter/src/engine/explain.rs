//! Decisions that explain themselves in one line.

use std::fmt;

use super::api::{Decision, PolicyRef, Reason, Verdict};

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        })
    }
}

impl fmt::Display for PolicyRef {
    /// `ns-a/deny-admin rule 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rule {}", self.policy, self.rule)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::DeniedBy(p) => write!(f, "denied by {p}"),
            Reason::NoAllowPolicyMatched => f.write_str("no ALLOW policy matched"),
            Reason::AllowedBy(p) => write!(f, "allowed by {p}"),
            Reason::NoAllowPolicies => f.write_str("no ALLOW policy applies"),
            Reason::InvalidPath => f.write_str("request path cannot be normalized"),
        }
    }
}

impl fmt::Display for Decision {
    /// One line a user can read:
    /// `deny: denied by ns-a/deny-admin rule 0; dry-run: allow (no ALLOW policy applies);
    /// audit: ns-a/audit-all rule 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.verdict, self.reason)?;
        if let Some(d) = &self.dry_run {
            write!(f, "; dry-run: {} ({})", d.verdict, d.reason)?;
        }
        if let Some(a) = &self.audit {
            write!(f, "; audit: {a}")?;
        }
        if let Some(p) = self.shadow.audit.as_ref().and_then(|s| s.policy.as_ref()) {
            write!(f, "; dry-run audit: {p}")?;
        }
        Ok(())
    }
}
