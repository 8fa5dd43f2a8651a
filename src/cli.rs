//! The command line: parse arguments into a [`Command`] (pure, unit-tested), then
//! carry it out on a [`Store`]. See `docs/cli.md`.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsFd;

use lexopt::{Arg, Parser, ValueExt};

use crate::error::{Error, Result};
use crate::extract::Progress;
use crate::image::Source;
use crate::launch::Forwarder;
use crate::net;
use crate::run::Spec;
use crate::store::{Store, DEFAULT_ROOT};
use crate::timefmt;

/// The usage text.
pub const USAGE: &str = "\
Usage: tupper [--root DIR] COMMAND [ARG]...

A container runtime on btrfs snapshots: one static binary, direct syscalls only.

Commands:
  import [--force] [-c INSTRUCTION]... NAME SOURCE
                                 import a root filesystem (tar, tar.gz, tar.zst, - for stdin, or a directory);
                                 -c, --change: a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER,
                                 LABEL, STOPSIGNAL, EXPOSE) of its configuration
  load [--force] [-c INSTRUCTION]... NAME SOURCE
                                 load an image archive (docker save, podman save, an OCI layout directory or
                                 its tar; - for stdin): its layers, its configuration (-c: changed)
  save [-o FILE] NAME            an image as an image archive (OCI layout and docker's manifest.json) on
                                 stdout or in FILE, for load (tupper's, docker's, podman's)
  images [--json] [-q] [--format T]
                                 list images (--json: with their configuration; -q: only their names)
  commit [--force] [-c INSTRUCTION]... CONTAINER IMAGE
                                 make an image of a container's files (a read-only snapshot) and its image's
                                 configuration (-c: changed)
  rmi NAME...                    remove images
  tag IMAGE NAME                 give an image another name (a read-only snapshot; replaces an image NAME)
  run [OPTIONS] IMAGE [COMMAND [ARG]...]
                                 run a command in a new container
  create [OPTIONS] IMAGE [COMMAND [ARG]...]
                                 make a container with run's options (but -d), without running it; print its ID
      --rm                       remove the container when it exits
      -d, --detach               run in the background: print the ID once the command runs (see logs, stop)
      --name NAME                name the container (unique)
      --replace                  remove the container of that name first (podman's)
      --hostname NAME            the container's hostname (default: its name, else its ID)
      -e, --env KEY[=VALUE]      set an environment variable
      --env-file FILE            set the variables of FILE (KEY=VALUE lines; -e wins)
      -w, --workdir DIR          working directory inside the container
      -u, --user USER[:GROUP]    run as USER (a name of the image's /etc/passwd, or a uid), in GROUP
      --group-add GROUP          add a supplementary group (a name of the image's /etc/group, or a gid)
      --net bridge|none|host     network (default: bridge)
      --net container:NAME       join running container NAME's network (its addresses, ports, /etc files)
      --net NETWORK              on user-defined NETWORK (network create): its containers find it by name
      --network-alias NAME       another name by which they find it
      --ip ADDR                  the container's address on the bridge (default: the lowest free one)
      --mac-address MAC          its eth0's MAC address (default: 02:42 and its IPv4 address)
      -p, --publish [[ADDR:]HOST:]CTR[/tcp|/udp]
                                 publish a container port on the host (no HOST: a free one)
      -P, --publish-all          publish every exposed port on a free host port
      --expose PORT[-LAST][/tcp|/udp]
                                 expose a port more (for -P)
      --health-cmd CMD           a health check: CMD run by /bin/sh -c in the container
      --health-interval D, --health-timeout D, --health-start-period D, --health-start-interval D
                                 its timing (30s, 30s, 0s, 5s; Go durations: 1m30s, 500ms)
      --health-retries N         failures in a row that make it unhealthy (3)
      --no-healthcheck           no health check (not the image's HEALTHCHECK)
      --dns ADDR, --dns-search DOMAIN, --dns-option OPT
                                 the container's resolv.conf nameservers, search domains, options
      --add-host NAME:ADDR       add NAME to the container's /etc/hosts (ADDR host-gateway: the bridge)
      -v, --volume HOST:CTR[:ro] bind a host file or directory into the container (read-only with :ro;
                                 :rslave, :rshared: mounts beneath HOST propagate in, or both ways)
      -v, --volume NAME:CTR[:ro] mount named volume NAME (made on first use, filled from the image at CTR)
      --volumes-from NAME[:ro|:rw]
                                 mount container NAME's volumes and bind mounts where it has them
      --tmpfs CTR[:OPTIONS]      mount a new tmpfs (default nosuid,nodev,noexec; size=, mode=, exec, ro, ...)
      --mount type=bind,source=HOST,target=CTR[,readonly] | type=volume,source=NAME,target=CTR[,readonly]
              | type=tmpfs,target=CTR[,tmpfs-size=N,tmpfs-mode=M]
                                 the same mounts, in docker's other spelling
      --read-only                make the container's root read-only
      --init                     PID 1 is a minimal init: it reaps orphans and passes signals on to the command
      -m, --memory BYTES         limit its memory (512m, 1g; at least 6m; 0: none): a cgroup of its own
      --memory-swap BYTES        limit memory plus swap (default: twice --memory; -1: unlimited swap)
      --memory-reservation BYTES a soft memory limit, reclaimed down to when memory is short
      --pids-limit N             limit its number of tasks (-1: no limit)
      --cpus N                   limit its CPU time to N CPUs (1.5)
      --cpu-period US, --cpu-quota US
                                 its CFS period and quota in microseconds (not with --cpus)
      -c, --cpu-shares N         its relative CPU weight (default 1024; 2-262144)
      --cpuset-cpus LIST, --cpuset-mems LIST
                                 the CPUs (0-2,4) and memory nodes it may use
      --device-read-bps PATH:RATE, --device-write-bps PATH:RATE
                                 limit reads or writes of block device PATH (1mb: bytes a second)
      --device-read-iops PATH:N, --device-write-iops PATH:N
                                 limit its read or write operations a second
      --memory-swappiness N      how eagerly its memory is swapped (0-100; cgroup v1)
      --oom-kill-disable         out of memory, wait instead of a kill (needs -m; cgroup v1)
      --cgroup-parent PATH       where its cgroup goes in each hierarchy (default tupper)
      --ulimit NAME=SOFT[:HARD]  a resource limit of the command (nofile=1024:2048, nproc=64, core=-1)
      --stop-signal SIGNAL       the signal stop sends first (default TERM)
      --sysctl NAME=VALUE        a kernel parameter of the container's own namespaces (net.*, kernel.shm*, ...)
      --device HOST[:CTR][:rwm]  bind a host device node into the container's /dev
      --stop-timeout SECONDS     how long stop waits before SIGKILL (default 10; -1: forever)
      --restart POLICY           no, always, unless-stopped, on-failure[:MAX]: start it again when it ends (with -d)
      --shm-size BYTES           the size of its /dev/shm (default 64m)
      --uts host                 the host's UTS namespace and hostname
      --cgroupns host|private    the host's cgroup namespace, or one rooted at its cgroup (default)
      --ipc MODE                 private (default), shareable, none (no /dev/shm),
                                 host, or container:NAME (its IPC and /dev/shm)
      --pid MODE                 private (default), host (the host's PID namespace),
                                 or container:NAME (NAME's)
      --domainname NAME          the container's NIS domain name (/etc/hosts: HOSTNAME.NAME HOSTNAME)
      --oom-score-adj N          its processes' oom_score_adj (-1000 to 1000)
      --storage-opt size=BYTES   limit what it writes to its root (btrfs simple quotas; 0: none)
      --timeout SECONDS          kill the command (SIGKILL, exit 137) once it has run that long
      --health-on-failure ACTION none, kill (its restart policy applies) or stop, once unhealthy
      --log-driver DRIVER        json-file (default), local (rotated: 5 files of 20 MiB), k8s-file (each line's time) or none
      --log-opt max-size=BYTES   rotate the log (-d) at that size; max-file=N: files kept (1: emptied)
      --cidfile FILE             write the container's ID to FILE (which must not exist)
      -t, --tty                  give the command a terminal of its own (-i is accepted: stdin is always passed)
      --cap-add CAP, --cap-drop CAP
                                 add or drop a capability (or ALL) from docker's default set
      --privileged               every capability, no filter, the host's devices, no /proc and /sys masks
      --userns auto|host         auto: a user namespace of its own, its root an unprivileged host uid
      --entrypoint CMD           run CMD (with the command as its arguments) in place of the image's ENTRYPOINT
      -l, --label KEY[=VALUE], --label-file FILE
                                 a label of the container (ps --filter label=KEY=VALUE finds it)
      --security-opt seccomp=unconfined|builtin|FILE, --security-opt no-new-privileges[=BOOL]
                                 run without the system-call filter, or with docker's JSON profile FILE;
                                 set no_new_privs
  ps [-a] [-q] [--json] [-n N] [-l] [-f KEY=VALUE]... [--format T]
                                 list running (-a: all) containers (-q: only their IDs; -n: the last N
                                 made, -l: the last; -f: id, name, label, status, exited, ancestor, volume,
                                 network, health, restart-policy, since, before, publish, expose)
  inspect [-f T] NAME|ID...      a container's record and network settings, as JSON
                                 (--format T, -f T: docker's Go template, {{.Field}}, {{json .X}}, ...)
  rm [-f] NAME|ID...             remove containers (-f: kill running ones first)
  prune [--filter label=KEY[=VALUE]|until=TIME]...
                                 remove every container that is not running (exited, dead)
  system prune [--volumes]       prune, network prune (and volume prune)
  volume create|ls [-q] [--json] [--format T]|inspect [-f T]|rm|prune [NAME...]
                                 named volumes (run -v NAME:PATH makes one on first use, filled from the image)
  network create [--subnet CIDR] [--internal] [-l KEY=VALUE]... NAME | ls [-q] [--json] [--format T]
          | inspect [-f T] NAME... | rm NAME... | prune
                                 user-defined networks: a bridge and subnet each; run --net NAME puts a
                                 container on one, where the others find it by name (/etc/hosts)
  cp SRC DEST                    copy files between the host and a container (CONTAINER:PATH; -: a tar
                                 archive on stdout or stdin)
  exec [-d] [-t] [-e KEY[=VALUE]] [--env-file FILE] [-w DIR] [-u USER[:GROUP]] [--privileged]
       NAME|ID COMMAND [ARG]...  run a command in a running container (-d: in the background;
                                 --privileged: every capability)
  wait [--condition STATE]... [-i DURATION] NAME|ID...
                                 wait for containers to end; print their exit codes (--condition: podman's created,
                                 running, paused, healthy, unhealthy, stopped, removing; -1 for all but stopped)
  stop [-t SECONDS] [-s SIGNAL] NAME|ID...
                                 stop running containers: SIGTERM (or --stop-signal, or -s), SIGKILL
                                 after -t (default the container's --stop-timeout, else 10)
  start [-a] NAME|ID...          run stopped containers' commands again, in the background
                                 (-a: one, in the foreground, exiting as it does)
  start --all [--boot] [-f KEY=VALUE]...
                                 start every container that does not run and passes ps's filters
                                 (--boot: only those docker's daemon starts as it starts; at boot)
  restart [-t SECONDS] [-s SIGNAL] NAME|ID...
                                 stop (as stop -t -s) and start containers
  kill [-s SIGNAL] NAME|ID...    send a signal (default KILL) to running containers
  logs [-f] [-n N] [-t] [--since TIME] [--until TIME] NAME|ID
                                 the output of a container started with run -d (-f: follow; -n, --tail: the last N lines;
                                 -t, --since, --until: by the time of each line, with --log-driver k8s-file)
  port NAME|ID [PORT[/PROTO]]    the published ports of a container (docker's format)
  top NAME|ID                    the processes of a running container (ps -ef's columns, host PIDs)
  events [--since TIME] [--until TIME] [-f KEY=VALUE]... [--format T]
                                 what happens to containers, images, networks and volumes (docker's; on until --until)
  update [-m BYTES] [--memory-swap BYTES] [--memory-reservation BYTES] [--pids-limit N]
         [--cpus N] [--cpu-period US] [--cpu-quota US] [-c N] [--cpuset-cpus LIST]
         [--cpuset-mems LIST] [--restart POLICY] NAME|ID...
                                 change containers' limits (a running one's at once), restart policy
  pause NAME|ID...               freeze every process of running containers (cgroup freezer)
  unpause NAME|ID...             let the processes of paused containers go on
  diff NAME|ID                   what changed in a container's files since its image: A, C, D paths
  export [-o FILE] NAME|ID       a container's files as a tar archive, to stdout or FILE
  stats [--no-stream] [--json] [--format T] [NAME|ID...]
                                 CPU, memory, network and block I/O, PIDs of running containers (all
                                 without names), every second (--no-stream: once, after a second)
  rename NAME|ID NEW_NAME        rename a container (running or not)
  attach FILE                    mount a btrfs image file (mkfs.btrfs FILE) on the store root via a loop device
  detach                         unmount the store root

Global options:
  --root DIR      the store, a directory on btrfs (env TUPPER_ROOT, default /var/lib/tupper)
  --bridge NAME   the bridge of --net bridge (env TUPPER_BRIDGE, default tupper0)
  --subnet CIDR   the bridge's subnet (env TUPPER_SUBNET, default 10.89.0.0/16)
  -h, --help    this text
  --version     the version

Exit codes of run: the command's own, 128+N when it died of signal N, 125 when
tupper failed, 126 when the command cannot be invoked, 127 when it is not found.";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// The store root.
    pub root: OsString,
    /// `--bridge`, when given (else `TUPPER_BRIDGE`, else the default).
    pub bridge: Option<String>,
    /// `--subnet`, when given (else `TUPPER_SUBNET`, else the default).
    pub subnet: Option<String>,
    /// What to do.
    pub command: Command,
}

/// One tupper command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `import`.
    Import {
        /// The image name.
        name: String,
        /// The source argument.
        source: String,
        /// Replace an existing image.
        force: bool,
        /// `--change` instructions (`CMD ...`).
        changes: Vec<String>,
    },
    /// `load`: an image archive (see [`crate::image_archive`]).
    Load {
        /// The image name.
        name: String,
        /// The archive: a tar file, an OCI layout directory, or `-`.
        source: String,
        /// Replace an existing image.
        force: bool,
        /// `--change` instructions over its configuration.
        changes: Vec<String>,
    },
    /// `tag`: another name for an image.
    Tag {
        /// The image.
        source: String,
        /// Its new name.
        name: String,
    },
    /// `save`: an image as an image archive.
    Save {
        /// The image name.
        name: String,
        /// `-o FILE`, else stdout.
        output: Option<String>,
    },
    /// `commit`.
    Commit {
        /// The container (name or ID).
        container: String,
        /// The new image's name.
        image: String,
        /// Replace an existing image.
        force: bool,
        /// `--change` instructions (`CMD ...`).
        changes: Vec<String>,
    },
    /// `images`.
    Images {
        /// JSON output.
        json: bool,
        /// `-q`: only the names.
        quiet: bool,
        /// `--format`: each image through this template.
        format: Option<crate::template::Template>,
    },
    /// `rmi`.
    Rmi {
        /// The images.
        names: Vec<String>,
    },
    /// `run`.
    Run(Box<RunArgs>),
    /// `create`: a container made, its command not run (`start` runs it).
    Create(Box<RunArgs>),
    /// `volume create|ls|inspect|rm|prune`: named volumes.
    Volume(VolumeCommand),
    /// `network create|ls|inspect|rm|prune`: user-defined networks.
    Network(NetworkCommand),
    /// `ps`.
    Ps {
        /// Include exited and dead containers.
        all: bool,
        /// JSON output.
        json: bool,
        /// Only the IDs.
        quiet: bool,
        /// Only the last this many made (`-n`; `-l`: 1), in any state.
        last: Option<usize>,
        /// `--filter`s.
        filters: crate::filter::Filters,
        /// `--format`: each container through this template.
        format: Option<crate::template::Template>,
    },
    /// `wait`.
    Wait {
        /// Names or IDs.
        names: Vec<String>,
        /// `--condition`s, one of which ends the wait (`stopped` when none
        /// is given).
        conditions: Vec<crate::container::WaitCondition>,
        /// `--interval`: how often the record is read for a condition
        /// other than `stopped`.
        interval: std::time::Duration,
    },
    /// `inspect`.
    Inspect {
        /// Names or IDs.
        names: Vec<String>,
        /// `-f`, `--format`: each container through this template.
        format: Option<crate::template::Template>,
        /// `--type`, `container inspect`, `image inspect`: which kind of
        /// object the names are (without: a container, else an image).
        kind: InspectKind,
    },
    /// `prune`.
    Prune {
        /// `--filter`s (labels).
        filters: crate::filter::Filters,
    },
    /// `system prune [--volumes]`: containers that do not run, networks
    /// no container is on, and with `--volumes` volumes none names.
    SystemPrune {
        /// `--volumes`.
        volumes: bool,
    },
    /// `cp`.
    Cp {
        /// The source (`CONTAINER:PATH` or a host path).
        from: String,
        /// The destination.
        to: String,
    },
    /// `rm`.
    Rm {
        /// Names or IDs.
        names: Vec<String>,
        /// Kill running ones first.
        force: bool,
    },
    /// `exec`.
    Exec {
        /// Name or ID.
        name: String,
        /// `-t`.
        tty: bool,
        /// Return once the command runs (`-d`); its output is discarded.
        detach: bool,
        /// `-e`.
        env: Vec<String>,
        /// `-w`.
        workdir: Option<String>,
        /// `-u`.
        user: Option<String>,
        /// `--privileged`: every capability tupper has.
        privileged: bool,
        /// The command and its arguments.
        command: Vec<String>,
    },
    /// `stop`.
    Stop {
        /// Names or IDs.
        names: Vec<String>,
        /// Seconds between the stop signal and SIGKILL (`None`: the
        /// container's `--stop-timeout`, else 10).
        timeout: Option<u64>,
        /// `-s`: the signal in place of the container's stop signal.
        signal: Option<rustix::process::Signal>,
    },
    /// `start`: run a container's command again.
    Start {
        /// Names or IDs.
        names: Vec<String>,
        /// In the foreground, passing its output and exit code on (`-a`;
        /// one container only).
        attach: bool,
    },
    /// `start --all`: every container that does not run and passes the
    /// filters (podman's), in the background.
    StartAll {
        /// `ps`'s filters.
        filters: crate::filter::Filters,
        /// `--boot`: only those docker's daemon would start as it starts
        /// ([`crate::restart::Policy::starts_at_boot`]).
        boot: bool,
    },
    /// `restart`: stop (if running) and start containers.
    Restart {
        /// Names or IDs.
        names: Vec<String>,
        /// Seconds between the stop signal and SIGKILL, as `stop`'s.
        timeout: Option<u64>,
        /// `-s`, as `stop`'s.
        signal: Option<rustix::process::Signal>,
    },
    /// `kill`.
    Kill {
        /// Names or IDs.
        names: Vec<String>,
        /// The signal.
        signal: rustix::process::Signal,
    },
    /// `logs`.
    Logs {
        /// Name or ID.
        name: String,
        /// Keep printing while the container runs.
        follow: bool,
        /// Only the last this many lines (`--tail N`); all without.
        tail: Option<u64>,
        /// Each line's time before it (`-t`; a `k8s-file` log).
        timestamps: bool,
        /// Only the lines from this time on (`--since`), as given.
        since: Option<String>,
        /// Only the lines up to this time (`--until`), as given.
        until: Option<String>,
    },
    /// `port`: the published ports of a container.
    Port {
        /// Name or ID.
        name: String,
        /// Only this port of the container (`PORT[/PROTO]`, `tcp` by default).
        private: Option<(u16, net::Protocol)>,
    },
    /// `rename`: give a container another name.
    Rename {
        /// Name or ID.
        name: String,
        /// Its new name.
        new: String,
    },
    /// `stats`: what running containers use.
    Stats {
        /// Names or IDs (none: every running container).
        names: Vec<String>,
        /// Print again every second until they end (without `--no-stream`).
        stream: bool,
        /// JSON output.
        json: bool,
        /// `--format`: each container through this template.
        format: Option<crate::template::Template>,
    },
    /// `update`: change containers' limits.
    Update {
        /// Names or IDs.
        names: Vec<String>,
        /// The limits given (the others stay).
        resources: crate::cgroup::Resources,
        /// `--restart`: a new restart policy.
        restart: Option<crate::restart::Policy>,
    },
    /// `export`: a container's files as a tar archive.
    Export {
        /// Name or ID.
        name: String,
        /// The file to write (`-o`); stdout without.
        output: Option<String>,
    },
    /// `diff`: what changed in a container's files.
    Diff {
        /// Name or ID.
        name: String,
    },
    /// `pause`: freeze running containers.
    Pause {
        /// Names or IDs.
        names: Vec<String>,
    },
    /// `unpause`: thaw paused containers.
    Unpause {
        /// Names or IDs.
        names: Vec<String>,
    },
    /// `top`: the processes of a running container.
    Top {
        /// Name or ID.
        name: String,
    },
    /// `events`: what happened in the store, as docker's.
    Events {
        /// `--since`: the events from then on, as given (none: only new ones).
        since: Option<String>,
        /// `--until`: up to then, as given (none: on until interrupted).
        until: Option<String>,
        /// `--filter KEY=VALUE`s.
        filters: Vec<String>,
        /// `--format`.
        format: Option<crate::template::Template>,
    },
    /// `attach`: mount a btrfs image file on the store root.
    Attach {
        /// The image file.
        file: String,
    },
    /// `detach`: unmount the store root.
    Detach,
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

/// What `inspect` looks for (docker's `--type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InspectKind {
    /// A container of that name or ID, else an image of that name.
    #[default]
    Any,
    /// A container only (`container inspect`, `--type container`).
    Container,
    /// An image only (`image inspect`, `--type image`).
    Image,
}

/// The command that docker's management command `group sub` (`container
/// ls`, `image rm`, ...) is, and the kind of object an `inspect` of it
/// looks at.
fn management_command(group: &str, sub: &str) -> Result<(&'static str, InspectKind)> {
    const CONTAINER: &[&str] = &[
        "attach", "commit", "cp", "create", "diff", "exec", "export", "kill", "logs", "pause",
        "port", "prune", "rename", "restart", "rm", "run", "start", "stats", "stop", "top",
        "unpause", "update", "wait",
    ];
    const IMAGE: &[&str] = &["import", "load", "save", "tag"];
    let any = |list: &[&'static str]| list.iter().copied().find(|c| *c == sub);
    let found = match (group, sub) {
        (_, "inspect") if group == "container" => Some(("inspect", InspectKind::Container)),
        (_, "inspect") => Some(("inspect", InspectKind::Image)),
        // docker's `container attach` joins a container's stdio; tupper's
        // `attach` mounts a store.
        ("container", "attach") => None,
        ("container", "ls" | "list" | "ps") => Some(("ps", InspectKind::Any)),
        ("container", "remove") => Some(("rm", InspectKind::Any)),
        ("container", _) => any(CONTAINER).map(|c| (c, InspectKind::Any)),
        (_, "ls" | "list") => Some(("images", InspectKind::Any)),
        (_, "rm" | "remove") => Some(("rmi", InspectKind::Any)),
        _ => any(IMAGE).map(|c| (c, InspectKind::Any)),
    };
    found.ok_or_else(|| bad(format!("unknown command \"{group} {sub}\"")))
}

/// What `network` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkCommand {
    /// `network create [--subnet CIDR] [--internal] [-l KEY=VALUE]... NAME`.
    Create {
        /// Its name.
        name: String,
        /// `--subnet`.
        subnet: Option<String>,
        /// `-l`, `--label`.
        labels: Vec<String>,
        /// `--internal`.
        internal: bool,
    },
    /// `network ls [-q] [--json] [--format T]`.
    List(ListArgs),
    /// `network inspect [-f T] NAME...`.
    Inspect(InspectArgs),
    /// `network rm NAME...`.
    Remove(Vec<String>),
    /// `network prune`.
    Prune,
}

/// The options of an `ls` of named things (`volume ls`, `network ls`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListArgs {
    /// `-q`: only the names.
    pub quiet: bool,
    /// `--json`.
    pub json: bool,
    /// `--format`: each item through this template.
    pub format: Option<crate::template::Template>,
}

/// The arguments of an `inspect` of named things (`volume inspect`,
/// `network inspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectArgs {
    /// The names.
    pub names: Vec<String>,
    /// `-f`, `--format`: each item through this template.
    pub format: Option<crate::template::Template>,
}

/// `GROUP ls`'s options (`volume`, `network`).
fn parse_ls(p: &mut Parser, group: &str) -> Result<ListArgs> {
    let mut a = ListArgs::default();
    while let Some(arg) = p.next().map_err(lex)? {
        match arg {
            Arg::Short('q') | Arg::Long("quiet") => a.quiet = true,
            Arg::Short('j') | Arg::Long("json") => a.json = true,
            Arg::Long("format") => a.format = Some(template(p)?),
            Arg::Value(_) => return Err(bad(format!("{group} ls takes no arguments"))),
            other => return Err(lex(other.unexpected())),
        }
    }
    Ok(a)
}

/// `GROUP inspect`'s arguments (`volume`, `network`): at least one name.
fn parse_inspect(p: &mut Parser, group: &str) -> Result<InspectArgs> {
    let (mut names, mut format) = (Vec::new(), None);
    while let Some(arg) = p.next().map_err(lex)? {
        match arg {
            Arg::Short('f') | Arg::Long("format") => format = Some(template(p)?),
            Arg::Value(v) => names.push(string(v)?),
            other => return Err(lex(other.unexpected())),
        }
    }
    if names.is_empty() {
        return Err(bad(format!(
            "{group} inspect needs at least one {group} name"
        )));
    }
    Ok(InspectArgs { names, format })
}

/// What `volume` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeCommand {
    /// `volume create NAME...`.
    Create(Vec<String>),
    /// `volume ls [-q] [--json] [--format T]`.
    List(ListArgs),
    /// `volume inspect [-f T] NAME...`.
    Inspect(InspectArgs),
    /// `volume rm NAME...`.
    Remove(Vec<String>),
    /// `volume prune`.
    Prune,
}

/// The arguments of `run`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunArgs {
    /// `--rm`.
    pub remove: bool,
    /// `-d`.
    pub detach: bool,
    /// `--replace` (podman's): the container named `--name` goes first.
    pub replace: bool,
    /// `--name`.
    pub name: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `-e`.
    pub env: Vec<String>,
    /// `--env-file`, in order.
    pub env_files: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `--net`.
    pub net: Option<String>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ip: Option<String>,
    /// `--mac-address`.
    pub mac: Option<String>,
    /// `-p`.
    pub publish: Vec<String>,
    /// `-P`.
    pub publish_all: bool,
    /// `--expose`, as `PORT/PROTO` each.
    pub expose: Vec<String>,
    /// `--health-*`, `--no-healthcheck` (`test` `["NONE"]`).
    pub health: crate::health::Healthcheck,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `-t`.
    pub tty: bool,
    /// `-v` and `--tmpfs`, in order.
    pub mounts: Vec<crate::volume::Mount>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--init`.
    pub init: bool,
    /// `-u`.
    pub user: Option<String>,
    /// `--group-add`.
    pub group_add: Vec<String>,
    /// `--memory`, `--pids-limit`, `--cpus`, ...: the container's limits.
    pub resources: crate::cgroup::Resources,
    /// `--ulimit NAME=SOFT[:HARD]`, as given.
    pub ulimits: Vec<String>,
    /// `--dns`, `--dns-search`, `--dns-option`, `--add-host`.
    pub etc: net::EtcOptions,
    /// `--stop-signal`, as a number.
    pub stop_signal: Option<i32>,
    /// `--stop-timeout` in seconds (-1: forever).
    pub stop_timeout: Option<i64>,
    /// `--sysctl NAME=VALUE`, as given.
    pub sysctls: Vec<String>,
    /// `--device`s.
    pub devices: Vec<crate::device::Device>,
    /// `--privileged`.
    pub privileged: bool,
    /// `-l`, `--label`, as given.
    pub labels: Vec<String>,
    /// `--entrypoint` (`""`: none).
    pub entrypoint: Option<String>,
    /// `--label-file`, in order.
    pub label_files: Vec<String>,
    /// `--userns` (`auto` or `host`), as given.
    pub userns: Option<String>,
    /// `--restart`.
    pub restart: crate::restart::Policy,
    /// `--shm-size`, bytes.
    pub shm_size: Option<u64>,
    /// `--uts host`.
    pub host_uts: bool,
    /// `--cgroupns host`.
    pub host_cgroupns: bool,
    /// `--ipc`.
    pub ipc: crate::ipc::Mode,
    /// `--pid`.
    pub pid: crate::pidns::Mode,
    /// `--domainname`.
    pub domainname: Option<String>,
    /// `--oom-score-adj`.
    pub oom_score_adj: Option<i32>,
    /// `--storage-opt size=`, bytes.
    pub storage_size: Option<u64>,
    /// `--timeout`, seconds (0: none).
    pub timeout: Option<u64>,
    /// `--health-on-failure`.
    pub health_on_failure: crate::health::OnFailure,
    /// `--log-driver`.
    pub log_driver: Option<String>,
    /// `--log-opt`s, as given.
    pub log_opts: Vec<String>,
    /// `--cidfile`: the file the container's ID is written to.
    pub cidfile: Option<String>,
    /// `--volumes-from`, as given.
    pub volumes_from: Vec<String>,
    /// The image.
    pub image: String,
    /// The command and its arguments.
    pub command: Vec<String>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::msg(msg).with_advice("see `tupper --help`")
}

fn advise(e: Error) -> Error {
    e.with_advice("see `tupper --help`")
}

fn lex(e: lexopt::Error) -> Error {
    bad(e.to_string())
}

fn string(v: OsString) -> Result<String> {
    v.string().map_err(lex)
}

/// Parses a command line (without the program name). `env_root` is `TUPPER_ROOT`.
pub fn parse(args: Vec<OsString>, env_root: Option<OsString>) -> Result<Cli> {
    let mut p = Parser::from_args(args);
    let mut root = env_root.unwrap_or_else(|| DEFAULT_ROOT.into());
    let (mut bridge, mut subnet) = (None, None);
    let done = |root, command| {
        Ok(Cli {
            root,
            bridge: None,
            subnet: None,
            command,
        })
    };
    let sub = loop {
        match p.next().map_err(lex)? {
            Some(Arg::Long("root")) => root = p.value().map_err(lex)?,
            Some(Arg::Long("bridge")) => bridge = Some(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("subnet")) => subnet = Some(string(p.value().map_err(lex)?)?),
            Some(Arg::Short('h')) | Some(Arg::Long("help")) => return done(root, Command::Help),
            Some(Arg::Long("version")) => return done(root, Command::Version),
            Some(Arg::Value(v)) => break string(v)?,
            Some(other) => return Err(lex(other.unexpected())),
            None => return Err(bad("no command given")),
        }
    };
    // docker's management commands: `container ls` is `ps`, `image rm` is
    // `rmi`, ...
    let (sub, inspect_kind) = match sub.as_str() {
        group @ ("container" | "image") => match p.next().map_err(lex)? {
            Some(Arg::Value(v)) => {
                let (command, kind) = management_command(group, &string(v)?)?;
                (command.to_string(), kind)
            }
            _ => return Err(bad(format!("{group} needs a command"))),
        },
        "system" => match p.next().map_err(lex)? {
            Some(Arg::Value(v)) if v == "prune" => ("system prune".to_string(), InspectKind::Any),
            Some(Arg::Value(v)) => {
                return Err(bad(format!(
                    "unknown command \"system {}\": tupper has system prune",
                    v.to_string_lossy()
                )))
            }
            _ => return Err(bad("system needs a command: prune")),
        },
        _ => (sub, InspectKind::Any),
    };
    let command = match sub.as_str() {
        "import" => {
            let (force, changes, pos) = force_and_changes(&mut p)?;
            let [name, source]: [String; 2] = pos
                .try_into()
                .map_err(|_| bad("import takes two arguments: NAME SOURCE"))?;
            Command::Import {
                name,
                source,
                force,
                changes,
            }
        }
        "load" => {
            let (force, changes, pos) = force_and_changes(&mut p)?;
            let [name, source]: [String; 2] = pos
                .try_into()
                .map_err(|_| bad("load takes two arguments: NAME SOURCE"))?;
            Command::Load {
                name,
                source,
                force,
                changes,
            }
        }
        "commit" => {
            let (force, changes, pos) = force_and_changes(&mut p)?;
            let [container, image]: [String; 2] = pos
                .try_into()
                .map_err(|_| bad("commit takes two arguments: CONTAINER IMAGE"))?;
            Command::Commit {
                container,
                image,
                force,
                changes,
            }
        }
        "images" => {
            let (mut json, mut quiet, mut format) = (false, false, None);
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Long("json") => json = true,
                    Arg::Short('q') | Arg::Long("quiet") => quiet = true,
                    Arg::Long("format") => format = Some(template(&mut p)?),
                    Arg::Value(_) => return Err(bad("images takes no arguments")),
                    other => return Err(lex(other.unexpected())),
                }
            }
            Command::Images {
                json,
                quiet,
                format,
            }
        }
        "tag" => {
            let (_, names) = flags(&mut p, &[])?;
            let [source, name]: [String; 2] = names
                .try_into()
                .map_err(|_| bad("tag takes two arguments: IMAGE NAME"))?;
            Command::Tag { source, name }
        }
        "rmi" => {
            let (_, names) = flags(&mut p, &[])?;
            if names.is_empty() {
                return Err(bad("rmi needs at least one image name"));
            }
            Command::Rmi { names }
        }
        "ps" => {
            let (mut all, mut json, mut quiet, mut last) = (false, false, false, None);
            let (mut filters, mut format) = (Vec::new(), None);
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Short('a') | Arg::Long("all") => all = true,
                    Arg::Long("format") => format = Some(template(&mut p)?),
                    Arg::Short('j') | Arg::Long("json") => json = true,
                    Arg::Short('q') | Arg::Long("quiet") => quiet = true,
                    Arg::Short('l') | Arg::Long("latest") => last = Some(1),
                    Arg::Short('n') | Arg::Long("last") => {
                        let n = string(p.value().map_err(lex)?)?;
                        // docker's -1: no limit.
                        last = match n.parse::<i64>() {
                            Ok(-1) => None,
                            Ok(n) if n >= 0 => Some(n as usize),
                            _ => return Err(bad(format!("ps -n {n:?}: not a count"))),
                        };
                    }
                    Arg::Short('f') | Arg::Long("filter") => {
                        filters.push(string(p.value().map_err(lex)?)?)
                    }
                    Arg::Value(_) => return Err(bad("ps takes no arguments")),
                    other => return Err(lex(other.unexpected())),
                }
            }
            Command::Ps {
                all,
                json,
                quiet,
                last,
                filters: crate::filter::Filters::parse("ps", &filters, crate::filter::PS_KEYS)?,
                format,
            }
        }
        "wait" => {
            let (mut names, mut conditions) = (Vec::new(), Vec::new());
            let mut interval = std::time::Duration::from_millis(250);
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Long("condition") => {
                        let c = string(p.value().map_err(lex)?)?;
                        conditions.push(crate::container::WaitCondition::parse(&c)?);
                    }
                    Arg::Short('i') | Arg::Long("interval") => {
                        let v = string(p.value().map_err(lex)?)?;
                        interval = crate::timefmt::parse_interval(&v)
                            .filter(|d| !d.is_zero())
                            .ok_or_else(|| {
                                bad(format!(
                                    "wait --interval {v:?}: a duration (250ms, 1s; a number alone is milliseconds)"
                                ))
                            })?;
                    }
                    Arg::Value(v) => names.push(string(v)?),
                    other => return Err(lex(other.unexpected())),
                }
            }
            if names.is_empty() {
                return Err(bad("wait needs at least one container name or ID"));
            }
            if conditions.is_empty() {
                conditions.push(crate::container::WaitCondition::Stopped);
            }
            Command::Wait {
                names,
                conditions,
                interval,
            }
        }
        "inspect" => {
            let (mut names, mut format, mut kind) = (Vec::new(), None, inspect_kind);
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Short('f') | Arg::Long("format") => format = Some(template(&mut p)?),
                    Arg::Long("type") => {
                        kind = match string(p.value().map_err(lex)?)?.as_str() {
                            "container" => InspectKind::Container,
                            "image" => InspectKind::Image,
                            other => {
                                return Err(bad(format!(
                                    "inspect --type {other}: container or image"
                                )))
                            }
                        }
                    }
                    Arg::Value(v) => names.push(string(v)?),
                    other => return Err(lex(other.unexpected())),
                }
            }
            if names.is_empty() {
                return Err(bad("inspect needs at least one container or image name"));
            }
            Command::Inspect {
                names,
                format,
                kind,
            }
        }
        "rm" => {
            // `-v` (docker's `--volumes`: its anonymous volumes, of which
            // tupper has none) is taken and changes nothing.
            let (flags, names) = flags(&mut p, &["force", "volumes"])?;
            if names.is_empty() {
                return Err(bad("rm needs at least one container name or ID"));
            }
            Command::Rm {
                names,
                force: flags[0],
            }
        }
        "cp" => {
            let (_, pos) = flags(&mut p, &[])?;
            let [from, to]: [String; 2] = pos.try_into().map_err(|_| {
                bad("cp takes two arguments: SRC DEST (one of them CONTAINER:PATH)")
            })?;
            Command::Cp { from, to }
        }
        "prune" => {
            let mut filters = Vec::new();
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    // docker's `container prune` asks first; tupper never does.
                    Arg::Short('f') | Arg::Long("force") => {}
                    Arg::Long("filter") => filters.push(string(p.value().map_err(lex)?)?),
                    Arg::Value(_) => return Err(bad("prune takes no arguments")),
                    other => return Err(lex(other.unexpected())),
                }
            }
            Command::Prune {
                filters: crate::filter::Filters::parse(
                    "prune",
                    &filters,
                    crate::filter::PRUNE_KEYS,
                )?,
            }
        }
        "system prune" => {
            // docker's asks first unless -f; tupper never asks. `-a`
            // (images without a container) is not taken: tupper's images
            // are never dangling, and removing them all is `rmi`'s.
            let (set, rest) = flags(&mut p, &["force", "volumes"])?;
            if !rest.is_empty() {
                return Err(bad("system prune takes no arguments"));
            }
            Command::SystemPrune { volumes: set[1] }
        }
        "run" => Command::Run(Box::new(parse_run(&mut p)?)),
        "volume" => Command::Volume(parse_volume_command(&mut p)?),
        "network" => Command::Network(parse_network_command(&mut p)?),
        "stats" => {
            let (mut names, mut stream, mut json, mut format) = (Vec::new(), true, false, None);
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Long("no-stream") => stream = false,
                    Arg::Short('j') | Arg::Long("json") => json = true,
                    Arg::Long("format") => format = Some(template(&mut p)?),
                    Arg::Value(v) => names.push(string(v)?),
                    other => return Err(lex(other.unexpected())),
                }
            }
            Command::Stats {
                names,
                stream,
                json,
                format,
            }
        }
        "create" => {
            let a = parse_run(&mut p)?;
            if a.detach {
                return Err(bad(
                    "create has no -d: the container is made, not run (`tupper start` runs it in the background)",
                ));
            }
            Command::Create(Box::new(a))
        }
        "exec" => {
            let (mut tty, mut env, mut workdir, mut user) = (false, Vec::new(), None, None);
            let (mut detach, mut privileged, mut files) = (false, false, Vec::new());
            let name = loop {
                match p.next().map_err(lex)? {
                    Some(Arg::Short('t')) | Some(Arg::Long("tty")) => tty = true,
                    Some(Arg::Short('d')) | Some(Arg::Long("detach")) => detach = true,
                    Some(Arg::Short('i')) | Some(Arg::Long("interactive")) => {}
                    Some(Arg::Short('e')) | Some(Arg::Long("env")) => {
                        env.push(string(p.value().map_err(lex)?)?)
                    }
                    Some(Arg::Short('w')) | Some(Arg::Long("workdir")) => {
                        workdir = Some(string(p.value().map_err(lex)?)?)
                    }
                    Some(Arg::Short('u')) | Some(Arg::Long("user")) => {
                        user = Some(string(p.value().map_err(lex)?)?)
                    }
                    Some(Arg::Long("env-file")) => files.push(string(p.value().map_err(lex)?)?),
                    Some(Arg::Long("privileged")) => privileged = true,
                    Some(Arg::Value(v)) => break string(v)?,
                    Some(other) => return Err(lex(other.unexpected())),
                    None => return Err(bad("exec needs a container name or ID and a command")),
                }
            };
            let command = p
                .raw_args()
                .map_err(lex)?
                .map(string)
                .collect::<Result<Vec<_>>>()?;
            if command.is_empty() {
                return Err(bad("exec needs a command"));
            }
            if detach && tty {
                return Err(bad(
                    "exec -d with -t is not supported (a detached command has no terminal to copy)",
                ));
            }
            Command::Exec {
                name,
                tty,
                detach,
                // docker's order: the files' variables, then -e's.
                env: env_files(&files)?.into_iter().chain(env).collect(),
                workdir,
                user,
                privileged,
                command,
            }
        }
        "stop" => {
            let (names, [time, signal]) = names_and_options(
                &mut p,
                "stop",
                [('t', &["time", "timeout"]), ('s', &["signal"])],
            )?;
            Command::Stop {
                names,
                timeout: parse_stop_timeout("stop", time.as_deref())?,
                signal: signal.map(|v| parse_signal("stop -s", &v)).transpose()?,
            }
        }
        "restart" => {
            let (names, [value, signal]) = names_and_options(
                &mut p,
                "restart",
                [('t', &["time", "timeout"]), ('s', &["signal"])],
            )?;
            Command::Restart {
                names,
                signal: signal.map(|v| parse_signal("restart -s", &v)).transpose()?,
                timeout: parse_stop_timeout("restart", value.as_deref())?,
            }
        }
        "start" => {
            let (mut attach, mut names) = (false, Vec::new());
            let (mut all, mut filters, mut boot) = (false, Vec::new(), false);
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Short('a') | Arg::Long("attach") => attach = true,
                    Arg::Short('i') | Arg::Long("interactive") => {}
                    Arg::Long("all") => all = true,
                    Arg::Long("boot") => boot = true,
                    Arg::Short('f') | Arg::Long("filter") => {
                        filters.push(string(p.value().map_err(lex)?)?)
                    }
                    Arg::Value(v) => names.push(string(v)?),
                    other => return Err(lex(other.unexpected())),
                }
            }
            if all && (attach || !names.is_empty()) {
                return Err(bad("start --all takes no -a and no names"));
            }
            if !all && !filters.is_empty() {
                return Err(bad("start --filter goes with --all"));
            }
            if boot && !all {
                return Err(bad("start --boot goes with --all"));
            }
            if all {
                Command::StartAll {
                    filters: crate::filter::Filters::parse(
                        "start",
                        &filters,
                        crate::filter::PS_KEYS,
                    )?,
                    boot,
                }
            } else if names.is_empty() {
                return Err(bad("start needs at least one container name or ID"));
            } else if attach && names.len() > 1 {
                return Err(bad("start -a takes one container name or ID"));
            } else {
                Command::Start { names, attach }
            }
        }
        "kill" => {
            let (names, value) = names_and_option(&mut p, "kill", 's', &["signal"])?;
            let signal = match value {
                None => rustix::process::Signal::KILL,
                Some(v) => parse_signal("kill -s", &v)?,
            };
            Command::Kill { names, signal }
        }
        "logs" => {
            let (mut follow, mut tail, mut names) = (false, None, Vec::new());
            let (mut timestamps, mut since, mut until) = (false, None, None);
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Short('f') | Arg::Long("follow") => follow = true,
                    Arg::Short('n') | Arg::Long("tail") => {
                        tail = parse_tail(&string(p.value().map_err(lex)?)?)?
                    }
                    Arg::Short('t') | Arg::Long("timestamps") => timestamps = true,
                    Arg::Long("since") => since = Some(string(p.value().map_err(lex)?)?),
                    Arg::Long("until") => until = Some(string(p.value().map_err(lex)?)?),
                    Arg::Value(v) => names.push(string(v)?),
                    other => return Err(lex(other.unexpected())),
                }
            }
            if names.len() != 1 {
                return Err(bad("logs takes one container name or ID"));
            }
            for (flag, value) in [("--since", &since), ("--until", &until)] {
                if let Some(v) = value {
                    if crate::timefmt::parse_instant(v, (0, 0)).is_none() {
                        return Err(bad(format!("logs {flag} {v:?}: {NOT_A_TIME}")));
                    }
                }
            }
            Command::Logs {
                name: names.remove(0),
                follow,
                tail,
                timestamps,
                since,
                until,
            }
        }
        "port" => {
            let (_, mut args) = flags(&mut p, &[])?;
            if args.is_empty() || args.len() > 2 {
                return Err(bad(
                    "port takes a container name or ID, and optionally one of its ports (PORT[/PROTO])",
                ));
            }
            let private = args.get(1).map(|a| parse_private_port(a)).transpose()?;
            Command::Port {
                name: args.remove(0),
                private,
            }
        }
        "rename" => {
            let (_, mut names) = flags(&mut p, &[])?;
            if names.len() != 2 {
                return Err(bad("rename takes a container name or ID and its new name"));
            }
            let new = names.pop().unwrap_or_default();
            Command::Rename {
                name: names.remove(0),
                new,
            }
        }
        "update" => {
            let mut resources = crate::cgroup::Resources::default();
            let mut names = Vec::new();
            let mut restart = None;
            while let Some(arg) = p.next().map_err(lex)? {
                if let Some(flag) = resource_flag(&arg) {
                    set_resource(&mut resources, flag, &string(p.value().map_err(lex)?)?)?;
                    continue;
                }
                match arg {
                    Arg::Long("restart") => {
                        restart = Some(crate::restart::Policy::parse(&string(
                            p.value().map_err(lex)?,
                        )?)?)
                    }
                    Arg::Value(v) => names.push(string(v)?),
                    other => return Err(lex(other.unexpected())),
                }
            }
            if names.is_empty() {
                return Err(bad("update needs at least one container name or ID"));
            }
            if !resources.wanted() && restart.is_none() {
                return Err(bad(
                    "update needs a limit or policy to change (--memory, --memory-swap, --pids-limit, --cpus, --cpu-shares, --cpuset-cpus, --cpuset-mems, --restart)",
                ));
            }
            Command::Update {
                names,
                resources,
                restart,
            }
        }
        "export" => {
            let (mut names, output) = names_and_option(&mut p, "export", 'o', &["output"])?;
            if names.len() != 1 {
                return Err(bad("export takes one container name or ID"));
            }
            Command::Export {
                name: names.remove(0),
                output,
            }
        }
        "save" => {
            let (mut names, output) = names_and_option(&mut p, "save", 'o', &["output"])?;
            if names.len() != 1 {
                return Err(bad("save takes one image name"));
            }
            Command::Save {
                name: names.remove(0),
                output,
            }
        }
        "diff" => {
            let (_, mut names) = flags(&mut p, &[])?;
            if names.len() != 1 {
                return Err(bad("diff takes one container name or ID"));
            }
            Command::Diff {
                name: names.remove(0),
            }
        }
        "pause" | "unpause" => {
            let (_, names) = flags(&mut p, &[])?;
            if names.is_empty() {
                return Err(bad(format!(
                    "{sub} needs at least one container name or ID"
                )));
            }
            match sub.as_str() {
                "pause" => Command::Pause { names },
                _ => Command::Unpause { names },
            }
        }
        "events" => {
            let (mut since, mut until, mut filters, mut format) = (None, None, Vec::new(), None);
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Long("since") => since = Some(string(p.value().map_err(lex)?)?),
                    Arg::Long("until") => until = Some(string(p.value().map_err(lex)?)?),
                    Arg::Short('f') | Arg::Long("filter") => {
                        filters.push(string(p.value().map_err(lex)?)?)
                    }
                    Arg::Long("format") => format = Some(template(&mut p)?),
                    Arg::Value(v) => {
                        return Err(bad(format!(
                            "events takes no arguments ({:?}); choose with --filter",
                            v.to_string_lossy()
                        )))
                    }
                    other => return Err(lex(other.unexpected())),
                }
            }
            for (flag, value) in [("--since", &since), ("--until", &until)] {
                if let Some(v) = value {
                    if crate::timefmt::parse_instant(v, (0, 0)).is_none() {
                        return Err(bad(format!("events {flag} {v:?}: {NOT_A_TIME}")));
                    }
                }
            }
            crate::events::EventFilter::parse(&filters)?;
            Command::Events {
                since,
                until,
                filters,
                format,
            }
        }
        "top" => {
            let (_, mut names) = flags(&mut p, &[])?;
            if names.len() != 1 {
                return Err(bad("top takes one container name or ID"));
            }
            Command::Top {
                name: names.remove(0),
            }
        }
        "attach" => {
            let (_, mut files) = flags(&mut p, &[])?;
            if files.len() != 1 {
                return Err(bad("attach takes one argument: a btrfs image file"));
            }
            Command::Attach {
                file: files.remove(0),
            }
        }
        "detach" => {
            let (_, rest) = flags(&mut p, &[])?;
            if !rest.is_empty() {
                return Err(bad("detach takes no arguments"));
            }
            Command::Detach
        }
        "help" => Command::Help,
        other => return Err(bad(format!("unknown command {other:?}"))),
    };
    Ok(Cli {
        root,
        bridge,
        subnet,
        command,
    })
}

/// Parses container names and one option with a value (`-t 5`, `--time=5`;
/// the last one given wins) for `command`; at least one name is needed.
fn names_and_option(
    p: &mut Parser,
    command: &str,
    short: char,
    long: &[&str],
) -> Result<(Vec<String>, Option<String>)> {
    let (names, [value]) = names_and_options(p, command, [(short, long)])?;
    Ok((names, value))
}

/// [`names_and_option`] with `N` options, each a short letter and its long
/// names; their values in that order.
fn names_and_options<const N: usize>(
    p: &mut Parser,
    command: &str,
    options: [(char, &[&str]); N],
) -> Result<(Vec<String>, [Option<String>; N])> {
    let mut names = Vec::new();
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    while let Some(arg) = p.next().map_err(lex)? {
        let at = match &arg {
            Arg::Short(c) => options.iter().position(|(s, _)| s == c),
            Arg::Long(l) => options.iter().position(|(_, longs)| longs.contains(l)),
            Arg::Value(_) => None,
        };
        match (at, arg) {
            (Some(i), _) => values[i] = Some(string(p.value().map_err(lex)?)?),
            (None, Arg::Value(v)) => names.push(string(v)?),
            (None, other) => return Err(lex(other.unexpected())),
        }
    }
    if names.is_empty() {
        return Err(bad(format!(
            "{command} needs at least one container name or ID"
        )));
    }
    Ok((names, values))
}

/// `network`'s subcommand and its arguments.
fn parse_network_command(p: &mut Parser) -> Result<NetworkCommand> {
    const COMMANDS: &str = "create, ls, inspect, rm or prune";
    let sub = match p.next().map_err(lex)? {
        Some(Arg::Value(v)) => string(v)?,
        _ => return Err(bad(format!("network needs a command: {COMMANDS}"))),
    };
    Ok(match sub.as_str() {
        "create" => {
            let (mut names, mut subnet, mut labels) = (Vec::new(), None, Vec::new());
            let mut internal = false;
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Long("subnet") => subnet = Some(string(p.value().map_err(lex)?)?),
                    Arg::Long("internal") => internal = true,
                    Arg::Short('l') | Arg::Long("label") => {
                        labels.push(string(p.value().map_err(lex)?)?)
                    }
                    Arg::Short('d') | Arg::Long("driver") => {
                        let d = string(p.value().map_err(lex)?)?;
                        if d != "bridge" {
                            return Err(bad(format!(
                                "network create --driver {d}: tupper's networks are bridges"
                            )));
                        }
                    }
                    Arg::Value(v) => names.push(string(v)?),
                    other => return Err(lex(other.unexpected())),
                }
            }
            let [name] = <[String; 1]>::try_from(names)
                .map_err(|_| bad("network create needs one network name"))?;
            NetworkCommand::Create {
                name,
                subnet,
                labels,
                internal,
            }
        }
        "inspect" => NetworkCommand::Inspect(parse_inspect(p, "network")?),
        "rm" | "remove" => {
            let (_, names) = flags(p, &[])?;
            if names.is_empty() {
                return Err(bad("network rm needs at least one network name"));
            }
            NetworkCommand::Remove(names)
        }
        "ls" | "list" => NetworkCommand::List(parse_ls(p, "network")?),
        "prune" => {
            let (_, rest) = flags(p, &["force"])?;
            if !rest.is_empty() {
                return Err(bad("network prune takes no arguments"));
            }
            NetworkCommand::Prune
        }
        other => {
            return Err(bad(format!(
                "unknown network command {other:?}: {COMMANDS}"
            )))
        }
    })
}

/// `volume`'s subcommand and its arguments.
fn parse_volume_command(p: &mut Parser) -> Result<VolumeCommand> {
    let sub = match p.next().map_err(lex)? {
        Some(Arg::Value(v)) => string(v)?,
        _ => {
            return Err(bad(
                "volume needs a command: create, ls, inspect, rm or prune",
            ))
        }
    };
    let names = |p: &mut Parser, what: &str| -> Result<Vec<String>> {
        let (_, names) = flags(p, &[])?;
        if names.is_empty() {
            return Err(bad(format!("volume {what} needs at least one volume name")));
        }
        Ok(names)
    };
    Ok(match sub.as_str() {
        "create" => VolumeCommand::Create(names(p, "create")?),
        "inspect" => VolumeCommand::Inspect(parse_inspect(p, "volume")?),
        "rm" | "remove" => VolumeCommand::Remove(names(p, "rm")?),
        "ls" | "list" => VolumeCommand::List(parse_ls(p, "volume")?),
        "prune" => {
            let (set, rest) = flags(p, &["force"])?;
            let _ = set;
            if !rest.is_empty() {
                return Err(bad("volume prune takes no arguments"));
            }
            VolumeCommand::Prune
        }
        other => {
            return Err(bad(format!(
                "unknown volume command {other:?}: create, ls, inspect, rm or prune"
            )))
        }
    })
}

/// `stop -t`'s and `restart -t`'s value: whole seconds, -1 forever (docker's).
fn parse_stop_timeout(command: &str, value: Option<&str>) -> Result<Option<u64>> {
    match value {
        None => Ok(None),
        Some("-1") => Ok(Some(u64::MAX)),
        Some(v) => v.parse().map(Some).map_err(|_| {
            bad(format!(
                "{command} -t {v:?}: give whole seconds (-1: forever)"
            ))
        }),
    }
}

/// `logs --tail`'s value: a number of lines, or `all` (docker's default).
fn parse_tail(v: &str) -> Result<Option<u64>> {
    if v == "all" {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| bad(format!("invalid --tail {v:?}: a number of lines, or all")))
}

/// `port`'s second argument: `PORT` or `PORT/tcp|udp`.
fn parse_private_port(v: &str) -> Result<(u16, net::Protocol)> {
    let (port, proto) = match v.split_once('/') {
        None => (v, net::Protocol::Tcp),
        Some((p, "tcp")) => (p, net::Protocol::Tcp),
        Some((p, "udp")) => (p, net::Protocol::Udp),
        Some(_) => {
            return Err(bad(format!(
                "invalid port {v:?}: the protocol must be tcp or udp"
            )))
        }
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((p, proto)),
        _ => Err(bad(format!(
            "invalid port {v:?}: expected PORT[/PROTO], PORT from 1 to 65535"
        ))),
    }
}

/// Parses boolean flags (long names; `-` + first letter as the short form) and
/// positional values.
fn flags(p: &mut Parser, names: &[&str]) -> Result<(Vec<bool>, Vec<String>)> {
    let mut set = vec![false; names.len()];
    let mut values = Vec::new();
    while let Some(arg) = p.next().map_err(lex)? {
        let i = match &arg {
            Arg::Long(l) => names.iter().position(|n| n == l),
            Arg::Short(c) => names.iter().position(|n| n.starts_with(*c)),
            Arg::Value(_) => None,
        };
        match (i, arg) {
            (Some(i), _) => set[i] = true,
            (None, Arg::Value(v)) => values.push(string(v)?),
            (None, other) => return Err(lex(other.unexpected())),
        }
    }
    Ok((set, values))
}

/// `import`'s and `commit`'s `-f`/`--force` and `-c`/`--change`s, and their
/// arguments.
fn force_and_changes(p: &mut Parser) -> Result<(bool, Vec<String>, Vec<String>)> {
    let (mut force, mut changes, mut pos) = (false, Vec::new(), Vec::new());
    while let Some(arg) = p.next().map_err(lex)? {
        match arg {
            Arg::Long("force") | Arg::Short('f') => force = true,
            Arg::Long("change") | Arg::Short('c') => changes.push(string(p.value().map_err(lex)?)?),
            Arg::Value(v) => pos.push(string(v)?),
            other => return Err(lex(other.unexpected())),
        }
    }
    Ok((force, changes, pos))
}

/// The resource limit an option of `run` and `update` sets: its long name.
fn resource_flag(arg: &Arg<'_>) -> Option<&'static str> {
    Some(match arg {
        Arg::Short('m') | Arg::Long("memory") => "memory",
        Arg::Long("memory-swap") => "memory-swap",
        Arg::Long("memory-reservation") => "memory-reservation",
        Arg::Long("pids-limit") => "pids-limit",
        Arg::Long("cpus") => "cpus",
        Arg::Long("cpu-period") => "cpu-period",
        Arg::Long("cpu-quota") => "cpu-quota",
        Arg::Short('c') | Arg::Long("cpu-shares") => "cpu-shares",
        Arg::Long("cpuset-cpus") => "cpuset-cpus",
        Arg::Long("cpuset-mems") => "cpuset-mems",
        _ => return None,
    })
}

/// Sets resource limit `--flag` (see [`resource_flag`]) to `v`.
fn set_resource(r: &mut crate::cgroup::Resources, flag: &str, v: &str) -> Result<()> {
    match flag {
        // docker: 0 is no limit, as if not given.
        "memory" => r.memory = Some(crate::cgroup::parse_bytes("--memory", v)?).filter(|m| *m != 0),
        "memory-swap" => r.memory_swap = Some(crate::cgroup::parse_swap(v)?).filter(|s| *s != 0),
        "memory-reservation" => {
            r.memory_reservation =
                Some(crate::cgroup::parse_bytes("--memory-reservation", v)?).filter(|m| *m != 0)
        }
        "pids-limit" => {
            r.pids_limit = Some(v.parse().map_err(|_| {
                bad(format!(
                    "--pids-limit {v}: not a number of tasks (-1: no limit)"
                ))
            })?)
        }
        "cpus" => r.nano_cpus = Some(crate::cgroup::parse_cpus(v)?),
        // docker: 0 is not set.
        "cpu-period" => {
            let p: u64 = v
                .parse()
                .map_err(|_| bad(format!("--cpu-period {v}: not a number of microseconds")))?;
            r.cpu_period = (p != 0).then_some(p);
        }
        "cpu-quota" => {
            let q: i64 = v
                .parse()
                .map_err(|_| bad(format!("--cpu-quota {v}: not a number of microseconds")))?;
            r.cpu_quota = (q != 0).then_some(q);
        }
        "cpu-shares" => {
            let shares: u64 = v
                .parse()
                .map_err(|_| bad(format!("--cpu-shares {v}: not a number")))?;
            // docker: 0 is the default weight.
            r.cpu_shares = (shares != 0).then_some(shares);
        }
        "cpuset-cpus" => r.cpuset_cpus = Some(v.to_string()),
        _ => r.cpuset_mems = Some(v.to_string()),
    }
    Ok(())
}

/// Parses `run`'s options up to the image; everything after it is the command.
fn parse_run(p: &mut Parser) -> Result<RunArgs> {
    let mut a = RunArgs::default();
    loop {
        let arg = p.next().map_err(lex)?;
        if let Some(flag) = arg.as_ref().and_then(resource_flag) {
            set_resource(&mut a.resources, flag, &string(p.value().map_err(lex)?)?)?;
            continue;
        }
        match arg {
            Some(Arg::Long("rm")) => a.remove = true,
            Some(Arg::Long("replace")) => a.replace = true,
            Some(Arg::Short('d')) | Some(Arg::Long("detach")) => a.detach = true,
            Some(Arg::Long("name")) => a.name = Some(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("hostname")) => a.hostname = Some(string(p.value().map_err(lex)?)?),
            Some(Arg::Short('e')) | Some(Arg::Long("env")) => {
                a.env.push(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Short('w')) | Some(Arg::Long("workdir")) => {
                a.workdir = Some(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Short('u')) | Some(Arg::Long("user")) => {
                a.user = Some(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Long("group-add")) => a.group_add.push(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("env-file")) => a.env_files.push(string(p.value().map_err(lex)?)?),
            Some(Arg::Short('l')) | Some(Arg::Long("label")) => {
                a.labels.push(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Long("label-file")) => a.label_files.push(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("entrypoint")) => a.entrypoint = Some(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("net")) | Some(Arg::Long("network")) => {
                a.net = Some(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Long("network-alias")) | Some(Arg::Long("net-alias")) => {
                a.aliases.push(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Long("ip")) => a.ip = Some(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("mac-address")) => a.mac = Some(string(p.value().map_err(lex)?)?),
            Some(Arg::Short('p')) | Some(Arg::Long("publish")) => {
                a.publish.push(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Short('P')) | Some(Arg::Long("publish-all")) => a.publish_all = true,
            Some(Arg::Long("health-cmd")) => {
                let cmd = string(p.value().map_err(lex)?)?;
                if cmd.trim().is_empty() {
                    return Err(bad("--health-cmd needs a command".to_string()));
                }
                a.health.test = vec!["CMD-SHELL".into(), cmd];
            }
            Some(Arg::Long("no-healthcheck")) => a.health.test = vec!["NONE".into()],
            Some(Arg::Long("health-on-failure")) => {
                let v = string(p.value().map_err(lex)?)?;
                a.health_on_failure = crate::health::OnFailure::parse(&v)
                    .map_err(|why| bad(format!("invalid --health-on-failure {v:?}: {why}")))?;
            }
            Some(Arg::Long(
                flag @ ("health-interval"
                | "health-timeout"
                | "health-start-period"
                | "health-start-interval"),
            )) => {
                let flag = flag.to_string();
                let v = string(p.value().map_err(lex)?)?;
                let ms = crate::health::parse_duration(&v)
                    .map_err(|why| bad(format!("invalid --{flag} {v:?}: {why}")))?
                    .as_millis() as u64;
                match flag.as_str() {
                    "health-interval" => a.health.interval_ms = ms,
                    "health-timeout" => a.health.timeout_ms = ms,
                    "health-start-period" => a.health.start_period_ms = ms,
                    _ => a.health.start_interval_ms = ms,
                }
            }
            Some(Arg::Long("health-retries")) => {
                let v = string(p.value().map_err(lex)?)?;
                a.health.retries = v
                    .parse()
                    .map_err(|_| bad(format!("invalid --health-retries {v:?}: a count")))?;
            }
            Some(Arg::Long("expose")) => {
                let v = string(p.value().map_err(lex)?)?;
                let ports = crate::image_config::parse_exposed(&v)
                    .map_err(|why| bad(format!("invalid --expose {v:?}: {why}")))?;
                for port in ports {
                    if !a.expose.contains(&port) {
                        a.expose.push(port);
                    }
                }
            }
            Some(Arg::Short('t')) | Some(Arg::Long("tty")) => a.tty = true,
            Some(Arg::Long("privileged")) => a.privileged = true,
            Some(Arg::Long("userns")) => a.userns = Some(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("restart")) => {
                a.restart = crate::restart::Policy::parse(&string(p.value().map_err(lex)?)?)?
            }
            Some(Arg::Long("domainname")) => a.domainname = Some(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("cidfile")) => a.cidfile = Some(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("volumes-from")) => {
                a.volumes_from.push(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Long("storage-opt")) => {
                a.storage_size = parse_storage_opt(&string(p.value().map_err(lex)?)?)?;
            }
            Some(Arg::Long("log-driver")) => a.log_driver = Some(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("timeout")) => {
                let v = string(p.value().map_err(lex)?)?;
                a.timeout = match v.parse::<u64>() {
                    Ok(0) => None,
                    Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                    _ => return Err(bad(format!("--timeout {v:?}: a number of seconds"))),
                };
            }
            Some(Arg::Long("log-opt")) => a.log_opts.push(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("oom-score-adj")) => {
                let v = string(p.value().map_err(lex)?)?;
                a.oom_score_adj = Some(
                    v.parse()
                        .ok()
                        .filter(|n: &i32| (-1000..=1000).contains(n))
                        .ok_or_else(|| {
                            bad(format!(
                                "--oom-score-adj {v:?}: a whole number from -1000 to 1000"
                            ))
                        })?,
                )
            }
            Some(Arg::Long("ipc")) => {
                a.ipc = crate::ipc::Mode::parse(&string(p.value().map_err(lex)?)?)?
            }
            Some(Arg::Long("pid")) => {
                a.pid = crate::pidns::Mode::parse(&string(p.value().map_err(lex)?)?)?
            }
            Some(Arg::Long("uts")) => {
                a.host_uts = match string(p.value().map_err(lex)?)?.as_str() {
                    "host" => true,
                    "" | "private" => false,
                    other => {
                        return Err(bad(format!(
                            "--uts {other}: it is host (the host's hostname) or private"
                        )))
                    }
                }
            }
            Some(Arg::Long("cgroupns")) => {
                a.host_cgroupns = match string(p.value().map_err(lex)?)?.as_str() {
                    "host" => true,
                    "" | "private" => false,
                    other => {
                        return Err(bad(format!(
                        "--cgroupns {other}: it is host (the host's cgroup namespace) or private"
                    )))
                    }
                }
            }
            Some(Arg::Long("shm-size")) => {
                // docker's: 0 is the default, 64 MiB.
                let bytes =
                    crate::cgroup::parse_bytes("--shm-size", &string(p.value().map_err(lex)?)?)?;
                a.shm_size = Some(bytes).filter(|b| *b > 0);
            }
            Some(Arg::Short('v')) | Some(Arg::Long("volume")) => a.mounts.push(
                crate::volume::parse_volume(&string(p.value().map_err(lex)?)?).map_err(advise)?,
            ),
            Some(Arg::Long("tmpfs")) => a.mounts.push(
                crate::volume::parse_tmpfs(&string(p.value().map_err(lex)?)?).map_err(advise)?,
            ),
            Some(Arg::Long("mount")) => a.mounts.push(
                crate::volume::parse_mount(&string(p.value().map_err(lex)?)?).map_err(advise)?,
            ),
            Some(Arg::Long("read-only")) => a.read_only = true,
            Some(Arg::Long("init")) => a.init = true,
            Some(Arg::Long("ulimit")) => a.ulimits.push(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("sysctl")) => a.sysctls.push(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("device")) => a
                .devices
                .push(crate::device::parse(&string(p.value().map_err(lex)?)?)?),
            Some(Arg::Long("stop-signal")) => {
                a.stop_signal =
                    Some(parse_signal("--stop-signal", &string(p.value().map_err(lex)?)?)?.as_raw())
            }
            Some(Arg::Long("stop-timeout")) => {
                let v = string(p.value().map_err(lex)?)?;
                a.stop_timeout = Some(v.parse().ok().filter(|t| *t >= -1).ok_or_else(|| {
                    bad(format!(
                        "--stop-timeout {v:?}: give whole seconds (-1: wait forever)"
                    ))
                })?)
            }
            Some(Arg::Long("dns")) => {
                let v = string(p.value().map_err(lex)?)?;
                a.etc.dns.push(
                    v.parse()
                        .map_err(|_| bad(format!("invalid --dns {v}: not an IP address")))?,
                )
            }
            Some(Arg::Long("dns-search")) => {
                a.etc.dns_search.push(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Long("dns-option")) | Some(Arg::Long("dns-opt")) => {
                a.etc.dns_options.push(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Long("add-host")) => {
                a.etc
                    .add_hosts
                    .push(net::EtcOptions::parse_add_host(&string(
                        p.value().map_err(lex)?,
                    )?)?)
            }
            Some(Arg::Long("cgroup-parent")) => {
                a.resources.cgroup_parent = Some(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Long("memory-swappiness")) => {
                let v = string(p.value().map_err(lex)?)?;
                // docker: -1 is the default (the parent's).
                a.resources.memory_swappiness = match v.parse::<i64>() {
                    Ok(-1) => None,
                    Ok(n) if n >= 0 => Some(n as u64),
                    _ => {
                        return Err(bad(format!(
                            "--memory-swappiness {v}: from 0 to 100 (-1: the default)"
                        )))
                    }
                };
            }
            Some(Arg::Long("oom-kill-disable")) => a.resources.oom_kill_disable = true,
            Some(Arg::Long(
                flag @ ("device-read-bps" | "device-write-bps" | "device-read-iops"
                | "device-write-iops"),
            )) => {
                let kind = flag["device-".len()..].to_string();
                let v = string(p.value().map_err(lex)?)?;
                a.resources
                    .device_throttles
                    .push(crate::cgroup::Throttle::parse(&kind, &v)?);
            }
            // tupper always passes its stdin on: docker's `-i` is the default.
            Some(Arg::Short('i')) | Some(Arg::Long("interactive")) => {}
            Some(Arg::Long("cap-add")) => a.cap_add.push(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("cap-drop")) => a.cap_drop.push(string(p.value().map_err(lex)?)?),
            Some(Arg::Long("security-opt")) => {
                a.security_opt.push(string(p.value().map_err(lex)?)?)
            }
            Some(Arg::Value(v)) => {
                a.image = string(v)?;
                break;
            }
            Some(other) => return Err(lex(other.unexpected())),
            None => return Err(bad("run needs an image")),
        }
    }
    for arg in p.raw_args().map_err(lex)? {
        a.command.push(string(arg)?);
    }
    if a.replace && a.name.is_none() {
        return Err(bad(
            "--replace goes with --name: it replaces the container of that name",
        ));
    }
    Ok(a)
}

/// podman's `--replace`: the container that has the name `spec` gives the
/// new one is removed first (`rm -f`), once the new one's image is known to
/// exist; none of that name is fine.
fn replace_named(store: &Store, spec: &Spec) -> Result<()> {
    let Some(name) = spec.name.as_deref() else {
        return Ok(());
    };
    store.image(&spec.image)?;
    match store.find_container(name) {
        Ok(_) => store.remove_container(name, true),
        Err(_) => Ok(()),
    }
}

/// Turns `run`'s arguments into a [`Spec`]; `bridge` and `subnet` are the global
/// options, over `TUPPER_BRIDGE` and `TUPPER_SUBNET`.
pub fn spec(a: &RunArgs, bridge: Option<&str>, subnet: Option<&str>) -> Result<Spec> {
    // A --net value that is no mode is a user-defined network's name,
    // whose bridge and subnet the start reads (`Store::resolve_network`).
    let (mode, container, user_network) = match a.net.as_deref() {
        None => (net::Mode::Bridge, None, None),
        Some(m) => match net::Mode::parse_with_container(m) {
            Ok((mode, container)) => (mode, container, None),
            Err(_) if crate::names::validate("network name", m).is_ok() => {
                (net::Mode::Bridge, None, Some(m.to_string()))
            }
            Err(e) => return Err(e),
        },
    };
    let mut network = match user_network {
        Some(_) => net::Options::default(),
        None => net::Options::from_env_and_flags(mode, bridge, subnet)?,
    };
    network.container = container;
    if let Some(ip) = &a.ip {
        network.ip = Some(match user_network {
            Some(_) => ip
                .parse()
                .map_err(|_| Error::msg(format!("invalid --ip {ip:?}: not an IPv4 address")))?,
            None => net::parse_ip(ip, &network.subnet)?,
        });
    }
    network.network = user_network;
    network.aliases = a.aliases.clone();
    if let Some(mac) = &a.mac {
        network.mac = Some(net::parse_mac(mac)?);
    }
    network.publish = a
        .publish
        .iter()
        .map(|p| net::parse_publish(p))
        .collect::<Result<_>>()?;
    network.etc = a.etc.clone();
    network.validate()?;
    // A relative host path is the caller's: made absolute now (a detached
    // run resolves it in a process that changed to `/`).
    let mut mounts = a.mounts.clone();
    for m in &mut mounts {
        if let Some(source) = m.source.as_mut().filter(|s| !s.starts_with('/')) {
            let absolute = std::path::absolute(&*source)
                .map_err(|e| Error::os(format!("volume {source}"), e))?;
            *source = absolute.to_string_lossy().into_owned();
        }
    }
    if a.detach && a.tty {
        return Err(bad(
            "run -d with -t is not supported (a detached container has no terminal to copy)",
        ));
    }
    let (mut seccomp_unconfined, mut no_new_privileges) = (false, false);
    let mut seccomp_profile = None;
    for opt in &a.security_opt {
        match security_opt(opt)? {
            SecurityOpt::Seccomp(unconfined) => {
                seccomp_unconfined = unconfined;
                seccomp_profile = None;
            }
            SecurityOpt::SeccompProfile(text) => {
                seccomp_unconfined = false;
                seccomp_profile = Some(text);
            }
            SecurityOpt::NoNewPrivileges(on) => no_new_privileges = on,
        }
    }
    Ok(Spec {
        image: a.image.clone(),
        command: a.command.clone(),
        name: a.name.clone(),
        hostname: a.hostname.clone(),
        env: env_files(&a.env_files)?
            .into_iter()
            .chain(a.env.iter().cloned())
            .collect(),
        workdir: a.workdir.clone(),
        remove: a.remove,
        network,
        seccomp_unconfined,
        seccomp_profile,
        no_new_privileges,
        tty: a.tty,
        tty_size: match a.tty {
            true => crate::terminal::user_terminal_size(),
            false => None,
        },
        mounts,
        read_only: a.read_only,
        init: a.init,
        capabilities: if a.cap_add.is_empty() && a.cap_drop.is_empty() {
            crate::capabilities::DEFAULT
        } else {
            crate::capabilities::adjust(&a.cap_add, &a.cap_drop, crate::capabilities::available()?)?
        },
        user: a.user.clone(),
        group_add: a.group_add.clone(),
        resources: {
            if a.resources.wanted() {
                a.resources.validate()?;
            }
            a.resources.clone()
        },
        ulimits: match a.ulimits.is_empty() {
            true => Vec::new(),
            false => crate::ulimit::parse_all(&a.ulimits)?,
        },
        stop_signal: a.stop_signal,
        stop_timeout: a.stop_timeout,
        sysctls: match a.sysctls.is_empty() {
            true => Vec::new(),
            false => crate::sysctl::parse_all(&a.sysctls, !mode.new_netns())?,
        },
        devices: a.devices.clone(),
        privileged: a.privileged,
        labels: crate::filter::labels(&a.labels, &a.label_files)?,
        entrypoint: a.entrypoint.as_ref().map(|e| match e.is_empty() {
            true => Vec::new(),
            false => vec![e.clone()],
        }),
        // --userns, else TUPPER_USERNS (a host's default, as docker's
        // daemon-wide userns-remap or podman's containers.conf), else host.
        userns: {
            let from_env = std::env::var("TUPPER_USERNS").ok();
            let (given, what) = match (a.userns.as_deref(), from_env.as_deref()) {
                (Some(v), _) => (v, "--userns"),
                (None, Some(v)) => (v, "TUPPER_USERNS="),
                (None, None) => ("host", "--userns"),
            };
            match given {
                "host" | "" => false,
                "auto" => true,
                other => {
                    let sep = if what.ends_with('=') { "" } else { " " };
                    return Err(bad(format!(
                        "{what}{sep}{other}: it is auto (a user namespace of its own) or host"
                    )));
                }
            }
        },
        restart: a.restart,
        shm_size: a.shm_size,
        host_uts: a.host_uts,
        host_cgroupns: a.host_cgroupns,
        ipc: a.ipc.clone(),
        pid: a.pid.clone(),
        domainname: a.domainname.clone(),
        volumes_from: a.volumes_from.clone(),
        oom_score_adj: a.oom_score_adj,
        storage_size: a.storage_size,
        log: crate::logfile::LogConfig::parse(a.log_driver.as_deref(), &a.log_opts)?,
        stdio: None,
        timeout: a.timeout.map(std::time::Duration::from_secs),
        health_on_failure: a.health_on_failure,
        publish_all: a.publish_all,
        expose: a.expose.clone(),
        health: a.health.clone(),
    })
}

/// `--storage-opt`'s value: docker's `size=BYTES` (0: no limit), the one
/// option a btrfs store has.
fn parse_storage_opt(s: &str) -> Result<Option<u64>> {
    match s.split_once('=') {
        Some(("size", v)) => {
            Ok(Some(crate::cgroup::parse_bytes("--storage-opt size", v)?).filter(|b| *b > 0))
        }
        _ => Err(bad(format!(
            "--storage-opt {s:?}: the one storage option is size=BYTES (10g, 512m)"
        ))),
    }
}

/// The entries of `--env-file` files, as docker reads them: a line is
/// `KEY=VALUE` or `KEY` (tupper's own value), `#` lines and blank lines are
/// skipped; leading white space is dropped, the value is taken as is.
fn env_files(files: &[String]) -> Result<Vec<String>> {
    let mut entries = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::os(format!("read --env-file {file}"), e))?;
        // A UTF-8 byte order mark at the start is not part of the first key.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = line.split_once('=').map_or(line, |(k, _)| k);
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(bad(format!(
                    "--env-file {file}, line {}: {key:?} is not a variable name",
                    n + 1
                )));
            }
            entries.push(line.to_string());
        }
    }
    Ok(entries)
}

/// One `--security-opt`.
#[derive(Debug, PartialEq, Eq)]
enum SecurityOpt {
    /// `seccomp=unconfined` (true) or `seccomp=builtin` (false).
    Seccomp(bool),
    /// `seccomp=FILE`: the profile's text.
    SeccompProfile(String),
    /// `no-new-privileges[=true|false]`.
    NoNewPrivileges(bool),
}

/// Parses a `--security-opt` as docker writes it (`KEY=VALUE`, or the older
/// `KEY:VALUE`).
fn security_opt(opt: &str) -> Result<SecurityOpt> {
    let (key, value) = match opt.split_once(['=', ':']) {
        Some((k, v)) => (k, Some(v)),
        None => (opt, None),
    };
    match (key, value) {
        ("seccomp", Some("unconfined")) => Ok(SecurityOpt::Seccomp(true)),
        ("seccomp", Some("builtin")) => Ok(SecurityOpt::Seccomp(false)),
        ("seccomp", Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::os(format!("--security-opt seccomp={path}: read {path}"), e))?;
            // Checked now, to name the file (the start compiles it again,
            // for the container's capabilities).
            crate::seccomp_profile::compile(
                &text,
                crate::capabilities::DEFAULT,
                crate::seccomp_profile::running_kernel(),
            )
            .map_err(|why| Error::msg(format!("--security-opt seccomp={path}: {why}")))?;
            Ok(SecurityOpt::SeccompProfile(text))
        }
        // Go's strconv.ParseBool, which docker uses.
        ("no-new-privileges", None) => Ok(SecurityOpt::NoNewPrivileges(true)),
        ("no-new-privileges", Some("1" | "t" | "T" | "true" | "TRUE" | "True")) => {
            Ok(SecurityOpt::NoNewPrivileges(true))
        }
        ("no-new-privileges", Some("0" | "f" | "F" | "false" | "FALSE" | "False")) => {
            Ok(SecurityOpt::NoNewPrivileges(false))
        }
        _ => Err(bad(format!(
            "--security-opt {opt:?}: unsupported (tupper has seccomp=unconfined|builtin|FILE \
             and no-new-privileges[=true|false])"
        ))),
    }
}

/// The signals `kill -s` takes by name (with or without `SIG`), by number.
const SIGNALS: [(&str, i32); 31] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Signal `n` by its name, as docker's configurations write it: `SIGTERM`,
/// `SIGRTMIN+3`; the number when it has none.
pub(crate) fn signal_name(n: i32) -> String {
    match SIGNALS.iter().find(|(_, v)| *v == n) {
        Some((name, _)) => format!("SIG{name}"),
        None if (crate::launch::SIGRTMIN..=crate::launch::SIGRTMAX).contains(&n) => {
            format!("SIGRTMIN+{}", n - crate::launch::SIGRTMIN)
        }
        None => n.to_string(),
    }
}

/// Parses a signal as docker does: `TERM`, `SIGTERM`, `term`, `15`, or a
/// real-time one, `RTMIN+3`, `SIGRTMAX-1`, `RTMIN` (34 + n, 64 - n).
/// `flag` names the option in the error.
pub(crate) fn parse_signal(flag: &str, s: &str) -> Result<rustix::process::Signal> {
    use crate::launch::{SIGRTMAX, SIGRTMIN};
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let offset = |rest: &str, sign: char| -> Option<i32> {
        match rest {
            "" => Some(0),
            _ => rest
                .strip_prefix(sign)?
                .parse::<i32>()
                .ok()
                .filter(|n| *n >= 0),
        }
    };
    let number = match s.parse::<i32>() {
        Ok(n) => Some(n),
        Err(_) => match (name.strip_prefix("RTMIN"), name.strip_prefix("RTMAX")) {
            (Some(rest), _) => offset(rest, '+').map(|n| SIGRTMIN + n),
            (_, Some(rest)) => offset(rest, '-').map(|n| SIGRTMAX - n),
            _ => SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
        },
    };
    number
        .and_then(crate::launch::signal_from_raw)
        .ok_or_else(|| bad(format!("invalid {flag} {s:?}: not a signal")))
}

/// Runs tupper with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = parse(args, std::env::var_os("TUPPER_ROOT")).and_then(execute);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tupper: {e}");
            // The holder of a container whose log rotates: into the log.
            crate::logfile::flush();
            e.exit_code()
        }
    }
}

/// Carries out a parsed command line.
pub fn execute(mut cli: Cli) -> Result<i32> {
    // Absolute, for the processes tupper leaves behind: a detached run's
    // (which changes to `/`) and the background refill or cleaner.
    if let Ok(root) = std::path::absolute(&cli.root) {
        cli.root = root.into_os_string();
    }
    let store = || Store::open(&cli.root);
    let mut out = std::io::stdout().lock();
    let print = |out: &mut std::io::StdoutLock, s: String| {
        let _ = out.write_all(s.as_bytes());
    };
    match &cli.command {
        Command::Help => print(&mut out, format!("{USAGE}\n")),
        Command::Version => print(&mut out, format!("tupper {}\n", env!("CARGO_PKG_VERSION"))),
        Command::Import {
            name,
            source,
            force,
            changes,
        }
        | Command::Load {
            name,
            source,
            force,
            changes,
        } => {
            let store = store()?;
            let shown = std::cell::Cell::new(false);
            let mut show = progress_printer(name, &shown);
            let source = Source::from_arg(source);
            let result = match cli.command {
                Command::Load { .. } => store.load(name, &source, *force, changes, &mut show),
                _ => store.import_with(name, &source, *force, changes, &mut show),
            };
            if shown.get() {
                eprintln!();
            }
            let stats = result?;
            // The image's spare snapshots are made in the background; when
            // no process can be forked (a limit on tasks), the first runs
            // make theirs (see `background_is_optional`).
            let (root, image) = (cli.root.clone(), name.clone());
            background_is_optional(crate::launch::in_background(move || {
                if let Ok(store) = Store::open(&root) {
                    let _ = store.refill_netns_pool(crate::netns_pool::configured_size(), None);
                    let _ = store.refill_pool_now(&image, crate::pool::configured_size());
                }
            }));
            print(
                &mut out,
                format!("{name}: {} entries, {} bytes\n", stats.entries, stats.bytes),
            );
        }
        Command::Images {
            json,
            quiet,
            format,
        } => {
            let images = store()?.images()?;
            if *quiet {
                let names: String = images.iter().map(|i| format!("{}\n", i.name)).collect();
                print(&mut out, names);
            } else if let Some(t) = format {
                print(&mut out, render_each(t, &images));
            } else if *json {
                print(
                    &mut out,
                    serde_json::to_string_pretty(&images).unwrap_or_default() + "\n",
                );
            } else {
                let now = timefmt::now();
                let w = images
                    .iter()
                    .map(|i| i.name.len())
                    .max()
                    .unwrap_or(0)
                    .max(4);
                print(&mut out, format!("{:w$}  CREATED\n", "NAME"));
                for i in images {
                    let ago = timefmt::human_duration(now - i.created_unix);
                    print(&mut out, format!("{:w$}  {ago} ago\n", i.name));
                }
            }
        }
        Command::Commit {
            container,
            image,
            force,
            changes,
        } => {
            let store = store()?;
            store.commit_with(container, image, *force, changes)?;
            refill_pool_in_background(&cli.root, image);
        }
        Command::Rmi { names } => {
            let store = store()?;
            for n in names {
                store.remove_image(n)?;
                print(&mut out, format!("{n}\n"));
            }
        }
        Command::Ps {
            all,
            json,
            quiet,
            last,
            filters,
            format,
        } => {
            let store = store()?;
            let filters = resolved_filters(&store, filters)?;
            let mut list = store.containers(*all || last.is_some() || filters.want_all())?;
            list.retain(|r| filters.matches(r));
            if let Some(n) = last {
                list.truncate(*n);
            }
            if *quiet {
                let ids: String = list.iter().map(|r| format!("{}\n", r.id)).collect();
                print(&mut out, ids);
            } else if let Some(t) = format {
                print(&mut out, render_each(t, &list));
            } else if *json {
                print(
                    &mut out,
                    serde_json::to_string_pretty(&list).unwrap_or_default() + "\n",
                );
            } else {
                print(&mut out, ps_table(&list, timefmt::now()));
            }
        }
        Command::Inspect {
            names,
            format,
            kind,
        } => {
            let store = store()?;
            // A container, else (docker's `inspect`) an image of that name.
            let records = names
                .iter()
                .map(|n| match kind {
                    InspectKind::Container => store.find_container(n).map(Ok),
                    InspectKind::Image => store.image(n).map(Err),
                    // Neither: the container's error (`no such container`).
                    InspectKind::Any => store
                        .find_container(n)
                        .map(Ok)
                        .or_else(|e| store.image(n).map(Err).map_err(|_| e)),
                })
                .collect::<Result<Vec<_>>>()?;
            // With its health (which the record on disk does not hold), and
            // with a storage limit what it counts now.
            let shown: Vec<serde_json::Value> = records
                .iter()
                .map(|r| {
                    let r = match r {
                        Ok(r) => r,
                        Err(image) => return Ok(serde_json::to_value(image).unwrap_or_default()),
                    };
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    if let (Some(h), Some(map)) = (&r.health, v.as_object_mut()) {
                        map.insert("health".into(), serde_json::to_value(h).unwrap_or_default());
                    }
                    if let (Some(_), Some(map)) = (r.storage_size, v.as_object_mut()) {
                        if let Some(used) = store.storage_used(&r.id)? {
                            map.insert("storage_used".into(), used.into());
                        }
                    }
                    Ok(v)
                })
                .collect::<Result<_>>()?;
            print(&mut out, inspected(&shown, format.as_ref()));
        }
        Command::Cp { from, to } => {
            use crate::cp::Location;
            let store = store()?;
            match (Location::parse(from), Location::parse(to)) {
                (Location::Container { container, path }, Location::Host(h)) if h == "-" => {
                    if rustix::termios::isatty(rustix::stdio::stdout()) {
                        return Err(Error::msg(format!(
                            "cp {from} -: not writing an archive to a terminal"
                        ))
                        .with_advice("redirect stdout"));
                    }
                    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, &mut out);
                    store.copy_out_as_tar(&container, &path, &mut buffered)?;
                    buffered
                        .flush()
                        .map_err(|e| Error::os("write the archive to stdout", e))?;
                }
                (Location::Host(h), Location::Container { container, path }) if h == "-" => {
                    store.copy_in_from_tar(std::io::stdin().lock(), &container, &path)?;
                }
                (from, to) => {
                    store.copy(&from, &to)?;
                }
            }
        }
        Command::Stats {
            names,
            stream,
            json,
            format,
        } => {
            let store = store()?;
            // Without names, the containers running now; a named one that
            // is not running is an error, as in docker.
            let (names, named) = match names.is_empty() {
                true => (
                    store
                        .containers(false)?
                        .into_iter()
                        .map(|r| r.id)
                        .collect::<Vec<_>>(),
                    false,
                ),
                false => (names.clone(), true),
            };
            let sample_all = || -> Result<Vec<crate::stats::Sample>> {
                let mut list = Vec::new();
                for n in &names {
                    match store.sample(n) {
                        Ok(s) => list.push(s),
                        Err(e) if named => return Err(e),
                        Err(_) => {}
                    }
                }
                Ok(list)
            };
            let clear = *stream && !*json && rustix::termios::isatty(rustix::stdio::stdout());
            let mut before = sample_all()?;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                // Those that ended meanwhile are left out.
                let after: Vec<_> = names.iter().filter_map(|n| store.sample(n).ok()).collect();
                let list: Vec<crate::stats::Stats> = after
                    .into_iter()
                    .map(|a| {
                        let b = before.iter().find(|b| b.id == a.id);
                        crate::stats::stats(b, a)
                    })
                    .collect();
                let text = match json {
                    _ if format.is_some() => {
                        let values: Vec<serde_json::Value> =
                            list.iter().map(crate::stats::template_value).collect();
                        render_each(format.as_ref().unwrap_or_else(|| unreachable!()), &values)
                    }
                    true if *stream => serde_json::to_string(&list).unwrap_or_default() + "\n",
                    true => serde_json::to_string_pretty(&list).unwrap_or_default() + "\n",
                    false if clear => format!("\x1b[2J\x1b[H{}", crate::stats::table(&list)),
                    false => crate::stats::table(&list),
                };
                print(&mut out, text);
                let _ = out.flush();
                if !*stream || list.is_empty() {
                    break;
                }
                before = list.into_iter().map(|s| s.sample).collect();
            }
        }
        Command::Network(n) => {
            let store = store()?;
            match n {
                NetworkCommand::Create {
                    name,
                    subnet,
                    labels,
                    internal,
                } => {
                    let labels = crate::filter::labels(labels, &[])?;
                    let net = store.create_network(name, subnet.as_deref(), labels, *internal)?;
                    print(&mut out, format!("{}\n", net.id));
                }
                NetworkCommand::List(ls) => {
                    let list = store.networks()?;
                    let text = listing(
                        &list,
                        ls,
                        |n| &n.name,
                        |list| {
                            let rows: Vec<[String; 5]> = list
                                .iter()
                                .map(|n| {
                                    [
                                        n.id.clone(),
                                        n.name.clone(),
                                        n.subnet.clone(),
                                        n.bridge.clone(),
                                        n.containers.len().to_string(),
                                    ]
                                })
                                .collect();
                            columns(
                                ["NETWORK ID", "NAME", "SUBNET", "BRIDGE", "CONTAINERS"],
                                &rows,
                            )
                        },
                    );
                    print(&mut out, text);
                }
                NetworkCommand::Inspect(InspectArgs { names, format }) => {
                    let list = names
                        .iter()
                        .map(|n| store.network(n))
                        .collect::<Result<Vec<_>>>()?;
                    print(&mut out, inspected(&list, format.as_ref()));
                }
                NetworkCommand::Remove(names) => {
                    for n in names {
                        let name = store.remove_network(n)?;
                        print(&mut out, format!("{name}\n"));
                    }
                }
                NetworkCommand::Prune => {
                    let (removed, result) = store.prune_networks();
                    for n in removed {
                        print(&mut out, format!("{n}\n"));
                    }
                    result?;
                }
            }
        }
        Command::Volume(v) => {
            let store = store()?;
            match v {
                VolumeCommand::Create(names) => {
                    for n in names {
                        store.create_volume(n)?;
                        print(&mut out, format!("{n}\n"));
                    }
                }
                VolumeCommand::List(ls) => {
                    let list = store.volumes()?;
                    let text = listing(
                        &list,
                        ls,
                        |v| &v.name,
                        |list| {
                            let rows: Vec<[String; 3]> = list
                                .iter()
                                .map(|v| {
                                    [
                                        v.name.clone(),
                                        v.containers.len().to_string(),
                                        v.mountpoint.clone(),
                                    ]
                                })
                                .collect();
                            columns(["VOLUME NAME", "CONTAINERS", "MOUNTPOINT"], &rows)
                        },
                    );
                    print(&mut out, text);
                }
                VolumeCommand::Inspect(InspectArgs { names, format }) => {
                    let list = names
                        .iter()
                        .map(|n| store.volume(n))
                        .collect::<Result<Vec<_>>>()?;
                    print(&mut out, inspected(&list, format.as_ref()));
                }
                VolumeCommand::Remove(names) => {
                    for n in names {
                        store.remove_volume(n)?;
                        print(&mut out, format!("{n}\n"));
                    }
                }
                VolumeCommand::Prune => {
                    let (removed, result) = store.prune_volumes();
                    for n in removed {
                        print(&mut out, format!("{n}\n"));
                    }
                    result?;
                }
            }
        }
        Command::SystemPrune { volumes } => {
            let store = store()?;
            // As docker's: each kind under a heading, those removed below it.
            let mut first_error = None;
            let (containers, r) = store.prune_containers();
            first_error = first_error.or(r.err());
            let (networks, r) = store.prune_networks();
            first_error = first_error.or(r.err());
            let (volumes, r) = match volumes {
                true => store.prune_volumes(),
                false => (Vec::new(), Ok(())),
            };
            first_error = first_error.or(r.err());
            for (heading, names) in [
                ("Deleted Containers", containers),
                ("Deleted Networks", networks),
                ("Deleted Volumes", volumes),
            ] {
                if !names.is_empty() {
                    print(&mut out, format!("{heading}:\n{}\n\n", names.join("\n")));
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        Command::Prune { filters } => {
            let store = store()?;
            let (removed, result) = store.prune_containers_matching(filters);
            for id in removed {
                print(&mut out, format!("{id}\n"));
            }
            let _ = store.empty_trash();
            result?;
        }
        Command::Rm { names, force } => {
            let store = store()?;
            for n in names {
                store.remove_container(n, *force)?;
                print(&mut out, format!("{n}\n"));
            }
            // What an interrupted `rm` (or a crashed background process)
            // left in the trash goes too: it is dead data of removed
            // containers, and `rm` is where a user expects space back.
            let _ = store.empty_trash();
        }
        Command::Exec {
            name,
            tty,
            detach,
            env,
            workdir,
            user,
            privileged,
            command,
        } => {
            drop(out);
            let (store, detached) = match detach {
                false => (store()?, None),
                true => match Detached::fork(&cli.root, DetachedOutput::Null, None)? {
                    Ok((holder, store)) => (store, Some(holder)),
                    Err(foreground) => return foreground,
                },
            };
            let spec = crate::exec::ExecSpec {
                command: command.clone(),
                env: env.clone(),
                workdir: workdir.clone(),
                user: user.clone(),
                privileged: *privileged,
                tty: *tty,
                tty_size: match tty {
                    true => crate::terminal::user_terminal_size(),
                    false => None,
                },
                stdio: None,
            };
            let forwarder = match tty {
                true => Forwarder::with_window_changes()?,
                false => Forwarder::new()?,
            };
            let exec = match store.exec(name, &spec) {
                Ok(e) => e,
                Err(e) => {
                    if let Some(d) = detached {
                        d.failed(&e);
                    }
                    return Err(e);
                }
            };
            if let Some(d) = detached {
                // `exec -d` returns now; this process waits for the command.
                d.exec_started();
                return exec.wait();
            }
            let raw = match tty {
                true => Some(crate::terminal::RawMode::enter()?),
                false => None,
            };
            let code = exec.wait_forwarding(&forwarder);
            drop(raw);
            return code;
        }
        Command::Wait {
            names,
            conditions,
            interval,
        } => {
            let store = store()?;
            for n in names {
                let code = store.wait_for_condition(n, conditions, *interval)?;
                print(&mut out, format!("{code}\n"));
            }
        }
        Command::Create(args) => {
            let spec = spec(args, cli.bridge.as_deref(), cli.subnet.as_deref())?;
            if args.replace {
                replace_named(&store()?, &spec)?;
            }
            let mut cid = CidFile::create(args.cidfile.as_deref())?;
            let record = store()?.create(&spec)?;
            cid.write(&record.id)?;
            print(&mut out, format!("{}\n", record.id));
        }
        Command::Start {
            names,
            attach: true,
        } => {
            drop(out);
            let store = store()?;
            let tty = store.find_container(&names[0])?.tty;
            let forwarder = match tty {
                true => Forwarder::with_window_changes()?,
                false => Forwarder::new()?,
            };
            let size = match tty {
                true => crate::terminal::user_terminal_size(),
                false => None,
            };
            let container = store.start_again(&names[0], size)?;
            let raw = match tty {
                true => Some(crate::terminal::RawMode::enter()?),
                false => None,
            };
            let code = container.wait_forwarding(&forwarder);
            drop(raw);
            return code;
        }
        Command::Start {
            names,
            attach: false,
        } => {
            drop(out);
            for n in names {
                if let Some(code) = start_detached(&cli.root, n)? {
                    return Ok(code);
                }
            }
        }
        Command::StartAll { filters, boot } => {
            drop(out);
            let store = store()?;
            let filters = resolved_filters(&store, filters)?;
            let list = store.containers(true)?;
            let mut failed = None;
            let at_boot = |r: &crate::container::Record| {
                let policy = r.restart.as_deref().map(crate::restart::Policy::parse);
                let ran = r.status != crate::container::Status::Created;
                policy
                    .is_some_and(|p| p.is_ok_and(|p| p.starts_at_boot(ran, r.exit_code, r.stopped)))
            };
            for r in list.iter().filter(|r| {
                r.status != crate::container::Status::Running
                    && !r.restarting
                    && filters.matches(r)
                    && (!*boot || at_boot(r))
            }) {
                let shown = r.name.as_deref().unwrap_or(&r.id);
                match start_detached(&cli.root, shown) {
                    // The holder of that container, once it has ended.
                    Ok(Some(code)) => return Ok(code),
                    Ok(None) => {}
                    // The others are started all the same.
                    Err(e) => {
                        if let Some(earlier) = failed.replace(e) {
                            eprintln!("tupper: {earlier}");
                        }
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Command::Restart {
            names,
            timeout,
            signal,
        } => {
            drop(out);
            for n in names {
                let store = store()?;
                // Stopped even when not running: its policy may be about
                // to restart it (the stop cancels that).
                let timeout = timeout.map(std::time::Duration::from_secs);
                store.stop_container_with(n, timeout, *signal)?;
                if let Some(code) = start_detached(&cli.root, n)? {
                    return Ok(code);
                }
            }
        }
        Command::Stop {
            names,
            timeout,
            signal,
        } => {
            let store = store()?;
            for n in names {
                let timeout = timeout.map(std::time::Duration::from_secs);
                store.stop_container_with(n, timeout, *signal)?;
                print(&mut out, format!("{n}\n"));
            }
        }
        Command::Kill { names, signal } => {
            let store = store()?;
            for n in names {
                store.signal_container(n, *signal)?;
                print(&mut out, format!("{n}\n"));
            }
        }
        Command::Update {
            names,
            resources,
            restart,
        } => {
            let store = store()?;
            for n in names {
                if resources.wanted() {
                    store.update_container(n, resources)?;
                }
                if let Some(policy) = restart {
                    store.update_restart_policy(n, *policy)?;
                }
                print(&mut out, format!("{n}\n"));
            }
        }
        Command::Export { name, output } => {
            let store = store()?;
            let write = |w: &mut dyn Write| store.export_container(name, w).map(drop);
            archive_out(
                &format!("export {name}"),
                output.as_deref(),
                &mut out,
                &write,
            )?;
        }
        Command::Tag { source, name } => {
            let store = store()?;
            store.tag_image(source, name)?;
            refill_pool_in_background(&cli.root, name);
        }
        Command::Save { name, output } => {
            let store = store()?;
            let write = |w: &mut dyn Write| store.save_image(name, w);
            archive_out(&format!("save {name}"), output.as_deref(), &mut out, &write)?;
        }
        Command::Diff { name } => {
            let changes = store()?.diff_container(name)?;
            let mut text = Vec::new();
            for c in changes {
                text.push(c.kind.letter() as u8);
                text.push(b' ');
                text.extend_from_slice(&c.path);
                text.push(b'\n');
            }
            let _ = out.write_all(&text);
        }
        Command::Pause { names } => {
            let store = store()?;
            for n in names {
                store.pause_container(n)?;
                print(&mut out, format!("{n}\n"));
            }
        }
        Command::Unpause { names } => {
            let store = store()?;
            for n in names {
                store.unpause_container(n)?;
                print(&mut out, format!("{n}\n"));
            }
        }
        Command::Logs {
            name,
            follow,
            tail,
            timestamps,
            since,
            until,
        } => {
            let store = store()?;
            let (rec, log) = store.open_log(name)?;
            let records = if crate::logfile::LogConfig::has_times(rec.log.as_ref()) {
                let now = crate::timefmt::now_nanos();
                let instant = |v: &Option<String>| {
                    v.as_deref()
                        .and_then(|v| crate::timefmt::parse_instant(v, now))
                        .map(|(secs, nanos)| crate::timefmt::rfc3339_nano(secs, nanos))
                };
                Some(crate::logfile::Records::new(
                    *timestamps,
                    instant(since),
                    instant(until),
                ))
            } else {
                let asked = [
                    (*timestamps, "--timestamps"),
                    (since.is_some(), "--since"),
                    (until.is_some(), "--until"),
                ];
                if let Some((_, flag)) = asked.iter().find(|(given, _)| *given) {
                    return Err(Error::msg(format!(
                        "logs {flag} {name}: its log keeps no times (json-file and local keep the output as it was written)"
                    ))
                    .with_advice("run it with --log-driver k8s-file"));
                }
                None
            };
            let (first, from) = match tail {
                Some(n) => log.start_of_last_lines(*n).map_err(|e| {
                    Error::os(
                        format!("find the last {n} lines of the log of {}", rec.id),
                        e,
                    )
                })?,
                None => (0, 0),
            };
            drop(out);
            copy_log(&store, &rec.id, log, (first, from), *follow, records)?;
        }
        Command::Port { name, private } => {
            let rec = store()?.find_container(name)?;
            let ports = rec
                .network
                .map(|n| n.shown_ports().to_vec())
                .unwrap_or_default();
            let mut found = false;
            for p in &ports {
                let m = net::parse_publish(p)?;
                // Asked for without a host port, and not started since.
                if m.host_port == 0 {
                    continue;
                }
                match private {
                    None => print(
                        &mut out,
                        format!("{}/{} -> {}\n", m.container_port, m.protocol, m.host_side()),
                    ),
                    Some((port, proto)) if m.container_port == *port && m.protocol == *proto => {
                        found = true;
                        print(&mut out, format!("{}\n", m.host_side()));
                    }
                    Some(_) => {}
                }
            }
            if let (Some((port, proto)), false) = (private, found) {
                return Err(Error::msg(format!(
                    "port {name}: no public port {port}/{proto} published for it"
                )));
            }
        }
        Command::Rename { name, new } => store()?.rename_container(name, new)?,
        Command::Events {
            since,
            until,
            filters,
            format,
        } => {
            let store = store()?;
            let filter = crate::events::EventFilter::parse(filters)?;
            let now = crate::timefmt::now_nanos();
            let nanos = |v: &Option<String>| {
                v.as_deref()
                    .and_then(|v| crate::timefmt::parse_instant(v, now))
                    .map(|(s, n)| i128::from(s) * 1_000_000_000 + i128::from(n))
            };
            drop(out);
            let shown = EventsShown {
                since: nanos(since),
                until: nanos(until),
                filter,
                format: format.clone(),
            };
            print_events(&store, &shown)?;
        }
        Command::Top { name } => {
            let store = store()?;
            let list = store.container_processes(name)?;
            let names = crate::top::passwd_names(&store, name).unwrap_or_default();
            let name_of = |uid: u32| {
                names
                    .iter()
                    .find(|(u, _)| *u == uid)
                    .map(|(_, n)| n.clone())
            };
            print(
                &mut out,
                crate::top::table(&list, &name_of, timefmt::now(), crate::top::clock_ticks()),
            );
        }
        Command::Attach { file } => {
            let dev = crate::loopstore::attach(file.as_ref(), cli.root.as_ref())?;
            print(
                &mut out,
                format!(
                    "{file} on {} ({dev})\n",
                    std::path::Path::new(&cli.root).display()
                ),
            );
        }
        Command::Detach => crate::loopstore::detach(cli.root.as_ref())?,
        Command::Run(args) => {
            let spec = spec(args, cli.bridge.as_deref(), cli.subnet.as_deref())?;
            // No daemon: the process that holds a detached container
            // restarts it (docker's client leaves that to its daemon).
            if spec.restart.restarts() && !args.detach && !spec.remove {
                return Err(bad(format!(
                    "--restart {} without -d: a container is restarted by the process that holds it in the background",
                    spec.restart
                ))
                .with_advice("add -d, or `tupper create` it and `tupper start` it"));
            }
            if args.replace {
                replace_named(&store()?, &spec)?;
            }
            drop(out);
            let mut cid = CidFile::create(args.cidfile.as_deref())?;
            let (store, mut detached) = match args.detach {
                false => (store()?, None),
                true => match Detached::fork(
                    &cli.root,
                    DetachedOutput::NewLog(spec.log.as_ref()),
                    None,
                )? {
                    Ok((monitor, store)) => (store, Some(monitor)),
                    // The holder writes the ID; the file goes if it failed.
                    Err(foreground) => {
                        cid.keep_unless(foreground.is_err());
                        return foreground;
                    }
                },
            };
            let forwarder = match spec.tty {
                true => Forwarder::with_window_changes()?,
                false => Forwarder::new()?,
            };
            let mut container = match store.start(&spec) {
                Ok(c) => c,
                Err(e) => {
                    if let Some(d) = detached {
                        d.failed(&e);
                    }
                    return Err(e);
                }
            };
            cid.write(container.id())?;
            if let Some(d) = detached.take() {
                d.started(&store, container.id())?;
            }
            container.defer_destroy();
            let netns_size = match spec.network.mode.new_netns() {
                true => crate::netns_pool::configured_size(),
                false => 0,
            };
            let netns_pool = container.netns_spare_pool().cloned();
            let netns_low = store.netns_pool_low(netns_size, netns_pool.as_ref());
            // One background process (at most) per run, so that tupper's exit
            // never waits for it: while the command runs when the image's pool of
            // spare snapshots or the pool of network namespaces is below half,
            // else after a `--rm` command, which also destroys the snapshot that
            // went to the trash.
            let background = |empty_trash: bool, hold: Option<std::os::fd::OwnedFd>| {
                let (root, image) = (cli.root.clone(), spec.image.clone());
                let command = spec.command.first().cloned();
                let netns_pool = netns_pool.clone();
                crate::launch::in_background_holding(hold, move || {
                    if let Ok(store) = Store::open(&root) {
                        // Cheap (~1-3 ms a namespace): first.
                        let _ = store.refill_netns_pool(netns_size, netns_pool.as_ref());
                        if empty_trash {
                            store.empty_trash_between_starts();
                        }
                        let commands: Vec<&str> = command.as_deref().into_iter().collect();
                        let _ =
                            store.refill_pool(&image, crate::pool::configured_size(), &commands);
                    }
                })
            };
            let refiller = if container.pool_low() || netns_low {
                background_is_optional(background(false, None))
            } else {
                None
            };
            let mount_ns = match spec.remove {
                true => container.hold_mount_namespace(),
                false => None,
            };
            // Raw while the command runs; restored before tupper prints anything.
            let raw = match spec.tty {
                true => Some(crate::terminal::RawMode::enter()?),
                false => None,
            };
            // Detached, its restart policy's restarts too.
            let code = match args.detach {
                true => container.wait_restarting(&forwarder),
                false => container.wait_forwarding(&forwarder),
            };
            drop(raw);
            crate::logfile::flush();
            let code = code?;
            if let Some(pid) = refiller {
                crate::launch::reap(pid);
            }
            if spec.remove && background_is_optional(background(true, mount_ns)).is_none() {
                // No background process: the run destroys its snapshot
                // itself (~0.1 ms), so that runs under a limit on tasks do
                // not fill the trash.
                let _ = store.empty_trash();
            }
            return Ok(code);
        }
    }
    Ok(0)
}

/// `start` of container `name` without `-a`: a detached process runs its
/// command (as `run -d`'s does), its output appended to the container's
/// log; `name` is printed once the command runs, or at once when it runs
/// already (docker's). `Some(code)` in the detached process, once the
/// command ended: the caller exits with it.
fn start_detached(root: &std::ffi::OsStr, name: &str) -> Result<Option<i32>> {
    let store = Store::open(root)?;
    let rec = store.find_container(name)?;
    if store.is_running(&rec.id) {
        let _ = std::io::stdout().write_all(format!("{name}\n").as_bytes());
        return Ok(None);
    }
    if rec.tty {
        return Err(Error::msg(format!(
            "start {name}: it has a terminal (-t), which a detached container cannot have"
        ))
        .with_advice(format!("use `tupper start -a {name}`")));
    }
    drop(store);
    let output = DetachedOutput::LogOf(&rec.id, rec.log.as_ref());
    let (detached, store) = match Detached::fork(root, output, Some(name))? {
        Ok(holder) => holder,
        Err(foreground) => return foreground.map(|_| None),
    };
    let forwarder = Forwarder::new()?;
    let container = match store.start_again(&rec.id, None) {
        Ok(c) => c,
        Err(e) => {
            detached.failed(&e);
            return Err(e);
        }
    };
    detached.started(&store, container.id())?;
    let code = container.wait_restarting(&forwarder);
    crate::logfile::flush();
    code.map(Some)
}

/// `--cidfile FILE` (docker's): made when the command starts (it must not
/// exist: another container may be using it), then the container's ID is
/// written to it, without a newline, once it runs (`create`: once it is
/// made). Removed when that fails, as it is dropped unwritten.
#[derive(Default)]
struct CidFile {
    /// The file, absolute (a detached run's holder changes to `/`).
    path: Option<std::path::PathBuf>,
}

impl CidFile {
    /// Makes `path` (none: nothing to do).
    fn create(path: Option<&str>) -> Result<CidFile> {
        let Some(given) = path else {
            return Ok(CidFile::default());
        };
        let path =
            std::path::absolute(given).map_err(|e| Error::os(format!("--cidfile {given}"), e))?;
        rustix::fs::open(
            &path,
            rustix::fs::OFlags::WRONLY
                | rustix::fs::OFlags::CREATE
                | rustix::fs::OFlags::EXCL
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o644),
        )
        .map_err(|e| match e {
            rustix::io::Errno::EXIST => Error::msg(format!(
                "--cidfile {given}: it exists (a container may be using it)"
            ))
            .with_advice(format!("remove {given} first")),
            e => Error::os(format!("create --cidfile {given}"), e),
        })?;
        Ok(CidFile { path: Some(path) })
    }

    /// Writes `id` to it; it then stays.
    fn write(&mut self, id: &str) -> Result<()> {
        let Some(path) = self.path.take() else {
            return Ok(());
        };
        let written = rustix::fs::open(
            &path,
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .and_then(|fd| crate::fsutil::write_all(fd.as_fd(), id.as_bytes()));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(Error::os(
                format!("write the ID to --cidfile {}", path.display()),
                e,
            ));
        }
        Ok(())
    }

    /// The caller of a detached run: another process writes the file, so
    /// it stays, unless that process failed.
    fn keep_unless(&mut self, failed: bool) {
        if !failed {
            self.path = None;
        }
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The pid of a background process (pools, trash), or `None` when it could
/// not be forked: its work is never needed for the command at hand (the
/// pools refill at a later run; a `--rm` run then empties the trash
/// itself), so a limit on tasks (`TasksMax=`, `pids.max`) makes tupper
/// slower, not fail a command that did its job.
fn background_is_optional(forked: Result<i32>) -> Option<i32> {
    forked.ok()
}

/// The process that holds a detached container (`run -d`) or command
/// (`exec -d`), and what it tells the `tupper` that made it.
struct Detached {
    /// The write end of the status pipe: the ID (`started` for an exec),
    /// or the exit code and error.
    status: std::os::fd::OwnedFd,
    /// The container's log (stdout and stderr), nameless until it starts;
    /// `None` for an exec, whose output goes to `/dev/null` (docker's).
    log: Option<std::os::fd::OwnedFd>,
    /// Whether the log is a new one, to be named once the container runs.
    new_log: bool,
}

/// Where the output of a detached process goes.
#[derive(Clone, Copy)]
enum DetachedOutput<'a> {
    /// `/dev/null` (`exec -d`).
    Null,
    /// A new log, named once the container runs (`run -d`), kept as the
    /// container's `--log-driver` and `--log-opt` say.
    NewLog(Option<&'a crate::logfile::LogConfig>),
    /// The log of container `id`, appended to; a new one if it has none
    /// (`start`).
    LogOf(&'a str, Option<&'a crate::logfile::LogConfig>),
}

/// What a detached exec's holder says once the command runs.
const EXEC_STARTED: &str = "started";

impl Detached {
    /// Forks: in the process that goes on to run the container, `Ok` with
    /// its own store (none of the caller's fds, a session of its own, stdin
    /// `/dev/null`, stdout and stderr the log, working directory `/`); in
    /// the caller, `Err(result)`, with which its `run -d` ends: the ID
    /// printed once the command runs, or the error of the start.
    /// `shown` is what the caller prints once the command runs: the ID
    /// when `None`.
    #[allow(clippy::type_complexity)]
    fn fork(
        root: &std::ffi::OsStr,
        output: DetachedOutput<'_>,
        shown: Option<&str>,
    ) -> Result<std::result::Result<(Detached, Store), Result<i32>>> {
        use rustix::pipe::{pipe_with, PipeFlags};
        let (read, write) = pipe_with(PipeFlags::CLOEXEC)
            .map_err(|e| Error::os("create the status pipe of a detached run", e))?;
        let Some(_pid) = crate::launch::fork_detached()? else {
            drop(read);
            // Whatever the caller has open (a pipe it reads to its end, a
            // lock) is not held for the container's life.
            crate::launch::close_fds_but(write.as_fd());
            let status = write;
            let fail = |e: Error| -> ! {
                report_failure(status.as_fd(), &e);
                std::process::exit(e.exit_code())
            };
            let store = Store::open(root).unwrap_or_else(|e| fail(e));
            let config = match output {
                DetachedOutput::Null => None,
                DetachedOutput::NewLog(config) | DetachedOutput::LogOf(_, config) => config,
            };
            let (log, new_log) = match output {
                DetachedOutput::Null => (None, false),
                // `--log-driver none`: as `exec -d`'s.
                _ if crate::logfile::LogConfig::is_none(config) => (None, false),
                DetachedOutput::NewLog(_) => {
                    (Some(store.new_log().unwrap_or_else(|e| fail(e))), true)
                }
                DetachedOutput::LogOf(id, _) => {
                    match store.append_log(id).unwrap_or_else(|e| fail(e)) {
                        Some(log) => (Some(log), false),
                        None => (Some(store.new_log().unwrap_or_else(|e| fail(e))), true),
                    }
                }
            };
            let _ = rustix::process::setsid();
            let _ = rustix::process::chdir(c"/");
            let redirect = || -> rustix::io::Result<()> {
                let null = rustix::fs::open(
                    c"/dev/null",
                    rustix::fs::OFlags::RDWR,
                    rustix::fs::Mode::empty(),
                )?;
                rustix::stdio::dup2_stdin(&null)?;
                let out = log.as_ref().map_or(null.as_fd(), |l| l.as_fd());
                rustix::stdio::dup2_stdout(out)?;
                rustix::stdio::dup2_stderr(out)
            };
            if let Err(e) = redirect() {
                fail(Error::os("redirect the standard fds of a detached run", e));
            }
            // Rotated, or with times: through pipes that this process copies.
            if let (Some(log), Some(config)) = (&log, config.filter(|c| c.is_piped())) {
                let copy = log
                    .try_clone()
                    .map_err(|e| Error::os("duplicate the log's fd", e))
                    .and_then(|copy| {
                        crate::logfile::pipe_output(store.records.as_fd(), copy, config)
                    });
                if let Err(e) = copy {
                    fail(e);
                }
            }
            return Ok(Ok((
                Detached {
                    status,
                    log,
                    new_log,
                },
                store,
            )));
        };
        drop(write);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match rustix::io::read(&read, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::os("read the status of a detached run", e)),
            }
        }
        let text = String::from_utf8_lossy(&got);
        let text = text.trim_end();
        Ok(Err(match text.split_once(' ') {
            None if crate::names::is_id(text) => {
                let shown = shown.unwrap_or(text);
                let _ = std::io::stdout().write_all(format!("{shown}\n").as_bytes());
                Ok(0)
            }
            None if text == EXEC_STARTED => Ok(0),
            Some((code, message)) => {
                let kind = match code {
                    "126" => crate::error::Kind::CannotInvoke,
                    "127" => crate::error::Kind::NotFound,
                    _ => crate::error::Kind::Runtime,
                };
                Err(Error::msg(message).with_kind(kind))
            }
            None => Err(Error::msg(
                "the detached process ended before its command started",
            )),
        }))
    }

    /// The container runs: its log gets its name, and `run -d` prints `id`
    /// (if it is still there: a `run -d` killed meanwhile leaves the
    /// container running, as docker's client does).
    fn started(self, store: &Store, id: &str) -> Result<()> {
        if let Some(log) = self.log.as_ref().filter(|_| self.new_log) {
            store.keep_log(log.as_fd(), id)?;
        }
        // The log has its name: it may rotate. Signals are blocked by now
        // (the forwarder's thread takes them), and the command's output
        // waited in the pipe.
        crate::logfile::start_pump(id);
        let _ = crate::fsutil::write_all(self.status.as_fd(), format!("{id}\n").as_bytes());
        Ok(())
    }

    /// The exec'd command runs: `exec -d` returns, printing nothing.
    fn exec_started(self) {
        let _ =
            crate::fsutil::write_all(self.status.as_fd(), format!("{EXEC_STARTED}\n").as_bytes());
    }

    /// The container did not start: `run -d` prints `e` and exits with its code.
    fn failed(self, e: &Error) {
        report_failure(self.status.as_fd(), e);
    }
}

/// Writes a failed detached start to its status pipe: the exit code, then
/// the error, on one line (what [`Detached::fork`]'s caller reads).
fn report_failure(status: std::os::fd::BorrowedFd<'_>, e: &Error) {
    let _ = crate::fsutil::write_all(status, format!("{} {e}\n", e.exit_code()).as_bytes());
}

/// `filters` with the containers of its `since=` and `before=` found in
/// `store` (`ps`, `start --all`).
fn resolved_filters(
    store: &Store,
    filters: &crate::filter::Filters,
) -> Result<crate::filter::Filters> {
    let mut resolved = filters.clone();
    resolved.resolve(&|name| {
        store
            .find_container(name)
            .map(|r| (r.created_unix, r.created_nsec))
    })?;
    Ok(resolved)
}

/// What `--since` and `--until` take, for their error.
const NOT_A_TIME: &str = "not a time (2026-12-01T15:04:05Z, 2026-12-01, seconds since 1970, or a duration before now: 10m, 1h30m)";

/// `--format TEMPLATE`'s value, parsed.
fn template(p: &mut lexopt::Parser) -> Result<crate::template::Template> {
    crate::template::Template::parse(&string(p.value().map_err(lex)?)?)
}

/// What an `ls` of named things prints (`volume ls`, `network ls`):
/// each through `--format` (unless `-q`), else the list as JSON with
/// `--json`, else the names with `-q`, else `table`'s columns.
fn listing<T: serde::Serialize>(
    list: &[T],
    ls: &ListArgs,
    name: impl Fn(&T) -> &str,
    table: impl FnOnce(&[T]) -> String,
) -> String {
    match &ls.format {
        Some(t) if !ls.quiet => render_each(t, list),
        _ if ls.json => serde_json::to_string_pretty(list).unwrap_or_default() + "\n",
        _ if ls.quiet => list.iter().map(|i| format!("{}\n", name(i))).collect(),
        _ => table(list),
    }
}

/// What an `inspect` prints: each item through `-f`, else them all as a
/// JSON array.
fn inspected<T: serde::Serialize>(
    list: &[T],
    format: Option<&crate::template::Template>,
) -> String {
    match format {
        Some(t) => render_each(t, list),
        None => serde_json::to_string_pretty(list).unwrap_or_default() + "\n",
    }
}

/// Each of `items` (as `--json` prints it) through template `t`.
fn render_each<T: serde::Serialize>(t: &crate::template::Template, items: &[T]) -> String {
    items
        .iter()
        .map(|i| t.render(&serde_json::to_value(i).unwrap_or_default()))
        .collect()
}

/// Which events `tupper events` prints, and how.
struct EventsShown {
    /// From then on (nanoseconds since the epoch); `None`: only new ones.
    since: Option<i128>,
    /// Up to then; `None`: on until stdout closes or a signal ends it.
    until: Option<i128>,
    filter: crate::events::EventFilter,
    format: Option<crate::template::Template>,
}

/// `tupper events`: the stored events chosen by `shown` (with `--since`),
/// then the new ones as they are written, until `--until` (docker's). The
/// log's rotation is followed by inode.
fn print_events(store: &Store, shown: &EventsShown) -> Result<()> {
    use crate::events::Event;
    let passes = |e: &Event| {
        shown.since.map_or(true, |s| e.time_nano >= s)
            && shown.until.map_or(true, |u| e.time_nano <= u)
            && shown.filter.matches(e)
    };
    let print = |e: &Event| -> Result<bool> {
        if !passes(e) {
            return Ok(true);
        }
        let text = match &shown.format {
            Some(t) => t.render(&serde_json::to_value(e).unwrap_or_default()),
            None => e.line(),
        };
        match crate::fsutil::write_all(rustix::stdio::stdout(), text.as_bytes()) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::PIPE) => Ok(false),
            Err(e) => Err(Error::os("write the events to stdout", e)),
        }
    };
    let read_err = |e| Error::os("read state/events.log", e);
    // What a file holds from where it is: whole lines, the rest kept.
    let mut carry = Vec::new();
    let read_on = |fd: &std::os::fd::OwnedFd, carry: &mut Vec<u8>| -> Result<bool> {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match rustix::io::read(fd, &mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(read_err(e)),
            };
            carry.extend_from_slice(&buf[..n]);
            let Some(end) = carry.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            let lines: Vec<u8> = carry.drain(..=end).collect();
            for e in crate::events::parse_lines(&lines) {
                if !print(&e)? {
                    return Ok(false);
                }
            }
        }
    };
    let mut current = store.current_event_file();
    if shown.since.is_some() {
        let files = store.event_files()?;
        // The current file is read on below; the older one whole.
        let same_as_current = |fd: &std::os::fd::OwnedFd| {
            let ino = rustix::fs::fstat(fd).map(|st| st.st_ino).ok();
            current.as_ref().is_some_and(|(_, c)| Some(*c) == ino)
        };
        for f in files.iter().filter(|f| !same_as_current(f)) {
            if !read_on(f, &mut carry)? {
                return Ok(());
            }
            carry.clear();
        }
    } else if let Some((fd, _)) = &current {
        rustix::fs::seek(fd, rustix::fs::SeekFrom::End(0)).map_err(read_err)?;
    }
    let ended = || {
        let (s, n) = crate::timefmt::now_nanos();
        shown
            .until
            .is_some_and(|u| i128::from(s) * 1_000_000_000 + i128::from(n) > u)
    };
    loop {
        let done = ended();
        if let Some((fd, _)) = &current {
            if !read_on(fd, &mut carry)? {
                return Ok(());
            }
        }
        if done {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        // Started anew (rotated, or made): the rest of the old file, then
        // the new one from its start.
        if let Some((fd, ino)) = store.current_event_file() {
            if current.as_ref().map_or(true, |(_, c)| *c != ino) {
                if let Some((old, _)) = &current {
                    if !read_on(old, &mut carry)? {
                        return Ok(());
                    }
                }
                carry.clear();
                current = Some((fd, ino));
            }
        }
    }
}

/// Copies a container's log to stdout, from file `first` of its files at
/// offset `from`; with `follow`, until the container's run has ended
/// (`logs -f`), reading on in the new file when the log rotates. A
/// `k8s-file` log is read as `records`: the text of each, stderr's to
/// stderr.
fn copy_log(
    store: &Store,
    id: &str,
    log: crate::logfile::Files,
    (first, from): (usize, u64),
    follow: bool,
    records: Option<crate::logfile::Records>,
) -> Result<()> {
    let mut files = log.files;
    let Some(mut current) = files.pop() else {
        return Ok(());
    };
    let mut copier = LogCopier {
        id,
        buf: vec![0u8; 1 << 16],
        records,
    };
    let seek = |fd: &std::os::fd::OwnedFd, to: u64| {
        rustix::fs::seek(fd, rustix::fs::SeekFrom::Start(to))
            .map_err(|e| Error::os(format!("seek in the log of {id}"), e))
    };
    for (i, f) in files.iter().enumerate().skip(first) {
        if i == first {
            seek(f, from)?;
        }
        if !copier.copy_rest(f)? {
            return Ok(());
        }
    }
    if first == files.len() {
        seek(&current, from)?;
    }
    loop {
        if !copier.copy_rest(&current)? || !follow {
            return Ok(());
        }
        if !store.is_running(id) {
            // What it wrote before it ended is in the file by now: one more
            // read to its end, then done.
            copier.copy_rest(&current)?;
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        // Rotated meanwhile: the rest of this file, those that came after
        // it, then the new one.
        let dir = store.records.as_fd();
        let Ok(now) = rustix::fs::statat(
            dir,
            format!("{id}.log").as_str(),
            rustix::fs::AtFlags::empty(),
        ) else {
            continue;
        };
        let ours = rustix::fs::fstat(&current)
            .map_err(|e| Error::os(format!("read the log of {id}"), e))?;
        if now.st_ino == ours.st_ino {
            // Emptied (`max-file=1`): from its start again.
            let at = rustix::fs::seek(&current, rustix::fs::SeekFrom::Current(0)).unwrap_or(0);
            if (ours.st_size.max(0) as u64) < at {
                seek(&current, 0)?;
            }
            continue;
        }
        if !copier.copy_rest(&current)? {
            return Ok(());
        }
        let newer = crate::logfile::files_after(dir, id, ours.st_ino);
        for f in &newer {
            if !copier.copy_rest(f)? {
                return Ok(());
            }
        }
        match crate::logfile::Files::open(dir, id) {
            Ok(Some(mut reopened)) => current = reopened.files.pop().expect("the current file"),
            _ => return Ok(()),
        }
    }
}

/// Copies log files to stdout ([`copy_log`]).
struct LogCopier<'a> {
    id: &'a str,
    buf: Vec<u8>,
    /// How a `k8s-file` log is read; `None`: as it is.
    records: Option<crate::logfile::Records>,
}

impl LogCopier<'_> {
    /// Copies `f` from where it is to its end; false when nobody reads any
    /// more (`| head`).
    fn copy_rest(&mut self, f: &std::os::fd::OwnedFd) -> Result<bool> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            let n = match rustix::io::read(f, &mut self.buf) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::os(format!("read the log of {}", self.id), e)),
            };
            let (text, errors) = match self.records.as_mut() {
                Some(records) => {
                    out.clear();
                    err.clear();
                    records.feed(&self.buf[..n], &mut out, &mut err);
                    (&out[..], &err[..])
                }
                None => (&self.buf[..n], &[][..]),
            };
            for (fd, bytes, what) in [
                (rustix::stdio::stdout(), text, "stdout"),
                (rustix::stdio::stderr(), errors, "stderr"),
            ] {
                match crate::fsutil::write_all(fd, bytes) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::PIPE) => return Ok(false),
                    Err(e) => return Err(Error::os(format!("write the log to {what}"), e)),
                }
            }
        }
    }
}

