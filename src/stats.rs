//! `tupper stats`: what running containers use, in the columns of docker's
//! `stats` (CPU %, memory and its limit, network and block I/O, PIDs).
//!
//! A container with a cgroup (one with limits) is read from it, as docker
//! reads its own: CPU time from `cpuacct.usage` (v1) or `cpu.stat` (v2),
//! memory from `memory.usage_in_bytes` or `memory.current` less the
//! inactive page cache (docker's "usage"), the limit, `pids.current`. A
//! container without one is read from `/proc`: the processes of its PID
//! namespace (as `top` finds them), their CPU time, resident memory and
//! threads, against the host's memory. Network I/O is that of its network
//! namespace's interfaces but `lo` (`/proc/PID/net/dev` of its PID 1; none
//! for `--net host`); block I/O the sum of its processes' `read_bytes` and
//! `write_bytes` (`/proc/PID/io`). The CPU % is the CPU time used between
//! two samples over the time between them, 100% a CPU (docker's).

use std::time::Instant;

use serde::Serialize;

use crate::container::{Record, Status};
use crate::error::{Error, Result};
use crate::store::Store;

/// What a running container has used so far, at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Its ID.
    pub id: String,
    /// Its name.
    pub name: Option<String>,
    /// CPU time, nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, bytes.
    pub memory_bytes: u64,
    /// Its memory limit, else the host's memory, bytes.
    pub memory_limit_bytes: u64,
    /// Received on its interfaces but `lo`, bytes.
    pub net_rx_bytes: u64,
    /// Sent from them, bytes.
    pub net_tx_bytes: u64,
    /// Read from block devices by its processes, bytes.
    pub block_read_bytes: u64,
    /// Written to them, bytes.
    pub block_write_bytes: u64,
    /// Its tasks (threads).
    pub pids: u64,
    /// When it was taken.
    #[serde(skip)]
    pub at: Option<Instant>,
}

/// A sample and the CPU % since the one before it, as `stats` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// The sample.
    #[serde(flatten)]
    pub sample: Sample,
    /// CPU time over wall time since the sample before, 100 a CPU.
    pub cpu_percent: f64,
    /// Memory in use over the limit, percent.
    pub memory_percent: f64,
}

impl Store {
    /// A sample of running container `name_or_id`.
    pub fn sample(&self, name_or_id: &str) -> Result<Sample> {
        let rec = self.find_container(name_or_id)?;
        let not_running = || Error::msg(format!("stats {name_or_id}: it is not running"));
        if rec.status != Status::Running {
            return Err(not_running());
        }
        // The pidfd keeps PID 1's number from being reused while we look.
        let (pid1, _pidfd) = self.pin_pid1(&rec.id).ok_or_else(not_running)?;
        let pids = self.members(&rec, pid1)?.ok_or_else(not_running)?;
        Ok(sample_of(&rec, pid1, &pids))
    }
}

/// [`Stats`] of `after`, with the CPU % since `before` (0 without it).
pub fn stats(before: Option<&Sample>, after: Sample) -> Stats {
    let cpu_percent = match (before, before.and_then(|b| b.at), after.at) {
        (Some(b), Some(t0), Some(t1)) if t1 > t0 => {
            let used = after.cpu_ns.saturating_sub(b.cpu_ns) as f64;
            used / (t1 - t0).as_nanos() as f64 * 100.0
        }
        _ => 0.0,
    };
    let memory_percent = match after.memory_limit_bytes {
        0 => 0.0,
        limit => after.memory_bytes as f64 / limit as f64 * 100.0,
    };
    Stats {
        sample: after,
        cpu_percent,
        memory_percent,
    }
}

/// Reads container `rec`, whose PID 1 is `pid1` and processes `pids`.
fn sample_of(rec: &Record, pid1: i32, pids: &[i32]) -> Sample {
    let mut procs = ProcSums::default();
    for &pid in pids {
        procs.add(pid);
    }
    let host_memory = host_memory_bytes();
    let cgroup = CgroupSums::read(&rec.cgroups);
    let (net_rx_bytes, net_tx_bytes) = match rec.network.as_ref().map(|n| n.mode.as_str()) {
        Some("host") => (0, 0),
        _ => net_bytes(pid1),
    };
    Sample {
        id: rec.id.clone(),
        name: rec.name.clone(),
        cpu_ns: cgroup.cpu_ns.unwrap_or(procs.cpu_ticks * TICK_NS),
        memory_bytes: cgroup.memory.unwrap_or(procs.rss_bytes),
        memory_limit_bytes: cgroup
            .memory_limit
            .map_or(host_memory, |l| l.min(host_memory)),
        net_rx_bytes,
        net_tx_bytes,
        block_read_bytes: procs.read_bytes,
        block_write_bytes: procs.write_bytes,
        pids: cgroup.pids.unwrap_or(procs.threads),
        at: Some(Instant::now()),
    }
}

