//! Reaping: every child procscript starts is waited for as soon as it ends.
//!
//! A SIGCHLD handler reaps finished children at once, whatever the script is doing (computing,
//! sleeping, blocked in `accept`), so no `<defunct>` entry outlives its child. The handler
//! only waits for pids procscript registered, never `waitpid(-1)`, so a host's own children
//! (from `std::process::Command`, say) keep their exit status for their owner.
//!
//! The handler can only touch async-signal-safe state, so the exit statuses go into a fixed
//! table of atomic slots. The script side moves them into process handles at its next look
//! ([`super::collect`]), and frees the slot.
//!
//! Ordering: a child is registered with SIGCHLD blocked (see [`SigchldBlock`]), so the
//! handler can never miss a child that exits before its slot is filled in.

use std::cell::RefCell;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// How many children may be alive (started and not yet collected) at once in one process.
pub const MAX_CHILDREN: usize = 4096;

const FREE: u8 = 0;
const RUNNING: u8 = 1;
const EXITED: u8 = 2;

/// One child's entry: written by the script side when the child starts, completed by the
/// SIGCHLD handler when it ends.
struct Slot {
    pid: AtomicI32,
    status: AtomicI32,
    state: AtomicU8,
    /// What `wait4` reported, for traces: CPU microseconds, peak memory, end time.
    user_us: AtomicU64,
    sys_us: AtomicU64,
    max_rss_kib: AtomicI64,
    ended_ns: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // each array element gets its own copy
const EMPTY_SLOT: Slot = Slot {
    pid: AtomicI32::new(0),
    status: AtomicI32::new(0),
    state: AtomicU8::new(FREE),
    user_us: AtomicU64::new(0),
    sys_us: AtomicU64::new(0),
    max_rss_kib: AtomicI64::new(0),
    ended_ns: AtomicU64::new(0),
};

static SLOTS: [Slot; MAX_CHILDREN] = [EMPTY_SLOT; MAX_CHILDREN];
/// Slots at and past this index hold nothing of this process (a child sets it to 0 rather
/// than clearing the table it inherited, which would copy every page of it).
static USED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Slots below `USED` that are free again, for reuse.
    static FREE_SLOTS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

static INSTALL: Once = Once::new();

/// How a child ended: Python's `exitcode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code (0 for success, 1 for an uncaught error).
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl Exit {
    /// Decodes a `waitpid` status.
    pub fn from_status(status: i32) -> Self {
        if libc::WIFSIGNALED(status) {
            Self::Signal(libc::WTERMSIG(status))
        } else {
            Self::Code(libc::WEXITSTATUS(status))
        }
    }

    /// Python's `exitcode`: the code, or minus the signal number.
    pub fn exitcode(self) -> i64 {
        match self {
            Self::Code(code) => code.into(),
            Self::Signal(sig) => -i64::from(sig),
        }
    }
}

/// Identifies a registered child's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotId(usize);

fn reap_registered() {
    let used = USED.load(Ordering::Acquire).min(MAX_CHILDREN);
    for slot in &SLOTS[..used] {
        if slot.state.load(Ordering::Acquire) != RUNNING {
            continue;
        }
        let pid = slot.pid.load(Ordering::Relaxed);
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 is waitpid with resource usage (async-signal-safe like it), and both
        // out pointers are valid.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            let micros = |tv: libc::timeval| (tv.tv_sec as u64) * 1_000_000 + tv.tv_usec as u64;
            slot.user_us
                .store(micros(usage.ru_utime), Ordering::Relaxed);
            slot.sys_us.store(micros(usage.ru_stime), Ordering::Relaxed);
            slot.max_rss_kib.store(usage.ru_maxrss, Ordering::Relaxed);
            slot.ended_ns.store(monotonic_ns(), Ordering::Relaxed);
            slot.status.store(status, Ordering::Relaxed);
            slot.state.store(EXITED, Ordering::Release);
        } else if reaped == -1 && Errno::last() == Errno::ECHILD {
            // Someone else reaped it (a host that set SIGCHLD to SIG_IGN, or waited on -1):
            // the status is lost, but the child is gone and must not look alive forever.
            slot.status.store(LOST_STATUS, Ordering::Relaxed);
            slot.state.store(EXITED, Ordering::Release);
        }
    }
}

