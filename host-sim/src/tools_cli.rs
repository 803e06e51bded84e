//! The user-facing tools around the filter: `oci`, `render`, `check`, `certs`. Mounted into the
//! `host-sim` command line beside `run` and `bench` (see `main.rs`).

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use spiffe_authz::engine::{EngineConfig, Workload};
use spiffe_authz::normalize::PathNormalization;

use crate::check::{self, CheckHttp, CheckRequest};
use crate::oci::{self, Variant};
use crate::policy_files::{load_policy_files, LoadedPolicies};
use crate::render::{self, PluginSettings, WasmPluginSettings};

#[derive(Debug, Subcommand)]
pub enum ToolCommand {
    /// Package a .wasm as OCI images Istio's WasmPlugin can pull; print the digests to pin.
    Oci(OciArgs),
    /// Wrap AuthorizationPolicy YAML into a WasmPlugin, an Envoy filter or a plugin config.
    Render(RenderArgs),
    /// Would this caller be allowed this request on that workload? Also warns about smells.
    Check(CheckArgs),
    /// Create a demo mesh PKI: root CA, per-cluster intermediate, SPIFFE workload certificates.
    Certs(CertsArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct OciArgs {
    #[command(subcommand)]
    verify: Option<OciVerify>,
    /// The module to package.
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// Directory for the OCI image layout (created).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Tag of the Wasm-artifact image; the compat image is tagged `<TAG>-compat`.
    #[arg(long, default_value = "latest")]
    tag: String,
    /// Which image formats to write.
    #[arg(long, value_enum, default_value = "both")]
    format: OciFormat,
    /// The plugin's root id, recorded in the runtime config.
    #[arg(long, default_value = "spiffe-authz")]
    root_id: String,
}

#[derive(Debug, Subcommand)]
enum OciVerify {
    /// Extract the module from an image in an OCI layout the way Istio's agent does, and
    /// compare it with a .wasm file.
    Verify {
        #[arg(long)]
        layout: PathBuf,
        #[arg(long)]
        tag: String,
        #[arg(long)]
        wasm: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OciFormat {
    /// The two-layer Wasm artifact (tagged TAG).
    Artifact,
    /// A standard image with plugin.wasm in a tar+gzip layer (tagged TAG-compat).
    Compat,
    Both,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// What to write.
    #[arg(value_enum)]
    target: RenderTarget,
    /// AuthorizationPolicy files (YAML or JSON; multi-document; kind: List).
    #[arg(long = "policies", required = true, num_args = 1..)]
    policies: Vec<PathBuf>,
    #[arg(long)]
    trust_domain: Option<String>,
    /// STRICT or PERMISSIVE.
    #[arg(long)]
    mtls_mode: Option<String>,
    #[arg(long)]
    root_namespace: Option<String>,
    /// The guarded workload's namespace (standalone Envoy has no Istio node metadata).
    #[arg(long)]
    workload_namespace: Option<String>,
    /// A label of the guarded workload, KEY=VALUE; repeatable.
    #[arg(long = "workload-label", value_parser = parse_key_value)]
    workload_labels: Vec<(String, String)>,
    /// WasmPlugin: name and namespace of the WasmPlugin object.
    #[arg(long, default_value = "spiffe-authz")]
    name: String,
    #[arg(long)]
    namespace: Option<String>,
    /// WasmPlugin: selector label KEY=VALUE; repeatable.
    #[arg(long = "selector", value_parser = parse_key_value)]
    selector: Vec<(String, String)>,
    /// WasmPlugin: module URL (oci://, https://, file://).
    #[arg(
        long,
        default_value = "oci://registry.example.internal/spiffe-authz:latest"
    )]
    url: String,
    /// WasmPlugin: the image manifest digest `host-sim oci` printed.
    #[arg(long)]
    sha256: Option<String>,
    /// Envoy: path of the .wasm as Envoy sees it.
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/wasm-release/spiffe_authz.wasm"
    )]
    wasm_path: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RenderTarget {
    /// An Istio WasmPlugin (phase AUTHZ, fail closed).
    Wasmplugin,
    /// An entry for an Envoy HttpConnectionManager's http_filters.
    Envoy,
    /// The plugin configuration JSON (host-sim run --config, Envoy `configuration`).
    Config,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// AuthorizationPolicy files (YAML or JSON; multi-document; kind: List).
    #[arg(long = "policies", required = true, num_args = 1..)]
    policies: Vec<PathBuf>,
    /// The workload being called: its namespace.
    #[arg(long)]
    workload_namespace: String,
    /// A label of the workload being called, KEY=VALUE; repeatable.
    #[arg(long = "workload-label", value_parser = parse_key_value)]
    workload_labels: Vec<(String, String)>,
    #[arg(long, default_value = "cluster.local")]
    trust_domain: String,
    /// Another name of the local trust domain (the plugin's trustDomainAliases); repeatable.
    #[arg(long = "trust-domain-alias")]
    trust_domain_aliases: Vec<String>,
    /// Namespace whose policies apply mesh-wide (the plugin's rootNamespace).
    #[arg(long, default_value = "istio-system")]
    root_namespace: String,
    /// NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES (the plugin's pathNormalization).
    #[arg(long, default_value = "BASE", value_parser = parse_path_normalization)]
    path_normalization: PathNormalization,
    /// The caller's principal (`td/ns/x/sa/y` or `spiffe://…`); omit for a plaintext caller.
    #[arg(long)]
    principal: Option<String>,
    #[arg(long)]
    source_ip: Option<IpAddr>,
    #[arg(long)]
    port: Option<u16>,
    /// Check a TCP connection instead of an HTTP request.
    #[arg(long, conflicts_with_all = ["method", "path", "host", "headers"])]
    tcp: bool,
    #[arg(long, default_value = "GET")]
    method: String,
    #[arg(long, default_value = "/")]
    path: String,
    #[arg(long, default_value = "")]
    host: String,
    /// A request header NAME=VALUE; repeatable.
    #[arg(long = "header", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write into (created).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "cluster.local")]
    trust_domain: String,
    /// A workload NAMESPACE/SERVICE-ACCOUNT; repeatable.
    #[arg(long = "workload", value_parser = parse_workload,
          default_values = ["demo/frontend", "demo/backend", "ops/deployer", "payments/payment-service"])]
    workloads: Vec<(String, String)>,
}

