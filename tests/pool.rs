//! The pool of spare snapshots (issue 4): a spare is never handed out for an image
//! that was replaced or removed, never shows in `ps`, never leaks, is safe under
//! concurrent runs and after a crashed refill, and `rmi` cleans it up.

mod common;

use std::fs;
use std::process::Stdio;

use common::*;

/// The pool directory (`pool/UUID`) of image `name`, from libbtrfsutil's UUID.
fn pool_dir(store: &TestStore, name: &str) -> std::path::PathBuf {
    let out = sh(
        "btrfs",
        &[
            "subvolume",
            "show",
            store.image_path(name).to_str().unwrap(),
        ],
    );
    let uuid = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("UUID:"))
        .expect("btrfs subvolume show prints the UUID")
        .trim()
        .replace('-', "");
    store.root().join("pool").join(uuid)
}

/// The ready spares in pool directory `dir` (not its `.new` staging directory).
fn spares_in(dir: &std::path::Path) -> Vec<String> {
    list_dir(dir).into_iter().filter(|s| is_id(s)).collect()
}

#[test]
fn import_fills_the_pool_and_spares_are_not_containers() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let spares = store.pool_spares();
    assert_eq!(spares.len(), tupper::pool::configured_size(), "{spares:?}");
    let dir = pool_dir(&store, "bb");
    assert!(
        dir.is_dir(),
        "no pool for the image's UUID at {}",
        dir.display()
    );
    assert!(store.ps_json(true).is_empty(), "spares show in ps");
    assert!(store.container_ids().is_empty());
    // A spare is a snapshot of the image, mount points ready.
    for s in spares_in(&dir) {
        let p = dir.join(&s);
        assert!(p.join("bin/busybox").is_file());
        for mp in ["proc", "sys", "dev"] {
            assert!(p.join(mp).is_dir(), "spare {s} lacks /{mp}");
        }
    }
}

#[test]
fn a_run_takes_a_spare_and_the_pool_refills() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let dir = pool_dir(&store, "bb");
    let spare_uuids: Vec<_> = spares_in(&dir)
        .iter()
        .map(|s| subvol_info(&dir.join(s)).1)
        .collect();
    let out = store.tupper(&["run", "--net", "none", "bb", "sh", "-c", "echo hi > /mark"]);
    out.ok();
    let ids = store.container_ids();
    assert_eq!(ids.len(), 1);
    // The container is one of the spares that were there, moved, not a new snapshot.
    let (ro, uuid, parent) = subvol_info(&store.container_path(&ids[0]));
    assert!(
        spare_uuids.contains(&uuid),
        "container {} was not one of the spares",
        ids[0]
    );
    assert!(!ro, "the container's snapshot is read-only");
    // Its parent is the image, as for a direct snapshot.
    let (_, img_uuid, _) = subvol_info(&store.image_path("bb"));
    assert_eq!(parent, Some(img_uuid));
    // The pool is still above half: no refill for one spare less.
    let size = tupper::pool::configured_size();
    assert_eq!(store.pool_spares().len(), size - 1);
    // A --rm run refills it in the background after it ends.
    store.run_rm("bb", &["true"]).ok();
    let spares = store.pool_spares();
    assert_eq!(spares.len(), size, "{spares:?}");
    store.tupper(&["rm", &ids[0]]).ok();
}

#[test]
fn a_replaced_image_never_hands_out_an_old_spare() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let old_pool = pool_dir(&store, "bb");
    assert!(old_pool.is_dir());
    // The new image: the same root plus a marker, imported as a directory.
    let src = store.scratch().join("newroot");
    sh("mkdir", &["-p", src.to_str().unwrap()]);
    sh(
        "tar",
        &[
            "-C",
            src.to_str().unwrap(),
            "-xf",
            busybox_tar().to_str().unwrap(),
        ],
    );
    fs::write(src.join("VERSION"), "2\n").unwrap();
    store
        .tupper(&["import", "--force", "bb", src.to_str().unwrap()])
        .ok();
    store.settle_pool();
    assert!(
        !old_pool.exists(),
        "the replaced image's pool is still there"
    );
    for _ in 0..3 {
        let v = store.sh_in("bb", "cat /VERSION");
        assert_eq!(v.trim(), "2", "a run used the replaced image");
    }
    // Only the new image's pool holds spares.
    let new_pool = pool_dir(&store, "bb");
    for s in store.pool_spares() {
        assert!(
            store.root().join(&s).starts_with(&new_pool),
            "spare {s} is not of the new image"
        );
    }
    store.assert_no_leftovers();
}

