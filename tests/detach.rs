//! `run -d`, `logs`, `stop` and `kill`: a container that runs in the
//! background, held by a tupper process of its own.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// `tupper run -d --net none OPTIONS... bb ARGS...` ([`TestStore::detached`]).
fn detached(store: &TestStore, options: &[&str], args: &[&str]) -> String {
    store.detached(options, args)
}

#[test]
fn a_detached_container_runs_logs_and_stops() {
    let store = store_with_busybox();
    let script = "echo out; echo err >&2; trap 'echo term; exit 3' TERM; \
                  while :; do sleep 0.05; done";
    let start = Instant::now();
    let id = detached(&store, &["--name", "web"], &["sh", "-c", script]);
    // run -d came back while the command runs: its holder has none of the
    // caller's pipes (else the harness would still be reading).
    assert!(start.elapsed() < Duration::from_secs(20));
    let s = store.ps_entry("web");
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["status"], "running", "{s}");
    let mut logs = String::new();
    for _ in 0..200 {
        logs = store.tupper(&["logs", "web"]).ok();
        if logs.lines().count() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(logs, "out\nerr\n");
    assert_eq!(store.tupper(&["stop", "web"]).ok(), "web\n");
    let s = store.ps_entry("web");
    assert_eq!(s["status"], "exited", "{s}");
    assert_eq!(s["exit_code"], 3, "{s}");
    assert_eq!(
        store.tupper(&["logs", id.as_str()]).ok(),
        "out\nerr\nterm\n"
    );
    // Stopping a stopped container is fine, as in docker.
    assert_eq!(store.tupper(&["stop", "web"]).ok(), "web\n");
    store.tupper(&["rm", "web"]).ok();
    assert!(!store.state_entries().iter().any(|e| e.ends_with(".log")));
    store.assert_no_leftovers();
}

