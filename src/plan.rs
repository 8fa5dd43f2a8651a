//! The child's plan: everything the child does between `clone3` and `execve`, as
//! data, computed by the parent before the clone.
//!
//! The child runs no allocator and takes no lock (another thread of the parent may
//! hold the allocator's lock at the moment of the clone), so every path, argument and
//! environment string is a `CString` made here. The plan is pure: it is built and
//! checked without root in unit tests, and [`crate::child`] only carries it out.

use std::ffi::{CStr, CString};
use std::path::Path;

use rustix::mount::MountFlags;

use crate::error::{Error, Result};
use crate::fsutil::cstring;

/// The devices bind-mounted from the host into the container's `/dev`.
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The `PATH` a container gets unless `-e PATH=...` says otherwise (docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The capabilities a container's command keeps: docker's default set
/// (`CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
/// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP`), as the bit
/// mask `/proc/PID/status` shows as `CapBnd`.
pub const DEFAULT_CAPABILITIES: u64 = crate::capabilities::DEFAULT;

/// The files of `/proc` hidden from the container (docker's `MaskedPaths`):
/// each reads as empty where the kernel has it.
pub const MASKED_FILES: [&str; 7] = [
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
];

/// The directories hidden from the container (docker's `MaskedPaths`): each
/// is an empty read-only directory where the kernel has it.
pub const MASKED_DIRS: [&str; 5] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths of `/proc` the container may read but not write (docker's
/// `ReadonlyPaths`): the non-namespaced sysctls, `sysrq-trigger`, ...
pub const READ_ONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The flags of the container's `/proc` (and of its read-only parts).
pub const PROC_FLAGS: MountFlags = MountFlags::NOSUID
    .union(MountFlags::NODEV)
    .union(MountFlags::NOEXEC);

/// The command a container runs when none is given.
pub const DEFAULT_COMMAND: &str = "/bin/sh";

/// One filesystem operation of the child before `pivot_root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `mount(source, target, fstype, flags, data)`.
    Mount {
        /// The source (`proc`, `tmpfs`, ...).
        source: CString,
        /// The absolute host path of the target, inside the container's root.
        target: CString,
        /// The filesystem type.
        fstype: CString,
        /// `MS_*` flags.
        flags: MountFlags,
        /// Filesystem options, if any.
        data: Option<CString>,
    },
    /// `mount(source, target, NULL, MS_BIND)`: a file or directory of the host.
    Bind {
        /// The host path.
        source: CString,
        /// The absolute host path of the target, inside the container's root.
        target: CString,
    },
    /// `mkdir(path, mode)`; an existing directory is fine.
    Mkdir {
        /// The absolute host path.
        path: CString,
        /// The mode (the child's umask is 0).
        mode: u32,
    },
    /// `mount(NULL, target, NULL, MS_REMOUNT|MS_BIND|flags)`: sets the flags
    /// of a bind mount (all of them: the ones to keep are in `flags`).
    Remount {
        /// The absolute host path of the bind mount.
        target: CString,
        /// The mount's flags after the call.
        flags: MountFlags,
    },
    /// Hides a file of `/proc`: the host's `/dev/null` bound over it (missing:
    /// nothing to hide).
    MaskFile {
        /// The absolute host path, inside the container's root.
        target: CString,
    },
    /// Hides a directory of `/proc` or `/sys`: an empty read-only `tmpfs`
    /// over it (missing: nothing to hide).
    MaskDir {
        /// The absolute host path, inside the container's root.
        target: CString,
    },
    /// Makes a path of `/proc` read-only: bound on itself, then remounted
    /// read-only with `/proc`'s own flags (missing: nothing to protect).
    ReadOnly {
        /// The absolute host path, inside the container's root.
        target: CString,
    },
    /// `open(path, O_CREAT)`: an empty file to bind a device onto.
    Touch {
        /// The absolute host path.
        path: CString,
    },
    /// `symlink(target, link)`.
    Symlink {
        /// What the link points to (a path inside the container).
        target: CString,
        /// The absolute host path of the link.
        link: CString,
    },
    /// A mount the user asked for (`-v`, `--tmpfs`), made in the container's
    /// root with the kernel's mount API.
    Volume(Volume),
    /// `open(path, O_PATH|O_DIRECTORY)` of the container's `/proc/sys`,
    /// kept by the child for `--sysctl` (taken before the read-only bind
    /// over it, so writes through it reach the kernel).
    KeepProcSys {
        /// The absolute host path.
        path: CString,
    },
}

/// A user mount as the child makes it: the destination is resolved inside
/// the container's root (`openat2` with `RESOLVE_IN_ROOT`: a symlink of the
/// image can not lead it out), its missing parts are made, and the source
/// (`open_tree` of a host path, or a new `tmpfs` from `fsopen`/`fsmount`) is
/// moved onto it (`move_mount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The destination's prefixes, relative to the root: `a`, `a/b`, `a/b/c`.
    pub prefixes: Vec<CString>,
    /// The last component of each prefix: `a`, `b`, `c`.
    pub names: Vec<CString>,
    /// Whether a missing destination is made a directory (else an empty file).
    pub dir: bool,
    /// What is mounted.
    pub source: VolumeSource,
    /// The mount's `MOUNT_ATTR_*` flags (always `NODEV`).
    pub attrs: u64,
    /// A named volume, or a bind mount with `idmap`: in a user namespace,
    /// its owners are mapped as the root's are (else a host path keeps the
    /// host's).
    pub mapped: bool,
    /// The tree's propagation, an `MS_*` flag (`MS_PRIVATE` unless the
    /// mount asks for `rslave` or `rshared`).
    pub propagation: u64,
}

