//! From host facts to a [`PeerIdentity`]: verified, or unauthenticated with a reason.

use super::api::{
    IdentitySettings, IdentitySource, InvalidPeerIdentity, PeerFacts, PeerIdentity,
    UnauthenticatedReason,
};
use super::svid::{self, SvidRules};
use super::xfcc;

/// Establishes who the downstream peer is: verified, unauthenticated (nothing presented) or
/// invalid (presented and failed verification).
///
/// - `connection.mtls == false` means no certificate was presented: unauthenticated, whatever
///   else the facts say (Envoy removes XFCC from plaintext requests in the modes where it is
///   trustworthy, so a header there is forged). `None` (a host without the attribute) lets the
///   sources decide: each needs certificate-derived data that only exists with a peer
///   certificate.
/// - Sources are tried in `settings.sources` order; the first that HAS data decides, whether
///   its data verifies or not. Falling through from a failed verification to a weaker source
///   would let a peer choose the check it passes, so a present but invalid certificate is
///   [`PeerIdentity::Invalid`] (the glue denies it), and so is a full certificate that is not
///   an X.509-SVID (no URI SAN included: X509-SVID §2). Only an XFCC element with neither
///   `URI` nor `Cert` is unauthenticated: Envoy verified that certificate in the handshake and
///   found no URI SAN, which the connection attributes report the same way (no
///   `uri_san_peer_certificate`).
/// - The trust domain must be the local one or an alias: Istio rejects other trust domains in
///   the handshake unless they are federated, which this filter does not model.
pub fn establish(
    facts: &PeerFacts<'_>,
    settings: &IdentitySettings,
    now_unix_secs: u64,
) -> PeerIdentity {
    if facts.mtls == Some(false) {
        return PeerIdentity::Unauthenticated(UnauthenticatedReason::PlaintextConnection);
    }
    let rules = SvidRules {
        trust_domain: &settings.trust_domain,
        trust_domain_aliases: &settings.trust_domain_aliases,
        now_unix_secs,
    };
    let no_peer_identity = || {
        PeerIdentity::Unauthenticated(UnauthenticatedReason::NoPeerIdentity {
            dns_san: present(facts.dns_san).map(str::to_owned),
        })
    };
    for &source in &settings.sources {
        let established = match source {
            IdentitySource::ConnectionAttributes => present(facts.uri_san)
                .map(|uri| certificate(source, svid::check_uri_san(uri, &rules))),
            IdentitySource::PeerCertificate => present(facts.peer_certificate)
                .map(|pem| certificate(source, svid::verify_url_encoded_pem(pem, &rules))),
            IdentitySource::Xfcc => {
                present(facts.xfcc).map(|header| match xfcc::peer_identity(header, &rules) {
                    Ok(id) => PeerIdentity::Verified(id),
                    Err(xfcc::XfccError::NoUri) => no_peer_identity(),
                    Err(error) => PeerIdentity::Invalid(InvalidPeerIdentity::Xfcc(error)),
                })
            }
        };
        if let Some(identity) = established {
            return identity;
        }
    }
    no_peer_identity()
}

/// Envoy returns an empty string for some absent values (the Rust SDK then yields `None`,
/// other SDKs an empty buffer): empty is absent.
fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

fn certificate(
    origin: IdentitySource,
    verified: Result<crate::identity::SpiffeId, svid::SvidError>,
) -> PeerIdentity {
    match verified {
        Ok(id) => PeerIdentity::Verified(id),
        Err(error) => PeerIdentity::Invalid(InvalidPeerIdentity::Certificate { origin, error }),
    }
}
