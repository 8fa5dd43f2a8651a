//! The reading half of an import: splits a tar stream into entries.
//!
//! The `tar` crate parses the fields of each 512-byte header; this reader
//! handles the blocks around them: GNU long names and links (`L`, `K`), PAX
//! local headers (`x`, parsed here by their length prefixes, so a value may
//! hold any byte, a newline included), PAX global headers (`g`) and volume
//! labels (`V`), which are skipped, and the data and padding of each entry.
//! The crate's own `Archive` is not used: its PAX parser splits records at
//! newlines, which loses a `path`, `size` or xattr whose value holds one.

use std::io::{self, Read};

/// The size of a tar block.
const BLOCK: u64 = 512;
/// The largest PAX header or GNU long name accepted (xattr values are at most
/// 64 KiB on Linux; this leaves room for many).
const MAX_EXTENSION: u64 = 16 << 20;

/// What the PAX records of an entry say (`None`: not given).
#[derive(Debug, Default)]
pub(super) struct Pax {
    /// `uid`.
    pub uid: Option<u64>,
    /// `gid`.
    pub gid: Option<u64>,
    /// `mtime`, as written (`SECONDS[.FRACTION]`).
    pub mtime: Option<Vec<u8>>,
    /// `SCHILY.xattr.NAME` records: (NAME, value).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The first `GNU.sparse.*` key, when the entry is a PAX sparse file.
    pub sparse: Option<Vec<u8>>,
    /// `GNU.sparse.name`: the real name of a PAX sparse file.
    pub sparse_name: Option<Vec<u8>>,
}

/// The current entry: its header and what the extension headers before it said.
pub(super) struct Entry {
    /// The entry's own header.
    pub header: tar::Header,
    /// The path: PAX `path`, else a GNU long name, else the header's.
    pub path: Vec<u8>,
    /// The link target: PAX `linkpath`, else a GNU long link, else the header's.
    pub link: Option<Vec<u8>>,
    /// The size of the data that follows the header (PAX `size` wins).
    pub size: u64,
    /// The entry's PAX records.
    pub pax: Pax,
}

/// The input, and where the current entry's data stands.
pub(super) struct Input<R> {
    inner: R,
    /// Data bytes of the current entry not read yet.
    left: u64,
    /// Padding after them, up to the next block.
    pad: u64,
}

/// Reads a tar stream entry by entry.
pub(super) struct Reader<R> {
    /// The input (read an entry's data with [`Input::read_data`]).
    pub input: Input<R>,
    /// The current entry, valid after [`Reader::next`] returned `true`.
    pub entry: Entry,
    /// The raw PAX data and GNU long name and link of the next entry.
    pax_data: Vec<u8>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

/// An error about the archive's content (not an OS error).
fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl<R: Read> Input<R> {
    /// Reads data of the current entry; 0 at its end, an error when the archive
    /// ends first.
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "unexpected end of archive",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }

    /// Skips what is left of the current entry's data and its padding.
    fn skip_rest(&mut self) -> io::Result<()> {
        let amount = self.left + self.pad;
        let skipped = io::copy(&mut (&mut self.inner).take(amount), &mut io::sink())?;
        if skipped < amount {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "unexpected end of archive",
            ));
        }
        self.left = 0;
        self.pad = 0;
        Ok(())
    }

    /// Reads one header block; `false` at the end of the input.
    fn read_block(&mut self, block: &mut [u8; BLOCK as usize]) -> io::Result<bool> {
        let mut got = 0;
        while got < block.len() {
            match self.inner.read(&mut block[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "unexpected end of archive in a header",
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Starts the data of an entry of `size` bytes.
    fn start(&mut self, size: u64) -> io::Result<()> {
        self.left = size;
        self.pad = size
            .checked_next_multiple_of(BLOCK)
            .ok_or_else(|| bad("entry size overflow"))?
            - size;
        Ok(())
    }

    /// Reads all data of the current entry (an extension header) into `out`.
    fn read_all(&mut self, out: &mut Vec<u8>, what: &str) -> io::Result<()> {
        if self.left > MAX_EXTENSION {
            return Err(bad(format!(
                "{what} of {} bytes is too large (the limit is {} MiB)",
                self.left,
                MAX_EXTENSION >> 20
            )));
        }
        let want = self.left;
        let n = (&mut self.inner).take(want).read_to_end(out)?;
        self.left -= n as u64;
        if self.left > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("unexpected end of archive in a {what}"),
            ));
        }
        self.skip_rest()
    }
}

