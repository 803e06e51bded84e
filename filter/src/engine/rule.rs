//! One compiled rule: `from` entries OR'ed, `to` entries OR'ed, each entry's fields (and the
//! rule's `when` conditions, which Istio copies into every entry) AND'ed.
//!
//! Istio `model.New` (`pilot/pkg/security/authz/model/model.go`) puts the `when` conditions
//! into a base principal / base permission and copies it into every `from` / `to` entry;
//! `Generate` then emits an Envoy policy whose principals and permissions are each OR'ed.
//! istio.io reference, Rule: "a match occurs when at least one source, one operation and all
//! conditions matches the request".

use std::net::IpAddr;

use super::api::{FilterMetadata, RequestAuth};
use super::glob::Glob;
use super::ip::Cidr;
use super::metadata::MetadataMatch;
use super::operation::PathMatch;
use super::principal::{trust_domain_of, uri_glob_matches, NamespaceMatch};
use super::string_match::{HeaderValues, StringMatch};

/// `values` / `notValues` of one field: Istio emits `Or(values)` and `Not(Or(notValues))`,
/// AND'ed; an empty side emits nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field<M> {
    pub(crate) any_of: Vec<M>,
    pub(crate) none_of: Vec<M>,
}

impl<M> Field<M> {
    pub(crate) fn is_empty(&self) -> bool {
        self.any_of.is_empty() && self.none_of.is_empty()
    }

    #[inline]
    fn eval(&self, mut pred: impl FnMut(&M) -> bool) -> bool {
        (self.any_of.is_empty() || self.any_of.iter().any(&mut pred))
            && !self.none_of.iter().any(pred)
    }
}

/// A `requestPrincipals` / `request.auth.principal` value, split the way Istio's extended
/// generator does: at the last `/` into issuer and subject, each matched against the JWT's
/// `iss` and `sub` claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestPrincipalMatch {
    pub(crate) iss: StringMatch,
    pub(crate) sub: StringMatch,
}

impl RequestPrincipalMatch {
    /// Istio `requestPrincipalGenerator.extendedPrincipal` for one value.
    pub(crate) fn parse(value: &str) -> RequestPrincipalMatch {
        let split = value.rfind('/');
        let (iss, sub) = match split {
            Some(at) => (
                value.get(..at).unwrap_or_default(),
                value.get(at + 1..).unwrap_or_default(),
            ),
            None => (value, ""),
        };
        let any = || StringMatch::NonEmpty;
        let (iss_m, sub_m) = if value == "*" {
            (any(), any())
        } else if let Some(rest) = value.strip_prefix('*') {
            match split {
                Some(_) if iss == "*" => (any(), StringMatch::Exact(sub.into())),
                Some(_) => (
                    StringMatch::Suffix(iss.strip_prefix('*').unwrap_or(iss).into()),
                    StringMatch::Exact(sub.into()),
                ),
                None => (any(), StringMatch::Suffix(rest.into())),
            }
        } else if let Some(rest) = value.strip_suffix('*') {
            match split {
                Some(_) if sub == "*" => (StringMatch::Exact(iss.into()), any()),
                Some(_) => (
                    StringMatch::Exact(iss.into()),
                    StringMatch::Prefix(sub.strip_suffix('*').unwrap_or(sub).into()),
                ),
                None => (StringMatch::Prefix(rest.into()), any()),
            }
        } else {
            (
                StringMatch::Exact(iss.into()),
                StringMatch::Exact(sub.into()),
            )
        };
        RequestPrincipalMatch {
            iss: iss_m,
            sub: sub_m,
        }
    }

    fn matches(&self, auth: &RequestAuth<'_>) -> bool {
        let (iss, sub) = issuer_and_subject(auth);
        self.iss.matches(iss) && self.sub.matches(sub)
    }
}

/// `iss` and `sub` from the JWT payload when the glue passed it, else from
/// `request.auth.principal` (`<iss>/<sub>`, split at the last `/` like Istio).
fn issuer_and_subject<'a>(auth: &RequestAuth<'a>) -> (Option<&'a str>, Option<&'a str>) {
    if let Some(claims) = auth.claims {
        let iss = claims.get("iss").and_then(|v| v.as_str());
        let sub = claims.get("sub").and_then(|v| v.as_str());
        if iss.is_some() || sub.is_some() {
            return (iss, sub);
        }
    }
    match auth.principal.rfind('/') {
        Some(at) => (auth.principal.get(..at), auth.principal.get(at + 1..)),
        None => (Some(auth.principal), None),
    }
}

