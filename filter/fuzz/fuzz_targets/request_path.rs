//! `normalize_path` for every Istio `pathNormalization` option: never panics, is idempotent,
//! and from BASE up leaves no `.`/`..` segment, plain or escaped (Envoy's `normalize_path`, RFC 3986 5.2.4).
//! Then a fixed policy set decides the request on that path, the same way every time.
#![no_main]

mod shapes;

use std::sync::OnceLock;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use shapes::{RequestFacts, NORMALIZATIONS};
use spiffe_authz::engine::{Engine, EngineConfig, Reason, Workload};
use spiffe_authz::normalize::{normalize_path, PathNormalization};
use spiffe_authz::policy::AuthorizationPolicy;

/// Path rules of each kind (exact, prefix, suffix, `{*}`/`{**}` templates, DENY on a
/// traversal target) so a wrong normalization changes a verdict somewhere.
const POLICIES: &str = r#"[
  {"metadata": {"name": "deny-admin", "namespace": "default"},
   "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]}]}},
  {"metadata": {"name": "allow-api", "namespace": "default"},
   "spec": {"rules": [
     {"to": [{"operation": {"methods": ["GET"], "paths": ["/api/*", "*.css", "/v1/{*}/items", "/static/{**}"]}}]},
     {"from": [{"source": {"principals": ["cluster.local/ns/ns-a/sa/sa-a"]}}],
      "to": [{"operation": {"notPaths": ["/private*"]}}]},
     {"when": [{"key": "request.headers[x-user]", "values": ["admin"]}]}
   ]}},
  {"metadata": {"name": "audit-all", "namespace": "istio-system"},
   "spec": {"action": "AUDIT", "rules": [{"to": [{"operation": {"paths": ["/a*"]}}]}]}}
]"#;

fn engines() -> &'static [Engine; 4] {
    static ENGINES: OnceLock<[Engine; 4]> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let policies: Vec<AuthorizationPolicy> =
            serde_json::from_str(POLICIES).expect("the fixed policies parse");
        NORMALIZATIONS.map(|path_normalization| {
            let config = EngineConfig {
                root_namespace: "istio-system".into(),
                trust_domain: "cluster.local".into(),
                trust_domain_aliases: vec![],
                workload: Workload {
                    namespace: "default".into(),
                    labels: Default::default(),
                },
                path_normalization,
            };
            Engine::compile(&policies, &config)
                .expect("the fixed policies compile")
                .0
        })
    })
}

/// `.` or `..`, also escaped (`%2e`, `.%2E`, ...): Chromium's canonicalizer, and so Envoy,
/// treats an escaped dot as a dot when it finds dot segments (`url_canon_path.cc`).
fn is_dot_segment(segment: &str) -> bool {
    let unescaped = segment.to_ascii_lowercase().replace("%2e", ".");
    unescaped == "." || unescaped == ".."
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(path) = u.arbitrary::<String>() else {
        return;
    };
    let mut normalized_ok = [false; 4];
    for (i, mode) in NORMALIZATIONS.into_iter().enumerate() {
        let Ok(normalized) = normalize_path(&path, mode) else {
            continue;
        };
        normalized_ok[i] = true;
        let again = normalize_path(&normalized, mode);
        assert_eq!(
            again.as_deref(),
            Ok(&*normalized),
            "{mode}: normalizing {path:?} again changed {normalized:?}"
        );
        assert!(
            normalized.starts_with('/'),
            "{mode}: {path:?} -> {normalized:?}"
        );
        assert!(
            !normalized.contains('?'),
            "{mode}: query kept in {normalized:?}"
        );
        if mode != PathNormalization::None {
            assert!(
                normalized.split('/').all(|s| !is_dot_segment(s)),
                "{mode}: {path:?} -> {normalized:?} keeps a dot segment"
            );
        }
        if matches!(
            mode,
            PathNormalization::MergeSlashes | PathNormalization::DecodeAndMergeSlashes
        ) {
            // Envoy's `mergeSlashes` keeps a leading and a trailing slash around the joined
            // segments, so a path of slashes only becomes `//` (path_utility.cc).
            assert!(
                !normalized.contains("//") || normalized == "//",
                "{mode}: {path:?} -> {normalized:?}"
            );
        }
    }
    let Ok(facts) = RequestFacts::from(&mut u, Some(path)) else {
        return;
    };
    for (engine, ok) in engines().iter().zip(normalized_ok) {
        let decision = facts.decide(engine);
        assert_eq!(facts.decide(engine), decision, "decide is deterministic");
        // A path that does not normalize is denied before any policy (fail closed).
        assert_eq!(
            !ok,
            decision.reason == Reason::InvalidPath,
            "{facts:?}: {decision:?}"
        );
    }
});
