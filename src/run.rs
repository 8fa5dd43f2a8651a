//! `run`: the whole story of a container, top to bottom.
//!
//! store (snapshot + record) -> plan (pure) -> launch (`clone3`, child: mounts,
//! pivot, hostname) -> parent: network -> go -> exec -> wait -> record or remove.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::container::{Created, Record, Status};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::launch::{self, Forwarder, Launched};
use crate::names;
use crate::net;
use crate::plan::{self, ChildPlan, PlanInput};
use crate::store::Store;
use crate::timefmt;

/// What to run: the in-memory equivalent of `tupper run`'s arguments.
///
/// `Spec::default()` has no network (`--net none`): a library user opts in to a
/// bridge, which changes the host's network; the CLI defaults to a bridge, as
/// docker does.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The image to snapshot.
    pub image: String,
    /// The command and its arguments; empty runs `/bin/sh`.
    pub command: Vec<String>,
    /// A unique name (`--name`).
    pub name: Option<String>,
    /// The hostname (`--hostname`); defaults to the name, else the ID.
    pub hostname: Option<String>,
    /// `KEY=VALUE` (or `KEY`, taken from tupper's environment) entries (`-e`).
    pub env: Vec<String>,
    /// The working directory (`-w`), created when missing.
    pub workdir: Option<String>,
    /// Remove the container when it ends (`--rm`).
    pub remove: bool,
    /// The network: mode, bridge, subnet, address, published ports.
    pub network: net::Options,
    /// Run without the default system-call filter ([`crate::seccomp`];
    /// `--security-opt seccomp=unconfined`).
    pub seccomp_unconfined: bool,
    /// A seccomp profile in docker's JSON format, its text
    /// (`--security-opt seccomp=FILE`, see [`crate::seccomp_profile`]), in
    /// place of the default filter; not with `seccomp_unconfined`.
    pub seccomp_profile: Option<String>,
    /// Run with `no_new_privs` (`--security-opt no-new-privileges`).
    pub no_new_privileges: bool,
    /// The capabilities the command keeps (`--cap-add`, `--cap-drop`: see
    /// [`crate::capabilities::adjust`]); docker's default set by default.
    pub capabilities: u64,
    /// Give the command a terminal of its own (`-t`): a pseudo-terminal of
    /// the container, whose master end [`Container::take_terminal`] returns
    /// (someone must read it, or the command blocks once its buffer is full).
    pub tty: bool,
    /// The terminal's size (rows, columns), set before the command starts.
    pub tty_size: Option<(u16, u16)>,
    /// Host paths bound into the container and `tmpfs` mounts (`-v`,
    /// `--tmpfs`; see [`crate::volume`]).
    pub mounts: Vec<crate::volume::Mount>,
    /// Make the container's root read-only (`--read-only`); the user's
    /// mounts, `/dev` and its `tmpfs`es stay writable.
    pub read_only: bool,
    /// Run a minimal init as PID 1 (`--init`): it reaps what ends in the
    /// container, passes signals on to the command, and exits as it did.
    pub init: bool,
    /// The user the command runs as (`-u USER[:GROUP]`): a name of the
    /// image's `/etc/passwd` or a uid, and a group name of its `/etc/group`
    /// or a gid (see [`crate::user::resolve`]). `None`: root.
    pub user: Option<String>,
    /// More supplementary groups (`--group-add`): names of the image's
    /// `/etc/group`, or gids.
    pub group_add: Vec<String>,
    /// Resource limits (`--memory`, `--pids-limit`, `--cpus`, ...): any of
    /// them gives the container a cgroup of its own ([`crate::cgroup`]).
    pub resources: crate::cgroup::Resources,
    /// The command's `setrlimit` limits (`--ulimit`); without them, tupper's own.
    pub ulimits: Vec<crate::ulimit::Ulimit>,
    /// The signal [`Store::stop_container`] sends first (`--stop-signal`,
    /// a number; default SIGTERM).
    pub stop_signal: Option<i32>,
    /// How long `stop` waits for it before SIGKILL, in seconds
    /// (`--stop-timeout`; -1: forever; default 10).
    pub stop_timeout: Option<i64>,
    /// Kernel parameters of its own namespaces (`--sysctl`, see
    /// [`crate::sysctl::parse`]).
    pub sysctls: Vec<crate::sysctl::Sysctl>,
    /// Host device nodes bound into its `/dev` (`--device`).
    pub devices: Vec<crate::device::Device>,
    /// docker's `--privileged`: every capability tupper has, no system-call
    /// filter, every host device in `/dev`, device nodes that open
    /// anywhere, a writable `/sys`, no masks over `/proc` and `/sys`. The
    /// container can then do what root on the host can.
    pub privileged: bool,
    /// Its labels (`--label`), kept in the record for `ps --filter`.
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--entrypoint`: in place of the image's `ENTRYPOINT`, and then
    /// without its `CMD` (docker's rule); `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// A user namespace of its own (`--userns auto`, see
    /// [`crate::userns`]): its root is an unprivileged host uid, its files
    /// are kept as without one. `false`: the host's (`--userns host`).
    pub userns: bool,
    /// Its restart policy (`--restart`): applied by
    /// [`Container::wait_restarting`]. Not with `remove`.
    pub restart: crate::restart::Policy,
    /// The size of its `/dev/shm` in bytes (`--shm-size`; `None`: 64 MiB).
    pub shm_size: Option<u64>,
    /// `--uts host`: the host's UTS namespace, its hostname (not with
    /// `hostname`).
    pub host_uts: bool,
    /// `--cgroupns host`: the host's cgroup namespace (no
    /// `CLONE_NEWCGROUP`): `/proc/self/cgroup` shows the host's paths.
    pub host_cgroupns: bool,
    /// Where its IPC namespace and `/dev/shm` come from (`--ipc`, see
    /// [`crate::ipc`]).
    pub ipc: crate::ipc::Mode,
    /// Where its PID namespace comes from (`--pid`, see [`crate::pidns`]).
    pub pid: crate::pidns::Mode,
    /// Its NIS domain name (`--domainname`; not with `host_uts`).
    pub domainname: Option<String>,
    /// `--volumes-from NAME[:ro|:rw]`: the volumes and bind mounts of
    /// these containers, at their destinations (read-only or not as
    /// there, or as the suffix says), except where `mounts` has one; the
    /// record keeps the mounts, not the names.
    pub volumes_from: Vec<String>,
    /// Its processes' `oom_score_adj` (`--oom-score-adj`, -1000 to 1000),
    /// set by the parent before the command runs; `exec`'s commands get
    /// it too.
    pub oom_score_adj: Option<i32>,
    /// `--storage-opt size=`: the most its root may hold besides what it
    /// shares with its image, in bytes (see [`Store::limit_storage`]).
    pub storage_size: Option<u64>,
    /// `--health-on-failure` (podman's): what becomes of it once its
    /// health check finds it unhealthy.
    pub health_on_failure: crate::health::OnFailure,
    /// `--timeout` (podman's): the command is killed (SIGKILL, exit 137)
    /// once it has run this long; each start of the container runs it anew.
    pub timeout: Option<std::time::Duration>,
    /// The command's stdin, stdout and stderr in place of tupper's (a
    /// library caller's: a test harness that reads each container's output
    /// from pipes of its own); the CLI has none. Not with `tty`.
    pub stdio: Option<std::sync::Arc<crate::launch::Stdio>>,
    /// `--log-driver` and `--log-opt`: how a detached run keeps its log
    /// (see [`crate::logfile`]); `None`: one file that grows.
    pub log: Option<crate::logfile::LogConfig>,
    /// `-P` (docker's `--publish-all`): each exposed port (the image's
    /// `EXPOSE`, `expose`) that `network.publish` does not publish is
    /// published on a free host port, at each start.
    pub publish_all: bool,
    /// `--expose`: ports the container's configuration exposes besides
    /// the image's (`PORT/PROTO`).
    pub expose: Vec<String>,
    /// `--health-*`, `--no-healthcheck`: the fields of its health check
    /// over the image's `HEALTHCHECK` (see [`crate::health`]).
    pub health: crate::health::Healthcheck,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            image: String::new(),
            command: Vec::new(),
            name: None,
            hostname: None,
            env: Vec::new(),
            workdir: None,
            remove: false,
            network: net::Options {
                mode: net::Mode::None,
                ..net::Options::default()
            },
            seccomp_unconfined: false,
            seccomp_profile: None,
            no_new_privileges: false,
            capabilities: crate::capabilities::DEFAULT,
            tty: false,
            tty_size: None,
            mounts: Vec::new(),
            read_only: false,
            init: false,
            user: None,
            group_add: Vec::new(),
            resources: crate::cgroup::Resources::default(),
            ulimits: Vec::new(),
            stop_signal: None,
            stop_timeout: None,
            sysctls: Vec::new(),
            devices: Vec::new(),
            privileged: false,
            labels: std::collections::BTreeMap::new(),
            entrypoint: None,
            userns: false,
            restart: crate::restart::Policy::No,
            shm_size: None,
            host_uts: false,
            host_cgroupns: false,
            ipc: crate::ipc::Mode::Private,
            pid: crate::pidns::Mode::Private,
            domainname: None,
            volumes_from: Vec::new(),
            oom_score_adj: None,
            storage_size: None,
            health_on_failure: Default::default(),
            timeout: None,
            stdio: None,
            log: None,
            publish_all: false,
            expose: Vec::new(),
            health: Default::default(),
        }
    }
}

