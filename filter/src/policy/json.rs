//! The plugin configuration's JSON, read without serde.
//!
//! The configuration and its policies used to go through `serde_json::Value` and serde's
//! derived deserializers, which cost about 70 KB of the `.wasm` (every derived visitor
//! instantiated for `Value`, serde's float printing for its `invalid type: floating point`
//! messages). This reader builds a small tree and the typed readers below walk it by hand,
//! so the error path (`spec.rules[0].to[0].operation.ports[0]`) falls out of the walk.
//!
//! It accepts what `serde_json::from_slice` into a `serde_json::Value` accepts (RFC 8259,
//! nesting up to 127 levels), says what serde_json says of what it refuses, and reads it the
//! same way: object keys in sorted order, a repeated key keeps its last value, and the
//! messages are serde's (`invalid type: integer
//! `80`, expected a string`, ``unknown field `x`, expected one of ...``). Where it differs:
//! - a number is never turned into `f64`: a fraction or exponent is reported as written
//!   (`floating point `1e3``, where serde printed `1000.0`), and a number too large for
//!   `f64` (`1e400`), which serde_json refused anywhere, is only refused where a value is
//!   read;
//! - a struct never reads from an array (serde's derived visitors accept `[..]` for a struct,
//!   field by field in declaration order; Kubernetes and Istio never do).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// serde_json's default nesting limit: the 128th open bracket is refused.
const MAX_DEPTH: usize = 127;

/// One JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    /// Sorted by key, each key once (the last one written wins, as in `serde_json::Map`).
    Object(Vec<(String, Json)>),
}

/// A JSON number, kept as serde_json classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Number {
    Unsigned(u64),
    /// Negative and at least `i64::MIN`.
    Signed(i64),
    /// Anything else (fraction, exponent, out of the integer ranges), as written.
    Other(String),
}

/// Why the bytes are not JSON, with serde_json's wording and position (line, and column in
/// bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: &'static str,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

/// A value that does not fit the field it is in. `path` is relative to the value read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// Innermost segment last; see [`ReadError::path`].
    segments: Vec<Segment>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl ReadError {
    pub fn new(message: impl Into<String>) -> ReadError {
        ReadError {
            segments: Vec::new(),
            message: message.into(),
        }
    }

    /// `invalid type: <what the value is>, expected <expected>`.
    pub fn invalid_type(value: &Json, expected: &str) -> ReadError {
        ReadError::new(format!("invalid type: {value}, expected {expected}"))
    }

    fn at_key(mut self, key: &str) -> ReadError {
        self.segments.push(Segment::Key(key.to_owned()));
        self
    }

    fn at_index(mut self, index: usize) -> ReadError {
        self.segments.push(Segment::Index(index));
        self
    }

    /// `spec.rules[0].to`: keys joined by dots, indexes in brackets; empty for the value
    /// itself.
    pub fn path(&self) -> String {
        let mut path = String::new();
        for segment in self.segments.iter().rev() {
            match segment {
                Segment::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Segment::Index(i) => {
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        path
    }
}

/// How serde names a value in `invalid type` messages (serde's `Unexpected`, with
/// serde_json's `null`).
impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "boolean `{b}`"),
            Json::Number(Number::Unsigned(n)) => write!(f, "integer `{n}`"),
            Json::Number(Number::Signed(n)) => write!(f, "integer `{n}`"),
            Json::Number(Number::Other(text)) => write!(f, "floating point `{text}`"),
            Json::String(s) => write!(f, "string {s:?}"),
            Json::Array(_) => f.write_str("sequence"),
            Json::Object(_) => f.write_str("map"),
        }
    }
}

/// serde's list of expected names: `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` ``.
fn one_of(names: &[&str]) -> String {
    let mut out = String::new();
    match names {
        [one] => {
            let _ = write!(out, "`{one}`");
        }
        [a, b] => {
            let _ = write!(out, "`{a}` or `{b}`");
        }
        _ => {
            out.push_str("one of ");
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "`{name}`");
            }
        }
    }
    out
}

