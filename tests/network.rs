//! `tupper run`'s network, end to end through the binary (issue 3, "Must
//! hold").
//!
//! The host's own network is never touched. Each test makes a "test host": a
//! network namespace held by an `unshare --net sleep` process that the test
//! starts and kills by pid. Every command of the test that touches the network
//! (`tupper`, `ip`, `nft`, `strace`) is spawned from a short-lived thread that
//! first moved into that namespace with `setns` ([`NetNs::within`] checks it),
//! so the bridge (`tpt-...`), the veths, tupper's nftables table and
//! `ip_forward` live and die there. The NAT and port tests add an "outside"
//! namespace joined to the test host by a veth pair on 192.0.2.0/24
//! (documentation addresses). Traffic goes only to addresses the test made in
//! its own namespaces. Each test has its own store, bridge name and subnet
//! (10.200.N.0/24). When a test ends, [`Bg`] and [`NetNs`] guards kill what it
//! started, by pid, and its namespaces vanish with everything in them.

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ harness

/// A network namespace made for one test, held by an `unshare --net sleep`
/// process; killed (by pid) when dropped.
struct NetNs {
    holder: Child,
    ns: OwnedFd,
    /// `readlink /proc/PID/ns/net`: `net:[INODE]`.
    link: String,
}

fn thread_netns() -> String {
    fs::read_link("/proc/thread-self/ns/net")
        .expect("readlink /proc/thread-self/ns/net")
        .to_string_lossy()
        .into_owned()
}

