//! The pool of spare network namespaces (`tupper::netns_pool`): each spare is
//! taken by one container only, holds nothing but `lo` (up), a crashed refill's
//! leftover is removed, and a failed start or `detach` leaves no mount behind.

mod common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::PathBuf;

use common::*;

/// The store's spares by network namespace id (`net:[INODE]`'s INODE; unique
/// among the namespaces that exist, reused after one is gone).
fn spare_ids(store: &TestStore) -> HashMap<u64, PathBuf> {
    store
        .netns_spare_ids()
        .into_iter()
        .map(|(p, id)| (id, p))
        .collect()
}

/// `net:[INODE]` -> INODE.
fn ns_id(link: &str) -> u64 {
    link.trim()
        .strip_prefix("net:[")
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a netns link: {link:?}"))
}

#[test]
fn import_makes_spares_and_each_is_taken_by_one_container() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let spares = spare_ids(&store);
    assert_eq!(
        spares.len(),
        tupper::netns_pool::DEFAULT_SIZE,
        "{:?}",
        store.netns_spares()
    );
    let host = ns_id(
        &fs::read_link("/proc/self/ns/net")
            .unwrap()
            .to_string_lossy(),
    );
    assert!(!spares.contains_key(&host));
    // The spares are mounts in a mount namespace of their own: the host's
    // has one mount for all of them (each of its mounts costs every new
    // mount namespace on the machine a copy).
    assert_eq!(
        mounts_under(store.root()),
        vec![store.root().to_path_buf(), store.holder()]
    );

    // Six at once: each prints its namespace and its links, and lives on
    // for a second, so that all six run at the same time.
    let script = "readlink /proc/self/ns/net; ip -o link | cut -d' ' -f2,3; sleep 1";
    let outs = at_once(&store, 6, |_| {
        ["run", "--rm", "--net", "none", "bb", "sh", "-c", script]
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let mut seen = Vec::new();
    for out in outs {
        let text = out.ok();
        let mut lines = text.lines();
        seen.push(ns_id(lines.next().unwrap()));
        let links: Vec<&str> = lines.collect();
        assert_eq!(links, ["lo: <LOOPBACK,UP,LOWER_UP>"], "{text}");
    }
    let distinct: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), 6, "a namespace was shared: {seen:?}");
    assert!(!distinct.contains(&host));
    assert!(
        distinct.iter().all(|id| spares.contains_key(id)),
        "not all from the pool: {seen:?} against {spares:?}"
    );
    // The taken ones left the pool (their files; a new namespace may get a
    // freed id again); the refill made new ones.
    store.settle_pool();
    let now: HashSet<PathBuf> = store.netns_spares().into_iter().collect();
    for id in &distinct {
        assert!(
            !now.contains(&spares[id]),
            "taken spare {} is still in the pool",
            spares[id].display()
        );
    }
    assert_eq!(now.len(), tupper::netns_pool::DEFAULT_SIZE);
    store.assert_no_leftovers();
}

#[test]
fn a_plain_spare_is_claimed_and_unmounted_by_a_later_refill_in_a_quiet_moment() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let before: HashMap<u64, PathBuf> = store
        .netns_spare_ids_with_taken()
        .into_iter()
        .map(|(p, id)| (id, p))
        .collect();
    // While starts go on, the run's background process leaves the spare it
    // took mounted, claimed by `ID.taken`: no unmount on a start's path.
    let busy = Busy::new(&store);
    let out = store.run_rm("bb", &["readlink", "/proc/self/ns/net"]).ok();
    let ns = ns_id(&out);
    let spare = before
        .get(&ns)
        .unwrap_or_else(|| panic!("net:[{ns}] was not a spare: {before:?}"))
        .clone();
    let id = spare.file_name().unwrap().to_string_lossy().into_owned();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let taken = store.netns_taken();
    let still_mounted = store
        .netns_spare_ids_with_taken()
        .iter()
        .any(|(p, _)| *p == spare);
    let offered = store.netns_spares().contains(&spare);
    drop(busy);
    assert_eq!(taken, vec![id.clone()], "the claims while starts went on");
    assert!(
        still_mounted,
        "{} was unmounted while starts went on",
        spare.display()
    );
    assert!(!offered, "a taken spare is counted as a spare");
    // Quiet again: a refill unmounts it, removes its claim, and makes a new one.
    store.settle_pool();
    assert!(store.netns_taken().is_empty(), "{:?}", store.netns_taken());
    let now = store.netns_spare_ids_with_taken();
    assert!(
        now.iter().all(|(p, _)| *p != spare),
        "{} is still mounted",
        spare.display()
    );
    assert_eq!(now.len(), tupper::netns_pool::DEFAULT_SIZE);
    store.assert_no_leftovers();
}

