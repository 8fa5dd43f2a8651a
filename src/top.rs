//! `tupper top`: the processes of a running container, in the columns of
//! docker's `top` (`ps -ef`: UID PID PPID C STIME TTY TIME CMD), read from
//! `/proc`: every process whose PID namespace is that of the container's PID 1
//! (its command, what it started, and `exec`'s commands), or, for one that
//! shares a PID namespace (`--pid`), every process of its cgroup (see
//! [`Store::members`]). PIDs are the host's, as docker shows them.

use crate::container::{Record, Status};
use crate::error::{Error, Result};
use crate::store::Store;
use std::os::fd::AsFd;

/// One process of a container, as `ps -ef` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Its effective uid (as its user namespace sees it, with
    /// `--userns auto`).
    pub uid: u32,
    /// Its host pid.
    pub pid: i32,
    /// Its parent's host pid (0 for the container's PID 1 seen from inside;
    /// here the host's view: tupper's pid).
    pub ppid: i32,
    /// Its CPU time in clock ticks (user and system).
    pub cpu_ticks: u64,
    /// When it started, seconds since the epoch.
    pub start_unix: i64,
    /// Its controlling terminal (`pts/0`), `?` without one.
    pub tty: String,
    /// Its command line, or `[comm]` when it has none (a kernel-made name).
    pub cmd: String,
}

impl Store {
    /// The processes of running container `name_or_id` (`tupper top`), by pid.
    pub fn container_processes(&self, name_or_id: &str) -> Result<Vec<Process>> {
        let rec = self.find_container(name_or_id)?;
        let not_running = || Error::msg(format!("top {name_or_id}: it is not running"));
        if rec.status != Status::Running {
            return Err(not_running());
        }
        // The pidfd keeps PID 1's number from being reused while we look.
        let (pid1, _pidfd) = self.pin_pid1(&rec.id).ok_or_else(not_running)?;
        let pids = self.members(&rec, pid1)?.ok_or_else(not_running)?;
        let boot = boot_time()?;
        let ticks = clock_ticks();
        let mut list: Vec<Process> = pids
            .into_iter()
            .filter_map(|pid| read_process(pid, boot, ticks))
            .collect();
        // With a user namespace of its own, its uids as it sees them.
        if rec.security.as_ref().is_some_and(|s| s.userns.is_some()) {
            let map = std::fs::read_to_string(format!("/proc/{pid1}/uid_map")).unwrap_or_default();
            for p in &mut list {
                p.uid = inside(p.uid, &map);
            }
        }
        list.sort_by_key(|p| p.pid);
        Ok(list)
    }
}

impl Store {
    /// The host pids of the processes of running container `rec`, whose
    /// PID 1 is `pid1`; `None` once `pid1` has ended. With a PID namespace
    /// of its own, those of the namespace ([`processes_of`]) but those in
    /// the cgroup of a container that joined it (`--pid container:`, see
    /// [`crate::pidns`]); sharing one, those of its cgroup.
    pub(crate) fn members(&self, rec: &Record, pid1: i32) -> Result<Option<Vec<i32>>> {
        if crate::pidns::shares(rec.pid_mode.as_deref()) {
            if namespace(pid1).is_none() {
                return Ok(None);
            }
            let mut pids = Vec::new();
            for dir in &rec.cgroups {
                for pid in crate::cgroup::procs(dir) {
                    if !pids.contains(&pid) {
                        pids.push(pid);
                    }
                }
            }
            return Ok(Some(pids));
        }
        let Some(pids) = processes_of(pid1)? else {
            return Ok(None);
        };
        // Whether the container of each ID met is one that joined.
        let mut joiners: Vec<(String, bool)> = Vec::new();
        Ok(Some(
            pids.into_iter()
                .filter(|&pid| {
                    let Some(other) = other_container(pid, &rec.id) else {
                        return true;
                    };
                    let joined = match joiners.iter().find(|(id, _)| *id == other) {
                        Some((_, joined)) => *joined,
                        None => {
                            let joined = self.read_stored(&other).is_some_and(|r| {
                                crate::pidns::shares(r.pid_mode.as_deref())
                                    && r.cgroups.iter().any(|d| d.ends_with(&format!("/{other}")))
                            });
                            joiners.push((other, joined));
                            joined
                        }
                    };
                    !joined
                })
                .collect(),
        ))
    }
}

/// The ID of the container (not `own`) whose cgroup process `pid` is in,
/// if any: a directory of `/proc/PID/cgroup` named like a container ID.
fn other_container(pid: i32, own: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        let last = path.rsplit('/').next()?;
        (last != own && crate::names::is_id(last)).then(|| last.to_string())
    })
}

