//! btrfs subvolume ioctls: create, snapshot, delete, flags and info; quotas.
//!
//! A subvolume is named by a directory file descriptor (`parent`) plus a
//! single path component (`name`), exactly as the kernel's `*_V2` ioctls
//! take them; a subvolume itself is named by a file descriptor on its root
//! directory.
//!
//! # Safety
//!
//! Each `ioctl` below hands the kernel a pointer to a `linux-raw-sys` struct
//! that lives on this module's stack (inside a rustix `Setter`/`Getter`) for
//! the whole call. The struct sizes are asserted at compile time against the
//! kernel's numbers and against the size encoded in each opcode
//! (`_IOW`/`_IOR`), so the kernel never reads or writes past the buffer.
//!
//! # References
//!  - [Linux `include/uapi/linux/btrfs.h`]
//!  - [btrfs ioctl documentation]
//!
//! [Linux `include/uapi/linux/btrfs.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/linux/btrfs.h
//! [btrfs ioctl documentation]: https://btrfs.readthedocs.io/en/latest/btrfs-ioctl.html

use std::ffi::{CStr, OsString};
use std::fmt::Write as _;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStringExt;

use linux_raw_sys::btrfs::{
    btrfs_ioctl_get_subvol_info_args, btrfs_ioctl_qgroup_limit_args, btrfs_ioctl_quota_ctl_args,
    btrfs_ioctl_search_args, btrfs_ioctl_search_header, btrfs_ioctl_search_key,
    btrfs_ioctl_timespec, btrfs_ioctl_vol_args, btrfs_ioctl_vol_args_v2,
    btrfs_ioctl_vol_args_v2__bindgen_ty_1, btrfs_ioctl_vol_args_v2__bindgen_ty_2,
    btrfs_qgroup_limit, BTRFS_FIRST_FREE_OBJECTID, BTRFS_IOCTL_MAGIC, BTRFS_PATH_NAME_MAX,
    BTRFS_QGROUP_INFO_KEY, BTRFS_QGROUP_LIMIT_MAX_EXCL, BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA,
    BTRFS_QUOTA_TREE_OBJECTID, BTRFS_ROOT_SUBVOL_RDONLY, BTRFS_SUBVOL_NAME_MAX,
    BTRFS_SUBVOL_RDONLY, BTRFS_UUID_SIZE, BTRFS_VOL_NAME_MAX,
};
use linux_raw_sys::ctypes::c_char;
use linux_raw_sys::general::BTRFS_SUPER_MAGIC;
use rustix::io::Errno;
use rustix::ioctl::{ioctl, opcode, Getter, Opcode, Setter, Updater};

// ---------------------------------------------------------------------------
// Opcodes, taken from linux-raw-sys and cross-checked against the struct
// sizes they encode.

const MAGIC: u8 = BTRFS_IOCTL_MAGIC as u8;

/// `_IOW(BTRFS_IOCTL_MAGIC, 15, struct btrfs_ioctl_vol_args)`
const SNAP_DESTROY: Opcode = linux_raw_sys::ioctl::BTRFS_IOC_SNAP_DESTROY as Opcode;
/// `_IOW(BTRFS_IOCTL_MAGIC, 23, struct btrfs_ioctl_vol_args_v2)`
const SNAP_CREATE_V2: Opcode = linux_raw_sys::ioctl::BTRFS_IOC_SNAP_CREATE_V2 as Opcode;
/// `_IOW(BTRFS_IOCTL_MAGIC, 24, struct btrfs_ioctl_vol_args_v2)`
const SUBVOL_CREATE_V2: Opcode = linux_raw_sys::ioctl::BTRFS_IOC_SUBVOL_CREATE_V2 as Opcode;
/// `_IOR(BTRFS_IOCTL_MAGIC, 25, __u64)`
const SUBVOL_GETFLAGS: Opcode = linux_raw_sys::ioctl::BTRFS_IOC_SUBVOL_GETFLAGS as Opcode;
/// `_IOW(BTRFS_IOCTL_MAGIC, 26, __u64)`
const SUBVOL_SETFLAGS: Opcode = linux_raw_sys::ioctl::BTRFS_IOC_SUBVOL_SETFLAGS as Opcode;
/// `_IOR(BTRFS_IOCTL_MAGIC, 60, struct btrfs_ioctl_get_subvol_info_args)`
const GET_SUBVOL_INFO: Opcode = linux_raw_sys::ioctl::BTRFS_IOC_GET_SUBVOL_INFO as Opcode;
/// `_IOW(BTRFS_IOCTL_MAGIC, 63, struct btrfs_ioctl_vol_args_v2)`
const SNAP_DESTROY_V2: Opcode = linux_raw_sys::ioctl::BTRFS_IOC_SNAP_DESTROY_V2 as Opcode;
/// `_IOWR(BTRFS_IOCTL_MAGIC, 40, struct btrfs_ioctl_quota_ctl_args)`
const QUOTA_CTL: Opcode = linux_raw_sys::ioctl::BTRFS_IOC_QUOTA_CTL as Opcode;
/// `_IOWR(BTRFS_IOCTL_MAGIC, 17, struct btrfs_ioctl_search_args)`
const TREE_SEARCH: Opcode = linux_raw_sys::ioctl::BTRFS_IOC_TREE_SEARCH as Opcode;
/// `_IOR(BTRFS_IOCTL_MAGIC, 43, struct btrfs_ioctl_qgroup_limit_args)`: an
/// `_IOR` by an old mistake; the kernel only reads the struct.
const QGROUP_LIMIT: Opcode = linux_raw_sys::ioctl::BTRFS_IOC_QGROUP_LIMIT as Opcode;

