//! The two sleeps every blocking wait of procscript is made of, and nothing else: no timer
//! wakes them, only an event, their [`Deadline`] or a signal.
//!
//! - [`ready`]: descriptors, with `ppoll`, which lets the termination signals in
//!   atomically, so a signal that arrives just before the sleep still ends it.
//! - [`word`]: a word in shared memory, with `futex_waitv` on two futexes: the word, and
//!   this process's *wake word*, which every procscript signal handler bumps
//!   ([`crate::signal::wake_word`]). A signal that lands between the last check and the
//!   sleep changes the wake word, so the kernel returns at once. On kernels before 5.16 (no
//!   `futex_waitv`) the word wait sleeps in slices of 100 ms.
//!
//! What a caller does between sleeps (the process room reaps its children there) is the
//! caller's: `between` and `look` run at every wake-up.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use nix::errno::Errno;

use super::futex::{futex_wait_slice, futex_waitv};
use super::Deadline;
use crate::error::{Error, Result};
use crate::signal;

/// Whether `futex_waitv` (Linux 5.16) is missing: then word waits sleep in slices.
static NO_FUTEX_WAITV: AtomicBool = AtomicBool::new(false);

/// The longest sleep of a word wait on a kernel without `futex_waitv`, so that a signal that
/// lands just before the sleep is still noticed within this time.
const FALLBACK_SLICE: Duration = Duration::from_millis(100);

/// Does nothing: the `between` of a wait that has nothing to do between sleeps.
pub(crate) fn nothing() {}

/// Sleeps while `word` holds `expected`, until woken, the deadline, or a signal; runs
/// `between` before every look at the word.
///
/// Returns `Ok(true)` when the word may have changed or a waker called (callers re-check
/// their condition in a loop, as with any futex), `Ok(false)` once the deadline has
/// passed, and [`crate::ErrorKind::Interrupted`] on Ctrl-C or SIGTERM. `word` must be
/// shared memory (`MAP_SHARED`), waited on and woken without `FUTEX_PRIVATE_FLAG`.
pub(crate) fn word(
    word: &AtomicU32,
    expected: u32,
    deadline: Deadline,
    between: fn(),
) -> Result<bool> {
    let wake = signal::wake_word();
    loop {
        let seen = wake.load(Ordering::SeqCst);
        between();
        signal::check()?;
        if word.load(Ordering::SeqCst) != expected {
            return Ok(true);
        }
        let left = deadline.left();
        if left.is_some_and(|l| l.is_zero()) {
            return Ok(false);
        }
        if NO_FUTEX_WAITV.load(Ordering::Relaxed) {
            futex_wait_slice(
                word,
                expected,
                left.map_or(FALLBACK_SLICE, |l| l.min(FALLBACK_SLICE)),
            );
            continue;
        }
        match futex_waitv(word, expected, wake, seen, left) {
            Ok(0) => return Ok(true),
            // The wake word moved (a signal): look around, check, and sleep again.
            Ok(_) | Err(Errno::EINTR) => {}
            // One of the words no longer holds what we expected: look again.
            Err(Errno::EAGAIN) => {}
            Err(Errno::ETIMEDOUT) => return Ok(false),
            Err(Errno::ENOSYS) => NO_FUTEX_WAITV.store(true, Ordering::Relaxed),
            Err(_) => futex_wait_slice(word, expected, FALLBACK_SLICE),
        }
    }
}

/// What a descriptor wait watches and how it ends.
pub(crate) struct Poll<'a> {
    /// The descriptors whose readiness the caller wants; their `revents` say which are ready.
    pub fds: &'a mut [libc::pollfd],
    /// A descriptor that only wakes the wait (the reaper's epoll set of children): its
    /// readiness is the caller's to act on in `look`, never a reason to return.
    pub also: Option<RawFd>,
    /// When to give up.
    pub deadline: Deadline,
    /// Whether Ctrl-C or SIGTERM end the wait with [`crate::ErrorKind::Interrupted`].
    pub interruptible: bool,
    /// What is waited for, for an error message.
    pub what: &'a str,
}

/// The one descriptor wait: with the signals of `block` blocked, runs `look` (true: done)
/// and, if the wait is interruptible, checks for a termination signal; then sleeps in
/// `ppoll` on the descriptors, letting the signals in atomically, so none can slip between
/// the check and the sleep. Returns true when `look` says done or a descriptor of
/// `poll.fds` is ready (after one more `look`), false once the deadline has passed.
pub(crate) fn ready(
    block: &signal::Block,
    poll: Poll<'_>,
    mut look: impl FnMut() -> bool,
) -> Result<bool> {
    let Poll {
        fds,
        also,
        deadline,
        interruptible,
        what,
    } = poll;
    let mask = block.waiting_mask();
    let mut all: Vec<libc::pollfd> = Vec::with_capacity(fds.len() + 1);
    loop {
        if look() {
            return Ok(true);
        }
        if interruptible {
            signal::check()?;
        }
        let timeout = match deadline.left() {
            None => None,
            Some(left) if left.is_zero() => {
                // Still look once: a ready descriptor wins over a deadline that has passed.
                if fds.is_empty() {
                    return Ok(false);
                }
                Some(Duration::ZERO)
            }
            Some(left) => Some(left),
        };
        all.clear();
        all.extend_from_slice(fds);
        if let Some(fd) = also {
            all.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout = timeout.map(nix::sys::time::TimeSpec::from_duration);
        let timeout_ptr = timeout
            .as_ref()
            .map_or(std::ptr::null(), |t| t.as_ref() as *const libc::timespec);
        // SAFETY: `all` is a valid array of its length, and the timeout and mask point to
        // live values (or null, for no timeout) for the call.
        let ready = unsafe {
            libc::ppoll(
                all.as_mut_ptr(),
                all.len() as libc::nfds_t,
                timeout_ptr,
                mask.as_ref(),
            )
        };
        match ready {
            n if n > 0 => {
                for (fd, polled) in fds.iter_mut().zip(&all) {
                    fd.revents = polled.revents;
                }
                if fds.iter().any(|fd| fd.revents != 0) {
                    look();
                    return Ok(true);
                }
            }
            0 => {
                if timeout.is_some_and(|t| t.tv_sec() == 0 && t.tv_nsec() == 0) {
                    return Ok(false);
                }
            }
            _ => match Errno::last() {
                Errno::EINTR => {}
                e => return Err(Error::os(what, e)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn word_wait_returns_on_mismatch_and_deadline() {
        let w = AtomicU32::new(0);
        assert!(word(&w, 1, Deadline::NEVER, nothing).unwrap());
        let start = Instant::now();
        let woken = word(
            &w,
            0,
            Deadline::after(Some(Duration::from_millis(20))),
            nothing,
        );
        assert!(!woken.unwrap());
        assert!(start.elapsed() >= Duration::from_millis(15));
    }
}
