//! Root tests against a real btrfs: a 256 MiB sparse image, `mkfs.btrfs`,
//! attached with our own `loop_attach`, mounted with `mount(2)`, all removed
//! again by the fixture's `Drop` (also when a test panics).
//!
//! `btrfs subvolume show` and `losetup -a` serve as oracles. Each fixture
//! has its own directory and image, so the tests may run in parallel.

use std::ffi::{CStr, CString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::io::Errno;
use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};
use tupper_ioctl::{
    format_uuid, is_btrfs, is_subvolume_root, loop_attach, loop_backing_file, loop_detach,
    qgroup_limit_exclusive, qgroup_usage, quota_enable_simple, set_subvol_readonly, snapshot,
    subvol_create, subvol_destroy, subvol_flags, subvol_info, LoopDevice,
};

const IMAGE_SIZE: u64 = 256 << 20;
const RDONLY: u64 = linux_raw_sys::btrfs::BTRFS_SUBVOL_RDONLY as u64;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, uniquely named directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("tupper-ioctl-{}-{n}-{tag}", std::process::id()));
        fs::create_dir(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("cannot remove {}: {e}", self.0.display());
        }
    }
}

/// A mounted btrfs on a loop device; torn down in reverse on drop.
struct Fixture {
    image: PathBuf,
    mnt: PathBuf,
    dev: Option<LoopDevice>,
    mounted: bool,
    // Last: dropped after `Drop::drop` has unmounted and detached; `None`
    // (kept on disk) if the unmount failed.
    dir: Option<TempDir>,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let dir = TempDir::new(tag);
        let mut fx = Fixture {
            image: dir.0.join("fs.img"),
            mnt: dir.0.join("mnt"),
            dev: None,
            mounted: false,
            dir: Some(dir),
        };
        sparse_file(&fx.image);
        let out = Command::new("mkfs.btrfs")
            .arg("-q")
            .arg(&fx.image)
            .output()
            .expect("run mkfs.btrfs");
        assert!(out.status.success(), "mkfs.btrfs: {out:?}");
        fs::create_dir(&fx.mnt).unwrap();

        let backing = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fx.image)
            .unwrap();
        let dev = loop_attach(backing.as_fd(), false, false).expect("loop_attach");
        let dev_path = dev.path();
        fx.dev = Some(dev);
        drop(backing); // the loop device holds its own reference

        mount(
            &dev_path,
            &fx.mnt,
            "btrfs",
            MountFlags::empty(),
            None::<&CStr>,
        )
        .unwrap_or_else(|e| panic!("mount {} on {}: {e}", dev_path.display(), fx.mnt.display()));
        fx.mounted = true;
        fx
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    fn dir(&self, name: &str) -> File {
        File::open(self.path(name)).unwrap_or_else(|e| panic!("open {name}: {e}"))
    }

    fn unmount(&mut self) {
        if !self.mounted {
            return;
        }
        for _ in 0..20 {
            match unmount(&self.mnt, UnmountFlags::empty()) {
                Ok(()) => {
                    self.mounted = false;
                    return;
                }
                Err(Errno::BUSY) => sleep(Duration::from_millis(100)),
                Err(e) => panic!("unmount {}: {e}", self.mnt.display()),
            }
        }
        unmount(&self.mnt, UnmountFlags::DETACH).expect("lazy unmount");
        self.mounted = false;
    }

    fn detach(&mut self) {
        if let Some(dev) = self.dev.take() {
            if let Err(e) = loop_detach(dev.as_fd()) {
                eprintln!("detach {}: {e}", dev.path().display());
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Never panic while unwinding: report and go on.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.unmount()));
        if result.is_err() || self.mounted {
            // Do not let `TempDir` recurse into a still-mounted filesystem.
            eprintln!("leaving {} mounted", self.mnt.display());
            std::mem::forget(self.dir.take());
            return;
        }
        self.detach();
    }
}

fn sparse_file(path: &Path) {
    let f = File::create_new(path).unwrap();
    f.set_len(IMAGE_SIZE).unwrap();
}

