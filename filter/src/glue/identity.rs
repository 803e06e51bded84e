//! Fetching the peer-identity facts the configured sources need, and handing them to
//! `identity::establish`.

use crate::identity::{establish, IdentitySettings, IdentitySource, PeerFacts, PeerIdentity};

use super::facts::decode_bool;
use super::host::{Host, HostError};

/// `x-forwarded-client-cert`, which Envoy's HCM writes before the filter chain runs.
pub const XFCC_HEADER: &str = "x-forwarded-client-cert";

/// The connection-level identity facts as the host gave them. Owned, because they are cached
/// per connection and outlive the request that fetched them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionIdentityFacts {
    /// `connection.mtls`: a client certificate was presented.
    pub mtls: Option<bool>,
    /// `connection.uri_san_peer_certificate`: the FIRST URI SAN only.
    pub uri_san: Option<String>,
    /// `connection.peer_certificate`: URL-encoded PEM (newest Envoy only).
    pub peer_certificate: Option<String>,
}

impl ConnectionIdentityFacts {
    /// The borrowed form `identity::establish` takes, with this request's XFCC header.
    pub fn peer_facts<'a>(&'a self, xfcc: Option<&'a str>) -> PeerFacts<'a> {
        PeerFacts {
            mtls: self.mtls,
            uri_san: self.uri_san.as_deref(),
            dns_san: None,
            subject: None,
            peer_certificate: self.peer_certificate.as_deref(),
            xfcc,
        }
    }
}

/// Asks the host for what the configured sources need, and nothing more.
///
/// `connection.mtls` is always read: `false` means plaintext, and then no source may claim an
/// identity (a plaintext request's XFCC header is the client's own, i.e. forged). After a
/// `false` nothing else is fetched. Invalid UTF-8 is kept (lossily), never dropped: a URI SAN
/// or certificate the peer presented that is not text fails verification, so the peer is
/// invalid, not unauthenticated.
pub fn fetch_connection_identity<H: Host + ?Sized>(
    host: &H,
    sources: &[IdentitySource],
) -> Result<ConnectionIdentityFacts, HostError> {
    let mut facts = ConnectionIdentityFacts {
        mtls: host
            .property(&["connection", "mtls"])?
            .as_deref()
            .and_then(decode_bool),
        ..ConnectionIdentityFacts::default()
    };
    if facts.mtls == Some(false) {
        return Ok(facts);
    }
    let text = |bytes: Option<Vec<u8>>| {
        bytes
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    for source in sources {
        match source {
            IdentitySource::ConnectionAttributes => {
                facts.uri_san = text(host.property(&["connection", "uri_san_peer_certificate"])?);
            }
            IdentitySource::PeerCertificate => {
                facts.peer_certificate = text(host.property(&["connection", "peer_certificate"])?);
            }
            IdentitySource::Xfcc => {}
        }
    }
    Ok(facts)
}

/// The identity from the facts; `now` is the host clock, for certificate validity.
pub fn establish_identity(
    facts: &ConnectionIdentityFacts,
    xfcc: Option<&str>,
    settings: &IdentitySettings,
    now_unix_secs: u64,
) -> PeerIdentity {
    establish(&facts.peer_facts(xfcc), settings, now_unix_secs)
}

/// Whether establishing needs the clock: only certificate validity checks do.
pub fn needs_clock(sources: &[IdentitySource]) -> bool {
    sources
        .iter()
        .any(|s| matches!(s, IdentitySource::PeerCertificate | IdentitySource::Xfcc))
}
