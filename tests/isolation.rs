//! What the container sees from inside: hostname, processes, mounts, root
//! directory, namespaces, network links, /dev, /sys, environment and working
//! directory (issue 2, "Must hold", first bullet; run's environment rules).

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// Asserts that `args` fail (exit 125) with `error` and change nothing in
/// the store since `before`.
#[track_caller]
fn refused(store: &TestStore, before: &StoreState, args: &[&str], error: &str) {
    let line = store.tupper(args).fails(125);
    assert!(line.contains(error), "{args:?}: {line}");
    before.assert_same(&store.state(), &format!("{args:?}"));
}

#[test]
fn hostname_is_the_container_name() {
    let store = store_with_busybox();
    let host = host_hostname();
    let out = store
        .tupper(&[
            "run", "--rm", "--net", "none", "--name", "web1", "bb", "hostname",
        ])
        .ok();
    assert_eq!(out.trim(), "web1");
    // Also through the kernel interface, not only the hostname applet.
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--name",
            "web2",
            "bb",
            "cat",
            "/proc/sys/kernel/hostname",
        ])
        .ok();
    assert_eq!(out.trim(), "web2");
    assert_eq!(host_hostname(), host, "the host's hostname changed");
}

/// `--uts host` (docker's): the host's UTS namespace, so its hostname (in
/// `/etc/hostname` and `HOSTNAME` too), which the container cannot change
/// (no `CAP_SYS_ADMIN`); the record keeps it for a start again. A hostname
/// or domain name of its own is refused then, and nothing is made.
#[test]
fn uts_host_is_the_hosts_hostname() {
    let store = store_with_busybox();
    let host = host_hostname();
    let script = "cat /proc/sys/kernel/hostname /etc/hostname; echo $HOSTNAME; \
                  hostname changed 2>/dev/null || echo refused; readlink /proc/self/ns/uts";
    let uts = std::fs::read_link("/proc/self/ns/uts").unwrap();
    let want = format!("{host}\n{host}\n{host}\nrefused\n{}\n", uts.display());
    let out = store
        .tupper(&[
            "run", "--rm", "--net", "none", "--uts", "host", "bb", "sh", "-c", script,
        ])
        .ok();
    assert_eq!(out, want);
    assert_eq!(host_hostname(), host, "the host's hostname changed");
    store
        .tupper(&[
            "create", "--net", "none", "--name", "u", "--uts", "host", "bb", "sh", "-c", script,
        ])
        .ok();
    assert_eq!(store.tupper(&["start", "-a", "u"]).ok(), want);
    let before = store.state();
    for (flags, error) in [
        (
            &["--hostname", "x"][..],
            "--hostname with --uts host: the hostname is the host's",
        ),
        (
            &["--sysctl", "kernel.domainname=x"],
            "kernel.domainname is the host's with --uts host",
        ),
    ] {
        let mut args = vec!["run", "--rm", "--net", "none", "--uts", "host"];
        args.extend(flags);
        args.extend(["bb", "true"]);
        let line = store.tupper(&args).fails(125);
        assert!(line.contains(error), "{args:?}: {line}");
        before.assert_same(&store.state(), &format!("{args:?}"));
    }
    store.tupper(&["rm", "u"]).ok();
    store.assert_no_leftovers();
}

