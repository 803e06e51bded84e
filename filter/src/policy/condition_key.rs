//! Istio's `when` condition keys, parsed once so validation and the engine agree.
//!
//! The accepted keys and their value rules are those of Istio's
//! `pkg/config/security/security.go` (`ValidateAttribute`), with the key syntax of the
//! authorization builder (`pilot/pkg/security/authz/model`): `request.headers[<name>]`,
//! `request.auth.claims[<a>][<b>]...`, `experimental.envoy.filters.<filter>[<key>]`.
//! Reference: <https://istio.io/latest/docs/reference/config/security/conditions/>.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// One `spec.rules[].when[].key`, classified.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConditionKey {
    /// `request.headers[<name>]`; `name` as written (header names compare case-insensitively).
    RequestHeader(String),
    /// `source.ip`: the direct downstream peer address (single IP or CIDR values).
    SourceIp,
    /// `remote.ip`: the original client address from `X-Forwarded-For` / proxy protocol.
    RemoteIp,
    /// `source.namespace`: from the peer certificate.
    SourceNamespace,
    /// `source.serviceAccount`: `<namespace>/<name>` or `<name>`, from the peer certificate.
    SourceServiceAccount,
    /// `source.principal`: `<trust-domain>/ns/<ns>/sa/<sa>`.
    SourcePrincipal,
    /// `request.auth.principal`: `<iss>/<sub>` of the request JWT.
    RequestAuthPrincipal,
    /// `request.auth.audiences`.
    RequestAuthAudiences,
    /// `request.auth.presenter`: the `azp` claim.
    RequestAuthPresenter,
    /// `request.auth.claims[<a>][<b>]...`: the path of nested claim names (at least one).
    RequestAuthClaims(Vec<String>),
    /// `destination.ip`.
    DestinationIp,
    /// `destination.port`.
    DestinationPort,
    /// `connection.sni`.
    ConnectionSni,
    /// `experimental.envoy.filters.<filter>[<key>]`: dynamic metadata another filter wrote,
    /// e.g. `experimental.envoy.filters.network.mysql_proxy[db.table]` gives
    /// `filter: "envoy.filters.network.mysql_proxy"`, `key: "db.table"`. Istio's
    /// `envoyFilterGenerator` cuts at the first `[` and drops the final `]`, so `key` is one
    /// metadata key, never a path: `...a[b][c]` reads the key `b][c`.
    ExperimentalEnvoyFilter { filter: String, key: String },
}

/// Why a condition key is not accepted. The key itself is reported beside the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionKeyError {
    #[error("key must not be empty")]
    Empty,
    #[error("bad key: should have format a[b]")]
    BadBrackets,
    #[error("destination.namespace is replaced by the policy's metadata.namespace")]
    ReplacedByNamespace,
    #[error("destination.labels is replaced by the workload selector")]
    ReplacedBySelector,
    #[error("deprecated attribute: only supported in v1alpha1")]
    Deprecated,
    /// Admitted by Istio (its experimental inline-header matcher) but not implemented here.
    /// Rejecting it would fail every request of a mesh that runs it, so it is left out the
    /// way Istio leaves out what it cannot translate: fail closed.
    #[error(
        "spiffe-authz does not implement Istio's inline-header matcher: an ALLOW rule using \
         it never matches, in a DENY, AUDIT or CUSTOM rule the condition is ignored"
    )]
    Unsupported,
    /// Admitted by Istio's validation, which only checks the `a[b]` shape, but its
    /// authorization builder cannot read the name in it (`request.headersX[a]`): Istio's
    /// `checkError` then drops the whole rule of an ALLOW policy and only this condition of a
    /// DENY or AUDIT policy.
    #[error(
        "Istio admits this key but cannot translate it: an ALLOW rule using it never \
         matches, in a DENY, AUDIT or CUSTOM rule the condition is ignored"
    )]
    Untranslatable,
    #[error("unknown attribute")]
    Unknown,
}

impl ConditionKeyError {
    /// Keys Istio admits that the engine leaves out as Istio's `checkError` does: the ALLOW
    /// rule using one is dropped, in any other rule the condition is ignored. Validation
    /// admits them with a warning.
    pub fn drops_condition(&self) -> bool {
        matches!(
            self,
            ConditionKeyError::Untranslatable | ConditionKeyError::Unsupported
        )
    }
}

