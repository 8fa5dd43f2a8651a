//! The container network: bridge, veth pair, addresses, routes, NAT and
//! published ports, over raw netlink from the tupper process itself (no `ip`,
//! `iptables` or `nft` program is ever started).
//!
//! # The API the launcher calls, in order
//!
//! | when | call | what happens | where |
//! |---|---|---|---|
//! | before `clone3` | [`prepare`] | validates [`Options`]; reads the bridge (refuses a non-bridge or one with another address); takes an address lease | host netns, read-only; `STATE_DIR/leases` |
//! | before the child pivots | [`write_etc_files`] | `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` in the container root, never following the image's symlinks | files |
//! | after `clone3`, before the child execs | [`attach`] | `none`: `lo` up. `bridge`: bridge (created if missing) and NAT, veth pair with the peer created as `eth0` in the child's netns, `eth0` up (the child sets `lo` up itself), address, default route, DNAT of published ports | host netns, then the child's netns (through a socket opened there) |
//! | after the container ended | [`release`] | removes the DNAT rules, frees the lease (exactly once: it consumes the [`Prepared`]); the veth pair dies with the netns | host netns; lease file |
//! | at start-up or `prune` | [`reclaim`] | removes leftovers of dead containers: host-end veths, DNAT chains, leases | host netns; lease file |
//!
//! If [`attach`] fails, the caller kills the child (its namespace and anything
//! in it go away) and still calls [`release`]. [`Prepared`] must not be
//! dropped without [`release`] unless the container keeps running.
//!
//! The design (namespaces of each request, the lease file, the nftables
//! table, names, measured costs) is in `docs/network.md`.

pub mod connection;
mod conntrack;
pub(crate) mod etc;
mod lease;
mod msg;
mod nft;
mod nl;

use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{Mode as FileMode, OFlags};
use rustix::thread::ThreadNameSpaceType;

use crate::error::{Context, Error, Result};
pub use connection::Connection;
use nl::Netlink;

/// The default bridge (`--bridge`, `TUPPER_BRIDGE`).
pub const DEFAULT_BRIDGE: &str = "tupper0";
/// The default subnet (`--subnet`, `TUPPER_SUBNET`).
pub const DEFAULT_SUBNET: &str = "10.89.0.0/16";
/// The container's end of the veth pair, inside its namespace.
pub const CONTAINER_IFNAME: &str = "eth0";
/// `IFNAMSIZ - 1`: the longest interface name.
pub const MAX_IFNAME: usize = 15;
/// `lo` is always interface 1 of a network namespace (`LOOPBACK_IFINDEX`).
const LOOPBACK_INDEX: u32 = 1;
/// The ifindex asked for the container's `eth0` (the next after `lo`).
const ETH0_INDEX: u32 = 2;

/// `--net`: which network the container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Its own network namespace with only `lo`, up (`--net none`).
    None,
    /// The host's network namespace (`--net host`): nothing to set up.
    Host,
    /// Its own namespace with `eth0` on the bridge, an address and NAT (`--net bridge`).
    #[default]
    Bridge,
    /// The network namespace of another container, which must be running
    /// (`--net container:NAME`, [`Options::container`]): its interfaces,
    /// addresses and ports, its `/etc/hosts` and `/etc/resolv.conf`.
    Container,
}

impl Mode {
    /// Parses `none`, `host` or `bridge`.
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            "bridge" => Ok(Mode::Bridge),
            _ => Err(Error::msg(format!(
                "invalid --net {s:?}: expected none, host, bridge, container:NAME or a network (tupper network ls)"
            ))),
        }
    }

    /// Parses a `--net` value: [`Mode::parse`]'s, or `container:NAME`
    /// (a container's name or ID, returned with the mode).
    pub fn parse_with_container(s: &str) -> Result<(Mode, Option<String>)> {
        match s.strip_prefix("container:") {
            Some(c) if !c.is_empty() => Ok((Mode::Container, Some(c.to_string()))),
            Some(_) => Err(Error::msg(format!(
                "invalid --net {s:?}: container: names the container whose network it joins"
            ))),
            None => Mode::parse(s).map(|m| (m, None)),
        }
    }

    /// The `--net` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Host => "host",
            Mode::Bridge => "bridge",
            Mode::Container => "container",
        }
    }

    /// Whether the container needs a network namespace of its own
    /// (`CLONE_NEWNET`, or a spare one).
    pub fn new_netns(self) -> bool {
        matches!(self, Mode::None | Mode::Bridge)
    }

    /// Whether the container's network namespace is not the host's (its
    /// own, or another container's).
    pub fn not_the_hosts(self) -> bool {
        self != Mode::Host
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IPv4 subnet with room for a gateway and at least one container
/// (prefix length 1..=30, no host bits set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// The network address (`10.89.0.0`).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length (`16`).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask (`255.255.0.0`).
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX << (32 - self.prefix as u32))
    }

    /// The first address, the bridge's: the containers' gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The broadcast address (the last one).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !u32::from(self.mask()))
    }

    /// Whether `addr` is in the subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & u32::from(self.mask()) == u32::from(self.network)
    }

    /// The addresses containers can have, lowest first (gateway + 1 up to
    /// broadcast - 1).
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.gateway()) + 1..u32::from(self.broadcast())).map(Ipv4Addr::from)
    }

    /// Checks that `addr` can be a container's address in this subnet.
    pub fn check_host(&self, addr: Ipv4Addr) -> Result<()> {
        let why = if !self.contains(addr) {
            format!("it is outside subnet {self}")
        } else if addr == self.network {
            format!("it is the network address of {self}")
        } else if addr == self.gateway() {
            format!("it is the gateway (the bridge's address) of {self}")
        } else if addr == self.broadcast() {
            format!("it is the broadcast address of {self}")
        } else {
            return Ok(());
        };
        Err(Error::msg(format!("invalid --ip {addr}: {why}")))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Ranges no bridge subnet may overlap: their addresses cannot be a
/// bridge's or a container's unicast address.
const RESERVED: [(Ipv4Addr, u8, &str); 4] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\""),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (
        Ipv4Addr::new(240, 0, 0, 0),
        4,
        "reserved, with the broadcast address",
    ),
];

/// Parses `ADDRESS/PREFIX` (`10.89.0.0/16`) into a [`Subnet`]; refuses host
/// bits, prefixes that leave no room for a container (/31, /32) or are
/// nonsense (/0, /33, `+24`, `024`), and subnets that overlap the "this
/// network", loopback, multicast or reserved ranges (0/8, 127/8, 224/4,
/// 240/4).
pub fn parse_subnet(s: &str) -> Result<Subnet> {
    parse_subnet_as(s, "subnet")
}

/// [`parse_subnet`], naming the input `what` (`subnet`, `TUPPER_SUBNET`) in
/// errors.
fn parse_subnet_as(s: &str, what: &str) -> Result<Subnet> {
    let bad = |why: String| Error::msg(format!("invalid {what} {s:?}: {why}"));
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| bad("expected ADDRESS/PREFIX, such as 10.89.0.0/16".into()))?;
    let network: Ipv4Addr = addr
        .parse()
        .map_err(|_| bad(format!("{addr:?} is not an IPv4 address")))?;
    let digits = prefix.bytes().all(|b| b.is_ascii_digit()) && !prefix.starts_with('0');
    let prefix: u8 = match prefix.parse() {
        Ok(p) if digits && (1..=30).contains(&p) => p,
        _ => {
            return Err(bad(format!(
                "prefix length {prefix:?} is not in 1..=30 (a /31 or /32 has no room for a gateway and a container)"
            )))
        }
    };
    let subnet = Subnet {
        network: Ipv4Addr::from(u32::from(network) & (u32::MAX << (32 - prefix as u32))),
        prefix,
    };
    if subnet.network != network {
        return Err(bad(format!("host bits are set; the network is {subnet}")));
    }
    for (net, len, name) in RESERVED {
        // Two prefixes overlap when the shorter one contains the other's network.
        let shorter = prefix.min(len) as u32;
        let mask = u32::MAX << (32 - shorter);
        if u32::from(net) & mask == u32::from(network) & mask {
            return Err(bad(format!(
                "it overlaps {net}/{len} ({name} addresses); choose a private range such as 10.89.0.0/16"
            )));
        }
    }
    Ok(subnet)
}

/// Parses a container address (`--ip`) and checks it against `subnet`.
pub fn parse_ip(s: &str, subnet: &Subnet) -> Result<Ipv4Addr> {
    let addr: Ipv4Addr = s
        .parse()
        .map_err(|_| Error::msg(format!("invalid --ip {s:?}: not an IPv4 address")))?;
    subnet.check_host(addr)?;
    Ok(addr)
}

