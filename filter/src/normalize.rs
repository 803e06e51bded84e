//! Istio's path normalization options, applied before path matching.
//!
//! Istio does not normalize paths itself: pilot turns `meshConfig.pathNormalization` into
//! Envoy HTTP connection manager (HCM) settings, and Envoy's RBAC filter matches the result
//! (pilot `networking/core` listener builder):
//!
//! | Istio option               | `normalize_path` | `merge_slashes` | `path_with_escaped_slashes_action` |
//! |----------------------------|------------------|-----------------|------------------------------------|
//! | `NONE`                     | false            | false           | `KEEP_UNCHANGED`                   |
//! | `BASE` (and `DEFAULT`)     | true             | false           | `KEEP_UNCHANGED`                   |
//! | `MERGE_SLASHES`            | true             | true            | `KEEP_UNCHANGED`                   |
//! | `DECODE_AND_MERGE_SLASHES` | true             | true            | `UNESCAPE_AND_FORWARD`             |
//!
//! Istio never sets `REJECT_REQUEST` or `UNESCAPE_AND_REDIRECT`, so no option answers an
//! escaped slash with a 400 or a redirect: DECODE_AND_MERGE_SLASHES decodes it and the request
//! is judged on the decoded path.
//!
//! [`normalize_path`] replays what Envoy's HCM does with those settings
//! (`ConnectionManagerUtility::maybeNormalizePath`, `source/common/http/path_utility.cc`):
//! strip a `#fragment`; unescape `%2F`/`%5C` (decode option only); strip parameters from
//! `.;`/`..;` segments; canonicalize with Chromium's URL path rules (RFC 3986 dot-segment
//! removal, `\` as `/`, `%2E` as `.`, percent-decoding of unreserved characters, escaping of
//! characters a path may not hold, rejecting `%00`); merge slashes. Then, like Envoy's RBAC
//! path matcher (`PathUtil::removeQueryAndFragment`), it drops the `?query`.
//!
//! The fragment is stripped, not refused, under every option: Istio's bootstrap turns
//! Envoy's `http_reject_path_with_fragment` off (`pkg/bootstrap/config.go`
//! `extractRuntimeFlags`) and leaves `http_strip_fragment_from_path_unsafe_if_disabled` on, so
//! the HCM cuts `#...` before normalizing and forwards the path without it; the backend and
//! the RBAC filter read the same path, so `/public#/../admin` is `/public` to both.
//!
//! Inside a sidecar the wasm filter already sees the HCM-normalized `:path`; normalizing again
//! is harmless because every step is idempotent, and it protects hosts (or tests) that did not
//! normalize.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// Istio `meshConfig.pathNormalization.normalization` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PathNormalization {
    None,
    #[default]
    Base,
    MergeSlashes,
    DecodeAndMergeSlashes,
}

/// An unknown `pathNormalization` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown path normalization {0:?}: expected one of NONE, BASE, MERGE_SLASHES, \
     DECODE_AND_MERGE_SLASHES"
)]
pub struct UnknownPathNormalization(pub String);

impl PathNormalization {
    /// The name Istio's mesh config uses.
    pub fn as_str(self) -> &'static str {
        match self {
            PathNormalization::None => "NONE",
            PathNormalization::Base => "BASE",
            PathNormalization::MergeSlashes => "MERGE_SLASHES",
            PathNormalization::DecodeAndMergeSlashes => "DECODE_AND_MERGE_SLASHES",
        }
    }

    fn canonicalizes(self) -> bool {
        self != PathNormalization::None
    }

    fn merges_slashes(self) -> bool {
        matches!(
            self,
            PathNormalization::MergeSlashes | PathNormalization::DecodeAndMergeSlashes
        )
    }

    fn unescapes_slashes(self) -> bool {
        self == PathNormalization::DecodeAndMergeSlashes
    }
}

