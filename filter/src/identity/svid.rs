//! X.509-SVID leaf checks (spiffe/spiffe `standards/X509-SVID.md`) on the peer certificate.
//!
//! What this module does NOT do: verify the certificate chain or its signatures. Envoy did that
//! during the TLS handshake against the mesh's root certificates (Istio configures the
//! listener's validation context with them); a filter running inside Envoy has neither the
//! trust bundle nor a reason to repeat that work. What Envoy does not check, and this module
//! does, is what makes a valid X.509 certificate a valid SVID for authentication: exactly one
//! URI SAN holding a SPIFFE ID with a workload path, a leaf (not CA) certificate whose key usage
//! allows signing but not certificate or CRL signing, a validity window containing `now`, and a
//! trust domain this mesh accepts.

use std::borrow::Cow;

use base64::Engine as _;
use der::asn1::AnyRef;
use der::oid::db::rfc5280::{ID_CE_BASIC_CONSTRAINTS, ID_CE_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME};
use der::oid::ObjectIdentifier;
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::time::Validity;

use super::spiffe_id::{SpiffeId, SpiffeIdError, TrustDomain};

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// What an SVID must satisfy besides its own X.509 rules.
#[derive(Debug, Clone, Copy)]
pub struct SvidRules<'a> {
    /// The local trust domain.
    pub trust_domain: &'a TrustDomain,
    /// Trust domains treated as the local one (Istio `trustDomainAliases`).
    pub trust_domain_aliases: &'a [TrustDomain],
    /// The host clock, in seconds since the Unix epoch.
    pub now_unix_secs: u64,
}

impl SvidRules<'_> {
    pub fn trusts(&self, id: &SpiffeId) -> bool {
        id.is_member_of(self.trust_domain)
            || self
                .trust_domain_aliases
                .iter()
                .any(|td| id.is_member_of(td))
    }
}

/// Why a peer certificate is not a valid X.509-SVID. Each variant is one rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SvidError {
    #[error("certificate is not valid percent-encoded UTF-8 text")]
    PercentEncoding,
    #[error("no \"{PEM_BEGIN}\" line: not a PEM certificate")]
    NotPem,
    #[error("PEM certificate is truncated: no \"{PEM_END}\" line")]
    TruncatedPem,
    #[error("unexpected text outside the PEM certificate: expected exactly one certificate")]
    TrailingData,
    #[error("PEM body is not valid base64: {0}")]
    Base64(base64::DecodeError),
    #[error("certificate is not valid DER: {0}")]
    Der(der::Error),
    #[error("certificate repeats extension {0} (RFC 5280 §4.2 allows one instance)")]
    DuplicateExtension(ObjectIdentifier),
    #[error("certificate extension {extension} is malformed: {error}")]
    BadExtension {
        extension: &'static str,
        error: der::Error,
    },
    #[error("certificate has no URI SAN, so no SPIFFE ID (X509-SVID §2)")]
    NoUriSan,
    #[error(
        "certificate has {count} URI SANs; an X.509-SVID must have exactly one (X509-SVID §2)"
    )]
    MultipleUriSans { count: usize },
    #[error("URI SAN {uri:?} is not a SPIFFE ID: {error}")]
    InvalidSpiffeId { uri: String, error: SpiffeIdError },
    #[error("{0} has no path: a trust domain ID never identifies a caller (X509-SVID §5.2)")]
    NoWorkloadPath(SpiffeId),
    #[error(
        "certificate is a CA certificate (basic constraints cA=true), not a leaf (X509-SVID §5.2)"
    )]
    CaCertificate,
    #[error("certificate has no key usage extension (X509-SVID §4.3: it must be set)")]
    MissingKeyUsage,
    #[error("key usage extension is not marked critical (X509-SVID §4.3)")]
    KeyUsageNotCritical,
    #[error("key usage lacks digitalSignature (X509-SVID §4.3: a leaf must set it)")]
    NoDigitalSignature,
    #[error("key usage has keyCertSign, which a leaf must not set (X509-SVID §5.2)")]
    KeyCertSign,
    #[error("key usage has cRLSign, which a leaf must not set (X509-SVID §5.2)")]
    CrlSign,
    #[error("certificate is not valid until {not_before} (unix seconds), now is {now}")]
    NotYetValid { not_before: u64, now: u64 },
    #[error("certificate expired at {not_after} (unix seconds), now is {now}")]
    Expired { not_after: u64, now: u64 },
    #[error("{id}: trust domain {trust_domain:?} is neither the local trust domain nor an alias")]
    UntrustedTrustDomain { id: SpiffeId, trust_domain: String },
}

