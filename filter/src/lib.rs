//! spiffe-authz: Istio `AuthorizationPolicy` semantics on SPIFFE workload identities.
//!
//! Data flows one way: plugin configuration bytes -> [`policy`] (parse, validate) ->
//! [`engine`] (compile once) -> per request, the glue collects host facts into an
//! [`engine::Request`] -> [`engine`] decides -> the glue continues, denies, counts and logs.
//! Only `glue` knows about proxy-wasm; everything else is plain Rust, testable natively.

pub mod engine;
pub mod identity;
pub mod normalize;
pub mod policy;
pub mod config;
pub mod glue;

// The proxy-wasm entry point: `_initialize` registers the root context factory. Without
// `proxy_wasm::main!` a wasip1 cdylib is built in the command model, which re-runs constructors
// around every call (proxy-wasm-rust-sdk 0.2.0 changelog).
#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    glue::proxy::register();
}}
