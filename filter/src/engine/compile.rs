//! Policies -> indexed rule sets, once, at configure time.
//!
//! Mirrors Istio's authorization builder (`pilot/pkg/security/authz/builder/builder.go`):
//! policies are split by action into one Envoy RBAC filter each (AUDIT, DENY, ALLOW), each
//! with enforced rules and shadow (dry-run) rules, built twice: for HTTP and for TCP.

use crate::policy::{Action, AuthorizationPolicy, ConditionKey, Rule, ValidationError};

use super::api::{EngineConfig, MetadataKey, Needs, PolicyName, Warning};
use super::condition::{
    condition_constraint, operation_constraints, source_constraints, PolicyCtx, Side,
};
use super::index::RuleSet;
use super::principal::{TrustDomainBundle, CLUSTER_LOCAL};
use super::rule::{CompiledRule, Constraint, UnknownFact};
use super::scope::{is_dry_run, scope, Scope};

/// A configure-time error from the engine, in the validation layer's one-line format.
pub(crate) fn engine_error(
    policy: &str,
    field: String,
    value: Option<&str>,
    message: String,
) -> ValidationError {
    let e = ValidationError::new(policy, field, crate::policy::Problem::Other(message));
    match value {
        Some(v) => e.with_value(v),
        None => e,
    }
}

/// The rule sets of one protocol.
#[derive(Debug, Clone, Default)]
pub(crate) struct Groups {
    pub(crate) deny: RuleSet,
    pub(crate) allow: RuleSet,
    pub(crate) audit: RuleSet,
    pub(crate) dry_deny: RuleSet,
    pub(crate) dry_allow: RuleSet,
    pub(crate) dry_audit: RuleSet,
}

impl Groups {
    fn all(&self) -> [&RuleSet; 6] {
        [
            &self.deny,
            &self.allow,
            &self.audit,
            &self.dry_deny,
            &self.dry_allow,
            &self.dry_audit,
        ]
    }
}

/// Everything [`super::Engine`] holds.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    /// `namespace/name` of every applicable policy, shared by decisions without copying.
    pub(crate) policies: Vec<PolicyName>,
    pub(crate) http: Groups,
    pub(crate) tcp: Groups,
    /// An enforced ALLOW policy applies (even one with no rules): unmatched requests are
    /// denied.
    pub(crate) has_allow: bool,
    pub(crate) has_dry_allow: bool,
    pub(crate) has_dry_deny: bool,
    pub(crate) has_dry_audit: bool,
    pub(crate) needs: Needs,
    pub(crate) path_normalization: crate::normalize::PathNormalization,
}