/// What a user mount mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A host path, with what is mounted beneath it: the parent opens its
    /// tree (`open_tree` with `OPEN_TREE_CLONE | AT_RECURSIVE`, see
    /// [`crate::launch::Trees`]) before the clone; the child moves it.
    Bind(CString),
    /// A new `tmpfs`, with these `fsconfig` options (`size`, `64m`).
    Tmpfs(Vec<(CString, CString)>),
    /// A detached tree the caller opened (another container's `/dev/shm`,
    /// [`crate::ipc::shm_of`]) and gives [`crate::launch::Trees::open`].
    Given,
}

/// Where a container's `/dev/shm` comes from (see [`crate::ipc`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shm {
    /// A `tmpfs` of its own (of [`PlanInput::shm_size`]).
    #[default]
    Own,
    /// None (`--ipc none`).
    Without,
    /// The host's, bound (`--ipc host`).
    Host,
    /// Another container's (`--ipc container:NAME`): a tree the caller
    /// gives ([`VolumeSource::Given`]).
    Joined,
}

/// An operation with the words that name it in an error (`mount proc on /proc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What to do.
    pub op: Op,
    /// How an error names it, with paths as the container sees them.
    pub shown: String,
}

/// Everything the child needs, allocated before the clone.
#[derive(Debug, Clone)]
pub struct ChildPlan {
    /// The container's root (the snapshot), an absolute host path.
    pub rootfs: CString,
    /// The hostname to set in the new UTS namespace.
    pub hostname: Vec<u8>,
    /// The NIS domain name to set there (`--domainname`); empty: none.
    pub domainname: Vec<u8>,
    /// Mounts and files made under `rootfs` before the pivot.
    pub steps: Vec<Step>,
    /// The working directory inside the container.
    pub workdir: CString,
    /// Its prefixes (`/a`, `/a/b`), made by the child when it is missing
    /// after the mounts (in a volume); empty: not made (`exec`).
    pub workdir_prefixes: Vec<CString>,
    /// Paths to try with `execve`, in order (the `PATH` search, done inside).
    pub exec_candidates: Vec<CString>,
    /// The command and its arguments.
    pub argv: Vec<CString>,
    /// `KEY=VALUE` strings.
    pub env: Vec<CString>,
    /// Whether the child has its own network namespace (then it brings `lo` up).
    pub own_netns: bool,
    /// `--uts host`: the host's UTS namespace (no `CLONE_NEWUTS`, no
    /// `sethostname`).
    pub host_uts: bool,
    /// `--cgroupns host`: the host's cgroup namespace (no
    /// `CLONE_NEWCGROUP`, and no late `unshare` of one).
    pub host_cgroupns: bool,
    /// Whether the clone makes an IPC namespace (`CLONE_NEWIPC`); else the
    /// host's is kept (`--ipc host`) or another container's joined.
    pub own_ipc: bool,
    /// `--ipc container:NAME`: NAME, whose IPC namespace the child joins
    /// (for the error of a failed join; set by the caller).
    pub joined_ipc: Option<String>,
    /// Whether the clone makes a PID namespace (`CLONE_NEWPID`); else the
    /// host's is kept or another container's entered (`--pid`).
    pub own_pid: bool,
    /// `--pid container:NAME`: NAME, whose PID namespace the clone is made
    /// in (for the error of a failed join; set by the caller).
    pub joined_pid: Option<String>,
    /// `--net container:NAME`: NAME, whose network namespace the child
    /// joins (for the error of a failed join; set by the caller).
    pub joined_network: Option<String>,
    /// Whether the child leaves tupper's process group for one of its own
    /// (`setpgid(0, 0)`), so that a signal sent to tupper's group reaches the
    /// container once, forwarded (see [`PlanInput::own_process_group`]).
    pub own_process_group: bool,
    /// The capabilities the command keeps (a bit per `CAP_*` number).
    pub capabilities: u64,
    /// Whether the command runs with `no_new_privs` (`--security-opt
    /// no-new-privileges`): set-user-ID bits and file capabilities do nothing.
    pub no_new_privileges: bool,
    /// The system-call filter loaded right before `execve`; `None` with
    /// `--security-opt seccomp=unconfined`.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// Whether the command gets a terminal of its own (`-t`).
    pub tty: bool,
    /// Whether the command joins the namespaces of a running container
    /// (`tupper exec`) instead of making its own: no mounts, no pivot.
    pub joins: bool,
    /// Whether the child stays PID 1, reaping and passing signals on, and
    /// runs the command in a process of its own (`--init`).
    pub init: bool,
    /// The uid, gid and groups the command runs as (`-u`, `--group-add`);
    /// `None`: tupper's own (root).
    pub user: Option<crate::user::Ids>,
    /// cgroup v1: the clone makes no cgroup namespace; the child makes it
    /// after the go-ahead, once the parent moved it into its cgroup (then
    /// rooted there), and loads its system-call filter after that (the
    /// filter forbids `unshare`).
    pub late_cgroup_ns: bool,
    /// The `--ulimit`s, set after the go-ahead, before the capabilities go
    /// (with a user namespace, by the parent: see [`ChildPlan::userns`]).
    pub ulimits: Vec<crate::ulimit::Ulimit>,
    /// The `--sysctl`s: a path below `/proc/sys` and the value, written
    /// after the go-ahead through the fd of [`Op::KeepProcSys`].
    pub sysctls: Vec<(CString, Vec<u8>)>,
    /// A user namespace of its own (`--userns auto`, see
    /// [`crate::userns`]): the clone makes it, the parent writes its maps
    /// and maps the root's mount, then the child becomes its root; `exec`
    /// joins it. A hard limit above tupper's needs `CAP_SYS_RESOURCE` of the
    /// host's namespace, so the parent sets the `--ulimit`s (`prlimit`).
    pub userns: bool,
}

