//! The address lease file: `STATE_DIR/leases`, one line per container that
//! holds an address, guarded by an exclusive `flock` on the file itself.
//!
//! A line is `ADDRESS CONTAINER-ID PORTS`, where PORTS is `-` or the published
//! ports joined by commas (`8080:80/tcp,53:53/udp`); lines starting with `#`
//! are comments, and the line `# end` ends the file. Every change happens under
//! the lock: read, decide, rewrite in place (one `pwrite` of the whole text
//! with its `# end`, then `ftruncate`), unlock. Whatever a crash between the
//! two calls leaves after `# end` is ignored. The file is never replaced by
//! `rename(2)`: a rename costs hundreds of microseconds on ext4 (block
//! allocation of the new file, discard of the old one's blocks), and would
//! take the lock away from its inode.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, Mode, OFlags};

use super::{PortMapping, Subnet};
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
}

/// What a container asks for.
pub(crate) struct Request<'a> {
    pub subnet: Subnet,
    pub want: Option<Ipv4Addr>,
    pub id: &'a str,
    pub ports: &'a [PortMapping],
}

/// The lease file of `state_dir`, locked for as long as this value lives.
pub(crate) struct Locked {
    fd: OwnedFd,
    path: PathBuf,
    /// The file's length as read.
    len: usize,
    /// The leases as read under the lock.
    pub leases: Vec<Lease>,
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
        let mut text = Vec::with_capacity(4096);
        loop {
            let start = text.len();
            text.resize(start + 4096, 0);
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
        let text = String::from_utf8_lossy(&text);
        let leases =
            parse(&text).map_err(|e| Error::msg(format!("read {}: {e}", path.display())))?;
        Ok(Locked {
            fd,
            path,
            len,
            leases,
        })
    }

    /// Writes `self.leases` back in place.
    pub(crate) fn save(&self) -> Result<()> {
        let text = format(&self.leases);
        let mut done = 0;
        while done < text.len() {
            match rustix::io::pwrite(&self.fd, &text.as_bytes()[done..], done as u64) {
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::os(format!("write {}", self.path.display()), e)),
            }
        }
        // Growing needs no truncation (and ext4 makes it cost a journal entry).
        if text.len() < self.len {
            rustix::fs::ftruncate(&self.fd, text.len() as u64)
                .context(|| format!("truncate {}", self.path.display()))?;
        }
        Ok(())
    }
}

/// Takes an address for `req.id`: `req.want` if it is free, else the lowest
/// free address of the subnet. Leases of containers that `is_alive` says are
/// gone are dropped first; they are returned so that the caller can remove
/// what they left behind (DNAT rules).
pub(crate) fn allocate(
    state_dir: &Path,
    req: &Request<'_>,
    is_alive: &dyn Fn(&str) -> bool,
) -> Result<(Ipv4Addr, Vec<Lease>)> {
    let mut file = Locked::open(state_dir)?;
    if let Some(l) = file.leases.iter().find(|l| l.id == req.id) {
        return Err(Error::msg(format!(
            "take an address for container {}: it already holds {}",
            req.id, l.addr
        )));
    }
    let (live, dead): (Vec<Lease>, Vec<Lease>) =
        file.leases.drain(..).partition(|l| is_alive(&l.id));
    file.leases = live;

    for p in req.ports {
        if let Some(l) = file.leases.iter().find(|l| {
            l.ports
                .iter()
                .any(|q| q.host_port == p.host_port && q.protocol == p.protocol)
        }) {
            return Err(Error::msg(format!(
                "publish port {p}: host port {}/{} is already published by container {}",
                p.host_port, p.protocol, l.id
            )));
        }
    }
    let in_use = |a: Ipv4Addr| file.leases.iter().find(|l| l.addr == a);
    let addr = match req.want {
        Some(a) => {
            if let Some(l) = in_use(a) {
                return Err(Error::msg(format!(
                    "take address {a}: it is in use by container {}",
                    l.id
                )));
            }
            a
        }
        None => match req.subnet.hosts().find(|a| in_use(*a).is_none()) {
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
    file.leases.push(Lease {
        addr,
        id: req.id.to_string(),
        ports: req.ports.to_vec(),
    });
    file.save()?;
    Ok((addr, dead))
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

fn parse(text: &str) -> std::result::Result<Vec<Lease>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line == "# end" {
            break;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("line {}: malformed lease {line:?}", n + 1);
        let mut f = line.split_ascii_whitespace();
        let (Some(addr), Some(id), Some(ports), None) = (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad());
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
        });
    }
    Ok(out)
}

fn format(leases: &[Lease]) -> String {
    let mut s = String::from("# tupper address leases: ADDRESS CONTAINER-ID PORTS\n");
    for l in leases {
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
        s.push('\n');
    }
    s.push_str("# end\n");
    s
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
        }
    }

    #[test]
    fn file_round_trips() {
        let leases = vec![
            Lease {
                addr: Ipv4Addr::new(10, 89, 0, 2),
                id: "abc".into(),
                ports: vec![],
            },
            Lease {
                addr: Ipv4Addr::new(10, 89, 0, 3),
                id: "def".into(),
                ports: vec![
                    parse_publish("8080:80/tcp").unwrap(),
                    parse_publish("53:53/udp").unwrap(),
                ],
            },
        ];
        let text = format(&leases);
        assert!(
            text.contains("10.89.0.3 def 8080:80/tcp,53:53/udp\n"),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap(), leases);
        assert!(parse("10.89.0.2 abc\n").unwrap_err().contains("line 1"));
        // What a crash between pwrite and ftruncate leaves is ignored.
        let torn = format!("{text}10.89.0.9 gh");
        assert_eq!(parse(&torn).unwrap(), leases);
        assert!(parse("10.89.0.256 abc -\n").is_err());
    }

    #[test]
    fn lowest_free_then_reuse_after_free() {
        let dir = TempDir::new("lease-lowest");
        let alive = |_: &str| true;
        let (a, _) = allocate(&dir.0, &req("10.9.0.0/24", "a", &[]), &alive).unwrap();
        let (b, _) = allocate(&dir.0, &req("10.9.0.0/24", "b", &[]), &alive).unwrap();
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(10, 9, 0, 2), Ipv4Addr::new(10, 9, 0, 3))
        );
        assert!(free(&dir.0, a, "a").unwrap());
        assert!(!free(&dir.0, a, "a").unwrap(), "freed twice");
        let (c, _) = allocate(&dir.0, &req("10.9.0.0/24", "c", &[]), &alive).unwrap();
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
        let (a, dead) = allocate(&dir.0, &req("10.9.0.0/30", "new", &ports), &|id| {
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
}