impl NetNs {
    /// A fresh namespace with `lo` up.
    fn new() -> NetNs {
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "300"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start unshare --net sleep (util-linux)");
        let pid = holder.id() as i32;
        let path = format!("/proc/{pid}/ns/net");
        let own = thread_netns();
        let other = || {
            fs::read_link(&path)
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        // Only once `unshare` has exec'd `sleep` is the holder in its own namespace.
        let ready = wait_for(Duration::from_secs(10), || {
            comm(pid) == "sleep" && !other().is_empty() && other() != own
        });
        let opened = ready
            .then(|| {
                rustix::fs::open(
                    path.as_str(),
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .ok()
            })
            .flatten();
        let link = other();
        let ns = match opened {
            Some(ns) if link.starts_with("net:[") && link != own => NetNs { holder, ns, link },
            _ => {
                let mut holder = holder;
                kill(pid, 9);
                let _ = holder.wait();
                panic!("unshare --net sleep did not make a network namespace of its own");
            }
        };
        ns.sh("ip link set lo up");
        ns
    }

    /// The holder's pid (for `ip link ... netns PID`).
    fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// Runs `f` on a new thread that has moved into this namespace: whatever
    /// it spawns lives there.
    fn within<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        within_netns(self.ns.as_fd(), || {
            assert_eq!(thread_netns(), self.link, "not in the test namespace");
            f()
        })
    }

    /// Runs `c` here to its end (with the harness's watchdog).
    fn run(&self, c: Command) -> Out {
        self.within(move || run_cmd(c, None, DEFAULT_TIMEOUT))
    }

    /// `sh -c SCRIPT` here; must succeed; returns stdout.
    fn sh(&self, script: &str) -> String {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        let out = self.run(c);
        assert_eq!(out.code, 0, "sh -c {script:?} failed: {out:?}");
        out.stdout
    }

    /// `sh -c SCRIPT` here, whatever its outcome.
    fn try_sh(&self, script: &str) -> Out {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        self.run(c)
    }

    /// Starts `c` here in the background.
    fn spawn(&self, c: Command) -> Bg {
        self.within(move || Bg::spawn(c))
    }
}

/// Runs `f` on a new thread that has moved into the network namespace `ns`.
fn within_netns<T: Send>(ns: std::os::fd::BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::move_into_link_name_space(
                ns,
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns into a network namespace");
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Runs `f` on a new thread in the network namespace of process `pid` (a
/// container's).
fn within_netns_of<T: Send>(pid: i64, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/proc/{pid}/ns/net");
    let ns = rustix::fs::open(
        path.as_str(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap_or_else(|e| panic!("open {path}: {e}"));
    within_netns(ns.as_fd(), f)
}

impl Drop for NetNs {
    fn drop(&mut self) {
        kill(self.holder.id() as i32, 9);
        let _ = self.holder.wait();
    }
}

/// A command running in the background with piped stdin, stdout and stderr;
/// killed (SIGKILL, by pid) when dropped before [`Bg::finish`].
struct Bg {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    done: bool,
}

impl Bg {
    fn spawn(mut c: Command) -> Bg {
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn {c:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(l) = line else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Bg {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
            done: false,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits (at most 20 s) for a line of stdout that contains `needle`.
    #[track_caller]
    fn line_with(&mut self, needle: &str) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(e) => {
                    let err = match e {
                        // stdout closed: the command ended; its stderr is complete.
                        mpsc::RecvTimeoutError::Disconnected => {
                            self.stderr.take().and_then(|h| h.join().ok())
                        }
                        mpsc::RecvTimeoutError::Timeout => None,
                    };
                    panic!(
                        "no line with {needle:?} ({e:?}); stdout so far: {:?}; stderr: {err:?}",
                        self.seen
                    );
                }
            }
        }
    }

    /// Closes stdin (the containers here end on EOF), waits (at most 30 s)
    /// and returns the outcome; stdout holds every line, seen or not.
    fn finish(&mut self) -> Out {
        drop(self.stdin.take());
        let dog = Watchdog::new(self.child.id(), Duration::from_secs(30));
        let status = self.child.wait().expect("wait");
        let fired = dog.fired();
        self.done = true;
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(l);
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        use std::os::unix::process::ExitStatusExt;
        let out = Out {
            code: status
                .code()
                .unwrap_or_else(|| -status.signal().unwrap_or(0)),
            stdout: self.seen.iter().map(|l| format!("{l}\n")).collect(),
            stderr,
        };
        assert!(!fired, "killed after 30 s: {out:?}");
        out
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if !self.done {
            kill(self.pid(), 9);
            let _ = self.child.wait();
        }
    }
}

/// `tupper --root ROOT --bridge BRIDGE --subnet SUBNET ARGS...`, without
/// tupper's environment variables.
fn tupper_net(store: &TestStore, bridge: &str, subnet: &str, args: &[&str]) -> Command {
    let mut c = tupper(store);
    c.env_remove("TUPPER_BRIDGE").env_remove("TUPPER_SUBNET");
    c.args(["--bridge", bridge, "--subnet", subnet]).args(args);
    c
}

/// One test's world: a store with the busybox image `bb`, a test host, a
/// bridge name and a /24.
struct World {
    host: NetNs,
    store: TestStore,
    bridge: String,
    subnet: String,
    /// `10.200.N`.
    net: String,
}

impl World {
    fn new(tag: &str, n: u8) -> World {
        let bridge = format!("tpt-{tag}");
        assert!(bridge.len() <= 15);
        let store = TestStore::new();
        store.import_busybox("bb");
        World {
            host: NetNs::new(),
            store,
            bridge,
            subnet: format!("10.200.{n}.0/24"),
            net: format!("10.200.{n}"),
        }
    }

    /// `10.200.N.LAST`.
    fn addr(&self, last: u8) -> String {
        format!("{}.{last}", self.net)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        tupper_net(&self.store, &self.bridge, &self.subnet, args)
    }

    /// `tupper ARGS...` in the test host.
    fn tupper(&self, args: &[&str]) -> Out {
        self.host.run(self.cmd(args))
    }

    /// `tupper run --rm bb sh -c SCRIPT` (bridge, the default) in the test host.
    fn run_sh(&self, script: &str) -> Out {
        self.tupper(&["run", "--rm", "bb", "sh", "-c", script])
    }

    /// `tupper ARGS...` in the background in the test host.
    fn spawn(&self, args: &[&str]) -> Bg {
        self.host.spawn(self.cmd(args))
    }

    /// The lease lines of the store (`ADDRESS ID PORTS`).
    fn leases(&self) -> Vec<String> {
        leases(&self.store)
    }

    /// The test host's interfaces (name, kind, bridge) and IPv4 addresses,
    /// one per line, without what changes by itself (operational state,
    /// IPv6 link-local addresses).
    fn links(&self) -> String {
        let text = self.host.sh("ip -o -d link; echo ---; ip -o -4 addr");
        let (link, addr) = text.split_once("---\n").unwrap();
        let mut v: Vec<String> = link
            .lines()
            .map(|l| {
                let name = l.split(": ").nth(1).unwrap_or(l);
                let word_after = |w: &str| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.iter()
                        .position(|x| *x == w)
                        .and_then(|i| f.get(i + 1))
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                };
                let kind = ["bridge", "veth"]
                    .into_iter()
                    .find(|k| l.contains(&format!("\\    {k} ")))
                    .unwrap_or("-");
                format!("link {name} {kind} master={}", word_after("master"))
            })
            .collect();
        v.extend(addr.lines().map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!(
                "addr {} {}",
                f.get(1).unwrap_or(&""),
                f.get(3).unwrap_or(&"")
            )
        }));
        v.sort();
        v.join("\n") + "\n"
    }
}

fn leases(store: &TestStore) -> Vec<String> {
    fs::read_to_string(store.root().join("state/leases"))
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.trim() != "# end")
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The IPv4 addresses (`A.B.C.D/P`) of `ip addr` output.
fn inet(ip_addr: &str) -> Vec<String> {
    ip_addr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("inet "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// (name, flags) of each interface in `ip link` output.
fn links(ip_link: &str) -> Vec<(String, Vec<String>)> {
    ip_link
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| {
            let mut f = l.splitn(3, ": ");
            f.next()?;
            let name = f.next()?.split('@').next()?.to_string();
            let rest = f.next()?;
            let flags = rest[rest.find('<')? + 1..rest.find('>')?]
                .split(',')
                .map(str::to_string)
                .collect();
            Some((name, flags))
        })
        .collect()
}

/// A container script that prints `ADDR A.B.C.D/P` for eth0, then `up`, then
/// waits for EOF on stdin.
const PRINT_ADDR_AND_WAIT: &str =
    "ip -f inet addr show dev eth0 | sed -n 's/.*inet \\([0-9./]*\\).*/ADDR \\1/p'; echo up; read x || true";

fn addr_of(line: &str) -> String {
    line.strip_prefix("ADDR ")
        .unwrap_or_else(|| panic!("not an ADDR line: {line:?}"))
        .to_string()
}

/// The host end of the veth pair of container `id`, one that did not get a
/// bridge spare (those are `ts` + the spare's name): the first bridge run in
/// a world, which finds the bridge pool empty (its own background process
/// fills it).
fn host_veth(id: &str) -> String {
    assert!(is_id(id), "not a container ID: {id:?}");
    format!("tp{id}")
}

// ------------------------------------------------------------------ inside

/// eth0 has the lowest free address, lo is up, the default route goes via the
/// gateway, /etc/hosts names the container, and the gateway answers a ping.
#[test]
fn bridge_container_sees_its_network() {
    let w = World::new("in", 1);
    let gw = w.addr(1);
    let out = w.tupper(&[
        "run",
        "--rm",
        "--hostname",
        "tpt-web",
        "bb",
        "sh",
        "-c",
        &format!(
            "ip addr show dev eth0; echo ---; ip link; echo ---; ip route; echo ---; \
             cat /etc/hosts; echo ---; ping -c1 -W3 {gw} >/dev/null && echo PING-OK"
        ),
    ]);
    let text = out.ok();
    let parts: Vec<&str> = text.split("---\n").collect();
    assert_eq!(parts.len(), 5, "{text}");
    assert_eq!(inet(parts[0]), vec![format!("{}/24", w.addr(2))], "{text}");
    let l = links(parts[1]);
    let lo = l.iter().find(|(n, _)| n == "lo").expect("no lo");
    assert!(lo.1.iter().any(|f| f == "UP"), "lo is not up: {text}");
    let eth0 = l.iter().find(|(n, _)| n == "eth0").expect("no eth0");
    assert!(eth0.1.iter().any(|f| f == "UP"), "eth0 is not up: {text}");
    assert_eq!(l.len(), 2, "only lo and eth0: {text}");
    assert!(
        parts[2].lines().any(
            |r| r.split_whitespace().collect::<Vec<_>>()[..].starts_with(&[
                "default",
                "via",
                gw.as_str(),
                "dev",
                "eth0"
            ])
        ),
        "no default route via {gw}: {text}"
    );
    assert!(
        parts[3].lines().any(|h| {
            let f: Vec<&str> = h.split_whitespace().collect();
            f.first() == Some(&w.addr(2).as_str()) && f.contains(&"tpt-web")
        }),
        "/etc/hosts does not name tpt-web on {}: {text}",
        w.addr(2)
    );
    assert!(
        parts[4].contains("PING-OK"),
        "the gateway did not answer: {out:?}"
    );
    // IPv4 only: eth0 has no IPv6 address, not even a link-local one.
    assert!(!parts[0].contains("inet6"), "{text}");
    // The bridge tupper made has no multicast snooping (docs/network.md).
    let br = w.host.sh(&format!("ip -d link show dev {}", w.bridge));
    assert!(br.contains("mcast_snooping 0"), "{br}");
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    w.store.assert_no_leftovers();
}

/// `--userns auto` on the bridge: the network namespace the clone makes is
/// the user namespace's, so its `/sys` shows its own links, and the parent
/// sets up the veth, address and route in it as in any other.
#[test]
fn a_container_with_a_user_namespace_is_on_the_bridge() {
    let w = World::new("usr", 49);
    let gw = w.addr(1);
    let out = w.tupper(&[
        "run",
        "--rm",
        "--userns",
        "auto",
        "bb",
        "sh",
        "-c",
        &format!(
            "cat /proc/self/uid_map; ip -o -4 addr show dev eth0; ls /sys/class/net; \
             ping -c1 -W3 {gw} >/dev/null && echo PING-OK"
        ),
    ]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        !lines[0].split_whitespace().eq(["0", "0", "4294967295"]),
        "{text}"
    );
    assert!(
        lines[1].contains(&format!(" inet {}/24 ", w.addr(2))),
        "{text}"
    );
    assert_eq!(lines[2..4], ["eth0", "lo"], "{text}");
    assert_eq!(lines[4], "PING-OK", "{text}");
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    w.store.assert_no_leftovers();
}

/// The bridge tupper makes has a MAC address of its own (docs/network.md):
/// it does not take a port's lower address when that port joins, nor change
/// when that port goes, so the gateway address a container learnt by ARP
/// stays right while other containers come and go. Here the test host adds
/// a port with the lowest unicast address, a container learns the gateway's
/// address, and the port goes: a bridge that had borrowed the port's address
/// would leave the container's gateway entry pointing at nothing.
#[test]
fn the_bridges_mac_address_is_its_own() {
    let w = World::new("mac", 40);
    let gw = w.addr(1);
    w.run_sh("true").ok();
    let mac = || {
        let l = w.host.sh(&format!("ip -o link show dev {}", w.bridge));
        let f: Vec<&str> = l.split_whitespace().collect();
        let i = f.iter().position(|x| *x == "link/ether").expect(&l);
        f[i + 1].to_string()
    };
    let first = mac();
    let b = u8::from_str_radix(&first[..2], 16).unwrap();
    assert_eq!(
        b & 3,
        2,
        "{first}: not a locally administered unicast address"
    );
    let low = "tpt-maclo";
    w.host.sh(&format!(
        "ip link add {low} address 00:00:00:00:00:01 type veth peer name tpt-macpe && \
         ip link set {low} master {} up && ip link set tpt-macpe up",
        w.bridge
    ));
    assert_eq!(mac(), first, "the bridge took its new port's address");
    let mut a = w.spawn(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        &format!(
            "ping -c1 -W3 {gw} >/dev/null && echo FIRST-OK; read x; \
             ping -c1 -W3 {gw} >/dev/null && echo SECOND-OK; ip neigh"
        ),
    ]);
    a.line_with("FIRST-OK");
    w.host.sh(&format!("ip link del {low}"));
    assert_eq!(
        mac(),
        first,
        "the bridge's address changed with a port that went"
    );
    let out = a.finish();
    assert!(
        out.stdout.contains("SECOND-OK"),
        "the gateway stopped answering once the port went: {out:?}"
    );
    w.store.assert_no_leftovers();
}

/// A container's MAC address is `02:42` and its IPv4 address, as docker's
/// (docs/network.md): when an address is given again, what the host learnt
/// of it by ARP still holds. Here the host pings a container, which then
/// ends and is gone, and the next container gets its address: the host's
/// ping reaches it at once, without waiting for its ARP entry to expire. A
/// first container keeps the bridge's carrier up throughout (a bridge that
/// loses it flushes the host's ARP entries, which would hide the difference).
#[test]
fn an_address_given_again_keeps_its_mac_address() {
    let w = World::new("remac", 41);
    w.tupper(&["run", "-d", "--name", "keep", "bb", "sleep", "60"])
        .ok();
    let ip = w.addr(3);
    w.tupper(&["run", "-d", "--name", "a", "bb", "sleep", "60"])
        .ok();
    let veth = inspected_veth(&w, "a");
    w.host.sh(&format!("busybox ping -c1 -W3 {ip} >/dev/null"));
    w.tupper(&["rm", "-f", "a"]).ok();
    // The veth pair dies with the container's namespace, a moment later.
    assert!(
        wait_for(Duration::from_secs(10), || w
            .host
            .try_sh(&format!("ip link show dev {veth}"))
            .code
            != 0),
        "{veth} is still there"
    );
    w.tupper(&["run", "-d", "--name", "b", "bb", "sleep", "60"])
        .ok();
    let inside = w
        .tupper(&["exec", "b", "ip", "-o", "link", "show", "eth0"])
        .ok();
    let want = "link/ether 02:42:0a:c8:29:03 ";
    assert!(
        inside.contains(want),
        "eth0 of {ip} is not {want}: {inside}"
    );
    let again = w.host.sh(&format!(
        "busybox ping -c1 -W2 {ip} >/dev/null && echo PING-OK; ip neigh show {ip}"
    ));
    assert!(
        again.contains("PING-OK") && again.contains("02:42:0a:c8:29:03"),
        "the host did not reach the new container at {ip} at once: {again:?}"
    );
    w.tupper(&["rm", "-f", "b", "keep"]).ok();
    w.store.assert_no_leftovers();
}

/// `--mac-address` (docker's): eth0's MAC address at every start, in
/// place of 02:42 and its IPv4 address; the host reaches it by that
/// address; refused where there is no eth0, or for a multicast address.
#[test]
fn a_mac_address_given_is_eth0s_at_every_start() {
    let w = World::new("mac", 53);
    let mac = "92:d0:c6:0a:29:33";
    let before = w.store.state();
    for (args, why) in [
        (
            &["--net", "none", "--mac-address", mac][..],
            "only --net bridge",
        ),
        (&["--mac-address", "93:d0:c6:0a:29:33"][..], "multicast"),
        (
            &["--mac-address", "92:d0:c6:0a:29"][..],
            "six hexadecimal bytes",
        ),
    ] {
        let mut v = vec!["run", "--rm"];
        v.extend(args);
        v.extend(["bb", "true"]);
        let e = w.tupper(&v).fails(125);
        assert!(
            e.contains("--mac-address") && e.contains(why),
            "{args:?}: {e}"
        );
    }
    before.assert_same(&w.store.state(), "refused --mac-address");

    w.tupper(&[
        "run",
        "-d",
        "--name",
        "m",
        "--mac-address",
        mac,
        "bb",
        "sleep",
        "60",
    ])
    .ok();
    let ip = w.addr(2);
    let want = format!("link/ether {mac} ");
    for round in ["run", "restart"] {
        let inside = w
            .tupper(&["exec", "m", "ip", "-o", "link", "show", "eth0"])
            .ok();
        assert!(inside.contains(&want), "{round}: {inside}");
        let seen = w.host.sh(&format!(
            "busybox ping -c1 -W3 {ip} >/dev/null && echo PING-OK; ip neigh show {ip}"
        ));
        assert!(
            seen.contains("PING-OK") && seen.contains(mac),
            "{round}: {seen}"
        );
        let net = &w.store.inspect("m")["network"];
        assert_eq!(net["mac_address"], mac, "{round}: {net}");
        assert_eq!(net["requested_mac_address"], mac, "{round}: {net}");
        if round == "run" {
            w.tupper(&["restart", "-t", "0", "m"]).ok();
        }
    }
    // With `-` separators and upper case, through `--rm`.
    let out = w
        .tupper(&[
            "run",
            "--rm",
            "--mac-address",
            "92-D0-C6-0A-29-34",
            "bb",
            "cat",
            "/sys/class/net/eth0/address",
        ])
        .ok();
    assert_eq!(out.trim(), "92:d0:c6:0a:29:34");
    w.tupper(&["rm", "-f", "m"]).ok();
    w.store.assert_no_leftovers();
}

/// `--ip` puts that address on eth0 (and in /etc/hosts).
#[test]
fn fixed_ip_is_on_eth0() {
    let w = World::new("ip", 2);
    let want = w.addr(77);
    let out = w.tupper(&[
        "run",
        "--rm",
        "--ip",
        &want,
        "bb",
        "sh",
        "-c",
        "ip addr show dev eth0; echo ---; cat /etc/hosts",
    ]);
    let text = out.ok();
    let (addr, hosts) = text.split_once("---\n").unwrap();
    assert_eq!(inet(addr), vec![format!("{want}/24")], "{text}");
    assert!(
        hosts.lines().any(|h| h.starts_with(&want)),
        "/etc/hosts: {text}"
    );
}

/// Two containers on one bridge: one waits, the other pings its address.
#[test]
fn two_containers_ping_each_other() {
    let w = World::new("two", 3);
    let mut a = w.spawn(&["run", "--rm", "bb", "sh", "-c", PRINT_ADDR_AND_WAIT]);
    let a_addr = addr_of(&a.line_with("ADDR"));
    a.line_with("up");
    let a_ip = a_addr.split('/').next().unwrap().to_string();
    let out = w.run_sh(&format!(
        "{PRINT_ADDR_AND_WAIT} </dev/null; ping -c1 -W3 {a_ip} >/dev/null && echo PING-OK"
    ));
    let text = out.ok();
    let b_addr = addr_of(text.lines().find(|l| l.starts_with("ADDR")).unwrap());
    assert_ne!(a_addr, b_addr, "both containers have {a_addr}");
    assert!(text.contains("PING-OK"), "{a_ip} did not answer: {out:?}");
    a.finish().ok();
    w.store.assert_no_leftovers();
}

/// `--net none`: only lo, and it is up.
#[test]
fn net_none_has_only_lo_up() {
    let w = World::new("none", 4);
    let text = w
        .tupper(&["run", "--rm", "--net", "none", "bb", "ip", "link"])
        .ok();
    let l = links(&text);
    assert_eq!(l.len(), 1, "{text}");
    assert_eq!(l[0].0, "lo", "{text}");
    assert!(l[0].1.iter().any(|f| f == "UP"), "lo is down: {text}");
    assert!(!w.links().contains(&w.bridge), "--net none made the bridge");
}

/// `--net host`: the container sees the test host's links.
#[test]
fn net_host_sees_the_host_links() {
    let w = World::new("host", 5);
    // No `dummy` module on every kernel: a veth pair is a link as good.
    w.host.sh("ip link add tpt-hl0 type veth peer name tpt-hl1");
    let text = w
        .tupper(&["run", "--rm", "--net", "host", "bb", "ip", "link"])
        .ok();
    let names: Vec<String> = links(&text).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.contains(&"tpt-hl0".to_string()) && names.contains(&"tpt-hl1".to_string()),
        "the test host's links are not visible: {text}"
    );
    assert!(!names.contains(&w.bridge), "--net host made the bridge");
}

// ------------------------------------------------------------------ on the host

/// While a container runs its host end (`tp` + ID) is up on the bridge and
/// holds a lease; afterwards the veth goes (the netns dies asynchronously)
/// and the address is free again.
#[test]
fn host_end_lives_on_the_bridge_only_while_the_container_runs() {
    let w = World::new("veth", 6);
    let mut a = w.spawn(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        "hostname; echo up; read x || true",
    ]);
    a.line_with("up");
    let id = a.seen[0].clone();
    let veth = host_veth(&id);
    let show = format!("ip -o link show dev {veth}");
    // The operational state follows the carrier through the kernel's
    // linkwatch, which may lag by up to a second.
    wait_for(Duration::from_secs(3), || {
        w.host.sh(&show).contains("state UP")
    });
    let link = w.host.sh(&show);
    assert!(link.contains(&format!("master {} ", w.bridge)), "{link}");
    assert!(link.contains("state UP"), "{link}");
    assert!(links(&link)[0].1.iter().any(|f| f == "UP"), "{link}");
    // The lease names the `tupper run` that holds it.
    assert_eq!(
        w.leases(),
        vec![format!("{} {id} - {}", w.addr(2), a.pid())]
    );
    // Neither end makes an IPv6 link-local address (whose autoconfiguration
    // packets the bridge would flood to every container).
    let v6 = w.host.sh(&format!(
        "ip -6 addr show dev {veth}; cat /proc/sys/net/ipv6/conf/{veth}/disable_ipv6"
    ));
    assert!(!v6.contains("inet6"), "{v6}");
    assert_eq!(v6.trim(), "1", "IPv6 is not off on the host end");
    a.finish().ok();
    assert!(w.leases().is_empty(), "lease not freed: {:?}", w.leases());
    let gone = wait_for(Duration::from_secs(5), || {
        w.host.try_sh(&format!("ip link show dev {veth}")).code != 0
    });
    assert!(gone, "{veth} is still there 5 s after the container ended");
    let next = w.run_sh("ip addr show dev eth0").ok();
    assert_eq!(inet(&next), vec![format!("{}/24", w.addr(2))], "{next}");
    assert!(!next.contains("inet6"), "{next}");
    w.store.assert_no_leftovers();
}

/// A `tupper run` killed with SIGKILL cannot free its lease nor remove its
/// DNAT rule; the next run finds its holder gone, reclaims both, and gets the
/// same address and host port.
#[test]
fn a_killed_runs_lease_and_rule_are_reclaimed_by_the_next_run() {
    require_nft();
    let w = World::new("kill", 13);
    let mut a = w.spawn(&[
        "run",
        "--rm",
        "-p",
        "8081:80",
        "bb",
        "sh",
        "-c",
        "hostname; echo up; sleep 60",
    ]);
    a.line_with("up");
    let id = a.seen[0].clone();
    let holder = a.pid();
    kill(holder, 9);
    a.finish();
    // What the crash left: the lease, naming a holder that is gone, and the
    // DNAT chain (the container died with its tupper: PR_SET_PDEATHSIG).
    assert_eq!(
        w.leases(),
        vec![format!("{} {id} 8081:80/tcp {holder}", w.addr(2))]
    );
    let chain = format!("dnat-{id}");
    assert!(w.host.sh("nft list table ip tupper").contains(&chain));
    let next = w
        .tupper(&[
            "run",
            "--rm",
            "-p",
            "8081:80",
            "bb",
            "sh",
            "-c",
            "ip addr show dev eth0",
        ])
        .ok();
    assert_eq!(inet(&next), vec![format!("{}/24", w.addr(2))], "{next}");
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    let table = w.host.sh("nft list table ip tupper");
    assert!(!table.contains(&chain), "{table}");
    // The killed run's record stays, dead, until `rm`.
    w.tupper(&["rm", &id]).ok();
    w.store.assert_no_leftovers();
}

/// `tupper rm` of a container whose run was killed (SIGKILL) frees its lease
/// and removes its DNAT chain, as the end of a run does; `rm -f` of a
/// running one still leaves neither behind.
#[test]
fn rm_of_a_killed_run_frees_its_lease_and_ports() {
    require_nft();
    let w = World::new("rmk", 33);
    let args = [
        "run",
        "-p",
        "9001:80",
        "bb",
        "sh",
        "-c",
        "hostname; echo up; sleep 60",
    ];
    let mut a = w.spawn(&args);
    a.line_with("up");
    let id = a.seen[0].clone();
    let holder = a.pid();
    kill(holder, 9);
    a.finish();
    let chain = format!("dnat-{id}");
    assert_eq!(
        w.leases(),
        vec![format!("{} {id} 9001:80/tcp {holder}", w.addr(2))]
    );
    assert!(w.host.sh("nft list table ip tupper").contains(&chain));
    w.tupper(&["rm", &id]).ok();
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    let table = w.host.sh("nft list table ip tupper");
    assert!(!table.contains(&chain), "{table}");

    // rm -f of a running one: its run ends and releases, rm finds nothing.
    let mut b = w.spawn(&args);
    b.line_with("up");
    let id = b.seen[0].clone();
    assert_eq!(w.leases().len(), 1, "{:?}", w.leases());
    w.tupper(&["rm", "-f", &id]).ok();
    b.finish();
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    let table = w.host.sh("nft list table ip tupper");
    assert!(!table.contains("dnat-"), "{table}");
    let ps = w.tupper(&["ps", "-a", "--json"]).ok();
    assert_eq!(ps.trim(), "[]", "{ps}");
    w.store.assert_no_leftovers();
}

/// `tupper ps` and `tupper inspect` show the address; the bridge and subnet
/// come from TUPPER_BRIDGE and TUPPER_SUBNET here.
#[test]
fn ps_and_inspect_show_the_address() {
    let w = World::new("ps", 7);
    let env = |args: &[&str]| {
        let mut c = tupper(&w.store);
        c.env("TUPPER_BRIDGE", &w.bridge)
            .env("TUPPER_SUBNET", &w.subnet)
            .args(args);
        c
    };
    let mut a = w.host.spawn(env(&[
        "run",
        "--rm",
        "--name",
        "web",
        "bb",
        "sh",
        "-c",
        "hostname; echo up; read x || true",
    ]));
    a.line_with("up");
    let text = w.host.run(env(&["inspect", "web"])).ok();
    let v: serde_json::Value = serde_json::from_str(&text).expect("inspect prints JSON");
    let id = v[0]["id"].as_str().expect("an id").to_string();
    let n = &v[0]["network"];
    assert_eq!(n["mode"], "bridge", "{text}");
    assert_eq!(n["bridge"], w.bridge.as_str(), "{text}");
    assert_eq!(n["address"], w.addr(2).as_str(), "{text}");
    assert_eq!(n["gateway"], w.addr(1).as_str(), "{text}");
    assert_eq!(n["mac_address"], "02:42:0a:c8:07:02", "{text}");
    assert_eq!(n["host_veth"], host_veth(&id).as_str(), "{text}");
    let text = w.host.run(env(&["ps", "--json"])).ok();
    let json: serde_json::Value = serde_json::from_str(&text).expect("ps --json prints JSON");
    assert_eq!(json[0]["network"]["address"], w.addr(2).as_str(), "{text}");
    let table = w.host.run(env(&["ps"])).ok();
    let row = table
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("no row for {id}: {table}"));
    assert!(row.split_whitespace().any(|c| c == w.addr(2)), "{table}");
    let head: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert!(
        head.contains(&"ADDRESS"),
        "no ADDRESS column heading: {table}"
    );
    a.finish().ok();
    let table = w.host.run(env(&["ps", "-a"])).ok();
    assert!(!table.contains(&w.addr(2)), "{table}");
}

