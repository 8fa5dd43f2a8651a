//! `--restart` (docker's restart policies): the process that holds a
//! detached container starts it again when it ends, as its policy says,
//! until a user stops it.

mod common;

use common::*;
use std::time::Duration;

/// Container `name`'s record, as `inspect` shows it.
fn inspect(store: &TestStore, name: &str) -> serde_json::Value {
    let out = store.tupper(&["inspect", name]).ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

/// The lines of container `name`'s log.
fn log_lines(store: &TestStore, name: &str) -> usize {
    store.tupper(&["logs", name]).ok().lines().count()
}

/// Waits (at most 20 s) until `cond` holds of container `name`'s record
/// (and its log's lines); asserts that it did, saying `what` did not.
#[track_caller]
fn wait_until(
    store: &TestStore,
    name: &str,
    what: &str,
    cond: impl Fn(&serde_json::Value, usize) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let done = wait_for(Duration::from_secs(20), || {
        last = inspect(store, name);
        cond(&last, log_lines(store, name))
    });
    assert!(done, "{name}: {what}: {last}");
    last
}

/// Its restarts so far.
fn restarts(r: &serde_json::Value) -> u64 {
    r["restart_count"].as_u64().unwrap_or(0)
}

/// Waits until container `name` has been restarted `n` times and is not
/// running.
#[track_caller]
fn wait_restarted_then_ended(store: &TestStore, name: &str, n: u64) {
    wait_until(
        store,
        name,
        &format!("not restarted {n} times, then ended"),
        |r, _| restarts(r) == n && r["status"] == "exited",
    );
}

/// Asserts that container `name` neither runs nor runs again for a while
/// (longer than any wait of its policy so far): its log stays as it is.
#[track_caller]
fn assert_stays_ended(store: &TestStore, name: &str) {
    let lines = log_lines(store, name);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(log_lines(store, name), lines, "it ran again");
    assert_eq!(inspect(store, name)["status"], "exited");
}

/// `on-failure:2`: a failing command runs three times (two restarts,
/// counted), then stays exited with its last code; `on-failure` does not
/// restart a command that succeeded.
#[test]
fn on_failure_restarts_a_failure_at_most_max_times() {
    let store = store_with_busybox();
    store.detached(
        &["--name", "flaky", "--restart", "on-failure:2"],
        &["sh", "-c", "echo run; exit 3"],
    );
    wait_restarted_then_ended(&store, "flaky", 2);
    assert_stays_ended(&store, "flaky");
    let r = inspect(&store, "flaky");
    assert_eq!(r["exit_code"], 3, "{r}");
    assert_eq!(r["restart"], "on-failure:2", "{r}");
    assert_eq!(log_lines(&store, "flaky"), 3);

    store.detached(
        &["--name", "fine", "--restart", "on-failure"],
        &["sh", "-c", "echo run"],
    );
    wait_restarted_then_ended(&store, "fine", 0);
    assert_stays_ended(&store, "fine");
    assert_eq!(log_lines(&store, "fine"), 1);
    store.tupper(&["rm", "flaky", "fine"]).ok();
    store.assert_no_leftovers();
}

/// `always`: restarted whatever its exit, until `stop` (even one that
/// finds it between two runs); a `start` by hand starts the count over and
/// the policy again; `rm -f` ends it for good.
#[test]
fn always_restarts_until_stopped_and_a_start_starts_over() {
    let store = store_with_busybox();
    store.detached(
        &["--name", "loop", "--restart", "always"],
        &["sh", "-c", "echo run; sleep 0.2"],
    );
    wait_until(&store, "loop", "not restarted", |r, _| restarts(r) >= 2);
    assert_eq!(store.tupper(&["stop", "-t", "1", "loop"]).ok(), "loop\n");
    assert_stays_ended(&store, "loop");
    assert_eq!(inspect(&store, "loop")["stopped"], "canceled");

    assert_eq!(store.tupper(&["start", "loop"]).ok(), "loop\n");
    let r = inspect(&store, "loop");
    assert!(r.get("stopped").is_none(), "a start forgets the stop: {r}");
    wait_until(&store, "loop", "not restarted after a start", |r, _| {
        restarts(r) >= 1
    });
    store.tupper(&["rm", "-f", "loop"]).ok();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(store.ps_json(true).is_empty(), "{:?}", store.ps_json(true));
    store.assert_no_leftovers();
}

/// `kill` as docker's: SIGKILL (or any signal, for a container without a
/// stop signal of its own) ends every policy's restarts; another signal
/// than its stop signal ends `unless-stopped`'s, not `always`'s.
#[test]
fn kill_ends_restarts_as_dockers_does() {
    let store = store_with_busybox();
    let wait_then_fail = "echo run; trap 'exit 1' USR1; while :; do sleep 0.05; done";
    let running = |name: &str| {
        wait_until(&store, name, "does not run", |r, lines| {
            r["status"] == "running" && lines >= 1
        });
    };
    store.detached(
        &["--name", "k", "--restart", "always"],
        &["sh", "-c", wait_then_fail],
    );
    running("k");
    store.tupper(&["kill", "k"]).ok();
    wait_restarted_then_ended(&store, "k", 0);
    assert_stays_ended(&store, "k");

    for (policy, restarted) in [("unless-stopped", false), ("always", true)] {
        let name = format!("u-{policy}");
        store.detached(
            &[
                "--name",
                &name,
                "--restart",
                policy,
                "--stop-signal",
                "QUIT",
            ],
            &["sh", "-c", wait_then_fail],
        );
        running(&name);
        store.tupper(&["kill", "-s", "USR1", &name]).ok();
        match restarted {
            false => {
                wait_restarted_then_ended(&store, &name, 0);
                assert_stays_ended(&store, &name);
                assert_eq!(inspect(&store, &name)["stopped"], "manually");
            }
            true => {
                wait_until(&store, &name, "not restarted", |r, _| {
                    restarts(r) == 1 && r["status"] == "running"
                });
                store.tupper(&["stop", "-t", "1", &name]).ok();
            }
        }
    }
    store
        .tupper(&["rm", "k", "u-unless-stopped", "u-always"])
        .ok();
    store.assert_no_leftovers();
}

/// A container made with a policy (`create`) gets it when `start` runs
/// it in the background; the record keeps it.
#[test]
fn a_created_container_restarts_once_started() {
    let store = store_with_busybox();
    store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--name",
            "made",
            "--restart",
            "on-failure:1",
            "bb",
            "sh",
            "-c",
            "echo run; exit 2",
        ])
        .ok();
    assert_eq!(inspect(&store, "made")["restart"], "on-failure:1");
    store.tupper(&["start", "made"]).ok();
    wait_restarted_then_ended(&store, "made", 1);
    assert_eq!(log_lines(&store, "made"), 2);
    store.tupper(&["rm", "made"]).ok();
    store.assert_no_leftovers();
}

