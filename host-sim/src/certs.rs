//! A demo mesh PKI for tests and demos, shaped like a real Istio mesh.
//!
//! - a root CA valid 12 months (what `istioctl`'s plugin-CA tooling suggests for a root);
//! - one intermediate CA per cluster valid 90 days (Istio's "plugged-in" CA certificates,
//!   `ca-cert.pem` / `cert-chain.pem`);
//! - workload certificates valid 24 hours (Istio's default `WORKLOAD_CERT_TTL`) with an empty
//!   subject, one critical URI SAN `spiffe://<td>/ns/<ns>/sa/<sa>`, `cA=false`, key usage
//!   digitalSignature + keyEncipherment, extended key usage serverAuth + clientAuth — the
//!   X.509-SVID profile (spiffe/spiffe `standards/X509-SVID.md`);
//! - deliberately bad leaves ([`BadLeaf`]) that tests need: expired, not yet valid, a CA
//!   certificate as leaf, two URI SANs, a non-SPIFFE URI, DNS only, a foreign trust domain.
//!
//! Reproducible: names, serial numbers, extensions and validity windows depend only on the
//! inputs and the `now` passed in (serials count up from 1 in generation order). Keys are fresh
//! ECDSA P-256 keys on every run, so the bytes differ; nothing in the filter depends on them.
//! Chain signatures are real, so the files also work in a real Envoy.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
/// Root CA lifetime: 12 months.
pub const ROOT_VALIDITY_SECS: i64 = 365 * DAY;
/// Intermediate (per-cluster) CA lifetime: 90 days.
pub const INTERMEDIATE_VALIDITY_SECS: i64 = 90 * DAY;
/// Workload certificate lifetime: 24 hours, Istio's default.
pub const WORKLOAD_VALIDITY_SECS: i64 = DAY;
/// Certificates start a little in the past so a peer whose clock lags slightly accepts them
/// (Istio's CA backdates for the same reason).
pub const BACKDATE_SECS: i64 = 5 * 60;

/// Why generating or writing the PKI failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating {what}: {source}")]
    Generate {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("time {0} (unix seconds) is out of range for a certificate")]
    Time(i64),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemPair {
    pub cert: String,
    pub key: String,
}

/// A signing CA: its PEM and what it needs to sign.
pub struct Authority {
    pub pem: PemPair,
    /// The chain from this CA up to and including the root, PEM, this CA first (Istio's
    /// `cert-chain.pem`).
    pub chain: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A workload's credentials as a sidecar holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadCert {
    /// `spiffe://<td>/ns/<ns>/sa/<sa>`.
    pub spiffe_id: String,
    pub pem: PemPair,
    /// Leaf, intermediate, root: what a peer presents plus the root.
    pub chain: String,
}

/// Leaves that break one X.509-SVID rule each, for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadLeaf {
    /// Validity ended an hour before `now`.
    Expired,
    /// Validity starts an hour after `now`.
    NotYetValid,
    /// `cA=true` and keyCertSign: a signing certificate used as a leaf.
    CaLeaf,
    /// Two SPIFFE URI SANs.
    TwoUriSans,
    /// One URI SAN that is not a SPIFFE ID.
    NonSpiffeUri,
    /// Only a DNS SAN.
    DnsOnly,
    /// A SPIFFE ID in a trust domain that is neither the mesh's nor an alias.
    WrongTrustDomain,
}

impl BadLeaf {
    pub const ALL: [BadLeaf; 7] = [
        BadLeaf::Expired,
        BadLeaf::NotYetValid,
        BadLeaf::CaLeaf,
        BadLeaf::TwoUriSans,
        BadLeaf::NonSpiffeUri,
        BadLeaf::DnsOnly,
        BadLeaf::WrongTrustDomain,
    ];

    /// Directory name under `bad/`.
    pub fn name(self) -> &'static str {
        match self {
            BadLeaf::Expired => "expired",
            BadLeaf::NotYetValid => "not-yet-valid",
            BadLeaf::CaLeaf => "ca-leaf",
            BadLeaf::TwoUriSans => "two-uri-sans",
            BadLeaf::NonSpiffeUri => "non-spiffe-uri",
            BadLeaf::DnsOnly => "dns-only",
            BadLeaf::WrongTrustDomain => "wrong-trust-domain",
        }
    }
}

/// The mesh's CA hierarchy, anchored at one instant.
pub struct MeshPki {
    trust_domain: String,
    now: i64,
    next_serial: u64,
    root: Authority,
}