/// The transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The IP protocol number (`IPPROTO_TCP`, `IPPROTO_UDP`).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => libc::IPPROTO_TCP as u8,
            Protocol::Udp => libc::IPPROTO_UDP as u8,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A published port: `-p [ADDRESS:]HOSTPORT:CONTAINERPORT[/tcp|/udp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    /// The one host address it is published on (`-p 127.0.0.1:8080:80`);
    /// `None`: every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    /// The port on the host's addresses; 0: a free one of the host's
    /// ephemeral range, taken at each start (`-p 80`, `-P`).
    pub host_port: u16,
    /// The port in the container.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.host_ip, self.host_port) {
            (None, 0) => {}
            (Some(ip), 0) => write!(f, "{ip}::")?,
            (None, port) => write!(f, "{port}:")?,
            (Some(ip), port) => write!(f, "{ip}:{port}:")?,
        }
        write!(f, "{}/{}", self.container_port, self.protocol)
    }
}

impl PortMapping {
    /// The host side as docker's `port` prints it: `0.0.0.0:8080`, or
    /// `127.0.0.1:8080` when published on that address only.
    pub fn host_side(&self) -> String {
        format!(
            "{}:{}",
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port
        )
    }
}

/// Parses `-p [[ADDRESS:]HOSTPORT:]CONTAINERPORT[/tcp|/udp]` (`8080:80/tcp`,
/// `127.0.0.1:8080:80`). `ADDRESS` is an IPv4 address of the host; `0.0.0.0`
/// is the same as none: every address. Without `HOSTPORT` (`80`,
/// `127.0.0.1::80`), a free port of the host's ephemeral range (docker's).
pub fn parse_publish(s: &str) -> Result<PortMapping> {
    let bad = |why: &str| Error::msg(format!("invalid port mapping {s:?}: {why}"));
    let (ports, protocol) = match s.split_once('/') {
        None => (s, Protocol::Tcp),
        Some((p, "tcp")) => (p, Protocol::Tcp),
        Some((p, "udp")) => (p, Protocol::Udp),
        Some(_) => return Err(bad("the protocol must be tcp or udp")),
    };
    if ports.starts_with('[') || ports.matches(':').count() > 2 {
        return Err(bad(
            "IPv6 host addresses are not supported (the bridge network is IPv4 only)",
        ));
    }
    let (host, container) = ports.rsplit_once(':').unwrap_or(("", ports));
    let (host_ip, host, with_ip) = match host.split_once(':') {
        None => (None, host, false),
        Some((ip, port)) => {
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|_| bad(&format!("{ip:?} is not an IPv4 address")))?;
            (Some(ip).filter(|ip| !ip.is_unspecified()), port, true)
        }
    };
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(bad(&format!("port {p:?} is not in 1..=65535"))),
    };
    // `:80`: an empty host port without an address before it.
    if host.is_empty() && !with_ip && ports.contains(':') {
        return Err(bad(
            "expected [[ADDRESS:]HOSTPORT:]CONTAINERPORT[/tcp|/udp], such as 8080:80 or 80",
        ));
    }
    Ok(PortMapping {
        host_ip,
        host_port: match host {
            "" => 0,
            _ => port(host)?,
        },
        container_port: port(container)?,
        protocol,
    })
}

/// Checks an interface name as the kernel would (`dev_valid_name`), naming
/// what it is for in the error.
pub fn check_ifname(name: &str, what: &str) -> Result<()> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_IFNAME {
        "it is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "it is . or .."
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        "it contains '/', ':', whitespace or a control character"
    } else {
        return Ok(());
    };
    Err(Error::msg(format!("invalid {what} {name:?}: {why}")))
}

/// The network options of one container (CLI flags over environment over
/// defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--net`.
    pub mode: Mode,
    /// `--bridge` / `TUPPER_BRIDGE` (default `tupper0`).
    pub bridge: String,
    /// `--subnet` / `TUPPER_SUBNET` (default `10.89.0.0/16`).
    pub subnet: Subnet,
    /// `--ip`: a fixed address; otherwise the lowest free one.
    pub ip: Option<Ipv4Addr>,
    /// `--mac-address`: `eth0`'s MAC address; otherwise
    /// [`container_mac`] of its IPv4 address.
    pub mac: Option<[u8; 6]>,
    /// `-p`: published ports.
    pub publish: Vec<PortMapping>,
    /// `--dns`, `--dns-search`, `--dns-option`, `--add-host`: what the
    /// container's `/etc/resolv.conf` and `/etc/hosts` get besides tupper's.
    pub etc: EtcOptions,
    /// [`Mode::Container`]: the container whose network namespace it
    /// joins, by name or ID (the record keeps its ID).
    pub container: Option<String>,
    /// `--net NAME`: a user-defined network (`tupper network create`), in
    /// bridge mode; its bridge and subnet replace [`Options::bridge`] and
    /// [`Options::subnet`] when the start resolves it.
    pub network: Option<String>,
    /// `--network-alias`: more names by which the other containers of
    /// [`Options::network`] find this one.
    pub aliases: Vec<String>,
    /// [`Options::network`] is internal (`network create --internal`):
    /// nothing is forwarded into or out of its bridge. Set when the start
    /// resolves the network.
    pub internal: bool,
    /// `network connect`: the user-defined networks it is on besides
    /// [`Options::network`] (or the default bridge), each on `eth1`...
    pub connected: Vec<Connection>,
}

/// What `--dns`, `--dns-search`, `--dns-option` and `--add-host` put in the
/// container's `/etc/resolv.conf` and `/etc/hosts`, as docker puts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcOptions {
    /// `--dns`: nameservers in place of the host's.
    pub dns: Vec<std::net::IpAddr>,
    /// `--dns-search`: search domains in place of the host's (`.`: none).
    pub dns_search: Vec<String>,
    /// `--dns-option`: resolver options in place of the host's.
    pub dns_options: Vec<String>,
    /// `--add-host NAME:ADDR`: more `/etc/hosts` entries; `None` is
    /// `host-gateway`, the bridge's address.
    pub add_hosts: Vec<(String, Option<std::net::IpAddr>)>,
}

impl EtcOptions {
    /// Parses `--add-host NAME:ADDR` (or `NAME=ADDR`; `ADDR` an IPv4 or IPv6
    /// address, in brackets or not, or `host-gateway`).
    pub fn parse_add_host(s: &str) -> Result<(String, Option<std::net::IpAddr>)> {
        let bad = |why: &str| Error::msg(format!("invalid --add-host {s}: {why}"));
        let (name, addr) = match s.split_once('=') {
            Some(p) => p,
            None => s
                .split_once(':')
                .ok_or_else(|| bad("not NAME:ADDRESS (db:10.0.0.5)"))?,
        };
        if name.is_empty()
            || name.len() > 255
            || name
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'#' || b == b':')
        {
            return Err(bad("not a host name"));
        }
        if addr == "host-gateway" {
            return Ok((name.to_string(), None));
        }
        let bare = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        let ip = bare
            .parse()
            .map_err(|_| bad(&format!("{addr} is not an IP address or host-gateway")))?;
        Ok((name.to_string(), Some(ip)))
    }

    /// Checks `--dns-search` and `--dns-option` values (one word each).
    pub fn validate(&self) -> Result<()> {
        for (flag, values) in [
            ("--dns-search", &self.dns_search),
            ("--dns-option", &self.dns_options),
        ] {
            if let Some(v) = values.iter().find(|v| {
                v.is_empty()
                    || v.bytes()
                        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            }) {
                return Err(Error::msg(format!("invalid {flag} {v:?}: one word")));
            }
        }
        Ok(())
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mode: Mode::Bridge,
            bridge: DEFAULT_BRIDGE.to_string(),
            subnet: Subnet {
                network: Ipv4Addr::new(10, 89, 0, 0),
                prefix: 16,
            },
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
}

impl Options {
    /// The options of `mode` with the CLI's `--bridge` and `--subnet` when
    /// given, else `TUPPER_BRIDGE` and `TUPPER_SUBNET`, else the defaults. The
    /// variables are read only when they are used: in bridge mode, without
    /// the flag (a bad `TUPPER_SUBNET` does not break `--net none` or
    /// `--subnet`); their errors name them. A bad `--subnet` is refused in
    /// every mode.
    pub fn from_env_and_flags(
        mode: Mode,
        bridge: Option<&str>,
        subnet: Option<&str>,
    ) -> Result<Options> {
        Options::from_vars_and_flags(mode, bridge, subnet, &|name| std::env::var_os(name))
    }

    /// [`Options::from_env_and_flags`] with the variables read by `getenv`.
    pub(crate) fn from_vars_and_flags(
        mode: Mode,
        bridge: Option<&str>,
        subnet: Option<&str>,
        getenv: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Options> {
        let mut o = Options {
            mode,
            ..Options::default()
        };
        let var = |name: &str| -> Result<Option<String>> {
            match getenv(name) {
                None => Ok(None),
                Some(v) => v
                    .into_string()
                    .map(Some)
                    .map_err(|_| Error::msg(format!("invalid {name}: not UTF-8"))),
            }
        };
        if let Some(s) = subnet {
            o.subnet = parse_subnet(s)?;
        } else if mode == Mode::Bridge {
            if let Some(s) = var("TUPPER_SUBNET")? {
                o.subnet = parse_subnet_as(&s, "TUPPER_SUBNET")?;
            }
        }
        if let Some(b) = bridge {
            o.bridge = b.to_string();
        } else if mode == Mode::Bridge {
            if let Some(b) = var("TUPPER_BRIDGE")? {
                o.bridge = b;
            }
        }
        Ok(o)
    }

    /// The settings of a container with these options that has no lease
    /// yet (`create`): no address, gateway or veth.
    pub fn settings(&self) -> Settings {
        let bridge = self.mode == Mode::Bridge;
        Settings {
            mode: match (self.mode, &self.container) {
                (Mode::Container, Some(c)) => format!("container:{c}"),
                (m, _) => m.as_str().to_string(),
            },
            bridge: bridge.then(|| self.bridge.clone()),
            ports: self.publish.iter().map(|p| p.to_string()).collect(),
            subnet: bridge.then(|| self.subnet.to_string()),
            requested_address: self.ip.map(|a| a.to_string()),
            requested_mac_address: self.mac.map(format_mac),
            mac_address: self.mac.map(format_mac),
            dns: self.etc.dns.iter().map(|a| a.to_string()).collect(),
            dns_search: self.etc.dns_search.clone(),
            dns_options: self.etc.dns_options.clone(),
            extra_hosts: self
                .etc
                .add_hosts
                .iter()
                .map(|(name, addr)| match addr {
                    Some(a) => format!("{name}:{a}"),
                    None => format!("{name}:host-gateway"),
                })
                .collect(),
            network: self.network.clone(),
            aliases: self.aliases.clone(),
            connected: self.connected.iter().map(Connection::requested).collect(),
            ..Settings::default()
        }
    }

    /// Checks everything that can be checked without the kernel or the lease
    /// file.
    pub fn validate(&self) -> Result<()> {
        self.etc.validate()?;
        if let Some(n) = &self.network {
            crate::names::validate("network name", n)?;
            if self.mode != Mode::Bridge {
                return Err(Error::msg(format!(
                    "network {n} with --net {}: a user-defined network is a bridge network",
                    self.mode
                )));
            }
        }
        if let Some(a) = self.aliases.first() {
            if self.network.is_none() {
                return Err(Error::msg(format!(
                    "invalid --network-alias {a}: only a container of a user-defined network (tupper network create) has aliases"
                )));
            }
        }
        if let Some(a) = self
            .aliases
            .iter()
            .find(|a| !crate::plan::valid_hostname(a))
        {
            return Err(Error::msg(format!(
                "invalid --network-alias {a:?}: use letters, digits, '-' and '.', at most 64 bytes"
            )));
        }
        if self.mode == Mode::Container {
            let Some(c) = self.container.as_deref().filter(|c| !c.is_empty()) else {
                return Err(Error::msg(
                    "--net container: names the container whose network it joins",
                ));
            };
            // docker's "conflicting options": these are the other container's.
            let given = [
                (!self.etc.dns.is_empty(), "--dns"),
                (!self.etc.dns_search.is_empty(), "--dns-search"),
                (!self.etc.dns_options.is_empty(), "--dns-option"),
                (!self.etc.add_hosts.is_empty(), "--add-host"),
                (self.ip.is_some(), "--ip"),
                (self.mac.is_some(), "--mac-address"),
                (!self.publish.is_empty(), "-p"),
            ];
            if let Some((_, flag)) = given.iter().find(|(g, _)| *g) {
                return Err(Error::msg(format!(
                    "{flag} with --net container:{c}: the network, its addresses, ports, /etc/hosts and /etc/resolv.conf are container {c}'s"
                )));
            }
            return Ok(());
        } else if self.container.is_some() {
            return Err(Error::msg(format!(
                "--net {}: only --net container: names a container",
                self.mode
            )));
        }
        if let (false, Some(c)) = (self.mode == Mode::Bridge, self.connected.first()) {
            return Err(Error::msg(format!(
                "network connect {}: a container with --net {} cannot be on other networks",
                c.network, self.mode
            )));
        }
        connection::validate(self.network.as_deref(), &self.connected)?;
        if self.mode != Mode::Bridge {
            if let Some((name, _)) = self.etc.add_hosts.iter().find(|(_, a)| a.is_none()) {
                return Err(Error::msg(format!(
                    "invalid --add-host {name}:host-gateway: only --net bridge has a gateway"
                )));
            }
            if let Some(ip) = self.ip {
                return Err(Error::msg(format!(
                    "invalid --ip {ip}: only --net bridge gives the container an address"
                )));
            }
            if let Some(mac) = self.mac {
                return Err(Error::msg(format!(
                    "invalid --mac-address {}: only --net bridge gives the container an interface",
                    format_mac(mac)
                )));
            }
            if let Some(p) = self.publish.first() {
                return Err(Error::msg(format!(
                    "invalid -p {p}: ports are published only with --net bridge"
                )));
            }
            return Ok(());
        }
        check_ifname(&self.bridge, "bridge name")?;
        // A user-defined network's subnet is checked when the start resolves
        // the network (`Store::resolve_network`).
        if let Some(ip) = self.ip.filter(|_| self.network.is_none()) {
            self.subnet.check_host(ip)?;
        }
        for (i, p) in self.publish.iter().enumerate() {
            if let Some(q) = self.publish[..i]
                .iter()
                .filter(|_| p.host_port != 0)
                .find(|q| q.host_port == p.host_port && q.protocol == p.protocol)
            {
                return Err(Error::msg(format!(
                    "invalid -p {p}: host port {}/{} is already published by -p {q}",
                    p.host_port, p.protocol
                )));
            }
        }
        Ok(())
    }
}

/// The host end of a container's veth pair: `tp` + the first 12 characters of
/// an ID that is lowercase hex, else `tp` + 12 hex digits of a hash of the ID
/// (14 bytes, within the kernel's 15).
pub fn host_veth_name(container_id: &str) -> String {
    let hex = container_id.len() >= 12
        && container_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex {
        return format!("tp{}", &container_id[..12]);
    }
    // FNV-1a, 64 bits, cut to 48.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in container_id.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("tp{:012x}", h >> 16)
}

fn check_container_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(Error::msg(format!(
            "invalid container ID {id:?}: expected 1 to 128 of [A-Za-z0-9._-]"
        )));
    }
    Ok(())
}

