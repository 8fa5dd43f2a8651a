//! Resource limits: a cgroup of its own for a container that asks for one
//! (`--memory`, `--memory-swap`, `--pids-limit`, `--cpus`, `--cpu-shares`,
//! `--cpuset-cpus`, `--cpuset-mems`, `--cgroup-parent`).
//!
//! Without any of these a container stays in the cgroup of the `tupper`
//! that started it, as before: no cgroup is made on the default start path.
//! With one, the container's cgroup is `PARENT/ID` (`PARENT` is `tupper`
//! unless `--cgroup-parent` says otherwise, relative to the root of each
//! hierarchy, as docker's cgroupfs driver does):
//!
//! - **cgroup v2** (`/sys/fs/cgroup` is a `cgroup2` mount): one directory;
//!   the controllers its limits need are enabled in `cgroup.subtree_control`
//!   from the root down to `PARENT` (only those not enabled already), and the
//!   child is cloned straight into it (`clone3` with `CLONE_INTO_CGROUP`), so
//!   its cgroup namespace is rooted there.
//! - **cgroup v1** (a `tmpfs` with one mount per controller, as here, or the
//!   hybrid layout): a directory in each of the `cpu`, `cpuacct`, `cpuset`,
//!   `memory` and `pids` hierarchies that is mounted (a missing one is an
//!   error only when a limit needs it); `cpuset.cpus` and `cpuset.mems` of
//!   each new directory are copied from its parent (they start empty). The
//!   parent writes the child's pid into each `cgroup.procs` before the
//!   go-ahead, and the child makes its cgroup namespace after it
//!   (`unshare(CLONE_NEWCGROUP)`), so that it is rooted there too.
//!
//! The record lists the directories before any is made; they are removed
//! (`rmdir`) when the container ends, by `rm`, and by the `rm` of a
//! container whose run crashed. Only directories named after the
//! container's ID, in a cgroup file system, are ever removed.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use linux_raw_sys::general::{CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};

use crate::error::{Error, Result};
use crate::fsutil;

/// The type of the file system `path` is on (`statfs`'s magic number).
pub(crate) fn fs_magic(path: impl rustix::path::Arg) -> rustix::io::Result<u32> {
    rfs::statfs(path).map(|s| s.f_type as u32)
}

/// The period of `--cpus`' quota, in microseconds (docker's, the kernel's
/// default `cpu.cfs_period_us`).
pub const CPU_PERIOD_US: u64 = 100_000;

/// The smallest `--memory` (docker's: 6 MiB).
pub const MIN_MEMORY: u64 = 6 << 20;

/// A container's resource limits, as docker's flags of the same names give
/// them. The default (all `None`) asks for no cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit in bytes (`-m`, `--memory`; at least [`MIN_MEMORY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Memory plus swap in bytes (`--memory-swap`), -1 for unlimited swap.
    /// Needs `memory`; by default twice `memory` (docker's rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// A soft memory limit in bytes (`--memory-reservation`): what the
    /// kernel reclaims the container down to when memory is short (v1
    /// `memory.soft_limit_in_bytes`, v2 `memory.low`); at most `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u64>,
    /// How eagerly the kernel swaps the container's anonymous memory out
    /// (`--memory-swappiness`, 0 to 100; cgroup v1 `memory.swappiness`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<u64>,
    /// `--oom-kill-disable`: out of memory, its tasks wait instead of one
    /// being killed (cgroup v1 `memory.oom_control`; needs `memory`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_kill_disable: bool,
    /// The most tasks (processes and threads) at once (`--pids-limit`; 0 or
    /// less: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// CPU time in billionths of a CPU (`--cpus` × 10⁹, docker's `NanoCpus`):
    /// a quota of that share of each [`CPU_PERIOD_US`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<u64>,
    /// The CFS period in microseconds (`--cpu-period`, 1000 to 1000000;
    /// the kernel's default 100000). Not with `nano_cpus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<u64>,
    /// The CFS quota in microseconds per period (`--cpu-quota`, at least
    /// 1000; -1: none). Not with `nano_cpus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// Relative CPU weight (`-c`, `--cpu-shares`; the kernel's default is
    /// 1024, and it takes 2 to 262144: a value outside is clamped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// The CPUs it may run on (`--cpuset-cpus`, a list such as `0-2,4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// The memory nodes it may use (`--cpuset-mems`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
    /// Where its cgroup goes (`--cgroup-parent`): a path relative to the
    /// root of each hierarchy; `tupper` when `None`. Given alone, it still
    /// makes the container a cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// Block I/O limits of devices (`--device-read-bps`,
    /// `--device-write-bps`, `--device-read-iops`, `--device-write-iops`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_throttles: Vec<Throttle>,
}

/// A block I/O limit of one device (docker's `--device-*-bps`,
/// `--device-*-iops`): v1 `blkio.throttle.*_device`, v2 `io.max`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// `read_bps`, `write_bps`, `read_iops` or `write_iops`.
    pub kind: String,
    /// The device as given (`/dev/sda`).
    pub path: String,
    /// Its number, `MAJOR:MINOR`.
    pub device: String,
    /// Bytes or operations per second.
    pub rate: u64,
}

impl Throttle {
    /// Parses `--device-KIND PATH:RATE` (`KIND` `read-bps`, `write-bps`,
    /// `read-iops`, `write-iops`): `PATH` must be a block device (its
    /// number is taken now), a bps `RATE` a size (`1mb`), an iops one a
    /// count.
    pub fn parse(kind: &str, s: &str) -> Result<Throttle> {
        let flag = format!("--device-{kind}");
        let (path, rate) = s.rsplit_once(':').ok_or_else(|| {
            Error::msg(format!(
                "invalid {flag} {s:?}: expected PATH:RATE (/dev/sda:1mb)"
            ))
        })?;
        let rate = match kind.ends_with("bps") {
            true => parse_bytes(&flag, rate)?,
            false => rate.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::msg(format!(
                    "invalid {flag} {s:?}: {rate:?} is not a count of operations"
                ))
            })?,
        };
        let st = rfs::stat(path).map_err(|e| Error::os(format!("{flag} {path}"), e))?;
        if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::BlockDevice {
            return Err(Error::msg(format!("{flag} {path}: not a block device")));
        }
        Ok(Throttle {
            kind: kind.replace('-', "_"),
            path: path.to_string(),
            device: format!("{}:{}", rfs::major(st.st_rdev), rfs::minor(st.st_rdev)),
            rate,
        })
    }

    /// The file and line that set it: v1 `blkio.throttle.KIND_device`
    /// `MAJOR:MINOR RATE`, v2 `io.max` `MAJOR:MINOR KEY=RATE`.
    fn file(&self, v2: bool) -> (&'static str, String) {
        let (v1_file, v2_key) = match self.kind.as_str() {
            "read_bps" => ("blkio.throttle.read_bps_device", "rbps"),
            "write_bps" => ("blkio.throttle.write_bps_device", "wbps"),
            "read_iops" => ("blkio.throttle.read_iops_device", "riops"),
            _ => ("blkio.throttle.write_iops_device", "wiops"),
        };
        match v2 {
            false => (v1_file, format!("{} {}", self.device, self.rate)),
            true => ("io.max", format!("{} {v2_key}={}", self.device, self.rate)),
        }
    }
}

