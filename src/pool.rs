//! Spare snapshots: a small pool per image, made in advance, so that `run` takes a
//! ready snapshot with one `rename` instead of paying a btrfs transaction commit
//! (`BTRFS_IOC_SNAP_CREATE_V2` waits for a disk flush, ~5 ms on a loop store).
//!
//! Layout: `ROOT/pool/UUID/ID` are spares of the image whose subvolume UUID is
//! `UUID` (32 hex digits), `ROOT/pool/UUID/.new/SLOT/ID` a spare being prepared
//! by refill worker `SLOT`, and `ROOT/pool/UUID.lock` the refill lock. Keying
//! by UUID, not by name, is what keeps a spare from ever being handed out for
//! an image that was since replaced (`import --force` makes a new subvolume,
//! with a new UUID) or removed. The
//! snapshot is made in its own directory because `BTRFS_IOC_SNAP_CREATE_V2`
//! holds its parent directory's inode lock until the commit is done
//! (milliseconds): made in `UUID/`, it would stall every run listing or taking
//! a spare meanwhile.
//!
//! - take: `renameat(pool/UUID/ID -> containers/CID)`; atomic, so two runs never
//!   get the same spare (the loser gets `ENOENT` and tries the next one).
//! - refill: under the refill lock (non-blocking: one refiller at a time), up to
//!   [`REFILL_BATCH`] workers (threads) each snapshot the image to
//!   `.new/SLOT/ID`, create its mount points, rename it to `ID`. Snapshot
//!   ioctls that run side by side share a transaction commit (each needs a
//!   parent directory of its own: the ioctl holds its parent's lock through
//!   the commit), so a batch of spares costs little more than one. While
//!   the pool holds at least a quarter of its size ([`low_water`]), each
//!   worker waits for a quiet moment before its snapshot (no start for
//!   [`IDLE_GAP`], at most [`IDLE_WAIT_MAX`]): a commit briefly blocks the
//!   btrfs transactions of the starts running meanwhile. Below that, a long run of starts is
//!   draining the pool, and every worker makes a spare at once (still at
//!   `SCHED_IDLE` in the CLI's background process): a start that finds a
//!   spare, even one slowed by a commit, beats one that makes its own
//!   snapshot (measured: docs/performance.md).
//! - clean: spares of images that no longer exist, and `.new/` leftovers of a
//!   refill that crashed (in a slot, or directly in `.new/` from before the
//!   slots), are destroyed by the next refill, `rmi` and `import --force`.
//!
//! - warm: a fresh snapshot's files are new inodes with an empty page cache, so
//!   the first `execve` in a container reads the binary from the disk again (~3 ms
//!   for busybox on a loop store). The refill brings the files a run will most
//!   likely `execve` (the image's `/bin/sh`, the command of the run that asked
//!   for the refill, and for dynamic binaries their ELF interpreter and libc)
//!   into each new spare's page cache (`POSIX_FADV_WILLNEED`: read ahead by
//!   the kernel, not copied to the refill), off the critical path.
//!
//! The size is `TUPPER_POOL` (default [`DEFAULT_SIZE`]; `0` turns the pool off).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags};
use rustix::io::Errno;

use crate::error::{Context, Error, Result};
use crate::fsutil::{self, FileLock};
use crate::names;
use crate::plan;
use crate::store::{destroy_subvolume, Store};

/// Spares kept per image unless `TUPPER_POOL` says otherwise.
pub const DEFAULT_SIZE: usize = 128;

/// The pool size from `TUPPER_POOL`.
pub fn configured_size() -> usize {
    std::env::var("TUPPER_POOL")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_SIZE)
}

/// The pool key of an image: its subvolume UUID in hex.
pub fn image_key(image: BorrowedFd<'_>) -> Result<String> {
    let info = tupper_ioctl::subvol_info(image)
        .map_err(|e| Error::os("read the image's subvolume info", e))?;
    Ok(info.uuid.iter().map(|b| format!("{b:02x}")).collect())
}

