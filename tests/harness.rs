//! Tests of the test harness itself (tests/common): the loop-mounted btrfs, the
//! busybox image, the raw tar writer and the oracles. They need root but not tupper.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn store_is_a_fresh_btrfs_and_goes_away_on_drop() {
    let store = TestStore::new();
    let root = store.root().to_path_buf();
    let dev = store.loopdev().to_string();
    let st = rustix::fs::statfs(&root).unwrap();
    assert_eq!(st.f_type as i64, 0x9123683e, "store root is not btrfs");
    assert_eq!(mounts_under(&root), vec![root.clone()]);
    assert!(store.subvolumes().is_empty(), "fresh btrfs has subvolumes");
    assert!(list_dir(&root).is_empty(), "fresh btrfs is not empty");
    assert!(store.free_bytes() > 800 << 20);
    let backing = sh("losetup", &["-n", "-O", "BACK-FILE", &dev]);
    assert!(backing.contains("tupper-test-"), "loop device: {backing}");
    let scratch = store.scratch().to_path_buf();
    drop(store);
    assert!(mounts_under(&root).is_empty(), "still mounted");
    assert!(!scratch.exists(), "temp dir left");
    // A detached loop device can linger for a moment while its last user lets go.
    let gone = || {
        !sh("losetup", &["-a"])
            .lines()
            .any(|l| l.contains(scratch.to_str().unwrap()))
    };
    let start = std::time::Instant::now();
    while !gone() && start.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(gone(), "loop device left: {}", sh("losetup", &["-a"]));
}

#[test]
fn store_is_cleaned_up_after_a_panic() {
    let mut seen = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let store = TestStore::new();
        seen = Some(store.scratch().to_path_buf());
        // A subvolume and a busy-looking tree inside must not stop the cleanup.
        sh(
            "btrfs",
            &[
                "subvolume",
                "create",
                store.root().join("sv").to_str().unwrap(),
            ],
        );
        panic!("test panic");
    }));
    assert!(r.is_err());
    let dir = seen.unwrap();
    assert!(!dir.exists(), "{} left after a panic", dir.display());
    assert!(mounts_under(&dir).is_empty());
}

#[test]
fn small_store_is_small() {
    let store = TestStore::small();
    let st = rustix::fs::statvfs(store.root()).unwrap();
    let total = st.f_blocks * st.f_frsize;
    assert!(total <= SMALL_STORE_SIZE, "small store is {total} bytes");
    assert!(
        store.free_bytes() > 64 << 20,
        "small store has too little room"
    );
}

#[test]
fn busybox_tar_is_a_minimal_root() {
    let path = busybox_tar();
    assert!(path.starts_with(test_images_dir()));
    let mut a = tar::Archive::new(fs::File::open(path).unwrap());
    let mut names = std::collections::BTreeMap::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let name = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        names.insert(
            name,
            (h.entry_type(), h.mode().unwrap(), link, h.size().unwrap()),
        );
    }
    let bb = &names["bin/busybox"];
    assert!(bb.0.is_file() && bb.1 & 0o111 != 0 && bb.3 > 100_000);
    for applet in [
        "bin/sh",
        "bin/ps",
        "sbin/ip",
        "bin/hostname",
        "bin/true",
        "bin/ls",
    ] {
        let e = names
            .get(applet)
            .unwrap_or_else(|| panic!("{applet} missing"));
        assert!(e.0.is_symlink(), "{applet} is not a symlink");
        assert_eq!(e.2.as_deref(), Some("/bin/busybox"));
    }
    assert_eq!(names["tmp"].1, 0o1777);
    assert_eq!(names["root"].1, 0o700);
    assert!(names.contains_key("etc/passwd") && names.contains_key("etc/group"));
    for absent in ["proc", "sys", "dev"] {
        assert!(
            !names.contains_key(absent),
            "/{absent} must not be in the image"
        );
    }
    // Built once: a second call returns the same file.
    assert_eq!(busybox_tar(), path);
}