// The kernel's struct sizes (include/uapi/linux/btrfs.h).
const _: () = assert!(size_of::<btrfs_ioctl_vol_args>() == 4096);
const _: () = assert!(size_of::<btrfs_ioctl_vol_args_v2>() == 4096);
const _: () = assert!(size_of::<btrfs_ioctl_vol_args_v2__bindgen_ty_1>() == 32);
const _: () = assert!(size_of::<btrfs_ioctl_timespec>() == 16);
const _: () = assert!(size_of::<btrfs_ioctl_get_subvol_info_args>() == 504);
const _: () = assert!(size_of::<btrfs_ioctl_quota_ctl_args>() == 16);
const _: () = assert!(size_of::<btrfs_qgroup_limit>() == 40);
const _: () = assert!(size_of::<btrfs_ioctl_qgroup_limit_args>() == 48);
const _: () = assert!(size_of::<btrfs_ioctl_search_key>() == 104);
const _: () = assert!(size_of::<btrfs_ioctl_search_header>() == 32);
const _: () = assert!(size_of::<btrfs_ioctl_search_args>() == 4096);
// The name fields hold the longest name plus its NUL.
const _: () =
    assert!(size_of::<btrfs_ioctl_vol_args_v2__bindgen_ty_2>() == V2_NAME_MAX as usize + 1);
const _: () = assert!(V2_NAME_MAX == 4039 && V1_NAME_MAX == 4087);
const _: () = assert!(BTRFS_UUID_SIZE == 16 && BTRFS_VOL_NAME_MAX == 255);
// The size each opcode encodes is the size of the struct we pass.
const _: () = assert!(SNAP_DESTROY == opcode::write::<btrfs_ioctl_vol_args>(MAGIC, 15));
const _: () = assert!(SNAP_CREATE_V2 == opcode::write::<btrfs_ioctl_vol_args_v2>(MAGIC, 23));
const _: () = assert!(SUBVOL_CREATE_V2 == opcode::write::<btrfs_ioctl_vol_args_v2>(MAGIC, 24));
const _: () = assert!(SUBVOL_GETFLAGS == opcode::read::<u64>(MAGIC, 25));
const _: () = assert!(SUBVOL_SETFLAGS == opcode::write::<u64>(MAGIC, 26));
const _: () =
    assert!(GET_SUBVOL_INFO == opcode::read::<btrfs_ioctl_get_subvol_info_args>(MAGIC, 60));
const _: () = assert!(SNAP_DESTROY_V2 == opcode::write::<btrfs_ioctl_vol_args_v2>(MAGIC, 63));
const _: () = assert!(QUOTA_CTL == opcode::read_write::<btrfs_ioctl_quota_ctl_args>(MAGIC, 40));
const _: () = assert!(QGROUP_LIMIT == opcode::read::<btrfs_ioctl_qgroup_limit_args>(MAGIC, 43));
const _: () = assert!(TREE_SEARCH == opcode::read_write::<btrfs_ioctl_search_args>(MAGIC, 17));