impl FromStr for PathNormalization {
    type Err = UnknownPathNormalization;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "NONE" => Ok(PathNormalization::None),
            // Istio's enum value DEFAULT means BASE.
            "BASE" | "DEFAULT" => Ok(PathNormalization::Base),
            "MERGE_SLASHES" => Ok(PathNormalization::MergeSlashes),
            "DECODE_AND_MERGE_SLASHES" => Ok(PathNormalization::DecodeAndMergeSlashes),
            other => Err(UnknownPathNormalization(other.to_owned())),
        }
    }
}

impl fmt::Display for PathNormalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for PathNormalization {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for PathNormalization {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A path Envoy would not forward; the engine denies such a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    /// HCM answers 404 to a `:path` that is not origin-form.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// Envoy's HTTP codecs never pass NUL, CR or LF in a header value.
    #[error("path contains NUL, CR or LF")]
    ForbiddenCharacter,
    /// Chromium's path canonicalizer fails on an escaped NUL, and the HCM then rejects.
    #[error("path contains an escaped NUL (%00)")]
    EscapedNul,
    /// Escapes nested deeper than the pass limit (`%%%3341` needs one pass per level): no
    /// client needs that, so the request is refused rather than judged on a half-decoded path.
    #[error("path escapes are nested too deeply to normalize")]
    Unstable,
}

/// The path Istio's RBAC matchers compare against for `mode`: the HCM-normalized path
/// without the `#fragment` and the `?query`. Borrows when nothing changes.
pub fn normalize_path(path: &str, mode: PathNormalization) -> Result<Cow<'_, str>, PathError> {
    let mut scratch = PathScratch::default();
    let normalized = normalize_path_in(path, mode, &mut scratch)?;
    let path_only = path.split(['?', '#']).next().unwrap_or(path);
    Ok(if normalized == path_only {
        Cow::Borrowed(path_only)
    } else {
        Cow::Owned(normalized.to_owned())
    })
}

/// Reusable buffers for [`normalize_path_in`]: a path that needs rewriting is written into
/// them instead of into fresh strings, so once they have grown to the longest path seen,
/// normalizing allocates nothing. Three, because a pass compares its result with its start
/// while its steps write back and forth between the other two.
#[derive(Debug, Clone, Default)]
pub struct PathScratch {
    buffers: [Vec<u8>; 3],
}

/// [`normalize_path`] writing into `scratch`: the result borrows from `path` when nothing
/// changes, else from `scratch`.
pub fn normalize_path_in<'a>(
    path: &'a str,
    mode: PathNormalization,
    scratch: &'a mut PathScratch,
) -> Result<&'a str, PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    // One byte scan for the forbidden bytes and where the path ends (a char-set search walks
    // chars one call at a time at opt-level "z"). The path ends at the first `?` or `#`: the
    // HCM strips the fragment (a `?` inside it is no query) and the RBAC matchers cut the
    // query. The codecs refuse NUL, CR and LF anywhere in the header, fragment included.
    let mut forbidden = false;
    let mut end = None;
    for (at, &b) in path.as_bytes().iter().enumerate() {
        match b {
            b'\0' | b'\r' | b'\n' => forbidden = true,
            b'?' | b'#' if end.is_none() => end = Some(at),
            _ => {}
        }
    }
    if forbidden {
        return Err(PathError::ForbiddenCharacter);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    // `?` and `#` are ASCII: the byte cut is a char boundary.
    let path_only = end.and_then(|at| path.get(..at)).unwrap_or(path);
    let input = path_only.as_bytes();
    if !any_step_could_change(input) {
        return Ok(path_only);
    }
    // Envoy makes one pass. For a few inputs one pass is not a fixed point (`\..;` or
    // `%2e.;` only become a `..;` segment during canonicalization), and the engine may see a
    // path the HCM already normalized: passes repeat until nothing changes, which is also
    // what a backend that normalizes again would read. Every changing pass after the first
    // shortens the path, so this ends; the bound refuses crafted deep nesting.
    let mut pass_start: Option<usize> = None;
    let mut fixed_point = None;
    for _ in 0..MAX_PASSES {
        let mut steps = Steps {
            input,
            scratch: &mut *scratch,
            pass_start,
            current: pass_start,
        };
        if mode.unescapes_slashes() {
            steps.apply(|src, out| Ok(unescape_slashes_into(src, out)))?;
        }
        if mode.canonicalizes() {
            steps.apply(|src, out| Ok(strip_dot_segment_parameters_into(src, out)))?;
            steps.apply(canonicalize_into)?;
        }
        if mode.merges_slashes() {
            steps.apply(|src, out| Ok(merge_slashes_into(src, out)))?;
        }
        let current = steps.current;
        if current == pass_start || steps.view(current) == steps.view(pass_start) {
            fixed_point = Some(pass_start);
            break;
        }
        pass_start = current;
    }
    let Some(at) = fixed_point else {
        return Err(PathError::Unstable);
    };
    if at.is_none() {
        // Unchanged: already the caller's `str`, no need to validate it again.
        return Ok(path_only);
    }
    let scratch: &'a PathScratch = scratch;
    // Every step keeps UTF-8 (escapes are ASCII, non-ASCII is only ever copied or escaped);
    // should that ever break, refusing the path is the safe answer.
    std::str::from_utf8(view(input, scratch, at)).map_err(|_| PathError::Unstable)
}

