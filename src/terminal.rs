//! `run -t`, the parent's side: the user's terminal in raw mode while the
//! container runs, and the bytes between it and the container's terminal
//! (a pseudo-terminal of the container's `devpts`, made by the child: see
//! [`crate::child`]).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::termios::{self, OptionalActions, Termios};

use crate::error::{Error, Result};
use crate::launch::{self, Forwarder};

/// The user's terminal (tupper's stdin) in raw mode: keys go to the
/// container's terminal as they are typed, and its line discipline (echo,
/// `^C`, `^Z`) is the container's. Restored when dropped.
#[derive(Debug)]
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Puts stdin in raw mode if it is a terminal (else does nothing).
    pub fn enter() -> Result<RawMode> {
        let stdin = rustix::stdio::stdin();
        if !termios::isatty(stdin) {
            return Ok(RawMode { saved: None });
        }
        let saved = termios::tcgetattr(stdin)
            .map_err(|e| Error::os("read the settings of the terminal", e))?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin, OptionalActions::Now, &raw)
            .map_err(|e| Error::os("put the terminal in raw mode", e))?;
        Ok(RawMode { saved: Some(saved) })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, saved);
        }
    }
}

/// The size (rows, columns) of the user's terminal: tupper's stdin, else its
/// stdout; `None` when neither is a terminal.
pub fn user_terminal_size() -> Option<(u16, u16)> {
    [rustix::stdio::stdin(), rustix::stdio::stdout()]
        .into_iter()
        .find_map(|fd| termios::tcgetwinsize(fd).ok())
        .filter(|w| w.ws_row > 0 && w.ws_col > 0)
        .map(|w| (w.ws_row, w.ws_col))
}

