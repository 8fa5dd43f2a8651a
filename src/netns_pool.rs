//! Spare network namespaces, made ahead, so that a start joins one (`setns`)
//! instead of making its own (`CLONE_NEWNET`): the kernel's setup of a network
//! namespace (loopback, sysctl tables, routing and netfilter state) and the
//! container's `lo` up cost ~1 ms of every start here (measured:
//! docs/performance.md). Spares for bridge mode also hold their veth pair,
//! which saves a start the `RTM_NEWLINK` of the pair and the bridge's work
//! for a new port (1.3 ms here with a few ports, ~4.5 ms with 1,000).
//!
//! A namespace outlives its processes only through a reference; a spare is
//! a bind mount of its nsfs file, as `ip netns add` keeps them. Not in the
//! host's mount namespace: every mount there is copied by each `clone3`
//! with `CLONE_NEWNS` (tupper's and any other program's: bwrap, crun,
//! systemd's private mounts), ~6 us a mount and a start here. The spares
//! are mounts in a mount namespace of their own, the *holder*, and the
//! host has one mount for all of them:
//!
//! - `ROOT/netns/holder`: the holder's nsfs file, bind-mounted on an empty
//!   file. The holder's tree is a tmpfs (mode 0700) as its root, with the
//!   host's `/proc` bound on `/proc` (for `/proc/self/fd/N` and
//!   `/proc/thread-self/ns/net` inside it); nothing else of the host.
//! - in the holder, `/plain/ID`: plain spares, with `lo` up and nothing
//!   else in them. For `--net none`, and for bridge mode when its own pool
//!   is empty. Refill lock `ROOT/netns.lock`. `/plain/ID.taken`: the claim
//!   of a container that took spare `/plain/ID` (which stays mounted until
//!   a refill cleans it).
//! - in the holder, `/br-INODE-BRIDGE/ID`: bridge spares, for one bridge of
//!   one host network namespace (INODE: its nsfs inode): `lo` up, and a veth
//!   pair whose host end ([`crate::net::spare_host_veth`]: `ts` + 12
//!   characters of ID) is up on the bridge, with IPv6 off, and whose peer is
//!   `eth0` (ifindex 2), up, without an IPv6 link-local address. A start
//!   gives `eth0` its address and route, nothing more; it first checks that
//!   the host end is still up on its bridge, else it makes the pair again
//!   ([`crate::net::attach`]). Refill lock `ROOT/netns/br-INODE-BRIDGE.lock`.
//!   A spare's veth pair dies with its namespace (when the container that
//!   took it ends, or the spare is cleaned). If the host namespace goes, the
//!   host ends and their `eth0`s go with it; the next bridge refill, from
//!   any namespace, removes such pools.
//!
//! - take: the calling thread enters the holder (`setns(CLONE_NEWNS)`; a
//!   helper thread does it in a process whose threads share their
//!   filesystem context, which `setns` refuses), `open`s the spare, claims
//!   it, and returns to its own namespace and working directory. A bridge
//!   spare is claimed by `umount2(MNT_DETACH)` and unlinked: of several
//!   takers only one `umount2` succeeds, and its veth pair dies with the
//!   container. A plain spare is claimed by creating `ID.taken` with
//!   `O_EXCL` (only one taker's succeeds), then checking that `ID` is
//!   still the namespace it opened (else the claim is removed again): an
//!   unmount waits for an RCU grace period (~60 us here at rest, 0.1-0.3
//!   ms under load), which a start no longer pays for `--net none`. A
//!   bridge container that takes a plain spare claims it so too, then
//!   unmounts and unlinks it and removes its claim (the one arbiter of a
//!   plain spare is its claim). The next refill unmounts and unlinks the
//!   taken spares, then their claims, in a quiet moment; until then a
//!   namespace with only `lo` may outlive its container. A taker that
//!   opened a file that is not a namespace (before the refill mounted on
//!   it, or after a cleaning unmounted it) drops it. So a namespace goes to
//!   one container only.
//! - refill: under the pool's refill lock (non-blocking: one refiller at a
//!   time), a helper thread unshares a network namespace, sets its `lo` up
//!   and opens it; this thread (in the host's network namespace) adds the
//!   veth pair of a bridge spare; then a helper thread in the holder creates
//!   the file (`O_EXCL`) and bind-mounts the namespace on it: a spare is
//!   visible only once it is complete. Files that are not a mount of a
//!   namespace (a refill that crashed between the two steps) are removed
//!   first. A refill that fails half-way leaves nothing: the namespace, and
//!   the veth pair in it, die with its last descriptor. Each spare waits for
//!   a quiet moment (see [`Store::refill_netns_pool`]).
//! - clean: [`clean`] unmounts the holder (the spares, and their namespaces,
//!   go with it); `detach` calls it before it unmounts the store. After a
//!   reboot `holder` is a plain file, and the next refill makes a holder.
//!
//! The size of each pool is `TUPPER_NETNS_POOL` (default [`DEFAULT_SIZE`];
//! `0` turns them off).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::LinkNameSpaceType;

