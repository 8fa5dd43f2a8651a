//! `tupper load` and `tupper save`: an image in docker's or OCI's archive
//! format (what `docker save`, `podman save` and `skopeo copy ... oci:DIR`
//! or `oci-archive:FILE` write), read and written without any other
//! program. [`save`] writes what this module reads.
//!
//! The archive is a tar file or a directory (an OCI image layout). Its
//! entry points, in this order:
//! - `manifest.json` (docker's format, written by every `docker save`):
//!   `[{"Config": PATH, "Layers": [PATH, ...]}]`, paths into the archive;
//! - `index.json` (an OCI image layout): descriptors of manifests (or of
//!   indexes of manifests, one level deeper), one per platform; the one of
//!   this machine's (`linux/amd64` here) is taken, or the only one.
//!
//! A blob named by a digest (`blobs/sha256/HEX`, or an old `docker save`'s
//! `HEX.json` config) is checked against it as it is read: a layer after
//! it was extracted, the rest of it read to the end (a tampered or cut
//! archive fails the load, and the half-made image goes). Layers are
//! extracted in order into one new subvolume by the OCI rules for
//! changesets ([`crate::extract::extract_layer`]): each may be plain,
//! gzip or zstd (found by magic bytes, whatever its media type says). The
//! image configuration's `config` (docker's `Config`: `Cmd`, `Entrypoint`,
//! `Env`, `WorkingDir`, `User`, `Labels`, `StopSignal`, `ExposedPorts`,
//! `Healthcheck`) becomes the image's [`ImageConfig`]; `Volumes` and
//! `OnBuild` are left out (tupper has neither anonymous volumes nor
//! builds). An image for another OS or CPU is refused.
//!
//! A tar file is indexed first (its headers only: name, offset, size, by
//! `seek`), since its entries come in no fixed order; so standard input is
//! first copied to an unnamed temporary file (`O_TMPFILE`) in the store.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Context, Error, Result};
use crate::image_config::ImageConfig;

/// The most a JSON document of an archive may hold (manifests, configs).
const MAX_JSON: u64 = 16 << 20;

/// Where the archive's entries are.
enum Entries {
    /// An OCI image layout directory.
    Dir(PathBuf),
    /// A tar file: each regular file's data offset and size.
    Tar {
        file: File,
        index: HashMap<String, (u64, u64)>,
    },
}

/// An opened image archive.
pub(crate) struct ImageArchive {
    entries: Entries,
    /// How errors name it (its path, or `stdin`).
    shown: String,
}

/// A layer to extract: its path in the archive and, when a digest names
/// it, that digest's hex SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layer {
    /// The path in the archive.
    pub path: String,
    /// The SHA-256 its bytes must have (hex), when known.
    pub sha256: Option<String>,
}

/// What an archive holds: its layers, bottom first, and its configuration.
#[derive(Debug)]
pub(crate) struct Image {
    /// The layers, bottom first.
    pub layers: Vec<Layer>,
    /// The image's configuration.
    pub config: ImageConfig,
}

/// An entry of docker's `manifest.json`.
#[derive(Deserialize)]
struct DockerManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// An OCI descriptor (of a manifest, an index, a config or a layer).
#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

/// A descriptor's platform.
#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

/// An OCI index (`index.json`, or an index blob) or a manifest: an index
/// has `manifests`, a manifest `config` and `layers`.
#[derive(Deserialize)]
struct OciDocument {
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// An image configuration (the parts tupper uses).
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    config: Option<DockerConfig>,
}

/// docker's `Config` of an image.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DockerConfig {
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    stop_signal: Option<String>,
    #[serde(default)]
    exposed_ports: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    healthcheck: Option<DockerHealthcheck>,
}

/// docker's `Healthcheck` (durations in nanoseconds).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DockerHealthcheck {
    #[serde(default)]
    test: Option<Vec<String>>,
    #[serde(default)]
    interval: u64,
    #[serde(default)]
    timeout: u64,
    #[serde(default)]
    start_period: u64,
    #[serde(default)]
    start_interval: u64,
    #[serde(default)]
    retries: u32,
}

