//! Loop devices: attach a file to a free `/dev/loopN`, ask what it is
//! attached to, detach it.
//!
//! # Safety
//!
//! `LOOP_CONFIGURE` and `LOOP_GET_STATUS64` pass a pointer to a
//! `linux-raw-sys` struct (`loop_config`, `loop_info64`) that lives on this
//! module's stack inside a rustix `Setter`/`Getter` for the whole call; their
//! sizes are asserted at compile time. `LOOP_CTL_GET_FREE` and `LOOP_CLR_FD`
//! pass no pointer at all. (The loop ioctls predate `_IOW`, so their opcodes
//! encode no size to cross-check.)
//!
//! # References
//!  - [Linux `loop(4)`]
//!  - [Linux `include/uapi/linux/loop.h`]
//!
//! [Linux `loop(4)`]: https://man7.org/linux/man-pages/man4/loop.4.html
//! [Linux `include/uapi/linux/loop.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/linux/loop.h

use std::ffi::{c_void, OsString};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use linux_raw_sys::loop_device::{
    loop_config, loop_info64, LO_FLAGS_AUTOCLEAR, LO_FLAGS_READ_ONLY, LO_NAME_SIZE,
};
use rustix::fs::{fstat, major, minor, open, Mode, OFlags, CWD};
use rustix::io::Errno;
use rustix::ioctl::{ioctl, Getter, Ioctl, IoctlOutput, NoArg, Opcode, Setter};

/// `LOOP_CONFIGURE` (Linux 5.8): bind a backing fd and set the status.
const LOOP_CONFIGURE: Opcode = linux_raw_sys::loop_device::LOOP_CONFIGURE as Opcode;
/// `LOOP_CLR_FD`: unbind the backing file.
const LOOP_CLR_FD: Opcode = linux_raw_sys::loop_device::LOOP_CLR_FD as Opcode;
/// `LOOP_GET_STATUS64`: read the device's `loop_info64`.
const LOOP_GET_STATUS64: Opcode = linux_raw_sys::loop_device::LOOP_GET_STATUS64 as Opcode;
/// `LOOP_CTL_GET_FREE`: index of a free device (allocating one if needed).
const LOOP_CTL_GET_FREE: Opcode = linux_raw_sys::loop_device::LOOP_CTL_GET_FREE as Opcode;

// The kernel's struct sizes (include/uapi/linux/loop.h).
const _: () = assert!(size_of::<loop_info64>() == 232);
const _: () = assert!(size_of::<loop_config>() == 304);
const _: () = assert!(LO_NAME_SIZE == 64);

/// How many free devices [`loop_attach`] tries when others win the race.
const ATTACH_ATTEMPTS: usize = 8;

/// `LOOP_CTL_GET_FREE` returns its answer as the `ioctl`'s return value,
/// which none of rustix's patterns expose; this one does.
struct CtlGetFree;

// SAFETY: LOOP_CTL_GET_FREE takes no argument (we pass a null pointer and
// the kernel reads none) and writes no user memory (`IS_MUTATING = false`);
// its result is the non-negative return value, converted below.
unsafe impl Ioctl for CtlGetFree {
    type Output = u32;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        LOOP_CTL_GET_FREE
    }

    fn as_ptr(&mut self) -> *mut c_void {
        std::ptr::null_mut()
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<u32> {
        u32::try_from(out).map_err(|_| Errno::RANGE)
    }
}

/// A loop device this process opened and bound to a backing file.
///
/// Dropping it closes the device's file descriptor but does not detach the
/// device, unless it was attached with `autoclear`: then the kernel detaches
/// it when its last user goes (this fd, and any mount of it).
#[derive(Debug)]
pub struct LoopDevice {
    fd: OwnedFd,
    index: u32,
}

impl LoopDevice {
    /// The device number `N` of `/dev/loopN`.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The device's path, `/dev/loopN`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/dev/loop{}", self.index))
    }

    /// The open (read-write, close-on-exec) device.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsFd for LoopDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `LOOP_CTL_GET_FREE` + `LOOP_CONFIGURE`—Attach `backing` to a free loop
