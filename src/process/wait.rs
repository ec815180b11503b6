//! Reaping children and waiting for anything: the one wait primitive of procscript.
//!
//! # Reaping
//!
//! Every child procscript starts gets a *pidfd* (`pidfd_open`, Linux 5.3), registered in one
//! epoll set per process. A readable pidfd names the child that ended, so reaping costs
//! O(1) per exit however many children are alive, and `waitid(P_PIDFD)` waits for exactly
//! that child: a pid procscript did not start is never waited for, so a host's own children
//! keep their exit status. Signals go through the pidfd too (`pidfd_send_signal`), which
//! cannot reach a stranger that reused the pid.
//!
//! The table of children grows as needed: there is no fixed cap, only the system's (pid_max,
//! `ulimit -u`, and descriptors: the soft `RLIMIT_NOFILE` is raised to the hard limit at the
//! first fork, and programs started by `run()` get the original back).
//!
//! Where pidfds are missing (kernels before 5.3, or no descriptor left), a child is
//! registered without one and reaped by `wait4(pid, WNOHANG)` when SIGCHLD says a child
//! ended: O(children without a pidfd) per exit, as before.
//!
//! The SIGCHLD handler does the reaping, so a child is reaped the moment it ends whatever
//! the script is doing (computing, sleeping, blocked in `accept` or a `write`): it asks the
//! epoll set which pidfds are readable, reaps those children with `waitid(P_PIDFD)`, closes
//! their pidfds, and writes what it learnt into a ring that normal code set up for it
//! (grown with the table, with SIGCHLD blocked, never in the handler). Normal code drains
//! the ring into the table at its next look: in every wait, before each fork, when a handle
//! is asked about its child, and between script operations ([`reap_if_signalled`]).
//!
//! The price of a pidfd per child: `fork` copies the descriptor table, about 40 ns per
//! open descriptor on this class of machine, so a process with 1,000 live children pays
//! about 40 µs more per fork (C pays the same for any 1,000 open files). Scanning instead
//! costs a system call per live child per exit; `waitid(P_ALL, WNOWAIT)` walks the kernel's
//! list of children.
//!
//! # Waiting
//!
//! Every blocking wait sleeps until an event, its [`Deadline`] or a signal, and never wakes
//! to look around:
//! - descriptors (sockets, pipes, children) with `ppoll`, which lets SIGINT and SIGTERM in
//!   atomically, so a signal that arrives just before the wait still ends it
//!   ([`wait_ready_or_signal`]);
//! - words in shared memory (locks, queues, events) with `futex_waitv` on two futexes: the
//!   word, and this process's *wake word*, which every procscript signal handler bumps
//!   ([`crate::signal::wake_word`]). A signal that lands between the last check and the
//!   sleep changes the wake word, so the kernel returns at once ([`wait_word`]).
//!   On kernels before 5.16 (no `futex_waitv`) the word wait sleeps in slices of 100 ms.

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use std::sync::Once;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::sys::{self, Deadline};

/// How a child ended: Python's `exitcode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It exited with this code (0 for success, 1 for an uncaught error).
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl Exit {
    /// Decodes a `waitpid` status.
    pub(crate) fn from_status(status: i32) -> Self {
        if libc::WIFSIGNALED(status) {
            Self::Signal(libc::WTERMSIG(status))
        } else {
            Self::Code(libc::WEXITSTATUS(status))
        }
    }

    /// Python's `exitcode`: the code, or minus the signal number.
    pub(crate) fn exitcode(self) -> i64 {
        match self {
            Self::Code(code) => code.into(),
            Self::Signal(sig) => -i64::from(sig),
        }
    }
}

/// A finished child as the reaper saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reaped {
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

impl Reaped {
    /// Records in the trace how child `pid` ended, as the reaper saw it (a no-op when not
    /// tracing).
    pub(crate) fn trace(&self, pid: i32) {
        if crate::trace::enabled() {
            crate::trace::record(&crate::trace::Event::Exit {
                t: self.ended,
                pid,
                code: match self.exit {
                    Some(Exit::Code(code)) => Some(code),
                    _ => None,
                },
                signal: match self.exit {
                    Some(Exit::Signal(sig)) => Some(sig),
                    _ => None,
                },
                user_cpu: self.user_cpu,
                sys_cpu: self.sys_cpu,
                max_rss_kib: self.max_rss_kib,
            });
        }
    }
}

