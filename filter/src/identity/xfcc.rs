//! The `x-forwarded-client-cert` (XFCC) header as Envoy writes it.
//!
//! Grammar (Envoy `docs/root/configuration/http/http_conn_man/headers.rst`; writer:
//! `ConnectionManagerUtility::mutateXfccRequestHeader` in `source/common/http/
//! conn_manager_utility.cc`): comma-separated elements, one per proxy hop, oldest first;
//! each element is `;`-separated `key=value` pairs; keys `By`, `Hash`, `Cert`, `Chain`,
//! `Subject`, `URI`, `DNS`, case-insensitive; a value containing `,` `;` or `=` is double-quoted,
//! with `\"` for a quote inside it.
//!
//! Trust: with `forward_client_cert_details: APPEND_FORWARD` (Istio's sidecar inbound default)
//! or `SANITIZE_SET`, Envoy removes the header from plaintext requests and appends (or sets) its
//! own element for an mTLS peer, so only the LAST element is Envoy's word; everything before it
//! came from the client and may be forged. The whole header is still parsed strictly: a client
//! that leaves a quote open must not be able to swallow Envoy's element into its own, so any
//! syntax error rejects the header rather than guessing where elements end.
//!
//! `By` (our own URI SANs) is not checked: a forger knows our identity, so matching it proves
//! nothing. What makes the last element trustworthy is the HCM's forwarding mode, which is
//! why this source is off unless configured.

use std::borrow::Cow;

use super::spiffe_id::SpiffeId;
use super::svid::{self, SvidError, SvidRules};

/// Why an XFCC header yields no identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XfccError {
    #[error("header is empty")]
    Empty,
    #[error("byte {offset}: expected key=value")]
    MissingEquals { offset: usize },
    #[error("byte {offset}: empty key")]
    EmptyKey { offset: usize },
    #[error("byte {offset}: quoted value is never closed")]
    UnterminatedQuote { offset: usize },
    #[error("byte {offset}: text after a closing quote (expected ';', ',' or the end)")]
    TextAfterQuote { offset: usize },
    #[error("byte {offset}: '\"' inside an unquoted value")]
    QuoteInUnquotedValue { offset: usize },
    #[error(
        "last element: unknown key {0:?} (Envoy writes By, Hash, Cert, Chain, Subject, URI, DNS)"
    )]
    UnknownKey(String),
    #[error("last element: key {0} appears more than once")]
    DuplicateKey(&'static str),
    #[error("last element has no URI and no Cert: the peer presented no SPIFFE ID")]
    NoUri,
    #[error("last element has {count} URI values; an X.509-SVID has exactly one URI SAN")]
    MultipleUris { count: usize },
    #[error("last element: URI {uri:?} does not match the certificate's SPIFFE ID {cert_id}")]
    CertUriMismatch { uri: String, cert_id: SpiffeId },
    #[error("last element: {0}")]
    Svid(SvidError),
}

/// The keys Envoy writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XfccKey {
    By,
    Hash,
    Cert,
    Chain,
    Subject,
    Uri,
    Dns,
}

impl XfccKey {
    /// Keys are case-insensitive (headers.rst).
    pub fn parse(key: &str) -> Option<XfccKey> {
        const KEYS: [(&str, XfccKey); 7] = [
            ("By", XfccKey::By),
            ("Hash", XfccKey::Hash),
            ("Cert", XfccKey::Cert),
            ("Chain", XfccKey::Chain),
            ("Subject", XfccKey::Subject),
            ("URI", XfccKey::Uri),
            ("DNS", XfccKey::Dns),
        ];
        KEYS.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|&(_, k)| k)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            XfccKey::By => "By",
            XfccKey::Hash => "Hash",
            XfccKey::Cert => "Cert",
            XfccKey::Chain => "Chain",
            XfccKey::Subject => "Subject",
            XfccKey::Uri => "URI",
            XfccKey::Dns => "DNS",
        }
    }
}

/// One hop's element: its pairs in header order, values unquoted and unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XfccElement<'a> {
    pub pairs: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> XfccElement<'a> {
    /// Values of `key`, in header order.
    pub fn values(&self, key: XfccKey) -> impl Iterator<Item = &str> {
        self.pairs
            .iter()
            .filter(move |(k, _)| XfccKey::parse(k) == Some(key))
            .map(|(_, v)| v.as_ref())
    }
}

