//! `-v HOST:CTR[:ro]`, `--tmpfs CTR[:OPTIONS]` and `--read-only`, seen from
//! inside the container and from the host.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A host directory for a test's volumes, with `f` (`hello`) in it.
fn host_dir(store: &TestStore, name: &str) -> PathBuf {
    let dir = store.scratch().join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("f"), "hello\n").unwrap();
    dir
}

/// `tupper run --rm --net none OPTIONS... bb sh -c SCRIPT`.
fn run_with(store: &TestStore, options: &[&str], script: &str) -> Out {
    let mut args = vec!["run", "--rm", "--net", "none"];
    args.extend(options);
    args.extend(["bb", "sh", "-c", script]);
    store.tupper(&args)
}

/// The mount options (field 6 of `/proc/self/mountinfo`) of `path` in a
/// container, and its filesystem type.
fn mount_of(store: &TestStore, options: &[&str], path: &str) -> (String, String) {
    let out = run_with(store, options, "cat /proc/self/mountinfo").ok();
    let line = out
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(path))
        .unwrap_or_else(|| panic!("no mount on {path}:\n{out}"));
    let fields: Vec<&str> = line.split(' ').collect();
    let dash = fields.iter().position(|f| *f == "-").unwrap();
    (fields[5].to_string(), fields[dash + 1].to_string())
}

fn volume(src: &Path, dst: &str) -> String {
    format!("{}:{dst}", src.display())
}

#[test]
fn a_volume_shares_a_host_directory_both_ways() {
    let store = store_with_busybox();
    let dir = host_dir(&store, "data");
    let v = volume(&dir, "/data");
    let out = run_with(&store, &["-v", &v], "cat /data/f; echo made >/data/new").ok();
    assert_eq!(out, "hello\n");
    assert_eq!(fs::read_to_string(dir.join("new")).unwrap(), "made\n");
    // Device files of a volume do not open (nodev), writable or not.
    let (opts, _) = mount_of(&store, &["-v", &v], "/data");
    assert!(opts.split(',').any(|o| o == "rw"), "{opts}");
    assert!(opts.split(',').any(|o| o == "nodev"), "{opts}");
    store.assert_no_leftovers();
}

#[test]
fn a_read_only_volume_is_read_only_with_its_submounts() {
    let store = store_with_busybox();
    let dir = host_dir(&store, "ro");
    fs::create_dir(dir.join("sub")).unwrap();
    let v = format!("{}:ro", volume(&dir, "/data"));
    // A tmpfs under the source, in a mount namespace of the test's own, so
    // that `-v` brings a submount along (as `--rbind`).
    let script = format!(
        "mount -t tmpfs sub {sub} && exec {tupper} --root {root} run --rm --net none -v {v} bb sh -c \
         'cat /data/f; echo x >/data/g || echo refused; echo y >/data/sub/h || echo refused; \
          grep -c \" /data/sub ro,\" /proc/self/mountinfo'",
        sub = dir.join("sub").display(),
        tupper = TUPPER,
        root = store.root().display(),
    );
    let out = sh(
        "unshare",
        &["-m", "--propagation", "private", "sh", "-c", &script],
    );
    assert_eq!(out, "hello\nrefused\nrefused\n1\n", "{out}");
    assert!(!dir.join("g").exists());
    store.assert_no_leftovers();
}

#[test]
fn a_file_volume_and_missing_destinations() {
    let store = store_with_busybox();
    let dir = host_dir(&store, "files");
    let file = dir.join("f");
    // A file on a missing path: its directories and an empty file are made
    // in the container's snapshot, then the file is bound there.
    let v1 = volume(&file, "/etc/app/conf");
    let v2 = volume(&dir, "/srv/a/b");
    let out = run_with(
        &store,
        &["-v", &v1, "-v", &v2],
        "cat /etc/app/conf; ls /srv/a/b; echo more >>/etc/app/conf",
    )
    .ok();
    assert_eq!(out, "hello\nf\n");
    assert_eq!(fs::read_to_string(&file).unwrap(), "hello\nmore\n");
    // Nested: the inner one is mounted after the outer one, whatever the order given.
    let inner = host_dir(&store, "inner");
    fs::write(inner.join("f"), "inner\n").unwrap();
    let out = run_with(
        &store,
        &["-v", &volume(&inner, "/a/in"), "-v", &volume(&dir, "/a")],
        "cat /a/f /a/in/f",
    )
    .ok();
    assert_eq!(out, "hello\nmore\ninner\n");
    // The inner mount point was made in the outer volume, on the host.
    assert!(dir.join("in").is_dir());
    store.assert_no_leftovers();
}