/// `--ipc container:NAME` (docker's): the joiner is in NAME's IPC
/// namespace and has NAME's `/dev/shm` (what one writes there the other
/// reads); made by `create`, it joins at its start, and the record keeps
/// NAME's ID. Refused, with nothing made or changed: a NAME that does not
/// exist, has `--ipc none` or does not run; `--shm-size`, an IPC
/// `--sysctl` and `--userns auto` with it.
#[test]
fn ipc_container_shares_the_namespace_and_dev_shm() {
    let store = store_with_busybox();
    // In the foreground of a process of this test (a detached holder
    // would count as a refill that `state` waits for).
    let mut c = store.cmd();
    c.args(["run", "--net", "none", "--name", "donor", "bb", "sh", "-c"]);
    c.arg("echo hi > /dev/shm/x; exec sleep 1000");
    let (mut holder, _dog) = spawn_quiet(c, Duration::from_secs(120));
    let ready = || store.tupper(&["exec", "donor", "cat", "/dev/shm/x"]).stdout == "hi\n";
    assert!(
        wait_for(Duration::from_secs(20), ready),
        "the donor did not start"
    );
    let theirs = store
        .tupper(&["exec", "donor", "readlink", "/proc/self/ns/ipc"])
        .ok();
    let host = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    assert_ne!(theirs.trim(), host.to_str().unwrap());
    let script = "cat /dev/shm/x; readlink /proc/self/ns/ipc; echo y > /dev/shm/y";
    let want = format!("hi\n{theirs}");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--net", "none", "--ipc", "container:donor"];
        args.extend(extra);
        args.extend(["bb", "sh", "-c", script]);
        store.tupper(&args)
    };
    assert_eq!(run(&[]).ok(), want);
    assert_eq!(
        store.tupper(&["exec", "donor", "cat", "/dev/shm/y"]).ok(),
        "y\n"
    );
    store
        .tupper(&[
            "create",
            "--net",
            "none",
            "--name",
            "j",
            "--ipc",
            "container:donor",
            "bb",
            "sh",
            "-c",
            script,
        ])
        .ok();
    let donor = store.inspect("donor")["id"].as_str().unwrap().to_string();
    assert_eq!(store.inspect("j")["ipc"], format!("container:{donor}"));
    assert_eq!(store.tupper(&["start", "-a", "j"]).ok(), want);
    store
        .tupper(&[
            "run", "--name", "n", "--net", "none", "--ipc", "none", "bb", "true",
        ])
        .ok();
    let before = store.state();
    for (ipc, extra, error) in [
        (
            "container:nope",
            &[][..],
            "--ipc container:nope: no such container: nope",
        ),
        (
            "container:n",
            &[],
            "--ipc container:n: container n has --ipc none",
        ),
        (
            "container:donor",
            &["--shm-size", "1m"],
            "with --ipc container:donor: the container has no /dev/shm of its own",
        ),
        (
            "container:donor",
            &["--sysctl", "kernel.shmmax=100000"],
            "invalid --sysctl kernel.shmmax=100000: an IPC parameter is",
        ),
        (
            "container:donor",
            &["--userns", "auto"],
            "--ipc container:donor with --userns auto",
        ),
    ] {
        let mut args = vec!["run", "--rm", "--net", "none", "--ipc", ipc];
        args.extend(extra);
        args.extend(["bb", "true"]);
        refused(&store, &before, &args, error);
    }
    store.tupper(&["stop", "-t", "1", "donor"]).ok();
    holder.wait().unwrap();
    // A start again empties the last run's pid in its lock file first
    // (until it writes its own): the rest stays as it was.
    let not_running = "join the IPC of container donor: it is not running";
    let line = store.tupper(&["start", "-a", "j"]).fails(125);
    assert!(line.contains(not_running), "{line}");
    assert_eq!(store.ps_entry("j")["status"], "exited");
    let before = store.state();
    refused(&store, &before, &["start", "-a", "j"], not_running);
    let line = run(&[]).fails(125);
    assert!(line.contains(not_running), "{line}");
    before.assert_same(&store.state(), "a run that joins a stopped container");
    store.tupper(&["rm", "j", "n", "donor"]).ok();
    store.assert_no_leftovers();
}

/// `--ipc host`: the host's IPC namespace and `/dev/shm` (a file the host
/// made there is seen); `--ipc none`: a namespace of its own, no
/// `/dev/shm`; `--ipc shareable`: as without `--ipc`.
#[test]
fn ipc_host_none_and_shareable() {
    let store = store_with_busybox();
    let host = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let host = host.to_str().unwrap();
    let name = format!("tupper-test-ipc-{}", std::process::id());
    let path = std::path::Path::new("/dev/shm").join(&name);
    std::fs::write(&path, "from the host\n").unwrap();
    let script = format!(
        "readlink /proc/self/ns/ipc; cat /dev/shm/{name} 2>/dev/null; \
         test -d /dev/shm || echo no /dev/shm; grep ' /dev/shm ' /proc/mounts | cut -d' ' -f3,4"
    );
    let run = |ipc: &str| {
        store
            .tupper(&[
                "run", "--rm", "--net", "none", "--ipc", ipc, "bb", "sh", "-c", &script,
            ])
            .ok()
    };
    let (on_host, none, shareable) = (run("host"), run("none"), run("shareable"));
    std::fs::remove_file(&path).unwrap();
    let on_host: Vec<&str> = on_host.lines().collect();
    assert_eq!(on_host[..2], [host, "from the host"], "{on_host:?}");
    let none: Vec<&str> = none.lines().collect();
    assert_eq!(none.len(), 2, "{none:?}");
    assert_ne!(none[0], host);
    assert_eq!(none[1], "no /dev/shm");
    let shareable: Vec<&str> = shareable.lines().collect();
    assert_eq!(shareable.len(), 2, "{shareable:?}");
    assert_ne!(shareable[0], host);
    assert!(
        shareable[1].starts_with("tmpfs rw,nosuid,nodev,noexec")
            && shareable[1].contains("size=65536k"),
        "{shareable:?}"
    );
    let line = store
        .tupper(&[
            "run", "--rm", "--net", "none", "--ipc", "shared", "bb", "true",
        ])
        .fails(125);
    assert!(line.contains("invalid --ipc \"shared\""), "{line}");
    store.assert_no_leftovers();
}

/// The (PID, PPID, CMD) rows of `tupper top NAME`.
fn top_rows(store: &TestStore, name: &str) -> Vec<(i32, i32, String)> {
    let out = store.tupper(&["top", name]).ok();
    out.lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            let pid = cells[1].parse().unwrap();
            (pid, cells[2].parse().unwrap(), cells[7..].join(" "))
        })
        .collect()
}

/// The CMD column of `top` rows, sorted.
fn commands(rows: &[(i32, i32, String)]) -> Vec<&str> {
    let mut cmds: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    cmds.sort_unstable();
    cmds
}

/// Whether host process `pid` is gone (or a zombie), or no longer runs
/// `cmdline` (its pid was reused).
fn ended(pid: i32, cmdline: &str) -> bool {
    let running = std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmdline);
    !running || Proc::of(pid).is_some_and(|p| !p.alive())
}