impl Store {
    /// Moves a spare of the image `key` to `containers/ID`; returns how many spares
    /// were left after it, or `None` when the pool had none.
    pub(crate) fn take_spare(&self, key: &str, id: &str) -> Result<Option<usize>> {
        let dir = match fsutil::open_dir(self.pool.as_fd(), key) {
            Ok(d) => d,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(Error::os(format!("open pool/{key}"), e)),
        };
        let ready = fsutil::list_ids(dir.as_fd()).context(|| format!("list pool/{key}"))?;
        for (i, spare) in ready.iter().enumerate() {
            let spare = spare.as_str();
            match rfs::renameat(dir.as_fd(), spare, self.containers.as_fd(), id) {
                Ok(()) => return Ok(Some(ready.len() - i - 1)),
                Err(Errno::NOENT) => continue, // taken by a concurrent run
                Err(e) => {
                    return Err(Error::os(
                        format!("rename pool/{key}/{spare} -> containers/{id}"),
                        e,
                    ))
                }
            }
        }
        Ok(None)
    }

    /// Whether a refill of pool `key` is at work (holds the refill lock).
    pub(crate) fn refilling(&self, key: &str) -> bool {
        fsutil::is_locked(self.pool.as_fd(), &format!("{key}.lock"))
    }

    /// Fills the pool of image `name` up to `size` spares, each warmed for
    /// `commands` (see the module doc). Returns at once when another process is
    /// refilling it.
    pub fn refill_pool(&self, name: &str, size: usize, commands: &[&str]) -> Result<()> {
        self.refill(name, size, commands, true)
    }

    /// Like [`Store::refill_pool`], without waiting for an idle moment (after an
    /// import, before any container needs it).
    pub fn refill_pool_now(&self, name: &str, size: usize) -> Result<()> {
        self.refill(name, size, &[], false)
    }

