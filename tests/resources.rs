//! Resource limits (`--memory`, `--memory-swap`, `--pids-limit`, `--cpus`,
//! `--cpu-shares`, `--cpuset-cpus`, `--cgroup-parent`): a cgroup per
//! container that asks for one, checked from the host (the kernel's own
//! files, `/proc/PID/cgroup`) and by what the limits do to the command.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `tupper run -d --net none OPTIONS... bb ARGS...` ([`TestStore::detached`]).
fn detached(store: &TestStore, options: &[&str], args: &[&str]) -> String {
    store.detached(options, args)
}

/// `tupper run --rm --net none OPTIONS... bb ARGS...`.
fn run_rm(store: &TestStore, options: &[&str], args: &[&str]) -> Out {
    let mut v = vec!["run", "--rm", "--net", "none"];
    v.extend(options);
    v.push("bb");
    v.extend(args);
    store.tupper(&v)
}

/// The cgroup directories a record lists.
fn cgroups(record: &serde_json::Value) -> Vec<PathBuf> {
    record["cgroups"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| PathBuf::from(d.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// The path of process `pid`'s cgroup in the v1 hierarchy of `controller`,
/// as the kernel shows it in `/proc/PID/cgroup`.
fn cgroup_of(pid: i64, controller: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("no {controller} line in /proc/{pid}/cgroup: {text}"))
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

#[test]
fn limits_are_the_kernels_and_the_cgroup_goes_with_the_container() {
    let store = store_with_busybox();
    let last_cpu = fs::read_to_string("/sys/devices/system/cpu/online")
        .unwrap()
        .trim()
        .rsplit(['-', ','])
        .next()
        .unwrap()
        .to_string();
    let id = detached(
        &store,
        &[
            "-m",
            "64m",
            "--memory-swap",
            "96m",
            "--pids-limit",
            "20",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            &last_cpu,
        ],
        &["sleep", "100"],
    );
    let rec = store.inspect(&id);
    let pid = rec["pid"].as_i64().expect("a running container has a pid");
    // The kernel puts its PID 1 in PARENT/ID of each hierarchy.
    for c in ["cpu", "cpuacct", "cpuset", "memory", "pids"] {
        assert_eq!(cgroup_of(pid, c), format!("/tupper/{id}"), "{c}");
    }
    let dir = |c: &str| cgroup_v1_mount(c).join("tupper").join(&id);
    let mut listed = cgroups(&rec);
    listed.sort();
    let mut want: Vec<PathBuf> = ["cpu", "cpuacct", "cpuset", "memory", "pids"]
        .iter()
        .map(|c| dir(c))
        .collect();
    want.sort();
    want.dedup();
    assert_eq!(listed, want, "the record lists its cgroups");
    assert_eq!(
        read(&dir("memory"), "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read(&dir("memory"), "memory.memsw.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    assert_eq!(read(&dir("pids"), "pids.max"), "20");
    assert_eq!(read(&dir("cpu"), "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&dir("cpu"), "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&dir("cpu"), "cpu.shares"), "512");
    assert_eq!(read(&dir("cpuset"), "cpuset.cpus"), last_cpu);
    assert_eq!(rec["resources"]["memory"], 64u64 << 20);
    assert_eq!(rec["resources"]["pids_limit"], 20);
    store.tupper(&["rm", "-f", &id]).ok();
    for d in &want {
        assert!(!d.exists(), "{} is left after rm -f", d.display());
    }
    store.assert_no_leftovers();
}

#[test]
fn cpu_shares_out_of_range_are_clamped_as_the_kernel_clamps_them() {
    let store = store_with_busybox();
    let id = detached(&store, &["--cpu-shares", "1"], &["sleep", "100"]);
    assert_eq!(
        read(
            &cgroup_v1_mount("cpu").join("tupper").join(&id),
            "cpu.shares"
        ),
        "2"
    );
    store.tupper(&["rm", "-f", &id]).ok();
    store.assert_no_leftovers();
}

#[test]
fn the_command_sees_its_cgroup_as_the_root_and_limits_hold() {
    let store = store_with_busybox();
    let online = fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let cpu = online.trim().rsplit(['-', ',']).next().unwrap().to_string();
    let out = run_rm(
        &store,
        &["-m", "32m", "--cpuset-cpus", &cpu],
        &[
            "sh",
            "-c",
            "cat /proc/self/cgroup; grep -E 'Cpus_allowed_list|Seccomp:' /proc/self/status",
        ],
    )
    .ok();
    // Its cgroup namespace is rooted at its own cgroup in every hierarchy.
    for line in out
        .lines()
        .filter(|l| !l.starts_with("Cpus") && !l.starts_with("Seccomp"))
    {
        assert!(line.ends_with(":/"), "{line} in\n{out}");
    }
    assert!(
        out.contains(&format!("Cpus_allowed_list:\t{cpu}\n")),
        "{out}"
    );
    // cgroup v1 moves the system-call filter after the namespace: still there.
    assert!(out.contains("Seccomp:\t2\n"), "{out}");
    // --pids-limit: forks past it fail.
    let out = run_rm(
        &store,
        &["--pids-limit", "4"],
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo end",
        ],
    );
    assert!(out.stderr.contains("can't fork"), "{out:?}");
    // Without a limit the same script forks them all.
    let out = store.run_rm(
        "bb",
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo end",
        ],
    );
    assert_eq!(out.ok(), "end\n");
    assert!(!out.stderr.contains("can't fork"), "{out:?}");
    store.assert_no_leftovers();
}

/// `--cgroupns host` (docker's): no cgroup namespace of its own, so
/// `/proc/self/cgroup` shows the host's paths, its cgroup's included (and
/// exec's too); the limits hold as with a private one; the record keeps it
/// for `start`; a bad mode is refused before anything is made.
#[test]
fn cgroupns_host_shows_the_hosts_cgroup_paths() {
    let store = store_with_busybox();
    let id = detached(
        &store,
        &["--cgroupns", "host", "-m", "32m"],
        &["sleep", "100"],
    );
    let memory = |text: &str| -> String {
        text.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == "memory"))
            })
            .unwrap_or_else(|| panic!("no memory line in {text}"))
            .rsplit(':')
            .next()
            .unwrap()
            .to_string()
    };
    let seen = store
        .tupper(&["exec", &id, "cat", "/proc/self/cgroup"])
        .ok();
    assert!(memory(&seen).ends_with(&format!("/tupper/{id}")), "{seen}");
    let pid1 = store.inspect(&id)["pid"].as_i64().unwrap();
    let host = fs::read_to_string(format!("/proc/{pid1}/cgroup")).unwrap();
    assert_eq!(memory(&seen), memory(&host), "{seen} vs {host}");
    let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/cgroup")).unwrap();
    assert_eq!(ns(&pid1.to_string()), ns("self"));
    assert_eq!(store.inspect(&id)["cgroupns"], "host");
    store.tupper(&["rm", "-f", &id]).ok();
    // Private (the default): rooted at its cgroup, another namespace.
    let id = detached(&store, &["-m", "32m"], &["sleep", "100"]);
    let seen = store
        .tupper(&["exec", &id, "cat", "/proc/self/cgroup"])
        .ok();
    assert_eq!(memory(&seen), "/", "{seen}");
    let pid1 = store.inspect(&id)["pid"].as_i64().unwrap();
    assert_ne!(ns(&pid1.to_string()), ns("self"));
    store.tupper(&["rm", "-f", &id]).ok();
    let before = store.state();
    let e = run_rm(&store, &["--cgroupns", "shared"], &["true"]).fails(125);
    assert!(e.contains("--cgroupns shared"), "{e}");
    before.assert_same(&store.state(), "refused --cgroupns");
    store.assert_no_leftovers();
}