/// Longest name the `*_V2` ioctls take (`BTRFS_SUBVOL_NAME_MAX`, 4039 bytes).
const V2_NAME_MAX: u32 = BTRFS_SUBVOL_NAME_MAX;
/// Longest name `BTRFS_IOC_SNAP_DESTROY` takes (`BTRFS_PATH_NAME_MAX`, 4087).
const V1_NAME_MAX: u32 = BTRFS_PATH_NAME_MAX;

// ---------------------------------------------------------------------------
// Argument builders (safe: every byte of every union is initialised).

/// Checks that `name` is one path component that fits the `*_V2` name field.
///
/// Returns `EINVAL` for an empty name, a name containing `/`, or one longer
/// than `BTRFS_SUBVOL_NAME_MAX` (4039) bytes; everything else (`.`, `..`,
/// names over 255 bytes) is left to the kernel.
fn check_name(name: &CStr) -> io::Result<&[u8]> {
    let bytes = name.to_bytes();
    if bytes.is_empty() || bytes.len() > V2_NAME_MAX as usize || bytes.contains(&b'/') {
        return Err(Errno::INVAL.into());
    }
    Ok(bytes)
}

/// Copies `name` (already checked, so shorter than `N`) into a zeroed,
/// NUL-terminated `c_char` array.
fn name_array<const N: usize>(name: &[u8]) -> [c_char; N] {
    let mut out = [0 as c_char; N];
    // `check_name` keeps `name.len() <= N - 1`, so the last byte stays NUL;
    // `zip` would silently truncate otherwise, hence the assert.
    assert!(name.len() < N, "subvolume name does not fit");
    for (dst, &src) in out.iter_mut().zip(name) {
        *dst = src as c_char;
    }
    out
}

/// A `btrfs_ioctl_vol_args_v2` naming `name`, with `fd` and `flags`.
fn vol_args_v2(fd: i64, flags: u64, name: &[u8]) -> btrfs_ioctl_vol_args_v2 {
    btrfs_ioctl_vol_args_v2 {
        fd,
        transid: 0,
        flags,
        // `unused` is the largest member (32 bytes): the whole union is zero,
        // including the `qgroup_inherit` pointer we never pass.
        __bindgen_anon_1: btrfs_ioctl_vol_args_v2__bindgen_ty_1 { unused: [0; 4] },
        // `name` is the largest member (4040 bytes).
        __bindgen_anon_2: btrfs_ioctl_vol_args_v2__bindgen_ty_2 {
            name: name_array(name),
        },
    }
}

// ---------------------------------------------------------------------------
// Subvolume operations.

/// `BTRFS_IOC_SUBVOL_CREATE_V2`—Create an empty subvolume `name` in the
/// directory `parent`.
///
/// Fails with `EEXIST` if `name` exists, `EINVAL` (kind
/// [`io::ErrorKind::InvalidInput`]) if `name` is empty, contains `/` or is
/// longer than `BTRFS_SUBVOL_NAME_MAX` bytes, and `ENOTTY` if `parent` is not
/// on btrfs.
///
/// # References
///  - [Linux `include/uapi/linux/btrfs.h`], `fs/btrfs/ioctl.c`
///
/// [Linux `include/uapi/linux/btrfs.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/linux/btrfs.h
pub fn subvol_create(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let args = vol_args_v2(0, 0, check_name(name)?);
    // SAFETY: SUBVOL_CREATE_V2 is `_IOW` of `btrfs_ioctl_vol_args_v2`
    // (4096 bytes, asserted above). The `Setter` owns `args` on our stack for
    // the whole call; the kernel only reads it and needs a NUL-terminated
    // name, which `name_array` guarantees.
    unsafe { ioctl(parent, Setter::<SUBVOL_CREATE_V2, _>::new(args)) }?;
    Ok(())
}

