//! Spare network namespaces, made ahead, so that a start joins one (`setns`)
//! instead of making its own (`CLONE_NEWNET`): the kernel's setup of a network
//! namespace (loopback, sysctl tables, routing and netfilter state) and the
//! container's `lo` up cost ~1 ms of every start here (measured:
//! docs/performance.md). Spares for bridge mode also hold their veth pair,
//! which saves a start the `RTM_NEWLINK` of the pair and the bridge's work
//! for a new port (1.3 ms here with a few ports, ~4.5 ms with 1,000).
//!
//! Layout: two kinds of pools, each spare an empty file on which the
//! namespace's nsfs file is bind-mounted (as `ip netns add` does):
//!
//! - `ROOT/netns/ID`: plain spares, with `lo` up and nothing else in them;
//!   refill lock `ROOT/netns.lock`. For `--net none`, and for bridge mode
//!   when its own pool is empty.
//! - `ROOT/netns/br-INODE-BRIDGE/ID`: bridge spares, for one bridge of one
//!   host network namespace (INODE: its nsfs inode): `lo` up, and a veth
//!   pair whose host end ([`crate::net::spare_host_veth`]: `ts` + 12
//!   characters of ID) is up on the bridge, with IPv6 off, and whose peer is
//!   `eth0` (ifindex 2), up, without an IPv6 link-local address. A start
//!   gives `eth0` its address and route, nothing more; it first checks that
//!   the host end is still up on its bridge, else it makes the pair again
//!   ([`crate::net::attach`]). Refill lock `refill.lock` in that directory.
//!   A spare's veth pair dies with its namespace (when the container that
//!   took it ends, or the spare is cleaned); the spares of a host namespace
//!   that is gone stay until `detach` (they then have no veth).
//!
//! - take: `open` the file, then `umount2(MNT_DETACH)` it, then unlink it. Of
//!   several takers of one spare only one `umount2` succeeds: the others drop
//!   what they opened. A taker that opened the file before the refill mounted
//!   on it holds a plain file, not a namespace, and drops it too (the spare
//!   is lost, never shared). So a namespace goes to one container only.
//! - refill: under the pool's refill lock (non-blocking: one refiller at a
//!   time), a helper thread unshares a network namespace, sets its `lo` up
//!   and opens it; this thread (in the host's namespace) adds the veth pair
//!   of a bridge spare, then creates the file (`O_EXCL`) and bind-mounts the
//!   namespace on it: a spare is visible only once it is complete. Files that
//!   are not a mount of a namespace (a refill that crashed between the two
//!   steps) are removed first. A refill that fails half-way leaves nothing:
//!   the namespace, and the veth pair in it, die with its last descriptor.
//! - clean: [`clean`] unmounts and removes every spare; `detach` calls it
//!   before it unmounts the store.
//!
//! The size of each pool is `TUPPER_NETNS_POOL` (default [`DEFAULT_SIZE`];
//! `0` turns both off).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::mount::UnmountFlags;

use crate::error::{Context, Error, Result};
use crate::fsutil::{self, FileLock};
use crate::names;
use crate::net::{self, SparePool};
use crate::store::Store;

/// Spare network namespaces kept unless `TUPPER_NETNS_POOL` says otherwise.
pub const DEFAULT_SIZE: usize = 64;

/// `statfs` magic of nsfs, the filesystem of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// The refill lock of a bridge pool, in its directory.
const BRIDGE_LOCK: &str = "refill.lock";

/// The pool size from `TUPPER_NETNS_POOL`.
pub fn configured_size() -> usize {
    std::env::var("TUPPER_NETNS_POOL")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_SIZE)
}

/// A spare network namespace taken from a pool.
#[derive(Debug)]
pub(crate) struct Spare {
    /// The namespace.
    pub(crate) fd: OwnedFd,
    /// Its name in the pool.
    pub(crate) id: String,
    /// Whether it came from a bridge pool (it should hold a veth pair).
    pub(crate) veth: bool,
}

/// The directory of the plain pool of the store at `root`.
fn plain_dir(root: &Path) -> PathBuf {
    root.join("netns")
}

