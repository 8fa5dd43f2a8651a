//! Container records: `ps`, `rm`, `--rm`, and what a crash (tupper killed with
//! SIGKILL mid-run) leaves behind (issue 2, "run", the records paragraph).

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn find<'a>(recs: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    recs.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no record named {name}: {recs:?}"))
}

#[test]
fn exited_container_is_listed_with_its_exit_code_and_rm_removes_it() {
    let store = store_with_busybox();
    store
        .tupper(&[
            "run", "--net", "none", "--name", "three", "bb", "sh", "-c", "exit 3",
        ])
        .code(3);
    store
        .tupper(&["run", "--net", "none", "--name", "zero", "bb", "true"])
        .ok();
    // ps without -a lists running containers only.
    assert!(
        store.ps_json(false).is_empty(),
        "{:?}",
        store.ps_json(false)
    );
    let recs = store.ps_json(true);
    assert_eq!(recs.len(), 2, "{recs:?}");
    let r = find(&recs, "three");
    assert_eq!(r["status"], "exited", "{r}");
    assert_eq!(r["exit_code"], 3, "{r}");
    assert_eq!(r["image"], "bb", "{r}");
    assert_eq!(
        r["command"],
        serde_json::json!(["sh", "-c", "exit 3"]),
        "{r}"
    );
    assert!(!r["created"].is_null(), "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 12);
    assert_eq!(find(&recs, "zero")["exit_code"], 0);
    // The text form has a line for each.
    let text = store.tupper(&["ps", "-a"]).ok();
    assert!(
        text.lines()
            .any(|l| l.contains("three") && l.contains(&id[..12])),
        "{text}"
    );
    assert!(text.lines().any(|l| l.contains("zero")), "{text}");
    assert!(store.container_path(&id).is_dir());
    let zero = find(&recs, "zero")["id"].as_str().unwrap().to_string();

    // rm by name and by id, both in one call.
    store.tupper(&["rm", "three", &zero]).ok();
    assert!(store.ps_json(true).is_empty());
    assert!(!store.container_path(&id).exists());
    assert!(!store.container_path(&zero).exists());
    assert_eq!(store.subvolumes(), vec!["images/bb"]);
    store.assert_no_leftovers();
    // The name is free again.
    store
        .tupper(&[
            "run", "--rm", "--net", "none", "--name", "three", "bb", "true",
        ])
        .ok();
    // rm of something unknown fails cleanly.
    store.tupper(&["rm", "three"]).fails(125);
}

#[test]
fn rm_leaves_nothing_with_the_rm_flag() {
    let store = store_with_busybox();
    let state = store.state_entries();
    store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--name",
            "gone",
            "bb",
            "sh",
            "-c",
            "echo x > /x; exit 4",
        ])
        .code(4);
    assert!(
        store.container_ids().is_empty(),
        "{:?}",
        store.container_ids()
    );
    assert!(store.ps_json(true).is_empty());
    assert_eq!(store.subvolumes(), vec!["images/bb"]);
    // No record file is left (locks created once may stay).
    let after = store.state_entries();
    let new: Vec<&String> = after.iter().filter(|e| !state.contains(e)).collect();
    assert!(
        new.iter().all(|e| !e.contains("gone")),
        "record left in state/: {new:?}"
    );
    store.assert_no_leftovers();
}

#[test]
fn running_container_is_listed_and_rm_f_kills_it() {
    let store = store_with_busybox();
    let mut run = store.cmd();
    run.args([
        "run", "--net", "none", "--name", "busy", "bb", "sleep", "60",
    ]);
    let (mut child, dog) = spawn_quiet(run, Duration::from_secs(60));
    store.wait_running("busy");
    let r = store
        .ps_json(false)
        .into_iter()
        .find(|r| r["name"] == "busy")
        .unwrap();
    assert_eq!(r["status"], "running", "{r}");
    // Without -f a running container is not removed.
    store.tupper(&["rm", "busy"]).fails(125);
    assert_eq!(store.ps_json(false).len(), 1);
    store.tupper(&["rm", "-f", "busy"]).ok();
    let st = child.wait().unwrap();
    assert!(!dog.fired(), "tupper did not end after rm -f");
    assert_eq!(st.code(), Some(128 + 9), "{st:?}");
    assert!(store.ps_json(true).is_empty(), "{:?}", store.ps_json(true));
    store.assert_no_leftovers();
}

