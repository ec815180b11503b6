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
//!   every line there is written holding [the line lock](LineLock): one word in an anonymous
//!   `MAP_SHARED` page made before the first fork, so every process of the run shares it.
//!   Short lines take it too: a short line written while a long one is between two pieces
//!   would land inside it.
//!   A writer that dies holding it (killed mid-line) cannot block the others: a waiter
//!   looks every 50 ms whether the holder still exists, and takes the lock over if not.

use std::io::Write;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

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

/// Writes `text` followed by a newline in one `write(2)` where the OS allows; a line to a
/// pipe, FIFO or socket is written under the shared line lock, so that it stays whole there
/// too (a long one may take several writes, and no other line may come between them).
///
/// Returns `EPIPE` when the reader has gone, so that the caller can end quietly.
pub fn write_line(stream: Stream, text: &str) -> Result<(), Errno> {
    let mut line = Vec::with_capacity(text.len() + 1);
    line.extend_from_slice(text.as_bytes());
    line.push(b'\n');
    if may_split(stream) {
        if let Some(lock) = LineLock::shared() {
            let _held = lock.acquire()?;
            return write_all(stream, &line);
        }
    }
    write_all(stream, &line)
}

/// Whether a long write to `stream` can be split by another writer's: a pipe, FIFO or socket.
fn may_split(stream: Stream) -> bool {
    nix::sys::stat::fstat(stream.fd()).is_ok_and(|st| {
        let kind = st.st_mode & libc::S_IFMT;
        kind == libc::S_IFIFO || kind == libc::S_IFSOCK
    })
}

/// The lock that keeps long lines whole through a pipe: one 32-bit word in shared memory
/// holding the pid of the process writing a long line (0 when free), and a count of waiters.
///
/// Waiters sleep on the word with a futex keyed by the physical page (no
/// `FUTEX_PRIVATE_FLAG`), so a release in one process wakes a waiter in another.
pub struct LineLock {
    owner: &'static AtomicU32,
    waiters: &'static AtomicU32,
}

static LINE_LOCK: OnceLock<Option<LineLock>> = OnceLock::new();

/// How long a waiter sleeps before it looks whether the holder still exists.
const HOLDER_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// The lock held; released on drop.
pub struct LineLockGuard {
    lock: &'static LineLock,
    me: u32,
}

impl LineLock {
    /// The run's line lock, made on first use. [`flush_std_streams`], which runs before every
    /// fork, makes it, so that the first fork already shares it. `None` if shared memory
    /// could not be mapped: long lines are then written without it, as before.
    pub fn shared() -> Option<&'static LineLock> {
        LINE_LOCK.get_or_init(Self::map).as_ref()
    }

    fn map() -> Option<LineLock> {
        // SAFETY: an anonymous mapping with no address hint touches no existing memory; the
        // result is checked against MAP_FAILED before use.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return None;
        }
        let words = page.cast::<AtomicU32>();
        // SAFETY: the page is zero-filled, page-aligned (so 4-aligned), never unmapped (it
        // lives as long as the process and its forked children, hence `'static`), and only
        // ever accessed through atomics and futex calls on these two words.
        let (owner, waiters) = unsafe { (&*words, &*words.add(1)) };
        Some(LineLock { owner, waiters })
    }

    /// Takes the lock, waiting while another live process holds it. A holder that no longer
    /// exists is taken over. Ctrl-C or SIGTERM end the wait with `EINTR`.
    pub fn acquire(&'static self) -> Result<LineLockGuard, Errno> {
        let me = nix::unistd::getpid().as_raw().unsigned_abs();
        loop {
            let holder =
                match self
                    .owner
                    .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => return Ok(LineLockGuard { lock: self, me }),
                    Err(holder) => holder,
                };
            if holder == me {
                // A stale claim of this pid (a process that died holding it, whose pid was
                // reused by us): ours now.
                return Ok(LineLockGuard { lock: self, me });
            }
            if crate::signal::pending().is_some() {
                return Err(Errno::EINTR);
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
            futex_wait(self.owner, holder, HOLDER_CHECK);
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            let holder_gone =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(holder as i32), None)
                    == Err(Errno::ESRCH);
            if holder_gone
                && self
                    .owner
                    .compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return Ok(LineLockGuard { lock: self, me });
            }
        }
    }
}

impl Drop for LineLockGuard {
    fn drop(&mut self) {
        let _ = self
            .lock
            .owner
            .compare_exchange(self.me, 0, Ordering::Release, Ordering::Relaxed);
        if self.lock.waiters.load(Ordering::SeqCst) > 0 {
            futex_wake(self.lock.owner);
        }
    }
}

/// Sleeps while `word` holds `expected`, at most `timeout` (or until a signal or a wake).
fn futex_wait(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned 32-bit atomic in shared memory and `ts` a valid
    // timespec; FUTEX_WAIT only reads them. Every outcome (woken, EAGAIN, ETIMEDOUT, EINTR)
    // leads the caller to look again.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// Wakes one process sleeping in [`futex_wait`] on `word`.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned 32-bit atomic; FUTEX_WAKE only uses its address.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1);
    }
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
/// procscript's writes are unbuffered; this catches text a host wrote with `print!`. Runs
/// before every fork, so it also makes the [`LineLock`] the new process will share.
pub fn flush_std_streams() {
    let _ = LineLock::shared();
    if STD_STREAMS_IN_USE.load(Ordering::Relaxed) {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
    }
}