#[test]
fn rmi_destroys_the_spares() {
    let store = TestStore::new();
    store.import_busybox("bb");
    assert!(!store.pool_spares().is_empty());
    store.tupper(&["rmi", "bb"]).ok();
    let left: Vec<String> = store.all_subvolumes();
    assert!(left.is_empty(), "subvolumes left after rmi: {left:?}");
    let pool = list_dir(&store.root().join("pool"));
    assert!(pool.is_empty(), "pool entries left after rmi: {pool:?}");
}

/// Several `rmi` at once, each cleaning every pool whose image is gone: all
/// succeed, and no lock file outlives its pool (one that raced the process
/// destroying its pool re-made the lock file; one left by a crash goes too).
#[test]
fn concurrent_rmi_all_succeed_and_leave_no_pool_lock() {
    let store = TestStore::new();
    let names: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
    for n in &names {
        tupper_pool4(&store, &["import", n, busybox_tar().to_str().unwrap()]).ok();
    }
    store.settle_pool();
    let pool = store.root().join("pool");
    fs::write(pool.join("0123456789abcdef0123456789abcdef.lock"), "").unwrap();
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            store
                .cmd()
                .args(["rmi", n])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "rmi failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(store.image_names().is_empty());
    let left = list_dir(&pool);
    assert!(left.is_empty(), "pool entries left after rmi: {left:?}");
    assert!(
        store.all_subvolumes().is_empty(),
        "{:?}",
        store.all_subvolumes()
    );
}

#[test]
fn a_crashed_refill_is_cleaned_by_the_next_one() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let dir = pool_dir(&store, "bb");
    // What a refill killed between its snapshot and its rename leaves behind.
    fs::create_dir_all(dir.join(".new")).unwrap();
    let leftover = dir.join(".new").join("0123456789ab");
    snapshot_image_to(&store, "bb", &leftover);
    // A run takes a spare and starts a refill, which removes the leftover.
    store.run_rm("bb", &["true"]).ok();
    store.settle_pool();
    assert!(
        !leftover.exists(),
        "the crashed refill's spare is still there"
    );
    assert_eq!(spares_in(&dir).len(), tupper::pool::configured_size());
    store.assert_no_leftovers();
}

/// A snapshot of image `name` at `path`, made by btrfs-progs (what a refill
/// killed between its snapshot and its rename leaves behind).
fn snapshot_image_to(store: &TestStore, name: &str, path: &std::path::Path) {
    sh(
        "btrfs",
        &[
            "-q",
            "subvolume",
            "snapshot",
            store.image_path(name).to_str().unwrap(),
            path.to_str().unwrap(),
        ],
    );
}