/// The monotonic clock in nanoseconds (clock_gettime is async-signal-safe).
fn monotonic_ns() -> u64 {
    // SAFETY: an all-zero timespec is valid, and clock_gettime only writes to it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Marks a status another waiter took from us.
const LOST_STATUS: i32 = i32::MIN;

extern "C" fn on_sigchld(_: libc::c_int) {
    let saved = Errno::last_raw();
    reap_registered();
    Errno::set_raw(saved);
}

/// Installs the SIGCHLD handler once per process.
fn install_handler() {
    INSTALL.call_once(|| {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler};
        let action = SigAction::new(
            SigHandler::Handler(on_sigchld),
            SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
            SigSet::empty(),
        );
        // SAFETY: the handler only calls waitpid and touches atomics, all async-signal-safe,
        // and it saves and restores errno.
        unsafe { sigaction(Signal::SIGCHLD, &action) }.expect("installing the SIGCHLD handler");
    });
}

/// Keeps SIGCHLD (and SIGINT and SIGTERM) blocked while alive, so that a check and the
/// action it decides cannot be split by a handler: registering a child; sending a signal to
/// a pid that could otherwise be reaped and reused in between; checking for Ctrl-C before a
/// wait. Across `fork` it also holds a SIGTERM sent to the new child until the child has
/// put back the default disposition, so that `p.terminate()` right after `p.start()` is
/// not lost in the parent's handler.
pub struct SigchldBlock {
    previous: SigSet,
}

