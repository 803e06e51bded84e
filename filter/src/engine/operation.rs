//! `to[].operation`: `hosts`, `methods`, `paths` (with `{*}` / `{**}` templates) and
//! `ports`, as Istio's `hostGenerator`, `methodGenerator`, `pathGenerator` and
//! `destPortGenerator` express them (`pilot/pkg/security/authz/model/generator.go`).

use super::string_match::StringMatch;

/// One `paths` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathMatch {
    /// Envoy `PathMatcher` with Istio `StringMatcher(v)`: `*` is `.+`.
    String(StringMatch),
    /// A value containing `{*}` or `{**}`: Envoy's `uri_template` matcher, which Istio
    /// configures with `{*}` -> `*` and `{**}` -> `**`.
    Template(Vec<TemplateTok>),
}

/// One piece of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateTok {
    Lit(Box<str>),
    /// `{*}`: one or more path characters, no `/` (Envoy's path glob).
    Segment,
    /// `{**}`: zero or more path characters including `/` (Envoy's text glob).
    Text,
}

impl PathMatch {
    /// A template must have Istio's validated shape (`CheckValidPathTemplate`): operators are
    /// whole segments and nothing but literals follows `{**}`. Besides matching what Istio
    /// accepts, that keeps matching linear in the path length.
    pub(crate) fn parse(value: &str) -> Result<PathMatch, String> {
        if !(value.contains("{*}") || value.contains("{**}")) {
            return Ok(PathMatch::String(StringMatch::string_matcher(value)));
        }
        let toks = parse_template(value);
        let mut after_text = false;
        for (i, tok) in toks.iter().enumerate() {
            if matches!(tok, TemplateTok::Lit(_)) {
                continue;
            }
            let before = i.checked_sub(1).and_then(|j| toks.get(j));
            let whole = matches!(before, Some(TemplateTok::Lit(l)) if l.ends_with('/'))
                && match toks.get(i + 1) {
                    None => true,
                    Some(TemplateTok::Lit(l)) => l.starts_with('/'),
                    Some(_) => false,
                };
            if !whole {
                return Err("a {*} or {**} template must be a whole path segment".into());
            }
            if after_text {
                return Err("{**} must be the last template operator".into());
            }
            after_text = matches!(tok, TemplateTok::Text);
        }
        Ok(PathMatch::Template(toks))
    }

    /// `path` is the request path with the query and fragment already removed (Envoy's
    /// `PathMatcher` and `uri_template` matcher both compare only the path part).
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::String(m) => m.matches_present(path, false),
            PathMatch::Template(toks) => template_matches(toks, path.as_bytes()),
        }
    }
}

fn parse_template(value: &str) -> Vec<TemplateTok> {
    let mut toks = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let star2 = rest.find("{**}");
        let star1 = rest.find("{*}");
        let next = match (star1, star2) {
            (Some(a), Some(b)) if b <= a => Some((b, TemplateTok::Text, 4)),
            (Some(a), _) => Some((a, TemplateTok::Segment, 3)),
            (None, Some(b)) => Some((b, TemplateTok::Text, 4)),
            (None, None) => None,
        };
        match next {
            Some((at, tok, width)) => {
                let lit = rest.get(..at).unwrap_or_default();
                if !lit.is_empty() {
                    toks.push(TemplateTok::Lit(lit.into()));
                }
                toks.push(tok);
                rest = rest.get(at + width..).unwrap_or_default();
            }
            None => {
                toks.push(TemplateTok::Lit(rest.into()));
                rest = "";
            }
        }
    }
    toks
}

/// Envoy `uri_template`'s path character class: unreserved, `%`, sub-delims other than
/// `*`, `:`, `@` and `=`. Anything else (a space, `"`, `*`, a raw non-ASCII byte) cannot
/// be matched by a wildcard, so such a path does not match the template.
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=".contains(&b)
}

fn template_matches(toks: &[TemplateTok], path: &[u8]) -> bool {
    let Some((tok, rest)) = toks.split_first() else {
        return path.is_empty();
    };
    match tok {
        TemplateTok::Lit(lit) => path
            .strip_prefix(lit.as_bytes())
            .is_some_and(|after| template_matches(rest, after)),
        TemplateTok::Segment | TemplateTok::Text => {
            let text = matches!(tok, TemplateTok::Text);
            let min = if text { 0 } else { 1 };
            let mut n = 0usize;
            loop {
                if n >= min && template_matches(rest, path.get(n..).unwrap_or_default()) {
                    return true;
                }
                match path.get(n) {
                    Some(&b) if is_path_char(b) || (text && b == b'/') => n += 1,
                    _ => return false,
                }
            }
        }
    }
}

/// A `ports` / `destination.port` value (Istio `convertToPort`: decimal, at most 65535).
pub(crate) fn parse_port(value: &str) -> Option<u16> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = value.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 5 {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn templates_follow_envoy_uri_template() {
        let m = PathMatch::parse("/foo/{*}/bar").unwrap();
        assert!(m.matches("/foo/x/bar"));
        assert!(!m.matches("/foo//bar"));
        assert!(!m.matches("/foo/x/y/bar"));
        let m = PathMatch::parse("/foo/{**}").unwrap();
        assert!(m.matches("/foo/"));
        assert!(m.matches("/foo/a/b/c"));
        assert!(!m.matches("/foo"));
        let m = PathMatch::parse("/{**}/b.mpd").unwrap();
        assert!(m.matches("/a/b.mpd"));
        assert!(!m.matches("/a x/b.mpd"));
        for bad in ["/{**}.mpd", "/a{*}", "/{**}/{*}", "/{*}{*}", "{*}/a"] {
            assert!(PathMatch::parse(bad).is_err(), "{bad}");
        }
    }
}