#[test]
fn a_destination_through_a_symlink_of_the_image_stays_in_the_container() {
    let store = TestStore::new();
    let mut t = TarBuilder::with_busybox(&["sh", "cat", "ls", "test"]);
    t.dir("etc", 0o755);
    // Absolute and relative links to the host's /etc, were they resolved
    // before pivot_root in the host's view.
    t.symlink("abs", "/etc");
    t.symlink("rel", "../../../../../../etc");
    store.tupper_stdin(&["import", "bb", "-"], &t.finish()).ok();
    let dir = host_dir(&store, "data");
    let name = format!("tupper-test-{}", std::process::id());
    let out = run_with(
        &store,
        &[
            "-v",
            &volume(&dir, &format!("/abs/{name}")),
            "-v",
            &volume(&dir.join("f"), &format!("/rel/{name}.f")),
        ],
        &format!("cat /etc/{name}/f /etc/{name}.f"),
    )
    .ok();
    assert_eq!(out, "hello\nhello\n");
    assert!(
        !Path::new("/etc").join(&name).exists(),
        "made in the host's /etc"
    );
    assert!(!Path::new("/etc").join(format!("{name}.f")).exists());
    store.assert_no_leftovers();
}

#[test]
fn tmpfs_gets_dockers_flags_and_the_options_given() {
    let store = store_with_busybox();
    let (opts, fstype) = mount_of(&store, &["--tmpfs", "/run"], "/run");
    assert_eq!(fstype, "tmpfs");
    for flag in ["rw", "nosuid", "nodev", "noexec"] {
        assert!(opts.split(',').any(|o| o == flag), "{flag} in {opts}");
    }
    let out = run_with(
        &store,
        &["--tmpfs", "/scratch/t:size=4m,mode=0700,exec"],
        "stat -c '%a %U' /scratch/t; df -k /scratch/t | tail -1; \
         cp /bin/busybox /scratch/t/echo && /scratch/t/echo ran",
    )
    .ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "700 root");
    assert_eq!(lines[1].split_whitespace().nth(1), Some("4096"), "{out}");
    assert_eq!(lines[2], "ran");
    // Without exec, nothing runs from it.
    let out = run_with(
        &store,
        &["--tmpfs", "/t"],
        "cp /bin/busybox /t/true; /t/true; echo $?",
    )
    .ok();
    assert_eq!(out.trim(), "126");
    let out = run_with(&store, &["--tmpfs", "/t:ro"], "touch /t/x || echo refused").ok();
    assert_eq!(out, "refused\n");
    store.assert_no_leftovers();
}

