//! From the serde model to [`Constraint`]s: `from[].source`, `to[].operation` and
//! `when[]` conditions, each value turned into the matcher Istio's generator emits for it.
//!
//! Which side a condition lands on (principal or permission) follows Istio `model.New`; the
//! side does not change the decision but keeps the structure identical to Istio's.

use crate::policy::{Condition, ConditionKey, Operation, Source, ValidationError};

use super::compile::engine_error;
use super::ip::Cidr;
use super::metadata::MetadataMatch;
use super::operation::{parse_port, PathMatch};
use super::principal::{
    principal_matcher, service_account_matcher, NamespaceMatch, TrustDomainBundle,
};
use super::rule::{Constraint, Field, RequestPrincipalMatch};
use super::string_match::StringMatch;

/// What every value conversion needs to know about the policy it is in.
pub(crate) struct PolicyCtx<'a> {
    /// `namespace/name`, for errors.
    pub(crate) key: &'a str,
    /// The policy's namespace: the default namespace of `serviceAccounts` values.
    pub(crate) namespace: &'a str,
    pub(crate) bundle: &'a TrustDomainBundle,
}

/// Which half of an Envoy RBAC policy a condition belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Principal,
    Permission,
}

/// Converts each value; a value that cannot be converted is an error naming it.
fn field<M>(
    ctx: &PolicyCtx<'_>,
    path: &str,
    names: (&str, &str),
    values: &[String],
    not_values: &[String],
    errors: &mut Vec<ValidationError>,
    mut convert: impl FnMut(&str) -> Result<M, String>,
) -> Field<M> {
    let mut side = |list: &[String], name: &str| -> Vec<M> {
        let mut out = Vec::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            match convert(v) {
                Ok(m) => out.push(m),
                Err(msg) => errors.push(engine_error(
                    ctx.key,
                    format!("{path}.{name}[{i}]"),
                    Some(v),
                    msg,
                )),
            }
        }
        out
    };
    Field {
        any_of: side(values, names.0),
        none_of: side(not_values, names.1),
    }
}

fn cidr(v: &str) -> Result<Cidr, String> {
    Cidr::parse(v).ok_or_else(|| "not an IP address or CIDR range".to_owned())
}

fn port(v: &str) -> Result<u16, String> {
    parse_port(v).ok_or_else(|| "not a port number in [0, 65535]".to_owned())
}

fn push<M>(out: &mut Vec<Constraint>, f: Field<M>, wrap: impl FnOnce(Field<M>) -> Constraint) {
    if !f.is_empty() {
        out.push(wrap(f));
    }
}

/// `principals` values after Istio's trust-domain aliasing (`MigrateTrustDomain`).
fn principal_field(
    ctx: &PolicyCtx<'_>,
    path: &str,
    names: (&str, &str),
    values: &[String],
    not_values: &[String],
    errors: &mut Vec<ValidationError>,
) -> Field<StringMatch> {
    // Aliasing changes the number of values, so errors cannot point at an index after it;
    // principals have no invalid values anyway.
    let values = ctx.bundle.replace_aliases(values);
    let not_values = ctx.bundle.replace_aliases(not_values);
    field(ctx, path, names, &values, &not_values, errors, |v| {
        Ok(principal_matcher(v))
    })
}

/// `from[j].source` at `path` (e.g. `spec.rules[0].from[1].source`).
pub(crate) fn source_constraints(
    ctx: &PolicyCtx<'_>,
    path: &str,
    s: &Source,
    errors: &mut Vec<ValidationError>,
) -> Vec<Constraint> {
    let mut out = Vec::new();
    let f = principal_field(
        ctx,
        path,
        ("principals", "notPrincipals"),
        &s.principals,
        &s.not_principals,
        errors,
    );
    push(&mut out, f, Constraint::Principal);
    let f = field(
        ctx,
        path,
        ("requestPrincipals", "notRequestPrincipals"),
        &s.request_principals,
        &s.not_request_principals,
        errors,
        |v| Ok(RequestPrincipalMatch::parse(v)),
    );
    push(&mut out, f, Constraint::RequestPrincipal);
    let f = field(
        ctx,
        path,
        ("namespaces", "notNamespaces"),
        &s.namespaces,
        &s.not_namespaces,
        errors,
        |v| Ok(NamespaceMatch::new(v)),
    );
    push(&mut out, f, Constraint::Namespace);
    let f = field(
        ctx,
        path,
        ("serviceAccounts", "notServiceAccounts"),
        &s.service_accounts,
        &s.not_service_accounts,
        errors,
        |v| Ok(service_account_matcher(v, ctx.namespace)),
    );
    push(&mut out, f, Constraint::ServiceAccount);
    let tds = ctx.bundle.expand_trust_domains(&s.trust_domains);
    let not_tds = ctx.bundle.expand_trust_domains(&s.not_trust_domains);
    let f = field(
        ctx,
        path,
        ("trustDomains", "notTrustDomains"),
        &tds,
        &not_tds,
        errors,
        |v| Ok(StringMatch::string_matcher(v)),
    );
    push(&mut out, f, Constraint::TrustDomain);
    let f = field(
        ctx,
        path,
        ("ipBlocks", "notIpBlocks"),
        &s.ip_blocks,
        &s.not_ip_blocks,
        errors,
        cidr,
    );
    push(&mut out, f, Constraint::DirectRemoteIp);
    let f = field(
        ctx,
        path,
        ("remoteIpBlocks", "notRemoteIpBlocks"),
        &s.remote_ip_blocks,
        &s.not_remote_ip_blocks,
        errors,
        cidr,
    );
    push(&mut out, f, Constraint::RemoteIp);
    out
}

