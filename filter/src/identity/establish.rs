//! From host facts to a [`PeerIdentity`]: verified, or unauthenticated with a reason.

use super::api::{
    IdentitySettings, IdentitySource, PeerFacts, PeerIdentity, UnauthenticatedReason,
};
use super::svid::{self, SvidRules};
use super::xfcc;

/// Establishes who the downstream peer is.
///
/// - `connection.mtls == false` means no certificate was presented: unauthenticated, whatever
///   else the facts say (Envoy removes XFCC from plaintext requests in the modes where it is
///   trustworthy, so a header there is forged). `None` (a host without the attribute) lets the
///   sources decide: each needs certificate-derived data that only exists with a peer
///   certificate.
/// - Sources are tried in `settings.sources` order; the first that HAS data decides, whether
///   its data verifies or not. Falling through from a failed verification to a weaker source
///   would let a peer choose the check it passes, so a present but invalid certificate is
///   unauthenticated (fail closed).
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
    for &source in &settings.sources {
        let verified = match source {
            IdentitySource::ConnectionAttributes => present(facts.uri_san)
                .map(|uri| svid::check_uri_san(uri, &rules).map_err(rejected_by(source))),
            IdentitySource::PeerCertificate => present(facts.peer_certificate)
                .map(|pem| svid::verify_url_encoded_pem(pem, &rules).map_err(rejected_by(source))),
            IdentitySource::Xfcc => present(facts.xfcc).map(|header| {
                xfcc::peer_identity(header, &rules).map_err(UnauthenticatedReason::InvalidXfcc)
            }),
        };
        match verified {
            Some(Ok(id)) => return PeerIdentity::Verified(id),
            Some(Err(reason)) => return PeerIdentity::Unauthenticated(reason),
            None => {}
        }
    }
    PeerIdentity::Unauthenticated(UnauthenticatedReason::NoPeerIdentity {
        dns_san: present(facts.dns_san).map(str::to_owned),
    })
}

/// Envoy returns an empty string for some absent values (the Rust SDK then yields `None`,
/// other SDKs an empty buffer): empty is absent.
fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

fn rejected_by(origin: IdentitySource) -> impl Fn(svid::SvidError) -> UnauthenticatedReason {
    move |error| UnauthenticatedReason::InvalidIdentity { origin, error }
}
