//! Public types of the engine: what the glue builds per request and reads back.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use crate::normalize::{PathNormalization, PathScratch};
use crate::policy::AuthorizationPolicy;

/// The workload this filter instance guards (Istio node metadata `NAMESPACE` / `LABELS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

/// Configure-time facts the engine compiles against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Policies in this namespace apply mesh-wide (Istio `rootNamespace`, default `istio-system`).
    pub root_namespace: String,
    /// The local trust domain (default `cluster.local`).
    pub trust_domain: String,
    /// Other trust domains treated as equal to the local one (Istio `trustDomainAliases`).
    pub trust_domain_aliases: Vec<String>,
    pub workload: Workload,
    pub path_normalization: PathNormalization,
}

/// Per-request facts, borrowed from host buffers. Built by the glue, read by the engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// `<trust-domain>/ns/<ns>/sa/<sa>` (no `spiffe://`) of a verified peer; `None` when the
    /// peer is unauthenticated.
    pub principal: Option<&'a str>,
    /// The direct downstream peer address (`ipBlocks`, `source.ip`). `None` = unknown,
    /// fail closed: the host could not tell (e.g. an HTTP filter whose `source.address` was
    /// derived from `x-forwarded-for` does not see the socket peer). Then every field on it
    /// (values and notValues alike) counts as matched in DENY and AUDIT rules and as not
    /// matched in ALLOW rules, dry-run rules by their own action.
    pub direct_remote_ip: Option<IpAddr>,
    /// The original client address derived from `X-Forwarded-For` (`remoteIpBlocks`,
    /// `remote.ip`). `None` = unknown, fail closed (as for `direct_remote_ip`).
    pub remote_ip: Option<IpAddr>,
    /// The local address the connection arrived on (`destination.ip`). `None` = unknown,
    /// fail closed (as for `direct_remote_ip`).
    pub destination_ip: Option<IpAddr>,
    /// The local port (`ports`, `destination.port`). `None` = unknown, fail closed (as for
    /// `direct_remote_ip`).
    pub destination_port: Option<u16>,
    /// TLS SNI (`connection.sni`).
    pub sni: Option<&'a str>,
    /// `None` for a TCP connection: HTTP attributes do not exist there.
    pub http: Option<HttpRequest<'a>>,
    /// Result of request (JWT) authentication; `None` when there was none.
    pub request_auth: Option<RequestAuth<'a>>,
    /// The dynamic metadata values `experimental.envoy.filters.<filter>[<key>]` conditions
    /// read ([`Needs::filter_metadata`]). A pair missing here is unknown (the host could not
    /// tell) and fails closed like an unknown address: a field on it counts as matched in
    /// DENY and AUDIT rules and as not matched in ALLOW rules.
    pub filter_metadata: &'a [FilterMetadata<'a>],
}

/// One value of Envoy dynamic metadata: `filter_metadata[filter].fields[key]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterMetadata<'a> {
    /// The metadata namespace, e.g. `envoy.filters.network.mysql_proxy`.
    pub filter: &'a str,
    pub key: &'a str,
    pub value: MetadataValue<'a>,
}

/// A `google.protobuf.Value` as far as Istio's generated matchers can see it: they only ever
/// compare strings, and list elements that are strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataValue<'a> {
    /// No such namespace or key. Envoy's matcher then sees an unset value, which no string
    /// or list matcher matches (so only `notValues` can hold).
    Absent,
    String(&'a str),
    /// A list, by its string elements: other elements can never match a string matcher, so
    /// leaving them out changes no outcome.
    List(&'a [&'a str]),
    /// A number, bool, null or struct: no matcher Istio generates matches it.
    Other,
}

/// A dynamic metadata value some compiled policy reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetadataKey {
    /// The metadata namespace (Istio's filter name, without `experimental.`).
    pub filter: String,
    pub key: String,
}

/// HTTP facts of one request.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `:method`, as sent (methods match case-sensitively).
    pub method: &'a str,
    /// `:path` as received (may include `?query`); the engine normalizes it per
    /// [`EngineConfig::path_normalization`] and matches it without the query or `#fragment`
    /// (Istio's Envoy strips it). A path Envoy would reject (not starting with `/`, an
    /// escaped NUL) is denied: [`Reason::InvalidPath`].
    pub path: &'a str,
    /// `:authority` (host, maybe with port).
    pub host: &'a str,
    /// All request headers, names lower-case, repeated headers as repeated entries (matched
    /// as patched Envoy does: a `request.headers[..]` value matches when any one value
    /// matches on its own, never the comma-joined string; CVE-2026-26308). Pseudo-headers
    /// may be left out:
    /// `request.headers[:method]`, `[:path]`, `[:authority]` fall back to the fields above.
    pub headers: &'a [(&'a str, &'a str)],
}

/// What request authentication established (Istio `request.auth.*`).
#[derive(Debug, Clone, Copy)]
pub struct RequestAuth<'a> {
    /// `<iss>/<sub>`.
    pub principal: &'a str,
    pub audiences: &'a [&'a str],
    pub presenter: Option<&'a str>,
    /// The JWT payload (a JSON object), for `request.auth.claims[..]`; its `iss` and `sub`
    /// also decide `requestPrincipals` (else `principal` is split at its last `/`).
    pub claims: Option<&'a serde_json::Value>,
}