/// `to[j].operation` at `path`.
pub(crate) fn operation_constraints(
    ctx: &PolicyCtx<'_>,
    path: &str,
    o: &Operation,
    errors: &mut Vec<ValidationError>,
) -> Vec<Constraint> {
    let mut out = Vec::new();
    // Istio `HostMatcher`: `*` is present_match, otherwise ignore_case string matching on
    // `:authority` exactly as sent, so `example.com` does not match `example.com:8080`.
    let f = field(
        ctx,
        path,
        ("hosts", "notHosts"),
        &o.hosts,
        &o.not_hosts,
        errors,
        |v| Ok(StringMatch::header_matcher(v)),
    );
    push(&mut out, f, Constraint::Host);
    let f = field(
        ctx,
        path,
        ("methods", "notMethods"),
        &o.methods,
        &o.not_methods,
        errors,
        |v| Ok(StringMatch::header_matcher(v)),
    );
    push(&mut out, f, Constraint::Method);
    let f = field(
        ctx,
        path,
        ("paths", "notPaths"),
        &o.paths,
        &o.not_paths,
        errors,
        PathMatch::parse,
    );
    push(&mut out, f, Constraint::Path);
    let f = field(
        ctx,
        path,
        ("ports", "notPorts"),
        &o.ports,
        &o.not_ports,
        errors,
        port,
    );
    push(&mut out, f, Constraint::DestinationPort);
    out
}

/// `when[j]` at `path`; `None` (with an error pushed) for a key this engine cannot honour.
/// Keys are classified by [`ConditionKey::parse`], the parser validation uses, so the two
/// layers cannot disagree on what a key means.
pub(crate) fn condition_constraint(
    ctx: &PolicyCtx<'_>,
    path: &str,
    c: &Condition,
    errors: &mut Vec<ValidationError>,
) -> Option<(Side, Constraint)> {
    let names = ("values", "notValues");
    let (vs, nvs) = (&c.values, &c.not_values);
    let strings = |errors: &mut Vec<ValidationError>| {
        field(ctx, path, names, vs, nvs, errors, |v| {
            Ok(StringMatch::string_matcher(v))
        })
    };
    let key = match ConditionKey::parse(&c.key) {
        Ok(key) => key,
        Err(e) => {
            errors.push(engine_error(
                ctx.key,
                format!("{path}.key"),
                Some(&c.key),
                e.to_string(),
            ));
            return None;
        }
    };
    let made = match key {
        ConditionKey::RequestHeader(name) => {
            let f = field(ctx, path, names, vs, nvs, errors, |v| {
                Ok(StringMatch::header_matcher(v))
            });
            (
                Side::Principal,
                Constraint::Header {
                    name: name.to_ascii_lowercase().into(),
                    field: f,
                },
            )
        }
        ConditionKey::RequestAuthClaims(claim_path) => (
            Side::Principal,
            Constraint::Claim {
                path: claim_path.into_iter().map(Box::from).collect(),
                field: strings(errors),
            },
        ),
        ConditionKey::SourceIp => (
            Side::Principal,
            Constraint::DirectRemoteIp(field(ctx, path, names, vs, nvs, errors, cidr)),
        ),
        ConditionKey::RemoteIp => (
            Side::Principal,
            Constraint::RemoteIp(field(ctx, path, names, vs, nvs, errors, cidr)),
        ),
        ConditionKey::DestinationIp => (
            Side::Permission,
            Constraint::DestinationIp(field(ctx, path, names, vs, nvs, errors, cidr)),
        ),
        ConditionKey::DestinationPort => (
            Side::Permission,
            Constraint::DestinationPort(field(ctx, path, names, vs, nvs, errors, port)),
        ),
        ConditionKey::ConnectionSni => (Side::Permission, Constraint::Sni(strings(errors))),
        ConditionKey::SourceNamespace => (
            Side::Principal,
            Constraint::Namespace(field(ctx, path, names, vs, nvs, errors, |v| {
                Ok(NamespaceMatch::new(v))
            })),
        ),
        ConditionKey::SourceServiceAccount => (
            Side::Principal,
            Constraint::ServiceAccount(field(ctx, path, names, vs, nvs, errors, |v| {
                Ok(service_account_matcher(v, ctx.namespace))
            })),
        ),
        ConditionKey::SourcePrincipal => (
            Side::Principal,
            Constraint::Principal(principal_field(ctx, path, names, vs, nvs, errors)),
        ),
        ConditionKey::RequestAuthPrincipal => (
            Side::Principal,
            Constraint::RequestPrincipal(field(ctx, path, names, vs, nvs, errors, |v| {
                Ok(RequestPrincipalMatch::parse(v))
            })),
        ),
        ConditionKey::RequestAuthAudiences => {
            (Side::Principal, Constraint::Audience(strings(errors)))
        }
        ConditionKey::RequestAuthPresenter => {
            (Side::Principal, Constraint::Presenter(strings(errors)))
        }
        ConditionKey::ExperimentalEnvoyFilter { filter, key } => (
            Side::Permission,
            Constraint::FilterMetadata {
                filter: filter.into(),
                key: key.into(),
                field: field(ctx, path, names, vs, nvs, errors, |v| {
                    Ok(MetadataMatch::parse(v))
                }),
            },
        ),
    };
    Some(made)
}
