//! The store: a directory on btrfs that holds images, containers and state.
//!
//! Layout (fixed, see `docs/architecture.md`):
//!
//! ```text
//! ROOT/images/NAME          read-only subvolumes (BTRFS_SUBVOL_RDONLY)
//! ROOT/containers/ID        writable snapshots of an image
//! ROOT/state/containers/    ID.json records and ID.lock run locks
//! ROOT/state/names/         NAME -> ID symlinks (a name is taken atomically)
//! ROOT/images/.import-ID    an import in progress (hidden, not an image yet)
//! ROOT/tmp/                 import locks
//! ROOT/pool/UUID/ID         spare snapshots of the image with that UUID (see `pool`)
//! ROOT/trash/ID             snapshots of removed containers, waiting to be destroyed
//! ROOT/trash.lock           held by the one background process emptying the trash
//! ```

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::error::{Context, Error, Result};
use crate::fsutil;

/// The default store root when neither `--root` nor `TUPPER_ROOT` is given.
pub const DEFAULT_ROOT: &str = "/var/lib/tupper";

/// How to make a store, for error messages.
const MAKE_STORE_ADVICE: &str =
    "make one with: truncate -s 2G FILE && mkfs.btrfs FILE && tupper --root DIR attach FILE, where FILE is a new file outside DIR";

/// An open store. Cheap to open; holds directory fds of its parts.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    pub(crate) images: OwnedFd,
    pub(crate) containers: OwnedFd,
    pub(crate) records: OwnedFd,
    pub(crate) names: OwnedFd,
    pub(crate) tmp: OwnedFd,
    pub(crate) pool: OwnedFd,
    pub(crate) trash: OwnedFd,
}

