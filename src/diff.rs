//! `tupper diff` (docker's): what changed in a container's files since it was
//! made from its image, as `A` (added), `C` (changed) and `D` (deleted)
//! paths.
//!
//! A container is a btrfs snapshot of its image, and a snapshot starts with
//! the image's inodes as they are: the same inode numbers and the same
//! change times. So an entry is unchanged while its inode number, type and
//! `ctime` are the image's (every write, `chmod`, `chown`, link or extended
//! attribute change moves `ctime`; a file made again gets a new inode
//! number), and nothing of a file's data is read. Both trees are walked by
//! directory fds, nothing followed through a symlink (`O_NOFOLLOW`), as
//! `cp` walks a container: its files are the container's to change.
//!
//! As docker shows it: a directory is `C` when something below it changed
//! (its own times are not compared: tupper's start writes into `/etc`), or
//! its mode or owner did, or it was made again; everything below an added directory is listed as
//! added; a deleted directory is one `D` line. What tupper's start makes in
//! every container (`/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`, the
//! `/dev`, `/proc` and `/sys` mount points; docker's init layer) is left
//! out.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat};

use crate::container::Record;
use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::store::Store;

/// How an entry changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Not in the image (`A`).
    Added,
    /// In both, changed, or a directory with a change below (`C`).
    Changed,
    /// In the image only (`D`).
    Deleted,
}

