//! The child's side of the fork: from `clone3` to `execve`.
//!
//! The child is a copy of one thread of a possibly multi-threaded parent, so it
//! runs no allocator, takes no lock and prints nothing: it makes raw syscalls
//! (rustix's `linux_raw` backend, plus the libc leaves below) on memory that the
//! parent prepared in a [`ChildPlan`] before the clone. A failure goes back to the
//! parent as a fixed 12-byte [`Report`] on a close-on-exec pipe; a successful
//! `execve` closes that pipe, which the parent reads as "started".
//!
//! The order, which is the demo's (see `docs/syscalls.md`):
//! 1. parent-death signal, umask 0; with a user namespace (`--userns
//!    auto`): open the snapshot's directory (still the host's uid 0), wait
//!    for the parent's first byte (the maps are written, the root's mount
//!    mapped), become the namespace's root;
//! 2. `/` recursively private, so nothing below reaches the host;
//! 3. hostname (new UTS namespace); `lo` up (new network namespace);
//! 4. bind the snapshot on itself (with a user namespace: move the parent's
//!    mapped tree of it there), `open(O_PATH)` it and `fchdir` there, then
//!    proc, sysfs, `/dev` under it, the user's mounts (`-v`, `--tmpfs`), the
//!    root read-only (`--read-only`), and docker's masks over `/proc` and
//!    `/sys`, all by paths relative to the root (`./proc`);
//! 5. `pivot_root(".", ".")`, `umount2(".", MNT_DETACH)`: the old root is
//!    stacked under the new one and detached, leaving no `oldroot` directory
//!    behind;
//! 6. with `-t`, make the terminal and send its master end to the parent;
//!    load the system-call filter ([`crate::seccomp`]), then wait for the
//!    parent's go-ahead (it configures the network meanwhile);
//! 7. working directory, umask 022, default signals, every fd above 2 close-on-exec,
//!    capabilities cut to docker's default set, the user of `-u` (groups,
//!    gid, uid), `no_new_privs` when asked;
//! 8. `execve` each `PATH` candidate until one runs.
//!
//! # Safety
//!
//! This file opts in to `unsafe` for the libc leaves that rustix does not offer
//! safely: `execve`, `close` of the parent's pipe end, `sigprocmask`/`signal` to
//! restore default signal handling, `close_range`, `seccomp`, `mount_setattr`, and `_exit`. Each block says what it relies on.
#![allow(unsafe_code)]

