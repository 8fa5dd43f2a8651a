//! `run -u USER[:GROUP]` and `--group-add`: who the command runs as, found in
//! the image's `/etc/passwd` and `/etc/group` (`src/user.rs`), set by the
//! child before `execve` (`src/child.rs`).

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
";

const GROUP: &str = "\
root:x:0:
users:x:100:alice
alice:x:1000:
wheel:x:10:root,alice
staff:x:50:
";

/// Busybox with `sh` and friends, `/tmp` (1777), `/home/alice` (1000:1000,
/// 0755), and `etc`: an image's root made of `t`'s entries.
fn users_image(store: &TestStore, name: &str, etc: impl FnOnce(&mut TarBuilder)) {
    let mut t =
        TarBuilder::with_busybox(&["sh", "id", "touch", "stat", "grep", "sed", "echo", "true"]);
    t.dir("tmp", 0o1777);
    t.dir("home", 0o755);
    t.entry_meta(
        "home/alice/",
        b'5',
        0o755,
        "",
        b"",
        Meta {
            uid: 1000,
            gid: 1000,
            ..META
        },
    );
    t.dir("etc", 0o755);
    etc(&mut t);
    store.tupper_stdin(&["import", name, "-"], &t.finish()).ok();
}

/// A store with image `users`: [`users_image`] with [`PASSWD`] and [`GROUP`].
fn store_with_users() -> TestStore {
    let store = TestStore::new();
    users_image(&store, "users", |t| {
        t.file("etc/passwd", 0o644, PASSWD.as_bytes());
        t.file("etc/group", 0o644, GROUP.as_bytes());
    });
    store
}

/// `run --rm --net none OPTIONS IMAGE sh -c SCRIPT`: its stdout, exit 0.
fn sh_as(store: &TestStore, options: &[&str], image: &str, script: &str) -> String {
    let mut args = vec!["run", "--rm", "--net", "none"];
    args.extend(options);
    args.extend([image, "sh", "-c", script]);
    store.tupper(&args).ok()
}

/// `KEY:\tVALUE` of the command's `/proc/self/status`, as `KEY=VALUE` lines.
const IDS: &str = "grep -E '^(Uid|Gid|Groups|CapEff|CapPrm|CapBnd):' /proc/self/status \
                   | sed 's/:[[:space:]]*/=/; s/[[:space:]]\\+/ /g; s/ $//'; echo HOME=$HOME";