    fn refill(
        &self,
        name: &str,
        size: usize,
        commands: &[&str],
        wait_for_idle: bool,
    ) -> Result<()> {
        if size == 0 {
            return Ok(());
        }
        let image = self.open_image(name)?;
        let key = image_key(image.as_fd())?;
        let Some(_lock) = FileLock::acquire(self.pool.as_fd(), &format!("{key}.lock"), true, false)
            .context(|| format!("lock pool/{key}.lock"))?
        else {
            return Ok(());
        };
        let dir = fsutil::ensure_dir(self.pool.as_fd(), &key, 0o700)
            .context(|| format!("create pool/{key}"))?;
        let mut ready = 0;
        for entry in fsutil::list_dir(dir.as_fd()).context(|| format!("list pool/{key}"))? {
            if names::is_id(&entry) {
                ready += 1;
            } else if entry != STAGING {
                // An older layout's half-made spare.
                destroy_subvolume(dir.as_fd(), &entry, &format!("pool/{key}/{entry}"))?;
            }
        }
        // Spares whose refill crashed before they were ready.
        let staging = fsutil::ensure_dir(dir.as_fd(), STAGING, 0o700)
            .context(|| format!("create pool/{key}/{STAGING}"))?;
        clear_staging(staging.as_fd(), &format!("pool/{key}/{STAGING}"))?;
        let pool = Refill {
            store: self,
            image: image.as_fd(),
            name,
            key: &key,
            dir: dir.as_fd(),
            staging: staging.as_fd(),
            commands,
            size,
            wait_for_idle,
            making: std::sync::Mutex::new(0),
            outcome: std::sync::Mutex::new(Ok(())),
        };
        let workers = REFILL_BATCH.min(size.saturating_sub(ready)).max(1);
        std::thread::scope(|scope| {
            for slot in 1..workers {
                let pool = &pool;
                let spawned = std::thread::Builder::new()
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(scope, move || pool.work(slot));
                if spawned.is_err() {
                    break; // Fewer workers: slower, not wrong.
                }
            }
            pool.work(0);
        });
        // The slots go with the refill (the next one makes them again): a pool
        // at rest holds no slot directory, which a tupper from before the
        // slots would take for a half-made spare.
        for slot in 0..workers {
            let _ = rfs::unlinkat(
                staging.as_fd(),
                slot.to_string().as_str(),
                AtFlags::REMOVEDIR,
            );
        }
        let result = match pool.outcome.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Err(Stop::Stale) => {
                drop(dir);
                return self.destroy_pool(&key);
            }
            Err(Stop::Failed(e)) => Err(e),
            Ok(()) => Ok(()),
        };
        drop(_lock);
        // An `rmi` or `import --force` while the last spare was made (after
        // its check, before its rename) skipped this pool, whose lock was
        // held: checked again now that it is free, so that either this
        // refill or that command sees the other and the pool goes.
        let current = fsutil::open_dir(self.images.as_fd(), name)
            .ok()
            .and_then(|fd| image_key(fd.as_fd()).ok());
        if current.as_deref() != Some(key.as_str()) {
            self.clean_pools()?;
        }
        result
    }

    /// Waits until no container has started for [`IDLE_GAP`] (the containers
    /// directory's mtime changes with every start), at most [`IDLE_WAIT_MAX`]: a
    /// snapshot commit blocks the btrfs transactions of a start that runs at
    /// the same moment, so refills go between starts, not into them. Stops
    /// waiting as soon as `drained` says the pool ran low.
    pub(crate) fn wait_until_idle(&self, drained: &dyn Fn() -> bool) {
        let started = std::time::Instant::now();
        while started.elapsed() < IDLE_WAIT_MAX {
            if drained() {
                return;
            }
            let Ok(st) = rfs::fstat(&self.containers) else {
                return;
            };
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
            let since_ns = (now.tv_sec - st.st_mtime) as i128 * 1_000_000_000
                + (now.tv_nsec as i128 - st.st_mtime_nsec as i128);
            if since_ns >= IDLE_GAP.as_nanos() as i128 {
                return;
            }
            std::thread::sleep(IDLE_GAP);
        }
    }

    /// Destroys pool `key`'s spares and directory (the caller holds its lock).
    fn destroy_pool(&self, key: &str) -> Result<()> {
        let dir =
            fsutil::open_dir(self.pool.as_fd(), key).context(|| format!("open pool/{key}"))?;
        for spare in fsutil::list_dir(dir.as_fd()).context(|| format!("list pool/{key}"))? {
            if spare == STAGING {
                let shown = format!("pool/{key}/{STAGING}");
                let staging =
                    fsutil::open_dir(dir.as_fd(), STAGING).context(|| format!("open {shown}"))?;
                clear_staging(staging.as_fd(), &shown)?;
                rfs::unlinkat(dir.as_fd(), STAGING, AtFlags::REMOVEDIR)
                    .context(|| format!("remove {shown}"))?;
            } else {
                destroy_subvolume(dir.as_fd(), &spare, &format!("pool/{key}/{spare}"))?;
            }
        }
        drop(dir);
        rfs::unlinkat(self.pool.as_fd(), key, AtFlags::REMOVEDIR)
            .context(|| format!("remove pool/{key}"))?;
        let _ = rfs::unlinkat(
            self.pool.as_fd(),
            format!("{key}.lock").as_str(),
            AtFlags::empty(),
        );
        Ok(())
    }

    /// How many spare snapshots are ready, in all pools (`info`).
    pub fn spare_count(&self) -> usize {
        fsutil::list_dir(self.pool.as_fd())
            .unwrap_or_default()
            .iter()
            .filter(|e| !e.ends_with(".lock"))
            .filter_map(|e| fsutil::open_dir(self.pool.as_fd(), e.as_str()).ok())
            .filter_map(|d| count_spares(d.as_fd()).ok())
            .sum()
    }

    /// Destroys every pool whose image no longer exists (after `rmi`, `import
    /// --force`, or a crash), skipping pools that a refill is working on.
    pub fn clean_pools(&self) -> Result<()> {
        let mut live = Vec::new();
        for name in fsutil::list_dir(self.images.as_fd()).context(|| "list images".to_string())? {
            if let Ok(fd) = fsutil::open_dir(self.images.as_fd(), name.as_str()) {
                if let Ok(key) = image_key(fd.as_fd()) {
                    live.push(key);
                }
            }
        }
        let entries = fsutil::list_dir(self.pool.as_fd()).context(|| "list pool".to_string())?;
        for entry in &entries {
            // A lock file without its pool: left by a crash, or re-created by
            // a process that raced the one destroying the pool (below).
            let key = entry.strip_suffix(".lock").unwrap_or(entry);
            if live.iter().any(|k| k == key) || (key != entry && entries.iter().any(|e| e == key)) {
                continue;
            }
            let lock_name = format!("{key}.lock");
            let Some(_lock) = FileLock::acquire(self.pool.as_fd(), &lock_name, true, false)
                .context(|| format!("lock pool/{lock_name}"))?
            else {
                continue;
            };
            // Another `rmi` or `import` may have destroyed it meanwhile (and
            // removed the lock file, which taking the lock made again).
            if fsutil::exists(self.pool.as_fd(), key) {
                self.destroy_pool(key)?;
            } else {
                let _ = rfs::unlinkat(self.pool.as_fd(), lock_name.as_str(), AtFlags::empty());
            }
        }
        Ok(())
    }
}

