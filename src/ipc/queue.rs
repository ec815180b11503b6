//! `Queue()`, `JoinableQueue()`, `SimpleQueue()`: message queues many processes can put to
//! and get from at once, that survive any of them being killed at any moment.
//!
//! # Design
//!
//! One kernel pipe carries the messages; a page of shared memory holds a lock for writers,
//! a lock for readers, and the bookkeeping below. There is no feeder thread: `put` writes
//! into the pipe itself (enlarged to 1 MiB where the system allows, `F_SETPIPE_SZ`), and a
//! writer holds the write lock for a whole message and a reader the read lock for a whole
//! message, so messages never interleave.
//!
//! **Chunks.** A message travels as *chunks* of at most [`CHUNK`] bytes (`PIPE_BUF`): a
//! 16-byte head tag, data, and a 16-byte tail tag. Tags carry a magic number, their kind
//! (`START`, `CONT`, `TAIL`, `END`, and `ABORT`, a head tag with no data), the message's
//! sequence number, and lengths. Each chunk is written whole: one write of at most
//! `PIPE_BUF` bytes is atomic, and a write of several full chunks stops, when the pipe is
//! full or the writer is killed, only between two of them (Linux fills a pipe page by
//! page, and a full chunk is exactly one 4096-byte page-aligned unit of the write). So the
//! pipe only ever holds whole chunks, whoever dies when.
//!
//! **Readers.** A reader reads a head tag, then the chunk's data together with its tail
//! tag (and the next chunk's head tag, if that chunk is there), each in one `read` of
//! bytes that are all there (whole chunks are); in the middle of a long message it reads
//! many chunks at once (see `read_batch`). The last tag of each read lands straight in
//! shared memory, in a slot zeroed before the read and announced in a "pending read"
//! word: if the reader is killed around a read, the next reader (who takes
//! the read lock over from the dead holder) finds the slot filled, or not, and so knows
//! exactly where the stream stands. It then skips the rest of the dead reader's message
//! (chunks whose `START` it has not seen) and goes on with the next. So a consumer killed
//! at any moment loses at most the message it was reading, and nothing else ever changes.
//!
//! **Writers.** A writer records in shared memory the message it is writing. If it gives up
//! in the middle of a message (its timeout passed, or Ctrl-C), or dies, the next writer
//! writes an `ABORT` tag for that message before its own, and readers drop the partial
//! message. A reader waiting for the rest of a message watches its writer with a pidfd and
//! notices its death at once.
//!
//! **Counting.** Writers number messages in order (`alloc`); readers record that every
//! message below `fin` is finished (received, or dropped), and how many were dropped.
//! `qsize()` is `alloc - fin`, a bounded queue has room while that is below `maxsize`, and
//! a `JoinableQueue` has `alloc - dropped - task_done calls` unfinished tasks. Each of
//! these is one store made with the lock held, so a process killed anywhere leaves them
//! right: a killed consumer never leaks a place in a bounded queue.
//!
//! A malformed tag (which the above rules out) marks the queue broken: every later call
//! is an `OSError`, never a wrong value.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{
    AtomicI64, AtomicU32,
    Ordering::{Acquire, Release, SeqCst},
};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use rhai::Dynamic;

use super::codec;
use super::pipe::{
    encode_frame, readable_now, wait_readable, wait_readable_or_writer_gone, Writer, BIG,
    MAX_MESSAGE, VALUE_MARK,
};
use super::sync::raw_lock;
use crate::error::{Error, ErrorKind, Result};
use crate::process::wait::{wait_fd, wait_word};
use crate::sys::futex::futex_wake;
use crate::sys::lock::{Acquired, OnDeadHolder};
use crate::sys::shm::{Scatter, Shm};
use crate::sys::Deadline;

/// How much an unbounded queue's pipe is asked to hold.
pub(crate) const PIPE_SIZE: i32 = 1 << 20;

/// The largest unit written at once, and the size of a full chunk: `PIPE_BUF`, up to which a
/// pipe write is atomic.
pub(crate) const CHUNK: usize = 4096;
const TAG: usize = 16;
/// Data bytes in a full chunk (and at most in the last one).
const CHUNK_DATA: usize = CHUNK - 2 * TAG;
/// Full chunks per `writev` or `readv` (3 or 4 iovecs each, well under `IOV_MAX`).
const BATCH: usize = 200;
const MAGIC: u16 = 0x5150;

// Shared page layout, in 32-bit words; writers and readers on separate cache lines. The
// two locks are `RawLock` indices: small, so that they stay valid whether an index names
// a word (words 0 and 8 are not used otherwise) or a slot of the page's lock area.
const WRITE_LOCK: usize = 0;
/// The next sequence number to hand out.
const ALLOC: usize = 1;
/// 64-bit word 1 (words 2, 3): the writer's message (high half) and its state (low half).
const WSTATE: usize = 1;
const READ_LOCK: usize = 8;
/// Where the stream stands: [`AT_HEAD`] or [`IN_CHUNK`] (the head tag in [`RTAG`] was read).
const RPOS: usize = 17;
/// A read in flight: [`PEND_HEAD`], [`PEND_DATA`] or 0.
const RPEND: usize = 18;
/// 64-bit word 10 (words 20, 21): `fin` (low half: every message below it is finished) and
/// how many finished messages were dropped (high half).
const RSTATE: usize = 10;
/// The current head tag (4 words).
const RTAG: usize = 24;
/// Where each read puts its tag (4 words), zeroed before the read.
const RSLOT: usize = 28;
/// Where a read of a chunk's data puts the next chunk's head tag, if it is there already
/// (4 words), zeroed before the read.
const RNEXT: usize = 36;
/// Bumped whenever `fin` or the `task_done` count moves (a futex).
const RGEN: usize = 32;
/// Processes waiting on [`RGEN`].
const RWAITERS: usize = 33;
/// `task_done()` calls.
const DONE: usize = 34;
/// Set once the stream was found corrupt (read by every call: on a line of its own).
const BROKEN: usize = 48;

const IDLE: u32 = 0;
const WRITING: u32 = 1;
/// The writer gave its message up but could not write its `ABORT` tag yet.
const OWED: u32 = 2;
/// The message was given up and its `ABORT` tag written (`IDLE` means it was finished).
const ABORTED: u32 = 3;

