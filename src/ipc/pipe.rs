//! `Pipe()`: two connected ends of a Unix socket pair, carrying whole messages.
//!
//! A message on the wire is an 8-byte little-endian length and then that many bytes: for a
//! `Pipe` end, [`VALUE_MARK`] and the [`super::codec`] encoding of a value (`send`), or the
//! bytes `send_bytes` was given, as they are; `recv_bytes` returns a message's bytes
//! whatever they are, as Python's does, so a relay can pass values on undecoded. The pool
//! uses the same framing without the mark ([`with_message`], [`read_message`]). Writes
//! loop until the whole message is out, so a
//! message can be far larger than the kernel's buffer; the reader reads exactly one
//! message, never more, so a descriptor shared by several processes never loses bytes
//! into one reader's buffer.
//!
//! Every wait (for room to write, for a message, for the rest of one) goes through the wait
//! primitive ([`crate::process::wait`]), so Ctrl-C and SIGTERM end it at once, also in the
//! middle of a large message.
//!
//! # An end shared by several processes
//!
//! A forked child holds copies of both ends, so several processes may send on one end, or
//! receive on it, at the same time. A page of shared memory holds, for each direction, a
//! lock for senders and one for receivers: a message is sent whole while the sender holds
//! the first, and received whole while the receiver holds the second, so messages never
//! interleave and each is received exactly once. A process killed in the middle of
//! sending or receiving a message leaves a stream that cannot be read reliably any more:
//! the next process to use that direction finds out and marks it broken, and from then on
//! `send` and `recv` in that direction are an `OSError`, never a wrong value. A receiver
//! waiting for the rest of a message whose sender died notices at once (it watches the
//! sender with a pidfd).

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use rhai::{Blob, Dynamic};

use super::codec::{self, CodecError};
use super::sync::raw_lock;
use crate::error::{Error, ErrorKind, Result};
use crate::sys::lock::{Acquired, OnDeadHolder, RawLock};
use crate::sys::shm::Shm;
use crate::sys::Deadline;

/// The largest message accepted, in bytes (a corrupt length must not allocate wildly).
pub(crate) const MAX_MESSAGE: u64 = 1 << 30;

/// How a value that cannot travel is reported; `type_name` maps Rust names to script names.
pub(crate) fn codec_error(err: CodecError, type_name: impl Fn(&str) -> String) -> Error {
    match err {
        CodecError::Unsupported(t) => Error::value(format!(
            "a value of type `{}` cannot be sent to another process (only (), booleans, numbers, \
             strings, chars, blobs, and arrays and maps of these can)",
            type_name(&t)
        )),
        other => Error::value(other.to_string()),
    }
}

/// Strings and blobs from this size on are written straight from the value, not copied.
pub(crate) const BIG: usize = 64 * 1024;

/// Encodes `value` as one framed message and hands its pieces to `write`. A top-level
/// blob or string of [`BIG`] bytes or more is passed as it is, after a short prefix, so
/// that a large message is not copied on its way to the kernel.
pub(crate) fn with_message<T>(
    value: &Dynamic,
    type_name: impl Fn(&str) -> String,
    write: impl FnOnce(&[&[u8]]) -> Result<T>,
) -> Result<T> {
    encode_frame(value, type_name, false, write)
}

/// The first byte of every value a `Pipe` end or a queue sends: a byte that no UTF-8 text
/// starts with, so that bytes sent with `send_bytes` are never taken for a value.
pub(crate) const VALUE_MARK: u8 = 0xFA;

/// [`with_message`], the payload starting with [`VALUE_MARK`] when `marked`.
pub(crate) fn encode_frame<T>(
    value: &Dynamic,
    type_name: impl Fn(&str) -> String,
    marked: bool,
    write: impl FnOnce(&[&[u8]]) -> Result<T>,
) -> Result<T> {
    if let Ok(blob) = value.as_blob_ref() {
        if blob.len() >= BIG {
            return write_big(codec::BLOB, &blob, marked, write);
        }
    }
    if let Ok(text) = value.as_immutable_string_ref() {
        if text.len() >= BIG {
            return write_big(codec::STRING, text.as_bytes(), marked, write);
        }
    }
    write(&[&value_frame(value, type_name, marked)?])
}

