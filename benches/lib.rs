//! Benchmark helpers; the benchmarks themselves are the `[[bench]]` targets in Cargo.toml.
