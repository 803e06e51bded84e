//! `host-sim`: run a proxy-wasm module the way Envoy would, benchmark it, and the tools around
//! the filter. See host-sim/README.md.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use host_sim::jsonl::{parse_lines, run_line, Line};
use host_sim::tools_cli::{run_tool, ToolCommand};
use host_sim::{bench, Host, HostBuilder, LogLevel};
use serde_json::{Map, Value};

#[derive(Debug, Parser)]
#[command(
    name = "host-sim",
    version,
    about = "A proxy-wasm host on wasmtime that behaves like Envoy's"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run requests (JSON Lines) through a plugin; print one JSON outcome per request.
    Run(RunArgs),
    /// Requests per second and ns per request of a module vs the pass-through floor.
    Bench(BenchArgs),
    /// Run a WASI command module (`_start`), e.g. a test binary built for wasm32-wasip1; exits
    /// with its exit code. Usable as CARGO_TARGET_WASM32_WASIP1_RUNNER.
    WasiRun(WasiRunArgs),
    /// Run the plugin as a real proxy in front of a service: TLS/mTLS or plaintext, HTTP or TCP,
    /// one VM per worker thread, an admin listener with /stats and /reload.
    Serve(ServeArgs),
    /// A tiny demo HTTP service for `serve` to guard (answers 200 naming what it received).
    Upstream(UpstreamArgs),
    /// A server certificate for `serve` signed by the demo mesh CA, with DNS/IP SANs for curl.
    ServeCert(ServeCertArgs),
    #[command(flatten)]
    Tool(ToolCommand),
}

#[derive(Debug, Args)]
struct HostArgs {
    /// The proxy-wasm module (.wasm, or .wat).
    #[arg(long)]
    wasm: PathBuf,
    /// Plugin configuration file (JSON is passed as-is; YAML is converted to JSON).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Node metadata file (JSON or YAML): either the metadata map itself
    /// ({"NAMESPACE": "foo", "LABELS": {...}}) or {"id", "cluster", "metadata"}.
    #[arg(long)]
    node: Option<PathBuf>,
    /// Envoy's `wasm` log level: trace, debug, info, warn, error, critical.
    #[arg(long, default_value = "info", value_parser = parse_level)]
    log_level: LogLevel,
    /// After a trap, skip the plugin instead of failing requests closed (Envoy fail_open).
    #[arg(long)]
    fail_open: bool,
    /// Take source.address from the direct peer, never x-forwarded-for (HCM use_remote_address).
    #[arg(long)]
    use_remote_address: bool,
    /// HCM xff_num_trusted_hops.
    #[arg(long, default_value_t = 0)]
    xff_num_trusted_hops: u32,
    /// PluginConfig.name, served as `plugin_name`.
    #[arg(long, default_value = "spiffe-authz")]
    plugin_name: String,
    /// Start the clock at this Unix time in seconds (default: now), for reproducible output.
    #[arg(long)]
    clock: Option<u64>,
    /// List every host function each request called (`hostcallTrace` in the output).
    #[arg(long)]
    trace_hostcalls: bool,
    /// VM configuration file (`vm_config.configuration`, buffer 6), passed as-is.
    #[arg(long)]
    vm_config: Option<PathBuf>,
    /// Answer `proxy_http_call`s to CLUSTER with STATUS and BODY (repeatable); calls to any
    /// other cluster fail with BAD_ARGUMENT, as an unknown cluster does in Envoy.
    #[arg(long = "cluster", value_name = "CLUSTER=STATUS[:BODY]", value_parser = parse_cluster)]
    clusters: Vec<(String, u32, String)>,
}

fn parse_cluster(s: &str) -> Result<(String, u32, String), String> {
    let (name, answer) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected CLUSTER=STATUS[:BODY]"))?;
    let (status, body) = answer.split_once(':').unwrap_or((answer, ""));
    let status = status
        .parse()
        .map_err(|_| format!("{s:?}: {status:?} is not an HTTP status"))?;
    Ok((name.to_string(), status, body.to_string()))
}

