//! Small arbitrary policy sets and requests: `Engine::compile` refuses or compiles without
//! a panic, and `decide` never panics and gives the same decision twice.
#![no_main]

mod shapes;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use shapes::{RequestFacts, NAMESPACES, NORMALIZATIONS, TRUST_DOMAINS};
use spiffe_authz::engine::{Engine, EngineConfig, Reason, Verdict};
use spiffe_authz::policy::{validate, AuthorizationPolicy};

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let n = u.int_in_range(0..=3)?;
    let mut policies = Vec::new();
    for _ in 0..n {
        if let Ok(p) = serde_json::from_value::<AuthorizationPolicy>(shapes::policy(u)?) {
            policies.push(p);
        }
    }
    // Mostly what the glue compiles (validated policies), sometimes unvalidated ones: the
    // engine must refuse those with an error, not panic, too.
    if u.ratio(3, 4)? {
        policies.retain(|p| validate(p).is_ok());
    }
    let config = EngineConfig {
        root_namespace: shapes::Word::from(u, NAMESPACES)?.0,
        trust_domain: shapes::Word::from(u, TRUST_DOMAINS)?.0,
        trust_domain_aliases: shapes::words(u, TRUST_DOMAINS, 2)?,
        workload: shapes::workload(u)?,
        path_normalization: *u.choose(&NORMALIZATIONS)?,
    };
    let Ok((engine, _warnings)) = Engine::compile(&policies, &config) else {
        return Ok(());
    };
    let _ = engine.needs();
    for _ in 0..u.int_in_range(1..=4)? {
        let facts = RequestFacts::from(u, None)?;
        let decision = facts.decide(&engine);
        assert_eq!(facts.decide(&engine), decision);
        // Without policies Istio allows everything Envoy forwards (a path the HCM would
        // reject is denied before any policy).
        if policies.is_empty() && decision.reason != Reason::InvalidPath {
            assert_eq!(decision.verdict, Verdict::Allow, "{facts:?}");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
