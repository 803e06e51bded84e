//! Peer identity fields: `principals`, `namespaces`, `serviceAccounts`, `trustDomains` and
//! the `source.principal` / `source.namespace` / `source.serviceAccount` conditions, plus
//! Istio's trust-domain aliasing.
//!
//! All of them read one fact, the verified peer principal `<trust-domain>/ns/<ns>/sa/<sa>`
//! (the URI SAN without `spiffe://`). Sources: Istio `pilot/pkg/security/authz/model/
//! generator.go` (`srcPrincipalGenerator`, `srcNamespaceGenerator`,
//! `srcServiceAccountGenerator`) and `pilot/pkg/security/trustdomain/bundle.go`.

use super::glob::{Glob, GlobBuilder, Tok};
use super::string_match::StringMatch;

/// Istio's name for the local trust domain in policies (`constants.DefaultClusterLocalDomain`).
pub(crate) const CLUSTER_LOCAL: &str = "cluster.local";

const SPIFFE_PREFIX: &str = "spiffe://";

/// A `principals` / `source.principal` value: Istio `StringMatcherWithPrefix(v, "spiffe://")`
/// on the peer's URI SAN. `*` is the regex `.+` on the whole URI, which is never empty, so
/// it means "any authenticated peer".
pub(crate) fn principal_matcher(value: &str) -> StringMatch {
    if value == "*" {
        StringMatch::Present
    } else {
        StringMatch::string_matcher(value)
    }
}

/// A `namespaces` / `source.namespace` value: Istio's regex, plus the plain name when there
/// is one (the common case), which matches without running the regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamespaceMatch {
    glob: Glob,
    literal: Option<Box<str>>,
}

impl NamespaceMatch {
    pub(crate) fn new(value: &str) -> NamespaceMatch {
        let glob = namespace_matcher(value);
        let literal = namespace_literal(&glob).map(Box::from);
        NamespaceMatch { glob, literal }
    }

    pub(crate) fn literal(&self) -> Option<&str> {
        self.literal.as_deref()
    }

    pub(crate) fn matches(&self, principal: &str) -> bool {
        match &self.literal {
            // The regex's `.*` cannot cross a newline, so the `/ns/<name>/` lookup only
            // stands for it on a principal without one.
            Some(name) if !principal.contains('\n') => {
                let mut hit = false;
                namespace_candidates(principal, |c| hit |= c == &**name);
                hit
            }
            _ => uri_glob_matches(&self.glob, principal),
        }
    }
}

/// The regex `.*/ns/<v>/.*` on the URI SAN, `v` quoted with each `*` as `.*` (patched Istio
/// `srcNamespaceGenerator`, CVE-2026-39350).
pub(crate) fn namespace_matcher(value: &str) -> Glob {
    GlobBuilder::default()
        .run(0)
        .literal("/ns/")
        .quoted(value, true)
        .literal("/")
        .run(0)
        .build()
}

/// The namespace of a [`namespace_matcher`] built from a plain name (no `*`, `/` or
/// newline): then the regex matches exactly when `/ns/<name>/` occurs in the URI SAN, which
/// an index can look up (see [`namespace_candidates`]).
pub(crate) fn namespace_literal(glob: &Glob) -> Option<&str> {
    match glob.tokens() {
        [Tok::Run { min: 0 }, Tok::Lit(ns_prefix), Tok::Lit(name), Tok::Lit(slash), Tok::Run { min: 0 }]
            if &**ns_prefix == b"/ns/" && &**slash == b"/" =>
        {
            let name = std::str::from_utf8(name).ok()?;
            (!name.contains(['/', '\n', '*'])).then_some(name)
        }
        _ => None,
    }
}

/// Every `<name>` such that `/ns/<name>/` occurs in `spiffe://<principal>`, for the namespace
/// index. (`spiffe://` itself cannot contain `/ns/`, but its last `/` can start one.)
pub(crate) fn namespace_candidates(principal: &str, mut f: impl FnMut(&str)) {
    let mut take = |after: &str| {
        if let Some(name) = after
            .bytes()
            .position(|b| b == b'/')
            .and_then(|end| after.get(..end))
        {
            f(name);
        }
    };
    if let Some(rest) = principal.strip_prefix("ns/") {
        take(rest);
    }
    // Occurrences may overlap (`/ns/ns/foo/`), so every `/` is a candidate start. A byte
    // scan rather than `str::find("/ns/")`, whose substring searcher is set up anew on every
    // call; `/` is ASCII, so `at + 4` after a match is a char boundary.
    let bytes = principal.as_bytes();
    for (at, &b) in bytes.iter().enumerate() {
        if b == b'/' && bytes.get(at..at + 4) == Some(b"/ns/".as_slice()) {
            if let Some(rest) = principal.get(at + 4..) {
                take(rest);
            }
        }
    }
}

