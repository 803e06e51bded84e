//! The proxy-wasm pairs encoding (header maps, local-reply headers, callout headers and map
//! properties), byte-exact with proxy-wasm-cpp-host `src/pairs_util.cc`.
//!
//! ```text
//! u32 N | N x (u32 key_len, u32 value_len) | N x (key, 0x00, value, 0x00)     (all LE)
//! ```

/// Envoy refuses (parses as an empty map) pair buffers above these (`include/proxy-wasm/limits.h`).
const MAX_PAIRS_BYTES: usize = 1 << 20;
const MAX_PAIRS_COUNT: usize = 1024;

/// Serializes pairs. An empty map is the empty byte string: cpp-host hands the guest ptr 0 /
/// size 0, never the 1-byte form the spec also allows (the Rust SDK would panic on that).
pub fn serialize<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let data: usize = pairs
        .iter()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + data);
    out.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&len_u32(k.as_ref().len()).to_le_bytes());
        out.extend_from_slice(&len_u32(v.as_ref().len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Parses pairs the way cpp-host `toPairs` does: any malformation (short buffer, a missing NUL
/// terminator, trailing bytes, over the limits) yields an *empty* map rather than an error,
/// which is what Envoy then acts on (e.g. `proxy_set_header_map_pairs` clears the map).
pub fn deserialize(bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    parse(bytes).unwrap_or_default()
}

fn parse(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    if bytes.len() > MAX_PAIRS_BYTES {
        return None;
    }
    let count = read_u32(bytes, 0)? as usize;
    if count > MAX_PAIRS_COUNT {
        return None;
    }
    let mut lens = Vec::with_capacity(count);
    for i in 0..count {
        let at = 4 + i * 8;
        lens.push((
            read_u32(bytes, at)? as usize,
            read_u32(bytes, at + 4)? as usize,
        ));
    }
    let mut at = 4 + count * 8;
    let mut out = Vec::with_capacity(count);
    for (klen, vlen) in lens {
        let key = bytes.get(at..at + klen)?.to_vec();
        at += klen;
        if *bytes.get(at)? != 0 {
            return None;
        }
        at += 1;
        let value = bytes.get(at..at + vlen)?.to_vec();
        at += vlen;
        if *bytes.get(at)? != 0 {
            return None;
        }
        at += 1;
        out.push((key, value));
    }
    (at == bytes.len()).then_some(out)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The corrected example of proxy-wasm-abi.md §3.1 (the spec's own bytes are wrong).
    #[test]
    fn two_pairs_encode_as_cpp_host_marshal_pairs() {
        let bytes = serialize(&[("a", "1"), ("b", "22")]);
        assert_eq!(
            bytes,
            [
                2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'1', 0, b'b',
                0, b'2', b'2', 0
            ]
        );
        assert_eq!(
            deserialize(&bytes),
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"22".to_vec())
            ]
        );
    }

    #[test]
    fn empty_map_is_zero_bytes() {
        assert!(serialize::<&str, &str>(&[]).is_empty());
        assert!(deserialize(&[]).is_empty());
    }

    /// cpp-host `toPairs`: a missing terminator or leftover bytes reject the whole buffer.
    #[test]
    fn malformed_buffers_parse_as_empty_maps() {
        let good = serialize(&[("k", "v")]);
        let mut no_nul = good.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'x';
        let mut trailing = good.clone();
        trailing.push(0);
        for (name, bytes) in [
            ("missing terminator", no_nul),
            ("trailing byte", trailing),
            ("short", good[..6].to_vec()),
            ("one NUL byte", vec![0]),
        ] {
            assert!(deserialize(&bytes).is_empty(), "{name}");
        }
    }
}
