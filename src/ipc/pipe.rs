//! `Pipe()`: two connected ends of a Unix socket pair, carrying whole messages.
//!
//! A message on the wire is an 8-byte little-endian length and then that many bytes of
//! [`super::codec`] encoding. Writes loop until the whole message is out, so a
//! message can be far larger than the kernel's buffer; the reader reads exactly one
//! message, never more, so a descriptor shared by several processes never loses bytes
//! into one reader's buffer.

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use rhai::Dynamic;

use super::codec::{self, CodecError};
use super::sync::Deadline;
use crate::error::{Error, ErrorKind, Result};

/// The largest message accepted, in bytes (a corrupt length must not allocate wildly).
pub const MAX_MESSAGE: u64 = 1 << 30;

/// How a value that cannot travel is reported; `type_name` maps Rust names to script names.
pub fn codec_error(err: CodecError, type_name: impl Fn(&str) -> String) -> Error {
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
pub const BIG: usize = 64 * 1024;

/// Encodes `value` as one framed message and hands its pieces to `write`. A top-level
/// blob or string of [`BIG`] bytes or more is passed as it is, after a short prefix, so
/// that a large message is not copied on its way to the kernel.
pub fn with_message<T>(
    value: &Dynamic,
    type_name: impl Fn(&str) -> String,
    write: impl FnOnce(&[&[u8]]) -> Result<T>,
) -> Result<T> {
    if let Ok(blob) = value.as_blob_ref() {
        if blob.len() >= BIG {
            return write_big(codec::BLOB, &blob, write);
        }
    }
    if let Ok(text) = value.as_immutable_string_ref() {
        if text.len() >= BIG {
            return write_big(codec::STRING, text.as_bytes(), write);
        }
    }
    write(&[&frame(value, type_name)?])
}

/// Encodes `value` as one framed message in a buffer of its own, header included: for a
/// sender that queues messages and writes them later (the pool's parent side).
pub fn frame(value: &Dynamic, type_name: impl Fn(&str) -> String) -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; 8];
    codec::encode(value, &mut bytes).map_err(|e| codec_error(e, type_name))?;
    let len = (bytes.len() - 8) as u64;
    check_len(len)?;
    bytes[..8].copy_from_slice(&len.to_le_bytes());
    Ok(bytes)
}

/// The whole message at the start of `buf`, decoded, and how many bytes it took (header
/// included); `None` while the message is incomplete. The counterpart of [`frame`] (and of
/// [`with_message`]) for a reader that buffers what a non-blocking descriptor had.
pub fn unframe(buf: &[u8], what: &str) -> Result<Option<(Dynamic, usize)>> {
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

fn write_big<T>(tag: u8, body: &[u8], write: impl FnOnce(&[&[u8]]) -> Result<T>) -> Result<T> {
    let len = body.len() as u64 + 5;
    check_len(len)?;
    let mut head = [0u8; 13];
    head[..8].copy_from_slice(&len.to_le_bytes());
    head[8] = tag;
    head[9..].copy_from_slice(&(body.len() as u32).to_le_bytes());
    write(&[&head, body])
}

/// Writes every piece, in order.
pub fn write_pieces(fd: BorrowedFd<'_>, pieces: &[&[u8]], socket: bool, what: &str) -> Result<()> {
    for piece in pieces {
        write_all(fd, piece, socket, what)?;
    }
    Ok(())
}

/// Writes all of `bytes`, retrying short writes and signals. Sockets are written with
/// `MSG_NOSIGNAL`, so a gone reader is a `BrokenPipeError`, never a SIGPIPE.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8], socket: bool, what: &str) -> Result<()> {
    while !bytes.is_empty() {
        let written = if socket {
            nix::sys::socket::send(fd.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL)
        } else {
            nix::unistd::write(fd, bytes)
        };
        match written {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => crate::signal::check()?,
            Err(e) => return Err(Error::os(format_args!("send on {what}"), e)),
        }
    }
    Ok(())
}

/// What a reader does when a non-blocking descriptor has no data yet: it is told whether
/// the message has started, and returns whether to read again (`Ok(false)` before the start
/// gives up: a timeout) or an error to abort with. A blocking descriptor never asks.
pub type Wait<'a> = &'a mut dyn FnMut(bool) -> Result<bool>;

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

fn eof(what: &str) -> Error {
    Error::new(
        ErrorKind::EOFError,
        format!("{what} was closed at the other end, and no message is left"),
    )
}

