//! The container's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`.
//!
//! The contents are pure functions of the hostname, the mode and the address.
//! They are written through a directory fd of the container's `etc`, opened
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the root fd, so
//! an image whose `/etc` is a symlink is refused, and each file is created
//! with `O_CREAT | O_EXCL | O_NOFOLLOW` after `unlinkat` of whatever the image
//! had there: a symlink in the image (`/etc/resolv.conf -> /run/...` or
//! `-> /host/file`) is removed, never followed. Nothing is ever written outside
//! the root.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{FileType, Mode as FileMode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::Mode;
use crate::error::{Context, Error, Result};

/// Public resolvers used when the host names only loopback or IPv6 resolvers (which
/// are unreachable from a container's own network namespace); the same
/// fallback as docker's.
pub(crate) const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// `/etc/hostname`.
pub(crate) fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// The names of the container's own line of `/etc/hosts`, by docker's
/// rule (`etchosts.Build`): the full name (`HOSTNAME.DOMAINNAME` with a
/// domain name), then, when it has a dot, its first label.
pub(crate) fn own_names(hostname: &str, domainname: &str) -> String {
    let full = match domainname {
        "" => hostname.to_string(),
        domain => format!("{hostname}.{domain}"),
    };
    match full.split_once('.') {
        Some((short, _)) => format!("{full} {short}"),
        None => full,
    }
}

/// `/etc/hosts`: localhost, the container's own name on its address (bridge
/// mode) or on 127.0.1.1 (the Debian convention, for `none` and `host`),
/// after the `--add-host` entries, in order (docker's order).
pub(crate) fn hosts_file(
    hostname: &str,
    addr: Option<Ipv4Addr>,
    extra: &[(String, std::net::IpAddr)],
) -> String {
    let own = addr.unwrap_or(Ipv4Addr::new(127, 0, 1, 1));
    let mut text = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    // Before the container's own line, as docker writes them.
    for (name, ip) in extra {
        text.push_str(&format!("{ip}\t{name}\n"));
    }
    text.push_str(&format!("{own}\t{hostname}\n"));
    text
}

/// Whether a resolv.conf line is a `nameserver` the container cannot reach:
/// one on a loopback address (it would be the container's own loopback) or
/// an IPv6 one (the container's network is IPv4 only; docker's
/// `FilterResolvDNS` drops them too when IPv6 is off). A zone (`%eth0`) is
/// ignored.
fn unreachable_nameserver(line: &str) -> bool {
    let mut f = line.split_ascii_whitespace();
    if f.next() != Some("nameserver") {
        return false;
    }
    let Some(addr) = f.next() else {
        return false;
    };
    let addr = addr.split('%').next().unwrap_or(addr);
    match addr.parse::<std::net::IpAddr>() {
        Ok(a) => a.is_loopback() || a.is_ipv6(),
        _ => false,
    }
}

fn has_nameserver(text: &str) -> bool {
    text.lines().any(|l| {
        l.split_ascii_whitespace().next() == Some("nameserver") && !unreachable_nameserver(l)
    })
}

/// `/etc/resolv.conf` from the host's (`host`) and, when the host runs
/// systemd-resolved, its upstream list (`upstream`, from
/// `/run/systemd/resolve/resolv.conf`).
///
/// With `--net host` the host's file is copied as it is. Otherwise loopback
/// nameservers (they would be the container's own loopback) and IPv6 ones
/// (the container has no IPv6 route) are dropped; if none is left, the upstream list is used, and failing that
/// [`FALLBACK_NAMESERVERS`].
pub(crate) fn resolv_conf(
    mode: Mode,
    host: &str,
    upstream: Option<&str>,
    given: &super::EtcOptions,
) -> String {
    let base = match given.dns.is_empty() {
        true => base_resolv_conf(mode, host, upstream),
        // The host's nameservers are replaced: no fallback for them.
        false if mode == Mode::Host => host.to_string(),
        false => host
            .lines()
            .filter(|l| !unreachable_nameserver(l))
            .map(|l| format!("{l}\n"))
            .collect(),
    };
    override_resolv_conf(&base, given)
}

