#![cfg(not(target_arch = "wasm32"))] // writes PKI files; host-sim wasi-run gives wasm tests no file system
//! host-sim's demo PKI (`host-sim/src/certs.rs`, compiled into this test because the filter
//! cannot depend on host-sim) checked by the filter's own X.509-SVID rules: every workload
//! certificate verifies as its SPIFFE ID, every deliberately bad leaf fails with the rule it
//! was made to break, and the CA certificates never pass as callers.

// Tests state their expectations with unwrap/expect/panic; the workspace denies them only in
// the filter's own code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../host-sim/src/certs.rs"]
#[allow(dead_code)]
mod certs;

use std::fs;
use std::path::PathBuf;

use certs::{BadLeaf, WORKLOAD_VALIDITY_SECS};
use spiffe_authz::identity::svid::{self, SvidError, SvidRules};
use spiffe_authz::identity::{SpiffeIdError, TrustDomain};

const NOW: i64 = 1_767_225_600;

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spiffe-authz-demo-pki-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[test]
fn demo_pki_files_verify_as_the_svid_rules_say() {
    let dir = scratch_dir();
    let workloads = [("default", "sleep"), ("prod", "backend")];
    let written = certs::write_demo_pki_at(&dir, "cluster.local", &workloads, NOW).unwrap();
    assert!(written.iter().all(|p| p.starts_with(&dir) && p.is_file()));

    let td = TrustDomain::new("cluster.local").unwrap();
    let rules_at = |now: i64| SvidRules {
        trust_domain: &td,
        trust_domain_aliases: &[],
        now_unix_secs: now as u64,
    };
    let read = |relative: &str| fs::read_to_string(dir.join(relative)).unwrap();

    for (ns, sa) in workloads {
        let base = format!("workloads/{ns}.{sa}");
        let id = svid::verify_pem(&read(&format!("{base}/cert.pem")), &rules_at(NOW)).unwrap();
        assert_eq!(
            id.to_string(),
            read(&format!("{base}/spiffe-id.txt")).trim()
        );
        assert_eq!((id.namespace(), id.service_account()), (Some(ns), Some(sa)));
        // The chain file starts with the leaf.
        let chain = read(&format!("{base}/cert-chain.pem"));
        let chain_id = svid::verify_url_encoded_chain_leaf(&chain, &rules_at(NOW)).unwrap();
        assert_eq!(chain_id, id);
        assert_eq!(
            chain.matches("BEGIN CERTIFICATE").count(),
            3,
            "leaf, intermediate, root"
        );
        // Workload certificates live 24 hours.
        let after_expiry = NOW + WORKLOAD_VALIDITY_SECS + 1;
        assert!(matches!(
            svid::verify_pem(&read(&format!("{base}/cert.pem")), &rules_at(after_expiry)),
            Err(SvidError::Expired { .. })
        ));
    }

    for ca in ["root-cert.pem", "cluster1/ca-cert.pem"] {
        assert_eq!(
            svid::verify_pem(&read(ca), &rules_at(NOW)),
            Err(SvidError::NoWorkloadPath(
                "spiffe://cluster.local".parse().unwrap()
            )),
            "{ca}: a signing certificate's trust domain ID never identifies a caller"
        );
    }

    for kind in BadLeaf::ALL {
        let got = svid::verify_pem(
            &read(&format!("bad/{}/cert.pem", kind.name())),
            &rules_at(NOW),
        );
        let ok = match kind {
            BadLeaf::Expired => matches!(got, Err(SvidError::Expired { .. })),
            BadLeaf::NotYetValid => matches!(got, Err(SvidError::NotYetValid { .. })),
            BadLeaf::CaLeaf => got == Err(SvidError::CaCertificate),
            BadLeaf::TwoUriSans => got == Err(SvidError::MultipleUriSans { count: 2 }),
            BadLeaf::NonSpiffeUri => matches!(
                got,
                Err(SvidError::InvalidSpiffeId {
                    error: SpiffeIdError::WrongScheme,
                    ..
                })
            ),
            BadLeaf::DnsOnly => got == Err(SvidError::NoUriSan),
            BadLeaf::WrongTrustDomain => {
                matches!(got, Err(SvidError::UntrustedTrustDomain { .. }))
            }
        };
        assert!(ok, "{}: {got:?}", kind.name());
    }
    fs::remove_dir_all(&dir).unwrap();
}
