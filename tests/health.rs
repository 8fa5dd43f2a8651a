//! Health checks (docker's `HEALTHCHECK`, `run --health-*`): probes run in
//! the container while it runs, their state in `ps` and `inspect`.

mod common;

use common::*;
use std::time::Duration;

/// The `health` of container `name` as `inspect` shows it (`null`: none).
fn health(store: &TestStore, name: &str) -> serde_json::Value {
    store.inspect(name)["health"].clone()
}

/// Waits (at most 20 s) until container `name`'s health status is `status`.
#[track_caller]
fn wait_status(store: &TestStore, name: &str, status: &str) {
    assert!(
        wait_for(Duration::from_secs(20), || health(store, name)["status"]
            == status),
        "{name} never {status}: {}",
        health(store, name)
    );
}

/// `--health-cmd`: `starting`, `unhealthy` after `--health-retries`
/// failures in a row, `healthy` once a probe succeeds; `ps` shows it after
/// `Up` and filters on it, `inspect` keeps the last probes with their
/// output. During `--health-start-period` failures do not count, and
/// probes come every `--health-start-interval`. The state
/// goes with the container.
#[test]
fn a_check_goes_from_starting_to_unhealthy_to_healthy() {
    let store = store_with_busybox();
    store.detached(
        &[
            "--name",
            "c",
            "--health-cmd",
            "test -e /ok && echo fine",
            "--health-interval",
            "0.2s",
            "--health-retries",
            "2",
        ],
        &["sleep", "1000"],
    );
    store.detached(
        &[
            "--name",
            "late",
            "--health-cmd",
            "false",
            "--health-interval",
            "1h",
            "--health-retries",
            "1",
            "--health-start-period",
            "1h",
            "--health-start-interval",
            "0.1s",
        ],
        &["sleep", "1000"],
    );
    wait_status(&store, "c", "unhealthy");
    let h = health(&store, "c");
    assert!(h["failing_streak"].as_u64().unwrap() >= 2, "{h}");
    let ps = store.tupper(&["ps"]).ok();
    assert!(ps.contains("(unhealthy)"), "{ps}");
    store.tupper(&["exec", "c", "touch", "/ok"]).ok();
    wait_status(&store, "c", "healthy");
    let h = health(&store, "c");
    assert_eq!(h["failing_streak"], 0, "{h}");
    let last = h["log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["exit_code"], &last["output"]),
        (&0.into(), &"fine\n".into())
    );
    assert!(h["log"].as_array().unwrap().len() <= 5, "{h}");
    let ps = store.tupper(&["ps"]).ok();
    assert!(
        ps.lines().any(|l| l.contains(" c ") || l.ends_with(" c")) && ps.contains("(healthy)"),
        "{ps}"
    );
    let id = store.inspect("c")["id"].as_str().unwrap().to_string();
    assert_eq!(
        store
            .tupper(&["ps", "-q", "-f", "health=healthy"])
            .ok()
            .trim(),
        &id[..12]
    );
    // Failures in the start period do not count; there, until a probe
    // succeeds, probes come every --health-start-interval, not every
    // --health-interval (an hour).
    assert!(
        wait_for(Duration::from_secs(20), || health(&store, "late")["log"]
            .as_array()
            .is_some_and(|l| l.len() >= 3)),
        "{}",
        health(&store, "late")
    );
    let h = health(&store, "late");
    assert_eq!(
        (&h["status"], &h["failing_streak"]),
        (&"starting".into(), &0.into()),
        "{h}"
    );
    let ps = store.tupper(&["ps"]).ok();
    assert!(ps.contains("(health: starting)"), "{ps}");
    let line = store.tupper(&["ps", "-f", "health=sick"]).fails(125);
    assert!(line.contains("not a health status"), "{line}");
    store.tupper(&["rm", "-f", "c", "late"]).ok();
    let left: Vec<String> = store
        .state_entries()
        .into_iter()
        .filter(|e| e.contains("health"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    store.assert_no_leftovers();
}

/// A probe's output goes to its state, not to the terminal of `run`; a
/// probe that runs past `--health-timeout` is killed and fails.
#[test]
fn a_probe_is_killed_after_its_timeout_and_kept_from_the_output() {
    let store = store_with_busybox();
    let out = store.tupper(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--health-cmd",
        "echo PROBE; echo PROBE >&2",
        "--health-interval",
        "0.1s",
        "bb",
        "sh",
        "-c",
        "sleep 1; echo done",
    ]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "done\n"), "{out:?}");
    assert!(!out.stderr.contains("PROBE"), "{out:?}");
    store.detached(
        &[
            "--name",
            "slow",
            "--health-cmd",
            "exec sleep 1001",
            "--health-timeout",
            "0.2s",
            "--health-interval",
            "0.1s",
            "--health-retries",
            "1",
        ],
        &["sleep", "1000"],
    );
    wait_status(&store, "slow", "unhealthy");
    let last = health(&store, "slow")["log"][0].clone();
    assert_eq!(last["exit_code"], -1, "{last}");
    assert_eq!(last["output"], "Health check exceeded timeout (200ms)");
    let probes = store
        .tupper(&["top", "slow"])
        .ok()
        .lines()
        .filter(|l| l.ends_with("sleep 1001"))
        .count();
    assert!(probes <= 1, "probes past their timeout still run");
    store.tupper(&["rm", "-f", "slow"]).ok();
    store.assert_no_leftovers();
}

