//! `cp`: files between the host and a container's root, by docker's rules
//! of where they land; out of a container nothing becomes a set-user-ID
//! file, a file capability or a device node of the host.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// An exited container `name` whose /data holds a small tree.
fn container_with_data(store: &TestStore, name: &str) -> String {
    let script = "mkdir -p /data/sub && echo a > /data/a && echo b > /data/sub/b && \
                  ln -s /etc/passwd /data/link && ln -s ../../.. /data/up && \
                  echo s > /data/suid && chown 1000:1000 /data/suid && chmod 4755 /data/suid && \
                  mknod /data/null c 1 3";
    store
        .tupper(&[
            "run", "--net", "none", "--name", name, "bb", "sh", "-c", script,
        ])
        .ok();
    store.ps_json(true)[0]["id"].as_str().unwrap().to_string()
}

#[test]
fn out_of_a_container_by_dockers_rules_and_nothing_dangerous() {
    let store = store_with_busybox();
    container_with_data(&store, "src");
    let out = store.scratch().join("out");
    fs::create_dir(&out).unwrap();
    let out_s = out.to_str().unwrap();
    // Onto an existing directory: into it, under its own name.
    store.tupper(&["cp", "src:/data", out_s]).ok();
    let data = out.join("data");
    assert_eq!(fs::read_to_string(data.join("a")).unwrap(), "a\n");
    assert_eq!(fs::read_to_string(data.join("sub/b")).unwrap(), "b\n");
    assert_eq!(
        fs::read_link(data.join("link")).unwrap(),
        Path::new("/etc/passwd")
    );
    // The container's set-user-ID file is the caller's, without the bit;
    // its device node is not made on the host.
    let suid = fs::metadata(data.join("suid")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o755, "{:o}", suid.mode());
    assert_eq!(suid.uid(), 0);
    assert!(!data.join("null").exists(), "a device node was copied out");
    // Onto a path that does not exist: that name; a file too.
    store
        .tupper(&["cp", "src:/data/sub", &format!("{out_s}/renamed")])
        .ok();
    assert_eq!(fs::read_to_string(out.join("renamed/b")).unwrap(), "b\n");
    store
        .tupper(&["cp", "src:/data/a", &format!("{out_s}/a2")])
        .ok();
    assert_eq!(fs::read_to_string(out.join("a2")).unwrap(), "a\n");
    // A symlink of the container on the way resolves inside its root: up
    // is ../../.., which is the container's /, not the host's.
    store
        .tupper(&["cp", "src:/data/up/etc/hostname", &format!("{out_s}/h")])
        .ok();
    assert_eq!(fs::read_to_string(out.join("h")).unwrap(), "src\n");
    store.tupper(&["rm", "src"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn into_a_container_keeping_owners_and_modes() {
    let store = store_with_busybox();
    let id = container_with_data(&store, "dst");
    let src = store.scratch().join("tree");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("f"), "file\n").unwrap();
    fs::write(src.join("d/g"), "g\n").unwrap();
    fs::set_permissions(src.join("f"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(src.join("f"), Some(1234), Some(4321)).unwrap();
    let root = store.container_path(&id);
    // A directory onto a missing path, its contents (`/.`) into an existing
    // one, a file into an existing directory.
    store
        .tupper(&["cp", src.to_str().unwrap(), "dst:/copied"])
        .ok();
    store
        .tupper(&["cp", &format!("{}/.", src.display()), "dst:/data/sub"])
        .ok();
    store
        .tupper(&["cp", src.join("f").to_str().unwrap(), "dst:/data/"])
        .ok();
    for p in [
        "copied/f",
        "copied/d/g",
        "data/sub/f",
        "data/sub/d/g",
        "data/sub/b",
        "data/f",
    ] {
        assert!(root.join(p).exists(), "{p} is missing");
    }
    let f = fs::metadata(root.join("data/f")).unwrap();
    assert_eq!((f.mode() & 0o7777, f.uid(), f.gid()), (0o640, 1234, 4321));
    // Through the container's symlink: inside its root, not the host's /etc.
    store
        .tupper(&[
            "cp",
            src.join("f").to_str().unwrap(),
            "dst:/data/up/etc/copied-f",
        ])
        .ok();
    assert!(root.join("etc/copied-f").exists());
    assert!(!Path::new("/etc/copied-f").exists());
    store.tupper(&["rm", "dst"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn into_a_running_container_it_sees_the_file() {
    let store = store_with_busybox();
    store
        .tupper(&[
            "run", "-d", "--net", "none", "--name", "live", "bb", "sleep", "100",
        ])
        .ok();
    let f = store.scratch().join("note");
    fs::write(&f, "hello\n").unwrap();
    store
        .tupper(&["cp", f.to_str().unwrap(), "live:/tmp/"])
        .ok();
    assert_eq!(
        store.tupper(&["exec", "live", "cat", "/tmp/note"]).ok(),
        "hello\n"
    );
    store.tupper(&["rm", "-f", "live"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn bad_copies_are_one_line_errors_that_change_nothing() {
    let store = store_with_busybox();
    container_with_data(&store, "c");
    let f = store.scratch().join("f");
    fs::write(&f, "x").unwrap();
    let f = f.to_str().unwrap().to_string();
    let before = store.state();
    for (args, says) in [
        (vec!["cp", "c:/nosuch", "/tmp"], "no such file or directory"),
        (vec!["cp", &f, "c:/nosuchdir/x"], "c:/nosuchdir/x"),
        (vec!["cp", &f, "c:/data/a/"], "not a directory"),
        (vec!["cp", &f, "/tmp/elsewhere"], "one of SRC and DEST"),
        (vec!["cp", "c:/data", "c:/copy"], "one of SRC and DEST"),
        (vec!["cp", "nosuch:/x", "/tmp"], "no such container: nosuch"),
        (vec!["cp", "c:/data"], "two arguments"),
    ] {
        let line = store.tupper(&args).fails(125);
        assert!(line.contains(says), "{args:?}: {line}");
        before.assert_same(&store.state(), &format!("{args:?}"));
    }
    store.tupper(&["rm", "c"]).ok();
    store.assert_no_leftovers();
}

/// The sorted entry names of a tar archive, as GNU tar lists them.
fn tar_names(store: &TestStore, archive: &[u8]) -> Vec<String> {
    let file = store.scratch().join("listed.tar");
    fs::write(&file, archive).unwrap();
    let mut names: Vec<String> = sh("tar", &["-tf", file.to_str().unwrap()])
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn tar_streams_out_of_and_into_a_container_as_dockers() {
    let store = store_with_busybox();
    let id = container_with_data(&store, "src");
    let out = |path: &str| {
        let o = store
            .cmd()
            .args(["cp", &format!("src:{path}"), "-"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        o.stdout
    };
    // Under its own name; a directory's contents with /.; everything kept
    // (the archive is not written to the host's files).
    let data = out("/data/sub");
    assert_eq!(tar_names(&store, &data), ["sub/", "sub/b"]);
    assert_eq!(tar_names(&store, &out("/data/sub/.")), ["b"]);
    let names = tar_names(&store, &out("/data"));
    for want in ["data/", "data/link", "data/null", "data/suid", "data/sub/b"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let listing = {
        let file = store.scratch().join("data.tar");
        fs::write(&file, out("/data")).unwrap();
        sh("tar", &["-tvf", file.to_str().unwrap()])
    };
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rwsr-xr-x 1000/1000") && l.ends_with("data/suid")),
        "{listing}"
    );

    // In: a tar from GNU tar (gzip too) into an existing directory.
    let src = store.scratch().join("in");
    fs::create_dir_all(src.join("dir")).unwrap();
    fs::write(src.join("dir/file"), b"payload").unwrap();
    sh("chown", &["5:6", src.join("dir/file").to_str().unwrap()]);
    sh("chmod", &["0640", src.join("dir/file").to_str().unwrap()]);
    let archive = sh_bytes("tar", &["-C", src.to_str().unwrap(), "-cf", "-", "dir"]);
    store
        .tupper_stdin(&["cp", "-", "src:/data/sub"], &archive)
        .ok();
    let landed = store.container_path(&id).join("data/sub/dir/file");
    assert_eq!(fs::read(&landed).unwrap(), b"payload");
    let md = fs::metadata(&landed).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (5, 6, 0o640));
    let gz = sh_bytes("tar", &["-C", src.to_str().unwrap(), "-czf", "-", "dir"]);
    store.tupper_stdin(&["cp", "-", "src:/tmp"], &gz).ok();
    assert!(store.container_path(&id).join("tmp/dir/file").is_file());

    for (args, input, want) in [
        (["cp", "-", "src:/data/a"], &archive, "Not a directory"),
        (
            ["cp", "-", "src:/nowhere"],
            &archive,
            "No such file or directory",
        ),
        (
            ["cp", "src:/nowhere", "-"],
            &archive,
            "cp src:/nowhere: no such file or directory",
        ),
        (
            ["cp", "-", "src:/tmp"],
            &Vec::new(),
            "cp - src:/tmp: empty archive",
        ),
    ] {
        let err = store.tupper_stdin(&args, input).fails(125);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    store.tupper(&["rm", "src"]).ok();
    store.assert_no_leftovers();
}