use std::ffi::c_char;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{self, MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::net::{self, AddressFamily, SocketFlags, SocketType};

use crate::plan::{ChildPlan, Op, Volume, VolumeSource, PROC_FLAGS};

/// Where the child failed; sent to the parent with the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Stage {
    /// `prctl(PR_SET_PDEATHSIG)`.
    DeathSignal = 0,
    /// `mount(NULL, "/", NULL, MS_REC|MS_PRIVATE)`.
    PrivateRoot = 1,
    /// `sethostname`.
    Hostname = 2,
    /// Bringing `lo` up over netlink.
    Loopback = 3,
    /// `mount(rootfs, rootfs, MS_BIND|MS_REC)`.
    BindRoot = 4,
    /// One of the plan's steps (`index` says which).
    Step = 5,
    /// Opening the new root.
    OpenRoot = 6,
    /// `pivot_root(".", ".")`.
    PivotRoot = 7,
    /// `umount2(".", MNT_DETACH)` of the old root.
    DetachOldRoot = 8,
    /// Waiting for the parent's go-ahead.
    WaitParent = 9,
    /// `chdir` to the working directory.
    Workdir = 10,
    /// `execve` of the command.
    Exec = 11,
    /// Dropping capabilities from the bounding set, emptying the inheritable one.
    Capabilities = 12,
    /// `setns` into a spare network namespace ([`crate::netns_pool`]).
    JoinNetns = 13,
    /// `setpgid(0, 0)`: a process group of its own.
    ProcessGroup = 14,
    /// `prctl(PR_SET_NO_NEW_PRIVS)`.
    NoNewPrivileges = 15,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` of the system-call filter.
    Seccomp = 16,
    /// Making the container's terminal (`-t`): a pseudo-terminal of its
    /// `devpts`, its controlling terminal and fds 0-2.
    Terminal = 17,
    /// `setns` into the namespaces of a running container (`tupper exec`).
    JoinContainer = 19,
    /// `setgroups`, `setresgid`, `setresuid` of `-u`/`--group-add`.
    User = 18,
    /// `--init`: the fork of the command's process.
    Init = 20,
    /// `unshare(CLONE_NEWCGROUP)` once in the container's cgroup (v1).
    CgroupNamespace = 21,
    /// `setrlimit` of a `--ulimit` (`index` says which).
    Ulimit = 22,
    /// Writing a `--sysctl` (`index` says which).
    Sysctl = 23,
    /// `--userns auto`: waiting for the maps, then `setresgid` and
    /// `setresuid` to the namespace's root.
    UserNamespace = 24,
    /// `setns` into another container's IPC namespace (`--ipc container:`).
    JoinIpc = 25,
    /// `dup2` of the given stdin, stdout and stderr (a health check's probe).
    Stdio = 26,
}

impl Stage {
    /// The stage with this number, if any.
    pub fn from_u32(n: u32) -> Option<Stage> {
        use Stage::*;
        [
            DeathSignal,
            PrivateRoot,
            Hostname,
            Loopback,
            BindRoot,
            Step,
            OpenRoot,
            PivotRoot,
            DetachOldRoot,
            WaitParent,
            Workdir,
            Exec,
            Capabilities,
            JoinNetns,
            ProcessGroup,
            NoNewPrivileges,
            Seccomp,
            Terminal,
            JoinContainer,
            User,
            Init,
            CgroupNamespace,
            Ulimit,
            Sysctl,
            UserNamespace,
            JoinIpc,
            Stdio,
        ]
        .into_iter()
        .find(|s| *s as u32 == n)
    }
}

/// The fixed record a failing child writes to the report pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Where it failed.
    pub stage: u32,
    /// For [`Stage::Step`], the index of the plan step.
    pub index: u32,
    /// The errno.
    pub errno: i32,
}

impl Report {
    /// The size of an encoded report.
    pub const SIZE: usize = 12;

    /// Encodes the report (native endian: both ends are this machine).
    pub fn encode(&self) -> [u8; Report::SIZE] {
        let mut b = [0u8; Report::SIZE];
        b[..4].copy_from_slice(&self.stage.to_ne_bytes());
        b[4..8].copy_from_slice(&self.index.to_ne_bytes());
        b[8..].copy_from_slice(&self.errno.to_ne_bytes());
        b
    }

    /// Decodes a report.
    pub fn decode(b: &[u8; Report::SIZE]) -> Report {
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Report {
            stage: u32::from_ne_bytes(word(0)),
            index: u32::from_ne_bytes(word(4)),
            errno: i32::from_ne_bytes(word(8)),
        }
    }
}

/// `argv` and `envp` as NULL-terminated pointer arrays into the plan's strings.
/// Built by the parent before the clone; valid while the plan lives.
pub struct ExecPointers {
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

impl ExecPointers {
    /// Points into `plan`'s `argv` and `env`.
    pub fn new(plan: &ChildPlan) -> ExecPointers {
        let ptrs = |v: &[std::ffi::CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        ExecPointers {
            argv: ptrs(&plan.argv),
            envp: ptrs(&plan.env),
        }
    }
}

/// The fds the child works with (raw numbers are the same in both processes).
pub struct ChildFds<'a> {
    /// Write end of the report pipe (close-on-exec).
    pub report: BorrowedFd<'a>,
    /// Read end of the go-ahead pipe.
    pub go: BorrowedFd<'a>,
    /// The parent's ends, which the child closes: the go pipe's write end (so
    /// that the child sees EOF if the parent dies), the report pipe's read end,
    /// and the console socket's (-1 without one).
    pub parent_ends: [RawFd; 3],
    /// With `-t`: the socket the child sends its terminal's master end on.
    pub console: Option<BorrowedFd<'a>>,
    /// A spare network namespace to join instead of the new one of
    /// `CLONE_NEWNET` (its `lo` is up already); close-on-exec.
    pub netns: Option<BorrowedFd<'a>>,
    /// Another container's IPC namespace to join (`--ipc container:`).
    pub ipc: Option<BorrowedFd<'a>>,
    /// The command's stdin, stdout and stderr, in place of the parent's
    /// (a library caller's, a health check's probe); none of them is 0 to
    /// 2 (see [`crate::launch::Stdio::new`]).
    pub stdio: Option<[BorrowedFd<'a>; 3]>,
    /// `tupper exec`: a pidfd of the running container's PID 1, whose
    /// namespaces the child joins instead of making its root.
    pub join: Option<BorrowedFd<'a>>,
    /// The detached trees of the plan's bind mounts, in its order (see
    /// [`crate::launch::Trees`]).
    pub volumes: &'a [crate::launch::VolumeTree],
    /// With a user namespace: the root's detached tree (mapped), moved
    /// onto the snapshot's directory in place of the bind.
    pub root: Option<BorrowedFd<'a>>,
}

impl ChildFds<'_> {
    /// The raw numbers of the fds the child uses, in no order.
    fn used(&self) -> impl Iterator<Item = RawFd> + '_ {
        [
            Some(self.report),
            Some(self.go),
            self.console,
            self.netns,
            self.ipc,
            self.join,
            self.root,
            self.stdio.map(|s| s[0]),
            self.stdio.map(|s| s[1]),
            self.stdio.map(|s| s[2]),
        ]
        .into_iter()
        .flatten()
        .map(|fd| fd.as_raw_fd())
        .chain(self.volumes.iter().map(|v| v.tree.as_raw_fd()))
    }
}

/// Closes every fd above 2 but those of `fds`, first thing after the
/// clone: the child then holds no copy of what the parent's other threads
/// have open (a library caller's other containers: their pipes, whose
/// ends their parents wait to see closed, their netns and locks) for the
/// time of its setup. `false` when the kernel has no `close_range`. No
/// allocation: the gaps between the used fds are found by scanning.
fn close_all_but(fds: &ChildFds<'_>) -> bool {
    let mut from: RawFd = 3;
    loop {
        let next = fds.used().filter(|&fd| fd >= from).min();
        if next != Some(from) {
            let last = next.map_or(u32::MAX, |n| (n - 1) as u32);
            // SAFETY: close_range closes this process's own copies (the
            // clone gave it its own fd table) of fds nothing in the child
            // uses: every fd the child uses is in `fds`, and is skipped.
            let r = unsafe { libc::syscall(libc::SYS_close_range, from as u32, last, 0u32) };
            if r != 0 {
                return false;
            }
        }
        match next {
            None => return true,
            Some(n) => from = n + 1,
        }
    }
}

/// The `RTM_NEWLINK` request that sets `lo` (always ifindex 1 in a new network
/// namespace) up, with an ACK requested: [`crate::run`]'s `LOOPBACK_UP`.
pub type LoopbackRequest = [u8; 32];

/// Runs the plan and `execve`s the command; never returns.
pub fn run(plan: &ChildPlan, exec: &ExecPointers, lo_up: &LoopbackRequest, fds: ChildFds<'_>) -> ! {
    if !close_all_but(&fds) {
        // No close_range (Linux < 5.9): the parent's ends at least.
        for fd in fds.parent_ends.into_iter().filter(|fd| *fd >= 0) {
            // SAFETY: `fd` is the parent's end of a pipe or socket made for this
            // launch; after the clone the child has its own copy of the fd table and
            // nothing else in the child uses or owns that descriptor, so closing the
            // raw number is sound.
            unsafe { libc::close(fd) };
        }
    }
    let fail = |stage: Stage, index: usize, errno: Errno| -> ! {
        let report = Report {
            stage: stage as u32,
            index: index as u32,
            errno: errno.raw_os_error(),
        };
        let _ = rustix::io::write(fds.report, &report.encode());
        exit(if stage == Stage::Exec { 127 } else { 125 })
    };
    let check = |stage: Stage, result: rustix::io::Result<()>| {
        if let Err(e) = result {
            fail(stage, 0, e)
        }
    };

    if let Some([input, output, errors]) = fds.stdio {
        check(
            Stage::Stdio,
            rustix::stdio::dup2_stdin(input)
                .and_then(|()| rustix::stdio::dup2_stdout(output))
                .and_then(|()| rustix::stdio::dup2_stderr(errors)),
        );
    }
    check(
        Stage::DeathSignal,
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)),
    );
    if plan.own_process_group {
        check(Stage::ProcessGroup, rustix::process::setpgid(None, None));
    }
    rustix::process::umask(Mode::empty());
    // A run's user namespace: the parent writes its maps (and maps the
    // root's mount), then sends a first byte; until then no id is mapped
    // and nothing can be made in the snapshot. The store's directories are
    // not searched from here on: the parent opened what is needed.
    let mut snapshot_dir = None;
    if plan.userns && fds.join.is_none() {
        // Opened while this process is still the host's uid 0, the owner
        // of the store's directories (no capability needed to search
        // them), and in its own mount namespace (a `move_mount` target must
        // be there: the parent's fd would name the host's).
        match open_rootfs(plan) {
            Ok(fd) => snapshot_dir = Some(fd),
            Err(e) => fail(Stage::OpenRoot, 0, e),
        }
        match read_parent_byte(fds.go) {
            Ok(true) => {}
            Ok(false) => exit(125),
            Err(e) => fail(Stage::UserNamespace, 0, e),
        }
        check(Stage::UserNamespace, become_namespace_root());
    }
    // The container's /proc/sys, for --sysctl after the go-ahead.
    let mut proc_sys: Option<OwnedFd> = None;
    if let Some(container) = fds.join {
        // `tupper exec`: the container's namespaces (the PID namespace was
        // the parent's, for its children, before the clone); joining its
        // mount namespace makes its root this process's root and cwd.
        use rustix::thread::ThreadNameSpaceType as T;
        // The user namespace, if it has one, is entered first (the kernel
        // orders it so), and its root is who the command starts as.
        let user = match plan.userns {
            true => T::USER,
            false => T::empty(),
        };
        check(
            Stage::JoinContainer,
            rustix::thread::move_into_thread_name_spaces(
                container,
                user | T::MOUNT
                    | T::HOST_NAME_AND_NIS_DOMAIN_NAME
                    | T::INTER_PROCESS_COMMUNICATION
                    | T::NETWORK
                    | T::CONTROL_GROUP,
            ),
        );
        if plan.userns {
            check(Stage::UserNamespace, become_namespace_root());
        }
    } else {
        check(
            Stage::PrivateRoot,
            mount::mount_change(
                c"/",
                MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
            ),
        );
        if !plan.host_uts {
            check(Stage::Hostname, rustix::system::sethostname(&plan.hostname));
        }
        if !plan.domainname.is_empty() {
            if let Err(e) = rustix::system::setdomainname(&plan.domainname) {
                fail(Stage::Hostname, 1, e)
            }
        }
        // Before the steps: its mqueue mount is then the joined namespace's.
        if let Some(ipc) = fds.ipc {
            check(
                Stage::JoinIpc,
                rustix::thread::move_into_link_name_space(
                    ipc,
                    Some(rustix::thread::LinkNameSpaceType::InterProcessCommunication),
                ),
            );
        }
        match fds.netns {
            Some(ns) => check(
                Stage::JoinNetns,
                rustix::thread::move_into_link_name_space(
                    ns,
                    Some(rustix::thread::LinkNameSpaceType::Network),
                ),
            ),
            None if plan.own_netns => check(Stage::Loopback, loopback_up(lo_up)),
            None => {}
        }
        let mut opened = None;
        let root = match (fds.root, &snapshot_dir) {
            // A user namespace: the parent's mapped tree of the snapshot,
            // moved onto the snapshot's directory; its fd is then the root.
            (Some(tree), Some(dir)) => {
                check(
                    Stage::BindRoot,
                    mount::move_mount(
                        tree,
                        c"",
                        dir,
                        c"",
                        mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                            | mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
                    ),
                );
                tree
            }
            _ => {
                check(
                    Stage::BindRoot,
                    mount::mount_bind_recursive(plan.rootfs.as_c_str(), plan.rootfs.as_c_str()),
                );
                match open_rootfs(plan) {
                    Ok(fd) => opened = Some(fd),
                    Err(e) => fail(Stage::OpenRoot, 0, e),
                }
                match &opened {
                    Some(fd) => fd.as_fd(),
                    None => fail(Stage::OpenRoot, 0, Errno::BADF),
                }
            }
        };
        // The steps' paths are relative to the root (`plan::STEP_ROOT`): each
        // resolves from here, not again through the store's directories.
        check(Stage::OpenRoot, rustix::process::fchdir(root));
        let mut binds = fds.volumes.iter();
        for (i, step) in plan.steps.iter().enumerate() {
            if let Op::KeepProcSys { path } = &step.op {
                match rfs::open(
                    path.as_c_str(),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => proc_sys = Some(fd),
                    Err(e) => fail(Stage::Step, i, e),
                }
                continue;
            }
            let tree = match &step.op {
                Op::Volume(Volume {
                    source: VolumeSource::Bind(_) | VolumeSource::Given,
                    ..
                }) => match binds.next() {
                    Some(v) => Some(v.tree.as_fd()),
                    None => fail(Stage::Step, i, Errno::BADF),
                },
                _ => None,
            };
            if let Err(e) = apply(&step.op, tree) {
                fail(Stage::Step, i, e)
            }
        }
        check(Stage::PivotRoot, rustix::process::pivot_root(c".", c"."));
        check(
            Stage::DetachOldRoot,
            mount::unmount(c".", UnmountFlags::DETACH),
        );
        check(Stage::DetachOldRoot, rustix::process::chdir(c"/"));
        drop(opened);
        drop(snapshot_dir.take());
    }
    if let Some(console) = fds.console {
        check(
            Stage::Terminal,
            open_terminal(console, plan.user.as_ref().map(|u| u.uid)),
        );
    }
    // The filter is loaded while the parent still sets up the network (its
    // ~0.1 ms of BPF checking and compiling is then off the start's path);
    // everything the child does from here on is a call it allows.
    if let Some(filter) = plan.seccomp.as_ref().filter(|_| !plan.late_cgroup_ns) {
        check(Stage::Seccomp, load_filter(filter.instructions()));
    }

    match read_parent_byte(fds.go) {
        Ok(true) => {}
        // The parent died or gave up: do not run the command.
        Ok(false) => exit(125),
        Err(e) => fail(Stage::WaitParent, 0, e),
    }
    if plan.late_cgroup_ns {
        // SAFETY: only CLONE_NEWCGROUP, in this single-threaded child: its
        // memory, fds and filesystem context stay as they are.
        check(Stage::CgroupNamespace, unsafe {
            rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP)
        });
        if let Some(filter) = &plan.seccomp {
            check(Stage::Seccomp, load_filter(filter.instructions()));
        }
    }

    check(Stage::Workdir, change_to_workdir(plan));
    rustix::process::umask(Mode::from_raw_mode(0o022));
    restore_signals();
    // Whatever the child opened or was given stays out of the container
    // (the rest went at the start; without close_range, this is all).
    cloexec_above_stderr();
    // With the network configured (eth0 is there), and the capabilities
    // still here (a network parameter needs CAP_NET_ADMIN).
    // The fd goes with this block: not into --init's command process.
    if let Some(dir) = proc_sys.take() {
        for (i, (path, value)) in plan.sysctls.iter().enumerate() {
            let written = rfs::openat2(
                &dir,
                path.as_c_str(),
                OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::empty(),
                rfs::ResolveFlags::BENEATH
                    | rfs::ResolveFlags::NO_SYMLINKS
                    | rfs::ResolveFlags::NO_MAGICLINKS,
            )
            .and_then(|fd| rustix::io::write(&fd, value));
            match written {
                Ok(n) if n == value.len() => {}
                Ok(_) => fail(Stage::Sysctl, i, Errno::IO),
                Err(e) => fail(Stage::Sysctl, i, e),
            }
        }
    }
    // Before the capabilities go: raising a hard limit needs CAP_SYS_RESOURCE
    // (of the host's namespace: with a user namespace, the parent set them).
    for (i, u) in plan.ulimits.iter().enumerate().filter(|_| !plan.userns) {
        if let Err(e) = rustix::process::setrlimit(u.resource, u.rlimit()) {
            fail(Stage::Ulimit, i, e)
        }
    }
    check(Stage::Capabilities, drop_capabilities(plan.capabilities));
    match &plan.user {
        Some(user) => check(Stage::User, set_user(user)),
        // Root, without the supplementary groups of whoever ran tupper (as
        // runc's setgroups of the image root's, which list none).
        None => check(Stage::User, rustix::thread::set_thread_groups(&[])),
    }
    if plan.no_new_privileges {
        check(
            Stage::NoNewPrivileges,
            rustix::thread::set_no_new_privs(true),
        );
    }
    if plan.init {
        // Returns in the command's process only; this one stays PID 1.
        check(Stage::Init, become_init(plan.own_pid));
    }

    let mut denied = false;
    let mut last = Errno::NOENT;
    for (candidate, path) in plan.exec_candidates.iter().enumerate() {
        // SAFETY: `path` is a NUL-terminated string of the plan, and `argv`/`envp`
        // are NULL-terminated arrays of pointers into the plan's strings, built
        // before the clone by `ExecPointers::new(plan)`; the plan outlives this call
        // (the child never returns). execve only returns on failure.
        unsafe { libc::execve(path.as_ptr(), exec.argv.as_ptr(), exec.envp.as_ptr()) };
        last = Errno::from_raw_os_error(errno());
        match last {
            // The file is there: what is missing is its `#!` interpreter or
            // its ELF loader (the report's index says which candidate, + 1).
            Errno::NOENT if rfs::access(path.as_c_str(), rfs::Access::EXISTS).is_ok() => {
                fail(Stage::Exec, candidate + 1, last)
            }
            Errno::NOENT | Errno::NOTDIR => continue,
            Errno::ACCESS => denied = true,
            _ => break,
        }
    }
    fail(
        Stage::Exec,
        0,
        if denied && last != Errno::NOEXEC {
            Errno::ACCESS
        } else {
            last
        },
    )
}

