//! One HTTP stream: collect the facts the policies need, decide, continue or deny.

use std::borrow::Cow;
use std::net::IpAddr;
use std::rc::Rc;

use crate::config::{LogLevel, MtlsMode};
use crate::engine::{
    Decision, FilterMetadata, HttpRequest, MetadataKey, Request, RequestAuth, Verdict,
};
use crate::identity::{IdentitySource, InvalidPeerIdentity, PeerIdentity};

use super::facts::{
    decode_pairs, decode_socket_address, decode_str, decode_struct_value, decode_u64,
    metadata_value, StructValue,
};
use super::host::{Host, HostError};
use super::identity::{establish_identity, fetch_connection_identity, needs_clock, XFCC_HEADER};
use super::plugin::{ConnectionFacts, Counters, Plugin, LOG_PREFIX};
use super::report::{decision_summary, principal_for_log, report, response_details};

/// What the glue tells the SDK to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Stop iteration: after a local response (Envoy ignores the value then), or on a denied
    /// TCP connection that is being closed.
    Pause,
}

/// Response code details when no configuration is in force or a host call failed.
pub const DETAILS_NOT_CONFIGURED: &str = "spiffe_authz_not_configured";
pub const DETAILS_HOST_ERROR: &str = "spiffe_authz_host_error";
/// STRICT mTLS: the peer has no verified identity (Istio would have refused the handshake).
pub const DETAILS_MTLS_REQUIRED: &str = "spiffe_authz_mtls_required";
/// The peer presented an identity that failed verification, in any `mtlsMode`.
pub const DETAILS_INVALID_PEER_IDENTITY: &str = "spiffe_authz_invalid_peer_identity";
/// The request header map is one Envoy's codecs would have refused (see [`MalformedHeaders`]).
pub const DETAILS_MALFORMED_HEADERS: &str = "spiffe_authz_malformed_request_headers";

/// Why the peer of a denied invalid identity is denied, for log lines.
pub(crate) const INVALID_PEER_NOTE: &str =
    "the peer presented an identity that failed verification; Istio would not have served it";

/// A request header map that Envoy's codecs never pass to filters, so it can only come from a
/// broken host. The filter denies it rather than judge one reading of it while the upstream
/// makes another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedHeaders {
    /// CVE-2019-9900 (ISTIO-SECURITY-2019-001): a NUL let `admin\0` dodge a DENY on `admin`
    /// while the upstream read `admin`; Envoy's codecs now reject NUL, CR and LF in header
    /// names and values.
    #[error("header {name:?}: its {part} contains {character} (CVE-2019-9900: Envoy's codecs reject NUL, CR and LF)")]
    ForbiddenCharacter {
        name: String,
        part: &'static str,
        character: &'static str,
    },
    /// RFC 9113 §8.3: a repeated pseudo-header makes the request malformed, and Envoy's codecs
    /// reject it; the filter would judge the first `:path` while the upstream might use another.
    #[error("pseudo-header {0:?} appears more than once (RFC 9113 §8.3)")]
    RepeatedPseudoHeader(String),
}

/// Istio's request authentication result, as its `istio_authn` filter writes it to dynamic
/// metadata (keys `request.auth.principal`, `.audiences`, `.presenter`, `.claims`; read by
/// Istio's own RBAC filter from the same place).
pub const AUTHN_METADATA: [&str; 3] = ["metadata", "filter_metadata", "istio_authn"];

#[derive(Debug)]
pub struct HttpStream {
    plugin: Option<Rc<Plugin>>,
    /// The debug decision header for an allowed request, added in `on_response_headers`.
    pending_header: Option<String>,
}

/// The outcome of evaluating one request (before acting on it).
enum Outcome {
    Decided(Decision),
    /// STRICT mTLS and no verified peer.
    MtlsRequired,
    /// The peer presented an identity that failed verification: denied before any policy.
    InvalidPeer,
}

impl HttpStream {
    /// A stream decided by `plugin` (the configuration in force when it started), or denied
    /// when there is none.
    pub fn new(plugin: Option<Rc<Plugin>>) -> Self {
        HttpStream {
            plugin,
            pending_header: None,
        }
    }

