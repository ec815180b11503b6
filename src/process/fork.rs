//! The one place procscript forks, and the one setup every new child makes.
//!
//! # Fork safety
//!
//! After `fork` only the calling thread exists in the child. Had another thread held a lock
//! (the allocator's, stdout's, a host's mutex), the child would wait for it forever; so
//! procscript refuses to fork while the process has other threads, and says why. The child
//! runs its body, flushes, and ends with `_exit`: it never returns into the caller's frames,
//! never runs the parent's `atexit` handlers or destructors, and a panic in it is caught
//! before it could unwind into the parent's code.
//!
//! # One child setup
//!
//! Every kind of child (a script process, `spawn`, a pool worker, a program started by
//! `Process(#{ command })`, `run` or `pipeline`) is set up by one [`ChildSetup`], built in the
//! parent before the fork and applied first thing in the child, with SIGCHLD, SIGINT and
//! SIGTERM still blocked. No other code sets the parent-death signal, resource limits, or
//! the signal dispositions of a new child.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};

use super::wait::{self, SigchldBlock, SlotId};
use super::{Limits, Process};
use crate::error::{Error, Result};
use crate::output::{self, Stream};

/// Exit code of a child whose body panicked (Rust's own code for a panic).
pub(crate) const PANIC_EXIT_CODE: i32 = 101;

