//! The address lease file: `STATE_DIR/leases`, one line per container that
//! holds an address, guarded by an exclusive `flock` on the file itself.
//!
//! A line is `ADDRESS CONTAINER-ID PORTS HOLDER`, where PORTS is `-` or the
//! published ports joined by commas (`8080:80/tcp,127.0.0.1:53:53/udp`) and HOLDER the
//! pid of the process that took the lease (`0`: unknown); the line
//! `# boot BOOT-ID` names the boot the pids belong to; other lines starting with
//! `#` are comments, and the line `# end` ends the file. Every change happens under
//! the lock: read, decide, write in place, unlock. A new lease, when nothing
//! else changed, is one `pwrite` of its line and a new `# end` over the old
//! `# end` (a start then formats and writes one line, not all of them); any
//! other change rewrites the whole text with its `# end` (one `pwrite`, then
//! `ftruncate`). Whatever a crash leaves after `# end` is ignored. The file is
//! never replaced by `rename(2)`: a rename costs hundreds of microseconds on
//! ext4 (block allocation of the new file, discard of the old one's blocks),
//! and would take the lock away from its inode.
//!
//! Which leases are dead: a lease is live while its container's run lock is
//! held (the caller's `is_alive`), but probing that lock costs an `open`, a
//! `flock` and a `close` per lease, ~3,000 syscalls per start with 1,000
//! containers running. So the holder's pid is a hint first: a lease whose
//! holder still exists (`getpgid(pid)`, one syscall, no path lookup) in the
//! same boot is taken as live; only the others are asked about with
//! `is_alive`, and reclaimed if it says they are gone. The hint can only err
//! towards "live" (a reused pid, a holder in another pid namespace): such a
//! lease is checked with `is_alive` whenever it stands in the way (its address
//! or port is asked for, or the subnet is full), so a dead container's lease
//! never blocks an allocation.
//!
//! Not every lease is probed at every allocation: one `getpgid` per lease is
//! a millisecond per start with 1,000 containers. An allocation probes a
//! window of [`PROBE_WINDOW`] leases (all of them when there are no more),
//! starting at a place picked by the new container's id, so that a dead
//! container's lease is found after about `leases / PROBE_WINDOW` starts;
//! leases in the way are probed as above, and a file from another boot (or
//! without a boot line) has every lease probed once, by `is_alive`. An
//! unreclaimed dead lease costs nothing but its address, which is not given
//! out again until it is reclaimed: its DNAT rules (if any) go with it.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, Mode, OFlags};

use super::{PortMapping, Subnet};

/// How many leases an allocation probes for liveness (see the module doc).
pub(crate) const PROBE_WINDOW: usize = 16;
use crate::error::{Context, Error, Result};

/// One container's address lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    /// The leased address.
    pub addr: Ipv4Addr,
    /// The container that holds it.
    pub id: String,
    /// The host ports it publishes (their DNAT rules must go with it).
    pub ports: Vec<PortMapping>,
    /// The pid of the process that took it (0: unknown).
    pub holder: u32,
}

/// What a container asks for.
pub(crate) struct Request<'a> {
    pub subnet: Subnet,
    pub want: Option<Ipv4Addr>,
    pub id: &'a str,
    /// Its published ports; a host port 0 is one of the ephemeral range
    /// that no lease publishes and `host_free` says no host socket holds.
    pub ports: &'a [PortMapping],
    pub host_free: &'a dyn Fn(&PortMapping) -> bool,
}

/// The lease file of `state_dir`, locked for as long as this value lives.
pub(crate) struct Locked {
    fd: OwnedFd,
    path: PathBuf,
    /// The file's length as read (or as last written).
    len: usize,
    /// Where the `# end` line starts, when the file has one (then a new lease
    /// can be written over it, see [`Locked::add`]).
    end_at: Option<usize>,
    /// The leases as read under the lock.
    pub leases: Vec<Lease>,
    /// Whether the holders' pids are of this boot.
    same_boot: bool,
    /// Whether a lease was removed since the file was read (then [`Locked::add`]
    /// rewrites the whole file).
    removed: bool,
}