/// Why one condition value is not accepted for its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionValueError {
    #[error("empty value not allowed")]
    Empty,
    /// Carries the value for callers of [`ConditionKey::validate_value`]; the message leaves
    /// it out because errors quote the value already.
    #[error("bad IP address")]
    BadIp(String),
    #[error("bad CIDR range")]
    BadCidr(String),
    #[error("bad port: must be a decimal number in [0, 65535]")]
    BadPort,
    #[error("bad service account: {0}")]
    BadServiceAccount(String),
}

const REQUEST_HEADERS: &str = "request.headers";
const REQUEST_INLINE_HEADERS: &str = "request.experimental.inline.headers";
const REQUEST_CLAIMS: &str = "request.auth.claims";
const DESTINATION_LABELS: &str = "destination.labels";
const EXPERIMENTAL: &str = "experimental.";
const EXPERIMENTAL_ENVOY_FILTERS: &str = "experimental.envoy.filters.";

impl ConditionKey {
    /// Classifies a key the way Istio's admission validation and authorization builder do.
    pub fn parse(key: &str) -> Result<ConditionKey, ConditionKeyError> {
        // Same order as Istio's ValidateAttribute: prefix matches first, then exact keys.
        if key.is_empty() {
            return Err(ConditionKeyError::Empty);
        }
        if let Some(rest) = key.strip_prefix(REQUEST_HEADERS) {
            if !is_map_key(key) {
                return Err(ConditionKeyError::BadBrackets);
            }
            // Istio's requestHeaderGenerator: the name is everything between the first `[`
            // and the last `]`, brackets included (`request.headers[a][b]` names `a][b`).
            return name_in_brackets(rest)
                .map(|name| ConditionKey::RequestHeader(name.to_owned()))
                .ok_or(ConditionKeyError::Untranslatable);
        }
        if key.starts_with(REQUEST_INLINE_HEADERS) {
            if !is_map_key(key) {
                return Err(ConditionKeyError::BadBrackets);
            }
            return Err(ConditionKeyError::Unsupported);
        }
        if let Some(rest) = key.strip_prefix(REQUEST_CLAIMS) {
            if !is_map_key(key) {
                return Err(ConditionKeyError::BadBrackets);
            }
            return names_in_nested_brackets(rest)
                .map(ConditionKey::RequestAuthClaims)
                .ok_or(ConditionKeyError::Untranslatable);
        }
        if key.starts_with(EXPERIMENTAL_ENVOY_FILTERS) {
            if !is_map_key(key) {
                return Err(ConditionKeyError::BadBrackets);
            }
            // Istio's envoyFilterGenerator: drop `experimental.` and one final `]`, split at
            // the first `[`. An empty filter name (`experimental.envoy.filters.[c]`) is
            // admitted and names the filter `envoy.filters.`, which never writes metadata.
            let (filter, metadata_key) = key
                .strip_prefix(EXPERIMENTAL)
                .and_then(|k| k.strip_suffix(']'))
                .and_then(|k| k.split_once('['))
                .ok_or(ConditionKeyError::BadBrackets)?;
            return Ok(ConditionKey::ExperimentalEnvoyFilter {
                filter: filter.to_owned(),
                key: metadata_key.to_owned(),
            });
        }
        if key.starts_with(DESTINATION_LABELS) {
            return Err(ConditionKeyError::ReplacedBySelector);
        }
        match key {
            "source.ip" => Ok(ConditionKey::SourceIp),
            "remote.ip" => Ok(ConditionKey::RemoteIp),
            "source.namespace" => Ok(ConditionKey::SourceNamespace),
            "source.serviceAccount" => Ok(ConditionKey::SourceServiceAccount),
            "source.principal" => Ok(ConditionKey::SourcePrincipal),
            "request.auth.principal" => Ok(ConditionKey::RequestAuthPrincipal),
            "request.auth.audiences" => Ok(ConditionKey::RequestAuthAudiences),
            "request.auth.presenter" => Ok(ConditionKey::RequestAuthPresenter),
            "destination.ip" => Ok(ConditionKey::DestinationIp),
            "destination.port" => Ok(ConditionKey::DestinationPort),
            "connection.sni" => Ok(ConditionKey::ConnectionSni),
            "destination.namespace" => Err(ConditionKeyError::ReplacedByNamespace),
            "destination.name" | "destination.user" => Err(ConditionKeyError::Deprecated),
            _ => Err(ConditionKeyError::Unknown),
        }
    }