/// Verifies a percent-encoded PEM certificate as Envoy writes it in XFCC `Cert=` and in the
/// `connection.peer_certificate` attribute. Older Envoy encodes only a few characters and
/// newer Envoy encodes per RFC 3986; full percent-decoding handles both. `+` is never a space
/// here: it is a base64 character, and Envoy encodes it as `%2B` anyway.
pub fn verify_url_encoded_pem(encoded: &str, rules: &SvidRules<'_>) -> Result<SpiffeId, SvidError> {
    let pem = url_decode(encoded)?;
    verify_pem(&pem, rules)
}

/// Verifies exactly one PEM certificate, whitespace around it allowed.
pub fn verify_pem(pem: &str, rules: &SvidRules<'_>) -> Result<SpiffeId, SvidError> {
    let (der, rest) = first_pem_certificate(pem)?;
    if !rest.trim().is_empty() {
        return Err(SvidError::TrailingData);
    }
    verify_der(&der, rules)
}

/// Verifies the leaf of a percent-encoded PEM chain (XFCC `Chain=`, leaf first).
pub fn verify_url_encoded_chain_leaf(
    encoded: &str,
    rules: &SvidRules<'_>,
) -> Result<SpiffeId, SvidError> {
    let pem = url_decode(encoded)?;
    let (der, _issuers) = first_pem_certificate(&pem)?;
    verify_der(&der, rules)
}

/// Verifies a DER certificate.
pub fn verify_der(der: &[u8], rules: &SvidRules<'_>) -> Result<SpiffeId, SvidError> {
    let leaf = LeafFields::read(der).map_err(SvidError::Der)?;
    let extensions = LeafExtensions::read(&leaf.extensions)?;

    let id = check_uri_san(extensions.single_uri_san()?, rules)?;
    if extensions.basic_constraints.is_some_and(|bc| bc.ca) {
        return Err(SvidError::CaCertificate);
    }
    let (key_usage, critical) = extensions.key_usage.ok_or(SvidError::MissingKeyUsage)?;
    if !critical {
        return Err(SvidError::KeyUsageNotCritical);
    }
    if key_usage.0.contains(KeyUsages::KeyCertSign) {
        return Err(SvidError::KeyCertSign);
    }
    if key_usage.0.contains(KeyUsages::CRLSign) {
        return Err(SvidError::CrlSign);
    }
    if !key_usage.digital_signature() {
        return Err(SvidError::NoDigitalSignature);
    }

    // RFC 5280 §4.1.2.5: the validity period includes both notBefore and notAfter.
    let validity = &leaf.validity;
    let now = rules.now_unix_secs;
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    if now < not_before {
        return Err(SvidError::NotYetValid { not_before, now });
    }
    if now > not_after {
        return Err(SvidError::Expired { not_after, now });
    }

    Ok(id)
}

/// The SPIFFE-level rules for the one URI SAN of a peer certificate, for sources that see only
/// the URI (Envoy's `connection.uri_san_peer_certificate`, XFCC `URI=`) as well as for full
/// certificates: a SPIFFE ID, with a workload path (X509-SVID §5.2), in a trusted trust domain.
pub fn check_uri_san(uri: &str, rules: &SvidRules<'_>) -> Result<SpiffeId, SvidError> {
    let id = SpiffeId::parse(uri).map_err(|error| SvidError::InvalidSpiffeId {
        uri: uri.to_owned(),
        error,
    })?;
    if id.is_trust_domain_id() {
        return Err(SvidError::NoWorkloadPath(id));
    }
    if !rules.trusts(&id) {
        return Err(SvidError::UntrustedTrustDomain {
            trust_domain: id.trust_domain().to_owned(),
            id,
        });
    }
    Ok(id)
}

/// The extensions the SVID rules read, each at most once.
struct LeafExtensions {
    uri_sans: Vec<String>,
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<(KeyUsage, bool)>,
}

impl LeafExtensions {
    fn read(extensions: &[Extension]) -> Result<LeafExtensions, SvidError> {
        let mut uri_sans = None;
        let mut basic_constraints = None;
        let mut key_usage = None;
        for ext in extensions {
            let value = ext.extn_value.as_bytes();
            if ext.extn_id == ID_CE_SUBJECT_ALT_NAME {
                let uris = uri_names(value).map_err(|error| SvidError::BadExtension {
                    extension: "subjectAltName",
                    error,
                })?;
                set_once(&mut uri_sans, uris, ext.extn_id)?;
            } else if ext.extn_id == ID_CE_BASIC_CONSTRAINTS {
                let bc = decode::<BasicConstraints>(value, "basicConstraints")?;
                set_once(&mut basic_constraints, bc, ext.extn_id)?;
            } else if ext.extn_id == ID_CE_KEY_USAGE {
                let ku = decode::<KeyUsage>(value, "keyUsage")?;
                set_once(&mut key_usage, (ku, ext.critical), ext.extn_id)?;
            }
        }
        Ok(LeafExtensions {
            uri_sans: uri_sans.unwrap_or_default(),
            basic_constraints,
            key_usage,
        })
    }

