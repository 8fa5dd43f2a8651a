//! `tupper import NAME DIR`: copies a directory tree into the image root with
//! the same writer, and so the same rules and metadata, as an archive.
//!
//! The source is walked with directory fds (`openat` + `getdents`), every entry
//! is `lstat`ed relative to its directory, and nothing of the source is opened
//! through a symlink (`O_NOFOLLOW`). Files with more than one link are
//! remembered by (device, inode) so that their later names become hard links.

use std::cell::Cell;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self, AtFlags, Dir, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;

use super::tar_out::TarOut;
use super::write::{show, Meta, Special, Writer};
use super::{Progress, Reporter, Stats, DATA_BUFFER};
use crate::error::{Context, Error, Result};

/// Copies the tree at `source` into `root` (see [`super::copy_tree`]);
/// errors show the source as `shown`.
pub(super) fn copy_tree(
    source: &Path,
    shown: &Path,
    root: BorrowedFd<'_>,
    from_container: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Stats> {
    let top = open_top(source, "open source directory")?;
    let consumed = Cell::new(0u64);
    let (out, dest) = to_dir(root)?;
    let copier = Copier::new(
        shown,
        from_container,
        out,
        dest,
        Vec::new(),
        &consumed,
        progress,
    );
    copier.copy_top(top)
}

/// Writes the tree at `source` (a container's root) to `out` as a tar
/// stream (see [`super::export_tree`]).
pub(super) fn export_tree(source: &Path, out: &mut dyn std::io::Write) -> Result<Stats> {
    let top = open_top(source, "open")?;
    let consumed = Cell::new(0u64);
    let mut progress = |_| {};
    let mut copier = Copier::new(
        source,
        false,
        Out::Tar(TarOut::new(out)),
        (u64::MAX, u64::MAX),
        Vec::new(),
        &consumed,
        &mut progress,
    );
    copier.live = true;
    copier.copy_top(top)
}

/// Writes entry `name` of directory `dir` (shown as `shown`), and all below
/// it, to `out` as a tar stream under its own name (see
/// [`super::export_entry`]).
pub(super) fn export_entry(
    dir: BorrowedFd<'_>,
    name: &str,
    shown: &Path,
    out: &mut dyn std::io::Write,
) -> Result<Stats> {
    let consumed = Cell::new(0u64);
    let mut progress = |_| {};
    let mut copier = Copier::new(
        shown,
        false,
        Out::Tar(TarOut::new(out)),
        (u64::MAX, u64::MAX),
        name.as_bytes().to_vec(),
        &consumed,
        &mut progress,
    );
    copier.live = true;
    copier.entry(dir, name.as_bytes())?;
    copier.out.finish()
}

/// Opens the directory a walk starts from; `what` names the operation.
fn open_top(source: &Path, what: &str) -> Result<OwnedFd> {
    fs::openat(
        CWD,
        source,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| format!("{what} {}", source.display()))
}

/// The writer of directory `dest`, and its (device, inode).
fn to_dir(dest: BorrowedFd<'_>) -> Result<(Out<'_>, (u64, u64))> {
    let st = fs::fstat(dest).context(|| "stat the copy's destination".to_string())?;
    Ok((Out::Dir(Writer::new(dest)?), (st.st_dev, st.st_ino)))
}

/// Where the walk writes: a directory (`import`, `cp`) or a tar stream
/// (`export`).
enum Out<'r> {
    Dir(Writer<'r>),
    Tar(TarOut<'r>),
}

impl Out<'_> {
    fn dir(&mut self, path: &[u8], meta: &Meta) -> Result<()> {
        match self {
            Out::Dir(w) => w.dir(path, meta),
            Out::Tar(t) => t.dir(path, meta),
        }
    }

    fn symlink(&mut self, path: &[u8], target: &[u8], meta: &Meta) -> Result<()> {
        match self {
            Out::Dir(w) => w.symlink(path, target, meta),
            Out::Tar(t) => t.symlink(path, target, meta),
        }
    }

    fn special(&mut self, path: &[u8], kind: Special, meta: &Meta) -> Result<()> {
        match self {
            Out::Dir(w) => w.special(path, kind, meta),
            Out::Tar(t) => t.special(path, kind, meta),
        }
    }

    fn stats(&self) -> Stats {
        match self {
            Out::Dir(w) => w.stats(),
            Out::Tar(t) => t.stats(),
        }
    }

    fn finish(self) -> Result<Stats> {
        match self {
            Out::Dir(w) => w.finish(),
            Out::Tar(t) => t.finish(),
        }
    }
}

/// Copies one entry that is not a directory, `name` in `dir` (shown as
/// `shown`), to `dest_name` in `dest`, by the tree copy's rules: a symlink
/// as a symlink, owner, mode, times and extended attributes kept, nothing
/// of the destination followed.
pub(super) fn copy_one(
    dir: BorrowedFd<'_>,
    name: &str,
    dest: BorrowedFd<'_>,
    dest_name: &str,
    shown: &Path,
    from_container: bool,
) -> Result<Stats> {
    let consumed = Cell::new(0u64);
    let mut progress = |_| {};
    let path = dest_name.as_bytes().to_vec();
    let (out, dest) = to_dir(dest)?;
    let mut copier = Copier::new(
        shown,
        from_container,
        out,
        dest,
        path,
        &consumed,
        &mut progress,
    );
    copier.entry(dir, name.as_bytes())?;
    copier.out.finish()
}

/// Owner, mode and mtime from an `lstat`.
fn meta_of(st: &Stat) -> Meta {
    Meta {
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime: st.st_mtime,
        mtime_nsec: u32::try_from(st.st_mtime_nsec).unwrap_or(0),
        xattrs: Vec::new(),
    }
}

/// The walk's state.
struct Copier<'a, 'r> {
    source: &'a Path,
    /// The source is a container's (`tupper cp` out of it): nothing of it
    /// may give the host's root more than files of its own (see [`Copier::meta`]).
    from_container: bool,
    /// (device, inode) of the image root: a source that contains the store
    /// (`/`, the store's root) contains the image being filled, which is skipped.
    dest: (u64, u64),
    /// The source is a container's tree, whose command may change it during
    /// the walk (`cp` out of it, `export`): an entry that went since its
    /// directory was read is left out, not an error.
    live: bool,
    out: Out<'r>,
    /// The current entry's path relative to the source (and the image root).
    path: Vec<u8>,
    /// (device, inode) of files with several links -> the path they were copied to.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Copy buffer for the read/write fallback, allocated on first use.
    buf: Vec<u8>,
    consumed: &'a Cell<u64>,
    reporter: Reporter<'a>,
}

impl<'a, 'r> Copier<'a, 'r> {
    /// A copier of `source` into `out` (the image root, the directory of
    /// `tupper cp`'s destination, whose (device, inode) is `dest`, or a tar
    /// stream), starting at relative path `path`.
    fn new(
        source: &'a Path,
        from_container: bool,
        out: Out<'r>,
        dest: (u64, u64),
        path: Vec<u8>,
        consumed: &'a Cell<u64>,
        progress: &'a mut dyn FnMut(Progress),
    ) -> Copier<'a, 'r> {
        Copier {
            source,
            from_container,
            dest,
            live: from_container,
            out,
            path,
            links: HashMap::new(),
            buf: Vec::new(),
            consumed,
            reporter: Reporter {
                consumed,
                next: 0,
                progress,
            },
        }
    }

    /// Copies the directory `top` (the source), its metadata and its tree.
    fn copy_top(mut self, top: OwnedFd) -> Result<Stats> {
        let st = fs::fstat(&top).context(|| format!("stat {}", self.source.display()))?;
        let mut meta = self.meta(&st);
        if !self.from_container {
            meta.xattrs = read_xattrs(Xattrs::Fd(top.as_fd()), &self.source_name())?;
        }
        self.out.dir(b"", &meta)?;
        self.walk(top)?;
        let stats = self.out.finish()?;
        self.reporter.report(stats.entries);
        Ok(stats)
    }
    /// The metadata a copy gets: the source's, or, from a container, no
    /// set-user-ID or set-group-ID bit and the copier's own owner (a
    /// container's file must not become a set-user-ID file of the host's
    /// root); extended attributes, which hold file capabilities, are not
    /// read then either.
    fn meta(&self, st: &Stat) -> Meta {
        let mut meta = meta_of(st);
        if self.from_container {
            meta.mode &= !0o6000;
            meta.uid = rustix::process::geteuid().as_raw();
            meta.gid = rustix::process::getegid().as_raw();
        }
        meta
    }

    /// Extended attributes of the entry, unless it is a container's.
    fn xattrs(&self, from: Xattrs<'_>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match self.from_container {
            true => Ok(Vec::new()),
            false => read_xattrs(from, &self.source_name()),
        }
    }

    /// The current entry's source path, for messages.
    fn source_name(&self) -> String {
        if self.path.is_empty() {
            self.source.display().to_string()
        } else {
            self.source.join(&*show(&self.path)).display().to_string()
        }
    }

    /// Whether `e` says that the entry went since its directory was read,
    /// which is no error when the source is a container's (see
    /// [`Copier::live`]); from a host directory (`import DIR`, `cp` into a
    /// container) the copy must be whole, and it fails.
    fn gone(&self, e: Errno) -> bool {
        self.live && e == Errno::NOENT
    }

    /// Copies the entries of the directory `dirfd` (at `self.path`).
    fn walk(&mut self, dirfd: OwnedFd) -> Result<()> {
        let mut dir =
            Dir::new(dirfd).context(|| format!("read directory {}", self.source_name()))?;
        while let Some(entry) = dir.read() {
            let entry = match entry {
                Ok(entry) => entry,
                // A running container's directory, removed meanwhile.
                Err(e) if self.gone(e) => break,
                Err(e) => {
                    return Err(Error::os(
                        format!("read directory {}", self.source_name()),
                        e,
                    ))
                }
            };
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let len = self.path.len();
            if len > 0 {
                self.path.push(b'/');
            }
            self.path.extend_from_slice(name);
            let dirfd = dir
                .fd()
                .context(|| format!("read directory {}", self.source_name()))?;
            let result = self.entry(dirfd, name);
            self.path.truncate(len);
            result?;
        }
        Ok(())
    }

    /// Copies one entry, `name` in the source directory `dir`.
    fn entry(&mut self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<()> {
        let st = match fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if self.gone(e) => return Ok(()),
            Err(e) => return Err(Error::os(format!("stat {}", self.source_name()), e)),
        };
        let file_type = FileType::from_raw_mode(st.st_mode);
        let mut meta = self.meta(&st);

        if file_type != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                return match &mut self.out {
                    Out::Dir(w) => w.hard_link(&self.path, first, first),
                    Out::Tar(t) => t.hard_link(&self.path, first, &meta),
                };
            }
            if !matches!(file_type, FileType::Socket | FileType::Unknown) {
                self.links.insert(key, self.path.clone());
            }
        }

        match file_type {
            // The image being filled, inside the source: copying it into itself
            // would never end.
            FileType::Directory if (st.st_dev, st.st_ino) == self.dest => Ok(()),
            FileType::Directory => {
                let sub = match fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(e) if self.gone(e) => return Ok(()),
                    Err(e) => {
                        return Err(Error::os(
                            format!("open directory {}", self.source_name()),
                            e,
                        ))
                    }
                };
                meta.xattrs = self.xattrs(Xattrs::Fd(sub.as_fd()))?;
                self.out.dir(&self.path, &meta)?;
                self.walk(sub)
            }
            FileType::RegularFile => {
                let src = match fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY
                        | OFlags::NOFOLLOW
                        | OFlags::NOCTTY
                        | OFlags::NONBLOCK
                        | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(e) if self.gone(e) => return Ok(()),
                    Err(e) => return Err(Error::os(format!("open {}", self.source_name()), e)),
                };
                meta.xattrs = self.xattrs(Xattrs::Fd(src.as_fd()))?;
                let source_name = self.source_name();
                let entries = self.out.stats().entries;
                let (path, buf, consumed, reporter) =
                    (&self.path, &mut self.buf, self.consumed, &mut self.reporter);
                let writer = match &mut self.out {
                    Out::Dir(w) => w,
                    Out::Tar(t) => return t.file(path, &meta, &src),
                };
                writer.file(path, &meta, |dst| {
                    copy_data(
                        &src,
                        dst,
                        &source_name,
                        path,
                        buf,
                        consumed,
                        reporter,
                        entries,
                    )
                })?;
                self.reporter.tick(self.out.stats().entries);
                Ok(())
            }
            FileType::Symlink => {
                let target = match fs::readlinkat(dir, name, Vec::new()) {
                    Ok(target) => target,
                    Err(e) if self.gone(e) => return Ok(()),
                    Err(e) => {
                        return Err(Error::os(format!("read symlink {}", self.source_name()), e))
                    }
                };
                self.out.symlink(&self.path, target.as_bytes(), &meta)
            }
            // A container's device node is not made on the host.
            FileType::CharacterDevice | FileType::BlockDevice if self.from_container => Ok(()),
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let node = fs::openat(
                    dir,
                    name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .context(|| format!("open {}", self.source_name()))?;
                let proc_path = format!("/proc/self/fd/{}", node.as_raw_fd());
                meta.xattrs = self.xattrs(Xattrs::Path(&proc_path))?;
                let rdev = st.st_rdev;
                let special = match file_type {
                    FileType::CharacterDevice => Special::Char(fs::major(rdev), fs::minor(rdev)),
                    FileType::BlockDevice => Special::Block(fs::major(rdev), fs::minor(rdev)),
                    _ => Special::Fifo,
                };
                self.out.special(&self.path, special, &meta)
            }
            // Sockets belong to a running program; they are not copied.
            FileType::Socket | FileType::Unknown => Ok(()),
        }
    }
}