/// `--shm-size` (docker's): the size of `/dev/shm`, 64 MiB without it (or
/// with 0); the record keeps it for a start again; a bad size is refused.
#[test]
fn shm_size_sizes_dev_shm() {
    let store = store_with_busybox();
    let size_of_shm = |flags: &[&str]| {
        let out = run_with(&store, flags, "df -k /dev/shm | tail -1").ok();
        out.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(size_of_shm(&[]), "65536");
    assert_eq!(size_of_shm(&["--shm-size", "1m"]), "1024");
    assert_eq!(size_of_shm(&["--shm-size", "0"]), "65536");
    store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--name",
            "s",
            "--shm-size",
            "2m",
            "bb",
            "sh",
            "-c",
            "df -k /dev/shm | tail -1",
        ])
        .ok();
    for _ in 0..2 {
        let out = store.tupper(&["start", "-a", "s"]).ok();
        assert_eq!(out.split_whitespace().nth(1), Some("2048"), "{out}");
    }
    let before = store.state();
    let line = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--shm-size",
            "2x",
            "bb",
            "true",
        ])
        .fails(125);
    assert!(line.contains("--shm-size 2x: not a size"), "{line}");
    before.assert_same(&store.state(), "a bad --shm-size");
    store.tupper(&["rm", "s"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn read_only_root_keeps_volumes_and_dev_writable() {
    let store = store_with_busybox();
    let dir = host_dir(&store, "rw");
    let v = volume(&dir, "/new/data");
    let out = run_with(
        &store,
        &["--read-only", "-v", &v, "--tmpfs", "/tmp"],
        "touch /x 2>/dev/null || echo root-refused; \
         echo 1 >/new/data/w && echo volume-ok; \
         echo 1 >/tmp/w && echo tmpfs-ok; \
         echo 1 >/dev/shm/w && echo shm-ok; \
         echo 1 >/dev/null && echo null-ok",
    )
    .ok();
    assert_eq!(out, "root-refused\nvolume-ok\ntmpfs-ok\nshm-ok\nnull-ok\n");
    let (opts, _) = mount_of(&store, &["--read-only"], "/");
    assert!(opts.split(',').any(|o| o == "ro"), "{opts}");
    let (opts, _) = mount_of(&store, &[], "/");
    assert!(opts.split(',').any(|o| o == "rw"), "{opts}");
    store.assert_no_leftovers();
}

#[test]
fn inspect_shows_the_mounts() {
    let store = store_with_busybox();
    let dir = host_dir(&store, "shown");
    // A relative source, through a symlink: recorded absolute and resolved.
    std::os::unix::fs::symlink(&dir, store.scratch().join("link")).unwrap();
    let mut c = store.cmd();
    c.current_dir(store.scratch()).args([
        "run",
        "--net",
        "none",
        "--name",
        "m",
        "--read-only",
        "-v",
        "./link:/d:ro",
        "--tmpfs",
        "/t:size=1m",
        "bb",
        "true",
    ]);
    run_cmd(c, None, std::time::Duration::from_secs(60)).ok();
    let v: serde_json::Value = serde_json::from_str(&store.tupper(&["inspect", "m"]).ok()).unwrap();
    let r = &v[0];
    assert_eq!(r["read_only"], true, "{r}");
    let mounts = r["mounts"].as_array().expect("mounts");
    assert_eq!(mounts.len(), 2, "{r}");
    assert_eq!(mounts[0]["type"], "bind");
    assert_eq!(
        mounts[0]["source"],
        dir.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(mounts[0]["destination"], "/d");
    assert_eq!(mounts[0]["read_only"], true);
    assert_eq!(mounts[1]["type"], "tmpfs");
    assert_eq!(mounts[1]["options"][0], "size=1m");
    store.tupper(&["rm", "m"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn bad_mounts_fail_cleanly_and_change_nothing() {
    let store = store_with_busybox();
    store.run_rm("bb", &["true"]).ok();
    let dir = host_dir(&store, "bad");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    // The store's directory of named volumes, made with the first one.
    store.tupper(&["volume", "create", "first"]).ok();
    store.tupper(&["volume", "rm", "first"]).ok();
    let before = store.state();
    let missing = store.scratch().join("no-such-dir");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["-v".into(), volume(&missing, "/x")],
            "No such file or directory",
        ),
        (vec!["-v".into(), "Data:/x".into()], "invalid volume name"),
        // A named volume made for a run that then fails goes with it.
        (
            vec![
                "-v".into(),
                "made:/x".into(),
                "-v".into(),
                volume(&dir, "/bin/sh"),
            ],
            "bind ",
        ),
        (vec!["-v".into(), "/tmp".into()], "anonymous volumes"),
        (vec!["-v".into(), volume(&dir, "/")], "'/'"),
        (vec!["-v".into(), volume(&dir, "/proc/x")], "/proc"),
        (
            vec!["-v".into(), format!("{}:rw,sideways", volume(&dir, "/x"))],
            "unknown option \"sideways\"",
        ),
        (
            vec![
                "-v".into(),
                volume(&dir, "/x"),
                "--tmpfs".into(),
                "/x/".into(),
            ],
            "duplicate mount point /x",
        ),
        (vec!["--tmpfs".into(), "/t:dev".into()], "device files"),
        (vec!["--tmpfs".into(), "/t:foo=1".into()], "unknown option"),
        // Found by the child, in the container's root: a directory on a file,
        // a file on a directory, an option the kernel refuses.
        (vec!["-v".into(), volume(&dir, "/bin/sh")], "bind "),
        (
            vec!["-v".into(), volume(&dir.join("f"), "/bin")],
            "Is a directory",
        ),
        // The kernel's check (no uid -1): found by the child.
        (
            vec!["--tmpfs".into(), "/t:uid=4294967295".into()],
            "mount tmpfs on /t: Invalid argument",
        ),
        // Values tupper knows the kernel refuses: before anything changes.
        (
            vec!["--tmpfs".into(), "/t:size=lots".into()],
            "size=lots: a size is a number",
        ),
    ];
    for (options, wanted) in cases {
        let mut args: Vec<&str> = vec!["run", "--net", "none", "--name", "bad"];
        args.extend(options.iter().map(String::as_str));
        args.extend(["bb", "true"]);
        let line = store.tupper(&args).fails(125);
        assert!(line.contains(wanted), "{options:?}: {line}");
        before.assert_same(&store.state(), &format!("{options:?}"));
    }
    let line = store
        .tupper(&[
            "run",
            "--net",
            "none",
            "-v",
            &volume(&dir, "/bin/sh"),
            "bb",
            "true",
        ])
        .fails(125);
    assert!(line.contains("/bin/sh: Not a directory"), "{line}");
    store.assert_no_leftovers();
}

#[test]
fn a_volume_on_an_etc_file_of_tuppers_is_the_users_every_time() {
    let store = store_with_busybox();
    let dir = host_dir(&store, "etc");
    fs::write(dir.join("resolv.conf"), "nameserver 192.0.2.53\n").unwrap();
    fs::write(dir.join("hosts"), "192.0.2.7 mine\n").unwrap();
    let v1 = volume(&dir.join("resolv.conf"), "/etc/resolv.conf");
    let v2 = volume(&dir.join("hosts"), "/etc/hosts");
    // tupper writes these files too; it must never do so over (or under)
    // the user's mount while the child makes it.
    for _ in 0..15 {
        let out = run_with(
            &store,
            &["-v", &v1, "-v", &v2],
            "cat /etc/resolv.conf /etc/hosts",
        )
        .ok();
        assert_eq!(out, "nameserver 192.0.2.53\n192.0.2.7 mine\n");
    }
    store.assert_no_leftovers();
}

#[test]
fn a_working_directory_in_a_volume_is_made_there() {
    let store = store_with_busybox();
    let dir = host_dir(&store, "wd");
    let v = volume(&dir, "/v");
    let out = run_with(&store, &["-v", &v, "-w", "/v/sub/x"], "pwd; touch here").ok();
    assert_eq!(out, "/v/sub/x\n");
    assert!(dir.join("sub/x/here").is_file());
    let out = run_with(&store, &["--tmpfs", "/t", "-w", "/t/a"], "pwd").ok();
    assert_eq!(out, "/t/a\n");
    store.assert_no_leftovers();
}

#[test]
fn a_destination_that_resolves_to_the_root_proc_or_sys_is_refused() {
    let store = TestStore::new();
    let mut t = TarBuilder::with_busybox(&["sh", "cat", "true"]);
    t.symlink("procl", "/proc");
    t.symlink("sysl", "/proc/sys");
    t.symlink("sysfs", "sys/kernel");
    t.symlink("rootlink", "/");
    store.tupper_stdin(&["import", "bb", "-"], &t.finish()).ok();
    store.run_rm("bb", &["true"]).ok();
    let dir = host_dir(&store, "x");
    let before = store.state();
    for dst in ["/procl", "/sysl", "/sysfs", "/rootlink"] {
        let v = volume(&dir, dst);
        let line = store
            .tupper(&["run", "--net", "none", "-v", &v, "bb", "true"])
            .fails(125);
        assert!(
            line.contains(&format!("on {dst}: Operation not permitted")),
            "{dst}: {line}"
        );
        before.assert_same(&store.state(), dst);
    }
    store.assert_no_leftovers();
}

#[test]
fn a_file_volume_with_a_mount_below_it_is_refused_before_anything_is_made() {
    let store = store_with_busybox();
    let outer = host_dir(&store, "outer");
    let inner = host_dir(&store, "inner");
    let line = store
        .tupper(&[
            "run",
            "--net",
            "none",
            "-v",
            &volume(&outer, "/h"),
            "-v",
            &volume(&outer.join("f"), "/h/n1"),
            "-v",
            &volume(&inner, "/h/n1/n2"),
            "bb",
            "true",
        ])
        .fails(125);
    assert!(line.contains("a file, and /h/n1/n2"), "{line}");
    assert!(!outer.join("n1").exists(), "made on the host");
    store.assert_no_leftovers();
}

#[test]
fn mount_is_dockers_other_spelling() {
    let store = store_with_busybox();
    let dir = host_dir(&store, "m");
    let bind = format!("type=bind,source={},target=/d,readonly", dir.display());
    let out = run_with(
        &store,
        &[
            "--mount",
            &bind,
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700",
        ],
        "cat /d/f; touch /d/x || echo refused; stat -c %a /t; df -k /t | tail -1",
    )
    .ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["hello", "refused", "700"], "{out}");
    assert_eq!(lines[3].split_whitespace().nth(1), Some("1024"), "{out}");
    let line = store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--mount",
            "type=volume,target=/v",
            "bb",
            "true",
        ])
        .fails(125);
    assert!(line.contains("no anonymous volumes"), "{line}");
    store.assert_no_leftovers();
}

/// `-v NAME:CTR`: a named volume of the store, made on first use and filled
/// with what the image has there (owners and modes kept), kept when its
/// containers go, shared by the containers that name it, removed only when
/// none does (`volume rm`, `volume prune`).
#[test]
fn a_named_volume_is_filled_from_the_image_and_outlives_its_containers() {
    let store = store_with_busybox();
    let make_site = "mkdir -p /srv/www && echo page > /srv/www/index.html \
                     && chown -R 1000:1000 /srv/www && chmod 750 /srv/www";
    store
        .tupper(&[
            "run", "--net", "none", "--name", "maker", "bb", "sh", "-c", make_site,
        ])
        .ok();
    store.tupper(&["commit", "maker", "site"]).ok();
    store.tupper(&["rm", "maker"]).ok();
    let first = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-v",
            "web:/srv/www",
            "site",
            "sh",
            "-c",
            "stat -c '%u:%g %a' /srv/www; cat /srv/www/index.html; echo more > /srv/www/more",
        ])
        .ok();
    assert_eq!(first, "1000:1000 750\npage\n");
    // A btrfs subvolume of the store (btrfs's own listing says so).
    assert!(
        store.all_subvolumes().contains(&"volumes/web".to_string()),
        "{:?}",
        store.all_subvolumes()
    );
    // What a container wrote stays for the next, on any image and path;
    // read-only there with :ro.
    let next = run_with(
        &store,
        &["-v", "web:/w:ro"],
        "cat /w/more; touch /w/x 2>/dev/null && echo rw || echo ro",
    )
    .ok();
    assert_eq!(next, "more\nro\n");
    assert_eq!(store.tupper(&["volume", "ls", "-q"]).ok(), "web\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&store.tupper(&["volume", "inspect", "web"]).ok()).unwrap();
    let mountpoint = store.root().join("volumes/web");
    assert_eq!(inspect[0]["mountpoint"], mountpoint.to_str().unwrap());
    // docker's --format, as ps's.
    assert_eq!(
        store
            .tupper(&["volume", "inspect", "-f", "{{.Mountpoint}}", "web"])
            .ok(),
        format!("{}\n", mountpoint.display())
    );
    let e = store
        .tupper(&["volume", "ls", "--format", "{{len .Name}}"])
        .fails(125);
    assert!(e.contains("--format"), "{e}");
    assert_eq!(
        store
            .tupper(&["volume", "ls", "--format", "{{.Name}}!"])
            .ok(),
        "web!\n"
    );
    assert_eq!(
        fs::read_to_string(mountpoint.join("more")).unwrap(),
        "more\n"
    );
    // Named by a container, running or not: kept.
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "user",
            "--mount",
            "type=volume,src=web,dst=/w",
            "bb",
            "true",
        ])
        .ok();
    let id = store.ps_json(true)[0]["id"].as_str().unwrap().to_string();
    let e = store.tupper(&["volume", "rm", "web"]).fails(125);
    assert!(e.contains(&format!("in use by container {id}")), "{e}");
    assert_eq!(store.tupper(&["volume", "prune"]).ok(), "");
    let table = store.tupper(&["volume", "ls"]).ok();
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("web           1 "),
        "{table}"
    );
    store.tupper(&["rm", "user"]).ok();
    assert_eq!(store.tupper(&["volume", "prune"]).ok(), "web\n");
    assert_eq!(store.tupper(&["volume", "ls", "-q"]).ok(), "");
    let e = store.tupper(&["volume", "rm", "web"]).fails(125);
    assert!(e.contains("no such volume: web"), "{e}");
    store.tupper(&["rmi", "site"]).ok();
    store.assert_no_leftovers();
}