/// One field of a source, operation or condition, bound to the fact it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Constraint {
    /// `principals`, `source.principal` (after trust-domain aliasing).
    Principal(Field<StringMatch>),
    /// `namespaces`, `source.namespace`.
    Namespace(Field<NamespaceMatch>),
    /// `serviceAccounts`, `source.serviceAccount`: any of the value's patterns.
    ServiceAccount(Field<Vec<Glob>>),
    /// `trustDomains`: the principal's trust domain.
    TrustDomain(Field<StringMatch>),
    /// `ipBlocks`, `source.ip`: Envoy `direct_remote_ip`.
    DirectRemoteIp(Field<Cidr>),
    /// `remoteIpBlocks`, `remote.ip`: Envoy `remote_ip`.
    RemoteIp(Field<Cidr>),
    DestinationIp(Field<Cidr>),
    /// `ports`, `destination.port`.
    DestinationPort(Field<u16>),
    /// `connection.sni`.
    Sni(Field<StringMatch>),
    /// `hosts`: `:authority`, ASCII case-insensitive, port included as sent.
    Host(Field<StringMatch>),
    /// `methods`: `:method`, case-sensitive.
    Method(Field<StringMatch>),
    Path(Field<PathMatch>),
    /// `request.headers[name]` (name lower-cased).
    Header {
        name: Box<str>,
        field: Field<StringMatch>,
    },
    /// `requestPrincipals`, `request.auth.principal`.
    RequestPrincipal(Field<RequestPrincipalMatch>),
    /// `request.auth.audiences`.
    Audience(Field<StringMatch>),
    /// `request.auth.presenter`.
    Presenter(Field<StringMatch>),
    /// `request.auth.claims[a][b]...`.
    Claim {
        path: Vec<Box<str>>,
        field: Field<StringMatch>,
    },
    /// `experimental.envoy.filters.<filter>[<key>]`: Envoy dynamic metadata.
    FilterMetadata {
        filter: Box<str>,
        key: Box<str>,
        field: Field<MetadataMatch>,
    },
}

/// The request facts constraints read, prepared once per decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    pub(crate) principal: Option<&'a str>,
    pub(crate) direct_remote_ip: Option<IpAddr>,
    pub(crate) remote_ip: Option<IpAddr>,
    pub(crate) destination_ip: Option<IpAddr>,
    pub(crate) destination_port: Option<u16>,
    pub(crate) sni: Option<&'a str>,
    pub(crate) http: Option<HttpFacts<'a>>,
    pub(crate) auth: Option<RequestAuth<'a>>,
    pub(crate) filter_metadata: &'a [FilterMetadata<'a>],
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpFacts<'a> {
    pub(crate) method: &'a str,
    /// Normalized, without query or fragment: what Envoy's path matchers compare.
    pub(crate) path: &'a str,
    /// `:path` as received; only `request.headers[:path]` reads it, for its query.
    pub(crate) raw_path: &'a str,
    pub(crate) host: &'a str,
    pub(crate) headers: &'a [(&'a str, &'a str)],
}

/// What a field reading an address, port or metadata value the host could not tell (`None`
/// in [`super::Request`], or a metadata pair missing from it) counts as. Istio widens DENY
/// and narrows ALLOW when it drops what a filter cannot evaluate (`builder.go`: HTTP-only
/// fields on TCP); an unknown fact gets the same treatment, so it can never slip a request
/// past a DENY or into an ALLOW.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnknownFact {
    /// DENY and AUDIT rules (enforced or dry-run): the whole field matches, values and
    /// notValues alike.
    Matches,
    /// ALLOW rules (enforced or dry-run): the whole field does not match.
    DoesNotMatch,
}

impl UnknownFact {
    #[inline]
    fn field<T: Copy, M>(
        self,
        fact: Option<T>,
        field: &Field<M>,
        hit: impl Fn(&M, T) -> bool,
    ) -> bool {
        match fact {
            Some(fact) => field.eval(|m| hit(m, fact)),
            None => self == UnknownFact::Matches,
        }
    }
}