fn c(name: &str) -> CString {
    CString::new(name).unwrap()
}

fn errno(e: &io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw_os_error)
}

/// `btrfs subvolume show PATH` as `key -> value` pairs.
fn show(path: &Path) -> Vec<(String, String)> {
    let out = Command::new("btrfs")
        .args(["subvolume", "show"])
        .arg(path)
        .output()
        .expect("run btrfs");
    assert!(out.status.success(), "btrfs subvolume show: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn field<'a>(show: &'a [(String, String)], key: &str) -> &'a str {
    show.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key:?} in {show:?}"))
}

fn losetup_lists(backing: &Path) -> bool {
    let out = Command::new("losetup")
        .arg("-a")
        .output()
        .expect("run losetup");
    assert!(out.status.success(), "losetup -a: {out:?}");
    String::from_utf8_lossy(&out.stdout).contains(&*backing.to_string_lossy())
}

/// Waits (up to 5 s) for `losetup -a` to stop listing `backing`.
fn wait_until_unlisted(backing: &Path) -> bool {
    for _ in 0..100 {
        if !losetup_lists(backing) {
            return true;
        }
        sleep(Duration::from_millis(50));
    }
    false
}

fn write_file(path: &Path) -> io::Result<()> {
    File::create(path)?.write_all(b"hello\n")
}

#[test]
fn create_and_snapshot_agree_with_btrfs_progs() {
    let fx = Fixture::new("snap");
    let root = fx.dir("");
    assert!(is_btrfs(root.as_fd()).unwrap());
    assert!(is_subvolume_root(root.as_fd()).unwrap(), "top level");
    assert_eq!(subvol_info(root.as_fd()).unwrap().id, 5);

    subvol_create(root.as_fd(), c"base").unwrap();
    write_file(&fx.path("base/file")).unwrap();
    fs::create_dir(fx.path("base/plain")).unwrap();
    let base = fx.dir("base");
    assert!(is_subvolume_root(base.as_fd()).unwrap());
    assert!(!is_subvolume_root(fx.dir("base/plain").as_fd()).unwrap());
    let base_info = subvol_info(base.as_fd()).unwrap();
    let shown = show(&fx.path("base"));
    assert_eq!(field(&shown, "UUID"), format_uuid(&base_info.uuid));
    assert_eq!(field(&shown, "Subvolume ID"), base_info.id.to_string());
    assert_eq!(field(&shown, "Parent UUID"), "-");
    assert_eq!(field(&shown, "Flags"), "-");
    assert_eq!(base_info.name, "base");
    assert!(!base_info.readonly);
    assert_eq!(base_info.parent_uuid, [0; 16]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - base_info.otime_sec).abs() < 600,
        "otime {}",
        base_info.otime_sec
    );

    snapshot(base.as_fd(), root.as_fd(), c"snap-ro", true).unwrap();
    snapshot(base.as_fd(), root.as_fd(), c"snap-rw", false).unwrap();

    for (name, readonly) in [("snap-ro", true), ("snap-rw", false)] {
        let snap = fx.dir(name);
        assert!(is_subvolume_root(snap.as_fd()).unwrap(), "{name}");
        let info = subvol_info(snap.as_fd()).unwrap();
        assert_eq!(info.readonly, readonly, "{name}");
        assert_eq!(subvol_flags(snap.as_fd()).unwrap() & RDONLY != 0, readonly);
        assert_eq!(info.parent_uuid, base_info.uuid, "{name}");
        assert_ne!(info.uuid, base_info.uuid, "{name}");
        let shown = show(&fx.path(name));
        assert_eq!(field(&shown, "UUID"), format_uuid(&info.uuid));
        assert_eq!(field(&shown, "Parent UUID"), format_uuid(&base_info.uuid));
        assert_eq!(field(&shown, "Flags") == "readonly", readonly, "{shown:?}");
        assert_eq!(
            fs::read(fx.path(&format!("{name}/file"))).unwrap(),
            b"hello\n"
        );
    }

    let err = write_file(&fx.path("snap-ro/new")).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::ROFS), "{err}");
    let err = OpenOptions::new()
        .append(true)
        .open(fx.path("snap-ro/file"))
        .unwrap_err();
    assert_eq!(errno(&err), Some(Errno::ROFS), "{err}");
    write_file(&fx.path("snap-rw/new")).unwrap();
    assert!(!fx.path("base/new").exists(), "snapshot shares no writes");
}

