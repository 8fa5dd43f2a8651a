//! A tar stream as the destination of the tree walk of `copy.rs`
//! (`tupper export`, docker's): every entry with its owner, mode,
//! modification time and extended attributes (`SCHILY.xattr.NAME` records of
//! a pax header, as GNU tar writes them and the import reads them), hard
//! links as links, device nodes and fifos as nodes, long names by GNU's
//! extension; the format `tupper import` and GNU `tar -x` read back.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use tar::{EntryType, Header};

use super::write::{show, Meta, Special};
use super::Stats;
use crate::error::{Error, Result};

/// The tar stream being written.
pub(super) struct TarOut<'w> {
    builder: tar::Builder<&'w mut dyn Write>,
    stats: Stats,
}

impl<'w> TarOut<'w> {
    pub(super) fn new(out: &'w mut dyn Write) -> TarOut<'w> {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Complete);
        TarOut {
            builder,
            stats: Stats::default(),
        }
    }

    pub(super) fn stats(&self) -> Stats {
        self.stats
    }

    /// Writes the end of the archive.
    pub(super) fn finish(mut self) -> Result<Stats> {
        self.builder
            .finish()
            .map_err(|e| Error::os("write the end of the archive", e))?;
        Ok(self.stats)
    }

    /// A header of `kind` with `meta`'s owner, mode and time, and the pax
    /// header of its extended attributes written before it.
    fn header(&mut self, path: &[u8], kind: EntryType, meta: &Meta) -> Result<Header> {
        if !meta.xattrs.is_empty() {
            let mut records = Vec::new();
            for (key, value) in &meta.xattrs {
                pax_record(&mut records, b"SCHILY.xattr.", key, value);
            }
            let mut pax = Header::new_ustar();
            pax.set_entry_type(EntryType::XHeader);
            pax.set_mode(0o644);
            pax.set_size(records.len() as u64);
            pax.set_path("././@PaxHeader").map_err(|e| error(path, e))?;
            pax.set_cksum();
            self.builder
                .append(&pax, &records[..])
                .map_err(|e| error(path, e))?;
        }
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode);
        h.set_uid(u64::from(meta.uid));
        h.set_gid(u64::from(meta.gid));
        h.set_mtime(u64::try_from(meta.mtime).unwrap_or(0));
        h.set_size(0);
        Ok(h)
    }

    /// A directory; the root (empty `path`) is not an entry, as in docker's
    /// export.
    pub(super) fn dir(&mut self, path: &[u8], meta: &Meta) -> Result<()> {
        if path.is_empty() {
            return Ok(());
        }
        let mut h = self.header(path, EntryType::Directory, meta)?;
        let mut name = path.to_vec();
        name.push(b'/');
        self.builder
            .append_data(&mut h, os(&name), io::empty())
            .map_err(|e| error(path, e))?;
        self.stats.entries += 1;
        Ok(())
    }

    /// A regular file, its data read from `src`: as long as the file was
    /// when it was opened (a running container may change it meanwhile:
    /// what it adds is cut, what it takes away is zeros).
    pub(super) fn file(&mut self, path: &[u8], meta: &Meta, src: &OwnedFd) -> Result<()> {
        let size = rustix::fs::fstat(src)
            .map_err(|e| error(path, e.into()))?
            .st_size;
        let size = u64::try_from(size).unwrap_or(0);
        let mut h = self.header(path, EntryType::Regular, meta)?;
        h.set_size(size);
        let data = Exactly { src, left: size };
        self.builder
            .append_data(&mut h, os(path), data)
            .map_err(|e| error(path, e))?;
        self.stats.entries += 1;
        self.stats.bytes += size;
        Ok(())
    }

    pub(super) fn symlink(&mut self, path: &[u8], target: &[u8], meta: &Meta) -> Result<()> {
        let mut h = self.header(path, EntryType::Symlink, meta)?;
        self.builder
            .append_link(&mut h, os(path), os(target))
            .map_err(|e| error(path, e))?;
        self.stats.entries += 1;
        Ok(())
    }

    /// Another name of the file first written as `first` (its extended
    /// attributes are the first's).
    pub(super) fn hard_link(&mut self, path: &[u8], first: &[u8], meta: &Meta) -> Result<()> {
        let mut h = self.header(path, EntryType::Link, meta)?;
        self.builder
            .append_link(&mut h, os(path), os(first))
            .map_err(|e| error(path, e))?;
        self.stats.entries += 1;
        Ok(())
    }

    pub(super) fn special(&mut self, path: &[u8], kind: Special, meta: &Meta) -> Result<()> {
        let (entry, dev) = match kind {
            Special::Char(major, minor) => (EntryType::Char, Some((major, minor))),
            Special::Block(major, minor) => (EntryType::Block, Some((major, minor))),
            Special::Fifo => (EntryType::Fifo, None),
        };
        let mut h = self.header(path, entry, meta)?;
        if let Some((major, minor)) = dev {
            h.set_device_major(major).map_err(|e| error(path, e))?;
            h.set_device_minor(minor).map_err(|e| error(path, e))?;
        }
        self.builder
            .append_data(&mut h, os(path), io::empty())
            .map_err(|e| error(path, e))?;
        self.stats.entries += 1;
        Ok(())
    }
}

/// A pax record, `LEN KEY=VALUE\n`, `LEN` counting itself.
fn pax_record(out: &mut Vec<u8>, prefix: &[u8], key: &[u8], value: &[u8]) {
    let body = prefix.len() + key.len() + 1 + value.len() + 1;
    let mut len = body + 1;
    while len != body + 1 + len.to_string().len() {
        len = body + 1 + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(prefix);
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn os(bytes: &[u8]) -> &std::path::Path {
    std::path::Path::new(std::ffi::OsStr::from_bytes(bytes))
}

fn error(path: &[u8], e: io::Error) -> Error {
    Error::os(format!("write {} to the archive", show(path)), e)
}

/// Exactly `left` bytes of `src`: zeros past its end.
struct Exactly<'a> {
    src: &'a OwnedFd,
    left: u64,
}

impl Read for Exactly<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = loop {
            match rustix::io::read(self.src, &mut buf[..want]) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let n = match n {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        let mut out = Vec::new();
        pax_record(&mut out, b"SCHILY.xattr.", b"user.a", b"x");
        assert_eq!(out, b"25 SCHILY.xattr.user.a=x\n");
        assert_eq!(out.len(), 25);
        // Where the length's own digits carry it over a power of ten.
        let mut out = Vec::new();
        pax_record(&mut out, b"", b"k", &[b'v'; 94]);
        assert_eq!(out.len(), 101);
        assert!(out.starts_with(b"101 k="));
    }
}