/// Whether a struct refuses keys it does not know (serde's `deny_unknown_fields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownFields {
    Deny,
    Ignore,
}

impl Json {
    /// The value under `key` of an object; `None` for a missing key or a non-object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        let Json::Object(entries) = self else {
            return None;
        };
        entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .and_then(|i| entries.get(i))
            .map(|(_, v)| v)
    }

    /// Moves the value under `key` out of an object, leaving the object without it; `None`
    /// for a missing key or a non-object. Lets a caller convert and free one subtree at a
    /// time instead of holding the whole tree beside what it is converted into.
    pub fn take(&mut self, key: &str) -> Option<Json> {
        let Json::Object(entries) = self else {
            return None;
        };
        let i = entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()?;
        Some(entries.remove(i).1)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn read_string(&self) -> Result<String, ReadError> {
        match self {
            Json::String(s) => Ok(s.clone()),
            other => Err(ReadError::invalid_type(other, "a string")),
        }
    }

    pub fn read_bool(&self) -> Result<bool, ReadError> {
        match self {
            Json::Bool(b) => Ok(*b),
            other => Err(ReadError::invalid_type(other, "a boolean")),
        }
    }

    pub fn read_u16(&self) -> Result<u16, ReadError> {
        let out_of_range = |n: &dyn fmt::Display| {
            ReadError::new(format!("invalid value: integer `{n}`, expected u16"))
        };
        match self {
            Json::Number(Number::Unsigned(n)) => u16::try_from(*n).map_err(|_| out_of_range(n)),
            Json::Number(Number::Signed(n)) => Err(out_of_range(n)),
            other => Err(ReadError::invalid_type(other, "u16")),
        }
    }

    pub fn read_strings(&self) -> Result<Vec<String>, ReadError> {
        self.read_list(Json::read_string)
    }

    /// A sequence, each item read by `item`; an error names the item's index.
    pub fn read_list<T>(
        &self,
        item: impl Fn(&Json) -> Result<T, ReadError>,
    ) -> Result<Vec<T>, ReadError> {
        let Json::Array(items) = self else {
            return Err(ReadError::invalid_type(self, "a sequence"));
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, value) in items.iter().enumerate() {
            out.push(item(value).map_err(|e| e.at_index(i))?);
        }
        Ok(out)
    }

    /// `map<string, string>`; an error names the key.
    pub fn read_string_map(&self) -> Result<BTreeMap<String, String>, ReadError> {
        let Json::Object(entries) = self else {
            return Err(ReadError::invalid_type(self, "a map"));
        };
        let mut out = BTreeMap::new();
        for (key, value) in entries {
            out.insert(key.clone(), value.read_string().map_err(|e| e.at_key(key))?);
        }
        Ok(out)
    }

    /// An object with the given fields, in key order; `field` reads one known field and an
    /// error names it. `name` is serde's `struct X` for the wrong-type message.
    pub fn read_struct(
        &self,
        name: &str,
        fields: &[&str],
        unknown: UnknownFields,
        field: &mut dyn FnMut(&str, &Json) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        let Json::Object(entries) = self else {
            return Err(ReadError::invalid_type(self, name));
        };
        for (key, value) in entries {
            if fields.contains(&key.as_str()) {
                field(key, value).map_err(|e| e.at_key(key))?;
            } else if unknown == UnknownFields::Deny {
                return Err(ReadError::new(format!(
                    "unknown field `{key}`, expected {}",
                    one_of(fields)
                ))
                .at_key(key));
            }
        }
        Ok(())
    }

    /// A unit-only enum by its serialized name. Like serde_json's `Value`, a one-key object
    /// `{"NAME": null}` names a variant too.
    pub fn read_enum<T: Copy>(&self, variants: &[(&str, T)]) -> Result<T, ReadError> {
        let name = match self {
            Json::String(name) => name,
            Json::Object(entries) => match entries.as_slice() {
                [(name, Json::Null)] => name,
                [(_, other)] => return Err(ReadError::invalid_type(other, "unit")),
                _ => {
                    return Err(ReadError::new(
                        "invalid value: map, expected map with a single key",
                    ))
                }
            },
            other => return Err(ReadError::invalid_type(other, "string or map")),
        };
        match variants.iter().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(*v),
            None => {
                let names: Vec<&str> = variants.iter().map(|(n, _)| *n).collect();
                Err(ReadError::new(format!(
                    "unknown variant `{name}`, expected {}",
                    one_of(&names)
                )))
            }
        }
    }
}

