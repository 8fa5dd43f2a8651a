//! Mounts the user asks for: host directories and files bound into the
//! container (`-v HOST:CTR[:ro]`, docker's bind mounts), named volumes of
//! the store (`-v NAME:CTR[:ro]`, see [`crate::named_volume`]) and `tmpfs`
//! mounts (`--tmpfs CTR[:OPTIONS]`).
//!
//! Parsing is pure ([`parse_volume`], [`parse_tmpfs`], [`check`]);
//! [`resolve`] looks at the host (the source must exist) before the store
//! changes; [`crate::plan`] turns each into an operation the child carries
//! out in the container's root (see `docs/decisions.md`, "Volumes").

use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What kind of mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A host file or directory (`-v`).
    Bind,
    /// A new, empty `tmpfs` (`--tmpfs`).
    Tmpfs,
    /// A named volume of the store (`-v NAME:CTR`), bound as a host
    /// directory is.
    Volume,
}

/// One mount the user asked for, as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The name of a named volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The host path of a bind mount (absolute once [`resolve`]d), or of a
    /// named volume (its directory in the store, once known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The path inside the container (absolute, cleaned).
    pub destination: String,
    /// Whether it is read-only (recursively, for a bind mount).
    pub read_only: bool,
    /// The `tmpfs` options passed to the kernel (`size=64m`, `mode=1777`,
    /// ...) and the mount flags asked for (`exec`, `suid`, ...), as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// `idmap` (podman's): a bind mount whose owners are mapped to the
    /// container's user namespace as its root's are (`--userns auto`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idmap: bool,
    /// A bind mount's propagation (docker's `rslave`, `rshared`, ...);
    /// `rprivate` by default.
    #[serde(default, skip_serializing_if = "Propagation::is_default")]
    pub propagation: Propagation,
}

/// The mount propagation of a bind mount (docker's `-v HOST:CTR:rslave`,
/// `--mount ...,bind-propagation=rslave`): whether mounts made later
/// beneath the host path appear in the container (`slave`), and the
/// container's beneath it on the host too (`shared`). Applied to the whole
/// tree bound: `slave` as `rslave`, `shared` as `rshared` (docker's plain
/// ones leave the source's submounts private).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    /// Nothing propagates (the default).
    #[default]
    Rprivate,
    /// As `rprivate`.
    Private,
    /// From the host into the container.
    Rslave,
    /// As `rslave`.
    Slave,
    /// Both ways.
    Rshared,
    /// As `rshared`.
    Shared,
}

impl Propagation {
    /// docker's names.
    pub fn parse(s: &str) -> Option<Propagation> {
        Some(match s {
            "rprivate" => Propagation::Rprivate,
            "private" => Propagation::Private,
            "rslave" => Propagation::Rslave,
            "slave" => Propagation::Slave,
            "rshared" => Propagation::Rshared,
            "shared" => Propagation::Shared,
            _ => return None,
        })
    }

    /// docker's name.
    pub fn name(self) -> &'static str {
        match self {
            Propagation::Rprivate => "rprivate",
            Propagation::Private => "private",
            Propagation::Rslave => "rslave",
            Propagation::Slave => "slave",
            Propagation::Rshared => "rshared",
            Propagation::Shared => "shared",
        }
    }

    /// Whether it is `rprivate` (kept out of the record).
    pub fn is_default(&self) -> bool {
        *self == Propagation::Rprivate
    }

    /// The `MS_*` propagation flag that `mount_setattr` sets on the tree.
    pub fn flag(self) -> u64 {
        use linux_raw_sys::general::{MS_PRIVATE, MS_SHARED, MS_SLAVE};
        match self {
            Propagation::Rprivate | Propagation::Private => MS_PRIVATE.into(),
            Propagation::Rslave | Propagation::Slave => MS_SLAVE.into(),
            Propagation::Rshared | Propagation::Shared => MS_SHARED.into(),
        }
    }

    /// Whether the host's mount must be shared (`shared`), or shared or a
    /// slave (`slave`), for anything to propagate: `None` for `private`.
    fn needs(self) -> Option<&'static str> {
        match self.flag() as u32 {
            linux_raw_sys::general::MS_SLAVE => Some("shared or slave"),
            linux_raw_sys::general::MS_SHARED => Some("shared"),
            _ => None,
        }
    }
}