const AT_HEAD: u32 = 0;
const IN_CHUNK: u32 = 1;
const PEND_HEAD: u32 = 1;
const PEND_DATA: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Start = 1,
    Cont = 2,
    Tail = 3,
    End = 4,
    Abort = 5,
}

/// A tag: `len` is the data that follows a head tag in its chunk; `info` is the message's
/// length (`Start`, `End`) or the chunk's index (`Cont`, `Tail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag {
    kind: Kind,
    seq: u32,
    len: u32,
    info: u32,
}

impl Tag {
    fn new(kind: Kind, seq: u32, len: usize, info: usize) -> Self {
        Self {
            kind,
            seq,
            len: len as u32,
            info: info as u32,
        }
    }

    fn encode(&self) -> [u8; TAG] {
        let mut bytes = [0u8; TAG];
        bytes[..2].copy_from_slice(&MAGIC.to_le_bytes());
        bytes[2] = self.kind as u8;
        bytes[4..8].copy_from_slice(&self.seq.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.len.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.info.to_le_bytes());
        bytes
    }

    /// The tag in `bytes`, if they are one.
    fn decode(bytes: [u8; TAG]) -> Option<Self> {
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        if u16::from_le_bytes([bytes[0], bytes[1]]) != MAGIC || bytes[3] != 0 {
            return None;
        }
        let kind = match bytes[2] {
            1 => Kind::Start,
            2 => Kind::Cont,
            3 => Kind::Tail,
            4 => Kind::End,
            5 => Kind::Abort,
            _ => return None,
        };
        let tag = Self {
            kind,
            seq: word(4),
            len: word(8),
            info: word(12),
        };
        let len_ok = match kind {
            Kind::Start | Kind::Cont => tag.len as usize <= CHUNK_DATA,
            _ => tag.len == 0,
        };
        len_ok.then_some(tag)
    }

    fn is_head(&self) -> bool {
        matches!(self.kind, Kind::Start | Kind::Cont | Kind::Abort)
    }

    /// The chunk's index within its message (head tags of data chunks).
    fn index(&self) -> u32 {
        match self.kind {
            Kind::Start => 0,
            _ => self.info,
        }
    }
}

/// The payload of a framed message ([`encode_frame`]'s pieces, at most two, without their
/// 8-byte length).
struct Payload<'a> {
    parts: [&'a [u8]; 2],
    len: usize,
}

impl<'a> Payload<'a> {
    fn new(pieces: &[&'a [u8]]) -> Self {
        let mut skip = 8;
        let mut parts: [&[u8]; 2] = [&[], &[]];
        let mut count = 0;
        for piece in pieces {
            let cut = skip.min(piece.len());
            skip -= cut;
            if piece.len() > cut && count < 2 {
                parts[count] = &piece[cut..];
                count += 1;
            }
        }
        let len = parts.iter().map(|p| p.len()).sum();
        Self { parts, len }
    }

    /// The (at most two) slices holding bytes `start..start + len`.
    fn slices(&self, mut start: usize, mut len: usize) -> impl Iterator<Item = &'a [u8]> {
        let mut out: [&[u8]; 2] = [&[], &[]];
        for (k, part) in self.parts.iter().enumerate() {
            if len == 0 {
                break;
            }
            if start >= part.len() {
                start -= part.len();
                continue;
            }
            let n = len.min(part.len() - start);
            out[k] = &part[start..start + n];
            start = 0;
            len -= n;
        }
        out.into_iter().filter(|s| !s.is_empty())
    }
}

/// The whole chunks of a message that one `readv` takes: their data sizes, their bytes in
/// the pipe, and how much of the message is in once they are read.
struct Batch {
    sizes: Vec<usize>,
    bytes: usize,
    got: usize,
}

/// Bytes a large message keeps apart: the value mark, the codec tag and a u32 length.
const PREFIX: usize = 6;

/// A message being put together by a reader.
struct Assembly {
    seq: u32,
    total: usize,
    got: usize,
    next: u32,
    /// Large messages keep their first [`PREFIX`] bytes apart: a top-level blob or string
    /// then needs no copy (its mark, codec tag and length are those bytes).
    split: bool,
    prefix: [u8; PREFIX],
    body: Vec<u8>,
}

impl Assembly {
    fn new(tag: &Tag) -> Result<Self> {
        let total = tag.info as usize;
        if total as u64 > MAX_MESSAGE || total < 2 {
            return Err(corrupt("a message with an impossible length"));
        }
        let split = total >= BIG + PREFIX;
        Ok(Self {
            seq: tag.seq,
            total,
            got: 0,
            next: 0,
            split,
            prefix: [0; PREFIX],
            body: vec![0; if split { total - PREFIX } else { total }],
        })
    }

    /// Whether the chunk under `tag` is this message's next one.
    fn accepts(&self, tag: &Tag) -> bool {
        let len = tag.len as usize;
        tag.seq == self.seq
            && tag.index() == self.next
            && self.got + len <= self.total
            && (len == CHUNK_DATA || self.got + len == self.total)
    }

    /// Where the next bytes go, chunk by chunk: for each of `lens`, the one or two places
    /// (the kept-apart prefix, the body) that its bytes fill, in order.
    fn targets(&mut self, lens: &[usize]) -> Vec<Vec<&mut [u8]>> {
        let at = self.got;
        let (mut prefix, mut body): (&mut [u8], &mut [u8]) = if self.split {
            let first = at.min(PREFIX);
            let body_from = at.saturating_sub(PREFIX);
            (&mut self.prefix[first..], &mut self.body[body_from..])
        } else {
            (&mut [][..], &mut self.body[at..])
        };
        let mut out = Vec::with_capacity(lens.len());
        for &len in lens {
            let mut places = Vec::with_capacity(2);
            let from_prefix = len.min(prefix.len());
            if from_prefix > 0 {
                let (now, later) = std::mem::take(&mut prefix).split_at_mut(from_prefix);
                places.push(now);
                prefix = later;
            }
            let from_body = len - from_prefix;
            if from_body > 0 {
                let (now, later) = std::mem::take(&mut body).split_at_mut(from_body);
                places.push(now);
                body = later;
            }
            out.push(places);
        }
        out
    }

