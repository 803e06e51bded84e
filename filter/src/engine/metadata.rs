//! `experimental.envoy.filters.<filter>[<key>]` conditions: Envoy dynamic metadata another
//! filter wrote, matched the way Istio's `envoyFilterGenerator.extendedPermission`
//! (`pilot/pkg/security/authz/model/generator.go`) configures Envoy's RBAC filter.
//!
//! Istio emits one permission `metadata { filter: <filter>, path: [{key: <key>}], value:
//! or_match [...] }` for all `values` (and one more inside `not_rule` for all `notValues`),
//! one value matcher per value: a value written `[v]` becomes `list_match.one_of` a
//! `StringMatcher(v)`, any other value a `string_match` `StringMatcher(value)` (exact,
//! `prefix*`, `*suffix`, `*` = `.+`). Envoy's value matchers only match their own kind
//! (`source/common/common/matchers.cc`): a string matcher never matches a number, bool, list
//! or missing value; a list matcher needs a list with one matching element. The condition
//! is not HTTP-only: Istio emits it for TCP too (a network filter's connection metadata).

use super::api::MetadataValue;
use super::string_match::StringMatch;

/// One `values` / `notValues` entry of an `experimental.envoy.filters.*` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetadataMatch {
    /// `string_match`: the value must be a string.
    String(StringMatch),
    /// `[v]`: `list_match.one_of`: the value must be a list with a matching string element.
    ListOneOf(StringMatch),
}

impl MetadataMatch {
    /// Istio: `strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]")` makes a list
    /// matcher on `strings.Trim(v, "[]")`, which strips every leading and trailing bracket.
    pub(crate) fn parse(value: &str) -> MetadataMatch {
        if value.starts_with('[') && value.ends_with(']') {
            let inner = value.trim_matches(|c| c == '[' || c == ']');
            MetadataMatch::ListOneOf(StringMatch::string_matcher(inner))
        } else {
            MetadataMatch::String(StringMatch::string_matcher(value))
        }
    }

    pub(crate) fn matches(&self, value: MetadataValue<'_>) -> bool {
        match (self, value) {
            (MetadataMatch::String(m), MetadataValue::String(s)) => m.matches_present(s, false),
            (MetadataMatch::ListOneOf(m), MetadataValue::List(items)) => {
                items.iter().any(|s| m.matches_present(s, false))
            }
            _ => false,
        }
    }
}
