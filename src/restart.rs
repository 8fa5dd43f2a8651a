//! Restart policies (`--restart`), docker's: whether a container whose
//! command ended starts again, and after how long.
//!
//! tupper has no daemon: the process that holds a detached container
//! (`run -d`, `start`) applies its policy ([`crate::run::Container::wait_restarting`]).
//! `stop`, `rm -f` and a `kill` that ends the container ask it not to
//! ([`Stopped`], kept in the record), as docker's do.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// `--restart`: when a container whose command ended starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Never (`no`, the default).
    #[default]
    No,
    /// Whatever its exit, unless a `stop` (or a `kill` that ends it) asked
    /// otherwise (`always`).
    Always,
    /// As `always`, and not after any `kill` (`unless-stopped`).
    UnlessStopped,
    /// When its exit code is not 0, at most `max` times (0: no limit)
    /// since it was last started by hand (`on-failure[:MAX]`).
    OnFailure {
        /// The most restarts; 0: no limit.
        max: u32,
    },
}

impl Policy {
    /// Parses `no`, `always`, `unless-stopped`, `on-failure` or
    /// `on-failure:MAX` (MAX a positive count; docker's spellings).
    pub fn parse(s: &str) -> Result<Policy> {
        let bad = |why: &str| Error::msg(format!("invalid --restart {s:?}: {why}"));
        match s.split_once(':') {
            None => match s {
                "no" | "" => Ok(Policy::No),
                "always" => Ok(Policy::Always),
                "unless-stopped" => Ok(Policy::UnlessStopped),
                "on-failure" => Ok(Policy::OnFailure { max: 0 }),
                _ => Err(bad(
                    "expected no, always, unless-stopped or on-failure[:MAX]",
                )),
            },
            Some(("on-failure", n)) => match n.parse::<u32>() {
                Ok(max) if max > 0 && n.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(Policy::OnFailure { max })
                }
                _ => Err(bad("MAX, the most restarts, is a positive count")),
            },
            Some(_) => Err(bad("only on-failure takes a count (on-failure:MAX)")),
        }
    }

    /// Whether the container may ever be restarted.
    pub fn restarts(self) -> bool {
        self != Policy::No
    }

    /// Whether a container under this policy starts again after exit
    /// `code`, `count` restarts since it was started by hand, after
    /// `stopped` (docker's `ShouldRestart`).
    pub fn restarts_after(self, code: i32, count: u32, stopped: Stopped) -> bool {
        if stopped == Stopped::Canceled {
            return false;
        }
        match self {
            Policy::No => false,
            Policy::Always => true,
            Policy::UnlessStopped => stopped == Stopped::No,
            Policy::OnFailure { max } => code != 0 && (max == 0 || count < max),
        }
    }
}

impl Policy {
    /// Whether docker's daemon, as it starts, starts a container under
    /// this policy that does not run (`tupper start --all --boot`): one
    /// that ran before (`ran`: not only created) and ended with
    /// `exit_code` (`None`: its holder died with it, docker's 255), which
    /// a user `stopped` or not since its last start by hand. `always`
    /// whatever happened, `unless-stopped` unless a user stopped it,
    /// `on-failure` after an exit other than 0.
    pub fn starts_at_boot(self, ran: bool, exit_code: Option<i32>, stopped: Stopped) -> bool {
        ran && match self {
            Policy::No => false,
            Policy::Always => true,
            Policy::UnlessStopped => stopped == Stopped::No,
            Policy::OnFailure { .. } => exit_code != Some(0),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::No => f.write_str("no"),
            Policy::Always => f.write_str("always"),
            Policy::UnlessStopped => f.write_str("unless-stopped"),
            Policy::OnFailure { max: 0 } => f.write_str("on-failure"),
            Policy::OnFailure { max } => write!(f, "on-failure:{max}"),
        }
    }
}

/// What a user did to a running container since its last start by hand
/// (docker's `HasBeenManuallyStopped` and canceled restart manager).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Stopped {
    /// Nothing.
    #[default]
    No,
    /// A `kill` with a signal other than SIGKILL and its stop signal, when
    /// it has one of its own: `unless-stopped` does not restart it.
    Manually,
    /// `stop`, `rm -f`, or a `kill` with SIGKILL or its stop signal: no
    /// policy restarts it.
    Canceled,
}

/// The wait before a restart, docker's: 100 ms, doubled at each restart up
/// to a minute, and 100 ms again after a run of 10 s or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backoff {
    last: Duration,
}

/// The first wait.
const FIRST: Duration = Duration::from_millis(100);
/// The longest.
const MAX: Duration = Duration::from_secs(60);
/// A run at least this long starts the waits over.
const RESET_AFTER: Duration = Duration::from_secs(10);

impl Backoff {
    /// The wait before the restart of a container whose run lasted `ran`.
    pub fn next(&mut self, ran: Duration) -> Duration {
        self.last = match self.last.is_zero() || ran >= RESET_AFTER {
            true => FIRST,
            false => (self.last * 2).min(MAX),
        };
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_docker_spells_them() {
        for (s, p) in [
            ("no", Policy::No),
            ("always", Policy::Always),
            ("unless-stopped", Policy::UnlessStopped),
            ("on-failure", Policy::OnFailure { max: 0 }),
            ("on-failure:3", Policy::OnFailure { max: 3 }),
        ] {
            assert_eq!(Policy::parse(s).unwrap(), p, "{s}");
            assert_eq!(Policy::parse(&p.to_string()).unwrap(), p, "{s}");
        }
        for bad in [
            "sometimes",
            "always:3",
            "on-failure:0",
            "on-failure:-1",
            "on-failure:+2",
            "on-failure:x",
            "on-failure:",
        ] {
            let e = Policy::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid --restart {bad:?}")), "{e}");
        }
    }

    #[test]
    fn which_exits_restart() {
        use Stopped::*;
        let always = Policy::Always;
        assert!(always.restarts_after(0, 7, No) && always.restarts_after(1, 0, Manually));
        assert!(!always.restarts_after(137, 0, Canceled));
        let unless = Policy::UnlessStopped;
        assert!(unless.restarts_after(0, 0, No));
        assert!(!unless.restarts_after(0, 0, Manually) && !unless.restarts_after(1, 0, Canceled));
        let twice = Policy::OnFailure { max: 2 };
        assert!(
            !twice.restarts_after(0, 0, No),
            "a success is not a failure"
        );
        assert!(twice.restarts_after(1, 0, No) && twice.restarts_after(1, 1, Manually));
        assert!(!twice.restarts_after(1, 2, No), "at most twice");
        assert!(Policy::OnFailure { max: 0 }.restarts_after(3, 1000, No));
        assert!(!Policy::No.restarts_after(1, 0, No));
    }

    #[test]
    fn waits_double_to_a_minute_and_start_over_after_a_long_run() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(1);
        let waits: Vec<u64> = (0..12).map(|_| b.next(short).as_millis() as u64).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]
        );
        assert_eq!(b.next(Duration::from_secs(10)), Duration::from_millis(100));
        assert_eq!(b.next(short), Duration::from_millis(200));
    }
}
