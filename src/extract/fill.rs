//! The data thread of an archive import. The calling thread reads the tar
//! stream and creates every entry; a second thread writes the data of regular
//! files, gives them their owner, mode, xattrs and mtime, and closes them. On a
//! machine with a second CPU the two halves overlap: creating a file (a btree
//! insert under btrfs locks) and writing its data (page-cache copies and
//! delayed-allocation bookkeeping) each take about half of an import's time.
//!
//! The data thread touches nothing but the open files it is handed: every
//! path is resolved on the calling thread, as in a one-thread import. Jobs
//! carry a buffer each, from a fixed set of [`BUFFERS`] that the thread hands
//! back, so at most that many files (and `BUFFERS * CHUNK` bytes) are in
//! flight.

use std::os::fd::OwnedFd;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::{Scope, ScopedJoinHandle};

use super::write::{finish_file, write_all, Meta};
use crate::error::{Error, Result};

/// How many data buffers exist, and so how many jobs may be in flight.
const BUFFERS: usize = 8;
/// The size of a data buffer: a bigger file is sent in several jobs.
pub(super) const CHUNK: usize = 1 << 20;

/// A piece of work for the data thread.
struct Job {
    /// Set on a file's first job: the file, created empty, and its path (for
    /// messages). Later jobs continue the file of the last one that had it.
    file: Option<(OwnedFd, Vec<u8>)>,
    /// A buffer of [`CHUNK`] bytes, of which the first `len` are data.
    data: Vec<u8>,
    /// How much of `data` to write.
    len: usize,
    /// Set on a file's last job: the metadata to apply before closing it.
    last: Option<Meta>,
}

/// The calling thread's end of the data thread.
pub(super) struct Filler<'scope> {
    jobs: Sender<Job>,
    free: Receiver<Vec<u8>>,
    /// Buffers made so far (at most [`BUFFERS`]).
    made: usize,
    thread: ScopedJoinHandle<'scope, Result<()>>,
    /// The file of the jobs being sent: set by [`Filler::open`], moved into
    /// its first job.
    file: Option<(OwnedFd, Vec<u8>)>,
}

impl<'scope> Filler<'scope> {
    /// Starts the data thread in `scope`.
    pub fn start<'env>(scope: &'scope Scope<'scope, 'env>) -> Result<Filler<'scope>> {
        let (jobs, inbox) = channel::<Job>();
        let (give_back, free) = channel::<Vec<u8>>();
        let thread = std::thread::Builder::new()
            .name("import-data".into())
            .spawn_scoped(scope, move || fill(inbox, give_back))
            .map_err(|e| Error::os("import: start the data thread", e))?;
        Ok(Filler {
            jobs,
            free,
            made: 0,
            thread,
            file: None,
        })
    }

    /// Begins a file: `fd` (created empty) is filled by the next [`Filler::send`]
    /// calls, the last of which carries its metadata.
    pub fn open(&mut self, fd: OwnedFd, path: &[u8]) {
        self.file = Some((fd, path.to_vec()));
    }

    /// A buffer of [`CHUNK`] bytes for the next job: a new one while fewer
    /// than [`BUFFERS`] exist, else the next one the data thread hands back.
    /// `None` when the data thread has stopped ([`Filler::finish`] returns
    /// why).
    pub fn buffer(&mut self) -> Option<Vec<u8>> {
        if let Ok(buf) = self.free.try_recv() {
            return Some(buf);
        }
        if self.made < BUFFERS {
            self.made += 1;
            return Some(vec![0; CHUNK]);
        }
        self.free.recv().ok()
    }

    /// Sends `len` bytes of `data` (a buffer from [`Filler::buffer`]) for the
    /// open file; `last` is its metadata when this is its last data. `false`
    /// when the data thread has stopped.
    pub fn send(&mut self, data: Vec<u8>, len: usize, last: Option<Meta>) -> bool {
        let job = Job {
            file: self.file.take(),
            data,
            len,
            last,
        };
        self.jobs.send(job).is_ok()
    }

    /// Waits until every job is done; the first error of the data thread.
    pub fn finish(self) -> Result<()> {
        drop(self.jobs);
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// The data thread: writes each job's data to its file and, on a file's last
/// job, applies the metadata and closes it. Stops at the first error (the
/// calling thread then sees its sends fail).
fn fill(inbox: Receiver<Job>, give_back: Sender<Vec<u8>>) -> Result<()> {
    let mut current: Option<(OwnedFd, Vec<u8>)> = None;
    for job in inbox {
        if job.file.is_some() {
            current = job.file;
        }
        let Some((fd, path)) = &current else {
            return Err(Error::msg("import: data for no file (internal error)"));
        };
        write_all(fd, &job.data[..job.len], path)?;
        // The calling thread may have stopped waiting: then the buffer goes.
        let _ = give_back.send(job.data);
        if let Some(meta) = job.last {
            finish_file(fd, &meta, path)?;
            current = None;
        }
    }
    Ok(())
}
