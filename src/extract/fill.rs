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
//! flight. When the thread cannot be started, the calling thread does each
//! job as it sends it.

use std::os::fd::OwnedFd;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::{Scope, ScopedJoinHandle};

use super::write::{finish_file, write_all, Meta};
use crate::error::{Error, Result};

/// How many data buffers exist, and so how many jobs may be in flight.
const BUFFERS: usize = 8;
/// The size of a data buffer: a bigger file is sent in several jobs.
pub(super) const CHUNK: usize = 1 << 20;
/// The data thread's stack: it calls little more than `write` and `fchown`.
const STACK: usize = 256 << 10;

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
    mode: Mode<'scope>,
    /// The file of the jobs being sent: set by [`Filler::open`], moved into
    /// its first job.
    file: Option<(OwnedFd, Vec<u8>)>,
}

/// Where the jobs are done.
enum Mode<'scope> {
    /// On the data thread.
    Thread {
        jobs: Sender<Job>,
        free: Receiver<Vec<u8>>,
        /// Buffers made so far (at most [`BUFFERS`]).
        made: usize,
        thread: ScopedJoinHandle<'scope, Result<()>>,
    },
    /// On the calling thread, each as it is sent: the data thread could not
    /// be started (a limit on tasks, say). Slower, not wrong.
    Inline {
        filling: Filling,
        /// The one buffer, while no job holds it.
        spare: Option<Vec<u8>>,
        /// The first error, returned by [`Filler::finish`].
        failed: Option<Error>,
    },
}

impl<'scope> Filler<'scope> {
    /// Starts the data thread in `scope`, or does without one when it cannot
    /// be started.
    pub fn start<'env>(scope: &'scope Scope<'scope, 'env>) -> Filler<'scope> {
        let (jobs, inbox) = channel::<Job>();
        let (give_back, free) = channel::<Vec<u8>>();
        let spawned = std::thread::Builder::new()
            .name("import-data".into())
            .stack_size(STACK)
            .spawn_scoped(scope, move || fill(inbox, give_back));
        match spawned {
            Ok(thread) => Filler {
                mode: Mode::Thread {
                    jobs,
                    free,
                    made: 0,
                    thread,
                },
                file: None,
            },
            Err(_) => Filler::inline(),
        }
    }

    /// A filler without a data thread: every job is done as it is sent.
    pub fn inline() -> Filler<'scope> {
        Filler {
            mode: Mode::Inline {
                filling: Filling::default(),
                spare: None,
                failed: None,
            },
            file: None,
        }
    }

    /// Begins a file: `fd` (created empty) is filled by the next [`Filler::send`]
    /// calls, the last of which carries its metadata.
    pub fn open(&mut self, fd: OwnedFd, path: &[u8]) {
        self.file = Some((fd, path.to_vec()));
    }

    /// A buffer of [`CHUNK`] bytes for the next job: a new one while fewer
    /// than [`BUFFERS`] exist, else the next one the data thread hands back.
    /// `None` when the jobs have stopped at an error ([`Filler::finish`]
    /// returns it).
    pub fn buffer(&mut self) -> Option<Vec<u8>> {
        match &mut self.mode {
            Mode::Thread { free, made, .. } => {
                if let Ok(buf) = free.try_recv() {
                    return Some(buf);
                }
                if *made < BUFFERS {
                    *made += 1;
                    return Some(vec![0; CHUNK]);
                }
                free.recv().ok()
            }
            Mode::Inline { spare, failed, .. } => match failed {
                Some(_) => None,
                None => Some(spare.take().unwrap_or_else(|| vec![0; CHUNK])),
            },
        }
    }

    /// Sends `len` bytes of `data` (a buffer from [`Filler::buffer`]) for the
    /// open file; `last` is its metadata when this is its last data. `false`
    /// when the jobs have stopped at an error.
    pub fn send(&mut self, data: Vec<u8>, len: usize, last: Option<Meta>) -> bool {
        let job = Job {
            file: self.file.take(),
            data,
            len,
            last,
        };
        match &mut self.mode {
            Mode::Thread { jobs, .. } => jobs.send(job).is_ok(),
            Mode::Inline {
                filling,
                spare,
                failed,
            } => match filling.take(job) {
                Ok(buf) => {
                    *spare = Some(buf);
                    true
                }
                Err(e) => {
                    *failed = Some(e);
                    false
                }
            },
        }
    }

    /// Waits until every job is done; the first error of the jobs.
    pub fn finish(self) -> Result<()> {
        match self.mode {
            Mode::Thread { jobs, thread, .. } => {
                drop(jobs);
                match thread.join() {
                    Ok(result) => result,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Mode::Inline { failed, .. } => failed.map_or(Ok(()), Err),
        }
    }
}

/// The file being filled, across its jobs.
#[derive(Default)]
struct Filling {
    current: Option<(OwnedFd, Vec<u8>)>,
}

impl Filling {
    /// Writes a job's data to its file and, on the file's last job, applies
    /// the metadata and closes it; hands back the job's buffer.
    fn take(&mut self, job: Job) -> Result<Vec<u8>> {
        if job.file.is_some() {
            self.current = job.file;
        }
        let Some((fd, path)) = &self.current else {
            return Err(Error::msg("import: data for no file (internal error)"));
        };
        write_all(fd, &job.data[..job.len], path)?;
        if let Some(meta) = job.last {
            finish_file(fd, &meta, path)?;
            self.current = None;
        }
        Ok(job.data)
    }
}

/// The data thread: does the jobs in order, handing each buffer back. Stops
/// at the first error (the calling thread then sees its sends fail).
fn fill(inbox: Receiver<Job>, give_back: Sender<Vec<u8>>) -> Result<()> {
    let mut filling = Filling::default();
    for job in inbox {
        let buf = filling.take(job)?;
        // The calling thread may have stopped waiting: then the buffer goes.
        let _ = give_back.send(buf);
    }
    Ok(())
}
