//! Errors that name the operation and the object, and map to docker's exit codes.
//!
//! Every failure tupper reports is one line: `<operation> <object>: <cause>`,
//! for example `snapshot images/alpine -> containers/web: File exists (os error 17)`.
//! A known errno may carry advice (`ENOTTY` on a btrfs ioctl: the store is not on
//! btrfs). The exit code follows docker: 125 when tupper itself failed, 126 when
//! the command cannot be invoked, 127 when it is not found.

use std::fmt;
use std::io;

/// Which docker exit code a failure maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// tupper itself failed (exit 125).
    Runtime,
    /// The container's command exists but cannot be invoked (exit 126).
    CannotInvoke,
    /// The container's command was not found (exit 127).
    NotFound,
}

impl Kind {
    /// The process exit code for this kind of failure.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Runtime => 125,
            Kind::CannotInvoke => 126,
            Kind::NotFound => 127,
        }
    }
}

/// A failure of one operation on one object.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    /// The operation and its object, e.g. `snapshot images/a -> containers/b`.
    what: String,
    /// The cause: an OS error, or `None` when `what` says it all.
    cause: Option<io::Error>,
    /// A hint that tells the user what to do.
    advice: Option<String>,
}

/// The result type of the tupper library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An OS error from `what` (the operation and its object).
    pub fn os(what: impl Into<String>, cause: impl Into<io::Error>) -> Error {
        let cause = cause.into();
        let advice = advice_for(&cause);
        Error {
            kind: Kind::Runtime,
            what: what.into(),
            cause: Some(cause),
            advice,
        }
    }

    /// A failure that has no OS error behind it (bad input, a conflict).
    pub fn msg(what: impl Into<String>) -> Error {
        Error {
            kind: Kind::Runtime,
            what: what.into(),
            cause: None,
            advice: None,
        }
    }

    /// Sets the docker exit-code kind.
    pub fn with_kind(mut self, kind: Kind) -> Error {
        self.kind = kind;
        self
    }

    /// Replaces the advice with a more specific one.
    pub fn with_advice(mut self, advice: impl Into<String>) -> Error {
        self.advice = Some(advice.into());
        self
    }

    /// The docker exit-code kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The exit code tupper exits with for this error.
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }

    /// The OS error number behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.cause.as_ref().and_then(|c| c.raw_os_error())
    }

    /// Puts `outer` (the larger operation this failure happened in) before
    /// the operation and object: `OUTER: WHAT: CAUSE`.
    pub fn within(mut self, outer: impl fmt::Display) -> Error {
        self.what = format!("{outer}: {}", self.what);
        self
    }

    /// The operation and object, without the cause.
    pub fn what(&self) -> &str {
        &self.what
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        if let Some(advice) = &self.advice {
            write!(f, " ({advice})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_ref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// Adds "operation object" context to fallible OS calls.
pub trait Context<T> {
    /// Wraps the OS error with the operation and object it came from.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<io::Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::os(what(), e))
    }
}

/// Advice for errnos whose meaning is not obvious from strerror alone.
fn advice_for(cause: &io::Error) -> Option<String> {
    let advice = match cause.raw_os_error()? {
        libc::ENOTTY => "the store is not on btrfs",
        libc::EXDEV => "source and destination are on different filesystems; the store must be one btrfs filesystem",
        libc::ENOSPC => "the store's filesystem is full",
        libc::EROFS => "the filesystem or subvolume is read-only",
        libc::EPERM => "tupper must run as root",
        _ => return None,
    };
    Some(advice.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_operation_object_and_errno() {
        let e = Error::os(
            "snapshot images/alpine -> containers/web",
            io::Error::from_raw_os_error(libc::EEXIST),
        );
        assert_eq!(
            e.to_string(),
            "snapshot images/alpine -> containers/web: File exists (os error 17)"
        );
        assert_eq!(e.exit_code(), 125);
    }

    #[test]
    fn known_errno_gets_advice() {
        let e = Error::os(
            "create subvolume images/x",
            io::Error::from_raw_os_error(libc::ENOTTY),
        );
        assert!(
            e.to_string().ends_with("(the store is not on btrfs)"),
            "{e}"
        );
    }

    #[test]
    fn kinds_map_to_docker_codes() {
        assert_eq!(Error::msg("x").with_kind(Kind::NotFound).exit_code(), 127);
        assert_eq!(
            Error::msg("x").with_kind(Kind::CannotInvoke).exit_code(),
            126
        );
    }
}
