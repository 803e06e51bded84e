#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a failed step should fail the test loudly
//! The `host-sim` binary as a user runs it: JSON Lines in and out, errors that name the file
//! and line, YAML configs, help text.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

static BUILD: Mutex<()> = Mutex::new(());

fn fixture(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let path = dir.join(format!("target/wasm32-wasip1/release/{name}.wasm"));
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
            .unwrap();
        assert!(status.success());
    }
    path
}

fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("host-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn host_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host-sim"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn run_prints_one_outcome_per_request_in_order() {
    let wasm = fixture("http_headers");
    let requests = scratch(
        "order.jsonl",
        concat!(
            "# comments and blank lines are skipped\n\n",
            r#"{"name": "hello", "connection": {"mtls": true, "peerUriSan": "spiffe://cluster.local/ns/a/sa/b"}, "request": {"path": "/hello"}}"#,
            "\n",
            r#"{"note": "deny", "request": {"method": "POST", "path": "/deny", "headers": {"x-a": ["1", "2"]}}}"#,
            "\n",
            r#"{"request": {"path": "/ok", "headers": {"x-remove-me": "x"}}}"#,
            "\n"
        ),
    );
    let out = host_sim(&[
        "run",
        "--wasm",
        wasm.to_str().unwrap(),
        "--requests",
        requests.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines(&out);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0]["name"], "hello");
    assert_eq!(got[0]["localResponse"]["status"], 200);
    assert_eq!(got[0]["localResponse"]["body"], "Hello, World!\n");
    assert_eq!(got[0]["allowed"], false);
    assert_eq!(got[1]["name"], "deny");
    assert_eq!(got[1]["localResponse"]["status"], 403);
    assert_eq!(got[2]["localResponse"], serde_json::Value::Null);
    assert_eq!(got[2]["allowed"], true);
    assert_eq!(got[2]["connectionClosed"], false);
    assert_eq!(
        got[2]["requestHeaderChanges"]["set"]["x-wasm-seen"][0],
        "true"
    );
    assert_eq!(got[2]["requestHeaderChanges"]["removed"][0], "x-remove-me");
    assert!(got[2]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["message"] == "#4 completed /ok"));
}

#[test]
fn a_bad_request_line_is_reported_with_file_and_line() {
    let wasm = fixture("pass_through");
    let requests = scratch(
        "bad.jsonl",
        "{\"request\": {}}\n{\"request\": {\"paht\": \"/\"}}\n",
    );
    let out = host_sim(&[
        "run",
        "--wasm",
        wasm.to_str().unwrap(),
        "--requests",
        requests.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:2: unknown field `paht`"), "{err}");
    let requests = scratch(
        "badaddr.jsonl",
        "{\"connection\": {\"source\": \"10.0.0.1\"}, \"request\": {}}\n",
    );
    let out = host_sim(&[
        "run",
        "--wasm",
        wasm.to_str().unwrap(),
        "--requests",
        requests.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("badaddr.jsonl:1: connection.source: \"10.0.0.1\": expected ip:port"),
        "{err}"
    );
}

#[test]
fn yaml_configs_become_json_and_rejections_show_the_plugin_log() {
    let wasm = fixture("config_echo");
    let config = scratch("config.yaml", "greeting: hi\n");
    let requests = scratch("one.jsonl", "{\"request\": {}}\n");
    let args = |c: &Path| {
        host_sim(&[
            "run",
            "--wasm",
            wasm.to_str().unwrap(),
            "--config",
            c.to_str().unwrap(),
            "--requests",
            requests.to_str().unwrap(),
        ])
    };
    let out = args(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lines(&out)[0]["localResponse"]["body"],
        r#"{"greeting":"hi"}"#
    );
    let rejected = scratch("reject.json", "{\"please\": \"reject\"}");
    let out = args(&rejected);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("proxy_on_configure returned false"), "{err}");
    assert!(err.contains("configuration rejected"), "{err}");
}

#[test]
fn a_missing_module_is_named() {
    let out = host_sim(&[
        "run",
        "--wasm",
        "/nonexistent/x.wasm",
        "--requests",
        "/dev/null",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.wasm"));
}

#[test]
fn help_lists_every_subcommand() {
    let out = host_sim(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["run", "bench", "oci", "render", "check", "certs"] {
        assert!(help.contains(sub), "{sub} missing from --help:\n{help}");
    }
}

#[test]
fn callouts_are_answered_by_clusters_given_on_the_command_line() {
    let wasm = fixture("http_auth");
    let requests = scratch(
        "auth.jsonl",
        "{\"request\": {\"headers\": {\"x-user\": \"alice\"}}}\n",
    );
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--wasm",
            wasm.to_str().unwrap(),
            "--requests",
            requests.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        host_sim(&args)
    };
    let allowed = lines(&run(&["--cluster", "auth=200:alice-ok"]));
    assert_eq!(allowed[0]["allowed"], true);
    assert_eq!(
        allowed[0]["requestHeaderChanges"]["set"]["x-auth"][0],
        "alice-ok"
    );
    assert_eq!(allowed[0]["httpCalls"][0]["upstream"], "auth");
    let denied = lines(&run(&["--cluster", "auth=403"]));
    assert_eq!(denied[0]["localResponse"]["status"], 403);
    let unknown = lines(&run(&[]));
    assert_eq!(
        unknown[0]["localResponse"]["status"], 500,
        "unknown cluster: dispatch fails"
    );
}
