//! An image's configuration, docker's `Config`: the default command
//! (`CMD`), the entrypoint, environment, working directory, user, labels and
//! stop signal of the containers made from it. Set by `import --change` and
//! `commit --change` with docker's Dockerfile instructions, kept in the
//! extended attribute `trusted.tupper.config` of the image's root directory
//! (JSON): written before the subvolume is made read-only, so it is the
//! image's as much as its files are, goes with it, and a snapshot of it (a
//! container, a committed image) has it too. `trusted.` attributes are
//! readable and writable by `CAP_SYS_ADMIN` only: a container's command
//! (without it, by default) neither sees nor changes it.

use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;

use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The extended attribute that holds the configuration.
const XATTR: &str = "trusted.tupper.config";

/// An image's configuration (see the module's text).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `CMD`: the command when `run` gives none (after the entrypoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `ENTRYPOINT`: what runs, with `CMD` or `run`'s command as arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `ENV`: `KEY=VALUE`, before `run -e`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `WORKDIR`, unless `run -w`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// `USER`, unless `run -u`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `LABEL`s, under `run --label`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `STOPSIGNAL`, a number, unless `run --stop-signal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<i32>,
    /// `EXPOSE`d ports (`80/tcp`): recorded, as docker's, for the user;
    /// they publish nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    /// `HEALTHCHECK`, under `run --health-*` (see [`crate::health`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::health::Healthcheck>,
}

impl ImageConfig {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == ImageConfig::default()
    }

    /// Applies docker's `--change` instructions, in order.
    pub fn apply_changes(&mut self, changes: &[String]) -> Result<()> {
        for change in changes {
            self.apply_change(change)?;
        }
        Ok(())
    }

    fn apply_change(&mut self, change: &str) -> Result<()> {
        let bad = |why: &str| {
            Error::msg(format!("--change {change:?}: {why}")).with_advice("see `tupper --help`")
        };
        let trimmed = change.trim();
        let (word, rest) = trimmed
            .split_once(char::is_whitespace)
            .map_or((trimmed, ""), |(w, r)| (w, r.trim()));
        let needs = |what: &str| -> Result<()> {
            match rest.is_empty() {
                true => Err(bad(&format!("{} needs {what}", word.to_ascii_uppercase()))),
                false => Ok(()),
            }
        };
        match word.to_ascii_uppercase().as_str() {
            "CMD" => {
                needs("a command")?;
                self.cmd = Some(command_form(rest).map_err(|e| bad(&e))?);
            }
            "ENTRYPOINT" => {
                needs("a command")?;
                self.entrypoint = Some(command_form(rest).map_err(|e| bad(&e))?);
            }
            "ENV" => {
                needs("KEY=VALUE")?;
                for (k, v) in pairs(rest).map_err(|e| bad(&e))? {
                    self.env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != k);
                    self.env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                needs("KEY=VALUE")?;
                for (k, v) in pairs(rest).map_err(|e| bad(&e))? {
                    self.labels.insert(k, v);
                }
            }
            "WORKDIR" => {
                needs("a directory")?;
                if !rest.starts_with('/') {
                    return Err(bad("WORKDIR must be an absolute path"));
                }
                self.workdir = Some(rest.to_string());
            }
            "USER" => {
                needs("a user")?;
                self.user = Some(rest.to_string());
            }
            "STOPSIGNAL" => {
                needs("a signal")?;
                self.stop_signal = Some(
                    crate::cli::parse_signal("STOPSIGNAL", rest)
                        .map_err(|e| bad(e.what()))?
                        .as_raw(),
                );
            }
            "EXPOSE" => {
                needs("a port")?;
                for port in rest.split_whitespace() {
                    for port in parse_exposed(port).map_err(|why| bad(&why))? {
                        if !self.exposed_ports.contains(&port) {
                            self.exposed_ports.push(port);
                        }
                    }
                }
            }
            "HEALTHCHECK" => {
                needs("CMD COMMAND or NONE")?;
                self.healthcheck =
                    Some(crate::health::Healthcheck::parse_instruction(rest).map_err(|e| bad(&e))?);
            }
            "VOLUME" | "ONBUILD" => {
                return Err(bad(&format!(
                    "{} is not supported (tupper has no anonymous volumes nor builds)",
                    word.to_ascii_uppercase()
                )))
            }
            _ => {
                return Err(bad(
                    "not an instruction --change takes (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, STOPSIGNAL, EXPOSE, HEALTHCHECK)",
                ))
            }
        }
        Ok(())
    }
}

/// A `CMD` or `ENTRYPOINT` argument: the exec form, a JSON array of strings,
/// or the shell form, run by `/bin/sh -c`.
fn command_form(s: &str) -> std::result::Result<Vec<String>, String> {
    if s.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(s)
            .map_err(|e| format!("not a JSON array of strings: {e}"));
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), s.into()])
}