#[test]
fn destroy_removes_rw_and_ro_subvolumes() {
    let fx = Fixture::new("destroy");
    let root = fx.dir("");
    subvol_create(root.as_fd(), c"rw").unwrap();
    write_file(&fx.path("rw/file")).unwrap();
    snapshot(fx.dir("rw").as_fd(), root.as_fd(), c"ro", true).unwrap();
    assert!(subvol_info(fx.dir("ro").as_fd()).unwrap().readonly);

    for name in ["ro", "rw"] {
        subvol_destroy(root.as_fd(), &c(name)).unwrap_or_else(|e| panic!("destroy {name}: {e}"));
        let err = fs::symlink_metadata(fx.path(name)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{name} still there");
        let err = subvol_destroy(root.as_fd(), &c(name)).unwrap_err();
        assert_eq!(errno(&err), Some(Errno::NOENT), "{name}: {err}");
    }
    let out = Command::new("btrfs")
        .args(["subvolume", "list"])
        .arg(&fx.mnt)
        .output()
        .unwrap();
    assert!(out.status.success());
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        !list.contains(" path rw") && !list.contains(" path ro"),
        "{list}"
    );

    // A plain directory is not a subvolume: refused, and left alone.
    fs::create_dir(fx.path("plain")).unwrap();
    assert!(subvol_destroy(root.as_fd(), c"plain").is_err());
    assert!(fx.path("plain").is_dir());
}

/// Writes `mib` MiB of zeros to `path` and syncs them (a quota is checked
/// when the data is reserved, at the latest when it is flushed).
fn write_mib(path: &Path, mib: usize) -> io::Result<()> {
    let mut f = File::create(path)?;
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        f.write_all(&chunk)?;
    }
    f.sync_all()
}

/// `btrfs qgroup show -re` (the oracle): the `Max exclusive` column of
/// `0/ID`, the subvolume at `path`.
fn max_exclusive(mnt: &Path, path: &Path) -> String {
    qgroup_column(mnt, path, 4)
}

/// Column `n` of `btrfs qgroup show -re --raw`'s row of `0/ID`, the
/// subvolume at `path` (1: referenced, 2: exclusive, 4: max exclusive).
fn qgroup_column(mnt: &Path, path: &Path, n: usize) -> String {
    let id = field(&show(path), "Subvolume ID").to_string();
    let out = Command::new("btrfs")
        .args(["qgroup", "show", "-re", "--raw"])
        .arg(mnt)
        .output()
        .expect("run btrfs qgroup show");
    assert!(out.status.success(), "btrfs qgroup show: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let row = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("0/{id}")))
        .unwrap_or_else(|| panic!("no qgroup 0/{id} in {text}"));
    // Qgroupid, Referenced, Exclusive, Max referenced, Max exclusive, Path.
    row.split_whitespace().nth(n).unwrap().to_string()
}

#[test]
fn quota_limits_what_a_snapshot_writes() {
    let fx = Fixture::new("quota");
    let root = fx.dir("");
    subvol_create(root.as_fd(), c"img").unwrap();
    write_mib(&fx.path("img/data"), 6).unwrap();
    snapshot(fx.dir("img").as_fd(), root.as_fd(), c"c", false).unwrap();
    let c = fx.dir("c");

    // Quotas are off: no limit can be set, no usage read.
    let err = qgroup_limit_exclusive(c.as_fd(), 4 << 20).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::NOTCONN), "{err}");
    let c_id = subvol_info(c.as_fd()).unwrap().id;
    assert_eq!(qgroup_usage(c.as_fd(), c_id).unwrap(), None);
    quota_enable_simple(root.as_fd()).unwrap();
    // Again: already on, no error.
    quota_enable_simple(c.as_fd()).unwrap();

    qgroup_limit_exclusive(c.as_fd(), 4 << 20).unwrap();
    assert_eq!(
        max_exclusive(&fx.mnt, &fx.path("c")),
        (4u64 << 20).to_string()
    );
    assert_eq!(max_exclusive(&fx.mnt, &fx.path("img")), "none");
    // The 6 MiB shared with the image do not count; 2 MiB more fit, 4 MiB
    // more do not.
    write_mib(&fx.path("c/small"), 2).unwrap();
    let err = write_mib(&fx.path("c/big"), 4).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::DQUOT), "{err}");
    // Its usage, as btrfs-progs reads it (after a commit).
    rustix::fs::syncfs(&c).unwrap();
    let usage = qgroup_usage(c.as_fd(), c_id).unwrap().expect("a qgroup");
    assert!(usage.exclusive >= 2 << 20, "{usage:?}");
    assert_eq!(
        usage.exclusive.to_string(),
        qgroup_column(&fx.mnt, &fx.path("c"), 2)
    );
    assert_eq!(
        usage.referenced.to_string(),
        qgroup_column(&fx.mnt, &fx.path("c"), 1)
    );
    assert_eq!(qgroup_usage(c.as_fd(), 99_999).unwrap(), None);
    // The image has no limit.
    write_mib(&fx.path("img/more"), 8).unwrap();
}