impl Kind {
    /// docker's letter.
    pub fn letter(self) -> char {
        match self {
            Kind::Added => 'A',
            Kind::Changed => 'C',
            Kind::Deleted => 'D',
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// How.
    pub kind: Kind,
    /// The absolute path in the container (bytes: a name need not be UTF-8).
    pub path: Vec<u8>,
}

/// What tupper's start makes in every container's root: never listed.
const MADE_BY_THE_START: [&[u8]; 6] = [
    b"/dev",
    b"/proc",
    b"/sys",
    b"/etc/hostname",
    b"/etc/hosts",
    b"/etc/resolv.conf",
];

impl Store {
    /// The changes in container `name_or_id`'s files since it was made
    /// (`tupper diff`), sorted by path. Fails when its image was replaced
    /// or removed since (there is nothing left to compare with).
    pub fn diff_container(&self, name_or_id: &str) -> Result<Vec<Change>> {
        let rec = self.find_container(name_or_id)?;
        let what = format!("diff {name_or_id}");
        let (root, image) = self.container_and_image(&rec, &what)?;
        let mut out = Walk::both_trees(image?.as_fd(), root.as_fd(), &what)?.out;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The bytes of what container `rec` added or changed since it was
    /// made (docker's container size: its writable layer; what the start
    /// writes into every container left out), or of all its files when its
    /// image was removed or replaced since (they are all its own then).
    pub(crate) fn container_bytes(&self, rec: &Record) -> Result<u64> {
        Ok(self.container_bytes_on_image(rec)?.0)
    }

    /// [`Store::container_bytes`], and whether they are a layer over its
    /// image (false: all its files).
    pub(crate) fn container_bytes_on_image(&self, rec: &Record) -> Result<(u64, bool)> {
        let what = format!("size of container {}", rec.id);
        let (root, image) = self.container_and_image(rec, &what)?;
        match image {
            Ok(image) => Ok((
                Walk::both_trees(image.as_fd(), root.as_fd(), &what)?.bytes,
                true,
            )),
            Err(_) => Ok((crate::disk_usage::tree_bytes(root.as_fd(), &what)?, false)),
        }
    }

    /// Container `rec`'s root, and its image's when the container is still
    /// a snapshot of it (else the error that says why not); `what` names
    /// the operation in errors.
    fn container_and_image(&self, rec: &Record, what: &str) -> Result<(OwnedFd, Result<OwnedFd>)> {
        let root = fsutil::open_dir(self.containers.as_fd(), rec.id.as_str())
            .context(|| format!("{what}: open containers/{}", rec.id))?;
        let image = match fsutil::open_dir(self.images.as_fd(), rec.image.as_str()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                return Ok((
                    root,
                    Err(Error::msg(format!(
                        "{what}: its image {} was removed since it was made",
                        rec.image
                    ))),
                ))
            }
            Err(e) => return Err(Error::os(format!("{what}: open images/{}", rec.image), e)),
        };
        // The snapshot must be of this image, not of one it replaced.
        let ours = tupper_ioctl::subvol_info(root.as_fd())
            .context(|| format!("{what}: read the subvolume info of containers/{}", rec.id))?;
        let theirs = tupper_ioctl::subvol_info(image.as_fd())
            .context(|| format!("{what}: read the subvolume info of images/{}", rec.image))?;
        if ours.parent_uuid != theirs.uuid {
            return Ok((
                root,
                Err(Error::msg(format!(
                    "{what}: its image {} was replaced since it was made (import --force, commit --force)",
                    rec.image
                ))),
            ));
        }
        Ok((root, Ok(image)))
    }
}

/// A walk of both trees.
struct Walk<'a> {
    /// The path of the directories being compared ("" at the root).
    path: Vec<u8>,
    out: Vec<Change>,
    /// The sizes of the files (not directories) added or changed.
    bytes: u64,
    what: &'a str,
}

impl<'a> Walk<'a> {
    /// Compares container root `ctr` with the root of its image.
    fn both_trees(image: BorrowedFd<'_>, ctr: BorrowedFd<'_>, what: &'a str) -> Result<Walk<'a>> {
        let mut walk = Walk {
            path: Vec::new(),
            out: Vec::new(),
            bytes: 0,
            what,
        };
        walk.compare(Some(image), ctr)?;
        Ok(walk)
    }

    fn shown(&self) -> String {
        match self.path.is_empty() {
            true => "/".to_string(),
            false => String::from_utf8_lossy(&self.path).into_owned(),
        }
    }

    /// Compares directory `ctr` with `image` (`None`: it was added, and so
    /// is everything in it). Whether anything below changed.
    fn compare(&mut self, image: Option<BorrowedFd<'_>>, ctr: BorrowedFd<'_>) -> Result<bool> {
        let mut ctr_names = match names(ctr) {
            Ok(names) => names,
            // Removed by the container's command since it was opened.
            Err(rustix::io::Errno::NOENT) => Vec::new(),
            Err(e) => {
                return Err(Error::os(
                    format!("{}: read {}", self.what, self.shown()),
                    e,
                ))
            }
        };
        let mut image_names = match image {
            Some(fd) => names(fd).context(|| format!("{}: read {}", self.what, self.shown()))?,
            None => Vec::new(),
        };
        ctr_names.sort();
        image_names.sort();
        let mut changed = false;
        let (mut i, mut c) = (0, 0);
        while i < image_names.len() || c < ctr_names.len() {
            let order = match (image_names.get(i), ctr_names.get(c)) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            let len = self.path.len();
            let name = match order {
                std::cmp::Ordering::Less => &image_names[i],
                _ => &ctr_names[c],
            };
            self.path.push(b'/');
            self.path.extend_from_slice(name);
            let result = match (order, image) {
                (std::cmp::Ordering::Less, _) => {
                    i += 1;
                    Ok(self.record(Kind::Deleted))
                }
                (std::cmp::Ordering::Greater, _) | (_, None) => {
                    c += 1;
                    self.added(ctr, name)
                }
                (std::cmp::Ordering::Equal, Some(image)) => {
                    i += 1;
                    c += 1;
                    self.both(image, ctr, name)
                }
            };
            self.path.truncate(len);
            changed |= result?;
        }
        Ok(changed)
    }

    /// Records a change at `self.path`, unless the start made it; whether
    /// it counts.
    fn record(&mut self, kind: Kind) -> bool {
        if made_by_the_start(&self.path) {
            return false;
        }
        self.out.push(Change {
            kind,
            path: self.path.clone(),
        });
        true
    }

    /// `name` of `ctr` is not in the image: it is added, and all below it.
    fn added(&mut self, ctr: BorrowedFd<'_>, name: &[u8]) -> Result<bool> {
        let Some(st) = self.stat_live(ctr, name)? else {
            return Ok(false);
        };
        if !self.record(Kind::Added) {
            return Ok(false);
        }
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            if let Some(sub) = self.open_live(ctr, name)? {
                self.compare(None, sub.as_fd())?;
            }
        } else {
            self.bytes += st.st_size.max(0) as u64;
        }
        Ok(true)
    }