/// Transaction commits of the store's filesystem so far (the kernel's
/// `/sys/fs/btrfs/FSID/commit_stats`, FSID from `btrfs filesystem show`).
fn commits(store: &TestStore) -> u64 {
    let show = sh("btrfs", &["filesystem", "show", store.root_str()]);
    let fsid = show
        .split_whitespace()
        .skip_while(|w| *w != "uuid:")
        .nth(1)
        .expect("btrfs filesystem show prints the uuid");
    let stats = fs::read_to_string(format!("/sys/fs/btrfs/{fsid}/commit_stats")).unwrap();
    stats
        .lines()
        .find_map(|l| l.strip_prefix("commits "))
        .expect("commit_stats has a commits line")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_refill_makes_spares_side_by_side_sharing_commits() {
    let store = TestStore::new();
    let before = commits(&store);
    store.import_busybox("bb");
    let made = spares_in(&pool_dir(&store, "bb")).len() as u64;
    let spent = commits(&store) - before;
    assert_eq!(made, tupper::pool::configured_size() as u64);
    // One snapshot ioctl at a time pays a commit each (at least `made`, plus
    // the import's own); side by side they share them.
    assert!(
        spent * 2 < made,
        "{made} spares (and the import) took {spent} commits"
    );
    // The refill's staging slots went with it.
    let staging = list_dir(&pool_dir(&store, "bb").join(".new"));
    assert!(staging.is_empty(), "left in .new: {staging:?}");
}

#[test]
fn a_refill_killed_in_a_staging_slot_is_cleaned_by_the_next_one() {
    let (store, dir) = store_with_pool_of_4();
    // What a refill worker killed between its snapshot and its rename
    // leaves behind: a half-made spare in its slot.
    let slot = dir.join(".new").join("3");
    fs::create_dir_all(&slot).unwrap();
    let leftover = slot.join("0123456789ab");
    snapshot_image_to(&store, "bb", &leftover);
    tupper_pool4(&store, &["run", "--rm", "--net", "none", "bb", "true"]).ok();
    store.settle_pool();
    assert!(!slot.exists(), "the killed worker's slot is still there");
    assert_eq!(spares_in(&dir).len(), 4);
    // And `rmi` cleans a slot just as well.
    fs::create_dir_all(&slot).unwrap();
    snapshot_image_to(&store, "bb", &leftover);
    tupper_pool4(&store, &["rmi", "bb"]).ok();
    let left = store.all_subvolumes();
    assert!(left.is_empty(), "subvolumes left after rmi: {left:?}");
    store.assert_no_leftovers();
}

#[test]
fn a_held_refill_lock_keeps_other_refills_out() {
    let (store, dir) = store_with_pool_of_4();
    let lock = dir.with_extension("lock");
    assert!(lock.is_file(), "no refill lock at {}", lock.display());
    // Hold the lock (as a refill would) while runs drain the pool.
    let held = rustix::fs::open(
        &lock,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    for _ in 0..6 {
        // More runs than spares: the last ones snapshot directly, and work.
        tupper_pool4(&store, &["run", "--rm", "--net", "none", "bb", "true"]).ok();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        spares_in(&dir).is_empty(),
        "a refill ran while the lock was held"
    );
    drop(held);
    // With the lock free again, the next run's refill fills the pool.
    tupper_pool4(&store, &["run", "--rm", "--net", "none", "bb", "true"]).ok();
    store.settle_pool();
    assert_eq!(spares_in(&dir).len(), 4, "{:?}", list_dir(&dir));
}

#[test]
fn concurrent_runs_never_share_a_spare() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let n = 12; // more than the pool holds: some take spares, some snapshot
    let children: Vec<_> = (0..n)
        .map(|i| {
            let mut c = store.cmd();
            c.args(["run", "--rm", "--net", "none", "bb", "sh", "-c"]);
            c.arg(format!(
                "touch /mine-{i}; sleep 0.3; ls / | grep -c '^mine-'"
            ));
            c.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "1",
            "a container saw another's file"
        );
    }
    store.assert_no_leftovers();
}

#[test]
fn pool_size_zero_turns_it_off() {
    let store = TestStore::new();
    let tar = busybox_tar();
    let mut c = store.cmd();
    c.env("TUPPER_POOL", "0")
        .args(["import", "bb", tar.to_str().unwrap()]);
    assert!(c.status().unwrap().success());
    let mut c = store.cmd();
    c.env("TUPPER_POOL", "0")
        .args(["run", "--rm", "--net", "none", "bb", "true"]);
    assert!(c.status().unwrap().success());
    let pool = store.root().join("pool");
    let spares: Vec<String> = list_dir(&pool)
        .into_iter()
        .filter(|e| !e.ends_with(".lock"))
        .flat_map(|k| list_dir(&pool.join(k)))
        .collect();
    assert!(spares.is_empty(), "{spares:?}");
}

/// `tupper ARGS` with `TUPPER_POOL=SIZE`.
fn tupper_pool(store: &TestStore, size: usize, args: &[&str]) -> Out {
    let mut c = store.cmd();
    c.env("TUPPER_POOL", size.to_string()).args(args);
    run_cmd(c, None, DEFAULT_TIMEOUT)
}

/// `tupper ARGS` with `TUPPER_POOL=4`.
fn tupper_pool4(store: &TestStore, args: &[&str]) -> Out {
    tupper_pool(store, 4, args)
}

/// A store with image `bb` and its (settled) pool of `size` spares, and the
/// pool's directory.
fn store_with_pool_of(size: usize) -> (TestStore, std::path::PathBuf) {
    let store = TestStore::new();
    tupper_pool(
        &store,
        size,
        &["import", "bb", busybox_tar().to_str().unwrap()],
    )
    .ok();
    store.settle_pool();
    let dir = pool_dir(&store, "bb");
    assert_eq!(spares_in(&dir).len(), size);
    (store, dir)
}

/// A store with image `bb` and its (settled) pool of 4 spares, and the pool's directory.
fn store_with_pool_of_4() -> (TestStore, std::path::PathBuf) {
    store_with_pool_of(4)
}

/// While starts go on ([`Busy`]): `runs` kept containers (`TUPPER_POOL=size`),
/// then `wait_ms`; returns the ready spares in pool `dir` at that moment.
fn spares_after_kept_runs_while_busy(
    store: &TestStore,
    dir: &std::path::Path,
    size: usize,
    runs: usize,
    wait_ms: u64,
) -> (usize, std::time::Duration) {
    let busy = Busy::new(store);
    for _ in 0..runs {
        tupper_pool(store, size, &["run", "--net", "none", "bb", "true"]).ok();
    }
    std::thread::sleep(std::time::Duration::from_millis(wait_ms));
    let during = spares_in(dir).len();
    let gap = busy.longest_gap();
    drop(busy);
    (during, gap)
}

/// Once starts stop, the refill fills pool `dir` back to `size`; then the
/// kept containers are removed and nothing is left.
fn refilled_then_clean(store: &TestStore, dir: &std::path::Path, size: usize) {
    store.settle_pool();
    assert_eq!(spares_in(dir).len(), size, "{:?}", list_dir(dir));
    for id in store.container_ids() {
        store.tupper(&["rm", &id]).ok();
    }
    store.assert_no_leftovers();
}

/// Bytes of `file` in the page cache, as util-linux's `fincore` (mincore(2)) sees them.
fn bytes_cached(file: &std::path::Path) -> u64 {
    let out = sh(
        "fincore",
        &[
            "--bytes",
            "--noheadings",
            "--output",
            "RES",
            file.to_str().unwrap(),
        ],
    );
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("fincore said {out:?}"))
}

