//! Health checks (docker's `HEALTHCHECK`, `run --health-*`): a command run
//! in the container every interval, whose exit code says whether it is
//! healthy.
//!
//! The check is the container's configuration (the image's `HEALTHCHECK`
//! under `run`'s `--health-*` options, kept in the record). The process
//! that waits for the container's command (`run`, or the background holder
//! of `run -d` and `start`) runs it on a thread of its own for as long as
//! the command runs ([`monitor`]): each probe is an `exec` of the check's
//! command with stdin on `/dev/null` and stdout and stderr on a pipe (the
//! first 4,096 bytes are kept), killed after the timeout. The state is
//! docker's: `starting` until a probe succeeds or `retries` probes in a row
//! have failed (`unhealthy`), failures during the start period not counted
//! until one succeeded; `healthy` after each success. It is written, with
//! the last five probes, to `state/containers/ID.health` (replaced whole,
//! by rename), which `ps` (`Up 5 minutes (healthy)`, `--filter health=`)
//! and `inspect` (`health`) read; the last state stays when the container
//! ends, and goes with it. No probe runs while the container is paused.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::Store;

/// docker's defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
/// Between probes in the start period while `starting` (docker's, 25+).
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
/// How much of a probe's output is kept (docker's).
const MAX_OUTPUT: usize = 4096;
/// How many probes the state keeps (docker's).
const MAX_LOG: usize = 5;

/// A container's health check (docker's `Healthcheck` config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD-SHELL", COMMAND]` (run by `/bin/sh -c`), `["CMD", ARGS...]`,
    /// or `["NONE"]` (no check, over the image's); empty: the image's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// Between probes, milliseconds (0: the default, 30 s).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval_ms: u64,
    /// A probe that runs longer fails, milliseconds (0: 30 s).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout_ms: u64,
    /// Failures in this time after the start do not count until a probe
    /// succeeded, milliseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period_ms: u64,
    /// Between probes in the start period until one succeeded,
    /// milliseconds (0: the default, 5 s).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval_ms: u64,
    /// Failures in a row that make it `unhealthy` (0: the default, 3).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

impl Healthcheck {
    /// Whether it checks anything (not `NONE`, not empty).
    pub fn enabled(&self) -> bool {
        !self.test.is_empty() && self.test[0] != "NONE"
    }

    /// The command a probe runs.
    fn command(&self) -> Vec<String> {
        match self.test.first().map(String::as_str) {
            Some("CMD-SHELL") => {
                let mut c = vec!["/bin/sh".to_string(), "-c".to_string()];
                c.extend(self.test[1..].iter().cloned());
                c
            }
            _ => self.test[1..].to_vec(),
        }
    }

    fn interval(&self) -> Duration {
        or_default(self.interval_ms, DEFAULT_INTERVAL)
    }

    fn start_interval(&self) -> Duration {
        or_default(self.start_interval_ms, DEFAULT_START_INTERVAL)
    }

    fn timeout(&self) -> Duration {
        or_default(self.timeout_ms, DEFAULT_TIMEOUT)
    }

    fn retries(&self) -> u32 {
        match self.retries {
            0 => DEFAULT_RETRIES,
            n => n,
        }
    }

    /// `self` (the image's) under `over` (the run's options): each field
    /// `over` sets wins; `NONE` there turns the check off.
    pub fn under(&self, over: &Healthcheck) -> Healthcheck {
        let pick = |a: u64, b: u64| if b != 0 { b } else { a };
        Healthcheck {
            test: match over.test.is_empty() {
                true => self.test.clone(),
                false => over.test.clone(),
            },
            interval_ms: pick(self.interval_ms, over.interval_ms),
            timeout_ms: pick(self.timeout_ms, over.timeout_ms),
            start_period_ms: pick(self.start_period_ms, over.start_period_ms),
            start_interval_ms: pick(self.start_interval_ms, over.start_interval_ms),
            retries: match over.retries {
                0 => self.retries,
                n => n,
            },
        }
    }

