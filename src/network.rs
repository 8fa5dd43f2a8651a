//! User-defined networks (`tupper network create NAME`), as docker's: a
//! bridge and a subnet of their own under a name, whose containers find
//! each other by name.
//!
//! - `ROOT/state/networks/NAME.json`: the network ([`Network`]): its ID,
//!   its bridge (`tn` + the ID: 14 bytes), its subnet (given, or the first
//!   `/24` of `10.90.0.0/15` that no other network of the store and no
//!   address of the host overlaps) and labels. Made and removed under
//!   `networks/.lock`, one at a time; written in full before it has its
//!   name. The bridge itself is made by the first start on the network, as
//!   `tupper0` is ([`crate::net::attach`]).
//! - `ROOT/state/networks/NAME.members`: its running containers, a line
//!   each, `ADDRESS ID NAMES...` (its name, its `--network-alias`es, its
//!   ID), changed under an `flock` of the file itself.
//! - In each running member's `/etc/hosts`, after the line
//!   `# tupper network NAME`: an `ADDRESS NAMES` line per other member.
//!   tupper runs no daemon, so no DNS server: the names are in the file
//!   every resolver reads first, rewritten as members come and go (a new
//!   file renamed over the old one).
//!
//! A start joins ([`Store::join_network`]) once its address is leased:
//! under the members lock it drops the lines of containers that no longer
//! run (a crashed run's), adds its own and rewrites the other members'
//! `/etc/hosts`; its own gets the list when it is written
//! ([`crate::net::write_etc_files`], under the same lock, so that a start
//! running meanwhile is in one list or the other). Its end
//! ([`Member::leave`], from [`crate::net::release`]) takes its line out and
//! rewrites the others'. `rm` of a container whose run was killed does the
//! same ([`Store::leave_network_dead`]). `network rm` refuses a network
//! with a running container, as docker's does; a stopped one keeps its
//! settings, and its next start fails until a network of that name exists.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Context, Error, Result};
use crate::fsutil::{self, FileLock};
use crate::net::{self, etc, Subnet};
use crate::store::Store;

/// The first bytes of a network's bridge name (then its ID); the
/// isolation rules of every bridge know the networks' bridges by it.
pub const BRIDGE_PREFIX: &str = "tn";

/// The directory of the networks, in the store's state directory.
const DIR: &str = "networks";

/// The lock under which networks are made and removed, in [`DIR`].
const LOCK: &str = ".lock";

/// Names that are `--net` modes, not networks.
const RESERVED: [&str; 4] = ["bridge", "host", "none", "default"];

/// Whether `name` is a `--net` mode (`bridge`, `host`, `none`, `default`),
/// not a network's name.
pub(crate) fn is_mode(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// Where subnets are picked when `network create` names none: the `/24`s
/// of `10.90.0.0/15`, next to the default bridge's `10.89.0.0/16`.
const POOL_FIRST: u32 = u32::from_be_bytes([10, 90, 0, 0]);

/// How many `/24`s that pool has.
const POOL_SIZE: u32 = 512;

/// A user-defined network, as `network inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Network {
    /// Its name.
    pub name: String,
    /// 12 hex digits.
    pub id: String,
    /// Always `bridge`.
    pub driver: String,
    /// Its bridge: `tn` + its ID.
    pub bridge: String,
    /// Its IPv4 subnet.
    pub subnet: String,
    /// The bridge's address, the containers' gateway: the subnet's first.
    pub gateway: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// `network create --label`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `network create --internal`: its containers reach each other (and
    /// the host's addresses), nothing beyond; no port is published.
    #[serde(default)]
    pub internal: bool,
    /// Its running containers (not kept in its file).
    #[serde(default, skip_deserializing)]
    pub containers: Vec<Endpoint>,
}

/// A running container of a network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Endpoint {
    /// The container's ID.
    pub id: String,
    /// Its address.
    pub address: String,
    /// The names the other containers find it by: its name, aliases, ID.
    pub names: Vec<String>,
}