impl Locked {
    /// Opens and locks `state_dir`'s lease file (creating the directory and
    /// the file as needed) and reads the leases.
    pub(crate) fn open(state_dir: &Path) -> Result<Locked> {
        let path = state_dir.join("leases");
        let open = || {
            rustix::fs::open(
                &path,
                OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o600),
            )
        };
        let fd = match open() {
            Err(rustix::io::Errno::NOENT) => {
                std::fs::create_dir_all(state_dir)
                    .context(|| format!("create state directory {}", state_dir.display()))?;
                open()
            }
            r => r,
        }
        .context(|| format!("open {}", path.display()))?;
        loop {
            match rustix::fs::flock(&fd, FlockOperation::LockExclusive) {
                Err(rustix::io::Errno::INTR) => continue,
                r => break r.context(|| format!("lock {}", path.display()))?,
            }
        }
        // One read of the whole file (its size, and a byte more to see the
        // end), not a growing buffer: with 1,000 leases the file is ~45 KB and
        // every fresh page costs a fault.
        let size = rustix::fs::fstat(&fd).map_or(0, |st| st.st_size.max(0) as usize);
        let mut text = Vec::with_capacity(size + 1);
        loop {
            let start = text.len();
            let room = match text.capacity() - start {
                0 => 4096,
                r => r,
            };
            text.resize(start + room, 0);
            let n = loop {
                match rustix::io::pread(&fd, &mut text[start..], start as u64) {
                    Err(rustix::io::Errno::INTR) => continue,
                    r => break r.context(|| format!("read {}", path.display()))?,
                }
            };
            text.truncate(start + n);
            if n == 0 {
                break;
            }
        }
        let len = text.len();
        let (text, exact) = match String::from_utf8_lossy(&text) {
            std::borrow::Cow::Borrowed(s) => (std::borrow::Cow::Borrowed(s), true),
            // Replacement characters moved the byte offsets: no `end_at`.
            owned => (owned, false),
        };
        let parsed =
            parse(&text).map_err(|e| Error::msg(format!("read {}: {e}", path.display())))?;
        Ok(Locked {
            fd,
            path,
            len,
            end_at: parsed.end_at.filter(|_| exact),
            leases: parsed.leases,
            same_boot: parsed.boot.is_some() && parsed.boot.as_deref() == boot_id(),
            removed: false,
        })
    }

    /// Removes the leases of dead containers and returns them. With `hints`,
    /// a lease whose holder process exists in this boot counts as live
    /// without asking `is_alive` (see the module doc).
    pub(crate) fn drop_dead(&mut self, hints: bool, is_alive: &dyn Fn(&str) -> bool) -> Vec<Lease> {
        let same_boot = hints && self.same_boot;
        let (live, dead): (Vec<_>, Vec<_>) = self
            .leases
            .drain(..)
            .partition(|l| (same_boot && holder_exists(l.holder)) || is_alive(&l.id));
        self.leases = live;
        self.removed |= !dead.is_empty();
        dead
    }

    /// Like [`Locked::drop_dead`] with hints, but probes only `window` leases
    /// (all when there are no more), the first at index `start` modulo their
    /// number.
    fn drop_dead_in_window(
        &mut self,
        start: usize,
        window: usize,
        is_alive: &dyn Fn(&str) -> bool,
    ) -> Vec<Lease> {
        let n = self.leases.len();
        if n <= window {
            return self.drop_dead(true, is_alive);
        }
        let mut gone: Vec<usize> = (0..window)
            .map(|k| (start % n + k) % n)
            .filter(|&i| {
                let l = &self.leases[i];
                !((self.same_boot && holder_exists(l.holder)) || is_alive(&l.id))
            })
            .collect();
        gone.sort_unstable();
        self.removed |= !gone.is_empty();
        let mut dead: Vec<Lease> = gone.iter().rev().map(|&i| self.leases.remove(i)).collect();
        dead.reverse();
        dead
    }

    /// Removes lease `i` if `is_alive` says its container is gone; returns it.
    fn drop_if_dead(&mut self, i: usize, is_alive: &dyn Fn(&str) -> bool) -> Option<Lease> {
        let dead = (!is_alive(&self.leases[i].id)).then(|| self.leases.remove(i));
        self.removed |= dead.is_some();
        dead
    }

    /// Adds `lease` and writes the file: when nothing was removed, the file
    /// names this boot and ends in `# end`, only the new line and a new
    /// `# end` are written, over the old one; else the whole file.
    fn add(&mut self, lease: Lease) -> Result<()> {
        let at = self.end_at.filter(|_| self.same_boot && !self.removed);
        self.leases.push(lease);
        let Some(at) = at else {
            return self.save();
        };
        let mut tail = String::new();
        format_line(&mut tail, self.leases.last().expect("just pushed"));
        tail.push_str(END);
        self.write_at(tail.as_bytes(), at)?;
        self.end_at = Some(at + tail.len() - END.len());
        self.len = self.len.max(at + tail.len());
        Ok(())
    }

    /// `pwrite`s all of `bytes` at `offset`.
    fn write_at(&self, bytes: &[u8], offset: usize) -> Result<()> {
        let mut done = 0;
        while done < bytes.len() {
            match rustix::io::pwrite(&self.fd, &bytes[done..], (offset + done) as u64) {
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::os(format!("write {}", self.path.display()), e)),
            }
        }
        Ok(())
    }

    /// Writes `self.leases` back in place.
    pub(crate) fn save(&mut self) -> Result<()> {
        let text = format(&self.leases);
        self.write_at(text.as_bytes(), 0)?;
        // Growing needs no truncation (and ext4 makes it cost a journal entry).
        if text.len() < self.len {
            rustix::fs::ftruncate(&self.fd, text.len() as u64)
                .context(|| format!("truncate {}", self.path.display()))?;
        }
        self.len = text.len();
        self.end_at = Some(text.len() - END.len());
        self.same_boot = boot_id().is_some();
        self.removed = false;
        Ok(())
    }
}

