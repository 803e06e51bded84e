//! The identity types the glue uses: facts in, [`PeerIdentity`] out.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::spiffe_id::{SpiffeId, TrustDomain};
use super::svid::SvidError;
use super::xfcc::XfccError;

/// Who the peer is, as far as this filter can prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    Verified(SpiffeId),
    /// The peer presented no identity (plaintext, or a certificate without a SPIFFE ID):
    /// Istio's unauthenticated peer, which policies may still allow (`mtlsMode` PERMISSIVE).
    Unauthenticated(UnauthenticatedReason),
    /// The peer presented an identity and it failed verification. Never evaluated as
    /// unauthenticated: that would let an expired or doubly-named certificate dodge a DENY on
    /// its own principal, where Istio would have refused the handshake (expired) or matched
    /// every SAN. The glue denies such a peer before any policy runs.
    Invalid(InvalidPeerIdentity),
}

impl PeerIdentity {
    /// The Istio principal (`<td>/ns/<ns>/sa/<sa>`) of a verified peer.
    pub fn principal(&self) -> Option<&str> {
        match self {
            PeerIdentity::Verified(id) => Some(id.principal()),
            PeerIdentity::Unauthenticated(_) | PeerIdentity::Invalid(_) => None,
        }
    }

    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        match self {
            PeerIdentity::Verified(id) => Some(id),
            PeerIdentity::Unauthenticated(_) | PeerIdentity::Invalid(_) => None,
        }
    }

    /// Why the peer is unauthenticated; `None` for a verified or an invalid peer.
    pub fn reason(&self) -> Option<&UnauthenticatedReason> {
        match self {
            PeerIdentity::Unauthenticated(reason) => Some(reason),
            PeerIdentity::Verified(_) | PeerIdentity::Invalid(_) => None,
        }
    }

    /// Why the presented identity failed verification; `None` unless it did.
    pub fn invalid(&self) -> Option<&InvalidPeerIdentity> {
        match self {
            PeerIdentity::Invalid(invalid) => Some(invalid),
            PeerIdentity::Verified(_) | PeerIdentity::Unauthenticated(_) => None,
        }
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerIdentity::Verified(id) => write!(f, "{id}"),
            PeerIdentity::Unauthenticated(reason) => write!(f, "unauthenticated: {reason}"),
            PeerIdentity::Invalid(invalid) => write!(f, "invalid peer identity: {invalid}"),
        }
    }
}

/// Why a peer presented no identity. One line, for logs and decision explanations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnauthenticatedReason {
    /// `connection.mtls` is false: the peer presented no certificate.
    #[error("plaintext connection: the peer presented no certificate (connection.mtls is false)")]
    PlaintextConnection,
    /// No configured source had a SPIFFE ID to offer: nothing, or a certificate (or XFCC
    /// element) without a URI SAN, which names no SPIFFE identity to verify.
    #[error("no SPIFFE ID from the configured identity sources{}", dns_note(.dns_san))]
    NoPeerIdentity { dns_san: Option<String> },
}

/// Why a presented identity failed verification. One line, for logs and response details.
/// A source that had data decides: no weaker source is consulted after one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPeerIdentity {
    /// A certificate that is not a valid X.509-SVID for this mesh (expired, two URI SANs, a CA
    /// certificate, a foreign trust domain, ...).
    #[error("{origin}: {error}")]
    Certificate {
        origin: IdentitySource,
        error: SvidError,
    },
    /// An `x-forwarded-client-cert` header that is malformed or whose element fails a rule.
    #[error("xfcc: {0}")]
    Xfcc(XfccError),
    /// Several `x-forwarded-client-cert` header lines. Envoy keeps one value (it appends its
    /// element to it), so another line came from the client or a broken host, and which one
    /// Envoy appended to cannot be told.
    #[error(
        "xfcc: {lines} x-forwarded-client-cert header lines; Envoy sends one, so the others were \
         written by the client or a broken host"
    )]
    RepeatedXfcc { lines: usize },
}

