//! A detached container's log: its options (`--log-driver`, `--log-opt`),
//! its rotation, and reading it back across rotated files (`tupper logs`).
//!
//! Without rotation (the default) the container writes to its log file
//! itself: its stdout and stderr are the file, opened `O_APPEND`, and
//! nothing of tupper's stands in between. With `--log-opt max-size`, they
//! are a pipe instead, which a thread of the container's holder (the
//! `tupper` that waits for it) copies into the file ([`Pump`]), starting a
//! new file when the next bytes would not fit: `ID.log` is the newest,
//! `ID.log.1` the one before, up to `ID.log.N-1` for `max-file=N` (docker's
//! `json-file` layout); with `max-file=1` the one file is emptied instead.
//!
//! With `--log-driver k8s-file` (podman's), stdout and stderr are two
//! pipes, and the pump writes each line as a record of the CRI log format,
//! with its time and its stream: `2026-12-01T15:04:05.123456789Z stdout F
//! text` (`P` instead of `F` for a part of a line: what was read without
//! its newline, or a piece of a line too long for one record). `tupper
//! logs` takes the text back out ([`Records`]), the stderr lines to its
//! stderr, and can show the times (`-t`) and choose by them (`--since`,
//! `--until`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// docker's `local` driver's defaults: 20 MiB per file, five files.
const LOCAL_MAX_SIZE: u64 = 20 << 20;
const LOCAL_MAX_FILE: u32 = 5;

/// podman's driver whose log keeps each line's time and stream.
const K8S_FILE: &str = "k8s-file";

/// The longest record of a `k8s-file` log (a longer line is cut in parts),
/// docker's 16 KiB of text plus the time, stream and tag before it.
const MAX_RECORD: u64 = 16 * 1024 + 64;

/// How a container's log is kept, when not as by default (one file that
/// grows): `--log-driver` and `--log-opt`, in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// `json-file`, `k8s-file`, `local` or `none` (no log at all).
    pub driver: String,
    /// `max-size`: the most bytes in one file; rotation needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// `max-file`: how many files are kept, the current one included.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub max_file: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl LogConfig {
    /// Parses `--log-driver` (`driver`, none: `json-file`) and its
    /// `--log-opt KEY=VALUE`s (docker's `max-size` and `max-file`); `None`
    /// for the default, one file that grows.
    pub fn parse(driver: Option<&str>, opts: &[String]) -> Result<Option<LogConfig>> {
        let driver = driver.unwrap_or("json-file");
        let (mut max_size, mut max_file) = match driver {
            "json-file" | K8S_FILE => (None, None),
            "local" => (Some(LOCAL_MAX_SIZE), Some(LOCAL_MAX_FILE)),
            "none" => (None, None),
            other => {
                return Err(Error::msg(format!(
                    "--log-driver {other}: tupper has json-file (the default), k8s-file, local and none"
                )))
            }
        };
        for opt in opts {
            let bad = |why: &str| Error::msg(format!("--log-opt {opt:?}: {why}"));
            if driver == "none" {
                return Err(bad("the none log driver takes no options"));
            }
            match opt.split_once('=') {
                Some(("max-size", v)) => {
                    let bytes = crate::cgroup::parse_bytes("--log-opt max-size", v)?;
                    if bytes == 0 {
                        return Err(bad("max-size must be more than 0"));
                    }
                    max_size = Some(bytes);
                }
                Some(("max-file", v)) => match v.parse::<u32>() {
                    Ok(n) if n > 0 && v.bytes().all(|b| b.is_ascii_digit()) => max_file = Some(n),
                    _ => return Err(bad("max-file is a count of files, 1 or more")),
                },
                Some(("compress", _)) => {
                    return Err(bad("tupper does not compress rotated logs"));
                }
                _ => return Err(bad("the log options are max-size=BYTES and max-file=N")),
            }
        }
        if max_size.is_none() && max_file.is_some_and(|n| n > 1) {
            return Err(Error::msg(
                "--log-opt max-file needs max-size: without it nothing is rotated",
            ));
        }
        if driver == K8S_FILE && max_size.is_some_and(|m| m < MAX_RECORD) {
            return Err(Error::msg(format!(
                "--log-opt max-size: at least {MAX_RECORD} bytes with k8s-file (one record, a time and stream before a line of up to 16 KiB)"
            )));
        }
        if driver == "json-file" && max_size.is_none() {
            return Ok(None);
        }
        Ok(Some(LogConfig {
            driver: driver.to_string(),
            max_size,
            max_file: max_file.unwrap_or(1),
        }))
    }

    /// Whether its output goes through pipes that the container's holder
    /// copies into the log: when it rotates, and with `k8s-file`.
    pub fn is_piped(&self) -> bool {
        self.max_size.is_some() || self.driver == K8S_FILE
    }

    /// Whether the log keeps the time and stream of each line
    /// (`k8s-file`).
    pub fn has_times(config: Option<&LogConfig>) -> bool {
        config.is_some_and(|c| c.driver == K8S_FILE)
    }

    /// Whether the container keeps no log (`--log-driver none`).
    pub fn is_none(config: Option<&LogConfig>) -> bool {
        config.is_some_and(|c| c.driver == "none")
    }
}

