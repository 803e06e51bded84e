//! The root context's job: configure atomically, define counters, hand the configured plugin to
//! every stream.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::rc::Rc;

use crate::config::{ConfigError, LogLevel, PluginConfig};
use crate::engine::{Engine, EngineConfig, Needs, Warning, Workload};
use crate::identity::{IdentitySettings, PeerIdentity};

use super::facts::{decode_pairs, decode_str};
use super::host::{Host, HostError};
use super::http::HttpStream;
use super::identity::ConnectionIdentityFacts;
use super::tcp::TcpStream;

/// Every log line starts with this, so users can tell whose line it is (Envoy adds the
/// configured plugin name too, other hosts may not).
pub const LOG_PREFIX: &str = "spiffe-authz";

/// Counter names, shaped like Envoy's RBAC filter stats (`<prefix>rbac.allowed`, `denied`;
/// `docs/root/configuration/http/http_filters/rbac_filter.rst`). Envoy files proxy-wasm
/// metrics under its `wasmcustom` stats namespace.
pub const COUNTER_ALLOWED: &str = "spiffe_authz.rbac.allowed";
pub const COUNTER_DENIED: &str = "spiffe_authz.rbac.denied";
/// Shadow (dry-run) results are counted per RBAC filter, as Envoy counts them: each filter's
/// `shadow_allowed` / `shadow_denied` under `<prefix>rbac.<shadow_rules_stat_prefix>`
/// (`source/extensions/filters/common/rbac/utility.cc` `generateStats`), with the prefix Istio
/// gives each filter (`pilot/pkg/security/authz/builder/builder.go` `shadowRuleStatPrefix`):
/// none for the AUDIT filter, so its results are the plain `rbac.shadow_allowed` /
/// `rbac.shadow_denied` (an AUDIT filter's shadow result is always allowed).
pub const COUNTER_SHADOW_ALLOWED: &str = "spiffe_authz.rbac.shadow_allowed";
pub const COUNTER_SHADOW_DENIED: &str = "spiffe_authz.rbac.shadow_denied";
/// The DENY filter's shadow results (Istio's prefix `istio_dry_run_deny_`).
pub const COUNTER_DRY_RUN_DENY_SHADOW_ALLOWED: &str =
    "spiffe_authz.rbac.istio_dry_run_deny_shadow_allowed";
pub const COUNTER_DRY_RUN_DENY_SHADOW_DENIED: &str =
    "spiffe_authz.rbac.istio_dry_run_deny_shadow_denied";
/// The ALLOW filter's shadow results (Istio's prefix `istio_dry_run_allow_`).
pub const COUNTER_DRY_RUN_ALLOW_SHADOW_ALLOWED: &str =
    "spiffe_authz.rbac.istio_dry_run_allow_shadow_allowed";
pub const COUNTER_DRY_RUN_ALLOW_SHADOW_DENIED: &str =
    "spiffe_authz.rbac.istio_dry_run_allow_shadow_denied";
pub const COUNTER_AUDITED: &str = "spiffe_authz.rbac.audited";
pub const COUNTER_CONFIG_REJECTED: &str = "spiffe_authz.config_rejected";
/// Requests and connections denied because the peer presented an identity that failed
/// verification (also counted in `spiffe_authz.rbac.denied`).
pub const COUNTER_INVALID_PEER_IDENTITY: &str = "spiffe_authz.invalid_peer_identity";
/// Followed by `<namespace>.<name>.allowed` / `.denied`.
pub const COUNTER_POLICY_PREFIX: &str = "spiffe_authz.rbac.policy.";

/// One RBAC filter's shadow counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShadowCounters {
    pub allowed: Option<u32>,
    pub denied: Option<u32>,
}

/// Host metric ids; `None` when the host refused to define one (counting is then skipped,
/// deciding is not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub allowed: Option<u32>,
    pub denied: Option<u32>,
    /// The AUDIT filter's shadow results.
    pub shadow_audit: ShadowCounters,
    /// The DENY filter's shadow results.
    pub shadow_deny: ShadowCounters,
    /// The ALLOW filter's shadow results.
    pub shadow_allow: ShadowCounters,
    pub audited: Option<u32>,
    pub config_rejected: Option<u32>,
    pub invalid_peer_identity: Option<u32>,
}

