//! Packaging a `.wasm` as an OCI image that Istio's `WasmPlugin` can pull.
//!
//! Istio's agent (`pkg/wasm/imagefetcher.go`) accepts a single image manifest in one of these
//! shapes, and so do we build them:
//! - [`Variant::Compat`]: a standard OCI image whose last (only) layer is a gzip'd tar
//!   (`application/vnd.oci.image.layer.v1.tar+gzip`) holding `plugin.wasm`; the manifest carries
//!   the `module.wasm.image/variant: compat` annotation the solo.io spec asks for.
//! - [`Variant::WasmArtifact`]: the Wasm artifact layout: exactly two layers, the raw module
//!   (`application/vnd.module.wasm.content.layer.v1+wasm`) first — Envoy's native OCI fetcher
//!   takes `layers[0]` — and the runtime config second.
//!
//! Everything is deterministic (fixed tar header, gzip without name or mtime) so the same
//! `.wasm` always gives the same manifest digest: the digest a `WasmPlugin`'s `sha256` pins is
//! the *manifest* digest, not the module's.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
pub const MEDIA_WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
const ANNOTATION_VARIANT: &str = "module.wasm.image/variant";
const WASM_MAGIC: &[u8] = b"\0asm";

/// Which of the image shapes Istio accepts to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// A standard image with `plugin.wasm` in a tar+gzip layer.
    Compat,
    /// The two-layer Wasm artifact (raw module + runtime config).
    WasmArtifact,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Compat => "compat",
            Variant::WasmArtifact => "wasm-artifact",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{0}: not a wasm module (it does not start with the wasm magic \\0asm)")]
    NotWasm(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("manifest: {0}")]
    Manifest(String),
    #[error("blob {0}: not found")]
    MissingBlob(String),
}

/// A content-addressed blob.
#[derive(Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: &'static str,
    /// `sha256:<hex>`.
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Blob({}, {}, {} bytes)",
            self.media_type,
            self.digest,
            self.bytes.len()
        )
    }
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Self {
        Blob {
            media_type,
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    fn descriptor(&self, annotations: Option<serde_json::Value>) -> serde_json::Value {
        let mut d = json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        });
        if let (Some(a), Some(obj)) = (annotations, d.as_object_mut()) {
            obj.insert("annotations".into(), a);
        }
        d
    }
}

/// One built image: its manifest and every blob it references.
#[derive(Debug, Clone)]
pub struct WasmImage {
    pub variant: Variant,
    pub manifest: Blob,
    /// Config first, then layers, deduplicated.
    pub blobs: Vec<Blob>,
}

impl WasmImage {
    /// `sha256:<hex>` of the manifest: what a `WasmPlugin` `sha256` (without the prefix) pins.
    pub fn manifest_digest(&self) -> &str {
        &self.manifest.digest
    }
}

/// `sha256:<lowercase hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds the image of `variant` around `wasm`. `root_id` goes into the runtime config.
pub fn build_image(wasm: &[u8], variant: Variant, root_id: &str) -> Result<WasmImage, OciError> {
    if !wasm.starts_with(WASM_MAGIC) {
        return Err(OciError::NotWasm("module".into()));
    }
    match variant {
        Variant::Compat => build_compat(wasm),
        Variant::WasmArtifact => build_artifact(wasm, root_id),
    }
}

fn build_compat(wasm: &[u8]) -> Result<WasmImage, OciError> {
    let tar = deterministic_tar(wasm)?;
    let diff_id = sha256_digest(&tar);
    let layer = Blob::new(MEDIA_OCI_LAYER_TAR_GZIP, deterministic_gzip(&tar)?);
    // GOARCH/GOOS names for a WASI module; Istio never reads the config, registries only
    // require valid JSON with rootfs.diff_ids matching the layers.
    let config = Blob::new(
        MEDIA_OCI_CONFIG,
        json_bytes(&json!({
            "architecture": "wasm",
            "os": "wasip1",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "config": {},
        })),
    );
    let manifest = Blob::new(
        MEDIA_OCI_MANIFEST,
        json_bytes(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": config.descriptor(None),
            "layers": [layer.descriptor(None)],
            "annotations": {ANNOTATION_VARIANT: "compat"},
        })),
    );
    Ok(WasmImage {
        variant: Variant::Compat,
        manifest,
        blobs: vec![config, layer],
    })
}

