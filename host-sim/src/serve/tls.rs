//! The listener's TLS: rustls (ring) with webpki client-certificate verification, and the
//! translation of a finished handshake into the connection facts Envoy serves to a plugin
//! (`connection.mtls`, URI/DNS SANs, RFC 2253 subject, the PEM that `connection.peer_certificate`
//! and the SHA-256 digest come from).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::ServeError;
use crate::Connection;

/// Whether the handshake demands a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCertificate {
    /// Istio STRICT: a client without a certificate (or with one the CA did not sign) fails
    /// the handshake (Envoy `require_client_certificate: true`).
    Required,
    /// Istio PERMISSIVE on one port: a certificate is verified if sent, and a client without
    /// one is let in and evaluated as unauthenticated.
    Optional,
}

/// The listener's transport.
#[derive(Clone, Debug)]
pub enum Transport {
    Plaintext,
    Tls {
        /// PEM: this proxy's certificate, then its chain.
        cert_chain: PathBuf,
        /// PEM private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
        /// PEM trust anchors for client certificates (the mesh root).
        client_ca: PathBuf,
        client_certificate: ClientCertificate,
    },
}

/// The built acceptor plus what we know of our own certificate.
pub(crate) struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub local_uri_sans: Vec<String>,
}

fn read_certs(
    field: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let bad = |reason: String| ServeError::Tls {
        field,
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// Builds the rustls server config: ALPN `h2`, `http/1.1` for HTTP (none for TCP).
pub(crate) fn build(transport: &Transport, alpn_http: bool) -> Result<Option<Tls>, ServeError> {
    let Transport::Tls {
        cert_chain,
        key,
        client_ca,
        client_certificate,
    } = transport
    else {
        return Ok(None);
    };
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certs("--tls-cert", cert_chain)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| ServeError::Tls {
        field: "--tls-key",
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut roots = RootCertStore::empty();
    for ca in read_certs("--client-ca", client_ca)? {
        roots.add(ca).map_err(|e| ServeError::Tls {
            field: "--client-ca",
            path: client_ca.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let verifier = match client_certificate {
        ClientCertificate::Required => verifier,
        ClientCertificate::Optional => verifier.allow_unauthenticated(),
    }
    .build()
    .map_err(|e| ServeError::Tls {
        field: "--client-ca",
        path: client_ca.display().to_string(),
        reason: e.to_string(),
    })?;
    let local_uri_sans = chain
        .first()
        .map(|der| CertFacts::parse(der).uri_sans)
        .unwrap_or_default();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls {
            field: "--tls-cert",
            path: cert_chain.display().to_string(),
            reason: e.to_string(),
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|e| ServeError::Tls {
            field: "--tls-key",
            path: key.display().to_string(),
            reason: e.to_string(),
        })?;
    if alpn_http {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Ok(Some(Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        local_uri_sans,
    }))
}

/// What Envoy's `Ssl::ConnectionInfo` reports about a certificate.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CertFacts {
    pub uri_sans: Vec<String>,
    pub dns_sans: Vec<String>,
    pub subject: String,
}

impl CertFacts {
    /// An unparsable certificate yields no facts: the plugin then sees a presented
    /// certificate without SANs, which spiffe-authz treats as unauthenticated or invalid,
    /// never as an identity.
    pub fn parse(der: &[u8]) -> Self {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return Self::default();
        };
        let mut facts = Self {
            subject: rfc2253(&cert),
            ..Self::default()
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => facts.uri_sans.push((*uri).to_string()),
                    GeneralName::DNSName(dns) => facts.dns_sans.push((*dns).to_string()),
                    _ => {}
                }
            }
        }
        facts
    }
}

/// Envoy prints subjects with OpenSSL's `XN_FLAG_RFC2253`: most specific RDN first, short
/// attribute names, `,` between RDNs and `+` inside one, RFC 2253 §2.4 escaping.
fn rfc2253(cert: &X509Certificate<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let name = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
                        .map(str::to_string)
                        .unwrap_or_else(|_| attr.attr_type().to_id_string());
                    let value = attr.as_str().map(escape_rfc2253).unwrap_or_default();
                    format!("{name}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn escape_rfc2253(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn pem_of(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// The downstream connection as the plugin sees it, from the real sockets and handshake.
pub(crate) fn connection_facts(
    peer: SocketAddr,
    local: SocketAddr,
    tls: Option<(&ServerConnection, &[String])>,
) -> Connection {
    let Some((session, local_uri_sans)) = tls else {
        return Connection::plaintext()
            .source(&peer.to_string())
            .destination(&local.to_string());
    };
    let leaf = session.peer_certificates().and_then(|c| c.first());
    let mut connection = match leaf {
        None => Connection::tls_without_client_certificate(),
        Some(der) => {
            let facts = CertFacts::parse(der);
            let mut c = Connection::mtls_without_uri_san()
                .peer_subject(&facts.subject)
                .peer_certificate_pem(&pem_of(der));
            for uri in &facts.uri_sans {
                c = c.peer_uri_san(uri);
            }
            for dns in &facts.dns_sans {
                c = c.peer_dns_san(dns);
            }
            c
        }
    };
    connection = connection
        .source(&peer.to_string())
        .destination(&local.to_string());
    for uri in local_uri_sans {
        connection = connection.local_uri_san(uri);
    }
    if let Some(version) = session.protocol_version() {
        let name = match version {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "unknown",
        };
        connection = connection.tls_version(name);
    }
    if let Some(sni) = session.server_name() {
        connection = connection.sni(sni);
    }
    connection
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2253 §2.4: `,+"\<>;` escaped anywhere, `#` and space at the start, space at the end.
    #[test]
    fn subject_values_are_escaped_as_rfc_2253_says() {
        let cases = [
            ("plain", "backend", "backend"),
            ("comma", "a,b", "a\\,b"),
            ("plus and quote", "a+\"b", "a\\+\\\"b"),
            ("leading hash", "#x", "\\#x"),
            ("leading and trailing space", " x ", "\\ x\\ "),
            ("hash later is fine", "x#", "x#"),
        ];
        for (name, value, want) in cases {
            assert_eq!(escape_rfc2253(value), want, "{name}");
        }
    }

    #[test]
    fn pem_wraps_der_at_64_columns_and_hashes_like_envoy() {
        let der = vec![7u8; 100];
        let pem = pem_of(&der);
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        // Envoy's digest is SHA-256 over the DER; the PEM round-trips to the same bytes.
        let digest = crate::pem::sha256_hex_of_first_certificate(&pem);
        use sha2::Digest;
        let want: String = sha2::Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, Some(want));
    }

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    /// envoy-properties.md: `connection.subject_peer_certificate` is RFC 2253, most specific
    /// RDN first (`CN=..,O=..`), `""` for Istio's empty-subject SVIDs; the URI SAN list is the
    /// certificate's, in order.
    #[test]
    fn certificate_facts_read_like_envoys_ssl_connection_info() {
        let mut pki = crate::certs::MeshPki::new("cluster.local", 1_700_000_000).unwrap();
        let ca = pki.intermediate("cluster1").unwrap();
        let svid = pki.workload(&ca, "demo", "frontend").unwrap();
        let two = pki
            .bad_leaf(&ca, crate::certs::BadLeaf::TwoUriSans)
            .unwrap();
        let dns = pki.bad_leaf(&ca, crate::certs::BadLeaf::DnsOnly).unwrap();
        let cases = [
            (
                "Istio SVID: empty subject, one URI SAN",
                der(&svid.pem.cert),
                CertFacts {
                    uri_sans: vec!["spiffe://cluster.local/ns/demo/sa/frontend".into()],
                    dns_sans: vec![],
                    subject: String::new(),
                },
            ),
            (
                "CA: RFC 2253 order, CN before O",
                der(&ca.pem.cert),
                CertFacts {
                    uri_sans: vec!["spiffe://cluster.local".into()],
                    dns_sans: vec![],
                    subject: "CN=Intermediate CA cluster1,O=cluster.local".into(),
                },
            ),
            (
                "two URI SANs: both kept, in order",
                der(&two.cert),
                CertFacts {
                    uri_sans: vec![
                        "spiffe://cluster.local/ns/default/sa/two-uri-sans".into(),
                        "spiffe://cluster.local/ns/kube-system/sa/admin".into(),
                    ],
                    dns_sans: vec![],
                    subject: String::new(),
                },
            ),
            (
                "DNS SAN only",
                der(&dns.cert),
                CertFacts {
                    uri_sans: vec![],
                    dns_sans: vec!["web.default.svc.cluster.local".into()],
                    subject: String::new(),
                },
            ),
            (
                "not a certificate: no facts",
                b"junk".to_vec(),
                CertFacts::default(),
            ),
        ];
        for (name, der, want) in cases {
            assert_eq!(CertFacts::parse(&der), want, "{name}");
        }
    }
}
