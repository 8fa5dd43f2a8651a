//! The writing half of an import: creates entries under the image root with
//! `*at` calls relative to directory fds, never resolving a path through a
//! symlink, never leaving the root.
//!
//! Every entry path is first normalized ([`normalize`]): no leading `/`, no `.`
//! or empty components, and `..` refused. Its parent directory is then opened
//! with `openat2(root, parent, O_PATH | O_DIRECTORY, RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`, and the last
//! component is created relative to that fd with `O_EXCL`/`O_NOFOLLOW` or an
//! `*at` call that does not follow it. The last parent fd is kept, since
//! archives list a directory's entries together.

use std::borrow::Cow;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timestamps, XattrFlags};
use rustix::io::Errno;
use rustix::time::Timespec;

use super::Stats;
use crate::error::{Context, Error, Result};

/// Metadata applied to a written entry.
#[derive(Debug, Default)]
pub(super) struct Meta {
    /// Permission bits, setuid/setgid/sticky included (`0o7777`).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time, seconds since the epoch (also used as access time).
    pub mtime: i64,
    /// Nanoseconds of the modification time.
    pub mtime_nsec: u32,
    /// Extended attributes (name, value), e.g. `security.capability`.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn times(&self) -> Timestamps {
        let t = Timespec {
            tv_sec: self.mtime,
            tv_nsec: i64::from(self.mtime_nsec),
        };
        Timestamps {
            last_access: t,
            last_modification: t,
        }
    }
}

/// A special file made with `mknodat`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Special {
    /// Character device (major, minor).
    Char(u32, u32),
    /// Block device (major, minor).
    Block(u32, u32),
    /// Named pipe.
    Fifo,
}

/// Why a path was refused by [`normalize`].
pub(super) const ESCAPES: &str = "escapes the image (\"..\" is not allowed)";

/// Normalizes an archive path into `out`: strips leading `/`, drops `.` and
/// empty components, refuses `..` and NUL bytes. An empty result is the root.
pub(super) fn normalize(raw: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    out.clear();
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err(ESCAPES),
            _ => {
                if component.contains(&0) {
                    return Err("contains a NUL byte");
                }
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(component);
            }
        }
    }
    Ok(())
}

/// A path from the archive, quoted for an error message (`"a/b"`).
pub(super) fn quote(path: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(path))
}

/// A path from the archive, as text for an error message (unquoted), with
/// control characters escaped (`\n`, `\u{1b}`) so that messages stay one line.
pub(super) fn show(path: &[u8]) -> Cow<'_, str> {
    let text = String::from_utf8_lossy(path);
    if !text.chars().any(char::is_control) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Splits a normalized, non-empty path into its parent and its last component.
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// The resolve flags of every lookup below the root.
fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH
        | ResolveFlags::NO_SYMLINKS
        | ResolveFlags::NO_MAGICLINKS
        | ResolveFlags::NO_XDEV
}

/// `openat2` below `dir` with [`beneath`], retried on `EAGAIN` (which the kernel
/// returns when a concurrent rename could have let the lookup escape).
fn open_beneath(dir: BorrowedFd<'_>, path: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match fs::openat2(dir, path, flags | OFlags::CLOEXEC, Mode::empty(), beneath()) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            Err(Errno::NOSYS) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "openat2 is not available (Linux 5.6 or later is needed)",
                ))
            }
            other => return other.map_err(Into::into),
        }
    }
}

/// Writes all of `data` to `fd`; a failure names the entry.
pub(super) fn write_all(fd: &OwnedFd, mut data: &[u8], name: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => {
                return Err(Error::os(
                    format!("write {}", show(name)),
                    io::Error::from(io::ErrorKind::WriteZero),
                ))
            }
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(Error::os(format!("write {}", show(name)), e)),
        }
    }
    Ok(())
}