/// Host uid `host` as a user namespace whose `uid_map` is `map` sees it:
/// the kernel's overflow uid (65534) when the map has none for it.
fn inside(host: u32, map: &str) -> u32 {
    map.lines()
        .find_map(|line| {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            match f[..] {
                [inner, outer, count] if (outer..outer + count).contains(&u64::from(host)) => {
                    u32::try_from(inner + (u64::from(host) - outer)).ok()
                }
                _ => None,
            }
        })
        .unwrap_or(65_534)
}

/// The host pids of the processes in the PID namespace of `pid1` (a
/// container's: its command, what it started, `exec`'s commands), in
/// `/proc`'s order; `None` once `pid1` has ended. A process that ends
/// meanwhile may or may not be listed.
pub(crate) fn processes_of(pid1: i32) -> Result<Option<Vec<i32>>> {
    let Some(ns) = namespace(pid1) else {
        return Ok(None);
    };
    let proc_dir = std::fs::read_dir("/proc").map_err(|e| Error::os("read /proc", e))?;
    Ok(Some(
        proc_dir
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| namespace(pid) == Some(ns))
            .collect(),
    ))
}

/// The clock ticks per second of /proc's times: the kernel's `USER_HZ`,
/// which is 100 on every Linux architecture but alpha (what
/// `sysconf(_SC_CLK_TCK)` returns; rustix's `param` feature would read the
/// auxiliary vector at every start for it).
pub fn clock_ticks() -> u64 {
    100
}

/// The device and inode of the PID namespace of process `pid`.
fn namespace(pid: i32) -> Option<(u64, u64)> {
    let st = rustix::fs::stat(format!("/proc/{pid}/ns/pid")).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// When the system booted, seconds since the epoch (`btime` of /proc/stat).
fn boot_time() -> Result<i64> {
    let text =
        std::fs::read_to_string("/proc/stat").map_err(|e| Error::os("read /proc/stat", e))?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
        .ok_or_else(|| Error::msg("read /proc/stat: no btime line"))
}

/// Process `pid` from its /proc files; `None` if it ended meanwhile.
fn read_process(pid: i32, boot: i64, ticks: u64) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    parse_process(pid, &stat, &status, &cmdline, boot, ticks)
}

/// Builds a [`Process`] from the texts of /proc/PID/stat, status and cmdline.
fn parse_process(
    pid: i32,
    stat: &str,
    status: &str,
    cmdline: &[u8],
    boot: i64,
    ticks: u64,
) -> Option<Process> {
    // The name is in parentheses and may hold anything, ')' too.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = &stat[open + 1..close];
    // Fields from the state on: state ppid pgrp session tty_nr tpgid flags
    // minflt cminflt majflt cmajflt utime stime cutime cstime priority nice
    // num_threads itrealvalue starttime ...
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
    let ppid = f.get(1)?.parse().ok()?;
    let tty_nr = f.get(4)?.parse::<i64>().ok()?;
    let cpu_ticks = num(11)? + num(12)?;
    let start_ticks = num(19)?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let cmd = if args.is_empty() {
        format!("[{comm}]")
    } else {
        args.join(" ")
    };
    Some(Process {
        uid,
        pid,
        ppid,
        cpu_ticks,
        start_unix: boot + (start_ticks / ticks.max(1)) as i64,
        tty: tty_name(tty_nr),
        cmd,
    })
}

/// The name `ps` gives a `tty_nr` of /proc/PID/stat.
fn tty_name(tty_nr: i64) -> String {
    if tty_nr == 0 {
        return "?".to_string();
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        5 if minor == 1 => "console".to_string(),
        _ => "?".to_string(),
    }
}

/// `docker top`'s table: `ps -ef`'s columns. `names` gives a uid's name (the
/// container's /etc/passwd), else the number is shown. STIME is UTC: `HH:MM`
/// within the last day, else `MonDD`, else the year; C the percent of one
/// CPU over the process's life, at most 99.
pub fn table(
    list: &[Process],
    names: &dyn Fn(u32) -> Option<String>,
    now: i64,
    ticks: u64,
) -> String {
    let ticks = ticks.max(1);
    let rows: Vec<[String; 8]> = list
        .iter()
        .map(|p| {
            let secs = p.cpu_ticks / ticks;
            let life = (now - p.start_unix).max(1) as u64;
            let c = (p.cpu_ticks * 100 / ticks / life).min(99);
            [
                names(p.uid).unwrap_or_else(|| p.uid.to_string()),
                p.pid.to_string(),
                p.ppid.to_string(),
                c.to_string(),
                start_time(p.start_unix, now),
                p.tty.clone(),
                cpu_time(secs),
                p.cmd.clone(),
            ]
        })
        .collect();
    crate::cli::columns(
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        &rows,
    )
}

