//! `tupper run`: exit codes (docker's), signal forwarding, stdio, the default
//! command and the PATH search inside the container (issue 2, "run").

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn exit_0() {
    let store = store_with_busybox();
    store.run_rm("bb", &["true"]).code(0);
    store.assert_no_leftovers();
}

#[test]
fn exit_code_of_the_command() {
    let store = store_with_busybox();
    store.run_rm("bb", &["sh", "-c", "exit 3"]).code(3);
    store.run_rm("bb", &["false"]).code(1);
    store.run_rm("bb", &["sh", "-c", "exit 255"]).code(255);
    store.assert_no_leftovers();
}

/// The command killed by a signal gives 128+N. The kernel ignores a signal sent
/// to a PID namespace's init from inside unless init handles it (so
/// `sh -c 'kill -9 $$'` as PID 1 survives, as in docker without `--init`); from
/// the parent namespace SIGKILL is always delivered.
#[test]
fn killed_by_a_signal_is_128_plus_n() {
    let store = store_with_busybox();
    let mut child = store
        .cmd()
        .args(["run", "--rm", "--net", "none", "bb", "sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dog = Watchdog::new(child.id(), Duration::from_secs(60));
    let tupper_pid = child.id() as i32;
    assert!(
        wait_for(Duration::from_secs(20), || descendants(tupper_pid)
            .iter()
            .any(|p| comm(p.pid) == "sleep")),
        "the container's sleep did not start"
    );
    let sleep = descendants(tupper_pid)
        .into_iter()
        .find(|p| comm(p.pid) == "sleep")
        .unwrap();
    kill(sleep.pid, 9);
    let st = child.wait().unwrap();
    assert!(!dog.fired(), "tupper hung");
    assert_eq!(st.code(), Some(128 + 9), "{st:?}");
    store.assert_no_leftovers();
}

#[test]
fn exit_126_for_a_file_that_cannot_be_executed() {
    let store = store_with_busybox();
    assert!(is_non_executable_file(
        &store.image_path("bb").join("etc/passwd")
    ));
    let out = store.run_rm("bb", &["/etc/passwd"]);
    out.fails(126);
    assert!(out.stderr.contains("/etc/passwd"), "{out:?}");
    // A directory cannot be executed either.
    store.run_rm("bb", &["/etc"]).fails(126);
    store.assert_no_leftovers();
}

#[test]
fn exit_127_for_a_missing_command() {
    let store = store_with_busybox();
    let out = store.run_rm("bb", &["no-such-command"]);
    out.fails(127);
    assert!(out.stderr.contains("no-such-command"), "{out:?}");
    store.run_rm("bb", &["/bin/nope"]).fails(127);
    store.assert_no_leftovers();
}

/// A command that is there but whose `#!` interpreter or ELF loader is not:
/// still 127 (as docker), but the message names the file and what is missing
/// instead of claiming the command is not found.
#[test]
fn exit_127_names_a_missing_interpreter() {
    let store = TestStore::new();
    let mut t = TarBuilder::with_busybox(&["sh"]);
    t.file("bin/script", 0o755, b"#!/bin/nosuchinterp\necho hi\n");
    // A dynamically linked host binary, without its loader in this image.
    let dynamic = ["/usr/bin/env", "/bin/ls", "/usr/bin/stat"]
        .into_iter()
        .find(|p| std::fs::read(p).is_ok_and(|b| b.windows(15).any(|w| w == b"/lib64/ld-linux")))
        .expect("a dynamically linked host binary");
    t.file("bin/dyn", 0o755, &std::fs::read(dynamic).unwrap());
    store
        .tupper_stdin(&["import", "odd", "-"], &t.finish())
        .ok();
    for (cmd, shown) in [("script", "/bin/script"), ("/bin/dyn", "/bin/dyn")] {
        let out = store.run_rm("odd", &[cmd]);
        out.fails(127);
        assert!(
            out.stderr
                .contains(&format!("exec {shown}: its interpreter")),
            "{out:?}"
        );
    }
    // A command that is really missing keeps its message.
    let out = store.run_rm("odd", &["nosuch"]);
    out.fails(127);
    assert!(out.stderr.contains("not found"), "{out:?}");
    store.assert_no_leftovers();
}

/// A signal sent to tupper's whole process group (`kill -TERM -PGID`, and
/// what `timeout` does) reaches the container's PID 1 only, forwarded: with
/// stdin not a terminal the container has a process group of its own, so
/// the group signal does not reach it (nor its children) directly as well.
/// (Two TERMs sent at once may merge into one pending signal, so the
/// children are the sure sign.)
#[test]
fn a_signal_to_tuppers_process_group_arrives_once() {
    use std::os::unix::process::CommandExt;
    let store = store_with_busybox();
    // PID 1 counts its TERMs; its child `sleep` must not get one at all.
    let script = "n=0; trap 'n=$((n+1))' TERM; sleep 2; echo sleep=$? n=$n";
    let child = store
        .cmd()
        .args(["run", "--rm", "--net", "none", "bb", "sh", "-c", script])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dog = Watchdog::new(child.id(), Duration::from_secs(60));
    let tupper_pid = child.id() as i32;
    wait_for_descendant(tupper_pid, "sleep");
    let group = rustix::process::Pid::from_raw(tupper_pid).unwrap();
    rustix::process::kill_process_group(group, rustix::process::Signal::TERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!dog.fired(), "tupper hung");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "sleep=0 n=1", "{out:?}");
    store.assert_no_leftovers();
}

#[test]
fn exit_125_for_an_unknown_image() {
    let store = store_with_busybox();
    let out = store.run_rm("nosuchimage", &["true"]);
    out.fails(125);
    assert!(out.stderr.contains("nosuchimage"), "{out:?}");
    store.assert_no_leftovers();
}

#[test]
fn sigterm_from_timeout_reaches_the_command() {
    let store = store_with_busybox();
    // --preserve-status: timeout itself would exit 124.
    let mut c = Command::new("timeout");
    c.args([
        "--preserve-status",
        "-s",
        "TERM",
        "2",
        TUPPER,
        "--root",
        store.root_str(),
    ]);
    c.args(["run", "--rm", "--net", "none", "bb", "sh", "-c"]);
    c.arg("trap 'exit 42' TERM; while :; do sleep 0.1; done");
    let t = Instant::now();
    let out = run_cmd(c, None, DEFAULT_TIMEOUT);
    assert_eq!(out.code, 42, "{out:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    store.assert_no_leftovers();
}

#[test]
fn forwarded_signals() {
    let store = store_with_busybox();
    // Sent to tupper only (not its process group): tupper must forward them.
    let sigs = [
        (1, "HUP"),
        (2, "INT"),
        (3, "QUIT"),
        (10, "USR1"),
        (12, "USR2"),
        (15, "TERM"),
    ];
    for (sig, name) in sigs {
        let mut child = store
            .cmd()
            .args(["run", "--rm", "--net", "none", "bb", "sh", "-c"])
            .arg(format!(
                "trap 'echo got-{name}; exit 7' {name}; echo ready; while :; do sleep 0.05; done"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let dog = Watchdog::new(child.id(), Duration::from_secs(30));
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert_eq!(line, "ready\n");
        kill(child.id() as i32, sig);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let st = child.wait().unwrap();
        assert!(!dog.fired(), "SIG{name}: tupper hung");
        assert_eq!(rest, format!("got-{name}\n"), "SIG{name} not forwarded");
        assert_eq!(st.code(), Some(7), "SIG{name}: {st:?}");
    }
    store.assert_no_leftovers();
}

#[test]
fn stdio_is_the_containers() {
    let store = store_with_busybox();
    let out = store.tupper_stdin(
        &[
            "run",
            "--rm",
            "--net",
            "none",
            "bb",
            "sh",
            "-c",
            "tr a-z A-Z; echo err >&2",
        ],
        b"hello\n",
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "HELLO\n");
    assert_eq!(out.stderr, "err\n");
}

#[test]
fn default_command_is_bin_sh() {
    let store = store_with_busybox();
    let out = store.tupper_stdin(
        &["run", "--rm", "--net", "none", "bb"],
        b"echo $0 $$; exit 5\n",
    );
    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(out.stdout.trim(), "/bin/sh 1");
}

#[test]
fn path_search_happens_inside_the_container() {
    let store = TestStore::new();
    let mut t = TarBuilder::with_busybox(&["sh"]);
    t.dir("opt", 0o755);
    t.dir("opt/bin", 0o755);
    t.file(
        "opt/bin/only-here",
        0o755,
        b"#!/bin/sh\necho only here \"$@\"\n",
    );
    store
        .tupper_stdin(&["import", "odd", "-"], &t.finish())
        .ok();
    assert!(!std::path::Path::new("/opt/bin/only-here").exists());
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-e",
            "PATH=/opt/bin:/bin",
            "odd",
            "only-here",
            "a b",
        ])
        .ok();
    assert_eq!(out, "only here a b\n");
    // `true` exists on the host but not in this image: the search is the image's.
    store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-e",
            "PATH=/opt/bin:/bin",
            "odd",
            "true",
        ])
        .fails(127);
}