    fn decode(self) -> Result<Dynamic> {
        let corrupt = |e: codec::CodecError| Error::value(format!("{e} on the Queue"));
        let first = if self.split {
            self.prefix[0]
        } else {
            self.body[0]
        };
        if first != VALUE_MARK {
            return Err(Error::value("corrupt message on the Queue: no value mark"));
        }
        if !self.split {
            return codec::decode(&self.body[1..]).map_err(corrupt);
        }
        let n = u32::from_le_bytes(self.prefix[2..6].try_into().expect("4 bytes")) as usize;
        let tag = self.prefix[1];
        if (tag == codec::BLOB || tag == codec::STRING) && n + PREFIX == self.total {
            return codec::decode_bytes(tag, self.body).map_err(corrupt);
        }
        let mut all = Vec::with_capacity(self.total);
        all.extend_from_slice(&self.prefix[1..]);
        all.extend_from_slice(&self.body);
        codec::decode(&all).map_err(corrupt)
    }
}

fn corrupt(why: &str) -> Error {
    Error::new(
        ErrorKind::OSError,
        format!("the Queue is broken: its stream is corrupt ({why})"),
    )
}

struct Inner {
    shm: Rc<Shm>,
    /// The read and write ends, in this process; `None` after `close()`.
    fds: RefCell<Option<(OwnedFd, OwnedFd)>>,
    maxsize: u32,
    /// "Queue", "JoinableQueue" or "SimpleQueue", for messages.
    name: &'static str,
    /// "the Queue's lock", for messages about its locks.
    lock_name: String,
}

/// A multi-producer, multi-consumer queue shared by the processes forked after it was made.
#[derive(Clone)]
pub(crate) struct Queue(Rc<Inner>);

impl Queue {
    /// A queue; `maxsize` 0 means unbounded. `name` is what messages call it.
    pub(crate) fn new(maxsize: u32, name: &'static str) -> Result<Self> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| Error::os(format_args!("pipe for a {name}"), e))?;
        // Best effort: the default 64 KiB still works, only sooner makes writers wait.
        let _ = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        let shm = Shm::new(4096)?;
        Ok(Self(Rc::new(Inner {
            shm,
            fds: RefCell::new(Some((read, write))),
            maxsize,
            name,
            lock_name: format!("the {name}'s lock"),
        })))
    }