fn build_artifact(wasm: &[u8], root_id: &str) -> Result<WasmImage, OciError> {
    let config = Blob::new(
        MEDIA_WASM_CONFIG,
        json_bytes(&json!({
            "type": "envoy_proxy",
            "abiVersions": ["proxy_abi_version_0_2_1"],
            "config": {"rootIds": [root_id]},
        })),
    );
    let module = Blob::new(MEDIA_WASM_LAYER, wasm.to_vec());
    let manifest = Blob::new(
        MEDIA_OCI_MANIFEST,
        json_bytes(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": config.descriptor(None),
            "layers": [
                module.descriptor(Some(json!({ANNOTATION_TITLE: "plugin.wasm"}))),
                config.descriptor(Some(json!({ANNOTATION_TITLE: "runtime-config.json"}))),
            ],
        })),
    );
    Ok(WasmImage {
        variant: Variant::WasmArtifact,
        manifest,
        blobs: vec![config, module],
    })
}

fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    // serde_json writes object keys in sorted order (BTreeMap), so this is deterministic.
    v.to_string().into_bytes()
}

fn deterministic_tar(wasm: &[u8]) -> Result<Vec<u8>, OciError> {
    let io = |source| OciError::Io {
        path: "plugin.wasm (tar)".into(),
        source,
    };
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(wasm.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "plugin.wasm", wasm)
        .map_err(io)?;
    builder.into_inner().map_err(io)
}

fn deterministic_gzip(bytes: &[u8]) -> Result<Vec<u8>, OciError> {
    let io = |source| OciError::Io {
        path: "plugin.wasm (gzip)".into(),
        source,
    };
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).map_err(io)?;
    gz.finish().map_err(io)
}

/// Writes an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/..`) holding `images`,
/// each under its tag, e.g. for `skopeo copy oci:DIR:TAG docker://registry/repo:TAG`.
pub fn write_layout(dir: &Path, images: &[(String, WasmImage)]) -> Result<(), OciError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| OciError::Io { path, source }
    };
    let blobs_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs_dir).map_err(io(&blobs_dir))?;
    let mut manifests = Vec::new();
    for (tag, image) in images {
        for blob in image.blobs.iter().chain(std::iter::once(&image.manifest)) {
            let hex = blob.digest.trim_start_matches("sha256:");
            let path = blobs_dir.join(hex);
            fs::write(&path, &blob.bytes).map_err(io(&path))?;
        }
        manifests.push(
            image
                .manifest
                .descriptor(Some(json!({ANNOTATION_REF_NAME: tag}))),
        );
    }
    let layout = dir.join("oci-layout");
    fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io(&layout))?;
    let index = dir.join("index.json");
    let index_json = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": manifests,
    });
    fs::write(&index, json_bytes(&index_json)).map_err(io(&index))?;
    Ok(())
}