    pub fn on_request_headers<H: Host + ?Sized>(&mut self, host: &H) -> Action {
        let Some(plugin) = self.plugin.clone() else {
            host.log(
                LogLevel::Error,
                &format!("{LOG_PREFIX}: denied: no configuration is in force"),
            );
            let deny = crate::config::DenyResponse::default();
            let _ = host.send_local_response(
                u32::from(deny.status),
                DETAILS_NOT_CONFIGURED,
                deny.body.as_bytes(),
                &[],
            );
            return Action::Pause;
        };
        match self.evaluate(&plugin, host) {
            Ok(action) => action,
            Err(e) => {
                // Fail closed: a fact we could not read might have been the one that denies.
                plugin.log(
                    host,
                    LogLevel::Error,
                    &format!("denied: a host call failed: {e}"),
                );
                Counters::bump(host, plugin.counters.denied);
                deny(&plugin, host, DETAILS_HOST_ERROR, None);
                Action::Pause
            }
        }
    }

    pub fn on_response_headers<H: Host + ?Sized>(&mut self, host: &H) -> Action {
        if let (Some(plugin), Some(value)) = (&self.plugin, self.pending_header.take()) {
            if let Some(name) = &plugin.config.decision_header {
                let _ = host.add_response_header(name, &value);
            }
        }
        Action::Continue
    }

    fn evaluate<H: Host + ?Sized>(
        &mut self,
        plugin: &Plugin,
        host: &H,
    ) -> Result<Action, HostError> {
        let needs = &plugin.needs;
        let raw_headers = host.request_headers()?;
        let Some(pairs) = decode_pairs(&raw_headers) else {
            return Err(HostError {
                call: "proxy_get_header_map_pairs",
                subject: "request headers".to_string(),
                status: super::host::HostStatus::SerializationFailure,
            });
        };
        // Lossy, not skipped: a DENY rule on `/admin/*` must still see `/admin/\xff`. Names
        // lower-case, as Envoy's header maps hold them and the engine expects: a host that
        // hands over `X-Role` or `X-Forwarded-Client-Cert` must not slip past a rule or the
        // XFCC check written for the lower-case name.
        let owned: Vec<(Cow<'_, str>, Cow<'_, str>)> = pairs
            .iter()
            .map(|(k, v)| {
                (
                    lower_case(String::from_utf8_lossy(k)),
                    String::from_utf8_lossy(v),
                )
            })
            .collect();
        let headers: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        if let Some(malformed) = malformed_headers(&pairs, &headers) {
            Counters::bump(host, plugin.counters.denied);
            plugin.log(
                host,
                plugin.config.denial_log_level,
                &format!("denied principal=- policy=none rule=- (malformed request headers: {malformed})"),
            );
            deny(
                plugin,
                host,
                DETAILS_MALFORMED_HEADERS,
                Some("deny; policy=none; headers=malformed"),
            );
            return Ok(Action::Pause);
        }
        let pseudo = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| *k == name)
                .map_or("", |(_, v)| *v)
        };
        let (method, path, authority) = (pseudo(":method"), pseudo(":path"), pseudo(":authority"));

        let connection = self.connection_facts(plugin, host)?;
        let peer = request_peer(plugin, host, &connection, &headers)?;
        let principal_text = principal_for_log(&peer);
        let what = format!("method={method:?} host={authority:?} path={path:?}");

        let outcome = if matches!(peer, PeerIdentity::Invalid(_)) {
            Outcome::InvalidPeer
        } else if plugin.config.mtls_mode == MtlsMode::Strict
            && !matches!(peer, PeerIdentity::Verified(_))
        {
            Outcome::MtlsRequired
        } else {
            let (remote_ip, direct_remote_ip) = if needs.remote_ip || needs.direct_remote_ip {
                source_ips(host)?
            } else {
                (None, None)
            };
            let authn = if needs.request_auth {
                request_auth(host)?
            } else {
                None
            };
            let audiences: Vec<&str> = authn
                .as_ref()
                .map(|a| a.audiences.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let metadata = dynamic_metadata(plugin, host);
            let metadata_values = metadata_values(plugin, host, metadata.as_deref());
            let filter_metadata = filter_metadata(&metadata_values);
            let request = Request {
                principal: peer.principal(),
                direct_remote_ip,
                remote_ip,
                destination_ip: connection.destination.map(|a| a.ip()),
                // Port 0 is no listener's port: a host that gave a bare IP did not tell the port,
                // so it stays unknown and the engine fails closed by action (a DENY on ports matches).
                destination_port: connection.destination.map(|a| a.port()).filter(|&p| p != 0),
                sni: connection.sni.as_deref(),
                http: Some(HttpRequest {
                    method,
                    path,
                    host: authority,
                    headers: &headers,
                }),
                request_auth: authn.as_ref().map(|a| RequestAuth {
                    principal: a.principal.as_str(),
                    audiences: &audiences,
                    presenter: a.presenter.as_deref(),
                    claims: a.claims.as_ref(),
                }),
                filter_metadata: &filter_metadata,
            };
            Outcome::Decided(plugin.engine.decide(&request))
        };

        match outcome {
            Outcome::InvalidPeer => {
                Counters::bump(host, plugin.counters.denied);
                Counters::bump(host, plugin.counters.invalid_peer_identity);
                plugin.log(
                    host,
                    plugin.config.denial_log_level,
                    &format!(
                        "denied principal={principal_text} {what} policy=none rule=- ({INVALID_PEER_NOTE})"
                    ),
                );
                deny(
                    plugin,
                    host,
                    DETAILS_INVALID_PEER_IDENTITY,
                    Some("deny; policy=none; peer=invalid"),
                );
                Ok(Action::Pause)
            }
            Outcome::MtlsRequired => {
                Counters::bump(host, plugin.counters.denied);
                plugin.log(
                    host,
                    plugin.config.denial_log_level,
                    &format!(
                        "denied principal={principal_text} {what} policy=none rule=- (mtlsMode STRICT requires a verified peer identity)"
                    ),
                );
                deny(
                    plugin,
                    host,
                    DETAILS_MTLS_REQUIRED,
                    Some("deny; policy=none; mtls=STRICT"),
                );
                Ok(Action::Pause)
            }
            Outcome::Decided(decision) => {
                report(plugin, host, &decision, &principal_text, &what);
                let summary = decision_summary(decision.verdict, &decision.reason);
                if plugin.config.decision_metadata {
                    let _ = host.set_property(&["spiffe_authz.decision"], summary.as_bytes());
                }
                match decision.verdict {
                    Verdict::Allow => {
                        if plugin.config.decision_header.is_some() {
                            self.pending_header = Some(summary);
                        }
                        Ok(Action::Continue)
                    }
                    Verdict::Deny => {
                        deny(
                            plugin,
                            host,
                            &response_details(&decision.reason),
                            Some(&summary),
                        );
                        Ok(Action::Pause)
                    }
                }
            }
        }
    }

    /// Connection-level facts: from the cache when the plugin caches them and the host tells
    /// the connection id, else fetched now.
    fn connection_facts<H: Host + ?Sized>(
        &self,
        plugin: &Plugin,
        host: &H,
    ) -> Result<Rc<ConnectionFacts>, HostError> {
        let id = if caches_connection_facts(plugin) {
            host.property(&["connection_id"])?
                .as_deref()
                .and_then(decode_u64)
        } else {
            None
        };
        if let Some(id) = id {
            if let Some(facts) = plugin.connections.borrow().get(id) {
                return Ok(facts);
            }
        }
        let facts = Rc::new(fetch_connection(plugin, host)?);
        if let Some(id) = id {
            plugin
                .connections
                .borrow_mut()
                .insert(id, Rc::clone(&facts));
        }
        Ok(facts)
    }
}

