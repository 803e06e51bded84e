//! SPIFFE IDs and trust domains, validated per the SPIFFE ID standard
//! (spiffe/spiffe `standards/SPIFFE-ID.md`; the same rules as go-spiffe's `spiffeid` package).

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

const SCHEME_PREFIX: &str = "spiffe://";

/// SPIFFE-ID.md §2.3: implementations must support IDs up to 2048 bytes; longer ones are
/// rejected so that a hostile certificate cannot make every comparison expensive.
pub const MAX_SPIFFE_ID_LEN: usize = 2048;

/// SPIFFE-ID.md §2.3: RFC 3986 caps a URI host, hence a trust domain name, at 255 bytes.
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// Which rule of the SPIFFE ID standard an input broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    #[error("cannot be empty")]
    Empty,
    #[error("is {len} bytes long, more than the {MAX_SPIFFE_ID_LEN} a SPIFFE ID may have")]
    TooLong { len: usize },
    #[error("scheme is missing or invalid: a SPIFFE ID starts with \"spiffe://\"")]
    WrongScheme,
    #[error("trust domain is missing")]
    MissingTrustDomain,
    #[error(
        "trust domain is {len} bytes long, more than the {MAX_TRUST_DOMAIN_LEN} a trust domain \
         may have"
    )]
    TrustDomainTooLong { len: usize },
    #[error("user info is not allowed in a SPIFFE ID")]
    UserInfo,
    #[error("a port is not allowed in a SPIFFE ID")]
    Port,
    #[error(
        "trust domain characters are limited to lowercase letters, digits, '.', '-' and '_', \
         found {0:?}"
    )]
    BadTrustDomainChar(char),
    #[error("a query is not allowed in a SPIFFE ID")]
    Query,
    #[error("a fragment is not allowed in a SPIFFE ID")]
    Fragment,
    #[error("path cannot contain empty segments")]
    EmptySegment,
    #[error("path cannot contain '.' or '..' segments")]
    DotSegment,
    #[error("path cannot have a trailing slash")]
    TrailingSlash,
    #[error(
        "path segment characters are limited to letters, digits, '.', '-' and '_', found {0:?}"
    )]
    BadPathChar(char),
}