/// Extracts the module from a pulled image the way Istio's agent does
/// (`pkg/wasm/imagefetcher.go`): Docker image (last layer tar.gzip with `plugin.wasm`), else OCI
/// compat (last layer `tar+gzip`), else the two-layer Wasm artifact. Used by tests to prove an
/// image round-trips through a registry in a form Istio would load.
pub fn extract_wasm_like_istio(
    manifest: &[u8],
    blob: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, OciError> {
    let m: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| OciError::Manifest(e.to_string()))?;
    let layers = field(&m, "layers")
        .as_array()
        .ok_or_else(|| OciError::Manifest("no layers".into()))?;
    let media = |l: &serde_json::Value| {
        field(l, "mediaType")
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let digest =
        |l: &serde_json::Value| field(l, "digest").as_str().unwrap_or_default().to_string();
    let fetch = |d: String| blob(&d).ok_or(OciError::MissingBlob(d));
    let tar_layer_type = if field(&m, "mediaType").as_str() == Some(MEDIA_DOCKER_MANIFEST) {
        MEDIA_DOCKER_LAYER_TAR_GZIP
    } else {
        MEDIA_OCI_LAYER_TAR_GZIP
    };
    let wasm = match layers.last() {
        Some(last) if media(last) == tar_layer_type => {
            plugin_wasm_from_tar_gz(&fetch(digest(last))?)?
        }
        _ => {
            if layers.len() != 2 {
                return Err(OciError::Manifest(format!(
                    "number of layers must be 2 but got {}",
                    layers.len()
                )));
            }
            let wasm_layer = layers
                .iter()
                .find(|l| media(l) == MEDIA_WASM_LAYER)
                .ok_or_else(|| OciError::Manifest("no wasm layer".into()))?;
            fetch(digest(wasm_layer))?
        }
    };
    if !wasm.starts_with(WASM_MAGIC) {
        return Err(OciError::NotWasm("extracted plugin.wasm".into()));
    }
    Ok(wasm)
}

/// `value[key]` without `Index`'s panic-on-misuse: absent keys and non-objects read as null.
fn field<'a>(value: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    static NULL: serde_json::Value = serde_json::Value::Null;
    value.get(key).unwrap_or(&NULL)
}