/// Identifies a registered child: its index in the table and that entry's generation, so
/// that an old id never names the child that reused the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SlotId {
    index: u32,
    generation: u32,
}

enum State {
    Free,
    Running,
    Exited(Reaped),
}

struct Entry {
    pid: Pid,
    pidfd: Option<OwnedFd>,
    generation: u32,
    state: State,
}

/// This process's children, seen from normal code (never from the signal handler).
#[derive(Default)]
struct Reaper {
    entries: Vec<Entry>,
    free: Vec<u32>,
    epoll: Option<Epoll>,
    /// Running children registered without a pidfd (reaped by scanning).
    without_pidfd: usize,
    /// Where the handler writes what it reaped: as many places as entries, so that it never
    /// runs out (each child ends once, and is drained before its entry is reused).
    ring: Vec<Completion>,
    /// Children reaped since the last [`take_newly_exited`], so that the owner of their
    /// handles updates only those: O(1) per exit, not a scan of every child.
    exited: Vec<SlotId>,
}

thread_local! {
    static REAPER: RefCell<Reaper> = RefCell::new(Reaper::default());
}

/// What the SIGCHLD handler learnt about one child it reaped.
#[derive(Clone, Copy)]
struct Completion {
    /// The epoll key: the entry's index and its pidfd.
    key: u64,
    /// `si_code` and `si_status` from `waitid`; `si_code` 0 if the status was lost.
    code: i32,
    status: i32,
    usage: libc::rusage,
    ended_ns: u64,
}

const EMPTY_COMPLETION: Completion = Completion {
    key: 0,
    code: 0,
    status: 0,
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    usage: unsafe { std::mem::zeroed() },
    ended_ns: 0,
};

// What the SIGCHLD handler may touch: atomics, and the ring they point at. Normal code
// changes them only with SIGCHLD blocked (see `SigchldBlock`), so the handler never sees
// them half-changed.
static EPOLL_FD: AtomicI32 = AtomicI32::new(-1);
static RING: AtomicPtr<Completion> = AtomicPtr::new(std::ptr::null_mut());
static RING_CAP: AtomicUsize = AtomicUsize::new(0);
static RING_LEN: AtomicUsize = AtomicUsize::new(0);

/// Children reaped by this process, ever (see [`reaped_count`]).
static REAPED: AtomicU64 = AtomicU64::new(0);

/// Set by the SIGCHLD handler: some child ended; the next look drains what it reaped.
static CHILD_EVENT: AtomicBool = AtomicBool::new(false);

static INSTALL: Once = Once::new();

