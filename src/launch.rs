//! The launcher (parent side): `clone3` into new namespaces, the sync pipes, waiting
//! on the pidfd and forwarding signals.
//!
//! `/* Parent, outside the container */` is everything in this file; the child's
//! side is [`crate::child`]. The parent makes two close-on-exec pipes before the
//! clone: the *report* pipe (child -> parent: a failure record, or EOF when
//! `execve` succeeded) and the *go* pipe (parent -> child: one byte when the
//! parent's side is done: the pid recorded, the network configured). A child whose
//! parent died before the go-ahead reads EOF and exits without running anything,
//! which closes the gap before its parent-death signal was set.
//!
//! # Safety
//!
//! This file opts in to `unsafe` for the raw `clone3` syscall (rustix does not wrap
//! it, and libc's `fork` bookkeeping is not wanted: the child only makes raw
//! syscalls), for taking ownership of the pidfd it returns, and for the signal
//! mask and `signalfd` of the forwarder. Each block says what it relies on.
#![allow(unsafe_code)]

use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use linux_raw_sys::general as k;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

use crate::child::{self, ChildFds, ExecPointers, LoopbackRequest, Report, Stage};
use crate::error::{Error, Kind, Result};
use crate::plan::{ChildPlan, Op, VolumeSource};

/// The signals `tupper run` passes on to the container's PID 1.
pub const FORWARDED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// A container's first process, just cloned.
#[derive(Debug)]
pub struct Launched {
    /// Its pid in the host's PID namespace.
    pub pid: Pid,
    /// A pidfd for it: waited on and signalled, never the bare pid.
    pub pidfd: OwnedFd,
    report: OwnedFd,
    go: Option<OwnedFd>,
    mount_ns: Option<OwnedFd>,
    /// With `-t`: the socket the child sends its terminal's master end on.
    console: Option<OwnedFd>,
    /// With `-t`: the master end of the container's terminal, once received.
    pub terminal: Option<OwnedFd>,
}

/// Moves the calling thread (only) into a new network namespace.
pub(crate) fn unshare_netns() -> rustix::io::Result<()> {
    // SAFETY: only CLONE_NEWNET: the thread's file descriptor table, filesystem
    // context and memory, which Rust code relies on, stay shared as they were.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
}

/// Gives the calling thread (a short-lived helper thread) its own filesystem
/// context (root, working directory, umask) and, with `mount_ns`, a new mount
/// namespace: what `setns(CLONE_NEWNS)` and `pivot_root` need in a process with
/// more than one thread.
pub(crate) fn unshare_fs(mount_ns: bool) -> rustix::io::Result<()> {
    let mut flags = rustix::thread::UnshareFlags::FS;
    if mount_ns {
        flags |= rustix::thread::UnshareFlags::NEWNS;
    }
    // SAFETY: only CLONE_FS (and CLONE_NEWNS): the thread's root, working
    // directory and umask become its own; its memory and file descriptor table,
    // which Rust code relies on, stay shared as they were.
    unsafe { rustix::thread::unshare_unsafe(flags) }
}

/// The mount trees the parent opens before the clone, which the child
/// moves into its root (`move_mount`): the user's bind mounts, and with a
/// user namespace the root itself. The child then resolves no host path of
/// the store (whose directories are root's, mode 0700: a child in a user
/// namespace cannot search them), and a named volume and the root can be
/// mapped to the namespace (`MOUNT_ATTR_IDMAP`, after the clone: the
/// namespace is the child's).
#[derive(Debug, Default)]
pub struct Trees {
    /// One per bind mount of the plan ([`VolumeSource::Bind`]), in its
    /// order.
    pub volumes: Vec<VolumeTree>,
    /// A run with a user namespace: the snapshot's detached tree, which
    /// the child moves onto the snapshot's directory (its `BindRoot`).
    pub root: Option<OwnedFd>,
    /// A run with a user namespace: the host id of its root (see
    /// [`crate::userns`]), whose maps the parent writes after the clone.
    pub map: Option<u32>,
    /// `--ipc container:NAME`: NAME's IPC namespace, which the child joins.
    pub ipc: Option<OwnedFd>,
    /// `--pid container:NAME`: NAME's PID namespace, in which the child is
    /// cloned (set by the caller).
    pub pid: Option<OwnedFd>,
    /// The command's standard fds in place of tupper's (set by the caller:
    /// [`crate::Spec::stdio`], [`crate::exec::ExecSpec::stdio`]).
    pub stdio: Option<std::sync::Arc<Stdio>>,
}

/// A command's stdin, stdout and stderr, in place of tupper's: what a
/// library caller gives a container ([`crate::Spec::stdio`]) or an exec
/// (a health check's probe), for instance the write ends of pipes it reads.
#[derive(Debug)]
pub struct Stdio {
    fds: [OwnedFd; 3],
}

