//! Named volumes: directories of the store that outlive containers
//! (`-v NAME:CTR`, docker's named volumes; `tupper volume ...`).
//!
//! A volume is a btrfs subvolume, `ROOT/volumes/NAME`, bound into the
//! containers that name it as a host directory is ([`crate::volume::Kind::Volume`]).
//! It is made the first time a container names it (or by `volume create`),
//! and then filled with what the container's image has at the mount's path
//! (docker's copy of a new volume's contents), owners and modes kept. It
//! goes only with `volume rm` or `volume prune`, which refuse a volume that
//! a container (running or not) names.
//!
//! Making and removing happen under one lock, `state/volumes.lock`: a
//! volume is made as `volumes/.new-NAME` and renamed once filled (a crash
//! leaves only a `.new-` entry, which the next holder of the lock destroys),
//! and a removal reads the containers' records under it. A start records its
//! container before it makes the volumes it names, so a removal either sees
//! that record or ran before the volume was made.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, OFlags, ResolveFlags};
use rustix::io::Errno;
use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::fsutil::{self, FileLock};
use crate::store::{destroy_subvolume, Store};
use crate::timefmt;
use crate::volume::{Kind, Mount};

/// The prefix of a volume being made.
const NEW: &str = ".new-";

/// A named volume, as `volume ls` and `volume inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// Its directory on the host.
    pub mountpoint: String,
    /// When it was made, RFC 3339 UTC.
    pub created: String,
    /// The IDs of the containers that name it.
    pub containers: Vec<String>,
}

impl Store {
    /// The host directory of volume `name`.
    pub fn volume_path(&self, name: &str) -> std::path::PathBuf {
        self.root().join("volumes").join(name)
    }

