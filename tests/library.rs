//! The library API from a multi-threaded program: one `Store` shared by threads
//! that import and run containers at once, specs built in memory, exit codes and
//! errors the same as the CLI's (issue 2, "The library").

mod common;

use common::*;
use std::sync::{Arc, Barrier};
use tupper::{Kind, Source, Spec, Stdio, Store};

fn spec(image: &str, command: &[&str]) -> Spec {
    Spec {
        image: image.into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        remove: true,
        ..Default::default()
    }
}

fn open_with_busybox(store: &TestStore) -> Store {
    let lib = Store::open(store.root()).expect("open store");
    let mut calls = 0;
    let stats = lib
        .import(
            "bb",
            &Source::Archive(busybox_tar().to_path_buf()),
            false,
            &mut |_| calls += 1,
        )
        .expect("import");
    assert!(stats.entries > 200, "{stats:?}");
    lib
}

#[test]
fn containers_from_several_threads_at_once() {
    let store = TestStore::new();
    let lib = open_with_busybox(&store);
    let threads = 8;
    let rounds = 3;
    let barrier = Barrier::new(threads);
    let codes: Vec<Vec<i32>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let lib = &lib;
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    (0..rounds)
                        .map(|r| {
                            let n = t * rounds + r;
                            // Each sees its own snapshot: its marker and no other.
                            let script = format!(
                                "echo {n} > /m-{n}; sleep 0.2; \
                                 test \"$(ls / | grep -c '^m-')\" = 1 || exit 99; exit {n}"
                            );
                            lib.run(&spec("bb", &["sh", "-c", &script]))
                                .unwrap_or_else(|e| panic!("run {n}: {e}"))
                        })
                        .collect()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, c) in codes.iter().enumerate() {
        let want: Vec<i32> = (0..rounds).map(|r| (t * rounds + r) as i32).collect();
        assert_eq!(c, &want, "thread {t}");
    }
    store.assert_no_leftovers();
    assert!(lib.containers(true).unwrap().is_empty());
}

#[test]
fn errors_and_exit_codes_match_the_cli() {
    let store = TestStore::new();
    let lib = open_with_busybox(&store);
    let before = store.state();
    let e = lib
        .run(&spec("nosuch", &["true"]))
        .expect_err("unknown image");
    assert_eq!((e.kind(), e.exit_code()), (Kind::Runtime, 125));
    assert!(e.to_string().contains("nosuch"), "{e}");
    let e = lib
        .run(&spec("bb", &["nosuchcmd"]))
        .expect_err("missing command");
    assert_eq!((e.kind(), e.exit_code()), (Kind::NotFound, 127), "{e}");
    let e = lib
        .run(&spec("bb", &["/etc/passwd"]))
        .expect_err("not executable");
    assert_eq!((e.kind(), e.exit_code()), (Kind::CannotInvoke, 126), "{e}");
    let mut bad = spec("bb", &["true"]);
    bad.name = Some("Bad".into());
    assert_eq!(lib.run(&bad).expect_err("bad name").exit_code(), 125);
    before.assert_same(&store.state(), "failed library runs");
    assert_eq!(lib.run(&spec("bb", &["sh", "-c", "exit 7"])).unwrap(), 7);
    let e = Store::open(store.scratch()).expect_err("not btrfs");
    assert!(e.to_string().contains("btrfs"), "{e}");
    store.assert_no_leftovers();
}