impl Network {
    /// Its subnet, parsed.
    fn parsed_subnet(&self) -> Result<Subnet> {
        net::parse_subnet(&self.subnet)
            .map_err(|e| Error::msg(format!("network {}: {e}", self.name)))
    }
}

/// A line of a members file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    address: Ipv4Addr,
    id: String,
    /// Space-separated.
    names: String,
}

/// The lines of a members file's text; malformed ones are dropped.
fn parse_members(text: &str) -> Vec<Line> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_ascii_whitespace();
            let address = f.next()?.parse().ok()?;
            let id = f.next().filter(|id| crate::names::is_id(id))?.to_string();
            let names: Vec<&str> = f.collect();
            Some(Line {
                address,
                id,
                names: names.join(" "),
            })
        })
        .collect()
}

/// A members file's text.
fn format_members(lines: &[Line]) -> String {
    let mut text = String::from("# tupper network members: ADDRESS CONTAINER-ID NAMES\n");
    for l in lines {
        text.push_str(&format!("{} {} {}\n", l.address, l.id, l.names));
    }
    text
}

/// The locked members file of a network, and its lines.
struct Members {
    lock: FileLock,
    lines: Vec<Line>,
}

impl Members {
    /// Locks `dir/NAME.members` (made when missing) and reads it.
    fn lock(dir: BorrowedFd<'_>, network: &str) -> Result<Members> {
        let file = format!("{network}.members");
        let lock = FileLock::acquire(dir, &file, true, true)
            .context(|| format!("lock the members of network {network}"))?
            .ok_or_else(|| Error::msg(format!("lock the members of network {network}")))?;
        let mut data = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match rustix::io::pread(lock.fd(), &mut buf, data.len() as u64) {
                Ok(0) => break,
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(Errno::INTR) => {}
                Err(e) => {
                    return Err(Error::os(
                        format!("read the members of network {network}"),
                        e,
                    ))
                }
            }
        }
        Ok(Members {
            lines: parse_members(&String::from_utf8_lossy(&data)),
            lock,
        })
    }

    /// Writes the lines back.
    fn save(&self, network: &str) -> Result<()> {
        let text = format_members(&self.lines);
        let fd = self.lock.fd();
        let what = || format!("write the members of network {network}");
        let mut done = 0;
        while done < text.len() {
            done += rustix::io::pwrite(fd, &text.as_bytes()[done..], done as u64).context(what)?;
        }
        rfs::ftruncate(fd, text.len() as u64).context(what)
    }

    /// The `/etc/hosts` part of member `id`: every other member.
    fn section_for(&self, network: &str, id: &str) -> String {
        let others: Vec<(Ipv4Addr, String)> = self
            .lines
            .iter()
            .filter(|l| l.id != id)
            .map(|l| (l.address, l.names.clone()))
            .collect();
        etc::network_section(network, &others)
    }

    /// Rewrites the `/etc/hosts` of every member but `except`, whose roots
    /// are in `containers`. A member whose file cannot be written (its root
    /// gone, its `/etc` made a symlink) keeps its old one: another
    /// container's start or end does not fail for it.
    fn update_hosts(&self, containers: BorrowedFd<'_>, network: &str, except: &str) {
        for l in self.lines.iter().filter(|l| l.id != except) {
            let Ok(root) = rfs::openat(
                containers,
                l.id.as_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            let _ = etc::replace_network_section(
                root.as_fd(),
                &l.id,
                network,
                &self.section_for(network, &l.id),
            );
        }
    }
}

/// A running container's place on its user-defined network: taken by
/// [`Store::join_network`], given up by [`Member::leave`] (from
/// [`crate::net::release`]).
#[derive(Debug)]
pub struct Member {
    /// `ROOT/state/networks`.
    dir: OwnedFd,
    /// `ROOT/containers`.
    containers: OwnedFd,
    network: String,
    /// The network's ID (its events name it).
    network_id: String,
    id: String,
}

