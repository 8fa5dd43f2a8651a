//! Labels (`run --label`, `--label-file`) and the filters of `ps` and
//! `prune` (docker's `--filter KEY=VALUE`), `ps -n` and `ps -l`.

mod common;

use common::*;

/// `tupper ARGS...`'s output lines (it must succeed).
fn lines(store: &TestStore, args: &[&str]) -> Vec<String> {
    store
        .tupper(args)
        .ok()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn labels_are_kept_and_ps_and_prune_filter_as_dockers() {
    let store = store_with_busybox();
    let file = store.scratch().join("labels");
    std::fs::write(&file, "# the suite\nsuite=y\n\n  owner=me\n").unwrap();
    let a = store.detached(
        &["--name", "a", "-l", "suite=x", "--label", "n=1"],
        &["sleep", "1000"],
    );
    let run = |args: &[&str]| {
        let mut v = vec!["run", "--net", "none"];
        v.extend(args);
        store.tupper(&v)
    };
    run(&[
        "--name",
        "b",
        "--label-file",
        file.to_str().unwrap(),
        "-l",
        "owner=you",
        "bb",
        "sh",
        "-c",
        "exit 3",
    ])
    .code(3);
    run(&[
        "--name", "c", "-l", "suite=x", "--tmpfs", "/scratch", "bb", "true",
    ])
    .ok();
    store
        .tupper(&["create", "--net", "none", "--name", "d", "bb", "true"])
        .ok();
    let id = |name: &str| store.inspect(name)["id"].as_str().unwrap().to_string();
    let (b, c, d) = (id("b"), id("c"), id("d"));

    assert_eq!(
        store.inspect("a")["labels"],
        serde_json::json!({"n": "1", "suite": "x"})
    );
    assert_eq!(
        store.inspect("b")["labels"],
        serde_json::json!({"owner": "you", "suite": "y"}),
        "the file's, then -l's"
    );
    assert!(store.inspect("d").get("labels").is_none());

    let ps = |args: &[&str]| {
        let mut v = vec!["ps", "-q"];
        v.extend(args);
        lines(&store, &v)
    };
    // Running only, unless -a, or a filter of what does not run.
    assert_eq!(ps(&["-f", "label=suite=x"]), vec![a.clone()]);
    assert_eq!(ps(&["-a", "-f", "label=suite=x"]), [c.clone(), a.clone()]);
    assert_eq!(
        ps(&["-a", "--filter", "label=suite"]),
        [c.clone(), b.clone(), a.clone()]
    );
    assert_eq!(
        ps(&["-a", "-f", "label=suite", "-f", "label=n"]),
        vec![a.clone()]
    );
    assert_eq!(ps(&["-f", "status=exited"]), [c.clone(), b.clone()]);
    assert_eq!(ps(&["-f", "exited=3"]), vec![b.clone()]);
    assert_eq!(ps(&["-f", "status=created"]), vec![d.clone()]);
    assert_eq!(
        ps(&["-f", "status=created", "-f", "status=running"]),
        [d.clone(), a.clone()]
    );
    assert_eq!(ps(&["-a", "-f", "name=c"]), vec![c.clone()]);
    assert_eq!(
        ps(&["-a", "-f", &format!("id={}", &b[..6])]),
        vec![b.clone()]
    );
    assert_eq!(ps(&["-a", "-f", "volume=/scratch"]), vec![c.clone()]);
    assert_eq!(ps(&["-a", "-f", "ancestor=bb"]).len(), 4);
    assert_eq!(ps(&["-a", "-f", "ancestor=other"]), Vec::<String>::new());
    assert_eq!(ps(&["-n", "2"]), [d.clone(), c.clone()]);
    assert_eq!(ps(&["-l"]), vec![d.clone()]);
    store.tupper(&["pause", "a"]).ok();
    assert_eq!(ps(&["-f", "status=paused"]), vec![a.clone()]);
    assert_eq!(ps(&["-f", "status=running"]), Vec::<String>::new());
    store.tupper(&["unpause", "a"]).ok();
    assert_eq!(ps(&["-f", "status=running"]), vec![a.clone()]);

    // Made after or before another (a, b, c, d in that order), in any
    // state, as docker's.
    assert_eq!(ps(&["-f", "since=b"]), [d.clone(), c.clone()]);
    assert_eq!(ps(&["-f", "before=c"]), [b.clone(), a.clone()]);
    assert_eq!(
        ps(&["-f", "since=a", "-f", "before=d"]),
        [c.clone(), b.clone()]
    );
    // expose: what the configuration exposes (publish: unit tests).
    store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--name",
            "e",
            "--expose",
            "9000-9001",
            "bb",
            "true",
        ])
        .ok();
    assert_eq!(ps(&["-a", "-f", "expose=9001"]), vec![id("e")]);
    assert_eq!(ps(&["-a", "-f", "expose=9001/udp"]), Vec::<String>::new());
    assert_eq!(ps(&["-a", "-f", "publish=9001"]), Vec::<String>::new());
    store.tupper(&["rm", "e"]).ok();

    // prune: only what passes, and never what runs.
    assert_eq!(
        lines(&store, &["prune", "--filter", "until=1h"]),
        Vec::<String>::new()
    );
    assert_eq!(
        lines(&store, &["prune", "--filter", "label=suite=x"]),
        vec![c.clone()]
    );
    assert_eq!(
        lines(&store, &["prune", "--filter", "label!=owner"]),
        vec![d.clone()]
    );
    assert_eq!(ps(&["-a"]), [b.clone(), a.clone()]);
    // Another start keeps them.
    store.tupper(&["start", "-a", "b"]).code(3);
    assert_eq!(store.inspect("b")["labels"]["suite"], "y");
    // until: made before then (now: all but what runs).
    assert_eq!(
        lines(&store, &["prune", "--filter", "until=0s"]),
        vec![b.clone()]
    );
    store.tupper(&["rm", "-f", "a"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn bad_labels_and_filters_are_one_line_errors_that_change_nothing() {
    let store = store_with_busybox();
    let before = store.state();
    let missing = store.scratch().join("missing");
    for (args, want) in [
        (
            vec!["run", "--net", "none", "-l", "=v", "bb", "true"],
            "a label needs a key".to_string(),
        ),
        (
            vec![
                "run",
                "--net",
                "none",
                "--label-file",
                missing.to_str().unwrap(),
                "bb",
                "true",
            ],
            format!("read --label-file {}", missing.display()),
        ),
        (
            vec!["ps", "-f", "color=red"],
            "color is not a filter of ps".into(),
        ),
        (vec!["ps", "-f", "status=sleeping"], "not a status".into()),
        (vec!["ps", "-f", "exited=x"], "not an exit code".into()),
        (vec!["ps", "-f", "name"], "not KEY=VALUE".into()),
        (vec!["ps", "-n", "many"], "not a count".into()),
        (
            vec!["prune", "--filter", "name=x"],
            "name is not a filter of prune".into(),
        ),
        (vec!["prune", "--filter", "until=soon"], "not a time".into()),
        (
            vec!["ps", "-f", "since=nobody"],
            "no such container: nobody".into(),
        ),
        (
            vec!["ps", "-f", "publish=80/sctp"],
            "not PORT[-PORT]".into(),
        ),
    ] {
        let err = store.tupper(&args).fails(125);
        assert!(err.contains(&want), "{args:?}: {err}");
    }
    store.state().assert_same(&before, "bad labels and filters");
    store.assert_no_leftovers();
}
