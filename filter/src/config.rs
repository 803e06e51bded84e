//! The plugin configuration: the JSON that Istio's `WasmPlugin.pluginConfig` (wrapped in a
//! `StringValue`) and Envoy's `PluginConfig.configuration` deliver to `on_configure`.
//!
//! Field names are camelCase like Istio's own APIs, and the object is strict: an unknown or
//! misspelt field is an error, never a silently ignored setting. Every field is checked and
//! every problem reported with its field path, so one rejected configuration tells the user all
//! that is wrong with it. Knobs that belong to the host (fail open/closed, VM reload) are not
//! here: they are `WasmPlugin.failStrategy` / Envoy `failure_policy`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::engine::Workload;
use crate::identity::{IdentitySettings, IdentitySource, TrustDomain};
use crate::normalize::PathNormalization;
use crate::policy::json::{self, missing_field, Json, ReadError, Streamed, UnknownFields};
use crate::policy::{parse_policies_json, AuthorizationPolicy, PolicyReader};

/// One problem with the plugin configuration, naming the field: `denyResponse.status: 99: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// JSON field path, e.g. `workload.labels` or `policies[2].spec.rules[0]`.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Istio's `PeerAuthentication` mTLS modes, as far as this filter can enforce them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MtlsMode {
    /// Requests without a verified peer identity are denied before any policy is evaluated.
    Strict,
    /// Plaintext peers are accepted as unauthenticated (Istio's default).
    #[default]
    Permissive,
}

/// Log levels, numbered like proxy-wasm's (`trace` = 0 ... `critical` = 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        })
    }
}

/// The HTTP answer to a denied request. Defaults to what Envoy's RBAC filter sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DenyResponse {
    #[serde(default = "default_deny_status")]
    pub status: u16,
    #[serde(default = "default_deny_body")]
    pub body: String,
    /// Extra response headers (names lower-case).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Envoy's RBAC filter answers `403` with body `RBAC: access denied`
/// (`source/extensions/filters/http/rbac/rbac_filter.cc`).
pub const DEFAULT_DENY_STATUS: u16 = 403;
pub const DEFAULT_DENY_BODY: &str = "RBAC: access denied";

fn default_deny_status() -> u16 {
    DEFAULT_DENY_STATUS
}
fn default_deny_body() -> String {
    DEFAULT_DENY_BODY.to_string()
}

impl Default for DenyResponse {
    fn default() -> Self {
        DenyResponse {
            status: DEFAULT_DENY_STATUS,
            body: DEFAULT_DENY_BODY.to_string(),
            headers: BTreeMap::new(),
        }
    }
}

/// The validated plugin configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    pub trust_domain: String,
    pub trust_domain_aliases: Vec<String>,
    pub root_namespace: String,
    /// `None`: take it from Istio's node metadata (`NAMESPACE`, `LABELS`) at configure time.
    pub workload: Option<Workload>,
    pub path_normalization: PathNormalization,
    pub mtls_mode: MtlsMode,
    /// Where the peer identity comes from, in order (default: the peer certificate where the
    /// host exposes it, then the connection attributes).
    pub identity_sources: Vec<IdentitySource>,
    pub deny_response: DenyResponse,
    pub policies: Vec<AuthorizationPolicy>,
    /// The least severe level the plugin logs at all.
    pub log_level: LogLevel,
    /// The level of the one line per denial (and per dry-run denial and audit match).
    pub denial_log_level: LogLevel,
    /// Debug knob: a response header carrying the decision.
    pub decision_header: Option<String>,
    /// Debug knob: the decision written to filter state `wasm.spiffe_authz.decision`
    /// (proxy-wasm has no call that writes Envoy dynamic metadata).
    pub decision_metadata: bool,
    /// Cache per-connection facts (peer identity, destination, SNI) by `connection_id`, so
    /// later requests on a connection skip those host calls and certificate checks. On by
    /// default, because it is safe where the filter is deployed:
    /// - Envoy numbers connections with one process-wide counter
    ///   (`ConnectionImpl::next_global_id_`), so two connections never share an id while the
    ///   process runs, and every worker's VM sees the same numbering; host-sim does the same.
    ///   An id reused for another connection would hand it the cached identity: that cannot
    ///   happen on Envoy, and a host that reuses ids must run with `false`.
    /// - The facts cannot change during a connection: Envoy does not renegotiate TLS, so the
    ///   peer certificate, SNI and destination are fixed at the handshake. An SVID that expires
    ///   while its connection is open stays accepted, as in Istio, which checks validity in
    ///   the handshake only. `x-forwarded-client-cert` is per request and never cached.
    /// - The cache belongs to one configuration (a new one starts empty), is bounded, and a
    ///   host without `connection_id` gets no caching at all.
    pub cache_connection_facts: bool,
}

pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            trust_domain: DEFAULT_TRUST_DOMAIN.to_string(),
            trust_domain_aliases: Vec::new(),
            root_namespace: DEFAULT_ROOT_NAMESPACE.to_string(),
            workload: None,
            path_normalization: PathNormalization::Base,
            mtls_mode: MtlsMode::Permissive,
            identity_sources: IdentitySource::DEFAULT_ORDER.to_vec(),
            deny_response: DenyResponse::default(),
            policies: Vec::new(),
            log_level: LogLevel::Info,
            denial_log_level: LogLevel::Info,
            decision_header: None,
            decision_metadata: false,
            cache_connection_facts: true,
        }
    }
}

const FIELDS: &[&str] = &[
    "trustDomain",
    "trustDomainAliases",
    "rootNamespace",
    "workload",
    "pathNormalization",
    "mtlsMode",
    "identitySources",
    "denyResponse",
    "policies",
    "logLevel",
    "denialLogLevel",
    "decisionHeader",
    "decisionMetadata",
    "cacheConnectionFacts",
];

impl PluginConfig {
    /// What `identity::establish` needs. The trust domains were validated by `parse`; one that
    /// somehow is not valid is left out (it then matches nothing), never a panic.
    pub fn identity_settings(&self) -> IdentitySettings {
        IdentitySettings {
            trust_domain: TrustDomain::new(&self.trust_domain)
                .unwrap_or_else(|_| TrustDomain::cluster_local()),
            trust_domain_aliases: self
                .trust_domain_aliases
                .iter()
                .filter_map(|td| TrustDomain::new(td).ok())
                .collect(),
            sources: self.identity_sources.clone(),
        }
    }

    /// Parses and checks the configuration bytes. `None` or empty bytes is an error: the
    /// policies are the reason the plugin exists, so their absence is a deployment mistake
    /// (an explicit `"policies": []` allows everything, as Istio does without policies).
    pub fn parse(bytes: Option<&[u8]>) -> Result<PluginConfig, Vec<ConfigError>> {
        let mut policies = None;
        let tree = Self::tree(bytes.unwrap_or_default(), &mut policies);
        Self::from_tree(tree?, policies)
    }

    /// [`PluginConfig::parse`], freeing the bytes as soon as they are read: a large
    /// configuration's text is then not alive beside its policies and their compiled form.
    pub fn parse_owned(bytes: Option<Vec<u8>>) -> Result<PluginConfig, Vec<ConfigError>> {
        let mut policies = None;
        let tree = Self::tree(bytes.as_deref().unwrap_or_default(), &mut policies);
        drop(bytes);
        Self::from_tree(tree?, policies)
    }