/// The state of the bridge as [`prepare`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BridgeState {
    /// No device of that name: [`attach`] creates it.
    Missing,
    /// A bridge without any IPv4 address (one whose creation was cut short):
    /// [`attach`] gives it the gateway address.
    NoAddress { index: u32, up: bool },
    /// A bridge with the gateway address.
    Ready { index: u32, up: bool },
}

/// The bridge-mode part of [`Prepared`].
struct BridgeNet {
    bridge: String,
    subnet: Subnet,
    address: Ipv4Addr,
    /// `eth0`'s MAC address (`--mac-address`, else [`container_mac`]).
    mac: [u8; 6],
    host_veth: String,
    /// Whether the container got a spare network namespace of a bridge pool:
    /// its veth pair (host end `host_veth`) should already be there.
    spare_veth: bool,
    publish: Vec<PortMapping>,
    state: BridgeState,
    /// An internal network's bridge ([`Options::internal`]).
    internal: bool,
    /// Which of the container's interfaces: 0 `eth0` (the first network's,
    /// with the default route), else a [`Connection`]'s `ethN`.
    slot: u8,
    /// A `NETLINK_ROUTE` socket in the host's namespace.
    route: Netlink,
}

/// A container's network, decided before `clone3`: mode, names and (bridge
/// mode) the leased address. Give it to [`attach`], then to [`release`].
#[must_use = "a prepared bridge network holds an address lease: pass it to net::release"]
pub struct Prepared {
    mode: Mode,
    id: String,
    state_dir: PathBuf,
    bridge: Option<BridgeNet>,
    /// The bridge pool of spare network namespaces for this start.
    spare_pool: Option<SparePool>,
    /// What `/etc/resolv.conf` and `/etc/hosts` get besides tupper's.
    etc: EtcOptions,
    /// What the options alone say of the settings ([`Options::settings`]).
    unleased: Settings,
    /// [`Mode::Container`]: the other container's `/etc` files, which
    /// [`write_etc_files`] copies ([`Prepared::share_etc_of`]).
    shared_etc: Vec<(&'static str, Vec<u8>)>,
    /// On a user-defined network: its place among the network's containers
    /// ([`Prepared::set_member`]), which [`release`] gives up.
    member: Option<crate::network::Member>,
    /// Its [`Connection`]s, in order, each prepared by [`prepare_connection`]
    /// ([`Prepared::add_connection`]): [`attach`] and [`release`] take
    /// care of them with the first network.
    connections: Vec<Prepared>,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("mode", &self.mode)
            .field("id", &self.id)
            .field("address", &self.address())
            .field("host_veth", &self.host_veth())
            .finish()
    }
}

/// The network settings of a container, for `tupper ps` and `tupper inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// `none`, `host` or `bridge`.
    pub mode: String,
    /// The bridge (bridge mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// The container's address on `eth0` (bridge mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The prefix length of the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u8>,
    /// The MAC address of `eth0` (bridge mode): `--mac-address`, else
    /// `02:42` and its IPv4 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// The default gateway (the bridge's address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The host end of the veth pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_veth: Option<String>,
    /// Published ports as asked for, `[ADDRESS:]HOSTPORT:CONTAINERPORT/PROTO`
    /// (no `HOSTPORT`: a free one at each start).
    pub ports: Vec<String>,
    /// With a port asked for without a host port (`-p 80`, `-P`): every
    /// published port as the last start took it ([`Settings::shown_ports`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<String>,
    /// The bridge's subnet (bridge mode), `10.89.0.0/16`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// The address asked for with `--ip`, which every start of the
    /// container asks for again (`None`: the lowest free one each time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_address: Option<String>,
    /// The MAC address asked for with `--mac-address`, which every start
    /// of the container gives `eth0` again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_mac_address: Option<String>,
    /// `--dns`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// `--dns-search`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// `--add-host`, `NAME:ADDRESS` (or `NAME:host-gateway`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// The user-defined network (`--net NAME`), whose bridge and subnet are
    /// [`Settings::bridge`] and [`Settings::subnet`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `--network-alias`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `network connect`: the user-defined networks it is on besides the
    /// first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connected: Vec<Connection>,
}

impl Settings {
    /// The user-defined networks it is on: the first (`--net NAME`), then
    /// its connections.
    pub fn networks(&self) -> impl Iterator<Item = &str> {
        self.network
            .as_deref()
            .into_iter()
            .chain(self.connected.iter().map(|c| c.network.as_str()))
    }

    /// The published ports as the last start took them (`port`, `ps`).
    pub fn shown_ports(&self) -> &[String] {
        match self.published.is_empty() {
            true => &self.ports,
            false => &self.published,
        }
    }

    /// The options that made these settings, for another start of the
    /// same container (`tupper start`): its mode, bridge, subnet,
    /// `--ip`, ports and `/etc` options. A record of an older tupper,
    /// without the subnet, gets the default one.
    pub fn options(&self) -> Result<Options> {
        let (mode, container) = Mode::parse_with_container(&self.mode)?;
        let mut o = Options {
            mode,
            container,
            ..Options::default()
        };
        if let Some(b) = &self.bridge {
            o.bridge = b.clone();
        }
        if let Some(s) = &self.subnet {
            o.subnet = parse_subnet(s)?;
        }
        o.network = self.network.clone();
        o.aliases = self.aliases.clone();
        o.connected = self.connected.iter().map(Connection::requested).collect();
        if let Some(ip) = &self.requested_address {
            o.ip = Some(parse_ip(ip, &o.subnet)?);
        }
        if let Some(mac) = &self.requested_mac_address {
            o.mac = Some(parse_mac(mac)?);
        }
        o.publish = self
            .ports
            .iter()
            .map(|p| parse_publish(p))
            .collect::<Result<_>>()?;
        let ip = |s: &String| {
            s.parse()
                .map_err(|_| Error::msg(format!("invalid --dns {s:?}: not an IP address")))
        };
        o.etc = EtcOptions {
            dns: self.dns.iter().map(ip).collect::<Result<_>>()?,
            dns_search: self.dns_search.clone(),
            dns_options: self.dns_options.clone(),
            add_hosts: self
                .extra_hosts
                .iter()
                .map(|h| EtcOptions::parse_add_host(h))
                .collect::<Result<_>>()?,
        };
        o.validate()?;
        Ok(o)
    }
}

impl Prepared {
    /// The network mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The container ID it was prepared for.
    pub fn container_id(&self) -> &str {
        &self.id
    }

