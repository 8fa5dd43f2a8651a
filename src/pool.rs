//! Spare snapshots: a small pool per image, made in advance, so that `run` takes a
//! ready snapshot with one `rename` instead of paying a btrfs transaction commit
//! (`BTRFS_IOC_SNAP_CREATE_V2` waits for a disk flush, ~5 ms on a loop store).
//!
//! Layout: `ROOT/pool/UUID/ID` are spares of the image whose subvolume UUID is
//! `UUID` (32 hex digits), `ROOT/pool/UUID/.new-ID` a spare being prepared, and
//! `ROOT/pool/UUID.lock` the refill lock. Keying by UUID, not by name, is what
//! keeps a spare from ever being handed out for an image that was since replaced
//! (`import --force` makes a new subvolume, with a new UUID) or removed.
//!
//! - take: `renameat(pool/UUID/ID -> containers/CID)`; atomic, so two runs never
//!   get the same spare (the loser gets `ENOENT` and tries the next one).
//! - refill: under the refill lock (non-blocking: one refiller at a time), snapshot
//!   the image to `.new-ID`, create its mount points, rename it to `ID`.
//! - clean: spares of images that no longer exist, and `.new-*` leftovers of a
//!   refill that crashed, are destroyed by the next refill, `rmi` and
//!   `import --force`.
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
pub const DEFAULT_SIZE: usize = 8;

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
        let spares = fsutil::list_dir(dir.as_fd()).context(|| format!("list pool/{key}"))?;
        let ready: Vec<&String> = spares.iter().filter(|s| names::is_id(s)).collect();
        for (i, spare) in ready.iter().enumerate() {
            match rfs::renameat(dir.as_fd(), spare.as_str(), self.containers.as_fd(), id) {
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

    /// Fills the pool of image `name` up to `size` spares. Returns at once when
    /// another process is refilling it.
    pub fn refill_pool(&self, name: &str, size: usize) -> Result<()> {
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
            } else {
                // A spare whose refill crashed before it was ready.
                destroy_subvolume(dir.as_fd(), &entry, &format!("pool/{key}/{entry}"))?;
            }
        }
        while ready < size {
            self.make_spare(image.as_fd(), &dir, &key, name)?;
            ready += 1;
        }
        Ok(())
    }

    /// Snapshots the image into a hidden name, prepares it, then makes it visible.
    fn make_spare(
        &self,
        image: BorrowedFd<'_>,
        dir: &OwnedFd,
        key: &str,
        name: &str,
    ) -> Result<()> {
        let id = names::new_id()?;
        let tmp = format!(".new-{id}");
        let ctmp = fsutil::cstring("spare name", tmp.as_str())?;
        tupper_ioctl::snapshot(image, dir.as_fd(), &ctmp, false)
            .context(|| format!("snapshot images/{name} -> pool/{key}/{tmp}"))?;
        let prepared = (|| {
            let root = fsutil::open_dir(dir.as_fd(), tmp.as_str())
                .context(|| format!("open pool/{key}/{tmp}"))?;
            for mp in plan::MOUNT_POINTS {
                fsutil::ensure_mountpoint(root.as_fd(), mp)?;
            }
            rfs::renameat(dir.as_fd(), tmp.as_str(), dir.as_fd(), id.as_str())
                .context(|| format!("rename pool/{key}/{tmp} -> {id}"))
        })();
        if prepared.is_err() {
            let _ = destroy_subvolume(dir.as_fd(), &tmp, &format!("pool/{key}/{tmp}"));
        }
        prepared
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
        for entry in fsutil::list_dir(self.pool.as_fd()).context(|| "list pool".to_string())? {
            if entry.ends_with(".lock") || live.contains(&entry) {
                continue;
            }
            let lock_name = format!("{entry}.lock");
            let Some(_lock) = FileLock::acquire(self.pool.as_fd(), &lock_name, true, false)
                .context(|| format!("lock pool/{lock_name}"))?
            else {
                continue;
            };
            let dir = fsutil::open_dir(self.pool.as_fd(), entry.as_str())
                .context(|| format!("open pool/{entry}"))?;
            for spare in fsutil::list_dir(dir.as_fd()).context(|| format!("list pool/{entry}"))? {
                destroy_subvolume(dir.as_fd(), &spare, &format!("pool/{entry}/{spare}"))?;
            }
            drop(dir);
            rfs::unlinkat(self.pool.as_fd(), entry.as_str(), AtFlags::REMOVEDIR)
                .context(|| format!("remove pool/{entry}"))?;
            let _ = rfs::unlinkat(self.pool.as_fd(), lock_name.as_str(), AtFlags::empty());
        }
        Ok(())
    }
}
