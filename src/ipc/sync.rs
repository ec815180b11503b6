//! Locks, semaphores, events, conditions and barriers shared by processes.
//!
//! Each lives in its own [`Shm`] page, made before `fork`, and blocks on futexes. A lock's
//! state word holds the pid of the process that holds it (0 when free) and a "waiters" bit,
//! so that a waiter can tell when the holder has died:
//!
//! - **Dead holder.** A process waiting for a [`Lock`] or [`RLock`] checks every
//!   [`LIVENESS_CHECK`] whether the holder still exists (`kill(pid, 0)`, and not a zombie).
//!   If it died without releasing, the lock is freed and *that* waiter's `acquire` fails with
//!   a catchable `ProcessError` naming the dead pid; it may catch the error and acquire again.
//!   Other waiters just get the lock. So nobody hangs, and someone finds out.
//! - **Timeouts** always work, dead holder or not.
//! - Semaphores, events, conditions and barriers have no owner: a process that dies without
//!   releasing or arriving leaves them as they are, and only timeouts help.

use std::rc::Rc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::shm::{futex_wake, Shm};
use crate::error::{Error, ErrorKind, Result};
use crate::process::my_pid;

/// How often a waiter checks that a lock's holder is still alive.
pub const LIVENESS_CHECK: Duration = Duration::from_millis(50);

const WAITERS: u32 = 1 << 31;

/// How many times a contended acquire checks the word before sleeping.
const SPINS: u32 = 100;

use crate::process::wait::wait_word;
pub use crate::process::wait::Deadline;

fn me() -> u32 {
    my_pid().as_raw() as u32
}

/// Whether process `pid` exists and has not ended (a zombie counts as ended).
pub fn pid_alive(pid: u32) -> bool {
    match nix::sys::signal::kill(Pid::from_raw(pid as i32), None) {
        Err(nix::errno::Errno::ESRCH) => false,
        _ => !is_zombie(pid),
    }
}

fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        == Some('Z')
}

/// What a waiter does when it finds the holder of a lock dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDeadHolder {
    /// Free the lock and fail this acquire (script-visible locks).
    Fail,
    /// Take the lock over silently (internal locks whose data the caller checks itself).
    TakeOver,
}

/// How an acquire ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The caller holds the lock.
    Yes,
    /// The deadline passed first.
    TimedOut,
    /// The caller holds the lock, taken over from this dead process.
    TookOver(u32),
}

/// A mutual-exclusion word in shared memory: 0 free, else the holder's pid, with bit 31
/// set when someone may be waiting.
#[derive(Clone)]
pub struct RawLock {
    shm: Rc<Shm>,
    index: usize,
}

impl RawLock {
    /// The lock in word `index` of `shm` (which must be zero to start with: free).
    pub fn new(shm: Rc<Shm>, index: usize) -> Self {
        Self { shm, index }
    }

    fn word(&self) -> &AtomicU32 {
        self.shm.u32(self.index)
    }

    /// The pid of the holder, if held.
    pub fn holder(&self) -> Option<u32> {
        let v = self.word().load(SeqCst) & !WAITERS;
        (v != 0).then_some(v)
    }