    /// The configuration's JSON tree, except a `policies` array: its items are read into
    /// `policies` as they are parsed, each freed before the next is parsed, so the tree of
    /// thousands of policies is never built whole beside the policies read from it.
    fn tree(bytes: &[u8], policies: &mut Option<PolicyReader>) -> Result<Json, Vec<ConfigError>> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(vec![ConfigError::new(
                "policies",
                "the plugin configuration is empty; it needs at least \"policies\" ([] allows every request)",
            )]);
        }
        json::parse_streaming(bytes, "policies", &mut |step| match step {
            Streamed::Start => *policies = Some(PolicyReader::new(true)),
            Streamed::Item(item) => {
                if let Some(reader) = policies.as_mut() {
                    reader.read_item(item);
                }
            }
        })
        .map_err(|e| {
            vec![ConfigError::new(
                "(configuration)",
                format!("not valid JSON: {e}"),
            )]
        })
    }

    fn from_tree(
        value: Json,
        streamed: Option<PolicyReader>,
    ) -> Result<PluginConfig, Vec<ConfigError>> {
        let Json::Object(object) = value else {
            return Err(vec![ConfigError::new(
                "(configuration)",
                format!("must be a JSON object, got {}", kind_of(&value)),
            )]);
        };
        Self::from_object(object, streamed)
    }

    /// `object` is sorted by key (see [`Json::Object`]), so unknown fields are reported in
    /// that order, as before.
    /// `streamed`: the items of a `policies` array, already read (see [`PluginConfig::tree`]).
    fn from_object(
        object: Vec<(String, Json)>,
        streamed: Option<PolicyReader>,
    ) -> Result<PluginConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut config = PluginConfig::default();
        let mut object = Json::Object(object);
        // Moved out now and converted last (where its errors have always been reported), so
        // the rest of the tree is freed before the policies are read.
        let policies = object.take("policies");

        if let Json::Object(entries) = &object {
            for (key, _) in entries {
                if !FIELDS.contains(&key.as_str()) {
                    errors.push(ConfigError::new(
                        key.clone(),
                        format!("unknown field, expected one of {}", FIELDS.join(", ")),
                    ));
                }
            }
        }
        // A JSON `null` counts as absent (proto3 JSON of a Struct may carry it); a wrong
        // shape becomes an error naming the top-level field.
        let take = |key: &str| match object.get(key) {
            None | Some(Json::Null) => None,
            Some(value) => Some((key.to_string(), value)),
        };
        fn read<T>(
            field: Option<(String, &Json)>,
            read: impl Fn(&Json) -> Result<T, ReadError>,
            errors: &mut Vec<ConfigError>,
        ) -> Option<T> {
            let (key, value) = field?;
            read(value)
                .map_err(|e| errors.push(ConfigError::new(key, e.message)))
                .ok()
        }

        if let Some(v) = read(take("trustDomain"), Json::read_string, &mut errors) {
            match TrustDomain::new(&v) {
                Ok(_) => config.trust_domain = v,
                Err(e) => errors.push(ConfigError::new("trustDomain", format!("{v:?}: {e}"))),
            }
        }
        if let Some(v) = read(take("trustDomainAliases"), Json::read_strings, &mut errors) {
            for (i, alias) in v.iter().enumerate() {
                if let Err(e) = TrustDomain::new(alias) {
                    errors.push(ConfigError::new(
                        format!("trustDomainAliases[{i}]"),
                        format!("{alias:?}: {e}"),
                    ));
                }
            }
            config.trust_domain_aliases = v;
        }
        if let Some(v) = read(take("rootNamespace"), Json::read_string, &mut errors) {
            if v.is_empty() {
                errors.push(ConfigError::new("rootNamespace", "must not be empty"));
            }
            config.root_namespace = v;
        }
        if let Some(v) = read(take("workload"), read_workload, &mut errors) {
            if v.namespace.is_empty() {
                errors.push(ConfigError::new("workload.namespace", "must not be empty"));
            }
            config.workload = Some(v);
        }
        if let Some(v) = read(take("pathNormalization"), Json::read_string, &mut errors) {
            match v.parse::<PathNormalization>() {
                Ok(n) => config.path_normalization = n,
                Err(e) => errors.push(ConfigError::new(
                    "pathNormalization",
                    format!("{e} (expected NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES)"),
                )),
            }
        }
        if let Some(v) = read(take("mtlsMode"), |v| v.read_enum(MTLS_MODES), &mut errors) {
            config.mtls_mode = v;
        }
        if let Some(v) = read(take("identitySources"), read_identity_sources, &mut errors) {
            if v.is_empty() {
                errors.push(ConfigError::new(
                    "identitySources",
                    "must name at least one source (connectionAttributes, peerCertificate, xfcc)",
                ));
            }
            for (i, s) in v.iter().enumerate() {
                if v.get(..i).is_some_and(|before| before.contains(s)) {
                    errors.push(ConfigError::new(
                        format!("identitySources[{i}]"),
                        format!("{:?} is listed twice", s.as_str()),
                    ));
                }
            }
            config.identity_sources = v;
        }
        if let Some(v) = read(take("denyResponse"), read_deny_response, &mut errors) {
            if !(400..=599).contains(&v.status) {
                errors.push(ConfigError::new(
                    "denyResponse.status",
                    format!(
                        "{}: a denial must answer with a 4xx or 5xx status",
                        v.status
                    ),
                ));
            }
            for name in v.headers.keys() {
                if let Err(m) = check_header_name(name) {
                    errors.push(ConfigError::new(format!("denyResponse.headers.{name}"), m));
                }
            }
            config.deny_response = v;
        }
        if let Some(v) = read(take("logLevel"), |v| v.read_enum(LOG_LEVELS), &mut errors) {
            config.log_level = v;
        }
        if let Some(v) = read(
            take("denialLogLevel"),
            |v| v.read_enum(LOG_LEVELS),
            &mut errors,
        ) {
            config.denial_log_level = v;
        }
        if let Some(v) = read(take("decisionHeader"), Json::read_string, &mut errors) {
            if let Err(m) = check_header_name(&v) {
                errors.push(ConfigError::new("decisionHeader", m));
            }
            config.decision_header = Some(v);
        }
        if let Some(v) = read(take("decisionMetadata"), Json::read_bool, &mut errors) {
            config.decision_metadata = v;
        }
        if let Some(v) = read(take("cacheConnectionFacts"), Json::read_bool, &mut errors) {
            config.cache_connection_facts = v;
        }
        drop(object);
        match policies {
            None => errors.push(ConfigError::new(
                "policies",
                "required: the list of AuthorizationPolicy objects ([] allows every request)",
            )),
            Some(v) => {
                let read = match (v, streamed) {
                    // The last `policies` key wins: an array there was streamed; anything
                    // else (a List object, one policy, a wrong type) is read from the tree.
                    (Json::Array(_), Some(reader)) => reader.finish(),
                    (v, _) => parse_policies_json(v),
                };
                match read {
                    Ok(p) => config.policies = p,
                    Err(e) => errors.extend(
                        e.into_iter()
                            .map(|e| ConfigError::new("policies", e.to_string())),
                    ),
                }
            }
        }

        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }
}