/// What cannot restart is refused, with one line, and nothing is made: a
/// run in the foreground (nothing would hold it), `--rm`, a bad policy.
#[test]
fn what_cannot_restart_is_refused() {
    let store = store_with_busybox();
    let before = store.state();
    for (args, want) in [
        (
            &["run", "--net", "none", "--restart", "always", "bb", "true"][..],
            "--restart always without -d",
        ),
        (
            &[
                "run",
                "-d",
                "--rm",
                "--net",
                "none",
                "--restart",
                "always",
                "bb",
                "true",
            ],
            "--restart always with --rm",
        ),
        (
            &[
                "run",
                "-d",
                "--net",
                "none",
                "--restart",
                "on-failure:0",
                "bb",
                "true",
            ],
            "invalid --restart \"on-failure:0\"",
        ),
        (
            &[
                "create",
                "--net",
                "none",
                "--restart",
                "sometimes",
                "bb",
                "true",
            ],
            "invalid --restart \"sometimes\"",
        ),
    ] {
        let line = store.tupper(args).fails(125);
        assert!(line.contains(want), "{args:?}: {line}");
        before.assert_same(&store.state(), &format!("{args:?}"));
    }
    store.assert_no_leftovers();
}

/// A signal that asks the holder of a detached container to end (SIGTERM:
/// a shutdown, a service manager) is passed on to the container, and no
/// policy starts it again: whoever sent it wants both to end.
#[test]
fn an_ending_signal_to_its_holder_ends_the_restarts() {
    let store = store_with_busybox();
    store.detached(
        &["--name", "held", "--restart", "always"],
        &[
            "sh",
            "-c",
            "echo run; trap 'exit 0' TERM; while :; do sleep 0.05; done",
        ],
    );
    wait_until(&store, "held", "does not run", |r, lines| {
        r["pid"].as_i64().is_some() && lines >= 1
    });
    let holder = holder_of(&store, "held");
    kill(holder, 15);
    assert!(
        wait_for(Duration::from_secs(20), || !std::path::Path::new(&format!(
            "/proc/{holder}"
        ))
        .exists()
            || std::fs::read_to_string(format!("/proc/{holder}/stat"))
                .is_ok_and(|s| s.contains(") Z "))),
        "its holder did not end"
    );
    let r = inspect(&store, "held");
    assert_eq!(r["status"], "exited", "{r}");
    assert_eq!(r["exit_code"], 0, "{r}");
    assert!(r.get("restart_count").is_none(), "{r}");
    assert_stays_ended(&store, "held");
    store.tupper(&["rm", "held"]).ok();
    store.assert_no_leftovers();
}

