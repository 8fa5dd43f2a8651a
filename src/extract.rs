//! Import of a root filesystem into an image directory: a tar archive (plain,
//! gzip or zstd) or a directory tree.
//!
//! The caller opens the destination (in production a fresh btrfs subvolume) and
//! hands over its fd; nothing outside it is ever touched. The tar crate only
//! parses headers and yields data; every write is a `*at` call relative to a
//! directory fd, and every directory is reached with `openat2` and
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`,
//! so an archive cannot write through one of its own symlinks, climb out with
//! `..`, or hard-link a file from outside. The writing half lives in
//! `src/extract/write.rs`, the directory copy in `src/extract/copy.rs`;
//! `docs/import.md` explains the rules.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use crate::error::{Error, Result};

mod copy;
mod write;

#[cfg(test)]
mod tests;

use write::{normalize, quote, Meta, Special, Writer};

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Filesystem entries created or updated (files, directories, links, nodes).
    pub entries: u64,
    /// Bytes of regular-file data written.
    pub bytes: u64,
}

/// Progress callback payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of input consumed so far (the compressed archive, or the file data
    /// read from a source tree).
    pub input_bytes: u64,
    /// Entries written so far.
    pub entries: u64,
}

/// Compression of an archive, detected by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar archive (or anything without a known magic).
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

/// Detects the compression from the first bytes of an archive (4 are enough).
pub fn detect(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// How many input bytes pass between two progress calls.
const PROGRESS_STEP: u64 = 1 << 20;
/// The buffer regular-file data is copied through.
const DATA_BUFFER: usize = 1 << 20;
/// The read buffer between the input and the tar parser or the decompressor.
const READ_BUFFER: usize = 256 << 10;

/// Extracts a tar archive (plain, gzip or zstd, found by its magic bytes) read
/// from `input` into the directory `root`.
///
/// Entries are written with their modes (setuid, setgid, sticky included),
/// numeric owners, mtimes and `SCHILY.xattr.*` extended attributes; directory
/// mtimes are set last, deepest first. Nothing is written outside `root`: a
/// `..` component, a path through a symlink or a hard link to a file that is not
/// in the image is an error. On error the directory is left half-filled; the
/// caller removes it.
pub fn extract_archive(
    input: impl Read,
    root: BorrowedFd<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Stats> {
    let consumed = Cell::new(0u64);
    let mut counting = Counting {
        inner: input,
        count: &consumed,
    };
    let mut prefix = [0u8; 6];
    let n = read_prefix(&mut counting, &mut prefix).map_err(|e| Error::os("read archive", e))?;
    let prefix = &prefix[..n];
    if prefix.is_empty() {
        return Err(Error::msg("import: empty archive (0 bytes)"));
    }
    if prefix.starts_with(b"\xfd7zXZ\0") || prefix.starts_with(b"BZh") {
        return Err(Error::msg(
            "import: xz and bzip2 archives are not supported (use a plain, gzip or zstd tar)",
        ));
    }
    let input = BufReader::with_capacity(READ_BUFFER, prefix.chain(counting));
    let mut reporter = Reporter {
        consumed: &consumed,
        next: 0,
        progress,
    };
    let stats = match detect(prefix) {
        Compression::None => unpack(input, root, &mut reporter)?,
        Compression::Gzip => {
            let gz = flate2::bufread::MultiGzDecoder::new(input);
            let mut r = BufReader::with_capacity(READ_BUFFER, gz);
            let stats = unpack(&mut r, root, &mut reporter)?;
            drain(&mut r)?;
            stats
        }
        Compression::Zstd => {
            let mut zst = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| Error::os("read archive: start zstd decoder", e))?;
            // Allow the large windows of `zstd --long` archives.
            zst.window_log_max(31)
                .map_err(|e| Error::os("read archive: set zstd window", e))?;
            let mut r = BufReader::with_capacity(READ_BUFFER, zst);
            let stats = unpack(&mut r, root, &mut reporter)?;
            drain(&mut r)?;
            stats
        }
    };
    reporter.report(stats.entries);
    Ok(stats)
}

/// Reads a decompressor to its end after the tar's end-of-archive blocks, so that
/// the gzip CRC and length trailer (or the zstd checksum) is checked: a corrupt
/// trailer fails the import as `tar -xz` does.
fn drain(r: &mut impl Read) -> Result<()> {
    std::io::copy(r, &mut std::io::sink())
        .map(drop)
        .map_err(|e| Error::os("read archive: after the end of the tar", e))
}

/// Copies a directory tree (the `tupper import NAME DIR` case) into `root`,
/// keeping the same metadata as for archives.
///
/// Symlinks of the source are copied as symlinks and never followed; hard links
/// within the tree stay hard links; sockets are skipped. The metadata of
/// `source` itself is applied to `root`.
pub fn copy_tree(
    source: &Path,
    root: BorrowedFd<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Stats> {
    copy::copy_tree(source, root, progress)
}

/// Counts the bytes read from the archive input, for progress reports.
struct Counting<'c, R> {
    inner: R,
    count: &'c Cell<u64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Fills `buf` unless the input ends first; returns how much was read.
fn read_prefix(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Calls the progress callback about once per [`PROGRESS_STEP`] of input.
struct Reporter<'a> {
    consumed: &'a Cell<u64>,
    next: u64,
    progress: &'a mut dyn FnMut(Progress),
}

impl Reporter<'_> {
    /// Reports if enough input was consumed since the last report.
    fn tick(&mut self, entries: u64) {
        if self.consumed.get() >= self.next {
            self.report(entries);
        }
    }

    /// Reports now.
    fn report(&mut self, entries: u64) {
        let input_bytes = self.consumed.get();
        self.next = input_bytes + PROGRESS_STEP;
        (self.progress)(Progress {
            input_bytes,
            entries,
        });
    }
}

/// The error for a failed read of the archive, naming where it happened.
fn read_error(last: Option<&[u8]>, cause: io::Error) -> Error {
    match last {
        Some(last) => Error::os(format!("read archive after entry {}", quote(last)), cause),
        None => Error::os("read archive", cause),
    }
}

/// Reads the tar stream and writes every entry.
fn unpack<R: Read>(input: R, root: BorrowedFd<'_>, reporter: &mut Reporter<'_>) -> Result<Stats> {
    let mut archive = tar::Archive::new(input);
    let entries = archive.entries().map_err(|e| read_error(None, e))?;
    let mut writer = Writer::new(root)?;
    let mut path = Vec::new();
    let mut target = Vec::new();
    let mut last: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; DATA_BUFFER];

    for item in entries {
        let mut entry = item.map_err(|e| read_error((!last.is_empty()).then_some(&last[..]), e))?;
        let mut kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) || kind.as_byte() == b'V' {
            // PAX global headers and GNU volume labels describe no file.
            continue;
        }
        {
            let raw = entry.path_bytes();
            last.clear();
            last.extend_from_slice(&raw);
        }
        if matches!(kind, tar::EntryType::Regular) && last.ends_with(b"/") {
            // Old (V7) archives mark directories by a trailing slash only.
            kind = tar::EntryType::Directory;
        }
        normalize(&last, &mut path)
            .map_err(|why| Error::msg(format!("import: entry {} {why}", quote(&last))))?;
        let meta = entry_meta(&mut entry, &last)?;

        if path.is_empty() && !matches!(kind, tar::EntryType::Directory) {
            return Err(Error::msg(format!(
                "import: entry {} names the image root but is not a directory",
                quote(&last)
            )));
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                let entries = writer.stats().entries;
                let name = &last;
                writer.file(&path, &meta, |fd| {
                    copy_entry(&mut entry, fd, name, size, &mut buf, reporter, entries)
                })?;
            }
            tar::EntryType::Directory => writer.dir(&path, &meta)?,
            tar::EntryType::Symlink => {
                let link = entry.link_name_bytes().ok_or_else(|| {
                    Error::msg(format!("import: symlink {} has no target", quote(&last)))
                })?;
                writer.symlink(&path, &link, &meta)?;
            }
            tar::EntryType::Link => {
                let link = entry.link_name_bytes().ok_or_else(|| {
                    Error::msg(format!("import: hard link {} has no target", quote(&last)))
                })?;
                normalize(&link, &mut target).map_err(|why| {
                    Error::msg(format!(
                        "import: entry {}: hard link target {} {why}",
                        quote(&last),
                        quote(&link)
                    ))
                })?;
                writer.hard_link(&path, &target, &link)?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let (major, minor) = device_numbers(&entry, &last)?;
                let special = if kind == tar::EntryType::Char {
                    Special::Char(major, minor)
                } else {
                    Special::Block(major, minor)
                };
                writer.special(&path, special, &meta)?;
            }
            tar::EntryType::Fifo => writer.special(&path, Special::Fifo, &meta)?,
            tar::EntryType::GNUSparse => {
                return Err(Error::msg(format!(
                    "import: entry {}: GNU sparse files are not supported (re-create the archive without --sparse)",
                    quote(&last)
                )))
            }
            other => {
                return Err(Error::msg(format!(
                    "import: entry {}: unsupported entry type {:?} ('{}')",
                    quote(&last),
                    other,
                    other.as_byte().escape_ascii()
                )))
            }
        }
        reporter.tick(writer.stats().entries);
    }
    let stats = writer.finish()?;
    if stats.entries == 0 {
        return Err(Error::msg("import: empty archive (no entries)"));
    }
    Ok(stats)
}

/// Mode, owner, mtime and xattrs of a tar entry (PAX records override the header).
fn entry_meta<R: Read>(entry: &mut tar::Entry<'_, R>, name: &[u8]) -> Result<Meta> {
    let bad = |field: &str, e: io::Error| {
        Error::os(
            format!("read archive: entry {}: bad {field}", quote(name)),
            e,
        )
    };
    let header = entry.header();
    let mode = header.mode().map_err(|e| bad("mode", e))? & 0o7777;
    // The tar crate already applied PAX `uid`/`gid` records to the header.
    let uid = header.uid().map_err(|e| bad("uid", e))?;
    let gid = header.gid().map_err(|e| bad("gid", e))?;
    let mtime = header.mtime().map_err(|e| bad("mtime", e))?;
    let out_of_range = |field: &str| {
        Error::msg(format!(
            "read archive: entry {}: {field} is out of range",
            quote(name)
        ))
    };
    let mut meta = Meta {
        mode,
        uid: u32::try_from(uid).map_err(|_| out_of_range("uid"))?,
        gid: u32::try_from(gid).map_err(|_| out_of_range("gid"))?,
        mtime: i64::try_from(mtime).map_err(|_| out_of_range("mtime"))?,
        mtime_nsec: 0,
        xattrs: Vec::new(),
    };
    let Some(pax) = entry.pax_extensions().map_err(|e| bad("PAX header", e))? else {
        return Ok(meta);
    };
    for record in pax {
        let record = record.map_err(|e| bad("PAX record", e))?;
        let key = record.key_bytes();
        if let Some(xattr) = key.strip_prefix(b"SCHILY.xattr.") {
            meta.xattrs
                .push((xattr.to_vec(), record.value_bytes().to_vec()));
        } else if key == b"mtime" {
            if let Some((secs, nsec)) = parse_pax_time(record.value_bytes()) {
                meta.mtime = secs;
                meta.mtime_nsec = nsec;
            } else {
                return Err(Error::msg(format!(
                    "read archive: entry {}: bad PAX mtime {}",
                    quote(name),
                    quote(record.value_bytes())
                )));
            }
        }
    }
    Ok(meta)
}

/// Parses a PAX time, `SECONDS[.FRACTION]` (seconds may be negative).
fn parse_pax_time(value: &[u8]) -> Option<(i64, u32)> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = match text.split_once('.') {
        Some((s, f)) => (s, f),
        None => (text, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nsec = 0u32;
    for i in 0..9 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| u32::from(b - b'0'));
        nsec = nsec * 10 + digit;
    }
    if secs < 0 && nsec > 0 {
        // -1.25 is 1.25 s before the epoch: -2 s + 0.75 s.
        return Some((secs - 1, 1_000_000_000 - nsec));
    }
    Some((secs, nsec))
}

/// The device numbers of a character or block device entry.
fn device_numbers<R: Read>(entry: &tar::Entry<'_, R>, name: &[u8]) -> Result<(u32, u32)> {
    let header = entry.header();
    let bad = |e: io::Error| {
        Error::os(
            format!("read archive: entry {}: bad device number", quote(name)),
            e,
        )
    };
    let major = header.device_major().map_err(bad)?;
    let minor = header.device_minor().map_err(bad)?;
    match (major, minor) {
        (Some(major), Some(minor)) => Ok((major, minor)),
        _ => Err(Error::msg(format!(
            "read archive: entry {}: device without device numbers (old tar format)",
            quote(name)
        ))),
    }
}

/// Copies the data of a regular-file entry into `fd`; returns the bytes written.
fn copy_entry(
    data: &mut impl Read,
    fd: &OwnedFd,
    name: &[u8],
    size: u64,
    buf: &mut [u8],
    reporter: &mut Reporter<'_>,
    entries: u64,
) -> Result<u64> {
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match data.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(Error::msg(format!(
                    "read archive: entry {}: unexpected end of archive ({} of {size} bytes)",
                    quote(name),
                    size - left
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::os(format!("read archive: entry {}", quote(name)), e)),
        };
        write::write_all(fd, &buf[..n], name)?;
        left -= n as u64;
        reporter.tick(entries);
    }
    Ok(size)
}