/// `Option<T>`: `null` is `None`.
pub fn optional<T>(
    value: &Json,
    read: impl Fn(&Json) -> Result<T, ReadError>,
) -> Result<Option<T>, ReadError> {
    match value {
        Json::Null => Ok(None),
        value => read(value).map(Some),
    }
}

/// `missing field `name``.
pub fn missing_field(name: &str) -> ReadError {
    ReadError::new(format!("missing field `{name}`"))
}

impl From<&serde_json::Value> for Json {
    /// For callers that already hold a `serde_json::Value` (host-sim, tests). Floats keep
    /// serde_json's printing, so their messages are serde's own.
    fn from(value: &serde_json::Value) -> Json {
        use serde_json::Value;
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(if let Some(u) = n.as_u64() {
                Number::Unsigned(u)
            } else if let Some(i) = n.as_i64() {
                Number::Signed(i)
            } else {
                Number::Other(n.to_string())
            }),
            Value::String(s) => Json::String(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            // serde_json's map is sorted with unique keys already.
            Value::Object(map) => {
                Json::Object(map.iter().map(|(k, v)| (k.clone(), v.into())).collect())
            }
        }
    }
}

/// Parses one JSON text (whitespace around it allowed).
pub fn parse(bytes: &[u8]) -> Result<Json, SyntaxError> {
    parse_with(Parser {
        bytes,
        at: 0,
        stream: None,
    })
}

/// One step of a streamed array: a new array starts (a repeated key starts it over: the last
/// one wins), or its next item, parsed.
#[derive(Debug)]
pub enum Streamed {
    Start,
    Item(Json),
}

/// [`parse`], except that the items of an array under `key` of the top-level object go to
/// `sink` one by one as they are parsed, instead of into the tree, which holds an empty
/// array there. A large configuration is then never whole as a tree: each policy can be read
/// and freed before the next is parsed. A syntax error anywhere still fails the whole text,
/// whatever `sink` was given before it.
pub fn parse_streaming(
    bytes: &[u8],
    key: &str,
    sink: &mut dyn FnMut(Streamed),
) -> Result<Json, SyntaxError> {
    parse_with(Parser {
        bytes,
        at: 0,
        stream: Some((key, sink)),
    })
}

fn parse_with(mut parser: Parser<'_>) -> Result<Json, SyntaxError> {
    let bytes = parser.bytes;
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.at < bytes.len() {
        return Err(parser.peek_error("trailing characters"));
    }
    Ok(value)
}

