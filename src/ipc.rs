//! IPC namespaces and `/dev/shm` (`--ipc`), docker's modes.
//!
//! By default a container has an IPC namespace of its own (`CLONE_NEWIPC`:
//! System V IPC objects, POSIX message queues) and a `tmpfs` of its own on
//! `/dev/shm` (POSIX shared memory). `--ipc host` keeps the host's namespace
//! and binds the host's `/dev/shm`; `--ipc container:NAME` joins NAME's
//! namespace (`setns` in the child) and mounts NAME's `/dev/shm` (a clone of
//! that mount, taken in NAME's mount namespace: [`shm_of`]); `--ipc none`
//! is a namespace of its own without `/dev/shm`. `shareable` is `private`:
//! tupper has no daemon-wide default to keep a container from being joined
//! (see `docs/decisions.md`).

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::{Error, Result};

/// `--ipc`: where a container's IPC namespace and `/dev/shm` come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// Its own namespace and `/dev/shm` (`private`, the default).
    #[default]
    Private,
    /// The same as [`Mode::Private`], as docker spells a container others
    /// may join (`shareable`).
    Shareable,
    /// Its own namespace, no `/dev/shm` (`none`).
    None,
    /// The host's namespace and `/dev/shm` (`host`).
    Host,
    /// The namespace and `/dev/shm` of another container, which must run
    /// (`container:NAME`; the record keeps its ID).
    Container(String),
}

impl Mode {
    /// Parses `private`, `shareable`, `none`, `host` or `container:NAME`.
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "" | "private" => Ok(Mode::Private),
            "shareable" => Ok(Mode::Shareable),
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            _ => crate::names::joined_container(
                "--ipc",
                s,
                "private, shareable, none, host or container:NAME",
            )
            .map(Mode::Container),
        }
    }

    /// The mode as a record keeps it: `None` for the default.
    pub fn recorded(&self) -> Option<String> {
        match self {
            Mode::Private => None,
            other => Some(other.to_string()),
        }
    }

    /// Whether the clone makes a new IPC namespace (`CLONE_NEWIPC`).
    pub fn own_namespace(&self) -> bool {
        matches!(self, Mode::Private | Mode::Shareable | Mode::None)
    }

    /// Whether other containers may join this one's (it has a namespace
    /// and a `/dev/shm` of its own).
    pub fn can_be_joined(&self) -> bool {
        matches!(self, Mode::Private | Mode::Shareable)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Private => f.write_str("private"),
            Mode::Shareable => f.write_str("shareable"),
            Mode::None => f.write_str("none"),
            Mode::Host => f.write_str("host"),
            Mode::Container(name) => write!(f, "container:{name}"),
        }
    }
}

/// What a container that joins another's IPC (`--ipc container:NAME`)
/// is given: NAME's IPC namespace, and a clone of its `/dev/shm` mount.
#[derive(Debug)]
pub struct Joined {
    /// The IPC namespace (an fd of `/proc/PID/ns/ipc`).
    pub namespace: OwnedFd,
    /// The detached clone of its `/dev/shm` ([`shm_of`]).
    pub shm: OwnedFd,
}

/// A clone of the `/dev/shm` mount of the mount namespace `mnt` (another
/// container's), detached, for a joiner to mount on its own: taken on a
/// helper thread that enters that namespace (`open_tree` clones only a
/// mount of the caller's namespace). The last component is not followed
/// if it is a symlink, and the mounts below it are not taken. `shown`
/// names the container in an error.
pub fn shm_of(mnt: BorrowedFd<'_>, shown: &str) -> Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags as F;
    let what = format!("take /dev/shm of container {shown}");
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new()
            .spawn_scoped(s, || -> Result<OwnedFd> {
                crate::launch::unshare_fs(false).map_err(|e| Error::os(&what, e))?;
                rustix::thread::move_into_link_name_space(
                    mnt.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Mount),
                )
                .map_err(|e| Error::os(format!("{what}: enter its mount namespace"), e))?;
                rustix::mount::open_tree(
                    rustix::fs::CWD,
                    c"/dev/shm",
                    F::OPEN_TREE_CLONE | F::OPEN_TREE_CLOEXEC | F::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| Error::os(&what, e))
            })
            .map_err(|e| Error::os(format!("{what}: start a thread"), e))?;
        thread
            .join()
            .unwrap_or_else(|_| Err(Error::msg(format!("{what}: thread panicked"))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_as_docker_spells_them() {
        for s in ["private", "shareable", "none", "host", "container:web"] {
            assert_eq!(Mode::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Mode::parse("").unwrap(), Mode::Private);
        assert_eq!(
            Mode::parse("container:web").unwrap(),
            Mode::Container("web".into())
        );
        for bad in ["container:", "shared", "Host", "container"] {
            let e = Mode::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid --ipc {bad:?}")), "{e}");
        }
        assert_eq!(Mode::Private.recorded(), None);
        assert_eq!(Mode::None.recorded().as_deref(), Some("none"));
        assert!(Mode::None.own_namespace() && !Mode::None.can_be_joined());
        assert!(!Mode::Host.own_namespace() && !Mode::Host.can_be_joined());
        assert!(Mode::Shareable.own_namespace() && Mode::Shareable.can_be_joined());
        assert!(!Mode::Container("a".into()).own_namespace());
    }
}
