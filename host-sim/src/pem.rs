//! Just enough PEM to hash a peer certificate the way Envoy reports
//! `connection.sha256_peer_certificate_digest` (hex SHA-256 over the DER).

use base64::Engine as _;
use sha2::{Digest, Sha256};

pub(crate) fn sha256_hex_of_first_certificate(pem: &str) -> Option<String> {
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let start = pem.find(begin)? + begin.len();
    let stop = start + pem.get(start..)?.find(end)?;
    let body: String = pem
        .get(start..stop)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    Some(
        Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_the_der_between_the_markers() {
        // DER bytes "abc" -> SHA-256 of "abc" (FIPS 180-2 test vector).
        let pem = "-----BEGIN CERTIFICATE-----\nYWJj\n-----END CERTIFICATE-----\n";
        assert_eq!(
            sha256_hex_of_first_certificate(pem).as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(sha256_hex_of_first_certificate("not pem"), None);
    }
}