/// Copies tupper's stdin to the container's terminal and the terminal to
/// tupper's stdout until the container's PID 1 ends, passes the forwarded
/// signals on to it and window size changes (`SIGWINCH`) to its terminal;
/// returns its exit code. Input waits in a buffer while the terminal's is
/// full, so a command that does not read never blocks its own output.
///
/// The end of the input is passed on as `script(1)` passes it: when stdin
/// is a pipe or file, its end is the terminal's end-of-file character,
/// typed once the container has read the input before it; when stdin is a terminal that hung up (the
/// user's window or ssh session went), or when nobody reads tupper's
/// stdout any more, the container's terminal is hung up too (its processes
/// read EOF, get `SIGHUP` and `EIO`), as the kernel does for a terminal
/// whose line drops.
pub fn relay(master: OwnedFd, pidfd: BorrowedFd<'_>, forwarder: &Forwarder) -> Result<i32> {
    rustix::io::ioctl_fionbio(&master, true)
        .map_err(|e| Error::os("make the container's terminal non-blocking", e))?;
    // A slave end of our own, so that the master never reads as hung up while
    // the container has closed its terminal: a process may open /dev/tty
    // again later.
    let flags = rustix::pty::OpenptFlags::RDWR
        | rustix::pty::OpenptFlags::NOCTTY
        | rustix::pty::OpenptFlags::CLOEXEC;
    let own_slave = rustix::pty::ioctl_tiocgptpeer(&master, flags)
        .map_err(|e| Error::os("open the container's terminal", e))?;
    let mut line = Some((master, own_slave));
    let stdin = rustix::stdio::stdin();
    let stdin_is_terminal = termios::isatty(stdin);
    let stdout = rustix::stdio::stdout();
    let mut pending: Vec<u8> = Vec::new();
    let mut input_open = true;
    // After the end of a piped stdin: the end-of-file still to be typed.
    let mut eof: Option<EndOfInput> = None;
    // The last byte of the input: whether its last line was ended.
    let mut last_input = b'\n';
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut fds = vec![
            PollFd::new(&pidfd, PollFlags::IN),
            PollFd::from_borrowed_fd(forwarder.signals(), PollFlags::IN),
        ];
        if let Some((master, _)) = &line {
            let mut events = PollFlags::IN;
            if !pending.is_empty() {
                events |= PollFlags::OUT;
            }
            fds.push(PollFd::new(master, events));
        }
        let watch_input = line.is_some() && input_open && pending.is_empty();
        if watch_input {
            fds.push(PollFd::from_borrowed_fd(stdin, PollFlags::IN));
        }
        // While an end-of-file waits, look again every 50 ms.
        let recheck = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        match poll(&mut fds, eof.as_ref().map(|_| &recheck)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(Error::os("poll the container's terminal", e)),
        }
        let revents: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        let (exited, signals) = (revents[0], revents[1]);
        let out = revents.get(2).copied().unwrap_or(PollFlags::empty());
        let input = match watch_input {
            true => revents[3],
            false => PollFlags::empty(),
        };
        if !signals.is_empty() {
            for info in forwarder.drain() {
                match info.ssi_signo as i32 {
                    libc::SIGWINCH => {
                        if let (Some((master, _)), Some((rows, cols))) =
                            (&line, user_terminal_size())
                        {
                            let size = termios::Winsize {
                                ws_row: rows,
                                ws_col: cols,
                                ws_xpixel: 0,
                                ws_ypixel: 0,
                            };
                            let _ = termios::tcsetwinsize(master, size);
                        }
                    }
                    signo => launch::send_signal(pidfd, signo)?,
                }
            }
        }
        let mut hang_up = false;
        if let Some((master, _)) = &line {
            if !out.is_empty() {
                hang_up |= !copy_output(master, stdout, &mut buf)?;
                if out.contains(PollFlags::OUT) {
                    match rustix::io::write(master, &pending) {
                        Ok(n) => drop(pending.drain(..n)),
                        Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                        Err(_) => pending.clear(),
                    }
                }
            }
            if !input.is_empty() {
                match rustix::io::read(stdin, &mut buf) {
                    Ok(n) if n > 0 => {
                        pending.extend_from_slice(&buf[..n]);
                        last_input = buf[n - 1];
                    }
                    Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                    // The user's terminal hung up.
                    _ if stdin_is_terminal => hang_up = true,
                    // The end of a pipe or file: end-of-file on the terminal,
                    // once the container has read what came before.
                    _ => {
                        input_open = false;
                        eof = Some(EndOfInput {
                            due: std::time::Instant::now() + EOF_WAIT,
                            typed_canonical: None,
                        });
                    }
                }
            }
        }
        if let (Some(state), Some((master, own_slave))) = (&mut eof, &line) {
            if pending.is_empty() {
                match state.next(master, own_slave, last_input) {
                    Some(bytes) => pending.extend_from_slice(&bytes),
                    None if state.done() => eof = None,
                    None => {}
                }
            }
        }
        if hang_up {
            // Closing the last master end hangs the terminal up.
            line = None;
            pending.clear();
        }
        if !exited.is_empty() {
            // The rest of its output: every process of the container is gone
            // (PID 1's end ended its PID namespace); with our own slave end
            // closed, the terminal reads what is left, then EIO.
            if let Some((master, own_slave)) = line {
                drop(own_slave);
                drain_output(&master, stdout, &mut buf)?;
            }
            return launch::wait(pidfd);
        }
    }
}

/// How long the end of a piped stdin waits for the container to read the
/// input before it (`script(1)` waits 2 s too).
const EOF_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The end of a piped stdin, on its way to the container's terminal.
///
/// It is typed once the container has read the input before it. Typed in
/// canonical mode, it may still be lost: a shell with a line editor reads
/// a line in raw mode, runs it in canonical mode, and its editor starts the
/// next line in raw mode, dropping an end-of-file that came meanwhile. So
/// when the terminal goes from canonical to raw mode after it was typed,
/// with nothing left to read, it is typed once more: in raw mode a line
/// editor takes it as a key, as from a user, and ends.
struct EndOfInput {
    due: std::time::Instant,
    /// `Some(canonical)` once typed: in which mode the terminal was.
    typed_canonical: Option<bool>,
}