/// `rm -f` of a container that is still starting (its record is written,
/// its pid not yet: here the clone is held back 3 s by strace) kills it once
/// it has a pid, instead of waiting for its command to end.
#[test]
fn rm_f_of_a_container_still_starting_kills_it() {
    let store = store_with_busybox();
    let mut run = Command::new("strace");
    run.args(["-f", "-o", "/dev/null", "-e", "trace=clone3"])
        .args(["-e", "inject=clone3:delay_enter=3000000:when=1"])
        .arg(TUPPER)
        .args(["--root", store.root_str()])
        .args([
            "run", "--net", "none", "--name", "slow", "bb", "sleep", "60",
        ]);
    let (mut child, dog) = spawn_quiet(run, Duration::from_secs(90));
    store.wait_running("slow");
    let started = std::time::Instant::now();
    store.tupper(&["rm", "-f", "slow"]).ok();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "rm -f waited for the command: {:?}",
        started.elapsed()
    );
    child.wait().unwrap();
    assert!(!dog.fired(), "tupper did not end after rm -f");
    assert!(store.ps_json(true).is_empty(), "{:?}", store.ps_json(true));
    store.assert_no_leftovers();
}

/// A static program that replaces its parent-death signal (here with none,
/// as any program may), then waits: as PID 1 it outlives a killed tupper.
fn pdeathsig_clearing_program(store: &TestStore) -> Vec<u8> {
    store.static_program(
        "nopdeath",
        "#include <sys/prctl.h>\n#include <unistd.h>\n\
         int main(void) { prctl(PR_SET_PDEATHSIG, 0); for (;;) pause(); }\n",
    )
}

/// The container's PID 1 may replace the parent-death signal that ends it
/// with its tupper. When that tupper is killed, the container is shown dead
/// but still runs: `rm` refuses to take its snapshot from under it, `rm -f`
/// ends it (its PID 1, and with it the PID namespace) and removes it.
#[test]
fn a_command_that_outlives_its_killed_tupper_is_ended_by_rm_f() {
    let store = TestStore::new();
    let mut t = TarBuilder::new();
    t.file("nopdeath", 0o755, &pdeathsig_clearing_program(&store));
    store.tupper_stdin(&["import", "np", "-"], &t.finish()).ok();
    let mut run = store.cmd();
    run.args([
        "run",
        "--net",
        "none",
        "--name",
        "orphan",
        "np",
        "/nopdeath",
    ]);
    let (mut child, dog) = spawn_quiet(run, Duration::from_secs(60));
    let tupper_pid = child.id() as i32;
    let pid1 = wait_for_descendant(tupper_pid, "nopdeath");
    kill(tupper_pid, 9);
    child.wait().unwrap();
    assert!(!dog.fired());
    std::thread::sleep(Duration::from_millis(200));
    let still = pid1.alive();
    if !still {
        panic!("the program did not outlive tupper: the test proves nothing");
    }
    let r = find(&store.ps_json(true), "orphan").clone();
    assert_eq!(r["status"], "dead", "{r}");
    assert_eq!(r["pid"].as_i64(), Some(i64::from(pid1.pid)), "{r}");
    let out = store.tupper(&["rm", "orphan"]);
    if out.code == 0 {
        kill(pid1.pid, 9); // ours: clean up before failing
    }
    out.fails(125);
    assert!(out.stderr.contains("still runs"), "{out:?}");
    assert!(pid1.alive());
    // stop does not pretend it is stopped: rm -f is what ends it.
    let out = store.tupper(&["stop", "orphan"]);
    out.fails(125);
    assert!(out.stderr.contains("still runs"), "{out:?}");
    assert!(pid1.alive());
    store.tupper(&["rm", "-f", "orphan"]).ok();
    let gone = wait_for(Duration::from_secs(10), || !pid1.alive());
    if !gone {
        kill(pid1.pid, 9);
    }
    assert!(gone, "rm -f did not end the orphaned command");
    assert!(store.ps_json(true).is_empty());
    store.assert_no_leftovers();
}