#[test]
fn existing_names_give_eexist() {
    let fx = Fixture::new("exist");
    let root = fx.dir("");
    subvol_create(root.as_fd(), c"a").unwrap();
    subvol_create(root.as_fd(), c"b").unwrap();
    write_file(&fx.path("file")).unwrap();
    let a = fx.dir("a");

    for target in ["b", "a", "file"] {
        for readonly in [true, false] {
            let err = snapshot(a.as_fd(), root.as_fd(), &c(target), readonly).unwrap_err();
            assert_eq!(errno(&err), Some(Errno::EXIST), "{target}: {err}");
        }
        let err = subvol_create(root.as_fd(), &c(target)).unwrap_err();
        assert_eq!(errno(&err), Some(Errno::EXIST), "{target}: {err}");
    }
    let err = snapshot(a.as_fd(), root.as_fd(), c"x/y", false).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn readonly_flag_round_trip() {
    let fx = Fixture::new("flags");
    let root = fx.dir("");
    subvol_create(root.as_fd(), c"vol").unwrap();
    let vol = fx.dir("vol");
    assert_eq!(subvol_flags(vol.as_fd()).unwrap() & RDONLY, 0);

    set_subvol_readonly(vol.as_fd(), true).unwrap();
    assert_ne!(subvol_flags(vol.as_fd()).unwrap() & RDONLY, 0);
    assert!(subvol_info(vol.as_fd()).unwrap().readonly);
    assert_eq!(field(&show(&fx.path("vol")), "Flags"), "readonly");
    let err = write_file(&fx.path("vol/f")).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::ROFS), "{err}");
    set_subvol_readonly(vol.as_fd(), true).unwrap(); // no change, no error

    set_subvol_readonly(vol.as_fd(), false).unwrap();
    assert_eq!(subvol_flags(vol.as_fd()).unwrap() & RDONLY, 0);
    assert_eq!(field(&show(&fx.path("vol")), "Flags"), "-");
    write_file(&fx.path("vol/f")).unwrap();

    // Not a subvolume root.
    fs::create_dir(fx.path("vol/sub")).unwrap();
    let err = subvol_flags(fx.dir("vol/sub").as_fd()).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::INVAL), "{err}");
}

#[test]
fn is_btrfs_only_on_btrfs() {
    let fx = Fixture::new("magic");
    assert!(is_btrfs(fx.dir("").as_fd()).unwrap());
    fs::create_dir(fx.path("d")).unwrap();
    assert!(is_btrfs(fx.dir("d").as_fd()).unwrap());
    let proc = File::open("/proc").unwrap();
    assert!(!is_btrfs(proc.as_fd()).unwrap());
    assert!(!is_subvolume_root(proc.as_fd()).unwrap());
    let err = subvol_info(proc.as_fd()).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::NOTTY), "{err}");
}