use crate::error::{Context, Error, Result};
use crate::fsutil::{self, FileLock};
use crate::names;
use crate::net::{self, SparePool};
use crate::store::Store;

/// Spare network namespaces kept per pool unless `TUPPER_NETNS_POOL` says
/// otherwise.
pub const DEFAULT_SIZE: usize = 64;

/// `statfs` magic of nsfs, the filesystem of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// The holder's nsfs file, in `ROOT/netns`.
const HOLDER: &str = "holder";

/// The lock under which a holder is made, in `ROOT/netns`.
const HOLDER_LOCK: &str = "holder.lock";

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

/// The directory of a pool inside the holder: plain, or the bridge pool
/// `pool`.
fn pool_dir(pool: Option<&SparePool>) -> PathBuf {
    match pool {
        None => PathBuf::from(PLAIN),
        Some(p) => Path::new("/").join(&p.dir),
    }
}

/// The holder's directory of plain spares. Until claims by mark they were
/// in `/` itself, where a tupper of then still looks for them and would
/// take a claimed one: a new directory keeps the two apart (and a refill
/// removes the spares a tupper of then left in `/`).
const PLAIN: &str = "/plain";

/// The refill lock of the plain pool (`ROOT/netns.lock`) or of the bridge
/// pool named `dir` (`ROOT/netns/DIR.lock`).
fn refill_lock_name(dir: Option<&str>) -> String {
    match dir {
        None => "netns.lock".to_string(),
        Some(d) => format!("{d}.lock"),
    }
}

/// Whether `fd` is a namespace file (nsfs).
fn is_namespace(fd: &OwnedFd) -> bool {
    rfs::fstatfs(fd).is_ok_and(|st| st.f_type == NSFS_MAGIC)
}

/// The suffix of a claim: `ID.taken` in the plain pool says that spare `ID`
/// belongs to a container (see the module doc).
const TAKEN: &str = ".taken";

/// In `dir`: the spares nobody took (container-id shaped names without a
/// claim), and the claims (`ID.taken`, whether `ID` is still there or not).
fn listing(dir: &Path) -> (Vec<names::IdBuf>, Vec<names::IdBuf>) {
    let (mut free, mut taken) = (Vec::new(), Vec::new());
    if let Ok(fd) = fsutil::open_dir(rfs::CWD, dir) {
        let _ = fsutil::for_each_name(fd.as_fd(), |name| {
            if let Some(id) = names::IdBuf::new(name) {
                free.push(id);
            } else if let Some(id) = name
                .strip_suffix(TAKEN.as_bytes())
                .and_then(names::IdBuf::new)
            {
                taken.push(id);
            }
        });
    }
    free.retain(|id| !taken.contains(id));
    (free, taken)
}

/// The spares' names in `dir` (container-id shaped, not taken), or none.
fn spares(dir: &Path) -> Vec<names::IdBuf> {
    listing(dir).0
}