/// Opens the snapshot's directory (`O_PATH`), by its host path.
fn open_rootfs(plan: &ChildPlan) -> rustix::io::Result<OwnedFd> {
    rfs::open(
        plan.rootfs.as_c_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Reads the parent's next byte on the go pipe: `Ok(false)` at EOF (the
/// parent died or gave up).
fn read_parent_byte(go: BorrowedFd<'_>) -> rustix::io::Result<bool> {
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(go, &mut byte) {
            Ok(1) => return Ok(true),
            Ok(_) => return Ok(false),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Carries out one step of the plan; `tree` is a bind mount's (see
/// [`ChildFds::volumes`]).
fn apply(op: &Op, tree: Option<BorrowedFd<'_>>) -> rustix::io::Result<()> {
    match op {
        Op::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => mount::mount(
            source.as_c_str(),
            target.as_c_str(),
            fstype.as_c_str(),
            *flags,
            data.as_deref(),
        ),
        Op::Bind { source, target } => mount::mount_bind(source.as_c_str(), target.as_c_str()),
        Op::Remount { target, flags } => mount::mount_remount(target.as_c_str(), *flags, c""),
        Op::MaskFile { target } => {
            unless_missing(mount::mount_bind(c"/dev/null", target.as_c_str()))
        }
        Op::MaskDir { target } => unless_missing(mount::mount(
            c"tmpfs",
            target.as_c_str(),
            c"tmpfs",
            MountFlags::RDONLY | PROC_FLAGS,
            None,
        )),
        Op::ReadOnly { target } => {
            match mount::mount_bind_recursive(target.as_c_str(), target.as_c_str()) {
                Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(e),
                Ok(()) => mount::mount_remount(
                    target.as_c_str(),
                    MountFlags::BIND | MountFlags::RDONLY | PROC_FLAGS,
                    c"",
                ),
            }
        }
        Op::Mkdir { path, mode } => match rfs::mkdir(path.as_c_str(), Mode::from_raw_mode(*mode)) {
            Err(Errno::EXIST) => Ok(()),
            other => other,
        },
        Op::Touch { path } => rfs::open(
            path.as_c_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map(drop),
        Op::Symlink { target, link } => rfs::symlink(target.as_c_str(), link.as_c_str()),
        Op::Volume(v) => mount_volume(v, tree),
        // Handled by the step loop, which keeps the fd.
        Op::KeepProcSys { .. } => Ok(()),
    }
}

/// `chdir` to the working directory. One in a user's mount (a volume hides
/// what the parent made in the snapshot) is made here when missing, as
/// runc does: the root is the container's, so each prefix resolves as the
/// container sees it.
fn change_to_workdir(plan: &ChildPlan) -> rustix::io::Result<()> {
    match rustix::process::chdir(plan.workdir.as_c_str()) {
        Err(Errno::NOENT) if !plan.workdir_prefixes.is_empty() => {
            for prefix in &plan.workdir_prefixes {
                match rfs::mkdir(prefix.as_c_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
            }
            rustix::process::chdir(plan.workdir.as_c_str())
        }
        other => other,
    }
}

/// Makes a user mount (`-v`, `--tmpfs`): resolves its destination inside the
/// container's root, as the container will see it (`RESOLVE_IN_ROOT`: `..`
/// and absolute symlinks of the image stay in the root), making what is
/// missing (directories 0755; the last part an empty file when the source is
/// one), then moves the source's mount there: `tree`, the parent's, for a
/// bind mount.
fn mount_volume(v: &Volume, tree: Option<BorrowedFd<'_>>) -> rustix::io::Result<()> {
    use rustix::fs::ResolveFlags;
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};
    // The working directory is the container's root (the steps run there).
    let root = rfs::open(
        c".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let resolve = |path: &std::ffi::CStr, flags: OFlags| {
        crate::fsutil::openat2_in_root(
            root.as_fd(),
            path,
            flags | OFlags::PATH | OFlags::CLOEXEC,
            ResolveFlags::NO_MAGICLINKS,
        )
    };
    let last = v.prefixes.len() - 1;
    for (i, (prefix, name)) in v.prefixes.iter().zip(&v.names).enumerate() {
        match resolve(prefix, OFlags::empty()) {
            Ok(_) => continue,
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        let parent = match i {
            0 => None,
            _ => Some(resolve(&v.prefixes[i - 1], OFlags::DIRECTORY)?),
        };
        let dir = parent.as_ref().map_or(root.as_fd(), |fd| fd.as_fd());
        if i < last || v.dir {
            match rfs::mkdirat(dir, name.as_c_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
        } else {
            rfs::openat(
                dir,
                name.as_c_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )?;
        }
    }
    let target = resolve(&v.prefixes[last], OFlags::empty())?;
    // Through a symlink of the image, a destination may be the root itself
    // or in `/proc` or `/sys`: refused as those paths are.
    let magic = rfs::fstatfs(&target)?.f_type as u32;
    let (at, top) = (rfs::fstat(&target)?, rfs::fstat(&root)?);
    if magic == linux_raw_sys::general::PROC_SUPER_MAGIC
        || magic == linux_raw_sys::general::SYSFS_MAGIC
        || (at.st_dev, at.st_ino) == (top.st_dev, top.st_ino)
    {
        return Err(Errno::PERM);
    }
    // A directory goes on a directory, a file on a file (else `move_mount`
    // says only EINVAL).
    let is_dir =
        rfs::FileType::from_raw_mode(rfs::fstat(&target)?.st_mode) == rfs::FileType::Directory;
    match (v.dir, is_dir) {
        (true, false) => return Err(Errno::NOTDIR),
        (false, true) => return Err(Errno::ISDIR),
        _ => {}
    }
    let attrs = MountAttrFlags::from_bits_retain(v.attrs as u32);
    let made;
    let tree = match &v.source {
        VolumeSource::Bind(_) | VolumeSource::Given => tree.ok_or(Errno::BADF)?,
        VolumeSource::Tmpfs(options) => {
            let fs = mount::fsopen(c"tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
            mount::fsconfig_set_string(&fs, c"source", c"tmpfs")?;
            for (key, value) in options {
                mount::fsconfig_set_string(&fs, key.as_c_str(), value.as_c_str())?;
            }
            mount::fsconfig_create(&fs)?;
            made = mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
            made.as_fd()
        }
    };
    mount::move_mount(
        tree,
        c"",
        &target,
        c"",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
}

/// Sets `attrs` (`MOUNT_ATTR_*`) on the detached mount tree `tree` and every
/// mount in it, and their `propagation` (`MS_PRIVATE`, `MS_SLAVE`,
/// `MS_SHARED`; 0: unchanged) (`mount_setattr` with `AT_RECURSIVE`; rustix
/// has no wrapper); `MOUNT_ATTR_IDMAP` takes `userns`, the user namespace
/// whose maps it copies. Called by the parent, before the clone and (for
/// the maps) after it.
pub(crate) fn set_mount_attrs(
    tree: BorrowedFd<'_>,
    attrs: u64,
    propagation: u64,
    userns: Option<BorrowedFd<'_>>,
) -> rustix::io::Result<()> {
    let attr = linux_raw_sys::general::mount_attr {
        attr_set: attrs,
        attr_clr: 0,
        propagation,
        userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    // SAFETY: `attr` is a valid `struct mount_attr` on this stack frame and its
    // size is passed with it; the path is a NUL-terminated empty string
    // (`AT_EMPTY_PATH`: the call acts on `tree`, an fd this process owns; so
    // is `userns`, when given). The kernel only reads both during the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const linux_raw_sys::general::mount_attr,
            std::mem::size_of::<linux_raw_sys::general::mount_attr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw_os_error(errno()))
    }
}

/// A path the kernel does not have (`ENOENT`) is not an error for a mask: there
/// is nothing to hide.
fn unless_missing(result: rustix::io::Result<()>) -> rustix::io::Result<()> {
    match result {
        Err(Errno::NOENT) => Ok(()),
        other => other,
    }
}

/// Makes the container's terminal (`-t`), as runc does with its console
/// socket: a pseudo-terminal of the container's own `devpts` (so `tty` and
/// `ps` inside name it `/dev/pts/0`), whose master end goes to the parent over
/// `console` (`SCM_RIGHTS`); then a session of its own whose controlling
/// terminal is the slave end, which becomes fds 0, 1 and 2.
/// With `-u`, the slave end belongs to the user (as runc does), its group
/// stays `tty`'s.
fn open_terminal(
    console: BorrowedFd<'_>,
    owner: Option<rustix::process::Uid>,
) -> rustix::io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use rustix::pty::{self, OpenptFlags};
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    // `/dev/ptmx` is the link to `pts/ptmx` made by the plan.
    let master = pty::openpt(flags)?;
    pty::unlockpt(&master)?;
    let slave = pty::ioctl_tiocgptpeer(&master, flags)?;
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let sent = [master.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&sent));
    rustix::net::sendmsg(
        console,
        &[std::io::IoSlice::new(b"t")],
        &mut control,
        SendFlags::empty(),
    )?;
    drop(master);
    if let Some(uid) = owner {
        rfs::fchown(&slave, Some(uid), None)?;
    }
    rustix::process::setsid()?;
    rustix::process::ioctl_tiocsctty(&slave)?;
    rustix::stdio::dup2_stdin(&slave)?;
    rustix::stdio::dup2_stdout(&slave)?;
    rustix::stdio::dup2_stderr(&slave)
}

/// Sends the prepared `RTM_NEWLINK` for `lo` and reads the kernel's ACK.
pub(crate) fn loopback_up(request: &LoopbackRequest) -> rustix::io::Result<()> {
    let sock = net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None, // NETLINK_ROUTE
    )?;
    net::send(&sock, request, net::SendFlags::empty())?;
    let mut ack = [0u8; 64];
    let n = net::recv(&sock, &mut ack, net::RecvFlags::empty())?.0;
    // struct nlmsghdr (16 bytes), then for NLMSG_ERROR an i32 error (0 = ACK).
    if n >= 20 && u16::from_ne_bytes([ack[4], ack[5]]) == linux_raw_sys::netlink::NLMSG_ERROR as u16
    {
        let err = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
        if err != 0 {
            return Err(Errno::from_raw_os_error(-err));
        }
    }
    Ok(())
}

/// Unblocks every signal and sets every disposition to its default: Rust's
/// runtime ignores SIGPIPE, and the caller may have ignored others (a shell's
/// background job ignores SIGINT and SIGQUIT); an ignored signal would stay
/// ignored across `execve`. Handlers are reset by `execve` itself.
/// `--init` (docker's, which runs tini): this process stays PID 1 and forks
/// the command's process, which returns from here (and goes on to
/// `execve`). PID 1 then reaps every process that ends in the container,
/// passes on the signals sent to it (by tupper's forwarding, `kill`, `stop`;
/// not those a terminal sent its whole process group), and exits as the
/// command did: its exit code, or 128 + the signal that killed it.
///
/// Without a PID namespace of its own (`own_pid` false, `--pid`), it is not
/// PID 1: it makes itself a child subreaper (the container's orphans are
/// its to reap, not the host's init's), and passes on every signal a
/// process sends it, since it cannot tell the senders outside from those
/// inside (all have pids it can see), as tini does then.
fn become_init(own_pid: bool) -> rustix::io::Result<()> {
    if !own_pid {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    }
    extern "C" fn ignore(_: libc::c_int) {}
    // SAFETY: local, fully initialized signal sets and a sigaction struct
    // pointing to `ignore`, a function that lives as long as the program;
    // sigprocmask and sigaction act on this process only. Every catchable
    // signal gets a handler (else the kernel drops signals sent to a PID 1
    // from an ancestor namespace) and is blocked, to be taken by
    // sigwaitinfo below.
    let all = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        for sig in 1..libc::SIGRTMAX() {
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
        all
    };
    // tupper's arguments and environment go before the command's process
    // exists: once it runs, it could read /proc/1/environ (with
    // CAP_SYS_PTRACE) before PID 1 got to it. Neither process reads them
    // again (the command's `execve` takes the plan's prepared strings).
    hide_arguments();
    // The command's process waits until PID 1 has let go of its
    // capabilities (below): it reads this pipe to its end, which comes when
    // PID 1 closes its write end, after the drop. Else the command could
    // act on PID 1 (ptrace it, with CAP_SYS_PTRACE) while it still has them.
    let (dropped_r, dropped_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // SAFETY: a raw clone(SIGCHLD), i.e. fork without glibc's atfork
    // handlers (which take locks another thread of tupper may have held at
    // the clone3 that made this process); no pointers are passed.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) } as i32;
    if pid < 0 {
        return Err(Errno::from_raw_os_error(errno()));
    }
    if pid == 0 {
        restore_signals();
        drop(dropped_w);
        loop {
            match rustix::io::read(&dropped_r, &mut [0u8; 1]) {
                Err(Errno::INTR) => {}
                Err(e) => return Err(e),
                Ok(_) => return Ok(()),
            }
        }
    }
    // Closed by close_range below, after the drop.
    std::mem::forget((dropped_r, dropped_w));
    // PID 1 never execs, so it still has every capability the child had for
    // the mounts, and tupper's memory: it needs none of them (waiting, and
    // killing a child of its own uid, take no capability). A process of the
    // container must not reach them: no capability left, not dumpable (no
    // ptrace, no /proc/1/mem); its arguments (tupper's command line: host
    // paths) and environment were overwritten before the fork.
    let empty = rustix::thread::CapabilitySet::empty();
    let dropped = rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets {
            effective: empty,
            permitted: empty,
            inheritable: empty,
        },
    )
    .and_then(|()| {
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    });
    if dropped.is_err() {
        // SAFETY: kill of the command's process, not reaped yet.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        exit(125);
    }
    // PID 1 never execs, so close-on-exec closes nothing for it: it lets
    // go of every fd but 0-2 itself. The report pipe (the command's process
    // holds it until its execve: the parent then reads EOF, or its report),
    // tupper's run lock, pipes, directories and sockets, whatever the caller
    // of `run -d` waits to see closed, and the write end the command's
    // process waits to see closed.
    // SAFETY: close_range closes this process's own copies; nothing here
    // uses an fd above 2 again (PID 1 never returns from the loop below).
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    loop {
        // SAFETY: `all` is initialized; `info` is written by the kernel.
        let (sig, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            (libc::sigwaitinfo(&all, &mut info), info)
        };
        if sig == libc::SIGCHLD {
            loop {
                let mut status = 0;
                // SAFETY: waitpid on any child, writing to a local int.
                let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if r <= 0 {
                    break;
                }
                if r == pid {
                    exit(match libc::WIFEXITED(status) {
                        true => libc::WEXITSTATUS(status),
                        false => 128 + libc::WTERMSIG(status),
                    });
                }
            }
        } else if sig > 0 && info.si_code <= 0 {
            // Sent by a process (SI_USER, SI_QUEUE, SI_TKILL), not by the
            // kernel for a terminal (to the whole process group, the
            // command's too). Passed on when the sender is outside the
            // container (its pid here is 0): tupper's forwarding, `stop`,
            // `kill`; not from inside, where it may have signalled the group
            // (`kill 0`), and so the command already.
            // SAFETY: a signal of SI_USER, SI_QUEUE or SI_TKILL carries the
            // sender's pid in the `kill` member of siginfo's union.
            let sender = unsafe { info.si_pid() };
            if sender == 0 || !own_pid {
                // SAFETY: kill of the command's pid, which this process has
                // not reaped yet, so it can not have been reused.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
}

/// Overwrites PID 1's arguments (`--init`), which are tupper's command line,
/// with `tupper-init` (`/proc/1/cmdline` shows them to every process of the
/// container), and clears its environment, tupper's (`/proc/1/environ`,
/// which a container given `CAP_SYS_PTRACE` could read). The areas are the
/// kernel's `arg_start`..`arg_end` and `env_start`..`env_end` (fields 48 to
/// 51 of `/proc/self/stat`), read into a stack buffer (the child does not
/// allocate).
fn hide_arguments() {
    let Ok(fd) = rfs::open(
        c"/proc/self/stat",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let mut buf = [0u8; 2048];
    let Ok(n) = rustix::io::read(&fd, &mut buf) else {
        return;
    };
    drop(fd);
    let text = &buf[..n];
    // Fields after `(comm)` (which may hold spaces) start with field 3.
    let Some(close) = text.iter().rposition(|b| *b == b')') else {
        return;
    };
    let mut fields = text[close + 1..]
        .split(|b| *b == b' ')
        .filter(|f| !f.is_empty());
    let number = |f: Option<&[u8]>| {
        f.and_then(|f| std::str::from_utf8(f).ok())
            .and_then(|s| s.trim().parse::<usize>().ok())
    };
    let (Some(start), Some(end)) = (number(fields.nth(45)), number(fields.next())) else {
        return;
    };
    let env = (number(fields.next()), number(fields.next()));
    let name = b"tupper-init\0";
    if end > start && end - start >= name.len() {
        // SAFETY: `start..end` is this process's own argument area, where
        // the kernel put the argument strings at exec time (writable memory
        // of its stack); nothing in PID 1 reads its arguments again. The
        // bytes are written within it only.
        unsafe {
            std::ptr::write_bytes(start as *mut u8, 0, end - start);
            std::ptr::copy_nonoverlapping(name.as_ptr(), start as *mut u8, name.len());
        }
    }
    if let (Some(start), Some(end)) = env {
        if end > start {
            // SAFETY: as above, the environment strings' area, which PID 1
            // does not read again (its environment is not used after this).
            unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
        }
    }
}

fn restore_signals() {
    // SAFETY: `set` is a local, fully initialized by sigemptyset before use;
    // sigprocmask and signal are async-signal-safe and take no locks. signal()
    // fails harmlessly (EINVAL) for SIGKILL, SIGSTOP and the signals glibc keeps.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// Keeps only `keep` (docker's default set unless `--cap-add`/`--cap-drop`
/// say otherwise, see [`crate::capabilities`])
/// in the bounding set, and empties the inheritable set. The command runs as
/// root, whose capabilities after `execve` are the bounding set: so
/// `CAP_SYS_ADMIN` and the rest are gone for it and everything it starts (no
/// mounts, no module loading, no raw I/O), while the child itself needed them
/// for its mounts and hostname, which are done by now.
fn drop_capabilities(keep: u64) -> rustix::io::Result<()> {
    use rustix::thread::{self as t, CapabilitySet};
    for bit in 0..64u32 {
        if keep & (1 << bit) != 0 {
            continue;
        }
        match t::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(1 << bit)) {
            Ok(()) => {}
            // Past the kernel's last capability: so are all the higher bits.
            Err(Errno::INVAL) => break,
            Err(e) => return Err(e),
        }
    }
    let mut sets = t::capabilities(None)?;
    // Empty, as docker's since CVE-2022-24769: an inheritable capability
    // would let a non-root user gain it from a file with `+i`.
    sets.inheritable = CapabilitySet::empty();
    t::set_capabilities(None, sets)
}

/// Becomes the user of `-u`: supplementary groups, then gid, then uid (the
/// last step gives up the right to the others). The calls are the thread's
/// (raw system calls, not libc's broadcast to every thread): the child has
/// only one. A uid other than 0 clears the effective and permitted
/// capabilities here, and `execve` gives it none (no `SECBIT_KEEP_CAPS`, no
/// ambient set); the bounding set stays as cut.
fn set_user(user: &crate::user::Ids) -> rustix::io::Result<()> {
    use rustix::thread as t;
    t::set_thread_groups(&user.groups)?;
    t::set_thread_res_gid(user.gid, user.gid, user.gid)?;
    t::set_thread_res_uid(user.uid, user.uid, user.uid)
}

/// Becomes root of the user namespace this process is in (its maps are
/// written): every uid and gid 0, which keeps the capabilities the namespace
/// gave (the host's root is not mapped in it, so `setresuid` to 0 is a
/// change to its root, not away from it).
fn become_namespace_root() -> rustix::io::Result<()> {
    use rustix::thread as t;
    t::set_thread_res_gid(t::Gid::ROOT, t::Gid::ROOT, t::Gid::ROOT)?;
    t::set_thread_res_uid(t::Uid::ROOT, t::Uid::ROOT, t::Uid::ROOT)
}

/// Loads a system-call filter for this process and what it starts. The child
/// still has `CAP_SYS_ADMIN` in its effective set here (only the bounding and
/// inheritable sets were cut), which `seccomp` asks for unless `no_new_privs`
/// is set.
fn load_filter(program: &[linux_raw_sys::ptrace::sock_filter]) -> rustix::io::Result<()> {
    let prog = linux_raw_sys::ptrace::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, a slice of the plan made before the
    // clone and alive until `execve`; the kernel only reads `len` instructions
    // from it (it copies them) during the call. No flags, no other pointers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            linux_raw_sys::ptrace::SECCOMP_SET_MODE_FILTER,
            0u32,
            &prog as *const linux_raw_sys::ptrace::sock_fprog,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw_os_error(errno()))
    }
}

/// Marks every fd above 2 close-on-exec, so that whatever the caller leaked into
/// tupper stays out of the container: `close_range(CLOSE_RANGE_CLOEXEC)` (Linux
/// 5.11), else one `fcntl` per possible fd.
fn cloexec_above_stderr() {
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets a flag on fds of
    // the child's own table; it takes no pointers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return;
    }
    let max = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024)
        .min(1 << 20) as i32;
    for fd in 3..max {
        // SAFETY: F_SETFD on a number that may or may not be an open fd of this
        // process: an unused number fails with EBADF, nothing else happens.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// The calling thread's errno.
fn errno() -> i32 {
    // SAFETY: __errno_location returns a valid pointer to this thread's errno,
    // which the failed execve just set.
    unsafe { *libc::__errno_location() }
}

/// Ends the child without running any of the parent's exit handlers.
fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; it touches no shared state.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child keeps 0-2 and the fds of its `ChildFds` only: checked in
    /// a forked process (which only makes system calls: no allocation).
    #[test]
    fn the_child_keeps_only_its_own_fds() {
        let open = || {
            rfs::open(
                c"/dev/null",
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap()
        };
        let all: Vec<OwnedFd> = (0..8).map(|_| open()).collect();
        let volumes = [crate::launch::VolumeTree {
            tree: open(),
            mapped: false,
            shown: String::new(),
        }];
        let fds = ChildFds {
            report: all[1].as_fd(),
            go: all[2].as_fd(),
            parent_ends: [all[3].as_raw_fd(), -1, -1],
            console: None,
            netns: Some(all[5].as_fd()),
            ipc: None,
            stdio: None,
            join: None,
            volumes: &volumes,
            root: Some(all[6].as_fd()),
        };
        let kept: Vec<RawFd> = [1, 2, 5, 6].iter().map(|&i| all[i].as_raw_fd()).collect();
        let closed: Vec<RawFd> = [0, 3, 4, 7].iter().map(|&i| all[i].as_raw_fd()).collect();
        let volume = volumes[0].tree.as_raw_fd();
        // SAFETY: the forked process only makes system calls (close_range,
        // fcntl) and leaves by _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: F_GETFD only reads the flags of a number, open or not.
            let is_open = |fd: RawFd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
            let ok = close_all_but(&fds)
                && (0..3).all(is_open)
                && is_open(volume)
                && kept.iter().all(|&fd| is_open(fd))
                && !closed.iter().any(|&fd| is_open(fd));
            // SAFETY: leaves the forked process at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        let mut status = 0;
        // SAFETY: waits for the process forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        // And the process's own fds are still open.
        assert!(all.iter().all(|fd| rustix::io::fcntl_getfd(fd).is_ok()));
    }

    #[test]
    fn report_round_trip() {
        let r = Report {
            stage: Stage::Step as u32,
            index: 7,
            errno: libc::EPERM,
        };
        assert_eq!(Report::decode(&r.encode()), r);
    }

    #[test]
    fn stages_round_trip() {
        for n in 0..=26 {
            assert_eq!(Stage::from_u32(n).unwrap() as u32, n);
        }
        assert_eq!(Stage::from_u32(27), None);
    }
}
