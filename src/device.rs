//! `--device HOST[:CONTAINER][:PERMISSIONS]`: a host device node in the
//! container's `/dev`, as docker gives one.
//!
//! The node is bound from the host (a bind mount of its own, with the host
//! mount's flags, as the six default devices are: the container's root and
//! its `/dev` tmpfs are `nodev`). tupper has no device cgroup, so it cannot
//! limit a device to reading: the permissions must allow reading and
//! writing (`rw`, `rwm`, or none given).

use crate::error::{Error, Result};

/// One `--device`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The host's device node (a character or block device).
    pub host: String,
    /// Where it appears in the container, below `/dev`.
    pub container: String,
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.container)
    }
}

/// Parses `HOST[:CONTAINER][:PERMISSIONS]` (docker's form; `CONTAINER`
/// defaults to `HOST`).
pub fn parse(s: &str) -> Result<Device> {
    let bad = |why: &str| Error::msg(format!("invalid --device {s}: {why}"));
    let parts: Vec<&str> = s.split(':').collect();
    let is_perms = |p: &str| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| "rwm".contains(c));
    let (host, container, perms) = match parts.as_slice() {
        [h] => (*h, *h, None),
        [h, p] if is_perms(p) => (*h, *h, Some(*p)),
        [h, c] => (*h, *c, None),
        [h, c, p] => (*h, *c, Some(*p)),
        _ => return Err(bad("not HOST[:CONTAINER][:PERMISSIONS]")),
    };
    if let Some(p) = perms {
        if !is_perms(p) {
            return Err(bad("permissions are r, w and m"));
        }
        if !(p.contains('r') && p.contains('w')) {
            return Err(bad(
                "tupper has no device cgroup to limit a device to reading or writing: give rw or rwm",
            ));
        }
    }
    if !host.starts_with('/') {
        return Err(bad("the host device is an absolute path"));
    }
    let rest = container
        .strip_prefix("/dev/")
        .ok_or_else(|| bad("the container path is below /dev"))?;
    if rest
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad("not a path below /dev"));
    }
    Ok(Device {
        host: host.to_string(),
        container: container.to_string(),
    })
}

/// Checks, before anything changes, that each host path is a device node.
pub fn check(devices: &[Device]) -> Result<()> {
    for d in devices {
        let st = rustix::fs::stat(d.host.as_str())
            .map_err(|e| Error::os(format!("--device {}", d.host), e))?;
        let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
        if !matches!(
            kind,
            rustix::fs::FileType::CharacterDevice | rustix::fs::FileType::BlockDevice
        ) {
            return Err(Error::msg(format!(
                "--device {}: not a device node",
                d.host
            )));
        }
    }
    Ok(())
}

/// The host's device nodes below `/dev`, for `--privileged` (docker's
/// `HostDevices`): every character and block device, found recursively,
/// but those a container has its own of (`/dev/pts`, `/dev/ptmx`, `/dev/shm`,
/// `/dev/mqueue`), the host's `/dev/console`, and the ones every container
/// gets bound anyway (`except`, names below `/dev`). Sorted.
pub fn host_devices(except: &[&str]) -> Result<Vec<Device>> {
    const SKIPPED: [&str; 5] = ["pts", "ptmx", "shm", "mqueue", "console"];
    let mut found = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::os(format!("--privileged: list {}", dir.display()), e))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| Error::os(format!("--privileged: list {}", dir.display()), e))?;
            let path = entry.path();
            let Some(name) = path.to_str().and_then(|p| p.strip_prefix("/dev/")) else {
                continue;
            };
            if SKIPPED.contains(&name) || except.contains(&name) {
                continue;
            }
            // Not followed: a symlink is not a device of its own.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            use std::os::unix::fs::FileTypeExt;
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_char_device() || kind.is_block_device() {
                found.push(Device {
                    host: format!("/dev/{name}"),
                    container: format!("/dev/{name}"),
                });
            }
        }
    }
    found.sort_by(|a, b| a.container.cmp(&b.container));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_devices_are_the_hosts_nodes_but_the_containers_own() {
        let all = host_devices(&["null"]).unwrap();
        let names: Vec<&str> = all.iter().map(|d| d.container.as_str()).collect();
        assert!(names.contains(&"/dev/zero"), "{names:?}");
        assert!(!names.contains(&"/dev/null"), "excepted: {names:?}");
        for own in [
            "/dev/pts/",
            "/dev/ptmx",
            "/dev/shm/",
            "/dev/mqueue/",
            "/dev/console",
        ] {
            assert!(
                !names.iter().any(|n| n.starts_with(own)),
                "{own}: {names:?}"
            );
        }
        assert!(all.iter().all(|d| d.host == d.container));
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn devices_parse_as_docker_writes_them() {
        let d = |h: &str, c: &str| Device {
            host: h.into(),
            container: c.into(),
        };
        assert_eq!(parse("/dev/fuse").unwrap(), d("/dev/fuse", "/dev/fuse"));
        assert_eq!(parse("/dev/fuse:rwm").unwrap(), d("/dev/fuse", "/dev/fuse"));
        assert_eq!(
            parse("/dev/null:/dev/my/null").unwrap(),
            d("/dev/null", "/dev/my/null")
        );
        assert_eq!(
            parse("/dev/null:/dev/n:rw").unwrap(),
            d("/dev/null", "/dev/n")
        );
        for bad in [
            "dev/fuse",
            "/dev/fuse:r",
            "/dev/fuse:/etc/fuse",
            "/dev/a:/dev/../x",
            "/a:/dev/b:rwm:x",
            "/dev/a:/dev/b:rx",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
