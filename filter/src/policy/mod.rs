//! The Istio `AuthorizationPolicy` API as users write it, and Istio's admission validation.

pub mod model;

pub use model::*;
