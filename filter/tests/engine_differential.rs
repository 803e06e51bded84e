//! Differential property test: random meshes, policy sets and requests, the compiled
//! (indexed) engine against the naive reference evaluator in `engine_reference/`, compared on
//! the whole decision line (verdict, deciding policy and rule, dry-run outcome, audit). A
//! seeded generator keeps failures reproducible: the seed, case and inputs are printed.
//!
//! Values come from small pools so that rules collide with requests often; the pools cover
//! every `Source` and `Operation` field and its `notX`, every condition key the engine
//! supports (`experimental.envoy.filters.*` metadata told, absent, of another kind or
//! unknown included), keys Istio admits but cannot translate, TCP connections, unknown
//! addresses, dry-run spellings, AUDIT, root namespaces and selectors, Gateway API gateways
//! and their targetRefs, trust-domain aliases and many policies. Values Istio admits with a
//! surprising meaning are drawn too: `spiffe://` principals, a `*` inside a value, IPv6 zones,
//! `from: []`, values holding a newline against `*`, paths with a `#fragment`.
//! How long: `SPIFFE_AUTHZ_DIFF_PAIRS` (default 1,000,000 in release, 100,000 in debug) and
//! `SPIFFE_AUTHZ_DIFF_SEED`.

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
use spiffe_authz::normalize::PathNormalization;
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

