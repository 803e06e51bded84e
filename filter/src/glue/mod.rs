//! The proxy-wasm glue: the only code that knows about the host.
//!
//! Facts in, decision out, act. The logic (`plugin`, `http`, `tcp`) talks to the host through
//! the [`Host`] trait only, so it is tested natively with a fake host; `proxy` (wasm32 only)
//! implements [`Host`] on the proxy-wasm ABI and plugs the logic into the Rust SDK's contexts.
//!
//! What the glue reads, and when (each only if a compiled policy needs it, see
//! [`crate::engine::Needs`]):
//! - per connection (cached by `connection_id` with `cacheConnectionFacts`, which is only safe
//!   on hosts that number connections uniquely, as Envoy does): `connection.mtls`
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
//! Deny: the configured response (403 `RBAC: access denied` by default) with response code
//! details `rbac_access_denied_matched_policy[<ns>/<name>]`, as Envoy's RBAC filter; TCP: the
//! connection is closed. Counters: `spiffe_authz.rbac.{allowed,denied,shadow_allowed,
//! shadow_denied,audited}`, `spiffe_authz.config_rejected`, and per deciding policy
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
