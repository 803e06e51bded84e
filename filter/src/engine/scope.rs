//! Which policies apply to the workload this filter guards, and which are dry-run.
//!
//! Istio `pilot/pkg/model/authorization.go` (`ListAuthorizationPolicies`): policies in the
//! root namespace apply mesh-wide, others only in their own namespace; a `selector` must
//! match the workload's labels (every `matchLabels` entry present with the same value; no
//! selector or an empty one selects every workload). Policies attached with
//! `targetRef`/`targetRefs` are for gateways and waypoints: a sidecar never applies them
//! (Istio's policy matcher ignores them for sidecar proxies), so neither does this filter.
//!
//! A workload labelled `gateway.networking.k8s.io/gateway-name: <gw>` is a Gateway API
//! gateway to Istio (`pilot/pkg/model/policyattachment.go` `ShouldAttachPolicy`): a policy
//! with `targetRef(s)` applies when one of them is the `gateway.networking.k8s.io` `Gateway`
//! `<gw>` in the gateway's own namespace; one without keeps selector semantics
//! (`ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY`, on by default). Classic `networking.istio.io`
//! Gateways are matched by Istio from its service registry, which a filter cannot see.

use crate::policy::{AuthorizationPolicy, PolicyTargetReference, DRY_RUN_ANNOTATION};

use super::api::EngineConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Applies,
    /// Another namespace, or the selector does not match.
    OtherWorkload,
    /// Attached with `targetRef`/`targetRefs`: not applied by a sidecar.
    TargetRef,
}

/// Istio `label.IoK8sNetworkingGatewayGatewayName`: the workload is this Gateway API gateway.
const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// Istio `gvk.KubernetesGateway`.
const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

pub(crate) fn scope(policy: &AuthorizationPolicy, config: &EngineConfig) -> Scope {
    let ns = policy.metadata.namespace.as_str();
    if ns != config.root_namespace && ns != config.workload.namespace {
        return Scope::OtherWorkload;
    }
    // Istio `GetTargetRefs`: `targetRefs`, else the legacy single `targetRef`.
    let target_refs = if policy.spec.target_refs.is_empty() {
        policy.spec.target_ref.as_slice()
    } else {
        policy.spec.target_refs.as_slice()
    };
    if !target_refs.is_empty() {
        let Some(gateway) = config.workload.labels.get(GATEWAY_NAME_LABEL) else {
            return Scope::TargetRef;
        };
        let attached = ns == config.workload.namespace
            && target_refs
                .iter()
                .any(|r| names_gateway(r, gateway, &config.workload.namespace));
        return if attached {
            Scope::Applies
        } else {
            Scope::OtherWorkload
        };
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

/// Istio `ShouldAttachPolicy`, Gateway API case: the reference is the `Gateway` of that name,
/// in the gateway's namespace (a reference to another namespace never matches).
fn names_gateway(r: &PolicyTargetReference, gateway: &str, namespace: &str) -> bool {
    r.group == GATEWAY_API_GROUP
        && r.kind == "Gateway"
        && r.name == gateway
        && (r.namespace.is_empty() || r.namespace == namespace)
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