impl Stdio {
    /// Takes the three fds; any that is itself a standard fd (0 to 2) is
    /// copied above them first, so that the child can put each in place
    /// without overwriting another.
    pub fn new(stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd) -> Result<Stdio> {
        let high = |fd: OwnedFd| -> Result<OwnedFd> {
            match fd.as_raw_fd() {
                0..=2 => rustix::io::fcntl_dupfd_cloexec(&fd, 3)
                    .map_err(|e| Error::os("copy a standard fd of the command", e)),
                _ => Ok(fd),
            }
        };
        Ok(Stdio {
            fds: [high(stdin)?, high(stdout)?, high(stderr)?],
        })
    }

    /// The three, in order: stdin, stdout, stderr.
    pub(crate) fn borrowed(&self) -> [BorrowedFd<'_>; 3] {
        [
            self.fds[0].as_fd(),
            self.fds[1].as_fd(),
            self.fds[2].as_fd(),
        ]
    }
}

/// The tree of one bind mount.
#[derive(Debug)]
pub struct VolumeTree {
    /// The detached tree (`nodev`, `ro` and propagation as asked).
    pub tree: OwnedFd,
    /// Whether it is mapped with a user namespace (a named volume, `idmap`).
    pub mapped: bool,
    /// Its step's words (`mount volume data on /data`).
    pub shown: String,
}

impl Trees {
    /// Opens the trees of `plan`'s bind mounts, and with `map` (a user
    /// namespace's root on the host) the tree of the root `rootfs`. With
    /// `ipc` (another container's, joined), its `/dev/shm` is the tree of
    /// the plan's [`VolumeSource::Given`] step.
    pub fn open(
        plan: &ChildPlan,
        rootfs: BorrowedFd<'_>,
        map: Option<u32>,
        ipc: Option<crate::ipc::Joined>,
    ) -> Result<Trees> {
        use rustix::mount::OpenTreeFlags as F;
        let (ipc, mut given) = match ipc {
            Some(j) => (Some(j.namespace), Some(j.shm)),
            None => (None, None),
        };
        let mut volumes = Vec::new();
        for step in &plan.steps {
            let Op::Volume(v) = &step.op else { continue };
            let tree = match &v.source {
                VolumeSource::Tmpfs(_) => continue,
                VolumeSource::Bind(source) => rustix::mount::open_tree(
                    rustix::fs::CWD,
                    source.as_c_str(),
                    F::OPEN_TREE_CLONE | F::OPEN_TREE_CLOEXEC | F::AT_RECURSIVE,
                ),
                VolumeSource::Given => given.take().ok_or(rustix::io::Errno::BADF),
            }
            .and_then(|tree| {
                child::set_mount_attrs(tree.as_fd(), v.attrs, v.propagation, None).map(|()| tree)
            })
            .map_err(|e| Error::os(&step.shown, e))?;
            volumes.push(VolumeTree {
                tree,
                mapped: v.mapped,
                shown: step.shown.clone(),
            });
        }
        let root = match map {
            None => None,
            Some(_) => Some(
                rustix::mount::open_tree(
                    rootfs,
                    c"",
                    F::OPEN_TREE_CLONE | F::OPEN_TREE_CLOEXEC | F::AT_EMPTY_PATH,
                )
                .map_err(|e| {
                    Error::os(
                        format!("open the mount of {}", plan.rootfs.to_string_lossy()),
                        e,
                    )
                })?,
            ),
        };
        Ok(Trees {
            volumes,
            root,
            map,
            ipc,
            pid: None,
            stdio: None,
        })
    }