impl EndOfInput {
    /// The bytes to type now, if any.
    fn next(&mut self, master: &OwnedFd, own_slave: &OwnedFd, last_input: u8) -> Option<Vec<u8>> {
        let unread = rustix::io::ioctl_fionread(own_slave).unwrap_or(0);
        let canonical = termios::tcgetattr(master)
            .map(|t| t.local_modes.contains(termios::LocalModes::ICANON))
            .unwrap_or(true);
        let type_now = match self.typed_canonical {
            None => unread == 0 || std::time::Instant::now() >= self.due,
            Some(true) => unread == 0 && !canonical,
            Some(false) => false,
        };
        if !type_now {
            return None;
        }
        self.typed_canonical = Some(canonical);
        Some(end_of_file(master, last_input))
    }

    /// Whether nothing more will be typed.
    fn done(&self) -> bool {
        self.typed_canonical == Some(false)
    }
}

/// What ends the input of the container's terminal, as `script(1)` ends
/// it, once the container has read the rest (a shell that starts after
/// the input came, or that reads a line and then runs it, would lose an
/// end-of-file typed earlier): its `VEOF` character (`^D` when it has none), twice in canonical
/// mode when the last line was not ended (the first only sends that line).
/// In raw mode the program reads the byte itself: a shell's line editor
/// takes it as the end, as from a user's keyboard.
fn end_of_file(master: &OwnedFd, last_input: u8) -> Vec<u8> {
    const CTRL_D: u8 = 4;
    let Ok(t) = termios::tcgetattr(master) else {
        return vec![CTRL_D];
    };
    let eof = match t.special_codes[termios::SpecialCodeIndex::VEOF] {
        0 => CTRL_D,
        c => c,
    };
    let canonical = t.local_modes.contains(termios::LocalModes::ICANON);
    match canonical && last_input != b'\n' {
        true => vec![eof, eof],
        false => vec![eof],
    }
}

/// Copies what the terminal has now to `out`; `Ok(false)` when it cannot go
/// on: the terminal has no other end left (and nothing more to read), or
/// nobody reads `out` any more.
fn copy_output(master: &OwnedFd, out: BorrowedFd<'_>, buf: &mut [u8]) -> Result<bool> {
    loop {
        match rustix::io::read(master, &mut *buf) {
            Ok(0) | Err(Errno::IO) => return Ok(false),
            Ok(n) => {
                if !write_all(out, &buf[..n])? {
                    return Ok(false);
                }
            }
            Err(Errno::AGAIN) => return Ok(true),
            Err(Errno::INTR) => {}
            Err(e) => return Err(Error::os("read the container's terminal", e)),
        }
    }
}

/// Copies the terminal's output until it reports that its other end is
/// closed (at most 2 s without output, should a process outside the
/// container still hold it).
fn drain_output(master: &OwnedFd, out: BorrowedFd<'_>, buf: &mut [u8]) -> Result<()> {
    while copy_output(master, out, buf)? {
        let mut fds = [PollFd::new(master, PollFlags::IN)];
        let timeout = rustix::event::Timespec {
            tv_sec: 2,
            tv_nsec: 0,
        };
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => return Ok(()),
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(Error::os("poll the container's terminal", e)),
        }
    }
    Ok(())
}

/// Writes all of `data`; `Ok(false)` when nobody reads `fd` any more.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<bool> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            // stdout non-blocking (shared with another process): wait.
            Err(Errno::AGAIN) => {
                let mut fds = [PollFd::from_borrowed_fd(fd.as_fd(), PollFlags::OUT)];
                let _ = poll(&mut fds, None);
            }
            Err(Errno::PIPE) => return Ok(false),
            Err(e) => {
                return Err(Error::msg(format!(
                    "write the container's output: {}",
                    std::io::Error::from(e)
                )))
            }
        }
    }
    Ok(true)
}