/// The monotonic clock in nanoseconds (clock_gettime is async-signal-safe).
fn monotonic_ns() -> u64 {
    // SAFETY: an all-zero timespec is valid, and clock_gettime only writes to it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Reaps the children whose pidfds the epoll set reports, into the ring. Runs in the
/// SIGCHLD handler (and in normal code with SIGCHLD blocked), so it only makes system calls
/// and touches atomics and the ring: O(1) per ended child, whatever the number alive.
fn reap_ready_into_ring() {
    let epfd = EPOLL_FD.load(Ordering::Acquire);
    if epfd < 0 {
        return;
    }
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 32];
    loop {
        // SAFETY: epoll_wait with a zero timeout on our epoll descriptor writes at most
        // `events.len()` entries into the array.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as i32, 0) };
        if n <= 0 {
            return;
        }
        for event in &events[..n as usize] {
            let key = event.u64;
            let pidfd = key as u32 as i32;
            // SAFETY: all-zero siginfo and rusage are valid values of these C structs.
            let (mut info, mut usage): (libc::siginfo_t, libc::rusage) =
                unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
            // SAFETY: waitid(P_PIDFD) waits only for the child behind this descriptor,
            // which stays open until normal code drains its completion; the raw system
            // call takes rusage as a fifth argument. Both out pointers are valid.
            let result = unsafe {
                libc::syscall(
                    libc::SYS_waitid,
                    libc::P_PIDFD,
                    pidfd,
                    &mut info as *mut libc::siginfo_t,
                    libc::WEXITED | libc::WNOHANG,
                    &mut usage as *mut libc::rusage,
                )
            };
            let (code, status) = if result < 0 {
                // ECHILD: someone else took the status (a host that ignores SIGCHLD).
                if Errno::last() != Errno::ECHILD {
                    continue;
                }
                (0, 0)
            } else {
                // SAFETY: waitid filled in a SIGCHLD siginfo (or left it zeroed: not ended
                // yet), for which si_pid and si_status are the valid union members.
                let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
                if pid == 0 {
                    continue;
                }
                (info.si_code, status)
            };
            crate::signal::child_reaped();
            // Out of the set first (a forked child may hold the same open file, which would
            // keep it in the set after our close), then closed at once, so that a process
            // blocked in `accept` does not pile up descriptors of ended children. The
            // table's copy of the number is forgotten when the completion is drained, and
            // nothing uses it before that without draining first.
            // SAFETY: removing a descriptor from our epoll set and closing our pidfd, which
            // only this code closes (see `Reaper::finish`).
            unsafe {
                libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, pidfd, std::ptr::null_mut());
                libc::close(pidfd);
            }
            let len = RING_LEN.load(Ordering::Relaxed);
            if len < RING_CAP.load(Ordering::Relaxed) {
                // SAFETY: the ring has RING_CAP places and `len` is below it; normal code
                // only reads or replaces the ring with SIGCHLD blocked.
                unsafe {
                    RING.load(Ordering::Relaxed).add(len).write(Completion {
                        key,
                        code,
                        status,
                        usage,
                        ended_ns: monotonic_ns(),
                    });
                }
                RING_LEN.store(len + 1, Ordering::Release);
            }
        }
        if (n as usize) < events.len() {
            return;
        }
    }
}

extern "C" fn on_sigchld(_: libc::c_int) {
    let saved = Errno::last_raw();
    reap_ready_into_ring();
    CHILD_EVENT.store(true, Ordering::Relaxed);
    crate::signal::bump_wake_word();
    Errno::set_raw(saved);
}

/// Installs the SIGCHLD handler once per process. It reaps ended children at once, whatever
/// the script is doing (computing, sleeping, blocked in `accept`), and bumps the wake word
/// so that word waits look again.
fn install_handler() {
    INSTALL.call_once(|| {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler};
        let action = SigAction::new(
            SigHandler::Handler(on_sigchld),
            SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
            SigSet::empty(),
        );
        // SAFETY: the handler only makes system calls (epoll_wait, waitid, epoll_ctl,
        // clock_gettime), writes to the ring normal code set up for it, and touches
        // atomics, all async-signal-safe; it saves and restores errno.
        unsafe { sigaction(Signal::SIGCHLD, &action) }.expect("installing the SIGCHLD handler");
    });
}

/// Keeps SIGCHLD, SIGINT and SIGTERM blocked while alive, so that a check and the action it
/// decides cannot be split by a handler: registering a child and reading what the handler
/// reaped; checking for Ctrl-C before a wait; and, across `fork`, holding a SIGTERM sent to
/// the new child until the child has put back the default disposition, so that
/// `p.terminate()` right after `p.start()` is not lost in the parent's handler.
pub(crate) struct SigchldBlock {
    block: crate::signal::Block,
}

impl SigchldBlock {
    /// Installs the SIGCHLD handler (once), then blocks SIGCHLD, SIGINT and SIGTERM until
    /// the guard is dropped.
    pub(crate) fn new() -> Self {
        install_handler();
        Self {
            block: crate::signal::Block::new(),
        }
    }
}

impl Default for SigchldBlock {
    fn default() -> Self {
        Self::new()
    }
}