    /// With a user namespace, after the clone: writes child `pid`'s maps
    /// and maps the root's and the named volumes' trees to its namespace.
    fn map_user_namespace(&self, pid: Pid) -> Result<()> {
        let Some(host) = self.map else {
            return Ok(());
        };
        let line = crate::userns::map_line(host);
        for file in ["uid_map", "gid_map"] {
            let path = format!("/proc/{}/{file}", pid.as_raw_nonzero());
            rustix::fs::open(
                &path,
                rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .and_then(|fd| rustix::io::write(&fd, line.as_bytes()))
            .map_err(|e| Error::os(format!("write {:?} to {path}", line.trim_end()), e))?;
        }
        let path = format!("/proc/{}/ns/user", pid.as_raw_nonzero());
        let ns = rustix::fs::open(
            &path,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Error::os(format!("open {path}"), e))?;
        let root = self
            .root
            .iter()
            .map(|tree| (tree, "the container's root".to_string()));
        let volumes = self
            .volumes
            .iter()
            .filter(|v| v.mapped)
            .map(|v| (&v.tree, v.shown.clone()));
        for (tree, shown) in root.chain(volumes) {
            // The propagation stays as set before the clone.
            child::set_mount_attrs(
                tree.as_fd(),
                linux_raw_sys::general::MOUNT_ATTR_IDMAP.into(),
                0,
                Some(ns.as_fd()),
            )
            .map_err(|e| {
                let err = Error::os(
                    format!("map {shown} to the container's user namespace (MOUNT_ATTR_IDMAP)"),
                    e,
                );
                match e {
                    Errno::INVAL => {
                        err.with_advice("its filesystem may not support idmapped mounts")
                    }
                    _ => err,
                }
            })?;
        }
        Ok(())
    }
}

/// With a user namespace: sets `plan`'s `--ulimit`s on child `pid` (a hard
/// limit above tupper's needs `CAP_SYS_RESOURCE` in the host's namespace,
/// which the child no longer has).
fn set_ulimits(plan: &ChildPlan, pid: Pid) -> Result<()> {
    for (i, u) in plan.ulimits.iter().enumerate() {
        rustix::process::prlimit(Some(pid), u.resource, u.rlimit()).map_err(|e| {
            let err = Error::os(ulimit_step(plan, i as u32), e);
            match e {
                Errno::PERM => err.with_advice(ULIMIT_ADVICE),
                _ => err,
            }
        })?;
    }
    Ok(())
}

/// Clones the container's first process, which carries out `plan` (see
/// [`crate::child`]). With `netns` (a spare network namespace, for a plan
/// with its own), the child joins it instead of making a new one. With
/// `join` (a pidfd of a container's PID 1), the child is `tupper exec`'s
/// command in that container. With `cgroup` (a cgroup v2 directory), the
/// child is cloned into that cgroup (`CLONE_INTO_CGROUP`). `trees` are the
/// mounts the child moves in (see [`Trees`]).
pub fn spawn(
    plan: &ChildPlan,
    lo_up: &LoopbackRequest,
    netns: Option<BorrowedFd<'_>>,
    join: Option<BorrowedFd<'_>>,
    cgroup: Option<BorrowedFd<'_>>,
    trees: &Trees,
) -> Result<Launched> {
    let pipe = || pipe_with(PipeFlags::CLOEXEC).map_err(|e| Error::os("create the launch pipe", e));
    let (report_r, report_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let console = match plan.tty {
        true => Some(
            rustix::net::socketpair(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::SEQPACKET,
                rustix::net::SocketFlags::CLOEXEC,
                None,
            )
            .map_err(|e| Error::os("create the console socket", e))?,
        ),
        false => None,
    };
    let exec = ExecPointers::new(plan);

    let mut flags = k::CLONE_NEWNS | k::CLONE_PIDFD;
    if plan.own_pid {
        flags |= k::CLONE_NEWPID;
    }
    if !plan.host_uts {
        flags |= k::CLONE_NEWUTS;
    }
    if plan.own_ipc {
        flags |= k::CLONE_NEWIPC;
    }
    // cgroup v1: the child is moved into its cgroup after the clone, and
    // then makes its cgroup namespace itself (rooted there).
    if !plan.late_cgroup_ns && !plan.host_cgroupns {
        flags |= k::CLONE_NEWCGROUP;
    }
    if plan.own_netns && netns.is_none() {
        flags |= k::CLONE_NEWNET;
    }
    // Made first by the kernel, so that it owns the other new namespaces.
    if plan.userns {
        flags |= k::CLONE_NEWUSER;
    }
    // `tupper exec` and `--pid container:NAME`: the child is made in the
    // container's PID namespace (which a thread can only give its
    // children); exec's joins the rest itself. This thread's own is
    // restored right after the clone, so that what a library user's thread
    // starts later is not the container's.
    let enter = join.or(trees.pid.as_ref().map(|ns| ns.as_fd()));
    let own_pid_ns = match enter {
        None => None,
        Some(container) => {
            let own = rustix::fs::open(
                "/proc/thread-self/ns/pid",
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| Error::os("open /proc/thread-self/ns/pid", e))?;
            rustix::thread::move_into_thread_name_spaces(
                container,
                rustix::thread::ThreadNameSpaceType::PROCESS_ID,
            )
            .map_err(|e| match &plan.joined_pid {
                Some(name) if join.is_none() => {
                    Error::os(format!("join the PID namespace of container {name}"), e)
                }
                _ => Error::os("join the container's PID namespace", e),
            })?;
            if join.is_some() {
                flags = k::CLONE_PIDFD;
            }
            Some(own)
        }
    };
    let mut flags = u64::from(flags);
    let clone_cgroup = match cgroup {
        Some(fd) => {
            flags |= k::CLONE_INTO_CGROUP;
            fd.as_raw_fd() as u64
        }
        None => 0,
    };
    let mut pidfd: i32 = -1;
    let args = k::clone_args {
        flags,
        pidfd: &mut pidfd as *mut i32 as u64,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: k::SIGCHLD.into(),
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: clone_cgroup,
    };
    // SAFETY: `args` is a fully initialized `struct clone_args` of the size passed
    // (linux-raw-sys's definition, 88 bytes); `pidfd` points to an i32 on this stack
    // that outlives the call. With no CLONE_VM and no stack, the child is a copy of
    // this thread (like fork) and, in its branch below, never returns from
    // `child::run`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const k::clone_args,
            size_of::<k::clone_args>(),
        )
    };
    let clone_error = std::io::Error::last_os_error();
    if ret == 0 {
        child::run(
            plan,
            &exec,
            lo_up,
            ChildFds {
                report: report_w.as_fd(),
                go: go_r.as_fd(),
                parent_ends: [
                    go_w.as_raw_fd(),
                    report_r.as_raw_fd(),
                    console
                        .as_ref()
                        .map_or(-1, |(parent, _)| parent.as_raw_fd()),
                ],
                netns: netns.filter(|_| plan.own_netns),
                ipc: trees.ipc.as_ref().map(|ns| ns.as_fd()),
                stdio: trees.stdio.as_ref().map(|s| s.borrowed()),
                console: console.as_ref().map(|(_, child)| child.as_fd()),
                join,
                volumes: &trees.volumes,
                root: trees.root.as_ref().map(|tree| tree.as_fd()),
            },
        );
    }
    if let Some(own) = own_pid_ns {
        rustix::thread::move_into_thread_name_spaces(
            own.as_fd(),
            rustix::thread::ThreadNameSpaceType::PROCESS_ID,
        )
        .map_err(|e| Error::os("return to tupper's own PID namespace", e))?;
    }
    if ret < 0 {
        let what = match join {
            None => "clone3 the container's first process",
            Some(_) => "clone3 the command's process in the container",
        };
        let err = Error::os(what, clone_error);
        return Err(match err.raw_os_error() {
            Some(libc::EAGAIN) => err.with_advice(
                "a task limit was reached: the container's --pids-limit, or the host's",
            ),
            Some(libc::ENOSPC) => {
                err.with_advice("a max_*_namespaces limit in /proc/sys/user was reached")
            }
            Some(libc::EINVAL) => err.with_advice(
                "the kernel lacks a namespace type tupper needs (5.3 or newer with pidfd)",
            ),
            _ => err,
        });
    }
    // SAFETY: clone3 succeeded with CLONE_PIDFD, so the kernel stored a new pidfd in
    // `pidfd`; nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let pid = Pid::from_raw(ret as i32)
        .ok_or_else(|| Error::msg("clone3 returned pid 0 in the parent"))?;
    drop(report_w);
    drop(go_r);
    let console = console.map(|(parent, _child)| parent);
    // Taken now: the child waits for the go-ahead, so it is surely alive.
    let mount_ns = mount_namespace_of(pidfd.as_fd());
    let launched = Launched {
        pid,
        pidfd,
        report: report_r,
        go: Some(go_w),
        mount_ns,
        console,
        terminal: None,
    };
    if plan.userns {
        // The maps (a run's), then a first byte: the child waits for it
        // before it becomes the namespace's root.
        let mapped = trees
            .map_user_namespace(pid)
            .and_then(|()| set_ulimits(plan, pid))
            .and_then(|()| match (trees.map, &launched.go) {
                (Some(_), Some(go)) => rustix::io::write(go, &[1])
                    .map(drop)
                    .map_err(|e| Error::os("signal the container that its maps are written", e)),
                _ => Ok(()),
            });
        if let Err(e) = mapped {
            launched.kill();
            return Err(e);
        }
    }
    Ok(launched)
}

