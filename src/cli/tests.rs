//! Unit tests of the command line.

use super::output::ps_table;
use super::parse::parse;
use super::run_args::{security_opt, spec, SecurityOpt};
use super::signal::parse_signal;
use super::*;

fn parse_str(args: &[&str]) -> Result<Cli> {
    parse(args.iter().map(OsString::from).collect(), None)
}

#[test]
fn run_stops_at_the_image() {
    let cli = parse_str(&[
        "--root",
        "/s",
        "run",
        "--rm",
        "-e",
        "A=1",
        "--name",
        "web",
        "-w",
        "/tmp",
        "bb",
        "sh",
        "-c",
        "echo --rm",
    ])
    .unwrap();
    assert_eq!(cli.root, "/s");
    let Command::Run(a) = cli.command else {
        panic!()
    };
    assert!(a.remove);
    assert_eq!(a.env, vec!["A=1"]);
    assert_eq!(a.name.as_deref(), Some("web"));
    assert_eq!(a.workdir.as_deref(), Some("/tmp"));
    assert_eq!(a.image, "bb");
    assert_eq!(a.command, vec!["sh", "-c", "echo --rm"]);
}

#[test]
fn storage_opt_takes_size_only() {
    let size = |opt: &str| match parse_str(&["run", "--storage-opt", opt, "bb"]) {
        Ok(Cli {
            command: Command::Run(a),
            ..
        }) => Ok(a.storage_size),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.to_string()),
    };
    assert_eq!(size("size=10m"), Ok(Some(10 << 20)));
    assert_eq!(size("size=1g"), Ok(Some(1 << 30)));
    assert_eq!(size("size=0"), Ok(None));
    for bad in ["size=", "size=lots", "size", "quota=1g", "10m"] {
        let e = size(bad).unwrap_err();
        assert!(
            e.contains("--storage-opt") && !e.contains('\n'),
            "{bad}: {e}"
        );
    }
}

#[test]
fn security_options_parse() {
    assert_eq!(
        security_opt("seccomp=unconfined").unwrap(),
        SecurityOpt::Seccomp(true)
    );
    assert_eq!(
        security_opt("seccomp:unconfined").unwrap(),
        SecurityOpt::Seccomp(true)
    );
    assert_eq!(
        security_opt("no-new-privileges").unwrap(),
        SecurityOpt::NoNewPrivileges(true)
    );
    assert_eq!(
        security_opt("no-new-privileges=false").unwrap(),
        SecurityOpt::NoNewPrivileges(false)
    );
    assert_eq!(
        security_opt("no-new-privileges=1").unwrap(),
        SecurityOpt::NoNewPrivileges(true)
    );
    assert_eq!(
        security_opt("seccomp=builtin").unwrap(),
        SecurityOpt::Seccomp(false)
    );
    for bad in [
        "seccomp=/etc/p.json",
        "seccomp=default",
        "apparmor=unconfined",
        "no-new-privileges=yes",
        "seccomp",
    ] {
        let e = security_opt(bad).unwrap_err().to_string();
        assert!(e.contains(bad) && !e.contains('\n'), "{e}");
    }
    let cli = parse_str(&["run", "--security-opt", "seccomp=unconfined", "bb"]).unwrap();
    let Command::Run(a) = cli.command else {
        panic!()
    };
    let spec = spec(&a, None, None).unwrap();
    assert!(spec.seccomp_unconfined && !spec.no_new_privileges);
    assert_eq!(spec.capabilities, crate::capabilities::DEFAULT);
    let cli = parse_str(&["run", "--cap-drop", "ALL", "--cap-add=net_raw", "bb"]).unwrap();
    let Command::Run(a) = cli.command else {
        panic!()
    };
    assert_eq!(super::spec(&a, None, None).unwrap().capabilities, 1 << 13);
}

