//! Lenient decoders for the bytes Envoy returns (`proxy-wasm-abi.md` §3, `envoy-properties.md`).
//!
//! Nothing here panics or trusts a length: a value of the wrong shape is an absent fact, and
//! the engine treats an absent fact the safe way (it cannot match a positive rule).

use std::net::{IpAddr, SocketAddr};

/// Envoy bools are one byte, 0x00 or 0x01 (`Context::serializeValue`). Kong's host returns the
/// text `true`/`false`; accept that too, anything else is absent.
pub fn decode_bool(bytes: &[u8]) -> Option<bool> {
    match bytes {
        [0] | b"false" => Some(false),
        [1] | b"true" => Some(true),
        _ => None,
    }
}

/// Envoy ints (`source.port`, `destination.port`) are 8-byte little-endian i64.
pub fn decode_i64(bytes: &[u8]) -> Option<i64> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    Some(i64::from_le_bytes(array))
}

/// Envoy uints (`connection_id`) are 8-byte little-endian u64.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_le_bytes(array))
}

/// `source.address` / `destination.address`: `ip:port`, IPv6 as `[ip]:port`. A bare IP (some
/// hosts) is accepted with port 0, which callers read as "port not told".
pub fn decode_socket_address(bytes: &[u8]) -> Option<SocketAddr> {
    let text = std::str::from_utf8(bytes).ok()?;
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    text.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

/// UTF-8 text, or absent.
pub fn decode_str(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// Parses proxy-wasm serialized pairs: `u32 N`, N × (`u32 key_len`, `u32 value_len`), then each
/// key and value followed by a NUL. Returns `None` for a malformed buffer, as cpp-host does
/// (`pairs_util.cc`); an empty buffer is an empty map.
pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)? as usize;
    // Each pair needs 8 bytes of sizes and 2 NULs: a count the buffer cannot hold is malformed
    // (and must not drive a huge allocation).
    if count > bytes.len() / 10 + 1 {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    for i in 0..count {
        let key_len = read_u32(bytes, 4 + i * 8)? as usize;
        let value_len = read_u32(bytes, 8 + i * 8)? as usize;
        let key = bytes.get(data..data.checked_add(key_len)?)?;
        data += key_len;
        if *bytes.get(data)? != 0 {
            return None;
        }
        data += 1;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data += value_len;
        if *bytes.get(data)? != 0 {
            return None;
        }
        data += 1;
        pairs.push((key, value));
    }
    if data != bytes.len() {
        return None;
    }
    Some(pairs)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let array: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(array))
}

/// Serializes pairs the way hosts do; used by fake hosts in tests and by the local-response
/// path.
pub fn encode_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 10 + k.as_ref().len() + v.as_ref().len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.as_ref().len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

/// A `google.protobuf.Struct` value from Envoy dynamic metadata, decoded best-effort into JSON:
/// nested maps come back as pairs, lists as pairs whose keys are the elements, strings raw,
/// numbers as 8-byte doubles, bools as one byte. The encoding does not carry types, so a
/// one-byte 0x00/0x01 reads as a bool and an 8-byte non-text value as a number.
pub fn decode_struct_value(bytes: &[u8]) -> serde_json::Value {
    use serde_json::Value;
    if let Some(pairs) = decode_pairs(bytes).filter(|p| !p.is_empty()) {
        if pairs.iter().all(|(_, v)| v.is_empty()) {
            return Value::Array(
                pairs
                    .iter()
                    .filter_map(|(k, _)| decode_str(k).map(|s| Value::String(s.to_string())))
                    .collect(),
            );
        }
        let mut object = serde_json::Map::new();
        for (k, v) in pairs {
            if let Some(key) = decode_str(k) {
                object.insert(key.to_string(), decode_struct_value(v));
            }
        }
        return Value::Object(object);
    }
    match bytes {
        [0] => return Value::Bool(false),
        [1] => return Value::Bool(true),
        _ => {}
    }
    match decode_str(bytes) {
        Some(s) if bytes.len() != 8 || s.chars().all(|c| !c.is_control()) => {
            Value::String(s.to_string())
        }
        _ => {
            let number = bytes
                .try_into()
                .ok()
                .map(f64::from_le_bytes)
                .and_then(serde_json::Number::from_f64);
            number.map_or(Value::Null, Value::Number)
        }
    }
}

