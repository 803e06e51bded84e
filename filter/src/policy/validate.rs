//! Istio's admission validation of `AuthorizationPolicy`.
//!
//! Follows istio/istio `pkg/config/validation/validation.go` (`ValidateAuthorizationPolicy`,
//! `validateWorkloadSelector`, `validatePolicyTargetReference`, `validateOneOfSelectorType`),
//! `pkg/config/security/security.go` (`ValidateAttribute`, `ValidateIPs`, `ValidatePorts`,
//! `CheckEmptyValues`, `CheckServiceAccount`, `CheckValidPathTemplate`) and the CRD's
//! `x-kubernetes-validations` / `maxItems` / `maxLength`, and the `istio.io/dry-run` check
//! Istio wraps around every validator (`validateAnnotationDryRun`).
//!
//! A policy Istio admits is never rejected here: the user's mesh already runs it, and a
//! rejected configuration fails every request. Values Istio admits but that cannot mean what
//! their author wrote (a principal written with `spiffe://`, a `*` in the middle of a value)
//! become configure-time warnings ([`warnings`]); the engine then matches them exactly as
//! Istio's generated Envoy config does. Stricter than Istio's admission only where Envoy
//! would refuse the config Istio builds (a path template without a leading `/`), where
//! Kubernetes fills in what a pasted policy may lack (`metadata.namespace`), and for action
//! CUSTOM, which needs an ext_authz provider this filter does not have: denying what its rules
//! match (Istio's answer to a missing provider) would deny, inside a mesh, requests Istio's
//! own ext_authz filter lets through, and ignoring it would skip the check on a standalone
//! Envoy, so the configuration is refused with that reason.
//!
//! Every error is collected (nothing stops at the first one).

use super::condition_key::{
    validate_ip_block, validate_service_account, ConditionKey, ConditionValueError,
    ConditionValueKind,
};
use super::error::{Problem, ValidationError};
use super::model::{
    Action, AuthorizationPolicy, Condition, Operation, PolicyTargetReference, Rule, Source,
    DRY_RUN_ANNOTATION,
};

/// Istio's `constants.AlwaysReject`: its webhook refuses any object carrying it.
const ALWAYS_REJECT_ANNOTATION: &str = "internal.istio.io/webhook-always-reject";
/// Istio's `constants.InternalParentNames`: set on configs Istio generates, never by users.
const INTERNAL_PARENTS_ANNOTATION: &str = "internal.istio.io/parents";
/// CRD `maxItems` of `spec.rules` and of `spec.rules[].from`.
const MAX_RULES: usize = 512;
const MAX_FROM: usize = 512;
/// CRD `maxItems` of `spec.targetRefs` and of `serviceAccounts` / `notServiceAccounts`.
const MAX_TARGET_REFS: usize = 16;
const MAX_SERVICE_ACCOUNTS: usize = 16;
/// CRD `maxLength` of `targetRef(s).name`.
const MAX_TARGET_NAME_LEN: usize = 253;
/// CRD `maxLength` of a selector label value and `maxProperties` of `matchLabels`.
const MAX_LABEL_VALUE_LEN: usize = 63;
const MAX_LABELS: usize = 4096;