/// Which request facts any compiled policy reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    pub principal: bool,
    pub direct_remote_ip: bool,
    pub remote_ip: bool,
    pub destination_ip: bool,
    pub destination_port: bool,
    pub sni: bool,
    pub headers: bool,
    pub request_auth: bool,
    /// `experimental.envoy.filters.*` values, sorted, each once.
    pub filter_metadata: Vec<MetadataKey>,
}

/// The outcome of [`Engine::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Why: which policy and rule decided, or the default that applied.
    pub reason: Reason,
    /// What the dry-run DENY and ALLOW rules Envoy evaluated decide together: a dry-run DENY
    /// match, else the dry-run ALLOW result, else allow when no dry-run ALLOW policy applies.
    /// `None` when no dry-run DENY or ALLOW policy applies, and when Envoy never reached the
    /// dry-run ALLOW rules (an enforced DENY denied first) and no dry-run DENY matched:
    /// then there is no dry-run verdict to report. [`Decision::shadow`] has each filter's.
    pub dry_run: Option<DryRunOutcome>,
    /// AUDIT policies that matched (reported, never enforced).
    pub audit: Option<PolicyRef>,
    /// Each Envoy RBAC filter's shadow (dry-run) result, as Envoy reports them.
    pub shadow: ShadowResults,
}

/// The shadow engines Envoy ran for one request, one per RBAC filter Istio configured with
/// shadow rules (`builder.go` puts a policy annotated `istio.io/dry-run` into its action's
/// `shadow_rules`). Envoy's RBAC filter evaluates its shadow rules before its enforced ones
/// (`rbac_filter.cc`), and the filters run AUDIT, DENY, ALLOW: so the dry-run AUDIT and DENY
/// rules always run, the dry-run ALLOW rules only when the enforced DENY let the request
/// through. Each result is what Envoy writes as `shadow_engine_result` (+
/// `shadow_effective_policy_id`) and counts as `shadow_allowed` / `shadow_denied`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowResults {
    /// The AUDIT filter (action LOG): always allowed, naming the first dry-run AUDIT rule
    /// that matched; it is not an audit (Envoy sets no `access_log_hint` in shadow mode).
    pub audit: Option<ShadowResult>,
    /// The DENY filter: denied by the first matching dry-run DENY rule, else allowed.
    pub deny: Option<ShadowResult>,
    /// The ALLOW filter: allowed by the first matching dry-run ALLOW rule, else denied.
    pub allow: Option<ShadowResult>,
}

/// One shadow engine's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowResult {
    pub verdict: Verdict,
    /// The effective policy (the matching rule), if any rule matched.
    pub policy: Option<PolicyRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
}

/// A policy and rule index, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRef {
    /// `namespace/name`.
    pub policy: PolicyName,
    /// Index in the policy's `spec.rules`.
    pub rule: usize,
}

/// A policy's `namespace/name`, shared with the engine so that a decision naming it never
/// allocates. Reads like a `String`: `as_str()`, `Deref<Target = str>`, `Display`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyName(Arc<str>);

impl PolicyName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for PolicyName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PolicyName {
    fn from(s: &str) -> Self {
        PolicyName(Arc::from(s))
    }
}

impl From<String> for PolicyName {
    fn from(s: String) -> Self {
        PolicyName(Arc::from(s))
    }
}

impl PartialEq<str> for PolicyName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for PolicyName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A DENY policy matched.
    DeniedBy(PolicyRef),
    /// ALLOW policies apply to the workload and none matched.
    NoAllowPolicyMatched,
    /// An ALLOW policy matched.
    AllowedBy(PolicyRef),
    /// No ALLOW policy applies to the workload, no DENY matched.
    NoAllowPolicies,
    /// The request path cannot be normalized (Envoy rejects such a request before any
    /// authorization): denied without evaluating policies, so it cannot slip past a DENY.
    InvalidPath,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunOutcome {
    pub verdict: Verdict,
    pub reason: Reason,
}

/// A configure-time warning (e.g. a policy mixing HTTP-only fields used on TCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub String);

/// Compiled policies for one workload.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    pub(crate) compiled: super::compile::Compiled,
}

impl Engine {
    /// Compiles the policies that apply to `config.workload` into indexed rule sets.
    /// Policies are expected to be validated (`policy::validate`); anything the engine still
    /// cannot honour (an unknown or unsupported condition key, a value that
    /// does not parse) is an error naming the policy, field and value: the caller must not
    /// run with a partial policy set.
    pub fn compile(
        policies: &[AuthorizationPolicy],
        config: &EngineConfig,
    ) -> Result<(Engine, Vec<Warning>), Vec<crate::policy::ValidationError>> {
        let (compiled, warnings) = super::compile::compile(policies, config)?;
        Ok((Engine { compiled }, warnings))
    }

    /// Which request facts the compiled policies read.
    pub fn needs(&self) -> Needs {
        self.compiled.needs.clone()
    }

    /// Decides one request or connection (`request.http == None`). Does not allocate: a path
    /// normalization rewrites goes into a per-thread buffer that is reused (it only grows to
    /// the longest such path seen).
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        super::decide::decide(&self.compiled, request)
    }

    /// [`Engine::decide`] with a caller-owned buffer for rewritten paths.
    pub fn decide_with(&self, request: &Request<'_>, scratch: &mut PathScratch) -> Decision {
        super::decide::decide_with(&self.compiled, request, scratch)
    }
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}
