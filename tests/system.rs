//! `tupper system df` and `tupper info` (docker's): what the store's images,
//! containers and volumes take, and what the store and the host are. Sizes
//! are checked against GNU `find` (the files' sizes, a hard-linked file
//! once), the host's facts against `uname`, `nproc` and `stat -f`. Also
//! `image prune`, and the walks of a running container's tree (`diff`,
//! `system df`, `ps -s`, `export`, `cp`) while its command churns files.

mod common;

use common::*;

/// The bytes of the regular files and symlinks below `dir`, a file with
/// several links once, as `find` lists them.
fn find_bytes(dir: &std::path::Path) -> u64 {
    let listed = sh(
        "find",
        &[
            dir.to_str().unwrap(),
            "(",
            "-type",
            "f",
            "-o",
            "-type",
            "l",
            ")",
            "-printf",
            "%i %s\\n",
        ],
    );
    let mut seen = std::collections::BTreeMap::new();
    for line in listed.lines() {
        let (inode, size) = line.split_once(' ').unwrap();
        seen.insert(inode.to_string(), size.parse::<u64>().unwrap());
    }
    seen.values().sum()
}

/// `system df --format json`'s lines, by TYPE.
fn df_lines(store: &TestStore) -> std::collections::BTreeMap<String, serde_json::Value> {
    store
        .tupper(&["system", "df", "--format", "json"])
        .ok()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            (v["Type"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

#[test]
fn system_df_counts_images_containers_and_volumes_as_docker_does() {
    let store = store_with_busybox();
    let image_bytes = find_bytes(&store.image_path("bb"));
    assert!(image_bytes > 500_000, "busybox's files: {image_bytes}");
    // A tag is a snapshot of the same files: the total counts them once.
    store.tupper(&["tag", "bb", "bb2"]).ok();
    store.tupper(&["tag", "bb2", "bb3"]).ok();
    // images: each one's size (a tag's too: the same files).
    for image in store.images_json() {
        assert_eq!(image["size"], image_bytes, "{image}");
    }
    let table = store.tupper(&["images"]).ok();
    assert_eq!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["NAME", "CREATED", "SIZE"],
        "{table}"
    );
    let empty = df_lines(&store);
    assert_eq!(empty["Images"]["TotalCount"], "3", "{empty:?}");
    assert_eq!(empty["Images"]["Active"], "0");
    assert_eq!(empty["Images"]["SizeBytes"], image_bytes);
    assert_eq!(empty["Images"]["ReclaimableBytes"], image_bytes);
    assert_eq!(
        empty["Images"]["Reclaimable"]
            .as_str()
            .unwrap()
            .split(' ')
            .nth(1),
        Some("(100%)")
    );
    assert_eq!(empty["Containers"]["SizeBytes"], 0);
    assert_eq!(empty["Containers"]["Reclaimable"], "0B");

    // A container's size is what it wrote, not its image, nor what the start
    // writes into every container (/etc/hosts, ...).
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "writer",
            "bb",
            "sh",
            "-c",
            "head -c 10000 /dev/zero > /big && mkdir -p /d/e && head -c 234 /dev/zero > /d/e/f \
             && echo more >> /etc/passwd && rm /bin/vi",
        ])
        .ok();
    let writer = store.ps_entry("writer")["id"].as_str().unwrap().to_string();
    let passwd = std::fs::metadata(store.container_path(&writer).join("etc/passwd"))
        .unwrap()
        .len();
    // A volume a container names, and one no container names.
    store
        .tupper(&[
            "run",
            "--net",
            "none",
            "--name",
            "voluser",
            "-v",
            "used:/v",
            "bb",
            "sh",
            "-c",
            "head -c 3000 /dev/zero > /v/x",
        ])
        .ok();
    store.tupper(&["volume", "create", "spare"]).ok();
    std::fs::write(store.root().join("volumes/spare/y"), vec![1u8; 700]).unwrap();
    let runner = store.detached(
        &["--name", "runner"],
        &["sh", "-c", "head -c 50 /dev/zero > /r; exec sleep 1000"],
    );
    store.wait_running("runner");
    let mut waited = 0;
    while !store.container_path(&runner).join("r").exists() && waited < 100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }

    let df = df_lines(&store);
    assert_eq!(df["Images"]["TotalCount"], "3", "{df:?}");
    assert_eq!(df["Images"]["Active"], "1");
    assert_eq!(df["Images"]["SizeBytes"], image_bytes);
    // bb has containers; its tags hold the same files: nothing to gain.
    assert_eq!(df["Images"]["ReclaimableBytes"], 0);
    assert_eq!(df["Containers"]["TotalCount"], "3");
    assert_eq!(df["Containers"]["Active"], "1");
    let exited = 10_000 + 234 + passwd;
    assert_eq!(df["Containers"]["SizeBytes"], exited + 50);
    assert_eq!(df["Containers"]["ReclaimableBytes"], exited);
    assert_eq!(df["Local Volumes"]["TotalCount"], "2");
    assert_eq!(df["Local Volumes"]["Active"], "1");
    assert_eq!(df["Local Volumes"]["SizeBytes"], 3_700);
    assert_eq!(df["Local Volumes"]["ReclaimableBytes"], 700);
    assert_eq!(df["Local Volumes"]["Size"], "3.7kB");
    assert_eq!(df["Local Volumes"]["Reclaimable"], "700B (18%)");

    // The table, docker's columns.
    let table = store.tupper(&["system", "df"]).ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{table}"
    );
    assert!(lines[3].starts_with("Local Volumes "), "{table}");
    assert_eq!(lines[3].split_whitespace().nth(4), Some("3.7kB"), "{table}");

    // -v: each one.
    let all: serde_json::Value = serde_json::from_str(
        &store
            .tupper(&["system", "df", "-v", "--format", "json"])
            .ok(),
    )
    .unwrap();
    for image in all["images"].as_array().unwrap() {
        assert_eq!(image["size"], image_bytes, "{image}");
        assert_eq!(image["shared_size"], image_bytes, "{image}");
    }
    let size_of = |name: &str| {
        all["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["size"].clone())
    };
    assert_eq!(size_of("writer"), Some(exited.into()), "{all}");
    assert_eq!(size_of("voluser"), Some(0.into()), "{all}");
    assert_eq!(size_of("runner"), Some(50.into()), "{all}");
    let verbose = store.tupper(&["system", "df", "-v"]).ok();
    for heading in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
    ] {
        assert!(verbose.contains(heading), "{verbose}");
    }
    let spare_line = verbose
        .lines()
        .find(|l| l.starts_with("spare "))
        .expect(&verbose);
    assert_eq!(
        spare_line.split_whitespace().collect::<Vec<_>>(),
        ["spare", "0", "700B"]
    );
    let writer_line = verbose
        .lines()
        .find(|l| l.starts_with(&writer))
        .expect(&verbose);
    assert!(writer_line.ends_with("writer"), "{writer_line}");
    assert!(writer_line.contains("Exited (0)"), "{writer_line}");

    // ps -s: what each wrote, and with its image's files (docker's SIZE).
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&store.tupper(&["ps", "-a", "-s", "--json"]).ok()).unwrap();
    let entry = listed
        .iter()
        .find(|c| c["name"] == "writer")
        .expect("writer listed");
    assert_eq!(entry["size_rw"], exited, "{entry}");
    assert_eq!(entry["size_root_fs"], exited + image_bytes, "{entry}");
    let table = store.tupper(&["ps", "-a", "--size"]).ok();
    assert!(
        table.lines().next().unwrap().trim_end().ends_with("SIZE"),
        "{table}"
    );
    let runner_line = table
        .lines()
        .find(|l| l.starts_with(&runner))
        .expect(&table);
    assert!(
        runner_line.contains(" 50B (virtual ") && runner_line.trim_end().ends_with("MB)"),
        "{runner_line}"
    );
    let without = store.tupper(&["ps", "-a", "--json"]).ok();
    assert!(!without.contains("size_rw"), "{without}");

    // A container whose image was replaced: all its files are its own.
    store.tupper(&["rmi", "bb3"]).ok();
    let bytes_before = df_lines(&store)["Containers"]["SizeBytes"].clone();
    assert_eq!(bytes_before, exited + 50);
    store.tupper(&["rm", "-f", "runner"]).ok();
    store.tupper(&["rmi", "bb"]).ok();
    let df = df_lines(&store);
    let voluser = store.ps_entry("voluser")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let owned =
        find_bytes(&store.container_path(&writer)) + find_bytes(&store.container_path(&voluser));
    assert_eq!(df["Containers"]["SizeBytes"], owned, "{df:?}");
    assert_eq!(df["Images"]["TotalCount"], "1");
    assert_eq!(df["Images"]["ReclaimableBytes"], image_bytes);

    // Nothing changed by looking.
    let state = store.state();
    store.tupper(&["system", "df", "-v"]).ok();
    state.assert_same(&store.state(), "system df");
    let err = store.tupper(&["system", "df", "extra"]).fails(125);
    assert!(err.contains("system df takes no arguments"), "{err}");
}

