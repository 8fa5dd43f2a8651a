//! Test harness for tupper's integration tests (they run as root).
//!
//! - [`TestStore`]: a fresh btrfs for one test: a sparse file in a unique temporary
//!   directory, `mkfs.btrfs`, `losetup`, `mount`. Dropping it (also on panic)
//!   unmounts, detaches the loop device and removes the directory. The mount point is
//!   the store root given to `tupper --root`.
//! - [`busybox_tar`]: a busybox root filesystem (Debian's busybox-static, one symlink
//!   per applet, `/etc/passwd`, `/etc/group`, `/root`, `/tmp`; deliberately no
//!   `/proc`, `/sys` or `/dev`) as a tar, built once under `target/test-images/`.
//! - [`TestStore::tupper`] and friends: run the `tupper` binary with `--root` set and
//!   a watchdog, returning an [`Out`] (exit code, stdout, stderr).
//! - Oracles: [`TestStore::subvolumes`] (`btrfs subvolume list`), [`TestStore::state`]
//!   (every file of the store), [`mounts_under`] (`/proc/self/mountinfo`),
//!   [`subvol_info`] (libbtrfsutil through the `btrfsutil` crate).
//! - [`TarBuilder`]: raw tar archives, including malicious ones (`../` entries,
//!   symlinks out of the root, hard links to outside paths) that the `tar` crate's
//!   safe API refuses to write.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// The tupper binary under test.
pub const TUPPER: &str = env!("CARGO_BIN_EXE_tupper");

/// How long one tupper invocation may take before the watchdog kills it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The usual size of a test store.
pub const STORE_SIZE: u64 = 1 << 30;

/// The size of the small store used to fill the filesystem (mixed block groups).
pub const SMALL_STORE_SIZE: u64 = 160 << 20;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Runs a host tool that must succeed and returns its stdout.
pub fn sh(program: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&sh_bytes(program, args)).into_owned()
}