/// A `serviceAccounts` / `source.serviceAccount` value `<ns>/<sa>` or `<sa>` (namespace of
/// the policy): the regex `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?` (Istio
/// `serviceAccountRegex`, `<ns>` and `<sa>` quoted as patched Istio does, CVE-2026-39350),
/// with its two alternations expanded into four patterns.
pub(crate) fn service_account_matcher(value: &str, policy_namespace: &str) -> Vec<Glob> {
    let (ns, sa) = value.split_once('/').unwrap_or((policy_namespace, value));
    let mut out = Vec::with_capacity(4);
    for middle in [false, true] {
        for trailer in [false, true] {
            let mut b = GlobBuilder::default()
                .literal(SPIFFE_PREFIX)
                .run(1)
                .literal("/ns/")
                .quoted(ns, false)
                .literal("/");
            if middle {
                b = b.run(1).literal("/");
            }
            b = b.literal("sa/").quoted(sa, false);
            if trailer {
                b = b.literal("/").run(1);
            }
            out.push(b.build());
        }
    }
    out
}

/// Whether a namespace/service-account regex matches the peer's URI SAN.
pub(crate) fn uri_glob_matches(glob: &Glob, principal: &str) -> bool {
    glob.matches(SPIFFE_PREFIX, principal)
}

/// The trust domain of a principal: its text before the first `/`.
pub(crate) fn trust_domain_of(principal: &str) -> &str {
    principal.split('/').next().unwrap_or(principal)
}

/// The local trust domain and its aliases (Istio `trustdomain.Bundle`), local first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrustDomainBundle {
    domains: Vec<String>,
}

impl TrustDomainBundle {
    pub(crate) fn new(trust_domain: &str, aliases: &[String]) -> Self {
        let mut domains = vec![trust_domain.to_owned()];
        domains.extend(aliases.iter().cloned());
        TrustDomainBundle { domains }
    }

    /// Istio `ReplaceTrustDomainAliases`: a principal whose trust domain is the local one, an
    /// alias, or `cluster.local` stands for the same identity in every one of them.
    pub(crate) fn replace_aliases(&self, principals: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for principal in principals {
            let parts: Vec<&str> = principal.split('/').collect();
            // Not `<td>/ns/<ns>/sa/<sa>` or a `*` trust domain: the trust domain is not
            // enforced, keep the value as written.
            let Some(td) = parts.first().filter(|td| parts.len() == 5 && **td != "*") else {
                out.push(principal.clone());
                continue;
            };
            if self.domains.iter().any(|d| td_string_match(td, d)) || *td == CLUSTER_LOCAL {
                let mut expanded: Vec<String> = Vec::new();
                for d in &self.domains {
                    // A `*suffix` trust domain that covers this domain is kept as written.
                    let candidate = if suffix_match(d, td) {
                        principal.clone()
                    } else {
                        let rest = parts.get(1..).unwrap_or_default().join("/");
                        format!("{d}/{rest}")
                    };
                    if !expanded.contains(&candidate) {
                        expanded.push(candidate);
                    }
                }
                out.extend(expanded);
            } else {
                out.push(principal.clone());
            }
        }
        out
    }