/// device.
///
/// Opens `/dev/loop-control`, asks for a free index, opens `/dev/loopN`
/// read-write and close-on-exec, and binds `backing` to it in one
/// `LOOP_CONFIGURE` call (Linux 5.8), with `LO_FLAGS_READ_ONLY` if
/// `read_only` and `LO_FLAGS_AUTOCLEAR` if `autoclear`. When another process
/// takes the same device first (`EBUSY`), or it vanishes before we open it,
/// tries the next free device, a few times. Needs `CAP_SYS_ADMIN`.
///
/// The backing file's path (as `/proc/self/fd` names it, truncated to 63
/// bytes) goes into `lo_file_name`, as `losetup` does.
///
/// # References
///  - [Linux `loop(4)`]
///
/// [Linux `loop(4)`]: https://man7.org/linux/man-pages/man4/loop.4.html
pub fn loop_attach(
    backing: BorrowedFd<'_>,
    read_only: bool,
    autoclear: bool,
) -> io::Result<LoopDevice> {
    let control = open(
        "/dev/loop-control",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let config = loop_config_for(backing, read_only, autoclear);

    let mut last_err = Errno::BUSY;
    for _ in 0..ATTACH_ATTEMPTS {
        // SAFETY: LOOP_CTL_GET_FREE on the `/dev/loop-control` fd we own;
        // no buffer is passed (see `CtlGetFree`).
        let index = unsafe { ioctl(&control, CtlGetFree) }?;
        let fd = match open(
            format!("/dev/loop{index}"),
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // Removed (LOOP_CTL_REMOVE) between our two calls: try another.
            Err(e @ (Errno::NOENT | Errno::NXIO | Errno::NODEV)) => {
                last_err = e;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // SAFETY: LOOP_CONFIGURE takes a pointer to `loop_config` (304 bytes,
        // asserted above). The `Setter` owns this fully initialised copy on
        // our stack for the whole call; the kernel only reads it.
        // `config.fd` is `backing`, which the borrow keeps open until we
        // return (the kernel takes its own reference to the file).
        match unsafe { ioctl(&fd, Setter::<LOOP_CONFIGURE, loop_config>::new(config)) } {
            Ok(()) => return Ok(LoopDevice { fd, index }),
            // Another attacher bound this device first.
            Err(Errno::BUSY) => last_err = Errno::BUSY,
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_err.into())
}

/// The `loop_config` for [`loop_attach`]: every byte set.
fn loop_config_for(backing: BorrowedFd<'_>, read_only: bool, autoclear: bool) -> loop_config {
    let mut lo_flags = 0;
    if read_only {
        lo_flags |= LO_FLAGS_READ_ONLY as u32;
    }
    if autoclear {
        lo_flags |= LO_FLAGS_AUTOCLEAR as u32;
    }
    let mut lo_file_name = [0u8; LO_NAME_SIZE as usize];
    // Best effort, for tools that read `lo_file_name`; the kernel's own record
    // (sysfs `loop/backing_file`) does not depend on it.
    let link = format!("/proc/self/fd/{}", backing.as_raw_fd());
    if let Ok(path) = rustix::fs::readlinkat(CWD, link, Vec::new()) {
        let path = path.as_bytes();
        let n = path.len().min(lo_file_name.len() - 1);
        lo_file_name[..n].copy_from_slice(&path[..n]);
    }
    loop_config {
        // A valid fd is never negative.
        fd: backing.as_raw_fd() as u32,
        block_size: 0,
        info: loop_info64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags,
            lo_file_name,
            lo_crypt_name: [0; LO_NAME_SIZE as usize],
            lo_encrypt_key: [0; 32],
            lo_init: [0; 2],
        },
        __reserved: [0; 8],
    }
}

/// `LOOP_CLR_FD`—Detach the loop device `dev` from its backing file.
///
/// If the device is still in use elsewhere (mounted, or open in another
/// process), the kernel instead marks it autoclear and detaches it when the
/// last user closes it. Fails with `ENXIO` if nothing is attached.
///
/// # References
///  - [Linux `loop(4)`]
///
/// [Linux `loop(4)`]: https://man7.org/linux/man-pages/man4/loop.4.html
pub fn loop_detach(dev: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: LOOP_CLR_FD takes no argument; `NoArg` passes a null pointer
    // and the kernel reads and writes no user memory.
    unsafe { ioctl(dev, NoArg::<LOOP_CLR_FD>::new()) }?;
    Ok(())
}

/// `LOOP_GET_STATUS64`—The file the loop device `dev` is attached to.
///
/// Fails with `ENXIO` if nothing is attached. The full path comes from the
/// kernel's record in sysfs (`/sys/dev/block/M:m/loop/backing_file`; it ends
/// in ` (deleted)` if the file was unlinked); without sysfs, from the
/// status's `lo_file_name`, which the attacher filled in and which holds at
/// most 63 bytes (a name that long gives `ENAMETOOLONG`).
///
/// # References
///  - [Linux `loop(4)`], [sysfs-block-loop]
///
/// [Linux `loop(4)`]: https://man7.org/linux/man-pages/man4/loop.4.html
/// [sysfs-block-loop]: https://www.kernel.org/doc/Documentation/ABI/testing/sysfs-block-loop
pub fn loop_backing_file(dev: BorrowedFd<'_>) -> io::Result<PathBuf> {
    // SAFETY: LOOP_GET_STATUS64 takes a pointer to `loop_info64` (232 bytes,
    // asserted above). The `Getter` owns a `MaybeUninit` of it on our stack;
    // on success the kernel has copied the whole (zeroed, then filled)
    // struct into it before it is read.
    let info = unsafe { ioctl(dev, Getter::<LOOP_GET_STATUS64, loop_info64>::new()) }?;

    let st = fstat(dev)?;
    let sysfs = format!(
        "/sys/dev/block/{}:{}/loop/backing_file",
        major(st.st_rdev),
        minor(st.st_rdev)
    );
    match std::fs::read(sysfs) {
        Ok(mut bytes) => {
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
            }
            Ok(PathBuf::from(OsString::from_vec(bytes)))
        }
        Err(_) => {
            let name = &info.lo_file_name;
            let len = name.iter().position(|&c| c == 0).unwrap_or(name.len());
            if len >= name.len() - 1 {
                return Err(Errno::NAMETOOLONG.into());
            }
            Ok(PathBuf::from(OsString::from_vec(name[..len].to_vec())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_the_kernel() {
        assert_eq!(size_of::<loop_info64>(), 232);
        assert_eq!(size_of::<loop_config>(), 304);
        // LOOP_CONFIGURE and friends are plain `0x4Cxx` numbers.
        assert_eq!(LOOP_CONFIGURE, 0x4C0A);
        assert_eq!(LOOP_CTL_GET_FREE, 0x4C82);
    }

    #[test]
    fn config_carries_fd_and_flags() {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let c = loop_config_for(file.as_fd(), true, false);
        assert_eq!(c.fd, file.as_raw_fd() as u32);
        assert_eq!(c.info.lo_flags, LO_FLAGS_READ_ONLY as u32);
        let c = loop_config_for(file.as_fd(), false, true);
        assert_eq!(c.info.lo_flags, LO_FLAGS_AUTOCLEAR as u32);
        let name = &c.info.lo_file_name;
        let len = name.iter().position(|&b| b == 0).unwrap();
        assert!(name[..len].ends_with(b"/status"), "{:?}", &name[..len]);
    }

    #[test]
    fn not_a_loop_device() {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(loop_detach(file.as_fd()).is_err());
        assert!(loop_backing_file(file.as_fd()).is_err());
    }
}