    /// Keys that only exist on HTTP requests. Istio's builder cannot express them for TCP:
    /// an ALLOW rule using one never matches TCP traffic, a DENY rule using one denies it.
    pub fn is_http_only(&self) -> bool {
        matches!(
            self,
            ConditionKey::RequestHeader(_)
                | ConditionKey::RequestAuthPrincipal
                | ConditionKey::RequestAuthAudiences
                | ConditionKey::RequestAuthPresenter
                | ConditionKey::RequestAuthClaims(_)
        )
    }

    /// How this key's values are matched.
    pub fn value_kind(&self) -> ConditionValueKind {
        match self {
            ConditionKey::SourceIp | ConditionKey::RemoteIp | ConditionKey::DestinationIp => {
                ConditionValueKind::IpBlock
            }
            ConditionKey::DestinationPort => ConditionValueKind::Port,
            ConditionKey::SourceServiceAccount => ConditionValueKind::ServiceAccount,
            _ => ConditionValueKind::StringMatch,
        }
    }

    /// Checks one `values`/`notValues` entry for this key (Istio's `ValidateAttribute`).
    pub fn validate_value(&self, value: &str) -> Result<(), ConditionValueError> {
        if value.is_empty() {
            return Err(ConditionValueError::Empty);
        }
        match self.value_kind() {
            ConditionValueKind::IpBlock => validate_ip_block(value),
            ConditionValueKind::Port => parse_port(value)
                .map(|_| ())
                .ok_or(ConditionValueError::BadPort),
            ConditionValueKind::ServiceAccount => validate_service_account(value),
            ConditionValueKind::StringMatch => Ok(()),
        }
    }
}

/// The value syntax of a condition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionValueKind {
    /// Single IP or CIDR (`10.1.2.3`, `10.1.0.0/16`), no wildcards.
    IpBlock,
    /// Decimal port in `[0, 65535]`.
    Port,
    /// `<namespace>/<name>` or `<name>`, no wildcards.
    ServiceAccount,
    /// Exact, `prefix*`, `*suffix` or `*` (presence).
    StringMatch,
}

impl fmt::Display for ConditionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionKey::RequestHeader(name) => write!(f, "{REQUEST_HEADERS}[{name}]"),
            ConditionKey::SourceIp => f.write_str("source.ip"),
            ConditionKey::RemoteIp => f.write_str("remote.ip"),
            ConditionKey::SourceNamespace => f.write_str("source.namespace"),
            ConditionKey::SourceServiceAccount => f.write_str("source.serviceAccount"),
            ConditionKey::SourcePrincipal => f.write_str("source.principal"),
            ConditionKey::RequestAuthPrincipal => f.write_str("request.auth.principal"),
            ConditionKey::RequestAuthAudiences => f.write_str("request.auth.audiences"),
            ConditionKey::RequestAuthPresenter => f.write_str("request.auth.presenter"),
            ConditionKey::RequestAuthClaims(path) => {
                f.write_str(REQUEST_CLAIMS)?;
                path.iter().try_for_each(|p| write!(f, "[{p}]"))
            }
            ConditionKey::DestinationIp => f.write_str("destination.ip"),
            ConditionKey::DestinationPort => f.write_str("destination.port"),
            ConditionKey::ConnectionSni => f.write_str("connection.sni"),
            ConditionKey::ExperimentalEnvoyFilter { filter, key } => {
                write!(f, "{EXPERIMENTAL}{filter}[{key}]")
            }
        }
    }
}

/// Istio's `validateMapKey`, all its admission validation checks of a bracketed key: it ends
/// with `]` and has a `[` (not first) with at least one character before that `]`.
fn is_map_key(key: &str) -> bool {
    key.ends_with(']')
        && key
            .find('[')
            .is_some_and(|open| open > 0 && open + 2 < key.len())
}

/// Istio's `extractNameInBrackets`: `[<name>]` -> `<name>`, whatever `<name>` holds.
fn name_in_brackets(rest: &str) -> Option<&str> {
    rest.strip_prefix('[')?.strip_suffix(']')
}

