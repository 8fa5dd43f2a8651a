//! `--sysctl NAME=VALUE`: kernel parameters of the container's own
//! namespaces, with docker's rules of which ones.
//!
//! Only parameters that belong to a namespace the container has of its own
//! are allowed (docker's list): the IPC ones (`kernel.msgmax`,
//! `kernel.msgmnb`, `kernel.msgmni`, `kernel.sem`, `kernel.shmall`,
//! `kernel.shmmax`, `kernel.shmmni`, `kernel.shm_rmid_forced`, `fs.mqueue.*`),
//! the UTS one (`kernel.domainname`) and the network ones (`net.*`, not with
//! `--net host`). The child writes them after the go-ahead (the network is
//! configured then, `eth0` included) through a file descriptor of its
//! `/proc/sys` taken before docker's read-only bind over it.

use crate::error::{Error, Result};

/// The IPC and UTS parameters allowed by name.
const ALLOWED: [&str; 9] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
    "kernel.domainname",
];

/// One `--sysctl`: the parameter's name in dotted form and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// `net.ipv4.ip_forward` (a `net/ipv4/ip_forward` given is shown so too).
    pub name: String,
    /// What is written to it.
    pub value: String,
    /// Its path below `/proc/sys`.
    pub path: String,
}

impl std::fmt::Display for Sysctl {
    /// Dotted, unless a component has a dot of its own (`eth0.100`): then
    /// as a path, which [`parse`] reads back to the same parameter.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.path.contains('.') {
            false => write!(f, "{}={}", self.name, self.value),
            true => write!(f, "{}={}", self.path, self.value),
        }
    }
}

/// Parses `NAME=VALUE` (`NAME` dotted, `net.ipv4.ip_forward`, or as a path,
/// `net/ipv4/ip_forward`, which keeps dots in interface names) and checks
/// that the parameter is the container's own (`shared_network`: `--net
/// host` or `--net container:`, where `net.*` is the host's or the other
/// container's).
pub fn parse(s: &str, shared_network: bool) -> Result<Sysctl> {
    let bad = |why: &str| Error::msg(format!("invalid --sysctl {s}: {why}"));
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| bad("not NAME=VALUE (net.ipv4.ip_forward=1)"))?;
    let path = match name.contains('/') {
        true => name.trim_start_matches('/').to_string(),
        false => name.replace('.', "/"),
    };
    if path.is_empty()
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(bad("not a parameter name"));
    }
    if value.bytes().any(|b| b == b'\n' || b == 0) {
        return Err(bad("one line"));
    }
    let dotted = path.replace('/', ".");
    let ipc = ALLOWED.contains(&dotted.as_str()) || path.starts_with("fs/mqueue/");
    let net = path.starts_with("net/");
    if net && shared_network {
        return Err(bad(
            "net.* is the host's with --net host, the other container's with --net container:, not the container's",
        ));
    }
    if !ipc && !net {
        return Err(bad(
            "not a parameter of the container's own namespaces (net.*, fs.mqueue.*, kernel.shmmax, kernel.shmall, kernel.shmmni, kernel.shm_rmid_forced, kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, kernel.domainname)",
        ));
    }
    Ok(Sysctl {
        name: dotted,
        value: value.to_string(),
        path,
    })
}

impl Sysctl {
    /// Whether it is a parameter of the IPC namespace (`kernel.msg*`,
    /// `kernel.sem`, `kernel.shm*`, `fs.mqueue.*`).
    pub fn is_ipc(&self) -> bool {
        self.path.starts_with("fs/mqueue/")
            || (ALLOWED.contains(&self.name.as_str()) && self.name != "kernel.domainname")
    }
}

/// Checks parameters made elsewhere (a library's [`crate::Spec`]) against
/// the network mode, as [`parse`] does.
pub fn check(sysctls: &[Sysctl], shared_network: bool) -> Result<()> {
    for s in sysctls {
        // The path is what the child writes: it is what is checked.
        let parsed = parse(&format!("/{}={}", s.path, s.value), shared_network)?;
        if parsed.path != s.path || parsed.value != s.value {
            return Err(Error::msg(format!(
                "invalid --sysctl {s}: not as parse makes it"
            )));
        }
    }
    Ok(())
}

/// Parses every `--sysctl`; a later one of the same name wins.
pub fn parse_all(args: &[String], shared_network: bool) -> Result<Vec<Sysctl>> {
    let mut out: Vec<Sysctl> = Vec::new();
    for a in args {
        let s = parse(a, shared_network)?;
        out.retain(|o| o.path != s.path);
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctls_are_the_containers_own_as_docker_allows_them() {
        let s = parse("net.ipv4.ip_forward=1", false).unwrap();
        assert_eq!(
            (s.path.as_str(), s.value.as_str()),
            ("net/ipv4/ip_forward", "1")
        );
        let s = parse("net/ipv4/conf/eth0.100/forwarding=1", false).unwrap();
        assert_eq!(s.path, "net/ipv4/conf/eth0.100/forwarding");
        assert!(parse("kernel.shmmax=1000000", true).is_ok());
        assert!(parse("kernel.shmmax=1000000", true).unwrap().is_ipc());
        assert!(parse("fs.mqueue.msg_max=20", true).unwrap().is_ipc());
        assert!(!parse("kernel.domainname=x", true).unwrap().is_ipc());
        assert!(!parse("net.ipv4.ip_forward=1", false).unwrap().is_ipc());
        assert!(parse("fs.mqueue.msg_max=20", false).is_ok());
        assert_eq!(
            parse("kernel.sem=250 32000 32 128", false).unwrap().value,
            "250 32000 32 128"
        );
        for (bad, host) in [
            ("net.ipv4.ip_forward=1", true),
            ("kernel.hostname=x", false),
            ("vm.swappiness=1", false),
            ("kernel.shmmax", false),
            ("net/../kernel/x=1", false),
            ("net..x=1", false),
            ("net.core.x=1\n2", false),
        ] {
            assert!(parse(bad, host).is_err(), "{bad}");
        }
        let all = parse_all(&["net.a=1".into(), "net/a=2".into()], false).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].to_string(), "net.a=2");
    }
}