/// [`sh`], its stdout as bytes.
pub fn sh_bytes(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A loop-mounted btrfs made for one test; everything goes away on drop.
pub struct TestStore {
    /// The unique temporary directory holding the backing file and the mount point.
    dir: PathBuf,
    /// The mount point, which is also the store root (`--root`).
    mnt: PathBuf,
    /// The loop device, e.g. `/dev/loop3`.
    loopdev: String,
}

impl TestStore {
    /// A fresh 1 GiB btrfs store.
    pub fn new() -> TestStore {
        TestStore::with_size(STORE_SIZE, false)
    }

    /// A small store (mixed block groups) that an import can fill up.
    pub fn small() -> TestStore {
        TestStore::with_size(SMALL_STORE_SIZE, true)
    }

    /// A fresh btrfs of `size` bytes; `mixed` puts data and metadata together
    /// (needed below mkfs.btrfs's ~109 MiB minimum and more predictable when full).
    pub fn with_size(size: u64, mixed: bool) -> TestStore {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("tupper-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create test dir");
        let image = dir.join("btrfs.img");
        let mnt = dir.join("mnt");
        fs::create_dir(&mnt).expect("create mount point");
        fs::File::create(&image)
            .and_then(|f| f.set_len(size))
            .expect("create sparse file");
        let image_s = image.to_str().unwrap();
        let mut mkfs = vec!["-q", "-f"];
        if mixed {
            mkfs.push("--mixed");
        }
        mkfs.push(image_s);
        sh("mkfs.btrfs", &mkfs);
        let loopdev = sh("losetup", &["--find", "--show", image_s])
            .trim()
            .to_string();
        // From here on Drop cleans up, even if mount fails.
        let store = TestStore { dir, mnt, loopdev };
        sh(
            "mount",
            &["-t", "btrfs", &store.loopdev, store.mnt.to_str().unwrap()],
        );
        store
    }

    /// The store root (the mount point of the test btrfs).
    pub fn root(&self) -> &Path {
        &self.mnt
    }

    /// The store root as a `&str`.
    pub fn root_str(&self) -> &str {
        self.mnt.to_str().unwrap()
    }

    /// The loop device backing this store.
    pub fn loopdev(&self) -> &str {
        &self.loopdev
    }

    /// The temporary directory that holds the store (outside the btrfs), for
    /// scratch files of a test.
    pub fn scratch(&self) -> &Path {
        &self.dir
    }

    /// `tupper --root ROOT` as a command to complete.
    pub fn cmd(&self) -> Command {
        tupper(self)
    }

    /// Runs `tupper --root ROOT ARGS...` with stdin from /dev/null.
    pub fn tupper(&self, args: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        run_cmd(c, None, DEFAULT_TIMEOUT)
    }

    /// Runs `tupper --root ROOT ARGS...` with `input` on stdin.
    pub fn tupper_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        run_cmd(c, Some(input.to_vec()), DEFAULT_TIMEOUT)
    }

    /// `tupper run -d --net none OPTIONS... bb ARGS...`; asserts it printed
    /// an ID, and returns it.
    #[track_caller]
    pub fn detached(&self, options: &[&str], args: &[&str]) -> String {
        let mut v = vec!["run", "-d", "--net", "none"];
        v.extend(options);
        v.push("bb");
        v.extend(args);
        let out = self.tupper(&v).ok();
        let id = out.trim().to_string();
        assert!(is_id(&id), "run -d printed {out:?}");
        id
    }

    /// `tupper run --rm --net none IMAGE ARGS...`.
    pub fn run_rm(&self, image: &str, args: &[&str]) -> Out {
        let mut v = vec!["run", "--rm", "--net", "none", image];
        v.extend_from_slice(args);
        self.tupper(&v)
    }

    /// `tupper run --rm --net none IMAGE sh -c SCRIPT`; asserts exit 0, returns stdout.
    pub fn sh_in(&self, image: &str, script: &str) -> String {
        self.run_rm(image, &["sh", "-c", script]).ok()
    }

    /// Compiles the C program `source` with the host's `cc -static` in the
    /// scratch directory and returns the binary (it needs nothing in an image).
    pub fn static_program(&self, name: &str, source: &str) -> Vec<u8> {
        let src = self.scratch().join(format!("{name}.c"));
        let bin = self.scratch().join(name);
        fs::write(&src, source).unwrap();
        let st = Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&bin)
            .arg(&src)
            .status()
            .expect("run cc");
        assert!(st.success(), "cc failed for {name}.c");
        fs::read(&bin).unwrap()
    }

    /// Waits (at most 20 s) until `ps` lists a running container named `name`.
    #[track_caller]
    pub fn wait_running(&self, name: &str) {
        assert!(
            wait_for(Duration::from_secs(20), || self
                .ps_json(false)
                .iter()
                .any(|r| r["name"] == name)),
            "container {name} is not listed as running by ps"
        );
    }

    /// Imports the busybox image as `name` and asserts success.
    pub fn import_busybox(&self, name: &str) {
        let tar = busybox_tar();
        self.tupper(&["import", name, tar.to_str().unwrap()]).ok();
        // The spare snapshots are made by a background process.
        self.settle_pool();
        assert!(
            self.mnt
                .join("images")
                .join(name)
                .join("bin/busybox")
                .is_file(),
            "image {name} has no /bin/busybox after import"
        );
    }

    /// `ROOT/images/NAME`.
    pub fn image_path(&self, name: &str) -> PathBuf {
        self.mnt.join("images").join(name)
    }

    /// `ROOT/containers/ID`.
    pub fn container_path(&self, id: &str) -> PathBuf {
        self.mnt.join("containers").join(id)
    }

    /// The entries of `ROOT/containers` (container IDs), sorted.
    pub fn container_ids(&self) -> Vec<String> {
        list_dir(&self.mnt.join("containers"))
    }

    /// The entries of `ROOT/images`, sorted.
    pub fn image_names(&self) -> Vec<String> {
        list_dir(&self.mnt.join("images"))
    }

    /// The entries of `ROOT/state`, sorted (may be empty if it does not exist),
    /// the event log left out.
    pub fn state_entries(&self) -> Vec<String> {
        let mut v = Vec::new();
        walk(
            &self.mnt.join("state"),
            &self.mnt.join("state"),
            // The event log is a history (`tupper events`), not a thing made.
            &mut |rel, _| {
                if rel != "events.log" && rel != "events.log.1" {
                    v.push(rel.to_string())
                }
            },
        );
        v.sort();
        v
    }

    /// Container `name`'s entry in `ps -a --json`; panics when it has none.
    #[track_caller]
    pub fn ps_entry(&self, name: &str) -> serde_json::Value {
        self.ps_json(true)
            .into_iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }

    /// `tupper inspect NAME_OR_ID`'s one record; asserts it succeeds.
    #[track_caller]
    pub fn inspect(&self, name_or_id: &str) -> serde_json::Value {
        let out = self.tupper(&["inspect", name_or_id]).ok();
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect prints JSON");
        match v {
            serde_json::Value::Array(mut a) => a.remove(0),
            v => v,
        }
    }

    /// `tupper ps [-a] --json`, parsed; asserts it succeeds.
    pub fn ps_json(&self, all: bool) -> Vec<serde_json::Value> {
        let args: &[&str] = if all {
            &["ps", "-a", "--json"]
        } else {
            &["ps", "--json"]
        };
        let out = self.tupper(args);
        let s = out.ok();
        match serde_json::from_str::<serde_json::Value>(&s) {
            Ok(serde_json::Value::Array(v)) => v,
            other => panic!("tupper ps --json did not print a JSON array: {other:?}\n{s}"),
        }
    }

    /// `tupper images --json`, parsed; asserts it succeeds.
    pub fn images_json(&self) -> Vec<serde_json::Value> {
        let s = self.tupper(&["images", "--json"]).ok();
        match serde_json::from_str::<serde_json::Value>(&s) {
            Ok(serde_json::Value::Array(v)) => v,
            other => panic!("tupper images --json did not print a JSON array: {other:?}\n{s}"),
        }
    }

    /// Every subvolume of this filesystem (`btrfs subvolume list`), paths
    /// relative to the filesystem top (= the store root), sorted.
    pub fn all_subvolumes(&self) -> Vec<String> {
        let out = sh("btrfs", &["subvolume", "list", self.root_str()]);
        let mut v: Vec<String> = out
            .lines()
            .filter_map(|l| l.split(" path ").nth(1))
            .map(|p| p.trim().to_string())
            .collect();
        v.sort();
        v
    }

    /// The subvolumes except the spare snapshots of `ROOT/pool/` (a cache that
    /// refills itself in the background), after waiting for the pool to settle.
    pub fn subvolumes(&self) -> Vec<String> {
        self.settle_pool();
        self.all_subvolumes()
            .into_iter()
            .filter(|p| !p.starts_with("pool/"))
            .collect()
    }

    /// The spare snapshots (`pool/KEY/ID`), after waiting for the pool to settle.
    pub fn pool_spares(&self) -> Vec<String> {
        self.settle_pool();
        self.all_subvolumes()
            .into_iter()
            .filter(|p| p.starts_with("pool/"))
            .collect()
    }

    /// Waits (at most 15 s) until no background refill of the spare snapshot pool
    /// runs: no spare being made in `ROOT/pool/*/.new/` and no detached tupper process
    /// (a session leader named `tupper`, as `run` forks them) holding the store open.
    pub fn settle_pool(&self) {
        let pool = self.mnt.join("pool");
        let trash = self.mnt.join("trash");
        let start = Instant::now();
        loop {
            // `run --rm` leaves its snapshot in the trash for a background
            // process to destroy.
            let preparing = !list_dir(&trash).is_empty()
                || list_dir(&pool).iter().any(|key| {
                    !list_dir(&pool.join(key).join(".new")).is_empty()
                        || list_dir(&pool.join(key))
                            .iter()
                            .any(|s| s.starts_with(".new-"))
                });
            if (!preparing && self.refillers().is_empty())
                || start.elapsed() > Duration::from_secs(15)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Detached tupper processes (the pool refills `run` and `import` fork:
    /// session leaders named `tupper`, or, until their `setsid`, tupper
    /// processes that this test process did not start) of this store: they
    /// hold a file of it open, or (between closing the CLI's files and
    /// opening the store again) were forked from a `tupper --root STORE`.
    pub fn refillers(&self) -> Vec<i32> {
        let mut v = Vec::new();
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let f: Vec<&str> = stat[close + 2..].split(' ').collect();
            // After the comm: state ppid pgrp session ...
            let leader = f.get(3) == Some(&pid.to_string().as_str());
            let ours = f.get(1) == Some(&std::process::id().to_string().as_str());
            if &stat[open + 1..close] != "tupper" || (!leader && ours) {
                continue;
            }
            let holds = fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.flatten()
                        .filter_map(|fd| fs::read_link(fd.path()).ok())
                        .any(|l| l.starts_with(&self.mnt))
                })
                .unwrap_or(false);
            let forked_for_store = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                    args.windows(2).any(|w| {
                        w[0] == b"--root"
                            && Path::new(std::str::from_utf8(w[1]).unwrap_or("")) == self.mnt
                    })
                })
                .unwrap_or(false);
            if holds || forked_for_store {
                v.push(pid);
            }
        }
        v
    }

    /// Waits until deleted subvolumes are cleaned and the filesystem is synced.
    pub fn sync(&self) {
        self.settle_pool();
        // A commit first wakes the cleaner; without it `subvolume sync` waits for
        // the next periodic commit (30 s).
        sh("btrfs", &["filesystem", "sync", self.root_str()]);
        sh("btrfs", &["subvolume", "sync", self.root_str()]);
        sh("btrfs", &["filesystem", "sync", self.root_str()]);
    }

    /// Free bytes of the filesystem (statvfs `f_bavail * f_frsize`).
    pub fn free_bytes(&self) -> u64 {
        let st = rustix::fs::statvfs(&self.mnt).expect("statvfs");
        st.f_bavail * st.f_frsize
    }

    /// Everything observable about the store: its subvolumes and every file
    /// (path, type, mode, size, symlink target, and the content of small regular
    /// files outside images, i.e. records), except the spare snapshot pool and
    /// the spare network namespaces, caches that a failed `run` may
    /// legitimately consume and refill. Used to check that a failed command
    /// changed nothing.
    pub fn state(&self) -> StoreState {
        let mut files = BTreeMap::new();
        self.settle_pool();
        walk(&self.mnt, &self.mnt, &mut |rel, p| {
            if rel.starts_with("pool/") {
                return; // the spare snapshot cache, see `subvolumes`
            }
            if rel == "netns" || rel.starts_with("netns/") || rel == "netns.lock" {
                return; // the spare network namespaces (`tupper::netns_pool`)
            }
            if rel == "state/events.log" || rel == "state/events.log.1" {
                return; // a history (`tupper events`), not a thing made
            }
            let md = fs::symlink_metadata(p).expect("lstat");
            let ft = md.file_type();
            let desc = if ft.is_symlink() {
                format!("l -> {}", fs::read_link(p).unwrap().display())
            } else if ft.is_dir() {
                format!("d {:o}", md.mode() & 0o7777)
            } else if ft.is_file() {
                let mut d = format!("f {:o} {}", md.mode() & 0o7777, md.len());
                if !rel.starts_with("images/") && md.len() <= 1 << 16 {
                    let content = fs::read(p).unwrap_or_default();
                    d.push_str(&format!(" {}", String::from_utf8_lossy(&content)));
                }
                d
            } else {
                format!("o {:o}", md.mode())
            };
            files.insert(rel.to_string(), desc);
        });
        StoreState {
            subvolumes: self.subvolumes(),
            files,
        }
    }

    /// Asserts that the store holds no container, no temporary import, no mount
    /// of its own below the root, and no subvolume other than the images and
    /// complete spare snapshots of existing images (`pool/UUID/ID`).
    pub fn assert_no_leftovers(&self) {
        let subs = self.subvolumes();
        let stray: Vec<&String> = subs.iter().filter(|s| !s.starts_with("images/")).collect();
        assert!(stray.is_empty(), "stray subvolumes: {stray:?}");
        let keys: Vec<String> = self
            .image_names()
            .iter()
            .map(|n| subvol_info(&self.image_path(n)).1 .0.replace('-', ""))
            .collect();
        for spare in self.pool_spares() {
            let parts: Vec<&str> = spare.split('/').collect();
            assert!(
                parts.len() == 3 && keys.iter().any(|k| k == parts[1]) && is_id(parts[2]),
                "a spare snapshot that is not a complete spare of an existing image: {spare} (image keys {keys:?})"
            );
        }
        assert!(
            self.container_ids().is_empty(),
            "containers left: {:?}",
            self.container_ids()
        );
        let tmp = list_dir(&self.mnt.join("tmp"));
        assert!(tmp.is_empty(), "temporary imports left: {tmp:?}");
        // The holder of the spare network namespaces (`netns/holder`, nsfs)
        // is the runtime's own; the spares are mounts in it, not here.
        let mounts: Vec<PathBuf> = mounts_under(&self.mnt)
            .into_iter()
            .filter(|m| *m != self.holder())
            .collect();
        assert_eq!(mounts, vec![self.mnt.clone()], "mounts below the store");
    }

    /// The store's holder of spare network namespaces: the nsfs file of a
    /// mount namespace, bind-mounted on `netns/holder` (`tupper::netns_pool`).
    pub fn holder(&self) -> PathBuf {
        self.mnt.join("netns/holder")
    }

    /// Runs `SCRIPT` with busybox's `sh` inside the holder's mount namespace
    /// (`nsenter --mount`), where `$B` is the host's static busybox (the
    /// holder has no programs of its own, only the host's `/proc`). Returns
    /// stdout; it must succeed.
    pub fn holder_sh(&self, script: &str) -> String {
        let busybox = format!("/proc/{}/root/bin/busybox", std::process::id());
        let out = Command::new("nsenter")
            .arg(format!("--mount={}", self.holder().display()))
            .args([&busybox, "sh", "-c"])
            .arg(format!("B={busybox}; {script}"))
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter");
        assert!(
            out.status.success(),
            "in the holder: {script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The store's spare network namespaces, with their namespace ids (the
    /// `net:[ID]` of their nsfs file): nsfs mounts in the holder on
    /// `/plain/ID` (plain spares) and `/br-INODE-BRIDGE/ID` (bridge spares),
    /// but not plain ones that a container took (claimed by `ID.taken`, unmounted
    /// by a later refill). Paths are the holder's. None when the store has
    /// no holder.
    pub fn netns_spare_ids(&self) -> Vec<(PathBuf, u64)> {
        if !mounts_under(&self.mnt).contains(&self.holder()) {
            return Vec::new();
        }
        let taken: Vec<PathBuf> = self
            .netns_taken()
            .iter()
            .map(|id| Path::new("/plain").join(id))
            .collect();
        self.netns_spare_ids_with_taken()
            .into_iter()
            .filter(|(p, _)| !taken.contains(p))
            .collect()
    }

    /// The IDs of the plain spares that containers took and no refill has
    /// cleaned yet: the claims `/plain/ID.taken` in the holder.
    pub fn netns_taken(&self) -> Vec<String> {
        if !mounts_under(&self.mnt).contains(&self.holder()) {
            return Vec::new();
        }
        self.holder_sh("$B ls -a /plain")
            .lines()
            .filter_map(|l| l.strip_suffix(".taken"))
            .filter(|id| is_id(id))
            .map(str::to_string)
            .collect()
    }

    /// [`TestStore::netns_spare_ids`], taken plain spares included.
    pub fn netns_spare_ids_with_taken(&self) -> Vec<(PathBuf, u64)> {
        if !mounts_under(&self.mnt).contains(&self.holder()) {
            return Vec::new();
        }
        self.holder_sh("$B cat /proc/self/mountinfo")
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                let fstype = line.split(" - ").nth(1)?.split(' ').next()?;
                let mp = PathBuf::from(unescape_mount(f.get(4)?));
                let id: u64 = f
                    .get(3)?
                    .strip_prefix("net:[")?
                    .strip_suffix(']')?
                    .parse()
                    .ok()?;
                let parent = mp.parent()?;
                let in_pool = parent == Path::new("/plain")
                    || (parent.parent() == Some(Path::new("/"))
                        && parent
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("br-")));
                let spare = fstype == "nsfs"
                    && in_pool
                    && mp.file_name().is_some_and(|n| is_id(&n.to_string_lossy()));
                spare.then_some((mp, id))
            })
            .collect()
    }

    /// The paths of [`TestStore::netns_spare_ids`].
    pub fn netns_spares(&self) -> Vec<PathBuf> {
        self.netns_spare_ids().into_iter().map(|(p, _)| p).collect()
    }

    /// The bridge spares among [`TestStore::netns_spares`].
    pub fn bridge_spares(&self) -> Vec<PathBuf> {
        self.netns_spares()
            .into_iter()
            .filter(|p| p.parent() != Some(Path::new("/plain")))
            .collect()
    }
}

