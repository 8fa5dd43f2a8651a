//! `--userns auto`: a user namespace of the container's own. Its root is an
//! unprivileged host uid of a block of 65,536 that no other running container
//! has (systemd's container range); its files keep the owners they would
//! have without one (the root's mount and named volumes are idmapped).

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// The host's view of a process: the four uids and the four gids of
/// `/proc/PID/status`.
fn host_ids(pid: i64) -> (Vec<u32>, Vec<u32>) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ids = |key: &str| -> Vec<u32> {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace()
            .skip(1)
            .map(|n| n.parse().unwrap())
            .collect()
    };
    (ids("Uid:"), ids("Gid:"))
}

/// The host uid of the root of running container `name` (its PID 1's uid),
/// asserting that every uid and gid of PID 1 is that one id.
fn host_root(store: &TestStore, name: &str) -> u32 {
    let pid = store.inspect(name)["pid"].as_i64().expect("a pid");
    let (uids, gids) = host_ids(pid);
    assert!(
        uids.iter().chain(&gids).all(|id| *id == uids[0]),
        "{uids:?} {gids:?}"
    );
    uids[0]
}

const FIRST: u32 = 0x8_0000;
const SIZE: u32 = 0x1_0000;

#[test]
fn the_root_is_an_unprivileged_host_uid_of_its_own_block() {
    let store = store_with_busybox();
    store.detached(&["--userns", "auto", "--name", "a"], &["sleep", "1000"]);
    store.detached(&["--userns", "auto", "--name", "b"], &["sleep", "1000"]);
    let (a, b) = (host_root(&store, "a"), host_root(&store, "b"));
    for base in [a, b] {
        assert!(base >= FIRST && base % SIZE == 0, "{base}");
        assert!(base + SIZE <= 0x7000_0000, "{base}");
        // Held while the container runs.
        assert!(lock_is_held(
            &std::path::Path::new("/run/tupper/userns").join(base.to_string())
        ));
    }
    assert_ne!(a, b, "two running containers share a block");
    // Inside: root, mapped to that block for 65,536 ids.
    let out = store
        .tupper(&[
            "exec",
            "a",
            "sh",
            "-c",
            "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; grep CapEff /proc/self/status",
        ])
        .ok();
    let words: Vec<&str> = out.split_whitespace().collect();
    let base = a.to_string();
    assert_eq!(
        words,
        [
            "0",
            "0",
            "0",
            &base,
            "65536",
            "0",
            &base,
            "65536",
            "CapEff:",
            "00000000a80425fb"
        ],
        "{out}"
    );
    assert_eq!(store.inspect("a")["security"]["userns"], "auto");
    // top names its users as the container sees them (root, not 524288).
    let top = store.tupper(&["top", "a"]).ok();
    let row: Vec<&str> = top
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        (row.first(), row.last()),
        (Some(&"root"), Some(&"1000")),
        "{top}"
    );
    // The host's user namespace otherwise (the default, and --userns host).
    let out = store.run_rm("bb", &["cat", "/proc/self/uid_map"]).ok();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"]
    );
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--userns",
            "host",
            "bb",
            "cat",
            "/proc/self/uid_map",
        ])
        .ok();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"]
    );
    store.tupper(&["rm", "-f", "a", "b"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn its_root_is_not_the_hosts_root() {
    let store = store_with_busybox();
    // A root-only host file, bound in: host root reads it, the namespace's
    // root cannot (its capabilities are its namespace's).
    let secret = store.scratch().join("secret");
    fs::write(&secret, "hidden\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let bind = format!("{}:/secret:ro", secret.display());
    let read = |userns: &str| {
        store.tupper(&[
            "run", "--rm", "--net", "none", "--userns", userns, "-v", &bind, "bb", "cat", "/secret",
        ])
    };
    assert_eq!(read("host").ok(), "hidden\n");
    let out = read("auto");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    // CAP_MKNOD is kept, yet no device node can be made; the host's devices
    // in /dev work.
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--userns",
            "auto",
            "bb",
            "sh",
            "-c",
            "echo x > /dev/null && head -c 4 /dev/zero | wc -c; mknod /disk b 8 0 || echo REFUSED",
        ])
        .ok();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["4", "REFUSED"],
        "{out}"
    );
    store.assert_no_leftovers();
}