/// `--pid host` (docker's): the host's PID namespace, where a host process
/// is seen; the container has a cgroup to know its processes by (`top`
/// lists them and no host process), and what its command left running is
/// killed when it ends (its cgroup goes): by the run that ends, and by
/// `rm -f` of a run whose tupper was killed (`rm` alone refuses then).
#[test]
fn pid_host_sees_the_host_and_what_it_leaves_is_killed() {
    let store = store_with_busybox();
    let mut host = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let script = format!(
        "cat /proc/{}/comm; readlink /proc/self/ns/pid; sleep 1000 >/dev/null 2>&1 & echo $!",
        host.id()
    );
    let out = store
        .tupper(&[
            "run", "--name", "h", "--net", "none", "--pid", "host", "bb", "sh", "-c", &script,
        ])
        .ok();
    host.kill().unwrap();
    host.wait().unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["sleep", host_ns.to_str().unwrap()], "{out}");
    let left: i32 = lines[2].parse().unwrap();
    assert!(ended(left, "sleep 1000"), "its sleep 1000 still runs");
    let rec = store.inspect("h");
    assert_eq!(rec["pid_mode"], "host");
    let cgroups = rec["cgroups"].as_array().unwrap();
    assert!(!cgroups.is_empty(), "no cgroup: {rec}");
    for d in cgroups {
        assert!(!Path::new(d.as_str().unwrap()).exists(), "{d} is left");
    }
    store.tupper(&["rm", "h"]).ok();

    store.detached(
        &["--name", "t", "--pid", "host"],
        &["sh", "-c", "sleep 1000 & exec sleep 1001"],
    );
    let rows = || top_rows(&store, "t");
    // Its processes only, once `sh` has exec'd.
    assert!(
        wait_for(Duration::from_secs(20), || commands(&rows())
            == ["sleep 1000", "sleep 1001"]),
        "{:?}",
        rows()
    );
    // Its tupper killed: PID 1 goes with it (the parent-death signal),
    // what it started stays, until `rm -f`.
    let pid1 = store.inspect("t")["pid"].as_i64().unwrap() as i32;
    let holder = Proc::of(pid1).unwrap().ppid().unwrap();
    let orphan = rows().into_iter().find(|r| r.2 == "sleep 1000").unwrap().0;
    kill(holder, libc::SIGKILL);
    assert!(
        wait_for(Duration::from_secs(20), || ended(pid1, "sleep 1001")),
        "PID 1 outlived its tupper"
    );
    assert!(!ended(orphan, "sleep 1000"), "nothing left to kill");
    let line = store.tupper(&["rm", "t"]).fails(125);
    assert!(
        line.contains("remove container t: its tupper was killed, but its command still runs"),
        "{line}"
    );
    let cgroups = store.inspect("t")["cgroups"].clone();
    store.tupper(&["rm", "-f", "t"]).ok();
    assert!(ended(orphan, "sleep 1000"), "rm -f left it running");
    for d in cgroups.as_array().unwrap() {
        assert!(!Path::new(d.as_str().unwrap()).exists(), "{d} is left");
    }
    store.assert_no_leftovers();
}

/// `--pid container:NAME` (docker's): NAME's PID namespace (its command is
/// PID 1 there, `exec`'s commands join it too). Each container's `top`
/// lists its own processes only, `pause` of NAME freezes NAME's only, and
/// NAME's end ends the joiner. Refused, making nothing: an unknown NAME,
/// with `--userns auto`, an unknown mode; a start when NAME is not running.
#[test]
fn pid_container_joins_the_namespace_and_ends_with_it() {
    let store = store_with_busybox();
    let mut c = store.cmd();
    c.args([
        "run", "--net", "none", "--name", "donor", "bb", "sleep", "1000",
    ]);
    let (mut donor_holder, _dog) = spawn_quiet(c, Duration::from_secs(120));
    store.wait_running("donor");
    let theirs = store
        .tupper(&["exec", "donor", "readlink", "/proc/self/ns/pid"])
        .ok();
    let before = store.state();
    for (pid, extra, error) in [
        (
            "container:nope",
            &[][..],
            "--pid container:nope: no such container: nope",
        ),
        (
            "container:donor",
            &["--userns", "auto"],
            "--pid container:donor with --userns auto",
        ),
        (
            "host",
            &["--userns", "auto"],
            "--pid host with --userns auto",
        ),
        ("shared", &[], "invalid --pid \"shared\""),
    ] {
        let mut args = vec!["run", "--rm", "--net", "none", "--pid", pid];
        args.extend(extra);
        args.extend(["bb", "true"]);
        refused(&store, &before, &args, error);
    }
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--pid",
            "container:donor",
            "bb",
            "sh",
            "-c",
            "readlink /proc/self/ns/pid; cat /proc/1/cmdline | tr '\\0' ' '",
        ])
        .ok();
    assert_eq!(out, format!("{theirs}sleep 1000 "));
    let mut c = store.cmd();
    c.args([
        "run",
        "--net",
        "none",
        "--name",
        "j",
        "--pid",
        "container:donor",
        "bb",
        "sleep",
        "2000",
    ]);
    let (mut joiner_holder, _dog2) = spawn_quiet(c, Duration::from_secs(120));
    store.wait_running("j");
    let donor = store.inspect("donor")["id"].as_str().unwrap().to_string();
    assert_eq!(store.inspect("j")["pid_mode"], format!("container:{donor}"));
    let cmds =
        |name: &str| -> Vec<String> { top_rows(&store, name).into_iter().map(|r| r.2).collect() };
    assert!(
        wait_for(Duration::from_secs(20), || cmds("j") == ["sleep 2000"]),
        "{:?}",
        cmds("j")
    );
    assert_eq!(cmds("donor"), ["sleep 1000"]);
    let inside = store.tupper(&["exec", "j", "ps", "-o", "pid,args"]).ok();
    assert!(inside.contains("    1 sleep 1000"), "{inside}");
    assert!(inside.contains("sleep 2000"), "{inside}");
    // `pause` of the donor leaves the joiner's processes where they are.
    store.tupper(&["pause", "donor"]).ok();
    let freezer = store.inspect("donor")["freezer"]
        .as_str()
        .unwrap()
        .to_string();
    let frozen = std::fs::read_to_string(Path::new(&freezer).join("cgroup.procs")).unwrap();
    let donor_pid = store.inspect("donor")["pid"].as_i64().unwrap();
    let frozen: Vec<i64> = frozen.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(frozen, [donor_pid], "frozen with the donor");
    store.tupper(&["unpause", "donor"]).ok();
    store.tupper(&["stop", "-t", "1", "donor"]).ok();
    donor_holder.wait().unwrap();
    let joined = joiner_holder.wait().unwrap();
    assert_eq!(
        joined.code(),
        Some(137),
        "the joiner outlived its namespace"
    );
    let line = store.tupper(&["start", "-a", "j"]).fails(125);
    assert!(
        line.contains("join the PID namespace of container donor: it is not running"),
        "{line}"
    );
    store.tupper(&["rm", "j", "donor"]).ok();
    store.assert_no_leftovers();
}

