//! `ps --filter` and `prune --filter` (docker's `-f KEY=VALUE`), and the
//! labels they match (`run --label`, `--label-file`).
//!
//! As docker: filters with different keys must all match; several values of
//! one key match when any does, except `label`, where every one must.

use std::collections::BTreeMap;

use crate::container::{Record, Status};
use crate::error::{Error, Result};

/// The keys `ps --filter` takes.
pub const PS_KEYS: &[&str] = &[
    "id",
    "name",
    "label",
    "status",
    "exited",
    "ancestor",
    "volume",
    "network",
    "health",
    "restart-policy",
    "since",
    "before",
    "publish",
    "expose",
];

/// The values `restart-policy=` takes (podman's key; `on-failure` with any
/// count).
const RESTART_POLICIES: &[&str] = &["no", "always", "on-failure", "unless-stopped"];

/// The values `health=` takes (docker's: `none` without a check).
const HEALTHS: &[&str] = &["starting", "healthy", "unhealthy", "none"];

/// The keys `prune --filter` takes (docker's `container prune`: `label`, and
/// `label!`).
pub const PRUNE_KEYS: &[&str] = &["label", "label!", "until"];

/// The statuses `status=` takes (docker's list; tupper never shows
/// `removing`).
const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// A set of parsed filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    ids: Vec<String>,
    names: Vec<String>,
    labels: Vec<(String, Option<String>)>,
    not_labels: Vec<(String, Option<String>)>,
    statuses: Vec<String>,
    healths: Vec<String>,
    exited: Vec<i32>,
    ancestors: Vec<String>,
    volumes: Vec<String>,
    networks: Vec<String>,
    restart_policies: Vec<String>,
    /// `until=`: made before then (seconds, nanoseconds).
    until: Option<(i64, u32)>,
    /// `since=`, `before=`: containers named, made before or after which
    /// a container must be; made times once [`Filters::resolve`]d.
    since: Vec<String>,
    before: Vec<String>,
    since_made: Option<(i64, u32)>,
    before_made: Option<(i64, u32)>,
    /// `publish=`, `expose=`: container port ranges and protocol.
    publish: Vec<PortRange>,
    expose: Vec<PortRange>,
}

/// `publish=` and `expose=`'s value: `PORT[-PORT][/PROTO]` (tcp by
/// default, docker's).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortRange {
    first: u16,
    last: u16,
    protocol: String,
}

impl PortRange {
    fn parse(value: &str) -> Option<PortRange> {
        let (ports, protocol) = value.split_once('/').unwrap_or((value, "tcp"));
        if !["tcp", "udp"].contains(&protocol) {
            return None;
        }
        let (first, last) = ports.split_once('-').unwrap_or((ports, ports));
        let (first, last): (u16, u16) = (first.parse().ok()?, last.parse().ok()?);
        (first >= 1 && first <= last).then(|| PortRange {
            first,
            last,
            protocol: protocol.to_string(),
        })
    }

    /// Whether `port` (`PORT/PROTO`) is in it.
    fn holds(&self, port: u16, protocol: &str) -> bool {
        (self.first..=self.last).contains(&port) && protocol == self.protocol
    }
}

