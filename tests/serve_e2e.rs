//! `host-sim serve` end to end: the released `.wasm` behind a real listener, real TLS
//! handshakes with the demo mesh's workload certificates, a real upstream. Each case names the
//! Istio/Envoy behaviour it pins. The client is rustls over std sockets (so CI needs no curl);
//! one case also drives curl, the client the issue names, when it is installed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use host_sim::serve::{
    self, cert::ServerCertSpec, upstream, ClientCertificate, Mode, ServeOptions, Server, Transport,
    XfccMode,
};
use host_sim::Host;
use integration_tests::filter_wasm;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const FRONTEND: &str = "demo.frontend";
const DEPLOYER: &str = "ops.deployer";

/// The demo mesh (`host-sim certs`) plus the proxy's server certificate (`host-sim serve-cert`).
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("serve-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        host_sim::certs::write_demo_pki(
            &dir,
            "cluster.local",
            &[("demo", "frontend"), ("ops", "deployer")],
        )
        .unwrap();
        serve::cert::issue(&ServerCertSpec {
            ca_dir: dir.join("cluster1"),
            spiffe_id: Some("spiffe://cluster.local/ns/demo/sa/backend".into()),
            dns: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            out: dir.join("serve"),
        })
        .unwrap();
        Self { dir }
    }

    fn transport(&self, client_certificate: ClientCertificate) -> Transport {
        Transport::Tls {
            cert_chain: self.dir.join("serve/cert-chain.pem"),
            key: self.dir.join("serve/key.pem"),
            client_ca: self.dir.join("root-cert.pem"),
            client_certificate,
        }
    }

    fn workload(&self, name: &str) -> PathBuf {
        self.dir.join("workloads").join(name)
    }

    /// A client presenting `bad/<kind>/cert.pem` with the intermediate CA behind it.
    fn bad_client(&self, kind: &str) -> Arc<rustls::ClientConfig> {
        let mut chain: Vec<CertificateDer<'static>> = Vec::new();
        for file in [
            self.dir.join("bad").join(kind).join("cert.pem"),
            self.dir.join("cluster1/ca-cert.pem"),
        ] {
            chain.extend(
                CertificateDer::pem_file_iter(file)
                    .unwrap()
                    .map(Result::unwrap),
            );
        }
        let key =
            PrivateKeyDer::from_pem_file(self.dir.join("bad").join(kind).join("key.pem")).unwrap();
        self.config_with(Some((chain, key)))
    }

    /// A client that trusts the mesh root and presents `workload`'s SVID (or nothing).
    fn client(&self, workload: Option<&str>) -> Arc<rustls::ClientConfig> {
        let identity = workload.map(|w| {
            let dir = self.workload(w);
            let chain = CertificateDer::pem_file_iter(dir.join("cert-chain.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
            (chain, key)
        });
        self.config_with(identity)
    }

    fn config_with(
        &self,
        identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(self.dir.join("root-cert.pem")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        };
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plugin configuration file the server re-reads on `/reload` (YAML, like the CLI takes).
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, yaml: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("serve-e2e-{}-{name}.yaml", std::process::id()));
        std::fs::write(&path, yaml).unwrap();
        Self(path)
    }

    fn write(&self, yaml: &str) {
        std::fs::write(&self.0, yaml).unwrap();
    }

    fn source(&self) -> serve::ConfigSource {
        let path = self.0.clone();
        Arc::new(move || {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            let value: serde_json::Value =
                serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::to_vec(&value).map_err(|e| e.to_string())
        })
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn policy(name: &str, rule: &str) -> String {
    format!(
        r#"
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {{name: {name}, namespace: demo}}
  spec:
    selector: {{matchLabels: {{app: backend}}}}
    action: ALLOW
    rules: [{rule}]"#
    )
}

fn plugin_config(policies: &[String]) -> String {
    format!(
        "workload: {{namespace: demo, labels: {{app: backend}}}}\npolicies:{}\n",
        policies.concat()
    )
}

fn allow_principal(sa: &str) -> String {
    policy(
        &format!("allow-{}", sa.replace('/', "-")),
        &format!(r#"{{from: [{{source: {{principals: ["cluster.local/ns/{sa}"]}}}}]}}"#),
    )
}

fn allow_path(path: &str) -> String {
    policy(
        "allow-path",
        &format!(r#"{{to: [{{operation: {{paths: ["{path}"]}}}}]}}"#),
    )
}

struct Setup {
    mode: Mode,
    transport: Transport,
    xfcc: XfccMode,
    upstream: SocketAddr,
    admin: bool,
}

fn start(setup: Setup, config: &ConfigFile) -> Server {
    let host = Host::builder().wasm_file(filter_wasm());
    let mut options = ServeOptions::new("127.0.0.1:0".parse().unwrap(), setup.upstream);
    options.mode = setup.mode;
    options.transport = setup.transport;
    options.xfcc = setup.xfcc;
    options.workers = 2;
    options.admin = setup.admin.then(|| "127.0.0.1:0".parse().unwrap());
    serve::start(host, options, config.source()).unwrap()
}

/// Status and body of a raw HTTP/1.1 exchange (`Connection: close`, read to the end).
fn parse(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn request_text(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// One HTTPS request; `Err` when the TLS layer refused us (handshake or alert).
fn https(
    addr: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    let conn = rustls::ClientConnection::new(client, ServerName::try_from("localhost").unwrap())
        .map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(request_text("GET", path, headers).as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // hyper closes without close_notify after `connection: close`; the bytes are whole.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    if raw.is_empty() {
        return Err("connection closed without a response".into());
    }
    Ok(parse(&raw))
}

fn http(addr: SocketAddr, method: &str, path: &str) -> Result<(u16, String), String> {
    let mut sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    sock.write_all(request_text(method, path, &[]).as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    if raw.is_empty() {
        return Err("connection closed without a response".into());
    }
    Ok(parse(&raw))
}

fn stats(server: &Server) -> String {
    http(server.admin_addr().unwrap(), "GET", "/stats")
        .unwrap()
        .1
}

fn stat(server: &Server, name: &str) -> u64 {
    let text = stats(server);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no stat {name} in:\n{text}"))
}

/// Istio STRICT on the wire (`require_client_certificate`): the principal of a verified SVID
/// decides; the 403 and its body are Envoy RBAC's; a client's `x-forwarded-client-cert` is
/// dropped and, with SANITIZE_SET, replaced by one built from the real handshake.
#[test]
fn strict_mtls_decides_on_the_handshake_identity() {
    let pki = Pki::new("strict");
    let upstream = upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let config = ConfigFile::new(
        "strict",
        &plugin_config(&[allow_principal("demo/sa/frontend")]),
    );
    let server = start(
        Setup {
            mode: Mode::Http,
            transport: pki.transport(ClientCertificate::Required),
            xfcc: XfccMode::SanitizeSet,
            upstream: upstream.local_addr(),
            admin: true,
        },
        &config,
    );
    let addr = server.local_addr();
    let forged = "By=spiffe://cluster.local/ns/demo/sa/backend;URI=spiffe://cluster.local/ns/demo/sa/frontend";
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        &'a [(&'a str, &'a str)],
        Result<u16, ()>,
        &'a str,
    );
    let cases: &[Case] = &[
        (
            "principals ALLOW matches the SVID's SPIFFE ID (Istio authz principals)",
            Some(FRONTEND),
            &[],
            Ok(200),
            "upstream: GET /api/items",
        ),
        (
            "another service account: 403 RBAC: access denied (Envoy RBAC filter)",
            Some(DEPLOYER),
            &[],
            Ok(403),
            "RBAC: access denied",
        ),
        (
            "a forged XFCC naming the allowed identity changes nothing (SANITIZE_SET drops it)",
            Some(DEPLOYER),
            &[("x-forwarded-client-cert", forged)],
            Ok(403),
            "RBAC: access denied",
        ),
        (
            "SANITIZE_SET: the upstream sees our element, with the real peer URI, not the forged one",
            Some(FRONTEND),
            &[("x-forwarded-client-cert", "URI=spiffe://cluster.local/ns/evil/sa/x")],
            Ok(200),
            "x-forwarded-client-cert: By=spiffe://cluster.local/ns/demo/sa/backend;Hash=",
        ),
        (
            "no client certificate: the handshake is refused (require_client_certificate)",
            None,
            &[],
            Err(()),
            "",
        ),
    ];
    for (name, workload, headers, want, body) in cases {
        let got = https(addr, pki.client(*workload), "/api/items", headers);
        match (want, &got) {
            (Ok(status), Ok((s, b))) => {
                assert_eq!(s, status, "{name}: {b}");
                assert!(b.contains(body), "{name}: body {b:?} lacks {body:?}");
                assert!(
                    !b.contains("ns/evil"),
                    "{name}: forged XFCC reached upstream"
                );
            }
            (Err(()), Err(_)) => {}
            _ => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
    assert_eq!(stat(&server, "spiffe_authz.rbac.allowed"), 2);
    assert_eq!(stat(&server, "spiffe_authz.rbac.denied"), 2);
    // The handshake checks the chain, not SVID rules (webpki reads no names for client
    // auth): an SVID with two URI SANs gets through, and the plugin, reading the real
    // certificate, denies it before any policy (X.509-SVID §2: exactly one URI SAN).
    let (status, body) = https(addr, pki.bad_client("two-uri-sans"), "/api/items", &[]).unwrap();
    assert_eq!(status, 403, "two URI SANs: {body}");
    assert_eq!(stat(&server, "spiffe_authz.invalid_peer_identity"), 1);
    assert!(stat(&server, "host_sim.serve.downstream_cx_tls_handshake_failed") >= 1);
}

/// Istio PERMISSIVE: a client without a certificate gets through the handshake and is
/// evaluated as unauthenticated: no principal (a principals ALLOW does not match it), while a
/// policy that needs no identity allows it (Istio authorization-policy reference, `from`).
#[test]
fn permissive_without_a_client_certificate_is_unauthenticated() {
    let pki = Pki::new("permissive");
    let upstream = upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    type Case<'a> = (&'a str, String, Option<&'a str>, u16);
    let cases: Vec<Case> = vec![
        (
            "principals policy: unauthenticated has no principal, denied",
            plugin_config(&[allow_principal("demo/sa/frontend")]),
            None,
            403,
        ),
        (
            "principals policy: a verified SVID still matches in PERMISSIVE",
            plugin_config(&[allow_principal("demo/sa/frontend")]),
            Some(FRONTEND),
            200,
        ),
        (
            "a policy without identity allows the plaintext-identity client",
            plugin_config(&[allow_path("/api/*")]),
            None,
            200,
        ),
    ];
    for (name, yaml, workload, want) in cases {
        let config = ConfigFile::new("permissive", &yaml);
        let server = start(
            Setup {
                mode: Mode::Http,
                transport: pki.transport(ClientCertificate::Optional),
                xfcc: XfccMode::Sanitize,
                upstream: upstream.local_addr(),
                admin: false,
            },
            &config,
        );
        let (status, body) = https(server.local_addr(), pki.client(workload), "/api/x", &[])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(status, want, "{name}: {body}");
    }
}

/// A line-echo service for the TCP cases.
fn echo_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Envoy's network RBAC filter: the decision is taken on the first bytes; an allowed
/// connection is proxied both ways, a denied one is closed before anything reaches the
/// upstream. (Istio keeps only `principals`-style fields for TCP.)
#[test]
fn tcp_mode_proxies_allowed_connections_and_closes_denied_ones() {
    let pki = Pki::new("tcp");
    let echo = echo_server();
    let config = ConfigFile::new(
        "tcp",
        &plugin_config(&[allow_principal("demo/sa/frontend")]),
    );
    let server = start(
        Setup {
            mode: Mode::Tcp,
            transport: pki.transport(ClientCertificate::Required),
            xfcc: XfccMode::Sanitize,
            upstream: echo,
            admin: true,
        },
        &config,
    );
    let cases = [
        (
            "allowed principal: bytes echoed by the upstream",
            FRONTEND,
            true,
        ),
        (
            "denied principal: connection closed at the first data",
            DEPLOYER,
            false,
        ),
    ];
    for (name, workload, echoed) in cases {
        let conn = rustls::ClientConnection::new(
            pki.client(Some(workload)),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let sock = TcpStream::connect(server.local_addr()).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(b"hello\n").unwrap();
        let mut buf = [0u8; 6];
        let got = tls.read_exact(&mut buf).map(|_| buf.to_vec());
        if echoed {
            assert_eq!(got.unwrap(), b"hello\n", "{name}");
        } else {
            assert!(got.is_err(), "{name}: got {got:?}");
        }
    }
    assert_eq!(stat(&server, "host_sim.serve.tcp_proxied"), 1);
    assert_eq!(stat(&server, "host_sim.serve.tcp_denied"), 1);
}

/// An xDS update: `/reload` reconfigures every worker VM (a new root context each, Envoy's
/// config update); a configuration the plugin rejects is refused and the previous one keeps
/// serving (Envoy keeps the last good config); requests in flight during reloads all get an
/// answer.
#[test]
fn reload_flips_decisions_refuses_bad_configs_and_loses_no_request() {
    let upstream = upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let config = ConfigFile::new("reload", &plugin_config(&[allow_path("/a")]));
    let server = start(
        Setup {
            mode: Mode::Http,
            transport: Transport::Plaintext,
            xfcc: XfccMode::Sanitize,
            upstream: upstream.local_addr(),
            admin: true,
        },
        &config,
    );
    let addr = server.local_addr();
    let admin = server.admin_addr().unwrap();
    let status = |path: &str| http(addr, "GET", path).unwrap().0;
    assert_eq!((status("/a"), status("/b")), (200, 403), "before reload");

    config.write(&config_text_b());
    let (code, body) = http(admin, "POST", "/reload").unwrap();
    assert_eq!(code, 200, "{body}");
    // Both workers have the new config: enough requests to reach both land the same way.
    for _ in 0..6 {
        assert_eq!((status("/a"), status("/b")), (403, 200), "after reload");
    }

    // A path template Istio's CheckValidPathTemplate refuses (`{a}` is no operator).
    config.write(&plugin_config(&[allow_path("/{*}/{a}")]));
    let (code, body) = http(admin, "POST", "/reload").unwrap();
    assert_eq!(code, 400, "rejected config: {body}");
    assert!(
        body.contains("/{*}/{a}"),
        "the plugin's reason names the value: {body}"
    );
    assert_eq!(
        (status("/a"), status("/b")),
        (403, 200),
        "old config still in force"
    );
    assert_eq!(stat(&server, "host_sim.serve.reload_rejected"), 1);

    // Requests from several clients while reloads flip the policy back and forth.
    config.write(&plugin_config(&[allow_path("/a")]));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                (0..100)
                    .map(|_| http(addr, "GET", "/a").map(|(s, _)| s))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for i in 0..6 {
        config.write(&if i % 2 == 0 {
            plugin_config(&[allow_path("/a")])
        } else {
            config_text_b()
        });
        assert_eq!(http(admin, "POST", "/reload").unwrap().0, 200);
    }
    let answers: Vec<Result<u16, String>> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert_eq!(answers.len(), 400);
    let lost: Vec<_> = answers
        .iter()
        .filter(|a| !matches!(a, Ok(200) | Ok(403)))
        .collect();
    assert!(lost.is_empty(), "requests without an answer: {lost:?}");
}

fn config_text_b() -> String {
    plugin_config(&[allow_path("/b")])
}

/// What the README shows a user: curl with the demo workload certificates.
#[test]
fn curl_as_two_workloads_when_curl_is_installed() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl is not installed: the rustls client cases above cover the same ground");
        return;
    }
    let pki = Pki::new("curl");
    let upstream = upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let config = ConfigFile::new(
        "curl",
        &plugin_config(&[allow_principal("demo/sa/frontend")]),
    );
    let server = start(
        Setup {
            mode: Mode::Http,
            transport: pki.transport(ClientCertificate::Required),
            xfcc: XfccMode::SanitizeSet,
            upstream: upstream.local_addr(),
            admin: false,
        },
        &config,
    );
    let url = format!("https://localhost:{}/api/items", server.local_addr().port());
    let curl = |workload: &str| {
        let dir = pki.workload(workload);
        let out = std::process::Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code}", "--cacert"])
            .arg(pki.dir.join("root-cert.pem"))
            .arg("--cert")
            .arg(dir.join("cert-chain.pem"))
            .arg("--key")
            .arg(dir.join("key.pem"))
            .arg(&url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let frontend = curl(FRONTEND);
    assert!(frontend.ends_with("\n200"), "{frontend}");
    assert!(frontend.contains("upstream: GET /api/items"), "{frontend}");
    let deployer = curl(DEPLOYER);
    assert_eq!(deployer, "RBAC: access denied\n403");
}

/// `source.address` is the real peer socket (Istio `ipBlocks` matches the direct peer, Envoy
/// `direct_remote_ip`): loopback clients match 127.0.0.1/32 and not host-sim's default
/// 10.0.0.1.
#[test]
fn ip_blocks_see_the_real_peer_address() {
    let upstream = upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let ip_rule = |cidr: &str| {
        policy(
            "allow-ip",
            &format!(r#"{{from: [{{source: {{ipBlocks: ["{cidr}"]}}}}]}}"#),
        )
    };
    let cases = [
        ("loopback peer matches 127.0.0.1/32", "127.0.0.1/32", 200),
        (
            "the simulator's default peer is not used",
            "10.0.0.0/8",
            403,
        ),
    ];
    for (name, cidr, want) in cases {
        let config = ConfigFile::new("ip", &plugin_config(&[ip_rule(cidr)]));
        let server = start(
            Setup {
                mode: Mode::Http,
                transport: Transport::Plaintext,
                xfcc: XfccMode::Sanitize,
                upstream: upstream.local_addr(),
                admin: false,
            },
            &config,
        );
        let (status, body) = http(server.local_addr(), "GET", "/").unwrap();
        assert_eq!(status, want, "{name}: {body}");
    }
}
