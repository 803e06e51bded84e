//! spiffe-authz: Istio `AuthorizationPolicy` semantics on SPIFFE workload identities.
//!
//! Data flows one way: plugin configuration bytes -> [`policy`] (parse, validate) ->
//! [`engine`] (compile once) -> per request, the glue collects host facts into an
//! [`engine::Request`] -> [`engine`] decides -> the glue continues, denies, counts and logs.
//! Only `glue` knows about proxy-wasm; everything else is plain Rust, testable natively.

pub mod config;
pub mod engine;
pub mod glue;
pub mod identity;
pub mod normalize;
pub mod policy;