#[test]
fn env_file_sets_variables_and_e_wins() {
    let store = store_with_busybox();
    let file = store.scratch().join("env");
    std::fs::write(&file, "# comment\n\nA=1\n  B=two words \nC=3\nFROM_HOST\n").unwrap();
    let f = file.to_str().unwrap();
    let mut c = store.cmd();
    c.env("FROM_HOST", "h")
        .args([
            "run",
            "--rm",
            "--net",
            "none",
            "--env-file",
            f,
            "-e",
            "C=e",
            "bb",
            "sh",
            "-c",
        ])
        .arg("echo \"$A|$B|$C|$FROM_HOST\"");
    assert_eq!(run_cmd(c, None, DEFAULT_TIMEOUT).ok(), "1|two words |e|h\n");
    // A byte order mark (some editors write one) is not part of the key.
    std::fs::write(&file, "\u{feff}BOM=1\n").unwrap();
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--env-file",
            f,
            "bb",
            "sh",
            "-c",
            "echo $BOM",
        ])
        .ok();
    assert_eq!(out, "1\n");
    std::fs::write(&file, "A=1\nBAD KEY=2\n").unwrap();
    let line = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--env-file",
            f,
            "bb",
            "true",
        ])
        .fails(125);
    assert!(line.contains("line 2"), "{line}");
    let line = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--env-file",
            "/no/such",
            "bb",
            "true",
        ])
        .fails(125);
    assert!(line.contains("--env-file /no/such"), "{line}");
    store.assert_no_leftovers();
}