/// The image's `HEALTHCHECK` (`import -c`) checks its containers; `run`'s
/// options win field by field; `--no-healthcheck` turns it off.
#[test]
fn the_images_check_and_the_runs_options_over_it() {
    let store = store_with_busybox();
    let tar = busybox_tar().to_str().unwrap().to_string();
    store
        .tupper(&[
            "import",
            "-c",
            "HEALTHCHECK --interval=0.1s --retries=1 CMD test -e /ok",
            "hc",
            &tar,
        ])
        .ok();
    // One container on the image's check, one with the run's command over
    // it, one without any.
    for (name, options) in [
        ("a", &[][..]),
        ("b", &["--health-cmd", "true"]),
        ("n", &["--no-healthcheck"]),
    ] {
        let mut args = vec!["run", "-d", "--net", "none", "--name", name];
        args.extend(options);
        args.extend(["hc", "sleep", "1000"]);
        store.tupper(&args).ok();
    }
    wait_status(&store, "a", "unhealthy");
    wait_status(&store, "b", "healthy");
    let b = store.inspect("b")["config"]["healthcheck"].clone();
    assert_eq!(b["test"], serde_json::json!(["CMD-SHELL", "true"]), "{b}");
    assert_eq!(b["interval_ms"], 100, "{b}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(health(&store, "n").is_null(), "{}", health(&store, "n"));
    let short = |name: &str| store.inspect(name)["id"].as_str().unwrap()[..12].to_string();
    let none = store.tupper(&["ps", "-q", "-f", "health=none"]).ok();
    assert_eq!(none.trim(), short("n"));
    for (args, error) in [
        (
            &["--health-interval", "5"][..],
            "invalid --health-interval \"5\"",
        ),
        (&["--health-retries", "x"], "invalid --health-retries \"x\""),
        (&["--health-cmd", " "], "--health-cmd needs a command"),
    ] {
        let mut v = vec!["run", "--rm", "--net", "none"];
        v.extend(args);
        v.extend(["hc", "true"]);
        let line = store.tupper(&v).fails(125);
        assert!(line.contains(error), "{args:?}: {line}");
    }
    let line = store
        .tupper(&[
            "import",
            "-c",
            "HEALTHCHECK --interval 1s CMD x",
            "bad",
            &tar,
        ])
        .fails(125);
    assert!(line.contains("HEALTHCHECK --interval"), "{line}");
    store.tupper(&["rm", "-f", "a", "b", "n"]).ok();
    store.tupper(&["rmi", "hc"]).ok();
    store.assert_no_leftovers();
}

/// `--health-on-failure` (podman's): `kill` ends an unhealthy container
/// with SIGKILL, after which its restart policy applies (exit 137:
/// `on-failure` starts it again); `stop` stops it as `tupper stop` does
/// (its stop signal), and no policy starts it again.
#[test]
fn health_on_failure_kills_or_stops_an_unhealthy_container() {
    let store = store_with_busybox();
    let failing = [
        "--health-cmd",
        "false",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
    ];
    let mut opts = vec![
        "--name",
        "k",
        "--health-on-failure",
        "kill",
        "--restart",
        "on-failure:1",
    ];
    opts.extend(failing);
    store.detached(&opts, &["sleep", "60"]);
    // Killed, started again once (the policy's one restart), killed again.
    assert!(
        wait_for(Duration::from_secs(30), || {
            let r = store.inspect("k");
            r["status"] == "exited" && r["restart_count"] == 1 && r["restarting"].is_null()
        }),
        "{}",
        store.inspect("k")
    );
    let r = store.inspect("k");
    assert_eq!(r["exit_code"], 137, "{r}");
    assert_eq!(r["health_on_failure"], "kill", "{r}");

    let mut opts = vec![
        "--name",
        "s",
        "--health-on-failure",
        "stop",
        "--restart",
        "always",
    ];
    opts.extend(failing);
    let script = "trap 'exit 3' TERM; while :; do sleep 0.05; done";
    store.detached(&opts, &["sh", "-c", script]);
    assert_eq!(store.tupper(&["wait", "s"]).ok(), "3\n");
    std::thread::sleep(Duration::from_millis(500));
    let r = store.inspect("s");
    assert_eq!(r["status"], "exited", "{r}");
    assert!(r["restart_count"].is_null(), "always started it again: {r}");

    let line = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--health-on-failure",
            "restart",
            "bb",
            "true",
        ])
        .fails(125);
    assert!(
        line.contains("--health-on-failure") && line.contains("kill"),
        "{line}"
    );
    store.tupper(&["rm", "k", "s"]).ok();
    store.assert_no_leftovers();
}
