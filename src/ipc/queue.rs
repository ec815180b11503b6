//! `Queue()`: a message queue many processes can put to and get from at once.
//!
//! One kernel pipe carries framed messages (see [`pipe`](super::pipe)); a page of shared
//! memory holds a write lock, a read lock and a message count. A writer holds the write
//! lock for a whole message and a reader the read lock for a whole message, so messages of
//! any size never interleave, with no feeder thread. A bounded queue (`Queue(maxsize)`) also
//! has a shared semaphore of free places.
//!
//! The pipe is enlarged to 1 MiB where the system allows (`F_SETPIPE_SZ`): that much can
//! wait in an unbounded queue before `put` waits for a reader (Python's feeder thread would
//! buffer it in memory instead).
//!
//! A process that dies while holding one of the queue's locks is noticed by the next one
//! that waits for it, which takes over. If it died in the middle of a message, the stream
//! can no longer be read reliably: the queue marks itself broken, and every later `put`
//! and `get` is an `OSError`. A reader left waiting for the rest of a message checks every
//! [`LIVENESS_CHECK`] that its writer still exists, so it never waits forever.

use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use rhai::Dynamic;

use super::pipe::{read_message, wait_readable, with_message, write_pieces};
use super::shm::Shm;
use super::sync::{
    pid_alive, Acquired, Deadline, OnDeadHolder, RawLock, Semaphore, LIVENESS_CHECK,
};
use crate::error::{Error, ErrorKind, Result};

/// How much an unbounded queue's pipe is asked to hold.
pub const PIPE_SIZE: i32 = 1 << 20;

// Shared page layout (32-bit words): 0 write lock, 1 read lock, 2 writer mid-message,
// 3 reader mid-message, 4 broken; 64-bit word 3 (bytes 24..32): the message count.
const WRITE_LOCK: usize = 0;
const READ_LOCK: usize = 1;
const WRITING: usize = 2;
const READING: usize = 3;
const BROKEN: usize = 4;
const COUNT: usize = 3;

fn broken(why: String) -> Error {
    Error::new(ErrorKind::OSError, format!("the Queue is broken: {why}"))
}

struct Inner {
    shm: Rc<Shm>,
    read: OwnedFd,
    write: OwnedFd,
    slots: Option<Semaphore>,
    maxsize: u32,
}

/// A multi-producer, multi-consumer queue shared by the processes forked after it was made.
#[derive(Clone)]
pub struct Queue(Rc<Inner>);

impl Queue {
    /// A queue; `maxsize` 0 means unbounded.
    pub fn new(maxsize: u32) -> Result<Self> {
        let (read, write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::os("pipe for a Queue", e))?;
        // Readers never block in `read` (see `get`): the flag is on the read end's open
        // file, which every process shares.
        fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(|e| Error::os("making a Queue's pipe non-blocking", e))?;
        // Best effort: the default 64 KiB still works, only sooner makes writers wait.
        let _ = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        let shm = Shm::new(32)?;
        let slots = if maxsize > 0 {
            Some(Semaphore::new(maxsize, false)?)
        } else {
            None
        };
        Ok(Self(Rc::new(Inner {
            shm,
            read,
            write,
            slots,
            maxsize,
        })))
    }

    /// The bound given at creation (0: none).
    pub fn maxsize(&self) -> u32 {
        self.0.maxsize
    }

    fn lock(&self, which: usize, busy: usize, deadline: Deadline) -> Result<Option<RawLock>> {
        let lock = RawLock::new(self.0.shm.clone(), which);
        match lock.acquire(deadline, OnDeadHolder::TakeOver, "the Queue's lock")? {
            Acquired::TimedOut => Ok(None),
            Acquired::Yes => Ok(Some(lock)),
            Acquired::TookOver(pid) => {
                if self.0.shm.u32(busy).load(SeqCst) != 0 {
                    self.0.shm.u32(BROKEN).store(1, SeqCst);
                    lock.release();
                    return Err(broken(format!(
                        "process {pid} ended in the middle of a message"
                    )));
                }
                Ok(Some(lock))
            }
        }
    }

    /// Puts a value, waiting at most `timeout` for room (`Full`).
    pub fn put(
        &self,
        value: &Dynamic,
        timeout: Option<Duration>,
        type_name: impl Fn(&str) -> String,
    ) -> Result<()> {
        with_message(value, type_name, |pieces| self.put_message(pieces, timeout))
    }

