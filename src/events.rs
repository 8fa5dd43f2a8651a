//! docker's `events`: what happened to the store's containers, images,
//! networks and volumes, kept in `state/events.log` for `tupper events`.
//!
//! tupper has no daemon to hold events in memory: each command that does
//! something appends a line of JSON to the file (one `write` with
//! `O_APPEND`, so that lines of concurrent commands do not mix), and
//! `events` reads it, following it as it grows. Past 1 MiB the file
//! becomes `events.log.1` (the one before is dropped): docker's daemon
//! keeps its last events in memory, tupper its last two files. An event is
//! best effort: one that cannot be written (a full disk) is lost, and the
//! command goes on.
//!
//! A line has docker's fields, so that `--format` templates written for
//! docker work: `{"status":"start","id":"ID","from":"IMAGE","Type":
//! "container","Action":"start","Actor":{"ID":"ID","Attributes":{"image":
//! "busybox","name":"web"}},"scope":"local","time":SECONDS,"timeNano":
//! NANOSECONDS}` (`status`, `id` and `from` for containers only, as docker).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::container::Record;
use crate::error::{Error, Result};
use crate::store::Store;

/// The log, relative to `state/containers`.
const FILE: &str = "../events.log";

/// The file before it.
const OLDER: &str = "../events.log.1";

/// The size past which the log starts anew.
const MAX_SIZE: u64 = 1 << 20;

/// The kinds of objects events are about (docker's `type=` filter).
pub const TYPES: &[&str] = &["container", "image", "network", "volume"];

/// One event, as stored and as `--format` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// docker's old field: the action, for containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// docker's old field: the container's ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// docker's old field: the container's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `container`, `image`, `network` or `volume`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// What happened: `create`, `start`, `die`, `destroy`, `tag`, ...
    #[serde(rename = "Action")]
    pub action: String,
    /// What it happened to.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// Always `local`.
    pub scope: String,
    /// When, seconds since the epoch.
    pub time: i64,
    /// When, nanoseconds since the epoch.
    #[serde(rename = "timeNano")]
    pub time_nano: i128,
}

/// The object of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Its ID (an image's: its name).
    #[serde(rename = "ID")]
    pub id: String,
    /// Its name, image, exit code, ...
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event that happens now, without docker's old fields.
    fn now(kind: &str, action: &str, id: &str, attributes: &[(&str, &str)]) -> Event {
        let (secs, nanos) = crate::timefmt::now_nanos();
        Event {
            status: None,
            id: None,
            from: None,
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes: attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            scope: "local".into(),
            time: secs,
            time_nano: i128::from(secs) * 1_000_000_000 + i128::from(nanos),
        }
    }

    /// docker's line for it: `TIME TYPE ACTION ID (KEY=VALUE, ...)`.
    pub fn line(&self) -> String {
        let secs = self.time_nano.div_euclid(1_000_000_000) as i64;
        let nanos = self.time_nano.rem_euclid(1_000_000_000) as u32;
        let attributes: Vec<String> = self
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{} {} {} {} ({})\n",
            crate::timefmt::rfc3339_nano(secs, nanos),
            self.kind,
            self.action,
            self.actor.id,
            attributes.join(", ")
        )
    }
}

impl Store {
    /// Appends an event about `kind` `id` to the log (best effort).
    pub(crate) fn event(&self, kind: &str, action: &str, id: &str, attributes: &[(&str, &str)]) {
        append_event(self.records.as_fd(), kind, action, id, attributes);
    }

    /// Appends an event about container `rec` (docker's attributes: its
    /// name, image and labels, and `extra`).
    pub(crate) fn container_event(&self, rec: &Record, action: &str, extra: &[(&str, &str)]) {
        self.container_event_as(rec, rec.name.as_deref(), action, extra);
    }

    /// [`Store::container_event`] with `name` as its name (the one on
    /// disk, which a rename may have changed since `rec` was read).
    pub(crate) fn container_event_as(
        &self,
        rec: &Record,
        name: Option<&str>,
        action: &str,
        extra: &[(&str, &str)],
    ) {
        let mut attributes: Vec<(&str, &str)> = rec
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        attributes.push(("image", rec.image.as_str()));
        if let Some(name) = name {
            attributes.push(("name", name));
        }
        attributes.extend_from_slice(extra);
        let mut event = Event::now("container", action, &rec.id, &attributes);
        // docker's old fields, which containers' events have.
        event.status = Some(action.to_string());
        event.id = Some(rec.id.clone());
        event.from = Some(rec.image.clone());
        write_event(self.records.as_fd(), &event);
    }