#[test]
fn exec_runs_in_the_containers_cgroup() {
    let store = store_with_busybox();
    let id = detached(&store, &["--pids-limit", "3"], &["sleep", "100"]);
    let out = store
        .tupper(&["exec", &id, "cat", "/proc/self/cgroup"])
        .ok();
    for line in out.lines() {
        assert!(
            line.ends_with(":/"),
            "exec is not in the container's cgroup: {out}"
        );
    }
    // PID 1 and the exec'd shell are 2 of the 3: two more sleeps cannot both fork.
    let out = store.tupper(&["exec", &id, "sh", "-c", "sleep 1 & sleep 1 & wait"]);
    assert!(out.stderr.contains("can't fork"), "{out:?}");
    store.tupper(&["rm", "-f", &id]).ok();
    store.assert_no_leftovers();
}

#[test]
fn a_command_out_of_memory_is_killed_and_the_record_says_so() {
    let store = store_with_busybox();
    // dd's 64 MiB buffer does not fit in 16 MiB.
    let out = store.tupper(&[
        "run",
        "--net",
        "none",
        "--name",
        "hog",
        "-m",
        "16m",
        "bb",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    out.code(137);
    let rec = store.inspect("hog");
    assert_eq!(rec["oom_killed"], true, "{rec}");
    assert_eq!(rec["exit_code"], 137);
    // Its cgroup went when it ended (as docker's), before `rm`.
    for d in cgroups(&rec) {
        assert!(
            !d.exists(),
            "{} is left after the container ended",
            d.display()
        );
    }
    store.tupper(&["rm", "hog"]).ok();
    // Within its limit it runs, and the record says it was not killed.
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "fits",
            "-m",
            "64m",
            "bb",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=1M",
            "count=1",
        ])
        .ok();
    // Not killed: the record says nothing of it (docker's false).
    let rec = store.inspect("fits");
    assert!(rec["oom_killed"].is_null(), "{rec}");
    assert_eq!(rec["exit_code"], 0);
    store.tupper(&["rm", "fits"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn bad_limits_are_one_line_errors_that_change_nothing() {
    let store = store_with_busybox();
    let before = store.state();
    // A parent of this test's own: other tests' containers come and go
    // under the default one meanwhile.
    let parent = format!("tupper-test-bad-{}", std::process::id());
    let _cleanup = Parents(
        ["cpu", "cpuacct", "cpuset", "memory", "pids"]
            .iter()
            .map(|c| cgroup_v1_mount(c).join(&parent))
            .collect(),
    );
    let children = || -> Vec<String> {
        ["cpu", "cpuacct", "cpuset", "memory", "pids"]
            .iter()
            .flat_map(|c| list_dir(&cgroup_v1_mount(c).join(&parent)))
            .filter(|e| is_id(e))
            .collect()
    };
    for (args, says) in [
        (&["-m", "1m"][..], "minimum memory"),
        (&["-m", "12q"], "not a size"),
        (&["--memory-swap", "1g"], "needs --memory"),
        (&["-m", "64m", "--memory-swap", "32m"], "at least --memory"),
        (&["--cpus", "0"], "more than 0"),
        (&["--cpus", "0.001"], "smallest"),
        (&["--cpus", "4096"], "CPUs this host has"),
        (&["--cpus", "0.001"], "--cpus 0.001: the smallest"),
        (&["--cpuset-cpus", "4000"], "not online"),
        (&["--cpuset-cpus", "1-0"], "not a list"),
        (&["--pids-limit", "many"], "not a number"),
        (&["--cgroup-parent", "a/../b"], "not allowed"),
        // The kernel refuses it (no such memory node), after the cgroup
        // was made: it is undone.
        (&["--cpuset-mems", "63"], "cpuset.mems"),
    ] {
        let mut v = vec!["run", "--rm", "--net", "none", "--cgroup-parent", &parent];
        v.extend(args);
        v.extend(["bb", "true"]);
        let line = store.tupper(&v).fails(125);
        assert!(line.contains(says), "{args:?}: {line}");
        before.assert_same(&store.state(), &format!("{args:?}"));
        assert_eq!(children(), Vec::<String>::new(), "{args:?} left a cgroup");
    }
    // The kernel's refusal did happen in a cgroup made for it (else the
    // check above would prove nothing about the undo).
    assert!(cgroup_v1_mount("cpuset").join(&parent).exists());
    store.assert_no_leftovers();
}

#[test]
fn a_killed_run_leaves_its_cgroup_for_rm() {
    let store = store_with_busybox();
    let id = detached(&store, &["-m", "64m"], &["sleep", "100"]);
    let rec = store.inspect(&id);
    let pid = rec["pid"].as_i64().unwrap();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i64 = stat
        .rsplit(") ")
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // The container's own tupper (run -d's), started by this test.
    sh("kill", &["-9", &ppid.to_string()]);
    assert!(
        wait_for(Duration::from_secs(20), || store
            .ps_json(true)
            .iter()
            .any(|r| r["id"] == id.as_str() && r["status"] == "dead")),
        "the container is not dead"
    );
    let dirs = cgroups(&rec);
    assert!(!dirs.is_empty());
    assert!(
        dirs.iter().all(|d| d.exists()),
        "the crash left no cgroup to clean (the test would prove nothing)"
    );
    store.tupper(&["rm", &id]).ok();
    for d in &dirs {
        assert!(!d.exists(), "{} is left after rm", d.display());
    }
    store.assert_no_leftovers();
}

#[test]
fn cgroups_the_container_made_below_its_own_go_with_it() {
    let store = store_with_busybox();
    // With CAP_SYS_ADMIN the container can mount its cgroups (rooted at its
    // own) and make cgroups below it: they must not keep it from ending.
    let out = run_rm(
        &store,
        &["--pids-limit", "50", "--cap-add", "SYS_ADMIN"],
        &[
            "sh",
            "-c",
            "mkdir /m && mount -t cgroup -o pids none /m && mkdir /m/sub /m/sub/deeper && echo made",
        ],
    );
    assert_eq!(out.ok(), "made\n");
    store.assert_no_leftovers();
    // Nor keep a stopped one from `rm`.
    let out = store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "nest",
            "--pids-limit",
            "50",
            "--cap-add",
            "SYS_ADMIN",
            "bb",
            "sh",
            "-c",
            "mkdir /m && mount -t cgroup -o pids none /m && mkdir /m/sub && echo made",
        ])
        .ok();
    assert_eq!(out, "made\n");
    let rec = store.inspect("nest");
    assert_eq!(rec["status"], "exited", "{rec}");
    for d in cgroups(&rec) {
        assert!(!d.exists(), "{} is left", d.display());
    }
    store.tupper(&["rm", "nest"]).ok();
    store.assert_no_leftovers();
}

/// Removes the test's own cgroup parents (children first) when dropped.
struct Parents(Vec<PathBuf>);

impl Drop for Parents {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = fs::remove_dir(d);
        }
    }
}

