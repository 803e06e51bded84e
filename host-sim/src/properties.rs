//! `proxy_get_property`: Envoy's attribute lookup (`Context::findValue`/`getProperty`) and value
//! encodings (`Context::serializeValue`), per `envoy-properties.md`.

use std::net::SocketAddr;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value as Json;

use crate::abi::Status;
use crate::pairs;
use crate::settings::Attributes;
use crate::state::{HostState, StreamKind, StreamState};

/// A CEL value before serialization.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Bytes(Vec<u8>),
    Int(i64),
    Uint(u64),
    Double(f64),
    Bool(bool),
    Map(Vec<(Vec<u8>, Value)>),
    List(Vec<Value>),
    /// A protobuf message Envoy would serialize as binary protobuf; host-sim has no protobuf
    /// encoder, so reading it whole is a SERIALIZATION_FAILURE (its fields are readable).
    Message(Vec<(Vec<u8>, Value)>),
    Null,
}

impl Value {
    fn str(s: &str) -> Self {
        Self::Bytes(s.as_bytes().to_vec())
    }

    /// Envoy `serializeValue`: strings raw, numbers 8 bytes LE, bool 1 byte, maps/lists as pairs.
    pub fn serialize(&self) -> Result<Vec<u8>, Status> {
        Ok(match self {
            Self::Bytes(b) => b.clone(),
            Self::Int(i) => i.to_le_bytes().to_vec(),
            Self::Uint(u) => u.to_le_bytes().to_vec(),
            Self::Double(d) => d.to_le_bytes().to_vec(),
            Self::Bool(b) => vec![u8::from(*b)],
            Self::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    out.push((k.clone(), v.serialize()?));
                }
                pairs::serialize(&out)
            }
            Self::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for v in items {
                    out.push((v.serialize()?, Vec::new()));
                }
                pairs::serialize(&out)
            }
            Self::Message(_) | Self::Null => return Err(Status::SerializationFailure),
        })
    }

    /// One more path segment: a map key, a message field or a list index.
    fn index(self, segment: &[u8]) -> Option<Self> {
        match self {
            Self::Map(entries) | Self::Message(entries) => entries
                .into_iter()
                .find(|(k, _)| k.as_slice() == segment)
                .map(|(_, v)| v),
            Self::List(items) => {
                let i: usize = std::str::from_utf8(segment).ok()?.parse().ok()?;
                items.into_iter().nth(i)
            }
            _ => None,
        }
    }

    fn from_json(json: &Json) -> Self {
        match json {
            Json::Null => Self::Null,
            Json::Bool(b) => Self::Bool(*b),
            // google.protobuf.Struct numbers are doubles.
            Json::Number(n) => Self::Double(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => Self::str(s),
            Json::Array(items) => Self::List(items.iter().map(Self::from_json).collect()),
            Json::Object(map) => Self::Map(
                map.iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), Self::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// Resolves a NUL-joined property path for the effective context.
pub(crate) fn get(state: &HostState, path: &[u8]) -> Result<Vec<u8>, Status> {
    let mut segments = path.split(|b| *b == 0);
    let first = segments.next().unwrap_or_default();
    let rest: Vec<&[u8]> = segments.collect();
    let stream = state.effective_stream_ref();
    let value = match root(state, stream, first, &rest) {
        Some((value, consumed)) => {
            let mut value = value;
            for segment in rest.iter().skip(consumed) {
                value = value.index(segment).ok_or(Status::NotFound)?;
            }
            value
        }
        None => {
            // Filter state written by proxy_set_property (`wasm.<raw path>`).
            let key = [b"wasm.".as_slice(), path].concat();
            let found = stream.and_then(|s| s.filter_state.get(&key));
            return found.cloned().ok_or(Status::NotFound);
        }
    };
    value.serialize()
}

/// The value of the first segment; `consumed` says how many of `rest` were already used (so
/// the common `connection.uri_san_peer_certificate` does not build the whole connection map).
fn root(
    state: &HostState,
    stream: Option<&StreamState>,
    first: &[u8],
    rest: &[&[u8]],
) -> Option<(Value, usize)> {
    let settings = &state.settings;
    let field = rest.first().copied();
    let xds_ok = settings.attributes != Attributes::LegacyOnly;
    let legacy_ok = settings.attributes != Attributes::XdsOnly;
    match first {
        b"plugin_name" => Some((Value::str(&settings.plugin_name), 0)),
        b"plugin_root_id" => Some((Value::str(&settings.root_id), 0)),
        b"plugin_vm_id" => Some((Value::str(&settings.vm_id), 0)),
        b"xds" if xds_ok => Some((xds(state), 0)),
        b"node" if legacy_ok => Some((node(state), 0)),
        b"listener_direction" if legacy_ok => Some((Value::Int(settings.listener_direction), 0)),
        b"connection_id" => stream.map(|s| (Value::Uint(s.connection.id), 0)),
        b"connection" => {
            let s = stream?;
            match field {
                Some(f) => Some((connection_field(s, f)?, 1)),
                None => Some((whole(CONNECTION_FIELDS, |f| connection_field(s, f)), 0)),
            }
        }
        b"source" => stream.map(|s| (peer(s.source), 0)),
        b"destination" => stream.map(|s| (peer(s.destination), 0)),
        b"request" => {
            let s = stream.filter(|s| s.kind == StreamKind::Http)?;
            if !(s.live.request_headers || s.in_log) {
                return None;
            }
            match field {
                Some(f) => Some((request_field(s, f)?, 1)),
                None => Some((whole(REQUEST_FIELDS, |f| request_field(s, f)), 0)),
            }
        }
        b"response" => {
            let s = stream.filter(|s| s.kind == StreamKind::Http)?;
            match field {
                Some(f) => Some((response_field(s, f)?, 1)),
                None => Some((whole(RESPONSE_FIELDS, |f| response_field(s, f)), 0)),
            }
        }
        b"metadata" => {
            let s = stream?;
            if field.is_none() {
                // The whole `envoy.config.core.v3.Metadata` message: Envoy serializes a
                // message with `SerializeToString`, which keeps each Struct value's kind.
                return Some((Value::Bytes(metadata_message(&s.filter_metadata)), 0));
            }
            let filter_metadata = Value::Map(
                s.filter_metadata
                    .iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), Value::from_json(v)))
                    .collect(),
            );
            Some((
                Value::Message(vec![(b"filter_metadata".to_vec(), filter_metadata)]),
                0,
            ))
        }
        b"filter_state" => {
            let s = stream?;
            Some((
                Value::Map(
                    s.filter_state
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::Bytes(v.clone())))
                        .collect(),
                ),
                0,
            ))
        }
        _ => None,
    }
}