impl Store {
    /// Opens the store at `root`, which must exist and be on btrfs; creates the
    /// layout's directories on first use.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref();
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| Error::os("get the current directory", e))?
                .join(root)
        };
        let root_fd = match fsutil::open_dir(rustix::fs::CWD, &root) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                return Err(Error::msg(format!(
                "open store {}: it does not exist; it must be a directory on a btrfs filesystem",
                root.display()
            ))
                .with_advice(MAKE_STORE_ADVICE.replace("DIR", &root.display().to_string())))
            }
            Err(e) => return Err(Error::os(format!("open store {}", root.display()), e)),
        };
        let on_btrfs = tupper_ioctl::is_btrfs(root_fd.as_fd())
            .map_err(|e| Error::os(format!("statfs store {}", root.display()), e))?;
        if !on_btrfs {
            return Err(
                Error::msg(format!("store {} is not on btrfs", root.display()))
                    .with_advice(MAKE_STORE_ADVICE.replace("DIR", &root.display().to_string())),
            );
        }
        let dir = |parent: BorrowedFd<'_>, name: &str, shown: &str| {
            fsutil::ensure_dir(parent, name, 0o700).map_err(|e| {
                Error::os(
                    format!("create store directory {}/{shown}", root.display()),
                    e,
                )
            })
        };
        let state = dir(root_fd.as_fd(), "state", "state")?;
        Ok(Store {
            images: dir(root_fd.as_fd(), "images", "images")?,
            containers: dir(root_fd.as_fd(), "containers", "containers")?,
            records: dir(state.as_fd(), "containers", "state/containers")?,
            names: dir(state.as_fd(), "names", "state/names")?,
            tmp: dir(root_fd.as_fd(), "tmp", "tmp")?,
            pool: dir(root_fd.as_fd(), "pool", "pool")?,
            trash: dir(root_fd.as_fd(), "trash", "trash")?,
            root,
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of an image subvolume.
    pub fn image_path(&self, name: &str) -> PathBuf {
        self.root.join("images").join(name)
    }

    /// The host path of a container's snapshot.
    pub fn container_path(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// The state directory (records, locks, leases).
    pub fn state_path(&self) -> PathBuf {
        self.root.join("state")
    }
}

/// Destroys subvolume `dir/name`, tolerating one that is already gone.
///
/// A container may have made subvolumes of its own in its snapshot (that
/// needs no capability, only a writable directory: `btrfs subvolume
/// create`, systemd-tmpfiles, a nested container runtime). The kernel
/// refuses to destroy a subvolume that holds another (`ENOTEMPTY`), so on
/// that error the nested ones are found and destroyed first.
pub(crate) fn destroy_subvolume(dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<()> {
    let cname = fsutil::cstring("subvolume name", name)?;
    destroy_subvolume_c(dir, &cname, shown)
}

fn destroy_subvolume_c(dir: BorrowedFd<'_>, name: &CStr, shown: &str) -> Result<()> {
    let destroy = || tupper_ioctl::subvol_destroy(dir, name);
    let result = match destroy() {
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
            destroy_nested(dir, name, shown)?;
            destroy()
        }
        other => other,
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(Error::os(format!("delete subvolume {shown}"), e)),
    }
}

/// Destroys every subvolume nested in subvolume `dir/name`: a walk of its
/// directories (never through a symlink), where a directory whose inode is
/// `BTRFS_FIRST_FREE_OBJECTID` is the root of another subvolume. Directories
/// are opened only when their turn comes, so the open fds stay about the
/// depth of the tree.
fn destroy_nested(dir: BorrowedFd<'_>, name: &CStr, shown: &str) -> Result<()> {
    use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
    let open = |parent: BorrowedFd<'_>, name: &CStr, shown: &str| {
        rfs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::os(format!("open {shown}"), e))
    };
    let root = std::rc::Rc::new(open(dir, name, shown)?);
    let mut pending = vec![(root, None::<CString>, shown.to_string())];
    while let Some((parent, child, path)) = pending.pop() {
        let here = match child {
            Some(name) => std::rc::Rc::new(open(parent.as_fd(), &name, &path)?),
            None => parent,
        };
        let entries =
            rfs::Dir::read_from(here.as_fd()).map_err(|e| Error::os(format!("list {path}"), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::os(format!("list {path}"), e))?;
            let entry_name = entry.file_name();
            if matches!(entry_name.to_bytes(), b"." | b"..")
                || !matches!(entry.file_type(), FileType::Directory | FileType::Unknown)
            {
                continue;
            }
            let inner = format!("{path}/{}", entry_name.to_string_lossy());
            let st = rfs::statat(here.as_fd(), entry_name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| Error::os(format!("stat {inner}"), e))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                continue;
            }
            if st.st_ino == u64::from(linux_raw_sys::btrfs::BTRFS_FIRST_FREE_OBJECTID) {
                destroy_subvolume_c(here.as_fd(), entry_name, &inner)?;
            } else {
                pending.push((here.clone(), Some(entry_name.to_owned()), inner));
            }
        }
    }
    Ok(())
}