#[test]
fn host_busybox_is_static() {
    // The image relies on it: there is no libc in the busybox root.
    let out = sh("readelf", &["-l", "/bin/busybox"]);
    assert!(!out.contains("INTERP"), "/bin/busybox is dynamic");
}

#[test]
fn tar_builder_writes_names_verbatim() {
    let mut t = TarBuilder::new();
    t.file("../evil", 0o644, b"x");
    t.symlink("link", "/etc");
    t.hardlink("hl", "/etc/passwd");
    t.file(&"d/".repeat(60), 0o644, b"long");
    let data = t.finish();
    assert_eq!(data.len() % 512, 0);
    // The tar crate's raw reader sees exactly what we wrote.
    let mut a = tar::Archive::new(&data[..]);
    let got: Vec<(String, Option<String>)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned()),
            )
        })
        .collect();
    assert_eq!(got[0].0, "../evil");
    assert_eq!(got[1], ("link".into(), Some("/etc".into())));
    assert_eq!(got[2], ("hl".into(), Some("/etc/passwd".into())));
    assert_eq!(got[3].0, "d/".repeat(60));
    // And GNU tar agrees the archive is well-formed.
    let dir = std::env::temp_dir().join(format!("tupper-harness-tar-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join("a.tar");
    fs::write(&p, &data).unwrap();
    let list = sh("tar", &["-tf", p.to_str().unwrap()]);
    fs::remove_dir_all(&dir).unwrap();
    assert!(list.lines().any(|l| l == "../evil"), "{list}");
}

#[test]
fn tar_builder_pax_and_metadata() {
    let mut t = TarBuilder::new();
    t.pax(&[
        ("SCHILY.xattr.user.k", b"v\x00w"),
        ("path", "p".repeat(150).as_bytes()),
    ]);
    t.entry_meta(
        "short",
        b'3',
        0o600,
        "",
        b"",
        Meta {
            uid: 7,
            gid: 8,
            major: 1,
            minor: 5,
            ..META
        },
    );
    let data = t.finish();
    let mut a = tar::Archive::new(&data[..]);
    let mut entries = a.entries().unwrap();
    let mut e = entries.next().unwrap().unwrap();
    let exts: Vec<(String, Vec<u8>)> = e
        .pax_extensions()
        .unwrap()
        .expect("no pax extensions")
        .map(|x| {
            let x = x.unwrap();
            (x.key().unwrap().to_string(), x.value_bytes().to_vec())
        })
        .collect();
    assert_eq!(
        exts[0],
        ("SCHILY.xattr.user.k".to_string(), b"v\x00w".to_vec())
    );
    assert_eq!(e.path().unwrap().to_str().unwrap(), "p".repeat(150));
    let h = e.header();
    assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (7, 8));
    assert_eq!(
        (h.device_major().unwrap(), h.device_minor().unwrap()),
        (Some(1), Some(5))
    );
    assert!(entries.next().is_none());
}