/// `name` in lower case, copied only when it has an upper-case letter.
fn lower_case(name: Cow<'_, str>) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        name
    }
}

/// The first reason Envoy's codecs would have refused this header map, if any. `raw` are the
/// bytes as the host gave them, `headers` the same pairs decoded with lower-case names.
fn malformed_headers(raw: &[(&[u8], &[u8])], headers: &[(&str, &str)]) -> Option<MalformedHeaders> {
    let forbidden = |bytes: &[u8]| {
        bytes.iter().find_map(|b| match b {
            0 => Some("NUL"),
            b'\r' => Some("CR"),
            b'\n' => Some("LF"),
            _ => None,
        })
    };
    for (name, value) in raw {
        let found = forbidden(name)
            .map(|c| ("name", c))
            .or_else(|| forbidden(value).map(|c| ("value", c)));
        if let Some((part, character)) = found {
            return Some(MalformedHeaders::ForbiddenCharacter {
                name: String::from_utf8_lossy(name).into_owned(),
                part,
                character,
            });
        }
    }
    let mut pseudo = headers.iter().filter(|(k, _)| k.starts_with(':'));
    while let Some((name, _)) = pseudo.next() {
        if pseudo.clone().any(|(other, _)| other == name) {
            return Some(MalformedHeaders::RepeatedPseudoHeader((*name).to_string()));
        }
    }
    None
}