impl Launched {
    /// Lets the child go on to `execve` (after the parent's network setup).
    pub fn go(&mut self) -> Result<()> {
        if let Some(go) = self.go.take() {
            match rustix::io::write(&go, &[1]) {
                // The child is gone: it failed before (its report, read by
                // `await_exec`, says why) or was killed.
                Ok(_) | Err(Errno::PIPE) => {}
                Err(e) => return Err(Error::os("signal the container to start", e)),
            }
        }
        Ok(())
    }

    /// With `-t`: waits for the child to send its terminal's master end
    /// (before the go-ahead, so that the parent can size it before the
    /// command starts) and keeps it in [`Launched::terminal`]. `Ok(false)`
    /// when the child failed before (its report says why: see
    /// [`Launched::await_exec`]) or has no terminal.
    pub fn receive_terminal(&mut self) -> Result<bool> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let Some(console) = self.console.take() else {
            return Ok(false);
        };
        loop {
            let mut fds = [
                PollFd::new(&console, PollFlags::IN),
                PollFd::new(&self.report, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(Error::os("wait for the container's terminal", e)),
            }
            if fds[0].revents().contains(PollFlags::IN) {
                break;
            }
            if !fds[1].revents().is_empty() {
                return Ok(false);
            }
        }
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 1];
        rustix::net::recvmsg(
            &console,
            &mut [std::io::IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| Error::os("receive the container's terminal", e))?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = message {
                if let Some(fd) = fds.next() {
                    self.terminal = Some(fd);
                    return Ok(true);
                }
            }
        }
        Err(Error::msg(
            "receive the container's terminal: the message carried no fd",
        ))
    }

    /// Waits until the child has `execve`d (`Ok(None)`) or reports a failure.
    pub fn await_exec(&mut self) -> Result<Option<Report>> {
        let mut buf = [0u8; Report::SIZE];
        let mut got = 0;
        while got < buf.len() {
            match rustix::io::read(&self.report, &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::os("read the container's start report", e)),
            }
        }
        match got {
            0 => Ok(None),
            Report::SIZE => Ok(Some(Report::decode(&buf))),
            _ => Err(Error::msg(
                "read the container's start report: it was cut short",
            )),
        }
    }

    /// Sends `signal` to the container's first process through its pidfd.
    pub fn signal(&self, signal: i32) -> Result<()> {
        send_signal(self.pidfd.as_fd(), signal)
    }

    /// Ends a child that must not run its command (the parent's side of the
    /// start failed): SIGKILL, then reaps it.
    pub fn kill(&self) {
        let _ = self.signal(libc::SIGKILL);
        let _ = wait(self.pidfd.as_fd());
    }

    /// The fd of the container's mount namespace taken at the clone (see
    /// [`mount_namespace_of`]); `None` after the first call.
    pub fn take_mount_namespace(&mut self) -> Option<OwnedFd> {
        self.mount_ns.take()
    }
}