/// Binary `envoy.config.core.v3.Metadata`: `filter_metadata = 1` (map<string, Struct>);
/// `google.protobuf.Struct.fields = 1` (map<string, Value>); `Value` is null 1, number 2
/// (double), string 3, bool 4, struct 5, list 6 (`ListValue.values = 1`).
fn metadata_message(filter_metadata: &serde_json::Map<String, Json>) -> Vec<u8> {
    let mut out = Vec::new();
    for (filter, fields) in filter_metadata {
        let structure = match fields {
            Json::Object(fields) => proto_struct(fields),
            _ => Vec::new(),
        };
        proto_map_entry(&mut out, filter, &structure);
    }
    out
}

fn proto_struct(fields: &serde_json::Map<String, Json>) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in fields {
        proto_map_entry(&mut out, key, &proto_value(value));
    }
    out
}

fn proto_map_entry(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let mut entry = Vec::new();
    proto_bytes(&mut entry, 1, key.as_bytes());
    proto_bytes(&mut entry, 2, value);
    proto_bytes(out, 1, &entry);
}

fn proto_value(value: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        Json::Null => out.extend_from_slice(&[1 << 3, 0]),
        Json::Number(n) => {
            out.push((2 << 3) | 1);
            out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_le_bytes());
        }
        Json::String(s) => proto_bytes(&mut out, 3, s.as_bytes()),
        Json::Bool(b) => out.extend_from_slice(&[4 << 3, u8::from(*b)]),
        Json::Object(fields) => proto_bytes(&mut out, 5, &proto_struct(fields)),
        Json::Array(items) => {
            let mut list = Vec::new();
            for item in items {
                proto_bytes(&mut list, 1, &proto_value(item));
            }
            proto_bytes(&mut out, 6, &list);
        }
    }
    out
}

fn proto_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push((field << 3) | 2);
    let mut len = bytes.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
}

fn whole(fields: &[&str], get: impl Fn(&[u8]) -> Option<Value>) -> Value {
    Value::Map(
        fields
            .iter()
            .filter_map(|f| get(f.as_bytes()).map(|v| (f.as_bytes().to_vec(), v)))
            .collect(),
    )
}

fn node_message(state: &HostState) -> Value {
    let node = &state.settings.node;
    Value::Message(vec![
        (b"id".to_vec(), Value::str(&node.id)),
        (b"cluster".to_vec(), Value::str(&node.cluster)),
        (
            b"metadata".to_vec(),
            Value::from_json(&Json::Object(node.metadata.clone())),
        ),
    ])
}