    /// The descriptor a waiter watches for messages (`wait([q])`), while the queue is open
    /// in this process.
    pub(crate) fn reader_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.0
            .fds
            .borrow()
            .as_ref()
            .map(|(read, _)| read.as_raw_fd())
    }

    /// The bound given at creation (0: none).
    pub(crate) fn maxsize(&self) -> u32 {
        self.0.maxsize
    }

    fn word(&self, index: usize) -> &AtomicU32 {
        self.0.shm.u32(index)
    }

    fn wide(&self, index: usize) -> &AtomicI64 {
        self.0.shm.i64(index)
    }

    fn closed_error(&self) -> Error {
        Error::value(format!("the {} is closed", self.0.name))
    }

    fn check_broken(&self) -> Result<()> {
        if self.word(BROKEN).load(Acquire) != 0 {
            return Err(corrupt("a tag out of place was found earlier"));
        }
        Ok(())
    }

    fn broken(&self, why: &str) -> Error {
        self.word(BROKEN).store(1, Release);
        corrupt(why)
    }

    fn wstate(&self) -> (u32, u32) {
        let v = self.wide(WSTATE).load(Acquire) as u64;
        ((v >> 32) as u32, v as u32)
    }

    fn set_wstate(&self, seq: u32, state: u32) {
        self.wide(WSTATE)
            .store(((u64::from(seq) << 32) | u64::from(state)) as i64, Release);
    }

    /// `fin` and the number of dropped messages.
    fn rstate(&self) -> (u32, u32) {
        let v = self.wide(RSTATE).load(Acquire) as u64;
        (v as u32, (v >> 32) as u32)
    }

    /// Wakes whoever waits for `fin` or the `task_done` count to move.
    fn bump(&self) {
        self.word(RGEN).fetch_add(1, SeqCst);
        if self.word(RWAITERS).load(SeqCst) > 0 {
            futex_wake(self.word(RGEN), i32::MAX);
        }
    }

    /// Waits until `done()` holds or `deadline` passes (`false`).
    fn wait_gen(&self, deadline: Deadline, mut done: impl FnMut() -> bool) -> Result<bool> {
        let waiters = self.word(RWAITERS);
        waiters.fetch_add(1, SeqCst);
        let result = (|| loop {
            let seen = self.word(RGEN).load(SeqCst);
            if done() {
                return Ok(true);
            }
            if !wait_word(self.word(RGEN), seen, deadline)? {
                return Ok(done());
            }
        })();
        waiters.fetch_sub(1, SeqCst);
        result
    }

    // ------------------------------------------------------------------ put

    /// Puts a value, taking at most `timeout` (`Full`): a put that runs out of time part way
    /// through a message leaves nothing a reader would see.
    pub(crate) fn put(
        &self,
        value: &Dynamic,
        timeout: Option<Duration>,
        type_name: impl Fn(&str) -> String,
    ) -> Result<()> {
        self.check_broken()?;
        if self.0.fds.borrow().is_none() {
            return Err(self.closed_error());
        }
        encode_frame(value, type_name, true, |pieces| {
            self.put_payload(&Payload::new(pieces), Deadline::after(timeout))
        })
    }

    fn full_error(&self) -> Error {
        Error::new(ErrorKind::Full, format!("the {} is full", self.0.name))
    }

    fn put_payload(&self, payload: &Payload<'_>, deadline: Deadline) -> Result<()> {
        let fds = self.0.fds.borrow();
        let Some((_, write)) = fds.as_ref() else {
            return Err(self.closed_error());
        };
        let lock = raw_lock(self.0.shm.clone(), WRITE_LOCK);
        if lock.acquire(deadline, OnDeadHolder::TakeOver, &self.0.lock_name)? == Acquired::TimedOut
        {
            return Err(self.full_error());
        }
        let result = self.put_locked(write.as_fd(), payload, deadline);
        lock.release();
        result
    }

    fn put_locked(
        &self,
        fd: BorrowedFd<'_>,
        payload: &Payload<'_>,
        deadline: Deadline,
    ) -> Result<()> {
        self.check_broken()?;
        self.settle_writer(fd, deadline)?;
        let alloc = self.word(ALLOC);
        if self.0.maxsize > 0 {
            let room = self.wait_gen(deadline, || {
                let used = alloc.load(Acquire).wrapping_sub(self.rstate().0);
                used < self.0.maxsize
            })?;
            if !room {
                return Err(self.full_error());
            }
        }
        // Announce the message before it gets a number: a writer killed in between leaves
        // a state the next writer repairs (see `settle_writer`).
        let seq = alloc.load(Acquire);
        self.set_wstate(seq, WRITING);
        alloc.store(seq.wrapping_add(1), Release);
        let mut sent = 0;
        let result = self.write_chunks(fd, seq, payload, deadline, &mut sent);
        match result {
            Ok(()) => {
                self.set_wstate(seq, IDLE);
                Ok(())
            }
            Err(e) => {
                if sent == 0 {
                    // Nothing went out: take the number back.
                    alloc.store(seq, Release);
                    self.set_wstate(seq, IDLE);
                    self.bump();
                } else {
                    // Part of the message is in the pipe: readers must be told to drop it.
                    self.set_wstate(seq, OWED);
                    if let Ok(true) = self.write_tag(fd, Tag::new(Kind::Abort, seq, 0, 0), None) {
                        self.set_wstate(seq, ABORTED);
                    }
                    if sent % CHUNK != 0 {
                        self.word(BROKEN).store(1, Release);
                    }
                }
                Err(e)
            }
        }
    }

    /// After a writer that died in the middle of a put (`WRITING`), or gave a message up
    /// without room to say so (`OWED`): writes the `ABORT` tag that tells readers to drop
    /// its message, waiting for room until `deadline` (`Full`).
    fn settle_writer(&self, fd: BorrowedFd<'_>, deadline: Deadline) -> Result<()> {
        let (seq, state) = self.wstate();
        if state == IDLE || state == ABORTED {
            return Ok(());
        }
        // A writer killed between announcing its message and numbering it.
        let alloc = self.word(ALLOC);
        if alloc.load(Acquire).wrapping_sub(seq) as i32 <= 0 {
            alloc.store(seq.wrapping_add(1), Release);
        }
        // Readers must not take the ABORT tag for more of the message (see `read_batch`).
        self.set_wstate(seq, OWED);
        if !self.write_tag(fd, Tag::new(Kind::Abort, seq, 0, 0), Some(deadline))? {
            return Err(self.full_error());
        }
        self.set_wstate(seq, ABORTED);
        Ok(())
    }

    /// Writes one tag: `true` once written, `false` if there was no room by `deadline`
    /// (`None`: try once, without waiting).
    fn write_tag(&self, fd: BorrowedFd<'_>, tag: Tag, deadline: Option<Deadline>) -> Result<bool> {
        let bytes = tag.encode();
        loop {
            match nix::unistd::write(fd, &bytes) {
                Ok(TAG) => return Ok(true),
                Ok(_) => return Err(self.broken("a short write of a tag")),
                Err(Errno::EINTR) => crate::signal::check()?,
                Err(Errno::EAGAIN) => {
                    let Some(deadline) = deadline else {
                        return Ok(false);
                    };
                    if !wait_fd(fd, libc::POLLOUT, deadline, "the Queue")? {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(self.write_error(e)),
            }
        }
    }

    fn write_error(&self, errno: Errno) -> Error {
        if errno == Errno::EPIPE {
            return Error::new(
                ErrorKind::BrokenPipeError,
                format!(
                    "every process that could get from the {} has closed it",
                    self.0.name
                ),
            )
            .with_errno(errno as i32);
        }
        Error::os(format_args!("put on the {}", self.0.name), errno)
    }

    /// Writes message `seq` as chunks: the full ones in batches, then the last one (with the
    /// `END` tag) on its own, so that every write either is at most `PIPE_BUF` bytes or
    /// consists of whole 4096-byte chunks. `sent` counts the bytes that went out.
    fn write_chunks(
        &self,
        fd: BorrowedFd<'_>,
        seq: u32,
        payload: &Payload<'_>,
        deadline: Deadline,
        sent: &mut usize,
    ) -> Result<()> {
        let total = payload.len;
        let full = (total - 1) / CHUNK_DATA;
        let head = |i: usize, len: usize| {
            if i == 0 {
                Tag::new(Kind::Start, seq, len, total)
            } else {
                Tag::new(Kind::Cont, seq, len, i)
            }
        };
        // The full chunks: wire bytes `0..full * CHUNK`.
        while *sent < full * CHUNK {
            let first = *sent / CHUNK;
            let last = (first + BATCH).min(full);
            let tags: Vec<[u8; TAG]> = (first..last)
                .flat_map(|i| {
                    [
                        head(i, CHUNK_DATA).encode(),
                        Tag::new(Kind::Tail, seq, 0, i).encode(),
                    ]
                })
                .collect();
            let mut pieces: Vec<&[u8]> = Vec::with_capacity(4 * (last - first));
            for (k, i) in (first..last).enumerate() {
                pieces.push(&tags[2 * k]);
                pieces.extend(payload.slices(i * CHUNK_DATA, CHUNK_DATA));
                pieces.push(&tags[2 * k + 1]);
            }
            // Resume where a short write stopped.
            let mut skip = *sent - first * CHUNK;
            let mut slices = Vec::with_capacity(pieces.len());
            for piece in pieces {
                if skip >= piece.len() {
                    skip -= piece.len();
                    continue;
                }
                slices.push(std::io::IoSlice::new(&piece[skip..]));
                skip = 0;
            }
            self.writev_some(fd, &slices, deadline, sent)?;
        }
        // The last chunk, with the END tag: one write of at most PIPE_BUF bytes.
        let done = full * CHUNK_DATA;
        let len = total - done;
        let head = head(full, len).encode();
        let end = Tag::new(Kind::End, seq, 0, total).encode();
        let mut pieces: [&[u8]; 4] = [&head, &[], &[], &end];
        for (k, piece) in payload.slices(done, len).enumerate() {
            pieces[1 + k] = piece;
        }
        let wire = 2 * TAG + len;
        let base = full * CHUNK;
        while *sent < base + wire {
            let mut skip = *sent - base;
            let mut slices = [std::io::IoSlice::new(&[]); 4];
            let mut count = 0;
            for piece in pieces {
                if skip >= piece.len() {
                    skip -= piece.len();
                    continue;
                }
                slices[count] = std::io::IoSlice::new(&piece[skip..]);
                count += 1;
                skip = 0;
            }
            self.writev_some(fd, &slices[..count], deadline, sent)?;
        }
        Ok(())
    }

    /// One `writev`, waiting for room first if the pipe is full; adds what went out to
    /// `sent`. `Full` when `deadline` passes, `Interrupted` on Ctrl-C or SIGTERM.
    fn writev_some(
        &self,
        fd: BorrowedFd<'_>,
        slices: &[std::io::IoSlice<'_>],
        deadline: Deadline,
        sent: &mut usize,
    ) -> Result<()> {
        loop {
            crate::signal::check()?;
            match nix::sys::uio::writev(fd, slices) {
                Ok(n) => {
                    *sent += n;
                    return Ok(());
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    if !wait_fd(fd, libc::POLLOUT, deadline, "the Queue")? {
                        return Err(Error::new(
                            ErrorKind::Full,
                            format!(
                                "the {} had no room for the whole message in time",
                                self.0.name
                            ),
                        ));
                    }
                }
                Err(e) => return Err(self.write_error(e)),
            }
        }
    }

    // ------------------------------------------------------------------ get

    fn empty_error(&self) -> Error {
        Error::new(ErrorKind::Empty, format!("the {} is empty", self.0.name))
    }

    /// Takes the oldest value, waiting at most `timeout` for one to start (`Empty`); once a
    /// message has started, the rest is waited for as long as its writer is alive.
    pub(crate) fn get(&self, timeout: Option<Duration>) -> Result<Dynamic> {
        self.check_broken()?;
        let fds = self.0.fds.borrow();
        let Some((read, _)) = fds.as_ref() else {
            return Err(self.closed_error());
        };
        let deadline = Deadline::after(timeout);
        let lock = raw_lock(self.0.shm.clone(), READ_LOCK);
        if lock.acquire(deadline, OnDeadHolder::TakeOver, &self.0.lock_name)? == Acquired::TimedOut
        {
            return Err(self.empty_error());
        }
        let result = self.get_locked(read.as_fd(), deadline);
        lock.release();
        result?.ok_or_else(|| self.empty_error())
    }

    fn get_locked(&self, fd: BorrowedFd<'_>, deadline: Deadline) -> Result<Option<Dynamic>> {
        self.check_broken()?;
        self.recover();
        let mut message: Option<Assembly> = None;
        let mut scratch = Vec::new();
        loop {
            if self.word(RPOS).load(Acquire) == AT_HEAD {
                if let Some(m) = message.as_mut() {
                    if self.read_batch(fd, m, &mut scratch)? {
                        if m.got == m.total {
                            return message.take().map(Assembly::decode).transpose();
                        }
                        continue;
                    }
                }
                let Some(tag) = self.read_head(fd)? else {
                    // Nothing to read yet.
                    let more = match &message {
                        Some(m) => self.wait_mid_message(fd, m.seq)?,
                        None => wait_readable(fd, deadline, "the Queue")?,
                    };
                    if !more {
                        if message.take().is_some() {
                            // Its writer is gone: the message will never be whole. Wait for
                            // another one, until the deadline.
                            continue;
                        }
                        return Ok(None);
                    }
                    continue;
                };
                let ours = message.as_ref().map(|m| m.seq);
                if tag.kind == Kind::Start || (tag.kind == Kind::Abort && ours == Some(tag.seq)) {
                    // A writer gave up on (or died in) the message we were putting together.
                    message = None;
                }
                continue;
            }
            let tag = self.rtag()?;
            if tag.kind == Kind::Start {
                let started = Assembly::new(&tag);
                if started.is_err() {
                    self.word(BROKEN).store(1, Release);
                }
                message = Some(started?);
            }
            if !message.as_ref().is_some_and(|m| m.accepts(&tag)) {
                // A chunk of a message whose start another (dead) reader took: skip it.
                message = None;
            }
            let last = message
                .as_ref()
                .is_some_and(|m| m.got + tag.len as usize == m.total);
            let (tail, next) = self.read_data(fd, &tag, message.as_mut(), &mut scratch, last)?;
            if let Some(m) = message.as_mut() {
                m.got += tag.len as usize;
                m.next += 1;
            }
            if tail.kind == Kind::End {
                if let Some(m) = message.take() {
                    return m.decode().map(Some);
                }
            }
            if next.is_some_and(|head| head.kind == Kind::Abort) {
                message = None;
            }
        }
    }

    fn rtag(&self) -> Result<Tag> {
        let mut bytes = [0u8; TAG];
        for (i, chunk) in bytes.chunks_mut(4).enumerate() {
            chunk.copy_from_slice(&self.word(RTAG + i).load(Acquire).to_ne_bytes());
        }
        // Stored only after it was checked, so this holds unless the page was overwritten.
        match Tag::decode(bytes) {
            Some(tag) if matches!(tag.kind, Kind::Start | Kind::Cont) => Ok(tag),
            _ => Err(self.broken("a bad current tag")),
        }
    }

    fn set_rtag(&self, bytes: [u8; TAG]) {
        for (i, chunk) in bytes.chunks(4).enumerate() {
            let word = u32::from_ne_bytes(chunk.try_into().expect("4 bytes"));
            self.word(RTAG + i).store(word, Release);
        }
    }

    fn slot(&self, at: usize) -> [u8; TAG] {
        let mut bytes = [0u8; TAG];
        for (i, chunk) in bytes.chunks_mut(4).enumerate() {
            chunk.copy_from_slice(&self.word(at + i).load(Acquire).to_ne_bytes());
        }
        bytes
    }

    /// Zeroes the slot at `at`.
    fn clear_slot(&self, at: usize) {
        for i in 0..4 {
            self.word(at + i).store(0, Release);
        }
    }

    /// Where a read puts the slot at word `at`: [`TAG`] bytes of the shared page.
    fn slot_place<'a, const N: usize>(&'a self, at: usize, places: &mut Scatter<'a, N>) {
        places.shared(&self.0.shm, 4 * at, TAG);
    }

    /// Every message below `n` is finished; the one before `n` was received if `delivered`,
    /// the others were dropped. Idempotent, so that a recovery may repeat it.
    fn finish_upto(&self, n: u32, delivered: bool) {
        let (fin, dropped) = self.rstate();
        let ahead = n.wrapping_sub(fin) as i32;
        if ahead <= 0 {
            return;
        }
        let newly = ahead as u32 - u32::from(delivered);
        let value = (u64::from(dropped.wrapping_add(newly)) << 32) | u64::from(n);
        self.wide(RSTATE).store(value as i64, Release);
        self.bump();
    }

    /// What reading head tag `tag` means for the stream.
    fn apply_head(&self, tag: &Tag, bytes: [u8; TAG]) {
        match tag.kind {
            Kind::Start => {
                self.finish_upto(tag.seq, false);
                self.set_rtag(bytes);
                self.word(RPOS).store(IN_CHUNK, Release);
            }
            Kind::Cont => {
                self.set_rtag(bytes);
                self.word(RPOS).store(IN_CHUNK, Release);
            }
            _ => {
                self.finish_upto(tag.seq.wrapping_add(1), false);
                self.word(RPOS).store(AT_HEAD, Release);
            }
        }
    }

    /// What reading a chunk's data and tail tag means for the stream.
    fn apply_tail(&self, tail: &Tag, delivered: bool) {
        if tail.kind == Kind::End {
            self.finish_upto(tail.seq.wrapping_add(1), delivered);
        }
        self.word(RPOS).store(AT_HEAD, Release);
    }

    /// Finishes the read a reader was killed around, if it happened: the slot holds a tag
    /// exactly when the read took place (it was zeroed before, and a read of bytes that are
    /// all there is all or nothing).
    fn recover(&self) {
        let pending = self.word(RPEND).load(Acquire);
        if pending != 0 {
            let bytes = self.slot(RSLOT);
            match (pending, Tag::decode(bytes)) {
                (PEND_HEAD, Some(tag)) if tag.is_head() => self.apply_head(&tag, bytes),
                (PEND_DATA, Some(tail)) if !tail.is_head() => {
                    self.apply_tail(&tail, false);
                    let next = self.slot(RNEXT);
                    if let Some(head) = Tag::decode(next).filter(Tag::is_head) {
                        self.apply_head(&head, next);
                    }
                }
                _ => {}
            }
            self.word(RPEND).store(0, Release);
        }
    }

    /// Reads a head tag: `None` if the pipe is empty.
    fn read_head(&self, fd: BorrowedFd<'_>) -> Result<Option<Tag>> {
        loop {
            self.clear_slot(RSLOT);
            let mut places = Scatter::<1>::new();
            self.slot_place(RSLOT, &mut places);
            self.word(RPEND).store(PEND_HEAD, Release);
            // The slot is ours: only the holder of the read lock writes it while a read is
            // pending.
            let n = match places.read(fd) {
                Ok(n) => n,
                Err(e) => {
                    self.word(RPEND).store(0, Release);
                    match e {
                        Errno::EAGAIN => return Ok(None),
                        Errno::EINTR => {
                            crate::signal::check()?;
                            continue;
                        }
                        e => return Err(Error::os(format_args!("get on the {}", self.0.name), e)),
                    }
                }
            };
            if n == 0 {
                self.word(RPEND).store(0, Release);
                return Err(Error::new(
                    ErrorKind::EOFError,
                    format!(
                        "every process that could put to the {} has closed it",
                        self.0.name
                    ),
                ));
            }
            let bytes = self.slot(RSLOT);
            let tag = match Tag::decode(bytes) {
                Some(tag) if n == TAG && tag.is_head() => tag,
                _ => return Err(self.broken("a chunk that does not start with a head tag")),
            };
            self.apply_head(&tag, bytes);
            self.word(RPEND).store(0, Release);
            return Ok(Some(tag));
        }
    }

    /// Reads the data of the chunk under `tag` (into `message`, or dropped) with its tail
    /// tag, and the next chunk's head tag if that chunk is already there (one read instead
    /// of two per chunk). `last`: the chunk completes `message`, which is then received.
    /// Returns the tail tag, and the next head tag if it was read.
    fn read_data(
        &self,
        fd: BorrowedFd<'_>,
        tag: &Tag,
        message: Option<&mut Assembly>,
        scratch: &mut Vec<u8>,
        last: bool,
    ) -> Result<(Tag, Option<Tag>)> {
        let len = tag.len as usize;
        let assembling = message.is_some();
        let delivered = assembling && last;
        // Look ahead unless more of this message follows: then the next chunks are read
        // together (`read_batch`), from the next head on.
        let ahead = !assembling || last;
        if !assembling && len > 0 {
            scratch.resize(CHUNK, 0);
        }
        let mut targets = match message {
            Some(m) => m.targets(&[len]).pop().unwrap_or_default(),
            None if len > 0 => vec![&mut scratch[..len]],
            None => Vec::new(),
        };
        loop {
            self.clear_slot(RSLOT);
            self.clear_slot(RNEXT);
            let mut places = Scatter::<4>::new();
            for target in targets.iter_mut() {
                places.private(target);
            }
            self.slot_place(RSLOT, &mut places);
            if ahead {
                self.slot_place(RNEXT, &mut places);
            }
            self.word(RPEND).store(PEND_DATA, Release);
            // The slots are ours: only the holder of the read lock writes them while a read
            // is pending.
            let n = match places.read(fd) {
                Ok(n) => n,
                Err(Errno::EINTR) => {
                    self.word(RPEND).store(0, Release);
                    crate::signal::check()?;
                    continue;
                }
                Err(Errno::EAGAIN) => 0,
                Err(e) => {
                    self.word(RPEND).store(0, Release);
                    return Err(Error::os(format_args!("get on the {}", self.0.name), e));
                }
            };
            // The chunk was written whole, so all of it is here (and the next one is there
            // whole, or not at all): anything else is corrupt.
            let tail = match Tag::decode(self.slot(RSLOT)) {
                Some(tail) if (n == len + TAG || n == len + 2 * TAG) && tail.seq == tag.seq => tail,
                _ => return Err(self.broken("a chunk without its tail tag")),
            };
            let fits = match tail.kind {
                Kind::Tail => tail.info == tag.index() && !(assembling && last),
                Kind::End => !assembling || last,
                _ => false,
            };
            if !fits {
                return Err(self.broken("a tail tag that does not match its chunk"));
            }
            let next_bytes = self.slot(RNEXT);
            let next = match n == len + 2 * TAG {
                false => None,
                true => match Tag::decode(next_bytes).filter(Tag::is_head) {
                    Some(head) => Some(head),
                    None => return Err(self.broken("a chunk that does not start with a head tag")),
                },
            };
            self.apply_tail(&tail, delivered && tail.kind == Kind::End);
            if let Some(head) = &next {
                self.apply_head(head, next_bytes);
            }
            self.word(RPEND).store(0, Release);
            return Ok((tail, next));
        }
    }

    /// In the middle of `message`: reads as many of its chunks as the pipe holds in one
    /// `readv` (each read separately would cost a system call per 4 KiB). That is safe when
    /// its writer is still `WRITING` it: everything in the pipe then belongs to the message
    /// (no other writer writes before it is done, and one that settles after it first
    /// changes the state), so whatever `FIONREAD` counted before the state was looked at is
    /// the message's. And when the writer is `IDLE` after it: the message is finished, all
    /// its chunks are in the pipe. Returns whether it read any.
    fn read_batch(
        &self,
        fd: BorrowedFd<'_>,
        message: &mut Assembly,
        scratch: &mut Vec<u8>,
    ) -> Result<bool> {
        let Some(batch) = self.whole_chunks(fd, message) else {
            return Ok(false);
        };
        let n = self.read_chunks(fd, message, &batch.sizes, scratch)?;
        self.take_chunks(message, &batch, n, scratch)?;
        Ok(true)
    }

    /// The chunks of `message` that are whole in what the pipe holds (at most [`BATCH`]), if
    /// there are two or more: worth one `readv`.
    fn whole_chunks(&self, fd: BorrowedFd<'_>, message: &Assembly) -> Option<Batch> {
        let available = crate::sys::fd::readable_bytes(fd).ok()?;
        let available = match self.wstate() {
            (seq, WRITING) if seq == message.seq => available,
            (seq, IDLE) if seq == message.seq => usize::MAX,
            _ => return None,
        };
        if available < 2 * CHUNK {
            return None;
        }
        let mut sizes = Vec::with_capacity(BATCH);
        let (mut got, mut bytes) = (message.got, 0);
        while sizes.len() < BATCH && got < message.total {
            let data = (message.total - got).min(CHUNK_DATA);
            let size = if got + data == message.total {
                // The last chunk: its data may be a full chunk's, and its tail is END.
                2 * TAG + data
            } else {
                CHUNK
            };
            if bytes + size > available {
                break;
            }
            sizes.push(data);
            bytes += size;
            got += data;
        }
        (sizes.len() >= 2).then_some(Batch { sizes, bytes, got })
    }

    /// Reads the chunks of sizes `sizes` in one `readv`: their data into `message`, their
    /// tags into `scratch`, and the last tail into the read slot (it tells a reader taking
    /// over whether this read happened: the position is a head either way, and only an END
    /// needs counting). Returns how many bytes it read.
    fn read_chunks(
        &self,
        fd: BorrowedFd<'_>,
        message: &mut Assembly,
        sizes: &[usize],
        scratch: &mut Vec<u8>,
    ) -> Result<usize> {
        let count = sizes.len();
        scratch.resize(2 * TAG * count, 0);
        self.clear_slot(RSLOT);
        self.clear_slot(RNEXT);
        let mut places = Scatter::<{ 3 * BATCH + 1 }>::new();
        let mut tags = scratch.chunks_mut(TAG);
        for (k, targets) in message.targets(sizes).into_iter().enumerate() {
            places.private(tags.next().expect("a head place"));
            for target in targets {
                places.private(target);
            }
            let tail = tags.next().expect("a tail place");
            if k + 1 < count {
                places.private(tail);
            }
        }
        self.slot_place(RSLOT, &mut places);
        self.word(RPEND).store(PEND_DATA, Release);
        loop {
            match places.read(fd) {
                Ok(n) => return Ok(n),
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    self.word(RPEND).store(0, Release);
                    return Err(Error::os(format_args!("get on the {}", self.0.name), e));
                }
            }
        }
    }

    /// Checks every tag of a batch read (`n` bytes), then accounts for its chunks.
    fn take_chunks(
        &self,
        message: &mut Assembly,
        batch: &Batch,
        n: usize,
        scratch: &[u8],
    ) -> Result<()> {
        let count = batch.sizes.len();
        let tag_at = |k: usize, tail: bool| -> Option<Tag> {
            if tail && k + 1 == count {
                return Tag::decode(self.slot(RSLOT));
            }
            let at = 2 * TAG * k + if tail { TAG } else { 0 };
            Tag::decode(scratch[at..at + TAG].try_into().expect("a tag"))
        };
        let mut index = message.next;
        let mut last_tail = None;
        for (k, &data) in batch.sizes.iter().enumerate() {
            let head = tag_at(k, false);
            let tail = tag_at(k, true);
            let final_chunk = k + 1 == count && batch.got == message.total;
            let ok = n == batch.bytes
                && head
                    .is_some_and(|h| h == Tag::new(Kind::Cont, message.seq, data, index as usize))
                && tail.is_some_and(|t| {
                    t.seq == message.seq
                        && match final_chunk {
                            true => t.kind == Kind::End,
                            false => t.kind == Kind::Tail && t.info == index,
                        }
                });
            if !ok {
                return Err(self.broken("a batch of chunks out of order"));
            }
            index += 1;
            last_tail = tail;
        }
        if let Some(tail) = last_tail {
            self.apply_tail(&tail, tail.kind == Kind::End);
        }
        self.word(RPEND).store(0, Release);
        message.got = batch.got;
        message.next = index;
        Ok(())
    }

    /// In the middle of message `seq` with nothing to read: waits for more, or until its
    /// writer is gone (`false`).
    fn wait_mid_message(&self, fd: BorrowedFd<'_>, seq: u32) -> Result<bool> {
        let writers = raw_lock(self.0.shm.clone(), WRITE_LOCK);
        wait_readable_or_writer_gone(fd, "the Queue", || {
            if self.wstate() != (seq, WRITING) {
                return Writer::Gone;
            }
            match writers.holder() {
                Some(pid) => Writer::Pid(pid),
                None => Writer::Gone,
            }
        })
    }

    // ------------------------------------------------------------------ the rest

    /// About how many messages are waiting (other processes may be putting or getting).
    pub(crate) fn qsize(&self) -> u64 {
        let used = self.word(ALLOC).load(Acquire).wrapping_sub(self.rstate().0) as i32;
        used.max(0) as u64
    }

    /// Whether no message is waiting right now. `OSError` after `close()`, as in Python.
    pub(crate) fn empty(&self) -> Result<bool> {
        let fds = self.0.fds.borrow();
        let Some((read, _)) = fds.as_ref() else {
            return Err(Error::new(
                ErrorKind::OSError,
                format!("the {} is closed", self.0.name),
            ));
        };
        Ok(self.qsize() == 0 || !readable_now(read.as_fd(), "the Queue")?)
    }

    /// Whether a bounded queue has no free place right now.
    pub(crate) fn full(&self) -> bool {
        self.0.maxsize > 0 && self.qsize() >= u64::from(self.0.maxsize)
    }

    /// Closes the queue in this process: `put` and `get` here are then a `ValueError`
    /// (other processes are not affected). Closing twice is fine.
    pub(crate) fn close(&self) {
        self.0.fds.borrow_mut().take();
    }

    /// Whether `close()` was called in this process.
    pub(crate) fn closed(&self) -> bool {
        self.0.fds.borrow().is_none()
    }

    /// Tasks put and not yet marked done (`JoinableQueue`): messages numbered, minus those
    /// dropped, minus `task_done()` calls.
    pub(crate) fn unfinished(&self) -> i64 {
        let alloc = self.word(ALLOC).load(Acquire);
        let dropped = self.rstate().1;
        let done = self.word(DONE).load(SeqCst);
        i64::from(alloc.wrapping_sub(dropped).wrapping_sub(done) as i32)
    }

    /// Marks one task done (`JoinableQueue.task_done()`); `ValueError` if none is unfinished.
    pub(crate) fn task_done(&self) -> Result<()> {
        let done = self.word(DONE);
        loop {
            let seen = done.load(SeqCst);
            let alloc = self.word(ALLOC).load(Acquire);
            let dropped = self.rstate().1;
            if alloc.wrapping_sub(dropped).wrapping_sub(seen) as i32 <= 0 {
                return Err(Error::value("task_done() called too many times"));
            }
            if done
                .compare_exchange(seen, seen.wrapping_add(1), SeqCst, SeqCst)
                .is_ok()
            {
                self.bump();
                return Ok(());
            }
        }
    }

    /// Waits until every task put has been marked done (`JoinableQueue.join()`), at most
    /// `timeout`; returns whether they all were.
    pub(crate) fn join(&self, timeout: Option<Duration>) -> Result<bool> {
        self.wait_gen(Deadline::after(timeout), || self.unfinished() <= 0)
    }

    /// `<Queue qsize=2 maxsize=0>`-style text.
    pub(crate) fn describe(&self) -> String {
        let closed = if self.closed() { " closed" } else { "" };
        format!(
            "<{} qsize={} maxsize={}{closed}>",
            self.0.name,
            self.qsize(),
            self.0.maxsize
        )
    }
}