/// Creates entries below one root directory.
pub(super) struct Writer<'r> {
    root: BorrowedFd<'r>,
    /// The path of the cached parent directory (valid when `cached` is set).
    cached_path: Vec<u8>,
    /// An fd of the last parent directory used.
    cached: Option<OwnedFd>,
    /// Directory mtimes, applied by [`Writer::finish`] once all children exist.
    dir_times: Vec<(Vec<u8>, Timestamps)>,
    stats: Stats,
    /// An entry that replaces a directory replaces its tree (a layer's).
    trees: bool,
}

impl<'r> Writer<'r> {
    /// A writer into `root`.
    pub fn new(root: BorrowedFd<'r>) -> Result<Writer<'r>> {
        Ok(Writer {
            root,
            cached_path: Vec::new(),
            cached: None,
            dir_times: Vec::new(),
            stats: Stats::default(),
            trees: false,
        })
    }

    /// Makes an entry that replaces a directory replace its whole tree, as
    /// a layer's entry replaces a lower layer's.
    pub fn replace_trees(&mut self) {
        self.trees = true;
    }

    /// A layer's whiteout: removes `path` (normalized, not the root) and
    /// what is below it, when there. A missing parent means nothing to hide.
    pub fn whiteout(&mut self, path: &[u8]) -> Result<()> {
        let (parent, name) = split(path);
        if name.is_empty() || name == b"." || name == b".." {
            return Err(Error::msg(format!(
                "import: whiteout of {}: not a name",
                quote(path)
            )));
        }
        self.forget(path);
        let pfd = match parent.is_empty() {
            true => None,
            false => match open_beneath(self.root, parent, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(fd) => Some(fd),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                    return Ok(())
                }
                Err(e) => return Err(Error::os(format!("open {}", show(parent)), e)),
            },
        };
        let dir = pfd.as_ref().map_or(self.root, |fd| fd.as_fd());
        remove_tree(dir, name, path)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// A layer's opaque whiteout in directory `dir` (normalized; empty: the
    /// root): removes what is in it but what `layer` wrote there. The
    /// directory itself stays (its entry, if the layer has one, sets it).
    pub fn opaque(&mut self, dir: &[u8], layer: &Layer) -> Result<()> {
        self.forget(dir);
        let fd = match dir.is_empty() {
            true => fs::openat(
                self.root,
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .context(|| "open the image root".to_string())?,
            false => match open_beneath(self.root, dir, OFlags::RDONLY | OFlags::DIRECTORY) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                Err(e) => return Err(Error::os(format!("open directory {}", show(dir)), e)),
            },
        };
        let mut children = Vec::new();
        crate::fsutil::for_each_name(fd.as_fd(), |child| children.push(child.to_vec()))
            .context(|| format!("list directory {}", show(dir)))?;
        let mut child_path = Vec::new();
        for child in children {
            child_path.clear();
            if !dir.is_empty() {
                child_path.extend_from_slice(dir);
                child_path.push(b'/');
            }
            child_path.extend_from_slice(&child);
            if !layer.written.contains(&child_path) {
                remove_tree(fd.as_fd(), &child, &child_path)?;
            }
        }
        self.stats.entries += 1;
        Ok(())
    }

    /// What was written so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Sets the deferred directory mtimes (deepest first) and returns the totals.
    pub fn finish(mut self) -> Result<Stats> {
        self.cached = None;
        let depth = |p: &[u8]| -> isize {
            if p.is_empty() {
                -1
            } else {
                p.iter().filter(|&&b| b == b'/').count() as isize
            }
        };
        // Stable: when a directory appears twice, the later entry wins.
        self.dir_times
            .sort_by_key(|(p, _)| std::cmp::Reverse(depth(p)));
        for (path, times) in &self.dir_times {
            let fd = if path.is_empty() {
                fs::openat(
                    self.root,
                    c".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .context(|| "open the image root".to_string())?
            } else {
                match open_beneath(self.root, path, OFlags::RDONLY | OFlags::DIRECTORY) {
                    Ok(fd) => fd,
                    // Replaced by a later entry: that entry's metadata counts.
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                        ) =>
                    {
                        continue
                    }
                    Err(e) => return Err(Error::os(format!("open {}", show(path)), e)),
                }
            };
            fs::futimens(&fd, times).context(|| format!("set mtime of {}", show(path)))?;
        }
        Ok(self.stats)
    }

    /// Takes the fd of `parent` out of the cache, or opens it (creating missing
    /// directories). `None` stands for the root.
    fn take_parent(&mut self, entry: &[u8], parent: &[u8]) -> Result<Option<OwnedFd>> {
        if parent.is_empty() {
            return Ok(None);
        }
        if self.cached.is_some() && self.cached_path == parent {
            return Ok(self.cached.take());
        }
        self.cached = None;
        let flags = OFlags::PATH | OFlags::DIRECTORY;
        match open_beneath(self.root, parent, flags) {
            Ok(fd) => Ok(Some(fd)),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR | libc::EXDEV)
                ) =>
            {
                self.walk_parent(entry, parent).map(Some)
            }
            Err(e) => Err(Error::os(
                format!(
                    "import: entry {}: open parent {}",
                    quote(entry),
                    quote(parent)
                ),
                e,
            )),
        }
    }

    /// Opens `parent` one component at a time, creating missing directories
    /// (mode 0755, like GNU tar) and naming the component that is in the way.
    fn walk_parent(&self, entry: &[u8], parent: &[u8]) -> Result<OwnedFd> {
        let flags = OFlags::PATH | OFlags::DIRECTORY;
        let mut current: Option<OwnedFd> = None;
        let mut end = 0;
        for component in parent.split(|&b| b == b'/') {
            end += component.len();
            let prefix = &parent[..end];
            end += 1;
            let dir = current.as_ref().map_or(self.root, |fd| fd.as_fd());
            let mut created = false;
            let fd = loop {
                match open_beneath(dir, component, flags) {
                    Ok(fd) => break fd,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) && !created => {
                        match fs::mkdirat(dir, component, Mode::from_raw_mode(0o755)) {
                            Ok(()) => {
                                // mkdir is subject to the umask; tar's default is 0755.
                                fs::chmodat(
                                    dir,
                                    component,
                                    Mode::from_raw_mode(0o755),
                                    AtFlags::empty(),
                                )
                                .context(|| format!("chmod {}", show(prefix)))?;
                            }
                            Err(Errno::EXIST) => {}
                            Err(e) => {
                                return Err(Error::os(
                                    format!(
                                        "import: entry {}: create parent directory {}",
                                        quote(entry),
                                        quote(prefix)
                                    ),
                                    e,
                                ))
                            }
                        }
                        created = true;
                    }
                    Err(e) => {
                        let why = match e.raw_os_error() {
                            Some(libc::ELOOP) => {
                                "is a symlink (paths are never resolved through symlinks)"
                            }
                            Some(libc::ENOTDIR) => "is not a directory",
                            Some(libc::EXDEV) => "is a mount point",
                            _ => {
                                return Err(Error::os(
                                    format!(
                                        "import: entry {}: open parent {}",
                                        quote(entry),
                                        quote(prefix)
                                    ),
                                    e,
                                ))
                            }
                        };
                        return Err(Error::msg(format!(
                            "import: entry {}: parent {} {why}",
                            quote(entry),
                            quote(prefix)
                        )));
                    }
                }
            };
            current = Some(fd);
        }
        current.ok_or_else(|| Error::msg(format!("import: entry {}: empty parent", quote(entry))))
    }

    /// Drops the cached directory fd when it is `path` or below it: an entry
    /// at `path` may replace that directory, and a later lookup through the
    /// stale fd would fail with a wrong message (ENOENT instead of "parent
    /// is not a directory" or "is a symlink").
    fn forget(&mut self, path: &[u8]) {
        if self.cached.is_some()
            && self.cached_path.starts_with(path)
            && matches!(self.cached_path.get(path.len()), None | Some(b'/'))
        {
            self.cached = None;
        }
    }

    /// Puts a directory fd back into the cache.
    fn put_parent(&mut self, path: &[u8], fd: Option<OwnedFd>) {
        if let Some(fd) = fd {
            self.cached_path.clear();
            self.cached_path.extend_from_slice(path);
            self.cached = Some(fd);
        }
    }

    /// A regular file: created empty (mode 0600), filled by `fill` (which
    /// returns the bytes written), then owner, mode, xattrs and mtime.
    pub fn file(
        &mut self,
        path: &[u8],
        meta: &Meta,
        fill: impl FnOnce(&OwnedFd) -> Result<u64>,
    ) -> Result<()> {
        let fd = self.create_file(path)?;
        let bytes = fill(&fd)?;
        finish_file(&fd, meta, path)?;
        self.count_file(bytes);
        Ok(())
    }

    /// Creates the regular file `path` empty (mode 0600) and returns it open
    /// for writing; once it is filled, [`finish_file`] gives it its metadata
    /// and [`Writer::count_file`] counts it.
    pub fn create_file(&mut self, path: &[u8]) -> Result<OwnedFd> {
        let (parent, name) = split(path);
        self.forget(path);
        let pfd = self.take_parent(path, parent)?;
        let dir = pfd.as_ref().map_or(self.root, |fd| fd.as_fd());
        let fd = create(dir, path, name, "file", self.trees, |dir| {
            fs::openat(
                dir,
                name,
                OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        })?;
        self.put_parent(parent, pfd);
        Ok(fd)
    }

    /// Counts a regular file of `bytes` bytes made by [`Writer::create_file`].
    pub fn count_file(&mut self, bytes: u64) {
        self.stats.entries += 1;
        self.stats.bytes += bytes;
    }

    /// A directory: created (or kept, when one exists), then owner, mode and
    /// xattrs; its mtime is set by [`Writer::finish`]. An empty path is the root.
    pub fn dir(&mut self, path: &[u8], meta: &Meta) -> Result<()> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let (fd, parent) = if path.is_empty() {
            let fd = fs::openat(self.root, c".", flags, Mode::empty())
                .context(|| "open the image root".to_string())?;
            (fd, None)
        } else {
            let (parent, name) = split(path);
            self.forget(path);
            let pfd = self.take_parent(path, parent)?;
            let dir = pfd.as_ref().map_or(self.root, |fd| fd.as_fd());
            match fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
                Ok(()) => {}
                Err(Errno::EXIST) => {
                    let st = fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                        .context(|| format!("stat {}", show(path)))?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                        remove_existing(dir, path, name, "directory", self.trees)?;
                        fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
                            .context(|| format!("create directory {}", show(path)))?;
                    }
                }
                Err(e) => return Err(Error::os(format!("create directory {}", show(path)), e)),
            }
            let fd = fs::openat(dir, name, flags, Mode::empty())
                .context(|| format!("open directory {}", show(path)))?;
            (fd, Some(pfd))
        };
        fs::fchown(
            &fd,
            Some(fs::Uid::from_raw(meta.uid)),
            Some(fs::Gid::from_raw(meta.gid)),
        )
        .context(|| format!("chown {}", show(path)))?;
        fs::fchmod(&fd, Mode::from_raw_mode(meta.mode))
            .context(|| format!("chmod {}", show(path)))?;
        set_xattrs(&fd, meta, path)?;
        self.dir_times.push((path.to_vec(), meta.times()));
        self.stats.entries += 1;
        if parent.is_some() {
            // The next entries most likely live in this directory.
            drop(parent);
            self.put_parent(path, Some(fd));
        }
        Ok(())
    }

    /// A symlink to `target` (stored as is, never followed), with its owner and
    /// mtime. Symlinks carry no mode and, here, no xattrs.
    pub fn symlink(&mut self, path: &[u8], target: &[u8], meta: &Meta) -> Result<()> {
        let (parent, name) = split(path);
        self.forget(path);
        let pfd = self.take_parent(path, parent)?;
        let dir = pfd.as_ref().map_or(self.root, |fd| fd.as_fd());
        create(dir, path, name, "symlink", self.trees, |dir| {
            fs::symlinkat(target, dir, name)
        })?;
        fs::chownat(
            dir,
            name,
            Some(fs::Uid::from_raw(meta.uid)),
            Some(fs::Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .context(|| format!("chown {}", show(path)))?;
        fs::utimensat(dir, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .context(|| format!("set mtime of {}", show(path)))?;
        self.put_parent(parent, pfd);
        self.stats.entries += 1;
        Ok(())
    }

    /// A hard link to `target`, a normalized path that must already exist in the
    /// image (`raw_target` is the archive's spelling, for messages).
    pub fn hard_link(&mut self, path: &[u8], target: &[u8], raw_target: &[u8]) -> Result<()> {
        let missing = || {
            Error::msg(format!(
                "import: entry {}: hard link target {} is not in the image (it must be an earlier entry of the archive)",
                quote(path),
                quote(raw_target)
            ))
        };
        if target.is_empty() {
            return Err(Error::msg(format!(
                "import: entry {}: hard link target {} is the image root",
                quote(path),
                quote(raw_target)
            )));
        }
        let (tparent, tname) = split(target);
        let tfd = if tparent.is_empty() {
            None
        } else {
            match open_beneath(self.root, tparent, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    return Err(match e.raw_os_error() {
                        Some(libc::ENOENT | libc::ENOTDIR) => missing(),
                        Some(libc::ELOOP) => Error::msg(format!(
                            "import: entry {}: hard link target {} is reached through a symlink",
                            quote(path),
                            quote(raw_target)
                        )),
                        _ => Error::os(
                            format!(
                                "import: entry {}: open the parent of hard link target {}",
                                quote(path),
                                quote(raw_target)
                            ),
                            e,
                        ),
                    })
                }
            }
        };
        let tdir = tfd.as_ref().map_or(self.root, |fd| fd.as_fd());

        let (parent, name) = split(path);
        self.forget(path);
        let pfd = self.take_parent(path, parent)?;
        let dir = pfd.as_ref().map_or(self.root, |fd| fd.as_fd());
        let link = |dir: BorrowedFd<'_>| fs::linkat(tdir, tname, dir, name, AtFlags::empty());
        let result = match link(dir) {
            Err(Errno::EXIST) => {
                // A link to itself, or to what is already there: nothing to do.
                let old = fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW);
                let new = fs::statat(tdir, tname, AtFlags::SYMLINK_NOFOLLOW);
                match (old, new) {
                    (Ok(a), Ok(b)) if a.st_dev == b.st_dev && a.st_ino == b.st_ino => Ok(()),
                    (_, Err(Errno::NOENT)) => Err(Errno::NOENT),
                    _ => {
                        remove_existing(dir, path, name, "hard link", self.trees)?;
                        link(dir)
                    }
                }
            }
            other => other,
        };
        match result {
            Ok(()) => {}
            Err(Errno::NOENT) => return Err(missing()),
            Err(Errno::PERM)
                if fs::statat(tdir, tname, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory) =>
            {
                return Err(Error::msg(format!(
                    "import: entry {}: hard link target {} is a directory",
                    quote(path),
                    quote(raw_target)
                )))
            }
            Err(e) => {
                return Err(Error::os(
                    format!(
                        "import: entry {}: hard link to {}",
                        quote(path),
                        quote(raw_target)
                    ),
                    e,
                ))
            }
        }
        self.put_parent(parent, pfd);
        self.stats.entries += 1;
        Ok(())
    }

    /// A device node or fifo, with its owner, mode, xattrs and mtime.
    pub fn special(&mut self, path: &[u8], kind: Special, meta: &Meta) -> Result<()> {
        let (parent, name) = split(path);
        self.forget(path);
        let pfd = self.take_parent(path, parent)?;
        let dir = pfd.as_ref().map_or(self.root, |fd| fd.as_fd());
        let (file_type, dev, what) = match kind {
            Special::Char(major, minor) => (
                FileType::CharacterDevice,
                fs::makedev(major, minor),
                "device",
            ),
            Special::Block(major, minor) => {
                (FileType::BlockDevice, fs::makedev(major, minor), "device")
            }
            Special::Fifo => (FileType::Fifo, 0, "fifo"),
        };
        create(dir, path, name, what, self.trees, |dir| {
            fs::mknodat(dir, name, file_type, Mode::from_raw_mode(0o600), dev)
        })?;
        fs::chownat(
            dir,
            name,
            Some(fs::Uid::from_raw(meta.uid)),
            Some(fs::Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .context(|| format!("chown {}", show(path)))?;
        // `name` is the node just made in `dir`, not a symlink: chmodat may follow.
        fs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
            .context(|| format!("chmod {}", show(path)))?;
        if !meta.xattrs.is_empty() {
            // Opening a device or fifo for real could block or have effects; an
            // O_PATH fd reached through /proc/self/fd names the inode instead.
            let node = fs::openat(
                dir,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .context(|| format!("open {}", show(path)))?;
            let proc_path = format!("/proc/self/fd/{}", node.as_raw_fd());
            for (key, value) in &meta.xattrs {
                skip_unsupported(fs::setxattr(
                    &proc_path,
                    &key[..],
                    value,
                    XattrFlags::empty(),
                ))
                .context(|| format!("set xattr {} of {}", show(key), show(path)))?;
            }
        }
        fs::utimensat(dir, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .context(|| format!("set mtime of {}", show(path)))?;
        self.put_parent(parent, pfd);
        self.stats.entries += 1;
        Ok(())
    }
}

/// Gives a filled regular file its owner, mode, xattrs and mtime, in that
/// order: chown clears setuid/setgid and file capabilities, so it comes first.
pub(super) fn finish_file(fd: &OwnedFd, meta: &Meta, path: &[u8]) -> Result<()> {
    fs::fchown(
        fd,
        Some(fs::Uid::from_raw(meta.uid)),
        Some(fs::Gid::from_raw(meta.gid)),
    )
    .context(|| format!("chown {}", show(path)))?;
    fs::fchmod(fd, Mode::from_raw_mode(meta.mode)).context(|| format!("chmod {}", show(path)))?;
    set_xattrs(fd, meta, path)?;
    fs::futimens(fd, &meta.times()).context(|| format!("set mtime of {}", show(path)))
}

/// Runs `make` in `dir`; when the name exists, removes it (tar's "last one
/// wins"; a directory's tree too with `trees`) and runs `make` again.
fn create<T>(
    dir: BorrowedFd<'_>,
    path: &[u8],
    name: &[u8],
    what: &str,
    trees: bool,
    make: impl Fn(BorrowedFd<'_>) -> rustix::io::Result<T>,
) -> Result<T> {
    let made = match make(dir) {
        Err(Errno::EXIST) => {
            remove_existing(dir, path, name, what, trees)?;
            make(dir)
        }
        other => other,
    };
    made.context(|| format!("create {what} {}", show(path)))
}

/// Removes what is at `name` in `dir` so that an entry can take its place; a
/// directory only when it is empty, unless `trees` (a layer's entry
/// replaces a lower layer's whole tree).
fn remove_existing(
    dir: BorrowedFd<'_>,
    path: &[u8],
    name: &[u8],
    what: &str,
    trees: bool,
) -> Result<()> {
    let st = fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .context(|| format!("stat {}", show(path)))?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        if trees {
            return remove_tree(dir, name, path);
        }
        match fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(()),
            Err(Errno::NOTEMPTY | Errno::EXIST) => Err(Error::msg(format!(
                "import: entry {}: cannot replace a non-empty directory with a {what}",
                quote(path)
            ))),
            Err(e) => Err(Error::os(format!("remove directory {}", show(path)), e)),
        }
    } else {
        fs::unlinkat(dir, name, AtFlags::empty()).context(|| format!("remove {}", show(path)))
    }
}

/// Removes `name` in `dir` (shown as `path`) and, when it is a directory,
/// everything below it: each directory opened with `O_NOFOLLOW` below the
/// one before, so a symlink is removed, never followed. Gone already: done.
fn remove_tree(dir: BorrowedFd<'_>, name: &[u8], path: &[u8]) -> Result<()> {
    match fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(Error::os(format!("remove {}", show(path)), e)),
    }
    let sub = fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| format!("open directory {}", show(path)))?;
    let mut children = Vec::new();
    crate::fsutil::for_each_name(sub.as_fd(), |child| children.push(child.to_vec()))
        .context(|| format!("list directory {}", show(path)))?;
    for child in children {
        let mut child_path = path.to_vec();
        child_path.push(b'/');
        child_path.extend_from_slice(&child);
        remove_tree(sub.as_fd(), &child, &child_path)?;
    }
    fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
        .context(|| format!("remove directory {}", show(path)))
}

/// A whiteout's name prefix (OCI image spec, "Whiteouts"): `.wh.NAME`
/// hides `NAME` of the layers below.
pub(super) const WHITEOUT: &[u8] = b".wh.";
/// The opaque whiteout: its directory hides what the layers below put in it.
pub(super) const OPAQUE: &[u8] = b".wh..wh..opq";
/// The prefix of aufs's own metadata names (`.wh..wh.plnk`), skipped.
pub(super) const AUFS_META: &[u8] = b".wh..wh.";

/// What one layer wrote so far (see [`Writer::opaque`]): every entry's path
/// and its parents'.
#[derive(Debug, Default)]
pub(super) struct Layer {
    written: std::collections::HashSet<Vec<u8>>,
}

impl Layer {
    /// Notes that this layer has entry `path` (and so its parents).
    pub fn written(&mut self, path: &[u8]) {
        let mut end = path.len();
        loop {
            if !self.written.insert(path[..end].to_vec()) {
                return; // so are its parents
            }
            match path[..end].iter().rposition(|&b| b == b'/') {
                Some(i) => end = i,
                None => return,
            }
        }
    }
}

/// Sets the xattrs of `meta` on an open file or directory.
fn set_xattrs(fd: &OwnedFd, meta: &Meta, path: &[u8]) -> Result<()> {
    for (key, value) in &meta.xattrs {
        skip_unsupported(fs::fsetxattr(fd, &key[..], value, XattrFlags::empty()))
            .context(|| format!("set xattr {} of {}", show(key), show(path)))?;
    }
    Ok(())
}

/// An xattr the filesystem does not support (an unknown namespace such as
/// `bogus.x`, a feature compiled out) is skipped, as docker does, rather than
/// failing the whole import; any other error counts.
fn skip_unsupported(result: rustix::io::Result<()>) -> rustix::io::Result<()> {
    match result {
        Err(Errno::OPNOTSUPP) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, &'static str> {
        let mut out = Vec::new();
        normalize(raw.as_bytes(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn normalize_strips_and_refuses() {
        assert_eq!(norm("/etc/passwd"), Ok("etc/passwd".into()));
        assert_eq!(norm("./usr//bin/./sh"), Ok("usr/bin/sh".into()));
        assert_eq!(norm("./"), Ok(String::new()));
        assert_eq!(norm("/"), Ok(String::new()));
        assert_eq!(norm("a/../b"), Err(ESCAPES));
        assert_eq!(norm("../x"), Err(ESCAPES));
        assert_eq!(norm("/.."), Err(ESCAPES));
        assert_eq!(norm("a/..."), Ok("a/...".into()));
        assert_eq!(norm("a..b/c"), Ok("a..b/c".into()));
    }

    #[test]
    fn show_escapes_control_characters() {
        assert_eq!(show(b"usr/bin/sh"), "usr/bin/sh");
        assert_eq!(show(b"a\nb\x1b[31m\x7f"), "a\\nb\\u{1b}[31m\\u{7f}");
    }

    #[test]
    fn split_parent_and_name() {
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"c"), (&b""[..], &b"c"[..]));
    }
}