/// The name of the `n`th rotated file of container `id`'s log (0: the
/// current one).
pub fn file_name(id: &str, n: u32) -> String {
    match n {
        0 => format!("{id}.log"),
        n => format!("{id}.log.{n}"),
    }
}

/// Whether `name` in `state/containers` is a part of a container's log:
/// the ID when it is.
pub fn owner_of(name: &str) -> Option<&str> {
    let (id, rest) = name.split_once(".log")?;
    let n = rest.strip_prefix('.');
    match (rest.is_empty(), n) {
        (true, _) => Some(id),
        (false, Some(n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Some(id),
        _ => None,
    }
}

/// Removes every file of container `id`'s log (`rm`): the current one and
/// the rotated ones, numbered from 1 (a rotation cut short by a crash may
/// have left one gap; `ps -a`'s sweep takes what is past more).
pub fn remove_all(dir: BorrowedFd<'_>, id: &str) {
    let _ = rfs::unlinkat(dir, file_name(id, 0).as_str(), AtFlags::empty());
    let mut missing = 0;
    for n in 1.. {
        match rfs::unlinkat(dir, file_name(id, n).as_str(), AtFlags::empty()) {
            Ok(()) => missing = 0,
            Err(_) if missing < 2 => missing += 1,
            Err(_) => break,
        }
    }
}

/// The log files of a container, writing with rotation ([`Pump`]).
struct Rotating {
    /// `state/containers`.
    dir: OwnedFd,
    /// The container's ID.
    id: String,
    /// The current file.
    file: OwnedFd,
    /// Its size.
    size: u64,
    /// `max-size`.
    max_size: u64,
    /// `max-file`.
    max_file: u32,
}

impl Rotating {
    /// Writes `data`, starting a new file first when it would not fit; a
    /// line is cut only when it is longer than `max-size`.
    fn write(&mut self, mut data: &[u8]) -> rustix::io::Result<()> {
        loop {
            let room = self.max_size.saturating_sub(self.size) as usize;
            if data.len() <= room {
                self.append(data)?;
                return Ok(());
            }
            let cut = match data[..room].iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                // A line longer than a whole file: as much as fits.
                None if self.size == 0 => room,
                None => 0,
            };
            self.append(&data[..cut])?;
            data = &data[cut..];
            self.rotate();
        }
    }

    fn append(&mut self, data: &[u8]) -> rustix::io::Result<()> {
        crate::fsutil::write_all(self.file.as_fd(), data)?;
        self.size += data.len() as u64;
        Ok(())
    }

    /// Starts a new file: `ID.log.K` becomes `ID.log.K+1` (the oldest is
    /// overwritten), `ID.log` becomes `ID.log.1`, and a new, empty `ID.log`
    /// takes its place in one exchange (a reader never finds none). With
    /// `max-file=1`, or when the file has no name (not yet linked, or the
    /// container was removed), the file is emptied instead.
    fn rotate(&mut self) {
        self.size = 0;
        let dir = self.dir.as_fd();
        let current = file_name(&self.id, 0);
        // A removed container's log gets no new file (nor a temporary one).
        let next = (self.max_file > 1
            && crate::fsutil::exists(dir, format!("{}.json", self.id).as_str()))
        .then(|| self.new_file(dir))
        .flatten();
        let Some((new, temporary)) = next else {
            self.empty();
            return;
        };
        // The new file first: when `ID.log` has no name (yet), nothing has
        // moved.
        if rfs::renameat_with(
            dir,
            temporary.as_str(),
            dir,
            current.as_str(),
            rfs::RenameFlags::EXCHANGE,
        )
        .is_err()
        {
            let _ = rfs::unlinkat(dir, temporary.as_str(), AtFlags::empty());
            self.empty();
            return;
        }
        self.file = new;
        // `temporary` is the old file now: the older ones move up, and it
        // becomes `ID.log.1`.
        for k in (1..self.max_file - 1).rev() {
            let _ = rfs::renameat(
                dir,
                file_name(&self.id, k).as_str(),
                dir,
                file_name(&self.id, k + 1).as_str(),
            );
        }
        let _ = rfs::renameat(
            dir,
            temporary.as_str(),
            dir,
            file_name(&self.id, 1).as_str(),
        );
    }

    /// Empties the current file; the next bytes go at its start (a new
    /// log is not opened `O_APPEND`).
    fn empty(&self) {
        let _ = rfs::ftruncate(&self.file, 0);
        let _ = rfs::seek(&self.file, rfs::SeekFrom::Start(0));
    }

    /// A new, empty file under a temporary name (`.ID.log.tmp`, which
    /// `Store`'s sweep removes should a crash leave it).
    fn new_file(&self, dir: BorrowedFd<'_>) -> Option<(OwnedFd, String)> {
        let temporary = format!(".{}.log.tmp", self.id);
        let _ = rfs::unlinkat(dir, temporary.as_str(), AtFlags::empty());
        let fd = rfs::openat(
            dir,
            temporary.as_str(),
            OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .ok()?;
        Some((fd, temporary))
    }
}

/// A pipe that stands for a container's stdout or stderr (or both).
struct Source {
    /// The read end (non-blocking).
    pipe: OwnedFd,
    /// `stdout` or `stderr`, as a `k8s-file` record names it.
    stream: &'static str,
}

/// The pipes that stand for a container's stdout and stderr when its log
/// rotates or keeps times, and the file they are copied to.
struct Pump {
    /// The pipes with a writer left: one for both streams, or one each
    /// (`k8s-file`).
    sources: Vec<Source>,
    /// Whether each line is written as a record with its time (`k8s-file`).
    records: bool,
    /// The log.
    log: Rotating,
}

impl Pump {
    /// Copies what the pipes hold now; false once no writer is left.
    fn drain(&mut self) -> bool {
        let mut buf = [0u8; 64 * 1024];
        let mut i = 0;
        while i < self.sources.len() {
            let ended = loop {
                match rustix::io::read(&self.sources[i].pipe, &mut buf) {
                    Ok(0) => break true,
                    // A full disk loses output, as a full pipe would stall it.
                    Ok(n) if self.records => {
                        let text = records_of(self.sources[i].stream, &buf[..n], now_text());
                        let _ = self.log.write(&text);
                    }
                    Ok(n) => {
                        let _ = self.log.write(&buf[..n]);
                    }
                    Err(Errno::INTR) => {}
                    Err(_) => break false,
                }
            };
            if ended {
                self.sources.remove(i);
            } else {
                i += 1;
            }
        }
        !self.sources.is_empty()
    }
}

/// Now, as a `k8s-file` record's time.
fn now_text() -> String {
    let (secs, nanos) = crate::timefmt::now_nanos();
    crate::timefmt::rfc3339_nano(secs, nanos)
}

/// `data`, read at `time` from `stream`, as `k8s-file` records: a record
/// for each line (`F`), its newline left out, and one for what follows the
/// last newline (`P`: the line goes on in the next record); a line longer
/// than 16 KiB is cut in parts, `P` but the last.
fn records_of(stream: &str, data: &[u8], time: String) -> Vec<u8> {
    const TEXT: usize = 16 * 1024;
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut record = |tag: u8, text: &[u8]| {
        out.extend_from_slice(time.as_bytes());
        out.push(b' ');
        out.extend_from_slice(stream.as_bytes());
        out.extend_from_slice(&[b' ', tag, b' ']);
        out.extend_from_slice(text);
        out.push(b'\n');
    };
    for line in data.split_inclusive(|b| *b == b'\n') {
        let (text, whole) = match line.strip_suffix(b"\n") {
            Some(text) => (text, true),
            None => (line, false),
        };
        if text.is_empty() {
            record(b'F', text);
            continue;
        }
        let mut parts = text.chunks(TEXT).peekable();
        while let Some(part) = parts.next() {
            let last = parts.peek().is_none();
            record(if last && whole { b'F' } else { b'P' }, part);
        }
    }
    out
}

/// Reads `k8s-file` records back (`tupper logs`): the text of each, to
/// stdout or stderr as its stream was, chosen by time and shown with it
/// when asked.
#[derive(Debug, Default)]
pub struct Records {
    /// Show each line's time before it (`-t`).
    pub timestamps: bool,
    /// Leave out the records before this time (`--since`), as
    /// [`crate::timefmt::rfc3339_nano`] writes it.
    pub since: Option<String>,
    /// Leave out the records after this time (`--until`).
    pub until: Option<String>,
    /// The start of a record not read to its end yet.
    carry: Vec<u8>,
    /// Whether the next text of stdout, stderr goes on a line begun
    /// already (after a `P` record): no time before it.
    within_line: [bool; 2],
}

impl Records {
    /// A reader that shows times when `timestamps`, and only the records
    /// from `since` to `until` (texts as [`crate::timefmt::rfc3339_nano`]
    /// writes them), both included.
    pub fn new(timestamps: bool, since: Option<String>, until: Option<String>) -> Records {
        Records {
            timestamps,
            since,
            until,
            ..Default::default()
        }
    }

    /// Takes the next bytes of the log: the text of the records it ends
    /// is added to `out` (stdout's) and `err` (stderr's).
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>, err: &mut Vec<u8>) {
        if !self.carry.is_empty() {
            let Some(end) = data.iter().position(|b| *b == b'\n') else {
                self.carry.extend_from_slice(data);
                return;
            };
            let mut line = std::mem::take(&mut self.carry);
            line.extend_from_slice(&data[..end]);
            self.record(&line, out, err);
            data = &data[end + 1..];
        }
        let mut lines = data.split(|b| *b == b'\n');
        let rest = lines.next_back().unwrap_or_default();
        for line in lines {
            self.record(line, out, err);
        }
        self.carry.extend_from_slice(rest);
    }

    /// One record (without its newline); a line that is none is shown as
    /// it is, on stdout.
    fn record(&mut self, line: &[u8], out: &mut Vec<u8>, err: &mut Vec<u8>) {
        let mut fields = line.splitn(4, |b| *b == b' ');
        let (Some(time), Some(stream), Some(tag), text) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            out.extend_from_slice(line);
            out.push(b'\n');
            return;
        };
        let (which, to) = match stream {
            b"stdout" => (0, &mut *out),
            b"stderr" => (1, &mut *err),
            _ => {
                out.extend_from_slice(line);
                out.push(b'\n');
                return;
            }
        };
        let whole = tag == b"F";
        let time_text = std::str::from_utf8(time).unwrap_or_default();
        let shown = self.since.as_deref().map_or(true, |s| time_text >= s)
            && self.until.as_deref().map_or(true, |u| time_text <= u);
        let within = std::mem::replace(&mut self.within_line[which], !whole);
        if !shown {
            return;
        }
        if self.timestamps && !within {
            to.extend_from_slice(time);
            to.push(b' ');
        }
        to.extend_from_slice(text.unwrap_or_default());
        if whole {
            to.push(b'\n');
        }
    }
}