    /// `name` is in both: changed, or (a directory) something below it.
    fn both(&mut self, image: BorrowedFd<'_>, ctr: BorrowedFd<'_>, name: &[u8]) -> Result<bool> {
        if made_by_the_start(&self.path) {
            return Ok(false);
        }
        let a = self.stat(image, name)?;
        let Some(b) = self.stat_live(ctr, name)? else {
            return Ok(self.record(Kind::Deleted));
        };
        let (ta, tb) = (
            FileType::from_raw_mode(a.st_mode),
            FileType::from_raw_mode(b.st_mode),
        );
        if ta == FileType::Directory && tb == FileType::Directory {
            let sa = self.open(image, name)?;
            let Some(sb) = self.open_live(ctr, name)? else {
                return Ok(self.record(Kind::Deleted));
            };
            let below = self.compare(Some(sa.as_fd()), sb.as_fd())?;
            // Its mode or owner, or made again (a new inode).
            let own = a.st_ino != b.st_ino
                || a.st_mode != b.st_mode
                || a.st_uid != b.st_uid
                || a.st_gid != b.st_gid;
            return Ok((below || own) && self.record(Kind::Changed));
        }
        let same = ta == tb
            && a.st_ino == b.st_ino
            && a.st_ctime == b.st_ctime
            && a.st_ctime_nsec == b.st_ctime_nsec;
        if same {
            return Ok(false);
        }
        self.record(Kind::Changed);
        // A directory where the image had something else: its entries are new.
        if tb == FileType::Directory {
            if let Some(sub) = self.open_live(ctr, name)? {
                self.compare(None, sub.as_fd())?;
            }
        } else {
            self.bytes += b.st_size.max(0) as u64;
        }
        Ok(true)
    }

    /// [`Walk::stat`] of the container's side, which its running command
    /// may change during the walk: `None` when `name` went since the
    /// directory was read.
    fn stat_live(&self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<Option<Stat>> {
        match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::os(
                format!("{}: stat {}", self.what, self.shown()),
                e,
            )),
        }
    }

    /// [`Walk::open`] of the container's side: `None` when `name` went.
    fn open_live(&self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<Option<OwnedFd>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rfs::openat(dir, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(fd)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::os(
                format!("{}: open {}", self.what, self.shown()),
                e,
            )),
        }
    }

    fn stat(&self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<Stat> {
        rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .context(|| format!("{}: stat {}", self.what, self.shown()))
    }

    fn open(&self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd> {
        rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context(|| format!("{}: open {}", self.what, self.shown()))
    }
}

/// The names in directory `dir`.
fn names(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    fsutil::for_each_name(dir, |n| out.push(n.to_vec()))?;
    Ok(out)
}

/// Whether `path` is, or is below, what the start makes.
fn made_by_the_start(path: &[u8]) -> bool {
    MADE_BY_THE_START.iter().any(|m| {
        path.strip_prefix(*m)
            .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_start_makes_is_left_out_and_nothing_else() {
        for p in ["/dev", "/dev/null", "/etc/hosts", "/proc/1", "/sys"] {
            assert!(made_by_the_start(p.as_bytes()), "{p}");
        }
        for p in [
            "/devices",
            "/etc",
            "/etc/hosts.allow",
            "/etc/passwd",
            "/",
            "/system",
        ] {
            assert!(!made_by_the_start(p.as_bytes()), "{p}");
        }
    }
}
