//! What commands print: tables, listings, `--format`, logs and events.

use super::*;

/// What an `ls` of named things prints (`volume ls`, `network ls`):
/// each through `--format` (unless `-q`), else the list as JSON with
/// `--json`, else the names with `-q`, else `table`'s columns.
pub(super) fn listing<T: serde::Serialize>(
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
pub(super) fn inspected<T: serde::Serialize>(
    list: &[T],
    format: Option<&crate::template::Template>,
) -> String {
    match format {
        Some(t) => render_each(t, list),
        None => serde_json::to_string_pretty(list).unwrap_or_default() + "\n",
    }
}

/// Each of `items` (as `--json` prints it) through template `t`.
pub(super) fn render_each<T: serde::Serialize>(
    t: &crate::template::Template,
    items: &[T],
) -> String {
    items
        .iter()
        .map(|i| t.render(&serde_json::to_value(i).unwrap_or_default()))
        .collect()
}

/// Which events `tupper events` prints, and how.
pub(super) struct EventsShown {
    /// From then on (nanoseconds since the epoch); `None`: only new ones.
    pub(super) since: Option<i128>,
    /// Up to then; `None`: on until stdout closes or a signal ends it.
    pub(super) until: Option<i128>,
    pub(super) filter: crate::events::EventFilter,
    pub(super) format: Option<crate::template::Template>,
}

/// `tupper events`: the stored events chosen by `shown` (with `--since`),
/// then the new ones as they are written, until `--until` (docker's). The
/// log's rotation is followed by inode.
pub(super) fn print_events(store: &Store, shown: &EventsShown) -> Result<()> {
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
pub(super) fn copy_log(
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
pub(super) struct LogCopier<'a> {
    id: &'a str,
    buf: Vec<u8>,
    /// How a `k8s-file` log is read; `None`: as it is.
    records: Option<crate::logfile::Records>,
}

impl LogCopier<'_> {
    /// Copies `f` from where it is to its end; false when nobody reads any
    /// more (`| head`).
    pub(super) fn copy_rest(&mut self, f: &std::os::fd::OwnedFd) -> Result<bool> {
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

/// Writes an archive (`export`, `save`: `op` names the command) with
/// `write`: to `file` (`-o`; see [`archive_to_file`]), else to stdout,
/// unless it is a terminal.
pub(super) fn archive_out(
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
/// synced, then renamed over it (removed on failure). A `file` that is a
/// device, pipe or socket (`-o /dev/null`, `-o /dev/stdout`) is written
/// into as it is, never replaced.
pub(super) fn archive_to_file(
    op: &str,
    file: &str,
    write: &dyn Fn(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let path = std::path::Path::new(file);
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::os(format!("{op}: open {file}"), e))?;
        let mut buffered = std::io::BufWriter::with_capacity(1 << 16, f);
        write(&mut buffered)?;
        return buffered
            .flush()
            .map_err(|e| Error::os(format!("{op}: write {file}"), e));
    }
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

/// docker's STATUS of `r` at `now` (`Up 5 minutes (healthy)`, `Exited (0) 2
/// hours ago`).
pub(super) fn status_text(r: &crate::container::Record, now: i64) -> String {
    use crate::container::Status;
    match r.status {
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
            "Dead (tupper was killed, its command still runs; `tupper rm -f` it)".to_string()
        }
        Status::Dead => "Dead (tupper was killed; `tupper rm` it)".to_string(),
        Status::Created => "Created".to_string(),
    }
}

/// docker's COMMAND of `r`: quoted, cut at 30 characters.
pub(super) fn command_text(r: &crate::container::Record) -> String {
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
    format!("{cmd:?}")
}

/// `system df`'s table: a line per kind, or with `verbose` each image,
/// container and volume under its kind's heading (docker's).
pub(super) fn disk_usage_text(
    du: &crate::disk_usage::DiskUsage,
    verbose: bool,
    now: i64,
) -> String {
    use crate::disk_usage::human_size;
    if !verbose {
        let rows: Vec<[String; 5]> = du
            .summary()
            .iter()
            .map(|s| {
                [
                    s.kind.to_string(),
                    s.total.to_string(),
                    s.active.to_string(),
                    human_size(s.size),
                    s.reclaimable_text(),
                ]
            })
            .collect();
        return columns(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows);
    }
    let ago = |t: i64| format!("{} ago", timefmt::human_duration(now - t));
    let images: Vec<[String; 6]> = du
        .images
        .iter()
        .map(|i| {
            [
                i.name.clone(),
                ago(i.created_unix),
                human_size(i.size),
                human_size(i.shared_size),
                human_size(i.size - i.shared_size),
                i.containers.to_string(),
            ]
        })
        .collect();
    let containers: Vec<[String; 7]> = du
        .containers
        .iter()
        .map(|c| {
            let r = &c.record;
            [
                r.id.clone(),
                r.image.clone(),
                command_text(r),
                human_size(c.size),
                ago(r.created_unix),
                status_text(r, now),
                r.name.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let volumes: Vec<[String; 3]> = du
        .volumes
        .iter()
        .map(|v| [v.name.clone(), v.links.to_string(), human_size(v.size)])
        .collect();
    format!(
        "Images space usage:\n\n{}\nContainers space usage:\n\n{}\nLocal Volumes space usage:\n\n{}",
        columns(
            ["IMAGE", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"],
            &images
        ),
        columns(
            ["CONTAINER ID", "IMAGE", "COMMAND", "SIZE", "CREATED", "STATUS", "NAMES"],
            &containers
        ),
        columns(["VOLUME NAME", "LINKS", "SIZE"], &volumes)
    )
}

/// `ps`'s table, in docker's columns.
pub fn ps_table(list: &[crate::container::Record], now: i64) -> String {
    ps_table_sized(list, now, None)
}

/// `ps`'s table; with `sizes` (`ps -s`, one per container of `list`)
/// docker's SIZE column last.
pub(super) fn ps_table_sized(
    list: &[crate::container::Record],
    now: i64,
    sizes: Option<&[crate::disk_usage::ContainerSize]>,
) -> String {
    use crate::container::Status;
    let rows: Vec<[String; 8]> = list
        .iter()
        .map(|r| {
            let status = status_text(r, now);
            [
                r.id.clone(),
                r.name.clone().unwrap_or_default(),
                r.image.clone(),
                command_text(r),
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
    match sizes {
        None => columns(head, &rows),
        Some(sizes) => {
            let rows: Vec<[String; 9]> = rows
                .into_iter()
                .zip(sizes)
                .map(|(row, size)| {
                    let [a, b, c, d, e, f, g, h] = row;
                    [a, b, c, d, e, f, g, h, size.text()]
                })
                .collect();
            let [a, b, c, d, e, f, g, h] = head;
            columns([a, b, c, d, e, f, g, h, "SIZE"], &rows)
        }
    }
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
pub(super) fn progress_printer<'a>(
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
