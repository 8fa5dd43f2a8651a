//! Spare network namespaces, made ahead, so that a start joins one (`setns`)
//! instead of making its own (`CLONE_NEWNET`): the kernel's setup of a network
//! namespace (loopback, sysctl tables, routing and netfilter state) and the
//! container's `lo` up cost ~1 ms of every start here (measured:
//! docs/performance.md).
//!
//! Layout: `ROOT/netns/ID` is a spare: an empty file on which the namespace's
//! nsfs file is bind-mounted (as `ip netns add` does), with `lo` up and
//! nothing else in it. `ROOT/netns.lock` is the refill lock.
//!
//! - take: `open` the file, then `umount2(MNT_DETACH)` it, then unlink it. Of
//!   several takers of one spare only one `umount2` succeeds: the others drop
//!   what they opened. A taker that opened the file before the refill mounted
//!   on it holds a plain file, not a namespace, and drops it too (the spare
//!   is lost, never shared). So a namespace goes to one container only.
//! - refill: under the refill lock (non-blocking: one refiller at a time), a
//!   helper thread unshares a network namespace, sets its `lo` up, creates
//!   the file (`O_EXCL`) and bind-mounts `/proc/thread-self/ns/net` on it.
//!   Files that are not a mount of a namespace (a refill that crashed between
//!   the two steps) are removed first.
//! - clean: [`clean`] unmounts and removes every spare; `detach` calls it
//!   before it unmounts the store.
//!
//! The size is `TUPPER_NETNS_POOL` (default [`DEFAULT_SIZE`]; `0` turns it off).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::mount::UnmountFlags;

use crate::error::{Context, Error, Result};
use crate::fsutil::{self, FileLock};
use crate::names;
use crate::store::Store;

/// Spare network namespaces kept unless `TUPPER_NETNS_POOL` says otherwise.
pub const DEFAULT_SIZE: usize = 16;

/// `statfs` magic of nsfs, the filesystem of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// The pool size from `TUPPER_NETNS_POOL`.
pub fn configured_size() -> usize {
    std::env::var("TUPPER_NETNS_POOL")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_SIZE)
}

/// The pool directory of the store at `root`.
fn pool_dir(root: &Path) -> PathBuf {
    root.join("netns")
}

/// Whether `fd` is a namespace file (nsfs).
fn is_namespace(fd: &OwnedFd) -> bool {
    rfs::fstatfs(fd).is_ok_and(|st| st.f_type == NSFS_MAGIC)
}

/// The spares' names in `dir` (container-id shaped), or none.
fn spares(dir: &Path) -> Vec<String> {
    let Ok(fd) = fsutil::open_dir(rfs::CWD, dir) else {
        return Vec::new();
    };
    fsutil::list_dir(fd.as_fd())
        .unwrap_or_default()
        .into_iter()
        .filter(|n| names::is_id(n))
        .collect()
}

impl Store {
    /// Takes a spare network namespace (see the module doc); `None` when the
    /// pool has none.
    pub(crate) fn take_netns(&self) -> Option<OwnedFd> {
        let dir = pool_dir(self.root());
        for name in spares(&dir) {
            let path = dir.join(&name);
            let Ok(fd) = rfs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
                continue;
            };
            // Only one taker's unmount succeeds: the spare is its alone.
            if rustix::mount::unmount(&path, UnmountFlags::DETACH).is_err() {
                continue;
            }
            let _ = rfs::unlink(&path);
            if is_namespace(&fd) {
                return Some(fd);
            }
        }
        None
    }

    /// Whether the pool holds fewer than half of `size` spares and no refill
    /// is at work (a background process forked only to find the refill lock
    /// taken would stay a zombie until its parent's container ends).
    pub fn netns_pool_low(&self, size: usize) -> bool {
        size > 0
            && spares(&pool_dir(self.root())).len() < size.div_ceil(2)
            && !fsutil::open_dir(rfs::CWD, self.root())
                .is_ok_and(|root| fsutil::is_locked(root.as_fd(), "netns.lock"))
    }

    /// Fills the pool of network namespaces up to `size`. Returns at once when
    /// another process is refilling it.
    pub fn refill_netns_pool(&self, size: usize) -> Result<()> {
        if size == 0 {
            return Ok(());
        }
        let root = fsutil::open_dir(rfs::CWD, self.root())
            .context(|| format!("open store {}", self.root().display()))?;
        let Some(_lock) = FileLock::acquire(root.as_fd(), "netns.lock", true, false)
            .context(|| "lock netns.lock".to_string())?
        else {
            return Ok(());
        };
        let dir = pool_dir(self.root());
        fsutil::ensure_dir(root.as_fd(), "netns", 0o700)
            .context(|| "create directory netns".to_string())?;
        let mut ready = 0;
        for name in spares(&dir) {
            let path = dir.join(&name);
            let spare = rfs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .is_ok_and(|fd| is_namespace(&fd));
            if spare {
                ready += 1;
            } else {
                // A refill crashed between the file and its mount.
                let _ = rfs::unlink(&path);
            }
        }
        while ready < size {
            make_spare(&dir)?;
            ready += 1;
        }
        Ok(())
    }
}

/// Makes one spare in `dir`: a helper thread unshares a network namespace
/// (this thread's stays as it is), sets `lo` up in it and bind-mounts it.
fn make_spare(dir: &Path) -> Result<()> {
    let path = dir.join(names::new_id()?);
    std::thread::scope(|s| {
        s.spawn(|| {
            crate::launch::unshare_netns().context(|| "unshare a network namespace".to_string())?;
            crate::child::loopback_up(&crate::run::LOOPBACK_UP)
                .context(|| "bring lo up in a spare network namespace".to_string())?;
            drop(
                rfs::open(
                    &path,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .context(|| format!("create {}", path.display()))?,
            );
            rustix::mount::mount_bind("/proc/thread-self/ns/net", &path).map_err(|e| {
                let _ = rfs::unlink(&path);
                Error::os(
                    format!("bind-mount a network namespace on {}", path.display()),
                    e,
                )
            })
        })
        .join()
        .unwrap_or_else(|_| {
            Err(Error::msg(
                "make a spare network namespace: thread panicked",
            ))
        })
    })
}

/// Unmounts and removes every spare network namespace of the store at
/// `root` (before the store itself is unmounted).
pub fn clean(root: &Path) {
    let dir = pool_dir(root);
    for name in spares(&dir) {
        let path = dir.join(&name);
        let _ = rustix::mount::unmount(&path, UnmountFlags::DETACH);
        let _ = rfs::unlink(&path);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nsfs_magic_is_the_kernels() {
        assert_eq!(super::NSFS_MAGIC, linux_raw_sys::general::NSFS_MAGIC as i64);
    }
}