/// One `google.protobuf.Value` of Envoy dynamic metadata, as far as Istio's generated
/// matchers can see it (strings, and the string elements of lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StructValue<'a> {
    Absent,
    String(&'a str),
    /// The list's string elements, in order; other elements are left out.
    List(Vec<&'a str>),
    /// A number, bool, null, struct, or a value with no kind set.
    Other,
}

impl StructValue<'_> {
    pub fn as_metadata_value(&self) -> crate::engine::MetadataValue<'_> {
        use crate::engine::MetadataValue;
        match self {
            StructValue::Absent => MetadataValue::Absent,
            StructValue::String(s) => MetadataValue::String(s),
            StructValue::List(items) => MetadataValue::List(items),
            StructValue::Other => MetadataValue::Other,
        }
    }
}

/// `filter_metadata[filter].fields[key]` from the whole `metadata` attribute, which Envoy
/// returns as a binary `envoy.config.core.v3.Metadata` (a protobuf message is serialized
/// with `SerializeToString`, `proxy-wasm-abi.md` §3.3). Read whole rather than by path
/// because the message keeps each value's kind, while a path read returns a bare string,
/// 8-byte double or 1-byte bool that cannot be told apart (an 8-byte string and a number
/// look alike). `None` when the message is malformed: the value is then unknown, and the
/// engine fails closed.
///
/// As in protobuf parsing, the last entry of a repeated map key and the last member of a
/// `oneof` win; unknown fields are skipped.
pub fn metadata_value<'a>(metadata: &'a [u8], filter: &str, key: &str) -> Option<StructValue<'a>> {
    // Metadata.filter_metadata = 1: map<string, google.protobuf.Struct>.
    let Some(fields) = map_entry(metadata, 1, filter)? else {
        return Some(StructValue::Absent);
    };
    // Struct.fields = 1: map<string, google.protobuf.Value>.
    let Some(value) = map_entry(fields, 1, key)? else {
        return Some(StructValue::Absent);
    };
    struct_value(value)
}

/// The value bytes of the last entry with `key` in the map field `number` of `message`.
fn map_entry<'a>(message: &'a [u8], number: u64, key: &str) -> Option<Option<&'a [u8]>> {
    let mut found = None;
    let mut fields = ProtoFields(message);
    while let Some((n, wire)) = fields.next_field()? {
        if n != number {
            continue;
        }
        let Wire::Bytes(entry) = wire else {
            return None;
        };
        // A map entry: key = 1, value = 2, each defaulting to empty.
        let (mut entry_key, mut entry_value): (&[u8], &[u8]) = (b"", b"");
        let mut inner = ProtoFields(entry);
        while let Some((n, wire)) = inner.next_field()? {
            match (n, wire) {
                (1, Wire::Bytes(b)) => entry_key = b,
                (2, Wire::Bytes(b)) => entry_value = b,
                (1 | 2, _) => return None,
                _ => {}
            }
        }
        if entry_key == key.as_bytes() {
            found = Some(entry_value);
        }
    }
    Some(found)
}

/// `google.protobuf.Value`: null 1, number 2, string 3, bool 4, struct 5, list 6.
fn struct_value(value: &[u8]) -> Option<StructValue<'_>> {
    let mut out = StructValue::Other;
    let mut fields = ProtoFields(value);
    while let Some((n, wire)) = fields.next_field()? {
        out = match (n, wire) {
            (1 | 4, Wire::Varint) | (2, Wire::Fixed64) | (5, Wire::Bytes(_)) => StructValue::Other,
            (3, Wire::Bytes(b)) => StructValue::String(std::str::from_utf8(b).ok()?),
            (6, Wire::Bytes(list)) => StructValue::List(list_strings(list)?),
            (1..=6, _) => return None,
            _ => continue,
        };
    }
    Some(out)
}