/// The soft `RLIMIT_NOFILE` this process started with, before [`raise_nofile`] (0: not
/// raised). Programs that `run()` starts get it back before `exec`.
static ORIGINAL_NOFILE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Raises the soft descriptor limit to the hard one, once: every live child holds a pidfd,
/// and a server with thousands of children must not run out at the soft default of 1024.
fn raise_nofile() {
    static RAISE: Once = Once::new();
    RAISE.call_once(|| {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                ORIGINAL_NOFILE.store(soft, Ordering::Relaxed);
            }
        }
    });
}

/// Puts back the soft descriptor limit this process started with, if procscript raised it:
/// for a program about to be `exec`uted, which may use `select()` and expect the default.
/// Only `setrlimit`, so it is safe in a freshly forked child.
pub(crate) fn restore_nofile() {
    let soft = ORIGINAL_NOFILE.load(Ordering::Relaxed);
    if soft != 0 {
        // SAFETY: a plain struct read by setrlimit; no memory is kept.
        unsafe {
            let mut limit: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur = soft;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
    }
}

impl Reaper {
    /// The epoll set, made on first use; its descriptor is published for the handler.
    fn epoll(&mut self) -> Option<&Epoll> {
        if self.epoll.is_none() {
            self.epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).ok();
            let fd = self.epoll.as_ref().map_or(-1, |e| e.0.as_raw_fd());
            EPOLL_FD.store(fd, Ordering::Release);
        }
        self.epoll.as_ref()
    }

    /// Keeps the ring as large as the table. Call with SIGCHLD blocked.
    fn grow_ring(&mut self) {
        if self.ring.len() >= self.entries.len() {
            return;
        }
        let len = RING_LEN.load(Ordering::Acquire);
        let mut ring = vec![EMPTY_COMPLETION; (self.entries.len() * 2).max(64)];
        ring[..len].copy_from_slice(&self.ring[..len]);
        self.ring = ring;
        RING.store(self.ring.as_mut_ptr(), Ordering::Release);
        RING_CAP.store(self.ring.len(), Ordering::Release);
    }

    /// Moves what the handler reaped into the table. Call with SIGCHLD blocked.
    fn drain(&mut self) {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        let len = RING_LEN.load(Ordering::Acquire);
        for i in 0..len {
            let done = self.ring[i];
            let index = (done.key >> 32) as usize;
            let pidfd = done.key as u32 as i32;
            let Some(entry) = self.entries.get(index) else {
                continue;
            };
            let matches = matches!(entry.state, State::Running)
                && entry
                    .pidfd
                    .as_ref()
                    .is_some_and(|fd| fd.as_raw_fd() == pidfd);
            if !matches {
                continue;
            }
            let exit = match done.code {
                0 => None,
                libc::CLD_EXITED => Some(Exit::Code(done.status)),
                _ => Some(Exit::Signal(done.status)),
            };
            let mut reaped = reaped_from(exit, &done.usage);
            reaped.ended = done.ended_ns as f64 / 1e9;
            self.finish(index, reaped);
        }
        RING_LEN.store(0, Ordering::Release);
    }

    fn finish(&mut self, index: usize, reaped: Reaped) {
        let entry = &mut self.entries[index];
        match entry.pidfd.take() {
            // Already closed by `reap_ready_into_ring`: only forget the number.
            Some(fd) => {
                let _ = fd.into_raw_fd();
            }
            None => self.without_pidfd -= 1,
        }
        entry.state = State::Exited(reaped);
        let id = SlotId {
            index: index as u32,
            generation: entry.generation,
        };
        self.exited.push(id);
        REAPED.fetch_add(1, Ordering::Relaxed);
    }

    /// Reaps what has ended: drains the handler's ring, looks at the epoll set itself (in
    /// case a host replaced our handler), and scans children without a pidfd.
    fn reap(&mut self, _block: &SigchldBlock) {
        reap_ready_into_ring();
        self.drain();
        if self.without_pidfd > 0 {
            let mut reaped = Vec::new();
            for (index, entry) in self.entries.iter().enumerate() {
                if matches!(entry.state, State::Running) && entry.pidfd.is_none() {
                    if let Some(r) = wait4_pid(entry.pid) {
                        reaped.push((index, r));
                    }
                }
            }
            for (index, r) in reaped {
                crate::signal::child_reaped();
                self.finish(index, r);
            }
        }
    }

    fn entry(&self, id: SlotId) -> Option<&Entry> {
        self.entries
            .get(id.index as usize)
            .filter(|e| e.generation == id.generation && !matches!(e.state, State::Free))
    }
}