/// Peers: every trust domain the configurations below make local, alias or foreign.
const PRINCIPALS: &[&str] = &[
    "cluster.local/ns/foo/sa/alice",
    "cluster.local/ns/foo/sa/bob",
    "cluster.local/ns/bar/sa/alice",
    "cluster.local/ns/bar/sa/carol",
    "td.new/ns/foo/sa/alice",
    "td.new/ns/bar/sa/carol",
    "old.td/ns/foo/sa/bob",
    "other.td/ns/foo/sa/alice",
    // SPIFFE IDs of other shapes: Istio's namespace and service-account regexes read any
    // `/ns/<name>/` in the path, not a fixed position.
    "cluster.local/ns/foo/sa/alice/extra",
    "cluster.local/x/ns/foo/sa/bob",
    "cluster.local/ns/foo",
    "td.new/ns/bar/y/sa/carol",
    "cluster.local/ns/ns/foo/sa/x",
    "cluster.local/ns/foo/sa/",
];
const PRINCIPAL_VALUES: &[&str] = &[
    "cluster.local/ns/foo/sa/alice",
    "cluster.local/ns/foo/sa/bob",
    "cluster.local/ns/bar/sa/carol",
    "cluster.local/ns/foo/sa/*",
    "td.new/ns/foo/sa/alice",
    "old.td/ns/foo/sa/bob",
    "cluster.local/ns/foo/*",
    "cluster.local/*",
    "*/sa/alice",
    "*/ns/foo/sa/bob",
    "*alice",
    "*",
    "other.td/ns/foo/sa/alice",
    // Istio adds `spiffe://` itself (srcPrincipalGenerator), so these never match a peer.
    "spiffe://cluster.local/ns/foo/sa/alice",
    "spiffe://*",
    // A `*` inside a value is literal (matcher.StringMatcher checks a leading, then a
    // trailing `*` only).
    "cluster.local/ns/*/sa/alice",
    "*/ns/*/sa/bob",
];
const NAMESPACES: &[&str] = &["foo", "bar", "ba*", "*", "*oo", "f*", "f*o"];
const SERVICE_ACCOUNTS: &[&str] = &["foo/alice", "bar/carol", "alice", "bob", "bar/alice"];
const TRUST_DOMAINS: &[&str] = &["cluster.local", "td.new", "old.td", "other.td", "*", "*.td"];
const IPS: &[&str] = &[
    "10.0.0.1",
    "10.0.1.7",
    "192.168.1.1",
    "2001:db8::1",
    "fe80::1",
];
const LOCAL_IPS: &[&str] = &["10.0.0.2", "10.0.1.7", "2001:db8::2"];
const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "10.0.0.0/24",
    "10.0.1.7",
    "192.168.0.0/16",
    "2001:db8::/32",
    "0.0.0.0/0",
    // Istio admits a zone on a single IPv6 address and drops it (netip.PrefixFrom).
    "fe80::1%eth0",
];
/// Paths Envoy refuses before any filter (an empty or relative path, a fragment, a newline):
/// drawn 5% of the time, since they stop before the policies.
const INVALID_PATHS: &[&str] = &["", "ip", "/a\nb"];
const PATHS: &[&str] = &[
    "/",
    "/ip",
    "/ip?x=1",
    "/api/v1/users",
    "/api/v2/admin",
    "/api/v1/x/users",
    "/api/",
    "/api",
    "//users",
    "/a%20b/users",
    "/a b/users",
    "/admin",
    "/admin/x.json",
    "/static/a.css",
    // Istio's HCM strips the `#fragment` before any filter reads the path.
    "/ip#frag",
    "/api/v1/users#x",
    "/ip?x=1#y",
    "/admin#/../ip",
    // Dot segments and doubled slashes: what BASE and MERGE_SLASHES rewrite.
    "/api/./v1/users",
    "/api/v2/../v1/users",
    "/admin/..",
    "/./ip",
    "/static/../admin/x.json",
    "//api//v1/users",
    "/api/v1/users/.?x=/..",
    // Escaped dots and slashes: `%2e` is a dot to the canonicalizer, `%2F` / `%5C` are
    // unescaped only by DECODE_AND_MERGE_SLASHES.
    "/api/%2e%2e/admin",
    "/api/%2E/v1/users",
    "/%2e%2E/admin/x.json",
    "/api%2F..%2Fadmin",
    "/api/v1%2fusers",
    "/admin%5C..%5Cip",
    "/admin%5c..%5cip",
    "/ip?x=%2F..%2F",
    // Escaped unreserved characters are those characters (`/ad%6Din` is `/admin`).
    "/ad%6Din",
    "/%61pi/v1/users",
    "/static/%7ea.css",
    "/%41dmin",
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
    "/{**}/users",
    "/{*}/v1/{**}",
    "/api/*/users",
    "*/admin*",
];
const METHODS: &[&str] = &["GET", "POST", "DELETE", "get"];
const METHOD_VALUES: &[&str] = &["GET", "POST", "P*", "*", "*ET", "G*T"];
const HOSTS: &[&str] = &["httpbin.foo", "HTTPBIN.foo:8000", "api.example.com", ""];
const HOST_VALUES: &[&str] = &[
    "httpbin.foo",
    "*.example.com",
    "httpbin*",
    "*",
    "*:8000",
    "HTTPBIN.FOO",
    "*.example.*",
];
const PORTS: &[&str] = &["8000", "9000", "80"];
const HEADER_VALUES: &[&str] = &["admin", "guest", "adm*", "*st", "*", "admin,guest", "a*n*"];
const HEADER_SENT: &[&str] = &["admin", "guest", "", "administrator"];
const SNIS: &[&str] = &["a.example", "b.example", "*.example", "*", "a*"];
const REQUEST_PRINCIPAL_VALUES: &[&str] = &[
    "*",
    "https://issuer.example/alice",
    "https://issuer.example/*",
    "*/alice",
    "*.example/bob",
    "https://issuer.example/al*",
    "https://other.example/bob",
    // Istio extendedPrincipal: a leading `*` leaves the subject exact, a `*` inside is
    // literal, a value without `/` is one half.
    "*/al*",
    "*.example/*",
    "https://*/alice",
    "https://issuer.example/*e",
    "*ice",
    "https://issuer*",
];
const AUDIENCES: &[&str] = &["a1", "a2", "a*", "*", "*2"];
const PRESENTERS: &[&str] = &["web", "cli", "w*", "*"];
const GROUPS: &[&str] = &["admin", "dev", "ad*", "*", "*ev"];
/// `experimental.envoy.filters.<filter>[<key>]` keys: Istio cuts at the first `[`.
const METADATA_KEYS: &[(&str, &str, &str)] = &[
    (
        "experimental.envoy.filters.network.mysql_proxy[db.table]",
        "envoy.filters.network.mysql_proxy",
        "db.table",
    ),
    (
        "experimental.envoy.filters.http.jwt_authn[role]",
        "envoy.filters.http.jwt_authn",
        "role",
    ),
    // SplitN at the first `[`: one key `b][c`, not a path.
    (
        "experimental.envoy.filters.a[b][c]",
        "envoy.filters.a",
        "b][c",
    ),
];
/// `[v]` is a list matcher on `v` with every outer bracket trimmed (envoyFilterGenerator).
const METADATA_VALUES: &[&str] = &[
    "admin",
    "users",
    "ad*",
    "*min",
    "*",
    "[admin]",
    "[ad*]",
    "[*]",
    "[[admin]]",
    "[]",
    "[admin",
    "admin]",
];
const METADATA_STRINGS: &[&str] = &["admin", "users", "", "ad\nmin", "administrator", "[admin]"];
/// Keys Istio's validation admits (only the `a[b]` shape is checked) that its generators
/// cannot read: the ALLOW rule is dropped, elsewhere the condition ignored (checkError).
const UNTRANSLATABLE_KEYS: &[&str] = &[
    "request.headersX[x-role]",
    "request.auth.claimsX[groups]",
    "request.experimental.inline.headers[x-role]",
];