#[test]
fn stop_kills_what_ignores_sigterm_after_the_timeout() {
    let store = store_with_busybox();
    // PID 1 without a handler ignores SIGTERM.
    detached(&store, &["--name", "sleeper"], &["sleep", "100"]);
    let start = Instant::now();
    store.tupper(&["stop", "-t", "1", "sleeper"]).ok();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(store.ps_entry("sleeper")["exit_code"], 137);
    // A --rm container is gone once stop returns.
    detached(&store, &["--rm", "--name", "gone"], &["sleep", "100"]);
    store.tupper(&["stop", "-t", "0", "gone"]).ok();
    assert!(!store.ps_json(true).iter().any(|r| r["name"] == "gone"));
    store.tupper(&["rm", "sleeper"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn kill_sends_the_signal_asked_for() {
    let store = store_with_busybox();
    detached(
        &store,
        &["--name", "k"],
        &[
            "sh",
            "-c",
            "trap 'echo usr1' USR1; echo ready; while :; do sleep 0.05; done",
        ],
    );
    // The signal goes only once the trap is set: sent before, it would end sh.
    let logs_until = |want: &str| {
        let mut logs = String::new();
        for _ in 0..250 {
            logs = store.tupper(&["logs", "k"]).ok();
            if logs == want {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        logs
    };
    assert_eq!(logs_until("ready\n"), "ready\n");
    store.tupper(&["kill", "-s", "SIGUSR1", "k"]).ok();
    assert_eq!(logs_until("ready\nusr1\n"), "ready\nusr1\n");
    assert_eq!(store.tupper(&["kill", "k"]).ok(), "k\n");
    // kill returns once the signal is sent; the exit is recorded soon after.
    let mut s = store.ps_entry("k");
    for _ in 0..500 {
        if s["status"] == "exited" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        s = store.ps_entry("k");
    }
    assert_eq!(s["exit_code"], 137, "{s}");
    let line = store.tupper(&["kill", "k"]).fails(125);
    assert!(line.contains("not running"), "{line}");
    let line = store.tupper(&["kill", "-s", "NOPE", "k"]).fails(125);
    assert!(line.contains("invalid kill -s \"NOPE\""), "{line}");
    store.tupper(&["rm", "k"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn logs_follow_until_the_container_ends() {
    let store = store_with_busybox();
    detached(
        &store,
        &["--name", "f"],
        &[
            "sh",
            "-c",
            "for i in 1 2 3; do echo $i; sleep 0.2; done; exit 5",
        ],
    );
    assert_eq!(store.tupper(&["logs", "-f", "f"]).ok(), "1\n2\n3\n");
    assert_eq!(store.ps_entry("f")["exit_code"], 5);
    // A container run in the foreground has no log.
    store
        .tupper(&["run", "--net", "none", "--name", "fg", "bb", "true"])
        .ok();
    let line = store.tupper(&["logs", "fg"]).fails(125);
    assert!(line.contains("no log"), "{line}");
    store.tupper(&["rm", "f", "fg"]).ok();
    store.assert_no_leftovers();
}

/// `logs --tail N` (`-n N`) prints the last N lines, as docker's; with `-f`
/// it goes on from there.
#[test]
fn logs_tail_prints_the_last_lines() {
    let store = store_with_busybox();
    detached(
        &store,
        &["--name", "t"],
        &["sh", "-c", "seq 1 5; printf six"],
    );
    assert_eq!(store.tupper(&["wait", "t"]).ok(), "0\n");
    assert_eq!(store.tupper(&["logs", "t"]).ok(), "1\n2\n3\n4\n5\nsix");
    assert_eq!(store.tupper(&["logs", "--tail", "2", "t"]).ok(), "5\nsix");
    assert_eq!(store.tupper(&["logs", "-n", "0", "t"]).ok(), "");
    assert_eq!(
        store.tupper(&["logs", "-n", "99", "t"]).ok(),
        "1\n2\n3\n4\n5\nsix"
    );
    assert_eq!(
        store.tupper(&["logs", "--tail", "all", "t"]).ok(),
        "1\n2\n3\n4\n5\nsix"
    );
    let line = store.tupper(&["logs", "--tail", "-3", "t"]).fails(125);
    assert!(line.contains("invalid --tail"), "{line}");
    detached(
        &store,
        &["--name", "f"],
        &["sh", "-c", "seq 1 3; sleep 2; echo 4"],
    );
    assert!(wait_for(Duration::from_secs(10), || store
        .tupper(&["logs", "f"])
        .stdout
        .ends_with("3\n")));
    assert_eq!(store.tupper(&["logs", "-f", "-n", "1", "f"]).ok(), "3\n4\n");
    store.tupper(&["rm", "t", "f"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn a_detached_run_that_cannot_start_fails_in_the_foreground_and_leaves_nothing() {
    let store = store_with_busybox();
    store.run_rm("bb", &["true"]).ok();
    let before = store.state();
    let line = store
        .tupper(&["run", "-d", "--net", "none", "--name", "x", "bb", "nosuch"])
        .fails(127);
    assert!(line.contains("nosuch"), "{line}");
    before.assert_same(&store.state(), "run -d of a missing command");
    let line = store
        .tupper(&["run", "-d", "--net", "none", "--name", "x", "bb", "/etc"])
        .fails(126);
    assert!(line.contains("/etc"), "{line}");
    before.assert_same(&store.state(), "run -d of a directory");
    let line = store
        .tupper(&["run", "-d", "--net", "none", "no-image", "true"])
        .fails(125);
    assert!(line.contains("no-image"), "{line}");
    before.assert_same(&store.state(), "run -d of a missing image");
    store.tupper(&["run", "-d", "-t", "bb", "true"]).fails(125);
    before.assert_same(&store.state(), "run -d -t");
    store.assert_no_leftovers();
}

#[test]
fn wait_prints_the_exit_code_and_ps_q_the_ids() {
    let store = store_with_busybox();
    let a = detached(&store, &["--name", "a"], &["sh", "-c", "sleep 0.3; exit 6"]);
    let b = detached(&store, &["--name", "b"], &["sleep", "100"]);
    let mut ids: Vec<String> = store
        .tupper(&["ps", "-q"])
        .ok()
        .lines()
        .map(String::from)
        .collect();
    ids.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(ids, want);
    let start = Instant::now();
    assert_eq!(store.tupper(&["wait", "a"]).ok(), "6\n");
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "wait did not wait"
    );
    // An ended one: at once.
    assert_eq!(store.tupper(&["wait", &a]).ok(), "6\n");
    assert_eq!(store.tupper(&["ps", "-q"]).ok(), format!("{b}\n"));
    assert_eq!(store.tupper(&["ps", "-aq"]).ok().lines().count(), 2);
    store.tupper(&["kill", "b"]).ok();
    assert_eq!(store.tupper(&["wait", "b"]).ok(), "137\n");
    // A --rm container leaves nothing to read its code from.
    detached(&store, &["--rm", "--name", "r"], &["sleep", "0.3"]);
    let line = store.tupper(&["wait", "r"]).fails(125);
    assert!(line.contains("--rm"), "{line}");
    store.tupper(&["rm", "a", "b"]).ok();
    store.assert_no_leftovers();
}

/// podman's `wait --condition`: one of the states given ends the wait,
/// printing -1 (the exit code for `stopped`/`exited`); a health condition
/// for a container without a check, a bad state or a removal it cannot
/// reach are errors.
#[test]
fn wait_condition_waits_for_the_states_podmans_does() {
    let store = store_with_busybox();
    let wait = |args: &[&str]| {
        let mut all = vec!["wait", "-i", "20ms"];
        all.extend(args);
        store.tupper(&all)
    };
    store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--name",
            "c",
            "bb",
            "sh",
            "-c",
            "sleep 0.5; exit 4",
        ])
        .ok();
    assert_eq!(wait(&["--condition", "created", "c"]).ok(), "-1\n");
    // Not yet running: the wait goes on until `start`.
    let waiter = {
        let mut c = tupper(&store);
        c.args(["wait", "-i", "20ms", "--condition", "running", "c"]);
        c.stdout(std::process::Stdio::piped()).spawn().unwrap()
    };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(store.ps_entry("c")["status"], "created");
    store.tupper(&["start", "c"]).ok();
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "-1\n");
    assert!(out.status.success());
    let line = wait(&["--condition", "healthy", "c"]).fails(125);
    assert!(
        line.contains("wait --condition healthy c: it has no health check"),
        "{line}"
    );
    assert_eq!(
        wait(&["--condition", "exited", "--condition", "paused", "c"]).ok(),
        "4\n"
    );

    detached(&store, &["--name", "p"], &["sleep", "100"]);
    store.tupper(&["pause", "p"]).ok();
    assert_eq!(wait(&["--condition", "paused", "p"]).ok(), "-1\n");
    store.tupper(&["unpause", "p"]).ok();
    assert_eq!(wait(&["--condition", "running", "p"]).ok(), "-1\n");

    let check = [
        "--health-interval",
        "100ms",
        "--health-retries",
        "1",
        "--health-cmd",
    ];
    let mut healthy = vec!["--name", "h"];
    healthy.extend(check);
    healthy.push("true");
    detached(&store, &healthy, &["sleep", "100"]);
    assert_eq!(wait(&["--condition", "healthy", "h"]).ok(), "-1\n");
    assert_eq!(store.inspect("h")["health"]["status"], "healthy");
    let mut sick = vec!["--name", "u"];
    sick.extend(check);
    sick.push("false");
    detached(&store, &sick, &["sleep", "100"]);
    assert_eq!(
        wait(&["--condition", "unhealthy", "--condition", "stopped", "u"]).ok(),
        "-1\n"
    );
    assert_eq!(store.inspect("u")["health"]["status"], "unhealthy");
    store.tupper(&["rm", "-f", "p", "h", "u"]).ok();

    // Removed: what `removing` waits for, an error for the rest.
    detached(&store, &["--rm", "--name", "gone"], &["sleep", "0.3"]);
    assert_eq!(wait(&["--condition", "removing", "gone"]).ok(), "-1\n");
    assert!(store.ps_json(true).iter().all(|r| r["name"] != "gone"));
    detached(&store, &["--rm", "--name", "gone2"], &["sleep", "0.3"]);
    let line = wait(&["--condition", "paused", "gone2"]).fails(125);
    assert!(
        line.contains("wait for container gone2: it was removed"),
        "{line}"
    );

    let before = store.state();
    let line = wait(&["--condition", "asleep", "c"]).fails(125);
    assert!(
        line.contains("wait --condition asleep: created, running"),
        "{line}"
    );
    let line = wait(&["-i", "soon", "c"]).fails(125);
    assert!(line.contains("wait --interval \"soon\""), "{line}");
    before.assert_same(&store.state(), "bad wait options");
    store.tupper(&["rm", "c"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn run_d_keeps_none_of_the_callers_fds() {
    let store = store_with_busybox();
    // The caller's stdout also on fd 3, read by `cat` to its end: run -d
    // must let go of it for `cat` (and so the shell) to end.
    let script = format!(
        "{} --root {} run -d --net none --name fd bb sleep 100 3>&1 | cat",
        TUPPER,
        store.root().display()
    );
    let mut c = std::process::Command::new("sh");
    c.args(["-c", &script]);
    let out = run_cmd(c, None, Duration::from_secs(30)).ok();
    assert!(is_id(out.trim()), "{out}");
    store.tupper(&["rm", "-f", "fd"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn init_reaps_passes_signals_on_and_exits_as_the_command() {
    let store = store_with_busybox();
    // An orphan is reparented to PID 1: with --init it is reaped, without
    // it the zombie stays (sleep, PID 1, reaps nothing).
    let script = "(sleep 0.1 &); exec sleep 100";
    for (name, init, zombies) in [("i", true, "0"), ("n", false, "1")] {
        let mut args = vec!["run", "-d", "--net", "none", "--name", name];
        if init {
            args.push("--init");
        }
        args.extend(["bb", "sh", "-c", script]);
        store.tupper(&args).ok();
        std::thread::sleep(Duration::from_millis(600));
        let out = store
            .tupper(&[
                "exec",
                name,
                "sh",
                "-c",
                "ps -o stat | grep -c '^Z' || true",
            ])
            .ok();
        assert_eq!(out.trim(), zombies, "{name}");
    }
    // PID 1 passes SIGTERM on: sleep dies of it (143); without --init,
    // PID 1 ignores it and stop has to kill (137).
    store.tupper(&["stop", "-t", "1", "i", "n"]).ok();
    assert_eq!(store.ps_entry("i")["exit_code"], 143);
    assert_eq!(store.ps_entry("n")["exit_code"], 137);
    // The command's own code, and 128+N for its signal.
    let out = store.tupper(&[
        "run", "--rm", "--net", "none", "--init", "bb", "sh", "-c", "exit 7",
    ]);
    out.code(7);
    let out = store.tupper(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--init",
        "bb",
        "sh",
        "-c",
        "kill -USR1 $$",
    ]);
    out.code(138);
    // A command that can not start fails as without --init.
    store
        .tupper(&["run", "--rm", "--net", "none", "--init", "bb", "nosuch"])
        .fails(127);
    // stop with a timeout too large to add to the clock.
    let out = store.tupper(&[
        "run", "-d", "--net", "none", "--init", "--name", "t", "bb", "sleep", "100",
    ]);
    out.ok();
    store
        .tupper(&["stop", "-t", "18446744073709551615", "t"])
        .ok();
    assert_eq!(store.ps_entry("t")["exit_code"], 143);
    store.tupper(&["rm", "i", "n", "t"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn init_keeps_nothing_of_tuppers_for_the_container() {
    let store = store_with_busybox();
    let script =
        "grep -E '^Cap(Prm|Eff)' /proc/1/status; tr '\\0' ' ' </proc/1/cmdline | tr -s ' '; echo; \
                  cat /proc/1/environ >/dev/null 2>&1 || echo environ-refused; \
                  trap 'echo got USR1' USR1; kill -USR1 0; sleep 0.3";
    let mut c = store.cmd();
    c.env("TUPPER_TEST_SECRET", "s3cr3t").args([
        "run", "--rm", "--net", "none", "--init", "bb", "sh", "-c", script,
    ]);
    let out = run_cmd(c, None, DEFAULT_TIMEOUT).ok();
    assert_eq!(
        out,
        "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\ntupper-init \nenviron-refused\ngot USR1\n"
    );
    // Even with ptrace allowed, tupper's environment is not there to read.
    let mut c = store.cmd();
    c.env("TUPPER_TEST_SECRET", "s3cr3t").args([
        "run",
        "--rm",
        "--net",
        "none",
        "--init",
        "--cap-add",
        "SYS_PTRACE",
        "bb",
        "sh",
        "-c",
        "tr '\\0' '\\n' </proc/1/environ | grep -c = || true",
    ]);
    assert_eq!(run_cmd(c, None, DEFAULT_TIMEOUT).ok(), "0\n");
    store.assert_no_leftovers();
}

#[test]
fn run_d_takes_relative_paths_from_the_callers_directory() {
    let store = store_with_busybox();
    let here = store.scratch().join("project");
    std::fs::create_dir_all(here.join("etc")).unwrap();
    std::fs::write(here.join("etc/MARKER"), "project\n").unwrap();
    // A relative store root and a relative volume, from `here`.
    let root = pathdiff(store.root(), &here);
    let mut c = std::process::Command::new(TUPPER);
    c.current_dir(&here).env_remove("TUPPER_ROOT").args([
        "--root",
        &root,
        "run",
        "-d",
        "--rm",
        "--net",
        "none",
        "--name",
        "rel",
        "-v",
        "./etc:/data",
        "bb",
        "sh",
        "-c",
        "cat /data/MARKER; sleep 1",
    ]);
    let id = run_cmd(c, None, DEFAULT_TIMEOUT).ok();
    assert!(is_id(id.trim()), "{id}");
    let logs = store.tupper(&["logs", "-f", "rel"]).stdout;
    assert_eq!(logs, "project\n");
    // Its --rm cleanup (a background process, from `/`) found the store.
    store.settle_pool();
    std::thread::sleep(Duration::from_millis(500));
    store.assert_no_leftovers();
    assert!(
        common::list_dir(&store.root().join("trash")).is_empty(),
        "the snapshot stayed in the trash"
    );
}

/// `path` relative to `from` (both absolute): `../../x`.
fn pathdiff(path: &std::path::Path, from: &std::path::Path) -> String {
    let p: Vec<_> = path.components().collect();
    let f: Vec<_> = from.components().collect();
    let common = p.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut out: Vec<String> = vec!["..".into(); f.len() - common];
    out.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    out.join("/")
}

#[test]
fn stop_signal_and_stop_timeout_are_the_containers() {
    let store = store_with_busybox();
    let script = "trap 'echo usr1; exit 5' USR1; echo up; while :; do sleep 0.05; done";
    detached(
        &store,
        &["--name", "u", "--stop-signal", "SIGUSR1"],
        &["sh", "-c", script],
    );
    assert!(wait_for(Duration::from_secs(20), || store
        .tupper(&["logs", "u"])
        .stdout
        .contains("up")));
    store.tupper(&["stop", "u"]).ok();
    assert_eq!(store.ps_entry("u")["exit_code"], 5);
    assert_eq!(store.tupper(&["logs", "u"]).ok(), "up\nusr1\n");
    // PID 1 ignores SIGTERM: --stop-timeout 1 kills it after a second...
    detached(
        &store,
        &["--name", "t", "--stop-timeout", "1"],
        &["sleep", "100"],
    );
    let start = Instant::now();
    store.tupper(&["stop", "t"]).ok();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert_eq!(store.ps_entry("t")["exit_code"], 137);
    // ...and stop -t says otherwise.
    detached(
        &store,
        &["--name", "t0", "--stop-timeout", "100"],
        &["sleep", "100"],
    );
    let start = Instant::now();
    store.tupper(&["stop", "-t", "0", "t0"]).ok();
    assert!(start.elapsed() < Duration::from_secs(8));
    // A real-time signal, as docker names them (RTMIN+3 is 37).
    let script = "trap 'echo rt; exit 6' 37; echo up; while :; do sleep 0.05; done";
    detached(
        &store,
        &["--name", "rt", "--stop-signal", "RTMIN+3"],
        &["sh", "-c", script],
    );
    assert!(wait_for(Duration::from_secs(20), || store
        .tupper(&["logs", "rt"])
        .stdout
        .contains("up")));
    store.tupper(&["stop", "rt"]).ok();
    assert_eq!(store.ps_entry("rt")["exit_code"], 6);
    for n in ["u", "t", "t0", "rt"] {
        store.tupper(&["rm", n]).ok();
    }
    for (args, says) in [
        (&["--stop-signal", "NOPE"][..], "invalid --stop-signal"),
        (&["--stop-timeout", "soon"], "whole seconds"),
    ] {
        let mut v = vec!["run", "-d", "--net", "none"];
        v.extend(args);
        v.extend(["bb", "true"]);
        let line = store.tupper(&v).fails(125);
        assert!(line.contains(says), "{args:?}: {line}");
    }
    store.assert_no_leftovers();
}

#[test]
fn prune_removes_every_container_that_is_not_running() {
    let store = store_with_busybox();
    store
        .tupper(&["run", "--net", "none", "--name", "done", "bb", "true"])
        .ok();
    let done = store.ps_entry("done")["id"].as_str().unwrap().to_string();
    // Dead: its tupper killed (by pid: this test started it), its command
    // gone with it.
    let dead = detached(&store, &["--name", "dead"], &["sleep", "100"]);
    let pid = store.ps_entry("dead")["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid = stat
        .rsplit(") ")
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    sh("kill", &["-9", &ppid]);
    assert!(wait_for(Duration::from_secs(20), || store.ps_entry("dead")
        ["status"]
        == "dead"
        && store.ps_entry("dead")["pid"].is_null()));
    let running = detached(&store, &["--name", "up"], &["sleep", "100"]);
    let out = store.tupper(&["prune"]).ok();
    let mut removed: Vec<&str> = out.lines().collect();
    removed.sort();
    let mut want = vec![done.as_str(), dead.as_str()];
    want.sort();
    assert_eq!(removed, want, "{out}");
    let left: Vec<String> = store
        .ps_json(true)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, std::slice::from_ref(&running));
    // Nothing to prune: no output, success.
    assert_eq!(store.tupper(&["prune"]).ok(), "");
    store.tupper(&["rm", "-f", &running]).ok();
    store.assert_no_leftovers();
}

/// The log files of container `id`, by name, with their contents.
fn log_files(store: &TestStore, id: &str) -> Vec<(String, Vec<u8>)> {
    let dir = store.root().join("state/containers");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(&format!("{id}.log")) || n.contains(".log.tmp"))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The names of container `id`'s log files ([`log_files`]).
fn log_names(store: &TestStore, id: &str) -> Vec<String> {
    log_files(store, id).into_iter().map(|(n, _)| n).collect()
}

/// `seq FIRST LAST`'s output.
fn seq(first: u32, last: u32) -> String {
    (first..=last).map(|i| format!("{i}\n")).collect()
}

/// `--log-opt max-size=1k --log-opt max-file=3` (docker's json-file
/// options): at most three files of at most 1 KiB, cut between lines, the
/// oldest dropped; `logs` reads them as one (with `-n`), `start` keeps the
/// options, `rm` removes every file.
#[test]
fn a_rotated_log_keeps_max_file_files_of_max_size() {
    let store = store_with_busybox();
    let opts = [
        "--name",
        "r",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
    ];
    let id = detached(&store, &opts, &["seq", "1", "1000"]);
    assert_eq!(store.tupper(&["wait", "r"]).ok(), "0\n");
    let check_files = |what: &str| {
        let files = log_files(&store, &id);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        let want = [
            format!("{id}.log"),
            format!("{id}.log.1"),
            format!("{id}.log.2"),
        ];
        assert_eq!(names, want, "{what}");
        for (name, bytes) in &files {
            assert!(
                bytes.len() <= 1024,
                "{what}: {name} has {} bytes",
                bytes.len()
            );
            assert!(bytes.ends_with(b"\n"), "{what}: {name} ends within a line");
        }
        files.iter().map(|(_, b)| b.len()).sum::<usize>()
    };
    let kept = check_files("after run -d");
    // All of seq's 3,893 bytes do not fit: the oldest lines went, the
    // newest are all there, in order.
    let logs = store.tupper(&["logs", "r"]).ok();
    assert_eq!(logs.len(), kept);
    assert!(kept > 2048, "{kept} bytes kept");
    let first: u32 = logs.lines().next().unwrap().parse().unwrap();
    assert!(first > 1, "nothing was dropped");
    assert_eq!(logs, seq(first, 1000));
    assert_eq!(store.tupper(&["logs", "-n", "3", "r"]).ok(), seq(998, 1000));
    // Across the files: more lines than the newest holds.
    let newest = log_files(&store, &id)[0].1.len();
    let lines = (newest / 4 + 100) as u32;
    assert_eq!(
        store
            .tupper(&["logs", "--tail", &lines.to_string(), "r"])
            .ok(),
        seq(1001 - lines, 1000)
    );
    // `start` appends by the same rules.
    store.tupper(&["start", "r"]).ok();
    assert_eq!(store.tupper(&["wait", "r"]).ok(), "0\n");
    check_files("after start");
    assert!(store.tupper(&["logs", "r"]).ok().ends_with(&seq(990, 1000)));
    store.tupper(&["rm", "r"]).ok();
    assert_eq!(log_names(&store, &id), [] as [String; 0]);
    store.assert_no_leftovers();
}

/// `logs -f` reads on across rotations: every line, once, in order.
#[test]
fn logs_follow_a_rotating_log() {
    let store = store_with_busybox();
    let script = "sleep 0.5; i=1; while [ $i -le 600 ]; do echo $i; \
                  [ $((i % 50)) = 0 ] && sleep 0.2; i=$((i+1)); done";
    let opts = [
        "--name",
        "f",
        "--log-opt",
        "max-size=512",
        "--log-opt",
        "max-file=4",
    ];
    let id = detached(&store, &opts, &["sh", "-c", script]);
    assert_eq!(store.tupper(&["logs", "-f", "f"]).ok(), seq(1, 600));
    // It did rotate: the first lines are gone from the files.
    assert!(!store.tupper(&["logs", "f"]).ok().starts_with("1\n"));
    assert_eq!(log_files(&store, &id).len(), 4);
    store.tupper(&["rm", "f"]).ok();
    store.assert_no_leftovers();
}

/// `max-file=1` (the default with max-size) empties the one file: the
/// newest lines, from its start.
#[test]
fn a_log_of_one_file_is_emptied_when_full() {
    let store = store_with_busybox();
    let id = detached(
        &store,
        &["--name", "o", "--log-opt", "max-size=100"],
        &["seq", "1", "100"],
    );
    assert_eq!(store.tupper(&["wait", "o"]).ok(), "0\n");
    let files = log_files(&store, &id);
    assert_eq!(files.len(), 1, "{files:?}");
    let logs = store.tupper(&["logs", "o"]).ok();
    assert!(logs.len() <= 100 && logs.ends_with("\n100\n"), "{logs:?}");
    let first: u32 = logs.lines().next().unwrap().parse().unwrap();
    assert_eq!(logs, seq(first, 100));
    store.tupper(&["rm", "o"]).ok();
    store.assert_no_leftovers();
}

/// `--log-driver none` keeps no log; `local` is docker's rotated default;
/// a bad driver or option is refused and changes nothing.
#[test]
fn log_drivers_and_bad_log_options() {
    let store = store_with_busybox();
    store.run_rm("bb", &["true"]).ok();
    let before = store.state();
    for (opts, why) in [
        (&["--log-driver", "syslog"][..], "--log-driver syslog"),
        (&["--log-opt", "max-size=0"][..], "more than 0"),
        (&["--log-opt", "max-file=3"][..], "needs max-size"),
        (&["--log-opt", "labels=x"][..], "max-size=BYTES"),
        (
            &["--log-driver", "none", "--log-opt", "max-size=1m"][..],
            "no options",
        ),
    ] {
        let mut args = vec!["run", "-d", "--net", "none"];
        args.extend(opts);
        args.extend(["bb", "true"]);
        let line = store.tupper(&args).fails(125);
        assert!(line.contains(why), "{opts:?}: {line}");
        before.assert_same(&store.state(), &format!("{opts:?}"));
    }
    let id = detached(
        &store,
        &["--name", "n", "--log-driver", "none"],
        &["echo", "hidden"],
    );
    assert_eq!(store.tupper(&["wait", "n"]).ok(), "0\n");
    assert_eq!(log_names(&store, &id), [] as [String; 0]);
    let line = store.tupper(&["logs", "n"]).fails(125);
    assert!(line.contains("keeps no log"), "{line}");
    store
        .tupper(&[
            "create",
            "--name",
            "l",
            "--log-driver",
            "local",
            "bb",
            "true",
        ])
        .ok();
    let log = &store.inspect("l")["log"];
    assert_eq!(log["driver"], "local", "{log}");
    assert_eq!(log["max_size"], 20 << 20, "{log}");
    assert_eq!(log["max_file"], 5, "{log}");
    store.tupper(&["rm", "n", "l"]).ok();
    store.assert_no_leftovers();
}

/// Whether `line` is a `k8s-file` record: `TIME STREAM F|P TEXT`, the
/// time RFC 3339 with nine digits of fraction.
fn is_record(line: &str) -> bool {
    let mut f = line.splitn(4, ' ');
    let (Some(time), Some(stream), Some(tag), Some(_)) = (f.next(), f.next(), f.next(), f.next())
    else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    time.len() == 30
        && time.ends_with('Z')
        && time
            .split(['-', 'T', ':', '.', 'Z'])
            .filter(|p| !p.is_empty())
            .all(digits)
        && ["stdout", "stderr"].contains(&stream)
        && ["F", "P"].contains(&tag)
}

/// podman's `--log-driver k8s-file`: each line kept with its time and
/// stream; `logs` gives stdout's to stdout and stderr's to stderr, shows the
/// times with `-t` and chooses by them with `--since`/`--until` (which a
/// json-file log refuses, changing nothing); rotation cuts between records.
#[test]
fn a_k8s_file_log_keeps_each_lines_time_and_stream() {
    let store = store_with_busybox();
    let script = "echo out; echo err >&2; printf half; sleep 1.2; echo ' done'; echo last";
    let id = detached(
        &store,
        &["--name", "k", "--log-driver", "k8s-file"],
        &["sh", "-c", script],
    );
    assert_eq!(store.tupper(&["wait", "k"]).ok(), "0\n");
    let files = log_files(&store, &id);
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = String::from_utf8(files[0].1.clone()).unwrap();
    assert!(raw.lines().all(is_record), "{raw}");
    let text_of = |line: &str| line.splitn(4, ' ').nth(3).unwrap().to_string();
    let time_of = |text: &str| {
        let line = raw.lines().find(|l| l.ends_with(text)).unwrap();
        line.split(' ').next().unwrap().to_string()
    };
    assert!(raw.lines().any(|l| l.contains(" stderr F err")), "{raw}");
    assert!(raw.lines().any(|l| l.contains(" stdout P half")), "{raw}");
    assert_eq!(
        raw.lines().map(text_of).collect::<Vec<_>>().len(),
        5,
        "out, err, half, ' done', last: {raw}"
    );

    let all = store.tupper(&["logs", "k"]);
    assert_eq!(all.ok(), "out\nhalf done\nlast\n");
    assert_eq!(all.stderr, "err\n");
    let timed = store.tupper(&["logs", "-t", "k"]);
    assert_eq!(
        timed.ok(),
        format!(
            "{} out\n{} half done\n{} last\n",
            time_of(" out"),
            time_of(" half"),
            time_of(" last")
        ),
        "a line's time is its first part's"
    );
    assert_eq!(timed.stderr, format!("{} err\n", time_of(" err")));
    // Chosen by time: what came after the sleep, what came before it.
    let later = time_of(" done");
    let since = store.tupper(&["logs", "--since", &later, "k"]);
    assert_eq!(since.ok(), " done\nlast\n");
    assert_eq!(since.stderr, "");
    // stderr's pipe may be read after stdout's, later than " half".
    let before_sleep = time_of(" half").max(time_of(" err"));
    let until = store.tupper(&["logs", "--until", &before_sleep, "k"]);
    assert_eq!(until.ok(), "out\nhalf");
    assert_eq!(until.stderr, "err\n");
    assert_eq!(store.tupper(&["logs", "-n", "1", "k"]).ok(), "last\n");
    assert_eq!(
        store.tupper(&["logs", "--since", "1h", "k"]).ok(),
        "out\nhalf done\nlast\n"
    );
    assert_eq!(
        store.tupper(&["logs", "--until", "2000-01-01", "k"]).ok(),
        ""
    );
    let line = store
        .tupper(&["logs", "--since", "yesterday", "k"])
        .fails(125);
    assert!(line.contains("not a time"), "{line}");

    // Followed while it writes.
    detached(
        &store,
        &["--name", "f", "--log-driver", "k8s-file"],
        &["sh", "-c", "echo a; sleep 0.5; echo b >&2; echo c"],
    );
    let followed = store.tupper(&["logs", "-f", "f"]);
    assert_eq!(
        (followed.ok(), followed.stderr.as_str()),
        ("a\nc\n".into(), "b\n")
    );

    // Rotated: every file whole records, within max-size.
    let max = 17 * 1024 + 64;
    let size = format!("max-size={max}");
    let rid = detached(
        &store,
        &[
            "--name",
            "r",
            "--log-driver",
            "k8s-file",
            "--log-opt",
            &size,
            "--log-opt",
            "max-file=2",
        ],
        &["seq", "1", "3000"],
    );
    assert_eq!(store.tupper(&["wait", "r"]).ok(), "0\n");
    let files = log_files(&store, &rid);
    assert_eq!(files.len(), 2, "{:?}", log_names(&store, &rid));
    for (name, bytes) in &files {
        assert!(bytes.len() <= max, "{name}: {} bytes", bytes.len());
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.lines().all(is_record) && text.ends_with('\n'),
            "{name}"
        );
    }
    let kept = store.tupper(&["logs", "r"]).ok();
    assert!(kept.len() > 1000 && seq(1, 3000).ends_with(&kept), "{kept}");
    assert!(kept.starts_with(|c: char| c.is_ascii_digit()));

    // A json-file log has no times: refused, nothing changed.
    detached(&store, &["--name", "j"], &["echo", "plain"]);
    assert_eq!(store.tupper(&["wait", "j"]).ok(), "0\n");
    let before = store.state();
    for flag in [&["-t"][..], &["--since", "1h"], &["--until", "1h"]] {
        let mut args = vec!["logs"];
        args.extend(flag);
        args.push("j");
        let line = store.tupper(&args).fails(125);
        assert!(
            line.contains(&format!(
                "{} j: its log keeps no times",
                if flag[0] == "-t" {
                    "--timestamps"
                } else {
                    flag[0]
                }
            )),
            "{line}"
        );
        before.assert_same(&store.state(), &format!("{flag:?}"));
    }
    assert_eq!(store.tupper(&["logs", "j"]).ok(), "plain\n");
    store.tupper(&["rm", "k", "f", "r", "j"]).ok();
    store.assert_no_leftovers();
}

/// What a crash can leave of a removed container's log (a rotated file, a
/// rotation's temporary file) goes at the next `ps -a`.
#[test]
fn a_crash_s_log_leftovers_are_swept() {
    let store = store_with_busybox();
    store.tupper(&["ps", "-a"]).ok();
    let dir = store.root().join("state/containers");
    let id = "0123456789ab";
    for name in [
        format!("{id}.log"),
        format!("{id}.log.2"),
        format!(".{id}.log.tmp"),
    ] {
        std::fs::write(dir.join(&name), b"left\n").unwrap();
    }
    store.tupper(&["ps", "-a"]).ok();
    assert_eq!(log_names(&store, id), [] as [String; 0]);
    store.assert_no_leftovers();
}

/// `stop -s SIGNAL` (docker 23's): that signal in place of the container's
/// stop signal; `restart -s` too.
#[test]
fn stop_with_a_signal_of_its_own() {
    let store = store_with_busybox();
    let script = "trap 'exit 7' USR1; trap 'exit 3' TERM; echo up; while :; do sleep 0.05; done";
    detached(&store, &["--name", "s"], &["sh", "-c", script]);
    let up = |n: usize| {
        wait_for(Duration::from_secs(20), || {
            store.tupper(&["logs", "s"]).stdout.lines().count() >= n
        })
    };
    assert!(up(1));
    assert_eq!(store.tupper(&["stop", "-s", "USR1", "s"]).ok(), "s\n");
    assert_eq!(store.ps_entry("s")["exit_code"], 7);
    store.tupper(&["start", "s"]).ok();
    assert!(up(2));
    store.tupper(&["restart", "--signal", "10", "s"]).ok();
    assert!(up(3));
    assert_eq!(store.tupper(&["stop", "s"]).ok(), "s\n");
    assert_eq!(
        store.ps_entry("s")["exit_code"],
        3,
        "the stop signal is SIGTERM again"
    );
    let line = store.tupper(&["stop", "-s", "NOPE", "s"]).fails(125);
    assert!(line.contains("NOPE"), "{line}");
    store.tupper(&["rm", "s"]).ok();
    store.assert_no_leftovers();
}