/// A kept container is removable as soon as `run` returns, even while other
/// threads of the program start processes (which, between fork and exec, hold
/// copies of every open file description of the program, locks included).
#[test]
fn remove_right_after_run_while_other_threads_spawn() {
    let store = TestStore::new();
    let lib = open_with_busybox(&store);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // Busy neighbours: containers and plain child processes.
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                lib.run(&spec("bb", &["true"])).unwrap();
            }
        });
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::process::Command::new("/bin/true").status().unwrap();
            }
        });
        let mut failures = Vec::new();
        for i in 0..20 {
            let mut kept = spec("bb", &["sh", "-c", "exit 4"]);
            kept.remove = false;
            kept.name = Some(format!("kept{i}"));
            kept.env = vec!["A=1".into()];
            assert_eq!(lib.run(&kept).unwrap(), 4);
            let rec = lib.find_container(&format!("kept{i}")).unwrap();
            assert_eq!(rec.exit_code, Some(4));
            if rec.status != tupper::Status::Exited {
                failures.push(format!(
                    "kept{i}: status {:?} after run returned",
                    rec.status
                ));
            }
            if let Err(e) = lib.remove_container(&format!("kept{i}"), false) {
                failures.push(format!("kept{i}: {e}"));
                lib.remove_container(&format!("kept{i}"), true).unwrap();
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            failures.is_empty(),
            "{} of 20 failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    });
    store.assert_no_leftovers();
}

#[test]
fn name_race_between_threads() {
    let store = TestStore::new();
    let lib = Arc::new(open_with_busybox(&store));
    let barrier = Arc::new(Barrier::new(6));
    let results: Vec<Result<i32, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                let lib = lib.clone();
                let barrier = barrier.clone();
                s.spawn(move || {
                    let mut sp = spec("bb", &["sleep", "1"]);
                    sp.name = Some("one".into());
                    barrier.wait();
                    lib.run(&sp).map_err(|e| e.to_string())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|r| r == &&Ok(0)).count(),
        1,
        "{results:?}"
    );
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(r.as_ref().unwrap_err().contains("one"), "{r:?}");
    }
    store.assert_no_leftovers();
}

#[test]
fn imports_from_several_threads() {
    let store = TestStore::new();
    let lib = Store::open(store.root()).unwrap();
    let tar = busybox_tar().to_path_buf();
    std::thread::scope(|s| {
        for i in 0..4 {
            let (lib, tar) = (&lib, tar.clone());
            s.spawn(move || {
                lib.import(
                    &format!("img{i}"),
                    &Source::Archive(tar),
                    false,
                    &mut |_| {},
                )
                .unwrap();
            });
        }
    });
    let mut names: Vec<String> = lib.images().unwrap().into_iter().map(|i| i.name).collect();
    names.sort();
    assert_eq!(names, vec!["img0", "img1", "img2", "img3"]);
    for n in &names {
        assert!(subvol_info(&store.image_path(n)).0, "{n} is not read-only");
    }
    store.assert_no_leftovers();
}

/// Everything the other ends of `fd` wrote, until none is left.
fn read_to_end(fd: &std::os::fd::OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8(out).unwrap()
}

/// `Spec::stdio`: threads running containers at once each give theirs its
/// own stdin, stdout and stderr (pipes here), and read what it wrote, apart.
#[test]
fn each_thread_gives_its_container_its_own_stdio() {
    let store = TestStore::new();
    let lib = open_with_busybox(&store);
    let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    std::thread::scope(|s| {
        for n in 0..4 {
            let lib = &lib;
            s.spawn(move || {
                let ((in_r, in_w), (out_r, out_w), (err_r, err_w)) = (pipe(), pipe(), pipe());
                rustix::io::write(&in_w, format!("line {n}\n").as_bytes()).unwrap();
                drop(in_w);
                let script = format!("read l; echo \"out $l\"; echo err {n} >&2; exit {n}");
                let mut sp = spec("bb", &["sh", "-c", &script]);
                sp.stdio = Some(Arc::new(Stdio::new(in_r, out_w, err_w).unwrap()));
                let code = lib.run(&sp).unwrap();
                // The caller's copies of the write ends go with the spec.
                drop(sp);
                assert_eq!(code, n);
                assert_eq!(read_to_end(&out_r), format!("out line {n}\n"));
                assert_eq!(read_to_end(&err_r), format!("err {n}\n"));
            });
        }
    });
    // Not with a terminal: refused, nothing made.
    let before = store.state();
    let (r, w) = pipe();
    let mut sp = spec("bb", &["true"]);
    sp.tty = true;
    let e = w.try_clone().unwrap();
    sp.stdio = Some(Arc::new(Stdio::new(r, w, e).unwrap()));
    let err = lib.run(&sp).unwrap_err().to_string();
    assert!(err.contains("terminal"), "{err}");
    before.assert_same(&store.state(), "tty with stdio");
    store.assert_no_leftovers();
}