/// The directory of a pool: plain, or the bridge pool `pool`.
fn pool_dir(root: &Path, pool: Option<&SparePool>) -> PathBuf {
    match pool {
        None => plain_dir(root),
        Some(p) => plain_dir(root).join(&p.dir),
    }
}

/// The directory and name of a pool's refill lock.
fn lock_of(root: &Path, pool: Option<&SparePool>) -> (PathBuf, &'static str) {
    match pool {
        None => (root.to_path_buf(), "netns.lock"),
        Some(_) => (pool_dir(root, pool), BRIDGE_LOCK),
    }
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

/// Takes a spare from `dir` (see the module doc).
fn take_from(dir: &Path) -> Option<(OwnedFd, String)> {
    for name in spares(dir) {
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
            return Some((fd, name));
        }
    }
    None
}

impl Store {
    /// Takes a spare network namespace (see the module doc): from the bridge
    /// pool `pool` if given and not empty, else a plain one; `None` when
    /// both are empty.
    pub(crate) fn take_netns(&self, pool: Option<&SparePool>) -> Option<Spare> {
        if pool.is_some() {
            if let Some((fd, id)) = take_from(&pool_dir(self.root(), pool)) {
                return Some(Spare { fd, id, veth: true });
            }
        }
        take_from(&plain_dir(self.root())).map(|(fd, id)| Spare {
            fd,
            id,
            veth: false,
        })
    }

    /// Whether a pool (plain, or the bridge pool `pool`) holds fewer than
    /// half of `size` spares and no refill is at work (a background process
    /// forked only to find the refill lock taken would stay a zombie until
    /// its parent's container ends).
    pub fn netns_pool_low(&self, size: usize, pool: Option<&SparePool>) -> bool {
        let (lock_dir, lock) = lock_of(self.root(), pool);
        size > 0
            && spares(&pool_dir(self.root(), pool)).len() < size.div_ceil(2)
            && !fsutil::open_dir(rfs::CWD, &lock_dir)
                .is_ok_and(|d| fsutil::is_locked(d.as_fd(), lock))
    }

    /// Fills a pool (plain, or the bridge pool `pool`) up to `size`. Returns
    /// at once when another process is refilling it. A bridge pool is filled
    /// only while its bridge exists (in the caller's network namespace).
    pub fn refill_netns_pool(&self, size: usize, pool: Option<&SparePool>) -> Result<()> {
        if size == 0 {
            return Ok(());
        }
        let root = fsutil::open_dir(rfs::CWD, self.root())
            .context(|| format!("open store {}", self.root().display()))?;
        let netns = fsutil::ensure_dir(root.as_fd(), "netns", 0o700)
            .context(|| "create directory netns".to_string())?;
        let (lock_dir, lock_name) = match pool {
            None => (root, "netns.lock"),
            Some(p) => (
                fsutil::ensure_dir(netns.as_fd(), &p.dir, 0o700)
                    .context(|| format!("create directory netns/{}", p.dir))?,
                BRIDGE_LOCK,
            ),
        };
        let Some(_lock) = FileLock::acquire(lock_dir.as_fd(), lock_name, true, false)
            .context(|| format!("lock {lock_name}"))?
        else {
            return Ok(());
        };
        if let Some(p) = pool {
            prune_gone_hosts(&plain_dir(self.root()), &p.dir);
        }
        let dir = pool_dir(self.root(), pool);
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
            // Between starts only (no start for 20 ms, or 2 s of waiting),
            // even when the pool is empty: making a namespace, and a bridge
            // spare's veth pair, hold RTNL, which every start needs, and this
            // process runs at SCHED_IDLE; a refill racing a long run of
            // starts slowed each of them more than its spares saved
            // (docs/performance.md). Unlike a snapshot, a start that finds
            // no spare loses only the ~1-2 ms of making its own.
            self.wait_until_idle(&|| false);
            make_spare(&dir, pool)?;
            // Count what is there: starts take spares while we make them.
            ready = spares(&dir).len();
        }
        Ok(())
    }
}