/// The kernel's first real-time signal that the C library leaves to
/// programs (glibc keeps 32 and 33): docker's `RTMIN`.
pub const SIGRTMIN: i32 = 34;

/// The last real-time signal.
pub const SIGRTMAX: i32 = 64;

/// A signal number as a `Signal`: a named one, or a real-time one from
/// [`SIGRTMIN`] to [`SIGRTMAX`] (which tupper only ever sends).
pub fn signal_from_raw(n: i32) -> Option<Signal> {
    if let Some(s) = Signal::from_named_raw(n) {
        return Some(s);
    }
    if (SIGRTMIN..=SIGRTMAX).contains(&n) {
        // SAFETY: `n` is a valid, non-zero signal number of the kernel, and
        // not one glibc reserves (32, 33); the `Signal` is only ever sent
        // (`pidfd_send_signal`), never blocked, handled or waited for.
        return Some(unsafe { Signal::from_raw_unchecked(n) });
    }
    None
}

/// Sends `signal` through `pidfd`.
pub(crate) fn send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> Result<()> {
    let sig = signal_from_raw(signal)
        .ok_or_else(|| Error::msg(format!("signal {signal} is not a known signal")))?;
    match rustix::process::pidfd_send_signal(pidfd, sig) {
        Ok(()) | Err(Errno::SRCH) => Ok(()),
        Err(e) => Err(Error::os(
            format!("send signal {signal} to the container"),
            e,
        )),
    }
}

/// Why a `--ulimit` may be refused.
const ULIMIT_ADVICE: &str =
    "a hard limit above tupper's own needs CAP_SYS_RESOURCE, and nofile at most /proc/sys/fs/nr_open";

/// The step of setting the plan's `index`th `--ulimit`.
fn ulimit_step(plan: &ChildPlan, index: u32) -> String {
    plan.ulimits.get(index as usize).map_or_else(
        || "set a --ulimit".to_string(),
        |u| format!("set --ulimit {u}"),
    )
}

/// Turns a child's failure report into an error that names the step.
pub fn report_error(plan: &ChildPlan, report: Report) -> Error {
    let errno = std::io::Error::from_raw_os_error(report.errno);
    let stage = Stage::from_u32(report.stage);
    if stage == Some(Stage::Seccomp) {
        return Error::os("load the system-call filter (seccomp)", errno)
            .with_advice("--security-opt seccomp=unconfined runs without it");
    }
    if stage == Some(Stage::Ulimit) && report.errno == libc::EPERM {
        return Error::os(ulimit_step(plan, report.index), errno).with_advice(ULIMIT_ADVICE);
    }
    let what = match stage {
        Some(Stage::DeathSignal) => "set the parent-death signal".to_string(),
        Some(Stage::Stdio) => "give the command its stdin, stdout and stderr".to_string(),
        Some(Stage::PrivateRoot) => "make / private in the container's mount namespace".to_string(),
        Some(Stage::Hostname) if report.index == 1 => format!(
            "set domain name {}",
            String::from_utf8_lossy(&plan.domainname)
        ),
        Some(Stage::Hostname) => {
            format!("set hostname {}", String::from_utf8_lossy(&plan.hostname))
        }
        Some(Stage::Loopback) => "bring lo up in the container".to_string(),
        Some(Stage::JoinIpc) => format!(
            "join the IPC namespace of container {}",
            plan.joined_ipc.as_deref().unwrap_or_default()
        ),
        Some(Stage::JoinNetns) => match &plan.joined_network {
            Some(name) => format!("join the network namespace of container {name}"),
            None => "join a spare network namespace".to_string(),
        },
        Some(Stage::ProcessGroup) => "make a process group for the container".to_string(),
        Some(Stage::BindRoot) if plan.userns => format!(
            "move the container's mapped root onto {}",
            plan.rootfs.to_string_lossy()
        ),
        Some(Stage::BindRoot) => format!("bind {} on itself", plan.rootfs.to_string_lossy()),
        Some(Stage::Step) => plan.steps.get(report.index as usize).map_or_else(
            || format!("setup step {}", report.index),
            |s| s.shown.clone(),
        ),
        Some(Stage::OpenRoot) => format!("open the new root {}", plan.rootfs.to_string_lossy()),
        Some(Stage::PivotRoot) => format!("pivot_root to {}", plan.rootfs.to_string_lossy()),
        Some(Stage::DetachOldRoot) => "detach the old root".to_string(),
        Some(Stage::WaitParent) => "wait for the parent".to_string(),
        Some(Stage::Capabilities) => "drop capabilities".to_string(),
        Some(Stage::NoNewPrivileges) => "set no_new_privs".to_string(),
        Some(Stage::Terminal) => "make the container's terminal (-t)".to_string(),
        Some(Stage::JoinContainer) => "join the container's namespaces".to_string(),
        Some(Stage::Init) => "fork the command's process (--init)".to_string(),
        Some(Stage::Ulimit) => ulimit_step(plan, report.index),
        Some(Stage::UserNamespace) => "become root of the container's user namespace".to_string(),
        Some(Stage::Sysctl) => plan.sysctls.get(report.index as usize).map_or_else(
            || "write a --sysctl".to_string(),
            |(path, value)| {
                format!(
                    "write {} to /proc/sys/{} (--sysctl)",
                    String::from_utf8_lossy(value),
                    path.to_string_lossy()
                )
            },
        ),
        Some(Stage::CgroupNamespace) => {
            "make the container's cgroup namespace in its cgroup".to_string()
        }
        Some(Stage::User) => match &plan.user {
            Some(user) => format!("set user {}", user.shown()),
            None => "set user".to_string(),
        },
        Some(Stage::Seccomp) => unreachable!("handled above"),
        Some(Stage::Workdir) => format!(
            "change to working directory {}",
            plan.workdir.to_string_lossy()
        ),
        Some(Stage::Exec) => {
            let cmd = plan.argv[0].to_string_lossy();
            let found = (report.index as usize)
                .checked_sub(1)
                .and_then(|i| plan.exec_candidates.get(i));
            return match report.errno {
                libc::ENOENT if found.is_some() => Error::msg(format!(
                    "exec {}: its interpreter (the #! line) or its ELF loader is missing in the image",
                    found.map_or(cmd.clone(), |p| p.to_string_lossy())
                ))
                .with_kind(Kind::NotFound),
                libc::ENOENT | libc::ENOTDIR => {
                    let where_ = if cmd.contains('/') {
                        ""
                    } else {
                        " in the container's PATH"
                    };
                    Error::msg(format!("exec {cmd}: executable file not found{where_}"))
                        .with_kind(Kind::NotFound)
                }
                _ => Error::os(format!("exec {cmd}"), errno).with_kind(Kind::CannotInvoke),
            };
        }
        None => format!("container setup (unknown step {})", report.stage),
    };
    Error::os(what, errno)
}

