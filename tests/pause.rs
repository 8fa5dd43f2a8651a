//! `pause` and `unpause` (docker's): every process of a container frozen by
//! the cgroup freezer and let go again, checked from the host (the kernel's
//! freezer files, the processes' own output), and the ways a paused
//! container still ends: `stop`, `kill`, `rm -f`, its tupper killed.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The freezer `pause` makes for container `id`: `tupper/ID` in the host's
/// v1 freezer hierarchy (found by the test, not asked of tupper).
fn freezer_of(id: &str) -> PathBuf {
    cgroup_v1_mount("freezer").join("tupper").join(id)
}

/// The host pids of the processes in the PID namespace of `pid1`, but
/// zombies (a `sleep` that ended while its frozen parent cannot reap it).
fn processes_of(pid1: i64) -> Vec<i64> {
    let ns = fs::read_link(format!("/proc/{pid1}/ns/pid")).expect("PID 1's namespace");
    let zombie = |p: &i64| {
        fs::read_to_string(format!("/proc/{p}/stat")).map_or(true, |s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    let mut pids: Vec<i64> = list_dir(Path::new("/proc"))
        .iter()
        .filter_map(|e| e.parse().ok())
        .filter(|p| fs::read_link(format!("/proc/{p}/ns/pid")).ok().as_ref() == Some(&ns))
        .filter(|p| !zombie(p))
        .collect();
    pids.sort();
    pids
}

/// The pids listed in a cgroup's `cgroup.procs`.
fn members(cgroup: &Path) -> Vec<i64> {
    let mut pids: Vec<i64> = fs::read_to_string(cgroup.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    pids.sort();
    pids
}

/// A file of the container's root, as the host sees it ("" while missing).
fn file_in(store: &TestStore, id: &str, path: &str) -> String {
    fs::read_to_string(store.container_path(id).join(path)).unwrap_or_default()
}

/// A script that appends a line to `FILE` every 20 ms.
fn ticker(file: &str) -> String {
    format!("while :; do echo x >> {file}; sleep 0.02; done")
}

#[test]
fn pause_freezes_every_process_and_unpause_lets_them_go_on() {
    let store = store_with_busybox();
    let id = store.detached(&["--name", "box"], &["sh", "-c", &ticker("/main")]);
    store
        .tupper(&["exec", "-d", "box", "sh", "-c", &ticker("/exec")])
        .ok();
    assert!(wait_for(Duration::from_secs(20), || !file_in(
        &store, &id, "exec"
    )
    .is_empty()));
    let pid1 = store.inspect("box")["pid"].as_i64().expect("pid");

    assert_eq!(store.tupper(&["pause", "box"]).ok(), "box\n");
    let freezer = freezer_of(&id);
    assert_eq!(
        fs::read_to_string(freezer.join("freezer.state"))
            .unwrap()
            .trim(),
        "FROZEN",
        "the kernel says the freezer is frozen"
    );
    let inside = processes_of(pid1);
    assert!(inside.len() >= 2, "PID 1 and exec's: {inside:?}");
    assert_eq!(members(&freezer), inside, "every process is in the freezer");
    let rec = store.inspect("box");
    assert_eq!(rec["paused"], true, "{rec}");
    assert_eq!(rec["freezer"], freezer.to_str().unwrap(), "{rec}");
    let entry = store.ps_entry("box");
    assert_eq!(entry["paused"], true, "{entry}");
    let table = store.tupper(&["ps"]).ok();
    assert!(table.contains("(Paused)"), "{table}");

    // Nothing moves while it is paused: neither PID 1's loop nor exec's.
    let (main, exec) = (file_in(&store, &id, "main"), file_in(&store, &id, "exec"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(file_in(&store, &id, "main"), main, "PID 1 ran while paused");
    assert_eq!(
        file_in(&store, &id, "exec"),
        exec,
        "exec's ran while paused"
    );

    let again = store.tupper(&["pause", "box"]).fails(125);
    assert!(
        again.contains("pause container box: it is paused already"),
        "{again}"
    );
    let exec_err = store.tupper(&["exec", "box", "true"]).fails(125);
    assert!(exec_err.contains("it is paused"), "{exec_err}");

    assert_eq!(store.tupper(&["unpause", "box"]).ok(), "box\n");
    assert_eq!(
        fs::read_to_string(freezer.join("freezer.state"))
            .unwrap()
            .trim(),
        "THAWED"
    );
    assert!(
        wait_for(Duration::from_secs(10), || file_in(&store, &id, "main")
            .len()
            > main.len()
            && file_in(&store, &id, "exec").len() > exec.len()),
        "both loops go on after unpause"
    );
    let entry = store.ps_entry("box");
    assert!(entry.get("paused").is_none(), "{entry}");
    let not = store.tupper(&["unpause", "box"]).fails(125);
    assert!(
        not.contains("unpause container box: it is not paused"),
        "{not}"
    );

    // Paused again, the processes exec started since are frozen too.
    store
        .tupper(&["exec", "-d", "box", "sh", "-c", &ticker("/later")])
        .ok();
    assert!(wait_for(Duration::from_secs(20), || !file_in(
        &store, &id, "later"
    )
    .is_empty()));
    store.tupper(&["pause", "box"]).ok();
    assert_eq!(members(&freezer), processes_of(pid1));
    store.tupper(&["rm", "-f", "box"]).ok();
    assert!(!freezer.exists(), "the freezer goes with the container");
    store.assert_no_leftovers();
}

#[test]
fn a_paused_container_still_stops_and_is_killed() {
    let store = store_with_busybox();
    // stop: its stop signal, acted on once thawed (docker's), long before
    // the SIGKILL of -t.
    let id = store.detached(
        &["--name", "trap"],
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; echo > /up; while :; do sleep 0.05; done",
        ],
    );
    // Paused only once the trap is set: a SIGTERM before it would end sh.
    assert!(wait_for(Duration::from_secs(10), || file_in(
        &store, &id, "up"
    ) == "\n"));
    store.tupper(&["pause", "trap"]).ok();
    let started = Instant::now();
    store.tupper(&["stop", "-t", "20", "trap"]).ok();
    assert!(started.elapsed() < Duration::from_secs(15));
    let rec = store.inspect("trap");
    assert_eq!(rec["exit_code"], 7, "it handled SIGTERM: {rec}");
    assert!(!freezer_of(&id).exists(), "its freezer went when it ended");
    store.tupper(&["rm", "trap"]).ok();

    // kill: another signal waits for unpause, SIGKILL does not.
    let id = store.detached(
        &["--rm", "--name", "k"],
        &[
            "sh",
            "-c",
            "trap 'echo usr1 > /got' USR1; echo > /up; while :; do sleep 0.05; done",
        ],
    );
    assert!(wait_for(Duration::from_secs(10), || file_in(
        &store, &id, "up"
    ) == "\n"));
    store.tupper(&["pause", "k"]).ok();
    store.tupper(&["kill", "-s", "USR1", "k"]).ok();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(store.ps_entry("k")["paused"], true);
    assert_eq!(file_in(&store, &id, "got"), "", "acted on while paused");
    store.tupper(&["unpause", "k"]).ok();
    assert!(wait_for(Duration::from_secs(10), || file_in(
        &store, &id, "got"
    ) == "usr1\n"));
    store.tupper(&["pause", "k"]).ok();
    store.tupper(&["kill", "k"]).ok();
    assert!(
        wait_for(Duration::from_secs(20), || store.ps_json(true).is_empty()),
        "the --rm container ended and went"
    );
    assert!(!freezer_of(&id).exists());

    // rm -f.
    let id = store.detached(&["--name", "f"], &["sleep", "1000"]);
    store.tupper(&["pause", "f"]).ok();
    store.tupper(&["rm", "-f", "f"]).ok();
    assert!(!freezer_of(&id).exists());
    store.assert_no_leftovers();
}

#[test]
fn a_paused_container_whose_tupper_was_killed_is_removed() {
    let store = store_with_busybox();
    let id = store.detached(&["--name", "orphan"], &["sleep", "1000"]);
    store.tupper(&["pause", "orphan"]).ok();
    let pid1 = store.inspect("orphan")["pid"].as_i64().unwrap();
    let stat = fs::read_to_string(format!("/proc/{pid1}/stat")).unwrap();
    let parent: i32 = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .expect("ppid");
    // Its tupper (run -d's background process, PID 1's parent) dies; PID 1
    // is sent SIGKILL by the kernel, which a frozen task does not act on.
    kill(parent, 9);
    assert!(wait_for(Duration::from_secs(10), || store
        .ps_entry("orphan")["status"]
        == "dead"));
    assert!(Path::new(&format!("/proc/{pid1}")).exists(), "still frozen");
    store.tupper(&["rm", "orphan"]).ok();
    assert!(
        wait_for(Duration::from_secs(10), || !Path::new(&format!(
            "/proc/{pid1}"
        ))
        .exists()),
        "PID 1 died once thawed"
    );
    assert!(!freezer_of(&id).exists());
    store.assert_no_leftovers();
}

#[test]
fn pause_refuses_what_is_not_running_and_makes_nothing() {
    let store = store_with_busybox();
    let made = store
        .tupper(&[
            "create", "--net", "none", "--name", "made", "bb", "sleep", "1",
        ])
        .ok();
    store
        .tupper(&["run", "--net", "none", "--name", "done", "bb", "true"])
        .ok();
    let done = store.inspect("done")["id"].as_str().unwrap().to_string();
    for (args, want) in [
        (
            &["pause", "made"][..],
            "pause container made: it is not running",
        ),
        (
            &["pause", "done"],
            "pause container done: it is not running",
        ),
        (&["pause", "nope"], "no such container: nope"),
        (
            &["unpause", "done"],
            "unpause container done: it is not paused",
        ),
        (&["unpause", "nope"], "no such container: nope"),
        (&["pause"], "pause needs at least one container name or ID"),
    ] {
        let err = store.tupper(args).fails(125);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    for id in [made.trim(), done.as_str()] {
        assert!(!freezer_of(id).exists(), "{id}");
        assert!(store.inspect(id).get("freezer").is_none());
    }
    store.tupper(&["rm", "made", "done"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn cgroup_v2_freezes_in_the_unified_hierarchy() {
    let store = store_with_busybox();
    let tupper = format!("{TUPPER} --root {}", store.root_str());
    let parent = format!("tupper-test-pause-{}", std::process::id());
    // In a mount namespace of its own, /sys/fs/cgroup is the host's cgroup2
    // (this host mounts it at /sys/fs/cgroup/unified): tupper sees a v2 host.
    // A container without a cgroup gets tupper/ID; one with its own
    // (--cgroup-parent) is frozen there.
    let script = format!(
        "set -e; mount -t cgroup2 none /sys/fs/cgroup
        a=$({tupper} run -d --net none bb sh -c 'sleep 1000 & sleep 1000')
        b=$({tupper} run -d --net none --cgroup-parent {parent} bb sleep 1000)
        {tupper} pause $a $b >/dev/null
        echo a=$(grep frozen /sys/fs/cgroup/tupper/$a/cgroup.events) $(wc -l < /sys/fs/cgroup/tupper/$a/cgroup.procs)
        echo b=$(grep frozen /sys/fs/cgroup/{parent}/$b/cgroup.events)
        {tupper} ps | grep -c Paused
        {tupper} unpause $a >/dev/null
        echo a=$(grep frozen /sys/fs/cgroup/tupper/$a/cgroup.events)
        {tupper} rm -f $a $b >/dev/null
        test ! -e /sys/fs/cgroup/tupper/$a && test ! -e /sys/fs/cgroup/{parent}/$b && echo removed
        rmdir /sys/fs/cgroup/{parent}"
    );
    let out = sh("unshare", &["-m", "sh", "-c", &script]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["a=frozen 1 2", "b=frozen 1", "2", "a=frozen 0", "removed"],
        "{out}"
    );
    store.assert_no_leftovers();
}