    /// Parses a `HEALTHCHECK` instruction's words after the keyword:
    /// `[--interval=D] [--timeout=D] [--start-period=D] [--start-interval=D]
    /// [--retries=N] CMD
    /// COMMAND` (the shell form, or a JSON array: the exec form), or
    /// `NONE`.
    pub fn parse_instruction(rest: &str) -> std::result::Result<Healthcheck, String> {
        let mut h = Healthcheck::default();
        let mut rest = rest.trim_start();
        while let Some(option) = rest.strip_prefix("--") {
            let (word, after) = option
                .split_once(char::is_whitespace)
                .unwrap_or((option, ""));
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("HEALTHCHECK --{word}: expected --KEY=VALUE"))?;
            let ms = || parse_duration(value).map(|d| d.as_millis() as u64);
            match key {
                "interval" => h.interval_ms = ms()?,
                "timeout" => h.timeout_ms = ms()?,
                "start-period" => h.start_period_ms = ms()?,
                "start-interval" => h.start_interval_ms = ms()?,
                "retries" => {
                    h.retries = value
                        .parse()
                        .map_err(|_| format!("HEALTHCHECK --retries={value}: not a count"))?
                }
                _ => return Err(format!("HEALTHCHECK --{key}: not an option of it")),
            }
            rest = after.trim_start();
        }
        let (word, command) = rest
            .split_once(char::is_whitespace)
            .map_or((rest, ""), |(w, c)| (w, c.trim()));
        match word.to_ascii_uppercase().as_str() {
            "NONE" if command.is_empty() => h.test = vec!["NONE".into()],
            "CMD" if command.starts_with('[') => {
                let args: Vec<String> = serde_json::from_str(command).map_err(|e| {
                    format!("HEALTHCHECK CMD {command}: not a JSON array of strings: {e}")
                })?;
                if args.is_empty() {
                    return Err("HEALTHCHECK CMD []: an empty command".into());
                }
                h.test = std::iter::once("CMD".to_string()).chain(args).collect();
            }
            "CMD" if !command.is_empty() => h.test = vec!["CMD-SHELL".into(), command.into()],
            _ => return Err("HEALTHCHECK needs CMD COMMAND or NONE".into()),
        }
        Ok(h)
    }
}

fn or_default(ms: u64, default: Duration) -> Duration {
    match ms {
        0 => default,
        ms => Duration::from_millis(ms),
    }
}

/// Parses a duration as docker's options take it (Go's): numbers with
/// units `ns`, `us`, `ms`, `s`, `m`, `h` (`30s`, `1m30s`, `0.5s`); at least
/// 1 ms, or 0.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (such as 30s, 1m30s, 500ms)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * scale;
        rest = &rest[unit..];
    }
    if !(0.0..1e9).contains(&total) {
        return Err(bad());
    }
    let d = Duration::from_secs_f64(total);
    if d < Duration::from_millis(1) && !d.is_zero() {
        return Err(format!("{s:?} is less than 1ms"));
    }
    Ok(d)
}

/// A container's health as its checks left it (docker's `State.Health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    /// Failed probes in a row (that counted).
    pub failing_streak: u32,
    /// The last probes, oldest first.
    pub log: Vec<Probe>,
}

/// One probe of a health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// When it started, seconds since the epoch.
    pub start_unix: i64,
    /// When it ended, seconds since the epoch.
    pub end_unix: i64,
    /// The command's exit code (-1: killed after the timeout, or it could
    /// not run).
    pub exit_code: i32,
    /// The first 4,096 bytes of its stdout and stderr, or why it failed.
    pub output: String,
}

impl Store {
    /// The health of container `id` as its last check left it (`None`
    /// without one).
    pub(crate) fn read_health(&self, id: &str) -> Option<Health> {
        let bytes =
            crate::fsutil::read_file(self.records.as_fd(), format!("{id}.health").as_str()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write_health(&self, id: &str, health: &Health) -> Result<()> {
        let bytes = serde_json::to_vec(health).unwrap_or_default();
        crate::fsutil::write_atomic(self.records.as_fd(), &format!("{id}.health"), &bytes)
            .map_err(|e| Error::os(format!("write state/containers/{id}.health"), e))
    }
}

/// Runs `check` in running container `id` every interval until its PID 1
/// (`pid1`, a pidfd) has ended, writing its health after each probe (see
/// the module's text). Errors of a probe are its failure; an error writing
/// the state ends the checks, on stderr.
/// `--health-on-failure` (podman's): what happens to a container that
/// turns `unhealthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Nothing (the default, docker's).
    #[default]
    None,
    /// SIGKILL: its restart policy then applies (`always`, `on-failure`:
    /// exit 137), as after any end that no user asked for.
    Kill,
    /// `tupper stop`'s: its stop signal, SIGKILL after its stop timeout,
    /// and no restart.
    Stop,
}

impl OnFailure {
    /// Parses `none`, `kill` or `stop`.
    pub fn parse(s: &str) -> std::result::Result<OnFailure, String> {
        match s {
            "none" => Ok(OnFailure::None),
            "kill" => Ok(OnFailure::Kill),
            "stop" => Ok(OnFailure::Stop),
            "restart" => Err("restart is not supported: kill, with --restart always or on-failure, starts it again".into()),
            _ => Err("expected none, kill or stop".into()),
        }
    }