    fn put_message(&self, pieces: &[&[u8]], timeout: Option<Duration>) -> Result<()> {
        self.check_broken()?;
        let deadline = Deadline::after(timeout);
        let full = || Error::new(ErrorKind::Full, "the Queue is full");
        if let Some(slots) = &self.0.slots {
            if !slots.acquire_until(deadline)? {
                return Err(full());
            }
        }
        let give_back = || {
            if let Some(slots) = &self.0.slots {
                let _ = slots.release();
            }
        };
        let lock = match self.lock(WRITE_LOCK, WRITING, deadline) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                give_back();
                return Err(full());
            }
            Err(e) => {
                give_back();
                return Err(e);
            }
        };
        // With a timeout, do not start a message the pipe has no room for; once started, a
        // message is always finished.
        if deadline.is_some() && !self.wait_writable(deadline)? {
            lock.release();
            give_back();
            return Err(full());
        }
        // A write of up to PIPE_BUF bytes is atomic: only a longer one can be cut short.
        let writing = self.0.shm.u32(WRITING);
        let long = pieces.iter().map(|p| p.len()).sum::<usize>() > libc::PIPE_BUF;
        if long {
            writing.store(1, SeqCst);
        }
        let result = write_pieces(self.0.write.as_fd(), pieces, false, "the Queue");
        if long {
            writing.store(0, SeqCst);
        }
        if result.is_ok() {
            self.0.shm.i64(COUNT).fetch_add(1, SeqCst);
        }
        lock.release();
        result
    }

    fn wait_writable(&self, deadline: Deadline) -> Result<bool> {
        crate::process::wait::wait_fd(self.0.write.as_fd(), libc::POLLOUT, deadline, "the Queue")
    }

    /// Takes the oldest value, waiting at most `timeout` for one (`Empty`).
    pub fn get(&self, timeout: Option<Duration>) -> Result<Dynamic> {
        self.check_broken()?;
        let deadline = Deadline::after(timeout);
        let empty = || Error::new(ErrorKind::Empty, "the Queue is empty");
        let Some(lock) = self.lock(READ_LOCK, READING, deadline)? else {
            return Err(empty());
        };
        let fd = self.0.read.as_fd();
        let reading = self.0.shm.u32(READING);
        // The read end is non-blocking: before a message starts, wait until the deadline;
        // in the middle of one, wait in slices and check that its writer is still there.
        let mut wait = |started: bool| -> Result<bool> {
            if !started {
                return wait_readable(fd, deadline, "the Queue");
            }
            if !wait_readable(fd, Deadline::after(Some(LIVENESS_CHECK)), "the Queue")? {
                self.check_writer()?;
            }
            Ok(true)
        };
        let result = read_message(fd, "the Queue", || reading.store(1, SeqCst), &mut wait);
        match &result {
            Ok(Some(_)) => {
                reading.store(0, SeqCst);
                self.0.shm.i64(COUNT).fetch_sub(1, SeqCst);
            }
            Ok(None) => {}
            // Mid-message: the rest of the stream cannot be told apart any more.
            Err(_) if reading.load(SeqCst) != 0 => self.0.shm.u32(BROKEN).store(1, SeqCst),
            Err(_) => {}
        }
        lock.release();
        match result? {
            Some(value) => {
                if let Some(slots) = &self.0.slots {
                    let _ = slots.release();
                }
                Ok(value)
            }
            None => Err(empty()),
        }
    }

    /// In the middle of a message that stopped coming: fails if its writer is gone.
    fn check_writer(&self) -> Result<()> {
        let writer = RawLock::new(self.0.shm.clone(), WRITE_LOCK).holder();
        match writer {
            Some(pid) if pid_alive(pid) => Ok(()),
            _ => {
                self.0.shm.u32(BROKEN).store(1, SeqCst);
                Err(broken(match writer {
                    Some(pid) => format!("process {pid} ended in the middle of writing a message"),
                    None => "a message was cut short by a writer that ended".into(),
                }))
            }
        }
    }

    fn check_broken(&self) -> Result<()> {
        if self.0.shm.u32(BROKEN).load(SeqCst) != 0 {
            return Err(broken("a process ended in the middle of a message".into()));
        }
        Ok(())
    }

    /// About how many messages are waiting (other processes may be putting or getting).
    pub fn qsize(&self) -> u64 {
        self.0.shm.i64(COUNT).load(SeqCst).max(0) as u64
    }

    /// Whether no message is waiting right now.
    pub fn empty(&self) -> Result<bool> {
        Ok(!wait_readable(
            self.0.read.as_fd(),
            Deadline::after(Some(Duration::ZERO)),
            "the Queue",
        )?)
    }

    /// Whether a bounded queue has no free place right now.
    pub fn full(&self) -> bool {
        self.0.slots.as_ref().is_some_and(|s| s.value() == 0)
    }
}