/// The cgroup parent when `--cgroup-parent` is not given.
pub const DEFAULT_PARENT: &str = "tupper";

/// The controllers of cgroup v1 a container's cgroup is made in.
const V1_CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "cpuset", "memory", "pids"];

/// Those and `blkio`, in which a container's cgroup is made only when it
/// has block I/O limits.
const V1_KNOWN: [&str; 6] = ["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio"];

impl Resources {
    /// Whether a cgroup is asked for at all.
    #[inline]
    pub fn wanted(&self) -> bool {
        self.memory.is_some()
            || self.memory_swap.is_some()
            || self.memory_reservation.is_some()
            || self.memory_swappiness.is_some()
            || self.oom_kill_disable
            || self.pids_limit.is_some()
            || self.nano_cpus.is_some()
            || self.cpu_period.is_some()
            || self.cpu_quota.is_some()
            || self.cpu_shares.is_some()
            || self.cpuset_cpus.is_some()
            || self.cpuset_mems.is_some()
            || self.cgroup_parent.is_some()
            || !self.device_throttles.is_empty()
    }

    /// The controllers the limits need.
    fn controllers(&self) -> Vec<&'static str> {
        let mut c = Vec::new();
        if self.nano_cpus.is_some()
            || self.cpu_shares.is_some()
            || self.cpu_period.is_some()
            || self.cpu_quota.is_some()
        {
            c.push("cpu");
        }
        if self.cpuset_cpus.is_some() || self.cpuset_mems.is_some() {
            c.push("cpuset");
        }
        if self.memory.is_some()
            || self.memory_reservation.is_some()
            || self.memory_swappiness.is_some()
            || self.oom_kill_disable
        {
            c.push("memory");
        }
        if self.pids_limit.is_some() {
            c.push("pids");
        }
        // cgroup v1's name; v2's is `io`.
        if !self.device_throttles.is_empty() {
            c.push("blkio");
        }
        c
    }

    /// Checks the values as docker does (before anything changes).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::msg(m));
        if let Some(m) = self.memory {
            if m < MIN_MEMORY {
                return bad(format!(
                    "--memory {m}: the minimum memory limit is 6 MiB ({MIN_MEMORY} bytes)"
                ));
            }
        }
        match (self.memory_swap, self.memory) {
            (Some(_), None) => {
                return bad("--memory-swap needs --memory (the swap limit is memory plus swap)".into())
            }
            (Some(s), Some(m)) if s != -1 && (s < 0 || (s as u64) < m) => {
                return bad(format!(
                    "--memory-swap {s}: memory plus swap must be at least --memory ({m}), or -1 for unlimited swap"
                ))
            }
            _ => {}
        }
        // Read only when asked about: not on the start path of a run without limits.
        let cpus = match self.nano_cpus.is_some() || self.cpuset_cpus.is_some() {
            true => online_cpus(),
            false => None,
        };
        if let Some(n) = self.nano_cpus {
            let quota = quota_us(n);
            if quota < 1000 {
                return bad(format!("--cpus {}: the smallest is 0.01", format_cpus(n)));
            }
            if let Some(online) = &cpus {
                let count = online.len() as u64;
                if n > count * 1_000_000_000 {
                    return bad(format!(
                        "--cpus {}: more than the {count} CPUs this host has",
                        format_cpus(n)
                    ));
                }
            }
        }
        if let Some(s) = self.memory_swappiness.filter(|s| *s > 100) {
            return bad(format!("--memory-swappiness {s}: from 0 to 100"));
        }
        // docker's rule: without a limit, the whole host's memory could
        // wait on an out-of-memory container.
        if self.oom_kill_disable && self.memory.is_none() {
            return bad("--oom-kill-disable needs --memory (without a limit, nothing would ever kill in it)".into());
        }
        if let (Some(r), Some(m)) = (self.memory_reservation, self.memory) {
            if r > m {
                return bad(format!(
                    "--memory-reservation {r}: more than --memory ({m}); the reservation is the lower, soft limit"
                ));
            }
        }
        // docker's rules and words.
        if self.nano_cpus.is_some() && (self.cpu_period.is_some() || self.cpu_quota.is_some()) {
            return bad(
                "--cpus with --cpu-period or --cpu-quota: give the one or the others".into(),
            );
        }
        if let Some(p) = self.cpu_period.filter(|p| !(1000..=1_000_000).contains(p)) {
            return bad(format!(
                "--cpu-period {p}: from 1000 (1 ms) to 1000000 (1 s) microseconds"
            ));
        }
        if let Some(q) = self.cpu_quota.filter(|q| *q != -1 && *q < 1000) {
            return bad(format!(
                "--cpu-quota {q}: at least 1000 (1 ms) microseconds, or -1 for none"
            ));
        }
        if let Some(list) = &self.cpuset_cpus {
            let wanted = parse_list("--cpuset-cpus", list)?;
            if let Some(online) = &cpus {
                if let Some(c) = wanted.iter().find(|c| !online.contains(c)) {
                    return bad(format!(
                        "--cpuset-cpus {list}: CPU {c} is not online here ({})",
                        format_list(online)
                    ));
                }
            }
        }
        if let Some(list) = &self.cpuset_mems {
            parse_list("--cpuset-mems", list)?;
        }
        if let Some(p) = &self.cgroup_parent {
            parent_components(p)?;
        }
        Ok(())
    }
}

