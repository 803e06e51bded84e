//! Linear memory of the released `.wasm` in host-sim: reported at configure, bounded under
//! traffic. The `#[ignore]`d test prints the figures in BENCHMARKS.md "Plugin":
//! `cargo test -p integration-tests --test plugin_memory -- --ignored --nocapture` (dependencies,
//! wasmtime included, are optimised in the dev profile).

use std::time::Instant;

use host_sim::{Connection, Host, LogEntry, Plugin, Request};
use integration_tests::filter_wasm;

/// `rules` ALLOW rules, 100 per policy (Istio allows at most 512 rules in one policy): rule i
/// allows `cluster.local/ns/n<i>/sa/s<i>` on `/api/v<i>/*`.
fn config(rules: usize) -> String {
    let rule = |i: usize| {
        format!(
            r#"{{"from": [{{"source": {{"principals": ["cluster.local/ns/n{i}/sa/s{i}"]}}}}],
                "to": [{{"operation": {{"paths": ["/api/v{i}/*"]}}}}]}}"#
        )
    };
    let policies: Vec<String> = (0..rules)
        .step_by(100)
        .map(|start| {
            let rules: Vec<String> = (start..rules.min(start + 100)).map(rule).collect();
            format!(
                r#"{{"metadata": {{"name": "p{start}", "namespace": "demo"}}, "spec": {{"rules": [{}]}}}}"#,
                rules.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"workload": {{"namespace": "demo"}}, "policies": [{}]}}"#,
        policies.join(",")
    )
}

/// The `linear memory N KiB` the plugin logs when a configuration is accepted.
fn memory_kib(logs: &[LogEntry]) -> usize {
    logs.iter()
        .rev()
        .find_map(|l| {
            let rest = l.message.split("linear memory ").nth(1)?;
            rest.split(' ').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no linear memory figure in {logs:?}"))
}

fn configured(rules: usize) -> (Plugin, usize, f64) {
    let host = Host::builder().wasm_file(filter_wasm()).build().unwrap();
    let config = config(rules);
    let started = Instant::now();
    let plugin = host.configure(config).unwrap();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let kib = memory_kib(plugin.configure_logs());
    (plugin, kib, ms)
}

/// `n` requests over `connections` distinct connections, half allowed, half denied.
fn traffic(plugin: &mut Plugin, n: u64, rules: usize, connections: u64, first_id: u64) {
    for k in 0..n {
        let i = (k as usize) % rules;
        let peer = format!("spiffe://cluster.local/ns/n{i}/sa/s{i}");
        let path = if k % 2 == 0 {
            format!("/api/v{i}/x")
        } else {
            "/admin".to_string()
        };
        let out = plugin
            .http_request(
                Connection::mtls(&peer).id(first_id + k % connections),
                Request::get(&path),
            )
            .unwrap();
        assert_eq!(out.allowed(), k % 2 == 0, "request {k}");
        assert_eq!(out.vm_failure, None);
    }
}

#[test]
fn memory_does_not_grow_under_traffic() {
    let (mut p, _, _) = configured(100);
    // Warm up: fill the per-connection cache past its bound (1,024) and every allocator size
    // class the request path uses, then take the baseline at a reconfiguration (memory never
    // shrinks, so its size there is at least the peak so far).
    traffic(&mut p, 3_000, 100, 3_000, 1);
    let before = memory_kib(&p.reconfigure(config(100)).unwrap());
    traffic(&mut p, 20_000, 100, 5_000, 10_000);
    let after = memory_kib(&p.reconfigure(config(100)).unwrap());
    assert_eq!(
        after, before,
        "linear memory grew from {before} KiB to {after} KiB"
    );
}

#[test]
#[ignore = "measurement for BENCHMARKS.md; run with --ignored --nocapture"]
fn print_memory_figures() {
    for rules in [1, 100, 10_000] {
        let (_, kib, ms) = configured(rules);
        println!(
            "{rules:>6} rules: linear memory after configure {kib} KiB (canary + worker configure {ms:.0} ms)"
        );
    }
    let (mut p, _, _) = configured(100);
    traffic(&mut p, 10_000, 100, 2_000, 1);
    let before = memory_kib(&p.reconfigure(config(100)).unwrap());
    let started = Instant::now();
    traffic(&mut p, 1_000_000, 100, 100_000, 100_000);
    let elapsed = started.elapsed();
    let after = memory_kib(&p.reconfigure(config(100)).unwrap());
    println!(
        "1,000,000 requests (100,000 connections, 100 rules): linear memory {before} KiB -> {after} KiB; {:.0} ns/request through host-sim",
        elapsed.as_secs_f64() * 1e9 / 1e6
    );
}