#[test]
fn run_user_options_parse() {
    let cli = parse_str(&[
        "run",
        "-u",
        "1000:100",
        "--group-add",
        "wheel",
        "--group-add=27",
        "bb",
        "id",
    ])
    .unwrap();
    let Command::Run(a) = cli.command else {
        panic!()
    };
    assert_eq!(a.user.as_deref(), Some("1000:100"));
    assert_eq!(a.group_add, vec!["wheel", "27"]);
    assert_eq!(a.command, vec!["id"]);
    let s = spec(&a, None, None).unwrap();
    assert_eq!(s.user.as_deref(), Some("1000:100"));
    assert_eq!(s.group_add, vec!["wheel", "27"]);
    let cli = parse_str(&["run", "--user=alice", "-unobody", "bb"]).unwrap();
    let Command::Run(a) = cli.command else {
        panic!()
    };
    // The last one wins, as in docker.
    assert_eq!(a.user.as_deref(), Some("nobody"));
    let cli = parse_str(&["run", "bb", "-u", "x"]).unwrap();
    let Command::Run(a) = cli.command else {
        panic!()
    };
    assert_eq!(a.user, None);
    assert_eq!(a.command, vec!["-u", "x"]);
    assert!(spec(&a, None, None).unwrap().group_add.is_empty());
    for args in [&["run", "-u"][..], &["run", "--group-add"]] {
        let e = parse_str(args).unwrap_err();
        assert!(!e.to_string().contains('\n') && e.exit_code() == 125, "{e}");
    }
}

#[test]
fn run_network_options_parse() {
    let cli = parse_str(&[
        "run",
        "--ip",
        "10.89.0.5",
        "-p",
        "8080:80",
        "--publish",
        "53:53/udp",
        "bb",
    ])
    .unwrap();
    let Command::Run(a) = cli.command else {
        panic!()
    };
    assert_eq!(a.ip.as_deref(), Some("10.89.0.5"));
    assert_eq!(a.publish, vec!["8080:80", "53:53/udp"]);
}