#[test]
fn crash_leaves_a_dead_record_that_rm_removes() {
    let store = store_with_busybox();
    let mut child = store
        .cmd()
        .args([
            "run", "--net", "none", "--name", "crash", "bb", "sleep", "100",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dog = Watchdog::new(child.id(), Duration::from_secs(60));
    let pid = child.id() as i32;
    assert!(
        wait_for(Duration::from_secs(20), || descendants(pid)
            .iter()
            .any(|p| comm(p.pid) == "sleep")),
        "the container did not start"
    );
    let procs = descendants(pid);
    kill(pid, 9);
    child.wait().unwrap();
    assert!(!dog.fired());
    // The container's processes die with tupper.
    let survived = !wait_for(Duration::from_secs(10), || procs.iter().all(|p| !p.alive()));
    for p in &procs {
        if p.alive() {
            kill(p.pid, 9); // ours: clean up before failing
        }
    }
    assert!(!survived, "the container outlived tupper: {procs:?}");

    let recs = store.ps_json(true);
    let r = find(&recs, "crash");
    assert_eq!(r["status"], "dead", "{r}");
    assert!(
        store.ps_json(false).iter().all(|r| r["name"] != "crash"),
        "shown as running"
    );
    let id = r["id"].as_str().unwrap().to_string();
    // Nothing else breaks: other containers run, and the name is still taken.
    store.run_rm("bb", &["true"]).ok();
    store
        .tupper(&[
            "run", "--rm", "--net", "none", "--name", "crash", "bb", "true",
        ])
        .fails(125);
    store.tupper(&["rm", "crash"]).ok();
    assert!(store.ps_json(true).is_empty());
    assert!(!store.container_path(&id).exists());
    store.sync();
    assert_eq!(store.subvolumes(), vec!["images/bb"]);
    store.assert_no_leftovers();
}

#[test]
fn crash_of_a_rm_container_is_shown_and_removed_too() {
    let store = store_with_busybox();
    let mut child = store
        .cmd()
        .args(["run", "--rm", "--net", "none", "bb", "sleep", "100"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dog = Watchdog::new(child.id(), Duration::from_secs(60));
    let pid = child.id() as i32;
    assert!(wait_for(Duration::from_secs(20), || descendants(pid)
        .iter()
        .any(|p| comm(p.pid) == "sleep")));
    let procs = descendants(pid);
    kill(pid, 9);
    child.wait().unwrap();
    assert!(!dog.fired());
    wait_for(Duration::from_secs(10), || procs.iter().all(|p| !p.alive()));
    for p in &procs {
        kill(p.pid, 9);
    }
    let recs = store.ps_json(true);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["status"], "dead");
    let id = recs[0]["id"].as_str().unwrap().to_string();
    store.tupper(&["rm", &id]).ok();
    store.assert_no_leftovers();
}

#[test]
fn ps_a_sweeps_files_a_crash_left_without_a_record() {
    let store = store_with_busybox();
    let dir = store.root().join("state/containers");
    // A run killed between its run lock and its record, and an interrupted
    // record update of a container that is gone.
    std::fs::write(dir.join("0123456789ab.lock"), "").unwrap();
    std::fs::write(dir.join(".ba9876543210.json.tmp4242"), "{").unwrap();
    // A live run's lock must survive the sweep.
    let held = dir.join("aaaaaaaaaaaa.lock");
    std::fs::write(&held, "").unwrap();
    let f = std::fs::File::open(&held).unwrap();
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).unwrap();
    assert!(store.ps_json(true).is_empty());
    let left = list_dir(&dir);
    assert_eq!(left, vec!["aaaaaaaaaaaa.lock".to_string()], "{left:?}");
    drop(f);
    assert!(store.ps_json(true).is_empty());
    assert!(list_dir(&dir).is_empty(), "{:?}", list_dir(&dir));
}

/// A run killed between creating its record and finishing the write leaves
/// an empty or cut-off `ID.json` (the name and snapshot come after it): `ps
/// -a` removes it once its run lock is free, and not while it is held (the
/// record is being written).
#[test]
fn ps_a_sweeps_a_record_a_crash_left_half_written() {
    let store = store_with_busybox();
    let dir = store.root().join("state/containers");
    for (id, text) in [("0123456789ab", ""), ("ba9876543210", "{\"id\":\"ba98")] {
        std::fs::write(dir.join(format!("{id}.lock")), "").unwrap();
        std::fs::write(dir.join(format!("{id}.json")), text).unwrap();
    }
    let held = dir.join("aaaaaaaaaaaa.lock");
    std::fs::write(&held, "").unwrap();
    std::fs::write(dir.join("aaaaaaaaaaaa.json"), "").unwrap();
    let f = std::fs::File::open(&held).unwrap();
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).unwrap();
    assert!(store.ps_json(true).is_empty());
    let left = list_dir(&dir);
    assert_eq!(
        left,
        vec![
            "aaaaaaaaaaaa.json".to_string(),
            "aaaaaaaaaaaa.lock".to_string()
        ],
        "{left:?}"
    );
    drop(f);
    assert!(store.ps_json(true).is_empty());
    assert!(list_dir(&dir).is_empty(), "{:?}", list_dir(&dir));
    store.assert_no_leftovers();
}

#[test]
fn rm_f_of_several_rm_containers_removes_them_all() {
    let store = store_with_busybox();
    let names = ["ra", "rb", "rc"];
    let mut children: Vec<_> = names
        .iter()
        .map(|n| {
            store
                .cmd()
                .args([
                    "run", "--rm", "--net", "none", "--name", n, "bb", "sleep", "60",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    assert!(
        wait_for(Duration::from_secs(20), || store.ps_json(false).len() == 3),
        "not all three are running: {:?}",
        store.ps_json(true)
    );
    // Each one removes itself when killed: rm -f must not stop at the first.
    store.tupper(&["rm", "-f", "ra", "rb", "rc"]).ok();
    for c in &mut children {
        assert_eq!(c.wait().unwrap().code(), Some(128 + 9));
    }
    assert!(store.ps_json(true).is_empty(), "{:?}", store.ps_json(true));
    store.assert_no_leftovers();
}

/// `--format` (docker's Go templates, the part scripts use) for `ps`,
/// `inspect` and `images`: fields as tupper's JSON names them or as docker
/// does, `json`, `index`, `join`; `--format json` one item a line; a bad
/// template is a one-line error (125).
#[test]
fn format_templates_for_ps_inspect_and_images() {
    let store = store_with_busybox();
    let id = store.detached(&["--name", "fmt", "-l", "tier=web"], &["sleep", "60"]);
    let line = |args: &[&str]| store.tupper(args).ok();
    assert_eq!(
        line(&[
            "ps",
            "--format",
            "{{.ID}}\\t{{.Names}}\\t{{.State}}\\t{{index .Labels \"tier\"}}"
        ]),
        format!("{id}\tfmt\trunning\tweb\n")
    );
    let r = store.inspect("fmt");
    assert_eq!(
        line(&[
            "inspect",
            "-f",
            "{{.pid}} {{json .labels}} {{join .command \",\"}}",
            "fmt"
        ]),
        format!("{} {{\"tier\":\"web\"}} sleep,60\n", r["pid"])
    );
    assert_eq!(
        line(&["inspect", "--format", "{{.nothing}}", "fmt", id.as_str()]),
        "<no value>\n<no value>\n"
    );
    assert_eq!(line(&["images", "--format", "{{.Name}}"]), "bb\n");
    // One JSON object a line, as --json's items.
    let json = line(&["ps", "--format", "json"]);
    assert_eq!(json.lines().count(), 1, "{json}");
    let item: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(item["id"], id.as_str());
    for (args, why) in [
        (&["ps", "--format", "{{.ID"][..], "without its }}"),
        (&["inspect", "-f", "{{range .x}}{{end}}", "fmt"], "range"),
        (&["images", "--format", "table {{.Name}}"], "table"),
    ] {
        let e = store.tupper(args).fails(125);
        assert!(e.contains("--format") && e.contains(why), "{args:?}: {e}");
    }
    store.tupper(&["rm", "-f", "fmt"]).ok();
    store.assert_no_leftovers();
}

/// docker's management commands (`container ls`, `image rm`, ...) are the
/// plain ones; `inspect` of a name that is no container shows the image of
/// that name (docker's), `--type`/`image inspect`/`container inspect` look
/// at one kind only.
#[test]
fn management_commands_and_inspect_of_an_image() {
    let store = store_with_busybox();
    let line = |args: &[&str]| store.tupper(args).ok();
    store
        .tupper(&["run", "--net", "none", "--name", "mc", "bb", "true"])
        .ok();
    let id = store.inspect("mc")["id"].as_str().unwrap().to_string();
    assert_eq!(line(&["container", "ls", "-a", "-q"]), format!("{id}\n"));
    assert_eq!(line(&["image", "ls", "-q"]), "bb\n");
    let image = &serde_json::from_str::<serde_json::Value>(&line(&["inspect", "bb"])).unwrap()[0];
    assert_eq!(image["name"], "bb", "{image}");
    assert_eq!(image["read_only"], true, "{image}");
    assert_eq!(line(&["image", "inspect", "-f", "{{.name}}", "bb"]), "bb\n");
    assert_eq!(
        line(&["container", "inspect", "-f", "{{.name}}", "mc"]),
        "mc\n"
    );
    assert_eq!(
        line(&["inspect", "--type", "image", "-f", "{{.name}}", "bb"]),
        "bb\n"
    );
    for (args, why) in [
        (&["container", "inspect", "bb"][..], "no such container: bb"),
        (&["image", "inspect", "mc"], "unknown image mc"),
        (&["inspect", "nothing"], "no such container: nothing"),
        (&["container", "frob"], "unknown command \"container frob\""),
        (
            &["container", "attach", "x"],
            "unknown command \"container attach\"",
        ),
        (&["image", "run", "bb"], "unknown command \"image run\""),
    ] {
        let e = store.tupper(args).fails(125);
        assert!(e.contains(why), "{args:?}: {e}");
    }
    line(&["container", "rm", "mc"]);
    line(&["image", "tag", "bb", "bb2"]);
    assert_eq!(line(&["image", "rm", "bb2"]), "bb2\n");
    assert_eq!(line(&["image", "ls", "-q"]), "bb\n");
    store.assert_no_leftovers();
}

/// podman's `run --replace` / `create --replace`: the container of that
/// name, running or not, goes first; without `--name`, or with an image
/// that does not exist, nothing changes.
#[test]
fn replace_removes_the_container_of_that_name_first() {
    let store = store_with_busybox();
    store
        .tupper(&["run", "--net", "none", "--name", "r", "bb", "true"])
        .ok();
    let first = store.inspect("r")["id"].as_str().unwrap().to_string();
    let out = store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--replace",
            "--name",
            "r",
            "bb",
            "echo",
            "second",
        ])
        .ok();
    assert_eq!(out, "second\n");
    let second = store.inspect("r")["id"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert_eq!(store.container_ids(), [second]);
    // A running one is killed and removed.
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "-d",
            "--name",
            "r",
            "--replace",
            "bb",
            "sleep",
            "600",
        ])
        .ok();
    store.wait_running("r");
    assert_eq!(store.container_ids().len(), 1);
    let before = store.state();
    for (args, why) in [
        (
            &["run", "--net", "none", "--replace", "bb", "true"][..],
            "--replace goes with --name",
        ),
        (
            &[
                "create",
                "--net",
                "none",
                "--replace",
                "--name",
                "r",
                "nosuch",
            ],
            "unknown image nosuch",
        ),
    ] {
        let e = store.tupper(args).fails(125);
        assert!(e.contains(why), "{args:?}: {e}");
        before.assert_same(&store.state(), &format!("{args:?}"));
    }
    store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--replace",
            "--name",
            "r",
            "bb",
            "true",
        ])
        .ok();
    let ps = store.ps_json(true);
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(ps[0]["status"], "created", "{ps:?}");
    store.tupper(&["rm", "r"]).ok();
    store.assert_no_leftovers();
}