    /// Istio `ExpandTrustDomainAliases` for `trustDomains` values: a value naming the local
    /// trust domain or an alias stands for all of them.
    pub(crate) fn expand_trust_domains(&self, values: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for v in values {
            let add: Vec<String> = if self.domains.contains(v) {
                self.domains.clone()
            } else {
                vec![v.clone()]
            };
            for a in add {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        out
    }
}

/// Istio trustdomain `stringMatch` for one pair: either side may be the pattern.
fn td_string_match(a: &str, s: &str) -> bool {
    a == s
        || s == "*"
        || prefix_match(a, s)
        || prefix_match(s, a)
        || suffix_match(a, s)
        || suffix_match(s, a)
}

fn prefix_match(a: &str, pattern: &str) -> bool {
    pattern.strip_suffix('*').is_some_and(|p| a.starts_with(p))
}

fn suffix_match(a: &str, pattern: &str) -> bool {
    pattern.strip_prefix('*').is_some_and(|p| a.ends_with(p))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn aliases_expand_like_istio_bundle_test() {
        // Istio bundle_test.go "Principals with aliases": td2 local, td1 alias.
        let b = TrustDomainBundle::new("td2", &["td1".to_owned()]);
        assert_eq!(
            b.replace_aliases(&["td1/ns/foo/sa/bar".to_owned()]),
            vec!["td2/ns/foo/sa/bar", "td1/ns/foo/sa/bar"]
        );
        assert_eq!(
            b.replace_aliases(&["cluster.local/ns/foo/sa/bar".to_owned()]),
            vec!["td2/ns/foo/sa/bar", "td1/ns/foo/sa/bar"]
        );
        assert_eq!(
            b.replace_aliases(&["other/ns/foo/sa/bar".to_owned()]),
            vec!["other/ns/foo/sa/bar"]
        );
        assert_eq!(
            b.replace_aliases(&["*/ns/foo/sa/bar".to_owned()]),
            vec!["*/ns/foo/sa/bar"]
        );
        assert_eq!(
            b.replace_aliases(&["*td1/ns/foo/sa/bar".to_owned()]),
            vec!["td2/ns/foo/sa/bar", "*td1/ns/foo/sa/bar"]
        );
    }

    #[test]
    fn namespace_index_agrees_with_the_regex() {
        let principals = [
            "td/ns/foo/sa/x",
            "ns/foo/sa/x",
            "td/ns/ns/foo/x",
            "td/ns/foo",
            "td/x/ns/foo/y",
            "td/ns//sa/x",
        ];
        for name in ["foo", "ns", "sa", "x"] {
            let glob = namespace_matcher(name);
            assert_eq!(namespace_literal(&glob), Some(name));
            for p in principals {
                let mut hit = false;
                namespace_candidates(p, |c| hit |= c == name);
                assert_eq!(hit, uri_glob_matches(&glob, p), "{name} in {p}");
            }
        }
        for p in principals {
            for v in ["foo", "fo*", "*", "f.o", "f.o*"] {
                let m = NamespaceMatch::new(v);
                assert_eq!(
                    m.matches(p),
                    uri_glob_matches(&namespace_matcher(v), p),
                    "{v} {p}"
                );
            }
        }
        assert_eq!(namespace_literal(&namespace_matcher("fo*")), None);
        assert_eq!(namespace_literal(&namespace_matcher("f.o")), Some("f.o"));
        let m = NamespaceMatch::new("foo");
        assert!(!m.matches("td\n/ns/foo/sa/x"), "RE2 .* stops at a newline");
        assert!(!uri_glob_matches(
            &namespace_matcher("foo"),
            "td\n/ns/foo/sa/x"
        ));
    }

    #[test]
    fn service_account_regex_alternatives() {
        let g = service_account_matcher("foo/bar", "x");
        let any = |p: &str| g.iter().any(|g| uri_glob_matches(g, p));
        assert!(any("td/ns/foo/sa/bar"));
        assert!(any("td/ns/foo/k/v/sa/bar"));
        assert!(any("td/ns/foo/sa/bar/extra"));
        assert!(!any("td/ns/foo/sa/bar-junk"));
        assert!(!any("td/ns/foo/sa/bar/"));
        // CVE-2026-39350 (Istio advisory example): '.' in a service account is literal.
        let dotted = service_account_matcher("cert-manager/cert-manager.io", "x");
        let hit = |p: &str| dotted.iter().any(|g| uri_glob_matches(g, p));
        assert!(hit("td/ns/cert-manager/sa/cert-manager.io"));
        assert!(!hit("td/ns/cert-manager/sa/cert-manager-io"));
        assert!(!hit("td/ns/cert-manager/sa/cert-managerXio"));
        let dotted_ns = service_account_matcher("a.b/sa", "x");
        assert!(!dotted_ns
            .iter()
            .any(|g| uri_glob_matches(g, "td/ns/aXb/sa/sa")));
        let local = service_account_matcher("bar", "x");
        assert!(local.iter().any(|g| uri_glob_matches(g, "td/ns/x/sa/bar")));
    }
}