/// Makes the epoll set of children now rather than at the first fork, so that a process's
/// descriptor count does not change once it starts forking (the runtime calls it).
pub(crate) fn prepare() {
    install_handler();
    let _block = SigchldBlock::new();
    REAPER.with(|reaper| {
        reaper.borrow_mut().epoll();
    });
}

/// Registers a just-forked child. Call with SIGCHLD blocked (the guard proves it), before
/// any reaping could look for it.
pub(crate) fn register(pid: Pid, block: &SigchldBlock) -> Result<SlotId> {
    raise_nofile();
    REAPER.with(|reaper| {
        let reaper = &mut *reaper.borrow_mut();
        // Whatever ended is moved out first, so that no completion waits for a reused entry.
        reaper.reap(block);
        let index = match reaper.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(reaper.entries.len())
                    .map_err(|_| Error::process("too many children"))?;
                reaper.entries.push(Entry {
                    pid,
                    pidfd: None,
                    generation: 0,
                    state: State::Free,
                });
                reaper.grow_ring();
                index
            }
        };
        let pidfd = crate::sys::fd::pidfd_open(pid.as_raw()).ok();
        let watched = match &pidfd {
            Some(fd) => {
                let key = (u64::from(index) << 32) | u64::from(fd.as_raw_fd() as u32);
                reaper.epoll().is_some_and(|epoll| {
                    epoll
                        .add(fd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, key))
                        .is_ok()
                })
            }
            None => false,
        };
        crate::signal::child_started();
        let entry = &mut reaper.entries[index as usize];
        entry.generation = entry.generation.wrapping_add(1);
        entry.pid = pid;
        entry.state = State::Running;
        entry.pidfd = if watched { pidfd } else { None };
        if !watched {
            // No pidfd, or it cannot be watched: reap this one by scanning.
            reaper.without_pidfd += 1;
        }
        Ok(SlotId {
            index,
            generation: entry.generation,
        })
    })
}

fn reaped_from(exit: Option<Exit>, usage: &libc::rusage) -> Reaped {
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Reaped {
        exit,
        user_cpu: secs(usage.ru_utime),
        sys_cpu: secs(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
        ended: monotonic_ns() as f64 / 1e9,
    }
}

/// Reaps `pid` if it has ended, for a child without a pidfd.
fn wait4_pid(pid: Pid) -> Option<Reaped> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on one pid with valid out pointers.
    let reaped = unsafe { libc::wait4(pid.as_raw(), &mut status, libc::WNOHANG, &mut usage) };
    if reaped == pid.as_raw() {
        Some(reaped_from(Some(Exit::from_status(status)), &usage))
    } else if reaped == -1 && Errno::last() == Errno::ECHILD {
        Some(reaped_from(None, &usage))
    } else {
        None
    }
}

/// Reaps every registered child that has ended.
pub(crate) fn reap() {
    reap_blocked(&SigchldBlock::new());
}

fn reap_blocked(block: &SigchldBlock) {
    CHILD_EVENT.store(false, Ordering::Relaxed);
    REAPER.with(|reaper| {
        if let Ok(mut reaper) = reaper.try_borrow_mut() {
            reaper.reap(block);
        }
    });
}

/// Moves what the SIGCHLD handler reaped into the table, if it reaped anything since the
/// last look: one atomic load otherwise, cheap enough to call between script operations.
pub(crate) fn reap_if_signalled() {
    if CHILD_EVENT.load(Ordering::Relaxed) {
        reap();
    }
}

/// The children reaped since the last call (whose exits are waiting in [`take_exit`]).
pub(crate) fn take_newly_exited() -> Vec<SlotId> {
    REAPER.with(|reaper| std::mem::take(&mut reaper.borrow_mut().exited))
}

