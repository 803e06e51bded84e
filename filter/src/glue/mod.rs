//! The proxy-wasm glue: the only code that knows about the host.
//!
//! Facts in, decision out, act. The logic (`plugin`, `http`, `tcp`) talks to the host through
//! the [`Host`] trait only, so it is tested natively with a fake host; `proxy` (wasm32 only)
//! implements [`Host`] on the proxy-wasm ABI and plugs the logic into the Rust SDK's contexts.
//!
//! What the glue reads, and when (each only if a compiled policy needs it, see
//! [`crate::engine::Needs`]):
//! - per connection (cached by `connection_id` unless `cacheConnectionFacts` is false: safe on
//!   hosts that number connections uniquely, as Envoy does; see the config docs): `connection.mtls`
//!   and `connection.uri_san_peer_certificate` (first URI SAN only), `connection.peer_certificate`,
//!   `destination.address`, `connection.requested_server_name`;
//! - per request: all request headers in one `proxy_get_header_map_pairs` call (pseudo-headers,
//!   `x-forwarded-client-cert`, headers for `request.headers[...]`), `source.address`, and the
//!   dynamic metadata `istio_authn` (`request.auth.principal`, `.audiences`, `.presenter`,
//!   `.claims`) written by Istio's authentication filter ahead of an AUTHZ-phase plugin.
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
//!   Evaluating it as unauthenticated would let a DENY on its own principal miss it. Checked
//!   whenever the identity is read (a policy on principals, namespaces or service accounts,
//!   or STRICT): a decision that reads no identity cannot be dodged with one;
//! - `mtlsMode` STRICT and no verified identity: `spiffe_authz_mtls_required`.
//!
//! Deny: the configured response (403 `RBAC: access denied` by default) with response code
//! details `rbac_access_denied_matched_policy[<ns>/<name>]`, as Envoy's RBAC filter; TCP: the
//! connection is closed. Counters: `spiffe_authz.rbac.{allowed,denied,shadow_allowed,
//! shadow_denied,audited}`, `spiffe_authz.config_rejected`, `spiffe_authz.invalid_peer_identity`,
//! and per deciding policy
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