fn parse_path_normalization(s: &str) -> Result<PathNormalization, String> {
    s.parse()
        .map_err(|e: spiffe_authz::normalize::UnknownPathNormalization| e.to_string())
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?}: expected KEY=VALUE")),
    }
}

fn parse_workload(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((ns, sa)) if !ns.is_empty() && !sa.is_empty() && !sa.contains('/') => {
            Ok((ns.to_string(), sa.to_string()))
        }
        _ => Err(format!("{s:?}: expected NAMESPACE/SERVICE-ACCOUNT")),
    }
}

/// Runs one tool command, printing to stdout.
pub fn run_tool(command: ToolCommand) -> Result<()> {
    match command {
        ToolCommand::Oci(args) => run_oci(args),
        ToolCommand::Render(args) => run_render(args),
        ToolCommand::Check(args) => run_check(args),
        ToolCommand::Certs(args) => run_certs(args),
    }
}

fn run_oci(args: OciArgs) -> Result<()> {
    if let Some(OciVerify::Verify { layout, tag, wasm }) = args.verify {
        let expected = fs::read(&wasm).with_context(|| format!("{}", wasm.display()))?;
        let (digest, extracted) = oci::extract_from_layout(&layout, &tag)?;
        if extracted != expected {
            bail!(
                "{}:{tag}: the module Istio would extract ({} bytes, {}) differs from {} ({} bytes, {})",
                layout.display(),
                extracted.len(),
                oci::sha256_digest(&extracted),
                wasm.display(),
                expected.len(),
                oci::sha256_digest(&expected)
            );
        }
        println!("{tag} {digest} module {}", oci::sha256_digest(&extracted));
        return Ok(());
    }
    let (Some(wasm), Some(out)) = (args.wasm, args.out) else {
        bail!("oci: --wasm and --out are required (or use `oci verify`)");
    };
    let module = fs::read(&wasm).with_context(|| format!("{}", wasm.display()))?;
    let mut images = Vec::new();
    if matches!(args.format, OciFormat::Artifact | OciFormat::Both) {
        let image = oci::build_image(&module, Variant::WasmArtifact, &args.root_id)
            .with_context(|| format!("{}", wasm.display()))?;
        images.push((args.tag.clone(), image));
    }
    if matches!(args.format, OciFormat::Compat | OciFormat::Both) {
        let image = oci::build_image(&module, Variant::Compat, &args.root_id)
            .with_context(|| format!("{}", wasm.display()))?;
        images.push((format!("{}-compat", args.tag), image));
    }
    oci::write_layout(&out, &images)?;
    // One line per image: tag, format, manifest digest (the WasmPlugin `sha256` without the
    // `sha256:` prefix), module digest.
    for (tag, image) in &images {
        println!(
            "{tag} {} {} module {}",
            image.variant.name(),
            image.manifest_digest(),
            oci::sha256_digest(&module)
        );
    }
    Ok(())
}

