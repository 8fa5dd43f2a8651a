//! The system-call filter (`src/seccomp.rs`) and `--security-opt`, seen from
//! inside a container: a static C program makes each call and prints the
//! errno it got (`tests/seccomp-probe.c`).

mod common;

use common::*;
use std::collections::BTreeMap;

const PROBE: &str = include_str!("seccomp-probe.c");

/// A store with image `probe`: busybox and `/probe`.
fn store_with_probe() -> TestStore {
    let store = TestStore::new();
    let mut t = TarBuilder::with_busybox(&[
        "sh", "grep", "ip", "mount", "chown", "touch", "mkdir", "sleep",
    ]);
    t.dir("tmp", 0o1777);
    t.file("probe", 0o755, &store.static_program("probe", PROBE));
    store
        .tupper_stdin(&["import", "probe", "-"], &t.finish())
        .ok();
    store
}

/// `/probe`'s lines as call -> errno (0: the call ran).
fn probe(store: &TestStore, options: &[&str]) -> BTreeMap<String, i32> {
    let mut args = vec!["run", "--rm", "--net", "none"];
    args.extend(options);
    args.extend(["probe", "/probe"]);
    let out = store.tupper(&args).ok();
    out.lines()
        .map(|l| {
            let (call, errno) = l.rsplit_once(' ').expect(l);
            (call.to_string(), errno.parse().expect(l))
        })
        .collect()
}

fn status_line(store: &TestStore, options: &[&str], field: &str) -> String {
    let mut args = vec!["run", "--rm", "--net", "none"];
    args.extend(options);
    args.extend(["probe", "grep", field, "/proc/self/status"]);
    store.tupper(&args).ok().trim().to_string()
}

const EPERM: i32 = 1;
const ENOTTY: i32 = 25;
const ENOSYS: i32 = 38;
const EINVAL: i32 = 22;

#[test]
fn the_default_filter_refuses_what_docker_refuses() {
    let store = store_with_probe();
    assert_eq!(status_line(&store, &[], "Seccomp:"), "Seccomp:\t2");
    let got = probe(&store, &[]);
    let want = [
        // A user namespace would give the command every capability in it.
        ("unshare-user", EPERM),
        // libc falls back to clone, whose flags the filter reads.
        ("clone3", ENOSYS),
        ("keyctl", EPERM),
        // tupper shares its terminal: no typing into it.
        ("tiocsti", EPERM),
        ("personality-query", 0),
        ("personality-read-implies-exec", EPERM),
        ("vsock", EPERM),
        // A number the kernel does not have: as without a filter.
        ("nr400", ENOSYS),
        ("x32", ENOSYS),
        // A ring's operations would bypass the filter (docker 25.0 too).
        ("io_uring_setup", EPERM),
        // CAP_SYS_CHROOT is docker's.
        ("chroot", 0),
        // fork is clone without namespace flags; the child exits 7.
        ("fork", 7),
    ];
    for (call, errno) in want {
        assert_eq!(got.get(call), Some(&errno), "{call}: {got:?}");
    }
}

#[test]
fn a_32_bit_system_call_ends_the_command() {
    let store = store_with_probe();
    // getpid by `int $0x80`: the filter covers the native ABI only, and kills
    // the process (SIGSYS, 31) rather than let the other table through.
    let out = store.run_rm("probe", &["/probe", "int80"]);
    out.code(128 + 31);
    let out = store.tupper(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--security-opt",
        "seccomp=unconfined",
        "probe",
        "/probe",
        "int80",
    ]);
    assert!(out.ok().contains("int80 ran"));
}

#[test]
fn seccomp_unconfined_runs_without_the_filter() {
    let store = store_with_probe();
    let unconfined = ["--security-opt", "seccomp=unconfined"];
    assert_eq!(status_line(&store, &unconfined, "Seccomp:"), "Seccomp:\t0");
    let got = probe(&store, &unconfined);
    let want = [
        ("unshare-user", 0),
        // The kernel's own answer to a NULL argument.
        ("clone3", EINVAL),
        ("tiocsti", ENOTTY),
        ("personality-read-implies-exec", 0),
        ("nr400", ENOSYS),
        ("io_uring_setup", 0),
    ];
    for (call, errno) in want {
        assert_eq!(got.get(call), Some(&errno), "{call}: {got:?}");
    }
    // The capabilities stay docker's either way.
    assert_eq!(
        status_line(&store, &unconfined, "CapBnd"),
        "CapBnd:\t00000000a80425fb"
    );
}