    /// The log's files, oldest first, open for reading (`tupper events`).
    pub fn event_files(&self) -> Result<Vec<OwnedFd>> {
        let mut files = Vec::new();
        for name in [OLDER, FILE] {
            match open_read(self.records.as_fd(), name) {
                Ok(fd) => files.push(fd),
                Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(Error::os("open state/events.log", e)),
            }
        }
        Ok(files)
    }

    /// The log as it is named now, and its inode (a follower notices a
    /// new file by it).
    pub fn current_event_file(&self) -> Option<(OwnedFd, u64)> {
        let fd = open_read(self.records.as_fd(), FILE).ok()?;
        let ino = rfs::fstat(&fd).ok()?.st_ino;
        Some((fd, ino))
    }
}

/// A running exec's `exec_die` event, told once it ends
/// ([`crate::exec::Exec`]).
#[derive(Debug)]
pub struct ExecDie {
    /// `state/containers`.
    dir: OwnedFd,
    /// The container's ID.
    container: String,
    /// docker's attributes: `execID`, the container's `image` and `name`.
    attributes: Vec<(String, String)>,
}

impl ExecDie {
    /// Tells that the exec ended with `code`.
    pub fn tell(self, code: i32) {
        let code = code.to_string();
        let mut attributes: Vec<(&str, &str)> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        attributes.push(("exitCode", &code));
        append_event(
            self.dir.as_fd(),
            "container",
            "exec_die",
            &self.container,
            &attributes,
        );
    }
}

impl Store {
    /// docker's `exec_create` and `exec_start` events (`ACTION: COMMAND`)
    /// of an exec in container `rec` that runs `command`, and what tells
    /// its end (`None` when the log cannot be reached).
    pub(crate) fn exec_started(&self, rec: &Record, command: &[String]) -> Option<ExecDie> {
        let exec_id = crate::names::new_id().ok()?;
        let shown = command.join(" ");
        let mut attributes = vec![("execID".to_string(), exec_id)];
        attributes.push(("image".into(), rec.image.clone()));
        if let Some(name) = &rec.name {
            attributes.push(("name".into(), name.clone()));
        }
        let pairs: Vec<(&str, &str)> = attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for action in ["exec_create", "exec_start"] {
            let action = format!("{action}: {shown}");
            append_event(self.records.as_fd(), "container", &action, &rec.id, &pairs);
        }
        Some(ExecDie {
            dir: rustix::io::fcntl_dupfd_cloexec(&self.records, 3).ok()?,
            container: rec.id.clone(),
            attributes,
        })
    }
}

/// Appends an event about `kind` `id` to the log of the store whose
/// `state/` directory `state_dir` is in (`state/containers`,
/// `state/networks`: the log is `../events.log` from either).
pub(crate) fn append_event(
    state_dir: BorrowedFd<'_>,
    kind: &str,
    action: &str,
    id: &str,
    attributes: &[(&str, &str)],
) {
    write_event(state_dir, &Event::now(kind, action, id, attributes));
}

/// Appends `event` to the log, `../events.log` from `dir` (best effort).
fn write_event(dir: BorrowedFd<'_>, event: &Event) {
    let Ok(mut line) = serde_json::to_vec(event) else {
        return;
    };
    line.push(b'\n');
    let Ok(fd) = rfs::openat(
        dir,
        FILE,
        OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    ) else {
        return;
    };
    // One write: lines of concurrent commands do not mix.
    if rustix::io::write(&fd, &line).is_err() {
        return;
    }
    // Full: it starts anew (a concurrent rotation loses at most the older
    // file's events).
    if rfs::fstat(&fd).is_ok_and(|st| st.st_size as u64 > MAX_SIZE) {
        let _ = rfs::renameat(dir, FILE, dir, OLDER);
    }
}

fn open_read(dir: BorrowedFd<'_>, name: &str) -> rustix::io::Result<OwnedFd> {
    rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
}

/// `events --filter`: docker's keys; several values of one key match when
/// any does, keys must all match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    types: Vec<String>,
    actions: Vec<String>,
    containers: Vec<String>,
    images: Vec<String>,
    networks: Vec<String>,
    volumes: Vec<String>,
    labels: Vec<(String, Option<String>)>,
}