/// How a container's first process ended, in docker's terms.
pub fn wait(pidfd: BorrowedFd<'_>) -> Result<i32> {
    loop {
        match rustix::process::waitid(WaitId::PidFd(pidfd), WaitIdOptions::EXITED) {
            Ok(Some(status)) => {
                if let Some(code) = status.exit_status() {
                    return Ok(code);
                }
                if let Some(sig) = status.terminating_signal() {
                    return Ok(128 + sig);
                }
                return Err(Error::msg("wait for the container: unexpected status"));
            }
            Ok(None) => continue,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::os("wait for the container", e)),
        }
    }
}

/// Sends SIGKILL to the process of `pidfd` at `deadline` (`--timeout`),
/// unless it has ended by then; returns once either happened.
pub fn kill_at(pidfd: BorrowedFd<'_>, deadline: std::time::Instant) {
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            let _ = send_signal(pidfd, libc::SIGKILL);
            return;
        }
        let timeout = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) if fds[0].revents().contains(PollFlags::IN) => return,
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Blocks the forwarded signals in the calling thread and receives them on a
/// `signalfd`, to pass on to the container while `tupper run` waits.
#[derive(Debug)]
pub struct Forwarder {
    fd: OwnedFd,
    old_mask: libc::sigset_t,
    /// Whether [`Forwarder::wait`] passed on a signal that asks to end
    /// (SIGTERM, SIGINT, SIGHUP, SIGQUIT).
    passed_an_end: std::cell::Cell<bool>,
}

impl Forwarder {
    /// Blocks [`FORWARDED`] in this thread (before the clone, so that none is lost;
    /// the child unblocks them) and opens the signalfd.
    pub fn new() -> Result<Forwarder> {
        Forwarder::of(&FORWARDED)
    }

    /// Like [`Forwarder::new`], and receives `SIGWINCH` too, for
    /// [`crate::terminal::relay`] (it passes window size changes on to the
    /// container's terminal; the signal itself is not forwarded).
    pub fn with_window_changes() -> Result<Forwarder> {
        let mut signals = FORWARDED.to_vec();
        signals.push(libc::SIGWINCH);
        Forwarder::of(&signals)
    }