/// Validates one policy as Istio's admission webhook and CRD schema would.
///
/// Returns every error found, each naming the policy (`namespace/name`), the field path and
/// the offending value.
pub fn validate(policy: &AuthorizationPolicy) -> Result<(), Vec<ValidationError>> {
    let errors = validate_labelled(policy, &policy_label(policy, None));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// What Istio admits but flags, or admits although the value cannot do what it says: one
/// entry per value, in the same one-line format as errors. Empty for a clean policy.
pub fn warnings(policy: &AuthorizationPolicy) -> Vec<ValidationError> {
    Validator::run(policy, &policy_label(policy, None)).warnings
}

/// How errors name a policy: `namespace/name`, or the list position when it has no name.
pub(crate) fn policy_label(policy: &AuthorizationPolicy, item: Option<usize>) -> String {
    label(&policy.metadata.namespace, &policy.metadata.name, item)
}

/// `namespace/name`, or `name`, `namespace/<unnamed>`, `items[N]` when parts are missing.
pub(crate) fn label(namespace: &str, name: &str, item: Option<usize>) -> String {
    match (name.is_empty(), item) {
        (true, Some(i)) => format!("items[{i}]"),
        (true, None) => format!("{namespace}/<unnamed>"),
        (false, _) if namespace.is_empty() => name.to_owned(),
        (false, _) => format!("{namespace}/{name}"),
    }
}

pub(crate) fn validate_labelled(policy: &AuthorizationPolicy, label: &str) -> Vec<ValidationError> {
    Validator::run(policy, label).errors
}

/// Go's `strconv.ParseBool`, which Istio uses for `istio.io/dry-run`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

struct Validator<'a> {
    policy: &'a str,
    errors: Vec<ValidationError>,
    warnings: Vec<ValidationError>,
}