/// Starts going on all the time: the containers directory changes every 5 ms
/// (as it does when containers start and end), until dropped.
pub struct Busy {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The longest time between two changes so far, in microseconds.
    longest_gap_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Busy {
    pub fn new(store: &TestStore) -> Busy {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let longest = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let containers = store.root().join("containers");
        let (flag, gap) = (stop.clone(), longest.clone());
        let thread = std::thread::spawn(move || {
            let (a, b) = (containers.join("busy-a"), containers.join("busy-b"));
            fs::create_dir(&a).unwrap();
            let mut last = Instant::now();
            let mut changed = || {
                let us = last.elapsed().as_micros() as u64;
                gap.fetch_max(us, std::sync::atomic::Ordering::Relaxed);
                last = Instant::now();
            };
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                fs::rename(&a, &b).unwrap();
                changed();
                fs::rename(&b, &a).unwrap();
                changed();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            fs::remove_dir(&a).unwrap();
        });
        Busy {
            stop,
            longest_gap_us: longest,
            thread: Some(thread),
        }
    }

    /// The longest time the containers directory went unchanged so far (a
    /// rename that waited for a btrfs commit, a thread not scheduled on a
    /// loaded machine): a quiet moment that a refill may take.
    pub fn longest_gap(&self) -> Duration {
        Duration::from_micros(
            self.longest_gap_us
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Default for TestStore {
    fn default() -> TestStore {
        TestStore::new()
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        // Containers a failed test left running (`run -d`), or dead with
        // their command still there (a paused one's waits in its freezer),
        // end first.
        let all = self.tupper(&["ps", "-a", "--json"]).stdout;
        if let Ok(serde_json::Value::Array(list)) = serde_json::from_str(&all) {
            for r in list {
                if r["status"] != "running" && r["status"] != "dead" {
                    continue;
                }
                if let Some(id) = r["id"].as_str() {
                    let _ = self.tupper(&["rm", "-f", id]);
                }
            }
        }
        // A background refill of the spare pool (a process tupper forked) may
        // still hold the store open.
        self.settle_pool();
        let mnt = self.mnt.to_str().unwrap().to_string();
        let quiet = |prog: &str, args: &[&str]| {
            Command::new(prog)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        // Mounts a buggy runtime left below the store (deepest first), then the store.
        let mut below = mounts_under(&self.mnt);
        below.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for m in below {
            let ms = m.to_str().unwrap().to_string();
            let mut done = false;
            for _ in 0..20 {
                if quiet("umount", &[&ms]) {
                    done = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if !done && !quiet("umount", &["-l", &ms]) {
                eprintln!("harness: cannot unmount {ms}");
            }
        }
        // The loop device: detaching a busy device sets autoclear, so it goes away
        // when the last user (e.g. a lazily unmounted filesystem) does.
        if !quiet("losetup", &["-d", &self.loopdev]) {
            eprintln!("harness: cannot detach {}", self.loopdev);
        }
        if mounts_under(&self.mnt).is_empty() {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                eprintln!("harness: cannot remove {}: {e}", self.dir.display());
            }
        } else {
            eprintln!(
                "harness: {mnt} still mounted, leaving {}",
                self.dir.display()
            );
        }
    }
}

/// A snapshot of a store's subvolumes and files, see [`TestStore::state`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreState {
    /// Subvolume paths (`btrfs subvolume list`).
    pub subvolumes: Vec<String>,
    /// Relative path -> description of every file.
    pub files: BTreeMap<String, String>,
}

impl StoreState {
    /// Asserts `self == after`, printing only the differences.
    pub fn assert_same(&self, after: &StoreState, what: &str) {
        assert_eq!(
            self.subvolumes, after.subvolumes,
            "{what}: subvolumes changed"
        );
        let mut diffs = Vec::new();
        for (k, v) in &self.files {
            match after.files.get(k) {
                None => diffs.push(format!("- {k} ({v})")),
                Some(w) if w != v => diffs.push(format!("~ {k}: {v} => {w}")),
                _ => {}
            }
        }
        for (k, v) in &after.files {
            if !self.files.contains_key(k) {
                diffs.push(format!("+ {k} ({v})"));
            }
        }
        assert!(
            diffs.is_empty(),
            "{what}: store changed:\n{}",
            diffs.join("\n")
        );
    }
}

/// Whether an flock is held on `path` (probed with a non-blocking exclusive lock
/// that is released at once).
pub fn lock_is_held(path: &Path) -> bool {
    use rustix::fs::{flock, open, FlockOperation, Mode, OFlags};
    let Ok(fd) = open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err()
}

/// Whether `s` is a container ID: 12 lowercase hex digits.
pub fn is_id(s: &str) -> bool {
    s.len() == 12
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Walks `dir` recursively (not following symlinks), calling `f(relative, path)`
/// for every entry below it. A missing directory is empty.
pub fn walk(base: &Path, dir: &Path, f: &mut dyn FnMut(&str, &Path)) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_string();
        f(&rel, &p);
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(base, &p, f);
        }
    }
}

/// The names in `dir`, sorted; empty if it does not exist.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Mount points (from `/proc/self/mountinfo`) at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut v = Vec::new();
    for line in info.lines() {
        let Some(mp) = line.split(' ').nth(4) else {
            continue;
        };
        let mp = PathBuf::from(unescape_mount(mp));
        if mp.starts_with(dir) {
            v.push(mp);
        }
    }
    v
}

/// Undoes the octal escapes (`\040` for space, ...) of /proc mount tables.
pub fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(n) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("x"), 8)
            {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount point of the cgroup v1 hierarchy of `controller`, from the
/// host's mountinfo (the test's own reading, not tupper's).
#[track_caller]
pub fn cgroup_v1_mount(controller: &str) -> PathBuf {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in text.lines() {
        let (left, right) = line.split_once(" - ").unwrap();
        let right: Vec<&str> = right.split(' ').collect();
        if right[0] == "cgroup" && right[2].split(',').any(|o| o == controller) {
            return PathBuf::from(left.split(' ').nth(4).unwrap());
        }
    }
    panic!("no cgroup v1 hierarchy of {controller}: this test needs this host's v1 layout");
}

/// A new test store with the busybox image `bb`.
pub fn store_with_busybox() -> TestStore {
    let store = TestStore::new();
    store.import_busybox("bb");
    store
}

/// `tupper --root ROOT` (stdin, stdout and stderr inherited unless changed).
pub fn tupper(store: &TestStore) -> Command {
    let mut c = Command::new(TUPPER);
    c.arg("--root").arg(store.root());
    c.env_remove("TUPPER_ROOT");
    c
}

/// The result of one command.
#[derive(Debug, Clone)]
pub struct Out {
    /// The exit code, or `-N` if the process was killed by signal N.
    pub code: i32,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl Out {
    /// Asserts exit 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self.stdout.clone()
    }

    /// Asserts exit `code` and returns stdout.
    #[track_caller]
    pub fn code(&self, code: i32) -> String {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        self.stdout.clone()
    }

    /// Asserts a tupper failure: exit 125 (or `code`), and stderr is exactly one
    /// line beginning with `tupper: `. Returns that line.
    #[track_caller]
    pub fn fails(&self, code: i32) -> String {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr is not exactly one line: {self:?}");
        assert!(
            lines[0].starts_with("tupper: ") && lines[0].len() > "tupper: ".len() + 5,
            "stderr does not start with 'tupper: ': {self:?}"
        );
        lines[0].to_string()
    }
}

fn exit_code(st: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().unwrap_or_else(|| -st.signal().unwrap_or(0))
}

/// Runs `c` with stdout and stderr captured, `input` on stdin (or /dev/null), and
/// a watchdog that SIGKILLs it after `timeout` (then the test fails).
pub fn run_cmd(mut c: Command, input: Option<Vec<u8>>, timeout: Duration) -> Out {
    c.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let desc = format!("{c:?}");
    let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let writer = input.map(|data| {
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            // The command may exit before reading everything: ignore EPIPE.
            let _ = stdin.write_all(&data);
        })
    });
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
            kill(pid as i32, 9);
            true
        } else {
            false
        }
    });
    let out = child.wait_with_output().expect("wait");
    let _ = tx.send(());
    let timed_out = watchdog.join().unwrap();
    if let Some(w) = writer {
        let _ = w.join();
    }
    let out = Out {
        code: exit_code(out.status),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!timed_out, "timed out after {timeout:?}: {desc}: {out:?}");
    out
}