#[test]
fn no_new_privileges_is_off_unless_asked() {
    let store = store_with_probe();
    assert_eq!(status_line(&store, &[], "NoNewPrivs"), "NoNewPrivs:\t0");
    for opt in [
        "no-new-privileges",
        "no-new-privileges=true",
        "no-new-privileges:true",
    ] {
        assert_eq!(
            status_line(&store, &["--security-opt", opt], "NoNewPrivs"),
            "NoNewPrivs:\t1",
            "{opt}"
        );
    }
    // With it, the filter is still loaded.
    assert_eq!(
        status_line(&store, &["--security-opt", "no-new-privileges"], "Seccomp:"),
        "Seccomp:\t2"
    );
}

#[test]
fn an_unsupported_security_option_changes_nothing() {
    let store = store_with_probe();
    let before = store.state();
    let bad_profile = store.scratch().join("bad.json");
    std::fs::write(&bad_profile, r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).unwrap();
    let bad = format!("seccomp={}", bad_profile.display());
    for opt in [
        "seccomp=/nonexistent/profile.json",
        &bad,
        "apparmor=unconfined",
        "label=disable",
    ] {
        let out = store.tupper(&[
            "run",
            "--net",
            "none",
            "--security-opt",
            opt,
            "probe",
            "true",
        ]);
        let line = out.fails(125);
        assert!(line.contains(opt.split_once('=').unwrap().1), "{line}");
        before.assert_same(&store.state(), opt);
    }
}

#[test]
fn cap_drop_all_leaves_nothing() {
    let store = store_with_probe();
    let opts = ["--cap-drop", "ALL"];
    assert_eq!(
        status_line(&store, &opts, "CapBnd"),
        "CapBnd:\t0000000000000000"
    );
    let out = store.tupper(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--cap-drop",
        "all",
        "probe",
        "sh",
        "-c",
        "touch /tmp/f && echo made; chown 1 /tmp/f && echo chowned; true",
    ]);
    let out = out.ok();
    assert!(out.contains("made") && !out.contains("chowned"), "{out}");
    // The filter follows: no CAP_SYS_CHROOT, no chroot.
    let got = probe(&store, &["--cap-drop", "SYS_CHROOT"]);
    assert_eq!(got.get("chroot"), Some(&EPERM), "{got:?}");
}

#[test]
fn cap_add_gives_the_capability_and_its_calls() {
    let store = store_with_probe();
    let script = "ip addr add 10.9.9.9/32 dev lo 2>/dev/null && echo added; true";
    let plain = store.sh_in("probe", script);
    assert!(!plain.contains("added"), "NET_ADMIN without --cap-add");
    let out = store.tupper(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--cap-add",
        "NET_ADMIN",
        "probe",
        "sh",
        "-c",
        script,
    ]);
    assert!(out.ok().contains("added"), "--cap-add NET_ADMIN");
    // SYS_ADMIN: the capability, and the filter lets mount and unshare through.
    let out = store.tupper(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--cap-add",
        "CAP_SYS_ADMIN",
        "probe",
        "sh",
        "-c",
        "mount -t tmpfs none /tmp && echo mounted",
    ]);
    assert!(out.ok().contains("mounted"));
    let got = probe(&store, &["--cap-add", "sys_admin"]);
    assert_eq!(got.get("unshare-user"), Some(&0), "{got:?}");
    assert_ne!(got.get("clone3"), Some(&ENOSYS), "{got:?}");
    // ALL: every capability tupper has (this test's own set, which it
    // passes on: not every environment has all the kernel's).
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let own = own.lines().find(|l| l.starts_with("CapPrm:")).unwrap();
    assert_eq!(
        status_line(&store, &["--cap-add", "ALL"], "CapBnd"),
        own.replace("CapPrm", "CapBnd")
    );
}

