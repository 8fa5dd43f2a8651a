//! Images: import a root filesystem into a read-only subvolume, list, remove.
//!
//! An import fills a fresh subvolume `ROOT/images/.import-ID` (hidden: image names
//! cannot start with a dot; locked by the importer through `ROOT/tmp/import-ID.lock`),
//! makes it read-only and renames it to `ROOT/images/NAME` only when complete (btrfs
//! cannot move a read-only subvolume to another directory, but can rename it within
//! one). On any failure the temporary subvolume is destroyed; one left by a crash
//! (its lock no longer held) is destroyed by the next import.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;

use rustix::fs::{self as rfs, RenameFlags};
use rustix::io::Errno;
use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::extract::{self, Progress, Stats};
use crate::fsutil;
use crate::image_archive::ImageArchive;
use crate::names;
use crate::store::{destroy_subvolume, Store};
use crate::timefmt;

/// Where an import reads its root filesystem from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A tar archive (plain, gzip or zstd) on standard input.
    Stdin,
    /// A tar archive (plain, gzip or zstd) in a file.
    Archive(PathBuf),
    /// A directory tree, copied.
    Directory(PathBuf),
}

impl Source {
    /// `-` is stdin, a directory is copied, anything else is read as an archive.
    pub fn from_arg(arg: &str) -> Source {
        if arg == "-" {
            Source::Stdin
        } else if std::path::Path::new(arg).is_dir() {
            Source::Directory(arg.into())
        } else {
            Source::Archive(arg.into())
        }
    }
}

/// One image, as `tupper images` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    /// The image's name.
    pub name: String,
    /// When the subvolume was created (RFC 3339, UTC).
    pub created: String,
    /// Seconds since the epoch of `created`.
    pub created_unix: i64,
    /// The subvolume's UUID.
    pub uuid: String,
    /// Whether the subvolume is read-only (it always should be).
    pub read_only: bool,
    /// Its configuration (`--change`), when it has one.
    #[serde(skip_serializing_if = "crate::image_config::ImageConfig::is_empty")]
    pub config: crate::image_config::ImageConfig,
    /// The bytes of its files, when asked for ([`Store::image_bytes`];
    /// `images` shows it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// What [`Store::images`] tells of image `name`, whose subvolume is `fd`.
fn image_info(fd: std::os::fd::BorrowedFd<'_>, name: String) -> Result<ImageInfo> {
    let info = tupper_ioctl::subvol_info(fd).context(|| format!("subvolume info images/{name}"))?;
    Ok(ImageInfo {
        created: timefmt::rfc3339(info.otime_sec),
        created_unix: info.otime_sec,
        uuid: tupper_ioctl::format_uuid(&info.uuid),
        read_only: info.readonly,
        config: crate::image_config::read(fd).unwrap_or_default(),
        size: None,
        name,
    })
}