impl Constraint {
    pub(crate) fn matches(&self, f: &Facts<'_>, unknown: UnknownFact) -> bool {
        match self {
            Constraint::Principal(field) => field.eval(|m| m.matches(f.principal)),
            Constraint::Namespace(field) => {
                field.eval(|m| f.principal.is_some_and(|p| m.matches(p)))
            }
            Constraint::ServiceAccount(field) => field.eval(|gs| {
                f.principal
                    .is_some_and(|p| gs.iter().any(|g| uri_glob_matches(g, p)))
            }),
            Constraint::TrustDomain(field) => {
                field.eval(|m| m.matches(f.principal.map(trust_domain_of)))
            }
            Constraint::DirectRemoteIp(field) => {
                unknown.field(f.direct_remote_ip, field, |c, ip| c.contains(ip))
            }
            Constraint::RemoteIp(field) => {
                unknown.field(f.remote_ip, field, |c, ip| c.contains(ip))
            }
            Constraint::DestinationIp(field) => {
                unknown.field(f.destination_ip, field, |c, ip| c.contains(ip))
            }
            Constraint::DestinationPort(field) => {
                unknown.field(f.destination_port, field, |p, port| *p == port)
            }
            Constraint::Sni(field) => field.eval(|m| m.matches(f.sni)),
            Constraint::Host(field) => {
                field.eval(|m| f.http.is_some_and(|h| m.matches_present(h.host, true)))
            }
            Constraint::Method(field) => {
                field.eval(|m| f.http.is_some_and(|h| m.matches_present(h.method, false)))
            }
            Constraint::Path(field) => field.eval(|m| f.http.is_some_and(|h| m.matches(h.path))),
            Constraint::Header { name, field } => {
                field.eval(|m| f.http.is_some_and(|h| header_matches(&h, name, m)))
            }
            Constraint::RequestPrincipal(field) => {
                field.eval(|m| f.auth.as_ref().is_some_and(|a| m.matches(a)))
            }
            Constraint::Audience(field) => field.eval(|m| {
                f.auth
                    .as_ref()
                    .is_some_and(|a| a.audiences.iter().any(|aud| m.matches_present(aud, false)))
            }),
            Constraint::Presenter(field) => {
                field.eval(|m| m.matches(f.auth.as_ref().and_then(|a| a.presenter)))
            }
            Constraint::Claim { path, field } => field.eval(|m| {
                f.auth
                    .as_ref()
                    .and_then(|a| a.claims)
                    .is_some_and(|claims| claim_matches(claims, path, m))
            }),
            Constraint::FilterMetadata { filter, key, field } => {
                let value = f
                    .filter_metadata
                    .iter()
                    .find(|m| m.filter == &**filter && m.key == &**key)
                    .map(|m| m.value);
                unknown.field(value, field, |m, v| m.matches(v))
            }
        }
    }

    /// Whether the constraint only exists on HTTP requests (Istio's generators return
    /// "is HTTP only" for these when building the TCP filter).
    pub(crate) fn is_http_only(&self) -> bool {
        matches!(
            self,
            Constraint::Host(_)
                | Constraint::Method(_)
                | Constraint::Path(_)
                | Constraint::Header { .. }
                | Constraint::RequestPrincipal(_)
                | Constraint::Audience(_)
                | Constraint::Presenter(_)
                | Constraint::Claim { .. }
        )
    }

    /// The Istio field name, for warnings.
    pub(crate) fn field_name(&self) -> &'static str {
        match self {
            Constraint::Principal(_) => "principals",
            Constraint::Namespace(_) => "namespaces",
            Constraint::ServiceAccount(_) => "serviceAccounts",
            Constraint::TrustDomain(_) => "trustDomains",
            Constraint::DirectRemoteIp(_) => "ipBlocks",
            Constraint::RemoteIp(_) => "remoteIpBlocks",
            Constraint::DestinationIp(_) => "destination.ip",
            Constraint::DestinationPort(_) => "ports",
            Constraint::Sni(_) => "connection.sni",
            Constraint::Host(_) => "hosts",
            Constraint::Method(_) => "methods",
            Constraint::Path(_) => "paths",
            Constraint::Header { .. } => "request.headers",
            Constraint::RequestPrincipal(_) => "requestPrincipals",
            Constraint::Audience(_) => "request.auth.audiences",
            Constraint::Presenter(_) => "request.auth.presenter",
            Constraint::Claim { .. } => "request.auth.claims",
            Constraint::FilterMetadata { .. } => "experimental.envoy.filters",
        }
    }
}

