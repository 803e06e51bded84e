//! What the world looks like to the plugin: the downstream connection, the request, the
//! upstream's answer and the node. These are inputs a test writes; host-sim serves them to the
//! guest the way Envoy does (properties, header maps, buffers).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use crate::Error;

/// The downstream connection as Envoy's listener sees it after the TLS handshake.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub(crate) tls: bool,
    pub(crate) peer_certificate_presented: bool,
    pub(crate) peer_uri_sans: Vec<String>,
    pub(crate) peer_dns_sans: Vec<String>,
    pub(crate) peer_subject: Option<String>,
    pub(crate) peer_certificate_pem: Option<String>,
    pub(crate) local_uri_sans: Vec<String>,
    pub(crate) tls_version: String,
    pub(crate) sni: Option<String>,
    pub(crate) source: String,
    pub(crate) destination: String,
    pub(crate) id: u64,
}

/// Envoy's connection ids are unique per process, and filters rely on that (spiffe-authz
/// caches per-connection facts by `connection_id`). Every new `Connection` gets the next id;
/// clones are the same connection (several requests over one keep-alive connection).
fn next_connection_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Connection {
    /// A plaintext connection: `connection.mtls` is false, every TLS attribute is absent.
    pub fn plaintext() -> Self {
        Self {
            tls: false,
            peer_certificate_presented: false,
            peer_uri_sans: Vec::new(),
            peer_dns_sans: Vec::new(),
            peer_subject: None,
            peer_certificate_pem: None,
            local_uri_sans: Vec::new(),
            tls_version: "TLSv1.3".into(),
            sni: None,
            source: "10.0.0.1:43210".into(),
            destination: "10.0.0.2:8000".into(),
            id: next_connection_id(),
        }
    }

    /// Mutual TLS where the client presented a certificate whose (first) URI SAN is `uri_san`.
    pub fn mtls(uri_san: &str) -> Self {
        Self {
            tls: true,
            peer_certificate_presented: true,
            peer_uri_sans: vec![uri_san.to_string()],
            ..Self::plaintext()
        }
    }

    /// Mutual TLS with a presented certificate that carries no URI SAN.
    pub fn mtls_without_uri_san() -> Self {
        Self {
            tls: true,
            peer_certificate_presented: true,
            ..Self::plaintext()
        }
    }

    /// Server-side TLS only: the client presented no certificate (`connection.mtls` false).
    pub fn tls_without_client_certificate() -> Self {
        Self {
            tls: true,
            ..Self::plaintext()
        }
    }

    /// The direct peer, `ip:port`. For HTTP, `source.address` may instead come from
    /// `x-forwarded-for` (see [`crate::HostBuilder::use_remote_address`]).
    pub fn source(mut self, address: &str) -> Self {
        self.source = address.to_string();
        self
    }

    /// The local (original destination) address, `ip:port`.
    pub fn destination(mut self, address: &str) -> Self {
        self.destination = address.to_string();
        self
    }

    pub fn sni(mut self, server_name: &str) -> Self {
        self.sni = Some(server_name.to_string());
        self
    }

    /// Adds a URI SAN; only the first is visible as `connection.uri_san_peer_certificate`.
    pub fn peer_uri_san(mut self, uri: &str) -> Self {
        self.peer_uri_sans.push(uri.to_string());
        self
    }

    pub fn peer_dns_san(mut self, dns: &str) -> Self {
        self.peer_dns_sans.push(dns.to_string());
        self
    }

    /// RFC 2253 subject, e.g. `CN=client,O=example`.
    pub fn peer_subject(mut self, subject: &str) -> Self {
        self.peer_subject = Some(subject.to_string());
        self
    }

    /// The peer certificate as PEM; served URL-encoded as `connection.peer_certificate` (newest
    /// Envoy) and hashed for `connection.sha256_peer_certificate_digest`.
    pub fn peer_certificate_pem(mut self, pem: &str) -> Self {
        self.peer_certificate_pem = Some(pem.to_string());
        self
    }

    /// This proxy's own identity (`connection.uri_san_local_certificate`).
    pub fn local_uri_san(mut self, uri: &str) -> Self {
        self.local_uri_sans.push(uri.to_string());
        self
    }

    pub fn tls_version(mut self, version: &str) -> Self {
        self.tls_version = version.to_string();
        self
    }

    /// `connection.id`; also the Envoy `connection_id` attribute.
    pub fn id(mut self, id: u64) -> Self {
        self.id = id;
        self
    }

    pub(crate) fn source_addr(&self) -> Result<SocketAddr, Error> {
        parse_socket_addr("connection.source", &self.source)
    }

    pub(crate) fn destination_addr(&self) -> Result<SocketAddr, Error> {
        parse_socket_addr("connection.destination", &self.destination)
    }
}