impl Spec {
    /// The spec that made container `record`, for another start of it
    /// (`tupper start`), and its user as resolved then. The terminal's size
    /// is the caller's.
    fn of_record(record: &Record) -> Result<(Spec, Option<crate::user::Resolved>)> {
        let network = match &record.network {
            Some(n) => n.options()?,
            None => Spec::default().network,
        };
        let shared_network = !network.mode.new_netns();
        let security = record.security.clone();
        let capabilities = match &security {
            None => crate::capabilities::DEFAULT,
            Some(s) => s.capabilities.iter().try_fold(0, |set, name| {
                crate::capabilities::bit(name)
                    .map(|b| set | b)
                    .ok_or_else(|| Error::msg(format!("unknown capability {name}")))
            })?,
        };
        let user = security.as_ref().and_then(|s| s.user.clone());
        let resolved = user.as_ref().map(|u| crate::user::Resolved {
            uid: u.uid,
            gid: u.gid,
            groups: u.groups.clone(),
            // `HOME` is in the recorded environment.
            home: "/".to_string(),
        });
        let spec = Spec {
            image: record.image.clone(),
            command: record.command.clone(),
            name: record.name.clone(),
            hostname: Some(record.hostname.clone()),
            env: record.env.clone(),
            workdir: record.workdir.clone(),
            remove: record.remove,
            network,
            seccomp_unconfined: security.as_ref().is_some_and(|s| s.seccomp == "unconfined"),
            seccomp_profile: security.as_ref().and_then(|s| s.seccomp_profile.clone()),
            no_new_privileges: security.as_ref().is_some_and(|s| s.no_new_privileges),
            capabilities,
            tty: record.tty,
            tty_size: None,
            mounts: record.mounts.clone(),
            read_only: record.read_only,
            init: record.init,
            user: user.as_ref().and_then(|u| u.user.clone()),
            group_add: user.map(|u| u.group_add).unwrap_or_default(),
            resources: record.resources.clone().unwrap_or_default(),
            ulimits: record
                .ulimits
                .iter()
                .map(|u| crate::ulimit::parse(u))
                .collect::<Result<_>>()?,
            stop_signal: record.stop_signal,
            stop_timeout: record.stop_timeout,
            sysctls: record
                .sysctls
                .iter()
                .map(|s| crate::sysctl::parse(s, shared_network))
                .collect::<Result<_>>()?,
            devices: record
                .devices
                .iter()
                .map(|d| crate::device::parse(d))
                .collect::<Result<_>>()?,
            privileged: record.privileged,
            labels: record.labels.clone(),
            // The command as recorded is the whole of it.
            entrypoint: None,
            userns: record.security.as_ref().is_some_and(|s| s.userns.is_some()),
            restart: match &record.restart {
                Some(p) => crate::restart::Policy::parse(p)?,
                None => crate::restart::Policy::No,
            },
            shm_size: record.shm_size,
            host_uts: record.uts.as_deref() == Some("host"),
            host_cgroupns: record.cgroupns.as_deref() == Some("host"),
            ipc: crate::ipc::Mode::parse(record.ipc.as_deref().unwrap_or_default())?,
            pid: crate::pidns::Mode::parse(record.pid_mode.as_deref().unwrap_or_default())?,
            domainname: record.domainname.clone(),
            volumes_from: Vec::new(),
            oom_score_adj: record.oom_score_adj,
            storage_size: record.storage_size,
            timeout: record.timeout.map(std::time::Duration::from_secs),
            health_on_failure: record.health_on_failure,
            stdio: None,
            log: record.log.clone(),
            // Published already: the record's ports (a free one each).
            publish_all: false,
            expose: Vec::new(),
            // The record's configuration has it already.
            health: Default::default(),
        };
        Ok((spec, resolved))
    }
}

/// `spec` with image configuration `config` under it, by docker's rules: the
/// entrypoint (`--entrypoint`'s, else the image's) followed by the run's
/// command, else by the image's `CMD` (not after `--entrypoint`); the
/// image's environment before `-e`; its working directory, user and stop
/// signal unless the run gives them; its labels under the run's.
fn with_image_config(spec: &Spec, config: &crate::image_config::ImageConfig) -> Spec {
    let entrypoint = spec
        .entrypoint
        .clone()
        .or_else(|| config.entrypoint.clone())
        .unwrap_or_default();
    let args = match (spec.command.is_empty(), &spec.entrypoint) {
        (false, _) => spec.command.clone(),
        (true, Some(_)) => Vec::new(),
        (true, None) => config.cmd.clone().unwrap_or_default(),
    };
    let mut labels = config.labels.clone();
    labels.extend(spec.labels.clone());
    Spec {
        command: entrypoint.into_iter().chain(args).collect(),
        env: config.env.iter().chain(&spec.env).cloned().collect(),
        workdir: spec.workdir.clone().or_else(|| config.workdir.clone()),
        user: spec.user.clone().or_else(|| config.user.clone()),
        stop_signal: spec.stop_signal.or(config.stop_signal),
        labels,
        entrypoint: None,
        ..spec.clone()
    }
}

/// A new container's configuration, as docker's container has one (what
/// `commit` gives its image): image configuration `image` with `spec`'s
/// command (or, after `--entrypoint`, none), entrypoint, environment (a
/// bare `-e KEY` taken from tupper's, as the start takes it), working
/// directory, user, labels and stop signal over it, and its published
/// ports among the exposed ones.
pub(crate) fn container_config(
    spec: &Spec,
    image: &crate::image_config::ImageConfig,
) -> crate::image_config::ImageConfig {
    let cmd = match (spec.command.is_empty(), &spec.entrypoint) {
        (false, _) => Some(spec.command.clone()),
        (true, Some(_)) => None,
        (true, None) => image.cmd.clone(),
    };
    let entrypoint = spec
        .entrypoint
        .clone()
        .or_else(|| image.entrypoint.clone())
        .filter(|e| !e.is_empty());
    let env = image
        .env
        .iter()
        .cloned()
        .chain(spec.env.iter().filter_map(|e| match e.contains('=') {
            true => Some(e.clone()),
            false => std::env::var(e).ok().map(|v| format!("{e}={v}")),
        }))
        .collect();
    let mut labels = image.labels.clone();
    labels.extend(spec.labels.clone());
    let mut exposed_ports = image.exposed_ports.clone();
    let published = spec
        .network
        .publish
        .iter()
        .map(|p| format!("{}/{}", p.container_port, p.protocol));
    for port in spec.expose.iter().cloned().chain(published) {
        if !exposed_ports.contains(&port) {
            exposed_ports.push(port);
        }
    }
    crate::image_config::ImageConfig {
        cmd,
        entrypoint,
        env,
        workdir: spec.workdir.clone().or_else(|| image.workdir.clone()),
        user: spec.user.clone().or_else(|| image.user.clone()),
        labels,
        stop_signal: spec.stop_signal.or(image.stop_signal),
        exposed_ports,
        healthcheck: {
            let h = image
                .healthcheck
                .clone()
                .unwrap_or_default()
                .under(&spec.health);
            (h != Default::default()).then_some(h)
        },
    }
}