    /// The container's address (bridge mode).
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.bridge.as_ref().map(|b| b.address)
    }

    /// The gateway (bridge mode).
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.bridge.as_ref().map(|b| b.subnet.gateway())
    }

    /// Records that the container joins the spare network namespace
    /// `spare_id` of a bridge pool: its host end is the spare's
    /// ([`spare_host_veth`]), and [`attach`] uses the pair already there.
    /// Nothing in other modes.
    pub fn use_spare_veth(&mut self, spare_id: &str) {
        if let Some(b) = &mut self.bridge {
            b.host_veth = spare_host_veth(spare_id);
            b.spare_veth = true;
        }
    }

    /// [`Mode::Container`]: reads the `/etc/hostname`, `/etc/hosts` and
    /// `/etc/resolv.conf` of the container `shown` whose root is `root`
    /// (whose network this one joins), for [`write_etc_files`] to copy, as
    /// docker's joiner shares them.
    pub fn share_etc_of(&mut self, root: BorrowedFd<'_>, shown: &str) -> Result<()> {
        self.shared_etc = etc::read_shared(root, shown)?;
        Ok(())
    }

    /// Records the container's place among the containers of its
    /// user-defined network: [`write_etc_files`] names them in its
    /// `/etc/hosts`, and [`release`] takes it out of theirs.
    pub fn set_member(&mut self, member: crate::network::Member) {
        self.member = Some(member);
    }

    /// Adds connection `connection`, prepared by [`prepare_connection`]
    /// for the same container, in the order of [`Options::connected`].
    pub fn add_connection(&mut self, connection: Prepared) {
        self.connections.push(connection);
    }

    /// The bridge pool of spare network namespaces a start with these
    /// options takes from ([`spare_pool`]; bridge mode only).
    pub fn spare_pool(&self) -> Option<&SparePool> {
        self.spare_pool.as_ref()
    }

    /// The host end of the veth pair (bridge mode).
    pub fn host_veth(&self) -> Option<&str> {
        self.bridge.as_ref().map(|b| b.host_veth.as_str())
    }

    /// The settings, for `ps` and `inspect`.
    pub fn settings(&self) -> Settings {
        let b = self.bridge.as_ref();
        Settings {
            address: b.map(|b| b.address.to_string()),
            prefix_len: b.map(|b| b.subnet.prefix),
            mac_address: b.map(|b| format_mac(b.mac)),
            gateway: b.map(|b| b.subnet.gateway().to_string()),
            host_veth: b.map(|b| b.host_veth.clone()),
            connected: self
                .unleased
                .connected
                .iter()
                .enumerate()
                .map(|(i, c)| match self.connections.get(i) {
                    Some(p) => p.connection_settings(c),
                    None => c.clone(),
                })
                .collect(),
            ..self.unleased.clone()
        }
    }

    /// Connection `asked` as this [`prepare_connection`] made it.
    pub fn connection_settings(&self, asked: &Connection) -> Connection {
        let b = self.bridge.as_ref();
        Connection {
            interface: b.map(|b| connection::interface_name(b.slot)),
            address: b.map(|b| b.address.to_string()),
            prefix_len: b.map(|b| b.subnet.prefix),
            gateway: b.map(|b| b.subnet.gateway().to_string()),
            mac_address: b.map(|b| format_mac(b.mac)),
            host_veth: b.map(|b| b.host_veth.clone()),
            ..asked.requested()
        }
    }
}

/// Reads what the bridge named `name` is, without changing anything: missing,
/// or a bridge with the gateway address of `subnet` (or without any IPv4
/// address). A device of that name that is not a bridge, or a bridge with
/// another address, is an error.
fn inspect_bridge(route: &Netlink, name: &str, subnet: &Subnet) -> Result<BridgeState> {
    let Some(link) = look_up_link(route, name, "bridge")? else {
        return Ok(BridgeState::Missing);
    };
    if link.kind.as_deref() != Some("bridge") {
        // Devices without a link kind: `lo` (always interface 1) and
        // physical ones.
        let what = match link.kind.as_deref() {
            Some(kind) => format!("kind {kind}"),
            None if link.index == LOOPBACK_INDEX => "it is the loopback device".to_string(),
            None => "a device without a link kind, such as a physical one".to_string(),
        };
        return Err(Error::msg(format!(
            "use {name} as the bridge: it exists and is not a bridge ({what}); \
             it is left alone: choose another --bridge or TUPPER_BRIDGE"
        )));
    }
    let mut addrs = Vec::new();
    route.exchange(
        &mut msg::get_addresses(link.index),
        &|| format!("list the addresses of bridge {name}"),
        &mut |kind, payload| {
            if kind == linux_raw_sys::netlink::RTM_NEWADDR as u16 {
                if let Some((index, a, p)) = msg::parse_address(payload) {
                    if index == link.index {
                        addrs.push((a, p));
                    }
                }
            }
        },
    )?;
    let gw = (subnet.gateway(), subnet.prefix);
    if addrs.contains(&gw) {
        return Ok(BridgeState::Ready {
            index: link.index,
            up: link.up,
        });
    }
    if let Some((a, p)) = addrs.first() {
        return Err(Error::msg(format!(
            "use bridge {name}: it has address {a}/{p}, not {}/{} (the gateway of subnet {subnet}); \
             it is left alone: choose another --bridge or a matching --subnet",
            gw.0, gw.1
        )));
    }
    Ok(BridgeState::NoAddress {
        index: link.index,
        up: link.up,
    })
}

/// Refuses to make bridge `name` for `subnet` when the subnet overlaps the
/// network of an IPv4 address of the namespace (another bridge's, tupper's
/// or not, or an uplink's), as docker and podman refuse overlapping
/// networks: two routes for the same addresses would send the containers'
/// traffic to one of them. One `RTM_GETADDR` dump, only when the bridge is
/// missing (the common start finds it and skips this). Routes without an
/// address of their own (a VPN's) are not checked.
fn refuse_overlap(route: &Netlink, name: &str, subnet: &Subnet) -> Result<()> {
    if let Some((a, p, device)) = host_overlap(route, subnet, Some(name))? {
        return Err(Error::msg(format!(
            "create bridge {name} for subnet {subnet}: it overlaps address {a}/{p} of {device}; \
             choose another --subnet (or TUPPER_SUBNET)"
        )));
    }
    Ok(())
}

/// The first IPv4 address of the calling thread's network namespace whose
/// network overlaps `subnet` (address, prefix length, device), the
/// device `except` apart.
fn host_overlap(
    route: &Netlink,
    subnet: &Subnet,
    except: Option<&str>,
) -> Result<Option<(Ipv4Addr, u8, String)>> {
    let mut found = Vec::new();
    route.exchange(
        &mut msg::get_addresses(0),
        &|| "list the IPv4 addresses of the host".into(),
        &mut |kind, payload| {
            if kind == linux_raw_sys::netlink::RTM_NEWADDR as u16 {
                if let Some((index, a, p)) = msg::parse_address(payload) {
                    let shorter = u32::from(p.min(subnet.prefix));
                    let mask = u32::MAX.checked_shl(32 - shorter).unwrap_or(0);
                    if u32::from(a) & mask == u32::from(subnet.network) & mask {
                        found.push((index, a, p));
                    }
                }
            }
        },
    )?;
    for (index, a, p) in found {
        let device = rustix::net::netdevice::index_to_name(route.fd(), index)
            .unwrap_or_else(|_| format!("interface {index}"));
        // The bridge itself, made by a start that ran at the same time since
        // this one found it missing: `ensure_bridge` checks its subnet.
        if Some(device.as_str()) == except {
            continue;
        }
        return Ok(Some((a, p, device)));
    }
    Ok(None)
}

/// The first IPv4 address of the host (the calling thread's network
/// namespace) whose network overlaps `subnet`, as `ADDRESS/PREFIX of
/// DEVICE`: `tupper network create` picks or takes a subnet nothing else
/// uses.
pub fn host_address_in(subnet: &Subnet) -> Result<Option<String>> {
    let route = Netlink::route()?;
    Ok(host_overlap(&route, subnet, None)?.map(|(a, p, d)| format!("{a}/{p} of {d}")))
}

/// Deletes bridge `name` and its nftables chains (masquerade, guard and
/// isolation),
/// each if it is there (`tupper network rm`). Its ports go with it; a
/// container's veth on it stays, without a bridge (none should be running).
pub fn remove_bridge(name: &str) -> Result<()> {
    check_ifname(name, "bridge name")?;
    let route = Netlink::route()?;
    match route.request(&mut msg::del_link(name), &|| {
        format!("delete bridge {name}")
    }) {
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
        r => r?,
    }
    let nf = Netlink::netfilter()?;
    for chain in [
        nft::masq_chain(name),
        nft::guard_chain(name),
        nft::isolate_chain(name),
    ] {
        delete_chain_if_there(&nf, &chain, &|| {
            format!("remove the rules of bridge {name}")
        })?;
    }
    Ok(())
}

/// Deletes chain `chain` of tupper's nftables table with its rules, if it
/// is there; the error names `what` it was for.
fn delete_chain_if_there(nf: &Netlink, chain: &str, what: &dyn Fn() -> String) -> Result<()> {
    let r = nf.request(&mut nft::delete_chain(chain), &|| {
        format!("{} (nftables chain ip {} {chain})", what(), nft::TABLE)
    });
    match r {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        r => r,
    }
}

/// Refuses a host port that a socket of the namespace listens on (a server
/// of the host), as docker does ("address already in use"): the DNAT rule
/// would take its traffic from outside. Tells by binding a socket to the
/// wildcard address and that port (`SO_REUSEADDR`, so that connections in
/// `TIME_WAIT` do not count), closed at once; only with `-p`. Errors other
/// than `EADDRINUSE` are not this check's to report: the run goes on.
fn refuse_port_in_use(p: &PortMapping) -> Result<()> {
    use rustix::net::{AddressFamily, SocketAddrV4, SocketFlags, SocketType};
    let kind = match p.protocol {
        Protocol::Tcp => SocketType::STREAM,
        Protocol::Udp => SocketType::DGRAM,
    };
    let Ok(sock) = rustix::net::socket_with(AddressFamily::INET, kind, SocketFlags::CLOEXEC, None)
    else {
        return Ok(());
    };
    let _ = rustix::net::sockopt::set_socket_reuseaddr(&sock, true);
    let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    match rustix::net::bind(&sock, &SocketAddrV4::new(ip, p.host_port)) {
        Err(rustix::io::Errno::ADDRINUSE) => Err(Error::msg(format!(
            "publish port {p}: host port {}/{} is in use by a process of the host",
            p.host_port, p.protocol
        ))
        .with_advice("choose another host port")),
        Err(rustix::io::Errno::ADDRNOTAVAIL) => Err(Error::msg(format!(
            "publish port {p}: {ip} is not an address of this host"
        ))),
        _ => Ok(()),
    }
}

/// Before `clone3`, in the parent: validates `opts`, and for bridge mode reads
/// the bridge and takes an address lease in `state_dir/leases`. Leases of
/// containers that `is_alive` says are gone are reclaimed on the way (with
/// their DNAT rules). Nothing is created on the host but the lease record.
pub fn prepare(
    state_dir: &Path,
    container_id: &str,
    opts: &Options,
    is_alive: &dyn Fn(&str) -> bool,
) -> Result<Prepared> {
    prepare_slot(state_dir, container_id, opts, is_alive, 0)
}

