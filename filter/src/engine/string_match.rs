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
    pub(crate) fn matches(&self, fact: Option<&str>) -> bool {
        let Some(fact) = fact else {
            return false;
        };
        self.matches_present(fact, false)
    }

    /// Matches a fact that exists; `ignore_case` is Envoy's ASCII `ignore_case`.
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
            StringMatch::NonEmpty => !fact.is_empty(),
            StringMatch::Present => true,
        }
    }

    /// Matches the value Envoy's `HeaderMatcher` sees for a header that may repeat: every
    /// value, joined with `,` (Envoy `HeaderUtility::getAllOfHeaderAsString`, the fix for
    /// CVE-2020-25017 where only the first value was checked). Compares piecewise so no
    /// joined string is built.
    pub(crate) fn matches_joined(&self, values: &JoinedValues<'_>, ignore_case: bool) -> bool {
        if values.is_absent() {
            return false;
        }
        match self {
            StringMatch::Present => true,
            StringMatch::NonEmpty => values.len() != 0,
            StringMatch::Exact(v) => {
                values.len() == v.len() && values.starts_with(v.as_bytes(), ignore_case)
            }
            StringMatch::Prefix(v) => values.starts_with(v.as_bytes(), ignore_case),
            StringMatch::Suffix(v) => values.ends_with(v.as_bytes(), ignore_case),
        }
    }
}

fn bytes_eq(a: &[u8], b: &[u8], ignore_case: bool) -> bool {
    if ignore_case {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// All values of one request header, in order, seen as Envoy sees them: joined with `,`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JoinedValues<'a> {
    headers: &'a [(&'a str, &'a str)],
    name: &'a str,
}

impl<'a> JoinedValues<'a> {
    /// `name` is compared ASCII case-insensitively (Envoy lower-cases header names).
    pub(crate) fn new(headers: &'a [(&'a str, &'a str)], name: &'a str) -> Self {
        JoinedValues { headers, name }
    }

    fn values(&self) -> impl DoubleEndedIterator<Item = &'a [u8]> + '_ {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(self.name))
            .map(|(_, v)| v.as_bytes())
    }

    pub(crate) fn is_absent(&self) -> bool {
        self.values().next().is_none()
    }

    /// Length of the joined value.
    pub(crate) fn len(&self) -> usize {
        let mut total = 0usize;
        let mut count = 0usize;
        for v in self.values() {
            total = total.saturating_add(v.len());
            count += 1;
        }
        total.saturating_add(count.saturating_sub(1))
    }

    /// The single value when the header appears once (the common case, indexable).
    pub(crate) fn single(&self) -> Option<&'a str> {
        let mut it = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(self.name));
        let first = it.next()?;
        match it.next() {
            None => Some(first.1),
            Some(_) => None,
        }
    }

    fn starts_with(&self, pattern: &[u8], ignore_case: bool) -> bool {
        let mut rest = pattern;
        for (i, v) in self.values().enumerate() {
            if rest.is_empty() {
                return true;
            }
            if i > 0 {
                match rest.split_first() {
                    Some((b',', tail)) => rest = tail,
                    _ => return false,
                }
            }
            let n = v.len().min(rest.len());
            let (Some(head), Some(want)) = (v.get(..n), rest.get(..n)) else {
                return false;
            };
            if !bytes_eq(head, want, ignore_case) {
                return false;
            }
            rest = rest.get(n..).unwrap_or_default();
        }
        rest.is_empty()
    }

    fn ends_with(&self, pattern: &[u8], ignore_case: bool) -> bool {
        let mut rest = pattern;
        for (i, v) in self.values().rev().enumerate() {
            if rest.is_empty() {
                return true;
            }
            if i > 0 {
                match rest.split_last() {
                    Some((b',', head)) => rest = head,
                    _ => return false,
                }
            }
            let n = v.len().min(rest.len());
            let (Some(tail), Some(want)) = (v.get(v.len() - n..), rest.get(rest.len() - n..))
            else {
                return false;
            };
            if !bytes_eq(tail, want, ignore_case) {
                return false;
            }
            rest = rest.get(..rest.len() - n).unwrap_or_default();
        }
        rest.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn joined_values_compare_like_the_comma_joined_string() {
        let headers = [("x-a", "ab"), ("other", "zz"), ("X-A", "cd"), ("x-a", "")];
        let joined = "ab,cd,";
        let j = JoinedValues::new(&headers, "x-a");
        assert_eq!(j.len(), joined.len());
        for cut in 0..=joined.len() {
            let head = &joined[..cut];
            let tail = &joined[cut..];
            assert!(j.starts_with(head.as_bytes(), false), "prefix {head:?}");
            assert!(j.ends_with(tail.as_bytes(), false), "suffix {tail:?}");
        }
        assert!(!j.starts_with(b"ab,cd,x", false));
        assert!(!j.ends_with(b"xab,cd,", false));
        assert!(!j.starts_with(b"ac", false));
        assert!(StringMatch::Exact("ab,cd,".into()).matches_joined(&j, false));
        assert!(!StringMatch::Exact("ab".into()).matches_joined(&j, false));
        assert_eq!(j.single(), None);
        assert_eq!(JoinedValues::new(&headers, "other").single(), Some("zz"));
    }
}