impl Member {
    /// The part of the container's own `/etc/hosts` that names the other
    /// members, with the members lock, which the caller holds until the
    /// file is written.
    pub(crate) fn hosts_section(&self) -> Result<(FileLock, String)> {
        let members = Members::lock(self.dir.as_fd(), &self.network)?;
        let section = members.section_for(&self.network, &self.id);
        Ok((members.lock, section))
    }

    /// Puts the other members in the `/etc/hosts` beneath `root`, the
    /// container's (a network it is connected to besides its first: after
    /// the file was written), under the members lock.
    pub(crate) fn write_own_section(&self, root: BorrowedFd<'_>) -> Result<()> {
        let members = Members::lock(self.dir.as_fd(), &self.network)?;
        let section = members.section_for(&self.network, &self.id);
        etc::replace_network_section(root, &self.id, &self.network, &section)
    }

    /// Takes the container out of the members file and out of the other
    /// members' `/etc/hosts`. Best effort: what it leaves (an error), the
    /// next start on the network drops (the container no longer runs).
    pub fn leave(self) {
        let left = leave(
            self.dir.as_fd(),
            self.containers.as_fd(),
            &self.network,
            &self.id,
        );
        if matches!(left, Ok(true)) {
            disconnected(self.dir.as_fd(), &self.network_id, &self.network, &self.id);
        }
    }
}

/// docker's `network disconnect` event: container `id` left network
/// `name` (ID `network_id`); `dir` is `state/networks`.
fn disconnected(dir: BorrowedFd<'_>, network_id: &str, name: &str, id: &str) {
    crate::events::append_event(
        dir,
        "network",
        "disconnect",
        network_id,
        &[("container", id), ("name", name), ("type", "bridge")],
    );
}

/// [`Member::leave`] for container `id` of `network`.
/// Whether it was a member: the one that takes its line out tells of it
/// (its `disconnect` event).
fn leave(dir: BorrowedFd<'_>, containers: BorrowedFd<'_>, network: &str, id: &str) -> Result<bool> {
    let mut members = Members::lock(dir, network)?;
    let before = members.lines.len();
    members.lines.retain(|l| l.id != id);
    if members.lines.len() == before {
        return Ok(false);
    }
    members.save(network)?;
    members.update_hosts(containers, network, id);
    Ok(true)
}

/// Whether two subnets share an address.
fn overlap(a: &Subnet, b: &Subnet) -> bool {
    let shorter = u32::from(a.prefix().min(b.prefix()));
    let mask = u32::MAX.checked_shl(32 - shorter).unwrap_or(0);
    u32::from(a.network()) & mask == u32::from(b.network()) & mask
}

impl Store {
    /// `ROOT/state/networks`, made when missing.
    fn networks_dir(&self) -> Result<OwnedFd> {
        let state = fsutil::open_dir(rfs::CWD, self.state_path())
            .context(|| format!("open {}", self.state_path().display()))?;
        fsutil::ensure_dir(state.as_fd(), DIR, 0o700)
            .context(|| format!("open {}/{DIR}", self.state_path().display()))
    }

    /// `ROOT/state/networks` under its lock (networks are made and removed
    /// one at a time), once the removals a crash cut short are finished.
    fn lock_networks(&self) -> Result<(OwnedFd, Option<FileLock>)> {
        let dir = self.networks_dir()?;
        let lock = FileLock::acquire(dir.as_fd(), LOCK, true, true)
            .context(|| format!("lock {}/{DIR}/{LOCK}", self.state_path().display()))?;
        self.finish_removals(dir.as_fd());
        Ok((dir, lock))
    }

    /// `ROOT/containers`.
    fn containers_dir(&self) -> Result<OwnedFd> {
        self.containers
            .try_clone()
            .map_err(|e| Error::os(format!("open {}/containers", self.root().display()), e))
    }