/// Encodes `value` as one framed message in a buffer of its own, header included: for a
/// sender that queues messages and writes them later (the pool's parent side).
pub(crate) fn frame(value: &Dynamic, type_name: impl Fn(&str) -> String) -> Result<Vec<u8>> {
    value_frame(value, type_name, false)
}

/// One framed message in a buffer of its own, header included (the payload starting with
/// [`VALUE_MARK`] when `marked`).
fn value_frame(
    value: &Dynamic,
    type_name: impl Fn(&str) -> String,
    marked: bool,
) -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; 8];
    if marked {
        bytes.push(VALUE_MARK);
    }
    codec::encode(value, &mut bytes).map_err(|e| codec_error(e, type_name))?;
    let len = (bytes.len() - 8) as u64;
    check_len(len)?;
    bytes[..8].copy_from_slice(&len.to_le_bytes());
    Ok(bytes)
}

/// Frames `bytes` as they are (Python's `send_bytes`), without copying them.
pub(crate) fn with_bytes_message<T>(
    bytes: &[u8],
    write: impl FnOnce(&[&[u8]]) -> Result<T>,
) -> Result<T> {
    let len = bytes.len() as u64;
    check_len(len)?;
    write(&[&len.to_le_bytes(), bytes])
}

/// The whole message at the start of `buf`, decoded, and how many bytes it took (header
/// included); `None` while the message is incomplete. The counterpart of [`frame`] (and of
/// [`with_message`]) for a reader that buffers what a non-blocking descriptor had.
pub(crate) fn unframe(buf: &[u8], what: &str) -> Result<Option<(Dynamic, usize)>> {
    let Some(header) = buf.first_chunk::<8>() else {
        return Ok(None);
    };
    let len = u64::from_le_bytes(*header);
    if len > MAX_MESSAGE {
        return Err(Error::value(format!(
            "corrupt message on {what}: length {len}"
        )));
    }
    let end = 8 + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    let value = codec::decode(&buf[8..end]).map_err(|e| Error::value(format!("{e} on {what}")))?;
    Ok(Some((value, end)))
}

fn check_len(len: u64) -> Result<()> {
    if len > MAX_MESSAGE {
        return Err(Error::value(format!(
            "a message of {len} bytes is larger than the limit of {MAX_MESSAGE}"
        )));
    }
    Ok(())
}

fn write_big<T>(
    tag: u8,
    body: &[u8],
    marked: bool,
    write: impl FnOnce(&[&[u8]]) -> Result<T>,
) -> Result<T> {
    let m = usize::from(marked);
    let len = (body.len() + 5 + m) as u64;
    check_len(len)?;
    let mut head = [0u8; 14];
    head[..8].copy_from_slice(&len.to_le_bytes());
    head[8] = VALUE_MARK;
    head[8 + m] = tag;
    head[9 + m..13 + m].copy_from_slice(&(body.len() as u32).to_le_bytes());
    write(&[&head[..13 + m], body])
}

/// Writes every piece, in order.
pub(crate) fn write_pieces(
    fd: BorrowedFd<'_>,
    pieces: &[&[u8]],
    socket: bool,
    what: &str,
) -> Result<()> {
    let mut written = 0;
    write_pieces_counted(fd, pieces, socket, what, &mut written)
}

/// [`write_pieces`], adding to `written` every byte that went out, also when it fails
/// part way (a caller can then tell a stream left in the middle of a message).
fn write_pieces_counted(
    fd: BorrowedFd<'_>,
    pieces: &[&[u8]],
    socket: bool,
    what: &str,
    written: &mut usize,
) -> Result<()> {
    for piece in pieces {
        write_all_counted(fd, piece, socket, what, written)?;
    }
    Ok(())
}

/// Writes all of `bytes`, retrying short writes. Sockets are written with `MSG_NOSIGNAL`,
/// so a gone reader is a `BrokenPipeError`, never a SIGPIPE, and with `MSG_DONTWAIT`: a
/// full buffer is waited for in the wait primitive, which Ctrl-C and SIGTERM end at once.
/// Other descriptors should be non-blocking for the same reason; on a blocking one, a
/// pending signal is still noticed after every short write.
pub(crate) fn write_all(fd: BorrowedFd<'_>, bytes: &[u8], socket: bool, what: &str) -> Result<()> {
    let mut written = 0;
    write_all_counted(fd, bytes, socket, what, &mut written)
}