const MAX_PASSES: usize = 8;

/// Whether some step of some mode might rewrite `path`: one scan for what the steps' own
/// checks look for (`%` for unescaping, `.;` for dot-segment parameters, `//` for merging,
/// and `needs_canonicalization`'s bytes), so the common clean path costs one pass over its
/// bytes instead of one per step. A superset: `true` only sends the path through the steps.
fn any_step_could_change(path: &[u8]) -> bool {
    if !path.first().is_some_and(|&b| is_url_slash(b)) {
        return true;
    }
    let mut previous = 0u8;
    for &b in path {
        let interesting = match b {
            b'%' | b'\\' => true,
            b'.' => previous == b'/',
            b';' => previous == b'.',
            b'/' => previous == b'/',
            _ => matches!(char_class(b), CharClass::Escape | CharClass::Invalid),
        };
        if interesting {
            return true;
        }
        previous = b;
    }
    false
}

/// The bytes at `at`: the input, or one of the scratch buffers.
fn view<'a>(input: &'a [u8], scratch: &'a PathScratch, at: Option<usize>) -> &'a [u8] {
    match at.and_then(|i| scratch.buffers.get(i)) {
        Some(buffer) => buffer,
        None => input,
    }
}

/// One pass's HCM steps (`ConnectionManagerUtility::maybeNormalizePath` order), each reading
/// the current path and writing a changed one into a free buffer.
struct Steps<'s> {
    input: &'s [u8],
    scratch: &'s mut PathScratch,
    pass_start: Option<usize>,
    current: Option<usize>,
}

impl Steps<'_> {
    fn view(&self, at: Option<usize>) -> &[u8] {
        view(self.input, self.scratch, at)
    }

    /// `step` writes its result into `out` and says whether it changed anything.
    fn apply(
        &mut self,
        step: impl FnOnce(&[u8], &mut Vec<u8>) -> Result<bool, PathError>,
    ) -> Result<(), PathError> {
        let free = (0..3)
            .find(|&i| Some(i) != self.current && Some(i) != self.pass_start)
            .unwrap_or(0);
        let [a, b, c] = &mut self.scratch.buffers;
        let (src, out): (&[u8], &mut Vec<u8>) = match (self.current, free) {
            (None, 0) => (self.input, a),
            (None, 1) => (self.input, b),
            (None, _) => (self.input, c),
            (Some(0), 1) => (a, b),
            (Some(0), _) => (a, c),
            (Some(1), 0) => (b, a),
            (Some(1), _) => (b, c),
            (Some(_), 0) => (c, a),
            (Some(_), _) => (c, b),
        };
        out.clear();
        if step(src, out)? {
            self.current = Some(free);
        }
        Ok(())
    }
}

