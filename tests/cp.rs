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