#[test]
fn a_spare_is_warmed_its_shell_is_in_the_page_cache() {
    // A spare's files are new inodes: only the refill's warming puts the
    // image's /bin/sh (busybox) into their page cache before a run needs it.
    let (_store, dir) = store_with_pool_of_4();
    let spares = spares_in(&dir);
    assert_eq!(spares.len(), 4);
    for s in spares {
        let busybox = dir.join(&s).join("bin/busybox");
        let size = fs::metadata(&busybox).unwrap().len();
        let cached = bytes_cached(&busybox);
        assert!(
            cached * 10 >= size * 9,
            "spare {s}: {cached} of {size} bytes of /bin/busybox cached"
        );
    }
}

#[test]
fn a_pool_below_half_is_refilled_while_the_command_runs() {
    let (store, dir) = store_with_pool_of_4();
    let tupper4 = |args: &[&str]| tupper_pool4(&store, args);
    assert_eq!(spares_in(&dir).len(), 4);
    // Containers that stay (no --rm): 4 -> 3 -> 2 leave the pool at half, no refill.
    tupper4(&["run", "--net", "none", "bb", "true"]).ok();
    tupper4(&["run", "--net", "none", "bb", "true"]).ok();
    store.settle_pool();
    assert_eq!(spares_in(&dir).len(), 2);
    // 2 -> 1 is below half: the run forks a refill, which fills it up again.
    tupper4(&["run", "--net", "none", "bb", "true"]).ok();
    refilled_then_clean(&store, &dir, 4);
}

