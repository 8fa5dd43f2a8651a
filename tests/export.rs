//! `tupper export` (docker's): a container's files as a tar archive, read
//! back by GNU tar and by `tupper import`.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

#[test]
fn export_writes_the_containers_files_as_an_archive_that_reads_back() {
    let store = store_with_busybox();
    let long = "d".repeat(150);
    let script = format!(
        "set -e; mkdir -p /x/{long}; echo hi > /x/f; chown 7:8 /x/f; chmod 4755 /x/f
        ln /x/f /x/hard; ln -s /x/f /x/sym; mkfifo /x/fifo; mknod /x/null c 1 3
        echo deep > /x/{long}/file"
    );
    store
        .tupper(&[
            "run", "--net", "none", "--name", "e", "bb", "sh", "-c", &script,
        ])
        .ok();
    let id = store.inspect("e")["id"].as_str().unwrap().to_string();
    // An extended attribute, set from the host (busybox has no setfattr).
    rustix::fs::setxattr(
        store.container_path(&id).join("x/f"),
        "user.test",
        b"hello",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("setxattr");

    let file = store.scratch().join("e.tar");
    assert_eq!(
        store
            .tupper(&["export", "-o", file.to_str().unwrap(), "e"])
            .ok(),
        ""
    );
    // To stdout: the same archive.
    let out = store.cmd().args(["export", "e"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, fs::read(&file).unwrap(), "stdout and -o differ");

    // GNU tar reads it: names, owners, modes, links, nodes.
    let listing = sh("tar", &["-tvf", file.to_str().unwrap()]);
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{listing}"))
            .to_string()
    };
    assert!(line(" x/f").starts_with("-rwsr-xr-x 7/8 "), "{listing}");
    assert!(line(" x/hard link to x/f").starts_with("hrwsr-xr-x 7/8"));
    assert!(line(" x/sym -> /x/f").starts_with("lrwxrwxrwx"));
    assert!(line(" x/fifo").starts_with("prw-r--r--"));
    assert!(line(" x/null").starts_with("crw-r--r--"));
    assert!(line(" x/null").contains(" 1,3 "));
    assert!(line(&format!(" x/{long}/file")).starts_with("-rw-r--r--"));
    assert!(line(" bin/busybox").starts_with("-rwxr-xr-x 0/0"));
    assert!(
        !listing
            .lines()
            .any(|l| l.ends_with(" ./") || l.ends_with(" /")),
        "no entry for the root, as docker's: {listing}"
    );
    let xattrs = sh(
        "tar",
        &[
            "--xattrs",
            "--xattrs-include=*",
            "-tvvf",
            file.to_str().unwrap(),
            "x/f",
        ],
    );
    assert!(xattrs.contains("user.test"), "{xattrs}");

    // tupper imports it back as it was.
    store
        .tupper(&["import", "back", file.to_str().unwrap()])
        .ok();
    let img = store.image_path("back");
    let f = fs::symlink_metadata(img.join("x/f")).unwrap();
    assert_eq!((f.mode() & 0o7777, f.uid(), f.gid()), (0o4755, 7, 8));
    assert_eq!(
        fs::symlink_metadata(img.join("x/hard")).unwrap().ino(),
        f.ino(),
        "the hard link is one file again"
    );
    assert_eq!(
        rustix::fs::getxattr(img.join("x/f"), "user.test", &mut [0u8; 16][..]).unwrap(),
        5
    );
    assert_eq!(
        fs::read_link(img.join("x/sym")).unwrap().to_str(),
        Some("/x/f")
    );
    assert!(fs::symlink_metadata(img.join("x/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let null = fs::symlink_metadata(img.join("x/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(
        store
            .run_rm("back", &["cat", &format!("/x/{long}/file"), "/x/f"])
            .ok(),
        "deep\nhi\n"
    );
    store.tupper(&["rm", "e"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn a_failed_export_leaves_no_file() {
    let store = store_with_busybox();
    store
        .tupper(&["run", "--net", "none", "--name", "e", "bb", "true"])
        .ok();
    let dir = store.scratch().join("out");
    fs::create_dir(&dir).unwrap();
    let file = dir.join("e.tar");
    let missing = store.scratch().join("nowhere/e.tar");
    for (args, want) in [
        (
            vec!["export", "-o", file.to_str().unwrap(), "nope"],
            "no such container: nope".to_string(),
        ),
        (
            vec!["export", "-o", missing.to_str().unwrap(), "e"],
            format!("create {}", store.scratch().join("nowhere").display()),
        ),
        (
            vec!["export"],
            "export needs at least one container name or ID".into(),
        ),
        (
            vec!["export", "e", "f"],
            "export takes one container name or ID".into(),
        ),
    ] {
        let err = store.tupper(&args).fails(125);
        assert!(err.contains(&want), "{args:?}: {err}");
    }
    assert_eq!(list_dir(&dir), Vec::<String>::new(), "nothing written");
    // Not onto a terminal (script(1) gives the command one).
    let on_terminal = std::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("{TUPPER} --root {} export e", store.root_str()))
        .arg("/dev/null")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux)");
    let text = String::from_utf8_lossy(&on_terminal.stdout);
    assert_eq!(on_terminal.status.code(), Some(125), "{text}");
    assert!(
        text.contains("export e: not writing an archive to a terminal"),
        "{text}"
    );
    // An archive already there is replaced whole, only once complete.
    fs::write(&file, b"old").unwrap();
    store
        .tupper(&["export", "-o", file.to_str().unwrap(), "e"])
        .ok();
    assert!(fs::metadata(&file).unwrap().len() > 1 << 20);
    assert_eq!(list_dir(&dir), ["e.tar"]);
    // A device or a pipe (-o /dev/null, -o /dev/stdout) is written into,
    // never replaced: a twin of /dev/null, and a FIFO with a reader.
    let null = dir.join("null");
    sh(
        "mknod",
        &["-m", "666", null.to_str().unwrap(), "c", "1", "3"],
    );
    store
        .tupper(&["export", "-o", null.to_str().unwrap(), "e"])
        .ok();
    let st = fs::symlink_metadata(&null).unwrap();
    assert!(
        st.file_type().is_char_device(),
        "-o NULL replaced the device: {st:?}"
    );
    let fifo = dir.join("fifo");
    sh("mkfifo", &[fifo.to_str().unwrap()]);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read(fifo).unwrap())
    };
    store
        .tupper(&["export", "-o", fifo.to_str().unwrap(), "e"])
        .ok();
    let tar = reader.join().unwrap();
    assert!(tar.len() > 1 << 20, "{} bytes through the FIFO", tar.len());
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    fs::remove_file(&null).unwrap();
    fs::remove_file(&fifo).unwrap();
    assert_eq!(list_dir(&dir), ["e.tar"]);
    store.tupper(&["rm", "e"]).ok();
    store.assert_no_leftovers();
}