/// The inputs of a plan, as the user gave them.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The container's hostname.
    pub hostname: &'a str,
    /// Its NIS domain name (`--domainname`); empty: none.
    pub domainname: &'a str,
    /// The command; empty means `/bin/sh`.
    pub command: &'a [String],
    /// `-e` entries: `KEY=VALUE`, or `KEY` to pass the host's value.
    pub env: &'a [String],
    /// The working directory (absolute); `None` is `/`.
    pub workdir: Option<&'a str>,
    /// The host's `TERM`, passed on when set.
    pub term: Option<&'a str>,
    /// The flags of the store's mount (see [`crate::fsutil::mount_flags`]):
    /// the container's root keeps them, and gets `nodev`.
    pub root_flags: MountFlags,
    /// Whether the container has its own network namespace.
    pub own_netns: bool,
    /// Whether the command gets a process group of its own: when tupper's
    /// stdin is not a terminal (a command that reads the terminal must stay
    /// in its foreground process group).
    pub own_process_group: bool,
    /// Whether the command runs without the default system-call filter
    /// (`--security-opt seccomp=unconfined`).
    pub seccomp_unconfined: bool,
    /// A seccomp profile (docker's JSON) in place of the default filter.
    pub seccomp_profile: Option<&'a str>,
    /// Whether the command runs with `no_new_privs`.
    pub no_new_privileges: bool,
    /// The capabilities the command keeps (see [`crate::capabilities`]).
    pub capabilities: u64,
    /// Whether the command gets a terminal of its own (`-t`).
    pub tty: bool,
    /// The user's mounts (`-v`, `--tmpfs`), checked against the host and
    /// ordered (see [`crate::volume::resolve`]).
    pub volumes: &'a [crate::volume::Resolved],
    /// Whether the container's root is read-only (`--read-only`).
    pub read_only: bool,
    /// Whether the command joins a running container (`tupper exec`): then
    /// the plan has no steps (the container's mounts are there already).
    pub joins: bool,
    /// Whether PID 1 is a minimal init that runs the command (`--init`).
    pub init: bool,
    /// Who the command runs as, resolved in the image (`-u`,
    /// `--group-add`); `None`: root, with `HOME=/root`.
    pub user: Option<&'a crate::user::Resolved>,
    /// The `--ulimit`s.
    pub ulimits: &'a [crate::ulimit::Ulimit],
    /// The `--sysctl`s.
    pub sysctls: &'a [crate::sysctl::Sysctl],
    /// The `--device`s (with `privileged`, the host's devices too).
    pub devices: &'a [crate::device::Device],
    /// `--privileged`: no `nodev` on the root, `/dev` and the volumes, a
    /// writable `/sys`, no masks or read-only paths over `/proc` and `/sys`
    /// (the capabilities and the filter are the caller's).
    pub privileged: bool,
    /// A user namespace of its own (`--userns auto`).
    pub userns: bool,
    /// The size of its `/dev/shm`, bytes (`--shm-size`; `None`: docker's
    /// 64 MiB).
    pub shm_size: Option<u64>,
    /// `--uts host`: the host's UTS namespace.
    pub host_uts: bool,
    /// Where its `/dev/shm` comes from (`--ipc`); with [`Shm::Own`] and
    /// [`Shm::Without`], with an IPC namespace of its own.
    pub shm: Shm,
    /// `--pid host|container:`: a PID namespace it shares (no
    /// `CLONE_NEWPID`; see [`crate::pidns`]).
    pub shared_pid: bool,
    /// Its writes are limited (`--storage-opt size`): docker's filter also
    /// refuses to make btrfs subvolumes and snapshots
    /// ([`crate::seccomp::default_filter_of`]).
    pub no_subvolumes: bool,
}

impl Default for PlanInput<'_> {
    fn default() -> Self {
        PlanInput {
            hostname: "",
            domainname: "",
            command: &[],
            env: &[],
            workdir: None,
            term: None,
            root_flags: MountFlags::empty(),
            own_netns: false,
            own_process_group: false,
            seccomp_unconfined: false,
            seccomp_profile: None,
            no_new_privileges: false,
            capabilities: DEFAULT_CAPABILITIES,
            tty: false,
            sysctls: &[],
            devices: &[],
            privileged: false,
            ulimits: &[],
            volumes: &[],
            read_only: false,
            joins: false,
            init: false,
            user: None,
            userns: false,
            shm_size: None,
            host_uts: false,
            shm: Shm::Own,
            shared_pid: false,
            no_subvolumes: false,
        }
    }
}

