//! Public types of the engine. PLACEHOLDER bodies: the engine work fills these in.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::normalize::PathNormalization;
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
    /// The direct downstream peer address (`ipBlocks`, `source.ip`).
    pub direct_remote_ip: Option<IpAddr>,
    /// The original client address derived from `X-Forwarded-For` (`remoteIpBlocks`,
    /// `remote.ip`).
    pub remote_ip: Option<IpAddr>,
    pub destination_ip: Option<IpAddr>,
    pub destination_port: Option<u16>,
    /// TLS SNI (`connection.sni`).
    pub sni: Option<&'a str>,
    /// `None` for a TCP connection: HTTP attributes do not exist there.
    pub http: Option<HttpRequest<'a>>,
    /// Result of request (JWT) authentication; `None` when there was none.
    pub request_auth: Option<RequestAuth<'a>>,
}

/// HTTP facts of one request.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `:method`, as sent (methods match case-sensitively).
    pub method: &'a str,
    /// `:path` as received (may include `?query` / `#fragment`); the engine normalizes it per
    /// [`EngineConfig::path_normalization`].
    pub path: &'a str,
    /// `:authority` (host, maybe with port).
    pub host: &'a str,
    /// All request headers, names lower-case, repeated headers as repeated entries.
    pub headers: &'a [(&'a str, &'a str)],
}

/// What request authentication established (Istio `request.auth.*`).
#[derive(Debug, Clone, Copy)]
pub struct RequestAuth<'a> {
    /// `<iss>/<sub>`.
    pub principal: &'a str,
    pub audiences: &'a [&'a str],
    pub presenter: Option<&'a str>,
    /// The JWT payload (a JSON object), for `request.auth.claims[..]`.
    pub claims: Option<&'a serde_json::Value>,
}

/// Which request facts any compiled policy reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub principal: bool,
    pub direct_remote_ip: bool,
    pub remote_ip: bool,
    pub destination_ip: bool,
    pub destination_port: bool,
    pub sni: bool,
    pub headers: bool,
    pub request_auth: bool,
}

/// The outcome of [`Engine::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Why: which policy and rule decided, or the default that applied.
    pub reason: Reason,
    /// What enforcing the dry-run policies would have decided, when any apply.
    pub dry_run: Option<DryRunOutcome>,
    /// AUDIT policies that matched (reported, never enforced).
    pub audit: Option<PolicyRef>,
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
    pub policy: String,
    pub rule: usize,
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
pub struct Engine {}

impl Engine {
    pub fn compile(
        _policies: &[AuthorizationPolicy],
        _config: &EngineConfig,
    ) -> Result<(Engine, Vec<Warning>), Vec<crate::policy::ValidationError>> {
        Ok((Engine {}, Vec::new()))
    }

    pub fn needs(&self) -> Needs {
        Needs::default()
    }

    /// PLACEHOLDER: fails closed until the engine lands.
    pub fn decide(&self, _request: &Request<'_>) -> Decision {
        Decision {
            verdict: Verdict::Deny,
            reason: Reason::NoAllowPolicyMatched,
            dry_run: None,
            audit: None,
        }
    }
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

impl fmt::Display for Decision {
    /// One line a user can read: `deny: ns-a/deny-admin rule 0` etc.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:?}", self.verdict, self.reason)
    }
}
