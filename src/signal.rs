//! Ctrl-C and SIGTERM for the process that runs a script.
//!
//! The handlers only record the signal. The script then stops at its next check: Rhai's
//! progress hook between operations, and procscript's own waits (`sleep`, `join`, ...), which
//! wait with `ppoll` and so wake on the signal. The runner then passes the signal on to the
//! children, gives them a grace period, kills what is left, reaps everything, and exits
//! with 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM), as a shell reports it.
//!
//! Children do not keep these handlers: a child ends at once on SIGINT or SIGTERM, so
//! `p.terminate()` gives `exitcode == -15` as in Python.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

use crate::process::wait::Deadline;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::error::{Error, ErrorKind, Result};

/// The termination signal received and not yet acted on, or 0.
static PENDING: AtomicI32 = AtomicI32::new(0);

/// How long children get to end after the signal is passed on, before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// Bumped by every procscript signal handler (SIGINT, SIGTERM, SIGCHLD), so that a futex
/// wait that includes it wakes at once, even for a signal that landed just before the
/// sleep began (see [`crate::process::wait::wait_word`]). Private to this process.
static WAKE_WORD: AtomicU32 = AtomicU32::new(0);

/// The word every procscript signal handler bumps.
pub fn wake_word() -> &'static AtomicU32 {
    &WAKE_WORD
}

/// Bumps the wake word (async-signal-safe: one atomic add). A process has one thread, so a
/// handler runs either before the sleep (the kernel then sees the changed word and returns)
/// or during it (the sleep ends with EINTR): no futex wake is needed.
pub fn bump_wake_word() {
    WAKE_WORD.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn on_termination(signal: libc::c_int) {
    PENDING.store(signal, Ordering::Relaxed);
    bump_wake_word();
}

/// Installs the SIGINT and SIGTERM handlers in this process (the binary does; a host that
/// wants the same behaviour may too). A signal the process was started ignoring (a
/// background job's SIGINT, `nohup`) stays ignored, as CPython does.
pub fn install_termination_handlers() {
    let action = SigAction::new(
        SigHandler::Handler(on_termination),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if let Ok(previous) = unsafe { sigaction(signal, &action) } {
            if matches!(previous.handler(), SigHandler::SigIgn) {
                // SAFETY: as above; this puts back the ignored disposition.
                let _ = unsafe { sigaction(signal, &previous) };
            }
        }
    }
}

/// Puts SIGINT and SIGTERM back to their defaults (in a new child).
pub fn reset_in_child() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: restoring the default disposition has no preconditions.
        let _ = unsafe { sigaction(signal, &default) };
    }
    PENDING.store(0, Ordering::Relaxed);
}

/// The pending termination signal, if any.
pub fn pending() -> Option<Signal> {
    match PENDING.load(Ordering::Relaxed) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// Forgets a handled signal (the REPL goes on after Ctrl-C).
pub fn clear() {
    PENDING.store(0, Ordering::Relaxed);
}

/// Fails with [`ErrorKind::Interrupted`] if a termination signal has arrived.
pub fn check() -> Result<()> {
    match pending() {
        None => Ok(()),
        Some(signal) => Err(Error::new(
            ErrorKind::Interrupted,
            format!("interrupted by {}", signal.as_str()),
        )
        .with_errno(128 + signal as i32)),
    }
}

/// Ends the children after the script was stopped by `signal`: pass it on, wait up to
/// [`GRACE`], then SIGKILL what is left, and reap everything.
pub fn end_children(signal: Signal) {
    crate::process::signal_children(signal);
    let deadline = Deadline::after(Some(GRACE));
    let all_ended =
        crate::process::wait::wait_until(deadline, || crate::process::active_children().is_empty());
    if !all_ended {
        crate::process::signal_children(Signal::SIGKILL);
        // SIGKILL cannot be caught: this wait ends, and reaps them all.
        crate::process::wait::wait_until(Deadline::NEVER, || {
            crate::process::active_children().is_empty()
        });
    }
}