/// Each knob of a case: which Istio behaviour it exercises.
struct Profile {
    /// Most policies in one case (many policies: ordering by Envoy's generated name, the
    /// per-namespace and per-selector scope, lexicographic `p10` < `p2`).
    max_policies: usize,
    /// Most rules in one policy (every index and the scan list together; `rule[10]` sorts
    /// before `rule[2]` in Envoy's names).
    max_rules: usize,
    requests_per_case: usize,
}

/// The workload `foo` (labels `app: httpbin, version: v1`) under one of the mesh set-ups:
/// root namespace `istio-system` or a custom one, trust domain `cluster.local` or a migrated
/// one with aliases (istio.io MeshConfig `rootNamespace`, `trustDomain`,
/// `trustDomainAliases`).
fn mesh(rng: &mut Rng) -> spiffe_authz::engine::EngineConfig {
    let mut cfg = config();
    if rng.chance(30) {
        cfg.root_namespace = "mesh-root".into();
    }
    match rng.below(4) {
        0 => {
            cfg.trust_domain = "td.new".into();
            cfg.trust_domain_aliases = vec!["cluster.local".into(), "old.td".into()];
        }
        1 => {
            // `cluster.local` in a policy still means the local trust domain (Istio
            // `ReplaceTrustDomainAliases`), though no alias names it.
            cfg.trust_domain = "td.new".into();
            cfg.trust_domain_aliases = vec!["old.td".into()];
        }
        2 => cfg.trust_domain_aliases = vec!["old.td".into()],
        _ => {}
    }
    // Istio `meshConfig.pathNormalization` (BASE is Istio's default).
    cfg.path_normalization = match rng.below(5) {
        0 | 1 => PathNormalization::None,
        2 => PathNormalization::Base,
        3 => PathNormalization::MergeSlashes,
        _ => PathNormalization::DecodeAndMergeSlashes,
    };
    if rng.chance(25) {
        // A Gateway API gateway (Istio `ShouldAttachPolicy`): its targetRef policies
        // apply, its selector policies too (ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY).
        cfg.workload.labels.insert(
            "gateway.networking.k8s.io/gateway-name".into(),
            rng.pick(&["gw", "gw2"]).into(),
        );
    }
    cfg
}

fn put(rng: &mut Rng, m: &mut serde_json::Map<String, Value>, key: &str, pool: &[&str]) {
    if rng.chance(20) {
        m.insert(key.into(), json!(rng.some(pool, 3)));
    }
}

