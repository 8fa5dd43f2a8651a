//! `tupper cp`: files between the host and a container's root, as
//! `docker cp` copies them.
//!
//! The container side is its snapshot (`containers/ID`), running or not:
//! what its volumes and `tmpfs` mounts hold is not there (copy those on the
//! host side). Paths in the container are resolved with `openat2` and
//! `RESOLVE_IN_ROOT`, so a symlink of the container's leads inside its root,
//! never out; the last component is never followed (a symlink is copied as
//! a symlink). Trees are copied with the import's walker and writer
//! ([`crate::extract::copy_tree`]): every write is an `*at` call below the
//! destination's fd, no symlink of the destination is followed. Into a
//! container, owners, modes, times and extended attributes are kept
//! (docker's `cp -a`); out of one, files become the caller's, without
//! set-user-ID or set-group-ID bits, extended attributes (file
//! capabilities) or device nodes: what a container holds must not give the
//! host's root a set-user-ID program or a disk.
//!
//! Where things land, by docker's rules: a source copied onto an existing
//! directory goes into it under its own name; onto a path that does not
//! exist, it takes that name (its parent must exist); a directory copied
//! with a trailing `/.` gives its contents, not itself.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::store::Store;

/// One side of a `cp`: a host path, or a path in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A host path.
    Host(String),
    /// `CONTAINER:PATH`.
    Container {
        /// Name or ID.
        container: String,
        /// An absolute path inside it (a relative one is taken from `/`).
        path: String,
    },
}

impl Location {
    /// `CONTAINER:PATH` is a container's (a path with `/` before the first
    /// `:`, or starting with `.`, is the host's: `./a:b`).
    pub fn parse(arg: &str) -> Location {
        match arg.split_once(':') {
            Some((c, p)) if !c.is_empty() && !c.contains('/') && !arg.starts_with('.') => {
                Location::Container {
                    container: c.to_string(),
                    path: p.to_string(),
                }
            }
            _ => Location::Host(arg.to_string()),
        }
    }
}

/// Splits a path into its parent and last component; `.` for "the
/// directory's contents" (a trailing `/.`), `None` for the root itself.
fn split(path: &str) -> (String, Option<String>) {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return ("/".to_string(), None);
    }
    match trimmed.rsplit_once('/') {
        Some((parent, last)) => (
            if parent.is_empty() { "/" } else { parent }.to_string(),
            Some(last.to_string()),
        ),
        None => (".".to_string(), Some(trimmed.to_string())),
    }
}

/// Opens directory `path` of the container root `root`, resolved inside it.
fn open_in_root(root: BorrowedFd<'_>, path: &str, shown: &str) -> Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    crate::fsutil::openat2_in_root(
        root,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        ResolveFlags::NO_MAGICLINKS,
    )
    .context(|| format!("open {shown}"))
}

