//! `tupper load`: images in docker's (`docker save`) and OCI's (a layout
//! directory, or its tar) archive formats, built here from the busybox
//! root: layers applied in order with their whiteouts, the configuration
//! taken, digests checked, nothing left behind by a refused archive.

mod common;

use common::*;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The three layers: the busybox root (gzip), a layer that adds
/// `/etc/motd` and `/data/old` and removes `/bin/ls` (a whiteout), one
/// that makes `/data` opaque and adds `/data/new`.
fn layers() -> Vec<Vec<u8>> {
    let gz = sh_bytes(
        "sh",
        &["-c", &format!("gzip -c < {}", busybox_tar().display())],
    );
    let mut two = TarBuilder::new();
    two.dir("etc", 0o755);
    two.file("etc/motd", 0o644, b"hello from a layer\n");
    two.dir("data", 0o755);
    two.file("data/old", 0o644, b"old\n");
    two.file("bin/.wh.ls", 0o644, b"");
    let mut three = TarBuilder::new();
    three.file("data/.wh..wh..opq", 0o644, b"");
    three.file("data/new", 0o644, b"new\n");
    vec![gz, two.finish(), three.finish()]
}

/// The image configuration (docker's `Config`).
fn config_json(layers: &[Vec<u8>]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin", "GREETING=hi"],
            "Cmd": ["sh", "-c", "echo $GREETING; cat /etc/motd; pwd; ls /data"],
            "WorkingDir": "/data",
            "ExposedPorts": {"80/tcp": {}},
            "Labels": {"from": "load"}
        },
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| format!("sha256:{}", hex(l))).collect::<Vec<_>>()}
    }))
    .unwrap()
}

/// Writes an OCI image layout of `layers` to `dir`; its index also names
/// an arm64 manifest (whose blob is not there: never read on amd64).
fn oci_layout(dir: &Path, layers: &[Vec<u8>]) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> String {
        let h = hex(bytes);
        fs::write(blobs.join(&h), bytes).unwrap();
        format!("sha256:{h}")
    };
    let config = config_json(layers);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put(&config), "size": config.len()},
        "layers": layers.iter().enumerate().map(|(i, l)| serde_json::json!({
            "mediaType": if i == 0 { "application/vnd.oci.image.layer.v1.tar+gzip" }
                         else { "application/vnd.oci.image.layer.v1.tar" },
            "digest": put(l), "size": l.len()})).collect::<Vec<_>>()
    }))
    .unwrap();
    let manifest_digest = put(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": format!("sha256:{}", "e".repeat(64)), "size": 1,
             "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": manifest_digest, "size": manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}}
        ]
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Writes an old `docker save` archive's tree to `dir`: `manifest.json`,
/// `HEX.json` (the config), `N/layer.tar`.
fn docker_tree(dir: &Path, layers: &[Vec<u8>]) {
    fs::create_dir_all(dir).unwrap();
    let config = config_json(layers);
    let config_name = format!("{}.json", hex(&config));
    fs::write(dir.join(&config_name), &config).unwrap();
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        fs::create_dir_all(dir.join(i.to_string())).unwrap();
        fs::write(dir.join(format!("{i}/layer.tar")), l).unwrap();
        paths.push(format!("{i}/layer.tar"));
    }
    let manifest = serde_json::json!([
        {"Config": config_name, "RepoTags": ["bb:latest"], "Layers": paths}
    ]);
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
}

/// `tar -cf FILE -C DIR .` (the test's own tar, an oracle of the format).
fn tar_of(dir: &Path, file: &Path) {
    sh(
        "tar",
        &[
            "-cf",
            file.to_str().unwrap(),
            "-C",
            dir.to_str().unwrap(),
            ".",
        ],
    );
}

