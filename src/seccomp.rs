//! The container's system-call filter: docker's default seccomp profile for a
//! command with docker's default capabilities, as a classic BPF program built
//! in memory (no libseccomp, no profile file; a profile file of docker's
//! format is compiled with the same search by [`crate::seccomp_profile`]).
//!
//! What it does, for the native x86-64 system calls:
//! - the ~310 calls of docker's allow list run (without io_uring, which docker
//!   dropped in 25.0: its work items never pass the filter), and those docker adds for a
//!   capability the command has (`mount`, `unshare`, ... with
//!   `CAP_SYS_ADMIN`; `chroot` with `CAP_SYS_CHROOT`, ...: [`BY_CAPABILITY`]);
//! - `clone` runs unless it asks for a new namespace, `clone3` fails with
//!   `ENOSYS` (so that libc falls back to `clone`, whose flags the filter can
//!   read), `socket` runs for every family but `AF_VSOCK`, `personality` only
//!   with the five values docker allows;
//! - `ioctl(TIOCSTI)` (pushing bytes into a terminal's input) fails with
//!   `EPERM`: without `-t`, tupper shares the user's terminal with the
//!   container (docker always gives an interactive container a
//!   pseudo-terminal of its own, so it need not filter it); for a container
//!   whose writes are limited (`--storage-opt size`) so do the btrfs ioctls
//!   that make subvolumes and snapshots ([`default_filter_of`]);
//! - every other call of the table (mount, unshare, setns, keyctl, bpf,
//!   perf_event_open, kexec_load, init_module, reboot, io_uring_setup, ...)
//!   fails with `EPERM`; a number newer than this table, or one x86-64
//!   leaves unused, fails with `ENOSYS`, as the kernel itself would answer
//!   (so a new libc call falls back to its older one: runc does the same);
//! - x32 calls (bit 30 set) are numbers above the table: `ENOSYS`;
//! - a call of the 32-bit ABI (`int 0x80`) kills the process: tupper's
//!   filter covers the native ABI only, where docker's also allows the
//!   32-bit one (see `docs/decisions.md`).
//!
//! The program is a binary search over runs of system-call numbers that get the
//! same answer, whose comparisons end in one shared `RET` per answer (~90
//! instructions: the kernel checks and compiles it at every start), so a call
//! costs ~8 instructions, and the kernel's seccomp
//! cache skips the filter altogether for the calls it allows whatever their
//! arguments.

use linux_raw_sys::general as nr;

use crate::capabilities::has;
use linux_raw_sys::ptrace::{
    sock_filter, AUDIT_ARCH_X86_64, BPF_ABS, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_JSET, BPF_K,
    BPF_LD, BPF_RET, BPF_W, SECCOMP_RET_ALLOW, SECCOMP_RET_DATA, SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS,
};

#[cfg(not(target_arch = "x86_64"))]
compile_error!("tupper's seccomp filter is written for x86-64 system-call numbers");

/// A BPF program for `seccomp(SECCOMP_SET_MODE_FILTER)`, made before the clone.
#[derive(Debug, Clone)]
pub struct Filter {
    pub(crate) program: Vec<sock_filter>,
}

impl Filter {
    /// The instructions, for the child's `sock_fprog`.
    pub fn instructions(&self) -> &[sock_filter] {
        &self.program
    }
}

/// What the filter answers for one system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Allow,
    Errno(u32),
    /// Decided by an argument: see [`check_block`].
    Check(Check),
    /// This `SECCOMP_RET_*` value (a profile's kill, trap, log, trace).
    Ret(u32),
    /// Decided by a profile's rules: the code block of this index (see
    /// [`search`]).
    Rules(usize),
}

/// The calls the filter lets through for some arguments only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// `clone(flags, ...)`: not with a namespace flag.
    Clone,
    /// `socket(domain, ...)`: not `AF_VSOCK`.
    Socket,
    /// `personality(persona)`: only docker's five values.
    Personality,
    /// `ioctl(fd, cmd, ...)`: not `TIOCSTI`.
    Ioctl,
    /// `ioctl(fd, cmd, ...)`: not `TIOCSTI`, and none of btrfs's that make
    /// a subvolume or a snapshot (a container with `--storage-opt size`:
    /// what it wrote there would not count).
    IoctlNoSubvolumes,
}

/// The namespace flags of `clone` (`CLONE_NEWNS | CLONE_NEWCGROUP |
/// CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET`): docker's mask.
const CLONE_NAMESPACES: u32 = 0x7E02_0000;

/// `AF_VSOCK`: sockets to the hypervisor, which docker refuses.
const AF_VSOCK: u32 = 40;

