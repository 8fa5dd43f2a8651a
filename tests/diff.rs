//! `tupper diff` (docker's): what a container changed in its files since it
//! was made from its image, as `A`, `C` and `D` lines sorted by path.

mod common;

use common::*;

/// `tupper diff NAME`'s lines, as raw bytes.
fn diff(store: &TestStore, name: &str) -> Vec<Vec<u8>> {
    let out = store
        .cmd()
        .args(["diff", name])
        .output()
        .expect("tupper diff");
    assert!(out.status.success(), "diff {name}: {out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// The lines of `diff NAME` that are UTF-8, as strings.
fn diff_text(store: &TestStore, name: &str) -> Vec<String> {
    diff(store, name)
        .into_iter()
        .map(|l| String::from_utf8(l).expect("UTF-8"))
        .collect()
}

#[test]
fn diff_lists_what_the_command_changed_as_docker_does() {
    let store = store_with_busybox();
    let host = store.scratch().join("host");
    std::fs::create_dir_all(&host).unwrap();
    // Every kind of change: data, mode, owner, a hard link, new files and
    // directories, deletions, a file made a directory, a directory made again.
    let script = "set -e
        echo more >> /etc/passwd
        chmod 600 /etc/group
        chown 5:5 /tmp
        mkdir -p /new/deep/er && touch /new/deep/er/file
        ln -s /nowhere /link
        ln /bin/busybox /bb
        rm /bin/vi
        rm -r /root
        mkdir /bin/ls.d
        rm /bin/ls && mkdir /bin/ls && touch /bin/ls/inside
        touch \"/odd$(printf '\\377')\"
        sleep 0.01";
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "changed",
            "-w",
            "/work",
            "-v",
            &format!("{}:/mnt/host", host.display()),
            "bb",
            "sh",
            "-c",
            script,
        ])
        .ok();
    let lines = diff(&store, "changed");
    let text: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    assert_eq!(
        text,
        [
            "A /bb",
            "C /bin",
            "C /bin/busybox",
            "C /bin/ls",
            "A /bin/ls.d",
            "A /bin/ls/inside",
            "D /bin/vi",
            "C /etc",
            "C /etc/group",
            "C /etc/passwd",
            "A /link",
            "A /mnt",
            "A /mnt/host",
            "A /new",
            "A /new/deep",
            "A /new/deep/er",
            "A /new/deep/er/file",
            "A /odd\u{fffd}",
            "D /root",
            "C /tmp",
            "A /work",
        ],
        "{text:#?}"
    );
    // The name as it is, not made UTF-8.
    assert!(lines.contains(&b"A /odd\xff".to_vec()), "{lines:?}");

    // What the start itself writes (/etc/hosts, /dev, ...) is not listed:
    // a command that changes nothing has nothing to show.
    store
        .tupper(&["run", "--net", "none", "--name", "same", "bb", "true"])
        .ok();
    assert_eq!(diff_text(&store, "same"), Vec::<String>::new());

    // A running container, as it is now.
    store.detached(&["--name", "live"], &["sleep", "1000"]);
    store.tupper(&["exec", "live", "touch", "/tmp/x"]).ok();
    assert_eq!(diff_text(&store, "live"), ["C /tmp", "A /tmp/x"]);
    store.tupper(&["rm", "-f", "live", "same", "changed"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn diff_needs_the_image_the_container_was_made_from() {
    let store = store_with_busybox();
    store
        .tupper(&["run", "--net", "none", "--name", "a", "bb", "touch", "/x"])
        .ok();
    assert_eq!(diff_text(&store, "a"), ["A /x"]);
    // From a committed image: compared with it, not with bb.
    store.tupper(&["commit", "a", "withx"]).ok();
    store
        .tupper(&["run", "--net", "none", "--name", "b", "withx", "rm", "/x"])
        .ok();
    assert_eq!(diff_text(&store, "b"), ["D /x"]);
    store.tupper(&["rmi", "withx"]).ok();
    let err = store.tupper(&["diff", "b"]).fails(125);
    assert!(
        err.contains("diff b: its image withx was removed since it was made"),
        "{err}"
    );
    // Replaced: the snapshot is not of the image that has its name now.
    let tar = busybox_tar();
    store
        .tupper(&["import", "--force", "bb", tar.to_str().unwrap()])
        .ok();
    let err = store.tupper(&["diff", "a"]).fails(125);
    assert!(
        err.contains("diff a: its image bb was replaced since it was made"),
        "{err}"
    );
    for (args, want) in [
        (&["diff", "nope"][..], "no such container: nope"),
        (&["diff"], "diff takes one container name or ID"),
        (&["diff", "a", "b"], "diff takes one container name or ID"),
    ] {
        let err = store.tupper(args).fails(125);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    store.tupper(&["rm", "a", "b"]).ok();
    store.assert_no_leftovers();
}