/// [`prepare`] for a [`Connection`] of container `container_id` on slot
/// `slot` (1 to [`connection::MAX_SLOT`]): `opts` are the network's
/// ([`crate::store::Store::resolve_network`] of the connection: bridge
/// mode, its bridge, subnet and `--ip`; no ports). Its own veth pair, host
/// end [`connection::slot_veth_name`], `ethN` in the container, no default
/// route; give it to [`Prepared::add_connection`] of the first network's,
/// or (`network connect` of a running container) to [`attach`].
pub fn prepare_connection(
    state_dir: &Path,
    container_id: &str,
    opts: &Options,
    slot: u8,
    is_alive: &dyn Fn(&str) -> bool,
) -> Result<Prepared> {
    if slot == 0 || slot > connection::MAX_SLOT || opts.mode != Mode::Bridge {
        return Err(Error::msg(format!(
            "connect container {container_id}: no interface eth{slot} on a bridge network"
        )));
    }
    let opts = Options {
        publish: Vec::new(),
        connected: Vec::new(),
        ..opts.clone()
    };
    let mut p = prepare_slot(state_dir, container_id, &opts, is_alive, slot)?;
    p.spare_pool = None;
    Ok(p)
}

fn prepare_slot(
    state_dir: &Path,
    container_id: &str,
    opts: &Options,
    is_alive: &dyn Fn(&str) -> bool,
    slot: u8,
) -> Result<Prepared> {
    check_container_id(container_id)?;
    opts.validate()?;
    let mut p = Prepared {
        mode: opts.mode,
        id: container_id.to_string(),
        state_dir: state_dir.to_path_buf(),
        bridge: None,
        spare_pool: spare_pool(opts),
        etc: opts.etc.clone(),
        unleased: opts.settings(),
        shared_etc: Vec::new(),
        member: None,
        connections: Vec::new(),
    };
    if opts.mode != Mode::Bridge {
        return Ok(p);
    }
    let route = Netlink::route()?;
    let state = inspect_bridge(&route, &opts.bridge, &opts.subnet)?;
    if state == BridgeState::Missing {
        refuse_overlap(&route, &opts.bridge, &opts.subnet)?;
    }
    let host_veth = connection::slot_veth_name(container_id, slot);
    if route.index_of(&host_veth)?.is_some() {
        return Err(Error::msg(format!(
            "create veth {host_veth} for container {container_id}: an interface of that name \
             already exists (a leftover of a crashed container? net::reclaim removes those)"
        )));
    }
    // A host port 0 binds any port: only its address is checked here.
    for port in &opts.publish {
        refuse_port_in_use(port)?;
    }
    let req = lease::Request {
        subnet: opts.subnet,
        want: opts.ip,
        id: container_id,
        ports: &opts.publish,
        host_free: &|p| refuse_port_in_use(p).is_ok(),
    };
    let (address, dead, ports) = lease::allocate(state_dir, &req, is_alive)?;
    if opts.publish.iter().any(|p| p.host_port == 0) {
        p.unleased.published = ports.iter().map(|p| p.to_string()).collect();
    }
    // Rules of reclaimed leases could forward ports to the address just
    // taken, and a namespace another container joined could hold it: they
    // go before the lease is used.
    let stale = remove_dnat_of(dead.iter().filter(|l| !l.ports.is_empty()).map(|l| &*l.id))
        .and_then(|()| {
            dead.iter()
                .try_for_each(|l| delete_joined_veth(&route, state_dir, &l.id))
        });
    if let Err(e) = stale {
        let _ = lease::free(state_dir, address, container_id);
        return Err(e);
    }
    p.bridge = Some(BridgeNet {
        bridge: opts.bridge.clone(),
        subnet: opts.subnet,
        address,
        mac: opts.mac.unwrap_or(container_mac(address)),
        host_veth,
        spare_veth: false,
        publish: ports,
        state,
        internal: opts.internal,
        slot,
        route,
    });
    Ok(p)
}

/// A pool of spare network namespaces for bridge mode ([`crate::netns_pool`]):
/// spares that hold a veth pair on one bridge of one host network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparePool {
    /// The pool's directory under `ROOT/netns`: `br-INODE-BRIDGE`, INODE that
    /// of the host network namespace.
    pub dir: String,
    bridge: String,
}

/// The pool of spares that a start with `opts` takes from, besides the plain
/// one: bridge mode's, for the bridge and the calling thread's network
/// namespace. `None` for other modes (or when that namespace cannot be
/// named).
pub fn spare_pool(opts: &Options) -> Option<SparePool> {
    if opts.mode != Mode::Bridge {
        return None;
    }
    let ino = rustix::fs::stat("/proc/thread-self/ns/net").ok()?.st_ino;
    Some(SparePool {
        dir: format!("br-{ino}-{}", opts.bridge),
        bridge: opts.bridge.clone(),
    })
}

/// The host end of the veth pair of the spare network namespace `spare_id`:
/// `ts` + its first 12 characters (not `tp`: [`reclaim`] leaves these alone).
pub fn spare_host_veth(spare_id: &str) -> String {
    format!("ts{}", &spare_id[..spare_id.len().min(12)])
}

/// Gives the spare network namespace `ns` of the bridge pool `pool` its veth
/// pair, from the calling thread's (the host's) namespace: host end `host`,
/// up on the bridge, IPv6 off; peer `eth0` (ifindex 2) in `ns`, up, without
/// an IPv6 link-local address. On error the pair, if made, is in `ns` and
/// dies with it.
pub(crate) fn equip_spare(pool: &SparePool, ns: BorrowedFd<'_>, host: &str) -> Result<()> {
    let route = Netlink::route()?;
    let index = route.index_of(&pool.bridge)?.ok_or_else(|| {
        Error::msg(format!(
            "make a spare veth {host}: bridge {} does not exist",
            pool.bridge
        ))
    })?;
    let (_, inner) = open_in_netns(ns)?;
    route
        .request(
            &mut msg::new_veth(host, index, CONTAINER_IFNAME, ETH0_INDEX, ns.as_raw_fd()),
            &|| format!("create spare veth {host} on {}", pool.bridge),
        )
        .map_err(bridge_full_advice)?;
    // A start uses ifindex 2 without looking it up: the first link after `lo`
    // in a fresh namespace.
    if inner.index_of(CONTAINER_IFNAME)? != Some(ETH0_INDEX) {
        return Err(Error::msg(format!(
            "make a spare veth {host}: {CONTAINER_IFNAME} is not interface {ETH0_INDEX}"
        )));
    }
    let ipv6 = kernel_has_ipv6();
    if ipv6 {
        disable_ipv6(host)?;
    }
    let mut batch = Vec::new();
    if ipv6 {
        batch.extend(msg::set_no_ipv6_link_local(ETH0_INDEX));
    }
    batch.extend(msg::set_link_up(ETH0_INDEX));
    inner.request(&mut batch, &|| {
        format!("set {CONTAINER_IFNAME} up in a spare network namespace")
    })
}

/// Whether the spare network namespace `ns` of a bridge pool still has its
/// `eth0`: the peer goes with the host end, and the host end with the host
/// network namespace it was made in.
pub(crate) fn spare_has_eth0(ns: BorrowedFd<'_>) -> bool {
    open_in_netns(ns)
        .and_then(|(_, inner)| inner.index_of(CONTAINER_IFNAME))
        .is_ok_and(|i| i.is_some())
}

/// The link `name` (`RTM_GETLINK`; `what` it is, for errors), or `None` when
/// there is no such link.
fn look_up_link(route: &Netlink, name: &str, what: &str) -> Result<Option<msg::LinkFacts>> {
    let mut link = None;
    let r = route.exchange(
        &mut msg::get_link(name),
        &|| format!("look up {what} {name}"),
        &mut |kind, payload| {
            if kind == linux_raw_sys::netlink::RTM_NEWLINK as u16 {
                link = msg::parse_link(payload);
            }
        },
    );
    match r {
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        r => r.and_then(|()| {
            link.map(Some)
                .ok_or_else(|| Error::msg(format!("look up {what} {name}: no reply")))
        }),
    }
}

/// Whether the link `name` is up on the bridge `index`.
fn up_on_bridge(route: &Netlink, name: &str, index: u32) -> Result<bool> {
    Ok(look_up_link(route, name, "veth")?.is_some_and(|l| l.master == Some(index) && l.up))
}

/// Deletes the DNAT chains of the containers `ids` (missing ones are fine).
fn remove_dnat_of<'a>(ids: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut socket: Option<Netlink> = None;
    for id in ids {
        let nf = match &mut socket {
            Some(nf) => &*nf,
            slot @ None => &*slot.insert(Netlink::netfilter()?),
        };
        for chain in nft::dnat_chains(id) {
            delete_chain_if_there(nf, &chain, &|| {
                format!("remove the published ports of container {id}")
            })?;
        }
    }
    Ok(())
}

/// Writes the container's `/etc/hostname`, `/etc/hosts` and
/// `/etc/resolv.conf` beneath `root` (a directory or `O_PATH` fd of the
/// container's root), never following a symlink of the image. Works for every
/// mode; `/etc/hosts` names the container on its address in bridge mode.
/// With [`Mode::Container`], they are the other container's
/// ([`Prepared::share_etc_of`]). With `domainname` (`--domainname`),
/// `/etc/hosts` names it `HOSTNAME.DOMAINNAME HOSTNAME`, as docker's does.
pub fn write_etc_files(
    root: BorrowedFd<'_>,
    hostname: &str,
    domainname: &str,
    prepared: &Prepared,
) -> Result<()> {
    if prepared.mode == Mode::Container {
        let files: Vec<(&str, &[u8])> = prepared
            .shared_etc
            .iter()
            .map(|(name, data)| (*name, &data[..]))
            .collect();
        return etc::write(root, &files);
    }
    if hostname.is_empty()
        || hostname.len() > 64
        || hostname
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(Error::msg(format!(
            "invalid hostname {hostname:?}: 1 to 64 bytes without whitespace"
        )));
    }
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let upstream = std::fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
    let resolv = etc::resolv_conf(prepared.mode, &host, upstream.as_deref(), &prepared.etc);
    let extra: Vec<(String, std::net::IpAddr)> = prepared
        .etc
        .add_hosts
        .iter()
        .filter_map(|(name, addr)| {
            addr.or(prepared.gateway().map(std::net::IpAddr::V4))
                .map(|a| (name.clone(), a))
        })
        .collect();
    let mut hosts = etc::hosts_file(
        &etc::own_names(hostname, domainname),
        prepared.address(),
        &extra,
    );
    // The other containers of its network, under the lock under which
    // they change (so none is missed by a start that runs meanwhile).
    let _members = match &prepared.member {
        Some(m) => {
            let (lock, section) = m.hosts_section()?;
            hosts.push_str(&section);
            Some(lock)
        }
        None => None,
    };
    let name = etc::hostname_file(hostname);
    etc::write(
        root,
        &[
            ("hostname", name.as_bytes()),
            ("hosts", hosts.as_bytes()),
            ("resolv.conf", resolv.as_bytes()),
        ],
    )?;
    // Then the containers of each of its connections, one network's lock
    // at a time (two starts that hold one and want the other's would wait
    // for each other forever).
    drop(_members);
    for c in &prepared.connections {
        if let Some(m) = &c.member {
            m.write_own_section(root)?;
        }
    }
    Ok(())
}

