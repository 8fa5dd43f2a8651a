//! Tests of the import: archives built in memory (raw headers for the malicious
//! ones), extracted as root into a fresh directory under /tmp, checked with lstat.

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::fs::{FileType, Mode, OFlags, XattrFlags, CWD};
use tar::{EntryType, Header};

use super::*;

/// A v2 `security.capability` value granting `cap_net_raw` (bit 13), permitted.
const CAPABILITY: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// A fresh directory under /tmp with `root/` (the image) and `canary/` (a
/// sibling that must stay untouched); removed on drop, also when a test fails.
struct Scratch {
    base: PathBuf,
    root: PathBuf,
    canary: PathBuf,
    mounted: bool,
}

impl Scratch {
    fn new() -> Scratch {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let base = PathBuf::from(format!(
            "/tmp/tupper-extract-{}-{}-{nanos}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        let root = base.join("root");
        let canary = base.join("canary");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&canary).unwrap();
        fs::write(canary.join("file"), b"original").unwrap();
        Scratch {
            base,
            root,
            canary,
            mounted: false,
        }
    }

    /// Mounts a small tmpfs on `root` (for ENOSPC).
    fn mount_small_tmpfs(&mut self) {
        rustix::mount::mount(
            "tupper-test",
            &self.root,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            c"size=1m",
        )
        .unwrap();
        self.mounted = true;
    }

    fn root_fd(&self) -> OwnedFd {
        rustix::fs::openat(
            CWD,
            &self.root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn extract(&self, archive: &[u8]) -> Result<Stats> {
        extract_archive(archive, self.root_fd().as_fd(), &mut |_| {})
    }

    /// Extracts with the data thread, or without (as when it cannot start).
    fn extract_with(&self, archive: &[u8], data_thread: bool) -> Result<Stats> {
        extract_with(archive, self.root_fd().as_fd(), &mut |_| {}, data_thread)
    }

    /// The canary sibling is exactly as created.
    fn assert_canary(&self) {
        let names: Vec<_> = fs::read_dir(&self.canary)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file"], "something appeared next to the image");
        assert_eq!(fs::read(self.canary.join("file")).unwrap(), b"original");
        assert!(!self.base.join("pwned").exists());
        let base: Vec<_> = fs::read_dir(&self.base)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(base.len(), 2, "base holds only root and canary: {base:?}");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(&self.root, rustix::mount::UnmountFlags::DETACH);
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// One PAX extended header body.
fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let body = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// An archive under construction.
struct Archive(tar::Builder<Vec<u8>>);

impl Archive {
    fn new() -> Archive {
        Archive(tar::Builder::new(Vec::new()))
    }

    /// A raw ustar header: the name and link name are stored as given (even `..`).
    #[allow(clippy::too_many_arguments)]
    fn raw(
        &mut self,
        kind: EntryType,
        name: &str,
        link: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        data: &[u8],
    ) -> &mut Archive {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        h.set_size(data.len() as u64);
        if matches!(kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Archive {
        let body = pax(records);
        self.raw(
            EntryType::XHeader,
            "PaxHeaders/x",
            "",
            0o644,
            0,
            0,
            0,
            &body,
        )
    }

    fn dir(&mut self, name: &str, mode: u32, mtime: u64) -> &mut Archive {
        self.raw(EntryType::Directory, name, "", mode, 0, 0, mtime, b"")
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Archive {
        self.raw(
            EntryType::Regular,
            name,
            "",
            0o644,
            0,
            0,
            1_500_000_000,
            data,
        )
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Archive {
        self.raw(
            EntryType::Symlink,
            name,
            target,
            0o777,
            0,
            0,
            1_500_000_000,
            b"",
        )
    }

    fn hard_link(&mut self, name: &str, target: &str) -> &mut Archive {
        self.raw(
            EntryType::Link,
            name,
            target,
            0o644,
            0,
            0,
            1_500_000_000,
            b"",
        )
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// An archive with one of everything that must be kept.
fn rich_archive() -> Vec<u8> {
    let mut a = Archive::new();
    a.dir("./", 0o755, 1_111_111_111)
        .dir("bin/", 0o755, 1_000_000_000)
        .pax(&[
            ("SCHILY.xattr.user.test", b"hello"),
            ("SCHILY.xattr.security.capability", &CAPABILITY),
            ("mtime", b"1234567890.5"),
        ])
        .raw(
            EntryType::Regular,
            "bin/busybox",
            "",
            0o4755,
            1000,
            2000,
            1_600_000_000,
            b"#!/bin/true\nbusybox data\n",
        )
        .hard_link("bin/hard", "bin/busybox")
        .raw(
            EntryType::Symlink,
            "bin/sh",
            "busybox",
            0o777,
            3,
            4,
            1_400_000_000,
            b"",
        )
        .pax(&[("SCHILY.xattr.trusted.node", b"fifo")])
        .raw(
            EntryType::Fifo,
            "run/fifo",
            "",
            0o620,
            5,
            6,
            1_300_000_000,
            b"",
        )
        .raw(
            EntryType::Char,
            "dev/null",
            "",
            0o666,
            0,
            0,
            1_300_000_000,
            b"",
        )
        .dir("tmp/", 0o1777, 1_200_000_000)
        .raw(
            EntryType::Directory,
            "srv/",
            "",
            0o2750,
            7,
            8,
            1_100_000_000,
            b"",
        )
        .file("srv/child", b"x");
    // A long name: a GNU 'L' record written by the tar crate.
    let long = format!("deep/{}/file", "n".repeat(150));
    let mut h = Header::new_gnu();
    h.set_mode(0o600);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_500_000_000);
    h.set_size(4);
    h.set_entry_type(EntryType::Regular);
    a.0.append_data(&mut h, &long, &b"long"[..]).unwrap();
    a.bytes()
}

/// Asserts what [`rich_archive`] must produce.
fn assert_rich(s: &Scratch, stats: &Stats) {
    let busybox = fs::symlink_metadata(s.path("bin/busybox")).unwrap();
    assert_eq!(busybox.mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!((busybox.uid(), busybox.gid()), (1000, 2000));
    assert_eq!(busybox.mtime(), 1_234_567_890, "PAX mtime wins");
    assert_eq!(busybox.mtime_nsec(), 500_000_000);
    assert_eq!(
        fs::read(s.path("bin/busybox")).unwrap(),
        b"#!/bin/true\nbusybox data\n"
    );
    let mut value = [0u8; 64];
    let n = rustix::fs::lgetxattr(s.path("bin/busybox"), "user.test", &mut value[..]).unwrap();
    assert_eq!(&value[..n], b"hello");
    let n = rustix::fs::lgetxattr(s.path("bin/busybox"), "security.capability", &mut value[..])
        .unwrap();
    assert_eq!(&value[..n], &CAPABILITY);

    let hard = fs::symlink_metadata(s.path("bin/hard")).unwrap();
    assert_eq!(hard.ino(), busybox.ino(), "hard link shares the inode");
    assert_eq!(busybox.nlink(), 2);

    let sh = fs::symlink_metadata(s.path("bin/sh")).unwrap();
    assert!(sh.file_type().is_symlink());
    assert_eq!(
        fs::read_link(s.path("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!((sh.uid(), sh.gid(), sh.mtime()), (3, 4, 1_400_000_000));

    let fifo = fs::symlink_metadata(s.path("run/fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o620);
    assert_eq!(
        (fifo.uid(), fifo.gid(), fifo.mtime()),
        (5, 6, 1_300_000_000)
    );
    let n = rustix::fs::getxattr(s.path("run/fifo"), "trusted.node", &mut value[..]).unwrap();
    assert_eq!(&value[..n], b"fifo");
    let run = fs::symlink_metadata(s.path("run")).unwrap();
    assert_eq!(run.mode() & 0o7777, 0o755, "missing parents are made 0755");

    let null = fs::symlink_metadata(s.path("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);

    let tmp = fs::symlink_metadata(s.path("tmp")).unwrap();
    assert_eq!(tmp.mode() & 0o7777, 0o1777, "sticky kept");
    assert_eq!(tmp.mtime(), 1_200_000_000);
    let srv = fs::symlink_metadata(s.path("srv")).unwrap();
    assert_eq!(srv.mode() & 0o7777, 0o2750, "setgid dir kept");
    assert_eq!((srv.uid(), srv.gid()), (7, 8));
    assert_eq!(
        srv.mtime(),
        1_100_000_000,
        "directory mtime kept although a child was added"
    );
    let bin = fs::symlink_metadata(s.path("bin")).unwrap();
    assert_eq!(bin.mtime(), 1_000_000_000);
    let root = fs::symlink_metadata(&s.root).unwrap();
    assert_eq!(
        root.mtime(),
        1_111_111_111,
        "the root entry's metadata applies"
    );

    let long = format!("deep/{}/file", "n".repeat(150));
    assert_eq!(fs::read(s.path(&long)).unwrap(), b"long");

    // ./ bin/ busybox hard sh fifo null tmp/ srv/ child long
    assert_eq!(stats.entries, 11);
    assert_eq!(stats.bytes, 25 + 1 + 4);
    s.assert_canary();
}

#[test]
fn plain_archive_keeps_everything() {
    let s = Scratch::new();
    let stats = s.extract(&rich_archive()).unwrap();
    assert_rich(&s, &stats);
}

#[test]
fn gzip_archive_keeps_everything() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&rich_archive()).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(detect(&gz), Compression::Gzip);
    let s = Scratch::new();
    let stats = s.extract(&gz).unwrap();
    assert_rich(&s, &stats);
}

#[test]
fn zstd_archive_keeps_everything() {
    let zst = zstd::encode_all(&rich_archive()[..], 3).unwrap();
    assert_eq!(detect(&zst), Compression::Zstd);
    let s = Scratch::new();
    let stats = s.extract(&zst).unwrap();
    assert_rich(&s, &stats);
}

#[test]
fn detect_by_magic() {
    assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
    assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
    assert_eq!(detect(b"bin/"), Compression::None);
    assert_eq!(detect(&[0x28, 0xb5]), Compression::None);
    assert_eq!(detect(b""), Compression::None);
}

#[test]
fn progress_reports_input_consumed() {
    let mut a = Archive::new();
    a.file("big", &vec![7u8; 3 << 20]);
    let bytes = a.bytes();
    let s = Scratch::new();
    let mut calls = Vec::new();
    let stats = extract_archive(&bytes[..], s.root_fd().as_fd(), &mut |p| calls.push(p)).unwrap();
    assert_eq!(
        stats,
        Stats {
            entries: 1,
            bytes: 3 << 20
        }
    );
    assert!(calls.len() >= 3, "about one call per MiB: {calls:?}");
    assert!(calls.len() < 20, "not too many calls: {}", calls.len());
    assert!(calls
        .windows(2)
        .all(|w| w[0].input_bytes <= w[1].input_bytes));
    let last = calls.last().unwrap();
    assert_eq!(last.input_bytes, bytes.len() as u64);
    assert_eq!(last.entries, 1);
}

#[test]
fn dotdot_is_refused() {
    let mut a = Archive::new();
    a.file("../x", b"evil");
    let s = Scratch::new();
    let e = s.extract(&a.bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"import: entry "../x" escapes the image (".." is not allowed)"#
    );
    s.assert_canary();

    let mut a = Archive::new();
    a.file("ok", b"x").file("a/../../canary/file", b"evil");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"entry "a/../../canary/file" escapes the image"#),
        "{e}"
    );
    s.assert_canary();
}

#[test]
fn absolute_paths_land_inside() {
    let s = Scratch::new();
    let abs = s.canary.join("file");
    let mut a = Archive::new();
    a.file(abs.to_str().unwrap(), b"evil")
        .file("/abs-top", b"top");
    s.extract(&a.bytes()).unwrap();
    let inside = s.root.join(abs.strip_prefix("/").unwrap());
    assert_eq!(fs::read(inside).unwrap(), b"evil");
    assert_eq!(fs::read(s.path("abs-top")).unwrap(), b"top");
    s.assert_canary();
}

#[test]
fn no_write_through_symlinks() {
    let s = Scratch::new();
    let canary = s.canary.to_str().unwrap().to_string();
    for target in [canary.as_str(), "../canary", "../../../../../../../../.."] {
        let mut a = Archive::new();
        a.symlink("link", target).file("link/pwned", b"evil");
        let e = s.extract(&a.bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"import: entry "link/pwned": parent "link" is a symlink (paths are never resolved through symlinks)"#
        );
        s.assert_canary();
    }
    // Deeper: a symlinked directory in the middle of the path.
    let mut a = Archive::new();
    a.dir("d/", 0o755, 0)
        .symlink("d/up", "../..")
        .file("d/up/pwned", b"evil");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert!(
        e.to_string().contains(r#"parent "d/up" is a symlink"#),
        "{e}"
    );
    s.assert_canary();
}

#[test]
fn file_replaces_symlink_instead_of_following_it() {
    let s = Scratch::new();
    let target = s.canary.join("file");
    let mut a = Archive::new();
    a.symlink("passwd", target.to_str().unwrap())
        .file("passwd", b"replaced");
    s.extract(&a.bytes()).unwrap();
    let meta = fs::symlink_metadata(s.path("passwd")).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(fs::read(s.path("passwd")).unwrap(), b"replaced");
    s.assert_canary();
}

#[test]
fn hard_links_stay_inside() {
    let s = Scratch::new();
    let mut a = Archive::new();
    a.hard_link("passwd", "/etc/passwd");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"import: entry "passwd": hard link target "/etc/passwd" is not in the image (it must be an earlier entry of the archive)"#
    );
    assert!(!s.path("passwd").exists());

    let mut a = Archive::new();
    a.hard_link("x", "../canary/file");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"import: entry "x": hard link target "../canary/file" escapes the image (".." is not allowed)"#
    );

    let canary = s.canary.to_str().unwrap().to_string();
    let mut a = Archive::new();
    a.symlink("c", &canary).hard_link("y", "c/file");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"entry "y": hard link target "c/file" is reached through a symlink"#),
        "{e}"
    );
    let canary_meta = fs::metadata(s.canary.join("file")).unwrap();
    assert_eq!(canary_meta.nlink(), 1, "the canary got no new link");

    let mut a = Archive::new();
    a.dir("d/", 0o755, 0).hard_link("dlink", "d");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"import: entry "dlink": hard link target "d" is a directory"#
    );

    // An absolute target that is in the image is fine (GNU tar's reading).
    let mut a = Archive::new();
    a.file("etc/passwd", b"root:x:0:0")
        .hard_link("passwd2", "/etc/passwd");
    s.extract(&a.bytes()).unwrap();
    assert_eq!(
        fs::metadata(s.path("passwd2")).unwrap().ino(),
        fs::metadata(s.path("etc/passwd")).unwrap().ino()
    );
    s.assert_canary();
}

#[test]
fn last_entry_wins_but_full_directories_stay() {
    let s = Scratch::new();
    let mut a = Archive::new();
    a.file("f", b"first")
        .file("f", b"second")
        .dir("d/", 0o700, 100)
        .file("d/x", b"x")
        .dir("d/", 0o750, 200)
        .dir("empty/", 0o755, 0)
        .file("empty", b"now a file")
        .symlink("s", "somewhere")
        .dir("s/", 0o755, 0);
    let stats = s.extract(&a.bytes()).unwrap();
    assert_eq!(fs::read(s.path("f")).unwrap(), b"second");
    let d = fs::symlink_metadata(s.path("d")).unwrap();
    assert_eq!(
        d.mode() & 0o7777,
        0o750,
        "directory over directory updates metadata"
    );
    assert_eq!(d.mtime(), 200);
    assert_eq!(
        fs::read(s.path("d/x")).unwrap(),
        b"x",
        "and keeps its children"
    );
    assert_eq!(fs::read(s.path("empty")).unwrap(), b"now a file");
    assert!(fs::symlink_metadata(s.path("s")).unwrap().is_dir());
    assert_eq!(stats.entries, 9);

    let mut a = Archive::new();
    a.file("d", b"over a full directory");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"import: entry "d": cannot replace a non-empty directory with a file"#
    );
    assert_eq!(fs::read(s.path("d/x")).unwrap(), b"x");
    s.assert_canary();
}

#[test]
fn old_style_directory_with_trailing_slash() {
    let s = Scratch::new();
    let mut a = Archive::new();
    a.raw(EntryType::Regular, "v7dir/", "", 0o710, 0, 0, 42, b"")
        .file("v7dir/f", b"x");
    s.extract(&a.bytes()).unwrap();
    let d = fs::symlink_metadata(s.path("v7dir")).unwrap();
    assert!(d.is_dir());
    assert_eq!((d.mode() & 0o7777, d.mtime()), (0o710, 42));
}

#[test]
fn parent_that_is_a_file_is_an_error() {
    let s = Scratch::new();
    let mut a = Archive::new();
    a.file("f", b"x").file("f/g", b"y");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"import: entry "f/g": parent "f" is not a directory"#
    );
}

#[test]
fn corrupt_input_is_a_read_error() {
    let mut a = Archive::new();
    a.file("first", b"one").file("second", &vec![1u8; 5000]);
    let good = a.bytes();
    let s = Scratch::new();

    // Truncated in the middle of the second file's data.
    let e = s.extract(&good[..512 * 3 + 1000]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(r#"read archive: entry "second": unexpected end of archive"#),
        "{e}"
    );

    // Truncated in the middle of a header.
    let e = s.extract(&good[..512 * 2 + 100]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(r#"read archive after entry "first""#),
        "{e}"
    );

    // A corrupt checksum in the second header.
    let mut bad = good.clone();
    bad[1024] ^= 0x55;
    let e = s.extract(&bad).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"read archive after entry "first": archive header checksum mismatch"#
    );

    // Garbage.
    let e = s.extract(b"this is not a tar archive at all").unwrap_err();
    assert!(e.to_string().starts_with("read archive"), "{e}");

    // Truncated gzip and zstd.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&good).unwrap();
    let gz = gz.finish().unwrap();
    let e = s.extract(&gz[..gz.len() / 2]).unwrap_err();
    assert!(e.to_string().starts_with("read archive"), "{e}");
    let mut bad_gz = gz.clone();
    bad_gz[20] ^= 0xff;
    let e = s.extract(&bad_gz).unwrap_err();
    assert!(e.to_string().starts_with("read archive"), "{e}");
    let zst = zstd::encode_all(&good[..], 3).unwrap();
    let e = s.extract(&zst[..zst.len() - 10]).unwrap_err();
    assert!(e.to_string().starts_with("read archive"), "{e}");

    // Unsupported compression.
    let e = s.extract(b"\xfd7zXZ\0rest").unwrap_err();
    assert!(
        e.to_string()
            .contains("xz and bzip2 archives are not supported"),
        "{e}"
    );
    s.assert_canary();
}

#[test]
fn empty_input_is_an_error() {
    let s = Scratch::new();
    let e = s.extract(b"").unwrap_err();
    assert_eq!(e.to_string(), "import: empty archive (0 bytes)");
    let e = s.extract(&[0u8; 1024]).unwrap_err();
    assert_eq!(e.to_string(), "import: empty archive (no entries)");
}

#[test]
fn unsupported_entry_types_are_named() {
    let s = Scratch::new();
    let mut h = Header::new_gnu();
    h.set_path("holes").unwrap();
    h.set_entry_type(EntryType::GNUSparse);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.as_gnu_mut().unwrap().set_real_size(0);
    h.set_mode(0o644);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b""[..]).unwrap();
    let e = s.extract(&b.into_inner().unwrap()).unwrap_err();
    assert!(e.to_string().contains(r#""holes""#), "{e}");
    assert!(e.to_string().contains("sparse"), "{e}");

    let mut a = Archive::new();
    a.raw(EntryType::new(b'Z'), "odd", "", 0o644, 0, 0, 0, b"");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(r#"import: entry "odd": unsupported entry type"#),
        "{e}"
    );
}

#[test]
fn pax_global_header_is_skipped() {
    let s = Scratch::new();
    let mut a = Archive::new();
    let body = pax(&[("comment", b"made by a test")]);
    a.raw(
        EntryType::XGlobalHeader,
        "pax_global_header",
        "",
        0o644,
        0,
        0,
        0,
        &body,
    )
    .file("after", b"ok");
    let stats = s.extract(&a.bytes()).unwrap();
    assert_eq!(stats.entries, 1);
    assert_eq!(fs::read(s.path("after")).unwrap(), b"ok");
    assert!(!s.path("pax_global_header").exists());
}

#[test]
fn enospc_names_the_entry() {
    let mut s = Scratch::new();
    s.mount_small_tmpfs();
    let mut a = Archive::new();
    a.dir("bin/", 0o755, 0)
        .file("bin/busybox", &vec![0x55u8; 4 << 20]);
    let started = std::time::Instant::now();
    let e = s.extract(&a.bytes()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("write bin/busybox: No space left on device (os error 28)"),
        "{e}"
    );
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
    assert!(started.elapsed().as_secs() < 10, "returned promptly");
    s.assert_canary();
}

/// A file bigger than a data-thread buffer goes in several parts: it arrives
/// whole and in order, with its owner, mode and mtime (applied after its last
/// part), and so does the small file after it.
#[test]
fn a_file_of_several_parts_is_written_whole_and_in_order() {
    let big: Vec<u8> = (0..fill::CHUNK * 2 + 1000)
        .map(|i| (i % 251) as u8 ^ (i / fill::CHUNK) as u8)
        .collect();
    let mut a = Archive::new();
    a.raw(EntryType::Regular, "big", "", 0o4751, 7, 8, 1_234_567, &big)
        .file("small", b"after");
    let archive = a.bytes();
    for data_thread in [true, false] {
        let s = Scratch::new();
        let stats = s.extract_with(&archive, data_thread).unwrap();
        assert_eq!(stats.entries, 2);
        assert_eq!(stats.bytes, big.len() as u64 + 5);
        assert!(fs::read(s.path("big")).unwrap() == big, "big differs");
        let m = fs::symlink_metadata(s.path("big")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4751, "mode {:o}", m.mode());
        assert_eq!((m.uid(), m.gid(), m.mtime()), (7, 8, 1_234_567));
        assert_eq!(fs::read(s.path("small")).unwrap(), b"after");
        s.assert_canary();
    }
}

/// An archive that ends in a later part of a big file counts what was read
/// of that file across its parts.
#[test]
fn a_truncated_big_file_counts_the_bytes_of_all_its_parts() {
    let size = fill::CHUNK * 2 + 1000;
    let mut a = Archive::new();
    a.file("big", &vec![3u8; size]);
    let good = a.bytes();
    for data_thread in [true, false] {
        let s = Scratch::new();
        let e = s
            .extract_with(&good[..512 + fill::CHUNK + 5000], data_thread)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                r#"read archive: entry "big": unexpected end of archive ({} of {size} bytes)"#,
                fill::CHUNK + 5000
            )
        );
        s.assert_canary();
    }
}

/// When the data thread fails (no space left for the first file), the error
/// names that file, not a later entry, and the import stops soon after: the
/// calling thread is at most a few buffers ahead of it.
#[test]
fn a_failed_write_stops_the_import_and_names_its_file() {
    let mut a = Archive::new();
    a.dir("bin/", 0o755, 0)
        .file("bin/busybox", &vec![0x55u8; 4 << 20]);
    for i in 0..500 {
        a.file(&format!("bin/f{i}"), b"x");
    }
    let archive = a.bytes();
    for data_thread in [true, false] {
        let mut s = Scratch::new();
        s.mount_small_tmpfs();
        let e = s.extract_with(&archive, data_thread).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("write bin/busybox: No space left on device (os error 28)"),
            "{e}"
        );
        let made = fs::read_dir(s.path("bin")).unwrap().count();
        assert!(made < 100, "{made} entries in bin/: the import went on");
        s.assert_canary();
    }
}

/// Without the data thread (it could not be started), an archive with one
/// of everything is kept whole as with it.
#[test]
fn without_the_data_thread_everything_is_kept_too() {
    let s = Scratch::new();
    let stats = s.extract_with(&rich_archive(), false).unwrap();
    assert_rich(&s, &stats);
    s.assert_canary();
}

/// Builds a small tree on disk with everything `copy_tree` must keep.
fn make_tree(src: &Path) {
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::create_dir_all(src.join("srv/sub")).unwrap();
    let busybox = src.join("bin/busybox");
    fs::write(&busybox, b"busybox data").unwrap();
    std::os::unix::fs::chown(&busybox, Some(1000), Some(2000)).unwrap();
    fs::set_permissions(&busybox, fs::Permissions::from_mode(0o4755)).unwrap();
    rustix::fs::setxattr(&busybox, "user.test", b"hello", XattrFlags::empty()).unwrap();
    rustix::fs::setxattr(
        &busybox,
        "security.capability",
        &CAPABILITY,
        XattrFlags::empty(),
    )
    .unwrap();
    fs::hard_link(&busybox, src.join("bin/hard")).unwrap();
    std::os::unix::fs::symlink("busybox", src.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink("/etc", src.join("etc-link")).unwrap();
    rustix::fs::mknodat(
        CWD,
        src.join("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    rustix::fs::mknodat(
        CWD,
        src.join("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    rustix::fs::chmodat(
        CWD,
        src.join("null"),
        Mode::from_raw_mode(0o666),
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    // user.* is not allowed on special files; trusted.* is (as root).
    rustix::fs::setxattr(
        src.join("fifo"),
        "trusted.node",
        b"fifo",
        XattrFlags::empty(),
    )
    .unwrap();
    fs::write(src.join("srv/sub/data"), vec![3u8; 100_000]).unwrap();
    fs::set_permissions(src.join("srv"), fs::Permissions::from_mode(0o2750)).unwrap();
    let old = rustix::fs::Timestamps {
        last_access: rustix::time::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
        last_modification: rustix::time::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
    };
    for dir in ["srv/sub", "srv", "bin"] {
        rustix::fs::utimensat(CWD, src.join(dir), &old, rustix::fs::AtFlags::empty()).unwrap();
    }
    let link_time = rustix::fs::Timestamps {
        last_access: rustix::time::Timespec {
            tv_sec: 1_400_000_000,
            tv_nsec: 0,
        },
        last_modification: rustix::time::Timespec {
            tv_sec: 1_400_000_000,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        CWD,
        src.join("bin/sh"),
        &link_time,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

#[test]
fn copy_tree_keeps_everything() {
    let s = Scratch::new();
    let src = s.base.join("src");
    make_tree(&src);
    let src_meta = |rel: &str| fs::symlink_metadata(src.join(rel)).unwrap();
    let before_srv = src_meta("srv");
    let mut calls = 0;
    let stats = copy_tree(&src, s.root_fd().as_fd(), &mut |_| calls += 1).unwrap();
    assert!(calls >= 1);

    let busybox = fs::symlink_metadata(s.path("bin/busybox")).unwrap();
    assert_eq!(busybox.mode() & 0o7777, 0o4755);
    assert_eq!((busybox.uid(), busybox.gid()), (1000, 2000));
    assert_eq!(busybox.mtime(), src_meta("bin/busybox").mtime());
    assert_eq!(fs::read(s.path("bin/busybox")).unwrap(), b"busybox data");
    let mut value = [0u8; 64];
    let n = rustix::fs::lgetxattr(s.path("bin/busybox"), "user.test", &mut value[..]).unwrap();
    assert_eq!(&value[..n], b"hello");
    let n = rustix::fs::lgetxattr(s.path("bin/busybox"), "security.capability", &mut value[..])
        .unwrap();
    assert_eq!(&value[..n], &CAPABILITY);
    assert_eq!(
        fs::symlink_metadata(s.path("bin/hard")).unwrap().ino(),
        busybox.ino()
    );

    assert_eq!(
        fs::read_link(s.path("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::symlink_metadata(s.path("bin/sh")).unwrap().mtime(),
        1_400_000_000
    );
    assert_eq!(
        fs::read_link(s.path("etc-link")).unwrap(),
        Path::new("/etc")
    );

    let fifo = fs::symlink_metadata(s.path("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o640);
    let n = rustix::fs::getxattr(s.path("fifo"), "trusted.node", &mut value[..]).unwrap();
    assert_eq!(&value[..n], b"fifo");
    let null = fs::symlink_metadata(s.path("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);

    assert_eq!(
        fs::read(s.path("srv/sub/data")).unwrap(),
        vec![3u8; 100_000]
    );
    let srv = fs::symlink_metadata(s.path("srv")).unwrap();
    assert_eq!(srv.mode() & 0o7777, 0o2750);
    assert_eq!(srv.mtime(), before_srv.mtime());
    assert_eq!(
        srv.mtime(),
        1_000_000_000,
        "directory mtime set after its children"
    );
    assert_eq!(
        fs::symlink_metadata(s.path("srv/sub")).unwrap().mtime(),
        1_000_000_000
    );
    assert_eq!(
        fs::symlink_metadata(s.path("bin")).unwrap().mtime(),
        1_000_000_000
    );

    // root, bin, busybox, hard, sh, etc-link, fifo, null, srv, sub, data
    assert_eq!(stats.entries, 11);
    assert_eq!(stats.bytes, 12 + 100_000);
    // The source is unchanged.
    assert_eq!(src_meta("srv").mtime(), before_srv.mtime());
}

#[test]
fn copy_tree_of_a_missing_source_names_it() {
    let s = Scratch::new();
    let missing = s.base.join("no-such-dir");
    let e = copy_tree(&missing, s.root_fd().as_fd(), &mut |_| {}).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("open source directory {}", missing.display())),
        "{e}"
    );
}

#[test]
fn pax_sparse_files_are_refused() {
    let s = Scratch::new();
    // GNU tar's default `--sparse` (format 1.0): the header names
    // GNUSparseFile.N/sp, the real name is a PAX record, and the data starts
    // with the sparse map ("1 block at 20971520, 2 bytes").
    let mut map = b"1\n20971520\n2\n".to_vec();
    map.resize(512, 0);
    map.extend_from_slice(b"x\n");
    let mut a = Archive::new();
    a.pax(&[
        ("GNU.sparse.major", b"1"),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.name", b"sp"),
        ("GNU.sparse.realsize", b"20971522"),
    ])
    .file("GNUSparseFile.0/sp", &map);
    let e = s.extract(&a.bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"import: entry "sp": GNU sparse files are not supported (PAX record GNU.sparse.major; re-create the archive without --sparse)"#
    );
    assert!(!s.path("GNUSparseFile.0").exists());

    // Formats 0.0 and 0.1: the map is in PAX records, the data is the
    // non-hole parts only (2 bytes of a 20 MiB file).
    for records in [
        &[
            ("GNU.sparse.size", &b"20971522"[..]),
            ("GNU.sparse.numblocks", b"1"),
            ("GNU.sparse.offset", b"20971520"),
            ("GNU.sparse.numbytes", b"2"),
        ][..],
        &[
            ("GNU.sparse.size", &b"20971522"[..]),
            ("GNU.sparse.numblocks", b"1"),
            ("GNU.sparse.map", b"20971520,2"),
        ],
    ] {
        let mut a = Archive::new();
        a.pax(records).file("sp", b"x\n");
        let e = s.extract(&a.bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"import: entry "sp": GNU sparse files are not supported (PAX record GNU.sparse.size; re-create the archive without --sparse)"#
        );
        assert!(!s.path("sp").exists());
    }
    s.assert_canary();
}

#[test]
fn pax_values_may_hold_newlines() {
    // `setcap cap_dac_override,cap_fowner+ep`: the permitted mask is 0x0a.
    let mut cap = CAPABILITY;
    cap[4..8].copy_from_slice(&[0x0a, 0, 0, 0]);
    let long = format!("dir/{}\nend", "x".repeat(120));
    let mut a = Archive::new();
    a.pax(&[
        ("SCHILY.xattr.security.capability", &cap),
        ("path", long.as_bytes()),
        ("uid", b"4000000"),
        ("mtime", b"1234567890.25"),
        // Writers put sizes the header cannot hold in PAX and 0 in the header.
        ("size", b"5"),
    ]);
    let mut h = Header::new_ustar();
    h.set_path("dir/short").unwrap();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h.set_cksum();
    a.0.append(&h, &b""[..]).unwrap();
    let mut data = b"hello".to_vec();
    data.resize(512, 0);
    a.0.get_mut().extend_from_slice(&data);
    a.pax(&[("linkpath", b"tar\nget")])
        .symlink("lnk", "short")
        .file("after", b"in sync");

    let s = Scratch::new();
    let stats = s.extract(&a.bytes()).unwrap();
    let path = s.path(&long);
    assert_eq!(fs::read(&path).unwrap(), b"hello");
    let meta = fs::symlink_metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (4_000_000, 0o755));
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (1_234_567_890, 250_000_000)
    );
    let mut value = [0u8; 64];
    let n = rustix::fs::lgetxattr(&path, "security.capability", &mut value[..]).unwrap();
    assert_eq!(&value[..n], &cap);
    assert!(!s.path("dir/short").exists());
    assert_eq!(fs::read_link(s.path("lnk")).unwrap(), Path::new("tar\nget"));
    assert_eq!(fs::read(s.path("after")).unwrap(), b"in sync");
    assert_eq!(stats.entries, 3);
    s.assert_canary();
}

#[test]
fn gnu_negative_mtime_is_before_1970() {
    let archive = |mtime: [u8; 12]| {
        let mut h = Header::new_gnu();
        h.set_path("old").unwrap();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        h.as_old_mut().mtime = mtime;
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b""[..]).unwrap();
        b.into_inner().unwrap()
    };
    // GNU base-256: 0xff then the two's complement (1960-01-01).
    let mut field = [0xffu8; 12];
    field[4..].copy_from_slice(&(-315_619_200i64).to_be_bytes());
    let s = Scratch::new();
    s.extract(&archive(field)).unwrap();
    assert_eq!(
        fs::symlink_metadata(s.path("old")).unwrap().mtime(),
        -315_619_200
    );
    // Beyond an i64.
    field[1] = 0x7f;
    let e = s.extract(&archive(field)).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"read archive: entry "old": mtime is out of range"#
    );
}

#[test]
fn messages_stay_one_line() {
    let mut a = Archive::new();
    a.file("first", b"one").file("second", b"two");
    let mut bad = a.bytes();
    // Raw header bytes end up in the tar crate's message about the field.
    bad[1024 + 148..1024 + 156].copy_from_slice(b"\n\x1b[31m\n\0");
    let s = Scratch::new();
    let e = s.extract(&bad).unwrap_err().to_string();
    assert!(
        e.starts_with(r#"read archive after entry "first": "#),
        "{e}"
    );
    assert!(!e.contains(['\n', '\x1b']), "{e:?}");

    let mut a = Archive::new();
    a.raw(EntryType::new(b'M'), "odd", "", 0o644, 0, 0, 0, b"");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"import: entry "odd": unsupported entry type 'M'"#
    );
}

#[test]
fn copy_tree_skips_the_image_it_fills() {
    // `tupper import NAME /` or `NAME $STORE_ROOT`: the image being filled is
    // inside the source; it must not be copied into itself.
    let s = Scratch::new();
    let stats = copy_tree(&s.base, s.root_fd().as_fd(), &mut |_| {}).unwrap();
    assert_eq!(fs::read(s.path("canary/file")).unwrap(), b"original");
    assert!(!s.path("root").exists());
    // base (the root), canary, file
    assert_eq!(stats.entries, 3);
}

#[test]
fn a_replaced_directory_is_not_used_as_a_parent() {
    // The writer keeps the fd of the last directory; an entry replacing that
    // directory must not leave it there for the next lookups.
    let s = Scratch::new();
    let mut a = Archive::new();
    a.dir("x/", 0o755, 0).file("x", b"file").file("x/y", b"y");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"import: entry "x/y": parent "x" is not a directory"#
    );

    let s = Scratch::new();
    let mut a = Archive::new();
    a.dir("x/", 0o755, 0)
        .symlink("x", s.canary.to_str().unwrap())
        .dir("x/sub/", 0o755, 0);
    let e = s.extract(&a.bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"import: entry "x/sub": parent "x" is a symlink (paths are never resolved through symlinks)"#
    );
    s.assert_canary();

    let s = Scratch::new();
    let mut a = Archive::new();
    a.file("t", b"t")
        .dir("x/", 0o755, 0)
        .file("x", b"file")
        .hard_link("x/h", "t");
    let e = s.extract(&a.bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"import: entry "x/h": parent "x" is not a directory"#
    );

    // A directory over a directory keeps working through the cache.
    let s = Scratch::new();
    let mut a = Archive::new();
    a.dir("d/", 0o700, 0).dir("d/", 0o755, 0).file("d/f", b"f");
    s.extract(&a.bytes()).unwrap();
    assert_eq!(fs::read(s.path("d/f")).unwrap(), b"f");
}

#[test]
fn unsupported_xattrs_are_skipped() {
    let s = Scratch::new();
    let mut a = Archive::new();
    a.pax(&[
        ("SCHILY.xattr.bogus.x", b"1"),
        ("SCHILY.xattr.user.test", b"kept"),
    ])
    .file("f", b"data")
    .pax(&[("SCHILY.xattr.bogus.y", b"2")])
    .raw(EntryType::Fifo, "fifo", "", 0o644, 0, 0, 0, b"");
    s.extract(&a.bytes()).unwrap();
    assert_eq!(fs::read(s.path("f")).unwrap(), b"data");
    let mut value = [0u8; 16];
    let n = rustix::fs::lgetxattr(s.path("f"), "user.test", &mut value[..]).unwrap();
    assert_eq!(&value[..n], b"kept");
    assert!(fs::symlink_metadata(s.path("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
}

impl Scratch {
    fn extract_layer(&self, archive: &[u8]) -> Result<Stats> {
        extract_layer(archive, self.root_fd().as_fd(), &mut |_| {})
    }

    /// The names in directory `rel` of the image, sorted.
    fn names(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.path(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}

/// Layers (OCI image spec, "Changesets"): a later layer's files replace
/// the lower ones' (a directory's tree too), `.wh.NAME` removes NAME, an
/// opaque whiteout empties its directory of the lower layers' entries but
/// keeps its own layer's, whatever their order; aufs's own `.wh..wh.`
/// names are skipped; an empty layer is fine.
#[test]
fn layers_apply_their_whiteouts_to_the_layers_below() {
    let s = Scratch::new();
    let mut base = Archive::new();
    base.dir("etc/", 0o755, 0)
        .file("etc/keep", b"1")
        .file("etc/gone", b"1")
        .dir("etc/sub/", 0o755, 0)
        .file("etc/sub/deep", b"1")
        .dir("opq/", 0o755, 0)
        .file("opq/old", b"1")
        .dir("opq/olddir/", 0o755, 0)
        .file("opq/olddir/x", b"1")
        .dir("tree/", 0o755, 0)
        .file("tree/a", b"1")
        .symlink("out", s.canary.to_str().unwrap());
    s.extract_layer(&base.bytes()).unwrap();
    let mut upper = Archive::new();
    upper
        .file("opq/before", b"2")
        .file("etc/.wh.gone", b"")
        .file("etc/.wh.sub", b"")
        .file("opq/.wh..wh..opq", b"")
        .dir("opq/newdir/", 0o755, 0)
        .file("opq/newdir/y", b"2")
        .file("tree", b"a file now")
        .file(".wh.out", b"")
        .file(".wh.nothing-there", b"")
        .file("nodir/.wh.x", b"")
        .file(".wh..wh.plnk", b"")
        .file("etc/keep", b"2");
    s.extract_layer(&upper.bytes()).unwrap();
    assert_eq!(s.names("etc"), ["keep"]);
    assert_eq!(fs::read(s.path("etc/keep")).unwrap(), b"2");
    assert_eq!(s.names("opq"), ["before", "newdir"]);
    assert_eq!(s.names("opq/newdir"), ["y"]);
    assert_eq!(fs::read(s.path("tree")).unwrap(), b"a file now");
    assert_eq!(s.names(""), ["etc", "opq", "tree"]);
    s.assert_canary();
    // An empty layer (docker's layers of ENV and the like), and one of
    // only the end-of-archive blocks.
    assert_eq!(s.extract_layer(b"").unwrap(), Stats::default());
    assert_eq!(
        s.extract_layer(&Archive::new().bytes()).unwrap(),
        Stats::default()
    );
    // A whole archive (import) keeps whiteouts as files and refuses to
    // replace a full directory.
    let mut plain = Archive::new();
    plain.file("etc/.wh.keep", b"");
    s.extract(&plain.bytes()).unwrap();
    assert!(s.path("etc/.wh.keep").is_file() && s.path("etc/keep").is_file());
    let mut plain = Archive::new();
    plain.file("opq", b"x");
    assert!(s.extract(&plain.bytes()).is_err());
    // A whiteout cannot climb out or through a symlink.
    let mut evil = Archive::new();
    evil.symlink("link", s.base.to_str().unwrap())
        .file("link/.wh.canary", b"");
    assert!(s.extract_layer(&evil.bytes()).is_err());
    let mut evil = Archive::new();
    evil.file(".wh...", b"");
    assert!(s.extract_layer(&evil.bytes()).is_err());
    s.assert_canary();
}