/// The `personality` values docker allows: `PER_LINUX`, `PER_LINUX32`,
/// `UNAME26`, `PER_LINUX32|UNAME26`, and `0xffffffff` (a query).
const PERSONALITIES: [u32; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// `TIOCSTI`: push a byte into a terminal's input queue.
const TIOCSTI: u32 = linux_raw_sys::ioctl::TIOCSTI;

/// The btrfs ioctls that make a subvolume or a snapshot (v1 and v2 of
/// each), which any user may call in a directory it can write.
const SUBVOLUME_MAKERS: [u32; 4] = [
    linux_raw_sys::ioctl::BTRFS_IOC_SUBVOL_CREATE,
    linux_raw_sys::ioctl::BTRFS_IOC_SUBVOL_CREATE_V2,
    linux_raw_sys::ioctl::BTRFS_IOC_SNAP_CREATE,
    linux_raw_sys::ioctl::BTRFS_IOC_SNAP_CREATE_V2,
];

/// The system calls allowed whatever their arguments and capabilities:
/// docker's default list (the names it has on x86-64), the ones it allows on
/// kernels from 4.8 (`ptrace`, `process_vm_readv`, `process_vm_writev`), and
/// the x86-64 ones (`arch_prctl`, `modify_ldt`).
const ALLOWED: &[u32] = &[
    nr::__NR_accept,
    nr::__NR_accept4,
    nr::__NR_access,
    nr::__NR_adjtimex,
    nr::__NR_alarm,
    nr::__NR_arch_prctl,
    nr::__NR_bind,
    nr::__NR_brk,
    nr::__NR_capget,
    nr::__NR_capset,
    nr::__NR_chdir,
    nr::__NR_chmod,
    nr::__NR_chown,
    nr::__NR_clock_adjtime,
    nr::__NR_clock_getres,
    nr::__NR_clock_gettime,
    nr::__NR_clock_nanosleep,
    nr::__NR_close,
    nr::__NR_close_range,
    nr::__NR_connect,
    nr::__NR_copy_file_range,
    nr::__NR_creat,
    nr::__NR_dup,
    nr::__NR_dup2,
    nr::__NR_dup3,
    nr::__NR_epoll_create,
    nr::__NR_epoll_create1,
    nr::__NR_epoll_ctl,
    nr::__NR_epoll_ctl_old,
    nr::__NR_epoll_pwait,
    nr::__NR_epoll_pwait2,
    nr::__NR_epoll_wait,
    nr::__NR_epoll_wait_old,
    nr::__NR_eventfd,
    nr::__NR_eventfd2,
    nr::__NR_execve,
    nr::__NR_execveat,
    nr::__NR_exit,
    nr::__NR_exit_group,
    nr::__NR_faccessat,
    nr::__NR_faccessat2,
    nr::__NR_fadvise64,
    nr::__NR_fallocate,
    nr::__NR_fanotify_mark,
    nr::__NR_fchdir,
    nr::__NR_fchmod,
    nr::__NR_fchmodat,
    nr::__NR_fchown,
    nr::__NR_fchownat,
    nr::__NR_fcntl,
    nr::__NR_fdatasync,
    nr::__NR_fgetxattr,
    nr::__NR_flistxattr,
    nr::__NR_flock,
    nr::__NR_fork,
    nr::__NR_fremovexattr,
    nr::__NR_fsetxattr,
    nr::__NR_fstat,
    nr::__NR_fstatfs,
    nr::__NR_fsync,
    nr::__NR_ftruncate,
    nr::__NR_futex,
    nr::__NR_futex_waitv,
    nr::__NR_futimesat,
    nr::__NR_getcpu,
    nr::__NR_getcwd,
    nr::__NR_getdents,
    nr::__NR_getdents64,
    nr::__NR_getegid,
    nr::__NR_geteuid,
    nr::__NR_getgid,
    nr::__NR_getgroups,
    nr::__NR_getitimer,
    nr::__NR_getpeername,
    nr::__NR_getpgid,
    nr::__NR_getpgrp,
    nr::__NR_getpid,
    nr::__NR_getppid,
    nr::__NR_getpriority,
    nr::__NR_getrandom,
    nr::__NR_getresgid,
    nr::__NR_getresuid,
    nr::__NR_getrlimit,
    nr::__NR_get_robust_list,
    nr::__NR_getrusage,
    nr::__NR_getsid,
    nr::__NR_getsockname,
    nr::__NR_getsockopt,
    nr::__NR_get_thread_area,
    nr::__NR_gettid,
    nr::__NR_gettimeofday,
    nr::__NR_getuid,
    nr::__NR_getxattr,
    nr::__NR_inotify_add_watch,
    nr::__NR_inotify_init,
    nr::__NR_inotify_init1,
    nr::__NR_inotify_rm_watch,
    nr::__NR_io_cancel,
    nr::__NR_io_destroy,
    nr::__NR_io_getevents,
    nr::__NR_io_pgetevents,
    nr::__NR_ioprio_get,
    nr::__NR_ioprio_set,
    nr::__NR_io_setup,
    nr::__NR_io_submit,
    nr::__NR_kill,
    nr::__NR_landlock_add_rule,
    nr::__NR_landlock_create_ruleset,
    nr::__NR_landlock_restrict_self,
    nr::__NR_lchown,
    nr::__NR_lgetxattr,
    nr::__NR_link,
    nr::__NR_linkat,
    nr::__NR_listen,
    nr::__NR_listxattr,
    nr::__NR_llistxattr,
    nr::__NR_lremovexattr,
    nr::__NR_lseek,
    nr::__NR_lsetxattr,
    nr::__NR_lstat,
    nr::__NR_madvise,
    nr::__NR_membarrier,
    nr::__NR_memfd_create,
    nr::__NR_memfd_secret,
    nr::__NR_mincore,
    nr::__NR_mkdir,
    nr::__NR_mkdirat,
    nr::__NR_mknod,
    nr::__NR_mknodat,
    nr::__NR_mlock,
    nr::__NR_mlock2,
    nr::__NR_mlockall,
    nr::__NR_mmap,
    nr::__NR_modify_ldt,
    nr::__NR_mprotect,
    nr::__NR_mq_getsetattr,
    nr::__NR_mq_notify,
    nr::__NR_mq_open,
    nr::__NR_mq_timedreceive,
    nr::__NR_mq_timedsend,
    nr::__NR_mq_unlink,
    nr::__NR_mremap,
    nr::__NR_msgctl,
    nr::__NR_msgget,
    nr::__NR_msgrcv,
    nr::__NR_msgsnd,
    nr::__NR_msync,
    nr::__NR_munlock,
    nr::__NR_munlockall,
    nr::__NR_munmap,
    nr::__NR_name_to_handle_at,
    nr::__NR_nanosleep,
    nr::__NR_newfstatat,
    nr::__NR_open,
    nr::__NR_openat,
    nr::__NR_openat2,
    nr::__NR_pause,
    nr::__NR_pidfd_open,
    nr::__NR_pidfd_send_signal,
    nr::__NR_pipe,
    nr::__NR_pipe2,
    nr::__NR_pkey_alloc,
    nr::__NR_pkey_free,
    nr::__NR_pkey_mprotect,
    nr::__NR_poll,
    nr::__NR_ppoll,
    nr::__NR_prctl,
    nr::__NR_pread64,
    nr::__NR_preadv,
    nr::__NR_preadv2,
    nr::__NR_prlimit64,
    nr::__NR_process_mrelease,
    nr::__NR_process_vm_readv,
    nr::__NR_process_vm_writev,
    nr::__NR_pselect6,
    nr::__NR_ptrace,
    nr::__NR_pwrite64,
    nr::__NR_pwritev,
    nr::__NR_pwritev2,
    nr::__NR_read,
    nr::__NR_readahead,
    nr::__NR_readlink,
    nr::__NR_readlinkat,
    nr::__NR_readv,
    nr::__NR_recvfrom,
    nr::__NR_recvmmsg,
    nr::__NR_recvmsg,
    nr::__NR_remap_file_pages,
    nr::__NR_removexattr,
    nr::__NR_rename,
    nr::__NR_renameat,
    nr::__NR_renameat2,
    nr::__NR_restart_syscall,
    nr::__NR_rmdir,
    nr::__NR_rseq,
    nr::__NR_rt_sigaction,
    nr::__NR_rt_sigpending,
    nr::__NR_rt_sigprocmask,
    nr::__NR_rt_sigqueueinfo,
    nr::__NR_rt_sigreturn,
    nr::__NR_rt_sigsuspend,
    nr::__NR_rt_sigtimedwait,
    nr::__NR_rt_tgsigqueueinfo,
    nr::__NR_sched_getaffinity,
    nr::__NR_sched_getattr,
    nr::__NR_sched_getparam,
    nr::__NR_sched_get_priority_max,
    nr::__NR_sched_get_priority_min,
    nr::__NR_sched_getscheduler,
    nr::__NR_sched_rr_get_interval,
    nr::__NR_sched_setaffinity,
    nr::__NR_sched_setattr,
    nr::__NR_sched_setparam,
    nr::__NR_sched_setscheduler,
    nr::__NR_sched_yield,
    nr::__NR_seccomp,
    nr::__NR_select,
    nr::__NR_semctl,
    nr::__NR_semget,
    nr::__NR_semop,
    nr::__NR_semtimedop,
    nr::__NR_sendfile,
    nr::__NR_sendmmsg,
    nr::__NR_sendmsg,
    nr::__NR_sendto,
    nr::__NR_setfsgid,
    nr::__NR_setfsuid,
    nr::__NR_setgid,
    nr::__NR_setgroups,
    nr::__NR_setitimer,
    nr::__NR_setpgid,
    nr::__NR_setpriority,
    nr::__NR_setregid,
    nr::__NR_setresgid,
    nr::__NR_setresuid,
    nr::__NR_setreuid,
    nr::__NR_setrlimit,
    nr::__NR_set_robust_list,
    nr::__NR_setsid,
    nr::__NR_setsockopt,
    nr::__NR_set_thread_area,
    nr::__NR_set_tid_address,
    nr::__NR_setuid,
    nr::__NR_setxattr,
    nr::__NR_shmat,
    nr::__NR_shmctl,
    nr::__NR_shmdt,
    nr::__NR_shmget,
    nr::__NR_shutdown,
    nr::__NR_sigaltstack,
    nr::__NR_signalfd,
    nr::__NR_signalfd4,
    nr::__NR_socketpair,
    nr::__NR_splice,
    nr::__NR_stat,
    nr::__NR_statfs,
    nr::__NR_statx,
    nr::__NR_symlink,
    nr::__NR_symlinkat,
    nr::__NR_sync,
    nr::__NR_sync_file_range,
    nr::__NR_syncfs,
    nr::__NR_sysinfo,
    nr::__NR_tee,
    nr::__NR_tgkill,
    nr::__NR_time,
    nr::__NR_timer_create,
    nr::__NR_timer_delete,
    nr::__NR_timer_getoverrun,
    nr::__NR_timer_gettime,
    nr::__NR_timer_settime,
    nr::__NR_timerfd_create,
    nr::__NR_timerfd_gettime,
    nr::__NR_timerfd_settime,
    nr::__NR_times,
    nr::__NR_tkill,
    nr::__NR_truncate,
    nr::__NR_umask,
    nr::__NR_uname,
    nr::__NR_unlink,
    nr::__NR_unlinkat,
    nr::__NR_utime,
    nr::__NR_utimensat,
    nr::__NR_utimes,
    nr::__NR_vfork,
    nr::__NR_vmsplice,
    nr::__NR_wait4,
    nr::__NR_waitid,
    nr::__NR_write,
    nr::__NR_writev,
];

/// Newer calls that docker's list has allowed since 2025 (moby#50077) or that
/// do nothing its list does not already allow under another number: the
/// `*xattrat` family, `fchmodat2` (glibc uses it for `lchmod`), the
/// `futex_*` calls, `cachestat`, `map_shadow_stack`, `mseal`, `statmount`,
/// `listmount`, `lsm_get_self_attr`, `lsm_list_modules`, and `uretprobe`
/// (entered only from the kernel's own uprobe trampoline).
const ALLOWED_NEWER: &[u32] = &[
    nr::__NR_statmount,
    nr::__NR_listmount,
    nr::__NR_lsm_get_self_attr,
    nr::__NR_lsm_list_modules,
    nr::__NR_cachestat,
    nr::__NR_fchmodat2,
    nr::__NR_map_shadow_stack,
    nr::__NR_futex_wake,
    nr::__NR_futex_wait,
    nr::__NR_futex_requeue,
    nr::__NR_mseal,
    nr::__NR_setxattrat,
    nr::__NR_getxattrat,
    nr::__NR_listxattrat,
    nr::__NR_removexattrat,
    nr::__NR_uretprobe,
];

/// The calls docker allows when the command has a capability: each
/// capability's name (see [`crate::capabilities::NAMES`]) and its calls. With
/// `SYS_ADMIN`, `clone` and `clone3` run with any flags, too.
pub const BY_CAPABILITY: &[(&str, &[u32])] = &[
    (
        "SYS_ADMIN",
        &[
            nr::__NR_bpf,
            nr::__NR_fanotify_init,
            nr::__NR_fsconfig,
            nr::__NR_fsmount,
            nr::__NR_fsopen,
            nr::__NR_fspick,
            nr::__NR_lookup_dcookie,
            nr::__NR_mount,
            nr::__NR_mount_setattr,
            nr::__NR_move_mount,
            nr::__NR_open_tree,
            nr::__NR_perf_event_open,
            nr::__NR_quotactl,
            nr::__NR_quotactl_fd,
            nr::__NR_setdomainname,
            nr::__NR_sethostname,
            nr::__NR_setns,
            nr::__NR_syslog,
            nr::__NR_umount2,
            nr::__NR_unshare,
        ],
    ),
    ("SYS_BOOT", &[nr::__NR_reboot]),
    ("SYS_CHROOT", &[nr::__NR_chroot]),
    (
        "SYS_MODULE",
        &[
            nr::__NR_delete_module,
            nr::__NR_init_module,
            nr::__NR_finit_module,
        ],
    ),
    ("SYS_PACCT", &[nr::__NR_acct]),
    (
        "SYS_PTRACE",
        &[
            nr::__NR_kcmp,
            nr::__NR_pidfd_getfd,
            nr::__NR_process_madvise,
        ],
    ),
    ("SYS_RAWIO", &[nr::__NR_iopl, nr::__NR_ioperm]),
    ("SYS_TIME", &[nr::__NR_settimeofday, nr::__NR_clock_settime]),
    ("SYS_TTY_CONFIG", &[nr::__NR_vhangup]),
    (
        "SYS_NICE",
        &[
            nr::__NR_get_mempolicy,
            nr::__NR_mbind,
            nr::__NR_set_mempolicy,
            nr::__NR_set_mempolicy_home_node,
        ],
    ),
    ("SYSLOG", &[nr::__NR_syslog]),
    ("BPF", &[nr::__NR_bpf]),
    ("PERFMON", &[nr::__NR_perf_event_open]),
    ("DAC_READ_SEARCH", &[nr::__NR_open_by_handle_at]),
];

/// The highest system-call number this table knows: a higher one gets
/// `ENOSYS`, as from a kernel that does not have it.
pub(crate) const LAST_KNOWN: u32 = nr::__NR_file_setattr;

/// x86-64 has no system calls between `uretprobe` (335) and
/// `pidfd_send_signal` (424): the numbers were left for the calls that every
/// architecture got at once from 424 on.
pub(crate) const UNUSED: std::ops::RangeInclusive<u32> =
    nr::__NR_uretprobe + 1..=nr::__NR_pidfd_send_signal - 1;

/// Offsets in `struct seccomp_data`: `nr`, `arch`, and the low 32 bits of
/// argument `i` (little-endian) at `ARGS + 8 * i`.
pub(crate) const NR: u32 = 0;
pub(crate) const ARCH: u32 = 4;
pub(crate) const ARGS: u32 = 16;

/// The errno of a call the kernel has and the filter refuses.
pub(crate) const EPERM: u32 = linux_raw_sys::errno::EPERM;
/// The errno of a call the kernel does not have.
pub(crate) const ENOSYS: u32 = linux_raw_sys::errno::ENOSYS;

/// The answer for each system-call number up to [`LAST_KNOWN`], for a
/// command with `capabilities`.
fn actions(capabilities: u64, no_subvolumes: bool) -> Vec<Action> {
    let mut table = vec![Action::Errno(EPERM); LAST_KNOWN as usize + 1];
    for n in UNUSED {
        table[n as usize] = Action::Errno(ENOSYS);
    }
    for &n in ALLOWED.iter().chain(ALLOWED_NEWER) {
        table[n as usize] = Action::Allow;
    }
    table[nr::__NR_clone as usize] = Action::Check(Check::Clone);
    table[nr::__NR_clone3 as usize] = Action::Errno(ENOSYS);
    table[nr::__NR_socket as usize] = Action::Check(Check::Socket);
    table[nr::__NR_personality as usize] = Action::Check(Check::Personality);
    table[nr::__NR_ioctl as usize] = Action::Check(match no_subvolumes {
        true => Check::IoctlNoSubvolumes,
        false => Check::Ioctl,
    });
    for (cap, calls) in BY_CAPABILITY {
        if has(capabilities, cap) {
            for &n in *calls {
                table[n as usize] = Action::Allow;
            }
        }
    }
    if has(capabilities, "SYS_ADMIN") {
        table[nr::__NR_clone as usize] = Action::Allow;
        table[nr::__NR_clone3 as usize] = Action::Allow;
    }
    table
}

/// Numbers `start..` (up to the next run's start) that get the same action.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    start: u32,
    action: Action,
}

