//! Detached starts: the forked holder, its status pipe and `--cidfile`.

use super::*;

/// `start` of container `name` without `-a`: a detached process runs its
/// command (as `run -d`'s does), its output appended to the container's
/// log; `name` is printed once the command runs, or at once when it runs
/// already (docker's). `Some(code)` in the detached process, once the
/// command ended: the caller exits with it.
pub(super) fn start_detached(root: &std::ffi::OsStr, name: &str) -> Result<Option<i32>> {
    let store = Store::open(root)?;
    let rec = store.find_container(name)?;
    if store.is_running(&rec.id) {
        let _ = std::io::stdout().write_all(format!("{name}\n").as_bytes());
        return Ok(None);
    }
    if rec.tty {
        return Err(Error::msg(format!(
            "start {name}: it has a terminal (-t), which a detached container cannot have"
        ))
        .with_advice(format!("use `tupper start -a {name}`")));
    }
    drop(store);
    let output = DetachedOutput::LogOf(&rec.id, rec.log.as_ref());
    let (detached, store) = match Detached::fork(root, output, Some(name))? {
        Ok(holder) => holder,
        Err(foreground) => return foreground.map(|_| None),
    };
    let forwarder = Forwarder::new()?;
    let container = match store.start_again(&rec.id, None) {
        Ok(c) => c,
        Err(e) => {
            detached.failed(&e);
            return Err(e);
        }
    };
    detached.started(&store, container.id())?;
    let code = container.wait_restarting(&forwarder);
    crate::logfile::flush();
    code.map(Some)
}

/// `--cidfile FILE` (docker's): made when the command starts (it must not
/// exist: another container may be using it), then the container's ID is
/// written to it, without a newline, once it runs (`create`: once it is
/// made). Removed when that fails, as it is dropped unwritten.
#[derive(Default)]
pub(super) struct CidFile {
    /// The file, absolute (a detached run's holder changes to `/`).
    path: Option<std::path::PathBuf>,
}