/// 200 sequential `run --rm` in a /24 (253 addresses) never run out, and
/// every lease is freed: the last run still gets the lowest address.
#[test]
fn sequential_runs_do_not_run_out_of_addresses() {
    let w = World::new("seq", 8);
    let start = Instant::now();
    let failed = w.host.within(|| {
        (0..200).find_map(|i| {
            let c = w.cmd(&["run", "--rm", "bb", "/bin/true"]);
            let out = run_cmd(c, None, DEFAULT_TIMEOUT);
            (out.code != 0).then(|| format!("run {i}: {out:?}"))
        })
    });
    let took = start.elapsed();
    assert_eq!(failed, None);
    eprintln!("200 sequential run --rm --net bridge /bin/true: {took:?}");
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    let last = w.run_sh("ip addr show dev eth0").ok();
    assert_eq!(inet(&last), vec![format!("{}/24", w.addr(2))], "{last}");
    w.store.assert_no_leftovers();
}

/// 20 containers started at once on one (new) bridge get 20 distinct
/// addresses, all held at the same time.
#[test]
fn concurrent_runs_get_distinct_addresses() {
    let w = World::new("many", 9);
    let mut bgs: Vec<Bg> = (0..20)
        .map(|_| w.spawn(&["run", "--rm", "bb", "sh", "-c", PRINT_ADDR_AND_WAIT]))
        .collect();
    let mut addrs: Vec<String> = bgs
        .iter_mut()
        .map(|b| {
            let a = addr_of(&b.line_with("ADDR"));
            b.line_with("up");
            a
        })
        .collect();
    assert_eq!(w.leases().len(), 20, "{:?}", w.leases());
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 20, "duplicate addresses: {addrs:?}");
    for a in &addrs {
        let ip: Ipv4Addr = a.strip_suffix("/24").unwrap().parse().unwrap();
        let o = ip.octets();
        assert!(
            format!("10.200.{}", o[2]) == w.net && o[3] >= 2 && o[3] <= 254,
            "{a} is not a container address of {}",
            w.subnet
        );
    }
    for b in &mut bgs {
        b.finish().ok();
    }
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    w.store.assert_no_leftovers();
}

/// With the bridge, the veth and NAT set up, tupper still starts no program:
/// exactly two successful execve (tupper's own and the command's).
#[test]
fn bridge_mode_starts_no_other_program() {
    let w = World::new("exec", 10);
    let log = w.store.scratch().join("strace.log");
    let mut c = Command::new("strace");
    c.args(["-f", "-e", "trace=execve,execveat", "-o"])
        .arg(&log);
    c.arg(TUPPER).args(w.cmd(&[]).get_args());
    c.args(["run", "--rm", "--net", "bridge", "bb", "/bin/true"]);
    let out = w.host.run(c);
    assert_eq!(out.code, 0, "{out:?}");
    let text = fs::read_to_string(&log).unwrap();
    let execs = successful_execves(&text);
    let paths: Vec<&str> = execs.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(paths, vec![TUPPER, "/bin/true"], "strace log:\n{text}");
    assert!(
        w.links().contains(&format!("link {} bridge ", w.bridge)),
        "the run did not make the bridge: {}",
        w.links()
    );
    w.store.assert_no_leftovers();
}

// ------------------------------------------------------------------ NAT and ports

/// Fails clearly when `nft` (the oracle) is missing.
fn require_nft() {
    let ok = Command::new("nft")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "nft is missing: install nftables (tests/deps.sh: install_deps test)"
    );
}

/// An "outside" namespace joined to `host` by a veth pair: the host end
/// `tpt-TAGh` has 192.0.2.1/24, the outside end `tpt-TAGo` 192.0.2.2/24.
fn outside(host: &NetNs, tag: &str) -> NetNs {
    let out = NetNs::new();
    host.sh(&format!(
        "ip link add tpt-{tag}h type veth peer name tpt-{tag}o netns {pid} && \
         ip addr add 192.0.2.1/24 dev tpt-{tag}h && ip link set tpt-{tag}h up",
        pid = out.pid()
    ));
    out.sh(&format!(
        "ip addr add 192.0.2.2/24 dev tpt-{tag}o && ip link set tpt-{tag}o up"
    ));
    out
}

/// What a TCP server at `to` sends before it closes, from the calling
/// thread's network namespace; tried again for 10 s while nothing answers
/// (a container's `nc -l` may not listen yet).
fn answer_of(to: &str) -> String {
    let to: SocketAddr = to.parse().unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut got = String::new();
                let _ = s.read_to_string(&mut got);
                if !got.is_empty() || Instant::now() > end {
                    return got;
                }
            }
            Err(e) if Instant::now() > end => panic!("connect {to}: {e}"),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client in the outside namespace reaches a server in the container
/// through `-p 8080:80` on the host's outside address; the DNAT rule goes
/// with the container.
#[test]
fn published_port_reaches_the_container() {
    require_nft();
    let w = World::new("port", 11);
    let out = outside(&w.host, "pt");
    let mut srv = w.spawn(&[
        "run",
        "--rm",
        "-p",
        "8080:80",
        "bb",
        "sh",
        "-c",
        "echo up; nc -l -p 80 -e echo hi",
    ]);
    srv.line_with("up");
    let rule = format!("dnat to {}:80", w.addr(2));
    let table = w.host.sh("nft list table ip tupper");
    assert!(
        table.contains(&rule),
        "no `{rule}` while the container runs:\n{table}"
    );
    let answer = out.within(|| answer_of("192.0.2.1:8080"));
    assert_eq!(answer.trim(), "hi");
    srv.finish().ok();
    let table = w.host.sh("nft list table ip tupper");
    assert!(
        !table.contains("dnat-"),
        "a DNAT chain outlived the container:\n{table}"
    );
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    w.store.assert_no_leftovers();
}

/// A published port is reached from the host itself, through a loopback
/// address and through its own address on the bridge (nftables `output`
/// hook, `route_localnet`), from another container and from the container
/// itself through the gateway's address (hairpin), as with docker; both
/// chains go with the container.
#[test]
fn a_published_port_is_reached_from_the_host_and_from_containers() {
    require_nft();
    let w = World::new("lop", 42);
    let gw = w.addr(1);
    w.tupper(&[
        "run",
        "-d",
        "--name",
        "srv",
        "-p",
        "8080:80",
        "bb",
        "sh",
        "-c",
        "while true; do nc -l -p 80 -e echo hi; done",
    ])
    .ok();
    let route_localnet = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", w.bridge);
    assert_eq!(w.host.sh(&format!("cat {route_localnet}")).trim(), "1");
    for to in ["127.0.0.1:8080".to_string(), format!("{gw}:8080")] {
        let answer = w.host.within(|| answer_of(&to));
        assert_eq!(answer.trim(), "hi", "from the host to {to}");
    }
    // Tried again while refused: the server's `nc` is restarted by a loop
    // after each connection, and nothing listens in between.
    let nc = format!(
        "for i in 1 2 3 4 5 6 7 8 9 10; do timeout 5 nc {gw} 8080 </dev/null 2>/dev/null && break; sleep 0.2; done"
    );
    let other = w.tupper(&["run", "--rm", "bb", "sh", "-c", &nc]).ok();
    assert_eq!(other.trim(), "hi", "from another container to {gw}:8080");
    let itself = w.tupper(&["exec", "srv", "sh", "-c", &nc]).ok();
    assert_eq!(
        itself.trim(),
        "hi",
        "from the container itself to {gw}:8080"
    );
    let table = w.host.sh("nft list table ip tupper");
    assert_eq!(table.matches("dnat to ").count(), 2, "{table}");
    w.tupper(&["rm", "-f", "srv"]).ok();
    let table = w.host.sh("nft list table ip tupper");
    assert!(
        !table.contains("dnat-"),
        "a DNAT chain outlived the container:\n{table}"
    );
    w.store.assert_no_leftovers();
}