const MTLS_MODES: &[(&str, MtlsMode)] = &[
    ("STRICT", MtlsMode::Strict),
    ("PERMISSIVE", MtlsMode::Permissive),
];

const LOG_LEVELS: &[(&str, LogLevel)] = &[
    ("trace", LogLevel::Trace),
    ("debug", LogLevel::Debug),
    ("info", LogLevel::Info),
    ("warn", LogLevel::Warn),
    ("error", LogLevel::Error),
    ("critical", LogLevel::Critical),
];

/// `workload`: `namespace` is required, `labels` optional; unknown fields are refused.
fn read_workload(value: &Json) -> Result<Workload, ReadError> {
    let mut namespace = None;
    let mut labels = BTreeMap::new();
    value.read_struct(
        "struct WorkloadConfig",
        &["namespace", "labels"],
        UnknownFields::Deny,
        &mut |key, v| {
            match key {
                "namespace" => namespace = Some(v.read_string()?),
                _ => labels = v.read_string_map()?,
            }
            Ok(())
        },
    )?;
    Ok(Workload {
        namespace: namespace.ok_or_else(|| missing_field("namespace"))?,
        labels,
    })
}

/// Each item a source name; the first unknown name is the error, for the whole list.
fn read_identity_sources(value: &Json) -> Result<Vec<IdentitySource>, ReadError> {
    let names = value
        .read_strings()
        .map_err(|e| ReadError::new(e.message))?;
    names
        .iter()
        .map(|name| name.parse().map_err(|e| ReadError::new(format!("{e}"))))
        .collect()
}

fn read_deny_response(value: &Json) -> Result<DenyResponse, ReadError> {
    let mut deny = DenyResponse::default();
    value.read_struct(
        "struct DenyResponse",
        &["status", "body", "headers"],
        UnknownFields::Deny,
        &mut |key, v| {
            match key {
                "status" => deny.status = v.read_u16()?,
                "body" => deny.body = v.read_string()?,
                _ => deny.headers = v.read_string_map()?,
            }
            Ok(())
        },
    )?;
    Ok(deny)
}