/// Reads one framed message and decodes it; `None` if `wait` gave up before it started.
/// End of input before a message is `EOFError`.
///
/// `started` is called once the first byte of the message has arrived (a queue marks the
/// stream as mid-message from then on).
pub fn read_message(
    fd: BorrowedFd<'_>,
    what: &str,
    started: impl FnOnce(),
    mut wait: Wait<'_>,
) -> Result<Option<Dynamic>> {
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
    let truncated = || {
        Error::new(
            ErrorKind::EOFError,
            format!("{what} was closed in the middle of a message"),
        )
    };
    if read_full(fd, &mut header[first..], what, &mut wait)? + first < 8 {
        return Err(truncated());
    }
    let len = u64::from_le_bytes(header);
    if len > MAX_MESSAGE {
        return Err(Error::value(format!(
            "corrupt message on {what}: length {len}"
        )));
    }
    let corrupt = |e: CodecError| Error::value(format!("{e} on {what}"));
    let len = len as usize;
    // A large top-level string or blob is read straight into its own buffer.
    let mut prefix = [0u8; 5];
    let mut prefix_len = 0;
    if len >= BIG + 5 {
        prefix_len = 5;
        if read_full(fd, &mut prefix, what, &mut wait)? < 5 {
            return Err(truncated());
        }
        let n = u32::from_le_bytes(prefix[1..5].try_into().expect("4 bytes")) as usize;
        if (prefix[0] == codec::BLOB || prefix[0] == codec::STRING) && n + 5 == len {
            let mut body = vec![0u8; n];
            if read_full(fd, &mut body, what, &mut wait)? < n {
                return Err(truncated());
            }
            return codec::decode_bytes(prefix[0], body)
                .map(Some)
                .map_err(corrupt);
        }
    }
    let mut payload = vec![0u8; len];
    payload[..prefix_len].copy_from_slice(&prefix[..prefix_len]);
    if read_full(fd, &mut payload[prefix_len..], what, &mut wait)? < len - prefix_len {
        return Err(truncated());
    }
    codec::decode(&payload).map(Some).map_err(corrupt)
}

/// Waits until `fd` is readable (a message or end of input) or the deadline passes.
pub fn wait_readable(fd: BorrowedFd<'_>, deadline: Deadline, what: &str) -> Result<bool> {
    crate::process::wait::wait_fd(fd, libc::POLLIN, deadline, what)
}

/// One end of a `Pipe()`. Clones share the descriptor, which closes when the last clone in
/// this process goes (or at `close()`).
#[derive(Clone)]
pub struct Connection(Rc<RefCell<Option<OwnedFd>>>);

impl Connection {
    /// Two connected ends (a close-on-exec `AF_UNIX` stream socket pair).
    pub fn pair() -> Result<(Self, Self)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::os("socketpair for a Pipe", e))?;
        Ok((
            Self(Rc::new(RefCell::new(Some(a)))),
            Self(Rc::new(RefCell::new(Some(b)))),
        ))
    }

    fn with_fd<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> Result<T>) -> Result<T> {
        let fd = self.0.borrow();
        match fd.as_ref() {
            Some(fd) => f(fd.as_fd()),
            None => Err(Error::new(ErrorKind::OSError, "the connection is closed")),
        }
    }

    /// Sends one message (waits while the other end's buffer is full).
    pub fn send(&self, value: &Dynamic, type_name: impl Fn(&str) -> String) -> Result<()> {
        with_message(value, type_name, |pieces| {
            self.with_fd(|fd| write_pieces(fd, pieces, true, "the Pipe"))
        })
    }

    /// Receives one message, waiting at most `timeout` for it to start (`TimeoutError`).
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Dynamic> {
        self.with_fd(|fd| {
            // Wait in ppoll even without a timeout: a blocking read could miss a Ctrl-C that
            // lands just before it, while ppoll lets it in atomically.
            if !wait_readable(fd, Deadline::after(timeout), "the Pipe")? {
                return Err(Error::new(
                    ErrorKind::TimeoutError,
                    "no message arrived on the Pipe in time",
                ));
            }
            let result = read_message(fd, "the Pipe", || {}, &mut |_| Ok(true))?;
            Ok(result.unwrap_or(Dynamic::UNIT))
        })
    }

    /// Whether a message (or end of input) is waiting, after waiting at most `timeout`.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        self.with_fd(|fd| wait_readable(fd, Deadline::after(timeout), "the Pipe"))
    }

    /// Closes this end (in this process); closing twice is fine.
    pub fn close(&self) {
        self.0.borrow_mut().take();
    }

    /// Whether `close()` was called.
    pub fn closed(&self) -> bool {
        self.0.borrow().is_none()
    }

    /// The descriptor number, -1 once closed.
    pub fn fileno(&self) -> i32 {
        self.0.borrow().as_ref().map_or(-1, |fd| fd.as_raw_fd())
    }
}