impl Counters {
    pub fn define<H: Host + ?Sized>(host: &H) -> Counters {
        let define = |name: &str| match host.define_counter(name) {
            Ok(id) => Some(id),
            Err(e) => {
                host.log(
                    LogLevel::Warn,
                    &format!("{LOG_PREFIX}: counter {name} not defined: {e}"),
                );
                None
            }
        };
        let shadow = |allowed: &str, denied: &str| ShadowCounters {
            allowed: define(allowed),
            denied: define(denied),
        };
        Counters {
            allowed: define(COUNTER_ALLOWED),
            denied: define(COUNTER_DENIED),
            shadow_audit: shadow(COUNTER_SHADOW_ALLOWED, COUNTER_SHADOW_DENIED),
            shadow_deny: shadow(
                COUNTER_DRY_RUN_DENY_SHADOW_ALLOWED,
                COUNTER_DRY_RUN_DENY_SHADOW_DENIED,
            ),
            shadow_allow: shadow(
                COUNTER_DRY_RUN_ALLOW_SHADOW_ALLOWED,
                COUNTER_DRY_RUN_ALLOW_SHADOW_DENIED,
            ),
            audited: define(COUNTER_AUDITED),
            config_rejected: define(COUNTER_CONFIG_REJECTED),
            invalid_peer_identity: define(COUNTER_INVALID_PEER_IDENTITY),
        }
    }

    pub fn bump<H: Host + ?Sized>(host: &H, id: Option<u32>) {
        if let Some(id) = id {
            // A lost count must not fail a request.
            let _ = host.increment_counter(id, 1);
        }
    }
}

/// A configuration that passed every check, compiled. Immutable; streams hold an `Rc` to the
/// one that was current when they started, so a new configuration never changes a decision
/// half-way.
#[derive(Debug)]
pub struct Plugin {
    /// The configuration without its policies (they live compiled in `engine`).
    pub config: PluginConfig,
    pub engine: Engine,
    pub needs: Needs,
    /// Trust domains and sources for `identity::establish`, built once.
    pub identity: IdentitySettings,
    pub counters: Counters,
    /// Per-connection facts by connection id, when [`super::http::caches_connection_facts`]
    /// says so. The cache belongs to this configuration: facts established under another
    /// one (other trust domains or sources) are never reused, even by a stream that started
    /// before a configuration update.
    pub connections: RefCell<ConnectionCache>,
    /// Per-policy counter ids, defined on a policy's first decision (not at configure: with
    /// thousands of policies most never decide anything).
    /// `[denied, allowed]`, by `namespace/name`.
    policy_counters: RefCell<[HashMap<String, Option<u32>>; 2]>,
}

impl Plugin {
    /// Counts a decision by `policy` (`namespace/name`) under
    /// `spiffe_authz.rbac.policy.<namespace>.<name>.{allowed,denied}`, the shape of Envoy's
    /// per-policy RBAC stats.
    pub fn count_policy<H: Host + ?Sized>(&self, host: &H, policy: &str, allowed: bool) {
        let index = usize::from(allowed);
        let known = self
            .policy_counters
            .borrow()
            .get(index)
            .and_then(|ids| ids.get(policy).copied());
        let id = match known {
            Some(id) => id,
            None => {
                let name = format!(
                    "{COUNTER_POLICY_PREFIX}{}.{}",
                    policy.replace('/', "."),
                    if allowed { "allowed" } else { "denied" }
                );
                let id = host.define_counter(&name).ok();
                if let Some(ids) = self.policy_counters.borrow_mut().get_mut(index) {
                    ids.insert(policy.to_string(), id);
                }
                id
            }
        };
        Counters::bump(host, id);
    }

    /// Logs `message` if `level` passes the configured `logLevel`.
    pub fn log<H: Host + ?Sized>(&self, host: &H, level: LogLevel, message: &str) {
        if level >= self.config.log_level {
            host.log(level, &format!("{LOG_PREFIX}: {message}"));
        }
    }
}

/// Facts that do not change during a connection, as fetched for the first request on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFacts {
    /// The identity from the connection alone (a request's XFCC may still replace it).
    /// Always established, whatever the policies read: a presented identity that fails
    /// verification is denied before any policy.
    pub peer: PeerIdentity,
    pub identity_facts: ConnectionIdentityFacts,
    pub destination: Option<SocketAddr>,
    pub sni: Option<String>,
}