/// `spec` with each port of `exposed` (`PORT/PROTO`) that it does not
/// publish published on a free host port (`-P`); refused without a bridge.
fn publish_all(spec: &Spec, exposed: &[String]) -> Result<Spec> {
    if spec.network.mode != net::Mode::Bridge {
        return Err(Error::msg(format!(
            "-P with --net {}: ports are published only with --net bridge",
            spec.network.mode
        )));
    }
    let mut network = spec.network.clone();
    for port in exposed {
        let mapping = net::parse_publish(port)?;
        let published = network
            .publish
            .iter()
            .any(|p| p.container_port == mapping.container_port && p.protocol == mapping.protocol);
        if !published {
            network.publish.push(mapping);
        }
    }
    Ok(Spec {
        network,
        ..spec.clone()
    })
}

/// What [`Store::start_container`] made.
// Returned once a start; a box would be an allocation on the start path.
#[allow(clippy::large_enum_variant)]
enum Outcome<'s> {
    /// A container whose command runs.
    Running(Container<'s>),
    /// A container made only (`create`).
    Created(Record),
}

/// A container whose command is running.
#[derive(Debug)]
pub struct Container<'s> {
    store: &'s Store,
    /// `None` once finished (waited for, or cleaned up on drop).
    created: Option<Created>,
    /// Leave the snapshot of a `--rm` container in the trash (see
    /// [`Container::defer_destroy`]).
    defer_destroy: bool,
    /// The network to release when the container ends.
    network: Option<net::Prepared>,
    record: Record,
    launched: Launched,
    /// Whether its PID 1 left tupper's process group ([`ChildPlan::own_process_group`]).
    own_process_group: bool,
    /// Its block of host ids (`--userns auto`), held until it ends.
    _userns: Option<crate::userns::Range>,
    /// When `--timeout` kills it.
    deadline: Option<std::time::Instant>,
}

