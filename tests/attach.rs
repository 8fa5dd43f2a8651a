//! `tupper attach` / `detach`: a btrfs image file as the store, through a loop
//! device tupper attaches itself (LOOP_CTL_GET_FREE + LOOP_CONFIGURE).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn tupper_at(root: &Path, args: &[&str]) -> Out {
    let mut c = Command::new(TUPPER);
    c.arg("--root").arg(root).args(args).stdin(Stdio::null());
    run_cmd(c, None, DEFAULT_TIMEOUT)
}

/// A scratch directory removed on drop (after a lazy unmount of its store, if
/// a failed test left it mounted).
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let mnt = self.0.join("store");
        if !mounts_under(&mnt).is_empty() {
            let _ = Command::new("umount").arg("-l").arg(&mnt).status();
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn attach_runs_and_detach_leaves_nothing() {
    let dir = Scratch(std::env::temp_dir().join(format!("tupper-attach-{}", std::process::id())));
    fs::create_dir_all(&dir.0).unwrap();
    let img = dir.0.join("store.img");
    let root = dir.0.join("store");
    fs::File::create(&img).unwrap().set_len(512 << 20).unwrap();
    sh("mkfs.btrfs", &["-q", img.to_str().unwrap()]);

    // Not btrfs: refused, nothing attached or mounted.
    let junk = dir.0.join("junk.img");
    fs::write(&junk, vec![0u8; 1 << 20]).unwrap();
    tupper_at(&root, &["attach", junk.to_str().unwrap()]).fails(125);
    assert!(mounts_under(&root).is_empty());

    let out = tupper_at(&root, &["attach", img.to_str().unwrap()]).ok();
    assert!(out.contains("/dev/loop"), "{out}");
    let dev = out
        .trim()
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let backing = sh("losetup", &["-n", "-O", "BACK-FILE", &dev]);
    assert!(backing.contains("store.img"), "{dev}: {backing}");
    assert_eq!(mounts_under(&root), vec![root.clone()]);
    // Twice: refused.
    tupper_at(&root, &["attach", img.to_str().unwrap()]).fails(125);

    // A store that works: import, run --rm (which leaves background work).
    tupper_at(&root, &["import", "bb", busybox_tar().to_str().unwrap()]).ok();
    let hello = tupper_at(&root, &["run", "--rm", "--net", "none", "bb", "echo", "hi"]).ok();
    assert_eq!(hello, "hi\n");
    // The spare network namespaces are mounts below the store: detach
    // removes them too.
    let spares = || {
        mounts_under(&root)
            .iter()
            .any(|m| m.starts_with(root.join("netns")))
    };
    assert!(
        wait_for(std::time::Duration::from_secs(10), spares),
        "no spare network namespace: {:?}",
        mounts_under(&root)
    );

    // detach waits for tupper's own background processes, then unmounts.
    tupper_at(&root, &["detach"]).ok();
    assert!(mounts_under(&root).is_empty(), "still mounted");
    let gone = || !sh("losetup", &["-a"]).contains(img.to_str().unwrap());
    assert!(
        wait_for(std::time::Duration::from_secs(10), gone),
        "loop device left: {}",
        sh("losetup", &["-a"])
    );
}
