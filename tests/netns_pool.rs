//! The pool of spare network namespaces (`tupper::netns_pool`): each spare is
//! taken by one container only, holds nothing but `lo` (up), a crashed refill's
//! leftover is removed, and a failed start or `detach` leaves no mount behind.

mod common;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use common::*;

/// The network namespace ids (`net:[INODE]`'s INODE) of the store's spares.
fn spare_ids(store: &TestStore) -> HashSet<u64> {
    store
        .netns_spares()
        .iter()
        .map(|p| fs::metadata(p).expect("stat a spare namespace").ino())
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
    assert!(!spares.contains(&host));

    // Six at once: each prints its namespace and its links, and lives on
    // for a second, so that all six run at the same time.
    let mut children = Vec::new();
    for _ in 0..6 {
        let mut c = store.cmd();
        c.args([
            "run",
            "--rm",
            "--net",
            "none",
            "bb",
            "sh",
            "-c",
            "readlink /proc/self/ns/net; ip -o link | cut -d' ' -f2,3; sleep 1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        children.push(c.spawn().unwrap());
    }
    let mut seen = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines = text.lines();
        seen.push(ns_id(lines.next().unwrap()));
        let links: Vec<&str> = lines.collect();
        assert_eq!(links, ["lo: <LOOPBACK,UP,LOWER_UP>"], "{text}");
    }
    let distinct: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), 6, "a namespace was shared: {seen:?}");
    assert!(!distinct.contains(&host));
    assert!(
        distinct.is_subset(&spares),
        "not all from the pool: {seen:?} against {spares:?}"
    );
    // The taken ones left the pool; the refill made new ones.
    store.settle_pool();
    let now = spare_ids(&store);
    assert!(
        now.is_disjoint(&distinct),
        "a taken spare is still in the pool"
    );
    store.assert_no_leftovers();
}

#[test]
fn a_crashed_refills_file_is_removed_by_the_next_refill() {
    let store = TestStore::new();
    store.import_busybox("bb");
    // What a refill that died between the file and its mount leaves.
    let leftover = store.root().join("netns").join("0123456789ab");
    fs::write(&leftover, b"").unwrap();
    store.sh_in("bb", "true");
    store.settle_pool();
    assert!(!leftover.exists(), "the leftover file is still there");
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