/// Takes an address for `req.id`: `req.want` if it is free, else the lowest
/// free address of the subnet, and its host ports (a free one for each 0).
/// Leases of dead containers are dropped first (see the module doc for how
/// they are found); they are returned so that the caller can remove what
/// they left behind (DNAT rules).
pub(crate) fn allocate(
    state_dir: &Path,
    req: &Request<'_>,
    is_alive: &dyn Fn(&str) -> bool,
) -> Result<(Ipv4Addr, Vec<Lease>, Vec<PortMapping>)> {
    let mut file = Locked::open(state_dir)?;
    // One address per subnet: a container on several networks
    // (`network connect`) holds one on each.
    if let Some(l) = file
        .leases
        .iter()
        .find(|l| l.id == req.id && req.subnet.contains(l.addr))
    {
        return Err(Error::msg(format!(
            "take an address for container {}: it already holds {}",
            req.id, l.addr
        )));
    }
    let mut dead = if file.same_boot {
        file.drop_dead_in_window(window_start(req.id), PROBE_WINDOW, is_alive)
    } else {
        file.drop_dead(false, is_alive)
    };

    // A lease that stands in the way is checked for real (a pid hint can err).
    for p in req.ports {
        let publishes = |l: &Lease| {
            l.ports
                .iter()
                .any(|q| q.host_port == p.host_port && q.protocol == p.protocol)
        };
        if let Some(i) = file.leases.iter().position(publishes) {
            match file.drop_if_dead(i, is_alive) {
                Some(l) => dead.push(l),
                None => {
                    return Err(Error::msg(format!(
                        "publish port {p}: host port {}/{} is already published by container {}",
                        p.host_port, p.protocol, file.leases[i].id
                    )))
                }
            }
        }
    }
    let ports = with_free_ports(&file.leases, req.ports, req.host_free)?;
    let lowest_free = |leases: &[Lease]| {
        let mut taken: Vec<u32> = leases.iter().map(|l| u32::from(l.addr)).collect();
        taken.sort_unstable();
        req.subnet
            .hosts()
            .find(|a| taken.binary_search(&u32::from(*a)).is_err())
    };
    let addr = match req.want {
        Some(a) => {
            if let Some(i) = file.leases.iter().position(|l| l.addr == a) {
                match file.drop_if_dead(i, is_alive) {
                    Some(l) => dead.push(l),
                    None => {
                        return Err(Error::msg(format!(
                            "take address {a}: it is in use by container {}",
                            file.leases[i].id
                        )))
                    }
                }
            }
            a
        }
        None => match lowest_free(&file.leases).or_else(|| {
            dead.extend(file.drop_dead(false, is_alive));
            lowest_free(&file.leases)
        }) {
            Some(a) => a,
            None => {
                return Err(Error::msg(format!(
                    "take an address in subnet {}: no free address is left ({} in use); \
                     choose a larger --subnet",
                    req.subnet,
                    file.leases
                        .iter()
                        .filter(|l| req.subnet.contains(l.addr))
                        .count()
                )))
            }
        },
    };
    file.add(Lease {
        addr,
        id: req.id.to_string(),
        ports: ports.clone(),
        holder: std::process::id(),
    })?;
    Ok((addr, dead, ports))
}