fn write_all_counted(
    fd: BorrowedFd<'_>,
    mut bytes: &[u8],
    socket: bool,
    what: &str,
    written: &mut usize,
) -> Result<()> {
    while !bytes.is_empty() {
        let result = if socket {
            nix::sys::socket::send(
                fd.as_raw_fd(),
                bytes,
                MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            )
        } else {
            nix::unistd::write(fd, bytes)
        };
        match result {
            Ok(n) => {
                bytes = &bytes[n..];
                *written += n;
                if !bytes.is_empty() {
                    // A short write may be a signal's doing: look before writing again.
                    crate::signal::check()?;
                }
            }
            Err(Errno::EINTR) => crate::signal::check()?,
            Err(Errno::EAGAIN) => {
                crate::process::wait::wait_fd(fd, libc::POLLOUT, Deadline::NEVER, what)?;
            }
            Err(e) => return Err(Error::os(format_args!("send on {what}"), e)),
        }
    }
    Ok(())
}

/// What a reader does when a non-blocking descriptor has no data yet: it is told whether
/// the message has started, and returns whether to read again (`Ok(false)` before the start
/// gives up: a timeout) or an error to abort with. A blocking descriptor never asks.
pub(crate) type Wait<'a> = &'a mut dyn FnMut(bool) -> Result<bool>;

/// Fills `buf` from `fd` in the middle of a message. Returns how many bytes were read
/// before end of input.
fn read_full(fd: BorrowedFd<'_>, buf: &mut [u8], what: &str, wait: &mut Wait<'_>) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => crate::signal::check()?,
            Err(Errno::EAGAIN) => {
                wait(true)?;
            }
            Err(e) => return Err(Error::os(format_args!("recv on {what}"), e)),
        }
    }
    Ok(got)
}

/// Reads and drops `len` bytes in the middle of a message.
fn skip(fd: BorrowedFd<'_>, mut len: u64, what: &str, wait: &mut Wait<'_>) -> Result<u64> {
    let mut scratch = vec![0u8; len.min(64 * 1024) as usize];
    let mut skipped = 0;
    while len > 0 {
        let n = len.min(scratch.len() as u64) as usize;
        let got = read_full(fd, &mut scratch[..n], what, wait)?;
        skipped += got as u64;
        if got < n {
            break;
        }
        len -= n as u64;
    }
    Ok(skipped)
}

fn eof(what: &str) -> Error {
    Error::new(
        ErrorKind::EOFError,
        format!("{what} was closed at the other end, and no message is left"),
    )
}

fn truncated(what: &str) -> Error {
    Error::new(
        ErrorKind::EOFError,
        format!("{what} was closed in the middle of a message"),
    )
}

/// One message as read from the wire, before decoding.
enum Frame {
    /// The encoding of a value, from byte `.1` on.
    Encoded(Vec<u8>, usize),
    /// A top-level string or blob, its bytes read on their own: the codec tag and the bytes.
    Bytes(u8, Vec<u8>),
    /// A message without the value mark where one was expected (sent with `send_bytes`).
    Unmarked,
}

/// Reads the 8-byte length of the next message; `None` if `wait` gave up before it
/// started. `started` is called once its first byte is in.
fn read_length(
    fd: BorrowedFd<'_>,
    what: &str,
    started: impl FnOnce(),
    wait: &mut Wait<'_>,
) -> Result<Option<u64>> {
    let mut header = [0u8; 8];
    let first = loop {
        match nix::unistd::read(fd, &mut header) {
            Ok(n) => break n,
            Err(Errno::EINTR) => crate::signal::check()?,
            Err(Errno::EAGAIN) => {
                if !wait(false)? {
                    return Ok(None);
                }
            }
            Err(e) => return Err(Error::os(format_args!("recv on {what}"), e)),
        }
    };
    if first == 0 {
        return Err(eof(what));
    }
    started();
    if read_full(fd, &mut header[first..], what, wait)? + first < 8 {
        return Err(truncated(what));
    }
    let len = u64::from_le_bytes(header);
    if len > MAX_MESSAGE {
        return Err(Error::value(format!(
            "corrupt message on {what}: length {len}"
        )));
    }
    Ok(Some(len))
}