impl Store {
    /// Destroys the snapshots of removed containers waiting in `ROOT/trash`.
    ///
    /// Removing a container renames its snapshot there first: a rename takes
    /// btrfs's subvolume semaphore shared, as a snapshot being made does, while a
    /// destroy takes it exclusively and so waits for any snapshot commit in
    /// flight (a pool refill). `tupper run --rm` leaves the destroy to a
    /// background process; anything may empty the trash, as every entry in it
    /// is dead.
    ///
    /// An entry that cannot be destroyed does not stop the others; the first
    /// error is returned once all were tried.
    pub fn empty_trash(&self) -> Result<()> {
        let entries = fsutil::list_dir(self.trash.as_fd())
            .map_err(|e| Error::os(format!("list {}/trash", self.root.display()), e))?;
        let mut first_error = None;
        for e in entries {
            if let Err(err) = destroy_subvolume(self.trash.as_fd(), &e, &format!("trash/{e}")) {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Limits what container `id` writes to its root, `rootfs` (`--storage-opt
    /// size=`): the exclusive bytes of its subvolume's qgroup, which with
    /// btrfs simple quotas are exactly what it wrote (what it shares with its
    /// image is its image's). A write past the limit fails with `EDQUOT`.
    ///
    /// Quotas off, the first such container enables simple quotas on the
    /// store's filesystem (docker's btrfs driver enables full qgroups the
    /// same way): every existing subvolume gets its qgroup; snapshots cost
    /// what they cost before (full qgroups would triple them, so a store
    /// whose quotas are off is never given those; one whose owner turned
    /// them on keeps them). The one-time change stays (docs/decisions.md).
    pub(crate) fn limit_storage(&self, rootfs: BorrowedFd<'_>, id: &str, bytes: u64) -> Result<()> {
        let what = || format!("limit the storage of containers/{id} to {bytes} bytes");
        match tupper_ioctl::qgroup_limit_exclusive(rootfs, bytes) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                tupper_ioctl::quota_enable_simple(rootfs).map_err(|e| {
                    let old_kernel = e.raw_os_error() == Some(libc::EINVAL);
                    let err = Error::os(
                        format!(
                            "enable simple quotas on the filesystem of {}",
                            self.root.display()
                        ),
                        e,
                    );
                    match old_kernel {
                        true => err.with_advice(
                            "simple quotas need Linux 6.7 or later; else enable quotas on it \
                             yourself (btrfs quota enable), or leave out --storage-opt",
                        ),
                        false => err,
                    }
                })?;
                tupper_ioctl::qgroup_limit_exclusive(rootfs, bytes).context(what)
            }
            other => other.context(what),
        }
    }

    /// What container `id` wrote to its root as its storage limit counts it
    /// (the exclusive bytes of its subvolume's qgroup; `--storage-opt
    /// size`), or `None` without quotas or a qgroup.
    pub fn storage_used(&self, id: &str) -> Result<Option<u64>> {
        let root = fsutil::open_dir(self.containers.as_fd(), id)
            .context(|| format!("open containers/{id}"))?;
        let info = tupper_ioctl::subvol_info(root.as_fd())
            .context(|| format!("subvolume info containers/{id}"))?;
        let usage = tupper_ioctl::qgroup_usage(root.as_fd(), info.id)
            .context(|| format!("read the qgroup of containers/{id}"))?;
        Ok(usage.map(|u| u.exclusive))
    }

    /// Empties the trash between container starts: the background work of
    /// `tupper run --rm`.
    ///
    /// A destroy costs the kernel ~0.5 ms of CPU (it drops the page cache
    /// the pool warmed in that snapshot) and takes btrfs locks a start needs;
    /// made while the next container started, it slowed back-to-back starts
    /// (~4%, docs/performance.md). So each round of destroys waits for
    /// a quiet moment first, as a pool refill does ([`Store::wait_until_idle`]:
    /// no start for 20 ms, at most 2 s, so a sustained run of starts still
    /// gets its trash emptied, every 2 s).
    ///
    /// One process at a time does it, under `ROOT/trash.lock` (not waited
    /// for): the others return at once and leave their snapshot to it. The
    /// holder lists the trash once more after letting the lock go, so a
    /// snapshot that came while it held the lock is never left behind. An
    /// entry that cannot be destroyed is skipped (`tupper rm` reports it).
    pub fn empty_trash_between_starts(&self) {
        let Ok(root) = fsutil::open_dir(rustix::fs::CWD, &self.root) else {
            return;
        };
        let mut failed: Vec<String> = Vec::new();
        let waiting = |failed: &[String]| {
            fsutil::list_dir(self.trash.as_fd())
                .unwrap_or_default()
                .into_iter()
                .filter(|e| !failed.contains(e))
                .collect::<Vec<_>>()
        };
        loop {
            let Ok(Some(lock)) = fsutil::FileLock::acquire(root.as_fd(), TRASH_LOCK, true, false)
            else {
                return;
            };
            // Waits only when there is something to destroy: after the last
            // round, an empty trash ends the loop at once.
            while !waiting(&failed).is_empty() {
                self.wait_until_idle(&|| false);
                let entries = waiting(&failed);
                for e in entries {
                    if destroy_subvolume(self.trash.as_fd(), &e, &format!("trash/{e}")).is_err() {
                        failed.push(e);
                    }
                }
            }
            drop(lock);
            if waiting(&failed).is_empty() {
                return;
            }
        }
    }
}

/// The lock of the process emptying the trash, in the store's root.
const TRASH_LOCK: &str = "trash.lock";
