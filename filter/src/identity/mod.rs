//! Peer identity: SPIFFE IDs from the mTLS peer certificate, verified, or unauthenticated.
//!
//! API CONTRACT (used by the glue; keep names and shapes, extend freely):
//! - [`PeerIdentity`]: `Verified(SpiffeId)` or `Unauthenticated(reason)`; never a wrong identity.
//! - [`SpiffeId::principal`]: `<td>/<path>` as Istio principals are written.

mod api;

pub use api::*;
