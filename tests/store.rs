//! The store: images are read-only subvolumes, containers writable snapshots of
//! them; import from tar (plain, gzip, zstd, stdin) and directories; images, rmi,
//! --force (issue 2, "The store" and the second "Must hold" bullet).

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::Duration;

/// The id of the container named `name` (from `ps -a --json`).
fn id_of(store: &TestStore, name: &str) -> String {
    let recs = store.ps_json(true);
    let r = recs
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no record named {name}: {recs:?}"));
    r["id"].as_str().expect("id").to_string()
}

#[test]
fn a_file_written_in_the_container_is_in_its_snapshot_not_the_image() {
    let store = store_with_busybox();
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "writer",
            "bb",
            "sh",
            "-c",
            "echo was here > /NICK_WAS_HERE && rm /etc/group",
        ])
        .ok();
    let id = id_of(&store, "writer");
    let snap = store.container_path(&id);
    assert_eq!(
        fs::read_to_string(snap.join("NICK_WAS_HERE")).unwrap(),
        "was here\n"
    );
    assert!(
        !snap.join("etc/group").exists(),
        "delete did not reach the snapshot"
    );
    let image = store.image_path("bb");
    assert!(
        !image.join("NICK_WAS_HERE").exists(),
        "the write reached the image"
    );
    assert!(
        image.join("etc/group").exists(),
        "the delete reached the image"
    );
    assert_eq!(
        store.subvolumes(),
        vec![format!("containers/{id}"), "images/bb".to_string()]
    );
    // A second container from the same image does not see the first one's write.
    let out = store.run_rm("bb", &["ls", "/NICK_WAS_HERE"]);
    assert_ne!(
        out.code, 0,
        "the second container sees the first one's file: {out:?}"
    );
}

#[test]
fn the_image_is_read_only_and_the_container_is_its_snapshot() {
    let store = store_with_busybox();
    let image = store.image_path("bb");
    let err = fs::write(image.join("tmp/x"), b"x").expect_err("wrote into the image");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    let err = fs::create_dir(image.join("newdir")).expect_err("mkdir in the image");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");

    store
        .tupper(&["run", "--net", "none", "--name", "snap", "bb", "true"])
        .ok();
    let id = id_of(&store, "snap");
    let (img_ro, img_uuid, _) = subvol_info(&image);
    let (ct_ro, _, ct_parent) = subvol_info(&store.container_path(&id));
    assert!(img_ro, "libbtrfsutil: the image is not read-only");
    assert!(!ct_ro, "libbtrfsutil: the container is read-only");
    assert_eq!(
        ct_parent,
        Some(img_uuid),
        "the container is not a snapshot of the image"
    );
    // A container can write to its own snapshot from the host too.
    fs::write(store.container_path(&id).join("tmp/x"), b"x").unwrap();
}

#[test]
fn images_lists_names_in_text_and_json() {
    let store = TestStore::new();
    assert!(store.images_json().is_empty());
    store.import_busybox("alpha");
    store.import_busybox("beta.2_x-y");
    let json = store.images_json();
    let mut names: Vec<&str> = json
        .iter()
        .map(|i| i["name"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(names, vec!["alpha", "beta.2_x-y"]);
    let text = store.tupper(&["images"]).ok();
    for n in ["alpha", "beta.2_x-y"] {
        assert!(
            text.lines().any(|l| l.split_whitespace().next() == Some(n)),
            "`tupper images` has no line for {n}:\n{text}"
        );
    }
    assert_eq!(store.image_names(), vec!["alpha", "beta.2_x-y"]);
    // -q: the names alone, for `rmi $(tupper images -q)`.
    assert_eq!(store.tupper(&["images", "-q"]).ok(), "alpha\nbeta.2_x-y\n");
    assert_eq!(
        store.tupper(&["images", "--quiet"]).ok(),
        "alpha\nbeta.2_x-y\n"
    );
}

#[test]
fn rmi_destroys_the_image_and_containers_keep_working() {
    let store = store_with_busybox();
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "old",
            "bb",
            "sh",
            "-c",
            "echo 1 > /mark",
        ])
        .ok();
    // A container that is running while its image goes away.
    let mut c = store.cmd();
    c.args([
        "run",
        "--net",
        "none",
        "--name",
        "live",
        "bb",
        "sh",
        "-c",
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; cat /bin/busybox > /copy && ls /etc/passwd",
    ]);
    let running = std::thread::spawn(move || run_cmd(c, None, DEFAULT_TIMEOUT));
    assert!(
        wait_for(Duration::from_secs(20), || store.container_ids().len() == 2),
        "the second container did not start"
    );
    store.tupper(&["rmi", "bb"]).ok();
    assert!(!store.image_path("bb").exists());
    assert!(!store.subvolumes().contains(&"images/bb".to_string()));
    assert!(store.images_json().is_empty());
    let live = id_of(&store, "live");
    fs::write(store.container_path(&live).join("tmp/go"), b"").unwrap();
    let out = running.join().unwrap();
    assert_eq!(out.stdout.trim(), "/etc/passwd", "{out:?}");
    assert_eq!(out.code, 0, "{out:?}");
    let old = id_of(&store, "old");
    assert_eq!(
        fs::read_to_string(store.container_path(&old).join("mark")).unwrap(),
        "1\n"
    );
    assert_eq!(
        fs::metadata(store.container_path(&live).join("copy"))
            .unwrap()
            .len(),
        fs::metadata("/bin/busybox").unwrap().len()
    );
    // rmi of a missing image fails cleanly.
    store.tupper(&["rmi", "bb"]).fails(125);
}