/// `lstat` of `name` in `dir`, `None` when missing.
fn lstat_at(dir: BorrowedFd<'_>, name: &str) -> rustix::io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a copy starts from: a directory fd and the entry's name in it
/// (`None`: the directory itself, for `/` or a trailing `/.`).
struct Source {
    dir: OwnedFd,
    name: Option<String>,
    shown: String,
}

/// Where a copy goes: a directory fd, and the name to create in it.
struct Dest {
    dir: OwnedFd,
    name: String,
    /// The destination is an existing directory the source goes into
    /// (its contents, for a directory source with `/.`).
    into_existing: bool,
    shown: String,
}

impl Store {
    /// Copies `from` to `to` (`tupper cp`); exactly one of them is in a
    /// container. Returns what was copied.
    pub fn copy(&self, from: &Location, to: &Location) -> Result<crate::extract::Stats> {
        match (from, to) {
            (Location::Container { container, path }, Location::Host(host)) => {
                let root = self.container_root(container)?;
                let source = container_source(root.as_fd(), container, path)?;
                let dest = host_dest(host, source.name.as_deref())?;
                copy_entry(&source, &dest, true)
            }
            (Location::Host(host), Location::Container { container, path }) => {
                let root = self.container_root(container)?;
                let source = host_source(host)?;
                let dest = container_dest(root.as_fd(), container, path, source.name.as_deref())?;
                copy_entry(&source, &dest, false)
            }
            _ => Err(Error::msg(
                "cp copies between the host and a container: one of SRC and DEST is CONTAINER:PATH",
            )),
        }
    }

    /// Writes container `name_or_id`'s files (its snapshot, running or not;
    /// not its volumes) to `out` as a tar archive (`tupper export`,
    /// docker's), by [`crate::extract::export_tree`].
    pub fn export_container(
        &self,
        name_or_id: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<crate::extract::Stats> {
        let rec = self.find_container(name_or_id)?;
        crate::extract::export_tree(&self.container_path(&rec.id), out)
    }

    /// `tupper cp CONTAINER:PATH -` (docker's): `path` in the container as
    /// a tar archive written to `out`, under its own name (a directory's
    /// contents with a trailing `/.`), everything kept as [`Store::export_container`]
    /// keeps it: it is not written to the host's files.
    pub fn copy_out_as_tar(
        &self,
        container: &str,
        path: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<crate::extract::Stats> {
        let root = self.container_root(container)?;
        let source = container_source(root.as_fd(), container, path)?;
        match &source.name {
            Some(n) => {
                crate::extract::export_entry(source.dir.as_fd(), n, Path::new(&source.shown), out)
            }
            None => {
                let by_fd = format!(
                    "/proc/self/fd/{}",
                    std::os::fd::AsRawFd::as_raw_fd(&source.dir)
                );
                crate::extract::export_tree(Path::new(&by_fd), out)
            }
        }
    }

    /// `tupper cp - CONTAINER:DIR` (docker's): a tar archive (plain, gzip
    /// or zstd) read from `input` extracted into the existing directory
    /// `dir` of the container, by the import's writer and rules (owners,
    /// modes, extended attributes kept; nothing written outside `dir`). A
    /// broken archive leaves what was extracted before the error.
    pub fn copy_in_from_tar(
        &self,
        input: impl std::io::Read,
        container: &str,
        dir: &str,
    ) -> Result<crate::extract::Stats> {
        let root = self.container_root(container)?;
        let shown = format!("{container}:{dir}");
        let dest = open_in_root(root.as_fd(), dir, &shown)?;
        // The import's messages name the import; this is `cp`.
        crate::extract::extract_archive(input, dest.as_fd(), &mut |_| {}).map_err(|e| {
            match e.to_string().strip_prefix("import: ") {
                Some(rest) => Error::msg(format!("cp - {shown}: {rest}")),
                None => e,
            }
        })
    }

    /// The root of container `name_or_id` (its snapshot).
    fn container_root(&self, name_or_id: &str) -> Result<OwnedFd> {
        let rec = self.find_container(name_or_id)?;
        fsutil::open_dir(self.containers.as_fd(), rec.id.as_str())
            .context(|| format!("open the root of container {name_or_id}"))
    }
}

/// The source `path` of `open_dir`'s file system, shown as `shown`.
fn source_for(
    path: &str,
    shown: String,
    open_dir: &dyn Fn(&str) -> Result<OwnedFd>,
) -> Result<Source> {
    let (parent, name) = split(path);
    match name.as_deref() {
        None => Ok(Source {
            dir: open_dir("/")?,
            name: None,
            shown,
        }),
        Some(".") => Ok(Source {
            dir: open_dir(&parent)?,
            name: None,
            shown,
        }),
        Some("..") => Err(Error::msg(format!(
            "cp {shown}: name a file or a directory, not `..`"
        ))),
        Some(n) => {
            let dir = open_dir(&parent)?;
            if lstat_at(dir.as_fd(), n)
                .context(|| format!("stat {shown}"))?
                .is_none()
            {
                return Err(Error::msg(format!("cp {shown}: no such file or directory")));
            }
            Ok(Source {
                dir,
                name: Some(n.to_string()),
                shown,
            })
        }
    }
}

/// The source `path` in a container's root.
fn container_source(root: BorrowedFd<'_>, container: &str, path: &str) -> Result<Source> {
    let shown = format!("{container}:{path}");
    source_for(path, shown.clone(), &|p| open_in_root(root, p, &shown))
}

/// The source `path` on the host.
fn host_source(path: &str) -> Result<Source> {
    source_for(path, path.to_string(), &|p| {
        fsutil::open_dir(rfs::CWD, p).context(|| format!("open {p}"))
    })
}

/// Where a source named `source_name` goes for destination `path` of
/// `open_dir`'s file system.
fn dest_for(
    path: &str,
    source_name: Option<&str>,
    shown: String,
    open_dir: &dyn Fn(&str) -> Result<OwnedFd>,
) -> Result<Dest> {
    let (parent, name) = split(path);
    let dir_only = path.ends_with('/') || path.ends_with("/.");
    let last = match name.as_deref() {
        None | Some(".") => None,
        Some("..") => {
            return Err(Error::msg(format!(
                "cp to {shown}: name a directory, not `..`"
            )))
        }
        Some(n) => Some(n),
    };
    // An existing directory: the source goes into it.
    let existing = match last {
        None => Some(open_dir(if name.is_none() { "/" } else { &parent })?),
        Some(n) => {
            let pdir = open_dir(&parent)?;
            match lstat_at(pdir.as_fd(), n).context(|| format!("stat {shown}"))? {
                Some(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    Some(fsutil::open_dir(pdir.as_fd(), n).context(|| format!("open {shown}"))?)
                }
                Some(_) if dir_only => {
                    return Err(Error::msg(format!("cp to {shown}: not a directory")))
                }
                _ => {
                    if dir_only {
                        return Err(Error::msg(format!(
                            "cp to {shown}: no such directory (a trailing / names one that exists)"
                        )));
                    }
                    return Ok(Dest {
                        dir: pdir,
                        name: n.to_string(),
                        into_existing: false,
                        shown,
                    });
                }
            }
        }
    };
    let dir = existing.expect("an existing directory");
    match source_name {
        // A directory's contents (`SRC/.`), or the root: into it as they are.
        None => Ok(Dest {
            dir,
            name: String::new(),
            into_existing: true,
            shown,
        }),
        Some(n) => Ok(Dest {
            dir,
            name: n.to_string(),
            into_existing: false,
            shown,
        }),
    }
}

fn host_dest(path: &str, source_name: Option<&str>) -> Result<Dest> {
    dest_for(path, source_name, path.to_string(), &|p| {
        fsutil::open_dir(rfs::CWD, p).context(|| format!("open {p}"))
    })
}

fn container_dest(
    root: BorrowedFd<'_>,
    container: &str,
    path: &str,
    source_name: Option<&str>,
) -> Result<Dest> {
    let shown = format!("{container}:{path}");
    dest_for(path, source_name, shown.clone(), &|p| {
        open_in_root(root, p, &shown)
    })
}

/// Copies the source entry to the destination: a directory as a tree (its
/// contents into an existing directory with `/.`), anything else as itself.
fn copy_entry(source: &Source, dest: &Dest, from_container: bool) -> Result<crate::extract::Stats> {
    let kind = match &source.name {
        None => FileType::Directory,
        Some(n) => {
            let st = lstat_at(source.dir.as_fd(), n)
                .context(|| format!("stat {}", source.shown))?
                .ok_or_else(|| {
                    Error::msg(format!("cp {}: no such file or directory", source.shown))
                })?;
            FileType::from_raw_mode(st.st_mode)
        }
    };
    let what = || format!("copy {} to {}", source.shown, dest.shown);
    if kind == FileType::Directory {
        let src = match &source.name {
            None => source.dir.try_clone().context(what)?,
            Some(n) => rfs::openat(
                source.dir.as_fd(),
                n.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .context(what)?,
        };
        let target = match dest.into_existing {
            true => dest.dir.try_clone().context(what)?,
            false => {
                match rfs::mkdirat(
                    dest.dir.as_fd(),
                    dest.name.as_str(),
                    Mode::from_raw_mode(0o755),
                ) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Error::os(what(), e)),
                }
                rfs::openat(
                    dest.dir.as_fd(),
                    dest.name.as_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .context(what)?
            }
        };
        // The walker opens its source by path: the fd's, which is the
        // directory already resolved (inside the container's root).
        let by_fd = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&src));
        return crate::extract::copy_dir(
            Path::new(&by_fd),
            Path::new(&source.shown),
            target.as_fd(),
            from_container,
        );
    }
    // A file, symlink or other node: copied as a one-entry tree, so that the
    // writer's rules (no symlink followed, metadata kept) hold for it too.
    let name = source.name.as_deref().expect("a non-directory has a name");
    crate::extract::copy_one(
        source.dir.as_fd(),
        name,
        dest.dir.as_fd(),
        &dest.name,
        Path::new(&source.shown),
        from_container,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_as_docker_reads_them() {
        let c = |c: &str, p: &str| Location::Container {
            container: c.into(),
            path: p.into(),
        };
        assert_eq!(Location::parse("web:/etc/hosts"), c("web", "/etc/hosts"));
        assert_eq!(Location::parse("web:"), c("web", ""));
        assert_eq!(
            Location::parse("/tmp/a:b"),
            Location::Host("/tmp/a:b".into())
        );
        assert_eq!(Location::parse("./a:b"), Location::Host("./a:b".into()));
        assert_eq!(Location::parse("file"), Location::Host("file".into()));
        assert_eq!(split("/a/b/"), ("/a".to_string(), Some("b".to_string())));
        assert_eq!(split("/a/."), ("/a".to_string(), Some(".".to_string())));
        assert_eq!(split("/"), ("/".to_string(), None));
        assert_eq!(split("b"), (".".to_string(), Some("b".to_string())));
    }
}