#[test]
fn files_keep_the_owners_they_have_without_one() {
    let store = store_with_busybox();
    let script = "set -e
        stat -c %u:%g /bin/busybox
        touch /made
        mkdir /owned && chown 1000:2000 /owned";
    let out = store
        .tupper(&[
            "run", "--net", "none", "--userns", "auto", "--name", "f", "bb", "sh", "-c", script,
        ])
        .ok();
    assert_eq!(out, "0:0\n");
    let id = store.inspect("f")["id"].as_str().unwrap().to_string();
    let root = store.container_path(&id);
    let md = fs::metadata(root.join("made")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
    let md = fs::metadata(root.join("owned")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 2000));
    // A user of -u writes as that uid, on the host too.
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--userns",
            "auto",
            "-u",
            "1000:1000",
            "--name",
            "g",
            "bb",
            "touch",
            "/tmp/x",
        ])
        .ok();
    let g = store.inspect("g")["id"].as_str().unwrap().to_string();
    let md = fs::metadata(store.container_path(&g).join("tmp/x")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    store.tupper(&["rm", "g"]).ok();
    // What it made is committed with those owners, and a container without
    // a user namespace sees them.
    store.tupper(&["commit", "f", "fimg"]).ok();
    let out = store
        .run_rm("fimg", &["stat", "-c", "%n %u:%g", "/made", "/owned"])
        .ok();
    assert_eq!(out, "/made 0:0\n/owned 1000:2000\n");
    let diff = store.tupper(&["diff", "f"]).ok();
    assert!(
        diff.contains("A /made\n") && diff.contains("A /owned\n"),
        "{diff}"
    );
    store.tupper(&["rm", "f"]).ok();
    store.tupper(&["rmi", "fimg"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn exec_joins_its_user_namespace() {
    let store = store_with_busybox();
    let id = store.detached(&["--userns", "auto", "--name", "e"], &["sleep", "1000"]);
    let pid = store.inspect("e")["pid"].as_i64().unwrap();
    let ns = fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    assert_ne!(ns, fs::read_link("/proc/self/ns/user").unwrap());
    let out = store
        .tupper(&[
            "exec",
            "e",
            "sh",
            "-c",
            "readlink /proc/self/ns/user; id -u; touch /by-exec",
        ])
        .ok();
    assert_eq!(out, format!("{}\n0\n", ns.display()));
    store
        .tupper(&["exec", "-u", "1000", "e", "touch", "/tmp/by-1000"])
        .ok();
    let root = store.container_path(&id);
    assert_eq!(fs::metadata(root.join("by-exec")).unwrap().uid(), 0);
    assert_eq!(fs::metadata(root.join("tmp/by-1000")).unwrap().uid(), 1000);
    // On the host, exec's process is the container's root's uid, not 0.
    store.tupper(&["exec", "-d", "e", "sleep", "999"]).ok();
    let base = host_root(&store, "e");
    let pid_ns = fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    let execd: Vec<i64> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i64>().ok())
        .filter(|p| fs::read_link(format!("/proc/{p}/ns/pid")).ok().as_ref() == Some(&pid_ns))
        .filter(|p| fs::read(format!("/proc/{p}/cmdline")).ok().as_deref() == Some(b"sleep\0999\0"))
        .collect();
    assert_eq!(
        execd.len(),
        1,
        "exec -d's sleep in the container: {execd:?}"
    );
    assert_eq!(host_ids(execd[0]), (vec![base; 4], vec![base; 4]));
    store.tupper(&["rm", "-f", "e"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn a_named_volume_is_mapped_a_host_path_keeps_the_hosts_owners() {
    let store = store_with_busybox();
    let host = store.scratch().join("host");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("file"), "x").unwrap();
    let script =
        "stat -c %u /v /h/file; touch /v/made && echo VOLUME-OK; touch /h/new || echo HOST-REFUSED";
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--userns",
            "auto",
            "-v",
            "uvol:/v",
            "-v",
            &format!("{}:/h", host.display()),
            "bb",
            "sh",
            "-c",
            script,
        ])
        .ok();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "65534", "VOLUME-OK", "HOST-REFUSED"],
        "{out}"
    );
    assert!(!host.join("new").exists());
    // The volume's file is the host's root's, as without a user namespace.
    let out = store
        .tupper(&[
            "run", "--rm", "--net", "none", "-v", "uvol:/v", "bb", "stat", "-c", "%u", "/v/made",
        ])
        .ok();
    assert_eq!(out, "0\n");
    store.tupper(&["volume", "rm", "uvol"]).ok();
    // With idmap, a host path is mapped as the root is: the host's root's
    // files are the container's root's, and what it makes is the host's
    // root's.
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--userns",
            "auto",
            "--mount",
            &format!("type=bind,source={},target=/h,idmap", host.display()),
            "bb",
            "sh",
            "-c",
            "stat -c %u /h/file; touch /h/made && echo MADE",
        ])
        .ok();
    assert_eq!(out, "0\nMADE\n");
    let md = fs::metadata(host.join("made")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
    store.assert_no_leftovers();
}

