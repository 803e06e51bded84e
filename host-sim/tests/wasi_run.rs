#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code
//! `host-sim wasi-run` on tiny .wat command modules: argv, environment, stdout/stderr and the
//! exit code reach the guest and the shell the way a WASI preview1 command expects (the
//! preview1 `args_get`/`environ_get`/`fd_write`/`proc_exit` contracts of
//! WebAssembly/WASI `legacy/preview1/witx/wasi_snapshot_preview1.witx`); the library and the
//! binary are both exercised.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use host_sim::wasi_run::{Exit, WasiCommand};

/// Echoes argv[1..] to stdout and the environment to stderr, one entry per line (NULs become
/// newlines), then `proc_exit(argc - 1)`.
const ECHO: &str = r#"
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; 0: argc, 4: argv buffer size, 8: envc, 12: environ buffer size, 256: iovec, 264: nwritten,
  ;; 512: argv pointers, 1024: argv strings, 2048: environ pointers, 4096: environ strings.
  (func $lines (param $from i32) (param $end i32)
    (loop $next
      (if (i32.lt_u (local.get $from) (local.get $end))
        (then
          (if (i32.eqz (i32.load8_u (local.get $from)))
            (then (i32.store8 (local.get $from) (i32.const 10))))
          (local.set $from (i32.add (local.get $from) (i32.const 1)))
          (br $next)))))
  (func $print (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 256) (local.get $ptr))
    (i32.store (i32.const 260) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 256) (i32.const 1) (i32.const 264))))
  (func (export "_start")
    (local $argv_end i32) (local $env_end i32) (local $first i32)
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $args_get (i32.const 512) (i32.const 1024)))
    (drop (call $environ_sizes_get (i32.const 8) (i32.const 12)))
    (drop (call $environ_get (i32.const 2048) (i32.const 4096)))
    (local.set $argv_end (i32.add (i32.const 1024) (i32.load (i32.const 4))))
    (local.set $env_end (i32.add (i32.const 4096) (i32.load (i32.const 12))))
    (call $lines (i32.const 1024) (local.get $argv_end))
    (call $lines (i32.const 4096) (local.get $env_end))
    ;; argv[1] starts where argv[0]'s string ended; with no arguments print nothing.
    (local.set $first
      (select (i32.load (i32.const 516)) (local.get $argv_end)
        (i32.gt_u (i32.load (i32.const 0)) (i32.const 1))))
    (call $print (i32.const 1) (local.get $first) (i32.sub (local.get $argv_end) (local.get $first)))
    (call $print (i32.const 2) (i32.const 4096) (i32.sub (local.get $env_end) (i32.const 4096)))
    (call $proc_exit (i32.sub (i32.load (i32.const 0)) (i32.const 1)))))
"#;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn run(wat: &str, args: &[&str], env: &[(&str, &str)]) -> (Exit, String, String) {
    let (out, err) = (Captured::default(), Captured::default());
    let mut command = WasiCommand::from_bytes("echo.wat", wat)
        .args(args.iter().copied())
        .stdout(out.clone())
        .stderr(err.clone());
    for (k, v) in env {
        command = command.env(*k, *v);
    }
    let exit = command.run().unwrap();
    (exit, out.text(), err.text())
}

/// (args after argv[0], environment, exit code, stdout, stderr)
type EchoCase<'a> = (
    &'a [&'a str],
    &'a [(&'a str, &'a str)],
    i32,
    &'a str,
    &'a str,
);

#[test]
fn command_modules_see_argv_environment_and_report_their_exit_code() {
    // (args, env, exit, stdout, stderr): preview1 argv/environ are NUL-terminated strings;
    // proc_exit(n) is the process's exit status.
    let cases: &[EchoCase] = &[
        (&[], &[], 0, "", ""),
        (
            &["--test-threads=1", "name filter"],
            &[],
            2,
            "--test-threads=1\nname filter\n",
            "",
        ),
        (
            &["-q"],
            &[("RUST_TEST_THREADS", "1")],
            1,
            "-q\n",
            "RUST_TEST_THREADS=1\n",
        ),
        (
            &["a", "é", "c"],
            &[("A", "1"), ("B", "x=y")],
            3,
            "a\né\nc\n",
            "A=1\nB=x=y\n",
        ),
    ];
    for (args, env, code, stdout, stderr) in cases {
        let (exit, out, err) = run(ECHO, args, env);
        assert_eq!(exit, Exit::Code(*code), "args {args:?}");
        assert_eq!(out, *stdout, "args {args:?}");
        assert_eq!(err, *stderr, "env {env:?}");
    }
}

#[test]
fn returning_from_start_is_exit_zero_and_a_trap_is_reported_like_an_abort() {
    let returns = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;
    let (exit, _, _) = run(returns, &[], &[]);
    assert_eq!((exit.clone(), exit.code()), (Exit::Code(0), 0));

    // A Rust panic under panic=abort ends in `unreachable`: the runner must fail, not pass.
    let traps = r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;
    let (exit, _, _) = run(traps, &[], &[]);
    let Exit::Trap(message) = &exit else {
        panic!("expected a trap, got {exit:?}")
    };
    assert!(message.contains("unreachable"), "{message}");
    assert_eq!(exit.code(), 134);
}

#[test]
fn the_proxy_wasm_abi_links_but_traps_when_a_test_calls_it() {
    // Test binaries link the plugin's glue (and so import env.proxy_*) but must use a fake host.
    let calls_proxy_log = r#"(module
      (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start") (drop (call $log (i32.const 2) (i32.const 0) (i32.const 0)))))"#;
    let (exit, _, _) = run(calls_proxy_log, &[], &[]);
    let Exit::Trap(message) = exit else {
        panic!("expected a trap")
    };
    assert!(message.contains("proxy_log"), "{message}");
}

#[test]
fn modules_that_cannot_run_are_errors_naming_the_reason() {
    let cases: &[(&str, &str)] = &[
        (
            r#"(module (import "env" "getpid" (func)) (func (export "_start")))"#,
            "env.getpid",
        ),
        (r#"(module (memory (export "memory") 1))"#, "_start"),
        ("not wasm", "not a valid wasm module"),
    ];
    for (wat, expected) in cases {
        let error = WasiCommand::from_bytes("bad.wat", *wat)
            .run()
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}");
        assert!(error.starts_with("bad.wat: "), "{error}");
    }
}

fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("host-sim-wasi-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn the_cli_passes_arguments_through_and_exits_with_the_module_code() {
    // As CARGO_TARGET_WASM32_WASIP1_RUNNER: `host-sim wasi-run FILE ARGS...`, where ARGS are
    // libtest's own options and must not be taken for host-sim's.
    let echo = scratch("echo.wat", ECHO);
    let out = Command::new(env!("CARGO_BIN_EXE_host-sim"))
        .args(["wasi-run", echo.to_str().unwrap(), "--nocapture", "-q", "x"])
        .env_clear()
        .env("RUST_BACKTRACE", "1")
        .env("NOT_PASSED", "secret")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "--nocapture\n-q\nx\n");
    // Only the listed variables reach the guest.
    assert_eq!(String::from_utf8_lossy(&out.stderr), "RUST_BACKTRACE=1\n");

    let traps = scratch(
        "trap.wat",
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_host-sim"))
        .args(["wasi-run", traps.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(134));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("trap.wat: trapped:"), "{stderr}");
}