/// `--init` with `--pid host`: the init is not PID 1, so it passes on a
/// signal sent by any process (`stop` ends the command at once, 143), and
/// it is a subreaper: the container's orphans are its children.
#[test]
fn init_without_a_pid_namespace_passes_signals_on_and_reaps() {
    let store = store_with_busybox();
    store.detached(
        &["--name", "i", "--init", "--pid", "host"],
        &["sh", "-c", "(sleep 1000 &); exec sleep 1001"],
    );
    // Settled: the subshell gone (its sleep an orphan), the command exec'd.
    let mut rows = Vec::new();
    assert!(
        wait_for(Duration::from_secs(20), || {
            rows = top_rows(&store, "i");
            commands(&rows) == ["sleep 1000", "sleep 1001", "tupper-init"]
        }),
        "{rows:?}"
    );
    let init = rows
        .iter()
        .find(|r| r.2 == "tupper-init")
        .expect("the init");
    let orphan = rows
        .iter()
        .find(|r| r.2 == "sleep 1000")
        .expect("the orphan");
    assert_eq!(orphan.1, init.0, "the orphan's parent: {rows:?}");
    let started = std::time::Instant::now();
    store.tupper(&["stop", "-t", "60", "i"]).ok();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stop waited {:?}",
        started.elapsed()
    );
    assert_eq!(store.inspect("i")["exit_code"], 143);
    store.tupper(&["rm", "i"]).ok();
    store.assert_no_leftovers();
}

/// `--domainname` (docker's): the NIS domain name of the container's UTS
/// namespace (the host's stays), and `/etc/hosts` names the container
/// `HOSTNAME.DOMAINNAME HOSTNAME`; kept in the record for a start again.
/// An invalid one, or one with `--uts host`, is refused and makes nothing.
#[test]
fn domainname_is_the_containers() {
    let store = store_with_busybox();
    let host = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let script = "cat /proc/sys/kernel/domainname; tail -n 1 /etc/hosts";
    let args = [
        "--net",
        "none",
        "--name",
        "web",
        "--domainname",
        "example.com",
        "bb",
        "sh",
        "-c",
        script,
    ];
    let want = "example.com\n127.0.1.1\tweb.example.com web\n";
    let mut run = vec!["run"];
    run.extend(args);
    assert_eq!(store.tupper(&run).ok(), want);
    assert_eq!(store.inspect("web")["domainname"], "example.com");
    assert_eq!(store.tupper(&["start", "-a", "web"]).ok(), want);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host
    );
    store.tupper(&["rm", "web"]).ok();
    let before = store.state();
    for (flags, error) in [
        (
            &["--domainname", "bad name"][..],
            "invalid --domainname \"bad name\"",
        ),
        (
            &["--uts", "host", "--domainname", "x"],
            "--domainname with --uts host: the domain name is the host's",
        ),
    ] {
        let mut args = vec!["run", "--rm", "--net", "none"];
        args.extend(flags);
        args.extend(["bb", "true"]);
        let line = store.tupper(&args).fails(125);
        assert!(line.contains(error), "{args:?}: {line}");
        before.assert_same(&store.state(), &format!("{args:?}"));
    }
    store.assert_no_leftovers();
}