fn dns_note(dns_san: &Option<String>) -> String {
    match dns_san {
        Some(dns) => format!(" (the peer certificate has DNS SAN {dns:?} but no URI SAN)"),
        None => String::new(),
    }
}

/// Where a peer identity may come from, tried in the configured order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentitySource {
    /// Envoy's `connection.uri_san_peer_certificate` (first URI SAN only) after `connection.mtls`.
    /// Every Envoy has it, but it cannot show a second URI SAN or the key usage.
    ConnectionAttributes,
    /// Envoy's `connection.peer_certificate` (URL-encoded PEM), checked as an X.509-SVID.
    /// Newest Envoy only; absent elsewhere, so the next source decides.
    PeerCertificate,
    /// The last element of `x-forwarded-client-cert`. Only safe when the HCM's
    /// `forward_client_cert_details` is `APPEND_FORWARD` or `SANITIZE_SET`; otherwise a client
    /// can forge the header. Never on by default.
    Xfcc,
}

impl IdentitySource {
    /// The default order: the full certificate where the host exposes it, then attributes.
    pub const DEFAULT_ORDER: [IdentitySource; 2] = [
        IdentitySource::PeerCertificate,
        IdentitySource::ConnectionAttributes,
    ];

    /// The name used in plugin configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentitySource::ConnectionAttributes => "connectionAttributes",
            IdentitySource::PeerCertificate => "peerCertificate",
            IdentitySource::Xfcc => "xfcc",
        }
    }
}

impl fmt::Display for IdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An identity source name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown identity source {0:?}: expected one of \"connectionAttributes\", \
     \"peerCertificate\", \"xfcc\""
)]
pub struct UnknownIdentitySource(pub String);

impl FromStr for IdentitySource {
    type Err = UnknownIdentitySource;

    fn from_str(name: &str) -> Result<IdentitySource, UnknownIdentitySource> {
        [
            IdentitySource::ConnectionAttributes,
            IdentitySource::PeerCertificate,
            IdentitySource::Xfcc,
        ]
        .into_iter()
        .find(|source| source.as_str() == name)
        .ok_or_else(|| UnknownIdentitySource(name.to_owned()))
    }
}

impl<'de> Deserialize<'de> for IdentitySource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Borrowed facts the host knows about the downstream connection (and, for XFCC, the request).
/// A `None` is "the host did not say", never "empty means yes".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerFacts<'a> {
    /// `connection.mtls`: the peer presented a certificate.
    pub mtls: Option<bool>,
    /// `connection.uri_san_peer_certificate`: the FIRST URI SAN only.
    pub uri_san: Option<&'a str>,
    /// `connection.dns_san_peer_certificate`: the first DNS SAN.
    pub dns_san: Option<&'a str>,
    /// `connection.subject_peer_certificate`, RFC 2253 form.
    pub subject: Option<&'a str>,
    /// `connection.peer_certificate`: URL-encoded PEM (newest Envoy only).
    pub peer_certificate: Option<&'a str>,
    /// The `x-forwarded-client-cert` request header.
    pub xfcc: Option<&'a str>,
}

/// What the mesh trusts and where identities may come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySettings {
    /// The local trust domain (Istio `meshConfig.trustDomain`, default `cluster.local`).
    pub trust_domain: TrustDomain,
    /// Trust domains accepted as the local one (Istio `meshConfig.trustDomainAliases`).
    pub trust_domain_aliases: Vec<TrustDomain>,
    /// Sources in the order they are tried; the first one with data decides.
    pub sources: Vec<IdentitySource>,
}

impl IdentitySettings {
    /// Settings for `trust_domain` with no aliases and the default sources.
    pub fn new(trust_domain: TrustDomain) -> IdentitySettings {
        IdentitySettings {
            trust_domain,
            trust_domain_aliases: Vec::new(),
            sources: IdentitySource::DEFAULT_ORDER.to_vec(),
        }
    }
}

impl Default for IdentitySettings {
    /// Istio's default trust domain `cluster.local`.
    fn default() -> IdentitySettings {
        IdentitySettings::new(TrustDomain::cluster_local())
    }
}
