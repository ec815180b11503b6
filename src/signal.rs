//! Ctrl-C and SIGTERM for the processes that run a script.
//!
//! The handlers only record the signal. The script then stops at its next check: Rhai's
//! progress hook between operations, and procscript's own waits (`sleep`, `join`, ...), which
//! wait with `ppoll` and so wake on the signal. The runner then passes the signal on to the
//! children, gives them a grace period, kills what is left, reaps everything, and exits
//! with 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM), as a shell reports it
//! (see `process::end_children`).
//!
//! A child process starts with the default dispositions, so that it ends at once on SIGINT
//! or SIGTERM (`p.terminate()` gives `exitcode == -15`, as in Python). When it starts
//! children of its own it takes the handlers too ([`handle_in_child`]), and they decide per
//! signal: with no live child it still ends at once, by the signal; with children it ends
//! them first and then ends by the signal, so that SIGTERM to the main process reaches the
//! whole tree and leaves nothing running.
//!
//! This module is a leaf: the reaper tells it how many children are alive
//! ([`child_started`], [`child_reaped`]).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::error::{Error, ErrorKind, Result};

/// The termination signal received and not yet acted on, or 0.
static PENDING: AtomicI32 = AtomicI32::new(0);

/// Bumped by every procscript signal handler (SIGINT, SIGTERM, SIGCHLD), so that a futex
/// wait that includes it wakes at once, even for a signal that landed just before the
/// sleep began (see `sys::wait::word`). Private to this process.
static WAKE_WORD: AtomicU32 = AtomicU32::new(0);

/// Children of this process that have not been reaped (kept by the reaper).
static LIVE_CHILDREN: AtomicUsize = AtomicUsize::new(0);

/// In a child process: its handlers end it at once when it has no live child.
static CHILD_MODE: AtomicBool = AtomicBool::new(false);

/// Whether this process's handlers are installed.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The word every procscript signal handler bumps.
pub(crate) fn wake_word() -> &'static AtomicU32 {
    &WAKE_WORD
}

/// Bumps the wake word (async-signal-safe: one atomic add). A process has one thread, so a
/// handler runs either before the sleep (the kernel then sees the changed word and returns)
/// or during it (the sleep ends with EINTR): no futex wake is needed.
pub(crate) fn bump_wake_word() {
    WAKE_WORD.fetch_add(1, Ordering::SeqCst);
}

/// The reaper started a child.
pub(crate) fn child_started() {
    LIVE_CHILDREN.fetch_add(1, Ordering::SeqCst);
}

/// The reaper reaped a child (async-signal-safe: the SIGCHLD handler calls it).
pub(crate) fn child_reaped() {
    let _ = LIVE_CHILDREN.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
}

extern "C" fn on_termination(signal: libc::c_int) {
    if CHILD_MODE.load(Ordering::Relaxed) && LIVE_CHILDREN.load(Ordering::SeqCst) == 0 {
        // A child with no child of its own ends at once, by the signal, as it would have
        // without a handler: the default disposition, and the signal sent again (it is
        // blocked in its handler, so it lands as the handler returns).
        // SAFETY: sigaction with a zeroed SIG_DFL action and raise are async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &action, std::ptr::null_mut());
            libc::raise(signal);
        }
        return;
    }
    PENDING.store(signal, Ordering::Relaxed);
    bump_wake_word();
}

/// Installs the SIGINT and SIGTERM handlers in this process (the binary does; a host that
/// wants the same behaviour may too). A signal the process was started ignoring (a
/// background job's SIGINT, `nohup`) stays ignored, as CPython does.
pub(crate) fn install_termination_handlers() {
    let action = SigAction::new(
        SigHandler::Handler(on_termination),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only touches atomics and calls sigaction and raise, which are
        // async-signal-safe.
        if let Ok(previous) = unsafe { sigaction(signal, &action) } {
            if matches!(previous.handler(), SigHandler::SigIgn) {
                // SAFETY: as above; this puts back the ignored disposition.
                let _ = unsafe { sigaction(signal, &previous) };
            }
        }
    }
    INSTALLED.store(true, Ordering::Relaxed);
}

/// In a child process that is about to start a child of its own: takes the termination
/// handlers, in the mode where a process with no live child still ends at once (see the
/// module docs). Once per process; cheap after that.
pub(crate) fn handle_in_child() {
    if INSTALLED.load(Ordering::Relaxed) {
        return;
    }
    CHILD_MODE.store(true, Ordering::Relaxed);
    install_termination_handlers();
}

/// In a new child: SIGINT and SIGTERM back to their defaults (an ignored one stays
/// ignored), nothing pending, no children. Only `sigaction` and atomics, so it is safe
/// before an `exec`.
pub(crate) fn reset_in_child() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: zeroed sigaction structs are valid; sigaction is async-signal-safe and
        // both pointers are valid.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction != libc::SIG_IGN
                && old.sa_sigaction != libc::SIG_DFL
            {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = libc::SIG_DFL;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    }
    PENDING.store(0, Ordering::Relaxed);
    LIVE_CHILDREN.store(0, Ordering::SeqCst);
    INSTALLED.store(false, Ordering::Relaxed);
    CHILD_MODE.store(false, Ordering::Relaxed);
}

/// Keeps SIGCHLD, SIGINT and SIGTERM blocked while alive, so that a check and the action it
/// decides cannot be split by a handler (a wait's check for Ctrl-C and its sleep; the
/// reaper's bookkeeping and the SIGCHLD handler).
pub(crate) struct Block {
    previous: SigSet,
}

impl Block {
    /// Blocks SIGCHLD, SIGINT and SIGTERM until the guard is dropped.
    pub(crate) fn new() -> Self {
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        let previous = set
            .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
            .unwrap_or_else(|_| SigSet::empty());
        Self { previous }
    }

    /// The mask to wait with: the one before the block, with SIGCHLD let through.
    pub(crate) fn waiting_mask(&self) -> SigSet {
        let mut mask = self.previous;
        mask.remove(Signal::SIGCHLD);
        mask
    }
}

impl Default for Block {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let _ = self.previous.thread_set_mask();
    }
}

/// The pending termination signal, if any.
pub(crate) fn pending() -> Option<Signal> {
    match PENDING.load(Ordering::Relaxed) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// Forgets a handled signal (the REPL goes on after Ctrl-C).
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the binary
pub(crate) fn clear() {
    PENDING.store(0, Ordering::Relaxed);
}

/// Fails with [`ErrorKind::Interrupted`] if a termination signal has arrived.
pub(crate) fn check() -> Result<()> {
    match pending() {
        None => Ok(()),
        Some(signal) => Err(Error::new(
            ErrorKind::Interrupted(signal as i32),
            format!("interrupted by {}", signal.as_str()),
        )),
    }
}
