//! `exec`: one more command in a running container, in its namespaces, with
//! its environment and its security settings.

mod common;

use common::*;

/// Starts `bb` detached as `name` with `options`, PID 1 `sleep 1000`.
fn running(store: &TestStore, name: &str, options: &[&str]) {
    let mut v = vec!["run", "-d", "--net", "none", "--name", name];
    v.extend(options);
    v.extend([
        "bb",
        "sh",
        "-c",
        "echo from-pid1 >/tmp/mark; exec sleep 1000",
    ]);
    store.tupper(&v).ok();
}

/// `tupper exec NAME ARGS...`.
fn exec(store: &TestStore, name: &str, args: &[&str]) -> Out {
    let mut v = vec!["exec", name];
    v.extend(args);
    store.tupper(&v)
}

#[test]
fn exec_runs_in_the_containers_namespaces() {
    let store = store_with_busybox();
    let host_ns = |kind: &str| std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
    running(
        &store,
        "c",
        &[
            "--hostname",
            "inside",
            "-e",
            "A=1",
            "-w",
            "/srv",
            "--tmpfs",
            "/run",
        ],
    );
    let pid1 = store.ps_json(false)[0]["pid"].as_i64().expect("pid");
    let script =
        "cat /tmp/mark; hostname; echo $A $HOSTNAME; pwd; ps -o pid,comm | grep -c '^ *1 sleep$'; \
                  grep -c ' /run ' /proc/self/mountinfo; ls /sys/class/net; \
                  for n in mnt uts ipc net pid cgroup; do readlink /proc/self/ns/$n; done";
    let out = exec(&store, "c", &["sh", "-c", script]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..7],
        ["from-pid1", "inside", "1 inside", "/srv", "1", "1", "lo"],
        "{out}"
    );
    // The namespaces are PID 1's, none of them the host's.
    for (i, kind) in ["mnt", "uts", "ipc", "net", "pid", "cgroup"]
        .iter()
        .enumerate()
    {
        let theirs = std::fs::read_link(format!("/proc/{pid1}/ns/{kind}")).unwrap();
        assert_eq!(lines[7 + i], theirs.to_str().unwrap(), "{kind}: {out}");
        assert_ne!(theirs, host_ns(kind), "{kind}");
    }
    // Its exit code is exec's; -e and -w apply to it alone.
    let out = exec(&store, "c", &["sh", "-c", "echo $A $B; pwd; exit 7"]);
    assert_eq!(out.code(7), "1\n/srv\n");
    let mut c = store.cmd();
    c.args([
        "exec",
        "-e",
        "A=2",
        "-e",
        "B=3",
        "-w",
        "/",
        "c",
        "sh",
        "-c",
        "echo $A $B; pwd",
    ]);
    assert_eq!(run_cmd(c, None, DEFAULT_TIMEOUT).ok(), "2 3\n/\n");
    store.tupper(&["rm", "-f", "c"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn exec_keeps_the_containers_security_settings() {
    let store = store_with_busybox();
    running(&store, "d", &[]);
    running(
        &store,
        "r",
        &["--cap-drop", "ALL", "--security-opt", "no-new-privileges"],
    );
    running(
        &store,
        "u",
        &["--security-opt", "seccomp=unconfined", "-u", "1000:1001"],
    );
    let status = |name: &str| {
        exec(
            &store,
            name,
            &[
                "grep",
                "-E",
                "^(CapBnd|Seccomp|NoNewPrivs):",
                "/proc/self/status",
            ],
        )
        .ok()
    };
    let d = status("d");
    assert!(d.contains("CapBnd:\t00000000a80425fb"), "{d}");
    assert!(
        d.contains("Seccomp:\t2") && d.contains("NoNewPrivs:\t0"),
        "{d}"
    );
    let r = status("r");
    assert!(
        r.contains("CapBnd:\t0000000000000000") && r.contains("NoNewPrivs:\t1"),
        "{r}"
    );
    let u = status("u");
    assert!(u.contains("Seccomp:\t0"), "{u}");
    // The container's user, and its HOME.
    let id = exec(&store, "u", &["sh", "-c", "id -u; id -g; echo $HOME"]).ok();
    assert_eq!(id, "1000\n1001\n/\n");
    // exec -u: looked up in the container's /etc/passwd, its HOME.
    let mut c = store.cmd();
    c.args(["exec", "-u", "root", "u", "sh", "-c", "id -u; echo $HOME"]);
    assert_eq!(run_cmd(c, None, DEFAULT_TIMEOUT).ok(), "0\n/root\n");
    let mut c = store.cmd();
    c.args(["exec", "-u", "7:8", "d", "sh", "-c", "id -u; id -g"]);
    assert_eq!(run_cmd(c, None, DEFAULT_TIMEOUT).ok(), "7\n8\n");
    let line = store
        .tupper(&["exec", "-u", "nosuch", "d", "true"])
        .fails(125);
    assert!(line.contains("unable to find user nosuch"), "{line}");
    store.tupper(&["rm", "-f", "d", "r", "u"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn exec_fails_as_run_does() {
    let store = store_with_busybox();
    running(&store, "c", &[]);
    let line = exec(&store, "c", &["nosuch"]).fails(127);
    assert!(line.contains("nosuch"), "{line}");
    let line = exec(&store, "c", &["/etc"]).fails(126);
    assert!(line.contains("/etc"), "{line}");
    let line = store
        .tupper(&["exec", "-w", "/no/such", "c", "true"])
        .fails(125);
    assert!(line.contains("/no/such"), "{line}");
    let line = exec(&store, "nobody", &["true"]).fails(125);
    assert!(line.contains("no such container"), "{line}");
    store.tupper(&["exec", "c"]).fails(125);
    store.tupper(&["stop", "-t", "0", "c"]).ok();
    let line = exec(&store, "c", &["true"]).fails(125);
    assert!(line.contains("not running"), "{line}");
    store.tupper(&["rm", "c"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn exec_with_a_terminal() {
    let store = store_with_busybox();
    running(&store, "t", &[]);
    let out = store.tupper_stdin(
        &["exec", "-t", "t", "sh"],
        b"test -t 0 && test -t 1 && echo both-ttys; tty; exit 4\n",
    );
    let shown = out.code(4);
    assert!(
        shown.contains("both-ttys") && shown.contains("/dev/pts/"),
        "{shown}"
    );
    store.tupper(&["rm", "-f", "t"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn exec_waits_until_the_container_runs_and_never_joins_it_before() {
    let store = store_with_busybox();
    // A file of the host that the container can not see.
    let marker = store.scratch().join("host-only-marker");
    std::fs::write(&marker, "host\n").unwrap();
    let probe = format!(
        "test -e {} && echo on-the-host || echo in-the-container",
        marker.display()
    );
    // Many mounts make the start long enough for exec to come during it.
    let mut opts: Vec<String> = Vec::new();
    for i in 0..40 {
        opts.push("--tmpfs".into());
        opts.push(format!("/m{i}"));
    }
    for round in 0..5 {
        let name = format!("s{round}");
        let mut run = store.cmd();
        run.args(["run", "-d", "--net", "none", "--name", &name])
            .args(&opts)
            .args(["bb", "sleep", "100"]);
        let starter = std::thread::spawn(move || run_cmd(run, None, DEFAULT_TIMEOUT));
        let out = loop {
            let out = exec(&store, &name, &["sh", "-c", &probe]);
            if !out.stderr.contains("no such container") {
                break out;
            }
        };
        assert_eq!(out.ok(), "in-the-container\n", "round {round}");
        starter.join().unwrap().ok();
        store.tupper(&["rm", "-f", &name]).ok();
    }
    store.assert_no_leftovers();
}

#[test]
fn exec_gets_the_containers_environment_whatever_pid_1_did_to_its_own() {
    let store = store_with_busybox();
    store
        .tupper(&[
            "run",
            "-d",
            "--net",
            "none",
            "--name",
            "e",
            "-e",
            "APP=1",
            "bb",
            "sh",
            "-c",
            "exec env -i sleep 100",
        ])
        .ok();
    let out = exec(&store, "e", &["sh", "-c", "echo $APP $HOSTNAME"]).ok();
    assert_eq!(out, "1 e\n");
    store.tupper(&["rm", "-f", "e"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn exec_d_returns_once_the_command_runs() {
    let store = store_with_busybox();
    let out = store
        .tupper(&[
            "run", "-d", "--net", "none", "--name", "box", "bb", "sleep", "100",
        ])
        .ok();
    assert!(is_id(out.trim()), "{out}");
    let start = std::time::Instant::now();
    // It prints nothing and keeps none of the caller's pipes (else the
    // harness would wait for the command's 3 s).
    let out = store.tupper(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "echo lost; sleep 3; touch /done",
    ]);
    assert_eq!(out.ok(), "");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(out.stderr.is_empty(), "{out:?}");
    // It runs in the container meanwhile, and ends on its own.
    let ps = store.tupper(&["exec", "box", "ps", "-o", "args"]).ok();
    assert!(ps.contains("sleep 3"), "{ps}");
    assert!(std::time::Instant::now() < start + std::time::Duration::from_secs(3));
    assert!(wait_for(std::time::Duration::from_secs(20), || store
        .tupper(&["exec", "box", "test", "-e", "/done"])
        .code
        == 0));
    // A command that cannot start fails as exec does, nothing left running.
    let line = store.tupper(&["exec", "-d", "box", "nosuch"]).fails(127);
    assert!(line.contains("exec nosuch"), "{line}");
    let line = store
        .tupper(&["exec", "-d", "-t", "box", "true"])
        .fails(125);
    assert!(line.contains("-d with -t"), "{line}");
    store.tupper(&["rm", "-f", "box"]).ok();
    store.assert_no_leftovers();
}

/// `exec --privileged` (docker's): every capability tupper has (this
/// process's, which it inherits), even in a container that dropped them
/// all; its system-call filter stays the container's. `exec --env-file`:
/// the file's variables, then `-e`'s, over the container's.
#[test]
fn exec_privileged_and_env_file() {
    let store = store_with_busybox();
    running(&store, "r", &["--cap-drop", "ALL", "-e", "A=run"]);
    let status = |flags: &[&str]| {
        let mut v = vec!["exec"];
        v.extend(flags);
        v.extend(["r", "grep", "-E", "^(CapEff|Seccomp):", "/proc/self/status"]);
        store.tupper(&v).ok()
    };
    let mine = std::fs::read_to_string("/proc/self/status").unwrap();
    let mine = mine.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert_eq!(status(&["--privileged"]), format!("{mine}\nSeccomp:\t2\n"));
    assert_eq!(status(&[]), "CapEff:\t0000000000000000\nSeccomp:\t2\n");
    let file = store.scratch().join("exec.env");
    std::fs::write(&file, "# variables\nA=file\nB=file\n").unwrap();
    let out = store
        .tupper(&[
            "exec",
            "--env-file",
            file.to_str().unwrap(),
            "-e",
            "B=flag",
            "r",
            "sh",
            "-c",
            "echo $A $B",
        ])
        .ok();
    assert_eq!(out, "file flag\n");
    assert_eq!(exec(&store, "r", &["sh", "-c", "echo $A"]).ok(), "run\n");
    let line = store
        .tupper(&["exec", "--env-file", "/nonexistent/e", "r", "true"])
        .fails(125);
    assert!(line.contains("read --env-file /nonexistent/e"), "{line}");
    store.tupper(&["rm", "-f", "r"]).ok();
    store.assert_no_leftovers();
}
