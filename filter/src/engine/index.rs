//! An ordered rule list with indexes, so a decision looks at the rules that can match
//! rather than at every rule.
//!
//! Each rule gets at most one anchor: a fact every match of the rule requires (an exact
//! principal, a principal prefix or suffix, an exact namespace, a CIDR on the peer or client address, an exact
//! path, a path prefix or suffix, an exact header value). Rules with no anchor are scanned.
//! Candidates are verified by evaluating the whole rule, so an index can only skip work,
//! never change an outcome. Rules are numbered in Envoy's policy order (the RBAC `policies`
//! map is ordered by name), so the first matching number is the policy Envoy reports.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use super::ip::{push_sorted, CidrIndex};
use super::operation::{PathMatch, TemplateTok};
use super::principal::{namespace_candidates, NamespaceMatch};
use super::rule::{CompiledRule, Constraint, Facts, UnknownFact};
use super::string_match::{HeaderValues, StringMatch};

/// A map filled from the policies at configure time and only read per request. Its keys are
/// the operator's literals, never request data, so nobody on the request path can choose
/// colliding keys (what SipHash's random key defends against): a fixed, cheap hash is
/// safe, and a lookup costs at most the probe sequences the configured keys already left.
/// SipHash was about a tenth of a decision's instructions at opt-level "z" (BENCHMARKS.md,
/// Plugin).
pub(crate) type ConfigMap<K, V> = HashMap<K, V, FxBuildHasher>;

/// Strings indexed by exact value, or by prefix / suffix with one hash lookup per distinct
/// literal length.
#[derive(Debug, Default, Clone)]
struct LenBuckets {
    lens: Vec<usize>,
    map: ConfigMap<Box<str>, Vec<u32>>,
}

impl LenBuckets {
    fn insert(&mut self, key: &str, rule: u32) {
        if !self.lens.contains(&key.len()) {
            self.lens.push(key.len());
            self.lens.sort_unstable();
        }
        push_sorted(self.map.entry(key.into()).or_default(), rule);
    }

    #[inline]
    fn exact(&self, s: &str, visit: &mut impl FnMut(&[u32])) {
        if let Some(rules) = self.map.get(s) {
            visit(rules);
        }
    }

    fn prefixes(&self, s: &str, visit: &mut impl FnMut(&[u32])) {
        for &len in &self.lens {
            // A cut inside a character cannot equal a (valid UTF-8) key, so skipping it is
            // exact.
            match s.get(..len) {
                Some(head) => self.exact(head, visit),
                None if len > s.len() => break,
                None => {}
            }
        }
    }

