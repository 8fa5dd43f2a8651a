//! Carrying out a parsed command on a [`Store`].

use super::detached::{background_is_optional, start_detached, CidFile, Detached, DetachedOutput};
use super::output::{
    archive_out, columns, copy_log, disk_usage_text, inspected, listing, print_events,
    progress_printer, ps_table_sized, render_each, EventsShown,
};
use super::parse::bad;
use super::run_args::{replace_named, spec};
use super::*;

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
            let store = store()?;
            let mut images = store.images()?;
            if !*quiet {
                for image in &mut images {
                    image.size = Some(store.image_bytes(&image.name)?);
                }
            }
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
                let rows: Vec<[String; 3]> = images
                    .iter()
                    .map(|i| {
                        [
                            i.name.clone(),
                            format!("{} ago", timefmt::human_duration(now - i.created_unix)),
                            crate::disk_usage::human_size(i.size.unwrap_or(0)),
                        ]
                    })
                    .collect();
                print(&mut out, columns(["NAME", "CREATED", "SIZE"], &rows));
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
            size,
        } => {
            let store = store()?;
            let filters = resolved_filters(&store, filters)?;
            let mut list = store.containers(*all || last.is_some() || filters.want_all())?;
            list.retain(|r| filters.matches(r));
            if let Some(n) = last {
                list.truncate(*n);
            }
            let sizes = match *size && !*quiet {
                true => Some(store.container_sizes(&list)?),
                false => None,
            };
            if *quiet {
                let ids: String = list.iter().map(|r| format!("{}\n", r.id)).collect();
                print(&mut out, ids);
            } else if let (Some(sizes), true) = (&sizes, format.is_some() || *json) {
                // docker's sizes beside the record's fields.
                let items: Vec<serde_json::Value> = list
                    .iter()
                    .zip(sizes)
                    .map(|(r, size)| {
                        let mut item = serde_json::to_value(r).unwrap_or_default();
                        if let Some(map) = item.as_object_mut() {
                            map.insert("size_rw".into(), size.rw.into());
                            map.insert("size_root_fs".into(), size.root_fs.into());
                            map.insert("size".into(), size.text().into());
                        }
                        item
                    })
                    .collect();
                match format {
                    Some(t) => print(&mut out, render_each(t, &items)),
                    None => print(
                        &mut out,
                        serde_json::to_string_pretty(&items).unwrap_or_default() + "\n",
                    ),
                }
            } else if let Some(t) = format {
                print(&mut out, render_each(t, &list));
            } else if *json {
                print(
                    &mut out,
                    serde_json::to_string_pretty(&list).unwrap_or_default() + "\n",
                );
            } else {
                print(
                    &mut out,
                    ps_table_sized(&list, timefmt::now(), sizes.as_deref()),
                );
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
                // Silent when done, as docker's.
                NetworkCommand::Connect {
                    network,
                    container,
                    ip,
                    aliases,
                } => {
                    store.connect_network(network, container, *ip, aliases)?;
                }
                NetworkCommand::Disconnect { network, container } => {
                    store.disconnect_network(network, container)?;
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
        Command::ImagePrune { all, filters } => {
            let (removed, freed, result) = store()?.prune_images(*all, filters);
            if !removed.is_empty() {
                print(
                    &mut out,
                    format!("Deleted Images:\n{}\n\n", removed.join("\n")),
                );
            }
            print(
                &mut out,
                format!(
                    "Total reclaimed space: {}\n",
                    crate::disk_usage::human_size(freed)
                ),
            );
            result?;
        }
        Command::SystemPrune { volumes, all } => {
            let store = store()?;
            // As docker's: each kind under a heading, those removed below it.
            let mut first_error = None;
            let (containers, containers_freed, r) = store.prune_containers_sized();
            first_error = first_error.or(r.err());
            let (networks, r) = store.prune_networks();
            first_error = first_error.or(r.err());
            let (volumes, volumes_freed, r) = match volumes {
                true => store.prune_volumes_sized(),
                false => (Vec::new(), 0, Ok(())),
            };
            first_error = first_error.or(r.err());
            // After the containers: the images of those removed go too.
            let (images, images_freed, r) = store.prune_images(*all, &Default::default());
            first_error = first_error.or(r.err());
            for (heading, names) in [
                ("Deleted Containers", containers),
                ("Deleted Networks", networks),
                ("Deleted Volumes", volumes),
                ("Deleted Images", images),
            ] {
                if !names.is_empty() {
                    print(&mut out, format!("{heading}:\n{}\n\n", names.join("\n")));
                }
            }
            let freed = containers_freed + volumes_freed + images_freed;
            print(
                &mut out,
                format!(
                    "Total reclaimed space: {}\n",
                    crate::disk_usage::human_size(freed)
                ),
            );
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        Command::SystemDf { verbose, format } => {
            let usage = store()?.disk_usage()?;
            let now = timefmt::now();
            match (format, verbose) {
                // -v: the whole, items and all.
                (Some(t), true) => print(&mut out, render_each(t, std::slice::from_ref(&usage))),
                (Some(t), false) => {
                    let lines: Vec<_> =
                        usage.summary().iter().map(|s| s.template_value()).collect();
                    print(&mut out, render_each(t, &lines));
                }
                (None, _) => print(&mut out, disk_usage_text(&usage, *verbose, now)),
            }
        }
        Command::Info { format } => {
            let info = store()?.info()?;
            match format {
                Some(t) => print(&mut out, render_each(t, std::slice::from_ref(&info))),
                None => print(&mut out, crate::info::text(&info)),
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

/// `filters` with the containers of its `since=` and `before=` found in
/// `store` (`ps`, `start --all`).
pub(super) fn resolved_filters(
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

/// `export -o FILE`: the archive is written next to `file` under a
/// temporary name and renamed onto it once complete, so that a failed
/// export leaves no partial archive (nor a changed `file`).
/// Makes the spare snapshots of a new image (`commit`, `tag`) in the
/// background, as an import's; when no process can be forked (a limit on
/// tasks), the first runs make theirs (see `background_is_optional`).
pub(super) fn refill_pool_in_background(root: &std::ffi::OsStr, image: &str) {
    let (root, image) = (root.to_os_string(), image.to_string());
    background_is_optional(crate::launch::in_background(move || {
        if let Ok(store) = Store::open(&root) {
            let _ = store.refill_pool_now(&image, crate::pool::configured_size());
        }
    }));
}