/// What [`attach`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The host end of the veth pair (bridge mode).
    pub host_veth: Option<String>,
    /// The container's address (bridge mode).
    pub address: Option<Ipv4Addr>,
    /// Whether this call created the bridge.
    pub created_bridge: bool,
    /// How long the whole setup took.
    pub elapsed: Duration,
}

/// Opens, in the network namespace `ns` names (a pidfd: the process's; or a
/// namespace file), a netns fd and a `NETLINK_ROUTE` socket. The socket stays
/// in that namespace for its whole life.
///
/// The calling thread enters the namespace (`setns(ns, CLONE_NEWNET)`, with a
/// pidfd Linux >= 5.8) only for `open` and `socket`, and returns to its own at once
/// (the pattern of CNI's `ns.Do`); a short-lived thread would do the same but
/// costs 75-170 us to start on the hot path. If the way back fails the
/// process aborts: nothing may run in the wrong namespace.
fn open_in_netns(ns: BorrowedFd<'_>) -> Result<(OwnedFd, Netlink)> {
    const SELF_NS: &str = "/proc/thread-self/ns/net";
    let own = rustix::fs::open(SELF_NS, OFlags::RDONLY | OFlags::CLOEXEC, FileMode::empty())
        .context(|| format!("open {SELF_NS}"))?;
    rustix::thread::move_into_thread_name_spaces(ns, ThreadNameSpaceType::NETWORK)
        .context(|| "enter the container's network namespace (setns)".into())?;
    let inside = rustix::fs::open(SELF_NS, OFlags::RDONLY | OFlags::CLOEXEC, FileMode::empty())
        .context(|| "open the container's network namespace".into())
        .and_then(|ns| Ok((ns, Netlink::route()?)));
    if let Err(e) = rustix::thread::move_into_link_name_space(
        own.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    ) {
        eprintln!("tupper: return to the host's network namespace: {e}; aborting");
        std::process::abort();
    }
    inside
}

/// Sets `lo` up through a socket in the container's namespace.
fn loopback_up(inner: &Netlink) -> Result<()> {
    inner.request(&mut msg::set_link_up(LOOPBACK_INDEX), &|| {
        "set lo up in the container".into()
    })
}

