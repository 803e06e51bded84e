//! Differential property test: random policies and requests, the compiled (indexed) engine
//! against the naive reference evaluator in `engine_reference/`. A seeded generator keeps
//! failures reproducible: the failing seed and case are printed.
//!
//! Values come from small pools so that rules collide with requests often, and rule counts go
//! up to a few dozen so that every index (exact/prefix/suffix principals, CIDRs, paths,
//! headers) and the scan list are exercised together.

// Tests state their expectations with unwrap/expect/panic; the workspace denies them only in
// the filter's own code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod engine_reference;
mod engine_support;

use engine_support::*;
use serde_json::{json, Value};
use spiffe_authz::engine::Engine;
use spiffe_authz::policy::AuthorizationPolicy;

/// xorshift64*: tiny, deterministic, good enough to pick from pools.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a>(&mut self, pool: &[&'a str]) -> &'a str {
        pool[self.below(pool.len())]
    }
    fn some(&mut self, pool: &[&str], max: usize) -> Vec<String> {
        let n = 1 + self.below(max);
        (0..n).map(|_| self.pick(pool).to_owned()).collect()
    }
}

const PRINCIPALS: &[&str] = &[
    "cluster.local/ns/foo/sa/alice",
    "cluster.local/ns/foo/sa/bob",
    "cluster.local/ns/bar/sa/alice",
    "cluster.local/ns/bar/sa/carol",
    "other.td/ns/foo/sa/alice",
];
const PRINCIPAL_VALUES: &[&str] = &[
    "cluster.local/ns/foo/sa/alice",
    "cluster.local/ns/foo/sa/bob",
    "cluster.local/ns/bar/sa/carol",
    "cluster.local/ns/foo/*",
    "cluster.local/*",
    "*/sa/alice",
    "*alice",
    "*",
    "other.td/ns/foo/sa/alice",
];
const NAMESPACES: &[&str] = &["foo", "bar", "ba*", "*", "*oo"];
const IPS: &[&str] = &["10.0.0.1", "10.0.1.7", "192.168.1.1", "2001:db8::1"];
const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "10.0.0.0/24",
    "10.0.1.7",
    "192.168.0.0/16",
    "2001:db8::/32",
    "0.0.0.0/0",
];
const PATHS: &[&str] = &[
    "/",
    "/ip",
    "/ip?x=1",
    "/api/v1/users",
    "/api/v2/admin",
    "/admin",
    "/admin/x.json",
    "/static/a.css",
    "/ip#frag",
];
const PATH_VALUES: &[&str] = &[
    "/ip",
    "/admin",
    "/api/*",
    "/admin*",
    "*.json",
    "*.css",
    "*",
    "/api/{*}/users",
    "/api/{**}",
    "/{*}",
];
const METHODS: &[&str] = &["GET", "POST", "DELETE"];
const METHOD_VALUES: &[&str] = &["GET", "POST", "P*", "*"];
const HOSTS: &[&str] = &["httpbin.foo", "HTTPBIN.foo:8000", "api.example.com"];
const HOST_VALUES: &[&str] = &["httpbin.foo", "*.example.com", "httpbin*", "*"];
const PORTS: &[&str] = &["8000", "9000", "80"];
const HEADER_VALUES: &[&str] = &["admin", "guest", "adm*", "*st", "*", "admin,guest"];
const HEADER_SENT: &[&str] = &["admin", "guest", "", "administrator"];
const SNIS: &[&str] = &["a.example", "b.example", "*.example", "*"];

fn source(rng: &mut Rng) -> Value {
    let mut s = serde_json::Map::new();
    let mut put = |rng: &mut Rng, key: &str, pool: &[&str]| {
        if rng.chance(25) {
            s.insert(key.into(), json!(rng.some(pool, 3)));
        }
    };
    put(rng, "principals", PRINCIPAL_VALUES);
    put(rng, "notPrincipals", PRINCIPAL_VALUES);
    put(rng, "namespaces", NAMESPACES);
    put(rng, "notNamespaces", NAMESPACES);
    put(rng, "ipBlocks", CIDRS);
    put(rng, "notIpBlocks", CIDRS);
    put(rng, "remoteIpBlocks", CIDRS);
    put(
        rng,
        "requestPrincipals",
        &["*", "https://issuer.example/alice"],
    );
    put(rng, "notRequestPrincipals", &["*"]);
    Value::Object(s)
}

