//! Containers: the snapshot, the record, the name and the run lock.
//!
//! A container is `ROOT/containers/ID` (a writable snapshot of its image) plus, in
//! `ROOT/state/containers/`, a record `ID.json` and a lock file `ID.lock`. The
//! `tupper` process that runs the container holds an exclusive `flock` on `ID.lock`
//! for the whole run and writes the container's host pid into it; the kernel drops
//! the lock when that process dies, so a record whose lock is free and that has no
//! exit code belongs to a run that crashed (`dead`). A name is
//! `ROOT/state/names/NAME`, a symlink to the ID, created atomically: two runs that
//! race for a name are settled by the kernel (`symlinkat` fails with `EEXIST`).

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::fsutil::{self, FileLock};
use crate::names;
use crate::net;
use crate::pool;
use crate::store::{destroy_subvolume, Store};
use crate::timefmt;

/// What a container is doing, as `tupper ps` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Its `tupper` process is alive (starting or running the command).
    Running,
    /// The command ended; `exit_code` says how.
    Exited,
    /// Its `tupper` process died without recording an exit (a crash): `rm` it.
    Dead,
    /// Made by `create`: its command has not run yet (`start` runs it).
    Created,
}

/// What `wait --condition` waits for (podman's conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Made and never started (`create`).
    Created,
    /// Its command runs, not paused.
    Running,
    /// Paused.
    Paused,
    /// Running, and its health check says `healthy`.
    Healthy,
    /// Running, and its health check says `unhealthy`.
    Unhealthy,
    /// Its command ended (`exited` too): the default, with its exit code.
    Stopped,
    /// Removed (`rm`, `--rm`); podman's `removing`.
    Removing,
}

impl WaitCondition {
    /// Parses podman's name of a condition (`exited` is `stopped`).
    pub fn parse(name: &str) -> Result<WaitCondition> {
        use WaitCondition as C;
        Ok(match name {
            "created" => C::Created,
            "running" => C::Running,
            "paused" => C::Paused,
            "healthy" => C::Healthy,
            "unhealthy" => C::Unhealthy,
            "stopped" | "exited" => C::Stopped,
            "removing" | "removed" => C::Removing,
            other => {
                return Err(Error::msg(format!(
                    "wait --condition {other}: created, running, paused, healthy, unhealthy, stopped (exited) or removing"
                )))
            }
        })
    }

    /// Its name, as `parse` takes it.
    pub fn name(self) -> &'static str {
        use WaitCondition as C;
        match self {
            C::Created => "created",
            C::Running => "running",
            C::Paused => "paused",
            C::Healthy => "healthy",
            C::Unhealthy => "unhealthy",
            C::Stopped => "stopped",
            C::Removing => "removing",
        }
    }
}

/// A container's record, as stored in `state/containers/ID.json` and shown by `ps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// 12 lowercase hex digits.
    pub id: String,
    /// The `--name`, if any.
    pub name: Option<String>,
    /// The image it was made from.
    pub image: String,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The hostname inside.
    pub hostname: String,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Creation time, seconds since the epoch.
    pub created_unix: i64,
    /// The nanoseconds of `created_unix`: the order of containers made in
    /// one second (`ps -n`, `ps -l`).
    #[serde(default)]
    pub created_nsec: u32,
    /// Running, exited or dead (computed from the run lock when read).
    pub status: Status,
    /// The exit code (docker's convention) once it exited.
    pub exit_code: Option<i32>,
    /// When it exited, seconds since the epoch.
    pub finished_unix: Option<i64>,
    /// The host pid of the container's PID 1 while it runs.
    #[serde(default)]
    pub pid: Option<i32>,
    /// Whether it is removed when it exits (`--rm`).
    pub remove: bool,
    /// Its network settings (mode, address, gateway, veth, ports).
    #[serde(default)]
    pub network: Option<net::Settings>,
    /// What its command may do: capabilities, filter, `no_new_privs`
    /// (`None` in a record written before tupper recorded them).
    #[serde(default)]
    pub security: Option<Security>,
    /// Its command's environment, `KEY=VALUE`: `exec` starts with it (empty
    /// in a record written before tupper recorded it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Its working directory (`-w`), the default of `exec`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Whether its root is read-only (`--read-only`).
    #[serde(default)]
    pub read_only: bool,
    /// The mounts the user asked for (`-v`, `--tmpfs`), sources resolved.
    #[serde(default)]
    pub mounts: Vec<crate::volume::Mount>,
    /// Its resource limits (`--memory`, `--pids-limit`, ...), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::cgroup::Resources>,
    /// Its cgroup's directories, one per hierarchy (none without limits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<String>,
    /// Whether the kernel killed one of its tasks for want of memory (read
    /// from its cgroup when it ended; only shown when it did).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
    /// Its command's `--ulimit`s (`NAME=SOFT:HARD`), which `exec` gives its
    /// commands too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<String>,
    /// The signal `stop` sends first (`--stop-signal`; `None`: SIGTERM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<i32>,
    /// `stop`'s wait before SIGKILL, seconds (`--stop-timeout`; -1:
    /// forever; `None`: 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// Its `--sysctl`s, `NAME=VALUE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<String>,
    /// Its `--device`s, `HOST:CONTAINER`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Whether its command has a terminal of its own (`-t`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    /// Whether it runs tupper's init as PID 1 (`--init`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// Whether it is privileged (`--privileged`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// When its command last started (`tupper start` starts it again),
    /// seconds since the epoch; `None`: at its creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix: Option<i64>,
    /// The cgroup that `pause` freezes (made by the first `pause`, see
    /// [`crate::freezer`]), removed with the container's other cgroups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freezer: Option<String>,
    /// Whether it is paused (computed from its freezer when read).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Its labels (`--label`, `--label-file`), which `ps --filter` matches.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its configuration, as docker's container has one: its image's with
    /// the run's command, entrypoint, `-e`, `-w`, `-u`, labels, stop signal
    /// and published ports over it ([`crate::run::container_config`]); what
    /// `commit` gives the new image. `None` in a record written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<crate::image_config::ImageConfig>,
    /// Its restart policy (`--restart`, [`crate::restart::Policy`]);
    /// `None`: `no`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// How many times its policy restarted it since it was last started
    /// by hand (docker's `RestartCount`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restart_count: u32,
    /// Whether a user stopped it since it was last started by hand, which
    /// its restart policy respects.
    #[serde(default, skip_serializing_if = "is_not_stopped")]
    pub stopped: crate::restart::Stopped,
    /// The size of its `/dev/shm` in bytes (`--shm-size`; `None`: 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// `host` with `--uts host` (the host's UTS namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    /// `host` with `--cgroupns host` (the host's cgroup namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroupns: Option<String>,
    /// Its `--ipc` mode, unless `private`: `shareable`, `none`, `host`, or
    /// `container:ID` (the ID of the container whose IPC it joins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    /// Its `--pid` mode, unless `private`: `host`, or `container:ID` (the
    /// ID of the container whose PID namespace it joins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<String>,
    /// Its NIS domain name (`--domainname`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// `--oom-score-adj`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    /// `--storage-opt size=`: the limit of what it writes to its root, in
    /// bytes (a qgroup limit of its subvolume, set when it was made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_size: Option<u64>,
    /// `--log-driver` and `--log-opt`, unless the default (one file that
    /// grows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<crate::logfile::LogConfig>,
    /// `--timeout`, seconds: each run of its command is killed after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// `--health-on-failure`, unless `none`.
    #[serde(default, skip_serializing_if = "crate::health::OnFailure::is_none")]
    pub health_on_failure: crate::health::OnFailure,
    /// Whether its restart policy is waiting to start it again (computed
    /// when read: see [`Store::hold_restarting`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restarting: bool,
    /// Its health check's last state while it has one (read with the
    /// record, never written with it: see [`crate::health`]).
    #[serde(default, skip_serializing)]
    pub health: Option<crate::health::Health>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_not_stopped(s: &crate::restart::Stopped) -> bool {
    *s == crate::restart::Stopped::No
}