fn source(rng: &mut Rng) -> Value {
    let mut s = serde_json::Map::new();
    let fields: [(&str, &str, &[&str]); 7] = [
        ("principals", "notPrincipals", PRINCIPAL_VALUES),
        ("namespaces", "notNamespaces", NAMESPACES),
        ("serviceAccounts", "notServiceAccounts", SERVICE_ACCOUNTS),
        ("trustDomains", "notTrustDomains", TRUST_DOMAINS),
        ("ipBlocks", "notIpBlocks", CIDRS),
        ("remoteIpBlocks", "notRemoteIpBlocks", CIDRS),
        (
            "requestPrincipals",
            "notRequestPrincipals",
            REQUEST_PRINCIPAL_VALUES,
        ),
    ];
    for (yes, no, pool) in fields {
        put(rng, &mut s, yes, pool);
        put(rng, &mut s, no, pool);
    }
    Value::Object(s)
}

fn operation(rng: &mut Rng) -> Value {
    let mut o = serde_json::Map::new();
    let fields: [(&str, &str, &[&str]); 4] = [
        ("paths", "notPaths", PATH_VALUES),
        ("methods", "notMethods", METHOD_VALUES),
        ("hosts", "notHosts", HOST_VALUES),
        ("ports", "notPorts", PORTS),
    ];
    for (yes, no, pool) in fields {
        put(rng, &mut o, yes, pool);
        put(rng, &mut o, no, pool);
    }
    Value::Object(o)
}

fn condition(rng: &mut Rng) -> Value {
    let (key, pool): (&str, &[&str]) = match rng.below(21) {
        0 => ("request.headers[x-role]", HEADER_VALUES),
        1 => (
            "request.headers[:path]",
            &["/ip", "/ip?x=1", "/api/*", "*", "*=1", "*#frag", "/admin"],
        ),
        18 | 19 => (
            METADATA_KEYS[rng.below(METADATA_KEYS.len())].0,
            METADATA_VALUES,
        ),
        20 => (rng.pick(UNTRANSLATABLE_KEYS), HEADER_VALUES),
        2 => ("request.headers[X-Role]", HEADER_VALUES),
        3 => ("request.headers[:method]", METHOD_VALUES),
        4 => ("source.ip", CIDRS),
        5 => ("remote.ip", CIDRS),
        6 => ("destination.ip", CIDRS),
        7 => ("destination.port", PORTS),
        8 => ("connection.sni", SNIS),
        9 => ("source.principal", PRINCIPAL_VALUES),
        10 => ("source.namespace", NAMESPACES),
        11 => ("source.serviceAccount", SERVICE_ACCOUNTS),
        12 => ("request.auth.principal", REQUEST_PRINCIPAL_VALUES),
        13 => ("request.auth.audiences", AUDIENCES),
        14 => ("request.auth.presenter", PRESENTERS),
        15 => ("request.auth.claims[groups]", GROUPS),
        16 => ("request.auth.claims[realm][role]", GROUPS),
        _ => ("request.headers[:authority]", HOST_VALUES),
    };
    if rng.chance(70) {
        json!({"key": key, "values": rng.some(pool, 2)})
    } else {
        json!({"key": key, "notValues": rng.some(pool, 2)})
    }
}

fn rule(rng: &mut Rng) -> Value {
    let mut r = serde_json::Map::new();
    // `from: []` / `to: []`: proto JSON decoding leaves them unset (Istio model.go New),
    // so they constrain nothing.
    if rng.chance(3) {
        r.insert("from".into(), json!([]));
    } else if rng.chance(70) {
        let n = 1 + rng.below(2);
        let froms: Vec<Value> = (0..n)
            .map(|_| {
                // `from: [{}]`: an entry without a source matches any source.
                if rng.chance(5) {
                    json!({})
                } else {
                    json!({"source": source(rng)})
                }
            })
            .collect();
        r.insert("from".into(), json!(froms));
    }
    if rng.chance(3) {
        r.insert("to".into(), json!([]));
    } else if rng.chance(60) {
        let n = 1 + rng.below(2);
        let tos: Vec<Value> = (0..n)
            .map(|_| json!({"operation": operation(rng)}))
            .collect();
        r.insert("to".into(), json!(tos));
    }
    if rng.chance(35) {
        let n = 1 + rng.below(3);
        let whens: Vec<Value> = (0..n).map(|_| condition(rng)).collect();
        r.insert("when".into(), json!(whens));
    }
    Value::Object(r)
}