/// Makes sure the bridge exists with the gateway address and is up; returns
/// its index and whether it was created now.
fn ensure_bridge(b: &BridgeNet) -> Result<(u32, bool)> {
    let name = &b.bridge;
    let gw = b.subnet.gateway();
    let add_gateway = |index: u32| -> Result<()> {
        let r = b.route.request(
            &mut msg::new_address(index, gw, b.subnet.prefix, b.subnet.broadcast()),
            &|| format!("add address {gw}/{} to bridge {name}", b.subnet.prefix),
        );
        match r {
            // Another tupper got there first.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    };
    let set_up = |index: u32| {
        b.route.request(&mut msg::set_link_up(index), &|| {
            format!("set bridge {name} up")
        })
    };
    match b.state {
        BridgeState::Ready { index, up: true } => Ok((index, false)),
        BridgeState::Ready { index, up: false } => set_up(index).map(|_| (index, false)),
        BridgeState::NoAddress { index, up } => {
            add_gateway(index)?;
            if !up {
                set_up(index)?;
            }
            Ok((index, false))
        }
        BridgeState::Missing => {
            let r = b
                .route
                .request(&mut msg::new_bridge(name, bridge_mac()?), &|| {
                    format!("create bridge {name}")
                });
            let created = match r {
                Ok(()) => true,
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => false,
                Err(e) => return Err(e),
            };
            // Created by us or, concurrently, by another tupper: check it as
            // prepare would have.
            match inspect_bridge(&b.route, name, &b.subnet)? {
                BridgeState::Missing => Err(Error::msg(format!(
                    "create bridge {name}: it disappeared right after its creation"
                ))),
                BridgeState::Ready { index, up } | BridgeState::NoAddress { index, up } => {
                    add_gateway(index)?;
                    if !up {
                        set_up(index)?;
                    }
                    Ok((index, created))
                }
            }
        }
    }
}

/// The MAC address of a container's `eth0`: `02:42` and its IPv4 address,
/// as docker gives its containers. An address given again after its
/// container ended comes with the same MAC address, so what the host and the
/// other containers learnt of it by ARP stays right; with a random one they
/// would send the new container's traffic to the old address, which no port
/// has, until their ARP entries expire.
pub(crate) fn container_mac(addr: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = addr.octets();
    [0x02, 0x42, a, b, c, d]
}

/// `aa:bb:cc:dd:ee:ff`, as `ip link` and docker show a MAC address.
fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `--mac-address`: six hexadecimal bytes separated by `:` or `-`
/// (docker's `net.ParseMAC` forms but the dotted one), a unicast address
/// (the lowest bit of the first byte clear) other than all zeros: the
/// kernel refuses others for an Ethernet device.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = |why: &str| Error::msg(format!("invalid --mac-address {s:?}: {why}"));
    let sep = if s.contains('-') { '-' } else { ':' };
    let parts: Vec<&str> = s.split(sep).collect();
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
        return Err(bad("not six hexadecimal bytes (92:d0:c6:0a:29:33)"));
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(&parts) {
        *byte = u8::from_str_radix(part, 16)
            .map_err(|_| bad("not six hexadecimal bytes (92:d0:c6:0a:29:33)"))?;
    }
    if mac[0] & 1 == 1 {
        return Err(bad("a multicast address (the first byte is odd)"));
    }
    if mac == [0; 6] {
        return Err(bad("all zeros"));
    }
    Ok(mac)
}

/// A MAC address for a new bridge: random, unicast and locally administered
/// (what the kernel's `eth_random_addr` makes, and docker gives its bridges).
fn bridge_mac() -> Result<[u8; 6]> {
    let mut mac: [u8; 6] = crate::names::random_bytes("a bridge's MAC address")?;
    mac[0] = (mac[0] & 0xfe) | 0x02;
    Ok(mac)
}

/// Makes sure the bridge's chains are in place (nftables chains
/// `ip tupper masq-BRIDGE`, `guard-BRIDGE` and `isolate-BRIDGE`, see
/// [`nft`]). With `rewrite` (the bridge has just been given its gateway
/// address, so the chain may still name an earlier subnet of a bridge of
/// that name) the batch is sent at once; otherwise a read-only check
/// first, and the batch only when the isolation chain is missing (a bridge
/// set up by a tupper without it gets it so).
fn ensure_nat(nf: &Netlink, b: &BridgeNet, rewrite: bool) -> Result<()> {
    // The batch makes the isolation chain last: when it is there, so is
    // the rest.
    let last = nft::isolate_chain(&b.bridge);
    if !rewrite {
        let r = nf.request(&mut nft::get_chain(&last), &|| {
            format!("look up nftables chain ip {} {last}", nft::TABLE)
        });
        match r {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    nf.request(
        &mut nft::ensure_bridge_chains(&b.bridge, b.subnet, b.internal),
        &|| {
            format!(
                "masquerade subnet {} of bridge {} (nftables chains ip {} {}, {} and {last})",
                b.subnet,
                b.bridge,
                nft::TABLE,
                nft::masq_chain(&b.bridge),
                nft::guard_chain(&b.bridge)
            )
        },
    )
}

/// Turns hairpin mode on for the bridge port `host_veth` (a container that
/// publishes ports): its connections to its own published port, through a
/// host address, come back to it through the port they left by.
fn set_hairpin(route: &Netlink, host_veth: &str) -> Result<()> {
    let what = || format!("turn hairpin mode on for bridge port {host_veth}");
    let index = route
        .index_of(host_veth)?
        .ok_or_else(|| Error::msg(format!("{}: no such interface", what())))?;
    route.request(&mut msg::set_port_hairpin(index), &what)
}

/// Turns `route_localnet` on for `bridge` if it is off: the host's own
/// connections to a published port through a loopback address leave through
/// the bridge with a loopback source address (masqueraded on the way), and
/// their replies come back to one; the kernel drops both as martians
/// otherwise. The bridge's guard chain keeps its containers from sending to
/// the host's loopback addresses, which this would let through.
fn allow_loopback_through(bridge: &str) -> Result<()> {
    switch_on(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        &format!("let loopback addresses through {bridge}"),
    )
}

/// Writes `1` to the boolean kernel parameter `path` (of the calling
/// thread's network namespace) unless it reads `1` already; `what` names the
/// change in the error.
fn switch_on(path: &str, what: &str) -> Result<()> {
    let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, FileMode::empty())
        .context(|| format!("open {path}"))?;
    let mut v = [0u8; 1];
    rustix::io::read(&fd, &mut v).context(|| format!("read {path}"))?;
    if v[0] != b'1' {
        rustix::io::pwrite(&fd, b"1\n", 0).context(|| format!("{what}: write {path}"))?;
    }
    Ok(())
}

/// Turns IPv4 forwarding on (`/proc/sys/net/ipv4/ip_forward`, of the calling
/// thread's network namespace) if it is off.
fn enable_forwarding() -> Result<()> {
    switch_on("/proc/sys/net/ipv4/ip_forward", "enable IPv4 forwarding")
}

/// After `clone3`, before the child execs, in the parent: sets up the child's
/// network through `ns`: its `pidfd`, or the spare network namespace it joins
/// ([`crate::netns_pool`]; the child may not have joined it yet).
///
/// - `host`: nothing.
/// - `none`: `lo` up in the child's namespace.
/// - `bridge`: the bridge (created with the gateway address if missing), NAT
///   (once per bridge), one `RTM_NEWLINK` that creates the veth pair with the
///   host end up on the bridge and the peer named `eth0` directly in the
///   child's namespace; then, over a socket in that namespace, `eth0`'s MAC
///   address (from its IPv4 address) and up, the address and the default
///   route; last, for published ports: `route_localnet` on the bridge,
///   hairpin mode on the port, the DNAT chains, and the deletion of the
///   conntrack entries of earlier UDP flows to them.
///   `lo` is the child's own business in this mode: tupper's child sets it up
///   itself (see `crate::child`), in parallel with this.
pub fn attach(prepared: &Prepared, ns: BorrowedFd<'_>) -> Result<Attached> {
    attach_freeing_ports(prepared, ns, &|| None)
}

/// [`attach`], and when the bridge is full (`EXFULL`: 1,023 ports) asks
/// `free_port` for the host end of a bridge spare it took out of its pool,
/// deletes that link (its port is free at once; the spare's namespace goes
/// with its last descriptor) and tries again; until `free_port` has none.
/// Spares hold ports: without this, starts racing a refill on a nearly full
/// bridge could find it full of spares (measured: 41 of a burst of 1,000).
pub fn attach_freeing_ports(
    prepared: &Prepared,
    ns: BorrowedFd<'_>,
    free_port: &dyn Fn() -> Option<String>,
) -> Result<Attached> {
    let start = Instant::now();
    let mut out = Attached {
        host_veth: None,
        address: None,
        created_bridge: false,
        elapsed: Duration::ZERO,
    };
    match prepared.mode {
        // The other container's network is as it made it.
        Mode::Host | Mode::Container => {}
        Mode::None => {
            let (_, inner) = open_in_netns(ns)?;
            loopback_up(&inner)?;
        }
        Mode::Bridge => {
            let b = prepared
                .bridge
                .as_ref()
                .ok_or_else(|| Error::msg("attach: bridge network was not prepared"))?;
            let (netns, inner) = open_in_netns(ns)?;
            let ifname = connection::interface_name(b.slot);
            let (index, created) = ensure_bridge(b)?;
            out.created_bridge = created;
            let nf = Netlink::netfilter()?;
            // A bridge that gets its gateway address now may have had another
            // subnet before (deleted and made again): its masquerade rule is
            // rewritten, not just looked for.
            let new_subnet = matches!(
                b.state,
                BridgeState::Missing | BridgeState::NoAddress { .. }
            );
            ensure_nat(&nf, b, new_subnet)?;
            enable_forwarding()?;
            // The peer asks for ifindex 2 in the new namespace (only `lo`, 1, is
            // there), which saves looking it up; a kernel that refuses gets a
            // lookup.
            let create = |peer_index| {
                b.route.request(
                    &mut msg::new_veth(&b.host_veth, index, &ifname, peer_index, netns.as_raw_fd()),
                    &|| format!("create veth {} on {}", b.host_veth, b.bridge),
                )
            };
            // A spare of a bridge pool holds its pair, up on the bridge, with
            // eth0 up; unless someone deleted it or took it off the bridge
            // since: then it is made again, under the same name.
            let ready = b.spare_veth && up_on_bridge(&b.route, &b.host_veth, index)?;
            if b.spare_veth && !ready {
                delete_link(&b.route, &b.host_veth)?;
            }
            // No IPv6 on either end. With it, each eth0 that came up sent
            // duplicate address detection, MLD and router solicitation
            // packets, multicast that the bridge floods to every running
            // container, and each host end added a multicast route to the
            // host's table, which every later link event walks: costs per
            // start that grew with the containers running (docs/network.md).
            // The host end (up, but without a carrier until eth0 is up) gets
            // IPv6 turned off; eth0 gets no link-local address (its routes
            // are its namespace's own). The containers' network is IPv4, as
            // docker's default bridge; `lo` keeps `::1`.
            let ipv6 = kernel_has_ipv6();
            let eth0 = if ready {
                ETH0_INDEX
            } else {
                let mut retried = false;
                // A connection's interface is not the next after `lo`.
                let asked = if b.slot == 0 { ETH0_INDEX } else { 0 };
                let created = loop {
                    match create(asked) {
                        Err(e) if e.raw_os_error() == Some(libc::EXFULL) => match free_port() {
                            Some(host) => {
                                delete_link(&b.route, &host)?;
                                retried = true;
                            }
                            None => break Err(e),
                        },
                        r => break r,
                    }
                };
                let eth0 = match created {
                    Ok(()) => ETH0_INDEX,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        create(0)?;
                        inner.index_of(&ifname)?.ok_or_else(|| {
                            Error::msg(format!(
                                "create veth {} on {}: {ifname} did not appear in container {}",
                                b.host_veth, b.bridge, prepared.id
                            ))
                        })?
                    }
                    Err(e) => return Err(bridge_full_advice(e)),
                };
                // A spare's namespace had an eth0 before, and a try refused
                // by a full bridge made one too (the kernel does not reuse
                // its index at once, and veth honours a peer's index only
                // along with the host end's): look it up.
                let eth0 = match b.spare_veth || retried || asked == 0 {
                    false => eth0,
                    true => inner.index_of(&ifname)?.ok_or_else(|| {
                        Error::msg(format!(
                            "create veth {} on {}: {ifname} did not appear in container {}",
                            b.host_veth, b.bridge, prepared.id
                        ))
                    })?,
                };
                if ipv6 {
                    disable_ipv6(&b.host_veth)?;
                }
                eth0
            };
            // eth0's MAC address (from its IPv4 address) and up, its IPv4
            // address and the default route: one batch, one send.
            let prefix = b.subnet.prefix;
            let gw = b.subnet.gateway();
            let mut batch = Vec::new();
            if !ready && ipv6 {
                batch.extend(msg::set_no_ipv6_link_local(eth0));
            }
            batch.extend(msg::set_link_address_up(eth0, b.mac));
            batch.extend(msg::new_address(
                eth0,
                b.address,
                prefix,
                b.subnet.broadcast(),
            ));
            // The default route is the first network's.
            if b.slot == 0 {
                batch.extend(msg::new_default_route(gw));
            }
            inner.request(&mut batch, &|| {
                format!(
                    "configure {ifname} in container {} (MAC address, up, address {}/{prefix}{})",
                    prepared.id,
                    b.address,
                    match b.slot {
                        0 => format!(", default route via {gw}"),
                        _ => String::new(),
                    }
                )
            })?;
            if !b.publish.is_empty() {
                allow_loopback_through(&b.bridge)?;
                set_hairpin(&b.route, &b.host_veth)?;
                let [chain, local] = nft::dnat_chains(&prepared.id);
                nf.request(
                    &mut nft::add_dnat(&prepared.id, b.address, &b.publish),
                    &|| {
                        format!(
                            "publish ports {} of container {} (nftables chains ip {} {chain} and {local})",
                            b.publish
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join(","),
                            prepared.id,
                            nft::TABLE
                        )
                    },
                )?;
                // UDP flows to these ports that began before: from now on,
                // to the container.
                let udp: Vec<u16> = b
                    .publish
                    .iter()
                    .filter(|p| p.protocol == Protocol::Udp)
                    .map(|p| p.host_port)
                    .collect();
                conntrack::forget_udp_flows_to(&udp)?;
            }
            out.host_veth = Some(b.host_veth.clone());
            out.address = Some(b.address);
            // Its connections' bridges are other bridges: no spare of
            // this one's pool frees a port on them.
            for c in &prepared.connections {
                attach(c, ns)?;
            }
        }
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

/// Writes 1 to `/proc/sys/net/ipv6/conf/DEVICE/disable_ipv6` in the host's
/// network namespace. (Not over netlink: rtnetlink can turn off a link's
/// link-local address, `IFLA_INET6_ADDR_GEN_MODE`, but not IPv6 itself.)
fn disable_ipv6(device: &str) -> Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{device}/disable_ipv6");
    let fd = rustix::fs::open(
        path.as_str(),
        OFlags::WRONLY | OFlags::CLOEXEC,
        FileMode::empty(),
    )
    .context(|| format!("turn off IPv6 on {device}: open {path}"))?;
    rustix::io::write(&fd, b"1\n")
        .context(|| format!("turn off IPv6 on {device}: write {path}"))?;
    Ok(())
}

/// Whether the kernel has IPv6 (built in or loaded, not `ipv6.disable=1`):
/// whether an `AF_INET6` socket can be made. Checked once. (Not a look at
/// `/proc/sys/net/ipv6`: with many network namespaces, each path lookup under
/// `/proc/sys/net` can cost a millisecond.)
fn kernel_has_ipv6() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        rustix::net::socket_with(
            rustix::net::AddressFamily::INET6,
            rustix::net::SocketType::DGRAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .is_ok()
    })
}

/// After the container ended: removes its DNAT rules and frees its lease,
/// exactly once (it consumes `prepared`). The veth pair dies with the
/// container's network namespace; unless another container joined it
/// ([`mark_joined`]): then it is deleted here, as docker's goes with its
/// container, so that its address, free again, is nowhere in use. If the
/// rules or pair cannot be removed the lease is kept (so that the address
/// is not reused under a stale rule) and [`reclaim`] finishes the job later.
/// Its connections go the same way, first.
pub fn release(mut prepared: Prepared) -> Result<()> {
    // Its name goes from the other containers' /etc/hosts first: nobody
    // should find the address once it is free.
    if let Some(member) = prepared.member.take() {
        member.leave();
    }
    for c in &mut prepared.connections {
        if let Some(member) = c.member.take() {
            member.leave();
        }
    }
    let Some(b) = &prepared.bridge else {
        return Ok(());
    };
    // The mark is the first network's (a connection released alone, when
    // `network connect` fails, leaves it).
    let joined = b.slot == 0 && take_joined_mark(&prepared.state_dir, &prepared.id).is_some();
    let mut first_error = Ok(());
    for c in prepared.connections.drain(..) {
        if let Some(cb) = &c.bridge {
            let r = match joined {
                true => delete_link(&cb.route, &cb.host_veth),
                false => Ok(()),
            }
            .and_then(|()| lease::free(&c.state_dir, cb.address, &c.id).map(|_| ()));
            if first_error.is_ok() {
                first_error = r;
            }
        }
    }
    if joined {
        delete_link(&b.route, &b.host_veth)?;
    }
    first_error?;
    if !b.publish.is_empty() {
        remove_dnat_of(std::iter::once(prepared.id.as_str()))?;
    }
    lease::free(&prepared.state_dir, b.address, &prepared.id).map(|_| ())
}