    /// Reads network `name`'s file in `dir`; `None` when there is none.
    fn read_network(&self, dir: BorrowedFd<'_>, name: &str) -> Result<Option<Network>> {
        let file = format!("{name}.json");
        match fsutil::read_file(dir, file.as_str()) {
            Ok(data) => serde_json::from_slice(&data).map(Some).map_err(|e| {
                Error::msg(format!(
                    "read {}/{DIR}/{file}: {e}",
                    self.state_path().display()
                ))
            }),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::os(
                format!("read {}/{DIR}/{file}", self.state_path().display()),
                e,
            )),
        }
    }

    /// The networks' names in `dir`.
    fn network_names(&self, dir: BorrowedFd<'_>) -> Result<Vec<String>> {
        let mut names: Vec<String> = fsutil::list_dir(dir)
            .context(|| format!("list {}/{DIR}", self.state_path().display()))?
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Makes network `name` (`network create`): with `subnet` when given
    /// (it must overlap no other network of the store, nor an address of
    /// the host), else the first free `/24` of `10.90.0.0/15`. Nothing is
    /// made on the host until a container starts on it.
    pub fn create_network(
        &self,
        name: &str,
        subnet: Option<&str>,
        labels: BTreeMap<String, String>,
        internal: bool,
    ) -> Result<Network> {
        crate::names::validate("network name", name)?;
        if RESERVED.contains(&name) {
            return Err(Error::msg(format!(
                "network create {name}: {name} is a --net mode of its own; choose another name"
            )));
        }
        let (dir, _lock) = self.lock_networks()?;
        if self.read_network(dir.as_fd(), name)?.is_some() {
            return Err(Error::msg(format!(
                "network create {name}: a network of that name exists"
            )));
        }
        let mut others = Vec::new();
        for n in self.network_names(dir.as_fd())? {
            if let Some(net) = self.read_network(dir.as_fd(), &n)? {
                others.push((net.parsed_subnet()?, n));
            }
        }
        let subnet = match subnet {
            Some(s) => {
                let s = net::parse_subnet(s)?;
                if let Some((_, other)) = others.iter().find(|(o, _)| overlap(o, &s)) {
                    return Err(Error::msg(format!(
                        "network create {name}: subnet {s} overlaps that of network {other}"
                    )));
                }
                if let Some(addr) = net::host_address_in(&s)? {
                    return Err(Error::msg(format!(
                        "network create {name}: subnet {s} overlaps address {addr}"
                    )));
                }
                s
            }
            None => self.free_subnet(name, &others)?,
        };
        let id = crate::names::new_id()?;
        let network = Network {
            name: name.to_string(),
            bridge: format!("{BRIDGE_PREFIX}{id}"),
            id,
            driver: "bridge".into(),
            subnet: subnet.to_string(),
            gateway: subnet.gateway().to_string(),
            created: crate::timefmt::rfc3339(crate::timefmt::now()),
            labels,
            internal,
            containers: Vec::new(),
        };
        let text = serde_json::to_string_pretty(&network).unwrap_or_default() + "\n";
        fsutil::write_atomic(dir.as_fd(), &format!("{name}.json"), text.as_bytes())
            .context(|| format!("write {}/{DIR}/{name}.json", self.state_path().display()))?;
        self.event(
            "network",
            "create",
            &network.id,
            &[("name", name), ("type", "bridge")],
        );
        Ok(network)
    }

    /// The first `/24` of the pool that overlaps none of `others` (the
    /// store's networks) and no address of the host.
    fn free_subnet(&self, name: &str, others: &[(Subnet, String)]) -> Result<Subnet> {
        for i in 0..POOL_SIZE {
            let s = net::parse_subnet(&format!("{}/24", Ipv4Addr::from(POOL_FIRST + (i << 8))))?;
            if others.iter().any(|(o, _)| overlap(o, &s)) {
                continue;
            }
            if net::host_address_in(&s)?.is_none() {
                return Ok(s);
            }
        }
        Err(Error::msg(format!(
            "network create {name}: every /24 of 10.90.0.0/15 is taken; give one with --subnet"
        )))
    }

    /// The store's networks, by name, with their running containers.
    pub fn networks(&self) -> Result<Vec<Network>> {
        let dir = self.networks_dir()?;
        let mut out = Vec::new();
        for n in self.network_names(dir.as_fd())? {
            if let Some(mut net) = self.read_network(dir.as_fd(), &n)? {
                net.containers = self.endpoints(dir.as_fd(), &n)?;
                out.push(net);
            }
        }
        Ok(out)
    }

    /// Network `name_or_id` (its name, its ID or a prefix of one ID), with
    /// its running containers.
    pub fn network(&self, name_or_id: &str) -> Result<Network> {
        let dir = self.networks_dir()?;
        let mut net = self.find_network(dir.as_fd(), name_or_id)?;
        net.containers = self.endpoints(dir.as_fd(), &net.name)?;
        Ok(net)
    }

    /// Network `name_or_id` in `dir`, without its containers.
    fn find_network(&self, dir: BorrowedFd<'_>, name_or_id: &str) -> Result<Network> {
        if let Some(net) = self.read_network(dir, name_or_id)? {
            return Ok(net);
        }
        let mut found = Vec::new();
        if !name_or_id.is_empty() && name_or_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            for n in self.network_names(dir)? {
                if let Some(net) = self.read_network(dir, &n)? {
                    if net.id.starts_with(name_or_id) {
                        found.push(net);
                    }
                }
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(Error::msg(format!("no such network: {name_or_id}"))
                .with_advice("tupper network ls lists them; tupper network create makes one")),
            _ => Err(Error::msg(format!(
                "network {name_or_id}: more than one network's ID starts so"
            ))),
        }
    }

    /// The running containers of network `name`, as its members file
    /// lists them.
    fn endpoints(&self, dir: BorrowedFd<'_>, name: &str) -> Result<Vec<Endpoint>> {
        if !fsutil::exists(dir, format!("{name}.members").as_str()) {
            return Ok(Vec::new());
        }
        let members = Members::lock(dir, name)?;
        Ok(members
            .lines
            .iter()
            .filter(|l| self.is_running(&l.id))
            .map(|l| Endpoint {
                id: l.id.clone(),
                address: l.address.to_string(),
                names: l.names.split(' ').map(str::to_string).collect(),
            })
            .collect())
    }

    /// Removes network `name_or_id` (`network rm`), which no running
    /// container may be on: its bridge with its rules and spare namespaces,
    /// its members file, its file. Returns its name.
    pub fn remove_network(&self, name_or_id: &str) -> Result<String> {
        if RESERVED.contains(&name_or_id) {
            return Err(Error::msg(format!(
                "network rm {name_or_id}: it is a --net mode, not a network that can go"
            )));
        }
        let (dir, _lock) = self.lock_networks()?;
        let net = self.find_network(dir.as_fd(), name_or_id)?;
        let name = net.name.clone();
        {
            // Under the members lock: a start that resolved the network
            // before joins after, and finds it gone.
            let members = Members::lock(dir.as_fd(), &name)?;
            if let Some(l) = members.lines.iter().find(|l| self.is_running(&l.id)) {
                let shown = l.names.split(' ').next().unwrap_or(&l.id);
                return Err(Error::msg(format!(
                    "network rm {name}: container {shown} is running on it"
                ))
                .with_advice(format!("stop it first: tupper stop {shown}")));
            }
            // Out of sight first, then taken apart: a crash half-way leaves
            // `.NAME.json.removing`, which the next network command finishes.
            let removing = format!(".{name}.json.removing");
            rfs::renameat(
                dir.as_fd(),
                format!("{name}.json").as_str(),
                dir.as_fd(),
                removing.as_str(),
            )
            .context(|| format!("remove network {name}: rename {name}.json"))?;
        }
        self.take_apart(dir.as_fd(), &net)?;
        self.event(
            "network",
            "destroy",
            &net.id,
            &[("name", &name), ("type", "bridge")],
        );
        Ok(name)
    }

    /// What `network rm` removes once the network's file is out of sight:
    /// its bridge pool, its bridge and rules, its members file, then the
    /// renamed file itself.
    fn take_apart(&self, dir: BorrowedFd<'_>, net: &Network) -> Result<()> {
        let opts = net::Options {
            bridge: net.bridge.clone(),
            subnet: net.parsed_subnet()?,
            ..net::Options::default()
        };
        // The spares hold veth pairs on the bridge: they go first, under
        // their pool's refill lock, held until the bridge is gone (a refill
        // then finds no bridge and makes nothing).
        let pool = net::spare_pool(&opts);
        let _refill = pool.as_ref().and_then(|p| self.drop_bridge_spares(p));
        net::remove_bridge(&net.bridge)
            .map_err(|e| Error::msg(format!("remove network {}: {e}", net.name)))?;
        for file in [
            format!("{}.members", net.name),
            format!(".{}.json.removing", net.name),
        ] {
            match rfs::unlinkat(dir, file.as_str(), AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => {
                    return Err(Error::os(
                        format!("remove network {}: unlink {file}", net.name),
                        e,
                    ))
                }
            }
        }
        Ok(())
    }

    /// Finishes the removals a crash cut short (`.NAME.json.removing`).
    /// Called under the networks lock.
    fn finish_removals(&self, dir: BorrowedFd<'_>) {
        for n in fsutil::list_dir(dir).unwrap_or_default() {
            let Some(name) = n
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".json.removing"))
            else {
                continue;
            };
            let net = fsutil::read_file(dir, n.as_str())
                .ok()
                .and_then(|d| serde_json::from_slice::<Network>(&d).ok());
            match net {
                Some(net) if net.name == name => {
                    let _ = self.take_apart(dir, &net);
                }
                _ => {
                    let _ = rfs::unlinkat(dir, n.as_str(), AtFlags::empty());
                }
            }
        }
    }

    /// Removes every network no container of the store is on, running or
    /// not (`network prune`); returns their names, and the first error.
    pub fn prune_networks(&self) -> (Vec<String>, Result<()>) {
        let mut removed = Vec::new();
        let used: Vec<String> = match self.containers(true) {
            Ok(list) => list
                .into_iter()
                .filter_map(|r| r.network)
                .flat_map(|n| n.networks().map(str::to_string).collect::<Vec<_>>())
                .collect(),
            Err(e) => return (removed, Err(e)),
        };
        let list = match self.networks() {
            Ok(list) => list,
            Err(e) => return (removed, Err(e)),
        };
        for net in list.into_iter().filter(|n| !used.contains(&n.name)) {
            match self.remove_network(&net.name) {
                Ok(name) => removed.push(name),
                Err(e) => return (removed, Err(e)),
            }
        }
        (removed, Ok(()))
    }

    /// The options of a start on user-defined network `opts.network`: its
    /// bridge and subnet in place of the default ones; `--ip` must be in
    /// its subnet. Returns the network too.
    pub(crate) fn resolve_network(&self, opts: &net::Options) -> Result<(net::Options, Network)> {
        let name = opts.network.as_deref().unwrap_or_default();
        let dir = self.networks_dir()?;
        let net = self.find_network(dir.as_fd(), name)?;
        let subnet = net.parsed_subnet()?;
        if let Some(ip) = opts.ip {
            if !subnet.contains(ip) {
                return Err(Error::msg(format!(
                    "invalid --ip {ip}: not in subnet {subnet} of network {}",
                    net.name
                )));
            }
            subnet.check_host(ip)?;
        }
        if let (true, Some(p)) = (net.internal, opts.publish.first()) {
            return Err(Error::msg(format!(
                "invalid -p {p}: network {} is internal (nothing reaches it from outside)",
                net.name
            )));
        }
        let resolved = net::Options {
            bridge: net.bridge.clone(),
            subnet,
            network: Some(net.name.clone()),
            internal: net.internal,
            ..opts.clone()
        };
        Ok((resolved, net))
    }

    /// Puts container `id` (at `address`, found by `names`) among the
    /// running containers of `network`, as the module doc says: the lines
    /// of containers that no longer run go, and every other member's
    /// `/etc/hosts` names it. Fails when the network was removed since
    /// the start resolved it.
    pub(crate) fn join_network(
        &self,
        network: &Network,
        id: &str,
        address: Ipv4Addr,
        names: &[String],
    ) -> Result<Member> {
        let dir = self.networks_dir()?;
        let containers = self.containers_dir()?;
        let name = &network.name;
        let mut members = Members::lock(dir.as_fd(), name)?;
        match self.read_network(dir.as_fd(), name)? {
            Some(n) if n.id == network.id => {}
            _ => {
                // A members file the removal has taken down already, or
                // that of a new network of the same name.
                return Err(Error::msg(format!(
                    "join network {name}: it was removed meanwhile"
                )));
            }
        }
        members
            .lines
            .retain(|l| l.id != id && self.is_running(&l.id));
        members.lines.push(Line {
            address,
            id: id.to_string(),
            names: names.join(" "),
        });
        members.save(name)?;
        members.update_hosts(containers.as_fd(), name, id);
        self.event(
            "network",
            "connect",
            &network.id,
            &[("container", id), ("name", name), ("type", "bridge")],
        );
        Ok(Member {
            dir,
            containers,
            network: name.clone(),
            network_id: network.id.clone(),
            id: id.to_string(),
        })
    }

    /// Takes container `id`, whose run was killed, off network `network`
    /// (`rm`, `start` of such a container), as its end would have.
    pub(crate) fn leave_network_dead(&self, network: &str, id: &str) -> Result<()> {
        let dir = self.networks_dir()?;
        if !fsutil::exists(dir.as_fd(), format!("{network}.members").as_str()) {
            return Ok(());
        }
        if leave(dir.as_fd(), self.containers_dir()?.as_fd(), network, id)? {
            if let Ok(Some(n)) = self.read_network(dir.as_fd(), network) {
                disconnected(dir.as_fd(), &n.id, network, id);
            }
        }
        Ok(())
    }

    /// Gives running container `id` its new name on network `network`
    /// (`rename`): its line, and the other members' `/etc/hosts`.
    pub(crate) fn rename_on_network(&self, network: &str, id: &str, old: Option<&str>, new: &str) {
        let Ok(dir) = self.networks_dir() else {
            return;
        };
        if !fsutil::exists(dir.as_fd(), format!("{network}.members").as_str()) {
            return;
        }
        let Ok(mut members) = Members::lock(dir.as_fd(), network) else {
            return;
        };
        let Some(line) = members.lines.iter_mut().find(|l| l.id == id) else {
            return;
        };
        let mut names: Vec<&str> = line.names.split(' ').collect();
        match old.and_then(|o| names.iter().position(|n| *n == o)) {
            Some(i) => names[i] = new,
            None => names.insert(0, new),
        }
        line.names = names.join(" ");
        if members.save(network).is_ok() {
            if let Ok(containers) = self.containers_dir() {
                members.update_hosts(containers.as_fd(), network, id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_and_bad_lines_are_dropped() {
        let lines = vec![
            Line {
                address: Ipv4Addr::new(10, 90, 0, 2),
                id: "3f2a9c0d1e7b".into(),
                names: "db pg 3f2a9c0d1e7b".into(),
            },
            Line {
                address: Ipv4Addr::new(10, 90, 0, 3),
                id: "77aa01bc9e2d".into(),
                names: "77aa01bc9e2d".into(),
            },
        ];
        let text = format_members(&lines);
        assert_eq!(parse_members(&text), lines);
        let bad = format!("{text}10.90.0.4 not-an-id x\nnonsense\n\n");
        assert_eq!(parse_members(&bad), lines);
    }

    #[test]
    fn subnets_overlap_when_they_share_an_address() {
        let s = |t: &str| net::parse_subnet(t).unwrap();
        assert!(overlap(&s("10.90.0.0/24"), &s("10.90.0.0/16")));
        assert!(overlap(&s("10.90.0.128/25"), &s("10.90.0.0/24")));
        assert!(!overlap(&s("10.90.1.0/24"), &s("10.90.0.0/24")));
        assert!(!overlap(&s("10.89.0.0/16"), &s("10.90.0.0/15")));
    }
}