impl Default for Connection {
    fn default() -> Self {
        Self::plaintext()
    }
}

fn parse_socket_addr(field: &'static str, value: &str) -> Result<SocketAddr, Error> {
    value.parse().map_err(|_| Error::InvalidFact {
        field,
        value: value.to_string(),
        reason: "expected ip:port, e.g. 10.0.0.1:43210 or [::1]:43210",
    })
}

/// An HTTP request as it reaches the filter chain (after Envoy's HCM has run).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) authority: String,
    pub(crate) scheme: String,
    pub(crate) protocol: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body_chunks: Vec<Vec<u8>>,
    pub(crate) trailers: Vec<(String, String)>,
    pub(crate) filter_metadata: Map<String, Value>,
    pub(crate) response: Response,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_string(),
            path: path.to_string(),
            authority: "localhost".into(),
            scheme: "http".into(),
            protocol: "HTTP/1.1".into(),
            headers: Vec::new(),
            body_chunks: Vec::new(),
            trailers: Vec::new(),
            filter_metadata: Map::new(),
            response: Response::default(),
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    pub fn authority(mut self, authority: &str) -> Self {
        self.authority = authority.to_string();
        self
    }

    pub fn scheme(mut self, scheme: &str) -> Self {
        self.scheme = scheme.to_string();
        self
    }

    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2` or `HTTP/3` (`request.protocol`).
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.protocol = protocol.to_string();
        self
    }

    /// Appends a header (a repeated name gives a repeated header, as on the wire).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// The whole body as one DATA frame.
    pub fn body(self, body: impl Into<Vec<u8>>) -> Self {
        self.body_chunks(vec![body.into()])
    }

    /// The body as separate DATA frames (one `proxy_on_request_body` call each).
    pub fn body_chunks(mut self, chunks: Vec<Vec<u8>>) -> Self {
        self.body_chunks = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        self
    }

    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Dynamic metadata an earlier filter wrote under `namespace` (e.g. the JWT payload at
    /// `envoy.filters.http.jwt_authn`), served as `metadata.filter_metadata.<namespace>`.
    pub fn filter_metadata(mut self, namespace: &str, value: Value) -> Self {
        self.filter_metadata.insert(namespace.to_string(), value);
        self
    }

    /// What the upstream answers if the request gets there (default: 200, empty body).
    pub fn upstream_response(mut self, response: Response) -> Self {
        self.response = response;
        self
    }

    /// Request headers in Envoy's storage order: pseudo-headers first.
    pub(crate) fn header_map(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut map = Vec::with_capacity(4 + self.headers.len());
        for (k, v) in [
            (":authority", &self.authority),
            (":path", &self.path),
            (":method", &self.method),
            (":scheme", &self.scheme),
        ] {
            map.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
        for (k, v) in &self.headers {
            map.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
        map
    }
}

/// An HTTP response: what the upstream answers, or what a callout responder returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub(crate) status: u32,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: Vec<(String, String)>,
}

impl Default for Response {
    fn default() -> Self {
        Self::status(200)
    }
}

impl Response {
    pub fn status(status: u32) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            trailers: Vec::new(),
        }
    }

    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::status(200).body(body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub(crate) fn header_map(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut map = vec![(b":status".to_vec(), self.status.to_string().into_bytes())];
        for (k, v) in &self.headers {
            map.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
        map
    }
}

/// The Envoy node this sidecar runs as (`xds.node`, legacy `node`).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub(crate) id: String,
    pub(crate) cluster: String,
    pub(crate) metadata: Map<String, Value>,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            id: "sidecar~10.0.0.2~app.default~default.svc.cluster.local".into(),
            cluster: "app.default".into(),
            metadata: Map::new(),
        }
    }
}

/// Where `source.address` comes from in HTTP filters, per Envoy's HCM settings
/// (`docs/root/configuration/http/http_conn_man/headers.rst`, x-forwarded-for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hcm {
    pub use_remote_address: bool,
    pub xff_num_trusted_hops: u32,
    pub xfcc: Xfcc,
}

impl Hcm {
    /// Envoy's trusted client address: with `use_remote_address: false` (Istio sidecar inbound)
    /// and an `x-forwarded-for` header, the IP `xff_num_trusted_hops` from the right, port 0;
    /// otherwise the direct peer.
    pub fn source_address(&self, direct: SocketAddr, headers: &[(Vec<u8>, Vec<u8>)]) -> SocketAddr {
        if self.use_remote_address {
            return direct;
        }
        let xff: Vec<&[u8]> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(b"x-forwarded-for"))
            .map(|(_, v)| v.as_slice())
            .collect();
        if xff.is_empty() {
            return direct;
        }
        let joined = xff
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        let ips: Vec<&str> = joined.split(',').map(str::trim).collect();
        let skip = self.xff_num_trusted_hops as usize;
        let Some(index) = ips.len().checked_sub(1 + skip) else {
            return direct;
        };
        match ips.get(index).and_then(|ip| ip.parse::<IpAddr>().ok()) {
            Some(ip) => SocketAddr::new(ip, 0),
            None => direct,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> Vec<(Vec<u8>, Vec<u8>)> {
        xff.iter()
            .map(|v| (b"x-forwarded-for".to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    /// Envoy headers.rst "x-forwarded-for": the trusted client address is the rightmost XFF
    /// entry after skipping `xff_num_trusted_hops`, port 0; `use_remote_address: true` or no XFF
    /// means the direct peer; an unparsable entry falls back to the direct peer.
    #[test]
    fn source_address_follows_envoy_hcm_rules() {
        let direct: SocketAddr = "10.0.0.9:5555".parse().unwrap();
        let cases: &[(&str, bool, u32, &[&str], &str)] = &[
            ("no xff: direct peer", false, 0, &[], "10.0.0.9:5555"),
            (
                "rightmost xff, port 0",
                false,
                0,
                &["1.1.1.1, 2.2.2.2"],
                "2.2.2.2:0",
            ),
            (
                "one trusted hop",
                false,
                1,
                &["1.1.1.1, 2.2.2.2"],
                "1.1.1.1:0",
            ),
            (
                "repeated xff headers join",
                false,
                0,
                &["1.1.1.1", "3.3.3.3"],
                "3.3.3.3:0",
            ),
            (
                "more trusted hops than entries",
                false,
                5,
                &["1.1.1.1"],
                "10.0.0.9:5555",
            ),
            (
                "use_remote_address ignores xff",
                true,
                0,
                &["1.1.1.1"],
                "10.0.0.9:5555",
            ),
            (
                "garbage falls back",
                false,
                0,
                &["not-an-ip"],
                "10.0.0.9:5555",
            ),
            ("ipv6", false, 0, &["2001:db8::1"], "[2001:db8::1]:0"),
        ];
        for (name, remote, hops, xff, want) in cases {
            let hcm = Hcm {
                use_remote_address: *remote,
                xff_num_trusted_hops: *hops,
                xfcc: Xfcc::AsSent,
            };
            assert_eq!(
                hcm.source_address(direct, &headers(xff)).to_string(),
                *want,
                "{name}"
            );
        }
    }
}

/// Envoy HCM `forward_client_cert_details` (`ConnectionManagerUtility::mutateXfccRequestHeader`),
/// applied to the request before the filter chain runs. host-sim's default, [`Xfcc::AsSent`],
/// leaves the header as the request carries it (Envoy's own default is `Sanitize`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Xfcc {
    #[default]
    AsSent,
    /// Remove any XFCC.
    Sanitize,
    /// Keep the client's XFCC on mTLS connections, remove it otherwise.
    ForwardOnly,
    /// mTLS: append our element to the client's XFCC (Istio sidecar inbound); else remove.
    AppendForward(XfccDetails),
    /// mTLS: replace with our element (Istio gateways); else remove.
    SanitizeSet(XfccDetails),
    /// Keep as-is whatever the connection.
    AlwaysForwardOnly,
}

/// `set_current_client_cert_details`: which peer-certificate fields our element carries.
/// Istio's sidecar default is subject, URI and DNS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XfccDetails {
    pub subject: bool,
    pub cert: bool,
    pub uri: bool,
    pub dns: bool,
}

impl XfccDetails {
    /// Istio's sidecar inbound default (`pilot/pkg/networking/util/proxy_headers.go`).
    pub const ISTIO: Self = Self {
        subject: true,
        cert: false,
        uri: true,
        dns: true,
    };
}

impl Xfcc {
    /// Rewrites the request's `x-forwarded-client-cert` as Envoy's HCM would.
    pub(crate) fn apply(&self, connection: &Connection, headers: &mut Vec<(Vec<u8>, Vec<u8>)>) {
        const NAME: &[u8] = b"x-forwarded-client-cert";
        let mtls = connection.tls && connection.peer_certificate_presented;
        let existing: Vec<Vec<u8>> = headers
            .iter()
            .filter(|(k, _)| k.as_slice() == NAME)
            .map(|(_, v)| v.clone())
            .collect();
        let replace = |headers: &mut Vec<(Vec<u8>, Vec<u8>)>, value: Option<Vec<u8>>| {
            headers.retain(|(k, _)| k.as_slice() != NAME);
            if let Some(v) = value {
                headers.push((NAME.to_vec(), v));
            }
        };
        match self {
            Self::AsSent | Self::AlwaysForwardOnly => {}
            Self::Sanitize => replace(headers, None),
            Self::ForwardOnly if !mtls => replace(headers, None),
            Self::ForwardOnly => {}
            Self::AppendForward(_) | Self::SanitizeSet(_) if !mtls => replace(headers, None),
            Self::AppendForward(details) => {
                let element = element(connection, details);
                let value = match existing.first() {
                    Some(old) => [old.as_slice(), b",", element.as_bytes()].concat(),
                    None => element.into_bytes(),
                };
                replace(headers, Some(value));
            }
            Self::SanitizeSet(details) => {
                replace(headers, Some(element(connection, details).into_bytes()))
            }
        }
    }
}

/// Our element, fields in Envoy's fixed order: By, Hash, Cert, Chain, Subject, URI, DNS.
fn element(c: &Connection, details: &XfccDetails) -> String {
    let mut parts: Vec<String> = c.local_uri_sans.iter().map(|u| format!("By={u}")).collect();
    let pem = c.peer_certificate_pem.as_deref();
    if let Some(hash) = pem.and_then(crate::pem::sha256_hex_of_first_certificate) {
        parts.push(format!("Hash={hash}"));
    }
    if details.cert {
        if let Some(pem) = pem {
            let encoded =
                percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC);
            parts.push(format!("Cert=\"{encoded}\""));
        }
    }
    if details.subject {
        parts.push(format!(
            "Subject=\"{}\"",
            c.peer_subject.as_deref().unwrap_or("")
        ));
    }
    if details.uri {
        if c.peer_uri_sans.is_empty() {
            parts.push("URI=".into());
        }
        parts.extend(c.peer_uri_sans.iter().map(|u| format!("URI={u}")));
    }
    if details.dns {
        parts.extend(c.peer_dns_sans.iter().map(|d| format!("DNS={d}")));
    }
    parts.join(";")
}

#[cfg(test)]
mod xfcc_tests {
    use super::*;

    fn run(mode: Xfcc, conn: &Connection, sent: Option<&str>) -> Option<String> {
        let mut headers = vec![(b":path".to_vec(), b"/".to_vec())];
        if let Some(v) = sent {
            headers.push((b"x-forwarded-client-cert".to_vec(), v.as_bytes().to_vec()));
        }
        mode.apply(conn, &mut headers);
        headers
            .iter()
            .find(|(k, _)| k == b"x-forwarded-client-cert")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// envoy-properties.md §4.2: the forward_client_cert_details table and the element order.
    #[test]
    fn xfcc_follows_forward_client_cert_details() {
        let mtls = Connection::mtls("spiffe://cluster.local/ns/a/sa/b")
            .peer_subject("CN=b")
            .local_uri_san("spiffe://cluster.local/ns/foo/sa/httpbin");
        let plain = Connection::plaintext();
        let ours = "By=spiffe://cluster.local/ns/foo/sa/httpbin;Subject=\"CN=b\";URI=spiffe://cluster.local/ns/a/sa/b";
        let forged = Some("URI=spiffe://evil");
        type Case<'a> = (
            &'a str,
            Xfcc,
            &'a Connection,
            Option<&'a str>,
            Option<String>,
        );
        let cases: Vec<Case> = vec![
            ("sanitize removes", Xfcc::Sanitize, &mtls, forged, None),
            (
                "forward only keeps on mTLS",
                Xfcc::ForwardOnly,
                &mtls,
                forged,
                forged.map(String::from),
            ),
            (
                "forward only removes on plaintext",
                Xfcc::ForwardOnly,
                &plain,
                forged,
                None,
            ),
            (
                "append forward appends ours last",
                Xfcc::AppendForward(XfccDetails::ISTIO),
                &mtls,
                forged,
                Some(format!("URI=spiffe://evil,{ours}")),
            ),
            (
                "append forward without XFCC sets ours",
                Xfcc::AppendForward(XfccDetails::ISTIO),
                &mtls,
                None,
                Some(ours.into()),
            ),
            (
                "append forward removes on plaintext",
                Xfcc::AppendForward(XfccDetails::ISTIO),
                &plain,
                forged,
                None,
            ),
            (
                "sanitize set replaces",
                Xfcc::SanitizeSet(XfccDetails::ISTIO),
                &mtls,
                forged,
                Some(ours.into()),
            ),
            (
                "always forward keeps on plaintext",
                Xfcc::AlwaysForwardOnly,
                &plain,
                forged,
                forged.map(String::from),
            ),
            (
                "as sent",
                Xfcc::AsSent,
                &plain,
                forged,
                forged.map(String::from),
            ),
        ];
        for (name, mode, conn, sent, want) in cases {
            assert_eq!(run(mode, conn, sent), want, "{name}");
        }
        let no_uri = Connection::mtls_without_uri_san();
        assert_eq!(
            run(Xfcc::SanitizeSet(XfccDetails::ISTIO), &no_uri, None).as_deref(),
            Some("Subject=\"\";URI="),
            "URI= (empty) when the peer has none; Subject key present even when empty"
        );
    }
}

#[cfg(test)]
mod connection_id_tests {
    use super::Connection;

    #[test]
    fn every_connection_has_its_own_id_and_clones_share_it() {
        // Envoy: connection ids are unique per process; one connection carries many requests.
        let a = Connection::mtls("spiffe://cluster.local/ns/a/sa/a");
        let b = Connection::mtls("spiffe://cluster.local/ns/a/sa/a");
        let c = Connection::plaintext();
        assert_ne!(a.id, b.id);
        assert_ne!(b.id, c.id);
        assert_eq!(a.clone().id, a.id);
        assert_eq!(Connection::plaintext().id(7).id, 7);
    }
}
