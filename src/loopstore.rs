//! A store on a btrfs image file: attach the file to a loop device
//! (`LOOP_CTL_GET_FREE` + `LOOP_CONFIGURE`, with autoclear) and mount it on the
//! store root with `mount(2)`; detach is `umount2`, after which the kernel frees
//! the loop device by itself. The file is formatted by `mkfs.btrfs` beforehand:
//! tupper does not write filesystems.

use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, UnmountFlags};

use crate::error::{Context, Error, Result};

/// Mounts the btrfs image `file` on `root` (created if missing) through a loop
/// device; returns the loop device's path.
pub fn attach(file: &Path, root: &Path) -> Result<String> {
    let backing = rustix::fs::open(file, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .context(|| format!("open store image {}", file.display()))?;
    let mut magic = [0u8; 8];
    // The btrfs superblock is at 64 KiB; its magic "_BHRfS_M" at offset 0x40 in it.
    let n = rustix::io::pread(&backing, &mut magic, 0x10000 + 0x40)
        .context(|| format!("read store image {}", file.display()))?;
    if n != magic.len() || &magic != b"_BHRfS_M" {
        return Err(Error::msg(format!(
            "store image {} is not a btrfs filesystem",
            file.display()
        ))
        .with_advice(format!("format it first: mkfs.btrfs {}", file.display())));
    }
    std::fs::create_dir_all(root).context(|| format!("create store root {}", root.display()))?;
    let root_fd = crate::fsutil::open_dir(rustix::fs::CWD, root)
        .context(|| format!("open store root {}", root.display()))?;
    if tupper_ioctl::is_btrfs(root_fd.as_fd()).unwrap_or(false) {
        return Err(Error::msg(format!(
            "attach {} on {}: a btrfs filesystem is already mounted there",
            file.display(),
            root.display()
        )));
    }
    drop(root_fd);
    let dev = tupper_ioctl::loop_attach(backing.as_fd(), false, true)
        .context(|| format!("attach {} to a loop device", file.display()))?;
    let path = dev.path();
    rustix::mount::mount(&path, root, c"btrfs", MountFlags::empty(), None).context(|| {
        format!(
            "mount {} ({}) on {}",
            path.display(),
            file.display(),
            root.display()
        )
    })?;
    // The mount holds the device now; with autoclear it is freed at unmount.
    Ok(path.display().to_string())
}

/// Unmounts the store at `root` (its loop device then goes away by itself).
///
/// tupper's own background processes (a pool refill, the trash) may still hold
/// the store for a moment after the last command returned: a busy store is
/// retried for up to 10 s, then detached lazily (`MNT_DETACH`: gone from the
/// mount table at once, the device freed when its last user lets go).
pub fn detach(root: &Path) -> Result<()> {
    let what = || format!("unmount store {}", root.display());
    let started = std::time::Instant::now();
    loop {
        // The spare network namespaces are mounts below the store (a refill
        // may make one more meanwhile: cleaned again before each try).
        crate::netns_pool::clean(root);
        match rustix::mount::unmount(root, UnmountFlags::empty()) {
            Err(rustix::io::Errno::BUSY)
                if started.elapsed() < std::time::Duration::from_secs(10) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(rustix::io::Errno::BUSY) => {
                return rustix::mount::unmount(root, UnmountFlags::DETACH).context(what);
            }
            other => return other.context(what),
        }
    }
}