fn operation(rng: &mut Rng) -> Value {
    let mut o = serde_json::Map::new();
    let mut put = |rng: &mut Rng, key: &str, pool: &[&str]| {
        if rng.chance(25) {
            o.insert(key.into(), json!(rng.some(pool, 3)));
        }
    };
    put(rng, "paths", PATH_VALUES);
    put(rng, "notPaths", PATH_VALUES);
    put(rng, "methods", METHOD_VALUES);
    put(rng, "notMethods", METHOD_VALUES);
    put(rng, "hosts", HOST_VALUES);
    put(rng, "notHosts", HOST_VALUES);
    put(rng, "ports", PORTS);
    put(rng, "notPorts", PORTS);
    Value::Object(o)
}

fn condition(rng: &mut Rng) -> Value {
    let (key, pool): (&str, &[&str]) = match rng.below(5) {
        0 | 1 => ("request.headers[x-role]", HEADER_VALUES),
        2 => ("source.ip", CIDRS),
        3 => ("destination.port", PORTS),
        _ => ("connection.sni", SNIS),
    };
    if rng.chance(70) {
        json!({"key": key, "values": rng.some(pool, 2)})
    } else {
        json!({"key": key, "notValues": rng.some(pool, 2)})
    }
}

fn rule(rng: &mut Rng) -> Value {
    let mut r = serde_json::Map::new();
    if rng.chance(70) {
        let n = 1 + rng.below(2);
        let froms: Vec<Value> = (0..n).map(|_| json!({"source": source(rng)})).collect();
        r.insert("from".into(), json!(froms));
    }
    if rng.chance(60) {
        let n = 1 + rng.below(2);
        let tos: Vec<Value> = (0..n)
            .map(|_| json!({"operation": operation(rng)}))
            .collect();
        r.insert("to".into(), json!(tos));
    }
    if rng.chance(30) {
        let n = 1 + rng.below(2);
        let whens: Vec<Value> = (0..n).map(|_| condition(rng)).collect();
        r.insert("when".into(), json!(whens));
    }
    Value::Object(r)
}

fn policies(rng: &mut Rng, max_rules: usize) -> Vec<AuthorizationPolicy> {
    let n = 1 + rng.below(4);
    (0..n)
        .map(|i| {
            let action = ["ALLOW", "ALLOW", "DENY", "AUDIT"][rng.below(4)];
            let ns = ["foo", "foo", "istio-system", "bar"][rng.below(4)];
            let mut spec = serde_json::Map::new();
            spec.insert("action".into(), json!(action));
            if rng.chance(20) {
                let app = ["httpbin", "other"][rng.below(2)];
                spec.insert("selector".into(), json!({"matchLabels": {"app": app}}));
            }
            if !rng.chance(10) {
                let k = rng.below(max_rules + 1);
                let rules: Vec<Value> = (0..k).map(|_| rule(rng)).collect();
                spec.insert("rules".into(), json!(rules));
            }
            let p = policy_in(ns, &format!("p{i}"), Value::Object(spec));
            if rng.chance(15) {
                dry_run(p)
            } else {
                p
            }
        })
        .collect()
}

fn request(rng: &mut Rng) -> Req {
    let mut r = req();
    if rng.chance(80) {
        r = r.principal(rng.pick(PRINCIPALS));
    }
    r = r
        .peer_ip(rng.pick(IPS))
        .client_ip(rng.pick(IPS))
        .port(rng.pick(PORTS).parse().unwrap())
        .method(rng.pick(METHODS))
        .path(rng.pick(PATHS))
        .host(rng.pick(HOSTS));
    // The host may not know an address (e.g. the socket peer behind x-forwarded-for).
    if rng.chance(10) {
        r.direct_remote_ip = None;
    }
    if rng.chance(10) {
        r.remote_ip = None;
    }
    if rng.chance(10) {
        r.destination_port = None;
    }
    if rng.chance(50) {
        r = r.sni(rng.pick(&["a.example", "b.example", ""]));
    }
    for _ in 0..rng.below(3) {
        r = r.header("x-role", rng.pick(HEADER_SENT));
    }
    if rng.chance(30) {
        r = r.jwt(
            "https://issuer.example/alice",
            json!({"iss": "https://issuer.example", "sub": "alice"}),
        );
    }
    if rng.chance(20) {
        r = r.tcp();
    }
    r
}