fn policies(rng: &mut Rng, p: &Profile) -> Vec<AuthorizationPolicy> {
    let n = 1 + rng.below(p.max_policies);
    (0..n)
        .map(|i| {
            let action = ["ALLOW", "ALLOW", "DENY", "AUDIT"][rng.below(4)];
            // The workload's namespace, both root namespaces (only one is the mesh's in a
            // given case) and a namespace that never applies.
            let ns = ["foo", "foo", "istio-system", "mesh-root", "bar"][rng.below(5)];
            let mut spec = serde_json::Map::new();
            if !rng.chance(5) {
                // No action is ALLOW (istio.io: "the default is ALLOW").
                spec.insert("action".into(), json!(action));
            }
            let attach = rng.below(100);
            if attach < 25 {
                let labels = match rng.below(5) {
                    0 => json!({"app": "httpbin"}),
                    1 => json!({"app": "other"}),
                    2 => json!({"app": "httpbin", "version": "v1"}),
                    3 => json!({"app": "httpbin", "version": "v2"}),
                    _ => json!({}),
                };
                spec.insert("selector".into(), json!({"matchLabels": labels}));
            } else if attach < 40 {
                // Only one of selector, targetRef, targetRefs (Istio validateOneOfSelectorType).
                // Every kind Istio's allowedTargetRefs admits; only a Gateway API `Gateway`
                // naming this gateway attaches to it (GatewayClass only to waypoints).
                let refs = [
                    json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}),
                    json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}),
                    json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw2"}),
                    json!({"group": "gateway.networking.k8s.io", "kind": "GatewayClass", "name": "gw"}),
                    json!({"kind": "Service", "name": "gw"}),
                    json!({"group": "networking.istio.io", "kind": "ServiceEntry", "name": "gw"}),
                ];
                let mut pick = || refs[rng.below(refs.len())].clone();
                if attach < 32 {
                    spec.insert("targetRef".into(), pick());
                } else {
                    let list: Vec<Value> = (0..2).map(|_| pick()).collect();
                    spec.insert("targetRefs".into(), json!(list));
                }
            }
            match rng.below(20) {
                // istio.io: no rules and `rules: []` match nothing.
                0 => {}
                1 => {
                    spec.insert("rules".into(), json!([]));
                }
                // `rules: [{}]` matches everything.
                2 => {
                    spec.insert("rules".into(), json!([{}]));
                }
                _ => {
                    let k = 1 + rng.below(p.max_rules);
                    let rules: Vec<Value> = (0..k).map(|_| rule(rng)).collect();
                    spec.insert("rules".into(), json!(rules));
                }
            }
            // Go strconv.ParseBool spellings, and ones it refuses (then Istio enforces).
            let dry = ["true", "1", "T", "false", "yes", "on"];
            let p = policy_in(ns, &format!("p{i}"), Value::Object(spec));
            if rng.chance(15) {
                with_annotation(p, "istio.io/dry-run", rng.pick(&dry))
            } else {
                p
            }
        })
        .collect()
}

/// Whether the reference's normalization is all Envoy's canonicalizer would change in `path`
/// under `option`: no spaces, non-ASCII or backslashes, and only the escapes it models
/// (unreserved characters in either case; `%2F` / `%5C` upper case, which BASE keeps; lower
/// case ones only where DECODE_AND_MERGE_SLASHES unescapes them first).
fn plain_path(path: &str, option: PathNormalization) -> bool {
    let modelled = |escape: &str| {
        let unreserved = u8::from_str_radix(escape.get(1..3).unwrap_or("zz"), 16)
            .is_ok_and(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c));
        let slash = ["%2F", "%5C"].iter().any(|k| escape.starts_with(k));
        let lower_slash = ["%2f", "%5c"].iter().any(|k| escape.starts_with(k));
        unreserved || slash || (lower_slash && option == PathNormalization::DecodeAndMergeSlashes)
    };
    path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && path.match_indices('%').all(|(i, _)| modelled(&path[i..]))
}