/// Reads one framed message; `None` if `wait` gave up before it started. `marked`: the
/// payload starts with [`VALUE_MARK`] (else [`Frame::Unmarked`]).
fn read_frame(
    fd: BorrowedFd<'_>,
    what: &str,
    marked: bool,
    started: impl FnOnce(),
    mut wait: Wait<'_>,
) -> Result<Option<Frame>> {
    let Some(len) = read_length(fd, what, started, &mut wait)? else {
        return Ok(None);
    };
    let len = len as usize;
    let m = usize::from(marked);
    // A large top-level string or blob is read straight into its own buffer.
    let mut prefix = [0u8; 6];
    let mut prefix_len = 0;
    if len >= BIG + 5 + m {
        prefix_len = 5 + m;
        if read_full(fd, &mut prefix[..prefix_len], what, &mut wait)? < prefix_len {
            return Err(truncated(what));
        }
        let n = u32::from_le_bytes(prefix[1 + m..5 + m].try_into().expect("4 bytes")) as usize;
        let tag = prefix[m];
        if (!marked || prefix[0] == VALUE_MARK)
            && (tag == codec::BLOB || tag == codec::STRING)
            && n + 5 + m == len
        {
            let mut body = vec![0u8; n];
            if read_full(fd, &mut body, what, &mut wait)? < n {
                return Err(truncated(what));
            }
            return Ok(Some(Frame::Bytes(tag, body)));
        }
    }
    let mut payload = vec![0u8; len];
    payload[..prefix_len].copy_from_slice(&prefix[..prefix_len]);
    if read_full(fd, &mut payload[prefix_len..], what, &mut wait)? < len - prefix_len {
        return Err(truncated(what));
    }
    if marked && payload.first() != Some(&VALUE_MARK) {
        return Ok(Some(Frame::Unmarked));
    }
    Ok(Some(Frame::Encoded(payload, m)))
}

/// Reads one framed message as it is (Python's `recv_bytes`): `Err(len)` for one longer
/// than `limit`, which is read and dropped.
fn read_raw(
    fd: BorrowedFd<'_>,
    what: &str,
    limit: Option<u64>,
    started: impl FnOnce(),
    mut wait: Wait<'_>,
) -> Result<Option<std::result::Result<Blob, u64>>> {
    let Some(len) = read_length(fd, what, started, &mut wait)? else {
        return Ok(None);
    };
    if limit.is_some_and(|limit| len > limit) {
        if skip(fd, len, what, &mut wait)? < len {
            return Err(truncated(what));
        }
        return Ok(Some(Err(len)));
    }
    let mut payload = vec![0u8; len as usize];
    if read_full(fd, &mut payload, what, &mut wait)? < payload.len() {
        return Err(truncated(what));
    }
    Ok(Some(Ok(payload)))
}

fn decode_frame(frame: Frame, what: &str) -> Result<Dynamic> {
    let corrupt = |e: CodecError| Error::value(format!("{e} on {what}"));
    match frame {
        Frame::Encoded(payload, from) => codec::decode(&payload[from..]).map_err(corrupt),
        Frame::Bytes(tag, body) => codec::decode_bytes(tag, body).map_err(corrupt),
        Frame::Unmarked => Err(Error::value(format!(
            "a message on {what} holds bytes sent with send_bytes(), not a value sent with \
             send(): receive it with recv_bytes()"
        ))),
    }
}

/// Reads one framed message and decodes it; `None` if `wait` gave up before it started.
/// End of input before a message is `EOFError`.
///
/// `started` is called once the first byte of the message has arrived (a queue marks the
/// stream as mid-message from then on).
pub(crate) fn read_message(
    fd: BorrowedFd<'_>,
    what: &str,
    started: impl FnOnce(),
    wait: Wait<'_>,
) -> Result<Option<Dynamic>> {
    match read_frame(fd, what, false, started, wait)? {
        Some(frame) => decode_frame(frame, what).map(Some),
        None => Ok(None),
    }
}

/// Waits until `fd` is readable (a message or end of input) or the deadline passes.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, deadline: Deadline, what: &str) -> Result<bool> {
    crate::process::wait::wait_fd(fd, libc::POLLIN, deadline, what)
}