/// The peer of this request: the connection's, unless the `xfcc` source is configured and the
/// request carries the header, which is per request. A plaintext connection's XFCC is never
/// read (a client wrote it). Several XFCC lines are invalid: Envoy keeps one value and appends
/// its element to it, so another line came from the client (or a broken host), and reading
/// the first line, as a map lookup would, trusts a line the client wrote in full.
fn request_peer<H: Host + ?Sized>(
    plugin: &Plugin,
    host: &H,
    connection: &ConnectionFacts,
    headers: &[(&str, &str)],
) -> Result<PeerIdentity, HostError> {
    let peer = &connection.peer;
    if !plugin.identity.sources.contains(&IdentitySource::Xfcc)
        || connection.identity_facts.mtls == Some(false)
    {
        return Ok(peer.clone());
    }
    let mut lines = headers
        .iter()
        .filter(|(k, _)| *k == XFCC_HEADER)
        .map(|(_, v)| *v);
    Ok(match (lines.next(), lines.count()) {
        (None, _) => peer.clone(),
        (Some(xfcc), 0) => {
            let now = clock(plugin, host)?;
            establish_identity(
                &connection.identity_facts,
                Some(xfcc),
                &plugin.identity,
                now,
            )
        }
        (Some(_), more) => {
            PeerIdentity::Invalid(InvalidPeerIdentity::RepeatedXfcc { lines: more + 1 })
        }
    })
}

/// The facts that are the same for every request on a connection: the peer's identity
/// always, the rest as far as policies need them.
///
/// The identity is established even when no policy reads it (`policies: []`, PERMISSIVE):
/// a peer that presented an identity which fails verification is denied before any policy
/// whatever they read (issue #5), because Istio would not have served it at all. It costs
/// `connection.mtls`, one call per configured connection source and the clock, once per
/// connection with the cache (see [`caches_connection_facts`]).
pub(crate) fn fetch_connection<H: Host + ?Sized>(
    plugin: &Plugin,
    host: &H,
) -> Result<ConnectionFacts, HostError> {
    let needs = &plugin.needs;
    let identity_facts = fetch_connection_identity(host, &plugin.identity.sources)?;
    // Plaintext is unauthenticated whatever the clock says.
    let now = if identity_facts.mtls == Some(false) {
        0
    } else {
        clock(plugin, host)?
    };
    let peer = establish_identity(&identity_facts, None, &plugin.identity, now);
    // One call gives both: `destination.address` is `ip:port`.
    let destination = if needs.destination_ip || needs.destination_port {
        host.property(&["destination", "address"])?
            .as_deref()
            .and_then(decode_socket_address)
    } else {
        None
    };
    let sni = if needs.sni {
        host.property(&["connection", "requested_server_name"])?
            .as_deref()
            .and_then(decode_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    } else {
        None
    };
    Ok(ConnectionFacts {
        peer,
        identity_facts,
        destination,
        sni,
    })
}

/// Whether HTTP streams cache connection facts by connection id: configured
/// (`cacheConnectionFacts`) and worth the one `connection_id` call it costs per request, i.e.
/// it saves more than one. Since the identity is always established, it always does:
/// `connection.mtls` plus either a connection source or, for XFCC alone, the clock. The one
/// place that decides it; a TCP connection is decided once and never reads the cache.
pub fn caches_connection_facts(plugin: &Plugin) -> bool {
    plugin.config.cache_connection_facts && connection_fact_calls(plugin) >= 2
}

/// Host calls [`fetch_connection`] makes for an mTLS connection.
fn connection_fact_calls(plugin: &Plugin) -> usize {
    let needs = &plugin.needs;
    let sources = &plugin.identity.sources;
    1 + sources
        .iter()
        .filter(|s| !matches!(s, IdentitySource::Xfcc))
        .count()
        + usize::from(needs_clock(sources))
        + usize::from(needs.destination_ip || needs.destination_port)
        + usize::from(needs.sni)
}

/// Seconds since the epoch from the host, asked only when a source checks certificate validity.
fn clock<H: Host + ?Sized>(plugin: &Plugin, host: &H) -> Result<u64, HostError> {
    if needs_clock(&plugin.identity.sources) {
        Ok(host.now_unix_nanos()? / 1_000_000_000)
    } else {
        Ok(0)
    }
}

/// `(remote_ip, direct_remote_ip)` from `source.address`. In an HTTP filter Envoy reports its
/// trusted client address there: derived from `x-forwarded-for` (then with port 0) when the
/// HCM does not use the remote address, else the socket peer (`envoy-properties.md` §2). So the
/// address is Istio's `remote.ip`; it is the direct peer (`ipBlocks`, `source.ip`) only when it
/// carries a real port. Otherwise the direct peer is unknown, and the engine fails closed by
/// action (a DENY on it matches, an ALLOW does not).
fn source_ips<H: Host + ?Sized>(host: &H) -> Result<(Option<IpAddr>, Option<IpAddr>), HostError> {
    let source = host
        .property(&["source", "address"])?
        .as_deref()
        .and_then(decode_socket_address);
    Ok(match source {
        Some(addr) if addr.port() != 0 => (Some(addr.ip()), Some(addr.ip())),
        Some(addr) => (Some(addr.ip()), None),
        None => (None, None),
    })
}

/// The whole `metadata` attribute (binary `envoy.config.core.v3.Metadata`) when a policy
/// reads dynamic metadata: one host call, whatever the number of keys. `Some(empty)` when the
/// host has none; `None` when the host could not give it, so every value is unknown and the
/// engine fails closed by action (a DENY on it matches, an ALLOW does not) rather than the
/// whole request being refused.
pub(crate) fn dynamic_metadata<H: Host + ?Sized>(plugin: &Plugin, host: &H) -> Option<Vec<u8>> {
    if plugin.needs.filter_metadata.is_empty() {
        return None;
    }
    match host.property(&["metadata"]) {
        Ok(bytes) => Some(bytes.unwrap_or_default()),
        Err(e) => {
            plugin.log(
                host,
                LogLevel::Warn,
                &format!("dynamic metadata unknown (policies on it fail closed): {e}"),
            );
            None
        }
    }
}

/// The values the compiled policies read, found in `metadata`. A value that cannot be read
/// (no metadata from the host, a malformed message) is left out: unknown to the engine.
pub(crate) fn metadata_values<'a, H: Host + ?Sized>(
    plugin: &'a Plugin,
    host: &H,
    metadata: Option<&'a [u8]>,
) -> Vec<(&'a MetadataKey, StructValue<'a>)> {
    let Some(metadata) = metadata else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(plugin.needs.filter_metadata.len());
    for key in &plugin.needs.filter_metadata {
        match metadata_value(metadata, &key.filter, &key.key) {
            Some(value) => out.push((key, value)),
            None => {
                plugin.log(
                    host,
                    LogLevel::Warn,
                    &format!(
                        "dynamic metadata is not a valid Metadata message; {}[{}] unknown (policies on it fail closed)",
                        key.filter, key.key
                    ),
                );
                return Vec::new();
            }
        }
    }
    out
}

