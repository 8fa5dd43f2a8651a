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

mod detached;
mod execute;
mod output;
mod parse;
mod run_args;
mod signal;
#[cfg(test)]
mod tests;

pub use execute::execute;
pub(crate) use output::columns;
pub use output::ps_table;
pub use parse::parse;
pub use run_args::spec;
pub(crate) use signal::{parse_signal, signal_name};

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
                                 (again: on more networks, eth1...; --ip and aliases are the first's)
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
  ps [-a] [-q] [-s] [--json] [-n N] [-l] [-f KEY=VALUE]... [--format T]
                                 list running (-a: all) containers (-q: only their IDs; -s: their sizes;
                                 -n: the last N made, -l: the last; -f: id, name, label, status, exited,
                                 ancestor, volume, network, health, restart-policy, since, before, publish,
                                 expose)
  inspect [-f T] NAME|ID...      a container's record and network settings, as JSON
                                 (--format T, -f T: docker's Go template, {{.Field}}, {{json .X}}, ...)
  rm [-f] NAME|ID...             remove containers (-f: kill running ones first)
  prune [--filter label=KEY[=VALUE]|until=TIME]...
                                 remove every container that is not running (exited, dead)
  system prune [-a] [--volumes]  prune, network prune (-a: image prune -a; --volumes: volume prune)
  image prune [-a] [--filter label=KEY[=VALUE]|label!=...|until=TIME]...
                                 with -a, remove every image no container was made from (tupper's images
                                 have names: none is dangling, so without -a nothing goes)
  system df [-v] [--format T]    what images, containers and volumes take, and what pruning would free
                                 (-v: each one)
  info [--format T]              the store (its device, containers, images) and the host (system info)
  volume create|ls [-q] [--json] [--format T]|inspect [-f T]|rm|prune [NAME...]
                                 named volumes (run -v NAME:PATH makes one on first use, filled from the image)
  network create [--subnet CIDR] [--internal] [-l KEY=VALUE]... NAME | ls [-q] [--json] [--format T]
          | inspect [-f T] NAME... | rm NAME... | prune
                                 user-defined networks: a bridge and subnet each; run --net NAME puts a
                                 container on one, where the others find it by name (/etc/hosts)
  network connect [--ip IP] [--alias NAME]... NETWORK NAME|ID | disconnect NETWORK NAME|ID
                                 put a container on one more network (eth1...; at once if it runs,
                                 else from its next start), or take it off one it was put on
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
        /// `-s`: each one's size (docker's SIZE: what it wrote, and its
        /// image's files with it).
        size: bool,
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
        /// `-a`: also every image no container was made from.
        all: bool,
    },
    /// `image prune [-a] [--filter ...]`: with `-a`, the images no
    /// container was made from.
    ImagePrune {
        /// `-a`.
        all: bool,
        /// `--filter`s (`label`, `label!`, `until`).
        filters: crate::filter::Filters,
    },
    /// `system df [-v] [--format T]`: what the images, containers and
    /// volumes take ([`crate::disk_usage`]).
    SystemDf {
        /// `-v`: item by item.
        verbose: bool,
        /// `--format`: each line through this template.
        format: Option<crate::template::Template>,
    },
    /// `info [--format T]` (`system info`): the store and the host
    /// ([`crate::info`]).
    Info {
        /// `--format`: the whole through this template.
        format: Option<crate::template::Template>,
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
    /// `network connect [--ip IP] [--alias NAME]... NETWORK CONTAINER`.
    Connect {
        /// The network.
        network: String,
        /// The container, by name or ID.
        container: String,
        /// `--ip`.
        ip: Option<std::net::Ipv4Addr>,
        /// `--alias`.
        aliases: Vec<String>,
    },
    /// `network disconnect NETWORK CONTAINER`.
    Disconnect {
        /// The network.
        network: String,
        /// The container, by name or ID.
        container: String,
    },
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
    /// `--net`: the first one given.
    pub net: Option<String>,
    /// `--net` given again: more user-defined networks (docker 25's).
    pub more_nets: Vec<String>,
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