/// This process's pump, when it holds a container whose log rotates or
/// keeps times: a process has one stdout.
static PUMP: OnceLock<Mutex<Pump>> = OnceLock::new();

/// Makes stdout and stderr a pipe (two with `k8s-file`) whose bytes go
/// to `log` (a container's, in `dir`, `state/containers`), rotated as
/// `config` says; the copying starts with [`start_pump`]. Called once, by
/// the holder of a detached container, before any thread exists.
pub fn pipe_output(dir: BorrowedFd<'_>, log: OwnedFd, config: &LogConfig) -> Result<()> {
    let max_size = config.max_size.unwrap_or(u64::MAX);
    let records = LogConfig::has_times(Some(config));
    let pipe = || {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let flags = rfs::fcntl_getfl(&read)?;
        rfs::fcntl_setfl(&read, flags | OFlags::NONBLOCK)?;
        Ok::<_, Errno>((read, write))
    };
    let mut sources = Vec::new();
    let set_up = |sources: &mut Vec<Source>| -> rustix::io::Result<Rotating> {
        let (read, write) = pipe()?;
        rustix::stdio::dup2_stdout(&write)?;
        sources.push(Source {
            pipe: read,
            stream: "stdout",
        });
        if records {
            let (read, write) = pipe()?;
            rustix::stdio::dup2_stderr(&write)?;
            sources.push(Source {
                pipe: read,
                stream: "stderr",
            });
        } else {
            rustix::stdio::dup2_stderr(&write)?;
        }
        Ok(Rotating {
            dir: rustix::io::fcntl_dupfd_cloexec(dir, 3)?,
            id: String::new(),
            size: rfs::fstat(&log)?.st_size.max(0) as u64,
            file: log,
            max_size,
            max_file: config.max_file.max(1),
        })
    };
    let log = set_up(&mut sources)
        .map_err(|e| Error::os("redirect output to the pipes of the log", e))?;
    let _ = PUMP.set(Mutex::new(Pump {
        sources,
        records,
        log,
    }));
    Ok(())
}