fn answer_callouts(plugin: &mut host_sim::Plugin, clusters: &[(String, u32, String)]) {
    let clusters = clusters.to_vec();
    plugin.on_http_call(move |call| {
        match clusters.iter().find(|(name, _, _)| *name == call.upstream) {
            Some((_, status, body)) => host_sim::CallResponse::Reply(
                host_sim::Response::status(*status).body(body.clone()),
            ),
            None => host_sim::CallResponse::UnknownCluster,
        }
    });
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Requests, one JSON object per line (default: standard input).
    #[arg(long)]
    requests: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct WasiRunArgs {
    /// The command module (.wasm, or .wat).
    file: PathBuf,
    /// Arguments after argv[0] (the file), passed as they are: `-` options too.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[command(flatten)]
    host: HostArgs,
    /// The request mix (JSON Lines, HTTP lines only; TCP lines are skipped).
    #[arg(long)]
    requests: PathBuf,
    /// The floor module (default: the pass-through fixture built by tests/run-all.sh).
    #[arg(
        long,
        default_value = "tests/fixtures/target/wasm32-wasip1/release/pass_through.wasm"
    )]
    floor: PathBuf,
    /// Measured seconds per module.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Address to accept downstream connections on.
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// The service behind the proxy (plain HTTP/1.1, or raw TCP with --mode tcp).
    #[arg(long)]
    upstream: std::net::SocketAddr,
    /// http: the plugin as an HTTP filter; tcp: as a network filter, bytes proxied.
    #[arg(long, default_value = "http", value_parser = ["http", "tcp"])]
    mode: String,
    /// This proxy's certificate chain (PEM); with --tls-key and --client-ca turns on TLS.
    #[arg(long, requires_all = ["tls_key", "client_ca"])]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Trust anchors for client certificates (PEM), e.g. the mesh root-cert.pem.
    #[arg(long, requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// required: no client certificate fails the handshake (Istio STRICT); optional: such
    /// clients are let in unauthenticated (a PERMISSIVE demo).
    #[arg(long, default_value = "required", value_parser = ["required", "optional"])]
    client_certificate: String,
    /// x-forwarded-client-cert: sanitize (Envoy's default: removed) or sanitize-set (removed,
    /// then set from the verified peer certificate on mTLS, as Istio gateways do).
    #[arg(long, default_value = "sanitize", value_parser = ["sanitize", "sanitize-set"])]
    xfcc: String,
    /// Worker threads, one VM each.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Admin listener (GET /stats, GET /ready, POST /reload); keep it on loopback.
    #[arg(long)]
    admin: Option<std::net::SocketAddr>,
    /// Do not print the plugin's log lines.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct UpstreamArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
}

#[derive(Debug, Args)]
struct ServeCertArgs {
    /// The CA directory of `host-sim certs` output (ca-cert.pem, ca-key.pem, cert-chain.pem).
    #[arg(long)]
    ca_dir: PathBuf,
    /// Where cert.pem, cert-chain.pem and key.pem go.
    #[arg(long)]
    out: PathBuf,
    /// The proxy's own SPIFFE ID (its URI SAN).
    #[arg(long)]
    spiffe_id: Option<String>,
    /// DNS SANs (repeatable).
    #[arg(long, default_values = ["localhost"])]
    dns: Vec<String>,
    /// IP SANs (repeatable).
    #[arg(long, default_values = ["127.0.0.1"])]
    ip: Vec<std::net::IpAddr>,
}