/// `--cpus` as docker prints it (`0.5`, `2`).
pub fn format_cpus(nano: u64) -> String {
    let whole = nano / 1_000_000_000;
    let frac = nano % 1_000_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// The CFS quota, in microseconds per [`CPU_PERIOD_US`], of `nano` CPUs.
fn quota_us(nano: u64) -> u64 {
    nano.saturating_mul(CPU_PERIOD_US) / 1_000_000_000
}

/// Parses `--cpus` (a decimal number of CPUs, at most 9 decimals) into
/// billionths of a CPU.
pub fn parse_cpus(s: &str) -> Result<u64> {
    let bad = || Error::msg(format!("--cpus {s}: not a number of CPUs (such as 1.5)"));
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if (whole.is_empty() && frac.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 9
    {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: u64 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    let nano = whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)?;
    if nano == 0 {
        return Err(Error::msg(format!("--cpus {s}: must be more than 0")));
    }
    Ok(nano)
}

/// Parses a size as docker's `--memory` reads it: a number (decimals
/// allowed) and an optional unit `b`, `k`, `m`, `g`, `t` or `p` (powers of
/// 1024, any case, `kb`/`kib` alike).
pub fn parse_bytes(flag: &str, s: &str) -> Result<u64> {
    let bad = || {
        Error::msg(format!(
            "{flag} {s}: not a size (a number of bytes, or with a unit: 512m, 1.5g)"
        ))
    };
    let lower = s.trim().to_ascii_lowercase();
    let mut rest = lower.as_str();
    rest = rest.strip_suffix('b').unwrap_or(rest);
    rest = rest.strip_suffix('i').unwrap_or(rest);
    let shift = match rest.as_bytes().last() {
        Some(b'k') => 10,
        Some(b'm') => 20,
        Some(b'g') => 30,
        Some(b't') => 40,
        Some(b'p') => 50,
        _ => 0,
    };
    if shift > 0 {
        rest = &rest[..rest.len() - 1];
    } else if lower.ends_with("ib") || lower.ends_with('i') {
        // `ib` or `i` without a unit letter.
        return Err(bad());
    }
    let rest = rest.trim_end();
    let (whole, frac) = rest.split_once('.').unwrap_or((rest, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (rest.contains('.') && frac.is_empty())
    {
        return Err(bad());
    }
    let unit = 1u128 << shift;
    let whole: u128 = whole.parse().map_err(|_| bad())?;
    let mut bytes = whole.checked_mul(unit).ok_or_else(bad)?;
    if !frac.is_empty() {
        let digits = frac.len().min(18);
        let num: u128 = frac[..digits].parse().map_err(|_| bad())?;
        bytes += num * unit / 10u128.pow(digits as u32);
    }
    u64::try_from(bytes)
        .ok()
        .filter(|b| *b <= i64::MAX as u64)
        .ok_or_else(bad)
}

/// Parses `--memory-swap`: a size, or -1 for unlimited swap.
pub fn parse_swap(s: &str) -> Result<i64> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    Ok(parse_bytes("--memory-swap", s)? as i64)
}

/// Parses a kernel list (`0-2,4`) into its numbers, in order.
pub fn parse_list(flag: &str, list: &str) -> Result<Vec<u32>> {
    let bad = || Error::msg(format!("{flag} {list}: not a list such as 0-2,4"));
    let mut out = Vec::new();
    for part in list.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let num = |s: &str| -> Result<u32> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().ok().filter(|n| *n < 8192).ok_or_else(bad)
        };
        let (a, b) = (num(a)?, num(b)?);
        if a > b {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A list of numbers as the kernel writes one (`0-2,4`).
fn format_list(nums: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < nums.len() {
        let mut j = i;
        while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
            j += 1;
        }
        parts.push(match i == j {
            true => nums[i].to_string(),
            false => format!("{}-{}", nums[i], nums[j]),
        });
        i = j + 1;
    }
    parts.join(",")
}

/// The CPUs that are online (`None` when sysfs does not say).
fn online_cpus() -> Option<Vec<u32>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    parse_list("online CPUs", text.trim()).ok()
}

/// The components of a `--cgroup-parent` (a leading `/` is the root, as in
/// docker; `..`, `.` and empty components are refused).
pub(crate) fn parent_components(parent: &str) -> Result<Vec<&str>> {
    let bad = |why: &str| Err(Error::msg(format!("--cgroup-parent {parent}: {why}")));
    let parts: Vec<&str> = parent.trim_start_matches('/').split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return bad("not a path of cgroup names (empty component)");
    }
    for p in &parts {
        if *p == "." || *p == ".." {
            return bad("`.` and `..` are not allowed");
        }
        if p.starts_with("cgroup.") || p.len() > 255 || p.contains('\0') {
            return bad("not a cgroup name");
        }
    }
    Ok(parts)
}

/// Where a container's cgroup goes: its directories, decided before any is
/// made (they go into the record first).
#[derive(Debug, Clone)]
pub struct Placement {
    /// Whether this is cgroup v2 (one directory).
    pub v2: bool,
    /// Each hierarchy's root and its controllers (v1; none listed with v2,
    /// whose one hierarchy has them all), and the parent's components.
    roots: Vec<(PathBuf, Vec<String>)>,
    parent: Vec<String>,
    id: String,
    /// With v2: the controllers to enable down to the parent.
    enable: Vec<&'static str>,
}

impl Placement {
    /// The container's cgroup directories (absolute paths).
    pub fn dirs(&self) -> Vec<String> {
        self.roots
            .iter()
            .map(|(r, _)| {
                let mut p = r.clone();
                p.extend(&self.parent);
                p.push(&self.id);
                p.to_string_lossy().into_owned()
            })
            .collect()
    }
}

/// Decides where the cgroup of container `id` goes, or `None` when
/// `resources` asks for none and `track` does not ask for one without
/// limits (to know the container's processes by: `--pid`, see
/// [`crate::pidns`]). Fails, changing nothing, when a limit needs a
/// controller this host does not offer.
pub fn place(resources: &Resources, id: &str, track: bool) -> Result<Option<Placement>> {
    if !resources.wanted() && !track {
        return Ok(None);
    }
    let parent: Vec<String> =
        parent_components(resources.cgroup_parent.as_deref().unwrap_or(DEFAULT_PARENT))?
            .into_iter()
            .map(str::to_string)
            .collect();
    let needed = resources.controllers();
    let root = Path::new("/sys/fs/cgroup");
    let v2 = fs_magic(root).is_ok_and(|m| m == CGROUP2_SUPER_MAGIC);
    if v2 && (resources.memory_swappiness.is_some() || resources.oom_kill_disable) {
        return Err(Error::msg(
            "--memory-swappiness and --oom-kill-disable: cgroup v2 has neither (they are cgroup v1's memory.swappiness and memory.oom_control)",
        ));
    }
    if v2 {
        let needed: Vec<&str> = needed
            .into_iter()
            .map(|c| if c == "blkio" { "io" } else { c })
            .collect();
        let available = std::fs::read_to_string(root.join("cgroup.controllers"))
            .map_err(|e| Error::os("read /sys/fs/cgroup/cgroup.controllers", e))?;
        let available: Vec<&str> = available.split_whitespace().collect();
        if let Some(c) = needed.iter().find(|c| !available.contains(c)) {
            return Err(missing_controller(
                c,
                "cgroup v2 (/sys/fs/cgroup/cgroup.controllers)",
            ));
        }
        return Ok(Some(Placement {
            v2: true,
            roots: vec![(root.to_path_buf(), Vec::new())],
            parent,
            id: id.to_string(),
            enable: needed,
        }));
    }
    let mounts = v1_mounts()?;
    for c in &needed {
        if !mounts.iter().any(|(cs, _)| cs.iter().any(|x| x == c)) {
            return Err(missing_controller(
                c,
                "cgroup v1 (no hierarchy of it in /proc/self/mountinfo)",
            ));
        }
    }
    let mut roots: Vec<(PathBuf, Vec<String>)> = Vec::new();
    let blkio = needed.contains(&"blkio").then_some("blkio");
    for c in V1_CONTROLLERS.into_iter().chain(blkio) {
        if let Some((cs, m)) = mounts.iter().find(|(cs, _)| cs.iter().any(|x| x == c)) {
            if !roots.iter().any(|(r, _)| r == m) {
                roots.push((m.clone(), cs.clone()));
            }
        }
    }
    if explicit_swap(resources) {
        let memory = mounts
            .iter()
            .find(|(cs, _)| cs.iter().any(|x| x == "memory"))
            .map(|(_, m)| m.clone());
        if !memory.is_some_and(|m| m.join("memory.memsw.limit_in_bytes").exists()) {
            return Err(no_swap_accounting());
        }
    }
    Ok(Some(Placement {
        v2: false,
        roots,
        parent,
        id: id.to_string(),
        enable: Vec::new(),
    }))
}

/// Whether `--memory-swap` allows swap (more than `--memory`; equal means
/// none, which a kernel without swap accounting gives as well).
fn explicit_swap(r: &Resources) -> bool {
    r.memory_swap
        .is_some_and(|s| s != r.memory.map_or(0, |m| m as i64))
}

fn missing_controller(c: &str, where_: &str) -> Error {
    Error::msg(format!(
        "the {c} controller is not available in {where_}: {} cannot be limited here",
        match c {
            "cpu" => "CPU time (--cpus, --cpu-shares)",
            "cpuset" => "the CPUs and memory nodes (--cpuset-cpus, --cpuset-mems)",
            "memory" => "memory (--memory)",
            "blkio" | "io" => "block I/O (--device-read-bps, --device-write-bps, --device-read-iops, --device-write-iops)",
            _ => "the number of tasks (--pids-limit)",
        }
    ))
}

fn no_swap_accounting() -> Error {
    Error::msg(
        "--memory-swap: this kernel does not account for swap in cgroups (memory.memsw.limit_in_bytes or memory.swap.max is missing)",
    )
    .with_advice("leave out --memory-swap, or boot with swapaccount=1")
}

/// The mounted cgroup v1 hierarchies: their controllers and mount points
/// (the first mount of each, from `/proc/self/mountinfo`).
pub(crate) fn v1_mounts() -> Result<Vec<(Vec<String>, PathBuf)>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::os("read /proc/self/mountinfo", e))?;
    Ok(parse_v1_mounts(&text, &V1_KNOWN))
}