    fn single_uri_san(&self) -> Result<&str, SvidError> {
        match self.uri_sans.as_slice() {
            [] => Err(SvidError::NoUriSan),
            [uri] => Ok(uri),
            many => Err(SvidError::MultipleUriSans { count: many.len() }),
        }
    }
}

/// The parts of a certificate (RFC 5280 §4.1) the SVID rules read. Only these are decoded;
/// the rest is skipped as opaque TLVs: Envoy (BoringSSL) already parsed and verified the
/// whole certificate in the handshake, and decoding names, keys and signatures again would
/// only add code to the .wasm.
struct LeafFields {
    validity: Validity,
    extensions: Vec<Extension>,
}

impl LeafFields {
    fn read(der: &[u8]) -> der::Result<LeafFields> {
        let mut reader = SliceReader::new(der)?;
        let fields = reader.sequence(|certificate| {
            let fields = certificate.sequence(|tbs| {
                if tbs.peek_tag()? == context_tag(0, true) {
                    AnyRef::decode(tbs)?; // version
                }
                AnyRef::decode(tbs)?; // serialNumber
                AnyRef::decode(tbs)?; // signature
                AnyRef::decode(tbs)?; // issuer
                let validity = Validity::decode(tbs)?;
                AnyRef::decode(tbs)?; // subject
                AnyRef::decode(tbs)?; // subjectPublicKeyInfo
                let mut extensions = Vec::new();
                while !tbs.is_finished() {
                    // issuerUniqueID [1], subjectUniqueID [2], extensions [3] EXPLICIT
                    let field = AnyRef::decode(tbs)?;
                    if field.tag() == context_tag(3, true) {
                        extensions = Vec::<Extension>::from_der(field.value())?;
                    }
                }
                Ok(LeafFields {
                    validity,
                    extensions,
                })
            })?;
            AnyRef::decode(certificate)?; // signatureAlgorithm
            AnyRef::decode(certificate)?; // signatureValue
            Ok(fields)
        })?;
        reader.finish(fields)
    }
}

fn context_tag(number: u8, constructed: bool) -> Tag {
    Tag::ContextSpecific {
        constructed,
        number: TagNumber::new(number),
    }
}

/// The URI names of a SubjectAltName (RFC 5280 §4.2.1.6: `[6] IMPLICIT IA5String`); every
/// other name type is skipped undecoded.
fn uri_names(san: &[u8]) -> der::Result<Vec<String>> {
    let mut reader = SliceReader::new(san)?;
    let uris = reader.sequence(|names| {
        let mut uris = Vec::new();
        while !names.is_finished() {
            let name = AnyRef::decode(names)?;
            if name.tag() == context_tag(6, false) {
                let uri = der::asn1::Ia5StringRef::new(name.value())?;
                uris.push(uri.as_str().to_owned());
            }
        }
        Ok(uris)
    })?;
    reader.finish(uris)
}

fn decode<'a, T: Decode<'a>>(value: &'a [u8], extension: &'static str) -> Result<T, SvidError> {
    T::from_der(value).map_err(|error| SvidError::BadExtension { extension, error })
}

fn set_once<T>(slot: &mut Option<T>, value: T, oid: ObjectIdentifier) -> Result<(), SvidError> {
    if slot.is_some() {
        return Err(SvidError::DuplicateExtension(oid));
    }
    *slot = Some(value);
    Ok(())
}

fn url_decode(encoded: &str) -> Result<Cow<'_, str>, SvidError> {
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| SvidError::PercentEncoding)
}

/// The DER bytes of the first PEM `CERTIFICATE` block and the text after it. Text before the
/// block must be whitespace: Envoy writes nothing else, and anything else means the input is
/// not what we think it is.
fn first_pem_certificate(pem: &str) -> Result<(Vec<u8>, &str), SvidError> {
    let start = pem.find(PEM_BEGIN).ok_or(SvidError::NotPem)?;
    let (before, from_begin) = pem.split_at(start);
    if !before.trim().is_empty() {
        return Err(SvidError::NotPem);
    }
    let body_and_rest = from_begin.get(PEM_BEGIN.len()..).unwrap_or_default();
    let end = body_and_rest.find(PEM_END).ok_or(SvidError::TruncatedPem)?;
    let (body, from_end) = body_and_rest.split_at(end);
    let rest = from_end.get(PEM_END.len()..).unwrap_or_default();
    let base64_text: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64_text)
        .map_err(SvidError::Base64)?;
    Ok((der, rest))
}
