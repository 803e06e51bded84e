//! Certificate parsing and the SVID rules never panic on arbitrary DER or PEM text, and an
//! accepted certificate yields a workload ID in the trusted trust domain.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_authz::identity::svid::{self, SvidRules};
use spiffe_authz::identity::TrustDomain;

fuzz_target!(|data: &[u8]| {
    let td = TrustDomain::cluster_local();
    // A wide clock range so validity windows of seed certificates can pass.
    for now in [0, 1_767_225_600, u64::MAX] {
        let rules = SvidRules {
            trust_domain: &td,
            trust_domain_aliases: &[],
            now_unix_secs: now,
        };
        if let Ok(id) = svid::verify_der(data, &rules) {
            assert_eq!(id.trust_domain(), "cluster.local");
            assert!(!id.is_trust_domain_id());
        }
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = svid::verify_url_encoded_pem(text, &rules);
            let _ = svid::verify_url_encoded_chain_leaf(text, &rules);
        }
    }
});
