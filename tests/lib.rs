//! Shared helpers for the integration tests: where the fixture modules and the filter's
//! `.wasm` are, building them when missing so `cargo test` alone works on a fresh checkout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

static BUILD: Mutex<()> = Mutex::new(());

/// A fixture module from `tests/fixtures/<crate>/`, e.g. `fixture("pass_through")`, built for
/// wasm32-wasip1 into `tests/fixtures/target/` (tests/run-all.sh does it up front).
pub fn fixture(name: &str) -> PathBuf {
    let dir = repo_root().join("tests/fixtures");
    let path = dir
        .join("target/wasm32-wasip1/release")
        .join(format!("{name}.wasm"));
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip1",
                "--target-dir",
                "target",
            ])
            .current_dir(&dir)
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building the fixtures in {} failed",
            dir.display()
        );
    }
    assert!(
        path.exists(),
        "{} missing after building the fixtures",
        path.display()
    );
    path
}

/// The filter as users deploy it (`cargo build -p spiffe-authz --target wasm32-wasip1
/// --profile wasm-release`), from `$SPIFFE_AUTHZ_WASM`, `$CARGO_TARGET_DIR` or `target/`.
pub fn filter_wasm() -> PathBuf {
    if let Ok(path) = std::env::var("SPIFFE_AUTHZ_WASM") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let path = target.join("wasm32-wasip1/wasm-release/spiffe_authz.wasm");
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "-p",
                "spiffe-authz",
                "--target",
                "wasm32-wasip1",
                "--profile",
                "wasm-release",
            ])
            .current_dir(repo_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building spiffe-authz.wasm failed");
    }
    path
}