/// `export -o FILE`: the archive is written next to `file` under a
/// temporary name and renamed onto it once complete, so that a failed
/// export leaves no partial archive (nor a changed `file`).
/// Makes the spare snapshots of a new image (`commit`, `tag`) in the
/// background, as an import's; when no process can be forked (a limit on
/// tasks), the first runs make theirs (see `background_is_optional`).
fn refill_pool_in_background(root: &std::ffi::OsStr, image: &str) {
    let (root, image) = (root.to_os_string(), image.to_string());
    background_is_optional(crate::launch::in_background(move || {
        if let Ok(store) = Store::open(&root) {
            let _ = store.refill_pool_now(&image, crate::pool::configured_size());
        }
    }));
}

/// Writes an archive (`export`, `save`: `op` names the command) with
/// `write`: to `file` (`-o`; see [`archive_to_file`]), else to stdout,
/// unless it is a terminal.
fn archive_out(
    op: &str,
    file: Option<&str>,
    out: &mut std::io::StdoutLock<'_>,
    write: &dyn Fn(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    if let Some(file) = file {
        return archive_to_file(op, file, write);
    }
    if rustix::termios::isatty(rustix::stdio::stdout()) {
        return Err(
            Error::msg(format!("{op}: not writing an archive to a terminal"))
                .with_advice("use -o FILE, or redirect stdout"),
        );
    }
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, out);
    write(&mut buffered)?;
    buffered
        .flush()
        .map_err(|e| Error::os("write the archive to stdout", e))
}