/// A mount checked against the host: what the plan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The mount, its source made absolute with its symlinks resolved.
    pub mount: Mount,
    /// Whether the destination is a directory (else a file, made empty when
    /// the image has none).
    pub dir: bool,
}

/// `MOUNT_ATTR_*` bits (see `mount_setattr(2)`) of a user mount.
pub mod attr {
    /// Read-only.
    pub const RDONLY: u64 = linux_raw_sys::general::MOUNT_ATTR_RDONLY as u64;
    /// Set-user-ID bits and file capabilities do nothing.
    pub const NOSUID: u64 = linux_raw_sys::general::MOUNT_ATTR_NOSUID as u64;
    /// Device files do not open.
    pub const NODEV: u64 = linux_raw_sys::general::MOUNT_ATTR_NODEV as u64;
    /// Nothing executes.
    pub const NOEXEC: u64 = linux_raw_sys::general::MOUNT_ATTR_NOEXEC as u64;
    /// No access times.
    pub const NOATIME: u64 = linux_raw_sys::general::MOUNT_ATTR_NOATIME as u64;
    /// Access times only when older than the last change (the default).
    pub const RELATIME: u64 = linux_raw_sys::general::MOUNT_ATTR_RELATIME as u64;
    /// Every access time.
    pub const STRICTATIME: u64 = linux_raw_sys::general::MOUNT_ATTR_STRICTATIME as u64;
    /// No access times for directories.
    pub const NODIRATIME: u64 = linux_raw_sys::general::MOUNT_ATTR_NODIRATIME as u64;
}

/// The `tmpfs` options the kernel takes as `KEY=VALUE` (`mount(8)`'s tmpfs
/// section); any other `KEY=VALUE` is refused before anything changes.
pub const TMPFS_KEYS: [&str; 7] = [
    "size",
    "nr_blocks",
    "nr_inodes",
    "mode",
    "uid",
    "gid",
    "huge",
];

/// Parses `-v HOST:CTR[:OPTIONS]`: `HOST` an absolute path or one starting
/// with `.` (relative to the working directory), `OPTIONS` a comma list of
/// `ro`, `rw`, `private`, `rprivate`, `idmap`.
pub fn parse_volume(spec: &str) -> Result<Mount> {
    let bad = |why: &str| Error::msg(format!("invalid volume {spec:?}: {why}"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, options) = match parts.as_slice() {
        [_] => {
            return Err(bad(
                "give HOST:CONTAINER or NAME:CONTAINER (tupper has no anonymous volumes)",
            ))
        }
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(bad("too many ':'")),
    };
    if source.is_empty() {
        return Err(bad("the host path is empty"));
    }
    // docker's rule: a source that is not a path is a volume's name.
    let name = match source.starts_with('/') || source.starts_with('.') {
        true => None,
        false => {
            crate::names::validate("volume name", source).map_err(|e| bad(e.what()))?;
            Some(source.to_string())
        }
    };
    let (mut read_only, mut idmap) = (false, false);
    let mut propagation = Propagation::default();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" | "readonly" => read_only = true,
            // A named volume is mapped anyway.
            "idmap" => idmap = name.is_none(),
            "rw" => read_only = false,
            "z" | "Z" => return Err(bad("SELinux relabelling (z, Z) is not supported")),
            other => match Propagation::parse(other) {
                // docker's: a named volume's propagation is its own.
                Some(p) if name.is_some() && !p.is_default() && p != Propagation::Private => {
                    return Err(bad(&format!(
                        "mount propagation {other:?} is for host paths, not named volumes"
                    )))
                }
                Some(p) => propagation = p,
                None => {
                    return Err(bad(&format!(
                        "unknown option {other:?} (tupper takes ro, rw, idmap and a propagation: rprivate, private, rslave, slave, rshared, shared)"
                    )))
                }
            },
        }
    }
    Ok(Mount {
        kind: match name {
            Some(_) => Kind::Volume,
            None => Kind::Bind,
        },
        source: name.is_none().then(|| source.to_string()),
        name,
        destination: destination_path(destination).map_err(|why| bad(&why))?,
        read_only,
        options: Vec::new(),
        idmap,
        propagation,
    })
}

