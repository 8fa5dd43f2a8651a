//! `stats`: what running containers use (docker's `stats`), read from their
//! cgroup when they have one, else from `/proc`.

mod common;

use common::*;
use std::time::Duration;

/// `stats --no-stream --json NAMES...`, by name.
fn stats(store: &TestStore, names: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["stats", "--no-stream", "--json"];
    args.extend(names);
    let out = store.tupper(&args).ok();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn of<'a>(list: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    list.iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list:?}"))
}

#[test]
fn stats_shows_what_each_container_uses() {
    let store = store_with_busybox();
    store.detached(&["--name", "busy"], &["sh", "-c", "while :; do :; done"]);
    store.detached(
        &["--name", "idle", "-m", "64m"],
        &["sh", "-c", "sleep 100 & sleep 100 & wait"],
    );
    assert!(
        wait_for(Duration::from_secs(20), || store
            .tupper(&["top", "idle"])
            .ok()
            .lines()
            .count()
            == 4),
        "idle's sleeps did not start"
    );
    let list = stats(&store, &["busy", "idle"]);
    assert_eq!(list.len(), 2, "{list:?}");
    let (busy, idle) = (of(&list, "busy"), of(&list, "idle"));
    // A busy loop keeps a CPU busy; sleeps do not.
    let (b, i) = (
        busy["cpu_percent"].as_f64().unwrap(),
        idle["cpu_percent"].as_f64().unwrap(),
    );
    assert!(b > 10.0 && i < b, "busy {b}%, idle {i}%");
    // The limited one is read from its cgroup: its limit, its three tasks.
    assert_eq!(idle["memory_limit_bytes"], 64 << 20, "{idle}");
    assert_eq!(idle["pids"], 3, "{idle}");
    let used = idle["memory_bytes"].as_u64().unwrap();
    assert!(used > 0 && used < 64 << 20, "{idle}");
    // The other from /proc: the host's memory, its one task.
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total: u64 = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(busy["memory_limit_bytes"], total * 1024, "{busy}");
    assert_eq!(busy["pids"], 1, "{busy}");
    assert!(busy["memory_bytes"].as_u64().unwrap() > 0, "{busy}");
    // --net none: no interface but lo.
    assert_eq!(
        (&busy["net_rx_bytes"], &busy["net_tx_bytes"]),
        (&0.into(), &0.into())
    );
    // docker's table, every running container without names.
    let table = store.tupper(&["stats", "--no-stream"]).ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].split_whitespace().collect::<Vec<_>>()
            == [
                "CONTAINER",
                "ID",
                "NAME",
                "CPU",
                "%",
                "MEM",
                "USAGE",
                "/",
                "LIMIT",
                "MEM",
                "%",
                "NET",
                "I/O",
                "BLOCK",
                "I/O",
                "PIDS"
            ],
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" idle ") && l.contains(" / 64MiB ")),
        "{table}"
    );
    // docker's --format fields, as its table writes them; tupper's too.
    let line = store
        .tupper(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}} {{.pids}} {{.CPUPerc}}",
            "idle",
        ])
        .ok();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 7, "{line}");
    assert_eq!((f[0], f[2], f[3]), ("idle", "/", "64MiB"), "{line}");
    assert!(f[1].ends_with("iB") || f[1].ends_with('B'), "{line}");
    assert_eq!(f[4], f[5], "{line}");
    assert!(f[6].ends_with('%'), "{line}");
    // A named container that is not running is an error.
    store.tupper(&["stop", "-t", "0", "busy"]).ok();
    let e = store.tupper(&["stats", "--no-stream", "busy"]).fails(125);
    assert!(e.contains("stats busy: it is not running"), "{e}");
    store.tupper(&["rm", "-f", "busy", "idle"]).ok();
    store.assert_no_leftovers();
}