/// `--dns`, `--dns-search` and `--dns-option` over `base`, as docker
/// applies them: each given kind replaces the base's lines of that kind
/// (`search`/`domain`, `nameserver`, `options`); the rest stays.
fn override_resolv_conf(base: &str, given: &super::EtcOptions) -> String {
    if given.dns.is_empty() && given.dns_search.is_empty() && given.dns_options.is_empty() {
        return base.to_string();
    }
    let mut out = String::new();
    for line in base.lines() {
        let key = line.split_ascii_whitespace().next().unwrap_or("");
        let replaced = match key {
            "nameserver" => !given.dns.is_empty(),
            "search" | "domain" => !given.dns_search.is_empty(),
            "options" => !given.dns_options.is_empty(),
            _ => false,
        };
        if !replaced {
            out.push_str(line);
            out.push('\n');
        }
    }
    let search: Vec<&str> = given
        .dns_search
        .iter()
        .map(String::as_str)
        .filter(|s| *s != ".")
        .collect();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in &given.dns {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !given.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", given.dns_options.join(" ")));
    }
    out
}

/// [`resolv_conf`] without `--dns` and the like.
fn base_resolv_conf(mode: Mode, host: &str, upstream: Option<&str>) -> String {
    if mode == Mode::Host {
        return host.to_string();
    }
    let strip = |text: &str| -> String {
        let mut out = String::new();
        for line in text.lines() {
            if !unreachable_nameserver(line) {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    };
    if has_nameserver(host) {
        return strip(host);
    }
    if let Some(up) = upstream.filter(|u| has_nameserver(u)) {
        return strip(up);
    }
    let mut out = strip(host);
    out.push_str("# tupper: the host names only loopback or IPv6 resolvers; public fallback:\n");
    for ns in FALLBACK_NAMESERVERS {
        out.push_str("nameserver ");
        out.push_str(ns);
        out.push('\n');
    }
    out
}

/// Opens `etc` beneath `root` without following any symlink, creating it
/// (mode 0755) if the image has none.
fn open_etc(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let open = || rustix::fs::openat2(root, "etc", flags, FileMode::empty(), how);
    match open() {
        Ok(fd) => Ok(fd),
        Err(Errno::NOENT) => {
            match rustix::fs::mkdirat(root, "etc", FileMode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(Error::os("create /etc in the container root", e)),
            }
            open().context(|| "open /etc in the container root".to_string())
        }
        Err(Errno::LOOP) | Err(Errno::NOTDIR) => Err(Error::msg(
            "open /etc in the container root: it is a symlink or not a directory; \
             tupper will not write through it",
        )),
        Err(e) => Err(Error::os("open /etc in the container root", e)),
    }
}

/// Replaces `etc/name` with a new regular file holding `contents` (mode 0644).
///
/// The container is not running yet and its root is its own snapshot, so the
/// file is written in place: created exclusively, and when the image has one
/// (a file, a symlink, anything but a directory) that one is unlinked first
/// (`unlinkat` never follows a symlink). No temporary name and no rename: two
/// fewer btrfs metadata operations on every container start.
fn replace(etc: &OwnedFd, name: &str, contents: &[u8]) -> Result<()> {
    let what = || format!("write /etc/{name} in the container root");
    let create = || {
        rustix::fs::openat(
            etc,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            FileMode::from_raw_mode(0o644),
        )
    };
    let fd = match create() {
        Err(Errno::EXIST) => {
            rustix::fs::unlinkat(etc, name, rustix::fs::AtFlags::empty()).context(what)?;
            create().context(what)?
        }
        r => r.context(what)?,
    };
    let result = (|| {
        rustix::fs::fchmod(&fd, FileMode::from_raw_mode(0o644))?;
        let mut rest = contents;
        while !rest.is_empty() {
            match rustix::io::write(&fd, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(etc, name, rustix::fs::AtFlags::empty());
    }
    result.context(what)
}

/// The largest `/etc` file [`read_shared`] copies.
const MAX_SHARED: u64 = 64 * 1024;

/// Reads `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` beneath
/// `root`, the root of container `shown` (whose network another joins), to
/// copy them into the joiner's root: only regular files of at most 64 KiB,
/// never through a symlink (the container may have made one; the read must
/// not follow it out of its root, nor block on a FIFO). A file it does not
/// have is left out.
pub(crate) fn read_shared(
    root: BorrowedFd<'_>,
    shown: &str,
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let dir = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let etc = match rustix::fs::openat2(root, "etc", dir, FileMode::empty(), how) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Vec::new()),
        Err(e) => return Err(Error::os(format!("open /etc of container {shown}"), e)),
    };
    let mut out = Vec::new();
    for name in ["hostname", "hosts", "resolv.conf"] {
        if let Some(data) = read_etc_file(&etc, name, shown)? {
            out.push((name, data));
        }
    }
    Ok(out)
}

/// Reads `name` in `etc`, the `/etc` of container `shown`: a regular file
/// of at most [`MAX_SHARED`] bytes, never through a symlink nor from a
/// FIFO; `None` when it has none.
fn read_etc_file(etc: &OwnedFd, name: &str, shown: &str) -> Result<Option<Vec<u8>>> {
    let what = || format!("read /etc/{name} of container {shown}");
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(etc, name, flags, FileMode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => {
            return Err(Error::msg(format!(
                "{}: it is a symlink; tupper will not follow it",
                what()
            )))
        }
        Err(e) => return Err(Error::os(what(), e)),
    };
    let st = rustix::fs::fstat(&fd).context(what)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_size as u64 > MAX_SHARED
    {
        return Err(Error::msg(format!(
            "{}: not a regular file of at most {MAX_SHARED} bytes",
            what()
        )));
    }
    let mut data = vec![0u8; st.st_size as usize];
    let mut got = 0;
    while got < data.len() {
        match rustix::io::read(&fd, &mut data[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(Error::os(what(), e)),
        }
    }
    data.truncate(got);
    Ok(Some(data))
}

/// The line that starts the part of a container's `/etc/hosts` that names
/// the other containers of its user-defined network, followed by the
/// network's name. What follows it is tupper's, rewritten as they come and
/// go.
pub(crate) const NETWORK_MARK: &str = "# tupper network ";

/// That part of `/etc/hosts`: the mark, then `ADDRESS\tNAMES` per other
/// container of `network`.
pub(crate) fn network_section(network: &str, others: &[(Ipv4Addr, String)]) -> String {
    let mut text = format!("{NETWORK_MARK}{network}\n");
    for (addr, names) in others {
        text.push_str(&format!("{addr}\t{names}\n"));
    }
    text
}

/// `hosts` without the part of `network`: from the line of its mark to
/// the next mark (another network's part, when the container is on more
/// than one) or the end; ending with a newline unless empty.
pub(crate) fn without_network_section(hosts: &str, network: &str) -> String {
    let mut kept = String::with_capacity(hosts.len());
    let mut skipping = false;
    for line in hosts.split_inclusive('\n') {
        if let Some(name) = line.trim_end_matches('\n').strip_prefix(NETWORK_MARK) {
            skipping = name == network;
        }
        if !skipping {
            kept.push_str(line);
        }
    }
    if !kept.is_empty() && !kept.ends_with('\n') {
        kept.push('\n');
    }
    kept
}

/// Puts `section` in place of the part of `network` of the `/etc/hosts`
/// beneath `root`, the root of running container `shown` (at its end when
/// it had none; an empty `section` takes it out): the rest stays (the file
/// as its start wrote it, the parts of its other networks, and what the
/// container wrote there itself). The new file is renamed over the old one, so a
/// reader sees one or the other, never a part. Through `/etc` opened
/// beneath the root without symlinks, as at the start; a `hosts` that is
/// a symlink or not a regular file is left alone (an error).
pub(crate) fn replace_network_section(
    root: BorrowedFd<'_>,
    shown: &str,
    network: &str,
    section: &str,
) -> Result<()> {
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let dir = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let etc = rustix::fs::openat2(root, "etc", dir, FileMode::empty(), how)
        .map_err(|e| Error::os(format!("open /etc of container {shown}"), e))?;
    let old = read_etc_file(&etc, "hosts", shown)?.unwrap_or_default();
    let text = without_network_section(&String::from_utf8_lossy(&old), network) + section;
    let tmp = ".hosts.tupper";
    let what = || format!("write /etc/hosts of container {shown}");
    match rustix::fs::unlinkat(&etc, tmp, rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(Error::os(what(), e)),
    }
    let fd = rustix::fs::openat(
        &etc,
        tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        FileMode::from_raw_mode(0o644),
    )
    .context(what)?;
    let result = rustix::fs::fchmod(&fd, FileMode::from_raw_mode(0o644))
        .and_then(|()| crate::fsutil::write_all(fd.as_fd(), text.as_bytes()))
        .and_then(|()| rustix::fs::renameat(&etc, tmp, &etc, "hosts"));
    if result.is_err() {
        let _ = rustix::fs::unlinkat(&etc, tmp, rustix::fs::AtFlags::empty());
    }
    result.context(what)
}

/// Writes `files` (name in `/etc`, contents) beneath `root`.
pub(crate) fn write(root: BorrowedFd<'_>, files: &[(&str, &[u8])]) -> Result<()> {
    let etc = open_etc(root)?;
    for (name, contents) in files {
        replace(&etc, name, contents)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::EtcOptions;
    use super::*;
    use crate::net::lease::tests::TempDir;
    use std::os::fd::AsFd;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn open_root(p: &std::path::Path) -> OwnedFd {
        rustix::fs::open(
            p,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            FileMode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn the_network_part_of_hosts_is_replaced_and_the_rest_kept() {
        let own = hosts_file("web", Some(Ipv4Addr::new(10, 90, 0, 2)), &[]);
        let section = network_section(
            "appnet",
            &[(Ipv4Addr::new(10, 90, 0, 3), "db 3f2a9c0d1e7b".into())],
        );
        assert_eq!(
            section,
            "# tupper network appnet\n10.90.0.3\tdb 3f2a9c0d1e7b\n"
        );
        let full = own.clone() + &section;
        assert_eq!(without_network_section(&full, "appnet"), own);
        // A line the container added after its own stays; one without a
        // newline gets one; a file that is only the part is emptied.
        assert_eq!(
            without_network_section("1.2.3.4\tx", "appnet"),
            "1.2.3.4\tx\n"
        );
        assert_eq!(without_network_section(&section, "appnet"), "");
        assert_eq!(without_network_section("", "appnet"), "");
        // The mark counts only at the start of a line.
        let odd = "1.2.3.4\tx # tupper network appnet\n";
        assert_eq!(without_network_section(odd, "appnet"), odd);
        // Another network's part stays, before or after.
        let other = network_section("back", &[(Ipv4Addr::new(10, 90, 1, 4), "cache".into())]);
        let two = own.clone() + &other + &section;
        assert_eq!(
            without_network_section(&two, "appnet"),
            own.clone() + &other
        );
        assert_eq!(
            without_network_section(&two, "back"),
            own.clone() + &section
        );
        let two = own.clone() + &section + &other;
        assert_eq!(
            without_network_section(&two, "appnet"),
            own.clone() + &other
        );
        // A name that only begins like it is another network.
        assert_eq!(without_network_section(&full, "app"), full);
    }

    #[test]
    fn hosts_name_the_container() {
        assert_eq!(own_names("web", ""), "web");
        assert_eq!(own_names("web", "example.com"), "web.example.com web");
        assert_eq!(own_names("web.lan", ""), "web.lan web");
        let h = hosts_file("web", Some(Ipv4Addr::new(10, 89, 0, 2)), &[]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"), "{h}");
        assert!(h.ends_with("10.89.0.2\tweb\n"), "{h}");
        assert!(hosts_file("web", None, &[]).ends_with("127.0.1.1\tweb\n"));
    }

    #[test]
    fn dns_options_replace_their_kind_of_line_as_docker_does() {
        let host =
            "# host\nsearch a.example\nnameserver 192.0.2.53\noptions rotate\nsortlist 10.0.0.0\n";
        let given = EtcOptions {
            dns: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            ..EtcOptions::default()
        };
        assert_eq!(
            resolv_conf(Mode::Bridge, host, None, &given),
            "# host\nsearch a.example\noptions rotate\nsortlist 10.0.0.0\n\
             nameserver 192.0.2.1\nnameserver 2001:db8::1\n"
        );
        let given = EtcOptions {
            dns_search: vec!["b.example".into(), "c.example".into()],
            dns_options: vec!["ndots:2".into()],
            ..EtcOptions::default()
        };
        assert_eq!(
            resolv_conf(Mode::Host, host, None, &given),
            "# host\nnameserver 192.0.2.53\nsortlist 10.0.0.0\n\
             search b.example c.example\noptions ndots:2\n"
        );
        // `--dns-search .`: no search domain at all.
        let given = EtcOptions {
            dns_search: vec![".".into()],
            ..EtcOptions::default()
        };
        assert!(!resolv_conf(Mode::Bridge, host, None, &given).contains("search"));
        // Only loopback resolvers on the host, and --dns: no public fallback.
        let given = EtcOptions {
            dns: vec!["192.0.2.9".parse().unwrap()],
            ..EtcOptions::default()
        };
        assert_eq!(
            resolv_conf(Mode::None, "nameserver 127.0.0.53\n", None, &given),
            "nameserver 192.0.2.9\n"
        );
    }

    #[test]
    fn add_host_parses_as_docker_reads_it() {
        let p = EtcOptions::parse_add_host;
        assert_eq!(
            p("db:10.0.0.5").unwrap(),
            ("db".into(), Some("10.0.0.5".parse().unwrap()))
        );
        assert_eq!(
            p("db=10.0.0.5").unwrap().1,
            Some("10.0.0.5".parse().unwrap())
        );
        assert_eq!(
            p("v6=[2001:db8::1]").unwrap().1,
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            p("v6:2001:db8::1").unwrap().1,
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(p("gw:host-gateway").unwrap(), ("gw".into(), None));
        for bad in [
            "db",
            ":10.0.0.5",
            "db:nohost",
            "a b:10.0.0.5",
            "db:",
            "a:b=1.2.3.4",
        ] {
            assert!(p(bad).is_err(), "{bad} parsed");
        }
        let h = hosts_file("web", None, &[("db".into(), "10.0.0.5".parse().unwrap())]);
        assert!(h.ends_with("10.0.0.5\tdb\n127.0.1.1\tweb\n"), "{h}");
    }

    #[test]
    fn resolv_conf_drops_loopback_resolvers() {
        let host = "search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\n";
        assert_eq!(
            resolv_conf(Mode::Bridge, host, None, &EtcOptions::default()),
            "search example.org\nnameserver 192.0.2.53\n"
        );
        assert_eq!(
            resolv_conf(Mode::Host, host, None, &EtcOptions::default()),
            host
        );
    }

    #[test]
    fn resolv_conf_drops_ipv6_resolvers() {
        let host = "nameserver 2001:db8::53\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\n";
        assert_eq!(
            resolv_conf(Mode::Bridge, host, None, &EtcOptions::default()),
            "nameserver 192.0.2.53\n"
        );
        assert_eq!(
            resolv_conf(Mode::Host, host, None, &EtcOptions::default()),
            host
        );
        // Only IPv6 resolvers, on the host and upstream: the public fallback.
        let v6 = "nameserver 2001:db8::53\nnameserver ::ffff:192.0.2.9\n";
        let out = resolv_conf(
            Mode::Bridge,
            v6,
            Some("nameserver 2001:db8::1\n"),
            &EtcOptions::default(),
        );
        assert!(!out.contains("2001:db8"), "{out}");
        assert!(!out.contains("::ffff"), "{out}");
        assert!(
            out.ends_with("nameserver 8.8.8.8\nnameserver 8.8.4.4\n"),
            "{out}"
        );
        // An IPv4 upstream is used before the fallback.
        let up = "nameserver 192.0.2.1\n";
        assert_eq!(
            resolv_conf(Mode::Bridge, v6, Some(up), &EtcOptions::default()),
            up
        );
    }

    #[test]
    fn resolv_conf_falls_back_to_upstream_then_public() {
        let stub = "nameserver 127.0.0.53\noptions edns0\n";
        let up = "nameserver 192.0.2.1\n";
        assert_eq!(
            resolv_conf(Mode::Bridge, stub, Some(up), &EtcOptions::default()),
            up
        );
        let out = resolv_conf(Mode::None, stub, None, &EtcOptions::default());
        assert!(!out.contains("127.0.0.53"), "{out}");
        assert!(out.contains("options edns0\n"), "{out}");
        assert!(
            out.ends_with("nameserver 8.8.8.8\nnameserver 8.8.4.4\n"),
            "{out}"
        );
        assert!(resolv_conf(Mode::Bridge, "", None, &EtcOptions::default())
            .contains("nameserver 8.8.8.8"));
    }

    #[test]
    fn symlinks_in_the_image_are_replaced_not_followed() {
        let root = TempDir::new("etc-symlink");
        let outside = TempDir::new("etc-outside");
        let victim = outside.0.join("victim");
        std::fs::write(&victim, "host file\n").unwrap();
        std::fs::create_dir(root.0.join("etc")).unwrap();
        // Absolute and relative escapes, and a dangling one.
        symlink(&victim, root.0.join("etc/hosts")).unwrap();
        symlink("../../../../../../../../", root.0.join("etc/resolv.conf")).unwrap();
        symlink("/nonexistent/x", root.0.join("etc/hostname")).unwrap();
        let fd = open_root(&root.0);
        write(
            fd.as_fd(),
            &[
                ("hostname", b"web\n"),
                ("hosts", b"127.0.0.1 localhost\n"),
                ("resolv.conf", b"nameserver 192.0.2.1\n"),
            ],
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host file\n");
        for (name, want) in [
            ("hostname", "web\n"),
            ("hosts", "127.0.0.1 localhost\n"),
            ("resolv.conf", "nameserver 192.0.2.1\n"),
        ] {
            let p = root.0.join("etc").join(name);
            let meta = std::fs::symlink_metadata(&p).unwrap();
            assert!(meta.file_type().is_file(), "{name} is not a regular file");
            assert_eq!(meta.permissions().mode() & 0o777, 0o644);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), want);
        }
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(root.0.join("etc")).unwrap().count(), 3);
    }

    #[test]
    fn shared_files_are_copied_only_when_regular_small_and_not_symlinks() {
        let root = TempDir::new("etc-shared");
        let fd = open_root(&root.0);
        // No /etc: nothing to copy, and nothing made.
        assert!(read_shared(fd.as_fd(), "web").unwrap().is_empty());
        assert!(!root.0.join("etc").exists());
        std::fs::create_dir(root.0.join("etc")).unwrap();
        std::fs::write(root.0.join("etc/hosts"), "10.89.0.2\tweb\n").unwrap();
        std::fs::write(root.0.join("etc/hostname"), "web\n").unwrap();
        let got = read_shared(fd.as_fd(), "web").unwrap();
        assert_eq!(
            got,
            vec![
                ("hostname", b"web\n".to_vec()),
                ("hosts", b"10.89.0.2\tweb\n".to_vec())
            ]
        );
        // A symlink (out of the root), a FIFO, a file too large: refused,
        // naming the file and the container.
        let outside = TempDir::new("etc-shared-outside");
        std::fs::write(outside.0.join("secret"), "host\n").unwrap();
        symlink(outside.0.join("secret"), root.0.join("etc/resolv.conf")).unwrap();
        let e = read_shared(fd.as_fd(), "web").unwrap_err().to_string();
        assert!(e.contains("read /etc/resolv.conf of container web"), "{e}");
        assert!(e.contains("symlink"), "{e}");
        std::fs::remove_file(root.0.join("etc/resolv.conf")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.0.join("etc/resolv.conf").as_path(),
            rustix::fs::FileType::Fifo,
            FileMode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let e = read_shared(fd.as_fd(), "web").unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::remove_file(root.0.join("etc/resolv.conf")).unwrap();
        std::fs::write(root.0.join("etc/resolv.conf"), vec![b'#'; 64 * 1024 + 1]).unwrap();
        let e = read_shared(fd.as_fd(), "web").unwrap_err().to_string();
        assert!(e.contains("at most 65536 bytes"), "{e}");
        // An /etc that is a symlink is not followed either.
        std::fs::remove_dir_all(root.0.join("etc")).unwrap();
        symlink(&outside.0, root.0.join("etc")).unwrap();
        assert!(read_shared(fd.as_fd(), "web").is_err());
    }

    #[test]
    fn a_symlinked_etc_is_refused_and_a_missing_one_created() {
        let root = TempDir::new("etc-dir");
        let outside = TempDir::new("etc-dir-outside");
        symlink(&outside.0, root.0.join("etc")).unwrap();
        let fd = open_root(&root.0);
        let e = write(fd.as_fd(), &[("hosts", b"x\n")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("symlink"), "{e}");
        assert_eq!(std::fs::read_dir(&outside.0).unwrap().count(), 0);

        std::fs::remove_file(root.0.join("etc")).unwrap();
        write(fd.as_fd(), &[("hostname", b"a\n")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.0.join("etc/hostname")).unwrap(),
            "a\n"
        );
    }
}
