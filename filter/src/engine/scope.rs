//! Which policies apply to the workload this filter guards, and which are dry-run.
//!
//! Istio `pilot/pkg/model/authorization.go` (`ListAuthorizationPolicies`): policies in the
//! root namespace apply mesh-wide, others only in their own namespace; a `selector` must
//! match the workload's labels (every `matchLabels` entry present with the same value; no
//! selector or an empty one selects every workload). Policies attached with
//! `targetRef`/`targetRefs` are for gateways and waypoints: a sidecar never applies them
//! (Istio's policy matcher ignores them for sidecar proxies), so neither does this filter.

use crate::policy::{AuthorizationPolicy, DRY_RUN_ANNOTATION};

use super::api::EngineConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Applies,
    /// Another namespace, or the selector does not match.
    OtherWorkload,
    /// Attached with `targetRef`/`targetRefs`: not applied by a sidecar.
    TargetRef,
}

pub(crate) fn scope(policy: &AuthorizationPolicy, config: &EngineConfig) -> Scope {
    let ns = policy.metadata.namespace.as_str();
    if ns != config.root_namespace && ns != config.workload.namespace {
        return Scope::OtherWorkload;
    }
    if policy.spec.target_ref.is_some() || !policy.spec.target_refs.is_empty() {
        return Scope::TargetRef;
    }
    let selected = policy.spec.selector.as_ref().is_none_or(|s| {
        s.match_labels
            .iter()
            .all(|(k, v)| config.workload.labels.get(k) == Some(v))
    });
    if selected {
        Scope::Applies
    } else {
        Scope::OtherWorkload
    }
}

/// `istio.io/dry-run` read like Istio's builder: Go `strconv.ParseBool`; a value it cannot
/// parse is logged by Istio and the policy is enforced.
pub(crate) fn is_dry_run(policy: &AuthorizationPolicy) -> bool {
    matches!(
        policy
            .metadata
            .annotations
            .get(DRY_RUN_ANNOTATION)
            .map(String::as_str),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True")
    )
}