#[test]
fn hostname_defaults_to_the_id() {
    let store = store_with_busybox();
    let host = host_hostname();
    // Without --rm so that the record tells the ID; no --name.
    let out = store
        .tupper(&["run", "--net", "none", "bb", "hostname"])
        .ok();
    let recs = store.ps_json(true);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let id = recs[0]["id"].as_str().expect("id is a string");
    assert_eq!(id.len(), 12);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
    assert_eq!(out.trim(), id);
    assert_eq!(host_hostname(), host);
}

#[test]
fn hostname_option_wins() {
    let store = store_with_busybox();
    let host = host_hostname();
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--name",
            "n1",
            "--hostname",
            "box.example",
            "bb",
            "hostname",
        ])
        .ok();
    assert_eq!(out.trim(), "box.example");
    assert_eq!(host_hostname(), host);
}

#[test]
fn ps_shows_only_the_command_as_pid_1() {
    let store = store_with_busybox();
    let out = store.run_rm("bb", &["ps"]).ok();
    let procs: Vec<&str> = out
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(procs.len(), 1, "more than one process visible:\n{out}");
    let fields: Vec<&str> = procs[0].split_whitespace().collect();
    assert_eq!(fields[0], "1", "the command is not PID 1:\n{out}");
    assert_eq!(*fields.last().unwrap(), "ps", "{out}");
    // Through /proc too: only PID 1 (and `self`/`thread-self`) are there.
    let out = store.run_rm("bb", &["ls", "/proc"]).ok();
    let pids: Vec<&str> = out
        .split_whitespace()
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(pids, vec!["1"], "{out}");
}

#[test]
fn proc_mounts_lists_only_the_containers_mounts() {
    let store = store_with_busybox();
    let out = store.run_rm("bb", &["cat", "/proc/mounts"]).ok();
    let scratch = store.scratch().to_str().unwrap().to_string();
    let mut roots = 0;
    for line in out.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert!(f.len() >= 4, "odd /proc/mounts line {line}");
        let mp = unescape_mount(f[1]);
        assert!(!line.contains(&scratch), "host store path visible: {line}");
        assert!(!line.contains("oldroot"), "old root visible: {line}");
        assert!(
            mp == "/"
                || mp == "/proc"
                || mp.starts_with("/proc/")
                || mp == "/sys"
                || mp.starts_with("/sys/")
                || mp == "/dev"
                || mp.starts_with("/dev/"),
            "a mount that is not the container's: {line}\n{out}"
        );
        if mp == "/" {
            roots += 1;
            assert_eq!(f[2], "btrfs", "/ is not the btrfs snapshot: {line}");
        }
    }
    assert_eq!(roots, 1, "not exactly one / mount:\n{out}");
    // The host has other mounts (at least the store itself); none of them is here.
    let mps: BTreeSet<String> = out
        .lines()
        .map(|l| unescape_mount(l.split(' ').nth(1).unwrap()))
        .collect();
    for m in [
        "/proc",
        "/sys",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
    ] {
        assert!(mps.contains(m), "{m} is not mounted:\n{out}");
    }
}

#[test]
fn root_directory_is_the_image_without_oldroot() {
    let store = store_with_busybox();
    let image: BTreeSet<String> = list_dir(&store.image_path("bb")).into_iter().collect();
    let out = store.run_rm("bb", &["ls", "-a", "/"]).ok();
    let seen: BTreeSet<String> = out
        .split_whitespace()
        .filter(|n| *n != "." && *n != "..")
        .map(String::from)
        .collect();
    assert!(!seen.iter().any(|n| n.contains("oldroot")), "{seen:?}");
    let mut expected = image.clone();
    for d in ["proc", "sys", "dev"] {
        expected.insert(d.to_string());
    }
    assert_eq!(
        seen, expected,
        "`ls /` is not the image plus proc, sys, dev"
    );
    // The image itself was not touched by the runtime creating mount points.
    assert!(!store.image_path("bb").join("proc").exists());
}

#[test]
fn namespaces_differ_from_the_hosts() {
    let store = store_with_busybox();
    let names = ["ipc", "uts", "mnt", "pid", "net", "cgroup"];
    let script: String = names
        .iter()
        .map(|n| format!("readlink /proc/self/ns/{n}; "))
        .collect();
    let out = store.sh_in("bb", &script);
    let inside: Vec<&str> = out.lines().collect();
    assert_eq!(inside.len(), names.len(), "{out}");
    for (n, got) in names.iter().zip(inside) {
        let host = host_ns(n);
        assert!(got.starts_with(&format!("{n}:[")), "{n}: {got}");
        assert_ne!(got, host, "the {n} namespace is the host's");
    }
}

#[test]
fn ip_link_shows_only_lo() {
    assert!(
        busybox_applets().iter().any(|a| a.ends_with("/ip")),
        "busybox has no ip applet"
    );
    let store = store_with_busybox();
    let out = store.run_rm("bb", &["ip", "link"]).ok();
    let links: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split(": ").nth(1))
        .collect();
    assert_eq!(links, vec!["lo"], "{out}");
}