#[test]
fn a_claimed_spare_is_never_handed_out() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let spares = store.netns_spare_ids();
    assert_eq!(spares.len(), tupper::netns_pool::DEFAULT_SIZE);
    // Claims on all spares but one, and one whose spare is gone (what a
    // taker that lost the race to a cleaning leaves for an instant).
    let (free, claimed) = spares.split_first().unwrap();
    let names: Vec<String> = claimed
        .iter()
        .map(|(p, _)| format!("{}.taken", p.display()))
        .collect();
    store.holder_sh(&format!(
        "$B touch {} /plain/0123456789ab.taken",
        names.join(" ")
    ));
    let out = store.run_rm("bb", &["readlink", "/proc/self/ns/net"]).ok();
    assert_eq!(ns_id(&out), free.1, "not the one spare nobody claimed");
    // The refill (the pool ran dry) removes the claimed spares and both
    // kinds of claims, and fills the pool again.
    store.settle_pool();
    assert!(store.netns_taken().is_empty(), "{:?}", store.netns_taken());
    let left = store.holder_sh("$B ls -a /plain");
    assert!(!left.contains(".taken"), "claims left: {left}");
    let now = store.netns_spare_ids_with_taken();
    assert!(
        now.iter()
            .all(|(p, _)| claimed.iter().all(|(c, _)| c != p) && *p != free.0),
        "a taken spare is still mounted: {now:?}"
    );
    assert_eq!(now.len(), tupper::netns_pool::DEFAULT_SIZE);
    store.assert_no_leftovers();
}

/// Leaves what `script` makes in the holder, runs a container (its
/// background process refills), and checks that `dir/name` is gone from the
/// holder and the pool is full again.
fn the_next_refill_removes(script: &str, dir: &str, name: &str) {
    let store = TestStore::new();
    store.import_busybox("bb");
    store.holder_sh(script);
    store.sh_in("bb", "true");
    store.settle_pool();
    let left = store.holder_sh(&format!("$B ls {dir}"));
    assert!(
        !left.lines().any(|l| l == name),
        "{dir}/{name} is still there: {left}"
    );
    assert_eq!(store.netns_spares().len(), tupper::netns_pool::DEFAULT_SIZE);
    store.assert_no_leftovers();
}

#[test]
fn a_crashed_refills_file_is_removed_by_the_next_refill() {
    // What a refill that died between the file and its mount leaves (in
    // the holder's mount namespace, where the spares are).
    the_next_refill_removes("$B touch /plain/0123456789ab", "/plain", "0123456789ab");
}

#[test]
fn a_plain_spare_of_the_layout_before_plain_is_removed_by_the_next_refill() {
    // A tupper from before `/plain` kept plain spares in the holder's `/`
    // (here: a bind mount of a namespace file, as its refill made them).
    the_next_refill_removes(
        "$B touch /0123456789ab && $B mount --bind /proc/self/ns/net /0123456789ab",
        "/",
        "0123456789ab",
    );
}

#[test]
fn pool_size_zero_turns_it_off() {
    let store = TestStore::new();
    let mut c = store.cmd();
    c.env("TUPPER_NETNS_POOL", "0")
        .args(["import", "bb", busybox_tar().to_str().unwrap()]);
    run_cmd(c, None, DEFAULT_TIMEOUT).ok();
    store.settle_pool();
    let mut c = store.cmd();
    c.env("TUPPER_NETNS_POOL", "0").args([
        "run",
        "--rm",
        "--net",
        "none",
        "bb",
        "readlink",
        "/proc/self/ns/net",
    ]);
    let out = run_cmd(c, None, DEFAULT_TIMEOUT).ok();
    store.settle_pool();
    assert!(
        store.netns_spares().is_empty(),
        "{:?}",
        store.netns_spares()
    );
    let host = fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(
        out.trim(),
        host.to_string_lossy(),
        "ran in the host's namespace"
    );
}
