//! A container's mount namespace after the container ends (issue 4): the
//! library's `Container::hold_mount_namespace`, and the background process of
//! `run --rm`, which takes the unmounts out of tupper's exit.
//!
//! One test, alone in its binary: cargo runs test binaries one after another,
//! so no other test makes namespaces meanwhile. The kernel gives a new
//! namespace the lowest free inode number, so a namespace made by a test
//! running beside this one could take the number of the namespace this test
//! watches and look like it.

mod common;

use common::*;
use std::os::fd::AsRawFd;
use std::time::Duration;
use tupper::{Source, Spec, Store};

#[test]
fn a_containers_mount_namespace_is_held_then_let_go() {
    let store = TestStore::new();
    let lib = Store::open(store.root()).expect("open store");
    lib.import(
        "bb",
        &Source::Archive(busybox_tar().to_path_buf()),
        false,
        &mut |_| {},
    )
    .expect("import");
    store.settle_pool();
    let host_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();

    // The library: while the fd is open, the namespace outlives the container;
    // closing it ends it.
    let spec = Spec {
        image: "bb".into(),
        command: ["sh", "-c", "readlink /proc/self/ns/mnt > /ns"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..Default::default()
    };
    let mut container = lib.start(&spec).expect("start");
    let id = container.id().to_string();
    let hold = container
        .hold_mount_namespace()
        .expect("PIDFD_GET_MNT_NAMESPACE (Linux 6.11 or newer)");
    assert!(container.hold_mount_namespace().is_none(), "taken once");
    assert_eq!(container.wait().expect("wait"), 0);
    let ns = std::fs::read_to_string(store.container_path(&id).join("ns")).unwrap();
    let ns = ns.trim().to_string();
    assert!(
        ns.starts_with("mnt:[") && ns != host_ns.to_string_lossy(),
        "{ns}"
    );
    let held = std::fs::read_link(format!("/proc/self/fd/{}", hold.as_raw_fd())).unwrap();
    assert_eq!(held.to_string_lossy(), ns);
    assert_eq!(namespace_holders(&ns), vec![std::process::id() as i32]);
    drop(hold);
    assert_eq!(namespace_holders(&ns), Vec::<i32>::new());
    store.tupper(&["rm", &id]).ok();

    // The CLI: `run --rm` gives the namespace to the background process it
    // forks, which lets go of it as soon as tupper has exited. Soon after each
    // run nothing holds it: no process lives in it or keeps an fd of it.
    for _ in 0..5 {
        let ns = store.run_rm("bb", &["readlink", "/proc/self/ns/mnt"]).ok();
        let ns = ns.trim();
        assert!(
            ns.starts_with("mnt:[") && ns != host_ns.to_string_lossy(),
            "{ns}"
        );
        assert!(
            wait_for(Duration::from_secs(5), || namespace_holders(ns).is_empty()),
            "{ns} is still held by {:?}",
            namespace_holders(ns)
        );
    }
    store.settle_pool();
    store.assert_no_leftovers();
}