/// Makes one spare in `dir`: a helper thread unshares a network namespace
/// (this thread's stays as it is) and sets `lo` up in it; for a bridge pool
/// this thread adds the veth pair; then the namespace is bind-mounted.
fn make_spare(dir: &Path, pool: Option<&SparePool>) -> Result<()> {
    let id = names::new_id()?;
    let path = dir.join(&id);
    let ns = std::thread::scope(|s| {
        s.spawn(|| {
            crate::launch::unshare_netns().context(|| "unshare a network namespace".to_string())?;
            crate::child::loopback_up(&crate::run::LOOPBACK_UP)
                .context(|| "bring lo up in a spare network namespace".to_string())?;
            rfs::open(
                "/proc/thread-self/ns/net",
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .context(|| "open a spare network namespace".to_string())
        })
        .join()
        .unwrap_or_else(|_| {
            Err(Error::msg(
                "make a spare network namespace: thread panicked",
            ))
        })
    })?;
    if let Some(p) = pool {
        net::equip_spare(p, ns.as_fd(), &net::spare_host_veth(&id))?;
    }
    drop(
        rfs::open(
            &path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .context(|| format!("create {}", path.display()))?,
    );
    let source = format!("/proc/self/fd/{}", ns.as_raw_fd());
    rustix::mount::mount_bind(source.as_str(), &path).map_err(|e| {
        let _ = rfs::unlink(&path);
        Error::os(
            format!("bind-mount a network namespace on {}", path.display()),
            e,
        )
    })
}

/// Removes the bridge pools in `netns_dir`, other than `own`, whose host
/// network namespace is gone: one of their spares has lost its `eth0` (and no
/// refill holds their lock). Without this each network namespace that ever
/// ran a bridge container (a test suite makes many) would keep its spares
/// until `detach`.
fn prune_gone_hosts(netns_dir: &Path, own: &str) {
    let Ok(fd) = fsutil::open_dir(rfs::CWD, netns_dir) else {
        return;
    };
    for name in fsutil::list_dir(fd.as_fd()).unwrap_or_default() {
        if !name.starts_with("br-") || name == own {
            continue;
        }
        let dir = netns_dir.join(&name);
        let Some(first) = spares(&dir).into_iter().next() else {
            continue;
        };
        let gone = rfs::open(
            dir.join(first),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .is_ok_and(|ns| is_namespace(&ns) && !net::spare_has_eth0(ns.as_fd()));
        if !gone {
            continue;
        }
        let Ok(dfd) = fsutil::open_dir(rfs::CWD, &dir) else {
            continue;
        };
        if let Ok(Some(_lock)) = FileLock::acquire(dfd.as_fd(), BRIDGE_LOCK, true, false) {
            clean_dir(&dir);
            let _ = rfs::unlink(dir.join(BRIDGE_LOCK));
            let _ = rfs::rmdir(&dir);
        }
    }
}

/// Unmounts and removes the spares in `dir`.
fn clean_dir(dir: &Path) {
    for name in spares(dir) {
        let path = dir.join(&name);
        let _ = rustix::mount::unmount(&path, UnmountFlags::DETACH);
        let _ = rfs::unlink(&path);
    }
}

/// Unmounts and removes every spare network namespace of the store at
/// `root`, plain and bridge ones (before the store itself is unmounted).
pub fn clean(root: &Path) {
    let dir = plain_dir(root);
    clean_dir(&dir);
    let Ok(fd) = fsutil::open_dir(rfs::CWD, &dir) else {
        return;
    };
    for name in fsutil::list_dir(fd.as_fd()).unwrap_or_default() {
        if name.starts_with("br-") {
            let sub = dir.join(&name);
            clean_dir(&sub);
            let _ = rfs::unlink(sub.join(BRIDGE_LOCK));
            let _ = rfs::rmdir(&sub);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nsfs_magic_is_the_kernels() {
        assert_eq!(super::NSFS_MAGIC, linux_raw_sys::general::NSFS_MAGIC as i64);
    }
}