#[test]
fn an_unknown_capability_changes_nothing() {
    let store = store_with_probe();
    let before = store.state();
    for (flag, cap) in [("--cap-add", "NET_ADMINX"), ("--cap-drop", "CAP_BOGUS")] {
        let out = store.tupper(&["run", "--net", "none", flag, cap, "probe", "true"]);
        let line = out.fails(125);
        assert!(line.contains(cap) && line.contains(flag), "{line}");
        before.assert_same(&store.state(), cap);
    }
}

#[test]
fn inspect_shows_the_security_settings() {
    let store = store_with_probe();
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "s",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "net_admin",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "no-new-privileges",
            "probe",
            "sh",
            "-c",
            "exit 0",
        ])
        .ok();
    let out = store.tupper(&["inspect", "s"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sec = &v[0]["security"];
    assert_eq!(
        sec["capabilities"],
        serde_json::json!(["CAP_NET_ADMIN"]),
        "{out}"
    );
    assert_eq!(sec["seccomp"], "unconfined", "{out}");
    assert_eq!(sec["no_new_privileges"], true, "{out}");
    store.tupper(&["rm", "s"]).ok();
}

/// `setpriv SETPRIV... tupper --root ROOT run --rm --net none ARGS...`:
/// tupper started with what `setpriv` gives it; asserts exit 0, returns stdout.
fn run_under_setpriv(store: &TestStore, setpriv: &[&str], args: &[&str]) -> String {
    let mut c = std::process::Command::new("setpriv");
    c.args(setpriv)
        .args([TUPPER, "--root"])
        .arg(store.root())
        .args(["run", "--rm", "--net", "none"])
        .args(args);
    run_cmd(c, None, DEFAULT_TIMEOUT).ok()
}

#[test]
fn the_inheritable_set_is_empty_whatever_tuppers_own() {
    let store = store_with_busybox();
    // tupper started with NET_RAW (one of docker's) inheritable.
    let inh = ["--inh-caps", "+net_raw"];
    let out = run_under_setpriv(
        &store,
        &inh,
        &["bb", "grep", "-E", "^Cap(Inh|Bnd)", "/proc/self/status"],
    );
    assert_eq!(
        out,
        "CapInh:\t0000000000000000\nCapBnd:\t00000000a80425fb\n"
    );
    // And a user gains nothing from a file's inheritable capabilities.
    let out = run_under_setpriv(
        &store,
        &inh,
        &["-u", "1000", "bb", "grep", "^CapInh", "/proc/self/status"],
    );
    assert_eq!(out, "CapInh:\t0000000000000000\n");
}

#[test]
fn the_callers_supplementary_groups_stay_out() {
    let store = store_with_busybox();
    let out = run_under_setpriv(
        &store,
        &["--groups", "27,100"],
        &["bb", "grep", "^Groups", "/proc/self/status"],
    );
    assert_eq!(out.trim_end(), "Groups:");
}

/// `--privileged`, docker's: every capability tupper has, no filter, the
/// host's device nodes in `/dev`, device nodes that open anywhere, a
/// writable `/sys`, no masks over `/proc`; `exec` and `start` keep it. The
/// same script in a default container is the control: none of it.
#[test]
fn privileged_lifts_the_protections_that_a_default_run_keeps() {
    let store = store_with_busybox();
    let script = "grep -E '^(CapEff|Seccomp):' /proc/self/status; \
                  test -c /dev/loop-control && echo host-devices || echo own-devices; \
                  readlink /dev/ptmx; \
                  mknod /n c 1 3 && (echo x > /n) 2>/dev/null && echo nodes-open || echo nodes-closed; \
                  grep -q ' /sys sysfs rw' /proc/mounts && echo sys-rw || echo sys-ro; \
                  test -n \"$(head -c 1 /proc/interrupts)\" && echo proc-shown || echo proc-masked; \
                  mkdir /m && mount -t tmpfs none /m 2>/dev/null && echo mounts || echo no-mount";
    let own_caps = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .unwrap()
        .to_string();
    let privileged = store
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--privileged",
            "bb",
            "sh",
            "-c",
            script,
        ])
        .ok();
    assert_eq!(
        privileged,
        format!(
            "{own_caps}\nSeccomp:\t0\nhost-devices\npts/ptmx\nnodes-open\nsys-rw\nproc-shown\nmounts\n"
        )
    );
    let default = store
        .tupper(&["run", "--rm", "--net", "none", "bb", "sh", "-c", script])
        .ok();
    assert_eq!(
        default,
        "CapEff:\t00000000a80425fb\nSeccomp:\t2\nown-devices\npts/ptmx\nnodes-closed\nsys-ro\nproc-masked\nno-mount\n"
    );
    // Kept by the record: `exec` gets it, `start` makes it again.
    store
        .tupper(&[
            "run",
            "-d",
            "--net",
            "none",
            "--privileged",
            "--name",
            "p",
            "bb",
            "sleep",
            "100",
        ])
        .ok();
    let exec = store
        .tupper(&["exec", "p", "grep", "^CapEff:", "/proc/self/status"])
        .ok();
    assert_eq!(exec, format!("{own_caps}\n"));
    let r: serde_json::Value = serde_json::from_str(&store.tupper(&["inspect", "p"]).ok()).unwrap();
    assert_eq!(r[0]["privileged"], true, "{r}");
    assert_eq!(r[0]["security"]["seccomp"], "unconfined", "{r}");
    store.tupper(&["stop", "-t", "0", "p"]).ok();
    store.tupper(&["start", "p"]).ok();
    let again = store
        .tupper(&[
            "exec",
            "p",
            "sh",
            "-c",
            "grep ^CapEff: /proc/self/status; test -c /dev/loop-control && echo host-devices",
        ])
        .ok();
    assert_eq!(again, format!("{own_caps}\nhost-devices\n"));
    store.tupper(&["rm", "-f", "p"]).ok();
    store.assert_no_leftovers();
}

