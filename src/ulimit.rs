//! `--ulimit NAME=SOFT[:HARD]`: the command's resource limits (`setrlimit`),
//! as docker reads them.
//!
//! The child sets them after the go-ahead and before it drops its
//! capabilities (raising a hard limit needs `CAP_SYS_RESOURCE`, which
//! docker's default set does not keep); `exec`'s commands get the
//! container's. Without `--ulimit` the command inherits tupper's limits.

use rustix::process::{Resource, Rlimit};

use crate::error::{Error, Result};

/// One `--ulimit`: a resource and its soft and hard limits (`None`:
/// unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    /// The resource.
    pub resource: Resource,
    /// The soft limit.
    pub soft: Option<u64>,
    /// The hard limit.
    pub hard: Option<u64>,
}

/// docker's names and the resources they set.
const NAMES: [(&str, Resource); 16] = [
    ("as", Resource::As),
    ("core", Resource::Core),
    ("cpu", Resource::Cpu),
    ("data", Resource::Data),
    ("fsize", Resource::Fsize),
    ("locks", Resource::Locks),
    ("memlock", Resource::Memlock),
    ("msgqueue", Resource::Msgqueue),
    ("nice", Resource::Nice),
    ("nofile", Resource::Nofile),
    ("nproc", Resource::Nproc),
    ("rss", Resource::Rss),
    ("rtprio", Resource::Rtprio),
    ("rttime", Resource::Rttime),
    ("sigpending", Resource::Sigpending),
    ("stack", Resource::Stack),
];

impl Ulimit {
    /// The limit as `setrlimit` takes it.
    pub fn rlimit(&self) -> Rlimit {
        Rlimit {
            current: self.soft,
            maximum: self.hard,
        }
    }

    /// docker's name of the resource.
    pub fn name(&self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, r)| *r == self.resource)
            .map_or("?", |(n, _)| n)
    }
}

impl std::fmt::Display for Ulimit {
    /// `NAME=SOFT:HARD`, `-1` for unlimited: what [`parse`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = |l: Option<u64>| l.map_or("-1".to_string(), |n| n.to_string());
        write!(f, "{}={}:{}", self.name(), v(self.soft), v(self.hard))
    }
}

/// Parses `NAME=SOFT[:HARD]` (one value sets both; `-1` or `unlimited`
/// is no limit), refusing an unknown name and a soft limit over the hard one.
pub fn parse(s: &str) -> Result<Ulimit> {
    let bad = |why: &str| Error::msg(format!("--ulimit {s}: {why}"));
    let (name, values) = s
        .split_once('=')
        .ok_or_else(|| bad("not NAME=SOFT[:HARD] (nofile=1024:2048)"))?;
    let resource = NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            bad(&format!(
                "unknown limit {name} (one of {})",
                NAMES.map(|(n, _)| n).join(", ")
            ))
        })?;
    let value = |v: &str| -> Result<Option<u64>> {
        match v {
            "-1" | "unlimited" => Ok(None),
            _ => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n != u64::MAX)
                .map(Some)
                .ok_or_else(|| bad(&format!("{v} is not a limit (a number, or -1 for none)"))),
        }
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (value(s)?, value(h)?),
        None => {
            let v = value(values)?;
            (v, v)
        }
    };
    let over = match (soft, hard) {
        (None, Some(_)) => true,
        (Some(s), Some(h)) => s > h,
        _ => false,
    };
    if over {
        return Err(bad("the soft limit is above the hard limit"));
    }
    Ok(Ulimit {
        resource,
        soft,
        hard,
    })
}

/// Parses every `--ulimit`; a later one of the same name wins.
pub fn parse_all(args: &[String]) -> Result<Vec<Ulimit>> {
    let mut out: Vec<Ulimit> = Vec::new();
    for a in args {
        let u = parse(a)?;
        out.retain(|o| o.resource != u.resource);
        out.push(u);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_parse_as_docker_reads_them() {
        let u = parse("nofile=1024:2048").unwrap();
        assert_eq!(
            (u.resource, u.soft, u.hard),
            (Resource::Nofile, Some(1024), Some(2048))
        );
        let u = parse("nproc=50").unwrap();
        assert_eq!((u.soft, u.hard), (Some(50), Some(50)));
        let u = parse("core=-1").unwrap();
        assert_eq!((u.soft, u.hard), (None, None));
        assert_eq!(
            parse("memlock=64:unlimited").unwrap().to_string(),
            "memlock=64:-1"
        );
        for bad in [
            "nofile",
            "nofile=",
            "nofiles=1",
            "nofile=2:1",
            "nofile=-1:5",
            "nofile=a",
            "nofile=1:2:3",
            "=5",
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
        let all = parse_all(&["nofile=1".into(), "nproc=2".into(), "nofile=3".into()]).unwrap();
        assert_eq!(
            all.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
            ["nproc=2:2", "nofile=3:3"]
        );
    }
}