/// Envoy `PathUtil::unescapeSlashes` on a path without query: `%2F`/`%2f` -> `/`,
/// `%5C`/`%5c` -> `\`, one pass, left to right. `None` when nothing was unescaped.
pub fn unescape_slashes(path: &str) -> Option<String> {
    let mut out = Vec::new();
    unescape_slashes_into(path.as_bytes(), &mut out).then(|| lossless(out))
}

fn unescape_slashes_into(path: &[u8], out: &mut Vec<u8>) -> bool {
    if !path.contains(&b'%') {
        return false;
    }
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = path.get(i) {
        let replacement = match (b, path.get(i + 1..i + 3)) {
            (b'%', Some(b"2F" | b"2f")) => Some(b'/'),
            (b'%', Some(b"5C" | b"5c")) => Some(b'\\'),
            _ => None,
        };
        match replacement {
            Some(c) => {
                out.push(c);
                changed = true;
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    changed
}

/// Envoy `PathUtil::stripParametersFromDotSegments` (runtime guard
/// `strip_dotdot_segments_with_parameters`, on by default): a segment starting with `..;`
/// becomes `..` and one starting with `.;` becomes `.`, so `/a/..;x=y/admin` canonicalizes to
/// `/admin` as servlet containers read it. `None` when nothing changed.
pub fn strip_dot_segment_parameters(path: &str) -> Option<String> {
    let mut out = Vec::new();
    strip_dot_segment_parameters_into(path.as_bytes(), &mut out).then(|| lossless(out))
}

fn strip_dot_segment_parameters_into(path: &[u8], out: &mut Vec<u8>) -> bool {
    if !path.windows(2).any(|w| w == b".;") {
        return false;
    }
    let mut changed = false;
    for (i, segment) in path.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        if segment.starts_with(b"..;") {
            changed = true;
            out.extend_from_slice(b"..");
        } else if segment.starts_with(b".;") {
            changed = true;
            out.push(b'.');
        } else {
            out.extend_from_slice(segment);
        }
    }
    changed
}

/// Envoy `PathUtil::mergeSlashes` on a path without query: runs of `/` become one, keeping a
/// leading and a trailing `/`. As in Envoy, a path of only slashes (`//`, `///`) becomes `//`.
/// `None` when there was no `//`.
pub fn merge_slashes(path: &str) -> Option<String> {
    let mut out = Vec::new();
    merge_slashes_into(path.as_bytes(), &mut out).then(|| lossless(out))
}

fn merge_slashes_into(path: &[u8], out: &mut Vec<u8>) -> bool {
    if !path.windows(2).any(|w| w == b"//") {
        return false;
    }
    if path.starts_with(b"/") {
        out.push(b'/');
    }
    let mut first = true;
    for segment in path.split(|&b| b == b'/').filter(|s| !s.is_empty()) {
        if !first {
            out.push(b'/');
        }
        out.extend_from_slice(segment);
        first = false;
    }
    if path.ends_with(b"/") {
        out.push(b'/');
    }
    true
}

/// A step's output as a `String`: the steps only move whole UTF-8 sequences or write ASCII.
fn lossless(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// How Chromium's path canonicalizer (`url_canon_path.cc`, used by Envoy's `canonicalPath`)
/// treats one byte.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CharClass {
    /// Copied as is; when escaped (`%XX`), the escape is kept as written.
    Pass,
    /// RFC 3986 unreserved (ALPHA, DIGIT, `-`, `_`, `~`): copied; when escaped, decoded.
    Unreserved,
    /// Not allowed raw in a path: written as `%XX` (upper-case hex).
    Escape,
    /// NUL: fails canonicalization.
    Invalid,
}

/// The table of the googleurl Envoy builds with. Chromium itself changed its table in 2024
/// (crbug.com/1509295: no more decoding, `%00` kept); Envoy's current `path_utility_test.cc`
/// still expects `%00` to be rejected and `%2E` decoded, so the older table is the one in force.
// Called per byte of every path; a call per byte is what "z" would otherwise emit.
#[inline(always)]
fn char_class(b: u8) -> CharClass {
    match b {
        0 => CharClass::Invalid,
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => CharClass::Unreserved,
        0x01..=0x20
        | 0x7f..=0xff
        | b'"'
        | b'#'
        | b'<'
        | b'>'
        | b'?'
        | b'^'
        | b'`'
        | b'{'
        | b'|'
        | b'}' => CharClass::Escape,
        _ => CharClass::Pass,
    }
}

#[inline(always)]
fn is_url_slash(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

/// Length of a dot at `i`: `.` is 1, `%2e` / `%2E` is 3, anything else 0.
fn dot_len(input: &[u8], i: usize) -> usize {
    match input.get(i..) {
        Some([b'.', ..]) => 1,
        Some([b'%', b'2', b'e' | b'E', ..]) => 3,
        _ => 0,
    }
}

enum AfterDot {
    NotADirectory,
    Current { consumed: usize },
    Parent { consumed: usize },
}

/// Chromium `ClassifyAfterDot`: what a dot right after a slash means.
fn classify_after_dot(input: &[u8], after_dot: usize) -> AfterDot {
    match input.get(after_dot) {
        None => return AfterDot::Current { consumed: 0 },
        Some(&b) if is_url_slash(b) => return AfterDot::Current { consumed: 1 },
        Some(_) => {}
    }
    let second = dot_len(input, after_dot);
    if second > 0 {
        match input.get(after_dot + second) {
            None => return AfterDot::Parent { consumed: second },
            Some(&b) if is_url_slash(b) => {
                return AfterDot::Parent {
                    consumed: second + 1,
                }
            }
            Some(_) => {}
        }
    }
    AfterDot::NotADirectory
}

/// Removes the last segment: `out` ends with `/`; keep everything up to the slash before it,
/// never going above the root slash at `path_begin`.
fn back_up_to_previous_slash(out: &mut Vec<u8>, path_begin: usize) {
    let last = out.len().saturating_sub(1);
    if last <= path_begin {
        return;
    }
    let keep = out
        .get(path_begin..last)
        .and_then(|head| head.iter().rposition(|&b| b == b'/'))
        .map_or(path_begin + 1, |at| path_begin + at + 1);
    out.truncate(keep);
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_escaped(out: &mut Vec<u8>, b: u8) {
    let hex_digit = |n: u8| if n < 10 { b'0' + n } else { b'A' + n - 10 };
    out.push(b'%');
    out.push(hex_digit(b >> 4));
    out.push(hex_digit(b & 0xf));
}

/// Whether canonicalization could change `path` at all: the allocation-free fast path.
fn needs_canonicalization(path: &[u8]) -> bool {
    if !path.first().is_some_and(|&b| is_url_slash(b)) {
        return true;
    }
    let mut previous = 0u8;
    for &b in path {
        let interesting = match b {
            b'%' | b'\\' => true,
            b'.' => previous == b'/',
            _ => matches!(char_class(b), CharClass::Escape | CharClass::Invalid),
        };
        if interesting {
            return true;
        }
        previous = b;
    }
    false
}

/// Envoy `canonicalPath` on a path without query: Chromium's `CanonicalizePath`.
///
/// Adds a leading `/` when missing; treats `\` as `/`; removes `.` and `..` segments (also
/// written `%2e`); decodes escaped unreserved characters (`%41` -> `A`); keeps other escapes
/// as written (`%2F`, `%5c`, `%25`) and a stray `%` as is; escapes controls, space, `"`, `<`,
/// `>`, `^`, `` ` ``, `{`, `|`, `}` and non-ASCII as upper-case `%XX`; fails on `%00`.
/// `Ok(None)` when the path is already canonical. One pass, like Envoy: `%%41` gives `%A`,
/// which [`normalize_path`] then treats in its next pass.
pub fn canonicalize_path(path: &str) -> Result<Option<String>, PathError> {
    let mut out = Vec::new();
    Ok(canonicalize_into(path.as_bytes(), &mut out)?.then(|| lossless(out)))
}

/// [`canonicalize_path`] writing into `out`; `Ok(false)` when the path is already canonical.
fn canonicalize_into(input: &[u8], out: &mut Vec<u8>) -> Result<bool, PathError> {
    if !needs_canonicalization(input) {
        return Ok(false);
    }
    out.reserve(input.len() + 8);
    let path_begin = 0;
    if !input.first().is_some_and(|&b| is_url_slash(b)) {
        out.push(b'/');
    }
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        let dot = dot_len(input, i);
        if dot > 0 {
            if out.last() == Some(&b'/') {
                match classify_after_dot(input, i + dot) {
                    AfterDot::NotADirectory => {
                        out.push(b'.');
                        i += dot;
                    }
                    AfterDot::Current { consumed } => i += dot + consumed,
                    AfterDot::Parent { consumed } => {
                        back_up_to_previous_slash(out, path_begin);
                        i += dot + consumed;
                    }
                }
            } else {
                out.push(b'.');
                i += dot;
            }
            continue;
        }
        match b {
            b'\\' => out.push(b'/'),
            b'%' => {
                let escaped = match (input.get(i + 1), input.get(i + 2)) {
                    (Some(&hi), Some(&lo)) => hex_value(hi)
                        .zip(hex_value(lo))
                        .map(|(hi, lo)| (hi << 4) | lo),
                    _ => None,
                };
                let Some(value) = escaped else {
                    out.push(b'%');
                    i += 1;
                    continue;
                };
                let verbatim = input.get(i..i + 3).unwrap_or_default();
                match char_class(value) {
                    CharClass::Invalid => return Err(PathError::EscapedNul),
                    CharClass::Unreserved => out.push(value),
                    CharClass::Pass | CharClass::Escape => out.extend_from_slice(verbatim),
                }
                i += 3;
                continue;
            }
            _ => match char_class(b) {
                CharClass::Invalid => return Err(PathError::EscapedNul),
                CharClass::Escape => push_escaped(out, b),
                CharClass::Pass | CharClass::Unreserved => out.push(b),
            },
        }
        i += 1;
    }
    // Every byte written is ASCII: non-ASCII input bytes were escaped.
    Ok(out.as_slice() != input)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The clean-path shortcut must never skip a path that one of Envoy's steps
    /// (`PathUtil::unescapeSlashes`, `stripParametersFromDotSegments`, `canonicalPath`,
    /// `mergeSlashes`) would rewrite: every path up to five bytes over the bytes those steps
    /// react to, plus a plain letter and a byte canonicalization escapes.
    #[test]
    fn clean_path_shortcut_skips_only_paths_no_step_changes() {
        let alphabet = [b'/', b'.', b';', b'%', b'2', b'f', b'\\', b'a', b' '];
        let mut paths: Vec<Vec<u8>> = vec![b"/".to_vec()];
        let mut frontier = paths.clone();
        for _ in 0..4 {
            let mut next = Vec::new();
            for p in &frontier {
                for &b in &alphabet {
                    let mut q = p.clone();
                    q.push(b);
                    next.push(q);
                }
            }
            paths.extend(next.iter().cloned());
            frontier = next;
        }
        let mut skipped = 0;
        for p in &paths {
            if any_step_could_change(p) {
                continue;
            }
            skipped += 1;
            let s = std::str::from_utf8(p).unwrap();
            assert_eq!(unescape_slashes(s), None, "{s:?}");
            assert_eq!(strip_dot_segment_parameters(s), None, "{s:?}");
            assert_eq!(canonicalize_path(s), Ok(None), "{s:?}");
            assert_eq!(merge_slashes(s), None, "{s:?}");
        }
        // The shortcut is taken at all (`/a`, `/a.`, `/2f` ...), so the test checks something.
        assert!(skipped > 100, "{skipped}");
    }
}