impl MeshPki {
    /// A fresh root CA for `trust_domain`, valid from `now_unix_secs` (minus the backdate)
    /// for 12 months.
    pub fn new(trust_domain: &str, now_unix_secs: i64) -> Result<MeshPki, CertError> {
        let mut serial = 1;
        let root = new_authority(
            &format!("root CA for {trust_domain}"),
            trust_domain,
            "Root CA",
            now_unix_secs,
            ROOT_VALIDITY_SECS,
            None,
            &mut serial,
        )?;
        Ok(MeshPki {
            trust_domain: trust_domain.to_owned(),
            now: now_unix_secs,
            next_serial: serial,
            root,
        })
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    pub fn root(&self) -> &Authority {
        &self.root
    }

    /// An intermediate CA for one cluster, signed by the root, valid 90 days.
    pub fn intermediate(&mut self, cluster: &str) -> Result<Authority, CertError> {
        new_authority(
            &format!("intermediate CA for cluster {cluster}"),
            &self.trust_domain,
            &format!("Intermediate CA {cluster}"),
            self.now,
            INTERMEDIATE_VALIDITY_SECS,
            Some(&self.root),
            &mut self.next_serial,
        )
    }

    /// An Istio workload certificate for `ns`/`sa`, valid 24 hours.
    pub fn workload(
        &mut self,
        ca: &Authority,
        namespace: &str,
        service_account: &str,
    ) -> Result<WorkloadCert, CertError> {
        let spiffe_id = format!(
            "spiffe://{}/ns/{namespace}/sa/{service_account}",
            self.trust_domain
        );
        let spec = LeafSpec::svid(&spiffe_id, self.now);
        let pem = self.leaf(ca, &spec, &format!("workload certificate {spiffe_id}"))?;
        let chain = format!("{}{}", pem.cert, ca.chain);
        Ok(WorkloadCert {
            spiffe_id,
            pem,
            chain,
        })
    }

    /// A leaf that breaks one SVID rule, signed by `ca` (so only the SVID rules, not the
    /// chain, make it bad).
    pub fn bad_leaf(&mut self, ca: &Authority, kind: BadLeaf) -> Result<PemPair, CertError> {
        let good_id = format!(
            "spiffe://{}/ns/default/sa/{}",
            self.trust_domain,
            kind.name()
        );
        let mut spec = LeafSpec::svid(&good_id, self.now);
        match kind {
            BadLeaf::Expired => {
                spec.not_before = self.now - WORKLOAD_VALIDITY_SECS - HOUR;
                spec.not_after = self.now - HOUR;
            }
            BadLeaf::NotYetValid => {
                spec.not_before = self.now + HOUR;
                spec.not_after = self.now + HOUR + WORKLOAD_VALIDITY_SECS;
            }
            BadLeaf::CaLeaf => spec.is_ca = true,
            BadLeaf::TwoUriSans => spec.uris.push(format!(
                "spiffe://{}/ns/kube-system/sa/admin",
                self.trust_domain
            )),
            BadLeaf::NonSpiffeUri => spec.uris = vec![String::from("https://web.example.com/")],
            BadLeaf::DnsOnly => {
                spec.uris.clear();
                spec.dns.push(String::from("web.default.svc.cluster.local"));
            }
            BadLeaf::WrongTrustDomain => {
                spec.uris = vec![String::from("spiffe://evil.example/ns/default/sa/sleep")]
            }
        }
        self.leaf(ca, &spec, &format!("bad leaf {}", kind.name()))
    }

    /// Any leaf described by `spec`, signed by `ca`.
    pub fn leaf(
        &mut self,
        ca: &Authority,
        spec: &LeafSpec,
        what: &str,
    ) -> Result<PemPair, CertError> {
        let generate = |source| CertError::Generate {
            what: what.to_owned(),
            source,
        };
        let key = KeyPair::generate().map_err(generate)?;
        let mut params = CertificateParams::default();
        // Istio workload certificates have an empty subject; rcgen then marks the SAN critical
        // as RFC 5280 §4.1.2.6 requires.
        params.distinguished_name = DistinguishedName::new();
        params.serial_number = Some(SerialNumber::from(take_serial(&mut self.next_serial)));
        params.not_before = to_time(spec.not_before)?;
        params.not_after = to_time(spec.not_after)?;
        for uri in &spec.uris {
            let uri = uri.as_str().try_into().map_err(generate)?;
            params.subject_alt_names.push(SanType::URI(uri));
        }
        for dns in &spec.dns {
            let dns = dns.as_str().try_into().map_err(generate)?;
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
        if spec.is_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
            ];
        } else {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
        }
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &ca.issuer).map_err(generate)?;
        Ok(PemPair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// What a leaf certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    pub uris: Vec<String>,
    pub dns: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
}

impl LeafSpec {
    /// A well-formed X.509-SVID for `spiffe_id`, valid 24 hours from `now`.
    pub fn svid(spiffe_id: &str, now: i64) -> LeafSpec {
        LeafSpec {
            uris: vec![spiffe_id.to_owned()],
            dns: Vec::new(),
            not_before: now - BACKDATE_SECS,
            not_after: now + WORKLOAD_VALIDITY_SECS,
            is_ca: false,
        }
    }
}

fn new_authority(
    what: &str,
    trust_domain: &str,
    common_name: &str,
    now: i64,
    validity: i64,
    parent: Option<&Authority>,
    serial: &mut u64,
) -> Result<Authority, CertError> {
    let generate = |source| CertError::Generate {
        what: what.to_owned(),
        source,
    };
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, trust_domain);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.serial_number = Some(SerialNumber::from(take_serial(serial)));
    params.not_before = to_time(now - BACKDATE_SECS)?;
    params.not_after = to_time(now + validity)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    // X509-SVID §3.2: a signing certificate SHOULD be an SVID whose ID has no path.
    let td_id = format!("spiffe://{trust_domain}");
    params
        .subject_alt_names
        .push(SanType::URI(td_id.as_str().try_into().map_err(generate)?));
    let (cert, chain) = match parent {
        None => {
            let cert = params.self_signed(&key).map_err(generate)?;
            let pem = cert.pem();
            (pem.clone(), pem)
        }
        Some(parent) => {
            params.use_authority_key_identifier_extension = true;
            let cert = params.signed_by(&key, &parent.issuer).map_err(generate)?;
            let pem = cert.pem();
            let chain = format!("{pem}{}", parent.chain);
            (pem, chain)
        }
    };
    let pem = PemPair {
        cert,
        key: key.serialize_pem(),
    };
    Ok(Authority {
        pem,
        chain,
        issuer: Issuer::new(params, key),
    })
}