#[test]
fn dev_is_minimal_and_works() {
    let store = store_with_busybox();
    let script = r#"
for d in null zero full random urandom tty; do test -c /dev/$d || echo "not a char device: $d"; done
test -c /dev/pts/ptmx || echo "no /dev/pts/ptmx"
test -e /dev/ptmx || echo "no /dev/ptmx"
test -d /dev/shm || echo "no /dev/shm"
test -d /dev/mqueue || echo "no /dev/mqueue"
test "$(readlink /dev/fd)" = /proc/self/fd || echo "bad /dev/fd: $(readlink /dev/fd)"
test "$(readlink /dev/stdin)" = /proc/self/fd/0 || echo "bad /dev/stdin"
test "$(readlink /dev/stdout)" = /proc/self/fd/1 || echo "bad /dev/stdout"
test "$(readlink /dev/stderr)" = /proc/self/fd/2 || echo "bad /dev/stderr"
echo x > /dev/null || echo "cannot write /dev/null"
test "$(head -c 5 /dev/zero | wc -c)" = 5 || echo "cannot read /dev/zero"
test "$(head -c 16 /dev/urandom | wc -c)" = 16 || echo "cannot read /dev/urandom"
if echo x 2>/dev/null > /dev/full; then echo "/dev/full accepted a write"; fi
touch /dev/shm/x || echo "cannot write /dev/shm"
echo LS $(ls /dev)
"#;
    let out = store.sh_in("bb", script);
    let problems: Vec<&str> = out.lines().filter(|l| !l.starts_with("LS ")).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let allowed = [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "mqueue", "fd",
        "stdin", "stdout", "stderr", "console", "core",
    ];
    let ls = out.lines().find(|l| l.starts_with("LS ")).unwrap();
    let extra: Vec<&str> = ls[3..]
        .split_whitespace()
        .filter(|n| !allowed.contains(n))
        .collect();
    assert!(extra.is_empty(), "/dev is not minimal, extra: {extra:?}");
    let mounts = store.run_rm("bb", &["cat", "/proc/mounts"]).ok();
    let fstype = |mp: &str| {
        mounts
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f[1] == mp)
            .map(|f| f[2].to_string())
    };
    assert_eq!(fstype("/dev").as_deref(), Some("tmpfs"), "{mounts}");
    assert_eq!(fstype("/dev/pts").as_deref(), Some("devpts"), "{mounts}");
    assert_eq!(fstype("/dev/mqueue").as_deref(), Some("mqueue"), "{mounts}");
    // A new devpts instance: no host ptys are visible.
    let pts = store.run_rm("bb", &["ls", "/dev/pts"]).ok();
    assert_eq!(
        pts.split_whitespace().collect::<Vec<_>>(),
        vec!["ptmx"],
        "{pts}"
    );
}

#[test]
fn sys_is_read_only_and_proc_is_restricted() {
    let store = store_with_busybox();
    let mounts = store.run_rm("bb", &["cat", "/proc/mounts"]).ok();
    let line = |mp: &str| -> Vec<String> {
        mounts
            .lines()
            .map(|l| l.split(' ').map(String::from).collect::<Vec<_>>())
            .find(|f| f[1] == mp)
            .unwrap_or_else(|| panic!("{mp} not mounted:\n{mounts}"))
    };
    let sys = line("/sys");
    assert_eq!(sys[2], "sysfs");
    assert!(
        sys[3].split(',').any(|o| o == "ro"),
        "/sys is not read-only: {sys:?}"
    );
    let proc_ = line("/proc");
    assert_eq!(proc_[2], "proc");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(
            proc_[3].split(',').any(|x| x == o),
            "/proc lacks {o}: {proc_:?}"
        );
    }
    // Behaviour, not only the flag: a write to a writable sysfs attribute fails.
    let out = store.run_rm(
        "bb",
        &["sh", "-c", "echo change > /sys/kernel/uevent_helper"],
    );
    assert_ne!(out.code, 0, "wrote to /sys: {out:?}");
    assert!(out.stderr.contains("Read-only"), "{out:?}");
}

#[test]
fn environment_is_path_hostname_home_term_and_e() {
    let store = store_with_busybox();
    let mut c = store.cmd();
    c.args([
        "run",
        "--rm",
        "--net",
        "none",
        "--name",
        "envbox",
        "-e",
        "FOO=bar baz",
        "-e",
        "EMPTY=",
        "bb",
        "env",
    ]);
    c.env("TERM", "xterm-tupper").env("TUPPER_LEAK", "1");
    let out = run_cmd(c, None, DEFAULT_TIMEOUT).ok();
    let env: BTreeSet<&str> = out.lines().collect();
    let get = |k: &str| {
        env.iter()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(String::from)
    };
    let path = get("PATH").expect("no PATH");
    assert!(path.split(':').any(|d| d == "/bin"), "PATH={path}");
    assert_eq!(get("HOSTNAME").as_deref(), Some("envbox"));
    assert_eq!(get("HOME").as_deref(), Some("/root"));
    assert_eq!(get("TERM").as_deref(), Some("xterm-tupper"));
    assert_eq!(get("FOO").as_deref(), Some("bar baz"));
    assert_eq!(get("EMPTY").as_deref(), Some(""));
    assert_eq!(get("TUPPER_LEAK"), None, "the host environment leaked in");
    let keys: BTreeSet<&str> = env.iter().map(|l| l.split('=').next().unwrap()).collect();
    let expected: BTreeSet<&str> = [
        "PATH", "HOSTNAME", "HOME", "TERM", "FOO", "EMPTY", "PWD", "SHLVL",
    ]
    .into();
    // busybox env prints exactly the environment; PWD/SHLVL are tolerated only
    // because some runtimes set them.
    assert!(keys.is_subset(&expected), "unexpected variables: {keys:?}");

    // Without TERM in tupper's environment there is none inside; -e overrides PATH.
    let mut c = store.cmd();
    c.args([
        "run",
        "--rm",
        "--net",
        "none",
        "-e",
        "PATH=/usr/bin:/bin",
        "bb",
        "env",
    ]);
    c.env_remove("TERM");
    let out = run_cmd(c, None, DEFAULT_TIMEOUT).ok();
    assert!(!out.lines().any(|l| l.starts_with("TERM=")), "{out}");
    let paths: Vec<&str> = out.lines().filter(|l| l.starts_with("PATH=")).collect();
    assert_eq!(paths, vec!["PATH=/usr/bin:/bin"], "{out}");
}

