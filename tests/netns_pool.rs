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
fn a_crashed_refills_file_is_removed_by_the_next_refill() {
    let store = TestStore::new();
    store.import_busybox("bb");
    // What a refill that died between the file and its mount leaves (in
    // the holder's mount namespace, where the spares are).
    store.holder_sh("$B touch /0123456789ab");
    store.sh_in("bb", "true");
    store.settle_pool();
    let left = store.holder_sh("$B ls /");
    assert!(
        !left.lines().any(|l| l == "0123456789ab"),
        "the leftover file is still there: {left}"
    );
    assert_eq!(store.netns_spares().len(), tupper::netns_pool::DEFAULT_SIZE);
    store.assert_no_leftovers();
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