/// A volume half made when tupper was killed (`volumes/.new-NAME`, a
/// subvolume made here with `btrfs` as that tupper would have left it) is
/// never listed, and goes when a volume is next made or removed.
#[test]
fn a_half_made_volume_goes_with_the_next_volume_made() {
    let store = store_with_busybox();
    store.tupper(&["volume", "create", "a"]).ok();
    let half = store.root().join("volumes/.new-b");
    sh("btrfs", &["subvolume", "create", half.to_str().unwrap()]);
    assert_eq!(store.tupper(&["volume", "ls", "-q"]).ok(), "a\n");
    let e = store.tupper(&["volume", "rm", "b"]).fails(125);
    assert!(e.contains("no such volume: b"), "{e}");
    assert!(!half.exists(), "the half-made volume is still there");
    // `volume create` of one that exists is fine, as docker's.
    assert_eq!(store.tupper(&["volume", "create", "a"]).ok(), "a\n");
    store.tupper(&["volume", "rm", "a"]).ok();
    store.assert_no_leftovers();
}

/// `--volumes-from NAME[:ro|:rw]` (docker's): NAME's named volumes and bind
/// mounts at their destinations (what one writes, the other reads), as
/// read-only as there unless the suffix says; not its `tmpfs`es; the run's
/// own `-v` on a destination wins. The record keeps the mounts: a start
/// again needs NAME no more, and the volume counts as in use. Bad input
/// is a one-line error that makes nothing.
#[test]
fn volumes_from_mounts_the_other_containers() {
    let store = store_with_busybox();
    let host = store.scratch().join("shared");
    std::fs::create_dir(&host).unwrap();
    let bind = format!("{}:/host:ro", host.display());
    store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--name",
            "src",
            "-v",
            "data:/data",
            "-v",
            &bind,
            "--tmpfs",
            "/tmp/t",
            "bb",
            "true",
        ])
        .ok();
    let script = "echo x > /data/f && echo data-rw || echo data-ro; \
                  touch /host/y 2>/dev/null && echo host-rw || echo host-ro; \
                  test -e /tmp/t || echo no-tmpfs";
    let run = |flags: &[&str]| {
        let mut args = vec!["run", "--rm", "--net", "none"];
        args.extend(flags);
        args.extend(["bb", "sh", "-c", script]);
        store.tupper(&args).ok()
    };
    assert_eq!(
        run(&["--volumes-from", "src"]),
        "data-rw\nhost-ro\nno-tmpfs\n"
    );
    assert!(!host.join("y").exists());
    assert_eq!(
        run(&["--volumes-from", "src:rw"]),
        "data-rw\nhost-rw\nno-tmpfs\n"
    );
    assert!(host.join("y").exists());
    assert_eq!(
        run(&["--volumes-from", "src:ro"]),
        "data-ro\nhost-ro\nno-tmpfs\n"
    );
    // The run's own volume on /data, not src's.
    assert_eq!(
        store
            .tupper(&[
                "run",
                "--rm",
                "--net",
                "none",
                "-v",
                "other:/data",
                "--volumes-from",
                "src",
                "bb",
                "sh",
                "-c",
                "ls /data; echo end",
            ])
            .ok(),
        "end\n"
    );
    store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--name",
            "c",
            "--volumes-from",
            "src",
            "bb",
            "cat",
            "/data/f",
        ])
        .ok();
    let mounts = store.inspect("c")["mounts"].clone();
    assert_eq!(mounts.as_array().unwrap().len(), 2, "{mounts}");
    assert_eq!(mounts[0]["name"], "data");
    assert_eq!(mounts[1]["destination"], "/host");
    assert_eq!(mounts[1]["read_only"], true);
    store.tupper(&["rm", "src"]).ok();
    assert_eq!(store.tupper(&["start", "-a", "c"]).ok(), "x\n");
    let e = store.tupper(&["volume", "rm", "data"]).fails(125);
    assert!(e.contains("in use by container"), "{e}");
    let before = store.state();
    for (from, error) in [
        ("nope", "--volumes-from nope: no such container: nope"),
        (
            "c:rx",
            "invalid --volumes-from c:rx: NAME, NAME:ro or NAME:rw",
        ),
    ] {
        let line = store
            .tupper(&[
                "run",
                "--rm",
                "--net",
                "none",
                "--volumes-from",
                from,
                "bb",
                "true",
            ])
            .fails(125);
        assert!(line.contains(error), "{from}: {line}");
        before.assert_same(&store.state(), from);
    }
    store.tupper(&["rm", "c"]).ok();
    store.tupper(&["volume", "rm", "data", "other"]).ok();
    store.assert_no_leftovers();
}

