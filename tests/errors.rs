//! Bad input: each is a clear one-line error on stderr (`tupper: ...`), exit 125
//! (127 for a missing command), and no change to the store: the same
//! subvolumes, files and records before and after (issue 2, "Must hold", the
//! bad-input bullet).

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A store with image `bb`, one exited container named `taken`, and whatever
/// state files a first `run --rm` creates; and its state.
fn prepared() -> (TestStore, StoreState) {
    let store = TestStore::new();
    store.import_busybox("bb");
    store.run_rm("bb", &["true"]).ok();
    store
        .tupper(&["run", "--net", "none", "--name", "taken", "bb", "true"])
        .ok();
    let state = store.state();
    (store, state)
}

/// Asserts a clean failure (exit `code`, one line) that left the store as it was.
#[track_caller]
fn rejected(store: &TestStore, before: &StoreState, out: &Out, code: i32, what: &str) -> String {
    let line = out.fails(code);
    before.assert_same(&store.state(), what);
    line
}

#[test]
fn unknown_image() {
    let (store, before) = prepared();
    let out = store.run_rm("nosuch", &["true"]);
    let line = rejected(&store, &before, &out, 125, "unknown image");
    assert!(line.contains("nosuch"), "{line}");
    let out = store.tupper(&["rmi", "nosuch"]);
    rejected(&store, &before, &out, 125, "rmi unknown image");
}

#[test]
fn existing_container_name() {
    let (store, before) = prepared();
    let out = store.tupper(&[
        "run", "--rm", "--net", "none", "--name", "taken", "bb", "true",
    ]);
    let line = rejected(&store, &before, &out, 125, "existing name");
    assert!(line.contains("taken"), "{line}");
    let out = store.tupper(&["run", "--net", "none", "--name", "taken", "bb", "true"]);
    rejected(&store, &before, &out, 125, "existing name without --rm");
}

#[test]
fn existing_image_name() {
    let (store, before) = prepared();
    let out = store.tupper(&["import", "bb", busybox_tar().to_str().unwrap()]);
    let line = rejected(&store, &before, &out, 125, "existing image");
    assert!(line.contains("bb"), "{line}");
}

const BAD_NAMES: &[&str] = &[
    "Bad", "-x", "a/b", "", ".", "..", ".hidden", "_x", "a b", "é", "a\nb",
];

#[test]
fn malformed_container_names() {
    let (store, before) = prepared();
    let long = "a".repeat(129);
    let mut names: Vec<&str> = BAD_NAMES.to_vec();
    names.push(&long);
    for name in names {
        let arg = format!("--name={name}");
        let out = store.tupper(&["run", "--rm", "--net", "none", &arg, "bb", "true"]);
        rejected(
            &store,
            &before,
            &out,
            125,
            &format!("container name {name:?}"),
        );
        let out = store.tupper(&["run", "--rm", "--net", "none", "--name", name, "bb", "true"]);
        rejected(
            &store,
            &before,
            &out,
            125,
            &format!("container name {name:?} (separate)"),
        );
    }
    // The limits themselves are fine: 128 bytes, and every allowed character.
    // (--hostname because such names are not valid hostnames: at most 64 bytes,
    // no '_'.)
    let ok = "a".repeat(128);
    for name in [ok.as_str(), "0a.b_c-d"] {
        store
            .tupper(&[
                "run",
                "--rm",
                "--net",
                "none",
                "--name",
                name,
                "--hostname",
                "h",
                "bb",
                "true",
            ])
            .ok();
    }
    before.assert_same(&store.state(), "valid names with --rm");
}

#[test]
fn malformed_image_names() {
    let (store, before) = prepared();
    let tar = busybox_tar().to_str().unwrap();
    let long = "a".repeat(129);
    let mut names: Vec<&str> = BAD_NAMES.to_vec();
    names.push(&long);
    for name in names {
        let out = store.tupper(&["import", name, tar]);
        rejected(&store, &before, &out, 125, &format!("image name {name:?}"));
        // run of a malformed image name must not touch anything either (a/b
        // must not reach images/a/b, .. must not reach the store root).
        let out = store.run_rm(name, &["true"]);
        assert_eq!(out.code, 125, "run {name:?}: {out:?}");
        before.assert_same(&store.state(), &format!("run image {name:?}"));
    }
    let ok = "b".repeat(128);
    store.tupper(&["import", &ok, tar]).ok();
    assert!(store.image_path(&ok).is_dir());
}

