//! Parsing the command line into a [`Cli`] (pure: no file is read but
//! what an option names, such as `--env-file`).

use super::run_args::{env_files, parse_run, resource_flag, set_resource};
use super::signal::parse_signal;
use super::*;

/// The command that docker's management command `group sub` (`container
/// ls`, `image rm`, ...) is, and the kind of object an `inspect` of it
/// looks at.
pub(super) fn management_command(group: &str, sub: &str) -> Result<(&'static str, InspectKind)> {
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
        (_, "prune") => Some(("image prune", InspectKind::Any)),
        _ => any(IMAGE).map(|c| (c, InspectKind::Any)),
    };
    found.ok_or_else(|| bad(format!("unknown command \"{group} {sub}\"")))
}

/// `GROUP ls`'s options (`volume`, `network`).
pub(super) fn parse_ls(p: &mut Parser, group: &str) -> Result<ListArgs> {
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
pub(super) fn parse_inspect(p: &mut Parser, group: &str) -> Result<InspectArgs> {
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

pub(super) fn bad(msg: impl Into<String>) -> Error {
    Error::msg(msg).with_advice("see `tupper --help`")
}

pub(super) fn advise(e: Error) -> Error {
    e.with_advice("see `tupper --help`")
}

pub(super) fn lex(e: lexopt::Error) -> Error {
    bad(e.to_string())
}

pub(super) fn string(v: OsString) -> Result<String> {
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
            Some(Arg::Value(v)) if v == "df" => ("system df".to_string(), InspectKind::Any),
            Some(Arg::Value(v)) if v == "info" => ("info".to_string(), InspectKind::Any),
            Some(Arg::Value(v)) => {
                return Err(bad(format!(
                    "unknown command \"system {}\": tupper has system prune, df and info",
                    v.to_string_lossy()
                )))
            }
            _ => return Err(bad("system needs a command: prune, df or info")),
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
            let (mut filters, mut format, mut size) = (Vec::new(), None, false);
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Short('a') | Arg::Long("all") => all = true,
                    Arg::Short('s') | Arg::Long("size") => size = true,
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
                size,
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
            // docker's asks first unless -f; tupper never asks. `-a`: also
            // the images no container was made from (`image prune -a`).
            let (set, rest) = flags(&mut p, &["force", "volumes", "all"])?;
            if !rest.is_empty() {
                return Err(bad("system prune takes no arguments"));
            }
            Command::SystemPrune {
                volumes: set[1],
                all: set[2],
            }
        }
        "image prune" => {
            let (mut all, mut filters) = (false, Vec::new());
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Short('a') | Arg::Long("all") => all = true,
                    // docker's asks first; tupper never does.
                    Arg::Short('f') | Arg::Long("force") => {}
                    Arg::Long("filter") => filters.push(string(p.value().map_err(lex)?)?),
                    Arg::Value(_) => return Err(bad("image prune takes no arguments")),
                    other => return Err(lex(other.unexpected())),
                }
            }
            Command::ImagePrune {
                all,
                filters: crate::filter::Filters::parse(
                    "image prune",
                    &filters,
                    crate::filter::PRUNE_KEYS,
                )?,
            }
        }
        "system df" | "info" => {
            let (mut verbose, mut format) = (false, None);
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Short('v') | Arg::Long("verbose") if sub == "system df" => verbose = true,
                    Arg::Short('f') | Arg::Long("format") => format = Some(template(&mut p)?),
                    Arg::Value(_) => return Err(bad(format!("{sub} takes no arguments"))),
                    other => return Err(lex(other.unexpected())),
                }
            }
            match sub.as_str() {
                "info" => Command::Info { format },
                _ => Command::SystemDf { verbose, format },
            }
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
pub(super) fn names_and_option(
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
pub(super) fn names_and_options<const N: usize>(
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
pub(super) fn parse_network_command(p: &mut Parser) -> Result<NetworkCommand> {
    const COMMANDS: &str = "create, ls, inspect, rm, prune, connect or disconnect";
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
        "connect" => {
            let (mut values, mut ip, mut aliases) = (Vec::new(), None, Vec::new());
            while let Some(arg) = p.next().map_err(lex)? {
                match arg {
                    Arg::Long("ip") => {
                        let v = string(p.value().map_err(lex)?)?;
                        ip = Some(v.parse().map_err(|_| {
                            bad(format!("invalid --ip {v:?}: not an IPv4 address"))
                        })?);
                    }
                    Arg::Long("alias") => aliases.push(string(p.value().map_err(lex)?)?),
                    Arg::Value(v) => values.push(string(v)?),
                    other => return Err(lex(other.unexpected())),
                }
            }
            let [network, container] = <[String; 2]>::try_from(values)
                .map_err(|_| bad("network connect needs a network and a container"))?;
            NetworkCommand::Connect {
                network,
                container,
                ip,
                aliases,
            }
        }
        "disconnect" => {
            let (_, values) = flags(p, &[])?;
            let [network, container] = <[String; 2]>::try_from(values)
                .map_err(|_| bad("network disconnect needs a network and a container"))?;
            NetworkCommand::Disconnect { network, container }
        }
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
pub(super) fn parse_volume_command(p: &mut Parser) -> Result<VolumeCommand> {
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
pub(super) fn parse_stop_timeout(command: &str, value: Option<&str>) -> Result<Option<u64>> {
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
pub(super) fn parse_tail(v: &str) -> Result<Option<u64>> {
    if v == "all" {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| bad(format!("invalid --tail {v:?}: a number of lines, or all")))
}

/// `port`'s second argument: `PORT` or `PORT/tcp|udp`.
pub(super) fn parse_private_port(v: &str) -> Result<(u16, net::Protocol)> {
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
pub(super) fn flags(p: &mut Parser, names: &[&str]) -> Result<(Vec<bool>, Vec<String>)> {
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
pub(super) fn force_and_changes(p: &mut Parser) -> Result<(bool, Vec<String>, Vec<String>)> {
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

/// What `--since` and `--until` take, for their error.
pub(super) const NOT_A_TIME: &str = "not a time (2026-12-01T15:04:05Z, 2026-12-01, seconds since 1970, or a duration before now: 10m, 1h30m)";

/// `--format TEMPLATE`'s value, parsed.
pub(super) fn template(p: &mut lexopt::Parser) -> Result<crate::template::Template> {
    crate::template::Template::parse(&string(p.value().map_err(lex)?)?)
}