fn run(seed: u64, cases: usize, max_rules: usize, requests_per_case: usize) {
    let cfg = config();
    let mut rng = Rng(seed);
    for case in 0..cases {
        let ps = policies(&mut rng, max_rules);
        let (engine, _) = match Engine::compile(&ps, &cfg) {
            Ok(ok) => ok,
            Err(e) => panic!("seed {seed} case {case}: compile failed: {e:?}"),
        };
        for _ in 0..requests_per_case {
            let r = request(&mut rng);
            let got = r.decide(&engine).to_string();
            let want = engine_reference::decide(&ps, &cfg, &r);
            if got != want {
                let json = serde_json::to_string_pretty(&ps).unwrap();
                panic!(
                    "seed {seed} case {case}: engine and reference disagree\n  engine:    {got}\n  \
                     reference: {want}\n  request: {r:?}\n  policies: {json}"
                );
            }
        }
    }
}

#[test]
fn engine_agrees_with_reference_on_small_policy_sets() {
    run(0x5eed_0001, 400, 3, 25);
}

#[test]
fn engine_agrees_with_reference_on_larger_rule_sets() {
    run(0x5eed_0002, 60, 40, 50);
}

const NASTY: &[&str] = &[
    "*",
    "**",
    "*a*",
    "",
    "{*}",
    "{**}",
    "/{*}",
    "/a/{**}",
    "/{**}/{*}",
    "a{*}",
    "/%zz",
    "/é/ü",
    "\n",
    "a\nb",
    "[",
    "]",
    "x]",
    "[y",
    "/",
    "//",
    "?",
    "#",
    "cluster.local/ns/*/sa/*",
    "*/ns/",
    "10.0.0.0/33",
    "::/0",
    "10.0.0.1",
    "65536",
    "0",
    "-1",
    "GET",
    "ns",
    "/ns/",
    "\u{0}",
    "🦀",
];
const NASTY_KEYS: &[&str] = &[
    "request.headers[x]",
    "request.headers[]",
    "request.headers[a][b]",
    "request.auth.claims[a][b]",
    "request.auth.claims[]",
    "request.auth.claims",
    "source.ip",
    "remote.ip",
    "destination.ip",
    "destination.port",
    "connection.sni",
    "source.namespace",
    "source.principal",
    "source.serviceAccount",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "experimental.envoy.filters.a[b]",
    "nope",
    "",
];

fn nasty_list(rng: &mut Rng) -> Vec<String> {
    rng.some(NASTY, 3)
}

#[test]
fn nothing_panics_on_hostile_policies_and_requests() {
    let mut rng = Rng(0x5eed_0003);
    let cfg = config();
    let fields = [
        "principals",
        "notPrincipals",
        "namespaces",
        "notNamespaces",
        "serviceAccounts",
        "trustDomains",
        "ipBlocks",
        "notRemoteIpBlocks",
        "requestPrincipals",
    ];
    let ops = [
        "hosts", "notHosts", "methods", "paths", "notPaths", "ports", "notPorts",
    ];
    let mut compiled = 0;
    for _ in 0..2000 {
        let mut source = serde_json::Map::new();
        source.insert(rng.pick(&fields).into(), json!(nasty_list(&mut rng)));
        let mut operation = serde_json::Map::new();
        operation.insert(rng.pick(&ops).into(), json!(nasty_list(&mut rng)));
        let when = json!([{"key": rng.pick(NASTY_KEYS), "values": nasty_list(&mut rng)}]);
        let mut rule = serde_json::Map::new();
        if rng.chance(70) {
            rule.insert("from".into(), json!([{"source": source}]));
        }
        if rng.chance(70) {
            rule.insert("to".into(), json!([{"operation": operation}]));
        }
        if rng.chance(50) {
            rule.insert("when".into(), when);
        }
        let action = ["ALLOW", "DENY", "AUDIT", "CUSTOM"][rng.below(4)];
        let p = policy("p", json!({"action": action, "rules": [rule]}));
        let Ok((engine, _)) = spiffe_authz::engine::Engine::compile(&[p], &cfg) else {
            continue;
        };
        compiled += 1;
        for _ in 0..5 {
            let mut r = req()
                .path(rng.pick(NASTY))
                .method(rng.pick(NASTY))
                .host(rng.pick(NASTY))
                .header("x", rng.pick(NASTY))
                .header("x", rng.pick(NASTY));
            if rng.chance(50) {
                r = r.principal(rng.pick(NASTY));
            }
            if rng.chance(50) {
                r = r.sni(rng.pick(NASTY));
            }
            if rng.chance(30) {
                r = r.jwt(
                    rng.pick(NASTY),
                    json!({"a": {"b": [rng.pick(NASTY), 1, null]}, "sub": rng.pick(NASTY)}),
                );
            }
            if rng.chance(20) {
                r = r.tcp();
            }
            let _ = r.decide(&engine).to_string();
        }
    }
    assert!(
        compiled > 500,
        "most hostile policies still compile: {compiled}"
    );
}
