//! An image's configuration (docker's `CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`,
//! `USER`, `LABEL`, `STOPSIGNAL`, `EXPOSE`), set by `import --change` and
//! `commit --change`, and what `run` makes of it.

mod common;

use common::*;

/// `run --rm --net none ARGS...`'s output (it must succeed).
fn run(store: &TestStore, args: &[&str]) -> String {
    let mut v = vec!["run", "--rm", "--net", "none"];
    v.extend(args);
    store.tupper(&v).ok()
}

/// Image `name`'s entry in `images --json`.
fn image(store: &TestStore, name: &str) -> serde_json::Value {
    let out = store.tupper(&["images", "--json"]).ok();
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    list.into_iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no image {name}: {out}"))
}

#[test]
fn import_and_commit_changes_configure_the_runs_as_dockers() {
    let store = store_with_busybox();
    let tar = busybox_tar().to_str().unwrap();
    store
        .tupper(&[
            "import",
            "-c",
            r#"CMD ["echo", "from cmd"]"#,
            "--change",
            "ENV GREETING=hi",
            "-c",
            "WORKDIR /srv",
            "-c",
            "LABEL suite=img",
            "-c",
            "STOPSIGNAL USR1",
            "-c",
            "EXPOSE 80",
            "cfg",
            tar,
        ])
        .ok();
    let config = &image(&store, "cfg")["config"];
    assert_eq!(config["cmd"], serde_json::json!(["echo", "from cmd"]));
    assert_eq!(config["env"], serde_json::json!(["GREETING=hi"]));
    assert_eq!(config["exposed_ports"], serde_json::json!(["80/tcp"]));
    assert!(image(&store, "bb").get("config").is_none());

    assert_eq!(run(&store, &["cfg"]), "from cmd\n");
    assert_eq!(
        run(&store, &["cfg", "sh", "-c", "echo $GREETING $(pwd)"]),
        "hi /srv\n"
    );
    assert_eq!(
        run(
            &store,
            &[
                "-e",
                "GREETING=yo",
                "-w",
                "/tmp",
                "cfg",
                "sh",
                "-c",
                "echo $GREETING $(pwd)"
            ]
        ),
        "yo /tmp\n"
    );
    let id = store
        .tupper(&[
            "run", "-d", "--net", "none", "--name", "s", "cfg", "sleep", "1000",
        ])
        .ok();
    let rec = store.inspect("s");
    assert_eq!(rec["stop_signal"], 10, "{rec}");
    assert_eq!(rec["labels"]["suite"], "img");
    assert!(rec["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "GREETING=hi"));
    store.tupper(&["rm", "-f", id.trim()]).ok();

    // ENTRYPOINT, with CMD or the run's command; --entrypoint drops CMD.
    store
        .tupper(&[
            "import",
            "-c",
            r#"ENTRYPOINT ["echo", "ep"]"#,
            "-c",
            r#"CMD ["default"]"#,
            "-c",
            "USER 1000",
            "ep",
            tar,
        ])
        .ok();
    assert_eq!(run(&store, &["ep"]), "ep default\n");
    assert_eq!(run(&store, &["ep", "x", "y"]), "ep x y\n");
    assert_eq!(run(&store, &["--entrypoint", "/bin/echo", "ep"]), "\n");
    assert_eq!(
        run(&store, &["--entrypoint", "/bin/echo", "ep", "z"]),
        "z\n"
    );
    assert_eq!(
        run(&store, &["--entrypoint", "", "ep", "id", "-u"]),
        "1000\n"
    );
    assert_eq!(
        run(&store, &["--entrypoint", "", "-u", "0", "ep", "id", "-u"]),
        "0\n"
    );

    // commit takes the container's configuration, as docker's: the run's
    // command is the new image's CMD, the image's ENV and the rest stay;
    // --change changes it.
    store
        .tupper(&[
            "run", "--net", "none", "--name", "m", "cfg", "touch", "/made",
        ])
        .ok();
    store.tupper(&["commit", "m", "kept"]).ok();
    let kept = &image(&store, "kept")["config"];
    assert_eq!(kept["cmd"], serde_json::json!(["touch", "/made"]), "{kept}");
    assert_eq!(kept["env"], serde_json::json!(["GREETING=hi"]), "{kept}");
    assert_eq!(kept["workdir"], "/srv", "{kept}");
    assert_eq!(run(&store, &["kept"]), "");
    assert_eq!(run(&store, &["kept", "ls", "/made"]), "/made\n");
    store
        .tupper(&["commit", "-c", "CMD ls /made", "m", "changed"])
        .ok();
    assert_eq!(run(&store, &["changed"]), "/made\n");
    assert_eq!(
        image(&store, "changed")["config"]["env"],
        serde_json::json!(["GREETING=hi"])
    );
    assert_eq!(image(&store, "changed")["read_only"], true);
    // A container started again runs what it ran, whatever its image now.
    store.tupper(&["rmi", "cfg"]).ok();
    assert_eq!(store.tupper(&["start", "-a", "m"]).ok(), "");
    store.tupper(&["rm", "m"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn the_configuration_comes_from_change_only() {
    let store = store_with_busybox();
    // An archive whose root carries the attribute: the import drops it.
    let root = store.scratch().join("root");
    std::fs::create_dir(&root).unwrap();
    sh(
        "tar",
        &[
            "-xf",
            busybox_tar().to_str().unwrap(),
            "-C",
            root.to_str().unwrap(),
        ],
    );
    rustix::fs::setxattr(
        &root,
        "trusted.tupper.config",
        br#"{"cmd":["echo","smuggled"]}"#,
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let tar = store.scratch().join("x.tar");
    sh(
        "tar",
        &[
            "--xattrs",
            "--xattrs-include=*",
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    );
    store.tupper(&["import", "x", tar.to_str().unwrap()]).ok();
    assert!(image(&store, "x").get("config").is_none());
    assert_eq!(run(&store, &["x", "echo", "plain"]), "plain\n");

    // Bad instructions: one-line errors, no image made.
    let bb = busybox_tar().to_str().unwrap();
    store
        .tupper(&["run", "--net", "none", "--name", "c", "bb", "true"])
        .ok();
    let mid = store.state();
    for (args, want) in [
        (
            vec!["import", "-c", "VOLUME /data", "y", bb],
            "VOLUME is not supported",
        ),
        (
            vec!["import", "-c", "RUN make", "y", bb],
            "not an instruction",
        ),
        (
            vec!["import", "-c", "CMD [1]", "y", bb],
            "not a JSON array of strings",
        ),
        (
            vec!["import", "-c", "WORKDIR rel", "y", bb],
            "WORKDIR must be an absolute path",
        ),
        (
            vec!["commit", "-c", "STOPSIGNAL NOPE", "c", "y"],
            "STOPSIGNAL",
        ),
    ] {
        let err = store.tupper(&args).fails(125);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    store.state().assert_same(&mid, "bad --change");
    store.tupper(&["rm", "c"]).ok();
    store.assert_no_leftovers();
}

/// `commit` gives the new image the container's configuration, as docker's
/// does: the run's command, entrypoint, `-e`, `-w`, `-u` and labels over
/// its image's; a bare `-e KEY` as the start took it.
#[test]
fn commit_takes_the_runs_configuration() {
    let store = store_with_busybox();
    let mut c = store.cmd();
    c.env("TUPPER_TEST_FROM_HOST", "host-value").args([
        "run",
        "--net",
        "none",
        "--name",
        "r",
        "-e",
        "A=1",
        "-e",
        "TUPPER_TEST_FROM_HOST",
        "-e",
        "TUPPER_TEST_UNSET",
        "-w",
        "/work",
        "-u",
        "1000",
        "--label",
        "k=v",
        "--entrypoint",
        "/bin/echo",
        "bb",
        "made",
    ]);
    let out = run_cmd(c, None, DEFAULT_TIMEOUT);
    assert_eq!(out.ok(), "made\n");
    store.tupper(&["commit", "r", "rimg"]).ok();
    let config = &image(&store, "rimg")["config"];
    assert_eq!(
        *config,
        serde_json::json!({
            "cmd": ["made"],
            "entrypoint": ["/bin/echo"],
            "env": ["A=1", "TUPPER_TEST_FROM_HOST=host-value"],
            "workdir": "/work",
            "user": "1000",
            "labels": {"k": "v"},
        }),
        "{config}"
    );
    // And runs so.
    let out = run(&store, &["rimg"]);
    assert_eq!(out, "made\n");
    let out = run(
        &store,
        &[
            "--entrypoint",
            "",
            "rimg",
            "sh",
            "-c",
            "echo $A $(id -u) $(pwd)",
        ],
    );
    assert_eq!(out, "1 1000 /work\n");
    // --change goes over it.
    store
        .tupper(&[
            "commit",
            "-c",
            "CMD [\"other\"]",
            "-c",
            "ENV B=2",
            "r",
            "rimg2",
        ])
        .ok();
    let config = &image(&store, "rimg2")["config"];
    assert_eq!(config["cmd"], serde_json::json!(["other"]), "{config}");
    assert_eq!(
        config["env"],
        serde_json::json!(["A=1", "TUPPER_TEST_FROM_HOST=host-value", "B=2"])
    );
    store.tupper(&["rm", "r"]).ok();
    store.tupper(&["rmi", "rimg", "rimg2"]).ok();
    store.assert_no_leftovers();
}