/// Takes a finished child's exit from its entry and frees the entry; `None` while it runs.
pub(crate) fn take_exit(id: SlotId) -> Option<Reaped> {
    REAPER.with(|reaper| {
        let mut reaper = reaper.borrow_mut();
        let reaped = match reaper.entry(id)?.state {
            State::Exited(reaped) => reaped,
            _ => return None,
        };
        reaper.entries[id.index as usize].state = State::Free;
        reaper.free.push(id.index);
        Some(reaped)
    })
}

/// Whether the child has ended (its status is waiting to be taken), as of the last reaping.
pub(crate) fn has_exited(id: SlotId) -> bool {
    REAPER.with(|reaper| {
        reaper
            .borrow()
            .entry(id)
            .is_some_and(|e| matches!(e.state, State::Exited(_)))
    })
}

/// Sends `signal` to a running child, through its pidfd where it has one, so that it can
/// never reach another process that reused the pid. A no-op once the child was reaped:
/// reaping only happens in procscript's own code, so a child seen running here is at worst
/// a zombie, whose pid is still ours.
pub(crate) fn send_signal(id: SlotId, signal: Signal) -> nix::Result<()> {
    // With SIGCHLD blocked and what the handler reaped drained, a running entry's pidfd is
    // still open: the handler closes pidfds only of children it reaped.
    let block = SigchldBlock::new();
    reap_blocked(&block);
    REAPER.with(|reaper| {
        let reaper = reaper.borrow();
        let Some(entry) = reaper.entry(id) else {
            return Ok(());
        };
        if !matches!(entry.state, State::Running) {
            return Ok(());
        }
        match &entry.pidfd {
            Some(fd) => {
                // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, no siginfo
                // (the kernel fills in one like kill's), and no flags.
                let result = unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        fd.as_raw_fd(),
                        signal as libc::c_int,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    )
                };
                match result {
                    0 => Ok(()),
                    _ => match Errno::last() {
                        Errno::ESRCH => Ok(()),
                        e => Err(e),
                    },
                }
            }
            None => match nix::sys::signal::kill(entry.pid, signal) {
                Ok(()) | Err(Errno::ESRCH) => Ok(()),
                Err(e) => Err(e),
            },
        }
    })
}

/// A new descriptor for a running child's pidfd (close-on-exec), for `p.sentinel`: it
/// becomes readable when the child ends and stays readable after. `ENOSYS` where the child
/// has no pidfd (kernels before 5.3).
pub(crate) fn dup_pidfd(id: SlotId) -> nix::Result<OwnedFd> {
    let block = SigchldBlock::new();
    reap_blocked(&block);
    REAPER.with(|reaper| {
        let reaper = reaper.borrow();
        let entry = reaper.entry(id).ok_or(Errno::ESRCH)?;
        if !matches!(entry.state, State::Running) {
            return Err(Errno::ESRCH);
        }
        let fd = entry.pidfd.as_ref().ok_or(Errno::ENOSYS)?;
        // With SIGCHLD blocked and the ring drained, a running entry's pidfd is open.
        fd.try_clone()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)))
    })
}

/// The raw descriptor of the epoll set of children, if there is one, for a wait to watch.
fn reaper_fd() -> Option<libc::c_int> {
    REAPER.with(|reaper| reaper.borrow().epoll.as_ref().map(|e| e.0.as_raw_fd()))
}

/// Waits until `done` holds or `deadline` passes, reaping children meanwhile; returns
/// whether `done` held. A termination signal does not end it (for cleaning up).
pub(crate) fn wait_until(deadline: Deadline, done: impl FnMut() -> bool) -> bool {
    wait_inner(&mut [], deadline, false, done, "wait").unwrap_or(false)
}

/// Like [`wait_until`], but gives up with [`crate::ErrorKind::Interrupted`] when Ctrl-C or
/// SIGTERM arrives (see [`crate::signal`]): the waits a script makes.
pub(crate) fn wait_until_or_signal(deadline: Deadline, done: impl FnMut() -> bool) -> Result<bool> {
    wait_inner(&mut [], deadline, true, done, "wait")
}