/// `BTRFS_IOC_SNAP_CREATE_V2`—Snapshot the subvolume `source` as `name` in
/// the directory `parent`, read-only if `readonly`.
///
/// `source` must be open on the root directory of a subvolume (else
/// `EINVAL`) on the same filesystem as `parent` (else `EXDEV`). Fails with
/// `EEXIST` if `name` exists and `EINVAL` for a bad `name` (see
/// [`subvol_create`]).
///
/// # References
///  - [Linux `include/uapi/linux/btrfs.h`], `fs/btrfs/ioctl.c`
///
/// [Linux `include/uapi/linux/btrfs.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/linux/btrfs.h
pub fn snapshot(
    source: BorrowedFd<'_>,
    parent: BorrowedFd<'_>,
    name: &CStr,
    readonly: bool,
) -> io::Result<()> {
    let flags = if readonly {
        u64::from(BTRFS_SUBVOL_RDONLY)
    } else {
        0
    };
    let args = vol_args_v2(i64::from(source.as_raw_fd()), flags, check_name(name)?);
    // SAFETY: SNAP_CREATE_V2 is `_IOW` of `btrfs_ioctl_vol_args_v2` (4096
    // bytes, asserted above). The `Setter` owns `args` on our stack for the
    // whole call; the kernel only reads it. `args.fd` is `source`, which the
    // borrow keeps open until we return.
    unsafe { ioctl(parent, Setter::<SNAP_CREATE_V2, _>::new(args)) }?;
    Ok(())
}

