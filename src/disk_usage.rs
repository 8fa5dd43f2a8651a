//! `tupper system df` (docker's): how much the store's images, containers
//! and named volumes take, and how much removing the unused ones would
//! free.
//!
//! Sizes are what docker counts: the sizes of the files (regular files and
//! symlinks; a file with several links once), read by a walk of the tree,
//! not the blocks btrfs allocated (snapshots share their extents, which no
//! per-tree count can show). As docker's:
//!
//! - an image's size is its whole tree; an image made by `tag` is a
//!   snapshot of another (its parent UUID is that image's UUID), the same
//!   files on the same extents, so the two are counted once in the total
//!   and each shows the other's size as shared;
//! - a container's size is what it added or changed since it was made
//!   (its writable layer, [`Store::container_bytes`]), not its image's;
//! - a volume's size is its tree.
//!
//! Active: images some container (running or not) was made from,
//! containers that run, volumes some container names. Reclaimable: what
//! `image prune -a`, `container prune` and `volume prune` would remove.
//! Spare snapshots of the pool, and the trash, are not counted: tupper
//! makes and removes them by itself.

use std::collections::{BTreeMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::container::{Record, Status};
use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::store::Store;

/// One image's share of the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageUsage {
    /// Its name.
    pub name: String,
    /// When it was made, seconds since the epoch.
    pub created_unix: i64,
    /// The size of its files.
    pub size: u64,
    /// What of `size` it shares with other images (all of it when it is a
    /// tag of one, or has tags).
    pub shared_size: u64,
    /// How many containers were made from it.
    pub containers: usize,
    /// Its group: the images that are snapshots of one another (tags)
    /// share one number.
    #[serde(skip)]
    pub(crate) group: usize,
}

/// One container's share of the store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerUsage {
    /// Its record (`ps`'s fields).
    #[serde(flatten)]
    pub record: Record,
    /// What it added or changed since it was made.
    pub size: u64,
}

/// One named volume's share of the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeUsage {
    /// Its name.
    pub name: String,
    /// How many containers name it.
    pub links: usize,
    /// The size of its files.
    pub size: u64,
}

/// What the store holds, item by item (`system df -v`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiskUsage {
    /// The images, by name.
    pub images: Vec<ImageUsage>,
    /// The containers, as `ps -a` lists them.
    pub containers: Vec<ContainerUsage>,
    /// The named volumes, by name.
    pub volumes: Vec<VolumeUsage>,
    /// The images' total, with the files that tags share counted once.
    #[serde(skip)]
    images_size: u64,
    /// What of that no container uses.
    #[serde(skip)]
    images_reclaimable: u64,
}

/// One line of `system df`: a kind of object and what it takes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// `Images`, `Containers` or `Local Volumes` (docker's TYPE).
    pub kind: &'static str,
    /// How many there are.
    pub total: usize,
    /// How many are in use.
    pub active: usize,
    /// The bytes they take.
    pub size: u64,
    /// The bytes that removing the unused ones would free.
    pub reclaimable: u64,
}

impl Summary {
    /// docker's fields as `system df --format` renders them (all text:
    /// `Size` `2.15MB`, `Reclaimable` `1.2kB (50%)`), the bytes beside
    /// them as `SizeBytes` and `ReclaimableBytes`.
    pub fn template_value(&self) -> serde_json::Value {
        serde_json::json!({
            "Type": self.kind,
            "TotalCount": self.total.to_string(),
            "Active": self.active.to_string(),
            "Size": human_size(self.size),
            "Reclaimable": self.reclaimable_text(),
            "SizeBytes": self.size,
            "ReclaimableBytes": self.reclaimable,
        })
    }

    /// docker's RECLAIMABLE: the size, and its share of the total when
    /// there is one (`1.2kB (50%)`).
    pub fn reclaimable_text(&self) -> String {
        match self.size {
            0 => human_size(self.reclaimable),
            total => format!(
                "{} ({}%)",
                human_size(self.reclaimable),
                self.reclaimable * 100 / total
            ),
        }
    }
}

/// A size in powers of 1000 with four significant digits, as docker's
/// `units.HumanSize` writes it (`2.153MB`, `0B`).
pub fn human_size(bytes: u64) -> String {
    crate::stats::scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 4)
}