/// A UDP flow to a host port that began before a container published the
/// port reaches the container once it has (docker's moby#8795). The flow's
/// conntrack entry, made while nothing listened (the host answered "port
/// unreachable"), would keep it from the DNAT rule while its packets keep
/// coming; publishing the port deletes it.
#[test]
fn a_udp_flow_that_began_before_its_port_was_published_reaches_the_container() {
    require_nft();
    let w = World::new("udp", 44);
    let out = outside(&w.host, "ud");
    // The bridge and its nftables chains: the test host tracks flows from now.
    w.run_sh("true").ok();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let got = std::thread::scope(|s| {
        s.spawn(|| {
            out.within(|| {
                let sock = std::net::UdpSocket::bind("192.0.2.2:40000").expect("bind");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = sock.send_to(b"ping\n", "192.0.2.1:5353");
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        });
        std::thread::sleep(Duration::from_millis(500));
        let run = w.tupper(&[
            "run",
            "-d",
            "--name",
            "u",
            "-p",
            "5353:53/udp",
            "bb",
            "sleep",
            "60",
        ]);
        let got = (run.code == 0).then(|| {
            let pid = w.store.ps_json(false)[0]["pid"].as_i64().expect("pid");
            within_netns_of(pid, || {
                let sock = std::net::UdpSocket::bind("0.0.0.0:53").expect("bind :53");
                sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let mut buf = [0u8; 64];
                sock.recv(&mut buf).map(|n| buf[..n].to_vec())
            })
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        run.ok();
        got
    });
    match got {
        Some(Ok(d)) => assert_eq!(d, b"ping\n"),
        other => panic!("the flow that began before did not reach the container: {other:?}"),
    }
    w.tupper(&["rm", "-f", "u"]).ok();
    w.store.assert_no_leftovers();
}

/// The bridge lets loopback addresses through for the host's connections to
/// published ports (`route_localnet`), which would also let a container
/// reach the host's loopback services by sending to 127.0.0.1 through its
/// gateway (CVE-2020-8558 of kube-proxy; a container with `CAP_NET_RAW` can
/// craft such packets). The bridge's guard chain drops them. Here the test
/// plays the container: in its network namespace, 127.0.0.0/8 is routed to
/// the gateway. Then, as a control, the guard chain is deleted and the same
/// connection goes through.
#[test]
fn containers_do_not_reach_the_hosts_loopback_services() {
    require_nft();
    let w = World::new("grd", 43);
    let gw = w.addr(1);
    w.tupper(&[
        "run", "-d", "--name", "c", "-p", "8081:80", "bb", "sleep", "60",
    ])
    .ok();
    let listener = w
        .host
        .within(|| TcpListener::bind("127.0.0.1:9998").expect("listen on 127.0.0.1:9998"));
    listener.set_nonblocking(true).unwrap();
    let pid = w.store.ps_json(false)[0]["pid"].as_i64().expect("pid");
    w.host.sh(&format!(
        "nsenter -t {pid} -n sh -c 'ip addr flush dev lo && ip link set lo down && \
         ip route add 127.0.0.0/8 via {gw} dev eth0 && \
         echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet && \
         echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet'"
    ));
    let attempt = || {
        w.host.try_sh(&format!(
            "nsenter -t {pid} -n busybox timeout 2 busybox nc 127.0.0.1 9998 </dev/null"
        ));
        listener.accept().is_ok()
    };
    assert!(!attempt(), "a container reached the host's 127.0.0.1:9998");
    w.host
        .sh(&format!("nft delete chain ip tupper guard-{}", w.bridge));
    assert!(
        attempt(),
        "without the guard chain the connection should go through (the test's control)"
    );
    w.tupper(&["rm", "-f", "c"]).ok();
    w.store.assert_no_leftovers();
}

/// `port` lists a container's published ports in docker's format, or the
/// host side of one of them; a port it did not publish is an error.
#[test]
fn port_lists_the_published_ports() {
    require_nft();
    let w = World::new("prt", 45);
    w.tupper(&[
        "run",
        "-d",
        "--name",
        "p",
        "-p",
        "8080:80",
        "-p",
        "5353:53/udp",
        "bb",
        "sleep",
        "60",
    ])
    .ok();
    assert_eq!(
        w.tupper(&["port", "p"]).ok(),
        "80/tcp -> 0.0.0.0:8080\n53/udp -> 0.0.0.0:5353\n"
    );
    assert_eq!(w.tupper(&["port", "p", "53/udp"]).ok(), "0.0.0.0:5353\n");
    assert_eq!(w.tupper(&["port", "p", "80"]).ok(), "0.0.0.0:8080\n");
    let ps = w.tupper(&["ps"]).ok();
    assert!(
        ps.lines()
            .any(|l| l.ends_with("0.0.0.0:8080->80/tcp, 0.0.0.0:5353->53/udp")),
        "ps has no PORTS: {ps}"
    );
    let line = w.tupper(&["port", "p", "53"]).fails(125);
    assert!(line.contains("no public port 53/tcp"), "{line}");
    w.tupper(&[
        "run", "-d", "--name", "q", "--net", "none", "bb", "sleep", "60",
    ])
    .ok();
    assert_eq!(w.tupper(&["port", "q"]).ok(), "");
    w.tupper(&["rm", "-f", "p", "q"]).ok();
    w.store.assert_no_leftovers();
}

/// `-P` (docker's `--publish-all`) publishes every exposed port (the
/// image's `EXPOSE`, `--expose`) that no `-p` publishes on a free port of
/// the host's ephemeral range, as `-p 80` and `-p 127.0.0.1::80` do: `port`
/// and `ps` show the ports taken, a server is reached through one, two
/// containers get different ones, and a start again takes them anew (the
/// record keeps the request). Refused without a bridge.
#[test]
fn publish_all_takes_free_ports_of_the_ephemeral_range() {
    require_nft();
    let w = World::new("pall", 52);
    let tar = busybox_tar().to_str().unwrap().to_string();
    w.tupper(&["import", "-c", "EXPOSE 80", "web", &tar]).ok();
    let range = w.host.sh("cat /proc/sys/net/ipv4/ip_local_port_range");
    let range: Vec<u16> = range
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let in_range = |port: u16| (range[0]..=range[1]).contains(&port);
    let ports = |name: &str| -> Vec<(String, String, u16)> {
        w.tupper(&["port", name])
            .ok()
            .lines()
            .map(|l| {
                let (inner, outer) = l.split_once(" -> ").unwrap();
                let (ip, port) = outer.rsplit_once(':').unwrap();
                (inner.to_string(), ip.to_string(), port.parse().unwrap())
            })
            .collect()
    };
    w.tupper(&[
        "run",
        "-d",
        "--name",
        "srv",
        "-P",
        "--expose",
        "81",
        "--expose",
        "53/udp",
        "-p",
        "8082:82",
        "web",
        "sh",
        "-c",
        "while true; do nc -l -p 80 -e echo hi; done",
    ])
    .ok();
    let srv = ports("srv");
    let shown: Vec<(&str, &str)> = srv.iter().map(|(i, o, _)| (&**i, &**o)).collect();
    assert_eq!(
        shown,
        [
            ("82/tcp", "0.0.0.0"),
            ("80/tcp", "0.0.0.0"),
            ("81/tcp", "0.0.0.0"),
            ("53/udp", "0.0.0.0")
        ],
        "{srv:?}"
    );
    assert_eq!(srv[0].2, 8082);
    assert!(srv[1..].iter().all(|p| in_range(p.2)), "{srv:?} {range:?}");
    assert_ne!(srv[1].2, srv[2].2);
    let to = format!("127.0.0.1:{}", srv[1].2);
    assert_eq!(w.host.within(|| answer_of(&to)).trim(), "hi", "to {to}");
    let ps = w.tupper(&["ps"]).ok();
    assert!(
        ps.contains(&format!("0.0.0.0:{}->80/tcp", srv[1].2)),
        "{ps}"
    );
    w.tupper(&["run", "-d", "--name", "two", "-P", "web", "sleep", "60"])
        .ok();
    w.tupper(&[
        "run",
        "-d",
        "--name",
        "three",
        "-p",
        "127.0.0.1::80",
        "bb",
        "sleep",
        "60",
    ])
    .ok();
    let (two, three) = (ports("two"), ports("three"));
    assert_eq!(two.len(), 1, "{two:?}");
    assert_eq!(three.len(), 1, "{three:?}");
    assert_eq!(three[0].1, "127.0.0.1");
    let taken = [srv[1].2, srv[2].2, two[0].2, three[0].2];
    assert!(taken.iter().all(|p| in_range(*p)), "{taken:?}");
    for (i, p) in taken.iter().enumerate() {
        assert!(!taken[..i].contains(p), "{p} taken twice: {taken:?}");
    }
    // A start again takes free ports again; the record keeps the request.
    w.tupper(&["stop", "-t", "1", "two"]).ok();
    let net = w.store.inspect("two")["network"].clone();
    assert_eq!(net["ports"], serde_json::json!(["80/tcp"]), "{net}");
    w.tupper(&["start", "two"]).ok();
    let again = ports("two");
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(
        in_range(again[0].2) && !taken[..2].contains(&again[0].2),
        "{again:?}"
    );
    // Made, never started: no port taken yet, none shown.
    w.tupper(&["create", "--name", "made", "-P", "web", "true"])
        .ok();
    assert_eq!(w.tupper(&["port", "made"]).ok(), "");
    w.tupper(&["rm", "made"]).ok();
    let line = w
        .tupper(&["run", "--rm", "--net", "none", "-P", "web", "true"])
        .fails(125);
    assert!(
        line.contains("-P with --net none: ports are published only with --net bridge"),
        "{line}"
    );
    let line = w
        .tupper(&["run", "--rm", "--expose", "0", "web", "true"])
        .fails(125);
    assert!(line.contains("invalid --expose \"0\""), "{line}");
    w.tupper(&["rm", "-f", "srv", "two", "three"]).ok();
    let table = w.host.sh("nft list table ip tupper");
    assert!(!table.contains("dnat-"), "a DNAT chain is left:\n{table}");
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    w.tupper(&["rmi", "web"]).ok();
    w.store.assert_no_leftovers();
}

/// A container started again (`start`, `restart`) gets its network back:
/// the address it asked for with `--ip`, its published ports, its
/// `/etc/hosts` entries; at once after a `stop`, while the kernel may
/// still be taking down the last run's network namespace and its veth.
#[test]
fn a_container_started_again_gets_its_network_back() {
    require_nft();
    let w = World::new("again", 47);
    let ip = w.addr(5);
    w.tupper(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--ip",
        &ip,
        "-p",
        "8080:80",
        "--add-host",
        "db:192.0.2.9",
        "bb",
        "sh",
        "-c",
        "while true; do nc -l -p 80 -e echo hi; done",
    ])
    .ok();
    let answer = w.host.within(|| answer_of("127.0.0.1:8080"));
    assert_eq!(answer.trim(), "hi");
    for round in 0..3 {
        w.tupper(&["stop", "-t", "0", "srv"]).ok();
        let start = match round {
            0 => "start",
            _ => "restart",
        };
        assert_eq!(w.tupper(&[start, "srv"]).ok(), "srv\n", "{start}");
        let r = w.tupper(&["inspect", "srv"]).ok();
        let r: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert_eq!(r[0]["status"], "running", "{r}");
        assert_eq!(r[0]["network"]["address"], ip.as_str(), "{r}");
        assert_eq!(r[0]["network"]["ports"][0], "8080:80/tcp", "{r}");
        let hosts = w.tupper(&["exec", "srv", "cat", "/etc/hosts"]).ok();
        assert!(hosts.contains("192.0.2.9\tdb\n"), "{hosts}");
        assert!(hosts.ends_with(&format!("{ip}\tsrv\n")), "{hosts}");
        let answer = w.host.within(|| answer_of("127.0.0.1:8080"));
        assert_eq!(answer.trim(), "hi", "after {start} (round {round})");
    }
    w.tupper(&["rm", "-f", "srv"]).ok();
    let table = w.host.sh("nft list table ip tupper");
    assert!(!table.contains("dnat-"), "{table}");
    w.store.assert_no_leftovers();
}

/// `run --rm --net container:NAME` of a command that waits, with `eth0`
/// there, for EOF on stdin, then lists its links.
fn spawn_joiner(w: &World, name: &str) -> Bg {
    let mut joiner = w.spawn(&[
        "run",
        "--rm",
        "--net",
        &format!("container:{name}"),
        "bb",
        "sh",
        "-c",
        "ip -o link | grep -q eth0 && echo up; read x; ip -o link",
    ]);
    joiner.line_with("up");
    joiner
}

/// Ends a joiner of [`spawn_joiner`]; asserts that it has `lo` only.
#[track_caller]
fn assert_only_lo_left(mut joiner: Bg) {
    let out = joiner.finish();
    assert_eq!(out.code, 0, "{out:?}");
    let names: Vec<String> = links(&out.stdout).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["lo".to_string()], "{out:?}");
}

/// `--net container:NAME` (docker's): the container joins NAME's network
/// namespace: its address, its loopback services, its hostname and its
/// `/etc/hosts` and `/etc/resolv.conf`; the record names NAME by its ID,
/// and a container made with it (`create`) joins when it starts. What is
/// NAME's is refused (`--hostname`, `-p`, `--ip`, `--dns`, `--add-host`,
/// `--sysctl net.*`), as is a container that is not running, and nothing
/// changes. When NAME ends, its veth pair goes with it, as docker's: the
/// joiner keeps `lo` only, and the address is nowhere in use.
#[test]
fn a_container_joins_another_containers_network() {
    let w = World::new("join", 50);
    let mut web = w.spawn(&[
        "run",
        "--rm",
        "--name",
        "web",
        "--hostname",
        "webhost",
        "bb",
        "sh",
        "-c",
        &format!("echo hello > /tmp/i; httpd -p 127.0.0.1:8080 -h /tmp; {PRINT_ADDR_AND_WAIT}"),
    ]);
    let addr = addr_of(&web.line_with("ADDR"));
    web.line_with("up");
    assert_eq!(addr, format!("{}/24", w.addr(2)));
    let r = w.tupper(&["inspect", "web"]).ok();
    let r: serde_json::Value = serde_json::from_str(&r).unwrap();
    let web_id = r[0]["id"].as_str().unwrap().to_string();

    let out = w
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "container:web",
            "bb",
            "sh",
            "-c",
            "hostname; ip -f inet addr show dev eth0; wget -qO- http://127.0.0.1:8080/i; echo ---; cat /etc/hosts /etc/resolv.conf",
        ])
        .ok();
    let (net, etc) = out.split_once("---\n").unwrap();
    assert!(net.starts_with("webhost\n"), "{out}");
    assert_eq!(inet(net), vec![addr.clone()], "{out}");
    assert!(net.ends_with("hello\n"), "web's loopback service: {out}");
    let web_etc = w
        .tupper(&["exec", "web", "cat", "/etc/hosts", "/etc/resolv.conf"])
        .ok();
    assert!(
        web_etc.contains(&format!("{}\twebhost\n", w.addr(2))),
        "{web_etc}"
    );
    assert_eq!(etc, web_etc);

    // Made, then started: it joins then; the record names web by its ID.
    w.tupper(&[
        "create",
        "--name",
        "made",
        "--net",
        "container:web",
        "bb",
        "ip",
        "-f",
        "inet",
        "addr",
        "show",
        "dev",
        "eth0",
    ])
    .ok();
    let r = w.tupper(&["inspect", "made"]).ok();
    let r: serde_json::Value = serde_json::from_str(&r).unwrap();
    assert_eq!(
        r[0]["network"]["mode"],
        format!("container:{web_id}"),
        "{r}"
    );
    assert_eq!(r[0]["hostname"], "webhost", "{r}");
    let out = w.tupper(&["start", "-a", "made"]).ok();
    assert_eq!(inet(&out), vec![addr.clone()], "{out}");

    // What is web's is refused, as is a container that is not running.
    let g = ["--bridge", &w.bridge, "--subnet", &w.subnet];
    for (flags, want) in [
        (
            &["--hostname", "x"][..],
            "--hostname with --net container:web: the hostname is container web's",
        ),
        (&["-p", "8081:80"], "-p with --net container:web"),
        (&["--ip", "10.200.50.9"], "--ip with --net container:web"),
        (&["--dns", "192.0.2.1"], "--dns with --net container:web"),
        (
            &["--add-host", "db:192.0.2.9"],
            "--add-host with --net container:web",
        ),
        (
            &["--sysctl", "net.ipv4.ip_forward=1"],
            "the other container's with --net container:",
        ),
        (&["--userns", "auto"], "--userns auto with --net container:"),
    ] {
        let mut run = vec!["--net", "container:web"];
        run.extend(flags);
        refused(&w, &g, &run, want);
    }
    refused(
        &w,
        &g,
        &["--net", "container:nope"],
        "--net container:nope: no such container: nope",
    );
    refused(
        &w,
        &g,
        &["--net", "container:made"],
        "join the network of container made: it is not running",
    );

    // web ends while a joiner runs: its veth pair goes with it.
    let side = spawn_joiner(&w, "web");
    assert!(w.links().contains(&host_veth(&web_id)), "{}", w.links());
    assert_eq!(web.finish().code, 0);
    assert!(!w.links().contains(&host_veth(&web_id)), "{}", w.links());
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    assert_only_lo_left(side);
    // ... and it cannot start again without web.
    let line = w.tupper(&["start", "made"]).fails(125);
    assert!(
        line.contains(&format!("--net container:{web_id}: no such container")),
        "{line}"
    );
    w.tupper(&["rm", "made"]).ok();
    w.store.assert_no_leftovers();
}

