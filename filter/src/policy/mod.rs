//! The Istio `AuthorizationPolicy` API as users write it, and Istio's admission validation.
//!
//! - [`model`]: the serde mirror of the YAML/JSON.
//! - [`validate`] / [`parse_policies`]: Istio's admission rules; every error names the policy,
//!   the field path and the value.
//! - [`ConditionKey`]: the `when` keys, shared with the engine.
//! - [`json`]: the JSON reader the plugin configuration and its policies are read with.

mod condition_key;
mod error;
pub mod json;
mod load;
pub mod model;
mod validate;

pub use condition_key::{
    parse_ip_block, parse_port, validate_ip_block, validate_service_account, ConditionKey,
    ConditionKeyError, ConditionValueError, ConditionValueKind, MAX_SERVICE_ACCOUNT_LEN,
};
pub use error::{Problem, ValidationError};
pub use load::PolicyReader;
pub use load::{parse_policies, parse_policies_json};
pub use model::*;
pub use validate::{parse_bool, validate, warnings};

impl AuthorizationPolicy {
    /// Whether the `istio.io/dry-run` annotation makes this policy report-only.
    ///
    /// Istio's authorization builder reads the annotation with Go's `strconv.ParseBool` and,
    /// on a value it cannot parse, logs an error and enforces the policy. [`validate`] rejects
    /// such values up front (as Istio's admission webhook did), so this only ever sees a
    /// parsable value on validated policies; an unparsable one still means "enforce".
    pub fn is_dry_run(&self) -> bool {
        self.metadata
            .annotations
            .get(DRY_RUN_ANNOTATION)
            .and_then(|v| parse_bool(v))
            .unwrap_or(false)
    }
}