impl<'a> Validator<'a> {
    fn run(policy: &AuthorizationPolicy, label: &'a str) -> Validator<'a> {
        let mut v = Validator {
            policy: label,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        v.policy(policy);
        v
    }

    fn error(&mut self, field: impl Into<String>, problem: Problem) {
        self.errors
            .push(ValidationError::new(self.policy, field, problem));
    }

    fn error_value(&mut self, field: impl Into<String>, value: &str, problem: Problem) {
        self.errors
            .push(ValidationError::new(self.policy, field, problem).with_value(value));
    }

    fn warn(&mut self, field: impl Into<String>, value: Option<&str>, problem: Problem) {
        let w = ValidationError::new(self.policy, field, problem);
        self.warnings.push(match value {
            Some(v) => w.with_value(v),
            None => w,
        });
    }

    fn policy(&mut self, policy: &AuthorizationPolicy) {
        if let Some(api_version) = &policy.api_version {
            if api_version != "security.istio.io/v1" && api_version != "security.istio.io/v1beta1" {
                self.error_value("apiVersion", api_version, Problem::ApiVersion);
            }
        }
        if let Some(kind) = &policy.kind {
            if kind != "AuthorizationPolicy" {
                self.error_value("kind", kind, Problem::Kind);
            }
        }
        let (name, namespace) = (&policy.metadata.name, &policy.metadata.namespace);
        if name.is_empty() {
            self.error("metadata.name", Problem::Required);
        } else if !is_dns_subdomain(name) {
            self.error_value("metadata.name", name, Problem::ObjectName);
        }
        // Kubernetes always sets it; a pasted policy without one could be meant for any
        // namespace (even the root namespace, i.e. mesh-wide), so it is not guessed.
        if namespace.is_empty() {
            self.error("metadata.namespace", Problem::Required);
        } else if !is_dns_label(namespace) {
            self.error_value("metadata.namespace", namespace, Problem::NamespaceName);
        }
        let action = policy.action();
        self.dry_run(policy, action);
        self.internal_annotations(policy);
        self.selector_and_targets(policy);

        let spec = &policy.spec;
        let rules = spec.rules.as_deref().unwrap_or_default();
        // Proto decoding turns `rules: []` into "no rules", so both forms are caught.
        match (action, &spec.provider) {
            (Action::Custom, _) if rules.is_empty() => {
                self.error("spec.rules", Problem::CustomWithoutRules)
            }
            (Action::Custom, None) => self.error("spec.provider.name", Problem::Required),
            (Action::Custom, Some(provider)) if provider.name.is_empty() => {
                self.error("spec.provider.name", Problem::Required)
            }
            (Action::Custom, Some(_)) | (_, None) => {}
            (other, Some(_)) => self.error(
                "spec.provider",
                Problem::ProviderWithoutCustom(action_name(other).to_owned()),
            ),
        }
        if action == Action::Custom {
            self.error_value("spec.action", "CUSTOM", Problem::CustomUnsupported);
        }
        if action == Action::Deny && rules.is_empty() {
            self.error("spec.rules", Problem::DenyWithoutRules);
        }
        if rules.len() > MAX_RULES {
            self.error("spec.rules", Problem::TooManyItems(MAX_RULES));
        }
        for (i, rule) in rules.iter().enumerate() {
            let field = format!("spec.rules[{i}]");
            if action == Action::Custom {
                self.custom_rule(&field, rule);
            }
            self.rule(&field, rule);
        }
    }

    /// Istio's ValidateAuthorizationPolicy: a CUSTOM rule cannot match on the peer or request
    /// identity (the ext_authz provider is asked instead).
    fn custom_rule(&mut self, field: &str, rule: &Rule) {
        for (j, from) in rule.from.iter().enumerate() {
            let Some(s) = &from.source else { continue };
            let identity_fields: [(&str, &[String]); 8] = [
                ("namespaces", &s.namespaces),
                ("notNamespaces", &s.not_namespaces),
                ("serviceAccounts", &s.service_accounts),
                ("notServiceAccounts", &s.not_service_accounts),
                ("principals", &s.principals),
                ("notPrincipals", &s.not_principals),
                ("requestPrincipals", &s.request_principals),
                ("notRequestPrincipals", &s.not_request_principals),
            ];
            for (name, values) in identity_fields {
                if !values.is_empty() {
                    self.error(
                        format!("{field}.from[{j}].source.{name}"),
                        Problem::NotWithCustom,
                    );
                }
            }
        }
        for (k, condition) in rule.when.iter().enumerate() {
            let key = condition.key.as_str();
            if matches!(
                key,
                "source.namespace" | "source.serviceAccount" | "source.principal"
            ) || key.starts_with("request.auth.")
            {
                self.error_value(
                    format!("{field}.when[{k}].key"),
                    key,
                    Problem::NotWithCustom,
                );
            }
        }
    }

    fn dry_run(&mut self, policy: &AuthorizationPolicy, action: Action) {
        let Some(value) = policy.metadata.annotations.get(DRY_RUN_ANNOTATION) else {
            return;
        };
        let field = format!("metadata.annotations[{DRY_RUN_ANNOTATION:?}]");
        // Istio's checkDryRunAnnotation: on AUDIT and CUSTOM the annotation's mere presence
        // is refused, whatever its value ("false" included); on ALLOW and DENY it must parse.
        if matches!(action, Action::Audit | Action::Custom) {
            self.error(field, Problem::DryRunAction(action_name(action).to_owned()));
        } else if parse_bool(value).is_none() {
            self.error_value(field, value, Problem::DryRunValue);
        }
    }

    /// Istio's validateMetadata, around every validator: `internal.istio.io/*` annotations
    /// that only Istio itself may set are refused (constants.AlwaysReject and
    /// InternalParentNames).
    fn internal_annotations(&mut self, policy: &AuthorizationPolicy) {
        for (annotation, problem) in [
            (ALWAYS_REJECT_ANNOTATION, Problem::AlwaysRejectAnnotation),
            (INTERNAL_PARENTS_ANNOTATION, Problem::InternalAnnotation),
        ] {
            if policy.metadata.annotations.contains_key(annotation) {
                self.error(format!("metadata.annotations[{annotation:?}]"), problem);
            }
        }
    }

    fn selector_and_targets(&mut self, policy: &AuthorizationPolicy) {
        let spec = &policy.spec;
        let set = usize::from(spec.selector.is_some())
            + usize::from(spec.target_ref.is_some())
            + usize::from(!spec.target_refs.is_empty());
        if set > 1 {
            self.error("spec", Problem::SelectorConflict);
        }
        if let Some(selector) = &spec.selector {
            // Istio's validateWorkloadSelector warns; the selector then selects every
            // workload of the namespace.
            if selector.match_labels.is_empty() {
                self.warn("spec.selector", None, Problem::SelectorWithoutLabels);
            }
            if selector.match_labels.len() > MAX_LABELS {
                self.error(
                    "spec.selector.matchLabels",
                    Problem::TooManyItems(MAX_LABELS),
                );
            }
            for (key, value) in &selector.match_labels {
                let field = format!("spec.selector.matchLabels[{key:?}]");
                if key.is_empty() {
                    self.error("spec.selector.matchLabels", Problem::EmptyLabelKey);
                }
                if key.contains('*') {
                    self.error_value("spec.selector.matchLabels", key, Problem::SelectorWildcard);
                }
                if value.contains('*') {
                    self.error_value(field.clone(), value, Problem::SelectorWildcard);
                }
                if value.len() > MAX_LABEL_VALUE_LEN {
                    self.error_value(field, value, Problem::LabelValueTooLong);
                }
            }
        }
        if let Some(target_ref) = &spec.target_ref {
            self.target_ref("spec.targetRef", target_ref);
        }
        if spec.target_refs.len() > MAX_TARGET_REFS {
            self.error("spec.targetRefs", Problem::TooManyItems(MAX_TARGET_REFS));
        }
        for (i, target_ref) in spec.target_refs.iter().enumerate() {
            self.target_ref(&format!("spec.targetRefs[{i}]"), target_ref);
        }
    }

    fn target_ref(&mut self, field: &str, target_ref: &PolicyTargetReference) {
        if target_ref.name.is_empty() {
            self.error(format!("{field}.name"), Problem::Required);
        } else if target_ref.name.len() > MAX_TARGET_NAME_LEN {
            self.error_value(
                format!("{field}.name"),
                &target_ref.name,
                Problem::TooLong(MAX_TARGET_NAME_LEN),
            );
        }
        if !target_ref.namespace.is_empty() {
            self.error_value(
                format!("{field}.namespace"),
                &target_ref.namespace,
                Problem::TargetRefNamespace,
            );
        }
        if target_ref.kind.is_empty() {
            self.error(format!("{field}.kind"), Problem::Required);
            return;
        }
        // Istio's allowedTargetRefs, compared on (canonical group, kind); "" is the core group.
        let allowed = matches!(
            (target_ref.group.as_str(), target_ref.kind.as_str()),
            ("" | "core", "Service")
                | ("networking.istio.io", "ServiceEntry")
                | ("gateway.networking.k8s.io", "Gateway" | "GatewayClass")
        );
        if !allowed {
            let value = format!("{}/{}", target_ref.group, target_ref.kind);
            self.error_value(field, &value, Problem::TargetRefKind);
        }
    }

    fn rule(&mut self, field: &str, rule: &Rule) {
        if rule.from.len() > MAX_FROM {
            self.error(format!("{field}.from"), Problem::TooManyItems(MAX_FROM));
        }
        for (j, from) in rule.from.iter().enumerate() {
            let field = format!("{field}.from[{j}].source");
            match &from.source {
                None => self.error(field, Problem::Required),
                Some(source) => self.source(&field, source),
            }
        }
        for (j, to) in rule.to.iter().enumerate() {
            let field = format!("{field}.to[{j}].operation");
            match &to.operation {
                None => self.error(field, Problem::Required),
                Some(operation) => self.operation(&field, operation),
            }
        }
        for (k, condition) in rule.when.iter().enumerate() {
            self.condition(&format!("{field}.when[{k}]"), condition);
        }
    }

    fn source(&mut self, field: &str, s: &Source) {
        let string_fields: [(&str, &[String]); 8] = [
            ("principals", &s.principals),
            ("notPrincipals", &s.not_principals),
            ("requestPrincipals", &s.request_principals),
            ("notRequestPrincipals", &s.not_request_principals),
            ("namespaces", &s.namespaces),
            ("notNamespaces", &s.not_namespaces),
            ("trustDomains", &s.trust_domains),
            ("notTrustDomains", &s.not_trust_domains),
        ];
        let ip_fields: [(&str, &[String]); 4] = [
            ("ipBlocks", &s.ip_blocks),
            ("notIpBlocks", &s.not_ip_blocks),
            ("remoteIpBlocks", &s.remote_ip_blocks),
            ("notRemoteIpBlocks", &s.not_remote_ip_blocks),
        ];
        let account_fields: [(&str, &[String]); 2] = [
            ("serviceAccounts", &s.service_accounts),
            ("notServiceAccounts", &s.not_service_accounts),
        ];
        let all_empty = string_fields
            .iter()
            .chain(&ip_fields)
            .chain(&account_fields)
            .all(|(_, values)| values.is_empty());
        if all_empty {
            self.error(field, Problem::EmptyObject);
        }
        // The CRD's x-kubernetes-validations rule and Istio's "cannot set serviceAccounts with
        // namespaces or principals": a service account already names its namespace.
        let identity_set = !(s.principals.is_empty()
            && s.not_principals.is_empty()
            && s.namespaces.is_empty()
            && s.not_namespaces.is_empty());
        let accounts_set = !(s.service_accounts.is_empty() && s.not_service_accounts.is_empty());
        if identity_set && accounts_set {
            self.error(field, Problem::ServiceAccountsWithPrincipals);
        }
        for (name, values) in string_fields {
            let field = format!("{field}.{name}");
            self.non_empty(&field, values);
            // Namespaces are regexes with every `*` a `.*` (srcNamespaceGenerator), so a
            // `*` anywhere means what it says there.
            if !matches!(name, "namespaces" | "notNamespaces") {
                self.wildcard_placement(&field, values);
            }
        }
        for (name, values) in [
            ("principals", &s.principals),
            ("notPrincipals", &s.not_principals),
        ] {
            self.spiffe_prefix(&format!("{field}.{name}"), values);
        }
        for (name, values) in ip_fields {
            for (n, value) in values.iter().enumerate() {
                let field = format!("{field}.{name}[{n}]");
                match validate_ip_block(value) {
                    Ok(()) => {}
                    Err(ConditionValueError::Empty) => self.error(field, Problem::EmptyValue),
                    Err(e) => self.error_value(field, value, Problem::BadValue(e)),
                }
            }
        }
        for (name, values) in account_fields {
            let field = format!("{field}.{name}");
            if values.len() > MAX_SERVICE_ACCOUNTS {
                self.error(field.clone(), Problem::TooManyItems(MAX_SERVICE_ACCOUNTS));
            }
            for (n, value) in values.iter().enumerate() {
                let field = format!("{field}[{n}]");
                match validate_service_account(value) {
                    Ok(()) => {}
                    Err(ConditionValueError::Empty) => self.error(field, Problem::EmptyValue),
                    Err(_) if value.contains('*') => {
                        self.error_value(field, value, Problem::WildcardNotAllowed)
                    }
                    Err(e) => self.error_value(field, value, Problem::BadValue(e)),
                }
            }
        }
    }

    fn operation(&mut self, field: &str, op: &Operation) {
        let all_empty = [
            &op.hosts,
            &op.not_hosts,
            &op.ports,
            &op.not_ports,
            &op.methods,
            &op.not_methods,
            &op.paths,
            &op.not_paths,
        ]
        .iter()
        .all(|values| values.is_empty());
        if all_empty {
            self.error(field, Problem::EmptyObject);
        }
        for (name, values) in [
            ("hosts", &op.hosts),
            ("notHosts", &op.not_hosts),
            ("methods", &op.methods),
            ("notMethods", &op.not_methods),
        ] {
            let field = format!("{field}.{name}");
            self.non_empty(&field, values);
            self.wildcard_placement(&field, values);
        }
        for (name, values) in [("ports", &op.ports), ("notPorts", &op.not_ports)] {
            for (n, value) in values.iter().enumerate() {
                let field = format!("{field}.{name}[{n}]");
                if value.is_empty() {
                    self.error(field, Problem::EmptyValue);
                } else if super::condition_key::parse_port(value).is_none() {
                    self.error_value(
                        field,
                        value,
                        Problem::BadValue(ConditionValueError::BadPort),
                    );
                }
            }
        }
        for (name, values) in [("paths", &op.paths), ("notPaths", &op.not_paths)] {
            for (n, value) in values.iter().enumerate() {
                let field = format!("{field}.{name}[{n}]");
                if value.is_empty() {
                    self.error(field, Problem::EmptyValue);
                } else if let Err(problem) = check_path_template(value) {
                    self.error_value(field, value, problem);
                } else if !is_path_template(value) {
                    self.misplaced_wildcard(field, value);
                }
            }
        }
    }

    fn condition(&mut self, field: &str, condition: &Condition) {
        let key = match ConditionKey::parse(&condition.key) {
            Ok(key) => Some(key),
            Err(e) if e.drops_condition() => {
                self.warn(
                    format!("{field}.key"),
                    Some(&condition.key),
                    Problem::BadConditionKey(e),
                );
                self.non_empty(&format!("{field}.values"), &condition.values);
                self.non_empty(&format!("{field}.notValues"), &condition.not_values);
                None
            }
            Err(e) if condition.key.is_empty() => {
                self.error(format!("{field}.key"), Problem::BadConditionKey(e));
                None
            }
            Err(e) => {
                self.error_value(
                    format!("{field}.key"),
                    &condition.key,
                    Problem::BadConditionKey(e),
                );
                None
            }
        };
        if condition.values.is_empty() && condition.not_values.is_empty() {
            self.error(field, Problem::ConditionWithoutValues);
        }
        let Some(key) = key else { return };
        if key == ConditionKey::SourcePrincipal {
            self.spiffe_prefix(&format!("{field}.values"), &condition.values);
            self.spiffe_prefix(&format!("{field}.notValues"), &condition.not_values);
        }
        for (name, values) in [
            ("values", &condition.values),
            ("notValues", &condition.not_values),
        ] {
            // ValidateAttribute hands source.serviceAccount values to CheckServiceAccount,
            // which also caps their number.
            if key == ConditionKey::SourceServiceAccount && values.len() > MAX_SERVICE_ACCOUNTS {
                self.error(
                    format!("{field}.{name}"),
                    Problem::TooManyItems(MAX_SERVICE_ACCOUNTS),
                );
            }
            for (n, value) in values.iter().enumerate() {
                let field = format!("{field}.{name}[{n}]");
                match key.validate_value(value) {
                    Err(ConditionValueError::Empty) => self.error(field, Problem::EmptyValue),
                    Err(ConditionValueError::BadServiceAccount(_)) if value.contains('*') => {
                        self.error_value(field, value, Problem::WildcardNotAllowed)
                    }
                    Err(e) => self.error_value(field, value, Problem::BadValue(e)),
                    Ok(()) => {
                        let globbed = key == ConditionKey::SourceNamespace;
                        if key.value_kind() == ConditionValueKind::StringMatch && !globbed {
                            self.misplaced_wildcard(field, value);
                        }
                    }
                }
            }
        }
    }

    /// Istio's builder prepends `spiffe://` to every principal (`StringMatcherWithPrefix`),
    /// so `spiffe://td/ns/a/sa/b` becomes `spiffe://spiffe://...` and never matches: a DENY
    /// written that way denies nothing, a `notPrincipals` entry excludes nothing. Istio
    /// admits it, so it is a warning and the engine matches it the same way.
    fn spiffe_prefix(&mut self, field: &str, values: &[String]) {
        for (n, value) in values.iter().enumerate() {
            if value.starts_with("spiffe://") {
                self.warn(format!("{field}[{n}]"), Some(value), Problem::SpiffePrefix);
            }
        }
    }

    /// Istio's CheckEmptyValues.
    fn non_empty(&mut self, field: &str, values: &[String]) {
        for (n, value) in values.iter().enumerate() {
            if value.is_empty() {
                self.error(format!("{field}[{n}]"), Problem::EmptyValue);
            }
        }
    }

    /// A `*` Istio's matchers do not read as a wildcard: admitted, warned about.
    fn wildcard_placement(&mut self, field: &str, values: &[String]) {
        for (n, value) in values.iter().enumerate() {
            self.misplaced_wildcard(format!("{field}[{n}]"), value);
        }
    }

    fn misplaced_wildcard(&mut self, field: String, value: &str) {
        if !is_well_placed(value) {
            self.warn(field, Some(value), Problem::WildcardPlacement);
        }
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Allow => "ALLOW",
        Action::Deny => "DENY",
        Action::Audit => "AUDIT",
        Action::Custom => "CUSTOM",
    }
}

/// Istio's matchers (`matcher.StringMatcher`, `HeaderMatcher`, `PathMatcher`) read a value as
/// `*` (presence), `*suffix`, `prefix*` or exact, checked in that order. Istio admits any
/// other `*`, which is then literal (`/a*b` matches only the text `/a*b`) or part of a
/// suffix (`*a*` is the suffix `a*`): never what its author meant.
fn is_well_placed(value: &str) -> bool {
    let stars = value.matches('*').count();
    stars == 0 || value == "*" || (stars == 1 && (value.starts_with('*') || value.ends_with('*')))
}

const MATCH_ONE: &str = "{*}";
const MATCH_ANY: &str = "{**}";

/// Istio's `ContainsPathTemplate`.
fn is_path_template(path: &str) -> bool {
    path.contains(MATCH_ONE) || path.contains(MATCH_ANY)
}

/// `paths` / `notPaths`: Istio's `CheckValidPathTemplate`: templates `{*}` = one segment,
/// `{**}` = any suffix, nothing after `{**}` but literals, every other segment of a template a
/// valid RFC 3986 pchar literal, and no `{`/`}` outside a template in any path.
fn check_path_template(path: &str) -> Result<(), Problem> {
    let is_template = is_path_template(path);
    // Stricter than CheckValidPathTemplate, which trims the slashes first: Istio passes the
    // template on as an Envoy uri_template, whose parser wants a leading '/', so Envoy would
    // refuse the RBAC config Istio builds from `{*}/a` and the workload would get no policy.
    if is_template && !path.starts_with('/') {
        return Err(Problem::PathTemplate(
            "a template must start with '/' (Envoy's uri_template matcher refuses it)",
        ));
    }
    let mut found_match_any = false;
    for glob in path.trim_matches('/').split('/') {
        let is_operator = glob == MATCH_ONE || glob == MATCH_ANY;
        if is_operator && found_match_any {
            return Err(Problem::PathTemplate("{**} is not the last operator"));
        }
        if is_operator {
            found_match_any = glob == MATCH_ANY;
            continue;
        }
        if glob.contains(['{', '}']) {
            return Err(Problem::PathTemplate(
                "'{' or '}' outside a {*} or {**} template",
            ));
        }
        if is_template && !is_valid_literal(glob) {
            return Err(Problem::PathTemplate(
                "a segment beside a template must be a non-empty RFC 3986 pchar literal",
            ));
        }
    }
    Ok(())
}

/// Istio's `validLiteral`: `^[a-zA-Z0-9-._~%!$&'()+,;:@=]+$`.
fn is_valid_literal(glob: &str) -> bool {
    !glob.is_empty()
        && glob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=".contains(&b))
}

/// Kubernetes namespace names: an RFC 1123 label (lower-case alphanumerics and `-`, starting
/// and ending with an alphanumeric, at most 63 characters).
fn is_dns_label(value: &str) -> bool {
    value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.is_empty()
}

/// Kubernetes object names: an RFC 1123 subdomain (dot-separated labels, at most 253).
fn is_dns_subdomain(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(is_dns_label)
}