/// The mount point of the cgroup v1 hierarchy of `controller` (`freezer`),
/// if one is mounted.
pub(crate) fn v1_mount_of(controller: &str) -> Result<Option<PathBuf>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::os("read /proc/self/mountinfo", e))?;
    Ok(parse_v1_mounts(&text, &[controller])
        .into_iter()
        .next()
        .map(|(_, m)| m))
}

/// The hierarchies of `wanted` controllers in a `mountinfo` text (see
/// [`v1_mounts`]).
fn parse_v1_mounts(text: &str, wanted: &[&str]) -> Vec<(Vec<String>, PathBuf)> {
    let mut out: Vec<(Vec<String>, PathBuf)> = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut right = right.split(' ');
        if right.next() != Some("cgroup") {
            continue;
        }
        let options = right.nth(1).unwrap_or("");
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let controllers: Vec<String> = options
            .split(',')
            .filter(|o| wanted.contains(o))
            .map(str::to_string)
            .collect();
        if controllers.is_empty()
            || out
                .iter()
                .any(|(c, _)| c.iter().any(|x| controllers.contains(x)))
        {
            continue;
        }
        out.push((controllers, PathBuf::from(unescape(point))));
    }
    out
}

/// A mountinfo path with its octal escapes (`\040` for a space) undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A container's cgroup, made: an open directory per hierarchy.
#[derive(Debug)]
pub struct Cgroup {
    v2: bool,
    dirs: Vec<(String, OwnedFd)>,
}

impl Placement {
    /// Makes the directories and writes the limits. On failure, the
    /// container's directories made so far are removed again (parents such
    /// as `tupper/` stay, as docker's `/docker` does).
    pub fn make(&self, r: &Resources) -> Result<Cgroup> {
        let mut made = Cgroup {
            v2: self.v2,
            dirs: Vec::new(),
        };
        let result = self.make_into(r, &mut made);
        match result {
            Ok(()) => Ok(made),
            Err(e) => {
                let dirs: Vec<String> = made.dirs.drain(..).map(|(p, _)| p).collect();
                let _ = remove(&dirs, &self.id, self.parent == [DEFAULT_PARENT]);
                Err(e)
            }
        }
    }

    /// Opens (making what is missing) the parent of the container's cgroup
    /// in the hierarchy at `root`: its fd and path.
    fn open_parent(&self, root: &Path) -> Result<(OwnedFd, PathBuf)> {
        let mut dir = fsutil::open_dir(rfs::CWD, root)
            .map_err(|e| Error::os(format!("open cgroup {}", root.display()), e))?;
        let mut path = root.to_path_buf();
        for part in &self.parent {
            if self.v2 {
                enable_controllers(dir.as_fd(), &path, &self.enable)?;
            }
            path.push(part);
            dir = match rfs::mkdirat(dir.as_fd(), part.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {
                    // One made before (by the user, or a tupper killed in
                    // between) may have no CPUs yet: filled in as well.
                    let new = open_cgroup(dir.as_fd(), part, &path)?;
                    if !self.v2 {
                        inherit_cpuset(dir.as_fd(), new.as_fd(), &path)?;
                    }
                    new
                }
                Err(e) => return Err(Error::os(format!("create cgroup {}", path.display()), e)),
            };
        }
        if self.v2 {
            enable_controllers(dir.as_fd(), &path, &self.enable)?;
        }
        Ok((dir, path))
    }

    fn make_into(&self, r: &Resources, made: &mut Cgroup) -> Result<()> {
        for (root, controllers) in &self.roots {
            // The default parent goes when its last container does (see
            // [`remove`]): one removed between its open and the mkdir
            // below is made again.
            let mut attempt = 0;
            let (dir, mut path) = loop {
                let (dir, path) = self.open_parent(root)?;
                let leaf = path.join(&self.id);
                match rfs::mkdirat(dir.as_fd(), self.id.as_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) => break (dir, path),
                    Err(Errno::NOENT) if attempt < 5 => attempt += 1,
                    Err(e) => {
                        return Err(Error::os(format!("create cgroup {}", leaf.display()), e))
                    }
                }
            };
            path.push(&self.id);
            let leaf = open_cgroup(dir.as_fd(), &self.id, &path);
            let leaf = match leaf {
                Ok(l) => l,
                Err(e) => {
                    let _ = rfs::unlinkat(dir.as_fd(), self.id.as_str(), rfs::AtFlags::REMOVEDIR);
                    return Err(e);
                }
            };
            let shown = path.to_string_lossy().into_owned();
            made.dirs.push((shown.clone(), leaf));
            let leaf = made
                .dirs
                .last()
                .map(|(_, fd)| fd.as_fd())
                .expect("just pushed");
            if !self.v2 {
                inherit_cpuset(dir.as_fd(), leaf, &path)?;
            }
            for (file, value) in limit_files(r, self.v2) {
                // v1: each file in the hierarchy of its controller.
                let controller = file.split('.').next().unwrap_or(file);
                if !self.v2 && !controllers.iter().any(|c| c == controller) {
                    continue;
                }
                // Swap is limited where the kernel accounts for it; docker's
                // default (as much swap as memory) is dropped where not.
                let swap = matches!(file, "memory.memsw.limit_in_bytes" | "memory.swap.max");
                if swap
                    && rfs::accessat(leaf, file, rfs::Access::EXISTS, rfs::AtFlags::empty())
                        .is_err()
                {
                    if explicit_swap(r) {
                        return Err(no_swap_accounting());
                    }
                    continue;
                }
                write_value(leaf, file, &value, &shown)?;
            }
        }
        Ok(())
    }
}