/// This machine's CPU as OCI names it (`GOARCH`).
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

impl ImageArchive {
    /// Opens the archive at `path`: an OCI layout directory, or a tar file
    /// (indexed now).
    pub fn open(path: &Path) -> Result<ImageArchive> {
        let shown = path.display().to_string();
        if path.is_dir() {
            return Ok(ImageArchive {
                entries: Entries::Dir(path.to_path_buf()),
                shown,
            });
        }
        let file = File::open(path).context(|| format!("open image archive {shown}"))?;
        ImageArchive::from_tar(file, shown)
    }

    /// The tar archive in `file` (a regular file, read by offset), shown
    /// as `shown`.
    pub fn from_tar(file: File, shown: String) -> Result<ImageArchive> {
        let index = index_tar(&file).map_err(|e| {
            Error::os(format!("read image archive {shown}"), e).with_advice(
                "load takes a tar archive of docker save, podman save or an OCI layout",
            )
        })?;
        Ok(ImageArchive {
            entries: Entries::Tar { file, index },
            shown,
        })
    }

    /// Whether the archive has the regular file `path`.
    fn has(&self, path: &str) -> bool {
        match &self.entries {
            Entries::Dir(dir) => dir.join(path).is_file(),
            Entries::Tar { index, .. } => index.contains_key(path),
        }
    }

