//! The plugin configuration's own JSON reader (`policy::json::parse`) against serde_json on the
//! same bytes: it was written to keep the `.wasm` under its size goal (BENCHMARKS.md "Plugin"),
//! so serde_json stays the reference for what JSON is. The two must accept and reject the same
//! texts and build the same tree. Error wording is not compared here: where a text has two
//! faults the readers may name different ones first (serde_json checks a string's UTF-8 after
//! its control characters); the unit tests pin the wording of single faults.
//! Configure's streaming reader (`parse_streaming`) is held to `parse` on the same bytes.
//! The one documented difference: a number beyond `f64` (`1e400`) is refused by serde_json
//! while lexing, by our reader only where a field reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use spiffe_authz::policy::json::{self, Json, Number};

fuzz_target!(|bytes: &[u8]| {
    let ours = json::parse(bytes);
    streaming_equals_parse(bytes, &ours);
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

/// What configure runs (`parse_streaming` under `policies`, config.rs) must be `parse`: the
/// same error, or the same tree once the streamed items of the last `policies` array are put
/// back where the streamed tree holds an empty array.
fn streaming_equals_parse(bytes: &[u8], parsed: &Result<Json, json::SyntaxError>) {
    let mut items: Option<Vec<Json>> = None;
    let streamed = json::parse_streaming(bytes, "policies", &mut |step| match step {
        json::Streamed::Start => items = Some(Vec::new()),
        json::Streamed::Item(item) => items.get_or_insert_with(Vec::new).push(item),
    });
    match (streamed, parsed) {
        (Err(a), Err(b)) => assert_eq!(&a, b, "streaming and parse name different errors"),
        (Ok(mut tree), Ok(parsed)) => {
            // The last `policies` key wins: when it is an array, the tree holds it empty and
            // its items are the ones streamed since the last Start; anything else (an object,
            // a number) stays in the tree and the streamed items are not used (config.rs).
            if let Some(Json::Array(held)) = tree.get("policies") {
                assert!(held.is_empty(), "the streamed array left items in the tree: {held:?}");
                let items = items.expect("an array under policies was streamed");
                tree.take("policies");
                if let Json::Object(entries) = &mut tree {
                    entries.push(("policies".to_owned(), Json::Array(items)));
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                }
            }
            assert_eq!(&tree, parsed, "streaming and parse built different trees");
        }
        (a, b) => panic!("streaming {a:?} but parse {b:?}"),
    }
}

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