/// Python's `JoinableQueue`: a [`Queue`] on which scripts call `task_done` and `join`.
#[derive(Clone)]
pub(crate) struct JoinableQueue(pub Queue);

/// Python's `SimpleQueue`: a [`Queue`] with only `get`, `put`, `empty` and `close`.
#[derive(Clone)]
pub(crate) struct SimpleQueue(pub Queue);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_reject_garbage() {
        let tag = Tag::new(Kind::Start, 7, 100, 5000);
        assert_eq!(Tag::decode(tag.encode()), Some(tag));
        assert_eq!(Tag::decode([0; TAG]), None);
        let mut bad = tag.encode();
        bad[2] = 9;
        assert_eq!(Tag::decode(bad), None);
        let long = Tag::new(Kind::Cont, 1, CHUNK_DATA + 1, 1);
        assert_eq!(Tag::decode(long.encode()), None);
        let tail_with_data = Tag::new(Kind::Tail, 1, 3, 1);
        assert_eq!(Tag::decode(tail_with_data.encode()), None);
    }

    #[test]
    fn payload_skips_the_length_and_slices_across_pieces() {
        let head = [0u8, 1, 2, 3, 4, 5, 6, 7, 10, 11];
        let body = [12u8, 13, 14];
        let payload = Payload::new(&[&head, &body]);
        assert_eq!(payload.len, 5);
        let out: Vec<&[u8]> = payload.slices(1, 3).collect();
        assert_eq!(out, vec![&[11u8][..], &[12, 13][..]]);
        let out: Vec<&[u8]> = payload.slices(3, 2).collect();
        assert_eq!(out, vec![&[13u8, 14][..]]);
    }

    #[test]
    fn assembly_keeps_a_big_blob_without_copying_its_prefix() {
        let total = BIG + 10;
        let tag = Tag::new(Kind::Start, 3, CHUNK_DATA, total);
        let mut m = Assembly::new(&tag).unwrap();
        assert!(m.split && m.accepts(&tag));
        let places: Vec<usize> = m
            .targets(&[CHUNK_DATA])
            .remove(0)
            .iter()
            .map(|p| p.len())
            .collect();
        assert_eq!(places, [PREFIX, CHUNK_DATA - PREFIX]);
        m.got = CHUNK_DATA;
        let next: Vec<Vec<usize>> = m
            .targets(&[CHUNK_DATA, 10])
            .iter()
            .map(|places| places.iter().map(|p| p.len()).collect())
            .collect();
        assert_eq!(
            next,
            [vec![CHUNK_DATA], vec![10]],
            "the chunks after it come from the body"
        );
        assert!(!m.accepts(&Tag::new(Kind::Cont, 3, CHUNK_DATA, 2)));
        assert!(!m.accepts(&Tag::new(Kind::Cont, 4, CHUNK_DATA, 0)));
    }
}