fn serve(args: ServeArgs) -> Result<()> {
    use host_sim::serve::{self, ClientCertificate, Mode, ServeOptions, Transport, XfccMode};
    let config_path = args.host.config.clone();
    let config: serve::ConfigSource = std::sync::Arc::new(move || match &config_path {
        Some(path) => plugin_configuration(path).map_err(|e| format!("{e:#}")),
        None => Ok(Vec::new()),
    });
    let mut options = ServeOptions::new(args.listen, args.upstream);
    options.mode = if args.mode == "tcp" {
        Mode::Tcp
    } else {
        Mode::Http
    };
    options.xfcc = if args.xfcc == "sanitize-set" {
        XfccMode::SanitizeSet
    } else {
        XfccMode::Sanitize
    };
    options.workers = args.workers;
    options.admin = args.admin;
    options.print_logs = !args.quiet;
    if let (Some(cert_chain), Some(key), Some(client_ca)) =
        (args.tls_cert, args.tls_key, args.client_ca)
    {
        options.transport = Transport::Tls {
            cert_chain,
            key,
            client_ca,
            client_certificate: if args.client_certificate == "optional" {
                ClientCertificate::Optional
            } else {
                ClientCertificate::Required
            },
        };
    }
    let server = serve::start(builder(&args.host, &args.host.wasm)?, options, config)?;
    eprintln!(
        "host-sim serve: listening on {} -> upstream {}{}",
        server.local_addr(),
        args.upstream,
        server
            .admin_addr()
            .map(|a| format!(", admin on http://{a}"))
            .unwrap_or_default()
    );
    server.wait();
    Ok(())
}

fn upstream(args: UpstreamArgs) -> Result<()> {
    let upstream = host_sim::serve::upstream::start(args.listen)
        .with_context(|| format!("--listen {}", args.listen))?;
    eprintln!(
        "host-sim upstream: listening on http://{}",
        upstream.local_addr()
    );
    upstream.wait();
    Ok(())
}

fn serve_cert(args: ServeCertArgs) -> Result<()> {
    let spec = host_sim::serve::cert::ServerCertSpec {
        ca_dir: args.ca_dir,
        spiffe_id: args.spiffe_id,
        dns: args.dns,
        ips: args.ip,
        out: args.out,
    };
    for path in host_sim::serve::cert::issue(&spec)? {
        println!("{}", path.display());
    }
    Ok(())
}

fn parse_level(s: &str) -> Result<LogLevel, String> {
    LogLevel::parse(s)
        .ok_or_else(|| format!("{s:?}: expected trace, debug, info, warn, error or critical"))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))
}

/// JSON stays byte-for-byte; anything else must be YAML and becomes JSON.
fn plugin_configuration(path: &Path) -> Result<Vec<u8>> {
    let text = read(path)?;
    if serde_json::from_str::<Value>(&text).is_ok() {
        return Ok(text.into_bytes());
    }
    let value: Value = serde_yaml::from_str(&text)
        .with_context(|| format!("{}: neither JSON nor YAML", path.display()))?;
    Ok(serde_json::to_vec(&value)?)
}

/// What a `--node` file says: Envoy's node id and cluster (when given) and its metadata map.
struct NodeFile {
    id: Option<String>,
    cluster: Option<String>,
    metadata: Map<String, Value>,
}

fn node_metadata(path: &Path) -> Result<NodeFile> {
    let text = read(path)?;
    let value: Value = serde_yaml::from_str(&text)
        .with_context(|| format!("{}: not JSON or YAML", path.display()))?;
    let Value::Object(mut map) = value else {
        bail!("{}: expected an object of node metadata", path.display());
    };
    match map.remove("metadata") {
        Some(Value::Object(metadata)) => {
            let id = map.get("id").and_then(Value::as_str).map(str::to_string);
            let cluster = map
                .get("cluster")
                .and_then(Value::as_str)
                .map(str::to_string);
            Ok(NodeFile {
                id,
                cluster,
                metadata,
            })
        }
        Some(_) => bail!("{}: metadata: expected an object", path.display()),
        None => Ok(NodeFile {
            id: None,
            cluster: None,
            metadata: map,
        }),
    }
}