/// Kills a process this test started (SIGKILL) if it outlives `timeout`; disarmed
/// when dropped. Use [`Watchdog::fired`] to fail the test afterwards.
pub struct Watchdog {
    tx: Option<mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<bool>>,
}

impl Watchdog {
    /// Arms a watchdog for `pid`.
    pub fn new(pid: u32, timeout: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            if rx.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
                kill(pid as i32, 9);
                true
            } else {
                false
            }
        });
        Watchdog {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Disarms the watchdog and tells whether it had to kill.
    pub fn fired(mut self) -> bool {
        self.disarm()
    }

    fn disarm(&mut self) -> bool {
        drop(self.tx.take());
        self.handle
            .take()
            .map(|h| h.join().unwrap_or(false))
            .unwrap_or(false)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// Sends signal `sig` to `pid` (a process this test started), ignoring errors.
pub fn kill(pid: i32, sig: i32) {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    let Some(sig) = rustix::process::Signal::from_named_raw(sig) else {
        return;
    };
    let _ = rustix::process::kill_process(pid, sig);
}

/// A process, identified by pid and start time (so a reused pid is not mistaken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    /// The pid in the test's PID namespace.
    pub pid: i32,
    /// Field 22 of /proc/PID/stat.
    pub start: u64,
}

impl Proc {
    /// Process `pid` as it is now, if it exists.
    pub fn of(pid: i32) -> Option<Proc> {
        proc_stat(pid).map(|(_, _, start)| Proc { pid, start })
    }

    /// Its parent's pid, while it exists.
    pub fn ppid(&self) -> Option<i32> {
        proc_stat(self.pid)
            .filter(|(_, _, start)| *start == self.start)
            .map(|(ppid, _, _)| ppid)
    }

    /// Whether this process still exists and is not a zombie.
    pub fn alive(&self) -> bool {
        match proc_stat(self.pid) {
            Some((_, state, start)) => start == self.start && state != 'Z' && state != 'X',
            None => false,
        }
    }
}

/// (ppid, state, starttime) of `pid`.
fn proc_stat(pid: i32) -> Option<(i32, char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); ppid is field 4, starttime field 22.
    Some((
        f[1].parse().ok()?,
        f[0].chars().next()?,
        f[19].parse().ok()?,
    ))
}

