//! Istio's string values (`exact`, `prefix*`, `*suffix`, `*`) as the Envoy matchers Istio
//! generates for them.
//!
//! Istio turns every value into an Envoy `StringMatcher` or `HeaderMatcher`
//! (`pilot/pkg/security/authz/matcher/string.go` and `header.go`). Which one decides what a
//! lone `*` means: a `StringMatcher` gets the regex `.+` (present and non-empty), a
//! `HeaderMatcher` gets `present_match` (present, possibly empty).

/// One value of an Istio field, as the Envoy `StringMatcher` Istio generates for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StringMatch {
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    /// `*` as a `StringMatcher`: the regex `.+`, so the fact must exist and be non-empty.
    /// Envoy runs it as RE2 `FullMatch`, whose `.` never matches `\n`: a value holding a
    /// newline (a JWT claim, a metadata string) does not match.
    NonEmpty,
    /// `*` as a `HeaderMatcher` (`present_match: true`) or as the source principal (the
    /// `spiffe://` URI is never empty): the fact must exist, even empty.
    Present,
}

impl StringMatch {
    /// Istio `matcher.StringMatcher(v)`: `*` is `.+`, `*x` a suffix, `x*` a prefix.
    /// The checks run in Istio's order, so `*x*` is the suffix `x*` (validation rejects it).
    pub(crate) fn string_matcher(value: &str) -> StringMatch {
        if value == "*" {
            StringMatch::NonEmpty
        } else if let Some(suffix) = value.strip_prefix('*') {
            StringMatch::Suffix(suffix.into())
        } else if let Some(prefix) = value.strip_suffix('*') {
            StringMatch::Prefix(prefix.into())
        } else {
            StringMatch::Exact(value.into())
        }
    }

    /// Istio `matcher.HeaderMatcher(k, v)`: like [`Self::string_matcher`] except that `*`
    /// becomes `present_match`.
    pub(crate) fn header_matcher(value: &str) -> StringMatch {
        if value == "*" {
            StringMatch::Present
        } else {
            StringMatch::string_matcher(value)
        }
    }

    /// Matches one fact; `None` is an absent fact, which only negations can satisfy.
    #[inline]
    pub(crate) fn matches(&self, fact: Option<&str>) -> bool {
        let Some(fact) = fact else {
            return false;
        };
        self.matches_present(fact, false)
    }

    /// Matches a fact that exists; `ignore_case` is Envoy's ASCII `ignore_case`.
    #[inline]
    pub(crate) fn matches_present(&self, fact: &str, ignore_case: bool) -> bool {
        let fact = fact.as_bytes();
        match self {
            StringMatch::Exact(v) => bytes_eq(fact, v.as_bytes(), ignore_case),
            StringMatch::Prefix(v) => fact
                .get(..v.len())
                .is_some_and(|head| bytes_eq(head, v.as_bytes(), ignore_case)),
            StringMatch::Suffix(v) => fact
                .len()
                .checked_sub(v.len())
                .and_then(|start| fact.get(start..))
                .is_some_and(|tail| bytes_eq(tail, v.as_bytes(), ignore_case)),
            StringMatch::NonEmpty => !fact.is_empty() && !fact.contains(&b'\n'),
            StringMatch::Present => true,
        }
    }

    /// Matches the value `head` followed by `tail` (case-sensitive) without joining them:
    /// the `:path` header is the normalized path, kept in a reused buffer, then the query,
    /// a slice of the path as received.
    pub(crate) fn matches_split(&self, head: &str, tail: &str) -> bool {
        let (head, tail) = (head.as_bytes(), tail.as_bytes());
        let len = head.len() + tail.len();
        // Whether `v` equals the joined value's bytes from `at` on.
        let same_at = |at: usize, v: &[u8]| {
            v.iter().enumerate().all(|(k, b)| {
                let i = at + k;
                let joined = match i.checked_sub(head.len()) {
                    None => head.get(i),
                    Some(j) => tail.get(j),
                };
                joined == Some(b)
            })
        };
        match self {
            StringMatch::Exact(v) => v.len() == len && same_at(0, v.as_bytes()),
            StringMatch::Prefix(v) => v.len() <= len && same_at(0, v.as_bytes()),
            StringMatch::Suffix(v) => len
                .checked_sub(v.len())
                .is_some_and(|at| same_at(at, v.as_bytes())),
            StringMatch::NonEmpty => len > 0,
            StringMatch::Present => true,
        }
    }

