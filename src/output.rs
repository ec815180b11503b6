//! Whole-line writes to standard output and error.
//!
//! Every `print` becomes exactly one `write(2)` of the line and its newline, with nothing
//! held in a buffer, so a reader sees each line at once and there is never buffered output
//! for `fork` to duplicate. Lines from many processes writing to one pipe or file stay
//! whole:
//!
//! - to a regular file or a terminal, one `write(2)` is never interleaved with another;
//! - to a pipe, FIFO or socket, a write of up to `PIPE_BUF` (4096 bytes) is atomic, but a
//!   longer one can be split, and another process's line can land between the pieces. So
//!   every line there is written holding [the line lock](LineLock) of its stream: a robust
//!   futex ([`crate::sys::lock`]) in an anonymous `MAP_SHARED` page made before the first
//!   fork, so every process of the run shares it. Short lines take it too: a short line
//!   written while a long one is between two pieces would land inside it. stdout and stderr
//!   have one lock each (a writer blocked on a full stdout must not hold up stderr), and
//!   share stdout's when they are the same pipe (`2>&1`). A writer that dies
//!   holding it (killed mid-line) cannot block the others: the kernel marks the lock and
//!   wakes a waiter, which takes it over at once. Waiters sleep in the kernel; nothing polls.

use std::cell::OnceCell;
use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use nix::errno::Errno;

use crate::sys::futex::SLOT;
use crate::sys::lock::{Acquired, OnDeadHolder, RawLock, LOCK_AREA};
use crate::sys::shm::Shm;
use crate::sys::{wait, Deadline};

/// Which standard stream to write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