/// A host directory bound on itself with the propagation given (`shared`,
/// `private`), as the source of volumes that ask for one; unmounted with
/// whatever is beneath it when dropped.
struct BoundDir(PathBuf);

impl BoundDir {
    fn new(store: &TestStore, name: &str, propagation: &str) -> BoundDir {
        let dir = host_dir(store, name);
        let path = dir.to_str().unwrap().to_string();
        sh("mount", &["--bind", &path, &path]);
        let bound = BoundDir(dir);
        sh("mount", &[&format!("--make-{propagation}"), &path]);
        bound
    }

    fn path(&self, rel: &str) -> String {
        self.0.join(rel).to_str().unwrap().to_string()
    }
}

impl Drop for BoundDir {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-R", "-l", self.0.to_str().unwrap()])
            .status();
    }
}

/// Whether the host has a mount on `path`.
fn host_has_mount_on(path: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}

/// `-v HOST:CTR:rslave` (docker's): a mount the host makes beneath HOST
/// later shows in the running container, and none of the container's goes
/// back; `rshared` sends them back too; the default (`rprivate`) neither.
/// A host path on a private mount is refused for them (nothing would
/// propagate), before anything is made.
#[test]
fn rslave_and_rshared_volumes_propagate_mounts() {
    let store = store_with_busybox();
    let shared = BoundDir::new(&store, "shared", "shared");
    for sub in ["sub", "back", "kept"] {
        fs::create_dir(shared.0.join(sub)).unwrap();
    }
    let on = |how: &str| format!("{}:/m{how}", shared.0.display());
    store.detached(&["--name", "slave", "-v", &on(":rslave")], &["sleep", "60"]);
    store.detached(&["--name", "private", "-v", &on("")], &["sleep", "60"]);
    store.detached(
        &[
            "--name",
            "both",
            "--privileged",
            "--mount",
            &format!(
                "type=bind,source={},target=/m,bind-propagation=rshared",
                shared.0.display()
            ),
        ],
        &["sleep", "60"],
    );
    assert_eq!(store.inspect("slave")["mounts"][0]["propagation"], "rslave");
    // Host -> container.
    sh("mount", &["-t", "tmpfs", "tmpfs", &shared.path("sub")]);
    fs::write(shared.0.join("sub/marker"), "from the host\n").unwrap();
    let cat = |name: &str| store.tupper(&["exec", name, "cat", "/m/sub/marker"]);
    assert_eq!(cat("slave").ok(), "from the host\n");
    assert_eq!(cat("both").ok(), "from the host\n");
    let out = cat("private");
    assert!(
        out.code == 1 && out.stderr.contains("No such file"),
        "{out:?}"
    );
    // Container -> host: only from the rshared one.
    let mount_in = |name: &str, dir: &str| {
        store
            .tupper(&[
                "exec",
                "--privileged",
                name,
                "mount",
                "-t",
                "tmpfs",
                "none",
                dir,
            ])
            .ok();
    };
    mount_in("slave", "/m/back");
    assert!(
        !host_has_mount_on(&shared.path("back")),
        "rslave sent a mount back"
    );
    mount_in("both", "/m/kept");
    assert!(
        host_has_mount_on(&shared.path("kept")),
        "rshared did not send it"
    );
    store.tupper(&["rm", "-f", "slave", "private", "both"]).ok();
    sh("umount", &[&shared.path("kept")]);
    sh("umount", &[&shared.path("sub")]);

    // Nothing propagates from a private mount: refused, nothing made.
    let private = BoundDir::new(&store, "private", "private");
    let before = store.state();
    for how in ["rslave", "rshared", "slave"] {
        let v = format!("{}:/m:{how}", private.0.display());
        let line = run_with(&store, &["-v", &v], "true").fails(125);
        assert!(
            line.contains(how) && line.contains("not a shared") && line.contains("--make-shared"),
            "{line}"
        );
        before.assert_same(&store.state(), how);
    }
    let line = run_with(&store, &["-v", "data:/m:rslave"], "true").fails(125);
    assert!(line.contains("not named volumes"), "{line}");
    before.assert_same(&store.state(), "a named volume with rslave");
    drop(private);
    drop(shared);
    store.assert_no_leftovers();
}