/// Nanoseconds in a clock tick of /proc's times ([`crate::top::clock_ticks`]).
const TICK_NS: u64 = 1_000_000_000 / 100;

/// The sums over a container's processes, from /proc.
#[derive(Debug, Default)]
struct ProcSums {
    cpu_ticks: u64,
    rss_bytes: u64,
    threads: u64,
    read_bytes: u64,
    write_bytes: u64,
}

impl ProcSums {
    /// Adds process `pid` (nothing if it ended meanwhile).
    fn add(&mut self, pid: i32) {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // After the name in parentheses: state is field 0, utime 11, stime 12.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                self.cpu_ticks += num(11) + num(12);
            }
        }
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            self.rss_bytes += field(&status, "VmRSS:").unwrap_or(0) * 1024;
            self.threads += field(&status, "Threads:").unwrap_or(0);
        }
        if let Ok(io) = std::fs::read_to_string(format!("/proc/{pid}/io")) {
            self.read_bytes += field(&io, "read_bytes:").unwrap_or(0);
            self.write_bytes += field(&io, "write_bytes:").unwrap_or(0);
        }
    }
}

/// The first number after `key` on the line that starts with it.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// What a container's cgroup says, where it has one.
#[derive(Debug, Default)]
struct CgroupSums {
    cpu_ns: Option<u64>,
    memory: Option<u64>,
    memory_limit: Option<u64>,
    pids: Option<u64>,
}

impl CgroupSums {
    /// Reads the cgroup directories `dirs` (v1: one per controller; v2: one).
    fn read(dirs: &[String]) -> CgroupSums {
        let mut c = CgroupSums::default();
        let read = |dir: &str, file: &str| std::fs::read_to_string(format!("{dir}/{file}")).ok();
        let number = |dir: &str, file: &str| read(dir, file)?.trim().parse::<u64>().ok();
        for dir in dirs {
            let dir = dir.as_str();
            if let Some(ns) = number(dir, "cpuacct.usage") {
                c.cpu_ns = Some(ns);
            } else if let Some(us) = read(dir, "cpu.stat").and_then(|t| field(&t, "usage_usec ")) {
                c.cpu_ns = Some(us * 1000);
            }
            // docker's usage: without the page cache that can be dropped.
            if let Some(used) = number(dir, "memory.usage_in_bytes") {
                let inactive = read(dir, "memory.stat")
                    .and_then(|t| field(&t, "total_inactive_file "))
                    .unwrap_or(0);
                c.memory = Some(used.saturating_sub(inactive));
                c.memory_limit = number(dir, "memory.limit_in_bytes");
            } else if let Some(used) = number(dir, "memory.current") {
                let inactive = read(dir, "memory.stat")
                    .and_then(|t| field(&t, "inactive_file "))
                    .unwrap_or(0);
                c.memory = Some(used.saturating_sub(inactive));
                // `max` is no limit: not a number.
                c.memory_limit = number(dir, "memory.max");
            }
            if let Some(n) = number(dir, "pids.current") {
                c.pids = Some(n);
            }
        }
        c
    }
}

/// The host's memory (`MemTotal`), bytes.
fn host_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| field(&t, "MemTotal:"))
        .unwrap_or(0)
        * 1024
}

/// Bytes received and sent on the interfaces of `pid`'s network namespace
/// but `lo`.
fn net_bytes(pid: i32) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    parse_net_dev(&text)
}

/// [`net_bytes`] of a `/proc/net/dev` text.
fn parse_net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0, 0);
    // Two header lines, then `NAME: rx_bytes packets errs drop fifo frame
    // compressed multicast tx_bytes ...`.
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        rx += f.first().copied().unwrap_or(0);
        tx += f.get(8).copied().unwrap_or(0);
    }
    (rx, tx)
}

/// docker's `stats` table.
pub fn table(list: &[Stats]) -> String {
    let rows: Vec<[String; 8]> = list.iter().map(shown).collect();
    crate::cli::columns(
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS",
        ],
        &rows,
    )
}

