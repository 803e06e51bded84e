//! The Istio `AuthorizationPolicy` API as users write it, and Istio's admission validation.

pub mod model;

pub use model::*;

/// PLACEHOLDER: the validation work replaces this with Istio's admission rules.
/// Display is one line: `ns-a/allow-get: spec.rules[0].to[0].operation.paths[1]: "*/a*": '*' may only be a prefix or a suffix`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{policy}: {field}: {message}")]
pub struct ValidationError {
    /// `namespace/name`.
    pub policy: String,
    /// Field path, e.g. `spec.rules[0].to[0].operation.paths[1]`.
    pub field: String,
    /// The offending value (quoted) and the broken rule.
    pub message: String,
}