/// A container whose network another joined, killed with its tupper
/// (SIGKILL): the joiner keeps its namespace, and in it the veth pair on
/// the dead container's address; when that address is asked for again,
/// the pair goes before the address is given out.
#[test]
fn a_killed_containers_joined_veth_goes_before_its_address_is_reused() {
    let w = World::new("jkill", 51);
    let mut web = w.spawn(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        "hostname; echo up; sleep 60",
    ]);
    web.line_with("up");
    let id = web.seen[0].clone();
    let side = spawn_joiner(&w, &id);
    kill(web.pid(), 9);
    web.finish();
    assert!(w.links().contains(&host_veth(&id)), "{}", w.links());
    assert_eq!(w.leases().len(), 1, "{:?}", w.leases());
    let out = w
        .tupper(&[
            "run",
            "--rm",
            "--ip",
            &w.addr(2),
            "bb",
            "ip",
            "-f",
            "inet",
            "addr",
        ])
        .ok();
    assert!(inet(&out).contains(&format!("{}/24", w.addr(2))), "{out}");
    assert!(!w.links().contains(&host_veth(&id)), "{}", w.links());
    assert_only_lo_left(side);
    w.tupper(&["rm", &id]).ok();
    let marks = std::fs::read_dir(w.store.root().join("state/joined"))
        .unwrap()
        .count();
    assert_eq!(marks, 0);
    w.store.assert_no_leftovers();
}

/// `stats` counts a bridge container's traffic: what its `eth0` received
/// and sent (`lo` left out).
#[test]
fn stats_counts_a_bridge_containers_traffic() {
    let w = World::new("stat", 48);
    let gw = w.addr(1);
    let script = format!("ping -c 3 -W 2 {gw} >/dev/null; echo done; sleep 60");
    w.tupper(&["run", "-d", "--name", "n", "bb", "sh", "-c", &script])
        .ok();
    assert!(
        wait_for(Duration::from_secs(20), || w.tupper(&["logs", "n"]).ok()
            == "done\n"),
        "the pings did not end"
    );
    let out = w.tupper(&["stats", "--no-stream", "--json", "n"]).ok();
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Three echo requests out and three replies in, 98 bytes each and more.
    let (rx, tx) = (
        list[0]["net_rx_bytes"].as_u64().unwrap(),
        list[0]["net_tx_bytes"].as_u64().unwrap(),
    );
    assert!(rx >= 3 * 98 && tx >= 3 * 98, "{out}");
    w.tupper(&["rm", "-f", "n"]).ok();
    w.store.assert_no_leftovers();
}

