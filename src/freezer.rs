//! `pause` and `unpause` (docker's): the cgroup freezer stops every process
//! of a container, which cannot notice or catch it (no `SIGSTOP`), and lets
//! them go on.
//!
//! A container has no cgroup of its own unless it has limits (see
//! [`crate::cgroup`]: the start does not pay for one), so the first `pause`
//! makes its freezer: `PARENT/ID` (`PARENT` is `tupper`, or the container's
//! `--cgroup-parent`) in the cgroup v1 `freezer` hierarchy, or in the v2
//! hierarchy; a v2 container with limits is frozen in its own cgroup. The
//! record names the directory before it is made (under the record lock, see
//! [`Store::lock_record`]), and it goes with the container's other cgroups:
//! when its run ends, or by the `rm` of a container whose run was killed.
//!
//! The freezer is frozen while still empty; then every process of the
//! container's PID namespace (of its cgroup, when it shares one: see
//! [`crate::pidns`]) is moved into it, each frozen as it joins (both
//! cgroup versions freeze a task that joins a frozen cgroup), and the
//! namespace is walked again until no process of it is left outside: a
//! process forks only until it is moved, and its children are found by the
//! next walk (zombies, which have nothing to freeze and cannot move, are
//! left where they are). `pause` returns once the kernel says the whole
//! cgroup is frozen.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

use crate::container::{Record, Status};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::store::Store;

/// How long `pause` waits for the kernel to freeze every task (one in an
/// uninterruptible sleep holds it up) before it gives up and thaws them.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// The cgroup version of a freezer directory: its state file and the values
/// that freeze and thaw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// cgroup v1: `freezer.state`, `FROZEN` / `THAWED`.
    V1,
    /// cgroup v2: `cgroup.freeze`, `1` / `0`.
    V2,
}

impl Version {
    fn of(dir: &str) -> Result<Version> {
        match crate::cgroup::fs_magic(dir) {
            Ok(linux_raw_sys::general::CGROUP2_SUPER_MAGIC) => Ok(Version::V2),
            Ok(linux_raw_sys::general::CGROUP_SUPER_MAGIC) => Ok(Version::V1),
            Ok(_) => Err(Error::msg(format!(
                "freezer {dir}: not on a cgroup file system"
            ))),
            Err(e) => Err(Error::os(format!("open freezer {dir}"), e)),
        }
    }

    fn file(self) -> &'static str {
        match self {
            Version::V1 => "freezer.state",
            Version::V2 => "cgroup.freeze",
        }
    }

    fn value(self, frozen: bool) -> &'static str {
        match (self, frozen) {
            (Version::V1, true) => "FROZEN",
            (Version::V1, false) => "THAWED",
            (Version::V2, true) => "1",
            (Version::V2, false) => "0",
        }
    }
}

/// Where container `rec`'s freezer goes (see the module's text): its own
/// cgroup with v2 limits, else `PARENT/ID` in the v1 `freezer` hierarchy or
/// the v2 one. Fails when this host has neither.
fn place(rec: &Record, what: &str) -> Result<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let v2 = crate::cgroup::fs_magic(root)
        .is_ok_and(|m| m == linux_raw_sys::general::CGROUP2_SUPER_MAGIC);
    if v2 {
        if let [own] = rec.cgroups.as_slice() {
            return Ok(PathBuf::from(own));
        }
    }
    let base = match v2 {
        true => root.to_path_buf(),
        false => crate::cgroup::v1_mount_of("freezer")?.ok_or_else(|| {
            Error::msg(format!("{what}: this host has no cgroup freezer (no v1 freezer hierarchy mounted, and /sys/fs/cgroup is not cgroup v2)"))
        })?,
    };
    let parent = rec
        .resources
        .as_ref()
        .and_then(|r| r.cgroup_parent.as_deref())
        .unwrap_or(crate::cgroup::DEFAULT_PARENT);
    let mut path = base;
    path.extend(crate::cgroup::parent_components(parent)?);
    path.push(&rec.id);
    Ok(path)
}

/// Opens freezer `dir`, making it (and its parents) when missing.
fn make(dir: &Path) -> Result<OwnedFd> {
    let shown = dir.display();
    match rfs::mkdir(dir, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(Errno::NOENT) => {
            let parent = dir
                .parent()
                .ok_or_else(|| Error::msg(format!("create cgroup {shown}: no parent")))?;
            make(parent)?;
            match rfs::mkdir(dir, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(Error::os(format!("create cgroup {shown}"), e)),
            }
        }
        Err(e) => return Err(Error::os(format!("create cgroup {shown}"), e)),
    }
    fsutil::open_dir(rfs::CWD, dir).map_err(|e| Error::os(format!("open cgroup {shown}"), e))
}