/// Every live descendant of `pid` (found through the ppid links of /proc).
pub fn descendants(pid: i32) -> Vec<Proc> {
    let mut table = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some((ppid, state, start)) = proc_stat(p) {
            if state != 'Z' {
                table.push((p, ppid, start));
            }
        }
    }
    let mut out: Vec<Proc> = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(p, ppid, start) in &table {
            if ppid == parent && !out.iter().any(|q| q.pid == p) {
                out.push(Proc { pid: p, start });
                frontier.push(p);
            }
        }
    }
    out
}

/// Waits (at most 20 s) for a descendant of `pid` whose command name is
/// `name` (a container's process under its `tupper run`), and returns it.
#[track_caller]
pub fn wait_for_descendant(pid: i32, name: &str) -> Proc {
    let mut found = None;
    wait_for(Duration::from_secs(20), || {
        found = descendants(pid).into_iter().find(|p| comm(p.pid) == name);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no process {name} under {pid}: the container did not start"))
}

/// Spawns `c` with stdin, stdout and stderr on `/dev/null`, and a watchdog
/// that kills it after `limit`.
pub fn spawn_quiet(mut c: Command, limit: Duration) -> (std::process::Child, Watchdog) {
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dog = Watchdog::new(child.id(), limit);
    (child, dog)
}

/// The command name of `pid` (`/proc/PID/comm`), empty if it is gone.
pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The processes that hold namespace `ns` (a link text such as `mnt:[4026532177]`):
/// as one of their namespaces or as an open fd.
pub fn namespace_holders(ns: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let is = |link: &Path| fs::read_link(link).is_ok_and(|l| l.as_os_str() == ns);
        let in_it = fs::read_dir(format!("/proc/{pid}/ns"))
            .map(|d| d.flatten().any(|n| is(&n.path())))
            .unwrap_or(false);
        let has_fd = fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.flatten().any(|fd| is(&fd.path())))
            .unwrap_or(false);
        if in_it || has_fd {
            v.push(pid);
        }
    }
    v
}