    /// The entry `path`, to read once.
    fn open_entry(&self, path: &str) -> Result<Box<dyn Read + '_>> {
        let missing = || Error::msg(format!("load {}: the archive has no {path:?}", self.shown));
        let clean = clean_path(path).ok_or_else(missing)?;
        match &self.entries {
            Entries::Dir(dir) => match File::open(dir.join(&clean)) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(missing()),
                Err(e) => Err(Error::os(
                    format!("open {} in image archive {}", clean, self.shown),
                    e,
                )),
            },
            Entries::Tar { file, index } => {
                let &(offset, size) = index.get(&clean).ok_or_else(missing)?;
                Ok(Box::new(Section {
                    file,
                    offset,
                    left: size,
                }))
            }
        }
    }

    /// The JSON document `path`, checked against `sha256` when given.
    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        sha256: Option<&str>,
    ) -> Result<T> {
        let mut bytes = Vec::new();
        self.open_entry(path)?
            .take(MAX_JSON + 1)
            .read_to_end(&mut bytes)
            .context(|| format!("read {path} in image archive {}", self.shown))?;
        if bytes.len() as u64 > MAX_JSON {
            return Err(Error::msg(format!(
                "load {}: {path} is larger than {} MiB",
                self.shown,
                MAX_JSON >> 20
            )));
        }
        if let Some(want) = sha256 {
            check_digest(&self.shown, path, want, &hex(&Sha256::digest(&bytes)))?;
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::msg(format!("load {}: {path}: {e}", self.shown)))
    }

    /// Finds the image: its layers and configuration (see the module's text).
    pub fn image(&self) -> Result<Image> {
        let (config_path, config_digest, layers) = if self.has("manifest.json") {
            self.docker_manifest()?
        } else if self.has("index.json") {
            self.oci_manifest()?
        } else {
            return Err(Error::msg(format!(
                "load {}: not an image archive: no manifest.json (docker save) nor index.json (an OCI layout)",
                self.shown
            ))
            .with_advice("a root filesystem's tar archive is imported with `tupper import`"));
        };
        let file: ConfigFile = self.read_json(&config_path, config_digest.as_deref())?;
        let arch = host_architecture();
        if (!file.os.is_empty() && file.os != "linux")
            || (!file.architecture.is_empty() && file.architecture != arch)
        {
            return Err(Error::msg(format!(
                "load {}: the image is for {}/{}, this machine is linux/{arch}",
                self.shown, file.os, file.architecture
            )));
        }
        Ok(Image {
            layers,
            config: convert_config(file.config.unwrap_or_default())
                .map_err(|why| Error::msg(format!("load {}: {config_path}: {why}", self.shown)))?,
        })
    }

    /// docker's `manifest.json`: its one image.
    fn docker_manifest(&self) -> Result<(String, Option<String>, Vec<Layer>)> {
        let mut images: Vec<DockerManifest> = self.read_json("manifest.json", None)?;
        if images.len() != 1 {
            return Err(Error::msg(format!(
                "load {}: manifest.json lists {} images; load takes an archive of one",
                self.shown,
                images.len()
            )));
        }
        let m = images.remove(0);
        let config_digest = digest_of_path(&m.config);
        let layers = m
            .layers
            .into_iter()
            .map(|path| Layer {
                sha256: digest_of_path(&path),
                path,
            })
            .collect();
        Ok((m.config, config_digest, layers))
    }

    /// An OCI layout's `index.json`: the manifest of this machine's
    /// platform (through one nested index at most).
    fn oci_manifest(&self) -> Result<(String, Option<String>, Vec<Layer>)> {
        let mut doc: OciDocument = self.read_json("index.json", None)?;
        for _ in 0..3 {
            if doc.config.is_some() {
                let config = doc.config.take().expect("checked");
                let (config_path, config_sha) = self.blob_path(&config.digest)?;
                let layers = doc
                    .layers
                    .iter()
                    .map(|l| {
                        self.blob_path(&l.digest).map(|(path, sha)| Layer {
                            path,
                            sha256: Some(sha),
                        })
                    })
                    .collect::<Result<_>>()?;
                return Ok((config_path, Some(config_sha), layers));
            }
            let chosen = self.choose_manifest(&doc)?;
            let (path, sha) = self.blob_path(&chosen.digest)?;
            doc = self.read_json(&path, Some(&sha))?;
        }
        Err(Error::msg(format!(
            "load {}: indexes nested too deep",
            self.shown
        )))
    }

    /// The descriptor of `index` for this machine: the one of `linux` and
    /// this CPU, or the only one when it names no platform (attestations,
    /// `unknown/unknown`, never).
    fn choose_manifest<'d>(&self, index: &'d OciDocument) -> Result<&'d Descriptor> {
        let arch = host_architecture();
        let images: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|d| {
                d.platform
                    .as_ref()
                    .map_or(true, |p| p.os != "unknown" && p.architecture != "unknown")
            })
            .filter(|d| !d.media_type.contains("attestation"))
            .collect();
        // The only one, unless it says it is for another platform (one
        // without a platform is checked by its configuration).
        if let [only] = images[..] {
            if only.platform.is_none() {
                return Ok(only);
            }
        }
        images
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .copied()
            .ok_or_else(|| {
                let found: Vec<String> = images
                    .iter()
                    .map(|d| match &d.platform {
                        Some(p) => format!("{}/{}", p.os, p.architecture),
                        None => "?".into(),
                    })
                    .collect();
                Error::msg(format!(
                    "load {}: no image for linux/{arch} in the archive (it has: {})",
                    self.shown,
                    if found.is_empty() {
                        "none".into()
                    } else {
                        found.join(", ")
                    }
                ))
            })
    }

    /// The path of the blob `digest` names (`sha256:HEX` ->
    /// `blobs/sha256/HEX`), and its hex digest.
    fn blob_path(&self, digest: &str) -> Result<(String, String)> {
        match digest.split_once(':') {
            Some(("sha256", hex)) if is_sha256_hex(hex) => {
                Ok((format!("blobs/sha256/{hex}"), hex.to_string()))
            }
            _ => Err(Error::msg(format!(
                "load {}: digest {digest:?}: only sha256 digests are supported",
                self.shown
            ))),
        }
    }

    /// Extracts `layer` with `extract` (given its bytes), then checks its
    /// digest over all of them; `shown` names it in errors (`layer 2 of 3`).
    pub fn extract_layer(
        &self,
        layer: &Layer,
        shown: &str,
        extract: &mut dyn FnMut(&mut dyn Read) -> Result<crate::extract::Stats>,
    ) -> Result<crate::extract::Stats> {
        let mut hashing = Hashing {
            inner: self.open_entry(&layer.path)?,
            hasher: Sha256::new(),
        };
        let stats = extract(&mut hashing)
            .map_err(|e| e.within(format!("load {}: {shown} ({})", self.shown, layer.path)))?;
        io::copy(&mut hashing, &mut io::sink())
            .context(|| format!("read {} in image archive {}", layer.path, self.shown))?;
        if let Some(want) = &layer.sha256 {
            let got = hex(&hashing.hasher.finalize());
            check_digest(&self.shown, &layer.path, want, &got)?;
        }
        Ok(stats)
    }
}

