//! X.509-SVIDs for identity tests, built with rcgen. The same shape as host-sim's `certs`
//! module (which the filter cannot depend on), cut down to what the tests vary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

/// 2026-01-01T00:00:00Z: the host clock in these tests.
pub const NOW: u64 = 1_767_225_600;
pub const HOUR: i64 = 3600;

pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
}

/// A self-signed root CA for `cluster.local`.
pub fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "test root CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = at(NOW as i64 - 24 * HOUR);
    params.not_after = at(NOW as i64 + 365 * 24 * HOUR);
    Ca {
        issuer: Issuer::new(params, key),
    }
}

/// What a test leaf says; [`Leaf::svid`] is a valid X.509-SVID and tests change one thing.
#[derive(Clone)]
pub struct Leaf {
    pub uris: Vec<String>,
    pub dns: Vec<String>,
    /// Offsets from [`NOW`] in seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    pub key_usages: Vec<KeyUsagePurpose>,
    pub custom_extensions: Vec<CustomExtension>,
}

impl Leaf {
    pub fn svid(spiffe_id: &str) -> Leaf {
        Leaf {
            uris: vec![spiffe_id.to_owned()],
            dns: Vec::new(),
            not_before: -HOUR,
            not_after: 23 * HOUR,
            is_ca: false,
            key_usages: vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
            custom_extensions: Vec::new(),
        }
    }

    /// The PEM certificate, signed by `ca`.
    pub fn pem(&self, ca: &Ca) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.not_before = at(NOW as i64 + self.not_before);
        params.not_after = at(NOW as i64 + self.not_after);
        for uri in &self.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into().unwrap()));
        }
        for dns in &self.dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns.as_str().try_into().unwrap()));
        }
        params.is_ca = if self.is_ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        params.key_usages = self.key_usages.clone();
        params.custom_extensions = self.custom_extensions.clone();
        params.signed_by(&key, &ca.issuer).unwrap().pem()
    }
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

/// Percent-encoding as current Envoy writes `Cert=` (RFC 3986: all but unreserved).
pub fn url_encode(pem: &str) -> String {
    let mut out = String::new();
    for b in pem.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encoding as older Envoy wrote `Cert=`: only newline, space, '+', '/', '='.
pub fn url_encode_legacy(pem: &str) -> String {
    pem.replace('\n', "%0A")
        .replace(' ', "%20")
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}