#[test]
fn root_that_is_not_btrfs() {
    let store = TestStore::new();
    let plain = store.scratch().join("plain");
    fs::create_dir(&plain).unwrap();
    let st = rustix::fs::statfs(&plain).unwrap();
    assert_ne!(st.f_type as i64, 0x9123683e, "the scratch dir is on btrfs");
    let tar = busybox_tar().to_str().unwrap();
    for args in [
        vec!["images"],
        vec!["import", "bb", tar],
        vec!["run", "--rm", "--net", "none", "bb", "true"],
        vec!["ps", "-a"],
    ] {
        let mut c = Command::new(TUPPER);
        c.arg("--root").arg(&plain).args(&args);
        let out = run_cmd(c, None, DEFAULT_TIMEOUT);
        let line = out.fails(125);
        assert!(
            line.contains("btrfs"),
            "{args:?}: the error does not say btrfs: {line}"
        );
        assert!(
            list_dir(&plain).is_empty(),
            "{args:?} wrote into a non-btrfs root"
        );
    }
    // TUPPER_ROOT is honoured the same way.
    let mut c = Command::new(TUPPER);
    c.env("TUPPER_ROOT", &plain).arg("images");
    run_cmd(c, None, DEFAULT_TIMEOUT).fails(125);
}

#[test]
fn root_that_does_not_exist() {
    let store = TestStore::new();
    let missing = store.scratch().join("missing");
    let tar = busybox_tar().to_str().unwrap();
    for args in [
        vec!["images"],
        vec!["import", "bb", tar],
        vec!["run", "--rm", "--net", "none", "bb", "true"],
    ] {
        let mut c = Command::new(TUPPER);
        c.arg("--root").arg(&missing).args(&args);
        let out = run_cmd(c, None, DEFAULT_TIMEOUT);
        let line = out.fails(125);
        assert!(
            line.contains("missing"),
            "{args:?}: the error does not name the root: {line}"
        );
        assert!(!missing.exists(), "{args:?} created the missing root");
    }
    // Also inside the test btrfs (where creating it would be possible).
    let inside = store.root().join("sub/dir");
    let mut c = Command::new(TUPPER);
    c.arg("--root").arg(&inside).arg("images");
    run_cmd(c, None, DEFAULT_TIMEOUT).fails(125);
    assert!(!store.root().join("sub").exists());
}

/// A small valid archive start: a directory and a file.
fn tar_prefix() -> TarBuilder {
    let mut t = TarBuilder::new();
    t.dir("etc", 0o755);
    t.file("etc/hello", 0o644, b"hello\n");
    t
}

/// Imports `data` from stdin as `evil` and asserts a clean rejection.
#[track_caller]
fn import_rejected(store: &TestStore, before: &StoreState, data: &[u8], what: &str) -> String {
    let out = store.tupper_stdin(&["import", "evil", "-"], data);
    let line = rejected(store, before, &out, 125, what);
    assert!(!store.image_path("evil").exists(), "{what}: image created");
    line
}

/// Asserts that nothing named `name` appeared anywhere near the store.
fn nothing_named(store: &TestStore, name: &str) {
    for dir in [
        store.scratch().to_path_buf(),
        store.root().to_path_buf(),
        store.root().join("tmp"),
        store.root().join("images"),
        store.root().join("containers"),
        store.root().join("state"),
    ] {
        assert!(
            !dir.join(name).exists(),
            "{} escaped into {}",
            name,
            dir.display()
        );
    }
}

#[test]
fn tar_with_dotdot_entries() {
    let (store, before) = prepared();
    for (i, path) in [
        "../escape-0",
        "etc/../../escape-1",
        "./../escape-2",
        "/../escape-3",
        "../../../escape-4",
        "etc/../../../../../escape-5",
    ]
    .iter()
    .enumerate()
    {
        let mut t = tar_prefix();
        t.file(path, 0o644, b"pwned\n");
        import_rejected(&store, &before, &t.finish(), path);
        nothing_named(&store, &format!("escape-{i}"));
    }
    // A directory and a symlink named with .. are refused too.
    let mut t = tar_prefix();
    t.dir("../escape-dir", 0o755);
    import_rejected(&store, &before, &t.finish(), "../ directory");
    nothing_named(&store, "escape-dir");
    let mut t = tar_prefix();
    t.symlink("../escape-link", "/etc");
    import_rejected(&store, &before, &t.finish(), "../ symlink");
    nothing_named(&store, "escape-link");
}