/// Number of threads in this process, from the link count of `/proc/self/task`
/// (one entry per thread, plus `.` and `..`). One `stat`, cheap enough to do per fork.
pub(crate) fn thread_count() -> Option<u64> {
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

/// What a new child becomes.
pub(crate) enum Role {
    /// A process that runs script code. It takes its own identity (name, pid, no children
    /// of its parent's), a random seed of its own, no progress bar, and `/dev/null` for
    /// standard input, as CPython gives its children.
    Script {
        /// Its handle: the child takes its identity from it (in the child, so that the
        /// parent allocates and frees nothing for it).
        process: Process,
        /// Drawn from the parent's generator before the fork and mixed with the child's
        /// pid, so that no two processes share a sequence.
        seed: u64,
    },
    /// A process about to replace itself with a program: it gets back the descriptor limit
    /// procscript started with; its streams are put in place by the exec code.
    Program,
}

/// Everything a new child sets up before it runs anything else (see the module docs).
pub(crate) struct ChildSetup {
    pub(crate) role: Role,
    /// The child's name, for messages.
    name: String,
    /// The process forking it.
    parent: Pid,
    /// The signal the kernel sends the child when its parent dies (`PR_SET_PDEATHSIG`).
    die_with_parent: Option<Signal>,
    limits: Limits,
    /// Descriptors the child must not keep (the parent's ends of its pipes and sockets).
    close: Vec<RawFd>,
}

impl ChildSetup {
    /// The setup of the script process of the handle `process`.
    pub(crate) fn script(process: &Process) -> Self {
        Self {
            name: String::new(),
            parent: super::my_pid(),
            die_with_parent: None,
            limits: Limits::default(),
            close: Vec::new(),
            role: Role::Script {
                process: process.clone(),
                seed: fastrand::u64(..),
            },
        }
    }

    /// The child's name, for messages.
    fn name(&self) -> String {
        match &self.role {
            Role::Script { process, .. } => process.name(),
            Role::Program => self.name.clone(),
        }
    }

    /// The setup of a child that will run a program.
    pub(crate) fn program(name: impl Into<String>) -> Self {
        Self {
            role: Role::Program,
            name: name.into(),
            parent: super::my_pid(),
            die_with_parent: None,
            limits: Limits::default(),
            close: Vec::new(),
        }
    }

    /// The child gets `signal` when its parent dies, even by SIGKILL (`None`: it lives on).
    pub(crate) fn die_with_parent(mut self, signal: Option<Signal>) -> Self {
        self.die_with_parent = signal;
        self
    }

    /// Resource limits, applied with `setrlimit`.
    pub(crate) fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Descriptors the child closes first: the parent's ends of what it shares with the
    /// child, so that the child sees end of file when the parent goes.
    pub(crate) fn close(mut self, fds: impl IntoIterator<Item = RawFd>) -> Self {
        self.close.extend(fds);
        self
    }

    /// Applies the setup in the new child. Runs with SIGCHLD, SIGINT and SIGTERM blocked.
    fn apply(self) {
        let is_script = matches!(self.role, Role::Script { .. });
        if is_script {
            // The table and epoll set are the parent's: forget them. A program child execs
            // or `_exit`s without reaping, so it skips this.
            wait::reset_in_child();
        }
        for fd in &self.close {
            // SAFETY: the parent's copies of these descriptors; nothing in the child uses
            // or closes them again.
            unsafe { libc::close(*fd) };
        }
        close_for_every_child();
        crate::signal::reset_in_child();
        if let Some(signal) = self.die_with_parent {
            // Survives exec: a program dies with us as a script child does.
            let _ = nix::sys::prctl::set_pdeathsig(signal);
            if nix::unistd::getppid() != self.parent {
                // The parent died before the request: there is nothing left to watch.
                exit_now(1);
            }
        }
        if let Err(message) = self.limits.apply() {
            let text = format!("Process {}:\nerror: {message}", self.name());
            let _ = output::write_line(Stream::Stderr, &text);
            exit_now(1);
        }
        match self.role {
            Role::Script { process, seed } => {
                let pid = nix::unistd::getpid();
                fastrand::seed(seed ^ u64::from(pid.as_raw() as u32).rotate_left(32));
                super::become_child(process, pid);
                crate::progress::forget_in_child();
                stdin_to_null();
            }
            Role::Program => {
                // The program gets the limits procscript started with, not the raised ones.
                wait::restore_nofile();
                restore_stack_limit();
            }
        }
    }
}

/// How many descriptors [`close_in_children`] can track.
const MAX_CLOSED_IN_CHILDREN: usize = 256;

/// Descriptors every new child closes first, -1 in unused places. Changed by normal code
/// only; a child reads its own copy as it starts.
static CLOSED_IN_CHILDREN: [AtomicI32; MAX_CLOSED_IN_CHILDREN] =
    [const { AtomicI32::new(-1) }; MAX_CLOSED_IN_CHILDREN];

/// Has every child forked from now on close `fd` before it runs anything: a connection of
/// this process that no child may share (a manager's), so that its other end sees it close
/// exactly when this process ends. Returns the place it took, `None` when all are taken
/// (children then inherit it, as with any descriptor).
pub(crate) fn close_in_children(fd: RawFd) -> Option<usize> {
    CLOSED_IN_CHILDREN.iter().position(|place| {
        place
            .compare_exchange(-1, fd, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    })
}

/// Stops closing the descriptor at `place` in new children (this process closed it).
pub(crate) fn stop_closing_in_children(place: usize) {
    CLOSED_IN_CHILDREN[place].store(-1, Ordering::Relaxed);
}

/// In a new child: closes what [`close_in_children`] named, and forgets it.
fn close_for_every_child() {
    for place in &CLOSED_IN_CHILDREN {
        let fd = place.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: a descriptor of the parent that the child inherited and must not keep;
            // the child's copy of its owner knows not to close it again (it checks its pid).
            unsafe { libc::close(fd) };
        }
    }
}

/// `/dev/null`, opened once (close-on-exec) so that each child only `dup2`s it onto its
/// standard input.
static DEV_NULL: OnceLock<Option<OwnedFd>> = OnceLock::new();

/// Opens `/dev/null` for children's stdin now, so that a process's descriptor count does not
/// change once it starts forking (the runtime calls it, as it does [`wait::prepare`]).
pub(crate) fn prepare() {
    DEV_NULL.get_or_init(|| std::fs::File::open("/dev/null").ok().map(OwnedFd::from));
}

/// A child reads nothing from the terminal its parent reads (CPython does the same), so that
/// `input()` in the parent is not raced by children.
fn stdin_to_null() {
    if let Some(Some(null)) = DEV_NULL.get() {
        // SAFETY: both descriptors are valid; dup2 onto 0 replaces stdin atomically, and
        // the copy on 0 is not close-on-exec.
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
}

/// Forks; the child applies `setup`, runs `child_body`, and exits with the code it returns.
/// Returns the child's pid and reaper slot in the parent, never in the child.
///
/// A failed fork is a `ProcessError` carrying the errno (11, `EAGAIN`, when the process or
/// user is out of processes).
pub(crate) fn fork_and_run(
    setup: ChildSetup,
    child_body: impl FnOnce() -> i32,
) -> Result<(Pid, SlotId)> {
    check_single_threaded()?;
    super::hugetext::prepare_for_fork();
    if matches!(setup.role, Role::Script { .. }) {
        prepare();
    }
    if super::is_child_process() {
        // A child that starts children takes the termination handlers, so that SIGTERM
        // ends its children before it (see `crate::signal`).
        crate::signal::handle_in_child();
    }
    output::flush_std_streams();
    let block = SigchldBlock::new();
    // SAFETY: the process is single-threaded (checked just above), so the child inherits no
    // lock held by another thread; it runs `child_body` and ends in `_exit` without
    // returning into the caller.
    match unsafe { nix::unistd::fork() } {
        Err(errno) => Err(Error::process(format!(
            "cannot start `{}`: fork failed: {}",
            setup.name(),
            errno.desc()
        ))
        .with_errno(errno as i32)),
        Ok(ForkResult::Parent { child }) => {
            let slot = wait::register(child, &block)?;
            drop(block);
            Ok((child, slot))
        }
        Ok(ForkResult::Child) => {
            setup.apply();
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
pub(crate) fn exit_now(code: i32) -> ! {
    output::flush_std_streams();
    // SAFETY: `_exit` is always safe to call; skipping destructors and atexit handlers is the
    // point, since they belong to the parent's copy of the program.
    unsafe { libc::_exit(code) }
}

/// Ends this process by `signal` as if it had not been caught: the default disposition,
/// then the signal sent to itself and let through. Its parent sees `-N`, as for any process
/// that signal ended.
pub(crate) fn die_by(signal: Signal) -> ! {
    output::flush_std_streams();
    crate::signal::reset_in_child();
    let _ = nix::sys::signal::raise(signal);
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(signal);
    let _ = set.thread_unblock();
    // A signal that ends the process by default has ended it by now.
    exit_now(128 + signal as i32)
}

/// The stack the `procscript` binary gives the script's thread: Rhai clones, compares and
/// drops nested arrays and maps by recursion, a few hundred bytes to a few KiB of stack per
/// level, so a value nested some 10,000 deep overflowed the usual 8 MiB and aborted.
pub(crate) const STACK_LIMIT: u64 = 1 << 30;

/// The soft stack limit before [`raise_stack_limit`], for programs a script runs; 0 when
/// unchanged.
static ORIGINAL_STACK_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Lets the main thread's stack grow to [`STACK_LIMIT`] (or the hard limit, if lower) by
/// raising `RLIMIT_STACK`; only what is used is ever allocated, and forked children inherit
/// it. Programs started by `run`, `pipeline` or `Process(#{ command })` get the original
/// limit back before `exec` (see [`restore_stack_limit`]), since glibc sizes every thread's
/// stack by it. Call it once, before any script runs and before other threads exist.
pub(crate) fn raise_stack_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_STACK) else {
        return;
    };
    let wanted = STACK_LIMIT.min(hard);
    if soft == RLIM_INFINITY || soft >= wanted {
        return;
    }
    if setrlimit(Resource::RLIMIT_STACK, wanted, hard).is_ok() {
        ORIGINAL_STACK_LIMIT.store(soft, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Puts back the stack limit [`raise_stack_limit`] raised. Async-signal-safe: for a forked
/// child just before it `exec`s a program.
pub(crate) fn restore_stack_limit() {
    let soft = ORIGINAL_STACK_LIMIT.load(std::sync::atomic::Ordering::Relaxed);
    if soft == 0 {
        return;
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit are async-signal-safe and only read or write `limit`,
    // a valid local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_STACK, &mut limit) == 0 {
            limit.rlim_cur = soft;
            libc::setrlimit(libc::RLIMIT_STACK, &limit);
        }
    }
}