/// Whether `fd` is readable right now.
pub(crate) fn readable_now(fd: BorrowedFd<'_>, what: &str) -> Result<bool> {
    wait_readable(fd, Deadline::after(Some(Duration::ZERO)), what)
}

/// Who is writing the message a reader is in the middle of.
pub(crate) enum Writer {
    /// Nobody will add to it any more: its writer ended or gave it up.
    Gone,
    /// This process holds the writer's lock.
    Pid(u32),
}

/// Without pidfds (Linux before 5.3), how often a reader in the middle of a message checks
/// that its writer still exists.
const LIVENESS_FALLBACK: Duration = Duration::from_millis(50);

/// For a reader in the middle of a message that has no more bytes yet: waits until `fd` is
/// readable (`true`) or the message's writer is gone with nothing left to read (`false`).
/// `writer` says who writes the message now; the wait watches that process with a pidfd,
/// so a writer's death ends it at once, with nothing that wakes to look. Ctrl-C and
/// SIGTERM end it with `Interrupted`.
pub(crate) fn wait_readable_or_writer_gone(
    fd: BorrowedFd<'_>,
    what: &str,
    mut writer: impl FnMut() -> Writer,
) -> Result<bool> {
    loop {
        let pid = match writer() {
            Writer::Gone => return readable_now(fd, what),
            Writer::Pid(pid) => pid,
        };
        let pidfd = match crate::sys::fd::pidfd_open(pid as libc::pid_t) {
            Ok(pidfd) => Some(pidfd),
            Err(Errno::ESRCH) => return readable_now(fd, what),
            Err(_) => None,
        };
        // The writer may have finished, given up or changed since it was asked: only a
        // pidfd opened while `pid` still writes can stand for the writer.
        if !matches!(writer(), Writer::Pid(now) if now == pid) {
            continue;
        }
        let mut fds = vec![libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(pidfd) = &pidfd {
            fds.push(libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let deadline = match pidfd {
            Some(_) => Deadline::NEVER,
            None => Deadline::after(Some(LIVENESS_FALLBACK)),
        };
        crate::process::wait::wait_ready_or_signal(&mut fds, deadline, what)?;
        if fds[0].revents != 0 {
            return Ok(true);
        }
        if pidfd.is_none()
            && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None)
                != Err(Errno::ESRCH)
        {
            continue;
        }
        // The writer ended: whatever it wrote before is still there to read.
        return readable_now(fd, what);
    }
}

// Shared page of a Pipe: for direction `d` (messages sent by end `d`), 16 words from
// `16 * d`, each direction on its own cache line: "a sender is mid-message", "a receiver
// is mid-message", and "broken". The locks are `RawLock` indices 8 to 11 (senders' and
// receivers' lock of direction 0, then of direction 1): small, so that they stay valid
// whether an index names a word (words 8 to 11 are not used otherwise) or a slot of the
// page's lock area.
const SEND_LOCK: usize = 0;
const RECV_LOCK: usize = 1;
const SENDING: usize = 2;
const RECEIVING: usize = 3;
const BROKEN: usize = 4;

fn word_index(direction: usize, word: usize) -> usize {
    16 * direction + word
}

fn lock_index(direction: usize, which: usize) -> usize {
    8 + 2 * direction + which
}

struct End {
    fd: RefCell<Option<OwnedFd>>,
    shm: Rc<Shm>,
    /// Which end of the pair this is (0 or 1): it sends in direction `end`.
    end: usize,
    readable: bool,
    writable: bool,
}

/// One end of a `Pipe()`. Clones share the descriptor, which closes when the last clone in
/// this process goes (or at `close()`).
#[derive(Clone)]
pub(crate) struct Connection(Rc<End>);

impl Connection {
    /// Two connected ends (a close-on-exec `AF_UNIX` stream socket pair). `duplex` false:
    /// the first end only receives and the second only sends, as Python's `Pipe(False)`.
    pub(crate) fn pair(duplex: bool) -> Result<(Self, Self)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )
        .map_err(|e| Error::os("socketpair for a Pipe", e))?;
        let shm = Shm::new(4096)?;
        let end = |fd, end, readable, writable| {
            Self(Rc::new(End {
                fd: RefCell::new(Some(fd)),
                shm: shm.clone(),
                end,
                readable,
                writable,
            }))
        };
        Ok((end(a, 0, true, duplex), end(b, 1, duplex, true)))
    }

    fn word(&self, direction: usize, word: usize) -> &AtomicU32 {
        self.0.shm.u32(word_index(direction, word))
    }

    fn with_fd<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> Result<T>) -> Result<T> {
        let fd = self.0.fd.borrow();
        match fd.as_ref() {
            Some(fd) => f(fd.as_fd()),
            None => Err(Error::new(ErrorKind::OSError, "the connection is closed")),
        }
    }

    fn check_writable(&self) -> Result<()> {
        if self.0.writable {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::OSError,
                "the connection is read-only (the first end of Pipe(false) only receives)",
            ))
        }
    }

    fn check_readable(&self) -> Result<()> {
        if self.0.readable {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::OSError,
                "the connection is write-only (the second end of Pipe(false) only sends)",
            ))
        }
    }

    fn check_broken(&self, direction: usize) -> Result<()> {
        if self.word(direction, BROKEN).load(SeqCst) != 0 {
            return Err(broken(
                "a process ended or was stopped in the middle of a message",
            ));
        }
        Ok(())
    }

    fn mark_broken(&self, direction: usize) {
        self.word(direction, BROKEN).store(1, SeqCst);
    }

    /// Takes the lock of `which` side of `direction`; a holder that died in the middle of a
    /// message (its `busy` word set) breaks the direction.
    fn lock(
        &self,
        direction: usize,
        which: usize,
        busy: usize,
        deadline: Deadline,
    ) -> Result<Option<RawLock>> {
        let lock = raw_lock(self.0.shm.clone(), lock_index(direction, which));
        match lock.acquire(deadline, OnDeadHolder::TakeOver, "the Pipe's lock")? {
            Acquired::TimedOut => Ok(None),
            Acquired::Yes => Ok(Some(lock)),
            Acquired::TookOver(pid) => {
                if self.word(direction, busy).swap(0, SeqCst) != 0 {
                    self.mark_broken(direction);
                    lock.release();
                    return Err(broken(&format!(
                        "process {pid} ended in the middle of a message"
                    )));
                }
                Ok(Some(lock))
            }
        }
    }

    /// Sends one message (waits while the other end's buffer is full).
    pub(crate) fn send(&self, value: &Dynamic, type_name: impl Fn(&str) -> String) -> Result<()> {
        self.check_writable()?;
        encode_frame(value, type_name, true, |pieces| self.send_pieces(pieces))
    }

    /// Sends `bytes` as one message, as they are (Python's `send_bytes`).
    pub(crate) fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.check_writable()?;
        with_bytes_message(bytes, |pieces| self.send_pieces(pieces))
    }

    fn send_pieces(&self, pieces: &[&[u8]]) -> Result<()> {
        let direction = self.0.end;
        self.with_fd(|fd| {
            let lock = self
                .lock(direction, SEND_LOCK, SENDING, Deadline::NEVER)?
                .expect("no deadline");
            let result = self.check_broken(direction).and_then(|()| {
                let sending = self.word(direction, SENDING);
                sending.store(1, SeqCst);
                let mut written = 0;
                let result = write_pieces_counted(fd, pieces, true, "the Pipe", &mut written);
                let whole: usize = pieces.iter().map(|p| p.len()).sum();
                if written != 0 && written != whole {
                    // Part of a message is in the stream: nothing after it can be read.
                    self.mark_broken(direction);
                }
                sending.store(0, SeqCst);
                result
            });
            lock.release();
            result
        })
    }

    /// Receives one message and decodes it, waiting at most `timeout` for it to start
    /// (`TimeoutError`).
    pub(crate) fn recv(&self, timeout: Option<Duration>) -> Result<Dynamic> {
        let frame = self.receive(timeout, |fd, started, wait| {
            read_frame(fd, "the Pipe", true, started, wait)
        })?;
        decode_frame(frame, "the Pipe")
    }

    /// Receives one message as its bytes (Python's `recv_bytes`): what `send_bytes` sent,
    /// or the encoding of a value `send` sent (which `send_bytes` can pass on, and `recv`
    /// then decodes). `Err(len)`: the message was longer than `maxlength` and was dropped.
    pub(crate) fn recv_bytes(
        &self,
        maxlength: Option<u64>,
    ) -> Result<std::result::Result<Blob, u64>> {
        self.receive(None, |fd, started, wait| {
            read_raw(fd, "the Pipe", maxlength, started, wait)
        })
    }

    /// Takes the receivers' lock and reads one message with `read`, waiting at most
    /// `timeout` for it to start.
    fn receive<T>(
        &self,
        timeout: Option<Duration>,
        read: impl FnOnce(BorrowedFd<'_>, &mut dyn FnMut(), Wait<'_>) -> Result<Option<T>>,
    ) -> Result<T> {
        self.check_readable()?;
        let direction = 1 - self.0.end;
        self.with_fd(|fd| {
            let deadline = Deadline::after(timeout);
            let timed_out = || {
                Error::new(
                    ErrorKind::TimeoutError,
                    "no message arrived on the Pipe in time",
                )
            };
            let Some(lock) = self.lock(direction, RECV_LOCK, RECEIVING, deadline)? else {
                return Err(timed_out());
            };
            let result = self.recv_locked(fd, direction, deadline, read);
            lock.release();
            result?.ok_or_else(timed_out)
        })
    }

    fn recv_locked<T>(
        &self,
        fd: BorrowedFd<'_>,
        direction: usize,
        deadline: Deadline,
        read: impl FnOnce(BorrowedFd<'_>, &mut dyn FnMut(), Wait<'_>) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        self.check_broken(direction)?;
        let receiving = self.word(direction, RECEIVING);
        let sender = raw_lock(self.0.shm.clone(), lock_index(direction, SEND_LOCK));
        let sending = self.word(direction, SENDING);
        let broken_sender = self.word(direction, BROKEN);
        let mut wait = |started: bool| -> Result<bool> {
            if !started {
                return wait_readable(fd, deadline, "the Pipe");
            }
            // In the middle of a message: its sender holds the senders' lock until the
            // whole message is out, so wait for more bytes or for that sender to go.
            let more = wait_readable_or_writer_gone(fd, "the Pipe", || {
                if broken_sender.load(SeqCst) != 0 || sending.load(SeqCst) == 0 {
                    return Writer::Gone;
                }
                match sender.holder() {
                    Some(pid) => Writer::Pid(pid),
                    None => Writer::Gone,
                }
            })?;
            if !more {
                return Err(broken(
                    "the process sending a message ended in the middle of it",
                ));
            }
            Ok(true)
        };
        let result = read(fd, &mut || receiving.store(1, SeqCst), &mut wait);
        match &result {
            Ok(_) => receiving.store(0, SeqCst),
            Err(_) if receiving.load(SeqCst) != 0 => {
                // Stopped in the middle of a message (also by Ctrl-C: other processes may
                // share this end): the rest of the stream cannot be read.
                self.mark_broken(direction);
                receiving.store(0, SeqCst);
            }
            Err(_) => {}
        }
        result
    }

    /// Whether a message (or end of input) is waiting, after waiting at most `timeout`.
    pub(crate) fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        self.check_readable()?;
        self.with_fd(|fd| wait_readable(fd, Deadline::after(timeout), "the Pipe"))
    }

    /// Closes this end (in this process); closing twice is fine.
    pub(crate) fn close(&self) {
        self.0.fd.borrow_mut().take();
    }

    /// Whether `close()` was called.
    pub(crate) fn closed(&self) -> bool {
        self.0.fd.borrow().is_none()
    }

    /// Whether this end can receive (`false` for the sending end of `Pipe(false)`).
    pub(crate) fn readable(&self) -> bool {
        self.0.readable
    }

    /// Whether this end can send (`false` for the receiving end of `Pipe(false)`).
    pub(crate) fn writable(&self) -> bool {
        self.0.writable
    }

    /// The descriptor number, -1 once closed.
    pub(crate) fn fileno(&self) -> i32 {
        self.0.fd.borrow().as_ref().map_or(-1, |fd| fd.as_raw_fd())
    }
}

fn broken(why: &str) -> Error {
    Error::new(ErrorKind::OSError, format!("the Pipe is broken: {why}"))
}