#[test]
fn a_terminal_from_the_library() {
    let store = TestStore::new();
    let lib = open_with_busybox(&store);
    // Taken: the caller reads the command's output from the master end.
    let mut s = spec("bb", &["sh", "-c", "tty; stty size"]);
    s.tty = true;
    s.tty_size = Some((30, 90));
    let mut c = lib.start(&s).unwrap();
    let master = c.take_terminal().expect("a terminal");
    let code = c.wait().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    // Everything the command wrote, then EIO: nobody holds the other end.
    while let Ok(n @ 1..) = rustix::io::read(&master, &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("/dev/pts/0") && out.contains("30 90"), "{out}");
    // Not taken: the command still has its terminal until it ends (tty
    // fails, exit 1, once it is hung up).
    let mut s = spec("bb", &["sh", "-c", "sleep 0.5; tty >/dev/null"]);
    s.tty = true;
    assert_eq!(lib.run(&s).unwrap(), 0);
    store.assert_no_leftovers();
}

#[test]
fn exec_from_the_library_leaves_the_threads_pid_namespace_alone() {
    let store = TestStore::new();
    let lib = open_with_busybox(&store);
    let container = lib
        .start(&Spec {
            name: Some("c".into()),
            ..spec("bb", &["sleep", "100"])
        })
        .expect("start");
    let exec = lib
        .exec(
            "c",
            &tupper::exec::ExecSpec {
                command: vec!["true".into()],
                ..Default::default()
            },
        )
        .expect("exec");
    assert_eq!(exec.wait().expect("wait"), 0);
    // What this thread starts now is in its own PID namespace, not the
    // container's (exec joins that one for its child only).
    let mine = std::fs::read_link("/proc/thread-self/ns/pid").unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("10")
        .spawn()
        .unwrap();
    let theirs = std::fs::read_link(format!("/proc/{}/ns/pid", child.id()));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(theirs.unwrap(), mine);
    drop(container);
    store.assert_no_leftovers();
}

/// `Store::start_again` from several threads at once: the container runs
/// once; the other starts are refused, as a start of a running container is.
#[test]
fn a_container_started_again_from_several_threads_runs_once() {
    let store = TestStore::new();
    let lib = open_with_busybox(&store);
    let made = Spec {
        name: Some("once".into()),
        remove: false,
        ..spec("bb", &["sh", "-c", "echo x >> /runs; sleep 0.5; exit 7"])
    };
    assert_eq!(lib.run(&made).unwrap(), 7);
    let threads = 4;
    let barrier = Barrier::new(threads);
    let results: Vec<Result<i32, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let (lib, barrier) = (&lib, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    match lib.start_again("once", None) {
                        Ok(c) => c.wait().map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ran: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(ran, vec![&Ok(7)], "{results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(
            r.as_ref()
                .unwrap_err()
                .contains("start once: it is running"),
            "{results:?}"
        );
    }
    let all = lib.containers(true).unwrap();
    assert_eq!(all.len(), 1);
    let once = &all[0];
    assert_eq!(once.exit_code, Some(7));
    let files = std::fs::read_to_string(store.container_path(&once.id).join("runs")).unwrap();
    assert_eq!(files, "x\nx\n", "the first run and one more");
    lib.remove_container("once", false).unwrap();
    store.assert_no_leftovers();
}