fn take_serial(serial: &mut u64) -> u64 {
    let current = *serial;
    *serial += 1;
    current
}

fn to_time(unix_secs: i64) -> Result<OffsetDateTime, CertError> {
    OffsetDateTime::from_unix_timestamp(unix_secs).map_err(|_| CertError::Time(unix_secs))
}

/// The cluster name [`write_demo_pki`] uses for its one intermediate CA.
pub const DEMO_CLUSTER: &str = "cluster1";

/// Writes a demo PKI for `trust_domain` into `dir`, valid from now, and returns the files
/// written. Layout (Istio plugin-CA file names where Istio has them):
///
/// ```text
/// root-cert.pem  root-key.pem
/// cluster1/ca-cert.pem  cluster1/ca-key.pem  cluster1/cert-chain.pem  cluster1/root-cert.pem
/// workloads/<ns>.<sa>/cert.pem  key.pem  cert-chain.pem  spiffe-id.txt
/// bad/<kind>/cert.pem  key.pem      kind: expired, not-yet-valid, ca-leaf, two-uri-sans,
///                                         non-spiffe-uri, dns-only, wrong-trust-domain
/// ```
///
/// Private keys are written in the clear: this is test material, never a real mesh's CA.
pub fn write_demo_pki(
    dir: &Path,
    trust_domain: &str,
    workloads: &[(&str, &str)],
) -> Result<Vec<PathBuf>, CertError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    write_demo_pki_at(dir, trust_domain, workloads, now)
}

/// [`write_demo_pki`] anchored at `now_unix_secs` instead of the system clock.
pub fn write_demo_pki_at(
    dir: &Path,
    trust_domain: &str,
    workloads: &[(&str, &str)],
    now_unix_secs: i64,
) -> Result<Vec<PathBuf>, CertError> {
    let mut pki = MeshPki::new(trust_domain, now_unix_secs)?;
    let mut written = Vec::new();
    let mut write = |relative: &str, contents: &str| -> Result<(), CertError> {
        let path = dir.join(relative);
        let io = |source| CertError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        fs::write(&path, contents).map_err(io)?;
        written.push(path);
        Ok(())
    };
    let root_cert = pki.root().pem.cert.clone();
    write("root-cert.pem", &root_cert)?;
    write("root-key.pem", &pki.root().pem.key)?;

    let ca = pki.intermediate(DEMO_CLUSTER)?;
    write(&format!("{DEMO_CLUSTER}/ca-cert.pem"), &ca.pem.cert)?;
    write(&format!("{DEMO_CLUSTER}/ca-key.pem"), &ca.pem.key)?;
    write(&format!("{DEMO_CLUSTER}/cert-chain.pem"), &ca.chain)?;
    write(&format!("{DEMO_CLUSTER}/root-cert.pem"), &root_cert)?;

    for (namespace, service_account) in workloads {
        let workload = pki.workload(&ca, namespace, service_account)?;
        let base = format!("workloads/{namespace}.{service_account}");
        write(&format!("{base}/cert.pem"), &workload.pem.cert)?;
        write(&format!("{base}/key.pem"), &workload.pem.key)?;
        write(&format!("{base}/cert-chain.pem"), &workload.chain)?;
        write(
            &format!("{base}/spiffe-id.txt"),
            &format!("{}\n", workload.spiffe_id),
        )?;
    }
    for kind in BadLeaf::ALL {
        let leaf = pki.bad_leaf(&ca, kind)?;
        write(&format!("bad/{}/cert.pem", kind.name()), &leaf.cert)?;
        write(&format!("bad/{}/key.pem", kind.name()), &leaf.key)?;
    }
    Ok(written)
}
