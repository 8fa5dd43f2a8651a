//! Small file helpers on directory fds: safe lookups beneath a root, flock files,
//! atomic writes. Every fd is close-on-exec.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{self as rfs, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Context, Error, Result};

/// Opens a directory relative to `dir`, close-on-exec.
pub fn open_dir(dir: BorrowedFd<'_>, path: impl rustix::path::Arg) -> rustix::io::Result<OwnedFd> {
    rfs::openat(
        dir,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Creates directory `name` in `dir` unless it exists, then opens it.
pub fn ensure_dir(dir: BorrowedFd<'_>, name: &str, mode: u32) -> rustix::io::Result<OwnedFd> {
    match open_dir(dir, name) {
        Err(Errno::NOENT) => {
            match rfs::mkdirat(dir, name, Mode::from_raw_mode(mode)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
            open_dir(dir, name)
        }
        other => other,
    }
}

/// Makes sure `path` (absolute, inside the container) is a real directory beneath
/// `root`, creating missing components with mode 0755, and refuses any symlink on the
/// way: these directories become mount points, which the child resolves in the host's
/// view before `pivot_root`, so a symlink in the image must not redirect a mount.
pub fn ensure_mountpoint(root: BorrowedFd<'_>, path: &str) -> Result<()> {
    let mut cur: Option<OwnedFd> = None;
    for comp in Path::new(path).components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        let dir = cur.as_ref().map_or(root, |f| f.as_fd());
        let next = match rfs::openat2(
            dir,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Error::os(format!("create mount point {path}"), e)),
                }
                rfs::openat(dir, name, OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                    .context(|| format!("open mount point {path}"))?
            }
            Err(Errno::LOOP | Errno::NOTDIR | Errno::XDEV) => {
                return Err(Error::msg(format!(
                    "mount point {path} in the image is not a directory (a symlink or a file); refusing to mount over it"
                )))
            }
            Err(e) => return Err(Error::os(format!("open mount point {path}"), e)),
        };
        cur = Some(next);
    }
    Ok(())
}

/// `openat2(dir, path, flags, mode, resolve)` resolved in the container's
/// root (`RESOLVE_IN_ROOT`), retried while the kernel answers `EAGAIN`: it
/// does when a mount or rename anywhere on the host raced a `..` of the path,
/// and asks the caller to try again (openat2(2)). At most 64 tries. Makes no
/// allocation for a `&CStr` path (the container's child calls it).
pub fn openat2_in_root<P: rustix::path::Arg + Copy>(
    dir: BorrowedFd<'_>,
    path: P,
    flags: OFlags,
    resolve: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match rfs::openat2(
            dir,
            path,
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | resolve,
        ) {
            Err(Errno::AGAIN) if tries < 63 => tries += 1,
            result => return result,
        }
    }
}

/// Creates `path` (absolute, inside the container) as a directory beneath `root`,
/// resolving symlinks and `..` as the container would, like docker does for a
/// missing working directory: each prefix of the path is resolved from `root`
/// with `RESOLVE_IN_ROOT` (so `/var/run -> /run` is the image's `/run`, and
/// `..` stops at the root), and a missing last component is made with
/// `mkdirat` in the directory its parent resolved to.
pub fn mkdir_in_root(root: BorrowedFd<'_>, path: &str) -> Result<()> {
    let open = |prefix: &Path| {
        openat2_in_root(
            root,
            prefix,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            ResolveFlags::NO_MAGICLINKS,
        )
    };
    if open(Path::new(path)).is_ok() {
        return Ok(());
    }
    let mut prefix = std::path::PathBuf::new();
    let mut parent: Option<OwnedFd> = None;
    for comp in Path::new(path).components() {
        let name = match comp {
            Component::Normal(name) => name,
            Component::ParentDir => std::ffi::OsStr::new(".."),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        };
        prefix.push(name);
        let next = match open(&prefix) {
            Err(Errno::NOENT) if matches!(comp, Component::Normal(_)) => {
                let dir = parent.as_ref().map_or(root, |f| f.as_fd());
                match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Error::os(format!("create working directory {path}"), e)),
                }
                open(&prefix)
            }
            other => other,
        }
        .context(|| format!("open working directory {path}"))?;
        parent = Some(next);
    }
    Ok(())
}