#[test]
fn ulimits_and_a_second_start_work_in_one() {
    let store = store_with_busybox();
    store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--userns",
            "auto",
            "--name",
            "c",
            "--ulimit",
            "nofile=500:1000",
            "bb",
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn; cat /proc/self/uid_map",
        ])
        .ok();
    for _ in 0..2 {
        let out = store.tupper(&["start", "-a", "c"]).ok();
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(&words[..3], ["500", "1000", "0"], "{out}");
        let base: u32 = words[3].parse().unwrap();
        assert!(
            base >= FIRST && base % SIZE == 0 && words[4] == "65536",
            "{out}"
        );
    }
    store.tupper(&["rm", "c"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn what_a_user_namespace_cannot_have_is_refused_and_changes_nothing() {
    let store = store_with_busybox();
    let before = store.state();
    for (args, words) in [
        (
            &["--userns", "auto", "-u", "70000"][..],
            "uid 70000 is not one",
        ),
        (
            &["--userns", "auto", "--group-add", "65536"][..],
            "group 65536 is not one",
        ),
        (
            &["--userns", "auto", "--net", "host"][..],
            "--userns auto with --net host",
        ),
        (&["--userns", "private"][..], "--userns private: it is auto"),
        (&["-v", "/tmp:/t:idmap"][..], "idmap maps its owners"),
    ] {
        let mut v = vec!["run", "--rm", "--name", "bad"];
        if !args.contains(&"host") {
            v.extend(["--net", "none"]);
        }
        v.extend(args);
        v.extend(["bb", "true"]);
        let line = store.tupper(&v).fails(125);
        assert!(line.contains(words), "{args:?}: {line}");
    }
    store.state().assert_same(&before, "refused --userns runs");
    store.assert_no_leftovers();
}

/// `TUPPER_USERNS=auto`: every run's default (a host's setting, as
/// docker's `userns-remap`); `--userns host` still runs one in the host's.
#[test]
fn tupper_userns_sets_the_default() {
    let store = store_with_busybox();
    let run = |env: &str, options: &[&str]| {
        let mut c = store.cmd();
        c.env("TUPPER_USERNS", env)
            .args(["run", "--rm", "--net", "none"])
            .args(options)
            .args(["bb", "cat", "/proc/self/uid_map"]);
        run_cmd(c, None, DEFAULT_TIMEOUT)
    };
    let words = |out: &Out| {
        out.ok()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let auto = words(&run("auto", &[]));
    assert_eq!(
        (auto[0].as_str(), auto[2].as_str()),
        ("0", "65536"),
        "{auto:?}"
    );
    assert!(auto[1].parse::<u32>().unwrap() >= FIRST, "{auto:?}");
    assert_eq!(
        words(&run("auto", &["--userns", "host"])),
        ["0", "0", "4294967295"]
    );
    assert_eq!(words(&run("host", &[])), ["0", "0", "4294967295"]);
    let before = store.state();
    let line = run("bogus", &[]).fails(125);
    assert!(line.contains("TUPPER_USERNS=bogus"), "{line}");
    let line = run("auto", &["--net", "host"]).fails(125);
    assert!(line.contains("--userns host"), "{line}");
    store
        .state()
        .assert_same(&before, "refused TUPPER_USERNS runs");
    store.assert_no_leftovers();
}