#[test]
fn a_refill_waits_for_a_quiet_moment_between_starts() {
    let (store, dir) = store_with_pool_of_4();
    let tupper4 = |args: &[&str]| tupper_pool4(&store, args);
    let busy = Busy::new(&store);
    // A --rm run takes a spare (4 -> 3, at least half) and forks a refill
    // after it ends.
    tupper4(&["run", "--rm", "--net", "none", "bb", "true"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let during = spares_in(&dir).len();
    drop(busy);
    assert_eq!(during, 3, "the refill made a spare while starts went on");
    // Quiet again: the refill fills the pool.
    store.settle_pool();
    assert_eq!(spares_in(&dir).len(), 4, "{:?}", list_dir(&dir));
    store.assert_no_leftovers();
}

/// Waits (at most 15 s) until no background process of the store runs.
fn background_ended(store: &TestStore) {
    let start = std::time::Instant::now();
    while !store.refillers().is_empty() && start.elapsed() < std::time::Duration::from_secs(15) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        store.refillers().is_empty(),
        "background processes still run"
    );
}

#[test]
fn the_trash_is_emptied_between_starts_and_at_most_2_s_late() {
    let (store, _dir) = store_with_pool_of_4();
    let trash = store.root().join("trash");
    let busy = Busy::new(&store);
    // A --rm run leaves its snapshot in the trash; its background process
    // destroys it only once no container has started for 20 ms.
    tupper_pool4(&store, &["run", "--rm", "--net", "host", "bb", "true"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let during = list_dir(&trash);
    // ... and waits 2 s at most: a sustained run of starts still gets it
    // emptied, starts going on all along.
    let waited = std::time::Instant::now();
    while !list_dir(&trash).is_empty() && waited.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let left = list_dir(&trash);
    drop(busy);
    assert_eq!(
        during.len(),
        1,
        "the snapshot was destroyed while starts went on: {during:?}"
    );
    assert!(left.is_empty(), "still in the trash 10 s later: {left:?}");
    store.settle_pool();
    store.assert_no_leftovers();
}

#[test]
fn one_process_empties_the_trash_and_the_next_takes_what_was_left() {
    let (store, _dir) = store_with_pool_of_4();
    let trash = store.root().join("trash");
    // Somebody empties the trash already (holds ROOT/trash.lock): a run's
    // background process leaves its snapshot there and ends.
    let held = rustix::fs::open(
        store.root().join("trash.lock"),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CREATE | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    tupper_pool4(&store, &["run", "--rm", "--net", "none", "bb", "true"]).ok();
    background_ended(&store);
    let waiting = list_dir(&trash);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    drop(held);
    // The next run's background process destroys both snapshots.
    tupper_pool4(&store, &["run", "--rm", "--net", "none", "bb", "true"]).ok();
    store.settle_pool();
    let left = list_dir(&trash);
    assert!(left.is_empty(), "left in the trash: {left:?}");
    store.assert_no_leftovers();
}

#[test]
fn below_a_quarter_a_batch_is_made_then_the_refill_waits_again() {
    let (store, dir) = store_with_pool_of(16);
    assert_eq!(tupper::pool::low_water(16), 4);
    // Kept containers drain the pool below its low-water mark of 4 while
    // starts go on: the refill's workers then make one batch at once (at
    // most one spare each), and wait for a quiet moment before the rest.
    let (during, gap) = spares_after_kept_runs_while_busy(&store, &dir, 16, 14, 700);
    assert!(
        during >= 3,
        "{during} spares while starts went on: {:?}",
        list_dir(&dir)
    );
    // A full pool means the refill did not wait: unless the starts left it
    // a quiet moment (20 ms without one: the busy thread's rename waited
    // for a commit, or was not scheduled on a loaded machine).
    assert!(
        during < 16 || gap >= std::time::Duration::from_millis(20),
        "{during} spares while starts went on, none more than {gap:?} apart: {:?}",
        list_dir(&dir)
    );
    refilled_then_clean(&store, &dir, 16);
}

#[test]
fn a_pool_below_a_quarter_is_refilled_even_while_starts_go_on() {
    let (store, dir) = store_with_pool_of_4();
    assert_eq!(tupper::pool::low_water(4), 1);
    // Containers that stay drain the pool to 0 while starts go on. Down to 1
    // spare the refill (forked below half) waits for a quiet moment; at 0,
    // below the low-water mark, its workers make a batch of spares at once
    // (side by side, sharing a commit), without waiting for one.
    let (during, _) = spares_after_kept_runs_while_busy(&store, &dir, 4, 4, 1000);
    assert!(
        during >= 1,
        "no spare made while starts went on: {:?}",
        list_dir(&dir)
    );
    refilled_then_clean(&store, &dir, 4);
}

/// The pids of the zombie children of process `parent`.
fn zombie_children(parent: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        // After the comm: state ppid ...
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        if f.first() == Some(&"Z") && f.get(1) == Some(&parent.to_string().as_str()) {
            v.push(pid);
        }
    }
    v
}

#[test]
fn no_refill_is_forked_while_one_holds_the_lock() {
    let (store, dir) = store_with_pool_of_4();
    let lock = dir.with_extension("lock");
    let held = rustix::fs::open(
        &lock,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    // 4 -> 3 -> 2 -> 1: the pool is low for the next start.
    for _ in 0..3 {
        tupper_pool4(&store, &["run", "--net", "none", "bb", "true"]).ok();
    }
    let mut c = store.cmd();
    c.env("TUPPER_POOL", "4")
        .args(["run", "--net", "none", "bb", "sh", "-c", "echo up; sleep 2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut run = c.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(run.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "up");
    // A background process forked now would find the lock taken, end at
    // once, and stay a zombie of this `tupper run` until its container ends.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let zombies = zombie_children(run.id());
    assert!(run.wait().unwrap().success());
    assert!(zombies.is_empty(), "zombie children: {zombies:?}");
    drop(held);
    for id in store.container_ids() {
        store.tupper(&["rm", &id]).ok();
    }
    store.settle_pool();
    store.assert_no_leftovers();
}
