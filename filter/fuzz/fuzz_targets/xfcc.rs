//! XFCC parsing never panics; an identity comes only from the last element's single URI
//! (no certificate material survives random input often enough to matter here).
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_authz::identity::svid::SvidRules;
use spiffe_authz::identity::xfcc::{self, XfccKey};
use spiffe_authz::identity::TrustDomain;

fuzz_target!(|header: &str| {
    let elements = match xfcc::parse(header) {
        Ok(elements) => elements,
        Err(_) => {
            let td = TrustDomain::cluster_local();
            let rules = SvidRules {
                trust_domain: &td,
                trust_domain_aliases: &[],
                now_unix_secs: 1_767_225_600,
            };
            // A header that does not parse never yields an identity.
            assert!(xfcc::peer_identity(header, &rules).is_err());
            return;
        }
    };
    assert!(!elements.is_empty());
    let Some(last) = elements.last() else {
        return;
    };
    let td = TrustDomain::cluster_local();
    let rules = SvidRules {
        trust_domain: &td,
        trust_domain_aliases: &[],
        now_unix_secs: 1_767_225_600,
    };
    if let Ok(id) = xfcc::peer_identity(header, &rules) {
        assert_eq!(id.trust_domain(), "cluster.local");
        let uris: Vec<&str> = last.values(XfccKey::Uri).collect();
        let has_cert = last.values(XfccKey::Cert).next().is_some()
            || last.values(XfccKey::Chain).next().is_some();
        assert!(has_cert || uris == [id.to_string().as_str()]);
    }
});