/// `update --restart` (docker's) changes the policy of a running
/// container, which applies when its command ends next; not of a `--rm`
/// one.
#[test]
fn update_gives_a_running_container_a_policy() {
    let store = store_with_busybox();
    store.detached(
        &["--name", "upd"],
        &["sh", "-c", "echo run; sleep 1; exit 1"],
    );
    assert_eq!(
        store
            .tupper(&["update", "--restart", "on-failure:1", "upd"])
            .ok(),
        "upd\n"
    );
    assert_eq!(inspect(&store, "upd")["restart"], "on-failure:1");
    wait_restarted_then_ended(&store, "upd", 1);
    assert_eq!(log_lines(&store, "upd"), 2);
    store.tupper(&["update", "--restart", "no", "upd"]).ok();
    assert!(inspect(&store, "upd").get("restart").is_none());

    store.detached(&["--rm", "--name", "gone"], &["sleep", "100"]);
    let line = store
        .tupper(&["update", "--restart", "always", "gone"])
        .fails(125);
    assert!(line.contains("it is removed when it ends (--rm)"), "{line}");
    store.tupper(&["rm", "-f", "gone", "upd"]).ok();
    store.assert_no_leftovers();
}

/// While its policy waits to start it again, `ps` shows it `Restarting`
/// (also without `-a`, and for `--filter status=restarting`), as docker's;
/// `rm` refuses it then (`rm -f` does not); `stop` ends the wait.
#[test]
fn a_container_between_two_runs_is_restarting() {
    let store = store_with_busybox();
    let id = store.detached(
        &["--name", "crash", "--restart", "always"],
        &["sh", "-c", "exit 1"],
    );
    // From the fifth restart, the waits (1.6 s, 3.2 s, ...) are most of the time.
    wait_until(&store, "crash", "not waiting after 4 restarts", |r, _| {
        restarts(r) >= 4 && r["restarting"] == true
    });
    let ps = store.tupper(&["ps"]).ok();
    assert!(ps.contains("Restarting (1) "), "{ps}");
    let listed = store
        .tupper(&["ps", "-q", "--filter", "status=restarting"])
        .ok();
    assert_eq!(listed.trim(), &id[..12], "{listed}");
    let line = store.tupper(&["rm", "crash"]).fails(125);
    assert!(
        line.contains("its restart policy is about to start it again"),
        "{line}"
    );
    // Nor does prune take it (it is not stopped).
    let pruned = store.tupper(&["prune"]).ok();
    assert!(!pruned.contains(&id[..12]), "{pruned}");
    assert_eq!(inspect(&store, "crash")["id"], id.as_str());
    assert_eq!(store.tupper(&["stop", "crash"]).ok(), "crash\n");
    let r = inspect(&store, "crash");
    assert!(r.get("restarting").is_none(), "{r}");
    assert_eq!(r["stopped"], "canceled", "{r}");
    assert_stays_ended(&store, "crash");
    store.tupper(&["rm", "crash"]).ok();
    assert!(!store
        .state_entries()
        .iter()
        .any(|e| e.ends_with(".restart")));
    store.assert_no_leftovers();
}

