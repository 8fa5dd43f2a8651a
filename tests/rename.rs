//! `tupper rename`: a container's name changes, running or not, and its end
//! is recorded (or its removal done) under the new name; a rename cut short
//! leaves a name link that nothing trusts.

mod common;

use common::*;
use std::path::PathBuf;

/// The names in `state/names`, each with the ID it points to.
fn name_links(store: &TestStore) -> Vec<(String, String)> {
    let dir = store.root().join("state/names");
    list_dir(&dir)
        .into_iter()
        .map(|n| {
            let target = std::fs::read_link(dir.join(&n)).unwrap();
            (n, target.display().to_string())
        })
        .collect()
}

/// The record of container `name` in `ps -a --json`, if listed.
fn listed(store: &TestStore, name: &str) -> Option<serde_json::Value> {
    store.ps_json(true).into_iter().find(|r| r["name"] == name)
}

#[test]
fn a_stopped_container_gets_a_new_name_and_frees_the_old() {
    let store = store_with_busybox();
    store
        .tupper(&["run", "--net", "none", "--name", "a", "bb", "true"])
        .ok();
    let id = listed(&store, "a").expect("a")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(store.tupper(&["rename", "a", "b"]).ok(), "");
    assert_eq!(name_links(&store), [("b".to_string(), id.clone())]);
    let b = listed(&store, "b").expect("b listed");
    assert_eq!(b["id"], id.as_str());
    assert_eq!(b["status"], "exited", "{b}");
    assert!(listed(&store, "a").is_none());
    let line = store.tupper(&["inspect", "a"]).fails(125);
    assert!(line.contains("no such container: a"), "{line}");
    // By ID too, and the old name is free for another container.
    store.tupper(&["rename", &id, "c"]).ok();
    store
        .tupper(&["run", "--net", "none", "--name", "a", "bb", "true"])
        .ok();
    // Refusals change nothing.
    let before = name_links(&store);
    let line = store.tupper(&["rename", "c", "a"]).fails(125);
    assert!(
        line.contains("container name a is already in use"),
        "{line}"
    );
    let line = store.tupper(&["rename", "c", "c"]).fails(125);
    assert!(line.contains("already named c"), "{line}");
    let line = store.tupper(&["rename", "c", "Bad Name"]).fails(125);
    assert!(line.contains("invalid container name"), "{line}");
    let line = store.tupper(&["rename", "nobody", "x"]).fails(125);
    assert!(line.contains("no such container"), "{line}");
    let line = store.tupper(&["rename", "c"]).fails(125);
    assert!(line.contains("rename takes"), "{line}");
    assert_eq!(name_links(&store), before);
    store.tupper(&["rm", "a", "c"]).ok();
    assert!(name_links(&store).is_empty());
    store.assert_no_leftovers();
}

#[test]
fn a_running_container_ends_under_its_new_name() {
    let store = store_with_busybox();
    let id = store.detached(&["--name", "r"], &["sleep", "1000"]);
    store.tupper(&["rename", "r", "s"]).ok();
    assert_eq!(listed(&store, "s").expect("s")["status"], "running");
    // Its run records the end with the name it has now.
    store.tupper(&["stop", "-t", "0", "s"]).ok();
    let s = listed(&store, "s").expect("s after its end");
    assert_eq!(s["status"], "exited", "{s}");
    assert_eq!(s["exit_code"], 137, "{s}");
    assert_eq!(name_links(&store), [("s".to_string(), id)]);
    store.tupper(&["rm", "s"]).ok();
    // A --rm container renamed while it runs leaves no name behind.
    store.detached(&["--rm", "--name", "t"], &["sleep", "1000"]);
    store.tupper(&["rename", "t", "u"]).ok();
    store.tupper(&["stop", "-t", "0", "u"]).ok();
    assert!(store.ps_json(true).is_empty());
    assert!(name_links(&store).is_empty(), "{:?}", name_links(&store));
    store.assert_no_leftovers();
}

#[test]
fn a_name_link_its_record_does_not_confirm_is_a_leftover() {
    let store = store_with_busybox();
    store
        .tupper(&["run", "--net", "none", "--name", "kept", "bb", "true"])
        .ok();
    let id = listed(&store, "kept").expect("kept")["id"]
        .as_str()
        .unwrap()
        .to_string();
    // As a rename cut short after it claimed "stale" leaves it.
    let link: PathBuf = store.root().join("state/names/stale");
    std::os::unix::fs::symlink(&id, &link).unwrap();
    let line = store.tupper(&["inspect", "stale"]).fails(125);
    assert!(line.contains("no such container: stale"), "{line}");
    let line = store.tupper(&["rm", "stale"]).fails(125);
    assert!(line.contains("no such container"), "{line}");
    // The next claim takes it over; the container keeps its own name.
    store
        .tupper(&["run", "--net", "none", "--name", "stale", "bb", "true"])
        .ok();
    let stale = listed(&store, "stale").expect("the new stale");
    assert_ne!(stale["id"], id.as_str());
    assert_eq!(listed(&store, "kept").expect("kept")["id"], id.as_str());
    store.tupper(&["rm", "stale", "kept"]).ok();
    assert!(name_links(&store).is_empty());
    store.assert_no_leftovers();
}