fn load(files: &[PathBuf]) -> Result<LoadedPolicies> {
    let loaded = load_policy_files(files)?;
    for skipped in &loaded.skipped {
        eprintln!("note: skipped {skipped}");
    }
    Ok(loaded)
}

fn run_render(args: RenderArgs) -> Result<()> {
    let loaded = load(&args.policies)?;
    let settings = PluginSettings {
        trust_domain: args.trust_domain,
        mtls_mode: args.mtls_mode,
        root_namespace: args.root_namespace,
        workload_namespace: args.workload_namespace,
        workload_labels: args.workload_labels.into_iter().collect(),
    };
    let text = match args.target {
        RenderTarget::Wasmplugin => {
            let namespace = match args.namespace {
                Some(ns) => ns,
                None => common_namespace(&loaded)?,
            };
            render::wasm_plugin_yaml(
                &loaded.policies,
                &settings,
                &WasmPluginSettings {
                    name: args.name,
                    namespace,
                    selector: args.selector.into_iter().collect(),
                    url: args.url,
                    sha256: args.sha256,
                },
            )?
        }
        RenderTarget::Envoy => {
            if settings.workload_namespace.is_none() {
                eprintln!(
                    "warning: no --workload-namespace: standalone Envoy has no Istio node \
                     metadata, so the filter will reject the configuration unless the bootstrap \
                     sets node.metadata NAMESPACE and LABELS"
                );
            }
            render::envoy_http_filter_yaml(&loaded.policies, &settings, &args.wasm_path)?
        }
        RenderTarget::Config => {
            let config = render::plugin_config(&loaded.policies, &settings)?;
            serde_json::to_string_pretty(&config)? + "\n"
        }
    };
    print!("{text}");
    Ok(())
}

/// The namespace a WasmPlugin goes in when the user did not say: the policies' own, if they
/// agree.
fn common_namespace(loaded: &LoadedPolicies) -> Result<String> {
    let namespaces: std::collections::BTreeSet<&str> = loaded
        .policies
        .iter()
        .map(|p| p.metadata.namespace.as_str())
        .collect();
    match namespaces.into_iter().collect::<Vec<_>>().as_slice() {
        [one] => Ok(one.to_string()),
        many => bail!(
            "render wasmplugin: the policies are in several namespaces ({}): pass --namespace",
            many.join(", ")
        ),
    }
}

fn run_check(args: CheckArgs) -> Result<()> {
    let loaded = load(&args.policies)?;
    let workload = Workload {
        namespace: args.workload_namespace,
        labels: args.workload_labels.into_iter().collect::<BTreeMap<_, _>>(),
    };
    let request = CheckRequest {
        principal: args.principal,
        source_ip: args.source_ip,
        destination_port: args.port,
        http: (!args.tcp).then(|| CheckHttp {
            method: args.method,
            path: args.path,
            host: args.host,
            headers: args
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        }),
    };
    let config = EngineConfig {
        root_namespace: args.root_namespace,
        trust_domain: args.trust_domain,
        trust_domain_aliases: args.trust_domain_aliases,
        workload,
        path_normalization: args.path_normalization,
    };
    let (decision, warnings) =
        check::check(&loaded.policies, &config, &request).map_err(|errors| {
            anyhow::anyhow!("the policies do not compile:\n  {}", errors.join("\n  "))
        })?;
    println!("{decision}");
    for warning in warnings {
        println!("warning: {warning}");
    }
    for smell in check::smells(&loaded.policies) {
        println!("smell: {smell}");
    }
    Ok(())
}

fn run_certs(args: CertsArgs) -> Result<()> {
    let workloads: Vec<(&str, &str)> = args
        .workloads
        .iter()
        .map(|(ns, sa)| (ns.as_str(), sa.as_str()))
        .collect();
    let written = crate::certs::write_demo_pki(&args.out, &args.trust_domain, &workloads)?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}