/// `-p ADDRESS:HOSTPORT:CONTAINERPORT` publishes on that host address only,
/// as docker's `-p 127.0.0.1:8080:80`: reached there, not through the
/// host's other addresses; `port` shows the address; an address the host
/// does not have is refused, leaving nothing.
#[test]
fn a_port_published_on_one_address_is_reached_there_only() {
    require_nft();
    let w = World::new("pip", 46);
    let out = outside(&w.host, "pi");
    let gw = w.addr(1);
    w.tupper(&[
        "run",
        "-d",
        "--name",
        "srv",
        "-p",
        "127.0.0.1:8080:80",
        "-p",
        "192.0.2.1:8081:80",
        "bb",
        "sh",
        "-c",
        "while true; do nc -l -p 80 -e echo hi; done",
    ])
    .ok();
    assert_eq!(
        w.tupper(&["port", "srv"]).ok(),
        "80/tcp -> 127.0.0.1:8080\n80/tcp -> 192.0.2.1:8081\n"
    );
    assert_eq!(w.host.within(|| answer_of("127.0.0.1:8080")).trim(), "hi");
    assert_eq!(out.within(|| answer_of("192.0.2.1:8081")).trim(), "hi");
    // Not through the other addresses: nothing listens there, so every try
    // is refused (a DNAT'd one would reach the container's `nc`, which is
    // refused only between two of its connections).
    let connect = |to: String| {
        let to: SocketAddr = to.parse().unwrap();
        let end = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < end {
            if TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    assert!(
        !w.host.within(|| connect(format!("{gw}:8080"))),
        "{gw}:8080"
    );
    assert!(
        !w.host.within(|| connect("127.0.0.1:8081".into())),
        "127.0.0.1:8081"
    );
    assert!(
        !out.within(|| connect("192.0.2.1:8080".into())),
        "192.0.2.1:8080 from outside"
    );
    w.tupper(&["rm", "-f", "srv"]).ok();
    // (Checked with no detached container running: `refused` waits for the
    // store's background processes, which a `run -d`'s tupper looks like.)
    refused(
        &w,
        &["--bridge", &w.bridge, "--subnet", &w.subnet],
        &["-p", "10.9.9.9:8082:80"],
        "publish port 10.9.9.9:8082:80/tcp: 10.9.9.9 is not an address of this host",
    );
    w.store.assert_no_leftovers();
}

/// The container's outbound connection reaches the outside namespace from
/// the host's address on the outside link (masquerade), not from its own.
#[test]
fn outbound_traffic_is_masqueraded() {
    require_nft();
    let w = World::new("nat", 12);
    let out = outside(&w.host, "nt");
    let listener = out.within(|| TcpListener::bind("192.0.2.2:9000").expect("listen"));
    listener.set_nonblocking(true).unwrap();
    let mut c = w.spawn(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        "echo hello-from-inside | nc 192.0.2.2 9000",
    ]);
    let end = Instant::now() + Duration::from_secs(20);
    let (mut stream, peer) = loop {
        match listener.accept() {
            Ok(x) => break x,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("no connection from the container: {e}; {:?}", c.finish()),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "hello-from-inside");
    let _ = stream.write_all(b"bye\n");
    drop(stream);
    assert_eq!(
        peer.ip().to_string(),
        "192.0.2.1",
        "the outside saw the container's own address, not the host's"
    );
    c.finish().ok();
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    w.store.assert_no_leftovers();
}

/// A bridge deleted and made again with another subnet gets a masquerade
/// rule for its new subnet (the chain of the old one used to stay), and its
/// containers reach the outside.
#[test]
fn a_bridge_made_again_with_another_subnet_is_masqueraded() {
    require_nft();
    let w = World::new("msub", 31);
    let out = outside(&w.host, "ms");
    let chain = format!("nft list chain ip tupper masq-{}", w.bridge);
    w.run_sh("true").ok();
    let rule = w.host.sh(&chain);
    assert!(rule.contains("ip saddr 10.200.31.0/24"), "{rule}");
    w.host.sh(&format!("ip link del {}", w.bridge));
    let listener = out.within(|| TcpListener::bind("192.0.2.2:9001").expect("listen"));
    listener.set_nonblocking(true).unwrap();
    let mut c = w.host.spawn(tupper_net(
        &w.store,
        &w.bridge,
        "10.200.32.0/24",
        &[
            "run",
            "--rm",
            "bb",
            "sh",
            "-c",
            "echo hi | nc -w 5 192.0.2.2 9001",
        ],
    ));
    let end = Instant::now() + Duration::from_secs(20);
    let peer = loop {
        match listener.accept() {
            Ok((_, peer)) => break peer,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!(
                "no connection from the container: {e}; {:?}; {}",
                c.finish(),
                w.host.sh(&chain)
            ),
        }
    };
    assert_eq!(peer.ip().to_string(), "192.0.2.1");
    c.finish().ok();
    let rule = w.host.sh(&chain);
    assert!(rule.contains("ip saddr 10.200.32.0/24"), "{rule}");
    assert!(!rule.contains("10.200.31.0"), "{rule}");
    w.store.assert_no_leftovers();
}

// ------------------------------------------------------------------ bad input

/// What a refused run must leave alone: the test host's links and addresses,
/// the lease file, the store.
struct Before {
    links: String,
    leases: Vec<String>,
    store: StoreState,
}

impl Before {
    fn take(w: &World) -> Before {
        // The store first: it waits for background refills (which add
        // bridge spares, and their host ends, to the test host's links).
        let store = w.store.state();
        Before {
            links: w.links(),
            leases: w.leases(),
            store,
        }
    }

    #[track_caller]
    fn assert_same(&self, w: &World, what: &str) {
        assert_eq!(
            w.links(),
            self.links,
            "{what}: the test host's links changed"
        );
        assert_eq!(w.leases(), self.leases, "{what}: the leases changed");
        self.store.assert_same(&w.store.state(), what);
    }
}

/// Runs `tupper GLOBAL... run --rm [RUN...] bb true`; asserts exit 125, one
/// line containing `want`, and nothing changed.
#[track_caller]
fn refused(w: &World, global: &[&str], run: &[&str], want: &str) {
    let before = Before::take(w);
    let mut args: Vec<&str> = global.to_vec();
    args.extend(["run", "--rm"]);
    args.extend(run);
    args.extend(["bb", "true"]);
    let mut c = tupper(&w.store);
    c.env_remove("TUPPER_BRIDGE").env_remove("TUPPER_SUBNET");
    c.args(&args);
    let out = w.host.run(c);
    let line = out.fails(125);
    assert!(
        line.contains(want),
        "{args:?}: {line:?} does not say {want:?}"
    );
    before.assert_same(w, &format!("{args:?}"));
}

/// A host port that a server of the host listens on is refused, as docker
/// refuses it ("address already in use"): the DNAT rule would take its
/// traffic from outside. The same number over UDP is another port.
#[test]
fn a_host_port_a_host_process_listens_on_is_refused() {
    let w = World::new("hpl", 36);
    let mut listener = Command::new("busybox");
    listener.args(["nc", "-l", "-p", "9102"]);
    let _server = w.host.spawn(listener);
    // 9102 = 0x238E, state 0A: listening (busybox listens on [::], which
    // takes the IPv4 port too).
    assert!(
        wait_for(Duration::from_secs(10), || w
            .host
            .sh("cat /proc/net/tcp /proc/net/tcp6")
            .lines()
            .any(|l| l.contains(":238E ") && l.contains(":0000 0A "))),
        "the host's listener did not start"
    );
    let g = ["--bridge", &w.bridge, "--subnet", &w.subnet];
    refused(
        &w,
        &g,
        &["-p", "9102:80"],
        "host port 9102/tcp is in use by a process of the host",
    );
    w.tupper(&["run", "--rm", "-p", "9102:80/udp", "bb", "true"])
        .ok();
    w.store.assert_no_leftovers();
}

/// Addresses outside the subnet, the network, gateway and broadcast
/// addresses and a malformed one are refused, and nothing is made.
#[test]
fn bad_ip_addresses_are_refused() {
    let w = World::new("bip", 20);
    let g = ["--bridge", &w.bridge, "--subnet", &w.subnet];
    for (ip, want) in [
        ("10.200.21.5", "outside subnet 10.200.20.0/24"),
        ("10.200.20.0", "network address"),
        ("10.200.20.1", "gateway"),
        ("10.200.20.255", "broadcast"),
        ("10.0.0.256", "not an IPv4 address"),
    ] {
        refused(&w, &g, &["--ip", ip], want);
    }
    assert!(!w.links().contains(&w.bridge), "a bridge was made");
}

/// Malformed subnets, a bridge name over 15 bytes, a device of the bridge's
/// name that is not a bridge, and a bridge with another address are refused,
/// and nothing is made or changed.
#[test]
fn bad_subnets_and_bridges_are_refused() {
    let w = World::new("bbr", 22);
    w.host
        .sh("ip link add tpt-nb0 type veth peer name tpt-nb1 && \
         ip link add tpt-ob0 type bridge && ip addr add 10.200.23.1/24 dev tpt-ob0");
    refused(
        &w,
        &["--bridge", &w.bridge, "--subnet", "10.200.22.0/33"],
        &[],
        "invalid subnet \"10.200.22.0/33\"",
    );
    refused(
        &w,
        &["--bridge", &w.bridge, "--subnet", "10.0.0.256/24"],
        &[],
        "\"10.0.0.256\" is not an IPv4 address",
    );
    for (subnet, want) in [
        ("224.0.0.0/24", "overlaps 224.0.0.0/4 (multicast"),
        ("127.0.0.0/16", "overlaps 127.0.0.0/8 (loopback"),
        ("0.0.0.0/8", "overlaps 0.0.0.0/8"),
        ("255.255.255.252/30", "overlaps 240.0.0.0/4"),
        ("10.200.22.0/+24", "prefix length \"+24\""),
        ("10.200.22.0/024", "prefix length \"024\""),
    ] {
        refused(&w, &["--bridge", &w.bridge, "--subnet", subnet], &[], want);
    }
    refused(
        &w,
        &["--bridge", "tpt-0123456789ab", "--subnet", &w.subnet],
        &[],
        "longer than 15 bytes",
    );
    refused(
        &w,
        &["--bridge", "tpt-nb0", "--subnet", &w.subnet],
        &[],
        "is not a bridge",
    );
    refused(
        &w,
        &["--bridge", "lo", "--subnet", &w.subnet],
        &[],
        "is not a bridge (it is the loopback device)",
    );
    refused(
        &w,
        &["--bridge", "tpt-ob0", "--subnet", &w.subnet],
        &[],
        "it has address 10.200.23.1/24",
    );
    let addrs = w.host.sh("ip -o addr show dev tpt-ob0");
    assert!(
        addrs.contains("10.200.23.1/24") && !addrs.contains("10.200.22.1"),
        "{addrs}"
    );
}

/// A bad TUPPER_SUBNET is refused, naming the variable, only where it is
/// used: `--subnet` and `--net none` runs do not read it.
#[test]
fn a_bad_tupper_subnet_is_read_only_when_used() {
    let w = World::new("env", 34);
    let with_env = |args: &[&str]| {
        let mut c = tupper(&w.store);
        c.env("TUPPER_SUBNET", "bogus")
            .env("TUPPER_BRIDGE", &w.bridge)
            .args(args);
        w.host.run(c)
    };
    let before = Before::take(&w);
    let line = with_env(&["run", "--rm", "bb", "true"]).fails(125);
    assert!(line.contains("invalid TUPPER_SUBNET \"bogus\""), "{line}");
    before.assert_same(&w, "run with TUPPER_SUBNET=bogus");
    with_env(&["run", "--rm", "--net", "none", "bb", "true"]).ok();
    let out = with_env(&[
        "--subnet", &w.subnet, "run", "--rm", "bb", "ip", "-f", "inet", "addr", "show", "eth0",
    ])
    .ok();
    assert_eq!(inet(&out), vec![format!("{}/24", w.addr(2))], "{out}");
    w.store.assert_no_leftovers();
}

/// A new bridge whose subnet overlaps an address of the test host (here
/// another bridge's, as a second `--bridge` with the default subnet would)
/// is refused, and nothing is made; a subnet beside it is fine.
#[test]
fn a_new_bridge_overlapping_an_address_is_refused() {
    let w = World::new("ovl", 35);
    w.run_sh("true").ok();
    for subnet in ["10.200.35.0/24", "10.200.35.128/25", "10.200.0.0/16"] {
        refused(
            &w,
            &["--bridge", "tpt-ovl2", "--subnet", subnet],
            &[],
            &format!(
                "create bridge tpt-ovl2 for subnet {subnet}: it overlaps address 10.200.35.1/24 of {}",
                w.bridge
            ),
        );
    }
    let out = w
        .host
        .run(tupper_net(
            &w.store,
            "tpt-ovl2",
            "10.200.36.0/24",
            &[
                "run", "--rm", "bb", "ip", "-f", "inet", "addr", "show", "eth0",
            ],
        ))
        .ok();
    assert_eq!(inet(&out), vec!["10.200.36.2/24".to_string()], "{out}");
    w.store.assert_no_leftovers();
}

/// An address held by a running container is refused to the next one.
#[test]
fn address_in_use_is_refused() {
    let w = World::new("used", 24);
    let ip = w.addr(9);
    let mut a = w.spawn(&[
        "run",
        "--rm",
        "--ip",
        &ip,
        "bb",
        "sh",
        "-c",
        PRINT_ADDR_AND_WAIT,
    ]);
    assert_eq!(addr_of(&a.line_with("ADDR")), format!("{ip}/24"));
    a.line_with("up");
    refused(
        &w,
        &["--bridge", &w.bridge, "--subnet", &w.subnet],
        &["--ip", &ip],
        "in use",
    );
    a.finish().ok();
    w.store.assert_no_leftovers();
}

/// Makes `n` veth pairs in the test host (`tqI`/`trI`), each a port of the
/// world's bridge: one `ip -batch`.
fn add_ports(w: &World, n: usize) {
    let mut script = "ip -batch - <<EOF\n".to_string();
    for i in 0..n {
        script += &format!(
            "link add tq{i} master {} type veth peer name tr{i}\n",
            w.bridge
        );
    }
    script += "EOF\n";
    w.host.sh(&script);
}

/// A bridge with no port left: the container is refused, the error says
/// why, and nothing of it is left.
#[test]
fn a_full_bridge_is_refused_with_advice() {
    // A Linux bridge takes 1,023 ports: 1,022 veths made here, the last
    // one taken by a running container, then one more container.
    let w = World::new("ports", 26);
    w.host.sh(&format!("ip link add {} type bridge", w.bridge));
    add_ports(&w, 1022);
    let mut a = w
        .host
        .spawn(w.cmd(&["run", "--rm", "bb", "sh", "-c", PRINT_ADDR_AND_WAIT]));
    a.line_with("up");
    let g = ["--bridge", &w.bridge, "--subnet", &w.subnet];
    refused(
        &w,
        &g,
        &["-p", "8085:80"],
        "Exchange full (os error 54) (a Linux bridge holds at most 1,023 ports",
    );
    // The refused run's DNAT chain is gone with it (the running one has none).
    let table = w.host.sh("nft list table ip tupper");
    assert!(!table.contains("dnat-"), "{table}");
    a.finish().ok();
    w.store.assert_no_leftovers();
}

/// A /30 has one container address: while a container holds it, the next
/// one is refused.
#[test]
fn exhausted_subnet_is_refused() {
    let w = World::new("full", 25);
    let subnet = "10.200.25.0/30";
    let mut a = w.host.spawn(tupper_net(
        &w.store,
        &w.bridge,
        subnet,
        &["run", "--rm", "bb", "sh", "-c", PRINT_ADDR_AND_WAIT],
    ));
    assert_eq!(addr_of(&a.line_with("ADDR")), "10.200.25.2/30");
    a.line_with("up");
    refused(
        &w,
        &["--bridge", &w.bridge, "--subnet", subnet],
        &[],
        "no free address",
    );
    a.finish().ok();
    w.store.assert_no_leftovers();
}

// ------------------------------------------------------------------ bridge spares

/// The spare's name (a container-ID-shaped file name) of a spare's path.
fn spare_name(path: &std::path::Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The host end of bridge spare `name`'s veth pair.
fn spare_veth(name: &str) -> String {
    format!("ts{}", &name[..12])
}

/// The names of the links whose master is `bridge`, in the test host.
fn ports_of(w: &World) -> Vec<String> {
    let mut v: Vec<String> = w
        .host
        .sh(&format!("ip -o link show master {}", w.bridge))
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// `inspect NAME`'s `network.host_veth`.
fn inspected_veth(w: &World, name: &str) -> String {
    let text = w.tupper(&["inspect", name]).ok();
    let v: serde_json::Value = serde_json::from_str(&text).expect("inspect prints JSON");
    v[0]["network"]["host_veth"]
        .as_str()
        .unwrap_or_else(|| panic!("no host_veth: {text}"))
        .to_string()
}

/// A container that prints its address, whether the gateway (`$GW`, given
/// with `-e`) answers one ping, then waits.
const ADDR_PING_WAIT: &str =
    "ip -f inet addr show dev eth0 | sed -n 's/.*inet \\([0-9./]*\\).*/ADDR \\1/p'; \
    ping -c 1 -W 2 \"$GW\" >/dev/null && echo PING; echo up; read x || true";

/// A bridge start with no bridge spare yet takes a plain spare: claimed by
/// its mark like any plain one, then unmounted at once (its veth pair must
/// die with the container, not wait for a refill), and no claim is left.
#[test]
fn a_bridge_start_takes_a_plain_spare_and_unmounts_it_at_once() {
    let w = World::new("brpl", 39);
    let plain: Vec<u64> = w
        .store
        .netns_spare_ids()
        .iter()
        .map(|(_, id)| *id)
        .collect();
    // No refill may clean or make spares meanwhile.
    let busy = Busy::new(&w.store);
    let out = w.run_sh("readlink /proc/self/ns/net").ok();
    let ns: u64 = out
        .trim()
        .strip_prefix("net:[")
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a netns link: {out:?}"));
    let taken = w.store.netns_taken();
    let mounted = w
        .store
        .netns_spare_ids_with_taken()
        .iter()
        .any(|(_, id)| *id == ns);
    drop(busy);
    assert!(plain.contains(&ns), "net:[{ns}] was not a plain spare");
    assert!(taken.is_empty(), "claims left: {taken:?}");
    assert!(!mounted, "the spare of net:[{ns}] is still mounted");
    w.store.settle_pool();
    w.store.assert_no_leftovers();
}

/// A bridge run's background process fills the bridge pool: each spare is
/// a network namespace with `eth0` up (no IPv6 address) whose host end
/// (`ts` and 12 characters of the spare's name) is up on the bridge with
/// IPv6 off.
/// A later run takes one: its host end is the spare's, its `eth0` has the
/// leased address and reaches the gateway, and the pair goes when it ends.
#[test]
fn bridge_spares_hold_a_veth_pair_and_a_run_takes_one() {
    let w = World::new("brsp", 27);
    w.run_sh("true").ok();
    w.store.settle_pool();
    let spares = w.store.bridge_spares();
    assert_eq!(spares.len(), tupper::netns_pool::DEFAULT_SIZE, "{spares:?}");
    let mut want: Vec<String> = spares.iter().map(|p| spare_veth(&spare_name(p))).collect();
    want.sort();
    assert_eq!(
        ports_of(&w),
        want,
        "the bridge's ports are the spares' host ends"
    );
    let spare = &spares[0];
    let inside = w.store.holder_sh(&format!(
        "$B nsenter --net={} $B sh -c \"$B ip -o link | $B cut -d' ' -f2,3; $B ip -6 addr show dev eth0\"",
        spare.display()
    ));
    let lines: Vec<&str> = inside.lines().collect();
    assert_eq!(lines.len(), 2, "{inside}");
    assert_eq!(lines[0], "lo: <LOOPBACK,UP,LOWER_UP>", "{inside}");
    assert!(
        lines[1].starts_with("eth0@if") && lines[1].contains(",UP,"),
        "{inside}"
    );
    let host = spare_veth(&spare_name(spare));
    let off = w
        .host
        .sh(&format!("cat /proc/sys/net/ipv6/conf/{host}/disable_ipv6"));
    assert_eq!(off.trim(), "1", "IPv6 is not off on {host}");

    let gw = format!("GW={}", w.addr(1));
    let mut a = w.spawn(&[
        "run",
        "--rm",
        "--name",
        "web",
        "-e",
        &gw,
        "bb",
        "sh",
        "-c",
        ADDR_PING_WAIT,
    ]);
    assert_eq!(addr_of(&a.line_with("ADDR")), format!("{}/24", w.addr(2)));
    a.line_with("PING");
    a.line_with("up");
    let veth = inspected_veth(&w, "web");
    assert!(
        want.contains(&veth),
        "{veth} is not a spare's host end: {want:?}"
    );
    let taken = spares
        .iter()
        .find(|p| spare_veth(&spare_name(p)) == veth)
        .unwrap();
    assert!(
        !w.store.bridge_spares().contains(taken),
        "{} is still in the pool",
        taken.display()
    );
    let link = w.host.sh(&format!("ip -o link show dev {veth}"));
    assert!(link.contains(&format!("master {} ", w.bridge)), "{link}");
    a.finish().ok();
    let gone = wait_for(Duration::from_secs(5), || {
        w.host.try_sh(&format!("ip link show dev {veth}")).code != 0
    });
    assert!(gone, "{veth} is still there 5 s after the container ended");
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    w.store.assert_no_leftovers();
}

/// A bridge spare whose host end was deleted, or taken off the bridge,
/// still gives a working container: the run makes the pair again under the
/// spare's name. (A pool of one, so that the run takes that spare.)
#[test]
fn a_bridge_spare_with_a_broken_veth_is_mended() {
    let w = World::new("mend", 28);
    let cmd = |args: &[&str]| {
        let mut c = w.cmd(args);
        c.env("TUPPER_NETNS_POOL", "1");
        c
    };
    w.host.run(cmd(&["run", "--rm", "bb", "true"])).ok();
    let gw = format!("GW={}", w.addr(1));
    for (case, break_it) in [
        ("deleted", "ip link del {}"),
        ("off the bridge", "ip link set {} nomaster"),
    ] {
        w.store.settle_pool();
        let spares = w.store.bridge_spares();
        assert_eq!(spares.len(), 1, "{case}: {spares:?}");
        let veth = spare_veth(&spare_name(&spares[0]));
        w.host.sh(&break_it.replace("{}", &veth));
        let mut a = w.host.spawn(cmd(&[
            "run",
            "--rm",
            "--name",
            "m",
            "-e",
            &gw,
            "bb",
            "sh",
            "-c",
            ADDR_PING_WAIT,
        ]));
        assert_eq!(
            addr_of(&a.line_with("ADDR")),
            format!("{}/24", w.addr(2)),
            "{case}"
        );
        a.line_with("PING");
        a.line_with("up");
        assert_eq!(inspected_veth(&w, "m"), veth, "{case}");
        let link = w.host.sh(&format!("ip -o link show dev {veth}"));
        assert!(
            link.contains(&format!("master {} ", w.bridge)),
            "{case}: {link}"
        );
        a.finish().ok();
    }
    w.store.assert_no_leftovers();
}

/// The bridge spares of a host network namespace that is gone (their host
/// ends, and so their `eth0`, went with it) are removed by the next bridge
/// pool refill, from any namespace.
#[test]
fn bridge_spares_of_a_namespace_that_is_gone_are_removed() {
    let World {
        host,
        store,
        bridge,
        subnet,
        ..
    } = World::new("gone", 29);
    // A bridge run in `ns`, then its background refill.
    let run_in = |ns: &NetNs| {
        ns.run(tupper_net(
            &store,
            &bridge,
            &subnet,
            &["run", "--rm", "bb", "true"],
        ))
        .ok();
        store.settle_pool();
    };
    run_in(&host);
    let old = store.bridge_spares();
    assert_eq!(old.len(), tupper::netns_pool::DEFAULT_SIZE);
    let old_dir = old[0].parent().unwrap().to_path_buf();
    drop(host);
    let next = NetNs::new();
    // Its spares lose their eth0 once the namespace is cleaned up (the
    // kernel does it in a worker).
    let lost = wait_for(Duration::from_secs(5), || {
        !store
            .holder_sh(&format!(
                "$B nsenter --net={} $B ip -o link",
                old[0].display()
            ))
            .contains("eth0")
    });
    assert!(
        lost,
        "eth0 of {} outlived its host namespace",
        old[0].display()
    );
    run_in(&next);
    let left = store.holder_sh("$B ls /");
    let old_name = old_dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        !left.lines().any(|l| l == old_name),
        "{} is still there: {left}",
        old_dir.display()
    );
    let now = store.bridge_spares();
    assert_eq!(now.len(), tupper::netns_pool::DEFAULT_SIZE);
    assert!(now.iter().all(|p| p.parent() != Some(old_dir.as_path())));
    store.assert_no_leftovers();
}

/// Bridge spares hold ports, but never a container's: on a full bridge a
/// start that got no spare (here the pool is off for it) takes one out of
/// the pool, frees its port and gets it. (4 spares + 1,019 veths made here
/// = 1,023 ports.)
#[test]
fn a_full_bridge_gives_a_spares_port_to_a_start() {
    let w = World::new("sport", 30);
    let pool = |n: &str, args: &[&str]| {
        let mut c = w.cmd(args);
        c.env("TUPPER_NETNS_POOL", n);
        c
    };
    w.host.run(pool("4", &["run", "--rm", "bb", "true"])).ok();
    w.store.settle_pool();
    let spares = w.store.bridge_spares();
    assert_eq!(spares.len(), 4, "{spares:?}");
    add_ports(&w, 1019);
    assert_eq!(ports_of(&w).len(), 1023);
    let out = w
        .host
        .run(pool(
            "0",
            &["run", "--rm", "bb", "sh", "-c", PRINT_ADDR_AND_WAIT],
        ))
        .ok();
    assert_eq!(
        addr_of(out.lines().next().unwrap()),
        format!("{}/24", w.addr(2))
    );
    w.store.settle_pool();
    assert_eq!(
        w.store.bridge_spares().len(),
        3,
        "{:?}",
        w.store.bridge_spares()
    );
    w.store.assert_no_leftovers();
}

/// `--add-host` and `--dns*`: the container's /etc/hosts and resolv.conf
/// as docker writes them; `host-gateway` is the bridge's address.
#[test]
fn add_host_and_dns_options_reach_the_etc_files() {
    let w = World::new("etc", 37);
    let text = w
        .tupper(&[
            "run",
            "--rm",
            "--add-host",
            "gw:host-gateway",
            "--add-host",
            "db=192.0.2.5",
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "example.org",
            "--dns-option",
            "ndots:3",
            "bb",
            "sh",
            "-c",
            "tail -3 /etc/hosts; echo ---; cat /etc/resolv.conf",
        ])
        .ok();
    let (hosts, resolv) = text.split_once("---\n").unwrap();
    // Before the container's own line (its address), as docker writes them.
    let lines: Vec<&str> = hosts.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], format!("{}\tgw", w.addr(1)), "{text}");
    assert_eq!(lines[1], "192.0.2.5\tdb", "{text}");
    assert!(lines[2].starts_with(&format!("{}.", w.net)), "{text}");
    let lines: Vec<&str> = resolv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        [
            "search example.org",
            "nameserver 192.0.2.53",
            "options ndots:3"
        ],
        "{text}"
    );
    // host-gateway needs the bridge: refused with --net none, nothing made.
    let before = w.store.state();
    let out = w.tupper(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--add-host",
        "gw:host-gateway",
        "bb",
        "true",
    ]);
    let line = out.fails(125);
    assert!(line.contains("only --net bridge has a gateway"), "{line}");
    before.assert_same(&w.store.state(), "--add-host host-gateway with --net none");
    w.store.assert_no_leftovers();
}