#[test]
fn import_gzip_zstd_and_stdin() {
    let store = TestStore::new();
    let tar = fs::read(busybox_tar()).unwrap();
    let dir = store.scratch();
    fs::write(dir.join("bb.tar.gz"), gzip(&tar)).unwrap();
    fs::write(dir.join("bb.tar.zst"), zstd(&tar)).unwrap();
    // Names without the usual suffix: the format is found by magic bytes.
    fs::write(dir.join("gz-no-suffix"), gzip(&tar)).unwrap();
    store
        .tupper(&["import", "gz", dir.join("bb.tar.gz").to_str().unwrap()])
        .ok();
    store
        .tupper(&["import", "zst", dir.join("bb.tar.zst").to_str().unwrap()])
        .ok();
    store
        .tupper(&[
            "import",
            "magic",
            dir.join("gz-no-suffix").to_str().unwrap(),
        ])
        .ok();
    store.tupper_stdin(&["import", "plainin", "-"], &tar).ok();
    store
        .tupper_stdin(&["import", "zstin", "-"], &zstd(&tar))
        .ok();
    for img in ["gz", "zst", "magic", "plainin", "zstin"] {
        let out = store.run_rm(img, &["cat", "/etc/group"]).ok();
        assert!(out.starts_with("root:x:0:"), "{img}: {out}");
        let bb = store.image_path(img).join("bin/busybox");
        assert_eq!(
            fs::read(&bb).unwrap(),
            fs::read("/bin/busybox").unwrap(),
            "{img}: busybox differs"
        );
    }
    assert_eq!(store.image_names().len(), 5);
    store.assert_no_leftovers();
}