fn request(rng: &mut Rng, normalization: PathNormalization) -> Req {
    let mut r = req();
    if rng.chance(80) {
        r = r.principal(rng.pick(PRINCIPALS));
    }
    r = r
        .peer_ip(rng.pick(IPS))
        .client_ip(rng.pick(IPS))
        .dest_ip(rng.pick(LOCAL_IPS))
        .port(rng.pick(PORTS).parse().unwrap())
        .method(rng.pick(METHODS))
        .path(if rng.chance(5) {
            rng.pick(INVALID_PATHS)
        } else {
            loop {
                let p = rng.pick(PATHS);
                if normalization == PathNormalization::None || plain_path(p, normalization) {
                    break p;
                }
            }
        })
        .host(rng.pick(HOSTS));
    // The host may not know an address (e.g. the socket peer behind x-forwarded-for).
    if rng.chance(8) {
        r.direct_remote_ip = None;
    }
    if rng.chance(8) {
        r.remote_ip = None;
    }
    if rng.chance(8) {
        r.destination_ip = None;
    }
    if rng.chance(8) {
        r.destination_port = None;
    }
    if rng.chance(50) {
        r = r.sni(rng.pick(&["a.example", "b.example", ""]));
    }
    for _ in 0..rng.below(3) {
        let name = if rng.chance(80) { "x-role" } else { "x-other" };
        r = r.header(name, rng.pick(HEADER_SENT));
    }
    if rng.chance(35) {
        let (iss, sub) = [
            ("https://issuer.example", "alice"),
            ("https://issuer.example", "bob"),
            ("https://other.example", "bob"),
            // No subject: `*` requires both halves (Istio requestPrincipalGenerator).
            ("https://issuer.example", ""),
            // `*` is the regex `.+`, which RE2 never matches across a newline.
            ("https://issuer.example", "ali\nce"),
        ][rng.below(5)];
        let mut claims = json!({"iss": iss, "sub": sub});
        if rng.chance(60) {
            claims["aud"] = if rng.chance(50) {
                json!(rng.pick(&["a1", "a2", "", "a\n2"]))
            } else {
                json!(["a1", "a2"])
            };
        }
        if rng.chance(50) {
            claims["azp"] = json!(rng.pick(&["web", "cli", "", "w\neb"]));
        }
        if rng.chance(60) {
            claims["groups"] = if rng.chance(50) {
                json!(rng.pick(&["admin", "dev", "", "ad\nmin"]))
            } else {
                json!(["dev", "admin", 7])
            };
        }
        if rng.chance(40) {
            claims["realm"] = json!({"role": rng.pick(&["admin", "dev", "d\nev"])});
        }
        r = r.jwt(&format!("{iss}/{sub}"), claims);
    }
    // Dynamic metadata another filter wrote: a string, a list (by its strings), absent, a
    // number-like other kind, or unknown (the host could not tell: not listed).
    for &(_, filter, key) in METADATA_KEYS {
        let value = match rng.below(10) {
            0 => continue,
            1 => Meta::Absent,
            2 => Meta::Other,
            3..=6 => Meta::Str(rng.pick(METADATA_STRINGS).to_owned()),
            _ => Meta::List(
                (0..rng.below(3))
                    .map(|_| rng.pick(METADATA_STRINGS).to_owned())
                    .collect(),
            ),
        };
        r = r.metadata(filter, key, value);
    }
    if rng.chance(20) {
        r = r.tcp();
    }
    r
}