/// The files and values of the limits, in the order they must be written
/// (memory before memory plus swap).
pub fn limit_files(r: &Resources, v2: bool) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(m) = r.memory {
        // Docker's default: as much swap as memory (memory plus swap twice it).
        let total = r
            .memory_swap
            .unwrap_or(m.saturating_mul(2).min(i64::MAX as u64) as i64);
        match v2 {
            false => {
                out.push(("memory.limit_in_bytes", m.to_string()));
                out.push(("memory.memsw.limit_in_bytes", total.to_string()));
            }
            true => {
                out.push(("memory.max", m.to_string()));
                out.push((
                    "memory.swap.max",
                    match total {
                        -1 => "max".to_string(),
                        t => (t as u64).saturating_sub(m).to_string(),
                    },
                ));
            }
        }
    }
    // cgroup v1 only (`place` refuses them with v2).
    if !v2 {
        if let Some(s) = r.memory_swappiness {
            out.push(("memory.swappiness", s.to_string()));
        }
        if r.oom_kill_disable {
            out.push(("memory.oom_control", "1".to_string()));
        }
    }
    if let Some(m) = r.memory_reservation {
        out.push((
            match v2 {
                false => "memory.soft_limit_in_bytes",
                true => "memory.low",
            },
            m.to_string(),
        ));
    }
    if let Some(p) = r.pids_limit {
        out.push((
            "pids.max",
            match p > 0 {
                true => p.to_string(),
                false => "max".to_string(),
            },
        ));
    }
    if let Some(n) = r.nano_cpus {
        match v2 {
            false => {
                out.push(("cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
                out.push(("cpu.cfs_quota_us", quota_us(n).to_string()));
            }
            true => out.push(("cpu.max", format!("{} {CPU_PERIOD_US}", quota_us(n)))),
        }
    }
    if r.cpu_period.is_some() || r.cpu_quota.is_some() {
        match v2 {
            false => {
                if let Some(p) = r.cpu_period {
                    out.push(("cpu.cfs_period_us", p.to_string()));
                }
                if let Some(q) = r.cpu_quota {
                    out.push(("cpu.cfs_quota_us", q.to_string()));
                }
            }
            true => out.push((
                "cpu.max",
                format!(
                    "{} {}",
                    match r.cpu_quota {
                        None | Some(-1) => "max".to_string(),
                        Some(q) => q.to_string(),
                    },
                    r.cpu_period.unwrap_or(CPU_PERIOD_US)
                ),
            )),
        }
    }
    if let Some(s) = r.cpu_shares {
        match v2 {
            // Clamped as the kernel clamps it (docker passes any value on).
            false => out.push(("cpu.shares", s.clamp(2, 262_144).to_string())),
            true => out.push(("cpu.weight", cpu_weight(s).to_string())),
        }
    }
    if let Some(c) = &r.cpuset_cpus {
        out.push(("cpuset.cpus", c.clone()));
    }
    if let Some(m) = &r.cpuset_mems {
        out.push(("cpuset.mems", m.clone()));
    }
    out.extend(r.device_throttles.iter().map(|t| t.file(v2)));
    out
}

/// cgroup v2's `cpu.weight` (1-10000, default 100) for `--cpu-shares`
/// (2-262144, default 1024): the conversion of runc 1.3.2 and crun 1.23,
/// which maps the defaults onto each other (the older linear one gave 39
/// for 1024): with l = log2(shares), 10^((l² + 125 l) / 612 - 7/34),
/// rounded up.
pub fn cpu_weight(shares: u64) -> u64 {
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

fn open_cgroup(dir: BorrowedFd<'_>, name: &str, path: &Path) -> Result<OwnedFd> {
    fsutil::open_dir(dir, name).map_err(|e| Error::os(format!("open cgroup {}", path.display()), e))
}

/// Writes `value` to `file` of the cgroup `dir` (shown as `path`).
fn write_value(dir: BorrowedFd<'_>, file: &str, value: &str, path: &str) -> Result<()> {
    let fd = rfs::openat(dir, file, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::os(format!("open {path}/{file}"), e))?;
    match rustix::io::write(&fd, value.as_bytes()) {
        Ok(_) => Ok(()),
        Err(e) => {
            let err = Error::os(format!("write {value} to {path}/{file}"), e);
            Err(match (e, file) {
                (Errno::NOSPC, _) => err.with_advice(
                    "a cgroup v1 cpuset without CPUs or memory nodes takes no task: check cpuset.cpus and cpuset.mems of the parents",
                ),
                (Errno::BUSY, "cgroup.subtree_control") => err.with_advice(
                    "cgroup v2 enables controllers only for the children of a cgroup without processes of its own: choose a --cgroup-parent that has none",
                ),
                _ => err,
            })
        }
    }
}

/// Reads a small cgroup file.
fn read_value(dir: BorrowedFd<'_>, file: &str) -> Option<String> {
    let bytes = fsutil::read_file(dir, file).ok()?;
    String::from_utf8(bytes).ok().map(|s| s.trim().to_string())
}

/// cgroup v1's cpuset: a new cgroup has no CPUs and no memory nodes (no
/// task can join it) until they are set; they are copied from its parent.
fn inherit_cpuset(parent: BorrowedFd<'_>, child: BorrowedFd<'_>, path: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let Some(mine) = read_value(child, file) else {
            continue;
        };
        if mine.is_empty() {
            let theirs = read_value(parent, file).unwrap_or_default();
            write_value(child, file, &theirs, &path.to_string_lossy())?;
        }
    }
    Ok(())
}

/// cgroup v2: enables `controllers` for the children of `dir` (only those
/// not enabled yet: a host whose manager enabled them is not written to).
fn enable_controllers(dir: BorrowedFd<'_>, path: &Path, controllers: &[&str]) -> Result<()> {
    let enabled = read_value(dir, "cgroup.subtree_control").unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !enabled.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write_value(
        dir,
        "cgroup.subtree_control",
        &missing.join(" "),
        &path.to_string_lossy(),
    )
}

impl Cgroup {
    /// cgroup v2: the directory to clone the container's first process into
    /// (`CLONE_INTO_CGROUP`); `None` with v1, see [`Cgroup::attach`].
    pub fn clone_into(&self) -> Option<BorrowedFd<'_>> {
        match self.v2 {
            true => self.dirs.first().map(|(_, fd)| fd.as_fd()),
            false => None,
        }
    }

    /// Whether the child must make its cgroup namespace itself, once
    /// attached (cgroup v1: it was cloned in tupper's cgroups).
    pub fn late_namespace(&self) -> bool {
        !self.v2
    }

    /// cgroup v1: moves process `pid` into every hierarchy's directory
    /// (nothing to do with v2, whose child was cloned into it).
    pub fn attach(&self, pid: i32) -> Result<()> {
        if self.v2 {
            return Ok(());
        }
        for (path, fd) in &self.dirs {
            write_value(fd.as_fd(), "cgroup.procs", &pid.to_string(), path)?;
        }
        Ok(())
    }

    /// Writes limits `r` into the cgroup (`tupper update`): in each v1
    /// hierarchy those of its controllers (a file the directory does not
    /// have belongs to another), all of them with v2. Memory plus swap is
    /// written before memory when memory grows past the old total.
    pub fn set_limits(&self, r: &Resources) -> Result<()> {
        let files = limit_files(r, self.v2);
        for (path, fd) in &self.dirs {
            let has = |file: &str| {
                rfs::accessat(fd, file, rfs::Access::EXISTS, rfs::AtFlags::empty()).is_ok()
            };
            let mut done = Vec::new();
            for (i, (file, value)) in files.iter().enumerate() {
                if done.contains(&i) {
                    continue;
                }
                if !has(file) {
                    let swap = matches!(*file, "memory.memsw.limit_in_bytes" | "memory.swap.max");
                    if self.v2 && !swap {
                        return Err(Error::msg(format!(
                            "cgroup {path}: no {file} (its controller is not enabled for it)"
                        )));
                    }
                    if swap && explicit_swap(r) {
                        return Err(no_swap_accounting());
                    }
                    continue;
                }
                match write_raw(fd.as_fd(), file, value) {
                    Ok(()) => {}
                    // v1: a memory limit above the old memory plus swap.
                    Err(Errno::INVAL) if *file == "memory.limit_in_bytes" => {
                        let total = files
                            .iter()
                            .position(|(f, _)| *f == "memory.memsw.limit_in_bytes")
                            .filter(|_| has("memory.memsw.limit_in_bytes"));
                        let Some(t) = total else {
                            return Err(Error::os(
                                format!("write {value} to {path}/{file}"),
                                Errno::INVAL,
                            ));
                        };
                        write_value(fd.as_fd(), files[t].0, &files[t].1, path)?;
                        write_value(fd.as_fd(), file, value, path)?;
                        done.push(t);
                    }
                    Err(e) => return Err(Error::os(format!("write {value} to {path}/{file}"), e)),
                }
            }
        }
        Ok(())
    }

    /// Moves every process of a running container (as `members` lists
    /// them, see [`crate::store::Store::members`]) into the cgroup, each
    /// hierarchy's directory (`update` of a container that had none);
    /// `what` names the operation.
    pub fn adopt(&self, members: &Members<'_>, what: &str) -> Result<()> {
        for (path, fd) in &self.dirs {
            move_in(fd, path, members, what)?;
        }
        Ok(())
    }

    /// Opens the cgroup of a running container, from its record's list,
    /// for `exec` to put its command in.
    pub fn open(dirs: &[String], id: &str) -> Result<Option<Cgroup>> {
        let Some(first) = dirs.first() else {
            return Ok(None);
        };
        let v2 = fs_magic(first.as_str())
            .map_err(|e| Error::os(format!("open the container's cgroup {first}"), e))?
            == CGROUP2_SUPER_MAGIC;
        let mut out = Vec::new();
        for d in dirs {
            check_dir(d, id)?;
            let fd = fsutil::open_dir(rfs::CWD, d.as_str())
                .map_err(|e| Error::os(format!("open the container's cgroup {d}"), e))?;
            out.push((d.clone(), fd));
        }
        Ok(Some(Cgroup { v2, dirs: out }))
    }
}

