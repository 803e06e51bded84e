//! The plugin configuration's own JSON reader (`policy::json::parse`) against serde_json on the
//! same bytes: it was written to keep the `.wasm` under its size goal (BENCHMARKS.md "Plugin"),
//! so serde_json stays the reference for what JSON is. The two must accept and reject the same
//! texts and build the same tree. Error wording is not compared here: where a text has two
//! faults the readers may name different ones first (serde_json checks a string's UTF-8 after
//! its control characters); the unit tests pin the wording of single faults.
//! The one documented difference: a number beyond `f64` (`1e400`) is refused by serde_json
//! while lexing, by our reader only where a field reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use spiffe_authz::policy::json::{self, Json, Number};

fuzz_target!(|bytes: &[u8]| {
    let ours = json::parse(bytes);
    let theirs = serde_json::from_slice::<Value>(bytes);
    match (&ours, &theirs) {
        (Ok(ours), Ok(theirs)) => assert!(same_tree(ours, theirs), "{ours:?} vs {theirs:?}"),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(theirs)) => assert!(
            theirs.to_string().starts_with("number out of range"),
            "accepted what serde_json refuses: {theirs}"
        ),
        (Err(ours), Ok(_)) => panic!("refused what serde_json accepts: {ours}"),
    }
});

/// Equal trees; a number our reader keeps as written (`Number::Other`) must be one serde_json
/// holds as a float, and an integer must be the same integer.
fn same_tree(ours: &Json, theirs: &Value) -> bool {
    match (ours, theirs) {
        (Json::Null, Value::Null) => true,
        (Json::Bool(a), Value::Bool(b)) => a == b,
        (Json::Number(Number::Unsigned(a)), Value::Number(b)) => b.as_u64() == Some(*a),
        (Json::Number(Number::Signed(a)), Value::Number(b)) => {
            b.as_u64().is_none() && b.as_i64() == Some(*a)
        }
        (Json::Number(Number::Other(_)), Value::Number(b)) => b.is_f64(),
        (Json::String(a), Value::String(b)) => a == b,
        (Json::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_tree(x, y))
        }
        // serde_json's map is sorted with the last of repeated keys; ours is documented to be.
        (Json::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a
                    .iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_tree(va, vb))
        }
        _ => false,
    }
}