/// `BTRFS_IOC_SNAP_DESTROY_V2`—Delete the subvolume `name` in the directory
/// `parent`, with its contents.
///
/// Works on read-only subvolumes too (with `CAP_SYS_ADMIN`). On kernels
/// older than 5.7, which answer `ENOTTY` or `EINVAL` to the `V2` call, falls
/// back to `BTRFS_IOC_SNAP_DESTROY`. Fails with `ENOENT` if `name` does not
/// exist, `EINVAL` if it is not a subvolume or is a bad name (see
/// [`subvol_create`]), and `EPERM` if it is the default subvolume.
///
/// # References
///  - [Linux `include/uapi/linux/btrfs.h`], `fs/btrfs/ioctl.c`
///
/// [Linux `include/uapi/linux/btrfs.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/linux/btrfs.h
pub fn subvol_destroy(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let name = check_name(name)?;
    let args = vol_args_v2(0, 0, name);
    // SAFETY: SNAP_DESTROY_V2 is `_IOW` of `btrfs_ioctl_vol_args_v2` (4096
    // bytes, asserted above). The `Setter` owns `args` on our stack for the
    // whole call; the kernel only reads it. `flags` is 0, so the kernel reads
    // the NUL-terminated name, not a subvolume id.
    match unsafe { ioctl(parent, Setter::<SNAP_DESTROY_V2, _>::new(args)) } {
        Ok(()) => Ok(()),
        Err(Errno::NOTTY | Errno::INVAL) => {
            let args = btrfs_ioctl_vol_args {
                fd: 0,
                name: name_array(name),
            };
            // SAFETY: SNAP_DESTROY is `_IOW` of `btrfs_ioctl_vol_args` (4096
            // bytes, asserted above). The `Setter` owns `args` on our stack
            // for the whole call; the kernel only reads the NUL-terminated
            // name (at most 4039 < 4087 bytes).
            unsafe { ioctl(parent, Setter::<SNAP_DESTROY, _>::new(args)) }?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// `BTRFS_IOC_SUBVOL_GETFLAGS`—Get the flags of the subvolume whose root
/// directory `fd` is open on.
///
/// The only flag the kernel reports is `BTRFS_SUBVOL_RDONLY`. Fails with
/// `EINVAL` if `fd` is not a subvolume root and `ENOTTY` if not on btrfs.
///
/// # References
///  - [Linux `include/uapi/linux/btrfs.h`], `fs/btrfs/ioctl.c`
///
/// [Linux `include/uapi/linux/btrfs.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/linux/btrfs.h
pub fn subvol_flags(fd: BorrowedFd<'_>) -> io::Result<u64> {
    // SAFETY: SUBVOL_GETFLAGS is `_IOR` of `__u64` (8 bytes, asserted above).
    // The `Getter` owns an 8-byte `MaybeUninit<u64>` on our stack, which the
    // kernel fills completely before it is read.
    let flags = unsafe { ioctl(fd, Getter::<SUBVOL_GETFLAGS, u64>::new()) }?;
    Ok(flags)
}

/// `BTRFS_IOC_SUBVOL_GETFLAGS` + `BTRFS_IOC_SUBVOL_SETFLAGS`—Make the
/// subvolume whose root directory `fd` is open on read-only or writable.
///
/// Does nothing when the flag is already as asked. Needs ownership of the
/// subvolume or `CAP_FOWNER`, and a writable mount.
///
/// # References
///  - [Linux `include/uapi/linux/btrfs.h`], `fs/btrfs/ioctl.c`
///
/// [Linux `include/uapi/linux/btrfs.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/linux/btrfs.h
pub fn set_subvol_readonly(fd: BorrowedFd<'_>, readonly: bool) -> io::Result<()> {
    let rdonly = u64::from(BTRFS_SUBVOL_RDONLY);
    let current = subvol_flags(fd)?;
    let wanted = if readonly {
        current | rdonly
    } else {
        current & !rdonly
    };
    if wanted == current {
        return Ok(());
    }
    // SAFETY: SUBVOL_SETFLAGS is `_IOW` of `__u64` (8 bytes, asserted above).
    // The `Setter` owns the `u64` on our stack for the whole call; the kernel
    // only reads it.
    unsafe { ioctl(fd, Setter::<SUBVOL_SETFLAGS, u64>::new(wanted)) }?;
    Ok(())
}

/// What `BTRFS_IOC_GET_SUBVOL_INFO` reports about a subvolume.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubvolInfo {
    /// The subvolume (tree) id; 5 for the top-level subvolume.
    pub id: u64,
    /// The name in the parent directory; empty for the top-level subvolume.
    pub name: OsString,
    /// The id of the subvolume that contains this one (0 for the top level).
    pub parent_id: u64,
    /// The inode number of the directory that contains this subvolume.
    pub dirid: u64,
    /// The last transaction that changed the subvolume.
    pub generation: u64,
    /// The root item flags (`BTRFS_ROOT_SUBVOL_RDONLY` = 1 and others; not
    /// the `BTRFS_SUBVOL_*` flags of [`subvol_flags`]).
    pub flags: u64,
    /// Whether the subvolume is read-only.
    pub readonly: bool,
    /// The subvolume's UUID; see [`format_uuid`].
    pub uuid: [u8; 16],
    /// The UUID of the subvolume this is a snapshot of; all zero if none.
    pub parent_uuid: [u8; 16],
    /// The UUID this subvolume was received as (`btrfs receive`); all zero if
    /// none.
    pub received_uuid: [u8; 16],
    /// The transaction of the last change.
    pub ctransid: u64,
    /// The transaction that created the subvolume.
    pub otransid: u64,
    /// The time of the last change, seconds since the epoch.
    pub ctime_sec: i64,
    /// The nanoseconds of [`ctime_sec`](Self::ctime_sec).
    pub ctime_nsec: u32,
    /// The creation time, seconds since the epoch.
    pub otime_sec: i64,
    /// The nanoseconds of [`otime_sec`](Self::otime_sec).
    pub otime_nsec: u32,
}

/// `BTRFS_IOC_GET_SUBVOL_INFO`—Describe the subvolume that `fd` is in.
///
/// `fd` may be open on any file of the subvolume; no privilege is needed.
/// Needs Linux 4.18. Fails with `ENOTTY` if `fd` is not on btrfs.
///
/// # References
///  - [Linux `include/uapi/linux/btrfs.h`], `fs/btrfs/ioctl.c`
///
/// [Linux `include/uapi/linux/btrfs.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/linux/btrfs.h
pub fn subvol_info(fd: BorrowedFd<'_>) -> io::Result<SubvolInfo> {
    // SAFETY: GET_SUBVOL_INFO is `_IOR` of `btrfs_ioctl_get_subvol_info_args`
    // (504 bytes, asserted above). The `Getter` owns a `MaybeUninit` of that
    // struct on our stack; on success the kernel has copied the whole struct
    // (zero-filled, padding included) into it before it is read.
    let a = unsafe {
        ioctl(
            fd,
            Getter::<GET_SUBVOL_INFO, btrfs_ioctl_get_subvol_info_args>::new(),
        )
    }?;
    let name_len = a.name.iter().position(|&c| c == 0).unwrap_or(a.name.len());
    let name = a.name[..name_len].iter().map(|&c| c as u8).collect();
    Ok(SubvolInfo {
        id: a.treeid,
        name: OsString::from_vec(name),
        parent_id: a.parent_id,
        dirid: a.dirid,
        generation: a.generation,
        flags: a.flags,
        // Root item flags: read-only is bit 0 here, not `BTRFS_SUBVOL_RDONLY`.
        readonly: a.flags & u64::from(BTRFS_ROOT_SUBVOL_RDONLY) != 0,
        uuid: a.uuid,
        parent_uuid: a.parent_uuid,
        received_uuid: a.received_uuid,
        ctransid: a.ctransid,
        otransid: a.otransid,
        ctime_sec: a.ctime.sec as i64,
        ctime_nsec: a.ctime.nsec,
        otime_sec: a.otime.sec as i64,
        otime_nsec: a.otime.nsec,
    })
}

// ---------------------------------------------------------------------------
// Quotas.

/// `BTRFS_IOC_QUOTA_CTL` with `BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA`—Enable
/// simple quotas on the filesystem `fd` is on.
///
/// Simple quotas (Linux 6.7) charge each extent to the subvolume that
/// wrote it, with no backref walking: snapshots cost what they cost
/// without quotas (full qgroups triple a snapshot's time). Every existing
/// subvolume gets its level-0 qgroup; data written before counts nowhere.
/// It sets the filesystem's `SIMPLE_QUOTA` incompat flag (kernels before
/// 6.7 then refuse to mount it; disabling quotas clears it). Succeeds when
/// quotas are on already; fails with `EINVAL` on kernels without simple
/// quotas and `EPERM` without `CAP_SYS_ADMIN`.
///
/// # References
///  - [Linux `include/uapi/linux/btrfs.h`], `fs/btrfs/ioctl.c`, `fs/btrfs/qgroup.c`
///  - [btrfs qgroups](https://btrfs.readthedocs.io/en/latest/Qgroups.html)
///
/// [Linux `include/uapi/linux/btrfs.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/linux/btrfs.h
pub fn quota_enable_simple(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut args = btrfs_ioctl_quota_ctl_args {
        cmd: u64::from(BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA),
        status: 0,
    };
    // SAFETY: QUOTA_CTL is `_IOWR` of `btrfs_ioctl_quota_ctl_args` (16
    // bytes, asserted above). The `Updater` borrows `args`, fully
    // initialised on our stack, for the whole call; the kernel reads it and
    // may write the same 16 bytes back.
    unsafe { ioctl(fd, Updater::<QUOTA_CTL, _>::new(&mut args)) }?;
    Ok(())
}

/// `BTRFS_IOC_QGROUP_LIMIT`—Limit the exclusive bytes of the subvolume
/// `fd` is in (its level-0 qgroup, `0/ID`) to `bytes`.
///
/// Exclusive bytes are those no other subvolume shares: with simple quotas
/// exactly what the subvolume wrote itself, so a snapshot's limit leaves
/// out the data it shares with its source. A write past the limit fails
/// with `EDQUOT`. Fails with `ENOTCONN` when quotas are off (see
/// [`quota_enable_simple`]) and `EPERM` without `CAP_SYS_ADMIN`.
///
/// # References
///  - [Linux `include/uapi/linux/btrfs.h`], `fs/btrfs/ioctl.c` (`btrfs_ioctl_qgroup_limit`)
///
/// [Linux `include/uapi/linux/btrfs.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/linux/btrfs.h
pub fn qgroup_limit_exclusive(fd: BorrowedFd<'_>, bytes: u64) -> io::Result<()> {
    let args = btrfs_ioctl_qgroup_limit_args {
        // 0: the qgroup of the subvolume `fd` is in.
        qgroupid: 0,
        lim: btrfs_qgroup_limit {
            flags: u64::from(BTRFS_QGROUP_LIMIT_MAX_EXCL),
            max_rfer: 0,
            max_excl: bytes,
            rsv_rfer: 0,
            rsv_excl: 0,
        },
    };
    // SAFETY: QGROUP_LIMIT encodes `btrfs_ioctl_qgroup_limit_args` (48
    // bytes, asserted above). The `Setter` owns `args`, fully initialised,
    // on our stack for the whole call; the kernel only reads it (the `_IOR`
    // direction is a historical mistake of the opcode).
    unsafe { ioctl(fd, Setter::<QGROUP_LIMIT, _>::new(args)) }?;
    Ok(())
}

/// What a level-0 qgroup counts (see [`qgroup_usage`]), bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QgroupUsage {
    /// Referenced: all the data the subvolume refers to.
    pub referenced: u64,
    /// Exclusive: what it shares with no other subvolume (with simple
    /// quotas: what it wrote itself).
    pub exclusive: u64,
}

/// `BTRFS_IOC_TREE_SEARCH` of the quota tree—What the qgroup of subvolume
/// `subvol_id` (`0/ID`) counts, as `btrfs qgroup show` reads it: its
/// `BTRFS_QGROUP_INFO_KEY` item. `None` when quotas are off or it has no
/// qgroup. `fd` is any file on the filesystem; needs `CAP_SYS_ADMIN`.
///
/// # References
///  - [Linux `include/uapi/linux/btrfs.h`], `include/uapi/linux/btrfs_tree.h`
///    (`struct btrfs_qgroup_info_item`, little-endian)
///
/// [Linux `include/uapi/linux/btrfs.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/linux/btrfs.h
pub fn qgroup_usage(fd: BorrowedFd<'_>, subvol_id: u64) -> io::Result<Option<QgroupUsage>> {
    let mut args = btrfs_ioctl_search_args {
        key: btrfs_ioctl_search_key {
            tree_id: u64::from(BTRFS_QUOTA_TREE_OBJECTID),
            min_objectid: 0,
            max_objectid: 0,
            min_offset: subvol_id,
            max_offset: subvol_id,
            min_transid: 0,
            max_transid: u64::MAX,
            min_type: BTRFS_QGROUP_INFO_KEY,
            max_type: BTRFS_QGROUP_INFO_KEY,
            nr_items: 1,
            unused: 0,
            unused1: 0,
            unused2: 0,
            unused3: 0,
            unused4: 0,
        },
        buf: [0; 3992],
    };
    // SAFETY: TREE_SEARCH is `_IOWR` of `btrfs_ioctl_search_args` (4096
    // bytes, asserted above). The `Updater` borrows `args`, fully
    // initialised on our stack, for the whole call; the kernel reads the
    // key and writes the key's count and at most `buf`'s 3992 bytes back.
    match unsafe { ioctl(fd, Updater::<TREE_SEARCH, _>::new(&mut args)) } {
        Ok(()) => {}
        // No quota tree: quotas are off.
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    if args.key.nr_items == 0 {
        return Ok(None);
    }
    let buf: Vec<u8> = args.buf.iter().map(|&c| c as u8).collect();
    let header = size_of::<btrfs_ioctl_search_header>();
    let u64_at = |at: usize| -> Option<u64> {
        buf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    // The header's objectid, offset, type and length (native endian: the
    // kernel's ioctl struct), then the item (little-endian: the disk's).
    let (offset, kind, len) = (
        u64::from_ne_bytes(buf[16..24].try_into().expect("8 bytes")),
        u32::from_ne_bytes(buf[24..28].try_into().expect("4 bytes")),
        u32::from_ne_bytes(buf[28..32].try_into().expect("4 bytes")) as usize,
    );
    if offset != subvol_id || kind != BTRFS_QGROUP_INFO_KEY || len < 40 {
        return Ok(None);
    }
    // generation, rfer, rfer_cmpr, excl, excl_cmpr.
    match (u64_at(header + 8), u64_at(header + 24)) {
        (Some(referenced), Some(exclusive)) => Ok(Some(QgroupUsage {
            referenced,
            exclusive,
        })),
        _ => Ok(None),
    }
}

/// Formats a btrfs UUID the usual way, `8-4-4-4-12` lowercase hex digits, as
/// `btrfs subvolume show` prints it.
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `fstatfs(fd)`—Whether `fd` is on a btrfs filesystem (`f_type ==
/// BTRFS_SUPER_MAGIC`).
///
/// # References
///  - [Linux `statfs(2)`]
///
/// [Linux `statfs(2)`]: https://man7.org/linux/man-pages/man2/statfs.2.html
pub fn is_btrfs(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let st = rustix::fs::fstatfs(fd)?;
    // Filesystem magics are 32-bit; `f_type` is a (signed) word.
    Ok(st.f_type as u32 == BTRFS_SUPER_MAGIC)
}

/// `fstat(fd)` + `fstatfs(fd)`—Whether `fd` is open on the root directory of
/// a btrfs subvolume.
///
/// On btrfs every subvolume's root directory has inode number 256
/// (`BTRFS_FIRST_FREE_OBJECTID`) and no other file does; so this is
/// `st_ino == 256` on a filesystem that [`is_btrfs`]. (The empty
/// placeholder a snapshot leaves where a nested subvolume was has inode 2
/// and is not a subvolume root.)
///
/// # References
///  - [btrfs subvolumes], [Linux `fs/btrfs/ioctl.c`] (`btrfs_ioctl_snap_destroy`)
///
/// [btrfs subvolumes]: https://btrfs.readthedocs.io/en/latest/Subvolumes.html
/// [Linux `fs/btrfs/ioctl.c`]: https://github.com/torvalds/linux/blob/master/fs/btrfs/ioctl.c
pub fn is_subvolume_root(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let st = rustix::fs::fstat(fd)?;
    if st.st_ino != u64::from(BTRFS_FIRST_FREE_OBJECTID) {
        return Ok(false);
    }
    is_btrfs(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    fn cstring(bytes: Vec<u8>) -> CString {
        CString::new(bytes).unwrap()
    }

    #[test]
    fn struct_sizes_match_the_kernel() {
        assert_eq!(size_of::<btrfs_ioctl_vol_args_v2>(), 4096);
        assert_eq!(size_of::<btrfs_ioctl_vol_args>(), 4096);
        assert_eq!(size_of::<btrfs_ioctl_get_subvol_info_args>(), 504);
        assert_eq!(size_of::<btrfs_ioctl_quota_ctl_args>(), 16);
        assert_eq!(size_of::<btrfs_ioctl_qgroup_limit_args>(), 48);
        // The opcodes encode those sizes (bits 16..30 on x86_64).
        assert_eq!((SNAP_CREATE_V2 >> 16) & 0x3fff, 4096);
        assert_eq!((GET_SUBVOL_INFO >> 16) & 0x3fff, 504);
    }

    #[test]
    fn longest_name_fits_and_is_nul_terminated() {
        let name = vec![b'a'; V2_NAME_MAX as usize];
        let args = vol_args_v2(7, 2, check_name(&cstring(name)).unwrap());
        // SAFETY: `vol_args_v2` initialised the `name` member of this union
        // (4040 `c_char`s), which is the member we read back.
        let stored = unsafe { args.__bindgen_anon_2.name };
        assert!(stored[..V2_NAME_MAX as usize]
            .iter()
            .all(|&c| c == b'a' as c_char));
        assert_eq!(stored[V2_NAME_MAX as usize], 0);
        assert_eq!((args.fd, args.flags, args.transid), (7, 2, 0));
    }

    #[test]
    fn name_too_long_is_einval() {
        let name = cstring(vec![b'a'; V2_NAME_MAX as usize + 1]);
        let err = check_name(&name).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.raw_os_error(), Some(Errno::INVAL.raw_os_error()));
    }

    #[test]
    fn name_with_slash_or_empty_is_einval() {
        for bad in [&b"a/b"[..], b"/", b"x/", b""] {
            let err = check_name(&cstring(bad.to_vec())).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert_eq!(check_name(c"ok.name-1").unwrap(), b"ok.name-1");
    }

    #[test]
    fn bad_names_fail_before_any_ioctl() {
        // /proc is not btrfs: a name that passed the check would give ENOTTY.
        let proc = std::fs::File::open("/proc").unwrap();
        use std::os::fd::AsFd;
        let err = subvol_create(proc.as_fd(), c"a/b").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = subvol_destroy(proc.as_fd(), c"").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = snapshot(proc.as_fd(), proc.as_fd(), c"x/y", true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn uuid_format() {
        let uuid = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ];
        assert_eq!(format_uuid(&uuid), "01234567-89ab-cdef-fedc-ba9876543210");
    }

    #[test]
    fn proc_is_not_btrfs() {
        let proc = std::fs::File::open("/proc").unwrap();
        use std::os::fd::AsFd;
        assert!(!is_btrfs(proc.as_fd()).unwrap());
        assert!(!is_subvolume_root(proc.as_fd()).unwrap());
    }
}