/// The `KEY=VALUE` pairs of `ENV` and `LABEL` (values quoted as in a
/// Dockerfile: `"a b"`, `'a b'`, `\ `), or the older `KEY VALUE` (the rest
/// of the line is the value).
fn pairs(s: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let words = words(s)?;
    let first_has_eq = s.split_whitespace().next().is_some_and(|w| w.contains('='));
    if !first_has_eq {
        let (key, value) = s
            .split_once(char::is_whitespace)
            .ok_or_else(|| "give KEY=VALUE (or KEY VALUE)".to_string())?;
        return Ok(vec![(key.to_string(), value.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{w:?} is not KEY=VALUE")),
        })
        .collect()
}

/// `s` split at unquoted white space, quotes and backslashes removed.
fn words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => cur.extend(chars.next()),
                        Some(x) => cur.push(x),
                        None => return Err("an unclosed quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// The configuration of the image (or container) root `dir`: none set is
/// the default.
pub fn read(dir: BorrowedFd<'_>) -> Result<ImageConfig> {
    let mut buf = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::fgetxattr(dir, XATTR, &mut buf[..]) {
            Ok(n) => break n,
            Err(Errno::NODATA | Errno::OPNOTSUPP) => return Ok(ImageConfig::default()),
            Err(Errno::RANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => {
                return Err(Error::os(
                    format!("read the image configuration ({XATTR})"),
                    e,
                ))
            }
        }
    };
    serde_json::from_slice(&buf[..n])
        .map_err(|e| Error::msg(format!("read the image configuration ({XATTR}): {e}")))
}

/// Writes `config` on root `dir` (an empty one removes the attribute).
pub fn write(dir: BorrowedFd<'_>, config: &ImageConfig) -> Result<()> {
    if config.is_empty() {
        return match rustix::fs::fremovexattr(dir, XATTR) {
            Ok(()) | Err(Errno::NODATA) => Ok(()),
            Err(e) => Err(Error::os(format!("remove {XATTR}"), e)),
        };
    }
    let json =
        serde_json::to_vec(config).map_err(|e| Error::msg(format!("encode {XATTR}: {e}")))?;
    rustix::fs::fsetxattr(dir, XATTR, &json, rustix::fs::XattrFlags::empty())
        .map_err(|e| Error::os(format!("write {XATTR}"), e))
}

/// The ports of an `EXPOSE` word or an `--expose` value,
/// `PORT[-LAST][/tcp|/udp]` (docker's), as `PORT/PROTO` each; the error
/// says why not.
pub fn parse_exposed(word: &str) -> std::result::Result<Vec<String>, String> {
    let bad = || format!("{word:?} is not PORT[-LAST][/tcp|/udp]");
    let (ports, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    if !matches!(proto, "tcp" | "udp") {
        return Err(bad());
    }
    let (first, last) = ports.split_once('-').unwrap_or((ports, ports));
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(bad()),
    };
    let (first, last) = (port(first)?, port(last)?);
    if first > last {
        return Err(bad());
    }
    Ok((first..=last).map(|n| format!("{n}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(changes: &[&str]) -> Result<ImageConfig> {
        let mut c = ImageConfig::default();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        c.apply_changes(&changes)?;
        Ok(c)
    }

    #[test]
    fn dockerfile_instructions_as_docker_reads_them() {
        let c = changed(&[
            r#"CMD ["echo", "hi there"]"#,
            "entrypoint /bin/run --fast",
            r#"ENV A=1 B="two words" C=a\ b"#,
            "ENV D the rest of it",
            "ENV A=3",
            "LABEL suite=x",
            "WORKDIR /srv",
            "USER 1000:1000",
            "STOPSIGNAL SIGUSR1",
            "EXPOSE 80 53/udp 8000-8002",
        ])
        .unwrap();
        assert_eq!(c.cmd, Some(vec!["echo".into(), "hi there".into()]));
        assert_eq!(
            c.entrypoint,
            Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "/bin/run --fast".into()
            ])
        );
        assert_eq!(c.env, ["B=two words", "C=a b", "D=the rest of it", "A=3"]);
        assert_eq!(c.labels["suite"], "x");
        assert_eq!(c.workdir.as_deref(), Some("/srv"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.stop_signal, Some(10));
        assert_eq!(
            c.exposed_ports,
            ["80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
        for bad in [
            "CMD",
            "CMD [1, 2]",
            "VOLUME /data",
            "RUN make",
            "WORKDIR srv",
            "ENV A=\"x",
            "EXPOSE 0",
            "EXPOSE 81-80",
            "EXPOSE 80/sctp",
            "EXPOSE 80-",
            "STOPSIGNAL NOPE",
            "LABEL =x",
        ] {
            assert!(changed(&[bad]).is_err(), "{bad}");
        }
    }
}
