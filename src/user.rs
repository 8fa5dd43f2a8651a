//! `run -u USER[:GROUP]` and `--group-add GROUP`: who the command runs as,
//! found in the image's `/etc/passwd` and `/etc/group` by runc's rules
//! (`libcontainer/user`, as docker uses it), before the store changes.
//!
//! The parsing and the resolution are pure ([`parse_passwd`], [`parse_group`],
//! [`resolve`]); [`resolve_in_image`] reads the two files from an image's
//! directory with `RESOLVE_IN_ROOT`, so a symlink of the image resolves inside
//! the image, never to a host file. See `docs/decisions.md`.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{self as rfs, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// The largest uid or gid accepted (runc's range: `0` to `2^31 - 1`).
pub const MAX_ID: u32 = i32::MAX as u32;

/// The largest `/etc/passwd` or `/etc/group` read from an image.
const MAX_FILE: u64 = 16 << 20;

/// One line of `/etc/passwd` (`name:password:uid:gid:gecos:home:shell`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// The user name.
    pub name: String,
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// The home directory.
    pub home: String,
}

/// One line of `/etc/group` (`name:password:gid:member,member,...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// The group name.
    pub name: String,
    /// The gid.
    pub gid: u32,
    /// The user names listed as members.
    pub members: Vec<String>,
}

/// Who the command runs as: what `-u` and `--group-add` resolve to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The uid (real, effective and saved).
    pub uid: u32,
    /// The gid (real, effective and saved).
    pub gid: u32,
    /// The supplementary groups, as docker sets them: the gid, the groups
    /// of `/etc/group` that list the user (without an explicit `:GROUP`),
    /// then the `--group-add` ones; each once.
    pub groups: Vec<u32>,
    /// `HOME` unless `-e HOME=...` is given: the passwd entry's home
    /// directory, `/` without an entry; `/root` without `-u`.
    pub home: String,
}

/// The ids the child sets (see [`crate::child`]), made before the clone.
#[derive(Debug, Clone)]
pub struct Ids {
    /// The uid.
    pub uid: rustix::process::Uid,
    /// The gid.
    pub gid: rustix::process::Gid,
    /// The supplementary groups (`setgroups`).
    pub groups: Vec<rustix::process::Gid>,
}

impl Resolved {
    /// The ids for the child.
    pub fn ids(&self) -> Ids {
        Ids {
            uid: rustix::process::Uid::from_raw(self.uid),
            gid: rustix::process::Gid::from_raw(self.gid),
            groups: self
                .groups
                .iter()
                .map(|g| rustix::process::Gid::from_raw(*g))
                .collect(),
        }
    }
}

impl Ids {
    /// `UID:GID` and the groups, as an error shows them (`1000:1000
    /// (groups 1000,27)`).
    pub fn shown(&self) -> String {
        let groups: Vec<String> = self.groups.iter().map(|g| g.as_raw().to_string()).collect();
        format!(
            "{}:{} (groups {})",
            self.uid.as_raw(),
            self.gid.as_raw(),
            groups.join(",")
        )
    }
}

/// A numeric id: only digits (runc takes any string `strconv.Atoi` takes as
/// an id, never as a name). `Ok(None)` for a name.
fn numeric(s: &str) -> Result<Option<u32>> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u64>() {
        Ok(n) if n <= MAX_ID as u64 => Ok(Some(n as u32)),
        _ => Err(Error::msg(format!(
            "invalid id {s}: uids and gids must be in range 0-{MAX_ID}"
        ))),
    }
}

/// The fields of one line, split at `:` (spaces around the line ignored).
fn fields(line: &str) -> Vec<&str> {
    line.trim().split(':').collect()
}

/// Parses `/etc/passwd`. Blank lines, comments (`#`) and lines whose uid or
/// gid is not a number in range are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let f = fields(line);
            let id = |i: usize| f.get(i).and_then(|s| numeric(s).ok().flatten());
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: id(2)?,
                gid: id(3)?,
                home: f.get(5).copied().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// Parses `/etc/group`. Blank lines, comments (`#`) and lines whose gid is
