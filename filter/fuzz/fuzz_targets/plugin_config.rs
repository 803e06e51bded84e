//! Plugin configuration bytes, raw or shaped like a real configuration, never panic
//! `PluginConfig::parse`, and a configuration that parses compiles (or is refused) without
//! a panic, as the glue does at configure time.
#![no_main]

mod shapes;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use shapes::{Word, LABEL_KEYS, LABEL_VALUES, NAMESPACES, TRUST_DOMAINS};
use spiffe_authz::config::PluginConfig;
use spiffe_authz::engine::{Engine, EngineConfig, Workload};

fn structured(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let mut config = serde_json::Map::new();
    let fields: [(&str, &[&str]); 12] = [
        ("trustDomain", TRUST_DOMAINS),
        ("trustDomainAliases", TRUST_DOMAINS),
        ("rootNamespace", NAMESPACES),
        ("workload", &[]),
        (
            "pathNormalization",
            &[
                "NONE",
                "BASE",
                "DEFAULT",
                "MERGE_SLASHES",
                "DECODE_AND_MERGE_SLASHES",
                "base",
            ],
        ),
        ("mtlsMode", &["STRICT", "PERMISSIVE", "DISABLE", "strict"]),
        (
            "identitySources",
            &["peerCertificate", "connection", "xfcc", "unknown"],
        ),
        ("denyResponse", &[]),
        (
            "logLevel",
            &["trace", "debug", "info", "warn", "error", "critical", "off"],
        ),
        ("denialLogLevel", &["info", "warn", "off"]),
        ("decisionHeader", &["x-authz-decision", "", "Bad Header"]),
        ("unknownField", &["x"]),
    ];
    for (field, pool) in fields {
        if !u.ratio(1, 3)? {
            continue;
        }
        let value = match field {
            "trustDomainAliases" | "identitySources" => {
                serde_json::Value::from(shapes::words(u, pool, 3)?)
            }
            "workload" => {
                let mut labels = serde_json::Map::new();
                for _ in 0..u.int_in_range(0..=2)? {
                    let key = Word::from(u, LABEL_KEYS)?.0;
                    labels.insert(key, Word::from(u, LABEL_VALUES)?.0.into());
                }
                serde_json::json!({ "namespace": Word::from(u, NAMESPACES)?.0, "labels": labels })
            }
            "denyResponse" => serde_json::json!({
                "status": *u.choose(&[403, 401, 200, 99, 600, 0, -1])?,
                "body": Word::from(u, &["RBAC: access denied", ""])?.0,
                "headers": { Word::from(u, &["x-reason", "", ":status", "content-length"])?.0:
                    Word::from(u, &["denied", "a\r\nb"])?.0 },
            }),
            _ => Word::from(u, pool)?.0.into(),
        };
        config.insert(field.to_string(), value);
    }
    for field in ["decisionMetadata", "cacheConnectionFacts"] {
        if u.ratio(1, 4)? {
            config.insert(field.to_string(), serde_json::Value::Bool(u.arbitrary()?));
        }
    }
    if u.ratio(7, 8)? {
        let n = u.int_in_range(0..=3)?;
        let policies = (0..n)
            .map(|_| shapes::policy(u))
            .collect::<arbitrary::Result<Vec<_>>>()?;
        config.insert("policies".into(), policies.into());
    }
    serde_json::to_vec(&serde_json::Value::Object(config))
        .map_err(|_| arbitrary::Error::IncorrectFormat)
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks raw bytes (JSON syntax, encodings) or a shaped configuration
    // (field combinations the parser and engine must agree on).
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        match structured(&mut Unstructured::new(rest)) {
            Ok(bytes) => bytes,
            Err(_) => return,
        }
    };
    let Ok(config) = PluginConfig::parse(Some(&bytes)) else {
        return;
    };
    // Parsing is a function of the bytes.
    assert_eq!(
        PluginConfig::parse(Some(&bytes)).ok().as_ref(),
        Some(&config)
    );
    let _ = config.identity_settings();
    let engine_config = EngineConfig {
        root_namespace: config.root_namespace.clone(),
        trust_domain: config.trust_domain.clone(),
        trust_domain_aliases: config.trust_domain_aliases.clone(),
        workload: config.workload.clone().unwrap_or_else(|| Workload {
            namespace: "default".into(),
            labels: Default::default(),
        }),
        path_normalization: config.path_normalization,
    };
    if let Ok((engine, _warnings)) = Engine::compile(&config.policies, &engine_config) {
        let _ = engine.needs();
        let _ = engine.decide(&Default::default());
    }
});