/// How many times [`move_in`] walks the container's processes before it
/// gives up (each walk moves all it finds; into a frozen cgroup, frozen at
/// once, so that a second walk finds only what forked during the first).
const MAX_ROUNDS: usize = 100;

/// What lists a running container's processes for [`move_in`]: its
/// [`crate::store::Store::members`] (`None` once its PID 1 has ended).
pub type Members<'a> = dyn Fn() -> Result<Option<Vec<i32>>> + 'a;

/// Moves the processes of a container, as `members` lists them, into
/// cgroup `fd` (shown as `shown`; `pause`'s freezer, `update`'s new
/// cgroup) until none is left outside; `what` names the operation in
/// errors. Zombies stay where they are.
pub(crate) fn move_in(fd: &OwnedFd, shown: &str, members: &Members<'_>, what: &str) -> Result<()> {
    let mut last = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let Some(pids) = members()? else {
            return Err(Error::msg(format!("{what}: it is not running")));
        };
        let inside = procs_of(fd.as_fd());
        // A zombie has nothing left to freeze, and cannot move.
        let outside: Vec<i32> = pids
            .into_iter()
            .filter(|p| !inside.contains(p) && !ended(*p))
            .collect();
        if outside.is_empty() {
            return Ok(());
        }
        last.clone_from(&outside);
        for pid in outside {
            match write_raw(fd.as_fd(), "cgroup.procs", &pid.to_string()) {
                // Ended meanwhile.
                Ok(()) | Err(Errno::SRCH) => {}
                Err(e) => {
                    return Err(Error::os(
                        format!("{what}: move process {pid} into {shown}"),
                        e,
                    ))
                }
            }
        }
    }
    let last: Vec<String> = last.iter().map(i32::to_string).collect();
    Err(Error::msg(format!(
        "{what}: its processes kept forking faster than they could be frozen (left outside: {})",
        last.join(" ")
    )))
}

/// The processes of cgroup directory `dir` (its `cgroup.procs`; none when
/// it is gone).
pub(crate) fn procs(dir: &str) -> Vec<i32> {
    match fsutil::open_dir(rfs::CWD, dir) {
        Ok(fd) => procs_of(fd.as_fd()),
        Err(_) => Vec::new(),
    }
}

