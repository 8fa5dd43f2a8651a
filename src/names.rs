//! Names of images and containers, and container IDs.

use crate::error::{Error, Result};

/// The longest image or container name, in bytes.
pub const NAME_MAX: usize = 128;

/// Checks an image or container name: `[a-z0-9][a-z0-9._-]*`, at most 128 bytes.
///
/// `what` names the kind of object in the error (`image name`, `container name`).
pub fn validate(what: &str, name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok_first = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok_rest = |b: u8| ok_first(b) || matches!(b, b'.' | b'_' | b'-');
    let problem = if bytes.is_empty() {
        Some("it is empty".to_string())
    } else if bytes.len() > NAME_MAX {
        Some(format!(
            "it is {} bytes long, at most {NAME_MAX} are allowed",
            bytes.len()
        ))
    } else if !ok_first(bytes[0]) || !bytes[1..].iter().all(|&b| ok_rest(b)) {
        Some("use [a-z0-9][a-z0-9._-]*".to_string())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(Error::msg(format!("invalid {what} {name:?}: {why}"))),
    }
}

/// Length of a container ID in hex digits.
pub const ID_LEN: usize = 12;

/// A fresh random container ID: 12 lowercase hex digits.
pub fn new_id() -> Result<String> {
    let raw: [u8; ID_LEN / 2] = random_bytes("a container id")?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// `N` bytes from `getrandom(2)`, for `what` (named in the error).
pub(crate) fn random_bytes<const N: usize>(what: &str) -> Result<[u8; N]> {
    let mut raw = [0u8; N];
    let mut filled = 0;
    while filled < N {
        filled +=
            rustix::rand::getrandom(&mut raw[filled..], rustix::rand::GetRandomFlags::empty())
                .map_err(|e| Error::os(format!("getrandom for {what}"), e))?;
    }
    Ok(raw)
}

/// The NAME of `s`, a `container:NAME` value of namespace option `flag`
/// (`--ipc`, `--pid`), whose values are `expected` (for the error).
pub(crate) fn joined_container(flag: &str, s: &str, expected: &str) -> Result<String> {
    match s.strip_prefix("container:") {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(Error::msg(format!(
            "invalid {flag} {s:?}: expected {expected}"
        ))),
    }
}

/// Whether `s` has the shape of a container ID (12 lowercase hex digits).
pub fn is_id(s: &str) -> bool {
    is_id_bytes(s.as_bytes())
}

/// [`is_id`] of raw bytes (a directory entry's name).
pub fn is_id_bytes(b: &[u8]) -> bool {
    b.len() == ID_LEN
        && b.iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// A container-ID-shaped name held inline: a start lists a pool of 128
/// spares with one allocation for all of them, not one per name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdBuf([u8; ID_LEN]);

impl IdBuf {
    /// `b` as an ID, when it has the shape of one.
    pub fn new(b: &[u8]) -> Option<IdBuf> {
        is_id_bytes(b).then(|| {
            let mut id = [0u8; ID_LEN];
            id.copy_from_slice(b);
            IdBuf(id)
        })
    }

    /// The ID as text (ASCII hex digits).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl AsRef<std::path::Path> for IdBuf {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_docker_like_names() {
        for n in ["alpine", "a", "0", "web-1", "my_app.v2", &"a".repeat(128)] {
            validate("image name", n).unwrap();
        }
    }

    #[test]
    fn refuses_bad_names_with_the_reason() {
        for n in [
            "",
            "Bad",
            "-x",
            ".x",
            "_x",
            "a/b",
            "a b",
            "ä",
            "../x",
            &"a".repeat(129),
        ] {
            let e = validate("image name", n).unwrap_err();
            assert!(e.to_string().starts_with("invalid image name"), "{e}");
        }
    }

    #[test]
    fn ids_are_12_hex_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert!(is_id(&a) && is_id(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(!is_id("ABCDEF123456"));
        assert!(!is_id("abc"));
        assert_eq!(IdBuf::new(a.as_bytes()).unwrap().as_str(), a);
        assert!(IdBuf::new(b".new").is_none());
        assert!(IdBuf::new(b"0123456789abc").is_none());
    }
}