/// A container's size as `ps -s` shows it (docker's `SizeRw` and
/// `SizeRootFs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ContainerSize {
    /// What it added or changed since it was made.
    pub rw: u64,
    /// All its files: its image's and what it wrote (all its own when its
    /// image was removed or replaced since).
    pub root_fs: u64,
}

impl ContainerSize {
    /// docker's SIZE: `10kB (virtual 2.153MB)`.
    pub fn text(&self) -> String {
        format!(
            "{} (virtual {})",
            human_size(self.rw),
            human_size(self.root_fs)
        )
    }
}

impl DiskUsage {
    /// The three lines of `system df`: images, containers, volumes.
    pub fn summary(&self) -> [Summary; 3] {
        let running = |c: &&ContainerUsage| c.record.status == Status::Running;
        [
            Summary {
                kind: "Images",
                total: self.images.len(),
                active: self.images.iter().filter(|i| i.containers > 0).count(),
                size: self.images_size,
                reclaimable: self.images_reclaimable,
            },
            Summary {
                kind: "Containers",
                total: self.containers.len(),
                active: self.containers.iter().filter(running).count(),
                size: self.containers.iter().map(|c| c.size).sum(),
                reclaimable: self
                    .containers
                    .iter()
                    .filter(|c| !running(c))
                    .map(|c| c.size)
                    .sum(),
            },
            Summary {
                kind: "Local Volumes",
                total: self.volumes.len(),
                active: self.volumes.iter().filter(|v| v.links > 0).count(),
                size: self.volumes.iter().map(|v| v.size).sum(),
                reclaimable: self
                    .volumes
                    .iter()
                    .filter(|v| v.links == 0)
                    .map(|v| v.size)
                    .sum(),
            },
        ]
    }
}