/// Waits up to `timeout` for `cond`; returns whether it became true.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Libbtrfsutil's view of the subvolume at `path`: (read-only, uuid, parent uuid).
pub fn subvol_info(path: &Path) -> (bool, uuid_string::Uuid, Option<uuid_string::Uuid>) {
    let sv = btrfsutil::subvolume::Subvolume::get(path).unwrap_or_else(|e| {
        panic!(
            "{} is not a subvolume (libbtrfsutil): {e:?}",
            path.display()
        )
    });
    let ro = sv.is_ro().expect("btrfs_util_get_subvolume_read_only");
    let info = sv.info().expect("btrfs_util_subvolume_info");
    (
        ro,
        uuid_string::Uuid(info.uuid.to_string()),
        info.parent_uuid.map(|u| uuid_string::Uuid(u.to_string())),
    )
}

/// UUIDs as strings, so the tests need no `uuid` dependency of their own.
pub mod uuid_string {
    /// A subvolume UUID in its hyphenated text form.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Uuid(pub String);
}

// ---------------------------------------------------------------------------
// The busybox image

/// The busybox root filesystem tar, built once per process (and reused across
/// processes) under `target/test-images/`.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = test_images_dir();
        let path = dir.join("busybox-v1.tar");
        if !path.exists() {
            let data = build_busybox_tar();
            write_atomic(&path, &data);
        }
        path
    })
}