/// The engine's borrowed view of [`metadata_values`].
pub(crate) fn filter_metadata<'a>(
    values: &'a [(&'a MetadataKey, StructValue<'a>)],
) -> Vec<FilterMetadata<'a>> {
    values
        .iter()
        .map(|(key, value)| FilterMetadata {
            filter: &key.filter,
            key: &key.key,
            value: value.as_metadata_value(),
        })
        .collect()
}

struct AuthnFacts {
    principal: String,
    audiences: Vec<String>,
    presenter: Option<String>,
    claims: Option<serde_json::Value>,
}

/// Reads the whole `istio_authn` metadata struct in one call.
fn request_auth<H: Host + ?Sized>(host: &H) -> Result<Option<AuthnFacts>, HostError> {
    let Some(bytes) = host.property(&AUTHN_METADATA)? else {
        return Ok(None);
    };
    let Some(pairs) = decode_pairs(&bytes) else {
        return Ok(None);
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| *v)
    };
    let Some(principal) = field("request.auth.principal")
        .and_then(decode_str)
        .filter(|p| !p.is_empty())
    else {
        return Ok(None);
    };
    let audiences = match field("request.auth.audiences").map(decode_struct_value) {
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s],
        _ => Vec::new(),
    };
    Ok(Some(AuthnFacts {
        principal: principal.to_string(),
        audiences,
        presenter: field("request.auth.presenter")
            .and_then(decode_str)
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        claims: field("request.auth.claims").map(decode_struct_value),
    }))
}

/// Sends the configured deny response, naming the policy in the response code details.
fn deny<H: Host + ?Sized>(plugin: &Plugin, host: &H, details: &str, summary: Option<&str>) {
    let deny = &plugin.config.deny_response;
    let mut headers: Vec<(&str, &str)> = deny
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let (Some(name), Some(summary)) = (&plugin.config.decision_header, summary) {
        headers.push((name.as_str(), summary));
    }
    if let Err(e) = host.send_local_response(
        u32::from(deny.status),
        details,
        deny.body.as_bytes(),
        &headers,
    ) {
        plugin.log(
            host,
            LogLevel::Error,
            &format!("deny response not sent: {e}"),
        );
    }
}