impl ChildPlan {
    /// Builds the plan for a container whose root is `rootfs`.
    pub fn new(rootfs: &Path, input: &PlanInput<'_>) -> Result<ChildPlan> {
        let root = rootfs.to_str().ok_or_else(|| {
            Error::msg(format!("container root {} is not UTF-8", rootfs.display()))
        })?;
        let env = environment(input)?;
        let path_var = env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let command: Vec<String> = if input.command.is_empty() {
            vec![DEFAULT_COMMAND.to_string()]
        } else {
            input.command.to_vec()
        };
        if command[0].is_empty() {
            return Err(Error::msg("run: the command is an empty string"));
        }
        let workdir = input.workdir.unwrap_or("/");
        if !workdir.starts_with('/') {
            return Err(Error::msg(format!(
                "invalid working directory {workdir:?}: it must be an absolute path"
            )));
        }
        Ok(ChildPlan {
            rootfs: cstring("container root", root)?,
            hostname: hostname_bytes(input.hostname)?,
            domainname: match input.domainname {
                "" => Vec::new(),
                name if valid_hostname(name) => name.as_bytes().to_vec(),
                name => {
                    return Err(Error::msg(format!(
                        "invalid --domainname {name:?}: use letters, digits, '-' and '.', at most 64 bytes"
                    )))
                }
            },
            steps: match input.joins {
                true => Vec::new(),
                false => all_steps(STEP_ROOT, input)?,
            },
            workdir: cstring("working directory", workdir)?,
            workdir_prefixes: match input.joins {
                true => Vec::new(),
                false => path_prefixes(workdir)
                    .iter()
                    .map(|p| cstring("working directory", p.as_str()))
                    .collect::<Result<_>>()?,
            },
            exec_candidates: exec_candidates(&command[0], path_var)?,
            argv: command
                .iter()
                .map(|a| cstring("command argument", a.as_str()))
                .collect::<Result<_>>()?,
            env: env
                .iter()
                .map(|e| cstring("environment variable", e.as_str()))
                .collect::<Result<_>>()?,
            own_netns: input.own_netns,
            own_process_group: input.own_process_group,
            capabilities: input.capabilities,
            no_new_privileges: input.no_new_privileges,
            seccomp: match (input.seccomp_unconfined, input.seccomp_profile) {
                (true, _) => None,
                (false, None) => Some(crate::seccomp::default_filter_of(
                    input.capabilities,
                    input.no_subvolumes,
                )),
                (false, Some(json)) => Some(
                    crate::seccomp_profile::compile(
                        json,
                        input.capabilities,
                        crate::seccomp_profile::running_kernel(),
                    )
                    .map_err(|why| Error::msg(format!("the container's seccomp profile: {why}")))?,
                ),
            },
            tty: input.tty,
            joins: input.joins,
            init: input.init && !input.joins,
            late_cgroup_ns: false,
            host_cgroupns: false,
            joined_network: None,
            host_uts: input.host_uts,
            own_ipc: matches!(input.shm, Shm::Own | Shm::Without),
            joined_ipc: None,
            own_pid: !input.shared_pid,
            joined_pid: None,
            ulimits: input.ulimits.to_vec(),
            sysctls: match input.joins {
                true => Vec::new(),
                false => input
                    .sysctls
                    .iter()
                    .map(|s| {
                        Ok((
                            cstring("--sysctl", s.path.as_str())?,
                            s.value.clone().into_bytes(),
                        ))
                    })
                    .collect::<Result<_>>()?,
            },
            user: input.user.map(crate::user::Resolved::ids),
            userns: input.userns,
        })
    }

    /// The command as a person reads it.
    pub fn command_shown(&self) -> String {
        self.argv
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The prefixes of an absolute path: `/a/b` -> `/a`, `/a/b`.
fn path_prefixes(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut prefix = String::new();
    for name in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        prefix.push('/');
        prefix.push_str(name);
        out.push(prefix.clone());
    }
    out
}

/// Whether `name` can be a hostname: letters, digits, `-` and `.`, at most 64
/// bytes, not starting with `-` (RFC 1123).
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with('-')
}

/// Checks a hostname and returns its bytes.
fn hostname_bytes(name: &str) -> Result<Vec<u8>> {
    if valid_hostname(name) {
        Ok(name.as_bytes().to_vec())
    } else {
        Err(Error::msg(format!(
            "invalid hostname {name:?}: use letters, digits, '-' and '.', at most 64 bytes"
        )))
    }
}

/// The container's environment: defaults, the host's TERM, then `-e` entries, later
/// ones replacing earlier ones with the same key.
fn environment(input: &PlanInput<'_>) -> Result<Vec<String>> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOSTNAME".into(), input.hostname.into()),
        (
            "HOME".into(),
            input.user.map_or("/root", |u| u.home.as_str()).into(),
        ),
    ];
    if let Some(term) = input.term {
        env.push(("TERM".into(), term.into()));
    }
    for entry in input.env {
        let (key, value) = match entry.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match std::env::var(entry) {
                Ok(v) => (entry.clone(), v),
                // docker: `-e KEY` with KEY unset on the host sets nothing.
                Err(_) => continue,
            },
        };
        if key.is_empty() || key.contains('\0') {
            return Err(Error::msg(format!(
                "invalid environment variable {entry:?}"
            )));
        }
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// The `execve` paths for `cmd`: itself when it has a `/`, else each absolute `PATH`
/// entry joined with it, as `execvp` would search inside the container.
fn exec_candidates(cmd: &str, path_var: &str) -> Result<Vec<CString>> {
    if cmd.contains('/') {
        return Ok(vec![cstring("command", cmd)?]);
    }
    path_var
        .split(':')
        .filter(|dir| dir.starts_with('/'))
        .map(|dir| cstring("command", format!("{}/{cmd}", dir.trim_end_matches('/'))))
        .collect()
}