impl CidFile {
    /// Makes `path` (none: nothing to do).
    pub(super) fn create(path: Option<&str>) -> Result<CidFile> {
        let Some(given) = path else {
            return Ok(CidFile::default());
        };
        let path =
            std::path::absolute(given).map_err(|e| Error::os(format!("--cidfile {given}"), e))?;
        rustix::fs::open(
            &path,
            rustix::fs::OFlags::WRONLY
                | rustix::fs::OFlags::CREATE
                | rustix::fs::OFlags::EXCL
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o644),
        )
        .map_err(|e| match e {
            rustix::io::Errno::EXIST => Error::msg(format!(
                "--cidfile {given}: it exists (a container may be using it)"
            ))
            .with_advice(format!("remove {given} first")),
            e => Error::os(format!("create --cidfile {given}"), e),
        })?;
        Ok(CidFile { path: Some(path) })
    }

    /// Writes `id` to it; it then stays.
    pub(super) fn write(&mut self, id: &str) -> Result<()> {
        let Some(path) = self.path.take() else {
            return Ok(());
        };
        let written = rustix::fs::open(
            &path,
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .and_then(|fd| crate::fsutil::write_all(fd.as_fd(), id.as_bytes()));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(Error::os(
                format!("write the ID to --cidfile {}", path.display()),
                e,
            ));
        }
        Ok(())
    }

    /// The caller of a detached run: another process writes the file, so
    /// it stays, unless that process failed.
    pub(super) fn keep_unless(&mut self, failed: bool) {
        if !failed {
            self.path = None;
        }
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The pid of a background process (pools, trash), or `None` when it could
/// not be forked: its work is never needed for the command at hand (the
/// pools refill at a later run; a `--rm` run then empties the trash
/// itself), so a limit on tasks (`TasksMax=`, `pids.max`) makes tupper
/// slower, not fail a command that did its job.
pub(super) fn background_is_optional(forked: Result<i32>) -> Option<i32> {
    forked.ok()
}

/// The process that holds a detached container (`run -d`) or command
/// (`exec -d`), and what it tells the `tupper` that made it.
pub(super) struct Detached {
    /// The write end of the status pipe: the ID (`started` for an exec),
    /// or the exit code and error.
    status: std::os::fd::OwnedFd,
    /// The container's log (stdout and stderr), nameless until it starts;
    /// `None` for an exec, whose output goes to `/dev/null` (docker's).
    log: Option<std::os::fd::OwnedFd>,
    /// Whether the log is a new one, to be named once the container runs.
    new_log: bool,
}

/// Where the output of a detached process goes.
#[derive(Clone, Copy)]
pub(super) enum DetachedOutput<'a> {
    /// `/dev/null` (`exec -d`).
    Null,
    /// A new log, named once the container runs (`run -d`), kept as the
    /// container's `--log-driver` and `--log-opt` say.
    NewLog(Option<&'a crate::logfile::LogConfig>),
    /// The log of container `id`, appended to; a new one if it has none
    /// (`start`).
    LogOf(&'a str, Option<&'a crate::logfile::LogConfig>),
}

/// What a detached exec's holder says once the command runs.
pub(super) const EXEC_STARTED: &str = "started";

impl Detached {
    /// Forks: in the process that goes on to run the container, `Ok` with
    /// its own store (none of the caller's fds, a session of its own, stdin
    /// `/dev/null`, stdout and stderr the log, working directory `/`); in
    /// the caller, `Err(result)`, with which its `run -d` ends: the ID
    /// printed once the command runs, or the error of the start.
    /// `shown` is what the caller prints once the command runs: the ID
    /// when `None`.
    #[allow(clippy::type_complexity)]
    pub(super) fn fork(
        root: &std::ffi::OsStr,
        output: DetachedOutput<'_>,
        shown: Option<&str>,
    ) -> Result<std::result::Result<(Detached, Store), Result<i32>>> {
        use rustix::pipe::{pipe_with, PipeFlags};
        let (read, write) = pipe_with(PipeFlags::CLOEXEC)
            .map_err(|e| Error::os("create the status pipe of a detached run", e))?;
        let Some(_pid) = crate::launch::fork_detached()? else {
            drop(read);
            // Whatever the caller has open (a pipe it reads to its end, a
            // lock) is not held for the container's life.
            crate::launch::close_fds_but(write.as_fd());
            let status = write;
            let fail = |e: Error| -> ! {
                report_failure(status.as_fd(), &e);
                std::process::exit(e.exit_code())
            };
            let store = Store::open(root).unwrap_or_else(|e| fail(e));
            let config = match output {
                DetachedOutput::Null => None,
                DetachedOutput::NewLog(config) | DetachedOutput::LogOf(_, config) => config,
            };
            let (log, new_log) = match output {
                DetachedOutput::Null => (None, false),
                // `--log-driver none`: as `exec -d`'s.
                _ if crate::logfile::LogConfig::is_none(config) => (None, false),
                DetachedOutput::NewLog(_) => {
                    (Some(store.new_log().unwrap_or_else(|e| fail(e))), true)
                }
                DetachedOutput::LogOf(id, _) => {
                    match store.append_log(id).unwrap_or_else(|e| fail(e)) {
                        Some(log) => (Some(log), false),
                        None => (Some(store.new_log().unwrap_or_else(|e| fail(e))), true),
                    }
                }
            };
            let _ = rustix::process::setsid();
            let _ = rustix::process::chdir(c"/");
            let redirect = || -> rustix::io::Result<()> {
                let null = rustix::fs::open(
                    c"/dev/null",
                    rustix::fs::OFlags::RDWR,
                    rustix::fs::Mode::empty(),
                )?;
                rustix::stdio::dup2_stdin(&null)?;
                let out = log.as_ref().map_or(null.as_fd(), |l| l.as_fd());
                rustix::stdio::dup2_stdout(out)?;
                rustix::stdio::dup2_stderr(out)
            };
            if let Err(e) = redirect() {
                fail(Error::os("redirect the standard fds of a detached run", e));
            }
            // Rotated, or with times: through pipes that this process copies.
            if let (Some(log), Some(config)) = (&log, config.filter(|c| c.is_piped())) {
                let copy = log
                    .try_clone()
                    .map_err(|e| Error::os("duplicate the log's fd", e))
                    .and_then(|copy| {
                        crate::logfile::pipe_output(store.records.as_fd(), copy, config)
                    });
                if let Err(e) = copy {
                    fail(e);
                }
            }
            return Ok(Ok((
                Detached {
                    status,
                    log,
                    new_log,
                },
                store,
            )));
        };
        drop(write);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match rustix::io::read(&read, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::os("read the status of a detached run", e)),
            }
        }
        let text = String::from_utf8_lossy(&got);
        let text = text.trim_end();
        Ok(Err(match text.split_once(' ') {
            None if crate::names::is_id(text) => {
                let shown = shown.unwrap_or(text);
                let _ = std::io::stdout().write_all(format!("{shown}\n").as_bytes());
                Ok(0)
            }
            None if text == EXEC_STARTED => Ok(0),
            Some((code, message)) => {
                let kind = match code {
                    "126" => crate::error::Kind::CannotInvoke,
                    "127" => crate::error::Kind::NotFound,
                    _ => crate::error::Kind::Runtime,
                };
                Err(Error::msg(message).with_kind(kind))
            }
            None => Err(Error::msg(
                "the detached process ended before its command started",
            )),
        }))
    }

    /// The container runs: its log gets its name, and `run -d` prints `id`
    /// (if it is still there: a `run -d` killed meanwhile leaves the
    /// container running, as docker's client does).
    pub(super) fn started(self, store: &Store, id: &str) -> Result<()> {
        if let Some(log) = self.log.as_ref().filter(|_| self.new_log) {
            store.keep_log(log.as_fd(), id)?;
        }
        // The log has its name: it may rotate. Signals are blocked by now
        // (the forwarder's thread takes them), and the command's output
        // waited in the pipe.
        crate::logfile::start_pump(id);
        let _ = crate::fsutil::write_all(self.status.as_fd(), format!("{id}\n").as_bytes());
        Ok(())
    }

    /// The exec'd command runs: `exec -d` returns, printing nothing.
    pub(super) fn exec_started(self) {
        let _ =
            crate::fsutil::write_all(self.status.as_fd(), format!("{EXEC_STARTED}\n").as_bytes());
    }

    /// The container did not start: `run -d` prints `e` and exits with its code.
    pub(super) fn failed(self, e: &Error) {
        report_failure(self.status.as_fd(), e);
    }
}

/// Writes a failed detached start to its status pipe: the exit code, then
/// the error, on one line (what [`Detached::fork`]'s caller reads).
pub(super) fn report_failure(status: std::os::fd::BorrowedFd<'_>, e: &Error) {
    let _ = crate::fsutil::write_all(status, format!("{} {e}\n", e.exit_code()).as_bytes());
}