impl Stream {
    /// Runs `f` with the stream's descriptor (Rust's handle is only borrowed for its number:
    /// nothing goes through its buffer).
    fn with_fd<R>(self, f: impl FnOnce(BorrowedFd<'_>) -> R) -> R {
        match self {
            Self::Stdout => f(std::io::stdout().as_fd()),
            Self::Stderr => f(std::io::stderr().as_fd()),
        }
    }
}

/// Set when standard output's reader has gone; the script then ends quietly.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Line labels: 0 off, 1 plain, 2 coloured (see [`set_labels`]).
static LABELS: AtomicU8 = AtomicU8::new(0);

/// Prefixes every printed line with the printing process's name and pid
/// (`[Process-1 4242] alex is piaoing`), coloured per process when stdout is a terminal and
/// `NO_COLOR` is unset, as `docker compose` and `honcho` do. Lines stay whole.
pub(crate) fn set_labels(on: bool) {
    let color = color_allowed() && std::io::stdout().is_terminal();
    LABELS.store(
        if !on {
            0
        } else if color {
            2
        } else {
            1
        },
        Ordering::Relaxed,
    );
}

/// Colours for labels, picked by pid so that each process keeps one.
const LABEL_COLORS: [u8; 10] = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

/// Prints a line as `print` does: one whole write to standard output, with the progress
/// bar cleared around it; with `--label`, each line labelled with the printing process's
/// name and pid, which `identity` gives (it is called only then). A reader that has gone
/// is remembered ([`stdout_closed`]), so that the script ends quietly.
pub(crate) fn print(text: &str, identity: impl FnOnce() -> (String, i32)) {
    let result = crate::progress::around(|| match LABELS.load(Ordering::Relaxed) {
        0 => write_line(Stream::Stdout, text),
        mode => {
            let (name, pid) = identity();
            write_line(Stream::Stdout, &labelled_as(&name, pid, text, mode == 2))
        }
    });
    if result == Err(Errno::EPIPE) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `text` with each of its lines labelled with `name` and `pid`.
fn labelled_as(name: &str, pid: i32, text: &str, color: bool) -> String {
    let label = format!("[{name} {pid}]");
    let label = if color {
        let code = LABEL_COLORS[pid.unsigned_abs() as usize % LABEL_COLORS.len()];
        format!("\x1b[{code}m{label}\x1b[0m")
    } else {
        label
    };
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| format!("{label} {line}"))
        .collect();
    lines.join("\n")
}

/// Exit code for a script whose output reader went away (as a shell reports SIGPIPE).
pub(crate) const EXIT_PIPE_CLOSED: i32 = 141;

/// Whether a `print` of this process found standard output's reader gone.
pub(crate) fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Whether colour is allowed at all: `NO_COLOR` unset or empty (<https://no-color.org>).
/// The one place that reads it.
pub(crate) fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether diagnostics on stderr get colour: a terminal, and `NO_COLOR` unset.
pub(crate) fn stderr_color() -> bool {
    color_allowed() && std::io::stderr().is_terminal()
}

/// Writes `text` followed by a newline in one `write(2)` where the OS allows; a line to a
/// pipe, FIFO or socket is written under the shared line lock, so that it stays whole there
/// too (a long one may take several writes, and no other line may come between them).
///
/// Returns `EPIPE` when the reader has gone, so that the caller can end quietly.
pub(crate) fn write_line(stream: Stream, text: &str) -> Result<(), Errno> {
    let mut line = Vec::with_capacity(text.len() + 1);
    line.extend_from_slice(text.as_bytes());
    line.push(b'\n');
    if let Some(pipe) = pipe_of(stream) {
        // One lock per pipe: a writer blocked on a full stdout must not hold up stderr's
        // lines, unless both are the same pipe (`2>&1`), where they could tear each other.
        let shares_stdout = stream == Stream::Stderr && pipe_of(Stream::Stdout) == Some(pipe);
        let which = if shares_stdout {
            Stream::Stdout
        } else {
            stream
        };
        if let Some(lock) = LineLock::shared(which) {
            let _held = lock.acquire()?;
            return write_all(stream, &line);
        }
    }
    write_all(stream, &line)
}

/// The device and inode of `stream` when a long write to it can be split by another
/// writer's (a pipe, FIFO or socket); `None` for files and terminals.
fn pipe_of(stream: Stream) -> Option<(u64, u64)> {
    let st = stream.with_fd(|fd| nix::sys::stat::fstat(fd)).ok()?;
    let kind = st.st_mode & libc::S_IFMT;
    (kind == libc::S_IFIFO || kind == libc::S_IFSOCK).then_some((st.st_dev, st.st_ino))
}

/// The lock that keeps long lines whole through a pipe: a robust futex in shared memory
/// (see [`crate::sys::lock`]), so a holder killed mid-line frees it for the next writer.
pub(crate) struct LineLock(RawLock);

thread_local! {
    /// The run's line locks (stdout's, stderr's), made on first use; `None` if shared memory
    /// could not be mapped.
    static LINE_LOCKS: OnceCell<Option<[Rc<LineLock>; 2]>> = const { OnceCell::new() };
}

/// The lock held; released on drop.
pub(crate) struct LineLockGuard(Rc<LineLock>);

impl LineLock {
    /// The run's line lock for `stream`, made on first use. [`flush_std_streams`], which
    /// runs before every fork, makes them, so that the first fork already shares them. `None`
    /// if shared memory could not be mapped: lines are then written without it.
    pub(crate) fn shared(stream: Stream) -> Option<Rc<LineLock>> {
        LINE_LOCKS.with(|cell| {
            let locks = cell.get_or_init(|| {
                let shm = Shm::new(LOCK_AREA + 2 * SLOT).ok()?;
                let lock =
                    |index| Rc::new(LineLock(RawLock::new(shm.clone(), index, wait::nothing)));
                Some([lock(0), lock(1)])
            });
            locks.as_ref().map(|locks| locks[stream as usize].clone())
        })
    }

    /// Takes the lock, waiting while another process holds it; a holder that died is taken
    /// over. Ctrl-C or SIGTERM end the wait with `EINTR`.
    pub(crate) fn acquire(self: Rc<Self>) -> Result<LineLockGuard, Errno> {
        match self
            .0
            .acquire(Deadline::NEVER, OnDeadHolder::TakeOver, "the line lock")
        {
            Ok(Acquired::Yes | Acquired::TookOver(_)) => Ok(LineLockGuard(self)),
            Ok(Acquired::TimedOut) | Err(_) => Err(Errno::EINTR),
        }
    }
}

impl Drop for LineLockGuard {
    fn drop(&mut self) {
        self.0 .0.release();
    }
}

/// Writes all of `bytes`, retrying after signals and short writes.
///
/// After a short write (a slow or stopped reader, or a signal) it waits for room in the
/// wait primitive, so Ctrl-C or SIGTERM end the write at once: `EINTR` is returned and the
/// script stops at its next check.
pub(crate) fn write_all(stream: Stream, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match stream.with_fd(|fd| nix::unistd::write(fd, bytes)) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err(e),
        }
        if !bytes.is_empty() {
            let mut fds = [libc::pollfd {
                fd: stream.with_fd(|fd| fd.as_raw_fd()),
                events: libc::POLLOUT,
                revents: 0,
            }];
            let poll = wait::Poll {
                fds: &mut fds,
                also: None,
                deadline: Deadline::NEVER,
                interruptible: true,
                what: "output",
            };
            let waited = wait::ready(&crate::signal::Block::new(), poll, || false);
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
pub(crate) fn std_streams_unused() {
    STD_STREAMS_IN_USE.store(false, Ordering::Relaxed);
}

/// Flushes Rust's own buffered standard streams, so that a fork cannot duplicate them.
///
/// procscript's writes are unbuffered; this catches text a host wrote with `print!`. Runs
/// before every fork, so it also makes the [`LineLock`] the new process will share.
pub(crate) fn flush_std_streams() {
    let _ = LineLock::shared(Stream::Stdout);
    if STD_STREAMS_IN_USE.load(Ordering::Relaxed) {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
    }
}