/// A trust domain name, e.g. `cluster.local`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Validates a bare trust domain name (no `spiffe://`, no path), as Istio's `trustDomain`
    /// and `trustDomainAliases` are written.
    pub fn new(name: &str) -> Result<TrustDomain, SpiffeIdError> {
        validate_trust_domain(name)?;
        Ok(TrustDomain(name.to_owned()))
    }

    /// Istio's default trust domain.
    pub fn cluster_local() -> TrustDomain {
        TrustDomain(String::from("cluster.local"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TrustDomain {
    type Error = TrustDomainError;

    fn try_from(name: String) -> Result<TrustDomain, TrustDomainError> {
        match validate_trust_domain(&name) {
            Ok(()) => Ok(TrustDomain(name)),
            Err(error) => Err(TrustDomainError { name, error }),
        }
    }
}

impl FromStr for TrustDomain {
    type Err = TrustDomainError;

    fn from_str(name: &str) -> Result<TrustDomain, TrustDomainError> {
        TrustDomain::try_from(name.to_owned())
    }
}

impl AsRef<str> for TrustDomain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A configured trust domain name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trust domain {name:?}: {error}")]
pub struct TrustDomainError {
    pub name: String,
    pub error: SpiffeIdError,
}

/// A validated SPIFFE ID (`spiffe://<trust-domain><path>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    /// `<trust-domain><path>`, i.e. the ID without `spiffe://`: Istio's principal form.
    principal: String,
    trust_domain_len: usize,
}

impl SpiffeId {
    /// Parses and validates a SPIFFE ID. The scheme must be exactly `spiffe://` and the trust
    /// domain lowercase: go-spiffe's strict parser rejects `SPIFFE://` and upper case too, and
    /// Istio compares principals byte for byte, so accepting other spellings would let two
    /// strings name one identity.
    pub fn parse(id: &str) -> Result<SpiffeId, SpiffeIdError> {
        if id.is_empty() {
            return Err(SpiffeIdError::Empty);
        }
        if id.len() > MAX_SPIFFE_ID_LEN {
            return Err(SpiffeIdError::TooLong { len: id.len() });
        }
        let rest = id
            .strip_prefix(SCHEME_PREFIX)
            .ok_or(SpiffeIdError::WrongScheme)?;
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (trust_domain, tail) = rest.split_at(authority_end);
        validate_trust_domain(trust_domain)?;
        // The query or fragment is reported before any path rule it would also break.
        if let Some(at) = tail.find(['?', '#']) {
            return Err(if tail.get(at..at + 1) == Some("?") {
                SpiffeIdError::Query
            } else {
                SpiffeIdError::Fragment
            });
        }
        validate_path(tail)?;
        Ok(SpiffeId {
            principal: rest.to_owned(),
            trust_domain_len: trust_domain.len(),
        })
    }

    /// Istio principal: `<td>/ns/<ns>/sa/<sa>` (the ID without the `spiffe://` scheme).
    pub fn principal(&self) -> &str {
        &self.principal
    }

    pub fn trust_domain(&self) -> &str {
        self.principal
            .get(..self.trust_domain_len)
            .unwrap_or_default()
    }

    /// The path, with its leading `/`; empty for a trust domain's own ID.
    pub fn path(&self) -> &str {
        self.principal
            .get(self.trust_domain_len..)
            .unwrap_or_default()
    }

    /// The Kubernetes namespace of an Istio workload ID (`/ns/<ns>/sa/<sa>`, exactly: Istio's
    /// `spiffe.ParseIdentity` accepts no other shape); `None` for any other path.
    pub fn namespace(&self) -> Option<&str> {
        self.istio_parts().map(|(ns, _)| ns)
    }

    /// The Kubernetes service account of an Istio workload ID; `None` for any other path.
    pub fn service_account(&self) -> Option<&str> {
        self.istio_parts().map(|(_, sa)| sa)
    }

    fn istio_parts(&self) -> Option<(&str, &str)> {
        let mut segments = self.path().strip_prefix('/')?.split('/');
        match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => Some((ns, sa)),
            _ => None,
        }
    }

    /// Whether this is the ID of a trust domain itself (no path). X509-SVID.md §3.1/§5.2: such
    /// an ID belongs to a signing authority and never identifies a caller.
    pub fn is_trust_domain_id(&self) -> bool {
        self.path().is_empty()
    }

    /// Whether the ID belongs to `trust_domain`.
    pub fn is_member_of(&self, trust_domain: &TrustDomain) -> bool {
        self.trust_domain() == trust_domain.as_str()
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(id: &str) -> Result<SpiffeId, SpiffeIdError> {
        SpiffeId::parse(id)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME_PREFIX}{}", self.principal)
    }
}

fn validate_trust_domain(name: &str) -> Result<(), SpiffeIdError> {
    if name.is_empty() {
        return Err(SpiffeIdError::MissingTrustDomain);
    }
    // '@' and ':' are legal URI authority characters with their own meaning; naming that
    // meaning tells the user more than "bad character".
    if name.contains('@') {
        return Err(SpiffeIdError::UserInfo);
    }
    if name.contains(':') {
        return Err(SpiffeIdError::Port);
    }
    if let Some(bad) = name.chars().find(|&c| !is_trust_domain_char(c)) {
        return Err(SpiffeIdError::BadTrustDomainChar(bad));
    }
    if name.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(SpiffeIdError::TrustDomainTooLong { len: name.len() });
    }
    Ok(())
}

/// `path` is empty or starts with `/` (the caller split it off at the first `/`).
fn validate_path(path: &str) -> Result<(), SpiffeIdError> {
    let Some(segments) = path.strip_prefix('/') else {
        return Ok(());
    };
    let mut segments = segments.split('/').peekable();
    while let Some(segment) = segments.next() {
        if segment.is_empty() {
            return Err(if segments.peek().is_none() {
                SpiffeIdError::TrailingSlash
            } else {
                SpiffeIdError::EmptySegment
            });
        }
        if segment == "." || segment == ".." {
            return Err(SpiffeIdError::DotSegment);
        }
        if let Some(bad) = segment.chars().find(|&c| !is_path_char(c)) {
            return Err(SpiffeIdError::BadPathChar(bad));
        }
    }
    Ok(())
}

fn is_trust_domain_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}