/// The columns of a row of [`table`], as docker writes them.
fn shown(s: &Stats) -> [String; 8] {
    let x = &s.sample;
    [
        x.id.clone(),
        x.name.clone().unwrap_or_else(|| "--".to_string()),
        format!("{:.2}%", s.cpu_percent),
        format!(
            "{} / {}",
            binary_size(x.memory_bytes),
            binary_size(x.memory_limit_bytes)
        ),
        format!("{:.2}%", s.memory_percent),
        format!(
            "{} / {}",
            decimal_size(x.net_rx_bytes),
            decimal_size(x.net_tx_bytes)
        ),
        format!(
            "{} / {}",
            decimal_size(x.block_read_bytes),
            decimal_size(x.block_write_bytes)
        ),
        x.pids.to_string(),
    ]
}

/// What `stats --format` renders: the JSON of `--json`, and docker's
/// fields as its table writes them (`{{.CPUPerc}}` is `0.07%`,
/// `{{.MemUsage}}` `1.2MiB / 1.9GiB`; `ID`, `Name`, `Container`, `MemPerc`,
/// `NetIO`, `BlockIO`, `PIDs`).
pub fn template_value(s: &Stats) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    let [id, name, cpu, mem, mem_perc, net, block, pids] = shown(s);
    if let Some(map) = v.as_object_mut() {
        for (key, value) in [
            ("ID", id),
            (
                "Container",
                s.sample.name.clone().unwrap_or_else(|| s.sample.id.clone()),
            ),
            ("Name", name),
            ("CPUPerc", cpu),
            ("MemUsage", mem),
            ("MemPerc", mem_perc),
            ("NetIO", net),
            ("BlockIO", block),
            ("PIDs", pids),
        ] {
            map.insert(key.to_string(), value.into());
        }
    }
    v
}

/// A size in powers of 1024, four significant digits, as docker writes
/// memory (`units.BytesSize`: `1.5MiB`).
pub fn binary_size(bytes: u64) -> String {
    scaled(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"], 4)
}

/// A size in powers of 1000, three significant digits, as docker writes
/// I/O (`units.HumanSizeWithPrecision(n, 3)`: `1.23MB`).
pub fn decimal_size(bytes: u64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 3)
}

/// `bytes` in the largest unit not above it, with `digits` significant
/// digits and no trailing zeros (Go's `%g`).
pub(crate) fn scaled(bytes: u64, base: f64, units: &[&str], digits: i32) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= base && unit + 1 < units.len() {
        value /= base;
        unit += 1;
    }
    // Digits before the point (no libm on the binary's account).
    let whole = (value as u64).max(1).to_string().len() as i32;
    let decimals = (digits - whole).max(0) as usize;
    let text = format!("{value:.decimals$}");
    let text = match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.'),
        false => &text,
    };
    format!("{text}{}", units[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_dockers() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(1536), "1.5KiB");
        assert_eq!(binary_size(64 << 20), "64MiB");
        assert_eq!(decimal_size(1_234), "1.23kB");
        assert_eq!(binary_size(1_234_567), "1.177MiB");
        assert_eq!(decimal_size(123_456_789), "123MB");
        assert_eq!(decimal_size(999), "999B");
        assert_eq!(decimal_size(2_000_000), "2MB");
    }

    #[test]
    fn net_dev_counts_every_interface_but_lo() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:  100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
eth0:  4200      30    0    0    0     0          0         0     3100      20    0    0    0     0       0          0\n";
        assert_eq!(parse_net_dev(text), (4200, 3100));
    }

    #[test]
    fn cpu_percent_is_cpu_time_over_wall_time() {
        let t0 = Instant::now();
        let sample = |cpu_ns, at| Sample {
            id: "x".into(),
            name: None,
            cpu_ns,
            memory_bytes: 50,
            memory_limit_bytes: 200,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            block_read_bytes: 0,
            block_write_bytes: 0,
            pids: 1,
            at: Some(at),
        };
        let before = sample(1_000_000_000, t0);
        let after = sample(1_500_000_000, t0 + std::time::Duration::from_secs(1));
        let s = stats(Some(&before), after.clone());
        assert!((s.cpu_percent - 50.0).abs() < 1e-9, "{}", s.cpu_percent);
        assert!((s.memory_percent - 25.0).abs() < 1e-9);
        assert_eq!(stats(None, after).cpu_percent, 0.0);
    }
}