impl<R: Read> Input<R> {
    /// Reads a GNU long name or link (the current entry's data), cut at its
    /// first NUL as GNU tar reads it.
    fn read_long(&mut self, what: &str) -> io::Result<Vec<u8>> {
        let mut name = Vec::new();
        self.read_all(&mut name, what)?;
        if let Some(end) = name.iter().position(|&b| b == 0) {
            name.truncate(end);
        }
        Ok(name)
    }
}

impl<R: Read> Reader<R> {
    /// A reader of the tar stream `inner`.
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            input: Input {
                inner,
                left: 0,
                pad: 0,
            },
            entry: Entry {
                header: tar::Header::new_old(),
                path: Vec::new(),
                link: None,
                size: 0,
                pax: Pax::default(),
            },
            pax_data: Vec::new(),
            long_name: None,
            long_link: None,
        }
    }

    /// Moves to the next entry, skipping what is left of the current one;
    /// `false` at the end of the archive (a zero block or the end of input).
    pub fn next(&mut self) -> io::Result<bool> {
        self.input.skip_rest()?;
        self.pax_data.clear();
        self.long_name = None;
        self.long_link = None;
        let mut pending = false;
        let mut block = [0u8; BLOCK as usize];
        loop {
            if !self.input.read_block(&mut block)? || block.iter().all(|&b| b == 0) {
                if pending {
                    return Err(bad(
                        "the archive ends after an extension header, without its entry",
                    ));
                }
                return Ok(false);
            }
            let header = self.entry_header(&block)?;
            let size = header.entry_size()?;
            self.input.start(size)?;
            match header.entry_type().as_byte() {
                b'x' => {
                    pending = true;
                    self.input.read_all(&mut self.pax_data, "PAX header")?;
                }
                b'L' => {
                    pending = true;
                    self.long_name = Some(self.input.read_long("GNU long name")?);
                }
                b'K' => {
                    pending = true;
                    self.long_link = Some(self.input.read_long("GNU long link")?);
                }
                // PAX global headers and GNU volume labels describe no file.
                b'g' | b'V' => self.input.skip_rest()?,
                _ => {
                    self.entry.header = header;
                    return self.finish_entry(size).map(|()| true);
                }
            }
        }
    }

    /// Parses a header block, checking its checksum.
    fn entry_header(&self, block: &[u8; BLOCK as usize]) -> io::Result<tar::Header> {
        let mut header = tar::Header::new_old();
        header.as_mut_bytes().copy_from_slice(block);
        let sum: u32 = block[..148]
            .iter()
            .chain(&block[156..])
            .map(|&b| u32::from(b))
            .sum::<u32>()
            + 8 * u32::from(b' ');
        if header.cksum()? != sum {
            return Err(bad("archive header checksum mismatch"));
        }
        Ok(header)
    }

    /// Applies the extension headers read before the entry's header.
    fn finish_entry(&mut self, header_size: u64) -> io::Result<()> {
        let entry = &mut self.entry;
        entry.path.clear();
        entry.link = None;
        entry.size = header_size;
        entry.pax = Pax::default();
        let mut pax_path = None;
        let mut pax_link = None;
        let mut pax_size = None;
        for record in PaxRecords(&self.pax_data) {
            let (key, value) = record?;
            // An empty value removes the record (POSIX): the header's field counts.
            if value.is_empty() {
                continue;
            }
            match key {
                b"path" => pax_path = Some(value),
                b"linkpath" => pax_link = Some(value),
                b"size" => pax_size = Some(pax_number(key, value)?),
                b"uid" => entry.pax.uid = Some(pax_number(key, value)?),
                b"gid" => entry.pax.gid = Some(pax_number(key, value)?),
                b"mtime" => entry.pax.mtime = Some(value.to_vec()),
                b"GNU.sparse.name" => {
                    entry.pax.sparse_name = Some(value.to_vec());
                    entry.pax.sparse.get_or_insert_with(|| key.to_vec());
                }
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        entry.pax.xattrs.push((name.to_vec(), value.to_vec()));
                    } else if key.starts_with(b"GNU.sparse.") {
                        entry.pax.sparse.get_or_insert_with(|| key.to_vec());
                    }
                }
            }
        }
        match (pax_path, &self.long_name) {
            (Some(path), _) => entry.path.extend_from_slice(path),
            (None, Some(name)) => entry.path.extend_from_slice(name),
            (None, None) => entry.path.extend_from_slice(&entry.header.path_bytes()),
        }
        entry.link = match (pax_link, &self.long_link) {
            (Some(link), _) => Some(link.to_vec()),
            (None, Some(link)) => Some(link.clone()),
            (None, None) => entry.header.link_name_bytes().map(|l| l.into_owned()),
        };
        if let Some(size) = pax_size {
            entry.size = size;
            self.input.start(size)?;
        }
        Ok(())
    }
}