/// See [`Store::stored_changes`].
#[derive(Deserialize)]
pub(crate) struct StoredChanges {
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
    /// The freezer.
    #[serde(default)]
    pub freezer: Option<String>,
    /// The cgroups.
    #[serde(default)]
    pub cgroups: Vec<String>,
    /// The limits.
    #[serde(default)]
    pub resources: Option<crate::cgroup::Resources>,
    /// What a user did to stop it.
    #[serde(default)]
    pub stopped: crate::restart::Stopped,
    /// Its restart policy (`update --restart`).
    #[serde(default)]
    pub restart: Option<String>,
    /// Its network settings (`network connect`, `network disconnect`).
    #[serde(default)]
    pub network: Option<crate::net::Settings>,
}

/// What a run was given besides its image, network and security settings:
/// its environment, working directory, `--read-only` and the user's mounts.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    /// The command's environment, `KEY=VALUE` (what `exec` starts with).
    pub env: Vec<String>,
    /// The working directory (`-w`).
    pub workdir: Option<String>,
    /// Whether the root is read-only.
    pub read_only: bool,
    /// The user's mounts, sources resolved.
    pub mounts: Vec<crate::volume::Mount>,
    /// The resource limits, if any.
    pub resources: Option<crate::cgroup::Resources>,
    /// The cgroup's directories, before they are made.
    pub cgroups: Vec<String>,
    /// The `--ulimit`s, `NAME=SOFT:HARD`.
    pub ulimits: Vec<String>,
    /// `--stop-signal`, a number.
    pub stop_signal: Option<i32>,
    /// `--stop-timeout`, seconds (-1: forever).
    pub stop_timeout: Option<i64>,
    /// The `--sysctl`s, `NAME=VALUE`.
    pub sysctls: Vec<String>,
    /// The `--device`s, `HOST:CONTAINER`.
    pub devices: Vec<String>,
    /// `-t`.
    pub tty: bool,
    /// `--init`.
    pub init: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// `--label`s.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The container's configuration (see [`Record::config`]).
    pub config: Option<crate::image_config::ImageConfig>,
    /// `--restart`, unless `no`.
    pub restart: Option<String>,
    /// `--shm-size`, bytes.
    pub shm_size: Option<u64>,
    /// `--uts host`: `host`.
    pub uts: Option<String>,
    /// `--cgroupns host`: `host`.
    pub cgroupns: Option<String>,
    /// `--ipc`, unless `private`.
    pub ipc: Option<String>,
    /// `--pid`, unless `private`.
    pub pid_mode: Option<String>,
    /// `--domainname`.
    pub domainname: Option<String>,
    /// `--oom-score-adj`.
    pub oom_score_adj: Option<i32>,
    /// `--storage-opt size=`, bytes.
    pub storage_size: Option<u64>,
    /// `--log-driver` and `--log-opt`.
    pub log: Option<crate::logfile::LogConfig>,
    /// `--timeout`, seconds.
    pub timeout: Option<u64>,
    /// `--health-on-failure`.
    pub health_on_failure: crate::health::OnFailure,
}

/// A container's security settings, as `inspect` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// The capabilities its command keeps, `CAP_` names in number order.
    pub capabilities: Vec<String>,
    /// The system-call filter: `builtin` (docker's default), `profile`
    /// (`--security-opt seccomp=FILE`) or `unconfined`.
    pub seccomp: String,
    /// With `profile`: the profile's text (docker's JSON), which `exec` and
    /// a later `start` compile again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<String>,
    /// Whether its command runs with `no_new_privs`.
    pub no_new_privileges: bool,
    /// Who its command runs as, with `-u` or `--group-add` (`None`: root,
    /// and in a record written before tupper had them).
    #[serde(default)]
    pub user: Option<User>,
    /// Its user namespace: `auto` (`--userns auto`, see [`crate::userns`]);
    /// `None`: the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<String>,
}

/// The user of a run with `-u` or `--group-add`, as given and as resolved in
/// the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// `-u` as given (`None`: only `--group-add`).
    pub user: Option<String>,
    /// `--group-add` as given.
    pub group_add: Vec<String>,
    /// The uid.
    pub uid: u32,
    /// The gid.
    pub gid: u32,
    /// The supplementary groups.
    pub groups: Vec<u32>,
}

impl User {
    /// The user of a run of `spec`, resolved as `resolved`.
    pub fn of(spec: &crate::run::Spec, resolved: Option<&crate::user::Resolved>) -> Option<User> {
        resolved.map(|r| User {
            user: spec.user.clone(),
            group_add: spec.group_add.clone(),
            uid: r.uid,
            gid: r.gid,
            groups: r.groups.clone(),
        })
    }
}

impl Security {
    /// The settings of a run of `spec`.
    pub fn of(spec: &crate::run::Spec) -> Security {
        Security {
            capabilities: crate::capabilities::names(spec.capabilities),
            seccomp: match (spec.seccomp_unconfined, &spec.seccomp_profile) {
                (true, _) => "unconfined",
                (false, None) => "builtin",
                (false, Some(_)) => "profile",
            }
            .to_string(),
            seccomp_profile: spec
                .seccomp_profile
                .clone()
                .filter(|_| !spec.seccomp_unconfined),
            no_new_privileges: spec.no_new_privileges,
            user: None,
            userns: spec.userns.then(|| "auto".to_string()),
        }
    }
}

/// A container whose restart policy waits to start it again (see
/// [`Store::hold_restarting`]).
pub(crate) struct Restarting<'s> {
    store: &'s Store,
    name: String,
    _lock: FileLock,
}

impl Drop for Restarting<'_> {
    fn drop(&mut self) {
        let _ = rfs::unlinkat(
            self.store.records.as_fd(),
            self.name.as_str(),
            AtFlags::empty(),
        );
    }
}

/// A container that was just made: locked, recorded, named and snapshotted.
#[derive(Debug)]
pub(crate) struct Created {
    pub record: Record,
    pub lock: FileLock,
    pub rootfs: OwnedFd,
    /// Whether the image's pool of spare snapshots is below half its size.
    pub pool_low: bool,
}

/// A container made before, locked for another start of its command
/// (`tupper start`).
#[derive(Debug)]
pub(crate) struct Again {
    /// Its run lock, emptied of the last run's pid.
    pub lock: FileLock,
    /// Its record as it was, which a start that fails writes back.
    pub before: Record,
    /// Its root.
    pub rootfs: OwnedFd,
    /// Whether its restart policy starts it (not a user).
    pub restarted: bool,
}

impl Store {
    /// Takes container `name_or_id`, which is not running, for another
    /// start: its run lock, its record, its root. What a killed run left
    /// (its address lease, its DNAT chains, its cgroup) goes first.
    pub(crate) fn lock_for_start(&self, name_or_id: &str) -> Result<Again> {
        let rec = self.find_container(name_or_id)?;
        let running = || {
            Error::msg(format!("start {name_or_id}: it is running"))
                .with_advice("`tupper stop` it first, or `tupper restart` it")
        };
        let orphan = || {
            Error::msg(format!(
                "start {name_or_id}: its tupper was killed, but its command still runs"
            ))
            .with_advice("use `tupper rm -f` to end it")
        };
        match rec.status {
            Status::Running => return Err(running()),
            Status::Dead if rec.pid.is_some() => return Err(orphan()),
            _ => {}
        }
        let lock_name = format!("{}.lock", rec.id);
        let lock = FileLock::acquire(self.records.as_fd(), &lock_name, true, false)
            .context(|| format!("lock state/containers/{lock_name}"))?
            .ok_or_else(running)?;
        // Again, under the lock: it may have been removed (the lock file is
        // then a new one, which goes), or run and ended, meanwhile.
        let Some(before) = self.read_stored(&rec.id) else {
            self.drop_new_lock(&rec.id, lock);
            return Err(Error::msg(format!("no such container: {name_or_id}")));
        };
        if before.status == Status::Running {
            // Recorded as running, and its lock was free: a killed run.
            if left_running(self, &before, &lock_name) {
                return Err(orphan());
            }
            if let Some(n) = before.network.as_ref().filter(|n| n.mode == "bridge") {
                for on in n.networks() {
                    self.leave_network_dead(on, &before.id)?;
                }
                net::release_dead(&self.state_path(), &before.id)?;
            }
            crate::cgroup::remove_of(&before)?;
        }
        // The last run's `PID NSINO started` goes: until this run writes its
        // own, `exec` and `stop` must not take that pid for its PID 1.
        rfs::ftruncate(lock.fd(), 0).context(|| format!("empty state/containers/{lock_name}"))?;
        let rootfs = fsutil::open_dir(self.containers.as_fd(), before.id.as_str())
            .context(|| format!("open containers/{}", before.id))?;
        Ok(Again {
            lock,
            before,
            rootfs,
            restarted: false,
        })
    }