    /// `mounts` with the store path of each named volume as its source
    /// (before [`crate::volume::resolve`]); the names are checked.
    pub(crate) fn with_volume_paths(&self, mounts: &[Mount]) -> Result<Vec<Mount>> {
        mounts
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if let (Kind::Volume, Some(name)) = (m.kind, &m.name) {
                    crate::names::validate("volume name", name)?;
                    m.source = Some(path_string(&self.volume_path(name))?);
                }
                Ok(m)
            })
            .collect()
    }

    /// Makes volume `name` unless it exists (`volume create`, which docker
    /// allows again for an existing one); returns whether it was made.
    pub fn create_volume(&self, name: &str) -> Result<bool> {
        crate::names::validate("volume name", name)?;
        let (_lock, dir) = self.lock_volumes()?;
        if fsutil::exists(dir.as_fd(), name) {
            return Ok(false);
        }
        make(dir.as_fd(), name, None, "")?;
        self.event("volume", "create", name, &[("driver", "local")]);
        Ok(true)
    }

    /// Makes the named volumes of `mounts` that do not exist, each filled
    /// with what `rootfs` (the container's root) has at its path; returns
    /// the names made (for [`Store::remove_volumes_made`] when the start
    /// fails after all).
    pub(crate) fn make_volumes(
        &self,
        mounts: &[Mount],
        rootfs: BorrowedFd<'_>,
    ) -> Result<Vec<String>> {
        let (_lock, dir) = self.lock_volumes()?;
        let mut made: Vec<String> = Vec::new();
        for m in mounts.iter().filter(|m| m.kind == Kind::Volume) {
            let Some(name) = m.name.as_deref() else {
                continue;
            };
            if fsutil::exists(dir.as_fd(), name) || made.iter().any(|n| n == name) {
                continue;
            }
            if let Err(e) = make(dir.as_fd(), name, Some(rootfs), &m.destination) {
                for n in &made {
                    let _ = destroy_subvolume(dir.as_fd(), n, &format!("volumes/{n}"));
                }
                return Err(e);
            }
            made.push(name.to_string());
        }
        Ok(made)
    }

    /// Removes the volumes a failed start made ([`Store::make_volumes`]),
    /// unless a container names them meanwhile.
    pub(crate) fn remove_volumes_made(&self, names: &[String]) {
        for n in names {
            let _ = self.remove_volume(n);
        }
    }

    /// All volumes, by name, with the containers that name them.
    pub fn volumes(&self) -> Result<Vec<Volume>> {
        let dir = self.volumes_dir()?;
        let users = self.volume_users()?;
        let mut names: Vec<String> = fsutil::list_dir(dir.as_fd())
            .context(|| format!("list {}/volumes", self.root().display()))?
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names
            .into_iter()
            .map(|name| {
                // Its birth time (btrfs keeps one; the change time moves
                // with every entry made in it).
                let created = rfs::statx(
                    dir.as_fd(),
                    name.as_str(),
                    rfs::AtFlags::empty(),
                    rfs::StatxFlags::BTIME,
                )
                .ok()
                .filter(|st| st.stx_mask & rfs::StatxFlags::BTIME.bits() != 0)
                .map(|st| timefmt::rfc3339(st.stx_btime.tv_sec))
                .unwrap_or_default();
                Volume {
                    mountpoint: path_string(&self.volume_path(&name)).unwrap_or_default(),
                    created,
                    containers: users
                        .iter()
                        .filter(|(_, v)| *v == name)
                        .map(|(id, _)| id.clone())
                        .collect(),
                    name,
                }
            })
            .collect())
    }

    /// Volume `name` (`volume inspect`).
    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.volumes()?
            .into_iter()
            .find(|v| v.name == name)
            .ok_or_else(|| Error::msg(format!("no such volume: {name}")))
    }

    /// Removes volume `name` and what it holds (`volume rm`); refused while
    /// a container, running or not, names it (docker's "volume is in use").
    pub fn remove_volume(&self, name: &str) -> Result<()> {
        crate::names::validate("volume name", name)?;
        let (_lock, dir) = self.lock_volumes()?;
        if !fsutil::exists(dir.as_fd(), name) {
            return Err(Error::msg(format!("no such volume: {name}")));
        }
        let users: Vec<String> = self
            .volume_users()?
            .into_iter()
            .filter(|(_, v)| v == name)
            .map(|(id, _)| id)
            .collect();
        if !users.is_empty() {
            return Err(Error::msg(format!(
                "remove volume {name}: it is in use by container {}",
                users.join(", ")
            ))
            .with_advice("remove the containers that name it first (`tupper rm`)"));
        }
        destroy_subvolume(dir.as_fd(), name, &format!("volumes/{name}"))?;
        self.event("volume", "destroy", name, &[("driver", "local")]);
        Ok(())
    }

    /// Removes every volume no container names (`volume prune`); returns
    /// their names, and the first error once every one was tried.
    pub fn prune_volumes(&self) -> (Vec<String>, Result<()>) {
        let (removed, _, result) = self.prune_volumes_as(false);
        (removed, result)
    }

    /// [`Store::prune_volumes`], and the bytes that freed: each removed
    /// volume's files, counted by a walk before it goes (`system prune
    /// --volumes`).
    pub fn prune_volumes_sized(&self) -> (Vec<String>, u64, Result<()>) {
        self.prune_volumes_as(true)
    }

    fn prune_volumes_as(&self, sized: bool) -> (Vec<String>, u64, Result<()>) {
        let list = match self.volumes() {
            Ok(l) => l,
            Err(e) => return (Vec::new(), 0, Err(e)),
        };
        let (mut removed, mut freed, mut first_error) = (Vec::new(), 0, None);
        for v in list.iter().filter(|v| v.containers.is_empty()) {
            let bytes = match sized {
                true => self.volume_bytes(&v.name),
                false => 0,
            };
            match self.remove_volume(&v.name) {
                Ok(()) => {
                    removed.push(v.name.clone());
                    freed += bytes;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        (removed, freed, first_error.map_or(Ok(()), Err))
    }

    /// (container ID, volume name) for every named volume of every container.
    fn volume_users(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .containers(true)?
            .into_iter()
            .flat_map(|r| {
                r.mounts
                    .into_iter()
                    .filter(|m| m.kind == Kind::Volume)
                    .filter_map(|m| m.name)
                    .map(move |n| (r.id.clone(), n))
            })
            .collect())
    }

    /// `ROOT/volumes`, made on first use.
    fn volumes_dir(&self) -> Result<OwnedFd> {
        let root = fsutil::open_dir(rustix::fs::CWD, self.root())
            .context(|| format!("open store {}", self.root().display()))?;
        fsutil::ensure_dir(root.as_fd(), "volumes", 0o700)
            .context(|| format!("create store directory {}/volumes", self.root().display()))
    }

    /// The volumes' lock, and their directory, from which whatever a crash
    /// left half made is gone.
    fn lock_volumes(&self) -> Result<(FileLock, OwnedFd)> {
        let state = fsutil::open_dir(rustix::fs::CWD, self.state_path())
            .context(|| format!("open {}", self.state_path().display()))?;
        let lock = FileLock::acquire(state.as_fd(), "volumes.lock", true, true)
            .context(|| "lock state/volumes.lock".to_string())?
            .ok_or_else(|| Error::msg("lock state/volumes.lock: held elsewhere"))?;
        let dir = self.volumes_dir()?;
        let entries = fsutil::list_dir(dir.as_fd())
            .context(|| format!("list {}/volumes", self.root().display()))?;
        for half in entries.iter().filter(|n| n.starts_with(NEW)) {
            destroy_subvolume(dir.as_fd(), half, &format!("volumes/{half}"))?;
        }
        Ok((lock, dir))
    }
}

/// Makes volume `name` in `dir` (under the volumes' lock): a subvolume,
/// filled from `path` of `rootfs` if given and a directory there, then
/// given its name.
fn make(dir: BorrowedFd<'_>, name: &str, rootfs: Option<BorrowedFd<'_>>, path: &str) -> Result<()> {
    let new = format!("{NEW}{name}");
    let cnew = fsutil::cstring("volume name", new.as_str())?;
    tupper_ioctl::subvol_create(dir, &cnew)
        .context(|| format!("create subvolume volumes/{name}"))?;
    let fill = || -> Result<()> {
        let Some(root) = rootfs else {
            return Ok(());
        };
        let rel = path.trim_start_matches('/');
        // Resolved inside the container's root; nothing there (or not a
        // directory) leaves the volume empty.
        let source = match fsutil::openat2_in_root(
            root,
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
            Err(e) => return Err(Error::os(format!("open {path} to fill volume {name}"), e)),
        };
        let target =
            fsutil::open_dir(dir, new.as_str()).context(|| format!("open volumes/{new}"))?;
        let by_fd = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&source));
        crate::extract::copy_tree(std::path::Path::new(&by_fd), target.as_fd(), &mut |_| {})
            .map(drop)
            .map_err(|e| Error::msg(format!("fill volume {name} from {path}: {e}")))
    };
    let done = fill().and_then(|()| {
        rfs::renameat(dir, new.as_str(), dir, name)
            .context(|| format!("rename volumes/{new} -> volumes/{name}"))
    });
    if let Err(e) = done {
        let _ = destroy_subvolume(dir, &new, &format!("volumes/{new}"));
        return Err(e);
    }
    Ok(())
}

/// A store path as UTF-8 (the record is JSON).
fn path_string(path: &std::path::Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| Error::msg(format!("{}: not UTF-8", path.display())))
}