    /// Takes the lock, waiting until `deadline`.
    pub fn acquire(
        &self,
        deadline: Deadline,
        on_dead: OnDeadHolder,
        what: &str,
    ) -> Result<Acquired> {
        let me = me();
        let word = self.word();
        if word.compare_exchange(0, me, SeqCst, SeqCst).is_ok() {
            return Ok(Acquired::Yes);
        }
        // The holder usually lets go within a few hundred nanoseconds (it is running on
        // another CPU): spin briefly before going to sleep in the kernel.
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if word.load(Relaxed) == 0 && word.compare_exchange(0, me, SeqCst, SeqCst).is_ok() {
                return Ok(Acquired::Yes);
            }
        }
        let mut next_check = Instant::now() + LIVENESS_CHECK;
        loop {
            let v = word.load(SeqCst);
            if v == 0 {
                // Someone else may still be waiting: keep the bit so release wakes them.
                if word
                    .compare_exchange(0, me | WAITERS, SeqCst, SeqCst)
                    .is_ok()
                {
                    return Ok(Acquired::Yes);
                }
                continue;
            }
            if v & WAITERS == 0
                && word
                    .compare_exchange(v, v | WAITERS, SeqCst, SeqCst)
                    .is_err()
            {
                continue;
            }
            let holder = v & !WAITERS;
            if holder == me && !deadline.is_some() {
                return Err(Error::process(format!(
                    "{what} is already held by this process (a second acquire would wait forever; use an RLock)"
                )));
            }
            if deadline.passed() {
                return Ok(Acquired::TimedOut);
            }
            let check = Deadline::after(Some(LIVENESS_CHECK)).min(deadline);
            wait_word(word, v | WAITERS, check)?;
            if Instant::now() < next_check || holder == me {
                continue;
            }
            next_check = Instant::now() + LIVENESS_CHECK;
            if !pid_alive(holder) {
                match on_dead {
                    OnDeadHolder::TakeOver => {
                        if word
                            .compare_exchange(v | WAITERS, me | WAITERS, SeqCst, SeqCst)
                            .is_ok()
                        {
                            return Ok(Acquired::TookOver(holder));
                        }
                    }
                    OnDeadHolder::Fail => {
                        if word
                            .compare_exchange(v | WAITERS, 0, SeqCst, SeqCst)
                            .is_ok()
                        {
                            futex_wake(word, i32::MAX);
                            return Err(Error::process(format!(
                                "{what} was held by process {holder}, which ended without releasing it; \
                                 the lock has been freed (acquire again to take it)"
                            )));
                        }
                    }
                }
            }
        }
    }

    /// Frees the lock, whoever holds it. `false` if it was not held.
    pub fn release(&self) -> bool {
        let v = self.word().swap(0, SeqCst);
        if v & WAITERS != 0 {
            futex_wake(self.word(), 1);
        }
        v != 0
    }
}

fn released_unlocked(what: &str) -> Error {
    Error::value(format!("cannot release an unlocked {what}"))
}

/// Python's `multiprocessing.Lock`: any process may release it once it is held.
#[derive(Clone)]
pub struct Lock(RawLock);

impl Lock {
    /// A new, free lock.
    pub fn new() -> Result<Self> {
        Ok(Self(RawLock::new(Shm::new(4)?, 0)))
    }

    /// Takes the lock; `false` if `timeout` passed first.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        let got = self
            .0
            .acquire(Deadline::after(timeout), OnDeadHolder::Fail, "the Lock")?;
        Ok(got != Acquired::TimedOut)
    }

    /// Frees the lock; `ValueError` if it is not held.
    pub fn release(&self) -> Result<()> {
        if self.0.release() {
            Ok(())
        } else {
            Err(released_unlocked("Lock"))
        }
    }

    /// The pid of the holder.
    pub fn holder(&self) -> Option<u32> {
        self.0.holder()
    }
}

/// Python's `multiprocessing.RLock`: the holding process may acquire it again, and must
/// release it as many times.
#[derive(Clone)]
pub struct RLock {
    raw: RawLock,
}

impl RLock {
    /// A new, free reentrant lock.
    pub fn new() -> Result<Self> {
        Ok(Self {
            raw: RawLock::new(Shm::new(8)?, 0),
        })
    }

    fn count(&self) -> &AtomicU32 {
        self.raw.shm.u32(1)
    }

    /// Takes the lock (again, if this process holds it); `false` on timeout.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        if self.raw.holder() == Some(me()) {
            self.count().fetch_add(1, SeqCst);
            return Ok(true);
        }
        match self
            .raw
            .acquire(Deadline::after(timeout), OnDeadHolder::Fail, "the RLock")?
        {
            Acquired::TimedOut => Ok(false),
            _ => {
                self.count().store(1, SeqCst);
                Ok(true)
            }
        }
    }

    /// Releases one level; only the holder may.
    pub fn release(&self) -> Result<()> {
        if self.raw.holder() != Some(me()) {
            return Err(Error::value(
                "cannot release an RLock this process does not hold",
            ));
        }
        if self.count().fetch_sub(1, SeqCst) <= 1 {
            self.count().store(0, SeqCst);
            self.raw.release();
        }
        Ok(())
    }

    /// Releases every level at once, returning how many there were (for `Condition.wait`).
    fn release_all(&self) -> u32 {
        let count = self.count().swap(0, SeqCst);
        self.raw.release();
        count
    }

    /// Takes the lock back with the level count `release_all` returned.
    fn restore(&self, count: u32) -> Result<()> {
        self.raw
            .acquire(Deadline::NEVER, OnDeadHolder::Fail, "the Condition's lock")?;
        self.count().store(count, SeqCst);
        Ok(())
    }

    /// Whether this process holds it.
    pub fn is_mine(&self) -> bool {
        self.raw.holder() == Some(me())
    }

    /// The pid of the holder.
    pub fn holder(&self) -> Option<u32> {
        self.raw.holder()
    }
}