fn node(state: &HostState) -> Value {
    node_message(state)
}

fn xds(state: &HostState) -> Value {
    Value::Message(vec![
        (b"node".to_vec(), node_message(state)),
        (
            b"listener_direction".to_vec(),
            Value::Int(state.settings.listener_direction),
        ),
    ])
}

fn peer(addr: SocketAddr) -> Value {
    Value::Map(vec![
        (b"address".to_vec(), Value::str(&addr.to_string())),
        (b"port".to_vec(), Value::Int(i64::from(addr.port()))),
    ])
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (newer Envoy's
/// `PercentEncoding::urlEncode` for PEM).
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const CONNECTION_FIELDS: &[&str] = &[
    "id",
    "mtls",
    "requested_server_name",
    "tls_version",
    "subject_local_certificate",
    "subject_peer_certificate",
    "dns_san_local_certificate",
    "dns_san_peer_certificate",
    "uri_san_local_certificate",
    "uri_san_peer_certificate",
    "sha256_peer_certificate_digest",
    "peer_certificate",
];

fn connection_field(s: &StreamState, field: &[u8]) -> Option<Value> {
    let c = &s.connection;
    let tls = |v: Option<Value>| if c.tls { v } else { None };
    match field {
        b"id" => Some(Value::Uint(c.id)),
        // `ssl != null && peerCertificatePresented()`.
        b"mtls" => Some(Value::Bool(c.tls && c.peer_certificate_presented)),
        b"requested_server_name" => Some(Value::str(c.sni.as_deref().unwrap_or(""))),
        b"tls_version" => tls(Some(Value::str(&c.tls_version))),
        b"subject_local_certificate" => tls(Some(Value::str(""))),
        b"subject_peer_certificate" => {
            tls(Some(Value::str(c.peer_subject.as_deref().unwrap_or(""))))
        }
        b"uri_san_local_certificate" => tls(c.local_uri_sans.first().map(|u| Value::str(u))),
        b"dns_san_local_certificate" => None,
        // Only the first SAN is exposed (`uriSanPeerCertificate()[0]`).
        b"uri_san_peer_certificate" => tls(c.peer_uri_sans.first().map(|u| Value::str(u))),
        b"dns_san_peer_certificate" => tls(c.peer_dns_sans.first().map(|u| Value::str(u))),
        b"sha256_peer_certificate_digest" => tls(c
            .peer_certificate_pem
            .as_deref()
            .and_then(crate::pem::sha256_hex_of_first_certificate)
            .map(|h| Value::str(&h))),
        b"peer_certificate" => tls(c
            .peer_certificate_pem
            .as_deref()
            .map(|pem| Value::str(&utf8_percent_encode(pem, URL_ENCODE).to_string()))),
        _ => None,
    }
}

const REQUEST_FIELDS: &[&str] = &[
    "path",
    "url_path",
    "host",
    "scheme",
    "method",
    "headers",
    "referer",
    "useragent",
    "time",
    "id",
    "protocol",
    "query",
    "size",
];

fn header<'a>(map: &'a [(Vec<u8>, Vec<u8>)], name: &[u8]) -> Option<&'a [u8]> {
    map.iter()
        .find(|(k, _)| k.as_slice() == name)
        .map(|(_, v)| v.as_slice())
}

/// `request.headers`/`response.headers`: lower-case names, duplicates comma-joined
/// (`getAllOfHeaderAsString`).
fn headers_map(map: &[(Vec<u8>, Vec<u8>)]) -> Value {
    let mut out: Vec<(Vec<u8>, Value)> = Vec::new();
    for (k, v) in map {
        match out.iter_mut().find(|(name, _)| name == k) {
            Some((_, Value::Bytes(existing))) => {
                existing.push(b',');
                existing.extend_from_slice(v);
            }
            _ => out.push((k.clone(), Value::Bytes(v.clone()))),
        }
    }
    Value::Map(out)
}