    /// Whether it is `none` (kept out of the record).
    pub fn is_none(&self) -> bool {
        *self == OnFailure::None
    }
}

/// Carries out `on_failure` on container `rec` (PID 1 `pid1`), which just
/// turned unhealthy.
fn act_on_failure(
    store: &Store,
    rec: &crate::container::Record,
    pid1: BorrowedFd<'_>,
    on_failure: OnFailure,
) {
    let send = |signal: i32| {
        let _ = rustix::process::pidfd_send_signal(
            pid1,
            rustix::process::Signal::from_named_raw(signal)
                .unwrap_or(rustix::process::Signal::KILL),
        );
    };
    match on_failure {
        OnFailure::None => {}
        OnFailure::Kill => send(libc::SIGKILL),
        OnFailure::Stop => {
            let _ = store.mark_stopped(rec, crate::restart::Stopped::Canceled);
            send(rec.stop_signal.unwrap_or(libc::SIGTERM));
            let grace = match rec.stop_timeout {
                Some(t) if t < 0 => return,
                Some(t) => Duration::from_secs(t as u64),
                None => Duration::from_secs(10),
            };
            if !ended_within(pid1, grace) {
                send(libc::SIGKILL);
            }
        }
    }
}

pub(crate) fn monitor(
    store: &Store,
    rec: &crate::container::Record,
    pid1: BorrowedFd<'_>,
    check: &Healthcheck,
) {
    let id = rec.id.as_str();
    let mut health = Health {
        status: "starting".into(),
        failing_streak: 0,
        log: Vec::new(),
    };
    let started = Instant::now();
    let start_period = Duration::from_millis(check.start_period_ms);
    let mut was_healthy = false;
    let mut result = store.write_health(id, &health);
    while result.is_ok() {
        // docker's: in the start period, until a probe succeeded, the
        // start interval.
        let wait = match health.status == "starting" && started.elapsed() < start_period {
            true => check.start_interval(),
            false => check.interval(),
        };
        if ended_within(pid1, wait) {
            return;
        }
        // Paused (`pause`): no probe, as docker's, until it goes on.
        if store.find_container(id).is_ok_and(|r| r.paused) {
            continue;
        }
        let probe = probe(store, id, check);
        if ended_within(pid1, Duration::ZERO) {
            return;
        }
        let before = health.status.clone();
        if probe.exit_code == 0 {
            was_healthy = true;
            health.status = "healthy".into();
            health.failing_streak = 0;
        } else if was_healthy || started.elapsed() >= start_period {
            health.failing_streak += 1;
            if health.failing_streak >= check.retries() {
                health.status = "unhealthy".into();
            }
        }
        health.log.push(probe);
        if health.log.len() > MAX_LOG {
            health.log.remove(0);
        }
        result = store.write_health(id, &health);
        // docker's event, when the status changes.
        if health.status != before {
            store.container_event(rec, &format!("health_status: {}", health.status), &[]);
        }
        if health.status == "unhealthy" && !rec.health_on_failure.is_none() {
            act_on_failure(store, rec, pid1, rec.health_on_failure);
            return;
        }
    }
    if let Err(e) = result {
        eprintln!("tupper: health check of container {id}: {}", e.what());
    }
}

/// Whether the process of pidfd `pid1` ends within `limit` (waits that
/// long); an error of the wait counts as its end.
fn ended_within(pid1: BorrowedFd<'_>, limit: Duration) -> bool {
    crate::container::wait_pidfd(pid1, limit).unwrap_or(true)
}

/// One probe: the check's command in the container, its output kept,
/// killed after the timeout.
fn probe(store: &Store, id: &str, check: &Healthcheck) -> Probe {
    let start_unix = crate::timefmt::now();
    let (exit_code, output) = match run_probe(store, id, check) {
        Ok(done) => done,
        Err(e) => (-1, e.what().to_string()),
    };
    Probe {
        start_unix,
        end_unix: crate::timefmt::now(),
        exit_code,
        output,
    }
}

fn run_probe(store: &Store, id: &str, check: &Healthcheck) -> Result<(i32, String)> {
    use rustix::fs::{Mode, OFlags};
    let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::os("create the health check's pipe", e))?;
    let null = rustix::fs::open(
        c"/dev/null",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::os("open /dev/null", e))?;
    let spec = crate::exec::ExecSpec {
        command: check.command(),
        stdio: Some(std::sync::Arc::new(crate::launch::Stdio::new(
            null,
            out_w
                .try_clone()
                .map_err(|e| Error::os("copy the health check's pipe", e))?,
            out_w,
        )?)),
        ..Default::default()
    };
    let exec = match store.exec(id, &spec) {
        Ok(e) => e,
        // Could not start (126, 127): its reason is the output.
        Err(e) => return Ok((e.exit_code(), e.what().to_string())),
    };
    drop(spec);
    let mut output = Vec::new();
    let deadline = Instant::now() + check.timeout();
    let pidfd = exec.pidfd().expect("not waited for");
    let timed_out = read_until_exit(&out_r, pidfd, deadline, &mut output);
    if timed_out {
        drop(exec);
        return Ok((
            -1,
            format!(
                "Health check exceeded timeout ({}ms)",
                check.timeout().as_millis()
            ),
        ));
    }
    let code = exec.wait()?;
    Ok((code, String::from_utf8_lossy(&output).into_owned()))
}