impl Filters {
    /// Parses `KEY=VALUE` filters of `command` (`ps`, `prune`), whose keys
    /// are `keys`.
    pub fn parse(command: &str, given: &[String], keys: &[&str]) -> Result<Filters> {
        let mut f = Filters::default();
        for g in given {
            let bad = |why: &str| {
                Error::msg(format!("{command} --filter {g:?}: {why}"))
                    .with_advice("see `tupper --help`")
            };
            let (key, value) = g.split_once('=').ok_or_else(|| bad("not KEY=VALUE"))?;
            if !keys.contains(&key) {
                return Err(bad(&format!(
                    "{key} is not a filter of {command} (it takes {})",
                    keys.join(", ")
                )));
            }
            let label = || match value.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (value.to_string(), None),
            };
            match key {
                "id" => f.ids.push(value.to_string()),
                "name" => f.names.push(value.to_string()),
                "label" => f.labels.push(label()),
                "label!" => f.not_labels.push(label()),
                "status" if STATUSES.contains(&value) => f.statuses.push(value.to_string()),
                "status" => {
                    return Err(bad(&format!(
                        "not a status (it is one of {})",
                        STATUSES.join(", ")
                    )))
                }
                "health" if HEALTHS.contains(&value) => f.healths.push(value.to_string()),
                "health" => {
                    return Err(bad(&format!(
                        "not a health status (it is one of {})",
                        HEALTHS.join(", ")
                    )))
                }
                "exited" => f.exited.push(
                    value
                        .parse()
                        .map_err(|_| bad("not an exit code (a number)"))?,
                ),
                "ancestor" => f.ancestors.push(value.to_string()),
                "network" => f.networks.push(value.to_string()),
                "restart-policy" if RESTART_POLICIES.contains(&value) => {
                    f.restart_policies.push(value.to_string())
                }
                "restart-policy" => {
                    return Err(bad(&format!(
                        "not a restart policy (it is one of {})",
                        RESTART_POLICIES.join(", ")
                    )))
                }
                "until" => {
                    let now = crate::timefmt::now_nanos();
                    f.until = Some(crate::timefmt::parse_instant(value, now).ok_or_else(|| {
                        bad("not a time (2026-12-01T15:04:05Z, 2026-12-01, seconds since 1970, or a duration before now: 24h)")
                    })?);
                }
                "since" => f.since.push(value.to_string()),
                "before" => f.before.push(value.to_string()),
                "publish" | "expose" => {
                    let range =
                        PortRange::parse(value).ok_or_else(|| bad("not PORT[-PORT][/tcp|udp]"))?;
                    match key {
                        "publish" => f.publish.push(range),
                        _ => f.expose.push(range),
                    }
                }
                _ => f.volumes.push(value.to_string()),
            }
        }
        Ok(f)
    }

    /// Whether they look at containers that are not running (`status`,
    /// `exited`, `since`, `before`): `ps` then lists every container, as
    /// docker's does.
    pub fn want_all(&self) -> bool {
        !self.statuses.is_empty()
            || !self.exited.is_empty()
            || !self.since.is_empty()
            || !self.before.is_empty()
    }

    /// Finds the containers `since=` and `before=` name, with `made`
    /// (their made time, or the error for a name that is none): the
    /// latest of the `since`s, the earliest of the `before`s.
    pub fn resolve(&mut self, made: &dyn Fn(&str) -> Result<(i64, u32)>) -> Result<()> {
        for name in &self.since {
            let t = made(name)?;
            self.since_made = Some(self.since_made.map_or(t, |s| s.max(t)));
        }
        for name in &self.before {
            let t = made(name)?;
            self.before_made = Some(self.before_made.map_or(t, |b| b.min(t)));
        }
        Ok(())
    }

    /// Whether container `r` passes.
    pub fn matches(&self, r: &Record) -> bool {
        let any = |values: &[String], f: &dyn Fn(&str) -> bool| {
            values.is_empty() || values.iter().any(|v| f(v))
        };
        let status = match r.status {
            Status::Running if r.paused => "paused",
            Status::Running => "running",
            Status::Exited if r.restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
            Status::Created => "created",
        };
        any(&self.ids, &|v| r.id.contains(v))
            && any(&self.names, &|v| {
                r.name.as_deref().is_some_and(|n| n.contains(v))
            })
            && self.labels.iter().all(|l| has_label(&r.labels, l))
            && !self.not_labels.iter().any(|l| has_label(&r.labels, l))
            && any(&self.statuses, &|v| v == status)
            && any(&self.healths, &|v| {
                v == r.health.as_ref().map_or("none", |h| h.status.as_str())
            })
            && (self.exited.is_empty()
                || (r.status == Status::Exited
                    && r.exit_code.is_some_and(|c| self.exited.contains(&c))))
            && any(&self.ancestors, &|v| r.image == v)
            && any(&self.networks, &|v| {
                // docker's: the user-defined network's name, or the mode
                // (`bridge` is the default bridge's); or a network it
                // was connected to.
                r.network.as_ref().is_some_and(|n| {
                    n.network.as_deref().unwrap_or(&n.mode) == v
                        || n.connected.iter().any(|c| c.network == v)
                })
            })
            && any(&self.restart_policies, &|v| {
                let policy = r.restart.as_deref().unwrap_or("no");
                v == policy.split(':').next().unwrap_or(policy)
            })
            && any(&self.volumes, &|v| {
                r.mounts
                    .iter()
                    .any(|m| m.name.as_deref() == Some(v) || m.destination == v)
            })
            && self.made_in_range((r.created_unix, r.created_nsec))
            && self.ports_match(r)
    }

    /// Whether an image with these labels (its configuration's), made at
    /// `made`, passes (`image prune`: `label`, `label!`, `until`).
    pub fn matches_image(&self, labels: &BTreeMap<String, String>, made: (i64, u32)) -> bool {
        self.labels.iter().all(|l| has_label(labels, l))
            && !self.not_labels.iter().any(|l| has_label(labels, l))
            && self.made_in_range(made)
    }

    /// `until`, `since`, `before`: when `made` is.
    fn made_in_range(&self, made: (i64, u32)) -> bool {
        self.until.map_or(true, |u| made < u)
            && self.since_made.map_or(true, |s| made > s)
            && self.before_made.map_or(true, |b| made < b)
    }

    /// `publish` (its published ports, by their container side) and
    /// `expose` (those, and the ports its configuration exposes).
    fn ports_match(&self, r: &Record) -> bool {
        if self.publish.is_empty() && self.expose.is_empty() {
            return true;
        }
        let published: Vec<(u16, String)> = r
            .network
            .as_ref()
            .map(|n| n.shown_ports().to_vec())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| crate::net::parse_publish(p).ok())
            .map(|m| (m.container_port, m.protocol.to_string()))
            .collect();
        let exposed: Vec<(u16, String)> = r
            .config
            .as_ref()
            .map(|c| c.exposed_ports.clone())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| {
                let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                Some((port.parse().ok()?, proto.to_string()))
            })
            .chain(published.iter().cloned())
            .collect();
        let any_of = |ranges: &[PortRange], ports: &[(u16, String)]| {
            ranges.is_empty()
                || ranges
                    .iter()
                    .any(|range| ports.iter().any(|(p, proto)| range.holds(*p, proto)))
        };
        any_of(&self.publish, &published) && any_of(&self.expose, &exposed)
    }
}