#[test]
fn working_directory() {
    let store = store_with_busybox();
    assert_eq!(store.run_rm("bb", &["pwd"]).ok().trim(), "/");
    let out = store
        .tupper(&["run", "--rm", "--net", "none", "-w", "/tmp", "bb", "pwd"])
        .ok();
    assert_eq!(out.trim(), "/tmp");
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-w",
            "/etc",
            "bb",
            "sh",
            "-c",
            "ls passwd",
        ])
        .ok();
    assert_eq!(out.trim(), "passwd");
}

/// A `-w` path is resolved as the container resolves it: an absolute
/// symlink below the top (Debian's `/var/run -> /run`) means the image's
/// `/run`, a relative one climbs from where it is, and `..` is a step up
/// (docker's behaviour); missing directories are made at the end of that.
#[test]
fn working_directory_through_symlinks_and_dot_dot() {
    let store = TestStore::new();
    let mut t = TarBuilder::with_busybox(&["sh", "pwd"]);
    for d in ["run", "srv", "srv/data", "tmp", "var"] {
        t.dir(d, 0o755);
    }
    t.symlink("var/run", "/run");
    t.symlink("var/srvrel", "../srv");
    store
        .tupper_stdin(&["import", "odd", "-"], &t.finish())
        .ok();
    for (workdir, physical) in [
        ("/var/run", "/run"),
        ("/var/run/made", "/run/made"),
        ("/var/srvrel/data", "/srv/data"),
        ("/tmp/../newdir", "/newdir"),
        ("/../../var/run/x/y", "/run/x/y"),
    ] {
        let out = store
            .tupper(&[
                "run", "--rm", "--net", "none", "-w", workdir, "odd", "sh", "-c", "pwd -P",
            ])
            .ok();
        assert_eq!(out.trim(), physical, "-w {workdir}");
    }
    // Nothing was made outside the image's own tree (the host's /run/made).
    assert!(!std::path::Path::new("/run/made").exists());
}

#[test]
fn the_command_keeps_only_dockers_default_capabilities() {
    let store = store_with_busybox();
    let out = store.sh_in(
        "bb",
        "grep -E '^Cap(Bnd|Eff|Prm)' /proc/self/status; \
         mount -t tmpfs none /tmp 2>/dev/null && echo mounted; \
         mount -o remount,rw /sys 2>/dev/null && echo sys-rw; \
         hostname evil 2>/dev/null && echo renamed; \
         mknod /tmp/null c 1 3 && chown 1:1 /tmp/null && echo kept; true",
    );
    for set in ["CapBnd", "CapEff", "CapPrm"] {
        assert!(
            out.contains(&format!("{set}:\t00000000a80425fb")),
            "{set} is not docker's default set:\n{out}"
        );
    }
    assert!(
        !out.contains("mounted") && !out.contains("sys-rw"),
        "CAP_SYS_ADMIN kept:\n{out}"
    );
    assert!(
        !out.contains("renamed"),
        "the command could set the hostname:\n{out}"
    );
    assert!(out.contains("kept"), "MKNOD/CHOWN were dropped too:\n{out}");
}

/// docker's `MaskedPaths` and `ReadonlyPaths` (an independent copy of the
/// list, as `docker inspect` shows it).
const DOCKER_MASKED: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const DOCKER_READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

