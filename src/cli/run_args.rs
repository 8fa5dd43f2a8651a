//! `run`'s and `create`'s options, and the [`Spec`] they make.

use super::parse::{advise, bad, lex, string};
use super::signal::parse_signal;
use super::*;

/// The resource limit an option of `run` and `update` sets: its long name.
pub(super) fn resource_flag(arg: &Arg<'_>) -> Option<&'static str> {
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
pub(super) fn set_resource(r: &mut crate::cgroup::Resources, flag: &str, v: &str) -> Result<()> {
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
pub(super) fn parse_run(p: &mut Parser) -> Result<RunArgs> {
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
                let v = string(p.value().map_err(lex)?)?;
                match a.net {
                    None => a.net = Some(v),
                    Some(_) => a.more_nets.push(v),
                }
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
pub(super) fn replace_named(store: &Store, spec: &Spec) -> Result<()> {
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
    // `--net` given again: when every one is a mode, the last wins (a
    // script's override, as before); else they are networks (below).
    let is_mode = |m: &String| net::Mode::parse_with_container(m).is_ok();
    let (first_net, more_nets) = match a.more_nets.last() {
        Some(last) if a.net.iter().chain(&a.more_nets).all(is_mode) => (Some(last), &[][..]),
        _ => (a.net.as_ref(), &a.more_nets[..]),
    };
    let (mode, container, user_network) = match first_net.map(String::as_str) {
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
    // `--net` again (docker 25's): more user-defined networks, connected
    // after the first; `--ip` and the aliases are the first's, as docker's.
    if !more_nets.is_empty() {
        let mode = first_net.into_iter().chain(more_nets).find(|m| is_mode(m));
        if let Some(m) = mode {
            return Err(bad(format!(
                "conflicting options: --net {m} with more --net: a container is on more than one network only of user-defined ones"
            )));
        }
        network.connected = more_nets
            .iter()
            .map(|n| net::Connection {
                network: n.clone(),
                ..net::Connection::default()
            })
            .collect();
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
pub(super) fn parse_storage_opt(s: &str) -> Result<Option<u64>> {
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
pub(super) fn env_files(files: &[String]) -> Result<Vec<String>> {
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
pub(super) enum SecurityOpt {
    /// `seccomp=unconfined` (true) or `seccomp=builtin` (false).
    Seccomp(bool),
    /// `seccomp=FILE`: the profile's text.
    SeccompProfile(String),
    /// `no-new-privileges[=true|false]`.
    NoNewPrivileges(bool),
}

/// Parses a `--security-opt` as docker writes it (`KEY=VALUE`, or the older
/// `KEY:VALUE`).
pub(super) fn security_opt(opt: &str) -> Result<SecurityOpt> {
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
