//! The one error type of policy loading and validation.

use std::fmt;

use super::condition_key::{ConditionKeyError, ConditionValueError};

/// One reason a policy is rejected at configure time, or (from [`super::warnings`]) one value
/// Istio admits that cannot do what it says.
///
/// Display is one line: `ns-a/allow-get: spec.rules[0].to[0].operation.ports[1]: "80a": bad
/// port: must be a decimal number in [0, 65535]` (policy, field path, quoted value when there
/// is one, the broken rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// `namespace/name`, or `items[N]` for a list item without a name.
    pub policy: String,
    /// Field path, e.g. `spec.rules[0].to[0].operation.paths[1]`; empty for the whole object.
    pub field: String,
    /// The offending value as written, when one value is at fault.
    pub value: Option<String>,
    pub problem: Problem,
}

impl ValidationError {
    pub fn new(policy: impl Into<String>, field: impl Into<String>, problem: Problem) -> Self {
        ValidationError {
            policy: policy.into(),
            field: field.into(),
            value: None,
            problem,
        }
    }

    pub fn with_value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and serde messages can carry user text: control characters are escaped so
        // the message stays one line.
        write_one_line(f, &self.policy)?;
        if !self.field.is_empty() {
            f.write_str(": ")?;
            write_one_line(f, &self.field)?;
        }
        if let Some(value) = &self.value {
            write!(f, ": {value:?}")?;
        }
        f.write_str(": ")?;
        write_one_line(f, &self.problem.to_string())
    }
}

fn write_one_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            fmt::Write::write_char(f, c)?;
        }
    }
    Ok(())
}

/// The rule a [`ValidationError`] breaks. Messages are lower-case and one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The JSON/YAML does not fit the API (unknown field, wrong type); serde's message.
    #[error("{0}")]
    Malformed(String),
    #[error("apiVersion must be security.istio.io/v1 or security.istio.io/v1beta1")]
    ApiVersion,
    #[error("kind must be AuthorizationPolicy")]
    Kind,
    #[error("is required")]
    Required,
    #[error("must be a Kubernetes object name (lower-case RFC 1123 subdomain)")]
    ObjectName,
    #[error("must be a Kubernetes namespace name (lower-case RFC 1123 label)")]
    NamespaceName,
    #[error("duplicate policy (also {0})")]
    Duplicate(String),
    #[error(
        "CUSTOM action without rules is meaningless as it will never be triggered; add an \
         empty rule {{}} to match every request"
    )]
    CustomWithoutRules,
    #[error("is not supported with action CUSTOM")]
    NotWithCustom,
    /// Istio hands what a CUSTOM policy matches to an ext_authz provider; this filter has none.
    /// Denying what the rules match (Istio's answer when the provider is missing) would, inside
    /// a mesh, deny requests Istio's own ext_authz filter lets through, and ignoring the policy
    /// would let a standalone Envoy skip the check: the configuration is refused instead.
    #[error(
        "CUSTOM (ext_authz) is not supported: spiffe-authz has no ext_authz provider; leave \
         CUSTOM policies to Envoy's ext_authz filter (Istio's own, in a mesh) and remove them \
         from this configuration"
    )]
    CustomUnsupported,
    #[error("provider must only be set with action CUSTOM, found {0}")]
    ProviderWithoutCustom(String),
    #[error(
        "DENY action without rules is meaningless as it will never be triggered; \
         add an empty rule {{}} to match every request"
    )]
    DenyWithoutRules,
    #[error("value of istio.io/dry-run must be a boolean (true, false, 1, 0, t, f)")]
    DryRunValue,
    #[error("istio.io/dry-run is only supported with action ALLOW or DENY, found {0}")]
    DryRunAction(String),
    #[error("annotation found: Istio's validation always rejects it")]
    AlwaysRejectAnnotation,
    #[error("internal Istio annotation: it may not be set by users")]
    InternalAnnotation,
    #[error("only one of selector, targetRef or targetRefs can be set")]
    SelectorConflict,
    #[error("empty label key is not supported in selector")]
    EmptyLabelKey,
    #[error("wildcard is not supported in selector")]
    SelectorWildcard,
    #[error(
        "workload selector specified without labels: it selects every workload of the namespace"
    )]
    SelectorWithoutLabels,
    #[error("label value must be at most 63 characters")]
    LabelValueTooLong,
    #[error("cross namespace referencing is not supported")]
    TargetRefNamespace,
    #[error(
        "targetRef must be to a Service, ServiceEntry (networking.istio.io), Gateway or \
         GatewayClass (gateway.networking.k8s.io)"
    )]
    TargetRefKind,
    #[error("must set at least one field")]
    EmptyObject,
    #[error("may have at most {0} items")]
    TooManyItems(usize),
    #[error("may have at most {0} characters")]
    TooLong(usize),
    #[error("cannot set serviceAccounts with namespaces or principals")]
    ServiceAccountsWithPrincipals,
    #[error("empty value not allowed")]
    EmptyValue,
    #[error(
        "'*' is a wildcard only as the whole value, a prefix or a suffix: Istio matches this \
         value literally or as a prefix/suffix containing '*'"
    )]
    WildcardPlacement,
    #[error("wildcard not allowed")]
    WildcardNotAllowed,
    #[error(
        "Istio prefixes principals with spiffe:// itself, so this value never matches (in \
         notPrincipals / notValues it never excludes); write it without spiffe://"
    )]
    SpiffePrefix,
    #[error("{0}")]
    BadValue(ConditionValueError),
    #[error("invalid or unsupported path template: {0}")]
    PathTemplate(&'static str),
    #[error("{0}")]
    BadConditionKey(ConditionKeyError),
    #[error("at least one of values or notValues must be set")]
    ConditionWithoutValues,
    /// For rules other layers add (e.g. the engine), in the same one-line style.
    #[error("{0}")]
    Other(String),
}