/// Puts the other containers of connection `connection` (prepared for
/// running container whose root is `root`, and attached) in its
/// `/etc/hosts` (`network connect`).
pub fn write_connection_hosts(root: BorrowedFd<'_>, connection: &Prepared) -> Result<()> {
    match &connection.member {
        Some(m) => m.write_own_section(root),
        None => Ok(()),
    }
}

/// Takes a connection that [`attach`] may have put in a running
/// container's namespace out again (`network connect` failed half-way):
/// deletes its veth pair (by the host end) and releases it.
pub fn detach(connection: Prepared) -> Result<()> {
    if let Some(b) = &connection.bridge {
        delete_link(&b.route, &b.host_veth)?;
    }
    release(connection)
}

/// `network disconnect` of running container `container_id` from
/// connection `c` (made by [`prepare_connection`] and [`attach`]): its veth
/// pair goes (the host end deleted; `ethN` with it), then its lease. The
/// caller took it off the network's members before. A pair already gone
/// is fine.
pub fn disconnect(state_dir: &Path, container_id: &str, c: &Connection) -> Result<()> {
    check_container_id(container_id)?;
    if let Some(veth) = &c.host_veth {
        // Only a name of this container's connections.
        let base = host_veth_name(container_id);
        let slot = veth.strip_prefix(&base).and_then(|d| d.parse::<u8>().ok());
        if !matches!(slot, Some(1..=connection::MAX_SLOT)) {
            return Err(Error::msg(format!(
                "disconnect container {container_id} from network {}: {veth} is not one of its veth pairs",
                c.network
            )));
        }
        delete_link(&Netlink::route()?, veth)?;
    }
    if let Some(addr) = c.address.as_deref().and_then(|a| a.parse().ok()) {
        lease::free(state_dir, addr, container_id)?;
    }
    Ok(())
}

/// For a container that ended without [`release`] (its `tupper run` was
/// killed), called by whoever removes it while holding its run lock (so it
/// cannot be running): removes its DNAT chain, if its lease publishes ports,
/// and frees its lease, as [`release`] would have. Nothing when it holds no
/// lease (a run that ended normally freed it). If the chain cannot be
/// removed the lease is kept, as by [`release`]. Its veth pair goes too if
/// another container joined its network namespace ([`mark_joined`]).
pub fn release_dead(state_dir: &Path, container_id: &str) -> Result<()> {
    check_container_id(container_id)?;
    if let Some(veth) = take_joined_mark(state_dir, container_id) {
        delete_link(&Netlink::route()?, &veth)?;
    }
    let mut file = lease::Locked::open(state_dir)?;
    let (mine, others): (Vec<_>, Vec<_>) =
        file.leases.drain(..).partition(|l| l.id == container_id);
    if mine.is_empty() {
        return Ok(());
    }
    if mine.iter().any(|l| !l.ports.is_empty()) {
        remove_dnat_of(std::iter::once(container_id))?;
    }
    file.leases = others;
    file.save()
}

/// Where the marks of [`mark_joined`] are, in the state directory.
const JOINED_DIR: &str = "joined";

/// Marks the network namespace of bridge container `provider_id`, whose
/// veth pair's host end is `host_veth`, as joined by another (`--net
/// container:`), before the joiner opens it: when the provider's lease
/// goes ([`release`], [`release_dead`], or a dead lease reclaimed), its
/// veth pair is deleted, which would otherwise live on in the namespace the
/// joiner keeps, on an address free for another container. (Made before the
/// joiner checks that the provider runs, the mark cannot miss a provider
/// that ends meanwhile.) The mark is `STATE_DIR/joined/ID`, holding the
/// name of the host end.
pub fn mark_joined(state_dir: &Path, provider_id: &str, host_veth: &str) -> Result<()> {
    check_container_id(provider_id)?;
    check_ifname(host_veth, "veth name")?;
    let dir = state_dir.join(JOINED_DIR);
    let what = || format!("mark the network of container {provider_id} as joined");
    match std::fs::create_dir(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(Error::msg(format!(
                "{}: create {}: {e}",
                what(),
                dir.display()
            )))
        }
        _ => {}
    }
    std::fs::write(dir.join(provider_id), host_veth)
        .map_err(|e| Error::msg(format!("{}: {e}", what())))
}

/// Removes the mark of [`mark_joined`] of container `id`: the host end of
/// its veth pair it names, if there was one (one failed `open` when not).
pub fn take_joined_mark(state_dir: &Path, id: &str) -> Option<String> {
    let path = state_dir.join(JOINED_DIR).join(id);
    let veth = std::fs::read_to_string(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    Some(veth).filter(|v| check_ifname(v, "veth name").is_ok())
}

/// Deletes the veth pair that the mark of [`mark_joined`] of dead
/// container `id` names, if it has one.
fn delete_joined_veth(route: &Netlink, state_dir: &Path, id: &str) -> Result<()> {
    match take_joined_mark(state_dir, id) {
        // And the pairs of its connections, which live in the same
        // namespace (`ethN`: the mark's name and the slot's digit).
        Some(veth) => (0..=connection::MAX_SLOT).try_for_each(|slot| match slot {
            0 => delete_link(route, &veth),
            n => delete_link(route, &format!("{veth}{n}")),
        }),
        None => Ok(()),
    }
}

/// Before container `container_id` starts again (`tupper start`): deletes
/// the host end of its last run's veth pair if it is still there. The
/// kernel takes a network namespace down after its last process ended, off
/// that process's exit, so a start right after a `stop` can find it; it has
/// the name this start's would have.
/// So are those of its `connections` (their slots 1 to `connections`).
pub fn remove_last_veth(container_id: &str, connections: usize) -> Result<()> {
    check_container_id(container_id)?;
    let route = Netlink::route()?;
    (0..=connections.min(connection::MAX_SLOT as usize)).try_for_each(|slot| {
        delete_link(
            &route,
            &connection::slot_veth_name(container_id, slot as u8),
        )
    })
}

/// Crash recovery: for every lease whose container `is_alive` says is gone,
/// deletes its host-end veth (if any is left) and DNAT chain, then the lease;
/// also deletes `dnat-*` chains of tupper's table whose container is gone, and
/// `tp*` veths on `opts.bridge` that belong to no live lease.
pub fn reclaim(state_dir: &Path, opts: &Options, is_alive: &dyn Fn(&str) -> bool) -> Result<()> {
    let route = Netlink::route()?;
    let mut file = lease::Locked::open(state_dir)?;
    let (live, dead): (Vec<_>, Vec<_>) = file.leases.drain(..).partition(|l| is_alive(&l.id));
    file.leases = live;
    let mut first_error = None;
    for l in dead {
        let r = delete_link(&route, &host_veth_name(&l.id))
            .and_then(|_| delete_joined_veth(&route, state_dir, &l.id))
            .and_then(|_| remove_dnat_of(std::iter::once(l.id.as_str())));
        if let Err(e) = r {
            // Keep the lease: the next reclaim tries again.
            file.leases.push(l);
            first_error.get_or_insert(e);
        }
    }
    file.save()?;
    if let Some(e) = first_error {
        return Err(e);
    }

    // Chains without a lease (the lease file was lost or edited).
    let nf = Netlink::netfilter()?;
    let mut orphans = Vec::new();
    nf.exchange(
        &mut nft::dump_chains(),
        &|| format!("list the chains of nftables table ip {}", nft::TABLE),
        &mut |kind, payload| {
            if nft::is_chain_reply(kind) {
                if let Some((table, chain)) = nft::parse_chain(payload) {
                    if table == nft::TABLE {
                        if let Some(id) = nft::dnat_chain_owner(&chain) {
                            if !orphans.iter().any(|o| o == id) {
                                orphans.push(id.to_string());
                            }
                        }
                    }
                }
            }
        },
    )?;
    let live_ids: Vec<&str> = file.leases.iter().map(|l| l.id.as_str()).collect();
    remove_dnat_of(
        orphans
            .iter()
            .map(|s| s.as_str())
            .filter(|id| !live_ids.contains(id) && !is_alive(id)),
    )?;

    // Host ends on the bridge that belong to no live lease.
    if check_ifname(&opts.bridge, "bridge name").is_ok() {
        if let Some(br) = route.index_of(&opts.bridge)? {
            let live_veths: Vec<String> =
                file.leases.iter().map(|l| host_veth_name(&l.id)).collect();
            let mut stray = Vec::new();
            route.exchange(
                &mut msg::dump_links_of(br),
                &|| format!("list the interfaces on bridge {}", opts.bridge),
                &mut |kind, payload| {
                    if kind == linux_raw_sys::netlink::RTM_NEWLINK as u16 {
                        if let Some(l) = msg::parse_link(payload) {
                            // A connection's is the first's and a digit.
                            let base = l.name.get(..14).unwrap_or(&l.name);
                            if l.master == Some(br)
                                && l.name.starts_with("tp")
                                && l.kind.as_deref() == Some("veth")
                                && !live_veths.iter().any(|v| v == base)
                            {
                                stray.push(l.name);
                            }
                        }
                    }
                },
            )?;
            for name in stray {
                delete_link(&route, &name)?;
            }
        }
    }
    Ok(())
}

/// The addresses leased in `state_dir`: (container ID, address), for
/// `tupper ps`.
pub fn addresses(state_dir: &Path) -> Result<Vec<(String, Ipv4Addr)>> {
    Ok(lease::list(state_dir)?
        .into_iter()
        .map(|l| (l.id, l.addr))
        .collect())
}

/// A Linux bridge takes at most 1,023 ports (port numbers 1 to
/// `BR_MAX_PORTS` - 1); the next one is refused with `EXFULL` ("Exchange
/// full"), which does not say so.
fn bridge_full_advice(e: Error) -> Error {
    if e.raw_os_error() == Some(libc::EXFULL) {
        e.with_advice(
            "a Linux bridge holds at most 1,023 ports, one per running container: \
             run the others on another --bridge with its own --subnet",
        )
    } else {
        e
    }
}

/// `ip link del NAME`, where a missing link is fine.
fn delete_link(route: &Netlink, name: &str) -> Result<()> {
    match route.request(&mut msg::del_link(name), &|| {
        format!("delete leftover veth {name}")
    }) {
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests;
