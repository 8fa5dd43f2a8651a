//! `--userns auto`: a user namespace of the container's own, whose 65,536
//! user and group ids (0-65535) are a range of the host's that no other
//! running container has.
//!
//! - **Where the ranges are.** In systemd's range for containers
//!   (`docs/UIDS-GIDS.md` of systemd: host ids 524288-1879048191,
//!   `0x80000`-`0x6FFFFFFF`), in blocks of 65,536: block N maps the
//!   container's id 0 to host id `0x80000 + N * 0x10000`, and so on up to
//!   65535. A uid and its gid are mapped alike. Host users are expected
//!   below 60000, as systemd does.
//! - **How a block is held.** By an exclusive `flock` on
//!   `/run/tupper/userns/HOST-ID` (an empty file), taken before the clone
//!   and held by the process that runs the container (a detached run's
//!   too) until its end. The host's ids are the host's, so the directory is
//!   too, not a store's: containers of two stores never share a block. The
//!   lock goes with the process: a crash frees the block, and there is
//!   nothing to clean (`/run` is emptied at boot). A start takes the lowest
//!   free block, so there are as many files as containers ever ran at once
//!   with one.
//! - **What is not tied to a block.** The container's files are kept as
//!   the host would own them without a user namespace (the root's mount is
//!   mapped, see [`crate::launch::Trees`]), so a container can get another
//!   block at its next start, and `commit`, `diff`, `export` and `cp` see
//!   the same owners with or without one.

use std::os::fd::AsFd;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::{self, FileLock};

/// How many ids a container's namespace maps (0-65535).
pub const SIZE: u32 = 0x10000;

/// The host id of the first block's id 0.
pub const FIRST: u32 = 0x8_0000;

/// The end of systemd's container range (its last id + 1).
pub const END: u32 = 0x7000_0000;

/// A block of host ids, held for one container while this value lives.
#[derive(Debug)]
pub struct Range {
    /// The host uid (and gid) of the container's root.
    pub host: u32,
    _lock: FileLock,
}

impl Range {
    /// The `uid_map`/`gid_map` line: container id 0 is host id `host`, for
    /// [`SIZE`] ids.
    pub fn map_line(&self) -> String {
        map_line(self.host)
    }
}

/// The `uid_map`/`gid_map` line of the block at host id `host`.
pub fn map_line(host: u32) -> String {
    format!("0 {host} {SIZE}\n")
}

/// Where the blocks' lock files are.
pub const LOCK_DIR: &str = "/run/tupper/userns";

/// Takes the lowest block no running container holds.
pub fn allocate() -> Result<Range> {
    allocate_in(Path::new(LOCK_DIR))
}

/// Takes the lowest block no running container holds, its lock in `dir`
/// (made with its parent when missing).
fn allocate_in(lock_dir: &Path) -> Result<Range> {
    let shown = || lock_dir.display().to_string();
    let mut dir = fsutil::open_dir(rustix::fs::CWD, lock_dir);
    if matches!(dir, Err(rustix::io::Errno::NOENT)) {
        if let Some(parent) = lock_dir.parent() {
            let _ = rustix::fs::mkdir(parent, rustix::fs::Mode::from_raw_mode(0o700));
        }
        dir = fsutil::ensure_dir(rustix::fs::CWD, &shown(), 0o700);
    }
    let dir = dir.map_err(|e| Error::os(format!("create {}", shown()), e))?;
    let mut host = FIRST;
    while host < END {
        let name = host.to_string();
        match FileLock::acquire(dir.as_fd(), &name, true, false) {
            Ok(Some(lock)) => return Ok(Range { host, _lock: lock }),
            Ok(None) => host += SIZE,
            Err(e) => return Err(Error::os(format!("lock {}/{name}", shown()), e)),
        }
    }
    Err(Error::msg(format!(
        "--userns auto: every block of {SIZE} host ids from {FIRST} to {} is held by a running container",
        END - 1
    )))
}

/// Whether a uid or gid of the container (`-u`, `--group-add`) is one its
/// namespace maps.
pub fn maps(id: u32) -> bool {
    id < SIZE
}

/// Refuses what a container with a user namespace cannot have: the host's
/// network namespace (which the namespace's root could not mount a `/sys`
/// for), and a user or group its namespace does not map.
pub fn check(network: crate::net::Mode, user: Option<&crate::user::Resolved>) -> Result<()> {
    let why = match network {
        crate::net::Mode::Host => Some(
            "--userns auto with --net host: the host's network namespace is not the container's user namespace's (its /sys could not be mounted)",
        ),
        crate::net::Mode::Container => Some(
            "--userns auto with --net container: the other container's network namespace is not the container's user namespace's (it could not join it)",
        ),
        _ => None,
    };
    if let Some(why) = why {
        return Err(
            Error::msg(why).with_advice("--userns host runs it in the host's user namespace")
        );
    }
    if let Some(u) = user {
        let ids = [("uid", u.uid), ("gid", u.gid)]
            .into_iter()
            .chain(u.groups.iter().map(|g| ("group", *g)));
        for (what, id) in ids {
            if !maps(id) {
                return Err(Error::msg(format!(
                    "--userns auto: {what} {id} is not one the container's user namespace maps (0-{})",
                    SIZE - 1
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_taken_lowest_first_and_freed_with_their_holder() {
        let dir = std::env::temp_dir().join(format!("tupper-userns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.join("userns");
        let a = allocate_in(&dir).unwrap();
        let b = allocate_in(&dir).unwrap();
        assert_eq!((a.host, b.host), (FIRST, FIRST + SIZE));
        drop(a);
        let c = allocate_in(&dir).unwrap();
        assert_eq!(c.host, FIRST);
        assert_eq!(c.map_line(), "0 524288 65536\n");
        drop((b, c));
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn the_range_is_systemds() {
        assert_eq!(FIRST, 524_288);
        assert_eq!(END - 1, 1_879_048_191);
        assert!(maps(65_535) && !maps(65_536));
    }
}