/// Envoy `HeaderMatcher` on `name`: any one value of a repeated header matching on its own
/// (CVE-2026-26308). Pseudo-headers the glue did not copy into `headers` come from the
/// request's own fields; `:path` is the header as the HCM left it for the RBAC filter
/// (normalized, query kept, fragment stripped), not as the client sent it.
fn header_matches(h: &HttpFacts<'_>, name: &str, m: &StringMatch) -> bool {
    let values = HeaderValues::new(h.headers, name);
    if !values.is_absent() {
        return m.matches_any_value(&values, false);
    }
    match name {
        ":method" => m.matches_present(h.method, false),
        ":path" => m.matches_split(h.path, query_of(h.raw_path)),
        ":authority" => m.matches_present(h.host, false),
        _ => false,
    }
}

/// The `?query` of a `:path` up to the `#fragment` the HCM strips; empty without a query.
/// Normalization rewrites only the part before the `?`, so this slice of the path as
/// received is also the query of the normalized `:path`: `path` followed by it is the `:path`
/// header Envoy's RBAC filter reads. Found only when a condition reads `:path`, not per request.
fn query_of(path: &str) -> &str {
    let end = path.bytes().position(|b| b == b'#').unwrap_or(path.len());
    let before_fragment = path.get(..end).unwrap_or(path);
    match before_fragment.bytes().position(|b| b == b'?') {
        Some(at) => before_fragment.get(at..).unwrap_or_default(),
        None => "",
    }
}

/// Envoy metadata matcher on the JWT payload at `path`: a string claim must match, a list
/// claim matches when one of its strings does (Istio `MetadataListValueMatcherForJWTClaims`).
fn claim_matches(claims: &serde_json::Value, path: &[Box<str>], m: &StringMatch) -> bool {
    let mut at = claims;
    for key in path {
        match at.get(&**key) {
            Some(next) => at = next,
            None => return false,
        }
    }
    match at {
        serde_json::Value::String(s) => m.matches_present(s, false),
        serde_json::Value::Array(items) => items
            .iter()
            .any(|v| v.as_str().is_some_and(|s| m.matches_present(s, false))),
        _ => false,
    }
}

/// One compiled rule of one policy.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    /// Index of the policy in the engine's policy names.
    pub(crate) policy: u32,
    /// Index of the rule in `spec.rules`.
    pub(crate) rule: usize,
    /// `from` entries, OR'ed; never empty (no `from` is one entry with the `when` part only).
    pub(crate) principals: Vec<Vec<Constraint>>,
    /// `to` entries, OR'ed; never empty.
    pub(crate) permissions: Vec<Vec<Constraint>>,
    /// From the rule's action: how fields on an unknown address count.
    pub(crate) unknown_fact: UnknownFact,
}

impl CompiledRule {
    pub(crate) fn matches(&self, f: &Facts<'_>) -> bool {
        let all = |cs: &Vec<Constraint>| cs.iter().all(|c| c.matches(f, self.unknown_fact));
        self.permissions.iter().any(all) && self.principals.iter().any(all)
    }

    pub(crate) fn constraints(&self) -> impl Iterator<Item = &Constraint> {
        self.principals
            .iter()
            .chain(self.permissions.iter())
            .flatten()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn request_principal_split_like_istio() {
        // Istio generator_test.go requestPrincipal cases.
        let m = RequestPrincipalMatch::parse("*");
        assert_eq!(
            (m.iss, m.sub),
            (StringMatch::NonEmpty, StringMatch::NonEmpty)
        );
        let m = RequestPrincipalMatch::parse("iss/sub");
        assert_eq!(
            (m.iss, m.sub),
            (
                StringMatch::Exact("iss".into()),
                StringMatch::Exact("sub".into())
            )
        );
        let m = RequestPrincipalMatch::parse("*/sub");
        assert_eq!(
            (m.iss, m.sub),
            (StringMatch::NonEmpty, StringMatch::Exact("sub".into()))
        );
        let m = RequestPrincipalMatch::parse("iss/*");
        assert_eq!(
            (m.iss, m.sub),
            (StringMatch::Exact("iss".into()), StringMatch::NonEmpty)
        );
        let m = RequestPrincipalMatch::parse("*sub");
        assert_eq!(
            (m.iss, m.sub),
            (StringMatch::NonEmpty, StringMatch::Suffix("sub".into()))
        );
        let m = RequestPrincipalMatch::parse("https://a.com/su*");
        assert_eq!(
            (m.iss, m.sub),
            (
                StringMatch::Exact("https://a.com".into()),
                StringMatch::Prefix("su".into())
            )
        );
        let m = RequestPrincipalMatch::parse("*.com/sub");
        assert_eq!(
            (m.iss, m.sub),
            (
                StringMatch::Suffix(".com".into()),
                StringMatch::Exact("sub".into())
            )
        );
    }
}