impl SigchldBlock {
    /// Blocks SIGCHLD, SIGINT and SIGTERM until the guard is dropped.
    pub fn new() -> Self {
        install_handler();
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
    fn waiting_mask(&self) -> SigSet {
        let mut mask = self.previous;
        mask.remove(Signal::SIGCHLD);
        mask
    }
}

impl Default for SigchldBlock {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SigchldBlock {
    fn drop(&mut self) {
        let _ = self.previous.thread_set_mask();
    }
}

/// Registers a just-forked child. Call with SIGCHLD blocked.
pub fn register(pid: Pid, _block: &SigchldBlock) -> Result<SlotId> {
    let index = match FREE_SLOTS.with(|free| free.borrow_mut().pop()) {
        Some(index) => index,
        None => {
            let index = USED.load(Ordering::Relaxed);
            if index >= MAX_CHILDREN {
                return Err(Error::process(format!(
                    "too many live children ({MAX_CHILDREN}): join some before starting more"
                )));
            }
            index
        }
    };
    let slot = &SLOTS[index];
    slot.pid.store(pid.as_raw(), Ordering::Relaxed);
    slot.status.store(0, Ordering::Relaxed);
    slot.state.store(RUNNING, Ordering::Release);
    if index == USED.load(Ordering::Relaxed) {
        USED.store(index + 1, Ordering::Release);
    }
    Ok(SlotId(index))
}

/// Room left for a child: checked before forking, so a full table never strands a child.
pub fn has_room() -> bool {
    USED.load(Ordering::Relaxed) < MAX_CHILDREN || FREE_SLOTS.with(|free| !free.borrow().is_empty())
}

/// A finished child as the reaper saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reaped {
    /// How it ended; `None` if someone else took its status.
    pub exit: Option<Exit>,
    /// User CPU seconds.
    pub user_cpu: f64,
    /// System CPU seconds.
    pub sys_cpu: f64,
    /// Peak resident memory in KiB.
    pub max_rss_kib: i64,
    /// When it was reaped, in seconds on the monotonic clock.
    pub ended: f64,
}

/// Takes a finished child's exit from its slot and frees the slot; `None` while it runs.
pub fn take_exit(id: SlotId) -> Option<Reaped> {
    let slot = &SLOTS[id.0];
    if slot.state.load(Ordering::Acquire) != EXITED {
        return None;
    }
    let status = slot.status.load(Ordering::Relaxed);
    let reaped = Reaped {
        exit: (status != LOST_STATUS).then(|| Exit::from_status(status)),
        user_cpu: slot.user_us.load(Ordering::Relaxed) as f64 / 1e6,
        sys_cpu: slot.sys_us.load(Ordering::Relaxed) as f64 / 1e6,
        max_rss_kib: slot.max_rss_kib.load(Ordering::Relaxed),
        ended: slot.ended_ns.load(Ordering::Relaxed) as f64 / 1e9,
    };
    slot.state.store(FREE, Ordering::Release);
    FREE_SLOTS.with(|free| free.borrow_mut().push(id.0));
    Some(reaped)
}

/// Whether the child in this slot has ended (its status is waiting to be taken).
pub fn has_exited(id: SlotId) -> bool {
    SLOTS[id.0].state.load(Ordering::Acquire) == EXITED
}

/// Waits until `done` holds or `deadline` passes, reaping children meanwhile.
///
/// `done` is checked with SIGCHLD blocked, and the wait lets SIGCHLD in atomically
/// (`ppoll` with the unblocked mask), so an exit between the check and the wait still
/// wakes it. Returns whether `done` held.
pub fn wait_until(deadline: Option<Instant>, done: impl FnMut() -> bool) -> bool {
    wait_inner(&mut [], deadline, false, done, "wait").unwrap_or(false)
}

/// Like [`wait_until`], but gives up with [`crate::ErrorKind::Interrupted`] when Ctrl-C or
/// SIGTERM arrives (see [`crate::signal`]): the waits a script makes.
pub fn wait_until_or_signal(deadline: Option<Instant>, done: impl FnMut() -> bool) -> Result<bool> {
    wait_inner(&mut [], deadline, true, done, "wait")
}

/// Waits until one of `fds` is ready (true) or `deadline` passes (false), reaping children
/// meanwhile; Ctrl-C or SIGTERM end the wait with [`crate::ErrorKind::Interrupted`].
pub fn wait_ready_or_signal(
    fds: &mut [libc::pollfd],
    deadline: Option<Instant>,
    what: &str,
) -> Result<bool> {
    wait_inner(fds, deadline, true, || false, what)
}

/// Sleeps for `duration`, reaping children meanwhile; Ctrl-C or SIGTERM cut it short.
pub fn sleep(duration: std::time::Duration) -> Result<()> {
    let deadline = Instant::now().checked_add(duration);
    wait_until_or_signal(deadline, || false).map(|_| ())
}

/// The one wait loop: checks `done` (and, if `interruptible`, a termination signal) with
/// SIGCHLD, SIGINT and SIGTERM blocked, then waits in `ppoll` for `fds`, letting the
/// signals in atomically, so none can slip between the check and the wait.
fn wait_inner(
    fds: &mut [libc::pollfd],
    deadline: Option<Instant>,
    interruptible: bool,
    mut done: impl FnMut() -> bool,
    what: &str,
) -> Result<bool> {
    let block = SigchldBlock::new();
    let mask = block.waiting_mask();
    loop {
        // Reap here too, in case a host replaced our SIGCHLD handler.
        reap_registered();
        if done() {
            return Ok(true);
        }
        if interruptible {
            crate::signal::check()?;
        }
        let left = match deadline {
            None => None,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                Some(left)
            }
        };
        // Wake at least once a second even if no signal arrives, as a backstop.
        let second = std::time::Duration::from_secs(1);
        let timeout =
            nix::sys::time::TimeSpec::from_duration(left.map_or(second, |l| l.min(second)));
        // SAFETY: `fds` is a valid array of its length, and the timeout and mask point to
        // live values for the call.
        let ready = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                timeout.as_ref(),
                mask.as_ref(),
            )
        };
        match ready {
            n if n > 0 => return Ok(true),
            0 => {}
            _ => match Errno::last() {
                Errno::EINTR => {}
                e => return Err(Error::os(what, e)),
            },
        }
    }
}

/// Forgets the parent's children in a newly forked child: they are its siblings now.
///
/// Only resets counters, so that the child does not copy pages of the inherited table.
pub fn reset_in_child() {
    USED.store(0, Ordering::Release);
    FREE_SLOTS.with(|free| std::mem::forget(free.take()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_decodes_like_python() {
        assert_eq!(Exit::from_status(3 << 8).exitcode(), 3);
        assert_eq!(Exit::from_status(0).exitcode(), 0);
        assert_eq!(Exit::from_status(libc::SIGKILL).exitcode(), -9);
        assert_eq!(Exit::from_status(libc::SIGTERM).exitcode(), -15);
    }
}
