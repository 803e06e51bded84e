//! PLACEHOLDER types of the identity module; the identity work fills these in.

use std::fmt;

/// A validated SPIFFE ID (`spiffe://<trust-domain>/<path>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    /// `<trust-domain><path>`, i.e. the ID without `spiffe://`: Istio's principal form.
    principal: String,
    trust_domain_len: usize,
}

impl SpiffeId {
    /// Istio principal: `<td>/ns/<ns>/sa/<sa>` (the ID without the `spiffe://` scheme).
    pub fn principal(&self) -> &str {
        &self.principal
    }
    pub fn trust_domain(&self) -> &str {
        self.principal.get(..self.trust_domain_len).unwrap_or_default()
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}", self.principal)
    }
}

/// Who the peer is, as far as this filter can prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    Verified(SpiffeId),
    /// No verified identity; the reason reaches the log and the decision.
    Unauthenticated(String),
}