/// A mount of `fstype` from `source` on `target` (a path inside the container).
fn mount_step(
    root: &str,
    source: &str,
    target: &str,
    fstype: &str,
    flags: MountFlags,
    data: Option<&str>,
) -> Result<Step> {
    Ok(Step {
        op: Op::Mount {
            source: cstring("mount source", source)?,
            target: cstring("mount path", format!("{root}{target}"))?,
            fstype: cstring("filesystem type", fstype)?,
            flags,
            data: data.map(|d| cstring("mount options", d)).transpose()?,
        },
        shown: format!("mount {fstype} on {target}"),
    })
}

/// Every step of the child before `pivot_root`, in order: the container's own
/// mounts, the user's ([`volume_step`]), the root made read-only
/// (`--read-only`, after the user's mount points were made in it), and the
/// protections of `/proc` and `/sys` last, over anything the user mounted.
fn all_steps(root: &str, input: &PlanInput<'_>) -> Result<Vec<Step>> {
    let mut steps = mount_steps(
        root,
        input.root_flags,
        input.devices,
        input.privileged,
        input.shm_size,
        input.shm,
    )?;
    for v in input.volumes {
        steps.push(volume_step(v, input.privileged)?);
    }
    let nodev = match input.privileged {
        true => MountFlags::empty(),
        false => MountFlags::NODEV,
    };
    if input.read_only {
        steps.push(Step {
            op: Op::Remount {
                target: cstring("container root", root)?,
                flags: input.root_flags | MountFlags::BIND | nodev | MountFlags::RDONLY,
            },
            shown: "make the container's root read-only".to_string(),
        });
    }
    if !input.sysctls.is_empty() {
        steps.push(Step {
            op: Op::KeepProcSys {
                path: cstring("mount path", format!("{root}/proc/sys"))?,
            },
            shown: "open /proc/sys for --sysctl".to_string(),
        });
    }
    if !input.privileged {
        steps.extend(protection_steps(root)?);
    }
    Ok(steps)
}

/// The step of one user mount: a bind mount gets `nodev` (and `rdonly` with
/// `ro`) on everything it brings; a `tmpfs` its options' flags.
fn volume_step(v: &crate::volume::Resolved, privileged: bool) -> Result<Step> {
    use crate::volume::{attr, Kind};
    let m = &v.mount;
    let mut prefixes = Vec::new();
    let mut names = Vec::new();
    let mut prefix = String::new();
    for name in m.destination.split('/').filter(|c| !c.is_empty()) {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(name);
        prefixes.push(cstring("mount path", prefix.as_str())?);
        names.push(cstring("mount path", name)?);
    }
    let mapped = m.kind == Kind::Volume || m.idmap;
    let (source, attrs, shown) = match m.kind {
        Kind::Bind | Kind::Volume => {
            let source = m.source.as_deref().unwrap_or_default();
            let ro = if m.read_only { attr::RDONLY } else { 0 };
            let nodev = if privileged { 0 } else { attr::NODEV };
            let shown = match &m.name {
                Some(name) => format!("mount volume {name} on {}", m.destination),
                None => format!("bind {source} on {}", m.destination),
            };
            (
                VolumeSource::Bind(cstring("volume source", source)?),
                nodev | ro,
                shown,
            )
        }
        Kind::Tmpfs => {
            let (attrs, pairs) = crate::volume::tmpfs_settings(&m.options)
                .map_err(|why| Error::msg(format!("invalid --tmpfs {}: {why}", m.destination)))?;
            let pairs = pairs
                .into_iter()
                .map(|(k, v)| Ok((cstring("tmpfs option", k)?, cstring("tmpfs option", v)?)))
                .collect::<Result<_>>()?;
            (
                VolumeSource::Tmpfs(pairs),
                attrs,
                format!("mount tmpfs on {}", m.destination),
            )
        }
    };
    Ok(Step {
        op: Op::Volume(Volume {
            prefixes,
            names,
            dir: v.dir,
            source,
            attrs,
            mapped,
            propagation: m.propagation.flag(),
        }),
        shown,
    })
}