/// Writes `value` to `file` of cgroup `dir`.
fn write(dir: &OwnedFd, file: &str, value: &str) -> rustix::io::Result<()> {
    let fd = rfs::openat(dir, file, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    rustix::io::write(&fd, value.as_bytes()).map(|_| ())
}

/// A small file of cgroup `dir`, trimmed.
fn read(dir: &OwnedFd, file: &str) -> Option<String> {
    let bytes = fsutil::read_file(dir.as_fd(), file).ok()?;
    String::from_utf8(bytes).ok().map(|s| s.trim().to_string())
}

/// Whether freezer `dir` is frozen, or freezing (a `pause` that did not
/// finish: `unpause` lets it go). `false` when it is gone.
pub(crate) fn is_paused(dir: &str) -> bool {
    let Ok(fd) = fsutil::open_dir(rfs::CWD, dir) else {
        return false;
    };
    if let Some(state) = read(&fd, "freezer.state") {
        return state != "THAWED";
    }
    read(&fd, "cgroup.freeze").is_some_and(|v| v == "1")
}

/// Whether the kernel has frozen every task of freezer `fd`.
fn frozen(fd: &OwnedFd, version: Version) -> bool {
    match version {
        Version::V1 => read(fd, "freezer.state").is_some_and(|s| s == "FROZEN"),
        Version::V2 => {
            read(fd, "cgroup.events").is_some_and(|e| e.lines().any(|l| l.trim() == "frozen 1"))
        }
    }
}

/// Freezes freezer `dir` and moves into it every process of a container,
/// as `members` lists them (see the module's text). `what` names the
/// operation in errors. On failure it is thawed again.
fn freeze(dir: &Path, members: &crate::cgroup::Members<'_>, what: &str) -> Result<()> {
    let shown = dir.to_string_lossy().into_owned();
    let fd = make(dir)?;
    let version = Version::of(&shown)?;
    let state = version.file();
    write(&fd, state, version.value(true)).map_err(|e| {
        Error::os(
            format!("{what}: write {} to {shown}/{state}", version.value(true)),
            e,
        )
    })?;
    let result = crate::cgroup::move_in(&fd, &shown, members, what).and_then(|()| {
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        while !frozen(&fd, version) {
            if Instant::now() > deadline {
                return Err(Error::msg(format!(
                    "{what}: its processes were not all frozen after {} s (one in an uninterruptible sleep?)",
                    FREEZE_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    });
    if result.is_err() {
        let _ = write(&fd, state, version.value(false));
    }
    result
}

/// Thaws freezer `dir` (nothing when it is gone).
pub(crate) fn thaw(dir: &str, what: &str) -> Result<()> {
    let fd = match fsutil::open_dir(rfs::CWD, dir) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(Error::os(format!("{what}: open {dir}"), e)),
    };
    let version = Version::of(dir)?;
    write(&fd, version.file(), version.value(false)).map_err(|e| {
        Error::os(
            format!(
                "{what}: write {} to {dir}/{}",
                version.value(false),
                version.file()
            ),
            e,
        )
    })
}

impl Store {
    /// Freezes every process of a running container (`tupper pause`,
    /// docker's). Fails, changing nothing, when it is not running or is
    /// paused already.
    pub fn pause_container(&self, name_or_id: &str) -> Result<()> {
        let what = format!("pause container {name_or_id}");
        let rec = self.find_container(name_or_id)?;
        let not_running = || Error::msg(format!("{what}: it is not running"));
        if rec.status != Status::Running {
            return Err(not_running());
        }
        let (pid1, _pin) = self.pin_pid1(&rec.id).ok_or_else(not_running)?;
        // Under the record lock, so that its end, which reads the freezer
        // from the record under it too, removes it; and one pause at a time.
        let _guard = self.lock_record(&rec.id).ok_or_else(not_running)?;
        let mut rec = self.read_stored(&rec.id).ok_or_else(not_running)?;
        if rec.status != Status::Running {
            return Err(not_running());
        }
        if rec.freezer.as_deref().is_some_and(is_paused) {
            return Err(Error::msg(format!("{what}: it is paused already")));
        }
        let dir = match &rec.freezer {
            Some(d) => PathBuf::from(d),
            None => {
                let d = place(&rec, &what)?;
                rec.freezer = Some(d.to_string_lossy().into_owned());
                self.write_record(&rec)?;
                d
            }
        };
        freeze(&dir, &|| self.members(&rec, pid1), &what)?;
        self.container_event(&rec, "pause", &[]);
        Ok(())
    }

    /// Lets the processes of a paused container go on (`tupper unpause`).
    pub fn unpause_container(&self, name_or_id: &str) -> Result<()> {
        let what = format!("unpause container {name_or_id}");
        let rec = self.find_container(name_or_id)?;
        let _guard = self.lock_record(&rec.id);
        let rec = self.read_stored(&rec.id).unwrap_or(rec);
        match rec.freezer.as_deref().filter(|d| is_paused(d)) {
            Some(dir) => thaw(dir, &what)?,
            None => return Err(Error::msg(format!("{what}: it is not paused"))),
        }
        self.container_event(&rec, "unpause", &[]);
        Ok(())
    }

    /// Thaws container `id` if it is paused, so that the signal just sent
    /// to it (SIGKILL, or the one `stop` sends) is acted on, as docker does.
    pub(crate) fn thaw_after_signal(&self, id: &str, what: &str) -> Result<()> {
        match self.read_stored(id).and_then(|r| r.freezer) {
            Some(dir) if is_paused(&dir) => thaw(&dir, what),
            _ => Ok(()),
        }
    }
}
