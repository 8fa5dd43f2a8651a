//! PID namespaces (`--pid`), docker's modes.
//!
//! By default a container has a PID namespace of its own (`CLONE_NEWPID`):
//! its command is PID 1 there, and when it ends the kernel kills every other
//! process of the namespace. That namespace is also how tupper knows which
//! processes are the container's (`top`, `stats`, `pause`) when it has no
//! cgroup (see [`crate::cgroup`]: a start without limits makes none).
//!
//! `--pid host` keeps the host's PID namespace, and `--pid container:NAME`
//! joins NAME's (the clone is made from a thread that entered it, as
//! `exec`'s is); NAME must run. Either way the namespace is no longer the
//! container's alone, so:
//! - the container always has a cgroup (without limits if none are asked
//!   for), and its processes are those of that cgroup;
//! - when its command ends, tupper kills what is left in the cgroup (no
//!   kernel does it for a PID 1 that is not one), as runc does: the run
//!   that ends, `rm` of a run that was killed and the failed start alike;
//! - with `--init`, the init is a child subreaper (orphans are its to reap)
//!   and passes on every signal a process sends it (its senders have pids
//!   it can see, so it cannot tell tupper's `stop` from the container's).
//!
//! A container whose namespace others joined counts as its own only the
//! processes outside their cgroups (see [`crate::store::Store::members`]).

use std::fmt;

use crate::error::Result;

/// `--pid`: where a container's PID namespace comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// A namespace of its own (`private`, the default).
    #[default]
    Private,
    /// The host's namespace (`host`).
    Host,
    /// The namespace of another container, which must run
    /// (`container:NAME`; the record keeps its ID).
    Container(String),
}

impl Mode {
    /// Parses `private`, `host` or `container:NAME`.
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "" | "private" => Ok(Mode::Private),
            "host" => Ok(Mode::Host),
            _ => crate::names::joined_container("--pid", s, "private, host or container:NAME")
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

    /// Whether the clone makes a new PID namespace (`CLONE_NEWPID`).
    pub fn own_namespace(&self) -> bool {
        *self == Mode::Private
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Private => f.write_str("private"),
            Mode::Host => f.write_str("host"),
            Mode::Container(name) => write!(f, "container:{name}"),
        }
    }
}

/// Whether the container of a record with `--pid` value `recorded` shares
/// a PID namespace (the host's, another container's): its processes are
/// then those of its cgroup.
pub fn shares(recorded: Option<&str>) -> bool {
    recorded.is_some_and(|m| m != "private")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_modes() {
        assert_eq!(Mode::parse("").unwrap(), Mode::Private);
        assert_eq!(Mode::parse("private").unwrap(), Mode::Private);
        assert_eq!(Mode::parse("host").unwrap(), Mode::Host);
        assert_eq!(
            Mode::parse("container:web").unwrap(),
            Mode::Container("web".into())
        );
        for bad in ["container:", "hostt", "ns:/proc/1/ns/pid"] {
            let e = Mode::parse(bad).unwrap_err().to_string();
            assert!(e.contains("invalid --pid"), "{bad}: {e}");
        }
    }

    #[test]
    fn records_only_a_shared_namespace() {
        assert_eq!(Mode::Private.recorded(), None);
        assert_eq!(Mode::Host.recorded().as_deref(), Some("host"));
        assert_eq!(
            Mode::Container("0123".into()).recorded().as_deref(),
            Some("container:0123")
        );
        assert!(shares(Some("host")) && shares(Some("container:0123")));
        assert!(!shares(None) && !shares(Some("private")));
        assert!(Mode::Private.own_namespace() && !Mode::Host.own_namespace());
    }
}
