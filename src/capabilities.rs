//! Capability names and docker's `--cap-add`/`--cap-drop` rules.
//!
//! A set is a bit mask with bit N for capability N (`CAP_CHOWN` is bit 0), as
//! `/proc/PID/status` shows `CapBnd`.

use crate::error::{Error, Result};

/// The capabilities by number: `NAMES[n]` is `CAP_` + the name of capability `n`.
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Every capability of [`NAMES`].
pub const ALL: u64 = (1 << NAMES.len()) - 1;

/// The capabilities a container's command keeps by default: docker's set
/// (`CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
/// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP`).
pub const DEFAULT: u64 = 0xa80425fb;

/// The bit of a capability name as docker takes it: any case, with or
/// without `CAP_`. `ALL` is not a capability here (see [`adjust`]).
pub fn bit(name: &str) -> Option<u64> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| 1 << i)
}

/// Whether the set holds capability `name` (one of [`NAMES`]).
pub fn has(set: u64, name: &str) -> bool {
    bit(name).is_some_and(|b| set & b != 0)
}

/// The names in a set, `CAP_` prefixed, in number order.
pub fn names(set: u64) -> Vec<String> {
    NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| set & (1 << i) != 0)
        .map(|(_, n)| format!("CAP_{n}"))
        .collect()
}

/// The capabilities tupper itself has (its permitted set): the most a
/// container can get.
pub fn available() -> Result<u64> {
    rustix::thread::capabilities(None)
        .map(|sets| sets.permitted.bits())
        .map_err(|e| Error::os("read tupper's own capabilities (capget)", e))
}

/// docker's rules (`TweakCapabilities`): `--cap-add ALL` gives every
/// capability but the dropped ones; else `--cap-drop ALL` gives the added
/// ones only; else the default set without the dropped ones, plus the added
/// ones (an added capability wins over the same one dropped). "Every" is
/// what is `available` (tupper's own set); a capability added by name that
/// is not is refused, as docker refuses one "not available in the current
/// environment".
pub fn adjust(add: &[String], drop: &[String], available: u64) -> Result<u64> {
    let parse = |list: &[String], what: &str| -> Result<(bool, u64)> {
        let mut all = false;
        let mut set = 0;
        for name in list {
            if name.eq_ignore_ascii_case("ALL") {
                all = true;
                continue;
            }
            set |= bit(name).ok_or_else(|| {
                Error::msg(format!("{what} {name:?}: unknown capability"))
                    .with_advice("see capabilities(7) for the names, e.g. NET_ADMIN")
            })?;
        }
        Ok((all, set))
    };
    let (add_all, add) = parse(add, "--cap-add")?;
    let (drop_all, drop) = parse(drop, "--cap-drop")?;
    let missing = add & !available;
    if missing != 0 {
        return Err(Error::msg(format!(
            "--cap-add {}: tupper itself does not have it, so the container cannot",
            names(missing).join(", ")
        )));
    }
    Ok(if add_all {
        available & ALL & !drop
    } else if drop_all {
        add
    } else {
        (DEFAULT & !drop) | add
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_default_set_is_dockers() {
        assert_eq!(
            names(DEFAULT),
            [
                "CAP_CHOWN",
                "CAP_DAC_OVERRIDE",
                "CAP_FOWNER",
                "CAP_FSETID",
                "CAP_KILL",
                "CAP_SETGID",
                "CAP_SETUID",
                "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
                "CAP_SYS_CHROOT",
                "CAP_MKNOD",
                "CAP_AUDIT_WRITE",
                "CAP_SETFCAP",
            ]
        );
    }

    #[test]
    fn names_are_taken_as_docker_takes_them() {
        assert_eq!(bit("net_admin"), Some(1 << 12));
        assert_eq!(bit("CAP_NET_ADMIN"), Some(1 << 12));
        assert_eq!(bit("cap_sys_admin"), Some(1 << 21));
        assert_eq!(bit("CHECKPOINT_RESTORE"), Some(1 << 40));
        assert_eq!(bit("ALL"), None);
        assert_eq!(bit("NET_ADMINX"), None);
    }

    #[test]
    fn add_and_drop_follow_dockers_rules() {
        let adj = |a: &[&str], d: &[&str]| adjust(&strings(a), &strings(d), ALL).unwrap();
        assert_eq!(adj(&[], &[]), DEFAULT);
        assert_eq!(adj(&["NET_ADMIN"], &[]), DEFAULT | 1 << 12);
        assert_eq!(adj(&[], &["chown"]), DEFAULT & !1);
        assert_eq!(adj(&[], &["ALL"]), 0);
        assert_eq!(adj(&["NET_RAW"], &["all"]), 1 << 13);
        assert_eq!(adj(&["ALL"], &[]), ALL);
        assert_eq!(adj(&["ALL"], &["SYS_ADMIN"]), ALL & !(1 << 21));
        // Added and dropped: added wins.
        assert_eq!(adj(&["CHOWN"], &["CHOWN"]), DEFAULT);
        let e = adjust(&strings(&["BOGUS"]), &[], ALL)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--cap-add \"BOGUS\""), "{e}");
        let e = adjust(&[], &strings(&["x"]), ALL).unwrap_err().to_string();
        assert!(e.contains("--cap-drop \"x\""), "{e}");
        // What tupper lacks: ALL leaves it out, a name is refused.
        let without_resource = ALL & !(1 << 24);
        let all = adjust(&strings(&["ALL"]), &[], without_resource).unwrap();
        assert_eq!(all, without_resource);
        let e = adjust(&strings(&["SYS_RESOURCE"]), &[], without_resource)
            .unwrap_err()
            .to_string();
        assert!(e.contains("CAP_SYS_RESOURCE"), "{e}");
    }
}