/// Refuses a propagation that nothing would take: the host's mount that
/// holds `path` must be `needs` (`shared`, or `shared or slave`), as docker
/// checks, else the container's copy would be private whatever it asked.
fn check_propagation(path: &Path, needs: &str) -> std::result::Result<(), String> {
    let stat = rustix::fs::statx(
        rustix::fs::CWD,
        path,
        rustix::fs::AtFlags::empty(),
        rustix::fs::StatxFlags::MNT_ID,
    )
    .map_err(|e| format!("find its mount: {e}"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
    let id = stat.stx_mnt_id;
    let mount = crate::fsutil::mount_info(&mountinfo, id)
        .ok_or_else(|| format!("its mount ({id}) is not in /proc/self/mountinfo"))?;
    let shared = mount.optional.iter().any(|f| f.starts_with("shared:"));
    let slave = mount.optional.iter().any(|f| f.starts_with("master:"));
    let ok = match needs {
        "shared" => shared,
        _ => shared || slave,
    };
    let mount_point = mount.mount_point;
    match ok {
        true => Ok(()),
        false => Err(format!(
            "it is on {mount_point}, which is not a {needs} mount (nothing would propagate): make it shared (mount --make-shared {mount_point})"
        )),
    }
}

/// Parses `--tmpfs CTR[:OPTIONS]`: `OPTIONS` a comma list of mount flags
/// (`ro`, `rw`, `exec`, `noexec`, `suid`, `nosuid`, `nodev`, `noatime`, ...)
/// and the kernel's `tmpfs` options ([`TMPFS_KEYS`], `size=64m`).
pub fn parse_tmpfs(spec: &str) -> Result<Mount> {
    let bad = |why: &str| Error::msg(format!("invalid --tmpfs {spec:?}: {why}"));
    let (destination, options) = spec.split_once(':').unwrap_or((spec, ""));
    let options: Vec<String> = options
        .split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
    let mount = Mount {
        kind: Kind::Tmpfs,
        name: None,
        source: None,
        destination: destination_path(destination).map_err(|why| bad(&why))?,
        read_only: false,
        options,
        idmap: false,
        propagation: Propagation::default(),
    };
    let (attrs, _) = tmpfs_settings(&mount.options).map_err(|why| bad(&why))?;
    Ok(Mount {
        read_only: attrs & attr::RDONLY != 0,
        ..mount
    })
}

/// The mount flags (`MOUNT_ATTR_*`) and kernel options (`KEY`, `VALUE`) of a
/// `tmpfs` with `options`. docker's defaults: `nosuid`, `nodev`, `noexec`;
/// `nodev` stays whatever the options say (a device file of the container
/// must not open: `docs/security.md`).
pub fn tmpfs_settings(
    options: &[String],
) -> std::result::Result<(u64, Vec<(String, String)>), String> {
    let mut attrs = attr::NOSUID | attr::NODEV | attr::NOEXEC;
    let mut pairs = Vec::new();
    for option in options {
        if let Some((key, value)) = option.split_once('=') {
            if !TMPFS_KEYS.contains(&key) {
                return Err(format!(
                    "unknown option {key:?} (tmpfs takes {})",
                    TMPFS_KEYS.join(", ")
                ));
            }
            if value.is_empty() || value.contains('\0') {
                return Err(format!("option {key:?} needs a value"));
            }
            if !tmpfs_value_ok(key, value) {
                return Err(format!("{key}={value}: {}", tmpfs_values(key)));
            }
            pairs.retain(|(k, _): &(String, String)| k != key);
            pairs.push((key.to_string(), value.to_string()));
            continue;
        }
        let atime = attr::NOATIME | attr::RELATIME | attr::STRICTATIME;
        match option.as_str() {
            "ro" => attrs |= attr::RDONLY,
            "rw" => attrs &= !attr::RDONLY,
            "exec" => attrs &= !attr::NOEXEC,
            "noexec" => attrs |= attr::NOEXEC,
            "suid" => attrs &= !attr::NOSUID,
            "nosuid" => attrs |= attr::NOSUID,
            "nodev" => {}
            "dev" => {
                return Err(
                    "\"dev\" is not supported: device files in a container do not open".into(),
                )
            }
            "noatime" => attrs = attrs & !atime | attr::NOATIME,
            "relatime" => attrs = attrs & !atime | attr::RELATIME,
            "strictatime" => attrs = attrs & !atime | attr::STRICTATIME,
            "nodiratime" => attrs |= attr::NODIRATIME,
            "private" | "rprivate" => {}
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok((attrs, pairs))
}

/// Parses docker's `--mount` (`type=bind,source=/srv,target=/data,readonly`,
/// `type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1770`): the same mounts
/// as [`parse_volume`] and [`parse_tmpfs`], in docker's other spelling.
pub fn parse_mount(spec: &str) -> Result<Mount> {
    let bad = |why: &str| Error::msg(format!("invalid --mount {spec:?}: {why}"));
    let (mut kind, mut source, mut target, mut read_only) = (None, None, None, false);
    let mut idmap = false;
    let mut propagation = None;
    let mut options = Vec::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        // docker lowercases the keys and the type.
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let lower = value.map(str::to_ascii_lowercase);
        match (key.as_str(), value) {
            ("type", _) if lower.as_deref() == Some("bind") => kind = Some(Kind::Bind),
            ("type", _) if lower.as_deref() == Some("tmpfs") => kind = Some(Kind::Tmpfs),
            ("type", _) if lower.as_deref() == Some("volume") => kind = Some(Kind::Volume),
            ("type", Some(other)) => {
                return Err(bad(&format!(
                    "unknown type {other:?} (bind, volume or tmpfs)"
                )))
            }
            ("source" | "src", Some(v)) => source = Some(v.to_string()),
            ("target" | "destination" | "dst", Some(v)) => target = Some(v.to_string()),
            // Go's strconv.ParseBool, as docker reads it.
            ("readonly" | "ro", None | Some("1" | "t" | "T" | "true" | "TRUE" | "True")) => {
                read_only = true
            }
            ("readonly" | "ro", Some("0" | "f" | "F" | "false" | "FALSE" | "False")) => {
                read_only = false
            }
            ("bind-propagation", Some(v)) => match Propagation::parse(v) {
                Some(p) => propagation = Some(p),
                None => {
                    return Err(bad(&format!(
                        "unknown bind-propagation {v:?} (rprivate, private, rslave, slave, rshared, shared)"
                    )))
                }
            },
            ("idmap", None) => idmap = true,
            ("tmpfs-size", Some(v)) if !v.is_empty() => options.push(format!("size={v}")),
            ("tmpfs-mode", Some(v)) if !v.is_empty() => options.push(format!("mode={v}")),
            _ => return Err(bad(&format!("unknown or unsupported field {field:?}"))),
        }
    }
    let target = target.ok_or_else(|| bad("no target"))?;
    destination_path(&target).map_err(|why| bad(&why))?;
    if let (Some(source), Some(Kind::Bind)) = (&source, kind) {
        if !source.starts_with('/') && !source.starts_with('.') {
            return Err(bad("the source must be absolute or start with '.'"));
        }
    }
    if target.contains(':') || source.as_deref().unwrap_or_default().contains(':') {
        return Err(bad("a path with ':' is not supported"));
    }
    if let (Some(source), Some(Kind::Volume)) = (&source, kind) {
        if source.starts_with('/') || source.starts_with('.') {
            return Err(bad(
                "a volume's source is its name (type=bind takes a path)",
            ));
        }
    }
    match kind {
        None => Err(bad("no type (bind, volume or tmpfs)")),
        Some(Kind::Bind | Kind::Volume) => {
            if !options.is_empty() {
                return Err(bad("tmpfs-* fields are for type=tmpfs"));
            }
            let source = source.ok_or_else(|| match kind {
                Some(Kind::Volume) => bad("no source (tupper has no anonymous volumes)"),
                _ => bad("no source"),
            })?;
            if propagation.is_some() && kind == Some(Kind::Volume) {
                return Err(bad("bind-propagation is for type=bind"));
            }
            let propagation = propagation.map(Propagation::name);
            let options = [(read_only, "ro"), (idmap, "idmap")]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, o)| *o)
                .chain(propagation)
                .collect::<Vec<_>>()
                .join(",");
            parse_volume(&format!("{source}:{target}:{options}")).map_err(|e| bad(e.what()))
        }
        Some(Kind::Tmpfs) => {
            if source.is_some() {
                return Err(bad("a tmpfs has no source"));
            }
            if propagation.is_some_and(|p| p.needs().is_some()) {
                return Err(bad("bind-propagation is for type=bind"));
            }
            if idmap {
                return Err(bad("idmap is for type=bind"));
            }
            if read_only {
                options.push("ro".to_string());
            }
            let joined = options.join(",");
            parse_tmpfs(&format!("{target}:{joined}")).map_err(|e| bad(e.what()))
        }
    }
}

/// What the kernel takes for a `tmpfs` option (`mm/shmem.c`), in words.
fn tmpfs_values(key: &str) -> &'static str {
    match key {
        "size" => "a size is a number, with k, m, g, t, p, e or %",
        "nr_blocks" | "nr_inodes" => "a number, with k, m, g, t, p or e",
        "mode" => "an octal mode, at most 7777",
        "uid" | "gid" => "a number",
        _ => "never, always, within_size or advise",
    }
}