impl Store {
    /// What the store's images, containers and volumes take (`system df`).
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let records = self.containers(true)?;
        let mut containers = Vec::with_capacity(records.len());
        for record in records {
            match self.container_bytes(&record) {
                Ok(size) => containers.push(ContainerUsage { record, size }),
                // Removed meanwhile: not the store's any more.
                Err(_) if self.find_container(&record.id).is_err() => {}
                Err(e) => return Err(e),
            }
        }
        let used: Vec<&str> = containers.iter().map(|c| c.record.image.as_str()).collect();
        let (images, images_size, images_reclaimable) = self.image_usage(&used)?;
        let mut volumes = Vec::new();
        for v in self.volumes()? {
            let Some(size) = self.volume_size(&v.name)? else {
                continue;
            };
            volumes.push(VolumeUsage {
                size,
                links: v.containers.len(),
                name: v.name,
            });
        }
        Ok(DiskUsage {
            images,
            containers,
            volumes,
            images_size,
            images_reclaimable,
        })
    }

    /// The bytes of volume `name`'s files; `None` when it is gone.
    fn volume_size(&self, name: &str) -> Result<Option<u64>> {
        let what = format!("size of volume {name}");
        let dir = match fsutil::open_dir(rfs::CWD, self.volume_path(name)) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(Error::os(format!("{what}: open it"), e)),
        };
        tree_bytes(dir.as_fd(), &what).map(Some)
    }

    /// [`Store::volume_size`], 0 when it cannot be found (`system prune`:
    /// the removal says what is wrong with the volume).
    pub(crate) fn volume_bytes(&self, name: &str) -> u64 {
        self.volume_size(name).ok().flatten().unwrap_or(0)
    }

    /// The bytes of image `name`'s files (`images`' SIZE).
    pub fn image_bytes(&self, name: &str) -> Result<u64> {
        let fd = self.open_image(name)?;
        tree_bytes(fd.as_fd(), &format!("size of image {name}"))
    }

    /// The size of each container of `records` (`ps -s`); each image is
    /// walked once. A container removed meanwhile has zero.
    pub fn container_sizes(&self, records: &[Record]) -> Result<Vec<ContainerSize>> {
        let mut images: BTreeMap<&str, u64> = BTreeMap::new();
        let mut out = Vec::with_capacity(records.len());
        for rec in records {
            let (rw, on_image) = match self.container_bytes_on_image(rec) {
                Ok(found) => found,
                Err(_) if self.find_container(&rec.id).is_err() => (0, false),
                Err(e) => return Err(e),
            };
            let image = match (on_image, images.get(rec.image.as_str())) {
                (false, _) => 0,
                (true, Some(bytes)) => *bytes,
                (true, None) => {
                    let bytes = self.image_bytes(&rec.image)?;
                    images.insert(rec.image.as_str(), bytes);
                    bytes
                }
            };
            out.push(ContainerSize {
                rw,
                root_fs: image + rw,
            });
        }
        Ok(out)
    }

    /// `image prune`: with `all`, removes every image that no container
    /// (running or not) was made from and that `filters` pass (`label`,
    /// `label!`, `until`); without, nothing (tupper's images all have
    /// names: none is dangling). Returns the names removed, the bytes that
    /// freed (a tag's files once all images holding them are gone) and
    /// the first error (every image is tried).
    pub fn prune_images(
        &self,
        all: bool,
        filters: &crate::filter::Filters,
    ) -> (Vec<String>, u64, Result<()>) {
        if !all {
            return (Vec::new(), 0, Ok(()));
        }
        let found = (|| {
            let records = self.containers(true)?;
            let used: Vec<&str> = records.iter().map(|r| r.image.as_str()).collect();
            let (usage, _, _) = self.image_usage(&used)?;
            Ok((usage, self.images()?))
        })();
        let (usage, infos) = match found {
            Ok(found) => found,
            Err(e) => return (Vec::new(), 0, Err(e)),
        };
        let mut removed = Vec::new();
        let mut first_error = None;
        for image in usage.iter().filter(|i| i.containers == 0) {
            let Some(info) = infos.iter().find(|i| i.name == image.name) else {
                continue;
            };
            if !filters.matches_image(&info.config.labels, (info.created_unix, 0)) {
                continue;
            }
            match self.remove_image(&image.name) {
                Ok(()) => removed.push(image.name.clone()),
                // Removed meanwhile by another command: not ours to count.
                Err(_) if self.image(&image.name).is_err() => {}
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        let gone = |g: usize| {
            usage
                .iter()
                .filter(|i| i.group == g)
                .all(|i| removed.contains(&i.name))
        };
        let mut groups: Vec<(usize, u64)> = usage
            .iter()
            .filter(|i| removed.contains(&i.name))
            .map(|i| (i.group, i.size))
            .collect();
        groups.sort();
        groups.dedup_by_key(|(g, _)| *g);
        let freed = groups
            .iter()
            .filter(|(g, _)| gone(*g))
            .map(|(_, size)| size)
            .sum();
        (removed, freed, first_error.map_or(Ok(()), Err))
    }

    /// Each image's usage, the images' total (a tag and what it tags once)
    /// and what of it no container uses.
    /// `used`: the image of each container.
    pub(crate) fn image_usage(&self, used: &[&str]) -> Result<(Vec<ImageUsage>, u64, u64)> {
        let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
        for image in used {
            *uses.entry(image).or_default() += 1;
        }
        // Each image's subvolume UUIDs: its own and its parent's.
        let mut found = Vec::new();
        for info in self.images()? {
            let what = format!("size of image {}", info.name);
            let fd = match fsutil::open_dir(self.images.as_fd(), info.name.as_str()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(Error::os(format!("{what}: open images/{}", info.name), e)),
            };
            let sub = tupper_ioctl::subvol_info(fd.as_fd())
                .context(|| format!("{what}: read its subvolume info"))?;
            found.push((info, sub.uuid, sub.parent_uuid, fd));
        }
        // Images that are snapshots of one another (tags, and tags of tags)
        // hold the same files: a group each, named by its first image.
        let group_of = |mut at: usize| {
            for _ in 0..found.len() {
                match found.iter().position(|f| f.1 == found[at].2) {
                    Some(parent) if parent != at => at = parent,
                    _ => break,
                }
            }
            at
        };
        let groups: Vec<usize> = (0..found.len()).map(group_of).collect();
        let mut group_size: BTreeMap<usize, u64> = BTreeMap::new();
        let mut images = Vec::with_capacity(found.len());
        for (at, (info, _, _, fd)) in found.iter().enumerate() {
            let size = match group_size.get(&groups[at]) {
                Some(size) => *size,
                None => {
                    let size = tree_bytes(fd.as_fd(), &format!("size of image {}", info.name))?;
                    group_size.insert(groups[at], size);
                    size
                }
            };
            let tagged = groups.iter().filter(|g| **g == groups[at]).count() > 1;
            images.push(ImageUsage {
                name: info.name.clone(),
                created_unix: info.created_unix,
                size,
                shared_size: if tagged { size } else { 0 },
                containers: uses.get(info.name.as_str()).copied().unwrap_or(0),
                group: groups[at],
            });
        }
        let total = group_size.values().sum();
        let unused = group_size
            .iter()
            .filter(|(g, _)| {
                (0..images.len()).all(|at| groups[at] != **g || images[at].containers == 0)
            })
            .map(|(_, size)| size)
            .sum();
        Ok((images, total, unused))
    }
}

/// The bytes of the files below directory `dir`: the sizes of its regular
/// files and symlinks, a file with several links once; an entry removed
/// during the walk is skipped. `what` names the walk in errors.
pub(crate) fn tree_bytes(dir: BorrowedFd<'_>, what: &str) -> Result<u64> {
    let mut linked = HashSet::new();
    let mut path = Vec::new();
    walk(dir, &mut path, &mut linked, what)
}

/// [`tree_bytes`] of `dir`, which is at `path` below the walk's top.
fn walk(
    dir: BorrowedFd<'_>,
    path: &mut Vec<u8>,
    linked: &mut HashSet<(u64, u64)>,
    what: &str,
) -> Result<u64> {
    let shown = |path: &[u8]| match path.is_empty() {
        true => "/".to_string(),
        false => String::from_utf8_lossy(path).into_owned(),
    };
    let mut names = Vec::new();
    match fsutil::for_each_name(dir, |n| names.push(n.to_vec())) {
        // Removed since it was opened (a running container's).
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(Error::os(format!("{what}: read {}", shown(path)), e)),
    }
    let mut bytes = 0;
    for name in names {
        let len = path.len();
        path.push(b'/');
        path.extend_from_slice(&name);
        let st = match rfs::statat(dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(st),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(Error::os(format!("{what}: stat {}", shown(path)), e)),
        };
        match st.map(|st| (FileType::from_raw_mode(st.st_mode), st)) {
            Some((FileType::Directory, _)) => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                match rfs::openat(dir, name.as_slice(), flags, Mode::empty()) {
                    Ok(sub) => bytes += walk(sub.as_fd(), path, linked, what)?,
                    Err(Errno::NOENT) => {}
                    Err(e) => return Err(Error::os(format!("{what}: open {}", shown(path)), e)),
                }
            }
            Some((FileType::RegularFile | FileType::Symlink, st)) => {
                // A file with several links: counted at its first name.
                let first = st.st_nlink <= 1 || linked.insert((st.st_dev, st.st_ino));
                bytes += u64::from(first) * st.st_size.max(0) as u64;
            }
            _ => {}
        }
        path.truncate(len);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_written_as_dockers_human_size() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_200), "1.2kB");
        assert_eq!(human_size(2_153_456), "2.153MB");
        assert_eq!(human_size(5_000_000_000), "5GB");
    }

    #[test]
    fn reclaimable_shows_its_share_of_a_total() {
        let line = |size, reclaimable| Summary {
            kind: "Images",
            total: 2,
            active: 1,
            size,
            reclaimable,
        };
        assert_eq!(line(0, 0).reclaimable_text(), "0B");
        assert_eq!(line(2_400, 1_200).reclaimable_text(), "1.2kB (50%)");
        assert_eq!(line(3_000, 1_000).reclaimable_text(), "1kB (33%)");
        let v = line(2_400, 1_200).template_value();
        assert_eq!(v["Size"], "2.4kB");
        assert_eq!(v["TotalCount"], "2");
        assert_eq!(v["ReclaimableBytes"], 1_200);
    }

    #[test]
    fn a_tree_counts_files_and_links_once() {
        let dir = std::env::temp_dir().join(format!("tupper-du-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/f"), vec![0u8; 1000]).unwrap();
        std::fs::hard_link(dir.join("a/b/f"), dir.join("a/g")).unwrap();
        std::fs::write(dir.join("h"), b"12345").unwrap();
        std::os::unix::fs::symlink("h", dir.join("s")).unwrap();
        let fd = fsutil::open_dir(rfs::CWD, &dir).unwrap();
        let bytes = tree_bytes(fd.as_fd(), "test").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // 1000 (two links), 5, and the symlink's one-byte target.
        assert_eq!(bytes, 1006);
    }
}