    fn of(signals: &[i32]) -> Result<Forwarder> {
        // SAFETY: `set` and `old_mask` are locals initialized by sigemptyset (and by
        // pthread_sigmask for `old_mask`) before use; signalfd gets a valid set and
        // returns a new fd that we own from here on.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &sig in signals {
                libc::sigaddset(&mut set, sig);
            }
            let mut old_mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old_mask);
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                let err = std::io::Error::last_os_error();
                libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut());
                return Err(Error::os("create a signalfd", err));
            }
            Ok(Forwarder {
                fd: OwnedFd::from_raw_fd(fd),
                old_mask,
                passed_an_end: std::cell::Cell::new(false),
            })
        }
    }

    /// Waits for the container to end, passing each forwarded signal on to it.
    /// Unless the container has a process group of its own (`own_group`), the
    /// signals the kernel sent because of a terminal key (`^C`) already reached
    /// it, as it shares the terminal's foreground process group, and are not
    /// sent twice.
    pub fn wait(&self, pidfd: BorrowedFd<'_>, own_group: bool) -> Result<i32> {
        loop {
            let mut fds = [
                PollFd::new(&pidfd, PollFlags::IN),
                PollFd::new(&self.fd, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(Error::os("poll the container's pidfd", e)),
            }
            let exited = fds[0].revents().contains(PollFlags::IN);
            for info in self.drain() {
                let forwarded = FORWARDED.contains(&(info.ssi_signo as i32));
                if forwarded && (own_group || info.ssi_code != libc::SI_KERNEL) {
                    send_signal(pidfd, info.ssi_signo as i32)?;
                }
                if [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT]
                    .contains(&(info.ssi_signo as i32))
                {
                    self.passed_an_end.set(true);
                }
            }
            if exited {
                return wait(pidfd);
            }
        }
    }

    /// Whether a wait received a signal that asks to end (SIGTERM, SIGINT,
    /// SIGHUP, SIGQUIT): whoever sent it wants tupper, and the container,
    /// to end, not to restart ([`crate::restart`]).
    pub fn received_an_end(&self) -> bool {
        self.passed_an_end.get()
    }

    /// Takes the signals received meanwhile (none is passed on: there is
    /// no container to pass them to); whether one asks to end.
    pub(crate) fn take_an_end(&self) -> bool {
        let ends = self.drain().iter().any(|info| {
            [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT]
                .contains(&(info.ssi_signo as i32))
        });
        if ends {
            self.passed_an_end.set(true);
        }
        self.passed_an_end.get()
    }

    /// The signalfd, readable when a signal is pending.
    pub(crate) fn signals(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads the pending signals.
    pub(crate) fn drain(&self) -> Vec<libc::signalfd_siginfo> {
        let mut out = Vec::new();
        loop {
            let mut buf = [0u8; size_of::<libc::signalfd_siginfo>()];
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(n) if n == buf.len() => {
                    // SAFETY: the kernel wrote a whole `struct signalfd_siginfo` (128
                    // bytes, checked by `n`) into `buf`; the struct is plain integers,
                    // valid for any bit pattern, and read_unaligned copes with `buf`'s
                    // alignment.
                    out.push(unsafe {
                        std::ptr::read_unaligned(buf.as_ptr() as *const libc::signalfd_siginfo)
                    });
                }
                _ => return out,
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // Signals that came in after the container ended are dropped with the fd,
        // not delivered to tupper with their default action.
        let _ = self.drain();
        // SAFETY: `old_mask` was filled by pthread_sigmask in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut()) };
    }
}

/// An fd of the mount namespace of the process behind `pidfd` (`PIDFD_GET_MNT_NAMESPACE`,
/// Linux 6.11), or `None` when the kernel lacks it or the process has ended.
/// While the fd is open the namespace outlives the process: its mounts are
/// taken down when the last fd closes, not when the process exits.
pub fn mount_namespace_of(pidfd: BorrowedFd<'_>) -> Option<OwnedFd> {
    // _IO(PIDFS_IOCTL_MAGIC = 0xFF, 3), include/uapi/linux/pidfd.h.
    const PIDFD_GET_MNT_NAMESPACE: libc::c_ulong = 0xFF03;
    // SAFETY: an ioctl on a pidfd we borrow, with the argument 0 (the kernel
    // refuses any other); on success it returns a new fd that nothing else owns.
    let fd = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_MNT_NAMESPACE as _, 0usize) };
    // SAFETY: `fd` is a new, open fd (checked non-negative), owned from here on.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs `work` in a forked, detached process (new session, idle CPU priority,
/// stdio on `/dev/null`, every other fd closed) and returns its pid at once. The
/// caller does not wait for it: when tupper exits first it is reparented and
/// reaped by init; [`reap`] collects it when it ended earlier. For
/// single-threaded callers only (the CLI): the forked process allocates, which
/// is only sound when no other thread could have held a lock at the fork.
/// Starts no other program.
pub fn in_background(work: impl FnOnce()) -> Result<i32> {
    in_background_holding(None, work)
}

/// Forks the process that holds a detached container (`run -d`); `None` in
/// that child, the child's pid in the caller. The caller must be
/// single-threaded (the CLI, before it starts anything).
pub fn fork_detached() -> Result<Option<i32>> {
    // SAFETY: fork(2) in a single-threaded process (the caller's contract)
    // gives a child in which every lock is free; the child goes on as the
    // `run` it was asked to be and ends through the normal exit path, as the
    // only owner of its copies of the parent's objects.
    let pid = unsafe { libc::fork() };
    match pid {
        p if p < 0 => Err(Error::os(
            "fork the process of a detached run",
            std::io::Error::last_os_error(),
        )),
        0 => Ok(None),
        p => Ok(Some(p)),
    }
}

/// Closes every fd of this process above 2 but `keep` (the process of a
/// detached run, which must hold none of its caller's).
pub fn close_fds_but(keep: BorrowedFd<'_>) {
    let kept = keep.as_raw_fd() as u32;
    for (first, last) in [(3, kept.saturating_sub(1)), (kept + 1, u32::MAX)] {
        if first <= last {
            // SAFETY: close_range closes this process's own copies of fds
            // it does not use again: the caller's leaks and tupper's own
            // (none is open yet in the forked process but `keep`).
            unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
        }
    }
}

/// Like [`in_background`], and the background process keeps `hold` (a
/// container's mount namespace, see [`mount_namespace_of`]) open until the
/// calling process has exited, then closes it before `work` (and before it
/// lowers its priority): the namespace's unmounts then run in the background
/// process instead of in the caller's exit.
pub fn in_background_holding(hold: Option<OwnedFd>, work: impl FnOnce()) -> Result<i32> {
    let parent = rustix::process::getpid();
    // SAFETY: fork(2) in a single-threaded process (the caller's contract; the
    // one other thread a caller may have, a rotated log's pump, takes no lock
    // the child takes but malloc's, which glibc's fork hands over consistent)
    // gives a child in which every lock it takes is free; the child never
    // returns to the caller's frames (it ends in _exit), so no Drop of the
    // parent's objects runs twice.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::os(
            "fork a background process",
            std::io::Error::last_os_error(),
        ));
    }
    if pid > 0 {
        return Ok(pid);
    }
    let _ = rustix::process::setsid();
    // The run's forwarder blocks the forwarded signals; `kill` must end this
    // process as it does any other.
    // SAFETY: an empty, local signal set; pthread_sigmask on this (only) thread.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
    if let Ok(null) = rustix::fs::open(
        c"/dev/null",
        rustix::fs::OFlags::RDWR,
        rustix::fs::Mode::empty(),
    ) {
        for target in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this process, which
            // owns its copy of the fd table; `null` stays owned by us.
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
    }
    // Every fd from 3 up but `hold`. `hold` is below 3 only if the caller ran
    // with a standard fd closed: then the dup2 above replaced it, and nothing
    // is kept.
    let ranges = match hold.as_ref().map(|fd| fd.as_raw_fd() as u32) {
        Some(kept) if kept >= 3 => vec![(3, kept - 1), (kept + 1, u32::MAX)],
        _ => vec![(3, u32::MAX)],
    };
    for (first, last) in ranges.into_iter().filter(|(first, last)| first <= last) {
        // SAFETY: close_range(2) closes this process's copies of the parent's fds
        // (run lock, pidfd, pipes), all but `hold`, so that the background work
        // holds none of them; none is used afterwards (`null` is closed here too
        // and not used again).
        unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    }
    if let Some(hold) = hold {
        wait_for_parent_exit(parent);
        // At normal priority: the unmounts take the kernel's namespace lock,
        // which the next container start's clone3 needs too.
        drop(hold);
    }
    // Background work must not compete with container starts for the CPU: it
    // runs only when a core would otherwise idle (SCHED_IDLE), and at the lowest
    // nice value should SCHED_IDLE be refused.
    let _ = rustix::process::setpriority_process(None, 19);
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler on this process (pid 0) with a valid, local
    // `sched_param`; SCHED_IDLE takes priority 0.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    work();
    // SAFETY: _exit ends the process without running the parent's exit handlers.
    unsafe { libc::_exit(0) }
}