/// How a taker makes a spare its own.
#[derive(Clone, Copy)]
enum Claim {
    /// Unmount it (only one taker's `umount2` succeeds), then unlink it: the
    /// namespace then lives as long as the container. Bridge spares: their
    /// veth pair must go with the container.
    Unmount,
    /// Create `ID.taken` (`O_EXCL`: only one taker's succeeds); the spare is
    /// unmounted later, off the start's path, by a refill. An unmount waits
    /// for an RCU grace period (~60 us at rest here, more under load).
    /// Plain spares for `--net none`: a namespace with only `lo` may outlive
    /// its container until then.
    Mark,
    /// [`Claim::Mark`], then unmount and unlink the spare and remove the
    /// claim: a plain spare for a bridge container, which gets a veth pair.
    MarkThenUnmount,
}

/// Takes a spare from `dir` (see the module doc).
fn take_from(dir: &Path, claim: Claim) -> Option<(OwnedFd, String)> {
    for name in spares(dir) {
        let name = name.as_str();
        let path = dir.join(name);
        let Ok(fd) = rfs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
            continue;
        };
        let claimed = match claim {
            Claim::Unmount => {
                // Only one taker's unmount succeeds: the spare is its alone.
                if rustix::mount::unmount(&path, UnmountFlags::DETACH).is_err() {
                    continue;
                }
                let _ = rfs::unlink(&path);
                is_namespace(&fd)
            }
            Claim::Mark => is_namespace(&fd) && mark_taken(dir, name, &fd),
            Claim::MarkThenUnmount => {
                let mine = is_namespace(&fd) && mark_taken(dir, name, &fd);
                if mine {
                    // A refill may unmount it first: the fd holds it anyway.
                    let _ = rustix::mount::unmount(&path, UnmountFlags::DETACH);
                    let _ = rfs::unlink(&path);
                    let _ = rfs::unlink(dir.join(format!("{name}{TAKEN}")));
                }
                mine
            }
        };
        if claimed {
            return Some((fd, name.to_string()));
        }
    }
    None
}

/// Claims spare `dir/name`, opened as `fd`, with `name.taken` (`O_EXCL`).
/// The claim holds only if `name` is still the namespace opened: a refill
/// may have cleaned the spare (unmount, unlink, then its claim) after this
/// taker opened it; a claim made too late is removed again.
fn mark_taken(dir: &Path, name: &str, fd: &OwnedFd) -> bool {
    let marker = dir.join(format!("{name}{TAKEN}"));
    let made = rfs::open(
        &marker,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    );
    if made.is_err() {
        return false;
    }
    let same = match (rfs::lstat(dir.join(name)), rfs::fstat(fd)) {
        (Ok(now), Ok(ours)) => (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino),
        _ => false,
    };
    if !same {
        let _ = rfs::unlink(&marker);
    }
    same
}

/// Unmounts and removes the spares of `dir` that containers took, then
/// their claims (in that order: see [`mark_taken`]).
fn clean_taken(dir: &Path) {
    for id in listing(dir).1 {
        let path = dir.join(id);
        let _ = rustix::mount::unmount(&path, UnmountFlags::DETACH);
        let _ = rfs::unlink(&path);
        let _ = rfs::unlink(dir.join(format!("{}{TAKEN}", id.as_str())));
    }
}

/// Takes a spare, from the bridge pool `pool` first if given (in the holder).
/// `bridge`: the container gets a veth pair (bridge mode), which must die
/// with it, so its namespace must not outlive it: no claim by mark.
fn take_in_holder(pool: Option<&SparePool>, bridge: bool) -> Option<Spare> {
    if pool.is_some() {
        if let Some((fd, id)) = take_from(&pool_dir(pool), Claim::Unmount) {
            return Some(Spare { fd, id, veth: true });
        }
    }
    let claim = match bridge || pool.is_some() {
        true => Claim::MarkThenUnmount,
        false => Claim::Mark,
    };
    take_from(&pool_dir(None), claim).map(|(fd, id)| Spare {
        fd,
        id,
        veth: false,
    })
}