/// serde_json's map: sorted by key, a repeated key replaced by its last value. Kept sorted
/// while reading (rather than by a sort at the end, whose instantiation costs several KB of
/// the `.wasm`); keys that arrive in order, as serializers write them, are simply appended.
fn insert_sorted(entries: &mut Vec<(String, Json)>, key: String, value: Json) {
    if entries.last().is_none_or(|(last, _)| *last < key) {
        entries.push((key, value));
        return;
    }
    match entries.binary_search_by(|(k, _)| k.cmp(&key)) {
        Ok(i) => {
            if let Some(slot) = entries.get_mut(i) {
                slot.1 = value;
            }
        }
        Err(i) => entries.insert(i, (key, value)),
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The top-level key whose array is streamed, and where its items go.
    stream: Option<(&'a str, &'a mut dyn FnMut(Streamed))>,
}

impl Parser<'_> {
    /// An error at what was consumed last (serde_json's `error`).
    fn error(&self, message: &'static str) -> SyntaxError {
        self.error_at(self.at, message)
    }

    /// An error at the byte looked at but not consumed (serde_json's `peek_error`).
    fn peek_error(&self, message: &'static str) -> SyntaxError {
        self.error_at(self.bytes.len().min(self.at + 1), message)
    }

    fn error_at(&self, at: usize, message: &'static str) -> SyntaxError {
        let upto = self.bytes.get(..at).unwrap_or(self.bytes);
        let line = 1 + upto.iter().filter(|&&b| b == b'\n').count();
        let column = upto.iter().rev().take_while(|&&b| b != b'\n').count();
        SyntaxError {
            message,
            line,
            column,
        }
    }

    // `inline(always)`: at `opt-level = "z"` these per-byte helpers stay calls otherwise, and
    // a 100,000-rule configuration then took more guest instructions than host-sim allows a
    // callback.
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn skip_whitespace(&mut self) {
        self.skip_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    }

    /// Moves past the bytes `keep` accepts, in one tight loop.
    #[inline(always)]
    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        self.at += rest.iter().position(|&b| !keep(b)).unwrap_or(rest.len());
    }

    fn expect_word(&mut self, word: &[u8], value: Json) -> Result<Json, SyntaxError> {
        for &want in word {
            match self.next() {
                Some(b) if b == want => {}
                Some(_) => return Err(self.error("expected ident")),
                None => return Err(self.error("EOF while parsing a value")),
            }
        }
        Ok(value)
    }

    fn value(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        self.skip_whitespace();
        match self.peek() {
            None => Err(self.error("EOF while parsing a value")),
            Some(b'n') => self.expect_word(b"null", Json::Null),
            Some(b't') => self.expect_word(b"true", Json::Bool(true)),
            Some(b'f') => self.expect_word(b"false", Json::Bool(false)),
            Some(b'"') => {
                self.at += 1;
                self.string().map(Json::String)
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.at += 1;
                if depth >= MAX_DEPTH {
                    return Err(self.error("recursion limit exceeded"));
                }
                self.array(depth + 1, false)
            }
            Some(b'{') => {
                self.at += 1;
                if depth >= MAX_DEPTH {
                    return Err(self.error("recursion limit exceeded"));
                }
                self.object(depth + 1)
            }
            Some(_) => Err(self.peek_error("expected value")),
        }
    }

    fn no_trailing_comma(&mut self, close: u8) -> Result<(), SyntaxError> {
        self.skip_whitespace();
        if self.peek() == Some(close) {
            return Err(self.peek_error("trailing comma"));
        }
        Ok(())
    }

    /// `streamed`: each item goes to the stream's sink instead of into the tree, which then
    /// holds an empty array (see [`parse_streaming`]).
    fn array(&mut self, depth: usize, streamed: bool) -> Result<Json, SyntaxError> {
        let mut items = Vec::new();
        if streamed {
            self.emit(Streamed::Start);
        }
        self.skip_whitespace();
        match self.peek() {
            Some(b']') => {
                self.at += 1;
                return Ok(Json::Array(items));
            }
            None => return Err(self.error("EOF while parsing a list")),
            Some(_) => {}
        }
        loop {
            let item = self.value(depth)?;
            if streamed {
                self.emit(Streamed::Item(item));
            } else {
                items.push(item);
            }
            self.skip_whitespace();
            match self.next() {
                Some(b',') => self.no_trailing_comma(b']')?,
                Some(b']') => {
                    // Growth leaves up to half a vector unused (four slots for one item), and
                    // a large configuration is mostly one-item lists.
                    items.shrink_to_fit();
                    return Ok(Json::Array(items));
                }
                Some(_) => return Err(self.error("expected `,` or `]`")),
                None => return Err(self.error("EOF while parsing a list")),
            }
        }
    }

    fn emit(&mut self, step: Streamed) {
        if let Some((_, sink)) = &mut self.stream {
            sink(step);
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        let mut entries: Vec<(String, Json)> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Json::Object(entries));
        }
        loop {
            self.skip_whitespace();
            match self.next() {
                Some(b'"') => {}
                Some(_) => return Err(self.error("key must be a string")),
                None if entries.is_empty() => return Err(self.error("EOF while parsing an object")),
                None => return Err(self.error("EOF while parsing a value")),
            }
            let key = self.string()?;
            self.skip_whitespace();
            match self.next() {
                Some(b':') => {}
                Some(_) => return Err(self.error("expected `:`")),
                None => return Err(self.error("EOF while parsing an object")),
            }
            let streams = depth == 1 && self.stream.as_ref().is_some_and(|(k, _)| *k == key);
            self.skip_whitespace();
            let value = if streams && self.peek() == Some(b'[') {
                self.at += 1;
                if depth >= MAX_DEPTH {
                    return Err(self.error("recursion limit exceeded"));
                }
                self.array(depth + 1, true)?
            } else {
                self.value(depth)?
            };
            insert_sorted(&mut entries, key, value);
            self.skip_whitespace();
            match self.next() {
                Some(b',') => self.no_trailing_comma(b'}')?,
                Some(b'}') => {
                    // As for arrays: most objects of a large configuration have one key.
                    entries.shrink_to_fit();
                    return Ok(Json::Object(entries));
                }
                Some(_) => return Err(self.error("expected `,` or `}`")),
                None => return Err(self.error("EOF while parsing an object")),
            }
        }
    }

    /// The rest of a string whose opening quote was read.
    fn string(&mut self) -> Result<String, SyntaxError> {
        let mut out = Vec::new();
        loop {
            let start = self.at;
            self.skip_while(|b| b != b'"' && b != b'\\' && b >= 0x20);
            let segment = self.bytes.get(start..self.at).unwrap_or_default();
            // Checked per segment so the error names the byte, as serde_json does.
            if let Err(e) = std::str::from_utf8(segment) {
                return Err(
                    self.error_at(start + e.valid_up_to() + 1, "invalid unicode code point")
                );
            }
            out.extend_from_slice(segment);
            match self.next() {
                Some(b'"') => break,
                Some(b'\\') => self.escape(&mut out)?,
                Some(_) => {
                    return Err(self.error(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                None => return Err(self.error("EOF while parsing a string")),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("invalid unicode code point"))
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), SyntaxError> {
        let simple = match self.next() {
            None => return Err(self.error("EOF while parsing a string")),
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let c = self.unicode_escape()?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            Some(_) => return Err(self.error("invalid escape")),
        };
        out.push(simple);
        Ok(())
    }

    /// `\uXXXX` (the `\u` read), a surrogate pair taking two.
    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                    return Err(self.error("unexpected end of hex escape"));
                }
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone leading surrogate in hex escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone leading surrogate in hex escape")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid unicode code point"))
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        if self.bytes.len() < self.at + 4 {
            self.at = self.bytes.len();
            return Err(self.error("EOF while parsing a string"));
        }
        let digits = self.bytes.get(self.at..self.at + 4).unwrap_or_default();
        self.at += 4;
        let mut n = 0;
        for &b in digits {
            let digit = char::from(b)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid escape"))?;
            n = n * 16 + digit;
        }
        Ok(n)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        self.skip_while(|b| b.is_ascii_digit());
        self.at - start
    }

    fn digit_expected(&self) -> SyntaxError {
        if self.peek().is_some() {
            self.peek_error("invalid number")
        } else {
            self.error("EOF while parsing a value")
        }
    }

    fn number(&mut self) -> Result<Json, SyntaxError> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.at += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.peek_error("invalid number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.digit_expected()),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            integer = false;
            if self.digits() == 0 {
                return Err(self.digit_expected());
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            integer = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.digit_expected());
            }
        }
        let text = std::str::from_utf8(self.bytes.get(start..self.at).unwrap_or_default())
            .unwrap_or_default();
        let number = if !integer {
            Number::Other(text.to_owned())
        } else if let Ok(n) = text.parse::<u64>() {
            Number::Unsigned(n)
        } else if let Some(n) = text.parse::<i64>().ok().filter(|&n| n != 0) {
            // `-0` stays apart from 0, as serde_json keeps it (as the float -0.0).
            Number::Signed(n)
        } else {
            Number::Other(text.to_owned())
        };
        Ok(Json::Number(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader against serde_json itself: the same texts accepted, the same trees built.
    #[test]
    fn accepts_what_serde_json_accepts() {
        let texts = [
            "null",
            " true ",
            "false",
            "0",
            "18446744073709551615",
            "-9223372036854775808",
            "[]",
            "{}",
            r#"{"b": 1, "a": [1, -2, "x"], "c": {"d": null}}"#,
            r#"{"k": 1, "k": 2}"#,
            r#""\u00e9\ud83d\ude00\n\t\"\\\/""#,
            "\"caf\u{e9}\"",
            "[[[[]]]]",
            "",
            "   ",
            "[1,]",
            "{\"a\":1,}",
            "{a:1}",
            "01",
            "1.",
            "-",
            ".5",
            "1e",
            "1e+",
            "tru",
            "nul",
            "[1 2]",
            "{\"a\" 1}",
            "\"unterminated",
            "\"ctl \u{1}\"",
            r#""\x""#,
            r#""\ud800""#,
            r#""\udc00x""#,
            r#""\ud800\u0041""#,
            r#""\u12""#,
            "1 2",
            "[\"a\"] x",
            "{\"policies\": [],\n \"trustDomain\": tru}",
            "[",
            "[1,",
            "[1, ",
            "[1",
            "{",
            "{ ",
            "{\"a\": 1,",
            "{\"a\": 1, ",
            "{\"a\"",
            "{\"a\":",
            "{\"a\": 1",
            "{\"policies\": [",
            "\"\\u",
            "{\"a\": [1, 2}",
            "{\"a\": 1 \"b\": 2}",
            "[\"a\", ]",
            "{\"a\": 1, }",
            "-x",
            "1.x",
            "1ex",
            "\"\\uZZZZ\"",
            "\u{feff}{}",
        ];
        for text in texts {
            let ours = parse(text.as_bytes());
            let theirs = serde_json::from_str::<serde_json::Value>(text);
            match (&ours, &theirs) {
                (Ok(ours), Ok(theirs)) => assert_eq!(ours, &Json::from(theirs), "{text:?}"),
                (Err(ours), Err(theirs)) => {
                    assert_eq!(ours.to_string(), theirs.to_string(), "{text:?}")
                }
                _ => panic!("{text:?}: ours {ours:?}, serde_json {theirs:?}"),
            }
        }
        for invalid_utf8 in [
            &b"\"\xff\""[..],
            b"{\"a\": \"x\xc3\"}",
            b"[\"\\n\xe2\x82\"]",
        ] {
            let ours = parse(invalid_utf8).map_err(|e| e.to_string());
            let theirs = serde_json::from_slice::<serde_json::Value>(invalid_utf8)
                .map_err(|e| e.to_string());
            assert_eq!(ours.err(), theirs.err(), "{invalid_utf8:?}");
        }
    }

    /// serde_json's recursion limit: 127 nested arrays parse, 128 do not; a stack overflow
    /// would trap the whole VM.
    #[test]
    fn nesting_stops_where_serde_json_stops() {
        for depth in [126, 127, 128, 100_000] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let ours = parse(text.as_bytes()).map_err(|e| e.to_string());
            let theirs =
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string());
            assert_eq!(ours.is_ok(), depth <= MAX_DEPTH, "depth {depth}");
            assert_eq!(ours.err(), theirs.err(), "depth {depth}");
        }
    }

    #[test]
    fn numbers_keep_serde_json_classes() {
        let cases = [
            ("80", Number::Unsigned(80)),
            ("-1", Number::Signed(-1)),
            ("-0", Number::Other("-0".into())),
            (
                "18446744073709551616",
                Number::Other("18446744073709551616".into()),
            ),
            ("1.5", Number::Other("1.5".into())),
            ("1E3", Number::Other("1E3".into())),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text.as_bytes()), Ok(Json::Number(want)), "{text}");
        }
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = parse(b"{\n  \"a\": tru }").unwrap_err();
        assert_eq!(e.message, "expected ident");
        assert_eq!(e.line, 2);
        assert_eq!(e.to_string(), "expected ident at line 2 column 11");
    }

    /// serde's messages (serde `de::Error`, `Unexpected`, `OneOf`; serde_json's `null`).
    #[test]
    fn read_errors_use_serde_wording() {
        let v = |text: &str| parse(text.as_bytes()).unwrap();
        let cases: Vec<(&str, Result<(), ReadError>, &str)> = vec![
            (
                "integer where a string is expected",
                v("80").read_string().map(drop),
                "invalid type: integer `80`, expected a string",
            ),
            (
                "null is a type of its own",
                v("null").read_string().map(drop),
                "invalid type: null, expected a string",
            ),
            (
                "strings are quoted with Rust escapes",
                v(r#""a\"b""#).read_bool().map(drop),
                r#"invalid type: string "a\"b", expected a boolean"#,
            ),
            (
                "a float is shown as written",
                v("1.5").read_strings().map(drop),
                "invalid type: floating point `1.5`, expected a sequence",
            ),
            (
                "u16 range",
                v("70000").read_u16().map(drop),
                "invalid value: integer `70000`, expected u16",
            ),
            (
                "u16 sign",
                v("-1").read_u16().map(drop),
                "invalid value: integer `-1`, expected u16",
            ),
            (
                "two variants",
                v(r#""X""#)
                    .read_enum(&[("STRICT", 0), ("PERMISSIVE", 1)])
                    .map(drop),
                "unknown variant `X`, expected `STRICT` or `PERMISSIVE`",
            ),
            (
                "an enum from a number",
                v("1").read_enum(&[("A", 0)]).map(drop),
                "invalid type: integer `1`, expected string or map",
            ),
            (
                "one field",
                v(r#"{"matchLabel": {}}"#).read_struct(
                    "struct WorkloadSelector",
                    &["matchLabels"],
                    UnknownFields::Deny,
                    &mut |_, _| Ok(()),
                ),
                "unknown field `matchLabel`, expected `matchLabels`",
            ),
            (
                "a struct from an array",
                v("[]").read_struct(
                    "struct Rule",
                    &["from"],
                    UnknownFields::Deny,
                    &mut |_, _| Ok(()),
                ),
                "invalid type: sequence, expected struct Rule",
            ),
        ];
        for (behaviour, got, message) in cases {
            assert_eq!(got.unwrap_err().message, message, "{behaviour}");
        }
    }

    #[test]
    fn enum_from_a_one_key_map_as_serde_json_value_does() {
        let v = parse(br#"{"DENY": null}"#).unwrap();
        assert_eq!(v.read_enum(&[("ALLOW", 0), ("DENY", 1)]), Ok(1));
    }

    #[test]
    fn paths_name_keys_and_indexes() {
        let v = parse(br#"{"a": [{"b": {"c": 1}}]}"#).unwrap();
        let e = v
            .read_struct("struct T", &["a"], UnknownFields::Deny, &mut |_, a| {
                a.read_list(|item| {
                    item.read_struct("struct U", &["b"], UnknownFields::Deny, &mut |_, b| {
                        b.read_string_map().map(drop)
                    })
                })
                .map(drop)
            })
            .unwrap_err();
        assert_eq!(e.path(), "a[0].b.c");
    }
}

#[cfg(test)]
mod streaming_tests {
    use super::*;

    fn streamed(text: &str) -> (Result<Json, SyntaxError>, Vec<String>) {
        let mut steps = Vec::new();
        let tree = parse_streaming(text.as_bytes(), "p", &mut |step| {
            steps.push(match step {
                Streamed::Start => "start".to_string(),
                Streamed::Item(item) => item.to_string(),
            })
        });
        (tree, steps)
    }

    /// Only the top-level key's array streams; the tree keeps an empty array there and every
    /// other value as `parse` builds it.
    #[test]
    fn only_the_top_level_array_streams() {
        let (tree, steps) = streamed(r#"{"a": {"p": [1]}, "p": [true, "x", []], "z": 2}"#);
        assert_eq!(
            steps,
            ["start", "boolean `true`", r#"string "x""#, "sequence"]
        );
        let mut want = parse(br#"{"a": {"p": [1]}, "p": [], "z": 2}"#).unwrap();
        assert_eq!(tree.as_ref(), Ok(&want));
        let (tree, steps) = streamed(r#"{"p": {"items": [1]}}"#);
        assert!(steps.is_empty(), "an object is no array: {steps:?}");
        want = parse(br#"{"p": {"items": [1]}}"#).unwrap();
        assert_eq!(tree, Ok(want));
        let (_, steps) = streamed(r#"[{"p": [1]}]"#);
        assert!(steps.is_empty(), "not the top-level object: {steps:?}");
    }

    /// Syntax errors inside and after a streamed array are `parse`'s, same place and words.
    #[test]
    fn streamed_syntax_errors_are_parse_errors() {
        for text in [
            r#"{"p": [1,]}"#,
            r#"{"p": [1 2]}"#,
            r#"{"p": ["#,
            r#"{"p": [1], "q": }"#,
            r#"{"p": [{"a": tru}]}"#,
        ] {
            assert_eq!(streamed(text).0, parse(text.as_bytes()), "{text}");
            assert!(streamed(text).0.is_err(), "{text}");
        }
    }

    /// `take` moves one key's value out and leaves the rest sorted and findable, as the
    /// configuration reader relies on when it takes `policies` first and reads the other
    /// fields after.
    #[test]
    fn take_moves_one_key_out_and_keeps_the_rest() {
        let mut v = parse(br#"{"policies": [1], "b": true, "z": null}"#).unwrap();
        assert_eq!(
            v.take("policies"),
            Some(Json::Array(vec![Json::Number(Number::Unsigned(1))]))
        );
        assert_eq!(v.take("policies"), None, "taken once");
        assert_eq!(v.get("b"), Some(&Json::Bool(true)));
        assert_eq!(v.get("z"), Some(&Json::Null));
        assert_eq!(Json::Array(Vec::new()).take("b"), None, "not an object");
    }

    /// Containers are trimmed to their length once read, so a one-item list holds one slot
    /// (growth would have left four).
    #[test]
    fn containers_hold_no_spare_slots() {
        let v = parse(br#"{"a": [{"b": 1}], "c": {"d": [1, 2, 3]}}"#).unwrap();
        let Json::Object(top) = &v else {
            panic!("an object")
        };
        assert_eq!(top.capacity(), 2);
        let Some(Json::Array(a)) = v.get("a") else {
            panic!("a list")
        };
        assert_eq!(a.capacity(), 1);
        let Some(Json::Object(b)) = a.first() else {
            panic!("an object")
        };
        assert_eq!(b.capacity(), 1);
        let Some(Json::Array(d)) = v.get("c").and_then(|c| c.get("d")) else {
            panic!("a list")
        };
        assert_eq!(d.capacity(), 3);
    }
}