/// A decimal PAX value.
fn pax_number(key: &[u8], value: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(value)
        .ok()
        .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            bad(format!(
                "bad PAX {}: {:?}",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(value)
            ))
        })
}

/// The records of PAX header data, `LEN KEY=VALUE\n` each, where LEN (decimal)
/// counts the whole record: a value may hold any byte, newlines included.
pub(super) struct PaxRecords<'a>(pub &'a [u8]);

impl<'a> Iterator for PaxRecords<'a> {
    type Item = io::Result<(&'a [u8], &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let data = self.0;
        // Some writers pad the data with NUL bytes.
        if data.iter().all(|&b| b == 0) {
            return None;
        }
        self.0 = &[];
        let malformed = || Some(Err(bad("malformed PAX record")));
        let Some(space) = data.iter().take(20).position(|&b| b == b' ') else {
            return malformed();
        };
        let len = match std::str::from_utf8(&data[..space])
            .ok()
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|l| l.parse::<usize>().ok())
        {
            Some(len) if len > space + 1 && len <= data.len() => len,
            _ => return malformed(),
        };
        let record = &data[space + 1..len];
        let Some((&b'\n', body)) = record.split_last() else {
            return malformed();
        };
        let Some(equals) = body.iter().position(|&b| b == b'=') else {
            return malformed();
        };
        self.0 = &data[len..];
        Some(Ok((&body[..equals], &body[equals + 1..])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(data: &[u8]) -> Vec<(String, Vec<u8>)> {
        PaxRecords(data)
            .map(|r| {
                let (k, v) = r.unwrap();
                (String::from_utf8(k.to_vec()).unwrap(), v.to_vec())
            })
            .collect()
    }

    #[test]
    fn pax_records_honour_the_length() {
        assert_eq!(
            records(b"12 path=a\nb\n14 uid=123456\n"),
            [
                ("path".to_string(), b"a\nb".to_vec()),
                ("uid".to_string(), b"123456".to_vec())
            ]
        );
        assert_eq!(
            records(b"8 a=b=c\n\0\0"),
            [("a".to_string(), b"b=c".to_vec())]
        );
        assert!(records(b"").is_empty());
        for bad in [
            &b"11 path=a\n"[..],
            b"x path=a\n",
            b"9 patha\nx",
            b"4 a=\n",
            b"99 a=b\n",
            b"8 a=bcd",
        ] {
            assert!(
                PaxRecords(bad).any(|r| r.is_err()),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
