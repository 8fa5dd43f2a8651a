//! Import of a root filesystem into an image directory: a tar archive (plain,
//! gzip or zstd) or a directory tree.
//!
//! The caller opens the destination (in production a fresh btrfs subvolume) and
//! hands over its fd; nothing outside it is ever touched. The tar crate only
//! parses header fields (`src/extract/read.rs` splits the stream); every write is a `*at` call relative to a
//! directory fd, and every directory is reached with `openat2` and
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`,
//! so an archive cannot write through one of its own symlinks, climb out with
//! `..`, or hard-link a file from outside. The writing half lives in
//! `src/extract/write.rs`, the directory copy in `src/extract/copy.rs`;
//! `docs/import.md` explains the rules.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::os::fd::BorrowedFd;
use std::path::Path;

use crate::error::{Error, Result};

mod copy;
mod fill;
mod read;
mod tar_out;
mod write;

#[cfg(test)]
mod tests;

use fill::{Filler, CHUNK};
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
/// The buffer of `copy_tree`'s read/write fallback for file data.
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
    extract_with(input, root, progress, true)
}

/// Extracts one layer of a layered image (docker's and OCI's image
/// formats) into `root`, which holds the layers below it: as
/// [`extract_archive`], but by the OCI image spec's rules for changesets.
/// A whiteout `DIR/.wh.NAME` removes `DIR/NAME` (a tree too) of the layers
/// below; an opaque whiteout `DIR/.wh..wh..opq` empties `DIR` of what they
/// put there; an entry that replaces a directory of theirs replaces its
/// tree. Other `.wh..wh.` names (aufs's own) are skipped. A layer may be
/// empty. Nothing is ever removed outside `root` or through a symlink.
pub fn extract_layer(
    input: impl Read,
    root: BorrowedFd<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Stats> {
    extract_as(input, root, progress, true, true)
}

/// [`extract_archive`], with the data thread or without it (the tests run
/// both ways: without is what happens when the thread cannot be started).
fn extract_with(
    input: impl Read,
    root: BorrowedFd<'_>,
    progress: &mut dyn FnMut(Progress),
    data_thread: bool,
) -> Result<Stats> {
    extract_as(input, root, progress, data_thread, false)
}

/// [`extract_with`], of a whole archive or of a `layer`
/// ([`extract_layer`]).
fn extract_as(
    input: impl Read,
    root: BorrowedFd<'_>,
    progress: &mut dyn FnMut(Progress),
    data_thread: bool,
    layer: bool,
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
        return match layer {
            true => Ok(Stats::default()),
            false => Err(Error::msg("import: empty archive (0 bytes)")),
        };
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
        Compression::None => unpack(input, root, &mut reporter, data_thread, layer)?,
        Compression::Gzip => {
            let gz = flate2::bufread::MultiGzDecoder::new(input);
            let mut r = BufReader::with_capacity(READ_BUFFER, gz);
            let stats = unpack(&mut r, root, &mut reporter, data_thread, layer)?;
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
            let stats = unpack(&mut r, root, &mut reporter, data_thread, layer)?;
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
    copy::copy_tree(source, source, root, false, progress)
}

/// [`copy_tree`] for `tupper cp` of a directory, the source shown in errors
/// as `shown` (`CONTAINER:PATH`). `from_container`: out of a container to
/// the host, where owners become the caller's and set-user-ID and
/// set-group-ID bits, extended attributes (file capabilities) and device
/// nodes are left behind; an entry its running command removes during the
/// copy is left out.
pub fn copy_dir(
    source: &Path,
    shown: &Path,
    root: BorrowedFd<'_>,
    from_container: bool,
) -> Result<Stats> {
    copy::copy_tree(source, shown, root, from_container, &mut |_| {})
}

/// Writes the tree at `source` (a container's root) to `out` as a tar
/// stream (`tupper export`): every entry but the root itself, with its
/// owner, mode, time and extended attributes, hard links as links; sockets
/// are left out. Walked as [`copy_tree`] walks, nothing followed.
pub fn export_tree(source: &Path, out: &mut dyn std::io::Write) -> Result<Stats> {
    copy::export_tree(source, out)
}

/// [`export_tree`] of one entry, `name` in `dir` (shown as `shown`), under
/// its own name: a directory and its tree, or a file, symlink or node
/// (`tupper cp CONTAINER:PATH -`).
pub fn export_entry(
    dir: BorrowedFd<'_>,
    name: &str,
    shown: &Path,
    out: &mut dyn std::io::Write,
) -> Result<Stats> {
    copy::export_entry(dir, name, shown, out)
}

/// Copies one entry that is not a directory, `name` in `dir`, to
/// `dest_name` in `dest`, by [`copy_tree`]'s rules (`tupper cp` of a file;
/// `from_container`: by [`copy_dir`]'s).
pub fn copy_one(
    dir: BorrowedFd<'_>,
    name: &str,
    dest: BorrowedFd<'_>,
    dest_name: &str,
    shown: &Path,
    from_container: bool,
) -> Result<Stats> {
    copy::copy_one(dir, name, dest, dest_name, shown, from_container)
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
    let cause = one_line(cause);
    match last {
        Some(last) => Error::os(format!("read archive after entry {}", quote(last)), cause),
        None => Error::os("read archive", cause),
    }
}

/// An error of the tar crate with its control characters escaped: its text may
/// quote raw header bytes (newlines, terminal escapes), and messages are one line.
fn one_line(e: io::Error) -> io::Error {
    if e.raw_os_error().is_some() {
        return e;
    }
    let text = e.to_string();
    match write::show(text.as_bytes()) {
        std::borrow::Cow::Borrowed(_) => e,
        std::borrow::Cow::Owned(clean) => io::Error::new(e.kind(), clean),
    }
}

/// Reads the tar stream and writes every entry; regular files' data goes
/// through the data thread (`src/extract/fill.rs`) when `data_thread`; a
/// `layer` by [`extract_layer`]'s rules.
fn unpack<R: Read>(
    input: R,
    root: BorrowedFd<'_>,
    reporter: &mut Reporter<'_>,
    data_thread: bool,
    layer: bool,
) -> Result<Stats> {
    std::thread::scope(|scope| {
        let mut filler = if data_thread {
            Filler::start(scope)
        } else {
            Filler::inline()
        };
        let mut writer = Writer::new(root)?;
        let mut layer = layer.then(write::Layer::default);
        if layer.is_some() {
            writer.replace_trees();
        }
        let read = unpack_entries(input, &mut writer, &mut filler, reporter, layer.as_mut());
        // The data thread's error is about an earlier entry than the calling
        // thread's (which may only say that the data thread stopped).
        filler.finish()?;
        read?;
        let stats = writer.finish()?;
        if stats.entries == 0 && layer.is_none() {
            return Err(Error::msg("import: empty archive (no entries)"));
        }
        Ok(stats)
    })
}

/// Reads the tar stream and creates every entry, handing regular files to
/// `filler` to fill; in a `layer`, whiteouts remove ([`extract_layer`]).
fn unpack_entries<R: Read>(
    input: R,
    writer: &mut Writer<'_>,
    filler: &mut Filler<'_>,
    reporter: &mut Reporter<'_>,
    mut layer: Option<&mut write::Layer>,
) -> Result<()> {
    let mut reader = read::Reader::new(input);
    let mut path = Vec::new();
    let mut target = Vec::new();
    let mut last: Vec<u8> = Vec::new();

    loop {
        match reader.next() {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_error((!last.is_empty()).then_some(&last[..]), e)),
        }
        let read::Reader { input, entry, .. } = &mut reader;
        last.clear();
        last.extend_from_slice(&entry.path);
        let mut kind = entry.header.entry_type();
        if let Some(key) = &entry.pax.sparse {
            // GNU tar's PAX sparse formats (0.0, 0.1, 1.0): the data is a sparse
            // map and fragments, not the file; refused like the old 'S' type.
            let name = entry.pax.sparse_name.as_deref().unwrap_or(&last);
            return Err(Error::msg(format!(
                "import: entry {}: GNU sparse files are not supported (PAX record {}; re-create the archive without --sparse)",
                quote(name),
                write::show(key)
            )));
        }
        if matches!(kind, tar::EntryType::Regular) && last.ends_with(b"/") {
            // Old (V7) archives mark directories by a trailing slash only.
            kind = tar::EntryType::Directory;
        }
        normalize(&last, &mut path)
            .map_err(|why| Error::msg(format!("import: entry {} {why}", quote(&last))))?;
        let meta = entry_meta(entry, &last)?;

        if path.is_empty() && !matches!(kind, tar::EntryType::Directory) {
            return Err(Error::msg(format!(
                "import: entry {} names the image root but is not a directory",
                quote(&last)
            )));
        }
        if let Some(layer) = layer.as_deref_mut() {
            let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
                Some(i) => (&path[..i], &path[i + 1..]),
                None => (&[][..], &path[..]),
            };
            if name == write::OPAQUE {
                writer.opaque(parent, layer)?;
                continue;
            }
            if name.starts_with(write::AUFS_META) {
                continue;
            }
            if let Some(hidden) = name.strip_prefix(write::WHITEOUT) {
                let mut gone = parent.to_vec();
                if !gone.is_empty() {
                    gone.push(b'/');
                }
                gone.extend_from_slice(hidden);
                writer.whiteout(&gone)?;
                continue;
            }
            layer.written(&path);
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size;
                let entries = writer.stats().entries;
                filler.open(writer.create_file(&path)?, &path);
                copy_entry(input, filler, &last, size, meta, reporter, entries)?;
                writer.count_file(size);
            }
            tar::EntryType::Directory => writer.dir(&path, &meta)?,
            tar::EntryType::Symlink => {
                let link = entry.link.as_deref().ok_or_else(|| {
                    Error::msg(format!("import: symlink {} has no target", quote(&last)))
                })?;
                writer.symlink(&path, link, &meta)?;
            }
            tar::EntryType::Link => {
                let link = entry.link.as_deref().ok_or_else(|| {
                    Error::msg(format!("import: hard link {} has no target", quote(&last)))
                })?;
                normalize(link, &mut target).map_err(|why| {
                    Error::msg(format!(
                        "import: entry {}: hard link target {} {why}",
                        quote(&last),
                        quote(link)
                    ))
                })?;
                writer.hard_link(&path, &target, link)?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let (major, minor) = device_numbers(&entry.header, &last)?;
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
                    "import: entry {}: unsupported entry type '{}'",
                    quote(&last),
                    other.as_byte().escape_ascii()
                )))
            }
        }
        reporter.tick(writer.stats().entries);
    }
    Ok(())
}

/// Mode, owner, mtime and xattrs of a tar entry (PAX records override the header).
fn entry_meta(entry: &mut read::Entry, name: &[u8]) -> Result<Meta> {
    let bad = |field: &str, e: io::Error| {
        Error::os(
            format!("read archive: entry {}: bad {field}", quote(name)),
            one_line(e),
        )
    };
    let out_of_range = |field: &str| {
        Error::msg(format!(
            "read archive: entry {}: {field} is out of range",
            quote(name)
        ))
    };
    let header = &entry.header;
    let mode = header.mode().map_err(|e| bad("mode", e))? & 0o7777;
    let uid = match entry.pax.uid {
        Some(uid) => uid,
        None => header.uid().map_err(|e| bad("uid", e))?,
    };
    let gid = match entry.pax.gid {
        Some(gid) => gid,
        None => header.gid().map_err(|e| bad("gid", e))?,
    };
    let (mtime, mtime_nsec) = match &entry.pax.mtime {
        Some(value) => parse_pax_time(value).ok_or_else(|| {
            Error::msg(format!(
                "read archive: entry {}: bad PAX mtime {}",
                quote(name),
                quote(value)
            ))
        })?,
        None => (
            header_mtime(header)
                .map_err(|e| bad("mtime", e))?
                .ok_or_else(|| out_of_range("mtime"))?,
            0,
        ),
    };
    Ok(Meta {
        mode,
        uid: u32::try_from(uid).map_err(|_| out_of_range("uid"))?,
        gid: u32::try_from(gid).map_err(|_| out_of_range("gid"))?,
        mtime,
        mtime_nsec,
        xattrs: std::mem::take(&mut entry.pax.xattrs),
    })
}

/// The mtime field of a header: octal, or GNU base-256 (`0x80` positive, `0xff`
/// negative, two's complement: times before 1970). `None` when out of range.
fn header_mtime(header: &tar::Header) -> io::Result<Option<i64>> {
    let field = &header.as_old().mtime;
    if field[0] != 0xff {
        return Ok(i64::try_from(header.mtime()?).ok());
    }
    // A 12-byte negative number fits an i64 when its first 4 bytes only extend the sign.
    let (high, low) = field.split_at(4);
    if high.iter().any(|&b| b != 0xff) || low[0] & 0x80 == 0 {
        return Ok(None);
    }
    Ok(Some(i64::from_be_bytes(low.try_into().expect("8 bytes"))))
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
fn device_numbers(header: &tar::Header, name: &[u8]) -> Result<(u32, u32)> {
    let bad = |e: io::Error| {
        Error::os(
            format!("read archive: entry {}: bad device number", quote(name)),
            one_line(e),
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

/// Reads the data of a regular-file entry and sends it to the data thread in
/// parts of at most [`CHUNK`] bytes, `meta` with the last one.
fn copy_entry<R: Read>(
    data: &mut read::Input<R>,
    filler: &mut Filler<'_>,
    name: &[u8],
    size: u64,
    meta: Meta,
    reporter: &mut Reporter<'_>,
    entries: u64,
) -> Result<()> {
    // Never shown: `Filler::finish` returns the data thread's own error first.
    let stopped = || Error::msg("import: the data thread stopped");
    let eof = |done: u64| {
        Error::msg(format!(
            "read archive: entry {}: unexpected end of archive ({done} of {size} bytes)",
            quote(name)
        ))
    };
    let mut meta = Some(meta);
    let mut left = size;
    loop {
        let mut buf = filler.buffer().ok_or_else(stopped)?;
        let want = CHUNK.min(usize::try_from(left).unwrap_or(usize::MAX));
        let mut got = 0;
        while got < want {
            match data.read_data(&mut buf[got..want]) {
                Ok(0) => return Err(eof(size - left + got as u64)),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(eof(size - left + got as u64))
                }
                Err(e) => return Err(Error::os(format!("read archive: entry {}", quote(name)), e)),
            }
        }
        left -= want as u64;
        let last = if left == 0 { meta.take() } else { None };
        if !filler.send(buf, want, last) {
            return Err(stopped());
        }
        reporter.tick(entries);
        if left == 0 {
            return Ok(());
        }
    }
}