/// Whether `name` in `dir` exists (without following a final symlink).
pub fn exists(dir: BorrowedFd<'_>, name: impl rustix::path::Arg) -> bool {
    rfs::statat(dir, name, rfs::AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

/// Whether `name` in `dir` is a directory (not following symlinks).
pub fn is_dir(dir: BorrowedFd<'_>, name: impl rustix::path::Arg) -> bool {
    rfs::statat(dir, name, rfs::AtFlags::SYMLINK_NOFOLLOW)
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
        .unwrap_or(false)
}

/// Writes `data` to `dir/name` atomically: a temporary file renamed over the name.
pub fn write_atomic(dir: BorrowedFd<'_>, name: &str, data: &[u8]) -> rustix::io::Result<()> {
    let tmp = format!(".{name}.tmp{}", rustix::process::getpid().as_raw_nonzero());
    let fd = rfs::openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let res =
        write_all(fd.as_fd(), data).and_then(|()| rfs::renameat(dir, tmp.as_str(), dir, name));
    if res.is_err() {
        let _ = rfs::unlinkat(dir, tmp.as_str(), rfs::AtFlags::empty());
    }
    res
}

/// Writes all of `data` to `fd`.
pub fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> rustix::io::Result<()> {
    while !data.is_empty() {
        let n = rustix::io::write(fd, data)?;
        data = &data[n..];
    }
    Ok(())
}

/// Whether the last of the `size` bytes of file `fd` is a newline.
pub fn ends_with_newline(fd: &impl AsFd, size: u64) -> rustix::io::Result<bool> {
    let mut byte = [0u8];
    match size {
        0 => Ok(false),
        _ => Ok(rustix::io::pread(fd, &mut byte, size - 1)? == 1 && byte[0] == b'\n'),
    }
}

/// The offset of the `k`th newline (from 1) counted back from byte `size`
/// of file `fd`: `Err` with how many it has when fewer. Reads backwards,
/// 64 KiB at a time.
pub fn nth_newline_from_end(
    fd: &impl AsFd,
    size: u64,
    k: u64,
) -> rustix::io::Result<std::result::Result<u64, u64>> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = size;
    let mut seen = 0u64;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        let mut got = 0;
        while got < chunk.len() {
            match rustix::io::pread(fd, &mut chunk[got..], start + got as u64) {
                Ok(0) => return Err(Errno::IO), // the file shrank under us
                Ok(n) => got += n,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
        for (i, b) in chunk.iter().enumerate().rev() {
            if *b == b'\n' {
                seen += 1;
                if seen == k {
                    return Ok(Ok(start + i as u64));
                }
            }
        }
        end = start;
    }
    Ok(Err(seen))
}

/// Reads the whole file `dir/name`.
pub fn read_file(dir: BorrowedFd<'_>, name: impl rustix::path::Arg) -> rustix::io::Result<Vec<u8>> {
    let fd = rfs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut out = Vec::with_capacity(512);
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Calls `f` with the name of each entry of directory `dir` but `.` and
/// `..`: one `open` of the directory and `getdents64` into an 8 KiB buffer
/// on the stack (a pool of 128 spares fits in one call; rustix's `Dir` would
/// open it once more and read it in calls of growing size, four for that
/// pool).
pub fn for_each_name(dir: BorrowedFd<'_>, mut f: impl FnMut(&[u8])) -> rustix::io::Result<()> {
    let fd = rfs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 8192];
    let mut entries = rfs::RawDir::new(&fd, &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let name: &CStr = entry.file_name();
        let bytes = name.to_bytes();
        if bytes != b"." && bytes != b".." {
            f(bytes);
        }
    }
    Ok(())
}

/// The names in directory `dir` (without `.` and `..`; UTF-8 ones only).
pub fn list_dir(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for_each_name(dir, |bytes| {
        if let Ok(s) = std::str::from_utf8(bytes) {
            names.push(s.to_string());
        }
    })?;
    Ok(names)
}

/// The container-ID-shaped names in directory `dir` (spares of a pool), as
/// [`list_dir`] reads them but without a `String` per name.
pub fn list_ids(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<crate::names::IdBuf>> {
    let mut ids = Vec::new();
    for_each_name(dir, |bytes| ids.extend(crate::names::IdBuf::new(bytes)))?;
    Ok(ids)
}

/// An advisory `flock` on a lock file; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct FileLock {
    fd: OwnedFd,
}

impl Drop for FileLock {
    /// Unlocks before the fd closes: an flock belongs to the open file,
    /// and a process cloned meanwhile by another thread (a library
    /// caller's other container, before its `execve` closes its copies)
    /// holds a copy of the fd. Closing ours alone would leave the lock
    /// held by that copy; `LOCK_UN` releases it for every copy.
    fn drop(&mut self) {
        let _ = rfs::flock(self.fd.as_fd(), rfs::FlockOperation::Unlock);
    }
}

impl FileLock {
    /// Creates (if needed) and locks `dir/name`; `exclusive` or shared; waits when `wait`.
    /// Returns `Ok(None)` when not waiting and somebody else holds the lock.
    pub fn acquire(
        dir: BorrowedFd<'_>,
        name: &str,
        exclusive: bool,
        wait: bool,
    ) -> rustix::io::Result<Option<FileLock>> {
        let fd = rfs::openat(
            dir,
            name,
            OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )?;
        if try_lock(fd.as_fd(), exclusive, wait)? {
            Ok(Some(FileLock { fd }))
        } else {
            Ok(None)
        }
    }

    /// Waits for a shared lock on `dir/name`, which must exist (`Ok(None)`:
    /// it does not): until whoever holds it exclusively lets go.
    pub fn wait_shared(dir: BorrowedFd<'_>, name: &str) -> rustix::io::Result<Option<FileLock>> {
        let fd = match rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        try_lock(fd.as_fd(), false, true)?;
        Ok(Some(FileLock { fd }))
    }

    /// The lock file's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Takes an flock on `fd`; `Ok(false)` when not waiting and it is held elsewhere.
pub fn try_lock(fd: BorrowedFd<'_>, exclusive: bool, wait: bool) -> rustix::io::Result<bool> {
    use rustix::fs::FlockOperation as F;
    let op = match (exclusive, wait) {
        (true, true) => F::LockExclusive,
        (true, false) => F::NonBlockingLockExclusive,
        (false, true) => F::LockShared,
        (false, false) => F::NonBlockingLockShared,
    };
    loop {
        match rfs::flock(fd, op) {
            Ok(()) => return Ok(true),
            Err(Errno::WOULDBLOCK) => return Ok(false),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Whether somebody holds an exclusive lock on `dir/name` (a missing file means
/// nobody does). The probe takes a *shared* lock for an instant, so concurrent
/// probes (`ps`, `rm`) never make each other see a lock.
pub fn is_locked(dir: BorrowedFd<'_>, name: &str) -> bool {
    let Ok(fd) = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) else {
        return false;
    };
    match try_lock(fd.as_fd(), false, false) {
        Ok(false) => true,
        Ok(true) => {
            // Unlocked before the fd closes, as FileLock's drop does: a
            // copy of the fd cloned meanwhile would keep the shared lock.
            let _ = rfs::flock(fd.as_fd(), rfs::FlockOperation::Unlock);
            false
        }
        Err(_) => false,
    }
}

/// Turns a Rust string into a C string, refusing interior NULs with a clear error.
pub fn cstring(what: &str, s: impl Into<Vec<u8>>) -> Result<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| Error::msg(format!("{what} contains a NUL byte")))
}

/// The flags of the mount that holds `fd`, as `mount(2)` takes them
/// (`MS_RDONLY`, `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC` and the atime mode): what
/// a bind remount must repeat, as it sets all of them at once.
pub fn mount_flags(fd: BorrowedFd<'_>) -> rustix::io::Result<rustix::mount::MountFlags> {
    use rustix::fs::StatVfsMountFlags as St;
    use rustix::mount::MountFlags as Ms;
    let have = rfs::fstatvfs(fd)?.f_flag;
    let mut flags = Ms::empty();
    for (st, ms) in [
        (St::RDONLY, Ms::RDONLY),
        (St::NOSUID, Ms::NOSUID),
        (St::NODEV, Ms::NODEV),
        (St::NOEXEC, Ms::NOEXEC),
        (St::NOATIME, Ms::NOATIME),
        (St::NODIRATIME, Ms::NODIRATIME),
        (St::RELATIME, Ms::RELATIME),
    ] {
        if have.contains(st) {
            flags |= ms;
        }
    }
    // Without either, the kernel would default the remount to relatime.
    if !have.intersects(St::NOATIME | St::RELATIME) {
        flags |= Ms::STRICTATIME;
    }
    Ok(flags)
}

/// One line of `/proc/self/mountinfo` (proc(5)), the fields tupper reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountInfo {
    /// Where it is mounted (field 5), unescaped.
    pub mount_point: String,
    /// The optional fields (`shared:N`, `master:N`, ...).
    pub optional: Vec<String>,
    /// The mount source (after the filesystem type), unescaped.
    pub source: Option<String>,
}

/// The line of mount `id` (statx's `STATX_MNT_ID`) in a `mountinfo` text.
pub(crate) fn mount_info(mountinfo: &str, id: u64) -> Option<MountInfo> {
    let id = id.to_string();
    let line = mountinfo
        .lines()
        .find(|l| l.split(' ').next() == Some(id.as_str()))?;
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    Some(MountInfo {
        mount_point: unescape_mount_field(fields.get(4)?),
        optional: fields.iter().skip(6).map(|f| f.to_string()).collect(),
        source: right.split(' ').nth(1).map(unescape_mount_field),
    })
}

/// A `mountinfo` field with the kernel's octal escapes (`\040` for a
/// space, `\011`, `\012`, `\134`) turned back into their bytes.
fn unescape_mount_field(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |n, c| n.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_is_found_by_its_id_and_its_fields_unescaped() {
        let text = "\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
512 22 0:45 / /var/tmp/my\\040store rw shared:7 master:3 - btrfs /dev/loop3 rw
513 22 0:46 / /tmp rw - tmpfs my\\011tmp rw
";
        let m = mount_info(text, 512).unwrap();
        assert_eq!(m.mount_point, "/var/tmp/my store");
        assert_eq!(m.optional, ["shared:7", "master:3"]);
        assert_eq!(m.source.as_deref(), Some("/dev/loop3"));
        let m = mount_info(text, 513).unwrap();
        assert!(m.optional.is_empty());
        assert_eq!(m.source.as_deref(), Some("my\ttmp"));
        assert_eq!(mount_info(text, 51), None);
        assert_eq!(unescape_mount_field("a\\134b\\9"), "a\\b\\9");
    }

    #[test]
    fn a_dropped_lock_is_free_though_a_copy_of_its_fd_lives() {
        let dir = rfs::open(
            std::env::temp_dir(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let name = format!("tupper-lock-test-{}", std::process::id());
        let lock = FileLock::acquire(dir.as_fd(), &name, true, false)
            .unwrap()
            .unwrap();
        // What a process cloned by another thread holds until its execve.
        let copy = rustix::io::fcntl_dupfd_cloexec(lock.fd(), 0).unwrap();
        assert!(FileLock::acquire(dir.as_fd(), &name, true, false)
            .unwrap()
            .is_none());
        drop(lock);
        let again = FileLock::acquire(dir.as_fd(), &name, true, false).unwrap();
        rfs::unlinkat(dir.as_fd(), name.as_str(), rfs::AtFlags::empty()).unwrap();
        assert!(again.is_some(), "the copy kept the lock");
        drop(copy);
    }
}