/// Parses a whole header into its elements, oldest first.
pub fn parse(header: &str) -> Result<Vec<XfccElement<'_>>, XfccError> {
    if header.trim().is_empty() {
        return Err(XfccError::Empty);
    }
    let bytes = header.as_bytes();
    let mut elements = Vec::new();
    let mut current = XfccElement::default();
    let mut i = 0;
    loop {
        let key_start = i;
        while bytes
            .get(i)
            .is_some_and(|b| !matches!(b, b'=' | b',' | b';' | b'"'))
        {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            return Err(XfccError::MissingEquals { offset: key_start });
        }
        // Tolerate spaces a proxy may add after a comma; Envoy writes none.
        let key = header.get(key_start..i).unwrap_or_default().trim();
        if key.is_empty() {
            return Err(XfccError::EmptyKey { offset: key_start });
        }
        i += 1;
        let value = if bytes.get(i) == Some(&b'"') {
            let (value, end) = quoted_value(header, i)?;
            i = end;
            if !matches!(bytes.get(i), None | Some(b',' | b';')) {
                return Err(XfccError::TextAfterQuote { offset: i });
            }
            value
        } else {
            let start = i;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b',' | b';' => break,
                    b'"' => return Err(XfccError::QuoteInUnquotedValue { offset: i }),
                    _ => i += 1,
                }
            }
            Cow::Borrowed(header.get(start..i).unwrap_or_default())
        };
        current.pairs.push((key, value));
        match bytes.get(i) {
            None => {
                elements.push(current);
                return Ok(elements);
            }
            Some(b',') => elements.push(std::mem::take(&mut current)),
            _ => {}
        }
        i += 1;
    }
}

/// The value of a quoted string starting at the opening quote `open`, and the index just past
/// its closing quote. `\"` and `\\` are escapes; any other backslash is kept as written.
fn quoted_value(header: &str, open: usize) -> Result<(Cow<'_, str>, usize), XfccError> {
    let bytes = header.as_bytes();
    let start = open + 1;
    let mut i = start;
    let mut unescaped: Option<String> = None;
    let mut copied_to = start;
    loop {
        match bytes.get(i) {
            None => return Err(XfccError::UnterminatedQuote { offset: open }),
            Some(b'"') => {
                let tail = header.get(copied_to..i).unwrap_or_default();
                let value = match unescaped {
                    Some(mut s) => {
                        s.push_str(tail);
                        Cow::Owned(s)
                    }
                    None => Cow::Borrowed(tail),
                };
                return Ok((value, i + 1));
            }
            Some(b'\\') if matches!(bytes.get(i + 1), Some(b'"' | b'\\')) => {
                let s = unescaped.get_or_insert_with(String::new);
                s.push_str(header.get(copied_to..i).unwrap_or_default());
                copied_to = i + 1;
                i += 2;
            }
            Some(_) => i += 1,
        }
    }
}

/// The element the local Envoy appended: the last one. The whole header must parse.
pub fn last_element(header: &str) -> Result<XfccElement<'_>, XfccError> {
    parse(header)?.pop().ok_or(XfccError::Empty)
}

/// The peer's SPIFFE ID according to the last element. A `Cert` (or else the leaf of a `Chain`)
/// is verified as an X.509-SVID; without one, the element's single `URI` is taken as Envoy
/// read it from the verified peer certificate. When both are present they must agree.
pub fn peer_identity(header: &str, rules: &SvidRules<'_>) -> Result<SpiffeId, XfccError> {
    let element = last_element(header)?;
    let mut cert = None;
    let mut chain = None;
    let mut uris: Vec<&str> = Vec::new();
    for (key, value) in &element.pairs {
        let value = value.as_ref();
        match XfccKey::parse(key) {
            Some(XfccKey::Cert) => set_once(&mut cert, value, XfccKey::Cert)?,
            Some(XfccKey::Chain) => set_once(&mut chain, value, XfccKey::Chain)?,
            Some(XfccKey::Uri) => uris.push(value),
            Some(XfccKey::By | XfccKey::Hash | XfccKey::Subject | XfccKey::Dns) => {}
            None => return Err(XfccError::UnknownKey((*key).to_owned())),
        }
    }
    // Envoy writes a bare `URI=` when the peer certificate has no URI SAN.
    let uri = match uris.as_slice() {
        [] | [""] => None,
        [uri] => Some(*uri),
        many => return Err(XfccError::MultipleUris { count: many.len() }),
    };
    let from_cert = match (cert, chain) {
        (Some(cert), _) => Some(svid::verify_url_encoded_pem(cert, rules)),
        (None, Some(chain)) => Some(svid::verify_url_encoded_chain_leaf(chain, rules)),
        (None, None) => None,
    };
    match (from_cert, uri) {
        (Some(verified), uri) => {
            let id = verified.map_err(XfccError::Svid)?;
            match uri {
                Some(uri) if uri != id.to_string() => Err(XfccError::CertUriMismatch {
                    uri: uri.to_owned(),
                    cert_id: id,
                }),
                _ => Ok(id),
            }
        }
        (None, Some(uri)) => svid::check_uri_san(uri, rules).map_err(XfccError::Svid),
        (None, None) => Err(XfccError::NoUri),
    }
}

fn set_once<'v>(slot: &mut Option<&'v str>, value: &'v str, key: XfccKey) -> Result<(), XfccError> {
    if slot.is_some() {
        return Err(XfccError::DuplicateKey(key.as_str()));
    }
    *slot = Some(value);
    Ok(())
}
