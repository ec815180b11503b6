//! Whole-line writes to standard output and error.
//!
//! Every `print` becomes exactly one `write(2)` of the line and its newline, with nothing
//! held in a buffer. Lines from many processes writing to one pipe or file therefore stay
//! whole (a pipe write of up to `PIPE_BUF`, 4096 bytes, is atomic), a reader sees each line
//! at once, and there is never buffered output for `fork` to duplicate.

use std::io::Write;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;

/// Which standard stream to write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

impl Stream {
    fn fd(self) -> BorrowedFd<'static> {
        match self {
            // SAFETY: descriptors 1 and 2 stay open for the life of the process; procscript
            // never closes them.
            Self::Stdout => unsafe { BorrowedFd::borrow_raw(1) },
            // SAFETY: as above.
            Self::Stderr => unsafe { BorrowedFd::borrow_raw(2) },
        }
    }
}

/// Writes `text` followed by a newline in one `write(2)` where the OS allows.
///
/// Returns `EPIPE` when the reader has gone, so that the caller can end quietly.
pub fn write_line(stream: Stream, text: &str) -> Result<(), Errno> {
    let mut line = Vec::with_capacity(text.len() + 1);
    line.extend_from_slice(text.as_bytes());
    line.push(b'\n');
    write_all(stream, &line)
}

/// Writes all of `bytes`, retrying after signals and short writes.
///
/// After a short write (a slow or stopped reader, or a signal) it waits for room in the
/// wait primitive, so Ctrl-C or SIGTERM end the write at once: `EINTR` is returned and the
/// script stops at its next check.
pub fn write_all(stream: Stream, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match nix::unistd::write(stream.fd(), bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err(e),
        }
        if !bytes.is_empty() {
            let deadline = crate::process::wait::Deadline::NEVER;
            let waited =
                crate::process::wait::wait_fd(stream.fd(), libc::POLLOUT, deadline, "output");
            if waited.is_err() || crate::signal::pending().is_some() {
                return Err(Errno::EINTR);
            }
        }
    }
    Ok(())
}

/// Whether Rust's buffered `stdout`/`stderr` handles may hold text at a fork.
static STD_STREAMS_IN_USE: AtomicBool = AtomicBool::new(true);

/// Tells procscript that nothing writes through Rust's `std::io::stdout()`/`stderr()`
/// (`print!`, `eprintln!`) while scripts run, so forks need not flush them. The `procscript`
/// binary does; a host that prints that way must not. Each flush locks and writes the
/// handles' state, a page that then faults in both processes after every fork.
pub fn std_streams_unused() {
    STD_STREAMS_IN_USE.store(false, Ordering::Relaxed);
}

/// Flushes Rust's own buffered standard streams, so that a fork cannot duplicate them.
///
/// procscript's writes are unbuffered; this catches text a host wrote with `print!`.
pub fn flush_std_streams() {
    if STD_STREAMS_IN_USE.load(Ordering::Relaxed) {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
    }
}
