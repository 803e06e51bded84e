//! The JSON Lines formats of `host-sim run`: one request per input line, one outcome per
//! output line, in order. Documented in host-sim/README.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::effects::{
    HeaderChanges, HttpCall, HttpOutcome, LocalResponse, LogEntry, TcpOutcome, UpstreamRequest,
    VmFailure,
};
use crate::facts::{Connection, Request, Response};
use crate::Stalled;

/// One input line.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Line {
    #[serde(default)]
    pub connection: ConnectionLine,
    pub request: Option<RequestLine>,
    /// Dynamic metadata of earlier filters: namespace -> Struct.
    #[serde(default)]
    pub dynamic_metadata: Map<String, Value>,
    /// A TCP connection instead of an HTTP request.
    #[serde(default)]
    pub tcp: bool,
    /// TCP: the client's bytes (one read, then the client half-closes). Default: an empty read
    /// with end_of_stream, which is what Envoy delivers when a client closes without data.
    pub data: Option<String>,
    /// Free text, echoed in the output so a golden file reads well (`note` works too).
    #[serde(alias = "note")]
    pub name: Option<String>,
}

/// A string or a list of strings (repeated SANs, repeated headers).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> Vec<String> {
        match self {
            Self::One(v) => vec![v.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionLine {
    /// TLS with a client certificate presented (`connection.mtls`).
    #[serde(default)]
    pub mtls: bool,
    /// TLS without a client certificate (ignored when `mtls` is true).
    #[serde(default)]
    pub tls: bool,
    pub peer_uri_san: Option<OneOrMany>,
    pub peer_dns_san: Option<OneOrMany>,
    pub peer_subject: Option<String>,
    pub peer_certificate_pem: Option<String>,
    pub local_uri_san: Option<String>,
    pub sni: Option<String>,
    pub source: Option<String>,
    pub destination: Option<String>,
    pub tls_version: Option<String>,
    pub id: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestLine {
    pub method: Option<String>,
    pub path: Option<String>,
    pub authority: Option<String>,
    pub scheme: Option<String>,
    pub protocol: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, OneOrMany>,
    pub body: Option<String>,
    pub body_chunks: Option<Vec<String>>,
    #[serde(default)]
    pub trailers: BTreeMap<String, OneOrMany>,
    pub response: Option<ResponseLine>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseLine {
    pub status: Option<u32>,
    #[serde(default)]
    pub headers: BTreeMap<String, OneOrMany>,
    pub body: Option<String>,
}

impl ConnectionLine {
    pub fn to_connection(&self) -> Connection {
        let mut c = if self.mtls {
            Connection::mtls_without_uri_san()
        } else if self.tls {
            Connection::tls_without_client_certificate()
        } else {
            Connection::plaintext()
        };
        for uri in self.peer_uri_san.iter().flat_map(OneOrMany::values) {
            c = c.peer_uri_san(&uri);
        }
        for dns in self.peer_dns_san.iter().flat_map(OneOrMany::values) {
            c = c.peer_dns_san(&dns);
        }
        if let Some(v) = &self.peer_subject {
            c = c.peer_subject(v);
        }
        if let Some(v) = &self.peer_certificate_pem {
            c = c.peer_certificate_pem(v);
        }
        if let Some(v) = &self.local_uri_san {
            c = c.local_uri_san(v);
        }
        if let Some(v) = &self.sni {
            c = c.sni(v);
        }
        if let Some(v) = &self.source {
            c = c.source(v);
        }
        if let Some(v) = &self.destination {
            c = c.destination(v);
        }
        if let Some(v) = &self.tls_version {
            c = c.tls_version(v);
        }
        if let Some(v) = self.id {
            c = c.id(v);
        }
        c
    }
}

impl RequestLine {
    pub fn to_request(&self, dynamic_metadata: &Map<String, Value>) -> Request {
        let mut r = Request::new(
            self.method.as_deref().unwrap_or("GET"),
            self.path.as_deref().unwrap_or("/"),
        );
        if let Some(v) = &self.authority {
            r = r.authority(v);
        }
        if let Some(v) = &self.scheme {
            r = r.scheme(v);
        }
        if let Some(v) = &self.protocol {
            r = r.protocol(v);
        }
        for (name, values) in &self.headers {
            for value in values.values() {
                r = r.header(name, &value);
            }
        }
        if let Some(chunks) = &self.body_chunks {
            r = r.body_chunks(chunks.iter().map(|c| c.as_bytes().to_vec()).collect());
        } else if let Some(body) = &self.body {
            r = r.body(body.as_bytes().to_vec());
        }
        for (name, values) in &self.trailers {
            for value in values.values() {
                r = r.trailer(name, &value);
            }
        }
        if let Some(resp) = &self.response {
            let mut response = Response::status(resp.status.unwrap_or(200));
            for (name, values) in &resp.headers {
                for value in values.values() {
                    response = response.header(name, &value);
                }
            }
            if let Some(body) = &resp.body {
                response = response.body(body.as_bytes().to_vec());
            }
            r = r.upstream_response(response);
        }
        for (namespace, value) in dynamic_metadata {
            r = r.filter_metadata(namespace, value.clone());
        }
        r
    }
}

/// One output line.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub local_response: Option<LocalResponse>,
    pub connection_closed: bool,
    pub allowed: bool,
    pub request_header_changes: HeaderChanges,
    /// What the upstream received (library users have it; the CLI keeps lines short).
    #[serde(skip)]
    pub upstream_request: Option<UpstreamRequest>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream_reset: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled: Option<Stalled>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub filter_state: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http_calls: Vec<HttpCall>,
    pub logs: Vec<LogEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_failure: Option<VmFailure>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hostcall_trace: Vec<&'static str>,
}

impl OutputLine {
    pub fn http(name: Option<String>, out: HttpOutcome) -> Self {
        Self {
            name,
            allowed: out.allowed(),
            local_response: out.local_response,
            connection_closed: false,
            request_header_changes: out.request_header_changes,
            upstream_request: out.upstream_request,
            stream_reset: out.stream_reset,
            stalled: out.stalled,
            filter_state: out.filter_state,
            http_calls: out.http_calls,
            logs: out.logs,
            vm_failure: out.vm_failure,
            hostcall_trace: out.hostcall_trace,
        }
    }

    pub fn tcp(name: Option<String>, out: TcpOutcome) -> Self {
        Self {
            name,
            allowed: !out.connection_closed,
            connection_closed: out.connection_closed,
            filter_state: out.filter_state,
            logs: out.logs,
            vm_failure: out.vm_failure,
            ..Self::default()
        }
    }
}

/// Runs one input line through the plugin (TCP: connect, one read with end_of_stream, close).
pub fn run_line(plugin: &mut crate::Plugin, line: &Line) -> Result<OutputLine, crate::Error> {
    let connection = line.connection.to_connection();
    if line.tcp {
        let data = line.data.clone().unwrap_or_default();
        let mut conn = plugin.tcp_connection(connection)?;
        let mut step = conn.data_end(data.as_bytes());
        let end = conn.close();
        step.logs.extend(end.logs);
        return Ok(OutputLine::tcp(line.name.clone(), step));
    }
    let request = match &line.request {
        Some(r) => r.to_request(&line.dynamic_metadata),
        None => Request::get("/"),
    };
    let outcome = plugin.http_request(connection, request)?;
    Ok(OutputLine::http(line.name.clone(), outcome))
}

/// Parses a request file: blank lines and lines starting with `#` are skipped; errors name the
/// file and the line.
pub fn parse_lines(origin: &str, text: &str) -> Result<Vec<(usize, Line)>, String> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let line: Line =
            serde_json::from_str(trimmed).map_err(|e| format!("{origin}:{number}: {e}"))?;
        if !line.tcp && line.request.is_none() {
            return Err(format!(
                "{origin}:{number}: a line needs \"request\" (HTTP) or \"tcp\": true"
            ));
        }
        if line.tcp && line.request.is_some() {
            return Err(format!(
                "{origin}:{number}: \"tcp\": true and \"request\" exclude each other"
            ));
        }
        lines.push((number, line));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_line_parses() {
        let text = r#"{"connection": {"mtls": true, "peerUriSan": "spiffe://cluster.local/ns/a/sa/b", "peerCertificatePem": null, "source": "10.0.0.1:43210", "destination": "10.0.0.2:8000", "sni": null}, "request": {"method": "GET", "path": "/ip", "authority": "httpbin.foo:8000", "headers": {"x-token": "admin", "x-multi": ["a", "b"]}}, "dynamicMetadata": {}}"#;
        let lines = parse_lines("r.jsonl", text).unwrap();
        let (_, line) = &lines[0];
        let request = line
            .request
            .as_ref()
            .unwrap()
            .to_request(&line.dynamic_metadata);
        assert_eq!(request.header_map().len(), 4 + 3);
        let conn = line.connection.to_connection();
        assert_eq!(conn.peer_uri_sans, vec!["spiffe://cluster.local/ns/a/sa/b"]);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let text = "# comment\n\n{\"tcp\": true}\n{\"requst\": {}}\n";
        let err = parse_lines("r.jsonl", text).unwrap_err();
        assert!(
            err.starts_with("r.jsonl:4: unknown field `requst`"),
            "{err}"
        );
        let err = parse_lines("r.jsonl", "{}").unwrap_err();
        assert!(err.contains("r.jsonl:1: a line needs"), "{err}");
    }
}
