//! SpiffeId::parse never panics, and what it accepts round-trips and obeys the standard.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_authz::identity::{SpiffeId, TrustDomain, MAX_SPIFFE_ID_LEN};

fuzz_target!(|input: &str| {
    let Ok(id) = SpiffeId::parse(input) else {
        return;
    };
    // Accepted IDs print back exactly as given: no normalisation could make two strings one ID.
    assert_eq!(id.to_string(), input);
    assert!(input.len() <= MAX_SPIFFE_ID_LEN);
    assert_eq!(
        format!("{}{}", id.trust_domain(), id.path()),
        id.principal()
    );
    assert!(TrustDomain::new(id.trust_domain()).is_ok());
    assert!(id.path().is_empty() || id.path().starts_with('/'));
    for segment in id.path().split('/').skip(1) {
        assert!(!segment.is_empty() && segment != "." && segment != "..");
        assert!(segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')));
    }
    if let (Some(ns), Some(sa)) = (id.namespace(), id.service_account()) {
        assert_eq!(id.path(), format!("/ns/{ns}/sa/{sa}"));
    }
});