fn request_field(s: &StreamState, field: &[u8]) -> Option<Value> {
    let h = &s.request_headers;
    let bytes = |name: &[u8]| header(h, name).map(|v| Value::Bytes(v.to_vec()));
    let path = header(h, b":path").unwrap_or_default();
    match field {
        b"path" => bytes(b":path"),
        b"url_path" => Some(Value::Bytes(
            path.split(|b| *b == b'?')
                .next()
                .unwrap_or_default()
                .to_vec(),
        )),
        b"host" => bytes(b":authority"),
        b"scheme" => bytes(b":scheme"),
        b"method" => bytes(b":method"),
        b"headers" => Some(headers_map(h)),
        b"referer" => bytes(b"referer"),
        b"useragent" => bytes(b"user-agent"),
        b"id" => bytes(b"x-request-id"),
        b"time" => Some(Value::Int(i64::try_from(s.start_ns).unwrap_or(i64::MAX))),
        b"protocol" => Some(Value::str(&s.protocol)),
        b"query" => {
            let query = match path.iter().position(|b| *b == b'?') {
                Some(i) => path.get(i + 1..).unwrap_or_default(),
                None => &[],
            };
            let query = query.split(|b| *b == b'#').next().unwrap_or_default();
            Some(Value::Bytes(query.to_vec()))
        }
        b"size" => {
            let declared = header(h, b"content-length")
                .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<i64>().ok());
            Some(Value::Int(declared.unwrap_or_else(|| {
                i64::try_from(s.request_body.len()).unwrap_or(i64::MAX)
            })))
        }
        _ => None,
    }
}

const RESPONSE_FIELDS: &[&str] = &["code", "code_details", "headers", "trailers", "size"];

fn response_field(s: &StreamState, field: &[u8]) -> Option<Value> {
    let code = s.response_code?;
    match field {
        b"code" => Some(Value::Int(i64::from(code))),
        b"code_details" => Some(Value::str(&s.response_details)),
        b"headers" => Some(headers_map(&s.response_headers)),
        b"trailers" => Some(headers_map(&s.response_trailers)),
        b"size" => Some(Value::Int(
            i64::try_from(s.response_body.len()).unwrap_or(i64::MAX),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// envoy-properties.md §3 cheat-sheet: the byte encodings Envoy's serializeValue produces.
    #[test]
    fn values_serialize_like_envoy() {
        type Case = (&'static str, Value, Result<Vec<u8>, Status>);
        let cases: Vec<Case> = vec![
            ("string raw", Value::str("abc"), Ok(b"abc".to_vec())),
            (
                "int 8-byte LE",
                Value::Int(8000),
                Ok(8000i64.to_le_bytes().to_vec()),
            ),
            (
                "uint 8-byte LE",
                Value::Uint(7),
                Ok(7u64.to_le_bytes().to_vec()),
            ),
            ("bool one byte", Value::Bool(true), Ok(vec![1])),
            (
                "double LE",
                Value::Double(1.5),
                Ok(1.5f64.to_le_bytes().to_vec()),
            ),
            (
                "map as pairs",
                Value::Map(vec![(b"app".to_vec(), Value::str("backend"))]),
                Ok(pairs::serialize(&[("app", "backend")])),
            ),
            (
                "list as pairs with empty values",
                Value::List(vec![Value::str("a")]),
                Ok(pairs::serialize(&[("a", "")])),
            ),
            (
                "message whole",
                Value::Message(vec![]),
                Err(Status::SerializationFailure),
            ),
            ("null", Value::Null, Err(Status::SerializationFailure)),
        ];
        for (name, value, want) in cases {
            assert_eq!(value.serialize(), want, "{name}");
        }
    }

    #[test]
    fn struct_json_maps_to_cel_values() {
        let v = Value::from_json(&serde_json::json!({"a": {"b": [1, "x"]}, "t": true}));
        let inner = v.clone().index(b"a").and_then(|a| a.index(b"b")).unwrap();
        assert_eq!(inner.clone().index(b"0"), Some(Value::Double(1.0)));
        assert_eq!(inner.index(b"1"), Some(Value::str("x")));
        assert_eq!(v.index(b"t"), Some(Value::Bool(true)));
    }

    /// `metadata` read whole is the binary Metadata message, and the filter's decoder reads
    /// back each value with its kind.
    #[test]
    fn whole_metadata_is_a_typed_message() {
        use spiffe_authz::glue::facts::{metadata_value, StructValue};
        let json = serde_json::json!({"f": {"s": "12345678", "n": 12345678.0, "l": ["a", 1], "long": "x".repeat(200)}});
        let bytes = metadata_message(json.as_object().unwrap());
        assert_eq!(
            metadata_value(&bytes, "f", "s"),
            Some(StructValue::String("12345678"))
        );
        assert_eq!(metadata_value(&bytes, "f", "n"), Some(StructValue::Other));
        assert_eq!(
            metadata_value(&bytes, "f", "l"),
            Some(StructValue::List(vec!["a"]))
        );
        let long = "x".repeat(200);
        assert_eq!(
            metadata_value(&bytes, "f", "long"),
            Some(StructValue::String(&long))
        );
        assert_eq!(metadata_value(&bytes, "g", "s"), Some(StructValue::Absent));
    }
}
