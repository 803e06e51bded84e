//! Compile validated policies once into indexed matchers; decide per request.
//!
//! API CONTRACT (shared by the engine, the glue and the tools; keep these names and shapes,
//! extend them freely):
//! - [`EngineConfig`]: what is known at configure time about this workload and mesh.
//! - [`Engine::compile`]: validated policies + config -> engine (+ warnings), or errors.
//! - [`Engine::needs`]: which request facts any compiled policy reads, so the glue asks the
//!   host only for those.
//! - [`Engine::decide`]: borrowed per-request facts -> [`Decision`], no heap allocation (a
//!   path normalization rewrites goes into a reused per-thread buffer; [`Engine::decide_with`]
//!   takes the caller's).
//!
//! The engine decides as PATCHED Istio and Envoy do: a repeated header matches when any one
//! value matches (Envoy `matchesHeadersIndividually`, CVE-2026-26308), and `namespaces` /
//! `serviceAccounts` values are quoted, so `.` is literal (Istio 1.28.7 / 1.29.3,
//! CVE-2026-39350). Identities Istio's CA never issues (`.../ns/evil/sa/ns/prod/x`) are judged
//! by Istio's own regexes, as Istio would.
//!
//! Choices where Istio leaves room or where a sidecar filter differs from Istio's own:
//! - `targetRef` / `targetRefs` policies are for gateways and waypoints; a sidecar never
//!   applies them, so they are skipped with a [`Warning`].
//! - `request.experimental.inline.headers[..]` conditions are compile errors: Istio's
//!   experimental inline-header matcher is not implemented, and guessing could only widen an
//!   ALLOW or narrow a DENY. `experimental.envoy.filters.<filter>[<key>]` conditions read
//!   Envoy dynamic metadata ([`Request::filter_metadata`]) as Istio's generator matches it.
//! - Dry-run policies are reported the way Envoy runs Istio's shadow rules
//!   ([`Decision::shadow`]): per RBAC filter, shadow before enforced, AUDIT then DENY then
//!   ALLOW, so the dry-run ALLOW rules are not evaluated for a request an enforced DENY
//!   denied. A dry-run AUDIT policy (Istio's validation refuses one) lands in the AUDIT
//!   filter's shadow rules: reported, never an audit. [`Decision::dry_run`] condenses the
//!   DENY and ALLOW shadow results into one verdict; Envoy has no such single value (it
//!   writes one `shadow_engine_result` per filter, prefixed `istio_dry_run_deny_` /
//!   `istio_dry_run_allow_`), it exists for logs.
//! - `requestPrincipals` / `request.auth.principal` compare `iss` and `sub` from the JWT
//!   payload when the glue passes it (Istio's extended matcher), else split
//!   `RequestAuth::principal` at its last `/`.
//! - A path that normalization rejects denies the request before any policy is read
//!   ([`Reason::InvalidPath`]); Envoy would have answered it with 400/404 itself.
//! - An address or port the host could not tell ([`Request::direct_remote_ip`],
//!   `remote_ip`, `destination_ip`, `destination_port` = `None`), or a dynamic metadata value
//!   it did not pass in [`Request::filter_metadata`], fails closed: a field that
//!   reads it (`ipBlocks`/`notIpBlocks`, `remoteIpBlocks`/`notRemoteIpBlocks`, `ports`/
//!   `notPorts`, the `source.ip`, `remote.ip`, `destination.ip`, `destination.port`
//!   conditions, values and notValues alike) counts as matched in DENY and AUDIT rules and
//!   as not matched in ALLOW rules; dry-run rules by their own action. This is how Istio
//!   treats what a filter cannot evaluate (HTTP-only fields on TCP: DENY drops the field,
//!   ALLOW drops the rule). Envoy always knows its addresses; a Wasm filter may not (an
//!   HTTP filter sees `source.address` derived from `x-forwarded-for`, not the socket peer).
//! - Decisions report the first matching rule in Envoy's order: the RBAC `policies` map
//!   sorted by Istio's name `ns[<ns>]-policy[<name>]-rule[<i>]` (so `rule[10]` before
//!   `rule[2]`).
//!
//! One module per Istio concept: `scope` (which policies apply), `principal`,
//! `ip`, `operation`, `condition` (the serde model -> constraints), `rule` (from/to/when
//! combination), `index`, `compile`, `decide`, `explain`.

mod api;
mod compile;
mod condition;
mod decide;
mod explain;
mod glob;
mod index;
mod ip;
mod metadata;
mod operation;
mod principal;
mod rule;
mod scope;
mod string_match;

pub use api::*;
