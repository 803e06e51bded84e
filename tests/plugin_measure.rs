//! Linear memory of the released `.wasm` in host-sim: reported at configure, bounded under
//! traffic. The `#[ignore]`d tests print the figures in BENCHMARKS.md "Plugin" (memory by rule
//! count; the same glue and engine in the `.wasm` vs natively):
//! `cargo test -p integration-tests --test plugin_measure -- --ignored --nocapture --test-threads 1`
//! (dependencies, wasmtime included, are optimised in the dev profile; for the wasm-vs-native
//! figure optimise the workspace crates too: add
//! `--config 'profile.dev.package.spiffe-authz.opt-level=3' --config
//! 'profile.dev.package.host-sim.opt-level=3'`).

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
    // host-sim bounds guest time per callback (Envoy does not): parsing and compiling 100,000
    // rules takes more than its default 2·10⁹ instructions.
    let host = Host::builder()
        .wasm_file(filter_wasm())
        .fuel_per_callback(1_000_000_000_000)
        .build()
        .unwrap();
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
    for rules in [1, 100, 10_000, 100_000] {
        let (mut p, kib, ms) = configured(rules);
        println!(
            "{rules:>6} rules: linear memory after configure {kib} KiB (canary + worker configure {ms:.0} ms)"
        );
        if rules >= 10_000 {
            // An update keeps the old engine serving until the new one is whole, so its peak
            // holds both; memory never shrinks, so the figure after it is that peak.
            let updated = memory_kib(&p.reconfigure(config(rules)).unwrap());
            println!("{rules:>6} rules: linear memory after an update to the same {updated} KiB");
        }
    }
}

#[test]
#[ignore = "measurement for BENCHMARKS.md; run with --ignored --nocapture"]
fn print_memory_under_traffic() {
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

/// The demo mix of `plugin_decisions.rs`, as (peer, method, path) triples.
const MIX: &[(Option<&str>, &str, &str)] = &[
    (
        Some("spiffe://cluster.local/ns/n1/sa/s1"),
        "GET",
        "/api/v1/x",
    ),
    (
        Some("spiffe://cluster.local/ns/n2/sa/s2"),
        "GET",
        "/api/v1/x",
    ),
    (Some("spiffe://cluster.local/ns/n3/sa/s3"), "GET", "/admin"),
    (None, "GET", "/api/v4/x"),
    (
        Some("spiffe://cluster.local/ns/n50/sa/s50"),
        "POST",
        "/api/v50/a/../b",
    ),
];

#[test]
#[ignore = "measurement for BENCHMARKS.md; run with --ignored --nocapture --test-threads 1"]
fn print_wasm_vs_native() {
    use spiffe_authz::glue::fake::FakeHost;
    use spiffe_authz::glue::Root;
    const N: usize = 200_000;
    let config = config(100);

    // Natively: the same glue and engine over a fake host that answers from memory.
    let hosts: Vec<FakeHost> = MIX
        .iter()
        .map(|(peer, method, path)| {
            let host = FakeHost::new();
            host.quiet.set(true);
            host.set_configuration(&config);
            match peer {
                Some(uri) => {
                    host.set_property("connection.mtls", vec![1]);
                    host.set_property("connection.uri_san_peer_certificate", *uri);
                }
                None => {
                    host.set_property("connection.mtls", vec![0]);
                }
            }
            host.set_request_headers(&[(":authority", "b"), (":path", path), (":method", method)]);
            host
        })
        .collect();
    let mut root = Root::new();
    assert!(root.on_configure(&hosts[0]));
    let started = Instant::now();
    let mut allowed = 0;
    for k in 0..N {
        let host = &hosts[k % hosts.len()];
        if root.new_http_stream().on_request_headers(host) == spiffe_authz::glue::Action::Continue {
            allowed += 1;
        }
    }
    let native = started.elapsed().as_secs_f64() * 1e9 / N as f64;

    // In the .wasm through host-sim, and a pass-through module through the same host for the
    // host's own share.
    let requests: Vec<(Connection, Request)> = MIX
        .iter()
        .map(|(peer, method, path)| {
            let c = match peer {
                Some(uri) => Connection::mtls(uri),
                None => Connection::plaintext(),
            };
            (c, Request::new(method, path).authority("b"))
        })
        .collect();
    let time = |plugin: &mut Plugin| {
        let started = Instant::now();
        let mut allowed = 0;
        for k in 0..N / 10 {
            let (c, r) = &requests[k % requests.len()];
            if plugin
                .http_request(c.clone().id(k as u64), r.clone())
                .unwrap()
                .allowed()
            {
                allowed += 1;
            }
        }
        (
            started.elapsed().as_secs_f64() * 1e9 / (N / 10) as f64,
            allowed,
        )
    };
    let (mut p, _, _) = configured(100);
    let (wasm, wasm_allowed) = time(&mut p);
    let floor_host = Host::builder()
        .wasm_file(integration_tests::fixture("pass_through"))
        .build()
        .unwrap();
    let mut floor = floor_host.configure("").unwrap();
    let (floor_ns, _) = time(&mut floor);
    assert_eq!(
        allowed * 10 / N,
        wasm_allowed * 100 / N,
        "same decisions both ways"
    );
    println!(
        "100 rules, {} request kinds: native glue+engine {native:.0} ns/request; in the .wasm via host-sim {wasm:.0} ns/request, pass-through floor {floor_ns:.0} ns; plugin share in wasm {:.0} ns; ratio wasm/native {:.2}",
        MIX.len(),
        wasm - floor_ns,
        (wasm - floor_ns) / native
    );
}
