//! `commit`: an image made of a container's files, as a read-only snapshot
//! of its snapshot (libbtrfsutil confirms what the ioctl made).

mod common;

use common::*;

#[test]
fn commit_makes_a_read_only_image_of_the_containers_files() {
    let store = store_with_busybox();
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "maker",
            "bb",
            "sh",
            "-c",
            "echo made > /root/made; rm /bin/vi",
        ])
        .ok();
    let id = store.ps_json(true)[0]["id"].as_str().unwrap().to_string();
    store.tupper(&["commit", "maker", "made"]).ok();
    // A read-only subvolume whose parent is the container's snapshot.
    let (ro, _, parent) = subvol_info(&store.image_path("made"));
    assert!(ro, "the image is not read-only");
    let (_, container_uuid, _) = subvol_info(&store.container_path(&id));
    assert_eq!(parent, Some(container_uuid));
    let images: Vec<String> = store
        .images_json()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(images, ["bb", "made"]);
    // Its containers start from those files; the original image is as it was.
    assert_eq!(
        store.sh_in("made", "cat /root/made; test -e /bin/vi || echo no vi"),
        "made\nno vi\n"
    );
    assert_eq!(
        store.sh_in("bb", "test -e /root/made || echo clean"),
        "clean\n"
    );
    // The container and the image are independent: both can go, either order.
    store.tupper(&["rm", "maker"]).ok();
    assert_eq!(store.sh_in("made", "cat /root/made"), "made\n");
    store.tupper(&["rmi", "made"]).ok();
    store.settle_pool();
    store.assert_no_leftovers();
}

#[test]
fn commit_of_a_running_container_and_force() {
    let store = store_with_busybox();
    let out = store
        .tupper(&[
            "run",
            "-d",
            "--net",
            "none",
            "--name",
            "live",
            "bb",
            "sh",
            "-c",
            "echo one > /root/v; sleep 100",
        ])
        .ok();
    assert!(is_id(out.trim()), "{out}");
    assert!(wait_for(std::time::Duration::from_secs(20), || store
        .tupper(&["exec", "live", "cat", "/root/v"])
        .stdout
        == "one\n"));
    store.tupper(&["commit", "live", "snap"]).ok();
    assert_eq!(store.sh_in("snap", "cat /root/v"), "one\n");
    // An existing image is replaced only with --force: before, nothing changes.
    store
        .tupper(&["exec", "live", "sh", "-c", "echo two > /root/v"])
        .ok();
    // Stopped (its files stay), so that the store can be compared at rest.
    store.tupper(&["kill", "live"]).ok();
    store.tupper(&["wait", "live"]).ok();
    let before = store.state();
    let line = store.tupper(&["commit", "live", "snap"]).fails(125);
    assert!(line.contains("image snap already exists"), "{line}");
    before.assert_same(&store.state(), "commit onto an existing image");
    store.tupper(&["commit", "--force", "live", "snap"]).ok();
    assert_eq!(store.sh_in("snap", "cat /root/v"), "two\n");
    store.tupper(&["rm", "live"]).ok();
    store.tupper(&["rmi", "snap"]).ok();
    store.settle_pool();
    store.assert_no_leftovers();
}

#[test]
fn bad_commits_are_one_line_errors_that_change_nothing() {
    let store = store_with_busybox();
    store
        .tupper(&["run", "--net", "none", "--name", "c", "bb", "true"])
        .ok();
    let before = store.state();
    for (args, says) in [
        (
            &["commit", "nosuch", "img"][..],
            "no such container: nosuch",
        ),
        (&["commit", "c", ".hidden"], "image name"),
        (&["commit", "c", "bb"], "image bb already exists"),
        (&["commit", "c"], "two arguments"),
    ] {
        let line = store.tupper(args).fails(125);
        assert!(line.contains(says), "{args:?}: {line}");
        before.assert_same(&store.state(), &format!("{args:?}"));
    }
    store.tupper(&["rm", "c"]).ok();
    store.assert_no_leftovers();
}
