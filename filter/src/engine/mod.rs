//! Compile validated policies once into indexed matchers; decide per request.
//!
//! API CONTRACT (shared by the engine, the glue and the tools; keep these names and shapes,
//! extend them freely):
//! - [`EngineConfig`]: what is known at configure time about this workload and mesh.
//! - [`Engine::compile`]: validated policies + config -> engine (+ warnings), or errors.
//! - [`Engine::needs`]: which request facts any compiled policy reads, so the glue asks the
//!   host only for those.
//! - [`Engine::decide`]: borrowed per-request facts -> [`Decision`], no heap allocation.
//!
//! One module per Istio concept: [`scope`](self) (which policies apply), `principal`,
//! `ip`, `operation`, `condition` (the serde model -> constraints), `rule` (from/to/when
//! combination), `index`, `compile`, `decide`, `explain`.

mod api;
mod compile;
mod condition;
mod decide;
mod explain;
mod glob;
mod index;
mod ip;
mod operation;
mod principal;
mod rule;
mod scope;
mod string_match;

pub use api::*;
