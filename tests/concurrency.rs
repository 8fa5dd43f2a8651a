//! Many tupper processes at once on one store: 20 `run --rm` all succeed, each in
//! its own snapshot; `--name` races are settled by a lock (issue 2, "run",
//! concurrency).

mod common;

use common::*;

#[test]
fn twenty_run_rm_at_once_each_in_its_own_snapshot() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let outs = at_once(&store, 20, |i| {
        [
            "run",
            "--rm",
            "--net",
            "none",
            "bb",
            "sh",
            "-c",
            // Write a marker, give the others time to write theirs, then look.
            &format!("echo {i} > /marker-{i} && sleep 1 && ls / | grep marker; hostname"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    });
    let mut hostnames = std::collections::BTreeSet::new();
    for (i, out) in outs.iter().enumerate() {
        assert_eq!(out.code, 0, "run {i} failed: {out:?}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "run {i}: {out:?}");
        assert_eq!(
            lines[0],
            format!("marker-{i}"),
            "run {i} saw another's snapshot: {out:?}"
        );
        hostnames.insert(lines[1].to_string());
    }
    assert_eq!(
        hostnames.len(),
        20,
        "IDs (hostnames) are not unique: {hostnames:?}"
    );
    assert!(!store.image_path("bb").join("marker-0").exists());
    store.assert_no_leftovers();
    assert!(store.ps_json(true).is_empty());
}

#[test]
fn name_race_while_running_has_one_winner() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let outs = at_once(&store, 10, |_| {
        [
            "run", "--rm", "--net", "none", "--name", "same", "bb", "sleep", "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    });
    let winners = outs.iter().filter(|o| o.code == 0).count();
    assert_eq!(winners, 1, "{outs:#?}");
    for o in outs.iter().filter(|o| o.code != 0) {
        let line = o.fails(125);
        assert!(
            line.contains("same"),
            "the error does not name the container: {line}"
        );
    }
    store.assert_no_leftovers();
}

#[test]
fn name_race_with_records_has_one_winner() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let outs = at_once(&store, 10, |_| {
        ["run", "--net", "none", "--name", "kept", "bb", "true"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    assert_eq!(outs.iter().filter(|o| o.code == 0).count(), 1, "{outs:#?}");
    for o in outs.iter().filter(|o| o.code != 0) {
        o.fails(125);
    }
    let recs = store.ps_json(true);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["name"], "kept");
    assert_eq!(store.container_ids().len(), 1);
    assert_eq!(store.subvolumes().len(), 2, "{:?}", store.subvolumes());
}

#[test]
fn imports_and_runs_at_once() {
    let store = TestStore::new();
    store.import_busybox("bb");
    let tar = busybox_tar().to_str().unwrap().to_string();
    // Five imports of distinct names, five of the same name, five runs.
    let outs = at_once(&store, 15, |i| {
        let v: Vec<&str> = match i {
            0..=4 => vec!["import", "", &tar],
            5..=9 => vec!["import", "dup", &tar],
            _ => vec!["run", "--rm", "--net", "none", "bb", "true"],
        };
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        if i <= 4 {
            v[1] = format!("img{i}");
        }
        v
    });
    for (i, o) in outs.iter().enumerate() {
        if !(5..=9).contains(&i) {
            assert_eq!(o.code, 0, "{i}: {o:?}");
        }
    }
    let dup_ok = outs[5..10].iter().filter(|o| o.code == 0).count();
    assert_eq!(dup_ok, 1, "{:#?}", &outs[5..10]);
    let mut names = store.image_names();
    names.sort();
    assert_eq!(
        names,
        vec!["bb", "dup", "img0", "img1", "img2", "img3", "img4"]
    );
    store.assert_no_leftovers();
}