/// What a container of `image` shows: its default command's output, and
/// whether `/bin/ls` is there.
fn check_image(store: &TestStore, image: &str) {
    let out = store.run_rm(image, &[]).ok();
    assert_eq!(out, "hi\nhello from a layer\n/data\nnew\n", "{image}");
    let ls = store
        .run_rm(image, &["sh", "-c", "test -e /bin/ls || echo gone"])
        .ok();
    assert_eq!(ls, "gone\n", "{image}");
    let images = store.images_json();
    let me = images.iter().find(|i| i["name"] == image).unwrap();
    assert_eq!(me["config"]["labels"]["from"], "load", "{me}");
    assert_eq!(
        me["config"]["exposed_ports"],
        serde_json::json!(["80/tcp"]),
        "{me}"
    );
}

#[test]
fn oci_layouts_and_docker_archives_load_with_their_layers_and_config() {
    let store = TestStore::new();
    let layers = layers();
    let scratch: PathBuf = store.scratch().to_path_buf();
    let oci = scratch.join("oci");
    oci_layout(&oci, &layers);
    let oci_tar = scratch.join("oci.tar");
    tar_of(&oci, &oci_tar);
    let docker = scratch.join("docker");
    docker_tree(&docker, &layers);
    let docker_tar = scratch.join("docker.tar");
    tar_of(&docker, &docker_tar);

    store
        .tupper(&["load", "from-dir", oci.to_str().unwrap()])
        .ok();
    check_image(&store, "from-dir");
    store
        .tupper(&["load", "from-tar", oci_tar.to_str().unwrap()])
        .ok();
    check_image(&store, "from-tar");
    let bytes = fs::read(&docker_tar).unwrap();
    store
        .tupper_stdin(&["load", "from-stdin", "-"], &bytes)
        .ok();
    check_image(&store, "from-stdin");
    // -c over the archive's configuration; --force to replace.
    let e = store
        .tupper(&["load", "from-dir", docker_tar.to_str().unwrap()])
        .fails(125);
    assert!(e.contains("already exists"), "{e}");
    store
        .tupper(&[
            "load",
            "--force",
            "-c",
            "CMD echo changed",
            "from-dir",
            docker_tar.to_str().unwrap(),
        ])
        .ok();
    let out = store.run_rm("from-dir", &[]).ok();
    assert_eq!(out, "changed\n");
    // In-process, as every step of tupper: no gzip, no tar.
    let log = scratch.join("strace.log");
    let mut c = std::process::Command::new("strace");
    c.args(["-f", "-e", "trace=execve,execveat", "-o"])
        .arg(&log)
        .args([TUPPER, "--root", store.root_str(), "load", "traced"])
        .arg(&oci_tar);
    run_cmd(c, None, DEFAULT_TIMEOUT).ok();
    let text = fs::read_to_string(&log).unwrap();
    let execs: Vec<String> = successful_execves(&text)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(execs, [TUPPER], "strace log:\n{text}");
    check_image(&store, "traced");
    for image in ["from-dir", "from-tar", "from-stdin", "traced"] {
        store.tupper(&["rmi", image]).ok();
    }
    store.assert_no_leftovers();
}