/// `--sysctl` of eth0 in bridge mode: written once the parent has set the
/// network up.
#[test]
fn a_sysctl_of_eth0_is_written_after_the_network_is_up() {
    let w = World::new("sysc", 38);
    let text = w
        .tupper(&[
            "run",
            "--rm",
            "--sysctl",
            "net.ipv4.conf.eth0.forwarding=1",
            "bb",
            "cat",
            "/proc/sys/net/ipv4/conf/eth0/forwarding",
        ])
        .ok();
    assert_eq!(text, "1\n");
    let text = w
        .tupper(&[
            "run",
            "--rm",
            "bb",
            "cat",
            "/proc/sys/net/ipv4/conf/eth0/forwarding",
        ])
        .ok();
    assert_eq!(text, "0\n");
    w.store.assert_no_leftovers();
}

// ------------------------------------------------ user-defined networks

/// The `/etc/hosts` lines of container `name` after tupper's network mark.
fn network_hosts(w: &World, name: &str) -> Vec<String> {
    let text = w.tupper(&["exec", name, "cat", "/etc/hosts"]).ok();
    match text.split_once("# tupper network ") {
        Some((_, rest)) => rest.lines().skip(1).map(str::to_string).collect(),
        None => Vec::new(),
    }
}

/// `network create NAME` and `run --net NAME` (docker's user-defined
/// networks): a bridge and subnet of the network's own, made by the first
/// start; each running container of the network finds the others by name,
/// `--network-alias` and ID in its `/etc/hosts`, which follows them as they
/// start, are renamed, stop and start again; a container on the default
/// bridge does not see them. `network rm` refuses a network with a running
/// container, and then takes the bridge, its rules and its spare
/// namespaces along (checked with `ip` and `nft`).
#[test]
fn containers_of_a_user_defined_network_find_each_other_by_name() {
    require_nft();
    let w = World::new("unet", 42);
    let id = w.tupper(&["network", "create", "appnet"]).ok();
    let id = id.trim().to_string();
    assert!(is_id(&id), "{id}");
    let bridge = format!("tn{id}");
    let net = &serde_json::from_str::<serde_json::Value>(
        &w.tupper(&["network", "inspect", "appnet"]).ok(),
    )
    .unwrap()[0];
    assert_eq!(net["subnet"], "10.90.0.0/24", "{net}");
    assert_eq!(net["bridge"], bridge.as_str(), "{net}");
    // Nothing on the host until a container starts on it.
    assert_ne!(w.host.try_sh(&format!("ip link show {bridge}")).code, 0);
    let db = w
        .tupper(&[
            "run",
            "-d",
            "--name",
            "db",
            "--network-alias",
            "pg",
            "--net",
            "appnet",
            "bb",
            "sleep",
            "600",
        ])
        .ok();
    let db = db.trim().to_string();
    let web = w
        .tupper(&[
            "run", "-d", "--name", "web", "--net", "appnet", "bb", "sleep", "600",
        ])
        .ok();
    let web = web.trim().to_string();
    let link = w.host.sh(&format!("ip -o -4 addr show dev {bridge}"));
    assert!(link.contains("10.90.0.1/24"), "{link}");
    assert_eq!(network_hosts(&w, "db"), [format!("10.90.0.3\tweb {web}")]);
    assert_eq!(network_hosts(&w, "web"), [format!("10.90.0.2\tdb pg {db}")]);
    let inspected = w.store.inspect("db");
    assert_eq!(inspected["network"]["network"], "appnet", "{inspected}");
    assert_eq!(inspected["network"]["aliases"][0], "pg", "{inspected}");
    // A third one reaches both by name; while it runs, both list it.
    let mut third = w.spawn(&[
        "run",
        "--rm",
        "--name",
        "third",
        "--net",
        "appnet",
        "bb",
        "sh",
        "-c",
        "ping -c1 -W3 pg >/dev/null && ping -c1 -W3 web >/dev/null && echo REACHED; read x",
    ]);
    third.line_with("REACHED");
    let third_id = w.store.inspect("third")["id"].as_str().unwrap().to_string();
    assert!(
        network_hosts(&w, "db").contains(&format!("10.90.0.4\tthird {third_id}")),
        "{:?}",
        network_hosts(&w, "db")
    );
    third.finish();
    assert_eq!(network_hosts(&w, "db"), [format!("10.90.0.3\tweb {web}")]);
    // The default bridge's containers are not on it.
    let plain = w.run_sh("cat /etc/hosts").ok();
    // (By name: its own ID, 12 hex digits, may hold "db".)
    assert!(
        !plain.contains("tupper network")
            && !plain
                .lines()
                .any(|l| l.split_whitespace().skip(1).any(|n| n == "db")),
        "{plain}"
    );
    // A rename reaches the others; a stop takes it out of theirs, a start
    // puts it back.
    w.tupper(&["rename", "web", "front"]).ok();
    assert_eq!(network_hosts(&w, "db"), [format!("10.90.0.3\tfront {web}")]);
    w.tupper(&["stop", "-t", "0", "db"]).ok();
    assert_eq!(network_hosts(&w, "front"), Vec::<String>::new());
    let before = w.store.state();
    let line = w.tupper(&["network", "rm", "appnet"]).fails(125);
    assert!(line.contains("container front is running on it"), "{line}");
    before.assert_same(&w.store.state(), "network rm of a network in use");
    w.tupper(&["start", "db"]).ok();
    assert_eq!(
        network_hosts(&w, "front"),
        [format!("10.90.0.2\tdb pg {db}")]
    );
    // Its bridge got a pool of spare namespaces, which network rm takes.
    w.store.settle_pool();
    let pool = |w: &World| -> Vec<std::path::PathBuf> {
        w.store
            .bridge_spares()
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(&bridge))
            .collect()
    };
    assert!(!pool(&w).is_empty(), "{:?}", w.store.bridge_spares());
    w.tupper(&["rm", "-f", "db", "front"]).ok();
    assert_eq!(w.tupper(&["network", "rm", "appnet"]).ok(), "appnet\n");
    assert_ne!(w.host.try_sh(&format!("ip link show {bridge}")).code, 0);
    let table = w.host.sh("nft list table ip tupper");
    assert!(!table.contains(&bridge), "{table}");
    assert!(pool(&w).is_empty(), "{:?}", pool(&w));
    assert!(
        list_dir(&w.store.root().join("state/networks"))
            .iter()
            .all(|f| f == ".lock"),
        "{:?}",
        list_dir(&w.store.root().join("state/networks"))
    );
    assert_eq!(w.tupper(&["network", "ls", "-q"]).ok(), "");
    // docker's events of the network: made, each container in and out,
    // removed.
    let events = w
        .tupper(&[
            "events",
            "--since",
            "1h",
            "--until",
            "0s",
            "-f",
            "network=appnet",
            "--format",
            "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.container}}",
        ])
        .ok();
    let events: Vec<&str> = events.lines().collect();
    let want_first = [
        format!("create {id} <no value>"),
        format!("connect {id} {db}"),
        format!("connect {id} {web}"),
        format!("connect {id} {third_id}"),
        format!("disconnect {id} {third_id}"),
        format!("disconnect {id} {db}"),
        format!("connect {id} {db}"),
    ];
    assert_eq!(events[..7], want_first, "{events:#?}");
    let mut last_two = events[7..9].to_vec();
    last_two.sort();
    let mut want = [
        format!("disconnect {id} {db}"),
        format!("disconnect {id} {web}"),
    ];
    want.sort();
    assert_eq!(last_two, want, "{events:#?}");
    assert_eq!(
        events[9..],
        [format!("destroy {id} <no value>")],
        "{events:#?}"
    );
    w.store.assert_no_leftovers();
}

/// A member whose run was killed leaves its line; the next start on the
/// network drops it from the others' `/etc/hosts` (it no longer runs),
/// and `rm` of the dead container takes it out too.
#[test]
fn a_killed_member_leaves_the_other_containers_hosts() {
    let w = World::new("unetk", 43);
    w.tupper(&["network", "create", "kn"]).ok();
    w.tupper(&[
        "run", "-d", "--name", "stay", "--net", "kn", "bb", "sleep", "600",
    ])
    .ok();
    let mut gone = w.spawn(&[
        "run",
        "--name",
        "gone",
        "--net",
        "kn",
        "bb",
        "sh",
        "-c",
        "echo up; sleep 600",
    ]);
    gone.line_with("up");
    let gone_id = w.store.inspect("gone")["id"].as_str().unwrap().to_string();
    assert_eq!(
        network_hosts(&w, "stay"),
        [format!("10.90.0.3\tgone {gone_id}")]
    );
    kill(gone.pid(), 9);
    gone.finish();
    // Still there: nothing has run since.
    assert_eq!(network_hosts(&w, "stay").len(), 1);
    let seen = w
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "kn",
            "bb",
            "sh",
            "-c",
            "sed -n '/tupper network/,$p' /etc/hosts",
        ])
        .ok();
    assert!(!seen.contains("gone"), "{seen}");
    assert_eq!(network_hosts(&w, "stay"), Vec::<String>::new());
    // The same through rm, before any other start.
    let mut again = w.spawn(&[
        "run",
        "--name",
        "again",
        "--net",
        "kn",
        "bb",
        "sh",
        "-c",
        "echo up; sleep 600",
    ]);
    again.line_with("up");
    assert_eq!(network_hosts(&w, "stay").len(), 1);
    kill(again.pid(), 9);
    again.finish();
    w.tupper(&["rm", "-f", "again", "gone"]).ok();
    assert_eq!(network_hosts(&w, "stay"), Vec::<String>::new());
    w.tupper(&["rm", "-f", "stay"]).ok();
    w.tupper(&["network", "prune"]).ok();
    assert_eq!(w.tupper(&["network", "ls", "-q"]).ok(), "");
    w.store.assert_no_leftovers();
}

/// What `network create` and `run --net NAME` refuse, each with a line
/// that says why and nothing made: a bad or reserved name, a name taken, a
/// subnet that overlaps another network's or an address of the host, an
/// unknown network, `--ip` outside the network's subnet, an alias without
/// a network. Without `--subnet` the first free `/24` is taken.
#[test]
fn network_create_and_run_refuse_bad_input_and_change_nothing() {
    let w = World::new("unetb", 44);
    w.host.sh("ip addr add 10.90.0.1/24 dev lo");
    w.tupper(&["network", "create", "--subnet", "10.91.0.0/16", "wide"])
        .ok();
    let before = w.store.state();
    for (args, want) in [
        (&["network", "create", "Bad"][..], "invalid network name"),
        (&["network", "create", "host"], "is a --net mode"),
        (
            &["network", "create", "wide"],
            "a network of that name exists",
        ),
        (
            &["network", "create", "--subnet", "10.91.4.0/24", "x"],
            "overlaps that of network wide",
        ),
        (
            &["network", "create", "--subnet", "10.90.0.0/16", "x"],
            "overlaps address 10.90.0.1/24 of lo",
        ),
        (
            &["network", "create", "--subnet", "10.92.0.1/24", "x"],
            "subnet",
        ),
        (&["network", "create", "-d", "macvlan", "x"], "bridges"),
        (
            &["run", "--rm", "--net", "nosuch", "bb", "true"],
            "no such network: nosuch",
        ),
        (
            &[
                "run",
                "--rm",
                "--net",
                "wide",
                "--ip",
                "10.89.0.5",
                "bb",
                "true",
            ],
            "not in subnet 10.91.0.0/16 of network wide",
        ),
        (
            &["run", "--rm", "--network-alias", "x", "bb", "true"],
            "only a container of a user-defined network",
        ),
        (&["network", "rm", "bridge"], "is a --net mode"),
        (&["network", "rm", "nosuch"], "no such network: nosuch"),
    ] {
        let out = w.tupper(args);
        let line = out.fails(125);
        assert!(line.contains(want), "{args:?}: {line}");
        assert_eq!(line.trim().lines().count(), 1, "{args:?}: {line}");
        before.assert_same(&w.store.state(), &format!("{args:?}"));
    }
    // 10.90.0.0/24 is the host's (lo), 10.91/16 network wide's.
    w.tupper(&["network", "create", "next"]).ok();
    let net = w
        .tupper(&["network", "inspect", "-f", "{{.subnet}}", "next"])
        .ok();
    assert_eq!(net, "10.90.1.0/24\n");
    let addr = w
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "wide",
            "--ip",
            "10.91.3.7",
            "bb",
            "sh",
            "-c",
            "ip -o -4 addr show eth0",
        ])
        .ok();
    assert!(addr.contains("10.91.3.7/16"), "{addr}");
    w.tupper(&["network", "rm", "wide", "next"]).ok();
    w.store.assert_no_leftovers();
}

