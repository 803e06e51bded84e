//! `host-sim serve-cert`: a server certificate for the `serve` listener, signed by the demo
//! mesh's intermediate CA (`host-sim certs` output, Istio plugin-CA file names). Workload
//! SVIDs carry only a URI SAN, which Istio's own clients check; curl checks the host name, so
//! the demo's server certificate adds DNS and IP SANs to the SPIFFE ID.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::ServeError;

/// What the server certificate says and where its CA is.
#[derive(Clone, Debug)]
pub struct ServerCertSpec {
    /// A directory with `ca-cert.pem`, `ca-key.pem` and `cert-chain.pem` (e.g. `demo-pki/cluster1`).
    pub ca_dir: PathBuf,
    pub spiffe_id: Option<String>,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// Where `cert.pem`, `cert-chain.pem` and `key.pem` go.
    pub out: PathBuf,
}

fn bad(path: &Path, reason: impl ToString) -> ServeError {
    ServeError::Tls {
        field: "--ca-dir",
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn read(path: &Path) -> Result<String, ServeError> {
    std::fs::read_to_string(path).map_err(|e| bad(path, e))
}

/// The issuer's distinguished name re-encoded byte for byte (same attribute order and string
/// types), since chain building compares the leaf's issuer with the CA's subject as bytes.
fn issuer_name(ca_der: &[u8], path: &Path) -> Result<DistinguishedName, ServeError> {
    let (_, cert) = X509Certificate::from_der(ca_der).map_err(|e| bad(path, e))?;
    let mut dn = DistinguishedName::new();
    for rdn in cert.subject().iter_rdn() {
        for attr in rdn.iter() {
            let oid: Vec<u64> = attr
                .attr_type()
                .iter()
                .map(|arcs| arcs.collect())
                .ok_or_else(|| bad(path, "subject attribute with an OID arc over 64 bits"))?;
            let value = attr
                .as_str()
                .map_err(|e| bad(path, format!("subject attribute: {e}")))?;
            let value = match attr.attr_value().tag() {
                Tag::PrintableString => DnValue::PrintableString(
                    value
                        .try_into()
                        .map_err(|e| bad(path, format!("subject attribute: {e}")))?,
                ),
                Tag::Utf8String => DnValue::Utf8String(value.to_string()),
                other => {
                    return Err(bad(
                        path,
                        format!("subject attribute string type {other} is not supported"),
                    ))
                }
            };
            dn.push(DnType::from_oid(&oid), value);
        }
    }
    Ok(dn)
}

/// Issues the certificate and writes `cert.pem`, `cert-chain.pem` (leaf, then the CA chain) and
/// `key.pem` into `spec.out`; returns the files written.
pub fn issue(spec: &ServerCertSpec) -> Result<Vec<PathBuf>, ServeError> {
    let ca_cert_path = spec.ca_dir.join("ca-cert.pem");
    let ca_key_path = spec.ca_dir.join("ca-key.pem");
    let ca_chain_path = spec.ca_dir.join("cert-chain.pem");
    let ca_pem = read(&ca_cert_path)?;
    let (_, ca_block) =
        x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).map_err(|e| bad(&ca_cert_path, e))?;
    let ca_key = KeyPair::from_pem(&read(&ca_key_path)?).map_err(|e| bad(&ca_key_path, e))?;
    let ca_chain = read(&ca_chain_path)?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = issuer_name(&ca_block.contents, &ca_cert_path)?;
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    let generate = |e: rcgen::Error| bad(&spec.ca_dir, format!("issuing: {e}"));
    if let Some(id) = &spec.spiffe_id {
        params
            .subject_alt_names
            .push(SanType::URI(id.as_str().try_into().map_err(generate)?));
    }
    for dns in &spec.dns {
        params
            .subject_alt_names
            .push(SanType::DnsName(dns.as_str().try_into().map_err(generate)?));
    }
    for ip in &spec.ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::hours(24);
    let key = KeyPair::generate().map_err(generate)?;
    let cert = params.signed_by(&key, &issuer).map_err(generate)?;

    let mut written = Vec::new();
    let out = &spec.out;
    std::fs::create_dir_all(out).map_err(|e| bad(out, e))?;
    for (name, contents) in [
        ("cert.pem", cert.pem()),
        ("cert-chain.pem", format!("{}{ca_chain}", cert.pem())),
        ("key.pem", key.serialize_pem()),
    ] {
        let path = out.join(name);
        std::fs::write(&path, contents).map_err(|e| bad(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Errors name the flag and the file; a good CA directory yields a chain that starts with
    /// the new leaf and carries the CA's own chain after it.
    #[test]
    fn issues_from_a_demo_ca_and_names_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("serve-cert-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::certs::write_demo_pki(&dir, "cluster.local", &[]).unwrap();
        let spec = |ca_dir: PathBuf| ServerCertSpec {
            ca_dir,
            spiffe_id: Some("spiffe://cluster.local/ns/demo/sa/backend".into()),
            dns: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            out: dir.join("serve"),
        };
        let missing = issue(&spec(dir.join("nope"))).unwrap_err().to_string();
        assert!(missing.starts_with("--ca-dir: "), "{missing}");
        assert!(missing.contains("nope/ca-cert.pem"), "{missing}");

        let written = issue(&spec(dir.join("cluster1"))).unwrap();
        assert_eq!(written.len(), 3);
        let chain = std::fs::read_to_string(dir.join("serve/cert-chain.pem")).unwrap();
        let leaf = std::fs::read_to_string(dir.join("serve/cert.pem")).unwrap();
        let ca_chain = std::fs::read_to_string(dir.join("cluster1/cert-chain.pem")).unwrap();
        assert_eq!(chain, format!("{leaf}{ca_chain}"));
        let der = x509_parser::pem::parse_x509_pem(leaf.as_bytes()).unwrap().1;
        let facts = super::super::tls::CertFacts::parse(&der.contents);
        assert_eq!(
            facts.uri_sans,
            vec!["spiffe://cluster.local/ns/demo/sa/backend".to_string()]
        );
        assert_eq!(facts.dns_sans, vec!["localhost".to_string()]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