/// Blocks until the process that forked this one has exited (at once when it
/// already has: this process was reparented).
fn wait_for_parent_exit(parent: Pid) {
    let Ok(pidfd) = rustix::process::pidfd_open(parent, rustix::process::PidfdFlags::empty())
    else {
        return;
    };
    // The pidfd names our parent only when we were not reparented before it was
    // opened (else the parent is gone, and the pid could have been reused).
    if rustix::process::getppid() != Some(parent) {
        return;
    }
    let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
    while let Err(Errno::INTR) = poll(&mut fds, None) {}
}

/// Collects background process `pid` if it has ended (never blocks).
pub fn reap(pid: i32) {
    let Some(pid) = Pid::from_raw(pid) else {
        return;
    };
    let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
}

const _: () = assert!(size_of::<libc::signalfd_siginfo>() == 128);
const _: () = assert!(size_of::<k::clone_args>() == 88);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_user_change_names_the_ids() {
        let user = crate::user::Resolved {
            uid: 1000,
            gid: 100,
            groups: vec![100, 10],
            home: "/".into(),
        };
        let input = crate::plan::PlanInput {
            hostname: "h",
            user: Some(&user),
            ..Default::default()
        };
        let plan = ChildPlan::new(std::path::Path::new("/r"), &input).unwrap();
        let report = Report {
            stage: Stage::User as u32,
            index: 0,
            errno: libc::EPERM,
        };
        let e = report_error(&plan, report);
        assert!(
            e.to_string()
                .starts_with("set user 1000:100 (groups 100,10): Operation not permitted"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 125);
    }
}