/// Python's `Semaphore` and `BoundedSemaphore`: a shared counter that `acquire` takes
/// one from, waiting while it is zero.
#[derive(Clone)]
pub struct Semaphore {
    shm: Rc<Shm>,
    /// `Some(max)` for a bounded semaphore.
    bound: Option<u32>,
}

// Layout: word 0 value, word 1 number of waiters.
impl Semaphore {
    /// A semaphore starting at `value`; `bounded` makes releasing past it a `ValueError`.
    pub fn new(value: u32, bounded: bool) -> Result<Self> {
        let shm = Shm::new(8)?;
        shm.u32(0).store(value, SeqCst);
        Ok(Self {
            shm,
            bound: bounded.then_some(value),
        })
    }

    /// Whether it is a `BoundedSemaphore`.
    pub fn is_bounded(&self) -> bool {
        self.bound.is_some()
    }

    /// The current value.
    pub fn value(&self) -> u32 {
        self.shm.u32(0).load(SeqCst)
    }

    /// Takes one; `false` if `deadline` passed first.
    pub fn acquire_until(&self, deadline: Deadline) -> Result<bool> {
        let value = self.shm.u32(0);
        let waiters = self.shm.u32(1);
        loop {
            let v = value.load(SeqCst);
            if v > 0 {
                if value.compare_exchange(v, v - 1, SeqCst, SeqCst).is_ok() {
                    return Ok(true);
                }
                continue;
            }
            if deadline.passed() {
                return Ok(false);
            }
            waiters.fetch_add(1, SeqCst);
            let waited = wait_word(value, 0, deadline);
            waiters.fetch_sub(1, SeqCst);
            waited?;
        }
    }

    /// Takes one; `false` on timeout.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        self.acquire_until(Deadline::after(timeout))
    }

    /// Gives one back, waking a waiter.
    pub fn release(&self) -> Result<()> {
        let value = self.shm.u32(0);
        match self.bound {
            None => {
                value.fetch_add(1, SeqCst);
            }
            Some(max) => {
                let mut v = value.load(SeqCst);
                loop {
                    if v >= max {
                        return Err(Error::value(format!(
                            "BoundedSemaphore released too many times (its initial value is {max})"
                        )));
                    }
                    match value.compare_exchange(v, v + 1, SeqCst, SeqCst) {
                        Ok(_) => break,
                        Err(now) => v = now,
                    }
                }
            }
        }
        if self.shm.u32(1).load(SeqCst) > 0 {
            futex_wake(value, 1);
        }
        Ok(())
    }
}

/// Python's `Event`: a flag processes can wait for.
#[derive(Clone)]
pub struct Event(Rc<Shm>);

impl Event {
    /// A new event, not set.
    pub fn new() -> Result<Self> {
        Ok(Self(Shm::new(4)?))
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.0.u32(0).store(1, SeqCst);
        futex_wake(self.0.u32(0), i32::MAX);
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.0.u32(0).store(0, SeqCst);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.0.u32(0).load(SeqCst) != 0
    }

    /// Waits until the flag is set or `timeout` passes; returns the flag.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = Deadline::after(timeout);
        loop {
            if self.is_set() {
                return Ok(true);
            }
            if !wait_word(self.0.u32(0), 0, deadline)? {
                return Ok(self.is_set());
            }
        }
    }
}

/// Python's `Condition` (over its own `RLock`): wait for a notification while the lock is
/// let go.
#[derive(Clone)]
pub struct Condition {
    lock: RLock,
    /// Word 0: a sequence number bumped by every notify.
    seq: Rc<Shm>,
}