/// The holder of the store at `root`, if it has one.
fn open_holder(root: &Path) -> Option<OwnedFd> {
    rfs::open(
        root.join("netns").join(HOLDER),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
    .filter(is_namespace)
}

/// Runs `f` with the calling thread in the holder's mount namespace, then
/// returns it to its own namespace and working directory. `None` when the
/// thread cannot enter (`setns` refuses a thread that shares its filesystem
/// context with others: use [`on_holder_thread`]). If the way back fails the
/// process aborts: nothing may run in the wrong namespace.
fn in_holder<T>(holder: &OwnedFd, f: impl FnOnce() -> T) -> Option<T> {
    let own = rfs::open(
        "/proc/thread-self/ns/mnt",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let cwd = rfs::open(
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    rustix::thread::move_into_link_name_space(holder.as_fd(), Some(LinkNameSpaceType::Mount))
        .ok()?;
    let out = f();
    let back =
        rustix::thread::move_into_link_name_space(own.as_fd(), Some(LinkNameSpaceType::Mount))
            .and_then(|()| rustix::process::fchdir(&cwd));
    if let Err(e) = back {
        eprintln!("tupper: return to the host's mount namespace: {e}; aborting");
        std::process::abort();
    }
    Some(out)
}

/// Runs `f` on a fresh helper thread (which may change its own namespaces)
/// and returns its result. An error, not a panic, when no thread can be
/// started (a limit on tasks): the callers do without.
fn on_new_thread<T: Send>(what: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new()
            .spawn_scoped(s, f)
            .map_err(|e| Error::os(format!("{what}: start a thread"), e))?;
        thread
            .join()
            .unwrap_or_else(|_| Err(Error::msg(format!("{what}: thread panicked"))))
    })
}

/// Runs `f` on a helper thread that has entered the holder's mount namespace.
fn on_holder_thread<T: Send>(holder: &OwnedFd, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    on_new_thread("spare network namespaces", || {
        crate::launch::unshare_fs(false)
            .context(|| "unshare the filesystem context of a thread".to_string())?;
        rustix::thread::move_into_link_name_space(holder.as_fd(), Some(LinkNameSpaceType::Mount))
            .context(|| "enter the mount namespace of the spare network namespaces".to_string())?;
        f()
    })
}

/// Runs `f` in the holder: on this thread if it can enter, else on a helper.
fn with_holder<T: Send>(holder: &OwnedFd, f: impl Fn() -> T + Send + Sync) -> Option<T> {
    in_holder(holder, &f).or_else(|| on_holder_thread(holder, || Ok(f())).ok())
}

impl Store {
    /// Takes a spare network namespace (see the module doc): from the bridge
    /// pool `pool` if given and not empty, else a plain one; `None` when
    /// both are empty, or the store has no holder yet. `bridge`: for a
    /// container in bridge mode (a plain spare is then claimed by unmount).
    pub(crate) fn take_netns(&self, pool: Option<&SparePool>, bridge: bool) -> Option<Spare> {
        let holder = open_holder(self.root())?;
        with_holder(&holder, || take_in_holder(pool, bridge)).flatten()
    }

    /// Takes a spare from the bridge pool `pool` only (for its port: see
    /// [`crate::net::attach_freeing_ports`]), whatever `TUPPER_NETNS_POOL`
    /// says.
    pub(crate) fn take_bridge_spare(&self, pool: Option<&SparePool>) -> Option<Spare> {
        let pool = pool?;
        let holder = open_holder(self.root())?;
        with_holder(&holder, || {
            take_from(&pool_dir(Some(pool)), Claim::Unmount).map(|(fd, id)| Spare {
                fd,
                id,
                veth: true,
            })
        })
        .flatten()
    }

    /// Empties and removes the bridge pool `pool` (`network rm`, before its
    /// bridge goes): each spare's namespace, with its veth pair, goes with
    /// its mount. Returns the pool's refill lock, which the caller holds
    /// until the bridge is gone (`None` when the store has no spares).
    pub(crate) fn drop_bridge_spares(&self, pool: &SparePool) -> Option<FileLock> {
        let dir = fsutil::open_dir(rfs::CWD, self.root().join("netns")).ok()?;
        let name = refill_lock_name(Some(&pool.dir));
        let lock = FileLock::acquire(dir.as_fd(), &name, true, true).ok()??;
        if let Some(holder) = open_holder(self.root()) {
            with_holder(&holder, || {
                let spares = pool_dir(Some(pool));
                clean_dir(&spares);
                let _ = rfs::rmdir(&spares);
            });
        }
        let _ = rfs::unlinkat(dir.as_fd(), name.as_str(), rfs::AtFlags::empty());
        Some(lock)
    }

    /// Whether a pool (plain, or the bridge pool `pool`) holds fewer than
    /// half of `size` spares and no refill is at work (a background process
    /// forked only to find the refill lock taken would stay a zombie until
    /// its parent's container ends).
    pub fn netns_pool_low(&self, size: usize, pool: Option<&SparePool>) -> bool {
        if size == 0 {
            return false;
        }
        let lock_dir = match pool {
            None => self.root().to_path_buf(),
            Some(_) => self.root().join("netns"),
        };
        let lock_name = refill_lock_name(pool.map(|p| p.dir.as_str()));
        let locked = fsutil::open_dir(rfs::CWD, &lock_dir)
            .is_ok_and(|d| fsutil::is_locked(d.as_fd(), &lock_name));
        if locked {
            return false;
        }
        let count = open_holder(self.root())
            .and_then(|h| with_holder(&h, || spares(&pool_dir(pool)).len()))
            .unwrap_or(0);
        count < size.div_ceil(2)
    }

    /// Fills a pool (plain, or the bridge pool `pool`) up to `size`. Returns
    /// at once when another process is refilling it. A bridge pool is filled
    /// only while its bridge exists (in the caller's network namespace).
    ///
    /// Each spare waits for a quiet moment (no start for 20 ms, at most 2 s),
    /// even when the pool is empty: making a namespace, and a bridge spare's
    /// veth pair, hold RTNL, which every start needs, and the CLI's
    /// background process runs at SCHED_IDLE; a refill racing a long run of
    /// starts slowed each of them more than its spares saved
    /// (docs/performance.md). Unlike a snapshot, a start that finds no spare
    /// loses only the ~1-2 ms of making its own.
    pub fn refill_netns_pool(&self, size: usize, pool: Option<&SparePool>) -> Result<()> {
        if size == 0 {
            return Ok(());
        }
        let root = fsutil::open_dir(rfs::CWD, self.root())
            .context(|| format!("open store {}", self.root().display()))?;
        let netns = fsutil::ensure_dir(root.as_fd(), "netns", 0o700)
            .context(|| "create directory netns".to_string())?;
        let lock_dir = match pool {
            None => root.as_fd(),
            Some(_) => netns.as_fd(),
        };
        let lock = FileLock::acquire(
            lock_dir,
            &refill_lock_name(pool.map(|p| p.dir.as_str())),
            true,
            false,
        );
        let Some(_lock) =
            lock.context(|| "lock the refill of spare network namespaces".to_string())?
        else {
            return Ok(());
        };
        let holder = ensure_holder(self.root(), netns.as_fd())?;
        if let Some(p) = pool {
            prune_gone_hosts(&holder, netns.as_fd(), &p.dir)?;
        }
        let dir = pool_dir(pool);
        let mut ready = on_holder_thread(&holder, || {
            // The plain pool's taken spares go first, in a quiet moment (an
            // unmount waits for an RCU grace period, an expedited one: IPIs
            // to every CPU).
            if !listing(&dir).1.is_empty() {
                self.wait_until_idle(&|| false);
                clean_taken(&dir);
            }
            if pool.is_none() {
                // Plain spares of the layout before `PLAIN`.
                clean_dir(Path::new("/"));
            }
            match rfs::mkdir(&dir, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(Error::os(format!("create {}", dir.display()), e)),
            }
            let mut ready = 0;
            for name in spares(&dir) {
                let path = dir.join(name);
                let spare = rfs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                    .is_ok_and(|fd| is_namespace(&fd));
                if spare {
                    ready += 1;
                } else {
                    // A refill crashed between the file and its mount.
                    let _ = rfs::unlink(&path);
                }
            }
            Ok(ready)
        })?;
        while ready < size {
            self.wait_until_idle(&|| false);
            // Counted again: starts take spares while we make them.
            ready = make_spare(&holder, &dir, pool)?;
        }
        Ok(())
    }
}

/// Returns the holder of the store at `root` (its `netns` directory is
/// `netns`), made first if there is none: a helper thread unshares a mount
/// namespace, makes its tree private, mounts a tmpfs on `ROOT/netns` with
/// the host's `/proc` bound in it, `pivot_root`s into it and lets go of the
/// rest; its nsfs file is then bind-mounted on `ROOT/netns/holder`.
fn ensure_holder(root: &Path, netns: BorrowedFd<'_>) -> Result<OwnedFd> {
    let _lock = FileLock::acquire(netns, HOLDER_LOCK, true, true)
        .context(|| format!("lock netns/{HOLDER_LOCK}"))?;
    if let Some(holder) = open_holder(root) {
        return Ok(holder);
    }
    let target = root.join("netns");
    let what = || {
        format!(
            "make the mount namespace of the spare network namespaces (a tmpfs on {})",
            target.display()
        )
    };
    let ns = on_new_thread(&what(), || -> Result<OwnedFd> {
        crate::launch::unshare_fs(true).context(what)?;
        let ns = rfs::open(
            "/proc/thread-self/ns/mnt",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context(what)?;
        // Nothing done here may reach the host's namespace.
        rustix::mount::mount_change(
            "/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        )
        .context(what)?;
        rustix::mount::mount(
            "tupper-netns",
            &target,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            c"mode=0700",
        )
        .context(what)?;
        let proc = target.join("proc");
        rfs::mkdir(&proc, Mode::from_raw_mode(0o555)).context(what)?;
        rustix::mount::mount_bind("/proc", &proc).context(what)?;
        rustix::process::chdir(&target).context(what)?;
        rustix::process::pivot_root(".", ".").context(what)?;
        rustix::mount::unmount(".", UnmountFlags::DETACH).context(what)?;
        rustix::process::chdir("/").context(what)?;
        Ok(ns)
    })?;
    let path = target.join(HOLDER);
    drop(
        rfs::open(
            &path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .context(|| format!("create {}", path.display()))?,
    );
    let source = format!("/proc/self/fd/{}", ns.as_raw_fd());
    rustix::mount::mount_bind(source.as_str(), &path)
        .context(|| format!("bind-mount a mount namespace on {}", path.display()))?;
    Ok(ns)
}

/// Makes one spare in the holder's directory `dir`, and returns how many
/// spares `dir` holds then. A helper thread unshares a network namespace
/// (this thread's stays as it is) and sets `lo` up in it; for a bridge pool
/// this thread adds the veth pair; then a helper thread in the holder
/// bind-mounts the namespace.
fn make_spare(holder: &OwnedFd, dir: &Path, pool: Option<&SparePool>) -> Result<usize> {
    let id = names::new_id()?;
    let ns = on_new_thread("make a spare network namespace", || {
        crate::launch::unshare_netns().context(|| "unshare a network namespace".to_string())?;
        crate::child::loopback_up(&crate::run::LOOPBACK_UP)
            .context(|| "bring lo up in a spare network namespace".to_string())?;
        rfs::open(
            "/proc/thread-self/ns/net",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context(|| "open a spare network namespace".to_string())
    })?;
    if let Some(p) = pool {
        net::equip_spare(p, ns.as_fd(), &net::spare_host_veth(&id))?;
    }
    let source = format!("/proc/self/fd/{}", ns.as_raw_fd());
    on_holder_thread(holder, || {
        let path = dir.join(&id);
        drop(
            rfs::open(
                &path,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .context(|| format!("create spare {}", path.display()))?,
        );
        rustix::mount::mount_bind(source.as_str(), &path).map_err(|e| {
            let _ = rfs::unlink(&path);
            Error::os(
                format!("bind-mount a network namespace on spare {}", path.display()),
                e,
            )
        })?;
        Ok(spares(dir).len())
    })
}

/// Removes the bridge pools in the holder, other than `own`, whose host
/// network namespace is gone: one of their spares has lost its `eth0` (and
/// no refill holds their lock, in the store's `netns` directory). Without
/// this each network namespace that ever ran a bridge container (a test
/// suite makes many) would keep its spares until `detach`.
fn prune_gone_hosts(holder: &OwnedFd, netns: BorrowedFd<'_>, own: &str) -> Result<()> {
    on_holder_thread(holder, || {
        let names = fsutil::open_dir(rfs::CWD, "/")
            .and_then(|d| fsutil::list_dir(d.as_fd()))
            .unwrap_or_default();
        for name in names
            .into_iter()
            .filter(|n| n.starts_with("br-") && n != own)
        {
            let dir = Path::new("/").join(&name);
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
            let lock_name = refill_lock_name(Some(&name));
            if let Ok(Some(_lock)) = FileLock::acquire(netns, &lock_name, true, false) {
                clean_dir(&dir);
                let _ = rfs::rmdir(&dir);
                let _ = rfs::unlinkat(netns, lock_name.as_str(), rfs::AtFlags::empty());
            }
        }
        Ok(())
    })
}

/// Unmounts and removes the spares in `dir`.
fn clean_dir(dir: &Path) {
    for name in spares(dir) {
        let path = dir.join(name);
        let _ = rustix::mount::unmount(&path, UnmountFlags::DETACH);
        let _ = rfs::unlink(&path);
    }
}

/// Unmounts the holder of the store at `root`, and with it every spare
/// network namespace (before the store itself is unmounted). Spares of the
/// layout before the holder (mounts in the host's namespace, `ROOT/netns/ID`
/// and `ROOT/netns/br-*/ID`) are unmounted too.
pub fn clean(root: &Path) {
    let dir = root.join("netns");
    let _ = rustix::mount::unmount(dir.join(HOLDER), UnmountFlags::DETACH);
    clean_dir(&dir);
    let Ok(fd) = fsutil::open_dir(rfs::CWD, &dir) else {
        return;
    };
    for name in fsutil::list_dir(fd.as_fd()).unwrap_or_default() {
        let sub = dir.join(&name);
        if name.starts_with("br-") && fsutil::open_dir(rfs::CWD, &sub).is_ok() {
            clean_dir(&sub);
            let _ = rfs::rmdir(&sub);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn nsfs_magic_is_the_kernels() {
        assert_eq!(super::NSFS_MAGIC, linux_raw_sys::general::NSFS_MAGIC as i64);
    }

    /// Where the cgroup v1 `pids` hierarchy is mounted.
    fn pids_mount() -> PathBuf {
        crate::cgroup::v1_mounts()
            .unwrap()
            .into_iter()
            .find(|(controllers, _)| controllers.iter().any(|c| c == "pids"))
            .expect("no cgroup v1 pids hierarchy is mounted")
            .1
    }

    /// A `pids` cgroup of the test's own, removed on drop (also when the
    /// test fails), once its last task has ended.
    struct TestCgroup(PathBuf);

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            for _ in 0..100 {
                if std::fs::remove_dir(&self.0).is_ok() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    /// A thread of the test, alone in a `pids` cgroup of one task, asks for a
    /// helper thread: it gets an error that names the work, not a panic
    /// (which, with `panic = "abort"`, would end a background process
    /// half-way).
    #[test]
    fn a_refused_helper_thread_is_an_error() {
        let cgroup =
            TestCgroup(pids_mount().join(format!("tupper-test-thread-{}", std::process::id())));
        std::fs::create_dir(&cgroup.0).unwrap();
        std::fs::write(cgroup.0.join("pids.max"), "1").unwrap();
        let tasks = cgroup.0.join("tasks");
        let result = std::thread::spawn(move || {
            // This thread only: it ends in the cgroup, which then goes.
            let tid = rustix::thread::gettid().as_raw_nonzero().get();
            std::fs::write(&tasks, tid.to_string()).unwrap();
            super::on_new_thread("make a spare", || Ok(1))
        })
        .join();
        let e = result.unwrap().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("make a spare: start a thread: Resource temporarily unavailable"),
            "{e}"
        );
    }
}
