//! `tupper top`: the processes of a running container, in `ps -ef`'s
//! columns, with the host's PIDs, and no process of anyone else.

mod common;

use common::*;
use std::time::Duration;

/// The rows of `tupper top NAME`, split into columns (CMD joined again).
fn top(store: &TestStore, name: &str) -> Vec<Vec<String>> {
    let out = store.tupper(&["top", name]).ok();
    let mut lines = out.lines();
    let head: Vec<&str> = lines
        .next()
        .expect("a heading")
        .split_whitespace()
        .collect();
    assert_eq!(
        head,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{out}"
    );
    lines
        .map(|l| {
            let mut cells: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            let cmd = cells.split_off(7).join(" ");
            cells.push(cmd);
            cells
        })
        .collect()
}

/// The PID namespace of host process `pid`.
fn pid_ns(pid: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .unwrap_or_else(|e| panic!("pid namespace of {pid}: {e}"))
        .display()
        .to_string()
}

#[test]
fn top_lists_the_containers_processes_and_only_them() {
    let store = store_with_busybox();
    store.detached(&["--name", "box", "-u", "4242"], &["sleep", "1000"]);
    store
        .tupper(&["exec", "-d", "-u", "0", "box", "sleep", "999"])
        .ok();
    assert!(wait_for(Duration::from_secs(10), || top(&store, "box")
        .len()
        == 2));
    let rows = top(&store, "box");
    let main = rows
        .iter()
        .find(|r| r[7] == "sleep 1000")
        .expect("PID 1's row");
    let exec = rows
        .iter()
        .find(|r| r[7] == "sleep 999")
        .expect("exec's row");
    // No name for 4242 in the image's /etc/passwd: the number; root is named.
    assert_eq!(main[0], "4242", "{rows:?}");
    assert_eq!(exec[0], "root", "{rows:?}");
    // Host PIDs: PID 1's is the record's, and both are in one PID namespace
    // that is not the host's.
    let pid1 = store.ps_json(false)[0]["pid"]
        .as_i64()
        .expect("pid")
        .to_string();
    assert_eq!(main[1], pid1, "{rows:?}");
    assert_eq!(pid_ns(&main[1]), pid_ns(&exec[1]));
    assert_ne!(pid_ns(&main[1]), pid_ns("self"));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", exec[1])).unwrap();
    assert_eq!(cmdline, b"sleep\0999\0");
    for r in &rows {
        assert_eq!(r[5], "?", "no terminal: {r:?}");
        assert_eq!(r[6], "00:00:00", "{r:?}");
        assert!(
            r[4].len() == 5 && r[4].as_bytes()[2] == b':',
            "STIME HH:MM: {r:?}"
        );
    }
    // A stopped container has no processes; an unknown one is an error.
    store.tupper(&["stop", "-t", "0", "box"]).ok();
    let line = store.tupper(&["top", "box"]).fails(125);
    assert!(line.contains("top box: it is not running"), "{line}");
    let line = store.tupper(&["top", "nobody"]).fails(125);
    assert!(line.contains("no such container"), "{line}");
    let line = store.tupper(&["top"]).fails(125);
    assert!(line.contains("top takes one container"), "{line}");
    store.tupper(&["rm", "box"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn top_shows_the_terminal_of_a_t_container() {
    let store = store_with_busybox();
    // -t makes the container a terminal of its own, with or without the user's.
    let mut run = store.cmd();
    run.args([
        "run", "--name", "tty", "-t", "--net", "none", "bb", "sleep", "1000",
    ]);
    let (mut child, dog) = spawn_quiet(run, Duration::from_secs(60));
    store.wait_running("tty");
    assert!(wait_for(Duration::from_secs(10), || top(&store, "tty")
        .len()
        == 1));
    let rows = top(&store, "tty");
    assert_eq!(rows[0][7], "sleep 1000", "{rows:?}");
    assert!(rows[0][5].starts_with("pts/"), "{rows:?}");
    store.tupper(&["rm", "-f", "tty"]).ok();
    child.wait().unwrap();
    assert!(!dog.fired());
    store.assert_no_leftovers();
}