/// Waits until one of `fds` is ready (true) or `deadline` passes (false), reaping children
/// meanwhile; Ctrl-C or SIGTERM end the wait with [`crate::ErrorKind::Interrupted`]. The
/// `revents` of `fds` say which are ready.
pub(crate) fn wait_ready_or_signal(
    fds: &mut [libc::pollfd],
    deadline: Deadline,
    what: &str,
) -> Result<bool> {
    wait_inner(fds, deadline, true, || false, what)
}

/// Waits until one of `fds` is ready, `done` holds, or `deadline` passes (false); Ctrl-C
/// or SIGTERM end the wait with [`crate::ErrorKind::Interrupted`]. With
/// [`reaped_count`], `done` can watch for any child ending.
pub(crate) fn wait_ready_or(
    fds: &mut [libc::pollfd],
    deadline: Deadline,
    what: &str,
    done: impl FnMut() -> bool,
) -> Result<bool> {
    wait_inner(fds, deadline, true, done, what)
}

/// How many children this process has reaped so far: a wait can end when it changes.
pub(crate) fn reaped_count() -> u64 {
    REAPED.load(Ordering::Relaxed)
}

/// Waits until `fd` is ready for `events` (true) or `deadline` passes (false): the common
/// case of [`wait_ready_or_signal`]. Error conditions count as ready.
pub(crate) fn wait_fd(
    fd: std::os::fd::BorrowedFd<'_>,
    events: libc::c_short,
    deadline: Deadline,
    what: &str,
) -> Result<bool> {
    let mut fds = [libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    }];
    wait_ready_or_signal(&mut fds, deadline, what)
}

/// Sleeps for `duration`, reaping children meanwhile; Ctrl-C or SIGTERM cut it short.
pub(crate) fn sleep(duration: Duration) -> Result<()> {
    wait_until_or_signal(Deadline::after(Some(duration)), || false).map(|_| ())
}

/// The one descriptor wait of a process with children: [`sys::wait::ready`] that also
/// wakes when a child ends and reaps it, with SIGCHLD, SIGINT and SIGTERM blocked between
/// sleeps.
fn wait_inner(
    fds: &mut [libc::pollfd],
    deadline: Deadline,
    interruptible: bool,
    mut done: impl FnMut() -> bool,
    what: &str,
) -> Result<bool> {
    let block = SigchldBlock::new();
    let poll = sys::wait::Poll {
        fds,
        also: reaper_fd(),
        deadline,
        interruptible,
        what,
    };
    sys::wait::ready(&block.block, poll, || {
        reap_blocked(&block);
        done()
    })
}

/// Sleeps while `word` holds `expected`, until woken, the deadline, or a signal
/// ([`sys::wait::word`]), reaping children that end meanwhile.
pub(crate) fn wait_word(word: &AtomicU32, expected: u32, deadline: Deadline) -> Result<bool> {
    sys::wait::word(word, expected, deadline, reap_if_signalled)
}

/// Forgets the parent's children in a newly forked child: they are its siblings now.
///
/// The table and the epoll set are the parent's: the child must not reap from them or
/// change the shared epoll set, so it drops its view of them without closing anything
/// (closing thousands of inherited descriptors would cost every fork; they are
/// close-on-exec, and go when the child ends).
pub(crate) fn reset_in_child() {
    // Called with SIGCHLD blocked (across the fork), so the handler sees no half-reset.
    EPOLL_FD.store(-1, Ordering::Release);
    RING_CAP.store(0, Ordering::Release);
    RING_LEN.store(0, Ordering::Release);
    RING.store(std::ptr::null_mut(), Ordering::Release);
    REAPER.with(|reaper| {
        let mut old = std::mem::take(&mut *reaper.borrow_mut());
        // The epoll set is the parent's; closing our reference leaves it intact for the
        // parent. The child makes its own at its first fork.
        drop(old.epoll.take());
        std::mem::forget(old);
    });
    CHILD_EVENT.store(false, Ordering::Relaxed);
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