/// `start --all` (podman's, with `ps`'s filters and podman's
/// `restart-policy` key): every container that does not run and passes
/// starts, in the background; what runs is left alone; one that cannot
/// start (a terminal) is reported and the others start all the same. After
/// a reboot, `start --all -f restart-policy=always` is docker's daemon
/// starting its `always` containers.
#[test]
fn start_all_starts_what_does_not_run_and_passes_the_filters() {
    let store = store_with_busybox();
    let create = |name: &str, options: &[&str]| {
        let mut v = vec!["create", "--net", "none", "--name", name];
        v.extend(options);
        v.extend(["bb", "sleep", "60"]);
        store.tupper(&v).ok();
    };
    create("a", &["--restart", "always"]);
    create("b", &[]);
    create("d", &["--restart", "unless-stopped"]);
    store
        .tupper(&[
            "run",
            "-d",
            "--net",
            "none",
            "--name",
            "c",
            "--restart",
            "always",
            "bb",
            "sleep",
            "60",
        ])
        .ok();
    let status = |name: &str| {
        inspect(&store, name)["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let c_started = inspect(&store, "c")["started_unix"].clone();

    let out = store
        .tupper(&["start", "--all", "-f", "restart-policy=always"])
        .ok();
    assert_eq!(out, "a\n");
    assert_eq!(
        ["a", "b", "c", "d"].map(status),
        ["running", "created", "running", "created"]
    );
    assert_eq!(
        inspect(&store, "c")["started_unix"],
        c_started,
        "c was started again"
    );

    store
        .tupper(&["create", "-t", "--net", "none", "--name", "t", "bb", "sh"])
        .ok();
    let out = store.tupper(&["start", "--all"]);
    let line = out.fails(125);
    assert!(
        line.contains("start t") && line.contains("terminal"),
        "{line}"
    );
    let mut started: Vec<&str> = out.stdout.lines().collect();
    started.sort();
    assert_eq!(started, ["b", "d"]);
    assert_eq!(
        ["b", "d", "t"].map(status),
        ["running", "running", "created"]
    );

    let e = store.tupper(&["start", "--all", "a"]).fails(125);
    assert!(e.contains("--all"), "{e}");
    store.tupper(&["rm", "-f", "a", "b", "c", "d", "t"]).ok();
    store.assert_no_leftovers();
}

/// The host's process of container `name`'s holder (the parent of its
/// PID 1), once it runs.
fn holder_of(store: &TestStore, name: &str) -> i32 {
    let r = wait_until(store, name, "does not run", |r, _| {
        r["pid"].as_i64().is_some()
    });
    let pid1 = r["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid1}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().parse().unwrap()
}

/// `start --all --boot` starts what docker's daemon starts as it starts:
/// `always` whatever ended it, `unless-stopped` unless a user stopped it
/// (a crash of its holder is no stop), `on-failure` after a failed exit;
/// never a container that only was created, nor one without a policy.
#[test]
fn start_all_boot_starts_what_docker_s_daemon_would() {
    let store = store_with_busybox();
    let forever = [
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 0.05; done",
    ];
    let detached = |name: &str, policy: &str, args: &[&str]| {
        store.detached(&["--name", name, "--restart", policy], args);
    };
    // Stopped by a user.
    detached("always-stopped", "always", &forever);
    detached("unless-stopped", "unless-stopped", &forever);
    store
        .tupper(&["stop", "always-stopped", "unless-stopped"])
        .ok();
    // Its holder killed (a crash, a power cut): dead.
    detached("unless-crashed", "unless-stopped", &forever);
    kill(holder_of(&store, "unless-crashed"), 9);
    wait_until(&store, "unless-crashed", "is not dead", |r, _| {
        r["status"] == "dead"
    });
    // Ended by themselves, their restarts used up.
    detached("failed", "on-failure:1", &["sh", "-c", "exit 3"]);
    wait_restarted_then_ended(&store, "failed", 1);
    detached("succeeded", "on-failure", &["true"]);
    store.tupper(&["wait", "succeeded"]).ok();
    store.detached(&["--name", "no-policy"], &["true"]);
    store.tupper(&["wait", "no-policy"]).ok();
    store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--name",
            "created",
            "--restart",
            "always",
            "bb",
            "true",
        ])
        .ok();

    let out = store.tupper(&["start", "--all", "--boot"]).ok();
    let mut started: Vec<&str> = out.lines().collect();
    started.sort();
    assert_eq!(started, ["always-stopped", "failed", "unless-crashed"]);
    let status = |name: &str| {
        inspect(&store, name)["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("unless-stopped"), "exited");
    assert_eq!(status("created"), "created");
    // With the filters too.
    store
        .tupper(&["stop", "always-stopped", "unless-crashed"])
        .ok();
    let out = store
        .tupper(&["start", "--all", "--boot", "-f", "name=always-stopped"])
        .ok();
    assert_eq!(out, "always-stopped\n");
    assert_eq!(status("unless-crashed"), "exited");
    let names = [
        "always-stopped",
        "unless-stopped",
        "unless-crashed",
        "failed",
        "succeeded",
        "no-policy",
        "created",
    ];
    let mut rm = vec!["rm", "-f"];
    rm.extend(names);
    store.tupper(&rm).ok();
    store.assert_no_leftovers();
}