/// `google.protobuf.ListValue.values = 1`: the elements that are strings.
fn list_strings(list: &[u8]) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut fields = ProtoFields(list);
    while let Some((n, wire)) = fields.next_field()? {
        match (n, wire) {
            (1, Wire::Bytes(element)) => {
                if let Some(s) = element_string(element)? {
                    out.push(s);
                }
            }
            (1, _) => return None,
            _ => {}
        }
    }
    Some(out)
}

/// A list element's string, if it is one. Nested lists and structs are skipped unread, not
/// recursed into: no matcher looks inside them, and a deeply nested value must not be able
/// to exhaust the stack.
fn element_string(value: &[u8]) -> Option<Option<&str>> {
    let mut out = None;
    let mut fields = ProtoFields(value);
    while let Some((n, wire)) = fields.next_field()? {
        out = match (n, wire) {
            (3, Wire::Bytes(b)) => Some(std::str::from_utf8(b).ok()?),
            (1 | 4, Wire::Varint) | (2, Wire::Fixed64) | (5 | 6, Wire::Bytes(_)) => None,
            (1..=6, _) => return None,
            _ => continue,
        };
    }
    Some(out)
}

/// A protobuf field's payload (wire types 0, 1, 2, 5; groups are never used by these
/// messages and are treated as malformed).
enum Wire<'a> {
    Varint,
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32,
}

/// Fields of one protobuf message, in wire order.
struct ProtoFields<'a>(&'a [u8]);

impl<'a> ProtoFields<'a> {
    /// `Some(None)` at the end, `None` when malformed.
    fn next_field(&mut self) -> Option<Option<(u64, Wire<'a>)>> {
        if self.0.is_empty() {
            return Some(None);
        }
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 {
            return None;
        }
        let wire = match tag & 7 {
            0 => {
                self.varint()?;
                Wire::Varint
            }
            1 => {
                self.take(8)?;
                Wire::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            _ => return None,
        };
        Some(Some((number, wire)))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(head)
    }
}

/// Encodes dynamic metadata (`{"<filter>": {"<key>": <JSON value>}}`) as the binary
/// `envoy.config.core.v3.Metadata` Envoy returns for `metadata`; for fake hosts in tests.
/// JSON numbers become doubles, as in a `google.protobuf.Struct`.
pub fn encode_metadata(filter_metadata: &serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for (filter, fields) in filter_metadata {
        let mut structure = Vec::new();
        if let serde_json::Value::Object(fields) = fields {
            for (key, value) in fields {
                let mut entry = Vec::new();
                put_bytes(&mut entry, 1, key.as_bytes());
                put_bytes(&mut entry, 2, &encode_value(value));
                put_bytes(&mut structure, 1, &entry);
            }
        }
        let mut entry = Vec::new();
        put_bytes(&mut entry, 1, filter.as_bytes());
        put_bytes(&mut entry, 2, &structure);
        put_bytes(&mut out, 1, &entry);
    }
    out
}

fn encode_value(value: &serde_json::Value) -> Vec<u8> {
    use serde_json::Value;
    let mut out = Vec::new();
    match value {
        Value::Null => {
            put_varint(&mut out, 1 << 3);
            put_varint(&mut out, 0);
        }
        Value::Number(n) => {
            put_varint(&mut out, (2 << 3) | 1);
            out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_le_bytes());
        }
        Value::String(s) => put_bytes(&mut out, 3, s.as_bytes()),
        Value::Bool(b) => {
            put_varint(&mut out, 4 << 3);
            put_varint(&mut out, u64::from(*b));
        }
        Value::Object(fields) => {
            let mut structure = Vec::new();
            for (key, value) in fields {
                let mut entry = Vec::new();
                put_bytes(&mut entry, 1, key.as_bytes());
                put_bytes(&mut entry, 2, &encode_value(value));
                put_bytes(&mut structure, 1, &entry);
            }
            put_bytes(&mut out, 5, &structure);
        }
        Value::Array(items) => {
            let mut list = Vec::new();
            for item in items {
                put_bytes(&mut list, 1, &encode_value(item));
            }
            put_bytes(&mut out, 6, &list);
        }
    }
    out
}

fn put_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    put_varint(out, (number << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}