    /// Records that container `again` starts again, with these network
    /// settings and cgroups: running, no exit code, started now.
    /// A start by its restart policy (`restarted`) counts one more
    /// restart and keeps what a user did meanwhile; a start by hand counts
    /// from 0 and forgets it.
    pub(crate) fn record_start_again(
        &self,
        again: Again,
        network: net::Settings,
        cgroups: Vec<String>,
    ) -> Result<Created> {
        let Again {
            lock,
            before,
            rootfs,
            restarted,
        } = again;
        // Under the record lock: a `rename` meanwhile keeps its name.
        let _guard = self.lock_record(&before.id);
        let mut record = self.read_stored(&before.id).unwrap_or(before);
        record.status = Status::Running;
        record.exit_code = None;
        record.finished_unix = None;
        record.pid = None;
        record.oom_killed = false;
        record.started_unix = Some(timefmt::now());
        record.network = Some(network);
        record.cgroups = cgroups;
        record.freezer = None;
        record.paused = false;
        match restarted {
            true => record.restart_count += 1,
            false => {
                record.restart_count = 0;
                record.stopped = crate::restart::Stopped::No;
            }
        }
        self.write_record(&record)?;
        Ok(Created {
            record,
            lock,
            rootfs,
            pool_low: false,
        })
    }

    /// Writes back the record of a container whose start failed, as it was
    /// before ([`Again::before`]), with its name as it is now.
    pub(crate) fn put_back_record(&self, before: &Record) -> Result<()> {
        let _guard = self.lock_record(&before.id);
        let mut record = before.clone();
        if let Some(stored) = self.stored_changes(&before.id) {
            record.name = stored.name;
        }
        self.write_record(&record)
    }

    /// Takes the run lock of a new container `id` (held until it ends).
    pub(crate) fn lock_new_container(&self, id: &str) -> Result<FileLock> {
        let lock_name = format!("{id}.lock");
        FileLock::acquire(self.records.as_fd(), &lock_name, true, true)
            .context(|| format!("create run lock state/containers/{lock_name}"))?
            .ok_or_else(|| Error::msg(format!("lock state/containers/{lock_name}: held elsewhere")))
    }

    /// Gives up the run lock of a container that was never made (and its file).
    pub(crate) fn drop_new_lock(&self, id: &str, lock: FileLock) {
        let _ = rfs::unlinkat(
            self.records.as_fd(),
            format!("{id}.lock").as_str(),
            AtFlags::empty(),
        );
        drop(lock);
    }

    /// Whether container `id` is running: its run lock is held, or its
    /// command outlived its tupper (see [`orphan_pid`]; its address and ports
    /// stay its own until `rm -f` ends it).
    pub fn is_running(&self, id: &str) -> bool {
        let lock_name = format!("{id}.lock");
        fsutil::is_locked(self.records.as_fd(), &lock_name)
            || orphan_pid(self, &lock_name).is_some()
    }