impl Condition {
    /// A new condition with a new `RLock`.
    pub fn new() -> Result<Self> {
        Ok(Self {
            lock: RLock::new()?,
            seq: Shm::new(4)?,
        })
    }

    /// Its lock.
    pub fn lock(&self) -> &RLock {
        &self.lock
    }

    fn ensure_held(&self, verb: &str) -> Result<()> {
        if self.lock.is_mine() {
            Ok(())
        } else {
            Err(Error::value(format!(
                "cannot {verb} on a Condition whose lock this process does not hold"
            )))
        }
    }

    /// Lets the lock go, waits for a notify or the timeout, and takes the lock back.
    /// Returns `false` if the timeout passed. A notify meant for another waiter can end
    /// it too: wait in a loop that checks the condition, as in Python.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.ensure_held("wait")?;
        let deadline = Deadline::after(timeout);
        let word = self.seq.u32(0);
        let seen = word.load(SeqCst);
        let count = self.lock.release_all();
        let mut waited = Ok(());
        while word.load(SeqCst) == seen {
            match wait_word(word, seen, deadline) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    waited = Err(e);
                    break;
                }
            }
        }
        let notified = word.load(SeqCst) != seen;
        self.lock.restore(count)?;
        waited.map(|()| notified)
    }

    /// Wakes up to `n` waiters.
    pub fn notify(&self, n: u32) -> Result<()> {
        self.ensure_held("notify")?;
        self.seq.u32(0).fetch_add(1, SeqCst);
        futex_wake(self.seq.u32(0), n.min(i32::MAX as u32) as i32);
        Ok(())
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) -> Result<()> {
        self.notify(u32::MAX)
    }
}

/// Python's `Barrier(parties)`: `wait` returns once `parties` processes have called it.
#[derive(Clone)]
pub struct Barrier {
    // Layout: word 0 internal lock, word 1 waiting count, word 2 generation.
    shm: Rc<Shm>,
    parties: u32,
}

impl Barrier {
    /// A barrier for `parties` processes.
    pub fn new(parties: u32) -> Result<Self> {
        if parties == 0 {
            return Err(Error::value("a Barrier needs at least one party"));
        }
        Ok(Self {
            shm: Shm::new(12)?,
            parties,
        })
    }

    /// How many processes must arrive.
    pub fn parties(&self) -> u32 {
        self.parties
    }

    /// How many are waiting now.
    pub fn n_waiting(&self) -> u32 {
        self.shm.u32(1).load(SeqCst)
    }

    fn lock(&self) -> Result<RawLock> {
        let lock = RawLock::new(self.shm.clone(), 0);
        lock.acquire(
            Deadline::NEVER,
            OnDeadHolder::TakeOver,
            "the Barrier's lock",
        )?;
        Ok(lock)
    }

    /// Arrives and waits for the others; returns this party's arrival index (0 for the
    /// first). On timeout this party withdraws (the others keep waiting for a full set)
    /// and a `TimeoutError` is raised.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<u32> {
        let deadline = Deadline::after(timeout);
        let count = self.shm.u32(1);
        let generation = self.shm.u32(2);
        let lock = self.lock()?;
        let gen = generation.load(SeqCst);
        let index = count.fetch_add(1, SeqCst);
        if index + 1 >= self.parties {
            count.store(0, SeqCst);
            generation.fetch_add(1, SeqCst);
            lock.release();
            futex_wake(generation, i32::MAX);
            return Ok(index);
        }
        lock.release();
        loop {
            if deadline.passed() {
                let lock = self.lock()?;
                let done = generation.load(SeqCst) != gen;
                if !done {
                    count.fetch_sub(1, SeqCst);
                }
                lock.release();
                if done {
                    return Ok(index);
                }
                return Err(Error::new(
                    ErrorKind::TimeoutError,
                    format!(
                        "Barrier.wait timed out with {} of {} parties arrived",
                        self.n_waiting() + 1,
                        self.parties
                    ),
                ));
            }
            wait_word(generation, gen, deadline)?;
            if generation.load(SeqCst) != gen {
                return Ok(index);
            }
        }
    }
}
