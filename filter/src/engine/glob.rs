//! The small regex subset Istio's generator writes for `namespaces` and `serviceAccounts`.
//!
//! Istio builds these matchers as RE2 regexes around the user's value
//! (`srcNamespaceGenerator`: `.*/ns/<v>/.*`; `serviceAccountRegex`:
//! `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?`). Patched Istio (1.28.7, 1.29.3; istio/istio
//! PR 59700 and PR 59992, CVE-2026-39350 / ISTIO-SECURITY-2026-003) passes the value's
//! literal parts through `regexp.QuoteMeta`, so `.` and every other metacharacter in a
//! value is literal; before that `cert-manager.io` also admitted `cert-manager-io`. Only a
//! namespace's `*` stays a wildcard (`.*`). The regexes then use literals, `.*` and `.+`
//! only, with alternation expanded by the caller, so a tiny backtracking matcher is exact.
//! RE2's `.` does not match `\n`; neither does [`Tok::Run`].

/// One token of a fully anchored pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Literal bytes.
    Lit(Box<[u8]>),
    /// `.*` (`min: 0`) or `.+` (`min: 1`).
    Run { min: usize },
}

/// A fully anchored pattern (RE2 `FullMatch`, as Envoy's `safe_regex` uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    toks: Vec<Tok>,
}

/// Builds a [`Glob`] piece by piece.
#[derive(Debug, Default)]
pub(crate) struct GlobBuilder {
    toks: Vec<Tok>,
}

impl GlobBuilder {
    /// Literal text, where nothing is special.
    pub(crate) fn literal(mut self, text: &str) -> Self {
        if !text.is_empty() {
            self.toks.push(Tok::Lit(text.as_bytes().into()));
        }
        self
    }

    /// A policy value as patched Istio quotes it: every character literal
    /// (`regexp.QuoteMeta`), except that `*` is `.*` when `star_is_run` (namespaces, where
    /// Istio turns each `*` into `.*` around the quoted parts).
    pub(crate) fn quoted(mut self, text: &str, star_is_run: bool) -> Self {
        if !star_is_run {
            return self.literal(text);
        }
        for (i, part) in text.split('*').enumerate() {
            if i > 0 {
                self.toks.push(Tok::Run { min: 0 });
            }
            self = self.literal(part);
        }
        self
    }

    pub(crate) fn run(mut self, min: usize) -> Self {
        self.toks.push(Tok::Run { min });
        self
    }

    pub(crate) fn build(self) -> Glob {
        Glob { toks: self.toks }
    }
}

impl Glob {
    /// Whether `head` followed by `tail` matches the whole pattern (two pieces so callers can
    /// prepend `spiffe://` without building a string per request).
    pub(crate) fn matches(&self, head: &str, tail: &str) -> bool {
        let subject = Subject {
            head: head.as_bytes(),
            tail: tail.as_bytes(),
        };
        match_from(&self.toks, &subject, 0)
    }

    pub(crate) fn tokens(&self) -> &[Tok] {
        &self.toks
    }
}

struct Subject<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

impl Subject<'_> {
    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    fn byte(&self, i: usize) -> Option<u8> {
        match self.head.get(i) {
            Some(b) => Some(*b),
            None => self.tail.get(i - self.head.len()).copied(),
        }
    }

    /// Length in bytes of the character starting at `i` (UTF-8 lead byte), if it is not `\n`.
    fn char_len_not_newline(&self, i: usize) -> Option<usize> {
        let b = self.byte(i)?;
        if b == b'\n' {
            return None;
        }
        let n = match b {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            // A continuation or invalid byte: count it alone so matching always progresses.
            _ => 1,
        };
        if i + n > self.len() {
            return Some(1);
        }
        Some(n)
    }
}

fn match_from(toks: &[Tok], s: &Subject<'_>, pos: usize) -> bool {
    let Some((tok, rest)) = toks.split_first() else {
        return pos == s.len();
    };
    match tok {
        Tok::Lit(lit) => {
            if pos + lit.len() > s.len() {
                return false;
            }
            let same = lit
                .iter()
                .enumerate()
                .all(|(k, b)| s.byte(pos + k) == Some(*b));
            same && match_from(rest, s, pos + lit.len())
        }
        Tok::Run { min } => {
            // Try the rest of the pattern after every run length allowed, shortest first.
            let mut p = pos;
            let mut count = 0usize;
            if *min == 0 && match_from(rest, s, p) {
                return true;
            }
            while let Some(n) = s.char_len_not_newline(p) {
                p += n;
                count += 1;
                if count >= *min && match_from(rest, s, p) {
                    return true;
                }
            }
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn ns_glob(value: &str) -> Glob {
        GlobBuilder::default()
            .run(0)
            .literal("/ns/")
            .quoted(value, true)
            .literal("/")
            .run(0)
            .build()
    }

    #[test]
    fn namespace_regex_behaves_like_re2() {
        let g = ns_glob("foo");
        assert!(g.matches("spiffe://", "td/ns/foo/sa/bar"));
        assert!(!g.matches("spiffe://", "td/ns/foobar/sa/bar"));
        assert!(ns_glob("foo*").matches("spiffe://", "td/ns/foobar/sa/bar"));
        assert!(ns_glob("*").matches("spiffe://", "td/ns/x/sa/bar"));
        // CVE-2026-39350: patched Istio quotes '.', so it only matches itself.
        assert!(!ns_glob("f.o").matches("spiffe://", "td/ns/fxo/sa/bar"));
        assert!(ns_glob("f.o").matches("spiffe://", "td/ns/f.o/sa/bar"));
        assert!(!ns_glob("a|b").matches("spiffe://", "td/ns/a/sa/bar"));
        assert!(ns_glob("a|b").matches("spiffe://", "td/ns/a|b/sa/bar"));
        assert!(ns_glob("*-prod").matches("spiffe://", "td/ns/eu-prod/sa/bar"));
        assert!(ns_glob("a*b*").matches("spiffe://", "td/ns/axxbyy/sa/bar"));
        assert!(!ns_glob("foo").matches("spiffe://", "td/ns/foo"));
        assert!(!ns_glob("*").matches("spiffe://", "td/ns/a\n/sa/b"));
        assert_eq!(ns_glob("a").tokens().len(), 5);
    }
}
