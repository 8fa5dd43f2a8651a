//! Tests of the public network API.
//!
//! The pure ones need nothing. The root ones never touch the host's own
//! network: each runs inside a "test host", a network namespace of its own
//! (a `unshare --net sleep` process the test starts and kills by pid), where
//! it creates its bridge (`tpt-...`), its containers (more `unshare --net`
//! processes), and for NAT an "outside" namespace joined to the test host by
//! a veth pair with documentation addresses (192.0.2.0/24). All traffic goes
//! to addresses the test created in those namespaces. When a test ends, its
//! processes are killed, and its namespaces vanish with everything in them.
//! `ip` is used as the oracle.

use super::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Child, Command};

use lease::tests::TempDir;

// ---------------------------------------------------------------- pure

#[test]
fn subnets_parse_and_bad_ones_are_refused() {
    let s = parse_subnet("10.89.0.0/16").unwrap();
    assert_eq!(s.to_string(), "10.89.0.0/16");
    assert_eq!(s.gateway(), Ipv4Addr::new(10, 89, 0, 1));
    assert_eq!(s.broadcast(), Ipv4Addr::new(10, 89, 255, 255));
    assert_eq!(s.mask(), Ipv4Addr::new(255, 255, 0, 0));
    assert_eq!(s.hosts().next(), Some(Ipv4Addr::new(10, 89, 0, 2)));
    assert_eq!(s.hosts().count(), 65536 - 3);
    let t = parse_subnet("192.0.2.0/30").unwrap();
    assert_eq!(t.hosts().collect::<Vec<_>>(), [Ipv4Addr::new(192, 0, 2, 2)]);
    for (bad, why) in [
        ("10.0.0.256/16", "\"10.0.0.256\" is not an IPv4 address"),
        ("10.0.0.0/33", "prefix length \"33\" is not in 1..=30"),
        ("10.0.0.0/31", "prefix length \"31\" is not in 1..=30"),
        ("10.0.0.0/0", "prefix length \"0\" is not in 1..=30"),
        ("10.0.0.0/x", "prefix length \"x\" is not in 1..=30"),
        ("10.0.0.0", "expected ADDRESS/PREFIX"),
        (
            "10.89.0.1/16",
            "host bits are set; the network is 10.89.0.0/16",
        ),
        ("fd00::/64", "is not an IPv4 address"),
        ("10.0.0.0/+24", "prefix length \"+24\" is not in 1..=30"),
        ("10.0.0.0/024", "prefix length \"024\" is not in 1..=30"),
        ("224.0.0.0/24", "it overlaps 224.0.0.0/4 (multicast"),
        ("0.0.0.0/8", "it overlaps 0.0.0.0/8"),
        ("127.0.0.0/16", "it overlaps 127.0.0.0/8 (loopback"),
        ("240.0.0.0/4", "it overlaps 240.0.0.0/4"),
        ("255.255.255.252/30", "it overlaps 240.0.0.0/4"),
        ("192.0.0.0/2", "it overlaps 224.0.0.0/4"),
        ("0.0.0.0/1", "it overlaps 0.0.0.0/8"),
    ] {
        let e = parse_subnet(bad).unwrap_err().to_string();
        assert!(e.starts_with(&format!("invalid subnet {bad:?}: ")), "{e}");
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn subnets_next_to_the_reserved_ranges_are_accepted() {
    for ok in [
        "1.0.0.0/8",
        "126.0.0.0/8",
        "128.0.0.0/2",
        "208.0.0.0/4",
        "223.255.255.0/24",
        "10.89.0.0/16",
    ] {
        assert_eq!(parse_subnet(ok).unwrap().to_string(), ok);
    }
}

/// TUPPER_SUBNET is read only in bridge mode without --subnet, and its
/// errors name it.
#[test]
fn tupper_subnet_is_read_only_when_used() {
    let getenv = |name: &str| (name == "TUPPER_SUBNET").then(|| "bogus".into());
    let opts = |mode, subnet| Options::from_vars_and_flags(mode, None, subnet, &getenv);
    assert_eq!(opts(Mode::None, None).unwrap().mode, Mode::None);
    assert_eq!(opts(Mode::Host, None).unwrap().mode, Mode::Host);
    let flag = opts(Mode::Bridge, Some("10.7.0.0/24")).unwrap();
    assert_eq!(flag.subnet.to_string(), "10.7.0.0/24");
    let e = opts(Mode::Bridge, None).unwrap_err().to_string();
    assert!(e.starts_with("invalid TUPPER_SUBNET \"bogus\": "), "{e}");
    // A bad --subnet is refused in every mode, as the flag.
    let e = opts(Mode::None, Some("bogus")).unwrap_err().to_string();
    assert!(e.starts_with("invalid subnet \"bogus\": "), "{e}");
    // Without the variables: the defaults.
    let d = Options::from_vars_and_flags(Mode::Bridge, None, None, &|_| None).unwrap();
    assert_eq!(d, Options::default());
}

#[test]
fn container_addresses_are_checked_against_the_subnet() {
    let s = parse_subnet("10.89.0.0/16").unwrap();
    assert_eq!(
        parse_ip("10.89.3.4", &s).unwrap(),
        Ipv4Addr::new(10, 89, 3, 4)
    );
    for (bad, why) in [
        ("10.90.0.5", "it is outside subnet 10.89.0.0/16"),
        ("10.89.0.0", "it is the network address of 10.89.0.0/16"),
        (
            "10.89.0.1",
            "it is the gateway (the bridge's address) of 10.89.0.0/16",
        ),
        (
            "10.89.255.255",
            "it is the broadcast address of 10.89.0.0/16",
        ),
    ] {
        assert_eq!(
            parse_ip(bad, &s).unwrap_err().to_string(),
            format!("invalid --ip {bad}: {why}")
        );
    }
    assert!(parse_ip("10.89.0.256", &s)
        .unwrap_err()
        .to_string()
        .contains("not an IPv4 address"));
}

#[test]
fn port_mappings_parse_and_bad_ones_are_refused() {
    assert_eq!(
        parse_publish("8080:80").unwrap(),
        PortMapping {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp
        }
    );
    let local = parse_publish("127.0.0.1:8080:80/udp").unwrap();
    assert_eq!(local.host_ip, Some(Ipv4Addr::LOCALHOST));
    assert_eq!(local.to_string(), "127.0.0.1:8080:80/udp");
    assert_eq!(local.host_side(), "127.0.0.1:8080");
    assert_eq!(parse_publish(&local.to_string()).unwrap(), local);
    let all = parse_publish("0.0.0.0:8080:80").unwrap();
    assert_eq!(
        all,
        parse_publish("8080:80").unwrap(),
        "0.0.0.0 is every address"
    );
    assert_eq!(all.host_side(), "0.0.0.0:8080");
    assert_eq!(
        parse_publish("53:5353/udp").unwrap().to_string(),
        "53:5353/udp"
    );
    assert_eq!(
        parse_publish("1:65535/tcp").unwrap().to_string(),
        "1:65535/tcp"
    );
    // No host port: a free one, taken at the start (docker's).
    for (given, shown, ip) in [
        ("80", "80/tcp", None),
        ("53/udp", "53/udp", None),
        (
            "127.0.0.1::80",
            "127.0.0.1::80/tcp",
            Some(Ipv4Addr::LOCALHOST),
        ),
        ("0.0.0.0::80", "80/tcp", None),
    ] {
        let m = parse_publish(given).unwrap();
        assert_eq!((m.host_port, m.host_ip), (0, ip), "{given}");
        assert_eq!(m.to_string(), shown);
        assert_eq!(parse_publish(shown).unwrap(), m);
    }
    for (bad, why) in [
        (":80", "expected [[ADDRESS:]HOSTPORT:]CONTAINERPORT"),
        ("0:80", "port \"0\" is not in 1..=65535"),
        ("65536:80", "port \"65536\" is not in 1..=65535"),
        ("+80:80", "port \"+80\" is not in 1..=65535"),
        ("a:80", "port \"a\" is not in 1..=65535"),
        ("80:", "port \"\" is not in 1..=65535"),
        ("80:80/sctp", "the protocol must be tcp or udp"),
        ("80:80/", "the protocol must be tcp or udp"),
        ("1.2.3:80:80", "\"1.2.3\" is not an IPv4 address"),
        ("localhost:80:80", "\"localhost\" is not an IPv4 address"),
        ("1.2.3.4::", "port \"\" is not in 1..=65535"),
        ("0", "port \"0\" is not in 1..=65535"),
        ("[::1]:80:80", "IPv6 host addresses are not supported"),
        ("::1:80:80", "IPv6 host addresses are not supported"),
    ] {
        let e = parse_publish(bad).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("invalid port mapping {bad:?}: ")),
            "{e}"
        );
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn mac_addresses_are_unicast_and_locally_administered() {
    let ip = Ipv4Addr::new(10, 89, 0, 2);
    assert_eq!(container_mac(ip), [0x02, 0x42, 10, 89, 0, 2]);
    assert_ne!(
        container_mac(ip),
        container_mac(Ipv4Addr::new(10, 89, 0, 3))
    );
    let mut seen = std::collections::HashSet::new();
    for _ in 0..64 {
        let mac = bridge_mac().unwrap();
        assert_eq!(mac[0] & 3, 2, "{mac:02x?}: multicast or universal");
        seen.insert(mac);
    }
    assert!(seen.len() > 60, "bridge MACs are not random: {seen:02x?}");
}

#[test]
fn modes_and_names() {
    assert_eq!(Mode::parse("bridge").unwrap(), Mode::Bridge);
    assert_eq!(Mode::parse("none").unwrap(), Mode::None);
    assert_eq!(Mode::parse("host").unwrap(), Mode::Host);
    assert!(Mode::parse("container:x").is_err());
    assert!(!Mode::Host.new_netns() && Mode::None.new_netns());
    assert_eq!(
        Mode::parse_with_container("container:web").unwrap(),
        (Mode::Container, Some("web".to_string()))
    );
    assert_eq!(
        Mode::parse_with_container("none").unwrap(),
        (Mode::None, None)
    );
    for bad in ["container:", "container", "bogus"] {
        assert!(Mode::parse_with_container(bad).is_err(), "{bad}");
    }
    assert!(!Mode::Container.new_netns() && Mode::Container.not_the_hosts());
    assert!(!Mode::Host.not_the_hosts());
    assert_eq!(Options::default().bridge, "tupper0");
    assert_eq!(Options::default().subnet.to_string(), DEFAULT_SUBNET);

    let id = "3f2a9c0d1e7b5a6f00112233445566778899aabbccddeeff0011223344556677";
    assert_eq!(host_veth_name(id), "tp3f2a9c0d1e7b");
    let a = host_veth_name("web-1");
    let b = host_veth_name("web-2");
    assert_eq!((a.len(), b.len()), (14, 14));
    assert!(a.starts_with("tp") && a != b, "{a} {b}");
    assert_eq!(a, host_veth_name("web-1"));
    check_ifname(&a, "veth").unwrap();

    assert!(check_ifname("tupper0", "bridge name").is_ok());
    assert_eq!(
        check_ifname("a-bridge-name-16", "bridge name")
            .unwrap_err()
            .to_string(),
        "invalid bridge name \"a-bridge-name-16\": it is longer than 15 bytes"
    );
    assert!(check_ifname("a/b", "bridge name").is_err());
    assert!(check_ifname("", "bridge name").is_err());
}

#[test]
fn mac_address_option_parses_and_is_kept() {
    assert_eq!(
        parse_mac("92:d0:c6:0a:29:33").unwrap(),
        [0x92, 0xd0, 0xc6, 0x0a, 0x29, 0x33]
    );
    assert_eq!(
        parse_mac("02-42-AC-11-00-02").unwrap(),
        [2, 0x42, 0xac, 0x11, 0, 2]
    );
    for bad in [
        "",
        "92:d0:c6:0a:29",
        "92:d0:c6:0a:29:33:00",
        "92:d0:c6:0a:29:3",
        "zz:d0:c6:0a:29:33",
        "92:d0-c6:0a:29:33",
        "01:00:5e:00:00:01",
        "00:00:00:00:00:00",
    ] {
        let e = parse_mac(bad).unwrap_err().to_string();
        assert!(e.starts_with("invalid --mac-address"), "{bad}: {e}");
    }
    let o = Options {
        mac: Some([0x92, 0xd0, 0xc6, 0x0a, 0x29, 0x33]),
        ..Options::default()
    };
    o.validate().unwrap();
    let s = o.settings();
    assert_eq!(
        s.requested_mac_address.as_deref(),
        Some("92:d0:c6:0a:29:33")
    );
    assert_eq!(s.options().unwrap(), o);
    let none = Options {
        mode: Mode::None,
        ..o
    };
    assert!(none
        .validate()
        .unwrap_err()
        .to_string()
        .contains("only --net bridge"));
}

#[test]
fn options_are_validated_before_anything_happens() {
    let mut o = Options {
        mode: Mode::None,
        ip: Some(Ipv4Addr::new(10, 89, 0, 5)),
        ..Options::default()
    };
    assert!(o
        .validate()
        .unwrap_err()
        .to_string()
        .contains("only --net bridge"));
    o.ip = None;
    o.publish = vec![parse_publish("80:80").unwrap()];
    assert!(o
        .validate()
        .unwrap_err()
        .to_string()
        .contains("only with --net bridge"));
    o.mode = Mode::Bridge;
    o.validate().unwrap();
    o.publish.push(parse_publish("80:81").unwrap());
    assert_eq!(
        o.validate().unwrap_err().to_string(),
        "invalid -p 80:81/tcp: host port 80/tcp is already published by -p 80:80/tcp"
    );
    o.publish[1] = parse_publish("80:81/udp").unwrap();
    o.validate().unwrap();
    // Bad input through prepare: refused before any socket or lease.
    let dir = TempDir::new("validate");
    o.bridge = "x".repeat(16);
    let e = prepare(&dir.0, "c1", &o, &|_| true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("longer than 15 bytes"), "{e}");
    let e = prepare(&dir.0, "bad id", &Options::default(), &|_| true)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("invalid container ID"), "{e}");
    assert!(!dir.0.join("leases").exists());
}

#[test]
fn a_joined_network_refuses_what_is_the_other_containers() {
    let joined = Options {
        mode: Mode::Container,
        container: Some("web".into()),
        ..Options::default()
    };
    joined.validate().unwrap();
    // The record keeps it, and gives it back for another start.
    let settings = joined.settings();
    assert_eq!(settings.mode, "container:web");
    assert_eq!(settings.options().unwrap(), joined);
    let refused = |o: Options, flag: &str| {
        let e = o.validate().unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{flag} with --net container:web")),
            "{e}"
        );
    };
    refused(
        Options {
            ip: Some(Ipv4Addr::new(10, 89, 0, 5)),
            ..joined.clone()
        },
        "--ip",
    );
    refused(
        Options {
            publish: vec![parse_publish("80:80").unwrap()],
            ..joined.clone()
        },
        "-p",
    );
    for (etc, flag) in [
        (
            EtcOptions {
                dns: vec!["192.0.2.1".parse().unwrap()],
                ..EtcOptions::default()
            },
            "--dns",
        ),
        (
            EtcOptions {
                dns_search: vec!["example.org".into()],
                ..EtcOptions::default()
            },
            "--dns-search",
        ),
        (
            EtcOptions {
                dns_options: vec!["ndots:2".into()],
                ..EtcOptions::default()
            },
            "--dns-option",
        ),
        (
            EtcOptions {
                add_hosts: vec![("db".into(), Some("192.0.2.5".parse().unwrap()))],
                ..EtcOptions::default()
            },
            "--add-host",
        ),
    ] {
        refused(
            Options {
                etc,
                ..joined.clone()
            },
            flag,
        );
    }
    // A container without the mode, and the mode without a container.
    let e = Options {
        container: None,
        ..joined.clone()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(e.contains("names the container"), "{e}");
    let e = Options {
        mode: Mode::None,
        ..joined.clone()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(e.contains("only --net container: names a container"), "{e}");
}

#[test]
fn a_joined_mark_names_the_veth_and_goes_once() {
    let dir = TempDir::new("joined");
    assert_eq!(take_joined_mark(&dir.0, "c1"), None);
    mark_joined(&dir.0, "c1", "tpc1").unwrap();
    mark_joined(&dir.0, "c1", "tpc1").unwrap();
    assert_eq!(take_joined_mark(&dir.0, "c1"), Some("tpc1".to_string()));
    assert_eq!(take_joined_mark(&dir.0, "c1"), None);
    assert!(mark_joined(&dir.0, "c1", "a/b").is_err());
    assert!(mark_joined(&dir.0, "bad id", "tpc1").is_err());
    assert_eq!(std::fs::read_dir(dir.0.join("joined")).unwrap().count(), 0);
}

#[test]
fn settings_serialize_for_inspect() {
    let dir = TempDir::new("settings");
    let p = prepare(
        &dir.0,
        "c1",
        &Options {
            mode: Mode::None,
            ..Options::default()
        },
        &|_| true,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&p.settings()).unwrap(),
        r#"{"mode":"none","ports":[]}"#
    );
    release(p).unwrap();
}

// ---------------------------------------------------------------- harness

/// A process in a new network namespace (`unshare --net -- sleep 600`),
/// started from the calling thread's namespace, killed by pid on drop.
struct NetNs {
    child: Child,
    pidfd: OwnedFd,
}

impl NetNs {
    fn new() -> NetNs {
        let mine = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let child = Command::new("unshare")
            .args(["--net", "--", "sleep", "600"])
            .spawn()
            .expect("start unshare --net");
        let ns = NetNs {
            pidfd: rustix::process::pidfd_open(
                rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
                rustix::process::PidfdFlags::empty(),
            )
            .unwrap(),
            child,
        };
        // Wait until unshare(2) has happened.
        let path = format!("/proc/{}/ns/net", ns.child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_link(&path).ok().as_ref() == Some(&mine) || !Path::new(&path).exists() {
            assert!(Instant::now() < deadline, "unshare --net did not happen");
            std::thread::sleep(Duration::from_millis(1));
        }
        ns
    }

    fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `f` on a thread that has entered this namespace.
    fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let fd = self.pidfd();
        std::thread::scope(|s| {
            s.spawn(move || {
                rustix::thread::move_into_thread_name_spaces(fd, ThreadNameSpaceType::NETWORK)
                    .unwrap();
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Kills the process and waits for it (its namespace then goes away).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `ip ARGS` in the calling thread's namespace; returns stdout.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `f` inside a fresh test host namespace with `lo` up.
fn in_test_host<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let host = NetNs::new();
    host.run(|| {
        ip(&["link", "set", "lo", "up"]);
        f()
    })
}

fn bridge_opts(bridge: &str, subnet: &str) -> Options {
    Options {
        mode: Mode::Bridge,
        bridge: bridge.into(),
        subnet: parse_subnet(subnet).unwrap(),
        ip: None,
        mac: None,
        publish: Vec::new(),
        etc: EtcOptions::default(),
        container: None,
        network: None,
        aliases: Vec::new(),
        internal: false,
        connected: Vec::new(),
    }
}

/// Links of the calling thread's namespace, one name per entry.
fn link_names() -> Vec<String> {
    ip(&["-o", "link", "show"])
        .lines()
        .map(|l| {
            l.split(':')
                .nth(1)
                .unwrap()
                .trim()
                .split('@')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Waits (up to 5 s) until link `name` is gone from the calling thread's
/// namespace (a veth goes when the netns of its peer is cleaned up).
fn wait_link_gone(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while link_names().iter().any(|n| n == name) {
        assert!(Instant::now() < deadline, "{name} is still there");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn connect(addr: &str) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr.parse::<SocketAddr>().unwrap(), Duration::from_secs(3))
}

/// `listener` accepts one connection; returns the peer address after an echo
/// of one byte, which `client` sends and reads back.
fn echo_once(listener: &TcpListener, mut client: TcpStream) -> SocketAddr {
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    client.write_all(b"x").unwrap();
    let (mut s, peer) = listener.accept().unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    s.write_all(&b).unwrap();
    let mut r = [0u8; 1];
    client.read_exact(&mut r).unwrap();
    assert_eq!(&r, b"x");
    peer
}

// ---------------------------------------------------------------- root

#[test]
fn bridge_mode_end_to_end() {
    in_test_host(|| {
        let dir = TempDir::new("e2e");
        let opts = bridge_opts("tpt-e2e", "10.201.0.0/24");
        let mut c1 = NetNs::new();
        let c2 = NetNs::new();
        let p1 = prepare(&dir.0, "aaaaaaaaaa01", &opts, &|_| true).unwrap();
        assert_eq!(p1.address(), Some(Ipv4Addr::new(10, 201, 0, 2)));
        // prepare changed nothing on the host.
        assert!(!link_names().contains(&"tpt-e2e".to_string()));
        let a1 = attach(&p1, c1.pidfd()).unwrap();
        assert!(a1.created_bridge);
        let p2 = prepare(&dir.0, "aaaaaaaaaa02", &opts, &|_| true).unwrap();
        let a2 = attach(&p2, c2.pidfd()).unwrap();
        assert!(!a2.created_bridge);
        assert_eq!(a2.address, Some(Ipv4Addr::new(10, 201, 0, 3)));

        // On the host: the bridge with the gateway address, up; the host end
        // on it and up.
        let br = ip(&["-d", "-o", "link", "show", "tpt-e2e"]);
        assert!(br.contains("bridge") && br.contains(",UP"), "{br}");
        let addr = ip(&["-o", "-4", "addr", "show", "dev", "tpt-e2e"]);
        assert!(
            addr.contains("inet 10.201.0.1/24 brd 10.201.0.255"),
            "{addr}"
        );
        let veth = p1.host_veth().unwrap().to_string();
        assert_eq!(veth, "tpaaaaaaaaaa01");
        let l = ip(&["-o", "link", "show", &veth]);
        assert!(
            l.contains("master tpt-e2e") && l.contains("state UP"),
            "{l}"
        );
        let t = ip(&["-o", "link", "show", "tpaaaaaaaaaa01"]);
        assert!(t.contains("LOWER_UP"), "{t}");

        // Inside: eth0 with the address, the default route; lo is left to the
        // container's own process (tupper's child sets it up), not to attach.
        c1.run(|| {
            let a = ip(&["-o", "-4", "addr", "show", "dev", "eth0"]);
            assert!(a.contains("inet 10.201.0.2/24 brd 10.201.0.255"), "{a}");
            let lo = ip(&["-o", "link", "show", "lo"]);
            assert!(lo.contains("<LOOPBACK>"), "attach touched lo: {lo}");
            let r = ip(&["route", "show", "default"]);
            assert_eq!(r.trim(), "default via 10.201.0.1 dev eth0");
            assert_eq!(link_names(), ["lo", "eth0"]);
        });

        // The container reaches the gateway; the two containers reach each other.
        let gw = TcpListener::bind("10.201.0.1:7001").unwrap();
        let peer = echo_once(&gw, c1.run(|| connect("10.201.0.1:7001")).unwrap());
        assert_eq!(peer.ip(), Ipv4Addr::new(10, 201, 0, 2));
        let l1 = c1.run(|| TcpListener::bind("10.201.0.2:7002").unwrap());
        let peer = echo_once(&l1, c2.run(|| connect("10.201.0.2:7002")).unwrap());
        assert_eq!(peer.ip(), Ipv4Addr::new(10, 201, 0, 3));

        // /etc files through the public API, with the address.
        let root = TempDir::new("e2e-root");
        let rfd = rustix::fs::open(
            &root.0,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            FileMode::empty(),
        )
        .unwrap();
        write_etc_files(rfd.as_fd(), "web", "", &p1).unwrap();
        let hosts = std::fs::read_to_string(root.0.join("etc/hosts")).unwrap();
        assert!(hosts.ends_with("10.201.0.2\tweb\n"), "{hosts}");
        let s = p1.settings();
        assert_eq!(s.address.as_deref(), Some("10.201.0.2"));
        assert_eq!(s.gateway.as_deref(), Some("10.201.0.1"));

        // The container ends: its veth goes with its namespace, the lease is
        // freed and the address is given again.
        // (A socket made in its namespace would keep the namespace alive.)
        drop(l1);
        c1.kill();
        wait_link_gone(&veth);
        release(p1).unwrap();
        let c3 = NetNs::new();
        let p3 = prepare(&dir.0, "aaaaaaaaaa03", &opts, &|_| true).unwrap();
        assert_eq!(p3.address(), Some(Ipv4Addr::new(10, 201, 0, 2)));
        attach(&p3, c3.pidfd()).unwrap();
        drop(c3);
        drop(c2);
        release(p2).unwrap();
        release(p3).unwrap();
        assert!(lease::list(&dir.0).unwrap().is_empty());
    });
}

#[test]
fn none_mode_has_only_lo_up_and_host_mode_does_nothing() {
    in_test_host(|| {
        let dir = TempDir::new("none");
        let c = NetNs::new();
        let none = Options {
            mode: Mode::None,
            ..Options::default()
        };
        let p = prepare(&dir.0, "n1", &none, &|_| true).unwrap();
        let before = link_names();
        attach(&p, c.pidfd()).unwrap();
        c.run(|| {
            assert_eq!(link_names(), ["lo"]);
            let lo = ip(&["-o", "link", "show", "lo"]);
            assert!(lo.contains("<LOOPBACK,UP,LOWER_UP>"), "{lo}");
        });
        assert_eq!(link_names(), before);
        release(p).unwrap();

        let host = Options {
            mode: Mode::Host,
            ..Options::default()
        };
        let p = prepare(&dir.0, "h1", &host, &|_| true).unwrap();
        let a = attach(&p, c.pidfd()).unwrap();
        assert_eq!((a.host_veth, a.address), (None, None));
        assert_eq!(link_names(), before);
        release(p).unwrap();
        assert!(!dir.0.join("leases").exists());
    });
}

#[test]
fn kernel_errors_name_the_request_and_the_device() {
    in_test_host(|| {
        let dir = TempDir::new("kerr");
        let opts = bridge_opts("tpt-kerr", "10.202.0.0/24");
        let c = NetNs::new();
        let p = prepare(&dir.0, "bbbbbbbbbb01", &opts, &|_| true).unwrap();
        // Someone takes the veth's name between prepare and attach.
        ip(&[
            "link",
            "add",
            "tpbbbbbbbbbb01",
            "type",
            "veth",
            "peer",
            "name",
            "tpt-kerr-p",
        ]);
        let e = attach(&p, c.pidfd()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert!(
            e.to_string()
                .starts_with("create veth tpbbbbbbbbbb01 on tpt-kerr: File exists (os error 17)"),
            "{e}"
        );
        release(p).unwrap();
        // And prepare refuses it up front next time.
        let e = prepare(&dir.0, "bbbbbbbbbb01", &opts, &|_| true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("an interface of that name already exists"),
            "{e}"
        );
    });
}

#[test]
fn bad_input_is_refused_with_nothing_created() {
    in_test_host(|| {
        let dir = TempDir::new("bad");
        ip(&[
            "link",
            "add",
            "tpt-notbr",
            "type",
            "veth",
            "peer",
            "name",
            "tpt-notbr-p",
        ]);
        ip(&["link", "add", "tpt-other", "type", "bridge"]);
        ip(&["addr", "add", "10.77.0.1/24", "dev", "tpt-other"]);
        let links = link_names();
        let tables = || {
            let nf = Netlink::netfilter().unwrap();
            nf.request(&mut nft::get_chain("masq-tpt-bad"), &|| "get".into())
                .unwrap_err()
                .raw_os_error()
        };
        let c = NetNs::new();
        let cases: Vec<(Options, &str)> = vec![
            (
                bridge_opts("tpt-notbr", "10.203.0.0/24"),
                "use tpt-notbr as the bridge: it exists and is not a bridge (kind veth)",
            ),
            (
                bridge_opts("tpt-other", "10.203.0.0/24"),
                "use bridge tpt-other: it has address 10.77.0.1/24, not 10.203.0.1/24",
            ),
            (
                bridge_opts("tpt-bridge-is-long", "10.203.0.0/24"),
                "invalid bridge name \"tpt-bridge-is-long\": it is longer than 15 bytes",
            ),
            (
                Options {
                    ip: Some(Ipv4Addr::new(10, 204, 0, 2)),
                    ..bridge_opts("tpt-bad", "10.203.0.0/24")
                },
                "invalid --ip 10.204.0.2: it is outside subnet 10.203.0.0/24",
            ),
            (
                Options {
                    ip: Some(Ipv4Addr::new(10, 203, 0, 1)),
                    ..bridge_opts("tpt-bad", "10.203.0.0/24")
                },
                "invalid --ip 10.203.0.1: it is the gateway",
            ),
            (
                Options {
                    ip: Some(Ipv4Addr::new(10, 203, 0, 255)),
                    ..bridge_opts("tpt-bad", "10.203.0.0/24")
                },
                "invalid --ip 10.203.0.255: it is the broadcast address",
            ),
        ];
        for (o, want) in cases {
            let e = prepare(&dir.0, "cccccccccc01", &o, &|_| true)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "want {want:?}, got {e:?}");
        }
        assert!(!dir.0.join("leases").exists() || lease::list(&dir.0).unwrap().is_empty());

        // In use, and an exhausted subnet: the second one is refused.
        let o = bridge_opts("tpt-bad", "10.203.0.0/30");
        let p = prepare(&dir.0, "cccccccccc02", &o, &|_| true).unwrap();
        let e = prepare(&dir.0, "cccccccccc03", &o, &|_| true)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("take an address in subnet 10.203.0.0/30: no free address is left"),
            "{e}"
        );
        let taken = Options {
            ip: p.address(),
            ..bridge_opts("tpt-bad", "10.203.0.0/24")
        };
        let e = prepare(&dir.0, "cccccccccc04", &taken, &|_| true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "take address 10.203.0.2: it is in use by container cccccccccc02"
        );
        assert_eq!(lease::list(&dir.0).unwrap().len(), 1);

        // Nothing was created by any of it: no link, no nftables chain.
        assert_eq!(link_names(), links);
        assert_eq!(tables(), Some(libc::ENOENT));
        // The refused bridges were not modified.
        let a = ip(&["-o", "-4", "addr", "show", "dev", "tpt-other"]);
        assert_eq!(a.lines().count(), 1, "{a}");
        drop(c);
        release(p).unwrap();
    });
}

#[test]
fn twenty_concurrent_prepares_get_twenty_addresses() {
    in_test_host(|| {
        let dir = TempDir::new("conc");
        let opts = bridge_opts("tpt-conc", "10.205.0.0/24");
        let barrier = std::sync::Barrier::new(20);
        let prepared: Vec<Prepared> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..20)
                .map(|i| {
                    let (dir, opts, barrier) = (&dir, &opts, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        prepare(&dir.0, &format!("conc{i:02}"), opts, &|_| true).unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut addrs: Vec<Ipv4Addr> = prepared.iter().map(|p| p.address().unwrap()).collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), 20);
        for p in prepared {
            release(p).unwrap();
        }
        assert!(lease::list(&dir.0).unwrap().is_empty());
    });
}

#[test]
fn two_hundred_sequential_runs_in_a_24() {
    in_test_host(|| {
        let dir = TempDir::new("seq");
        let opts = bridge_opts("tpt-seq", "10.206.0.0/24");
        for i in 0..200 {
            let mut c = NetNs::new();
            let p = prepare(&dir.0, &format!("dddddddd{i:04}"), &opts, &|_| true)
                .unwrap_or_else(|e| panic!("run {i}: {e}"));
            attach(&p, c.pidfd()).unwrap_or_else(|e| panic!("run {i}: {e}"));
            c.kill();
            release(p).unwrap();
        }
        assert!(lease::list(&dir.0).unwrap().is_empty());
    });
}

#[test]
fn nat_and_published_ports_with_an_outside_namespace() {
    in_test_host(|| {
        let dir = TempDir::new("nat");
        // The outside world: a namespace on 192.0.2.2, the test host on 192.0.2.1.
        let outside = NetNs::new();
        let pid = outside.pid().to_string();
        ip(&[
            "link", "add", "tpt-out0", "type", "veth", "peer", "name", "tpt-out1", "netns", &pid,
        ]);
        ip(&["addr", "add", "192.0.2.1/24", "dev", "tpt-out0"]);
        ip(&["link", "set", "tpt-out0", "up"]);
        outside.run(|| {
            ip(&["addr", "add", "192.0.2.2/24", "dev", "tpt-out1"]);
            ip(&["link", "set", "tpt-out1", "up"]);
            ip(&["link", "set", "lo", "up"]);
        });

        let mut opts = bridge_opts("tpt-nat", "10.207.0.0/24");
        opts.publish = vec![parse_publish("8080:80/tcp").unwrap()];
        let c = NetNs::new();
        let id = "eeeeeeeeee01";
        let p = prepare(&dir.0, id, &opts, &|_| true).unwrap();
        attach(&p, c.pidfd()).unwrap();
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
            "1\n"
        );

        // Outbound: the outside host sees the test host's address.
        let l = outside.run(|| TcpListener::bind("192.0.2.2:9000").unwrap());
        let peer = echo_once(&l, c.run(|| connect("192.0.2.2:9000")).unwrap());
        assert_eq!(peer.ip(), Ipv4Addr::new(192, 0, 2, 1));

        // Inbound: the outside reaches the container's port 80 through 8080.
        let server = c.run(|| TcpListener::bind("0.0.0.0:80").unwrap());
        let peer = echo_once(&server, outside.run(|| connect("192.0.2.1:8080")).unwrap());
        assert_eq!(peer.ip(), Ipv4Addr::new(192, 0, 2, 2));

        // Ending the container removes the rule.
        let nf = Netlink::netfilter().unwrap();
        for chain in nft::dnat_chains(id) {
            nf.request(&mut nft::get_chain(&chain), &|| "get".into())
                .unwrap();
        }
        drop(c);
        release(p).unwrap();
        for chain in nft::dnat_chains(id) {
            let e = nf
                .request(&mut nft::get_chain(&chain), &|| "get".into())
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{chain}");
        }
        let refused = outside.run(|| connect("192.0.2.1:8080"));
        assert!(refused.is_err(), "port 8080 still forwarded");
        // The masquerade stays for the next container of the bridge.
        nf.request(&mut nft::get_chain("masq-tpt-nat"), &|| "get".into())
            .unwrap();
        drop(server);
    });
}

#[test]
fn leftovers_of_dead_containers_are_reclaimed() {
    in_test_host(|| {
        let dir = TempDir::new("reclaim");
        let mut opts = bridge_opts("tpt-recl", "10.208.0.0/30");
        opts.publish = vec![parse_publish("8081:80").unwrap()];
        let nf = Netlink::netfilter().unwrap();
        // Both chains of a container, or neither.
        let chain_exists = |id: &str| {
            let [a, b] = nft::dnat_chains(id).map(|c| {
                nf.request(&mut nft::get_chain(&c), &|| "get".into())
                    .is_ok()
            });
            assert_eq!(a, b, "one of the two chains of {id}");
            a
        };

        // A crashes: never released. The next allocation takes its address
        // and removes its DNAT rule.
        let mut a = NetNs::new();
        let pa = prepare(&dir.0, "ffffffffff01", &opts, &|_| true).unwrap();
        attach(&pa, a.pidfd()).unwrap();
        assert!(chain_exists("ffffffffff01"));
        a.kill();
        drop(pa); // no release: what a crash leaves, with a holder pid that is gone
        lease::tests::crash_holder(&dir.0, "ffffffffff01");
        let b = NetNs::new();
        let pb = prepare(&dir.0, "ffffffffff02", &opts, &|id| id != "ffffffffff01").unwrap();
        assert_eq!(pb.address(), Some(Ipv4Addr::new(10, 208, 0, 2)));
        assert!(!chain_exists("ffffffffff01"));
        attach(&pb, b.pidfd()).unwrap();

        // B crashes too, and a stray host end sits on the bridge.
        drop(b);
        drop(pb);
        ip(&[
            "link",
            "add",
            "tp0123456789ab",
            "type",
            "veth",
            "peer",
            "name",
            "tpt-stray",
        ]);
        ip(&["link", "set", "tp0123456789ab", "master", "tpt-recl"]);
        // A live container's chain must survive.
        let keep = Netlink::netfilter().unwrap();
        keep.request(
            &mut nft::add_dnat("0000000000aa", Ipv4Addr::new(10, 208, 0, 2), &opts.publish),
            &|| "add".into(),
        )
        .unwrap();
        reclaim(&dir.0, &opts, &|id| id == "0000000000aa").unwrap();
        assert!(lease::list(&dir.0).unwrap().is_empty());
        assert!(!chain_exists("ffffffffff02"));
        assert!(chain_exists("0000000000aa"));
        wait_link_gone("tp0123456789ab");
        assert!(link_names().contains(&"tpt-recl".to_string()));
    });
}

/// Prints the cost of each step (run with `--nocapture`, in release mode for
/// the figures of docs/network.md). Containers stay alive until the end, so
/// that no namespace teardown (which holds RTNL) overlaps a measurement.
#[test]
fn attach_cost() {
    in_test_host(|| {
        let dir = TempDir::new("cost");
        let opts = bridge_opts("tpt-cost", "10.209.0.0/24");
        let none = Options {
            mode: Mode::None,
            ..Options::default()
        };
        let (mut prep, mut bridge, mut nonet, mut rel) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut alive = Vec::new();
        let mut prepared = Vec::new();
        // Let each `unshare ... sleep` finish starting before measuring: on two
        // cores its exec competes with the measurement.
        let settle = || std::thread::sleep(Duration::from_millis(5));
        for i in 0..41 {
            let c = NetNs::new();
            settle();
            let t = Instant::now();
            let p = prepare(&dir.0, &format!("cost{i:03}"), &opts, &|_| true).unwrap();
            let a = attach(&p, c.pidfd()).unwrap();
            if i > 0 {
                // The first one creates the bridge and the NAT table.
                prep.push(t.elapsed() - a.elapsed);
                bridge.push(a.elapsed);
            }
            prepared.push(p);
            alive.push(c);
            let c = NetNs::new();
            settle();
            let p = prepare(&dir.0, &format!("costn{i:03}"), &none, &|_| true).unwrap();
            nonet.push(attach(&p, c.pidfd()).unwrap().elapsed);
            release(p).unwrap();
            alive.push(c);
        }
        for p in prepared {
            let t = Instant::now();
            release(p).unwrap();
            rel.push(t.elapsed());
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (p, b, n, r) = (
            median(&mut prep),
            median(&mut bridge),
            median(&mut nonet),
            median(&mut rel),
        );
        eprintln!(
            "net cost (median of 40): prepare bridge {p:?}, attach bridge {b:?}, \
             attach none {n:?}, release bridge {r:?}"
        );
        assert!(b < Duration::from_millis(20), "bridge attach took {b:?}");
        assert!(n < b, "none {n:?} is not cheaper than bridge {b:?}");
    });
}