impl Store {
    /// Imports `source` as image `name`; replaces an existing image only when `force`.
    pub fn import(
        &self,
        name: &str,
        source: &Source,
        force: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Stats> {
        self.import_with(name, source, force, &[], progress)
    }

    /// [`Store::import`], the image configured by docker's `changes`
    /// (`CMD ...`, see [`crate::image_config`]; none: no configuration,
    /// whatever the archive's root carries).
    pub fn import_with(
        &self,
        name: &str,
        source: &Source,
        force: bool,
        changes: &[String],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Stats> {
        self.refuse_existing(&format!("import {name}"), name, force)?;
        let mut config = crate::image_config::ImageConfig::default();
        config.apply_changes(changes)?;
        // Open the source before anything is created in the store.
        let mut input: Option<Box<dyn Read>> = match source {
            Source::Stdin => Some(Box::new(std::io::stdin().lock())),
            Source::Archive(p) => Some(Box::new(
                std::fs::File::open(p).context(|| format!("open archive {}", p.display()))?,
            )),
            Source::Directory(p) => {
                if !p.is_dir() {
                    return Err(Error::msg(format!(
                        "import {name}: {} is not a directory",
                        p.display()
                    )));
                }
                None
            }
        };
        self.fill_new_image("import", name, force, &config, |dir| {
            match (&mut input, source) {
                (Some(r), _) => extract::extract_archive(r, dir, progress),
                (None, Source::Directory(p)) => extract::copy_tree(p, dir, progress),
                (None, _) => unreachable!("archive sources have an input"),
            }
        })
    }

    /// Loads image `name` from an image archive (`tupper load`, docker's
    /// `load`): docker's format (`docker save`) or OCI's (a layout
    /// directory, or its tar), see [`crate::image_archive`]. Its layers go
    /// into one new subvolume, its configuration (under `changes`) with
    /// them. Standard input is copied to an unnamed temporary file in the
    /// store first (the archive is read out of order). Replaces an existing
    /// image only when `force`.
    pub fn load(
        &self,
        name: &str,
        source: &Source,
        force: bool,
        changes: &[String],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Stats> {
        self.refuse_existing(&format!("load {name}"), name, force)?;
        let archive = match source {
            Source::Stdin => {
                let what = || {
                    format!(
                        "copy standard input to a temporary file in {}/tmp",
                        self.root().display()
                    )
                };
                let fd = rfs::openat(
                    self.tmp.as_fd(),
                    ".",
                    rfs::OFlags::TMPFILE | rfs::OFlags::RDWR | rfs::OFlags::CLOEXEC,
                    rfs::Mode::from_raw_mode(0o600),
                )
                .context(what)?;
                let mut file = std::fs::File::from(fd);
                std::io::copy(&mut std::io::stdin().lock(), &mut file).context(what)?;
                ImageArchive::from_tar(file, "stdin".into())?
            }
            Source::Archive(p) | Source::Directory(p) => ImageArchive::open(p)?,
        };
        let image = archive.image()?;
        let mut config = image.config;
        config.apply_changes(changes)?;
        self.fill_new_image("load", name, force, &config, |dir| {
            let mut total = Stats::default();
            // Progress over all the layers: each one's added to the ones before.
            let mut read_before = 0;
            let n = image.layers.len();
            for (i, layer) in image.layers.iter().enumerate() {
                let shown = format!("layer {} of {n}", i + 1);
                let mut read = 0;
                let mut report = |p: Progress| {
                    read = p.input_bytes;
                    progress(Progress {
                        input_bytes: read_before + p.input_bytes,
                        entries: total.entries + p.entries,
                    })
                };
                let stats = archive.extract_layer(layer, &shown, &mut |r| {
                    extract::extract_layer(r, dir, &mut report)
                })?;
                read_before += read;
                total.entries += stats.entries;
                total.bytes += stats.bytes;
            }
            Ok(total)
        })
    }

    /// Gives image `source` the name `name` too (`tupper tag`, docker's): a
    /// read-only snapshot of it, which shares every block and has its
    /// configuration. An image named `name` already is replaced (docker
    /// moves the tag); its containers keep working.
    pub fn tag_image(&self, source: &str, name: &str) -> Result<()> {
        names::validate("image name", name)?;
        let src = self.open_image(source)?;
        if source == name {
            return Ok(());
        }
        self.new_image(
            &format!("tag {source} {name}"),
            name,
            true,
            |tmp_name, shown_tmp| {
                let ctmp = fsutil::cstring("name", tmp_name)?;
                tupper_ioctl::snapshot(src.as_fd(), self.images.as_fd(), &ctmp, true)
                    .context(|| format!("snapshot images/{source} -> {shown_tmp}"))
            },
        )?;
        self.event("image", "tag", name, &[("name", name), ("source", source)]);
        Ok(())
    }

    /// Writes image `name` to `out` as an image archive (`tupper save`,
    /// docker's): an OCI layout of one layer, its files, with docker's
    /// `manifest.json` (see [`crate::image_archive::save`]).
    pub fn save_image(&self, name: &str, out: &mut dyn std::io::Write) -> Result<()> {
        let fd = self.open_image(name)?;
        let info = tupper_ioctl::subvol_info(fd.as_fd())
            .context(|| format!("subvolume info images/{name}"))?;
        let config = crate::image_config::read(fd.as_fd())?;
        crate::image_archive::save(
            &self.image_path(name),
            name,
            &config,
            &timefmt::rfc3339(info.otime_sec),
            u64::try_from(info.otime_sec).unwrap_or(0),
            self.tmp.as_fd(),
            out,
        )
    }

    /// Makes image `name` (`op` names the command in errors): a new
    /// subvolume that `fill` fills, `config` its configuration, made
    /// read-only and put in place by [`Store::new_image`].
    fn fill_new_image(
        &self,
        op: &str,
        name: &str,
        force: bool,
        config: &crate::image_config::ImageConfig,
        fill: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> Result<Stats>,
    ) -> Result<Stats> {
        let stats = self.new_image(
            &format!("{op} {name}"),
            name,
            force,
            |tmp_name, shown_tmp| {
                let ctmp = fsutil::cstring("name", tmp_name)?;
                tupper_ioctl::subvol_create(self.images.as_fd(), &ctmp)
                    .context(|| format!("create subvolume {shown_tmp}"))?;
                let dir = fsutil::open_dir(self.images.as_fd(), tmp_name)
                    .context(|| format!("open {shown_tmp}"))?;
                let stats = fill(dir.as_fd())?;
                crate::image_config::write(dir.as_fd(), config)
                    .map_err(|e| Error::msg(format!("{op} {name}: {e}")))?;
                tupper_ioctl::set_subvol_readonly(dir.as_fd(), true)
                    .context(|| format!("make {shown_tmp} read-only"))?;
                Ok(stats)
            },
        )?;
        self.event("image", op, name, &[("name", name)]);
        Ok(stats)
    }

    /// Makes image `name` from container `name_or_id` as its files are now
    /// (`tupper commit`): a read-only snapshot of its snapshot, so the
    /// image shares every block with it. A running container is copied as
    /// it is at that instant (what a crash would leave: docker's `commit
    /// --pause=false`). Replaces an existing image only when `force`.
    pub fn commit(&self, name_or_id: &str, name: &str, force: bool) -> Result<()> {
        self.commit_with(name_or_id, name, force, &[])
    }

    /// [`Store::commit`], docker's `changes` applied to the container's
    /// configuration ([`crate::container::Record::config`]: its image's with
    /// the run's command, environment, ... over it, as docker's commit
    /// takes it; a record from before has its image's only).
    pub fn commit_with(
        &self,
        name_or_id: &str,
        name: &str,
        force: bool,
        changes: &[String],
    ) -> Result<()> {
        self.refuse_existing(&format!("commit {name_or_id} -> {name}"), name, force)?;
        let rec = self.find_container(name_or_id)?;
        let rootfs = fsutil::open_dir(self.containers.as_fd(), rec.id.as_str())
            .context(|| format!("open containers/{}", rec.id))?;
        let carried = crate::image_config::read(rootfs.as_fd())
            .map_err(|e| Error::msg(format!("commit {name_or_id} -> {name}: {e}")))?;
        let mut config = rec.config.clone().unwrap_or_else(|| carried.clone());
        config.apply_changes(changes)?;
        self.new_image(
            &format!("commit {name_or_id} -> {name}"),
            name,
            force,
            |tmp_name, shown_tmp| {
                let ctmp = fsutil::cstring("name", tmp_name)?;
                // The snapshot has the container's root's configuration (its
                // image's); another is written before it is read-only.
                let read_only = config == carried;
                tupper_ioctl::snapshot(rootfs.as_fd(), self.images.as_fd(), &ctmp, read_only)
                    .context(|| format!("snapshot containers/{} -> {shown_tmp}", rec.id))?;
                if !read_only {
                    let dir = fsutil::open_dir(self.images.as_fd(), tmp_name)
                        .context(|| format!("open {shown_tmp}"))?;
                    crate::image_config::write(dir.as_fd(), &config)
                        .map_err(|e| Error::msg(format!("commit {name_or_id} -> {name}: {e}")))?;
                    tupper_ioctl::set_subvol_readonly(dir.as_fd(), true)
                        .context(|| format!("make {shown_tmp} read-only"))?;
                }
                Ok(())
            },
        )?;
        self.container_event(&rec, "commit", &[("imageName", name)]);
        Ok(())
    }

    /// Makes image `name` in a temporary subvolume `images/.import-ID`
    /// (which `make` creates and fills, given its name and how to show it),
    /// then renames it into place; on failure the temporary subvolume goes.
    /// `op` names the operation in errors.
    fn new_image<T>(
        &self,
        op: &str,
        name: &str,
        force: bool,
        make: impl FnOnce(&str, &str) -> Result<T>,
    ) -> Result<T> {
        self.clean_stale_imports();
        let tmp_id = names::new_id()?;
        let tmp_name = format!(".import-{tmp_id}");
        let lock_name = format!("import-{tmp_id}.lock");
        let _lock = fsutil::FileLock::acquire(self.tmp.as_fd(), &lock_name, true, true)
            .context(|| format!("lock tmp/{lock_name}"))?;
        let shown_tmp = format!("images/{tmp_name}");
        let result = make(&tmp_name, &shown_tmp).and_then(|made| {
            self.install(op, name, &tmp_name, force)?;
            Ok(made)
        });
        if result.is_err() {
            // Perhaps never made, or gone already (renamed in): errors are ignored.
            let _ = destroy_subvolume(self.images.as_fd(), &tmp_name, &shown_tmp);
        }
        let _ = rfs::unlinkat(self.tmp.as_fd(), lock_name.as_str(), rfs::AtFlags::empty());
        let made = result?;
        // Spares of a replaced image go; the new image gets its own from
        // `refill_pool_now` (the CLI calls it in the background). The image
        // is in place whatever happens here: the spares of a gone image are
        // never handed out (they are keyed by its UUID), and the next
        // `import` or `rmi` cleans what is left.
        let _ = self.clean_pools();
        Ok(made)
    }

    /// Renames the finished subvolume `images/.import-ID` to `images/NAME`, swapping
    /// out an old image when `force` (the old one is then destroyed).
    fn install(&self, op: &str, name: &str, tmp_name: &str, force: bool) -> Result<()> {
        let dir = self.images.as_fd();
        let what = || format!("rename images/{tmp_name} -> images/{name}");
        match rfs::renameat_with(dir, tmp_name, dir, name, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) if force => {
                rfs::renameat_with(dir, tmp_name, dir, name, RenameFlags::EXCHANGE)
                    .context(what)?;
                // images/.import-ID is now the old image.
                destroy_subvolume(
                    dir,
                    tmp_name,
                    &format!("images/{tmp_name} (the replaced image {name})"),
                )
            }
            Err(Errno::EXIST) => Err(already_exists(op, name)),
            Err(e) => Err(Error::os(what(), e)),
        }
    }

    /// Refuses a bad image name, and (unless `force`) the name of an image
    /// that exists; `op` names the command. Before anything is made (the
    /// rename that puts the new image in place checks again).
    fn refuse_existing(&self, op: &str, name: &str, force: bool) -> Result<()> {
        names::validate("image name", name)?;
        match !force && fsutil::exists(self.images.as_fd(), name) {
            true => Err(already_exists(op, name)),
            false => Ok(()),
        }
    }

    /// Destroys temporary import subvolumes whose importer is gone (a crash).
    fn clean_stale_imports(&self) {
        let Ok(entries) = fsutil::list_dir(self.images.as_fd()) else {
            return;
        };
        // A lock whose import died before making its subvolume (the lock is
        // taken first): free, no `.import-ID` to go with it, and older than a
        // minute (a lock file is made a moment before it is locked: one made
        // just now may be about to be taken).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for lock_name in fsutil::list_dir(self.tmp.as_fd()).unwrap_or_default() {
            let Some(tmp_id) = lock_name
                .strip_prefix("import-")
                .and_then(|rest| rest.strip_suffix(".lock"))
            else {
                continue;
            };
            let young = rfs::statat(self.tmp.as_fd(), lock_name.as_str(), rfs::AtFlags::empty())
                .map_or(true, |st| now - st.st_mtime < 60);
            if young
                || entries
                    .iter()
                    .any(|e| e.strip_prefix(".import-") == Some(tmp_id))
            {
                continue;
            }
            if let Ok(Some(_lock)) =
                fsutil::FileLock::acquire(self.tmp.as_fd(), &lock_name, true, false)
            {
                let _ = rfs::unlinkat(self.tmp.as_fd(), lock_name.as_str(), rfs::AtFlags::empty());
            }
        }
        for entry in entries {
            let Some(tmp_id) = entry.strip_prefix(".import-") else {
                continue;
            };
            let lock_name = format!("import-{tmp_id}.lock");
            // Take the lock ourselves so that no importer can still be working on it.
            if let Ok(Some(_lock)) =
                fsutil::FileLock::acquire(self.tmp.as_fd(), &lock_name, true, false)
            {
                let _ = destroy_subvolume(self.images.as_fd(), &entry, &format!("images/{entry}"));
                let _ = rfs::unlinkat(self.tmp.as_fd(), lock_name.as_str(), rfs::AtFlags::empty());
            }
        }
    }

    /// The images in the store, sorted by name.
    pub fn images(&self) -> Result<Vec<ImageInfo>> {
        let mut names = fsutil::list_dir(self.images.as_fd())
            .context(|| format!("list {}/images", self.root().display()))?;
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if names::validate("image name", &name).is_err() {
                continue;
            }
            let Ok(fd) = fsutil::open_dir(self.images.as_fd(), name.as_str()) else {
                continue;
            };
            out.push(image_info(fd.as_fd(), name)?);
        }
        Ok(out)
    }

