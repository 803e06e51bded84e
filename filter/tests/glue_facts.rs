//! Decoding what Envoy returns, leniently: wrong shapes are absent facts, never panics.

use std::net::SocketAddr;

use spiffe_authz::glue::facts::{
    decode_bool, decode_i64, decode_pairs, decode_socket_address, decode_struct_value, encode_pairs,
};

#[test]
fn bools_are_one_byte_in_envoy() {
    // Envoy `Context::serializeValue`: bool -> 1 byte; Kong's host sends text.
    let cases: &[(&[u8], Option<bool>, &str)] = &[
        (&[1], Some(true), "Envoy true"),
        (&[0], Some(false), "Envoy false"),
        (b"true", Some(true), "Kong ngx_wasm_module text"),
        (b"false", Some(false), "Kong ngx_wasm_module text"),
        (&[2], None, "not a bool"),
        (&[], None, "empty"),
        (&[1, 0], None, "two bytes"),
    ];
    for (bytes, want, why) in cases {
        assert_eq!(decode_bool(bytes), *want, "{why}");
    }
}

#[test]
fn ints_are_eight_bytes_little_endian() {
    assert_eq!(decode_i64(&8000i64.to_le_bytes()), Some(8000));
    assert_eq!(decode_i64(&[1, 2, 3]), None);
    assert_eq!(decode_i64(b"8000"), None);
}

#[test]
fn addresses_are_ip_colon_port() {
    // envoy-properties.md §2: `source.address` is "ip:port", IPv6 bracketed.
    let cases: &[(&str, Option<&str>)] = &[
        ("10.0.0.1:43210", Some("10.0.0.1:43210")),
        ("[::1]:8080", Some("[::1]:8080")),
        ("10.0.0.1", Some("10.0.0.1:0")),
        ("203.0.113.9:0", Some("203.0.113.9:0")),
        ("not-an-address", None),
        ("", None),
    ];
    for (text, want) in cases {
        let want: Option<SocketAddr> = want.map(|w| w.parse().unwrap());
        assert_eq!(decode_socket_address(text.as_bytes()), want, "{text}");
    }
    assert_eq!(decode_socket_address(&[0xff, 0xfe]), None, "invalid UTF-8");
}

#[test]
fn pairs_round_trip_and_match_the_abi_example() {
    // proxy-wasm-abi.md §3.1: {"a":"1","b":"22"}.
    let encoded = encode_pairs(&[("a", "1"), ("b", "22")]);
    assert_eq!(
        encoded,
        [
            2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'1', 0, b'b', 0,
            b'2', b'2', 0
        ]
    );
    let decoded = decode_pairs(&encoded).unwrap();
    assert_eq!(
        decoded,
        vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"22"[..])]
    );
    assert_eq!(
        decode_pairs(&[]).unwrap(),
        vec![],
        "empty buffer is the empty map"
    );
}

#[test]
fn malformed_pairs_are_rejected_whole() {
    // cpp-host `pairs_util.cc` rejects the whole buffer on a bad terminator or leftovers.
    let good = encode_pairs(&[("key", "value")]);
    let mut missing_nul = good.clone();
    let last = missing_nul.len() - 1;
    missing_nul[last] = b'x';
    let mut leftover = good.clone();
    leftover.push(0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() - 2].to_vec()),
        ("terminator is not NUL", missing_nul),
        ("bytes left over", leftover),
        (
            "huge count, tiny buffer",
            vec![0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0],
        ),
        ("one byte (the spec's other empty map)", vec![0]),
    ];
    for (why, bytes) in cases {
        assert_eq!(decode_pairs(&bytes), None, "{why}");
    }
}

#[test]
fn struct_values_from_dynamic_metadata() {
    use serde_json::json;
    // Struct -> CEL map -> pairs; list -> pairs keyed by element; string raw; bool 1 byte;
    // number 8-byte double (envoy-properties.md §2, `metadata`).
    let groups = encode_pairs(&[("admins", ""), ("dev", "")]);
    let claims = encode_pairs::<&[u8], &[u8]>(&[
        (b"sub", b"alice"),
        (b"groups", &groups),
        (b"email_verified", &[1]),
        (b"level", &3.0f64.to_le_bytes()),
    ]);
    assert_eq!(
        decode_struct_value(&claims),
        json!({"sub": "alice", "groups": ["admins", "dev"], "email_verified": true, "level": 3.0})
    );
}
