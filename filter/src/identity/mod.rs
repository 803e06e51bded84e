//! Peer identity: SPIFFE IDs from the mTLS peer certificate, verified, or unauthenticated.
