//! `start` and `restart`: a container's command run again, in its own files,
//! with the settings it was made with (docker's `start`, `start -a`,
//! `restart`).

mod common;

use common::*;
use std::time::Duration;

/// The log of `name` once it has `lines` lines (at most 20 s).
fn log_with_lines(store: &TestStore, name: &str, lines: usize) -> String {
    let mut log = String::new();
    wait_for(Duration::from_secs(20), || {
        log = store.tupper(&["logs", name]).ok();
        log.lines().count() >= lines
    });
    log
}

#[test]
fn a_stopped_container_runs_again_in_its_own_files() {
    let store = store_with_busybox();
    let script = "echo run >> /runs; wc -l < /runs; exit 3";
    let first = store
        .tupper(&[
            "run", "--net", "none", "--name", "again", "bb", "sh", "-c", script,
        ])
        .code(3);
    assert_eq!(first, "1\n");
    let id = store.ps_entry("again")["id"].as_str().unwrap().to_string();
    // -a: in the foreground, with its output and its exit code.
    assert_eq!(store.tupper(&["start", "-a", "again"]).code(3), "2\n");
    // Without: in the background; the name is printed once it runs, its
    // output goes to its log.
    assert_eq!(store.tupper(&["start", "again"]).ok(), "again\n");
    assert_eq!(store.tupper(&["wait", "again"]).ok(), "3\n");
    assert_eq!(store.tupper(&["logs", "again"]).ok(), "3\n");
    // By its ID too; the log grows.
    assert_eq!(store.tupper(&["start", &id]).ok(), format!("{id}\n"));
    assert_eq!(store.tupper(&["wait", &id]).ok(), "3\n");
    assert_eq!(store.tupper(&["logs", "again"]).ok(), "3\n4\n");
    let r = store.ps_entry("again");
    assert_eq!(r["id"], id.as_str());
    assert_eq!(r["status"], "exited", "{r}");
    assert_eq!(r["exit_code"], 3, "{r}");
    assert!(r["started_unix"].as_i64().unwrap() >= r["created_unix"].as_i64().unwrap());
    assert_eq!(
        store.container_ids(),
        vec![id.clone()],
        "one container, still"
    );
    store.tupper(&["rm", "again"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn a_container_starts_again_with_the_settings_it_was_made_with() {
    let store = store_with_busybox();
    let data = store.scratch().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "from the host\n").unwrap();
    let volume = format!("{}:/data:ro", data.display());
    let script = "id; hostname; pwd; echo A=$A HOME=$HOME; ulimit -n; \
                  grep CapBnd /proc/self/status; cat /data/f; \
                  touch /x 2>/dev/null && echo rw || echo ro; \
                  awk '$2 == \"/t\" {print $3}' /proc/mounts; cat /proc/1/comm";
    let first = store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "same",
            "-e",
            "A=1",
            "-w",
            "/srv",
            "-u",
            "1000:1000",
            "--hostname",
            "hh",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CHOWN",
            "--read-only",
            "--tmpfs",
            "/t",
            "-v",
            &volume,
            "--ulimit",
            "nofile=100:200",
            "--init",
            "bb",
            "sh",
            "-c",
            script,
        ])
        .ok();
    for want in [
        "uid=1000 gid=1000",
        "\nhh\n",
        "\n/srv\n",
        "A=1 HOME=/\n",
        "\n100\n",
        "CapBnd:\t0000000000000001\n",
        "from the host\n",
        "\nro\n",
        "\ntmpfs\n",
    ] {
        assert!(first.contains(want), "{want:?} not in {first:?}");
    }
    assert!(
        !first.ends_with("\nsh\n"),
        "--init: PID 1 is not sh: {first:?}"
    );
    let before = store.inspect("same");
    // The same command, in the same settings, says the same.
    assert_eq!(store.tupper(&["start", "-a", "same"]).ok(), first);
    let after = store.inspect("same");
    for key in [
        "security",
        "env",
        "workdir",
        "mounts",
        "ulimits",
        "hostname",
        "command",
        "read_only",
        "init",
    ] {
        assert_eq!(before[key], after[key], "{key}");
    }
    store.tupper(&["rm", "same"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn start_leaves_a_running_container_alone() {
    let store = store_with_busybox();
    let id = store.detached(&["--name", "up"], &["sleep", "100"]);
    let pid = store.ps_entry("up")["pid"].clone();
    assert!(pid.is_i64(), "{pid}");
    let e = store.tupper(&["start", "-a", "up"]).fails(125);
    assert!(e.contains("start up: it is running"), "{e}");
    // Without -a, as docker: nothing to do, the name printed.
    assert_eq!(store.tupper(&["start", "up"]).ok(), "up\n");
    let r = store.ps_entry("up");
    assert_eq!((&r["status"], &r["pid"]), (&"running".into(), &pid));
    store.tupper(&["rm", "-f", &id]).ok();
    store.assert_no_leftovers();
}

#[test]
fn a_start_that_fails_leaves_the_container_as_it_was() {
    let store = store_with_busybox();
    let data = store.scratch().join("gone");
    std::fs::create_dir_all(&data).unwrap();
    let volume = format!("{}:/data", data.display());
    store
        .tupper(&[
            "run", "--net", "none", "--name", "vol", "-v", &volume, "bb", "true",
        ])
        .ok();
    let id = store.ps_entry("vol")["id"].as_str().unwrap().to_string();
    std::fs::remove_dir(&data).unwrap();
    let before = store.inspect("vol");
    let entries = store.state_entries();
    for args in [&["start", "-a", "vol"][..], &["start", "vol"]] {
        let e = store.tupper(args).fails(125);
        assert!(e.contains(&format!("volume {}", data.display())), "{e}");
        assert_eq!(store.inspect("vol"), before, "{args:?}");
        assert_eq!(store.state_entries(), entries, "{args:?}");
    }
    // Once its volume is back, it starts.
    std::fs::create_dir_all(&data).unwrap();
    store.tupper(&["start", "-a", "vol"]).ok();
    assert_eq!(store.ps_entry("vol")["status"], "exited");

    // Its command gone from its files: docker's 127, and the record is
    // as it was (exited with its last run's code).
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "nosh",
            "bb",
            "sh",
            "-c",
            "rm /bin/sh; exit 5",
        ])
        .code(5);
    let before = store.inspect("nosh");
    let e = store.tupper(&["start", "-a", "nosh"]).fails(127);
    assert!(e.contains("sh"), "{e}");
    assert_eq!(store.inspect("nosh"), before);
    store.tupper(&["rm", &id, "nosh"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn restart_stops_a_running_container_and_starts_it_again() {
    let store = store_with_busybox();
    let script = "echo up; trap 'echo term; exit 3' TERM; while :; do sleep 0.05; done";
    store.detached(&["--name", "r"], &["sh", "-c", script]);
    assert_eq!(log_with_lines(&store, "r", 1), "up\n");
    let pid = store.ps_entry("r")["pid"].as_i64().unwrap();
    assert_eq!(store.tupper(&["restart", "-t", "10", "r"]).ok(), "r\n");
    let r = store.ps_entry("r");
    assert_eq!(r["status"], "running", "{r}");
    assert_ne!(r["pid"].as_i64().unwrap(), pid, "a new PID 1");
    assert_eq!(log_with_lines(&store, "r", 3), "up\nterm\nup\n");
    // A stopped one is only started.
    store.tupper(&["stop", "r"]).ok();
    assert_eq!(store.ps_entry("r")["exit_code"], 3);
    assert_eq!(store.tupper(&["restart", "r"]).ok(), "r\n");
    assert_eq!(store.ps_entry("r")["status"], "running");
    store.tupper(&["rm", "-f", "r"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn a_container_whose_tupper_was_killed_starts_again() {
    let store = store_with_busybox();
    store.detached(&["--name", "dead", "--pids-limit", "50"], &["sleep", "100"]);
    let pid = store.ps_entry("dead")["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let holder: i32 = stat
        .rsplit(") ")
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // Killed by pid: this test started it (its container's PID 1 dies with it).
    kill(holder, 9);
    assert!(wait_for(Duration::from_secs(20), || {
        let r = store.ps_entry("dead");
        r["status"] == "dead" && r["pid"].is_null()
    }));
    let cgroups = store.inspect("dead")["cgroups"].clone();
    assert!(
        cgroups.as_array().is_some_and(|c| !c.is_empty()),
        "{cgroups}"
    );
    // The killed run's cgroup goes, and the new run gets one of its own.
    assert_eq!(store.tupper(&["start", "dead"]).ok(), "dead\n");
    let r = store.inspect("dead");
    assert_eq!(r["status"], "running", "{r}");
    let pid = r["pid"].as_i64().unwrap();
    let pids = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = pids
        .lines()
        .find(|l| l.split(':').nth(1) == Some("pids"))
        .unwrap_or_else(|| panic!("no pids cgroup in {pids}"));
    let path = line.rsplit(':').next().unwrap();
    let id = r["id"].as_str().unwrap();
    assert!(path.ends_with(id), "{path}");
    let max = std::fs::read_to_string(format!("/sys/fs/cgroup/pids{path}/pids.max")).unwrap();
    assert_eq!(max.trim(), "50");
    store.tupper(&["rm", "-f", "dead"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn a_created_container_gets_its_files_then_runs() {
    let store = store_with_busybox();
    let out = store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--name",
            "c",
            "-e",
            "A=1",
            "-v",
            "cvol:/cv",
            "bb",
            "sh",
            "-c",
            "cat /in; echo A=$A; echo ran > /cv/out; exit 4",
        ])
        .ok();
    let id = out.trim();
    assert!(is_id(id), "create printed {out:?}");
    // Made, not running: not in `ps`; `created` in `ps -a`, without a pid.
    assert!(store.ps_json(false).is_empty());
    let r = store.ps_entry("c");
    assert_eq!(r["status"], "created", "{r}");
    assert!(r["pid"].is_null() && r["exit_code"].is_null(), "{r}");
    let table = store.tupper(&["ps", "-a"]).ok();
    assert!(
        table.lines().nth(1).unwrap().contains(" Created "),
        "{table}"
    );
    let e = store.tupper(&["wait", "c"]).fails(125);
    assert!(e.contains("has not run"), "{e}");
    // docker's way to give a container its input: files in, then start.
    let input = store.scratch().join("in");
    std::fs::write(&input, "from the host\n").unwrap();
    store.tupper(&["cp", input.to_str().unwrap(), "c:/in"]).ok();
    assert_eq!(
        store.tupper(&["start", "-a", "c"]).code(4),
        "from the host\nA=1\n"
    );
    let r = store.ps_entry("c");
    assert_eq!(
        (&r["status"], &r["exit_code"]),
        (&"exited".into(), &4.into())
    );
    assert_eq!(r["id"], id);
    // Its named volume was made with it, and keeps what it wrote.
    let out = store.root().join("volumes/cvol/out");
    assert_eq!(std::fs::read_to_string(out).unwrap(), "ran\n");
    store.tupper(&["rm", "c"]).ok();
    store.tupper(&["volume", "rm", "cvol"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn create_checks_what_run_checks_and_leaves_nothing() {
    let store = store_with_busybox();
    store
        .tupper(&["create", "--net", "none", "--name", "taken", "bb"])
        .ok();
    let before = store.state();
    let missing = store.scratch().join("missing");
    let volume = format!("{}:/data", missing.display());
    for (args, want) in [
        (&["create", "nosuchimage"][..], "nosuchimage"),
        (&["create", "--name", "taken", "bb"], "taken"),
        (&["create", "-v", &volume, "bb"], "missing"),
        (&["create", "--ulimit", "nofile=2:1", "bb"], "soft limit"),
        (&["create", "-u", "nosuchuser", "bb"], "nosuchuser"),
        (&["create", "-d", "bb"], "no -d"),
    ] {
        let e = store.tupper(args).fails(125);
        assert!(e.contains(want), "{args:?}: {e}");
        before.assert_same(&store.state(), &format!("{args:?}"));
    }
    // --rm: removed once its command has run.
    store
        .tupper(&[
            "create", "--net", "none", "--rm", "--name", "once", "bb", "true",
        ])
        .ok();
    store.tupper(&["start", "-a", "once"]).ok();
    assert!(!store.ps_json(true).iter().any(|r| r["name"] == "once"));
    // prune removes what never ran, as docker's `container prune`.
    let out = store.tupper(&["prune"]).ok();
    assert_eq!(out.lines().count(), 1, "{out}");
    store.assert_no_leftovers();
}