fn builder(args: &HostArgs, wasm: &Path) -> Result<HostBuilder> {
    let mut b = Host::builder()
        .wasm_file(wasm)
        .log_level(args.log_level)
        .fail_open(args.fail_open)
        .use_remote_address(args.use_remote_address)
        .xff_num_trusted_hops(args.xff_num_trusted_hops)
        .plugin_name(&args.plugin_name)
        .trace_hostcalls(args.trace_hostcalls);
    if let Some(path) = &args.vm_config {
        b = b.vm_configuration(std::fs::read(path).with_context(|| format!("{}", path.display()))?);
    }
    if let Some(secs) = args.clock {
        b = b.clock_at(secs.saturating_mul(1_000_000_000));
    }
    if let Some(path) = &args.node {
        let NodeFile {
            id,
            cluster,
            metadata,
        } = node_metadata(path)?;
        b = b.node(
            id.as_deref()
                .unwrap_or("sidecar~10.0.0.2~app.default~default.svc.cluster.local"),
            cluster.as_deref().unwrap_or("app.default"),
            metadata,
        );
    }
    Ok(b)
}

fn lines(origin: &str, text: &str) -> Result<Vec<(usize, Line)>> {
    parse_lines(origin, text).map_err(anyhow::Error::msg)
}

fn run(args: RunArgs) -> Result<()> {
    let configuration = match &args.host.config {
        Some(path) => plugin_configuration(path)?,
        None => Vec::new(),
    };
    let (origin, text) = match &args.requests {
        Some(path) => (path.display().to_string(), read(path)?),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading requests from stdin")?;
            ("<stdin>".to_string(), text)
        }
    };
    let requests = lines(&origin, &text)?;
    let host = builder(&args.host, &args.host.wasm)?.build()?;
    let mut plugin = host.configure(&configuration).map_err(|e| {
        let logs: Vec<String> = e.logs().iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{e}\nplugin logs:\n  {}", logs.join("\n  "))
    })?;
    answer_callouts(&mut plugin, &args.host.clusters);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (number, line) in requests {
        let output = run_line(&mut plugin, &line).with_context(|| format!("{origin}:{number}"))?;
        serde_json::to_writer(&mut out, &output)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn bench_cmd(args: BenchArgs) -> Result<()> {
    let configuration = match &args.host.config {
        Some(path) => plugin_configuration(path)?,
        None => Vec::new(),
    };
    let origin = args.requests.display().to_string();
    let mix: Vec<_> = lines(&origin, &read(&args.requests)?)?
        .into_iter()
        .filter(|(_, l)| !l.tcp)
        .filter_map(|(_, l)| {
            let request = l.request.as_ref()?.to_request(&l.dynamic_metadata);
            Some((l.connection.to_connection(), request))
        })
        .collect();
    if mix.is_empty() {
        bail!("{origin}: no HTTP requests to benchmark");
    }
    if !args.floor.exists() {
        bail!(
            "{}: the floor module is missing; build the fixtures first: (cd tests/fixtures && cargo build --release --target wasm32-wasip1 --target-dir target)",
            args.floor.display()
        );
    }
    let label = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let subject = bench::Subject {
        label: label(&args.host.wasm),
        host: builder(&args.host, &args.host.wasm)?,
        configuration,
    };
    let floor = bench::Subject {
        label: format!("{} (floor)", label(&args.floor)),
        host: builder(&args.host, &args.floor)?,
        configuration: Vec::new(),
    };
    let report = bench::run(
        subject,
        floor,
        &mix,
        Duration::from_secs_f64(args.seconds.max(0.01)),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// Exits the process with the module's exit code (a trap: printed, then 134 like SIGABRT).
fn wasi_run(args: WasiRunArgs) -> Result<()> {
    let exit = host_sim::wasi_run::WasiCommand::from_file(&args.file)?
        .args(args.args)
        .passed_environment()
        .run()?;
    if let host_sim::wasi_run::Exit::Trap(message) = &exit {
        eprintln!(
            "host-sim wasi-run: {}: trapped: {message}",
            args.file.display()
        );
    }
    std::process::exit(exit.code());
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Bench(args) => bench_cmd(args),
        Command::WasiRun(args) => wasi_run(args),
        Command::Serve(args) => serve(args),
        Command::Upstream(args) => upstream(args),
        Command::ServeCert(args) => serve_cert(args),
        Command::Tool(tool) => run_tool(tool),
    };
    if let Err(e) = result {
        eprintln!("host-sim: {e:#}");
        std::process::exit(1);
    }
}