/// One refill of one pool, shared by its workers.
struct Refill<'a> {
    store: &'a Store,
    image: BorrowedFd<'a>,
    name: &'a str,
    key: &'a str,
    dir: BorrowedFd<'a>,
    staging: BorrowedFd<'a>,
    commands: &'a [&'a str],
    size: usize,
    wait_for_idle: bool,
    /// Spares being made now (counted with the ready ones against `size`).
    making: std::sync::Mutex<usize>,
    /// Why the workers stopped early, if they did.
    outcome: std::sync::Mutex<std::result::Result<(), Stop>>,
}

/// Why a refill stopped before the pool was full.
enum Stop {
    /// The image was replaced or removed: its pool goes.
    Stale,
    /// Making a spare failed.
    Failed(Error),
}

impl Refill<'_> {
    /// One worker: makes spares in staging slot `slot` until the pool is full
    /// or the refill stops.
    fn work(&self, slot: usize) {
        loop {
            if self.stopped() {
                return;
            }
            // An import's own refill does not wait: no container needs it yet;
            // nor does a refill of a pool below its low-water mark: a long run
            // of starts is draining it.
            let low = low_water(self.size);
            if self.wait_for_idle && count_spares(self.dir).is_ok_and(|n| n >= low) {
                self.store
                    .wait_until_idle(&|| count_spares(self.dir).is_ok_and(|n| n < low));
            }
            match self.reserve() {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => return self.stop(Stop::Failed(e)),
            }
            let made = self.make_spare(slot);
            *self.making.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
            if let Err(stop) = made {
                return self.stop(stop);
            }
        }
    }

    /// Counts one more spare in the making if the pool (ready spares, which
    /// runs take meanwhile, and spares being made) is below its size.
    fn reserve(&self) -> Result<bool> {
        let mut making = self.making.lock().unwrap_or_else(|e| e.into_inner());
        let ready = count_spares(self.dir).context(|| format!("list pool/{}", self.key))?;
        if ready + *making >= self.size {
            return Ok(false);
        }
        *making += 1;
        Ok(true)
    }

    /// Whether a worker recorded a reason to stop.
    fn stopped(&self) -> bool {
        self.outcome.lock().map_or(true, |o| o.is_err())
    }

    /// Records why the refill stops (the first reason wins).
    fn stop(&self, why: Stop) {
        let mut outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        if outcome.is_ok() {
            *outcome = Err(why);
        }
    }

    /// Snapshots the image into staging slot `slot` (a directory of its own:
    /// the snapshot ioctl holds its parent directory's lock until the commit,
    /// so spares made side by side need one each, and then share a commit),
    /// prepares it, then moves it into the pool.
    fn make_spare(&self, slot: usize) -> std::result::Result<(), Stop> {
        // The image was replaced or removed meanwhile: its spares go.
        let current = fsutil::open_dir(self.store.images.as_fd(), self.name)
            .ok()
            .and_then(|fd| image_key(fd.as_fd()).ok());
        if current.as_deref() != Some(self.key) {
            return Err(Stop::Stale);
        }
        let (key, name) = (self.key, self.name);
        let slot_name = slot.to_string();
        let slot_dir = fsutil::ensure_dir(self.staging, &slot_name, 0o700)
            .context(|| format!("create pool/{key}/{STAGING}/{slot}"))
            .map_err(Stop::Failed)?;
        let id = names::new_id().map_err(Stop::Failed)?;
        let cid = fsutil::cstring("spare name", id.as_str()).map_err(Stop::Failed)?;
        let tmp = format!("pool/{key}/{STAGING}/{slot}/{id}");
        tupper_ioctl::snapshot(self.image, slot_dir.as_fd(), &cid, false)
            .context(|| format!("snapshot images/{name} -> {tmp}"))
            .map_err(Stop::Failed)?;
        let prepared = (|| {
            let root = fsutil::open_dir(slot_dir.as_fd(), id.as_str())
                .context(|| format!("open {tmp}"))?;
            for mp in plan::MOUNT_POINTS {
                fsutil::ensure_mountpoint(root.as_fd(), mp)?;
            }
            warm(root.as_fd(), self.commands);
            rfs::renameat(slot_dir.as_fd(), id.as_str(), self.dir, id.as_str())
                .context(|| format!("rename {tmp} -> pool/{key}/{id}"))
        })();
        if prepared.is_err() {
            let _ = destroy_subvolume(slot_dir.as_fd(), &id, &tmp);
        }
        prepared.map_err(Stop::Failed)
    }
}