/// Two user-defined networks, and the default bridge, are kept apart (the
/// bridges' `isolate-` chains, docker's isolation): a container reaches the
/// containers of its own network only, and those of another network
/// through a published port only (on its own gateway, a host address).
#[test]
fn user_defined_networks_are_isolated_from_each_other_and_the_default_bridge() {
    require_nft();
    let w = World::new("uneti", 45);
    w.tupper(&["network", "create", "n1"]).ok();
    w.tupper(&["network", "create", "n2"]).ok();
    w.tupper(&[
        "run", "-d", "--name", "a", "--net", "n1", "-p", "8089:80", "bb", "httpd", "-f", "-p",
        "80", "-h", "/etc",
    ])
    .ok();
    // a is 10.90.0.2; n2's gateway, a host address, is 10.90.1.1.
    let probe = "ping -c1 -W2 10.90.0.2 >/dev/null && echo PING-OK; \
                 printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 10.90.1.1 8089 | tail -1; true";
    let same = w
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "n1",
            "bb",
            "sh",
            "-c",
            "ping -c1 -W2 a >/dev/null && echo PING-OK",
        ])
        .ok();
    assert_eq!(same, "PING-OK\n");
    let other = w
        .tupper(&["run", "--rm", "--net", "n2", "bb", "sh", "-c", probe])
        .ok();
    assert_eq!(other, "a\n", "from n2: no ping, the published port only");
    let default = w
        .run_sh("ping -c1 -W2 10.90.0.2 >/dev/null && echo PING-OK; true")
        .ok();
    assert_eq!(default, "", "from the default bridge");
    // And the other way round: from n1 to a container of the default bridge.
    let mut b = w.spawn(&["run", "--rm", "bb", "sh", "-c", PRINT_ADDR_AND_WAIT]);
    let line = b.line_with("ADDR ");
    let b_addr = addr_of(&line);
    let b_addr = b_addr.split('/').next().unwrap();
    let back = w
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "n1",
            "bb",
            "sh",
            "-c",
            &format!("ping -c1 -W2 {b_addr} >/dev/null && echo PING-OK; true"),
        ])
        .ok();
    assert_eq!(back, "", "from n1 to {b_addr} on the default bridge");
    b.finish();
    let table = w.host.sh("nft list table ip tupper");
    assert!(table.contains("chain isolate-"), "{table}");
    w.tupper(&["rm", "-f", "a"]).ok();
    w.tupper(&["network", "rm", "n1", "n2"]).ok();
    w.store.assert_no_leftovers();
}

/// `network create --internal` (docker's): its containers reach each other
/// by name, and nothing beyond its bridge (an "outside" address that a
/// container of another network reaches through NAT); it publishes no
/// port.
#[test]
fn an_internal_network_reaches_nothing_beyond_its_bridge() {
    require_nft();
    let w = World::new("unetn", 46);
    let _out = outside(&w.host, "in");
    w.tupper(&["network", "create", "--internal", "inside"])
        .ok();
    w.tupper(&["network", "create", "open"]).ok();
    w.tupper(&[
        "run", "-d", "--name", "peer", "--net", "inside", "bb", "sleep", "600",
    ])
    .ok();
    let probe = "ping -c1 -W2 192.0.2.2 >/dev/null && echo OUT; \
                 ping -c1 -W2 peer >/dev/null && echo PEER; true";
    let open = w
        .tupper(&["run", "--rm", "--net", "open", "bb", "sh", "-c", probe])
        .ok();
    assert_eq!(open, "OUT\n", "a plain network's container reaches outside");
    let inside = w
        .tupper(&["run", "--rm", "--net", "inside", "bb", "sh", "-c", probe])
        .ok();
    assert_eq!(inside, "PEER\n", "an internal network's container");
    let net = w
        .tupper(&["network", "inspect", "-f", "{{.internal}}", "inside"])
        .ok();
    assert_eq!(net, "true\n");
    let before = w.store.state();
    let line = w
        .tupper(&[
            "run", "--rm", "--net", "inside", "-p", "8090:80", "bb", "true",
        ])
        .fails(125);
    assert!(line.contains("network inside is internal"), "{line}");
    before.assert_same(&w.store.state(), "-p on an internal network");
    w.tupper(&["rm", "-f", "peer"]).ok();
    w.tupper(&["network", "rm", "inside", "open"]).ok();
    w.store.assert_no_leftovers();
}

/// The `ADDRESS NAMES` lines of network `network`'s part of container
/// `name`'s `/etc/hosts` (`None`: it has no such part).
fn hosts_of(w: &World, name: &str, network: &str) -> Option<Vec<String>> {
    let text = w.tupper(&["exec", name, "cat", "/etc/hosts"]).ok();
    let mark = format!("# tupper network {network}");
    let mut lines = text.lines().skip_while(|l| *l != mark);
    lines.next()?;
    Some(
        lines
            .take_while(|l| !l.starts_with("# tupper network "))
            .map(str::to_string)
            .collect(),
    )
}

/// `network connect` and `network disconnect` (docker's): a running
/// container gets one more interface at once, `eth1` with an address of
/// the network and no default route, and the network's containers find it
/// by its name and `--alias` (and it them); a stop takes it off, a start
/// puts it back; a disconnect takes interface, names and lease away; a
/// stopped container is connected from its next start, with its `--ip`.
/// Checked with `ip` in the container and on the host, the lease file and
/// the other container's `/etc/hosts`.
#[test]
fn network_connect_adds_an_interface_and_disconnect_takes_it_away() {
    require_nft();
    let w = World::new("ucon", 46);
    let n2 = w.tupper(&["network", "create", "n2"]).ok();
    w.tupper(&["network", "create", "n1"]).ok();
    let n2 = n2.trim();
    let sleeper = |name: &str, net: &str| {
        let id = w
            .tupper(&[
                "run", "-d", "--name", name, "--net", net, "bb", "sleep", "600",
            ])
            .ok();
        id.trim().to_string()
    };
    // n2 is 10.90.0.0/24, n1 10.90.1.0/24.
    let b = sleeper("b", "n2");
    let a = sleeper("a", "n1");
    let inet = |name: &str| {
        let text = w.tupper(&["exec", name, "ip", "-o", "-4", "addr"]).ok();
        let mut v: Vec<String> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some(format!("{} {}", f.get(1)?, f.get(3)?))
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(inet("a"), ["eth0 10.90.1.2/24", "lo 127.0.0.1/8"]);
    // a on n2 at `addr`, found by `names` there, finding b.
    let a_on_n2 = |addr: &str, names: &str| {
        let want = [
            "eth0 10.90.1.2/24".to_string(),
            format!("eth1 {addr}/24"),
            "lo 127.0.0.1/8".to_string(),
        ];
        assert_eq!(inet("a"), want);
        let hosts = |name| hosts_of(&w, name, "n2");
        assert_eq!(hosts("b"), Some(vec![format!("{addr}\t{names} {a}")]));
        assert_eq!(hosts("a"), Some(vec![format!("10.90.0.2\tb {b}")]));
    };
    w.tupper(&["network", "connect", "--alias", "cache", "n2", "a"])
        .ok();
    a_on_n2("10.90.0.3", "a cache");
    let routes = w.tupper(&["exec", "a", "ip", "route"]).ok();
    let defaults: Vec<&str> = routes
        .lines()
        .filter(|l| l.starts_with("default"))
        .collect();
    assert_eq!(defaults, ["default via 10.90.1.1 dev eth0 "], "{routes}");
    assert_eq!(hosts_of(&w, "a", "n1"), Some(vec![]));
    let ping = w
        .tupper(&[
            "exec",
            "b",
            "sh",
            "-c",
            "ping -c1 -W3 cache >/dev/null && echo OK",
        ])
        .ok();
    assert_eq!(ping, "OK\n");
    // A rename reaches the networks it was connected to too.
    w.tupper(&["rename", "a", "alpha"]).ok();
    assert_eq!(
        hosts_of(&w, "b", "n2"),
        Some(vec![format!("10.90.0.3\talpha cache {a}")])
    );
    w.tupper(&["rename", "alpha", "a"]).ok();
    let host_end = format!("{}1", host_veth(&a));
    let link = w.host.sh(&format!("ip -o link show {host_end}"));
    assert!(link.contains(&format!("master tn{n2}")), "{link}");
    let c = &w.store.inspect("a")["network"]["connected"][0];
    assert_eq!(c["network"], "n2", "{c}");
    assert_eq!(c["interface"], "eth1", "{c}");
    assert_eq!(c["address"], "10.90.0.3", "{c}");
    assert_eq!(c["aliases"][0], "cache", "{c}");
    let on_n2 = w.tupper(&["ps", "-q", "-f", "network=n2"]).ok();
    let mut on_n2: Vec<&str> = on_n2.lines().collect();
    on_n2.sort();
    let mut want = [a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(on_n2, want);
    // What is refused changes nothing: records, leases, links, members.
    // (Not `store.state()`: it waits for the detached runs to end.)
    let seen = |w: &World| {
        let members = list_dir(&w.store.root().join("state/networks"))
            .iter()
            .filter(|f| f.ends_with(".members"))
            .map(|f| {
                std::fs::read_to_string(w.store.root().join("state/networks").join(f)).unwrap()
            })
            .collect::<Vec<_>>();
        let records = w.tupper(&["inspect", "a", "b"]).ok();
        // Without the spare namespaces' pairs, which come and go.
        let links: Vec<String> = w
            .links()
            .lines()
            .filter(|l| !l.starts_with("link ts"))
            .map(str::to_string)
            .collect();
        (records, w.leases(), links, members)
    };
    let before = seen(&w);
    for (args, want) in [
        (
            &["network", "connect", "n2", "a"][..],
            "is on network n2 already",
        ),
        (
            &["network", "connect", "n1", "a"],
            "is on network n1 already",
        ),
        (
            &["network", "disconnect", "n1", "a"],
            "the one container a was made on",
        ),
        (
            &["network", "connect", "nope", "a"],
            "no such network: nope",
        ),
        (
            &["network", "connect", "bridge", "a"],
            "bridge is a --net mode",
        ),
        (
            &["network", "disconnect", "bridge", "b"],
            "bridge is a --net mode",
        ),
        (&["network", "connect", "n2", "nobody"], "no such container"),
        (
            &["network", "connect", "--ip", "10.1.2.3", "n2", "b"],
            "not in subnet",
        ),
    ] {
        let line = w.tupper(args).fails(125);
        assert!(line.contains(want), "{args:?}: {line}");
        assert_eq!(line.lines().count(), 1, "{line}");
    }
    assert_eq!(before, seen(&w), "refused network connect");
    // A stop takes it off n2; a start puts it back.
    w.tupper(&["stop", "-t", "0", "a"]).ok();
    assert_eq!(hosts_of(&w, "b", "n2"), Some(vec![]));
    assert!(
        !w.leases().iter().any(|l| l.contains(&a)),
        "{:?}",
        w.leases()
    );
    assert_ne!(w.host.try_sh(&format!("ip link show {host_end}")).code, 0);
    w.tupper(&["start", "a"]).ok();
    a_on_n2("10.90.0.3", "a cache");
    // Disconnected while it runs: interface, names and lease go.
    w.tupper(&["network", "disconnect", "n2", "a"]).ok();
    assert_eq!(inet("a"), ["eth0 10.90.1.2/24", "lo 127.0.0.1/8"]);
    assert_eq!(hosts_of(&w, "b", "n2"), Some(vec![]));
    assert_eq!(hosts_of(&w, "a", "n2"), None);
    let leases = w.leases();
    assert_eq!(
        leases.iter().filter(|l| l.contains(&a)).count(),
        1,
        "{leases:?}"
    );
    assert!(w.store.inspect("a")["network"]["connected"].is_null());
    let line = w.tupper(&["network", "disconnect", "n2", "a"]).fails(125);
    assert!(
        line.contains("container a is not connected to network n2"),
        "{line}"
    );
    // A stopped container is connected from its next start, at its --ip.
    w.tupper(&["stop", "-t", "0", "a"]).ok();
    w.tupper(&["network", "connect", "--ip", "10.90.0.50", "n2", "a"])
        .ok();
    assert!(
        !w.leases().iter().any(|l| l.contains(&a)),
        "{:?}",
        w.leases()
    );
    w.tupper(&["start", "a"]).ok();
    a_on_n2("10.90.0.50", "a");
    // `--net` given again (docker 25's): on both from the start.
    let both = w
        .tupper(&[
            "run",
            "--rm",
            "--net",
            "n1",
            "--net",
            "n2",
            "bb",
            "sh",
            "-c",
            "ip -o -4 addr show dev eth1 | awk '{print $4}'; sed -n '/^# tupper network n2$/,$p' /etc/hosts",
        ])
        .ok();
    assert!(both.starts_with("10.90.0.3/24\n"), "{both}");
    assert!(both.contains(&format!("\n10.90.0.2\tb {b}\n")), "{both}");
    // A network with a connected container running is in use.
    let line = w.tupper(&["network", "rm", "n2"]).fails(125);
    assert!(line.contains("is running on it"), "{line}");
    // A run killed with a connection made while it ran: rm frees both
    // addresses and takes its names out of the others' /etc/hosts.
    let mut k = w.spawn(&[
        "run",
        "--name",
        "k",
        "--net",
        "n1",
        "bb",
        "sh",
        "-c",
        "echo up; sleep 60",
    ]);
    k.line_with("up");
    w.tupper(&["network", "connect", "n2", "k"]).ok();
    let k_id = w.store.inspect("k")["id"].as_str().unwrap().to_string();
    assert_eq!(w.leases().iter().filter(|l| l.contains(&k_id)).count(), 2);
    kill(k.pid(), 9);
    k.finish();
    let named = |w: &World| {
        hosts_of(w, "b", "n2")
            .unwrap()
            .iter()
            .any(|l| l.contains(&k_id))
    };
    assert!(named(&w));
    w.tupper(&["rm", "-f", "k"]).ok();
    assert!(
        !w.leases().iter().any(|l| l.contains(&k_id)),
        "{:?}",
        w.leases()
    );
    assert!(!named(&w));
    w.tupper(&["rm", "-f", "a", "b"]).ok();
    assert!(w.leases().is_empty(), "{:?}", w.leases());
    w.tupper(&["network", "rm", "n1", "n2"]).ok();
    w.store.assert_no_leftovers();
}

/// `network connect` refuses a container that is not on a bridge network
/// (`--net none`, `host`, `container:`), as docker's does, and changes
/// nothing.
#[test]
fn network_connect_refuses_a_container_without_a_bridge_network() {
    let w = World::new("uconb", 47);
    w.tupper(&["network", "create", "n3"]).ok();
    w.tupper(&["create", "--name", "lonely", "--net", "none", "bb", "true"])
        .ok();
    let before = w.store.state();
    let line = w.tupper(&["network", "connect", "n3", "lonely"]).fails(125);
    assert!(line.contains("has --net none"), "{line}");
    before.assert_same(&w.store.state(), "network connect of --net none");
    w.tupper(&["rm", "lonely"]).ok();
    w.tupper(&["network", "rm", "n3"]).ok();
    w.store.assert_no_leftovers();
}
