//! tupper never starts another program: exactly two successful execve (its own
//! and the container's command); the binary is static; the command starts with
//! exactly fds 0, 1 and 2 whatever leaked into tupper (issue 2, "Must hold" and
//! "run").

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

#[test]
fn strace_parser() {
    let log = "100 execve(\"/x/tupper\", [\"tupper\"], 0x7ff /* 3 vars */) = 0\n\
               101 execve(\"/usr/bin/true\", [\"true\"], 0x1 /* 3 vars */ <unfinished ...>\n\
               100 --- SIGCHLD ---\n\
               101 <... execve resumed>) = -1 ENOENT (No such file or directory)\n\
               101 execve(\"/bin/true\", [\"true\"], 0x1 /* 3 vars */ <unfinished ...>\n\
               101 <... execve resumed>) = 0\n\
               101 +++ exited with 0 +++\n";
    let got = successful_execves(log);
    assert_eq!(
        got,
        vec![
            ("100".into(), "/x/tupper".into()),
            ("101".into(), "/bin/true".into())
        ]
    );
}

/// `strace -f` of `tupper --root ROOT run --rm --net none OPTIONS... bb
/// COMMAND`, which must succeed: its successful `execve`s (pid, path) and
/// the log.
fn traced_run(
    store: &TestStore,
    options: &[&str],
    command: &str,
) -> (Vec<(String, String)>, String) {
    let log = store.scratch().join("strace.log");
    let mut c = Command::new("strace");
    c.args(["-f", "-e", "trace=execve,execveat", "-o"])
        .arg(&log);
    c.args([
        TUPPER,
        "--root",
        store.root_str(),
        "run",
        "--rm",
        "--net",
        "none",
    ]);
    c.args(options).args(["bb", command]);
    let out = run_cmd(c, None, DEFAULT_TIMEOUT);
    assert_eq!(out.code, 0, "{out:?}");
    let text = fs::read_to_string(&log).unwrap();
    (successful_execves(&text), text)
}

#[test]
fn only_two_successful_execves() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let (execs, text) = traced_run(&store, &[], "/bin/true");
    let paths: Vec<&str> = execs.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(paths, vec![TUPPER, "/bin/true"], "strace log:\n{text}");
    assert_ne!(execs[0].0, execs[1].0, "the command must run in the child");
    store.assert_no_leftovers();

    // The same with a PATH search: failed attempts are fine, one success.
    let (execs, text) = traced_run(&store, &[], "true");
    assert_eq!(execs.len(), 2, "strace log:\n{text}");

    // And with a user namespace, whose maps the parent writes itself.
    let (execs, text) = traced_run(&store, &["--userns", "auto"], "/bin/true");
    let paths: Vec<&str> = execs.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(paths, [TUPPER, "/bin/true"], "strace log:\n{text}");
    store.assert_no_leftovers();
}

/// Whether the ELF file has a PT_INTERP program header (is dynamically linked).
fn has_interp(path: &Path) -> bool {
    let b = fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(b[4], 2, "not ELF64");
    assert_eq!(b[5], 1, "not little-endian");
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let phoff = u64_at(0x20);
    let phentsize = u16_at(0x36);
    let phnum = u16_at(0x38);
    assert!(phnum > 0 && phentsize >= 56);
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

#[test]
fn elf_parser_sees_interp_of_a_dynamic_binary() {
    // The oracle must be able to say "dynamic": /bin/sh on Debian is dynamic.
    assert!(has_interp(Path::new("/bin/sh")) || has_interp(Path::new("/usr/bin/strace")));
    assert!(!has_interp(Path::new("/bin/busybox")));
}

#[test]
fn binary_is_static() {
    // The debug binary is built with the same +crt-static flag as the release one.
    assert!(!has_interp(Path::new(TUPPER)), "{TUPPER} has PT_INTERP");
    // The release binary, when it has been built (the suite does not build it:
    // a release build with LTO takes minutes).
    let release = Path::new(TUPPER)
        .parent()
        .and_then(|d| d.parent())
        .map(|t| t.join("release/tupper"));
    if let Some(r) = release.filter(|r| r.exists()) {
        assert!(!has_interp(&r), "{} has PT_INTERP", r.display());
    } else {
        eprintln!("note: no release binary next to {TUPPER}; checked the debug one");
    }
}

/// `sh -c 'exec 7<... 8>... 9<...; exec TUPPER ARGS...'`: tupper starts with
/// fds 7, 8 and 9 open and not close-on-exec.
fn with_leaked_fds(args: &[&str]) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg("exec 7</dev/null 8>/dev/null 9</etc/hostname; exec \"$0\" \"$@\"")
        .arg(TUPPER)
        .args(args);
    c
}

#[test]
fn leaked_fds_do_not_reach_the_container() {
    let store = TestStore::new();
    store.import_busybox("bb");
    // The leak is real: the same trick shows fd 7, 8, 9 in a host command.
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(
        "exec 7</dev/null 8>/dev/null 9</etc/hostname; exec /bin/busybox sh -c 'ls /proc/$$/fd; :'",
    );
    let host = run_cmd(c, None, DEFAULT_TIMEOUT).ok();
    for fd in ["7", "8", "9"] {
        assert!(
            host.split_whitespace().any(|f| f == fd),
            "fd {fd} did not leak on the host: {host}"
        );
    }
    // In the container: PID 1's fds are exactly 0, 1, 2.
    let c = with_leaked_fds(&[
        "--root",
        store.root_str(),
        "run",
        "--rm",
        "--net",
        "none",
        "bb",
        "sh",
        "-c",
        "ls /proc/$$/fd; :",
    ]);
    let out = run_cmd(c, None, DEFAULT_TIMEOUT).ok();
    let fds: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fds, vec!["0", "1", "2"], "fds of the container's PID 1");
    // And as PID 1 itself (ls opens one directory fd of its own: 3).
    let c = with_leaked_fds(&[
        "--root",
        store.root_str(),
        "run",
        "--rm",
        "--net",
        "none",
        "bb",
        "ls",
        "/proc/self/fd",
    ]);
    let out = run_cmd(c, None, DEFAULT_TIMEOUT).ok();
    let fds: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fds, vec!["0", "1", "2", "3"], "{out}");
}

#[test]
fn tupper_leaks_no_fd_into_the_container_without_a_leak_either() {
    let store = TestStore::new();
    store.import_busybox("bb");
    // Stdin from a file, stdout a pipe: still exactly 0, 1, 2.
    let out = store
        .tupper_stdin(
            &[
                "run",
                "--rm",
                "--net",
                "none",
                "bb",
                "sh",
                "-c",
                "ls /proc/$$/fd; :",
            ],
            b"",
        )
        .ok();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["0", "1", "2"]
    );
}