    /// Envoy's RBAC `HeaderMatcher` on a header that may repeat: it matches when any one
    /// value matches on its own (`HeaderUtility::matchesHeadersIndividually`, the fix for
    /// CVE-2026-26308 / GHSA-ghc4-35x6-crw5). Matching the comma-joined value instead let
    /// `x-role: user` + `x-role: admin` slip past a DENY on `admin`. An absent header never
    /// matches; Istio never sets `invert_match` (`notValues` are an RBAC `not_id` around the
    /// OR of these matchers), so a `notValues` entry excludes the request when any value
    /// matches.
    pub(crate) fn matches_any_value(&self, values: &HeaderValues<'_>, ignore_case: bool) -> bool {
        values.iter().any(|v| self.matches_present(v, ignore_case))
    }
}

#[inline]
fn bytes_eq(a: &[u8], b: &[u8], ignore_case: bool) -> bool {
    if ignore_case {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// Every value of one request header, in the order sent, without joining them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderValues<'a> {
    headers: &'a [(&'a str, &'a str)],
    name: &'a str,
}

impl<'a> HeaderValues<'a> {
    /// `name` is compared ASCII case-insensitively (Envoy lower-cases header names).
    pub(crate) fn new(headers: &'a [(&'a str, &'a str)], name: &'a str) -> Self {
        HeaderValues { headers, name }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(self.name))
            .map(|(_, v)| *v)
    }

    pub(crate) fn is_absent(&self) -> bool {
        self.iter().next().is_none()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn split_values_match_as_if_joined() {
        let m = |v: &str| StringMatch::string_matcher(v);
        for (head, tail) in [("/a/b", "?x=1"), ("", "?q"), ("/p", ""), ("", "")] {
            let joined = format!("{head}{tail}");
            for v in [
                "/a/b?x=1",
                "/a/b",
                "/a*",
                "/a/b?*",
                "*?x=1",
                "*b?x=1",
                "*=1",
                "*",
                "/p",
                "?q",
                "*q",
                "/a/b?x=12",
                "*x/a/b?x=1",
            ] {
                assert_eq!(
                    m(v).matches_split(head, tail),
                    m(v).matches_present(&joined, false),
                    "{v:?} on {head:?} + {tail:?}"
                );
            }
        }
    }

    #[test]
    fn repeated_header_values_match_individually() {
        // Envoy HeaderUtility::matchesHeadersIndividually (CVE-2026-26308): "user,admin" is
        // never compared as one string.
        let headers = [
            ("x-a", "user"),
            ("other", "admin"),
            ("X-A", "admin"),
            ("x-a", ""),
        ];
        let v = HeaderValues::new(&headers, "x-a");
        assert_eq!(v.iter().collect::<Vec<_>>(), ["user", "admin", ""]);
        assert!(StringMatch::Exact("admin".into()).matches_any_value(&v, false));
        assert!(StringMatch::Exact("".into()).matches_any_value(&v, false));
        assert!(StringMatch::Prefix("adm".into()).matches_any_value(&v, false));
        assert!(!StringMatch::Exact("user,admin".into()).matches_any_value(&v, false));
        assert!(!StringMatch::Prefix("user,".into()).matches_any_value(&v, false));
        assert!(!StringMatch::Suffix(",admin".into()).matches_any_value(&v, false));
        let absent = HeaderValues::new(&headers, "x-b");
        assert!(absent.is_absent());
        assert!(!StringMatch::Present.matches_any_value(&absent, false));
        assert!(StringMatch::Present.matches_any_value(&v, false));
    }
}
