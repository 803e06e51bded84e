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
/// hosts) is accepted with port 0.
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