impl Store {
    /// Starts a container: returns once its command runs (or fails to start; the
    /// container is then recorded as exited, or removed with `remove`).
    pub fn start(&self, spec: &Spec) -> Result<Container<'_>> {
        match self.make_container(spec, false)? {
            Outcome::Running(c) => Ok(c),
            Outcome::Created(_) => unreachable!("a start runs the command"),
        }
    }

    /// Makes a container without running its command (docker's `create`):
    /// its snapshot and record, `created`, for [`Store::start_again`] to
    /// run. Everything is checked as for a start; its network and cgroup
    /// are made when it starts.
    pub fn create(&self, spec: &Spec) -> Result<Record> {
        match self.make_container(spec, true)? {
            Outcome::Created(r) => Ok(r),
            Outcome::Running(_) => unreachable!("a create runs nothing"),
        }
    }

    /// A new container for `spec`: started, or only made (`create_only`).
    fn make_container(&self, spec: &Spec, create_only: bool) -> Result<Outcome<'_>> {
        if spec.tty && spec.stdio.is_some() {
            return Err(Error::msg(format!(
                "run {}: a terminal (tty) and stdio of the caller's do not go together",
                spec.image
            )));
        }
        let id = names::new_id()?;
        let image = self.open_image(&spec.image)?;
        // The image's configuration (`CMD`, `ENV`, ...) under what the run
        // gives; the record keeps the result.
        let config = crate::image_config::read(image.as_fd())
            .map_err(|e| Error::msg(format!("image {}: {e}", spec.image)))?;
        let own_config = container_config(spec, &config);
        // `-P`: every exposed port not published yet, on a free host port.
        let publishing;
        let spec = match spec.publish_all {
            false => spec,
            true => {
                publishing = publish_all(spec, &own_config.exposed_ports)?;
                &publishing
            }
        };
        let configured;
        let spec = match config.is_empty() && spec.entrypoint.is_none() {
            true => spec,
            false => {
                configured = with_image_config(spec, &config);
                &configured
            }
        };
        // `-u` and `--group-add` are found in the image's /etc files, which
        // the snapshot has too: an unknown name changes nothing.
        let user = match spec.user.is_some() || !spec.group_add.is_empty() {
            true => Some(crate::user::resolve_in_image(
                image.as_fd(),
                &spec.image,
                spec.user.as_deref(),
                &spec.group_add,
            )?),
            false => None,
        };
        drop(image);
        self.start_container(spec, &id, user, None, create_only, Some(own_config))
    }

    /// Starts the command of container `name_or_id` again (docker's
    /// `start`), which is not running: in its own root as its last run left
    /// it, with the settings it was made with (its user as resolved then),
    /// a fresh network (the `--ip` address if it asked for one, else the
    /// lowest free one) and cgroup. `tty_size` sizes its terminal, if it
    /// has one. A start that fails leaves the container as it was.
    pub fn start_again(
        &self,
        name_or_id: &str,
        tty_size: Option<(u16, u16)>,
    ) -> Result<Container<'_>> {
        self.start_again_as(name_or_id, tty_size, false)
    }

    /// [`Store::start_again`], by a user or (`restarted`) by the
    /// container's restart policy.
    fn start_again_as(
        &self,
        name_or_id: &str,
        tty_size: Option<(u16, u16)>,
        restarted: bool,
    ) -> Result<Container<'_>> {
        let mut again = self.lock_for_start(name_or_id)?;
        again.restarted = restarted;
        let (spec, user) = match Spec::of_record(&again.before) {
            Ok(s) => s,
            Err(e) => {
                return Err(Error::msg(format!(
                    "start {name_or_id}: its record: {}",
                    e.what()
                )))
            }
        };
        let spec = Spec { tty_size, ..spec };
        let id = again.before.id.clone();
        if spec.network.mode == net::Mode::Bridge {
            net::remove_last_veth(&id, spec.network.connected.len())?;
        }
        match self.start_container(&spec, &id, user, Some(again), false, None)? {
            Outcome::Running(c) => Ok(c),
            Outcome::Created(_) => unreachable!("a start runs the command"),
        }
    }

    /// The container whose network namespace a start of `spec` (container
    /// `id`; `again`, one made before) joins (`--net container:NAME`).
    /// Refuses what docker refuses with it: `--hostname` (the hostname is
    /// the other container's), and the container itself.
    fn network_provider(&self, spec: &Spec, id: &str, again: bool) -> Result<Record> {
        let name = spec.network.container.as_deref().unwrap_or_default();
        if spec.hostname.is_some() && !again {
            return Err(Error::msg(format!(
                "--hostname with --net container:{name}: the hostname is container {name}'s"
            )));
        }
        let provider = self
            .find_container(name)
            .map_err(|e| Error::msg(format!("--net container:{name}: {}", e.what())))?;
        if provider.id == id {
            return Err(Error::msg(format!(
                "--net container:{name}: a container cannot join its own network"
            )));
        }
        Ok(provider)
    }

    /// The network namespace of running container `provider` (an fd of it,
    /// which keeps it whatever becomes of the container), and its root (an
    /// `O_PATH` fd), for a container that joins it. Its PID 1 is pinned by a
    /// pidfd, its namespace opened through `/proc`, and the pidfd asked
    /// afterwards whether the process still runs: if so, the namespace was
    /// its (a pid is only reused after its process ended).
    fn join_network_of(&self, provider: &Record) -> Result<(OwnedFd, OwnedFd)> {
        let shown = shown(provider);
        // A bridge container's veth pair must go with it: see net::mark_joined.
        let veth = provider
            .network
            .as_ref()
            .filter(|n| n.mode == "bridge")
            .and_then(|n| n.host_veth.as_deref());
        // A mark made for a provider that then ended stays: it may be an
        // earlier joiner's, and costs its next end one deletion of a veth
        // that is gone.
        let what = format!("join the network of container {shown}");
        // One that is not running is refused before anything is made.
        if !self.is_running(&provider.id) {
            return Err(not_running(&what, shown));
        }
        if let Some(veth) = veth {
            net::mark_joined(&self.state_path(), &provider.id, veth)?;
        }
        let [ns] = self.namespaces_of(provider, ["net"], &what)?;
        let root = rustix::fs::open(
            self.container_path(&provider.id),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Error::os(format!("open the root of container {shown}"), e))?;
        Ok((ns, root))
    }

    /// Namespaces `kinds` (`net`, `ipc`, `mnt`) of running container
    /// `provider`, for `what` (which an error names): its PID 1 is pinned
    /// by a pidfd, the namespaces opened through `/proc`, and the pidfd
    /// asked afterwards whether the process still runs: if so, the
    /// namespaces were its (a pid is only reused after its process ended).
    pub(crate) fn namespaces_of<const N: usize>(
        &self,
        provider: &Record,
        kinds: [&str; N],
        what: &str,
    ) -> Result<[OwnedFd; N]> {
        let shown = shown(provider);
        let Some((pid, pidfd)) = self.pin_pid1(&provider.id) else {
            return Err(not_running(what, shown));
        };
        let mut opened = Vec::with_capacity(N);
        for kind in kinds {
            let path = format!("/proc/{pid}/ns/{kind}");
            let fd = rustix::fs::open(
                path.as_str(),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| Error::os(format!("{what}: open {path}"), e))?;
            opened.push(fd);
        }
        if crate::container::has_ended(&pidfd) {
            return Err(not_running(what, shown));
        }
        Ok(opened
            .try_into()
            .unwrap_or_else(|_| unreachable!("one fd per kind")))
    }

    /// `spec`'s mounts, then those of each `--volumes-from` container
    /// (docker's): its volumes and bind mounts (not its `tmpfs`es), as
    /// read-only as there unless `:ro` or `:rw` says, where nothing is
    /// mounted already (the run's own `-v` wins).
    fn mounts_from(&self, spec: &Spec) -> Result<Vec<crate::volume::Mount>> {
        let mut mounts = spec.mounts.clone();
        for from in &spec.volumes_from {
            let (name, read_only) = match from.rsplit_once(':') {
                None => (from.as_str(), None),
                Some((name, "ro")) => (name, Some(true)),
                Some((name, "rw")) => (name, Some(false)),
                Some(_) => {
                    return Err(Error::msg(format!(
                        "invalid --volumes-from {from}: NAME, NAME:ro or NAME:rw"
                    )))
                }
            };
            let other = self
                .find_container(name)
                .map_err(|e| Error::msg(format!("--volumes-from {name}: {}", e.what())))?;
            for m in &other.mounts {
                if m.kind == crate::volume::Kind::Tmpfs
                    || mounts.iter().any(|o| o.destination == m.destination)
                {
                    continue;
                }
                mounts.push(crate::volume::Mount {
                    read_only: read_only.unwrap_or(m.read_only),
                    ..m.clone()
                });
            }
        }
        Ok(mounts)
    }

    /// The container whose IPC a start of `spec` (container `id`) joins
    /// (`--ipc container:NAME`): one with an IPC namespace and `/dev/shm`
    /// of its own, not the container itself.
    fn ipc_provider(&self, name: &str, id: &str) -> Result<Record> {
        let provider = self
            .find_container(name)
            .map_err(|e| Error::msg(format!("--ipc container:{name}: {}", e.what())))?;
        if provider.id == id {
            return Err(Error::msg(format!(
                "--ipc container:{name}: a container cannot join its own IPC namespace"
            )));
        }
        let mode = crate::ipc::Mode::parse(provider.ipc.as_deref().unwrap_or_default())?;
        if !mode.can_be_joined() {
            return Err(Error::msg(format!(
                "--ipc container:{name}: container {name} has --ipc {mode}, no IPC namespace and /dev/shm of its own to share"
            )));
        }
        Ok(provider)
    }

    /// The container whose PID namespace a start of `spec` (container `id`)
    /// joins (`--pid container:NAME`): any other one; it must run.
    fn pid_provider(&self, name: &str, id: &str) -> Result<Record> {
        let provider = self
            .find_container(name)
            .map_err(|e| Error::msg(format!("--pid container:{name}: {}", e.what())))?;
        if provider.id == id {
            return Err(Error::msg(format!(
                "--pid container:{name}: a container cannot join its own PID namespace"
            )));
        }
        Ok(provider)
    }

    /// The IPC namespace and a clone of the `/dev/shm` of running
    /// container `provider`, for a container that joins them.
    fn join_ipc_of(&self, provider: &Record) -> Result<crate::ipc::Joined> {
        let shown = shown(provider);
        let what = format!("join the IPC of container {shown}");
        let [namespace, mnt] = self.namespaces_of(provider, ["ipc", "mnt"], &what)?;
        let shm = crate::ipc::shm_of(mnt.as_fd(), shown)?;
        Ok(crate::ipc::Joined { namespace, shm })
    }

    /// [`Store::start`] of container `id`: a new one (whose configuration
    /// is `config`), or `again` one made before; a new one only made with
    /// `create_only`.
    fn start_container(
        &self,
        spec: &Spec,
        id: &str,
        user: Option<crate::user::Resolved>,
        again: Option<crate::container::Again>,
        create_only: bool,
        config: Option<crate::image_config::ImageConfig>,
    ) -> Result<Outcome<'_>> {
        // Everything the user gave is checked (by building the plan) before the
        // store changes: bad input leaves nothing behind.
        let id = id.to_string();
        // `--uts host`: the host's hostname (docker's); one of its own
        // is refused, as is a domain name of its own.
        let with_hosts_name;
        let spec = match spec.host_uts {
            false => spec,
            true => {
                if spec.hostname.is_some() && again.is_none() {
                    return Err(Error::msg(
                        "--hostname with --uts host: the hostname is the host's",
                    ));
                }
                if spec.domainname.is_some() {
                    return Err(Error::msg(
                        "--domainname with --uts host: the domain name is the host's",
                    ));
                }
                if let Some(s) = spec.sysctls.iter().find(|s| s.name == "kernel.domainname") {
                    return Err(Error::msg(format!(
                        "invalid --sysctl {s}: kernel.domainname is the host's with --uts host"
                    )));
                }
                let uname = rustix::system::uname();
                with_hosts_name = Spec {
                    hostname: Some(uname.nodename().to_string_lossy().into_owned()),
                    ..spec.clone()
                };
                &with_hosts_name
            }
        };
        if spec.remove && spec.restart.restarts() {
            return Err(Error::msg(format!(
                "--restart {} with --rm: a container removed when it ends cannot restart",
                spec.restart
            )));
        }
        // `--net container:NAME`: that container, whose ID the record keeps,
        // and its hostname, as docker's joiner has.
        let joining;
        let (spec, provider) = match spec.network.mode {
            net::Mode::Container => {
                let provider = self.network_provider(spec, &id, again.is_some())?;
                joining = Spec {
                    network: net::Options {
                        container: Some(provider.id.clone()),
                        ..spec.network.clone()
                    },
                    hostname: Some(provider.hostname.clone()),
                    ..spec.clone()
                };
                (&joining, Some(provider))
            }
            _ => (spec, None),
        };
        // `--ipc container:NAME`: that container, whose ID the record keeps.
        let ipc_joining;
        let (spec, ipc_provider) = match &spec.ipc {
            crate::ipc::Mode::Container(name) => {
                let provider = self.ipc_provider(name, &id)?;
                ipc_joining = Spec {
                    ipc: crate::ipc::Mode::Container(provider.id.clone()),
                    ..spec.clone()
                };
                (&ipc_joining, Some(provider))
            }
            _ => (spec, None),
        };
        if !spec.ipc.own_namespace() || spec.ipc == crate::ipc::Mode::None {
            if let Some(bytes) = spec.shm_size {
                return Err(Error::msg(format!(
                    "--shm-size {bytes} with --ipc {}: the container has no /dev/shm of its own",
                    shown_ipc(&spec.ipc, ipc_provider.as_ref())
                )));
            }
        }
        if !spec.ipc.own_namespace() {
            if let Some(s) = spec.sysctls.iter().find(|s| s.is_ipc()) {
                return Err(Error::msg(format!(
                    "invalid --sysctl {s}: an IPC parameter is the host's with --ipc host, the other container's with --ipc container:"
                )));
            }
            if spec.userns {
                return Err(Error::msg(format!(
                    "--ipc {} with --userns auto: a user namespace of its own has no rights over that IPC namespace",
                    shown_ipc(&spec.ipc, ipc_provider.as_ref())
                )));
            }
        }
        // `--pid container:NAME`: that container, whose ID the record keeps.
        let pid_joining;
        let (spec, pid_provider) = match &spec.pid {
            crate::pidns::Mode::Container(name) => {
                let provider = self.pid_provider(name, &id)?;
                pid_joining = Spec {
                    pid: crate::pidns::Mode::Container(provider.id.clone()),
                    ..spec.clone()
                };
                (&pid_joining, Some(provider))
            }
            _ => (spec, None),
        };
        if !spec.pid.own_namespace() && spec.userns {
            return Err(Error::msg(format!(
                "--pid {} with --userns auto: a user namespace of its own has no rights over that PID namespace (it could not mount its /proc)",
                match &pid_provider {
                    Some(p) => format!("container:{}", shown(p)),
                    None => spec.pid.to_string(),
                }
            )));
        }
        // `--privileged`: every capability tupper has and no filter (docker
        // ignores --cap-add and --cap-drop then too), and the host's devices.
        let lifted;
        let spec = match spec.privileged {
            true => {
                lifted = Spec {
                    capabilities: crate::capabilities::available()?,
                    seccomp_unconfined: true,
                    ..spec.clone()
                };
                &lifted
            }
            false => spec,
        };
        let host_devices;
        let devices = match spec.privileged {
            true => {
                host_devices = crate::device::host_devices(&plan::DEVICES)?
                    .into_iter()
                    .filter(|d| !spec.devices.iter().any(|u| u.container == d.container))
                    .chain(spec.devices.iter().cloned())
                    .collect::<Vec<_>>();
                &host_devices[..]
            }
            false => &spec.devices[..],
        };
        let hostname = default_hostname(spec, &id);
        // With a terminal of its own and none named, docker's xterm. A
        // container started again has its environment already.
        let term = match again {
            Some(_) => None,
            None => std::env::var("TERM")
                .ok()
                .or_else(|| spec.tty.then(|| "xterm".to_string())),
        };
        // `--net NAME`: a user-defined network's bridge and subnet.
        let on_network;
        let (spec, user_network) = match &spec.network.network {
            Some(_) if spec.network.mode == net::Mode::Bridge => {
                let (network, found) = self.resolve_network(&spec.network)?;
                on_network = Spec {
                    network,
                    ..spec.clone()
                };
                (&on_network, Some(found))
            }
            _ => (spec, None),
        };
        // `network connect`: the networks it is on besides the first, each
        // resolved as that one (a network removed since fails the start).
        let connections = spec
            .network
            .connected
            .iter()
            .map(|c| {
                let asked = net::Options {
                    network: Some(c.network.clone()),
                    ip: c.requested_ip()?,
                    aliases: c.aliases.clone(),
                    ..net::Options::default()
                };
                let (opts, found) = self.resolve_network(&asked)?;
                Ok((opts, found, c))
            })
            .collect::<Result<Vec<_>>>()?;
        // `--volumes-from`: the other containers' mounts join the run's.
        let with_theirs;
        let spec = match spec.volumes_from.is_empty() {
            true => spec,
            false => {
                with_theirs = Spec {
                    mounts: self.mounts_from(spec)?,
                    volumes_from: Vec::new(),
                    ..spec.clone()
                };
                &with_theirs
            }
        };
        // Named volumes: their paths in the store now, made with the
        // container (`Store::make_volumes`).
        let named = spec
            .mounts
            .iter()
            .any(|m| m.kind == crate::volume::Kind::Volume);
        let with_paths;
        let mounts = match named {
            true => {
                with_paths = self.with_volume_paths(&spec.mounts)?;
                &with_paths[..]
            }
            false => &spec.mounts[..],
        };
        let volumes = crate::volume::resolve(mounts)?;
        let root_flags = crate::fsutil::mount_flags(self.containers.as_fd())
            .map_err(|e| Error::os(format!("statvfs {}", self.root().display()), e))?;
        // Each only when given: every function a start calls is code it
        // pages in (issue 4's peak RSS).
        if !spec.sysctls.is_empty() {
            crate::sysctl::check(&spec.sysctls, !spec.network.mode.new_netns())?;
        }
        if !spec.devices.is_empty() {
            crate::device::check(&spec.devices)?;
        }
        // Where its cgroup goes, if it has one: into the record before it is
        // made. Sharing a PID namespace, it has one to know its processes by.
        let shared_pid = !spec.pid.own_namespace();
        let cgroup = match spec.resources.wanted() || shared_pid {
            true => {
                spec.resources.validate()?;
                crate::cgroup::place(&spec.resources, &id, shared_pid)?
            }
            false => None,
        };
        let mut plan = ChildPlan::new(
            &self.container_path(&id),
            &PlanInput {
                hostname: &hostname,
                domainname: spec.domainname.as_deref().unwrap_or_default(),
                command: &spec.command,
                env: &spec.env,
                workdir: spec.workdir.as_deref(),
                term: term.as_deref(),
                own_netns: spec.network.mode.not_the_hosts(),
                // With a terminal of its own, the command has a session of its own.
                own_process_group: !spec.tty
                    && (spec.stdio.is_some() || !rustix::termios::isatty(rustix::stdio::stdin())),
                root_flags,
                seccomp_unconfined: spec.seccomp_unconfined,
                seccomp_profile: spec.seccomp_profile.as_deref(),
                no_new_privileges: spec.no_new_privileges,
                capabilities: spec.capabilities,
                tty: spec.tty,
                volumes: &volumes,
                read_only: spec.read_only,
                joins: false,
                init: spec.init,
                user: user.as_ref(),
                ulimits: &spec.ulimits,
                shm_size: spec.shm_size,
                host_uts: spec.host_uts,
                shm: match spec.ipc {
                    crate::ipc::Mode::Private | crate::ipc::Mode::Shareable => plan::Shm::Own,
                    crate::ipc::Mode::None => plan::Shm::Without,
                    crate::ipc::Mode::Host => plan::Shm::Host,
                    crate::ipc::Mode::Container(_) => plan::Shm::Joined,
                },
                sysctls: &spec.sysctls,
                no_subvolumes: spec.storage_size.is_some(),
                devices,
                privileged: spec.privileged,
                userns: spec.userns,
                shared_pid,
            },
        )?;
        // cgroup v1: the child is moved into its cgroup after the clone, and
        // makes its cgroup namespace once there.
        plan.late_cgroup_ns = !spec.host_cgroupns && cgroup.as_ref().is_some_and(|c| !c.v2);
        plan.host_cgroupns = spec.host_cgroupns;
        plan.joined_network = provider.as_ref().map(|p| shown(p).to_string());
        plan.joined_ipc = ipc_provider.as_ref().map(|p| shown(p).to_string());
        plan.joined_pid = pid_provider.as_ref().map(|p| shown(p).to_string());
        spec.network.validate()?;
        if spec.userns {
            crate::userns::check(spec.network.mode, user.as_ref())?;
        } else if let Some(m) = spec.mounts.iter().find(|m| m.idmap) {
            return Err(Error::msg(format!(
                "volume {} -> {}: idmap maps its owners to the container's user namespace, which it has with --userns auto only",
                m.source.as_deref().unwrap_or_default(),
                m.destination
            )));
        }
        // The run lock first: from here on this container counts as alive, so
        // nobody reclaims the address it is about to lease. A container
        // started again holds it already.
        let (again, mut lock) = match again {
            Some(a) => (Some(a), None),
            None => (None, Some(self.lock_new_container(&id)?)),
        };
        if let Some(lock) = lock.take_if(|_| create_only) {
            let created = self.create_new(
                spec,
                lock,
                &id,
                &hostname,
                user.as_ref(),
                spec.network.settings(),
                &plan,
                volumes,
                Vec::new(),
                config,
            )?;
            let made = match named {
                true => self.make_volumes(&created.record.mounts, created.rootfs.as_fd()),
                false => Ok(Vec::new()),
            };
            // `created` once the snapshot is there: a crash before leaves a
            // dead record (running, its lock free), which `rm` removes.
            let Created {
                mut record, lock, ..
            } = created;
            record.status = Status::Created;
            let written = match made {
                Err(e) => Err((e, Vec::new())),
                Ok(made) => self.write_record(&record).map_err(|e| (e, made)),
            };
            if let Err((e, made)) = written {
                self.destroy_container(&record, record.name.as_deref(), false)?;
                self.remove_volumes_made(&made);
                return Err(e);
            }
            drop(lock);
            return Ok(Outcome::Created(record));
        }
        // `--ipc container:NAME`: that container's IPC namespace and
        // /dev/shm (fds kept until the child joined and mounted them).
        let joined_ipc = match ipc_provider.as_ref().map(|p| self.join_ipc_of(p)) {
            None => None,
            Some(Ok(joined)) => Some(joined),
            Some(Err(e)) => {
                if let Some(lock) = lock {
                    self.drop_new_lock(&id, lock);
                }
                return Err(e);
            }
        };
        // `--pid container:NAME`: that container's PID namespace (an fd kept
        // until the clone was made in it).
        let joined_pid = match pid_provider.as_ref().map(|p| {
            let what = format!("join the PID namespace of container {}", shown(p));
            self.namespaces_of(p, ["pid"], &what)
        }) {
            None => None,
            Some(Ok([ns])) => Some(ns),
            Some(Err(e)) => {
                if let Some(lock) = lock {
                    self.drop_new_lock(&id, lock);
                }
                return Err(e);
            }
        };
        // `--net container:NAME`: that container's network namespace (an
        // fd kept until the child joined it) and /etc files.
        let prepared = net::prepare(&self.state_path(), &id, &spec.network, &|other| {
            self.is_running(other)
        })
        .and_then(|mut n| match &provider {
            Some(p) => {
                let (ns, root) = self.join_network_of(p)?;
                n.share_etc_of(root.as_fd(), shown(p))?;
                Ok((n, Some(ns)))
            }
            None => Ok((n, None)),
        })
        .and_then(|(mut n, ns)| {
            // On a user-defined network: among its containers, by its
            // name, aliases and ID.
            if let (Some(on), Some(address)) = (&user_network, n.address()) {
                let names: Vec<String> = spec
                    .name
                    .iter()
                    .chain(&spec.network.aliases)
                    .chain(std::iter::once(&id))
                    .cloned()
                    .collect();
                match self.join_network(on, &id, address, &names) {
                    Ok(member) => n.set_member(member),
                    Err(e) => {
                        let _ = net::release(n);
                        return Err(e);
                    }
                }
            }
            for (i, (opts, on, c)) in connections.iter().enumerate() {
                let names: Vec<String> = spec
                    .name
                    .iter()
                    .chain(&c.aliases)
                    .chain(std::iter::once(&id))
                    .cloned()
                    .collect();
                match self.connect_prepared(&id, opts, on, i as u8 + 1, &names) {
                    Ok(p) => n.add_connection(p),
                    Err(e) => {
                        let _ = net::release(n);
                        return Err(e);
                    }
                }
            }
            Ok((n, ns))
        });
        let (mut network, joined_netns) = match prepared {
            Ok(n) => n,
            Err(e) => {
                if let Some(lock) = lock {
                    self.drop_new_lock(&id, lock);
                }
                return Err(e);
            }
        };
        // A spare network namespace saves making one (~1 ms), and a bridge
        // pool's also the veth pair; none left: the clone makes it. Taken
        // before the record, which names the spare's host end.
        // A spare is the host's user namespace's: not one to join from another.
        let netns = if spec.network.mode.new_netns()
            && !spec.userns
            && crate::netns_pool::configured_size() > 0
        {
            self.take_netns(
                network.spare_pool(),
                network.mode() == crate::net::Mode::Bridge,
            )
        } else {
            None
        };
        if let Some(spare) = netns.as_ref().filter(|s| s.veth) {
            network.use_spare_veth(&spare.id);
        }
        let cgroup_dirs = cgroup.as_ref().map(|c| c.dirs()).unwrap_or_default();
        let (created, before) = match (again, lock) {
            (Some(again), _) => {
                let before = again.before.clone();
                match self.record_start_again(again, network.settings(), cgroup_dirs) {
                    Ok(c) => (c, Some(before)),
                    Err(e) => {
                        let _ = net::release(network);
                        return Err(e);
                    }
                }
            }
            (None, Some(lock)) => match self.create_new(
                spec,
                lock,
                &id,
                &hostname,
                user.as_ref(),
                network.settings(),
                &plan,
                volumes,
                cgroup_dirs,
                config,
            ) {
                Ok(c) => (c, None),
                Err(e) => {
                    let _ = net::release(network);
                    return Err(e);
                }
            },
            (None, None) => unreachable!("a new container has its run lock"),
        };
        // What undoes the record when the command does not start: a new
        // container goes, as if it never was; one started again is as it was.
        let undo_record = |created: &Created| match &before {
            None => self.destroy_container(&created.record, created.record.name.as_deref(), false),
            Some(before) => self.put_back_record(before),
        };
        let made = match named {
            true => match self.make_volumes(&created.record.mounts, created.rootfs.as_fd()) {
                Ok(made) => made,
                Err(e) => {
                    let _ = net::release(network);
                    undo_record(&created)?;
                    return Err(e);
                }
            },
            false => Vec::new(),
        };
        // And the volumes it made, which no container names then.
        let undo = |created: &Created| {
            undo_record(created)?;
            self.remove_volumes_made(&made);
            Ok::<(), Error>(())
        };
        let netns = netns.map(|s| s.fd).or(joined_netns);
        let userns = match spec.userns.then(crate::userns::allocate).transpose() {
            Ok(range) => range,
            Err(e) => {
                let _ = net::release(network);
                undo(&created)?;
                return Err(e);
            }
        };
        let cgroup = match cgroup.map(|c| c.make(&spec.resources)).transpose() {
            Ok(c) => c,
            Err(e) => {
                let _ = net::release(network);
                undo(&created)?;
                return Err(e);
            }
        };
        match self.launch(
            spec,
            &created,
            &plan,
            &network,
            netns.as_ref().map(|f| f.as_fd()),
            cgroup.as_ref(),
            userns.as_ref().map(|r| r.host),
            joined_ipc,
            joined_pid,
        ) {
            Ok(launched) => Ok(Outcome::Running(Container {
                store: self,
                record: created.record.clone(),
                created: Some(created),
                defer_destroy: false,
                network: Some(network),
                launched,
                own_process_group: plan.own_process_group,
                _userns: userns,
                deadline: spec.timeout.map(|t| std::time::Instant::now() + t),
            })),
            Err(err) => {
                // The command never ran.
                let _ = net::release(network);
                // A cgroup that will not go keeps the record (dead once the
                // lock is dropped), for `rm` to try again; the error is the
                // start's.
                if crate::cgroup::remove_of(&created.record).is_ok() {
                    undo(&created)?;
                }
                drop(created);
                Err(err)
            }
        }
    }

    /// Makes new container `id` for `spec` under its run `lock`: record,
    /// name, snapshot ([`Store::create_container`]).
    #[allow(clippy::too_many_arguments)]
    fn create_new(
        &self,
        spec: &Spec,
        lock: crate::fsutil::FileLock,
        id: &str,
        hostname: &str,
        user: Option<&crate::user::Resolved>,
        network: net::Settings,
        plan: &ChildPlan,
        volumes: Vec<crate::volume::Resolved>,
        cgroups: Vec<String>,
        config: Option<crate::image_config::ImageConfig>,
    ) -> Result<Created> {
        self.create_container(
            lock,
            id,
            &spec.image,
            spec.name.as_deref(),
            hostname,
            &spec.command,
            spec.remove,
            network,
            crate::container::Security {
                user: crate::container::User::of(spec, user),
                ..crate::container::Security::of(spec)
            },
            crate::container::RunConfig {
                env: plan
                    .env
                    .iter()
                    .map(|e| e.to_string_lossy().into_owned())
                    .collect(),
                workdir: spec.workdir.clone(),
                read_only: spec.read_only,
                mounts: volumes.into_iter().map(|v| v.mount).collect(),
                resources: spec.resources.wanted().then(|| spec.resources.clone()),
                cgroups,
                ulimits: spec.ulimits.iter().map(|u| u.to_string()).collect(),
                stop_signal: spec.stop_signal,
                stop_timeout: spec.stop_timeout,
                sysctls: spec.sysctls.iter().map(|s| s.to_string()).collect(),
                devices: spec.devices.iter().map(|d| d.to_string()).collect(),
                tty: spec.tty,
                init: spec.init,
                privileged: spec.privileged,
                labels: spec.labels.clone(),
                config,
                restart: spec.restart.restarts().then(|| spec.restart.to_string()),
                shm_size: spec.shm_size,
                uts: spec.host_uts.then(|| "host".to_string()),
                cgroupns: spec.host_cgroupns.then(|| "host".to_string()),
                ipc: spec.ipc.recorded(),
                pid_mode: spec.pid.recorded(),
                domainname: spec.domainname.clone(),
                oom_score_adj: spec.oom_score_adj,
                storage_size: spec.storage_size,
                timeout: spec.timeout.map(|t| t.as_secs()),
                health_on_failure: spec.health_on_failure,
                log: spec.log.clone(),
            },
        )
    }

    /// Runs a container to its end and returns its exit code (docker's convention).
    pub fn run(&self, spec: &Spec) -> Result<i32> {
        self.start(spec)?.wait()
    }

    /// Prepares the snapshot, clones, and waits for the `execve`; `userns`
    /// is the host id of a user namespace's root.
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        spec: &Spec,
        created: &Created,
        plan: &ChildPlan,
        network: &net::Prepared,
        netns: Option<BorrowedFd<'_>>,
        cgroup: Option<&crate::cgroup::Cgroup>,
        userns: Option<u32>,
        ipc: Option<crate::ipc::Joined>,
        pid: Option<OwnedFd>,
    ) -> Result<Launched> {
        let rootfs = created.rootfs.as_fd();
        for mp in plan::MOUNT_POINTS {
            fsutil::ensure_mountpoint(rootfs, mp)?;
        }
        if let Some(dir) = spec.workdir.as_deref() {
            fsutil::mkdir_in_root(rootfs, dir)?;
        }
        // The /etc files go in while the child makes its mounts (it never reads
        // /etc; its command, after the go-ahead, does), unless the parent has
        // the bridge to set up meanwhile, which takes longer than the mounts.
        // With volumes, before: `write_etc_files` replaces files (unlink,
        // create), which would detach a volume the child just bound on one.
        let etc_after_clone = network.mode() != net::Mode::Bridge && spec.mounts.is_empty();
        if !etc_after_clone {
            net::write_etc_files(
                rootfs,
                &created.record.hostname,
                created.record.domainname.as_deref().unwrap_or_default(),
                network,
            )?;
        }
        let mut trees = launch::Trees::open(plan, rootfs, userns, ipc)?;
        trees.pid = pid;
        trees.stdio = spec.stdio.clone();
        let mut launched = launch::spawn(
            plan,
            &LOOPBACK_UP,
            netns,
            None,
            cgroup.and_then(|c| c.clone_into()),
            &trees,
        )?;
        drop(trees);
        // The run lock file carries the container's host pid, for `ps` and `rm -f`,
        // and the inode of its PID namespace: should its PID 1 outlive this
        // process (it may replace the parent-death signal), a later `rm -f`
        // can still tell it from another process that got the same pid.
        // Sharing a PID namespace (`--pid`), the namespace tells nothing
        // (0): its cgroup tells its processes.
        let pid = launched.pid.as_raw_nonzero();
        let ns = match plan.own_pid {
            true => rustix::fs::stat(format!("/proc/{pid}/ns/pid")).map_or(0, |st| st.st_ino),
            false => 0,
        };
        let _ = rustix::io::pwrite(created.lock.fd(), format!("{pid} {ns}").as_bytes(), 0);
        if let Some(c) = cgroup {
            if let Err(e) = c.attach(pid.get()) {
                launched.kill();
                return Err(e);
            }
        }
        if let Some(adj) = spec.oom_score_adj {
            if let Err(e) = set_oom_score_adj(pid.get(), adj) {
                launched.kill();
                return Err(e);
            }
        }
        let domainname = created.record.domainname.as_deref().unwrap_or_default();
        if etc_after_clone {
            if let Err(e) =
                net::write_etc_files(rootfs, &created.record.hostname, domainname, network)
            {
                launched.kill();
                return Err(e);
            }
        }
        // `lo` is the child's own business; the bridge is the parent's.
        if network.mode() == net::Mode::Bridge {
            // The namespace itself when it is a spare: the child may not have
            // joined it yet, and its pidfd would name the host's.
            let ns = netns.unwrap_or(launched.pidfd.as_fd());
            // A full bridge: a bridge spare gives its port back.
            let free_port = || {
                self.take_bridge_spare(network.spare_pool())
                    .map(|spare| net::spare_host_veth(&spare.id))
            };
            if let Err(e) = net::attach_freeing_ports(network, ns, &free_port) {
                launched.kill();
                return Err(e);
            }
        }
        if let Err(e) = size_terminal(&mut launched, spec.tty_size) {
            launched.kill();
            return Err(e);
        }
        launched.go()?;
        match launched.await_exec()? {
            None => {
                // Its command runs: from now on PID 1 is in the container's
                // root, and `exec`, `stop` and `kill` may act on it (before,
                // it is tupper's child still making the mounts, in a copy of
                // the host's mount namespace).
                let _ = rustix::io::pwrite(
                    created.lock.fd(),
                    format!("{pid} {ns} {STARTED}").as_bytes(),
                    0,
                );
                self.container_event(&created.record, "start", &[]);
                Ok(launched)
            }
            Some(report) => {
                let _ = launch::wait(launched.pidfd.as_fd());
                Err(launch::report_error(plan, report))
            }
        }
    }

    /// Records how a container ended, or removes it (`--rm`; with `defer`, its
    /// snapshot waits in the trash, see [`Store::empty_trash`]).
    fn finish(&self, created: Created, code: i32, defer: bool) -> Result<()> {
        let Created {
            mut record, lock, ..
        } = created;
        // `tupper rename` may have changed the name since the start: under
        // the record lock, the name on disk is the one to record or remove.
        // So may `pause` have made a freezer, and `update` a cgroup.
        crate::container::lock_record_fd(lock.fd());
        if let Some(stored) = self.stored_changes(&record.id) {
            // `network connect` and `disconnect` while it ran.
            if stored.network.is_some() {
                record.network = stored.network;
            }
            record.name = stored.name;
            record.freezer = stored.freezer;
            record.cgroups = stored.cgroups;
            record.resources = stored.resources;
            record.stopped = stored.stopped;
            record.restart = stored.restart;
        }
        // The networks `network connect` put it on while it ran: its
        // place and address there (those of its start went with its
        // network, [`net::release`]).
        self.leave_connected(&record);
        // Its cgroup goes when it ends, as docker's does.
        let mut oom_killed = false;
        if !record.cgroups.is_empty() || record.freezer.is_some() {
            oom_killed = crate::cgroup::oom_killed(&record.cgroups);
            crate::cgroup::remove_of(&record)?;
            record.freezer = None;
        }
        self.container_event(&record, "die", &[("exitCode", &code.to_string())]);
        if record.remove {
            self.destroy_container(&record, record.name.as_deref(), defer)?;
        } else {
            record.status = Status::Exited;
            record.exit_code = Some(code);
            record.finished_unix = Some(timefmt::now());
            record.oom_killed = oom_killed;
            self.write_record(&record)?;
        }
        drop(lock);
        Ok(())
    }
}