#[test]
fn loop_device_detaches() {
    let mut fx = Fixture::new("loop");
    let image = fx.image.clone();
    let dev = fx.dev.as_ref().unwrap();
    assert_eq!(loop_backing_file(dev.as_fd()).unwrap(), image);
    assert!(dev.path().starts_with("/dev"));
    assert_eq!(
        dev.path(),
        PathBuf::from(format!("/dev/loop{}", dev.index()))
    );
    assert!(losetup_lists(&image));

    fx.unmount();
    let dev = fx.dev.as_ref().unwrap();
    loop_detach(dev.as_fd()).unwrap();
    let err = loop_backing_file(dev.as_fd()).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::NXIO), "{err}");
    let err = loop_detach(dev.as_fd()).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::NXIO), "{err}");
    fx.dev = None;
    assert!(
        wait_until_unlisted(&image),
        "{} still attached",
        image.display()
    );
    drop(fx);
}

#[test]
fn fixture_drop_detaches_and_cleans_up() {
    let fx = Fixture::new("drop");
    let image = fx.image.clone();
    let mnt = fx.mnt.clone();
    let dir = fx.dir.as_ref().unwrap().0.clone();
    assert!(losetup_lists(&image));
    drop(fx);
    assert!(
        wait_until_unlisted(&image),
        "{} still attached",
        image.display()
    );
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(&*mnt.to_string_lossy()), "{mounts}");
    assert!(!dir.exists());
}

#[test]
fn read_only_autoclear_with_a_long_path() {
    // Longer than `lo_file_name` (64 bytes): the path must come from sysfs.
    let dir = TempDir::new(&"long".repeat(20));
    let image = dir.0.join("backing.img");
    sparse_file(&image);
    assert!(image.as_os_str().len() > 64);
    let backing = File::open(&image).unwrap(); // read-only
    let dev = loop_attach(backing.as_fd(), true, true).unwrap();
    drop(backing);

    let sys = PathBuf::from(format!("/sys/block/loop{}", dev.index()));
    assert_eq!(fs::read_to_string(sys.join("ro")).unwrap().trim(), "1");
    assert_eq!(
        fs::read_to_string(sys.join("loop/autoclear"))
            .unwrap()
            .trim(),
        "1"
    );
    assert_eq!(loop_backing_file(dev.as_fd()).unwrap(), image);
    // The kernel lets the device be opened for writing but refuses writes.
    let mut w = OpenOptions::new().write(true).open(dev.path()).unwrap();
    let err = w.write_all(&[1; 512]).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::PERM), "{err}");
    drop(w);
    assert!(losetup_lists(&image));

    // Autoclear: closing the last user detaches, with no LOOP_CLR_FD.
    drop(dev);
    assert!(
        wait_until_unlisted(&image),
        "{} still attached",
        image.display()
    );
}

#[test]
fn two_attachers_get_two_devices() {
    let dir = TempDir::new("pair");
    let images: Vec<PathBuf> = (0..4).map(|i| dir.0.join(format!("img{i}"))).collect();
    let handles: Vec<_> = images
        .iter()
        .cloned()
        .map(|image| {
            std::thread::spawn(move || {
                sparse_file(&image);
                let backing = File::open(&image).unwrap();
                loop_attach(backing.as_fd(), true, true).unwrap()
            })
        })
        .collect();
    let devs: Vec<LoopDevice> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut indexes: Vec<u32> = devs.iter().map(LoopDevice::index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), devs.len(), "{indexes:?}");
    for (dev, image) in devs.iter().zip(&images) {
        assert_eq!(&loop_backing_file(dev.as_fd()).unwrap(), image);
    }
    drop(devs);
    for image in &images {
        assert!(
            wait_until_unlisted(image),
            "{} still attached",
            image.display()
        );
    }
}
