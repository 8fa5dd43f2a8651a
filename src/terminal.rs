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
pub fn relay(master: OwnedFd, pidfd: BorrowedFd<'_>, forwarder: &Forwarder) -> Result<i32> {
    rustix::io::ioctl_fionbio(&master, true)
        .map_err(|e| Error::os("make the container's terminal non-blocking", e))?;
    let stdin = rustix::stdio::stdin();
    let stdout = rustix::stdio::stdout();
    let mut pending: Vec<u8> = Vec::new();
    let mut input_open = true;
    // Until no process holds the terminal (a command may close it and go on).
    let mut output_open = true;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut fds = vec![
            PollFd::new(&pidfd, PollFlags::IN),
            PollFd::from_borrowed_fd(forwarder.signals(), PollFlags::IN),
        ];
        let watch_master = output_open || !pending.is_empty();
        if watch_master {
            let mut events = PollFlags::IN;
            if !pending.is_empty() {
                events |= PollFlags::OUT;
            }
            fds.push(PollFd::new(&master, events));
        }
        let watch_input = input_open && pending.is_empty();
        if watch_input {
            fds.push(PollFd::from_borrowed_fd(stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(Error::os("poll the container's terminal", e)),
        }
        let revents: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        let (exited, signals) = (revents[0], revents[1]);
        let out = match watch_master {
            true => revents[2],
            false => PollFlags::empty(),
        };
        let input = match watch_input {
            true => revents[revents.len() - 1],
            false => PollFlags::empty(),
        };
        if !signals.is_empty() {
            for info in forwarder.drain() {
                match info.ssi_signo as i32 {
                    libc::SIGWINCH => {
                        if let Some((rows, cols)) = user_terminal_size() {
                            let size = termios::Winsize {
                                ws_row: rows,
                                ws_col: cols,
                                ws_xpixel: 0,
                                ws_ypixel: 0,
                            };
                            let _ = termios::tcsetwinsize(&master, size);
                        }
                    }
                    signo => launch::send_signal(pidfd, signo)?,
                }
            }
        }
        if !out.is_empty() {
            output_open = copy_output(&master, stdout, &mut buf)?;
            if !output_open {
                pending.clear();
            } else if out.contains(PollFlags::OUT) {
                match rustix::io::write(&master, &pending) {
                    Ok(n) => drop(pending.drain(..n)),
                    Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                    // Nobody holds the terminal any more: the input goes.
                    Err(_) => pending.clear(),
                }
            }
        }
        if !input.is_empty() {
            match rustix::io::read(stdin, &mut buf) {
                Ok(0) => input_open = false,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                Err(_) => input_open = false,
            }
        }
        if !exited.is_empty() {
            // The rest of its output: every process of the container is gone
            // (PID 1's end ended its PID namespace), so the terminal reads
            // what is left, then EIO.
            drain_output(&master, stdout, &mut buf)?;
            return launch::wait(pidfd);
        }
    }
}

/// Copies what the terminal has now to `out`; `Ok(false)` once nobody holds
/// its other end (and nothing is left).
fn copy_output(master: &OwnedFd, out: BorrowedFd<'_>, buf: &mut [u8]) -> Result<bool> {
    loop {
        match rustix::io::read(master, &mut *buf) {
            Ok(0) | Err(Errno::IO) => return Ok(false),
            Ok(n) => write_all(out, &buf[..n])?,
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

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            // stdout non-blocking (shared with another process): wait.
            Err(Errno::AGAIN) => {
                let mut fds = [PollFd::from_borrowed_fd(fd.as_fd(), PollFlags::OUT)];
                let _ = poll(&mut fds, None);
            }
            // The reader of tupper's output went away: the container goes on.
            Err(Errno::PIPE) => return Ok(()),
            Err(e) => return Err(Error::os("write the container's output", e)),
        }
    }
    Ok(())
}