#[test]
fn tar_that_writes_through_a_symlink_pointing_outside() {
    let (store, before) = prepared();
    let outside = store.scratch().join("outside");
    fs::create_dir(&outside).unwrap();
    let target = outside.to_str().unwrap();
    // Absolute symlink to a host directory, then a file through it.
    let mut t = tar_prefix();
    t.symlink("link", target);
    t.file("link/pwned", 0o644, b"pwned\n");
    import_rejected(&store, &before, &t.finish(), "absolute symlink then write");
    // Relative symlink climbing out, then a file through it.
    let mut t = tar_prefix();
    t.symlink("up", "../../../../../../../../..");
    t.file(&format!("up{target}/pwned-rel"), 0o644, b"pwned\n");
    import_rejected(&store, &before, &t.finish(), "relative symlink then write");
    // A symlink to a directory of the store (the images), then a file through it.
    let mut t = tar_prefix();
    t.symlink("imgs", store.root().join("images/bb").to_str().unwrap());
    t.file("imgs/pwned-img", 0o644, b"pwned\n");
    import_rejected(
        &store,
        &before,
        &t.finish(),
        "symlink into the store then write",
    );
    // A directory entry and a symlink entry through the link, too.
    let mut t = tar_prefix();
    t.symlink("link", target);
    t.dir("link/pwned-dir", 0o755);
    import_rejected(&store, &before, &t.finish(), "symlink then mkdir");
    let mut t = tar_prefix();
    t.symlink("link", target);
    t.symlink("link/pwned-sym", "/");
    import_rejected(&store, &before, &t.finish(), "symlink then symlink");
    assert!(
        list_dir(&outside).is_empty(),
        "written outside: {:?}",
        list_dir(&outside)
    );
    assert!(!store.image_path("bb").join("pwned-img").exists());
}

#[test]
fn tar_with_a_hard_link_to_an_outside_path() {
    let (store, before) = prepared();
    let passwd_links = fs::metadata("/etc/passwd").unwrap();
    for (i, target) in [
        "/etc/passwd",
        "../../images/bb/etc/passwd",
        "../etc/hello",
        "nonexistent-in-archive",
    ]
    .iter()
    .enumerate()
    {
        let mut t = tar_prefix();
        t.hardlink(&format!("hl-{i}"), target);
        import_rejected(
            &store,
            &before,
            &t.finish(),
            &format!("hard link to {target}"),
        );
    }
    // Through a symlink of the archive.
    let mut t = tar_prefix();
    t.symlink("s", "/etc");
    t.hardlink("hl-sym", "s/passwd");
    import_rejected(&store, &before, &t.finish(), "hard link through a symlink");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata("/etc/passwd").unwrap().nlink(),
        passwd_links.nlink()
    );
    // A hard link to an earlier entry of the archive is fine.
    let mut t = tar_prefix();
    t.hardlink("etc/again", "etc/hello");
    store
        .tupper_stdin(&["import", "good", "-"], &t.finish())
        .ok();
    assert_eq!(
        fs::read(store.image_path("good").join("etc/again")).unwrap(),
        b"hello\n"
    );
}

#[test]
fn truncated_archives() {
    let (store, before) = prepared();
    let tar = fs::read(busybox_tar()).unwrap();
    // Inside /bin/busybox's data, and inside a header.
    let data_cut = 512 * 20 + 300_000;
    assert!(tar.len() > data_cut);
    import_rejected(
        &store,
        &before,
        &tar[..data_cut],
        "tar cut inside file data",
    );
    // Find the header of the last entry and cut into it.
    let mut cut = None;
    let mut a = tar::Archive::new(&tar[..]);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        cut = Some(e.raw_header_position() as usize + 100);
    }
    import_rejected(
        &store,
        &before,
        &tar[..cut.unwrap()],
        "tar cut inside a header",
    );
    let gz = gzip(&tar);
    import_rejected(&store, &before, &gz[..gz.len() / 2], "truncated gzip");
    let zs = zstd(&tar);
    import_rejected(&store, &before, &zs[..zs.len() / 2], "truncated zstd");
    // The same from a file rather than stdin.
    let p = store.scratch().join("cut.tar");
    fs::write(&p, &tar[..data_cut]).unwrap();
    let out = store.tupper(&["import", "evil", p.to_str().unwrap()]);
    rejected(&store, &before, &out, 125, "truncated tar file");
}