/// The word a run adds to its lock file (`PID NSINO started`) once the
/// command runs.
pub(crate) const STARTED: &str = "started";

/// With `-t`: takes the container's terminal from the child and gives it its
/// size, before the command starts.
pub(crate) fn size_terminal(launched: &mut Launched, size: Option<(u16, u16)>) -> Result<()> {
    if !launched.receive_terminal()? {
        return Ok(());
    }
    if let (Some(t), Some((rows, cols))) = (&launched.terminal, size) {
        let size = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(t, size)
            .map_err(|e| Error::os("set the size of the container's terminal", e))?;
    }
    Ok(())
}

impl Container<'_> {
    /// The master end of the container's terminal (`Spec::tty`), once.
    pub fn take_terminal(&mut self) -> Option<OwnedFd> {
        self.launched.terminal.take()
    }

    /// The container's ID.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The container's record as it was when it started.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Whether the image's pool of spare snapshots is below half its size and
    /// should be refilled ([`Store::refill_pool`]; the CLI does it in a background
    /// process).
    pub fn pool_low(&self) -> bool {
        self.created.as_ref().is_some_and(|c| c.pool_low)
    }

    /// The bridge pool of spare network namespaces its start took from
    /// (bridge mode; a user-defined network's bridge), for
    /// [`Store::refill_netns_pool`].
    pub fn netns_spare_pool(&self) -> Option<&net::SparePool> {
        self.network.as_ref().and_then(|n| n.spare_pool())
    }

    /// The host pid of the container's first process.
    pub fn pid(&self) -> i32 {
        self.launched.pid.as_raw_nonzero().get()
    }

    /// A pidfd of the container's first process.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.launched.pidfd.as_fd()
    }

    /// An fd of the container's mount namespace (`None` on kernels before 6.11,
    /// and after the first call). While it is open, the container's mounts
    /// outlive its processes: whoever closes the last fd pays for taking them
    /// down, which otherwise the container's exit does (and its waiter waits
    /// for). The CLI passes it to its background process, so that a `--rm` run
    /// does not wait for the unmounts. Without this call, the fd closes when
    /// the container has been waited for.
    pub fn hold_mount_namespace(&mut self) -> Option<OwnedFd> {
        self.launched.take_mount_namespace()
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) to the container's first process.
    pub fn signal(&self, signal: i32) -> Result<()> {
        self.launched.signal(signal)
    }

    /// Makes a `--rm` container's end cheaper: its snapshot is moved to the
    /// store's trash instead of being destroyed at once; call
    /// [`Store::empty_trash`] later (the CLI does, in a background process).
    pub fn defer_destroy(&mut self) {
        self.defer_destroy = true;
    }

    /// Waits for the container to end; returns its exit code (128+N for signal N).
    pub fn wait(self) -> Result<i32> {
        self.wait_with(None)
    }

    /// Like [`Container::wait`], passing on the signals `forwarder` receives.
    /// With a terminal (`Spec::tty`, not taken), relays between it and
    /// tupper's stdin and stdout meanwhile ([`crate::terminal::relay`]).
    pub fn wait_forwarding(self, forwarder: &Forwarder) -> Result<i32> {
        self.wait_with(Some(forwarder))
    }

    /// [`Container::wait_forwarding`], then, while its restart policy
    /// ([`Spec::restart`], [`crate::restart`]) says so, starts it again
    /// after docker's wait ([`crate::restart::Backoff`]) and waits for that
    /// run; returns the exit code of its last run. A `stop`, `rm -f` or
    /// ending `kill` ends the restarts (one that comes while it starts
    /// again kills it at once), as does an ending signal that `forwarder`
    /// receives (whoever sent it wants tupper to end); a restart that
    /// fails ends them too, with its error on stderr.
    pub fn wait_restarting(self, forwarder: &Forwarder) -> Result<i32> {
        use crate::restart::{Backoff, Policy, Stopped};
        let (store, id) = (self.store, self.record.id.clone());
        let mut backoff = Backoff::default();
        let mut container = self;
        loop {
            let started = std::time::Instant::now();
            let code = container.wait_forwarding(forwarder)?;
            let stopped = |store: &Store| match forwarder.take_an_end() {
                true => Stopped::Canceled,
                false => store.stopped_by_user(&id),
            };
            // As the record says now: `update --restart` may have changed it.
            let Some(rec) = store.read_stored(&id) else {
                return Ok(code);
            };
            let policy = match &rec.restart {
                Some(p) => Policy::parse(p)?,
                None => return Ok(code),
            };
            if !policy.restarts_after(code, rec.restart_count, stopped(store)) {
                return Ok(code);
            }
            let end = std::time::Instant::now() + backoff.next(started.elapsed());
            // `ps` shows it restarting until it runs again.
            let _restarting = store.hold_restarting(&id);
            loop {
                let left = end.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                if stopped(store) == Stopped::Canceled {
                    return Ok(code);
                }
                std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
            }
            // Started by a user meanwhile (`start`, `restart`): theirs now.
            if store.is_running(&id) {
                return Ok(code);
            }
            container = match store.start_again_as(&id, None, true) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("tupper: restart container {id}: {}", e.what());
                    return Ok(code);
                }
            };
            // A stop that found it between two runs.
            if stopped(store) == Stopped::Canceled {
                let _ = container.launched.signal(libc::SIGKILL);
            }
        }
    }

    fn wait_with(mut self, forwarder: Option<&Forwarder>) -> Result<i32> {
        let terminal = self.launched.terminal.take();
        let pidfd = self.launched.pidfd.as_fd();
        let own_process_group = self.own_process_group;
        // Its health check, on a thread of its own (which inherits the
        // signal mask of the forwarder's thread), for as long as it runs.
        let check = self
            .record
            .config
            .as_ref()
            .and_then(|c| c.healthcheck.as_ref())
            .filter(|h| h.enabled());
        let (store, record) = (self.store, &self.record);
        let deadline = self.deadline;
        let code = std::thread::scope(|s| {
            if let Some(check) = check {
                s.spawn(move || crate::health::monitor(store, record, pidfd, check));
            }
            if let Some(deadline) = deadline {
                s.spawn(move || launch::kill_at(pidfd, deadline));
            }
            match (forwarder, terminal) {
                (Some(f), Some(t)) => crate::terminal::relay(t, pidfd, f),
                (Some(f), None) => f.wait(pidfd, own_process_group),
                // A terminal nobody took stays open (closing it would hang
                // the command up) until the command ends.
                (None, terminal) => {
                    let code = launch::wait(pidfd);
                    drop(terminal);
                    code
                }
            }
        })?;
        if let Some(network) = self.network.take() {
            net::release(network)?;
        }
        // Its output in its log before its end is recorded (`tupper wait`
        // then `tupper logs`).
        crate::logfile::flush();
        if let Some(created) = self.created.take() {
            self.store.finish(created, code, self.defer_destroy)?;
        }
        Ok(code)
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        // Dropped while running: kill it and clean up as `wait` would.
        if let Some(created) = self.created.take() {
            let _ = self.launched.signal(libc::SIGKILL);
            let code = launch::wait(self.launched.pidfd.as_fd()).unwrap_or(128 + libc::SIGKILL);
            if let Some(network) = self.network.take() {
                let _ = net::release(network);
            }
            let _ = self.store.finish(created, code, false);
        }
    }
}