#[test]
fn import_a_directory() {
    let store = TestStore::new();
    let src = store.scratch().join("rootfs");
    fs::create_dir(&src).unwrap();
    sh(
        "tar",
        &[
            "-xf",
            busybox_tar().to_str().unwrap(),
            "-C",
            src.to_str().unwrap(),
        ],
    );
    fs::create_dir_all(src.join("opt/app")).unwrap();
    fs::write(src.join("opt/app/data"), b"payload").unwrap();
    sh(
        "chmod",
        &["0640", src.join("opt/app/data").to_str().unwrap()],
    );
    sh(
        "chown",
        &["123:456", src.join("opt/app/data").to_str().unwrap()],
    );
    std::os::unix::fs::symlink("app/data", src.join("opt/link")).unwrap();
    fs::hard_link(src.join("opt/app/data"), src.join("opt/hard")).unwrap();
    sh("mkfifo", &[src.join("opt/fifo").to_str().unwrap()]);
    store
        .tupper(&["import", "fromdir", src.to_str().unwrap()])
        .ok();
    let img = store.image_path("fromdir");
    let md = fs::metadata(img.join("opt/app/data")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o640);
    assert_eq!((md.uid(), md.gid()), (123, 456));
    assert_eq!(fs::read(img.join("opt/app/data")).unwrap(), b"payload");
    assert_eq!(
        fs::read_link(img.join("opt/link")).unwrap().to_str(),
        Some("app/data")
    );
    assert_eq!(
        fs::metadata(img.join("opt/hard")).unwrap().ino(),
        md.ino(),
        "hard link lost"
    );
    assert!(fs::symlink_metadata(img.join("opt/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::metadata(img.join("tmp")).unwrap().mode() & 0o7777,
        0o1777,
        "sticky /tmp lost"
    );
    let out = store.run_rm("fromdir", &["cat", "/opt/link"]).ok();
    assert_eq!(out, "payload");
    // The source directory is untouched.
    assert_eq!(fs::read(src.join("opt/app/data")).unwrap(), b"payload");
}

#[test]
fn import_of_a_directory_that_contains_the_store() {
    // The image being filled (images/.import-ID) is inside the source: it is
    // skipped instead of being copied into itself until ENAMETOOLONG.
    let store = TestStore::new();
    fs::write(store.root().join("marker"), b"m").unwrap();
    store
        .tupper(&["import", "selfcopy", store.root().to_str().unwrap()])
        .ok();
    let img = store.image_path("selfcopy");
    assert_eq!(fs::read(img.join("marker")).unwrap(), b"m");
    let inside: Vec<_> = fs::read_dir(img.join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(inside.is_empty(), "the import copied itself: {inside:?}");
}

#[test]
fn import_keeps_metadata() {
    let store = TestStore::new();
    let mut t = TarBuilder::new();
    t.dir("bin", 0o755);
    t.file("bin/busybox", 0o755, &fs::read("/bin/busybox").unwrap());
    t.symlink("bin/sh", "busybox");
    let m = Meta {
        uid: 1000,
        gid: 2000,
        mtime: 1_000_000_000,
        ..META
    };
    t.entry_meta("/owned", b'0', 0o640, "", b"owned", m);
    t.entry_meta("setuid", b'0', 0o4755, "", b"s", META);
    t.entry_meta("setgid-dir/", b'5', 0o2775, "", b"", META);
    t.hardlink("owned-link", "owned");
    t.entry_meta(
        "dev-null",
        b'3',
        0o666,
        "",
        b"",
        Meta {
            major: 1,
            minor: 3,
            ..META
        },
    );
    t.entry_meta(
        "blk",
        b'4',
        0o600,
        "",
        b"",
        Meta {
            major: 7,
            minor: 200,
            ..META
        },
    );
    t.entry_meta("fifo", b'6', 0o644, "", b"", META);
    // cap_net_bind_service (permitted, effective), VFS_CAP_REVISION_2.
    let cap: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    t.pax(&[("SCHILY.xattr.security.capability", &cap)]);
    t.file("capped", 0o755, b"#!/bin/sh\n");
    // Long names: a GNU long-name directory, then a PAX path inside it.
    let long_dir = format!("longdir-{}", "x".repeat(120));
    t.dir(&long_dir, 0o755);
    let long_file = format!("{long_dir}/file");
    t.pax(&[("path", long_file.as_bytes())]);
    t.file("ignored-name", 0o644, b"long");
    let data = t.finish();
    store.tupper_stdin(&["import", "meta", "-"], &data).ok();
    let img = store.image_path("meta");
    let md = fs::symlink_metadata(img.join("owned")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (1000, 2000, 0o640),
        "leading / kept?"
    );
    assert_eq!(md.mtime(), 1_000_000_000, "mtime lost");
    assert_eq!(md.nlink(), 2);
    assert_eq!(
        fs::metadata(img.join("owned-link")).unwrap().ino(),
        md.ino()
    );
    assert_eq!(
        fs::metadata(img.join("setuid")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        fs::metadata(img.join("setgid-dir")).unwrap().mode() & 0o7777,
        0o2775
    );
    let dn = fs::symlink_metadata(img.join("dev-null")).unwrap();
    assert!(dn.file_type().is_char_device());
    assert_eq!(dn.rdev(), libc::makedev(1, 3));
    let blk = fs::symlink_metadata(img.join("blk")).unwrap();
    assert!(blk.file_type().is_block_device());
    assert_eq!(blk.rdev(), libc::makedev(7, 200));
    assert!(fs::symlink_metadata(img.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let mut buf = [0u8; 64];
    let n = rustix::fs::getxattr(img.join("capped"), "security.capability", &mut buf[..])
        .expect("security.capability lost");
    assert_eq!(&buf[..n], &cap);
    assert_eq!(
        fs::read(img.join(&long_file)).unwrap(),
        b"long",
        "PAX path lost"
    );
    assert!(!img.join("ignored-name").exists(), "PAX path ignored");
}

#[test]
fn force_replaces_an_image() {
    let store = store_with_busybox();
    let mut t = TarBuilder::new();
    t.dir("bin", 0o755);
    t.file("bin/busybox", 0o755, &fs::read("/bin/busybox").unwrap());
    t.symlink("bin/cat", "busybox");
    t.file("VERSION", 0o644, b"2\n");
    let v2 = t.finish();
    let before = store.state();
    store.tupper_stdin(&["import", "bb", "-"], &v2).fails(125);
    before.assert_same(&store.state(), "import over an existing name");
    store
        .tupper_stdin(&["import", "--force", "bb", "-"], &v2)
        .ok();
    let img = store.image_path("bb");
    assert_eq!(fs::read_to_string(img.join("VERSION")).unwrap(), "2\n");
    assert!(
        !img.join("etc/passwd").exists(),
        "--force merged instead of replacing"
    );
    assert!(subvol_info(&img).0, "the replaced image is not read-only");
    assert_eq!(store.run_rm("bb", &["cat", "/VERSION"]).ok(), "2\n");
    assert_eq!(store.subvolumes(), vec!["images/bb"]);
    store.assert_no_leftovers();
}

/// A container may make btrfs subvolumes in its snapshot (no capability is
/// needed for that); the kernel refuses to destroy a subvolume that holds
/// others, so `rm` and the trash must destroy the nested ones first. Here
/// btrfs-progs on the host makes them, as a container's own tool would.
#[test]
fn subvolumes_made_inside_a_container_do_not_stop_its_removal() {
    let store = store_with_busybox();
    let nest = |snap: &std::path::Path| {
        for sub in ["root/sv", "root/sv/inner", "tmp/other"] {
            sh(
                "btrfs",
                &["subvolume", "create", snap.join(sub).to_str().unwrap()],
            );
        }
    };
    // Without --rm: `rm` destroys them.
    store
        .tupper(&["run", "--net", "none", "--name", "nest", "bb", "true"])
        .ok();
    nest(&store.container_path(&id_of(&store, "nest")));
    store.tupper(&["rm", "nest"]).ok();
    assert!(
        store.container_ids().is_empty(),
        "{:?}",
        store.container_ids()
    );

    // With --rm: made while the command runs; the trash is emptied, of this
    // container and of the ones removed after it.
    let mut child = store
        .cmd()
        .args(["run", "--rm", "--net", "none", "--name", "nest2", "bb"])
        .args(["sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dog = Watchdog::new(child.id(), Duration::from_secs(60));
    store.wait_running("nest2");
    let snap = store.container_path(&id_of(&store, "nest2"));
    nest(&snap);
    fs::write(snap.join("go"), b"").unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!dog.fired(), "tupper hung");
    for _ in 0..3 {
        store.run_rm("bb", &["true"]).ok();
    }
    store.settle_pool();
    let trash = list_dir(&store.root().join("trash"));
    assert!(trash.is_empty(), "left in the trash: {trash:?}");
    store.assert_no_leftovers();
}

/// An import killed after taking its lock (`tmp/import-ID.lock`) but before
/// making its subvolume leaves only the lock file: the next import removes
/// it once it is a minute old (a younger one may be about to be locked).
#[test]
fn a_lock_left_by_a_killed_import_is_removed_by_the_next_one() {
    let store = TestStore::new();
    let tmp = store.root().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let old = tmp.join("import-0123456789ab.lock");
    let young = tmp.join("import-ba9876543210.lock");
    fs::write(&old, "").unwrap();
    fs::write(&young, "").unwrap();
    let two_minutes_ago = std::time::SystemTime::now() - Duration::from_secs(120);
    fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_minutes_ago)
        .unwrap();
    store.import_busybox("bb");
    assert!(!old.exists(), "the stale import lock is still there");
    assert!(young.exists(), "a young import lock was removed");
    fs::remove_file(&young).unwrap();
    store.assert_no_leftovers();
}

/// `btrfs qgroup show -re --raw` (the oracle): the `Max exclusive` column
/// of the qgroup of the subvolume at `path`, `None` when quotas are off.
fn max_exclusive(store: &TestStore, path: &std::path::Path) -> Option<String> {
    let id = subvolume_id(path);
    let rows = qgroups(store)?;
    let row = rows
        .iter()
        .find(|r| r[0] == format!("0/{id}"))
        .unwrap_or_else(|| panic!("no qgroup 0/{id} in {rows:?}"));
    Some(row[4].clone())
}

/// `btrfs subvolume show`'s ID of the subvolume at `path`.
fn subvolume_id(path: &std::path::Path) -> String {
    let show = sh("btrfs", &["subvolume", "show", path.to_str().unwrap()]);
    show.lines()
        .find_map(|l| l.trim().strip_prefix("Subvolume ID:"))
        .unwrap_or_else(|| panic!("no subvolume ID in {show}"))
        .trim()
        .to_string()
}

/// The rows of `btrfs qgroup show -re --raw` (their columns), `None` when
/// quotas are off.
fn qgroups(store: &TestStore) -> Option<Vec<Vec<String>>> {
    let out = std::process::Command::new("btrfs")
        .args(["qgroup", "show", "-re", "--raw", store.root_str()])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.lines()
            .filter(|l| l.starts_with("0/"))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect(),
    )
}

/// `--storage-opt size=` (docker's): a qgroup limit on the container's
/// subvolume, of what it writes (with btrfs simple quotas, which the first
/// such container turns on); what it shares with its image does not count,
/// nor do other containers' writes.
#[test]
fn storage_opt_size_limits_what_the_container_writes() {
    let store = store_with_busybox();
    let dd = "dd if=/dev/zero of=/$1 bs=1M count=$2 conv=fsync 2>&1 && echo wrote $1";
    let before = store.state();
    for bad in ["size=lots", "quota=1g"] {
        let e = store
            .tupper(&[
                "run",
                "--rm",
                "--net",
                "none",
                "--storage-opt",
                bad,
                "bb",
                "true",
            ])
            .fails(125);
        assert!(e.contains("--storage-opt"), "{e}");
    }
    before.assert_same(&store.state(), "refused --storage-opt");
    assert_eq!(max_exclusive(&store, &store.image_path("bb")), None);

    // From the pool and, with TUPPER_POOL=0, by a snapshot of its own.
    for pool in ["4", "0"] {
        let mut c = store.cmd();
        c.env("TUPPER_POOL", pool).args([
            "run",
            "--rm",
            "--net",
            "none",
            "--storage-opt",
            "size=8m",
            "bb",
            "sh",
            "-c",
            &format!("set -- a 4; {dd}; set -- b 8; {dd}; echo end"),
        ]);
        let out = run_cmd(c, None, DEFAULT_TIMEOUT).ok();
        assert!(out.contains("wrote a"), "pool {pool}: {out}");
        assert!(!out.contains("wrote b"), "pool {pool}: {out}");
        assert!(
            out.contains("Disk quota exceeded") && out.contains("end"),
            "pool {pool}: {out}"
        );
    }

    // Quotas are on now: the limit is the container's alone.
    let script = format!("set -- d 16; {dd}; echo end");
    let id = store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--name",
            "q",
            "--storage-opt",
            "size=8m",
            "bb",
            "sh",
            "-c",
            &script,
        ])
        .ok()
        .trim()
        .to_string();
    let limit = (8u64 << 20).to_string();
    assert_eq!(
        max_exclusive(&store, &store.container_path(&id)).as_deref(),
        Some(&*limit)
    );
    assert_eq!(store.inspect("q")["storage_size"], 8u64 << 20);
    assert_eq!(
        max_exclusive(&store, &store.image_path("bb")).as_deref(),
        Some("none")
    );
    let out = store
        .run_rm("bb", &["sh", "-c", &format!("set -- c 16; {dd}")])
        .ok();
    assert!(out.contains("wrote c"), "{out}");
    let out = store.tupper(&["start", "-a", "q"]).ok();
    let qid = format!("0/{}", subvolume_id(&store.container_path(&id)));
    assert!(!out.contains("wrote d"), "{out}");
    assert!(
        out.contains("Disk quota exceeded") && out.contains("end"),
        "{out}"
    );
    // inspect shows what the limit counts (btrfs-progs agrees, after a
    // commit): the 8 MiB it was let write, give or take the metadata.
    sh("btrfs", &["filesystem", "sync", store.root_str()]);
    let used = store.inspect("q")["storage_used"].as_u64().unwrap();
    assert!((7 << 20..=9 << 20).contains(&used), "{used}");
    let row = qgroups(&store)
        .unwrap()
        .into_iter()
        .find(|r| r[0] == qid)
        .unwrap();
    assert_eq!(row[2], used.to_string(), "{row:?}");
    store
        .tupper(&["create", "--net", "none", "--name", "u", "bb"])
        .ok();
    assert!(store.inspect("u")["storage_used"].is_null());
    store.tupper(&["rm", "u"]).ok();
    store.tupper(&["rm", "q"]).ok();
    store.assert_no_leftovers();
}

/// `tag` (docker's): another name for an image, a read-only snapshot of it
/// (btrfsutil, the oracle: its parent is the image) with its
/// configuration; it outlives the original, and replaces an image of that
/// name as docker moves a tag. Unknown images and bad names change nothing.
#[test]
fn tag_gives_an_image_another_name() {
    let store = TestStore::new();
    let tar = busybox_tar().to_str().unwrap().to_string();
    store
        .tupper(&["import", "-c", "CMD echo tagged", "bb", &tar])
        .ok();
    store.import_busybox("other");
    store.tupper(&["tag", "bb", "bb2"]).ok();
    let (bb_ro, bb_uuid, _) = subvol_info(&store.image_path("bb"));
    let (bb2_ro, _, bb2_parent) = subvol_info(&store.image_path("bb2"));
    assert!(bb_ro && bb2_ro);
    assert_eq!(bb2_parent, Some(bb_uuid));
    store.tupper(&["rmi", "bb"]).ok();
    let out = store.run_rm("bb2", &[]).ok();
    assert_eq!(out, "tagged\n");
    // Over an existing image: replaced.
    store.tupper(&["tag", "bb2", "other"]).ok();
    let out = store.run_rm("other", &[]).ok();
    assert_eq!(out, "tagged\n");
    let before = store.state();
    for (args, error) in [
        (&["tag", "nope", "x"][..], "unknown image nope"),
        (&["tag", "bb2", "Bad/Name"], "image name"),
        (&["tag", "bb2"], "two arguments"),
    ] {
        let e = store.tupper(args).fails(125);
        assert!(e.contains(error), "{args:?}: {e}");
    }
    before.assert_same(&store.state(), "refused tags");
    for image in ["bb2", "other"] {
        store.tupper(&["rmi", image]).ok();
    }
    store.assert_no_leftovers();
}

/// Makes subvolume `/sub` in the container with `BTRFS_IOC_SUBVOL_CREATE_V2`
/// (any user may, in a directory it can write): `created`, or the error.
const MKSUBVOL: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
int main(void) {
    struct btrfs_ioctl_vol_args_v2 a;
    memset(&a, 0, sizeof a);
    strcpy(a.name, "sub");
    int fd = open("/", O_RDONLY | O_DIRECTORY);
    if (ioctl(fd, BTRFS_IOC_SUBVOL_CREATE_V2, &a) == 0) {
        puts("created");
        return 0;
    }
    puts(strerror(errno));
    return 1;
}
"#;

/// A container with `--storage-opt size` cannot make a btrfs subvolume
/// (its filter refuses it, and snapshots: what it wrote in one would be
/// counted in that one's own qgroup, not in its limit), nor can its
/// `exec`s; one without a limit can, as docker's filter lets it.
#[test]
fn a_limited_container_cannot_escape_its_limit_by_a_subvolume() {
    let store = TestStore::new();
    let mut t = TarBuilder::with_busybox(&["sh", "sleep"]);
    t.file(
        "mksubvol",
        0o755,
        &store.static_program("mksubvol", MKSUBVOL),
    );
    store.tupper_stdin(&["import", "p", "-"], &t.finish()).ok();
    let limited = [
        "run",
        "--rm",
        "--net",
        "none",
        "--storage-opt",
        "size=64m",
        "p",
        "/mksubvol",
    ];
    let out = store.tupper(&limited);
    assert_eq!(out.code(1), "Operation not permitted\n");
    assert_eq!(store.run_rm("p", &["/mksubvol"]).ok(), "created\n");
    store
        .tupper(&[
            "run",
            "-d",
            "--net",
            "none",
            "--name",
            "l",
            "--storage-opt",
            "size=64m",
            "p",
            "sleep",
            "60",
        ])
        .ok();
    let out = store.tupper(&["exec", "l", "/mksubvol"]);
    assert_eq!(out.code(1), "Operation not permitted\n");
    store.tupper(&["rm", "-f", "l"]).ok();
    store.assert_no_leftovers();
}