/// HTTP header names as Envoy accepts them for added headers: a lower-case RFC 9110 token,
/// no pseudo-headers.
fn check_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name must not be empty".to_string());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "!#$%&'*+-.^_`|~".contains(*c)))
    {
        return Err(format!(
            "{name:?}: {c:?} is not allowed in a header name (lower-case token characters)"
        ));
    }
    Ok(())
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::PluginConfig;

    /// The glue reads its configuration through `parse_owned`, which frees the bytes early and
    /// the tree as it goes; it must accept and refuse exactly what `parse` does, with the same
    /// errors in the same order (the field paths of `filter/tests/config_plugin.rs`).
    #[test]
    fn parse_owned_agrees_with_parse() {
        let cases: &[(&str, &str)] = &[
            ("no bytes is the empty configuration", ""),
            ("whitespace only is empty too", " \n"),
            ("not JSON", "policies: []"),
            ("not an object", "[]"),
            ("the minimal configuration", r#"{"policies": []}"#),
            (
                "unknown fields first, then field errors, policies last",
                r#"{"zz": 1, "policies": [{"spec": {"action": "NOPE"}}], "logLevel": "x"}"#,
            ),
            ("policies missing", r#"{"trustDomain": "td"}"#),
            ("policies null", r#"{"policies": null}"#),
            (
                "a List with items",
                r#"{"workload": {"namespace": "a"}, "policies": {"kind": "List", "items": [
                    {"metadata": {"name": "p", "namespace": "a"}, "spec": {"rules": [{}]}},
                    {"metadata": {"name": "p", "namespace": "a"}, "spec": {}}]}}"#,
            ),
            (
                "one policy object",
                r#"{"policies": {"metadata": {"name": "p"}, "spec": {"action": "DENY", "rules": [{}]}}}"#,
            ),
        ];
        for (behaviour, text) in cases {
            let by_ref = PluginConfig::parse(Some(text.as_bytes()));
            let owned = PluginConfig::parse_owned(Some(text.as_bytes().to_vec()));
            assert_eq!(owned, by_ref, "{behaviour}");
        }
        assert_eq!(PluginConfig::parse_owned(None), PluginConfig::parse(None));
    }

    /// A `policies` array is read item by item while it is parsed; the same items in a
    /// `kind: List` (read from the whole tree by `parse_policies_json`) must give the same
    /// policies and the same errors, labels `items[N]` included.
    #[test]
    fn a_streamed_policies_array_reads_like_a_list() {
        let arrays: &[(&str, &str)] = &[
            ("empty", "[]"),
            (
                "two good policies",
                r#"[{"metadata": {"name": "a", "namespace": "ns"}, "spec": {"rules": [{}]}},
                    {"metadata": {"name": "b", "namespace": "ns"}, "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/x"]}}]}]}}]"#,
            ),
            (
                "a duplicate name names where it was first",
                r#"[{"metadata": {"name": "a", "namespace": "ns"}}, {"metadata": {"name": "a", "namespace": "ns"}}]"#,
            ),
            (
                "malformed and invalid items, each with its index",
                r#"[1, {"spec": {"rules": [{"from": [{"source": {"principal": ["x"]}}]}]}},
                    {"metadata": {"name": "c"}, "spec": {"rules": [{"to": [{"operation": {"paths": ["*/a*"]}}]}]}}]"#,
            ),
        ];
        for (behaviour, array) in arrays {
            let streamed =
                PluginConfig::parse(Some(format!(r#"{{"policies": {array}}}"#).as_bytes()));
            let listed = PluginConfig::parse(Some(
                format!(r#"{{"policies": {{"kind": "List", "items": {array}}}}}"#).as_bytes(),
            ));
            assert_eq!(streamed, listed, "{behaviour}");
        }
    }

    /// The last `policies` key wins, as in every JSON object here (serde_json's map): a later
    /// array replaces what an earlier one streamed, a later non-array replaces an earlier
    /// array.
    #[test]
    fn the_last_policies_key_wins() {
        let deny = r#"{"metadata": {"name": "d", "namespace": "ns"}, "spec": {"action": "DENY", "rules": [{}]}}"#;
        let allow = r#"{"metadata": {"name": "a", "namespace": "ns"}, "spec": {"rules": [{}]}}"#;
        let names = |text: String| -> Vec<String> {
            PluginConfig::parse(Some(text.as_bytes()))
                .unwrap()
                .policies
                .iter()
                .map(|p| p.metadata.name.clone())
                .collect()
        };
        assert_eq!(
            names(format!(
                r#"{{"policies": [{deny}], "policies": [{allow}]}}"#
            )),
            ["a"]
        );
        assert_eq!(
            names(format!(r#"{{"policies": [{deny}], "policies": []}}"#)),
            Vec::<String>::new()
        );
        assert_eq!(
            names(format!(r#"{{"policies": [{deny}], "policies": {allow}}}"#)),
            ["a"]
        );
        assert_eq!(
            names(format!(r#"{{"policies": {allow}, "policies": [{deny}]}}"#)),
            ["d"]
        );
        assert!(
            PluginConfig::parse(Some(
                format!(r#"{{"policies": [{deny}], "policies": 1}}"#).as_bytes()
            ))
            .is_err(),
            "a wrong type after an array is the error"
        );
        assert!(
            PluginConfig::parse(Some(
                format!(r#"{{"policies": [{deny}], "x": [}}"#).as_bytes()
            ))
            .is_err(),
            "a syntax error after the array fails the whole text"
        );
    }
}