/// Spares a refill makes side by side. Snapshot ioctls that run at the same
/// time share one transaction commit: measured on a loop store, 8 at a time
/// made a spare in 2.3 ms of wall time and 1.5 ms of CPU, one at a time in
/// 7.5 and 5.2 ms (docs/performance.md).
const REFILL_BATCH: usize = 8;

/// Stack of a refill worker (it makes one spare at a time; no deep calls).
const WORKER_STACK: usize = 256 << 10;

/// Empties staging directory `staging` (shown as `shown`): destroys the spares
/// that refills left half-made in its slots (and, from an older layout,
/// directly in it), and the slot directories (the caller holds the refill lock:
/// no worker is using them).
fn clear_staging(staging: BorrowedFd<'_>, shown: &str) -> Result<()> {
    for entry in fsutil::list_dir(staging).context(|| format!("list {shown}"))? {
        if names::is_id(&entry) {
            destroy_subvolume(staging, &entry, &format!("{shown}/{entry}"))?;
            continue;
        }
        let slot_shown = format!("{shown}/{entry}");
        let slot =
            fsutil::open_dir(staging, entry.as_str()).context(|| format!("open {slot_shown}"))?;
        destroy_all_in(slot.as_fd(), &slot_shown)?;
        drop(slot);
        rfs::unlinkat(staging, entry.as_str(), AtFlags::REMOVEDIR)
            .context(|| format!("remove {slot_shown}"))?;
    }
    Ok(())
}

/// Below this many spares a refill stops waiting for quiet moments.
pub fn low_water(size: usize) -> usize {
    size / 4
}

/// The directory of a pool in which spares are made.
const STAGING: &str = ".new";

/// How many ready spares pool directory `dir` holds.
fn count_spares(dir: BorrowedFd<'_>) -> rustix::io::Result<usize> {
    Ok(fsutil::list_ids(dir)?.len())
}

/// Destroys every subvolume in directory `dir` (shown as `shown`).
fn destroy_all_in(dir: BorrowedFd<'_>, shown: &str) -> Result<()> {
    for entry in fsutil::list_dir(dir).context(|| format!("list {shown}"))? {
        destroy_subvolume(dir, &entry, &format!("{shown}/{entry}"))?;
    }
    Ok(())
}

/// At most this many bytes are read to warm one spare (a shell, its ELF
/// interpreter and libc fit).
const WARM_BUDGET: u64 = 16 << 20;

/// A refill waits for this long without a container start before each snapshot.
const IDLE_GAP: std::time::Duration = std::time::Duration::from_millis(20);