/// `target/test-images/`: cargo's target directory, found from
/// `CARGO_TARGET_TMPDIR` (`target/tmp`, or `target/TRIPLE/tmp` with an explicit
/// build target).
pub fn test_images_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut target = tmp.parent().unwrap_or(tmp);
    if target
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("-linux-"))
    {
        target = target.parent().unwrap_or(target);
    }
    let dir = target.join("test-images");
    fs::create_dir_all(&dir).expect("create target/test-images");
    dir
}

/// Writes `data` to `path` through a temporary name and a rename, so parallel
/// test binaries never see a partial file.
pub fn write_atomic(path: &Path, data: &[u8]) {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    fs::write(&tmp, data).expect("write temporary file");
    fs::rename(&tmp, path).expect("rename into place");
}

/// The applet paths of the host's `/bin/busybox` (`busybox --list-full`),
/// relative, without `bin/busybox` itself.
pub fn busybox_applets() -> Vec<String> {
    sh("/bin/busybox", &["--list-full"])
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .filter(|l| l.contains('/') && l != "bin/busybox")
        .collect()
}

/// Builds the busybox root filesystem as an uncompressed tar in memory.
pub fn build_busybox_tar() -> Vec<u8> {
    let busybox =
        fs::read("/bin/busybox").expect("read /bin/busybox (apt-get install busybox-static)");
    let mut t = TarBuilder::new();
    for d in ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "home"] {
        t.dir(d, 0o755);
    }
    t.dir("root", 0o700);
    t.dir("tmp", 0o1777);
    t.file("bin/busybox", 0o755, &busybox);
    for applet in busybox_applets() {
        t.symlink(&applet, "/bin/busybox");
    }
    t.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    t.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
    t.finish()
}

// ---------------------------------------------------------------------------
// Raw tar archives

/// Writes ustar archives entry by entry, with names taken verbatim (so `../x`,
/// absolute paths and links out of the root can be written on purpose).
pub struct TarBuilder {
    buf: Vec<u8>,
}

impl Default for TarBuilder {
    fn default() -> TarBuilder {
        TarBuilder::new()
    }
}

impl TarBuilder {
    /// An empty archive.
    pub fn new() -> TarBuilder {
        TarBuilder { buf: Vec::new() }
    }

    /// An archive that starts with `bin/busybox` (the host's static one) and
    /// `bin/APPLET -> busybox` for each of `applets`: a minimal image.
    pub fn with_busybox(applets: &[&str]) -> TarBuilder {
        let mut t = TarBuilder::new();
        t.dir("bin", 0o755);
        t.file("bin/busybox", 0o755, &fs::read("/bin/busybox").unwrap());
        for applet in applets {
            t.symlink(&format!("bin/{applet}"), "busybox");
        }
        t
    }

    /// Appends one header (ustar; a GNU long-name entry first if the name is over
    /// 100 bytes) and the data padded to 512 bytes.
    pub fn entry(&mut self, name: &str, typ: u8, mode: u32, link: &str, data: &[u8]) {
        if name.len() > 100 {
            let mut long = name.as_bytes().to_vec();
            long.push(0);
            self.raw_header("././@LongLink", b'L', 0o644, "", long.len() as u64);
            self.data(&long);
        }
        self.raw_header(name, typ, mode, link, data.len() as u64);
        self.data(data);
    }

    /// Appends only a header that announces `size` bytes (the caller streams the
    /// data, e.g. for huge or truncated entries).
    pub fn raw_header(&mut self, name: &str, typ: u8, mode: u32, link: &str, size: u64) {
        let h = tar_header(name, typ, mode, link, size);
        self.buf.extend_from_slice(&h);
    }

    fn data(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat(0).take(pad));
    }

    /// A directory.
    pub fn dir(&mut self, name: &str, mode: u32) {
        self.entry(
            &format!("{}/", name.trim_end_matches('/')),
            b'5',
            mode,
            "",
            b"",
        );
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, b'0', mode, "", data);
    }

    /// A symbolic link `name -> target`.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, b'2', 0o777, target, b"");
    }

    /// A hard link `name` to the archive path `target`.
    pub fn hardlink(&mut self, name: &str, target: &str) {
        self.entry(name, b'1', 0o644, target, b"");
    }

    /// An entry with explicit owner, mtime and device numbers.
    pub fn entry_meta(&mut self, name: &str, typ: u8, mode: u32, link: &str, data: &[u8], m: Meta) {
        let h = tar_header_meta(name, typ, mode, link, data.len() as u64, m);
        self.buf.extend_from_slice(&h);
        self.data(data);
    }

    /// A PAX extended header (`x`) for the next entry, e.g.
    /// `("SCHILY.xattr.security.capability", bytes)`.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) {
        let mut body = Vec::new();
        for (k, v) in records {
            // "LEN KEY=VALUE\n", LEN counting itself.
            let rest = k.len() + v.len() + 3;
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        self.entry("././@PaxHeader", b'x', 0o644, "", &body);
    }

    /// The bytes so far, without the end-of-archive marker.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The complete archive (two zero blocks at the end).
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend(std::iter::repeat(0).take(1024));
        self.buf
    }
}