/// `ps`'s STIME, in UTC.
fn start_time(start: i64, now: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let stamp = crate::timefmt::rfc3339(start); // YYYY-MM-DDTHH:MM:SSZ
    let (year, month, day, hm) = (&stamp[..4], &stamp[5..7], &stamp[8..10], &stamp[11..16]);
    if now - start < 86_400 {
        hm.to_string()
    } else if year == &crate::timefmt::rfc3339(now)[..4] {
        let m: usize = month.parse().unwrap_or(1);
        format!("{}{day}", MONTHS[(m.max(1) - 1).min(11)])
    } else {
        year.to_string()
    }
}

/// `ps`'s TIME: `[DD-]HH:MM:SS` of CPU time.
fn cpu_time(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let hms = format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    if days > 0 {
        format!("{days}-{hms}")
    } else {
        hms
    }
}

/// A uid's name in the container's `/etc/passwd` (read in its root, as `-u`
/// reads it), for [`table`].
pub fn passwd_names(store: &Store, name_or_id: &str) -> Result<Vec<(u32, String)>> {
    let rec = store.find_container(name_or_id)?;
    let root = crate::fsutil::open_dir(store.containers.as_fd(), rec.id.as_str())
        .map_err(|e| Error::os(format!("open containers/{}", rec.id), e))?;
    let text = crate::user::read_in_root(
        root.as_fd(),
        &format!("container {}", rec.id),
        "/etc/passwd",
    )
    .unwrap_or(None)
    .unwrap_or_default();
    Ok(crate::user::parse_passwd(&String::from_utf8_lossy(&text))
        .into_iter()
        .map(|e| (e.uid, e.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_uid_is_shown_as_the_user_namespace_sees_it() {
        let map = "         0     524288      65536\n";
        assert_eq!(inside(524_288, map), 0);
        assert_eq!(inside(525_288, map), 1000);
        assert_eq!(inside(0, map), 65_534);
        assert_eq!(inside(524_288 + 65_536, map), 65_534);
    }

    #[test]
    fn parses_a_process_with_a_paren_in_its_name() {
        let stat = "4242 (we(i)rd) S 4200 4242 4242 34816 4242 4194560 100 0 0 0 250 50 0 0 20 0 1 0 12345 1000 100 0";
        let status = "Name:\tweird\nUid:\t1000\t1001\t1001\t1001\nGid:\t0\t0\t0\t0\n";
        let p = parse_process(4242, stat, status, b"sleep\x00100\x00", 1_000_000, 100).unwrap();
        assert_eq!(p.ppid, 4200);
        assert_eq!(p.uid, 1001, "the effective uid");
        assert_eq!(p.cpu_ticks, 300);
        assert_eq!(p.start_unix, 1_000_000 + 123);
        assert_eq!(p.tty, "pts/0");
        assert_eq!(p.cmd, "sleep 100");
        let p = parse_process(7, stat, status, b"", 0, 100).unwrap();
        assert_eq!(p.cmd, "[we(i)rd]", "no command line: the name in brackets");
    }

    #[test]
    fn tty_names_as_ps() {
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name(136 << 8 | 3), "pts/3");
        assert_eq!(tty_name((137 << 8) | 2), "pts/258");
        assert_eq!(tty_name((4 << 8) | 1), "tty1");
        assert_eq!(tty_name((4 << 8) | 65), "ttyS1");
        // pts/300: minor 300 = 0x12c, low byte 0x2c, high bits at 20..
        assert_eq!(tty_name((136 << 8) | 0x2c | (0x100 << 12)), "pts/300");
    }

    #[test]
    fn table_has_ps_ef_columns() {
        let now = 1_764_460_800; // 2025-11-30T00:00:00Z
        let list = vec![
            Process {
                uid: 0,
                pid: 10,
                ppid: 9,
                cpu_ticks: 6_100,
                start_unix: now - 120,
                tty: "?".into(),
                cmd: "sleep 1000".into(),
            },
            Process {
                uid: 1000,
                pid: 11,
                ppid: 10,
                cpu_ticks: 0,
                start_unix: now - 3 * 86_400,
                tty: "pts/1".into(),
                cmd: "sh".into(),
            },
        ];
        let names = |uid: u32| (uid == 0).then(|| "root".to_string());
        let t = table(&list, &names, now, 100);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["root", "10", "9", "50", "23:58", "?", "00:01:01", "sleep", "1000"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["1000", "11", "10", "0", "Nov27", "pts/1", "00:00:00", "sh"]
        );
        assert_eq!(cpu_time(2 * 86_400 + 3_723), "2-01:02:03");
        assert_eq!(start_time(now - 400 * 86_400, now), "2024");
    }
}