/// Istio's `extractNameInNestedBrackets`: `[a][b]` -> `a`, `b` (empty names kept); a form
/// that is not a run of bracketed names falls back to one name ([`name_in_brackets`]).
fn names_in_nested_brackets(rest: &str) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut remaining = rest;
    while !remaining.is_empty() {
        let close = remaining.strip_prefix('[').and_then(|r| {
            r.find(['[', ']'])
                .filter(|&at| r.as_bytes().get(at) == Some(&b']'))
        });
        match close {
            Some(at) => {
                names.push(remaining.get(1..=at)?.to_owned());
                remaining = remaining.get(at + 2..)?;
            }
            None => return name_in_brackets(rest).map(|name| vec![name.to_owned()]),
        }
    }
    Some(names)
}

/// Istio's `ValidateIPs`: a value containing `/` is a CIDR (Go `netip.ParsePrefix`), anything
/// else a single address (Go `netip.ParseAddr`). Like Go, host bits may be set
/// (`10.1.2.3/16`), a prefix takes no IPv6 zone, and a single IPv6 address may carry one
/// (`fe80::1%eth0`), which Istio's builder drops (`netip.PrefixFrom`): it matches `fe80::1`.
pub fn validate_ip_block(value: &str) -> Result<(), ConditionValueError> {
    parse_ip_block(value).map(|_| ())
}

/// Parses an `ipBlocks`/`source.ip`-style value into a network (a single IP is a /32 or /128).
pub fn parse_ip_block(value: &str) -> Result<ipnet::IpNet, ConditionValueError> {
    if value.is_empty() {
        return Err(ConditionValueError::Empty);
    }
    if let Some((addr, len)) = value.split_once('/') {
        let bad = || ConditionValueError::BadCidr(value.to_owned());
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        // Go's ParsePrefix takes a plain decimal length without sign or leading zeros.
        if len.is_empty()
            || !len.bytes().all(|b| b.is_ascii_digit())
            || (len.len() > 1 && len.starts_with('0'))
        {
            return Err(bad());
        }
        let len: u8 = len.parse().map_err(|_| bad())?;
        ipnet::IpNet::new(addr, len).map_err(|_| bad())
    } else {
        let bad = || ConditionValueError::BadIp(value.to_owned());
        let addr: IpAddr = match value.split_once('%') {
            // Go's ParseAddr: a zone only after an IPv6 address, and never empty.
            Some((addr, zone)) if !zone.is_empty() => {
                IpAddr::V6(addr.parse::<Ipv6Addr>().map_err(|_| bad())?)
            }
            Some(_) => return Err(bad()),
            None => value.parse().map_err(|_| bad())?,
        };
        Ok(ipnet::IpNet::from(addr))
    }
}

/// Istio's `ValidatePorts`: Go `strconv.ParseUint(port, 10, 32)` then `<= 65535`, so decimal
/// digits only (leading zeros allowed, no sign) and `0` is accepted.
pub fn parse_port(value: &str) -> Option<u16> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = value.trim_start_matches('0');
    if trimmed.len() > 5 {
        return None;
    }
    if trimmed.is_empty() {
        return Some(0);
    }
    trimmed.parse::<u16>().ok()
}

/// Longest service-account value Istio accepts (`CheckServiceAccount`, CRD `maxLength`).
pub const MAX_SERVICE_ACCOUNT_LEN: usize = 320;

/// Istio's `CheckServiceAccount` for one value: `<name>` or `<namespace>/<name>`, no `*`,
/// at most 320 characters.
pub fn validate_service_account(value: &str) -> Result<(), ConditionValueError> {
    let bad = |why: &str| Err(ConditionValueError::BadServiceAccount(why.to_owned()));
    if value.is_empty() {
        return Err(ConditionValueError::Empty);
    }
    if value.contains('*') {
        return bad("wildcard not allowed");
    }
    if value.matches('/').count() > 1 {
        return bad("expected format 'serviceAccount' or 'namespace/serviceAccount'");
    }
    if value.len() > MAX_SERVICE_ACCOUNT_LEN {
        return bad("value cannot exceed 320 characters");
    }
    match value.split_once('/') {
        Some(("", _)) => bad("expected format 'namespace/serviceAccount', found empty namespace"),
        Some((_, "")) => {
            bad("expected format 'namespace/serviceAccount', found empty serviceAccount")
        }
        _ => Ok(()),
    }
}