#[test]
fn corrupt_archives() {
    let (store, before) = prepared();
    let tar = fs::read(busybox_tar()).unwrap();
    let mut gz = gzip(&tar);
    let mid = gz.len() / 2;
    for b in &mut gz[mid..mid + 64] {
        *b ^= 0x5a;
    }
    import_rejected(&store, &before, &gz, "corrupt gzip");
    // Intact deflate stream, wrong CRC in the trailer.
    let mut gz = gzip(&tar);
    let n = gz.len();
    gz[n - 8] ^= 0xff;
    import_rejected(&store, &before, &gz, "gzip with a bad CRC");
    let mut zs = zstd(&tar);
    let mid = zs.len() / 2;
    for b in &mut zs[mid..mid + 64] {
        *b ^= 0x5a;
    }
    import_rejected(&store, &before, &zs, "corrupt zstd");
    // A tar header with a bad checksum.
    let mut bad = tar.clone();
    bad[0] ^= 0x01;
    import_rejected(&store, &before, &bad, "tar header checksum");
    // Not an archive at all.
    import_rejected(&store, &before, b"this is not an archive\n", "garbage");
    import_rejected(&store, &before, b"", "empty input");
}

#[test]
fn import_that_fills_the_store() {
    let store = TestStore::small();
    store.import_busybox("bb");
    store.sync();
    let before = store.state();
    let free_before = store.free_bytes();
    let size: u64 = 2 * SMALL_STORE_SIZE;
    let mut child = store
        .cmd()
        .args(["import", "big", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dog = Watchdog::new(child.id(), Duration::from_secs(120));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut t = TarBuilder::new();
        t.dir("data", 0o755);
        t.raw_header("data/big", b'0', 0o644, "", size);
        if stdin.write_all(t.bytes()).is_err() {
            return;
        }
        let mut noise = Noise::new(42);
        let mut buf = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            noise.fill(&mut buf[..n]);
            if stdin.write_all(&buf[..n]).is_err() {
                return; // tupper gave up: EPIPE
            }
            left -= n as u64;
        }
        let _ = stdin.write_all(&[0u8; 1024]);
    });
    let out = child.wait_with_output().unwrap();
    assert!(!dog.fired(), "import of a too-big archive hung");
    writer.join().unwrap();
    let out = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let line = out.fails(125);
    assert!(
        line.to_lowercase().contains("space"),
        "the error does not say the store is full: {line}"
    );
    assert!(!store.image_path("big").exists());
    store.sync();
    before.assert_same(&store.state(), "import that filled the store");
    let free_after = store.free_bytes();
    // The space comes back (allow some metadata slack: 8 MiB).
    assert!(
        free_after + (8 << 20) >= free_before,
        "space not given back: {free_before} free before, {free_after} after"
    );
    // And the store still works.
    store.run_rm("bb", &["true"]).ok();
}

/// An image whose `/etc` is a symlink: `run` will not write the container's
/// `/etc` files through it. Without a bridge the parent writes them after the
/// clone, while the child makes its mounts: the child is killed, and the run
/// fails as cleanly as before the clone.
#[test]
fn run_refuses_an_image_whose_etc_is_a_symlink() {
    let (store, _) = prepared();
    let mut t = TarBuilder::new();
    t.dir("tmp", 0o1777);
    t.symlink("etc", "/tmp");
    store
        .tupper_stdin(&["import", "etclink", "-"], &t.finish())
        .ok();
    let before = store.state();
    for net in ["none", "host"] {
        let out = store.tupper(&["run", "--rm", "--net", net, "etclink", "/bin/true"]);
        let line = rejected(&store, &before, &out, 125, net);
        assert!(line.contains("/etc") && line.contains("symlink"), "{line}");
    }
}

#[test]
fn missing_command() {
    let (store, before) = prepared();
    let out = store.run_rm("bb", &["nosuchcmd"]);
    let line = rejected(&store, &before, &out, 127, "missing command with --rm");
    assert!(line.contains("nosuchcmd"), "{line}");
    let out = store.run_rm("bb", &["/no/such/path"]);
    rejected(
        &store,
        &before,
        &out,
        127,
        "missing absolute command with --rm",
    );
    // Records of --rm containers are gone, and ps -a still shows just `taken`.
    let names: Vec<String> = store
        .ps_json(true)
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, vec!["taken"]);
}