#[test]
fn compressors_round_trip() {
    let data = b"hello tupper".repeat(100);
    let gz = gzip(&data);
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back).unwrap();
    assert_eq!(back, data);
    let zs = zstd(&data);
    assert_eq!(&zs[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    assert_eq!(zstd::stream::decode_all(&zs[..]).unwrap(), data);
    let mut n = Noise::new(7);
    let mut buf = vec![0u8; 1 << 16];
    n.fill(&mut buf);
    assert!(gzip(&buf).len() > buf.len() * 99 / 100, "noise compresses");
}

#[test]
fn oracles_see_subvolumes_snapshots_and_changes() {
    let store = TestStore::new();
    let root = store.root();
    let before = store.state();
    let img = root.join("img");
    let snap = root.join("snap");
    sh("btrfs", &["subvolume", "create", img.to_str().unwrap()]);
    fs::write(img.join("f"), b"x").unwrap();
    sh(
        "btrfs",
        &[
            "subvolume",
            "snapshot",
            "-r",
            img.to_str().unwrap(),
            root.join("ro").to_str().unwrap(),
        ],
    );
    sh(
        "btrfs",
        &[
            "subvolume",
            "snapshot",
            root.join("ro").to_str().unwrap(),
            snap.to_str().unwrap(),
        ],
    );
    assert_eq!(store.subvolumes(), vec!["img", "ro", "snap"]);
    let (ro, ro_uuid, _) = subvol_info(&root.join("ro"));
    let (snap_ro, _, parent) = subvol_info(&snap);
    let (img_ro, img_uuid, img_parent) = subvol_info(&img);
    assert!(ro && !snap_ro && !img_ro);
    assert_eq!(parent, Some(ro_uuid.clone()));
    assert_eq!(img_parent, None);
    assert_ne!(img_uuid, ro_uuid);
    let after = store.state();
    let r = std::panic::catch_unwind(|| before.assert_same(&after, "oracle"));
    assert!(r.is_err(), "state() did not see the change");
    after.assert_same(&store.state(), "unchanged");
    // A content change in a small file outside images is seen too.
    fs::create_dir(root.join("state")).unwrap();
    fs::write(root.join("state/rec"), b"a").unwrap();
    let s1 = store.state();
    fs::write(root.join("state/rec"), b"b").unwrap();
    assert_ne!(s1, store.state());
}

#[test]
fn watchdog_kills_a_hung_command() {
    let r = std::panic::catch_unwind(|| {
        let mut c = Command::new("sleep");
        c.arg("30");
        run_cmd(c, None, Duration::from_millis(300))
    });
    assert!(r.is_err(), "watchdog did not fire");
    let mut c = Command::new("sh");
    c.args(["-c", "cat; echo err >&2; exit 4"]);
    let out = run_cmd(c, Some(b"in".to_vec()), Duration::from_secs(10));
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (4, "in", "err\n")
    );
}

#[test]
fn descendants_and_liveness() {
    let mut child = Command::new("sh")
        .args(["-c", "sleep 30 & wait"])
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    assert!(wait_for(Duration::from_secs(5), || descendants(pid).len() == 1));
    let d = descendants(pid);
    assert!(d[0].alive());
    kill(d[0].pid, 9);
    child.wait().unwrap();
    assert!(wait_for(Duration::from_secs(5), || !d[0].alive()));
}

#[test]
fn mount_table_unescaping() {
    assert_eq!(unescape_mount("/a\\040b"), "/a b");
    assert_eq!(unescape_mount("/plain"), "/plain");
    assert_eq!(unescape_mount("/x\\"), "/x\\");
    assert!(mounts_under(Path::new("/proc")).contains(&Path::new("/proc").to_path_buf()));
}

#[test]
fn leftover_check_sees_strays_and_foreign_spares() {
    let store = TestStore::new();
    let root = store.root();
    store.assert_no_leftovers();
    assert!(store.refillers().is_empty());
    // A spare snapshot keyed by no existing image is a leftover.
    fs::create_dir_all(root.join("pool/00000000000000000000000000000000")).unwrap();
    let spare = root.join("pool/00000000000000000000000000000000/0123456789ab");
    sh("btrfs", &["subvolume", "create", spare.to_str().unwrap()]);
    assert_eq!(store.pool_spares().len(), 1);
    assert!(
        store.subvolumes().is_empty(),
        "pool spares are not filtered"
    );
    let before = store.state();
    let r = std::panic::catch_unwind(|| store.assert_no_leftovers());
    assert!(r.is_err(), "a foreign spare was not reported");
    // ... but the pool is not part of the state compared around failed commands.
    fs::write(spare.join("x"), b"x").unwrap();
    before.assert_same(&store.state(), "pool change");
    sh("btrfs", &["subvolume", "delete", spare.to_str().unwrap()]);
    // A stray subvolume anywhere else is a leftover too.
    sh(
        "btrfs",
        &[
            "subvolume",
            "create",
            root.join("containers").to_str().unwrap(),
        ],
    );
    let r = std::panic::catch_unwind(|| store.assert_no_leftovers());
    assert!(r.is_err(), "a stray subvolume was not reported");
}