/// ... but never longer than this, so that sustained starts still get spares.
const IDLE_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads into the page cache the files that running `commands` (and `/bin/sh`)
/// in the container rooted at `root` would map first. Best effort: a file that
/// cannot be found or read is skipped.
fn warm(root: BorrowedFd<'_>, commands: &[&str]) {
    let mut budget = WARM_BUDGET;
    let mut done: Vec<(u64, u64)> = Vec::new();
    for cmd in std::iter::once(&plan::DEFAULT_COMMAND).chain(commands) {
        let Some(file) = find_in_root(root, cmd) else {
            continue;
        };
        let interp = read_through(&file, &mut budget, &mut done);
        if let Some(interp) = interp {
            if let Some(f) = open_in_root(root, &interp) {
                read_through(&f, &mut budget, &mut done);
            }
            for libc_path in LIBC_PATHS {
                if let Some(f) = open_in_root(root, libc_path) {
                    read_through(&f, &mut budget, &mut done);
                    break;
                }
            }
        }
    }
}

/// Where a dynamic binary's C library usually is.
const LIBC_PATHS: [&str; 4] = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/libc.so.6",
    "/usr/lib64/libc.so.6",
];

/// Opens `path` as the container would resolve it (symlinks stay inside `root`).
fn open_in_root(root: BorrowedFd<'_>, path: &str) -> Option<OwnedFd> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return None;
    }
    rfs::openat2(
        root,
        rel,
        rfs::OFlags::RDONLY | rfs::OFlags::CLOEXEC,
        rfs::Mode::empty(),
        rfs::ResolveFlags::IN_ROOT | rfs::ResolveFlags::NO_MAGICLINKS,
    )
    .ok()
    .filter(|fd| {
        rfs::fstat(fd)
            .is_ok_and(|st| rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile)
    })
}

/// Finds `cmd` as the container's `PATH` search would.
fn find_in_root(root: BorrowedFd<'_>, cmd: &str) -> Option<OwnedFd> {
    if cmd.contains('/') {
        return open_in_root(root, cmd);
    }
    plan::DEFAULT_PATH
        .split(':')
        .find_map(|dir| open_in_root(root, &format!("{dir}/{cmd}")))
}

/// Brings `file` into the page cache (within the budget, once per inode) and
/// returns its ELF interpreter (`PT_INTERP`), if it has one. Only the first
/// page is read; the rest is `POSIX_FADV_WILLNEED`: the kernel reads it
/// ahead into the page cache without copying it to this process (a `read`
/// of the whole file copied ~2 MB per busybox spare for nothing).
fn read_through(file: &OwnedFd, budget: &mut u64, done: &mut Vec<(u64, u64)>) -> Option<String> {
    let st = rfs::fstat(file).ok()?;
    let key = (st.st_dev, st.st_ino);
    if done.contains(&key) || st.st_size as u64 > *budget {
        return None;
    }
    done.push(key);
    *budget -= st.st_size as u64;
    let mut head = vec![0u8; 4096];
    let n = rustix::io::pread(file, &mut head, 0).ok()?;
    head.truncate(n);
    let _ = rfs::fadvise(file, 0, None, rfs::Advice::WillNeed);
    elf_interpreter(&head)
}

/// The `PT_INTERP` path of a 64-bit little-endian ELF file whose first bytes are
/// `head`, when its program headers are within them.
fn elf_interpreter(head: &[u8]) -> Option<String> {
    let u16_at = |o: usize| head.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        head.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |o: usize| {
        head.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    if head.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = u64_at(0x20)? as usize;
    let phentsize = u16_at(0x36)? as usize;
    let phnum = u16_at(0x38)? as usize;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph)? == 3 {
            // PT_INTERP: p_offset at +8, p_filesz at +32.
            let off = u64_at(ph + 8)? as usize;
            let len = u64_at(ph + 32)? as usize;
            let raw = head.get(off..off + len)?;
            let path = raw.split(|&b| b == 0).next()?;
            return std::str::from_utf8(path).ok().map(str::to_string);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_interpreter_of_a_dynamic_elf() {
        // The test binary itself is static (crt-static); a system binary is dynamic.
        let head = std::fs::read("/usr/bin/env").unwrap();
        assert_eq!(
            elf_interpreter(&head[..4096]).as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        let own = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(
            elf_interpreter(&own[..4096]),
            None,
            "a static-pie binary has no PT_INTERP"
        );
        assert_eq!(elf_interpreter(b"#!/bin/sh\n"), None);
    }
}