/// The lines of [`IDS`] as a map.
fn ids(
    store: &TestStore,
    options: &[&str],
    image: &str,
) -> std::collections::BTreeMap<String, String> {
    sh_as(store, options, image, IDS)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_numeric_uid_needs_no_entry() {
    let store = store_with_busybox();
    // busybox's id, as in docker: the primary gid is a supplementary group too.
    let out = sh_as(&store, &["-u", "1000"], "bb", "id; echo HOME=$HOME");
    assert_eq!(out, "uid=1000 gid=0(root) groups=0(root)\nHOME=/\n");
    let out = sh_as(&store, &["--user=4321:77"], "bb", "id; echo HOME=$HOME");
    assert_eq!(out, "uid=4321 gid=77 groups=77\nHOME=/\n");
    // Without -u: root, as before.
    let out = sh_as(&store, &[], "bb", "id -u; echo HOME=$HOME");
    assert_eq!(out, "0\nHOME=/root\n");
}

#[test]
fn a_name_takes_uid_gid_groups_and_home_from_the_image() {
    let store = store_with_users();
    let got = ids(&store, &["-u", "alice"], "users");
    assert_eq!(got["Uid"], "1000 1000 1000 1000", "{got:?}");
    assert_eq!(got["Gid"], "1000 1000 1000 1000", "{got:?}");
    // The kernel keeps them sorted.
    assert_eq!(got["Groups"], "10 100 1000", "{got:?}");
    assert_eq!(got["HOME"], "/home/alice", "{got:?}");
    // A uid with an entry is that entry.
    assert_eq!(ids(&store, &["-u", "1000"], "users"), got);
    // busybox's id names them from the image's files.
    let out = sh_as(&store, &["-u", "alice"], "users", "id");
    assert_eq!(
        out,
        "uid=1000(alice) gid=1000(alice) groups=10(wheel),100(users),1000(alice)\n"
    );
    // -e HOME wins, as in docker.
    let out = sh_as(
        &store,
        &["-u", "alice", "-e", "HOME=/x"],
        "users",
        "echo $HOME",
    );
    assert_eq!(out, "/x\n");
    // alice's home is hers.
    let out = sh_as(
        &store,
        &["-u", "alice"],
        "users",
        "touch ~/f && stat -c %u:%g ~/f",
    );
    assert_eq!(out, "1000:1000\n");
}

#[test]
fn user_colon_group_and_group_add() {
    let store = store_with_users();
    // An explicit group: it alone, no groups of /etc/group.
    let got = ids(&store, &["-u", "alice:staff"], "users");
    assert_eq!(
        (
            got["Uid"].as_str(),
            got["Gid"].as_str(),
            got["Groups"].as_str()
        ),
        ("1000 1000 1000 1000", "50 50 50 50", "50"),
        "{got:?}"
    );
    let got = ids(&store, &["-u", "1000:4242"], "users");
    assert_eq!(
        (got["Gid"].as_str(), got["Groups"].as_str()),
        ("4242 4242 4242 4242", "4242")
    );
    // --group-add: names of /etc/group, or numbers.
    let got = ids(
        &store,
        &["-u", "alice", "--group-add", "staff", "--group-add", "777"],
        "users",
    );
    assert_eq!(got["Groups"], "10 50 100 777 1000", "{got:?}");
    // Without -u: root with more groups; HOME stays /root.
    let got = ids(&store, &["--group-add", "staff"], "users");
    assert_eq!(got["Uid"], "0 0 0 0", "{got:?}");
    assert_eq!(got["Groups"], "0 10 50", "{got:?}");
    assert_eq!(got["HOME"], "/root", "{got:?}");
}

#[test]
fn a_user_other_than_root_has_no_capabilities() {
    let store = store_with_users();
    let got = ids(&store, &["-u", "alice"], "users");
    assert_eq!(got["CapEff"], "0000000000000000", "{got:?}");
    assert_eq!(got["CapPrm"], "0000000000000000", "{got:?}");
    // The bounding set is cut as for root.
    assert_eq!(got["CapBnd"], "00000000a80425fb", "{got:?}");
    // uid 0 keeps docker's set, whatever its group.
    let got = ids(&store, &["-u", "0:staff"], "users");
    assert_eq!(got["CapEff"], "00000000a80425fb", "{got:?}");
    assert_eq!(got["Groups"], "50", "{got:?}");
}

#[test]
fn files_belong_to_the_user_and_root_owned_ones_are_out_of_reach() {
    let store = store_with_users();
    let out = store.tupper(&[
        "run",
        "--net",
        "none",
        "--name",
        "f",
        "-u",
        "1000",
        "users",
        "sh",
        "-c",
        "touch /tmp/mine && stat -c %u:%g /tmp/mine; touch /x 2>&1; true",
    ]);
    let out = out.ok();
    assert!(out.starts_with("1000:1000\n"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    let rec = &store.ps_json(true)[0];
    let id = rec["id"].as_str().unwrap();
    let md = std::fs::metadata(store.container_path(id).join("tmp/mine")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    assert!(!store.container_path(id).join("x").exists());
    store.tupper(&["rm", "f"]).ok();
}

#[test]
fn the_terminal_belongs_to_the_user() {
    let store = store_with_users();
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-t",
            "-u",
            "alice",
            "users",
            "stat",
            "-c",
            "%u:%g",
            "/dev/pts/0",
        ])
        .ok();
    // Its group stays devpts' tty group (5).
    assert_eq!(out.trim(), "1000:5", "{out:?}");
}

#[test]
fn an_unknown_user_or_group_changes_nothing() {
    let store = store_with_users();
    store.run_rm("users", &["true"]).ok();
    let before = store.state();
    for (options, want) in [
        (
            &["-u", "nosuch"][..],
            "unable to find user nosuch: no matching entries in passwd file",
        ),
        (
            &["-u", "alice:nogroup"],
            "unable to find group nogroup: no matching entries in group file",
        ),
        (
            &["-u", "alice", "--group-add", "nogroup"],
            "unable to find group nogroup",
        ),
        (&["--user", "2147483648"], "range 0-2147483647"),
        (&["-u", "a:b:c"], "USER[:GROUP]"),
    ] {
        for name in [None, Some("u")] {
            let mut args = vec!["run", "--net", "none"];
            if let Some(n) = name {
                args.extend(["--name", n]);
            } else {
                args.push("--rm");
            }
            args.extend(options);
            args.extend(["users", "true"]);
            let line = store.tupper(&args).fails(125);
            assert!(line.contains(want), "{options:?}: {line}");
            before.assert_same(&store.state(), &format!("{options:?}"));
        }
    }
    // The image is named in the error of a name it lacks.
    let line = store
        .tupper(&["run", "--rm", "--net", "none", "-u", "x", "users", "true"])
        .fails(125);
    assert!(line.contains("of image users"), "{line}");
    store.assert_no_leftovers();
}

#[test]
fn etc_passwd_resolves_inside_the_image() {
    let store = TestStore::new();
    // A host file the image's symlink names: never read.
    let host = store.scratch().join("passwd");
    std::fs::write(&host, "hostuser:x:4242:4242::/hosthome:/bin/sh\n").unwrap();
    let host_path = host.to_str().unwrap().to_string();
    users_image(&store, "links", |t| {
        t.symlink("etc/passwd", &host_path);
        // `..` stops at the image's root: /data/group.
        t.symlink("etc/group", "../../../../../data/group");
        t.dir("data", 0o755);
        t.file("data/group", 0o644, b"inimage:x:321:\n");
    });
    let before = store.state();
    let line = store
        .tupper(&[
            "run", "--rm", "--net", "none", "-u", "hostuser", "links", "true",
        ])
        .fails(125);
    assert!(line.contains("unable to find user hostuser"), "{line}");
    before.assert_same(&store.state(), "a passwd symlink to a host file");
    // A link inside the image is followed there.
    let got = ids(&store, &["-u", "5:inimage"], "links");
    assert_eq!(got["Gid"], "321 321 321 321", "{got:?}");
    // A passwd that is not a regular file is refused.
    users_image(&store, "dir", |t| t.dir("etc/passwd", 0o755));
    let line = store
        .tupper(&["run", "--rm", "--net", "none", "-u", "1", "dir", "true"])
        .fails(125);
    assert!(
        line.contains("/etc/passwd") && line.contains("regular file"),
        "{line}"
    );
    // No /etc/passwd at all: no entries; a number still runs.
    users_image(&store, "none", |_| {});
    let out = sh_as(&store, &["-u", "7"], "none", "id -u; id -g; echo $HOME");
    assert_eq!(out, "7\n0\n/\n");
}

#[test]
fn inspect_and_ps_show_the_user() {
    let store = store_with_users();
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "who",
            "-u",
            "alice",
            "--group-add",
            "777",
            "users",
            "true",
        ])
        .ok();
    let out = store.tupper(&["inspect", "who"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let want = serde_json::json!({
        "user": "alice",
        "group_add": ["777"],
        "uid": 1000,
        "gid": 1000,
        "groups": [1000, 100, 10, 777],
    });
    assert_eq!(v[0]["security"]["user"], want, "{out}");
    let ps = store.ps_json(true);
    assert_eq!(ps[0]["security"]["user"], want);
    // Without -u or --group-add: none recorded.
    store
        .tupper(&["run", "--net", "none", "--name", "root", "users", "true"])
        .ok();
    let out = store.tupper(&["inspect", "root"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["security"]["user"], serde_json::Value::Null, "{out}");
    store.tupper(&["rm", "who", "root"]).ok();
}