/// Writes an archive with `write` to `file`: to a temporary file beside it,
/// synced, then renamed over it (removed on failure).
fn archive_to_file(
    op: &str,
    file: &str,
    write: &dyn Fn(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let path = std::path::Path::new(file);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let base = path
        .file_name()
        .ok_or_else(|| Error::msg(format!("{op} -o {file}: not a file name")))?;
    let temp = dir.join(format!(
        ".{}.tupper-{}",
        base.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| Error::os(format!("create {}", temp.display()), e))?;
        let mut buffered = std::io::BufWriter::with_capacity(1 << 16, f);
        write(&mut buffered)?;
        let f = buffered
            .into_inner()
            .map_err(|e| Error::os(format!("write {}", temp.display()), e.into_error()))?;
        f.sync_all()
            .map_err(|e| Error::os(format!("write {}", temp.display()), e))?;
        std::fs::rename(&temp, path)
            .map_err(|e| Error::os(format!("rename {} -> {file}", temp.display()), e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// `ps`'s table, in docker's columns.
pub fn ps_table(list: &[crate::container::Record], now: i64) -> String {
    use crate::container::Status;
    let rows: Vec<[String; 8]> = list
        .iter()
        .map(|r| {
            let status = match r.status {
                Status::Running => format!(
                    "Up {}{}",
                    timefmt::human_duration(now - r.started_unix.unwrap_or(r.created_unix)),
                    match (r.paused, r.health.as_ref().map(|h| h.status.as_str())) {
                        (true, _) => " (Paused)",
                        (false, Some("starting")) => " (health: starting)",
                        (false, Some("healthy")) => " (healthy)",
                        (false, Some("unhealthy")) => " (unhealthy)",
                        _ => "",
                    }
                ),
                Status::Exited => format!(
                    "{} ({}) {} ago",
                    match r.restarting {
                        true => "Restarting",
                        false => "Exited",
                    },
                    r.exit_code.unwrap_or(-1),
                    timefmt::human_duration(now - r.finished_unix.unwrap_or(now))
                ),
                Status::Dead if r.pid.is_some() => {
                    "Dead (tupper was killed, its command still runs; `tupper rm -f` it)"
                        .to_string()
                }
                Status::Dead => "Dead (tupper was killed; `tupper rm` it)".to_string(),
                Status::Created => "Created".to_string(),
            };
            let mut cmd = r.command.join(" ");
            if cmd.is_empty() {
                cmd = crate::plan::DEFAULT_COMMAND.into();
            }
            if cmd.len() > 30 {
                let cut = (0..=27)
                    .rev()
                    .find(|&i| cmd.is_char_boundary(i))
                    .unwrap_or(0);
                cmd = format!("{}...", &cmd[..cut]);
            }
            [
                r.id.clone(),
                r.name.clone().unwrap_or_default(),
                r.image.clone(),
                format!("{cmd:?}"),
                format!("{} ago", timefmt::human_duration(now - r.created_unix)),
                status,
                // An ended container's address may belong to another one now.
                r.network
                    .as_ref()
                    .and_then(|n| n.address.clone())
                    .filter(|_| r.status == Status::Running)
                    .unwrap_or_else(|| "-".to_string()),
                // docker's PORTS, for a running container only.
                r.network
                    .as_ref()
                    .filter(|_| r.status == Status::Running)
                    .map(|n| {
                        n.shown_ports()
                            .iter()
                            .filter_map(|p| net::parse_publish(p).ok())
                            .map(|m| {
                                format!("{}->{}/{}", m.host_side(), m.container_port, m.protocol)
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let head = [
        "CONTAINER ID",
        "NAME",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "ADDRESS",
        "PORTS",
    ];
    columns(head, &rows)
}

/// A table as docker prints one: a heading and rows, columns left-aligned
/// three spaces apart, the last one unpadded (`ps`, `top`).
pub(crate) fn columns<const N: usize>(head: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = head.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:w$}   ", w = widths[i]));
            }
        }
        // An empty last cell (a container without ports) leaves no padding.
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&head);
    for row in rows {
        out.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    out
}

/// A progress callback that shows bytes and entries on a terminal for big imports;
/// sets `shown` once it printed something.
fn progress_printer<'a>(
    name: &'a str,
    shown: &'a std::cell::Cell<bool>,
) -> impl FnMut(Progress) + 'a {
    let tty = rustix::termios::isatty(std::io::stderr());
    move |p: Progress| {
        if tty && p.input_bytes >= 4 << 20 {
            shown.set(true);
            eprint!(
                "\rimporting {name}: {:.1} MB, {} entries ",
                p.input_bytes as f64 / 1e6,
                p.entries
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Cli> {
        parse(args.iter().map(OsString::from).collect(), None)
    }

    #[test]
    fn run_stops_at_the_image() {
        let cli = parse_str(&[
            "--root",
            "/s",
            "run",
            "--rm",
            "-e",
            "A=1",
            "--name",
            "web",
            "-w",
            "/tmp",
            "bb",
            "sh",
            "-c",
            "echo --rm",
        ])
        .unwrap();
        assert_eq!(cli.root, "/s");
        let Command::Run(a) = cli.command else {
            panic!()
        };
        assert!(a.remove);
        assert_eq!(a.env, vec!["A=1"]);
        assert_eq!(a.name.as_deref(), Some("web"));
        assert_eq!(a.workdir.as_deref(), Some("/tmp"));
        assert_eq!(a.image, "bb");
        assert_eq!(a.command, vec!["sh", "-c", "echo --rm"]);
    }

    #[test]
    fn storage_opt_takes_size_only() {
        let size = |opt: &str| match parse_str(&["run", "--storage-opt", opt, "bb"]) {
            Ok(Cli {
                command: Command::Run(a),
                ..
            }) => Ok(a.storage_size),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(size("size=10m"), Ok(Some(10 << 20)));
        assert_eq!(size("size=1g"), Ok(Some(1 << 30)));
        assert_eq!(size("size=0"), Ok(None));
        for bad in ["size=", "size=lots", "size", "quota=1g", "10m"] {
            let e = size(bad).unwrap_err();
            assert!(
                e.contains("--storage-opt") && !e.contains('\n'),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn security_options_parse() {
        assert_eq!(
            security_opt("seccomp=unconfined").unwrap(),
            SecurityOpt::Seccomp(true)
        );
        assert_eq!(
            security_opt("seccomp:unconfined").unwrap(),
            SecurityOpt::Seccomp(true)
        );
        assert_eq!(
            security_opt("no-new-privileges").unwrap(),
            SecurityOpt::NoNewPrivileges(true)
        );
        assert_eq!(
            security_opt("no-new-privileges=false").unwrap(),
            SecurityOpt::NoNewPrivileges(false)
        );
        assert_eq!(
            security_opt("no-new-privileges=1").unwrap(),
            SecurityOpt::NoNewPrivileges(true)
        );
        assert_eq!(
            security_opt("seccomp=builtin").unwrap(),
            SecurityOpt::Seccomp(false)
        );
        for bad in [
            "seccomp=/etc/p.json",
            "seccomp=default",
            "apparmor=unconfined",
            "no-new-privileges=yes",
            "seccomp",
        ] {
            let e = security_opt(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && !e.contains('\n'), "{e}");
        }
        let cli = parse_str(&["run", "--security-opt", "seccomp=unconfined", "bb"]).unwrap();
        let Command::Run(a) = cli.command else {
            panic!()
        };
        let spec = spec(&a, None, None).unwrap();
        assert!(spec.seccomp_unconfined && !spec.no_new_privileges);
        assert_eq!(spec.capabilities, crate::capabilities::DEFAULT);
        let cli = parse_str(&["run", "--cap-drop", "ALL", "--cap-add=net_raw", "bb"]).unwrap();
        let Command::Run(a) = cli.command else {
            panic!()
        };
        assert_eq!(super::spec(&a, None, None).unwrap().capabilities, 1 << 13);
    }

    #[test]
    fn run_user_options_parse() {
        let cli = parse_str(&[
            "run",
            "-u",
            "1000:100",
            "--group-add",
            "wheel",
            "--group-add=27",
            "bb",
            "id",
        ])
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.user.as_deref(), Some("1000:100"));
        assert_eq!(a.group_add, vec!["wheel", "27"]);
        assert_eq!(a.command, vec!["id"]);
        let s = spec(&a, None, None).unwrap();
        assert_eq!(s.user.as_deref(), Some("1000:100"));
        assert_eq!(s.group_add, vec!["wheel", "27"]);
        let cli = parse_str(&["run", "--user=alice", "-unobody", "bb"]).unwrap();
        let Command::Run(a) = cli.command else {
            panic!()
        };
        // The last one wins, as in docker.
        assert_eq!(a.user.as_deref(), Some("nobody"));
        let cli = parse_str(&["run", "bb", "-u", "x"]).unwrap();
        let Command::Run(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.user, None);
        assert_eq!(a.command, vec!["-u", "x"]);
        assert!(spec(&a, None, None).unwrap().group_add.is_empty());
        for args in [&["run", "-u"][..], &["run", "--group-add"]] {
            let e = parse_str(args).unwrap_err();
            assert!(!e.to_string().contains('\n') && e.exit_code() == 125, "{e}");
        }
    }

    #[test]
    fn run_network_options_parse() {
        let cli = parse_str(&[
            "run",
            "--ip",
            "10.89.0.5",
            "-p",
            "8080:80",
            "--publish",
            "53:53/udp",
            "bb",
        ])
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.ip.as_deref(), Some("10.89.0.5"));
        assert_eq!(a.publish, vec!["8080:80", "53:53/udp"]);
    }

    #[test]
    fn stop_kill_logs_and_detach_parse() {
        let cli = parse_str(&["stop", "-t", "3", "a", "b"]).unwrap();
        assert_eq!(
            cli.command,
            Command::Stop {
                names: vec!["a".into(), "b".into()],
                timeout: Some(3),
                signal: None,
            }
        );
        assert_eq!(
            parse_str(&["stop", "a", "-s", "USR1", "-t", "2"])
                .unwrap()
                .command,
            Command::Stop {
                names: vec!["a".into()],
                timeout: Some(2),
                signal: Some(rustix::process::Signal::USR1),
            }
        );
        assert!(parse_str(&["stop", "-s", "NOPE", "a"]).is_err());
        assert!(matches!(
            parse_str(&["rm", "-fv", "a"]).unwrap().command,
            Command::Rm { force: true, .. }
        ));
        let cli = parse_str(&["stop", "a"]).unwrap();
        assert!(matches!(cli.command, Command::Stop { timeout: None, .. }));
        assert!(parse_str(&["stop", "-t", "x", "a"]).is_err());
        assert!(parse_str(&["stop"]).is_err());
        assert_eq!(
            parse_str(&["start", "-a", "-i", "a"]).unwrap().command,
            Command::Start {
                names: vec!["a".into()],
                attach: true
            }
        );
        assert_eq!(
            parse_str(&["start", "a", "b"]).unwrap().command,
            Command::Start {
                names: vec!["a".into(), "b".into()],
                attach: false
            }
        );
        let Command::StartAll {
            filters,
            boot: false,
        } = parse_str(&["start", "--all", "-f", "restart-policy=always"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_ne!(filters, Default::default());
        for bad in [
            &["start", "--all", "a"][..],
            &["start", "--all", "-a"],
            &["start", "-f", "name=a", "a"],
            &["start", "--boot"],
            &["start", "--boot", "a"],
            &["start", "--all", "-f", "restart-policy=sometimes"],
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_str(&["restart", "--time", "-1", "a"])
                .unwrap()
                .command,
            Command::Restart {
                names: vec!["a".into()],
                timeout: Some(u64::MAX),
                signal: None,
            }
        );
        for bad in [
            &["start"][..],
            &["start", "-a", "a", "b"],
            &["start", "-t", "a"],
            &["restart"],
            &["restart", "-t", "soon", "a"],
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?}");
        }
        let cli = parse_str(&["kill", "a"]).unwrap();
        assert!(
            matches!(cli.command, Command::Kill { signal, .. } if signal == rustix::process::Signal::KILL)
        );
        for (given, want) in [
            ("term", 15),
            ("SIGUSR1", 10),
            ("HUP", 1),
            ("2", 2),
            ("RTMIN+3", 37),
            ("SIGRTMIN", 34),
            ("rtmax-1", 63),
            ("40", 40),
        ] {
            assert_eq!(parse_signal("-s", given).unwrap().as_raw(), want, "{given}");
        }
        for bad in [
            "NOPE", "0", "65", "32", "SIG", "", "RTMIN+31", "RTMIN-1", "RTMAX+1",
        ] {
            assert!(parse_signal("-s", bad).is_err(), "{bad}");
        }
        assert!(parse_str(&["stop", "-t", "-1", "a"]).is_ok());
        let cli = parse_str(&["logs", "-f", "web"]).unwrap();
        assert_eq!(
            cli.command,
            Command::Logs {
                name: "web".into(),
                follow: true,
                tail: None,
                timestamps: false,
                since: None,
                until: None,
            }
        );
        let cli =
            parse_str(&["logs", "-t", "--since", "10m", "--until=2026-12-01", "web"]).unwrap();
        assert_eq!(
            cli.command,
            Command::Logs {
                name: "web".into(),
                follow: false,
                tail: None,
                timestamps: true,
                since: Some("10m".into()),
                until: Some("2026-12-01".into()),
            }
        );
        assert!(parse_str(&["logs", "--since", "soon", "web"]).is_err());
        assert!(parse_str(&["logs", "--until", "2026-02-30", "web"]).is_err());
        assert!(parse_str(&["logs", "a", "b"]).is_err());
        for (args, tail) in [
            (&["logs", "--tail", "3", "web"][..], Some(3)),
            (&["logs", "-n", "0", "web"][..], Some(0)),
            (&["logs", "--tail=all", "web"][..], None),
            (&["logs", "web", "-n2"][..], Some(2)),
        ] {
            let cli = parse_str(args).unwrap();
            assert_eq!(
                cli.command,
                Command::Logs {
                    name: "web".into(),
                    follow: false,
                    tail,
                    timestamps: false,
                    since: None,
                    until: None,
                },
                "{args:?}"
            );
        }
        for bad in [
            &["logs", "--tail", "-1", "web"][..],
            &["logs", "--tail", "x", "web"][..],
            &["logs", "--tail"][..],
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_str(&["port", "web"]).unwrap().command,
            Command::Port {
                name: "web".into(),
                private: None
            }
        );
        assert_eq!(
            parse_str(&["port", "web", "53/udp"]).unwrap().command,
            Command::Port {
                name: "web".into(),
                private: Some((53, net::Protocol::Udp))
            }
        );
        assert_eq!(
            parse_str(&["port", "web", "80"]).unwrap().command,
            Command::Port {
                name: "web".into(),
                private: Some((80, net::Protocol::Tcp))
            }
        );
        for bad in [
            &["port"][..],
            &["port", "web", "0"][..],
            &["port", "web", "80/sctp"][..],
            &["port", "web", "x"][..],
            &["port", "a", "80", "81"][..],
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?}");
        }
        let Command::Run(a) = parse_str(&["run", "-d", "bb"]).unwrap().command else {
            panic!("not run")
        };
        assert!(a.detach);
        let a = RunArgs {
            detach: true,
            tty: true,
            image: "bb".into(),
            ..Default::default()
        };
        assert!(spec(&a, None, None).is_err());
    }

    #[test]
    fn run_takes_volumes_tmpfs_and_read_only() {
        let cli = parse_str(&[
            "run",
            "-v",
            "/a:/b:ro",
            "--volume=/c:/d",
            "--tmpfs",
            "/t:size=1m",
            "--read-only",
            "bb",
        ])
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!("not run")
        };
        assert!(a.read_only);
        let dest: Vec<&str> = a.mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(dest, ["/b", "/d", "/t"]);
        assert!(a.mounts[0].read_only && !a.mounts[1].read_only);
        let e = parse_str(&["run", "-v", "Vol:/b", "bb"]).unwrap_err();
        assert!(e.to_string().contains("invalid volume name"), "{e}");
    }

    #[test]
    fn ps_table_has_a_heading_per_column() {
        let rec = crate::container::Record {
            id: "0123456789ab".into(),
            name: Some("web".into()),
            image: "bb".into(),
            command: vec!["sleep".into(), "1".into()],
            hostname: "web".into(),
            created: String::new(),
            created_unix: 100,
            created_nsec: 0,
            status: crate::container::Status::Running,
            exit_code: None,
            finished_unix: None,
            pid: None,
            remove: false,
            network: None,
            security: None,
            env: Vec::new(),
            workdir: None,
            read_only: false,
            mounts: Vec::new(),
            resources: None,
            cgroups: Vec::new(),
            oom_killed: false,
            ulimits: Vec::new(),
            stop_signal: None,
            stop_timeout: None,
            sysctls: Vec::new(),
            devices: Vec::new(),
            tty: false,
            init: false,
            privileged: false,
            started_unix: None,
            freezer: None,
            paused: false,
            labels: Default::default(),
            config: None,
            restart: None,
            restart_count: 0,
            stopped: Default::default(),
            shm_size: None,
            uts: None,
            cgroupns: None,
            ipc: None,
            pid_mode: None,
            domainname: None,
            oom_score_adj: None,
            storage_size: None,
            log: None,
            timeout: None,
            health_on_failure: Default::default(),
            restarting: false,
            health: None,
        };
        let t = ps_table(std::slice::from_ref(&rec), 160);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("ADDRESS   PORTS"), "{t}");
        assert!(lines[1].ends_with(" -"), "{t}");
        assert!(lines[1].contains("Up 1 minute   "), "{t}");
        let paused = crate::container::Record {
            paused: true,
            ..rec.clone()
        };
        let t = ps_table(std::slice::from_ref(&paused), 160);
        assert!(t.contains("Up 1 minute (Paused)"), "{t}");
        // docker's PORTS, for a running container.
        let mut published = rec.clone();
        published.network = Some(net::Settings {
            mode: "bridge".into(),
            bridge: Some("tupper0".into()),
            address: Some("10.89.0.2".into()),
            prefix_len: Some(16),
            mac_address: None,
            gateway: Some("10.89.0.1".into()),
            host_veth: None,
            ports: vec!["8080:80/tcp".into(), "127.0.0.1:5353:53/udp".into()],
            ..Default::default()
        });
        let t = ps_table(&[published.clone()], 160);
        let row = t.lines().nth(1).unwrap();
        assert!(
            row.ends_with("10.89.0.2   0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp"),
            "{t}"
        );
        published.status = crate::container::Status::Exited;
        let t = ps_table(&[published], 160);
        assert!(
            t.lines().nth(1).unwrap().ends_with(" -"),
            "an exited one has none: {t}"
        );
    }

    #[test]
    fn root_defaults_and_env() {
        let cli = parse_str(&["ps"]).unwrap();
        assert_eq!(cli.root, DEFAULT_ROOT);
        let cli = parse(vec!["ps".into(), "-a".into()], Some("/x".into())).unwrap();
        assert_eq!(cli.root, "/x");
        assert_eq!(
            cli.command,
            Command::Ps {
                all: true,
                json: false,
                quiet: false,
                last: None,
                filters: Default::default(),
                format: None,
            }
        );
        let cli = parse(vec!["ps".into(), "-aq".into()], None).unwrap();
        assert!(matches!(
            cli.command,
            Command::Ps {
                all: true,
                quiet: true,
                json: false,
                last: None,
                ..
            }
        ));
        assert!(matches!(
            parse_str(&["ps", "-l", "--filter", "label=a=b"])
                .unwrap()
                .command,
            Command::Ps { last: Some(1), .. }
        ));
        assert!(parse_str(&["ps", "-f", "nope=1"]).is_err());
        for (args, format) in [
            (&["ps", "--format", "{{.ID}}"][..], "{{.ID}}"),
            (&["images", "--format", "{{.name}}"], "{{.name}}"),
            (&["inspect", "-f", "{{.pid}}", "a"], "{{.pid}}"),
            (&["inspect", "a", "--format", "json"], "json"),
        ] {
            let want = Some(crate::template::Template::parse(format).unwrap());
            let got = match parse_str(args).unwrap().command {
                Command::Ps { format, .. }
                | Command::Images { format, .. }
                | Command::Inspect { format, .. } => format,
                other => panic!("{other:?}"),
            };
            assert_eq!(got, want, "{args:?}");
        }
        assert!(parse_str(&["ps", "--format", "{{range .x}}"]).is_err());
        assert!(parse_str(&["inspect", "-f", "{{.pid}}"]).is_err());
        assert!(parse_str(&["ps", "-n", "x"]).is_err());
        let cli = parse(vec!["wait".into(), "a".into(), "b".into()], None).unwrap();
        assert_eq!(
            cli.command,
            Command::Wait {
                names: vec!["a".into(), "b".into()],
                conditions: vec![crate::container::WaitCondition::Stopped],
                interval: std::time::Duration::from_millis(250),
            }
        );
        let cli = parse_str(&[
            "wait",
            "--condition",
            "healthy",
            "--condition=exited",
            "-i",
            "1s",
            "a",
        ])
        .unwrap();
        assert_eq!(
            cli.command,
            Command::Wait {
                names: vec!["a".into()],
                conditions: vec![
                    crate::container::WaitCondition::Healthy,
                    crate::container::WaitCondition::Stopped
                ],
                interval: std::time::Duration::from_secs(1),
            }
        );
        for bad in [
            &["wait"][..],
            &["wait", "--condition", "asleep", "a"],
            &["wait", "-i", "0", "a"],
            &["wait", "-i", "-1s", "a"],
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_command_lines_are_one_line_errors() {
        for args in [
            &[][..],
            &["frobnicate"],
            &["run"],
            &["run", "--bogus", "x"],
            &["import", "a"],
            &["rm"],
            &["images", "x"],
        ] {
            let e = parse_str(args).unwrap_err();
            assert!(!e.to_string().contains('\n'), "{e}");
            assert_eq!(e.exit_code(), 125);
        }
    }

    #[test]
    fn net_modes_and_options() {
        let mut a = RunArgs {
            image: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            spec(&a, None, None).unwrap().network.mode,
            net::Mode::Bridge
        );
        a.net = Some("host".into());
        assert_eq!(spec(&a, None, None).unwrap().network.mode, net::Mode::Host);
        // A name that is no mode is a user-defined network's, read at the
        // start; what cannot be a name is refused.
        a.net = Some("appnet".into());
        let s = spec(&a, None, None).unwrap();
        assert_eq!(s.network.mode, net::Mode::Bridge);
        assert_eq!(s.network.network.as_deref(), Some("appnet"));
        a.net = Some("Bogus".into());
        assert!(spec(&a, None, None).is_err());
        a.net = Some("container:".into());
        assert!(spec(&a, None, None).is_err());
        a.net = None;
        a.ip = Some("10.7.0.9".into());
        a.publish = vec!["8080:80/tcp".into()];
        let s = spec(&a, Some("tpx0"), Some("10.7.0.0/24")).unwrap();
        assert_eq!(s.network.bridge, "tpx0");
        assert_eq!(s.network.ip, Some("10.7.0.9".parse().unwrap()));
        assert_eq!(s.network.publish.len(), 1);
        a.ip = Some("10.7.1.9".into());
        assert!(
            spec(&a, None, Some("10.7.0.0/24")).is_err(),
            "address outside the subnet"
        );
    }

    #[test]
    fn global_network_options() {
        let cli = parse_str(&["--bridge", "tpb0", "--subnet", "10.9.0.0/24", "ps"]).unwrap();
        assert_eq!(cli.bridge.as_deref(), Some("tpb0"));
        assert_eq!(cli.subnet.as_deref(), Some("10.9.0.0/24"));
    }
}