/// Starts the thread that copies the pipes of [`pipe_output`] into the log
/// of container `id` (named by now: a new container's ID is known only once
/// it runs), until no writer is left. It inherits the caller's signal
/// mask: call it once signals are blocked for the forwarder.
pub fn start_pump(id: &str) {
    let Some(pump) = PUMP.get() else {
        return;
    };
    pump.lock().unwrap_or_else(|e| e.into_inner()).log.id = id.to_string();
    std::thread::spawn(|| {
        let Some(pump) = PUMP.get() else { return };
        loop {
            let fds = pump
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .sources
                .iter()
                .map(|s| s.pipe.as_fd().try_clone_to_owned())
                .collect::<std::io::Result<Vec<OwnedFd>>>();
            let Ok(fds) = fds else { return };
            if fds.is_empty() {
                return;
            }
            let mut wanted: Vec<_> = fds
                .iter()
                .map(|fd| rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN))
                .collect();
            match rustix::event::poll(&mut wanted, None) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(_) => return,
            }
            if !pump.lock().unwrap_or_else(|e| e.into_inner()).drain() {
                return;
            }
        }
    });
}

/// Copies into the log what the container wrote so far (called when its
/// command has ended, before its end is recorded: `tupper logs` after
/// `tupper wait` then has all of it). Nothing to do without rotation.
pub fn flush() {
    if let Some(pump) = PUMP.get() {
        pump.lock().unwrap_or_else(|e| e.into_inner()).drain();
    }
}

