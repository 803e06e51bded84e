//! Shared helpers for the integration tests (see the `[[test]]` targets in Cargo.toml).