/// Reads `pipe` into `output` (its first [`MAX_OUTPUT`] bytes) until the
/// process of `pidfd` has ended and the pipe is drained or empty; whether
/// `deadline` came first.
fn read_until_exit(
    pipe: &OwnedFd,
    pidfd: BorrowedFd<'_>,
    deadline: Instant,
    output: &mut Vec<u8>,
) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let mut pipe_open = true;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        let timeout = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let mut fds = [
            PollFd::new(&pidfd, PollFlags::IN),
            PollFd::new(pipe, PollFlags::IN),
        ];
        let n = match pipe_open {
            true => rustix::event::poll(&mut fds, Some(&timeout)),
            false => rustix::event::poll(&mut fds[..1], Some(&timeout)),
        };
        match n {
            Ok(0) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
            Ok(_) => {}
        }
        if pipe_open && !fds[1].revents().is_empty() {
            pipe_open = read_some(pipe, output);
            continue;
        }
        if !fds[0].revents().is_empty() {
            // Ended: what is left in the pipe now, without waiting for
            // what the probe started and left holding it.
            while pipe_open {
                let mut ready = [PollFd::new(pipe, PollFlags::IN)];
                let now = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                pipe_open = match rustix::event::poll(&mut ready, Some(&now)) {
                    Ok(1) => read_some(pipe, output),
                    _ => false,
                };
            }
            return false;
        }
    }
}

/// Reads what `pipe` has into `output`, keeping its first [`MAX_OUTPUT`]
/// bytes; whether it is still open (not at its end, no error).
fn read_some(pipe: &OwnedFd, output: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    match rustix::io::read(pipe, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let room = MAX_OUTPUT.saturating_sub(output.len());
            output.extend_from_slice(&buf[..n.min(room)]);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_docker_takes_them() {
        for (s, ms) in [
            ("30s", 30_000),
            ("1m30s", 90_000),
            ("500ms", 500),
            ("0.5s", 500),
            ("1h", 3_600_000),
            ("0", 0),
        ] {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_millis(ms), "{s}");
        }
        for bad in ["", "5", "s", "1x", "1.2.3s", "100us", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instructions_and_run_options_over_them() {
        let h =
            Healthcheck::parse_instruction("--interval=5s --retries=2 CMD test -e /ok").unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "test -e /ok"]);
        assert_eq!((h.interval_ms, h.retries), (5000, 2));
        let exec = Healthcheck::parse_instruction(r#"CMD ["/bin/true", "x"]"#).unwrap();
        assert_eq!(exec.test, ["CMD", "/bin/true", "x"]);
        assert_eq!(exec.command(), ["/bin/true", "x"]);
        assert_eq!(h.command(), ["/bin/sh", "-c", "test -e /ok"]);
        let none = Healthcheck::parse_instruction("NONE").unwrap();
        assert!(!none.enabled() && h.enabled());
        for bad in [
            "",
            "CMD",
            "--interval 5s CMD x",
            "--foo=1 CMD x",
            "CMD []",
            "NONE x",
        ] {
            assert!(Healthcheck::parse_instruction(bad).is_err(), "{bad}");
        }
        let run = Healthcheck {
            timeout_ms: 100,
            ..Default::default()
        };
        let merged = h.under(&run);
        assert_eq!(merged.test, h.test);
        assert_eq!(
            (merged.interval_ms, merged.timeout_ms, merged.retries),
            (5000, 100, 2)
        );
        assert!(!h.under(&none).enabled());
        assert_eq!(merged.interval(), Duration::from_secs(5));
        assert_eq!(Healthcheck::default().retries(), 3);
        assert_eq!(merged.start_interval(), Duration::from_secs(5));
        let early = Healthcheck::parse_instruction(
            "--start-period=1m --start-interval=500ms CMD test -e /ok",
        )
        .unwrap();
        assert_eq!(
            (early.start_period_ms, early.start_interval_ms),
            (60_000, 500)
        );
        let merged = early.under(&Healthcheck {
            start_interval_ms: 200,
            ..Default::default()
        });
        assert_eq!(merged.start_interval(), Duration::from_millis(200));
        assert_eq!(merged.start_period_ms, 60_000);
    }
}