/// Whether `labels` has `key` (with `value`, when given).
fn has_label(labels: &BTreeMap<String, String>, (key, value): &(String, Option<String>)) -> bool {
    match (labels.get(key), value) {
        (Some(have), Some(want)) => have == want,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The labels of `--label KEY[=VALUE]` (a missing value is empty) and
/// `--label-file FILE` (one such line each; `#` lines and blank lines
/// skipped), files first, a later `KEY` winning.
pub fn labels(given: &[String], files: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut add = |entry: &str, from: &str| -> Result<()> {
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        if key.is_empty() {
            return Err(Error::msg(format!("{from} {entry:?}: a label needs a key"))
                .with_advice("see `tupper --help`"));
        }
        out.insert(key.to_string(), value.to_string());
        Ok(())
    };
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::os(format!("read --label-file {file}"), e))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            add(line, &format!("--label-file {file}:"))?;
        }
    }
    for g in given {
        add(g, "--label")?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str, labels: &[(&str, &str)], status: Status) -> Record {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "image": "bb", "command": [], "hostname": "h",
            "created": "", "created_unix": 0, "status": "running", "exit_code": null,
            "finished_unix": null, "remove": false,
        }))
        .unwrap();
        r.status = status;
        r.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        r
    }

    fn filters(given: &[&str]) -> Filters {
        let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
        Filters::parse("ps", &given, PS_KEYS).unwrap()
    }

    /// The first 4 characters of the IDs of `records` that `given` passes.
    fn passing(given: &[&str], records: &[&Record]) -> Vec<String> {
        let f = filters(given);
        records
            .iter()
            .filter(|r| f.matches(r))
            .map(|r| r.id[..4].to_string())
            .collect()
    }

    #[test]
    fn keys_and_values_combine_as_dockers() {
        let a = record(
            "aaaa11112222",
            "web-1",
            &[("suite", "x"), ("n", "1")],
            Status::Running,
        );
        let mut b = record("bbbb11112222", "db", &[("suite", "y")], Status::Exited);
        b.exit_code = Some(3);
        let pass = |f: &[&str]| passing(f, &[&a, &b]);
        assert_eq!(pass(&[]), ["aaaa", "bbbb"]);
        assert_eq!(pass(&["name=web"]), ["aaaa"]);
        assert_eq!(
            pass(&["name=web", "name=db"]),
            ["aaaa", "bbbb"],
            "one key: any"
        );
        assert_eq!(pass(&["label=suite"]), ["aaaa", "bbbb"]);
        assert_eq!(pass(&["label=suite=y"]), ["bbbb"]);
        assert_eq!(pass(&["label=suite", "label=n=1"]), ["aaaa"], "labels: all");
        assert_eq!(
            pass(&["label=suite", "status=exited"]),
            ["bbbb"],
            "keys: all"
        );
        assert_eq!(pass(&["exited=3"]), ["bbbb"]);
        assert_eq!(pass(&["exited=0"]), Vec::<String>::new());
        assert_eq!(pass(&["id=1111"]), ["aaaa", "bbbb"]);
        assert_eq!(pass(&["ancestor=bb", "status=running"]), ["aaaa"]);
        assert_eq!(pass(&["status=paused"]), Vec::<String>::new());
        assert!(filters(&["status=exited"]).want_all());
        assert!(!filters(&["name=x"]).want_all());
        // restart-policy (podman's): the policy's name, `no` without one.
        let mut c = record("cccc11112222", "c", &[], Status::Exited);
        c.restart = Some("on-failure:3".into());
        let pass3 = |f: &[&str]| passing(f, &[&a, &b, &c]);
        assert_eq!(pass3(&["restart-policy=on-failure"]), ["cccc"]);
        assert_eq!(pass3(&["restart-policy=no"]), ["aaaa", "bbbb"]);
        assert_eq!(pass3(&["restart-policy=always"]), Vec::<String>::new());
        // network: a user-defined network's name, else the mode.
        let mut on = crate::net::Settings {
            mode: "bridge".into(),
            network: Some("appnet".into()),
            ..Default::default()
        };
        c.network = Some(on.clone());
        on.network = None;
        b.network = Some(on);
        let pass4 = |f: &[&str]| passing(f, &[&a, &b, &c]);
        assert_eq!(pass4(&["network=appnet"]), ["cccc"]);
        assert_eq!(pass4(&["network=bridge"]), ["bbbb"]);
        assert_eq!(pass4(&["network=none"]), Vec::<String>::new());
    }

    #[test]
    fn made_times_and_ports_choose_as_dockers() {
        let mut a = record("aaaa11112222", "a", &[], Status::Exited);
        let mut b = record("bbbb11112222", "b", &[], Status::Exited);
        let mut c = record("cccc11112222", "c", &[], Status::Exited);
        (a.created_unix, b.created_unix, c.created_unix) = (100, 200, 200);
        c.created_nsec = 5;
        let made = |name: &str| -> Result<(i64, u32)> {
            match name {
                "a" => Ok((100, 0)),
                "b" => Ok((200, 0)),
                _ => Err(Error::msg(format!("no such container: {name}"))),
            }
        };
        let pass = |given: &[&str]| {
            let mut f = filters(given);
            f.resolve(&made).unwrap();
            [&a, &b, &c]
                .iter()
                .filter(|r| f.matches(r))
                .map(|r| r.name.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(pass(&["since=a"]), ["b", "c"]);
        assert_eq!(pass(&["since=b"]), ["c"], "to the nanosecond");
        assert_eq!(pass(&["before=b"]), ["a"]);
        assert_eq!(pass(&["since=a", "before=b"]), Vec::<String>::new());
        assert!(filters(&["since=a"]).want_all());
        assert!(filters(&["since=x"]).resolve(&made).is_err());
        let until = |t: &str| {
            let f = Filters::parse("prune", &[format!("until={t}")], PRUNE_KEYS).unwrap();
            [&a, &b].iter().filter(|r| f.matches(r)).count()
        };
        assert_eq!(until("150"), 1);
        assert_eq!(
            until("1970-01-01T00:03:20Z"),
            1,
            "made at 200: not before it"
        );
        assert_eq!(until("1h"), 2);
        // publish: the container side of a published port; expose: those
        // and the configuration's.
        a.network = Some(crate::net::Settings {
            mode: "bridge".into(),
            ports: vec!["8080:80/tcp".into(), "53/udp".into()],
            ..Default::default()
        });
        b.config = Some(crate::image_config::ImageConfig {
            exposed_ports: vec!["9000/tcp".into()],
            ..Default::default()
        });
        let pass = |given: &[&str]| passing(given, &[&a, &b]);
        assert_eq!(pass(&["publish=80"]), ["aaaa"]);
        assert_eq!(
            pass(&["publish=8080"]),
            Vec::<String>::new(),
            "the container's side"
        );
        assert_eq!(
            pass(&["publish=53"]),
            Vec::<String>::new(),
            "tcp by default"
        );
        assert_eq!(pass(&["publish=50-60/udp"]), ["aaaa"]);
        assert_eq!(pass(&["expose=9000"]), ["bbbb"]);
        assert_eq!(pass(&["expose=80", "expose=9000"]), ["aaaa", "bbbb"]);
        for bad in ["publish=x", "publish=80/sctp", "expose=90-80", "publish=0"] {
            assert!(
                Filters::parse("ps", &[bad.to_string()], PS_KEYS).is_err(),
                "{bad}"
            );
        }
        assert!(Filters::parse("prune", &["until=soon".to_string()], PRUNE_KEYS).is_err());
        assert!(Filters::parse("ps", &["until=1h".to_string()], PS_KEYS).is_err());
    }

    #[test]
    fn bad_filters_and_labels_are_errors() {
        for bad in [
            "nokey",
            "color=red",
            "status=sleeping",
            "exited=x",
            "restart-policy=on-failure:3",
        ] {
            let given = vec![bad.to_string()];
            assert!(Filters::parse("ps", &given, PS_KEYS).is_err(), "{bad}");
        }
        let given = vec!["name=x".to_string()];
        assert!(Filters::parse("prune", &given, PRUNE_KEYS).is_err());
        assert!(labels(&["=v".into()], &[]).is_err());
        let l = labels(
            &["a=1".into(), "b".into(), "a=2".into(), "c=x=y".into()],
            &[],
        )
        .unwrap();
        assert_eq!(
            l.into_iter().collect::<Vec<_>>(),
            [
                ("a".to_string(), "2".to_string()),
                ("b".into(), "".into()),
                ("c".into(), "x=y".into())
            ]
        );
    }
}