/// `ports` with each host port 0 replaced by the lowest port of the host's
/// ephemeral range ([`ephemeral_range`]) that no lease of `leases` and no
/// other of `ports` publishes (for its protocol) and that `host_free` says
/// no socket of the host holds, as docker's port allocator picks one.
fn with_free_ports(
    leases: &[Lease],
    ports: &[PortMapping],
    host_free: &dyn Fn(&PortMapping) -> bool,
) -> Result<Vec<PortMapping>> {
    let mut out = ports.to_vec();
    let (low, high) = ephemeral_range();
    for i in 0..out.len() {
        let wanted = out[i];
        if wanted.host_port != 0 {
            continue;
        }
        let taken = |port: u16| {
            leases
                .iter()
                .flat_map(|l| &l.ports)
                .chain(&out)
                .any(|q| q.host_port == port && q.protocol == wanted.protocol)
        };
        let free = (low..=high).find(|&port| {
            !taken(port)
                && host_free(&PortMapping {
                    host_port: port,
                    ..wanted
                })
        });
        out[i].host_port = free.ok_or_else(|| {
            Error::msg(format!(
                "publish port {wanted}: no port of the host's ephemeral range {low}-{high} is free"
            ))
        })?;
    }
    Ok(out)
}

/// The host's ephemeral port range (`/proc/sys/net/ipv4/ip_local_port_range`
/// of tupper's network namespace), or the kernel's default.
fn ephemeral_range() -> (u16, u16) {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut words = text.split_whitespace().map(str::parse::<u16>);
    match (words.next(), words.next()) {
        (Some(Ok(low)), Some(Ok(high))) if 0 < low && low <= high => (low, high),
        _ => (32768, 60999),
    }
}

/// Where an allocation for container `id` starts probing: a hash of the id
/// (FNV-1a), so that successive starts (random ids) probe different leases.
fn window_start(id: &str) -> usize {
    id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    }) as usize
}

/// Frees the lease of container `id` on `addr`. Returns whether there was one.
pub(crate) fn free(state_dir: &Path, addr: Ipv4Addr, id: &str) -> Result<bool> {
    let mut file = Locked::open(state_dir)?;
    let before = file.leases.len();
    file.leases.retain(|l| !(l.addr == addr && l.id == id));
    if file.leases.len() == before {
        return Ok(false);
    }
    file.save()?;
    Ok(true)
}

/// The leases of `state_dir`, read under the lock.
pub(crate) fn list(state_dir: &Path) -> Result<Vec<Lease>> {
    Ok(Locked::open(state_dir)?.leases)
}

/// The `# end` line, which ends a lease file.
const END: &str = "# end\n";

/// What a lease file's text holds.
#[derive(Debug)]
struct Parsed {
    leases: Vec<Lease>,
    /// The boot id it names.
    boot: Option<String>,
    /// The byte offset of its `# end` line, if it has one.
    end_at: Option<usize>,
}

/// Parses a lease file's text.
fn parse(text: &str) -> std::result::Result<Parsed, String> {
    // Room for all leases at once (one per line at most).
    let mut out = Vec::with_capacity(text.bytes().filter(|&b| b == b'\n').count());
    let mut boot = None;
    let mut end_at = None;
    let mut offset = 0;
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        let at = offset;
        offset += raw.len();
        let line = raw.trim();
        if line == "# end" {
            end_at = Some(at);
            break;
        }
        if let Some(id) = line.strip_prefix("# boot ") {
            boot = Some(id.trim().to_string());
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("line {}: malformed lease {line:?}", n + 1);
        let mut f = line.split_ascii_whitespace();
        let (Some(addr), Some(id), Some(ports), holder, None) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad());
        };
        let holder = match holder {
            Some(h) => h.parse().map_err(|_| bad())?,
            None => 0,
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let ports = if ports == "-" {
            Vec::new()
        } else {
            ports
                .split(',')
                .map(super::parse_publish)
                .collect::<Result<Vec<_>>>()
                .map_err(|_| bad())?
        };
        out.push(Lease {
            addr,
            id: id.to_string(),
            ports,
            holder,
        });
    }
    Ok(Parsed {
        leases: out,
        boot,
        end_at,
    })
}

/// The whole text of a lease file holding `leases`.
fn format(leases: &[Lease]) -> String {
    let mut s = String::with_capacity(100 + 40 * leases.len());
    s.push_str("# tupper address leases: ADDRESS CONTAINER-ID PORTS HOLDER\n");
    if let Some(id) = boot_id() {
        let _ = writeln!(s, "# boot {id}");
    }
    for l in leases {
        format_line(&mut s, l);
    }
    s.push_str(END);
    s
}

