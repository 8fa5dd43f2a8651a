//! `run -t`: the container's own terminal, seen from inside, and the user's
//! terminal around it (a pseudo-terminal this test makes and reads, as a
//! terminal emulator would).

mod common;

use common::*;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::pty::{self, OpenptFlags};
use rustix::termios::{self, Winsize};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A terminal for tupper: the master end (ours) and the slave end (its
/// stdin, stdout and stderr).
struct UserTerminal {
    master: OwnedFd,
    slave: OwnedFd,
}

impl UserTerminal {
    fn new(rows: u16, cols: u16) -> UserTerminal {
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let master = pty::openpt(flags).unwrap();
        pty::grantpt(&master).unwrap();
        pty::unlockpt(&master).unwrap();
        let slave = pty::ioctl_tiocgptpeer(&master, flags).unwrap();
        rustix::io::ioctl_fionbio(&master, true).unwrap();
        let t = UserTerminal { master, slave };
        t.resize(rows, cols);
        t
    }

    fn resize(&self, rows: u16, cols: u16) {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        termios::tcsetwinsize(&self.master, size).unwrap();
    }

    /// `tupper --root ROOT ARGS` on this terminal, as a shell would start it:
    /// in a session whose controlling terminal it is (util-linux's `setsid
    /// -c`, which execs tupper: its pid and exit code are tupper's), so that
    /// the kernel sends it `SIGWINCH`.
    fn spawn(&self, store: &TestStore, args: &[&str]) -> Child {
        let mut c = Command::new("setsid");
        c.arg("-c").arg(TUPPER).arg("--root").arg(store.root());
        c.env_remove("TUPPER_ROOT");
        c.args(args)
            .stdin(Stdio::from(self.slave.try_clone().unwrap()))
            .stdout(Stdio::from(self.slave.try_clone().unwrap()))
            .stderr(Stdio::from(self.slave.try_clone().unwrap()));
        c.spawn().unwrap()
    }

    fn type_keys(&self, keys: &[u8]) {
        assert_eq!(rustix::io::write(&self.master, keys).unwrap(), keys.len());
    }

    /// What the terminal shows until `want` appears (at most 20 s).
    #[track_caller]
    fn read_until(&self, want: &str) -> String {
        let mut seen = Vec::new();
        let end = Instant::now() + Duration::from_secs(20);
        while !String::from_utf8_lossy(&seen).contains(want) {
            assert!(
                Instant::now() < end,
                "no {want:?} on the terminal; it shows {:?}",
                String::from_utf8_lossy(&seen)
            );
            let mut fds = [PollFd::new(&self.master, PollFlags::IN)];
            let timeout = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            };
            let _ = poll(&mut fds, Some(&timeout));
            let mut buf = [0u8; 4096];
            if let Ok(n) = rustix::io::read(&self.master, &mut buf) {
                seen.extend_from_slice(&buf[..n]);
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    fn settings(&self) -> termios::Termios {
        termios::tcgetattr(&self.slave).unwrap()
    }
}

/// Waits (at most 20 s) for `child` to end; its exit code.
fn exit_code(mut child: Child) -> i32 {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap();
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("tupper did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_container_gets_a_terminal_of_its_own() {
    let store = store_with_busybox();
    let term = UserTerminal::new(33, 111);
    let before = term.settings();
    let child = term.spawn(&store, &["run", "--rm", "--net", "none", "-it", "bb", "sh"]);
    term.read_until("# ");
    // A pseudo-terminal of the container's devpts, the size of the user's.
    term.type_keys(b"tty; stty size; echo $((6*7))\r");
    let shown = term.read_until("42");
    assert!(shown.contains("/dev/pts/0"), "{shown:?}");
    assert!(shown.contains("33 111"), "{shown:?}");
    // A window change reaches it (SIGWINCH -> TIOCSWINSZ).
    term.resize(40, 120);
    std::thread::sleep(Duration::from_millis(300));
    // ^C is the container's: it interrupts sleep, not tupper.
    term.type_keys(b"sleep 30\r");
    std::thread::sleep(Duration::from_millis(300));
    term.type_keys(b"\x03");
    term.read_until("^C");
    term.type_keys(b"stty size; exit 5\r");
    let shown = term.read_until("40 120");
    assert_eq!(exit_code(child), 5, "{shown:?}");
    // The user's terminal is as it was (tupper had put it in raw mode).
    let after = term.settings();
    assert_eq!(
        (after.local_modes, after.input_modes, after.output_modes),
        (before.local_modes, before.input_modes, before.output_modes)
    );
}

#[test]
fn a_terminal_without_a_user_terminal() {
    let store = store_with_busybox();
    // stdin a pipe, stdout a pipe: the container still has its terminal.
    let out = store.tupper_stdin(
        &["run", "--rm", "--net", "none", "-t", "bb", "sh"],
        b"test -t 0 && test -t 1 && echo both-ttys; tty; exit 3\n",
    );
    let shown = out.code(3);
    assert!(
        shown.contains("both-ttys") && shown.contains("/dev/pts/0"),
        "{shown}"
    );
    // Without -t nothing changes: no terminal.
    let out = store.tupper_stdin(
        &[
            "run",
            "--rm",
            "--net",
            "none",
            "bb",
            "sh",
            "-c",
            "tty; true",
        ],
        b"",
    );
    assert!(out.ok().contains("not a tty"));
}

#[test]
fn a_command_that_cannot_start_restores_the_terminal() {
    let store = store_with_busybox();
    let before_store = store.state();
    let term = UserTerminal::new(24, 80);
    let before = term.settings();
    let child = term.spawn(
        &store,
        &["run", "--net", "none", "-t", "bb", "/nonexistent"],
    );
    let shown = term.read_until("not found");
    assert_eq!(exit_code(child), 127, "{shown:?}");
    assert_eq!(term.settings().local_modes, before.local_modes);
    before_store.assert_same(&store.state(), "run -t of a missing command");
}

#[test]
fn the_end_of_piped_input_is_the_terminals_end_of_file() {
    let store = store_with_busybox();
    // cat in canonical mode, an interactive sh in its line editor's raw mode:
    // both end at the end of tupper's stdin.
    let out = store.tupper_stdin(
        &["run", "--rm", "--net", "none", "-t", "bb", "cat"],
        b"hello\nno newline",
    );
    let shown = out.ok();
    assert!(
        shown.contains("hello") && shown.contains("no newline"),
        "{shown}"
    );
    let out = store.tupper_stdin(
        &["run", "--rm", "--net", "none", "-t", "bb", "sh"],
        b"echo $((6*7))\n",
    );
    assert!(out.ok().contains("42"));
    store.assert_no_leftovers();
}

#[test]
fn a_user_terminal_that_hangs_up_hangs_up_the_containers() {
    let store = store_with_busybox();
    let term = UserTerminal::new(24, 80);
    let child = term.spawn(
        &store,
        &["run", "--name", "hup", "--net", "none", "-t", "bb", "sh"],
    );
    term.read_until("# ");
    // The window closes: its master end goes.
    drop(term);
    exit_code(child);
    let ps = store.ps_json(true);
    assert_eq!(ps[0]["status"], "exited", "{ps:?}");
    store.tupper(&["rm", "hup"]).ok();
}

#[test]
fn output_nobody_reads_ends_the_run() {
    let store = store_with_busybox();
    let mut c = store.cmd();
    c.args(["run", "--rm", "--net", "none", "-t", "bb", "yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 4];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    assert_eq!(&first, b"y\r\ny");
    // As `| head -2` does once it has its lines.
    drop(out);
    exit_code(child);
    store.assert_no_leftovers();
}

#[test]
fn a_terminal_closed_and_opened_again_keeps_working() {
    let store = store_with_busybox();
    let out = store.tupper(&[
        "run",
        "--rm",
        "--net",
        "none",
        "-t",
        "bb",
        "sh",
        "-c",
        "exec </dev/null >/dev/null 2>&1; sleep 1; seq 1 100000 >/dev/tty; exit 3",
    ]);
    let shown = out.code(3);
    assert!(
        shown.trim_end().ends_with("100000"),
        "{}",
        &shown[shown.len().saturating_sub(100)..]
    );
}