/// Copies the data of `src` into `dst`: `copy_file_range` (a reflink on the
/// same btrfs), else read/write. Returns the bytes copied.
#[allow(clippy::too_many_arguments)]
fn copy_data(
    src: &OwnedFd,
    dst: &OwnedFd,
    source_name: &str,
    path: &[u8],
    buf: &mut Vec<u8>,
    consumed: &Cell<u64>,
    reporter: &mut Reporter<'_>,
    entries: u64,
) -> Result<u64> {
    const CHUNK: usize = 64 << 20;
    let mut total = 0u64;
    loop {
        match fs::copy_file_range(src, None, dst, None, CHUNK) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                total += n as u64;
                consumed.set(consumed.get() + n as u64);
                reporter.tick(entries);
            }
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::BADF)
                if total == 0 =>
            {
                break
            }
            Err(e @ (Errno::NOSPC | Errno::DQUOT | Errno::FBIG)) => {
                return Err(Error::os(format!("write {}", show(path)), e))
            }
            Err(e) => {
                return Err(Error::os(
                    format!("copy {source_name} to {}", show(path)),
                    e,
                ))
            }
        }
    }
    if buf.is_empty() {
        buf.resize(DATA_BUFFER, 0);
    }
    loop {
        let n = match rustix::io::read(src, &mut buf[..]) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(Errno::INTR | Errno::AGAIN) => continue,
            Err(e) => return Err(Error::os(format!("read {source_name}"), e)),
        };
        super::write::write_all(dst, &buf[..n], path)?;
        total += n as u64;
        consumed.set(consumed.get() + n as u64);
        reporter.tick(entries);
    }
}

