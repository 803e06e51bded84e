//! Compile validated policies once into indexed matchers; decide per request.
//!
//! API CONTRACT (shared by the engine, the glue and the tools; keep these names and shapes,
//! extend them freely):
//! - [`EngineConfig`]: what is known at configure time about this workload and mesh.
//! - [`Engine::compile`]: validated policies + config -> engine (+ warnings), or errors.
//! - [`Engine::needs`]: which request facts any compiled policy reads, so the glue asks the
//!   host only for those.
//! - [`Engine::decide`]: borrowed per-request facts -> [`Decision`], no heap allocation.

mod api;

pub use api::*;