#[test]
fn cgroup_parent_places_the_cgroup_and_only_the_leaf_is_removed() {
    let store = store_with_busybox();
    let top = format!("tupper-test-{}", std::process::id());
    let parent = format!("{top}/nested");
    let mut made = Vec::new();
    for c in ["cpu", "cpuacct", "cpuset", "memory", "pids"] {
        made.push(cgroup_v1_mount(c).join(&parent));
        made.push(cgroup_v1_mount(c).join(&top));
    }
    let _cleanup = Parents(made);
    // A parent made before (here by the test, as a tupper killed after its
    // mkdir would leave it) has no CPUs in cgroup v1's cpuset: filled in.
    fs::create_dir_all(cgroup_v1_mount("cpuset").join(&parent)).unwrap();
    assert_eq!(
        read(&cgroup_v1_mount("cpuset").join(&parent), "cpuset.cpus"),
        ""
    );
    // Given alone, it makes a cgroup without limits.
    let id = detached(&store, &["--cgroup-parent", &parent], &["sleep", "100"]);
    let pid = store.inspect(&id)["pid"].as_i64().unwrap();
    assert_eq!(cgroup_of(pid, "memory"), format!("/{parent}/{id}"));
    assert_eq!(
        read(&cgroup_v1_mount("pids").join(&parent).join(&id), "pids.max"),
        "max"
    );
    store.tupper(&["rm", "-f", &id]).ok();
    assert!(!cgroup_v1_mount("memory").join(&parent).join(&id).exists());
    assert!(
        cgroup_v1_mount("memory").join(&parent).exists(),
        "the parent is the user's"
    );
    store.assert_no_leftovers();
}

