//! The proxy-wasm glue: the only code that knows about the host.
//!
//! Facts in, decision out, act. The logic (`plugin`, `http`, `tcp`) talks to the host through
//! the [`Host`] trait only, so it is tested natively with a fake host; `proxy` (wasm32 only)
//! implements [`Host`] on the proxy-wasm ABI and plugs the logic into the Rust SDK's contexts.
//!
//! What the glue reads, and when:
//! - per connection, always: the peer's identity (`connection.mtls`, then per configured
//!   source `connection.uri_san_peer_certificate` (first URI SAN only) and
//!   `connection.peer_certificate`, and the clock when a source checks certificate validity),
//!   whatever the policies read, so that a presented but invalid identity is always denied;
//! - per connection, only if a compiled policy needs it ([`crate::engine::Needs`]):
//!   `destination.address`, `connection.requested_server_name`;
//! - connection facts are cached by `connection_id` unless `cacheConnectionFacts` is false
//!   (safe on hosts that number connections uniquely, as Envoy does; see the config docs and
//!   [`http::caches_connection_facts`]); a TCP connection is decided once and reads them once;
//! - per request: all request headers in one `proxy_get_header_map_pairs` call (pseudo-headers,
//!   `x-forwarded-client-cert` when the `xfcc` source is configured, headers for
//!   `request.headers[...]`); and, only if a policy needs them, `source.address`, the dynamic
//!   metadata `istio_authn` (`request.auth.principal`, `.audiences`, `.presenter`, `.claims`)
//!   written by Istio's authentication filter ahead of an AUTHZ-phase plugin, and the whole
//!   `metadata` attribute (one call, a binary `envoy.config.core.v3.Metadata`) for
//!   `experimental.envoy.filters.*` conditions (`Needs::filter_metadata`; on TCP too). Metadata
//!   the host cannot give, or a malformed message, leaves those values unknown: the engine
//!   fails closed by action (a DENY on them matches, an ALLOW does not).
//!
//! Istio's `ipBlocks` match the direct peer, which no Envoy attribute exposes to an HTTP
//! filter: `source.address` there is the trusted client address, derived from
//! `x-forwarded-for` (with port 0) when the HCM does not use the remote address. The glue
//! treats the direct peer as unknown in that case, and the engine answers an unknown address
//! the safe way for each action: an ALLOW rule on `ipBlocks` does not match, a DENY (or AUDIT)
//! rule on it does — see `http::source_ips`. Behind a proxy that adds `x-forwarded-for`, a
//! DENY on `ipBlocks` therefore denies every request; `remoteIpBlocks` is the field for the
//! client address there.
//!
//! Checks before any policy, each denied with its own response code details:
//! - a header map Envoy's codecs would have refused (NUL, CR or LF in a name or value,
//!   CVE-2019-9900; a repeated pseudo-header): `spiffe_authz_malformed_request_headers`;
//!   header names are lower-cased, as Envoy's maps hold them, before anything reads them;
//! - a peer that presented an identity which failed verification (an expired or doubly-named
//!   SVID, a foreign trust domain, a malformed XFCC, several XFCC lines), in any `mtlsMode`:
//!   `spiffe_authz_invalid_peer_identity`, counted in `spiffe_authz.invalid_peer_identity`.
//!   Evaluating it as unauthenticated would let a DENY on its own principal miss it, and
//!   Istio would not have served such a peer at all, so it is checked on every request and
//!   connection, whatever the policies read (`policies: []` included);
//! - `mtlsMode` STRICT and no verified identity: `spiffe_authz_mtls_required`.
//!
//! Deny: the configured response (403 `RBAC: access denied` by default) with response code
//! details `rbac_access_denied_matched_policy[<ns>/<name>]`, as Envoy's RBAC filter; TCP: the
//! connection is closed. Counters: `spiffe_authz.rbac.{allowed,denied,audited}`; each Envoy
//! RBAC filter's shadow (dry-run) result as Envoy counts it, `shadow_allowed` or
//! `shadow_denied` under Istio's shadow stat prefix of that filter:
//! `spiffe_authz.rbac.istio_dry_run_deny_shadow_{allowed,denied}` (DENY),
//! `spiffe_authz.rbac.istio_dry_run_allow_shadow_{allowed,denied}` (ALLOW, only when the
//! enforced DENY let the request through), `spiffe_authz.rbac.shadow_{allowed,denied}` (AUDIT,
//! no prefix; see [`plugin::COUNTER_SHADOW_ALLOWED`]); `spiffe_authz.config_rejected`,
//! `spiffe_authz.invalid_peer_identity`, and per deciding policy
//! `spiffe_authz.rbac.policy.<namespace>.<name>.{allowed,denied}` (defined on first use).

pub mod facts;
pub mod fake;
pub mod host;
pub mod http;
pub mod identity;
pub mod plugin;
#[cfg(target_arch = "wasm32")]
pub mod proxy;
pub mod report;
pub mod tcp;

pub use host::{Host, HostError, HostStatus};
pub use http::{Action, HttpStream};
pub use plugin::{Plugin, Root};
pub use tcp::TcpStream;