/// The rotated files of container `id`'s log that are newer than the one
/// whose inode is `ino` (rotated since a follower read it), oldest first,
/// open for reading.
pub fn files_after(dir: BorrowedFd<'_>, id: &str, ino: u64) -> Vec<OwnedFd> {
    let mut newer = Vec::new();
    for n in 1.. {
        let Ok(fd) = rfs::openat(
            dir,
            file_name(id, n).as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        ) else {
            break;
        };
        if rfs::fstat(&fd).is_ok_and(|st| st.st_ino == ino) {
            newer.reverse();
            return newer;
        }
        newer.push(fd);
    }
    // Rotated out (older than `max-file` keeps): all came after it.
    newer.reverse();
    newer
}

/// A container's log as `tupper logs` reads it: its files, oldest first,
/// the current one last.
pub struct Files {
    /// The open files, oldest first.
    pub files: Vec<OwnedFd>,
}

impl Files {
    /// Opens container `id`'s log files in `dir`; `None` when it has none.
    pub fn open(dir: BorrowedFd<'_>, id: &str) -> rustix::io::Result<Option<Files>> {
        let open = |n: u32| {
            rfs::openat(
                dir,
                file_name(id, n).as_str(),
                OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )
        };
        let current = match open(0) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        // A rotation between these opens moves the file opened as
        // `ID.log` to `ID.log.1`: a file seen already (by inode) is
        // skipped, so that nothing is read twice.
        let inode = |fd: &OwnedFd| rfs::fstat(fd).map(|st| (st.st_dev, st.st_ino));
        let mut seen = vec![inode(&current)?];
        let mut files = Vec::new();
        for n in 1.. {
            match open(n) {
                Ok(fd) => {
                    let id = inode(&fd)?;
                    if !seen.contains(&id) {
                        seen.push(id);
                        files.push(fd);
                    }
                }
                Err(_) => break,
            }
        }
        files.reverse();
        files.push(current);
        Ok(Some(Files { files }))
    }