    fn suffixes(&self, s: &str, visit: &mut impl FnMut(&[u32])) {
        for &len in &self.lens {
            let Some(start) = s.len().checked_sub(len) else {
                break;
            };
            if let Some(tail) = s.get(start..) {
                self.exact(tail, visit);
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
struct HeaderIndex {
    name: Box<str>,
    values: LenBuckets,
}

#[derive(Debug, Default, Clone)]
struct Index {
    principal_exact: LenBuckets,
    principal_prefix: LenBuckets,
    principal_suffix: LenBuckets,
    namespace_exact: LenBuckets,
    direct_ip: CidrIndex,
    remote_ip: CidrIndex,
    /// Every rule anchored in `direct_ip` / `remote_ip`: with the address unknown, DENY
    /// and AUDIT rules on it match (`UnknownFact::Matches`), so they must still be
    /// visited. ALLOW rules anchored there cannot match then (every `from` entry needs the
    /// address), so an ALLOW set skips them instead of scanning.
    direct_ip_rules: Vec<u32>,
    remote_ip_rules: Vec<u32>,
    path_exact: LenBuckets,
    path_prefix: LenBuckets,
    path_suffix: LenBuckets,
    headers: Vec<HeaderIndex>,
    scan: Vec<u32>,
}

/// The rules of one action group (e.g. enforced DENY on HTTP) in Envoy's order, indexed.
#[derive(Debug, Default, Clone)]
pub(crate) struct RuleSet {
    rules: Vec<CompiledRule>,
    index: Index,
    /// Some rule counts a field on an unknown address as matched (DENY / AUDIT sets).
    unknown_fact_matches: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
}

fn kind_of(m: &StringMatch) -> Option<(Kind, &str)> {
    match m {
        StringMatch::Exact(v) => Some((Kind::Exact, v)),
        StringMatch::Prefix(v) => Some((Kind::Prefix, v)),
        StringMatch::Suffix(v) => Some((Kind::Suffix, v)),
        StringMatch::NonEmpty | StringMatch::Present => None,
    }
}

/// The literals of one entry's positive values when all are of `kind`.
fn literals<'a>(ms: impl Iterator<Item = &'a StringMatch>, kind: Kind) -> Option<Vec<&'a str>> {
    let mut out = Vec::new();
    for m in ms {
        match kind_of(m) {
            Some((k, v)) if k == kind => out.push(v),
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Values every entry requires, found by `pick` in each entry; `None` when some entry has
/// no such requirement.
fn every_entry<'a, T>(
    entries: &'a [Vec<Constraint>],
    pick: impl Fn(&'a Constraint) -> Option<Vec<T>>,
) -> Option<Vec<T>> {
    let mut all = Vec::new();
    for e in entries {
        all.extend(e.iter().find_map(&pick)?);
    }
    Some(all)
}

impl RuleSet {
    /// `rules` must already be in Envoy's order.
    pub(crate) fn new(rules: Vec<CompiledRule>) -> RuleSet {
        let mut index = Index::default();
        for (id, rule) in rules.iter().enumerate() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            anchor(&mut index, rule, id);
        }
        let unknown_fact_matches = rules.iter().any(|r| r.unknown_fact == UnknownFact::Matches);
        RuleSet {
            rules,
            index,
            unknown_fact_matches,
        }
    }

    pub(crate) fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// The first rule (in Envoy's order) that matches, if any.
    pub(crate) fn first_match(&self, f: &Facts<'_>) -> Option<&CompiledRule> {
        // Most requests meet empty sets (no AUDIT, often no DENY): skip every probe.
        if self.rules.is_empty() {
            return None;
        }
        let mut best = u32::MAX;
        let rules = &self.rules;
        let mut visit = |ids: &[u32]| {
            for &id in ids {
                if id >= best {
                    break;
                }
                if rules.get(id as usize).is_some_and(|r| r.matches(f)) {
                    best = id;
                    break;
                }
            }
        };
        let ix = &self.index;
        visit(&ix.scan);
        if let Some(p) = f.principal {
            ix.principal_exact.exact(p, &mut visit);
            ix.principal_prefix.prefixes(p, &mut visit);
            ix.principal_suffix.suffixes(p, &mut visit);
            if !ix.namespace_exact.map.is_empty() {
                namespace_candidates(p, |ns| ix.namespace_exact.exact(ns, &mut visit));
            }
        }
        match f.direct_remote_ip {
            Some(ip) => ix.direct_ip.for_each_candidate(ip, &mut visit),
            None if self.unknown_fact_matches => visit(&ix.direct_ip_rules),
            None => {}
        }
        match f.remote_ip {
            Some(ip) => ix.remote_ip.for_each_candidate(ip, &mut visit),
            None if self.unknown_fact_matches => visit(&ix.remote_ip_rules),
            None => {}
        }
        if let Some(h) = &f.http {
            ix.path_exact.exact(h.path, &mut visit);
            ix.path_prefix.prefixes(h.path, &mut visit);
            ix.path_suffix.suffixes(h.path, &mut visit);
            for hi in &ix.headers {
                // Each value of a repeated header is matched on its own, so each is a key.
                for v in HeaderValues::new(h.headers, &hi.name).iter() {
                    hi.values.exact(v, &mut visit);
                }
            }
        }
        self.rules.get(best as usize)
    }
}

/// The literals of one entry's positive `paths` when all are of `kind`. A template's
/// leading literal (`/api/` of `/api/{*}/x`) is a prefix every matching path starts with.
fn path_literals(paths: &[PathMatch], kind: Kind) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for p in paths {
        let literal = match p {
            PathMatch::String(m) => kind_of(m).filter(|(k, _)| *k == kind).map(|(_, v)| v),
            PathMatch::Template(toks) if kind == Kind::Prefix => match toks.first() {
                Some(TemplateTok::Lit(lit)) => Some(&**lit),
                _ => None,
            },
            PathMatch::Template(_) => None,
        };
        out.push(literal?);
    }
    (!out.is_empty()).then_some(out)
}

fn anchor(ix: &mut Index, rule: &CompiledRule, id: u32) {
    let from = &rule.principals;
    let to = &rule.permissions;
    for kind in [Kind::Exact, Kind::Prefix, Kind::Suffix] {
        let found = every_entry(from, |c| match c {
            Constraint::Principal(f) => literals(f.any_of.iter(), kind),
            _ => None,
        });
        if let Some(values) = found {
            let target = match kind {
                Kind::Exact => &mut ix.principal_exact,
                Kind::Prefix => &mut ix.principal_prefix,
                Kind::Suffix => &mut ix.principal_suffix,
            };
            values.iter().for_each(|v| target.insert(v, id));
            return;
        }
    }
    let found = every_entry(from, |c| match c {
        Constraint::Namespace(f) if !f.any_of.is_empty() => f
            .any_of
            .iter()
            .map(NamespaceMatch::literal)
            .collect::<Option<Vec<_>>>(),
        _ => None,
    });
    if let Some(names) = found {
        names.iter().for_each(|n| ix.namespace_exact.insert(n, id));
        return;
    }
    for remote in [false, true] {
        let found = every_entry(from, |c| match c {
            Constraint::DirectRemoteIp(f) if !remote && !f.any_of.is_empty() => {
                Some(f.any_of.clone())
            }
            Constraint::RemoteIp(f) if remote && !f.any_of.is_empty() => Some(f.any_of.clone()),
            _ => None,
        });
        if let Some(cidrs) = found {
            let (target, all) = if remote {
                (&mut ix.remote_ip, &mut ix.remote_ip_rules)
            } else {
                (&mut ix.direct_ip, &mut ix.direct_ip_rules)
            };
            cidrs.into_iter().for_each(|c| target.insert(c, id));
            push_sorted(all, id);
            return;
        }
    }
    for kind in [Kind::Exact, Kind::Prefix, Kind::Suffix] {
        let found = every_entry(to, |c| match c {
            Constraint::Path(f) => path_literals(&f.any_of, kind),
            _ => None,
        });
        if let Some(values) = found {
            let target = match kind {
                Kind::Exact => &mut ix.path_exact,
                Kind::Prefix => &mut ix.path_prefix,
                Kind::Suffix => &mut ix.path_suffix,
            };
            values.iter().for_each(|v| target.insert(v, id));
            return;
        }
    }
    // An exact header value required by every `from` entry (conditions are copied into each).
    if let Some(first) = from.first() {
        for c in first {
            // Pseudo-headers may come from the request's own fields rather than `headers`.
            let Constraint::Header { name, field } = c else {
                continue;
            };
            if name.starts_with(':') {
                continue;
            }
            let found = every_entry(from, |c| match c {
                Constraint::Header { name: n, field } if n == name => {
                    literals(field.any_of.iter(), Kind::Exact)
                }
                _ => None,
            });
            if field.any_of.is_empty() {
                continue;
            }
            if let Some(values) = found {
                let hi = match ix.headers.iter().position(|h| h.name == *name) {
                    Some(at) => ix.headers.get_mut(at),
                    None => {
                        ix.headers.push(HeaderIndex {
                            name: name.clone(),
                            ..HeaderIndex::default()
                        });
                        ix.headers.last_mut()
                    }
                };
                if let Some(hi) = hi {
                    values.iter().for_each(|v| hi.values.insert(v, id));
                    return;
                }
            }
        }
    }
    push_sorted(&mut ix.scan, id);
}
