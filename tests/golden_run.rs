//! Golden output of `host-sim run` (the JSON Lines reader and writer the CLI uses) for the
//! http_headers fixture. Regenerate with `UPDATE_GOLDEN=1 cargo test -p integration-tests
//! --test golden_run` and review the diff.

use host_sim::jsonl::{parse_lines, run_line};
use host_sim::Host;
use integration_tests::{fixture, repo_root};

#[test]
fn http_headers_run_output_matches_the_golden_file() {
    let dir = repo_root().join("tests/golden");
    let input = std::fs::read_to_string(dir.join("http_headers.requests.jsonl")).unwrap();
    let lines = parse_lines("http_headers.requests.jsonl", &input).unwrap();
    let host = Host::builder()
        .wasm_file(fixture("http_headers"))
        .node_metadata("foo", [("app", "httpbin")])
        .clock_at(1_700_000_000_000_000_000)
        .build()
        .unwrap();
    let mut plugin = host.configure("").unwrap();
    let mut output = String::new();
    for (_, line) in &lines {
        let out = run_line(&mut plugin, line).unwrap();
        let json = serde_json::to_string(&out).unwrap();
        output.push_str(&without_guest_frames(&json));
        output.push('\n');
    }
    let golden = dir.join("http_headers.out.jsonl");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &output).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    for (i, (got, want)) in output.lines().zip(want.lines()).enumerate() {
        assert_eq!(got, want, "line {} of {}", i + 1, golden.display());
    }
    assert_eq!(output.lines().count(), want.lines().count());
}

/// Guest frame names in trap reports, and the source line of a guest panic, depend on the
/// toolchain and on edits to the fixture; the golden file keeps the trap, the callback and the
/// panic message, not the frames or line numbers.
fn without_guest_frames(line: &str) -> String {
    let line = regex::Regex::new(r"(\.rs):\d+:\d+")
        .unwrap()
        .replace_all(line, "$1:LINE:COL");
    let line: &str = &line;
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find(" (at ") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        match after.find(')') {
            Some(end) => {
                out.push_str(" (at ...)");
                rest = &after[end + 1..];
            }
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    out
}