    /// Where the last `n` lines start, as `tail -n` counts them over the
    /// files taken as one: the index of a file and the offset in it.
    pub fn start_of_last_lines(&self, n: u64) -> rustix::io::Result<(usize, u64)> {
        let sizes = self
            .files
            .iter()
            .map(|f| rfs::fstat(f).map(|st| st.st_size.max(0) as u64))
            .collect::<rustix::io::Result<Vec<u64>>>()?;
        let last = self.files.len() - 1;
        if n == 0 {
            return Ok((last, sizes[last]));
        }
        // The newline that ends the last line is not a start: one more to
        // find.
        let mut wanted = n;
        let mut end_seen = false;
        for (i, f) in self.files.iter().enumerate().rev() {
            if sizes[i] == 0 {
                continue;
            }
            if !end_seen {
                end_seen = true;
                if crate::fsutil::ends_with_newline(f, sizes[i])? {
                    wanted += 1;
                }
            }
            match crate::fsutil::nth_newline_from_end(f, sizes[i], wanted)? {
                Ok(at) => return Ok((i, at + 1)),
                Err(seen) => wanted -= seen,
            }
        }
        Ok((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2026-12-01T15:04:05.000000001Z";
    const T2: &str = "2026-12-01T15:04:06.000000002Z";

    /// What `tupper logs` prints of `log` with `records`: (stdout, stderr),
    /// fed whole and fed a byte at a time.
    fn read_back(log: &[u8], records: Records) -> (String, String) {
        let (timestamps, since, until) = (
            records.timestamps,
            records.since.clone(),
            records.until.clone(),
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut whole = records;
        whole.feed(log, &mut out, &mut err);
        let mut bytewise = Records {
            timestamps,
            since,
            until,
            ..Default::default()
        };
        let (mut out1, mut err1) = (Vec::new(), Vec::new());
        for b in log {
            bytewise.feed(std::slice::from_ref(b), &mut out1, &mut err1);
        }
        assert_eq!((&out1, &err1), (&out, &err), "fed a byte at a time");
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn output_becomes_records_with_time_stream_and_whole_or_part() {
        let got = records_of("stdout", b"one\n\ntwo\nthr", T1.to_string());
        assert_eq!(
            String::from_utf8(got).unwrap(),
            format!("{T1} stdout F one\n{T1} stdout F \n{T1} stdout F two\n{T1} stdout P thr\n")
        );
        // A line longer than 16 KiB: parts, `P` but the last.
        let long = vec![b'x'; 16 * 1024 + 5];
        let mut data = long.clone();
        data.push(b'\n');
        let got = String::from_utf8(records_of("stderr", &data, T1.to_string())).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(&format!("{T1} stderr P xxx")));
        assert_eq!(lines[1], format!("{T1} stderr F xxxxx"));
        assert!(got.len() as u64 <= 2 * MAX_RECORD);
    }

    #[test]
    fn records_read_back_as_the_output_was_with_times_when_asked() {
        let mut log = records_of("stdout", b"a\nhalf", T1.to_string());
        log.extend(records_of("stderr", b"oops\n", T1.to_string()));
        log.extend(records_of("stdout", b" and half\nb\n", T2.to_string()));
        log.extend(b"not a record\n");
        let plain = read_back(&log, Records::default());
        assert_eq!(
            plain,
            (
                "a\nhalf and half\nb\nnot a record\n".into(),
                "oops\n".into()
            )
        );
        let timed = read_back(
            &log,
            Records {
                timestamps: true,
                ..Default::default()
            },
        );
        assert_eq!(
            timed,
            (
                format!("{T1} a\n{T1} half and half\n{T2} b\nnot a record\n"),
                format!("{T1} oops\n")
            ),
            "a line's time is its first part's"
        );
        let since = read_back(
            &log,
            Records {
                since: Some(T2.into()),
                ..Default::default()
            },
        );
        assert_eq!(
            since,
            (" and half\nb\nnot a record\n".into(), String::new())
        );
        let until = read_back(
            &log,
            Records {
                until: Some(T1.into()),
                ..Default::default()
            },
        );
        assert_eq!(until, ("a\nhalfnot a record\n".into(), "oops\n".into()));
        // A record not yet written to its end is held back.
        let cut = format!("{T1} stdout F whole\n{T1} stdout F cu");
        assert_eq!(read_back(cut.as_bytes(), Records::default()).0, "whole\n");
    }

    #[test]
    fn k8s_file_is_piped_and_refuses_a_size_below_one_record() {
        let c = LogConfig::parse(Some("k8s-file"), &[]).unwrap().unwrap();
        assert!(c.is_piped() && LogConfig::has_times(Some(&c)) && c.max_size.is_none());
        let json = LogConfig::parse(Some("json-file"), &["max-size=1k".into()]).unwrap();
        assert!(
            json.as_ref().is_some_and(|c| c.is_piped()) && !LogConfig::has_times(json.as_ref())
        );
        assert!(LogConfig::parse(None, &[]).unwrap().is_none());
        assert!(LogConfig::parse(Some("k8s-file"), &["max-size=1k".into()]).is_err());
        let rotated = LogConfig::parse(
            Some("k8s-file"),
            &["max-size=1m".into(), "max-file=3".into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!((rotated.max_size, rotated.max_file), (Some(1 << 20), 3));
    }

    fn file_of(data: &[u8]) -> OwnedFd {
        let fd = rfs::memfd_create("tail", rfs::MemfdFlags::CLOEXEC).unwrap();
        crate::fsutil::write_all(fd.as_fd(), data).unwrap();
        fd
    }

    /// What `tail -n N` prints of the files `parts` taken as one, by
    /// [`Files::start_of_last_lines`].
    fn tail_of(parts: &[&[u8]], n: u64) -> Vec<u8> {
        let files = Files {
            files: parts.iter().map(|p| file_of(p)).collect(),
        };
        let (i, at) = files.start_of_last_lines(n).unwrap();
        let mut out = parts[i][at as usize..].to_vec();
        for p in &parts[i + 1..] {
            out.extend_from_slice(p);
        }
        out
    }

    /// `tail_of` `data` in one file, checked to be the same in two and
    /// three files cut anywhere.
    fn tail(data: &[u8], n: u64) -> Vec<u8> {
        let whole = tail_of(&[data], n);
        if data.len() < 64 {
            for a in 0..=data.len() {
                assert_eq!(
                    tail_of(&[&data[..a], &data[a..]], n),
                    whole,
                    "{data:?} cut at {a}"
                );
                for b in a..=data.len() {
                    let three: [&[u8]; 3] = [&data[..a], &data[a..b], &data[b..]];
                    assert_eq!(tail_of(&three, n), whole, "{data:?} cut at {a} and {b}");
                }
            }
        }
        whole
    }

    #[test]
    fn the_last_lines_start_where_tail_says_in_one_file_or_several() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc\n", 3), b"a\nb\nc\n");
        assert_eq!(tail(b"a\nb\nc\n", 9), b"a\nb\nc\n");
        assert_eq!(tail(b"a\nb\nc\n", 0), b"");
        assert_eq!(tail(b"a\nb\nc", 1), b"c", "a last line without newline");
        assert_eq!(tail(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail(b"a\n\n\n", 2), b"\n\n", "empty lines count");
        assert_eq!(tail(b"", 3), b"");
        assert_eq!(tail(b"\n", 1), b"\n");
        assert_eq!(
            tail(b"one line, long\nand the next one\n", 1),
            b"and the next one\n"
        );
        // Across the 64 KiB reads: 100,000 lines of 9 bytes and a newline.
        let big: Vec<u8> = (0..100_000u32)
            .flat_map(|i| format!("{i:09}\n").into_bytes())
            .collect();
        assert_eq!(tail(&big, 1), b"000099999\n");
        assert_eq!(tail(&big, 7_000).len(), 70_000);
        assert_eq!(&tail(&big, 7_000)[..10], b"000093000\n");
        assert_eq!(tail(&big, 100_000).len(), big.len());
        let (a, b) = big.split_at(654_321);
        assert_eq!(tail_of(&[a, b], 7_000), tail(&big, 7_000));
    }

    #[test]
    fn log_options_are_docker_s() {
        let parse = |driver: Option<&str>, opts: &[&str]| {
            let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
            LogConfig::parse(driver, &opts).map_err(|e| e.to_string())
        };
        assert_eq!(parse(None, &[]), Ok(None));
        assert_eq!(parse(Some("json-file"), &[]), Ok(None));
        let rotated = |size, files| {
            Ok(Some(LogConfig {
                driver: "json-file".into(),
                max_size: Some(size),
                max_file: files,
            }))
        };
        assert_eq!(parse(None, &["max-size=10m"]), rotated(10 << 20, 1));
        assert_eq!(
            parse(None, &["max-size=1k", "max-file=3"]),
            rotated(1024, 3)
        );
        assert_eq!(
            parse(Some("local"), &[]),
            Ok(Some(LogConfig {
                driver: "local".into(),
                max_size: Some(20 << 20),
                max_file: 5
            }))
        );
        assert_eq!(
            parse(Some("none"), &[])
                .unwrap()
                .map(|c| LogConfig::is_none(Some(&c))),
            Some(true)
        );
        for (driver, opts, why) in [
            (Some("syslog"), &[][..], "tupper has json-file"),
            (Some("none"), &["max-size=1m"][..], "takes no options"),
            (None, &["max-size=0"][..], "more than 0"),
            (None, &["max-size=lots"][..], "not a size"),
            (None, &["max-size=1m", "max-file=0"][..], "1 or more"),
            (None, &["max-size=1m", "max-file=+2"][..], "1 or more"),
            (None, &["max-file=2"][..], "needs max-size"),
            (None, &["compress=true"][..], "does not compress"),
            (None, &["labels=a"][..], "max-size=BYTES and max-file=N"),
        ] {
            let got = parse(driver, opts).unwrap_err();
            assert!(got.contains(why), "{driver:?} {opts:?}: {got}");
        }
    }

    #[test]
    fn log_file_names() {
        assert_eq!(file_name("abc", 0), "abc.log");
        assert_eq!(file_name("abc", 2), "abc.log.2");
        assert_eq!(owner_of("abc.log"), Some("abc"));
        assert_eq!(owner_of("abc.log.12"), Some("abc"));
        for other in [
            "abc.json",
            "abc.log.",
            "abc.log.x",
            ".abc.log.tmp",
            "abc.lock",
        ] {
            assert_eq!(owner_of(other), None, "{other}");
        }
    }

    /// A store directory in the test's own temporary directory.
    fn rotating(max_size: u64, max_file: u32) -> (std::path::PathBuf, Rotating) {
        let path = std::env::temp_dir().join(format!(
            "tupper-logfile-{}-{max_size}-{max_file}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        let dir = rfs::open(&path, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        std::fs::write(path.join("c.json"), b"{}").unwrap();
        // Not `O_APPEND`, as a new log (`Store::new_log`).
        let file = rfs::openat(
            &dir,
            "c.log",
            OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let log = Rotating {
            dir,
            id: "c".into(),
            file,
            size: 0,
            max_size,
            max_file,
        };
        (path, log)
    }

    fn read(path: &std::path::Path, name: &str) -> String {
        std::fs::read_to_string(path.join(name)).unwrap_or_else(|e| format!("{name}: {e}"))
    }

    #[test]
    fn rotation_keeps_max_file_files_of_at_most_max_size_with_whole_lines() {
        let (path, mut log) = rotating(10, 3);
        for line in ["one\n", "two\n", "three\n", "four\n", "five\n", "six\n"] {
            log.write(line.as_bytes()).unwrap();
        }
        // one two | three four | five six: the oldest went.
        assert_eq!(read(&path, "c.log"), "six\n");
        assert_eq!(read(&path, "c.log.1"), "four\nfive\n");
        assert_eq!(read(&path, "c.log.2"), "three\n");
        assert!(!path.join("c.log.3").exists());
        // A line longer than a file is cut.
        log.write(b"0123456789abcdef\n").unwrap();
        assert_eq!(read(&path, "c.log.2"), "six\n");
        assert_eq!(read(&path, "c.log.1"), "0123456789");
        assert_eq!(read(&path, "c.log"), "abcdef\n");
        // Nothing temporary stays.
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["c.json", "c.log", "c.log.1", "c.log.2"]);
        remove_all(log.dir.as_fd(), "c");
        assert!(!path.join("c.log").exists() && !path.join("c.log.2").exists());
        std::fs::remove_dir_all(&path).unwrap();
    }

    #[test]
    fn remove_all_takes_the_files_past_a_gap() {
        let (path, log) = rotating(10, 5);
        for name in ["c.log.1", "c.log.3", "c.log.4"] {
            std::fs::write(path.join(name), b"x\n").unwrap();
        }
        remove_all(log.dir.as_fd(), "c");
        let left: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["c.json"]);
        std::fs::remove_dir_all(&path).unwrap();
    }

    /// A rotation between `open`'s opens of `ID.log` and `ID.log.1` shows
    /// it one file under both names (a hard link plays it here): read once.
    #[test]
    fn a_file_seen_under_two_names_is_read_once() {
        let (path, log) = rotating(11, 5);
        std::fs::write(path.join("c.log"), b"new\n").unwrap();
        std::fs::hard_link(path.join("c.log"), path.join("c.log.1")).unwrap();
        std::fs::write(path.join("c.log.2"), b"old\n").unwrap();
        let files = Files::open(log.dir.as_fd(), "c").unwrap().unwrap();
        assert_eq!(files.files.len(), 2);
        assert_eq!(files.start_of_last_lines(5).unwrap(), (0, 0));
        let mut text = String::new();
        for f in &files.files {
            let mut buf = [0u8; 64];
            let n = rustix::io::pread(f, &mut buf, 0).unwrap();
            text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        assert_eq!(text, "old\nnew\n");
        std::fs::remove_dir_all(&path).unwrap();
    }

    #[test]
    fn one_file_is_emptied_and_a_removed_container_gets_no_new_files() {
        let (path, mut log) = rotating(8, 1);
        log.write(b"abc\ndef\nghi\n").unwrap();
        assert_eq!(read(&path, "c.log"), "ghi\n");
        assert!(!path.join("c.log.1").exists());
        let (path2, mut log) = rotating(8, 4);
        std::fs::remove_file(path2.join("c.json")).unwrap();
        std::fs::remove_file(path2.join("c.log")).unwrap();
        log.write(b"abc\ndef\nghi\n").unwrap();
        let names = std::fs::read_dir(&path2).unwrap().count();
        assert_eq!(names, 0, "the removed container's log came back");
        std::fs::remove_dir_all(&path).unwrap();
        let _ = std::fs::remove_dir_all(&path2);
    }
}