/// `--cidfile FILE` (docker's): the container's ID, without a newline, in
/// FILE once the command runs (`run`, `run -d`) or the container is made
/// (`create`). A FILE that exists is refused before anything is made, and
/// left as it was; a run that fails leaves no FILE.
#[test]
fn cidfile_holds_the_id() {
    let store = store_with_busybox();
    let file = |name: &str| store.scratch().join(name).to_str().unwrap().to_string();
    let ids = |all: bool| -> Vec<String> {
        store
            .ps_json(all)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (a, d, c, bad) = (file("a.cid"), file("d.cid"), file("c.cid"), file("bad.cid"));
    // Read while the command runs: the file is there before it ends.
    let out = store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--cidfile",
            &a,
            "bb",
            "sh",
            "-c",
            "sleep 0.2",
        ])
        .ok();
    assert_eq!(out, "");
    assert_eq!(vec![std::fs::read_to_string(&a).unwrap()], ids(true));
    let id = store
        .tupper(&[
            "run",
            "-d",
            "--net",
            "none",
            "--cidfile",
            &d,
            "bb",
            "sleep",
            "100",
        ])
        .ok();
    assert_eq!(std::fs::read_to_string(&d).unwrap(), id.trim());
    // Gone before `state`, which waits for detached holders to end.
    store.tupper(&["rm", "-f", id.trim()]).ok();
    let id = store
        .tupper(&["create", "--net", "none", "--cidfile", &c, "bb", "true"])
        .ok();
    assert_eq!(std::fs::read_to_string(&c).unwrap(), id.trim());
    // Each way to make a container, with FILE and IMAGE.
    let ways = [&["run", "--rm"][..], &["run", "-d"], &["create"]];
    let args = |way: &[&str], file: &str, image: &str| -> Vec<String> {
        let tail = ["--net", "none", "--cidfile", file, image, "true"];
        way.iter()
            .chain(tail.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let tupper = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        store.tupper(&args)
    };
    let before = store.state();
    for way in ways {
        let kept = std::fs::read_to_string(&a).unwrap();
        let line = tupper(&args(way, &a, "bb")).fails(125);
        assert!(
            line.contains(&format!("--cidfile {a}: it exists")),
            "{way:?}: {line}"
        );
        assert_eq!(std::fs::read_to_string(&a).unwrap(), kept, "{way:?}");
        before.assert_same(&store.state(), &format!("{way:?}"));
    }
    for way in ways {
        tupper(&args(way, &bad, "nosuchimage")).fails(125);
        assert!(!std::path::Path::new(&bad).exists(), "{way:?}");
    }
    for id in ids(true) {
        store.tupper(&["rm", "-f", &id]).ok();
    }
    store.assert_no_leftovers();
}

/// `--timeout SECONDS` (podman's): the command is killed (SIGKILL, exit
/// 137) once it has run that long, in the foreground, detached (the
/// record keeps the exit) and at each `start` of a created container; a
/// command that ends first is not touched; bad values are refused.
#[test]
fn timeout_kills_a_command_that_runs_too_long() {
    let store = store_with_busybox();
    let started = Instant::now();
    let out = store.tupper(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--timeout",
        "1",
        "bb",
        "sleep",
        "30",
    ]);
    assert_eq!(out.code, 137, "{out:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(15),
        "{took:?}"
    );
    store.run_rm("bb", &["true"]).ok();
    let out = store.tupper(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--timeout",
        "30",
        "bb",
        "true",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    store.detached(&["--name", "d", "--timeout", "1"], &["sleep", "30"]);
    assert_eq!(store.tupper(&["wait", "d"]).ok(), "137\n");
    assert_eq!(store.inspect("d")["timeout"], 1);
    store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--name",
            "c",
            "--timeout",
            "1",
            "bb",
            "sleep",
            "30",
        ])
        .ok();
    assert_eq!(store.tupper(&["start", "-a", "c"]).code, 137);
    assert_eq!(
        store.tupper(&["start", "-a", "c"]).code,
        137,
        "a second start"
    );
    let before = store.state();
    for bad in ["-1", "1.5", "soon", ""] {
        let line = store
            .tupper(&[
                "run",
                "--rm",
                "--net",
                "none",
                "--timeout",
                bad,
                "bb",
                "true",
            ])
            .fails(125);
        assert!(line.contains("--timeout"), "{bad}: {line}");
    }
    before.assert_same(&store.state(), "bad --timeout values");
    store.tupper(&["rm", "d", "c"]).ok();
    store.assert_no_leftovers();
}