/// Appends the line of lease `l` to `s`.
fn format_line(s: &mut String, l: &Lease) {
    let _ = write!(s, "{} {} ", l.addr, l.id);
    if l.ports.is_empty() {
        s.push('-');
    }
    for (i, p) in l.ports.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{p}");
    }
    let _ = writeln!(s, " {}", l.holder);
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), read once.
fn boot_id() -> Option<&'static str> {
    static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// Whether process `pid` exists: `getpgid(pid)` answers `ESRCH` when it does
/// not. (Cheaper than `kill(pid, 0)`, which also runs the kernel's signal
/// permission and audit checks.)
fn holder_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::getpgid(Some(pid)),
        Err(rustix::io::Errno::SRCH)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::net::{parse_publish, parse_subnet};
    use std::collections::HashSet;
    use std::sync::{Arc, Barrier};

    /// A temporary state directory, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);
    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "tupper-net-{tag}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn req<'a>(subnet: &str, id: &'a str, ports: &'a [PortMapping]) -> Request<'a> {
        Request {
            subnet: parse_subnet(subnet).unwrap(),
            want: None,
            id,
            ports,
            host_free: &|_| true,
        }
    }

    #[test]
    fn file_round_trips() {
        let leases = vec![
            Lease {
                addr: Ipv4Addr::new(10, 89, 0, 2),
                id: "abc".into(),
                ports: vec![],
                holder: 0,
            },
            Lease {
                addr: Ipv4Addr::new(10, 89, 0, 3),
                id: "def".into(),
                ports: vec![
                    parse_publish("8080:80/tcp").unwrap(),
                    parse_publish("53:53/udp").unwrap(),
                ],
                holder: 4242,
            },
        ];
        let text = format(&leases);
        assert!(
            text.contains("10.89.0.3 def 8080:80/tcp,53:53/udp 4242\n"),
            "{text}"
        );
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.leases, leases);
        assert_eq!(parsed.boot.as_deref(), boot_id());
        assert_eq!(parsed.end_at, Some(text.len() - END.len()));
        assert!(boot_id().is_some_and(|b| b.len() == 36), "{:?}", boot_id());
        assert!(parse("10.89.0.2 abc\n").unwrap_err().contains("line 1"));
        assert!(parse("10.89.0.2 abc - x\n").unwrap_err().contains("line 1"));
        // A line without a holder (an older file) has holder 0.
        assert_eq!(parse("10.89.0.2 abc -\n").unwrap().leases[0].holder, 0);
        assert_eq!(parse("10.89.0.2 abc -\n").unwrap().end_at, None);
        // What a crash between pwrite and ftruncate leaves is ignored.
        let torn = format!("{text}10.89.0.9 gh");
        assert_eq!(parse(&torn).unwrap().leases, leases);
        assert_eq!(parse(&torn).unwrap().end_at, Some(text.len() - END.len()));
        assert!(parse("10.89.0.256 abc -\n").is_err());
    }

    #[test]
    fn lowest_free_then_reuse_after_free() {
        let dir = TempDir::new("lease-lowest");
        let alive = |_: &str| true;
        let (a, _, _) = allocate(&dir.0, &req("10.9.0.0/24", "a", &[]), &alive).unwrap();
        let (b, _, _) = allocate(&dir.0, &req("10.9.0.0/24", "b", &[]), &alive).unwrap();
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(10, 9, 0, 2), Ipv4Addr::new(10, 9, 0, 3))
        );
        assert!(free(&dir.0, a, "a").unwrap());
        assert!(!free(&dir.0, a, "a").unwrap(), "freed twice");
        let (c, _, _) = allocate(&dir.0, &req("10.9.0.0/24", "c", &[]), &alive).unwrap();
        assert_eq!(c, a);
    }

    #[test]
    fn requested_address_in_use_is_refused() {
        let dir = TempDir::new("lease-want");
        let alive = |_: &str| true;
        let mut r = req("10.9.0.0/24", "a", &[]);
        r.want = Some(Ipv4Addr::new(10, 9, 0, 7));
        assert_eq!(allocate(&dir.0, &r, &alive).unwrap().0, r.want.unwrap());
        r.id = "b";
        let e = allocate(&dir.0, &r, &alive).unwrap_err().to_string();
        assert_eq!(e, "take address 10.9.0.7: it is in use by container a");
    }

    #[test]
    fn exhausted_subnet_is_refused() {
        let dir = TempDir::new("lease-full");
        let alive = |_: &str| true;
        allocate(&dir.0, &req("10.9.0.0/30", "a", &[]), &alive).unwrap();
        let e = allocate(&dir.0, &req("10.9.0.0/30", "b", &[]), &alive)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "take an address in subnet 10.9.0.0/30: no free address is left (1 in use)"
            ),
            "{e}"
        );
    }

    #[test]
    fn dead_containers_leases_are_reclaimed_by_the_next_allocation() {
        let dir = TempDir::new("lease-dead");
        let ports = [parse_publish("8080:80").unwrap()];
        allocate(&dir.0, &req("10.9.0.0/30", "gone", &ports), &|_| true).unwrap();
        let (a, dead, _) = allocate(&dir.0, &req("10.9.0.0/30", "new", &ports), &|id| {
            id != "gone"
        })
        .unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].id, "gone");
        assert_eq!(dead[0].ports, ports);
        let ids: Vec<String> = list(&dir.0).unwrap().into_iter().map(|l| l.id).collect();
        assert_eq!(ids, ["new"]);
    }

    /// A pid no process can have: `pid_max` (pids go from 1 to `pid_max` - 1).
    fn dead_pid() -> u32 {
        let max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
        let pid: u32 = max.trim().parse().unwrap();
        assert!(!holder_exists(pid), "pid_max {pid} names a process");
        pid
    }

    /// Makes the lease of `id` look like its holder crashed: a pid that is gone.
    pub(crate) fn crash_holder(state_dir: &Path, id: &str) {
        let mut f = Locked::open(state_dir).unwrap();
        let l = f.leases.iter_mut().find(|l| l.id == id).unwrap();
        l.holder = dead_pid();
        f.save().unwrap();
    }

    #[test]
    fn a_live_holder_is_not_probed_a_gone_one_is_reclaimed() {
        let dir = TempDir::new("lease-hint");
        let asked = std::cell::RefCell::new(Vec::new());
        let never = |id: &str| {
            asked.borrow_mut().push(id.to_string());
            false
        };
        let r = |id| req("10.9.0.0/24", id, &[]);
        let (a, _, _) = allocate(&dir.0, &r("first"), &never).unwrap();
        let (b, dead, _) = allocate(&dir.0, &r("second"), &never).unwrap();
        // The first lease's holder (this process) exists: no probe, kept.
        assert_eq!((b, dead.len()), (Ipv4Addr::new(10, 9, 0, 3), 0));
        assert!(asked.borrow().is_empty(), "{:?}", asked.borrow());
        // Its holder is gone: the next allocation asks, and reclaims it.
        crash_holder(&dir.0, "first");
        let (c, dead, _) = allocate(&dir.0, &r("third"), &never).unwrap();
        assert_eq!(*asked.borrow(), ["first"]);
        assert_eq!(
            dead.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
            ["first"]
        );
        assert_eq!(c, a, "the lowest address again");
        // A gone holder whose container is alive (is_alive says so) stays.
        crash_holder(&dir.0, "second");
        let (_, dead, _) = allocate(&dir.0, &r("fourth"), &|id| id == "second").unwrap();
        assert!(dead.is_empty());
        assert!(list(&dir.0).unwrap().iter().any(|l| l.id == "second"));
    }

    #[test]
    fn a_lease_in_the_way_is_checked_even_with_a_live_holder() {
        // The holder pid exists (this process), but the container is gone: a
        // reused pid. Asked for its address or its port, the lease is checked.
        let dir = TempDir::new("lease-inway");
        let p = [parse_publish("8080:80/tcp").unwrap()];
        let mut r = req("10.9.0.0/24", "old", &p);
        r.want = Some(Ipv4Addr::new(10, 9, 0, 9));
        allocate(&dir.0, &r, &|_| true).unwrap();
        let mut r = req("10.9.0.0/24", "new", &[]);
        r.want = Some(Ipv4Addr::new(10, 9, 0, 9));
        let (a, dead, _) = allocate(&dir.0, &r, &|id| id != "old").unwrap();
        assert_eq!(
            (a, dead[0].id.as_str()),
            (Ipv4Addr::new(10, 9, 0, 9), "old")
        );
        let mut r = req("10.9.0.0/24", "old2", &p);
        r.want = Some(Ipv4Addr::new(10, 9, 0, 20));
        allocate(&dir.0, &r, &|_| true).unwrap();
        let (_, dead, _) =
            allocate(&dir.0, &req("10.9.0.0/24", "new2", &p), &|id| id != "old2").unwrap();
        assert_eq!(dead[0].id, "old2");
    }

    #[test]
    fn a_host_port_0_is_the_lowest_free_one_of_the_ephemeral_range() {
        let dir = TempDir::new("ephemeral");
        let (low, high) = ephemeral_range();
        assert!(low <= high);
        let explicit = [parse_publish(&format!("{low}:80")).unwrap()];
        allocate(&dir.0, &req("10.9.0.0/24", "a", &explicit), &|_| true).unwrap();
        let any = ["80", "81", "53/udp", "127.0.0.1::82"].map(|p| parse_publish(p).unwrap());
        // A host socket holds the next one.
        let busy = |p: &PortMapping| p.host_port != low + 1;
        let r = Request {
            host_free: &busy,
            ..req("10.9.0.0/24", "b", &any)
        };
        let (_, _, got) = allocate(&dir.0, &r, &|_| true).unwrap();
        let hosts: Vec<u16> = got.iter().map(|p| p.host_port).collect();
        assert_eq!(hosts, [low + 2, low + 3, low, low + 4]);
        assert_eq!(got[3].host_ip, Some(Ipv4Addr::LOCALHOST));
        let kept = list(&dir.0).unwrap();
        assert_eq!(kept.iter().find(|l| l.id == "b").unwrap().ports, got);
        let e = allocate(
            &dir.0,
            &Request {
                host_free: &|_| false,
                ..req("10.9.0.0/24", "c", &any[..1])
            },
            &|_| true,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("publish port 80/tcp: no port of the host's ephemeral range"),
            "{e}"
        );
    }

    #[test]
    fn a_published_host_port_is_taken_once() {
        let dir = TempDir::new("lease-port");
        let p = [parse_publish("8080:80/tcp").unwrap()];
        allocate(&dir.0, &req("10.9.0.0/24", "a", &p), &|_| true).unwrap();
        let e = allocate(&dir.0, &req("10.9.0.0/24", "b", &p), &|_| true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "publish port 8080:80/tcp: host port 8080/tcp is already published by container a"
        );
        // The same number over UDP is another port.
        let u = [parse_publish("8080:80/udp").unwrap()];
        allocate(&dir.0, &req("10.9.0.0/24", "c", &u), &|_| true).unwrap();
        // On one address it is still that port; the address is kept.
        let l = [parse_publish("127.0.0.1:8080:80/tcp").unwrap()];
        let e = allocate(&dir.0, &req("10.9.0.0/24", "d", &l), &|_| true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("host port 8080/tcp is already published by container a"),
            "{e}"
        );
        let l = [parse_publish("127.0.0.1:9090:90/tcp").unwrap()];
        allocate(&dir.0, &req("10.9.0.0/24", "e", &l), &|_| true).unwrap();
        let e_lease = list(&dir.0)
            .unwrap()
            .into_iter()
            .find(|x| x.id == "e")
            .unwrap();
        assert_eq!(e_lease.ports, l);
    }

    #[test]
    fn twenty_concurrent_allocations_get_twenty_addresses() {
        let dir = Arc::new(TempDir::new("lease-20"));
        let barrier = Arc::new(Barrier::new(20));
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let (dir, barrier) = (dir.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let id = format!("c{i}");
                    barrier.wait();
                    allocate(&dir.0, &req("10.9.0.0/24", &id, &[]), &|_| true)
                        .unwrap()
                        .0
                })
            })
            .collect();
        let addrs: HashSet<Ipv4Addr> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(addrs.len(), 20);
        assert_eq!(list(&dir.0).unwrap().len(), 20);
        // Exactly .2 through .21: lowest free, no gaps.
        for i in 2..22 {
            assert!(addrs.contains(&Ipv4Addr::new(10, 9, 0, i)), "{i}");
        }
    }

    /// Writes a lease file of `n` leases (`c0`.. on 10.9.0.2..) whose holder
    /// is `holder`, naming boot `boot` (this boot's id when `None`).
    fn write_leases(dir: &Path, n: u8, holder: u32, boot: Option<&str>) {
        let mut f = Locked::open(dir).unwrap();
        f.leases = (0..n)
            .map(|i| Lease {
                addr: Ipv4Addr::new(10, 9, 0, 2 + i),
                id: format!("c{i}"),
                ports: vec![],
                holder,
            })
            .collect();
        f.save().unwrap();
        if let Some(b) = boot {
            let path = dir.join("leases");
            let text = std::fs::read_to_string(&path).unwrap();
            let ours = format!("# boot {}\n", boot_id().unwrap());
            assert!(text.contains(&ours), "{text}");
            std::fs::write(&path, text.replace(&ours, &format!("# boot {b}\n"))).unwrap();
        }
    }

    #[test]
    fn an_allocation_probes_a_window_of_the_leases() {
        let dir = TempDir::new("lease-window");
        // 40 leases whose holders are gone: each one needs `is_alive`.
        write_leases(&dir.0, 40, dead_pid(), None);
        let asked = std::cell::RefCell::new(Vec::<String>::new());
        let alive_but_c7 = |id: &str| {
            asked.borrow_mut().push(id.to_string());
            id != "c7"
        };
        let mut reclaimed_at = None;
        for k in 0..40 {
            asked.borrow_mut().clear();
            let id = format!("new{k}");
            let (a, dead, _) =
                allocate(&dir.0, &req("10.9.0.0/24", &id, &[]), &alive_but_c7).unwrap();
            let n = asked.borrow().len();
            assert_eq!(n, PROBE_WINDOW, "allocation {k} probed {n} leases");
            if dead.is_empty() {
                // c7's address is not given out while its lease stands.
                assert_eq!(a, Ipv4Addr::new(10, 9, 0, 42 + k as u8));
            } else {
                assert_eq!(
                    dead.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
                    ["c7"]
                );
                // Free again, and the lowest: this start gets it.
                assert_eq!(a, Ipv4Addr::new(10, 9, 0, 9));
                reclaimed_at = Some(k);
                break;
            }
        }
        // Each window is 16 of ~40: the dead lease is found within a few starts.
        reclaimed_at.expect("c7's lease was never probed in 40 allocations");
        assert!(!list(&dir.0).unwrap().iter().any(|l| l.id == "c7"));
    }

    #[test]
    fn a_file_of_another_boot_has_every_lease_probed() {
        let dir = TempDir::new("lease-boot");
        // Holders that exist (this process), but of another boot: no hint.
        write_leases(&dir.0, 40, std::process::id(), Some("0-other-boot"));
        let (a, dead, _) = allocate(&dir.0, &req("10.9.0.0/24", "new", &[]), &|_| false).unwrap();
        assert_eq!((a, dead.len()), (Ipv4Addr::new(10, 9, 0, 2), 40));
        let text = std::fs::read_to_string(dir.0.join("leases")).unwrap();
        assert!(
            text.contains(&format!("# boot {}\n", boot_id().unwrap())),
            "{text}"
        );
    }

    #[test]
    fn a_new_lease_is_written_over_the_end_line_other_changes_rewrite() {
        let dir = TempDir::new("lease-append");
        let path = dir.0.join("leases");
        let alive = |_: &str| true;
        allocate(&dir.0, &req("10.9.0.0/24", "a", &[]), &alive).unwrap();
        // A comment (which a rewrite drops) and a torn tail after `# end`.
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("# end\n", "# note\n# end\n10.9.0.77 torn");
        std::fs::write(&path, &text).unwrap();
        let p = [parse_publish("8080:80").unwrap()];
        let (b, _, _) = allocate(&dir.0, &req("10.9.0.0/24", "b", &p), &alive).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let me = std::process::id();
        assert!(
            text.contains(&format!("# note\n{b} b 8080:80/tcp {me}\n# end\n")),
            "{text}"
        );
        let leases = list(&dir.0).unwrap();
        assert_eq!(
            leases.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        // A free rewrites the file: the comment and the tail are gone.
        assert!(free(&dir.0, b, "b").unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("# note") && text.ends_with("# end\n"),
            "{text}"
        );
        // So does an allocation that reclaimed a lease.
        std::fs::write(&path, text.replace("# end\n", "# note\n# end\n")).unwrap();
        crash_holder(&dir.0, "a");
        std::fs::write(
            &path,
            std::fs::read_to_string(&path)
                .unwrap()
                .replace("# end\n", "# note\n# end\n"),
        )
        .unwrap();
        let (_, dead, _) =
            allocate(&dir.0, &req("10.9.0.0/24", "c", &[]), &|id| id != "a").unwrap();
        assert_eq!(dead.len(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("# note"), "{text}");
        assert_eq!(list(&dir.0).unwrap().len(), 1);
    }
}