fn procs_of(dir: BorrowedFd<'_>) -> Vec<i32> {
    read_value(dir, "cgroup.procs")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Whether a process that has not ended is left in cgroups `dirs`.
pub(crate) fn populated(dirs: &[String]) -> bool {
    dirs.iter()
        .any(|d| procs(d).into_iter().any(|pid| !ended(pid)))
}

/// How long [`kill_all`] waits for the processes it killed to go.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Kills (`SIGKILL`) every process of cgroups `dirs`, again until none is
/// left but zombies (what forked meanwhile is found by the next round): a
/// container that shares a PID namespace, whose PID 1 ended (see
/// [`crate::pidns`]). Each is pinned by a pidfd, then found in the cgroup
/// again before it is signalled, so that a pid reused meanwhile is not.
/// `shown` names the container in an error.
pub(crate) fn kill_all(dirs: &[String], shown: &str) -> Result<()> {
    let listed = || {
        let mut pids: Vec<i32> = Vec::new();
        for d in dirs {
            pids.extend(procs(d));
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    };
    let deadline = Instant::now() + KILL_TIMEOUT;
    loop {
        let pids: Vec<i32> = listed().into_iter().filter(|p| !ended(*p)).collect();
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let left: Vec<String> = pids.iter().map(i32::to_string).collect();
            return Err(Error::msg(format!(
                "kill the processes left in the cgroup of container {shown}: still there after {} s: {}",
                KILL_TIMEOUT.as_secs(),
                left.join(" ")
            )));
        }
        let pinned: Vec<(i32, OwnedFd)> = pids
            .iter()
            .filter_map(|&pid| {
                let raw = rustix::process::Pid::from_raw(pid)?;
                let fd =
                    rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()).ok()?;
                Some((pid, fd))
            })
            .collect();
        let still = listed();
        for (pid, fd) in &pinned {
            if still.binary_search(pid).is_ok() {
                // Ended meanwhile: nothing to do.
                let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether process `pid` has ended: a zombie waiting for its parent to reap
/// it (state `Z` or `X` in `/proc/PID/stat`), or gone.
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X' | 'x')),
        Err(_) => true,
    }
}

/// Writes `value` to `file` of cgroup `dir`, the error as the kernel gave it.
fn write_raw(dir: BorrowedFd<'_>, file: &str, value: &str) -> rustix::io::Result<()> {
    let fd = rfs::openat(dir, file, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    rustix::io::write(&fd, value.as_bytes()).map(|_| ())
}

/// Whether the kernel killed a task of the cgroup for want of memory (its
/// `oom_kill` count, cgroup v1 `memory.oom_control` or v2 `memory.events`).
pub fn oom_killed(dirs: &[String]) -> bool {
    let Some(first) = dirs.first() else {
        return false;
    };
    let file = match fs_magic(first.as_str()) {
        Ok(CGROUP2_SUPER_MAGIC) => "memory.events",
        _ => "memory.oom_control",
    };
    // Only the memory hierarchy's directory has the file.
    let Some(text) = dirs
        .iter()
        .find_map(|d| std::fs::read_to_string(Path::new(d).join(file)).ok())
    else {
        return false;
    };
    text.lines().any(|l| {
        l.strip_prefix("oom_kill ")
            .is_some_and(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
    })
}

/// Removes a container's cgroup directories (those of its record). Only a
/// directory named `id` in a cgroup file system is removed; one that is
/// gone already is fine. Tasks still leaving (their PID namespace was
/// just torn down) are waited for, at most 2 s. With `default_parent`
/// (no `--cgroup-parent`), the `tupper` directory above goes too when no
/// other container's is left in it, so that nothing of tupper stays in the
/// host's cgroups once its containers are gone (a start that meanwhile
/// opened it makes it again, see [`Placement::make`]).
pub fn remove(dirs: &[String], id: &str, default_parent: bool) -> Result<()> {
    let mut first_error = None;
    for d in dirs {
        let result = match check_dir(d, id) {
            Ok(true) => remove_tree(Path::new(d), 0),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        match result {
            Err(e) => {
                first_error.get_or_insert(e);
            }
            Ok(()) if default_parent => {
                if let Some(parent) = Path::new(d)
                    .parent()
                    .filter(|p| p.file_name().and_then(|n| n.to_str()) == Some(DEFAULT_PARENT))
                {
                    // Busy or not empty: another container's is there.
                    let _ = rfs::unlinkat(rfs::CWD, parent, rfs::AtFlags::REMOVEDIR);
                }
            }
            Ok(()) => {}
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// [`remove`] of the cgroups of a container's record, its freezer too.
pub fn remove_of(record: &crate::container::Record) -> Result<()> {
    let default_parent = record
        .resources
        .as_ref()
        .map_or(true, |r| r.cgroup_parent.is_none());
    // A frozen task cannot leave: the processes of a paused container
    // whose run was killed die of their pending SIGKILL once thawed.
    if let Some(f) = &record.freezer {
        let _ = crate::freezer::thaw(f, "thaw");
    }
    // Sharing a PID namespace, what its command left behind still runs.
    if crate::pidns::shares(record.pid_mode.as_deref()) {
        kill_all(&record.cgroups, &record.id)?;
    }
    match &record.freezer {
        Some(f) if !record.cgroups.contains(f) => {
            let mut dirs = record.cgroups.clone();
            dirs.push(f.clone());
            remove(&dirs, &record.id, default_parent)
        }
        _ => remove(&record.cgroups, &record.id, default_parent),
    }
}

/// Whether `d` is the cgroup directory of container `id` (named after it,
/// on a cgroup file system); `Ok(false)` when it is gone.
fn check_dir(d: &str, id: &str) -> Result<bool> {
    if Path::new(d).file_name().and_then(|n| n.to_str()) != Some(id) {
        return Err(Error::msg(format!(
            "cgroup {d}: not the cgroup of container {id}"
        )));
    }
    match fs_magic(d) {
        Ok(CGROUP2_SUPER_MAGIC | CGROUP_SUPER_MAGIC) => Ok(true),
        Ok(_) => Err(Error::msg(format!(
            "cgroup {d}: not on a cgroup file system"
        ))),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(Error::os(format!("open cgroup {d}"), e)),
    }
}

/// Removes the cgroup `path` and, first, the cgroups a container with
/// `CAP_SYS_ADMIN` may have made below it (a cgroup file system holds no
/// other directories), waiting up to 2 s for tasks still leaving.
fn remove_tree(path: &Path, depth: usize) -> Result<()> {
    let shown = || format!("remove cgroup {}", path.display());
    if depth > 64 {
        return Err(Error::msg(format!("{}: nested too deep", shown())));
    }
    match std::fs::read_dir(path) {
        Ok(entries) => {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&e.path(), depth + 1)?;
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::os(shown(), e)),
    }
    let mut waited = 0;
    loop {
        match rfs::unlinkat(rfs::CWD, path, rfs::AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => return Ok(()),
            Err(Errno::BUSY) if waited < 2000 => {
                std::thread::sleep(std::time::Duration::from_millis(2));
                waited += 2;
            }
            Err(e) => return Err(Error::os(shown(), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_docker_reads_them() {
        let p = |s| parse_bytes("--memory", s);
        assert_eq!(p("6m").unwrap(), 6 << 20);
        assert_eq!(p("512MB").unwrap(), 512 << 20);
        assert_eq!(p("1.5g").unwrap(), 3 << 29);
        assert_eq!(p("1GiB").unwrap(), 1 << 30);
        assert_eq!(p("4096").unwrap(), 4096);
        assert_eq!(p("4096b").unwrap(), 4096);
        assert_eq!(p("2k").unwrap(), 2048);
        for bad in [
            "",
            "m",
            "-1",
            "1x",
            "1.m",
            "1..2m",
            "ib",
            "5ib",
            "99999999999p",
        ] {
            assert!(p(bad).is_err(), "{bad} parsed");
        }
        assert_eq!(parse_swap("-1").unwrap(), -1);
        assert_eq!(parse_swap("1g").unwrap(), 1 << 30);
    }

    #[test]
    fn cpus_parse_into_billionths() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_cpus("0.01").unwrap(), 10_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        assert_eq!(parse_cpus(".5").unwrap(), 500_000_000);
        for bad in ["", ".", "0", "0.0", "-1", "1e3", "1.0000000001", "abc"] {
            assert!(parse_cpus(bad).is_err(), "{bad} parsed");
        }
        assert_eq!(format_cpus(1_500_000_000), "1.5");
        assert_eq!(format_cpus(2_000_000_000), "2");
        assert_eq!(quota_us(500_000_000), 50_000);
    }

    #[test]
    fn lists_parse_and_print_as_the_kernel_writes_them() {
        assert_eq!(parse_list("x", "0-2,4").unwrap(), vec![0, 1, 2, 4]);
        assert_eq!(parse_list("x", "1").unwrap(), vec![1]);
        for bad in ["", "a", "2-1", "1,", "-1", "1-", "9999"] {
            assert!(parse_list("x", bad).is_err(), "{bad} parsed");
        }
        assert_eq!(format_list(&[0, 1, 2, 4, 6, 7]), "0-2,4,6-7");
    }

    #[test]
    fn values_are_checked_as_docker_checks_them() {
        let ok = |r: Resources| r.validate().is_ok();
        assert!(ok(Resources {
            memory: Some(6 << 20),
            ..Default::default()
        }));
        assert!(!ok(Resources {
            memory: Some(1 << 20),
            ..Default::default()
        }));
        assert!(!ok(Resources {
            memory_swap: Some(1 << 30),
            ..Default::default()
        }));
        assert!(!ok(Resources {
            memory: Some(1 << 30),
            memory_swap: Some(1 << 29),
            ..Default::default()
        }));
        assert!(ok(Resources {
            memory: Some(1 << 30),
            memory_swap: Some(-1),
            ..Default::default()
        }));
        assert!(ok(Resources {
            cpu_shares: Some(1),
            ..Default::default()
        }));
        assert!(!ok(Resources {
            nano_cpus: Some(1_000_000),
            ..Default::default()
        }));
        assert!(!ok(Resources {
            nano_cpus: Some(100_000 * 1_000_000_000),
            ..Default::default()
        }));
        assert!(!ok(Resources {
            cpuset_cpus: Some("4095".into()),
            ..Default::default()
        }));
        for bad in ["..", "a/../b", "a//b", "", "cgroup.procs"] {
            assert!(
                !ok(Resources {
                    cgroup_parent: Some(bad.into()),
                    ..Default::default()
                }),
                "{bad}"
            );
        }
        assert!(ok(Resources {
            cgroup_parent: Some("/ci/tests".into()),
            ..Default::default()
        }));
        assert!(!Resources::default().wanted());
    }

    #[test]
    fn limits_go_to_the_files_of_each_version() {
        let r = Resources {
            memory: Some(64 << 20),
            pids_limit: Some(0),
            nano_cpus: Some(500_000_000),
            cpu_shares: Some(1024),
            cpuset_cpus: Some("1".into()),
            ..Default::default()
        };
        let v1 = limit_files(&r, false);
        assert_eq!(
            v1,
            vec![
                ("memory.limit_in_bytes", (64u64 << 20).to_string()),
                ("memory.memsw.limit_in_bytes", (128u64 << 20).to_string()),
                ("pids.max", "max".to_string()),
                ("cpu.cfs_period_us", "100000".to_string()),
                ("cpu.cfs_quota_us", "50000".to_string()),
                ("cpu.shares", "1024".to_string()),
                ("cpuset.cpus", "1".to_string()),
            ]
        );
        let v2 = limit_files(
            &Resources {
                memory_swap: Some(-1),
                pids_limit: Some(7),
                ..r
            },
            true,
        );
        assert_eq!(
            v2,
            vec![
                ("memory.max", (64u64 << 20).to_string()),
                ("memory.swap.max", "max".to_string()),
                ("pids.max", "7".to_string()),
                ("cpu.max", "50000 100000".to_string()),
                ("cpu.weight", "100".to_string()),
                ("cpuset.cpus", "1".to_string()),
            ]
        );
        // --memory-reservation: the soft limit of each version.
        let soft = Resources {
            memory_reservation: Some(1 << 20),
            ..Default::default()
        };
        assert_eq!(
            limit_files(&soft, false),
            [("memory.soft_limit_in_bytes", "1048576".to_string())]
        );
        assert_eq!(
            limit_files(&soft, true),
            [("memory.low", "1048576".to_string())]
        );
        // --cpu-period and --cpu-quota: each alone, or both.
        let cfs = |period, quota, v2| {
            limit_files(
                &Resources {
                    cpu_period: period,
                    cpu_quota: quota,
                    ..Default::default()
                },
                v2,
            )
        };
        assert_eq!(
            cfs(Some(50_000), Some(20_000), false),
            [
                ("cpu.cfs_period_us", "50000".to_string()),
                ("cpu.cfs_quota_us", "20000".to_string())
            ]
        );
        assert_eq!(
            cfs(None, Some(-1), false),
            [("cpu.cfs_quota_us", "-1".to_string())]
        );
        assert_eq!(
            cfs(Some(50_000), Some(20_000), true),
            [("cpu.max", "20000 50000".to_string())]
        );
        assert_eq!(
            cfs(Some(50_000), None, true),
            [("cpu.max", "max 50000".to_string())]
        );
        assert_eq!(
            cfs(None, Some(30_000), true),
            [("cpu.max", "30000 100000".to_string())]
        );
    }

    #[test]
    fn cpu_shares_map_onto_cpu_weight_default_to_default() {
        let w: Vec<u64> = [0, 2, 3, 512, 1024, 2048, 262_143, 262_144, 1 << 30]
            .iter()
            .map(|s| cpu_weight(*s))
            .collect();
        assert_eq!(w, [1, 1, 2, 59, 100, 174, 10_000, 10_000, 10_000]);
    }

    #[test]
    fn v1_hierarchies_are_found_in_mountinfo() {
        let text = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/name\\040x rw - cgroup cgroup rw,pids
36 30 0:30 / /mnt/again rw - cgroup cgroup rw,memory
37 30 0:32 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
38 30 0:33 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
";
        assert_eq!(
            parse_v1_mounts(text, &["freezer"]),
            vec![(
                vec!["freezer".to_string()],
                PathBuf::from("/sys/fs/cgroup/freezer")
            )]
        );
        let m = parse_v1_mounts(text, &V1_CONTROLLERS);
        assert_eq!(
            m,
            vec![
                (
                    vec!["cpu".to_string(), "cpuacct".to_string()],
                    PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
                ),
                (
                    vec!["memory".to_string()],
                    PathBuf::from("/sys/fs/cgroup/memory")
                ),
                (
                    vec!["pids".to_string()],
                    PathBuf::from("/sys/fs/cgroup/name x")
                ),
            ]
        );
    }
}