/// Indexes the tar archive in `file`: each regular file's data offset and
/// size, by its name without a leading `./`.
fn index_tar(mut file: &File) -> io::Result<HashMap<String, (u64, u64)>> {
    use std::io::Seek;
    file.rewind()?;
    let mut index = HashMap::new();
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries_with_seek()? {
        let entry = entry?;
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if let Some(name) = clean_path(&name) {
            index.insert(name, (entry.raw_file_position(), entry.size()));
        }
    }
    Ok(index)
}

/// `path` without `./` and empty components; `None` when it would climb
/// (`..`) or is empty.
fn clean_path(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The digest a path names: `blobs/sha256/HEX` (OCI, and `docker save`
/// since 25) or an old `docker save`'s `HEX.json` config.
fn digest_of_path(path: &str) -> Option<String> {
    let clean = clean_path(path)?;
    let hex = match clean.strip_prefix("blobs/sha256/") {
        Some(hex) => hex,
        None => clean.strip_suffix(".json")?,
    };
    is_sha256_hex(hex).then(|| hex.to_string())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_digest(shown: &str, path: &str, want: &str, got: &str) -> Result<()> {
    match want == got {
        true => Ok(()),
        false => Err(Error::msg(format!(
            "load {shown}: {path} does not match its digest (sha256:{want}; its bytes are sha256:{got})"
        ))),
    }
}

/// docker's `Config` as an [`ImageConfig`].
fn convert_config(c: DockerConfig) -> std::result::Result<ImageConfig, String> {
    let mut out = ImageConfig {
        cmd: c.cmd.filter(|v| !v.is_empty()),
        entrypoint: c.entrypoint.filter(|v| !v.is_empty()),
        env: c.env.unwrap_or_default(),
        workdir: c.working_dir.filter(|w| !w.is_empty()),
        user: c.user.filter(|u| !u.is_empty()),
        labels: c.labels.unwrap_or_default(),
        ..ImageConfig::default()
    };
    if let Some(signal) = c.stop_signal.filter(|s| !s.is_empty()) {
        out.stop_signal = Some(
            crate::cli::parse_signal("StopSignal", &signal)
                .map_err(|e| e.what().to_string())?
                .as_raw(),
        );
    }
    for port in c.exposed_ports.unwrap_or_default().keys() {
        for port in crate::image_config::parse_exposed(port)? {
            if !out.exposed_ports.contains(&port) {
                out.exposed_ports.push(port);
            }
        }
    }
    if let Some(h) = c.healthcheck {
        let ms = |ns: u64| ns / 1_000_000;
        out.healthcheck = Some(crate::health::Healthcheck {
            test: h.test.unwrap_or_default(),
            interval_ms: ms(h.interval),
            timeout_ms: ms(h.timeout),
            start_period_ms: ms(h.start_period),
            start_interval_ms: ms(h.start_interval),
            retries: h.retries,
        });
    }
    Ok(out)
}

/// An [`ImageConfig`] as docker's `Config` (the reverse of
/// [`convert_config`]).
fn docker_config(c: &ImageConfig) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        m.insert(key.to_string(), value);
    };
    if !c.env.is_empty() {
        put("Env", c.env.clone().into());
    }
    if let Some(cmd) = &c.cmd {
        put("Cmd", cmd.clone().into());
    }
    if let Some(entrypoint) = &c.entrypoint {
        put("Entrypoint", entrypoint.clone().into());
    }
    if let Some(dir) = &c.workdir {
        put("WorkingDir", dir.clone().into());
    }
    if let Some(user) = &c.user {
        put("User", user.clone().into());
    }
    if !c.labels.is_empty() {
        put("Labels", serde_json::json!(c.labels));
    }
    if let Some(signal) = c.stop_signal {
        put("StopSignal", crate::cli::signal_name(signal).into());
    }
    if !c.exposed_ports.is_empty() {
        let ports: serde_json::Map<String, serde_json::Value> = c
            .exposed_ports
            .iter()
            .map(|p| (p.clone(), serde_json::json!({})))
            .collect();
        put("ExposedPorts", ports.into());
    }
    if let Some(h) = &c.healthcheck {
        let ns = |ms: u64| ms * 1_000_000;
        put(
            "Healthcheck",
            serde_json::json!({
                "Test": h.test,
                "Interval": ns(h.interval_ms),
                "Timeout": ns(h.timeout_ms),
                "StartPeriod": ns(h.start_period_ms),
                "StartInterval": ns(h.start_interval_ms),
                "Retries": h.retries,
            }),
        );
    }
    m.into()
}

/// Writes an image to `out` as an image archive (`tupper save`): an OCI
/// image layout, with docker's `manifest.json` beside it (what `docker
/// save` writes since docker 25), which `docker load`, `podman load` and
/// `tupper load` read. One layer: the tree at `root` as a plain tar,
/// written to an unnamed temporary file in `tmp` first, since its digest
/// goes before it. `name` tags it (`NAME:latest`), `created` (RFC 3339)
/// and `mtime` (seconds) date it.
pub(crate) fn save(
    root: &Path,
    name: &str,
    config: &ImageConfig,
    created: &str,
    mtime: u64,
    tmp: std::os::fd::BorrowedFd<'_>,
    out: &mut dyn io::Write,
) -> Result<()> {
    let fd = rustix::fs::openat(
        tmp,
        ".",
        rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .context(|| format!("save {name}: make a temporary file for its layer"))?;
    let mut layer_file = File::from(fd);
    let (layer_len, layer_digest) = {
        let mut hashing = HashingWriter {
            inner: io::BufWriter::with_capacity(1 << 16, &mut layer_file),
            hasher: Sha256::new(),
            len: 0,
        };
        crate::extract::export_tree(root, &mut hashing)?;
        io::Write::flush(&mut hashing.inner)
            .context(|| format!("save {name}: write its layer to a temporary file"))?;
        let digest = format!("sha256:{}", hex(&hashing.hasher.finalize()));
        (hashing.len, digest)
    };

    let json = |v: serde_json::Value| serde_json::to_vec(&v).unwrap_or_default();
    let digest = |bytes: &[u8]| format!("sha256:{}", hex(&Sha256::digest(bytes)));
    let config_json = json(serde_json::json!({
        "architecture": host_architecture(),
        "os": "linux",
        "created": created,
        "config": docker_config(config),
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": created, "created_by": "tupper save"}],
    }));
    let config_digest = digest(&config_json);
    let manifest = json(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_json.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_len,
        }],
    }));
    let manifest_digest = digest(&manifest);
    let tag = format!("{name}:latest");
    let index = json(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": format!("docker.io/library/{tag}"),
                "org.opencontainers.image.ref.name": "latest",
            },
        }],
    }));
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let docker_manifest = json(serde_json::json!([{
        "Config": blob(&config_digest),
        "RepoTags": [tag],
        "Layers": [blob(&layer_digest)],
    }]));

    let failed = |e: io::Error| Error::os(format!("save {name}: write the archive"), e);
    let mut tar = tar::Builder::new(out);
    let header = |size: u64, dir: bool| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(match dir {
            true => tar::EntryType::Directory,
            false => tar::EntryType::Regular,
        });
        h.set_mode(if dir { 0o755 } else { 0o644 });
        h.set_size(size);
        h.set_mtime(mtime);
        h.set_cksum();
        h
    };
    let mut add = |path: &str, bytes: &[u8]| {
        tar.append_data(&mut header(bytes.len() as u64, false), path, bytes)
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(failed)?;
    for dir in ["blobs/", "blobs/sha256/"] {
        tar.append_data(&mut header(0, true), dir, io::empty())
            .map_err(failed)?;
    }
    {
        use std::io::Seek;
        layer_file
            .rewind()
            .context(|| format!("save {name}: read its layer back"))?;
    }
    tar.append_data(
        &mut header(layer_len, false),
        blob(&layer_digest),
        &mut layer_file,
    )
    .map_err(failed)?;
    let mut add = |path: &str, bytes: &[u8]| {
        tar.append_data(&mut header(bytes.len() as u64, false), path, bytes)
    };
    add(&blob(&config_digest), &config_json).map_err(failed)?;
    add(&blob(&manifest_digest), &manifest).map_err(failed)?;
    add("index.json", &index).map_err(failed)?;
    add("manifest.json", &docker_manifest).map_err(failed)?;
    tar.finish().map_err(failed)
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A part of a file, read by offset (`pread`): an entry of a tar archive.
struct Section<'f> {
    file: &'f File,
    offset: u64,
    left: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside an entry",
            ));
        }
        self.offset += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_digests() {
        assert_eq!(
            clean_path("./blobs//sha256/ab").as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(clean_path("a/../b"), None);
        assert_eq!(clean_path("./"), None);
        let hex = "a".repeat(64);
        assert_eq!(
            digest_of_path(&format!("blobs/sha256/{hex}")),
            Some(hex.clone())
        );
        assert_eq!(digest_of_path(&format!("{hex}.json")), Some(hex.clone()));
        assert_eq!(digest_of_path("abc/layer.tar"), None);
        assert_eq!(digest_of_path(&format!("blobs/sha512/{hex}")), None);
        assert_eq!(
            hex_of(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn hex_of(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    #[test]
    fn docker_config_becomes_the_image_config() {
        let c: ConfigFile = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{
                "Env":["PATH=/usr/bin:/bin","A=1"],"Cmd":["httpd","-f"],
                "Entrypoint":null,"WorkingDir":"/srv","User":"",
                "Labels":{"k":"v"},"StopSignal":"SIGQUIT",
                "ExposedPorts":{"80/tcp":{},"53/udp":{}},
                "Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":2000000000,"Retries":2},
                "Volumes":{"/data":{}}}}"#,
        )
        .unwrap();
        let out = convert_config(c.config.unwrap()).unwrap();
        assert_eq!(out.cmd, Some(vec!["httpd".to_string(), "-f".to_string()]));
        assert_eq!(out.entrypoint, None);
        assert_eq!(out.env, ["PATH=/usr/bin:/bin", "A=1"]);
        assert_eq!(out.workdir.as_deref(), Some("/srv"));
        assert_eq!(out.user, None);
        assert_eq!(out.labels["k"], "v");
        assert_eq!(out.stop_signal, Some(libc::SIGQUIT));
        assert_eq!(out.exposed_ports, ["53/udp", "80/tcp"]);
        let h = out.healthcheck.unwrap();
        assert_eq!((h.interval_ms, h.retries), (2000, 2));
        assert_eq!(h.test, ["CMD-SHELL", "true"]);
        let bad = DockerConfig {
            stop_signal: Some("SIGNOPE".into()),
            ..DockerConfig::default()
        };
        assert!(convert_config(bad).is_err());
        // And back (save): the same configuration.
        let back: DockerConfig = serde_json::from_value(docker_config(&out_again())).unwrap();
        assert_eq!(convert_config(back).unwrap(), out_again());
    }

    /// A configuration with every field set.
    fn out_again() -> ImageConfig {
        let mut c = ImageConfig::default();
        c.apply_changes(&[
            "CMD [\"httpd\", \"-f\"]".into(),
            "ENTRYPOINT [\"/init\"]".into(),
            "ENV A=1 B=2".into(),
            "WORKDIR /srv".into(),
            "USER 1000:1000".into(),
            "LABEL k=v".into(),
            "STOPSIGNAL RTMIN+3".into(),
            "EXPOSE 53/udp 80".into(),
            "HEALTHCHECK --interval=2s --timeout=1s --start-period=3s --start-interval=500ms --retries=4 CMD true".into(),
        ])
        .unwrap();
        c
    }
}