/// What the decisions of a run covered, so a generator that stopped reaching a branch
/// fails the test instead of passing vacuously.
#[derive(Debug, Default)]
struct Tally {
    pairs: u64,
    cases: u64,
    tcp: u64,
    allowed_by: u64,
    denied_by: u64,
    no_allow_matched: u64,
    no_allow_policies: u64,
    invalid_path: u64,
    dry_run: u64,
    audit: u64,
    /// Lines naming a rule with an `experimental.envoy.filters.*` condition.
    by_metadata_rule: u64,
    /// Lines naming a rule of a policy attached to the gateway by targetRef(s).
    by_gateway_policy: u64,
    /// Lines naming a rule whose untranslatable condition was ignored (DENY, AUDIT).
    by_untranslatable_rule: u64,
}

/// The rules a decision line names (`... by <ns>/<name> rule <i>`), to see which generated
/// features actually decided something.
fn named_rules<'p>(
    ps: &'p [AuthorizationPolicy],
    line: &str,
) -> Vec<(&'p AuthorizationPolicy, &'p spiffe_authz::policy::Rule)> {
    line.split(" by ")
        .skip(1)
        .filter_map(|rest| {
            let (key, tail) = rest.split_once(" rule ")?;
            let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
            let i: usize = digits.parse().ok()?;
            let (ns, name) = key.split_once('/')?;
            let p = ps
                .iter()
                .find(|p| p.metadata.namespace == ns && p.metadata.name == name)?;
            Some((p, p.spec.rules.as_ref()?.get(i)?))
        })
        .collect()
}

impl Tally {
    fn add(&mut self, ps: &[AuthorizationPolicy], r: &Req, line: &str) {
        self.pairs += 1;
        let named = named_rules(ps, line);
        let any = |f: &dyn Fn(&AuthorizationPolicy, &spiffe_authz::policy::Rule) -> bool| {
            u64::from(named.iter().any(|(p, rule)| f(p, rule)))
        };
        self.by_metadata_rule +=
            any(&|_, rule| rule.when.iter().any(|c| c.key.starts_with("experimental.")));
        self.by_gateway_policy +=
            any(&|p, _| p.spec.target_ref.is_some() || !p.spec.target_refs.is_empty());
        self.by_untranslatable_rule += any(&|_, rule| {
            rule.when
                .iter()
                .any(|c| UNTRANSLATABLE_KEYS.contains(&c.key.as_str()))
        });
        self.tcp += u64::from(r.tcp);
        let first = line.split(';').next().unwrap_or("");
        self.allowed_by += u64::from(first.starts_with("allow: allowed by"));
        self.denied_by += u64::from(first.starts_with("deny: denied by"));
        self.no_allow_matched += u64::from(first == "deny: no ALLOW policy matched");
        self.no_allow_policies += u64::from(first == "allow: no ALLOW policy applies");
        self.invalid_path += u64::from(first == "deny: request path cannot be normalized");
        self.dry_run += u64::from(line.contains("; dry-run: "));
        self.audit += u64::from(line.contains("; audit: "));
    }

    /// Every kind of outcome makes up at least 0.5% of the pairs.
    fn assert_covered(&self) {
        let floor = self.pairs / 200;
        for (what, n) in [
            ("tcp", self.tcp),
            ("allowed by a rule", self.allowed_by),
            ("denied by a rule", self.denied_by),
            ("no ALLOW policy matched", self.no_allow_matched),
            ("no ALLOW policy applies", self.no_allow_policies),
            ("invalid path", self.invalid_path),
            ("dry-run outcome", self.dry_run),
            ("audit", self.audit),
        ] {
            assert!(
                n >= floor,
                "the generator reached {what} {n} times: {self:?}"
            );
        }
        // Features rarer by design (a gateway workload, one key among twenty): each still
        // decides at least 0.1% of the pairs.
        for (what, n) in [
            ("a metadata rule deciding", self.by_metadata_rule),
            ("a gateway policy deciding", self.by_gateway_policy),
            (
                "an untranslatable rule deciding",
                self.by_untranslatable_rule,
            ),
        ] {
            assert!(
                n >= self.pairs / 1000,
                "the generator reached {what} {n} times: {self:?}"
            );
        }
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.replace('_', "").parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        }
        Err(_) => default,
    }
}

