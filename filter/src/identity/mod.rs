//! Peer identity: SPIFFE IDs from the mTLS peer certificate, verified, or unauthenticated.
//!
//! API CONTRACT (used by the glue; keep names and shapes, extend freely):
//! - [`establish`]: [`PeerFacts`] (borrowed host facts) + [`IdentitySettings`] + the host clock
//!   -> [`PeerIdentity`]: `Verified(SpiffeId)` or `Unauthenticated(UnauthenticatedReason)`;
//!   never a wrong identity.
//! - [`SpiffeId::principal`]: `<td>/<path>` as Istio principals are written.
//!
//! Modules: [`SpiffeId`]/[`TrustDomain`] (the SPIFFE ID standard), [`svid`] (X.509-SVID leaf
//! rules; chain signatures are Envoy's job), [`xfcc`] (the `x-forwarded-client-cert` header).

mod api;
mod establish;
mod spiffe_id;
pub mod svid;
pub mod xfcc;

pub use api::*;
pub use establish::establish;
pub use spiffe_id::{
    SpiffeId, SpiffeIdError, TrustDomain, TrustDomainError, MAX_SPIFFE_ID_LEN, MAX_TRUST_DOMAIN_LEN,
};