#[test]
fn proc_and_sys_are_masked_as_in_docker() {
    let store = store_with_busybox();
    // What the kernel has: the host's view (this test runs outside any mask).
    let present: Vec<&str> = DOCKER_MASKED
        .into_iter()
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    let (dirs, files): (Vec<&str>, Vec<&str>) = present
        .iter()
        .partition(|p| std::path::Path::new(p).is_dir());
    assert!(
        !dirs.is_empty() && !files.is_empty(),
        "this kernel has none of the masked files or directories: nothing to test"
    );
    let script = present
        .iter()
        .map(|p| {
            format!("echo \"{p} $(cat {p} 2>/dev/null | wc -c) $(ls -A {p} 2>/dev/null | wc -l)\"")
        })
        .collect::<Vec<_>>()
        .join("; ");
    let out = store.sh_in("bb", &script);
    for p in &present {
        let line = out
            .lines()
            .find(|l| l.split(' ').next() == Some(*p))
            .unwrap_or_else(|| panic!("{p} not reported:\n{out}"));
        let f: Vec<&str> = line.split(' ').collect();
        if dirs.contains(p) {
            assert_eq!(f[2], "0", "{p} is not empty in the container: {line}");
        } else {
            assert_eq!(f[1], "0", "{p} is readable in the container: {line}");
        }
    }
    // The read-only ones: in the mount table as such, and a write fails.
    let mounts = store.run_rm("bb", &["cat", "/proc/self/mountinfo"]).ok();
    for p in DOCKER_READ_ONLY {
        if !std::path::Path::new(p).exists() {
            continue;
        }
        let line = mounts
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(p))
            .unwrap_or_else(|| panic!("{p} is not a mount of its own:\n{mounts}"));
        let opts = line.split(' ').nth(5).unwrap();
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "{p} is not read-only: {line}"
        );
    }
    // Writing the value that is already there: no harm if the test fails.
    let out = store.run_rm(
        "bb",
        &[
            "sh",
            "-c",
            "v=$(cat /proc/sys/vm/overcommit_ratio) && echo $v > /proc/sys/vm/overcommit_ratio",
        ],
    );
    assert_ne!(out.code, 0, "wrote a host sysctl: {out:?}");
    assert!(out.stderr.contains("Read-only"), "{out:?}");
    // The network sysctls stay readable (the namespace's own).
    let v = store
        .run_rm("bb", &["cat", "/proc/sys/net/ipv4/ip_forward"])
        .ok();
    assert_eq!(v.trim(), "0", "{v}");
}

#[test]
fn a_device_node_made_in_the_container_cannot_be_opened() {
    let store = store_with_busybox();
    // 1:3 is /dev/null: harmless if it opens. Made on the snapshot and on the
    // /dev tmpfs; CAP_MKNOD is kept, so mknod itself works (as in docker).
    let out = store.sh_in(
        "bb",
        "for n in /tmp/n /dev/n; do \
           mknod $n c 1 3 && echo made $n; \
           echo x > $n 2>/dev/null && echo opened $n; \
         done; \
         echo x > /dev/null && echo null-works",
    );
    assert!(
        out.contains("made /tmp/n") && out.contains("made /dev/n"),
        "{out}"
    );
    assert!(!out.contains("opened"), "a node made inside opened:\n{out}");
    assert!(out.contains("null-works"), "{out}");
}

/// `--sysctl`: parameters of the container's own namespaces, written for it
/// alone; `/proc/sys` stays read-only for its command.
#[test]
fn sysctls_are_the_containers_own() {
    let store = store_with_busybox();
    let host_port =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let out = store.tupper(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=80",
        "--sysctl",
        "kernel/shmmax=123456",
        "--sysctl",
        "net.ipv4.ping_group_range=0 100",
        "bb",
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmax \
         /proc/sys/net/ipv4/ping_group_range; echo 1 > /proc/sys/kernel/shmmax || echo refused",
    ]);
    assert_eq!(out.ok(), "80\n123456\n0\t100\nrefused\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap(),
        host_port
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shm
    );
    let before = store.state();
    for (args, says) in [
        (
            &["--net", "none", "--sysctl", "vm.swappiness=1"][..],
            "not a parameter of the container's own",
        ),
        (
            &["--net", "host", "--sysctl", "net.ipv4.ip_forward=1"],
            "the host's with --net host",
        ),
        (
            &["--net", "none", "--sysctl", "net.ipv4.ip_forward"],
            "NAME=VALUE",
        ),
        // The kernel has no such parameter: the child fails, nothing is left.
        (
            &["--net", "none", "--sysctl", "net.ipv4.nosuch=1"],
            "write 1 to /proc/sys/net/ipv4/nosuch",
        ),
    ] {
        let mut v = vec!["run", "--rm"];
        v.extend(args);
        v.extend(["bb", "true"]);
        let line = store.tupper(&v).fails(125);
        assert!(line.contains(says), "{args:?}: {line}");
        before.assert_same(&store.state(), &format!("{args:?}"));
    }
    store.assert_no_leftovers();
}

/// `--device`: a host device node bound into the container's /dev, where
/// the user said; anything but a device node is refused before anything is
/// made.
#[test]
fn a_device_is_bound_into_dev() {
    let store = store_with_busybox();
    let out = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--device",
            "/dev/null:/dev/x/mynull:rwm",
            "bb",
            "sh",
            "-c",
            "stat -c '%F %t:%T' /dev/x/mynull; echo data > /dev/x/mynull && echo wrote",
        ])
        .ok();
    assert_eq!(out, "character special file 1:3\nwrote\n");
    let before = store.state();
    for (device, says) in [
        ("/etc/passwd:/dev/p", "not a device node"),
        ("/dev/nosuch", "--device /dev/nosuch"),
        ("/dev/null:/etc/null", "below /dev"),
        ("/dev/null:r", "no device cgroup"),
    ] {
        let line = store
            .tupper(&[
                "run", "--rm", "--net", "none", "--device", device, "bb", "true",
            ])
            .fails(125);
        assert!(line.contains(says), "{device}: {line}");
        before.assert_same(&store.state(), device);
    }
    store.assert_no_leftovers();
}