/// Whether the kernel takes `value` for `tmpfs` option `key` (checked
/// before anything changes, so that the error names the option: the
/// kernel's own says only `Invalid argument`).
fn tmpfs_value_ok(key: &str, value: &str) -> bool {
    let number_with = |suffixes: &str| {
        let digits = value.trim_end_matches(|c: char| suffixes.contains(c.to_ascii_lowercase()));
        value.len() - digits.len() <= 1 && !digits.is_empty() && digits.parse::<u64>().is_ok()
    };
    match key {
        "size" => number_with("kmgtpe%"),
        "nr_blocks" | "nr_inodes" => number_with("kmgtpe"),
        "mode" => u32::from_str_radix(value, 8).is_ok_and(|m| m <= 0o7777),
        "uid" | "gid" => value.parse::<u32>().is_ok(),
        "huge" => matches!(value, "never" | "always" | "within_size" | "advise"),
        _ => false,
    }
}

/// Cleans a destination as docker does (`filepath.Clean`): it must be
/// absolute, not `/`, and not in `/proc` or `/sys` (the kernel's
/// filesystems, whose protections are laid over them after the user's mounts).
fn destination_path(path: &str) -> std::result::Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("the container path {path:?} must be absolute"));
    }
    if path.contains('\0') {
        return Err("the container path contains a NUL byte".into());
    }
    let mut parts: Vec<&str> = Vec::new();
    for comp in Path::new(path).components() {
        match comp {
            Component::Normal(name) => parts.push(name.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if parts.is_empty() {
        return Err("the container path can not be '/'".into());
    }
    if matches!(parts[0], "proc" | "sys") {
        return Err(format!(
            "mounts in /{} are not supported (the kernel's own filesystem)",
            parts[0]
        ));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Refuses two mounts on the same destination (docker: "Duplicate mount point").
pub fn check(mounts: &[Mount]) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if mounts[..i].iter().any(|o| o.destination == m.destination) {
            return Err(Error::msg(format!(
                "duplicate mount point {}: two mounts on one path",
                m.destination
            )));
        }
    }
    Ok(())
}

/// Checks `mounts` against the host, before anything changes: a bind mount's
/// source must exist (as podman, unlike docker's `-v`, which would make a
/// directory); it is made absolute, its symlinks resolved. The result is
/// ordered by depth (`/a` before `/a/b`), as docker mounts them.
pub fn resolve(mounts: &[Mount]) -> Result<Vec<Resolved>> {
    check(mounts)?;
    let mut resolved = Vec::with_capacity(mounts.len());
    for m in mounts {
        let mut m = m.clone();
        let dir = match (m.kind, m.source.as_deref()) {
            (Kind::Bind, Some(source)) => {
                let path = std::fs::canonicalize(source)
                    .map_err(|e| Error::os(format!("volume {source} -> {}", m.destination), e))?;
                let meta = std::fs::metadata(&path)
                    .map_err(|e| Error::os(format!("volume {source} -> {}", m.destination), e))?;
                let shown = path_string(&path, source)?;
                if let Some(needs) = m.propagation.needs() {
                    check_propagation(&path, needs).map_err(|why| {
                        Error::msg(format!(
                            "volume {source} -> {}: {}: {why}",
                            m.destination,
                            m.propagation.name()
                        ))
                    })?;
                }
                m.source = Some(shown);
                meta.is_dir()
            }
            (Kind::Bind, None) => {
                return Err(Error::msg(format!(
                    "volume -> {}: no host path",
                    m.destination
                )))
            }
            // Made in the store when the container is (its path given by
            // the store beforehand): always a directory.
            (Kind::Volume, Some(_)) => true,
            (Kind::Volume, None) => {
                return Err(Error::msg(format!(
                    "volume {} -> {}: no path in the store",
                    m.name.as_deref().unwrap_or_default(),
                    m.destination
                )))
            }
            (Kind::Tmpfs, _) => {
                tmpfs_settings(&m.options).map_err(|why| {
                    Error::msg(format!("invalid --tmpfs {}: {why}", m.destination))
                })?;
                true
            }
        };
        resolved.push(Resolved { mount: m, dir });
    }
    resolved.sort_by_key(|r| r.mount.destination.matches('/').count());
    // A file can not hold a mount point: refused here, before the child
    // would make the outer mounts' missing directories on the host.
    for file in resolved.iter().filter(|r| !r.dir) {
        let below = format!("{}/", file.mount.destination);
        if let Some(inner) = resolved
            .iter()
            .find(|r| r.mount.destination.starts_with(&below))
        {
            return Err(Error::msg(format!(
                "volume {} -> {}: a file, and {} is to be mounted below it",
                file.mount.source.as_deref().unwrap_or_default(),
                file.mount.destination,
                inner.mount.destination
            )));
        }
    }
    Ok(resolved)
}

/// A resolved host path as UTF-8 (the record is JSON).
fn path_string(path: &Path, given: &str) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| Error::msg(format!("volume {given}: the host path is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idmap_is_a_bind_mounts_option() {
        let m = parse_volume("/srv:/data:idmap,ro").unwrap();
        assert!(m.idmap && m.read_only);
        assert!(!parse_volume("/srv:/data").unwrap().idmap);
        // A named volume is mapped anyway: the option changes nothing.
        assert!(!parse_volume("data:/data:idmap").unwrap().idmap);
        let m = parse_mount("type=bind,source=/srv,target=/data,idmap").unwrap();
        assert!(m.idmap && !m.read_only);
        assert!(parse_mount("type=tmpfs,target=/t,idmap").is_err());
    }

    #[test]
    fn volumes_parse_as_docker_writes_them() {
        let m = parse_volume("/srv/data:/data").unwrap();
        assert_eq!(m.kind, Kind::Bind);
        assert_eq!(m.source.as_deref(), Some("/srv/data"));
        assert_eq!(m.destination, "/data");
        assert!(!m.read_only);
        assert!(parse_volume("/a:/b:ro").unwrap().read_only);
        assert!(!parse_volume("/a:/b:ro,rw").unwrap().read_only);
        assert!(parse_volume("/a:/b:rprivate,ro").unwrap().read_only);
        assert_eq!(
            parse_volume("./x:/b/../c/./d/").unwrap().destination,
            "/c/d"
        );
    }

    #[test]
    fn volumes_refuse_what_tupper_does_not_do() {
        for bad in [
            "/data",
            "Name:/data",
            "-x:/data",
            ":/data",
            "/a:data",
            "/a:/",
            "/a:/x/..",
            "/a:/proc/x",
            "/a:/sys",
            "/a:/b:ro:x",
            "/a:/b:rslav",
            "data:/b:rslave",
            "/a:/b:Z",
            "/a:/b:nocopy",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad} was taken");
        }
        let e = parse_volume("data").unwrap_err().to_string();
        assert!(e.contains("no anonymous volumes"), "{e}");
    }

    #[test]
    fn a_source_that_is_not_a_path_is_a_named_volume() {
        let m = parse_volume("data:/var/lib/db:ro").unwrap();
        assert_eq!(m.kind, Kind::Volume);
        assert_eq!(m.name.as_deref(), Some("data"));
        assert_eq!(m.source, None);
        assert_eq!(m.destination, "/var/lib/db");
        assert!(m.read_only);
        let m = parse_mount("type=volume,source=data,target=/var/lib/db,readonly").unwrap();
        assert_eq!(m, parse_volume("data:/var/lib/db:ro").unwrap());
        for bad in [
            "type=volume,target=/d",
            "type=volume,source=/abs,target=/d",
            "type=volume,source=Up,target=/d",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad} was taken");
        }
        // Resolved with the store's path: a directory, never looked up on
        // the host before the store makes it.
        let mut m = parse_volume("data:/d").unwrap();
        assert!(resolve(std::slice::from_ref(&m)).is_err());
        m.source = Some("/nonexistent/volumes/data".into());
        assert!(resolve(&[m]).unwrap()[0].dir);
    }

    #[test]
    fn mount_is_dockers_other_spelling() {
        let m = parse_mount("type=bind,source=/srv,target=/data,readonly").unwrap();
        assert_eq!(m, parse_volume("/srv:/data:ro").unwrap());
        let m = parse_mount("Type=BIND,Source=/srv,target=/data,READONLY=True").unwrap();
        assert_eq!(m, parse_volume("/srv:/data:ro").unwrap());
        let e = parse_mount("type=tmpfs,src=foo,target=/t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a tmpfs has no source"), "{e}");
        let m = parse_mount("type=bind,src=./x,dst=/d,ro=false,bind-propagation=rprivate").unwrap();
        assert_eq!(m, parse_volume("./x:/d").unwrap());
        let m = parse_mount("type=tmpfs,destination=/run,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!(m, parse_tmpfs("/run:size=64m,mode=1770").unwrap());
        assert!(parse_mount("type=tmpfs,target=/t,ro").unwrap().read_only);
        for bad in [
            "source=/a,target=/b",
            "type=bind,target=/b",
            "type=bind,source=/a",
            "type=bind,source=/a,target=/b,tmpfs-size=1m",
            "type=tmpfs,source=/a,target=/b",
            "type=bind,source=/a,target=/b,bind-propagation=sideways",
            "type=volume,source=data,target=/b,bind-propagation=rslave",
            "type=tmpfs,target=/b,bind-propagation=rshared",
            "type=bind,source=/a,target=/proc/x",
            "type=bind,source=/a,target=/b,consistency=cached",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad} was taken");
        }
    }

    #[test]
    fn propagation_is_docker_s() {
        for (given, want) in [
            ("/a:/b", Propagation::Rprivate),
            ("/a:/b:rslave", Propagation::Rslave),
            ("/a:/b:ro,slave", Propagation::Slave),
            ("/a:/b:rshared", Propagation::Rshared),
            ("/a:/b:shared,ro", Propagation::Shared),
            ("/a:/b:private", Propagation::Private),
            ("data:/b:rprivate", Propagation::Rprivate),
        ] {
            assert_eq!(parse_volume(given).unwrap().propagation, want, "{given}");
        }
        let m = parse_mount("type=bind,source=/a,target=/b,bind-propagation=rslave").unwrap();
        assert_eq!(m, parse_volume("/a:/b:rslave").unwrap());
        // The record keeps it only when not the default.
        let json = serde_json::to_string(&parse_volume("/a:/b").unwrap()).unwrap();
        assert!(!json.contains("propagation"), "{json}");
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains(r#""propagation":"rslave""#), "{json}");
        use linux_raw_sys::general::{MS_PRIVATE, MS_SHARED, MS_SLAVE};
        assert_eq!(Propagation::Slave.flag(), u64::from(MS_SLAVE));
        assert_eq!(Propagation::Rshared.flag(), u64::from(MS_SHARED));
        assert_eq!(Propagation::Private.flag(), u64::from(MS_PRIVATE));
    }

    #[test]
    fn tmpfs_defaults_and_options() {
        let m = parse_tmpfs("/run").unwrap();
        assert_eq!(m.kind, Kind::Tmpfs);
        assert_eq!(m.destination, "/run");
        let (attrs, pairs) = tmpfs_settings(&m.options).unwrap();
        assert_eq!(attrs, attr::NOSUID | attr::NODEV | attr::NOEXEC);
        assert!(pairs.is_empty());
        let m = parse_tmpfs("/t:exec,size=64m,mode=1770,ro,size=1m").unwrap();
        assert!(m.read_only);
        let (attrs, pairs) = tmpfs_settings(&m.options).unwrap();
        assert_eq!(attrs, attr::NOSUID | attr::NODEV | attr::RDONLY);
        assert_eq!(
            pairs,
            vec![
                ("mode".to_string(), "1770".to_string()),
                ("size".to_string(), "1m".to_string())
            ]
        );
        for good in [
            "/t:size=64m",
            "/t:size=50%",
            "/t:size=1024",
            "/t:nr_inodes=10k",
            "/t:mode=0700",
            "/t:uid=1000",
            "/t:huge=within_size",
        ] {
            assert!(parse_tmpfs(good).is_ok(), "{good} was refused");
        }
        let e = parse_tmpfs("/t:size=lots").unwrap_err().to_string();
        assert!(e.contains("size=lots: a size is"), "{e}");
        for bad in [
            "/t:size=1mm",
            "/t:mode=9999",
            "/t:mode=17777",
            "/t:uid=abc",
            "/t:huge=bogus",
            "/t:nr_inodes=5%",
        ] {
            assert!(parse_tmpfs(bad).is_err(), "{bad} was taken");
        }
        for bad in [
            "t",
            "/",
            "/t:dev",
            "/t:bogus",
            "/t:size=",
            "/t:user=1",
            "/proc",
        ] {
            assert!(parse_tmpfs(bad).is_err(), "{bad} was taken");
        }
    }

    #[test]
    fn duplicates_are_refused_and_order_is_by_depth() {
        let a = parse_volume("/:/a/b").unwrap();
        let b = parse_tmpfs("/a").unwrap();
        assert!(check(&[a.clone(), parse_tmpfs("/a/b/").unwrap()]).is_err());
        let r = resolve(&[a, b]).unwrap();
        assert_eq!(r[0].mount.destination, "/a");
        assert_eq!(r[1].mount.destination, "/a/b");
        assert!(r[0].dir && r[1].dir);
        assert!(resolve(&[parse_volume("/no/such/dir/x:/x").unwrap()]).is_err());
        // A file with a mount below it.
        let file = parse_volume("/proc/self/status:/a/f").unwrap();
        let e = resolve(&[parse_tmpfs("/a/f/g").unwrap(), file.clone()]).unwrap_err();
        assert!(e.to_string().contains("a file, and /a/f/g"), "{e}");
        assert!(resolve(&[parse_tmpfs("/a/fg").unwrap(), file]).is_ok());
    }
}