#[test]
fn cgroup_v2_clones_the_container_into_its_cgroup() {
    let store = store_with_busybox();
    let tupper = format!("{TUPPER} --root {}", store.root_str());
    let parent = format!("tupper-test-v2-{}", std::process::id());
    let controllers =
        fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default();
    // In a mount namespace of its own, /sys/fs/cgroup is the host's cgroup2
    // (this host mounts it at /sys/fs/cgroup/unified): tupper sees a v2 host.
    let script = format!(
        "set -e; mount -t cgroup2 none /sys/fs/cgroup
        id=$({tupper} run -d --net none --cgroup-parent {parent} bb sleep 100)
        pid=$({tupper} inspect $id | sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p')
        echo procs=$(cat /sys/fs/cgroup/{parent}/$id/cgroup.procs) pid=$pid
        echo own=$(grep '^0::' /proc/$pid/cgroup)
        {tupper} rm -f $id >/dev/null
        test ! -e /sys/fs/cgroup/{parent}/$id && echo removed
        rmdir /sys/fs/cgroup/{parent}
        {tupper} run --rm --net none --pids-limit 5 bb true 2>&1 && echo limited || echo rc=$?"
    );
    let out = sh("unshare", &["-m", "sh", "-c", &script]);
    let procs = out
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .expect(&out);
    let (procs, pid) = procs.split_once(" pid=").expect(&out);
    assert!(!pid.is_empty(), "{out}");
    assert_eq!(procs, pid, "PID 1 is the one task of its v2 cgroup: {out}");
    assert!(out.contains(&format!("own=0::/{parent}/")), "{out}");
    assert!(out.contains("removed"), "{out}");
    if controllers.split_whitespace().any(|c| c == "pids") {
        assert!(out.contains("limited"), "{out}");
    } else {
        assert!(
            out.contains("the pids controller is not available in cgroup v2")
                && out.contains("rc=125"),
            "{out}"
        );
    }
    store.assert_no_leftovers();
}

#[test]
fn ulimits_are_the_commands_and_execs() {
    let store = store_with_busybox();
    let out = run_rm(
        &store,
        &[
            "--ulimit",
            "nofile=100:200",
            "--ulimit",
            "core=-1",
            "--ulimit",
            "nproc=7",
        ],
        &["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c; ulimit -u"],
    )
    .ok();
    assert_eq!(out, "100\n200\nunlimited\n7\n");
    // Without --ulimit, tupper's own (the harness's).
    let own = fs::read_to_string("/proc/self/limits").unwrap();
    let soft = own
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .to_string();
    assert_eq!(
        run_rm(&store, &[], &["sh", "-c", "ulimit -n"]).ok(),
        format!("{soft}\n")
    );
    // exec's commands get the container's.
    let id = detached(&store, &["--ulimit", "nofile=123"], &["sleep", "100"]);
    assert_eq!(
        store
            .tupper(&["exec", &id, "sh", "-c", "ulimit -n; ulimit -Hn"])
            .ok(),
        "123\n123\n"
    );
    assert_eq!(store.inspect(&id)["ulimits"][0], "nofile=123:123");
    store.tupper(&["rm", "-f", &id]).ok();
    store.assert_no_leftovers();
}

/// `--cpu-period` and `--cpu-quota` (docker's): the CFS period and quota
/// in the kernel's files; `update` changes one and keeps the other; not
/// with `--cpus`, and out of range, one-line errors that make nothing.
#[test]
fn cpu_period_and_quota_are_the_kernels() {
    let store = store_with_busybox();
    let id = detached(
        &store,
        &["--cpu-period", "50000", "--cpu-quota", "20000"],
        &["sleep", "100"],
    );
    let dir = cgroup_v1_mount("cpu").join("tupper").join(&id);
    assert_eq!(read(&dir, "cpu.cfs_period_us"), "50000");
    assert_eq!(read(&dir, "cpu.cfs_quota_us"), "20000");
    store.tupper(&["update", "--cpu-quota", "-1", &id]).ok();
    assert_eq!(read(&dir, "cpu.cfs_period_us"), "50000");
    assert_eq!(read(&dir, "cpu.cfs_quota_us"), "-1");
    let rec = store.inspect(&id);
    assert_eq!(rec["resources"]["cpu_period"], 50000);
    assert_eq!(rec["resources"]["cpu_quota"], -1);
    let line = store.tupper(&["update", "--cpus", "1", &id]).fails(125);
    assert!(
        line.contains("--cpus with --cpu-period or --cpu-quota"),
        "{line}"
    );
    store.tupper(&["rm", "-f", &id]).ok();
    let before = store.state();
    for (flags, error) in [
        (
            &["--cpus", "1", "--cpu-quota", "20000"][..],
            "--cpus with --cpu-period or --cpu-quota",
        ),
        (
            &["--cpu-period", "999"],
            "--cpu-period 999: from 1000 (1 ms)",
        ),
        (
            &["--cpu-quota", "500"],
            "--cpu-quota 500: at least 1000 (1 ms)",
        ),
        (&["--cpu-quota", "x"], "--cpu-quota x: not a number"),
    ] {
        let line = run_rm(&store, flags, &["true"]).fails(125);
        assert!(line.contains(error), "{flags:?}: {line}");
        before.assert_same(&store.state(), &format!("{flags:?}"));
    }
    store.assert_no_leftovers();
}

/// `--device-read-bps`, `--device-write-bps`, `--device-read-iops`,
/// `--device-write-iops` (docker's): the kernel's throttle files of the
/// container's `blkio` cgroup hold them, for the device's number; a
/// path that is not a block device, or a bad rate, is a one-line error
/// that makes nothing.
#[test]
fn device_throttles_are_the_kernels() {
    let store = store_with_busybox();
    let dev = store.loopdev().to_string();
    let id = detached(
        &store,
        &[
            "--device-write-bps",
            &format!("{dev}:1mb"),
            "--device-read-bps",
            &format!("{dev}:2mb"),
            "--device-read-iops",
            &format!("{dev}:100"),
            "--device-write-iops",
            &format!("{dev}:50"),
        ],
        &["sleep", "100"],
    );
    let rdev = fs::metadata(&dev)
        .map(|m| std::os::unix::fs::MetadataExt::rdev(&m))
        .unwrap();
    let number = format!("{}:{}", libc::major(rdev), libc::minor(rdev));
    let dir = cgroup_v1_mount("blkio").join("tupper").join(&id);
    for (file, rate) in [
        ("blkio.throttle.write_bps_device", 1u64 << 20),
        ("blkio.throttle.read_bps_device", 2 << 20),
        ("blkio.throttle.read_iops_device", 100),
        ("blkio.throttle.write_iops_device", 50),
    ] {
        assert_eq!(read(&dir, file), format!("{number} {rate}"), "{file}");
    }
    let rec = store.inspect(&id);
    assert_eq!(rec["resources"]["device_throttles"][0]["device"], number);
    assert!(cgroups(&rec).contains(&dir), "{rec}");
    store.tupper(&["rm", "-f", &id]).ok();
    assert!(!dir.exists(), "{} is left", dir.display());
    let before = store.state();
    for (flag, value, error) in [
        (
            "--device-write-bps",
            "/dev/null:1mb",
            "--device-write-bps /dev/null: not a block device",
        ),
        (
            "--device-read-bps",
            "/nope:1mb",
            "--device-read-bps /nope: No such file",
        ),
        (
            "--device-read-iops",
            &format!("{dev}:x"),
            "is not a count of operations",
        ),
        ("--device-write-bps", &format!("{dev}:fast"), "not a size"),
        ("--device-write-bps", "1mb", "expected PATH:RATE"),
    ] {
        let line = run_rm(&store, &[flag, value], &["true"]).fails(125);
        assert!(line.contains(error), "{flag} {value}: {line}");
    }
    before.assert_same(&store.state(), "bad device throttles");
    store.assert_no_leftovers();
}

/// `--memory-swappiness` and `--oom-kill-disable` (docker's, cgroup v1):
/// the kernel's files of the container's memory cgroup hold them, the
/// record keeps them; out of range, or `--oom-kill-disable` without `-m`:
/// a one-line error that makes nothing.
#[test]
fn memory_swappiness_and_oom_kill_disable_are_the_kernels() {
    let store = store_with_busybox();
    let id = detached(
        &store,
        &[
            "-m",
            "64m",
            "--memory-swappiness",
            "7",
            "--oom-kill-disable",
        ],
        &["sleep", "100"],
    );
    let dir = cgroup_v1_mount("memory").join("tupper").join(&id);
    assert_eq!(read(&dir, "memory.swappiness"), "7");
    let oom = read(&dir, "memory.oom_control");
    assert!(oom.lines().any(|l| l == "oom_kill_disable 1"), "{oom}");
    let rec = store.inspect(&id);
    assert_eq!(rec["resources"]["memory_swappiness"], 7);
    assert_eq!(rec["resources"]["oom_kill_disable"], true);
    store.tupper(&["rm", "-f", &id]).ok();
    let before = store.state();
    for (options, error) in [
        (
            &["--memory-swappiness", "101"][..],
            "--memory-swappiness 101: from 0 to 100",
        ),
        (
            &["--memory-swappiness", "x"],
            "--memory-swappiness x: from 0 to 100",
        ),
        (&["--oom-kill-disable"], "--oom-kill-disable needs --memory"),
    ] {
        let line = run_rm(&store, options, &["true"]).fails(125);
        assert!(line.contains(error), "{options:?}: {line}");
    }
    before.assert_same(&store.state(), "bad memory options");
    store.assert_no_leftovers();
}

/// `--memory-reservation` (docker's): the soft limit in the kernel's file;
/// `update` changes it; more than `--memory`: a one-line error.
#[test]
fn memory_reservation_is_the_kernels() {
    let store = store_with_busybox();
    let id = detached(
        &store,
        &["-m", "64m", "--memory-reservation", "32m"],
        &["sleep", "100"],
    );
    let dir = cgroup_v1_mount("memory").join("tupper").join(&id);
    assert_eq!(
        read(&dir, "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    store
        .tupper(&["update", "--memory-reservation", "16m", &id])
        .ok();
    assert_eq!(
        read(&dir, "memory.soft_limit_in_bytes"),
        (16u64 << 20).to_string()
    );
    assert_eq!(
        store.inspect(&id)["resources"]["memory_reservation"],
        16u64 << 20
    );
    let line = store
        .tupper(&["update", "--memory-reservation", "128m", &id])
        .fails(125);
    assert!(line.contains("more than --memory"), "{line}");
    assert_eq!(
        read(&dir, "memory.soft_limit_in_bytes"),
        (16u64 << 20).to_string()
    );
    store.tupper(&["rm", "-f", &id]).ok();
    let before = store.state();
    let line = run_rm(
        &store,
        &["-m", "32m", "--memory-reservation", "64m"],
        &["true"],
    )
    .fails(125);
    assert!(
        line.contains("--memory-reservation 67108864: more than --memory (33554432)"),
        "{line}"
    );
    before.assert_same(&store.state(), "--memory-reservation over --memory");
    store.assert_no_leftovers();
}

/// `--oom-score-adj` (docker's): the command's `oom_score_adj`, which
/// its children and `exec`'s commands have too; kept in the record;
/// outside -1000..1000 a one-line error that makes nothing. A value
/// below 0 needs CAP_SYS_RESOURCE (this VM's root has not got it): then
/// it is a one-line error that says so, and makes nothing.
#[test]
fn oom_score_adj_is_the_commands_and_execs() {
    let store = store_with_busybox();
    let script = "cat /proc/self/oom_score_adj; sh -c 'cat /proc/self/oom_score_adj'";
    let out = run_rm(&store, &["--oom-score-adj", "500"], &["sh", "-c", script]).ok();
    assert_eq!(out, "500\n500\n");
    let before = store.state();
    let lowered = run_rm(&store, &["--oom-score-adj", "-500"], &["sh", "-c", script]);
    match has_capability(24) {
        true => assert_eq!(lowered.ok(), "-500\n-500\n"),
        false => {
            let line = lowered.fails(125);
            assert!(
                line.contains("(--oom-score-adj): Permission denied"),
                "{line}"
            );
            assert!(line.contains("needs CAP_SYS_RESOURCE"), "{line}");
            before.assert_same(&store.state(), "--oom-score-adj -500");
        }
    }
    let own = fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    assert_eq!(
        run_rm(&store, &[], &["sh", "-c", script]).ok(),
        own.repeat(2)
    );
    let id = detached(&store, &["--oom-score-adj", "800"], &["sleep", "100"]);
    assert_eq!(
        store
            .tupper(&["exec", &id, "cat", "/proc/self/oom_score_adj"])
            .ok(),
        "800\n"
    );
    assert_eq!(store.inspect(&id)["oom_score_adj"], 800);
    store.tupper(&["rm", "-f", &id]).ok();
    let before = store.state();
    for bad in ["1001", "-1001", "x"] {
        let line = run_rm(&store, &["--oom-score-adj", bad], &["true"]).fails(125);
        assert!(
            line.contains(&format!(
                "--oom-score-adj \"{bad}\": a whole number from -1000 to 1000"
            )),
            "{line}"
        );
        before.assert_same(&store.state(), bad);
    }
    store.assert_no_leftovers();
}

#[test]
fn bad_ulimits_are_one_line_errors_that_change_nothing() {
    let store = store_with_busybox();
    let before = store.state();
    for (args, says) in [
        (
            &["--ulimit", "nofile=2:1"][..],
            "soft limit is above the hard limit",
        ),
        (&["--ulimit", "bogus=1"], "unknown limit bogus"),
        (&["--ulimit", "nofile"], "NAME=SOFT[:HARD]"),
        // The kernel refuses it (over /proc/sys/fs/nr_open) in the child.
        (
            &["--ulimit", "nofile=1:99999999999"],
            "set --ulimit nofile=1:99999999999",
        ),
    ] {
        let line = run_rm(&store, args, &["true"]).fails(125);
        assert!(line.contains(says), "{args:?}: {line}");
        before.assert_same(&store.state(), &format!("{args:?}"));
    }
    store.assert_no_leftovers();
}

/// A pids cgroup of the test's own (`tupper-test-tasks-*`, next to tupper's
/// subtree, as the `--cgroup-parent` tests name theirs) that allows `max`
/// tasks; removed on drop, once its last task has ended.
struct TaskLimit {
    dir: PathBuf,
}

impl TaskLimit {
    fn new(max: u32) -> TaskLimit {
        // One per test: the tests of this file run side by side.
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            cgroup_v1_mount("pids").join(format!("tupper-test-tasks-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let limit = TaskLimit { dir };
        limit.set(max);
        limit
    }

    fn set(&self, max: u32) {
        fs::write(self.dir.join("pids.max"), max.to_string()).unwrap();
    }

    /// How many forks and thread creations the limit refused (`pids.events`).
    fn refused(&self) -> u64 {
        let text = read(&self.dir, "pids.events");
        text.strip_prefix("max ")
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("pids.events: {text:?}"))
    }

    /// `tupper --root ROOT ARGS...`, started inside the cgroup (by a shell
    /// that moves itself in, then becomes tupper).
    fn tupper(&self, store: &TestStore, args: &[&str]) -> Out {
        let mut inner = store.cmd();
        inner.args(args);
        let mut c = std::process::Command::new("sh");
        c.arg("-c")
            .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
            .arg(&self.dir)
            .arg(inner.get_program())
            .args(inner.get_args());
        c.env_remove("TUPPER_ROOT");
        run_cmd(c, None, DEFAULT_TIMEOUT)
    }
}

impl Drop for TaskLimit {
    fn drop(&mut self) {
        // A background process of tupper's may still be at work in it.
        for _ in 0..300 {
            if fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Under a limit on tasks that leaves no room for a thread or a background
/// process, `import` does without its data thread and its background refill,
/// and `run --rm` without the refiller it forks while the command runs: they
/// do their job and exit 0, slower (the pools fill at a later run), rather
/// than fail after the work is done. The cgroup's `max` events show that
/// the limit was hit each time.
#[test]
fn a_limit_on_tasks_makes_import_and_run_slower_not_failed() {
    let store = TestStore::new();
    let limit = TaskLimit::new(1);
    let tar = busybox_tar().to_str().unwrap();
    let out = limit.tupper(&store, &["import", "bb", tar]);
    let refused = limit.refused();
    let printed = out.ok();
    assert!(printed.starts_with("bb: "), "{printed:?}");
    // The data thread and the background process were both refused.
    assert!(refused >= 2, "the limit refused {refused} tasks");
    let image = store.image_path("bb");
    assert!(image.join("bin/busybox").is_file());
    assert!(subvol_info(&image).0, "the image is not read-only");
    store.settle_pool();
    assert!(store.pool_spares().is_empty(), "a refill ran");

    // tupper and the container's command fit; the refiller does not.
    limit.set(2);
    let out = limit.tupper(
        &store,
        &["run", "--rm", "--net", "none", "bb", "sleep", "1"],
    );
    out.ok();
    assert!(limit.refused() > refused, "the refiller was not refused");
    // The background process forked after the command (it fits once tupper
    // has exited) gets fewer refill workers than it asks for (1 of 8), and
    // still empties the trash and refills the pool.
    store.settle_pool();
    let now = limit.refused();
    assert!(now >= refused + 2, "refused {refused}, then {now}");
    assert!(store.container_ids().is_empty(), "--rm left a container");
    assert!(
        list_dir(&store.root().join("trash")).is_empty(),
        "the trash was not emptied"
    );
    assert!(!store.pool_spares().is_empty(), "the pool was not refilled");
}

/// When even the background process of a `run --rm` is refused (a process
/// that joined the cgroup meanwhile took the last slot), the run destroys
/// its snapshot itself: the trash is empty when tupper returns.
#[test]
fn a_run_rm_without_its_background_process_empties_the_trash_itself() {
    let store = store_with_busybox();
    let limit = TaskLimit::new(2);
    // Outside the cgroup until the container runs (tupper and it fill it),
    // then moved in: moving in is not limited, forking is.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let dir = limit.dir.clone();
    let pid = sleeper.id();
    let mover = std::thread::spawn(move || {
        // Once the container's command runs (tupper's helpers are gone).
        let runs = || {
            read(&dir, "cgroup.procs").lines().any(|p| {
                fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep")
            })
        };
        let start = std::time::Instant::now();
        while !(runs() && read(&dir, "pids.current") == "2")
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
    });
    let refused = limit.refused();
    let out = limit.tupper(
        &store,
        &["run", "--rm", "--net", "none", "bb", "sleep", "2"],
    );
    mover.join().unwrap();
    let trash = list_dir(&store.root().join("trash"));
    let now = limit.refused();
    kill(pid as i32, libc::SIGKILL);
    let _ = sleeper.wait();
    out.ok();
    assert!(now > refused, "no fork was refused ({refused}, then {now})");
    assert!(trash.is_empty(), "the trash holds {trash:?}");
    assert!(store.container_ids().is_empty(), "--rm left a container");
}

#[test]
fn update_changes_the_limits_of_a_running_container_at_once() {
    let store = store_with_busybox();
    // Started without limits: no cgroup of its own.
    let id = detached(&store, &["--name", "u"], &["sleep", "1000"]);
    let pid = store.inspect("u")["pid"].as_i64().unwrap();
    assert_ne!(cgroup_of(pid, "memory"), format!("/tupper/{id}"));
    store.tupper(&["exec", "-d", "u", "sleep", "999"]).ok();
    assert_eq!(
        store
            .tupper(&["update", "-m", "64m", "--pids-limit", "10", "u"])
            .ok(),
        "u\n"
    );
    let dir = |c: &str| cgroup_v1_mount(c).join("tupper").join(&id);
    // Every process of the container is in it now, exec's too.
    let procs = read(&dir("memory"), "cgroup.procs");
    assert_eq!(procs.lines().count(), 2, "{procs}");
    assert!(procs.lines().any(|p| p == pid.to_string()), "{procs}");
    for c in ["memory", "pids", "cpu"] {
        assert_eq!(cgroup_of(pid, c), format!("/tupper/{id}"), "{c}");
    }
    assert_eq!(
        read(&dir("memory"), "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(read(&dir("pids"), "pids.max"), "10");
    // The pids limit holds: 10 tasks at most.
    let out = store.tupper(&[
        "exec",
        "u",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done 2>&1; wait",
    ]);
    assert!(
        out.stdout.contains("can't fork") || out.stderr.contains("can't fork"),
        "{out:?}"
    );
    // Again: memory past the old memory plus swap (written in the other
    // order), pids kept.
    store.tupper(&["update", "--memory", "200m", "u"]).ok();
    assert_eq!(
        read(&dir("memory"), "memory.limit_in_bytes"),
        (200u64 << 20).to_string()
    );
    assert_eq!(read(&dir("pids"), "pids.max"), "10");
    let rec = store.inspect("u");
    assert_eq!(rec["resources"]["memory"], 200u64 << 20);
    assert_eq!(rec["resources"]["pids_limit"], 10);
    // Its end removes the cgroup update made; the next start has the limits.
    store.tupper(&["stop", "-t", "1", "u"]).ok();
    for c in ["memory", "pids", "cpu"] {
        assert!(!dir(c).exists(), "{c} cgroup left after the end");
    }
    store.tupper(&["start", "u"]).ok();
    let pid = store.inspect("u")["pid"].as_i64().unwrap();
    assert_eq!(cgroup_of(pid, "memory"), format!("/tupper/{id}"));
    assert_eq!(read(&dir("pids"), "pids.max"), "10");
    store.tupper(&["rm", "-f", "u"]).ok();
    store.assert_no_leftovers();
}

#[test]
fn update_of_a_stopped_container_and_bad_updates() {
    let store = store_with_busybox();
    let id = store
        .tupper(&[
            "create", "--net", "none", "--name", "c", "bb", "sleep", "1000",
        ])
        .ok()
        .trim()
        .to_string();
    store.tupper(&["update", "--cpus", "0.5", "c"]).ok();
    assert!(!cgroup_v1_mount("cpu").join("tupper").join(&id).exists());
    assert_eq!(store.inspect("c")["resources"]["nano_cpus"], 500_000_000u64);
    let before = store.state();
    for (args, want) in [
        (&["update", "-m", "1k", "c"][..], "minimum memory limit"),
        (&["update", "c"], "update needs a limit or policy to change"),
        (
            &["update", "-m", "64m"],
            "update needs at least one container name or ID",
        ),
        (&["update", "-m", "64m", "nope"], "no such container: nope"),
        (
            &["update", "--memory-swap", "10m", "-m", "64m", "c"],
            "memory-swap",
        ),
    ] {
        let err = store.tupper(args).fails(125);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    store.state().assert_same(&before, "bad updates");
    store.tupper(&["start", "c"]).ok();
    let dir = cgroup_v1_mount("cpu").join("tupper").join(&id);
    assert_eq!(read(&dir, "cpu.cfs_quota_us"), "50000");
    store.tupper(&["rm", "-f", "c"]).ok();
    store.assert_no_leftovers();
}