/// The hostname: `--hostname`, else the name when it is a valid hostname, else
/// the ID.
/// How errors name container `r`: by its name, else its ID.
fn shown(r: &Record) -> &str {
    r.name.as_deref().unwrap_or(&r.id)
}

/// Sets process `pid`'s `oom_score_adj` (`--oom-score-adj`), which the
/// processes it starts inherit.
pub(crate) fn set_oom_score_adj(pid: i32, adj: i32) -> Result<()> {
    let path = format!("/proc/{pid}/oom_score_adj");
    rustix::fs::open(
        path.as_str(),
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .and_then(|fd| rustix::io::write(&fd, adj.to_string().as_bytes()))
    .map(drop)
    .map_err(|e| {
        let err = Error::os(format!("write {adj} to {path} (--oom-score-adj)"), e);
        match e {
            // The kernel's rule: below the lowest it had, only with it.
            rustix::io::Errno::ACCESS => err
                .with_advice("a value below 0 needs CAP_SYS_RESOURCE, which tupper does not have"),
            _ => err,
        }
    })
}

/// `--ipc`'s value as the user gave it: `container:NAME` with the other
/// container's name (the mode keeps its ID).
fn shown_ipc(mode: &crate::ipc::Mode, provider: Option<&Record>) -> String {
    match provider {
        Some(p) => format!("container:{}", shown(p)),
        None => mode.to_string(),
    }
}

/// The error of `what` (joining a namespace of container `shown`) when
/// that container does not run.
fn not_running(what: &str, shown: &str) -> Error {
    Error::msg(format!("{what}: it is not running"))
        .with_advice(format!("start it first: tupper start {shown}"))
}

fn default_hostname(spec: &Spec, id: &str) -> String {
    match (&spec.hostname, &spec.name) {
        (Some(h), _) => h.clone(),
        (None, Some(n)) if plan::valid_hostname(n) => n.clone(),
        _ => id.to_string(),
    }
}

/// `RTM_NEWLINK` for ifindex 1 (`lo` in a new network namespace): flags and change
/// mask `IFF_UP`, with `NLM_F_REQUEST | NLM_F_ACK`.
pub(crate) const LOOPBACK_UP: crate::child::LoopbackRequest = loopback_up();

const fn loopback_up() -> crate::child::LoopbackRequest {
    let mut m = [0u8; 32];
    let len = 32u32.to_ne_bytes();
    let ty = (linux_raw_sys::netlink::RTM_NEWLINK as u16).to_ne_bytes();
    let flags = ((linux_raw_sys::netlink::NLM_F_REQUEST | linux_raw_sys::netlink::NLM_F_ACK)
        as u16)
        .to_ne_bytes();
    let seq = 1u32.to_ne_bytes();
    let index = 1i32.to_ne_bytes();
    let up = (libc::IFF_UP as u32).to_ne_bytes();
    let mut i = 0;
    while i < 4 {
        m[i] = len[i]; // nlmsg_len
        m[8 + i] = seq[i]; // nlmsg_seq; nlmsg_pid (12..16) = 0: the kernel
        m[20 + i] = index[i]; // ifi_index; ifi_family, pad, ifi_type (16..20) = 0
        m[24 + i] = up[i]; // ifi_flags
        m[28 + i] = up[i]; // ifi_change
        if i < 2 {
            m[4 + i] = ty[i]; // nlmsg_type
            m[6 + i] = flags[i]; // nlmsg_flags
        }
        i += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_request_golden_bytes() {
        // struct nlmsghdr { len=32, type=RTM_NEWLINK(16), flags=REQUEST|ACK(5), seq=1, pid=0 }
        // struct ifinfomsg { family=0, pad, type=0, index=1, flags=IFF_UP, change=IFF_UP }
        let want: [u8; 32] = [
            32, 0, 0, 0, 16, 0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, //
            0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,
        ];
        assert_eq!(LOOPBACK_UP, want);
    }
}
