//! `Engine::decide` allocates nothing: a counting global allocator watches the deciding
//! thread while decisions are made for every kind of request and outcome (allow, deny,
//! dry-run, audit, TCP, headers sent twice, JWT claims, dynamic metadata, indexed and scanned
//! rules), paths that normalization rewrites included: they are written into a reused
//! per-thread buffer, which only grows (during the warm-up here) to the longest such path.

// Tests state their expectations with unwrap/expect/panic; the workspace denies them only in
// the filter's own code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod engine_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use engine_support::*;
use serde_json::json;
use spiffe_authz::engine::{FilterMetadata, HttpRequest, MetadataValue, Request, RequestAuth};
use spiffe_authz::normalize::PathScratch;

struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator can run while thread-locals are being torn down.
    let watching = WATCHING.try_with(Cell::get).unwrap_or(false);
    if watching {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    WATCHING.with(|w| w.set(true));
    let out = f();
    WATCHING.with(|w| w.set(false));
    (out, ALLOCATIONS.with(Cell::get))
}

#[test]
fn the_counter_sees_allocations() {
    let (_, n) = allocations_in(|| vec![1u8; 64]);
    assert!(n >= 1, "the counting allocator must notice a Vec");
}

#[test]
fn decide_allocates_nothing() {
    let mut policies = vec![
        policy(
            "allow-principals",
            json!({"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/foo/sa/alice", "cluster.local/ns/web/*"]}}]}]}),
        ),
        policy(
            "allow-paths",
            json!({"rules": [{"to": [{"operation": {"methods": ["GET"], "paths": ["/api/*", "/ip", "/items/{*}/view", "*.css"]}}]}]}),
        ),
        policy(
            "allow-jwt",
            json!({"rules": [{"from": [{"source": {"requestPrincipals": ["https://issuer.example/*"]}}], "when": [{"key": "request.auth.claims[groups]", "values": ["ops"]}]}]}),
        ),
        policy(
            "deny-admin",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}, {"when": [{"key": "request.headers[x-token]", "values": ["evil"]}]}]}),
        ),
        policy(
            "deny-ips",
            json!({"action": "DENY", "rules": [{"from": [{"source": {"ipBlocks": ["192.168.0.0/16"], "namespaces": ["bad*"]}}]}]}),
        ),
        policy(
            "audit",
            json!({"action": "AUDIT", "rules": [{"when": [{"key": "request.headers[x-audit]", "values": ["*"]}]}]}),
        ),
        dry_run(policy(
            "dry-deny",
            json!({"action": "DENY", "rules": [{"from": [{"source": {"serviceAccounts": ["foo/bob"]}}]}]}),
        )),
        dry_run(policy(
            "dry-allow",
            json!({"rules": [{"to": [{"operation": {"hosts": ["*.example.com"]}}]}]}),
        )),
        dry_run(policy(
            "dry-audit",
            json!({"action": "AUDIT", "rules": [{"to": [{"operation": {"paths": ["/b"]}}]}]}),
        )),
        policy(
            "deny-lua-role",
            json!({"action": "DENY", "rules": [{"when": [{"key": "experimental.envoy.filters.http.lua[role]", "values": ["[banned]", "guest"]}]}]}),
        ),
    ];
    for i in 0..200 {
        policies.push(policy(
            &format!("bulk-{i}"),
            json!({"rules": [{"from": [{"source": {"principals": [format!("cluster.local/ns/n{i}/sa/s{i}")]}}]}]}),
        ));
    }
    let cfg = spiffe_authz::engine::EngineConfig {
        path_normalization: spiffe_authz::normalize::PathNormalization::MergeSlashes,
        ..config()
    };
    let (engine, _) = compile_with(&policies, &cfg);

    let headers = [
        ("x-token", "fine"),
        ("x-token", "evil"),
        ("x-audit", ""),
        ("user-agent", "curl"),
    ];
    let claims = json!({"iss": "https://issuer.example", "sub": "alice", "groups": ["dev", "ops"]});
    let audiences = ["web"];
    let auth = RequestAuth {
        principal: "https://issuer.example/alice",
        audiences: &audiences,
        presenter: None,
        claims: Some(&claims),
    };
    let roles = ["reader", "banned"];
    let metadata = [FilterMetadata {
        filter: "envoy.filters.http.lua",
        key: "role",
        value: MetadataValue::List(&roles),
    }];
    let http = |method, path, host| HttpRequest {
        method,
        path,
        host,
        headers: &headers,
    };
    let requests = [
        Request {
            principal: Some("cluster.local/ns/foo/sa/alice"),
            direct_remote_ip: Some("10.0.0.1".parse().unwrap()),
            http: Some(http("GET", "/ip?x=1", "httpbin.foo")),
            ..Request::default()
        },
        Request {
            principal: Some("cluster.local/ns/n150/sa/s150"),
            direct_remote_ip: Some("192.168.3.4".parse().unwrap()),
            http: Some(http("POST", "/admin/x", "api.example.com")),
            request_auth: Some(auth),
            ..Request::default()
        },
        Request {
            principal: Some("cluster.local/ns/foo/sa/bob"),
            http: Some(http("GET", "/items/42/view", "HTTPBIN.foo:8000")),
            request_auth: Some(auth),
            ..Request::default()
        },
        Request {
            principal: None,
            direct_remote_ip: Some("2001:db8::1".parse().unwrap()),
            destination_port: Some(8000),
            ..Request::default()
        },
        Request {
            http: Some(http("GET", "/static/x.css", "h")),
            ..Request::default()
        },
        Request {
            http: Some(http("GET", "/bad#fragment", "h")),
            ..Request::default()
        },
        // Rewritten by normalization: dot segments (BASE), merged slashes, a decoded escape,
        // a parameter stripped from a dot segment; each takes several steps of one pass.
        Request {
            http: Some(http("GET", "/a/./../b?q=1", "h")),
            ..Request::default()
        },
        Request {
            http: Some(http("GET", "//api///x/%41%42/..;x=y/../admin", "h")),
            ..Request::default()
        },
        Request {
            http: Some(http("GET", "/items/\\x/%7e%2e%2E/view", "h")),
            filter_metadata: &metadata,
            ..Request::default()
        },
    ];
    // Warm up: lazily initialized statics (none expected) are not per-decision costs.
    for r in &requests {
        let _ = engine.decide(r);
    }
    for (i, r) in requests.iter().enumerate() {
        let (decision, n) = allocations_in(|| engine.decide(r));
        assert_eq!(n, 0, "request {i} allocated {n} times: {decision}");
    }
    // The rewritten paths were judged normalized (MERGE_SLASHES): `/b`, `/api/admin`; and the
    // metadata list was read.
    let (plain, _) = compile_with(
        &[
            policy(
                "deny-admin",
                json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/api/admin"]}}]}]}),
            ),
            policy(
                "deny-lua-role",
                json!({"action": "DENY", "rules": [{"when": [{"key": "experimental.envoy.filters.http.lua[role]", "values": ["[banned]"]}]}]}),
            ),
            dry_run(policy(
                "dry-audit",
                json!({"action": "AUDIT", "rules": [{"to": [{"operation": {"paths": ["/b"]}}]}]}),
            )),
        ],
        &cfg,
    );
    let said = |i: usize| plain.decide(&requests[i]).to_string();
    assert_eq!(
        said(6),
        // No metadata told for it: the DENY on it fails closed.
        "deny: denied by foo/deny-lua-role rule 0; dry-run audit: foo/dry-audit rule 0"
    );
    assert_eq!(said(7), "deny: denied by foo/deny-admin rule 0");
    assert_eq!(said(8), "deny: denied by foo/deny-lua-role rule 0");

    // A caller-owned buffer works the same, and is all a rewritten path needs once grown.
    let mut scratch = PathScratch::default();
    let _ = engine.decide_with(&requests[7], &mut scratch);
    let (decision, n) = allocations_in(|| engine.decide_with(&requests[7], &mut scratch));
    assert_eq!(n, 0, "decide_with allocated {n} times: {decision}");
    assert_eq!(decision, engine.decide(&requests[7]));
}

#[test]
fn a_fresh_buffer_is_what_a_rewritten_path_costs() {
    // The counter would see the rewrite if it went anywhere but the buffer: the first decision
    // on a fresh one grows it, the same decision again does not.
    let cfg = spiffe_authz::engine::EngineConfig {
        path_normalization: spiffe_authz::normalize::PathNormalization::Base,
        ..config()
    };
    let (engine, _) = compile_with(
        &[policy(
            "deny-admin",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}),
        )],
        &cfg,
    );
    let request = Request {
        http: Some(HttpRequest {
            method: "GET",
            path: "/x/../admin",
            host: "h",
            headers: &[],
        }),
        ..Request::default()
    };
    let mut scratch = PathScratch::default();
    let (first, grew) = allocations_in(|| engine.decide_with(&request, &mut scratch));
    assert!(grew >= 1, "the first rewrite grows the buffer");
    let (again, n) = allocations_in(|| engine.decide_with(&request, &mut scratch));
    assert_eq!(n, 0);
    assert_eq!(first.to_string(), "deny: denied by foo/deny-admin rule 0");
    assert_eq!(again, first);
}