impl EventFilter {
    /// Parses `KEY=VALUE`s: `type`, `event` (an action), `container` (a
    /// name or ID), `image`, `network`, `volume`, `label` (`KEY` or
    /// `KEY=VALUE`).
    pub fn parse(given: &[String]) -> Result<EventFilter> {
        let mut f = EventFilter::default();
        for g in given {
            let Some((key, value)) = g.split_once('=') else {
                return Err(Error::msg(format!(
                    "events --filter {g:?}: KEY=VALUE (type, event, container, image, network, volume, label)"
                )));
            };
            let value = value.to_string();
            match key {
                "type" if TYPES.contains(&value.as_str()) => f.types.push(value),
                "type" => {
                    return Err(Error::msg(format!(
                        "events --filter type={value}: container, image, network or volume"
                    )))
                }
                "event" => f.actions.push(value),
                "container" => f.containers.push(value),
                "image" => f.images.push(value),
                "network" => f.networks.push(value),
                "volume" => f.volumes.push(value),
                "label" => f.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value, None),
                }),
                other => {
                    return Err(Error::msg(format!(
                        "events --filter {other}: the keys are type, event, container, image, network, volume and label"
                    )))
                }
            }
        }
        Ok(f)
    }

    /// Whether `e` passes.
    pub fn matches(&self, e: &Event) -> bool {
        let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str);
        let any = |values: &[String], ok: &dyn Fn(&str) -> bool| {
            values.is_empty() || values.iter().any(|v| ok(v))
        };
        let of_kind = |kind: &str, values: &[String]| {
            any(values, &|v| {
                e.kind == kind && (e.actor.id == v || attr("name") == Some(v))
            })
        };
        any(&self.types, &|v| e.kind == v)
            && any(&self.actions, &|v| {
                // `health_status` matches `health_status: healthy`.
                e.action == v || e.action.split(':').next() == Some(v)
            })
            && of_kind("container", &self.containers)
            && any(&self.images, &|v| {
                e.from.as_deref() == Some(v) || (e.kind == "image" && e.actor.id == v)
            })
            && of_kind("network", &self.networks)
            && of_kind("volume", &self.volumes)
            && self.labels.iter().all(|(k, v)| match v {
                Some(v) => attr(k) == Some(v.as_str()),
                None => attr(k).is_some(),
            })
    }
}

/// The events in `data` (whole lines; what does not parse is skipped).
pub fn parse_lines(data: &[u8]) -> impl Iterator<Item = Event> + '_ {
    data.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            status: (kind == "container").then(|| action.to_string()),
            id: (kind == "container").then(|| id.to_string()),
            from: (kind == "container").then(|| "busybox".to_string()),
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            scope: "local".into(),
            time: 1_795_922_470,
            time_nano: 1_795_922_470_000_000_042,
        }
    }

    #[test]
    fn a_line_is_dockers() {
        let e = event(
            "container",
            "die",
            "0123456789ab",
            &[("name", "web"), ("image", "busybox"), ("exitCode", "3")],
        );
        assert_eq!(
            e.line(),
            "2026-11-29T03:21:10.000000042Z container die 0123456789ab (exitCode=3, image=busybox, name=web)\n"
        );
        let json = serde_json::to_string(&e).unwrap();
        assert!(
            json.contains(r#""Type":"container","Action":"die","Actor":{"ID":"0123456789ab""#),
            "{json}"
        );
        assert_eq!(
            parse_lines(format!("{json}\nnot json\n{json}\n").as_bytes()).count(),
            2
        );
    }

    #[test]
    fn filters_are_dockers() {
        let start = event(
            "container",
            "start",
            "0123456789ab",
            &[("name", "web"), ("image", "busybox"), ("tier", "db")],
        );
        let tag = event("image", "tag", "busybox", &[("name", "bb")]);
        let health = event(
            "container",
            "health_status: healthy",
            "0123456789ab",
            &[("name", "web")],
        );
        let f = |given: &[&str]| {
            EventFilter::parse(&given.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        assert!(f(&[]).matches(&start) && f(&[]).matches(&tag));
        assert!(f(&["type=container"]).matches(&start) && !f(&["type=container"]).matches(&tag));
        assert!(f(&["event=start", "event=die"]).matches(&start));
        assert!(
            !f(&["event=start", "type=image"]).matches(&start),
            "keys must all match"
        );
        assert!(f(&["event=health_status"]).matches(&health));
        assert!(
            f(&["container=web"]).matches(&start) && f(&["container=0123456789ab"]).matches(&start)
        );
        assert!(!f(&["container=db"]).matches(&start) && !f(&["container=busybox"]).matches(&tag));
        assert!(f(&["image=busybox"]).matches(&start) && f(&["image=busybox"]).matches(&tag));
        assert!(f(&["label=tier"]).matches(&start) && f(&["label=tier=db"]).matches(&start));
        assert!(!f(&["label=tier=web"]).matches(&start));
        for bad in ["type=pod", "what=ever", "container"] {
            assert!(EventFilter::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