/// Owner, time and device numbers of a tar entry.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
    /// Device major (character and block devices).
    pub major: u32,
    /// Device minor.
    pub minor: u32,
}

/// The defaults of [`TarBuilder`]: root-owned, 2020-01-01, no device.
pub const META: Meta = Meta {
    uid: 0,
    gid: 0,
    mtime: 1_577_836_800,
    major: 0,
    minor: 0,
};

/// One 512-byte ustar header (owner 0:0, mtime 2020-01-01).
pub fn tar_header(name: &str, typ: u8, mode: u32, link: &str, size: u64) -> [u8; 512] {
    tar_header_meta(name, typ, mode, link, size, META)
}

/// One 512-byte ustar header with explicit owner, mtime and device numbers.
pub fn tar_header_meta(
    name: &str,
    typ: u8,
    mode: u32,
    link: &str,
    size: u64,
    m: Meta,
) -> [u8; 512] {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], off: usize, len: usize, v: &[u8]| {
        let n = v.len().min(len);
        h[off..off + n].copy_from_slice(&v[..n]);
    };
    let octal = |h: &mut [u8; 512], off: usize, len: usize, v: u64| {
        let s = format!("{:0width$o}", v, width = len - 1);
        put(h, off, len, s.as_bytes());
    };
    put(&mut h, 0, 100, name.as_bytes());
    octal(&mut h, 100, 8, mode as u64);
    octal(&mut h, 108, 8, m.uid as u64);
    octal(&mut h, 116, 8, m.gid as u64);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, m.mtime);
    h[148..156].copy_from_slice(b"        ");
    h[156] = typ;
    put(&mut h, 157, 100, link.as_bytes());
    put(&mut h, 257, 6, b"ustar\0");
    put(&mut h, 263, 2, b"00");
    put(&mut h, 265, 32, b"root");
    put(&mut h, 297, 32, b"root");
    octal(&mut h, 329, 8, m.major as u64);
    octal(&mut h, 337, 8, m.minor as u64);
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let s = format!("{:06o}\0 ", sum);
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// gzip-compresses `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// zstd-compresses `data`.
pub fn zstd(data: &[u8]) -> Vec<u8> {
    // With a content checksum, as the zstd program writes by default.
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).expect("zstd encoder");
    enc.include_checksum(true).expect("zstd checksum flag");
    enc.write_all(data).expect("zstd encode");
    enc.finish().expect("zstd finish")
}

/// Deterministic incompressible bytes (xorshift64*).
pub struct Noise(u64);

impl Noise {
    /// A generator from `seed` (non-zero).
    pub fn new(seed: u64) -> Noise {
        Noise(seed | 1)
    }

    /// Fills `buf`.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.fill(buf);
        Ok(buf.len())
    }
}

// ---------------------------------------------------------------------------
// Host facts

/// `readlink /proc/self/ns/NAME` of the test process.
pub fn host_ns(name: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The host's hostname (`/proc/sys/kernel/hostname`).
pub fn host_hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// Whether `path` is a regular file with no execute bit (for exit-126 checks).
pub fn is_non_executable_file(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 == 0)
        .unwrap_or(false)
}

/// Whether `path` is a character device.
pub fn is_char_device(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.file_type().is_char_device())
        .unwrap_or(false)
}

/// The successful execve calls in an `strace -f -o FILE` log: (pid, path).
pub fn successful_execves(log: &str) -> Vec<(String, String)> {
    let mut pending: std::collections::HashMap<String, String> = Default::default();
    let mut ok = Vec::new();
    for line in log.lines() {
        let mut parts = line.splitn(2, ' ');
        let pid = parts.next().unwrap_or("").to_string();
        let rest = parts.next().unwrap_or("").trim_start();
        let path_of = |s: &str| s.split('"').nth(1).unwrap_or("").to_string();
        if rest.starts_with("execve(") || rest.starts_with("execveat(") {
            if rest.ends_with("<unfinished ...>") {
                pending.insert(pid, path_of(rest));
            } else if rest.ends_with("= 0") {
                ok.push((pid, path_of(rest)));
            }
        } else if rest.starts_with("<... execve resumed>")
            || rest.starts_with("<... execveat resumed>")
        {
            let path = pending.remove(&pid).unwrap_or_default();
            if rest.ends_with("= 0") {
                ok.push((pid, path));
            }
        }
    }
    ok
}

/// Runs `n` tupper commands at once (released together by a barrier).
pub fn at_once(store: &TestStore, n: usize, args: impl Fn(usize) -> Vec<String>) -> Vec<Out> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let barrier = barrier.clone();
                let a = args(i);
                let mut c = store.cmd();
                c.args(&a);
                s.spawn(move || {
                    barrier.wait();
                    run_cmd(c, None, Duration::from_secs(120))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Whether this (test) process has capability `cap` (a `CAP_*` number)
/// in its effective set, as `tupper`, started by it as root, then has.
pub fn has_capability(cap: u32) -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    eff & (1 << cap) != 0
}