#[test]
fn stop_kill_logs_and_detach_parse() {
    let cli = parse_str(&["stop", "-t", "3", "a", "b"]).unwrap();
    assert_eq!(
        cli.command,
        Command::Stop {
            names: vec!["a".into(), "b".into()],
            timeout: Some(3),
            signal: None,
        }
    );
    assert_eq!(
        parse_str(&["stop", "a", "-s", "USR1", "-t", "2"])
            .unwrap()
            .command,
        Command::Stop {
            names: vec!["a".into()],
            timeout: Some(2),
            signal: Some(rustix::process::Signal::USR1),
        }
    );
    assert!(parse_str(&["stop", "-s", "NOPE", "a"]).is_err());
    assert!(matches!(
        parse_str(&["rm", "-fv", "a"]).unwrap().command,
        Command::Rm { force: true, .. }
    ));
    let cli = parse_str(&["stop", "a"]).unwrap();
    assert!(matches!(cli.command, Command::Stop { timeout: None, .. }));
    assert!(parse_str(&["stop", "-t", "x", "a"]).is_err());
    assert!(parse_str(&["stop"]).is_err());
    assert_eq!(
        parse_str(&["start", "-a", "-i", "a"]).unwrap().command,
        Command::Start {
            names: vec!["a".into()],
            attach: true
        }
    );
    assert_eq!(
        parse_str(&["start", "a", "b"]).unwrap().command,
        Command::Start {
            names: vec!["a".into(), "b".into()],
            attach: false
        }
    );
    let Command::StartAll {
        filters,
        boot: false,
    } = parse_str(&["start", "--all", "-f", "restart-policy=always"])
        .unwrap()
        .command
    else {
        panic!()
    };
    assert_ne!(filters, Default::default());
    for bad in [
        &["start", "--all", "a"][..],
        &["start", "--all", "-a"],
        &["start", "-f", "name=a", "a"],
        &["start", "--boot"],
        &["start", "--boot", "a"],
        &["start", "--all", "-f", "restart-policy=sometimes"],
    ] {
        assert!(parse_str(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        parse_str(&["restart", "--time", "-1", "a"])
            .unwrap()
            .command,
        Command::Restart {
            names: vec!["a".into()],
            timeout: Some(u64::MAX),
            signal: None,
        }
    );
    for bad in [
        &["start"][..],
        &["start", "-a", "a", "b"],
        &["start", "-t", "a"],
        &["restart"],
        &["restart", "-t", "soon", "a"],
    ] {
        assert!(parse_str(bad).is_err(), "{bad:?}");
    }
    let cli = parse_str(&["kill", "a"]).unwrap();
    assert!(
        matches!(cli.command, Command::Kill { signal, .. } if signal == rustix::process::Signal::KILL)
    );
    for (given, want) in [
        ("term", 15),
        ("SIGUSR1", 10),
        ("HUP", 1),
        ("2", 2),
        ("RTMIN+3", 37),
        ("SIGRTMIN", 34),
        ("rtmax-1", 63),
        ("40", 40),
    ] {
        assert_eq!(parse_signal("-s", given).unwrap().as_raw(), want, "{given}");
    }
    for bad in [
        "NOPE", "0", "65", "32", "SIG", "", "RTMIN+31", "RTMIN-1", "RTMAX+1",
    ] {
        assert!(parse_signal("-s", bad).is_err(), "{bad}");
    }
    assert!(parse_str(&["stop", "-t", "-1", "a"]).is_ok());
    let cli = parse_str(&["logs", "-f", "web"]).unwrap();
    assert_eq!(
        cli.command,
        Command::Logs {
            name: "web".into(),
            follow: true,
            tail: None,
            timestamps: false,
            since: None,
            until: None,
        }
    );
    let cli = parse_str(&["logs", "-t", "--since", "10m", "--until=2026-12-01", "web"]).unwrap();
    assert_eq!(
        cli.command,
        Command::Logs {
            name: "web".into(),
            follow: false,
            tail: None,
            timestamps: true,
            since: Some("10m".into()),
            until: Some("2026-12-01".into()),
        }
    );
    assert!(parse_str(&["logs", "--since", "soon", "web"]).is_err());
    assert!(parse_str(&["logs", "--until", "2026-02-30", "web"]).is_err());
    assert!(parse_str(&["logs", "a", "b"]).is_err());
    for (args, tail) in [
        (&["logs", "--tail", "3", "web"][..], Some(3)),
        (&["logs", "-n", "0", "web"][..], Some(0)),
        (&["logs", "--tail=all", "web"][..], None),
        (&["logs", "web", "-n2"][..], Some(2)),
    ] {
        let cli = parse_str(args).unwrap();
        assert_eq!(
            cli.command,
            Command::Logs {
                name: "web".into(),
                follow: false,
                tail,
                timestamps: false,
                since: None,
                until: None,
            },
            "{args:?}"
        );
    }
    for bad in [
        &["logs", "--tail", "-1", "web"][..],
        &["logs", "--tail", "x", "web"][..],
        &["logs", "--tail"][..],
    ] {
        assert!(parse_str(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        parse_str(&["port", "web"]).unwrap().command,
        Command::Port {
            name: "web".into(),
            private: None
        }
    );
    assert_eq!(
        parse_str(&["port", "web", "53/udp"]).unwrap().command,
        Command::Port {
            name: "web".into(),
            private: Some((53, net::Protocol::Udp))
        }
    );
    assert_eq!(
        parse_str(&["port", "web", "80"]).unwrap().command,
        Command::Port {
            name: "web".into(),
            private: Some((80, net::Protocol::Tcp))
        }
    );
    for bad in [
        &["port"][..],
        &["port", "web", "0"][..],
        &["port", "web", "80/sctp"][..],
        &["port", "web", "x"][..],
        &["port", "a", "80", "81"][..],
    ] {
        assert!(parse_str(bad).is_err(), "{bad:?}");
    }
    let Command::Run(a) = parse_str(&["run", "-d", "bb"]).unwrap().command else {
        panic!("not run")
    };
    assert!(a.detach);
    let a = RunArgs {
        detach: true,
        tty: true,
        image: "bb".into(),
        ..Default::default()
    };
    assert!(spec(&a, None, None).is_err());
}

#[test]
fn run_takes_volumes_tmpfs_and_read_only() {
    let cli = parse_str(&[
        "run",
        "-v",
        "/a:/b:ro",
        "--volume=/c:/d",
        "--tmpfs",
        "/t:size=1m",
        "--read-only",
        "bb",
    ])
    .unwrap();
    let Command::Run(a) = cli.command else {
        panic!("not run")
    };
    assert!(a.read_only);
    let dest: Vec<&str> = a.mounts.iter().map(|m| m.destination.as_str()).collect();
    assert_eq!(dest, ["/b", "/d", "/t"]);
    assert!(a.mounts[0].read_only && !a.mounts[1].read_only);
    let e = parse_str(&["run", "-v", "Vol:/b", "bb"]).unwrap_err();
    assert!(e.to_string().contains("invalid volume name"), "{e}");
}

#[test]
fn ps_table_has_a_heading_per_column() {
    let rec = crate::container::Record {
        id: "0123456789ab".into(),
        name: Some("web".into()),
        image: "bb".into(),
        command: vec!["sleep".into(), "1".into()],
        hostname: "web".into(),
        created: String::new(),
        created_unix: 100,
        created_nsec: 0,
        status: crate::container::Status::Running,
        exit_code: None,
        finished_unix: None,
        pid: None,
        remove: false,
        network: None,
        security: None,
        env: Vec::new(),
        workdir: None,
        read_only: false,
        mounts: Vec::new(),
        resources: None,
        cgroups: Vec::new(),
        oom_killed: false,
        ulimits: Vec::new(),
        stop_signal: None,
        stop_timeout: None,
        sysctls: Vec::new(),
        devices: Vec::new(),
        tty: false,
        init: false,
        privileged: false,
        started_unix: None,
        freezer: None,
        paused: false,
        labels: Default::default(),
        config: None,
        restart: None,
        restart_count: 0,
        stopped: Default::default(),
        shm_size: None,
        uts: None,
        cgroupns: None,
        ipc: None,
        pid_mode: None,
        domainname: None,
        oom_score_adj: None,
        storage_size: None,
        log: None,
        timeout: None,
        health_on_failure: Default::default(),
        restarting: false,
        health: None,
    };
    let t = ps_table(std::slice::from_ref(&rec), 160);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].ends_with("ADDRESS   PORTS"), "{t}");
    assert!(lines[1].ends_with(" -"), "{t}");
    assert!(lines[1].contains("Up 1 minute   "), "{t}");
    let paused = crate::container::Record {
        paused: true,
        ..rec.clone()
    };
    let t = ps_table(std::slice::from_ref(&paused), 160);
    assert!(t.contains("Up 1 minute (Paused)"), "{t}");
    // docker's PORTS, for a running container.
    let mut published = rec.clone();
    published.network = Some(net::Settings {
        mode: "bridge".into(),
        bridge: Some("tupper0".into()),
        address: Some("10.89.0.2".into()),
        prefix_len: Some(16),
        mac_address: None,
        gateway: Some("10.89.0.1".into()),
        host_veth: None,
        ports: vec!["8080:80/tcp".into(), "127.0.0.1:5353:53/udp".into()],
        ..Default::default()
    });
    let t = ps_table(&[published.clone()], 160);
    let row = t.lines().nth(1).unwrap();
    assert!(
        row.ends_with("10.89.0.2   0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp"),
        "{t}"
    );
    published.status = crate::container::Status::Exited;
    let t = ps_table(&[published], 160);
    assert!(
        t.lines().nth(1).unwrap().ends_with(" -"),
        "an exited one has none: {t}"
    );
}

#[test]
fn root_defaults_and_env() {
    let cli = parse_str(&["ps"]).unwrap();
    assert_eq!(cli.root, DEFAULT_ROOT);
    let cli = parse(vec!["ps".into(), "-a".into()], Some("/x".into())).unwrap();
    assert_eq!(cli.root, "/x");
    assert_eq!(
        cli.command,
        Command::Ps {
            all: true,
            json: false,
            quiet: false,
            last: None,
            filters: Default::default(),
            format: None,
            size: false,
        }
    );
    assert!(matches!(
        parse_str(&["ps", "-as"]).unwrap().command,
        Command::Ps {
            all: true,
            size: true,
            ..
        }
    ));
    let cli = parse(vec!["ps".into(), "-aq".into()], None).unwrap();
    assert!(matches!(
        cli.command,
        Command::Ps {
            all: true,
            quiet: true,
            json: false,
            last: None,
            ..
        }
    ));
    assert!(matches!(
        parse_str(&["ps", "-l", "--filter", "label=a=b"])
            .unwrap()
            .command,
        Command::Ps { last: Some(1), .. }
    ));
    assert!(parse_str(&["ps", "-f", "nope=1"]).is_err());
    for (args, format) in [
        (&["ps", "--format", "{{.ID}}"][..], "{{.ID}}"),
        (&["images", "--format", "{{.name}}"], "{{.name}}"),
        (&["inspect", "-f", "{{.pid}}", "a"], "{{.pid}}"),
        (&["inspect", "a", "--format", "json"], "json"),
    ] {
        let want = Some(crate::template::Template::parse(format).unwrap());
        let got = match parse_str(args).unwrap().command {
            Command::Ps { format, .. }
            | Command::Images { format, .. }
            | Command::Inspect { format, .. } => format,
            other => panic!("{other:?}"),
        };
        assert_eq!(got, want, "{args:?}");
    }
    assert!(parse_str(&["ps", "--format", "{{range .x}}"]).is_err());
    assert!(parse_str(&["inspect", "-f", "{{.pid}}"]).is_err());
    assert!(parse_str(&["ps", "-n", "x"]).is_err());
    let cli = parse(vec!["wait".into(), "a".into(), "b".into()], None).unwrap();
    assert_eq!(
        cli.command,
        Command::Wait {
            names: vec!["a".into(), "b".into()],
            conditions: vec![crate::container::WaitCondition::Stopped],
            interval: std::time::Duration::from_millis(250),
        }
    );
    let cli = parse_str(&[
        "wait",
        "--condition",
        "healthy",
        "--condition=exited",
        "-i",
        "1s",
        "a",
    ])
    .unwrap();
    assert_eq!(
        cli.command,
        Command::Wait {
            names: vec!["a".into()],
            conditions: vec![
                crate::container::WaitCondition::Healthy,
                crate::container::WaitCondition::Stopped
            ],
            interval: std::time::Duration::from_secs(1),
        }
    );
    for bad in [
        &["wait"][..],
        &["wait", "--condition", "asleep", "a"],
        &["wait", "-i", "0", "a"],
        &["wait", "-i", "-1s", "a"],
    ] {
        assert!(parse_str(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn bad_command_lines_are_one_line_errors() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["run"],
        &["run", "--bogus", "x"],
        &["import", "a"],
        &["rm"],
        &["images", "x"],
    ] {
        let e = parse_str(args).unwrap_err();
        assert!(!e.to_string().contains('\n'), "{e}");
        assert_eq!(e.exit_code(), 125);
    }
}

#[test]
fn net_modes_and_options() {
    let mut a = RunArgs {
        image: "x".into(),
        ..Default::default()
    };
    assert_eq!(
        spec(&a, None, None).unwrap().network.mode,
        net::Mode::Bridge
    );
    a.net = Some("host".into());
    assert_eq!(spec(&a, None, None).unwrap().network.mode, net::Mode::Host);
    // A name that is no mode is a user-defined network's, read at the
    // start; what cannot be a name is refused.
    a.net = Some("appnet".into());
    let s = spec(&a, None, None).unwrap();
    assert_eq!(s.network.mode, net::Mode::Bridge);
    assert_eq!(s.network.network.as_deref(), Some("appnet"));
    a.net = Some("Bogus".into());
    assert!(spec(&a, None, None).is_err());
    a.net = Some("container:".into());
    assert!(spec(&a, None, None).is_err());
    a.net = None;
    a.ip = Some("10.7.0.9".into());
    a.publish = vec!["8080:80/tcp".into()];
    let s = spec(&a, Some("tpx0"), Some("10.7.0.0/24")).unwrap();
    assert_eq!(s.network.bridge, "tpx0");
    assert_eq!(s.network.ip, Some("10.7.0.9".parse().unwrap()));
    assert_eq!(s.network.publish.len(), 1);
    a.ip = Some("10.7.1.9".into());
    assert!(
        spec(&a, None, Some("10.7.0.0/24")).is_err(),
        "address outside the subnet"
    );
}

#[test]
fn global_network_options() {
    let cli = parse_str(&["--bridge", "tpb0", "--subnet", "10.9.0.0/24", "ps"]).unwrap();
    assert_eq!(cli.bridge.as_deref(), Some("tpb0"));
    assert_eq!(cli.subnet.as_deref(), Some("10.9.0.0/24"));
}

#[test]
fn image_prune_and_system_prune_all_parse() {
    assert!(matches!(
        parse_str(&["image", "prune", "-a", "-f", "--filter", "until=1h"])
            .unwrap()
            .command,
        Command::ImagePrune { all: true, .. }
    ));
    assert!(matches!(
        parse_str(&["image", "prune"]).unwrap().command,
        Command::ImagePrune { all: false, .. }
    ));
    assert!(parse_str(&["image", "prune", "--filter", "status=exited"]).is_err());
    assert!(parse_str(&["image", "prune", "x"]).is_err());
    assert_eq!(
        parse_str(&["system", "prune", "-af", "--volumes"])
            .unwrap()
            .command,
        Command::SystemPrune {
            volumes: true,
            all: true
        }
    );
    assert!(matches!(
        parse_str(&["system", "df", "-v"]).unwrap().command,
        Command::SystemDf {
            verbose: true,
            format: None
        }
    ));
    assert!(parse_str(&["info", "-v"]).is_err());
}

#[test]
fn network_connect_and_disconnect_parse() {
    let cli = parse_str(&[
        "network",
        "connect",
        "--ip",
        "10.90.0.9",
        "--alias",
        "a1",
        "--alias",
        "a2",
        "n2",
        "web",
    ])
    .unwrap();
    assert_eq!(
        cli.command,
        Command::Network(NetworkCommand::Connect {
            network: "n2".into(),
            container: "web".into(),
            ip: Some("10.90.0.9".parse().unwrap()),
            aliases: vec!["a1".into(), "a2".into()],
        })
    );
    let cli = parse_str(&["network", "disconnect", "n2", "web"]).unwrap();
    assert_eq!(
        cli.command,
        Command::Network(NetworkCommand::Disconnect {
            network: "n2".into(),
            container: "web".into(),
        })
    );
    for bad in [
        &["network", "connect", "n2"][..],
        &["network", "connect", "--ip", "10.1", "n2", "web"],
        &["network", "disconnect", "n2", "web", "more"],
        &["network", "connect", "--bogus", "n2", "web"],
    ] {
        assert!(parse_str(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn net_given_again_connects_more_user_defined_networks() {
    let cli = parse_str(&["run", "--net", "n1", "--network", "n2", "--net", "n3", "bb"]).unwrap();
    let Command::Run(a) = cli.command else {
        panic!()
    };
    assert_eq!(a.net.as_deref(), Some("n1"));
    assert_eq!(a.more_nets, ["n2", "n3"]);
    let s = spec(&a, None, None).unwrap();
    assert_eq!(s.network.network.as_deref(), Some("n1"));
    let more: Vec<&str> = s
        .network
        .connected
        .iter()
        .map(|c| c.network.as_str())
        .collect();
    assert_eq!(more, ["n2", "n3"]);
    // Modes do not mix with them (docker's "conflicting options"); a
    // network given twice is refused.
    // Modes only: the last one wins, as before.
    let a = RunArgs {
        image: "x".into(),
        net: Some("none".into()),
        more_nets: vec!["bridge".into(), "host".into()],
        ..Default::default()
    };
    let s = spec(&a, None, None).unwrap();
    assert_eq!(s.network.mode, net::Mode::Host);
    assert!(s.network.connected.is_empty());
    for (first, again) in [
        ("bridge", "n2"),
        ("n1", "none"),
        ("host", "n2"),
        ("n1", "container:x"),
        ("n1", "n1"),
    ] {
        let a = RunArgs {
            image: "x".into(),
            net: Some(first.into()),
            more_nets: vec![again.into()],
            ..Default::default()
        };
        assert!(spec(&a, None, None).is_err(), "{first} {again}");
    }
}