#[test]
fn info_tells_the_store_and_the_host_in_dockers_fields() {
    let store = store_with_busybox();
    store
        .tupper(&["create", "--net", "none", "--name", "made", "bb", "true"])
        .ok();
    store.detached(&["--name", "up"], &["sleep", "1000"]);
    store.detached(&["--name", "up2"], &["sleep", "1000"]);
    store.detached(&["--name", "held"], &["sleep", "1000"]);
    store.wait_running("up");
    store.wait_running("up2");
    store.wait_running("held");
    store.tupper(&["pause", "held"]).ok();
    store.tupper(&["volume", "create", "v1"]).ok();

    let info: serde_json::Value =
        serde_json::from_str(&store.tupper(&["info", "--format", "{{json .}}"]).ok()).unwrap();
    assert_eq!(info["Containers"], 4, "{info}");
    assert_eq!(info["ContainersRunning"], 3);
    assert_eq!(info["ContainersPaused"], 1);
    assert_eq!(info["ContainersStopped"], 1);
    assert_eq!(info["Images"], 1);
    assert_eq!(info["Volumes"], 1);
    assert_eq!(info["Driver"], "btrfs");
    let status: Vec<(String, String)> = info["DriverStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect();
    assert!(
        status.contains(&("Backing Device".into(), store.loopdev().into())),
        "{status:?}"
    );
    let backing = sh(
        "losetup",
        &["--noheadings", "-O", "BACK-FILE", store.loopdev()],
    );
    assert!(
        status.contains(&("Backing File".into(), backing.trim().into())),
        "{status:?} {backing}"
    );
    assert_eq!(info["KernelVersion"], sh("uname", &["-r"]).trim());
    assert_eq!(info["Architecture"], sh("uname", &["-m"]).trim());
    assert_eq!(info["Name"], sh("uname", &["-n"]).trim());
    assert_eq!(info["NCPU"].to_string(), sh("nproc", &[]).trim());
    let cgroup = match sh("stat", &["-f", "-c", "%T", "/sys/fs/cgroup"]).trim() {
        "cgroup2fs" => "2",
        _ => "1",
    };
    assert_eq!(info["CgroupVersion"], cgroup);
    assert_eq!(info["DockerRootDir"], store.root_str());
    assert!(info["MemTotal"].as_u64().unwrap() > 100 << 20, "{info}");
    // A field alone, and the text.
    assert_eq!(
        store
            .tupper(&["info", "-f", "{{.Driver}} {{.ContainersPaused}}"])
            .ok(),
        "btrfs 1\n"
    );
    let text = store.tupper(&["system", "info"]).ok();
    for line in [
        "Containers: 4",
        " Paused: 1",
        "Storage Driver: btrfs",
        &format!(" Backing Device: {}", store.loopdev()),
        &format!("Root Dir: {}", store.root_str()),
        " seccomp",
        "  Profile: builtin",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in:\n{text}");
    }
    let err = store.tupper(&["info", "extra"]).fails(125);
    assert!(err.contains("info takes no arguments"), "{err}");
    store.tupper(&["rm", "-f", "up", "up2", "held"]).ok();
}

#[test]
fn image_prune_all_removes_the_images_no_container_was_made_from() {
    let store = store_with_busybox();
    store.import_busybox("other");
    store.tupper(&["tag", "bb", "t1"]).ok();
    store
        .tupper(&["create", "--net", "none", "--name", "c", "bb", "true"])
        .ok();
    store
        .tupper(&["commit", "-c", "LABEL keep=1", "c", "kept"])
        .ok();
    let other_bytes = find_bytes(&store.image_path("other"));
    let human = |n: u64| {
        // docker's HumanSize of what the test expects (MB range here).
        assert!((1_000_000..10_000_000).contains(&n), "{n}");
        format!(
            "{}MB",
            format!("{:.3}", n as f64 / 1e6)
                .trim_end_matches('0')
                .trim_end_matches('.')
        )
    };
    // Without -a: tupper's images all have names; none is dangling.
    assert_eq!(
        store.tupper(&["image", "prune", "-f"]).ok(),
        "Total reclaimed space: 0B\n"
    );
    assert_eq!(store.image_names(), ["bb", "kept", "other", "t1"]);
    // Nothing made before 1970-01-02.
    assert_eq!(
        store
            .tupper(&["image", "prune", "-a", "--filter", "until=1970-01-02"])
            .ok(),
        "Total reclaimed space: 0B\n"
    );
    // bb has a container; kept has the label; t1 shares bb's files, so
    // only other's are freed.
    let out = store
        .tupper(&["image", "prune", "-a", "--filter", "label!=keep"])
        .ok();
    assert_eq!(
        out,
        format!(
            "Deleted Images:\nother\nt1\n\nTotal reclaimed space: {}\n",
            human(other_bytes)
        )
    );
    assert_eq!(store.image_names(), ["bb", "kept"]);
    // system prune -a: the container, then the images nothing uses now.
    let out = store.tupper(&["system", "prune", "-a"]).ok();
    assert!(
        out.contains("Deleted Images:\nbb\nkept\n\nTotal reclaimed space: "),
        "{out}"
    );
    assert!(store.image_names().is_empty());
    let err = store
        .tupper(&["image", "prune", "--filter", "name=x"])
        .fails(125);
    assert!(err.contains("name is not a filter of image prune"), "{err}");
    store.assert_no_leftovers();
}

#[test]
fn walks_of_a_container_that_churns_files_do_not_fail() {
    let store = store_with_busybox();
    // Files and directories made and removed as fast as the shell can.
    store.detached(
        &["--name", "busy"],
        &[
            "sh",
            "-c",
            "mkdir /churn; while :; do for i in 0 1 2 3 4 5 6 7 8 9; do \
             echo x > /churn/f$i; mkdir /churn/d$i; echo y > /churn/d$i/g; \
             rm -r /churn/f$i /churn/d$i; done; done",
        ],
    );
    store.wait_running("busy");
    std::thread::sleep(std::time::Duration::from_millis(200));
    for _ in 0..30 {
        store.tupper(&["system", "df", "-v"]).ok();
        store.tupper(&["diff", "busy"]).ok();
        store.tupper(&["ps", "-s"]).ok();
        let o = store.tupper(&["export", "busy"]);
        assert_eq!(o.code, 0, "export {}", o.stderr);
        let o = store.tupper(&["cp", "busy:/churn", "-"]);
        assert_eq!(o.code, 0, "cp as a tar {}", o.stderr);
        let into = store.scratch().join("copied");
        let _ = std::fs::remove_dir_all(&into);
        let o = store.tupper(&["cp", "busy:/churn", into.to_str().unwrap()]);
        assert_eq!(o.code, 0, "cp to the host {}", o.stderr);
    }
    store.tupper(&["rm", "-f", "busy"]).ok();
}
