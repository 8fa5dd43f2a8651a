//! `tupper events`: docker's events, kept in the store's log by the
//! commands that make them, read back, chosen and followed.

mod common;

use common::*;
use std::io::BufRead;
use std::time::Duration;

/// `events --since 1h --until 0s --format json ARGS...`: the past events,
/// parsed.
fn past_events(store: &TestStore, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec![
        "events", "--since", "1h", "--until", "0s", "--format", "json",
    ];
    all.extend(args);
    store
        .tupper(&all)
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// `ACTION NAME` of each event.
fn actions(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["Action"].as_str().unwrap(),
                e["Actor"]["Attributes"]["name"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

#[test]
fn each_command_leaves_docker_s_events_in_order() {
    let store = store_with_busybox();
    store
        .tupper(&[
            "run", "--rm", "--net", "none", "--name", "a", "bb", "sh", "-c", "exit 3",
        ])
        .code(3);
    store
        .tupper(&[
            "create", "--net", "none", "--name", "c", "-l", "tier=db", "bb", "true",
        ])
        .ok();
    store.tupper(&["rename", "c", "d"]).ok();
    store.tupper(&["start", "d"]).ok();
    assert_eq!(store.tupper(&["wait", "d"]).ok(), "0\n");
    store.tupper(&["rm", "d"]).ok();
    store.detached(&["--name", "p"], &["sleep", "100"]);
    store.tupper(&["pause", "p"]).ok();
    store.tupper(&["unpause", "p"]).ok();
    // `sleep` as PID 1 ignores SIGTERM: SIGKILL after the timeout.
    store.tupper(&["stop", "-t", "0", "p"]).ok();
    store.tupper(&["rm", "p"]).ok();
    store.tupper(&["tag", "bb", "bb2"]).ok();
    store.tupper(&["rmi", "bb2"]).ok();
    store.tupper(&["volume", "create", "v"]).ok();
    store.tupper(&["volume", "rm", "v"]).ok();

    let containers = past_events(&store, &["--filter", "type=container"]);
    assert_eq!(
        actions(&containers),
        [
            "create a",
            "start a",
            "die a",
            "destroy a",
            "create c",
            "rename d",
            "start d",
            "die d",
            "destroy d",
            "create p",
            "start p",
            "pause p",
            "unpause p",
            "kill p",
            "kill p",
            "die p",
            "stop p",
            "destroy p",
        ],
        "{containers:#?}"
    );
    let attribute = |i: usize, key: &str| containers[i]["Actor"]["Attributes"][key].clone();
    assert_eq!(attribute(2, "exitCode"), "3");
    assert_eq!(attribute(2, "image"), "bb");
    assert_eq!(
        attribute(4, "tier"),
        "db",
        "labels are attributes, docker's"
    );
    assert_eq!(attribute(5, "oldName"), "c");
    assert_eq!(attribute(13, "signal"), "15");
    assert_eq!(attribute(14, "signal"), "9");
    assert_eq!(attribute(15, "exitCode"), "137");
    // docker's fields: the same ID throughout a container's life.
    let id = containers[0]["Actor"]["ID"].as_str().unwrap();
    assert_eq!(id.len(), 12);
    assert!(containers[..4]
        .iter()
        .all(|e| e["id"] == id && e["from"] == "bb"));
    assert!(containers
        .iter()
        .all(|e| e["Type"] == "container" && e["scope"] == "local"));
    let times: Vec<i64> = containers
        .iter()
        .map(|e| e["timeNano"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    let others = past_events(&store, &["-f", "type=image", "-f", "type=volume"]);
    let others: Vec<String> = others
        .iter()
        .filter(|e| e["Actor"]["ID"] != "bb")
        .map(|e| {
            format!(
                "{} {} {}",
                e["Type"].as_str().unwrap(),
                e["Action"].as_str().unwrap(),
                e["Actor"]["ID"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        others,
        [
            "image tag bb2",
            "image delete bb2",
            "volume create v",
            "volume destroy v"
        ]
    );

    // docker's line, chosen by event and container.
    let line = store
        .tupper(&[
            "events",
            "--since",
            "1h",
            "--until",
            "0s",
            "-f",
            "event=die",
            "-f",
            "container=a",
        ])
        .ok();
    let time = line.split(' ').next().unwrap();
    assert_eq!(time.len(), 30, "{line}");
    assert_eq!(
        &line[time.len()..],
        format!(" container die {id} (exitCode=3, image=bb, name=a)\n")
    );
    // Without --since, only what comes after: nothing here.
    assert_eq!(store.tupper(&["events", "--until", "0s"]).ok(), "");
    assert_eq!(past_events(&store, &["-f", "container=nothing"]).len(), 0);

    // Refused: nothing printed.
    for (args, why) in [
        (&["events", "-f", "type=pod"][..], "type=pod"),
        (&["events", "-f", "colour=red"], "the keys are"),
        (&["events", "--since", "soon"], "not a time"),
        (&["events", "extra"], "takes no arguments"),
    ] {
        let line = store.tupper(args).fails(125);
        assert!(line.contains(why), "{args:?}: {line}");
    }
    store.assert_no_leftovers();
}

/// Without `--until`, `events` goes on printing what happens, until it
/// is ended.
#[test]
fn events_follow_what_happens() {
    let store = store_with_busybox();
    let mut child = tupper(&store)
        .args(["events", "-f", "container=f", "--format", "{{.Action}}"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    store
        .tupper(&[
            "run", "--rm", "--net", "none", "--name", "other", "bb", "true",
        ])
        .ok();
    store
        .tupper(&["run", "--rm", "--net", "none", "--name", "f", "bb", "true"])
        .ok();
    let mut got = Vec::new();
    while got.len() < 4 {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => got.push(line),
            Err(_) => break,
        }
    }
    assert_eq!(got, ["create", "start", "die", "destroy"]);
    assert_eq!(child.try_wait().unwrap(), None, "it goes on");
    child.kill().unwrap();
    child.wait().unwrap();
    store.assert_no_leftovers();
}

/// docker's exec events: `exec_create` and `exec_start` with the command,
/// `exec_die` with its exit code, one `execID` throughout.
#[test]
fn an_exec_tells_its_command_and_its_end() {
    let store = store_with_busybox();
    store.detached(&["--name", "x"], &["sleep", "100"]);
    store.tupper(&["exec", "x", "sh", "-c", "exit 4"]).code(4);
    let events = past_events(
        &store,
        &[
            "-f",
            "event=exec_create",
            "-f",
            "event=exec_start",
            "-f",
            "event=exec_die",
        ],
    );
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["Action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "exec_create: sh -c exit 4",
            "exec_start: sh -c exit 4",
            "exec_die"
        ]
    );
    let exec_id = &events[0]["Actor"]["Attributes"]["execID"];
    assert_eq!(exec_id.as_str().map(str::len), Some(12), "{events:#?}");
    assert!(events
        .iter()
        .all(|e| &e["Actor"]["Attributes"]["execID"] == exec_id));
    assert!(events
        .iter()
        .all(|e| e["Actor"]["Attributes"]["name"] == "x"));
    assert_eq!(events[2]["Actor"]["Attributes"]["exitCode"], "4");
    // A health check's probes are execs too (docker's), told by the
    // library's `Exec::wait`.
    let check = [
        "--name",
        "h",
        "--health-cmd",
        "true",
        "--health-interval",
        "100ms",
    ];
    store.detached(&check, &["sleep", "100"]);
    store
        .tupper(&["wait", "-i", "20ms", "--condition", "healthy", "h"])
        .ok();
    let probes = past_events(&store, &["-f", "event=exec_die", "-f", "container=h"]);
    assert!(!probes.is_empty());
    assert!(
        probes
            .iter()
            .all(|e| e["Actor"]["Attributes"]["exitCode"] == "0"),
        "{probes:#?}"
    );
    // Its status went from starting to healthy: docker's event, once.
    let health = past_events(&store, &["-f", "event=health_status", "-f", "container=h"]);
    let health: Vec<&str> = health
        .iter()
        .map(|e| e["Action"].as_str().unwrap())
        .collect();
    assert_eq!(health, ["health_status: healthy"]);
    store.tupper(&["rm", "-f", "x", "h"]).ok();
    store.assert_no_leftovers();
}