/// `system prune` (docker's): the containers that do not run, then the
/// networks no container is on; with `--volumes` the volumes none names.
/// A running container, and what it uses, stay.
#[test]
fn system_prune_takes_what_nothing_running_uses() {
    let store = store_with_busybox();
    let id_of = |name: &str| store.inspect(name)["id"].as_str().unwrap().to_string();
    store
        .tupper(&[
            "run",
            "--name",
            "ex",
            "--net",
            "none",
            "bb",
            "sh",
            "-c",
            "echo exited > /x",
        ])
        .ok();
    store
        .tupper(&[
            "run",
            "--name",
            "volu",
            "--net",
            "none",
            "-v",
            "keep:/k",
            "bb",
            "sh",
            "-c",
            "echo hello > /k/f",
        ])
        .ok();
    let (ex, volu) = (id_of("ex"), id_of("volu"));
    store
        .tupper(&[
            "run", "-d", "--name", "live", "--net", "none", "-v", "busy:/b", "bb", "sleep", "600",
        ])
        .ok();
    store.wait_running("live");
    store.tupper(&["network", "create", "unused"]).ok();
    store.tupper(&["volume", "create", "vol"]).ok();
    // What it frees is what system df finds reclaimable in the containers
    // (their sizes are checked against GNU find in tests/system.rs).
    let df = store
        .tupper(&[
            "system",
            "df",
            "--format",
            "{{.Type}}:{{.ReclaimableBytes}}:{{.Reclaimable}}",
        ])
        .ok();
    let line = df.lines().find(|l| l.starts_with("Containers:")).unwrap();
    let f: Vec<&str> = line.split(':').collect();
    assert!(f[1].parse::<u64>().unwrap() > 0, "{df}");
    let reclaimable = f[2].split(" (").next().unwrap();
    let out = store.tupper(&["system", "prune", "-f"]).ok();
    // Newest first, as ps lists them.
    assert_eq!(
        out,
        format!(
            "Deleted Containers:\n{volu}\n{ex}\n\nDeleted Networks:\nunused\n\n\
             Total reclaimed space: {reclaimable}\n"
        )
    );
    let volumes = store.tupper(&["volume", "ls", "-q"]).ok();
    assert_eq!(volumes, "busy\nkeep\nvol\n");
    // keep holds "hello\n"; vol nothing.
    let out = store.tupper(&["system", "prune", "--volumes"]).ok();
    assert_eq!(
        out,
        "Deleted Volumes:\nkeep\nvol\n\nTotal reclaimed space: 6B\n"
    );
    assert_eq!(store.ps_json(true).len(), 1);
    let e = store.tupper(&["system", "bogus"]).fails(125);
    assert!(e.contains("system prune"), "{e}");
    store.tupper(&["rm", "-f", "live"]).ok();
    store.tupper(&["volume", "rm", "busy"]).ok();
    store.assert_no_leftovers();
}