#[test]
fn a_tampered_or_foreign_archive_is_refused_and_leaves_nothing() {
    let store = TestStore::new();
    let layers = layers();
    let scratch: PathBuf = store.scratch().to_path_buf();
    store.tupper(&["images"]).ok(); // the store's layout, made on first use
    let before = store.state();

    // A layer changed after its digest was taken: found once it is read,
    // the half-made image goes.
    let oci = scratch.join("oci");
    oci_layout(&oci, &layers);
    let blob = oci.join("blobs/sha256").join(hex(&layers[1]));
    let good = layers[1].clone();
    let mut bad = good.clone();
    let at = bad.windows(5).position(|w| w == b"hello").unwrap();
    bad[at] = b'j';
    fs::write(&blob, &bad).unwrap();
    let e = store
        .tupper(&["load", "x", oci.to_str().unwrap()])
        .fails(125);
    assert!(e.contains("does not match its digest"), "{e}");
    before.assert_same(&store.state(), "tampered layer");
    // A cut one fails as it is read, and names its layer.
    fs::write(&blob, &good[..700]).unwrap();
    let e = store
        .tupper(&["load", "x", oci.to_str().unwrap()])
        .fails(125);
    assert!(e.contains("layer 2 of 3"), "{e}");
    before.assert_same(&store.state(), "cut layer");
    fs::write(&blob, &good).unwrap();
    assert!(
        store
            .all_subvolumes()
            .iter()
            .all(|s| !s.contains(".import")),
        "{:?}",
        store.all_subvolumes()
    );

    // A root filesystem's tar is not an image archive.
    let e = store
        .tupper(&["load", "x", busybox_tar().to_str().unwrap()])
        .fails(125);
    assert!(
        e.contains("not an image archive") && e.contains("import"),
        "{e}"
    );

    // An image for another CPU.
    let arm = scratch.join("arm");
    oci_layout(&arm, &layers);
    let index_path = arm.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    index["manifests"].as_array_mut().unwrap().remove(1);
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let e = store
        .tupper(&["load", "x", arm.to_str().unwrap()])
        .fails(125);
    assert!(
        e.contains("no image for linux/amd64") && e.contains("linux/arm64"),
        "{e}"
    );

    // A missing blob, and a bad name.
    fs::remove_file(oci.join("blobs/sha256").join(hex(&layers[2]))).unwrap();
    let e = store
        .tupper(&["load", "x", oci.to_str().unwrap()])
        .fails(125);
    assert!(e.contains("the archive has no"), "{e}");
    let e = store
        .tupper(&["load", ".x", oci.to_str().unwrap()])
        .fails(125);
    assert!(e.contains("image name"), "{e}");
    before.assert_same(&store.state(), "refused archives");
}