/// not a number in range are skipped.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let f = fields(line);
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f.get(2).and_then(|s| numeric(s).ok().flatten())?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `-u USER[:GROUP]` (`None`: the default user, root) and
/// `--group-add` entries against an image's entries, by runc's rules:
///
/// - a name must have a passwd entry (the first one wins); a number is a uid,
///   with or without an entry (without: gid 0, home `/`); an empty USER is
///   uid 0;
/// - the gid is the entry's unless `:GROUP` is given: a group name must be in
///   `/etc/group`, a number need not be;
/// - with a passwd entry and no `:GROUP`, the groups of `/etc/group` that list
///   the user's name are supplementary groups;
/// - a `--group-add` is a group name or gid of `/etc/group`, or a number.
pub fn resolve(
    user: Option<&str>,
    group_add: &[String],
    passwd: &[PasswdEntry],
    group: &[GroupEntry],
) -> Result<Resolved> {
    let spec = user.unwrap_or("");
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((_, g)) if g.contains(':') => {
            return Err(Error::msg(format!(
                "invalid user {spec:?}: use USER[:GROUP], a name or a number each"
            )))
        }
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (spec, None),
    };
    if spec.contains('\0') {
        return Err(Error::msg(format!("invalid user {spec:?}")));
    }
    let uid_arg = numeric(user_arg)?;
    let entry = passwd.iter().find(|e| match uid_arg {
        _ if user_arg.is_empty() => e.uid == 0,
        Some(uid) => e.uid == uid,
        None => e.name == user_arg,
    });
    let (uid, mut gid, home, name) = match (entry, uid_arg) {
        (Some(e), _) => (e.uid, e.gid, e.home.as_str(), Some(e.name.as_str())),
        (None, Some(uid)) => (uid, 0, "/", None),
        (None, None) if user_arg.is_empty() => (0, 0, "/", None),
        (None, None) => {
            return Err(Error::msg(format!(
                "unable to find user {user_arg}: no matching entries in passwd file"
            )))
        }
    };
    let mut supplementary = Vec::new();
    match (group_arg, name) {
        (Some(g), _) => {
            let gid_arg = numeric(g)?;
            gid = match group.iter().find(|e| match gid_arg {
                Some(n) => e.gid == n,
                None => e.name == g,
            }) {
                Some(e) => e.gid,
                None => gid_arg.ok_or_else(|| no_group(g))?,
            };
        }
        (None, Some(name)) => supplementary.extend(
            group
                .iter()
                .filter(|e| e.members.iter().any(|m| m == name))
                .map(|e| e.gid),
        ),
        (None, None) => {}
    }
    for g in group_add {
        let found = group
            .iter()
            .find(|e| e.name == *g || e.gid.to_string() == *g);
        supplementary.push(match found {
            Some(e) => e.gid,
            None => numeric(g)?.ok_or_else(|| no_group(g))?,
        });
    }
    let mut groups = vec![gid];
    for g in supplementary {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let home = match (user, home) {
        (None, _) => "/root",
        (Some(_), "") => "/",
        (Some(_), h) => h,
    };
    Ok(Resolved {
        uid,
        gid,
        groups,
        home: home.to_string(),
    })
}

fn no_group(name: &str) -> Error {
    Error::msg(format!(
        "unable to find group {name}: no matching entries in group file"
    ))
}

/// Reads `path` (absolute, in the image) from the root `root` of image
/// `image`, with `RESOLVE_IN_ROOT`: a symlink resolves inside the image
/// (`/etc/passwd -> /host/file` is the image's `/host/file`), never outside.
/// A missing file is `None` (no entries, as runc has it); anything but a
/// regular file is refused before it is opened for reading (a FIFO would
/// block, a device node would be read).
pub fn read_in_root(root: BorrowedFd<'_>, image: &str, path: &str) -> Result<Option<Vec<u8>>> {
    let what = || format!("read {path} of image {image}");
    let open = |flags: OFlags| {
        rfs::openat2(
            root,
            path,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
        )
    };
    let probe = match open(OFlags::PATH) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(Error::os(what(), e)),
    };
    let st = rfs::fstat(&probe).map_err(|e| Error::os(what(), e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::msg(format!("{}: not a regular file", what())));
    }
    let too_big = || Error::msg(format!("{}: larger than {} MiB", what(), MAX_FILE >> 20));
    if st.st_size as u64 > MAX_FILE {
        return Err(too_big());
    }
    // Images are read-only subvolumes; still, the file read must be the one
    // checked.
    let fd = open(OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY)
        .map_err(|e| Error::os(what(), e))?;
    let again = rfs::fstat(&fd).map_err(|e| Error::os(what(), e))?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
        return Err(Error::msg(format!("{}: it changed while read", what())));
    }
    let mut out = Vec::with_capacity(st.st_size as usize);
    let mut buf = [0u8; 8192];
    loop {
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) => return Ok(Some(out)),
            Ok(n) if (out.len() + n) as u64 <= MAX_FILE => out.extend_from_slice(&buf[..n]),
            Ok(_) => return Err(too_big()),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::os(what(), e)),
        }
    }
}

