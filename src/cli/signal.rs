//! Signals by name and number, as docker writes them.

use super::parse::bad;
use super::*;

/// The signals `kill -s` takes by name (with or without `SIG`), by number.
pub(super) const SIGNALS: [(&str, i32); 31] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Signal `n` by its name, as docker's configurations write it: `SIGTERM`,
/// `SIGRTMIN+3`; the number when it has none.
pub(crate) fn signal_name(n: i32) -> String {
    match SIGNALS.iter().find(|(_, v)| *v == n) {
        Some((name, _)) => format!("SIG{name}"),
        None if (crate::launch::SIGRTMIN..=crate::launch::SIGRTMAX).contains(&n) => {
            format!("SIGRTMIN+{}", n - crate::launch::SIGRTMIN)
        }
        None => n.to_string(),
    }
}

/// Parses a signal as docker does: `TERM`, `SIGTERM`, `term`, `15`, or a
/// real-time one, `RTMIN+3`, `SIGRTMAX-1`, `RTMIN` (34 + n, 64 - n).
/// `flag` names the option in the error.
pub(crate) fn parse_signal(flag: &str, s: &str) -> Result<rustix::process::Signal> {
    use crate::launch::{SIGRTMAX, SIGRTMIN};
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let offset = |rest: &str, sign: char| -> Option<i32> {
        match rest {
            "" => Some(0),
            _ => rest
                .strip_prefix(sign)?
                .parse::<i32>()
                .ok()
                .filter(|n| *n >= 0),
        }
    };
    let number = match s.parse::<i32>() {
        Ok(n) => Some(n),
        Err(_) => match (name.strip_prefix("RTMIN"), name.strip_prefix("RTMAX")) {
            (Some(rest), _) => offset(rest, '+').map(|n| SIGRTMIN + n),
            (_, Some(rest)) => offset(rest, '-').map(|n| SIGRTMAX - n),
            _ => SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
        },
    };
    number
        .and_then(crate::launch::signal_from_raw)
        .ok_or_else(|| bad(format!("invalid {flag} {s:?}: not a signal")))
}