/// `save` (docker's) writes what `load` reads back: the image's files and
/// configuration, as one layer of an OCI layout with docker's
/// `manifest.json`; the blobs are named by their digests (`sha256sum`,
/// the oracle), to a file (`-o`) or stdout.
#[test]
fn save_writes_an_archive_that_load_reads_back() {
    let store = TestStore::new();
    let scratch: PathBuf = store.scratch().to_path_buf();
    let tar = busybox_tar().to_str().unwrap().to_string();
    store
        .tupper(&[
            "import",
            "-c",
            r#"CMD ["sh", "-c", "echo $GREETING; cat /etc/motd"]"#,
            "-c",
            "ENV GREETING=saved",
            "-c",
            "STOPSIGNAL SIGQUIT",
            "-c",
            "EXPOSE 80",
            "bb",
            &tar,
        ])
        .ok();
    store
        .tupper(&[
            "run",
            "--name",
            "m",
            "--net",
            "none",
            "bb",
            "sh",
            "-c",
            "echo motd > /etc/motd",
        ])
        .ok();
    // commit takes the container's command as CMD (docker's): given back.
    store
        .tupper(&[
            "commit",
            "-c",
            r#"CMD ["sh", "-c", "echo $GREETING; cat /etc/motd"]"#,
            "m",
            "withmotd",
        ])
        .ok();
    let file = scratch.join("saved.tar");
    store
        .tupper(&["save", "-o", file.to_str().unwrap(), "withmotd"])
        .ok();

    let listing = sh("tar", &["-tf", file.to_str().unwrap()]);
    for entry in ["oci-layout", "index.json", "manifest.json"] {
        assert!(listing.lines().any(|l| l == entry), "{entry}: {listing}");
    }
    let dir = scratch.join("layout");
    fs::create_dir(&dir).unwrap();
    sh(
        "tar",
        &["-xf", file.to_str().unwrap(), "-C", dir.to_str().unwrap()],
    );
    let blobs: Vec<String> = list_dir(&dir.join("blobs/sha256"));
    assert_eq!(blobs.len(), 3, "{blobs:?}");
    for b in &blobs {
        let sum = sh(
            "sha256sum",
            &[dir.join("blobs/sha256").join(b).to_str().unwrap()],
        );
        assert_eq!(sum.split_whitespace().next(), Some(b.as_str()), "{sum}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["withmotd:latest"])
    );

    // Back, from the file, from its extracted layout, from stdout.
    let piped = scratch.join("piped.tar");
    let mut c = store.cmd();
    c.args(["save", "withmotd"])
        .stdout(fs::File::create(&piped).unwrap());
    assert!(c.status().unwrap().success());
    for (image, source) in [("back", &file), ("from-layout", &dir), ("piped", &piped)] {
        store
            .tupper(&["load", image, source.to_str().unwrap()])
            .ok();
        let out = store.run_rm(image, &[]).ok();
        assert_eq!(out, "saved\nmotd\n", "{image}");
    }
    let config_of = |name: &str| {
        store
            .images_json()
            .into_iter()
            .find(|i| i["name"] == name)
            .unwrap()["config"]
            .clone()
    };
    assert_eq!(config_of("back"), config_of("withmotd"));
    assert_eq!(config_of("back")["stop_signal"], 3);

    let nope = scratch.join("nope.tar");
    let e = store
        .tupper(&["save", "-o", nope.to_str().unwrap(), "nope"])
        .fails(125);
    assert!(e.contains("unknown image nope"), "{e}");
    let left: Vec<String> = list_dir(&scratch)
        .into_iter()
        .filter(|n| n.contains("nope"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    store.tupper(&["rm", "m"]).ok();
    for image in ["bb", "withmotd", "back", "from-layout", "piped"] {
        store.tupper(&["rmi", image]).ok();
    }
    store.assert_no_leftovers();
}

/// skopeo (containers/image, an independent implementation of both
/// formats; the oracle) reads what `save` writes, as an OCI archive and as
/// a docker archive, and `load` reads what skopeo writes in both.
#[test]
fn skopeo_reads_what_save_writes_and_load_reads_what_skopeo_writes() {
    let store = TestStore::new();
    let scratch: PathBuf = store.scratch().to_path_buf();
    let tar = busybox_tar().to_str().unwrap().to_string();
    store
        .tupper(&[
            "import",
            "-c",
            "CMD echo from skopeo",
            "-c",
            "ENV A=1",
            "bb",
            &tar,
        ])
        .ok();
    let saved = scratch.join("saved.tar");
    store
        .tupper(&["save", "-o", saved.to_str().unwrap(), "bb"])
        .ok();
    let saved = saved.to_str().unwrap();
    for transport in ["oci-archive", "docker-archive"] {
        let inspect: serde_json::Value = serde_json::from_str(&sh(
            "skopeo",
            &["inspect", "--config", &format!("{transport}:{saved}")],
        ))
        .unwrap();
        assert_eq!(inspect["architecture"], "amd64", "{transport}: {inspect}");
        assert_eq!(
            inspect["config"]["Cmd"],
            serde_json::json!(["/bin/sh", "-c", "echo from skopeo"]),
            "{transport}: {inspect}"
        );
        assert_eq!(
            inspect["config"]["Env"],
            serde_json::json!(["A=1"]),
            "{transport}"
        );
        assert_eq!(inspect["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    }
    let oci = scratch.join("sk-oci");
    let docker = scratch.join("sk-docker.tar");
    sh(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{saved}"),
            &format!("oci:{}:bb", oci.display()),
        ],
    );
    sh(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{saved}"),
            &format!("docker-archive:{}:bb:latest", docker.display()),
        ],
    );
    for (image, source) in [("sk-oci", &oci), ("sk-docker", &docker)] {
        store
            .tupper(&["load", image, source.to_str().unwrap()])
            .ok();
        let out = store
            .run_rm(image, &["sh", "-c", "echo $A; ls /bin/busybox"])
            .ok();
        assert_eq!(out, "1\n/bin/busybox\n", "{image}");
        let out = store.run_rm(image, &[]).ok();
        assert_eq!(out, "from skopeo\n", "{image}");
    }
    for image in ["bb", "sk-oci", "sk-docker"] {
        store.tupper(&["rmi", image]).ok();
    }
    store.assert_no_leftovers();
}