/// The mounts of a container under `root` (bound on itself, with the store's
/// mount flags `root_flags`), in order (see `docs/architecture.md`).
fn mount_steps(
    root: &str,
    root_flags: MountFlags,
    devices: &[crate::device::Device],
    privileged: bool,
    shm_size: Option<u64>,
    shm: Shm,
) -> Result<Vec<Step>> {
    let at = |p: &str| cstring("mount path", format!("{root}{p}"));
    let hardened = PROC_FLAGS;
    // `--privileged` opens device nodes anywhere, as docker's (whose device
    // cgroup then allows every device), and writes to `/sys`.
    let (nodev, sys_ro, shown) = match privileged {
        true => (
            MountFlags::empty(),
            MountFlags::empty(),
            "bind the container's root on itself (--privileged: device nodes open)",
        ),
        false => (
            MountFlags::NODEV,
            MountFlags::RDONLY,
            "make the container's root nodev",
        ),
    };
    let mut steps = vec![
        // No device node of the snapshot can be opened: CAP_MKNOD is kept (as
        // in docker, where the device cgroup does this job), so without it the
        // command could make and open a node for a host disk.
        Step {
            op: Op::Remount {
                target: cstring("container root", root)?,
                flags: root_flags | MountFlags::BIND | nodev,
            },
            shown: shown.to_string(),
        },
        mount_step(root, "proc", "/proc", "proc", hardened, None)?,
        mount_step(root, "sysfs", "/sys", "sysfs", hardened | sys_ro, None)?,
        mount_step(
            root,
            "tmpfs",
            "/dev",
            "tmpfs",
            // The devices below are mounts of their own, with the host's flags.
            MountFlags::NOSUID | nodev | MountFlags::STRICTATIME,
            Some("mode=755,size=65536k"),
        )?,
    ];
    for dev in DEVICES {
        let target = format!("/dev/{dev}");
        steps.push(Step {
            op: Op::Touch { path: at(&target)? },
            shown: format!("create {target}"),
        });
        steps.push(Step {
            op: Op::Bind {
                source: cstring("device", target.as_str())?,
                target: at(&target)?,
            },
            shown: format!("bind the host's {target}"),
        });
    }
    // `--device`: the same, where the user said, its directories made.
    for d in devices {
        let mut dir = String::from("/dev");
        let parts: Vec<&str> = d.container["/dev/".len()..].split('/').collect();
        for part in &parts[..parts.len() - 1] {
            dir = format!("{dir}/{part}");
            steps.push(Step {
                op: Op::Mkdir {
                    path: at(&dir)?,
                    mode: 0o755,
                },
                shown: format!("create {dir} for --device {d}"),
            });
        }
        steps.push(Step {
            op: Op::Touch {
                path: at(&d.container)?,
            },
            shown: format!("create {} for --device {d}", d.container),
        });
        steps.push(Step {
            op: Op::Bind {
                source: cstring("device", d.host.as_str())?,
                target: at(&d.container)?,
            },
            shown: format!("bind the host's {} on {}", d.host, d.container),
        });
    }
    for (path, mode) in [
        ("/dev/pts", 0o755),
        ("/dev/shm", 0o1777),
        ("/dev/mqueue", 0o755),
    ]
    .into_iter()
    .filter(|(path, _)| *path != "/dev/shm" || shm != Shm::Without)
    {
        steps.push(Step {
            op: Op::Mkdir {
                path: at(path)?,
                mode,
            },
            shown: format!("create {path}"),
        });
    }
    steps.push(mount_step(
        root,
        "devpts",
        "/dev/pts",
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?);
    match shm {
        Shm::Own => {
            let options = match shm_size {
                None => "mode=1777,size=65536k".to_string(),
                Some(bytes) => format!("mode=1777,size={bytes}"),
            };
            steps.push(mount_step(
                root,
                "shm",
                "/dev/shm",
                "tmpfs",
                hardened,
                Some(&options),
            )?);
        }
        Shm::Without => {}
        Shm::Host | Shm::Joined => {
            use crate::volume::attr;
            let (source, shown) = match shm {
                Shm::Host => (
                    VolumeSource::Bind(c"/dev/shm".into()),
                    "bind the host's /dev/shm (--ipc host)",
                ),
                _ => (
                    VolumeSource::Given,
                    "mount the /dev/shm of the container whose IPC namespace it joins",
                ),
            };
            steps.push(Step {
                op: Op::Volume(Volume {
                    prefixes: vec![c"dev".into(), c"dev/shm".into()],
                    names: vec![c"dev".into(), c"shm".into()],
                    dir: true,
                    source,
                    attrs: attr::NOSUID | attr::NODEV | attr::NOEXEC,
                    mapped: false,
                    propagation: linux_raw_sys::general::MS_PRIVATE.into(),
                }),
                shown: shown.to_string(),
            });
        }
    }
    steps.push(mount_step(
        root,
        "mqueue",
        "/dev/mqueue",
        "mqueue",
        hardened,
        None,
    )?);
    for (target, link) in [
        ("pts/ptmx", "/dev/ptmx"),
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ] {
        steps.push(Step {
            op: Op::Symlink {
                target: cstring("symlink target", target)?,
                link: at(link)?,
            },
            shown: format!("create symlink {link} -> {target}"),
        });
    }
    Ok(steps)
}

/// docker's protections of `/proc` and `/sys`: read-only paths and masks.
fn protection_steps(root: &str) -> Result<Vec<Step>> {
    let at = |p: &str| cstring("mount path", format!("{root}{p}"));
    let mut steps = Vec::new();
    for path in READ_ONLY_PATHS {
        steps.push(Step {
            op: Op::ReadOnly { target: at(path)? },
            shown: format!("make {path} read-only"),
        });
    }
    for path in MASKED_FILES {
        steps.push(Step {
            op: Op::MaskFile { target: at(path)? },
            shown: format!("mask {path}"),
        });
    }
    for path in MASKED_DIRS {
        steps.push(Step {
            op: Op::MaskDir { target: at(path)? },
            shown: format!("mask {path}"),
        });
    }
    Ok(steps)
}

/// The container's root as the steps name it: the child runs them from the
/// root (its working directory since the root was bound on itself), so each
/// path resolves from there, not from `/` through the store's directories.
pub const STEP_ROOT: &str = ".";

/// The directories of the image that become mount points; the parent makes sure
/// they are real directories before the clone.
pub const MOUNT_POINTS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Borrowed view used by the child: the C string of a step's main path.
pub fn target_of(op: &Op) -> &CStr {
    match op {
        Op::Mount { target, .. }
        | Op::Bind { target, .. }
        | Op::Remount { target, .. }
        | Op::MaskFile { target }
        | Op::MaskDir { target }
        | Op::ReadOnly { target } => target,
        Op::Mkdir { path, .. } | Op::Touch { path } | Op::KeepProcSys { path } => path,
        Op::Symlink { link, .. } => link,
        // Resolved in the root (the child's working directory).
        Op::Volume(_) => c".",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(input: PlanInput<'_>) -> ChildPlan {
        ChildPlan::new(Path::new("/store/containers/0123456789ab"), &input).unwrap()
    }

    fn base<'a>() -> PlanInput<'a> {
        PlanInput {
            hostname: "web",
            ..Default::default()
        }
    }

    #[test]
    fn user_mounts_come_before_the_read_only_root_and_the_masks() {
        use crate::volume::{parse_tmpfs, parse_volume, Resolved};
        let volumes = vec![
            Resolved {
                mount: parse_volume("/srv:/a/b:ro").unwrap(),
                dir: false,
            },
            Resolved {
                mount: parse_tmpfs("/run:size=1m,exec").unwrap(),
                dir: true,
            },
        ];
        let p = plan(PlanInput {
            volumes: &volumes,
            read_only: true,
            ..base()
        });
        let index = |f: &dyn Fn(&Op) -> bool| p.steps.iter().position(|s| f(&s.op)).unwrap();
        let first_volume = index(&|op| matches!(op, Op::Volume(_)));
        let read_only_root = index(
            &|op| matches!(op, Op::Remount { flags, .. } if flags.contains(MountFlags::RDONLY)),
        );
        let first_mask = index(&|op| matches!(op, Op::ReadOnly { .. } | Op::MaskFile { .. }));
        let last_devices = index(&|op| matches!(op, Op::Symlink { .. }));
        assert!(last_devices < first_volume && first_volume < read_only_root);
        assert!(read_only_root < first_mask);
        let Op::Volume(v) = &p.steps[first_volume].op else {
            unreachable!()
        };
        let strs = |v: &[CString]| {
            v.iter()
                .map(|c| c.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(strs(&v.prefixes), ["a", "a/b"]);
        assert_eq!(strs(&v.names), ["a", "b"]);
        assert_eq!(v.source, VolumeSource::Bind(CString::new("/srv").unwrap()));
        assert_eq!(
            v.attrs,
            crate::volume::attr::NODEV | crate::volume::attr::RDONLY
        );
        assert!(!v.dir);
        assert_eq!(p.steps[first_volume].shown, "bind /srv on /a/b");
        let Op::Volume(t) = &p.steps[first_volume + 1].op else {
            unreachable!()
        };
        assert_eq!(
            t.attrs,
            crate::volume::attr::NODEV | crate::volume::attr::NOSUID
        );
        assert_eq!(
            t.source,
            VolumeSource::Tmpfs(vec![(
                CString::new("size").unwrap(),
                CString::new("1m").unwrap()
            )])
        );
        // Without --read-only the root is never made read-only.
        let p = plan(base());
        assert!(!p.steps.iter().any(
            |s| matches!(&s.op, Op::Remount { flags, .. } if flags.contains(MountFlags::RDONLY))
        ));
    }

    #[test]
    fn defaults_to_sh_with_docker_env() {
        let p = plan(base());
        assert_eq!(p.argv, vec![CString::new("/bin/sh").unwrap()]);
        assert_eq!(p.exec_candidates, vec![CString::new("/bin/sh").unwrap()]);
        let env: Vec<_> = p.env.iter().map(|e| e.to_str().unwrap()).collect();
        assert_eq!(
            env,
            vec![
                &format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=web",
                "HOME=/root"
            ]
        );
        assert_eq!(p.workdir.to_str().unwrap(), "/");
        assert_eq!(p.hostname, b"web");
    }

    #[test]
    fn path_search_uses_the_containers_path() {
        let cmd = vec!["true".to_string()];
        let env = vec!["PATH=/opt/bin:relative:/bin/".to_string()];
        let p = plan(PlanInput {
            command: &cmd,
            env: &env,
            ..base()
        });
        let c: Vec<_> = p
            .exec_candidates
            .iter()
            .map(|c| c.to_str().unwrap())
            .collect();
        assert_eq!(c, vec!["/opt/bin/true", "/bin/true"]);
    }

    #[test]
    fn env_entries_override_and_term_passes() {
        let env = vec![
            "HOME=/home/x".to_string(),
            "A=1".to_string(),
            "A=2".to_string(),
        ];
        let p = plan(PlanInput {
            env: &env,
            term: Some("xterm"),
            ..base()
        });
        let env: Vec<_> = p.env.iter().map(|e| e.to_str().unwrap()).collect();
        assert!(env.contains(&"TERM=xterm"));
        assert!(env.contains(&"HOME=/home/x") && !env.contains(&"HOME=/root"));
        assert_eq!(env.iter().filter(|e| e.starts_with("A=")).count(), 1);
        assert!(env.contains(&"A=2"));
    }

    #[test]
    fn a_user_sets_home_and_the_childs_ids() {
        let user = crate::user::Resolved {
            uid: 1000,
            gid: 100,
            groups: vec![100, 10],
            home: "/home/a".into(),
        };
        let p = plan(PlanInput {
            user: Some(&user),
            ..base()
        });
        assert!(p.env.iter().any(|e| e.to_str() == Ok("HOME=/home/a")));
        let ids = p.user.unwrap();
        assert_eq!((ids.uid.as_raw(), ids.gid.as_raw()), (1000, 100));
        assert_eq!(
            ids.groups.iter().map(|g| g.as_raw()).collect::<Vec<_>>(),
            vec![100, 10]
        );
        // `-e HOME=...` wins (docker's rule).
        let env = vec!["HOME=/x".to_string()];
        let p = plan(PlanInput {
            user: Some(&user),
            env: &env,
            ..base()
        });
        let homes: Vec<_> = p
            .env
            .iter()
            .filter(|e| e.to_bytes().starts_with(b"HOME="))
            .collect();
        assert_eq!(homes, vec![&CString::new("HOME=/x").unwrap()]);
        assert!(plan(base()).user.is_none());
    }

    #[test]
    fn mounts_are_under_the_root_in_order() {
        let p = plan(base());
        let shown: Vec<_> = p.steps.iter().map(|s| s.shown.as_str()).collect();
        assert_eq!(shown[0], "make the container's root nodev");
        assert_eq!(shown[1], "mount proc on /proc");
        assert_eq!(shown[2], "mount sysfs on /sys");
        assert_eq!(shown[3], "mount tmpfs on /dev");
        assert_eq!(target_of(&p.steps[0].op).to_str().unwrap(), ".");
        assert_eq!(p.rootfs.to_str().unwrap(), "/store/containers/0123456789ab");
        for s in &p.steps[1..] {
            assert!(target_of(&s.op).to_str().unwrap().starts_with("./"));
        }
        // Every device is created, then bound from the host.
        for dev in DEVICES {
            let i = shown
                .iter()
                .position(|s| *s == format!("create /dev/{dev}"))
                .unwrap();
            assert_eq!(shown[i + 1], format!("bind the host's /dev/{dev}"));
        }
        // /dev/pts exists before devpts is mounted on it.
        let mk = shown.iter().position(|s| *s == "create /dev/pts").unwrap();
        let mnt = shown
            .iter()
            .position(|s| *s == "mount devpts on /dev/pts")
            .unwrap();
        assert!(mk < mnt);
        let sys = &p.steps[2].op;
        assert!(matches!(sys, Op::Mount { flags, .. } if flags.contains(MountFlags::RDONLY)));
        // Masks come after what they cover is mounted.
        let last_mount = shown.iter().rposition(|s| s.starts_with("mount ")).unwrap();
        let first_mask = shown
            .iter()
            .position(|s| s.starts_with("mask ") || s.starts_with("make /proc"))
            .unwrap();
        assert!(last_mount < first_mask, "{shown:?}");
    }

    #[test]
    fn the_root_keeps_the_stores_flags_and_gets_nodev() {
        let p = plan(PlanInput {
            root_flags: MountFlags::NOSUID | MountFlags::NOATIME,
            ..base()
        });
        let Op::Remount { flags, .. } = &p.steps[0].op else {
            panic!("{:?}", p.steps[0]);
        };
        assert_eq!(
            *flags,
            MountFlags::BIND | MountFlags::NODEV | MountFlags::NOSUID | MountFlags::NOATIME
        );
        let dev = p
            .steps
            .iter()
            .find(|s| s.shown == "mount tmpfs on /dev")
            .unwrap();
        assert!(matches!(&dev.op, Op::Mount { flags, .. } if flags.contains(MountFlags::NODEV)));
    }

    #[test]
    fn privileged_drops_nodev_read_only_sys_and_the_masks() {
        let devices = [crate::device::Device {
            host: "/dev/loop-control".into(),
            container: "/dev/loop-control".into(),
        }];
        let p = plan(PlanInput {
            root_flags: MountFlags::NOATIME,
            privileged: true,
            devices: &devices,
            ..base()
        });
        let Op::Remount { flags, .. } = &p.steps[0].op else {
            panic!("{:?}", p.steps[0]);
        };
        assert_eq!(*flags, MountFlags::BIND | MountFlags::NOATIME);
        let flags_of = |shown: &str| match &p.steps.iter().find(|s| s.shown == shown).unwrap().op {
            Op::Mount { flags, .. } => *flags,
            other => panic!("{other:?}"),
        };
        assert!(!flags_of("mount tmpfs on /dev").contains(MountFlags::NODEV));
        assert!(!flags_of("mount sysfs on /sys").contains(MountFlags::RDONLY));
        assert!(p
            .steps
            .iter()
            .any(|s| s.shown == "bind the host's /dev/loop-control on /dev/loop-control"));
        assert!(!p.steps.iter().any(|s| matches!(
            s.op,
            Op::MaskFile { .. } | Op::MaskDir { .. } | Op::ReadOnly { .. }
        )));
    }

    #[test]
    fn every_masked_and_read_only_path_has_a_step() {
        let p = plan(base());
        let ops: Vec<_> = p.steps.iter().map(|s| &s.op).collect();
        let root = STEP_ROOT;
        let has = |want: &dyn Fn(&Op) -> bool| ops.iter().any(|op| want(op));
        for path in MASKED_FILES {
            let t = format!("{root}{path}");
            assert!(has(
                &|op| matches!(op, Op::MaskFile { target } if target.to_str() == Ok(&t))
            ));
        }
        for path in MASKED_DIRS {
            let t = format!("{root}{path}");
            assert!(has(
                &|op| matches!(op, Op::MaskDir { target } if target.to_str() == Ok(&t))
            ));
        }
        for path in READ_ONLY_PATHS {
            let t = format!("{root}{path}");
            assert!(has(
                &|op| matches!(op, Op::ReadOnly { target } if target.to_str() == Ok(&t))
            ));
        }
    }

    #[test]
    fn refuses_bad_input() {
        let empty = vec![String::new()];
        let nul = vec!["a\0b".to_string()];
        for (input, want) in [
            (
                PlanInput {
                    command: &empty,
                    ..base()
                },
                "empty string",
            ),
            (
                PlanInput {
                    command: &nul,
                    ..base()
                },
                "NUL",
            ),
            (
                PlanInput {
                    workdir: Some("rel"),
                    ..base()
                },
                "absolute",
            ),
            (
                PlanInput {
                    hostname: "bad host",
                    ..base()
                },
                "invalid hostname",
            ),
        ] {
            let err = ChildPlan::new(Path::new("/r"), &input).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
    }
}