/// `--security-opt seccomp=FILE`: docker's JSON profile in place of the
/// default filter, for the container's command, `exec`'s and a later start's.
#[test]
fn a_seccomp_profile_file_is_the_containers_filter() {
    let store = store_with_probe();
    let profile = store.scratch().join("profile.json");
    std::fs::write(
        &profile,
        r#"{
          "defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [{"index": 0, "value": 4194304, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socketcall"], "action": "SCMP_ACT_KILL"}
          ]
        }"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let calls = probe(&store, &["--security-opt", &opt]);
    // The profile's answers, not the default filter's: its argument rule,
    // and what it allows that the default refuses.
    assert_eq!(calls["personality-read-implies-exec"], EINVAL, "{calls:?}");
    assert_eq!(calls["personality-query"], 0, "{calls:?}");
    assert_eq!(
        calls["clone3"], EINVAL,
        "clone3(NULL, 0) reaches the kernel: {calls:?}"
    );
    assert_ne!(calls["vsock"], EPERM, "{calls:?}");
    let default = probe(&store, &[]);
    assert_eq!(default["clone3"], ENOSYS, "{default:?}");
    // Its errno for mkdir, in the command, exec's and a second start's.
    let out = store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "p",
            "--security-opt",
            &opt,
            "probe",
            "sh",
            "-c",
            "mkdir /made 2>&1; touch /file && echo TOUCHED",
        ])
        .code(0);
    assert!(
        out.contains("Permission denied") && out.contains("TOUCHED"),
        "{out}"
    );
    let out = store.tupper(&["start", "-a", "p"]).code(0);
    assert!(out.contains("Permission denied"), "{out}");
    let rec = store.inspect("p");
    assert_eq!(rec["security"]["seccomp"], "profile", "{rec}");
    store.tupper(&["rm", "p"]).ok();
    store
        .tupper(&[
            "run",
            "-d",
            "--net",
            "none",
            "--name",
            "q",
            "--security-opt",
            &opt,
            "probe",
            "sleep",
            "1000",
        ])
        .ok();
    let out = store.tupper(&["exec", "q", "mkdir", "/x"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    store.tupper(&["rm", "-f", "q"]).ok();
    store.assert_no_leftovers();
}