impl Default for Compiled {
    /// An engine that compiled nothing denies everything (fail closed until configured).
    fn default() -> Self {
        Compiled {
            policies: Vec::new(),
            http: Groups::default(),
            tcp: Groups::default(),
            has_allow: true,
            has_dry_allow: false,
            has_dry_deny: false,
            has_dry_audit: false,
            needs: Needs::default(),
            path_normalization: crate::normalize::PathNormalization::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Deny,
    Allow,
    Audit,
    DryDeny,
    DryAllow,
    DryAudit,
}

/// One rule before it is specialised for HTTP or TCP.
struct RuleParts {
    principals: Vec<Vec<Constraint>>,
    permissions: Vec<Vec<Constraint>>,
}

pub(crate) fn compile(
    policies: &[AuthorizationPolicy],
    config: &EngineConfig,
) -> Result<(Compiled, Vec<Warning>), Vec<ValidationError>> {
    // An unset trust domain is Istio's default; aliasing `cluster.local` to "" would rewrite
    // every `cluster.local/...` principal into one no peer has, silently disabling DENYs.
    let trust_domain = match config.trust_domain.as_str() {
        "" => CLUSTER_LOCAL,
        td => td,
    };
    let bundle = TrustDomainBundle::new(trust_domain, &config.trust_domain_aliases);
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut out = Compiled {
        path_normalization: config.path_normalization,
        has_allow: false,
        ..Compiled::default()
    };
    // (Envoy policy name, group, rule) per protocol, sorted before numbering.
    let mut http: Vec<(String, Group, CompiledRule)> = Vec::new();
    let mut tcp: Vec<(String, Group, CompiledRule)> = Vec::new();

    for policy in policies {
        let key = policy.key();
        let action = policy.action();
        match scope(policy, config) {
            Scope::Applies => {}
            Scope::OtherWorkload => continue,
            Scope::TargetRef => {
                warnings.push(Warning(format!(
                    "{key}: spec.targetRef: attached with targetRef/targetRefs, which Istio \
                     applies to gateways and waypoints, never to sidecars; ignored"
                )));
                continue;
            }
        }
        // Values Istio admits but that cannot mean what they say (validate.rs `warnings`).
        warnings.extend(
            crate::policy::warnings(policy)
                .into_iter()
                .map(|w| Warning(w.to_string())),
        );
        let dry = is_dry_run(policy);
        let group = match (action, dry) {
            (Action::Allow, false) => Group::Allow,
            (Action::Allow, true) => Group::DryAllow,
            (Action::Deny, false) => Group::Deny,
            (Action::Deny, true) => Group::DryDeny,
            // Istio's validation refuses dry-run AUDIT policies; one that gets past it goes to
            // the AUDIT filter's shadow rules (builder.go `build`), which report, never audit.
            (Action::Audit, true) => Group::DryAudit,
            (Action::Audit, false) => Group::Audit,
            // Validation refuses CUSTOM (no ext_authz provider here); should one ever get
            // past it, it fails closed: what its rules match is denied.
            (Action::Custom, true) => Group::DryDeny,
            (Action::Custom, false) => Group::Deny,
        };
        // Fail closed on an address the host could not tell: DENY / AUDIT fire, ALLOW
        // does not (dry-run rules by their own action).
        let unknown_fact = match action {
            Action::Allow => UnknownFact::DoesNotMatch,
            Action::Deny | Action::Audit | Action::Custom => UnknownFact::Matches,
        };
        match group {
            Group::Allow => out.has_allow = true,
            Group::DryAllow => out.has_dry_allow = true,
            Group::DryDeny => out.has_dry_deny = true,
            Group::DryAudit => out.has_dry_audit = true,
            Group::Deny | Group::Audit => {}
        }
        let policy_id = u32::try_from(out.policies.len()).unwrap_or(u32::MAX);
        out.policies.push(PolicyName::from(key.as_str()));
        let ctx = PolicyCtx {
            key: &key,
            namespace: &policy.metadata.namespace,
            bundle: &bundle,
        };
        // Istio: an absent `rules` and `rules: []` both generate no Envoy policy, so an
        // ALLOW policy without rules allows nothing and a DENY policy without rules denies
        // nothing; `rules: [{}]` is one rule matching everything.
        for (i, rule) in policy.spec.rules.iter().flatten().enumerate() {
            let before = errors.len();
            let parts = rule_parts(&ctx, i, rule, action, &mut errors);
            if errors.len() != before {
                continue;
            }
            let Some(parts) = parts else {
                // An ALLOW rule with a key Istio's builder cannot translate: Istio drops it
                // (the warning was given with the policy's warnings).
                continue;
            };
            let name = format!(
                "ns[{}]-policy[{}]-rule[{i}]",
                policy.metadata.namespace, policy.metadata.name
            );
            let http_only: Vec<&'static str> = {
                let mut names: Vec<&'static str> = parts
                    .principals
                    .iter()
                    .chain(parts.permissions.iter())
                    .flatten()
                    .filter(|c| c.is_http_only())
                    .map(Constraint::field_name)
                    .collect();
                names.sort_unstable();
                names.dedup();
                names
            };
            let compiled = |principals, permissions| CompiledRule {
                policy: policy_id,
                rule: i,
                principals,
                permissions,
                unknown_fact,
            };
            http.push((
                name.clone(),
                group,
                compiled(parts.principals.clone(), parts.permissions.clone()),
            ));
            if http_only.is_empty() {
                tcp.push((name, group, compiled(parts.principals, parts.permissions)));
                continue;
            }
            let fields = http_only.join(", ");
            if action == Action::Allow {
                // Istio `checkError`: for ALLOW the generator error drops the whole rule
                // from the TCP filter, so it can never allow a TCP connection.
                warnings.push(Warning(format!(
                    "{key}: spec.rules[{i}]: uses HTTP-only fields ({fields}); on TCP \
                     connections this ALLOW rule never matches"
                )));
            } else {
                // For DENY and AUDIT, Istio drops only the HTTP-only fields: the rule
                // matches more TCP connections, never fewer (fail closed).
                warnings.push(Warning(format!(
                    "{key}: spec.rules[{i}]: uses HTTP-only fields ({fields}); on TCP \
                     connections they are ignored, so this {} rule matches more",
                    match action {
                        Action::Deny => "DENY",
                        Action::Custom => "CUSTOM",
                        Action::Allow | Action::Audit => "AUDIT",
                    }
                )));
                let strip = |entries: Vec<Vec<Constraint>>| -> Vec<Vec<Constraint>> {
                    entries
                        .into_iter()
                        .map(|e| e.into_iter().filter(|c| !c.is_http_only()).collect())
                        .collect()
                };
                tcp.push((
                    name,
                    group,
                    compiled(strip(parts.principals), strip(parts.permissions)),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    out.http = groups(http);
    out.tcp = groups(tcp);
    out.needs = needs(&out);
    Ok((out, warnings))
}

/// Istio `model.New`: `when` conditions form a base principal and a base permission that
/// every `from` / `to` entry extends; no `from` (or no `to`) means the base alone.
///
/// `None` when Istio's builder drops the whole rule: an ALLOW rule with a condition key it
/// cannot translate (`checkError` returns the generator's error for ALLOW only). For other
/// actions such a condition is left out and the rule matches more. Keys the engine does not
/// implement ([`crate::policy::ConditionKeyError::drops_condition`]) are left out the same way.
fn rule_parts(
    ctx: &PolicyCtx<'_>,
    i: usize,
    rule: &Rule,
    action: Action,
    errors: &mut Vec<ValidationError>,
) -> Option<RuleParts> {
    let mut base_principal = Vec::new();
    let mut base_permission = Vec::new();
    for (j, c) in rule.when.iter().enumerate() {
        if ConditionKey::parse(&c.key).is_err_and(|e| e.drops_condition()) {
            if action == Action::Allow {
                return None;
            }
            continue;
        }
        let path = format!("spec.rules[{i}].when[{j}]");
        match condition_constraint(ctx, &path, c, errors) {
            Some((Side::Principal, constraint)) => base_principal.push(constraint),
            Some((Side::Permission, constraint)) => base_permission.push(constraint),
            None => {}
        }
    }
    let mut principals = Vec::new();
    for (j, from) in rule.from.iter().enumerate() {
        let mut entry = match &from.source {
            Some(s) => {
                source_constraints(ctx, &format!("spec.rules[{i}].from[{j}].source"), s, errors)
            }
            None => Vec::new(),
        };
        entry.extend(base_principal.iter().cloned());
        principals.push(entry);
    }
    if principals.is_empty() {
        principals.push(base_principal);
    }
    let mut permissions = Vec::new();
    for (j, to) in rule.to.iter().enumerate() {
        let mut entry = match &to.operation {
            Some(o) => operation_constraints(
                ctx,
                &format!("spec.rules[{i}].to[{j}].operation"),
                o,
                errors,
            ),
            None => Vec::new(),
        };
        entry.extend(base_permission.iter().cloned());
        permissions.push(entry);
    }
    if permissions.is_empty() {
        permissions.push(base_permission);
    }
    Some(RuleParts {
        principals,
        permissions,
    })
}

/// Sorts each group's rules by Envoy policy name and indexes them.
fn groups(mut rules: Vec<(String, Group, CompiledRule)>) -> Groups {
    rules.sort_by(|a, b| a.0.cmp(&b.0));
    let mut split: [Vec<CompiledRule>; 6] = Default::default();
    for (_, group, rule) in rules {
        let at = match group {
            Group::Deny => 0,
            Group::Allow => 1,
            Group::Audit => 2,
            Group::DryDeny => 3,
            Group::DryAllow => 4,
            Group::DryAudit => 5,
        };
        if let Some(list) = split.get_mut(at) {
            list.push(rule);
        }
    }
    let [deny, allow, audit, dry_deny, dry_allow, dry_audit] = split;
    Groups {
        deny: RuleSet::new(deny),
        allow: RuleSet::new(allow),
        audit: RuleSet::new(audit),
        dry_deny: RuleSet::new(dry_deny),
        dry_allow: RuleSet::new(dry_allow),
        dry_audit: RuleSet::new(dry_audit),
    }
}

fn needs(c: &Compiled) -> Needs {
    let mut n = Needs::default();
    let sets = c.http.all().into_iter().chain(c.tcp.all());
    for constraint in sets.flat_map(|s| s.rules()).flat_map(|r| r.constraints()) {
        match constraint {
            Constraint::Principal(_)
            | Constraint::Namespace(_)
            | Constraint::ServiceAccount(_)
            | Constraint::TrustDomain(_) => n.principal = true,
            Constraint::DirectRemoteIp(_) => n.direct_remote_ip = true,
            Constraint::RemoteIp(_) => n.remote_ip = true,
            Constraint::DestinationIp(_) => n.destination_ip = true,
            Constraint::DestinationPort(_) => n.destination_port = true,
            Constraint::Sni(_) => n.sni = true,
            Constraint::Header { .. } => n.headers = true,
            Constraint::RequestPrincipal(_)
            | Constraint::Audience(_)
            | Constraint::Presenter(_)
            | Constraint::Claim { .. } => n.request_auth = true,
            Constraint::FilterMetadata { filter, key, .. } => n.filter_metadata.push(MetadataKey {
                filter: filter.to_string(),
                key: key.to_string(),
            }),
            Constraint::Host(_) | Constraint::Method(_) | Constraint::Path(_) => {}
        }
    }
    n.filter_metadata.sort_unstable();
    n.filter_metadata.dedup();
    n
}
