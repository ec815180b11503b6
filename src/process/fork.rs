//! The one place procscript forks.
//!
//! # Fork safety
//!
//! After `fork` only the calling thread exists in the child. Had another thread held a lock
//! (the allocator's, stdout's, a host's mutex), the child would wait for it forever; so
//! procscript refuses to fork while the process has other threads, and says why. The child
//! runs its body, flushes, and ends with `_exit`: it never returns into the caller's frames,
//! never runs the parent's `atexit` handlers or destructors, and a panic in it is caught
//! before it could unwind into the parent's code.

use std::panic::{catch_unwind, AssertUnwindSafe};

use nix::unistd::{ForkResult, Pid};

use super::wait::{self, SigchldBlock, SlotId};
use crate::error::{Error, Result};
use crate::output::{self, Stream};

/// Exit code of a child whose body panicked (Rust's own code for a panic).
pub const PANIC_EXIT_CODE: i32 = 101;

/// Number of threads in this process, from the link count of `/proc/self/task`
/// (one entry per thread, plus `.` and `..`). One `stat`, cheap enough to do per fork.
pub fn thread_count() -> Option<u64> {
    let stat = nix::sys::stat::stat("/proc/self/task").ok()?;
    Some((stat.st_nlink as u64).saturating_sub(2))
}

/// Refuses to fork from a multi-threaded process.
fn check_single_threaded() -> Result<()> {
    match thread_count() {
        Some(n) if n > 1 => Err(Error::process(format!(
            "refusing to fork: this process has {n} threads, and a forked child of a threaded \
             process can deadlock on a lock another thread held (see docs/embedding.md)"
        ))),
        _ => Ok(()),
    }
}

/// Forks; the child runs `child_body` and exits with the code it returns. Returns the
/// child's pid and reaper slot in the parent, never in the child.
///
/// `setup_child` runs first in the child, before SIGCHLD is let through again, to reset
/// whatever per-process state the child must not share with its parent.
pub fn fork_and_run(
    setup_child: impl FnOnce(),
    child_body: impl FnOnce() -> i32,
) -> Result<(Pid, SlotId)> {
    check_single_threaded()?;
    output::flush_std_streams();
    let block = SigchldBlock::new();
    // SAFETY: the process is single-threaded (checked just above), so the child inherits no
    // lock held by another thread; it runs `child_body` and ends in `_exit` without
    // returning into the caller.
    match unsafe { nix::unistd::fork() } {
        Err(errno) => Err(Error::os("fork", errno)),
        Ok(ForkResult::Parent { child }) => {
            let slot = wait::register(child, &block)?;
            drop(block);
            Ok((child, slot))
        }
        Ok(ForkResult::Child) => {
            wait::reset_in_child();
            setup_child();
            drop(block);
            let code = match catch_unwind(AssertUnwindSafe(child_body)) {
                Ok(code) => code,
                Err(_) => {
                    let _ = output::write_line(
                        Stream::Stderr,
                        "procscript: internal panic in a child process",
                    );
                    PANIC_EXIT_CODE
                }
            };
            exit_now(code)
        }
    }
}

/// Flushes and ends this process at once, without unwinding or running `atexit` handlers.
pub fn exit_now(code: i32) -> ! {
    output::flush_std_streams();
    // SAFETY: `_exit` is always safe to call; skipping destructors and atexit handlers is the
    // point, since they belong to the parent's copy of the program.
    unsafe { libc::_exit(code) }
}