/// Decides `pairs` (policy set, request) pairs both ways; panics with the seed, case and
/// inputs of the first disagreement.
fn run(seed: u64, pairs: u64, profile: &Profile) -> Tally {
    let mut rng = Rng(seed.max(1));
    let mut tally = Tally::default();
    let mut case = 0u64;
    while tally.pairs < pairs {
        let cfg = mesh(&mut rng);
        let ps = policies(&mut rng, profile);
        let (engine, _) = match Engine::compile(&ps, &cfg) {
            Ok(ok) => ok,
            Err(e) => panic!("seed {seed:#x} case {case}: compile failed: {e:?}"),
        };
        for _ in 0..profile.requests_per_case {
            let r = request(&mut rng, cfg.path_normalization);
            let got = r.decide(&engine).to_string();
            let want = engine_reference::decide(&ps, &cfg, &r);
            if got != want {
                let json = serde_json::to_string_pretty(&ps).unwrap();
                panic!(
                    "seed {seed:#x} case {case}: engine and reference disagree\n  engine:    {got}\n  \
                     reference: {want}\n  request: {r:?}\n  mesh: {cfg:?}\n  policies: {json}"
                );
            }
            tally.add(&ps, &r, &got);
        }
        case += 1;
        tally.cases = case;
    }
    tally
}

/// At least a million pairs per run where CI runs it (release, `tests/run-all.sh`); a debug
/// build defaults to 100,000 so `cargo test` stays quick, a wasm build to 20,000. `SPIFFE_AUTHZ_DIFF_PAIRS` and
/// `SPIFFE_AUTHZ_DIFF_SEED` (decimal or 0x-hex) set a longer run or another seed.
#[test]
fn engine_agrees_with_reference_on_random_policy_sets() {
    // Inside wasm32-wasip1 (`tests/wasm-unit-tests.sh`) the point is the 32-bit build, not
    // the count.
    let default_pairs = if cfg!(target_family = "wasm") {
        20_000
    } else if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    };
    let pairs = env_or("SPIFFE_AUTHZ_DIFF_PAIRS", default_pairs);
    let seed = env_or("SPIFFE_AUTHZ_DIFF_SEED", 0x5eed_0001);
    let started = std::time::Instant::now();
    let profile = Profile {
        max_policies: 8,
        max_rules: 4,
        requests_per_case: 40,
    };
    let tally = run(seed, pairs, &profile);
    println!(
        "differential: seed {seed:#x}: {} pairs over {} policy sets agree ({:.1} s): {tally:?}",
        tally.pairs,
        tally.cases,
        started.elapsed().as_secs_f64()
    );
    tally.assert_covered();
}

/// Many policies with many rules each: the indexes and Envoy's name order under load.
#[test]
fn engine_agrees_with_reference_on_many_large_policies() {
    let seed = env_or("SPIFFE_AUTHZ_DIFF_SEED", 0x5eed_0001) ^ 0x2;
    let profile = Profile {
        max_policies: 30,
        max_rules: 40,
        requests_per_case: 100,
    };
    let tally = run(seed, 20_000, &profile);
    println!(
        "differential (many large policies): seed {seed:#x}: {} pairs over {} policy sets agree",
        tally.pairs, tally.cases
    );
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
    "experimental.envoy.filters.a[b][c]",
    "experimental.envoy.filters.[c]",
    "request.headersX[a]",
    "request.auth.claimsX[a]",
    "request.experimental.inline.headers[a]",
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
            if rng.chance(30) {
                let value = match rng.below(4) {
                    0 => Meta::Absent,
                    1 => Meta::Other,
                    2 => Meta::Str(rng.pick(NASTY).to_owned()),
                    _ => Meta::List(nasty_list(&mut rng)),
                };
                r = r.metadata(
                    rng.pick(&["envoy.filters.a", "envoy.filters."]),
                    rng.pick(&["b", "b][c", "c"]),
                    value,
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