    /// Image `name` as [`Store::images`] lists it (`image inspect`).
    pub fn image(&self, name: &str) -> Result<ImageInfo> {
        let fd = self.open_image(name)?;
        image_info(fd.as_fd(), name.to_string())
    }

    /// Opens image `name`'s subvolume, with a clear error when there is none.
    pub(crate) fn open_image(&self, name: &str) -> Result<std::os::fd::OwnedFd> {
        names::validate("image name", name)?;
        match fsutil::open_dir(self.images.as_fd(), name) {
            Ok(fd) => Ok(fd),
            Err(Errno::NOENT) => Err(Error::msg(format!("unknown image {name}"))
                .with_advice("see `tupper images`; add one with `tupper import NAME ARCHIVE`")),
            Err(e) => Err(Error::os(format!("open images/{name}"), e)),
        }
    }

    /// Removes image `name`. Containers made from it keep working: they are snapshots.
    pub fn remove_image(&self, name: &str) -> Result<()> {
        drop(self.open_image(name)?);
        destroy_subvolume(self.images.as_fd(), name, &format!("images/{name}"))?;
        self.event("image", "delete", name, &[("name", name)]);
        // The image is gone whatever happens here (see `import`).
        let _ = self.clean_pools();
        Ok(())
    }
}

/// The error of a new image whose name is taken (without `--force`).
fn already_exists(op: &str, name: &str) -> Error {
    Error::msg(format!(
        "{op}: image {name} already exists (use --force to replace it)"
    ))
}