/// The table as runs of equal actions, ending with `ENOSYS` for everything
/// above [`LAST_KNOWN`] (x32's numbers, with bit 30 set, among them).
pub(crate) fn runs(table: &[Action]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (n, &action) in table.iter().enumerate() {
        let joins = matches!(runs.last(), Some(r) if r.action == action && !matches!(action, Action::Check(_)));
        if !joins {
            runs.push(Run {
                start: n as u32,
                action,
            });
        }
    }
    runs.push(Run {
        start: LAST_KNOWN + 1,
        action: Action::Errno(ENOSYS),
    });
    runs
}

pub(crate) fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

pub(crate) fn jump(op: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: (BPF_JMP | op | BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

pub(crate) fn load(offset: u32) -> sock_filter {
    stmt(BPF_LD | BPF_W | BPF_ABS, offset)
}

pub(crate) fn ret(action: u32) -> sock_filter {
    stmt(BPF_RET | BPF_K, action)
}

pub(crate) fn errno(e: u32) -> u32 {
    SECCOMP_RET_ERRNO | (e & SECCOMP_RET_DATA)
}

/// The instructions that decide a call of [`Check`] by its argument.
fn check_block(check: Check) -> Vec<sock_filter> {
    let deny = ret(errno(EPERM));
    let allow = ret(SECCOMP_RET_ALLOW);
    match check {
        Check::Clone => vec![
            load(ARGS),
            jump(BPF_JSET, CLONE_NAMESPACES, 0, 1),
            deny,
            allow,
        ],
        Check::Socket => vec![load(ARGS), jump(BPF_JEQ, AF_VSOCK, 0, 1), deny, allow],
        Check::Ioctl => vec![load(ARGS + 8), jump(BPF_JEQ, TIOCSTI, 0, 1), deny, allow],
        Check::IoctlNoSubvolumes => {
            let denied: Vec<u32> = std::iter::once(TIOCSTI).chain(SUBVOLUME_MAKERS).collect();
            let mut block = vec![load(ARGS + 8)];
            let n = denied.len();
            for (i, &cmd) in denied.iter().enumerate() {
                // A match: past the remaining comparisons, to the deny; the
                // last one's miss: past the deny, to the allow.
                let last = i == n - 1;
                block.push(jump(BPF_JEQ, cmd, (n - 1 - i) as u8, u8::from(last)));
            }
            block.push(deny);
            block.push(allow);
            block
        }
        Check::Personality => {
            let mut block = vec![load(ARGS)];
            let n = PERSONALITIES.len();
            for (i, &value) in PERSONALITIES.iter().enumerate() {
                // Past the remaining comparisons and the deny: to the allow.
                block.push(jump(BPF_JEQ, value, (n - i) as u8, 0));
            }
            block.push(deny);
            block.push(allow);
            block
        }
    }
}

/// Where a comparison of the search jumps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The comparison at this index of [`Search::nodes`].
    Node(usize),
    /// The shared code of an action, after the search.
    Leaf(Action),
}

/// A binary search over runs of system-call numbers (the number is in the
/// accumulator), as comparisons that jump to each other and, at the
/// bottom, to one shared `RET` (or argument check) per action: ~70
/// comparisons and a handful of leaves instead of a `RET` per run.
struct Search {
    /// `(k, target if nr >= k, target if nr < k)`, in program order.
    nodes: Vec<(u32, Target, Target)>,
}

impl Search {
    fn new(runs: &[Run]) -> (Search, Target) {
        let mut s = Search { nodes: Vec::new() };
        let root = s.build(runs);
        (s, root)
    }

    fn build(&mut self, runs: &[Run]) -> Target {
        if let [run] = runs {
            return Target::Leaf(run.action);
        }
        let index = self.nodes.len();
        let mid = runs.len() / 2;
        self.nodes
            .push((runs[mid].start, Target::Node(0), Target::Node(0)));
        let below = self.build(&runs[..mid]);
        let above = self.build(&runs[mid..]);
        self.nodes[index] = (runs[mid].start, above, below);
        Target::Node(index)
    }
}

/// The code of a leaf: a [`Action::Rules`] leaf is a long jump to its block
/// (its offset is set by [`search`]).
fn leaf_code(action: Action) -> Vec<sock_filter> {
    match action {
        Action::Allow => vec![ret(SECCOMP_RET_ALLOW)],
        Action::Errno(e) => vec![ret(errno(e))],
        Action::Ret(value) => vec![ret(value)],
        Action::Check(check) => check_block(check),
        Action::Rules(_) => vec![stmt(BPF_JMP | BPF_JA, 0)],
    }
}

/// The search as instructions: the comparisons, then each distinct leaf
/// once, then the `blocks` of the [`Action::Rules`] leaves (whose jumps
/// take 32-bit offsets). Fails if a comparison's jump would be longer than
/// 255 instructions (the default filter's never is: unit tests build those
/// of every capability).
pub(crate) fn search(
    runs: &[Run],
    blocks: &[Vec<sock_filter>],
) -> Result<Vec<sock_filter>, String> {
    let (search, root) = Search::new(runs);
    let mut leaves: Vec<Action> = Vec::new();
    for run in runs {
        if !leaves.contains(&run.action) {
            leaves.push(run.action);
        }
    }
    let mut leaf_at = Vec::new();
    let mut at = search.nodes.len();
    for &action in &leaves {
        leaf_at.push(at);
        at += leaf_code(action).len();
    }
    let index_of = |t: Target| match t {
        Target::Node(i) => i,
        Target::Leaf(a) => leaf_at[leaves.iter().position(|l| *l == a).unwrap()],
    };
    let mut code = Vec::with_capacity(at);
    if let Target::Leaf(action) = root {
        leaves = vec![action];
    } else {
        for (i, &(k, above, below)) in search.nodes.iter().enumerate() {
            let offset = |t: Target| {
                u8::try_from(index_of(t) - i - 1)
                    .map_err(|_| "a jump of the filter over 255 instructions".to_string())
            };
            code.push(jump(BPF_JGE, k, offset(above)?, offset(below)?));
        }
    }
    let mut long_jumps = Vec::new();
    for &action in &leaves {
        if let Action::Rules(block) = action {
            long_jumps.push((code.len(), block));
        }
        code.extend(leaf_code(action));
    }
    let mut block_at = vec![0; blocks.len()];
    for (i, block) in blocks.iter().enumerate() {
        block_at[i] = code.len();
        code.extend_from_slice(block);
    }
    for (at, block) in long_jumps {
        let target = *block_at
            .get(block)
            .ok_or_else(|| format!("no code for rule block {block}"))?;
        code[at].k = (target - at - 1) as u32;
    }
    Ok(code)
}

/// docker's default filter for a command with `capabilities` (a bit mask,
/// see [`crate::capabilities`]), for x86-64 (see the module's documentation).
pub fn default_filter(capabilities: u64) -> Filter {
    default_filter_of(capabilities, false)
}

/// [`default_filter`]; with `no_subvolumes` it also refuses the btrfs
/// ioctls that make a subvolume or a snapshot (`EPERM`): a container
/// whose writes are limited (`--storage-opt size`) would escape its limit
/// in one, which has a qgroup of its own.
pub fn default_filter_of(capabilities: u64, no_subvolumes: bool) -> Filter {
    let mut program = header();
    program.extend(
        search(&runs(&actions(capabilities, no_subvolumes)), &[])
            .expect("the default filter's jumps are short (unit-tested)"),
    );
    Filter { program }
}

/// The filter's header: a call of another ABI than x86-64's kills the
/// process; the number is loaded for what follows.
pub(crate) fn header() -> Vec<sock_filter> {
    vec![
        load(ARCH),
        jump(BPF_JEQ, AUDIT_ARCH_X86_64, 1, 0),
        ret(SECCOMP_RET_KILL_PROCESS),
        load(NR),
    ]
}

/// Runs a filter on one call, as the kernel does; panics on anything
/// the kernel's checker would refuse (a jump out of the program, an
/// instruction these filters do not use, falling off the end).
#[cfg(test)]
pub(crate) fn eval(filter: &Filter, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    use linux_raw_sys::ptrace::{BPF_ALU, BPF_AND, BPF_JGT};
    let p = filter.instructions();
    assert!(p.len() <= linux_raw_sys::ptrace::BPF_MAXINSNS as usize);
    let word = |offset: u32| -> u32 {
        match offset {
            NR => nr,
            ARCH => arch,
            o if (ARGS..ARGS + 48).contains(&o) && o % 4 == 0 => {
                let a = args[((o - ARGS) / 8) as usize];
                if (o - ARGS) % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            o => panic!("load of offset {o}"),
        }
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = p.get(pc).unwrap_or_else(|| panic!("fell off at {pc}"));
        let code = i.code as u32;
        pc += 1;
        if code == BPF_LD | BPF_W | BPF_ABS {
            acc = word(i.k);
        } else if code == BPF_ALU | BPF_AND | BPF_K {
            acc &= i.k;
        } else if code == BPF_RET | BPF_K {
            return i.k;
        } else if code == BPF_JMP | BPF_JA {
            pc += i.k as usize;
        } else {
            let taken = match code {
                c if c == BPF_JMP | BPF_JEQ | BPF_K => acc == i.k,
                c if c == BPF_JMP | BPF_JGE | BPF_K => acc >= i.k,
                c if c == BPF_JMP | BPF_JGT | BPF_K => acc > i.k,
                c if c == BPF_JMP | BPF_JSET | BPF_K => acc & i.k != 0,
                c => panic!("instruction {c:#x}"),
            };
            pc += if taken { i.jt } else { i.jf } as usize;
        }
        assert!(pc < p.len(), "jump out of the program");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities;

    fn call(nr: u32, args: [u64; 6]) -> u32 {
        eval(
            &default_filter(capabilities::DEFAULT),
            AUDIT_ARCH_X86_64,
            nr,
            args,
        )
    }

    const ALLOW: u32 = SECCOMP_RET_ALLOW;

    #[test]
    fn allows_the_calls_of_the_list() {
        for &n in ALLOWED.iter().chain(ALLOWED_NEWER) {
            assert_eq!(call(n, [0; 6]), ALLOW, "system call {n}");
        }
        // docker's default set has SYS_CHROOT.
        assert_eq!(call(nr::__NR_chroot, [0; 6]), ALLOW);
    }

    #[test]
    fn the_calls_of_run_u_pass_whatever_the_capabilities() {
        // The child makes them after loading the filter (`-u`).
        for caps in [0, capabilities::DEFAULT] {
            for n in [nr::__NR_setgroups, nr::__NR_setresgid, nr::__NR_setresuid] {
                let got = eval(&default_filter(caps), AUDIT_ARCH_X86_64, n, [0; 6]);
                assert_eq!(got, ALLOW, "system call {n} with capabilities {caps:#x}");
            }
        }
    }

    #[test]
    fn a_capability_allows_its_calls() {
        let run = |caps: u64, nr: u32, flags: u64| {
            eval(
                &default_filter(caps),
                AUDIT_ARCH_X86_64,
                nr,
                [flags, 0, 0, 0, 0, 0],
            )
        };
        let admin = capabilities::DEFAULT | capabilities::bit("SYS_ADMIN").unwrap();
        for n in [
            nr::__NR_mount,
            nr::__NR_unshare,
            nr::__NR_setns,
            nr::__NR_clone3,
        ] {
            assert_eq!(run(admin, n, 0), ALLOW, "system call {n}");
        }
        // CLONE_NEWUSER.
        assert_eq!(run(admin, nr::__NR_clone, 0x1000_0000), ALLOW);
        assert_eq!(run(admin, nr::__NR_kexec_load, 0), errno(EPERM));
        let ptrace = capabilities::DEFAULT | capabilities::bit("SYS_PTRACE").unwrap();
        assert_eq!(run(ptrace, nr::__NR_kcmp, 0), ALLOW);
        assert_eq!(run(ptrace, nr::__NR_mount, 0), errno(EPERM));
        // Dropped: gone from the filter too.
        let no_chroot = capabilities::DEFAULT & !capabilities::bit("SYS_CHROOT").unwrap();
        assert_eq!(run(no_chroot, nr::__NR_chroot, 0), errno(EPERM));
        assert_eq!(run(capabilities::ALL, nr::__NR_init_module, 0), ALLOW);
        assert!(default_filter(capabilities::ALL).instructions().len() < 120);
    }

    #[test]
    fn refuses_what_docker_refuses() {
        for n in [
            nr::__NR_mount,
            nr::__NR_umount2,
            nr::__NR_unshare,
            nr::__NR_setns,
            nr::__NR_keyctl,
            nr::__NR_add_key,
            nr::__NR_request_key,
            nr::__NR_bpf,
            nr::__NR_perf_event_open,
            nr::__NR_kexec_load,
            nr::__NR_init_module,
            nr::__NR_finit_module,
            nr::__NR_reboot,
            nr::__NR_swapon,
            nr::__NR_open_by_handle_at,
            nr::__NR_pivot_root,
            nr::__NR_sethostname,
            nr::__NR_fsopen,
            nr::__NR_move_mount,
            nr::__NR_userfaultfd,
            nr::__NR_iopl,
            nr::__NR_settimeofday,
            nr::__NR_acct,
            nr::__NR_syslog,
            nr::__NR_kcmp,
            // docker 25.0 dropped io_uring: its work items bypass the filter.
            nr::__NR_io_uring_setup,
            nr::__NR_io_uring_enter,
            nr::__NR_io_uring_register,
        ] {
            assert_eq!(call(n, [0; 6]), errno(EPERM), "system call {n}");
        }
    }

    #[test]
    fn unknown_numbers_and_clone3_get_enosys() {
        for n in [336, 400, 423, LAST_KNOWN + 1, 1000, 0x4000_0000, u32::MAX] {
            assert_eq!(call(n, [0; 6]), errno(ENOSYS), "system call {n}");
        }
        assert_eq!(call(nr::__NR_clone3, [0; 6]), errno(ENOSYS));
        assert_eq!(call(nr::__NR_pidfd_send_signal, [0; 6]), ALLOW);
    }

    #[test]
    fn clone_without_a_namespace_only() {
        // glibc's pthread_create and fork.
        let thread = 0x003d_0f00;
        let fork = 0x0120_0011;
        assert_eq!(call(nr::__NR_clone, [thread, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call(nr::__NR_clone, [fork, 0, 0, 0, 0, 0]), ALLOW);
        for ns in [
            0x0002_0000u64,
            0x1000_0000,
            0x2000_0000,
            0x4000_0000,
            0x0200_0000,
        ] {
            assert_eq!(
                call(nr::__NR_clone, [fork | ns, 0, 0, 0, 0, 0]),
                errno(EPERM),
                "flag {ns:#x}"
            );
        }
    }

    #[test]
    fn socket_personality_and_ioctl_by_argument() {
        assert_eq!(call(nr::__NR_socket, [2, 1, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call(nr::__NR_socket, [40, 1, 0, 0, 0, 0]), errno(EPERM));
        for p in PERSONALITIES {
            assert_eq!(call(nr::__NR_personality, [p as u64, 0, 0, 0, 0, 0]), ALLOW);
        }
        // READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE.
        for p in [0x0040_0000u64, 0x0004_0000] {
            assert_eq!(call(nr::__NR_personality, [p, 0, 0, 0, 0, 0]), errno(EPERM));
        }
        let tcgets = linux_raw_sys::ioctl::TCGETS as u64;
        assert_eq!(call(nr::__NR_ioctl, [0, tcgets, 0, 0, 0, 0]), ALLOW);
        assert_eq!(
            call(nr::__NR_ioctl, [0, TIOCSTI as u64, 0, 0, 0, 0]),
            errno(EPERM)
        );
        // The kernel reads the command as 32 bits: high bits do not hide it.
        assert_eq!(
            call(nr::__NR_ioctl, [0, (1 << 32) | TIOCSTI as u64, 0, 0, 0, 0]),
            errno(EPERM)
        );
    }

    /// With `no_subvolumes`, the btrfs ioctls that make subvolumes and
    /// snapshots fail too, other ioctls (btrfs's included) do not; without
    /// it they pass.
    #[test]
    fn subvolume_makers_are_refused_only_when_asked() {
        let plain = default_filter_of(capabilities::DEFAULT, false);
        let strict = default_filter_of(capabilities::DEFAULT, true);
        let ioctl = |f: &Filter, cmd: u32| {
            eval(
                f,
                AUDIT_ARCH_X86_64,
                nr::__NR_ioctl,
                [3, cmd as u64, 0, 0, 0, 0],
            )
        };
        for cmd in SUBVOLUME_MAKERS {
            assert_eq!(ioctl(&strict, cmd), errno(EPERM), "{cmd:#x}");
            assert_eq!(ioctl(&plain, cmd), ALLOW, "{cmd:#x}");
        }
        for cmd in [
            linux_raw_sys::ioctl::TCGETS,
            linux_raw_sys::ioctl::BTRFS_IOC_SUBVOL_GETFLAGS,
            linux_raw_sys::ioctl::BTRFS_IOC_SNAP_DESTROY_V2,
        ] {
            assert_eq!(ioctl(&strict, cmd), ALLOW, "{cmd:#x}");
        }
        assert_eq!(ioctl(&strict, TIOCSTI), errno(EPERM));
        assert!(strict.instructions().len() < 130);
    }

    #[test]
    fn other_abis_are_killed() {
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        let f = default_filter(capabilities::DEFAULT);
        assert_eq!(
            eval(&f, AUDIT_ARCH_I386, 1, [0; 6]),
            SECCOMP_RET_KILL_PROCESS
        );
    }

    #[test]
    fn every_number_gets_its_tables_answer() {
        for caps in [capabilities::DEFAULT, capabilities::ALL, 0] {
            let table = actions(caps, false);
            let f = default_filter(caps);
            for n in 0..=LAST_KNOWN + 64 {
                let want = match table.get(n as usize).copied() {
                    None => errno(ENOSYS),
                    Some(Action::Allow) => SECCOMP_RET_ALLOW,
                    Some(Action::Errno(e)) => errno(e),
                    Some(Action::Ret(r)) => r,
                    // Decided by an argument: tested on their own.
                    Some(Action::Check(_) | Action::Rules(_)) => continue,
                };
                assert_eq!(eval(&f, AUDIT_ARCH_X86_64, n, [0; 6]), want, "{n}");
            }
        }
    }

    #[test]
    fn the_search_stays_short() {
        let f = default_filter(capabilities::DEFAULT);
        assert!(f.instructions().len() < 100, "{}", f.instructions().len());
        // Every capability's filter builds (no jump over 255 instructions).
        for cap in 0..capabilities::NAMES.len() {
            let caps = capabilities::DEFAULT | 1 << cap;
            assert!(default_filter(caps).instructions().len() < 120);
        }
    }
}