    /// Makes container `id` from `image` under its run `lock`: record, name,
    /// snapshot. On failure everything made so far is undone.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_container(
        &self,
        lock: FileLock,
        id: &str,
        image: &str,
        name: Option<&str>,
        hostname: &str,
        command: &[String],
        remove: bool,
        network: net::Settings,
        security: Security,
        config: RunConfig,
    ) -> Result<Created> {
        let mut undo = Undo {
            store: self,
            id,
            name: None,
            record: false,
            snapshot: false,
            lock: true,
        };
        if let Some(n) = name {
            names::validate("container name", n)?;
        }
        let image_fd = self.open_image(image)?;
        let id = id.to_string();
        let clock = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        let now = clock.tv_sec;
        let record = Record {
            id: id.clone(),
            name: name.map(str::to_string),
            image: image.to_string(),
            command: command.to_vec(),
            hostname: hostname.to_string(),
            created: timefmt::rfc3339(now),
            created_unix: now,
            created_nsec: clock.tv_nsec as u32,
            status: Status::Running,
            exit_code: None,
            finished_unix: None,
            pid: None,
            remove,
            network: Some(network),
            security: Some(security),
            env: config.env,
            workdir: config.workdir,
            read_only: config.read_only,
            mounts: config.mounts,
            resources: config.resources,
            cgroups: config.cgroups,
            oom_killed: false,
            ulimits: config.ulimits,
            stop_signal: config.stop_signal,
            stop_timeout: config.stop_timeout,
            sysctls: config.sysctls,
            devices: config.devices,
            tty: config.tty,
            init: config.init,
            privileged: config.privileged,
            started_unix: None,
            freezer: None,
            paused: false,
            labels: config.labels,
            config: config.config,
            restart: config.restart,
            shm_size: config.shm_size,
            uts: config.uts,
            cgroupns: config.cgroupns,
            ipc: config.ipc,
            pid_mode: config.pid_mode,
            domainname: config.domainname,
            oom_score_adj: config.oom_score_adj,
            storage_size: config.storage_size,
            log: config.log,
            timeout: config.timeout,
            health_on_failure: config.health_on_failure,
            restarting: false,
            health: None,
            restart_count: 0,
            stopped: crate::restart::Stopped::No,
        };
        self.write_new_record(&record)?;
        undo.record = true;
        if let Some(n) = name {
            self.claim_name(n, &id)?;
            undo.name = Some(n);
        }
        let pool_size = pool::configured_size();
        let key = match pool_size {
            0 => None,
            _ => Some(pool::image_key(image_fd.as_fd())?),
        };
        let spare = match &key {
            None => None,
            Some(key) => self.take_spare(key, &id)?,
        };
        if spare.is_none() {
            let cid = fsutil::cstring("container id", id.as_str())?;
            tupper_ioctl::snapshot(image_fd.as_fd(), self.containers.as_fd(), &cid, false)
                .context(|| format!("snapshot images/{image} -> containers/{id}"))?;
        }
        undo.snapshot = true;
        let rootfs = fsutil::open_dir(self.containers.as_fd(), id.as_str())
            .context(|| format!("open containers/{id}"))?;
        if let Some(bytes) = record.storage_size {
            self.limit_storage(rootfs.as_fd(), &id, bytes)?;
        }
        undo.disarm();
        self.container_event(&record, "create", &[]);
        Ok(Created {
            record,
            lock,
            rootfs,
            // Low, and no refill at work already (else a background process
            // per start would be forked only to find the refill lock taken).
            pool_low: spare.unwrap_or(0) < pool_size / 2
                && !key.as_deref().is_some_and(|k| self.refilling(k)),
        })
    }

    /// Takes `name` for container `id`, atomically. A name left by a container whose
    /// record is gone is taken over.
    fn claim_name(&self, name: &str, id: &str) -> Result<()> {
        for _ in 0..2 {
            match rfs::symlinkat(id, self.names.as_fd(), name) {
                Ok(()) => return Ok(()),
                Err(Errno::EXIST) => {
                    let owner = self.name_owner(name);
                    match owner {
                        Some(other) if self.is_named(&other, name) => {
                            return Err(Error::msg(format!(
                                "container name {name} is already in use by container {other}"
                            ))
                            .with_advice(
                                "remove that container with `tupper rm`, or choose another name",
                            ));
                        }
                        _ => {
                            // A leftover of a crash between naming and
                            // recording, or in the middle of a rename.
                            let _ = rfs::unlinkat(self.names.as_fd(), name, AtFlags::empty());
                        }
                    }
                }
                Err(e) => return Err(Error::os(format!("claim container name {name}"), e)),
            }
        }
        Err(Error::msg(format!(
            "container name {name} is already in use"
        )))
    }

    /// Whether container `id`'s record exists and names it `name` (a name
    /// link is only trusted when its record agrees). A record that cannot be
    /// read yet (being written) counts as agreeing.
    fn is_named(&self, id: &str, name: &str) -> bool {
        match fsutil::read_file(self.records.as_fd(), format!("{id}.json").as_str()) {
            Ok(bytes) => serde_json::from_slice::<Record>(&bytes)
                .map_or(true, |r| r.name.as_deref() == Some(name)),
            Err(Errno::NOENT) => false,
            Err(_) => true,
        }
    }

    /// Renames a container (`tupper rename`, docker's): running or not. The
    /// new name is claimed first, then the record says it, then the old name
    /// goes; a crash in between leaves a name link that its record does not
    /// confirm, which no lookup trusts and the next claim takes over. Under
    /// the record lock ([`Store::lock_record`]), so that a run that ends
    /// meanwhile records its end with the new name.
    pub fn rename_container(&self, name_or_id: &str, new: &str) -> Result<()> {
        names::validate("container name", new)?;
        let rec = self.find_container(name_or_id)?;
        let _lock = self
            .lock_record(&rec.id)
            .ok_or_else(|| Error::msg(format!("rename {name_or_id}: no such container")))?;
        // Again, under the lock: it may have been removed or renamed meanwhile.
        // As stored (`read_record` would probe the lock file, and closing a
        // descriptor of it would drop this process's record lock).
        let mut rec = self
            .read_stored(&rec.id)
            .ok_or_else(|| Error::msg(format!("rename {name_or_id}: no such container")))?;
        if rec.name.as_deref() == Some(new) {
            return Err(Error::msg(format!(
                "rename {name_or_id}: it is already named {new}"
            )));
        }
        self.claim_name(new, &rec.id)?;
        let old = rec.name.replace(new.to_string());
        if let Err(e) = self.write_record(&rec) {
            let _ = rfs::unlinkat(self.names.as_fd(), new, AtFlags::empty());
            return Err(e);
        }
        // The other containers of its networks find it by the new name.
        if let Some(n) = rec.network.as_ref().filter(|_| self.is_running(&rec.id)) {
            for on in n.networks() {
                self.rename_on_network(on, &rec.id, old.as_deref(), new);
            }
        }
        if let Some(old) = &old {
            if self.name_owner(old).as_deref() == Some(rec.id.as_str()) {
                let _ = rfs::unlinkat(self.names.as_fd(), old.as_str(), AtFlags::empty());
            }
        }
        let old_name = old.unwrap_or_default();
        self.container_event(&rec, "rename", &[("oldName", &old_name)]);
        Ok(())
    }

    /// The record lock of container `id`: a POSIX record lock on its run
    /// lock file (independent of the run's `flock` on it), held by `rename`
    /// while it rewrites the record and by a run while it records its end.
    /// `None` when the container is gone.
    pub(crate) fn lock_record(&self, id: &str) -> Option<OwnedFd> {
        let fd = rfs::openat(
            self.records.as_fd(),
            format!("{id}.lock").as_str(),
            rfs::OFlags::RDWR | rfs::OFlags::CLOEXEC | rfs::OFlags::NOFOLLOW,
            rfs::Mode::empty(),
        )
        .ok()?;
        lock_record_fd(fd.as_fd());
        Some(fd)
    }

    /// What others may change in container `id`'s record while it runs, as
    /// stored: only those fields are decoded (the end of every run reads
    /// them under the record lock): its name ([`Store::rename_container`]),
    /// its freezer ([`crate::freezer`]), its limits and cgroups (`update`),
    /// what a user did to stop it (`stop`, `kill`), its restart policy
    /// (`update --restart`).
    pub(crate) fn stored_changes(&self, id: &str) -> Option<StoredChanges> {
        let bytes = fsutil::read_file(self.records.as_fd(), format!("{id}.json").as_str()).ok()?;
        serde_json::from_slice::<StoredChanges>(&bytes).ok()
    }

    /// Container `id`'s record as stored (its status not computed).
    pub(crate) fn read_stored(&self, id: &str) -> Option<Record> {
        let bytes = fsutil::read_file(self.records.as_fd(), format!("{id}.json").as_str()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The ID that `name` points to, if any.
    fn name_owner(&self, name: &str) -> Option<String> {
        let target = rfs::readlinkat(self.names.as_fd(), name, Vec::new()).ok()?;
        target.into_string().ok()
    }

    /// Writes a container's record atomically.
    pub(crate) fn write_record(&self, record: &Record) -> Result<()> {
        let json = serde_json::to_vec(record)
            .map_err(|e| Error::msg(format!("encode record {}: {e}", record.id)))?;
        fsutil::write_atomic(self.records.as_fd(), &format!("{}.json", record.id), &json)
            .context(|| format!("write record state/containers/{}.json", record.id))
    }

    /// Writes a new container's record: created exclusively and written in place
    /// (no temporary file and rename on the start path). A reader that meets it
    /// half-written skips it, as it skips one that is being removed.
    fn write_new_record(&self, record: &Record) -> Result<()> {
        let name = format!("{}.json", record.id);
        let json = serde_json::to_vec(record)
            .map_err(|e| Error::msg(format!("encode record {}: {e}", record.id)))?;
        let fd = rfs::openat(
            self.records.as_fd(),
            name.as_str(),
            rfs::OFlags::WRONLY | rfs::OFlags::CREATE | rfs::OFlags::EXCL | rfs::OFlags::CLOEXEC,
            rfs::Mode::from_raw_mode(0o644),
        )
        .context(|| format!("create record state/containers/{name}"))?;
        fsutil::write_all(fd.as_fd(), &json)
            .context(|| format!("write record state/containers/{name}"))
    }

    /// Reads a record, computing its status from the run lock.
    fn read_record(&self, id: &str) -> Option<Record> {
        let bytes = fsutil::read_file(self.records.as_fd(), format!("{id}.json").as_str()).ok()?;
        let mut rec: Record = serde_json::from_slice(&bytes).ok()?;
        rec.paused = false;
        if rec.status == Status::Running {
            let lock_name = format!("{id}.lock");
            if fsutil::is_locked(self.records.as_fd(), &lock_name) {
                rec.pid = read_pid(self, &lock_name);
                rec.paused = rec
                    .freezer
                    .as_deref()
                    .is_some_and(crate::freezer::is_paused);
            } else {
                rec.status = Status::Dead;
                rec.pid = orphan_pid(self, &lock_name);
            }
        }
        rec.restarting = rec.status == Status::Exited
            && rec.restart.is_some()
            && fsutil::is_locked(self.records.as_fd(), &format!("{id}.restart"));
        // Only a container with a check has a state file to read.
        let checked = rec
            .config
            .as_ref()
            .and_then(|c| c.healthcheck.as_ref())
            .is_some_and(|h| h.enabled());
        rec.health = match checked {
            true => self.read_health(id),
            false => None,
        };
        Some(rec)
    }

    /// Marks container `id` as waiting for its restart policy to start it
    /// again (`ps` shows it `Restarting`), for as long as the value lives:
    /// an flock on `state/containers/ID.restart`, a file removed when the
    /// value goes (a holder that dies leaves the file, without the lock:
    /// `rm` removes it).
    pub(crate) fn hold_restarting(&self, id: &str) -> Option<Restarting<'_>> {
        let name = format!("{id}.restart");
        let lock = FileLock::acquire(self.records.as_fd(), &name, true, false).ok()??;
        Some(Restarting {
            store: self,
            name,
            _lock: lock,
        })
    }

    /// Waits (at most 10 s) until container `id`'s restart policy no
    /// longer waits to start it again ([`Store::hold_restarting`]): after
    /// a stop, its holder sees it and lets go.
    fn wait_restart_abandoned(&self, id: &str) {
        let name = format!("{id}.restart");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while fsutil::is_locked(self.records.as_fd(), &name) && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// All containers, newest first; `all` includes exited and dead ones.
    pub fn containers(&self, all: bool) -> Result<Vec<Record>> {
        let entries = fsutil::list_dir(self.records.as_fd())
            .context(|| format!("list {}/state/containers", self.root().display()))?;
        let mut out = Vec::new();
        let mut unreadable = Vec::new();
        for id in entries
            .iter()
            .filter_map(|e| e.strip_suffix(".json"))
            .filter(|id| names::is_id(id))
        {
            match self.read_record(id) {
                Some(r) if all || r.status == Status::Running || r.restarting => out.push(r),
                Some(_) => {}
                None => unreadable.push(id),
            }
        }
        if all {
            self.sweep_leftovers(&entries);
            self.sweep_half_written(&unreadable);
        }
        out.sort_by(|a, b| {
            (b.created_unix, b.created_nsec)
                .cmp(&(a.created_unix, a.created_nsec))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Removes what a crash can leave in `state/containers` that no record
    /// points to: a run lock whose run died before it wrote the record, a log
    /// whose removal was cut short, and the temporary file of an interrupted
    /// record update or log rotation. Only files whose run lock is free are
    /// touched.
    fn sweep_leftovers(&self, entries: &[String]) {
        let dir = self.records.as_fd();
        for e in entries {
            let stem = e
                .strip_suffix(".lock")
                .or_else(|| e.strip_suffix(".health"))
                .or_else(|| crate::logfile::owner_of(e));
            let id = match (stem, e.strip_prefix('.')) {
                (Some(id), _) if !entries.contains(&format!("{id}.json")) => id,
                (_, Some(rest)) => match rest
                    .split_once(".json.tmp")
                    .or_else(|| rest.split_once(".health.tmp"))
                    .or_else(|| rest.split_once(".log.tmp"))
                {
                    Some((id, _)) => id,
                    None => continue,
                },
                _ => continue,
            };
            if !names::is_id(id) {
                continue;
            }
            let lock_name = format!("{id}.lock");
            if !fsutil::exists(dir, lock_name.as_str()) {
                let _ = rfs::unlinkat(dir, e.as_str(), AtFlags::empty());
            } else if let Ok(Some(_held)) = FileLock::acquire(dir, &lock_name, true, false) {
                let _ = rfs::unlinkat(dir, e.as_str(), AtFlags::empty());
            }
        }
    }

    /// Removes the records that a run created but never finished writing: its
    /// tupper died between `open(O_CREAT|O_EXCL)` and the end of the `write`
    /// (the run lock is taken before the record, and the name and snapshot
    /// are made after it, so nothing else of that container exists). A record
    /// whose run lock is held is being written now and is left alone.
    fn sweep_half_written(&self, ids: &[&str]) {
        let dir = self.records.as_fd();
        for id in ids {
            let (record, lock_name) = (format!("{id}.json"), format!("{id}.lock"));
            let Ok(Some(held)) = FileLock::acquire(dir, &lock_name, true, false) else {
                continue;
            };
            let readable = fsutil::read_file(dir, record.as_str())
                .is_ok_and(|b| serde_json::from_slice::<Record>(&b).is_ok());
            if !readable {
                let _ = rfs::unlinkat(dir, record.as_str(), AtFlags::empty());
                let _ = rfs::unlinkat(dir, lock_name.as_str(), AtFlags::empty());
            }
            drop(held);
        }
    }

    /// Finds a container by name or ID.
    pub fn find_container(&self, name_or_id: &str) -> Result<Record> {
        if names::is_id(name_or_id) {
            if let Some(r) = self.read_record(name_or_id) {
                return Ok(r);
            }
        }
        if names::validate("container name", name_or_id).is_ok() {
            if let Some(id) = self.name_owner(name_or_id) {
                if let Some(r) = self.read_record(&id) {
                    if r.name.as_deref() == Some(name_or_id) {
                        return Ok(r);
                    }
                }
            }
        }
        Err(Error::msg(format!("no such container: {name_or_id}")))
    }

    /// Removes a container: snapshot, name, record and lock. A running one is refused
    /// unless `force`, which kills it first.
    pub fn remove_container(&self, name_or_id: &str, force: bool) -> Result<()> {
        let rec = self.find_container(name_or_id)?;
        let lock_name = format!("{}.lock", rec.id);
        if (rec.status == Status::Running || rec.restarting) && !force {
            let how = match rec.restarting {
                true => "its restart policy is about to start it again",
                false => "it is running",
            };
            return Err(Error::msg(format!("remove container {name_or_id}: {how}"))
                .with_advice("stop it first, or use `tupper rm -f`"));
        }
        // Its restart policy must not start it again meanwhile.
        self.mark_stopped(&rec, crate::restart::Stopped::Canceled)?;
        if rec.restart.is_some() {
            self.wait_restart_abandoned(&rec.id);
            let _ = rfs::unlinkat(
                self.records.as_fd(),
                format!("{}.restart", rec.id).as_str(),
                AtFlags::empty(),
            );
        }
        if rec.status == Status::Running {
            // The pid goes into the lock file right after the clone: a container
            // still starting has none yet. Wait for it (or for the run to end,
            // which frees the lock), instead of waiting for the command to end.
            let mut pid = rec.pid;
            while pid.is_none() && fsutil::is_locked(self.records.as_fd(), &lock_name) {
                std::thread::sleep(std::time::Duration::from_millis(2));
                pid = read_pid(self, &lock_name);
            }
            if let Some(pid) = pid {
                kill_pid(pid);
                // A paused container acts on the SIGKILL once thawed.
                self.thaw_after_signal(&rec.id, &format!("remove container {name_or_id}"))?;
            }
        }
        // Wait for the lock: its `tupper` process ends (after a kill), or a process
        // forked by another thread of a library user, which shares the lock until
        // it execs, lets go of it.
        let lock = FileLock::acquire(self.records.as_fd(), &lock_name, true, true)
            .context(|| format!("lock state/containers/{lock_name}"))?
            .ok_or_else(|| {
                Error::msg(format!("lock state/containers/{lock_name}: held elsewhere"))
            })?;
        // Gone meanwhile: a `--rm` container we killed removed itself, or a
        // concurrent `rm` was first. Either way it is removed, as asked.
        if !fsutil::exists(self.records.as_fd(), format!("{}.json", rec.id).as_str()) {
            return Ok(());
        }
        // Dead, but its command still runs (its tupper died and it had
        // replaced the parent-death signal, or it shares a PID namespace):
        // its snapshot is in use.
        if rec.status == Status::Dead && left_running(self, &rec, &lock_name) {
            if !force {
                return Err(Error::msg(format!(
                    "remove container {name_or_id}: its tupper was killed, but its command still runs"
                ))
                .with_advice("use `tupper rm -f` to end it"));
            }
            kill_orphan(self, &rec, &lock_name)?;
        }
        // A run that was killed (SIGKILL) left its address lease and the
        // DNAT chain of its published ports: they go with the container.
        if let Some(n) = rec.network.as_ref().filter(|n| n.mode == "bridge") {
            for on in n.networks() {
                self.leave_network_dead(on, &rec.id)?;
            }
            net::release_dead(&self.state_path(), &rec.id)?;
        }
        // Its cgroup, left when its run was killed before it ended.
        crate::cgroup::remove_of(&rec)?;
        // The name as it is now: a rename may have come in between.
        lock_record_fd(lock.fd());
        let name = self
            .read_stored(&rec.id)
            .map_or(rec.name.clone(), |r| r.name);
        self.destroy_container(&rec, name.as_deref(), false)?;
        drop(lock);
        Ok(())
    }

    /// Removes every container that is not running (`tupper prune`, docker's
    /// `container prune`): exited and dead ones; a dead one whose command
    /// still runs is left (`rm -f` ends it). Returns the IDs removed, and the
    /// first error, once every container was tried.
    pub fn prune_containers(&self) -> (Vec<String>, Result<()>) {
        self.prune_containers_matching(&crate::filter::Filters::default())
    }

    /// [`Store::prune_containers`] of the containers that pass `filters`
    /// (`prune --filter label=...`).
    pub fn prune_containers_matching(
        &self,
        filters: &crate::filter::Filters,
    ) -> (Vec<String>, Result<()>) {
        let (removed, _, result) = self.prune_containers_as(filters, false);
        (removed, result)
    }

    /// [`Store::prune_containers`], and the bytes that freed: each removed
    /// container's size (its writable layer, as `system df` counts it,
    /// found by a walk before it goes) (`system prune`).
    pub fn prune_containers_sized(&self) -> (Vec<String>, u64, Result<()>) {
        self.prune_containers_as(&crate::filter::Filters::default(), true)
    }

    fn prune_containers_as(
        &self,
        filters: &crate::filter::Filters,
        sized: bool,
    ) -> (Vec<String>, u64, Result<()>) {
        let list = match self.containers(true) {
            Ok(l) => l,
            Err(e) => return (Vec::new(), 0, Err(e)),
        };
        let (mut removed, mut freed, mut first_error) = (Vec::new(), 0, None);
        for rec in list
            .iter()
            .filter(|r| r.status != Status::Running && !r.restarting && filters.matches(r))
        {
            if rec.status == Status::Dead && rec.pid.is_some() {
                continue;
            }
            // A size that cannot be found counts nothing: the removal
            // says what is wrong with the container.
            let bytes = match sized {
                true => self.container_bytes(rec).unwrap_or(0),
                false => 0,
            };
            match self.remove_container(&rec.id, false) {
                Ok(()) => {
                    removed.push(rec.id.clone());
                    freed += bytes;
                }
                // Removed meanwhile (a concurrent `rm`): gone, as asked.
                Err(_)
                    if !fsutil::exists(
                        self.records.as_fd(),
                        format!("{}.json", rec.id).as_str(),
                    ) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        (removed, freed, first_error.map_or(Ok(()), Err))
    }

    /// A pidfd of the PID 1 of running container `id`, once its command runs
    /// (the run lock file says `started`: before, PID 1 is tupper's child
    /// making the container, in a copy of the host's mount namespace, which
    /// `exec` must never join); `None` once its run has ended. The pid is
    /// trusted only while the run lock is held: checked again once the pidfd
    /// pins the process.
    pub(crate) fn pin_pid1(&self, id: &str) -> Option<(i32, OwnedFd)> {
        let lock_name = format!("{id}.lock");
        let held = || fsutil::is_locked(self.records.as_fd(), &lock_name);
        loop {
            if !held() {
                return None;
            }
            if let Some((pid, ns, true)) = read_run_state(self, &lock_name) {
                let raw = rustix::process::Pid::from_raw(pid)?;
                let fd =
                    rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()).ok()?;
                let ours = held() && (ns == 0 || pid_namespace_of(pid) == Some(ns));
                return ours.then_some((pid, fd));
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Sends `signal` to the PID 1 of a running container (`tupper kill`).
    pub fn signal_container(
        &self,
        name_or_id: &str,
        signal: rustix::process::Signal,
    ) -> Result<Record> {
        let rec = self.find_container(name_or_id)?;
        let not_running = || Error::msg(format!("kill container {name_or_id}: it is not running"));
        if rec.status != Status::Running {
            return Err(not_running());
        }
        let (_, fd) = self.pin_pid1(&rec.id).ok_or_else(not_running)?;
        // docker's: SIGKILL, its stop signal, or any signal when it has
        // none of its own, cancels its restarts; any other, `unless-stopped`'s.
        let ends = signal == rustix::process::Signal::KILL
            || rec.stop_signal.map_or(true, |s| s == signal.as_raw());
        self.mark_stopped(
            &rec,
            match ends {
                true => crate::restart::Stopped::Canceled,
                false => crate::restart::Stopped::Manually,
            },
        )?;
        // Told before it is sent: the end it causes (`die`, written by its
        // holder) comes after it in the log.
        self.container_event(&rec, "kill", &[("signal", &signal.as_raw().to_string())]);
        rustix::process::pidfd_send_signal(&fd, signal)
            .map_err(|e| Error::os(format!("kill container {name_or_id}"), e))?;
        // As docker: a paused container is let go after SIGKILL or its stop
        // signal (which it then acts on); other signals wait for `unpause`.
        let stop_signal = rec
            .stop_signal
            .unwrap_or(rustix::process::Signal::TERM.as_raw());
        if signal == rustix::process::Signal::KILL || signal.as_raw() == stop_signal {
            self.thaw_after_signal(&rec.id, &format!("kill container {name_or_id}"))?;
        }
        Ok(rec)
    }

    /// Records that a user stopped container `rec` (`how`), which its
    /// restart policy respects; nothing for one without a policy.
    pub(crate) fn mark_stopped(&self, rec: &Record, how: crate::restart::Stopped) -> Result<()> {
        if rec.restart.is_none() {
            return Ok(());
        }
        let Some(_guard) = self.lock_record(&rec.id) else {
            return Ok(());
        };
        let Some(mut stored) = self.read_stored(&rec.id) else {
            return Ok(());
        };
        if stored.stopped < how {
            stored.stopped = how;
            self.write_record(&stored)?;
        }
        Ok(())
    }

    /// Whether a user stopped container `id` since its last start by hand
    /// (see [`Store::mark_stopped`]).
    pub(crate) fn stopped_by_user(&self, id: &str) -> crate::restart::Stopped {
        self.stored_changes(id)
            .map(|c| c.stopped)
            .unwrap_or_default()
    }

    /// Stops a running container (`tupper stop`), as docker does: its stop
    /// signal (`--stop-signal`, default SIGTERM) to its PID 1, SIGKILL once
    /// `timeout` has passed (`None`: its `--stop-timeout`, else 10 s);
    /// returns when its run has ended (its exit recorded, or a `--rm`
    /// container removed). A container that is not running is left as it is.
    pub fn stop_container(
        &self,
        name_or_id: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<()> {
        self.stop_container_with(name_or_id, timeout, None)
    }

    /// [`Store::stop_container`] with `signal` in place of its stop signal
    /// (`tupper stop -s`, docker's).
    pub fn stop_container_with(
        &self,
        name_or_id: &str,
        timeout: Option<std::time::Duration>,
        signal: Option<rustix::process::Signal>,
    ) -> Result<()> {
        use rustix::process::{pidfd_send_signal, Signal};
        let rec = self.find_container(name_or_id)?;
        // The container's own (`--stop-timeout`, -1 forever), else docker's 10 s.
        let timeout = timeout.unwrap_or(match rec.stop_timeout {
            Some(t) if t < 0 => std::time::Duration::MAX,
            Some(t) => std::time::Duration::from_secs(t as u64),
            None => std::time::Duration::from_secs(10),
        });
        let signal = match signal.map(|s| s.as_raw()).or(rec.stop_signal) {
            None => Signal::TERM,
            Some(n) => crate::launch::signal_from_raw(n).ok_or_else(|| {
                Error::msg(format!(
                    "stop container {name_or_id}: its stop signal {n} is not a signal"
                ))
            })?,
        };
        let lock_name = format!("{}.lock", rec.id);
        if rec.status == Status::Dead && left_running(self, &rec, &lock_name) {
            return Err(Error::msg(format!(
                "stop container {name_or_id}: its tupper was killed, but its command still runs"
            ))
            .with_advice("`tupper rm -f` ends it"));
        }
        // Even when it is not running: its policy may be about to restart it.
        self.mark_stopped(&rec, crate::restart::Stopped::Canceled)?;
        if rec.restarting {
            self.wait_restart_abandoned(&rec.id);
        }
        if rec.status != Status::Running {
            return Ok(());
        }
        let Some((_, fd)) = self.pin_pid1(&rec.id) else {
            return Ok(());
        };
        let what = || format!("stop container {name_or_id}");
        // Each `kill` told before it is sent (see `signal_container`).
        self.container_event(&rec, "kill", &[("signal", &signal.as_raw().to_string())]);
        let _ = pidfd_send_signal(&fd, signal);
        // A paused container acts on it once thawed (docker's stop too).
        self.thaw_after_signal(&rec.id, &what())?;
        if !wait_pidfd(&fd, timeout).map_err(|e| Error::os(what(), e))? {
            self.container_event(&rec, "kill", &[("signal", "9")]);
            let _ = pidfd_send_signal(&fd, Signal::KILL);
            if !wait_pidfd(&fd, std::time::Duration::from_secs(10))
                .map_err(|e| Error::os(what(), e))?
            {
                return Err(Error::msg(format!(
                    "{}: still running 10 s after SIGKILL",
                    what()
                )));
            }
        }
        // Its tupper records the exit, or removes a --rm container, then
        // lets go of the run lock.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while fsutil::is_locked(self.records.as_fd(), &lock_name) {
            if std::time::Instant::now() > deadline {
                return Err(Error::msg(format!(
                    "{}: its command ended, but its tupper has not finished after 30 s",
                    what()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        self.container_event(&rec, "stop", &[]);
        Ok(())
    }

    /// Waits until a container's run has ended (`tupper wait`) and returns
    /// its exit code. A `--rm` container leaves no record to read it from:
    /// an error then.
    pub fn wait_container(&self, name_or_id: &str) -> Result<i32> {
        let rec = self.find_container(name_or_id)?;
        let lock_name = format!("{}.lock", rec.id);
        // Held (exclusively) by its tupper until the end is recorded.
        FileLock::wait_shared(self.records.as_fd(), &lock_name)
            .map_err(|e| Error::os(format!("wait for container {name_or_id}"), e))?;
        match self.read_record(&rec.id) {
            Some(r) if r.status == Status::Exited => Ok(r.exit_code.unwrap_or(-1)),
            Some(r) if r.status == Status::Dead => Err(Error::msg(format!(
                "wait for container {name_or_id}: its tupper was killed; no exit code"
            ))),
            Some(r) if r.status == Status::Created => Err(Error::msg(format!(
                "wait for container {name_or_id}: it was created and has not run"
            ))
            .with_advice(format!("`tupper start {name_or_id}` runs it"))),
            Some(_) => Err(Error::msg(format!(
                "wait for container {name_or_id}: still running"
            ))),
            None => Err(Error::msg(format!(
                "wait for container {name_or_id}: it was removed (--rm, or its command could not start); no exit code"
            ))),
        }
    }

    /// Waits until a container meets one of `conditions` (`wait
    /// --condition`, podman's), reading its record every `interval`: its
    /// exit code when it stopped, -1 for any other condition (podman's).
    /// `stopped` alone is [`Store::wait_container`], which needs no
    /// polling.
    pub fn wait_for_condition(
        &self,
        name_or_id: &str,
        conditions: &[WaitCondition],
        interval: std::time::Duration,
    ) -> Result<i32> {
        use WaitCondition as C;
        if conditions.iter().all(|c| *c == C::Stopped) {
            return self.wait_container(name_or_id);
        }
        let rec = self.find_container(name_or_id)?;
        let checked = rec
            .config
            .as_ref()
            .and_then(|c| c.healthcheck.as_ref())
            .is_some_and(|h| h.enabled());
        if let (Some(c), false) = (
            conditions
                .iter()
                .find(|c| matches!(c, C::Healthy | C::Unhealthy)),
            checked,
        ) {
            return Err(Error::msg(format!(
                "wait --condition {} {name_or_id}: it has no health check",
                c.name()
            )));
        }
        loop {
            let Some(rec) = self.read_record(&rec.id) else {
                if conditions.contains(&C::Removing) {
                    return Ok(-1);
                }
                return Err(Error::msg(format!(
                    "wait for container {name_or_id}: it was removed"
                )));
            };
            let health = rec.health.as_ref().map(|h| h.status.as_str());
            for c in conditions {
                let met = match c {
                    C::Created => rec.status == Status::Created,
                    C::Running => rec.status == Status::Running && !rec.paused,
                    C::Paused => rec.status == Status::Running && rec.paused,
                    C::Healthy => rec.status == Status::Running && health == Some("healthy"),
                    C::Unhealthy => rec.status == Status::Running && health == Some("unhealthy"),
                    C::Stopped if rec.status == Status::Exited => {
                        return Ok(rec.exit_code.unwrap_or(-1))
                    }
                    C::Stopped if rec.status == Status::Dead => {
                        return Err(Error::msg(format!(
                            "wait for container {name_or_id}: its tupper was killed; no exit code"
                        )))
                    }
                    C::Stopped | C::Removing => false,
                };
                if met {
                    return Ok(-1);
                }
            }
            std::thread::sleep(interval);
        }
    }

    /// A new, nameless log file for a detached run (`run -d`): `O_TMPFILE`
    /// in `state/containers`, so that a run that never starts leaves none.
    pub fn new_log(&self) -> Result<OwnedFd> {
        rfs::openat(
            self.records.as_fd(),
            ".",
            rfs::OFlags::TMPFILE | rfs::OFlags::WRONLY | rfs::OFlags::CLOEXEC,
            rfs::Mode::from_raw_mode(0o600),
        )
        .context(|| "create a log file in state/containers".to_string())
    }

    /// Gives the log of [`Store::new_log`] its name, `ID.log`, once container
    /// `id` runs; removed with the container.
    pub fn keep_log(&self, log: std::os::fd::BorrowedFd<'_>, id: &str) -> Result<()> {
        rfs::linkat(
            log,
            "",
            self.records.as_fd(),
            format!("{id}.log").as_str(),
            AtFlags::EMPTY_PATH,
        )
        .context(|| format!("link state/containers/{id}.log"))
    }

    /// Container `id`'s log, open for appending (`tupper start`); `None`
    /// when it has none (it ran in the foreground).
    pub fn append_log(&self, id: &str) -> Result<Option<OwnedFd>> {
        let name = format!("{id}.log");
        match rfs::openat(
            self.records.as_fd(),
            name.as_str(),
            rfs::OFlags::WRONLY
                | rfs::OFlags::APPEND
                | rfs::OFlags::CLOEXEC
                | rfs::OFlags::NOFOLLOW,
            rfs::Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::os(format!("open state/containers/{name}"), e)),
        }
    }

    /// The log of a container started with `run -d` (`tupper logs`), its
    /// files open for reading, oldest first.
    pub fn open_log(&self, name_or_id: &str) -> Result<(Record, crate::logfile::Files)> {
        let rec = self.find_container(name_or_id)?;
        if crate::logfile::LogConfig::is_none(rec.log.as_ref()) {
            return Err(Error::msg(format!(
                "logs {name_or_id}: it keeps no log (--log-driver none)"
            )));
        }
        match crate::logfile::Files::open(self.records.as_fd(), &rec.id) {
            Ok(Some(files)) => Ok((rec, files)),
            Ok(None) => Err(Error::msg(format!(
                "logs {name_or_id}: it has no log (only `run -d` keeps one; a container in the foreground writes to tupper's own output)"
            ))),
            Err(e) => Err(Error::os(format!("open state/containers/{}.log", rec.id), e)),
        }
    }

    /// Destroys a container's snapshot, name, record and lock file (the caller
    /// holds the lock). With `defer`, the snapshot is only moved to the trash, for
    /// [`Store::empty_trash`] to destroy later (off the caller's critical path).
    pub(crate) fn destroy_container(
        &self,
        rec: &Record,
        name: Option<&str>,
        defer: bool,
    ) -> Result<()> {
        let id = rec.id.as_str();
        match rfs::renameat(self.containers.as_fd(), id, self.trash.as_fd(), id) {
            Ok(()) if !defer => destroy_subvolume(self.trash.as_fd(), id, &format!("trash/{id}"))?,
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => {
                return Err(Error::os(
                    format!("rename containers/{id} -> trash/{id}"),
                    e,
                ))
            }
        }
        if let Some(n) = name {
            if self.name_owner(n).as_deref() == Some(id) {
                let _ = rfs::unlinkat(self.names.as_fd(), n, AtFlags::empty());
            }
        }
        // The log and health state before the record: a crash in between
        // leaves none without its record.
        crate::logfile::remove_all(self.records.as_fd(), id);
        let _ = rfs::unlinkat(
            self.records.as_fd(),
            format!("{id}.health").as_str(),
            AtFlags::empty(),
        );
        match rfs::unlinkat(
            self.records.as_fd(),
            format!("{id}.json").as_str(),
            AtFlags::empty(),
        ) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => {
                return Err(Error::os(
                    format!("remove record state/containers/{id}.json"),
                    e,
                ))
            }
        }
        let _ = rfs::unlinkat(
            self.records.as_fd(),
            format!("{id}.lock").as_str(),
            AtFlags::empty(),
        );
        self.container_event_as(rec, name, "destroy", &[]);
        Ok(())
    }
}

/// Takes the record lock ([`Store::lock_record`]) on the open lock file
/// `fd`, waiting for it; released when `fd` is closed. A failure (no POSIX
/// locks on this file system) leaves it unlocked: a rename racing the end of
/// a run is the only thing at stake.
pub(crate) fn lock_record_fd(fd: std::os::fd::BorrowedFd<'_>) {
    while let Err(Errno::INTR) = rfs::fcntl_lock(fd, rfs::FlockOperation::LockExclusive) {}
}

/// The container pid written into a run lock file.
fn read_pid(store: &Store, lock_name: &str) -> Option<i32> {
    read_run(store, lock_name).map(|(pid, _)| pid)
}

/// The pid and PID namespace inode in a run lock file (`PID NSINO`; the
/// inode is 0 when unknown).
fn read_run(store: &Store, lock_name: &str) -> Option<(i32, u64)> {
    read_run_state(store, lock_name).map(|(pid, ns, _)| (pid, ns))
}

/// [`read_run`], and whether the command runs (`PID NSINO started`: before,
/// PID 1 is still making the container, outside its root).
fn read_run_state(store: &Store, lock_name: &str) -> Option<(i32, u64, bool)> {
    let bytes = fsutil::read_file(store.records.as_fd(), lock_name).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    let ns = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    Some((pid, ns, words.next() == Some(crate::run::STARTED)))
}

/// The inode of the PID namespace of process `pid`, if it lives.
fn pid_namespace_of(pid: i32) -> Option<u64> {
    rustix::fs::stat(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|st| st.st_ino)
}

/// The pid of a dead run's PID 1 that still runs: its tupper died, and it
/// had replaced the parent-death signal that should have ended it. Known by
/// the PID namespace recorded in the run lock file, so a reused pid is not
/// mistaken for it.
fn orphan_pid(store: &Store, lock_name: &str) -> Option<i32> {
    let (pid, ns) = read_run(store, lock_name)?;
    let ours = || ns != 0 && pid_namespace_of(pid) == Some(ns);
    if !ours() {
        return None;
    }
    // Ended, or ending: a zombie (not reaped yet by whoever inherited it), a
    // process with SIGKILL pending (the parent-death signal at work), or one
    // that took it and is exiting (PF_EXITING in /proc/PID/stat's flags: no
    // signal is pending any more while PID 1 waits for the rest of its PID
    // namespace to go).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let flags: u64 = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.split(' ').nth(6))
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    const PF_EXITING: u64 = 0x4;
    if flags & PF_EXITING != 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let dying = status.lines().any(|line| match line.split_once(':') {
        Some(("State", state)) => {
            matches!(state.trim_start().as_bytes().first(), Some(b'Z' | b'X'))
        }
        Some(("SigPnd" | "ShdPnd", mask)) => {
            u64::from_str_radix(mask.trim(), 16).is_ok_and(|m| m & (1 << (libc::SIGKILL - 1)) != 0)
        }
        _ => false,
    });
    (!dying && ours()).then_some(pid)
}

/// Whether a dead run (its tupper was killed) left processes that still
/// run: its PID 1 ([`orphan_pid`]), or, sharing a PID namespace (whose
/// run lock file names none: see [`crate::pidns`]), any process of its
/// cgroup, which [`crate::cgroup::remove_of`] kills.
fn left_running(store: &Store, rec: &Record, lock_name: &str) -> bool {
    orphan_pid(store, lock_name).is_some()
        || (crate::pidns::shares(rec.pid_mode.as_deref()) && crate::cgroup::populated(&rec.cgroups))
}

/// Kills an orphaned PID 1 (see [`orphan_pid`]), and with it its PID
/// namespace, and waits (at most 10 s) until it is gone.
fn kill_orphan(store: &Store, rec: &Record, lock_name: &str) -> Result<()> {
    let Some((pid, ns)) = read_run(store, lock_name) else {
        return Ok(());
    };
    let Some(raw) = rustix::process::Pid::from_raw(pid) else {
        return Ok(());
    };
    let Ok(fd) = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) else {
        return Ok(());
    };
    // Checked again once the pidfd pins the process: the pid cannot be reused now.
    if ns == 0 || pid_namespace_of(pid) != Some(ns) {
        return Ok(());
    }
    rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL)
        .map_err(|e| Error::os(format!("kill the container's PID 1 (pid {pid})"), e))?;
    store.thaw_after_signal(&rec.id, &format!("kill the container's PID 1 (pid {pid})"))?;
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let limit = rustix::event::Timespec {
        tv_sec: 10,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&limit)) {
        Ok(1) => Ok(()),
        Ok(_) => Err(Error::msg(format!(
            "kill the container's PID 1 (pid {pid}): still there after 10 s"
        ))),
        Err(e) => Err(Error::os(
            format!("wait for the container's PID 1 (pid {pid})"),
            e,
        )),
    }
}

/// Whether the process of `pidfd` has ended (its pidfd is readable).
pub(crate) fn has_ended(pidfd: &OwnedFd) -> bool {
    wait_pidfd(pidfd, std::time::Duration::ZERO).unwrap_or(true)
}

/// Waits at most `timeout` for the process of `pidfd` to end; whether it did.
pub(crate) fn wait_pidfd(
    pidfd: impl AsFd,
    timeout: std::time::Duration,
) -> rustix::io::Result<bool> {
    // Too far to count: no deadline.
    let deadline = std::time::Instant::now().checked_add(timeout);
    loop {
        let limit = deadline.map(|d| {
            let left = d.saturating_duration_since(std::time::Instant::now());
            rustix::event::Timespec {
                tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
                tv_nsec: left.subsec_nanos() as i64,
            }
        });
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, limit.as_ref()) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Sends SIGKILL to `pid` through a pidfd (a pid is only trusted while its run lock is held).
fn kill_pid(pid: i32) {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    if let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        let _ = rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL);
    }
}

/// Undoes a half-made container when dropped, unless disarmed.
struct Undo<'a> {
    store: &'a Store,
    id: &'a str,
    name: Option<&'a str>,
    record: bool,
    snapshot: bool,
    lock: bool,
}

impl Undo<'_> {
    fn disarm(&mut self) {
        self.name = None;
        self.record = false;
        self.snapshot = false;
        self.lock = false;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        let s = self.store;
        if self.snapshot {
            let _ = destroy_subvolume(s.containers.as_fd(), self.id, self.id);
        }
        if let Some(n) = self.name {
            let _ = rfs::unlinkat(s.names.as_fd(), n, AtFlags::empty());
        }
        if self.record {
            let _ = rfs::unlinkat(
                s.records.as_fd(),
                format!("{}.json", self.id).as_str(),
                AtFlags::empty(),
            );
        }
        if self.lock {
            let _ = rfs::unlinkat(
                s.records.as_fd(),
                format!("{}.lock", self.id).as_str(),
                AtFlags::empty(),
            );
        }
    }
}