/// Connection facts by Envoy connection id (`connection_id`, unique per Envoy process: a
/// process-wide counter, `ConnectionImpl::next_global_id_`, never reused while it runs).
/// HTTP filter contexts are per stream and proxy-wasm tells a filter nothing when a connection
/// closes, so the cache is bounded instead: when full it starts over, which costs a refetch,
/// never a wrong answer.
#[derive(Debug, Default)]
pub struct ConnectionCache {
    entries: IdMap<u64, Rc<ConnectionFacts>>,
}

/// A map keyed by ids the host hands out (context ids, connection ids). Hash maps rather
/// than `BTreeMap`s: each `BTreeMap` instantiation with removal cost about 9 KB of the
/// `.wasm`.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of an integer id. The host assigns the ids (Envoy counts them up), no
/// peer chooses them, so the map needs no keyed hash against collisions. The product's high
/// half, which depends on every bit of the id, is folded into the low bits the table indexes
/// by, so ids with a power-of-two stride still spread.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 << 8 | u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl ConnectionCache {
    pub const CAPACITY: usize = 1024;

    pub fn get(&self, id: u64) -> Option<Rc<ConnectionFacts>> {
        self.entries.get(&id).cloned()
    }

    pub fn insert(&mut self, id: u64, facts: Rc<ConnectionFacts>) {
        if self.entries.len() >= Self::CAPACITY {
            self.entries.clear();
        }
        self.entries.insert(id, facts);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The state of one root context.
#[derive(Debug, Default)]
pub struct Root {
    counters: Option<Counters>,
    plugin: Option<Rc<Plugin>>,
}

impl Root {
    pub fn new() -> Root {
        Root::default()
    }

    /// `on_configure`: parse, check and compile the new configuration; swap it in only if all
    /// of it is good. Every error is logged with its field path; `false` makes the host reject
    /// the configuration (Envoy keeps the old one or refuses to start).
    pub fn on_configure<H: Host + ?Sized>(&mut self, host: &H) -> bool {
        let counters = *self.counters.get_or_insert_with(|| Counters::define(host));
        match configure(host, counters) {
            Ok((plugin, warnings)) => {
                for w in &warnings {
                    plugin.log(host, LogLevel::Warn, &format!("configuration: {}", w.0));
                }
                plugin.log(
                    host,
                    LogLevel::Info,
                    &format!(
                        "configured: workload namespace {}, needs {:?}{}",
                        plugin
                            .config
                            .workload
                            .as_ref()
                            .map_or("?", |w| w.namespace.as_str()),
                        plugin.needs,
                        host.linear_memory_bytes()
                            .map(|b| format!(", linear memory {} KiB", b / 1024))
                            .unwrap_or_default()
                    ),
                );
                self.plugin = Some(Rc::new(plugin));
                true
            }
            Err(errors) => {
                for e in &errors {
                    host.log(
                        LogLevel::Error,
                        &format!("{LOG_PREFIX}: configuration rejected: {e}"),
                    );
                }
                host.log(
                    LogLevel::Error,
                    &format!(
                        "{LOG_PREFIX}: configuration rejected with {} error(s); {}",
                        errors.len(),
                        if self.plugin.is_some() {
                            "the previous configuration stays in force"
                        } else {
                            "no configuration is in force: every request is denied"
                        }
                    ),
                );
                Counters::bump(host, counters.config_rejected);
                false
            }
        }
    }

    pub fn plugin(&self) -> Option<&Rc<Plugin>> {
        self.plugin.as_ref()
    }

    pub fn new_http_stream(&self) -> HttpStream {
        HttpStream::new(self.plugin.clone())
    }

    pub fn new_tcp_stream(&self) -> TcpStream {
        TcpStream::new(self.plugin.clone())
    }

    /// Connections whose facts the configuration in force has cached.
    pub fn cached_connections(&self) -> usize {
        self.plugin
            .as_ref()
            .map_or(0, |plugin| plugin.connections.borrow().len())
    }
}

/// Configuration bytes -> compiled plugin, or every error found.
pub fn configure<H: Host + ?Sized>(
    host: &H,
    counters: Counters,
) -> Result<(Plugin, Vec<Warning>), Vec<ConfigError>> {
    let bytes = host.plugin_configuration().map_err(|e| {
        vec![ConfigError {
            field: "(configuration)".to_string(),
            message: format!("cannot read the plugin configuration: {e}"),
        }]
    })?;
    let mut config = PluginConfig::parse_owned(bytes)?;
    let workload = match config.workload.clone() {
        Some(w) => w,
        None => node_workload(host)?,
    };
    config.workload = Some(workload.clone());
    let engine_config = EngineConfig {
        root_namespace: config.root_namespace.clone(),
        trust_domain: config.trust_domain.clone(),
        trust_domain_aliases: config.trust_domain_aliases.clone(),
        workload,
        path_normalization: config.path_normalization,
    };
    let policies = std::mem::take(&mut config.policies);
    let (engine, warnings) = Engine::compile(&policies, &engine_config).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| ConfigError {
                field: "policies".to_string(),
                message: e.to_string(),
            })
            .collect::<Vec<_>>()
    })?;
    let needs = engine.needs();
    let identity = config.identity_settings();
    Ok((
        Plugin {
            config,
            engine,
            needs,
            identity,
            counters,
            connections: RefCell::new(ConnectionCache::default()),
            policy_counters: RefCell::new([HashMap::new(), HashMap::new()]),
        },
        warnings,
    ))
}