/// Reads the image tagged `tag` from the OCI layout at `dir` and extracts its module the way
/// Istio's agent would ([`extract_wasm_like_istio`]). Returns the manifest digest and the module.
pub fn extract_from_layout(dir: &Path, tag: &str) -> Result<(String, Vec<u8>), OciError> {
    let read = |path: &Path| {
        fs::read(path).map_err(|source| OciError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    let index: serde_json::Value = serde_json::from_slice(&read(&dir.join("index.json"))?)
        .map_err(|e| OciError::Manifest(format!("index.json: {e}")))?;
    let digest = field(&index, "manifests")
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| field(field(m, "annotations"), ANNOTATION_REF_NAME).as_str() == Some(tag))
        .and_then(|m| field(m, "digest").as_str())
        .ok_or_else(|| OciError::Manifest(format!("index.json: no image tagged {tag:?}")))?
        .to_string();
    let blob_path = |d: &str| {
        dir.join("blobs")
            .join("sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest = read(&blob_path(&digest))?;
    if sha256_digest(&manifest) != digest {
        return Err(OciError::Manifest(format!(
            "{digest}: content does not match its digest"
        )));
    }
    let wasm = extract_wasm_like_istio(&manifest, &|d| {
        fs::read(blob_path(d))
            .ok()
            .filter(|bytes| sha256_digest(bytes) == d)
    })?;
    Ok((digest, wasm))
}

fn plugin_wasm_from_tar_gz(bytes: &[u8]) -> Result<Vec<u8>, OciError> {
    use std::io::Read;
    let io = |source| OciError::Io {
        path: "layer".into(),
        source,
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let is_plugin = entry.header().entry_type() == tar::EntryType::Regular
            && entry
                .path()
                .map_err(io)?
                .file_name()
                .is_some_and(|n| n == "plugin.wasm");
        if is_plugin {
            let mut out = Vec::new();
            entry.read_to_end(&mut out).map_err(io)?;
            return Ok(out);
        }
    }
    Err(OciError::Manifest("layer has no plugin.wasm".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM: &[u8] = b"\0asm\x01\0\0\0";

    fn blob_of(image: &WasmImage) -> impl Fn(&str) -> Option<Vec<u8>> + '_ {
        move |d| {
            image
                .blobs
                .iter()
                .find(|b| b.digest == d)
                .map(|b| b.bytes.clone())
        }
    }

    #[test]
    fn same_module_gives_same_manifest_digest() {
        // WasmPlugin.sha256 pins the manifest digest, so rebuilding must not change it.
        for variant in [Variant::Compat, Variant::WasmArtifact] {
            let a = build_image(WASM, variant, "spiffe-authz").unwrap();
            let b = build_image(WASM, variant, "spiffe-authz").unwrap();
            assert_eq!(a.manifest_digest(), b.manifest_digest(), "{variant:?}");
            assert_eq!(a.manifest.digest, sha256_digest(&a.manifest.bytes));
        }
    }

    #[test]
    fn compat_image_has_one_tar_gzip_layer_with_plugin_wasm() {
        // imagefetcher.go: OCI compat = last layer tar+gzip containing a file named plugin.wasm.
        let image = build_image(WASM, Variant::Compat, "x").unwrap();
        let m: serde_json::Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        assert_eq!(m["layers"][0]["mediaType"], MEDIA_OCI_LAYER_TAR_GZIP);
        assert_eq!(m["annotations"][ANNOTATION_VARIANT], "compat");
        let extracted = extract_wasm_like_istio(&image.manifest.bytes, &blob_of(&image)).unwrap();
        assert_eq!(extracted, WASM);
    }

    #[test]
    fn artifact_image_has_exactly_two_layers_wasm_first() {
        // imagefetcher.go: "number of layers must be 2"; Envoy's native fetcher reads layers[0].
        let image = build_image(WASM, Variant::WasmArtifact, "x").unwrap();
        let m: serde_json::Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0]["mediaType"], MEDIA_WASM_LAYER);
        assert_eq!(layers[0]["digest"], sha256_digest(WASM));
        assert_eq!(layers[1]["mediaType"], MEDIA_WASM_CONFIG);
        let extracted = extract_wasm_like_istio(&image.manifest.bytes, &blob_of(&image)).unwrap();
        assert_eq!(extracted, WASM);
    }

    #[test]
    fn refuses_bytes_that_are_not_wasm() {
        let err = build_image(b"\x7fELF....", Variant::Compat, "x").unwrap_err();
        assert!(err.to_string().contains("not a wasm module"), "{err}");
    }

    #[test]
    fn one_layer_artifact_is_rejected_like_istio() {
        // The common `oras push` mistake: one wasm layer only.
        let wasm_blob = Blob::new(MEDIA_WASM_LAYER, WASM.to_vec());
        let manifest = json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
            "layers": [wasm_blob.descriptor(None)]});
        let err =
            extract_wasm_like_istio(&json_bytes(&manifest), &|_| Some(WASM.to_vec())).unwrap_err();
        assert!(err.to_string().contains("must be 2 but got 1"), "{err}");
    }

    #[test]
    fn layout_on_disk_indexes_each_tag() {
        let dir = std::env::temp_dir().join(format!("oci-layout-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let compat = build_image(WASM, Variant::Compat, "x").unwrap();
        let artifact = build_image(WASM, Variant::WasmArtifact, "x").unwrap();
        write_layout(
            &dir,
            &[("v1".into(), compat.clone()), ("v1-wasm".into(), artifact)],
        )
        .unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], compat.manifest.digest);
        assert_eq!(
            index["manifests"][0]["annotations"][ANNOTATION_REF_NAME],
            "v1"
        );
        let (digest, wasm) = extract_from_layout(&dir, "v1-wasm").unwrap();
        assert_eq!(wasm, WASM);
        assert_ne!(digest, compat.manifest.digest);
        let hex = compat.manifest.digest.trim_start_matches("sha256:");
        let on_disk = fs::read(dir.join("blobs/sha256").join(hex)).unwrap();
        assert_eq!(on_disk, compat.manifest.bytes);
        fs::remove_dir_all(&dir).unwrap();
    }
}