/// Where extended attributes are read from.
enum Xattrs<'a> {
    /// An open file or directory.
    Fd(BorrowedFd<'a>),
    /// A `/proc/self/fd/N` path to an `O_PATH` fd (device nodes, fifos).
    Path(&'a str),
}

/// Reads all extended attributes; none when the filesystem has no support.
fn read_xattrs(from: Xattrs<'_>, name: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let list_size = match &from {
        Xattrs::Fd(fd) => fs::flistxattr_query(fd),
        Xattrs::Path(p) => fs::listxattr_query(*p),
    };
    let size = match list_size {
        Ok(size) => size,
        Err(Errno::OPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(Error::os(format!("list xattrs of {name}"), e)),
    };
    if size == 0 {
        return Ok(Vec::new());
    }
    let mut list = vec![0u8; size];
    let len = match &from {
        Xattrs::Fd(fd) => fs::flistxattr(fd, &mut list[..]),
        Xattrs::Path(p) => fs::listxattr(*p, &mut list[..]),
    }
    .context(|| format!("list xattrs of {name}"))?;
    list.truncate(len);

    let mut out = Vec::new();
    for key in list.split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let value_size = match &from {
            Xattrs::Fd(fd) => fs::fgetxattr_query(fd, key),
            Xattrs::Path(p) => fs::getxattr_query(*p, key),
        };
        let value_size = match value_size {
            Ok(size) => size,
            // Removed meanwhile.
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(Error::os(format!("read xattr {} of {name}", show(key)), e)),
        };
        let mut value = vec![0u8; value_size];
        if value_size > 0 {
            let n = match &from {
                Xattrs::Fd(fd) => fs::fgetxattr(fd, key, &mut value[..]),
                Xattrs::Path(p) => fs::getxattr(*p, key, &mut value[..]),
            }
            .context(|| format!("read xattr {} of {name}", show(key)))?;
            value.truncate(n);
        }
        out.push((key.to_vec(), value));
    }
    Ok(out)
}