/// Resolves `-u` and `--group-add` (see [`resolve`]) in image `name`, whose
/// root is `root`: its `/etc/passwd` and `/etc/group`, read with
/// [`read_in_root`].
pub fn resolve_in_image(
    root: BorrowedFd<'_>,
    name: &str,
    user: Option<&str>,
    group_add: &[String],
) -> Result<Resolved> {
    let read = |path: &str| -> Result<String> {
        let bytes = read_in_root(root.as_fd(), name, path)?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let passwd = parse_passwd(&read("/etc/passwd")?);
    let group = parse_group(&read("/etc/group")?);
    resolve(user, group_add, &passwd, &group).map_err(|e| {
        // docker's words, and where they were looked up.
        match e.what().starts_with("unable to find") {
            true => e.with_advice(format!(
                "looked up in /etc/passwd and /etc/group of image {name}; a number needs no entry"
            )),
            false => e,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment

alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:100::/home/bob:/bin/sh
broken:x:notanumber:1:::
nohome:x:1002:1002:::
alice:x:2000:2000::/elsewhere:/bin/sh
";

    const GROUP: &str = "\
root:x:0:
users:x:100:alice
alice:x:1000:
wheel:x:10:root,alice , carol
staff:x:50:bob
bad:x:x:alice
";

    fn go(user: Option<&str>, add: &[&str]) -> Result<Resolved> {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve(user, &add, &parse_passwd(PASSWD), &parse_group(GROUP))
    }

    fn ids(r: &Resolved) -> (u32, u32, Vec<u32>, &str) {
        (r.uid, r.gid, r.groups.clone(), r.home.as_str())
    }

    #[test]
    fn parses_the_files() {
        let p = parse_passwd(PASSWD);
        assert_eq!(p.len(), 5, "{p:?}");
        assert_eq!(
            p[1],
            PasswdEntry {
                name: "alice".into(),
                uid: 1000,
                gid: 1000,
                home: "/home/alice".into()
            }
        );
        let g = parse_group(GROUP);
        assert_eq!(g.len(), 5, "{g:?}");
        assert_eq!(g[3].members, vec!["root", "alice", "carol"]);
        assert!(g[0].members.is_empty());
        assert_eq!(parse_passwd(""), vec![]);
    }

    #[test]
    fn a_name_takes_its_entry_and_groups() {
        assert_eq!(
            ids(&go(Some("alice"), &[]).unwrap()),
            (1000, 1000, vec![1000, 100, 10], "/home/alice")
        );
        assert_eq!(
            ids(&go(Some("bob"), &[]).unwrap()),
            (1001, 100, vec![100, 50], "/home/bob")
        );
        // An entry without a home: `/`.
        assert_eq!(go(Some("nohome"), &[]).unwrap().home, "/");
    }

    #[test]
    fn a_number_needs_no_entry() {
        assert_eq!(
            ids(&go(Some("1234"), &[]).unwrap()),
            (1234, 0, vec![0], "/")
        );
        // With an entry: its gid, home and the name's groups.
        assert_eq!(
            ids(&go(Some("1000"), &[]).unwrap()),
            (1000, 1000, vec![1000, 100, 10], "/home/alice")
        );
        assert_eq!(
            ids(&go(Some("0"), &[]).unwrap()),
            (0, 0, vec![0, 10], "/root")
        );
        assert_eq!(go(Some("007"), &[]).unwrap().uid, 7);
    }

    #[test]
    fn an_explicit_group_replaces_the_gid_and_the_entrys_groups() {
        assert_eq!(
            ids(&go(Some("alice:staff"), &[]).unwrap()),
            (1000, 50, vec![50], "/home/alice")
        );
        assert_eq!(
            ids(&go(Some("1234:4321"), &[]).unwrap()),
            (1234, 4321, vec![4321], "/")
        );
        assert_eq!(go(Some("1234:wheel"), &[]).unwrap().gid, 10);
        // An empty GROUP is none.
        assert_eq!(go(Some("alice:"), &[]).unwrap().gid, 1000);
    }

    #[test]
    fn group_add_by_name_or_number() {
        assert_eq!(
            go(Some("1234"), &["staff", "777", "10", "0"])
                .unwrap()
                .groups,
            vec![0, 50, 777, 10]
        );
        // Without -u: root, HOME stays /root.
        assert_eq!(
            ids(&go(None, &["users"]).unwrap()),
            (0, 0, vec![0, 10, 100], "/root")
        );
    }

    #[test]
    fn the_first_entry_wins() {
        assert_eq!(go(Some("alice"), &[]).unwrap().uid, 1000);
    }

    #[test]
    fn unknown_names_and_bad_ids_are_one_line_errors() {
        for (user, add, want) in [
            (
                "nosuch",
                &[][..],
                "unable to find user nosuch: no matching entries in passwd file",
            ),
            (
                "alice:nogroup",
                &[],
                "unable to find group nogroup: no matching entries in group file",
            ),
            (
                "alice",
                &["nogroup"],
                "unable to find group nogroup: no matching entries in group file",
            ),
            ("broken", &[], "unable to find user broken"),
            ("2147483648", &[], "range 0-2147483647"),
            ("1:99999999999", &[], "range"),
            ("a:b:c", &[], "USER[:GROUP]"),
        ] {
            let e = go(Some(user), add).unwrap_err().to_string();
            assert!(e.contains(want) && !e.contains('\n'), "{user}: {e}");
        }
    }

    #[test]
    fn no_files_no_entries() {
        let r = resolve(Some("1000"), &[], &[], &[]).unwrap();
        assert_eq!(ids(&r), (1000, 0, vec![0], "/"));
        assert!(resolve(Some("root"), &[], &[], &[]).is_err());
        assert_eq!(
            ids(&resolve(Some(""), &[], &[], &[]).unwrap()),
            (0, 0, vec![0], "/")
        );
    }

    #[test]
    fn shown_names_the_ids() {
        let r = go(Some("alice"), &[]).unwrap();
        assert_eq!(r.ids().shown(), "1000:1000 (groups 1000,100,10)");
    }
}