/// Istio's node metadata `NAMESPACE` and `LABELS` (`pkg/model/proxy.go`), read as
/// `xds.node.metadata.*` (Envoy >= 1.33) with the legacy `node.metadata.*` as fallback.
fn node_workload<H: Host + ?Sized>(host: &H) -> Result<Workload, Vec<ConfigError>> {
    let error = |field: &str, message: String| {
        vec![ConfigError {
            field: field.to_string(),
            message,
        }]
    };
    let read = |key: &str| -> Result<Option<Vec<u8>>, HostError> {
        match host.property(&["xds", "node", "metadata", key])? {
            Some(v) => Ok(Some(v)),
            None => host.property(&["node", "metadata", key]),
        }
    };
    let namespace = read("NAMESPACE").map_err(|e| {
        error(
            "workload",
            format!("cannot read node metadata NAMESPACE: {e}"),
        )
    })?;
    let namespace = match namespace.as_deref().and_then(decode_str) {
        Some(ns) if !ns.is_empty() => ns.to_string(),
        _ => {
            return Err(error(
                "workload",
                "not set, and the node metadata has no NAMESPACE (not an Istio sidecar?): set workload {namespace, labels} for a standalone Envoy".to_string(),
            ))
        }
    };
    let labels_bytes = read("LABELS")
        .map_err(|e| error("workload", format!("cannot read node metadata LABELS: {e}")))?;
    let mut labels = BTreeMap::new();
    if let Some(bytes) = labels_bytes {
        let pairs = decode_pairs(&bytes).ok_or_else(|| {
            error(
                "workload",
                "node metadata LABELS is not a map of strings".to_string(),
            )
        })?;
        for (k, v) in pairs {
            match (decode_str(k), decode_str(v)) {
                (Some(k), Some(v)) => {
                    labels.insert(k.to_string(), v.to_string());
                }
                _ => {
                    return Err(error(
                        "workload",
                        "node metadata LABELS holds a label that is not UTF-8".to_string(),
                    ))
                }
            }
        }
    }
    Ok(Workload { namespace, labels })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::IdHasher;

    /// The buckets a 1,024-slot table would use for 1,024 ids: consecutive ids (Envoy's
    /// context and connection counters) and ids with a stride of 8 or 1,024 must all spread,
    /// or the map degrades to probing.
    #[test]
    fn ids_spread_over_the_table_whatever_their_stride() {
        let hasher = BuildHasherDefault::<IdHasher>::default();
        for stride in [1u64, 8, 1024] {
            let buckets: BTreeSet<u64> = (0..1024u64)
                .map(|i| hasher.hash_one(i * stride) & 1023)
                .collect();
            assert!(
                buckets.len() > 600,
                "stride {stride}: {} buckets",
                buckets.len()
            );
        }
    }
}
